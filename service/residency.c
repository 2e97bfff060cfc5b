/* residency.c - see include/residency.h. */
#include "residency.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

/* Bytes warmed per store_warm() call: small enough that a stop request is
 * noticed within a few ms, large enough that a pass over a 4 GiB file is a
 * few hundred calls. */
#define CHUNK ((size_t)8 << 20)
#define MIB   (1024.0 * 1024.0)

struct residency {
    store *st;
    residency_options o;
    pthread_t thread;
    pthread_mutex_t lock; /* with cond: the wait between passes */
    pthread_cond_t cond;
    atomic_bool stopping;
    size_t locked; /* bytes of the file locked so far (the thread's own) */
};

/* Waits ns nanoseconds or until residency_stop(). Returns true to stop. */
static bool wait_or_stop(residency *r, uint64_t ns)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ns / 1000000000u);
    until.tv_nsec += (long)(ns % 1000000000u);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (!atomic_load(&r->stopping))
        if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&r->lock);
    return atomic_load(&r->stopping);
}

/* Locks what the file holds now, if asked to and not locked yet. A refusal
 * is logged once and locking is given up: the passes keep the pages in. */
static void lock_pages(residency *r, size_t size)
{
    if (!r->o.lock || size <= r->locked)
        return;
    int rc = store_lock(r->st);
    if (rc == 0) {
        r->locked = size;
        log_info("database locked in memory: %.0f MiB", (double)size / MIB);
        return;
    }
    struct rlimit lim = {0, 0};
    getrlimit(RLIMIT_MEMLOCK, &lim);
    char limit[32] = "unlimited";
    if (lim.rlim_cur != RLIM_INFINITY)
        snprintf(limit, sizeof limit, "%.0f MiB", (double)lim.rlim_cur / MIB);
    char instead[64] = "";
    if (r->o.interval_s)
        snprintf(instead, sizeof instead, "; touching it every %u s instead", r->o.interval_s);
    log_warn("cannot lock the database in memory (%.0f MiB): %s; RLIMIT_MEMLOCK is %s (raise "
             "it, e.g. LimitMEMLOCK=infinity, or grant CAP_IPC_LOCK)%s",
             (double)size / MIB, strerror(-rc), limit, instead);
    r->o.lock = false;
}

/* One pass over the whole file. Returns 0, -ECANCELED when asked to stop, or
 * the store's error. */
static int warm_pass(residency *r, bool first)
{
    store_map m;
    int rc = store_map_info(r->st, &m);
    if (rc)
        return rc;
    uint64_t t0 = clock_mono_ns();
    for (size_t off = 0; off < m.size; off += CHUNK) {
        if (atomic_load(&r->stopping))
            return -ECANCELED;
        long n = store_warm(r->st, off, CHUNK);
        if (n < 0)
            return (int)n;
    }
    double ms = (double)(clock_mono_ns() - t0) / 1e6;
    if (first)
        log_info("database in memory: %.0f MiB in %.0f ms", (double)m.size / MIB, ms);
    else
        log_debug("database touched: %.0f MiB in %.1f ms", (double)m.size / MIB, ms);
    lock_pages(r, m.size);
    return 0;
}

static void *residency_main(void *arg)
{
    residency *r = arg;
    /* The lowest priority, for this thread only (Linux's setpriority on a
     * thread id): it yields the CPU to every worker, and a decision never
     * waits for a pass. */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), 19) != 0)
        log_debug("residency: cannot lower the thread's priority: %s", strerror(errno));
    bool first = true;
    for (;;) {
        int rc = warm_pass(r, first);
        if (rc == -ECANCELED)
            break;
        if (rc)
            log_warn("cannot bring the database into memory: %s", strerror(-rc));
        first = false;
        if (r->o.interval_s == 0 || wait_or_stop(r, (uint64_t)r->o.interval_s * 1000000000u))
            break;
    }
    return NULL;
}

int residency_start(store *st, const residency_options *o, residency **out, nba_error *err)
{
    residency *r = calloc(1, sizeof *r);
    if (!r)
        return nba_error_set(err, -ENOMEM, "out of memory");
    r->st = st;
    r->o = *o;
    atomic_init(&r->stopping, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc) {
        free(r);
        return nba_error_set(err, -rc, "cannot create a condition variable: %s", strerror(rc));
    }
    pthread_mutex_init(&r->lock, NULL);
    rc = pthread_create(&r->thread, NULL, residency_main, r);
    if (rc) {
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        free(r);
        return nba_error_set(err, -rc, "cannot start the residency thread: %s", strerror(rc));
    }
    *out = r;
    return 0;
}

void residency_stop(residency *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->stopping, true);
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
