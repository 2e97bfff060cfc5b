/* csv.c - see include/csv.h.
 *
 * A byte-level state machine over a large read buffer. Field text is copied
 * into one record buffer, each field NUL-terminated, so the caller gets C
 * strings without a malloc per field. Both buffers are allocated once per
 * reader and never grow, which is what keeps memory constant whatever the
 * size of the file; a record that does not fit is an error, not a realloc.
 *
 * Ordinary runs of bytes (the bulk of any file) are found with a table
 * lookup and copied with one memcpy, instead of going through the state
 * switch byte by byte. UTF-8 is checked per field once the record is
 * complete, eight ASCII bytes at a time, while the record is still in cache.
 *
 * Blank lines are skipped: a file ending in a line break (or a few of them)
 * has no empty last record, and a blank line inside a multi-column file is
 * never meant as a record of one empty field. A field that must be empty in
 * a one-column file is written "".
 */
#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CSV_READ_SIZE  (1u << 20) /* bytes per read(2) */
#define CSV_MAX_RECORD (1u << 20) /* bytes of one record's field text, NULs included */
#define CSV_MAX_FIELDS 4096u

enum csv_state {
    ST_FIELD_START,     /* nothing of the current field read yet */
    ST_UNQUOTED,        /* inside a field that did not start with a quote */
    ST_QUOTED,          /* inside a quoted field */
    ST_QUOTE_IN_QUOTED, /* read a quote inside a quoted field: "" or the end */
    ST_CR,              /* read a CR outside quotes; only LF may follow */
};

struct csv_reader {
    int fd;
    char *path;
    char *buf; /* CSV_READ_SIZE bytes */
    size_t buf_len;
    size_t buf_pos;
    uint64_t consumed; /* bytes read from the file before those in buf */
    uint64_t size;     /* of the file when it is a regular file, else 0 */
    bool eof;
    int failed;         /* error code once the text was found invalid: sticky */
    size_t line;        /* line of the next unread byte */
    size_t record_line; /* line on which the record last returned starts */
    char *rec;          /* CSV_MAX_RECORD bytes: field texts, each NUL-terminated */
    size_t rec_len;
    size_t nfields;
    size_t offs[CSV_MAX_FIELDS + 1]; /* start of each field in rec */
    size_t lengths[CSV_MAX_FIELDS];
    const char *fields[CSV_MAX_FIELDS];
};

/* Bytes that end a run of ordinary text outside quotes. */
static const bool unquoted_stop[256] = {[','] = true, ['\n'] = true, ['\r'] = true, ['"'] = true};

static int read_more(csv_reader *r, nba_error *err)
{
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->buf_len, CSV_READ_SIZE - r->buf_len);
        if (n >= 0) {
            if (n == 0)
                r->eof = true;
            r->buf_len += (size_t)n;
            return 0;
        }
        if (errno != EINTR) {
            int e = errno;
            return nba_error_set(err, -e, "%s:%zu: cannot read: %s", r->path, r->line, strerror(e));
        }
    }
}

/* Refills the buffer once everything in it was consumed. At the end of the
 * file, buf_len stays 0. */
static int refill(csv_reader *r, nba_error *err)
{
    r->consumed += r->buf_len;
    r->buf_pos = 0;
    r->buf_len = 0;
    if (r->eof)
        return 0;
    return read_more(r, err);
}

int csv_open(const char *path, csv_reader **out, nba_error *err)
{
    int rc = 0;
    *out = NULL;
    csv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return nba_error_set(err, -ENOMEM, "%s: out of memory", path);
    r->fd = -1;
    r->line = 1;
    r->path = strdup(path);
    r->buf = malloc(CSV_READ_SIZE);
    r->rec = malloc(CSV_MAX_RECORD);
    if (!r->path || !r->buf || !r->rec) {
        rc = nba_error_set(err, -ENOMEM, "%s: out of memory", path);
        goto out;
    }
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = -errno;
        nba_error_set(err, rc, "%s: cannot open: %s", path, strerror(-rc));
        goto out;
    }
    struct stat sb;
    if (fstat(r->fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        rc = nba_error_set(err, -EISDIR, "%s: is a directory, not a CSV file", path);
        goto out;
    }
    if (S_ISREG(sb.st_mode))
        r->size = (uint64_t)sb.st_size;
    /* The file is read front to back once: let the kernel read ahead. */
    (void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);

    /* Skip a UTF-8 byte-order mark, which spreadsheet exports like to add;
     * it would otherwise become part of the first column's name. A short
     * read (a pipe) may return fewer than its three bytes. */
    while (r->buf_len < 3 && !r->eof) {
        rc = read_more(r, err);
        if (rc)
            goto out;
    }
    if (r->buf_len >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0)
        r->buf_pos = 3;
out:
    if (rc) {
        csv_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void csv_close(csv_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->path);
    free(r->buf);
    free(r->rec);
    free(r);
}

size_t csv_line(const csv_reader *r)
{
    return r->record_line;
}

const char *csv_path(const csv_reader *r)
{
    return r->path;
}

uint64_t csv_bytes_read(const csv_reader *r)
{
    return r->consumed + r->buf_pos;
}

uint64_t csv_size(const csv_reader *r)
{
    return r->size;
}

bool csv_failed(const csv_reader *r)
{
    return r->failed != 0;
}

/* Records an error in the text; every later csv_next() fails too, since the
 * reader no longer knows where records begin. */
static int fail(csv_reader *r, nba_error *err, size_t line, const char *what)
{
    r->failed = -EINVAL;
    return nba_error_set(err, -EINVAL, "%s:%zu: %s", r->path, line, what);
}

static int too_long(csv_reader *r, nba_error *err)
{
    r->failed = -EINVAL;
    return nba_error_set(err, -EINVAL,
                         "%s:%zu: record longer than %u bytes (an unterminated quoted field?)",
                         r->path, r->record_line, CSV_MAX_RECORD);
}

static int append(csv_reader *r, const char *p, size_t n, nba_error *err)
{
    if (n > CSV_MAX_RECORD - r->rec_len)
        return too_long(r, err);
    memcpy(r->rec + r->rec_len, p, n);
    r->rec_len += n;
    return 0;
}

static int end_field(csv_reader *r, nba_error *err)
{
    if (r->nfields == CSV_MAX_FIELDS) {
        r->failed = -EINVAL;
        return nba_error_set(err, -EINVAL, "%s:%zu: record has more than %u fields", r->path,
                             r->record_line, CSV_MAX_FIELDS);
    }
    if (r->rec_len == CSV_MAX_RECORD)
        return too_long(r, err);
    r->lengths[r->nfields] = r->rec_len - r->offs[r->nfields];
    r->rec[r->rec_len++] = '\0';
    r->nfields++;
    r->offs[r->nfields] = r->rec_len;
    return 0;
}

/* Returns the offset of the first byte of s[0..len) that is not part of
 * well-formed UTF-8 (overlong forms, surrogates and code points past
 * U+10FFFF are not), or of the first NUL, which would cut the C string
 * short; len when there is neither. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    while (i < len) {
        if (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            /* All eight bytes ASCII and none of them zero. */
            if ((((w - ones) & ~w) | w) & highs) {
                /* fall through to the byte-wise check */
            } else {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == 0)
                return i;
            i++;
            continue;
        }
        size_t n;                           /* continuation bytes */
        unsigned char lo = 0x80, hi = 0xBF; /* range of the first continuation byte */
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* past U+10FFFF */
        } else {
            return i;
        }
        if (len - i <= n || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += n + 1;
    }
    return len;
}

/* Checks every field of the completed record; on failure names the line the
 * bad byte is on, which is later than the record's first line when a quoted
 * field before it holds line breaks. The record was read to its end, so the
 * next one can still be read: the error is not sticky. */
static int check_utf8(csv_reader *r, nba_error *err)
{
    for (size_t f = 0; f < r->nfields; f++) {
        const unsigned char *s = (const unsigned char *)r->rec + r->offs[f];
        size_t at = utf8_invalid_at(s, r->lengths[f]);
        if (at == r->lengths[f])
            continue;
        size_t line = r->record_line;
        for (const char *p = r->rec; p < (const char *)s + at; p++)
            line += *p == '\n';
        if (s[at] == 0)
            return nba_error_set(err, -EINVAL, "%s:%zu: NUL byte in field %zu", r->path, line,
                                 f + 1);
        return nba_error_set(err, -EINVAL,
                             "%s:%zu: invalid UTF-8 in field %zu (byte 0x%02X at offset %zu); "
                             "the file must be UTF-8, not Latin-1 or Windows-1252",
                             r->path, line, f + 1, s[at], at);
    }
    return 0;
}

int csv_next(csv_reader *r, csv_record *rec, nba_error *err)
{
    int rc;
    if (r->failed)
        return nba_error_set(err, r->failed, "%s:%zu: reading stopped at an earlier error", r->path,
                             r->line);

    enum csv_state state = ST_FIELD_START;
    bool blank = true; /* nothing but a line break read so far */
    size_t quote_line = 0;
    r->rec_len = 0;
    r->nfields = 0;
    r->offs[0] = 0;
    r->record_line = r->line;

    for (;;) {
        if (r->buf_pos == r->buf_len) {
            rc = refill(r, err);
            if (rc) {
                r->failed = rc;
                return rc;
            }
            if (r->buf_len == 0)
                break; /* end of file */
        }
        const char *p = r->buf + r->buf_pos, *end = r->buf + r->buf_len;
        char c;

        switch (state) {
        case ST_FIELD_START:
            if (*p == '"') {
                state = ST_QUOTED;
                blank = false;
                quote_line = r->line;
                r->buf_pos++;
            } else {
                state = ST_UNQUOTED;
            }
            continue;

        case ST_UNQUOTED: {
            const char *q = p;
            while (q < end && !unquoted_stop[(unsigned char)*q])
                q++;
            if (q > p) {
                rc = append(r, p, (size_t)(q - p), err);
                if (rc)
                    return rc;
                blank = false;
            }
            r->buf_pos += (size_t)(q - p);
            if (q == end)
                continue;
            c = *q;
            r->buf_pos++;
            if (c == ',') {
                rc = end_field(r, err);
                if (rc)
                    return rc;
                blank = false;
                state = ST_FIELD_START;
            } else if (c == '\n') {
                r->line++;
                goto record_end;
            } else if (c == '\r') {
                state = ST_CR;
            } else {
                return fail(r, err, r->line,
                            "quote inside an unquoted field (quote the whole field and "
                            "double the quotes inside it)");
            }
            continue;
        }

        case ST_QUOTED: {
            const char *q = p;
            size_t lines = 0;
            while (q < end && *q != '"') {
                lines += *q == '\n';
                q++;
            }
            rc = append(r, p, (size_t)(q - p), err);
            if (rc)
                return rc;
            r->line += lines;
            r->buf_pos += (size_t)(q - p);
            if (q < end) {
                r->buf_pos++;
                state = ST_QUOTE_IN_QUOTED;
            }
            continue;
        }

        case ST_QUOTE_IN_QUOTED:
            c = *p;
            r->buf_pos++;
            if (c == '"') {
                rc = append(r, "\"", 1, err);
                if (rc)
                    return rc;
                state = ST_QUOTED;
            } else if (c == ',') {
                rc = end_field(r, err);
                if (rc)
                    return rc;
                state = ST_FIELD_START;
            } else if (c == '\n') {
                r->line++;
                goto record_end;
            } else if (c == '\r') {
                state = ST_CR;
            } else {
                return fail(r, err, r->line,
                            "text after the closing quote of a field (a quote inside a "
                            "quoted field must be doubled)");
            }
            continue;

        case ST_CR:
            if (*p != '\n')
                return fail(r, err, r->line,
                            "carriage return not followed by a line feed outside quotes");
            r->buf_pos++;
            r->line++;
            goto record_end;
        }

    record_end:
        if (blank) {
            r->record_line = r->line;
            state = ST_FIELD_START;
            continue;
        }
        goto record_done;
    }

    /* End of file. A last line without a line break is still a record; a
     * lone CR at the very end is taken as its line break. */
    if (state == ST_QUOTED) {
        r->failed = -EINVAL;
        return nba_error_set(err, -EINVAL,
                             "%s:%zu: quoted field is never closed (the end of the file came "
                             "first)",
                             r->path, quote_line);
    }
    if (blank)
        return 0;

record_done:
    rc = end_field(r, err);
    if (rc)
        return rc;
    rc = check_utf8(r, err);
    if (rc)
        return rc;
    for (size_t f = 0; f < r->nfields; f++)
        r->fields[f] = r->rec + r->offs[f];
    rec->count = r->nfields;
    rec->fields = r->fields;
    rec->lengths = r->lengths;
    return 1;
}
