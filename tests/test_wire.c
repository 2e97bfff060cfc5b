/* Unit tests of the hand-written codec (include/wire.h) against protobuf-c
 * as the reference: requests decode to the same messages, decisions encode
 * to the same bytes, and a truncated or corrupted request is accepted,
 * refused or decoded exactly as protobuf-c would. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arena.h"
#include "frame.h"
#include "wire.h"

static arena A;

static int setup(void **state)
{
    (void)state;
    return arena_init(&A, 1 << 16);
}

static int teardown(void **state)
{
    (void)state;
    arena_destroy(&A);
    return 0;
}

/* protobuf-c keeps unknown fields and re-packs them; the codec skips them.
 * Hiding them on the reference makes the two comparable by bytes; they are
 * put back before the reference is freed, which frees them. */
static struct hidden {
    ProtobufCMessage *m;
    unsigned n;
} hidden[16];
static size_t n_hidden;

static void forget_unknown(ProtobufCMessage *m)
{
    if (m->n_unknown_fields) {
        assert_true(n_hidden < sizeof hidden / sizeof hidden[0]);
        hidden[n_hidden++] = (struct hidden){m, m->n_unknown_fields};
    }
    m->n_unknown_fields = 0;
}

static void restore_unknown(void)
{
    while (n_hidden > 0) {
        n_hidden--;
        hidden[n_hidden].m->n_unknown_fields = hidden[n_hidden].n;
    }
}

static void forget_unknown_contact(Nba__V1__ContactEvent *ev)
{
    forget_unknown(&ev->base);
    for (size_t i = 0; i < ev->n_context; i++)
        forget_unknown(&ev->context[i]->base);
}

static void forget_unknown_request(Nba__V1__Request *r)
{
    forget_unknown(&r->base);
    switch (r->body_case) {
    case NBA__V1__REQUEST__BODY_CONTACT:
        forget_unknown_contact(r->contact);
        break;
    case NBA__V1__REQUEST__BODY_PING:
        forget_unknown(&r->ping->base);
        break;
    case NBA__V1__REQUEST__BODY_STATUS:
        forget_unknown(&r->status->base);
        break;
    case NBA__V1__REQUEST__BODY_RELOAD:
        forget_unknown(&r->reload->base);
        break;
    case NBA__V1__REQUEST__BODY_EXPLAIN:
        forget_unknown(&r->explain->base);
        if (r->explain->contact)
            forget_unknown_contact(r->explain->contact);
        break;
    default:
        break;
    }
}

/* Decodes body with the codec and with protobuf-c: both refuse it, or both
 * give messages that pack to the same bytes. */
static void check_request(const uint8_t *body, size_t len)
{
    Nba__V1__Request *want = nba__v1__request__unpack(NULL, len, body);
    arena_reset(&A);
    Nba__V1__Request *got = wire_decode_request(body, len, &A);
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    /* The codec keeps no unknown fields, but protobuf-c, which it leaves
     * unusual bodies to, does (a contact's fields read as an explain
     * request's). */
    forget_unknown_request(got);
    forget_unknown_request(want);
    size_t wn = nba__v1__request__get_packed_size(want);
    size_t gn = nba__v1__request__get_packed_size(got);
    assert_int_equal(gn, wn);
    uint8_t *wb = malloc(wn + 1), *gb = malloc(gn + 1);
    assert_non_null(wb);
    assert_non_null(gb);
    nba__v1__request__pack(want, wb);
    nba__v1__request__pack(got, gb);
    assert_memory_equal(gb, wb, wn);
    free(wb);
    free(gb);
    restore_unknown();
    nba__v1__request__free_unpacked(want, NULL);
}

static size_t pack_contact_request(uint8_t *buf, uint64_t id, int64_t at, int channel)
{
    Nba__V1__ContactEvent__ContextEntry e1 = NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT,
                                        e2 = NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT,
                                        e3 = NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT;
    Nba__V1__ContactEvent__ContextEntry *ctx[] = {&e1, &e2, &e3};
    e1.key = "cabin";
    e1.value = "Y";
    e2.key = "flight";
    e2.value = "AZ610";
    e3.key = "seat"; /* value left empty */
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    ev.customer_id = "C0000042";
    ev.channel = (Nba__V1__Channel)channel;
    ev.touchpoint = "checkin";
    ev.occurred_at_ms = at;
    ev.location = "FCO-K07";
    ev.language = "zh-Hant";
    ev.n_context = 3;
    ev.context = ctx;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
    req.contact = &ev;
    return nba__v1__request__pack(&req, buf);
}

static void requests_decode_like_protobuf_c(void **state)
{
    (void)state;
    uint8_t buf[1024];
    check_request(buf, pack_contact_request(buf, 7, 0, NBA__V1__CHANNEL__KIOSK));
    check_request(buf, pack_contact_request(buf, 0, -5, -3)); /* ten-byte varints */
    check_request(buf, pack_contact_request(buf, UINT64_MAX, INT64_MAX, 99));
    check_request((const uint8_t *)"", 0); /* no id, no body */

    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__Ping ping = NBA__V1__PING__INIT;
    Nba__V1__StatusRequest status = NBA__V1__STATUS_REQUEST__INIT;
    Nba__V1__ReloadRequest reload = NBA__V1__RELOAD_REQUEST__INIT;
    Nba__V1__ExplainRequest explain = NBA__V1__EXPLAIN_REQUEST__INIT;
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    req.id = 300;
    req.body_case = NBA__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    check_request(buf, nba__v1__request__pack(&req, buf));
    req.body_case = NBA__V1__REQUEST__BODY_STATUS;
    req.status = &status;
    check_request(buf, nba__v1__request__pack(&req, buf));
    req.body_case = NBA__V1__REQUEST__BODY_RELOAD;
    req.reload = &reload;
    check_request(buf, nba__v1__request__pack(&req, buf));
    ev.customer_id = "C1";
    explain.contact = &ev;
    req.body_case = NBA__V1__REQUEST__BODY_EXPLAIN;
    req.explain = &explain;
    check_request(buf, nba__v1__request__pack(&req, buf));
}

/* Unknown fields anywhere, a field given twice, two bodies (the last wins),
 * a body of the wrong wire type. */
static void unusual_requests(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t n = pack_contact_request(buf, 9, 0, 2);
    static const uint8_t unknown[] = {0x78, 0x05, 0x81, 0x01, 1,   2,    3,    4, 5, 6, 7, 8,
                                      0x8a, 0x01, 0x02, 'h',  'i', 0x95, 0x01, 1, 2, 3, 4};
    memcpy(buf + n, unknown, sizeof unknown);
    check_request(buf, n + sizeof unknown);
    static const uint8_t twice[] = {0x08, 0x01, 0x08, 0x02};
    check_request(twice, sizeof twice);
    static const uint8_t two_bodies[] = {0x12, 0x04, 0x0a, 0x02, 'C', '1', 0x1a, 0x00};
    check_request(two_bodies, sizeof two_bodies);
    static const uint8_t contact_again[] = {0x12, 0x04, 0x0a, 0x02, 'C', '1',
                                            0x12, 0x04, 0x1a, 0x02, 'x', 'y'};
    check_request(contact_again, sizeof contact_again);
    static const uint8_t body_as_varint[] = {0x10, 0x05};
    check_request(body_as_varint, sizeof body_as_varint);
    static const uint8_t ping_with_unknown[] = {0x1a, 0x03, 0x08, 0x96, 0x01};
    check_request(ping_with_unknown, sizeof ping_with_unknown);
    static const uint8_t context_entry_twice_key[] = {0x12, 0x0a, 0x3a, 0x08, 0x0a, 0x01, 'a',
                                                      0x0a, 0x01, 'b',  0x12, 0x01, 'c'};
    check_request(context_entry_twice_key, sizeof context_entry_twice_key);
}

static void truncated_and_corrupted_requests(void **state)
{
    (void)state;
    uint8_t good[512], buf[512];
    size_t n = pack_contact_request(good, 12345, 1794904200000, NBA__V1__CHANNEL__IVR);
    for (size_t len = 0; len <= n; len++)
        check_request(good, len);
    for (size_t i = 0; i < n; i++) {
        for (unsigned v = 0; v < 256; v++) {
            memcpy(buf, good, n);
            buf[i] = (uint8_t)v;
            check_request(buf, n);
        }
    }
}

/* A contact point that knows the passenger by a lookup key (fields 8 and
 * 9, customer_id empty): decoded here, to what protobuf-c decodes,
 * truncated or corrupted anywhere included. */
static void lookup_key_fields_decode_like_protobuf_c(void **state)
{
    (void)state;
    uint8_t good[512], buf[512];
    Nba__V1__ContactEvent__ContextEntry e = NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT;
    Nba__V1__ContactEvent__ContextEntry *ctx[] = {&e};
    e.key = "cabin";
    e.value = "Y";
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    ev.channel = NBA__V1__CHANNEL__KIOSK;
    ev.touchpoint = "checkin";
    ev.key_name = "booking_ref";
    ev.key_value = "X7K2QP";
    ev.n_context = 1;
    ev.context = ctx;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = 77;
    req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
    req.contact = &ev;
    size_t n = nba__v1__request__pack(&req, good);
    check_request(good, n);
    arena_reset(&A);
    Nba__V1__Request *got = wire_decode_request(good, n, &A);
    assert_non_null(got);
    assert_int_equal(got->body_case, NBA__V1__REQUEST__BODY_CONTACT);
    assert_string_equal(got->contact->customer_id, "");
    assert_string_equal(got->contact->key_name, "booking_ref");
    assert_string_equal(got->contact->key_value, "X7K2QP");
    for (size_t len = 0; len <= n; len++)
        check_request(good, len);
    for (size_t i = 0; i < n; i++) {
        for (unsigned v = 0; v < 256; v++) {
            memcpy(buf, good, n);
            buf[i] = (uint8_t)v;
            check_request(buf, n);
        }
    }

    /* With a customer_id too, and inside an explain request. */
    ev.customer_id = "C0000042";
    check_request(buf, nba__v1__request__pack(&req, buf));
    Nba__V1__ExplainRequest explain = NBA__V1__EXPLAIN_REQUEST__INIT;
    explain.contact = &ev;
    req.body_case = NBA__V1__REQUEST__BODY_EXPLAIN;
    req.explain = &explain;
    check_request(buf, nba__v1__request__pack(&req, buf));

    /* Given twice (the last wins), empty, or of the wrong wire type. */
    static const uint8_t twice[] = {0x12, 0x0b, 0x42, 0x01, 'a',  0x4a, 0x01,
                                    'b',  0x42, 0x01, 'c',  0x4a, 0x00};
    check_request(twice, sizeof twice);
    arena_reset(&A);
    got = wire_decode_request(twice, sizeof twice, &A);
    assert_non_null(got);
    assert_string_equal(got->contact->key_name, "c");
    assert_string_equal(got->contact->key_value, "");
    static const uint8_t as_varint[] = {0x12, 0x02, 0x40, 0x01};
    check_request(as_varint, sizeof as_varint);
}

/* Encodes resp both ways and compares the frames. */
static void check_response(const Nba__V1__Response *resp)
{
    size_t want_n = frame_packed_size(&resp->base);
    uint8_t *want = malloc(want_n), *got = malloc(want_n + 64);
    assert_non_null(want);
    assert_non_null(got);
    assert_int_equal(frame_pack(&resp->base, want), want_n);
    wire_plan plan;
    arena_reset(&A);
    assert_int_equal(wire_response_size(resp, &A, &plan), want_n);
    assert_int_equal(wire_response_pack(resp, &plan, got), want_n);
    assert_memory_equal(got, want, want_n);
    free(want);
    free(got);
}

static void decisions_encode_like_protobuf_c(void **state)
{
    (void)state;
    char long_text[700];
    memset(long_text, 'x', sizeof long_text - 1); /* lengths of two varint bytes */
    long_text[sizeof long_text - 1] = '\0';

    Nba__V1__Action__ParamsEntry p1 = NBA__V1__ACTION__PARAMS_ENTRY__INIT,
                                 p2 = NBA__V1__ACTION__PARAMS_ENTRY__INIT;
    Nba__V1__Action__ParamsEntry *params[] = {&p1, &p2};
    p1.key = "cabin";
    p1.value = "F";
    p2.key = "incident"; /* empty value: left out of the entry */
    Nba__V1__Action a1 = NBA__V1__ACTION__INIT, a2 = NBA__V1__ACTION__INIT,
                    a3 = NBA__V1__ACTION__INIT;
    Nba__V1__Action *actions[] = {&a1, &a2, &a3};
    a1.type = "upgrade";
    a1.rule_id = "recovery-upgrade";
    a1.n_params = 2;
    a1.params = params;
    a1.message = "Gentile Giulia Rossi, è un piacere. 陳美玲";
    a1.reason = long_text;
    a2.type = "apology_letter";
    a2.rule_id = "recovery-upgrade";
    a2.follow_up = 1;
    a3.type = NULL; /* every field at its default */
    a3.rule_id = NULL;
    a3.message = NULL;
    a3.reason = NULL;

    Nba__V1__Decision d = NBA__V1__DECISION__INIT;
    Nba__V1__Response resp = NBA__V1__RESPONSE__INIT;
    resp.body_case = NBA__V1__RESPONSE__BODY_DECISION;
    resp.decision = &d;
    check_response(&resp); /* id 0, an empty decision */

    d.customer_id = "C0000042";
    d.known = 1;
    d.language = "it";
    d.ruleset = "airline-checkin@1";
    d.n_actions = 3;
    d.actions = actions;
    for (uint64_t id = 1; id != 0 && id < UINT64_MAX / 3; id = id * 3 + 1) {
        resp.id = id;
        check_response(&resp);
    }
    resp.id = UINT64_MAX;
    check_response(&resp);
    d.known = 0;
    d.n_actions = 0;
    check_response(&resp);

    /* Other answers are protobuf-c's own. */
    Nba__V1__Pong pong = NBA__V1__PONG__INIT;
    pong.server = "nbad/0.1.0";
    pong.ruleset = "airline-checkin@1";
    resp.body_case = NBA__V1__RESPONSE__BODY_PONG;
    resp.pong = &pong;
    check_response(&resp);
    Nba__V1__Error error = NBA__V1__ERROR__INIT;
    error.code = "bad_request";
    resp.body_case = NBA__V1__RESPONSE__BODY_ERROR;
    resp.error = &error;
    check_response(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_decode_like_protobuf_c),
        cmocka_unit_test(unusual_requests),
        cmocka_unit_test(truncated_and_corrupted_requests),
        cmocka_unit_test(lookup_key_fields_decode_like_protobuf_c),
        cmocka_unit_test(decisions_encode_like_protobuf_c),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
