/* TLS with client certificates, against the real nbad: a CA, a server
 * certificate and client certificates (one from another CA) are made at
 * test time with the openssl command, as README (Operations) tells ops
 * staff to. A client with a certificate from the CA gets decisions; one
 * without a certificate, one with another CA's, and a plain client are
 * refused; with TLS optional both kinds are served; certificate files that
 * are missing or wrong stop nbad at start with their exit codes. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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
#include <sys/socket.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "daemon.h"
#include "raw_socket.h"
#include "frame.h"
#include "nba.pb-c.h"

#define SAMPLE_CUSTOMER "C1001"

typedef struct world {
    char dir[64];
    char db[128];
    char rules[512];
    char log[160];
    daemon_proc d; /* TLS required, client certificates from ca.pem */
} world;

static world W;

/* The files made by make_certificates(), in W.dir. */
static const char *file(const char *name)
{
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", W.dir, name);
    return p;
}

/* A CA, a server certificate for 127.0.0.1, a renewed one (another key and
 * serial) and a client certificate (kiosk-17) it signed; another CA and a client certificate it
 * signed (intruder). */
static int make_certificates(void)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; cd '%s'; new='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'\n"
             "openssl req -x509 $new -days 2 -subj /CN=nbad-test-ca -keyout ca.key -out ca.pem\n"
             "openssl req -x509 $new -days 2 -subj /CN=other-ca -keyout other.key -out other.pem\n"
             "openssl req $new -subj /CN=127.0.0.1 -keyout server.key -out server.csr\n"
             "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext\n"
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile server.ext -out server.pem\n"
             "openssl req $new -subj /CN=127.0.0.1 -keyout renewed.key -out renewed.csr\n"
             "openssl x509 -req -in renewed.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile server.ext -out renewed.pem\n"
             "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
             "openssl req $new -subj /CN=kiosk-17 -keyout client.key -out client.csr\n"
             "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile client.ext -out client.pem\n"
             "openssl req $new -subj /CN=intruder -keyout intruder.key -out intruder.csr\n"
             "openssl x509 -req -in intruder.csr -CA other.pem -CAkey other.key -CAcreateserial "
             "-days 2 -extfile client.ext -out intruder.pem\n",
             W.dir);
    char script[256], out[256], run[1024];
    snprintf(script, sizeof script, "%s/make-certs.sh", W.dir);
    snprintf(out, sizeof out, "%s/make-certs.out", W.dir);
    test_write_file(script, cmd);
    snprintf(run, sizeof run, "sh '%s' > '%s' 2>&1", script, out);
    if (system(run) != 0) {
        fprintf(stderr, "openssl failed:\n%s\n", test_slurp(out));
        return -1;
    }
    return 0;
}

/* ---- a TLS client of the protocol ---- */

typedef struct tls_client {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
} tls_client;

static int connect_tcp(int port)
{
    int fd = raw_connect(port, 0, daemon_patience_ms(5000));
    assert_true(fd >= 0);
    return fd;
}

/* Connects with the client certificate `name` (NULL: none), checking the
 * server's certificate against ca.pem and 127.0.0.1. Returns 0, or -1
 * when the handshake failed (t is usable for tls_close either way). */
static int tls_open(tls_client *t, int port, const char *name)
{
    memset(t, 0, sizeof *t);
    t->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(t->ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(t->ctx, file("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    if (name) {
        char cert[64], key[64];
        snprintf(cert, sizeof cert, "%s.pem", name);
        snprintf(key, sizeof key, "%s.key", name);
        assert_int_equal(SSL_CTX_use_certificate_file(t->ctx, file(cert), SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(t->ctx, file(key), SSL_FILETYPE_PEM), 1);
    }
    t->fd = connect_tcp(port);
    t->ssl = SSL_new(t->ctx);
    assert_non_null(t->ssl);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), "127.0.0.1");
    SSL_set_fd(t->ssl, t->fd);
    int rc = SSL_connect(t->ssl) == 1 ? 0 : -1;
    ERR_clear_error();
    return rc;
}

static void tls_close(tls_client *t)
{
    if (t->ssl) {
        SSL_shutdown(t->ssl);
        SSL_free(t->ssl);
    }
    SSL_CTX_free(t->ctx);
    if (t->fd >= 0)
        close(t->fd);
    ERR_clear_error();
}

static int tls_send(tls_client *t, const void *buf, size_t n)
{
    int w = SSL_write(t->ssl, buf, (int)n);
    ERR_clear_error();
    return w == (int)n ? 0 : -1;
}

static int tls_read_exact(tls_client *t, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        int r = SSL_read(t->ssl, p + got, (int)(n - got));
        if (r <= 0) {
            ERR_clear_error();
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* The next answer, or NULL when the connection ended or failed. */
static Nba__V1__Response *tls_recv(tls_client *t)
{
    uint8_t header[FRAME_HEADER_SIZE];
    if (tls_read_exact(t, header, sizeof header))
        return NULL;
    uint32_t len = frame_get_length(header);
    static uint8_t body[1 << 20];
    if (len > sizeof body || tls_read_exact(t, body, len))
        return NULL;
    return nba__v1__response__unpack(NULL, len, body);
}

static size_t pack_contact(uint8_t *out, uint64_t id)
{
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    Nba__V1__ContactEvent__ContextEntry cab = NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT;
    Nba__V1__ContactEvent__ContextEntry *ctx[] = {&cab};
    cab.key = "cabin";
    cab.value = "Y";
    ev.customer_id = SAMPLE_CUSTOMER;
    ev.channel = NBA__V1__CHANNEL__KIOSK;
    ev.touchpoint = "checkin";
    ev.context = ctx;
    ev.n_context = 1;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
    req.contact = &ev;
    return frame_pack(&req.base, out);
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

static void expect_decision(Nba__V1__Response *r, uint64_t id)
{
    assert_non_null(r);
    assert_int_equal(r->id, id);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
    assert_string_equal(r->decision->customer_id, SAMPLE_CUSTOMER);
    assert_true(r->decision->known);
    assert_non_null(strchr(r->decision->ruleset, '@'));
    assert_true(r->decision->n_actions > 0);
    nba__v1__response__free_unpacked(r, NULL);
}

/* ---- tests ---- */

/* With a certificate from the CA: decisions, one at a time, a thousand
 * pipelined in one go (many TLS records each way, answers held back and
 * released as the client reads), and one sent a byte per record. */
static void client_with_a_valid_certificate_gets_decisions(void **state)
{
    (void)state;
    tls_client t;
    assert_int_equal(tls_open(&t, W.d.port, "client"), 0);
    uint8_t frame[256];
    for (uint64_t id = 1; id <= 5; id++) {
        assert_int_equal(tls_send(&t, frame, pack_contact(frame, id)), 0);
        expect_decision(tls_recv(&t), id);
    }

    enum { N = 1000 };
    uint8_t *buf = malloc(N * 64);
    assert_non_null(buf);
    size_t len = 0;
    for (uint64_t id = 0; id < N; id++)
        len += pack_contact(buf + len, 100 + id);
    assert_int_equal(tls_send(&t, buf, len), 0);
    for (uint64_t id = 0; id < N; id++)
        expect_decision(tls_recv(&t), 100 + id);
    free(buf);

    len = pack_contact(frame, 7);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(tls_send(&t, frame + i, 1), 0);
    expect_decision(tls_recv(&t), 7);

    /* close_notify, then EOF: nbad ends the session cleanly. */
    assert_true(SSL_shutdown(t.ssl) >= 0);
    uint8_t b;
    assert_true(SSL_read(t.ssl, &b, 1) <= 0);
    assert_int_equal(SSL_get_error(t.ssl, 0), SSL_ERROR_ZERO_RETURN);
    tls_close(&t);
}

/* Refused: the handshake fails (TLS 1.2), or with TLS 1.3, where the
 * client finishes first, its first read sees the server's alert. Never a
 * decision; and nbad logs who was refused. */
static void expect_refused(const char *name)
{
    tls_client t;
    if (tls_open(&t, W.d.port, name) == 0) {
        uint8_t frame[64];
        tls_send(&t, frame, pack_ping(frame, 1));
        assert_null(tls_recv(&t));
    }
    tls_close(&t);
}

/* Whether nbad's log comes to hold `what` (bounded wait: it logs after
 * the client has seen the refusal). */
static bool wait_for_log(const char *what)
{
    for (int t = 0; t < daemon_patience_ms(2000) && !strstr(test_slurp(W.log), what); t += 5)
        usleep(5000);
    return strstr(test_slurp(W.log), what) != NULL;
}

static void client_without_a_certificate_is_refused(void **state)
{
    (void)state;
    expect_refused(NULL);
    if (!wait_for_log("TLS handshake failed: peer did not return a certificate"))
        fail_msg("nbad did not log the refusal:\n%s", test_slurp(W.log));
}

static void client_with_another_cas_certificate_is_refused(void **state)
{
    (void)state;
    expect_refused("intruder");
    if (!wait_for_log("TLS handshake failed: certificate verify failed"))
        fail_msg("nbad did not log the refusal:\n%s", test_slurp(W.log));
}

/* Plain TCP to a TLS port: an error the client can read, tls_required,
 * then EOF. */
static void plain_tcp_to_the_tls_port_is_refused(void **state)
{
    (void)state;
    int fd = connect_tcp(W.d.port);
    uint8_t frame[64];
    size_t len = pack_ping(frame, 3);
    assert_int_equal(send(fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
    Nba__V1__Response *r = raw_expect_response(fd);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_ERROR);
    assert_string_equal(r->error->code, "tls_required");
    nba__v1__response__free_unpacked(r, NULL);
    uint8_t byte;
    assert_int_equal(raw_recv_exact(fd, &byte, 1), 1); /* EOF */
    close(fd);
}

/* nbad's count of failed TLS handshakes, asked over plain TCP (a port
 * with tls_required: false). */
static uint64_t tls_failures(int port)
{
    int fd = connect_tcp(port);
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__StatusRequest s = NBA__V1__STATUS_REQUEST__INIT;
    req.id = 5;
    req.body_case = NBA__V1__REQUEST__BODY_STATUS;
    req.status = &s;
    uint8_t frame[64];
    size_t len = frame_pack(&req.base, frame);
    assert_int_equal(send(fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
    Nba__V1__Response *r = raw_expect_response(fd);
    close(fd);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_STATUS);
    uint64_t failed = r->status->tls_handshakes_failed;
    nba__v1__response__free_unpacked(r, NULL);
    return failed;
}

/* A TLS client that never finishes its handshake is closed when idle. */
static void stalled_handshake_is_closed_when_idle(void **state)
{
    (void)state;
    int fd = connect_tcp(W.d.port);
    static const uint8_t half_hello[] = {0x16, 0x03, 0x01, 0x00, 0x80, 0x01};
    assert_int_equal(send(fd, half_hello, sizeof half_hello, MSG_NOSIGNAL),
                     (ssize_t)sizeof half_hello);
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, daemon_patience_ms(5000)), 1);
    uint8_t b;
    ssize_t r = recv(fd, &b, 1, 0);
    assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
    close(fd);
}

/* Whether the server certificate of t's session is the one in file `name`. */
static bool server_certificate_is(tls_client *t, const char *name)
{
    FILE *f = fopen(file(name), "rb");
    assert_non_null(f);
    X509 *want = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(want);
    X509 *got = SSL_get1_peer_certificate(t->ssl);
    assert_non_null(got);
    bool same = X509_cmp(got, want) == 0;
    X509_free(got);
    X509_free(want);
    return same;
}

static void copy_file(const char *from, const char *to)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    test_write_file(tmp, test_slurp(from));
    assert_int_equal(rename(tmp, to), 0);
}

/* nbactl status against the TLS port, with the environment tls names
 * (NULL: none of it); nbactl's exit code, its output in W.dir/nbactl.out. */
static int nbactl_status_over(const char *ca, const char *cert, const char *key)
{
    char port[16], out[256];
    snprintf(port, sizeof port, "%d", W.d.port);
    snprintf(out, sizeof out, "%s/nbactl.out", W.dir);
    const char *names[] = {"NBACTL_TLS_CA", "NBACTL_TLS_CERT", "NBACTL_TLS_KEY"};
    const char *values[] = {ca, cert, key};
    for (int i = 0; i < 3; i++) {
        if (values[i])
            setenv(names[i], file(values[i]), 1);
        else
            unsetenv(names[i]);
    }
    char *argv[] = {(char *)test_env("NBACTL_BIN"), "status", "--port", port, NULL};
    int code = test_run(argv, out);
    for (int i = 0; i < 3; i++)
        unsetenv(names[i]);
    return code;
}

/* nbactl speaks TLS when NBACTL_TLS_CA is set, with a client certificate
 * from NBACTL_TLS_CERT and NBACTL_TLS_KEY; each way it can go wrong says
 * so. */
static void nbactl_speaks_tls(void **state)
{
    (void)state;
    char out[256];
    snprintf(out, sizeof out, "%s/nbactl.out", W.dir);
    assert_int_equal(nbactl_status_over("ca.pem", "client.pem", "client.key"), 0);
    assert_non_null(strstr(test_slurp(out), "serving airline-checkin@"));
    assert_non_null(strstr(test_slurp(out), "failed TLS handshakes"));

    /* plain TCP to the TLS port: nbad's answer, tls_required, and one more
     * failed handshake in Status */
    unsigned long long before = 0, after = 0;
    const char *count = strstr(test_slurp(out), "closed idle, ");
    assert_non_null(count);
    assert_int_equal(sscanf(count, "closed idle, %llu failed TLS", &before), 1);
    assert_int_equal(nbactl_status_over(NULL, NULL, NULL), 65);
    assert_non_null(strstr(test_slurp(out), "tls_required"));
    assert_int_equal(nbactl_status_over("ca.pem", "client.pem", "client.key"), 0);
    count = strstr(test_slurp(out), "closed idle, ");
    assert_non_null(count);
    assert_int_equal(sscanf(count, "closed idle, %llu failed TLS", &after), 1);
    assert_int_equal(after, before + 1);
    /* no client certificate, and nbad asks for one */
    assert_int_equal(nbactl_status_over("ca.pem", NULL, NULL), 69);
    assert_non_null(strstr(test_slurp(out), "asks for a client certificate, and none was given"));
    /* nbad's certificate checked against another CA: nbactl refuses it */
    assert_int_equal(nbactl_status_over("other.pem", "client.pem", "client.key"), 69);
    assert_non_null(strstr(test_slurp(out), "TLS handshake with 127.0.0.1 failed: "));
    assert_non_null(strstr(test_slurp(out), "certificate"));
    /* a certificate without its key; a certificate without a CA to check
     * nbad's against */
    assert_int_equal(nbactl_status_over("ca.pem", "client.pem", NULL), 69);
    assert_non_null(strstr(test_slurp(out), "a client certificate needs its key"));
    assert_int_equal(nbactl_status_over(NULL, "client.pem", "client.key"), 64);
    assert_non_null(strstr(test_slurp(out), "need NBACTL_TLS_CA"));
}

/* A renewed certificate is served to new connections after SIGHUP, while
 * connections made before keep theirs; files that do not make a good
 * context are refused with a message, and the certificate before goes on. */
static void certificate_is_reloaded_on_sighup(void **state)
{
    (void)state;
    char cert[256], key[256], log[256];
    snprintf(cert, sizeof cert, "%s", file("serving.pem"));
    snprintf(key, sizeof key, "%s", file("serving.key"));
    snprintf(log, sizeof log, "%s/reload.log", W.dir);
    copy_file(file("server.pem"), cert);
    copy_file(file("server.key"), key);
    daemon_proc d;
    char *args[] = {"--db", W.db,        "--rules", W.rules,           "--tls-cert",
                    cert,   "--tls-key", key,       "--tls-client-ca", (char *)file("ca.pem"),
                    NULL};
    assert_int_equal(daemon_start(&d, log, args, NULL), 0);
    tls_client before, after;
    assert_int_equal(tls_open(&before, d.port, "client"), 0);
    assert_true(server_certificate_is(&before, "server.pem"));

    copy_file(file("renewed.pem"), cert);
    copy_file(file("renewed.key"), key);
    kill(d.pid, SIGHUP);
    for (int t = 0; t < daemon_patience_ms(5000) &&
                    !strstr(test_slurp(log), "TLS certificate and key reloaded");
         t += 10)
        usleep(10000);
    assert_non_null(strstr(test_slurp(log), "TLS certificate and key reloaded"));
    assert_int_equal(tls_open(&after, d.port, "client"), 0);
    assert_true(server_certificate_is(&after, "renewed.pem"));
    uint8_t frame[256];
    assert_int_equal(tls_send(&before, frame, pack_contact(frame, 21)), 0);
    expect_decision(tls_recv(&before), 21);
    assert_int_equal(tls_send(&after, frame, pack_contact(frame, 22)), 0);
    expect_decision(tls_recv(&after), 22);
    tls_close(&before);
    tls_close(&after);

    /* A key that is not the certificate's: refused, the renewed one stays. */
    copy_file(file("server.key"), key);
    kill(d.pid, SIGHUP);
    for (int t = 0;
         t < daemon_patience_ms(5000) && !strstr(test_slurp(log), "TLS certificate not reloaded");
         t += 10)
        usleep(10000);
    assert_non_null(strstr(test_slurp(log), "the key does not match the certificate"));
    assert_int_equal(tls_open(&after, d.port, "client"), 0);
    assert_true(server_certificate_is(&after, "renewed.pem"));
    assert_int_equal(tls_send(&after, frame, pack_contact(frame, 23)), 0);
    expect_decision(tls_recv(&after), 23);
    tls_close(&after);
    assert_int_equal(daemon_stop(&d), 0);
}

/* tls_required: false serves TLS and plain clients on the same port, as
 * contact points move over to TLS one by one. */
static void optional_tls_serves_both(void **state)
{
    (void)state;
    daemon_proc d;
    char log[256];
    snprintf(log, sizeof log, "%s/optional.log", W.dir);
    char *args[] = {"--db",
                    W.db,
                    "--rules",
                    W.rules,
                    "--tls-cert",
                    (char *)file("server.pem"),
                    "--tls-key",
                    (char *)file("server.key"),
                    "--tls-client-ca",
                    (char *)file("ca.pem"),
                    "--tls-required=false",
                    NULL};
    assert_int_equal(daemon_start(&d, log, args, NULL), 0);
    assert_non_null(strstr(test_slurp(log), "(TLS or plain)"));

    int fd = connect_tcp(d.port);
    uint8_t frame[256];
    size_t len = pack_contact(frame, 11);
    assert_int_equal(send(fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
    expect_decision(raw_expect_response(fd), 11);
    close(fd);

    tls_client t;
    assert_int_equal(tls_open(&t, d.port, "client"), 0);
    assert_int_equal(tls_send(&t, frame, pack_contact(frame, 12)), 0);
    expect_decision(tls_recv(&t), 12);
    tls_close(&t);
    assert_int_equal(tls_failures(d.port), 0);
    /* still no way in with a certificate from elsewhere, and Status counts
     * the attempt (once nbad has seen it fail: bounded retries) */
    assert_int_equal(tls_open(&t, d.port, "intruder") == 0 &&
                         tls_send(&t, frame, pack_ping(frame, 1)) == 0 && tls_recv(&t) != NULL,
                     0);
    tls_close(&t);
    uint64_t failed = 0;
    for (int waited = 0; waited < daemon_patience_ms(5000) && failed == 0; waited += 20) {
        failed = tls_failures(d.port);
        if (failed == 0)
            nanosleep(&(struct timespec){0, 20 * 1000000}, NULL);
    }
    assert_int_equal(failed, 1);
    assert_int_equal(daemon_stop(&d), 0);
}

/* Certificate files that are missing or wrong stop nbad at start: 66 for a
 * file that cannot be read, 65 for one that does not hold what it should. */
static void wrong_tls_files_stop_nbad_at_start(void **state)
{
    (void)state;
    char out[256];
    snprintf(out, sizeof out, "%s/start.out", W.dir);
    test_write_file(file("garbage.pem"), "not a certificate\n");
    static const struct {
        const char *cert, *key, *ca;
        int code;
        const char *says;
    } cases[] = {
        {"missing.pem", "server.key", "ca.pem", 66, "cannot read the TLS certificate"},
        {"server.pem", "missing.key", "ca.pem", 66, "cannot read the TLS key"},
        {"server.pem", "server.key", "missing.pem", 66, "cannot read the TLS client CA file"},
        {"garbage.pem", "server.key", "ca.pem", 65, "not a PEM certificate"},
        {"server.pem", "other.key", "ca.pem", 65, "the key does not match the certificate"},
        {"server.pem", "server.key", "garbage.pem", 65, "no PEM CA certificate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *args[] = {"--db",
                        W.db,
                        "--rules",
                        W.rules,
                        "--port",
                        "0",
                        "--tls-cert",
                        (char *)file(cases[i].cert),
                        "--tls-key",
                        (char *)file(cases[i].key),
                        "--tls-client-ca",
                        (char *)file(cases[i].ca),
                        NULL};
        int code = daemon_run(args, out);
        const char *msg = test_slurp(out);
        if (code != cases[i].code || !strstr(msg, cases[i].says))
            fail_msg("case %zu: exit %d (want %d):\n%s", i, code, cases[i].code, msg);
    }
}

static int start_world(void **state)
{
    (void)state;
    strcpy(W.dir, "/tmp/nba-tls-XXXXXX");
    if (!mkdtemp(W.dir))
        return -1;
    snprintf(W.db, sizeof W.db, "%s/db", W.dir);
    snprintf(W.log, sizeof W.log, "%s/nbad.log", W.dir);
    snprintf(W.rules, sizeof W.rules, "%s/rules/airline-checkin.yaml", test_env("NBA_SOURCE_DIR"));
    if (daemon_load_sample(W.dir, W.db) || make_certificates())
        return -1;
    char *args[] = {"--db",
                    W.db,
                    "--rules",
                    W.rules,
                    "--threads",
                    "2",
                    "--idle-timeout",
                    "2",
                    "--tls-cert",
                    (char *)file("server.pem"),
                    "--tls-key",
                    (char *)file("server.key"),
                    "--tls-client-ca",
                    (char *)file("ca.pem"),
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
        cmocka_unit_test(client_with_a_valid_certificate_gets_decisions),
        cmocka_unit_test(client_without_a_certificate_is_refused),
        cmocka_unit_test(client_with_another_cas_certificate_is_refused),
        cmocka_unit_test(plain_tcp_to_the_tls_port_is_refused),
        cmocka_unit_test(stalled_handshake_is_closed_when_idle),
        cmocka_unit_test(optional_tls_serves_both),
        cmocka_unit_test(certificate_is_reloaded_on_sighup),
        cmocka_unit_test(nbactl_speaks_tls),
        cmocka_unit_test(wrong_tls_files_stop_nbad_at_start),
    };
    return cmocka_run_group_tests(tests, start_world, stop_world);
}
