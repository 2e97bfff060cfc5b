/* loader_keys.h - the lookup keys of a load (private to the loader): the
 * key columns named with `nbactl load --keys`, the keys each customer
 * record holds, and the check that no two customers share one.
 *
 * A key column holds any number of keys separated by ';' (a passenger with
 * two open bookings: "X7K2QP;B3RT9Z"). Spaces and tabs around each key are
 * dropped and empty ones ignored, so an empty column is a customer without
 * that key. A key column is also kept as an attribute, like every other
 * extra column: the keys of a stored customer are read back from its
 * record, which is how an upsert finds the keys a customer had before.
 *
 * Keys are checked across rows by sorting them (sorter.h: bounded memory),
 * which brings the customers sharing a key together; the sorted keys are
 * then what is written, in the keys table's order. The sort holds a key as
 * one byte, the rank of its name among the names in byte order, then the
 * value: the same order as name 0x00 value, but the value starts within
 * the bytes the sort compares first, and the records are smaller.
 */
#ifndef NBA_LOADER_KEYS_H
#define NBA_LOADER_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

/* The most key columns one load may name. */
#define LOADER_MAX_KEYS 16

typedef struct loader_keys loader_keys;

/* Parses a list of key column names separated by commas
 * ("loyalty_card,booking_ref"). *out is NULL for an empty list. Returns 0,
 * -EINVAL with a message (an empty name, one given twice, a name longer
 * than STORE_MAX_KEY_NAME, more than LOADER_MAX_KEYS), or -ENOMEM. */
int loader_keys_new(const char *list, loader_keys **out, nba_error *err);

/* Frees the keys and their sort. NULL is fine. */
void loader_keys_free(loader_keys *k);

size_t loader_keys_count(const loader_keys *k);

/* The i-th name, as given. */
const char *loader_keys_name(const loader_keys *k, size_t i);

/* All the names, as given: loader_keys_count() of them. */
const char *const *loader_keys_names(const loader_keys *k);

/* The names as given, separated by commas: what meta "keys" holds. */
const char *loader_keys_list(const loader_keys *k);

/* Whether a and b name the same columns, in any order (NULL: none). */
bool loader_keys_same(const loader_keys *a, const loader_keys *b);

/* The next key of a key column's text [*p, end): skips separators, spaces
 * and empty keys, sets value and len and moves *p past it. Returns false
 * when no key is left. */
bool loader_keys_next_value(const char **p, const char *end, const char **value, size_t *len);

/* Called for each key a record holds: `key` is the key column's index
 * (loader_keys_name() names it). A nonzero return stops the walk and is
 * returned. */
typedef int (*loader_key_fn)(void *ctx, size_t key, const char *value, size_t len);

/* Calls fn for every key the packed nba.v1.Customer rec[0..len) holds in
 * its attributes named like a key column. Returns 0, what fn returned, or
 * -EBADMSG when the record does not decode. */
int loader_keys_of_record(const loader_keys *k, const uint8_t *rec, size_t len, loader_key_fn fn,
                          void *ctx);

/* Starts collecting the keys of a pass (those of an earlier pass are
 * dropped): a sort that holds up to `memory` bytes and spills to tmp_dir.
 * Returns 0 or a negative errno with a message. */
int loader_keys_begin(loader_keys *k, const char *tmp_dir, size_t memory, nba_error *err);

/* Adds the keys of the customer record rec[0..rec_len) (customer_id
 * id[0..id_len), whose row starts on `line`) to the pass. Returns 0 or a
 * negative errno with a message. */
int loader_keys_add(loader_keys *k, const uint8_t *id, size_t id_len, const uint8_t *rec,
                    size_t rec_len, size_t line, nba_error *err);

/* What loader_keys_finish() hands over, key by key in the keys table's
 * order. A nonzero return of either stops it and is returned. */
typedef struct loader_keys_sink {
    /* A key, and the first row (the lowest line) holding it. */
    int (*put)(void *ctx, const char *name, const char *value, size_t value_len, const uint8_t *id,
               size_t id_len, size_t line);
    /* A key the row starting on `line` holds and an earlier row (starting
     * on first_line) holds too: once for each such later row. */
    int (*duplicate)(void *ctx, const char *name, const char *value, size_t value_len, size_t line,
                     size_t first_line);
    void *ctx;
} loader_keys_sink;

/* Sorts the keys the pass added and hands each to the sink: put() for
 * every key, then duplicate() for each other row holding it. A customer
 * holding the same key twice ("X;X") holds it once. Returns 0, what the
 * sink returned, or a negative errno with a message. */
int loader_keys_finish(loader_keys *k, const loader_keys_sink *sink, nba_error *err);

#endif
