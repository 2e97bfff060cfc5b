/* sorter.h - sorts records of any number in bounded memory (an external
 * merge sort).
 *
 * A record is a key and a value (byte strings) and two numbers the caller
 * carries along (the loader: the lines a row came from). Records come back
 * in key order (bytes compared as memcmp does, a key before every longer
 * key it begins), and records with equal keys in the order they were added:
 * the sort is stable, so the first of two duplicates is the first added.
 *
 * Records are held in memory up to the sorter's budget. Past it, what is
 * held is sorted and written out as a run to a temporary file, unlinked as
 * soon as it is created, so nothing is left behind however the process ends;
 * reading the result then merges the runs. Input that arrives in key order
 * is never sorted again, only copied.
 *
 * Ownership: the sorter copies what is added. A record returned by
 * sorter_next() points into the sorter and is valid until the next
 * sorter_next(), sorter_rewind() or sorter_free().
 */
#ifndef NBA_SORTER_H
#define NBA_SORTER_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

typedef struct sorter sorter;

typedef struct sorter_record {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *val;
    size_t val_len;
    uint64_t tag[2]; /* as given to sorter_add() */
} sorter_record;

/* The most memory a sorter is given when the caller does not say. */
#define SORTER_DEFAULT_MEMORY ((size_t)256 << 20)

/* Creates a sorter that holds up to `memory` bytes of records (0 = the
 * default; at least 1 MiB is used) and writes its runs, when it needs any,
 * to an unlinked file in directory tmp_dir. Returns 0 or -ENOMEM. */
int sorter_new(const char *tmp_dir, size_t memory, sorter **out, nba_error *err);

/* Adds a record (copied). Keys are at most 65535 bytes, values at most
 * 2^32 - 1. Returns 0, -EINVAL when the record is too large, -ENOMEM, or
 * the errno of a failed write of a run (-ENOSPC when the disk is full),
 * with a message naming the directory. Only before sorter_finish(). */
int sorter_add(sorter *s, const void *key, size_t key_len, const void *val, size_t val_len,
               uint64_t tag0, uint64_t tag1, nba_error *err);

/* Ends the input: sorts what is held and prepares the runs for merging
 * (merging groups of them first when there are too many to merge at once).
 * Reading starts at the first record. Returns 0 or a negative errno with a
 * message. */
int sorter_finish(sorter *s, nba_error *err);

/* Reads the next record in order into *out. Returns 1, 0 after the last, or
 * a negative errno with a message (-EIO when a run cannot be read back).
 * Only after sorter_finish(). */
int sorter_next(sorter *s, sorter_record *out, nba_error *err);

/* Starts reading again at the first record, so the records can be read more
 * than once (a load that is retried). Returns 0 or a negative errno. */
int sorter_rewind(sorter *s, nba_error *err);

/* The number of records added. */
uint64_t sorter_count(const sorter *s);

/* The number of runs written to disk so far (0: everything fits in memory). */
size_t sorter_runs(const sorter *s);

/* Frees the sorter and its temporary file. NULL is fine. */
void sorter_free(sorter *s);

#endif
