/* nbactl explain: one contact's decision and why, decided in-process from
 * the database and the rule files (no daemon needed), with every rule's
 * conditions, their values, and what arbitration did with it. Also the
 * helpers nbactl's rule commands share (see nbactl_rules.h). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "error.h"
#include "facts_load.h"
#include "nbactl.h"
#include "nbactl_rules.h"
#include "ruleset.h"
#include "store.h"
#include "store_live.h"

/* ---- shared helpers ---- */

void nbactl_print_diag(const ruleset_diag *d, FILE *fp)
{
    const char *sev = d->severity == RULESET_ERROR ? "error" : "warning";
    if (d->line)
        fprintf(fp, "%s:%u:%u: %s: %s\n", d->file, d->line, d->col, sev, d->message);
    else
        fprintf(fp, "%s: %s: %s\n", d->file, sev, d->message);
    if (d->source)
        fprintf(fp, "  %s\n  %s\n", d->source, d->caret ? d->caret : "^");
    if (d->hint)
        fprintf(fp, "  hint: %s\n", d->hint);
}

int nbactl_compile(const char *const *paths, size_t n, bool warnings, FILE *fp, ruleset **out)
{
    ruleset_diags *d;
    *out = NULL;
    if (ruleset_diags_new(&d) != 0) {
        fprintf(stderr, "nbactl: out of memory\n");
        return EXIT_SOFTWARE;
    }
    int rc = ruleset_compile_files(paths, n, out, d);
    for (size_t i = 0; i < ruleset_diags_count(d); i++) {
        const ruleset_diag *g = ruleset_diags_get(d, i);
        if (g->severity == RULESET_ERROR || warnings)
            nbactl_print_diag(g, fp);
    }
    size_t shown = ruleset_diags_count(d);
    size_t total = ruleset_diags_errors(d) + ruleset_diags_warnings(d);
    if (total > shown)
        fprintf(fp, "(%zu more problems not shown)\n", total - shown);
    ruleset_diags_free(d);
    if (rc == 0)
        return EXIT_OK;
    return rc == -ENOENT || rc == -EACCES || rc == -EIO ? EXIT_NOINPUT
           : rc == -ENOMEM                              ? EXIT_SOFTWARE
                                                        : EXIT_DATAERR;
}

bool nbactl_channel(const char *name, Nba__V1__Channel *out)
{
    char upper[32];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof upper)
        return false;
    for (size_t i = 0; i <= n; i++)
        upper[i] = (char)toupper((unsigned char)name[i]);
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value_by_name(&nba__v1__channel__descriptor, upper);
    if (!v || v->value == 0)
        return false;
    *out = (Nba__V1__Channel)v->value;
    return true;
}

const char *nbactl_channel_name(Nba__V1__Channel ch)
{
    static const char *const names[] = {"", "desk", "kiosk", "ivr", "web", "mobile", "call_center"};
    return (unsigned)ch < sizeof names / sizeof names[0] ? names[ch] : "?";
}

void nbactl_print_decision(const Nba__V1__Decision *d, FILE *fp)
{
    fprintf(fp, "language  %s\n", d->language);
    fprintf(fp, "rules     %s\n", d->ruleset);
    if (d->n_actions == 0)
        fprintf(fp, "actions   none\n");
    for (size_t i = 0; i < d->n_actions; i++) {
        const Nba__V1__Action *a = d->actions[i];
        fprintf(fp, "\n%zu. %s%s   (rule %s)\n", i + 1, a->type, a->follow_up ? " [follow-up]" : "",
                a->rule_id);
        for (size_t p = 0; p < a->n_params; p++)
            fprintf(fp, "   %s = %s\n", a->params[p]->key, a->params[p]->value);
        if (a->message && *a->message)
            fprintf(fp, "   message: %s\n", a->message);
        if (a->reason && *a->reason)
            fprintf(fp, "   reason:  %s\n", a->reason);
    }
}

json_t *nbactl_decision_json(const Nba__V1__Decision *d)
{
    json_t *actions = json_array();
    for (size_t i = 0; i < d->n_actions; i++) {
        const Nba__V1__Action *a = d->actions[i];
        json_t *params = json_object();
        for (size_t p = 0; p < a->n_params; p++)
            json_object_set_new(params, a->params[p]->key, json_string(a->params[p]->value));
        json_array_append_new(actions,
                              json_pack("{s:s, s:s, s:o, s:s, s:s, s:b}", "type", a->type,
                                        "rule_id", a->rule_id, "params", params, "message",
                                        a->message ? a->message : "", "reason",
                                        a->reason ? a->reason : "", "follow_up", a->follow_up));
    }
    return json_pack("{s:s, s:b, s:s, s:o, s:s}", "customer_id", d->customer_id, "known", d->known,
                     "language", d->language, "actions", actions, "ruleset", d->ruleset);
}

void nbactl_print_explanation(const Nba__V1__Explanation *e, FILE *fp)
{
    const Nba__V1__Decision *d = e->decision;
    fprintf(fp, "customer  %s (%s)\n", d->customer_id, d->known ? "known" : "unknown");
    nbactl_print_decision(d, fp);
    fprintf(fp, "\nwhy, rule by rule (file order):\n");
    for (size_t i = 0; i < e->n_rules; i++) {
        const Nba__V1__RuleTrace *t = e->rules[i];
        fprintf(fp, "\n  %s: %s%s\n", t->rule_id, t->held ? "held, " : "", t->outcome);
        size_t width = 0;
        for (size_t c = 0; c < t->n_conditions; c++) {
            size_t w = strlen(t->conditions[c]->expression);
            if (w > width)
                width = w;
        }
        if (width > 60)
            width = 60;
        for (size_t c = 0; c < t->n_conditions; c++) {
            const Nba__V1__ConditionTrace *ct = t->conditions[c];
            fprintf(fp, "    %-5s %-*s  = %s\n", ct->held ? "yes" : "no", (int)width,
                    ct->expression, ct->value);
        }
    }
}

json_t *nbactl_explanation_json(const Nba__V1__Explanation *e)
{
    json_t *rules = json_array();
    for (size_t i = 0; i < e->n_rules; i++) {
        const Nba__V1__RuleTrace *t = e->rules[i];
        json_t *conds = json_array();
        for (size_t c = 0; c < t->n_conditions; c++) {
            const Nba__V1__ConditionTrace *ct = t->conditions[c];
            json_array_append_new(conds, json_pack("{s:s, s:s, s:b}", "expression", ct->expression,
                                                   "value", ct->value, "held", ct->held));
        }
        json_array_append_new(rules,
                              json_pack("{s:s, s:b, s:o, s:s}", "rule_id", t->rule_id, "held",
                                        t->held, "conditions", conds, "outcome", t->outcome));
    }
    return json_pack("{s:o, s:o}", "decision", nbactl_decision_json(e->decision), "rules", rules);
}

/* ---- nbactl explain ---- */

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

/* Splits "k=v,k=v" into context entries allocated from the arena. */
static int parse_context(char *text, Nba__V1__ContactEvent *ev, arena *a)
{
    size_t count = 1;
    for (const char *p = text; *p; p++)
        count += *p == ',';
    ev->context = arena_calloc(a, count * sizeof *ev->context);
    if (!ev->context)
        return -ENOMEM;
    char *save = NULL;
    for (char *item = strtok_r(text, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item)
            return -EINVAL;
        *eq = '\0';
        Nba__V1__ContactEvent__ContextEntry *e = arena_alloc(a, sizeof *e);
        if (!e)
            return -ENOMEM;
        nba__v1__contact_event__context_entry__init(e);
        e->key = item;
        e->value = eq + 1;
        ev->context[ev->n_context++] = e;
    }
    return 0;
}

#define MAX_RULE_FILES 64

int nbactl_explain(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"rules", required_argument, NULL, 'r'},
        {"customer", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"channel", required_argument, NULL, 'C'},
        {"touchpoint", required_argument, NULL, 't'},
        {"context", required_argument, NULL, 'x'},
        {"language", required_argument, NULL, 'l'},
        {"location", required_argument, NULL, 'L'},
        {"at", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    const char *host = NULL;
    int port = NBACTL_DEFAULT_PORT;
    const char *db = NULL, *rules[MAX_RULE_FILES];
    size_t n_rules = 0;
    char *context = NULL;
    bool json = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            db = optarg;
            break;
        case 'r':
            if (n_rules == MAX_RULE_FILES)
                return nbactl_usage("too many --rules files");
            rules[n_rules++] = optarg;
            break;
        case 'c':
            ev.customer_id = optarg;
            break;
        case 'k':
            if (!parse_key(optarg, &ev))
                return nbactl_usage("--key takes NAME=VALUE, e.g. booking_ref=X7K2QP");
            break;
        case 'C':
            if (!nbactl_channel(optarg, &ev.channel))
                return nbactl_usage("unknown channel (desk, kiosk, ivr, web, mobile, call_center)");
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
            if (clock_parse_iso8601(optarg, strlen(optarg), &ev.occurred_at_ms) != 0)
                return nbactl_usage("--at takes an ISO 8601 time such as 2026-11-22T10:00:00Z");
            break;
        case 'j':
            json = true;
            break;
        case 'H':
            host = optarg;
            break;
        case 'p':
            if (!nbactl_parse_port(optarg, &port))
                return nbactl_usage("--port takes a number from 1 to 65535");
            if (!host)
                host = NBACTL_DEFAULT_HOST;
            break;
        case 'h':
            return nbactl_help();
        default:
            return nbactl_usage(NULL);
        }
    }
    bool remote = host || (!db && !n_rules);
    if (optind < argc ||
        (ev.customer_id == protobuf_c_empty_string && ev.key_name == protobuf_c_empty_string) ||
        (!remote && (!db || !n_rules)) || (remote && (db || n_rules)))
        return nbactl_usage("explain needs --customer or --key, and either --db and --rules "
                            "(in-process) or nothing more or --host/--port (ask a running nbad)");

    arena a;
    if (arena_init(&a, 64 * 1024) != 0)
        return EXIT_SOFTWARE;
    int code = EXIT_OK;
    ruleset *rs = NULL;
    store *st = NULL;
    store_reader *reader = NULL;
    nbactl_state sstate = {0};
    if (context && parse_context(context, &ev, &a) != 0) {
        code = nbactl_usage("--context takes key=value pairs separated by commas");
        goto out;
    }
    if (remote) {
        /* The serving nbad explains with its own rules and data. */
        Nba__V1__Request req = NBA__V1__REQUEST__INIT;
        Nba__V1__ExplainRequest x = NBA__V1__EXPLAIN_REQUEST__INIT;
        x.contact = &ev;
        req.id = 1;
        req.body_case = NBA__V1__REQUEST__BODY_EXPLAIN;
        req.explain = &x;
        code = nbactl_call(host ? host : NBACTL_DEFAULT_HOST, port, &req, json, ev.channel);
        goto out;
    }
    code = nbactl_compile(rules, n_rules, false, stderr, &rs);
    if (code)
        goto out;
    nba_error err;
    if (store_open_serving(db, 0, 0, &st, NULL, &err) != 0) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        code = EXIT_NOINPUT;
        goto out;
    }
    if (store_reader_new(st, &reader, &err) != 0) {
        fprintf(stderr, "nbactl: %s\n", err.msg);
        code = EXIT_SOFTWARE;
        goto out;
    }
    code = nbactl_state_open(db, &sstate);
    if (code)
        goto out;
    facts f;
    int rc = facts_load(reader, &ev, &a, &f);
    if (rc == 0)
        rc = nbactl_state_add(&sstate, &a, &f);
    if (rc) {
        fprintf(stderr, "nbactl: the database could not be read: %s\n", strerror(-rc));
        code = EXIT_SOFTWARE;
        goto out;
    }
    Nba__V1__Explanation e = NBA__V1__EXPLANATION__INIT;
    if (ruleset_explain(rs, &f, &a, &e) != 0) {
        fprintf(stderr, "nbactl: out of memory\n");
        code = EXIT_SOFTWARE;
        goto out;
    }
    if (json) {
        json_t *root = nbactl_explanation_json(&e);
        json_dumpf(root, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(root);
    } else {
        printf("channel   %s\n",
               *nbactl_channel_name(ev.channel) ? nbactl_channel_name(ev.channel) : "(none given)");
        nbactl_print_explanation(&e, stdout);
    }
out:
    nbactl_state_close(&sstate);
    store_reader_free(reader);
    if (st)
        store_close(st);
    ruleset_free(rs);
    arena_destroy(&a);
    return code;
}
