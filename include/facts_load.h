/* facts_load.h - the facts of one decision, read from the store: the
 * customer of a contact event and their incidents, in one read snapshot.
 * Shared by the daemon's decider and by the tools that decide in-process
 * (nbactl explain, nbactl rules simulate), so both see the same facts.
 */
#ifndef NBA_FACTS_LOAD_H
#define NBA_FACTS_LOAD_H

#include "arena.h"
#include "facts.h"
#include "store.h"
#include "nba.pb-c.h"

/* Reads ev's customer and their incidents in one snapshot of reader r (the
 * snapshot begins and ends here) and fills f: the event, the customer (NULL
 * when there is no such customer: not an error), the incidents, and the
 * decision's time (ev->occurred_at_ms, or the clock when that is 0). The
 * records are copied into arena `a`, so the snapshot ends before any rule
 * runs; f points into `a` and into ev. Returns 0, or the store's negative
 * errno when it cannot be read. */
int facts_load(store_reader *r, const Nba__V1__ContactEvent *ev, arena *a, facts *f);

#endif
