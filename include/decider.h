/* decider.h - one request, start to finish: decode, facts, rules, answer.
 *
 * A decider belongs to one worker thread. It owns the thread's store reader
 * (an LMDB read transaction renewed per request) and the arena every request
 * is decoded and answered in, so answering a request makes no malloc calls
 * once the arena has warmed up.
 *
 * Ownership: a Response returned by decider_handle() or decider_error()
 * lives in the decider's arena and stays valid until the next call on the
 * same decider. One from decider_handle() may also point into the serving
 * ruleset (rule ids, action types, texts without placeholders), which it
 * holds until decider_done(): encode it before that.
 */
#ifndef NBA_DECIDER_H
#define NBA_DECIDER_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "rules_live.h"
#include "state.h"
#include "store.h"
#include "store_live.h"
#include "writer.h"
#include "nba.pb-c.h"

typedef struct decider decider;

/* Creates a decider reading from st and deciding with the ruleset serving
 * in `rules` at the time of each request. Both must outlive it. The calling
 * thread must be registered with rules_live_register_thread(). Returns 0 or
 * a negative errno with a message. */
int decider_new(store *st, rules_live *rules, decider **out, nba_error *err);

void decider_free(decider *d);

/* Makes the decider follow the generations of `live`: st (which the decider
 * was made with) is a store the caller acquired from live, generation
 * `generation`, and the decider now holds it. Before each request the
 * decider compares live's generation with its own and, when a switch
 * happened, moves its reader to the new store and releases the old one.
 * Returns 0. */
int decider_follow(decider *d, store_live *live, store *st, uint64_t generation);

/* Moves to the generation serving now, as a request would, and lets go of
 * the database and state snapshots kept between requests: for a thread
 * that has had no request for a while, so that it holds on to none. */
void decider_follow_now(decider *d);

/* Fills what a status request reports beyond the server's name and the
 * serving ruleset (which the decider sets): uptime, connections, counters,
 * decision latency, database size. `status` is initialised and its
 * decision_latency points to an initialised Latency; both live in the
 * decider's arena. Called on the decider's thread while it answers a
 * StatusRequest; returns 0 or a negative errno. */
typedef int (*decider_status_fn)(void *arg, Nba__V1__Status *status);

/* Makes fn(arg, ...) the source of status answers. A decider without one
 * (a test, a tool) answers a StatusRequest with the error "unsupported". */
void decider_set_status_source(decider *d, decider_status_fn fn, void *arg);

/* Makes the decision for one contact event into out (initialised by the
 * caller), allocating from the decider's arena: facts from the store, then
 * the ruleset's match, arbitrate and render steps. An unknown customer is a
 * decision with known=false. out may point into the serving ruleset, held
 * as decider_handle() holds it, until decider_done(). Returns 0, or a
 * negative errno when the store cannot be read. */
int decider_decide(decider *d, const Nba__V1__ContactEvent *ev, Nba__V1__Decision *out);

/* Answers one request frame body. Forgets the previous request's memory,
 * decodes body[0..len) and dispatches on its kind. Returns 0 when the
 * connection may go on, or -EBADMSG when the body did not decode: *resp is
 * then an error response the caller sends before closing the connection.
 * With a writer (decider_attach_state), also DECIDER_DEFERRED: the request
 * must be made durable before it is answered; *resp is NULL and the caller
 * calls decider_submit() before body[] changes. */
int decider_handle(decider *d, const uint8_t *body, size_t len, Nba__V1__Response **resp);

/* Ends the hold decider_handle() took on the serving ruleset for its
 * answer: call it once the answer is encoded, and before the thread waits
 * for anything, since a reload waits for every hold to end. The next
 * decider_handle() and decider_free() end it too; without one held it does
 * nothing. */
void decider_done(decider *d);

/* ---- the state and durable requests ----
 *
 * With a state, a decider reads what nbad wrote about the customer into
 * every decision: incidents reported live, which incidents a recorded
 * action recovered, the contact history; and a retried event (the same
 * idempotency key, as the ruleset's policy defines it) gets the decision
 * stored for it, creating nothing new.
 *
 * With a writer too, requests that must be durable before they are
 * answered go to the writer: a contact event whose decision records an
 * action with a lasting effect (the ruleset's policy says which), an
 * incident report, an incident resolution. The writer's own decider (made
 * on the writer thread, with decider_attach_state(d, st, NULL, ...)) applies
 * them in its transaction with decider_apply(): it decides again there,
 * seeing every write before it, so two contacts racing for the same
 * incident are put in order and the second sees the first's upgrade.
 */
#define DECIDER_DEFERRED 1

/* Makes the decider read state st (a reader is made for the calling
 * thread) and, when w is not NULL, hand durable requests to w, whose jobs
 * come back through done(done_arg, job) on the writer thread. Returns 0 or
 * a negative errno with a message. */
int decider_attach_state(decider *d, state *st, writer *w, writer_done_fn done, void *done_arg,
                         nba_error *err);

/* After decider_handle() returned DECIDER_DEFERRED: queues the request for
 * the writer, tagged with `tag` (given back in the job). Returns 0, or a
 * negative errno when it cannot be queued (out of memory, the writer is
 * stopping): *resp is then an error response to send instead. */
int decider_submit(decider *d, void *tag, Nba__V1__Response **resp);

/* On the writer thread: applies job (a request body) inside t and sets
 * job->answer to the response frame. Returns 0, or a negative errno when
 * the job's writes must be undone (job->answer is then an error answer). */
int decider_apply(decider *d, state_txn *t, writer_job *job);

/* On the writer thread, while it has nothing to write: removes what has
 * expired at now_ms (unix ms: the clock's time) by the serving ruleset's
 * policy (stored decisions past the idempotency window, history past
 * `keep_history`) from the state, looking at no more than `limit` records
 * (0: all) from where *sweep left off, in a transaction of its own.
 * (decider_apply() does the same for the customer of each contact it
 * records, reckoned from the event's time.) *removed gets how many went.
 * Returns 0 or a negative errno with a message. */
int decider_expire(decider *d, state *st, int64_t now_ms, state_sweep *sweep, size_t limit,
                   size_t *removed, nba_error *err);

/* Sets job->answer to an "unavailable" error answer carrying message, for
 * a job whose transaction failed. */
void decider_fail(decider *d, writer_job *job, int rc, const char *message);

/* Builds an error response (code is one of the documented Error codes, e.g.
 * "frame_too_large"), for failures found before a body is decoded. */
Nba__V1__Response *decider_error(decider *d, uint64_t id, const char *code, const char *message);

#endif
