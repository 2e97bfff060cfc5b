/* loader.h - loads the warehouse's CSV extracts into the store.
 *
 * The file formats are those of the data contract: customers.csv with the
 * required columns customer_id, name, tier, lifetime_value, predicted_ltv,
 * language (any order; every other column becomes a customer attribute),
 * and incidents.csv with incident_id, customer_id, kind, severity,
 * occurred_at, flight, resolved, note.
 *
 * Records go into the store in key order: customer_id, then each
 * customer's incidents by incident_id (see store.h), appended at the end of
 * the tree, which is the fastest way in and leaves every page full. Files
 * that are in that order already (customers sorted by id, incidents by
 * customer_id then incident_id, as nbagen writes them) are read once, side
 * by side (each in a thread of its own), and streamed straight in: memory
 * stays bounded (the rows read ahead, and for a fresh store the records
 * since the last commit) whatever their size. A file found out of order is sorted instead
 * (sorter.h: in bounded memory, spilling sorted runs to an unlinked file in the store's directory):
 * a regular file is then read again from the start, a pipe is sorted from its first row.
 *
 * Lookup keys: customers.csv columns named in `keys` hold other
 * identifiers a contact point may know a customer by (a booking reference,
 * a loyalty card number), several in one column separated by ';'. They are
 * kept as attributes like every other extra column, and each key also goes
 * into the store's keys table (store.h), naming its customer.
 *
 * Checks: every row on its own (loader_rows.h), then across rows: a
 * customer_id or (customer_id, incident_id) given twice, an incident_id
 * given twice in the incidents file, an incident of a customer that is
 * neither in the customers file nor (for an upsert) in the database, a
 * lookup key that another row (or, for an upsert, a customer in the
 * database) holds. Every bad row is reported as "path:line: what is
 * wrong".
 */
#ifndef NBA_LOADER_H
#define NBA_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "store.h"

typedef enum loader_mode {
    /* The files replace the store's whole content. */
    LOADER_REPLACE,
    /* The files are a delta: their customers and incidents are inserted or
     * replaced, everything else stays. */
    LOADER_UPSERT,
} loader_mode;

/* Where a load is, for a progress display. */
typedef enum loader_phase {
    LOADER_STREAMING, /* reading the files and writing the store at once */
    LOADER_SORTING,   /* reading a file that is out of order into the sort */
    LOADER_WRITING,   /* writing the sorted records (and any file in order) */
} loader_phase;

typedef struct loader_progress {
    loader_phase phase;
    unsigned attempt;  /* 0, then 1, 2 after starting again (a file out of order, a map grown) */
    uint64_t rows;     /* rows read from the files (in LOADER_WRITING: records written) */
    uint64_t rejected; /* bad rows skipped so far */
    double fraction;   /* of the whole load done, 0..1; < 0 when it cannot be known (a pipe) */
} loader_progress;

typedef struct loader_options {
    const char *customers; /* customers.csv (required) */
    const char *incidents; /* incidents.csv, or NULL: no incidents */
    loader_mode mode;
    /* The store is a new environment that nobody reads yet (a generation
     * being built): a replacing load then commits as it goes, so memory
     * stays bounded whatever the size; the caller makes it visible when the
     * load has succeeded. Otherwise everything happens in one transaction,
     * which readers see all at once on commit or not at all. */
    bool fresh;
    /* A fresh replacing load commits after this many bytes of records (0:
     * 64 MiB: commits are rare, and LMDB never has to spill pages). */
    size_t commit_bytes;
    /* Bad rows are skipped and reported (through `rejected`) up to this
     * many; one more fails the load. 0: the first bad row fails it. */
    size_t max_errors;
    /* Memory for sorting a file that is out of order, per file, and the
     * lookup keys (0: the sorter's default; 64 MiB for the keys). Runs go
     * to the store's directory. */
    size_t sort_memory;
    /* Lookup key columns of the customers file, separated by commas
     * ("loyalty_card,booking_ref"), or NULL / "" for none. A replacing load
     * writes the keys and records the names in meta "keys". An upsert
     * keeps the keys of the database's names up to date (a customer's old
     * keys go, its new ones come) whatever is given here; given, it must
     * name the same columns. */
    const char *keys;
    /* Called with each bad row skipped: "path:line: what is wrong". */
    void (*rejected)(void *ctx, const char *message);
    /* Called every 65536 rows or so, and when the phase changes; a nonzero
     * return stops the load (-ECANCELED). */
    int (*progress)(void *ctx, const loader_progress *p);
    void *ctx;
} loader_options;

typedef struct loader_stats {
    size_t customers; /* rows loaded from each file */
    size_t incidents;
    size_t rejected_customers; /* bad rows skipped in each file */
    size_t rejected_incidents;
    bool sorted_customers; /* the file was not in key order, and was sorted */
    bool sorted_incidents;
    size_t keys;       /* lookup keys written */
    size_t sort_runs;  /* runs the sorts wrote to disk (0: they fit in memory) */
    unsigned attempts; /* 1, or more when the load started again */
} loader_stats;

/* Loads opt->customers and opt->incidents into st as opt says. A replacing
 * load sets meta "loaded_at" and "keys" (removed when there are none); an
 * upsert sets "updated_at". Returns 0, or a negative errno with a message:
 * -EINVAL for bad content ("path:line: what is wrong"; past max_errors, the
 * first bad row not skipped) or for keys an upsert cannot keep, -ENOENT,
 * -EACCES for the files, -ENOSPC when the store is full (an upsert first
 * grows the map and tries again), -ECANCELED when progress asked to stop.
 * On failure the store is unchanged, except that a fresh store may hold part
 * of the load (the caller throws it away). stats may be NULL. */
int loader_run(store *st, const loader_options *opt, loader_stats *stats, nba_error *err);

/* loader_run() replacing the content in one transaction, the first bad row
 * failing the load: customers_csv (required) and incidents_csv (NULL: no
 * incidents). */
int loader_load(store *st, const char *customers_csv, const char *incidents_csv,
                loader_stats *stats, nba_error *err);

#endif
