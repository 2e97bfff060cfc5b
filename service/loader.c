/* loader.c - see include/loader.h.
 *
 * A load merges two streams of records in key order, customers and
 * incidents, and puts each record as it comes: appended at the end of the
 * tree for a replacing load, inserted or replaced for an upsert. A stream
 * is either the file itself, read row by row (streaming), or the file's
 * rows sorted (sorter.h) before the merge starts.
 *
 * Streaming is tried first for every regular file: extracts are usually
 * written in key order, and then nothing is held but the current row of
 * each file. Each stream checks that its keys only grow; a key smaller than
 * the one before means the file is not in order, and the pass starts again
 * with that file sorted first (a pipe, which cannot be read twice, is
 * sorted from the start). In the merged order every check across rows is a
 * comparison with a neighbour:
 *   - a duplicate key is the key just before it in the same stream;
 *   - an incident's customer is the last customer put (keys are
 *     customer_id, then customer_id 0x00 incident_id: nothing sorts
 *     between a customer and its incidents), or, for an upsert, one the
 *     database holds.
 * While the customers file is still being streamed, an incident whose
 * customer has not been seen may only be early (the customers file could
 * turn out to be out of order further on), so it is held back as
 * "deferred" until the customers file ends in order.
 *
 * incident_id must also be unique across customers, which key order does
 * not bring together. While incident ids arrive in increasing order (as
 * generated ids do) that needs nothing but the last one; from the first one
 * that does not, they are sorted on their own (the ones before read again
 * from the file) and duplicates found when the file has been read; in a
 * streaming pass the later row of each pair is then deleted again when
 * rows may be skipped.
 *
 * Lookup keys (loader_keys.h) are collected from the customers as they
 * are put, sorted, and written when both streams are done: appended to the
 * keys table in its order for a replacing load; for an upsert, a customer's
 * old keys are deleted before its record is replaced, and the new ones
 * inserted at the end, so that a key moving from one customer to another
 * in the same delta is no conflict whatever their order. A row holding a
 * key an earlier row (or, for an upsert, a customer the delta leaves as it
 * is) holds is bad; it shows only when every key has been sorted, after
 * the row was written, so with max_errors the pass is written again
 * without it.
 *
 * A bad row fails the load, or, with max_errors, is skipped and reported:
 * the set of rows skipped (file and line) makes sure a row is reported and
 * counted once however many passes see it.
 */
#include "loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loader_keys.h"
#include "loader_rows.h"
#include "sorter.h"

#define PROGRESS_EVERY 65536
/* A fresh replacing load commits after this many bytes of records: enough
 * to make commits rare, few enough that LMDB never spills dirty pages. */
#define CHUNK_BYTES ((size_t)64 << 20)
/* Memory for sorting incident ids when they do not arrive in order. */
#define ID_SORT_MEMORY ((size_t)64 << 20)
/* Memory for sorting lookup keys: a replacing load at warehouse scale
 * spills runs to disk rather than grow past the loader's usual footprint. */
#define KEY_SORT_MEMORY ((size_t)64 << 20)
/* Meta entry listing the lookup key names a generation was loaded with. */
#define META_KEYS "keys"
/* An upsert grows the map and tries again at most this many times. */
#define MAX_GROWTHS 8
/* Internal: a streamed file is out of order; start the pass again. */
#define LOAD_RESTART 1

enum { SRC_CUSTOMERS, SRC_INCIDENTS, NSRC };

/* A record waiting to be put. */
typedef struct rec {
    const uint8_t *key;
    size_t key_len;
    size_t customer_len;
    const uint8_t *val;
    size_t val_len;
    size_t line, id_line, customer_line;
} rec;

typedef struct source {
    row_kind kind;
    const char *what; /* "customer_id" or "incident_id", for messages */
    row_reader *rows;
    bool used;         /* rows have been read since the file was opened */
    bool sorted;       /* merged from `sort`, which holds the whole file */
    bool out_of_order; /* found out of order while streaming */
    bool unordered;    /* the file was found not to be in key order */
    sorter *sort;
    bool have; /* head holds the next record */
    bool done;
    rec head;
    /* The key before head, for order and duplicates. */
    uint8_t prev[2 * STORE_MAX_ID + 1];
    size_t prev_len;
    size_t prev_line;
    bool have_prev;
    uint64_t read, emitted, loaded, rejected;
} source;

/* A set of (file, line) of rows skipped: open addressing, 0 = empty. */
typedef struct line_set {
    uint64_t *slots;
    size_t cap, count;
} line_set;

/* An incident whose customer had not been seen when it came. */
typedef struct deferred {
    size_t line, customer_line;
    size_t customer_len;
    char customer_id[STORE_MAX_ID];
} deferred;

/* incident_id across customers. */
typedef struct idcheck {
    sorter *sort; /* NULL while the ids come in increasing order */
    uint8_t last[STORE_MAX_ID];
    size_t last_len;
    bool have_last;
} idcheck;

typedef struct load {
    store *st;
    const loader_options *opt;
    nba_error *err;
    store_txn *txn;
    source src[NSRC];
    size_t nsrc;
    line_set rejected;
    uint64_t nrejected;
    bool customer_rows_rejected;
    deferred *deferred;
    size_t ndeferred, deferred_cap;
    uint8_t last_customer[STORE_MAX_ID];
    size_t last_customer_len;
    bool have_last_customer;
    idcheck ids;
    loader_keys *keys; /* NULL: no lookup keys */
    uint64_t keys_written;
    /* A row was rejected for a key another row holds, after it was
     * written: this pass is written again without it. */
    bool keys_again;
    uint8_t *old; /* upsert: a copy of the record a customer replaces */
    size_t old_cap;
    size_t since_commit;
    unsigned attempt;
    loader_phase phase;
    uint64_t ticks;
    uint64_t written;
    size_t runs;
} load;

static int keycmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* ---- rows skipped ---- */

static uint64_t line_key(const load *L, const source *s, size_t line)
{
    return ((uint64_t)(s - L->src) + 1) << 56 | (uint64_t)line;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static bool line_set_has(const line_set *s, uint64_t key)
{
    if (!s->count)
        return false;
    for (size_t k = mix(key) & (s->cap - 1); s->slots[k]; k = (k + 1) & (s->cap - 1))
        if (s->slots[k] == key)
            return true;
    return false;
}

static int line_set_add(line_set *s, uint64_t key)
{
    if ((s->count + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        uint64_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -ENOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i])
                continue;
            size_t k = mix(s->slots[i]) & (cap - 1);
            while (slots[k])
                k = (k + 1) & (cap - 1);
            slots[k] = s->slots[i];
        }
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    size_t k = mix(key) & (s->cap - 1);
    while (s->slots[k])
        k = (k + 1) & (s->cap - 1);
    s->slots[k] = key;
    s->count++;
    return 0;
}

/* A bad row, whose message is in L->err: fails the load (returns `code`),
 * or, within max_errors, is reported and skipped (returns 0). Only bad
 * content (-EINVAL) can be skipped. */
static int reject(load *L, source *s, size_t line, int code)
{
    size_t max = L->opt->max_errors;
    if (code != -EINVAL || max == 0)
        return code;
    uint64_t key = line_key(L, s, line);
    if (line_set_has(&L->rejected, key))
        return 0; /* reported by an earlier pass */
    if (L->nrejected >= max) {
        char msg[NBA_ERROR_MAX];
        snprintf(msg, sizeof msg, "%s", L->err->msg);
        return nba_error_set(L->err, -EINVAL, "%s (more than the %zu bad rows allowed)", msg, max);
    }
    if (line_set_add(&L->rejected, key))
        return nba_error_set(L->err, -ENOMEM, "out of memory");
    L->nrejected++;
    s->rejected++;
    if (s->kind == ROW_CUSTOMER)
        L->customer_rows_rejected = true;
    if (L->opt->rejected)
        L->opt->rejected(L->opt->ctx, L->err->msg);
    return 0;
}

/* ---- progress ---- */

static double fraction(const load *L)
{
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < L->nsrc; i++) {
        const source *s = &L->src[i];
        uint64_t size = rows_size(s->rows);
        if (!size)
            return -1;
        if (s->sorted) {
            /* Read once into the sort, then written out of it. */
            uint64_t count = sorter_count(s->sort);
            total += 2 * size;
            done += size +
                    (count ? (uint64_t)((double)size * (double)s->emitted / (double)count) : size);
        } else if (L->phase == LOADER_SORTING && s->sort) {
            total += 2 * size; /* being read into its sort */
            done += rows_bytes_read(s->rows);
        } else if (s->out_of_order) {
            total += 2 * size;
        } else {
            total += size;
            done += L->phase == LOADER_SORTING ? 0 : rows_bytes_read(s->rows);
        }
    }
    return total ? (double)done / (double)total : -1;
}

static int report(load *L)
{
    L->ticks = 0;
    if (!L->opt->progress)
        return 0;
    uint64_t rows = 0;
    for (size_t i = 0; i < L->nsrc; i++)
        rows += L->src[i].read;
    loader_progress p = {L->phase, L->attempt, L->phase == LOADER_WRITING ? L->written : rows,
                         L->nrejected, fraction(L)};
    if (L->opt->progress(L->opt->ctx, &p))
        return nba_error_set(L->err, -ECANCELED, "the load was interrupted");
    return 0;
}

static int tick(load *L)
{
    if (++L->ticks < PROGRESS_EVERY)
        return 0;
    return report(L);
}

/* ---- incident ids across customers ---- */

static int idcheck_add_one(load *L, const uint8_t *key, size_t key_len, size_t customer_len,
                           size_t line, size_t id_line)
{
    const uint8_t *id = key + customer_len + 1;
    size_t id_len = key_len - customer_len - 1;
    return sorter_add(L->ids.sort, id, id_len, key, customer_len, line, id_line - line, L->err);
}

/* Starts sorting ids: those of the rows before `line` are read again from
 * the file (a pipe starts sorting at its first row, and never gets here). */
static int idcheck_start(load *L, size_t line)
{
    source *s = &L->src[SRC_INCIDENTS];
    int rc = sorter_new(store_dir(L->st), ID_SORT_MEMORY, &L->ids.sort, L->err);
    if (rc || line == 0)
        return rc;
    row_reader *again;
    rc = rows_open(rows_path(s->rows), ROW_INCIDENT, &again, L->err);
    if (rc)
        return rc;
    row r;
    while ((rc = rows_next(again, &r, L->err)) != 0) {
        if (rows_line(again) >= line)
            break;
        if (rc < 0) {
            if (!rows_can_go_on(again))
                break;
            continue; /* a bad row, skipped the first time */
        }
        if (line_set_has(&L->rejected, line_key(L, s, r.line)))
            continue;
        rc = idcheck_add_one(L, r.key, r.key_len, r.customer_len, r.line, r.id_line);
        if (rc)
            break;
    }
    rows_close(again);
    return rc < 0 ? rc : 0;
}

/* Notes the incident_id of a row read. */
static int idcheck_add(load *L, const uint8_t *key, size_t key_len, size_t customer_len,
                       size_t line, size_t id_line)
{
    idcheck *c = &L->ids;
    const uint8_t *id = key + customer_len + 1;
    size_t id_len = key_len - customer_len - 1;
    if (!c->sort) {
        if (!c->have_last || keycmp(id, id_len, c->last, c->last_len) > 0) {
            memcpy(c->last, id, id_len);
            c->last_len = id_len;
            c->have_last = true;
            return 0;
        }
        int rc = idcheck_start(L, line);
        if (rc)
            return rc;
    }
    return idcheck_add_one(L, key, key_len, customer_len, line, id_line);
}

/* Finds the incident ids given twice. The later row of each pair is
 * rejected; when it was put already (`written`), it is deleted again. */
static int idcheck_finish(load *L, bool written)
{
    source *s = &L->src[SRC_INCIDENTS];
    if (!L->ids.sort)
        return 0;
    int rc = sorter_finish(L->ids.sort, L->err);
    if (rc)
        return rc;
    uint8_t prev[STORE_MAX_ID];
    size_t prev_len = 0, first_line = 0;
    bool have_prev = false;
    sorter_record r;
    while ((rc = sorter_next(L->ids.sort, &r, L->err)) > 0) {
        size_t line = (size_t)r.tag[0], id_line = line + (size_t)r.tag[1];
        if (line_set_has(&L->rejected, line_key(L, s, line)))
            continue;
        if (!have_prev || keycmp(r.key, r.key_len, prev, prev_len) != 0) {
            memcpy(prev, r.key, r.key_len);
            prev_len = r.key_len;
            first_line = id_line;
            have_prev = true;
            continue;
        }
        char value[ROWS_QUOTE_SIZE];
        nba_error_set(L->err, -EINVAL,
                      "%s:%zu: duplicate incident_id, first on line %zu (column 'incident_id': "
                      "value '%s')",
                      rows_path(s->rows), id_line, first_line,
                      rows_quote(value, sizeof value, (const char *)r.key, r.key_len));
        rc = reject(L, s, line, -EINVAL);
        if (rc)
            return rc;
        if (written) {
            uint8_t key[2 * STORE_MAX_ID + 1];
            memcpy(key, r.val, r.val_len);
            key[r.val_len] = 0;
            memcpy(key + r.val_len + 1, r.key, r.key_len);
            rc = store_txn_delete_packed(L->txn, key, r.val_len + 1 + r.key_len, L->err);
            if (rc && rc != -ENOENT)
                return rc;
            if (!rc)
                s->loaded--;
        }
    }
    return rc;
}

static void idcheck_reset(load *L)
{
    sorter_free(L->ids.sort);
    memset(&L->ids, 0, sizeof L->ids);
}

/* ---- reading a file into its sort ---- */

static int sort_source(load *L, source *s)
{
    int rc;
    if (s->used) {
        rc = rows_reopen(s->rows, L->err);
        if (rc)
            return rc;
    }
    s->used = true;
    sorter_free(s->sort);
    s->sort = NULL;
    s->read = 0;
    if (s->kind == ROW_INCIDENT) {
        idcheck_reset(L);
        /* A pipe cannot be read again to find the ids before the first one
         * out of order: sort them all from the start. */
        if (!rows_rereadable(s->rows)) {
            rc = idcheck_start(L, 0);
            if (rc)
                return rc;
        }
    }
    rc = sorter_new(store_dir(L->st), L->opt->sort_memory, &s->sort, L->err);
    if (!rc)
        rc = rows_read_ahead(s->rows, L->err);
    if (rc)
        return rc;
    L->phase = LOADER_SORTING;
    rc = report(L);
    row r;
    while (rc == 0 && (rc = rows_next(s->rows, &r, L->err)) != 0) {
        if (rc < 0) {
            rc = rows_can_go_on(s->rows) ? reject(L, s, rows_line(s->rows), rc) : rc;
            if (rc)
                return rc;
            continue;
        }
        s->read++;
        uint64_t deltas = (uint64_t)(r.id_line - r.line) << 32 | (r.customer_line - r.line);
        rc = sorter_add(s->sort, r.key, r.key_len, r.val, r.val_len, r.line, deltas, L->err);
        if (!rc && s->kind == ROW_INCIDENT)
            rc = idcheck_add(L, r.key, r.key_len, r.customer_len, r.line, r.id_line);
        if (!rc)
            rc = tick(L);
    }
    if (rc)
        return rc;
    rc = sorter_finish(s->sort, L->err);
    if (rc)
        return rc;
    s->sorted = true;
    /* Sorted whatever its order (an upsert, a pipe): was it needed? */
    s->unordered = s->out_of_order || rows_out_of_order(s->rows);
    s->out_of_order = false;
    L->runs += sorter_runs(s->sort);
    /* With the whole file read, its duplicate ids are known before anything
     * is written: those rows are skipped in the merge. */
    if (s->kind == ROW_INCIDENT) {
        rc = idcheck_finish(L, false);
        idcheck_reset(L);
    }
    return rc;
}

/* ---- the streams ---- */

static int customers_ended(load *L);

/* Checks a record against the one before in its stream: a duplicate is
 * rejected (returns 0 with *skip set, or fails), a smaller key means the
 * stream is out of order (LOAD_RESTART). */
static int check_order(load *L, source *s, const rec *r, bool *skip)
{
    *skip = false;
    int c = s->have_prev ? keycmp(r->key, r->key_len, s->prev, s->prev_len) : 1;
    if (c < 0) {
        s->out_of_order = true;
        return LOAD_RESTART;
    }
    if (c == 0) {
        char value[ROWS_QUOTE_SIZE];
        size_t id_at = s->kind == ROW_CUSTOMER ? 0 : r->customer_len + 1;
        nba_error_set(
            L->err, -EINVAL, "%s:%zu: duplicate %s, first on line %zu (column '%s': value '%s')",
            rows_path(s->rows), r->id_line, s->what, s->prev_line, s->what,
            rows_quote(value, sizeof value, (const char *)r->key + id_at, r->key_len - id_at));
        *skip = true;
        return reject(L, s, r->line, -EINVAL);
    }
    memcpy(s->prev, r->key, r->key_len);
    s->prev_len = r->key_len;
    s->prev_line = r->id_line;
    s->have_prev = true;
    return 0;
}

/* Moves a stream to its next record (s->have), or to its end (s->done). */
static int advance(load *L, source *s)
{
    int rc;
    bool skip;
    s->have = false;
    for (;;) {
        if (!s->sorted) {
            row r;
            rc = rows_next(s->rows, &r, L->err);
            if (rc < 0) {
                rc = rows_can_go_on(s->rows) ? reject(L, s, rows_line(s->rows), rc) : rc;
                if (rc)
                    return rc;
                continue;
            }
            if (rc == 0)
                break;
            s->read++;
            s->head = (rec){.key = r.key,
                            .key_len = r.key_len,
                            .customer_len = r.customer_len,
                            .val = r.val,
                            .val_len = r.val_len,
                            .line = r.line,
                            .id_line = r.id_line,
                            .customer_line = r.customer_line};
            /* Rejected in an earlier pass for what only shows across rows
             * (a lookup key another row holds): fine on its own. */
            if (L->rejected.count && line_set_has(&L->rejected, line_key(L, s, r.line)))
                continue;
        } else {
            sorter_record r;
            rc = sorter_next(s->sort, &r, L->err);
            if (rc < 0)
                return rc;
            if (rc == 0)
                break;
            s->emitted++;
            size_t line = (size_t)r.tag[0];
            size_t customer_len = r.key_len;
            if (s->kind == ROW_INCIDENT)
                customer_len = (size_t)((const uint8_t *)memchr(r.key, 0, r.key_len) - r.key);
            /* The sort carries the row's line and, packed in tag[1], how
             * many lines further its ids are (sort_source). */
            s->head = (rec){.key = r.key,
                            .key_len = r.key_len,
                            .customer_len = customer_len,
                            .val = r.val,
                            .val_len = r.val_len,
                            .line = line,
                            .id_line = line + (size_t)(r.tag[1] >> 32),
                            .customer_line = line + (size_t)(r.tag[1] & 0xFFFFFFFF)};
            /* A row found bad before the merge (an incident_id given twice). */
            if (L->rejected.count && line_set_has(&L->rejected, line_key(L, s, line)))
                continue;
        }
        rc = tick(L);
        if (!rc)
            rc = check_order(L, s, &s->head, &skip);
        if (rc)
            return rc;
        if (skip)
            continue;
        if (!s->sorted && s->kind == ROW_INCIDENT) {
            rc = idcheck_add(L, s->head.key, s->head.key_len, s->head.customer_len, s->head.line,
                             s->head.id_line);
            if (rc)
                return rc;
        }
        s->have = true;
        return 0;
    }
    s->done = true;
    return s->kind == ROW_CUSTOMER ? customers_ended(L) : 0;
}

/* ---- unknown customers ---- */

static int unknown_customer(load *L, size_t line, size_t customer_line, const char *customer_id,
                            size_t len)
{
    source *s = &L->src[SRC_INCIDENTS];
    char value[ROWS_QUOTE_SIZE];
    nba_error_set(
        L->err, -EINVAL,
        "%s:%zu: incident of a customer that is not in the %s%s (column 'customer_id': value '%s')",
        rows_path(s->rows), customer_line,
        L->opt->mode == LOADER_UPSERT ? "customers file or the database" : "customers file",
        L->customer_rows_rejected ? ", or whose row was rejected" : "",
        rows_quote(value, sizeof value, customer_id, len));
    return reject(L, s, line, -EINVAL);
}

/* The customers file ended in order: the incidents held back are of
 * customers that do not exist. */
static int customers_ended(load *L)
{
    int rc = 0;
    for (size_t i = 0; i < L->ndeferred && !rc; i++) {
        deferred *d = &L->deferred[i];
        rc = unknown_customer(L, d->line, d->customer_line, d->customer_id, d->customer_len);
    }
    L->ndeferred = 0;
    return rc;
}

/* An incident whose customer was not the last one put. */
static int incident_without_customer(load *L, const rec *r)
{
    source *c = &L->src[SRC_CUSTOMERS];
    if (c->sorted || c->done)
        return unknown_customer(L, r->line, r->customer_line, (const char *)r->key,
                                r->customer_len);
    /* Reported in an earlier pass: skip it again. */
    if (line_set_has(&L->rejected, line_key(L, &L->src[SRC_INCIDENTS], r->line)))
        return 0;
    if (L->ndeferred == L->deferred_cap) {
        size_t cap = L->deferred_cap ? L->deferred_cap * 2 : 16;
        deferred *d = realloc(L->deferred, cap * sizeof *d);
        if (!d)
            return nba_error_set(L->err, -ENOMEM, "out of memory");
        L->deferred = d;
        L->deferred_cap = cap;
    }
    deferred *d = &L->deferred[L->ndeferred++];
    d->line = r->line;
    d->customer_line = r->customer_line;
    d->customer_len = r->customer_len;
    memcpy(d->customer_id, r->key, r->customer_len);
    if (L->opt->max_errors > L->nrejected + L->ndeferred - 1)
        return 0;
    /* One more than allowed: whether the load fails depends on whether the
     * customers file stays in order. Read it to its end to find out. */
    while (!c->done) {
        int rc = advance(L, c);
        if (rc)
            return rc;
    }
    return nba_error_set(L->err, -EIO, "%s: internal error: held-back rows not reported",
                         rows_path(c->rows));
}

/* ---- writing ---- */

/* Keeps room in the map for the next chunk of a fresh load. */
static int ensure_room(load *L)
{
    size_t map = store_map_size(L->st), used = store_used_size(L->st);
    if (map > used && map - used >= 4 * CHUNK_BYTES)
        return 0;
    size_t want = map * 2 > used + 8 * CHUNK_BYTES ? map * 2 : used + 8 * CHUNK_BYTES;
    return store_grow_map(L->st, want, L->err);
}

/* A fresh replacing load commits after every chunk of bytes written, so
 * that memory stays bounded whatever the size. */
static int written(load *L, size_t bytes)
{
    if (!L->opt->fresh || L->opt->mode != LOADER_REPLACE)
        return 0;
    L->since_commit += bytes;
    if (L->since_commit < (L->opt->commit_bytes ? L->opt->commit_bytes : CHUNK_BYTES))
        return 0;
    L->since_commit = 0;
    int rc = store_txn_commit(L->txn, L->err);
    L->txn = NULL;
    if (!rc)
        rc = ensure_room(L);
    if (!rc)
        rc = store_txn_begin(L->st, &L->txn, L->err);
    return rc;
}

/* ---- lookup keys ---- */

typedef struct dropping {
    load *L;
    const uint8_t *id;
    size_t id_len;
} dropping;

static int drop_key(void *ctx, size_t key, const char *value, size_t len)
{
    dropping *d = ctx;
    const char *name = loader_keys_name(d->L->keys, key);
    int rc = store_txn_delete_key(d->L->txn, name, value, len, d->id, d->id_len, d->L->err);
    return rc == -ENOENT ? 0 : rc;
}

/* Upsert: deletes the keys of the record customer r replaces. */
static int drop_old_keys(load *L, const source *s, const rec *r)
{
    const void *val;
    size_t len;
    int rc = store_txn_get_packed(L->txn, r->key, r->key_len, &val, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return nba_error_set(L->err, rc, "%s:%zu: cannot read the stored customer: %s",
                             rows_path(s->rows), r->line, strerror(-rc));
    /* Deleting changes the transaction, and with it where val points. */
    if (len > L->old_cap) {
        uint8_t *old = realloc(L->old, len);
        if (!old)
            return nba_error_set(L->err, -ENOMEM, "out of memory");
        L->old = old;
        L->old_cap = len;
    }
    memcpy(L->old, val, len);
    dropping d = {L, r->key, r->key_len};
    rc = loader_keys_of_record(L->keys, L->old, len, drop_key, &d);
    if (rc == -EBADMSG)
        return nba_error_set(L->err, rc,
                             "%s:%zu: the stored record of this customer does not decode",
                             rows_path(s->rows), r->line);
    return rc;
}

/* A row holding a key another holds, reported in L->err: skipped within
 * max_errors, and the pass written again without it. */
static int key_rejected(load *L, size_t line)
{
    int rc = reject(L, &L->src[SRC_CUSTOMERS], line, -EINVAL);
    if (!rc)
        L->keys_again = true;
    return rc;
}

static int put_key(void *ctx, const char *name, const char *value, size_t value_len,
                   const uint8_t *id, size_t id_len, size_t line)
{
    load *L = ctx;
    if (L->keys_again)
        return 0; /* written again anyway: only the rows to skip matter now */
    char holder[STORE_MAX_ID + 1];
    unsigned flags = L->opt->mode == LOADER_REPLACE ? STORE_PUT_APPEND : 0;
    int rc = store_txn_put_key(L->txn, name, value, value_len, id, id_len, flags, holder, L->err);
    const char *path = rows_path(L->src[SRC_CUSTOMERS].rows);
    if (rc == -EEXIST) {
        char quoted[ROWS_QUOTE_SIZE];
        nba_error_set(L->err, -EINVAL,
                      "%s:%zu: duplicate %s, held by customer_id '%s' in the database (column "
                      "'%s': value '%s')",
                      path, line, name, holder, name,
                      rows_quote(quoted, sizeof quoted, value, value_len));
        return key_rejected(L, line);
    }
    if (rc) {
        nba_error_prefix(L->err, "%s:%zu", path, line);
        return rc;
    }
    L->keys_written++;
    return written(L, strlen(name) + 1 + value_len + id_len);
}

static int duplicate_key(void *ctx, const char *name, const char *value, size_t value_len,
                         size_t line, size_t first_line)
{
    load *L = ctx;
    char quoted[ROWS_QUOTE_SIZE];
    nba_error_set(L->err, -EINVAL,
                  "%s:%zu: duplicate %s, first on line %zu (column '%s': value '%s')",
                  rows_path(L->src[SRC_CUSTOMERS].rows), line, name, first_line, name,
                  rows_quote(quoted, sizeof quoted, value, value_len));
    return key_rejected(L, line);
}

/* Every customer is in: the keys they hold are checked and written. */
static int finish_keys(load *L)
{
    loader_keys_sink sink = {put_key, duplicate_key, L};
    int rc = loader_keys_finish(L->keys, &sink, L->err);
    if (!rc && L->keys_again)
        return LOAD_RESTART;
    return rc;
}

static int emit(load *L, source *s)
{
    const rec *r = &s->head;
    int rc;
    if (s->kind == ROW_CUSTOMER) {
        if (L->keys && L->opt->mode == LOADER_UPSERT) {
            rc = drop_old_keys(L, s, r);
            if (rc)
                return rc;
        }
        memcpy(L->last_customer, r->key, r->key_len);
        L->last_customer_len = r->key_len;
        L->have_last_customer = true;
    } else if (!L->have_last_customer || r->customer_len != L->last_customer_len ||
               memcmp(r->key, L->last_customer, r->customer_len) != 0) {
        char id[STORE_MAX_ID + 1];
        memcpy(id, r->key, r->customer_len);
        id[r->customer_len] = '\0';
        rc = L->opt->mode == LOADER_UPSERT ? store_txn_has_customer(L->txn, id) : 0;
        if (rc < 0)
            return nba_error_set(L->err, rc, "%s:%zu: cannot look up customer_id '%s': %s",
                                 rows_path(s->rows), r->line, id, strerror(-rc));
        if (rc == 0)
            return incident_without_customer(L, r);
    }
    unsigned flags = L->opt->mode == LOADER_REPLACE ? STORE_PUT_APPEND : 0;
    rc = store_txn_put_packed(L->txn, r->key, r->key_len, r->val, r->val_len, flags, L->err);
    if (rc) {
        nba_error_prefix(L->err, "%s:%zu", rows_path(s->rows), r->line);
        return rc;
    }
    s->loaded++;
    L->written++;
    if (s->kind == ROW_CUSTOMER && L->keys) {
        rc = loader_keys_add(L->keys, r->key, r->key_len, r->val, r->val_len, r->line, L->err);
        if (rc)
            return rc;
    }
    return written(L, r->key_len + r->val_len);
}

static source *pick(load *L)
{
    source *c = &L->src[SRC_CUSTOMERS], *i = L->nsrc > 1 ? &L->src[SRC_INCIDENTS] : NULL;
    if (c->have &&
        (!i || !i->have || keycmp(c->head.key, c->head.key_len, i->head.key, i->head.key_len) < 0))
        return c;
    return i && i->have ? i : NULL;
}

static int put_timestamp(load *L)
{
    char when[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return store_txn_put_meta(L->txn, L->opt->mode == LOADER_UPSERT ? "updated_at" : "loaded_at",
                              when, L->err);
}

/* One pass: every record of both streams into one transaction (or, fresh,
 * a series of them), committed at the end. */
static int write_pass(load *L)
{
    int rc = 0;
    bool streaming = false;
    for (size_t i = 0; i < L->nsrc && !rc; i++) {
        source *s = &L->src[i];
        s->have = s->done = s->have_prev = false;
        s->emitted = s->loaded = 0;
        if (s->sorted) {
            rc = sorter_rewind(s->sort, L->err);
            continue;
        }
        streaming = true;
        s->read = 0;
        if (s->used)
            rc = rows_reopen(s->rows, L->err);
        s->used = true;
        /* Each file is read and its rows checked and packed in a thread of
         * its own, beside this one putting them into the store. */
        if (!rc)
            rc = rows_read_ahead(s->rows, L->err);
    }
    if (rc)
        return rc;
    L->ndeferred = 0;
    L->have_last_customer = false;
    L->since_commit = 0;
    L->written = 0;
    L->keys_written = 0;
    L->keys_again = false;
    idcheck_reset(L);
    if (L->keys) {
        size_t memory = L->opt->sort_memory ? L->opt->sort_memory : KEY_SORT_MEMORY;
        rc = loader_keys_begin(L->keys, store_dir(L->st), memory, L->err);
        if (rc)
            return rc;
    }
    L->phase = streaming && !L->src[SRC_CUSTOMERS].sorted &&
                       (L->nsrc == 1 || !L->src[SRC_INCIDENTS].sorted)
                   ? LOADER_STREAMING
                   : LOADER_WRITING;
    rc = report(L);
    if (!rc)
        rc = store_txn_begin(L->st, &L->txn, L->err);
    if (!rc && L->opt->mode == LOADER_REPLACE)
        rc = store_txn_clear(L->txn, L->err);
    for (size_t i = 0; i < L->nsrc && !rc; i++)
        rc = advance(L, &L->src[i]);
    source *s;
    while (!rc && (s = pick(L)) != NULL) {
        /* A file the reading thread found out of order will have to be
         * sorted: start again now rather than when the merge gets there. */
        if ((L->written & 0xFFF) == 0)
            for (size_t i = 0; i < L->nsrc; i++)
                if (!L->src[i].sorted && rows_out_of_order(L->src[i].rows)) {
                    L->src[i].out_of_order = true;
                    rc = LOAD_RESTART;
                }
        if (!rc)
            rc = emit(L, s);
        if (!rc)
            rc = advance(L, s);
    }
    if (rc)
        return rc;
    if (L->nsrc > 1 && !L->src[SRC_INCIDENTS].sorted) {
        rc = idcheck_finish(L, true);
        if (rc)
            return rc;
    }
    if (L->keys) {
        rc = finish_keys(L);
        if (rc)
            return rc;
    }
    /* The key names the data was loaded with; an upsert keeps them. */
    if (L->opt->mode == LOADER_REPLACE)
        rc = L->keys ? store_txn_put_meta(L->txn, META_KEYS, loader_keys_list(L->keys), L->err)
                     : store_txn_delete_meta(L->txn, META_KEYS, L->err);
    if (!rc)
        rc = put_timestamp(L);
    if (!rc)
        rc = store_txn_commit(L->txn, L->err);
    L->txn = NULL; /* commit frees it, failed or not */
    return rc;
}

/* ---- the load ---- */

static void fill_stats(const load *L, loader_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    stats->customers = L->src[SRC_CUSTOMERS].loaded;
    stats->rejected_customers = L->src[SRC_CUSTOMERS].rejected;
    stats->sorted_customers = L->src[SRC_CUSTOMERS].unordered;
    if (L->nsrc > 1) {
        stats->incidents = L->src[SRC_INCIDENTS].loaded;
        stats->rejected_incidents = L->src[SRC_INCIDENTS].rejected;
        stats->sorted_incidents = L->src[SRC_INCIDENTS].unordered;
    }
    stats->keys = L->keys_written;
    stats->sort_runs = L->runs;
    stats->attempts = L->attempt + 1;
}

/* The lookup keys of the load: those given for a replacing load; for an
 * upsert, those the database was loaded with (given ones must be the
 * same), since a delta that left them behind would leave keys naming
 * customers that no longer hold them. */
static int setup_keys(load *L)
{
    const loader_options *o = L->opt;
    loader_keys *given = NULL, *stored = NULL;
    int rc = loader_keys_new(o->keys, &given, L->err);
    if (!rc && o->mode == LOADER_UPSERT) {
        char list[LOADER_MAX_KEYS * (STORE_MAX_KEY_NAME + 1) + 1];
        rc = store_get_meta(L->st, META_KEYS, list, sizeof list);
        if (rc == -ENOENT) {
            list[0] = '\0';
            rc = 0;
        }
        if (rc)
            rc = nba_error_set(L->err, rc, "%s: cannot read the lookup key names: %s",
                               store_dir(L->st), strerror(-rc));
        if (!rc && loader_keys_new(list, &stored, L->err))
            rc = nba_error_set(L->err, -EIO, "%s: the lookup key names stored ('%s') are damaged",
                               store_dir(L->st), list);
        if (!rc && given && !loader_keys_same(given, stored))
            rc = stored ? nba_error_set(L->err, -EINVAL,
                                        "%s: loaded with lookup keys '%s', not '%s': an upsert "
                                        "keeps the keys of the full load (a full load changes "
                                        "them)",
                                        store_dir(L->st), list, o->keys)
                        : nba_error_set(L->err, -EINVAL,
                                        "%s: loaded without lookup keys: --keys takes effect "
                                        "with a full load",
                                        store_dir(L->st));
        loader_keys_free(given);
        given = stored;
    }
    if (rc) {
        loader_keys_free(given);
        return rc;
    }
    L->keys = given;
    if (!L->keys)
        return 0;
    return rows_set_keys(L->src[SRC_CUSTOMERS].rows, loader_keys_names(L->keys),
                         loader_keys_count(L->keys), L->err);
}

static int run(load *L)
{
    const loader_options *o = L->opt;
    /* Both files open before anything is written, so that a wrong path or
     * header fails at once. */
    int rc = rows_open(o->customers, ROW_CUSTOMER, &L->src[SRC_CUSTOMERS].rows, L->err);
    if (!rc && o->incidents)
        rc = rows_open(o->incidents, ROW_INCIDENT, &L->src[SRC_INCIDENTS].rows, L->err);
    if (rc)
        return rc;
    if (!rc)
        rc = setup_keys(L);
    if (rc)
        return rc;
    L->nsrc = o->incidents ? 2 : 1;
    L->src[SRC_CUSTOMERS].kind = ROW_CUSTOMER;
    L->src[SRC_CUSTOMERS].what = "customer_id";
    L->src[SRC_INCIDENTS].kind = ROW_INCIDENT;
    L->src[SRC_INCIDENTS].what = "incident_id";

    /* An upsert is sorted first whatever the order: a delta is small, and
     * the sorted records can be written again if the map has to grow. */
    for (size_t i = 0; i < L->nsrc && !rc; i++) {
        source *s = &L->src[i];
        if (o->mode == LOADER_UPSERT || !rows_rereadable(s->rows))
            rc = sort_source(L, s);
    }
    if (rc)
        return rc;
    unsigned growths = 0;
    for (;;) {
        rc = write_pass(L);
        if (rc == 0)
            return 0;
        store_txn_abort(L->txn);
        L->txn = NULL;
        if (rc == LOAD_RESTART) {
            L->attempt++;
            for (size_t i = 0; i < L->nsrc; i++) {
                if (!L->src[i].out_of_order)
                    continue;
                rc = sort_source(L, &L->src[i]);
                if (rc)
                    return rc;
            }
            continue;
        }
        /* The map was too small: an upsert, or a fresh load (whose chunks
         * grow it ahead, so only a record far larger than the input led one
         * to expect gets here), starts again in a map twice the size. */
        if (rc == -ENOSPC && store_map_full(L->st) && growths < MAX_GROWTHS &&
            (o->mode == LOADER_UPSERT || o->fresh)) {
            growths++;
            L->attempt++;
            rc = store_grow_map(L->st, store_map_size(L->st) * 2, L->err);
            if (rc)
                return rc;
            continue;
        }
        return rc;
    }
}

int loader_run(store *st, const loader_options *opt, loader_stats *stats, nba_error *err)
{
    nba_error e = {{0}};
    load L = {.st = st, .opt = opt, .err = &e};
    int rc = opt->customers ? run(&L) : nba_error_set(&e, -EINVAL, "no customers file given");
    if (L.txn)
        store_txn_abort(L.txn);
    if (stats)
        fill_stats(&L, stats);
    for (size_t i = 0; i < NSRC; i++) {
        rows_close(L.src[i].rows);
        sorter_free(L.src[i].sort);
    }
    idcheck_reset(&L);
    loader_keys_free(L.keys);
    free(L.old);
    free(L.rejected.slots);
    free(L.deferred);
    if (rc && err)
        *err = e;
    return rc;
}

int loader_load(store *st, const char *customers_csv, const char *incidents_csv,
                loader_stats *stats, nba_error *err)
{
    loader_options o = {.customers = customers_csv, .incidents = incidents_csv};
    loader_stats s;
    int rc = loader_run(st, &o, &s, err);
    if (stats && rc == 0)
        *stats = s;
    return rc;
}
