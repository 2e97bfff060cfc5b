/* Unit tests of the stored-record decoders (include/record.h), against
 * protobuf-c's generated unpack as the reference: the same messages from
 * the same bytes, for complete records, defaults, unknown fields, repeated
 * values, every truncation and every single-byte corruption of a record. */
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
#include "record.h"

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

static void assert_customer_equal(const Nba__V1__Customer *want, const Nba__V1__Customer *got)
{
    assert_string_equal(got->customer_id, want->customer_id);
    assert_string_equal(got->name, want->name);
    assert_string_equal(got->tier, want->tier);
    assert_memory_equal(&got->lifetime_value, &want->lifetime_value, sizeof(double)); /* NaN too */
    assert_memory_equal(&got->predicted_ltv, &want->predicted_ltv, sizeof(double));
    assert_string_equal(got->language, want->language);
    assert_int_equal(got->n_attributes, want->n_attributes);
    for (size_t i = 0; i < want->n_attributes; i++) {
        assert_string_equal(got->attributes[i]->name, want->attributes[i]->name);
        assert_string_equal(got->attributes[i]->text, want->attributes[i]->text);
        assert_int_equal(got->attributes[i]->has_number, want->attributes[i]->has_number);
        assert_memory_equal(&got->attributes[i]->number, &want->attributes[i]->number,
                            sizeof(double));
    }
    assert_ptr_equal(got->base.descriptor, &nba__v1__customer__descriptor);
}

static void assert_incident_equal(const Nba__V1__Incident *want, const Nba__V1__Incident *got)
{
    assert_string_equal(got->incident_id, want->incident_id);
    assert_string_equal(got->customer_id, want->customer_id);
    assert_string_equal(got->kind, want->kind);
    assert_int_equal(got->severity, want->severity);
    assert_int_equal(got->occurred_at_ms, want->occurred_at_ms);
    assert_string_equal(got->flight, want->flight);
    assert_int_equal(got->resolved, want->resolved);
    assert_string_equal(got->note, want->note);
    assert_string_equal(got->recovered_by, want->recovered_by);
    assert_int_equal(got->recovered_at_ms, want->recovered_at_ms);
    assert_ptr_equal(got->base.descriptor, &nba__v1__incident__descriptor);
}

static void assert_history_equal(const Nba__V1__HistoryEntry *want,
                                 const Nba__V1__HistoryEntry *got)
{
    assert_string_equal(got->customer_id, want->customer_id);
    assert_int_equal(got->at_ms, want->at_ms);
    assert_int_equal(got->channel, want->channel);
    assert_string_equal(got->touchpoint, want->touchpoint);
    assert_string_equal(got->action, want->action);
    assert_string_equal(got->rule_id, want->rule_id);
    assert_string_equal(got->incident_id, want->incident_id);
    assert_int_equal(got->n_params, want->n_params);
    for (size_t i = 0; i < want->n_params; i++) {
        assert_string_equal(got->params[i]->key, want->params[i]->key);
        assert_string_equal(got->params[i]->value, want->params[i]->value);
        assert_ptr_equal(got->params[i]->base.descriptor, want->params[i]->base.descriptor);
    }
    assert_int_equal(got->n_context, want->n_context);
    for (size_t i = 0; i < want->n_context; i++) {
        assert_string_equal(got->context[i]->key, want->context[i]->key);
        assert_string_equal(got->context[i]->value, want->context[i]->value);
        assert_ptr_equal(got->context[i]->base.descriptor, want->context[i]->base.descriptor);
    }
    assert_ptr_equal(got->base.descriptor, &nba__v1__history_entry__descriptor);
}

/* Decodes bytes both ways. What protobuf-c refuses is refused; what both
 * accept has the same fields. With `strict`, what protobuf-c accepts must
 * be accepted too. Corrupted records are checked without it: protobuf-c
 * takes a bool of any wire type (a length-delimited has_number, say) where
 * the decoder refuses a known field of the wrong wire type. */
static void check_customer(const uint8_t *buf, size_t len, bool strict)
{
    Nba__V1__Customer *want = nba__v1__customer__unpack(NULL, len, buf), *got = NULL;
    arena_reset(&A);
    int rc = record_decode_customer(buf, len, &A, &got);
    if (!want) {
        assert_int_equal(rc, -EBADMSG);
        return;
    }
    if (strict || rc == 0) {
        assert_int_equal(rc, 0);
        assert_customer_equal(want, got);
    } else {
        assert_int_equal(rc, -EBADMSG);
    }
    nba__v1__customer__free_unpacked(want, NULL);
}

static void check_incident(const uint8_t *buf, size_t len, bool strict)
{
    Nba__V1__Incident *want = nba__v1__incident__unpack(NULL, len, buf), *got = NULL;
    arena_reset(&A);
    int rc = record_decode_incident(buf, len, &A, &got);
    if (!want) {
        assert_int_equal(rc, -EBADMSG);
        return;
    }
    if (strict || rc == 0) {
        assert_int_equal(rc, 0);
        assert_incident_equal(want, got);
    } else {
        assert_int_equal(rc, -EBADMSG);
    }
    nba__v1__incident__free_unpacked(want, NULL);
}

static void check_history(const uint8_t *buf, size_t len, bool strict)
{
    Nba__V1__HistoryEntry *want = nba__v1__history_entry__unpack(NULL, len, buf), *got = NULL;
    arena_reset(&A);
    int rc = record_decode_history(buf, len, &A, &got);
    if (!want) {
        assert_int_equal(rc, -EBADMSG);
        return;
    }
    if (strict || rc == 0) {
        assert_int_equal(rc, 0);
        assert_history_equal(want, got);
    } else {
        assert_int_equal(rc, -EBADMSG);
    }
    nba__v1__history_entry__free_unpacked(want, NULL);
}

static void check_history_bytes(const uint8_t *buf, size_t len)
{
    check_history(buf, len, true);
}

static void check_customer_bytes(const uint8_t *buf, size_t len)
{
    check_customer(buf, len, true);
}

static void check_incident_bytes(const uint8_t *buf, size_t len)
{
    check_incident(buf, len, true);
}

static size_t pack_customer(uint8_t *buf, size_t cap)
{
    Nba__V1__Attribute a1 = NBA__V1__ATTRIBUTE__INIT, a2 = NBA__V1__ATTRIBUTE__INIT,
                       a3 = NBA__V1__ATTRIBUTE__INIT;
    Nba__V1__Attribute *attrs[] = {&a1, &a2, &a3};
    a1.name = "birth_date";
    a1.text = "1985-07-06";
    a2.name = "email_opt_in";
    a2.text = "1";
    a2.has_number = 1;
    a2.number = 1;
    a3.name = "home_airport";
    a3.text = "FCO";
    Nba__V1__Customer c = NBA__V1__CUSTOMER__INIT;
    c.customer_id = "C0000042";
    c.name = "陳美玲 \"Mei\"";
    c.tier = "platinum";
    c.lifetime_value = 81000.25;
    c.predicted_ltv = -0.5;
    c.language = "zh-Hant";
    c.n_attributes = 3;
    c.attributes = attrs;
    size_t n = nba__v1__customer__get_packed_size(&c);
    assert_true(n <= cap);
    return nba__v1__customer__pack(&c, buf);
}

static size_t pack_incident(uint8_t *buf, size_t cap, int32_t severity)
{
    Nba__V1__Incident inc = NBA__V1__INCIDENT__INIT;
    inc.incident_id = "INC-7";
    inc.customer_id = "C0000042";
    inc.kind = "ife_broken";
    inc.severity = severity;
    inc.occurred_at_ms = 1794904200000;
    inc.flight = "AZ611";
    inc.resolved = 1;
    inc.note = "Seat 32C, screen dead for the whole flight";
    size_t n = nba__v1__incident__get_packed_size(&inc);
    assert_true(n <= cap);
    return nba__v1__incident__pack(&inc, buf);
}

/* An upgrade given at the kiosk: two params, three context entries. */
static size_t pack_history(uint8_t *buf, size_t cap, int64_t at_ms)
{
    Nba__V1__HistoryEntry__ParamsEntry p1 = NBA__V1__HISTORY_ENTRY__PARAMS_ENTRY__INIT,
                                       p2 = NBA__V1__HISTORY_ENTRY__PARAMS_ENTRY__INIT;
    Nba__V1__HistoryEntry__ParamsEntry *params[] = {&p1, &p2};
    p1.key = "cabin";
    p1.value = "F";
    p2.key = "note";
    p2.value = "";
    Nba__V1__HistoryEntry__ContextEntry c1 = NBA__V1__HISTORY_ENTRY__CONTEXT_ENTRY__INIT,
                                        c2 = NBA__V1__HISTORY_ENTRY__CONTEXT_ENTRY__INIT,
                                        c3 = NBA__V1__HISTORY_ENTRY__CONTEXT_ENTRY__INIT;
    Nba__V1__HistoryEntry__ContextEntry *context[] = {&c1, &c2, &c3};
    c1.key = "flight";
    c1.value = "AZ611";
    c2.key = "cabin";
    c2.value = "Y";
    c3.key = "booking";
    c3.value = "QX7 K2P";
    Nba__V1__HistoryEntry h = NBA__V1__HISTORY_ENTRY__INIT;
    h.customer_id = "C0000042";
    h.at_ms = at_ms;
    h.channel = NBA__V1__CHANNEL__KIOSK;
    h.touchpoint = "checkin";
    h.action = "upgrade";
    h.rule_id = "recovery-upgrade";
    h.incident_id = "INC-7";
    h.n_params = 2;
    h.params = params;
    h.n_context = 3;
    h.context = context;
    size_t n = nba__v1__history_entry__get_packed_size(&h);
    assert_true(n <= cap);
    return nba__v1__history_entry__pack(&h, buf);
}

static void complete_records_decode_like_protobuf_c(void **state)
{
    (void)state;
    uint8_t buf[512];
    check_customer_bytes(buf, pack_customer(buf, sizeof buf));
    check_incident_bytes(buf, pack_incident(buf, sizeof buf, 3));
    check_incident_bytes(buf, pack_incident(buf, sizeof buf, -2)); /* ten-byte varint */
    check_history_bytes(buf, pack_history(buf, sizeof buf, 1794904200000));
    check_history_bytes(buf, pack_history(buf, sizeof buf, -1));
}

static void empty_record_has_the_defaults(void **state)
{
    (void)state;
    Nba__V1__Customer *c = NULL;
    Nba__V1__Incident *i = NULL;
    assert_int_equal(record_decode_customer((const uint8_t *)"", 0, &A, &c), 0);
    assert_string_equal(c->customer_id, "");
    assert_int_equal(c->n_attributes, 0);
    assert_null(c->attributes);
    assert_int_equal(record_decode_incident((const uint8_t *)"", 0, &A, &i), 0);
    assert_string_equal(i->note, "");
    assert_int_equal(i->severity, 0);
    check_customer_bytes((const uint8_t *)"", 0);
    Nba__V1__HistoryEntry *h = NULL;
    assert_int_equal(record_decode_history((const uint8_t *)"", 0, &A, &h), 0);
    assert_string_equal(h->action, "");
    assert_int_equal(h->n_params, 0);
    assert_null(h->params);
    assert_int_equal(h->n_context, 0);
    assert_null(h->context);
    check_history_bytes((const uint8_t *)"", 0);
}

/* Fields a newer loader might write, of every wire type, and a field given
 * twice (the last value wins). */
static void unknown_and_repeated_fields(void **state)
{
    (void)state;
    uint8_t buf[600];
    size_t n = pack_customer(buf, 500);
    static const uint8_t extra[] = {
        0x78, 0x96, 0x01,                               /* 15: varint 150 */
        0x81, 0x01, 1,    2,    3,   4,   5,   6, 7, 8, /* 16: fixed64 */
        0x8a, 0x01, 0x03, 'a',  'b', 'c',               /* 17: 3 bytes */
        0x95, 0x01, 1,    2,    3,   4,                 /* 18: fixed32 */
        0x1a, 0x04, 'g',  'o',  'l', 'd',               /* 3: tier again, "gold" */
        0x3a, 0x05, 0x0a, 0x03, 'z', 'z', 'z',          /* 7: a fourth attribute */
    };
    memcpy(buf + n, extra, sizeof extra);
    check_customer_bytes(buf, n + sizeof extra);
    Nba__V1__Customer *c = NULL;
    assert_int_equal(record_decode_customer(buf, n + sizeof extra, &A, &c), 0);
    assert_string_equal(c->tier, "gold");
    assert_int_equal(c->n_attributes, 4);
    assert_string_equal(c->attributes[3]->name, "zzz");

    n = pack_history(buf, 500, 1794904200000);
    static const uint8_t more[] = {
        0x78, 0x96, 0x01,                             /* 15: varint 150 */
        0x2a, 0x04, 'm',  'i',  'l', 'e',             /* 5: action again, "mile" */
        0x42, 0x06, 0x0a, 0x01, 'x', 0x12, 0x01, 'y', /* 8: a third param, x=y */
        0x4a, 0x05, 0x0a, 0x01, 'k', 0x18, 0x07,      /* 9: key k, unknown field 3 */
    };
    memcpy(buf + n, more, sizeof more);
    check_history_bytes(buf, n + sizeof more);
    Nba__V1__HistoryEntry *h = NULL;
    assert_int_equal(record_decode_history(buf, n + sizeof more, &A, &h), 0);
    assert_string_equal(h->action, "mile");
    assert_int_equal(h->n_params, 3);
    assert_string_equal(h->params[2]->value, "y");
    assert_int_equal(h->n_context, 4);
    assert_string_equal(h->context[3]->key, "k");
    assert_string_equal(h->context[3]->value, "");
}

/* Every prefix, and every value of every byte: accepted exactly when
 * protobuf-c accepts, with the same fields. */
static void truncated_and_corrupted_records(void **state)
{
    (void)state;
    uint8_t good[512], buf[512];
    size_t n = pack_customer(good, sizeof good);
    for (size_t len = 0; len <= n; len++)
        check_customer_bytes(good, len);
    for (size_t i = 0; i < n; i++) {
        for (unsigned v = 0; v < 256; v++) {
            memcpy(buf, good, n);
            buf[i] = (uint8_t)v;
            check_customer(buf, n, false);
        }
    }
    n = pack_incident(good, sizeof good, 5);
    for (size_t len = 0; len <= n; len++)
        check_incident_bytes(good, len);
    for (size_t i = 0; i < n; i++) {
        for (unsigned v = 0; v < 256; v++) {
            memcpy(buf, good, n);
            buf[i] = (uint8_t)v;
            check_incident(buf, n, false);
        }
    }
    n = pack_history(good, sizeof good, 1794904200000);
    for (size_t len = 0; len <= n; len++)
        check_history_bytes(good, len);
    for (size_t i = 0; i < n; i++) {
        for (unsigned v = 0; v < 256; v++) {
            memcpy(buf, good, n);
            buf[i] = (uint8_t)v;
            check_history(buf, n, false);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(complete_records_decode_like_protobuf_c),
        cmocka_unit_test(empty_record_has_the_defaults),
        cmocka_unit_test(unknown_and_repeated_fields),
        cmocka_unit_test(truncated_and_corrupted_records),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
