/* facts_load.c - see include/facts_load.h. */
#include "facts_load.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "clock.h"

/* Whether ev names its customer by a lookup key rather than by id. */
static bool by_key(const Nba__V1__ContactEvent *ev)
{
    return (!ev->customer_id || !ev->customer_id[0]) && ev->key_name && ev->key_name[0] &&
           ev->key_value && ev->key_value[0];
}

int facts_load(store_reader *r, const Nba__V1__ContactEvent *ev, arena *a, facts *f)
{
    Nba__V1__Customer *customer = NULL;
    Nba__V1__Incident **incidents = NULL;
    size_t n_incidents = 0;
    const Nba__V1__ContactEvent *event = ev;

    int rc = store_reader_begin(r);
    if (rc)
        return rc;
    if (by_key(ev)) {
        /* Resolved in the snapshot the customer is read from, so a load
         * switching generations in between cannot pair the key of one
         * with the record of another. */
        char *id;
        rc = store_find_key(r, ev->key_name, ev->key_value, a, &id);
        if (rc == 0) {
            Nba__V1__ContactEvent *copy = arena_alloc(a, sizeof *copy);
            if (copy) {
                *copy = *ev;
                copy->customer_id = id;
                event = copy;
            } else {
                rc = -ENOMEM;
            }
        } else if (rc == -ENOENT) {
            rc = 0; /* no such key: an unknown customer */
        }
    }
    if (rc == 0 && event->customer_id && event->customer_id[0]) {
        rc = store_get_customer(r, event->customer_id, a, &customer);
        if (rc == -ENOENT) {
            customer = NULL;
            rc = 0;
        } else if (rc == 0) {
            rc = store_get_incidents(r, event->customer_id, a, &incidents, &n_incidents);
        }
    }
    store_reader_end(r);
    if (rc)
        return rc;

    f->event = event;
    f->customer = customer;
    f->incidents = incidents;
    f->n_incidents = n_incidents;
    f->history = NULL;
    f->n_history = 0;
    f->now_ms = ev->occurred_at_ms ? ev->occurred_at_ms : clock_now_ms();
    return 0;
}

/* Incidents of f (warehouse, incident_id order) and of the state (live,
 * incident_id order) as one list in incident_id order, a live incident
 * replacing the warehouse's of the same id. */
static int merge_incidents(const state_customer *sc, arena *a, facts *f)
{
    size_t cap = f->n_incidents + sc->n_incidents;
    Nba__V1__Incident **merged = arena_alloc(a, cap * sizeof *merged);
    if (!merged)
        return -ENOMEM;
    size_t i = 0, j = 0, n = 0;
    while (i < f->n_incidents || j < sc->n_incidents) {
        int cmp;
        if (i == f->n_incidents)
            cmp = 1;
        else if (j == sc->n_incidents)
            cmp = -1;
        else
            cmp = strcmp(f->incidents[i]->incident_id, sc->incidents[j]->incident_id);
        if (cmp < 0) {
            merged[n++] = f->incidents[i++];
        } else {
            merged[n++] = sc->incidents[j++];
            if (cmp == 0)
                i++;
        }
    }
    f->incidents = merged;
    f->n_incidents = n;
    return 0;
}

int facts_add_state(state_reader *s, const char *key, size_t key_len, arena *a, facts *f,
                    const uint8_t **decision, size_t *decision_len, int64_t *decided_at_ms)
{
    state_customer sc;
    int rc = state_get_customer(s, f->event->customer_id, key, key_len, a, &sc);
    if (rc)
        return rc;
    *decision = sc.decision;
    *decision_len = sc.decision_len;
    *decided_at_ms = sc.decision_at_ms;
    if (sc.n_incidents) {
        rc = merge_incidents(&sc, a, f);
        if (rc)
            return rc;
    }
    /* Both lists are in incident_id order: one walk marks the recovered. */
    for (size_t i = 0, j = 0; i < f->n_incidents && j < sc.n_recoveries;) {
        int cmp = strcmp(f->incidents[i]->incident_id, sc.recoveries[j]->incident_id);
        if (cmp < 0) {
            i++;
        } else if (cmp > 0) {
            j++;
        } else {
            f->incidents[i]->recovered_by = sc.recoveries[j]->action;
            f->incidents[i]->recovered_at_ms = sc.recoveries[j]->at_ms;
            i++;
            j++;
        }
    }
    f->history = sc.history;
    f->n_history = sc.n_history;
    return 0;
}
