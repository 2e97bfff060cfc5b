/* facts_load.h - the facts of one decision, read from the store: the
 * customer of a contact event and their incidents, in one read snapshot.
 * Shared by the daemon's decider and by the tools that decide in-process
 * (nbactl explain, nbactl rules simulate), so both see the same facts.
 */
#ifndef NBA_FACTS_LOAD_H
#define NBA_FACTS_LOAD_H

#include "arena.h"
#include "facts.h"
#include "state.h"
#include "store.h"
#include "nba.pb-c.h"

/* Reads ev's customer and their incidents in one snapshot of reader r (the
 * snapshot begins and ends here) and fills f: the event, the customer (NULL
 * when there is no such customer: not an error), the incidents, and the
 * decision's time (ev->occurred_at_ms, or the clock when that is 0).
 *
 * An event with an empty customer_id and a lookup key (key_name,
 * key_value) has the key resolved in the same snapshot (store_find_key):
 * f->event is then a copy of ev in `a` whose customer_id is the customer's,
 * so that everything done with the facts (the decision, what is recorded
 * for it) uses that id. A key no customer has, or of a name the data was
 * not loaded with, leaves f->event = ev and the customer unknown. Otherwise
 * f->event is ev (customer_id wins over a key).
 *
 * The records are copied into arena `a`, so the snapshot ends before any
 * rule runs; f points into `a` and into ev. Returns 0, or the store's
 * negative errno when it cannot be read. */
int facts_load(store_reader *r, const Nba__V1__ContactEvent *ev, arena *a, facts *f);

/* Adds to f (filled by facts_load()) what nbad itself has written about the
 * customer, read through s inside a snapshot or an attachment the caller
 * began: incidents reported live (replacing a warehouse incident of the
 * same id, since they are newer), each incident's recovered_by/at from the
 * recovery marks, and the contact history. *decision gets the decision
 * stored under the idempotency key key[0..key_len) (NULL when none; key_len
 * 0 asks for none) and *decided_at_ms when it was decided. Everything new lives in arena `a`.
 * Returns 0 or the state's negative errno. */
int facts_add_state(state_reader *s, const char *key, size_t key_len, arena *a, facts *f,
                    const uint8_t **decision, size_t *decision_len, int64_t *decided_at_ms);

#endif
