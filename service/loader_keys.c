/* loader_keys.c - see loader_keys.h. */
#include "loader_keys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pb_read.h"
#include "sorter.h"
#include "store.h"

/* A key as the sort holds it: the name's rank, then the value. */
#define SORT_KEY_MAX (1 + STORE_MAX_ID)

/* A row holding the key of the group being looked at. */
typedef struct member {
    size_t line;
    size_t id_at, id_len; /* in loader_keys.ids */
} member;

struct loader_keys {
    size_t n;
    char *names[LOADER_MAX_KEYS];
    size_t name_lens[LOADER_MAX_KEYS];
    char *list; /* the names, comma-separated */
    /* Each name's place among the names in byte order, and the other way
     * round: what the sort holds instead of the name. */
    uint8_t rank[LOADER_MAX_KEYS];
    uint8_t by_rank[LOADER_MAX_KEYS];
    sorter *sort;
    /* The group of rows holding one key, while loader_keys_finish() looks
     * at it; reused from group to group. */
    member *members;
    size_t n_members, cap_members;
    uint8_t *ids;
    size_t ids_len, ids_cap;
};

int loader_keys_new(const char *list, loader_keys **out, nba_error *err)
{
    *out = NULL;
    if (!list || !*list)
        return 0;
    loader_keys *k = calloc(1, sizeof *k);
    if (!k || !(k->list = strdup(list))) {
        free(k);
        return nba_error_set(err, -ENOMEM, "out of memory");
    }
    const char *p = list;
    int rc = 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0) {
            rc = nba_error_set(err, -EINVAL, "--keys '%s': an empty column name", list);
            break;
        }
        if (len > STORE_MAX_KEY_NAME) {
            rc = nba_error_set(err, -EINVAL, "--keys: column name '%.*s' longer than %d bytes",
                               (int)len, p, STORE_MAX_KEY_NAME);
            break;
        }
        for (size_t i = 0; i < k->n && !rc; i++)
            if (k->name_lens[i] == len && memcmp(k->names[i], p, len) == 0)
                rc = nba_error_set(err, -EINVAL, "--keys: column '%.*s' given twice", (int)len, p);
        if (rc)
            break;
        if (k->n == LOADER_MAX_KEYS) {
            rc = nba_error_set(err, -EINVAL, "--keys: more than %d columns", LOADER_MAX_KEYS);
            break;
        }
        k->names[k->n] = strndup(p, len);
        if (!k->names[k->n]) {
            rc = nba_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        k->name_lens[k->n++] = len;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (rc) {
        loader_keys_free(k);
        return rc;
    }
    for (size_t i = 0; i < k->n; i++) {
        size_t below = 0;
        for (size_t j = 0; j < k->n; j++)
            below += strcmp(k->names[j], k->names[i]) < 0;
        k->rank[i] = (uint8_t)below;
        k->by_rank[below] = (uint8_t)i;
    }
    *out = k;
    return 0;
}

void loader_keys_free(loader_keys *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        free(k->names[i]);
    sorter_free(k->sort);
    free(k->members);
    free(k->ids);
    free(k->list);
    free(k);
}

size_t loader_keys_count(const loader_keys *k)
{
    return k ? k->n : 0;
}

const char *loader_keys_name(const loader_keys *k, size_t i)
{
    return k->names[i];
}

const char *const *loader_keys_names(const loader_keys *k)
{
    return (const char *const *)k->names;
}

const char *loader_keys_list(const loader_keys *k)
{
    return k ? k->list : "";
}

bool loader_keys_same(const loader_keys *a, const loader_keys *b)
{
    if (loader_keys_count(a) != loader_keys_count(b))
        return false;
    for (size_t i = 0; i < loader_keys_count(a); i++) {
        bool found = false;
        for (size_t j = 0; j < b->n && !found; j++)
            found = strcmp(a->names[i], b->names[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

bool loader_keys_next_value(const char **p, const char *end, const char **value, size_t *len)
{
    const char *s = *p;
    while (s < end) {
        const char *semi = memchr(s, ';', (size_t)(end - s));
        const char *stop = semi ? semi : end;
        const char *a = s, *b = stop;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        s = semi ? semi + 1 : end;
        if (a < b) {
            *p = s;
            *value = a;
            *len = (size_t)(b - a);
            return true;
        }
    }
    *p = end;
    return false;
}

/* ---- reading a packed record ----
 *
 * Only the attributes (field 7 of nba.v1.Customer: name = 1, text = 2) are
 * looked at; every other field is stepped over by its wire type. */

/* An attribute's name and text (the last of each, as protobuf reads). */
static bool read_attribute(const uint8_t *d, size_t n, const uint8_t **name, size_t *name_len,
                           const uint8_t **text, size_t *text_len)
{
    pb_reader r = {d, d + n};
    *name = *text = NULL;
    *name_len = *text_len = 0;
    while (r.p < r.end) {
        pb_field f;
        if (!pb_next_field(&r, &f))
            return false;
        if (f.number == 1 && f.wire == PB_LEN) {
            *name = f.data;
            *name_len = f.len;
        } else if (f.number == 2 && f.wire == PB_LEN) {
            *text = f.data;
            *text_len = f.len;
        }
    }
    return true;
}

int loader_keys_of_record(const loader_keys *k, const uint8_t *rec, size_t len, loader_key_fn fn,
                          void *ctx)
{
    pb_reader r = {rec, rec + len};
    while (r.p < r.end) {
        pb_field f;
        if (!pb_next_field(&r, &f))
            return -EBADMSG;
        if (f.number != 7 || f.wire != PB_LEN)
            continue;
        const uint8_t *name, *text;
        size_t name_len, text_len;
        if (!read_attribute(f.data, f.len, &name, &name_len, &text, &text_len))
            return -EBADMSG;
        for (size_t i = 0; i < k->n; i++) {
            if (k->name_lens[i] != name_len || memcmp(k->names[i], name, name_len) != 0)
                continue;
            const char *p = (const char *)text, *end = p + text_len, *value;
            size_t value_len;
            while (text && loader_keys_next_value(&p, end, &value, &value_len)) {
                int rc = fn(ctx, i, value, value_len);
                if (rc)
                    return rc;
            }
            break;
        }
    }
    return 0;
}

/* ---- across rows ---- */

int loader_keys_begin(loader_keys *k, const char *tmp_dir, size_t memory, nba_error *err)
{
    sorter_free(k->sort);
    k->sort = NULL;
    return sorter_new(tmp_dir, memory, &k->sort, err);
}

typedef struct adding {
    loader_keys *k;
    const uint8_t *id;
    size_t id_len, line;
    nba_error *err;
} adding;

static int add_one(void *ctx, size_t i, const char *value, size_t len)
{
    adding *ad = ctx;
    uint8_t key[SORT_KEY_MAX];
    /* The row's checks (loader_rows.c) keep every key within bounds. */
    if (len > STORE_MAX_ID)
        return nba_error_set(ad->err, -EINVAL, "a %s longer than %d bytes", ad->k->names[i],
                             STORE_MAX_ID);
    key[0] = ad->k->rank[i];
    memcpy(key + 1, value, len);
    return sorter_add(ad->k->sort, key, 1 + len, ad->id, ad->id_len, ad->line, 0, ad->err);
}

int loader_keys_add(loader_keys *k, const uint8_t *id, size_t id_len, const uint8_t *rec,
                    size_t rec_len, size_t line, nba_error *err)
{
    adding ad = {k, id, id_len, line, err};
    int rc = loader_keys_of_record(k, rec, rec_len, add_one, &ad);
    if (rc == -EBADMSG)
        return nba_error_set(err, rc, "line %zu: a customer record that does not decode", line);
    return rc;
}

static int add_member(loader_keys *k, size_t line, const uint8_t *id, size_t id_len)
{
    if (k->n_members == k->cap_members) {
        size_t cap = k->cap_members ? k->cap_members * 2 : 8;
        member *m = realloc(k->members, cap * sizeof *m);
        if (!m)
            return -ENOMEM;
        k->members = m;
        k->cap_members = cap;
    }
    if (k->ids_len + id_len > k->ids_cap) {
        size_t cap = k->ids_cap ? k->ids_cap * 2 : 1024;
        while (cap < k->ids_len + id_len)
            cap *= 2;
        uint8_t *ids = realloc(k->ids, cap);
        if (!ids)
            return -ENOMEM;
        k->ids = ids;
        k->ids_cap = cap;
    }
    memcpy(k->ids + k->ids_len, id, id_len);
    k->members[k->n_members++] = (member){line, k->ids_len, id_len};
    k->ids_len += id_len;
    return 0;
}

static int by_line(const void *a, const void *b)
{
    size_t x = ((const member *)a)->line, y = ((const member *)b)->line;
    return x < y ? -1 : x > y;
}

/* Hands one key and the rows holding it to the sink. */
static int flush_group(loader_keys *k, const uint8_t *key, size_t key_len,
                       const loader_keys_sink *sink)
{
    const char *name = k->names[k->by_rank[key[0]]];
    const char *value = (const char *)key + 1;
    size_t value_len = key_len - 1;
    /* The sort keeps rows in the order they were added, which is key
     * order, not line order: the first row is the lowest line. */
    if (k->n_members > 1)
        qsort(k->members, k->n_members, sizeof *k->members, by_line);
    const member *first = &k->members[0];
    int rc = sink->put(sink->ctx, name, value, value_len, k->ids + first->id_at, first->id_len,
                       first->line);
    for (size_t i = 1; i < k->n_members && !rc; i++)
        if (k->members[i].line != k->members[i - 1].line)
            rc =
                sink->duplicate(sink->ctx, name, value, value_len, k->members[i].line, first->line);
    k->n_members = 0;
    k->ids_len = 0;
    return rc;
}

int loader_keys_finish(loader_keys *k, const loader_keys_sink *sink, nba_error *err)
{
    int rc = sorter_finish(k->sort, err);
    if (rc)
        return rc;
    uint8_t key[SORT_KEY_MAX];
    size_t key_len = 0;
    sorter_record r;
    k->n_members = 0;
    k->ids_len = 0;
    while ((rc = sorter_next(k->sort, &r, err)) > 0) {
        if (r.key_len < 2 || r.key_len > SORT_KEY_MAX || r.key[0] >= k->n)
            return nba_error_set(err, -EIO, "a lookup key of %zu bytes in the sort", r.key_len);
        if (k->n_members && (r.key_len != key_len || memcmp(r.key, key, key_len) != 0)) {
            rc = flush_group(k, key, key_len, sink);
            if (rc)
                return rc;
        }
        if (!k->n_members) {
            memcpy(key, r.key, r.key_len);
            key_len = r.key_len;
        }
        if (add_member(k, (size_t)r.tag[0], r.val, r.val_len))
            return nba_error_set(err, -ENOMEM, "out of memory");
    }
    if (rc < 0)
        return rc;
    return k->n_members ? flush_group(k, key, key_len, sink) : 0;
}
