/* nbactl decide, ping, status: the commands that talk to a running nbad
 * over its protocol, printing answers readably or as JSON. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "clock.h"
#include "error.h"
#include "nbactl.h"
#include "nbactl_rules.h"
#include "nba.pb-c.h"

#define CALL_TIMEOUT_MS 5000

/* Splits "k=v,k=v" into context entries allocated with malloc. */
static int parse_context(char *text, Nba__V1__ContactEvent *ev)
{
    size_t count = 1;
    for (const char *p = text; *p; p++)
        count += *p == ',';
    ev->context = calloc(count, sizeof *ev->context);
    if (!ev->context)
        return -ENOMEM;
    char *save = NULL;
    for (char *item = strtok_r(text, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item)
            return -EINVAL;
        *eq = '\0';
        Nba__V1__ContactEvent__ContextEntry *e = malloc(sizeof *e);
        if (!e)
            return -ENOMEM;
        nba__v1__contact_event__context_entry__init(e);
        e->key = item;
        e->value = eq + 1;
        ev->context[ev->n_context++] = e;
    }
    return 0;
}

/* "name=value" (--key booking_ref=X7K2QP) as the event's lookup key,
 * pointing into text. Returns false when either side is empty. */
static bool parse_key(char *text, Nba__V1__ContactEvent *ev)
{
    char *eq = strchr(text, '=');
    if (!eq || eq == text || !eq[1])
        return false;
    *eq = '\0';
    ev->key_name = text;
    ev->key_value = eq + 1;
    return true;
}

static json_t *response_json(const Nba__V1__Response *resp)
{
    json_t *root = json_pack("{s:I}", "id", (json_int_t)resp->id);
    switch (resp->body_case) {
    case NBA__V1__RESPONSE__BODY_DECISION:
        json_object_set_new(root, "decision", nbactl_decision_json(resp->decision));
        break;
    case NBA__V1__RESPONSE__BODY_PONG:
        json_object_set_new(
            root, "pong",
            json_pack("{s:s, s:s}", "server", resp->pong->server, "ruleset", resp->pong->ruleset));
        break;
    case NBA__V1__RESPONSE__BODY_STATUS: {
        const Nba__V1__Status *st = resp->status;
        const Nba__V1__Latency *l = st->decision_latency;
        json_t *latency =
            l ? json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "count", (json_int_t)l->count,
                          "p50_ns", (json_int_t)l->p50_ns, "p90_ns", (json_int_t)l->p90_ns,
                          "p99_ns", (json_int_t)l->p99_ns, "p999_ns", (json_int_t)l->p999_ns,
                          "max_ns", (json_int_t)l->max_ns, "mean_ns", (json_int_t)l->mean_ns)
              : json_null();
        json_object_set_new(
            root, "status",
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I}", "server",
                      st->server, "ruleset", st->ruleset, "uptime_ms", (json_int_t)st->uptime_ms,
                      "connections_open", (json_int_t)st->connections_open, "connections_total",
                      (json_int_t)st->connections_total, "requests_total",
                      (json_int_t)st->requests_total, "decisions_total",
                      (json_int_t)st->decisions_total, "errors_total", (json_int_t)st->errors_total,
                      "decision_latency", latency, "customers", (json_int_t)st->customers,
                      "incidents", (json_int_t)st->incidents));
        json_t *status = json_object_get(root, "status");
        json_object_set_new(status, "writes_total", json_integer((json_int_t)st->writes_total));
        json_object_set_new(status, "write_commits", json_integer((json_int_t)st->write_commits));
        json_object_set_new(status, "write_largest_batch",
                            json_integer((json_int_t)st->write_largest_batch));
        json_object_set_new(status, "connections_refused",
                            json_integer((json_int_t)st->connections_refused));
        json_object_set_new(status, "connections_idle_closed",
                            json_integer((json_int_t)st->connections_idle_closed));
        json_object_set_new(status, "tls_handshakes_failed",
                            json_integer((json_int_t)st->tls_handshakes_failed));
        break;
    }
    case NBA__V1__RESPONSE__BODY_EXPLANATION:
        json_object_set_new(root, "explanation", nbactl_explanation_json(resp->explanation));
        break;
    case NBA__V1__RESPONSE__BODY_RELOAD:
        json_object_set_new(root, "reload",
                            json_pack("{s:b, s:s, s:s}", "ok", resp->reload->ok, "ruleset",
                                      resp->reload->ruleset, "errors", resp->reload->errors));
        break;
    case NBA__V1__RESPONSE__BODY_INCIDENT:
        json_object_set_new(root, "incident",
                            json_pack("{s:s, s:s, s:b}", "customer_id", resp->incident->customer_id,
                                      "incident_id", resp->incident->incident_id, "created",
                                      resp->incident->created));
        break;
    case NBA__V1__RESPONSE__BODY_ERROR:
        json_object_set_new(
            root, "error",
            json_pack("{s:s, s:s}", "code", resp->error->code, "message", resp->error->message));
        break;
    default:
        break;
    }
    return root;
}

static void print_status(const Nba__V1__Status *st)
{
    printf("server       %s serving %s\n", st->server, st->ruleset);
    printf("uptime       %.1f s\n", (double)st->uptime_ms / 1000.0);
    printf("connections  %llu open, %llu since start; %llu refused at max_connections, %llu "
           "closed idle, %llu failed TLS handshakes\n",
           (unsigned long long)st->connections_open, (unsigned long long)st->connections_total,
           (unsigned long long)st->connections_refused,
           (unsigned long long)st->connections_idle_closed,
           (unsigned long long)st->tls_handshakes_failed);
    printf("requests     %llu answered: %llu decisions, %llu errors\n",
           (unsigned long long)st->requests_total, (unsigned long long)st->decisions_total,
           (unsigned long long)st->errors_total);
    printf("database     %llu customers, %llu incidents\n", (unsigned long long)st->customers,
           (unsigned long long)st->incidents);
    printf("writes       %llu made durable in %llu commits (largest batch %llu)\n",
           (unsigned long long)st->writes_total, (unsigned long long)st->write_commits,
           (unsigned long long)st->write_largest_batch);
    const Nba__V1__Latency *l = st->decision_latency;
    if (!l || l->count == 0) {
        printf("decisions    none timed yet\n");
        return;
    }
    /* The time inside nbad, request cut from the input to answer encoded. */
    printf("decision us  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f"
           "  (%llu decisions, inside nbad)\n",
           (double)l->p50_ns / 1000.0, (double)l->p90_ns / 1000.0, (double)l->p99_ns / 1000.0,
           (double)l->p999_ns / 1000.0, (double)l->max_ns / 1000.0, (double)l->mean_ns / 1000.0,
           (unsigned long long)l->count);
}

int nbactl_call(const char *host, int port, const Nba__V1__Request *req, bool json,
                Nba__V1__Channel channel)
{
    nba_error err;
    nba_client *c;
    /* TLS from the environment, so that every command that talks to nbad
     * speaks it alike: see nbactl --help. */
    client_tls tls = {getenv("NBACTL_TLS_CA"), getenv("NBACTL_TLS_CERT"), getenv("NBACTL_TLS_KEY")};
    bool use_tls = tls.ca_path && *tls.ca_path;
    if (!use_tls && ((tls.cert_path && *tls.cert_path) || (tls.key_path && *tls.key_path))) {
        fprintf(stderr, "nbactl: NBACTL_TLS_CERT and NBACTL_TLS_KEY need NBACTL_TLS_CA, the CA "
                        "nbad's certificate is checked against\n");
        return EXIT_USAGE;
    }
    /* OpenSSL writes with write(2): an nbad that goes away must be an
     * error here, not a silent death by SIGPIPE. */
    struct sigaction ignore = {.sa_handler = SIG_IGN}, before;
    sigaction(SIGPIPE, &ignore, &before);
    Nba__V1__Response *resp = NULL;
    int rc = client_connect_tls(host, port, CALL_TIMEOUT_MS, use_tls ? &tls : NULL, &c, &err);
    bool connected = rc == 0;
    if (connected) {
        rc = client_call(c, req, &resp, &err);
        client_close(c);
    }
    sigaction(SIGPIPE, &before, NULL);
    if (rc) {
        fprintf(stderr, "nbactl: %s%s\n", err.msg,
                connected || rc == -EPROTO || rc == -EINVAL ? "" : " (is nbad running?)");
        return EXIT_UNAVAILABLE;
    }

    int code = resp->body_case == NBA__V1__RESPONSE__BODY_ERROR ? EXIT_DATAERR : EXIT_OK;
    if (resp->body_case == NBA__V1__RESPONSE__BODY_RELOAD && !resp->reload->ok)
        code = EXIT_DATAERR;
    if (json) {
        json_t *root = response_json(resp);
        json_dumpf(root, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(root);
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_DECISION) {
        printf("customer  %s (%s)\n", resp->decision->customer_id,
               resp->decision->known ? "known" : "unknown");
        printf("channel   %s\n",
               *nbactl_channel_name(channel) ? nbactl_channel_name(channel) : "(none given)");
        nbactl_print_decision(resp->decision, stdout);
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_PONG) {
        printf("%s serving %s\n", resp->pong->server, resp->pong->ruleset);
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_STATUS) {
        print_status(resp->status);
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_EXPLANATION) {
        nbactl_print_explanation(resp->explanation, stdout);
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_RELOAD) {
        if (resp->reload->ok)
            printf("reloaded: serving %s\n", resp->reload->ruleset);
        else
            fprintf(stderr, "%s\nnbactl: the rules were not reloaded; still serving %s\n",
                    resp->reload->errors, resp->reload->ruleset);
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_INCIDENT) {
        printf("incident %s of %s %s (durable)\n", resp->incident->incident_id,
               resp->incident->customer_id, resp->incident->created ? "recorded" : "updated");
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_ERROR) {
        fprintf(stderr, "nbactl: error %s: %s\n", resp->error->code, resp->error->message);
    }
    nba__v1__response__free_unpacked(resp, NULL);
    return code;
}

int nbactl_decide(int argc, char **argv)
{
    static const struct option opts[] = {
        {"customer", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"channel", required_argument, NULL, 'C'},
        {"touchpoint", required_argument, NULL, 't'},
        {"context", required_argument, NULL, 'x'},
        {"language", required_argument, NULL, 'l'},
        {"location", required_argument, NULL, 'L'},
        {"at", required_argument, NULL, 'a'},
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    const char *host = NBACTL_DEFAULT_HOST;
    int port = NBACTL_DEFAULT_PORT, code = EXIT_USAGE, opt;
    bool json = false;
    char *context = NULL;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            ev.customer_id = optarg;
            break;
        case 'k':
            if (!parse_key(optarg, &ev)) {
                code = nbactl_usage("--key takes NAME=VALUE, e.g. booking_ref=X7K2QP");
                goto out;
            }
            break;
        case 'C':
            if (!nbactl_channel(optarg, &ev.channel)) {
                code = nbactl_usage("unknown channel (desk, kiosk, ivr, web, mobile, call_center)");
                goto out;
            }
            break;
        case 't':
            ev.touchpoint = optarg;
            break;
        case 'x':
            context = optarg;
            break;
        case 'l':
            ev.language = optarg;
            break;
        case 'L':
            ev.location = optarg;
            break;
        case 'a':
            if (clock_parse_iso8601(optarg, strlen(optarg), &ev.occurred_at_ms) != 0) {
                code = nbactl_usage("--at takes an ISO 8601 time such as 2026-11-22T10:00:00Z");
                goto out;
            }
            break;
        case 'H':
            host = optarg;
            break;
        case 'p':
            if (!nbactl_parse_port(optarg, &port)) {
                code = nbactl_usage("--port takes a number from 1 to 65535");
                goto out;
            }
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            code = nbactl_help();
            goto out;
        default:
            code = nbactl_usage(NULL);
            goto out;
        }
    }
    if (optind < argc ||
        (ev.customer_id == protobuf_c_empty_string && ev.key_name == protobuf_c_empty_string)) {
        code = nbactl_usage("decide needs --customer or --key");
        goto out;
    }
    if (context && parse_context(context, &ev) != 0) {
        code = nbactl_usage("--context takes key=value pairs separated by commas");
        goto out;
    }

    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = 1;
    req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
    req.contact = &ev;
    code = nbactl_call(host, port, &req, json, ev.channel);
out:
    for (size_t i = 0; i < ev.n_context; i++)
        free(ev.context[i]);
    free(ev.context);
    return code;
}

/* The options of the commands that take only where nbad is and --json.
 * Returns 0, or an exit code when the command line is wrong. */
static int parse_target(int argc, char **argv, const char *command, const char **host, int *port,
                        bool *json)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    *host = NBACTL_DEFAULT_HOST;
    *port = NBACTL_DEFAULT_PORT;
    *json = false;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'H')
            *host = optarg;
        else if (opt == 'p' && nbactl_parse_port(optarg, port))
            continue;
        else if (opt == 'j')
            *json = true;
        else {
            char problem[64];
            snprintf(problem, sizeof problem, "%s takes --host, --port and --json", command);
            return nbactl_usage(problem);
        }
    }
    return 0;
}

/* The operations requests without arguments: parse --host/--port/--json,
 * send req (its body already set), print the answer. */
static int call_with_target(int argc, char **argv, const char *command, Nba__V1__Request *req)
{
    const char *host;
    int port;
    bool json;
    int code = parse_target(argc, argv, command, &host, &port, &json);
    if (code)
        return code;
    req->id = 1;
    return nbactl_call(host, port, req, json, NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED);
}

int nbactl_ping(int argc, char **argv)
{
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__Ping ping = NBA__V1__PING__INIT;
    req.body_case = NBA__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    return call_with_target(argc, argv, "ping", &req);
}

int nbactl_reload(int argc, char **argv)
{
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__ReloadRequest reload = NBA__V1__RELOAD_REQUEST__INIT;
    req.body_case = NBA__V1__REQUEST__BODY_RELOAD;
    req.reload = &reload;
    return call_with_target(argc, argv, "reload", &req);
}

int nbactl_status(int argc, char **argv)
{
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__StatusRequest status = NBA__V1__STATUS_REQUEST__INIT;
    req.body_case = NBA__V1__REQUEST__BODY_STATUS;
    req.status = &status;
    return call_with_target(argc, argv, "status", &req);
}
