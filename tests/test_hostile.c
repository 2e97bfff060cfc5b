/* Hostile clients against the real nbad: garbage, truncated frames, a
 * length of 4 GiB, frames split byte by byte, thousands of idle
 * connections, a client that never reads its answers, half-closed
 * sockets, more connections than max_connections, and accepting with no
 * file descriptor left. While each runs, a well-behaved client (a kiosk at
 * check-in, C1001 from the sample data) keeps asking for decisions, and
 * every one of its answers must be right: each test ends by asserting that
 * it had no failure at all.
 *
 * nbad runs on a free loopback port with the sample data loaded by nbactl
 * (daemon.h), and the whole test ends by itself. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "client.h"
#include "daemon.h"
#include "raw_socket.h"
#include "frame.h"

/* The sample customer the well-behaved client asks about: platinum, with
 * an open incident, so a check-in in Y gets the recovery upgrade (once),
 * and a greeting every time. */
#define SAMPLE_CUSTOMER "C1001"

typedef struct world {
    char dir[64];
    char db[128];
    char log[160];
    char rules[512]; /* the shipped rules */
    daemon_proc d;
    int idle_timeout_s; /* of the nbad in d */
    int n_idle;         /* idle connections the test opens */
} world;

static world W;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the well-behaved client ---- */

typedef struct good_client {
    pthread_t thread;
    int port;
    atomic_bool stop;
    atomic_ulong ok, failed;
    char first_failure[512]; /* written once, by the thread, before `failed` moves */
} good_client;

static size_t pack_contact(uint8_t *out, uint64_t id, const char *customer,
                           Nba__V1__Channel channel)
{
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    Nba__V1__ContactEvent__ContextEntry cab = NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT;
    Nba__V1__ContactEvent__ContextEntry *ctx[] = {&cab};
    cab.key = "cabin";
    cab.value = "Y";
    ev.customer_id = (char *)customer;
    ev.channel = channel;
    ev.touchpoint = "checkin";
    ev.context = ctx;
    ev.n_context = 1;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
    req.contact = &ev;
    return frame_pack(&req.base, out);
}

static bool has_action(const Nba__V1__Decision *d, const char *type)
{
    for (size_t i = 0; i < d->n_actions; i++)
        if (!strcmp(d->actions[i]->type, type))
            return true;
    return false;
}

/* What a right answer to the good client's request `id` is; NULL if it is
 * one, else what is wrong. */
static const char *wrong_answer(const Nba__V1__Response *r, uint64_t id)
{
    if (r->id != id)
        return "the answer carries another request's id";
    if (r->body_case != NBA__V1__RESPONSE__BODY_DECISION)
        return r->body_case == NBA__V1__RESPONSE__BODY_ERROR ? r->error->code : "not a decision";
    const Nba__V1__Decision *d = r->decision;
    if (strcmp(d->customer_id, SAMPLE_CUSTOMER) || !d->known)
        return "the sample customer is not known";
    if (!d->ruleset || !strchr(d->ruleset, '@'))
        return "no ruleset named";
    if (strcmp(d->language, "it"))
        return "not in the customer's language";
    /* The first contact gets the recovery upgrade, the later ones what the
     * contact history says (the upgrade already given): actions either way. */
    if (d->n_actions == 0 || (!has_action(d, "upgrade") && !has_action(d, "greet")))
        return "no action";
    return NULL;
}

static void good_failure(good_client *g, const char *fmt, ...)
{
    if (atomic_load(&g->failed) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->first_failure, sizeof g->first_failure, fmt, ap);
        va_end(ap);
    }
    atomic_fetch_add(&g->failed, 1);
}

static void *good_client_main(void *arg)
{
    good_client *g = arg;
    static const Nba__V1__Channel channels[] = {NBA__V1__CHANNEL__DESK, NBA__V1__CHANNEL__KIOSK,
                                                NBA__V1__CHANNEL__IVR};
    nba_client *c = NULL;
    nba_error err;
    uint64_t id = 0;
    while (!atomic_load(&g->stop)) {
        if (!c && client_connect("127.0.0.1", g->port, daemon_patience_ms(5000), &c, &err) != 0) {
            good_failure(g, "connect: %s", err.msg);
            c = NULL;
            sleep_ms(50);
            continue;
        }
        uint8_t frame[256];
        id++;
        size_t len = pack_contact(frame, id, SAMPLE_CUSTOMER, channels[id % 3]);
        Nba__V1__Response *r = NULL;
        int rc = client_send_raw(c, frame, len, &err);
        if (!rc)
            rc = client_recv(c, &r, &err);
        if (rc) {
            good_failure(g, "request %llu: %s", (unsigned long long)id, err.msg);
            client_close(c);
            c = NULL;
            continue;
        }
        const char *wrong = wrong_answer(r, id);
        if (wrong)
            good_failure(g, "request %llu: %s", (unsigned long long)id, wrong);
        else
            atomic_fetch_add(&g->ok, 1);
        nba__v1__response__free_unpacked(r, NULL);
        sleep_ms(2);
    }
    client_close(c);
    return NULL;
}

static void good_start(good_client *g, int port)
{
    memset(g, 0, sizeof *g);
    g->port = port;
    atomic_init(&g->stop, false);
    atomic_init(&g->ok, 0);
    atomic_init(&g->failed, 0);
    assert_int_equal(pthread_create(&g->thread, NULL, good_client_main, g), 0);
    /* Connected and answered once before the hostile part starts. */
    for (int t = 0; t < daemon_patience_ms(5000) && !atomic_load(&g->ok); t += 5)
        sleep_ms(5);
}

/* Every decision the good client asked for was right, and there were some. */
static void good_stop_and_check(good_client *g)
{
    atomic_store(&g->stop, true);
    assert_int_equal(pthread_join(g->thread, NULL), 0);
    if (atomic_load(&g->failed))
        fail_msg("the well-behaved client had %lu failure(s) in %lu requests, the first: %s",
                 atomic_load(&g->failed), atomic_load(&g->failed) + atomic_load(&g->ok),
                 g->first_failure);
    assert_true(atomic_load(&g->ok) > 0);
}

/* ---- hostile sockets ---- */

/* A connected socket (raw_socket.h) with the patience of this test;
 * -errno when the connection is refused. */
static int connect_raw(int port, int rcvbuf)
{
    return raw_connect(port, rcvbuf, daemon_patience_ms(5000));
}

/* The server closed: EOF (or a reset) with nothing before it. */
static void expect_closed(int fd)
{
    uint8_t b;
    ssize_t r;
    do
        r = recv(fd, &b, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        fail_msg("a byte where the server should have closed");
    if (r < 0 && errno != ECONNRESET)
        fail_msg("the server did not close: %s", strerror(errno));
}

static void expect_error_then_close(int fd, const char *code)
{
    Nba__V1__Response *r = raw_expect_response(fd);
    if (r->body_case != NBA__V1__RESPONSE__BODY_ERROR || strcmp(r->error->code, code))
        fail_msg("expected the error %s, got body %d", code, r->body_case);
    nba__v1__response__free_unpacked(r, NULL);
    expect_closed(fd);
}

static size_t pack_ping(uint8_t *out, uint64_t id)
{
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__Ping p = NBA__V1__PING__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_PING;
    req.ping = &p;
    return frame_pack(&req.base, out);
}

/* A ping on fd is answered with its pong. */
static void expect_served(int fd, uint64_t id)
{
    uint8_t frame[64];
    raw_send_all(fd, frame, pack_ping(frame, id));
    Nba__V1__Response *r = raw_expect_response(fd);
    assert_int_equal(r->id, id);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_PONG);
    nba__v1__response__free_unpacked(r, NULL);
}

static Nba__V1__Status *status_of(int port, Nba__V1__Response **keep)
{
    nba_client *c = NULL;
    nba_error err;
    if (client_connect("127.0.0.1", port, daemon_patience_ms(5000), &c, &err) != 0)
        fail_msg("%s", err.msg);
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__StatusRequest s = NBA__V1__STATUS_REQUEST__INIT;
    req.id = 1;
    req.body_case = NBA__V1__REQUEST__BODY_STATUS;
    req.status = &s;
    if (client_call(c, &req, keep, &err) != 0)
        fail_msg("%s", err.msg);
    client_close(c);
    assert_int_equal((*keep)->body_case, NBA__V1__RESPONSE__BODY_STATUS);
    return (*keep)->status;
}

/* nbad's resident memory, in KiB, from /proc. */
static long rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    const char *st = strstr(test_slurp(path), "VmRSS:");
    return st ? strtol(st + 6, NULL, 10) : -1;
}

/* Lines of the log that hold `what`. */
static int log_count(const char *log, const char *what)
{
    int n = 0;
    for (const char *p = test_slurp(log); (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

static uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ---- the tests ---- */

/* Bytes that are not the protocol: random bytes, an HTTP request, a TLS
 * ClientHello. Each announces a frame far above max_frame (their first
 * four bytes read as a length), so each gets frame_too_large and a close. */
static void garbage_gets_an_error_and_a_close(void **state)
{
    (void)state;
    good_client g;
    good_start(&g, W.d.port);
    static const char http[] = "GET / HTTP/1.1\r\nHost: nbad\r\n\r\n";
    static const uint8_t tls_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03,
                                        0x03, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a};
    uint32_t seed = 12345;
    for (int i = 0; i < 60; i++) {
        uint8_t buf[4096];
        size_t len;
        if (i % 3 == 0) {
            len = sizeof http - 1;
            memcpy(buf, http, len);
        } else if (i % 3 == 1) {
            len = sizeof tls_hello;
            memcpy(buf, tls_hello, len);
        } else {
            len = 1 + xorshift(&seed) % sizeof buf;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)xorshift(&seed);
            buf[0] |= 0x80; /* a length of 2 GiB and more */
        }
        int fd = connect_raw(W.d.port, 0);
        assert_true(fd >= 0);
        raw_send_all(fd, buf, len);
        expect_error_then_close(fd, "frame_too_large");
        close(fd);
    }

    /* Random bodies in well-formed frames: each is answered (an error, or
     * whatever it decodes to) and a ping after it too, unless the body did
     * not decode, which closes the connection after bad_request. */
    for (int i = 0; i < 100; i++) {
        uint8_t buf[128];
        uint32_t body = 1 + xorshift(&seed) % 64;
        frame_put_length(buf, body);
        for (uint32_t k = 0; k < body; k++)
            buf[FRAME_HEADER_SIZE + k] = (uint8_t)xorshift(&seed);
        size_t len = FRAME_HEADER_SIZE + body;
        len += pack_ping(buf + len, 424242);
        int fd = connect_raw(W.d.port, 0);
        assert_true(fd >= 0);
        raw_send_all(fd, buf, len);
        Nba__V1__Response *r = raw_expect_response(fd);
        bool closes =
            r->body_case == NBA__V1__RESPONSE__BODY_ERROR && !strcmp(r->error->code, "bad_request");
        nba__v1__response__free_unpacked(r, NULL);
        if (closes) {
            expect_closed(fd);
        } else {
            r = raw_expect_response(fd);
            assert_int_equal(r->id, 424242);
            nba__v1__response__free_unpacked(r, NULL);
        }
        close(fd);
    }
    good_stop_and_check(&g);
}

/* A frame that never arrives whole is never answered: at EOF the
 * connection closes without a word (after answering the whole frames
 * before it). */
static void truncated_frames_are_never_answered(void **state)
{
    (void)state;
    good_client g;
    good_start(&g, W.d.port);
    uint8_t buf[512];

    int fd = connect_raw(W.d.port, 0); /* half a body */
    frame_put_length(buf, 100);
    memset(buf + FRAME_HEADER_SIZE, 0x08, 50);
    raw_send_all(fd, buf, FRAME_HEADER_SIZE + 50);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    expect_closed(fd);
    close(fd);

    fd = connect_raw(W.d.port, 0); /* half a header */
    raw_send_all(fd, "\0\0", 2);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    expect_closed(fd);
    close(fd);

    fd = connect_raw(W.d.port, 0); /* a whole request, then a cut one */
    size_t len = pack_contact(buf, 7, SAMPLE_CUSTOMER, NBA__V1__CHANNEL__DESK);
    size_t cut = pack_contact(buf + len, 8, SAMPLE_CUSTOMER, NBA__V1__CHANNEL__DESK);
    raw_send_all(fd, buf, len + cut - 3);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    Nba__V1__Response *r = raw_expect_response(fd);
    assert_null(wrong_answer(r, 7));
    nba__v1__response__free_unpacked(r, NULL);
    expect_closed(fd);
    close(fd);
    good_stop_and_check(&g);
}

/* 0xFFFFFFFF announces a 4 GiB frame: refused on its header alone, before
 * nbad waits for or allocates anything for the body. */
static void length_of_4_gib_is_refused_on_its_header(void **state)
{
    (void)state;
    good_client g;
    good_start(&g, W.d.port);
    long before = rss_kib(W.d.pid);
    for (int i = 0; i < 20; i++) {
        int fd = connect_raw(W.d.port, 0);
        uint8_t buf[4 + 1000];
        memset(buf, 0xff, sizeof buf);
        raw_send_all(fd, buf, i % 2 ? 4 : sizeof buf);
        Nba__V1__Response *r = raw_expect_response(fd);
        assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_ERROR);
        assert_string_equal(r->error->code, "frame_too_large");
        assert_non_null(strstr(r->error->message, "4294967295 bytes"));
        nba__v1__response__free_unpacked(r, NULL);
        expect_closed(fd);
        close(fd);
    }
    if (!daemon_wrapped())
        assert_true(rss_kib(W.d.pid) - before < 16 * 1024);
    good_stop_and_check(&g);
}

/* Ten clients send their requests one byte at a time, interleaved: each
 * gets its decisions, in order. */
static void frames_split_byte_by_byte(void **state)
{
    (void)state;
    good_client g;
    good_start(&g, W.d.port);
    enum { CLIENTS = 10, REQUESTS = 3 };
    int fds[CLIENTS];
    uint8_t bufs[CLIENTS][REQUESTS * 128];
    size_t lens[CLIENTS];
    for (int c = 0; c < CLIENTS; c++) {
        fds[c] = connect_raw(W.d.port, 0);
        assert_true(fds[c] >= 0);
        lens[c] = 0;
        for (int i = 0; i < REQUESTS; i++)
            lens[c] += pack_contact(bufs[c] + lens[c], (uint64_t)(c * 100 + i), SAMPLE_CUSTOMER,
                                    NBA__V1__CHANNEL__KIOSK);
    }
    for (size_t k = 0;; k++) {
        bool any = false;
        for (int c = 0; c < CLIENTS; c++) {
            if (k < lens[c]) {
                raw_send_all(fds[c], bufs[c] + k, 1);
                any = true;
            }
        }
        if (!any)
            break;
        usleep(200);
    }
    for (int c = 0; c < CLIENTS; c++) {
        for (int i = 0; i < REQUESTS; i++) {
            Nba__V1__Response *r = raw_expect_response(fds[c]);
            const char *wrong = wrong_answer(r, (uint64_t)(c * 100 + i));
            if (wrong)
                fail_msg("client %d, request %d: %s", c, i, wrong);
            nba__v1__response__free_unpacked(r, NULL);
        }
        close(fds[c]);
    }
    good_stop_and_check(&g);
}

/* Thousands of connections that say nothing (and some that stop in the
 * middle of a frame, as a slow-loris client does) are held, cost the
 * well-behaved client nothing, and are all closed once idle_timeout has
 * passed. */
static void thousands_of_idle_connections_are_closed_when_idle(void **state)
{
    (void)state;
    good_client g;
    good_start(&g, W.d.port);
    int n = W.n_idle;
    int *fds = calloc((size_t)n, sizeof *fds);
    assert_non_null(fds);
    uint64_t opened_at = now_ms();
    for (int i = 0; i < n; i++) {
        fds[i] = connect_raw(W.d.port, 4096);
        if (fds[i] < 0)
            fail_msg("connection %d of %d: %s", i, n, strerror(-fds[i]));
        if (i % 10 == 0) /* a header, and a body that never comes */
            raw_send_all(fds[i], "\0\0\1\0\x08", 5);
    }
    /* nbad has taken them all in (accepting runs beside the connects). */
    uint64_t open = 0;
    for (int t = 0; t < daemon_patience_ms(5000); t += 50) {
        Nba__V1__Response *keep;
        open = status_of(W.d.port, &keep)->connections_open;
        nba__v1__response__free_unpacked(keep, NULL);
        if (open >= (uint64_t)n)
            break;
        sleep_ms(50);
    }
    if (open < (uint64_t)n)
        fail_msg("nbad holds %llu connections, %d opened", (unsigned long long)open, n);
    printf("# %d idle connections open in %llu ms\n", n,
           (unsigned long long)(now_ms() - opened_at));

    /* All closed within idle_timeout and its 1 s tick, plus slack. */
    int deadline_ms = (W.idle_timeout_s + 3) * 1000;
    int closed = 0;
    uint64_t start = now_ms();
    for (int i = 0; i < n; i++) {
        struct pollfd p = {fds[i], POLLIN, 0};
        int left = deadline_ms - (int)(now_ms() - start);
        if (poll(&p, 1, left > 0 ? left : 0) == 1) {
            uint8_t b;
            ssize_t r = recv(fds[i], &b, 1, 0);
            closed += r == 0 || (r < 0 && errno == ECONNRESET);
        }
        close(fds[i]);
    }
    free(fds);
    assert_int_equal(closed, n);
    Nba__V1__Response *keep;
    assert_true(status_of(W.d.port, &keep)->connections_idle_closed >= (uint64_t)n);
    nba__v1__response__free_unpacked(keep, NULL);
    good_stop_and_check(&g);
}

/* A client that sends requests and never reads an answer: nbad stops
 * reading from it once max_output or max_pipeline answers wait (its memory
 * does not grow with what the client sends), and closes it once nothing
 * has moved for idle_timeout. */
static void client_that_never_reads_is_held_back_then_closed(void **state)
{
    (void)state;
    good_client g;
    good_start(&g, W.d.port);
    long before = rss_kib(W.d.pid);
    int fd = connect_raw(W.d.port, 4096);
    enum { BATCH = 512 };
    static uint8_t buf[BATCH * 64];
    size_t len = 0;
    for (int i = 0; i < BATCH; i++)
        len += pack_contact(buf + len, (uint64_t)i, SAMPLE_CUSTOMER, NBA__V1__CHANNEL__IVR);

    /* Send until the socket takes nothing for a while: nbad has stopped
     * reading, and the kernel's buffers on both sides are full. */
    size_t sent = 0, pos = 0;
    uint64_t stalled_since = now_ms();
    while (now_ms() - stalled_since < 500) {
        ssize_t w = send(fd, buf + pos, len - pos, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            pos = (pos + (size_t)w) % len;
            stalled_since = now_ms();
        } else {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            sleep_ms(10);
        }
    }
    long grown = rss_kib(W.d.pid) - before;
    printf("# sent %zu KiB of requests without reading; nbad grew by %ld KiB\n", sent / 1024,
           grown);
    if (!daemon_wrapped())
        assert_true(grown < 32 * 1024);

    /* Closed (a reset: nbad leaves requests unread) within idle_timeout. */
    int deadline_ms = (W.idle_timeout_s + 3) * 1000;
    uint64_t start = now_ms();
    bool closed = false;
    while (!closed && now_ms() - start < (uint64_t)deadline_ms) {
        ssize_t w = send(fd, buf, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        closed = w < 0 && (errno == ECONNRESET || errno == EPIPE);
        if (!closed)
            sleep_ms(100);
    }
    assert_true(closed);
    close(fd);
    good_stop_and_check(&g);
}

/* Half-closed sockets: a client that shuts its side after its requests gets
 * every answer, then EOF; clients that shut their side at once are closed. */
static void half_closed_sockets(void **state)
{
    (void)state;
    good_client g;
    good_start(&g, W.d.port);
    enum { N = 50 };
    uint8_t buf[N * 64];
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += pack_contact(buf + len, (uint64_t)i, SAMPLE_CUSTOMER, NBA__V1__CHANNEL__DESK);
    int fd = connect_raw(W.d.port, 0);
    raw_send_all(fd, buf, len);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    for (int i = 0; i < N; i++) {
        Nba__V1__Response *r = raw_expect_response(fd);
        assert_null(wrong_answer(r, (uint64_t)i));
        nba__v1__response__free_unpacked(r, NULL);
    }
    expect_closed(fd);
    close(fd);

    int fds[100];
    for (int i = 0; i < 100; i++) {
        fds[i] = connect_raw(W.d.port, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(shutdown(fds[i], i % 2 ? SHUT_WR : SHUT_RDWR), 0);
    }
    for (int i = 0; i < 100; i++) {
        if (i % 2)
            expect_closed(fds[i]);
        close(fds[i]);
    }
    good_stop_and_check(&g);
}

/* Past max_connections, a new connection is answered too_many_connections
 * and closed; once one closes, a new one is served again. nbad logs the
 * episode once, with the count. */
static void connections_past_max_connections_are_refused_politely(void **state)
{
    (void)state;
    enum { MAX = 4, EXTRA = 3 };
    daemon_proc d;
    char log[256];
    snprintf(log, sizeof log, "%s/max.log", W.dir);
    char *args[] = {"--db", W.db, "--rules", W.rules, "--threads", "2", "--max-connections",
                    "4",    NULL};
    assert_int_equal(daemon_start(&d, log, args, NULL), 0);
    good_client g;
    good_start(&g, d.port); /* one of the MAX */

    int fds[MAX - 1];
    for (int i = 0; i < MAX - 1; i++) {
        fds[i] = connect_raw(d.port, 0);
        expect_served(fds[i], 1 + (uint64_t)i); /* surely counted before the next */
    }
    for (int i = 0; i < EXTRA; i++) {
        int fd = connect_raw(d.port, 0);
        assert_true(fd >= 0);
        expect_error_then_close(fd, "too_many_connections");
        close(fd);
    }
    close(fds[0]);
    /* The count goes back when nbad has seen the close: bounded retries. */
    bool served = false;
    uint64_t refused = EXTRA;
    for (int t = 0; t < 100 && !served; t++) {
        int fd = connect_raw(d.port, 0);
        uint8_t frame[64];
        raw_send_all(fd, frame, pack_ping(frame, 99));
        Nba__V1__Response *r = raw_expect_response(fd);
        served = r->body_case == NBA__V1__RESPONSE__BODY_PONG;
        nba__v1__response__free_unpacked(r, NULL);
        if (served)
            fds[0] = fd;
        else
            close(fd);
        if (!served) {
            refused++;
            sleep_ms(20);
        }
    }
    assert_true(served);
    /* Status, asked on a connection already in, counts every refusal. */
    uint8_t frame[64];
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__StatusRequest sr = NBA__V1__STATUS_REQUEST__INIT;
    req.id = 7;
    req.body_case = NBA__V1__REQUEST__BODY_STATUS;
    req.status = &sr;
    raw_send_all(fds[1], frame, frame_pack(&req.base, frame));
    Nba__V1__Response *st = raw_expect_response(fds[1]);
    assert_int_equal(st->body_case, NBA__V1__RESPONSE__BODY_STATUS);
    assert_int_equal(st->status->connections_refused, refused);
    nba__v1__response__free_unpacked(st, NULL);
    for (int i = 0; i < MAX - 1; i++)
        close(fds[i]);
    good_stop_and_check(&g);
    assert_int_equal(daemon_stop(&d), 0);
    assert_int_equal(log_count(log, "the max_connections limit: refusing new ones"), 1);
    assert_true(log_count(log, "accepting connections again;") >= 1);
    assert_non_null(strstr(test_slurp(log), "refused at max_connections"));
}

/* A request trickled in a byte at a time keeps the connection from being
 * idle, but not from frame_timeout: answered frame_timeout and closed. A
 * request that arrives in two parts within it is served; a well-behaved
 * client sees nothing of either. */
static void request_trickling_in_is_cut_off(void **state)
{
    (void)state;
    daemon_proc d;
    char log[256];
    snprintf(log, sizeof log, "%s/trickle.log", W.dir);
    char *args[] = {"--db",
                    W.db,
                    "--rules",
                    W.rules,
                    "--threads",
                    "2",
                    "--idle-timeout",
                    "60",
                    "--frame-timeout",
                    daemon_wrapped() ? "10" : "2",
                    NULL};
    assert_int_equal(daemon_start(&d, log, args, NULL), 0);
    good_client g;
    good_start(&g, d.port);

    /* in two parts, half a second apart: served */
    int fd = connect_raw(d.port, 0);
    assert_true(fd >= 0);
    uint8_t frame[64];
    size_t len = pack_ping(frame, 41);
    raw_send_all(fd, frame, 3);
    sleep_ms(500);
    raw_send_all(fd, frame + 3, len - 3);
    Nba__V1__Response *r = raw_expect_response(fd);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_PONG);
    nba__v1__response__free_unpacked(r, NULL);
    close(fd);

    /* a 200-byte request, a byte every 200 ms */
    fd = connect_raw(d.port, 0);
    assert_true(fd >= 0);
    const uint8_t header[4] = {0, 0, 0, 200};
    raw_send_all(fd, header, sizeof header);
    uint64_t start = now_ms();
    bool answered = false;
    for (int i = 0; i < 180 && !answered; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        answered = poll(&p, 1, 200) == 1;
        if (!answered)
            (void)send(fd, "x", 1, MSG_NOSIGNAL); /* 180 bytes: never whole */
    }
    assert_true(answered);
    assert_true(now_ms() - start >= 1000); /* not before its timeout */
    expect_error_then_close(fd, "frame_timeout");
    close(fd);
    good_stop_and_check(&g);
    assert_int_equal(daemon_stop(&d), 0);
    assert_int_equal(log_count(log, "a request still incomplete after"), 1);
}

static void low_open_file_limit(void)
{
    struct rlimit rl = {96, 96};
    setrlimit(RLIMIT_NOFILE, &rl);
}

static long cpu_ticks(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    const char *st = strrchr(test_slurp(path), ')'); /* after the command name */
    if (!st)
        return -1;
    long utime = 0, stime = 0;
    /* fields 3..15: state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (sscanf(st + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) != 2)
        return -1;
    return utime + stime;
}

/* Out of file descriptors (EMFILE): nbad neither spins on the connection
 * waiting in the backlog nor logs each attempt. It pauses, logs the
 * episode once, goes on serving the connections it has, and accepts again
 * once descriptors are free. */
static void out_of_descriptors_pauses_accepting_and_logs_once(void **state)
{
    (void)state;
    daemon_proc d;
    char log[256];
    snprintf(log, sizeof log, "%s/emfile.log", W.dir);
    char *args[] = {"--db", W.db, "--rules", W.rules, "--threads", "2", NULL};
    assert_int_equal(daemon_start(&d, log, args, low_open_file_limit), 0);
    assert_non_null(strstr(test_slurp(log), "open-file limit is")); /* it warned */
    good_client g;
    good_start(&g, d.port);

    enum { N = 150 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = connect_raw(d.port, 0); /* the kernel completes them into the backlog */
        assert_true(fds[i] >= 0);
    }
    for (int t = 0; t < daemon_patience_ms(5000) && !log_count(log, "cannot accept"); t += 20)
        sleep_ms(20);
    assert_int_equal(log_count(log, "cannot accept connections: Too many open files"), 1);
    long cpu_before = cpu_ticks(d.pid);
    sleep_ms(1000);
    long cpu = cpu_ticks(d.pid) - cpu_before;
    printf("# out of descriptors for 1 s: nbad used %ld clock ticks of CPU (%ld per s)\n", cpu,
           sysconf(_SC_CLK_TCK));
    if (!daemon_wrapped())
        assert_true(cpu < sysconf(_SC_CLK_TCK) / 5); /* under 20% of a core: no spinning */
    assert_int_equal(log_count(log, "cannot accept connections"), 1);

    for (int i = 0; i < N; i++)
        close(fds[i]);
    /* Descriptors come back as nbad closes what it had: a new client is
     * served again, and the episode's end is logged. */
    bool served = false;
    for (int t = 0; t < 200 && !served; t++) {
        int fd = connect_raw(d.port, 0);
        uint8_t frame[64];
        raw_send_all(fd, frame, pack_ping(frame, 5));
        uint8_t header[FRAME_HEADER_SIZE];
        served = raw_recv_exact(fd, header, sizeof header) == 0;
        close(fd);
        if (!served)
            sleep_ms(50);
    }
    assert_true(served);
    good_stop_and_check(&g);
    assert_int_equal(daemon_stop(&d), 0);
    /* The backlog those clients left can run it out once more: each
     * episode is logged when it starts and when it ends, never between. */
    int episodes = log_count(log, "cannot accept connections");
    assert_true(episodes >= 1);
    assert_int_equal(log_count(log, "accepting connections again after"), episodes);
}

static int start_world(void **state)
{
    (void)state;
    strcpy(W.dir, "/tmp/nba-hostile-XXXXXX");
    if (!mkdtemp(W.dir))
        return -1;
    snprintf(W.db, sizeof W.db, "%s/db", W.dir);
    snprintf(W.log, sizeof W.log, "%s/nbad.log", W.dir);
    snprintf(W.rules, sizeof W.rules, "%s/rules/airline-checkin.yaml", test_env("NBA_SOURCE_DIR"));
    if (daemon_load_sample(W.dir, W.db))
        return -1;

    /* Thousands of idle connections need thousands of descriptors, here
     * and in nbad (which inherits the limit): as many as the hard limit
     * allows, leaving room for the rest. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    W.n_idle = rl.rlim_cur > 3256 ? 3000 : (int)rl.rlim_cur - 256;
    if (W.n_idle < 100) {
        fprintf(stderr, "the open-file limit (%llu) is too low for this test\n",
                (unsigned long long)rl.rlim_cur);
        return -1;
    }
    W.idle_timeout_s = daemon_wrapped() ? 20 : 3;
    char max_conns[16], idle[16];
    snprintf(max_conns, sizeof max_conns, "%d", W.n_idle + 100);
    snprintf(idle, sizeof idle, "%d", W.idle_timeout_s);
    char *args[] = {"--db",
                    W.db,
                    "--rules",
                    W.rules,
                    "--threads",
                    "2",
                    "--max-connections",
                    max_conns,
                    "--idle-timeout",
                    idle,
                    NULL};
    return daemon_start(&W.d, W.log, args, NULL);
}

static int stop_world(void **state)
{
    (void)state;
    int rc = W.d.pid > 0 && daemon_stop(&W.d) != 0 ? -1 : 0;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", W.dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(garbage_gets_an_error_and_a_close),
        cmocka_unit_test(truncated_frames_are_never_answered),
        cmocka_unit_test(length_of_4_gib_is_refused_on_its_header),
        cmocka_unit_test(frames_split_byte_by_byte),
        cmocka_unit_test(half_closed_sockets),
        cmocka_unit_test(client_that_never_reads_is_held_back_then_closed),
        cmocka_unit_test(thousands_of_idle_connections_are_closed_when_idle),
        cmocka_unit_test(connections_past_max_connections_are_refused_politely),
        cmocka_unit_test(request_trickling_in_is_cut_off),
        cmocka_unit_test(out_of_descriptors_pauses_accepting_and_logs_once),
    };
    return cmocka_run_group_tests(tests, start_world, stop_world);
}
