/* test_state.c - the state nbad writes (include/state.h) and the writer
 * that groups its writes (include/writer.h). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "arena.h"
#include "state.h"
#include "writer.h"

typedef struct fixture {
    char dir[64];
    state *st;
    arena a;
} fixture;

static int setup(void **ctx)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/nba-state-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    nba_error err;
    assert_int_equal(state_open(f->dir, 64u << 20, &f->st, &err), 0);
    assert_int_equal(arena_init(&f->a, 4096), 0);
    *ctx = f;
    return 0;
}

static int teardown(void **ctx)
{
    fixture *f = *ctx;
    state_close(f->st);
    arena_destroy(&f->a);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void put_incident(state_txn *t, const char *cid, const char *iid, bool resolved)
{
    Nba__V1__Incident inc;
    nba__v1__incident__init(&inc);
    inc.customer_id = (char *)cid;
    inc.incident_id = (char *)iid;
    inc.kind = "delay";
    inc.severity = 3;
    inc.resolved = resolved;
    nba_error err;
    assert_int_equal(state_txn_put_incident(t, &inc, NULL, &err), 0);
}

static void add_history(state_txn *t, const char *cid, int64_t at, const char *action,
                        const char *iid, bool recovers)
{
    Nba__V1__HistoryEntry h;
    nba__v1__history_entry__init(&h);
    h.customer_id = (char *)cid;
    h.at_ms = at;
    h.action = (char *)action;
    h.incident_id = (char *)iid;
    nba_error err;
    assert_int_equal(state_txn_add_history(t, &h, recovers, &err), 0);
}

/* Everything about a customer comes back in one read, history oldest
 * first whatever the order it was written in, and nothing of a customer
 * whose id starts with this one's. */
static void test_customer_round_trip(void **ctx)
{
    fixture *f = *ctx;
    nba_error err;
    state_txn *t;
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    put_incident(t, "C1", "I2", false);
    put_incident(t, "C1", "I1", true);
    put_incident(t, "C10", "I9", false);
    add_history(t, "C1", 2000, "apology_letter", "I1", false);
    add_history(t, "C1", 1000, "upgrade", "I1", true);
    add_history(t, "C10", 500, "upgrade", "I9", true);
    const uint8_t packed[] = {1, 2, 3};
    assert_int_equal(
        state_txn_put_decision(t, "C1", "KIOSK|checkin|AZ610", 18, 1234, packed, 3, &err), 0);
    assert_int_equal(state_txn_commit(t, &err), 0);

    state_reader *r;
    assert_int_equal(state_reader_new(f->st, &r, &err), 0);
    assert_int_equal(state_reader_begin(r), 0);
    state_customer sc;
    assert_int_equal(state_get_customer(r, "C1", "KIOSK|checkin|AZ610", 18, &f->a, &sc), 0);
    assert_int_equal(sc.n_incidents, 2);
    assert_string_equal(sc.incidents[0]->incident_id, "I1");
    assert_true(sc.incidents[0]->resolved);
    assert_string_equal(sc.incidents[1]->incident_id, "I2");
    assert_int_equal(sc.n_history, 2);
    assert_string_equal(sc.history[0]->action, "upgrade");
    assert_int_equal(sc.history[0]->at_ms, 1000);
    assert_string_equal(sc.history[1]->action, "apology_letter");
    assert_int_equal(sc.n_recoveries, 1);
    assert_string_equal(sc.recoveries[0]->incident_id, "I1");
    assert_string_equal(sc.recoveries[0]->action, "upgrade");
    assert_int_equal(sc.decision_len, 3);
    assert_memory_equal(sc.decision, packed, 3);
    assert_int_equal(sc.decision_at_ms, 1234);

    /* Another key finds no decision; an unknown customer finds nothing. */
    assert_int_equal(state_get_customer(r, "C1", "DESK|checkin|AZ610", 17, &f->a, &sc), 0);
    assert_null(sc.decision);
    assert_int_equal(state_get_customer(r, "C2", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(sc.n_incidents + sc.n_history + sc.n_recoveries, 0);
    assert_int_equal(state_get_customer(r, "C10", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(sc.n_incidents, 1);
    assert_int_equal(sc.n_history, 1);
    state_reader_end(r);
    state_reader_free(r);

    state_stats stats;
    assert_int_equal(state_get_stats(f->st, &stats, &err), 0);
    assert_int_equal(stats.incidents, 3);
    assert_int_equal(stats.history, 3);
    assert_int_equal(stats.decisions, 1);
}

/* The first recovery of an incident is the one that counts. */
static void test_first_recovery_kept(void **ctx)
{
    fixture *f = *ctx;
    nba_error err;
    state_txn *t;
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    add_history(t, "C1", 1000, "upgrade", "I1", true);
    add_history(t, "C1", 2000, "voucher", "I1", true);
    assert_int_equal(state_txn_commit(t, &err), 0);
    state_reader *r;
    assert_int_equal(state_reader_new(f->st, &r, &err), 0);
    assert_int_equal(state_reader_begin(r), 0);
    state_customer sc;
    assert_int_equal(state_get_customer(r, "C1", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(sc.n_recoveries, 1);
    assert_string_equal(sc.recoveries[0]->action, "upgrade");
    assert_int_equal(sc.n_history, 2);
    state_reader_free(r);
}

/* A reader attached to the write transaction sees its writes; a snapshot
 * reader does not until the commit; a savepoint rolled back leaves the
 * writes before it. */
static void test_attach_and_savepoints(void **ctx)
{
    fixture *f = *ctx;
    nba_error err;
    state_txn *t;
    state_reader *r, *snap;
    assert_int_equal(state_reader_new(f->st, &r, &err), 0);
    assert_int_equal(state_reader_new(f->st, &snap, &err), 0);
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);

    assert_int_equal(state_txn_savepoint(t), 0);
    put_incident(t, "C1", "I1", false);
    assert_int_equal(state_txn_release(t), 0);

    assert_int_equal(state_txn_savepoint(t), 0);
    put_incident(t, "C1", "I2", false);
    state_reader_attach(r, t);
    state_customer sc;
    assert_int_equal(state_get_customer(r, "C1", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(sc.n_incidents, 2);
    state_reader_end(r);
    state_txn_rollback(t);

    assert_int_equal(state_reader_begin(snap), 0);
    assert_int_equal(state_get_customer(snap, "C1", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(sc.n_incidents, 0);
    state_reader_end(snap);

    Nba__V1__Incident *got;
    assert_int_equal(state_txn_get_incident(t, "C1", "I1", &f->a, &got), 0);
    assert_int_equal(state_txn_get_incident(t, "C1", "I2", &f->a, &got), -ENOENT);
    assert_int_equal(state_txn_commit(t, &err), 0);

    assert_int_equal(state_reader_begin(snap), 0);
    assert_int_equal(state_get_customer(snap, "C1", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(sc.n_incidents, 1);
    assert_string_equal(sc.incidents[0]->incident_id, "I1");
    state_reader_end(snap);
    state_reader_free(snap);
    state_reader_free(r);
}

/* The decisions stored for a customer are counted by the read of the
 * customer (a caller with none need not work out an idempotency key), and
 * each is found by its whole key, in a snapshot and inside a write. */
static void test_stored_decisions(void **ctx)
{
    fixture *f = *ctx;
    nba_error err;
    state_txn *t;
    const uint8_t one[] = {1}, two[] = {2, 2};
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    assert_int_equal(state_txn_put_decision(t, "C1", "k1", 2, 100, one, 1, &err), 0);
    assert_int_equal(state_txn_put_decision(t, "C1", "k2", 2, 200, two, 2, &err), 0);
    assert_int_equal(state_txn_put_decision(t, "C10", "k3", 2, 300, one, 1, &err), 0);
    add_history(t, "C1", 1000, "upgrade", "I1", true);
    assert_int_equal(state_txn_commit(t, &err), 0);

    state_reader *r;
    assert_int_equal(state_reader_new(f->st, &r, &err), 0);
    assert_int_equal(state_reader_begin(r), 0);
    state_customer sc;
    assert_int_equal(state_get_customer(r, "C1", NULL, 0, &f->a, &sc), 0);
    assert_null(sc.decision);
    assert_int_equal(sc.n_history, 1);
    assert_int_equal(state_reader_decisions(r), 2);
    const uint8_t *d;
    size_t len;
    int64_t at;
    assert_int_equal(state_get_decision(r, "C1", "k2", 2, &f->a, &d, &len, &at), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(d, two, 2);
    assert_int_equal(at, 200);
    /* Not another customer's, nor a key that only begins like one. */
    assert_int_equal(state_get_decision(r, "C1", "k3", 2, &f->a, &d, &len, &at), 0);
    assert_null(d);
    assert_int_equal(state_get_decision(r, "C1", "k", 1, &f->a, &d, &len, &at), 0);
    assert_null(d);
    assert_int_equal(state_get_decision(r, "C1", "k1x", 3, &f->a, &d, &len, &at), 0);
    assert_null(d);
    assert_int_equal(state_get_decision(r, "C1", "", 0, &f->a, &d, &len, &at), 0);
    assert_null(d);
    assert_int_equal(state_get_customer(r, "C10", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(state_reader_decisions(r), 1);
    assert_int_equal(state_get_customer(r, "C2", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(state_reader_decisions(r), 0);
    state_reader_end(r);

    /* Attached to a write, the reader finds what the write stored. */
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    assert_int_equal(state_txn_put_decision(t, "C2", "k1", 2, 400, two, 2, &err), 0);
    assert_int_equal(state_reader_attach(r, t), 0);
    assert_int_equal(state_get_customer(r, "C2", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(state_reader_decisions(r), 1);
    assert_int_equal(state_get_decision(r, "C2", "k1", 2, &f->a, &d, &len, &at), 0);
    assert_non_null(d);
    assert_int_equal(at, 400);
    state_reader_end(r);
    state_txn_abort(t);
    state_reader_free(r);
}

/* Expiry takes stored decisions older than the window and history older
 * than the time kept, of one customer (not of one whose id begins like
 * it) or of everyone a part at a time; recovery marks and live incidents
 * stay. Thousands of records span many pages, so removing while walking
 * crosses page boundaries. */
static void test_expiry(void **ctx)
{
    fixture *f = *ctx;
    nba_error err;
    state_txn *t;
    const uint8_t d[300] = {7};
    enum { N = 1500 };
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    for (int i = 0; i < N; i++) {
        char cid[16], key[16];
        snprintf(cid, sizeof cid, "C%04d", i);
        snprintf(key, sizeof key, "k%d", i);
        /* odd customers decided at 100 (old), even ones at 5000 (recent) */
        assert_int_equal(
            state_txn_put_decision(t, cid, key, strlen(key), i % 2 ? 100 : 5000, d, sizeof d, &err),
            0);
        add_history(t, cid, 200, "upgrade", "I1", true); /* old, recovers I1 */
        add_history(t, cid, 6000, "apology_letter", "I2", false);
        put_incident(t, cid, "I9", false);
    }
    add_history(t, "C1", 150, "meal_voucher", "", false);
    assert_int_equal(state_txn_commit(t, &err), 0);
    state_stats st;
    assert_int_equal(state_get_stats(f->st, &st, &err), 0);
    assert_int_equal(st.decisions, N);
    assert_int_equal(st.history, 2 * N + 1);

    /* One customer: "C1" only, not "C10..", "C1000".. */
    state_expiry x = {.decisions_before_ms = 1000, .history_before_ms = 1000};
    size_t removed = 99;
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    assert_int_equal(state_txn_expire_customer(t, "C0001", &x, &removed), 0);
    assert_int_equal(removed, 2); /* its old decision and old upgrade */
    assert_int_equal(state_txn_expire_customer(t, "C1", &x, &removed), 0);
    assert_int_equal(removed, 1); /* the meal voucher of "C1" alone */
    assert_int_equal(state_txn_expire_customer(t, "nobody", &x, &removed), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(state_txn_commit(t, &err), 0);
    assert_int_equal(state_get_stats(f->st, &st, &err), 0);
    assert_int_equal(st.decisions, N - 1);
    assert_int_equal(st.history, 2 * N - 1);

    /* Everyone, 1000 records at a time (each customer has 5): decisions
     * only, history kept (history_before_ms 0). */
    state_expiry decisions_only = {.decisions_before_ms = 1000};
    state_sweep sweep = {0};
    size_t total = 0, calls = 0;
    do {
        assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
        assert_int_equal(state_txn_expire_sweep(t, &decisions_only, &sweep, 1000, &removed), 0);
        assert_int_equal(state_txn_commit(t, &err), 0);
        total += removed;
        calls++;
    } while (!sweep.wrapped && calls < 100);
    assert_true(sweep.wrapped);
    assert_true(calls >= 5); /* 4 * N records: it went a part at a time */
    assert_int_equal(total, N / 2 - 1);
    assert_int_equal(state_get_stats(f->st, &st, &err), 0);
    assert_int_equal(st.decisions, N / 2);
    assert_int_equal(st.history, 2 * N - 1);
    assert_int_equal(st.incidents, N);

    /* Now history too, in one call; the recovery marks stay. */
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    assert_int_equal(state_txn_expire_sweep(t, &x, &sweep, 0, &removed), 0);
    assert_int_equal(state_txn_commit(t, &err), 0);
    assert_int_equal(removed, N - 1);
    assert_true(sweep.wrapped);
    assert_int_equal(state_get_stats(f->st, &st, &err), 0);
    assert_int_equal(st.history, N);
    assert_int_equal(st.decisions, N / 2);
    state_reader *r;
    assert_int_equal(state_reader_new(f->st, &r, &err), 0);
    assert_int_equal(state_reader_begin(r), 0);
    state_customer sc;
    assert_int_equal(state_get_customer(r, "C0003", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(sc.n_history, 1);
    assert_string_equal(sc.history[0]->action, "apology_letter");
    assert_int_equal(sc.n_recoveries, 1); /* I1 stays recovered */
    assert_int_equal(sc.n_incidents, 1);
    assert_int_equal(state_reader_decisions(r), 0);
    state_reader_end(r);
    state_reader_free(r);
}

/* Commits an incident of cid in a process of its own, as another program
 * on the same state would. */
static void commit_elsewhere(fixture *f, const char *cid)
{
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        state *st = NULL;
        state_txn *t;
        nba_error err;
        Nba__V1__Incident inc;
        nba__v1__incident__init(&inc);
        inc.customer_id = (char *)cid;
        inc.incident_id = "I-elsewhere";
        inc.kind = "delay";
        inc.severity = 2;
        int ok = state_open(f->dir, 64u << 20, &st, &err) == 0;
        ok = ok && state_txn_begin(st, &t, &err) == 0;
        ok = ok && state_txn_put_incident(t, &inc, NULL, &err) == 0;
        ok = ok && state_txn_commit(t, &err) == 0;
        if (st)
            state_close(st);
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static size_t incidents_of(fixture *f, state_reader *r, const char *cid)
{
    state_customer sc;
    assert_int_equal(state_reader_begin(r), 0);
    assert_int_equal(state_get_customer(r, cid, NULL, 0, &f->a, &sc), 0);
    state_reader_end(r);
    return sc.n_incidents;
}

/* A reader keeps its snapshot from one read to the next, but a commit made
 * in between, by this process or another, is seen by the next read; one
 * that lets its snapshot go reads on. An empty state has nothing for
 * anyone, except inside a write that just added something. */
static void test_kept_snapshot_sees_commits(void **ctx)
{
    fixture *f = *ctx;
    nba_error err;
    state_reader *r;
    assert_int_equal(state_reader_new(f->st, &r, &err), 0);
    assert_int_equal(incidents_of(f, r, "C1"), 0);
    assert_int_equal(incidents_of(f, r, "C1"), 0);

    state_txn *t;
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    put_incident(t, "C1", "I1", false);
    assert_int_equal(state_reader_attach(r, t), 0);
    state_customer sc;
    assert_int_equal(state_get_customer(r, "C1", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(sc.n_incidents, 1);
    state_reader_end(r);
    assert_int_equal(incidents_of(f, r, "C1"), 0); /* not committed yet */
    assert_int_equal(state_txn_commit(t, &err), 0);
    assert_int_equal(incidents_of(f, r, "C1"), 1);

    commit_elsewhere(f, "C1");
    assert_int_equal(incidents_of(f, r, "C1"), 2);
    commit_elsewhere(f, "C2");
    state_reader_release(r);
    state_reader_release(r); /* twice is harmless */
    assert_int_equal(incidents_of(f, r, "C2"), 1);
    state_reader_free(r);
}

static void test_bad_ids_refused(void **ctx)
{
    fixture *f = *ctx;
    nba_error err;
    state_txn *t;
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    Nba__V1__Incident inc;
    nba__v1__incident__init(&inc);
    inc.customer_id = "C1";
    assert_int_equal(state_txn_put_incident(t, &inc, NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "incident_id"));
    char longid[300];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    inc.customer_id = longid;
    inc.incident_id = "I1";
    assert_int_equal(state_txn_put_incident(t, &inc, NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "customer_id"));
    state_txn_abort(t);
}

typedef struct collected {
    uint64_t ids[16];
    unsigned exports[16];
    char incident[16][16];
    size_t n;
} collected;

static int collect(void *arg, const Nba__V1__OutboxEntry *e)
{
    collected *c = arg;
    c->ids[c->n] = e->id;
    c->exports[c->n] = e->exports;
    snprintf(c->incident[c->n], sizeof c->incident[0], "%s", e->incident_id);
    c->n++;
    return 0;
}

/* The outbox hands out increasing ids, lists in that order, counts
 * exports, and forgets acknowledged entries (acknowledging twice is fine). */
static void test_outbox(void **ctx)
{
    fixture *f = *ctx;
    nba_error err;
    state_txn *t;
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    const char *incidents[] = {"I1", "I2", "I3"};
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        Nba__V1__OutboxEntry e;
        nba__v1__outbox_entry__init(&e);
        e.customer_id = "C1";
        e.incident_id = (char *)incidents[i];
        e.action = "apology_letter";
        e.text = "Dear passenger,\n\nWe are sorry.";
        assert_int_equal(state_txn_add_outbox(t, &e, &err), 0);
        ids[i] = e.id;
        if (i)
            assert_true(ids[i] > ids[i - 1]);
    }
    assert_int_equal(state_txn_commit(t, &err), 0);

    collected c = {0};
    assert_int_equal(state_outbox_list(f->st, collect, &c, &err), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.incident[0], "I1");
    assert_string_equal(c.incident[2], "I3");

    assert_int_equal(state_outbox_mark_exported(f->st, ids, 2, &err), 0);
    size_t acked = 0;
    uint64_t ack[] = {ids[0], 999999};
    assert_int_equal(state_outbox_ack(f->st, ack, 2, &acked, &err), 0);
    assert_int_equal(acked, 1);
    assert_int_equal(state_outbox_ack(f->st, ack, 1, &acked, &err), 0);
    assert_int_equal(acked, 0);

    memset(&c, 0, sizeof c);
    assert_int_equal(state_outbox_list(f->st, collect, &c, &err), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.ids[0], ids[1]);
    assert_int_equal(c.exports[0], 1);
    assert_int_equal(c.ids[1], ids[2]);
    assert_int_equal(c.exports[1], 0);
}

static int count_history(void *arg, const Nba__V1__HistoryEntry *e)
{
    (void)e;
    (*(size_t *)arg)++;
    return 0;
}

static void test_history_list(void **ctx)
{
    fixture *f = *ctx;
    nba_error err;
    state_txn *t;
    assert_int_equal(state_txn_begin(f->st, &t, &err), 0);
    add_history(t, "C1", 1, "upgrade", "", false);
    add_history(t, "C1", 2, "upgrade", "", false);
    add_history(t, "C2", 3, "upgrade", "", false);
    put_incident(t, "C1", "I1", false);
    assert_int_equal(state_txn_commit(t, &err), 0);
    size_t n = 0;
    assert_int_equal(state_history_list(f->st, "C1", count_history, &n, &err), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(state_history_list(f->st, NULL, count_history, &n, &err), 0);
    assert_int_equal(n, 3);
}

/* ---- the writer ---- */

typedef struct writer_fixture {
    pthread_mutex_t lock;
    size_t done;
    size_t failed_answers;
} writer_fixture;

/* A job's request is "customer/incident"; "fail/..." undoes its writes. */
static int apply_job(void *arg, state_txn *t, writer_job *job)
{
    (void)arg;
    char text[64];
    snprintf(text, sizeof text, "%.*s", (int)job->request_len, (const char *)job->request);
    char *slash = strchr(text, '/');
    *slash = '\0';
    put_incident(t, text, slash + 1, false);
    job->answer = (uint8_t *)strdup(strcmp(text, "fail") == 0 ? "error" : "ok");
    job->answer_len = strlen((char *)job->answer);
    return strcmp(text, "fail") == 0 ? -EINVAL : 0;
}

static void fail_job(void *arg, writer_job *job, int rc, const char *message)
{
    (void)arg;
    (void)rc;
    (void)message;
    free(job->answer);
    job->answer = (uint8_t *)strdup("error");
    job->answer_len = 5;
}

static void job_done(void *arg, writer_job *job)
{
    writer_fixture *wf = arg;
    pthread_mutex_lock(&wf->lock);
    wf->done++;
    if (strcmp((char *)job->answer, "error") == 0)
        wf->failed_answers++;
    pthread_mutex_unlock(&wf->lock);
    writer_job_free(job);
}

typedef struct submitter {
    writer *w;
    writer_fixture *wf;
    int index;
} submitter;

static void *submit_many(void *arg)
{
    submitter *s = arg;
    for (int i = 0; i < 250; i++) {
        char req[32];
        int n = snprintf(req, sizeof req, "%s/T%dJ%d", i % 50 == 7 ? "fail" : "C1", s->index, i);
        writer_job *job = writer_job_new((uint8_t *)req, (size_t)n, job_done, s->wf, NULL);
        assert_non_null(job);
        assert_int_equal(writer_submit(s->w, job), 0);
    }
    return NULL;
}

/* Jobs from four threads all come back; each failing job undoes only its
 * own write, and every other job's write is durable; fewer commits than
 * jobs is what batching is for, but only their sum is asserted. */
static void test_writer_batches(void **ctx)
{
    fixture *f = *ctx;
    writer_fixture wf = {.lock = PTHREAD_MUTEX_INITIALIZER};
    writer_ops ops = {.apply = apply_job, .fail = fail_job};
    writer *w;
    nba_error err;
    assert_int_equal(writer_start(f->st, &ops, NULL, &w, &err), 0);
    pthread_t threads[4];
    submitter subs[4];
    for (int i = 0; i < 4; i++) {
        subs[i] = (submitter){w, &wf, i};
        assert_int_equal(pthread_create(&threads[i], NULL, submit_many, &subs[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    writer_stats ws;
    writer_stop(w); /* applies what is queued first */
    assert_int_equal(wf.done, 1000);
    assert_int_equal(wf.failed_answers, 4 * 5);

    state_reader *r;
    assert_int_equal(state_reader_new(f->st, &r, &err), 0);
    assert_int_equal(state_reader_begin(r), 0);
    state_customer sc;
    assert_int_equal(state_get_customer(r, "C1", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(sc.n_incidents, 1000 - 20);
    assert_int_equal(state_get_customer(r, "fail", NULL, 0, &f->a, &sc), 0);
    assert_int_equal(sc.n_incidents, 0);
    state_reader_free(r);
    (void)ws;
}

static int start_fails(void *arg, nba_error *err)
{
    (void)arg;
    return nba_error_set(err, -EPERM, "not allowed");
}

static void test_writer_start_failure(void **ctx)
{
    fixture *f = *ctx;
    writer_ops ops = {.thread_start = start_fails, .apply = apply_job, .fail = fail_job};
    writer *w = NULL;
    nba_error err;
    assert_int_equal(writer_start(f->st, &ops, NULL, &w, &err), -EPERM);
    assert_string_equal(err.msg, "not allowed");
    assert_null(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_customer_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_recovery_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attach_and_savepoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stored_decisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_snapshot_sees_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ids_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_start_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
