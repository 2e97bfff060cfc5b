/* Unit tests of the comparison peers' parts (loadtest/): RESP replies are cut
 * exactly at their end, whatever their nesting, and never before all their
 * bytes are there; the Redis peer's commands carry what the nbad requests of
 * the same pool carry; the ceiling server's request scan reads the id and
 * customer id protobuf-c writes and rejects broken bytes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frame.h"
#include "nba.pb-c.h"
#include "request_scan.h"
#include "resp.h"
#include "workload.h"

#define SHA "0123456789abcdef0123456789abcdef01234567"

/* ---- cutting replies ---- */

static resp_status cut(const char *text, resp_value *v)
{
    return resp_cut((const uint8_t *)text, strlen(text), 1u << 20, v);
}

static void whole_values_are_cut_at_their_end(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        char type;
        int64_t n;
    } cases[] = {
        {"+OK\r\n", '+', 0},
        {"+PONG\r\n", '+', 0},
        {"-ERR unknown command\r\n", '-', 0},
        {"-NOSCRIPT No matching script\r\n", '-', 0},
        {":0\r\n", ':', 0},
        {":-42\r\n", ':', -42},
        {":9223372036854775807\r\n", ':', INT64_MAX},
        {"$0\r\n\r\n", '$', 0},
        {"$-1\r\n", '$', -1},
        {"$5\r\nhello\r\n", '$', 5},
        {"$4\r\na\r\nb\r\n", '$', 4}, /* CRLF inside a bulk string is payload */
        {"*0\r\n", '*', 0},
        {"*-1\r\n", '*', -1},
        {"*2\r\n$1\r\na\r\n:1\r\n", '*', 2},
        {"*3\r\n*2\r\n+a\r\n*1\r\n:7\r\n$-1\r\n*0\r\n", '*', 3},
        {"*4\r\n$8\r\nC0000001\r\n:1\r\n$2\r\nen\r\n$17\r\nairline-checkin@1\r\n", '*', 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp_value v = {0};
        assert_int_equal(cut(cases[i].text, &v), RESP_READY);
        assert_int_equal(v.len, strlen(cases[i].text));
        assert_int_equal(v.type, cases[i].type);
        assert_int_equal(v.n, cases[i].n);
    }
}

static void every_prefix_is_incomplete(void **state)
{
    (void)state;
    const char *text = "*3\r\n$8\r\nC0000001\r\n:1\r\n*2\r\n$5\r\ngreet\r\n$0\r\n\r\n";
    size_t len = strlen(text);
    resp_value v;
    for (size_t n = 0; n < len; n++)
        assert_int_equal(resp_cut((const uint8_t *)text, n, 1u << 20, &v), RESP_INCOMPLETE);
    assert_int_equal(resp_cut((const uint8_t *)text, len, 1u << 20, &v), RESP_READY);
    assert_int_equal(v.len, len);
}

static void pipelined_replies_are_cut_one_by_one(void **state)
{
    (void)state;
    const char *text = "+PONG\r\n*2\r\n:1\r\n$2\r\nit\r\n-ERR no\r\n:5\r\n+PA";
    size_t len = strlen(text), pos = 0, count = 0;
    char types[8] = {0};
    resp_value v;
    while (resp_cut((const uint8_t *)text + pos, len - pos, 1u << 20, &v) == RESP_READY) {
        types[count++] = v.type;
        pos += v.len;
    }
    assert_int_equal(count, 4);
    assert_string_equal(types, "+*-:");
    assert_string_equal(text + pos, "+PA");
}

static void broken_or_too_large_values_are_malformed(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "!3\r\nabc\r\n",             /* a RESP3 type */
        "+OK\rX",                    /* CR not followed by LF */
        ":12a\r\n",                  /* not a number */
        ":\r\n",                     /* no digits */
        ":12345678901234567890\r\n", /* beyond an int64 */
        "$3\r\nabcd\r\n",            /* payload longer than announced */
        "$-2\r\n",                   /* lengths below -1 */
        "*-5\r\n",                   /* counts too */
        "*1\r\n?\r\n",               /* a bad element inside an array */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp_value v;
        assert_int_equal(cut(cases[i], &v), RESP_MALFORMED);
    }
    /* a value longer than the limit is given up on, complete or not */
    resp_value v;
    const char *big = "$10\r\n0123456789\r\n";
    assert_int_equal(resp_cut((const uint8_t *)big, strlen(big), 12, &v), RESP_MALFORMED);
    assert_int_equal(resp_cut((const uint8_t *)big, 8, 12, &v), RESP_INCOMPLETE);
    assert_int_equal(resp_cut((const uint8_t *)big, strlen(big), 17, &v), RESP_READY);
    const char *huge = "$999999999\r\n";
    assert_int_equal(resp_cut((const uint8_t *)huge, strlen(huge), 1u << 20, &v), RESP_MALFORMED);
}

/* ---- reading the peer's replies ---- */

static response_info decision(const char *text)
{
    resp_value v;
    assert_int_equal(cut(text, &v), RESP_READY);
    response_info info;
    resp_decision((const uint8_t *)text, &v, &info);
    return info;
}

static void decisions_errors_and_pongs_are_told_apart(void **state)
{
    (void)state;
    response_info i =
        decision("*6\r\n$8\r\nC0000001\r\n:1\r\n$2\r\nit\r\n$17\r\nairline-checkin@1\r\n"
                 "*7\r\n$7\r\nupgrade\r\n$16\r\nrecovery-upgrade\r\n$3\r\nmsg\r\n"
                 "$3\r\nwhy\r\n:0\r\n$5\r\ncabin\r\n$1\r\nF\r\n"
                 "*5\r\n$5\r\ngreet\r\n$8\r\ngreeting\r\n$2\r\nhi\r\n$0\r\n\r\n:0\r\n");
    assert_int_equal(i.kind, RESPONSE_DECISION);
    assert_int_equal(i.known, 1);
    assert_int_equal(i.actions, 2);
    assert_int_equal(i.id, 0);

    i = decision("*4\r\n$9\r\nCX0000001\r\n:0\r\n$2\r\nen\r\n$17\r\nairline-checkin@1\r\n");
    assert_int_equal(i.kind, RESPONSE_DECISION);
    assert_int_equal(i.known, 0);
    assert_int_equal(i.actions, 0);

    assert_int_equal(decision("-NOSCRIPT No matching script\r\n").kind, RESPONSE_ERROR);
    assert_int_equal(decision("+PONG\r\n").kind, RESPONSE_PONG);
    assert_int_equal(decision("+OK\r\n").kind, RESPONSE_NONE);
    assert_int_equal(decision(":1\r\n").kind, RESPONSE_NONE);
    assert_int_equal(decision("*3\r\n$1\r\na\r\n:1\r\n$2\r\nen\r\n").kind, RESPONSE_NONE);
    /* known must be an integer */
    assert_int_equal(decision("*4\r\n$1\r\na\r\n$1\r\n1\r\n$2\r\nen\r\n$1\r\nr\r\n").kind,
                     RESPONSE_NONE);
}

/* ---- commands ---- */

/* Splits a command (an array of bulk strings) into NUL-terminated arguments. */
static size_t split_command(const uint8_t *cmd, size_t len, char args[16][256])
{
    resp_value v;
    assert_int_equal(resp_cut(cmd, len, len, &v), RESP_READY);
    assert_int_equal(v.len, len);
    assert_int_equal(v.type, '*');
    const uint8_t *p = memchr(cmd, '\n', len) + 1;
    for (int64_t i = 0; i < v.n; i++) {
        resp_value arg;
        assert_int_equal(resp_cut(p, (size_t)(cmd + len - p), len, &arg), RESP_READY);
        assert_int_equal(arg.type, '$');
        assert_true(arg.n < 256);
        const uint8_t *data = memchr(p, '\n', arg.len) + 1;
        memcpy(args[i], data, (size_t)arg.n);
        args[i][arg.n] = '\0';
        p += arg.len;
    }
    return (size_t)v.n;
}

static void commands_are_arrays_of_bulk_strings(void **state)
{
    (void)state;
    const char *argv[] = {"SET", "k", "a\r\nb", ""};
    const size_t lens[] = {3, 1, 4, 0};
    uint8_t out[128];
    size_t n = resp_command(out, sizeof out, 4, argv, lens);
    const char *want = "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n$0\r\n\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    assert_int_equal(resp_command(out, n - 1, 4, argv, lens), 0); /* does not fit */
}

static const char *context_value(const Nba__V1__ContactEvent *ev, const char *key)
{
    for (size_t i = 0; i < ev->n_context; i++)
        if (strcmp(ev->context[i]->key, key) == 0)
            return ev->context[i]->value;
    return "";
}

static void peer_commands_carry_what_the_requests_carry(void **state)
{
    (void)state;
    workload w;
    workload_defaults(&w);
    w.customers = 1000;
    w.pool_size = 500;
    w.unknown_ratio = 0.1;
    request_pool pool, commands;
    assert_int_equal(workload_build(&w, &pool, NULL), 0);
    assert_int_equal(resp_pool_build(&pool, "EVALSHA", SHA, &commands, NULL), 0);
    assert_int_equal(commands.count, pool.count);
    static const char *const channels[] = {"", "desk", "kiosk", "ivr"};
    size_t longest = 0;
    for (size_t i = 0; i < pool.count; i++) {
        Nba__V1__Request *req = nba__v1__request__unpack(NULL, pool.offset[i + 1] - pool.offset[i],
                                                         pool.bytes + pool.offset[i]);
        assert_non_null(req);
        const Nba__V1__ContactEvent *ev = req->contact;
        char args[16][256], key[300];
        size_t len = commands.offset[i + 1] - commands.offset[i];
        assert_int_equal(split_command(commands.bytes + commands.offset[i], len, args), 10);
        assert_string_equal(args[0], "EVALSHA");
        assert_string_equal(args[1], SHA);
        assert_string_equal(args[2], "2");
        snprintf(key, sizeof key, "cust:%s", ev->customer_id);
        assert_string_equal(args[3], key);
        snprintf(key, sizeof key, "inc:%s", ev->customer_id);
        assert_string_equal(args[4], key);
        assert_string_equal(args[5], ev->customer_id);
        assert_true(ev->channel >= 1 && ev->channel <= 3);
        assert_string_equal(args[6], channels[ev->channel]);
        assert_string_equal(args[7], ev->touchpoint);
        assert_string_equal(args[8], context_value(ev, "cabin"));
        assert_string_equal(args[9], ev->language);
        nba__v1__request__free_unpacked(req, NULL);
        if (len > longest)
            longest = len;
    }
    assert_int_equal(commands.max_frame, longest);
    request_pool_free(&commands);

    assert_int_equal(resp_pool_build(&pool, "FCALL", "checkin", &commands, NULL), 0);
    char args[16][256];
    assert_int_equal(split_command(commands.bytes, commands.offset[1], args), 10);
    assert_string_equal(args[0], "FCALL");
    assert_string_equal(args[1], "checkin");
    request_pool_free(&commands);

    nba_error err;
    assert_int_equal(resp_pool_build(&pool, "EVALSHA", "abc", &commands, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "40 hex digits"));
    assert_int_equal(resp_pool_build(&pool, "EVAL", "return 1", &commands, &err), -EINVAL);
    assert_int_equal(resp_pool_build(&pool, "FCALL", "", &commands, &err), -EINVAL);
    request_pool_free(&pool);

    w.ping = 1;
    assert_int_equal(workload_build(&w, &pool, NULL), 0);
    assert_int_equal(resp_pool_build(&pool, "EVALSHA", SHA, &commands, NULL), 0);
    assert_int_equal(commands.count, 1);
    assert_int_equal(commands.offset[1], 14);
    assert_memory_equal(commands.bytes, "*1\r\n$4\r\nPING\r\n", 14);
    request_pool_free(&commands);
    request_pool_free(&pool);
}

/* ---- the ceiling's request scan ---- */

static size_t pack_contact(uint64_t id, const char *customer, uint8_t *out)
{
    Nba__V1__ContactEvent__ContextEntry cabin = NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT;
    cabin.key = "cabin";
    cabin.value = "Y";
    Nba__V1__ContactEvent__ContextEntry *context[] = {&cabin};
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    ev.customer_id = (char *)customer;
    ev.channel = NBA__V1__CHANNEL__KIOSK;
    ev.touchpoint = "checkin";
    ev.occurred_at_ms = 1763800000000;
    ev.location = "FCO-K07";
    ev.context = context;
    ev.n_context = 1;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
    req.contact = &ev;
    return protobuf_c_message_pack(&req.base, out);
}

static void the_scan_reads_ids_as_protobuf_c_writes_them(void **state)
{
    (void)state;
    static const uint64_t ids[] = {0, 1, 127, 128, 300, 1ull << 35, UINT64_MAX};
    uint8_t buf[512];
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        size_t n = pack_contact(ids[i], "C0000042", buf);
        request_info ri;
        assert_int_equal(request_scan(buf, n, &ri), 0);
        assert_int_equal(ri.id, ids[i]);
        assert_int_equal(ri.kind, REQUEST_CONTACT);
        assert_int_equal(ri.customer_len, 8);
        assert_memory_equal(ri.customer, "C0000042", 8);
    }

    /* the load generator's own frames */
    workload w;
    workload_defaults(&w);
    w.pool_size = 200;
    request_pool pool;
    assert_int_equal(workload_build(&w, &pool, NULL), 0);
    uint8_t *frame = malloc(pool.max_frame);
    for (size_t i = 0; i < pool.count; i++) {
        size_t n = workload_frame(&pool, i, 1000 + i, frame);
        Nba__V1__Request *req =
            nba__v1__request__unpack(NULL, n - FRAME_HEADER_SIZE, frame + FRAME_HEADER_SIZE);
        assert_non_null(req);
        request_info ri;
        assert_int_equal(request_scan(frame + FRAME_HEADER_SIZE, n - FRAME_HEADER_SIZE, &ri), 0);
        assert_int_equal(ri.id, 1000 + i);
        assert_int_equal(ri.customer_len, strlen(req->contact->customer_id));
        assert_memory_equal(ri.customer, req->contact->customer_id, ri.customer_len);
        nba__v1__request__free_unpacked(req, NULL);
    }
    free(frame);
    request_pool_free(&pool);

    Nba__V1__Ping ping = NBA__V1__PING__INIT;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = 9;
    req.body_case = NBA__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    size_t n = protobuf_c_message_pack(&req.base, buf);
    request_info ri;
    assert_int_equal(request_scan(buf, n, &ri), 0);
    assert_int_equal(ri.kind, REQUEST_PING);
    assert_int_equal(ri.id, 9);
    assert_int_equal(ri.customer_len, 0);

    assert_int_equal(request_scan(buf, 0, &ri), 0); /* an empty request is valid protobuf */
    assert_int_equal(ri.kind, REQUEST_OTHER);
}

static void broken_requests_are_rejected(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n = pack_contact(300, "C0000042", buf);
    request_info ri;
    /* cut inside the contact event: its length runs past the end */
    for (size_t cut = 4; cut < n; cut++)
        assert_int_equal(request_scan(buf, cut, &ri), -EBADMSG);
    static const uint8_t bad[][4] = {
        {0x08, 0x80},             /* truncated varint */
        {0x12, 0x05, 0x0a, 0x01}, /* contact longer than the body */
        {0x0f, 0x00},             /* wire type 7 */
        {0x00, 0x01},             /* field 0 */
        {0x0a, 0x00},             /* the id as a string */
    };
    static const size_t lens[] = {2, 4, 2, 2, 2};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        assert_int_equal(request_scan(bad[i], lens[i], &ri), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_values_are_cut_at_their_end),
        cmocka_unit_test(every_prefix_is_incomplete),
        cmocka_unit_test(pipelined_replies_are_cut_one_by_one),
        cmocka_unit_test(broken_or_too_large_values_are_malformed),
        cmocka_unit_test(decisions_errors_and_pongs_are_told_apart),
        cmocka_unit_test(commands_are_arrays_of_bulk_strings),
        cmocka_unit_test(peer_commands_carry_what_the_requests_carry),
        cmocka_unit_test(the_scan_reads_ids_as_protobuf_c_writes_them),
        cmocka_unit_test(broken_requests_are_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
