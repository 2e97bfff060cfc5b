/* decider.h - one request, start to finish: decode, facts, rules, answer.
 *
 * A decider belongs to one worker thread. It owns the thread's store reader
 * (an LMDB read transaction renewed per request) and the arena every request
 * is decoded and answered in, so answering a request makes no malloc calls
 * once the arena has warmed up.
 *
 * Ownership: a Response returned by decider_handle() or decider_error()
 * lives in the decider's arena and stays valid until the next call on the
 * same decider.
 */
#ifndef NBA_DECIDER_H
#define NBA_DECIDER_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "rules_live.h"
#include "store.h"
#include "nba.pb-c.h"

typedef struct decider decider;

/* Creates a decider reading from st and deciding with the ruleset serving
 * in `rules` at the time of each request. Both must outlive it. The calling
 * thread must be registered with rules_live_register_thread(). Returns 0 or
 * a negative errno with a message. */
int decider_new(store *st, rules_live *rules, decider **out, nba_error *err);

void decider_free(decider *d);

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
 * decision with known=false. Returns 0, or a negative errno when the store
 * cannot be read. */
int decider_decide(decider *d, const Nba__V1__ContactEvent *ev, Nba__V1__Decision *out);

/* Answers one request frame body. Forgets the previous request's memory,
 * decodes body[0..len) and dispatches on its kind. Returns 0 when the
 * connection may go on, or -EBADMSG when the body did not decode: *resp is
 * then an error response the caller sends before closing the connection. */
int decider_handle(decider *d, const uint8_t *body, size_t len, Nba__V1__Response **resp);

/* Builds an error response (code is one of the documented Error codes, e.g.
 * "frame_too_large"), for failures found before a body is decoded. */
Nba__V1__Response *decider_error(decider *d, uint64_t id, const char *code, const char *message);

#endif
