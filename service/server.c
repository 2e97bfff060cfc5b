/* server.c - see include/server.h.
 *
 * Threads, after memcached's thread.c:
 *
 *   listener  the thread in server_run(). Its event_base holds the
 *             evconnlistener, the stop eventfd and the SIGTERM/SIGINT events.
 *             It accepts, picks a worker round robin, pushes the socket on
 *             that worker's queue and writes the worker's eventfd.
 *   workers   each owns an event_base created with EVENT_BASE_FLAG_NOLOCK
 *             (only its thread ever touches it), its decider and its
 *             connections (connection.c). The decider is created and freed
 *             on the worker's own thread, because the LMDB read transaction
 *             inside it belongs to the thread that made it.
 *
 * The only state the threads share is each worker's queue and stopping
 * flag, under that worker's mutex, the start-up report, under the
 * server's, and each worker's counters (conn_stats), which only their
 * worker writes and a status request on any worker reads without a lock.
 *
 * Stopping: the listener's loop breaks (signal or server_stop()), it stops
 * accepting (after taking the connections already waiting in the backlog),
 * sets every worker's stopping flag and wakes it. A worker takes the
 * sockets still queued for it, lets each connection answer what it has
 * received and write it out (conn_pool_drain), and leaves its loop when the
 * last one has closed or DRAIN_TIMEOUT_S have passed. The listener joins
 * them all.
 *
 * Counting connections: the listener adds one to `serving` for each
 * connection it hands over to be served, and the worker gives it back when
 * that connection closes; past max_connections the listener hands the
 * socket over to be refused instead (conn_refuse), which costs no count.
 * Only the listener adds, so the limit is never overshot.
 */
#include "server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "clock.h"
#include "connection.h"
#include "decider.h"
#include "frame.h"
#include "histogram.h"
#include "log.h"

/* After an accept error such as EMFILE the pending connection stays in the
 * backlog and the listening socket stays readable: accepting again at once
 * would spin. Pause this long instead. */
#define ACCEPT_PAUSE_MS 100
/* The clock of idle_timeout: a connection is closed between idle_timeout
 * and idle_timeout + 1 s after its last byte. */
#define TICK_S 1
/* How long a stopping worker waits for its clients to take their answers. */
#define DRAIN_TIMEOUT_S 5
#define MAX_WORKERS     256

/* A socket accepted by the listener, on its way to a worker. */
typedef struct pending {
    evutil_socket_t fd;
    uint64_t serial;
    bool refuse; /* past max_connections: answer too_many_connections and close */
    char peer[INET6_ADDRSTRLEN + 8]; /* "[addr]:port", for logs */
} pending;

typedef struct worker {
    server *srv;
    int index;
    pthread_t thread;
    bool started, joined;
    struct event_base *base;
    int wake_fd; /* eventfd: the listener writes it after queueing a socket or stopping */
    struct event *wake_ev;
    struct event *drain_timer;
    struct event *tick_timer; /* every TICK_S: idle_timeout, following the database */
    decider *decider;         /* created and freed on the worker's thread */
    conn_pool pool;
    histogram status_merge; /* scratch for status requests answered here */
    /* shared with the listener, under lock */
    pthread_mutex_t lock;
    bool lock_ready;
    writer_job *done_head, *done_tail; /* answered by the writer, for conn_resume */
    pending *queue;                    /* ring of q_cap entries, q_len of them from q_head */
    size_t q_cap, q_head, q_len;
    bool stopping;
} worker;

struct server {
    store_live *live;
    state *state;            /* NULL: no state, nothing is written */
    writer *writer;          /* with a state: applies durable requests */
    decider *writer_decider; /* made and used on the writer's thread */
    state_sweep sweep;       /* the writer's expiry sweep: where it goes on from */
    uint64_t sweep_removed;  /* records it removed in the pass under way */
    rules_live *rules;
    tls_context *tls;
    const config *cfg; /* during server_new only */
    unsigned max_connections;
    _Atomic unsigned serving; /* connections being served; see the top of this file */
    /* the listener's episodes, each logged when it starts and when it ends */
    int accept_errno;         /* accepting fails (EMFILE, ...): the first error, or 0 */
    uint64_t accept_failures; /* failed attempts in this episode */
    uint64_t accept_failed_ns;
    uint64_t refused; /* connections refused at max_connections in this episode, or 0 */
    uint32_t max_frame;
    uint64_t started_ns; /* clock_mono_ns() at server_new, for the uptime */
    int port;
    char where[INET6_ADDRSTRLEN + 8]; /* the bound address, "addr:port" */
    struct event_base *base;
    struct evconnlistener *listener;
    int stop_fd; /* eventfd written by server_stop() */
    struct event *stop_ev;
    struct event *accept_timer;
    struct event *sigterm_ev, *sigint_ev, *sighup_ev;
    uint64_t serial; /* of the last connection accepted */
    worker *workers;
    int n_workers;
    int next_worker;
    /* start-up: each worker reports once whether its decider was made */
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    bool start_ready;
    int n_reported;
    int start_rc;
    nba_error start_err;
};

/* ---- the queue between the listener and a worker ---- */

/* Called with w->lock held. Grows the ring by doubling, so a steady state
 * allocates nothing. */
static int queue_push(worker *w, const pending *item)
{
    if (w->q_len == w->q_cap) {
        size_t cap = w->q_cap ? w->q_cap * 2 : 16;
        pending *q = malloc(cap * sizeof *q);
        if (!q)
            return -ENOMEM;
        for (size_t i = 0; i < w->q_len; i++)
            q[i] = w->queue[(w->q_head + i) % w->q_cap];
        free(w->queue);
        w->queue = q;
        w->q_cap = cap;
        w->q_head = 0;
    }
    w->queue[(w->q_head + w->q_len) % w->q_cap] = *item;
    w->q_len++;
    return 0;
}

/* Called with w->lock held. */
static bool queue_pop(worker *w, pending *out)
{
    if (w->q_len == 0)
        return false;
    *out = w->queue[w->q_head];
    w->q_head = (w->q_head + 1) % w->q_cap;
    w->q_len--;
    return true;
}

static void worker_wake(worker *w)
{
    uint64_t one = 1;
    /* Fails only when the counter would overflow, i.e. a wake-up is already
     * pending, which is all that is needed. */
    ssize_t n = write(w->wake_fd, &one, sizeof one);
    (void)n;
}

/* Listener thread: hands an accepted socket to w. */
static int worker_push(worker *w, const pending *item)
{
    pthread_mutex_lock(&w->lock);
    int rc = w->stopping ? -ESHUTDOWN : queue_push(w, item);
    pthread_mutex_unlock(&w->lock);
    if (!rc)
        worker_wake(w);
    return rc;
}

/* Writer thread: a job of a connection of w's is answered; w's loop
 * delivers it (on_wake). */
static void worker_job_done(void *arg, writer_job *job)
{
    worker *w = arg;
    job->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->done_tail)
        w->done_tail->next = job;
    else
        w->done_head = job;
    w->done_tail = job;
    pthread_mutex_unlock(&w->lock);
    worker_wake(w);
}

/* Hands the writer's answers to their connections; after the worker has
 * stopped, this only frees what connections closed while they waited. */
static void worker_deliver(worker *w)
{
    pthread_mutex_lock(&w->lock);
    writer_job *job = w->done_head;
    w->done_head = w->done_tail = NULL;
    pthread_mutex_unlock(&w->lock);
    while (job) {
        writer_job *next = job->next;
        conn_resume(job->tag, job);
        writer_job_free(job);
        job = next;
    }
}

/* Any thread: asks w to finish. */
static void worker_stop(worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_mutex_unlock(&w->lock);
    worker_wake(w);
}

/* ---- the worker thread ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    if (w->pool.idle_ticks || w->pool.frame_ticks)
        conn_pool_tick(&w->pool);
    /* A worker without requests still lets go of a database generation
     * that no longer serves, and of the database and state snapshots it
     * keeps between requests, whose pages writers cannot reuse while they
     * are held (a busy worker pays one more renewal a second for that). */
    if (w->decider)
        decider_follow_now(w->decider);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    log_warn("worker %d: %zu connection(s) still open %d s after stopping; closing them", w->index,
             w->pool.n_open, DRAIN_TIMEOUT_S);
    conn_pool_close_all(&w->pool);
    event_base_loopbreak(w->base);
}

static void worker_drain(worker *w)
{
    if (w->pool.draining)
        return;
    log_debug("worker %d: stopping, %zu connection(s) open", w->index, w->pool.n_open);
    conn_pool_drain(&w->pool);
    if (w->pool.n_open > 0) {
        struct timeval tv = {DRAIN_TIMEOUT_S, 0};
        if (event_add(w->drain_timer, &tv))
            on_drain_timeout(-1, 0, w);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    worker *w = arg;
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof count); /* resets the eventfd */
    (void)n;
    worker_deliver(w);
    for (;;) {
        pending item;
        pthread_mutex_lock(&w->lock);
        bool have = queue_pop(w, &item);
        bool stopping = w->stopping;
        pthread_mutex_unlock(&w->lock);
        if (!have) {
            if (stopping)
                worker_drain(w);
            return;
        }
        /* Taken even when stopping: its requests have reached nbad, and
         * the drain that follows answers them like any other's. */
        int rc = item.refuse ? conn_refuse(&w->pool, item.fd, item.serial, item.peer,
                                           "too_many_connections",
                                           "the server is at its connection limit: retry later")
                             : conn_open(&w->pool, item.fd, item.serial, item.peer);
        if (rc)
            log_warn("worker %d: cannot take connection %llu: %s", w->index,
                     (unsigned long long)item.serial, strerror(-rc));
    }
}

/* The status source of every worker's decider: the whole server's counters,
 * summed over the workers, and their latency histograms merged, read while
 * the other workers go on recording (see conn_stats). */
static int fill_status(void *arg, Nba__V1__Status *out)
{
    worker *w = arg;
    server *s = w->srv;
    store_stats db;
    store *st = store_live_acquire(s->live, NULL);
    int rc = store_get_stats(st, &db);
    store_live_release(s->live, st);
    if (rc)
        return rc;
    histogram *h = &w->status_merge;
    histogram_init(h);
    for (int i = 0; i < s->n_workers; i++) {
        const conn_stats *st = &s->workers[i].pool.stats;
        out->connections_open += atomic_load_explicit(&st->connections_open, memory_order_relaxed);
        out->connections_total +=
            atomic_load_explicit(&st->connections_total, memory_order_relaxed);
        out->requests_total += atomic_load_explicit(&st->requests, memory_order_relaxed);
        out->decisions_total += atomic_load_explicit(&st->decisions, memory_order_relaxed);
        out->errors_total += atomic_load_explicit(&st->errors, memory_order_relaxed);
        out->connections_refused +=
            atomic_load_explicit(&st->connections_refused, memory_order_relaxed);
        out->connections_idle_closed +=
            atomic_load_explicit(&st->connections_idle, memory_order_relaxed);
        out->tls_handshakes_failed += atomic_load_explicit(&st->tls_failed, memory_order_relaxed);
        histogram_merge(h, &st->decision_latency);
    }
    out->uptime_ms = (clock_mono_ns() - s->started_ns) / 1000000u;
    out->customers = db.customers;
    out->incidents = db.incidents;
    if (s->writer) {
        writer_stats ws;
        writer_get_stats(s->writer, &ws);
        out->writes_total = ws.jobs;
        out->write_commits = ws.commits;
        out->write_largest_batch = ws.largest_batch;
    }
    Nba__V1__Latency *lat = out->decision_latency;
    lat->count = histogram_count(h);
    lat->p50_ns = histogram_percentile(h, 50);
    lat->p90_ns = histogram_percentile(h, 90);
    lat->p99_ns = histogram_percentile(h, 99);
    lat->p999_ns = histogram_percentile(h, 99.9);
    lat->max_ns = histogram_max(h);
    lat->mean_ns = (uint64_t)histogram_mean(h);
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    server *s = w->srv;
    nba_error err = {{0}};

    rules_live_register_thread();
    uint64_t generation;
    store *st = store_live_acquire(s->live, &generation);
    int rc = decider_new(st, s->rules, &w->decider, &err);
    if (rc)
        store_live_release(s->live, st);
    else
        decider_follow(w->decider, s->live, st, generation);
    if (!rc)
        decider_set_status_source(w->decider, fill_status, w);
    if (!rc && s->state)
        rc = decider_attach_state(w->decider, s->state, s->writer, worker_job_done, w, &err);
    if (rc && w->decider) {
        decider_free(w->decider); /* releases its generation too */
        w->decider = NULL;
    }
    w->pool.decider = w->decider;
    pthread_mutex_lock(&s->start_lock);
    if (rc && !s->start_rc) {
        s->start_rc = rc;
        s->start_err = err;
    }
    s->n_reported++;
    pthread_cond_signal(&s->start_cond);
    pthread_mutex_unlock(&s->start_lock);
    if (rc) {
        rules_live_unregister_thread();
        return NULL;
    }

    /* Round by round rather than event_base_dispatch(): after each round's
     * callbacks the answers they put are written (conn_pool_flush). */
    for (;;) {
        int loop = event_base_loop(w->base, EVLOOP_ONCE);
        conn_pool_flush(&w->pool);
        if (loop < 0)
            log_error("worker %d: event loop failed", w->index);
        if (loop != 0 || event_base_got_break(w->base) || event_base_got_exit(w->base))
            break;
    }
    conn_pool_close_all(&w->pool);
    decider_free(w->decider);
    w->decider = NULL;
    rules_live_unregister_thread();
    return NULL;
}

/* ---- the writer's side: its decider lives on its thread ---- */

static int writer_thread_start(void *arg, nba_error *err)
{
    server *s = arg;
    rules_live_register_thread();
    uint64_t generation;
    store *st = store_live_acquire(s->live, &generation);
    int rc = decider_new(st, s->rules, &s->writer_decider, err);
    if (rc)
        store_live_release(s->live, st);
    else
        decider_follow(s->writer_decider, s->live, st, generation);
    if (rc == 0)
        rc = decider_attach_state(s->writer_decider, s->state, NULL, NULL, NULL, err);
    if (rc) {
        decider_free(s->writer_decider);
        s->writer_decider = NULL;
        rules_live_unregister_thread();
    }
    return rc;
}

static void writer_thread_stop(void *arg)
{
    server *s = arg;
    decider_free(s->writer_decider);
    s->writer_decider = NULL;
    rules_live_unregister_thread();
}

static int writer_apply(void *arg, state_txn *t, writer_job *job)
{
    server *s = arg;
    return decider_apply(s->writer_decider, t, job);
}

/* Records the expiry sweep looks at per idle second: one write
 * transaction of a few milliseconds, which an `nbactl outbox ack` waits
 * for at most. */
#define EXPIRY_SWEEP_LIMIT 10000

static void writer_idle(void *arg)
{
    server *s = arg;
    decider_follow_now(s->writer_decider);
    /* What the policy no longer needs goes while nothing else is written,
     * so the state does not grow for good with every retry-proof decision. */
    size_t removed = 0;
    nba_error err;
    if (decider_expire(s->writer_decider, s->state, clock_now_ms(), &s->sweep, EXPIRY_SWEEP_LIMIT,
                       &removed, &err) != 0) {
        log_error("state: %s", err.msg);
        return;
    }
    s->sweep_removed += removed;
    if (s->sweep.wrapped && s->sweep_removed) {
        log_info("state: removed %llu expired records (stored decisions past the idempotency "
                 "window, history past keep_history)",
                 (unsigned long long)s->sweep_removed);
        s->sweep_removed = 0;
    }
}

static void writer_fail(void *arg, writer_job *job, int rc, const char *message)
{
    server *s = arg;
    decider_fail(s->writer_decider, job, rc, message);
}

/* Stops the writer once no worker can submit to it, then frees what
 * connections that closed while waiting left behind. */
static void writer_stop_after_workers(server *s)
{
    if (!s->writer)
        return;
    writer_stop(s->writer);
    s->writer = NULL;
    for (int i = 0; i < s->n_workers; i++)
        if (s->workers[i].lock_ready)
            worker_deliver(&s->workers[i]);
}

static int worker_init(server *s, worker *w, int index, nba_error *err)
{
    w->srv = s;
    w->index = index;
    if (conn_pool_init(&w->pool))
        return nba_error_set(err, -ENOMEM, "out of memory");
    if (pthread_mutex_init(&w->lock, NULL))
        return nba_error_set(err, -ENOMEM, "cannot create a mutex");
    w->lock_ready = true;

    struct event_config *ec = event_config_new();
    if (!ec)
        return nba_error_set(err, -ENOMEM, "out of memory");
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!w->base)
        return nba_error_set(err, -ENOMEM, "cannot create an event loop");

    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0)
        return nba_error_set(err, -errno, "eventfd: %s", strerror(errno));
    w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_wake, w);
    w->drain_timer = evtimer_new(w->base, on_drain_timeout, w);
    if (!w->wake_ev || !w->drain_timer || event_add(w->wake_ev, NULL))
        return nba_error_set(err, -ENOMEM, "out of memory");

    const config *cfg = s->cfg;
    {
        struct timeval tick = {TICK_S, 0};
        w->tick_timer = event_new(w->base, -1, EV_PERSIST, on_tick, w);
        if (!w->tick_timer || event_add(w->tick_timer, &tick))
            return nba_error_set(err, -ENOMEM, "out of memory");
    }
    w->pool.base = w->base;
    w->pool.max_frame = s->max_frame;
    w->pool.out_limit = cfg->max_output;
    w->pool.max_pipeline = (unsigned)cfg->max_pipeline;
    w->pool.idle_ticks = (uint32_t)(cfg->idle_timeout / TICK_S);
    w->pool.frame_ticks = (uint32_t)(cfg->frame_timeout / TICK_S);
    w->pool.tls = s->tls;
    w->pool.tls_required = cfg->tls_required;
    w->pool.log_customer_data = cfg->log_customer_data;
    w->pool.serving = &s->serving;
    return 0;
}

/* Frees what worker_init made, once the thread has been joined. */
static void worker_destroy(worker *w)
{
    pending item;
    while (w->lock_ready && queue_pop(w, &item))
        close(item.fd);
    free(w->queue);
    if (w->tick_timer)
        event_free(w->tick_timer);
    if (w->drain_timer)
        event_free(w->drain_timer);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    if (w->base)
        event_base_free(w->base);
    if (w->lock_ready)
        pthread_mutex_destroy(&w->lock);
    conn_pool_destroy(&w->pool);
}

static void workers_stop_and_join(server *s)
{
    for (int i = 0; i < s->n_workers; i++)
        if (s->workers[i].started && !s->workers[i].joined)
            worker_stop(&s->workers[i]);
    for (int i = 0; i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        if (w->started && !w->joined) {
            pthread_join(w->thread, NULL);
            w->joined = true;
        }
    }
}

/* Starts every worker thread and waits until each has made its decider.
 * The workers block the signals the listener handles, so that they are
 * delivered where the process expects them. */
static int workers_start(server *s, nba_error *err)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = 0, started = 0;
    for (int i = 0; i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        rc = -pthread_create(&w->thread, NULL, worker_main, w);
        if (rc) {
            nba_error_set(err, rc, "cannot start worker thread %d: %s", i, strerror(-rc));
            break;
        }
        w->started = true;
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    pthread_mutex_lock(&s->start_lock);
    while (s->n_reported < started)
        pthread_cond_wait(&s->start_cond, &s->start_lock);
    pthread_mutex_unlock(&s->start_lock);
    if (!rc && s->start_rc) {
        rc = s->start_rc;
        if (err)
            *err = s->start_err;
    }
    return rc;
}

/* ---- the listener ---- */

static void format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN], port[8];
    if (getnameinfo(sa, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV)) {
        snprintf(out, size, "?");
        return;
    }
    snprintf(out, size, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l;
    server *s = arg;
    if (s->accept_errno) {
        log_info("accepting connections again after %llu failed attempt(s) in %llu ms (%s)",
                 (unsigned long long)s->accept_failures,
                 (unsigned long long)((clock_mono_ns() - s->accept_failed_ns) / 1000000u),
                 strerror(s->accept_errno));
        s->accept_errno = 0;
    }
    worker *w = &s->workers[s->next_worker];
    s->next_worker = (s->next_worker + 1) % s->n_workers;
    pending item = {.fd = fd, .serial = ++s->serial};
    format_addr(sa, (socklen_t)len, item.peer, sizeof item.peer);

    /* Only this thread adds to serving, so a load then an add cannot
     * overshoot; the workers only take away. */
    unsigned serving = atomic_load_explicit(&s->serving, memory_order_relaxed);
    item.refuse = serving >= s->max_connections;
    if (item.refuse) {
        if (s->refused++ == 0)
            log_warn("%u connections open, the max_connections limit: refusing new ones "
                     "(too_many_connections)",
                     serving);
    } else {
        if (s->refused) {
            log_info("accepting connections again; %llu refused at max_connections",
                     (unsigned long long)s->refused);
            s->refused = 0;
        }
        atomic_fetch_add_explicit(&s->serving, 1, memory_order_relaxed);
    }
    int rc = worker_push(w, &item);
    if (rc) {
        log_warn("cannot hand connection %llu to worker %d: %s", (unsigned long long)item.serial,
                 w->index, strerror(-rc));
        close(fd);
        if (!item.refuse)
            atomic_fetch_sub_explicit(&s->serving, 1, memory_order_relaxed);
    }
}

/* Accepting failed (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...): the connection
 * stays in the backlog and the socket readable, so pause rather than spin,
 * and log once per episode rather than once per attempt. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    server *s = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (s->accept_errno == 0) {
        s->accept_errno = e;
        s->accept_failures = 0;
        s->accept_failed_ns = clock_mono_ns();
        log_warn("cannot accept connections: %s (%u open); retrying every %d ms", strerror(e),
                 atomic_load_explicit(&s->serving, memory_order_relaxed), ACCEPT_PAUSE_MS);
    }
    s->accept_failures++;
    evconnlistener_disable(l);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    if (event_add(s->accept_timer, &tv))
        evconnlistener_enable(l);
}

/* Stopping: accepts what waits in the backlog now (bounded, in case
 * clients keep coming), as on_accept would have. */
static void accept_backlog(server *s)
{
    evutil_socket_t lfd = evconnlistener_get_fd(s->listener);
    for (int i = 0; i < SOMAXCONN; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        on_accept(s->listener, fd, (struct sockaddr *)&ss, (int)len, s);
    }
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server *s = arg;
    evconnlistener_enable(s->listener);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    server *s = arg;
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof count);
    (void)n;
    log_info("stop requested");
    event_base_loopbreak(s->base);
}

/* SIGHUP: recompile the rule file here, on the listener thread, off every
 * worker's request path; a file that does not compile is logged and the
 * serving rules stay. */
static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    server *s = arg;
    nba_error err = {{0}};
    char id[256];
    log_info("SIGHUP received, reloading %s", rules_live_path(s->rules));
    /* ... and looking at the database's `current` at once. */
    store_live_poke(s->live);
    if (rules_live_reload(s->rules, id, sizeof id, &err) != 0)
        log_error("rules not reloaded, still serving %s:\n%s", id, err.msg);
    /* ... and the TLS certificate, renewed before it expires. */
    if (s->tls) {
        if (tls_context_reload(s->tls, &err) == 0)
            log_info("TLS certificate and key reloaded from %s for new connections",
                     tls_context_cert_path(s->tls));
        else
            log_error("TLS certificate not reloaded, new connections get the one loaded "
                      "before: %s",
                      err.msg);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    server *s = arg;
    log_info("%s received, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    event_base_loopbreak(s->base);
}

/* Binds and listens on addr:port with SO_REUSEADDR (a restart must not wait
 * for old connections in TIME_WAIT), then wraps the socket in an
 * evconnlistener. Binding by hand rather than with evconnlistener_new_bind
 * keeps the errno for the message. */
static int server_listen(server *s, const char *addr, int port, nba_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_protocol = IPPROTO_TCP,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%d", port);
    int gai = getaddrinfo(addr, port_text, &hints, &res);
    if (gai)
        return nba_error_set(err, -EADDRNOTAVAIL, "cannot listen on %s port %d: %s", addr, port,
                             gai_strerror(gai));

    int rc = -EADDRNOTAVAIL, fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        rc = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return nba_error_set(err, rc, "cannot listen on %s port %d: %s", addr, port, strerror(-rc));

    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        rc = -errno;
        close(fd);
        return nba_error_set(err, rc, "getsockname: %s", strerror(-rc));
    }
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    format_addr((struct sockaddr *)&ss, len, s->where, sizeof s->where);

    s->listener = evconnlistener_new(s->base, on_accept, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!s->listener) {
        close(fd);
        return nba_error_set(err, -ENOMEM, "cannot create the listener");
    }
    evconnlistener_set_error_cb(s->listener, on_accept_error);
    return 0;
}

int server_new(const config *cfg, store_live *live, state *state, rules_live *rules,
               tls_context *tls, server **out, nba_error *err)
{
    int rc;
    *out = NULL;
    if (cfg->threads < 1 || cfg->threads > MAX_WORKERS)
        return nba_error_set(err, -EINVAL, "threads must be 1..%d, not %d", MAX_WORKERS,
                             cfg->threads);
    if (cfg->port < 0 || cfg->port > 65535 || !cfg->listen_addr)
        return nba_error_set(err, -EINVAL, "bad listen address or port");

    server *s = calloc(1, sizeof *s);
    if (!s)
        return nba_error_set(err, -ENOMEM, "out of memory");
    s->live = live;
    s->state = state;
    s->rules = rules;
    s->tls = tls;
    s->cfg = cfg;
    s->max_connections = cfg->max_connections > 0 ? (unsigned)cfg->max_connections : 1;
    atomic_init(&s->serving, 0);
    s->max_frame = cfg->max_frame ? cfg->max_frame : FRAME_DEFAULT_MAX;
    s->started_ns = clock_mono_ns();
    s->stop_fd = -1;
    /* Initialised first, so that server_free may always destroy them. */
    pthread_mutex_init(&s->start_lock, NULL);
    pthread_cond_init(&s->start_cond, NULL);
    s->start_ready = true;

    rc = -ENOMEM;
    s->base = event_base_new();
    if (!s->base) {
        nba_error_set(err, rc, "cannot create an event loop");
        goto fail;
    }
    rc = server_listen(s, cfg->listen_addr, cfg->port, err);
    if (rc)
        goto fail;

    s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->stop_fd < 0) {
        rc = nba_error_set(err, -errno, "eventfd: %s", strerror(errno));
        goto fail;
    }
    rc = -ENOMEM;
    s->stop_ev = event_new(s->base, s->stop_fd, EV_READ | EV_PERSIST, on_stop, s);
    s->accept_timer = evtimer_new(s->base, on_accept_resume, s);
    s->sigterm_ev = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sigint_ev = evsignal_new(s->base, SIGINT, on_signal, s);
    s->sighup_ev = evsignal_new(s->base, SIGHUP, on_reload_signal, s);
    if (!s->stop_ev || !s->accept_timer || !s->sigterm_ev || !s->sigint_ev || !s->sighup_ev ||
        event_add(s->stop_ev, NULL)) {
        nba_error_set(err, rc, "out of memory");
        goto fail;
    }
    /* The port takes connections already, and the caller says so once this
     * returns: from now on SIGTERM and SIGINT are a stop, taken when
     * server_run's loop starts, not the default death of a process that
     * has clients; SIGHUP a reload. server_run gives them back their usual
     * meaning when it stops, server_free when it never ran. */
    if (event_add(s->sigterm_ev, NULL) || event_add(s->sigint_ev, NULL) ||
        event_add(s->sighup_ev, NULL)) {
        rc = nba_error_set(err, -EIO, "cannot handle SIGTERM, SIGINT and SIGHUP");
        goto fail;
    }

    s->workers = calloc((size_t)cfg->threads, sizeof *s->workers);
    if (!s->workers) {
        nba_error_set(err, rc, "out of memory");
        goto fail;
    }
    s->n_workers = cfg->threads;
    for (int i = 0; i < s->n_workers; i++)
        s->workers[i].wake_fd = -1; /* for server_free, if an init below fails */
    for (int i = 0; i < s->n_workers; i++) {
        rc = worker_init(s, &s->workers[i], i, err);
        if (rc)
            goto fail;
    }
    if (state) {
        static const writer_ops ops = {
            .thread_start = writer_thread_start,
            .thread_stop = writer_thread_stop,
            .apply = writer_apply,
            .fail = writer_fail,
            .idle = writer_idle,
        };
        rc = writer_start(state, &ops, s, &s->writer, err);
        if (rc)
            goto fail;
    }
    rc = workers_start(s, err);
    if (rc)
        goto fail;

    log_debug("listening on %s with %d worker thread(s)", s->where, s->n_workers);
    s->cfg = NULL;
    *out = s;
    return 0;

fail:
    server_free(s);
    return rc;
}

int server_port(const server *s)
{
    return s->port;
}

int server_run(server *s)
{
    int rc = 0;
    if (event_base_dispatch(s->base) < 0)
        rc = -EIO;
    if (rc)
        log_error("the listener's event loop failed");

    /* Connections the kernel has completed but nbad has not accepted yet
     * carry requests that have reached this machine: they are drained
     * too. Then the port is closed, not just paused: a new client is
     * refused at once and goes to another nbad, rather than waiting in a
     * backlog no one will accept. */
    accept_backlog(s);
    evconnlistener_free(s->listener);
    s->listener = NULL;
    event_del(s->accept_timer);
    event_del(s->sighup_ev);
    event_del(s->sigint_ev);
    event_del(s->sigterm_ev);
    workers_stop_and_join(s);
    writer_stop_after_workers(s);

    uint64_t total = 0, requests = 0, refused = 0, idle = 0, tls_failed = 0;
    for (int i = 0; i < s->n_workers; i++) {
        const conn_stats *st = &s->workers[i].pool.stats;
        total += atomic_load_explicit(&st->connections_total, memory_order_relaxed);
        requests += atomic_load_explicit(&st->requests, memory_order_relaxed);
        refused += atomic_load_explicit(&st->connections_refused, memory_order_relaxed);
        idle += atomic_load_explicit(&st->connections_idle, memory_order_relaxed);
        tls_failed += atomic_load_explicit(&st->tls_failed, memory_order_relaxed);
    }
    log_info("stopped: %llu connection(s) served, %llu answer(s), %llu refused at "
             "max_connections, %llu closed idle, %llu failed TLS handshake(s)",
             (unsigned long long)total, (unsigned long long)requests, (unsigned long long)refused,
             (unsigned long long)idle, (unsigned long long)tls_failed);
    return rc;
}

void server_stop(server *s)
{
    uint64_t one = 1;
    /* A write to an eventfd is thread-safe and async-signal-safe. */
    ssize_t n = write(s->stop_fd, &one, sizeof one);
    (void)n;
}

void server_free(server *s)
{
    if (!s)
        return;
    if (s->workers) {
        workers_stop_and_join(s);
        writer_stop_after_workers(s);
        for (int i = s->n_workers - 1; i >= 0; i--)
            worker_destroy(&s->workers[i]);
        free(s->workers);
    }
    if (s->sighup_ev)
        event_free(s->sighup_ev);
    if (s->sigint_ev)
        event_free(s->sigint_ev);
    if (s->sigterm_ev)
        event_free(s->sigterm_ev);
    if (s->accept_timer)
        event_free(s->accept_timer);
    if (s->stop_ev)
        event_free(s->stop_ev);
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    if (s->listener)
        evconnlistener_free(s->listener);
    if (s->base)
        event_base_free(s->base);
    if (s->start_ready) {
        pthread_cond_destroy(&s->start_cond);
        pthread_mutex_destroy(&s->start_lock);
    }
    free(s);
}
