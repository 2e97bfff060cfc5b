/* Black-box tests of the network side: a real server on a loopback port,
 * with a one-customer store and a one-rule ruleset, spoken to over plain
 * sockets. Every wait is bounded: receive timeouts on the sockets and a
 * timed join of the server thread. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "config.h"
#include "frame.h"
#include "log.h"
#include "nba.pb-c.h"
#include "raw_socket.h"
#include "rules_live.h"
#include "server.h"
#include "store.h"

#define IO_TIMEOUT_S 5
#define MAX_FRAME    1024

static const char rules_yaml[] = "ruleset: net-test\n"
                                 "version: 3\n"
                                 "languages: [en, it]\n"
                                 "default_language: en\n"
                                 "rules:\n"
                                 "  - id: greet\n"
                                 "    when: event.touchpoint == \"checkin\"\n"
                                 "    then:\n"
                                 "      - action: greet\n";

typedef struct fixture {
    char dir[64];
    store *st;
    store_live *live; /* st, never switching */
    rules_live *rules;
    server *srv;
    pthread_t thread;
    int run_rc;
} fixture;

/* ---- the server under test ---- */

static void *run_server(void *arg)
{
    fixture *f = arg;
    f->run_rc = server_run(f->srv);
    return NULL;
}

/* A config for a test server: a free port, MAX_FRAME; the rest default. */
static void test_config(config *cfg, int threads)
{
    assert_int_equal(config_init(cfg), 0);
    cfg->port = 0;
    cfg->threads = threads;
    cfg->max_frame = MAX_FRAME;
}

/* Starts a server with cfg (then freed) running on its own thread. */
static void start_server_with(fixture *f, config *cfg)
{
    nba_error err = {{0}};
    int rc = server_new(cfg, f->live, NULL, f->rules, NULL, &f->srv, &err);
    if (rc)
        fail_msg("server_new: %s", err.msg);
    config_free(cfg);
    assert_true(server_port(f->srv) > 0);
    f->run_rc = -1;
    assert_int_equal(pthread_create(&f->thread, NULL, run_server, f), 0);
}

static void start_server(fixture *f, int threads)
{
    config cfg;
    test_config(&cfg, threads);
    start_server_with(f, &cfg);
}

/* server_run returns once stopped, having joined every worker: bounded. */
static void join_server(fixture *f)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    assert_int_equal(pthread_timedjoin_np(f->thread, NULL, &deadline), 0);
    assert_int_equal(f->run_rc, 0);
    server_free(f->srv);
    f->srv = NULL;
}

static void stop_server(fixture *f)
{
    server_stop(f->srv);
    join_server(f);
}

static int group_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    nba_error err = {{0}};
    store_txn *t = NULL;
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/nba-test-server-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (store_open(f->dir, STORE_CREATE, (size_t)16 << 20, 0, &f->st, &err) ||
        store_txn_begin(f->st, &t, &err))
        goto fail;
    Nba__V1__Customer c = NBA__V1__CUSTOMER__INIT;
    c.customer_id = "C-1";
    c.name = "Ada Example";
    c.tier = "gold";
    c.lifetime_value = 1000;
    c.predicted_ltv = 25000;
    c.language = "it";
    if (store_txn_put_customer(t, &c, &err) || store_txn_commit(t, &err))
        goto fail;
    char rules_path[160];
    snprintf(rules_path, sizeof rules_path, "%s/net-test.yaml", f->dir);
    FILE *rf = fopen(rules_path, "w");
    if (!rf || fwrite(rules_yaml, 1, sizeof rules_yaml - 1, rf) != sizeof rules_yaml - 1) {
        nba_error_set(&err, -EIO, "cannot write %s", rules_path);
        if (rf)
            fclose(rf);
        goto fail;
    }
    fclose(rf);
    if (rules_live_new(rules_path, &f->rules, &err))
        goto fail;
    if (store_live_fixed(f->st, &f->live)) {
        nba_error_set(&err, -ENOMEM, "out of memory");
        goto fail;
    }
    *state = f;
    return 0;
fail:
    fprintf(stderr, "setup: %s\n", err.msg);
    if (f->st)
        store_close(f->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "setup: could not remove %s\n", f->dir);
    free(f);
    return -1;
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    if (!f)
        return 0;
    rules_live_free(f->rules);
    store_live_free(f->live);
    store_close(f->st);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* ---- a client over plain sockets ---- */

/* A connection to the fixture's server (raw_socket.h: rcvbuf > 0 fixes its
 * receive buffer). */
static int connect_rcvbuf(const fixture *f, int rcvbuf)
{
    int fd = raw_connect(server_port(f->srv), rcvbuf, IO_TIMEOUT_S * 1000);
    assert_true(fd >= 0);
    return fd;
}

static int connect_to(const fixture *f)
{
    return connect_rcvbuf(f, 0);
}

static void expect_eof(int fd)
{
    uint8_t b;
    assert_int_equal(raw_recv_exact(fd, &b, 1), 1);
}

/* Appends one request frame to buf (which has room), returns its size. */
static size_t pack_request(uint8_t *buf, uint64_t id, const char *customer_id)
{
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__Ping ping = NBA__V1__PING__INIT;
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    req.id = id;
    if (customer_id) {
        ev.customer_id = (char *)customer_id;
        ev.channel = NBA__V1__CHANNEL__KIOSK;
        ev.touchpoint = "checkin";
        req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
        req.contact = &ev;
    } else {
        req.body_case = NBA__V1__REQUEST__BODY_PING;
        req.ping = &ping;
    }
    return frame_pack(&req.base, buf);
}

static void expect_pong(int fd, uint64_t id)
{
    Nba__V1__Response *r = raw_expect_response(fd);
    assert_int_equal(r->id, id);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_PONG);
    assert_int_equal(strncmp(r->pong->ruleset, "net-test@3+", 11), 0); /* + content hash */
    nba__v1__response__free_unpacked(r, NULL);
}

static void expect_error(int fd, const char *code)
{
    Nba__V1__Response *r = raw_expect_response(fd);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_ERROR);
    assert_string_equal(r->error->code, code);
    nba__v1__response__free_unpacked(r, NULL);
}

/* ---- tests ---- */

static void pipelined_requests_answered_in_order(void **state)
{
    fixture *f = *state;
    start_server(f, 2);
    int fd = connect_to(f);

    /* 200 requests, pings and contacts mixed, in one write. */
    enum { N = 200 };
    uint8_t *buf = malloc(N * 128);
    assert_non_null(buf);
    size_t len = 0;
    for (uint64_t id = 1; id <= N; id++)
        len += pack_request(buf + len, 1000 + id,
                            id % 3 == 0   ? NULL
                            : id % 3 == 1 ? "C-1"
                                          : "C-unknown");
    raw_send_all(fd, buf, len);
    for (uint64_t id = 1; id <= N; id++) {
        Nba__V1__Response *r = raw_expect_response(fd);
        assert_int_equal(r->id, 1000 + id);
        if (id % 3 == 0) {
            assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_PONG);
        } else {
            assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
            assert_int_equal(r->decision->known, id % 3 == 1);
            assert_string_equal(r->decision->customer_id, id % 3 == 1 ? "C-1" : "C-unknown");
            assert_int_equal(strncmp(r->decision->ruleset, "net-test@3+", 11), 0);
            assert_int_equal(r->decision->n_actions, 1);
            assert_string_equal(r->decision->actions[0]->type, "greet");
            assert_string_equal(r->decision->actions[0]->rule_id, "greet");
        }
        nba__v1__response__free_unpacked(r, NULL);
    }
    free(buf);
    close(fd);
    stop_server(f);
}

/* More connections and answers than a worker holds back for the end of a
 * round of its loop (64 connections, 256 answers), all with requests
 * waiting at once, one of them gone before its answers: every other gets
 * all its answers, in order. */
static void many_connections_ready_at_once_each_get_their_answers(void **state)
{
    fixture *f = *state;
    start_server(f, 1);
    enum { CONNS = 150, PER_CONN = 16, GONE = 75 };
    int fds[CONNS];
    for (int i = 0; i < CONNS; i++)
        fds[i] = connect_to(f);
    /* Every connection accepted before any request, so that the requests
     * meet in as few rounds as the worker can make of them. */
    uint8_t buf[PER_CONN * 128];
    for (int i = 0; i < CONNS; i++) {
        raw_send_all(fds[i], buf, pack_request(buf, 7, NULL));
        expect_pong(fds[i], 7);
    }
    for (int i = 0; i < CONNS; i++) {
        size_t len = 0;
        for (int k = 0; k < PER_CONN; k++)
            len +=
                pack_request(buf + len, (uint64_t)i * 100 + (uint64_t)k + 1, k % 2 ? "C-1" : NULL);
        raw_send_all(fds[i], buf, len);
    }
    close(fds[GONE]);
    for (int i = 0; i < CONNS; i++) {
        if (i == GONE)
            continue;
        for (int k = 0; k < PER_CONN; k++) {
            Nba__V1__Response *r = raw_expect_response(fds[i]);
            assert_int_equal(r->id, (uint64_t)i * 100 + (uint64_t)k + 1);
            assert_int_equal(r->body_case, k % 2 ? NBA__V1__RESPONSE__BODY_DECISION
                                                 : NBA__V1__RESPONSE__BODY_PONG);
            nba__v1__response__free_unpacked(r, NULL);
        }
        close(fds[i]);
    }
    stop_server(f);
}

static void frame_too_large_closes_only_that_connection(void **state)
{
    fixture *f = *state;
    start_server(f, 1); /* one worker: both connections share its loop */
    int bad = connect_to(f);
    int good = connect_to(f);

    /* A valid request, then a header announcing one byte over the limit and
     * a little of its body: the first is answered, then the error, then EOF
     * without the server waiting for the rest. */
    uint8_t buf[256];
    size_t len = pack_request(buf, 7, NULL);
    frame_put_length(buf + len, MAX_FRAME + 1);
    len += FRAME_HEADER_SIZE;
    memset(buf + len, 'x', 32);
    len += 32;
    raw_send_all(bad, buf, len);
    expect_pong(bad, 7);
    Nba__V1__Response *r = raw_expect_response(bad);
    assert_int_equal(r->id, 0);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_ERROR);
    assert_string_equal(r->error->code, "frame_too_large");
    nba__v1__response__free_unpacked(r, NULL);
    expect_eof(bad);

    len = pack_request(buf, 8, NULL);
    raw_send_all(good, buf, len);
    expect_pong(good, 8);
    close(bad);

    /* A body of exactly the limit is accepted: id 9 and an unknown field
     * (15, length-delimited) padding it to MAX_FRAME bytes, answered as a
     * request without a body the server understands. */
    uint8_t *big = calloc(1, FRAME_HEADER_SIZE + MAX_FRAME);
    assert_non_null(big);
    uint8_t *b = big + FRAME_HEADER_SIZE;
    size_t pad = MAX_FRAME - 5;
    frame_put_length(big, MAX_FRAME);
    b[0] = 0x08; /* field 1, varint */
    b[1] = 9;
    b[2] = 0x7a; /* field 15, length-delimited */
    b[3] = (uint8_t)(0x80 | (pad & 0x7f));
    b[4] = (uint8_t)(pad >> 7);
    raw_send_all(good, big, FRAME_HEADER_SIZE + MAX_FRAME);
    free(big);
    r = raw_expect_response(good);
    assert_int_equal(r->id, 9);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_ERROR);
    assert_string_equal(r->error->code, "unsupported");
    nba__v1__response__free_unpacked(r, NULL);
    len = pack_request(buf, 10, NULL);
    raw_send_all(good, buf, len);
    expect_pong(good, 10);
    close(good);
    stop_server(f);
}

static void garbage_body_gets_error_then_close(void **state)
{
    fixture *f = *state;
    start_server(f, 1);
    int bad = connect_to(f);
    int good = connect_to(f);

    /* Field 1 as a length-delimited field running past the end. */
    uint8_t buf[64] = {0, 0, 0, 6, 0x0a, 0x7f, 0xff, 0xff, 0xff, 0xff};
    size_t len = 10;
    len += pack_request(buf + len, 11, NULL); /* after the bad one: never answered */
    raw_send_all(bad, buf, len);
    expect_error(bad, "bad_request");
    expect_eof(bad);
    close(bad);

    len = pack_request(buf, 12, "C-1");
    raw_send_all(good, buf, len);
    Nba__V1__Response *r = raw_expect_response(good);
    assert_int_equal(r->id, 12);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    nba__v1__response__free_unpacked(r, NULL);
    close(good);
    stop_server(f);
}

static void frame_split_byte_by_byte(void **state)
{
    fixture *f = *state;
    start_server(f, 2);
    int fd = connect_to(f);
    uint8_t buf[256];
    size_t len = pack_request(buf, 21, "C-1");
    len += pack_request(buf + len, 22, NULL);
    for (size_t i = 0; i < len; i++) {
        raw_send_all(fd, buf + i, 1);
        usleep(500);
    }
    Nba__V1__Response *r = raw_expect_response(fd);
    assert_int_equal(r->id, 21);
    assert_true(r->decision->known);
    nba__v1__response__free_unpacked(r, NULL);
    expect_pong(fd, 22);
    close(fd);
    stop_server(f);
}

static void empty_body_is_a_request_without_body(void **state)
{
    fixture *f = *state;
    start_server(f, 1);
    int fd = connect_to(f);
    uint8_t buf[64] = {0, 0, 0, 0};
    size_t len = 4 + pack_request(buf + 4, 31, NULL);
    raw_send_all(fd, buf, len);
    expect_error(fd, "unsupported"); /* and the connection stays open */
    expect_pong(fd, 31);
    close(fd);
    stop_server(f);
}

/* Many more answers than the kernel's buffers and the server's output
 * limit hold, for a client that reads only when it cannot write: the
 * server stops reading while the output is over the limit (BLOCKED, see
 * NBA_TEST_DEBUG) and resumes when it drains; nothing is lost or
 * reordered. */
static void slow_reader_gets_everything_in_order(void **state)
{
    fixture *f = *state;
    start_server(f, 2);
    int fd = connect_rcvbuf(f, 64 * 1024);
    enum { N = 200000 };
    uint8_t frame[128];
    uint8_t *out = malloc((size_t)N * sizeof frame);
    assert_non_null(out);
    size_t out_len = 0, out_pos = 0;
    for (uint64_t id = 1; id <= N; id++)
        out_len += pack_request(out + out_len, id, id % 2 ? "C-1" : NULL);

    /* Write as long as the socket takes it; read only when it does not (or
     * when everything is written), so answers pile up on the server. */
    uint8_t in[65536];
    size_t in_len = 0;
    uint64_t next_id = 1;
    int idle = 0;
    while (next_id <= N && idle < 500) {
        struct pollfd p = {fd, POLLIN | (out_pos < out_len ? POLLOUT : 0), 0};
        int ready = poll(&p, 1, 10);
        assert_true(ready >= 0);
        idle = ready == 0 ? idle + 1 : 0;
        if (p.revents & POLLOUT) {
            ssize_t w = send(fd, out + out_pos, out_len - out_pos, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                out_pos += (size_t)w;
            continue;
        }
        if (!(p.revents & POLLIN))
            continue;
        if (next_id == 1)
            usleep(300 * 1000); /* let the server answer all it has read */
        ssize_t got = recv(fd, in + in_len, sizeof in - in_len, MSG_DONTWAIT);
        assert_true(got != 0);
        if (got > 0)
            in_len += (size_t)got;
        size_t used = 0;
        uint32_t body;
        while (frame_cut(in + used, in_len - used, 1 << 16, &body) == FRAME_READY) {
            Nba__V1__Response *r =
                nba__v1__response__unpack(NULL, body, in + used + FRAME_HEADER_SIZE);
            assert_non_null(r);
            assert_int_equal(r->id, next_id);
            assert_int_equal(r->body_case, next_id % 2 ? NBA__V1__RESPONSE__BODY_DECISION
                                                       : NBA__V1__RESPONSE__BODY_PONG);
            nba__v1__response__free_unpacked(r, NULL);
            next_id++;
            used += FRAME_HEADER_SIZE + body;
        }
        memmove(in, in + used, in_len - used);
        in_len -= used;
    }
    assert_int_equal(next_id, N + 1);
    free(out);
    close(fd);
    stop_server(f);
}

/* A client that half-closes after its requests still gets every answer,
 * then EOF. */
static void half_close_answers_then_eof(void **state)
{
    fixture *f = *state;
    start_server(f, 1);
    int fd = connect_to(f);
    uint8_t buf[512];
    size_t len = 0;
    for (uint64_t id = 41; id <= 43; id++)
        len += pack_request(buf + len, id, NULL);
    frame_put_length(buf + len, 100); /* an incomplete last frame is dropped */
    len += FRAME_HEADER_SIZE + 10;
    raw_send_all(fd, buf, len);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    for (uint64_t id = 41; id <= 43; id++)
        expect_pong(fd, id);
    expect_eof(fd);
    close(fd);
    stop_server(f);
}

/* Stopping with clients connected: answered requests are delivered, idle
 * clients see EOF, and server_run returns. */
static void stop_with_open_connections(void **state)
{
    fixture *f = *state;
    start_server(f, 2);
    int fds[4];
    for (int i = 0; i < 4; i++)
        fds[i] = connect_to(f);
    uint8_t buf[64];
    size_t len = pack_request(buf, 51, NULL);
    raw_send_all(fds[0], buf, len);
    expect_pong(fds[0], 51);
    stop_server(f);
    for (int i = 0; i < 4; i++) {
        expect_eof(fds[i]);
        close(fds[i]);
    }
}

/* A status request, pipelined after decisions on the same connection, counts
 * every answer before it (not itself) and times every decision, summed over
 * both workers. */
static void status_reports_counters_and_latency(void **state)
{
    fixture *f = *state;
    start_server(f, 2);
    int other = connect_to(f); /* a second connection, on the other worker */
    int fd = connect_to(f);
    enum { N = 40 };
    uint8_t *buf = malloc(N * 128 + 64);
    assert_non_null(buf);
    /* One ping on it first, so its worker has surely taken it in before the
     * status is counted (accepting is asynchronous). */
    size_t len = pack_request(buf, 999, NULL);
    raw_send_all(other, buf, len);
    Nba__V1__Response *pong = raw_expect_response(other);
    assert_int_equal(pong->id, 999);
    nba__v1__response__free_unpacked(pong, NULL);
    len = 0;
    for (uint64_t id = 1; id <= N; id++)
        len += pack_request(buf + len, id, id % 4 ? "C-1" : "C-unknown");
    len += pack_request(buf + len, N + 1, NULL); /* a ping: a request, not a decision */
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__StatusRequest sr = NBA__V1__STATUS_REQUEST__INIT;
    req.id = N + 2;
    req.body_case = NBA__V1__REQUEST__BODY_STATUS;
    req.status = &sr;
    len += frame_pack(&req.base, buf + len);
    raw_send_all(fd, buf, len);
    for (uint64_t id = 1; id <= N + 1; id++) {
        Nba__V1__Response *r = raw_expect_response(fd);
        assert_int_equal(r->id, id);
        nba__v1__response__free_unpacked(r, NULL);
    }
    Nba__V1__Response *r = raw_expect_response(fd);
    assert_int_equal(r->id, N + 2);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_STATUS);
    const Nba__V1__Status *st = r->status;
    assert_int_equal(st->decisions_total, N);
    assert_int_equal(st->requests_total, N + 2); /* N contacts and two pings */
    assert_int_equal(st->errors_total, 0);
    assert_int_equal(st->connections_open, 2);
    assert_int_equal(st->connections_total, 2);
    assert_int_equal(st->customers, 1);
    assert_int_equal(st->incidents, 0);
    assert_non_null(st->decision_latency);
    assert_int_equal(st->decision_latency->count, N);
    assert_true(st->decision_latency->p50_ns > 0);
    assert_true(st->decision_latency->p50_ns <= st->decision_latency->p90_ns);
    assert_true(st->decision_latency->p90_ns <= st->decision_latency->p99_ns);
    assert_true(st->decision_latency->p99_ns <= st->decision_latency->p999_ns);
    assert_true(st->decision_latency->p999_ns <= st->decision_latency->max_ns);
    assert_true(st->decision_latency->mean_ns > 0);
    assert_non_null(strstr(st->server, "nbad/"));
    assert_int_equal(strncmp(st->ruleset, "net-test@3", 10), 0);
    nba__v1__response__free_unpacked(r, NULL);
    free(buf);
    close(fd);
    close(other);
    stop_server(f);
}

/* Stopping while a client has requests in flight that it does not read
 * the answers of (held back by tiny output limits): every request that had
 * reached the server is answered, in order, as the client reads, then EOF. */
static void stop_answers_every_request_that_arrived(void **state)
{
    fixture *f = *state;
    config cfg;
    test_config(&cfg, 1);
    cfg.max_output = 4096;
    cfg.max_pipeline = 4;
    start_server_with(f, &cfg);
    int fd = connect_to(f);
    enum { N = 300 };
    uint8_t buf[N * 32];
    size_t len = 0;
    for (uint64_t id = 1; id <= N; id++)
        len += pack_request(buf + len, id, id % 2 ? "C-1" : NULL);
    raw_send_all(fd, buf, len);
    int queued = 1; /* until all of it has reached the server's socket */
    for (int t = 0; t < 1000 && queued > 0; t++) {
        assert_int_equal(ioctl(fd, TIOCOUTQ, &queued), 0);
        if (queued)
            usleep(1000);
    }
    assert_int_equal(queued, 0);
    usleep(50 * 1000); /* the server has answered 4 and stopped reading */
    server_stop(f->srv);
    for (uint64_t id = 1; id <= N; id++) {
        Nba__V1__Response *r = raw_expect_response(fd);
        assert_int_equal(r->id, id);
        nba__v1__response__free_unpacked(r, NULL);
    }
    expect_eof(fd);
    close(fd);
    join_server(f);
}

/* Past max_connections a connection gets too_many_connections and EOF;
 * idle_timeout closes a silent connection and not a busy one. */
static void connection_limit_and_idle_timeout(void **state)
{
    fixture *f = *state;
    config cfg;
    test_config(&cfg, 2);
    cfg.max_connections = 2;
    cfg.idle_timeout = 1;
    start_server_with(f, &cfg);
    int busy = connect_to(f), idle = connect_to(f);
    uint8_t buf[64];
    raw_send_all(busy, buf, pack_request(buf, 1, NULL));
    expect_pong(busy, 1);
    raw_send_all(idle, buf, pack_request(buf, 2, NULL));
    expect_pong(idle, 2); /* both counted before the third */
    int third = connect_to(f);
    expect_error(third, "too_many_connections");
    expect_eof(third);
    close(third);

    /* 1 s of idle_timeout and its 1 s tick: closed within 3 s. */
    for (uint64_t id = 3; id < 3 + 15; id++) {
        usleep(200 * 1000);
        raw_send_all(busy, buf, pack_request(buf, id, NULL));
        expect_pong(busy, id);
    }
    struct pollfd p = {idle, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 0), 1);
    expect_eof(idle);
    close(idle);
    close(busy);
    stop_server(f);
}

static void stop_before_run_and_address_in_use(void **state)
{
    fixture *f = *state;
    config cfg;
    nba_error err = {{0}};
    server *s = NULL;

    /* The port a server holds cannot be bound twice. */
    assert_int_equal(config_init(&cfg), 0);
    cfg.port = 0;
    cfg.threads = 1;
    assert_int_equal(server_new(&cfg, f->live, NULL, f->rules, NULL, &s, &err), 0);
    server *again = NULL;
    int port = cfg.port = server_port(s);
    assert_int_equal(server_new(&cfg, f->live, NULL, f->rules, NULL, &again, &err), -EADDRINUSE);
    assert_null(again);
    assert_non_null(strstr(err.msg, "cannot listen on 127.0.0.1"));

    /* server_stop before server_run: run returns at once, and lets the
     * port go, so that clients are refused rather than left waiting. */
    server_stop(s);
    assert_int_equal(server_run(s), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(fd);
    server_free(s);

    /* Never run at all: server_free alone stops the workers. */
    cfg.port = 0;
    cfg.threads = 3;
    assert_int_equal(server_new(&cfg, f->live, NULL, f->rules, NULL, &s, &err), 0);
    server_free(s);

    /* An address that is not this machine's. */
    free(cfg.listen_addr);
    cfg.listen_addr = strdup("192.0.2.1");
    assert_int_equal(server_new(&cfg, f->live, NULL, f->rules, NULL, &s, &err), -EADDRNOTAVAIL);
    config_free(&cfg);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* NBA_TEST_DEBUG=1 shows every connection's state changes. */
    if (getenv("NBA_TEST_DEBUG"))
        log_set_level(LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pipelined_requests_answered_in_order),
        cmocka_unit_test(many_connections_ready_at_once_each_get_their_answers),
        cmocka_unit_test(frame_too_large_closes_only_that_connection),
        cmocka_unit_test(garbage_body_gets_error_then_close),
        cmocka_unit_test(frame_split_byte_by_byte),
        cmocka_unit_test(empty_body_is_a_request_without_body),
        cmocka_unit_test(slow_reader_gets_everything_in_order),
        cmocka_unit_test(half_close_answers_then_eof),
        cmocka_unit_test(stop_with_open_connections),
        cmocka_unit_test(stop_before_run_and_address_in_use),
        cmocka_unit_test(stop_answers_every_request_that_arrived),
        cmocka_unit_test(connection_limit_and_idle_timeout),
        cmocka_unit_test(status_reports_counters_and_latency),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
