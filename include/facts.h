/* facts.h - what is known when one decision is made: the contact event, the
 * customer record, the customer's incidents and their contact history. Assembled by the decider
 * from the request and the store; read by the rule engine. The rule engine never looks anything up
 * itself, so it can be tested with facts built by hand.
 *
 * Ownership: the facts only point; everything pointed to belongs to the
 * caller (in the daemon: the worker's arena) and must outlive the decision.
 */
#ifndef NBA_FACTS_H
#define NBA_FACTS_H

#include <stddef.h>
#include <stdint.h>
#include "nba.pb-c.h"

typedef struct facts {
    const Nba__V1__ContactEvent *event;  /* never NULL */
    const Nba__V1__Customer *customer;   /* NULL when the customer is unknown */
    Nba__V1__Incident *const *incidents; /* the customer's incidents, any order; an
                                          * incident's recovered_by says which recorded
                                          * action answered it ("" while none did) */
    size_t n_incidents;
    /* The customer's contact history: every recorded action with a lasting
     * effect, oldest first. Empty (NULL, 0) when there is none. */
    Nba__V1__HistoryEntry *const *history;
    size_t n_history;
    int64_t now_ms; /* the event's time: occurred_at_ms, or the clock when that is 0 */
} facts;

#endif
