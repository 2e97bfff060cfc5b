/* connection.h - one client connection of nbad: a state machine driven by
 * its worker's event loop. Internal to the server library (server.c owns
 * the workers, this module owns what happens on one socket).
 *
 * A connection reads request frames, answers every complete frame it has as
 * soon as it has it (so a pipelining client gets its answers in one write),
 * and writes the answers in request order. Everything here runs on the
 * worker's thread: nothing is locked.
 *
 * Buffers: bytes are read straight into the input evbuffer's free space and
 * answers are packed straight into the output evbuffer's free space; a frame
 * is made contiguous (evbuffer_pullup) only when it straddles two chunks.
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

typedef struct conn conn;

/* What one worker's connections have done, for status requests. Only the
 * worker's thread writes (relaxed atomic stores, no lock and no locked
 * instruction per request); any thread may read at any time and sees each
 * counter a little behind at worst. Counted before an answer is written to
 * the socket, so a client that has its answer sees it counted. */
typedef struct conn_stats {
    _Atomic uint64_t connections_open;
    _Atomic uint64_t connections_total;
    _Atomic uint64_t requests;  /* answers of every kind, errors included */
    _Atomic uint64_t decisions; /* answers that are decisions */
    _Atomic uint64_t errors;    /* Error answers */
    /* Time from a decision's request frame cut from the input, through
     * decoding, deciding and encoding, to its answer frame in the output
     * buffer, in ns: nbad's own share of a client's latency. */
    histogram decision_latency;
} conn_stats;

/* What the connections of one worker share. Owned by the worker, which
 * calls conn_pool_init() and then fills the first four fields before
 * opening connections. */
typedef struct conn_pool {
    struct event_base *base; /* the worker's loop */
    decider *decider;        /* the worker's decider */
    uint32_t max_frame;      /* largest request body accepted */
    size_t out_limit;        /* pending output above which a connection stops reading */
    /* maintained by this module */
    conn *head;    /* open connections, newest first */
    size_t n_open; /* number of them */
    bool draining; /* conn_pool_drain() was called */
    conn_stats stats;
    arena scratch; /* how the answer being written is encoded (wire_plan) */
} conn_pool;

/* Zeroes p and its counters and makes its scratch arena. Returns 0 or
 * -ENOMEM. */
int conn_pool_init(conn_pool *p);

/* Frees what conn_pool_init() made; every connection must be closed. */
void conn_pool_destroy(conn_pool *p);

/* Takes over the accepted, non-blocking socket fd and starts reading from
 * it. `serial` names the connection in logs. On failure the socket is
 * closed and a negative errno returned (-ENOMEM). */
int conn_open(conn_pool *p, evutil_socket_t fd, uint64_t serial, const char *peer);

/* Shutdown: every connection stops reading, drops the requests it has not
 * answered yet, writes out what it has answered and closes. Once the last
 * connection has closed, the pool breaks its event loop
 * (event_base_loopbreak), at once if there is none. */
void conn_pool_drain(conn_pool *p);

/* Closes and frees every connection now, flushed or not. */
void conn_pool_close_all(conn_pool *p);

#endif
