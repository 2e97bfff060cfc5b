/* csv_writer.h - writes CSV fast: one big buffer per file, no stdio, no
 * allocation per row.
 *
 * Output is UTF-8 with LF line ends. csv_field() quotes a field as RFC 4180
 * says (the whole field in double quotes, inner quotes doubled) when it
 * holds a comma, a quote or a line break, and writes it bare otherwise; the
 * other csv_* calls write text the caller knows needs no quoting (numbers,
 * ids, timestamps).
 *
 * Errors are sticky: a failed write is remembered and reported by
 * csv_writer_close(), so the row-writing calls need no checks.
 */
#ifndef NBA_CSV_WRITER_H
#define NBA_CSV_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "error.h"

typedef struct csv_writer {
    int fd;
    int error; /* first write error (negative errno), 0 if none */
    char *buf;
    size_t len, cap;
    uint64_t bytes; /* written to the file so far */
    char path[512];
} csv_writer;

/* Creates (or truncates) path for writing with a buffer of buffer_size bytes
 * (at least 4096). Returns 0, or a negative errno with a message naming the
 * file. */
int csv_writer_open(csv_writer *w, const char *path, size_t buffer_size, nba_error *err);

/* Writes the buffer out. Called by the put functions when the buffer is
 * nearly full; the caller needs it only through csv_writer_close(). */
void csv_writer_flush(csv_writer *w);

/* Flushes, syncs and closes. Returns 0, or the first error of the file's
 * life with a message naming it. The writer is unusable afterwards. */
int csv_writer_close(csv_writer *w, nba_error *err);

/* Makes room for n more bytes (n must be far below the buffer size). */
static inline char *csv_room(csv_writer *w, size_t n)
{
    if (w->cap - w->len < n)
        csv_writer_flush(w);
    return w->buf + w->len;
}

/* Raw bytes, at most a few KiB. */
static inline void csv_raw(csv_writer *w, const char *s, size_t n)
{
    memcpy(csv_room(w, n), s, n);
    w->len += n;
}

static inline void csv_str(csv_writer *w, const char *s)
{
    csv_raw(w, s, strlen(s));
}

static inline void csv_char(csv_writer *w, char c)
{
    *csv_room(w, 1) = c;
    w->len++;
}

/* v in decimal, zero-padded to at least width digits. */
static inline void csv_uint(csv_writer *w, uint64_t v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char *p = csv_room(w, 48);
    for (int i = n; i < width && i < 24; i++)
        *p++ = '0';
    while (n)
        *p++ = tmp[--n];
    w->len = (size_t)(p - w->buf);
}

/* cents as a decimal amount with two places: 123456 -> 1234.56. */
static inline void csv_cents(csv_writer *w, int64_t cents)
{
    if (cents < 0) {
        csv_char(w, '-');
        cents = -cents;
    }
    csv_uint(w, (uint64_t)cents / 100, 1);
    csv_char(w, '.');
    csv_uint(w, (uint64_t)cents % 100, 2);
}

/* A text field, quoted when it has to be. */
void csv_field(csv_writer *w, const char *s, size_t n);

#endif
