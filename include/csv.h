/* csv.h - a streaming reader for RFC 4180 CSV files (UTF-8, header row).
 *
 * Quoted fields may contain commas, doubled quotes and line breaks; lines may
 * end in CRLF or LF; a UTF-8 byte-order mark at the start is skipped. Records
 * are returned one at a time, so a file of any size is read in constant
 * memory.
 *
 * Ownership: field pointers returned by csv_next() belong to the reader and
 * are valid until the next csv_next() or csv_close().
 */
#ifndef NBA_CSV_H
#define NBA_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

typedef struct csv_reader csv_reader;

typedef struct csv_record {
    size_t count;          /* number of fields */
    const char **fields;   /* NUL-terminated field texts (quotes removed) */
    const size_t *lengths; /* byte length of each field */
} csv_record;

/* Opens path for reading. Returns 0, or -ENOENT/-EACCES/... with a message
 * naming the file. */
int csv_open(const char *path, csv_reader **out, nba_error *err);

/* Reads the next record into *rec. Returns 1 when a record was read, 0 at the
 * end of the file, or -EINVAL with "file:line: message" when the text is not
 * valid CSV (an unterminated quote, text after a closing quote, a field or
 * record beyond the reader's limits, invalid UTF-8). After invalid UTF-8 the
 * reader goes on with the next record (the bad one was read to its end);
 * after any other error every later call fails too, since where the next
 * record starts is no longer known. */
int csv_next(csv_reader *r, csv_record *rec, nba_error *err);

/* Whether an error stopped the reader for good: every later csv_next()
 * fails (see csv_next). */
bool csv_failed(const csv_reader *r);

/* The line number (1-based) on which the record last returned starts. */
size_t csv_line(const csv_reader *r);

/* The path given to csv_open(). */
const char *csv_path(const csv_reader *r);

/* Bytes of the file consumed so far (up to the end of the record last
 * returned, a byte-order mark included): with csv_size(), how far through
 * the file a reader is. */
uint64_t csv_bytes_read(const csv_reader *r);

/* The file's size when csv_open() found a regular file; 0 for a pipe or a
 * device, whose size is not known in advance. */
uint64_t csv_size(const csv_reader *r);

void csv_close(csv_reader *r);

#endif
