/* Integration test: the real nbactl loads contract-shaped CSVs, the real
 * nbad serves them on a free loopback port, and this test talks the real
 * protocol to it, as a desk, a kiosk and an IVR would.
 *
 * Binaries come from the environment (NBAD_BIN, NBACTL_BIN), the shipped
 * rules from NBA_SOURCE_DIR; ctest sets all three. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "client.h"
#include "clock.h"
#include "frame.h"

typedef struct world {
    char dir[64];
    char db[128];
    char log[128];
    char rules[512];
    pid_t nbad;
    int port;
} world;

static world W;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (!v) {
        fprintf(stderr, "%s is not set (run this test through ctest)\n", name);
        exit(1);
    }
    return v;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void iso_days_ago(int days, char *out, size_t cap)
{
    time_t t = time(NULL) - (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Runs argv with stdout+stderr into `out_path`; returns the exit status. */
static int run(char *const argv[], const char *out_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    if (!f)
        return strcpy(buf, "");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static nba_client *connect_or_fail(void)
{
    nba_client *c = NULL;
    nba_error err;
    if (client_connect("127.0.0.1", W.port, 5000, &c, &err) != 0)
        fail_msg("%s", err.msg);
    return c;
}

static Nba__V1__Response *ping(nba_client *c, uint64_t id)
{
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__Ping p = NBA__V1__PING__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_PING;
    req.ping = &p;
    Nba__V1__Response *resp = NULL;
    nba_error err;
    if (client_call(c, &req, &resp, &err) != 0)
        return NULL;
    return resp;
}

static int start_world(void **state)
{
    (void)state;
    strcpy(W.dir, "/tmp/nba-it-XXXXXX");
    if (!mkdtemp(W.dir))
        return -1;
    snprintf(W.db, sizeof W.db, "%s/db", W.dir);
    snprintf(W.log, sizeof W.log, "%s/nbad.log", W.dir);
    /* nbad serves a copy of the shipped rules, so the reload test can edit it. */
    char shipped[512];
    snprintf(shipped, sizeof shipped, "%s/rules/airline-checkin.yaml", env("NBA_SOURCE_DIR"));
    snprintf(W.rules, sizeof W.rules, "%s/rules.yaml", W.dir);
    write_file(W.rules, slurp(shipped));

    char path[256], ten_days[32], old[32];
    iso_days_ago(10, ten_days, sizeof ten_days);
    iso_days_ago(900, old, sizeof old);
    snprintf(path, sizeof path, "%s/customers.csv", W.dir);
    /* Columns in a different order than the contract lists them, plus extra
     * attribute columns: both must be accepted. */
    write_file(path, "customer_id,tier,name,language,predicted_ltv,lifetime_value,home_airport\n"
                     "P100,platinum,Giulia Rossi,it,52000,81000,FCO\n"
                     "P200,none,Tom Low,en,300,120,LHR\n"
                     "P300,gold,\"Chen, Mei\",zh-Hant,45000,30000,TPE\n");
    char incidents[1024];
    snprintf(incidents, sizeof incidents,
             "incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note\n"
             "X1,P100,ife_broken,3,%s,AZ611,0,\"Seat 32C, screen dead for 9 hours\"\n"
             "X2,P300,delay,2,%s,BR87,1,\n",
             ten_days, old);
    snprintf(path, sizeof path, "%s/incidents.csv", W.dir);
    write_file(path, incidents);

    char customers_arg[256], incidents_arg[256], out[256];
    snprintf(customers_arg, sizeof customers_arg, "%s/customers.csv", W.dir);
    snprintf(incidents_arg, sizeof incidents_arg, "%s/incidents.csv", W.dir);
    snprintf(out, sizeof out, "%s/load.out", W.dir);
    char *load[] = {(char *)env("NBACTL_BIN"),
                    "load",
                    "--db",
                    W.db,
                    "--customers",
                    customers_arg,
                    "--incidents",
                    incidents_arg,
                    NULL};
    if (run(load, out) != 0) {
        fprintf(stderr, "nbactl load failed:\n%s\n", slurp(out));
        return -1;
    }

    W.port = free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", W.port);
    W.nbad = fork();
    if (W.nbad == 0) {
        int fd = open(W.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        execl(env("NBAD_BIN"), "nbad", "--db", W.db, "--rules", W.rules, "--listen", "127.0.0.1",
              "--port", port, "--threads", "2", (char *)NULL);
        _exit(127);
    }
    /* Wait (bounded) until nbad answers a ping. */
    for (int i = 0; i < 100; i++) {
        nba_client *c;
        if (client_connect("127.0.0.1", W.port, 1000, &c, NULL) == 0) {
            Nba__V1__Response *r = ping(c, 1);
            client_close(c);
            if (r) {
                nba__v1__response__free_unpacked(r, NULL);
                return 0;
            }
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "nbad did not come up:\n%s\n", slurp(W.log));
    return -1;
}

static int stop_world(void **state)
{
    (void)state;
    int rc = 0;
    if (W.nbad > 0) {
        kill(W.nbad, SIGTERM);
        int status = 0;
        waitpid(W.nbad, &status, 0);
        /* A clean shutdown on SIGTERM exits 0. */
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "nbad did not exit cleanly (status %d):\n%s\n", status, slurp(W.log));
            rc = -1;
        }
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", W.dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

static Nba__V1__Response *contact(nba_client *c, uint64_t id, const char *customer,
                                  Nba__V1__Channel channel, const char *cabin)
{
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    Nba__V1__ContactEvent__ContextEntry cab = NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT;
    Nba__V1__ContactEvent__ContextEntry flight = NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT;
    Nba__V1__ContactEvent__ContextEntry *ctx[] = {&cab, &flight};
    ev.customer_id = (char *)customer;
    ev.channel = channel;
    ev.touchpoint = "checkin";
    ev.location = "FCO-T3";
    cab.key = "cabin";
    cab.value = (char *)cabin;
    flight.key = "flight";
    flight.value = "AZ610";
    ev.context = ctx;
    ev.n_context = 2;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
    req.contact = &ev;
    Nba__V1__Response *resp = NULL;
    nba_error err;
    if (client_call(c, &req, &resp, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(resp->id, id);
    if (resp->body_case != NBA__V1__RESPONSE__BODY_DECISION)
        fail_msg("expected a decision, got body %d%s%s", resp->body_case,
                 resp->body_case == NBA__V1__RESPONSE__BODY_ERROR ? ": " : "",
                 resp->body_case == NBA__V1__RESPONSE__BODY_ERROR ? resp->error->message : "");
    return resp;
}

static const Nba__V1__Action *find_action(const Nba__V1__Decision *d, const char *type)
{
    for (size_t i = 0; i < d->n_actions; i++)
        if (strcmp(d->actions[i]->type, type) == 0)
            return d->actions[i];
    return NULL;
}

static const char *param(const Nba__V1__Action *a, const char *key)
{
    for (size_t i = 0; i < a->n_params; i++)
        if (strcmp(a->params[i]->key, key) == 0)
            return a->params[i]->value;
    return NULL;
}

static void valuable_passenger_is_upgraded_on_every_channel(void **state)
{
    (void)state;
    nba_client *c = connect_or_fail();
    const Nba__V1__Channel channels[] = {NBA__V1__CHANNEL__KIOSK, NBA__V1__CHANNEL__DESK,
                                         NBA__V1__CHANNEL__IVR};
    char messages[3][1024], letters[3][1024];
    char types[3][512];
    for (int i = 0; i < 3; i++) {
        Nba__V1__Response *r = contact(c, 10 + (uint64_t)i, "P100", channels[i], "Y");
        const Nba__V1__Decision *d = r->decision;
        assert_true(d->known);
        assert_string_equal(d->customer_id, "P100");
        assert_string_equal(d->language, "it");
        assert_non_null(strchr(d->ruleset, '@'));

        const Nba__V1__Action *up = find_action(d, "upgrade");
        const Nba__V1__Action *letter = find_action(d, "apology_letter");
        assert_non_null(up);
        assert_non_null(letter);
        assert_string_equal(param(up, "cabin"), "F");
        assert_false(up->follow_up);
        assert_true(letter->follow_up);
        assert_true(strlen(up->message) > 0);
        assert_true(strlen(up->reason) > 0);
        snprintf(messages[i], sizeof messages[i], "%s", up->message);
        snprintf(letters[i], sizeof letters[i], "%s", letter->message);
        types[i][0] = '\0';
        for (size_t a = 0; a < d->n_actions; a++) {
            assert_true(strlen(d->actions[a]->message) > 0);
            strcat(types[i], d->actions[a]->type);
            strcat(types[i], ",");
        }
        nba__v1__response__free_unpacked(r, NULL);
    }
    /* Messages differ per channel; the treatment does not. */
    assert_string_not_equal(messages[0], messages[1]);
    assert_string_not_equal(messages[1], messages[2]);
    assert_string_not_equal(messages[0], messages[2]);
    assert_string_not_equal(letters[0], letters[1]);
    assert_string_not_equal(letters[1], letters[2]);
    assert_string_equal(types[0], types[1]);
    assert_string_equal(types[1], types[2]);
    client_close(c);
}

static void low_value_passenger_gets_no_recovery(void **state)
{
    (void)state;
    nba_client *c = connect_or_fail();
    Nba__V1__Response *r = contact(c, 20, "P200", NBA__V1__CHANNEL__KIOSK, "Y");
    assert_true(r->decision->known);
    assert_null(find_action(r->decision, "upgrade"));
    assert_null(find_action(r->decision, "apology_letter"));
    assert_string_equal(r->decision->language, "en");
    nba__v1__response__free_unpacked(r, NULL);

    /* A resolved incident from long ago earns no upgrade either. */
    r = contact(c, 21, "P300", NBA__V1__CHANNEL__DESK, "Y");
    assert_null(find_action(r->decision, "upgrade"));
    assert_string_equal(r->decision->language, "zh-Hant");
    nba__v1__response__free_unpacked(r, NULL);
    client_close(c);
}

static void unknown_passenger_is_a_decision(void **state)
{
    (void)state;
    nba_client *c = connect_or_fail();
    Nba__V1__Response *r = contact(c, 30, "NOBODY-42", NBA__V1__CHANNEL__IVR, "Y");
    assert_false(r->decision->known);
    assert_string_equal(r->decision->customer_id, "NOBODY-42");
    assert_null(find_action(r->decision, "upgrade"));
    assert_true(strlen(r->decision->language) > 0);
    nba__v1__response__free_unpacked(r, NULL);
    client_close(c);
}

static void pipelined_requests_come_back_in_order(void **state)
{
    (void)state;
    nba_client *c = connect_or_fail();
    /* Twenty requests in one write, before reading any answer. */
    uint8_t buf[8192];
    size_t used = 0;
    for (uint64_t id = 100; id < 120; id++) {
        Nba__V1__Request req = NBA__V1__REQUEST__INIT;
        Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
        Nba__V1__Ping p = NBA__V1__PING__INIT;
        req.id = id;
        if (id % 2) {
            ev.customer_id = "P100";
            ev.channel = NBA__V1__CHANNEL__KIOSK;
            ev.touchpoint = "checkin";
            req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
            req.contact = &ev;
        } else {
            req.body_case = NBA__V1__REQUEST__BODY_PING;
            req.ping = &p;
        }
        used += frame_pack(&req.base, buf + used);
    }
    assert_int_equal(client_send_raw(c, buf, used, NULL), 0);
    for (uint64_t id = 100; id < 120; id++) {
        Nba__V1__Response *r = NULL;
        assert_int_equal(client_recv(c, &r, NULL), 0);
        assert_int_equal(r->id, id);
        assert_int_equal(r->body_case,
                         id % 2 ? NBA__V1__RESPONSE__BODY_DECISION : NBA__V1__RESPONSE__BODY_PONG);
        nba__v1__response__free_unpacked(r, NULL);
    }
    client_close(c);
}

static void oversized_frame_closes_only_its_connection(void **state)
{
    (void)state;
    nba_client *bad = connect_or_fail();
    nba_client *good = connect_or_fail();

    uint8_t header[FRAME_HEADER_SIZE];
    frame_put_length(header, 10u * 1024 * 1024); /* far above the 64 KiB default */
    assert_int_equal(client_send_raw(bad, header, sizeof header, NULL), 0);
    Nba__V1__Response *r = NULL;
    assert_int_equal(client_recv(bad, &r, NULL), 0);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_ERROR);
    assert_string_equal(r->error->code, "frame_too_large");
    nba__v1__response__free_unpacked(r, NULL);
    /* Then the server closes that connection. */
    assert_int_equal(client_recv(bad, &r, NULL), -ECONNRESET);
    client_close(bad);

    r = contact(good, 40, "P100", NBA__V1__CHANNEL__DESK, "Y");
    assert_non_null(find_action(r->decision, "upgrade"));
    nba__v1__response__free_unpacked(r, NULL);
    client_close(good);
}

static void garbage_body_gets_an_error_then_close(void **state)
{
    (void)state;
    nba_client *bad = connect_or_fail();
    uint8_t frame[FRAME_HEADER_SIZE + 6] = {0};
    frame_put_length(frame, 6);
    memcpy(frame + FRAME_HEADER_SIZE, "\xff\xff\xff\xff\xff\xff", 6);
    assert_int_equal(client_send_raw(bad, frame, sizeof frame, NULL), 0);
    Nba__V1__Response *r = NULL;
    assert_int_equal(client_recv(bad, &r, NULL), 0);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_ERROR);
    assert_string_equal(r->error->code, "bad_request");
    nba__v1__response__free_unpacked(r, NULL);
    assert_int_equal(client_recv(bad, &r, NULL), -ECONNRESET);
    client_close(bad);

    nba_client *good = connect_or_fail();
    r = ping(good, 7);
    assert_non_null(r);
    assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_PONG);
    nba__v1__response__free_unpacked(r, NULL);
    client_close(good);
}

static void bad_csv_row_is_named_and_changes_nothing(void **state)
{
    (void)state;
    char path[256], out[256];
    snprintf(path, sizeof path, "%s/bad.csv", W.dir);
    snprintf(out, sizeof out, "%s/bad.out", W.dir);
    write_file(path, "customer_id,name,tier,lifetime_value,predicted_ltv,language\n"
                     "Q1,Ann,gold,100,200,en\n"
                     "Q2,Bob,gold,lots,200,en\n");
    char *load[] = {(char *)env("NBACTL_BIN"), "load", "--db", W.db, "--customers", path, NULL};
    assert_int_equal(run(load, out), 65);
    const char *msg = slurp(out);
    if (!strstr(msg, "bad.csv:3"))
        fail_msg("expected the file and line in: %s", msg);

    /* The served data is exactly as before. */
    nba_client *c = connect_or_fail();
    Nba__V1__Response *r = contact(c, 50, "P100", NBA__V1__CHANNEL__KIOSK, "Y");
    assert_true(r->decision->known);
    assert_non_null(find_action(r->decision, "upgrade"));
    nba__v1__response__free_unpacked(r, NULL);
    r = contact(c, 51, "Q1", NBA__V1__CHANNEL__KIOSK, "Y");
    assert_false(r->decision->known);
    nba__v1__response__free_unpacked(r, NULL);
    client_close(c);
}

static void broken_rule_file_stops_nbad_at_start(void **state)
{
    (void)state;
    char rules[256], out[256], port[16];
    snprintf(rules, sizeof rules, "%s/broken.yaml", W.dir);
    snprintf(out, sizeof out, "%s/broken.out", W.dir);
    snprintf(port, sizeof port, "%d", free_port());
    write_file(rules, "ruleset: broken\n"
                      "version: 1\n"
                      "languages: [en]\n"
                      "default_language: en\n"
                      "rules:\n"
                      "  - id: r1\n"
                      "    when: customer.predicted_ltv >= \n"
                      "    then:\n"
                      "      - action: greet\n");
    char *argv[] = {(char *)env("NBAD_BIN"), "--db", W.db, "--rules", rules, "--port", port, NULL};
    int code = run(argv, out);
    const char *msg = slurp(out);
    assert_int_equal(code, 65);
    if (!strstr(msg, "broken.yaml:7:"))
        fail_msg("expected file:line:col in: %s", msg);
}

static char *ping_ruleset(char *out, size_t cap)
{
    nba_client *c = connect_or_fail();
    Nba__V1__Response *r = ping(c, 9);
    assert_non_null(r);
    snprintf(out, cap, "%s", r->pong->ruleset);
    nba__v1__response__free_unpacked(r, NULL);
    client_close(c);
    return out;
}

/* Replaces "version: 1" in the shipped rules by another version. */
static void write_rules_version(const char *original, const char *version)
{
    const char *at = strstr(original, "\nversion: 1\n");
    assert_non_null(at);
    static char text[65536];
    size_t head = (size_t)(at - original);
    snprintf(text, sizeof text, "%.*s\nversion: %s\n%s", (int)head, original, version,
             at + strlen("\nversion: 1\n"));
    write_file(W.rules, text);
}

static void sighup_reloads_rules_without_dropping_requests(void **state)
{
    (void)state;
    static char original[65536];
    snprintf(original, sizeof original, "%s", slurp(W.rules));
    char id[128];
    /* name@version+content hash */
    assert_int_equal(strncmp(ping_ruleset(id, sizeof id), "airline-checkin@1+", 18), 0);

    /* Requests in flight while the rules change are all answered. */
    nba_client *c = connect_or_fail();
    enum { N = 300 };
    static uint8_t buf[N * 96];
    size_t used = 0;
    for (uint64_t i = 0; i < N; i++) {
        Nba__V1__Request req = NBA__V1__REQUEST__INIT;
        Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
        ev.customer_id = "P100";
        ev.channel = NBA__V1__CHANNEL__KIOSK;
        ev.touchpoint = "checkin";
        req.id = 1000 + i;
        req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
        req.contact = &ev;
        used += frame_pack(&req.base, buf + used);
    }
    write_rules_version(original, "2");
    assert_int_equal(client_send_raw(c, buf, used, NULL), 0);
    assert_int_equal(kill(W.nbad, SIGHUP), 0);
    for (uint64_t i = 0; i < N; i++) {
        Nba__V1__Response *r = NULL;
        assert_int_equal(client_recv(c, &r, NULL), 0);
        assert_int_equal(r->id, 1000 + i);
        assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
        nba__v1__response__free_unpacked(r, NULL);
    }
    client_close(c);

    /* The reload lands (bounded wait: it runs beside the requests). */
    for (int i = 0; i < 100 && strncmp(ping_ruleset(id, sizeof id), "airline-checkin@2+", 18);
         i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(strncmp(id, "airline-checkin@2+", 18), 0);
    Nba__V1__Response *r = NULL;

    /* A file that does not compile never replaces the serving rules, and
     * the requests in flight meanwhile are all answered, by the old rules. */
    write_file(W.rules, "ruleset: airline-checkin\nversion: 3\nrules: [\n");
    c = connect_or_fail();
    assert_int_equal(client_send_raw(c, buf, used, NULL), 0);
    assert_int_equal(kill(W.nbad, SIGHUP), 0);
    for (uint64_t i = 0; i < N; i++) {
        Nba__V1__Response *r = NULL;
        assert_int_equal(client_recv(c, &r, NULL), 0);
        assert_int_equal(r->id, 1000 + i);
        assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
        assert_string_equal(r->decision->ruleset, id);
        nba__v1__response__free_unpacked(r, NULL);
    }
    client_close(c);
    for (int i = 0; i < 100 && !strstr(slurp(W.log), "rules not reloaded"); i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_non_null(strstr(slurp(W.log), "rules not reloaded"));
    assert_int_equal(strncmp(ping_ruleset(id, sizeof id), "airline-checkin@2+", 18), 0);
    c = connect_or_fail();
    r = contact(c, 60, "P100", NBA__V1__CHANNEL__DESK, "Y");
    assert_non_null(find_action(r->decision, "upgrade"));
    assert_string_equal(r->decision->ruleset, id);
    nba__v1__response__free_unpacked(r, NULL);
    client_close(c);
    write_file(W.rules, original);
}

static Nba__V1__Response *status(nba_client *c, uint64_t id)
{
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__StatusRequest s = NBA__V1__STATUS_REQUEST__INIT;
    req.id = id;
    req.body_case = NBA__V1__REQUEST__BODY_STATUS;
    req.status = &s;
    Nba__V1__Response *resp = NULL;
    nba_error err;
    if (client_call(c, &req, &resp, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(resp->id, id);
    assert_int_equal(resp->body_case, NBA__V1__RESPONSE__BODY_STATUS);
    assert_non_null(resp->status->decision_latency);
    return resp;
}

/* The counters move by exactly what this test sends (earlier tests' traffic
 * is in the first answer already), and every decision is timed. Times are
 * only checked to be there and ordered, never against a bound. */
static void status_counts_and_times_the_decisions(void **state)
{
    (void)state;
    enum { N = 25 };
    nba_client *c = connect_or_fail();
    Nba__V1__Response *before = status(c, 70);
    for (uint64_t i = 0; i < N; i++)
        nba__v1__response__free_unpacked(
            contact(c, 71 + i, i % 2 ? "P100" : "NOBODY", NBA__V1__CHANNEL__KIOSK, "Y"), NULL);
    nba__v1__response__free_unpacked(ping(c, 99), NULL);
    Nba__V1__Response *after = status(c, 100);
    const Nba__V1__Status *a = before->status, *b = after->status;

    assert_int_equal(b->decisions_total - a->decisions_total, N);
    assert_int_equal(b->requests_total - a->requests_total, N + 2); /* + ping, + first status */
    assert_int_equal(b->errors_total, a->errors_total);
    assert_int_equal(b->decision_latency->count - a->decision_latency->count, N);
    assert_int_equal(b->decision_latency->count, b->decisions_total);
    assert_true(b->decision_latency->p50_ns > 0);
    assert_true(b->decision_latency->p50_ns <= b->decision_latency->p99_ns);
    assert_true(b->decision_latency->p99_ns <= b->decision_latency->max_ns);
    assert_true(b->connections_open >= 1);
    assert_true(b->connections_total >= b->connections_open);
    assert_true(b->uptime_ms >= a->uptime_ms);
    assert_int_equal(b->customers, 3);
    assert_int_equal(b->incidents, 2);
    assert_non_null(strstr(b->server, "nbad/"));
    assert_non_null(strchr(b->ruleset, '@'));
    nba__v1__response__free_unpacked(before, NULL);
    nba__v1__response__free_unpacked(after, NULL);
    client_close(c);

    /* nbactl status shows the same over the same protocol. */
    char port[16], out[256];
    snprintf(port, sizeof port, "%d", W.port);
    snprintf(out, sizeof out, "%s/status.out", W.dir);
    char *human[] = {(char *)env("NBACTL_BIN"), "status", "--port", port, NULL};
    assert_int_equal(run(human, out), 0);
    assert_non_null(strstr(slurp(out), "decisions"));
    char *json[] = {(char *)env("NBACTL_BIN"), "status", "--port", port, "--json", NULL};
    assert_int_equal(run(json, out), 0);
    const char *text = slurp(out);
    assert_non_null(strstr(text, "\"decisions_total\""));
    assert_non_null(strstr(text, "\"p99_ns\""));
}

/* The ops requests over the protocol, through nbactl as ops staff use it:
 * explain says why the upgrade fired; reload reports a broken file and
 * keeps the serving rules. */
static void explain_and_reload_over_the_protocol(void **state)
{
    (void)state;
    char port[16], out[256];
    snprintf(port, sizeof port, "%d", W.port);
    snprintf(out, sizeof out, "%s/ops.out", W.dir);

    char *explain[] = {(char *)env("NBACTL_BIN"),
                       "explain",
                       "--port",
                       port,
                       "--customer",
                       "P100",
                       "--channel",
                       "kiosk",
                       "--touchpoint",
                       "checkin",
                       "--context",
                       "cabin=Y",
                       NULL};
    assert_int_equal(run(explain, out), 0);
    const char *text = slurp(out);
    if (!strstr(text, "recovery-upgrade") || !strstr(text, "chosen"))
        fail_msg("explain does not say why the upgrade fired:\n%s", text);

    char *reload[] = {(char *)env("NBACTL_BIN"), "reload", "--port", port, NULL};
    assert_int_equal(run(reload, out), 0);
    assert_non_null(strstr(slurp(out), "reloaded: serving airline-checkin@1"));

    static char original[65536];
    snprintf(original, sizeof original, "%s", slurp(W.rules));
    write_file(W.rules, "ruleset: airline-checkin\nversion: 4\nrules: [\n");
    assert_int_equal(run(reload, out), 65);
    text = slurp(out);
    if (!strstr(text, "rules.yaml:") || !strstr(text, "still serving airline-checkin@1"))
        fail_msg("reload should name the broken file and the rules still serving:\n%s", text);
    write_file(W.rules, original);

    nba_client *c = connect_or_fail();
    Nba__V1__Response *r = contact(c, 70, "P100", NBA__V1__CHANNEL__KIOSK, "Y");
    assert_non_null(find_action(r->decision, "upgrade"));
    nba__v1__response__free_unpacked(r, NULL);
    client_close(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valuable_passenger_is_upgraded_on_every_channel),
        cmocka_unit_test(low_value_passenger_gets_no_recovery),
        cmocka_unit_test(unknown_passenger_is_a_decision),
        cmocka_unit_test(pipelined_requests_come_back_in_order),
        cmocka_unit_test(oversized_frame_closes_only_its_connection),
        cmocka_unit_test(garbage_body_gets_an_error_then_close),
        cmocka_unit_test(bad_csv_row_is_named_and_changes_nothing),
        cmocka_unit_test(broken_rule_file_stops_nbad_at_start),
        cmocka_unit_test(sighup_reloads_rules_without_dropping_requests),
        cmocka_unit_test(status_counts_and_times_the_decisions),
        cmocka_unit_test(explain_and_reload_over_the_protocol),
    };
    return cmocka_run_group_tests(tests, start_world, stop_world);
}
