/* loader_rows.c - see loader_rows.h.
 *
 * A row is checked field by field as it comes from the CSV reader, then
 * packed straight from the reader's field texts into one reusable buffer:
 * no copy of the row, no allocation per row or field. The message structs
 * and the attribute arrays are set up once per file, from its header.
 */
#include "loader_rows.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "csv.h"
#include "loader_keys.h"
#include "store.h"

/* Longest value quoted back in an error message, in bytes. */
#define LOADER_QUOTE_MAX 80

/* Reading ahead: rows go from the reading thread to the caller in blocks
 * of about this size, through a ring of this many. */
#define AHEAD_BLOCK  ((size_t)1 << 20)
#define AHEAD_BLOCKS 4

enum customer_column {
    CC_ID,
    CC_NAME,
    CC_TIER,
    CC_LIFETIME_VALUE,
    CC_PREDICTED_LTV,
    CC_LANGUAGE,
    CC_COUNT
};

static const char *const customer_columns[CC_COUNT] = {
    "customer_id", "name", "tier", "lifetime_value", "predicted_ltv", "language",
};

enum incident_column {
    IC_ID,
    IC_CUSTOMER_ID,
    IC_KIND,
    IC_SEVERITY,
    IC_OCCURRED_AT,
    IC_FLIGHT,
    IC_RESOLVED,
    IC_NOTE,
    IC_COUNT
};

static const char *const incident_columns[IC_COUNT] = {
    "incident_id", "customer_id", "kind", "severity", "occurred_at", "flight", "resolved", "note",
};

/* An extra column of customers.csv. */
typedef struct attr_column {
    const char *name;
    size_t col;
} attr_column;

/* What the header row of one file says. */
typedef struct header {
    size_t ncols;
    char **names;         /* every column's name, one allocation with the texts */
    size_t req[IC_COUNT]; /* column of each required name (IC_COUNT >= CC_COUNT) */
    attr_column *attrs;   /* the other columns, sorted by name */
    size_t nattrs;
    size_t line; /* where the header row is */
} header;

/* What the reading thread hands over for one row: a row (key and value
 * follow), a bad row (its message follows), or the end. */
enum item_kind { ITEM_ROW, ITEM_BAD, ITEM_END };

typedef struct item {
    uint32_t kind;
    uint32_t key_len, val_len, customer_len;
    uint64_t line, id_line, customer_line;
    uint64_t bytes_read;
    int32_t rc;     /* ITEM_BAD, ITEM_END: what rows_next() returns */
    uint32_t go_on; /* ITEM_BAD: reading goes on after it */
    uint32_t msg_len;
    uint32_t pad;
} item;

typedef struct block {
    uint8_t *data;
    size_t len, cap;
} block;

/* The reading thread and the ring of blocks it fills. */
typedef struct ahead {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    block blocks[AHEAD_BLOCKS];
    size_t filled[AHEAD_BLOCKS]; /* FIFO of blocks ready for the caller */
    size_t nfilled, first_filled;
    size_t empty[AHEAD_BLOCKS]; /* blocks free for the thread */
    size_t nempty;
    bool stop;
    /* The thread's look at key order: the key before, and whether a key
     * smaller than the one before it has been read. */
    uint8_t prev[2 * STORE_MAX_ID + 1];
    size_t prev_len;
    atomic_bool out_of_order;
    /* The caller's side. */
    block *cur;
    size_t cur_index, pos;
    bool have_cur;
    bool ended; /* the last item was taken: rc is what every later call returns */
    int end_rc;
    char end_msg[NBA_ERROR_MAX];
    size_t line;
    bool go_on;
    uint64_t bytes_read;
} ahead;

struct row_reader {
    row_kind kind;
    char *path;
    csv_reader *csv;
    locale_t c_locale; /* numbers are read with '.' whatever the process locale */
    header h;
    /* Lookup key columns (rows_set_keys): their names, owned by the
     * caller, and where each is in this file's header. */
    const char *const *key_names;
    size_t n_keys;
    size_t key_cols[LOADER_MAX_KEYS];
    bool bad_row;           /* the last rows_next() found a bad row */
    size_t *attr_name_lens; /* of h.attrs[k].name */
    size_t attr_names;      /* their sum */
    uint8_t *buf;           /* packing buffer, grown as needed */
    size_t cap;
    char key[2 * STORE_MAX_ID + 1];
    ahead *ah;       /* reading ahead in a thread, when asked to */
    bool want_ahead; /* and again after a reopen */
};

/* ---- small text checks ---- */

/* A finite decimal number: [+-] digits [. digits] [e [+-] digits], with at
 * least one digit before the exponent. The shape is checked here because
 * strtod also takes hex, "inf", "nan" and leading spaces.
 *
 * Most values (money, counts) have at most 15 significant digits and no
 * exponent: then the digits as an integer and the power of ten are both
 * exact doubles, and one IEEE division rounds exactly as strtod would, at a
 * fraction of its cost. Everything else goes to strtod_l. */
static bool parse_decimal(const char *s, size_t len, locale_t loc, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0, digits = 0, frac_digits = 0;
    uint64_t mantissa = 0;
    bool negative = false, exponent = false;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        negative = s[i++] == '-';
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (digits < 19)
            mantissa = mantissa * 10 + (uint64_t)(s[i] - '0');
        i++, digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (digits < 19)
                mantissa = mantissa * 10 + (uint64_t)(s[i] - '0');
            i++, digits++, frac_digits++;
        }
    }
    if (digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        exponent = true;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exp_digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, exp_digits++;
        if (exp_digits == 0)
            return false;
    }
    if (i != len)
        return false;
    if (!exponent && digits <= 15 && frac_digits < sizeof pow10 / sizeof pow10[0]) {
        double v = (double)mantissa / pow10[frac_digits];
        *out = negative ? -v : v;
        return true;
    }
    char *end;
    double v = strtod_l(s, &end, loc);
    if (end != s + len || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

/* The shape of a BCP 47 tag as the rules use it: a primary language subtag
 * of 2-3 letters, then any number of "-" subtags of 1-8 letters or digits
 * (en, it, zh-Hant, pt-BR, sr-Latn-RS). Empty means unknown and is fine. */
static bool language_ok(const char *s, size_t len)
{
    if (len == 0)
        return true;
    size_t i = 0;
    while (i < len && is_alpha(s[i]))
        i++;
    if (i < 2 || i > 3)
        return false;
    while (i < len) {
        if (s[i] != '-')
            return false;
        size_t start = ++i;
        while (i < len && is_alnum(s[i]))
            i++;
        if (i - start < 1 || i - start > 8)
            return false;
    }
    return true;
}

const char *rows_quote(char *buf, size_t size, const char *text, size_t len)
{
    size_t o = 0, i = 0;
    while (i < len && o + 8 < size) {
        unsigned char c = (unsigned char)text[i];
        if (i >= LOADER_QUOTE_MAX && (c & 0xC0) != 0x80) {
            o += (size_t)snprintf(buf + o, size - o, "...");
            break;
        }
        if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c == '\r') {
            buf[o++] = '\\';
            buf[o++] = 'r';
        } else if (c < 0x20 || c == 0x7F) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02X", c);
        } else {
            buf[o++] = (char)c;
        }
        i++;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- error messages ---- */

/* The line a field is on: the record's first line plus the line breaks in
 * the quoted fields before it. */
static size_t field_line(const csv_reader *csv, const csv_record *rec, size_t col)
{
    size_t line = csv_line(csv);
    for (size_t f = 0; f < col && f < rec->count; f++)
        for (size_t i = 0; i < rec->lengths[f]; i++)
            line += rec->fields[f][i] == '\n';
    return line;
}

/* "path:line: what (column 'x': value 'y')" for a bad field. */
static int field_error(const row_reader *r, const csv_record *rec, size_t col, nba_error *err,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int field_error(const row_reader *r, const csv_record *rec, size_t col, nba_error *err,
                       const char *fmt, ...)
{
    char what[512], value[ROWS_QUOTE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nba_error_set(err, -EINVAL, "%s:%zu: %s (column '%s': value '%s')", r->path,
                         field_line(r->csv, rec, col), what, r->h.names[col],
                         rows_quote(value, sizeof value, rec->fields[col], rec->lengths[col]));
}

/* ---- the header row ---- */

static void header_free(header *h)
{
    free(h->names);
    free(h->attrs);
    memset(h, 0, sizeof *h);
}

static int cmp_attr(const void *a, const void *b)
{
    return strcmp(((const attr_column *)a)->name, ((const attr_column *)b)->name);
}

/* Reads the header row: every required column must be there exactly once,
 * in any order. With attrs, the other columns are listed as attributes; in
 * their absence they are ignored (a newer extract may carry more). */
static int read_header(row_reader *r, const char *const *required, size_t nrequired, bool attrs,
                       nba_error *err)
{
    csv_record rec;
    csv_reader *csv = r->csv;
    header *h = &r->h;
    const char *path = r->path;
    int rc = csv_next(csv, &rec, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return nba_error_set(err, -EINVAL, "%s:1: the file is empty; expected a header row", path);
    size_t line = csv_line(csv);
    h->line = line;

    /* One allocation: the pointer array, then the texts. */
    size_t bytes = rec.count * sizeof(char *);
    for (size_t i = 0; i < rec.count; i++)
        bytes += rec.lengths[i] + 1;
    h->names = malloc(bytes);
    h->attrs = calloc(rec.count, sizeof *h->attrs);
    if (!h->names || !h->attrs)
        return nba_error_set(err, -ENOMEM, "%s: out of memory", path);
    h->ncols = rec.count;
    char *text = (char *)(h->names + rec.count);
    for (size_t i = 0; i < rec.count; i++) {
        memcpy(text, rec.fields[i], rec.lengths[i] + 1);
        h->names[i] = text;
        text += rec.lengths[i] + 1;
    }

    for (size_t i = 0; i < h->ncols; i++) {
        if (h->names[i][0] == '\0')
            return nba_error_set(err, -EINVAL, "%s:%zu: column %zu of the header has no name", path,
                                 line, i + 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(h->names[i], h->names[j]) == 0)
                return nba_error_set(err, -EINVAL,
                                     "%s:%zu: column '%s' appears twice in the header (columns "
                                     "%zu and %zu)",
                                     path, line, h->names[i], j + 1, i + 1);
    }
    for (size_t r = 0; r < nrequired; r++) {
        size_t i = 0;
        while (i < h->ncols && strcmp(h->names[i], required[r]) != 0)
            i++;
        if (i == h->ncols) {
            char found[1024];
            size_t o = 0;
            found[0] = '\0';
            for (size_t k = 0; k < h->ncols && o < sizeof found - 1; k++)
                o += (size_t)snprintf(found + o, sizeof found - o, "%s%s", k ? ", " : "",
                                      h->names[k]);
            return nba_error_set(err, -EINVAL,
                                 "%s:%zu: the header has no column '%s' (columns found: %s)", path,
                                 line, required[r], found);
        }
        h->req[r] = i;
    }
    if (attrs) {
        for (size_t i = 0; i < h->ncols; i++) {
            bool is_required = false;
            for (size_t r = 0; r < nrequired; r++)
                is_required |= h->req[r] == i;
            if (!is_required)
                h->attrs[h->nattrs++] = (attr_column){h->names[i], i};
        }
        qsort(h->attrs, h->nattrs, sizeof *h->attrs, cmp_attr);
    }
    return 0;
}

static int check_field_count(const row_reader *r, const csv_record *rec, nba_error *err)
{
    if (rec->count == r->h.ncols)
        return 0;
    return nba_error_set(err, -EINVAL, "%s:%zu: %zu fields, but the header has %zu columns",
                         r->path, csv_line(r->csv), rec->count, r->h.ncols);
}

/* An id must be there and fit in a store key. */
static int check_id(const row_reader *r, const csv_record *rec, size_t col, nba_error *err)
{
    if (rec->lengths[col] == 0)
        return field_error(r, rec, col, err, "empty %s", r->h.names[col]);
    if (rec->lengths[col] > STORE_MAX_ID)
        return field_error(r, rec, col, err, "%s longer than %d bytes", r->h.names[col],
                           STORE_MAX_ID);
    return 0;
}

/* ---- packing ----
 *
 * The two records are written straight from the row's field texts in
 * protocol buffers' encoding, byte for byte as protobuf-c packs
 * nba.v1.Customer and nba.v1.Incident (fields in number order, proto3
 * defaults left out: empty strings, zeros, false, a double whose bits are
 * all zero), without building the messages first or measuring every string
 * twice, which took most of the time of a row. record.c reads them back. */

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_BYTES = 2 };

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_tag(uint8_t *p, unsigned field, unsigned wire)
{
    return put_varint(p, (uint64_t)field << 3 | wire);
}

static uint8_t *put_string(uint8_t *p, unsigned field, const char *text, size_t len)
{
    if (!len)
        return p;
    p = put_tag(p, field, WIRE_BYTES);
    p = put_varint(p, len);
    memcpy(p, text, len);
    return p + len;
}

static uint64_t double_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

static uint8_t *put_double(uint8_t *p, unsigned field, double v)
{
    uint64_t bits = double_bits(v);
    if (!bits)
        return p;
    p = put_tag(p, field, WIRE_FIXED64);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(bits >> (8 * i));
    return p;
}

static uint8_t *put_uint(uint8_t *p, unsigned field, uint64_t v)
{
    if (!v)
        return p;
    p = put_tag(p, field, WIRE_VARINT);
    return put_varint(p, v);
}

static size_t string_size(size_t len)
{
    return len ? 1 + varint_size(len) + len : 0;
}

/* Makes room for `bytes` in the packing buffer. */
static int reserve(row_reader *r, size_t bytes, nba_error *err)
{
    if (bytes <= r->cap)
        return 0;
    size_t cap = bytes < 4096 ? 4096 : bytes * 2;
    uint8_t *buf = realloc(r->buf, cap);
    if (!buf)
        return nba_error_set(err, -ENOMEM, "%s:%zu: out of memory", r->path, csv_line(r->csv));
    r->buf = buf;
    r->cap = cap;
    return 0;
}

/* Every field's text with room for its tag and length, plus the attribute
 * names and what wraps each attribute. */
static size_t packed_bound(const row_reader *r, const csv_record *rec)
{
    size_t n = 64 + r->attr_names + r->h.nattrs * 48;
    for (size_t i = 0; i < rec->count; i++)
        n += rec->lengths[i] + 16;
    return n;
}

/* ---- customers ---- */

static int customer_row(row_reader *r, const csv_record *rec, row *out, nba_error *err)
{
    const size_t *req = r->h.req;
    int rc = check_field_count(r, rec, err);
    if (!rc)
        rc = check_id(r, rec, req[CC_ID], err);
    if (rc)
        return rc;

    const size_t money[] = {req[CC_LIFETIME_VALUE], req[CC_PREDICTED_LTV]};
    double values[2];
    for (size_t k = 0; k < 2; k++) {
        size_t col = money[k];
        if (rec->lengths[col] == 0)
            return field_error(r, rec, col, err, "empty %s; write 0 when there is no value",
                               r->h.names[col]);
        if (!parse_decimal(rec->fields[col], rec->lengths[col], r->c_locale, &values[k]))
            return field_error(r, rec, col, err, "%s is not a decimal number (e.g. 1234.50)",
                               r->h.names[col]);
    }
    size_t lang = req[CC_LANGUAGE];
    if (!language_ok(rec->fields[lang], rec->lengths[lang]))
        return field_error(r, rec, lang, err,
                           "language is not a BCP 47 language tag (e.g. en, it, zh-Hant, pt-BR)");
    for (size_t k = 0; k < r->n_keys; k++) {
        size_t col = r->key_cols[k];
        const char *p = rec->fields[col], *end = p + rec->lengths[col], *value;
        size_t len;
        while (loader_keys_next_value(&p, end, &value, &len))
            if (len > STORE_MAX_ID)
                return field_error(r, rec, col, err, "a %s longer than %d bytes", r->h.names[col],
                                   STORE_MAX_ID);
    }

    rc = reserve(r, packed_bound(r, rec), err);
    if (rc)
        return rc;
    const char *const *f = rec->fields;
    const size_t *len = rec->lengths;
    uint8_t *p = r->buf;
    p = put_string(p, 1, f[req[CC_ID]], len[req[CC_ID]]);
    p = put_string(p, 2, f[req[CC_NAME]], len[req[CC_NAME]]);
    p = put_string(p, 3, f[req[CC_TIER]], len[req[CC_TIER]]);
    p = put_double(p, 4, values[0]);
    p = put_double(p, 5, values[1]);
    p = put_string(p, 6, f[lang], len[lang]);
    for (size_t k = 0; k < r->h.nattrs; k++) {
        size_t col = r->h.attrs[k].col, name_len = r->attr_name_lens[k];
        double number = 0;
        bool numeric = parse_decimal(f[col], len[col], r->c_locale, &number);
        if (!numeric)
            number = 0;
        size_t size = string_size(name_len) + string_size(len[col]) + (numeric ? 2 : 0) +
                      (double_bits(number) ? 9 : 0);
        p = put_tag(p, 7, WIRE_BYTES);
        p = put_varint(p, size);
        p = put_string(p, 1, r->h.attrs[k].name, name_len);
        p = put_string(p, 2, f[col], len[col]);
        p = put_uint(p, 3, numeric);
        p = put_double(p, 4, number);
    }
    out->val = r->buf;
    out->val_len = (size_t)(p - r->buf);
    out->key = (const uint8_t *)f[req[CC_ID]];
    out->key_len = out->customer_len = rec->lengths[req[CC_ID]];
    out->line = csv_line(r->csv);
    out->id_line = out->customer_line = field_line(r->csv, rec, req[CC_ID]);
    return 0;
}

/* ---- incidents ---- */

static int incident_row(row_reader *r, const csv_record *rec, row *out, nba_error *err)
{
    const size_t *req = r->h.req;
    int rc = check_field_count(r, rec, err);
    if (!rc)
        rc = check_id(r, rec, req[IC_ID], err);
    if (!rc)
        rc = check_id(r, rec, req[IC_CUSTOMER_ID], err);
    if (rc)
        return rc;

    size_t col = req[IC_KIND];
    if (rec->lengths[col] == 0)
        return field_error(r, rec, col, err, "empty kind");

    col = req[IC_SEVERITY];
    const char *sev = rec->fields[col];
    if (rec->lengths[col] != 1 || sev[0] < '1' || sev[0] > '5')
        return field_error(r, rec, col, err, "severity is not a whole number from 1 to 5");

    col = req[IC_OCCURRED_AT];
    int64_t occurred_at_ms;
    if (clock_parse_iso8601(rec->fields[col], rec->lengths[col], &occurred_at_ms))
        return field_error(r, rec, col, err,
                           "occurred_at is not an ISO 8601 UTC time (e.g. 2026-11-01T08:30:00Z)");

    col = req[IC_RESOLVED];
    const char *resolved = rec->fields[col];
    if (rec->lengths[col] != 1 || (resolved[0] != '0' && resolved[0] != '1'))
        return field_error(r, rec, col, err, "resolved is not 0 (open) or 1 (resolved)");

    rc = reserve(r, packed_bound(r, rec), err);
    if (rc)
        return rc;
    const char *const *f = rec->fields;
    const size_t *len = rec->lengths;
    uint8_t *p = r->buf;
    p = put_string(p, 1, f[req[IC_ID]], len[req[IC_ID]]);
    p = put_string(p, 2, f[req[IC_CUSTOMER_ID]], len[req[IC_CUSTOMER_ID]]);
    p = put_string(p, 3, f[req[IC_KIND]], len[req[IC_KIND]]);
    p = put_uint(p, 4, (uint64_t)(sev[0] - '0'));
    p = put_uint(p, 5, (uint64_t)occurred_at_ms);
    p = put_string(p, 6, f[req[IC_FLIGHT]], len[req[IC_FLIGHT]]);
    p = put_uint(p, 7, resolved[0] == '1');
    p = put_string(p, 8, f[req[IC_NOTE]], len[req[IC_NOTE]]);
    out->val = r->buf;
    out->val_len = (size_t)(p - r->buf);

    /* customer_id 0x00 incident_id: both ids fit (check_id). */
    size_t clen = rec->lengths[req[IC_CUSTOMER_ID]], ilen = rec->lengths[req[IC_ID]];
    memcpy(r->key, f[req[IC_CUSTOMER_ID]], clen);
    r->key[clen] = '\0';
    memcpy(r->key + clen + 1, f[req[IC_ID]], ilen);
    out->key = (const uint8_t *)r->key;
    out->key_len = clen + 1 + ilen;
    out->customer_len = clen;
    out->line = csv_line(r->csv);
    out->id_line = field_line(r->csv, rec, req[IC_ID]);
    out->customer_line = field_line(r->csv, rec, req[IC_CUSTOMER_ID]);
    return 0;
}

/* ---- the reader ---- */

static int ahead_start(row_reader *r, nba_error *err);
static void ahead_stop(row_reader *r);

/* Finds the lookup key columns in the header: each must be one of the
 * extra columns (those kept as attributes). */
static int find_key_columns(row_reader *r, nba_error *err)
{
    for (size_t k = 0; k < r->n_keys; k++) {
        const char *name = r->key_names[k];
        for (size_t c = 0; c < CC_COUNT; c++)
            if (strcmp(name, customer_columns[c]) == 0)
                return nba_error_set(err, -EINVAL,
                                     "--keys: '%s' is a required column of the customers file; "
                                     "lookup keys come from its other columns",
                                     name);
        size_t i = 0;
        while (i < r->h.nattrs && strcmp(r->h.attrs[i].name, name) != 0)
            i++;
        if (i == r->h.nattrs)
            return nba_error_set(err, -EINVAL,
                                 "%s:%zu: the header has no column '%s' (a lookup key column)",
                                 r->path, r->h.line, name);
        r->key_cols[k] = r->h.attrs[i].col;
    }
    return 0;
}

/* Reads the header and sets up the messages from it. */
static int start(row_reader *r, nba_error *err)
{
    int rc = csv_open(r->path, &r->csv, err);
    if (rc)
        return rc;
    if (r->kind == ROW_CUSTOMER)
        rc = read_header(r, customer_columns, CC_COUNT, true, err);
    else
        rc = read_header(r, incident_columns, IC_COUNT, false, err);
    if (!rc)
        rc = find_key_columns(r, err);
    if (rc)
        return rc;
    free(r->attr_name_lens);
    r->attr_name_lens = calloc(r->h.nattrs + 1, sizeof *r->attr_name_lens);
    if (!r->attr_name_lens)
        return nba_error_set(err, -ENOMEM, "%s: out of memory", r->path);
    r->attr_names = 0;
    for (size_t k = 0; k < r->h.nattrs; k++) {
        r->attr_name_lens[k] = strlen(r->h.attrs[k].name);
        r->attr_names += r->attr_name_lens[k];
    }
    return 0;
}

int rows_open(const char *path, row_kind kind, row_reader **out, nba_error *err)
{
    *out = NULL;
    row_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return nba_error_set(err, -ENOMEM, "%s: out of memory", path);
    }
    r->kind = kind;
    r->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    int rc = r->c_locale ? start(r, err) : nba_error_set(err, -ENOMEM, "out of memory");
    if (rc) {
        rows_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int rows_set_keys(row_reader *r, const char *const *names, size_t n, nba_error *err)
{
    if (r->kind != ROW_CUSTOMER || n > LOADER_MAX_KEYS || r->ah)
        return nba_error_set(err, -EINVAL, "%s: lookup keys are set on a customers file, first",
                             r->path);
    r->key_names = names;
    r->n_keys = n;
    return find_key_columns(r, err);
}

int rows_reopen(row_reader *r, nba_error *err)
{
    ahead_stop(r);
    csv_close(r->csv);
    r->csv = NULL;
    header_free(&r->h);
    r->bad_row = false;
    int rc = start(r, err);
    if (!rc && r->want_ahead)
        rc = ahead_start(r, err);
    return rc;
}

static int read_row(row_reader *r, row *out, nba_error *err)
{
    csv_record rec;
    r->bad_row = false;
    int rc = csv_next(r->csv, &rec, err);
    if (rc <= 0) {
        r->bad_row = rc < 0;
        return rc;
    }
    rc =
        r->kind == ROW_CUSTOMER ? customer_row(r, &rec, out, err) : incident_row(r, &rec, out, err);
    if (rc) {
        r->bad_row = true;
        return rc;
    }
    return 1;
}

/* ---- reading ahead ---- */

static size_t item_size(size_t payload)
{
    return (sizeof(item) + payload + 7) & ~(size_t)7;
}

/* Appends an item and its payload (two pieces) to a block, growing it for
 * a row larger than a block. Returns 0 or -ENOMEM. */
static int put_item(block *b, const item *it, const void *p1, size_t n1, const void *p2, size_t n2)
{
    size_t need = item_size(n1 + n2);
    if (b->len + need > b->cap) {
        size_t cap = b->cap ? b->cap : AHEAD_BLOCK;
        while (cap < b->len + need)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    uint8_t *at = b->data + b->len;
    memcpy(at, it, sizeof *it);
    if (n1)
        memcpy(at + sizeof *it, p1, n1);
    if (n2)
        memcpy(at + sizeof *it + n1, p2, n2);
    b->len += need;
    return 0;
}

/* Waits for an empty block; -1 when asked to stop. */
static long take_empty(ahead *a)
{
    pthread_mutex_lock(&a->mu);
    while (!a->nempty && !a->stop)
        pthread_cond_wait(&a->cv, &a->mu);
    long i = a->stop ? -1 : (long)a->empty[--a->nempty];
    pthread_mutex_unlock(&a->mu);
    return i;
}

static void hand_over(ahead *a, size_t i)
{
    pthread_mutex_lock(&a->mu);
    a->filled[(a->first_filled + a->nfilled++) % AHEAD_BLOCKS] = i;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* The reading thread: reads, checks and packs rows into blocks until the
 * end of the file, an error it cannot read past, or a stop. */
static void *ahead_main(void *arg)
{
    row_reader *r = arg;
    ahead *a = r->ah;
    nba_error err;
    long i = -1;
    for (;;) {
        if (i < 0) {
            i = take_empty(a);
            if (i < 0)
                return NULL;
            a->blocks[i].len = 0;
        }
        row rw;
        int rc = read_row(r, &rw, &err);
        item it = {.line = csv_line(r->csv), .bytes_read = csv_bytes_read(r->csv)};
        bool last = false;
        int put;
        if (rc > 0) {
            it.kind = ITEM_ROW;
            it.key_len = (uint32_t)rw.key_len;
            it.val_len = (uint32_t)rw.val_len;
            it.customer_len = (uint32_t)rw.customer_len;
            it.line = rw.line;
            it.id_line = rw.id_line;
            it.customer_line = rw.customer_line;
            put = put_item(&a->blocks[i], &it, rw.key, rw.key_len, rw.val, rw.val_len);
            size_t n = rw.key_len < a->prev_len ? rw.key_len : a->prev_len;
            int c = memcmp(rw.key, a->prev, n);
            if (a->prev_len && (c < 0 || (c == 0 && rw.key_len < a->prev_len)))
                atomic_store(&a->out_of_order, true);
            memcpy(a->prev, rw.key, rw.key_len);
            a->prev_len = rw.key_len;
        } else {
            it.kind = rc == 0 ? ITEM_END : ITEM_BAD;
            it.rc = rc;
            it.go_on = rc < 0 && r->bad_row && !csv_failed(r->csv);
            last = !it.go_on;
            it.msg_len = rc < 0 ? (uint32_t)strlen(err.msg) : 0;
            put = put_item(&a->blocks[i], &it, err.msg, it.msg_len, NULL, 0);
        }
        if (put) {
            /* The rows in the block are dropped: the load ends here. */
            static const char msg[] = "out of memory";
            item oom = {
                .kind = ITEM_BAD, .rc = -ENOMEM, .line = it.line, .msg_len = sizeof msg - 1};
            a->blocks[i].len = 0;
            put_item(&a->blocks[i], &oom, msg, oom.msg_len, NULL, 0);
            last = true;
        }
        if (last || a->blocks[i].len >= AHEAD_BLOCK) {
            hand_over(a, (size_t)i);
            i = -1;
        }
        if (last)
            return NULL;
    }
}

static void ahead_stop(row_reader *r)
{
    ahead *a = r->ah;
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    for (size_t i = 0; i < AHEAD_BLOCKS; i++)
        free(a->blocks[i].data);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
    r->ah = NULL;
}

static int ahead_start(row_reader *r, nba_error *err)
{
    ahead *a = calloc(1, sizeof *a);
    if (!a)
        return nba_error_set(err, -ENOMEM, "out of memory");
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    for (size_t i = 0; i < AHEAD_BLOCKS; i++)
        a->empty[a->nempty++] = i;
    a->bytes_read = csv_bytes_read(r->csv);
    r->ah = a;
    int rc = pthread_create(&a->thread, NULL, ahead_main, r);
    if (rc) {
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        free(a);
        r->ah = NULL;
        return nba_error_set(err, -rc, "%s: cannot start a thread: %s", r->path, strerror(rc));
    }
    return 0;
}

/* rows_next() while reading ahead: the next item of the current block, or
 * of the next block handed over. */
static int ahead_next(row_reader *r, row *out, nba_error *err)
{
    ahead *a = r->ah;
    for (;;) {
        if (a->ended) {
            if (a->end_rc)
                nba_error_set(err, a->end_rc, "%s", a->end_msg);
            return a->end_rc;
        }
        if (a->have_cur && a->pos < a->cur->len) {
            item it;
            const uint8_t *at = a->cur->data + a->pos;
            memcpy(&it, at, sizeof it);
            const uint8_t *payload = at + sizeof it;
            a->pos += item_size(it.kind == ITEM_ROW ? (size_t)it.key_len + it.val_len : it.msg_len);
            a->line = it.line;
            a->bytes_read = it.bytes_read;
            if (it.kind == ITEM_ROW) {
                *out = (row){payload,    it.key_len, it.customer_len, payload + it.key_len,
                             it.val_len, it.line,    it.id_line,      it.customer_line};
                a->go_on = false;
                return 1;
            }
            a->go_on = it.go_on;
            if (it.kind == ITEM_BAD)
                nba_error_set(err, it.rc, "%.*s", (int)it.msg_len, (const char *)payload);
            if (!it.go_on) {
                a->ended = true;
                a->end_rc = it.rc;
                snprintf(a->end_msg, sizeof a->end_msg, "%.*s", (int)it.msg_len,
                         (const char *)payload);
            }
            return it.rc;
        }
        pthread_mutex_lock(&a->mu);
        if (a->have_cur) {
            a->empty[a->nempty++] = a->cur_index;
            pthread_cond_broadcast(&a->cv);
        }
        while (!a->nfilled)
            pthread_cond_wait(&a->cv, &a->mu);
        a->cur_index = a->filled[a->first_filled];
        a->first_filled = (a->first_filled + 1) % AHEAD_BLOCKS;
        a->nfilled--;
        pthread_mutex_unlock(&a->mu);
        a->cur = &a->blocks[a->cur_index];
        a->have_cur = true;
        a->pos = 0;
    }
}

int rows_read_ahead(row_reader *r, nba_error *err)
{
    r->want_ahead = true;
    return r->ah ? 0 : ahead_start(r, err);
}

int rows_next(row_reader *r, row *out, nba_error *err)
{
    return r->ah ? ahead_next(r, out, err) : read_row(r, out, err);
}

bool rows_out_of_order(const row_reader *r)
{
    return r->ah && atomic_load(&r->ah->out_of_order);
}

bool rows_can_go_on(const row_reader *r)
{
    if (r->ah)
        return r->ah->go_on;
    return r->bad_row && !csv_failed(r->csv);
}

size_t rows_line(const row_reader *r)
{
    return r->ah ? r->ah->line : csv_line(r->csv);
}

const char *rows_path(const row_reader *r)
{
    return r->path;
}

uint64_t rows_bytes_read(const row_reader *r)
{
    if (r->ah)
        return r->ah->bytes_read;
    return r->csv ? csv_bytes_read(r->csv) : 0;
}

uint64_t rows_size(const row_reader *r)
{
    return r->csv ? csv_size(r->csv) : 0;
}

bool rows_rereadable(const row_reader *r)
{
    struct stat sb;
    return stat(r->path, &sb) == 0 && S_ISREG(sb.st_mode);
}

void rows_close(row_reader *r)
{
    if (!r)
        return;
    ahead_stop(r);
    csv_close(r->csv);
    header_free(&r->h);
    if (r->c_locale)
        freelocale(r->c_locale);
    free(r->attr_name_lens);
    free(r->buf);
    free(r->path);
    free(r);
}
