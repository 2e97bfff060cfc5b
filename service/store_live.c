/* store_live.c - see include/store_live.h. */
#include "store_live.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"

#define DEFAULT_POLL_MS 1000
/* Bytes read into memory per step while a new generation is warmed. */
#define WARM_STEP ((size_t)64 << 20)

/* One open generation. */
typedef struct held {
    struct held *next;
    store *st;
    char name[DBROOT_NAME_MAX];
    unsigned refs; /* acquired and not yet released */
    bool serving;
} held;

struct store_live {
    char root[PATH_MAX];
    store_live_options o;
    bool fixed; /* store_live_fixed(): the caller's store, no watcher */
    pthread_mutex_t lock;
    held *list; /* the serving generation first, then retired ones */
    _Atomic uint64_t gen;
    int wake_fd;
    _Atomic bool stopping;
    bool thread_started;
    pthread_t thread;
    char failed[DBROOT_NAME_MAX]; /* a generation that would not open: said once */
    /* Generations closed here, to remove once ROOT's lock is free (a load,
     * switch or prune holds it meanwhile). Watcher thread only. */
    char doomed[8][DBROOT_NAME_MAX];
    unsigned n_doomed;
};

uint64_t store_live_generation(const store_live *l)
{
    return atomic_load_explicit(&l->gen, memory_order_acquire);
}

store *store_live_acquire(store_live *l, uint64_t *generation)
{
    pthread_mutex_lock(&l->lock);
    held *h = l->list;
    h->refs++;
    if (generation)
        *generation = atomic_load_explicit(&l->gen, memory_order_relaxed);
    pthread_mutex_unlock(&l->lock);
    return h->st;
}

void store_live_release(store_live *l, store *st)
{
    bool retired_free = false;
    pthread_mutex_lock(&l->lock);
    for (held *h = l->list; h; h = h->next) {
        if (h->st == st) {
            h->refs--;
            retired_free = !h->serving && h->refs == 0;
            break;
        }
    }
    pthread_mutex_unlock(&l->lock);
    if (retired_free)
        store_live_poke(l); /* the watcher closes it */
}

void store_live_name(store_live *l, char *buf, size_t size)
{
    pthread_mutex_lock(&l->lock);
    snprintf(buf, size, "%s", l->list->name);
    pthread_mutex_unlock(&l->lock);
}

void store_live_poke(store_live *l)
{
    if (l->wake_fd < 0)
        return;
    uint64_t one = 1;
    ssize_t n = write(l->wake_fd, &one, sizeof one);
    (void)n;
}

/* Reads a new generation into memory before it serves, so the first
 * decisions after the switch do not wait on the disk. */
static void warm(store *st)
{
    for (size_t off = 0;; off += WARM_STEP) {
        long got = store_warm(st, off, WARM_STEP);
        if (got <= 0)
            return;
    }
}

/* Opens and publishes the generation ROOT/current names, if it is not the
 * one serving. */
static void follow_current(store_live *l)
{
    char name[DBROOT_NAME_MAX];
    if (dbroot_current_name(l->root, name, sizeof name) != 0)
        return; /* no `current`: a flat environment, which never switches */
    pthread_mutex_lock(&l->lock);
    bool same = strcmp(name, l->list->name) == 0;
    /* Back to a generation this process still has open (a rollback soon
     * after a switch): serve that copy again. LMDB forbids opening an
     * environment twice in one process; a second copy would wipe the
     * first one's reader slots when either closes. */
    held *back = NULL;
    for (held **p = &l->list; !same && *p; p = &(*p)->next) {
        if (strcmp((*p)->name, name) == 0) {
            back = *p;
            *p = back->next;
            break;
        }
    }
    if (back) {
        held *old = l->list;
        old->serving = false;
        back->serving = true;
        back->next = old;
        l->list = back;
        atomic_fetch_add_explicit(&l->gen, 1, memory_order_release);
    }
    pthread_mutex_unlock(&l->lock);
    if (back) {
        log_info("database %s: serving %s again (it was still open)", l->root, name);
        if (l->o.on_switch)
            l->o.on_switch(l->o.arg, back->st, back->next->st, name);
        return;
    }
    if (same)
        return;

    char dir[PATH_MAX];
    nba_error err;
    store *st = NULL;
    int rc = dbroot_path(l->root, name, dir, sizeof dir) == 0
                 ? store_open(dir, STORE_READONLY | STORE_EXACT, l->o.map_size, l->o.max_readers,
                              &st, &err)
                 : nba_error_set(&err, -ENAMETOOLONG, "%s/%s: path too long", l->root, name);
    if (rc) {
        if (strcmp(l->failed, name) != 0)
            log_error("database %s: cannot switch to %s, still serving the one before: %s", l->root,
                      name, err.msg);
        snprintf(l->failed, sizeof l->failed, "%s", name);
        return;
    }
    held *h = calloc(1, sizeof *h);
    if (!h) {
        store_close(st);
        return;
    }
    warm(st);
    h->st = st;
    h->serving = true;
    snprintf(h->name, sizeof h->name, "%s", name);

    pthread_mutex_lock(&l->lock);
    held *old = l->list;
    old->serving = false;
    h->next = old;
    l->list = h;
    atomic_fetch_add_explicit(&l->gen, 1, memory_order_release);
    pthread_mutex_unlock(&l->lock);
    l->failed[0] = '\0';

    store_stats stats = {0};
    store_get_stats(st, &stats);
    log_info("database %s: now serving %s (%zu customers, %zu incidents); %s retires when its "
             "last request ends",
             l->root, name, stats.customers, stats.incidents, old->name);
    if (l->o.on_switch)
        l->o.on_switch(l->o.arg, st, old->st, name);
}

/* Closes the retired generations no reader holds, and removes their
 * directories unless another process has them open. */
static void collect(store_live *l)
{
    for (;;) {
        held *done = NULL;
        pthread_mutex_lock(&l->lock);
        for (held **p = &l->list; *p; p = &(*p)->next) {
            if (!(*p)->serving && (*p)->refs == 0) {
                done = *p;
                *p = done->next;
                break;
            }
        }
        pthread_mutex_unlock(&l->lock);
        if (!done)
            return;
        store_close(done->st);
        if (strcmp(done->name, DBROOT_FLAT) == 0)
            log_info("database %s: closed the environment that served before", l->root);
        else if (l->n_doomed < sizeof l->doomed / sizeof l->doomed[0])
            snprintf(l->doomed[l->n_doomed++], DBROOT_NAME_MAX, "%s", done->name);
        else
            log_info("database %s: closed %s, left on disk", l->root, done->name);
        free(done);
    }
}

/* Removes the generations this process stopped serving, under ROOT's lock
 * so that a load, switch or prune in another process never races with it;
 * when that lock is busy, at a later poll. A generation that `current`
 * names again meanwhile (a rollback), or that another process still has
 * open, stays. */
static void remove_doomed(store_live *l)
{
    if (l->n_doomed == 0)
        return;
    int fd;
    nba_error err;
    if (dbroot_lock(l->root, &fd, &err) != 0)
        return;
    char current[DBROOT_NAME_MAX] = "";
    dbroot_current_name(l->root, current, sizeof current);
    for (unsigned i = 0; i < l->n_doomed; i++) {
        const char *name = l->doomed[i];
        if (strcmp(name, current) == 0)
            continue;
        if (dbroot_remove(l->root, name, &err) == 0)
            log_info("database %s: removed %s, which no longer serves", l->root, name);
        else
            log_info("database %s: closed %s, left on disk: %s", l->root, name, err.msg);
    }
    l->n_doomed = 0;
    dbroot_unlock(fd);
}

static void *watch(void *arg)
{
    store_live *l = arg;
    unsigned poll_ms = l->o.poll_ms ? l->o.poll_ms : DEFAULT_POLL_MS;
    while (!atomic_load(&l->stopping)) {
        struct pollfd p = {.fd = l->wake_fd, .events = POLLIN};
        if (poll(&p, 1, (int)poll_ms) > 0) {
            uint64_t count;
            ssize_t n = read(l->wake_fd, &count, sizeof count);
            (void)n;
        }
        if (atomic_load(&l->stopping))
            break;
        follow_current(l);
        collect(l);
        remove_doomed(l);
    }
    return NULL;
}

int store_open_serving(const char *root, size_t map_size, unsigned max_readers, store **out,
                       char *name, nba_error *err)
{
    char dir[PATH_MAX];
    int rc = dbroot_resolve(root, dir, sizeof dir, err);
    if (rc)
        return rc;
    if (name && dbroot_current_name(root, name, DBROOT_NAME_MAX) != 0)
        snprintf(name, DBROOT_NAME_MAX, "%s", DBROOT_FLAT);
    return store_open(dir, STORE_READONLY | STORE_EXACT, map_size, max_readers, out, err);
}

static store_live *live_new(void)
{
    store_live *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    pthread_mutex_init(&l->lock, NULL);
    atomic_init(&l->gen, 1);
    atomic_init(&l->stopping, false);
    l->wake_fd = -1;
    return l;
}

int store_live_fixed(store *st, store_live **out)
{
    store_live *l = live_new();
    held *h = calloc(1, sizeof *h);
    if (!l || !h) {
        free(l);
        free(h);
        return -ENOMEM;
    }
    h->st = st;
    h->serving = true;
    snprintf(h->name, sizeof h->name, "%s", DBROOT_FLAT);
    l->list = h;
    l->fixed = true;
    *out = l;
    return 0;
}

int store_live_open(const char *root, const store_live_options *o, store_live **out, nba_error *err)
{
    store_live *l = live_new();
    held *h = calloc(1, sizeof *h);
    if (!l || !h) {
        free(l);
        free(h);
        return nba_error_set(err, -ENOMEM, "out of memory");
    }
    l->o = *o;
    snprintf(l->root, sizeof l->root, "%s", root);
    l->list = h;
    h->serving = true;

    int rc = store_open_serving(root, o->map_size, o->max_readers, &h->st, h->name, err);
    if (rc == 0) {
        l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (l->wake_fd < 0)
            rc = nba_error_set(err, -errno, "eventfd: %s", strerror(errno));
    }
    if (rc == 0) {
        rc = -pthread_create(&l->thread, NULL, watch, l);
        if (rc)
            nba_error_set(err, rc, "cannot start the database watcher: %s", strerror(-rc));
        l->thread_started = rc == 0;
    }
    if (rc) {
        store_live_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void store_live_free(store_live *l)
{
    if (!l)
        return;
    if (l->thread_started) {
        atomic_store(&l->stopping, true);
        store_live_poke(l);
        pthread_join(l->thread, NULL);
    }
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    for (held *h = l->list, *next; h; h = next) {
        next = h->next;
        if (h->st && !l->fixed)
            store_close(h->st);
        free(h);
    }
    pthread_mutex_destroy(&l->lock);
    free(l);
}
