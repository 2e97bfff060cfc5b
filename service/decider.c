/* decider.c - see include/decider.h.
 *
 * The one path every contact event takes:
 *   decode (arena) -> facts (LMDB snapshot, copied into the arena)
 *   -> match -> arbitrate -> render -> response (arena, pointing at the
 *   ruleset's fixed texts: the ruleset is held until decider_done())
 * Nothing on this path parses text or calls malloc once the arena's first
 * block is big enough for a request, which it is after the first few.
 */
#include "decider.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "facts_load.h"
#include "frame.h"
#include "letters.h"
#include "policy.h"
#include "rules_live.h"
#include "wire.h"

/* Big enough for a request, a customer with attributes, dozens of incidents
 * and the decision, so the steady state never chains a second block. */
#define DECIDER_ARENA_BLOCK (64 * 1024)

/* The most recorded actions one decision can take. */
#define DECIDER_MAX_EFFECTS 16
/* How long a retried event gets the decision stored for it when the
 * ruleset's policy gives no window: a day, since the same flight number
 * flies again tomorrow. */
#define DECIDER_IDEMPOTENCY_WINDOW_MS (24 * 3600 * 1000LL)

struct decider {
    store_reader *reader;
    store_live *live; /* NULL: reads the store it was made with, always */
    store *store;     /* with live: the generation the reader reads, held */
    uint64_t generation;
    state_reader *state_reader; /* NULL: no state (tests, tools) */
    writer *writer;             /* NULL: nothing is deferred */
    writer_done_fn done;
    void *done_arg;
    /* The request decider_handle() deferred, until decider_submit(). */
    const uint8_t *deferred;
    size_t deferred_len;
    uint64_t deferred_id;
    rules_live *rules;
    /* From decider_handle() until decider_done(): the ruleset the request
     * started on, held in a read-side section, as its answer may point
     * into it. NULL outside. */
    const ruleset *serving;
    arena arena;
    decider_status_fn status_fn; /* NULL: status requests are unsupported */
    void *status_arg;
};

int decider_new(store *st, rules_live *rules, decider **out, nba_error *err)
{
    decider *d = calloc(1, sizeof *d);
    if (!d)
        return nba_error_set(err, -ENOMEM, "out of memory");
    int rc = arena_init(&d->arena, DECIDER_ARENA_BLOCK);
    if (rc) {
        free(d);
        return nba_error_set(err, rc, "out of memory");
    }
    rc = store_reader_new(st, &d->reader, err);
    if (rc) {
        arena_destroy(&d->arena);
        free(d);
        return rc;
    }
    d->rules = rules;
    *out = d;
    return 0;
}

void decider_set_status_source(decider *d, decider_status_fn fn, void *arg)
{
    d->status_fn = fn;
    d->status_arg = arg;
}

int decider_attach_state(decider *d, state *st, writer *w, writer_done_fn done, void *done_arg,
                         nba_error *err)
{
    int rc = state_reader_new(st, &d->state_reader, err);
    if (rc)
        return rc;
    d->writer = w;
    d->done = done;
    d->done_arg = done_arg;
    return 0;
}

int decider_follow(decider *d, store_live *live, store *st, uint64_t generation)
{
    d->live = live;
    d->store = st;
    d->generation = generation;
    return 0;
}

/* Moves the reader to the generation serving now, if it changed. A reader
 * that cannot be made (the reader table is full) leaves the decider on the
 * generation it has, which still serves its data whole. */
static void follow_generation(decider *d)
{
    if (!d->live || store_live_generation(d->live) == d->generation)
        return;
    uint64_t generation;
    store *st = store_live_acquire(d->live, &generation);
    store_reader *r;
    nba_error err;
    if (store_reader_new(st, &r, &err) != 0) {
        store_live_release(d->live, st);
        return;
    }
    store_reader_free(d->reader);
    store_live_release(d->live, d->store);
    d->reader = r;
    d->store = st;
    d->generation = generation;
}

void decider_follow_now(decider *d)
{
    follow_generation(d);
    /* Kept snapshots would keep writers from reusing the pages they hold. */
    store_reader_release(d->reader);
    if (d->state_reader)
        state_reader_release(d->state_reader);
}

void decider_free(decider *d)
{
    if (!d)
        return;
    decider_done(d);
    state_reader_free(d->state_reader);
    store_reader_free(d->reader);
    if (d->live)
        store_live_release(d->live, d->store);
    arena_destroy(&d->arena);
    free(d);
}

/* One decision and what it would record. */
typedef struct decided {
    facts f;
    ruleset_effect effects[DECIDER_MAX_EFFECTS];
    size_t n_effects;
    char key[STATE_MAX_KEY];
    size_t key_len; /* 0: the ruleset defines no idempotency key */
    bool replayed;  /* the decision stored for a retried event */
} decided;

/* Whether two times are at most window apart, either way round (an event
 * may come in late, and flight numbers fly again every day), without
 * overflowing on the client's times. */
static bool within(int64_t a, int64_t b, int64_t window)
{
    int64_t diff;
    if (__builtin_sub_overflow(a, b, &diff))
        return false;
    return diff <= window && diff >= -window;
}

/* x's idempotency key, or none (key_len 0) when the ruleset defines none
 * or it is too long to keep (then the event is decided afresh each time). */
static void idempotency_key(const ruleset *rs, decided *x)
{
    x->key_len = ruleset_idempotency_key(rs, &x->f, x->key, sizeof x->key);
    if (x->key_len >= sizeof x->key)
        x->key_len = 0;
}

/* Decides ev with rs into out. The state, when the decider has one, is
 * read in a snapshot of its own, or inside t when t is not NULL (the
 * writer deciding again in the transaction that will record the
 * decision). */
static int decide(decider *d, const ruleset *rs, const Nba__V1__ContactEvent *ev, state_txn *t,
                  Nba__V1__Decision *out, decided *x)
{
    x->n_effects = 0;
    x->key_len = 0;
    x->replayed = false;
    int rc = facts_load(d->reader, ev, &d->arena, &x->f);
    if (rc)
        return rc;
    if (d->state_reader) {
        /* The writer records the decision under its key. Otherwise the key
         * only finds a decision stored for the customer, and most have
         * none: it is worked out when the state holds some. */
        if (t)
            idempotency_key(rs, x);
        rc = t ? state_reader_attach(d->state_reader, t) : state_reader_begin(d->state_reader);
        if (rc)
            return rc;
        const uint8_t *stored;
        size_t stored_len;
        int64_t stored_at;
        rc = facts_add_state(d->state_reader, x->key, x->key_len, &d->arena, &x->f, &stored,
                             &stored_len, &stored_at);
        if (rc == 0 && !t && state_reader_decisions(d->state_reader) > 0) {
            idempotency_key(rs, x);
            rc = state_get_decision(d->state_reader, x->f.event->customer_id, x->key, x->key_len,
                                    &d->arena, &stored, &stored_len, &stored_at);
        }
        state_reader_end(d->state_reader);
        if (rc)
            return rc;
        int64_t window = ruleset_idempotency_window_ms(rs);
        if (window <= 0)
            window = DECIDER_IDEMPOTENCY_WINDOW_MS;
        if (stored && within(x->f.now_ms, stored_at, window)) {
            Nba__V1__Decision *prev =
                nba__v1__decision__unpack(arena_pb_allocator(&d->arena), stored_len, stored);
            if (prev) {
                *out = *prev;
                x->replayed = true;
                return 0;
            }
            /* A stored decision that does not decode is decided afresh. */
        }
    }

    rule_hit *hits = arena_alloc(&d->arena, (ruleset_rule_count(rs) + 1) * sizeof *hits);
    if (!hits)
        return -ENOMEM;
    size_t n = ruleset_match(rs, &x->f, hits);
    n = ruleset_arbitrate(rs, &x->f, hits, n);
    /* The facts' event: a lookup key resolved to the customer's id. */
    out->customer_id = x->f.event->customer_id;
    out->known = x->f.customer != NULL;
    rc = ruleset_render(rs, &x->f, hits, n, &d->arena, out);
    /* Nothing is recorded without a customer_id to record it under (a key
     * no customer has), nor by a decision whose rules give no action the
     * policy records, as most (a greeting, a language) do not: that is
     * told without ruleset_effects() walking the hits again. */
    if (rc == 0 && d->state_reader && out->customer_id && out->customer_id[0] &&
        ruleset_hits_record(rs, hits, n)) {
        rc = ruleset_effects(rs, &x->f, hits, n, out, x->effects, DECIDER_MAX_EFFECTS,
                             &x->n_effects);
        if (rc == -ENOSPC)
            rc = 0; /* the first DECIDER_MAX_EFFECTS are recorded */
        if (x->n_effects > DECIDER_MAX_EFFECTS)
            x->n_effects = DECIDER_MAX_EFFECTS;
    }
    return rc;
}

int decider_decide(decider *d, const Nba__V1__ContactEvent *ev, Nba__V1__Decision *out)
{
    /* Held as decider_handle() holds it: out may point into the ruleset. */
    decider_done(d);
    d->serving = rules_live_enter(d->rules);
    decided *x = arena_alloc(&d->arena, sizeof *x);
    return x ? decide(d, d->serving, ev, NULL, out, x) : -ENOMEM;
}

Nba__V1__Response *decider_error(decider *d, uint64_t id, const char *code, const char *message)
{
    Nba__V1__Response *resp = arena_alloc(&d->arena, sizeof *resp);
    Nba__V1__Error *error = arena_alloc(&d->arena, sizeof *error);
    if (!resp || !error)
        return NULL;
    nba__v1__response__init(resp);
    nba__v1__error__init(error);
    error->code = (char *)code;
    error->message = (char *)message;
    resp->id = id;
    resp->body_case = NBA__V1__RESPONSE__BODY_ERROR;
    resp->error = error;
    return resp;
}

/* "the customer database could not be read: ..." as an error response:
 * a failure of this server, not of the request, so the client may retry
 * and the connection stays open. */
static Nba__V1__Response *unavailable(decider *d, uint64_t id, const char *what, int rc)
{
    char *msg = arena_alloc(&d->arena, 160);
    if (msg)
        snprintf(msg, 160, "%s: %s", what, strerror(-rc));
    return decider_error(d, id, "unavailable", msg ? msg : what);
}

static Nba__V1__Response *decision_response(decider *d, uint64_t id, Nba__V1__Decision *decision)
{
    Nba__V1__Response *resp = arena_alloc(&d->arena, sizeof *resp);
    if (!resp)
        return decider_error(d, id, "internal", "out of memory");
    nba__v1__response__init(resp);
    resp->id = id;
    resp->body_case = NBA__V1__RESPONSE__BODY_DECISION;
    resp->decision = decision;
    return resp;
}

/* The read-only fast path. A decision that would record something is not
 * answered here: it is deferred to the writer (resp NULL, d->deferred set),
 * which decides again inside its transaction. */
static Nba__V1__Response *answer_contact(decider *d, uint64_t id, const Nba__V1__ContactEvent *ev)
{
    Nba__V1__Decision *decision = arena_alloc(&d->arena, sizeof *decision);
    decided *x = arena_alloc(&d->arena, sizeof *x);
    if (!decision || !x)
        return decider_error(d, id, "internal", "out of memory");
    nba__v1__decision__init(decision);
    int rc = decide(d, d->serving, ev, NULL, decision, x);
    if (rc)
        return unavailable(d, id, "the customer database could not be read", rc);
    if (x->n_effects && !x->replayed && d->writer)
        return NULL;
    return decision_response(d, id, decision);
}

static Nba__V1__Response *answer_ping(decider *d, uint64_t id_of_request)
{
    Nba__V1__Response *resp = arena_alloc(&d->arena, sizeof *resp);
    Nba__V1__Pong *pong = arena_alloc(&d->arena, sizeof *pong);
    if (!resp || !pong)
        return decider_error(d, id_of_request, "internal", "out of memory");
    nba__v1__response__init(resp);
    nba__v1__pong__init(pong);
    pong->server = "nbad/" NBA_VERSION;
    const char *id = ruleset_id(d->serving);
    pong->ruleset = arena_strndup(&d->arena, id, strlen(id));
    if (!pong->ruleset)
        return decider_error(d, id_of_request, "internal", "out of memory");
    resp->id = id_of_request;
    resp->body_case = NBA__V1__RESPONSE__BODY_PONG;
    resp->pong = pong;
    return resp;
}

static Nba__V1__Response *answer_status(decider *d, uint64_t id)
{
    if (!d->status_fn)
        return decider_error(d, id, "unsupported", "this server does not report its status");
    Nba__V1__Response *resp = arena_alloc(&d->arena, sizeof *resp);
    Nba__V1__Status *status = arena_alloc(&d->arena, sizeof *status);
    Nba__V1__Latency *latency = arena_alloc(&d->arena, sizeof *latency);
    const char *rs = ruleset_id(d->serving);
    char *rs_copy = arena_strndup(&d->arena, rs, strlen(rs));
    if (!resp || !status || !latency || !rs_copy)
        return decider_error(d, id, "internal", "out of memory");
    nba__v1__response__init(resp);
    nba__v1__status__init(status);
    nba__v1__latency__init(latency);
    status->server = "nbad/" NBA_VERSION;
    status->ruleset = rs_copy;
    status->decision_latency = latency;
    int rc = d->status_fn(d->status_arg, status);
    if (rc) {
        char *msg = arena_alloc(&d->arena, 128);
        if (msg)
            snprintf(msg, 128, "the status could not be read: %s", strerror(-rc));
        return decider_error(d, id, "unavailable", msg ? msg : "");
    }
    resp->id = id;
    resp->body_case = NBA__V1__RESPONSE__BODY_STATUS;
    resp->status = status;
    return resp;
}

static Nba__V1__Response *answer_explain(decider *d, uint64_t id, const Nba__V1__ExplainRequest *x)
{
    Nba__V1__Response *resp = arena_alloc(&d->arena, sizeof *resp);
    Nba__V1__Explanation *e = arena_alloc(&d->arena, sizeof *e);
    if (!resp || !e)
        return decider_error(d, id, "internal", "out of memory");
    nba__v1__response__init(resp);
    nba__v1__explanation__init(e);
    if (!x->contact)
        return decider_error(d, id, "bad_request", "explain needs a contact event");
    facts f;
    int rc = facts_load(d->reader, x->contact, &d->arena, &f);
    if (rc == 0 && d->state_reader) {
        /* The same facts a decision sees; a stored decision is not
         * replayed: the rules are explained. */
        const uint8_t *stored;
        size_t stored_len;
        rc = state_reader_begin(d->state_reader);
        if (rc == 0) {
            int64_t stored_at;
            rc = facts_add_state(d->state_reader, NULL, 0, &d->arena, &f, &stored, &stored_len,
                                 &stored_at);
            state_reader_end(d->state_reader);
        }
    }
    if (rc == 0)
        rc = ruleset_explain(d->serving, &f, &d->arena, e);
    if (rc)
        return decider_error(d, id, "unavailable", "the decision could not be explained");
    resp->id = id;
    resp->body_case = NBA__V1__RESPONSE__BODY_EXPLANATION;
    resp->explanation = e;
    return resp;
}

/* Recompiles the rule files on this worker's thread: the worker's other
 * connections wait for the compile (milliseconds for a rule file), the
 * other workers go on. Runs outside any read-side section, since the swap
 * waits for every section that could still see the old rules. */
static Nba__V1__Response *answer_reload(decider *d, uint64_t id)
{
    Nba__V1__Response *resp = arena_alloc(&d->arena, sizeof *resp);
    Nba__V1__ReloadResult *result = arena_alloc(&d->arena, sizeof *result);
    char *serving = arena_alloc(&d->arena, 256);
    nba_error *err = arena_alloc(&d->arena, sizeof *err);
    if (!resp || !result || !serving || !err)
        return decider_error(d, id, "internal", "out of memory");
    nba__v1__response__init(resp);
    nba__v1__reload_result__init(result);
    err->msg[0] = '\0';
    int rc = rules_live_reload(d->rules, serving, 256, err);
    result->ok = rc == 0;
    result->ruleset = serving;
    result->errors = rc ? err->msg : "";
    resp->id = id;
    resp->body_case = NBA__V1__RESPONSE__BODY_RELOAD;
    resp->reload = result;
    return resp;
}

void decider_done(decider *d)
{
    if (d->serving) {
        rules_live_leave(d->rules);
        d->serving = NULL;
    }
}

int decider_handle(decider *d, const uint8_t *body, size_t len, Nba__V1__Response **resp)
{
    decider_done(d);
    arena_reset(&d->arena);
    follow_generation(d);
    d->deferred = NULL;
    Nba__V1__Request *req = wire_decode_request(body, len, &d->arena);
    if (!req) {
        *resp =
            decider_error(d, 0, "bad_request", "the frame's body is not a valid nba.v1.Request");
        return -EBADMSG;
    }
    if (req->body_case == NBA__V1__REQUEST__BODY_RELOAD) {
        *resp = answer_reload(d, req->id);
        return 0;
    }
    /* Every other answer is built from the ruleset serving when the request
     * arrived, and may point into it (rule ids, action types, fixed texts):
     * a reload meanwhile frees the old one only after decider_done(). */
    d->serving = rules_live_enter(d->rules);
    bool defer = false;
    switch (req->body_case) {
    case NBA__V1__REQUEST__BODY_CONTACT:
        *resp = answer_contact(d, req->id, req->contact);
        defer = *resp == NULL;
        break;
    case NBA__V1__REQUEST__BODY_PING:
        *resp = answer_ping(d, req->id);
        break;
    case NBA__V1__REQUEST__BODY_STATUS:
        *resp = answer_status(d, req->id);
        break;
    case NBA__V1__REQUEST__BODY_EXPLAIN:
        *resp = answer_explain(d, req->id, req->explain);
        break;
    case NBA__V1__REQUEST__BODY_REPORT_INCIDENT:
    case NBA__V1__REQUEST__BODY_RESOLVE_INCIDENT:
        if (d->writer) {
            *resp = NULL;
            defer = true;
        } else {
            *resp = decider_error(d, req->id, "unsupported",
                                  "this server does not take incident reports");
        }
        break;
    default:
        /* A well-formed request of a kind this server does not know (a newer
         * client, or no body at all): answer it and keep the connection. */
        *resp = decider_error(d, req->id, "unsupported",
                              "the request has no body this server understands");
        break;
    }
    if (defer) {
        decider_done(d); /* no answer yet: the writer makes it in its own section */
        d->deferred = body;
        d->deferred_len = len;
        d->deferred_id = req->id;
        return DECIDER_DEFERRED;
    }
    return 0;
}

int decider_submit(decider *d, void *tag, Nba__V1__Response **resp)
{
    *resp = NULL;
    if (!d->deferred) {
        *resp = decider_error(d, 0, "internal", "nothing to submit");
        return -EINVAL;
    }
    writer_job *job = writer_job_new(d->deferred, d->deferred_len, d->done, d->done_arg, tag);
    d->deferred = NULL;
    int rc = job ? writer_submit(d->writer, job) : -ENOMEM;
    if (rc) {
        writer_job_free(job);
        *resp = unavailable(d, d->deferred_id, "the request could not be queued for writing", rc);
    }
    return rc;
}

/* ---- the writer's side ---- */

/* Makes resp the job's answer frame. */
static int set_answer(writer_job *job, const Nba__V1__Response *resp)
{
    size_t n = frame_packed_size(&resp->base);
    uint8_t *buf = malloc(n);
    if (!buf)
        return -ENOMEM;
    frame_pack(&resp->base, buf);
    free(job->answer);
    job->answer = buf;
    job->answer_len = n;
    return 0;
}

/* Copies a map's entries into another map type of the same shape (every
 * protobuf-c map entry is a base, a key and a value). */
#define COPY_MAP(arena_, type, init, src, n_src, dst, n_dst)                                       \
    do {                                                                                           \
        (dst) = NULL;                                                                              \
        (n_dst) = 0;                                                                               \
        if ((n_src) == 0)                                                                          \
            break;                                                                                 \
        type **arr_ = arena_alloc((arena_), (n_src) * sizeof *arr_);                               \
        type *ents_ = arena_alloc((arena_), (n_src) * sizeof *ents_);                              \
        if (!arr_ || !ents_)                                                                       \
            return -ENOMEM;                                                                        \
        for (size_t i_ = 0; i_ < (n_src); i_++) {                                                  \
            init(&ents_[i_]);                                                                      \
            ents_[i_].key = (src)[i_]->key;                                                        \
            ents_[i_].value = (src)[i_]->value;                                                    \
            arr_[i_] = &ents_[i_];                                                                 \
        }                                                                                          \
        (dst) = arr_;                                                                              \
        (n_dst) = (n_src);                                                                         \
    } while (0)

/* What has expired at time `now` (unix ms) by rs's policy. */
static state_expiry expiry_at(const ruleset *rs, int64_t now)
{
    int64_t window = ruleset_idempotency_window_ms(rs);
    if (window <= 0)
        window = DECIDER_IDEMPOTENCY_WINDOW_MS;
    int64_t keep = ruleset_history_kept_ms(rs);
    return (state_expiry){now - window, keep ? now - keep : 0};
}

int decider_expire(decider *d, state *st, int64_t now_ms, state_sweep *sweep, size_t limit,
                   size_t *removed, nba_error *err)
{
    *removed = 0;
    state_txn *t;
    int rc = state_txn_begin(st, &t, err);
    if (rc)
        return rc;
    state_expiry x = expiry_at(rules_live_enter(d->rules), now_ms);
    rules_live_leave(d->rules);
    rc = state_txn_expire_sweep(t, &x, sweep, limit, removed);
    if (rc) {
        state_txn_abort(t);
        return nba_error_set(err, rc, "cannot remove expired records: %s", strerror(-rc));
    }
    if (*removed == 0) {
        state_txn_abort(t); /* nothing to make durable: no fsync */
        return 0;
    }
    return state_txn_commit(t, err);
}

/* Writes what decision out recorded: a history entry per effect (marking
 * the incident it recovers), a letter in the outbox per effect that has
 * one, and the decision under its idempotency key. */
static int record_effects(decider *d, const ruleset *rs, state_txn *t,
                          const Nba__V1__ContactEvent *ev, const Nba__V1__Decision *out,
                          const decided *x, nba_error *err)
{
    /* A frequent flyer's records stay as few as the policy needs, whether
     * or not the writer is ever idle long enough to sweep. By the event's
     * time, as the idempotency window itself is reckoned. */
    state_expiry expiry = expiry_at(rs, x->f.now_ms);
    int expired = state_txn_expire_customer(t, x->f.event->customer_id, &expiry, NULL);
    if (expired)
        return nba_error_set(err, expired, "cannot remove expired records: %s", strerror(-expired));
    for (size_t i = 0; i < x->n_effects; i++) {
        const ruleset_effect *eff = &x->effects[i];
        const Nba__V1__Action *a = out->actions[eff->action];
        Nba__V1__HistoryEntry h;
        nba__v1__history_entry__init(&h);
        h.customer_id = x->f.event->customer_id;
        h.at_ms = x->f.now_ms;
        h.channel = ev->channel;
        h.touchpoint = ev->touchpoint;
        h.action = a->type;
        h.rule_id = a->rule_id;
        h.incident_id = eff->incident ? eff->incident->incident_id : "";
        COPY_MAP(&d->arena, Nba__V1__HistoryEntry__ParamsEntry,
                 nba__v1__history_entry__params_entry__init, a->params, a->n_params, h.params,
                 h.n_params);
        COPY_MAP(&d->arena, Nba__V1__HistoryEntry__ContextEntry,
                 nba__v1__history_entry__context_entry__init, ev->context, ev->n_context, h.context,
                 h.n_context);
        int rc = state_txn_add_history(t, &h, eff->recovers, err);
        if (rc)
            return rc;
        if (!eff->letter)
            continue;

        Nba__V1__OutboxEntry e;
        nba__v1__outbox_entry__init(&e);
        e.customer_id = x->f.event->customer_id;
        e.incident_id = h.incident_id;
        e.action = a->type;
        e.rule_id = a->rule_id;
        const char *language = ruleset_letter_language(rs, &x->f, eff->letter, out->language);
        e.language = (char *)(language ? language : out->language);
        e.created_at_ms = x->f.now_ms;
        e.name = x->f.customer ? x->f.customer->name : "";
        e.channel = ev->channel;
        const char *subject, *text, *html;
        rc = ruleset_render_letter(rs, &x->f, eff->incident, eff->letter, out->language, &d->arena,
                                   &subject, &text, &html);
        if (rc)
            return nba_error_set(err, rc, "the letter %s could not be written", eff->letter);
        e.subject = (char *)subject;
        e.text = (char *)text;
        e.html = (char *)html;
        rc = state_txn_add_outbox(t, &e, err);
        if (rc)
            return rc;
    }
    if (x->key_len == 0 || x->n_effects == 0)
        return 0;
    size_t n = nba__v1__decision__get_packed_size(out);
    uint8_t *packed = arena_alloc(&d->arena, n ? n : 1);
    if (!packed)
        return nba_error_set(err, -ENOMEM, "out of memory");
    nba__v1__decision__pack(out, packed);
    return state_txn_put_decision(t, x->f.event->customer_id, x->key, x->key_len, x->f.now_ms,
                                  packed, n, err);
}

static Nba__V1__Response *apply_contact(decider *d, const ruleset *rs, state_txn *t, uint64_t id,
                                        const Nba__V1__ContactEvent *ev, int *rc)
{
    Nba__V1__Decision *decision = arena_alloc(&d->arena, sizeof *decision);
    decided *x = arena_alloc(&d->arena, sizeof *x);
    nba_error *err = arena_alloc(&d->arena, sizeof *err);
    if (!decision || !x || !err) {
        *rc = -ENOMEM;
        return decider_error(d, id, "internal", "out of memory");
    }
    err->msg[0] = '\0';
    nba__v1__decision__init(decision);
    *rc = decide(d, rs, ev, t, decision, x);
    if (*rc)
        return unavailable(d, id, "the customer database could not be read", *rc);
    if (!x->replayed) {
        *rc = record_effects(d, rs, t, ev, decision, x, err);
        if (*rc)
            return decider_error(d, id, "unavailable",
                                 err->msg[0] ? err->msg : "the decision could not be recorded");
    }
    return decision_response(d, id, decision);
}

static Nba__V1__Response *incident_ack(decider *d, uint64_t id, const char *customer_id,
                                       const char *incident_id, bool created)
{
    Nba__V1__Response *resp = arena_alloc(&d->arena, sizeof *resp);
    Nba__V1__IncidentAck *ack = arena_alloc(&d->arena, sizeof *ack);
    if (!resp || !ack)
        return decider_error(d, id, "internal", "out of memory");
    nba__v1__response__init(resp);
    nba__v1__incident_ack__init(ack);
    ack->customer_id = (char *)customer_id;
    ack->incident_id = (char *)incident_id;
    ack->created = created;
    resp->id = id;
    resp->body_case = NBA__V1__RESPONSE__BODY_INCIDENT;
    resp->incident = ack;
    return resp;
}

/* Why id cannot be a key part (absent, or longer than the store takes),
 * or NULL when it can. */
static const char *bad_id(const char *what, const char *id, arena *a)
{
    size_t len = id ? strlen(id) : 0;
    if (len > 0 && len <= STORE_MAX_ID)
        return NULL;
    char *msg = arena_alloc(a, 96);
    if (!msg)
        return "out of memory";
    if (len == 0)
        snprintf(msg, 96, "%s is required", what);
    else
        snprintf(msg, 96, "%s is longer than %d bytes", what, STORE_MAX_ID);
    return msg;
}

static Nba__V1__Response *apply_report(decider *d, state_txn *t, uint64_t id,
                                       const Nba__V1__IncidentReport *r, int *rc)
{
    Nba__V1__Incident *inc = r->incident;
    if (!inc)
        return decider_error(d, id, "bad_request", "an incident report needs an incident");
    const char *why = bad_id("customer_id", inc->customer_id, &d->arena);
    if (!why)
        why = bad_id("incident_id", inc->incident_id, &d->arena);
    if (!why && (!inc->kind || !inc->kind[0]))
        why = "kind is required";
    if (!why && (inc->severity < 1 || inc->severity > 5))
        why = "severity must be 1 (minor) to 5 (severe)";
    if (why)
        return decider_error(d, id, "bad_request", why);
    Nba__V1__Incident copy = *inc;
    /* What nbad derives is never taken from a report. */
    copy.recovered_by = "";
    copy.recovered_at_ms = 0;
    if (copy.occurred_at_ms == 0)
        copy.occurred_at_ms = clock_now_ms();
    bool created = false;
    nba_error *err = arena_alloc(&d->arena, sizeof *err);
    if (!err) {
        *rc = -ENOMEM;
        return decider_error(d, id, "internal", "out of memory");
    }
    *rc = state_txn_put_incident(t, &copy, &created, err);
    if (*rc)
        return decider_error(d, id, "unavailable", err->msg);
    return incident_ack(d, id, inc->customer_id, inc->incident_id, created);
}

/* Finds a warehouse incident in the data snapshot. */
static int find_loaded_incident(decider *d, const char *customer_id, const char *incident_id,
                                Nba__V1__Incident **out)
{
    Nba__V1__Incident **incidents;
    size_t n;
    int rc = store_reader_begin(d->reader);
    if (rc)
        return rc;
    rc = store_get_incidents(d->reader, customer_id, &d->arena, &incidents, &n);
    store_reader_end(d->reader);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(incidents[i]->incident_id, incident_id) == 0) {
            *out = incidents[i];
            return 0;
        }
    }
    return -ENOENT;
}

static Nba__V1__Response *apply_resolve(decider *d, state_txn *t, uint64_t id,
                                        const Nba__V1__IncidentResolve *r, int *rc)
{
    const char *why = bad_id("customer_id", r->customer_id, &d->arena);
    if (!why)
        why = bad_id("incident_id", r->incident_id, &d->arena);
    if (why)
        return decider_error(d, id, "bad_request", why);
    Nba__V1__Incident *inc = NULL;
    *rc = state_txn_get_incident(t, r->customer_id, r->incident_id, &d->arena, &inc);
    if (*rc == -ENOENT)
        *rc = find_loaded_incident(d, r->customer_id, r->incident_id, &inc);
    if (*rc == -ENOENT) {
        *rc = 0;
        char *msg = arena_alloc(&d->arena, 2 * STORE_MAX_ID + 64);
        if (msg)
            snprintf(msg, 2 * STORE_MAX_ID + 64, "customer %s has no incident %s", r->customer_id,
                     r->incident_id);
        return decider_error(d, id, "not_found", msg ? msg : "no such incident");
    }
    if (*rc)
        return unavailable(d, id, "the incident could not be read", *rc);
    inc->resolved = true;
    nba_error *err = arena_alloc(&d->arena, sizeof *err);
    if (!err) {
        *rc = -ENOMEM;
        return decider_error(d, id, "internal", "out of memory");
    }
    *rc = state_txn_put_incident(t, inc, NULL, err);
    if (*rc)
        return decider_error(d, id, "unavailable", err->msg);
    return incident_ack(d, id, r->customer_id, r->incident_id, false);
}

int decider_apply(decider *d, state_txn *t, writer_job *job)
{
    arena_reset(&d->arena);
    follow_generation(d);
    Nba__V1__Request *req = wire_decode_request(job->request, job->request_len, &d->arena);
    if (!req) {
        /* It decoded on the worker; only memory can be short here. */
        decider_fail(d, job, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    int rc = 0;
    Nba__V1__Response *resp;
    const ruleset *rs = rules_live_enter(d->rules);
    switch (req->body_case) {
    case NBA__V1__REQUEST__BODY_CONTACT:
        resp = apply_contact(d, rs, t, req->id, req->contact, &rc);
        break;
    case NBA__V1__REQUEST__BODY_REPORT_INCIDENT:
        resp = apply_report(d, t, req->id, req->report_incident, &rc);
        break;
    case NBA__V1__REQUEST__BODY_RESOLVE_INCIDENT:
        resp = apply_resolve(d, t, req->id, req->resolve_incident, &rc);
        break;
    default:
        resp = decider_error(d, req->id, "unsupported", "nothing to write for this request");
        break;
    }
    int packed = resp ? set_answer(job, resp) : -ENOMEM;
    job->decision = resp && resp->body_case == NBA__V1__RESPONSE__BODY_DECISION;
    job->error = resp && resp->body_case == NBA__V1__RESPONSE__BODY_ERROR;
    rules_live_leave(d->rules);
    if (packed) {
        decider_fail(d, job, packed, "out of memory");
        return packed;
    }
    return rc;
}

void decider_fail(decider *d, writer_job *job, int rc, const char *message)
{
    arena_reset(&d->arena);
    Nba__V1__Request *req = wire_decode_request(job->request, job->request_len, &d->arena);
    char *msg = arena_alloc(&d->arena, 256);
    if (msg)
        snprintf(msg, 256, "the request could not be made durable: %s (%s)", message,
                 strerror(-rc));
    Nba__V1__Response *resp = decider_error(d, req ? req->id : 0, "unavailable", msg ? msg : "");
    job->decision = false;
    job->error = true;
    if (!resp || set_answer(job, resp) != 0) {
        free(job->answer);
        job->answer = NULL;
        job->answer_len = 0;
    }
}
