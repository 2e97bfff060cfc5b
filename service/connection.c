/* connection.c - see connection.h.
 *
 * One connection's life:
 *
 *   READING ──output above the limit──▶ BLOCKED ──output drained──▶ READING
 *      │                                   │
 *      │ frame too large, body does not decode, peer sent EOF, shutdown
 *      ▼                                   ▼
 *   CLOSING (writes out what it answered) ──flushed──▶ LINGERING ──▶ CLOSED
 *                                      (peer already sent EOF) ────▶ CLOSED
 *
 * Read and write errors go straight to CLOSED. Raw events and evbuffers
 * rather than bufferevents: a read wakeup answers every complete frame and
 * then tries the write at once, in the same callback, so a request costs one
 * read and one write system call and no extra trip through the loop.
 */
#include "connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "clock.h"
#include "frame.h"
#include "log.h"
#include "wire.h"

/* Bytes asked of one read: enough for a few hundred pipelined requests. The
 * memory goes back as soon as the frames in it are answered, since an
 * evbuffer drained to empty keeps no chunk. */
#define READ_CHUNK 16384
/* iovecs handed to one sendmsg; an output buffer rarely has more chunks. */
#define WRITE_IOV 64
/* Lingering after the last answer: at most this long, and this many
 * discarded bytes. */
#define LINGER_NS        (2000ull * 1000 * 1000)
#define LINGER_MAX_BYTES (1u << 20)

enum conn_state {
    /* Reading requests. Every complete frame in the input buffer is answered
     * at once and the answers are appended to the output buffer in request
     * order. */
    CONN_READING,
    /* The client is not reading its answers fast enough: more than out_limit
     * bytes wait in the output buffer. Nothing is read (the kernel's buffers
     * then hold the client back) until the output has drained to half the
     * limit; the frames already read wait in the input buffer. */
    CONN_BLOCKED,
    /* Answered its last request: a frame too large, a body that does not
     * decode, an EOF from the client, or the server shutting down. Nothing
     * more is read or answered; what was answered is being written out. */
    CONN_CLOSING,
    /* Everything is written and the write side is shut down (the client sees
     * EOF after its last answer). Whatever the client still sends is read
     * and discarded until it closes, LINGER_NS pass or LINGER_MAX_BYTES are
     * discarded: closing a socket with unread input makes the kernel send a
     * reset, which can destroy answers still on their way to the client. */
    CONN_LINGERING,
    /* The socket is closed; the connection is freed at once. */
    CONN_CLOSED,
};

static const char *const state_names[] = {
    [CONN_READING] = "READING",     [CONN_BLOCKED] = "BLOCKED", [CONN_CLOSING] = "CLOSING",
    [CONN_LINGERING] = "LINGERING", [CONN_CLOSED] = "CLOSED",
};

struct conn {
    conn_pool *pool;
    conn *prev, *next; /* in pool->head */
    evutil_socket_t fd;
    uint64_t serial;
    enum conn_state state;
    bool peer_closed;       /* read EOF: the client sends nothing more */
    bool reading, writing;  /* ev_read, ev_write are added */
    size_t lingered;        /* bytes discarded while lingering */
    uint64_t linger_until;  /* clock_mono_ns() deadline of LINGERING */
    struct event *ev_read;  /* EV_READ | EV_PERSIST */
    struct event *ev_write; /* EV_WRITE | EV_PERSIST, added while output waits */
    struct evbuffer *in;    /* bytes read, not yet answered */
    struct evbuffer *out;   /* answers, not yet written */
};

/* Adds n to a counter of this worker's: a plain load and store, because
 * this thread is its only writer (see conn_stats). */
static void stat_add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static void conn_set_state(conn *c, enum conn_state s)
{
    if (c->state == s)
        return;
    log_debug("conn %llu: %s -> %s", (unsigned long long)c->serial, state_names[c->state],
              state_names[s]);
    c->state = s;
}

static void conn_close(conn *c)
{
    conn_pool *p = c->pool;
    conn_set_state(c, CONN_CLOSED);
    event_free(c->ev_write);
    event_free(c->ev_read);
    evbuffer_free(c->out);
    evbuffer_free(c->in);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        p->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    p->n_open--;
    stat_add(&p->stats.connections_open, (uint64_t)-1);
    if (p->draining && p->n_open == 0)
        event_base_loopbreak(p->base);
}

/* Makes the registered events match the state: read while READING (until
 * EOF) or LINGERING, write while answers wait and the socket is open for
 * writing. Only changes cost a system call. */
static int conn_update_events(conn *c)
{
    bool want_read = (c->state == CONN_READING && !c->peer_closed) || c->state == CONN_LINGERING;
    bool want_write = c->state != CONN_LINGERING && evbuffer_get_length(c->out) > 0;
    int rc = 0;

    if (want_read != c->reading) {
        rc |= want_read ? event_add(c->ev_read, NULL) : event_del(c->ev_read);
        c->reading = want_read;
    }
    if (want_write != c->writing) {
        rc |= want_write ? event_add(c->ev_write, NULL) : event_del(c->ev_write);
        c->writing = want_write;
    }
    return rc ? -EIO : 0;
}

/* One read straight into the input buffer's free space. Returns 0 (bytes
 * read, or EOF noted in peer_closed), or a negative errno (-EAGAIN when
 * there was nothing to read after all). */
static int conn_fill(conn *c)
{
    struct evbuffer_iovec v[2];
    int nv = evbuffer_reserve_space(c->in, READ_CHUNK, v, 2);
    if (nv < 1)
        return -ENOMEM;
    ssize_t n;
    do
        n = readv(c->fd, v, nv);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (n == 0) {
        c->peer_closed = true;
        return 0;
    }
    size_t left = (size_t)n;
    int used = 0;
    while (left > 0) {
        if (v[used].iov_len > left)
            v[used].iov_len = left;
        left -= v[used].iov_len;
        used++;
    }
    return evbuffer_commit_space(c->in, v, used) ? -ENOMEM : 0;
}

/* Writes as much of the output buffer as the socket takes. MSG_NOSIGNAL: a
 * client that went away is an error for this connection, not a SIGPIPE for
 * the process. Returns 0 or a negative errno. */
static int conn_flush(conn *c)
{
    while (evbuffer_get_length(c->out) > 0) {
        struct evbuffer_iovec v[WRITE_IOV];
        int nv = evbuffer_peek(c->out, -1, NULL, v, WRITE_IOV);
        struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)(nv > WRITE_IOV ? WRITE_IOV : nv)};
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        }
        evbuffer_drain(c->out, (size_t)n);
    }
    return 0;
}

/* Appends one response frame to the output buffer, packed straight into its
 * free space, and counts it; a decision's time since started_ns (when its
 * frame was cut) goes into the latency histogram. resp lives in the
 * decider's arena until the next decider call, so it is packed before
 * anything else is asked of the decider. */
static int conn_reply(conn *c, const Nba__V1__Response *resp, uint64_t started_ns)
{
    if (!resp)
        return -ENOMEM;
    wire_plan plan;
    arena_reset(&c->pool->scratch);
    size_t n = wire_response_size(resp, &c->pool->scratch, &plan);
    struct evbuffer_iovec v;
    if (n == 0 || evbuffer_reserve_space(c->out, (ev_ssize_t)n, &v, 1) != 1)
        return -ENOMEM;
    v.iov_len = wire_response_pack(resp, &plan, v.iov_base);
    if (evbuffer_commit_space(c->out, &v, 1))
        return -ENOMEM;

    conn_stats *st = &c->pool->stats;
    stat_add(&st->requests, 1);
    if (resp->body_case == NBA__V1__RESPONSE__BODY_DECISION) {
        stat_add(&st->decisions, 1);
        histogram_record(&st->decision_latency, clock_mono_ns() - started_ns);
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_ERROR) {
        stat_add(&st->errors, 1);
    }
    return 0;
}

/* Stops answering: what is still unread or unanswered is dropped. */
static void conn_finish(conn *c)
{
    evbuffer_drain(c->in, evbuffer_get_length(c->in));
    conn_set_state(c, CONN_CLOSING);
}

/* Answers every complete frame in the input buffer, in order, while the
 * connection is READING. Stops at an incomplete frame, or when the output
 * is over the limit (BLOCKED), or at a frame that ends the connection
 * (CLOSING). Returns 0, or a negative errno when the connection must close
 * now. */
static int conn_answer(conn *c)
{
    decider *d = c->pool->decider;
    uint32_t max = c->pool->max_frame;

    while (c->state == CONN_READING) {
        if (evbuffer_get_length(c->out) > c->pool->out_limit) {
            conn_set_state(c, CONN_BLOCKED);
            return 0;
        }
        size_t avail = evbuffer_get_length(c->in);
        uint8_t header[FRAME_HEADER_SIZE];
        uint32_t len = 0;
        if (avail < FRAME_HEADER_SIZE)
            return 0;
        evbuffer_copyout(c->in, header, sizeof header);
        /* The size is checked on the header alone, before the body is
         * waited for or anything is allocated for it. */
        if (frame_cut(header, sizeof header, max, &len) == FRAME_TOO_LARGE) {
            char msg[128];
            snprintf(msg, sizeof msg, "request frame of %u bytes exceeds the limit of %u bytes",
                     len, max);
            log_debug("conn %llu: %s", (unsigned long long)c->serial, msg);
            conn_finish(c);
            return conn_reply(c, decider_error(d, 0, "frame_too_large", msg), 0);
        }
        size_t n = FRAME_HEADER_SIZE + (size_t)len;
        if (avail < n)
            return 0; /* the rest of the body has not arrived yet */

        /* Contiguous already unless the frame straddles two chunks. */
        uint8_t *frame = evbuffer_pullup(c->in, (ev_ssize_t)n);
        if (!frame)
            return -ENOMEM;
        uint64_t started = clock_mono_ns();
        Nba__V1__Response *resp = NULL;
        int handled = decider_handle(d, frame + FRAME_HEADER_SIZE, len, &resp);
        int rc = conn_reply(c, resp, started);
        evbuffer_drain(c->in, n);
        if (rc)
            return rc;
        if (handled == -EBADMSG) {
            log_debug("conn %llu: a %u-byte request does not decode", (unsigned long long)c->serial,
                      len);
            conn_finish(c);
        } else if (handled) {
            return handled;
        }
    }
    return 0;
}

/* Shuts the write side and starts discarding input; see CONN_LINGERING. */
static int conn_linger(conn *c)
{
    if (shutdown(c->fd, SHUT_WR) < 0)
        return -errno;
    conn_set_state(c, CONN_LINGERING);
    c->lingered = 0;
    c->linger_until = clock_mono_ns() + LINGER_NS;
    /* Re-add the read event with the deadline as its timeout: a client that
     * sends nothing more and never closes is dropped when it expires. */
    struct timeval tv = {(time_t)(LINGER_NS / 1000000000u),
                         (suseconds_t)(LINGER_NS % 1000000000u / 1000u)};
    if (c->reading)
        event_del(c->ev_read);
    c->reading = event_add(c->ev_read, &tv) == 0;
    return c->reading ? 0 : -EIO;
}

/* Moves the connection as far as it can go now: answer, write, change
 * state, and register the events it waits for next. May close and free c. */
static void conn_progress(conn *c)
{
    int rc = 0;
    for (;;) {
        if (c->state == CONN_READING) {
            rc = conn_answer(c);
            if (rc)
                goto fail;
            /* At EOF every complete frame has been answered; an incomplete
             * one never will be. */
            if (c->state == CONN_READING && c->peer_closed)
                conn_finish(c);
        }
        rc = conn_flush(c);
        if (rc)
            goto fail;
        size_t pending = evbuffer_get_length(c->out);
        if (c->state == CONN_BLOCKED && pending <= c->pool->out_limit / 2) {
            conn_set_state(c, CONN_READING);
            continue; /* answer the frames that waited in the input buffer */
        }
        if (c->state == CONN_CLOSING && pending == 0) {
            if (c->peer_closed) {
                conn_close(c);
                return;
            }
            rc = conn_linger(c);
            if (rc)
                goto fail;
        }
        break;
    }
    rc = conn_update_events(c);
    if (!rc)
        return;
fail:
    log_debug("conn %llu: %s", (unsigned long long)c->serial, strerror(-rc));
    conn_close(c);
}

/* Reads and drops what a LINGERING client sends; closes at its EOF, at an
 * error, at the deadline or past the byte budget. */
static void conn_discard(conn *c, short what)
{
    if (!(what & EV_TIMEOUT)) {
        uint8_t scratch[4096];
        while (c->lingered <= LINGER_MAX_BYTES && clock_mono_ns() < c->linger_until) {
            ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
            if (n > 0) {
                c->lingered += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return; /* still within the deadline: wait for more or EOF */
            break;      /* EOF or an error */
        }
    }
    conn_close(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    conn *c = arg;
    if (c->state == CONN_LINGERING) {
        conn_discard(c, what);
        return;
    }
    int rc = conn_fill(c);
    if (rc && rc != -EAGAIN) {
        log_debug("conn %llu: read: %s", (unsigned long long)c->serial, strerror(-rc));
        conn_close(c);
        return;
    }
    conn_progress(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_progress(arg);
}

int conn_open(conn_pool *p, evutil_socket_t fd, uint64_t serial, const char *peer)
{
    int rc = -ENOMEM;
    if (p->draining) {
        close(fd);
        return -ESHUTDOWN;
    }
    /* Answers are single small writes that must leave at once. */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        log_debug("conn %llu: TCP_NODELAY: %s", (unsigned long long)serial, strerror(errno));

    conn *c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    c->pool = p;
    c->fd = fd;
    c->serial = serial;
    c->state = CONN_READING;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->ev_read = event_new(p->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->ev_write = event_new(p->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (!c->in || !c->out || !c->ev_read || !c->ev_write)
        goto fail;
    rc = conn_update_events(c);
    if (rc)
        goto fail;

    c->next = p->head;
    if (p->head)
        p->head->prev = c;
    p->head = c;
    p->n_open++;
    stat_add(&p->stats.connections_open, 1);
    stat_add(&p->stats.connections_total, 1);
    log_debug("conn %llu: open, from %s", (unsigned long long)serial, peer ? peer : "?");
    return 0;

fail:
    if (c) {
        if (c->ev_write)
            event_free(c->ev_write);
        if (c->ev_read)
            event_free(c->ev_read);
        if (c->out)
            evbuffer_free(c->out);
        if (c->in)
            evbuffer_free(c->in);
        free(c);
    }
    close(fd);
    return rc;
}

int conn_pool_init(conn_pool *p)
{
    memset(p, 0, sizeof *p);
    conn_stats *s = &p->stats;
    atomic_init(&s->connections_open, 0);
    atomic_init(&s->connections_total, 0);
    atomic_init(&s->requests, 0);
    atomic_init(&s->decisions, 0);
    atomic_init(&s->errors, 0);
    histogram_init(&s->decision_latency);
    /* A plan takes a few hundred bytes: the first block never grows. */
    return arena_init(&p->scratch, 4096);
}

void conn_pool_destroy(conn_pool *p)
{
    if (p->scratch.head)
        arena_destroy(&p->scratch);
}

void conn_pool_drain(conn_pool *p)
{
    p->draining = true;
    for (conn *c = p->head, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_READING || c->state == CONN_BLOCKED) {
            conn_finish(c);
            conn_progress(c);
        }
    }
    if (p->n_open == 0)
        event_base_loopbreak(p->base);
}

void conn_pool_close_all(conn_pool *p)
{
    while (p->head)
        conn_close(p->head);
}
