/* test_decider.c - the decider's write path in-process (include/decider.h):
 * a contact whose decision records something goes to the writer, which
 * decides again inside its transaction and records the history, the
 * recovery marks, the letters and the stored decision; retries, a second
 * channel for the same flight, incident reports and resolutions, a job that
 * fails in the middle of a batch, and following database generations.
 *
 * The data: a small store built here, the shipped rules
 * (rules/airline-checkin.yaml), a state in a temporary directory, and a
 * writer thread whose decider is made on that thread, as the server does.
 * Jobs are collected by their done callback; the tests wait for them on a
 * condition variable, never on a clock. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "arena.h"
#include "dbroot.h"
#include "decider.h"
#include "frame.h"
#include "rules_live.h"
#include "state.h"
#include "store.h"
#include "store_live.h"
#include "writer.h"

#define DAY_MS    86400000LL
#define MINUTE_MS 60000LL
#define NOW_MS    1795000000000LL /* 2026-11-18 */
#define MAX_DONE  64

typedef struct fixture {
    char dir[64];
    char data_dir[128];
    char state_dir[128];
    store *st;
    state *state;
    rules_live *rules;
    writer *w;
    decider *wd; /* the writer's, made and freed on the writer thread */
    decider *d;  /* a worker's: hands durable requests to w */
    decider *ad; /* this thread's, for decider_apply() in our own transactions */
    /* jobs handed back by the writer, in order */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    writer_job *done[MAX_DONE];
    size_t n_done, n_taken;
    /* a job tagged gate_tag holds the writer thread in its done callback
     * until gate_open: what is submitted meanwhile makes one batch */
    bool gate_reached, gate_open;
    int gate_tag;
    /* a job tagged fail_tag is applied, then made to fail */
    int fail_tag;
    int plain_tag;
} fixture;

/* ---- the data ---- */

static void put_customer(store_txn *t, const char *id, const char *name, const char *tier,
                         double ltv, double predicted, const char *language)
{
    Nba__V1__Customer c = NBA__V1__CUSTOMER__INIT;
    c.customer_id = (char *)id;
    c.name = (char *)name;
    c.tier = (char *)tier;
    c.lifetime_value = ltv;
    c.predicted_ltv = predicted;
    c.language = (char *)language;
    nba_error err;
    assert_int_equal(store_txn_put_customer(t, &c, &err), 0);
}

static void put_incident(store_txn *t, const char *cid, const char *iid, const char *kind,
                         int severity, int64_t at_ms, const char *flight)
{
    Nba__V1__Incident inc = NBA__V1__INCIDENT__INIT;
    inc.customer_id = (char *)cid;
    inc.incident_id = (char *)iid;
    inc.kind = (char *)kind;
    inc.severity = severity;
    inc.occurred_at_ms = at_ms;
    inc.flight = (char *)flight;
    nba_error err;
    assert_int_equal(store_txn_put_incident(t, &inc, &err), 0);
}

/* Valuable passengers with an open incident (upgraded at check-in), one
 * with nothing to recover (greeted only), one with a minor incident
 * (written to, no upgrade). */
static void fill_store(store *st)
{
    store_txn *t;
    nba_error err;
    assert_int_equal(store_txn_begin(st, &t, &err), 0);
    put_customer(t, "C1001", "Giulia Rossi", "platinum", 86500, 48000, "it");
    put_incident(t, "C1001", "INC-1", "ife_broken", 3, NOW_MS - 10 * DAY_MS, "AZ611");
    put_customer(t, "C2002", "Oliver Plain", "silver", 1000, 800, "en");
    put_customer(t, "C3003", "Chen Zhiming", "gold", 41250, 52000, "zh-Hant");
    put_incident(t, "C3003", "INC-3", "lost_baggage", 4, NOW_MS - 21 * DAY_MS, "AZ758");
    put_customer(t, "C4004", "Marco Bianchi", "gold", 30000, 30000, "it");
    put_incident(t, "C4004", "INC-4", "delay", 2, NOW_MS - 30 * DAY_MS, "AZ203");
    put_customer(t, "C5005", "Anna Small", "silver", 500, 500, "en");
    put_incident(t, "C5005", "INC-5", "delay", 1, NOW_MS - 5 * DAY_MS, "AZ100");
    assert_int_equal(store_txn_put_meta(t, "loaded_at", "2026-11-18T00:00:00Z", &err), 0);
    assert_int_equal(store_txn_commit(t, &err), 0);
}

/* ---- the writer's ops, as the server's, and the done callback ---- */

static int ops_thread_start(void *arg, nba_error *err)
{
    fixture *f = arg;
    rules_live_register_thread();
    int rc = decider_new(f->st, f->rules, &f->wd, err);
    if (rc == 0)
        rc = decider_attach_state(f->wd, f->state, NULL, NULL, NULL, err);
    if (rc) {
        decider_free(f->wd);
        f->wd = NULL;
        rules_live_unregister_thread();
    }
    return rc;
}

static void ops_thread_stop(void *arg)
{
    fixture *f = arg;
    decider_free(f->wd);
    f->wd = NULL;
    rules_live_unregister_thread();
}

static int ops_apply(void *arg, state_txn *t, writer_job *job)
{
    fixture *f = arg;
    int rc = decider_apply(f->wd, t, job);
    if (rc == 0 && job->tag == &f->fail_tag) {
        /* Everything was written in the job's savepoint: failing now must
         * undo all of it. */
        decider_fail(f->wd, job, -EIO, "simulated failure");
        return -EIO;
    }
    return rc;
}

static void ops_fail(void *arg, writer_job *job, int rc, const char *message)
{
    fixture *f = arg;
    decider_fail(f->wd, job, rc, message);
}

static const writer_ops test_ops = {
    .thread_start = ops_thread_start,
    .thread_stop = ops_thread_stop,
    .apply = ops_apply,
    .fail = ops_fail,
};

static void job_done(void *arg, writer_job *job)
{
    fixture *f = arg;
    pthread_mutex_lock(&f->lock);
    if (job->tag == &f->gate_tag) {
        f->gate_reached = true;
        pthread_cond_broadcast(&f->cond);
        while (!f->gate_open)
            pthread_cond_wait(&f->cond, &f->lock);
    }
    if (f->n_done < MAX_DONE)
        f->done[f->n_done++] = job;
    else
        writer_job_free(job);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

/* The next job the writer handed back, waiting for it. */
static writer_job *next_done(fixture *f)
{
    pthread_mutex_lock(&f->lock);
    while (f->n_done == f->n_taken)
        pthread_cond_wait(&f->cond, &f->lock);
    writer_job *job = f->done[f->n_taken];
    f->done[f->n_taken++] = NULL;
    pthread_mutex_unlock(&f->lock);
    return job;
}

/* Submits a job that holds the writer thread after its commit, and waits
 * until it does: whatever is submitted until gate_release() is one batch. */
static void gate_hold(fixture *f)
{
    static const uint8_t nothing[] = {0x08, 0x01}; /* Request{id: 1}: writes nothing */
    writer_job *job = writer_job_new(nothing, sizeof nothing, job_done, f, &f->gate_tag);
    assert_non_null(job);
    assert_int_equal(writer_submit(f->w, job), 0);
    pthread_mutex_lock(&f->lock);
    while (!f->gate_reached)
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
}

static void gate_release(fixture *f)
{
    pthread_mutex_lock(&f->lock);
    f->gate_open = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

/* ---- setup ---- */

static int setup(void **ctx)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    nba_error err = {{0}};
    snprintf(f->dir, sizeof f->dir, "/tmp/nba-decider-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->data_dir, sizeof f->data_dir, "%s/data", f->dir);
    snprintf(f->state_dir, sizeof f->state_dir, "%s/state", f->dir);
    assert_int_equal(store_open(f->data_dir, STORE_CREATE, (size_t)64 << 20, 0, &f->st, &err), 0);
    fill_store(f->st);
    assert_int_equal(state_open(f->state_dir, (size_t)64 << 20, &f->state, &err), 0);

    const char *src = getenv("NBA_SOURCE_DIR");
    char rules_path[4096];
    snprintf(rules_path, sizeof rules_path, "%s/rules/airline-checkin.yaml", src ? src : ".");
    if (rules_live_new(rules_path, &f->rules, &err) != 0)
        fail_msg("%s", err.msg);

    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    if (writer_start(f->state, &test_ops, f, &f->w, &err) != 0)
        fail_msg("writer: %s", err.msg);
    assert_int_equal(decider_new(f->st, f->rules, &f->d, &err), 0);
    assert_int_equal(decider_attach_state(f->d, f->state, f->w, job_done, f, &err), 0);
    assert_int_equal(decider_new(f->st, f->rules, &f->ad, &err), 0);
    assert_int_equal(decider_attach_state(f->ad, f->state, NULL, NULL, NULL, &err), 0);
    *ctx = f;
    return 0;
}

static int teardown(void **ctx)
{
    fixture *f = *ctx;
    decider_free(f->d);
    decider_free(f->ad);
    gate_release(f); /* a test that failed while holding the writer */
    writer_stop(f->w);
    for (size_t i = 0; i < f->n_done; i++)
        writer_job_free(f->done[i]);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    rules_live_free(f->rules);
    state_close(f->state);
    store_close(f->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- requests ---- */

typedef struct body {
    uint8_t bytes[2048];
    size_t len;
} body;

static void pack_request(body *b, const Nba__V1__Request *req)
{
    size_t n = nba__v1__request__get_packed_size(req);
    assert_true(n <= sizeof b->bytes);
    b->len = nba__v1__request__pack(req, b->bytes);
    assert_int_equal(b->len, n);
}

static void contact(body *b, uint64_t id, const char *cid, Nba__V1__Channel channel,
                    const char *flight, const char *cabin, int64_t at_ms)
{
    Nba__V1__ContactEvent__ContextEntry e[2] = {NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT,
                                                NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT};
    Nba__V1__ContactEvent__ContextEntry *ep[2] = {&e[0], &e[1]};
    e[0].key = "cabin";
    e[0].value = (char *)cabin;
    e[1].key = "flight";
    e[1].value = (char *)flight;
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    ev.customer_id = (char *)cid;
    ev.channel = channel;
    ev.touchpoint = "checkin";
    ev.occurred_at_ms = at_ms;
    ev.n_context = 2;
    ev.context = ep;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
    req.contact = &ev;
    pack_request(b, &req);
}

/* An incident report; inc NULL: a report without an incident. */
static void report(body *b, uint64_t id, const Nba__V1__Incident *inc)
{
    Nba__V1__IncidentReport r = NBA__V1__INCIDENT_REPORT__INIT;
    r.incident = (Nba__V1__Incident *)inc;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_REPORT_INCIDENT;
    req.report_incident = &r;
    pack_request(b, &req);
}

static Nba__V1__Incident live_incident(const char *cid, const char *iid, const char *kind,
                                       int severity)
{
    Nba__V1__Incident inc = NBA__V1__INCIDENT__INIT;
    inc.customer_id = (char *)cid;
    inc.incident_id = (char *)iid;
    inc.kind = (char *)kind;
    inc.severity = severity;
    inc.occurred_at_ms = NOW_MS - DAY_MS;
    inc.flight = "AZ777";
    return inc;
}

static void resolve(body *b, uint64_t id, const char *cid, const char *iid)
{
    Nba__V1__IncidentResolve r = NBA__V1__INCIDENT_RESOLVE__INIT;
    r.customer_id = (char *)cid;
    r.incident_id = (char *)iid;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_RESOLVE_INCIDENT;
    req.resolve_incident = &r;
    pack_request(b, &req);
}

/* ---- answers ---- */

/* The job's answer frame, decoded (free with response_free). */
static Nba__V1__Response *answer_of(const writer_job *job)
{
    assert_non_null(job->answer);
    assert_true(job->answer_len > FRAME_HEADER_SIZE);
    assert_int_equal(frame_get_length(job->answer), job->answer_len - FRAME_HEADER_SIZE);
    Nba__V1__Response *r = nba__v1__response__unpack(NULL, job->answer_len - FRAME_HEADER_SIZE,
                                                     job->answer + FRAME_HEADER_SIZE);
    assert_non_null(r);
    return r;
}

static void response_free(Nba__V1__Response *r)
{
    nba__v1__response__free_unpacked(r, NULL);
}

static size_t count_actions(const Nba__V1__Decision *d, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_actions; i++)
        n += strcmp(d->actions[i]->type, type) == 0;
    return n;
}

/* The actions the shipped policy records. */
static size_t recorded_actions(const Nba__V1__Decision *d)
{
    return count_actions(d, "upgrade") + count_actions(d, "apology_letter") +
           count_actions(d, "goodwill_miles") + count_actions(d, "meal_voucher");
}

static void assert_error(const Nba__V1__Response *r, uint64_t id, const char *code)
{
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_ERROR);
    assert_int_equal(r->id, id);
    assert_string_equal(r->error->code, code);
}

/* Two decisions say the same: same actions, in order, with the same
 * messages. */
static void assert_same_decision(const Nba__V1__Decision *a, const Nba__V1__Decision *b)
{
    assert_string_equal(a->customer_id, b->customer_id);
    assert_string_equal(a->language, b->language);
    assert_int_equal(a->n_actions, b->n_actions);
    for (size_t i = 0; i < a->n_actions; i++) {
        assert_string_equal(a->actions[i]->type, b->actions[i]->type);
        assert_string_equal(a->actions[i]->rule_id, b->actions[i]->rule_id);
        assert_string_equal(a->actions[i]->message, b->actions[i]->message);
    }
}

/* ---- what the state holds ---- */

static int count_history(void *arg, const Nba__V1__HistoryEntry *e)
{
    (void)e;
    (*(size_t *)arg)++;
    return 0;
}

static size_t history_count(fixture *f, const char *cid)
{
    size_t n = 0;
    nba_error err;
    assert_int_equal(state_history_list(f->state, cid, count_history, &n, &err), 0);
    return n;
}

typedef struct outbox_seen {
    const char *customer_id; /* NULL: everyone's */
    size_t n;
    size_t with_subject, with_text, with_html;
    char incident[2][32];
    char language[2][16];
    char subject[2][256];
    bool names_customer; /* the first letter's text names the addressee */
} outbox_seen;

static int see_outbox(void *arg, const Nba__V1__OutboxEntry *e)
{
    outbox_seen *s = arg;
    if (s->customer_id && strcmp(e->customer_id, s->customer_id) != 0)
        return 0;
    if (s->n < 2) {
        snprintf(s->incident[s->n], sizeof s->incident[0], "%s", e->incident_id);
        snprintf(s->language[s->n], sizeof s->language[0], "%s", e->language);
        snprintf(s->subject[s->n], sizeof s->subject[0], "%s", e->subject);
        if (s->n == 0)
            s->names_customer = e->name && strstr(e->text, e->name) != NULL;
    }
    s->with_subject += e->subject && e->subject[0];
    s->with_text += e->text && e->text[0];
    s->with_html += e->html && e->html[0];
    s->n++;
    return 0;
}

static outbox_seen outbox_of(fixture *f, const char *cid)
{
    outbox_seen s = {.customer_id = cid};
    nba_error err;
    assert_int_equal(state_outbox_list(f->state, see_outbox, &s, &err), 0);
    return s;
}

static state_stats stats_of(fixture *f)
{
    state_stats s;
    nba_error err;
    assert_int_equal(state_get_stats(f->state, &s, &err), 0);
    return s;
}

static void assert_nothing_written(fixture *f)
{
    state_stats s = stats_of(f);
    assert_int_equal(s.history, 0);
    assert_int_equal(s.outbox, 0);
    assert_int_equal(s.incidents, 0);
    assert_int_equal(s.decisions, 0);
}

/* Calls fn with what the state holds about cid, read in a snapshot. */
typedef void (*customer_fn)(const state_customer *sc);
static void with_customer(fixture *f, const char *cid, customer_fn fn)
{
    state_reader *r;
    nba_error err;
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    assert_int_equal(state_reader_new(f->state, &r, &err), 0);
    assert_int_equal(state_reader_begin(r), 0);
    state_customer sc;
    int rc = state_get_customer(r, cid, NULL, 0, &a, &sc);
    state_reader_end(r);
    state_reader_free(r);
    assert_int_equal(rc, 0);
    fn(&sc);
    arena_destroy(&a);
}

/* ---- the two ways in ---- */

/* As a worker: the request must be deferred; it is queued and its job
 * waited for. */
static writer_job *through_writer(fixture *f, const body *b)
{
    Nba__V1__Response *resp = NULL;
    assert_int_equal(decider_handle(f->d, b->bytes, b->len, &resp), DECIDER_DEFERRED);
    assert_null(resp);
    assert_int_equal(decider_submit(f->d, &f->plain_tag, &resp), 0);
    assert_null(resp);
    return next_done(f);
}

/* As the writer does, in a transaction of our own: one savepoint, kept when
 * apply succeeds, undone when it fails. Returns apply's result; *out gets
 * the answer. */
static int apply_alone(fixture *f, const body *b, Nba__V1__Response **out)
{
    writer_job *job = writer_job_new(b->bytes, b->len, NULL, NULL, NULL);
    assert_non_null(job);
    state_txn *t;
    nba_error err;
    assert_int_equal(state_txn_begin(f->state, &t, &err), 0);
    assert_int_equal(state_txn_savepoint(t), 0);
    int rc = decider_apply(f->ad, t, job);
    if (rc == 0)
        assert_int_equal(state_txn_release(t), 0);
    else
        state_txn_rollback(t);
    assert_int_equal(state_txn_commit(t, &err), 0);
    *out = answer_of(job);
    writer_job_free(job);
    return rc;
}

/* ---- tests ---- */

/* A check-in whose decision upgrades and writes a letter waits for the
 * writer; a check-in that records nothing is answered at once, and writes
 * nothing. */
static void test_effects_deferred_plain_answered(void **ctx)
{
    fixture *f = *ctx;
    body b;
    contact(&b, 7, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    Nba__V1__Response *resp = NULL;
    assert_int_equal(decider_handle(f->d, b.bytes, b.len, &resp), DECIDER_DEFERRED);
    assert_null(resp);
    assert_nothing_written(f);

    body plain;
    contact(&plain, 8, "C2002", NBA__V1__CHANNEL__DESK, "AZ100", "Y", NOW_MS);
    assert_int_equal(decider_handle(f->d, plain.bytes, plain.len, &resp), 0);
    assert_non_null(resp);
    assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(resp->id, 8);
    assert_true(resp->decision->known);
    assert_int_equal(count_actions(resp->decision, "greet"), 1);
    assert_int_equal(recorded_actions(resp->decision), 0);
    assert_nothing_written(f);

    /* The deferred request was forgotten by the next one: nothing to
     * submit, and an error answer says so. */
    assert_int_equal(decider_submit(f->d, &f->plain_tag, &resp), -EINVAL);
    assert_non_null(resp);
    assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_ERROR);
    writer_stats ws;
    writer_get_stats(f->w, &ws);
    assert_int_equal(ws.jobs, 0);
}

static void recovered_by_upgrade(const state_customer *sc)
{
    assert_int_equal(sc->n_recoveries, 1);
    assert_string_equal(sc->recoveries[0]->incident_id, "INC-1");
    assert_string_equal(sc->recoveries[0]->action, "upgrade");
    assert_int_equal(sc->n_history, 3);
    size_t upgrades = 0;
    for (size_t i = 0; i < sc->n_history; i++) {
        const Nba__V1__HistoryEntry *h = sc->history[i];
        assert_int_equal(h->at_ms, NOW_MS);
        assert_int_equal(h->channel, NBA__V1__CHANNEL__KIOSK);
        assert_string_equal(h->touchpoint, "checkin");
        assert_string_equal(h->incident_id, "INC-1");
        if (strcmp(h->action, "upgrade") != 0)
            continue;
        upgrades++;
        assert_string_equal(h->rule_id, "recovery-upgrade");
        assert_int_equal(h->n_params, 1);
        assert_string_equal(h->params[0]->key, "cabin");
        assert_string_equal(h->params[0]->value, "F");
        bool flight = false;
        for (size_t k = 0; k < h->n_context; k++)
            flight |= strcmp(h->context[k]->key, "flight") == 0 &&
                      strcmp(h->context[k]->value, "AZ610") == 0;
        assert_true(flight);
    }
    assert_int_equal(upgrades, 1);
}

/* Applied by the writer: one history entry per recorded action, the
 * incident marked recovered by the upgrade, the two letters in the
 * outbox (in the decision's language), the decision stored. */
static void test_apply_records_everything(void **ctx)
{
    fixture *f = *ctx;
    body b;
    contact(&b, 7, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    writer_job *job = through_writer(f, &b);
    assert_ptr_equal(job->tag, &f->plain_tag);
    assert_true(job->decision);
    Nba__V1__Response *r = answer_of(job);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(r->id, 7);
    const Nba__V1__Decision *d = r->decision;
    assert_string_equal(d->language, "it");
    assert_int_equal(count_actions(d, "upgrade"), 1);
    assert_int_equal(count_actions(d, "apology_letter"), 1);
    assert_int_equal(count_actions(d, "goodwill_miles"), 1);
    response_free(r);
    writer_job_free(job);

    assert_int_equal(history_count(f, "C1001"), 3);
    outbox_seen o = outbox_of(f, "C1001");
    assert_int_equal(o.n, 2);
    assert_int_equal(o.with_subject, 2);
    assert_int_equal(o.with_text, 2);
    assert_int_equal(o.with_html, 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(o.incident[i], "INC-1");
        assert_string_equal(o.language[i], "it");
    }
    /* In the order decided: the apology (about the flight), then the miles. */
    assert_non_null(strstr(o.subject[0], "AZ611"));
    assert_non_null(strstr(o.subject[1], "Miglia"));
    assert_true(o.names_customer);
    state_stats s = stats_of(f);
    assert_int_equal(s.history, 3);
    assert_int_equal(s.outbox, 2);
    assert_int_equal(s.decisions, 1);
    assert_int_equal(s.incidents, 0);
    with_customer(f, "C1001", recovered_by_upgrade);

    writer_stats ws;
    writer_get_stats(f->w, &ws);
    assert_int_equal(ws.jobs, 1);
    assert_int_equal(ws.failed, 0);
    assert_true(ws.commits >= 1);
}

/* The same event again (a contact point that got no answer): the stored
 * decision, at once, under the new request's id, and nothing written. */
static void test_retry_gets_stored_decision(void **ctx)
{
    fixture *f = *ctx;
    body b;
    contact(&b, 7, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    writer_job *job = through_writer(f, &b);
    Nba__V1__Response *first = answer_of(job);
    writer_job_free(job);
    assert_int_equal(first->body_case, NBA__V1__RESPONSE__BODY_DECISION);

    body retry;
    contact(&retry, 9, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    Nba__V1__Response *resp = NULL;
    assert_int_equal(decider_handle(f->d, retry.bytes, retry.len, &resp), 0);
    assert_non_null(resp);
    assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(resp->id, 9);
    assert_same_decision(resp->decision, first->decision);

    /* A minute later, as the writer would apply it had it been deferred. */
    contact(&retry, 10, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS + MINUTE_MS);
    Nba__V1__Response *again;
    assert_int_equal(apply_alone(f, &retry, &again), 0);
    assert_int_equal(again->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(again->id, 10);
    assert_same_decision(again->decision, first->decision);
    response_free(again);
    response_free(first);

    assert_int_equal(history_count(f, "C1001"), 3);
    assert_int_equal(outbox_of(f, NULL).n, 2);
    assert_int_equal(stats_of(f).decisions, 1);
}

/* The passenger upgraded at the kiosk goes to the desk, then calls the
 * IVR, for the same flight: both say the upgrade is done, answered at once,
 * and nothing more is given or written. */
static void test_second_channel_confirms(void **ctx)
{
    fixture *f = *ctx;
    body b;
    contact(&b, 7, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    writer_job_free(through_writer(f, &b));
    state_stats before = stats_of(f);
    assert_int_equal(before.history, 3);

    const Nba__V1__Channel later[] = {NBA__V1__CHANNEL__DESK, NBA__V1__CHANNEL__IVR};
    for (size_t i = 0; i < 2; i++) {
        body next;
        contact(&next, 20 + i, "C1001", later[i], "AZ610", "Y",
                NOW_MS + (int64_t)(i + 1) * 25 * MINUTE_MS);
        Nba__V1__Response *resp = NULL;
        assert_int_equal(decider_handle(f->d, next.bytes, next.len, &resp), 0);
        assert_non_null(resp);
        assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_DECISION);
        assert_int_equal(count_actions(resp->decision, "upgrade_confirmed"), 1);
        assert_int_equal(recorded_actions(resp->decision), 0);

        /* Decided again in a write transaction, it writes nothing either. */
        Nba__V1__Response *applied;
        assert_int_equal(apply_alone(f, &next, &applied), 0);
        assert_int_equal(applied->body_case, NBA__V1__RESPONSE__BODY_DECISION);
        assert_int_equal(count_actions(applied->decision, "upgrade_confirmed"), 1);
        assert_int_equal(recorded_actions(applied->decision), 0);
        response_free(applied);
    }
    state_stats after = stats_of(f);
    assert_int_equal(after.history, before.history);
    assert_int_equal(after.outbox, before.outbox);
    assert_int_equal(after.decisions, before.decisions);
}

/* Two identical events applied in one transaction, each in its savepoint:
 * the second sees the first's stored decision and records nothing. */
static void test_identical_events_one_transaction(void **ctx)
{
    fixture *f = *ctx;
    body b;
    contact(&b, 7, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    writer_job *jobs[2];
    state_txn *t;
    nba_error err;
    assert_int_equal(state_txn_begin(f->state, &t, &err), 0);
    for (int i = 0; i < 2; i++) {
        jobs[i] = writer_job_new(b.bytes, b.len, NULL, NULL, NULL);
        assert_non_null(jobs[i]);
        assert_int_equal(state_txn_savepoint(t), 0);
        assert_int_equal(decider_apply(f->ad, t, jobs[i]), 0);
        assert_int_equal(state_txn_release(t), 0);
    }
    assert_int_equal(state_txn_commit(t, &err), 0);
    Nba__V1__Response *a = answer_of(jobs[0]), *c = answer_of(jobs[1]);
    assert_int_equal(a->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(c->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(count_actions(a->decision, "upgrade"), 1);
    assert_same_decision(a->decision, c->decision);
    response_free(a);
    response_free(c);
    writer_job_free(jobs[0]);
    writer_job_free(jobs[1]);

    state_stats s = stats_of(f);
    assert_int_equal(s.history, 3);
    assert_int_equal(s.outbox, 2);
    assert_int_equal(s.decisions, 1);
}

/* The same through the writer, in one batch: two identical events, and a
 * desk contact for the same flight that the worker deferred too (it saw no
 * upgrade yet). The writer puts them in order: one upgrade, one set of
 * letters, and the desk is told the upgrade is done. */
static void test_racing_contacts_one_batch(void **ctx)
{
    fixture *f = *ctx;
    body kiosk, desk;
    contact(&kiosk, 7, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    contact(&desk, 8, "C1001", NBA__V1__CHANNEL__DESK, "AZ610", "Y", NOW_MS + MINUTE_MS);
    gate_hold(f);
    const body *order[] = {&kiosk, &kiosk, &desk};
    for (size_t i = 0; i < 3; i++) {
        Nba__V1__Response *resp = NULL;
        assert_int_equal(decider_handle(f->d, order[i]->bytes, order[i]->len, &resp),
                         DECIDER_DEFERRED);
        assert_int_equal(decider_submit(f->d, &f->plain_tag, &resp), 0);
    }
    gate_release(f);
    writer_job_free(next_done(f)); /* the gate */
    Nba__V1__Response *r[3];
    for (size_t i = 0; i < 3; i++) {
        writer_job *job = next_done(f);
        r[i] = answer_of(job);
        writer_job_free(job);
        assert_int_equal(r[i]->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    }
    writer_stats ws;
    writer_get_stats(f->w, &ws);
    assert_int_equal(ws.largest_batch, 3);
    assert_int_equal(count_actions(r[0]->decision, "upgrade"), 1);
    assert_same_decision(r[0]->decision, r[1]->decision);
    assert_int_equal(r[2]->id, 8);
    assert_int_equal(count_actions(r[2]->decision, "upgrade_confirmed"), 1);
    assert_int_equal(recorded_actions(r[2]->decision), 0);
    for (size_t i = 0; i < 3; i++)
        response_free(r[i]);

    state_stats s = stats_of(f);
    assert_int_equal(s.history, 3);
    assert_int_equal(s.outbox, 2);
    assert_int_equal(s.decisions, 1);
}

/* A report without what it needs is a bad_request and writes nothing; the
 * worker leaves checking it to the writer. A good one is acknowledged
 * (created, then replaced) and the next decision sees it. */
static void test_report_validation(void **ctx)
{
    fixture *f = *ctx;
    Nba__V1__Incident bad[5];
    bad[0] = live_incident("C2002", "INC-L1", "delay", 0);
    bad[1] = live_incident("C2002", "INC-L1", "delay", 6);
    bad[2] = live_incident("C2002", "INC-L1", "", 3);
    bad[3] = live_incident("C2002", "", "delay", 3);
    bad[4] = live_incident("", "INC-L1", "delay", 3);
    for (size_t i = 0; i <= 5; i++) {
        body b;
        report(&b, 30 + i, i < 5 ? &bad[i] : NULL);
        Nba__V1__Response *r;
        assert_int_equal(apply_alone(f, &b, &r), 0);
        assert_error(r, 30 + i, "bad_request");
        response_free(r);
    }
    assert_nothing_written(f);

    Nba__V1__Incident good = live_incident("C2002", "INC-L1", "delay", 4);
    body b;
    report(&b, 40, &good);
    for (int round = 0; round < 2; round++) {
        writer_job *job = through_writer(f, &b);
        assert_false(job->decision);
        Nba__V1__Response *r = answer_of(job);
        writer_job_free(job);
        assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_INCIDENT);
        assert_int_equal(r->id, 40);
        assert_string_equal(r->incident->customer_id, "C2002");
        assert_string_equal(r->incident->incident_id, "INC-L1");
        assert_int_equal(r->incident->created, round == 0);
        response_free(r);
    }
    assert_int_equal(stats_of(f).incidents, 1);

    /* C2002 had nothing to recover; with the live incident, the check-in
     * writes a letter and credits miles, so it waits for the writer. */
    body c;
    contact(&c, 41, "C2002", NBA__V1__CHANNEL__DESK, "AZ100", "Y", NOW_MS);
    writer_job *job = through_writer(f, &c);
    Nba__V1__Response *r = answer_of(job);
    writer_job_free(job);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(count_actions(r->decision, "apology_letter"), 1);
    assert_int_equal(count_actions(r->decision, "goodwill_miles"), 1);
    response_free(r);
    outbox_seen o = outbox_of(f, "C2002");
    assert_true(o.n >= 1);
    assert_string_equal(o.incident[0], "INC-L1");
}

static void resolved_copy(const state_customer *sc)
{
    assert_int_equal(sc->n_incidents, 1);
    const Nba__V1__Incident *inc = sc->incidents[0];
    assert_string_equal(inc->incident_id, "INC-5");
    assert_string_equal(inc->customer_id, "C5005");
    assert_true(inc->resolved);
    assert_string_equal(inc->kind, "delay");
    assert_int_equal(inc->severity, 1);
    assert_int_equal(inc->occurred_at_ms, NOW_MS - 5 * DAY_MS);
    assert_string_equal(inc->flight, "AZ100");
    assert_int_equal(sc->n_history, 0);
}

/* Resolving: an incident nobody reported is not_found, missing ids are a
 * bad_request, neither writes anything; a warehouse incident is copied
 * into the state, resolved, and the next check-in has nothing to recover. */
static void test_resolve(void **ctx)
{
    fixture *f = *ctx;
    body b;
    Nba__V1__Response *r;
    resolve(&b, 50, "C1001", "INC-404");
    assert_int_equal(apply_alone(f, &b, &r), 0);
    assert_error(r, 50, "not_found");
    response_free(r);
    resolve(&b, 51, "C9999", "INC-1");
    assert_int_equal(apply_alone(f, &b, &r), 0);
    assert_error(r, 51, "not_found");
    response_free(r);
    resolve(&b, 52, "", "INC-1");
    assert_int_equal(apply_alone(f, &b, &r), 0);
    assert_error(r, 52, "bad_request");
    response_free(r);
    resolve(&b, 53, "C1001", "");
    assert_int_equal(apply_alone(f, &b, &r), 0);
    assert_error(r, 53, "bad_request");
    response_free(r);
    assert_nothing_written(f);

    /* Before: C5005's open incident gets a letter, so the check-in waits. */
    body c;
    contact(&c, 54, "C5005", NBA__V1__CHANNEL__KIOSK, "AZ200", "Y", NOW_MS);
    Nba__V1__Response *resp = NULL;
    assert_int_equal(decider_handle(f->d, c.bytes, c.len, &resp), DECIDER_DEFERRED);

    resolve(&b, 55, "C5005", "INC-5");
    writer_job *job = through_writer(f, &b);
    r = answer_of(job);
    writer_job_free(job);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_INCIDENT);
    assert_int_equal(r->id, 55);
    assert_string_equal(r->incident->incident_id, "INC-5");
    assert_false(r->incident->created);
    response_free(r);
    assert_int_equal(stats_of(f).incidents, 1);
    with_customer(f, "C5005", resolved_copy);

    /* After: nothing to recover, answered at once. */
    assert_int_equal(decider_handle(f->d, c.bytes, c.len, &resp), 0);
    assert_non_null(resp);
    assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(count_actions(resp->decision, "apology_letter"), 0);
    assert_int_equal(recorded_actions(resp->decision), 0);
    assert_int_equal(stats_of(f).history, 0);
}

static void nothing_about(const state_customer *sc)
{
    assert_int_equal(sc->n_history, 0);
    assert_int_equal(sc->n_recoveries, 0);
    assert_int_equal(sc->n_incidents, 0);
}

/* The same event two days later is no retry: it is decided afresh (the
 * incident is recovered, the upgrade too old to confirm), so it records
 * nothing and is answered at once, without the stored upgrade. */
static void test_retry_after_window(void **ctx)
{
    fixture *f = *ctx;
    body b;
    contact(&b, 7, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    writer_job_free(through_writer(f, &b));
    contact(&b, 8, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS + 2 * DAY_MS);
    Nba__V1__Response *resp = NULL;
    assert_int_equal(decider_handle(f->d, b.bytes, b.len, &resp), 0);
    assert_non_null(resp);
    assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(count_actions(resp->decision, "upgrade"), 0);
    assert_int_equal(recorded_actions(resp->decision), 0);
    state_stats s = stats_of(f);
    assert_int_equal(s.history, 3);
    assert_int_equal(s.outbox, 2);
    assert_int_equal(s.decisions, 1);
}

/* Stored decisions go once the idempotency window has passed: for the
 * customer of a contact the writer records, reckoned from that event's
 * time; for everyone in the writer's idle sweep, reckoned from the time it
 * is given, which also takes history older than the shipped rules'
 * keep_history (400d).
 * Recovery marks stay, so an old incident is never recovered twice. */
static void test_expiry(void **ctx)
{
    fixture *f = *ctx;
    body b;
    contact(&b, 7, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    writer_job_free(through_writer(f, &b));
    assert_int_equal(stats_of(f).decisions, 1);

    /* the same passenger two days later, another flight: the first
     * decision can no longer answer a retry, and goes */
    contact(&b, 8, "C1001", NBA__V1__CHANNEL__DESK, "AZ999", "Y", NOW_MS + 2 * DAY_MS);
    Nba__V1__Response *resp;
    assert_int_equal(apply_alone(f, &b, &resp), 0);
    assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(count_actions(resp->decision, "upgrade"), 0); /* INC-1 stays recovered */
    response_free(resp);
    assert_int_equal(stats_of(f).decisions, 0);
    assert_int_equal(history_count(f, "C1001"), 3);

    /* the sweep, run two days after NOW_MS: a decision stored at NOW_MS
     * for another passenger, and history of 500 and 100 days before */
    nba_error err;
    state_txn *t;
    const uint8_t packed[] = {0x0a, 0x02, 'C', '2'};
    assert_int_equal(state_txn_begin(f->state, &t, &err), 0);
    assert_int_equal(
        state_txn_put_decision(t, "C2002", "k", 1, NOW_MS, packed, sizeof packed, &err), 0);
    Nba__V1__HistoryEntry h = NBA__V1__HISTORY_ENTRY__INIT;
    h.customer_id = "C2002";
    h.at_ms = NOW_MS - 500 * DAY_MS;
    h.action = "goodwill_miles";
    assert_int_equal(state_txn_add_history(t, &h, false, &err), 0);
    h.at_ms = NOW_MS - 100 * DAY_MS;
    assert_int_equal(state_txn_add_history(t, &h, false, &err), 0);
    assert_int_equal(state_txn_commit(t, &err), 0);
    assert_int_equal(stats_of(f).decisions, 1);
    assert_int_equal(history_count(f, "C2002"), 2);
    state_sweep sweep = {0};
    size_t removed = 0;
    assert_int_equal(
        decider_expire(f->ad, f->state, NOW_MS + 2 * DAY_MS, &sweep, 0, &removed, &err), 0);
    assert_int_equal(removed, 2);
    assert_true(sweep.wrapped);
    assert_int_equal(stats_of(f).decisions, 0);
    assert_int_equal(history_count(f, "C2002"), 1);
    assert_int_equal(history_count(f, "C1001"), 3);
    /* nothing left to remove: nothing written */
    assert_int_equal(
        decider_expire(f->ad, f->state, NOW_MS + 2 * DAY_MS, &sweep, 0, &removed, &err), 0);
    assert_int_equal(removed, 0);
}

/* An idempotency key too long to keep: no decision is stored, so a retry
 * is decided afresh; the history still keeps it from giving anything
 * twice. */
static void test_long_key_records_once(void **ctx)
{
    fixture *f = *ctx;
    char flight[STATE_MAX_KEY + 40];
    memset(flight, 'Z', sizeof flight - 1);
    flight[sizeof flight - 1] = '\0';
    body b;
    contact(&b, 7, "C1001", NBA__V1__CHANNEL__KIOSK, flight, "Y", NOW_MS);
    writer_job *job = through_writer(f, &b);
    Nba__V1__Response *r = answer_of(job);
    writer_job_free(job);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(count_actions(r->decision, "upgrade"), 1);
    response_free(r);
    state_stats s = stats_of(f);
    assert_int_equal(s.history, 3);
    assert_int_equal(s.decisions, 0);

    Nba__V1__Response *resp = NULL;
    assert_int_equal(decider_handle(f->d, b.bytes, b.len, &resp), 0);
    assert_non_null(resp);
    assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(count_actions(resp->decision, "upgrade_confirmed"), 1);
    assert_int_equal(recorded_actions(resp->decision), 0);
    Nba__V1__Response *applied;
    assert_int_equal(apply_alone(f, &b, &applied), 0);
    assert_int_equal(recorded_actions(applied->decision), 0);
    response_free(applied);
    s = stats_of(f);
    assert_int_equal(s.history, 3);
    assert_int_equal(s.outbox, 2);
}

/* Three check-ins in one batch, the middle one failing after it wrote
 * everything: its writes are undone and it is answered "unavailable"; the
 * other two keep theirs. Retried, it is recorded afresh (no stored
 * decision was left behind to replay). */
static void test_failing_job_keeps_others(void **ctx)
{
    fixture *f = *ctx;
    body a, b, c;
    contact(&a, 61, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    contact(&b, 62, "C3003", NBA__V1__CHANNEL__KIOSK, "AZ758", "Y", NOW_MS);
    contact(&c, 63, "C4004", NBA__V1__CHANNEL__KIOSK, "AZ203", "Y", NOW_MS);
    const body *order[] = {&a, &b, &c};
    void *tags[] = {&f->plain_tag, &f->fail_tag, &f->plain_tag};
    gate_hold(f);
    for (size_t i = 0; i < 3; i++) {
        Nba__V1__Response *resp = NULL;
        assert_int_equal(decider_handle(f->d, order[i]->bytes, order[i]->len, &resp),
                         DECIDER_DEFERRED);
        assert_int_equal(decider_submit(f->d, tags[i], &resp), 0);
    }
    gate_release(f);
    writer_job_free(next_done(f)); /* the gate */
    Nba__V1__Response *r[3];
    for (size_t i = 0; i < 3; i++) {
        writer_job *job = next_done(f);
        assert_ptr_equal(job->tag, tags[i]);
        assert_int_equal(job->decision, i != 1);
        r[i] = answer_of(job);
        writer_job_free(job);
    }
    assert_int_equal(r[0]->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(count_actions(r[0]->decision, "upgrade"), 1);
    assert_error(r[1], 62, "unavailable");
    assert_non_null(strstr(r[1]->error->message, "simulated failure"));
    assert_int_equal(r[2]->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(count_actions(r[2]->decision, "upgrade"), 1);
    for (size_t i = 0; i < 3; i++)
        response_free(r[i]);

    writer_stats ws;
    writer_get_stats(f->w, &ws);
    assert_int_equal(ws.largest_batch, 3);
    assert_int_equal(ws.failed, 1);

    assert_int_equal(history_count(f, "C1001"), 3);
    assert_int_equal(history_count(f, "C3003"), 0);
    assert_int_equal(history_count(f, "C4004"), 3);
    assert_int_equal(outbox_of(f, "C3003").n, 0);
    assert_int_equal(outbox_of(f, "C1001").n, 2);
    assert_int_equal(outbox_of(f, "C4004").n, 2);
    with_customer(f, "C3003", nothing_about);
    assert_int_equal(stats_of(f).decisions, 2);

    writer_job *job = through_writer(f, &b);
    Nba__V1__Response *retried = answer_of(job);
    writer_job_free(job);
    assert_int_equal(retried->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_int_equal(count_actions(retried->decision, "upgrade"), 1);
    response_free(retried);
    assert_int_equal(history_count(f, "C3003"), 3);
    assert_int_equal(outbox_of(f, "C3003").n, 2);
}

/* decider_fail: an "unavailable" answer under the request's id, saying
 * why, and not counted as a decision. */
static void test_fail_answer(void **ctx)
{
    fixture *f = *ctx;
    body b;
    contact(&b, 71, "C1001", NBA__V1__CHANNEL__KIOSK, "AZ610", "Y", NOW_MS);
    writer_job *job = writer_job_new(b.bytes, b.len, NULL, NULL, NULL);
    assert_non_null(job);
    job->decision = true;
    decider_fail(f->ad, job, -EIO, "the disk went away");
    assert_false(job->decision);
    Nba__V1__Response *r = answer_of(job);
    assert_error(r, 71, "unavailable");
    assert_non_null(strstr(r->error->message, "the disk went away"));
    response_free(r);
    writer_job_free(job);
    assert_nothing_written(f);
}

static bool decided_known(decider *d, const char *cid)
{
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    ev.customer_id = (char *)cid;
    ev.channel = NBA__V1__CHANNEL__DESK;
    ev.touchpoint = "checkin";
    ev.occurred_at_ms = NOW_MS;
    Nba__V1__Decision out = NBA__V1__DECISION__INIT;
    assert_int_equal(decider_decide(d, &ev, &out), 0);
    return out.known;
}

/* A fixed store_live: one generation, never switching; a decider following
 * it decides from it, and freeing both leaves the caller's store open. */
static void test_follow_fixed(void **ctx)
{
    fixture *f = *ctx;
    store_live *live;
    assert_int_equal(store_live_fixed(f->st, &live), 0);
    uint64_t gen = 0;
    store *st = store_live_acquire(live, &gen);
    assert_ptr_equal(st, f->st);
    assert_int_equal(gen, store_live_generation(live));
    char name[DBROOT_NAME_MAX];
    store_live_name(live, name, sizeof name);
    assert_string_equal(name, DBROOT_FLAT);

    decider *d;
    nba_error err;
    assert_int_equal(decider_new(st, f->rules, &d, &err), 0);
    assert_int_equal(decider_follow(d, live, st, gen), 0);
    decider_follow_now(d);
    assert_true(decided_known(d, "C1001"));
    assert_false(decided_known(d, "C0000"));
    body b;
    contact(&b, 80, "C2002", NBA__V1__CHANNEL__DESK, "AZ100", "Y", NOW_MS);
    Nba__V1__Response *resp = NULL;
    assert_int_equal(decider_handle(d, b.bytes, b.len, &resp), 0);
    assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_true(resp->decision->known);
    assert_int_equal(store_live_generation(live), gen);
    decider_free(d); /* releases st */
    store_live_free(live);
    assert_true(decided_known(f->ad, "C1001")); /* the store is still open */
}

/* Builds generation root/gen-N holding one customer and switches to it. */
static void new_generation(const char *root, const char *cid, char *name, size_t size)
{
    nba_error err;
    char dir[4096];
    if (dbroot_new_generation(root, name, size, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(dbroot_path(root, name, dir, sizeof dir), 0);
    store *st;
    assert_int_equal(store_open(dir, STORE_CREATE, (size_t)16 << 20, 0, &st, &err), 0);
    store_txn *t;
    assert_int_equal(store_txn_begin(st, &t, &err), 0);
    put_customer(t, cid, "Gen Passenger", "silver", 1, 1, "en");
    assert_int_equal(store_txn_put_meta(t, "loaded_at", "2026-11-18T00:00:00Z", &err), 0);
    assert_int_equal(store_txn_commit(t, &err), 0);
    store_close(st);
    if (dbroot_switch(root, name, &err) != 0)
        fail_msg("%s", err.msg);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Waits for what the watcher thread does: it is asked at once, and looked
 * at again every 10 ms; a generous bound turns a hang into a failure. */
#define WATCH_STEPS 6000
static void nap(void)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* A switch to a new generation: a decider keeps deciding from the one it
 * holds (held, so still open) until it follows; once it has let go, the
 * watcher closes the old generation and removes it. */
static void test_follow_switch(void **ctx)
{
    fixture *f = *ctx;
    char root[128], first[DBROOT_NAME_MAX], second[DBROOT_NAME_MAX], path[4096];
    snprintf(root, sizeof root, "%s/root", f->dir);
    new_generation(root, "G1", first, sizeof first);

    store_live *live;
    nba_error err;
    store_live_options o = {.poll_ms = 10};
    if (store_live_open(root, &o, &live, &err) != 0)
        fail_msg("%s", err.msg);
    uint64_t gen;
    store *st = store_live_acquire(live, &gen);
    decider *d;
    assert_int_equal(decider_new(st, f->rules, &d, &err), 0);
    decider_follow(d, live, st, gen);
    assert_true(decided_known(d, "G1"));
    assert_false(decided_known(d, "G2"));

    new_generation(root, "G2", second, sizeof second);
    int steps = 0;
    for (; store_live_generation(live) == gen && steps < WATCH_STEPS; steps++) {
        store_live_poke(live);
        nap();
    }
    assert_int_not_equal(store_live_generation(live), gen);
    char name[DBROOT_NAME_MAX];
    store_live_name(live, name, sizeof name);
    assert_string_equal(name, second);

    /* Not followed yet: the old generation is still there and readable. */
    assert_int_equal(dbroot_path(root, first, path, sizeof path), 0);
    assert_true(exists(path));
    assert_true(decided_known(d, "G1"));

    decider_follow_now(d);
    assert_true(decided_known(d, "G2"));
    assert_false(decided_known(d, "G1"));
    for (steps = 0; exists(path) && steps < WATCH_STEPS; steps++) {
        store_live_poke(live);
        nap();
    }
    assert_false(exists(path));
    decider_free(d);
    store_live_free(live);
}

/* Waits until the watcher has published generation `name`. */
static void wait_serving(store_live *live, const char *name)
{
    char now[DBROOT_NAME_MAX] = "";
    for (int steps = 0; steps < WATCH_STEPS; steps++) {
        store_live_name(live, now, sizeof now);
        if (strcmp(now, name) == 0)
            break;
        store_live_poke(live);
        nap();
    }
    assert_string_equal(now, name);
}

/* How many descriptors this process has open on path. */
static int open_count(const char *path)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        char link[64], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        n += strcmp(target, path) == 0;
    }
    return n;
}

/* Points root/current at generation `name` again, as `nbactl db switch`
 * does from another process: dbroot_switch() here would open the
 * generation in this process to check it, which is what is under test. */
static void switch_back(const char *root, const char *name)
{
    char tmp[256], link[256];
    snprintf(tmp, sizeof tmp, "%s/.current-test", root);
    snprintf(link, sizeof link, "%s/current", root);
    unlink(tmp);
    assert_int_equal(symlink(name, tmp), 0);
    assert_int_equal(rename(tmp, link), 0);
}

/* A rollback: `current` goes back to a generation that a decider still
 * holds (it has not followed the switch yet). That generation is open in
 * this process already. LMDB forbids opening an environment twice in one
 * process: the second copy takes the lock file for its own and resets the
 * reader table, and closing the first copy clears every reader slot of the
 * process, so the readers of the copy that serves stop working. The store
 * serving after the rollback must be the one still held, and deciding
 * from it must go on working once the decider has followed and the
 * watcher has collected what no one holds. */
static void test_follow_rollback(void **ctx)
{
    fixture *f = *ctx;
    char root[128], first[DBROOT_NAME_MAX], second[DBROOT_NAME_MAX], lock[4096];
    snprintf(root, sizeof root, "%s/root", f->dir);
    new_generation(root, "G1", first, sizeof first);
    assert_int_equal(dbroot_path(root, first, lock, sizeof lock - 16), 0);
    strcat(lock, "/lock.mdb");
    store_live *live;
    nba_error err;
    store_live_options o = {.poll_ms = 10};
    if (store_live_open(root, &o, &live, &err) != 0)
        fail_msg("%s", err.msg);
    uint64_t gen;
    store *st = store_live_acquire(live, &gen);
    decider *d;
    assert_int_equal(decider_new(st, f->rules, &d, &err), 0);
    decider_follow(d, live, st, gen);

    new_generation(root, "G2", second, sizeof second);
    wait_serving(live, second);
    switch_back(root, first);
    wait_serving(live, first);
    store *now = store_live_acquire(live, NULL);
    bool same = now == st;
    store_live_release(live, now);

    /* The decider follows, letting go of what it held; the watcher closes
     * whatever copy of the generation no one holds any more. */
    decider_follow_now(d);
    for (int steps = 0; open_count(lock) > 1 && steps < WATCH_STEPS; steps++) {
        store_live_poke(live);
        nap();
    }
    int copies = open_count(lock);
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    ev.customer_id = "G1";
    ev.touchpoint = "checkin";
    ev.occurred_at_ms = NOW_MS;
    Nba__V1__Decision out = NBA__V1__DECISION__INIT;
    int rc = decider_decide(d, &ev, &out);
    decider_free(d);
    store_live_free(live);

    assert_int_equal(copies, 1);
    /* FAILS (store_live.c follow_current opens the rolled-back generation a
     * second time): -EIO, LMDB's MDB_BAD_RSLOT, for every decision from
     * then on. */
    assert_int_equal(rc, 0);
    assert_true(out.known);
    /* FAILS for the same reason: a second copy, not the one held. */
    assert_true(same);
}

/* A reload from another thread while an answer is held. */
typedef struct reloading {
    rules_live *rules;
    _Atomic bool finished;
    int rc;
} reloading;

static void *reload_thread(void *arg)
{
    reloading *r = arg;
    char id[128];
    nba_error err;
    r->rc = rules_live_reload(r->rules, id, sizeof id, &err);
    r->finished = true;
    return NULL;
}

/* An answer points into the ruleset it was decided with (its id, the rule
 * ids, the action types, the fixed texts): a reload cannot free that
 * ruleset until decider_done(), and then finishes. Under AddressSanitizer,
 * reading the answer after a premature free would be caught. */
static void test_answer_holds_its_ruleset_until_done(void **ctx)
{
    fixture *f = *ctx;
    char serving[128];
    rules_live_id(f->rules, serving, sizeof serving);
    body b;
    contact(&b, 90, "C2002", NBA__V1__CHANNEL__DESK, "AZ100", "Y", NOW_MS);
    Nba__V1__Response *resp = NULL;
    assert_int_equal(decider_handle(f->d, b.bytes, b.len, &resp), 0);
    assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_DECISION);

    reloading r = {.rules = f->rules};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reload_thread, &r), 0);
    for (int i = 0; i < 10; i++)
        nap(); /* time enough for the reload to compile and swap */
    assert_false(r.finished);

    /* the answer, read as the encoder reads it, is whole */
    const Nba__V1__Decision *dec = resp->decision;
    assert_string_equal(dec->ruleset, serving);
    assert_int_equal(dec->n_actions, 2);
    assert_string_equal(dec->actions[0]->type, "set_language");
    assert_string_equal(dec->actions[0]->rule_id, "first-language");
    assert_string_equal(dec->actions[0]->params[0]->key, "language");
    assert_string_equal(dec->actions[0]->params[0]->value, "en");
    assert_string_equal(dec->actions[1]->type, "greet");
    assert_string_equal(dec->actions[1]->rule_id, "greeting");
    assert_string_equal(dec->actions[1]->message, "Greet the passenger by name: Oliver Plain.");
    size_t n = frame_packed_size(&resp->base);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    frame_pack(&resp->base, buf);
    free(buf);

    decider_done(f->d);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(r.finished);
    assert_int_equal(r.rc, 0);
    decider_done(f->d); /* a second time does nothing */
}

int main(void)
{
    rules_live_register_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_effects_deferred_plain_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_records_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_gets_stored_decision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_channel_confirms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_key_records_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identical_events_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_racing_contacts_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_job_keeps_others, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_switch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_holds_its_ruleset_until_done, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    rules_live_unregister_thread();
    return failed;
}
