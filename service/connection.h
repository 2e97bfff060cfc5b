/* connection.h - one client connection of nbad: a state machine driven by
 * its worker's event loop. Internal to the server library (server.c owns
 * the workers, this module owns what happens on one socket).
 *
 * A connection reads request frames, answers every complete frame it has as
 * soon as it has it (so a pipelining client gets its answers in one write),
 * and writes the answers in request order. A plain connection's answers are
 * written when the worker's loop has run every callback of its round
 * (conn_pool_flush): the worker answers all its ready connections, then
 * writes, so that a client holding many of them is woken once a round, not
 * once per connection, and does not take the core from a worker that still
 * has requests to answer. Everything here runs on the worker's thread:
 * nothing is locked.
 *
 * Buffers: bytes are read straight into the input evbuffer's free space and
 * answers are packed straight into the output evbuffer's free space; a frame
 * is made contiguous (evbuffer_pullup) only when it straddles two chunks.
 *
 * Limits: a connection that has max_output bytes or max_pipeline answers
 * waiting to be written stops reading until they are written; one that has
 * neither read nor written a byte for idle_timeout seconds is closed.
 *
 * TLS: with a tls_context in the pool, a connection first waits for the
 * client's first byte. A TLS handshake record (0x16) starts a TLS session
 * on the socket; anything else is a plain client, refused with the error
 * tls_required, or served plain when TLS is optional. No plain frame can
 * start with 0x16: its length would be above 352 MiB, more than any
 * max_frame. Plain connections read and write the socket directly, as
 * without TLS.
 */
#ifndef NBA_CONNECTION_H
#define NBA_CONNECTION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include "arena.h"
#include "decider.h"
#include "error.h"
#include "histogram.h"
#include "tls.h"

typedef struct conn conn;

/* What one worker's connections have done, for status requests. Only the
 * worker's thread writes (relaxed atomic stores, no lock and no locked
 * instruction per request); any thread may read at any time and sees each
 * counter a little behind at worst. Counted before an answer is written to
 * the socket, so a client that has its answer sees it counted. */
typedef struct conn_stats {
    _Atomic uint64_t connections_open;
    _Atomic uint64_t connections_total;
    _Atomic uint64_t requests;            /* answers of every kind, errors included */
    _Atomic uint64_t decisions;           /* answers that are decisions */
    _Atomic uint64_t errors;              /* Error answers */
    _Atomic uint64_t connections_refused; /* too_many_connections (not in the two above) */
    _Atomic uint64_t connections_idle;    /* closed after idle_timeout */
    _Atomic uint64_t tls_failed;          /* TLS handshakes that failed */
    /* Time from a decision's request frame cut from the input, through
     * decoding, deciding and encoding, to its answer frame in the output
     * buffer, in ns: nbad's own share of a client's latency. */
    histogram decision_latency;
} conn_stats;

/* What the connections of one worker share. Owned by the worker, which
 * calls conn_pool_init() and then fills the fields up to `serving` before
 * opening connections. */
typedef struct conn_pool {
    struct event_base *base;   /* the worker's loop */
    decider *decider;          /* the worker's decider */
    uint32_t max_frame;        /* largest request body accepted */
    size_t out_limit;          /* pending output above which a connection stops reading */
    unsigned max_pipeline;     /* answers waiting to be written above which it stops too */
    uint32_t idle_ticks;       /* close a connection silent for more than this many
                                * conn_pool_tick() calls; 0 = never */
    uint32_t frame_ticks;      /* close one whose request has begun but not arrived
                                * whole for more than this many; 0 = never */
    tls_context *tls;          /* NULL: plain connections only */
    bool tls_required;         /* with tls: refuse plain clients */
    bool log_customer_data;    /* log each decision's customer and messages (debug) */
    _Atomic unsigned *serving; /* connections served by every pool of the server, or NULL */
    /* maintained by this module */
    conn *head;                       /* open connections, newest first */
    conn *unflushed, *unflushed_tail; /* connections with answers for conn_pool_flush() */
    size_t n_unflushed;
    size_t unflushed_answers; /* answers they hold */
    size_t n_open;            /* open connections, refused ones included */
    bool draining;            /* conn_pool_drain() was called */
    uint32_t tick;            /* conn_pool_tick() calls so far */
    conn_stats stats;
    arena scratch; /* how the answer being written is encoded (wire_plan) */
} conn_pool;

/* Zeroes p and its counters and makes its scratch arena. Returns 0 or
 * -ENOMEM. */
int conn_pool_init(conn_pool *p);

/* Frees what conn_pool_init() made; every connection must be closed. */
void conn_pool_destroy(conn_pool *p);

/* Takes over the accepted, non-blocking socket fd and starts reading from
 * it (with TLS on, waits for the client's first byte). `serial` and `peer`
 * ("addr:port") name the connection in logs. The connection holds one
 * count in *p->serving, which the caller has added, and gives it back when it
 * closes. On failure the socket is closed, the count given back and a
 * negative errno returned (-ENOMEM, -ESHUTDOWN when draining). */
int conn_open(conn_pool *p, evutil_socket_t fd, uint64_t serial, const char *peer);

/* Takes over fd to refuse it: answers an Error with `code` and `message`
 * (plain, even with TLS on, to spend nothing on a client turned away),
 * then closes. Counted in connections_refused, not in *p->serving nor the
 * connections counters. Returns 0 or a negative errno (the socket is then
 * closed). */
int conn_refuse(conn_pool *p, evutil_socket_t fd, uint64_t serial, const char *peer,
                const char *code, const char *message);

/* Advances the pool's clock by one tick (the worker calls it every second)
 * and closes the connections that have neither read nor written a byte for
 * more than idle_ticks ticks, and those whose request has begun and not
 * arrived whole for more than frame_ticks (answered frame_timeout first). */
void conn_pool_tick(conn_pool *p);

/* Shutdown: every connection reads what its client has sent so far (as
 * much as has arrived, up to a bound), answers every complete request in
 * it, writes the answers out and closes; a request that has not fully
 * arrived is dropped. Connections still in their TLS handshake are closed.
 * Once the last connection has closed, the pool breaks its event loop
 * (event_base_loopbreak), at once if there is none. */
void conn_pool_drain(conn_pool *p);

/* Delivers the answer of writer job `job` (its tag is c) and goes on with
 * the requests after it. A job without an answer (the writer ran out of
 * memory) closes the connection. A connection that
 * closed while it waited is freed here. On the connection's worker thread. */
void conn_resume(conn *c, const writer_job *job);

/* Writes the answers the connections put while the worker's loop ran its
 * callbacks, and moves each connection on (conn_progress). The worker calls
 * it after every round of its event loop: answering every ready connection
 * first and then writing wakes a client once per round rather than once
 * per connection. */
void conn_pool_flush(conn_pool *p);

/* Closes and frees every connection now, flushed or not. */
void conn_pool_close_all(conn_pool *p);

#endif
