/* Unit tests of the LMDB store: write transactions, snapshots, incident
 * ranges, record counts, read-only opening, the format check and errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <lmdb.h>

#include "store.h"

typedef struct fixture {
    char dir[64];
    store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/nba-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    nba_error err;
    if (store_open(f->dir, STORE_CREATE, 1 << 26, 0, &f->st, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void put_customer(store_txn *t, const char *id, const char *tier)
{
    Nba__V1__Customer c = NBA__V1__CUSTOMER__INIT;
    c.customer_id = (char *)id;
    c.tier = (char *)tier;
    c.predicted_ltv = 1234.5;
    nba_error err;
    assert_int_equal(store_txn_put_customer(t, &c, &err), 0);
}

static void put_incident(store_txn *t, const char *cid, const char *iid, int severity)
{
    Nba__V1__Incident inc = NBA__V1__INCIDENT__INIT;
    inc.customer_id = (char *)cid;
    inc.incident_id = (char *)iid;
    inc.kind = "delay";
    inc.severity = severity;
    nba_error err;
    assert_int_equal(store_txn_put_incident(t, &inc, &err), 0);
}

static void committed_data_is_read_back(void **state)
{
    fixture *f = *state;
    store_txn *t;
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C1", "gold");
    put_customer(t, "C10", "silver"); /* "C1" is a prefix of "C10": ranges must not mix */
    put_incident(t, "C1", "I2", 2);
    put_incident(t, "C1", "I1", 1);
    put_incident(t, "C10", "I3", 5);
    assert_int_equal(store_txn_has_customer(t, "C10"), 1);
    assert_int_equal(store_txn_has_customer(t, "C2"), 0);
    assert_int_equal(store_txn_commit(t, NULL), 0);

    store_reader *r;
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(f->st, &r, NULL), 0);
    for (int round = 0; round < 3; round++) { /* renewed snapshots behave the same */
        assert_int_equal(store_reader_begin(r), 0);
        Nba__V1__Customer *c = NULL;
        assert_int_equal(store_get_customer(r, "C1", &a, &c), 0);
        assert_string_equal(c->tier, "gold");
        assert_true(c->predicted_ltv == 1234.5);
        assert_int_equal(store_get_customer(r, "nobody", &a, &c), -ENOENT);
        assert_int_equal(store_get_customer(r, "", &a, &c), -ENOENT);

        Nba__V1__Incident **list;
        size_t n;
        assert_int_equal(store_get_incidents(r, "C1", &a, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0]->incident_id, "I1");
        assert_string_equal(list[1]->incident_id, "I2");
        assert_int_equal(store_get_incidents(r, "C10", &a, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(list[0]->severity, 5);
        assert_int_equal(store_get_incidents(r, "C2", &a, &list, &n), 0);
        assert_int_equal(n, 0);
        assert_null(list);
        store_reader_end(r);
        arena_reset(&a);
    }
    store_stats stats;
    assert_int_equal(store_get_stats(f->st, &stats), 0);
    assert_int_equal(stats.customers, 2);
    assert_int_equal(stats.incidents, 3);
    store_reader_free(r);
    arena_destroy(&a);
}

/* The tier of customer_id in a snapshot of its own. */
static const char *tier_now(store_reader *r, arena *a, const char *customer_id)
{
    Nba__V1__Customer *c = NULL;
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_customer(r, customer_id, a, &c), 0);
    store_reader_end(r);
    return c->tier;
}

/* A reader keeps its transaction between snapshots, but a snapshot begun
 * after a commit (an upsert while nbad serves) sees it; a snapshot under
 * way does not, and a released reader starts afresh. */
static void kept_snapshot_sees_later_commits(void **state)
{
    fixture *f = *state;
    store_txn *t;
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C1", "gold");
    assert_int_equal(store_txn_commit(t, NULL), 0);

    store_reader *r;
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(f->st, &r, NULL), 0);
    assert_string_equal(tier_now(r, &a, "C1"), "gold");

    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C1", "platinum");
    assert_int_equal(store_txn_commit(t, NULL), 0);
    assert_string_equal(tier_now(r, &a, "C1"), "platinum");

    /* Committed while a snapshot is under way: seen by the next one. */
    Nba__V1__Customer *c = NULL;
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C1", "silver");
    assert_int_equal(store_txn_commit(t, NULL), 0);
    assert_int_equal(store_get_customer(r, "C1", &a, &c), 0);
    assert_string_equal(c->tier, "platinum");
    store_reader_end(r);
    assert_string_equal(tier_now(r, &a, "C1"), "silver");

    /* An aborted write changes nothing; a released reader reads on. */
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C1", "none");
    store_txn_abort(t);
    assert_string_equal(tier_now(r, &a, "C1"), "silver");
    store_reader_release(r);
    store_reader_release(r);
    assert_string_equal(tier_now(r, &a, "C1"), "silver");
    store_reader_free(r);
    arena_destroy(&a);
}

static void many_incidents_grow_the_list(void **state)
{
    fixture *f = *state;
    store_txn *t;
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C1", "gold");
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "I%03d", i);
        put_incident(t, "C1", id, 1 + i % 5);
    }
    assert_int_equal(store_txn_commit(t, NULL), 0);
    store_reader *r;
    arena a;
    assert_int_equal(arena_init(&a, 1024), 0);
    assert_int_equal(store_reader_new(f->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    Nba__V1__Incident **list;
    size_t n;
    assert_int_equal(store_get_incidents(r, "C1", &a, &list, &n), 0);
    assert_int_equal(n, 100);
    assert_string_equal(list[99]->incident_id, "I099");
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

static void abort_and_clear(void **state)
{
    fixture *f = *state;
    store_txn *t;
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C1", "gold");
    assert_int_equal(store_txn_commit(t, NULL), 0);

    /* An aborted transaction leaves nothing behind, not even its clear. */
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    assert_int_equal(store_txn_clear(t, NULL), 0);
    put_customer(t, "C2", "none");
    assert_int_equal(store_txn_has_customer(t, "C1"), 0);
    store_txn_abort(t);
    store_stats stats;
    assert_int_equal(store_get_stats(f->st, &stats), 0);
    assert_int_equal(stats.customers, 1);

    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    assert_int_equal(store_txn_clear(t, NULL), 0);
    assert_int_equal(store_txn_commit(t, NULL), 0);
    assert_int_equal(store_get_stats(f->st, &stats), 0);
    assert_int_equal(stats.customers, 0);
}

static void bad_ids_are_rejected(void **state)
{
    fixture *f = *state;
    store_txn *t;
    nba_error err;
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    Nba__V1__Customer c = NBA__V1__CUSTOMER__INIT;
    c.customer_id = "";
    assert_int_equal(store_txn_put_customer(t, &c, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "empty customer_id"));
    char long_id[STORE_MAX_ID + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    c.customer_id = long_id;
    assert_int_equal(store_txn_put_customer(t, &c, &err), -EINVAL);
    Nba__V1__Incident inc = NBA__V1__INCIDENT__INIT;
    inc.customer_id = "C1";
    inc.incident_id = "";
    assert_int_equal(store_txn_put_incident(t, &inc, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "incident_id"));
    store_txn_abort(t);
}

static void readonly_and_missing(void **state)
{
    fixture *f = *state;
    store *ro;
    nba_error err;
    assert_int_equal(store_open(f->dir, STORE_READONLY, 1 << 26, 0, &ro, &err), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(ro, &t, &err), -EROFS);
    store_close(ro);

    assert_int_equal(store_open("/nonexistent/nba-db", STORE_READONLY, 0, 0, &ro, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/nba-db"));

    /* A directory that holds no environment. */
    char empty[] = "/tmp/nba-empty-XXXXXX";
    assert_non_null(mkdtemp(empty));
    assert_true(store_open(empty, STORE_READONLY, 0, 0, &ro, &err) < 0);
    assert_non_null(strstr(err.msg, empty));
    rmdir(empty);
}

/* The map is found, warming maps every page of the file into this process
 * (mincore says resident), a range past the end is nothing, and locking
 * either works or says why (the limits are the machine's). */
static void map_warm_and_lock(void **state)
{
    fixture *f = *state;
    store_txn *t;
    nba_error err;
    assert_int_equal(store_txn_begin(f->st, &t, &err), 0);
    char id[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "C%06d", i);
        put_customer(t, id, "gold");
    }
    assert_int_equal(store_txn_commit(t, &err), 0);

    store_map m;
    assert_int_equal(store_map_info(f->st, &m), 0);
    assert_non_null(m.addr);
    assert_true(m.page_size >= 4096);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(m.size, (size_t)sb.st_size);
    assert_true(m.size > 16 * m.page_size);

    assert_int_equal(store_warm(f->st, 0, m.size), (long)m.size);
    assert_int_equal(store_warm(f->st, m.size, 4096), 0);
    assert_int_equal(store_warm(f->st, m.size - 10, 4096), 10);
    size_t pages = (m.size + m.page_size - 1) / m.page_size;
    unsigned char *vec = malloc(pages);
    assert_non_null(vec);
    assert_int_equal(mincore((void *)m.addr, m.size, vec), 0);
    for (size_t i = 0; i < pages; i++)
        assert_true(vec[i] & 1);
    free(vec);

    int rc = store_lock(f->st);
    assert_true(rc == 0 || rc == -EPERM || rc == -ENOMEM || rc == -EAGAIN);

    /* A lookup still works after all of that. */
    store_reader *r;
    arena a;
    Nba__V1__Customer *c = NULL;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(f->st, &r, &err), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_customer(r, "C002999", &a, &c), 0);
    assert_string_equal(c->tier, "gold");
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

/* The incident ids of a list, joined with commas into buf. */
static const char *join_ids(char *buf, size_t size, Nba__V1__Incident **list, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? "," : "", list[i]->incident_id);
    return buf;
}

/* The incidents of customer_id read alone, in a snapshot of their own. */
static const char *incidents_alone(store_reader *r, arena *a, const char *customer_id, char *buf,
                                   size_t size)
{
    Nba__V1__Incident **list;
    size_t n;
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_incidents(r, customer_id, a, &list, &n), 0);
    store_reader_end(r);
    return join_ids(buf, size, list, n);
}

/* Ids that are prefixes of each other ("C1", "C10", "C100") keep their
 * incidents apart, whether the incidents are read right after their
 * customer (the cursor goes on from it) or alone; so do incidents stored
 * without their customer, and a customer without incidents. */
static void prefix_ids_keep_incidents_apart(void **state)
{
    fixture *f = *state;
    store_txn *t;
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C1", "gold");
    put_customer(t, "C10", "silver");
    put_customer(t, "C100", "none");
    put_customer(t, "C2", "none");
    put_incident(t, "C10", "A", 1);
    put_incident(t, "C10", "B", 2);
    put_incident(t, "C1", "Z", 3);
    put_incident(t, "C1", "0", 4);
    put_incident(t, "C100", "X", 5);
    put_incident(t, "C11", "ORPHAN", 1); /* no customer C11 */
    put_incident(t, "C2", "Q", 1);
    assert_int_equal(store_txn_commit(t, NULL), 0);

    static const struct {
        const char *id;
        const char *incidents;
    } want[] = {
        {"C1", "0,Z"}, {"C10", "A,B"}, {"C100", "X"}, {"C11", "ORPHAN"},
        {"C2", "Q"},   {"C", ""},      {"C3", ""},    {"C0", ""},
    };
    store_reader *r;
    arena a;
    char got[256], alone[256];
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(f->st, &r, NULL), 0);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        Nba__V1__Customer *c = NULL;
        Nba__V1__Incident **list;
        size_t n;
        assert_int_equal(store_reader_begin(r), 0);
        int rc = store_get_customer(r, want[i].id, &a, &c);
        assert_true(rc == 0 || rc == -ENOENT);
        if (rc == 0)
            assert_string_equal(c->customer_id, want[i].id);
        assert_int_equal(store_get_incidents(r, want[i].id, &a, &list, &n), 0);
        store_reader_end(r);
        assert_string_equal(join_ids(got, sizeof got, list, n), want[i].incidents);
        assert_string_equal(incidents_alone(r, &a, want[i].id, alone, sizeof alone),
                            want[i].incidents);
        arena_reset(&a);
    }

    /* In one snapshot: incidents of another customer than the one just read,
     * the same customer's twice, and after an unknown customer. */
    Nba__V1__Customer *c;
    Nba__V1__Incident **list;
    size_t n;
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_customer(r, "C1", &a, &c), 0);
    assert_int_equal(store_get_incidents(r, "C10", &a, &list, &n), 0);
    assert_string_equal(join_ids(got, sizeof got, list, n), "A,B");
    assert_int_equal(store_get_incidents(r, "C10", &a, &list, &n), 0);
    assert_string_equal(join_ids(got, sizeof got, list, n), "A,B");
    assert_int_equal(store_get_customer(r, "C100", &a, &c), 0);
    assert_int_equal(store_get_incidents(r, "C1", &a, &list, &n), 0);
    assert_string_equal(join_ids(got, sizeof got, list, n), "0,Z");
    assert_int_equal(store_get_customer(r, "C11", &a, &c), -ENOENT);
    assert_int_equal(store_get_incidents(r, "C11", &a, &list, &n), 0);
    assert_string_equal(join_ids(got, sizeof got, list, n), "ORPHAN");
    assert_int_equal(store_get_customer(r, "C2", &a, &c), 0);
    assert_string_equal(c->tier, "none");
    assert_int_equal(store_get_incidents(r, "C2", &a, &list, &n), 0);
    assert_string_equal(join_ids(got, sizeof got, list, n), "Q");
    store_reader_end(r);

    store_stats stats;
    assert_int_equal(store_get_stats(f->st, &stats), 0);
    assert_int_equal(stats.customers, 4);
    assert_int_equal(stats.incidents, 7);
    store_reader_free(r);
    arena_destroy(&a);
}

/* Many customers, each with 0 to 5 incidents, written in merged key order
 * and in reverse: every customer's incidents read the same right after the
 * customer and alone, across leaf pages. */
static void incidents_after_customer_match_alone(void **state)
{
    fixture *f = *state;
    enum { N = 2000 };
    store_txn *t;
    char id[32], iid[32];
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    for (int i = N - 1; i >= 0; i--) {
        snprintf(id, sizeof id, "C%d", i); /* unpadded: many ids are prefixes of others */
        if (i % 7 != 3)                    /* some incidents have no customer record */
            put_customer(t, id, "gold");
        for (int k = 0; k < i % 6; k++) {
            snprintf(iid, sizeof iid, "INC-%d-%d", i, k);
            put_incident(t, id, iid, 1 + k % 5);
        }
    }
    assert_int_equal(store_txn_commit(t, NULL), 0);

    store_reader *r;
    arena a;
    char after[512], alone[512], want[512];
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(f->st, &r, NULL), 0);
    for (int i = 0; i < N + 10; i++) {
        snprintf(id, sizeof id, "C%d", i);
        size_t o = 0;
        want[0] = '\0';
        for (int k = 0; i < N && k < i % 6; k++)
            o += (size_t)snprintf(want + o, sizeof want - o, "%sINC-%d-%d", k ? "," : "", i, k);
        Nba__V1__Customer *c = NULL;
        Nba__V1__Incident **list;
        size_t n;
        assert_int_equal(store_reader_begin(r), 0);
        int rc = store_get_customer(r, id, &a, &c);
        assert_int_equal(rc, i < N && i % 7 != 3 ? 0 : -ENOENT);
        assert_int_equal(store_get_incidents(r, id, &a, &list, &n), 0);
        store_reader_end(r);
        assert_string_equal(join_ids(after, sizeof after, list, n), want);
        assert_string_equal(incidents_alone(r, &a, id, alone, sizeof alone), want);
        arena_reset(&a);
    }
    store_reader_free(r);
    arena_destroy(&a);
}

static void assert_counts(store *st, size_t customers, size_t incidents)
{
    store_stats stats;
    assert_int_equal(store_get_stats(st, &stats), 0);
    assert_int_equal(stats.customers, customers);
    assert_int_equal(stats.incidents, incidents);
}

/* The counts store_get_stats() reports follow new keys only, survive
 * replacing a record, go back to zero on clear, and come back on abort. */
static void counts_follow_puts_clear_and_abort(void **state)
{
    fixture *f = *state;
    store_txn *t;
    nba_error err;
    assert_counts(f->st, 0, 0);

    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C1", "gold");
    put_customer(t, "C2", "gold");
    put_customer(t, "C1", "silver"); /* replaced, not added */
    put_incident(t, "C1", "I1", 1);
    put_incident(t, "C1", "I1", 2);
    put_incident(t, "C2", "I1", 3); /* another customer's incident of the same id */
    assert_counts(f->st, 0, 0);     /* nothing visible before the commit */
    assert_int_equal(store_txn_commit(t, NULL), 0);
    assert_counts(f->st, 2, 2);

    /* Replacing in a later transaction adds nothing either. */
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C2", "platinum");
    put_incident(t, "C2", "I1", 4);
    put_incident(t, "C2", "I2", 4);
    assert_int_equal(store_txn_commit(t, NULL), 0);
    assert_counts(f->st, 2, 3);

    /* An abort leaves the counts as they were, clear or not. */
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C3", "gold");
    assert_int_equal(store_txn_clear(t, NULL), 0);
    put_customer(t, "C4", "gold");
    store_txn_abort(t);
    assert_counts(f->st, 2, 3);

    /* Clear, then the same keys again: counted once each. */
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    assert_int_equal(store_txn_clear(t, NULL), 0);
    put_customer(t, "C1", "gold");
    put_customer(t, "C1", "gold");
    put_incident(t, "C1", "I1", 1);
    assert_int_equal(store_txn_has_customer(t, "C2"), 0);
    assert_int_equal(store_txn_commit(t, NULL), 0);
    assert_counts(f->st, 1, 1);

    /* The store's own meta entries cannot be set from outside. */
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    assert_int_equal(store_txn_put_meta(t, "customers", "7", &err), -EINVAL);
    assert_non_null(strstr(err.msg, "customers"));
    assert_int_equal(store_txn_put_meta(t, "format", "1", &err), -EINVAL);
    assert_int_equal(store_txn_put_meta(t, "loaded_at", "2026-11-22T10:00:00Z", &err), 0);
    assert_int_equal(store_txn_commit(t, NULL), 0);
    assert_counts(f->st, 1, 1);

    /* A reader's view agrees with the counts. */
    store_reader *r;
    arena a;
    Nba__V1__Incident **list;
    size_t n;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(f->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_incidents(r, "C1", &a, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_get_incidents(r, "C2", &a, &list, &n), 0);
    assert_int_equal(n, 0);
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

/* Writes a database in the layout of format 1 with raw LMDB: customers and
 * incidents in two tables, meta without "format". */
static void write_format1(const char *dir, const char *format)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi customers, incidents, meta;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 1 << 26), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "customers", MDB_CREATE, &customers), 0);
    assert_int_equal(mdb_dbi_open(txn, "incidents", MDB_CREATE, &incidents), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
    MDB_val k = {2, "C1"}, v = {0, ""};
    assert_int_equal(mdb_put(txn, customers, &k, &v, 0), 0);
    k = (MDB_val){5, "C1\0I1"};
    assert_int_equal(mdb_put(txn, incidents, &k, &v, 0), 0);
    k = (MDB_val){9, "loaded_at"};
    v = (MDB_val){20, "2026-11-01T00:00:00Z"};
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    if (format) {
        k = (MDB_val){6, "format"};
        v = (MDB_val){strlen(format), (void *)format};
        assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* 1 if the environment in dir has a table of that name. */
static int has_table(const char *dir, const char *name)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    int rc = mdb_dbi_open(txn, name, 0, &dbi);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    assert_true(rc == 0 || rc == MDB_NOTFOUND);
    return rc == 0;
}

/* A database of format 1 cannot be read and says what to do; a writer
 * may open it, and its first committed transaction replaces it (an aborted
 * one leaves it as it was). */
static void format1_database_is_refused_then_replaced(void **state)
{
    (void)state;
    char dir[] = "/tmp/nba-format1-XXXXXX", want[128];
    assert_non_null(mkdtemp(dir));
    write_format1(dir, NULL);

    store *st;
    nba_error err;
    snprintf(want, sizeof want,
             "%s: database written by an older nbad (format 1): load it again with nbactl load",
             dir);
    assert_int_equal(store_open(dir, STORE_READONLY, 0, 0, &st, &err), -ENOTSUP);
    assert_string_equal(err.msg, want);

    /* A writer opens it, but nothing changes until a transaction commits. */
    store_txn *t;
    assert_int_equal(store_open(dir, 0, 1 << 26, 0, &st, &err), 0);
    assert_int_equal(store_txn_begin(st, &t, &err), 0);
    assert_int_equal(store_txn_has_customer(t, "C1"), 0);
    put_customer(t, "C9", "gold");
    store_txn_abort(t);
    store_close(st);
    assert_true(has_table(dir, "customers"));
    assert_int_equal(store_open(dir, STORE_READONLY, 0, 0, &st, &err), -ENOTSUP);
    assert_string_equal(err.msg, want);

    /* Loaded again: the old tables are gone, the new data reads back. */
    assert_int_equal(store_open(dir, STORE_CREATE, 1 << 26, 0, &st, &err), 0);
    assert_int_equal(store_txn_begin(st, &t, &err), 0);
    assert_int_equal(store_txn_clear(t, &err), 0);
    put_customer(t, "C9", "gold");
    put_incident(t, "C9", "I1", 2);
    assert_int_equal(store_txn_commit(t, &err), 0);
    store_close(st);
    assert_false(has_table(dir, "customers"));
    assert_false(has_table(dir, "incidents"));
    assert_int_equal(store_open(dir, STORE_READONLY, 0, 0, &st, &err), 0);
    assert_counts(st, 1, 1);
    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    Nba__V1__Incident **list;
    size_t n;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(st, &r, &err), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_customer(r, "C1", &a, &c), -ENOENT);
    assert_int_equal(store_get_customer(r, "C9", &a, &c), 0);
    assert_int_equal(store_get_incidents(r, "C9", &a, &list, &n), 0);
    assert_int_equal(n, 1);
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
    store_close(st);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A format this code does not know is refused for reading and writing. */
static void unknown_format_is_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/nba-format9-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_format1(dir, "9");
    store *st;
    nba_error err;
    assert_int_equal(store_open(dir, STORE_READONLY, 0, 0, &st, &err), -ENOTSUP);
    assert_non_null(strstr(err.msg, dir));
    assert_non_null(strstr(err.msg, "format ('9'"));
    assert_int_equal(store_open(dir, 0, 1 << 26, 0, &st, &err), -ENOTSUP);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Leaf pages of records in the environment in dir (closed). */
static size_t leaf_pages(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat ms;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "records", 0, &dbi), 0);
    assert_int_equal(mdb_stat(txn, dbi, &ms), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return ms.ms_leaf_pages;
}

/* Files in dir other than LMDB's two. */
static int stray_files(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s | grep -v -e '^data.mdb$' -e '^lock.mdb$')\"",
             dir);
    return system(cmd) != 0;
}

/* Customers, then every customer's incidents, as a load used to put them:
 * each incident between two customers already stored. */
static void load_like_the_loader(store *st)
{
    enum { N = 3000 };
    store_txn *t;
    char id[32], iid[32];
    assert_int_equal(store_txn_begin(st, &t, NULL), 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "C%07d", i);
        put_customer(t, id, "gold");
    }
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "C%07d", i);
        assert_int_equal(store_txn_has_customer(t, id), 1);
        for (int k = 0; k < 2; k++) {
            snprintf(iid, sizeof iid, "INC-%07d-%d", i, k);
            put_incident(t, id, iid, 3);
        }
    }
    assert_int_equal(store_txn_commit(t, NULL), 0);
}

/* Packs a record and puts it under its key with store_txn_put_packed. */
static int put_packed(store_txn *t, const char *cid, const char *iid, unsigned flags,
                      nba_error *err)
{
    uint8_t buf[256];
    char key[64];
    size_t klen, vlen;
    if (iid) {
        Nba__V1__Incident inc = NBA__V1__INCIDENT__INIT;
        inc.customer_id = (char *)cid;
        inc.incident_id = (char *)iid;
        inc.kind = "delay";
        inc.severity = 3;
        vlen = nba__v1__incident__pack(&inc, buf);
        klen = (size_t)snprintf(key, sizeof key, "%s%c%s", cid, 0, iid);
    } else {
        Nba__V1__Customer c = NBA__V1__CUSTOMER__INIT;
        c.customer_id = (char *)cid;
        c.tier = "gold";
        vlen = nba__v1__customer__pack(&c, buf);
        klen = (size_t)snprintf(key, sizeof key, "%s", cid);
    }
    return store_txn_put_packed(t, key, klen, buf, vlen, flags, err);
}

/* Every record appended in key order: a customer, then its incidents. */
static void append_in_key_order(store *st)
{
    enum { N = 3000 };
    store_txn *t;
    char id[32], iid[32];
    assert_int_equal(store_txn_begin(st, &t, NULL), 0);
    assert_int_equal(store_txn_clear(t, NULL), 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "C%07d", i);
        assert_int_equal(put_packed(t, id, NULL, STORE_PUT_APPEND, NULL), 0);
        for (int k = 0; k < 2; k++) {
            snprintf(iid, sizeof iid, "INC-%07d-%d", i, k);
            assert_int_equal(put_packed(t, id, iid, STORE_PUT_APPEND, NULL), 0);
        }
    }
    assert_int_equal(store_txn_commit(t, NULL), 0);
}

/* Records appended in key order fill their pages: a tree built by putting
 * customers first and incidents between them afterwards takes a quarter
 * more leaf pages or worse. Nothing but LMDB's two files is left in the
 * directory. */
static void appended_load_is_packed(void **state)
{
    fixture *f = *state;
    store_close(f->st);
    f->st = NULL;
    char loose[] = "/tmp/nba-loose-XXXXXX", cmd[128];
    assert_non_null(mkdtemp(loose));
    store *st;
    assert_int_equal(store_open(loose, STORE_CREATE, 1 << 26, 0, &st, NULL), 0);
    load_like_the_loader(st);
    store_close(st);
    assert_int_equal(store_open(f->dir, STORE_CREATE, 1 << 26, 0, &st, NULL), 0);
    append_in_key_order(st);
    assert_counts(st, 3000, 6000);

    /* An append that does not sort after the last key is refused. */
    store_txn *t;
    nba_error err;
    assert_int_equal(store_txn_begin(st, &t, NULL), 0);
    assert_int_equal(put_packed(t, "C0000005", NULL, STORE_PUT_APPEND, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "does not sort after"));
    assert_int_equal(put_packed(t, "C0002999", "INC-0002999-1", STORE_PUT_APPEND, &err), -EINVAL);
    store_txn_abort(t);
    store_close(st);

    size_t packed = leaf_pages(f->dir), unpacked = leaf_pages(loose);
    assert_true(packed * 10 < unpacked * 8);
    assert_false(stray_files(f->dir));

    /* What was written reads back. */
    assert_int_equal(store_open(f->dir, STORE_READONLY, 0, 0, &f->st, NULL), 0);
    store_reader *r;
    arena a;
    Nba__V1__Customer *c;
    Nba__V1__Incident **list;
    size_t n;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(f->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_get_customer(r, "C0002999", &a, &c), 0);
    assert_string_equal(c->tier, "gold");
    assert_int_equal(store_get_incidents(r, "C0002999", &a, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[1]->incident_id, "INC-0002999-1");
    assert_int_equal(store_get_customer(r, "C9", &a, &c), -ENOENT);
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
    snprintf(cmd, sizeof cmd, "rm -rf %s", loose);
    assert_int_equal(system(cmd), 0);
}

/* Packed puts without flags insert or replace and keep the counts; bad
 * keys are refused; a deleted record is gone and uncounted. */
static void packed_put_replace_and_delete(void **state)
{
    fixture *f = *state;
    store_txn *t;
    nba_error err;
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    assert_int_equal(put_packed(t, "K2", NULL, 0, NULL), 0);
    assert_int_equal(put_packed(t, "K1", NULL, 0, NULL), 0);
    assert_int_equal(put_packed(t, "K1", NULL, 0, NULL), 0);
    assert_int_equal(put_packed(t, "K1", "I1", 0, NULL), 0);
    assert_int_equal(put_packed(t, "K1", "I1", 0, NULL), 0);
    assert_int_equal(put_packed(t, "K1", "I2", 0, NULL), 0);
    assert_int_equal(store_txn_put_packed(t, "", 0, "x", 1, 0, &err), -EINVAL);
    assert_int_equal(store_txn_put_packed(t, "K1\0", 3, "x", 1, 0, &err), -EINVAL);
    assert_int_equal(store_txn_put_packed(t, "\0I1", 3, "x", 1, 0, &err), -EINVAL);
    assert_int_equal(store_txn_delete_packed(t, "K1\0I2", 5, &err), 0);
    assert_int_equal(store_txn_delete_packed(t, "K1\0I2", 5, &err), -ENOENT);
    assert_int_equal(store_txn_commit(t, NULL), 0);
    assert_counts(f->st, 2, 1);
}

/* The map: its size, growing it, and -ENOSPC with store_map_full() when it
 * is too small; meta entries read back; a sync. */
static void map_full_grow_and_meta(void **state)
{
    fixture *f = *state;
    store_close(f->st);
    nba_error err;
    assert_int_equal(store_open(f->dir, STORE_NOSYNC, (size_t)1 << 20, 0, &f->st, &err), 0);
    assert_int_equal(store_map_size(f->st), (size_t)1 << 20);
    assert_true(store_used_size(f->st) > 0);
    store_txn *t;
    char id[32];
    int rc = 0;
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    for (int i = 0; i < 100000 && rc == 0; i++) {
        snprintf(id, sizeof id, "C%07d", i);
        rc = put_packed(t, id, NULL, STORE_PUT_APPEND, &err);
    }
    assert_int_equal(rc, -ENOSPC);
    assert_true(store_map_full(f->st));
    assert_non_null(strstr(err.msg, "full"));
    store_txn_abort(t);

    assert_int_equal(store_grow_map(f->st, (size_t)64 << 20, &err), 0);
    assert_int_equal(store_map_size(f->st), (size_t)64 << 20);
    assert_false(store_map_full(f->st));
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "C%07d", i);
        assert_int_equal(put_packed(t, id, NULL, STORE_PUT_APPEND, &err), 0);
    }
    assert_int_equal(store_txn_put_meta(t, "loaded_at", "2026-11-22T10:00:00Z", &err), 0);
    assert_int_equal(store_txn_commit(t, &err), 0);
    assert_int_equal(store_sync(f->st, &err), 0);
    assert_counts(f->st, 100000, 0);
    char when[32];
    assert_int_equal(store_get_meta(f->st, "loaded_at", when, sizeof when), 0);
    assert_string_equal(when, "2026-11-22T10:00:00Z");
    assert_int_equal(store_get_meta(f->st, "nothing", when, sizeof when), -ENOENT);
    assert_int_equal(store_get_meta(f->st, "loaded_at", when, 4), -EOVERFLOW);
    assert_string_equal(store_dir(f->st), f->dir);
}

/* Another process that has the environment open is seen; once it has
 * closed it (or died), it is not. */
static void in_use_by_another_process(void **state)
{
    fixture *f = *state;
    store_close(f->st);
    f->st = NULL;
    long pid = 0;
    assert_int_equal(store_env_in_use(f->dir, &pid), 0);
    assert_int_equal(store_env_in_use("/nonexistent/nba-db", &pid), 0);

    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        store *st;
        char c = 0;
        int ok = store_open(f->dir, STORE_READONLY, 0, 0, &st, NULL) == 0;
        ok = ok && write(ready[1], "r", 1) == 1 && read(go[0], &c, 1) == 1;
        if (ok)
            store_close(st);
        _exit(ok ? 0 : 1);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(store_env_in_use(f->dir, &pid), 1);
    assert_int_equal(pid, child);
    assert_int_equal(write(go[1], "g", 1), 1);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(store_env_in_use(f->dir, &pid), 0);
    close(go[0]);
    close(go[1]);
    close(ready[0]);
    close(ready[1]);
    assert_int_equal(store_open(f->dir, STORE_READONLY, 0, 0, &f->st, NULL), 0);
}

/* The keys table: a key names one customer; inserting it again for the
 * same customer is no change, for another is refused naming the holder;
 * a delete only removes a key of the customer named; appended keys must
 * come in order; a clear empties it. */
static void lookup_keys_put_find_delete(void **state)
{
    fixture *f = *state;
    store_txn *t;
    nba_error err;
    char holder[STORE_MAX_ID + 1] = "";
    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    put_customer(t, "C1", "gold");
    put_customer(t, "C2", "gold");
    assert_int_equal(
        store_txn_put_key(t, "booking_ref", "AAA", 3, "C1", 2, STORE_PUT_APPEND, NULL, &err), 0);
    assert_int_equal(
        store_txn_put_key(t, "booking_ref", "BBB", 3, "C2", 2, STORE_PUT_APPEND, NULL, &err), 0);
    assert_int_equal(
        store_txn_put_key(t, "booking_ref", "AB", 2, "C2", 2, STORE_PUT_APPEND, NULL, &err),
        -EINVAL);
    /* A key of another name with the same value is another key. */
    assert_int_equal(store_txn_put_key(t, "loyalty", "AAA", 3, "C2", 2, 0, NULL, &err), 0);
    assert_int_equal(store_txn_put_key(t, "booking_ref", "AAA", 3, "C1", 2, 0, holder, &err), 0);
    assert_int_equal(store_txn_put_key(t, "booking_ref", "AAA", 3, "C2", 2, 0, holder, &err),
                     -EEXIST);
    assert_string_equal(holder, "C1");
    assert_int_equal(store_txn_put_key(t, "", "AAA", 3, "C2", 2, 0, NULL, &err), -EINVAL);
    assert_int_equal(store_txn_put_key(t, "a,b", "AAA", 3, "C2", 2, 0, NULL, &err), -EINVAL);
    assert_int_equal(store_txn_put_key(t, "booking_ref", "", 0, "C2", 2, 0, NULL, &err), -EINVAL);
    assert_int_equal(store_txn_put_key(t, "booking_ref", "CCC", 3, "", 0, 0, NULL, &err), -EINVAL);
    assert_int_equal(store_txn_commit(t, &err), 0);

    store_reader *r;
    arena a;
    char *id;
    Nba__V1__Customer *c;
    Nba__V1__Incident **list;
    size_t n;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_reader_new(f->st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    /* The customer found first, then a key: the incidents still follow. */
    assert_int_equal(store_get_customer(r, "C1", &a, &c), 0);
    assert_int_equal(store_find_key(r, "booking_ref", "BBB", &a, &id), 0);
    assert_string_equal(id, "C2");
    assert_int_equal(store_get_incidents(r, "C1", &a, &list, &n), 0);
    assert_int_equal(store_find_key(r, "booking_ref", "AAA", &a, &id), 0);
    assert_string_equal(id, "C1");
    assert_int_equal(store_find_key(r, "loyalty", "AAA", &a, &id), 0);
    assert_string_equal(id, "C2");
    assert_int_equal(store_find_key(r, "booking_ref", "AA", &a, &id), -ENOENT);
    assert_null(id);
    assert_int_equal(store_find_key(r, "booking", "AAA", &a, &id), -ENOENT);
    assert_int_equal(store_find_key(r, "", "", &a, &id), -ENOENT);
    store_reader_end(r);

    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    assert_int_equal(store_txn_delete_key(t, "booking_ref", "AAA", 3, "C2", 2, &err), -ENOENT);
    assert_int_equal(store_txn_delete_key(t, "booking_ref", "AAA", 3, "C1", 2, &err), 0);
    assert_int_equal(store_txn_delete_key(t, "booking_ref", "AAA", 3, "C1", 2, &err), -ENOENT);
    assert_int_equal(store_txn_put_key(t, "booking_ref", "AAA", 3, "C2", 2, 0, holder, &err), 0);
    assert_int_equal(store_txn_commit(t, &err), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_find_key(r, "booking_ref", "AAA", &a, &id), 0);
    assert_string_equal(id, "C2");
    store_reader_end(r);

    assert_int_equal(store_txn_begin(f->st, &t, NULL), 0);
    assert_int_equal(store_txn_clear(t, &err), 0);
    assert_int_equal(store_txn_commit(t, &err), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_find_key(r, "booking_ref", "AAA", &a, &id), -ENOENT);
    store_reader_end(r);
    store_reader_free(r);
    arena_destroy(&a);
}

/* A generation written before the keys table existed: read-only, every
 * key lookup misses; a writer adds the table. */
static void generation_without_keys_table(void **state)
{
    (void)state;
    char dir[] = "/tmp/nba-nokeys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi records, meta;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "records", MDB_CREATE, &records), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
    MDB_val k = {6, "format"}, v = {1, "2"};
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    store *st;
    store_reader *r;
    nba_error err;
    arena a;
    char *id;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(store_open(dir, STORE_READONLY, 0, 0, &st, &err), 0);
    assert_false(has_table(dir, "keys"));
    assert_int_equal(store_reader_new(st, &r, NULL), 0);
    assert_int_equal(store_reader_begin(r), 0);
    assert_int_equal(store_find_key(r, "booking_ref", "AAA", &a, &id), -ENOENT);
    store_reader_end(r);
    store_reader_free(r);
    store_close(st);

    assert_int_equal(store_open(dir, 0, 1 << 26, 0, &st, &err), 0);
    store_close(st);
    assert_true(has_table(dir, "keys"));
    arena_destroy(&a);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(committed_data_is_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(kept_snapshot_sees_later_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(many_incidents_grow_the_list, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_and_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_ids_are_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(readonly_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(map_warm_and_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(prefix_ids_keep_incidents_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(incidents_after_customer_match_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(counts_follow_puts_clear_and_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(appended_load_is_packed, setup, teardown),
        cmocka_unit_test_setup_teardown(packed_put_replace_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(map_full_grow_and_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(in_use_by_another_process, setup, teardown),
        cmocka_unit_test(format1_database_is_refused_then_replaced),
        cmocka_unit_test(unknown_format_is_refused),
        cmocka_unit_test_setup_teardown(lookup_keys_put_find_delete, setup, teardown),
        cmocka_unit_test(generation_without_keys_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
