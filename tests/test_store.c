/* Unit tests of the LMDB store: write transactions, snapshots, incident
 * ranges, read-only opening and errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(committed_data_is_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(many_incidents_grow_the_list, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_and_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_ids_are_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(readonly_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(map_warm_and_lock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
