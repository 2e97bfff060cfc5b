/* store.c - see include/store.h. The only file that talks to LMDB. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "dbroot.h"
#include "record.h"

#define STORE_DEFAULT_MAP_SIZE ((size_t)64 << 30)
#define STORE_DEFAULT_READERS  126

/* The layout this code reads and writes, kept in meta under "format". */
#define STORE_FORMAT "2"

/* Meta entries the store keeps itself. */
#define META_FORMAT    "format"
#define META_CUSTOMERS "customers"
#define META_INCIDENTS "incidents"

struct store {
    MDB_env *env;
    MDB_dbi records;
    MDB_dbi meta;
    MDB_dbi keys;
    /* A generation written before lookup keys existed has no keys table;
     * opened read-only, it is not created: every key lookup misses. */
    bool has_keys;
    bool readonly;
    /* The last write transaction failed because the map was full: growing
     * the map (store_grow_map) and trying again can succeed. */
    bool map_full;
    char *dir;
    /* Where LMDB mapped the data file, found on first use (store_map_info);
     * set once, read by any thread. */
    _Atomic(const uint8_t *) map_addr;
    _Atomic size_t map_len;
};

struct store_reader {
    store *st;
    MDB_txn *txn;    /* kept across snapshots while nothing is committed */
    MDB_cursor *cur; /* on records, renewed with the transaction */
    bool active;     /* between store_reader_begin() and store_reader_end() */
    bool held;       /* txn is a live snapshot (not reset) */
    bool failed;     /* a read failed in it: renewed, not kept, next time */
    /* The cursor rests on the customer store_get_customer() just found, so
     * that store_get_incidents() for that customer goes on from there;
     * customer is that record's key, in the snapshot. Only those two move
     * cur: any other read goes through a lookup of its own (mdb_get), or
     * must clear on_customer. */
    bool on_customer;
    MDB_val customer;
};

struct store_txn {
    store *st;
    MDB_txn *txn;
    /* On records, kept from put to put: a put whose key falls on the page
     * the cursor is on (the next key in order, or a customer's incident
     * after store_txn_has_customer() found the customer) takes no descent
     * from the root. */
    MDB_cursor *cur;
    /* On keys, opened with the first key put: appended keys go on from
     * where the last one went. */
    MDB_cursor *keys_cur;
    size_t customers; /* the counts as this transaction sees them, */
    size_t incidents; /* written to meta on commit */
    uint8_t *buf;     /* packing buffer, grown as needed and reused for every put */
    size_t cap;
};

/* Translates an LMDB return code into a negative errno: the one place that
 * knows LMDB's codes. System errors come back from LMDB as positive errnos. */
static int lmdb_error(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_KEYEXIST:
        return -EEXIST;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case MDB_DBS_FULL:
        return -ENOSPC;
    case MDB_READERS_FULL:
    case MDB_MAP_RESIZED:
        return -EAGAIN;
    case MDB_BAD_VALSIZE:
        return -EINVAL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return -EIO;
    default:
        return rc > 0 ? -rc : -EIO;
    }
}

static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* ---- meta entries ---- */

/* Reads meta entry `name` into buf as a NUL-terminated text. Returns 0,
 * -ENOENT when there is no such entry, -EOVERFLOW when it does not fit, or
 * another negative errno. */
static int meta_get(MDB_txn *txn, MDB_dbi meta, const char *name, char *buf, size_t size)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(txn, meta, &k, &v);
    if (rc)
        return lmdb_error(rc);
    if (v.mv_size >= size)
        return -EOVERFLOW;
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';
    return 0;
}

/* Reads a count kept in meta as decimal text; 0 when the entry is missing.
 * Returns 0, -EIO when the entry is not a count, or another negative errno. */
static int meta_get_count(MDB_txn *txn, MDB_dbi meta, const char *name, size_t *out)
{
    char text[32], *end;
    *out = 0;
    int rc = meta_get(txn, meta, name, text, sizeof text);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc == -EOVERFLOW ? -EIO : rc;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (end == text || *end || errno || n > SIZE_MAX)
        return -EIO;
    *out = (size_t)n;
    return 0;
}

/* Sets a meta entry. Returns an LMDB code. */
static int meta_put(MDB_txn *txn, MDB_dbi meta, const char *name, const char *value)
{
    MDB_val k = {strlen(name), (void *)name}, v = {strlen(value), (void *)value};
    return mdb_put(txn, meta, &k, &v, 0);
}

/* Sets a count kept in meta. Returns an LMDB code. */
static int meta_put_count(MDB_txn *txn, MDB_dbi meta, const char *name, size_t n)
{
    char text[32];
    snprintf(text, sizeof text, "%zu", n);
    return meta_put(txn, meta, name, text);
}

/* Looks at the format entry. Returns 1 for this code's format, 0 when there
 * is none (a new environment, or one written before formats were kept:
 * format 1, with customers and incidents in two tables), or a negative
 * errno with a message for any other. */
static int check_format(store *st, MDB_txn *txn, nba_error *err)
{
    char format[16];
    int rc = meta_get(txn, st->meta, META_FORMAT, format, sizeof format);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0 && strcmp(format, STORE_FORMAT) == 0)
        return 1;
    if (rc && rc != -EOVERFLOW)
        return nba_error_set(err, rc, "%s: cannot read the database's format: %s", st->dir,
                             strerror(-rc));
    return nba_error_set(err, -ENOTSUP,
                         "%s: database of an unknown format ('%s'; this nbad reads format %s): "
                         "load it again with nbactl load",
                         st->dir, rc ? "?" : format, STORE_FORMAT);
}

/* Drops the tables of a format 1 database, customers and incidents, if the
 * environment has them. Returns an LMDB code. */
static int drop_format1_tables(MDB_txn *txn)
{
    static const char *const names[] = {"customers", "incidents"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        MDB_dbi dbi;
        int rc = mdb_dbi_open(txn, names[i], 0, &dbi);
        if (rc == MDB_NOTFOUND)
            continue;
        if (!rc)
            rc = mdb_drop(txn, dbi, 1);
        if (rc)
            return rc;
    }
    return 0;
}

/* Opens the tables and checks the format. A new environment opened for
 * writing gets the format and zero counts here; one of format 1 opened for
 * writing is left as it is until the first write transaction replaces it
 * (store_txn_begin), so that a load that fails leaves it as it was. */
static int open_dbis(store *st, nba_error *err)
{
    MDB_txn *txn;
    unsigned dbflags = st->readonly ? 0 : MDB_CREATE;
    int rc = mdb_txn_begin(st->env, NULL, st->readonly ? MDB_RDONLY : 0, &txn);
    if (rc)
        return nba_error_set(err, lmdb_error(rc), "%s: cannot begin a transaction: %s", st->dir,
                             mdb_strerror(rc));
    const char *name = "meta";
    rc = mdb_dbi_open(txn, name, dbflags, &st->meta);
    if (rc)
        goto table_error;
    int format = check_format(st, txn, err);
    if (format < 0) {
        rc = format;
        goto fail;
    }
    if (format == 0 && st->readonly) {
        rc = nba_error_set(err, -ENOTSUP,
                           "%s: database written by an older nbad (format 1): load it again "
                           "with nbactl load",
                           st->dir);
        goto fail;
    }
    name = "records";
    rc = mdb_dbi_open(txn, name, dbflags, &st->records);
    if (rc)
        goto table_error;
    name = "keys";
    rc = mdb_dbi_open(txn, name, dbflags, &st->keys);
    if (rc && rc != MDB_NOTFOUND)
        goto table_error;
    st->has_keys = rc == 0;
    if (format == 0) {
        MDB_dbi old;
        rc = mdb_dbi_open(txn, "customers", 0, &old);
        if (rc == MDB_NOTFOUND) {
            rc = meta_put(txn, st->meta, META_FORMAT, STORE_FORMAT);
            if (!rc)
                rc = meta_put_count(txn, st->meta, META_CUSTOMERS, 0);
            if (!rc)
                rc = meta_put_count(txn, st->meta, META_INCIDENTS, 0);
        }
        if (rc) {
            rc = nba_error_set(err, lmdb_error(rc), "%s: cannot set up the database: %s", st->dir,
                               mdb_strerror(rc));
            goto fail;
        }
    }
    /* Committing (even a read-only transaction) keeps the handles for every
     * later transaction. */
    rc = mdb_txn_commit(txn);
    if (rc)
        return nba_error_set(err, lmdb_error(rc), "%s: %s", st->dir, mdb_strerror(rc));
    return 0;

table_error:
    if (rc == MDB_NOTFOUND)
        rc = nba_error_set(err, -ENOENT, "%s: no '%s' table: this database was never loaded",
                           st->dir, name);
    else
        rc = nba_error_set(err, lmdb_error(rc), "%s: cannot open table '%s': %s", st->dir, name,
                           mdb_strerror(rc));
fail:
    mdb_txn_abort(txn);
    return rc;
}

int store_open(const char *dir, unsigned flags, size_t map_size, unsigned max_readers, store **out,
               nba_error *err)
{
    int rc;
    struct stat sb;
    char generation[4096];
    /* A database root: the generation serving now. */
    if (!(flags & STORE_EXACT) && dbroot_resolve(dir, generation, sizeof generation, NULL) == 0)
        dir = generation;
    store *st = calloc(1, sizeof *st);
    if (!st)
        return nba_error_set(err, -ENOMEM, "out of memory");
    st->readonly = flags & STORE_READONLY;
    st->dir = strdup(dir);
    if (!st->dir) {
        rc = nba_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }

    if (flags & STORE_CREATE) {
        rc = mkdir_p(dir);
        if (rc) {
            nba_error_set(err, rc, "%s: cannot create directory: %s", dir, strerror(-rc));
            goto fail;
        }
    } else if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        rc = nba_error_set(err, -ENOENT, "%s: no such database directory", dir);
        goto fail;
    }

    rc = mdb_env_create(&st->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(st->env, 8);
    if (!rc)
        rc = mdb_env_set_mapsize(st->env, map_size ? map_size : STORE_DEFAULT_MAP_SIZE);
    if (!rc)
        rc = mdb_env_set_maxreaders(st->env, max_readers ? max_readers : STORE_DEFAULT_READERS);
    if (rc) {
        nba_error_set(err, lmdb_error(rc), "%s: %s", dir, mdb_strerror(rc));
        rc = lmdb_error(rc);
        goto fail;
    }
    /* MDB_NOTLS: a read transaction belongs to its store_reader, not to the
     * thread, so a thread may hold a reader and still open another snapshot
     * (store_get_stats) without tripping over LMDB's per-thread slot. */
    unsigned envflags =
        MDB_NOTLS | (st->readonly ? MDB_RDONLY : 0) | (flags & STORE_NOSYNC ? MDB_NOSYNC : 0);
    rc = mdb_env_open(st->env, dir, envflags, 0644);
    if (rc) {
        int code = lmdb_error(rc);
        if (rc == ENOENT)
            nba_error_set(err, code, "%s: no database here (load one with nbactl load)", dir);
        else
            nba_error_set(err, code, "%s: cannot open database: %s", dir, mdb_strerror(rc));
        rc = code;
        goto fail;
    }
    /* A process that died holding a read slot would pin old pages forever. */
    int dead = 0;
    mdb_reader_check(st->env, &dead);

    rc = open_dbis(st, err);
    if (rc)
        goto fail;
    *out = st;
    return 0;

fail:
    if (st->env)
        mdb_env_close(st->env);
    free(st->dir);
    free(st);
    return rc;
}

void store_close(store *st)
{
    if (!st)
        return;
    mdb_env_close(st->env);
    free(st->dir);
    free(st);
}

/* ---- readers ---- */

int store_reader_new(store *st, store_reader **out, nba_error *err)
{
    store_reader *r = calloc(1, sizeof *r);
    if (!r)
        return nba_error_set(err, -ENOMEM, "out of memory");
    r->st = st;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &r->txn);
    if (!rc)
        rc = mdb_cursor_open(r->txn, st->records, &r->cur);
    if (rc) {
        if (r->txn)
            mdb_txn_abort(r->txn);
        free(r);
        return nba_error_set(err, lmdb_error(rc), "%s: cannot start a reader: %s", st->dir,
                             mdb_strerror(rc));
    }
    /* Created in the reset state: store_reader_begin() renews it. */
    mdb_txn_reset(r->txn);
    *out = r;
    return 0;
}

void store_reader_free(store_reader *r)
{
    if (!r)
        return;
    mdb_cursor_close(r->cur);
    mdb_txn_abort(r->txn);
    free(r);
}

/* A read that failed for another reason than "not found" (a damaged page)
 * may leave the transaction unusable (LMDB then answers MDB_BAD_TXN to
 * everything): the next snapshot renews it rather than keep it. */
static int reader_error(store_reader *r, int rc)
{
    if (rc != MDB_NOTFOUND)
        r->failed = true;
    return lmdb_error(rc);
}

/* Renewing costs more than the lookup of a customer's first page: LMDB
 * looks the records table up again in the renewed snapshot. A snapshot no
 * commit has overtaken is as good as a renewed one, so it is kept. */
int store_reader_begin(store_reader *r)
{
    if (r->active)
        return 0;
    if (r->held) {
        MDB_envinfo info;
        if (!r->failed && mdb_env_info(r->st->env, &info) == 0 &&
            info.me_last_txnid == mdb_txn_id(r->txn)) {
            r->active = true;
            r->on_customer = false;
            return 0;
        }
        store_reader_release(r);
    }
    int rc = mdb_txn_renew(r->txn);
    if (!rc)
        rc = mdb_cursor_renew(r->txn, r->cur);
    if (rc) {
        mdb_txn_reset(r->txn);
        return lmdb_error(rc);
    }
    r->held = true;
    r->active = true;
    r->on_customer = false;
    return 0;
}

void store_reader_end(store_reader *r)
{
    r->active = false;
    r->on_customer = false;
}

void store_reader_release(store_reader *r)
{
    store_reader_end(r);
    if (r->held) {
        mdb_txn_reset(r->txn);
        r->held = false;
    }
    r->failed = false;
}

int store_get_customer(store_reader *r, const char *customer_id, arena *a, Nba__V1__Customer **out)
{
    MDB_val key = {strlen(customer_id), (void *)customer_id}, val;
    r->on_customer = false;
    if (key.mv_size == 0 || key.mv_size > STORE_MAX_ID)
        return -ENOENT;
    int rc = mdb_cursor_get(r->cur, &key, &val, MDB_SET_KEY);
    if (rc)
        return reader_error(r, rc);
    r->on_customer = true;
    r->customer = key;
    /* Decoding copies every string into the arena, so the record outlives
     * the snapshot. */
    return record_decode_customer(val.mv_data, val.mv_size, a, out);
}

/* Builds the incident key prefix "customer_id\0" (or the whole key when
 * incident_id is given) into buf. Returns its length, or 0 if it is too long. */
static size_t incident_key(char *buf, size_t cap, const char *customer_id, const char *incident_id)
{
    size_t clen = strlen(customer_id), ilen = incident_id ? strlen(incident_id) : 0;
    if (clen + 1 + ilen > cap)
        return 0;
    memcpy(buf, customer_id, clen);
    buf[clen] = '\0';
    if (ilen)
        memcpy(buf + clen + 1, incident_id, ilen);
    return clen + 1 + ilen;
}

int store_get_incidents(store_reader *r, const char *customer_id, arena *a,
                        Nba__V1__Incident ***out, size_t *count)
{
    char prefix[STORE_MAX_ID + 1];
    bool on_customer = r->on_customer;
    r->on_customer = false;
    *out = NULL;
    *count = 0;
    size_t plen = incident_key(prefix, sizeof prefix, customer_id, NULL);
    if (plen <= 1)
        return 0;

    /* The incidents follow their customer's own record: right after
     * store_get_customer() found this customer, the next record is the
     * first incident, if any, with no second descent from the root. */
    MDB_val key, val;
    int rc;
    if (on_customer && r->customer.mv_size == plen - 1 &&
        memcmp(r->customer.mv_data, prefix, plen - 1) == 0) {
        rc = mdb_cursor_get(r->cur, &key, &val, MDB_NEXT);
    } else {
        key = (MDB_val){plen, prefix};
        rc = mdb_cursor_get(r->cur, &key, &val, MDB_SET_RANGE);
    }
    Nba__V1__Incident **list = NULL;
    size_t n = 0, cap = 0;
    while (rc == 0 && key.mv_size > plen && memcmp(key.mv_data, prefix, plen) == 0) {
        list = arena_grow(a, list, n, &cap, sizeof *list);
        if (!list)
            return -ENOMEM;
        rc = record_decode_incident(val.mv_data, val.mv_size, a, &list[n]);
        if (rc)
            return rc;
        n++;
        rc = mdb_cursor_get(r->cur, &key, &val, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND)
        return reader_error(r, rc);
    *out = list;
    *count = n;
    return 0;
}

/* ---- lookup keys ---- */

/* The longest lookup key: name 0x00 value. */
#define LOOKUP_KEY_MAX (STORE_MAX_KEY_NAME + 1 + STORE_MAX_ID)

/* Builds name 0x00 value into buf (LOOKUP_KEY_MAX bytes): the name, a C
 * string, holds no NUL byte, so no two names and values make the same
 * key. Returns its length, or 0 when the name or the value is empty or too
 * long. */
static size_t lookup_key(uint8_t *buf, const char *name, const void *value, size_t value_len)
{
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len > STORE_MAX_KEY_NAME || value_len == 0 ||
        value_len > STORE_MAX_ID)
        return 0;
    memcpy(buf, name, name_len);
    buf[name_len] = 0;
    memcpy(buf + name_len + 1, value, value_len);
    return name_len + 1 + value_len;
}

int store_find_key(store_reader *r, const char *name, const char *value, arena *a,
                   char **customer_id)
{
    uint8_t kbuf[LOOKUP_KEY_MAX];
    *customer_id = NULL;
    if (!r->st->has_keys || !name || !value)
        return -ENOENT;
    MDB_val key = {lookup_key(kbuf, name, value, strlen(value)), kbuf}, val;
    if (key.mv_size == 0)
        return -ENOENT;
    /* A lookup of its own, not through the reader's cursor: that stays
     * where store_get_customer() left it. */
    int rc = mdb_get(r->txn, r->st->keys, &key, &val);
    if (rc)
        return reader_error(r, rc);
    if (val.mv_size == 0 || val.mv_size > STORE_MAX_ID || memchr(val.mv_data, 0, val.mv_size))
        return -EBADMSG;
    *customer_id = arena_strndup(a, val.mv_data, val.mv_size);
    return *customer_id ? 0 : -ENOMEM;
}

/* ---- the write transaction ---- */

static int txn_fail(store_txn *t, int rc, const char *what, nba_error *err)
{
    if (rc == MDB_MAP_FULL) {
        t->st->map_full = true;
        return nba_error_set(err, lmdb_error(rc), "%s: %s: the database is full (map size %zu MiB)",
                             t->st->dir, what, store_map_size(t->st) >> 20);
    }
    return nba_error_set(err, lmdb_error(rc), "%s: %s: %s", t->st->dir, what, mdb_strerror(rc));
}

/* Replaces a format 1 database, inside the transaction: drops its tables
 * and whatever records holds, then records this format with zero counts. */
static int txn_convert(store_txn *t, nba_error *err)
{
    int rc = drop_format1_tables(t->txn);
    if (!rc)
        rc = mdb_drop(t->txn, t->st->records, 0);
    if (!rc)
        rc = meta_put(t->txn, t->st->meta, META_FORMAT, STORE_FORMAT);
    if (rc)
        return txn_fail(t, rc, "cannot replace the format 1 database", err);
    t->customers = t->incidents = 0;
    return 0;
}

int store_txn_begin(store *st, store_txn **out, nba_error *err)
{
    if (st->readonly)
        return nba_error_set(err, -EROFS, "%s: opened read-only", st->dir);
    store_txn *t = calloc(1, sizeof *t);
    if (!t)
        return nba_error_set(err, -ENOMEM, "out of memory");
    t->st = st;
    st->map_full = false;
    int rc = mdb_txn_begin(st->env, NULL, 0, &t->txn);
    if (rc) {
        free(t);
        return nba_error_set(err, lmdb_error(rc), "%s: cannot begin a write transaction: %s",
                             st->dir, mdb_strerror(rc));
    }
    /* The format is looked at again inside the transaction: that is the
     * state this transaction changes. */
    rc = check_format(st, t->txn, err);
    if (rc == 0) {
        rc = txn_convert(t, err);
    } else if (rc == 1) {
        rc = meta_get_count(t->txn, st->meta, META_CUSTOMERS, &t->customers);
        if (!rc)
            rc = meta_get_count(t->txn, st->meta, META_INCIDENTS, &t->incidents);
        if (rc)
            rc = nba_error_set(err, rc, "%s: cannot read the record counts: %s", st->dir,
                               strerror(-rc));
    }
    if (!rc) {
        int mrc = mdb_cursor_open(t->txn, st->records, &t->cur);
        if (mrc)
            rc = txn_fail(t, mrc, "cannot open a cursor", err);
    }
    if (rc) {
        mdb_txn_abort(t->txn);
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int store_txn_clear(store_txn *t, nba_error *err)
{
    t->customers = t->incidents = 0;
    /* Emptied, not deleted: the cursors stay valid on the empty trees. */
    int rc = mdb_drop(t->txn, t->st->records, 0);
    if (!rc && t->st->has_keys)
        rc = mdb_drop(t->txn, t->st->keys, 0);
    if (rc)
        return txn_fail(t, rc, "cannot clear", err);
    return 0;
}

static int check_id(const char *what, const char *id, nba_error *err)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0)
        return nba_error_set(err, -EINVAL, "empty %s", what);
    if (len > STORE_MAX_ID)
        return nba_error_set(err, -EINVAL, "%s longer than %d bytes", what, STORE_MAX_ID);
    return 0;
}

/* Packs msg into the transaction's reusable buffer. */
static int pack(store_txn *t, const ProtobufCMessage *msg, MDB_val *val)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    if (size > t->cap) {
        size_t cap = size < 4096 ? 4096 : size * 2;
        uint8_t *buf = realloc(t->buf, cap);
        if (!buf)
            return -ENOMEM;
        t->buf = buf;
        t->cap = cap;
    }
    val->mv_size = protobuf_c_message_pack(msg, t->buf);
    val->mv_data = t->buf;
    return 0;
}

/* Stores key -> val in records through the transaction's cursor and counts
 * the key in *count when it is new. Returns an LMDB code. */
static int put_record(store_txn *t, MDB_val *key, MDB_val *val, size_t *count)
{
    /* On MDB_KEYEXIST LMDB returns the stored value in `data`: a copy. */
    MDB_val data = *val;
    int rc = mdb_cursor_put(t->cur, key, &data, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return mdb_cursor_put(t->cur, key, val, 0);
    if (!rc)
        (*count)++;
    return rc;
}

int store_txn_put_customer(store_txn *t, const Nba__V1__Customer *c, nba_error *err)
{
    int rc = check_id("customer_id", c->customer_id, err);
    if (rc)
        return rc;
    MDB_val key = {strlen(c->customer_id), c->customer_id}, val;
    if (pack(t, &c->base, &val))
        return nba_error_set(err, -ENOMEM, "out of memory");
    rc = put_record(t, &key, &val, &t->customers);
    if (rc)
        return txn_fail(t, rc, "cannot store customer", err);
    return 0;
}

int store_txn_put_incident(store_txn *t, const Nba__V1__Incident *inc, nba_error *err)
{
    int rc = check_id("customer_id", inc->customer_id, err);
    if (!rc)
        rc = check_id("incident_id", inc->incident_id, err);
    if (rc)
        return rc;
    char kbuf[2 * STORE_MAX_ID + 1];
    MDB_val key = {incident_key(kbuf, sizeof kbuf, inc->customer_id, inc->incident_id), kbuf};
    MDB_val val;
    if (pack(t, &inc->base, &val))
        return nba_error_set(err, -ENOMEM, "out of memory");
    rc = put_record(t, &key, &val, &t->incidents);
    if (rc)
        return txn_fail(t, rc, "cannot store incident", err);
    return 0;
}

int store_txn_put_packed(store_txn *t, const void *key, size_t key_len, const void *val,
                         size_t val_len, unsigned flags, nba_error *err)
{
    const char *nul = key_len ? memchr(key, '\0', key_len) : NULL;
    size_t id_len = nul ? (size_t)(nul - (const char *)key) : key_len;
    if (id_len == 0 || id_len > STORE_MAX_ID ||
        (nul && (key_len - id_len - 1 == 0 || key_len - id_len - 1 > STORE_MAX_ID ||
                 memchr(nul + 1, '\0', key_len - id_len - 1))))
        return nba_error_set(err, -EINVAL, "not a record key (%zu bytes)", key_len);
    size_t *count = nul ? &t->incidents : &t->customers;
    MDB_val k = {key_len, (void *)key}, v = {val_len, (void *)val};
    int rc;
    if (flags & STORE_PUT_APPEND) {
        rc = mdb_cursor_put(t->cur, &k, &v, MDB_APPEND);
        if (rc == MDB_KEYEXIST)
            return nba_error_set(
                err, -EINVAL, "%s: an appended key does not sort after the last one", t->st->dir);
        if (!rc)
            (*count)++;
    } else {
        rc = put_record(t, &k, &v, count);
    }
    if (rc)
        return txn_fail(t, rc, nul ? "cannot store incident" : "cannot store customer", err);
    return 0;
}

int store_txn_delete_packed(store_txn *t, const void *key, size_t key_len, nba_error *err)
{
    MDB_val k = {key_len, (void *)key};
    if (key_len == 0 || key_len > 2 * STORE_MAX_ID + 1)
        return -ENOENT;
    int rc = mdb_del(t->txn, t->st->records, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc)
        return txn_fail(t, rc, "cannot delete", err);
    if (memchr(key, '\0', key_len))
        t->incidents--;
    else
        t->customers--;
    return 0;
}

int store_txn_get_packed(store_txn *t, const void *key, size_t key_len, const void **val,
                         size_t *val_len)
{
    MDB_val k = {key_len, (void *)key}, v;
    if (key_len == 0 || key_len > 2 * STORE_MAX_ID + 1)
        return -ENOENT;
    int rc = mdb_get(t->txn, t->st->records, &k, &v);
    if (rc)
        return lmdb_error(rc);
    *val = v.mv_data;
    *val_len = v.mv_size;
    return 0;
}

/* The transaction's cursor on keys, opened on first use. Returns an LMDB
 * code. */
static int keys_cursor(store_txn *t)
{
    if (t->keys_cur)
        return 0;
    if (!t->st->has_keys)
        return MDB_NOTFOUND;
    return mdb_cursor_open(t->txn, t->st->keys, &t->keys_cur);
}

int store_txn_put_key(store_txn *t, const char *name, const void *value, size_t value_len,
                      const void *customer_id, size_t id_len, unsigned flags, char *holder,
                      nba_error *err)
{
    uint8_t kbuf[LOOKUP_KEY_MAX];
    MDB_val key = {lookup_key(kbuf, name, value, value_len), kbuf};
    if (key.mv_size == 0 || memchr(name, ',', strlen(name)))
        return nba_error_set(err, -EINVAL, "not a lookup key (name '%s', %zu bytes of value)", name,
                             value_len);
    if (id_len == 0 || id_len > STORE_MAX_ID)
        return nba_error_set(err, -EINVAL, "a lookup key's customer_id of %zu bytes", id_len);
    int rc = keys_cursor(t);
    if (rc)
        return txn_fail(t, rc, "cannot open the keys table", err);
    MDB_val data = {id_len, (void *)customer_id};
    if (flags & STORE_PUT_APPEND) {
        rc = mdb_cursor_put(t->keys_cur, &key, &data, MDB_APPEND);
        if (rc == MDB_KEYEXIST)
            return nba_error_set(err, -EINVAL,
                                 "%s: an appended lookup key does not sort after the last one",
                                 t->st->dir);
    } else {
        /* On MDB_KEYEXIST LMDB returns the stored value in `data`. */
        rc = mdb_cursor_put(t->keys_cur, &key, &data, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            if (data.mv_size == id_len && memcmp(data.mv_data, customer_id, id_len) == 0)
                return 0;
            if (holder) {
                size_t n = data.mv_size > STORE_MAX_ID ? STORE_MAX_ID : data.mv_size;
                memcpy(holder, data.mv_data, n);
                holder[n] = '\0';
            }
            return nba_error_set(err, -EEXIST, "%s: lookup key %s '%.*s' is another customer's",
                                 t->st->dir, name, (int)value_len, (const char *)value);
        }
    }
    if (rc)
        return txn_fail(t, rc, "cannot store a lookup key", err);
    return 0;
}

int store_txn_delete_key(store_txn *t, const char *name, const void *value, size_t value_len,
                         const void *customer_id, size_t id_len, nba_error *err)
{
    uint8_t kbuf[LOOKUP_KEY_MAX];
    MDB_val key = {lookup_key(kbuf, name, value, value_len), kbuf}, data;
    if (key.mv_size == 0 || !t->st->has_keys)
        return -ENOENT;
    int rc = mdb_get(t->txn, t->st->keys, &key, &data);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc)
        return txn_fail(t, rc, "cannot read a lookup key", err);
    if (data.mv_size != id_len || memcmp(data.mv_data, customer_id, id_len) != 0)
        return -ENOENT;
    rc = mdb_del(t->txn, t->st->keys, &key, NULL);
    if (rc)
        return txn_fail(t, rc, "cannot delete a lookup key", err);
    return 0;
}

int store_txn_has_customer(store_txn *t, const char *customer_id)
{
    MDB_val key = {strlen(customer_id), (void *)customer_id}, val;
    if (key.mv_size == 0 || key.mv_size > STORE_MAX_ID)
        return 0;
    /* Through the cursor: an incident put next, under this customer, then
     * lands on the page the cursor is on. */
    int rc = mdb_cursor_get(t->cur, &key, &val, MDB_SET);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc ? lmdb_error(rc) : 1;
}

int store_txn_put_meta(store_txn *t, const char *key, const char *value, nba_error *err)
{
    if (strcmp(key, META_FORMAT) == 0 || strcmp(key, META_CUSTOMERS) == 0 ||
        strcmp(key, META_INCIDENTS) == 0)
        return nba_error_set(err, -EINVAL, "meta entry '%s' is the store's own", key);
    int rc = meta_put(t->txn, t->st->meta, key, value);
    if (rc)
        return txn_fail(t, rc, "cannot store meta entry", err);
    return 0;
}

int store_txn_delete_meta(store_txn *t, const char *key, nba_error *err)
{
    if (strcmp(key, META_FORMAT) == 0 || strcmp(key, META_CUSTOMERS) == 0 ||
        strcmp(key, META_INCIDENTS) == 0)
        return nba_error_set(err, -EINVAL, "meta entry '%s' is the store's own", key);
    MDB_val k = {strlen(key), (void *)key};
    int rc = mdb_del(t->txn, t->st->meta, &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return txn_fail(t, rc, "cannot delete meta entry", err);
    return 0;
}

int store_txn_commit(store_txn *t, nba_error *err)
{
    int rc = meta_put_count(t->txn, t->st->meta, META_CUSTOMERS, t->customers);
    if (!rc)
        rc = meta_put_count(t->txn, t->st->meta, META_INCIDENTS, t->incidents);
    int code;
    if (rc) {
        code = txn_fail(t, rc, "commit failed", err);
        mdb_txn_abort(t->txn);
    } else {
        /* The cursors go with their transactions. */
        rc = mdb_txn_commit(t->txn);
        code = rc ? txn_fail(t, rc, "commit failed", err) : 0;
    }
    free(t->buf);
    free(t);
    return code;
}

void store_txn_abort(store_txn *t)
{
    if (!t)
        return;
    mdb_txn_abort(t->txn);
    free(t->buf);
    free(t);
}

int store_sync(store *st, nba_error *err)
{
    int rc = mdb_env_sync(st->env, 1);
    if (rc)
        return nba_error_set(err, lmdb_error(rc), "%s: cannot write the database to disk: %s",
                             st->dir, mdb_strerror(rc));
    return 0;
}

size_t store_map_size(store *st)
{
    MDB_envinfo info;
    if (mdb_env_info(st->env, &info))
        return 0;
    return info.me_mapsize;
}

size_t store_used_size(store *st)
{
    MDB_envinfo info;
    MDB_stat stat;
    if (mdb_env_info(st->env, &info) || mdb_env_stat(st->env, &stat))
        return 0;
    return (info.me_last_pgno + 1) * (size_t)stat.ms_psize;
}

bool store_map_full(const store *st)
{
    return st->map_full;
}

int store_grow_map(store *st, size_t size, nba_error *err)
{
    if (size <= store_map_size(st))
        return 0;
    /* LMDB maps the new size at once; the file grows only as it is
     * written. */
    int rc = mdb_env_set_mapsize(st->env, size);
    if (rc)
        return nba_error_set(err, lmdb_error(rc), "%s: cannot grow the map to %zu MiB: %s", st->dir,
                             size >> 20, mdb_strerror(rc));
    st->map_full = false;
    return 0;
}

int store_get_meta(store *st, const char *key, char *buf, size_t size)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return lmdb_error(rc);
    rc = meta_get(txn, st->meta, key, buf, size);
    mdb_txn_abort(txn);
    return rc;
}

const char *store_dir(const store *st)
{
    return st->dir;
}

int store_env_in_use(const char *dir, long *pid)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/lock.mdb", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    /* Every process that opens an environment holds a shared lock on the
     * first byte of its lock file for as long as it has it open (LMDB's own
     * test of whether it is the first user). A write lock that would
     * conflict names one of them. */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    int rc = fcntl(fd, F_GETLK, &fl) == 0 ? 0 : -errno;
    close(fd);
    if (rc)
        return rc;
    if (fl.l_type == F_UNLCK)
        return 0;
    if (pid)
        *pid = (long)fl.l_pid;
    return 1;
}

/* ---- residency ---- */

/* An address inside this environment's map: where a record read in a
 * snapshot lies (read-only transactions point into the map). NULL when the
 * database holds nothing. */
static const void *address_in_map(store *st)
{
    const void *inside = NULL;
    MDB_txn *txn;
    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))
        return NULL;
    MDB_dbi dbis[] = {st->meta, st->records};
    for (size_t i = 0; i < sizeof dbis / sizeof dbis[0] && !inside; i++) {
        MDB_cursor *cur;
        MDB_val k, v;
        if (mdb_cursor_open(txn, dbis[i], &cur))
            continue;
        if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0)
            inside = v.mv_data;
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return inside;
}

/* LMDB does not say where it mapped the file (mdb_env_info reports an
 * address only for MDB_FIXEDMAP), so look in /proc/self/maps for the
 * mapping of the data file's inode at file offset 0; the one holding
 * `inside` when it is known, since the process may map the file twice. */
static int find_map(int fd, const void *inside, const uint8_t **addr, size_t *len)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return -errno;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -ENOENT;
    char line[4096];
    int rc = -ENOENT;
    while (rc && fgets(line, sizeof line, f)) {
        uintptr_t start, end;
        unsigned long long off, ino;
        unsigned maj, mnr;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %llx %x:%x %llu", &start, &end, &off, &maj,
                   &mnr, &ino) == 6 &&
            off == 0 && ino == (unsigned long long)sb.st_ino && maj == major(sb.st_dev) &&
            mnr == minor(sb.st_dev) &&
            (!inside || ((uintptr_t)inside >= start && (uintptr_t)inside < end))) {
            *addr = (const uint8_t *)start;
            *len = end - start;
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

int store_map_info(store *st, store_map *out)
{
    mdb_filehandle_t fd;
    int rc = mdb_env_get_fd(st->env, &fd);
    if (rc)
        return lmdb_error(rc);
    const uint8_t *addr = atomic_load(&st->map_addr);
    size_t len = atomic_load(&st->map_len);
    if (!addr) {
        rc = find_map(fd, address_in_map(st), &addr, &len);
        if (rc)
            return rc;
        atomic_store(&st->map_len, len);
        atomic_store(&st->map_addr, addr);
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return -errno;
    long page = sysconf(_SC_PAGESIZE);
    out->addr = addr;
    out->size = (size_t)sb.st_size < len ? (size_t)sb.st_size : len;
    out->page_size = page > 0 ? (size_t)page : 4096;
    return 0;
}

long store_warm(store *st, size_t offset, size_t len)
{
    store_map m;
    int rc = store_map_info(st, &m);
    if (rc)
        return rc;
    if (offset >= m.size)
        return 0;
    if (len > m.size - offset)
        len = m.size - offset;
    size_t start = offset & ~(m.page_size - 1), end = offset + len;
    void *p = (void *)(m.addr + start);
    /* Start the disk reads for the whole range at once, then wait for them
     * while mapping every page (kernels before 5.14 lack MADV_POPULATE_READ:
     * the loop below faults the pages in one by one instead). */
    (void)madvise(p, end - start, MADV_WILLNEED);
    if (madvise(p, end - start, MADV_POPULATE_READ) != 0 && errno != EINVAL)
        return -errno;
    /* One read per page through the map: the MMU marks each page accessed,
     * which is what reclaim (LRU aging, DAMON) looks at. With the pages
     * mapped this is a pass over memory, a few ms for 400 MiB. */
    const volatile uint8_t *bytes = m.addr;
    uint8_t sum = 0;
    for (size_t i = start; i < end; i += m.page_size)
        sum ^= bytes[i];
    (void)sum;
    return (long)len;
}

int store_lock(store *st)
{
    store_map m;
    int rc = store_map_info(st, &m);
    if (rc)
        return rc;
    if (m.size && mlock(m.addr, m.size) != 0)
        return -errno;
    return 0;
}

int store_get_stats(store *st, store_stats *out)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return lmdb_error(rc);
    rc = meta_get_count(txn, st->meta, META_CUSTOMERS, &out->customers);
    if (!rc)
        rc = meta_get_count(txn, st->meta, META_INCIDENTS, &out->incidents);
    mdb_txn_abort(txn);
    return rc;
}

int store_check_readers(store *st, int *cleared)
{
    int dead = 0;
    int rc = mdb_reader_check(st->env, &dead);
    if (rc)
        return lmdb_error(rc);
    if (cleared)
        *cleared = dead;
    return 0;
}
