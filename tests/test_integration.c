/* Integration test: the real nbactl loads contract-shaped CSVs, the real
 * nbad serves them on a free loopback port, and this test talks the real
 * protocol to it, as a desk, a kiosk and an IVR would; then what goes wrong
 * around it: files missing at start, a reader that crashed, SIGTERM under
 * load, root that must be dropped, logs that must not hold personal data.
 *
 * Binaries come from the environment (NBAD_BIN, NBACTL_BIN), the shipped
 * rules from NBA_SOURCE_DIR; ctest sets all three. With NBAD_WRAPPER set,
 * every nbad runs under it (see daemon.h): ctest -L valgrind. */
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
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "client.h"
#include "clock.h"
#include "daemon.h"
#include "raw_socket.h"
#include "dbroot.h"
#include "frame.h"
#include "store.h"

typedef struct world {
    char dir[64];
    char db[128];
    char log[128];
    char rules[512];   /* a copy of the shipped rules, which the reload tests edit */
    char shipped[512]; /* the shipped rules, for every other nbad started here */
    daemon_proc d;
} world;

static world W;

static void iso_days_ago(int days, char *out, size_t cap)
{
    time_t t = time(NULL) - (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static nba_client *connect_or_fail(void)
{
    nba_client *c = NULL;
    nba_error err;
    if (client_connect("127.0.0.1", W.d.port, daemon_patience_ms(5000), &c, &err) != 0)
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
    snprintf(W.shipped, sizeof W.shipped, "%s/rules/airline-checkin.yaml",
             test_env("NBA_SOURCE_DIR"));
    snprintf(W.rules, sizeof W.rules, "%s/rules.yaml", W.dir);
    test_write_file(W.rules, test_slurp(W.shipped));

    char path[256], ten_days[32], old[32];
    iso_days_ago(10, ten_days, sizeof ten_days);
    iso_days_ago(900, old, sizeof old);
    snprintf(path, sizeof path, "%s/customers.csv", W.dir);
    /* Columns in a different order than the contract lists them, plus extra
     * attribute columns: both must be accepted. */
    test_write_file(path,
                    "customer_id,tier,name,language,predicted_ltv,lifetime_value,home_airport\n"
                    "P100,platinum,Giulia Rossi,it,52000,81000,FCO\n"
                    /* P101.. are P100 again: an upgrade given is recorded, so
                     * every test that wants one has its own passenger. */
                    "P101,platinum,Giulia Rossi,it,52000,81000,FCO\n"
                    "P102,platinum,Giulia Rossi,it,52000,81000,FCO\n"
                    "P103,platinum,Giulia Rossi,it,52000,81000,FCO\n"
                    "P104,platinum,Giulia Rossi,it,52000,81000,FCO\n"
                    "P105,platinum,Giulia Rossi,it,52000,81000,FCO\n"
                    "P106,platinum,Giulia Rossi,it,52000,81000,FCO\n"
                    "P200,none,Tom Low,en,300,120,LHR\n"
                    "P300,gold,\"Chen, Mei\",zh-Hant,45000,30000,TPE\n");
    char incidents[2048];
    int used = snprintf(incidents, sizeof incidents,
                        "incident_id,customer_id,kind,severity,occurred_at,flight,resolved,note\n"
                        "X1,P100,ife_broken,3,%s,AZ611,0,\"Seat 32C, screen dead for 9 hours\"\n"
                        "X2,P300,delay,2,%s,BR87,1,\n",
                        ten_days, old);
    for (int p = 101; p <= 106; p++)
        used +=
            snprintf(incidents + used, sizeof incidents - (size_t)used,
                     "X%d,P%d,ife_broken,3,%s,AZ611,0,\"Seat 32C, screen dead\"\n", p, p, ten_days);
    snprintf(path, sizeof path, "%s/incidents.csv", W.dir);
    test_write_file(path, incidents);

    char customers_arg[256], incidents_arg[256], out[256];
    snprintf(customers_arg, sizeof customers_arg, "%s/customers.csv", W.dir);
    snprintf(incidents_arg, sizeof incidents_arg, "%s/incidents.csv", W.dir);
    snprintf(out, sizeof out, "%s/load.out", W.dir);
    char *load[] = {(char *)test_env("NBACTL_BIN"),
                    "load",
                    "--db",
                    W.db,
                    "--customers",
                    customers_arg,
                    "--incidents",
                    incidents_arg,
                    NULL};
    if (test_run(load, out) != 0) {
        fprintf(stderr, "nbactl load failed:\n%s\n", test_slurp(out));
        return -1;
    }

    char *args[] = {"--db",      W.db,        "--rules", W.rules, "--listen",
                    "127.0.0.1", "--threads", "2",       NULL};
    return daemon_start(&W.d, W.log, args, NULL);
}

static int stop_world(void **state)
{
    (void)state;
    /* A clean shutdown on SIGTERM exits 0 (and under valgrind: no error,
     * no leak). */
    int rc = W.d.pid > 0 && daemon_stop(&W.d) != 0 ? -1 : 0;
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

/* Three passengers alike, each meeting nbad first on another channel, get
 * the same treatment; then the first one walks on to the desk and is told
 * the upgrade is done. */
static void valuable_passenger_is_upgraded_on_every_channel(void **state)
{
    (void)state;
    nba_client *c = connect_or_fail();
    const Nba__V1__Channel channels[] = {NBA__V1__CHANNEL__KIOSK, NBA__V1__CHANNEL__DESK,
                                         NBA__V1__CHANNEL__IVR};
    const char *passengers[] = {"P100", "P101", "P102"};
    char messages[3][1024], letters[3][1024];
    char types[3][512];
    for (int i = 0; i < 3; i++) {
        Nba__V1__Response *r = contact(c, 10 + (uint64_t)i, passengers[i], channels[i], "Y");
        const Nba__V1__Decision *d = r->decision;
        assert_true(d->known);
        assert_string_equal(d->customer_id, passengers[i]);
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

    Nba__V1__Response *r = contact(c, 13, "P100", NBA__V1__CHANNEL__DESK, "Y");
    assert_null(find_action(r->decision, "upgrade"));
    assert_null(find_action(r->decision, "apology_letter"));
    assert_non_null(find_action(r->decision, "upgrade_confirmed"));
    nba__v1__response__free_unpacked(r, NULL);
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

    r = contact(good, 40, "P103", NBA__V1__CHANNEL__DESK, "Y");
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
    test_write_file(path, "customer_id,name,tier,lifetime_value,predicted_ltv,language\n"
                          "Q1,Ann,gold,100,200,en\n"
                          "Q2,Bob,gold,lots,200,en\n");
    char *load[] = {
        (char *)test_env("NBACTL_BIN"), "load", "--db", W.db, "--customers", path, NULL};
    assert_int_equal(test_run(load, out), 65);
    const char *msg = test_slurp(out);
    if (!strstr(msg, "bad.csv:3"))
        fail_msg("expected the file and line in: %s", msg);

    /* The served data is exactly as before. */
    nba_client *c = connect_or_fail();
    Nba__V1__Response *r = contact(c, 50, "P104", NBA__V1__CHANNEL__KIOSK, "Y");
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
    snprintf(port, sizeof port, "%d", test_free_port());
    test_write_file(rules, "ruleset: broken\n"
                           "version: 1\n"
                           "languages: [en]\n"
                           "default_language: en\n"
                           "rules:\n"
                           "  - id: r1\n"
                           "    when: customer.predicted_ltv >= \n"
                           "    then:\n"
                           "      - action: greet\n");
    char *args[] = {"--db", W.db, "--rules", rules, "--port", port, NULL};
    int code = daemon_run(args, out);
    const char *msg = test_slurp(out);
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
    test_write_file(W.rules, text);
}

static void sighup_reloads_rules_without_dropping_requests(void **state)
{
    (void)state;
    static char original[65536];
    snprintf(original, sizeof original, "%s", test_slurp(W.rules));
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
    assert_int_equal(kill(W.d.pid, SIGHUP), 0);
    for (uint64_t i = 0; i < N; i++) {
        Nba__V1__Response *r = NULL;
        assert_int_equal(client_recv(c, &r, NULL), 0);
        assert_int_equal(r->id, 1000 + i);
        assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
        nba__v1__response__free_unpacked(r, NULL);
    }
    client_close(c);

    /* The reload lands (bounded wait: it runs beside the requests). */
    for (int i = 0; i < daemon_patience_ms(100) &&
                    strncmp(ping_ruleset(id, sizeof id), "airline-checkin@2+", 18);
         i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(strncmp(id, "airline-checkin@2+", 18), 0);
    Nba__V1__Response *r = NULL;

    /* A file that does not compile never replaces the serving rules, and
     * the requests in flight meanwhile are all answered, by the old rules. */
    test_write_file(W.rules, "ruleset: airline-checkin\nversion: 3\nrules: [\n");
    c = connect_or_fail();
    assert_int_equal(client_send_raw(c, buf, used, NULL), 0);
    assert_int_equal(kill(W.d.pid, SIGHUP), 0);
    for (uint64_t i = 0; i < N; i++) {
        Nba__V1__Response *r = NULL;
        assert_int_equal(client_recv(c, &r, NULL), 0);
        assert_int_equal(r->id, 1000 + i);
        assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
        assert_string_equal(r->decision->ruleset, id);
        nba__v1__response__free_unpacked(r, NULL);
    }
    client_close(c);
    for (int i = 0; i < daemon_patience_ms(100) && !strstr(test_slurp(W.log), "rules not reloaded");
         i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_non_null(strstr(test_slurp(W.log), "rules not reloaded"));
    assert_int_equal(strncmp(ping_ruleset(id, sizeof id), "airline-checkin@2+", 18), 0);
    c = connect_or_fail();
    r = contact(c, 60, "P105", NBA__V1__CHANNEL__DESK, "Y");
    assert_non_null(find_action(r->decision, "upgrade"));
    assert_string_equal(r->decision->ruleset, id);
    nba__v1__response__free_unpacked(r, NULL);
    client_close(c);
    test_write_file(W.rules, original);
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
    assert_int_equal(b->customers, 9);
    assert_int_equal(b->incidents, 8);
    assert_non_null(strstr(b->server, "nbad/"));
    assert_non_null(strchr(b->ruleset, '@'));
    nba__v1__response__free_unpacked(before, NULL);
    nba__v1__response__free_unpacked(after, NULL);
    client_close(c);

    /* nbactl status shows the same over the same protocol. */
    char port[16], out[256];
    snprintf(port, sizeof port, "%d", W.d.port);
    snprintf(out, sizeof out, "%s/status.out", W.dir);
    char *human[] = {(char *)test_env("NBACTL_BIN"), "status", "--port", port, NULL};
    assert_int_equal(test_run(human, out), 0);
    assert_non_null(strstr(test_slurp(out), "decisions"));
    char *json[] = {(char *)test_env("NBACTL_BIN"), "status", "--port", port, "--json", NULL};
    assert_int_equal(test_run(json, out), 0);
    const char *text = test_slurp(out);
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
    snprintf(port, sizeof port, "%d", W.d.port);
    snprintf(out, sizeof out, "%s/ops.out", W.dir);

    char *explain[] = {(char *)test_env("NBACTL_BIN"),
                       "explain",
                       "--port",
                       port,
                       "--customer",
                       "P106",
                       "--channel",
                       "kiosk",
                       "--touchpoint",
                       "checkin",
                       "--context",
                       "cabin=Y",
                       NULL};
    assert_int_equal(test_run(explain, out), 0);
    const char *text = test_slurp(out);
    if (!strstr(text, "recovery-upgrade") || !strstr(text, "chosen"))
        fail_msg("explain does not say why the upgrade fired:\n%s", text);

    char *reload[] = {(char *)test_env("NBACTL_BIN"), "reload", "--port", port, NULL};
    assert_int_equal(test_run(reload, out), 0);
    assert_non_null(strstr(test_slurp(out), "reloaded: serving airline-checkin@1"));

    static char original[65536];
    snprintf(original, sizeof original, "%s", test_slurp(W.rules));
    test_write_file(W.rules, "ruleset: airline-checkin\nversion: 4\nrules: [\n");
    assert_int_equal(test_run(reload, out), 65);
    text = test_slurp(out);
    if (!strstr(text, "rules.yaml:") || !strstr(text, "still serving airline-checkin@1"))
        fail_msg("reload should name the broken file and the rules still serving:\n%s", text);
    test_write_file(W.rules, original);

    nba_client *c = connect_or_fail();
    /* Explaining recorded nothing: the upgrade is still to give. */
    Nba__V1__Response *r = contact(c, 70, "P106", NBA__V1__CHANNEL__KIOSK, "Y");
    assert_non_null(find_action(r->decision, "upgrade"));
    nba__v1__response__free_unpacked(r, NULL);
    client_close(c);
}

/* ---- faults ---- */

/* Each start that cannot work stops at once with a message naming what is
 * missing and the documented exit code (README, Operations). */
static void missing_files_at_start_are_named_with_their_exit_code(void **state)
{
    (void)state;
    char out[256], empty[256], missing_rules[256];
    snprintf(out, sizeof out, "%s/start.out", W.dir);
    snprintf(empty, sizeof empty, "%s/empty-db", W.dir);
    snprintf(missing_rules, sizeof missing_rules, "%s/no-such-rules.yaml", W.dir);
    assert_int_equal(mkdir(empty, 0755), 0);
    static const struct {
        const char *db, *rules, *extra, *value;
        int code;
        const char *says;
    } cases[] = {
        {"/nonexistent/nbad-db", NULL, NULL, NULL, 66, "cannot open database /nonexistent/nbad-db"},
        {NULL, "-", NULL, NULL, 66, "cannot read the rules: "},
        {"empty", NULL, NULL, NULL, 66, "nbactl load --db"},
        {NULL, NULL, "--tls-cert", "/nonexistent/server.pem", 64, "set tls_key"},
        {NULL, NULL, "--max-connections", "0", 64, "--max-connections: 0 is out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *db = !cases[i].db ? W.db : !strcmp(cases[i].db, "empty") ? empty : cases[i].db;
        const char *rules = cases[i].rules ? missing_rules : W.shipped;
        char *args[] = {"--db",
                        (char *)db,
                        "--rules",
                        (char *)rules,
                        "--port",
                        "0",
                        (char *)cases[i].extra,
                        (char *)cases[i].value,
                        NULL};
        int code = daemon_run(args, out);
        const char *msg = test_slurp(out);
        if (code != cases[i].code || !strstr(msg, cases[i].says))
            fail_msg("case %zu: exit %d (want %d), output:\n%s", i, code, cases[i].code, msg);
        if (cases[i].rules && !strstr(msg, missing_rules))
            fail_msg("case %zu: the message does not name %s:\n%s", i, missing_rules, msg);
    }

    /* A user that does not exist: only root switches users. */
    if (geteuid() == 0) {
        char *args[] = {"--db", W.db,     "--rules",           W.shipped, "--port",
                        "0",    "--user", "no-such-user-nbad", NULL};
        assert_int_equal(daemon_run(args, out), 67);
        assert_non_null(strstr(test_slurp(out), "no such user \"no-such-user-nbad\""));
    }
    /* Unreadable files: root reads everything, so only as another user. */
    if (geteuid() != 0) {
        char locked[256];
        snprintf(locked, sizeof locked, "%s/locked.yaml", W.dir);
        test_write_file(locked, test_slurp(W.shipped));
        assert_int_equal(chmod(locked, 0), 0);
        char *args[] = {"--db", W.db, "--rules", locked, "--port", "0", NULL};
        assert_int_equal(daemon_run(args, out), 66);
        assert_non_null(strstr(test_slurp(out), "Permission denied"));
    }
}

/* A reader that died with its read transaction open (kill -9 of nbad or
 * nbactl while nbad serves) leaves its slot taken in the lock file, and
 * LMDB keeps every page it could see; the next nbad frees it at start. */
static bool reader_slot_of(const char *env_dir, pid_t pid)
{
    char out[256], who[32];
    snprintf(out, sizeof out, "%s/readers.out", W.dir);
    char *argv[] = {"/usr/bin/mdb_stat", "-r", (char *)env_dir, NULL};
    test_run(argv, out); /* exits 1 after the table: it cannot open the named databases */
    if (!strstr(test_slurp(out), "Reader Table Status"))
        fail_msg("mdb_stat -r %s:\n%s", env_dir, test_slurp(out));
    snprintf(who, sizeof who, " %d ", (int)pid);
    return strstr(test_slurp(out), who) != NULL;
}

static void stale_reader_slots_are_cleared_at_start(void **state)
{
    (void)state;
    if (access("/usr/bin/mdb_stat", X_OK) != 0)
        skip(); /* lmdb-utils, from deploy/install-deps.sh */
    char serving[4096];
    assert_int_equal(dbroot_resolve(W.db, serving, sizeof serving, NULL), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store *st = NULL;
        store_reader *r = NULL;
        if (store_open(serving, STORE_READONLY, 0, 0, &st, NULL) ||
            store_reader_new(st, &r, NULL) || store_reader_begin(r))
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* The nbad serving meanwhile keeps the environment open, so LMDB does
     * not reset the reader table when the next one opens it. */
    assert_true(reader_slot_of(serving, pid));

    daemon_proc d;
    char log[256];
    snprintf(log, sizeof log, "%s/readers.log", W.dir);
    char *args[] = {"--db", W.db, "--rules", W.shipped, "--threads", "1", NULL};
    assert_int_equal(daemon_start(&d, log, args, NULL), 0);
    bool stale = reader_slot_of(serving, pid);
    assert_int_equal(daemon_stop(&d), 0);
    if (stale)
        fail_msg("the dead reader's slot is still taken:\n%s", test_slurp(log));
}

static size_t pack_contact(uint8_t *out, uint64_t id, const char *customer)
{
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    Nba__V1__ContactEvent__ContextEntry cab = NBA__V1__CONTACT_EVENT__CONTEXT_ENTRY__INIT;
    Nba__V1__ContactEvent__ContextEntry *ctx[] = {&cab};
    cab.key = "cabin";
    cab.value = "Y";
    ev.customer_id = (char *)customer;
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

/* SIGTERM while clients have requests in flight: nbad stops accepting,
 * answers every request that had reached it (here all of them, held back
 * by tiny output limits because the clients do not read), writes the
 * answers as the clients take them, closes each connection after its last
 * answer, and exits 0. */
static void sigterm_under_load_answers_what_arrived_then_exits(void **state)
{
    (void)state;
    daemon_proc d;
    char log[256];
    snprintf(log, sizeof log, "%s/drain.log", W.dir);
    char *args[] = {"--db",         W.db,   "--rules",        W.shipped, "--threads", "2",
                    "--max-output", "4KiB", "--max-pipeline", "8",       NULL};
    assert_int_equal(daemon_start(&d, log, args, NULL), 0);

    enum { CONNS = 4 };
    /* The drain has 5 s: fewer requests when nbad runs ten times slower. */
    const int n = daemon_wrapped() ? 150 : 1000;
    uint8_t *buf = malloc((size_t)n * 64);
    assert_non_null(buf);
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += pack_contact(buf + len, (uint64_t)i + 1, "P100");
    int fds[CONNS];
    for (int c = 0; c < CONNS; c++) {
        fds[c] = raw_connect(d.port, 0, daemon_patience_ms(5000));
        assert_true(fds[c] >= 0);
        raw_send_all(fds[c], buf, len);
    }
    /* Everything sent has reached nbad's socket: nothing left queued here. */
    for (int c = 0; c < CONNS; c++) {
        int queued = 1;
        for (int t = 0; t < daemon_patience_ms(5000) && queued > 0; t += 5) {
            assert_int_equal(ioctl(fds[c], TIOCOUTQ, &queued), 0);
            if (queued > 0)
                usleep(5000);
        }
        assert_int_equal(queued, 0);
    }
    assert_int_equal(kill(d.pid, SIGTERM), 0);

    for (int c = 0; c < CONNS; c++) {
        for (int i = 0; i < n; i++) {
            Nba__V1__Response *r = raw_recv_response(fds[c]);
            if (!r)
                fail_msg("connection %d: answer %d of %d missing:\n%s", c, i + 1, n,
                         test_slurp(log));
            assert_int_equal(r->id, (uint64_t)i + 1);
            assert_int_equal(r->body_case, NBA__V1__RESPONSE__BODY_DECISION);
            assert_true(r->decision->known);
            assert_non_null(find_action(r->decision, "greet"));
            nba__v1__response__free_unpacked(r, NULL);
        }
        uint8_t b;
        assert_int_equal(raw_recv_exact(fds[c], &b, 1), 1); /* then EOF */
        close(fds[c]);
        /* New clients are turned away at once, to go to another nbad. */
        if (c == 0) {
            int fd = raw_connect(d.port, 0, daemon_patience_ms(5000));
            assert_int_equal(fd, -ECONNREFUSED);
        }
    }
    free(buf);
    assert_int_equal(daemon_stop_with(&d, 0), 0);
    assert_non_null(strstr(test_slurp(log), "SIGTERM received"));
}

/* Started as root with a user, nbad serves as that user, with that user's
 * groups only; started as root without one, it says so. */
static void root_is_dropped_for_the_configured_user(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    assert_non_null(strstr(test_slurp(W.log), "running as root: set user"));
    struct passwd *pw = getpwnam("nobody");
    if (!pw)
        skip();
    daemon_proc d;
    char log[256], status_path[64], want_uid[64], want_gid[64];
    snprintf(log, sizeof log, "%s/user.log", W.dir);
    char *args[] = {"--db", W.db, "--rules", W.shipped, "--threads", "2", "--user", "nobody", NULL};
    assert_int_equal(daemon_start(&d, log, args, NULL), 0);
    snprintf(status_path, sizeof status_path, "/proc/%d/status", (int)d.pid);
    const char *st = test_slurp(status_path);
    /* real, effective, saved and file-system ids alike: no way back */
    snprintf(want_uid, sizeof want_uid, "\nUid:\t%u\t%u\t%u\t%u\n", (unsigned)pw->pw_uid,
             (unsigned)pw->pw_uid, (unsigned)pw->pw_uid, (unsigned)pw->pw_uid);
    snprintf(want_gid, sizeof want_gid, "\nGid:\t%u\t%u\t%u\t%u\n", (unsigned)pw->pw_gid,
             (unsigned)pw->pw_gid, (unsigned)pw->pw_gid, (unsigned)pw->pw_gid);
    if (!strstr(st, want_uid) || !strstr(st, want_gid) || strstr(st, "\nGroups:\t0"))
        fail_msg("nbad still holds root's ids or groups:\n%s", st);

    nba_client *c = NULL;
    nba_error err;
    if (client_connect("127.0.0.1", d.port, daemon_patience_ms(5000), &c, &err) != 0)
        fail_msg("%s", err.msg);
    Nba__V1__Response *r = contact(c, 1, "P100", NBA__V1__CHANNEL__DESK, "Y");
    assert_true(r->decision->known);
    nba__v1__response__free_unpacked(r, NULL);
    client_close(c);
    assert_int_equal(daemon_stop(&d), 0);
    assert_non_null(strstr(test_slurp(log), "running as user nobody"));
}

/* Logs hold no personal data, at every level: no name, no message text.
 * Only log_customer_data lets the debug log show who got what. */
static void logs_hold_no_personal_data_unless_asked(void **state)
{
    (void)state;
    for (int with = 0; with < 2; with++) {
        daemon_proc d;
        char log[256];
        snprintf(log, sizeof log, "%s/privacy-%d.log", W.dir, with);
        char *args[] = {"--db",        W.db,        "--rules",
                        W.shipped,     "--threads", "1",
                        "--log-level", "debug",     with ? "--log-customer-data" : NULL,
                        NULL};
        assert_int_equal(daemon_start(&d, log, args, NULL), 0);
        nba_client *c = NULL;
        nba_error err;
        if (client_connect("127.0.0.1", d.port, daemon_patience_ms(5000), &c, &err) != 0)
            fail_msg("%s", err.msg);
        Nba__V1__Response *r = contact(c, 1, "P100", NBA__V1__CHANNEL__KIOSK, "Y");
        assert_true(r->decision->n_actions > 0);
        char message[64];
        snprintf(message, sizeof message, "%.40s", r->decision->actions[0]->message);
        nba__v1__response__free_unpacked(r, NULL);
        client_close(c);
        assert_int_equal(daemon_stop(&d), 0);

        const char *text = test_slurp(log);
        assert_non_null(strstr(text, "conn 1: open")); /* it did log at debug */
        bool personal = strstr(text, "Giulia") || strstr(text, "Rossi") || strstr(text, message);
        if (with != personal)
            fail_msg("log_customer_data %s, but the log %s personal data:\n%s", with ? "on" : "off",
                     personal ? "holds" : "lacks", text);
    }
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
        cmocka_unit_test(missing_files_at_start_are_named_with_their_exit_code),
        cmocka_unit_test(stale_reader_slots_are_cleared_at_start),
        cmocka_unit_test(sigterm_under_load_answers_what_arrived_then_exits),
        cmocka_unit_test(root_is_dropped_for_the_configured_user),
        cmocka_unit_test(logs_hold_no_personal_data_unless_asked),
    };
    return cmocka_run_group_tests(tests, start_world, stop_world);
}
