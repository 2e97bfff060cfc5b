/* state.c - see include/state.h. */
#include "state.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lmdb_errno.h"
#include "record.h"
#include "store.h"

#define STATE_DEFAULT_MAP_SIZE ((size_t)64 << 30)
/* Every worker, the writer and the tools: MAX_WORKERS (256) and room. */
#define STATE_MAX_READERS 512

/* The kinds of record under a customer, as the byte after the NUL. */
#define KIND_HISTORY  'H'
#define KIND_INCIDENT 'I'
#define KIND_DECISION 'K'
#define KIND_RECOVERY 'R'

#define META_SEQ "seq"

/* customer_id, NUL, kind, up to STATE_MAX_KEY more bytes. */
#define KEY_CAP (STORE_MAX_ID + 2 + STATE_MAX_KEY + 16)

struct state {
    MDB_env *env;
    MDB_dbi customer;
    MDB_dbi outbox;
    MDB_dbi meta;
    char *dir;
};

struct state_reader {
    state *st;
    MDB_txn *txn;         /* own read transaction, held between snapshots */
    MDB_cursor *cur;      /* on customer, renewed with txn */
    MDB_cursor *attached; /* on a writer's transaction while attached */
    bool held;            /* txn is a live snapshot (renewed, not reset) */
    bool empty;           /* the held snapshot has no customer records */
    size_t decisions;     /* stored decisions the last state_get_customer() saw */
};

struct state_txn {
    state *st;
    MDB_txn *top;
    MDB_txn *savepoint; /* NULL outside a savepoint */
    uint64_t seq;       /* the last number handed out */
    bool seq_loaded;
    uint8_t *buf; /* packing buffer, reused */
    size_t cap;
};

static MDB_txn *txn_of(state_txn *t)
{
    return t->savepoint ? t->savepoint : t->top;
}

/* ---- keys ---- */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Checks an id as a key part: non-empty, short enough, no NUL inside (the
 * NUL ends the customer id in every key). */
static int check_id(const char *what, const char *id, nba_error *err)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0)
        return nba_error_set(err, -EINVAL, "%s is empty", what);
    if (len > STORE_MAX_ID)
        return nba_error_set(err, -EINVAL, "%s is longer than %d bytes", what, (int)STORE_MAX_ID);
    return 0;
}

/* Builds customer_id NUL kind rest[0..rest_len) into buf (KEY_CAP bytes).
 * Returns the key's length, or 0 when it does not fit. */
static size_t make_key(uint8_t *buf, const char *customer_id, char kind, const void *rest,
                       size_t rest_len)
{
    size_t cid = strlen(customer_id);
    if (cid + 2 + rest_len > KEY_CAP)
        return 0;
    memcpy(buf, customer_id, cid);
    buf[cid] = '\0';
    buf[cid + 1] = (uint8_t)kind;
    if (rest_len)
        memcpy(buf + cid + 2, rest, rest_len);
    return cid + 2 + rest_len;
}

/* ---- opening ---- */

int state_open(const char *dir, size_t map_size, state **out, nba_error *err)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return nba_error_set(err, -errno, "%s: cannot create the state directory: %s", dir,
                             strerror(errno));
    state *st = calloc(1, sizeof *st);
    if (!st || !(st->dir = strdup(dir))) {
        free(st);
        return nba_error_set(err, -ENOMEM, "out of memory");
    }
    int rc = mdb_env_create(&st->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(st->env, 4);
    if (rc == 0)
        rc = mdb_env_set_maxreaders(st->env, STATE_MAX_READERS);
    if (rc == 0)
        rc = mdb_env_set_mapsize(st->env, map_size ? map_size : STATE_DEFAULT_MAP_SIZE);
    /* MDB_NOTLS: a reader's slot belongs to its transaction object, which
     * is renewed per request on the worker that owns it. */
    if (rc == 0)
        rc = mdb_env_open(st->env, dir, MDB_NOTLS, 0640);
    if (rc) {
        int e = lmdb_errno(rc);
        nba_error_set(err, e, "%s: cannot open the state database: %s", dir, mdb_strerror(rc));
        state_close(st);
        return e;
    }
    /* Reader slots left by a process that died (a crash, SIGKILL) would
     * keep old pages from being reused: cleared before anyone reads. */
    int stale = 0;
    mdb_reader_check(st->env, &stale);
    MDB_txn *txn;
    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "customer", MDB_CREATE, &st->customer);
        if (rc == 0)
            rc = mdb_dbi_open(txn, "outbox", MDB_CREATE, &st->outbox);
        if (rc == 0)
            rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    if (rc) {
        int e = lmdb_errno(rc);
        nba_error_set(err, e, "%s: cannot open the state database's tables: %s", dir,
                      mdb_strerror(rc));
        state_close(st);
        return e;
    }
    *out = st;
    return 0;
}

void state_close(state *st)
{
    if (!st)
        return;
    if (st->env)
        mdb_env_close(st->env);
    free(st->dir);
    free(st);
}

/* ---- reading ---- */

int state_reader_new(state *st, state_reader **out, nba_error *err)
{
    state_reader *r = calloc(1, sizeof *r);
    if (!r)
        return nba_error_set(err, -ENOMEM, "out of memory");
    r->st = st;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &r->txn);
    if (rc == 0)
        rc = mdb_cursor_open(r->txn, st->customer, &r->cur);
    if (rc) {
        int e = lmdb_errno(rc);
        if (r->txn)
            mdb_txn_abort(r->txn);
        free(r);
        return nba_error_set(err, e, "%s: cannot start a state reader: %s", st->dir,
                             mdb_strerror(rc));
    }
    mdb_txn_reset(r->txn);
    *out = r;
    return 0;
}

void state_reader_free(state_reader *r)
{
    if (!r)
        return;
    state_reader_end(r);
    state_reader_release(r);
    mdb_cursor_close(r->cur);
    mdb_txn_abort(r->txn);
    free(r);
}

/* A snapshot whose transaction is still the last one committed is the one
 * a renewal would give: kept, it spares the renewal and the cursor's (which
 * looks the table up again in the main tree), about 700 instructions a
 * decision, while the state changes a few dozen times a second under load.
 * The meta page's txnid is read without a lock: LMDB writes it before it
 * lets new readers see the commit, so no commit is missed; at worst the
 * reader renews once more than it needed to. */
int state_reader_begin(state_reader *r)
{
    if (r->held) {
        MDB_envinfo info;
        if (mdb_env_info(r->st->env, &info) == 0 && info.me_last_txnid == mdb_txn_id(r->txn))
            return 0;
        state_reader_release(r);
    }
    int rc = mdb_txn_renew(r->txn);
    if (rc == 0)
        rc = mdb_cursor_renew(r->txn, r->cur);
    MDB_stat ms;
    if (rc == 0)
        rc = mdb_stat(r->txn, r->st->customer, &ms);
    if (rc) {
        mdb_txn_reset(r->txn);
        return lmdb_errno(rc);
    }
    r->held = true;
    r->empty = ms.ms_entries == 0;
    return 0;
}

int state_reader_attach(state_reader *r, state_txn *t)
{
    int rc = mdb_cursor_open(txn_of(t), r->st->customer, &r->attached);
    return lmdb_errno(rc);
}

void state_reader_end(state_reader *r)
{
    if (r->attached) {
        mdb_cursor_close(r->attached);
        r->attached = NULL;
    }
}

void state_reader_release(state_reader *r)
{
    if (r->held) {
        mdb_txn_reset(r->txn);
        r->held = false;
        r->empty = false;
    }
}

size_t state_reader_decisions(const state_reader *r)
{
    return r->decisions;
}

/* A growing array of pointers in an arena: doubling, the old copy left in
 * the arena until its reset (a customer's state is a handful of records). */
static int push(arena *a, void ***arr, size_t *n, size_t *cap, void *item)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        void **grown = arena_alloc(a, ncap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        if (*n)
            memcpy(grown, *arr, *n * sizeof *grown);
        *arr = grown;
        *cap = ncap;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

static int unpack_history(const MDB_val *v, arena *a, Nba__V1__HistoryEntry **out)
{
    return record_decode_history(v->mv_data, v->mv_size, a, out);
}

/* A stored decision's value (decided at, 8 bytes big-endian, then the
 * packed Decision) copied into the arena; one too short to hold the time is
 * left out, as if none were stored. */
static int take_decision(const MDB_val *v, arena *a, const uint8_t **decision, size_t *len,
                         int64_t *at_ms)
{
    if (v->mv_size < 8)
        return 0;
    size_t n = v->mv_size - 8;
    uint8_t *copy = arena_alloc(a, n ? n : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, (const uint8_t *)v->mv_data + 8, n);
    *decision = copy;
    *len = n;
    *at_ms = (int64_t)get_be64(v->mv_data);
    return 0;
}

int state_get_customer(state_reader *r, const char *customer_id, const char *key, size_t key_len,
                       arena *a, state_customer *out)
{
    memset(out, 0, sizeof *out);
    r->decisions = 0;
    /* Until nbad first records something, no customer has state. */
    if (!r->attached && r->empty)
        return 0;
    MDB_cursor *cur = r->attached ? r->attached : r->cur;
    size_t cid = strlen(customer_id);
    if (cid == 0 || cid > STORE_MAX_ID)
        return 0;
    uint8_t prefix[KEY_CAP];
    memcpy(prefix, customer_id, cid);
    prefix[cid] = '\0';
    MDB_val k = {cid + 1, prefix}, v;
    size_t cap_inc = 0, cap_rec = 0, cap_hist = 0;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kb = k.mv_data;
        if (k.mv_size < cid + 2 || memcmp(kb, prefix, cid + 1) != 0)
            break;
        const uint8_t *rest = kb + cid + 2;
        size_t rest_len = k.mv_size - cid - 2;
        int e = 0;
        switch (kb[cid + 1]) {
        case KIND_HISTORY: {
            Nba__V1__HistoryEntry *h;
            e = unpack_history(&v, a, &h);
            if (e == 0)
                e = push(a, (void ***)&out->history, &out->n_history, &cap_hist, h);
            break;
        }
        case KIND_INCIDENT: {
            Nba__V1__Incident *inc;
            e = record_decode_incident(v.mv_data, v.mv_size, a, &inc);
            if (e == 0)
                e = push(a, (void ***)&out->incidents, &out->n_incidents, &cap_inc, inc);
            break;
        }
        case KIND_DECISION:
            r->decisions++;
            if (key_len && rest_len == key_len && memcmp(rest, key, key_len) == 0)
                e = take_decision(&v, a, &out->decision, &out->decision_len, &out->decision_at_ms);
            break;
        case KIND_RECOVERY: {
            Nba__V1__HistoryEntry *h;
            e = unpack_history(&v, a, &h);
            if (e == 0)
                e = push(a, (void ***)&out->recoveries, &out->n_recoveries, &cap_rec, h);
            break;
        }
        default:
            break; /* a kind a later nbad writes */
        }
        if (e)
            return e;
    }
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : lmdb_errno(rc);
}

int state_get_decision(state_reader *r, const char *customer_id, const char *key, size_t key_len,
                       arena *a, const uint8_t **decision, size_t *len, int64_t *at_ms)
{
    *decision = NULL;
    *len = 0;
    *at_ms = 0;
    size_t cid = strlen(customer_id);
    if (key_len == 0 || cid == 0 || cid > STORE_MAX_ID)
        return 0;
    uint8_t buf[KEY_CAP];
    size_t klen = make_key(buf, customer_id, KIND_DECISION, key, key_len);
    if (klen == 0)
        return 0; /* longer than any key stored */
    MDB_val k = {klen, buf}, v;
    int rc = mdb_cursor_get(r->attached ? r->attached : r->cur, &k, &v, MDB_SET);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return lmdb_errno(rc);
    return take_decision(&v, a, decision, len, at_ms);
}

/* ---- writing ---- */

int state_txn_begin(state *st, state_txn **out, nba_error *err)
{
    state_txn *t = calloc(1, sizeof *t);
    if (!t)
        return nba_error_set(err, -ENOMEM, "out of memory");
    t->st = st;
    int rc = mdb_txn_begin(st->env, NULL, 0, &t->top);
    if (rc) {
        free(t);
        return nba_error_set(err, lmdb_errno(rc), "%s: cannot begin a write: %s", st->dir,
                             mdb_strerror(rc));
    }
    *out = t;
    return 0;
}

int state_txn_savepoint(state_txn *t)
{
    if (t->savepoint)
        return -EBUSY;
    return lmdb_errno(mdb_txn_begin(t->st->env, t->top, 0, &t->savepoint));
}

int state_txn_release(state_txn *t)
{
    if (!t->savepoint)
        return 0;
    int rc = mdb_txn_commit(t->savepoint);
    t->savepoint = NULL;
    return lmdb_errno(rc);
}

void state_txn_rollback(state_txn *t)
{
    if (!t->savepoint)
        return;
    mdb_txn_abort(t->savepoint);
    t->savepoint = NULL;
}

/* Packs msg into the transaction's buffer. */
static int pack(state_txn *t, const ProtobufCMessage *msg, MDB_val *val)
{
    size_t need = protobuf_c_message_get_packed_size(msg);
    if (need > t->cap) {
        size_t cap = need < 1024 ? 1024 : need * 2;
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

static int put(state_txn *t, MDB_dbi dbi, const uint8_t *key, size_t key_len, MDB_val *val,
               nba_error *err)
{
    MDB_val k = {key_len, (void *)key};
    int rc = mdb_put(txn_of(t), dbi, &k, val, 0);
    if (rc == 0)
        return 0;
    return nba_error_set(err, lmdb_errno(rc), "%s: cannot write: %s", t->st->dir, mdb_strerror(rc));
}

/* The next number for a history or outbox key: one counter for both, kept
 * in meta and written back with each use (the write stays in the page the
 * transaction already dirtied). */
static int next_seq(state_txn *t, uint64_t *out)
{
    MDB_txn *txn = txn_of(t);
    MDB_val k = {strlen(META_SEQ), (void *)META_SEQ}, v;
    uint64_t seq = 0;
    int rc = mdb_get(txn, t->st->meta, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        seq = get_be64(v.mv_data);
    else if (rc != MDB_NOTFOUND && rc != 0)
        return lmdb_errno(rc);
    seq++;
    uint8_t buf[8];
    put_be64(buf, seq);
    v.mv_size = 8;
    v.mv_data = buf;
    rc = mdb_put(txn, t->st->meta, &k, &v, 0);
    if (rc)
        return lmdb_errno(rc);
    *out = seq;
    return 0;
}

int state_txn_get_incident(state_txn *t, const char *customer_id, const char *incident_id, arena *a,
                           Nba__V1__Incident **out)
{
    uint8_t key[KEY_CAP];
    size_t len = make_key(key, customer_id, KIND_INCIDENT, incident_id, strlen(incident_id));
    if (len == 0)
        return -ENOENT;
    MDB_val k = {len, key}, v;
    int rc = mdb_get(txn_of(t), t->st->customer, &k, &v);
    if (rc)
        return lmdb_errno(rc);
    return record_decode_incident(v.mv_data, v.mv_size, a, out);
}

int state_txn_put_incident(state_txn *t, const Nba__V1__Incident *inc, bool *created,
                           nba_error *err)
{
    int rc = check_id("customer_id", inc->customer_id, err);
    if (rc == 0)
        rc = check_id("incident_id", inc->incident_id, err);
    if (rc)
        return rc;
    uint8_t key[KEY_CAP];
    size_t len =
        make_key(key, inc->customer_id, KIND_INCIDENT, inc->incident_id, strlen(inc->incident_id));
    if (created) {
        MDB_val k = {len, key}, v;
        int found = mdb_get(txn_of(t), t->st->customer, &k, &v);
        *created = found == MDB_NOTFOUND;
    }
    MDB_val val;
    rc = pack(t, &inc->base, &val);
    if (rc)
        return nba_error_set(err, rc, "out of memory");
    return put(t, t->st->customer, key, len, &val, err);
}

int state_txn_add_history(state_txn *t, const Nba__V1__HistoryEntry *e, bool recovers,
                          nba_error *err)
{
    int rc = check_id("customer_id", e->customer_id, err);
    if (rc)
        return rc;
    uint64_t seq;
    rc = next_seq(t, &seq);
    if (rc)
        return nba_error_set(err, rc, "%s: cannot number a history entry", t->st->dir);
    uint8_t order[16];
    put_be64(order, (uint64_t)e->at_ms);
    put_be64(order + 8, seq);
    uint8_t key[KEY_CAP];
    size_t len = make_key(key, e->customer_id, KIND_HISTORY, order, sizeof order);
    MDB_val val;
    rc = pack(t, &e->base, &val);
    if (rc)
        return nba_error_set(err, rc, "out of memory");
    rc = put(t, t->st->customer, key, len, &val, err);
    if (rc || !recovers || !e->incident_id || !e->incident_id[0])
        return rc;
    len = make_key(key, e->customer_id, KIND_RECOVERY, e->incident_id, strlen(e->incident_id));
    if (len == 0)
        return nba_error_set(err, -EINVAL, "incident_id is too long");
    MDB_val k = {len, key}, old;
    /* The first recovery of an incident is the one that counts. */
    if (mdb_get(txn_of(t), t->st->customer, &k, &old) == 0)
        return 0;
    return put(t, t->st->customer, key, len, &val, err);
}

int state_txn_put_decision(state_txn *t, const char *customer_id, const char *key, size_t key_len,
                           int64_t at_ms, const uint8_t *decision, size_t len, nba_error *err)
{
    int rc = check_id("customer_id", customer_id, err);
    if (rc)
        return rc;
    if (key_len == 0 || key_len > STATE_MAX_KEY)
        return nba_error_set(err, -EINVAL, "an idempotency key of %zu bytes", key_len);
    uint8_t k[KEY_CAP];
    size_t klen = make_key(k, customer_id, KIND_DECISION, key, key_len);
    if (8 + len > t->cap) {
        size_t cap = 8 + len < 1024 ? 1024 : (8 + len) * 2;
        uint8_t *buf = realloc(t->buf, cap);
        if (!buf)
            return nba_error_set(err, -ENOMEM, "out of memory");
        t->buf = buf;
        t->cap = cap;
    }
    put_be64(t->buf, (uint64_t)at_ms);
    if (len)
        memcpy(t->buf + 8, decision, len);
    MDB_val val = {8 + len, t->buf};
    return put(t, t->st->customer, k, klen, &val, err);
}

int state_txn_add_outbox(state_txn *t, Nba__V1__OutboxEntry *e, nba_error *err)
{
    uint64_t id;
    int rc = next_seq(t, &id);
    if (rc)
        return nba_error_set(err, rc, "%s: cannot number an outbox entry", t->st->dir);
    e->id = id;
    uint8_t key[8];
    put_be64(key, id);
    MDB_val val;
    rc = pack(t, &e->base, &val);
    if (rc)
        return nba_error_set(err, rc, "out of memory");
    return put(t, t->st->outbox, key, sizeof key, &val, err);
}

/* ---- expiry ---- */

/* Whether the record key k / value v has expired by x. */
static bool expired(const MDB_val *k, const MDB_val *v, const state_expiry *x)
{
    const uint8_t *kb = k->mv_data;
    const uint8_t *nul = memchr(kb, '\0', k->mv_size);
    if (!nul || (size_t)(nul - kb) + 2 > k->mv_size)
        return false; /* not a key this file writes */
    const uint8_t *rest = nul + 2;
    size_t rest_len = k->mv_size - (size_t)(rest - kb);
    switch (nul[1]) {
    case KIND_DECISION:
        return v->mv_size >= 8 && (int64_t)get_be64(v->mv_data) < x->decisions_before_ms;
    case KIND_HISTORY:
        return x->history_before_ms != 0 && rest_len == 16 &&
               (int64_t)get_be64(rest) < x->history_before_ms;
    default:
        return false;
    }
}

/* Walks the customer table from key `from` (len 0: the start), removing
 * what has expired, while the key starts with prefix[0..prefix_len) (0:
 * any), at most limit records (0: no bound). *next gets the key where the
 * walk stopped (length 0 at the end). */
static int expire_walk(state_txn *t, const state_expiry *x, const uint8_t *from, size_t from_len,
                       const uint8_t *prefix, size_t prefix_len, size_t limit, state_sweep *next,
                       size_t *removed)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn_of(t), t->st->customer, &cur);
    if (rc)
        return lmdb_errno(rc);
    MDB_val k = {from_len, (void *)from}, v;
    rc = from_len ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                  : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    size_t seen = 0, gone = 0;
    while (rc == 0) {
        if (prefix_len && (k.mv_size < prefix_len || memcmp(k.mv_data, prefix, prefix_len) != 0))
            break;
        if (limit && seen == limit) {
            if (next && k.mv_size <= sizeof next->key) {
                memcpy(next->key, k.mv_data, k.mv_size);
                next->len = k.mv_size;
            }
            break;
        }
        seen++;
        if (expired(&k, &v, x)) {
            rc = mdb_cursor_del(cur, 0);
            if (rc)
                break;
            gone++;
            /* the cursor is on the record after the one removed */
            rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
            continue;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (removed)
        *removed = gone;
    if (rc == MDB_NOTFOUND || rc == 0) {
        if (next && rc == MDB_NOTFOUND)
            next->len = 0;
        return 0;
    }
    return lmdb_errno(rc);
}

int state_txn_expire_customer(state_txn *t, const char *customer_id, const state_expiry *x,
                              size_t *removed)
{
    size_t cid = customer_id ? strlen(customer_id) : 0;
    if (removed)
        *removed = 0;
    if (cid == 0 || cid > STORE_MAX_ID)
        return 0;
    uint8_t prefix[STORE_MAX_ID + 2];
    memcpy(prefix, customer_id, cid);
    prefix[cid] = '\0';
    return expire_walk(t, x, prefix, cid + 1, prefix, cid + 1, 0, NULL, removed);
}

int state_txn_expire_sweep(state_txn *t, const state_expiry *x, state_sweep *sweep, size_t limit,
                           size_t *removed)
{
    uint8_t from[sizeof sweep->key];
    size_t from_len = sweep->len;
    memcpy(from, sweep->key, from_len);
    sweep->len = 0;
    int rc = expire_walk(t, x, from, from_len, NULL, 0, limit, sweep, removed);
    sweep->wrapped = rc == 0 && sweep->len == 0;
    return rc;
}

static void txn_free(state_txn *t)
{
    free(t->buf);
    free(t);
}

int state_txn_commit(state_txn *t, nba_error *err)
{
    if (t->savepoint)
        state_txn_rollback(t);
    int rc = mdb_txn_commit(t->top);
    state *st = t->st;
    txn_free(t);
    if (rc)
        return nba_error_set(err, lmdb_errno(rc), "%s: cannot commit: %s", st->dir,
                             mdb_strerror(rc));
    return 0;
}

void state_txn_abort(state_txn *t)
{
    if (!t)
        return;
    if (t->savepoint)
        mdb_txn_abort(t->savepoint);
    mdb_txn_abort(t->top);
    txn_free(t);
}

/* ---- the outbox and the history, for tools ---- */

/* Runs a read-only walk in its own snapshot. */
typedef int (*walk_fn)(state *st, MDB_txn *txn, void *arg);

static int with_snapshot(state *st, walk_fn fn, void *arg, nba_error *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return nba_error_set(err, lmdb_errno(rc), "%s: cannot read: %s", st->dir, mdb_strerror(rc));
    rc = fn(st, txn, arg);
    mdb_txn_abort(txn);
    if (rc < 0)
        nba_error_set(err, rc, "%s: cannot read: %s", st->dir, strerror(-rc));
    return rc;
}

struct outbox_walk {
    state_outbox_fn fn;
    void *arg;
};

static int walk_outbox(state *st, MDB_txn *txn, void *arg)
{
    struct outbox_walk *w = arg;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->outbox, &cur);
    if (rc)
        return lmdb_errno(rc);
    MDB_val k, v;
    int result = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && result == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Nba__V1__OutboxEntry *e = nba__v1__outbox_entry__unpack(NULL, v.mv_size, v.mv_data);
        if (!e) {
            result = -EBADMSG;
            break;
        }
        result = w->fn(w->arg, e);
        nba__v1__outbox_entry__free_unpacked(e, NULL);
    }
    mdb_cursor_close(cur);
    if (result)
        return result;
    return rc == MDB_NOTFOUND ? 0 : lmdb_errno(rc);
}

int state_outbox_list(state *st, state_outbox_fn fn, void *arg, nba_error *err)
{
    struct outbox_walk w = {fn, arg};
    return with_snapshot(st, walk_outbox, &w, err);
}

int state_outbox_mark_exported(state *st, const uint64_t *ids, size_t n, nba_error *err)
{
    state_txn *t;
    int rc = state_txn_begin(st, &t, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t key[8];
        put_be64(key, ids[i]);
        MDB_val k = {8, key}, v;
        int got = mdb_get(t->top, st->outbox, &k, &v);
        if (got == MDB_NOTFOUND)
            continue;
        if (got) {
            rc = nba_error_set(err, lmdb_errno(got), "%s: cannot read the outbox: %s", st->dir,
                               mdb_strerror(got));
            break;
        }
        Nba__V1__OutboxEntry *e = nba__v1__outbox_entry__unpack(NULL, v.mv_size, v.mv_data);
        if (!e) {
            rc = nba_error_set(err, -EBADMSG, "%s: outbox entry %llu does not decode", st->dir,
                               (unsigned long long)ids[i]);
            break;
        }
        e->exports++;
        MDB_val val;
        rc = pack(t, &e->base, &val);
        nba__v1__outbox_entry__free_unpacked(e, NULL);
        if (rc == 0)
            rc = put(t, st->outbox, key, 8, &val, err);
        else
            nba_error_set(err, rc, "out of memory");
    }
    if (rc) {
        state_txn_abort(t);
        return rc;
    }
    return state_txn_commit(t, err);
}

int state_outbox_ack(state *st, const uint64_t *ids, size_t n, size_t *acked, nba_error *err)
{
    state_txn *t;
    int rc = state_txn_begin(st, &t, err);
    if (rc)
        return rc;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t key[8];
        put_be64(key, ids[i]);
        MDB_val k = {8, key};
        int del = mdb_del(t->top, st->outbox, &k, NULL);
        if (del == 0) {
            count++;
        } else if (del != MDB_NOTFOUND) {
            rc = nba_error_set(err, lmdb_errno(del), "%s: cannot acknowledge %llu: %s", st->dir,
                               (unsigned long long)ids[i], mdb_strerror(del));
            state_txn_abort(t);
            return rc;
        }
    }
    rc = state_txn_commit(t, err);
    if (rc == 0 && acked)
        *acked = count;
    return rc;
}

struct history_walk {
    const char *customer_id;
    state_history_fn fn;
    void *arg;
};

static int walk_history(state *st, MDB_txn *txn, void *arg)
{
    struct history_walk *w = arg;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->customer, &cur);
    if (rc)
        return lmdb_errno(rc);
    uint8_t prefix[KEY_CAP];
    size_t plen = 0;
    MDB_val k, v;
    if (w->customer_id) {
        plen = strlen(w->customer_id);
        if (plen > STORE_MAX_ID) {
            mdb_cursor_close(cur);
            return 0;
        }
        memcpy(prefix, w->customer_id, plen);
        prefix[plen++] = '\0';
        k.mv_size = plen;
        k.mv_data = prefix;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    int result = 0;
    for (; rc == 0 && result == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kb = k.mv_data;
        if (plen && (k.mv_size < plen || memcmp(kb, prefix, plen) != 0))
            break;
        const uint8_t *nul = memchr(kb, '\0', k.mv_size);
        if (!nul || (size_t)(nul - kb) + 1 >= k.mv_size || nul[1] != KIND_HISTORY)
            continue;
        Nba__V1__HistoryEntry *e = nba__v1__history_entry__unpack(NULL, v.mv_size, v.mv_data);
        if (!e) {
            result = -EBADMSG;
            break;
        }
        result = w->fn(w->arg, e);
        nba__v1__history_entry__free_unpacked(e, NULL);
    }
    mdb_cursor_close(cur);
    if (result)
        return result;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : lmdb_errno(rc);
}

int state_history_list(state *st, const char *customer_id, state_history_fn fn, void *arg,
                       nba_error *err)
{
    struct history_walk w = {customer_id, fn, arg};
    return with_snapshot(st, walk_history, &w, err);
}

static int count_records(state *st, MDB_txn *txn, void *arg)
{
    state_stats *s = arg;
    MDB_stat ms;
    int rc = mdb_stat(txn, st->outbox, &ms);
    if (rc)
        return lmdb_errno(rc);
    s->outbox = ms.ms_entries;
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, st->customer, &cur);
    if (rc)
        return lmdb_errno(rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kb = k.mv_data;
        const uint8_t *nul = memchr(kb, '\0', k.mv_size);
        if (!nul || (size_t)(nul - kb) + 1 >= k.mv_size)
            continue;
        switch (nul[1]) {
        case KIND_HISTORY:
            s->history++;
            break;
        case KIND_INCIDENT:
            s->incidents++;
            break;
        case KIND_DECISION:
            s->decisions++;
            break;
        default:
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : lmdb_errno(rc);
}

int state_get_stats(state *st, state_stats *out, nba_error *err)
{
    memset(out, 0, sizeof *out);
    return with_snapshot(st, count_records, out, err);
}
