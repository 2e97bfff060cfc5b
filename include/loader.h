/* loader.h - loads the warehouse's CSV extracts into the store.
 *
 * The file formats are those of the data contract: customers.csv with the
 * required columns customer_id, name, tier, lifetime_value, predicted_ltv,
 * language (any order; every other column becomes a customer attribute),
 * and incidents.csv with incident_id, customer_id, kind, severity,
 * occurred_at, flight, resolved, note.
 *
 * A load replaces the whole content of the store in one write transaction:
 * either every row of both files is in, or (on the first bad row) nothing
 * changed at all.
 */
#ifndef NBA_LOADER_H
#define NBA_LOADER_H

#include <stddef.h>
#include "error.h"
#include "store.h"

typedef struct loader_stats {
    size_t customers;
    size_t incidents;
} loader_stats;

/* Loads customers_csv (required) and incidents_csv (NULL: the customers have
 * no incidents) into st, replacing what it held. Returns 0, or a negative
 * errno with a message of the form "path:line: what is wrong" (-EINVAL for
 * bad content: a missing column, a malformed number or timestamp, a severity
 * outside 1..5, a duplicate id, an incident of an unknown customer). On
 * failure the store is unchanged. stats may be NULL. */
int loader_load(store *st, const char *customers_csv, const char *incidents_csv,
                loader_stats *stats, nba_error *err);

#endif
