/* loader.c - see include/loader.h.
 *
 * Both files are streamed record by record through the CSV reader into one
 * store transaction. Every row is checked as it is read, in file order, so
 * the error reported is the first bad row. Good rows are copied into a batch
 * arena; when the batch is full (BATCH_ROWS rows or BATCH_BYTES bytes) it is
 * sorted by store key and put. Warehouse extracts come in no useful order,
 * and LMDB inserts in key order touch each B-tree page once per batch
 * instead of once per row: on random input that is over 1.5 times as fast.
 * Memory stays bounded by the batch, and the arena's block is reused from
 * batch to batch, so the steady state makes no malloc per row or field.
 *
 * Duplicates and unknown customers: a set of 64-bit hashes of the ids seen
 * (8 to 16 bytes per row, not the ids themselves) catches a repeated
 * customer_id or incident_id at once, in file order; incident ids are stored
 * under their customer, where the store could not see a repeat anyway. On a
 * hit the first occurrence is found by reading the file again, which only
 * ever happens on the way to an error (or, for two ids that hash alike, on
 * the way to finding there was no duplicate). An incident whose customer's
 * hash is missing is certainly unknown; one whose hash is there is confirmed
 * in the store when its batch is put.
 */
#include "loader.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "arena.h"
#include "clock.h"
#include "csv.h"

/* Longest value quoted back in an error message, in bytes. */
#define LOADER_QUOTE_MAX 80

/* A batch is put when it holds this many rows or this many bytes. */
#define BATCH_ROWS  65536
#define BATCH_BYTES ((size_t)16 << 20)

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
} header;

/* A set of 64-bit hashes: open addressing, linear probing, 0 = empty slot. */
typedef struct hash_set {
    uint64_t *slots;
    size_t cap; /* a power of two */
    size_t count;
} hash_set;

/* A row read, checked and waiting in the batch to be put. */
typedef struct pending {
    uint64_t prefix; /* the first 8 bytes of customer_id, big-endian: sorts like it */
    const char *customer_id;
    const char *incident_id; /* NULL for a customer */
    size_t line;
    const ProtobufCMessage *msg; /* in the batch arena */
} pending;

typedef struct load {
    store_txn *txn;
    locale_t c_locale; /* numbers are read with '.' whatever the process locale */
    csv_reader *csv;
    bool rereadable; /* csv's file can be read again to find a first occurrence */
    header h;
    hash_set customer_ids;
    hash_set incident_ids;
    arena batch;
    pending *pending; /* BATCH_ROWS entries */
    size_t npending;
} load;

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

/* Copies text into buf for an error message: at most LOADER_QUOTE_MAX bytes,
 * cut on a character boundary, with line breaks and other control bytes
 * shown as escapes so the message stays on one line. */
static const char *quote_value(char *buf, size_t size, const char *text, size_t len)
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
static int field_error(const load *L, const csv_record *rec, size_t col, nba_error *err,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int field_error(const load *L, const csv_record *rec, size_t col, nba_error *err,
                       const char *fmt, ...)
{
    char what[512], value[LOADER_QUOTE_MAX * 4 + 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nba_error_set(err, -EINVAL, "%s:%zu: %s (column '%s': value '%s')", csv_path(L->csv),
                         field_line(L->csv, rec, col), what, L->h.names[col],
                         quote_value(value, sizeof value, rec->fields[col], rec->lengths[col]));
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
static int read_header(csv_reader *csv, const char *const *required, size_t nrequired, bool attrs,
                       header *h, nba_error *err)
{
    csv_record rec;
    const char *path = csv_path(csv);
    int rc = csv_next(csv, &rec, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return nba_error_set(err, -EINVAL, "%s:1: the file is empty; expected a header row", path);
    size_t line = csv_line(csv);

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

static int check_field_count(const load *L, const csv_record *rec, nba_error *err)
{
    if (rec->count == L->h.ncols)
        return 0;
    return nba_error_set(err, -EINVAL, "%s:%zu: %zu fields, but the header has %zu columns",
                         csv_path(L->csv), csv_line(L->csv), rec->count, L->h.ncols);
}

/* An id must be there and fit in a store key. */
static int check_id(const load *L, const csv_record *rec, size_t col, nba_error *err)
{
    if (rec->lengths[col] == 0)
        return field_error(L, rec, col, err, "empty %s", L->h.names[col]);
    if (rec->lengths[col] > STORE_MAX_ID)
        return field_error(L, rec, col, err, "%s longer than %d bytes", L->h.names[col],
                           STORE_MAX_ID);
    return 0;
}

/* Finds the first record before line `before` whose column col holds id,
 * by reading the file again; *line is 0 when there is none. */
static int find_first(const char *path, size_t col, const char *id, size_t before, size_t *line,
                      nba_error *err)
{
    csv_reader *csv;
    csv_record rec;
    *line = 0;
    int rc = csv_open(path, &csv, err);
    if (rc)
        return rc;
    rc = csv_next(csv, &rec, err); /* the header */
    while (rc > 0) {
        rc = csv_next(csv, &rec, err);
        if (rc <= 0 || csv_line(csv) >= before)
            break;
        if (col < rec.count && strcmp(rec.fields[col], id) == 0) {
            *line = csv_line(csv);
            break;
        }
    }
    csv_close(csv);
    return rc < 0 ? rc : 0;
}

/* ---- the id sets ---- */

static uint64_t hash_id(const char *s, size_t len)
{
    /* FNV-1a, then a 64-bit finaliser (from splitmix64) so that ids that
     * differ only in their last bytes spread over the whole table. */
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9u;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebu;
    h ^= h >> 31;
    return h ? h : 1;
}

static int hash_set_grow(hash_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1u << 16;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t h = s->slots[i];
        if (!h)
            continue;
        size_t k = h & (cap - 1);
        while (slots[k])
            k = (k + 1) & (cap - 1);
        slots[k] = h;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

/* Adds h. Returns 1 when it was new, 0 when it was there, or -ENOMEM. */
static int hash_set_add(hash_set *s, uint64_t h)
{
    if ((s->count + 1) * 4 > s->cap * 3) {
        int rc = hash_set_grow(s);
        if (rc)
            return rc;
    }
    size_t k = h & (s->cap - 1);
    while (s->slots[k]) {
        if (s->slots[k] == h)
            return 0;
        k = (k + 1) & (s->cap - 1);
    }
    s->slots[k] = h;
    s->count++;
    return 1;
}

static bool hash_set_has(const hash_set *s, uint64_t h)
{
    if (!s->cap)
        return false;
    for (size_t k = h & (s->cap - 1); s->slots[k]; k = (k + 1) & (s->cap - 1))
        if (s->slots[k] == h)
            return true;
    return false;
}

/* Adds the id in column col to set; fails when it was seen before in this
 * file. */
static int check_unique(load *L, hash_set *set, const csv_record *rec, size_t col, nba_error *err)
{
    int rc = hash_set_add(set, hash_id(rec->fields[col], rec->lengths[col]));
    if (rc < 0)
        return nba_error_set(err, rc, "%s:%zu: out of memory", csv_path(L->csv), csv_line(L->csv));
    if (rc == 1)
        return 0;
    /* A pipe cannot be read twice: there, the hash alone has to do, and two
     * ids hashing alike (about one chance in 10^12 per row of a ten-million
     * row file) would be taken for a duplicate. */
    if (!L->rereadable)
        return field_error(L, rec, col, err, "duplicate %s", L->h.names[col]);
    size_t first = 0;
    rc = find_first(csv_path(L->csv), col, rec->fields[col], csv_line(L->csv), &first, err);
    if (rc)
        return rc;
    if (first)
        return field_error(L, rec, col, err, "duplicate %s, first on line %zu", L->h.names[col],
                           first);
    return 0;
}

/* ---- the batch ---- */

/* Key order of the store: customer_id, then incident_id. Byte order, as
 * strcmp compares, is LMDB's order too; the prefix settles most comparisons
 * without touching the strings. */
static int cmp_pending(const void *a, const void *b)
{
    const pending *x = a, *y = b;
    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    int c = strcmp(x->customer_id, y->customer_id);
    if (c || !x->incident_id)
        return c;
    return strcmp(x->incident_id, y->incident_id);
}

static uint64_t key_prefix(const char *s)
{
    uint64_t p = 0;
    int i = 0;
    for (; i < 8 && s[i]; i++)
        p = p << 8 | (unsigned char)s[i];
    return i ? p << (8 * (8 - i)) : 0;
}

static int unknown_customer(const load *L, size_t line, const char *customer_id, nba_error *err)
{
    char value[LOADER_QUOTE_MAX * 4 + 16];
    return nba_error_set(err, -EINVAL,
                         "%s:%zu: incident of a customer that is not in the customers file "
                         "(column 'customer_id': value '%s')",
                         csv_path(L->csv), line,
                         quote_value(value, sizeof value, customer_id, strlen(customer_id)));
}

/* Puts the batch in key order and empties it. */
static int flush(load *L, nba_error *err)
{
    int rc = 0;
    /* An extract sorted by customer needs no sorting. */
    size_t sorted = 1;
    while (sorted < L->npending && cmp_pending(&L->pending[sorted - 1], &L->pending[sorted]) <= 0)
        sorted++;
    if (sorted < L->npending)
        qsort(L->pending, L->npending, sizeof *L->pending, cmp_pending);
    for (size_t i = 0; i < L->npending && !rc; i++) {
        const pending *p = &L->pending[i];
        if (p->incident_id) {
            /* The customer's hash was in the set; make sure it was not
             * another id's that hashes alike. */
            rc = store_txn_has_customer(L->txn, p->customer_id);
            if (rc == 0) {
                rc = unknown_customer(L, p->line, p->customer_id, err);
                break;
            }
            if (rc < 0) {
                rc = nba_error_set(err, rc, "%s:%zu: cannot look up customer_id '%s': %s",
                                   csv_path(L->csv), p->line, p->customer_id, strerror(-rc));
                break;
            }
            rc = store_txn_put_incident(L->txn, (const Nba__V1__Incident *)p->msg, err);
        } else {
            rc = store_txn_put_customer(L->txn, (const Nba__V1__Customer *)p->msg, err);
        }
        if (rc)
            nba_error_prefix(err, "%s:%zu", csv_path(L->csv), p->line);
    }
    L->npending = 0;
    arena_reset(&L->batch);
    return rc;
}

/* Copies every field of rec into the batch arena in one allocation; *out
 * gets the copies, in column order. */
static int copy_fields(load *L, const csv_record *rec, const char ***out, nba_error *err)
{
    size_t bytes = rec->count * sizeof(char *);
    for (size_t i = 0; i < rec->count; i++)
        bytes += rec->lengths[i] + 1;
    const char **fields = arena_alloc(&L->batch, bytes);
    if (!fields)
        return nba_error_set(err, -ENOMEM, "%s:%zu: out of memory", csv_path(L->csv),
                             csv_line(L->csv));
    char *text = (char *)(fields + rec->count);
    for (size_t i = 0; i < rec->count; i++) {
        memcpy(text, rec->fields[i], rec->lengths[i] + 1);
        fields[i] = text;
        text += rec->lengths[i] + 1;
    }
    *out = fields;
    return 0;
}

/* Adds a row to the batch, and puts the batch once it is full. */
static int enqueue(load *L, const char *customer_id, const char *incident_id,
                   const ProtobufCMessage *msg, nba_error *err)
{
    L->pending[L->npending++] =
        (pending){key_prefix(customer_id), customer_id, incident_id, csv_line(L->csv), msg};
    if (L->npending == BATCH_ROWS || L->batch.used_total >= BATCH_BYTES)
        return flush(L, err);
    return 0;
}

/* ---- customers ---- */

static int load_customer(load *L, const csv_record *rec, nba_error *err)
{
    const size_t *req = L->h.req;
    int rc = check_field_count(L, rec, err);
    if (!rc)
        rc = check_id(L, rec, req[CC_ID], err);
    if (rc)
        return rc;

    const size_t money[] = {req[CC_LIFETIME_VALUE], req[CC_PREDICTED_LTV]};
    double values[2];
    for (size_t k = 0; k < 2; k++) {
        size_t col = money[k];
        if (rec->lengths[col] == 0)
            return field_error(L, rec, col, err, "empty %s; write 0 when there is no value",
                               L->h.names[col]);
        if (!parse_decimal(rec->fields[col], rec->lengths[col], L->c_locale, &values[k]))
            return field_error(L, rec, col, err, "%s is not a decimal number (e.g. 1234.50)",
                               L->h.names[col]);
    }
    size_t lang = req[CC_LANGUAGE];
    if (!language_ok(rec->fields[lang], rec->lengths[lang]))
        return field_error(L, rec, lang, err,
                           "language is not a BCP 47 language tag (e.g. en, it, zh-Hant, pt-BR)");
    rc = check_unique(L, &L->customer_ids, rec, req[CC_ID], err);
    if (rc)
        return rc;

    const char **f;
    size_t n = L->h.nattrs;
    Nba__V1__Customer *c = arena_alloc(&L->batch, sizeof *c);
    Nba__V1__Attribute *attrs = arena_alloc(&L->batch, n * sizeof *attrs + 1);
    Nba__V1__Attribute **ptrs = arena_alloc(&L->batch, n * sizeof *ptrs + 1);
    if (!c || !attrs || !ptrs)
        return nba_error_set(err, -ENOMEM, "%s:%zu: out of memory", csv_path(L->csv),
                             csv_line(L->csv));
    rc = copy_fields(L, rec, &f, err);
    if (rc)
        return rc;
    nba__v1__customer__init(c);
    c->customer_id = (char *)f[req[CC_ID]];
    c->name = (char *)f[req[CC_NAME]];
    c->tier = (char *)f[req[CC_TIER]];
    c->lifetime_value = values[0];
    c->predicted_ltv = values[1];
    c->language = (char *)f[lang];
    for (size_t k = 0; k < n; k++) {
        size_t col = L->h.attrs[k].col;
        nba__v1__attribute__init(&attrs[k]);
        /* The header outlives the batch: it is flushed before the file
         * is closed. */
        attrs[k].name = (char *)L->h.attrs[k].name;
        attrs[k].text = (char *)f[col];
        attrs[k].has_number =
            parse_decimal(rec->fields[col], rec->lengths[col], L->c_locale, &attrs[k].number);
        ptrs[k] = &attrs[k];
    }
    c->n_attributes = n;
    c->attributes = ptrs;
    return enqueue(L, c->customer_id, NULL, &c->base, err);
}

/* ---- incidents ---- */

static int load_incident(load *L, const csv_record *rec, nba_error *err)
{
    const size_t *req = L->h.req;
    int rc = check_field_count(L, rec, err);
    if (!rc)
        rc = check_id(L, rec, req[IC_ID], err);
    if (!rc)
        rc = check_id(L, rec, req[IC_CUSTOMER_ID], err);
    if (rc)
        return rc;

    size_t col = req[IC_KIND];
    if (rec->lengths[col] == 0)
        return field_error(L, rec, col, err, "empty kind");

    col = req[IC_SEVERITY];
    const char *sev = rec->fields[col];
    if (rec->lengths[col] != 1 || sev[0] < '1' || sev[0] > '5')
        return field_error(L, rec, col, err, "severity is not a whole number from 1 to 5");

    col = req[IC_OCCURRED_AT];
    int64_t occurred_at_ms;
    if (clock_parse_iso8601(rec->fields[col], rec->lengths[col], &occurred_at_ms))
        return field_error(L, rec, col, err,
                           "occurred_at is not an ISO 8601 UTC time (e.g. 2026-11-01T08:30:00Z)");

    col = req[IC_RESOLVED];
    const char *resolved = rec->fields[col];
    if (rec->lengths[col] != 1 || (resolved[0] != '0' && resolved[0] != '1'))
        return field_error(L, rec, col, err, "resolved is not 0 (open) or 1 (resolved)");

    col = req[IC_CUSTOMER_ID];
    if (!hash_set_has(&L->customer_ids, hash_id(rec->fields[col], rec->lengths[col])))
        return unknown_customer(L, field_line(L->csv, rec, col), rec->fields[col], err);
    rc = check_unique(L, &L->incident_ids, rec, req[IC_ID], err);
    if (rc)
        return rc;

    const char **f;
    Nba__V1__Incident *inc = arena_alloc(&L->batch, sizeof *inc);
    if (!inc)
        return nba_error_set(err, -ENOMEM, "%s:%zu: out of memory", csv_path(L->csv),
                             csv_line(L->csv));
    rc = copy_fields(L, rec, &f, err);
    if (rc)
        return rc;
    nba__v1__incident__init(inc);
    inc->incident_id = (char *)f[req[IC_ID]];
    inc->customer_id = (char *)f[req[IC_CUSTOMER_ID]];
    inc->kind = (char *)f[req[IC_KIND]];
    inc->severity = sev[0] - '0';
    inc->occurred_at_ms = occurred_at_ms;
    inc->flight = (char *)f[req[IC_FLIGHT]];
    inc->resolved = resolved[0] == '1';
    inc->note = (char *)f[req[IC_NOTE]];
    return enqueue(L, inc->customer_id, inc->incident_id, &inc->base, err);
}

/* ---- one file, then both ---- */

typedef int (*row_fn)(load *L, const csv_record *rec, nba_error *err);

/* Reads the header, then every row, then puts what is left in the batch,
 * while the header (attribute names) and the reader (the path for
 * messages) are still there. */
static int load_file(load *L, const char *const *required, size_t nrequired, bool attrs, row_fn fn,
                     size_t *count, nba_error *err)
{
    csv_record rec;
    struct stat sb;
    L->rereadable = stat(csv_path(L->csv), &sb) == 0 && S_ISREG(sb.st_mode);
    int rc = read_header(L->csv, required, nrequired, attrs, &L->h, err);
    if (rc)
        return rc;
    while ((rc = csv_next(L->csv, &rec, err)) > 0) {
        rc = fn(L, &rec, err);
        if (rc)
            return rc;
        (*count)++;
    }
    if (rc)
        return rc;
    return flush(L, err);
}

static int put_loaded_at(load *L, nba_error *err)
{
    char when[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return store_txn_put_meta(L->txn, "loaded_at", when, err);
}

int loader_load(store *st, const char *customers_csv, const char *incidents_csv,
                loader_stats *stats, nba_error *err)
{
    load L = {0};
    loader_stats counts = {0};
    csv_reader *incidents = NULL;
    bool have_arena = false;
    int rc;

    L.c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    L.pending = malloc(BATCH_ROWS * sizeof *L.pending);
    rc = arena_init(&L.batch, BATCH_BYTES + ((size_t)2 << 20));
    have_arena = rc == 0;
    if (!L.c_locale || !L.pending || rc) {
        rc = nba_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    /* Both files open before the transaction starts, so that a wrong path
     * fails at once. */
    rc = csv_open(customers_csv, &L.csv, err);
    if (rc)
        goto out;
    if (incidents_csv) {
        rc = csv_open(incidents_csv, &incidents, err);
        if (rc)
            goto out;
    }

    rc = store_txn_begin(st, &L.txn, err);
    if (rc)
        goto out;
    rc = store_txn_clear(L.txn, err);
    if (rc)
        goto out;

    rc = load_file(&L, customer_columns, CC_COUNT, true, load_customer, &counts.customers, err);
    if (rc)
        goto out;
    if (incidents) {
        csv_close(L.csv);
        header_free(&L.h);
        L.csv = incidents;
        incidents = NULL;
        rc =
            load_file(&L, incident_columns, IC_COUNT, false, load_incident, &counts.incidents, err);
        if (rc)
            goto out;
    }

    rc = put_loaded_at(&L, err);
    if (rc)
        goto out;
    rc = store_txn_commit(L.txn, err);
    L.txn = NULL; /* commit frees it, failed or not */
    if (rc)
        goto out;
    if (stats)
        *stats = counts;

out:
    if (L.txn)
        store_txn_abort(L.txn);
    csv_close(L.csv);
    csv_close(incidents);
    header_free(&L.h);
    if (have_arena)
        arena_destroy(&L.batch);
    free(L.pending);
    free(L.customer_ids.slots);
    free(L.incident_ids.slots);
    if (L.c_locale)
        freelocale(L.c_locale);
    return rc;
}
