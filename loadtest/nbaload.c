/* nbaload - a load generator for the nbad protocol, loopback only.
 *
 *   nbaload [--host 127.0.0.1] [--port 7411] [--connections 50] [--pipeline 1]
 *           [--duration 10] [--requests N] [--rate R] [--warmup S] [--threads 1]
 *           [--customers 1000] [--skew S] [--unknown-ratio F] [--mix kiosk=50,...]
 *           [--touchpoints checkin=80,...] [--ping] [--pool N] [--seed N] [--json]
 *           [--protocol nba|resp] [--redis-script-sha SHA | --redis-function NAME]
 *
 * Each worker thread runs one epoll loop over its share of the connections.
 * Requests come from a pool encoded before the run (workload.h); responses
 * are scanned, not decoded (response_scan.h). Closed loop (no --rate): every
 * connection keeps --pipeline requests in flight and latency runs from the
 * moment a request is written. Open loop (--rate): every connection sends on
 * a fixed schedule and latency runs from the time a request was due, so a
 * stalled server is charged for the requests it kept the client from sending
 * (no coordinated omission).
 *
 * --protocol resp drives the Redis + Lua peer (loadtest/peers/redis/) with
 * the same pool: each request becomes an EVALSHA (or FCALL) of its script
 * (resp.h), replies are cut as RESP values and matched with requests by
 * order, which is all RESP offers; everything else (connections, pipelining,
 * schedule, histogram, report) is the same code for both protocols.
 *
 * Exit codes: 0 every request answered without error, 1 some errors, 64
 * usage, 69 nothing to connect to, 70 an internal failure.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "frame.h"
#include "histogram.h"
#include "resp.h"
#include "response_scan.h"
#include "workload.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_ERRORS = 1,
    EXIT_USAGE = 64,
    EXIT_UNAVAILABLE = 69,
    EXIT_SOFTWARE = 70,
};

#define NS_PER_S        1000000000ull
#define MAX_RESPONSE    (16u * 1024u * 1024u) /* larger frames mean a broken stream */
#define IN_BUFFER       16384u
#define RECONNECT_NS    (100ull * 1000 * 1000)
#define CONNECT_WAIT_NS (2ull * NS_PER_S)
#define POLL_CAP_MS     100 /* how late a worker may notice an interrupt */
#define MAX_EVENTS      256
#define UNBOUNDED       UINT64_MAX

typedef struct options {
    char host[256];
    int port;
    unsigned connections;
    unsigned pipeline;
    unsigned threads;
    uint64_t requests; /* measured requests to send, UNBOUNDED if not given */
    double duration;   /* measured seconds, after the warmup */
    double warmup;
    double rate;    /* requests/s over all connections; 0 = closed loop */
    double timeout; /* seconds to wait for answers before giving up */
    bool json;
    bool resp;                        /* --protocol resp: Redis + Lua peer */
    char redis_sha[RESP_SHA_LEN + 1]; /* the peer's script, for EVALSHA */
    char redis_function[129];         /* ... or its function, for FCALL */
    workload w;
} options;

/* Counters of one worker; summed at the end. Per-request outcomes count
 * measured requests only (sent after the warmup); connection failures count
 * whenever they happen. */
typedef struct counters {
    uint64_t sent, answered, warmup_sent;
    uint64_t decisions, known, with_actions, pongs;
    uint64_t err_response, err_mismatch, err_malformed, err_unanswered, err_connection;
} counters;

/* The life of a connection. Every change goes through conn_set_state(). */
typedef enum conn_state {
    CONN_IDLE,       /* no socket; reconnect at retry_at while the run sends */
    CONN_CONNECTING, /* non-blocking connect in progress, waiting for EPOLLOUT */
    CONN_OPEN,       /* sending requests and reading responses */
    CONN_CLOSED,     /* gone for good: the run no longer sends */
} conn_state;

static const char *const conn_state_names[] = {"idle", "connecting", "open", "closed"};

typedef struct conn {
    int fd;
    conn_state state;
    uint32_t number;     /* 0-based over all workers: request ids and send phase */
    uint64_t next_seq;   /* sequence number of the next request to send */
    uint64_t expect_seq; /* sequence number of the oldest request awaiting its answer */
    uint32_t inflight;
    uint64_t *start; /* start time of in-flight request seq, at [seq % pipeline] */
    uint8_t *out;    /* frames not yet written: out[out_off .. out_len) */
    size_t out_off, out_len;
    uint8_t *in; /* bytes read, not yet cut into frames */
    size_t in_len, in_cap;
    uint64_t due;      /* open loop: when the next request is due */
    uint64_t retry_at; /* CONN_IDLE: when to connect again */
    size_t pool_next;  /* next request of the pool to send */
    bool want_write;   /* EPOLLOUT is registered */
} conn;

typedef struct shared shared;

typedef struct worker {
    shared *sh;
    unsigned index;
    conn *conns;
    unsigned nconns;
    int epfd, tfd;
    uint64_t armed;    /* absolute time the timerfd is armed for, 0 = disarmed */
    uint64_t budget;   /* measured requests this worker may still send */
    uint64_t inflight; /* over all its connections */
    bool sending;
    uint64_t stopped_at;  /* when sending stopped */
    uint64_t drain_until; /* give up on missing answers after this */
    uint64_t last_answer; /* time of the last answer to a measured request */
    uint64_t last_progress;
    uint32_t open_at_start;
    unsigned idle;           /* connections in CONN_IDLE */
    char first_failure[160]; /* the first connection failure, for the report */
    char first_reason[96];   /* ... and just its reason */
    bool stalled;            /* the run ended because answers stopped coming */
    counters c;
    histogram hist;
    pthread_t tid;
} worker;

/* What every worker reads; written by main before the workers start, or
 * (t_start, abort) between the two barrier waits. */
struct shared {
    const options *opt;
    const request_pool *pool; /* nbad: request bodies; resp: whole commands */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    pthread_barrier_t barrier;
    uint64_t t_start;   /* start of the run (warmup included) */
    uint64_t t_measure; /* end of the warmup */
    uint64_t t_stop;    /* end of the measured duration */
    uint64_t interval;  /* open loop: ns between two requests of one connection */
    bool abort;
};

static atomic_int interrupted;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&interrupted, 1);
}

/* ---- connections ---- */

static void conn_set_state(worker *w, conn *c, conn_state s)
{
    /* The loop visits every connection only while some are idle. */
    w->idle += (s == CONN_IDLE) - (c->state == CONN_IDLE);
    c->state = s;
}

static uint64_t request_id(const worker *w, const conn *c, uint64_t seq)
{
    /* Unique over all connections, and small (a short varint) for short runs. */
    return seq * w->sh->opt->connections + c->number + 1;
}

static void watch(worker *w, conn *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(w->epfd, op, c->fd, &ev);
    c->want_write = (events & EPOLLOUT) != 0;
}

/* Forgets a connection: its unanswered requests are lost; it reconnects later
 * while the run still sends. why: what failed, or NULL at the end of the run
 * (not a failure). */
static void conn_drop(worker *w, conn *c, uint64_t now, const char *why)
{
    if (why) {
        w->c.err_connection++;
        if (!w->first_failure[0]) {
            snprintf(w->first_failure, sizeof w->first_failure, "connection %u (%s): %s", c->number,
                     conn_state_names[c->state], why);
            snprintf(w->first_reason, sizeof w->first_reason, "%s", why);
        }
    }
    if (c->fd >= 0) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    for (uint64_t seq = c->expect_seq; seq < c->next_seq; seq++)
        if (c->start[seq % w->sh->opt->pipeline] >= w->sh->t_measure)
            w->c.err_unanswered++;
    w->inflight -= c->inflight;
    c->inflight = 0;
    c->expect_seq = c->next_seq;
    c->out_off = c->out_len = 0;
    c->in_len = 0;
    c->want_write = false;
    c->retry_at = now + RECONNECT_NS;
    conn_set_state(w, c, w->sending ? CONN_IDLE : CONN_CLOSED);
}

/* Writes what is queued; registers for EPOLLOUT when the socket is full. */
static void conn_flush(worker *w, conn *c, uint64_t now)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_write)
                watch(w, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
            return;
        }
        conn_drop(w, c, now, n < 0 ? strerror(errno) : "send wrote nothing");
        return;
    }
    c->out_off = c->out_len = 0;
    if (c->want_write)
        watch(w, c, EPOLLIN, EPOLL_CTL_MOD);
}

/* Queues one request that started (or was due) at `start`. */
static void conn_queue(worker *w, conn *c, uint64_t start)
{
    const shared *sh = w->sh;
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_off > 0) { /* keep the unwritten tail at the front */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (w->inflight == 0)
        w->last_progress = clock_mono_ns(); /* the stall clock starts with the first request */
    uint64_t seq = c->next_seq++;
    if (sh->opt->resp) {
        const request_pool *p = sh->pool;
        size_t n = p->offset[c->pool_next + 1] - p->offset[c->pool_next];
        memcpy(c->out + c->out_len, p->bytes + p->offset[c->pool_next], n);
        c->out_len += n;
    } else {
        c->out_len +=
            workload_frame(sh->pool, c->pool_next, request_id(w, c, seq), c->out + c->out_len);
    }
    if (++c->pool_next == sh->pool->count)
        c->pool_next = 0;
    c->start[seq % sh->opt->pipeline] = start;
    c->inflight++;
    w->inflight++;
    if (start >= sh->t_measure) {
        w->c.sent++;
        if (w->budget != UNBOUNDED)
            w->budget--;
    } else {
        w->c.warmup_sent++;
    }
}

static bool may_send(const worker *w)
{
    return w->sending && w->budget > 0;
}

/* Closed loop: top the connection up to --pipeline requests in flight. */
static void conn_fill(worker *w, conn *c, uint64_t now)
{
    bool queued = false;
    while (c->inflight < w->sh->opt->pipeline && may_send(w)) {
        conn_queue(w, c, now);
        queued = true;
    }
    if (queued)
        conn_flush(w, c, now);
}

/* Open loop: send every request that is due, as far as --pipeline allows.
 * A request sent late keeps its due time as its start, and one due before
 * the end of the run is sent even when the end has passed, so the run sends
 * exactly what the schedule holds. */
static void conn_send_due(worker *w, conn *c, uint64_t now)
{
    bool queued = false;
    while (c->due <= now && c->due < w->sh->t_stop && c->inflight < w->sh->opt->pipeline &&
           may_send(w)) {
        conn_queue(w, c, c->due);
        c->due += w->sh->interval;
        queued = true;
    }
    if (queued)
        conn_flush(w, c, now);
}

static void conn_opened(worker *w, conn *c, uint64_t now)
{
    conn_set_state(w, c, CONN_OPEN);
    watch(w, c, EPOLLIN, EPOLL_CTL_MOD);
    if (w->sh->opt->rate > 0)
        conn_send_due(w, c, now);
    else
        conn_fill(w, c, now);
}

static void conn_connect(worker *w, conn *c, uint64_t now)
{
    const shared *sh = w->sh;
    c->fd = socket(sh->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_drop(w, c, now, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(c->fd, (const struct sockaddr *)&sh->addr, sh->addr_len);
    if (rc != 0 && errno != EINPROGRESS) {
        conn_drop(w, c, now, strerror(errno));
        return;
    }
    conn_set_state(w, c, CONN_CONNECTING);
    watch(w, c, EPOLLOUT, EPOLL_CTL_ADD);
    if (rc == 0)
        conn_opened(w, c, now);
}

static void conn_connect_done(worker *w, conn *c, uint64_t now)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
    if (soerr != 0) {
        conn_drop(w, c, now, strerror(soerr));
        return;
    }
    conn_opened(w, c, now);
}

/* One answer arrived: matches it with the oldest request in flight. Returns
 * false for an answer nobody asked for; else *measured tells whether the
 * request counts (sent after the warmup), with its sequence number and start. */
static bool conn_settle(worker *w, conn *c, uint64_t now, bool *measured, uint64_t *seq,
                        uint64_t *start)
{
    const shared *sh = w->sh;
    if (c->inflight == 0) {
        /* An answer nobody asked for: the stream can no longer be trusted. */
        w->c.err_mismatch++;
        return false;
    }
    *seq = c->expect_seq++;
    *start = c->start[*seq % sh->opt->pipeline];
    c->inflight--;
    w->inflight--;
    w->last_progress = now;
    *measured = *start >= sh->t_measure;
    if (*measured) {
        w->c.answered++;
        w->last_answer = now;
    }
    return true;
}

/* Counts a measured answer by its kind and records its latency. */
static void count_answer(worker *w, const response_info *info, uint64_t start, uint64_t now)
{
    switch (info->kind) {
    case RESPONSE_DECISION:
        w->c.decisions++;
        w->c.known += info->known != 0;
        w->c.with_actions += info->actions > 0;
        break;
    case RESPONSE_PONG:
        w->c.pongs++;
        break;
    case RESPONSE_ERROR:
        w->c.err_response++;
        return;
    case RESPONSE_NONE:
        w->c.err_malformed++;
        return;
    }
    histogram_record(&w->hist, now > start ? now - start : 0);
}

/* One response frame of nbad's protocol. */
static bool conn_answer(worker *w, conn *c, const uint8_t *body, uint32_t len, uint64_t now)
{
    bool measured;
    uint64_t seq, start;
    if (!conn_settle(w, c, now, &measured, &seq, &start))
        return false;
    if (!measured)
        return true;
    response_info info;
    if (response_scan(body, len, &info) != 0) {
        w->c.err_malformed++;
        return true;
    }
    if (info.id != request_id(w, c, seq)) {
        w->c.err_mismatch++;
        return true;
    }
    count_answer(w, &info, start, now);
    return true;
}

/* One whole RESP reply: answers come in request order and carry no id. */
static bool conn_answer_resp(worker *w, conn *c, const uint8_t *buf, const resp_value *v,
                             uint64_t now)
{
    bool measured;
    uint64_t seq, start;
    if (!conn_settle(w, c, now, &measured, &seq, &start))
        return false;
    if (measured) {
        response_info info;
        resp_decision(buf, v, &info);
        count_answer(w, &info, start, now);
    }
    return true;
}

/* Cuts the RESP replies in c->in and answers them. Returns false when the
 * connection was dropped. */
static bool conn_cut_resp(worker *w, conn *c, uint64_t now)
{
    size_t pos = 0;
    for (;;) {
        resp_value v;
        resp_status st = resp_cut(c->in + pos, c->in_len - pos, MAX_RESPONSE, &v);
        if (st == RESP_MALFORMED) {
            w->c.err_malformed++;
            conn_drop(w, c, now, "a reply that is not RESP2 or above 16 MiB");
            return false;
        }
        if (st == RESP_INCOMPLETE)
            break;
        if (!conn_answer_resp(w, c, c->in + pos, &v, now)) {
            conn_drop(w, c, now, "an answer to no request");
            return false;
        }
        pos += v.len;
    }
    if (pos > 0) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    /* A reply longer than the buffer: make room (RESP says no size ahead). */
    if (c->in_len == c->in_cap) {
        uint8_t *bigger = realloc(c->in, c->in_cap * 2);
        if (!bigger) {
            conn_drop(w, c, now, "out of memory");
            return false;
        }
        c->in = bigger;
        c->in_cap *= 2;
    }
    return true;
}

/* Cuts the frames of nbad's protocol in c->in and answers them. Returns
 * false when the connection was dropped. */
static bool conn_cut_frames(worker *w, conn *c, uint64_t now)
{
    size_t pos = 0;
    for (;;) {
        uint32_t body_len = 0;
        frame_status st = frame_cut(c->in + pos, c->in_len - pos, MAX_RESPONSE, &body_len);
        if (st == FRAME_TOO_LARGE) {
            w->c.err_malformed++;
            conn_drop(w, c, now, "a response frame above 16 MiB");
            return false;
        }
        if (st == FRAME_INCOMPLETE)
            break;
        if (!conn_answer(w, c, c->in + pos + FRAME_HEADER_SIZE, body_len, now)) {
            conn_drop(w, c, now, "an answer to no request");
            return false;
        }
        pos += FRAME_HEADER_SIZE + body_len;
    }
    if (pos > 0) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    /* Make room for a frame larger than the buffer. */
    if (c->in_len >= FRAME_HEADER_SIZE) {
        size_t need = FRAME_HEADER_SIZE + frame_get_length(c->in);
        if (need > c->in_cap) {
            uint8_t *bigger = realloc(c->in, need);
            if (!bigger) {
                conn_drop(w, c, now, "out of memory");
                return false;
            }
            c->in = bigger;
            c->in_cap = need;
        }
    }
    return true;
}

static void conn_read(worker *w, conn *c)
{
    if (c->in_len == c->in_cap) {
        conn_drop(w, c, clock_mono_ns(), "receive buffer full");
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    uint64_t now = clock_mono_ns(); /* one receive time for the whole batch */
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        conn_drop(w, c, now, n == 0 ? "closed by the server" : strerror(errno));
        return;
    }
    c->in_len += (size_t)n;
    if (!(w->sh->opt->resp ? conn_cut_resp(w, c, now) : conn_cut_frames(w, c, now)))
        return;
    if (w->sh->opt->rate > 0)
        conn_send_due(w, c, now);
    else
        conn_fill(w, c, now);
}

static void conn_event(worker *w, conn *c, uint32_t events)
{
    uint64_t now = clock_mono_ns();
    if (c->state == CONN_CONNECTING) {
        conn_connect_done(w, c, now);
        return;
    }
    if (c->state != CONN_OPEN)
        return;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(w, c);
    if (c->state == CONN_OPEN && (events & EPOLLOUT))
        conn_flush(w, c, now);
}

/* ---- a worker's event loop ---- */

static int worker_init(worker *w)
{
    const options *opt = w->sh->opt;
    histogram_init(&w->hist);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->epfd < 0 || w->tfd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tfd, &ev) != 0)
        return -errno;
    for (unsigned i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        c->fd = -1;
        c->state = CONN_IDLE;
        w->idle++;
        c->start = calloc(opt->pipeline, sizeof *c->start);
        c->out = malloc(opt->pipeline * w->sh->pool->max_frame);
        c->in = malloc(IN_BUFFER);
        c->in_cap = IN_BUFFER;
        if (!c->start || !c->out || !c->in)
            return -ENOMEM;
        /* Spread the connections over the pool, so they do not all ask for
         * the same customer at the same moment. */
        c->pool_next = (size_t)((uint64_t)c->number * w->sh->pool->count / opt->connections);
    }
    return 0;
}

static void worker_free(worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->start);
        free(c->out);
        free(c->in);
    }
    if (w->tfd >= 0)
        close(w->tfd);
    if (w->epfd >= 0)
        close(w->epfd);
}

static void arm_timer(worker *w, uint64_t at)
{
    if (at == w->armed)
        return;
    struct itimerspec its = {0};
    if (at != 0) {
        its.it_value.tv_sec = (time_t)(at / NS_PER_S);
        its.it_value.tv_nsec = (long)(at % NS_PER_S);
    }
    timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    w->armed = at;
}

static void poll_once(worker *w, int timeout_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout_ms);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL) {
            uint64_t expirations;
            if (read(w->tfd, &expirations, sizeof expirations) < 0)
                continue;
            w->armed = 0;
            continue;
        }
        conn_event(w, evs[i].data.ptr, evs[i].events);
    }
}

/* Connects every connection before the clock starts, so connection setup is
 * not charged to the first requests. */
static void worker_connect_all(worker *w)
{
    uint64_t now = clock_mono_ns();
    w->sending = true; /* a failed connect is retried once the run starts */
    for (unsigned i = 0; i < w->nconns; i++)
        conn_connect(w, &w->conns[i], now);
    w->budget = 0; /* nothing is sent before the start */
    uint64_t deadline = now + CONNECT_WAIT_NS;
    for (;;) {
        unsigned pending = 0;
        for (unsigned i = 0; i < w->nconns; i++)
            pending += w->conns[i].state == CONN_CONNECTING;
        if (pending == 0 || clock_mono_ns() >= deadline || atomic_load(&interrupted))
            break;
        poll_once(w, 10);
    }
    for (unsigned i = 0; i < w->nconns; i++)
        w->open_at_start += w->conns[i].state == CONN_OPEN;
}

/* Open loop: does some open connection still have requests due before the
 * end of the run? */
static bool schedule_left(const worker *w)
{
    if (w->sh->opt->rate == 0 || w->budget == 0)
        return false;
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].state == CONN_OPEN && w->conns[i].due < w->sh->t_stop)
            return true;
    return false;
}

static uint64_t next_wakeup(worker *w, uint64_t now)
{
    const options *opt = w->sh->opt;
    uint64_t next = w->drain_until;
    if (w->sending)
        /* past the end, the open loop waits for answers that free a slot */
        next = w->sh->t_stop > now ? w->sh->t_stop : UINT64_MAX;
    if (opt->rate == 0 && w->idle == 0)
        return next;
    for (unsigned i = 0; i < w->nconns; i++) {
        const conn *c = &w->conns[i];
        if (c->state == CONN_IDLE && w->sending && c->retry_at < next)
            next = c->retry_at;
        else if (opt->rate > 0 && c->state == CONN_OPEN && c->inflight < opt->pipeline &&
                 may_send(w) && c->due < w->sh->t_stop && c->due < next)
            next = c->due;
    }
    return next;
}

/* Ends the sending phase; answers still in flight are awaited drain_ns. */
static void stop_sending(worker *w, uint64_t now, uint64_t drain_ns)
{
    w->sending = false;
    w->stopped_at = now;
    w->drain_until = now + drain_ns;
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].state == CONN_IDLE)
            conn_set_state(w, &w->conns[i], CONN_CLOSED);
}

static void worker_run(worker *w)
{
    const shared *sh = w->sh;
    const options *opt = sh->opt;
    uint64_t stall_ns = (uint64_t)(opt->timeout * NS_PER_S);
    w->last_progress = sh->t_start;
    for (unsigned i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        /* Open loop: stagger the connections evenly over one interval. */
        c->due = sh->t_start + sh->interval * c->number / opt->connections;
        c->retry_at = sh->t_start;
    }
    bool fill = true; /* closed loop: connections opened before the start are empty */
    for (;;) {
        uint64_t now = clock_mono_ns();
        if (w->sending && ((now >= sh->t_stop && !schedule_left(w)) || w->budget == 0 ||
                           atomic_load(&interrupted)))
            stop_sending(w, now, stall_ns);
        /* A server that stops answering altogether ends the run at once. */
        if (w->sending && w->inflight > 0 && now > w->last_progress + stall_ns) {
            w->stalled = true;
            stop_sending(w, now, 0);
        }
        if (!w->sending && (w->inflight == 0 || now >= w->drain_until))
            break;

        /* Visit every connection when the open loop has sends due, some
         * connection waits to reconnect, or at the start; otherwise the
         * closed loop is driven by answers alone. */
        if (w->sending && (opt->rate > 0 || w->idle > 0 || fill)) {
            fill = false;
            for (unsigned i = 0; i < w->nconns; i++) {
                conn *c = &w->conns[i];
                if (c->state == CONN_IDLE && c->retry_at <= now)
                    conn_connect(w, c, now);
                else if (opt->rate > 0 && c->state == CONN_OPEN)
                    conn_send_due(w, c, now);
                else if (opt->rate == 0 && c->state == CONN_OPEN && c->inflight == 0)
                    conn_fill(w, c, now);
            }
        }
        now = clock_mono_ns();
        uint64_t next = next_wakeup(w, now);
        if (next <= now) {
            poll_once(w, 0);
            continue;
        }
        arm_timer(w, next == UINT64_MAX ? 0 : next);
        poll_once(w, POLL_CAP_MS);
    }
    /* What is still in flight now will never be counted as answered. */
    uint64_t now = clock_mono_ns();
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].fd >= 0)
            conn_drop(w, &w->conns[i], now, NULL);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    /* Sub-microsecond timer slack: the open loop's send times are the point. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    worker_connect_all(w);
    pthread_barrier_wait(&sh->barrier); /* everyone connected */
    pthread_barrier_wait(&sh->barrier); /* main has set the clock */
    if (sh->abort)
        return NULL;
    w->budget = UNBOUNDED;
    if (sh->opt->requests != UNBOUNDED) {
        /* Share the request budget out over the workers. */
        unsigned t = sh->opt->threads;
        w->budget = sh->opt->requests / t + (w->index < sh->opt->requests % t);
    }
    worker_run(w);
    return NULL;
}

/* ---- the report ---- */

typedef struct result {
    counters c;
    histogram hist;
    double window_s;
    bool stalled;
} result;

static void counters_add(counters *sum, const counters *c)
{
    sum->sent += c->sent;
    sum->answered += c->answered;
    sum->warmup_sent += c->warmup_sent;
    sum->decisions += c->decisions;
    sum->known += c->known;
    sum->with_actions += c->with_actions;
    sum->pongs += c->pongs;
    sum->err_response += c->err_response;
    sum->err_mismatch += c->err_mismatch;
    sum->err_malformed += c->err_malformed;
    sum->err_unanswered += c->err_unanswered;
    sum->err_connection += c->err_connection;
}

static uint64_t errors_total(const counters *c)
{
    return c->err_response + c->err_mismatch + c->err_malformed + c->err_unanswered +
           c->err_connection;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

/* Rounds x to `decimals` places, so JSON shows 123.4 rather than
 * 123.40000000000001. */
static double rounded(double x, int decimals)
{
    double scale = pow(10, decimals);
    return round(x * scale) / scale;
}

static void print_human(const options *opt, const result *r)
{
    const counters *c = &r->c;
    const histogram *h = &r->hist;
    char mix[256];
    workload_describe_mix(&opt->w, mix, sizeof mix);

    printf("nbaload %s:%d, %u connections x pipeline %u, %u thread%s, ", opt->host, opt->port,
           opt->connections, opt->pipeline, opt->threads, opt->threads == 1 ? "" : "s");
    if (opt->rate > 0)
        printf("open loop at %.0f requests/s\n", opt->rate);
    else
        printf("closed loop\n");
    if (opt->resp)
        printf("protocol   Redis (RESP2): %s\n", opt->w.ping ? "PING"
                                                 : opt->redis_function[0]
                                                     ? "FCALL of the peer's checkin.lua"
                                                     : "EVALSHA of the peer's checkin.lua");
    if (opt->w.ping)
        printf("workload   ping\n");
    else
        printf("workload   %llu customers, skew %.2f, unknown %.1f%%, %s, pool %zu\n",
               (unsigned long long)opt->w.customers, opt->w.skew, 100 * opt->w.unknown_ratio, mix,
               opt->w.pool_size);
    printf("requests   %llu sent, %llu answered", (unsigned long long)c->sent,
           (unsigned long long)c->answered);
    if (c->warmup_sent)
        printf(" (and %llu in %.1f s of warmup, not counted)", (unsigned long long)c->warmup_sent,
               opt->warmup);
    printf("\n");
    if (opt->w.ping)
        printf("answers    %llu pongs\n", (unsigned long long)c->pongs);
    else
        printf("answers    %llu decisions: %llu known customers, %llu with actions\n",
               (unsigned long long)c->decisions, (unsigned long long)c->known,
               (unsigned long long)c->with_actions);
    printf("errors     %llu", (unsigned long long)errors_total(c));
    if (errors_total(c))
        printf(" (error answers %llu, wrong ids %llu, malformed %llu, unanswered %llu, "
               "connection failures %llu)",
               (unsigned long long)c->err_response, (unsigned long long)c->err_mismatch,
               (unsigned long long)c->err_malformed, (unsigned long long)c->err_unanswered,
               (unsigned long long)c->err_connection);
    printf("\n");
    printf("throughput %.0f answers/s over %.2f s\n",
           r->window_s > 0 ? (double)c->answered / r->window_s : 0.0, r->window_s);
    printf("latency    p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f us"
           "  (%llu samples)\n",
           us(histogram_percentile(h, 50)), us(histogram_percentile(h, 90)),
           us(histogram_percentile(h, 99)), us(histogram_percentile(h, 99.9)), us(histogram_max(h)),
           histogram_mean(h) / 1000.0, (unsigned long long)histogram_count(h));
    if (r->stalled)
        printf("stalled:   no answer came for %.1f s (--timeout), so the run was cut short\n",
               opt->timeout);
    if (atomic_load(&interrupted))
        printf("interrupted: the numbers cover the run up to the interrupt\n");
}

static int print_json(const options *opt, const result *r)
{
    const counters *c = &r->c;
    const histogram *h = &r->hist;
    char mix[256];
    workload_describe_mix(&opt->w, mix, sizeof mix);
    double rps = r->window_s > 0 ? (double)c->answered / r->window_s : 0.0;

    json_t *requests = json_pack("{s:I, s:I, s:I}", "sent", (json_int_t)c->sent, "answered",
                                 (json_int_t)c->answered, "warmup", (json_int_t)c->warmup_sent);
    json_t *errors = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)errors_total(c), "response",
        (json_int_t)c->err_response, "mismatched_id", (json_int_t)c->err_mismatch, "malformed",
        (json_int_t)c->err_malformed, "unanswered", (json_int_t)c->err_unanswered, "connection",
        (json_int_t)c->err_connection);
    json_t *answers = json_pack("{s:I, s:I, s:I, s:I}", "decisions", (json_int_t)c->decisions,
                                "known", (json_int_t)c->known, "with_actions",
                                (json_int_t)c->with_actions, "pongs", (json_int_t)c->pongs);
    json_t *latency = json_pack(
        "{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I}", "p50",
        rounded(us(histogram_percentile(h, 50)), 1), "p90",
        rounded(us(histogram_percentile(h, 90)), 1), "p99",
        rounded(us(histogram_percentile(h, 99)), 1), "p999",
        rounded(us(histogram_percentile(h, 99.9)), 1), "max", rounded(us(histogram_max(h)), 1),
        "mean", rounded(histogram_mean(h) / 1000.0, 1), "min", rounded(us(histogram_min(h)), 1),
        "samples", (json_int_t)histogram_count(h));
    json_t *config = json_pack(
        "{s:s, s:i, s:i, s:i, s:i, s:s, s:f, s:f, s:f, s:f, s:b, s:I, s:s, s:i, s:f, s:f, s:s, "
        "s:I, s:I}",
        "host", opt->host, "port", opt->port, "connections", (int)opt->connections, "pipeline",
        (int)opt->pipeline, "threads", (int)opt->threads, "mode", opt->rate > 0 ? "open" : "closed",
        "rate", opt->rate, "duration_s", opt->duration, "warmup_s", opt->warmup, "timeout_s",
        opt->timeout, "ping", opt->w.ping, "customers", (json_int_t)opt->w.customers, "id_prefix",
        opt->w.id_prefix, "id_width", workload_id_width(&opt->w), "skew", opt->w.skew,
        "unknown_ratio", opt->w.unknown_ratio, "mix", mix, "pool", (json_int_t)opt->w.pool_size,
        "seed", (json_int_t)opt->w.seed);
    /* json_pack "o" steals the references, also on failure. */
    json_t *root =
        json_pack("{s:o*, s:o*, s:o*, s:f, s:f, s:o*, s:b, s:b, s:o*}", "requests", requests,
                  "errors", errors, "answers", answers, "duration_s", rounded(r->window_s, 3),
                  "throughput_rps", rounded(rps, 1), "latency_us", latency, "interrupted",
                  atomic_load(&interrupted) != 0, "stalled", r->stalled, "config", config);
    if (!root || !requests || !errors || !answers || !latency || !config) {
        json_decref(root);
        return -ENOMEM;
    }
    json_object_set_new(config, "protocol", json_string(opt->resp ? "resp" : "nba"));
    if (opt->resp && !opt->w.ping && opt->redis_function[0])
        json_object_set_new(config, "redis_function", json_string(opt->redis_function));
    else if (opt->resp && !opt->w.ping)
        json_object_set_new(config, "redis_script_sha", json_string(opt->redis_sha));
    json_object_set_new(config, "requests",
                        opt->requests != UNBOUNDED ? json_integer((json_int_t)opt->requests)
                                                   : json_null());
    if (opt->w.touchpoints.count) {
        json_t *tp = json_object();
        for (unsigned i = 0; i < opt->w.touchpoints.count; i++)
            json_object_set_new(tp, opt->w.touchpoints.names[i],
                                json_integer(opt->w.touchpoints.weights[i]));
        json_object_set_new(config, "touchpoints", tp);
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(root);
    if (!text)
        return -ENOMEM;
    puts(text);
    free(text);
    return 0;
}

/* ---- options ---- */

static const char usage_text[] =
    "usage: nbaload [options]\n"
    "Load generator for nbad (and any server speaking its protocol), loopback only.\n"
    "\n"
    "target and shape of the load:\n"
    "  --host ADDR          127.0.0.1 (only 127.0.0.0/8 and ::1 are accepted)\n"
    "  --port N             7411\n"
    "  --connections N      50\n"
    "  --pipeline D         requests in flight per connection, 1\n"
    "  --threads T          client threads, 1\n"
    "  --rate R             open loop: R requests/s in total, on a fixed schedule,\n"
    "                       latency from the scheduled time; default: closed loop\n"
    "bounds (the run stops at whichever comes first):\n"
    "  --duration S         measured seconds, 10 unless only --requests is given\n"
    "  --requests N         measured requests to send\n"
    "  --warmup S           seconds of load before measuring, 0\n"
    "  --timeout S          seconds to wait for missing answers, 5\n"
    "what is sent:\n"
    "  --customers N        customer ids 1..N as nbagen writes them, 1000\n"
    "  --id-prefix P        C\n"
    "  --id-width W         digits of an id, 7 (more when N needs them)\n"
    "  --skew S             Zipf exponent of customer popularity, 0 = uniform, 0.99\n"
    "  --unknown-ratio F    fraction of ids that are no customer, 0.02\n"
    "  --mix LIST           channels, kiosk=50,desk=30,ivr=20\n"
    "  --touchpoints LIST   touchpoints for every channel, e.g. checkin=80,boarding=20;\n"
    "                       default: per channel (kiosk mostly checkin, ivr mostly call)\n"
    "  --ping               send Ping instead of contact events (the protocol floor)\n"
    "  --each-once          every customer once, in random order, none twice (with\n"
    "                       --requests <= --customers): decisions that write\n"
    "  --pool N             distinct pre-encoded requests, 65536\n"
    "  --seed N             1\n"
    "  --protocol P         nba (nbad's frames) or resp (the Redis + Lua peer), nba\n"
    "  --redis-script-sha S resp: the SHA1 of the loaded checkin.lua, for EVALSHA\n"
    "  --redis-function F   resp: or the function it was loaded as, for FCALL\n"
    "output:\n"
    "  --json               one JSON object instead of the human report\n";

static int usage(const char *fmt, const char *arg)
{
    if (fmt) {
        fputs("nbaload: ", stderr);
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
    }
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static bool parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*text == '\0' || *text == '-' || *end != '\0' || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *text, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*text == '\0' || *end != '\0' || errno || !(v >= min && v <= max))
        return false;
    *out = v;
    return true;
}

/* Loopback only: this tool can saturate what it points at. */
static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

/* Resolves host; every address it names must be a loopback address. */
static int resolve_loopback(const options *opt, shared *sh, nba_error *err)
{
    char service[16];
    snprintf(service, sizeof service, "%d", opt->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(opt->host, service, &hints, &res);
    if (gai != 0)
        return nba_error_set(err, -EINVAL, "%s: %s", opt->host, gai_strerror(gai));
    int rc = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (!is_loopback(ai->ai_addr)) {
            rc = nba_error_set(err, -EINVAL,
                               "%s is not a loopback address: nbaload only targets 127.0.0.0/8 "
                               "and ::1",
                               opt->host);
            break;
        }
    }
    if (rc == 0) {
        memcpy(&sh->addr, res->ai_addr, res->ai_addrlen);
        sh->addr_len = res->ai_addrlen;
    }
    freeaddrinfo(res);
    return rc;
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_CONNECTIONS,
    OPT_PIPELINE,
    OPT_THREADS,
    OPT_RATE,
    OPT_DURATION,
    OPT_REQUESTS,
    OPT_WARMUP,
    OPT_TIMEOUT,
    OPT_CUSTOMERS,
    OPT_ID_PREFIX,
    OPT_ID_WIDTH,
    OPT_SKEW,
    OPT_UNKNOWN,
    OPT_MIX,
    OPT_TOUCHPOINTS,
    OPT_PING,
    OPT_EACH_ONCE,
    OPT_POOL,
    OPT_SEED,
    OPT_JSON,
    OPT_PROTOCOL,
    OPT_REDIS_SHA,
    OPT_REDIS_FUNCTION,
    OPT_HELP,
};

static int parse_options(int argc, char **argv, options *opt)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"connections", required_argument, NULL, OPT_CONNECTIONS},
        {"pipeline", required_argument, NULL, OPT_PIPELINE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"rate", required_argument, NULL, OPT_RATE},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"requests", required_argument, NULL, OPT_REQUESTS},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"customers", required_argument, NULL, OPT_CUSTOMERS},
        {"id-prefix", required_argument, NULL, OPT_ID_PREFIX},
        {"id-width", required_argument, NULL, OPT_ID_WIDTH},
        {"skew", required_argument, NULL, OPT_SKEW},
        {"unknown-ratio", required_argument, NULL, OPT_UNKNOWN},
        {"mix", required_argument, NULL, OPT_MIX},
        {"touchpoints", required_argument, NULL, OPT_TOUCHPOINTS},
        {"ping", no_argument, NULL, OPT_PING},
        {"each-once", no_argument, NULL, OPT_EACH_ONCE},
        {"pool", required_argument, NULL, OPT_POOL},
        {"seed", required_argument, NULL, OPT_SEED},
        {"json", no_argument, NULL, OPT_JSON},
        {"protocol", required_argument, NULL, OPT_PROTOCOL},
        {"redis-script-sha", required_argument, NULL, OPT_REDIS_SHA},
        {"redis-function", required_argument, NULL, OPT_REDIS_FUNCTION},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    *opt = (options){0};
    snprintf(opt->host, sizeof opt->host, "127.0.0.1");
    opt->port = 7411;
    opt->connections = 50;
    opt->pipeline = 1;
    opt->threads = 1;
    opt->requests = UNBOUNDED;
    opt->duration = 0; /* decided after parsing */
    opt->timeout = 5;
    workload_defaults(&opt->w);
    opt->w.skew = 0.99;
    opt->w.unknown_ratio = 0.02;

    nba_error err;
    uint64_t u;
    int o;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case OPT_HOST:
            if (snprintf(opt->host, sizeof opt->host, "%s", optarg) >= (int)sizeof opt->host)
                return usage("--host %s is too long", optarg);
            break;
        case OPT_PORT:
            if (!parse_u64(optarg, 1, 65535, &u))
                return usage("--port takes 1..65535, not %s", optarg);
            opt->port = (int)u;
            break;
        case OPT_CONNECTIONS:
            if (!parse_u64(optarg, 1, 100000, &u))
                return usage("--connections takes 1..100000, not %s", optarg);
            opt->connections = (unsigned)u;
            break;
        case OPT_PIPELINE:
            if (!parse_u64(optarg, 1, 4096, &u))
                return usage("--pipeline takes 1..4096, not %s", optarg);
            opt->pipeline = (unsigned)u;
            break;
        case OPT_THREADS:
            if (!parse_u64(optarg, 1, 256, &u))
                return usage("--threads takes 1..256, not %s", optarg);
            opt->threads = (unsigned)u;
            break;
        case OPT_RATE:
            if (!parse_double(optarg, 0, 1e9, &opt->rate))
                return usage("--rate takes requests per second, not %s", optarg);
            break;
        case OPT_DURATION:
            if (!parse_double(optarg, 0.001, 86400, &opt->duration))
                return usage("--duration takes seconds (0.001..86400), not %s", optarg);
            break;
        case OPT_REQUESTS:
            if (!parse_u64(optarg, 1, UINT64_MAX - 1, &opt->requests))
                return usage("--requests takes a positive count, not %s", optarg);
            break;
        case OPT_WARMUP:
            if (!parse_double(optarg, 0, 3600, &opt->warmup))
                return usage("--warmup takes seconds (0..3600), not %s", optarg);
            break;
        case OPT_TIMEOUT:
            if (!parse_double(optarg, 0.001, 3600, &opt->timeout))
                return usage("--timeout takes seconds (0.001..3600), not %s", optarg);
            break;
        case OPT_CUSTOMERS:
            if (!parse_u64(optarg, 1, UINT64_C(1000000000000), &opt->w.customers))
                return usage("--customers takes a positive count, not %s", optarg);
            break;
        case OPT_ID_PREFIX:
            if (snprintf(opt->w.id_prefix, sizeof opt->w.id_prefix, "%s", optarg) >=
                (int)sizeof opt->w.id_prefix)
                return usage("--id-prefix %s is too long", optarg);
            break;
        case OPT_ID_WIDTH:
            if (!parse_u64(optarg, 1, 20, &u))
                return usage("--id-width takes 1..20, not %s", optarg);
            opt->w.id_width = (int)u;
            break;
        case OPT_SKEW:
            if (!parse_double(optarg, 0, 10, &opt->w.skew))
                return usage("--skew takes an exponent 0..10, not %s", optarg);
            break;
        case OPT_UNKNOWN:
            if (!parse_double(optarg, 0, 1, &opt->w.unknown_ratio))
                return usage("--unknown-ratio takes a fraction 0..1, not %s", optarg);
            break;
        case OPT_MIX:
            if (workload_parse_mix(&opt->w, optarg, &err) != 0)
                return usage("%s", err.msg);
            break;
        case OPT_TOUCHPOINTS:
            if (workload_parse_touchpoints(&opt->w, optarg, &err) != 0)
                return usage("%s", err.msg);
            break;
        case OPT_EACH_ONCE:
            opt->w.each_once = 1;
            break;
        case OPT_PING:
            opt->w.ping = 1;
            break;
        case OPT_POOL:
            if (!parse_u64(optarg, 1, 16u * 1024 * 1024, &u))
                return usage("--pool takes 1..16777216, not %s", optarg);
            opt->w.pool_size = (size_t)u;
            break;
        case OPT_SEED:
            if (!parse_u64(optarg, 0, UINT64_MAX, &opt->w.seed))
                return usage("--seed takes a number, not %s", optarg);
            break;
        case OPT_JSON:
            opt->json = true;
            break;
        case OPT_PROTOCOL:
            if (strcmp(optarg, "nba") != 0 && strcmp(optarg, "resp") != 0)
                return usage("--protocol takes nba or resp, not %s", optarg);
            opt->resp = strcmp(optarg, "resp") == 0;
            break;
        case OPT_REDIS_SHA:
            if (snprintf(opt->redis_sha, sizeof opt->redis_sha, "%s", optarg) != RESP_SHA_LEN)
                return usage("--redis-script-sha takes the 40 hex digits of a SHA1, not %s",
                             optarg);
            break;
        case OPT_REDIS_FUNCTION:
            if (snprintf(opt->redis_function, sizeof opt->redis_function, "%s", optarg) >=
                    (int)sizeof opt->redis_function ||
                !optarg[0])
                return usage("--redis-function takes a function name, not \"%s\"", optarg);
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            exit(EXIT_OK);
        default:
            return usage(NULL, NULL);
        }
    }
    if (optind < argc)
        return usage("unexpected argument %s", argv[optind]);
    if (opt->duration == 0)
        /* Bounded either way: --requests alone still stops after an hour. */
        opt->duration = opt->requests == UNBOUNDED ? 10 : 3600;
    if (opt->threads > opt->connections)
        opt->threads = opt->connections;
    if (opt->resp && !opt->w.ping && !opt->redis_sha[0] && !opt->redis_function[0])
        return usage("--protocol resp needs --redis-script-sha or --redis-function%s", "");
    if (opt->redis_sha[0] && opt->redis_function[0])
        return usage("--redis-script-sha or --redis-function, not both%s", "");
    if (opt->resp && !opt->redis_sha[0] && !opt->redis_function[0]) /* PING names no script */
        memset(opt->redis_sha, '0', RESP_SHA_LEN);
    return 0;
}

/* ---- main ---- */

static void raise_fd_limit(unsigned connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)connections + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv)
{
    options opt;
    int code = parse_options(argc, argv, &opt);
    if (code)
        return code;

    shared sh = {.opt = &opt};
    nba_error err;
    if (resolve_loopback(&opt, &sh, &err) != 0) {
        fprintf(stderr, "nbaload: %s\n", err.msg);
        return EXIT_USAGE;
    }
    request_pool pool;
    if (workload_build(&opt.w, &pool, &err) != 0) {
        fprintf(stderr, "nbaload: %s\n", err.msg);
        return EXIT_USAGE;
    }
    sh.pool = &pool;
    request_pool commands = {0};
    if (opt.resp) {
        bool fcall = opt.redis_function[0] != '\0';
        if (resp_pool_build(&pool, fcall ? "FCALL" : "EVALSHA",
                            fcall ? opt.redis_function : opt.redis_sha, &commands, &err) != 0) {
            fprintf(stderr, "nbaload: %s\n", err.msg);
            request_pool_free(&pool);
            return EXIT_USAGE;
        }
        sh.pool = &commands;
    }
    if (opt.rate > 0)
        sh.interval = (uint64_t)((double)opt.connections * NS_PER_S / opt.rate);
    raise_fd_limit(opt.connections);

    /* Workers inherit a blocked SIGINT/SIGTERM; only main takes them. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);

    worker *workers = calloc(opt.threads, sizeof *workers);
    conn *conns = calloc(opt.connections, sizeof *conns);
    unsigned started = 0;
    bool barrier = false;
    code = EXIT_SOFTWARE;
    if (!workers || !conns || pthread_barrier_init(&sh.barrier, NULL, opt.threads + 1) != 0) {
        fprintf(stderr, "nbaload: out of memory\n");
        goto out;
    }
    barrier = true;
    for (unsigned i = 0, next = 0; i < opt.threads; i++) {
        worker *w = &workers[i];
        w->sh = &sh;
        w->index = i;
        w->epfd = w->tfd = -1;
        w->nconns = opt.connections / opt.threads + (i < opt.connections % opt.threads);
        w->conns = conns + next;
        for (unsigned k = 0; k < w->nconns; k++) {
            w->conns[k].number = next + k;
            w->conns[k].fd = -1; /* worker_free() may see it before worker_init() */
        }
        next += w->nconns;
        int rc = worker_init(w);
        if (rc) {
            fprintf(stderr, "nbaload: cannot set up a worker: %s\n", strerror(-rc));
            goto out;
        }
    }

    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    for (; started < opt.threads; started++)
        if (pthread_create(&workers[started].tid, NULL, worker_main, &workers[started]) != 0)
            break;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started < opt.threads) {
        /* The barrier counts every thread; without them all, nobody passes. */
        fprintf(stderr, "nbaload: cannot start %u threads\n", opt.threads);
        exit(EXIT_SOFTWARE);
    }

    pthread_barrier_wait(&sh.barrier);
    uint32_t open = 0;
    for (unsigned i = 0; i < opt.threads; i++)
        open += workers[i].open_at_start;
    sh.abort = open == 0 || atomic_load(&interrupted);
    sh.t_start = clock_mono_ns();
    sh.t_measure = sh.t_start + (uint64_t)(opt.warmup * NS_PER_S);
    sh.t_stop = sh.t_measure + (uint64_t)(opt.duration * NS_PER_S);
    pthread_barrier_wait(&sh.barrier);
    for (unsigned i = 0; i < started; i++)
        pthread_join(workers[i].tid, NULL);
    if (open == 0) {
        const char *why = "no connection was set up";
        for (unsigned i = 0; i < opt.threads; i++)
            if (workers[i].first_reason[0]) {
                why = workers[i].first_reason;
                break;
            }
        fprintf(stderr, "nbaload: cannot connect to %s port %d: %s\n", opt.host, opt.port, why);
        code = EXIT_UNAVAILABLE;
        goto out;
    }

    result *r = malloc(sizeof *r);
    if (!r) {
        fprintf(stderr, "nbaload: out of memory\n");
        goto out;
    }
    *r = (result){0};
    histogram_init(&r->hist);
    uint64_t end = sh.t_measure;
    for (unsigned i = 0; i < opt.threads; i++) {
        const worker *w = &workers[i];
        counters_add(&r->c, &w->c);
        histogram_merge(&r->hist, &w->hist);
        r->stalled |= w->stalled;
        if (w->last_answer > end)
            end = w->last_answer;
        if (w->stopped_at > end)
            end = w->stopped_at;
    }
    r->window_s = (double)(end - sh.t_measure) / NS_PER_S;
    if (opt.json) {
        if (print_json(&opt, r) != 0) {
            fprintf(stderr, "nbaload: out of memory\n");
            free(r);
            goto out;
        }
    } else {
        print_human(&opt, r);
    }
    fflush(stdout);
    for (unsigned i = 0; i < opt.threads; i++)
        if (workers[i].first_failure[0]) {
            fprintf(stderr, "nbaload: first connection failure: %s\n", workers[i].first_failure);
            break;
        }
    code = errors_total(&r->c) ? EXIT_ERRORS : EXIT_OK;
    free(r);
out:
    if (barrier)
        pthread_barrier_destroy(&sh.barrier);
    if (workers)
        for (unsigned i = 0; i < opt.threads; i++)
            if (workers[i].sh)
                worker_free(&workers[i]);
    free(workers);
    free(conns);
    request_pool_free(&pool);
    request_pool_free(&commands);
    return code;
}
