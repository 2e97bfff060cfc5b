/* nbactl - the command-line tool of nbad, for ops staff and data teams.
 *
 *   nbactl load --db DIR --customers FILE [--incidents FILE] [--map-size BYTES]
 *   nbactl decide --customer ID [--channel NAME] [--touchpoint NAME]
 *                 [--context k=v,k=v] [--language TAG] [--location ID]
 *                 [--at ISO8601] [--host H] [--port P] [--json]
 *   nbactl ping [--host H] [--port P] [--json]
 *
 * Exit codes (sysexits): 0 success, 64 usage, 65 bad data (a CSV row, an
 * error answer), 66 a missing input file or database, 69 nbad unreachable,
 * 70 an internal failure.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "clock.h"
#include "error.h"
#include "loader.h"
#include "store.h"
#include "nba.pb-c.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_USAGE = 64,
    EXIT_DATAERR = 65,
    EXIT_NOINPUT = 66,
    EXIT_UNAVAILABLE = 69,
    EXIT_SOFTWARE = 70,
};

#define DEFAULT_HOST    "127.0.0.1"
#define DEFAULT_PORT    7411
#define CALL_TIMEOUT_MS 5000

static const char usage_text[] =
    "usage:\n"
    "  nbactl load --db DIR --customers FILE [--incidents FILE] [--map-size BYTES]\n"
    "      Load the warehouse's CSV extracts into the database nbad serves from,\n"
    "      replacing its content. A bad row is reported as file:line and the\n"
    "      database is left exactly as it was.\n"
    "  nbactl decide --customer ID [--channel desk|kiosk|ivr|web|mobile|call_center]\n"
    "                [--touchpoint checkin] [--context key=value,...] [--language TAG]\n"
    "                [--location ID] [--at 2026-11-22T10:00:00Z]\n"
    "                [--host 127.0.0.1] [--port 7411] [--json]\n"
    "      Ask a running nbad for the next best actions for a contact.\n"
    "  nbactl ping [--host 127.0.0.1] [--port 7411] [--json]\n"
    "      Check that nbad answers, and which rules it serves.\n";

static int usage(const char *problem)
{
    if (problem)
        fprintf(stderr, "nbactl: %s\n", problem);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static bool parse_port(const char *text, int *port)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < 1 || v > 65535)
        return false;
    *port = (int)v;
    return true;
}

/* ---- load ---- */

static int cmd_load(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"customers", required_argument, NULL, 'c'},
        {"incidents", required_argument, NULL, 'i'},
        {"map-size", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *customers = NULL, *incidents = NULL;
    size_t map_size = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            db = optarg;
            break;
        case 'c':
            customers = optarg;
            break;
        case 'i':
            incidents = optarg;
            break;
        case 'm': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v == 0)
                return usage("--map-size takes a number of bytes");
            map_size = (size_t)v;
            break;
        }
        case 'h':
            fputs(usage_text, stdout);
            return EXIT_OK;
        default:
            return usage(NULL);
        }
    }
    if (optind < argc)
        return usage("load takes no positional arguments");
    if (!db || !customers)
        return usage("load needs --db and --customers");

    nba_error err;
    store *st;
    int rc = store_open(db, STORE_CREATE, map_size, 0, &st, &err);
    if (rc) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_NOINPUT;
    }
    loader_stats stats = {0};
    uint64_t start = clock_mono_ns();
    rc = loader_load(st, customers, incidents, &stats, &err);
    double secs = (double)(clock_mono_ns() - start) / 1e9;
    store_close(st);
    if (rc) {
        fprintf(stderr, "nbactl: %s\nnbactl: nothing was loaded; %s is unchanged\n", err.msg, db);
        return rc == -ENOENT || rc == -EACCES ? EXIT_NOINPUT : EXIT_DATAERR;
    }
    printf("loaded %zu customers and %zu incidents into %s in %.2f s\n", stats.customers,
           stats.incidents, db, secs);
    return EXIT_OK;
}

/* ---- decide and ping: talking to nbad ---- */

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

/* Maps a channel name ("kiosk", "call_center") to the protocol's enum using
 * the schema's own names, so a channel added to the proto needs no change
 * here. */
static bool parse_channel(const char *name, Nba__V1__Channel *out)
{
    char upper[32];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof upper)
        return false;
    for (size_t i = 0; i <= n; i++)
        upper[i] = (char)toupper((unsigned char)name[i]);
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value_by_name(&nba__v1__channel__descriptor, upper);
    if (!v)
        return false;
    *out = (Nba__V1__Channel)v->value;
    return true;
}

static const char *channel_name(Nba__V1__Channel ch)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&nba__v1__channel__descriptor, (int)ch);
    return v ? v->name : "?";
}

static json_t *action_json(const Nba__V1__Action *a)
{
    json_t *params = json_object();
    for (size_t i = 0; i < a->n_params; i++)
        json_object_set_new(params, a->params[i]->key, json_string(a->params[i]->value));
    return json_pack("{s:s, s:s, s:o, s:s, s:s, s:b}", "type", a->type, "rule_id", a->rule_id,
                     "params", params, "message", a->message, "reason", a->reason, "follow_up",
                     a->follow_up);
}

static json_t *response_json(const Nba__V1__Response *resp)
{
    json_t *root = json_pack("{s:I}", "id", (json_int_t)resp->id);
    switch (resp->body_case) {
    case NBA__V1__RESPONSE__BODY_DECISION: {
        const Nba__V1__Decision *d = resp->decision;
        json_t *actions = json_array();
        for (size_t i = 0; i < d->n_actions; i++)
            json_array_append_new(actions, action_json(d->actions[i]));
        json_object_set_new(root, "decision",
                            json_pack("{s:s, s:b, s:s, s:o, s:s}", "customer_id", d->customer_id,
                                      "known", d->known, "language", d->language, "actions",
                                      actions, "ruleset", d->ruleset));
        break;
    }
    case NBA__V1__RESPONSE__BODY_PONG:
        json_object_set_new(
            root, "pong",
            json_pack("{s:s, s:s}", "server", resp->pong->server, "ruleset", resp->pong->ruleset));
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

static void print_decision(const Nba__V1__Decision *d, Nba__V1__Channel channel)
{
    printf("customer  %s (%s)\n", d->customer_id, d->known ? "known" : "unknown");
    printf("channel   %s\n", channel_name(channel));
    printf("language  %s\n", d->language);
    printf("rules     %s\n", d->ruleset);
    if (d->n_actions == 0)
        printf("actions   none\n");
    for (size_t i = 0; i < d->n_actions; i++) {
        const Nba__V1__Action *a = d->actions[i];
        printf("\n%zu. %s%s   (rule %s)\n", i + 1, a->type, a->follow_up ? " [follow-up]" : "",
               a->rule_id);
        for (size_t p = 0; p < a->n_params; p++)
            printf("   %s = %s\n", a->params[p]->key, a->params[p]->value);
        if (*a->message)
            printf("   message: %s\n", a->message);
        if (*a->reason)
            printf("   reason:  %s\n", a->reason);
    }
}

/* Sends req, prints the answer. Returns an exit code. */
static int call_and_print(const char *host, int port, const Nba__V1__Request *req, bool json,
                          Nba__V1__Channel channel)
{
    nba_error err;
    nba_client *c;
    if (client_connect(host, port, CALL_TIMEOUT_MS, &c, &err) != 0) {
        fprintf(stderr, "nbactl: %s (is nbad running?)\n", err.msg);
        return EXIT_UNAVAILABLE;
    }
    Nba__V1__Response *resp = NULL;
    int rc = client_call(c, req, &resp, &err);
    client_close(c);
    if (rc) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        return EXIT_UNAVAILABLE;
    }

    int code = resp->body_case == NBA__V1__RESPONSE__BODY_ERROR ? EXIT_DATAERR : EXIT_OK;
    if (json) {
        json_t *root = response_json(resp);
        json_dumpf(root, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(root);
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_DECISION) {
        print_decision(resp->decision, channel);
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_PONG) {
        printf("%s serving %s\n", resp->pong->server, resp->pong->ruleset);
    } else if (resp->body_case == NBA__V1__RESPONSE__BODY_ERROR) {
        fprintf(stderr, "nbactl: error %s: %s\n", resp->error->code, resp->error->message);
    }
    nba__v1__response__free_unpacked(resp, NULL);
    return code;
}

static int cmd_decide(int argc, char **argv)
{
    static const struct option opts[] = {
        {"customer", required_argument, NULL, 'c'},
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
    const char *host = DEFAULT_HOST;
    int port = DEFAULT_PORT, code = EXIT_USAGE, opt;
    bool json = false;
    char *context = NULL;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            ev.customer_id = optarg;
            break;
        case 'C':
            if (!parse_channel(optarg, &ev.channel)) {
                code = usage("unknown channel (desk, kiosk, ivr, web, mobile, call_center)");
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
                code = usage("--at takes an ISO 8601 time such as 2026-11-22T10:00:00Z");
                goto out;
            }
            break;
        case 'H':
            host = optarg;
            break;
        case 'p':
            if (!parse_port(optarg, &port)) {
                code = usage("--port takes a number from 1 to 65535");
                goto out;
            }
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            code = EXIT_OK;
            goto out;
        default:
            code = usage(NULL);
            goto out;
        }
    }
    if (optind < argc || ev.customer_id == protobuf_c_empty_string) {
        code = usage("decide needs --customer");
        goto out;
    }
    if (context && parse_context(context, &ev) != 0) {
        code = usage("--context takes key=value pairs separated by commas");
        goto out;
    }

    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = 1;
    req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
    req.contact = &ev;
    code = call_and_print(host, port, &req, json, ev.channel);
out:
    for (size_t i = 0; i < ev.n_context; i++)
        free(ev.context[i]);
    free(ev.context);
    return code;
}

static int cmd_ping(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    const char *host = DEFAULT_HOST;
    int port = DEFAULT_PORT, opt;
    bool json = false;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'H')
            host = optarg;
        else if (opt == 'p' && parse_port(optarg, &port))
            continue;
        else if (opt == 'j')
            json = true;
        else
            return usage("ping takes --host, --port and --json");
    }
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    Nba__V1__Ping ping = NBA__V1__PING__INIT;
    req.id = 1;
    req.body_case = NBA__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    return call_and_print(host, port, &req, json, NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } commands[] = {
        {"load", cmd_load},
        {"decide", cmd_decide},
        {"ping", cmd_ping},
    };
    if (argc < 2)
        return usage(NULL);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    return usage("unknown command");
}
