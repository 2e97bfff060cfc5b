/* Unit tests of the load generator's parts (loadtest/): the pre-encoded
 * request frames are exactly what protobuf-c packs, the response scanner
 * reads what protobuf-c writes and rejects broken bytes, the popularity
 * sampler has the promised shape, and customer ids match nbagen's. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "customer_id.h"
#include "frame.h"
#include "nba.pb-c.h"
#include "response_scan.h"
#include "workload.h"
#include "zipf.h"

/* ---- request frames ---- */

static Nba__V1__Request *unpack_frame(const uint8_t *frame, size_t n)
{
    uint32_t body = 0;
    assert_int_equal(frame_cut(frame, n, FRAME_DEFAULT_MAX, &body), FRAME_READY);
    assert_int_equal(FRAME_HEADER_SIZE + body, n);
    Nba__V1__Request *req = nba__v1__request__unpack(NULL, body, frame + FRAME_HEADER_SIZE);
    assert_non_null(req);
    return req;
}

static const char *context_value(const Nba__V1__ContactEvent *ev, const char *key)
{
    for (size_t i = 0; i < ev->n_context; i++)
        if (strcmp(ev->context[i]->key, key) == 0)
            return ev->context[i]->value;
    return NULL;
}

static void frames_are_what_protobuf_c_packs(void **state)
{
    (void)state;
    workload w;
    workload_defaults(&w);
    w.customers = 500;
    w.pool_size = 2000;
    w.unknown_ratio = 0.1;
    w.skew = 1.1;
    request_pool pool;
    assert_int_equal(workload_build(&w, &pool, NULL), 0);
    assert_int_equal(pool.count, 2000);

    static const uint64_t ids[] = {1, 127, 128, 300, 1ull << 35, UINT64_MAX};
    uint8_t *frame = malloc(pool.max_frame), *again = malloc(pool.max_frame + 64);
    size_t unknown = 0, channels[WORKLOAD_CHANNELS] = {0};
    for (size_t i = 0; i < pool.count; i++) {
        uint64_t id = ids[i % (sizeof ids / sizeof ids[0])];
        size_t n = workload_frame(&pool, i, id, frame);
        assert_true(n <= pool.max_frame);
        Nba__V1__Request *req = unpack_frame(frame, n);
        assert_true(req->id == id);
        assert_int_equal(req->body_case, NBA__V1__REQUEST__BODY_CONTACT);
        const Nba__V1__ContactEvent *ev = req->contact;

        /* Ids as nbagen writes them: C and 7 digits, 1..500; unknown ones
         * CX and digits. */
        const char *cid = ev->customer_id;
        if (strncmp(cid, "CX", 2) == 0) {
            unknown++;
            assert_int_equal(strlen(cid), 9);
        } else {
            assert_int_equal(strlen(cid), 8);
            assert_int_equal(cid[0], 'C');
            long num = strtol(cid + 1, NULL, 10);
            assert_true(num >= 1 && num <= 500);
        }
        assert_true(ev->channel == NBA__V1__CHANNEL__KIOSK ||
                    ev->channel == NBA__V1__CHANNEL__DESK || ev->channel == NBA__V1__CHANNEL__IVR);
        channels[ev->channel]++;
        assert_true(strlen(ev->touchpoint) > 0);
        assert_true(strlen(ev->location) > 0);
        assert_non_null(context_value(ev, "flight"));
        const char *cabin = context_value(ev, "cabin");
        assert_non_null(cabin);
        assert_non_null(strchr("YWJF", cabin[0]));

        /* protobuf-c packs the same request into the same bytes. */
        size_t m = frame_pack(&req->base, again);
        assert_int_equal(m, n);
        assert_memory_equal(again, frame, n);
        nba__v1__request__free_unpacked(req, NULL);
    }
    /* 10% unknown and the 50/30/20 mix, give or take the draw. */
    assert_true(unknown > 120 && unknown < 280);
    assert_true(channels[NBA__V1__CHANNEL__KIOSK] > 850 &&
                channels[NBA__V1__CHANNEL__KIOSK] < 1150);
    assert_true(channels[NBA__V1__CHANNEL__IVR] > 300 && channels[NBA__V1__CHANNEL__IVR] < 500);
    free(frame);
    free(again);
    request_pool_free(&pool);
}

static void ping_pool_sends_pings(void **state)
{
    (void)state;
    workload w;
    workload_defaults(&w);
    w.ping = 1;
    request_pool pool;
    assert_int_equal(workload_build(&w, &pool, NULL), 0);
    uint8_t frame[64];
    assert_true(pool.max_frame <= sizeof frame);
    size_t n = workload_frame(&pool, 0, 99, frame);
    Nba__V1__Request *req = unpack_frame(frame, n);
    assert_int_equal(req->id, 99);
    assert_int_equal(req->body_case, NBA__V1__REQUEST__BODY_PING);
    nba__v1__request__free_unpacked(req, NULL);
    request_pool_free(&pool);
}

static void same_seed_same_pool(void **state)
{
    (void)state;
    workload w;
    workload_defaults(&w);
    w.pool_size = 500;
    request_pool a, b;
    assert_int_equal(workload_build(&w, &a, NULL), 0);
    assert_int_equal(workload_build(&w, &b, NULL), 0);
    assert_int_equal(a.offset[a.count], b.offset[b.count]);
    assert_memory_equal(a.bytes, b.bytes, a.offset[a.count]);
    request_pool_free(&a);
    w.seed = 2;
    assert_int_equal(workload_build(&w, &a, NULL), 0);
    assert_true(a.offset[a.count] != b.offset[b.count] ||
                memcmp(a.bytes, b.bytes, a.offset[a.count]) != 0);
    request_pool_free(&a);
    request_pool_free(&b);
}

static void mix_and_touchpoint_lists(void **state)
{
    (void)state;
    workload w;
    workload_defaults(&w);
    nba_error err;
    assert_int_equal(workload_parse_mix(&w, "Mobile=3,web=1", &err), 0);
    assert_int_equal(w.channel_weights[NBA__V1__CHANNEL__MOBILE], 3);
    assert_int_equal(w.channel_weights[NBA__V1__CHANNEL__WEB], 1);
    assert_int_equal(w.channel_weights[NBA__V1__CHANNEL__KIOSK], 0);
    char text[128];
    workload_describe_mix(&w, text, sizeof text);
    assert_string_equal(text, "mobile 75% web 25%");

    static const char *const bad[] = {"kiosk",   "teleport=1", "kiosk=0",  "",
                                      "kiosk=x", "=5",         "kiosk=-1", "channel_unspecified=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(workload_parse_mix(&w, bad[i], &err), -EINVAL);
        /* a rejected list leaves the mix as it was */
        assert_int_equal(w.channel_weights[NBA__V1__CHANNEL__MOBILE], 3);
    }

    assert_int_equal(workload_parse_touchpoints(&w, "boarding=1", &err), 0);
    w.pool_size = 100;
    request_pool pool;
    assert_int_equal(workload_build(&w, &pool, NULL), 0);
    uint8_t frame[1100];
    for (size_t i = 0; i < pool.count; i++) {
        Nba__V1__Request *req = unpack_frame(frame, workload_frame(&pool, i, 1, frame));
        assert_string_equal(req->contact->touchpoint, "boarding");
        assert_true(req->contact->channel == NBA__V1__CHANNEL__MOBILE ||
                    req->contact->channel == NBA__V1__CHANNEL__WEB);
        nba__v1__request__free_unpacked(req, NULL);
    }
    request_pool_free(&pool);
    assert_int_equal(workload_parse_touchpoints(&w, "checkin=1,checkin=2", &err), -EINVAL);
}

/* ---- response scan ---- */

static size_t pack_response(const Nba__V1__Response *r, uint8_t *out)
{
    return nba__v1__response__pack(r, out);
}

static void scan_reads_what_protobuf_c_writes(void **state)
{
    (void)state;
    uint8_t buf[1024];
    response_info info;

    Nba__V1__Response r = NBA__V1__RESPONSE__INIT;
    Nba__V1__Decision d = NBA__V1__DECISION__INIT;
    Nba__V1__Action a1 = NBA__V1__ACTION__INIT, a2 = NBA__V1__ACTION__INIT;
    Nba__V1__Action *actions[] = {&a1, &a2};
    a1.type = "upgrade";
    a2.type = "apology_letter";
    a2.follow_up = 1;
    d.customer_id = "C0000042";
    d.known = 1;
    d.language = "zh-Hant";
    d.actions = actions;
    d.n_actions = 2;
    d.ruleset = "airline-checkin@7";
    r.id = 1234567890123ull;
    r.body_case = NBA__V1__RESPONSE__BODY_DECISION;
    r.decision = &d;
    size_t n = pack_response(&r, buf);
    assert_int_equal(response_scan(buf, n, &info), 0);
    assert_true(info.id == 1234567890123ull);
    assert_int_equal(info.kind, RESPONSE_DECISION);
    assert_int_equal(info.known, 1);
    assert_int_equal(info.actions, 2);

    /* An unknown customer with no actions. */
    d.known = 0;
    d.n_actions = 0;
    n = pack_response(&r, buf);
    assert_int_equal(response_scan(buf, n, &info), 0);
    assert_int_equal(info.kind, RESPONSE_DECISION);
    assert_int_equal(info.known, 0);
    assert_int_equal(info.actions, 0);

    Nba__V1__Pong p = NBA__V1__PONG__INIT;
    p.server = "nbad/0.1.0";
    r.body_case = NBA__V1__RESPONSE__BODY_PONG;
    r.pong = &p;
    r.id = 7;
    n = pack_response(&r, buf);
    assert_int_equal(response_scan(buf, n, &info), 0);
    assert_int_equal(info.id, 7);
    assert_int_equal(info.kind, RESPONSE_PONG);

    Nba__V1__Error e = NBA__V1__ERROR__INIT;
    e.code = "bad_request";
    e.message = "no body";
    r.body_case = NBA__V1__RESPONSE__BODY_ERROR;
    r.error = &e;
    n = pack_response(&r, buf);
    assert_int_equal(response_scan(buf, n, &info), 0);
    assert_int_equal(info.kind, RESPONSE_ERROR);

    /* Fields a later server version adds are skipped. */
    static const uint8_t extra[] = {
        0x78, 0x96, 0x01,                          /* field 15, varint 150 */
        0x81, 0x01, 1,    2,   3,   4, 5, 6, 7, 8, /* field 16, fixed64 */
        0x8a, 0x01, 0x02, 'h', 'i',                /* field 17, 2 bytes */
        0x95, 0x01, 1,    2,   3,   4,             /* field 18, fixed32 */
    };
    memcpy(buf + n, extra, sizeof extra);
    assert_int_equal(response_scan(buf, n + sizeof extra, &info), 0);
    assert_int_equal(info.kind, RESPONSE_ERROR);
    assert_int_equal(info.id, 7);

    /* No fields at all: id 0, no body. */
    assert_int_equal(response_scan(buf, 0, &info), 0);
    assert_int_equal(info.id, 0);
    assert_int_equal(info.kind, RESPONSE_NONE);
}

static void scan_rejects_broken_bytes(void **state)
{
    (void)state;
    response_info info;
    static const struct {
        const char *what;
        uint8_t bytes[16];
        size_t len;
    } cases[] = {
        {"truncated varint", {0x08, 0x80}, 2},
        {"length past the end", {0x12, 0x05, 0x10, 0x01}, 4},
        {"field number 0", {0x00, 0x01}, 2},
        {"group wire type", {0x0b}, 1},
        {"reserved wire type", {0x0e, 0x00}, 2},
        {"id as bytes", {0x0a, 0x01, 0x00}, 3},
        {"decision as varint", {0x10, 0x01}, 2},
        {"truncated fixed64", {0x79, 1, 2, 3}, 4},
        {"varint over 10 bytes",
         {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
         12},
        {"broken decision inside", {0x12, 0x02, 0x10, 0x80}, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (response_scan(cases[i].bytes, cases[i].len, &info) != -EBADMSG)
            fail_msg("%s was accepted", cases[i].what);

    /* Every truncation of a real response is either a valid prefix or
     * rejected, never read past its end. */
    uint8_t buf[256];
    Nba__V1__Response r = NBA__V1__RESPONSE__INIT;
    Nba__V1__Decision d = NBA__V1__DECISION__INIT;
    d.customer_id = "C0000001";
    d.known = 1;
    r.id = 300;
    r.body_case = NBA__V1__RESPONSE__BODY_DECISION;
    r.decision = &d;
    size_t n = nba__v1__response__pack(&r, buf);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        int rc = response_scan(copy, cut, &info);
        assert_true(rc == 0 || rc == -EBADMSG);
        free(copy);
    }
}

/* ---- popularity and ids ---- */

static void zipf_has_the_promised_shape(void **state)
{
    (void)state;
    zipf z;
    rng r;
    rng_seed(&r, 11);
    assert_int_equal(zipf_init(&z, 0, 1), -EINVAL);
    assert_int_equal(zipf_init(&z, 10, -1), -EINVAL);
    assert_int_equal(zipf_init(&z, 10, NAN), -EINVAL);

    assert_int_equal(zipf_init(&z, 1, 1.2), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(zipf_next(&z, &r), 1);

    /* s = 0: uniform over 1..10. */
    assert_int_equal(zipf_init(&z, 10, 0), 0);
    unsigned counts[11] = {0};
    for (int i = 0; i < 100000; i++) {
        uint64_t k = zipf_next(&z, &r);
        assert_true(k >= 1 && k <= 10);
        counts[k]++;
    }
    for (int k = 1; k <= 10; k++)
        assert_true(counts[k] > 9000 && counts[k] < 11000);

    /* s = 1 over a million: the top 1% draw about two thirds, rank 1 about
     * 1/H(n) = 7% of the time, rank 2 half as often. */
    const uint64_t n = 1000000;
    assert_int_equal(zipf_init(&z, n, 1.0), 0);
    unsigned top = 0, first = 0, second = 0;
    const int draws = 200000;
    for (int i = 0; i < draws; i++) {
        uint64_t k = zipf_next(&z, &r);
        assert_true(k >= 1 && k <= n);
        top += k <= n / 100;
        first += k == 1;
        second += k == 2;
    }
    double harmonic = log((double)n) + 0.5772156649;
    assert_true(fabs((double)top / draws - 0.68) < 0.03);
    assert_true(fabs((double)first / draws - 1 / harmonic) < 0.01);
    assert_true(fabs((double)second / first - 0.5) < 0.06);
}

static void customer_ids_match_nbagen(void **state)
{
    (void)state;
    char id[CUSTOMER_ID_MAX];
    assert_int_equal(customer_id_width(1), 7);
    assert_int_equal(customer_id_width(9999999), 7);
    assert_int_equal(customer_id_width(10000000), 8);
    assert_int_equal(customer_id_width(123456789012ull), 12);
    assert_int_equal(customer_id_format(id, "C", 7, 42), 8);
    assert_string_equal(id, "C0000042");
    customer_id_format(id, "C", 8, 10000000);
    assert_string_equal(id, "C10000000");
    customer_id_format(id, "AZ-", 7, 123456789);
    assert_string_equal(id, "AZ-123456789");
    customer_id_format(id, "", 1, 0);
    assert_string_equal(id, "0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_are_what_protobuf_c_packs),
        cmocka_unit_test(ping_pool_sends_pings),
        cmocka_unit_test(same_seed_same_pool),
        cmocka_unit_test(mix_and_touchpoint_lists),
        cmocka_unit_test(scan_reads_what_protobuf_c_writes),
        cmocka_unit_test(scan_rejects_broken_bytes),
        cmocka_unit_test(zipf_has_the_promised_shape),
        cmocka_unit_test(customer_ids_match_nbagen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
