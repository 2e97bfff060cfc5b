/* state.h - what nbad itself writes: incidents reported live by the
 * customer service system, the contact history, the decisions of events
 * that wrote something (so a retried event gets the same answer), and the
 * outbox of follow-ups waiting for the letter service.
 *
 * It is an LMDB environment of its own (ROOT/state, beside the warehouse's
 * generations: see include/dbroot.h), so that a nightly refresh replaces the
 * warehouse's data without losing a single letter or history entry.
 *
 * Layout: three named databases.
 *   customer  key = customer_id 0x00 kind rest
 *               'H' at_ms (8 bytes, big-endian) seq (8 bytes)  -> HistoryEntry
 *               'I' incident_id                                -> Incident
 *               'K' idempotency key      -> decided at (8 bytes, ms) Decision
 *               'R' incident_id  -> HistoryEntry (the action that recovered it)
 *   outbox    key = id (8 bytes, big-endian)                   -> OutboxEntry
 *   meta      key = name -> text: "seq" (the last history and outbox
 *             number handed out)
 * Everything about one customer sorts together, so a decision reads it with
 * one cursor descent, and a customer with no state costs that one descent.
 * Big-endian numbers make history sort oldest first and the outbox in the
 * order letters were decided.
 *
 * Readers and writers follow include/store.h, but for one thing: a
 * state_reader keeps its read transaction between snapshots and renews it
 * only when something was committed since (the state changes far less
 * often than it is read), until state_reader_release(). One state_txn at a
 * time writes, and commits durably (LMDB's fsync) before anyone is told it
 * is done. Several processes may use the environment at once (nbad writing
 * decisions, `nbactl outbox` acknowledging letters): LMDB serialises their
 * writes, and a reader sees another process's commits as its own.
 *
 * Ownership: records read are decoded into the caller's arena and outlive
 * the transaction; records passed in are copied.
 *
 * Errors: negative errno values as in store.h (-ENOENT, -ENOSPC for a full
 * map, -EIO for damage), with a message where a function takes nba_error.
 */
#ifndef NBA_STATE_H
#define NBA_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arena.h"
#include "error.h"
#include "nba.pb-c.h"

typedef struct state state;
typedef struct state_reader state_reader;
typedef struct state_txn state_txn;

/* Longest idempotency key kept (LMDB keys are at most 511 bytes, and the
 * customer id comes first). */
#define STATE_MAX_KEY 256

/* Opens (creating when missing) the state environment in directory `dir`.
 * map_size as in store_open (0 = 64 GiB; the file takes only what it
 * uses). Returns 0, -EACCES, -EIO, -ENOMEM with a message naming dir. */
int state_open(const char *dir, size_t map_size, state **out, nba_error *err);

/* Closes the environment; every reader and txn must have been freed. */
void state_close(state *st);

/* ---- reading ---- */

/* A reader for the calling thread. Returns 0, -EAGAIN (reader table full),
 * -ENOMEM. */
int state_reader_new(state *st, state_reader **out, nba_error *err);
void state_reader_free(state_reader *r);

/* Starts a read snapshot of the state as last committed: the one the
 * reader holds when nothing was committed since, else a renewed one.
 * Returns 0 or a negative errno. */
int state_reader_begin(state_reader *r);

/* Makes the reader read inside write transaction t instead, seeing what t
 * has written so far: how the writer decides again inside the transaction
 * that records the decision. Ended by state_reader_end() like a snapshot,
 * and before t ends. Returns 0 or a negative errno. */
int state_reader_attach(state_reader *r, state_txn *t);

/* Ends the snapshot or the attachment. The snapshot's transaction is kept
 * for the next state_reader_begin(). */
void state_reader_end(state_reader *r);

/* Lets go of the transaction a reader keeps between snapshots. A kept
 * transaction holds on to the pages of its snapshot, which the writer
 * cannot reuse meanwhile: a thread calls this when it goes idle (nbad's
 * workers, every second). */
void state_reader_release(state_reader *r);

/* What the state holds about one customer, decoded into an arena. */
typedef struct state_customer {
    Nba__V1__Incident **incidents; /* reported live, by incident_id */
    size_t n_incidents;
    Nba__V1__HistoryEntry **recoveries; /* by incident_id: what recovered it */
    size_t n_recoveries;
    Nba__V1__HistoryEntry **history; /* oldest first */
    size_t n_history;
    /* The decision stored under the idempotency key asked for (packed
     * nba.v1.Decision, copied into the arena), or NULL. */
    const uint8_t *decision;
    size_t decision_len;
    int64_t decision_at_ms; /* when it was decided */
} state_customer;

/* Reads everything about customer_id inside the reader's snapshot, and the
 * decision stored under key[0..key_len) (key_len 0: none asked for).
 * A customer with no state gets an all-empty *out. Returns 0, -EBADMSG for
 * a record that does not decode, -ENOMEM, or another negative errno. */
int state_get_customer(state_reader *r, const char *customer_id, const char *key, size_t key_len,
                       arena *a, state_customer *out);

/* How many decisions the reader's last state_get_customer() found stored
 * for its customer, under any key: with none, a caller need not work out
 * an idempotency key to look one up. */
size_t state_reader_decisions(const state_reader *r);

/* The decision stored for customer_id under key[0..key_len), read inside
 * the reader's snapshot or attachment, copied into the arena as
 * state_get_customer() gives it: *decision NULL when none. Returns 0,
 * -ENOMEM, or another negative errno. */
int state_get_decision(state_reader *r, const char *customer_id, const char *key, size_t key_len,
                       arena *a, const uint8_t **decision, size_t *len, int64_t *at_ms);

/* ---- writing ---- */

/* Begins the environment's write transaction (waiting for another
 * process's to end). Returns 0 or a negative errno with a message. */
int state_txn_begin(state *st, state_txn **out, nba_error *err);

/* Savepoints: the writer puts each request's writes in a savepoint, so one
 * request's failure (a full map) undoes its own writes and not those of
 * the other requests in the same transaction. One level: begin, then
 * either release (keep) or rollback (undo). Returns 0 or a negative errno. */
int state_txn_savepoint(state_txn *t);
int state_txn_release(state_txn *t);
void state_txn_rollback(state_txn *t);

/* Reads a live incident inside the transaction (it sees its own writes).
 * Returns 0, -ENOENT when none was reported under that id, -EBADMSG. */
int state_txn_get_incident(state_txn *t, const char *customer_id, const char *incident_id, arena *a,
                           Nba__V1__Incident **out);

/* Stores (inserts or replaces) a live incident. *created (may be NULL)
 * tells whether the id was new to the state. -EINVAL with a message when an
 * id is empty, too long or holds a NUL; -ENOSPC when the map is full. */
int state_txn_put_incident(state_txn *t, const Nba__V1__Incident *inc, bool *created,
                           nba_error *err);

/* Appends e to its customer's history (e->at_ms orders it). With
 * `recovers` and an incident_id, also marks that incident recovered by e.
 * Errors as state_txn_put_incident. */
int state_txn_add_history(state_txn *t, const Nba__V1__HistoryEntry *e, bool recovers,
                          nba_error *err);

/* Stores the packed decision of an event, decided at at_ms, under its
 * idempotency key (replacing an older one). */
int state_txn_put_decision(state_txn *t, const char *customer_id, const char *key, size_t key_len,
                           int64_t at_ms, const uint8_t *decision, size_t len, nba_error *err);

/* Adds e to the outbox under the next id, which it writes into e->id.
 * Errors as state_txn_put_incident. */
int state_txn_add_outbox(state_txn *t, Nba__V1__OutboxEntry *e, nba_error *err);

/* ---- expiry ---- */

/* What has expired: stored decisions made before decisions_before_ms (a
 * retry that late is no retry: see the idempotency window), and history
 * entries recorded before history_before_ms (0: history never expires).
 * Recovery marks and live incidents never expire. Times are unix ms. */
typedef struct state_expiry {
    int64_t decisions_before_ms;
    int64_t history_before_ms;
} state_expiry;

/* Removes customer_id's expired records inside t. *removed (may be NULL)
 * gets how many went. Returns 0 or a negative errno. */
int state_txn_expire_customer(state_txn *t, const char *customer_id, const state_expiry *x,
                              size_t *removed);

/* Where a sweep of every customer's records goes on from; zero-initialised
 * before the first. */
typedef struct state_sweep {
    uint8_t key[512];
    size_t len;   /* 0: from the first record */
    bool wrapped; /* the last call reached the end, and starts over next */
} state_sweep;

/* Removes expired records of every customer, a part at a time: looks at
 * no more than `limit` records from where *sweep left off, and leaves
 * *sweep where to go on (after the last record, it starts over). Lets a
 * writer spread the work over its idle moments. *removed (may be NULL)
 * gets how many went. Returns 0 or a negative errno. */
int state_txn_expire_sweep(state_txn *t, const state_expiry *x, state_sweep *sweep, size_t limit,
                           size_t *removed);

/* Commits durably and frees t; on failure everything is rolled back, t is
 * freed, and a negative errno returned with a message. */
int state_txn_commit(state_txn *t, nba_error *err);

/* Rolls back and frees t. */
void state_txn_abort(state_txn *t);

/* ---- the outbox and the history, for nbactl ---- */

/* Called per entry; a non-zero return stops the walk and is returned. */
typedef int (*state_outbox_fn)(void *arg, const Nba__V1__OutboxEntry *e);
typedef int (*state_history_fn)(void *arg, const Nba__V1__HistoryEntry *e);

/* Calls fn for every entry waiting in the outbox, in id order, in one read
 * snapshot. Returns 0, fn's non-zero return, or a negative errno with a
 * message. */
int state_outbox_list(state *st, state_outbox_fn fn, void *arg, nba_error *err);

/* Counts one more export of each entry ids[0..n) still waiting (others are
 * skipped), in one write transaction. Returns 0 or a negative errno. */
int state_outbox_mark_exported(state *st, const uint64_t *ids, size_t n, nba_error *err);

/* Removes entries ids[0..n) from the outbox for good, in one write
 * transaction. *acked gets how many were waiting; ids not waiting (already
 * acknowledged, or never given) are not an error: acknowledging is safe to
 * repeat. Returns 0 or a negative errno with a message. */
int state_outbox_ack(state *st, const uint64_t *ids, size_t n, size_t *acked, nba_error *err);

/* Calls fn for every history entry, of customer_id (NULL: everyone's), in
 * key order (by customer, then oldest first). Returns as state_outbox_list. */
int state_history_list(state *st, const char *customer_id, state_history_fn fn, void *arg,
                       nba_error *err);

/* Record counts, read in one snapshot (walks the outbox and the customer
 * table: for tools, not for the request path). */
typedef struct state_stats {
    size_t outbox;    /* entries waiting */
    size_t history;   /* history entries */
    size_t incidents; /* live incidents */
    size_t decisions; /* stored decisions */
} state_stats;
int state_get_stats(state *st, state_stats *out, nba_error *err);

#endif
