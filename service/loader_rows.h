/* loader_rows.h - one warehouse extract read row by row, each row checked
 * and turned into the store's key and packed record (private to the loader:
 * loader.c decides the order the records go into the store in).
 *
 * The checks here are those a row passes or fails on its own: the header,
 * the number of fields, ids present and not too long, numbers, language
 * tags, severities, timestamps. Those that need other rows (duplicates, an
 * incident's customer) are the loader's.
 *
 * Ownership: a row's key and value point into the reader and are valid until
 * the next rows_next(), rows_reopen() or rows_close().
 */
#ifndef NBA_LOADER_ROWS_H
#define NBA_LOADER_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

typedef enum row_kind {
    ROW_CUSTOMER,
    ROW_INCIDENT,
} row_kind;

typedef struct row {
    const uint8_t *key; /* customer_id, or customer_id 0x00 incident_id */
    size_t key_len;
    size_t customer_len; /* bytes of customer_id at the start of key */
    const uint8_t *val;  /* the packed nba.v1.Customer or nba.v1.Incident */
    size_t val_len;
    size_t line;          /* where the row starts */
    size_t id_line;       /* where its own id is: customer_id or incident_id */
    size_t customer_line; /* where its customer_id is */
} row;

typedef struct row_reader row_reader;

/* Opens path and reads its header row: every required column of kind must
 * be there exactly once, in any order (for customers, every other column
 * becomes an attribute). Returns 0 or a negative errno with
 * "path:line: what is wrong" (-EINVAL for a bad header, -ENOENT, -EACCES,
 * -EISDIR for the file). */
int rows_open(const char *path, row_kind kind, row_reader **out, nba_error *err);

/* Makes the customers file's columns names[0..n) lookup key columns (see
 * loader_keys.h): each must be one of the file's extra columns, and every
 * key in it at most STORE_MAX_ID bytes, or the row is bad. Before the first
 * row is read; names must outlive the reader. Returns 0 or -EINVAL with a
 * message ("path:line: the header has no column 'x' ..."). */
int rows_set_keys(row_reader *r, const char *const *names, size_t n, nba_error *err);

/* Reads, checks and packs the next row. Returns 1 with *out filled, 0 at the
 * end of the file, -EINVAL for a bad row with "path:line: what is wrong"
 * (rows_line() is where the row starts; rows_can_go_on() whether the rows
 * after it can still be read), or another negative errno. */
int rows_next(row_reader *r, row *out, nba_error *err);

/* From now on, rows are read, checked and packed in a thread of the
 * reader's own, ahead of rows_next() (which then only takes them over), so
 * that reading a file runs beside what the caller does with its rows; also
 * after rows_reopen(). Returns 0 or a negative errno with a message. */
int rows_read_ahead(row_reader *r, nba_error *err);

/* While reading ahead: whether the thread has already read a key smaller
 * than the one before it (the file is not in key order), though rows_next()
 * may not have got there yet. */
bool rows_out_of_order(const row_reader *r);

/* Whether reading can go on after rows_next() returned an error: the row
 * was bad, but the CSV text around it was sound. */
bool rows_can_go_on(const row_reader *r);

/* The line on which the row last read (or found bad) starts. */
size_t rows_line(const row_reader *r);

const char *rows_path(const row_reader *r);

/* How far through the file the reader is, and the file's size (0 when it is
 * not a regular file). */
uint64_t rows_bytes_read(const row_reader *r);
uint64_t rows_size(const row_reader *r);

/* Whether the file is a regular file, which can be read again from the
 * start. */
bool rows_rereadable(const row_reader *r);

/* Starts again at the first row (the header is read again). Returns 0 or a
 * negative errno with a message. */
int rows_reopen(row_reader *r, nba_error *err);

void rows_close(row_reader *r);

/* Copies text into buf for an error message: at most 80 bytes, cut on a
 * character boundary, with line breaks and other control bytes shown as
 * escapes so the message stays on one line. Returns buf. */
const char *rows_quote(char *buf, size_t size, const char *text, size_t len);

/* The size of a buffer rows_quote() never overflows. */
#define ROWS_QUOTE_SIZE (80 * 4 + 16)

#endif
