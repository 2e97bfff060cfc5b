/* Unit tests of the base modules: arena, frame cutting, timestamps, errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arena.h"
#include "clock.h"
#include "error.h"
#include "frame.h"
#include "nba.pb-c.h"

static void arena_reuses_first_block(void **state)
{
    (void)state;
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    char *p1 = arena_alloc(&a, 100);
    assert_non_null(p1);
    assert_int_equal((uintptr_t)p1 % 16, 0);
    char *p2 = arena_alloc(&a, 1);
    assert_ptr_not_equal(p1, p2);
    assert_int_equal((uintptr_t)p2 % 16, 0);
    arena_reset(&a);
    assert_ptr_equal(arena_alloc(&a, 100), p1);
    arena_destroy(&a);
}

static void arena_grows_past_first_block(void **state)
{
    (void)state;
    arena a;
    assert_int_equal(arena_init(&a, 1024), 0);
    /* Larger than the block, and many small ones past it. */
    char *big = arena_alloc(&a, 10000);
    assert_non_null(big);
    memset(big, 'x', 10000);
    for (int i = 0; i < 1000; i++) {
        char *p = arena_calloc(&a, 40);
        assert_non_null(p);
        assert_int_equal(p[39], 0);
    }
    assert_true(a.used_total >= 10000 + 1000 * 48);
    arena_reset(&a);
    assert_int_equal(a.used_total, 0);
    assert_true(a.high_water >= 58000);
    char *s = arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    arena_destroy(&a);
}

/* arena_grow: the same array while it has room, a copy twice as large
 * holding the same elements when it has not, and a refusal of sizes that
 * would overflow. */
static void arena_grow_doubles_and_keeps(void **state)
{
    (void)state;
    arena a;
    assert_int_equal(arena_init(&a, 1024), 0);
    size_t cap = 0, n = 0;
    int *list = NULL;
    for (int i = 0; i < 100; i++) {
        size_t had = cap;
        int *grown = arena_grow(&a, list, n, &cap, sizeof *list);
        assert_non_null(grown);
        if (n < had && (grown != list || cap != had))
            fail_msg("moved with room left");
        list = grown;
        assert_true(n < cap);
        list[n++] = i * 7;
    }
    assert_int_equal(cap, 128); /* 4, 8, .., 128 */
    for (int i = 0; i < 100; i++)
        assert_int_equal(list[i], i * 7);
    size_t huge = SIZE_MAX / 4;
    assert_null(arena_grow(&a, list, huge, &huge, 8));
    arena_destroy(&a);
}

static void arena_backs_protobuf_unpack(void **state)
{
    (void)state;
    Nba__V1__Incident inc = NBA__V1__INCIDENT__INIT;
    inc.incident_id = "I-1";
    inc.customer_id = "C-1";
    inc.kind = "ife_broken";
    inc.severity = 3;
    uint8_t buf[256];
    size_t n = nba__v1__incident__pack(&inc, buf);

    arena a;
    assert_int_equal(arena_init(&a, 1024), 0);
    Nba__V1__Incident *copy = nba__v1__incident__unpack(arena_pb_allocator(&a), n, buf);
    assert_non_null(copy);
    assert_string_equal(copy->kind, "ife_broken");
    assert_int_equal(copy->severity, 3);
    assert_true(a.used_total > 0);
    arena_reset(&a);
    arena_destroy(&a);
}

static void frame_cut_cases(void **state)
{
    (void)state;
    uint8_t buf[16] = {0};
    uint32_t len = 0;
    struct {
        uint32_t announced;
        size_t avail;
        uint32_t max;
        frame_status want;
    } cases[] = {
        {5, 0, 100, FRAME_INCOMPLETE}, {5, 3, 100, FRAME_INCOMPLETE},
        {5, 8, 100, FRAME_INCOMPLETE}, {5, 9, 100, FRAME_READY},
        {0, 4, 100, FRAME_READY},      {101, 4, 100, FRAME_TOO_LARGE},
        {100, 104, 100, FRAME_READY},  {0xFFFFFFFFu, 4, 65536, FRAME_TOO_LARGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        frame_put_length(buf, cases[i].announced);
        assert_int_equal(frame_get_length(buf), cases[i].announced);
        assert_int_equal(frame_cut(buf, cases[i].avail, cases[i].max, &len), cases[i].want);
        if (cases[i].want != FRAME_INCOMPLETE)
            assert_int_equal(len, cases[i].announced);
    }
    frame_put_length(buf, 0x01020304u);
    assert_int_equal(buf[0], 1);
    assert_int_equal(buf[3], 4);
}

static void frame_pack_roundtrip(void **state)
{
    (void)state;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__Ping ping = NBA__V1__PING__INIT;
    req.id = 42;
    req.body_case = NBA__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    uint8_t out[64];
    size_t size = frame_packed_size(&req.base);
    assert_true(size <= sizeof out);
    assert_int_equal(frame_pack(&req.base, out), size);
    uint32_t body = 0;
    assert_int_equal(frame_cut(out, size, 100, &body), FRAME_READY);
    assert_int_equal(body + FRAME_HEADER_SIZE, size);
    Nba__V1__Request *back = nba__v1__request__unpack(NULL, body, out + FRAME_HEADER_SIZE);
    assert_non_null(back);
    assert_int_equal(back->id, 42);
    assert_int_equal(back->body_case, NBA__V1__REQUEST__BODY_PING);
    nba__v1__request__free_unpacked(back, NULL);
}

static void iso8601_cases(void **state)
{
    (void)state;
    struct {
        const char *text;
        int rc;
        int64_t ms;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"2026-11-01T08:30:00Z", 0, 1793521800000LL},
        {"2026-11-01T08:30:00.250Z", 0, 1793521800250LL},
        {"2026-11-01T10:30:00+02:00", 0, 1793521800000LL},
        {"2026-11-01", 0, 1793491200000LL},
        {"2024-02-29T00:00:00Z", 0, 1709164800000LL},
        {"2023-02-29T00:00:00Z", -EINVAL, 0},
        {"2026-13-01T00:00:00Z", -EINVAL, 0},
        {"2026-11-01T08:30:00", -EINVAL, 0},
        {"2026-11-01T25:30:00Z", -EINVAL, 0},
        {"yesterday", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"2026-11-01T08:30:00Zjunk", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -1;
        int rc = clock_parse_iso8601(cases[i].text, strlen(cases[i].text), &ms);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0)
            assert_int_equal(ms, cases[i].ms);
    }
}

static void error_set_and_prefix(void **state)
{
    (void)state;
    nba_error err;
    assert_int_equal(nba_error_set(&err, -EINVAL, "line %d: bad", 7), -EINVAL);
    nba_error_prefix(&err, "loading %s", "x.csv");
    assert_string_equal(err.msg, "loading x.csv: line 7: bad");
    assert_int_equal(nba_error_set(NULL, -ENOENT, "ignored"), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_reuses_first_block),
        cmocka_unit_test(arena_grows_past_first_block),
        cmocka_unit_test(arena_grow_doubles_and_keeps),
        cmocka_unit_test(arena_backs_protobuf_unpack),
        cmocka_unit_test(frame_cut_cases),
        cmocka_unit_test(frame_pack_roundtrip),
        cmocka_unit_test(iso8601_cases),
        cmocka_unit_test(error_set_and_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
