/* fuzz_request - the whole request path, bytes in to bytes out, as a worker
 * runs it for one connection: frames cut with frame_cut(), each body answered
 * by decider_handle() with a real LMDB store and the shipped rules, each
 * response packed as nbad sends it (wire_response_pack) and as protobuf-c
 * packs it (frame_pack), then decoded again.
 *
 * The store (a scratch directory, created once) holds a few customers with
 * attributes and incidents; the rules are rules/airline-checkin.yaml, or the
 * file named by $NBA_FUZZ_RULES.
 *
 * Checked for every frame: a response comes back; the hand-written encoder
 * writes exactly protobuf-c's bytes; the frame decodes; it echoes the
 * request's id when the request decoded and is bad_request (ending the
 * connection) when it did not; a decision, and an explanation's decision,
 * names the ruleset serving and the customer asked about, known exactly for
 * the stored customers; an explain request without a contact event is
 * bad_request; a ping answers with the ruleset serving, a reload with what
 * serves after it; an incident report or resolution is acknowledged for the
 * incident it names, or refused; the store never reads as unavailable. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "decider.h"
#include "frame.h"
#include "fuzz_util.h"
#include "log.h"
#include "nba.pb-c.h"
#include "rules_live.h"
#include "store.h"
#include "wire.h"

#ifndef NBA_FUZZ_RULES_DEFAULT
#define NBA_FUZZ_RULES_DEFAULT "rules/airline-checkin.yaml"
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char db_dir[256];
static store *db;
static rules_live *rules;
static decider *dec;
static char serving_id[256];
static arena check_arena; /* the harness's own decoding, apart from the decider's */

/* 2026-11-20T10:00:00Z: the incidents are this many days before it. */
#define BASE_MS 1795168800000LL
#define DAY_MS  86400000LL

typedef struct seed_customer {
    const char *id, *name, *tier, *language;
    double ltv, predicted;
    const char *home_airport, *miles;
} seed_customer;

static const seed_customer seed_customers[] = {
    {"C1001", "Giulia Rossi", "platinum", "it", 86500, 48000, "FCO", "120000"},
    {"C1030", "陳美玲", "gold", "zh-Hant", 30500, 41000, "TPE", "52000"},
    {"C1040", "王秀英", "silver", "zh-CN", 1200, 9000, "PEK", "7"},
    {"C2002", "Tom Baker", "none", "en", 180, 350, "", "n/a"},
};

typedef struct seed_incident {
    const char *id, *customer_id, *kind;
    int severity, age_days;
    bool resolved;
    const char *flight, *note;
} seed_incident;

static const seed_incident seed_incidents[] = {
    {"INC-1", "C1001", "ife_broken", 3, 10, false, "AZ611", "Seat 32C, screen dead"},
    {"INC-2", "C1001", "delay", 2, 400, true, "AZ610", ""},
    {"INC-3", "C1030", "lost_baggage", 2, 30, false, "BR87", "bag found after 3 days"},
    {"INC-4", "C1040", "unknown_kind", 5, 1, false, "", ""},
};

static void cleanup(void)
{
    decider_free(dec);
    if (rules) {
        rules_live_unregister_thread();
        rules_live_free(rules);
    }
    store_close(db);
    arena_destroy(&check_arena);
    if (db_dir[0])
        fuzz_rmdir(db_dir);
}

static void put_customer(store_txn *t, const seed_customer *s)
{
    Nba__V1__Customer c;
    Nba__V1__Attribute attrs[2], *ptrs[2] = {&attrs[0], &attrs[1]};
    nba__v1__customer__init(&c);
    c.customer_id = (char *)s->id;
    c.name = (char *)s->name;
    c.tier = (char *)s->tier;
    c.language = (char *)s->language;
    c.lifetime_value = s->ltv;
    c.predicted_ltv = s->predicted;
    /* Sorted by name, as the loader stores them. */
    nba__v1__attribute__init(&attrs[0]);
    attrs[0].name = "home_airport";
    attrs[0].text = (char *)s->home_airport;
    nba__v1__attribute__init(&attrs[1]);
    attrs[1].name = "miles";
    attrs[1].text = (char *)s->miles;
    char *end;
    attrs[1].number = strtod(s->miles, &end);
    attrs[1].has_number = *s->miles && *end == '\0';
    c.attributes = ptrs;
    c.n_attributes = 2;
    nba_error err;
    if (store_txn_put_customer(t, &c, &err) != 0)
        fuzz_fail("cannot store a customer: %s", err.msg);
}

static void put_incident(store_txn *t, const seed_incident *s)
{
    Nba__V1__Incident inc;
    nba__v1__incident__init(&inc);
    inc.incident_id = (char *)s->id;
    inc.customer_id = (char *)s->customer_id;
    inc.kind = (char *)s->kind;
    inc.severity = s->severity;
    inc.occurred_at_ms = BASE_MS - s->age_days * DAY_MS;
    inc.resolved = s->resolved;
    inc.flight = (char *)s->flight;
    inc.note = (char *)s->note;
    nba_error err;
    if (store_txn_put_incident(t, &inc, &err) != 0)
        fuzz_fail("cannot store an incident: %s", err.msg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    nba_error err = {{0}};
    log_set_level(LOG_WARN); /* not a line per reload request */
    if (arena_init(&check_arena, 4096) != 0)
        fuzz_fail("out of memory");
    if (fuzz_mkdtemp(db_dir, sizeof db_dir, "fuzz_request") != 0)
        fuzz_fail("cannot create a scratch directory");
    atexit(cleanup);

    if (store_open(db_dir, STORE_CREATE, (size_t)16 << 20, 0, &db, &err) != 0)
        fuzz_fail("%s", err.msg);
    store_txn *t;
    if (store_txn_begin(db, &t, &err) != 0)
        fuzz_fail("%s", err.msg);
    for (size_t i = 0; i < sizeof seed_customers / sizeof seed_customers[0]; i++)
        put_customer(t, &seed_customers[i]);
    for (size_t i = 0; i < sizeof seed_incidents / sizeof seed_incidents[0]; i++)
        put_incident(t, &seed_incidents[i]);
    if (store_txn_commit(t, &err) != 0)
        fuzz_fail("%s", err.msg);

    const char *path = getenv("NBA_FUZZ_RULES");
    if (!path || !*path)
        path = NBA_FUZZ_RULES_DEFAULT;
    if (rules_live_new(path, &rules, &err) != 0)
        fuzz_fail("cannot load the rules (set NBA_FUZZ_RULES): %s", err.msg);
    rules_live_register_thread();
    rules_live_id(rules, serving_id, sizeof serving_id);
    if (decider_new(db, rules, &dec, &err) != 0)
        fuzz_fail("%s", err.msg);
    return 0;
}

static bool known_customer(const char *id)
{
    for (size_t i = 0; i < sizeof seed_customers / sizeof seed_customers[0]; i++)
        if (strcmp(seed_customers[i].id, id) == 0)
            return true;
    return false;
}

static void check_decision(const Nba__V1__Decision *d, const Nba__V1__ContactEvent *ev)
{
    FUZZ_CHECK(d->ruleset && *d->ruleset, "a decision without its ruleset");
    FUZZ_CHECK(strcmp(d->ruleset, serving_id) == 0, "a decision by '%s', serving '%s'", d->ruleset,
               serving_id);
    FUZZ_CHECK(strcmp(d->customer_id, ev->customer_id) == 0,
               "a decision for another customer than the one asked about");
    FUZZ_CHECK(d->known == known_customer(ev->customer_id), "known=%d for customer '%s'",
               (int)d->known, ev->customer_id);
    FUZZ_CHECK(*d->language, "a decision without a language");
    for (size_t i = 0; i < d->n_actions; i++)
        FUZZ_CHECK(*d->actions[i]->type && *d->actions[i]->rule_id,
                   "an action without its type or rule");
}

/* An acknowledgment names the incident the request named. */
static void check_incident_ack(const Nba__V1__IncidentAck *ack, const Nba__V1__Request *req)
{
    const char *customer_id, *incident_id;
    if (req->body_case == NBA__V1__REQUEST__BODY_REPORT_INCIDENT) {
        const Nba__V1__Incident *inc = req->report_incident->incident;
        FUZZ_CHECK(inc != NULL, "a report without its incident was acknowledged");
        customer_id = inc->customer_id;
        incident_id = inc->incident_id;
    } else {
        customer_id = req->resolve_incident->customer_id;
        incident_id = req->resolve_incident->incident_id;
        FUZZ_CHECK(!ack->created, "resolving an incident acknowledged it as created");
    }
    FUZZ_CHECK(strcmp(ack->customer_id, customer_id) == 0 &&
                   strcmp(ack->incident_id, incident_id) == 0,
               "an acknowledgment for incident '%s' of '%s', asked about '%s' of '%s'",
               ack->incident_id, ack->customer_id, incident_id, customer_id);
}

/* Packs resp as nbad sends it (wire_response_pack), checks that those are
 * the bytes protobuf-c writes (frame_pack), then decodes the frame as a
 * client would. */
static const Nba__V1__Response *send_and_receive(const Nba__V1__Response *resp)
{
    size_t size = frame_packed_size(&resp->base);
    uint8_t *out = arena_alloc(&check_arena, size);
    FUZZ_CHECK(out != NULL, "out of memory");
    size_t written = frame_pack(&resp->base, out);
    FUZZ_CHECK(written == size, "frame_pack wrote %zu bytes of %zu", written, size);

    wire_plan plan;
    size_t fast_size = wire_response_size(resp, &check_arena, &plan);
    FUZZ_CHECK(fast_size == size, "wire_response_size says %zu bytes, frame_packed_size %zu",
               fast_size, size);
    uint8_t *fast = arena_alloc(&check_arena, fast_size);
    FUZZ_CHECK(fast != NULL, "out of memory");
    FUZZ_CHECK(wire_response_pack(resp, &plan, fast) == fast_size,
               "wire_response_pack wrote another size than it measured");
    FUZZ_CHECK(memcmp(fast, out, size) == 0,
               "wire_response_pack and frame_pack write different bytes");
    uint32_t body_len = 0;
    FUZZ_CHECK(frame_cut(out, written, UINT32_MAX, &body_len) == FRAME_READY &&
                   body_len == written - FRAME_HEADER_SIZE,
               "a response frame does not cut whole");
    Nba__V1__Response *got = nba__v1__response__unpack(arena_pb_allocator(&check_arena), body_len,
                                                       out + FRAME_HEADER_SIZE);
    FUZZ_CHECK(got != NULL, "a response frame does not decode");
    FUZZ_CHECK(got->id == resp->id && got->body_case == resp->body_case,
               "a response decodes differently from what was packed");
    return got;
}

/* Answers one frame body; returns false when the connection ends. */
static bool answer(const uint8_t *body, uint32_t len, bool *reloaded)
{
    arena_reset(&check_arena);
    const Nba__V1__Request *req =
        nba__v1__request__unpack(arena_pb_allocator(&check_arena), len, body);
    /* One reload per input, and the stream ends at a second one, as if the
     * client had gone: each reload compiles the whole rule file again (ms
     * under ASan), and as every extra one raises the compiler's hit counts,
     * libFuzzer would otherwise breed streams of reloads and crawl. */
    if (req && req->body_case == NBA__V1__REQUEST__BODY_RELOAD) {
        if (*reloaded)
            return false;
        *reloaded = true;
    }

    Nba__V1__Response *resp = NULL;
    int rc = decider_handle(dec, body, len, &resp);
    FUZZ_CHECK(resp != NULL, "decider_handle gave no response (rc %d)", rc);
    const Nba__V1__Response *got = send_and_receive(resp);

    if (!req) {
        FUZZ_CHECK(rc == -EBADMSG, "a body that does not decode was answered with rc %d", rc);
        FUZZ_CHECK(got->body_case == NBA__V1__RESPONSE__BODY_ERROR &&
                       strcmp(got->error->code, "bad_request") == 0,
                   "a body that does not decode was not answered bad_request");
        return false;
    }
    FUZZ_CHECK(rc == 0, "a request that decodes was answered with rc %d", rc);
    FUZZ_CHECK(got->id == req->id, "response id %llu for request id %llu",
               (unsigned long long)got->id, (unsigned long long)req->id);
    FUZZ_CHECK(got->body_case != NBA__V1__RESPONSE__BODY__NOT_SET, "a response without a body");
    if (got->body_case == NBA__V1__RESPONSE__BODY_ERROR) {
        const char *code = got->error->code;
        FUZZ_CHECK(*code, "an error without a code");
        /* The store is healthy and memory plentiful: these mean a bug. */
        FUZZ_CHECK(strcmp(code, "unavailable") != 0 && strcmp(code, "internal") != 0,
                   "error '%s': %s", code, got->error->message);
    }
    switch (req->body_case) {
    case NBA__V1__REQUEST__BODY_CONTACT:
        FUZZ_CHECK(got->body_case == NBA__V1__RESPONSE__BODY_DECISION,
                   "a contact event was not answered with a decision");
        check_decision(got->decision, req->contact);
        break;
    case NBA__V1__REQUEST__BODY_EXPLAIN:
        if (req->explain->contact) {
            FUZZ_CHECK(got->body_case == NBA__V1__RESPONSE__BODY_EXPLANATION &&
                           got->explanation->decision,
                       "an explain request was not answered with an explanation");
            check_decision(got->explanation->decision, req->explain->contact);
        } else {
            FUZZ_CHECK(got->body_case == NBA__V1__RESPONSE__BODY_ERROR &&
                           strcmp(got->error->code, "bad_request") == 0,
                       "an explain request without a contact event was not refused");
        }
        break;
    case NBA__V1__REQUEST__BODY_REPORT_INCIDENT:
    case NBA__V1__REQUEST__BODY_RESOLVE_INCIDENT:
        /* Acknowledged for the incident named, or refused (a server that
         * does not store reports answers unsupported). */
        if (got->body_case == NBA__V1__RESPONSE__BODY_INCIDENT)
            check_incident_ack(got->incident, req);
        else
            FUZZ_CHECK(got->body_case == NBA__V1__RESPONSE__BODY_ERROR,
                       "an incident request was answered with body %d", (int)got->body_case);
        break;
    case NBA__V1__REQUEST__BODY_RELOAD:
        /* The rule file may have been edited meanwhile: what serves now is
         * what the reload says. */
        FUZZ_CHECK(got->body_case == NBA__V1__RESPONSE__BODY_RELOAD,
                   "a reload request was not answered with its result");
        rules_live_id(rules, serving_id, sizeof serving_id);
        FUZZ_CHECK(strcmp(got->reload->ruleset, serving_id) == 0,
                   "a reload reports '%s' serving, '%s' serves", got->reload->ruleset, serving_id);
        break;
    case NBA__V1__REQUEST__BODY_PING:
        FUZZ_CHECK(got->body_case == NBA__V1__RESPONSE__BODY_PONG &&
                       strcmp(got->pong->ruleset, serving_id) == 0,
                   "a ping was not answered with a pong naming the ruleset serving");
        break;
    default:
        break;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    bool reloaded = false;
    for (;;) {
        uint32_t len = 0;
        frame_status st = frame_cut(data + pos, size - pos, FRAME_DEFAULT_MAX, &len);
        if (st == FRAME_INCOMPLETE)
            break;
        if (st == FRAME_TOO_LARGE) {
            /* Answered from the header alone, then the connection ends. */
            Nba__V1__Response *resp =
                decider_error(dec, 0, "frame_too_large", "request frame too large");
            FUZZ_CHECK(resp != NULL, "decider_error gave no response");
            arena_reset(&check_arena);
            send_and_receive(resp);
            break;
        }
        if (!answer(data + pos + FRAME_HEADER_SIZE, len, &reloaded))
            break;
        pos += FRAME_HEADER_SIZE + (size_t)len;
    }
    arena_reset(&check_arena);
    return 0;
}
