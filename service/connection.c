/* connection.c - see connection.h.
 *
 * One connection's life:
 *
 *   HANDSHAKE (TLS on: first byte, then the TLS handshake) ──▶ READING
 *      │ not TLS and TLS required: an error, then CLOSING
 *      │ handshake failed: CLOSED
 *
 *   READING ──output above the limits──▶ BLOCKED ──output drained──▶ READING
 *      │                                   │
 *      │ frame too large, body does not decode, peer sent EOF, shutdown
 *      ▼                                   ▼
 *   CLOSING (writes out what it answered) ──flushed──▶ LINGERING ──▶ CLOSED
 *                                      (peer already sent EOF) ────▶ CLOSED
 *
 * Read and write errors, and idle_timeout in any state but LINGERING, go
 * straight to CLOSED. Raw events and evbuffers rather than bufferevents: a
 * read wakeup answers every complete frame and then tries the write at
 * once, in the same callback, so a request costs one read and one write
 * system call and no extra trip through the loop.
 *
 * The I/O seam: conn_fill() and conn_flush() read and write the socket
 * directly (readv, sendmsg) for a plain connection, and through the TLS
 * session (SSL_read, SSL_write) for a TLS one; the rest of this file does
 * not know which. A TLS session may need the socket writable to go on
 * reading or readable to go on writing (tls_read_wants_write,
 * tls_write_wants_read); the events follow.
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
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "frame.h"
#include "log.h"
#include "wire.h"

/* Bytes asked of one read: enough for a few hundred pipelined requests. The
 * memory goes back as soon as the frames in it are answered, since an
 * evbuffer drained to empty keeps no chunk. It also holds a whole TLS
 * record, so one SSL_read takes one record. */
#define READ_CHUNK 16384
/* What may wait for the end of the loop's round: once this many
 * connections, or this many answers (about a millisecond of decisions),
 * are held back, they are written at once, so the first connection
 * answered in a busy round does not wait for the last. */
#define UNFLUSHED_MAX_CONNS   64
#define UNFLUSHED_MAX_ANSWERS 256

/* The chunk a round's second answer gets, for it and those after. libevent
 * would chain one of 1 KiB for every three or four answers: a malloc, a
 * free and an iovec of sendmsg each. The first answer keeps libevent's
 * small chunk, which malloc hands out fastest, as most rounds of a client
 * that does not pipeline have one answer. Like a read's, the chunk goes
 * back once written. */
#define WRITE_CHUNK 8192
/* iovecs handed to one sendmsg; an output buffer rarely has more chunks. */
#define WRITE_IOV 64
/* Lingering after the last answer: at most this long, and this many
 * discarded bytes. */
#define LINGER_NS (2000ull * 1000 * 1000)
/* Requests of one connection with the writer at once: a feed that
 * pipelines a burst of incident reports has them committed together. */
#define CONN_MAX_WRITES  1024
#define LINGER_MAX_BYTES (1u << 20)
/* Stopping: what is read of the requests a client has already sent. */
#define DRAIN_READ_MAX (1u << 20)
/* The first byte of a TLS record carrying a handshake message. */
#define TLS_HANDSHAKE_RECORD 0x16

enum conn_state {
    /* TLS on: waiting for the client's first byte, to tell a TLS client
     * from a plain one, then for the TLS handshake to finish. */
    CONN_HANDSHAKE,
    /* Reading requests. Every complete frame in the input buffer is answered
     * at once and the answers are appended to the output buffer in request
     * order. */
    CONN_READING,
    /* The client is not reading its answers fast enough: more than
     * out_limit bytes, or max_pipeline answers, wait in the output buffer.
     * Nothing is read (the kernel's buffers then hold the client back) until
     * the output has drained to half the byte limit and, when the answer
     * limit was hit, to empty; the frames already read wait in the input
     * buffer. */
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
    [CONN_HANDSHAKE] = "HANDSHAKE", [CONN_READING] = "READING",     [CONN_BLOCKED] = "BLOCKED",
    [CONN_CLOSING] = "CLOSING",     [CONN_LINGERING] = "LINGERING", [CONN_CLOSED] = "CLOSED",
};

struct conn {
    conn_pool *pool;
    conn *prev, *next; /* in pool->head */
    evutil_socket_t fd;
    uint64_t serial;
    enum conn_state state;
    /* Requests with the writer (they must be durable before they are
     * answered). Answers go out in request order, so nothing after them is
     * answered, or read, until their answers come back (conn_resume),
     * except more incident reports, which join them. A connection closed
     * meanwhile keeps this struct until the last one is back. */
    unsigned waiting;
    bool peer_closed;          /* read EOF: the client sends nothing more */
    bool input_done;           /* stopping: what had arrived is read; read no more */
    bool reading, writing;     /* ev_read, ev_write are added */
    bool counted;              /* holds a count in pool->serving and connections_open */
    bool hs_wants_write;       /* HANDSHAKE: the TLS handshake waits for writable, not readable */
    bool tls_read_wants_write; /* the last SSL_read waits for the socket to be writable */
    bool tls_write_wants_read; /* the last SSL_write waits for it to be readable */
    unsigned queued;           /* answers put in `out` since it was last empty */
    uint32_t last_tick;        /* pool->tick when a byte was last read or written */
    uint32_t frame_since;      /* pool->tick + 1 since when a request has been coming in
                                * part; 0: none is */
    size_t lingered;           /* bytes discarded while lingering */
    uint64_t linger_until;     /* clock_mono_ns() deadline of LINGERING */
    SSL *ssl;                  /* the TLS session; NULL on a plain connection */
    struct event *ev_read;     /* EV_READ | EV_PERSIST */
    struct event *ev_write;    /* EV_WRITE | EV_PERSIST, added while output waits */
    struct evbuffer *in;       /* bytes read, not yet answered */
    struct evbuffer *out;      /* answers, not yet written */
    char peer[64];             /* "addr:port", for the logs that matter to ops */
    /* in pool->unflushed: answers put, written by conn_pool_flush() */
    bool unflushed;
    conn *unflushed_prev, *unflushed_next;
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

/* Gives back a count of p->serving: the listener may then accept one more. */
static void serving_release(conn_pool *p)
{
    if (p->serving)
        atomic_fetch_sub_explicit(p->serving, 1, memory_order_relaxed);
}

/* The connections waiting for conn_pool_flush(), in the order they were
 * answered, so the first answered is the first written. */
static void unflushed_add(conn *c)
{
    conn_pool *p = c->pool;
    if (c->unflushed)
        return;
    c->unflushed = true;
    c->unflushed_next = NULL;
    c->unflushed_prev = p->unflushed_tail;
    if (p->unflushed_tail)
        p->unflushed_tail->unflushed_next = c;
    else
        p->unflushed = c;
    p->unflushed_tail = c;
    p->n_unflushed++;
}

static void unflushed_remove(conn *c)
{
    conn_pool *p = c->pool;
    if (!c->unflushed)
        return;
    if (c->unflushed_prev)
        c->unflushed_prev->unflushed_next = c->unflushed_next;
    else
        p->unflushed = c->unflushed_next;
    if (c->unflushed_next)
        c->unflushed_next->unflushed_prev = c->unflushed_prev;
    else
        p->unflushed_tail = c->unflushed_prev;
    c->unflushed = false;
    p->n_unflushed--;
}

static void conn_close(conn *c)
{
    conn_pool *p = c->pool;
    if (c->state == CONN_CLOSED)
        return; /* closed while waiting for the writer */
    unflushed_remove(c);
    conn_set_state(c, CONN_CLOSED);
    if (c->ssl)
        SSL_free(c->ssl);
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
    if (c->counted) {
        stat_add(&p->stats.connections_open, (uint64_t)-1);
        serving_release(p);
    }
    if (!c->waiting)
        free(c); /* else conn_resume() frees it when the writer answers */
    p->n_open--;
    if (p->draining && p->n_open == 0)
        event_base_loopbreak(p->base);
}

/* Whether the connection reads from its socket in its state: requests
 * while READING (until EOF, or until stopping has taken what had arrived),
 * the first byte and the handshake of a TLS connection, and what a
 * LINGERING client still sends. */
static bool conn_wants_input(const conn *c)
{
    switch (c->state) {
    case CONN_READING:
        return !c->peer_closed && !c->input_done && !c->waiting;
    case CONN_HANDSHAKE:
        return !c->hs_wants_write;
    case CONN_LINGERING:
        return true;
    default:
        return false;
    }
}

/* Makes the registered events match the state: read while conn_wants_input,
 * write while answers wait and the socket is open for writing, and either
 * when the TLS session waits for it. Only changes cost a system call. */
static int conn_update_events(conn *c)
{
    bool want_read = conn_wants_input(c) || c->tls_write_wants_read;
    bool want_write = c->state == CONN_HANDSHAKE
                          ? c->hs_wants_write
                          : (c->state != CONN_LINGERING && evbuffer_get_length(c->out) > 0) ||
                                c->tls_read_wants_write;
    int rc = 0;

    if (want_read != c->reading) {
        rc |= want_read ? event_add(c->ev_read, NULL) : event_del(c->ev_read);
        c->reading = want_read;
    }
    if (want_write != c->writing) {
        rc |= want_write ? event_add(c->ev_write, NULL) : event_del(c->ev_write);
        c->writing = want_write;
    }
    /* A TLS session may hold a record it has read from the socket but not
     * yet handed over: the socket will not signal it again. */
    if (c->ssl && want_read && c->state == CONN_READING && SSL_has_pending(c->ssl))
        event_active(c->ev_read, EV_READ, 0);
    return rc ? -EIO : 0;
}

/* Why SSL_read or SSL_write returned `ret`, as this file's convention:
 * -EAGAIN when it waits for the socket to be readable, -EWOULDBLOCK (the
 * same value on Linux, so told apart by *wants_write) when it waits for it
 * to be writable, 0 at the client's close_notify or EOF, another negative
 * errno on an error. */
static int tls_outcome(conn *c, int ret, bool *wants_write)
{
    *wants_write = false;
    switch (SSL_get_error(c->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        *wants_write = true;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        return errno ? -errno : -ECONNRESET;
    default: {
        char why[160];
        log_debug("conn %llu: TLS: %s", (unsigned long long)c->serial,
                  tls_error_text(why, sizeof why, "protocol error"));
        return -EPROTO;
    }
    }
}

/* One SSL_read into the input buffer's free space; see conn_fill. */
static int conn_fill_tls(conn *c)
{
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(c->in, READ_CHUNK, &v, 1) != 1)
        return -ENOMEM;
    /* SSL_get_error reads the thread's error queue: it must hold nothing
     * from another connection. */
    ERR_clear_error();
    int n = SSL_read(c->ssl, v.iov_base, (int)(v.iov_len < READ_CHUNK ? v.iov_len : READ_CHUNK));
    if (n <= 0) {
        int rc = tls_outcome(c, n, &c->tls_read_wants_write);
        if (rc == 0)
            c->peer_closed = true;
        return rc;
    }
    c->tls_read_wants_write = false;
    c->last_tick = c->pool->tick;
    v.iov_len = (size_t)n;
    return evbuffer_commit_space(c->in, &v, 1) ? -ENOMEM : 0;
}

/* One read straight into the input buffer's free space. Returns 0 (bytes
 * read, or EOF noted in peer_closed), or a negative errno (-EAGAIN when
 * there was nothing to read after all). */
static int conn_fill(conn *c)
{
    if (c->ssl)
        return conn_fill_tls(c);
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
    c->last_tick = c->pool->tick;
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

/* Writes the output buffer through the TLS session, a record at a time;
 * see conn_flush. */
static int conn_flush_tls(conn *c)
{
    c->tls_write_wants_read = false;
    size_t left;
    while ((left = evbuffer_get_length(c->out)) > 0) {
        size_t len = left < READ_CHUNK ? left : READ_CHUNK;
        const uint8_t *bytes = evbuffer_pullup(c->out, (ev_ssize_t)len);
        if (!bytes)
            return -ENOMEM;
        ERR_clear_error();
        int n = SSL_write(c->ssl, bytes, (int)len);
        if (n <= 0) {
            bool wants_write;
            int rc = tls_outcome(c, n, &wants_write);
            if (rc != -EAGAIN)
                return rc ? rc : -EPIPE;
            /* Waiting to be writable is the normal end of a write: the
             * write event is on while output waits. */
            c->tls_write_wants_read = !wants_write;
            return 0;
        }
        c->last_tick = c->pool->tick;
        evbuffer_drain(c->out, (size_t)n);
    }
    return 0;
}

/* Writes as much of the output buffer as the socket takes. MSG_NOSIGNAL: a
 * client that went away is an error for this connection, not a SIGPIPE for
 * the process. Returns 0 or a negative errno. */
static int conn_flush(conn *c)
{
    if (c->ssl)
        return conn_flush_tls(c);
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
        c->last_tick = c->pool->tick;
        evbuffer_drain(c->out, (size_t)n);
    }
    return 0;
}

/* Appends one response frame to the output buffer, packed straight into its
 * free space. resp lives in the decider's arena until the next decider
 * call, so it is packed before anything else is asked of the decider. */
static int conn_put(conn *c, const Nba__V1__Response *resp)
{
    if (!resp)
        return -ENOMEM;
    wire_plan plan;
    arena_reset(&c->pool->scratch);
    size_t n = wire_response_size(resp, &c->pool->scratch, &plan);
    if (n == 0)
        return -ENOMEM;
    if (c->queued == 1 && n < WRITE_CHUNK && evbuffer_expand(c->out, WRITE_CHUNK) != 0)
        return -ENOMEM;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(c->out, (ev_ssize_t)n, &v, 1) != 1)
        return -ENOMEM;
    v.iov_len = wire_response_pack(resp, &plan, v.iov_base);
    if (evbuffer_commit_space(c->out, &v, 1))
        return -ENOMEM;
    c->queued++;
    return 0;
}

/* conn_put, and counts the answer. A decision's time since *mark_ns (when
 * its frame was cut) goes into the latency histogram, and *mark_ns becomes
 * the clock read for it: the next frame, cut straight after, starts from
 * there without a clock read of its own (a read costs about a hundredth of
 * a decision). Otherwise *mark_ns becomes 0. mark_ns may be NULL for an
 * answer that is no decision. */
static int conn_reply(conn *c, const Nba__V1__Response *resp, uint64_t *mark_ns)
{
    uint64_t started_ns = mark_ns ? *mark_ns : 0;
    if (mark_ns)
        *mark_ns = 0;
    int rc = conn_put(c, resp);
    if (rc)
        return rc;
    conn_stats *st = &c->pool->stats;
    stat_add(&st->requests, 1);
    if (resp->body_case == NBA__V1__RESPONSE__BODY_DECISION) {
        stat_add(&st->decisions, 1);
        if (mark_ns) {
            uint64_t now = clock_mono_ns();
            histogram_record(&st->decision_latency, now - started_ns);
            *mark_ns = now;
        }
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_ERROR) {
        stat_add(&st->errors, 1);
    }
    return 0;
}

/* With log_customer_data: who was decided about and what they are told,
 * for debugging rules against real traffic. Off, nothing here runs. */
static void log_decision(const conn *c, const Nba__V1__Decision *d)
{
    char actions[1024] = "";
    size_t used = 0;
    for (size_t i = 0; i < d->n_actions && used < sizeof actions; i++) {
        int n = snprintf(actions + used, sizeof actions - used, "%s%s \"%s\"", i ? "; " : "",
                         d->actions[i]->type, d->actions[i]->message);
        used += n > 0 ? (size_t)n : 0;
    }
    log_debug("conn %llu: customer %s (%s), language %s, ruleset %s: %s",
              (unsigned long long)c->serial, d->customer_id, d->known ? "known" : "unknown",
              d->language, d->ruleset, d->n_actions ? actions : "no action");
}

/* Stops answering: what is still unread or unanswered is dropped. */
static void conn_finish(conn *c)
{
    evbuffer_drain(c->in, evbuffer_get_length(c->in));
    conn_set_state(c, CONN_CLOSING);
}

/* Notes that `avail` bytes of a request wait for the rest: its clock
 * (frame_timeout) starts now unless it had started. */
static void conn_frame_waits(conn *c, size_t avail)
{
    if (avail == 0)
        c->frame_since = 0;
    else if (c->frame_since == 0)
        c->frame_since = c->pool->tick + 1;
}

/* Answers every complete frame in the input buffer, in order, while the
 * connection is READING. Stops at an incomplete frame, or when the output
 * is over a limit (BLOCKED), or at a frame that ends the connection
 * (CLOSING). Returns 0, or a negative errno when the connection must close
 * now. */
static int conn_answer(conn *c)
{
    conn_pool *p = c->pool;
    decider *d = p->decider;
    uint32_t max = p->max_frame;
    uint64_t mark = 0; /* when the frame being answered was cut; see conn_reply */

    while (c->state == CONN_READING) {
        if (evbuffer_get_length(c->out) > p->out_limit || c->queued >= p->max_pipeline) {
            conn_set_state(c, CONN_BLOCKED);
            return 0;
        }
        size_t avail = evbuffer_get_length(c->in);
        uint8_t header[FRAME_HEADER_SIZE];
        uint32_t len = 0;
        if (avail < FRAME_HEADER_SIZE) {
            conn_frame_waits(c, avail);
            return 0;
        }
        evbuffer_copyout(c->in, header, sizeof header);
        /* The size is checked on the header alone, before the body is
         * waited for or anything is allocated for it. */
        frame_status cut = frame_cut(header, sizeof header, max, &len);
        if (c->waiting && cut == FRAME_TOO_LARGE)
            return 0; /* answered in its turn, after the writer's answers */
        if (cut == FRAME_TOO_LARGE) {
            char msg[128];
            snprintf(msg, sizeof msg, "request frame of %u bytes exceeds the limit of %u bytes",
                     len, max);
            log_debug("conn %llu: %s", (unsigned long long)c->serial, msg);
            conn_finish(c);
            return conn_reply(c, decider_error(d, 0, "frame_too_large", msg), NULL);
        }
        size_t n = FRAME_HEADER_SIZE + (size_t)len;
        if (avail < n) {
            conn_frame_waits(c, avail);
            return 0; /* the rest of the body has not arrived yet */
        }
        c->frame_since = 0; /* a whole one: the next one's clock starts when it begins */

        /* Contiguous already unless the frame straddles two chunks. */
        uint8_t *frame = evbuffer_pullup(c->in, (ev_ssize_t)n);
        if (!frame)
            return -ENOMEM;
        /* While requests are with the writer, only more incident reports
         * may follow them there: anything else would be answered first. */
        if (c->waiting && (c->waiting >= CONN_MAX_WRITES ||
                           !wire_request_is_feed(frame + FRAME_HEADER_SIZE, len)))
            return 0;
        if (!mark)
            mark = clock_mono_ns();
        Nba__V1__Response *resp = NULL;
        int handled = decider_handle(d, frame + FRAME_HEADER_SIZE, len, &resp);
        if (handled == DECIDER_DEFERRED) {
            handled = decider_submit(d, c, &resp);
            if (handled == 0) {
                c->waiting++;
                evbuffer_drain(c->in, n);
                mark = 0;
                continue;
            }
            handled = 0; /* resp says why it could not be queued */
        }
        /* An answer made now (a report that does not decode after all, one
         * the writer cannot take) would overtake those with the writer: the
         * frame stays and is answered in its turn. Answering has no side
         * effect, so doing it again then is harmless. */
        if (c->waiting) {
            decider_done(d);
            return 0;
        }
        if (p->log_customer_data && resp && resp->body_case == NBA__V1__RESPONSE__BODY_DECISION)
            log_decision(c, resp->decision);
        int rc = conn_reply(c, resp, &mark);
        decider_done(d); /* the answer is encoded: the ruleset it pointed into may go */
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
/* The last answer is written: a TLS client is told with close_notify that
 * its answers are all there (a truncated stream looks otherwise the same).
 * One try; a client that cannot take it sees a plain EOF. */
static void conn_tls_goodbye(conn *c)
{
    if (!c->ssl)
        return;
    ERR_clear_error();
    if (SSL_shutdown(c->ssl) < 0)
        ERR_clear_error();
    c->tls_read_wants_write = c->tls_write_wants_read = false;
}

static int conn_linger(conn *c)
{
    conn_tls_goodbye(c);
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
            /* At EOF (or once stopping has read what had arrived) every
             * complete frame has been answered; an incomplete one never
             * will be. */
            if (c->state == CONN_READING && (c->peer_closed || c->input_done) && !c->waiting)
                conn_finish(c);
        }
        rc = conn_flush(c);
        if (rc)
            goto fail;
        size_t pending = evbuffer_get_length(c->out);
        if (pending == 0)
            c->queued = 0;
        if (c->state == CONN_BLOCKED && pending <= c->pool->out_limit / 2 &&
            c->queued < c->pool->max_pipeline) {
            conn_set_state(c, CONN_READING);
            continue; /* answer the frames that waited in the input buffer */
        }
        if (c->state == CONN_CLOSING && pending == 0 && !c->waiting) {
            if (c->peer_closed) {
                conn_tls_goodbye(c);
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

/* HANDSHAKE: looks at the client's first byte, then drives the TLS
 * handshake as far as the socket allows. May close and free c. */
static void conn_handshake(conn *c)
{
    conn_pool *p = c->pool;
    char why[160];
    if (!c->ssl) {
        uint8_t first;
        ssize_t n;
        do
            n = recv(c->fd, &first, 1, MSG_PEEK);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* gone before saying anything */
            conn_close(c);
            return;
        }
        if (first != TLS_HANDSHAKE_RECORD) {
            conn_set_state(c, CONN_READING);
            if (p->tls_required) {
                log_info("conn %llu from %s: plain connection refused, TLS is required",
                         (unsigned long long)c->serial, c->peer);
                stat_add(&p->stats.tls_failed, 1); /* a client that did not do TLS */
                conn_finish(c);
                int rc = conn_reply(c,
                                    decider_error(p->decider, 0, "tls_required",
                                                  "this port serves TLS only: connect with TLS"),
                                    NULL);
                if (rc) {
                    conn_close(c);
                    return;
                }
            }
            conn_progress(c);
            return;
        }
        c->ssl = tls_session_new(p->tls, c->fd);
        if (!c->ssl) {
            log_warn("conn %llu: cannot start a TLS session: out of memory",
                     (unsigned long long)c->serial);
            conn_close(c);
            return;
        }
    }
    ERR_clear_error();
    int ret = SSL_do_handshake(c->ssl);
    if (ret == 1) {
        log_debug("conn %llu: %s", (unsigned long long)c->serial,
                  tls_session_describe(c->ssl, why, sizeof why));
        conn_set_state(c, CONN_READING);
        conn_progress(c);
        return;
    }
    int e = SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->hs_wants_write = e == SSL_ERROR_WANT_WRITE;
        if (conn_update_events(c))
            conn_close(c);
        return;
    }
    /* A refused client certificate is news for ops: who tried. */
    stat_add(&p->stats.tls_failed, 1);
    log_info("conn %llu from %s: TLS handshake failed: %s", (unsigned long long)c->serial, c->peer,
             e == SSL_ERROR_SYSCALL ? "the client went away"
                                    : tls_error_text(why, sizeof why, "protocol error"));
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

/* Answers what has arrived and leaves the writing to conn_pool_flush() at
 * the end of the loop's round. Only a plain connection still READING with
 * answers to write waits; anything else (TLS, a state change, nothing to
 * write) goes through conn_progress() at once. */
static void conn_answer_and_defer(conn *c)
{
    if (c->ssl || c->state != CONN_READING) {
        conn_progress(c);
        return;
    }
    conn_pool *p = c->pool;
    unsigned before = c->queued;
    int rc = conn_answer(c);
    if (rc) {
        log_debug("conn %llu: %s", (unsigned long long)c->serial, strerror(-rc));
        conn_close(c);
        return;
    }
    if (c->state != CONN_READING || c->peer_closed || c->input_done || c->waiting ||
        evbuffer_get_length(c->out) == 0) {
        conn_progress(c);
        return;
    }
    unflushed_add(c);
    p->unflushed_answers += c->queued - before;
    if (p->n_unflushed >= UNFLUSHED_MAX_CONNS || p->unflushed_answers >= UNFLUSHED_MAX_ANSWERS)
        conn_pool_flush(p);
}

/* Reads what the socket has (when the state wants input), then moves on. */
static void conn_read_and_progress(conn *c)
{
    if (conn_wants_input(c)) {
        int rc = conn_fill(c);
        if (rc && rc != -EAGAIN) {
            log_debug("conn %llu: read: %s", (unsigned long long)c->serial, strerror(-rc));
            conn_close(c);
            return;
        }
    } else {
        /* A TLS read that waited to write is retried once input is wanted
         * again; until then the writable socket is no news. */
        c->tls_read_wants_write = false;
    }
    conn_answer_and_defer(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    conn *c = arg;
    if (c->state == CONN_LINGERING)
        conn_discard(c, what);
    else if (c->state == CONN_HANDSHAKE)
        conn_handshake(c);
    else
        conn_read_and_progress(c); /* a TLS write waiting to read goes on in there too */
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    if (c->state == CONN_HANDSHAKE)
        conn_handshake(c);
    else if (c->tls_read_wants_write)
        conn_read_and_progress(c);
    else
        conn_progress(c);
}

/* Makes a connection on fd and links it into the pool. On failure closes
 * fd, gives back its count when `counted`, and returns -ENOMEM. */
static int conn_new(conn_pool *p, evutil_socket_t fd, uint64_t serial, const char *peer,
                    bool counted, conn **out)
{
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
    c->counted = counted;
    c->state = counted && p->tls ? CONN_HANDSHAKE : CONN_READING;
    c->last_tick = p->tick;
    snprintf(c->peer, sizeof c->peer, "%s", peer ? peer : "?");
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->ev_read = event_new(p->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->ev_write = event_new(p->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (!c->in || !c->out || !c->ev_read || !c->ev_write)
        goto fail;

    c->next = p->head;
    if (p->head)
        p->head->prev = c;
    p->head = c;
    p->n_open++;
    if (counted) {
        stat_add(&p->stats.connections_open, 1);
        stat_add(&p->stats.connections_total, 1);
    }
    *out = c;
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
    if (counted)
        serving_release(p);
    return -ENOMEM;
}

void conn_resume(conn *c, const writer_job *job)
{
    c->waiting--;
    if (c->state == CONN_CLOSED) {
        if (!c->waiting)
            free(c);
        return;
    }
    if (!job->answer || evbuffer_add(c->out, job->answer, job->answer_len) != 0) {
        log_debug("conn %llu: no answer from the writer", (unsigned long long)c->serial);
        conn_close(c);
        return;
    }
    /* Counted as conn_reply() counts; a decision's time includes its wait
     * for the commit, the price of a decision that writes. */
    conn_stats *st = &c->pool->stats;
    stat_add(&st->requests, 1);
    if (job->decision) {
        stat_add(&st->decisions, 1);
        histogram_record(&st->decision_latency, clock_mono_ns() - job->submitted_ns);
    } else if (job->error) {
        stat_add(&st->errors, 1);
    }
    c->queued++;
    /* While stopping, the requests after it that had already arrived are
     * still answered: conn_progress() finishes once they are. */
    conn_progress(c);
}

int conn_open(conn_pool *p, evutil_socket_t fd, uint64_t serial, const char *peer)
{
    if (p->draining) {
        close(fd);
        serving_release(p);
        return -ESHUTDOWN;
    }
    conn *c;
    int rc = conn_new(p, fd, serial, peer, true, &c);
    if (rc)
        return rc;
    log_debug("conn %llu: open, from %s", (unsigned long long)serial, c->peer);
    rc = conn_update_events(c);
    if (rc)
        conn_close(c);
    return rc;
}

int conn_refuse(conn_pool *p, evutil_socket_t fd, uint64_t serial, const char *peer,
                const char *code, const char *message)
{
    conn *c;
    int rc = conn_new(p, fd, serial, peer, false, &c);
    if (rc)
        return rc;
    log_debug("conn %llu: from %s, refused: %s", (unsigned long long)serial, c->peer, code);
    conn_set_state(c, CONN_CLOSING);
    rc = conn_put(c, decider_error(p->decider, 0, code, message));
    if (rc) {
        conn_close(c);
        return rc;
    }
    stat_add(&p->stats.connections_refused, 1);
    stat_add(&p->stats.errors, 1);
    conn_progress(c);
    return 0;
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
    atomic_init(&s->connections_refused, 0);
    atomic_init(&s->connections_idle, 0);
    atomic_init(&s->tls_failed, 0);
    histogram_init(&s->decision_latency);
    /* A plan takes a few hundred bytes: the first block never grows. */
    return arena_init(&p->scratch, 4096);
}

void conn_pool_destroy(conn_pool *p)
{
    if (p->scratch.head)
        arena_destroy(&p->scratch);
}

void conn_pool_tick(conn_pool *p)
{
    p->tick++;
    if (p->idle_ticks == 0 && p->frame_ticks == 0)
        return;
    for (conn *c = p->head, *next; c; c = next) {
        next = c->next;
        /* LINGERING has a deadline of its own. */
        if (c->state == CONN_LINGERING)
            continue;
        if (p->idle_ticks && (uint32_t)(p->tick - c->last_tick) > p->idle_ticks) {
            log_debug("conn %llu: idle for %u s in %s, closing", (unsigned long long)c->serial,
                      p->idle_ticks, state_names[c->state]);
            stat_add(&p->stats.connections_idle, 1);
            conn_close(c);
            continue;
        }
        /* A request trickling in a byte at a time keeps idle_timeout at bay
         * and a connection held: this bounds it. */
        if (p->frame_ticks && c->state == CONN_READING && c->frame_since &&
            (uint32_t)(p->tick + 1 - c->frame_since) > p->frame_ticks) {
            log_info("conn %llu from %s: a request still incomplete after %u s, closing",
                     (unsigned long long)c->serial, c->peer, p->frame_ticks);
            stat_add(&p->stats.connections_idle, 1);
            conn_finish(c);
            char msg[96];
            snprintf(msg, sizeof msg, "a request did not arrive whole within %u s", p->frame_ticks);
            if (conn_reply(c, decider_error(p->decider, 0, "frame_timeout", msg), NULL) != 0)
                conn_close(c);
            else
                conn_progress(c);
        }
    }
}

/* Stopping: reads what the client has sent so far, up to DRAIN_READ_MAX
 * bytes, and reads no more; conn_progress then answers every complete
 * request in it (as the client takes the answers) and closes. */
static void conn_take_last_input(conn *c)
{
    int rc = 0;
    while (!c->peer_closed && evbuffer_get_length(c->in) < DRAIN_READ_MAX &&
           (rc = conn_fill(c)) == 0)
        ;
    c->input_done = true;
    if (rc && rc != -EAGAIN) {
        log_debug("conn %llu: read: %s", (unsigned long long)c->serial, strerror(-rc));
        conn_close(c);
        return;
    }
    conn_progress(c);
}

void conn_pool_drain(conn_pool *p)
{
    p->draining = true;
    for (conn *c = p->head, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_HANDSHAKE)
            conn_close(c);
        else if (c->state == CONN_READING || c->state == CONN_BLOCKED)
            conn_take_last_input(c);
    }
    if (p->n_open == 0)
        event_base_loopbreak(p->base);
}

void conn_pool_flush(conn_pool *p)
{
    p->unflushed_answers = 0;
    while (p->unflushed) {
        conn *c = p->unflushed;
        unflushed_remove(c);
        conn_progress(c);
    }
}

void conn_pool_close_all(conn_pool *p)
{
    while (p->head)
        conn_close(p->head);
}
