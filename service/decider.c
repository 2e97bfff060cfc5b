/* decider.c - see include/decider.h.
 *
 * The one path every contact event takes:
 *   decode (arena) -> facts (LMDB snapshot, copied into the arena)
 *   -> match -> arbitrate -> render -> response (arena)
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
#include "facts_load.h"
#include "rules_live.h"
#include "wire.h"

/* Big enough for a request, a customer with attributes, dozens of incidents
 * and the decision, so the steady state never chains a second block. */
#define DECIDER_ARENA_BLOCK (64 * 1024)

struct decider {
    store_reader *reader;
    rules_live *rules;
    const ruleset *serving; /* inside a request: the ruleset it started on */
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

void decider_free(decider *d)
{
    if (!d)
        return;
    store_reader_free(d->reader);
    arena_destroy(&d->arena);
    free(d);
}

int decider_decide(decider *d, const Nba__V1__ContactEvent *ev, Nba__V1__Decision *out)
{
    facts f;
    int rc = facts_load(d->reader, ev, &d->arena, &f);
    if (rc)
        return rc;

    /* A request that did not come through decider_handle() (tests, tools)
     * holds the serving ruleset just for this decision. */
    bool own_section = d->serving == NULL;
    const ruleset *rs = own_section ? rules_live_enter(d->rules) : d->serving;
    rule_hit *hits = arena_alloc(&d->arena, (ruleset_rule_count(rs) + 1) * sizeof *hits);
    if (!hits) {
        rc = -ENOMEM;
        goto out;
    }
    size_t n = ruleset_match(rs, &f, hits);
    n = ruleset_arbitrate(rs, &f, hits, n);

    out->customer_id = ev->customer_id;
    out->known = f.customer != NULL;
    rc = ruleset_render(rs, &f, hits, n, &d->arena, out);
out:
    if (own_section)
        rules_live_leave(d->rules);
    return rc;
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

static Nba__V1__Response *answer_contact(decider *d, uint64_t id, const Nba__V1__ContactEvent *ev)
{
    Nba__V1__Response *resp = arena_alloc(&d->arena, sizeof *resp);
    Nba__V1__Decision *decision = arena_alloc(&d->arena, sizeof *decision);
    if (!resp || !decision)
        return decider_error(d, id, "internal", "out of memory");
    nba__v1__response__init(resp);
    nba__v1__decision__init(decision);

    int rc = decider_decide(d, ev, decision);
    if (rc) {
        /* The store could not be read: a failure of this server, not of the
         * request, so the client may retry and the connection stays open. */
        char *msg = arena_alloc(&d->arena, 128);
        if (msg)
            snprintf(msg, 128, "the customer database could not be read: %s", strerror(-rc));
        return decider_error(d, id, "unavailable", msg ? msg : "");
    }
    resp->id = id;
    resp->body_case = NBA__V1__RESPONSE__BODY_DECISION;
    resp->decision = decision;
    return resp;
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

int decider_handle(decider *d, const uint8_t *body, size_t len, Nba__V1__Response **resp)
{
    arena_reset(&d->arena);
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
     * arrived; a reload meanwhile frees the old one only after this. */
    d->serving = rules_live_enter(d->rules);
    switch (req->body_case) {
    case NBA__V1__REQUEST__BODY_CONTACT:
        *resp = answer_contact(d, req->id, req->contact);
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
    default:
        /* A well-formed request of a kind this server does not know (a newer
         * client, or no body at all): answer it and keep the connection. */
        *resp = decider_error(d, req->id, "unsupported",
                              "the request has no body this server understands");
        break;
    }
    rules_live_leave(d->rules);
    d->serving = NULL;
    return 0;
}
