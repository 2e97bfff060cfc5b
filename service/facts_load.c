/* facts_load.c - see include/facts_load.h. */
#include "facts_load.h"

#include <errno.h>

#include "clock.h"

int facts_load(store_reader *r, const Nba__V1__ContactEvent *ev, arena *a, facts *f)
{
    Nba__V1__Customer *customer = NULL;
    Nba__V1__Incident **incidents = NULL;
    size_t n_incidents = 0;

    int rc = store_reader_begin(r);
    if (rc)
        return rc;
    rc = store_get_customer(r, ev->customer_id, a, &customer);
    if (rc == -ENOENT) {
        customer = NULL;
        rc = 0;
    } else if (rc == 0) {
        rc = store_get_incidents(r, ev->customer_id, a, &incidents, &n_incidents);
    }
    store_reader_end(r);
    if (rc)
        return rc;

    f->event = ev;
    f->customer = customer;
    f->incidents = incidents;
    f->n_incidents = n_incidents;
    f->now_ms = ev->occurred_at_ms ? ev->occurred_at_ms : clock_now_ms();
    return 0;
}
