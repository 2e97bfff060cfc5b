/* nbactl rules check | test | simulate: the rule files' tools, in-process
 * (no daemon needed).
 *
 *   check     compiles rule files and prints every error and warning as
 *             file:line:col: severity: message, the line, a caret and a hint
 *   test      runs the scenario files next to the rules (the .yaml files of rules/tests):
 *             customers, incidents and an event in, the expected actions,
 *             language and message fragments out; a diff on failure, and a
 *             rule no scenario chooses counts as a failure too
 *   simulate  replays a file of contact events (JSON lines) against the
 *             database with two rulesets and reports how decisions change
 *
 * The scenario and events formats are described in rules/README.md.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "arena.h"
#include "clock.h"
#include "error.h"
#include "facts_load.h"
#include "letters.h"
#include "nbactl.h"
#include "nbactl_rules.h"
#include "policy.h"
#include "ruleset.h"
#include "store.h"
#include "store_live.h"

#define MAX_RULE_FILES 64

/* ---- a growing string ---- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown)
            return;
        b->s = grown;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- nbactl rules check ---- */

static int rules_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"strict", no_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool strict = false, quiet = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 's')
            strict = true;
        else if (opt == 'q')
            quiet = true;
        else if (opt == 'h')
            return nbactl_help();
        else
            return nbactl_usage(NULL);
    }
    if (optind >= argc)
        return nbactl_usage("rules check needs the rule files to check");
    if (argc - optind > MAX_RULE_FILES)
        return nbactl_usage("too many rule files");
    const char *const *paths = (const char *const *)argv + optind;
    size_t n = (size_t)(argc - optind);

    ruleset_diags *d;
    if (ruleset_diags_new(&d) != 0)
        return EXIT_SOFTWARE;
    ruleset *rs = NULL;
    int rc = ruleset_compile_files(paths, n, &rs, d);
    size_t errors = ruleset_diags_errors(d), warnings = ruleset_diags_warnings(d);
    for (size_t i = 0; i < ruleset_diags_count(d); i++) {
        const ruleset_diag *g = ruleset_diags_get(d, i);
        if (g->severity == RULESET_ERROR || !quiet)
            nbactl_print_diag(g, stdout);
    }
    if (errors + warnings > ruleset_diags_count(d))
        printf("(%zu more problems not shown)\n", errors + warnings - ruleset_diags_count(d));
    ruleset_diags_free(d);
    int code = EXIT_OK;
    if (rc == -ENOENT || rc == -EACCES || rc == -EIO)
        code = EXIT_NOINPUT;
    else if (rc)
        code = EXIT_DATAERR;
    else if (strict && warnings)
        code = EXIT_DATAERR;
    if (rs) {
        printf("%s: %zu rule%s from %zu file%s, %zu warning%s\n", ruleset_id(rs),
               ruleset_rule_count(rs), ruleset_rule_count(rs) == 1 ? "" : "s",
               ruleset_file_count(rs), ruleset_file_count(rs) == 1 ? "" : "s", warnings,
               warnings == 1 ? "" : "s");
    } else {
        printf("%zu error%s, %zu warning%s: the rules do not compile\n", errors,
               errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    }
    ruleset_free(rs);
    return code;
}

/* ---- scenario files ---- */

typedef struct sfile {
    const char *path;
    yaml_document_t doc;
    bool loaded;
    int errors;
} sfile;

static yaml_node_t *ynode(sfile *f, int id)
{
    return yaml_document_get_node(&f->doc, id);
}

static const char *yscalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static void serr(sfile *f, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A mistake in the scenario file itself: the file fails. */
static void serr(sfile *f, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (n)
        fprintf(stdout, "%s:%zu:%zu: error: ", f->path, n->start_mark.line + 1,
                n->start_mark.column + 1);
    else
        fprintf(stdout, "%s: error: ", f->path);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    f->errors++;
}

/* Edit distance, for "did you mean". */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* Checks a mapping's keys against keys[] (NULL-terminated); reports the
 * unknown ones with a hint. */
static bool ykeys(sfile *f, const yaml_node_t *m, const char *what, const char *const *keys)
{
    if (!m || m->type != YAML_MAPPING_NODE) {
        serr(f, m, "%s must be a mapping", what);
        return false;
    }
    bool ok = true;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *k = yscalar(ynode(f, p->key));
        bool known = false;
        const char *best = NULL;
        size_t best_d = 3;
        for (size_t i = 0; keys[i] && k; i++) {
            if (strcmp(k, keys[i]) == 0)
                known = true;
            size_t dd = distance(k, keys[i]);
            if (dd < best_d) {
                best_d = dd;
                best = keys[i];
            }
        }
        if (!known) {
            if (best)
                serr(f, ynode(f, p->key), "unknown key '%s' in %s; did you mean '%s'?", k ? k : "?",
                     what, best);
            else
                serr(f, ynode(f, p->key), "unknown key '%s' in %s", k ? k : "?", what);
            ok = false;
        }
    }
    return ok;
}

static yaml_node_t *yget(sfile *f, const yaml_node_t *m, const char *key)
{
    if (!m || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *k = yscalar(ynode(f, p->key));
        if (k && strcmp(k, key) == 0)
            return ynode(f, p->value);
    }
    return NULL;
}

static size_t ylen(const yaml_node_t *n)
{
    if (!n)
        return 0;
    if (n->type == YAML_SEQUENCE_NODE)
        return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (n->type == YAML_MAPPING_NODE)
        return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    return 1;
}

/* Item i of a list, or the node itself when it is a single scalar. */
static yaml_node_t *yitem(sfile *f, yaml_node_t *n, size_t i)
{
    if (n->type == YAML_SEQUENCE_NODE)
        return ynode(f, n->data.sequence.items.start[i]);
    return n;
}

static bool ybool(sfile *f, const yaml_node_t *n, bool *out)
{
    const char *s = yscalar(n);
    if (s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0)) {
        *out = true;
        return true;
    }
    if (s && (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0)) {
        *out = false;
        return true;
    }
    serr(f, n, "expected true or false");
    return false;
}

static bool ynumber(sfile *f, const yaml_node_t *n, double *out)
{
    const char *s = yscalar(n);
    char *end;
    if (s && *s) {
        *out = strtod(s, &end);
        if (*end == '\0')
            return true;
    }
    serr(f, n, "expected a number");
    return false;
}

static bool ytime(sfile *f, const yaml_node_t *n, int64_t *out)
{
    const char *s = yscalar(n);
    if (s && clock_parse_iso8601(s, strlen(s), out) == 0)
        return true;
    serr(f, n, "expected a time such as 2026-11-22T10:00:00Z");
    return false;
}

/* 10d, 6h, 1h30m, 45s, 2w */
static bool yduration(sfile *f, const yaml_node_t *n, int64_t *out_ms)
{
    const char *s = yscalar(n);
    double total = 0;
    bool any = false;
    while (s && *s) {
        char *end;
        double x = strtod(s, &end);
        if (end == s)
            break;
        double unit = 0;
        if (strncmp(end, "ms", 2) == 0) {
            unit = 1;
            end += 2;
        } else if (*end == 's' || *end == 'm' || *end == 'h' || *end == 'd' || *end == 'w') {
            unit = *end == 's'   ? 1e3
                   : *end == 'm' ? 60e3
                   : *end == 'h' ? 3600e3
                   : *end == 'd' ? 86400e3
                                 : 7 * 86400e3;
            end++;
        } else {
            break;
        }
        total += x * unit;
        any = true;
        s = end;
    }
    if (!any || (s && *s)) {
        serr(f, n, "expected a duration such as 10d, 6h or 1h30m");
        return false;
    }
    *out_ms = (int64_t)total;
    return true;
}

static char *astr(arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

/* ---- facts from a scenario ---- */

typedef struct customer_def {
    const char *id;
    yaml_node_t *node;
} customer_def;

static bool build_incident(sfile *f, yaml_node_t *n, const char *customer, int64_t now, arena *a,
                           Nba__V1__Incident **out)
{
    static const char *const keys[] = {"id",          "kind",         "severity", "age",
                                       "occurred_at", "flight",       "note",     "resolved",
                                       "open",        "recovered_by", NULL};
    if (!ykeys(f, n, "an incident", keys))
        return false;
    Nba__V1__Incident *inc = arena_alloc(a, sizeof *inc);
    if (!inc)
        return false;
    nba__v1__incident__init(inc);
    inc->customer_id = (char *)customer;
    const char *s;
    yaml_node_t *v;
    bool ok = true;
    inc->incident_id = astr(a, (s = yscalar(yget(f, n, "id"))) ? s : "");
    inc->kind = astr(a, (s = yscalar(yget(f, n, "kind"))) ? s : "");
    inc->flight = astr(a, (s = yscalar(yget(f, n, "flight"))) ? s : "");
    inc->note = astr(a, (s = yscalar(yget(f, n, "note"))) ? s : "");
    if ((v = yget(f, n, "severity"))) {
        double x;
        ok &= ynumber(f, v, &x);
        inc->severity = (int32_t)x;
    }
    int64_t t = now;
    if ((v = yget(f, n, "occurred_at"))) {
        ok &= ytime(f, v, &t);
    } else if ((v = yget(f, n, "age"))) {
        int64_t age = 0;
        ok &= yduration(f, v, &age);
        t = now - age;
    } else {
        serr(f, n, "an incident needs 'age' (10d) or 'occurred_at'");
        ok = false;
    }
    inc->occurred_at_ms = t;
    bool b;
    if ((v = yget(f, n, "resolved"))) {
        ok &= ybool(f, v, &b);
        inc->resolved = b;
    }
    if ((v = yget(f, n, "open"))) {
        ok &= ybool(f, v, &b);
        inc->resolved = !b;
    }
    inc->recovered_by = astr(a, (s = yscalar(yget(f, n, "recovered_by"))) ? s : "");
    *out = inc;
    return ok;
}

/* ---- contact history from a scenario ---- */

/* The pairs of mapping n (params, context), as texts in the arena. */
static bool ypairs(sfile *f, yaml_node_t *n, const char *what, arena *a, char ***keys, char ***vals,
                   size_t *count)
{
    *count = 0;
    if (n->type != YAML_MAPPING_NODE) {
        serr(f, n, "'%s' maps names to values, e.g. { flight: AZ610 }", what);
        return false;
    }
    *keys = arena_alloc(a, (ylen(n) + 1) * sizeof **keys);
    *vals = arena_alloc(a, (ylen(n) + 1) * sizeof **vals);
    if (!*keys || !*vals)
        return false;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *k = yscalar(ynode(f, p->key)), *v = yscalar(ynode(f, p->value));
        (*keys)[*count] = astr(a, k ? k : "");
        (*vals)[*count] = astr(a, v ? v : "");
        if (!(*keys)[*count] || !(*vals)[*count])
            return false;
        (*count)++;
    }
    return true;
}

/* One recorded action, as the daemon writes it after a decision. */
static bool build_entry(sfile *f, yaml_node_t *n, const char *customer, int64_t now, arena *a,
                        Nba__V1__HistoryEntry **out)
{
    static const char *const keys[] = {"action", "age",      "at",     "channel", "touchpoint",
                                       "rule",   "incident", "params", "context", NULL};
    if (!ykeys(f, n, "a history entry", keys))
        return false;
    Nba__V1__HistoryEntry *h = arena_alloc(a, sizeof *h);
    if (!h)
        return false;
    nba__v1__history_entry__init(h);
    h->customer_id = (char *)customer;
    const char *s;
    yaml_node_t *v;
    bool ok = true;
    if (!(s = yscalar(yget(f, n, "action")))) {
        serr(f, n, "a history entry needs 'action' (the action type recorded)");
        ok = false;
    }
    h->action = astr(a, s ? s : "");
    h->touchpoint = astr(a, (s = yscalar(yget(f, n, "touchpoint"))) ? s : "");
    h->rule_id = astr(a, (s = yscalar(yget(f, n, "rule"))) ? s : "");
    h->incident_id = astr(a, (s = yscalar(yget(f, n, "incident"))) ? s : "");
    if ((v = yget(f, n, "channel")) && (!yscalar(v) || !nbactl_channel(yscalar(v), &h->channel))) {
        serr(f, v, "unknown channel (desk, kiosk, ivr, web, mobile, call_center)");
        ok = false;
    }
    int64_t t = now;
    if ((v = yget(f, n, "at"))) {
        ok &= ytime(f, v, &t);
    } else if ((v = yget(f, n, "age"))) {
        int64_t age = 0;
        ok &= yduration(f, v, &age);
        t = now - age;
    } else {
        serr(f, n, "a history entry needs 'age' (2h) or 'at'");
        ok = false;
    }
    h->at_ms = t;
    char **keys_of, **vals;
    size_t count;
    if ((v = yget(f, n, "params"))) {
        if (!ypairs(f, v, "params", a, &keys_of, &vals, &count))
            return false;
        h->params = arena_alloc(a, (count + 1) * sizeof *h->params);
        for (size_t i = 0; h->params && i < count; i++) {
            Nba__V1__HistoryEntry__ParamsEntry *e = arena_alloc(a, sizeof *e);
            if (!e)
                return false;
            nba__v1__history_entry__params_entry__init(e);
            e->key = keys_of[i];
            e->value = vals[i];
            h->params[h->n_params++] = e;
        }
    }
    if ((v = yget(f, n, "context"))) {
        if (!ypairs(f, v, "context", a, &keys_of, &vals, &count))
            return false;
        h->context = arena_alloc(a, (count + 1) * sizeof *h->context);
        for (size_t i = 0; h->context && i < count; i++) {
            Nba__V1__HistoryEntry__ContextEntry *e = arena_alloc(a, sizeof *e);
            if (!e)
                return false;
            nba__v1__history_entry__context_entry__init(e);
            e->key = keys_of[i];
            e->value = vals[i];
            h->context[h->n_context++] = e;
        }
    }
    *out = h;
    return ok;
}

static bool build_history(sfile *f, yaml_node_t *list, const char *customer, int64_t now, arena *a,
                          Nba__V1__HistoryEntry ***items, size_t *n)
{
    if (!list)
        return true;
    if (list->type != YAML_SEQUENCE_NODE) {
        serr(f, list, "'history' must be a list of recorded actions");
        return false;
    }
    size_t count = ylen(list);
    Nba__V1__HistoryEntry **grown = arena_alloc(a, (*n + count + 1) * sizeof *grown);
    if (!grown)
        return false;
    if (*n)
        memcpy(grown, *items, *n * sizeof *grown);
    *items = grown;
    bool ok = true;
    for (size_t i = 0; i < count; i++)
        ok &= build_entry(f, yitem(f, list, i), customer, now, a, &(*items)[(*n)++]);
    return ok;
}

/* The history as the daemon hands it over, oldest first (a stable sort:
 * entries of the same time keep the order written), and the incidents its
 * recovering actions answered marked as the daemon marks them. */
static void settle_history(const ruleset *rs, facts *fx)
{
    Nba__V1__HistoryEntry **h = (Nba__V1__HistoryEntry **)fx->history;
    for (size_t i = 1; i < fx->n_history; i++) {
        Nba__V1__HistoryEntry *e = h[i];
        size_t j = i;
        while (j > 0 && h[j - 1]->at_ms > e->at_ms) {
            h[j] = h[j - 1];
            j--;
        }
        h[j] = e;
    }
    for (size_t i = 0; i < fx->n_history; i++) {
        if (!*h[i]->incident_id || !ruleset_recovers(rs, h[i]->action))
            continue;
        for (size_t k = 0; k < fx->n_incidents; k++) {
            Nba__V1__Incident *inc = fx->incidents[k];
            if (strcmp(inc->incident_id, h[i]->incident_id) == 0 && !*inc->recovered_by) {
                inc->recovered_by = h[i]->action;
                inc->recovered_at_ms = h[i]->at_ms;
            }
        }
    }
}

static bool build_incidents(sfile *f, yaml_node_t *list, const char *customer, int64_t now,
                            arena *a, Nba__V1__Incident ***items, size_t *n)
{
    if (!list)
        return true;
    if (list->type != YAML_SEQUENCE_NODE) {
        serr(f, list, "'incidents' must be a list");
        return false;
    }
    size_t count = ylen(list);
    Nba__V1__Incident **grown = arena_alloc(a, (*n + count + 1) * sizeof *grown);
    if (!grown)
        return false;
    if (*n)
        memcpy(grown, *items, *n * sizeof *grown);
    *items = grown;
    bool ok = true;
    for (size_t i = 0; i < count; i++)
        ok &= build_incident(f, yitem(f, list, i), customer, now, a, &(*items)[(*n)++]);
    return ok;
}

/* The customer of a scenario: a key of `customers`, an inline mapping, or
 * absent (a passenger nbad does not know). */
static bool build_customer(sfile *f, yaml_node_t *n, const char *id, int64_t now, arena *a,
                           facts *fx)
{
    static const char *const keys[] = {
        "id",       "name",       "tier",      "lifetime_value", "predicted_ltv",
        "language", "attributes", "incidents", "history",        NULL};
    if (!ykeys(f, n, "a customer", keys))
        return false;
    Nba__V1__Customer *c = arena_alloc(a, sizeof *c);
    if (!c)
        return false;
    nba__v1__customer__init(c);
    const char *s;
    bool ok = true;
    c->customer_id = (char *)id;
    c->name = astr(a, (s = yscalar(yget(f, n, "name"))) ? s : "");
    c->tier = astr(a, (s = yscalar(yget(f, n, "tier"))) ? s : "");
    c->language = astr(a, (s = yscalar(yget(f, n, "language"))) ? s : "");
    yaml_node_t *v;
    if ((v = yget(f, n, "lifetime_value")))
        ok &= ynumber(f, v, &c->lifetime_value);
    if ((v = yget(f, n, "predicted_ltv")))
        ok &= ynumber(f, v, &c->predicted_ltv);
    if ((v = yget(f, n, "attributes"))) {
        if (v->type != YAML_MAPPING_NODE) {
            serr(f, v, "'attributes' maps extra CSV columns to their values");
            return false;
        }
        size_t count = ylen(v);
        c->attributes = arena_alloc(a, (count + 1) * sizeof *c->attributes);
        if (!c->attributes)
            return false;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            Nba__V1__Attribute *at = arena_alloc(a, sizeof *at);
            if (!at)
                return false;
            nba__v1__attribute__init(at);
            const char *k = yscalar(ynode(f, p->key)), *val = yscalar(ynode(f, p->value));
            at->name = astr(a, k ? k : "");
            at->text = astr(a, val ? val : "");
            char *end;
            /* numbers as the loader reads them: a decimal number */
            if (val && *val) {
                double x = strtod(val, &end);
                if (*end == '\0') {
                    at->has_number = true;
                    at->number = x;
                }
            }
            c->attributes[c->n_attributes++] = at;
        }
    }
    fx->customer = c;
    Nba__V1__Incident **items = NULL;
    size_t count = 0;
    ok &= build_incidents(f, yget(f, n, "incidents"), id, now, a, &items, &count);
    fx->incidents = items;
    fx->n_incidents = count;
    Nba__V1__HistoryEntry **entries = NULL;
    size_t n_entries = 0;
    ok &= build_history(f, yget(f, n, "history"), id, now, a, &entries, &n_entries);
    fx->history = entries;
    fx->n_history = n_entries;
    return ok;
}

static bool build_event(sfile *f, yaml_node_t *n, const char *customer, int64_t *now, arena *a,
                        Nba__V1__ContactEvent *ev)
{
    static const char *const keys[] = {"channel", "touchpoint", "language", "location",
                                       "context", "at",         NULL};
    nba__v1__contact_event__init(ev);
    ev->customer_id = (char *)customer;
    if (!n)
        return true;
    if (!ykeys(f, n, "an event", keys))
        return false;
    const char *s;
    bool ok = true;
    if ((s = yscalar(yget(f, n, "touchpoint"))))
        ev->touchpoint = astr(a, s);
    if ((s = yscalar(yget(f, n, "language"))))
        ev->language = astr(a, s);
    if ((s = yscalar(yget(f, n, "location"))))
        ev->location = astr(a, s);
    yaml_node_t *v;
    if ((v = yget(f, n, "at")))
        ok &= ytime(f, v, now);
    ev->occurred_at_ms = *now;
    if ((v = yget(f, n, "context"))) {
        if (v->type != YAML_MAPPING_NODE) {
            serr(f, v, "'context' maps keys to values, e.g. { cabin: Y }");
            return false;
        }
        size_t count = ylen(v);
        ev->context = arena_alloc(a, (count + 1) * sizeof *ev->context);
        if (!ev->context)
            return false;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            Nba__V1__ContactEvent__ContextEntry *e = arena_alloc(a, sizeof *e);
            if (!e)
                return false;
            nba__v1__contact_event__context_entry__init(e);
            const char *k = yscalar(ynode(f, p->key)), *val = yscalar(ynode(f, p->value));
            e->key = astr(a, k ? k : "");
            e->value = astr(a, val ? val : "");
            ev->context[ev->n_context++] = e;
        }
    }
    return ok;
}

/* ---- expectations ---- */

typedef struct run_ctx {
    sfile *f;
    const ruleset *rs;
    bool *covered; /* per rule of rs */
    size_t passed, failed;
} run_ctx;

static const Nba__V1__Action *action_of(const Nba__V1__Decision *d, const char *type)
{
    for (size_t i = 0; i < d->n_actions; i++)
        if (strcmp(d->actions[i]->type, type) == 0)
            return d->actions[i];
    return NULL;
}

static const char *param_of(const Nba__V1__Action *a, const char *key)
{
    for (size_t i = 0; i < a->n_params; i++)
        if (strcmp(a->params[i]->key, key) == 0)
            return a->params[i]->value;
    return NULL;
}

/* The expected and actual action lists, as a diff (longest common
 * subsequence): "  same", "- expected only", "+ got only". */
static void diff_actions(sbuf *out, yaml_node_t *want, sfile *f, const Nba__V1__Decision *d)
{
    size_t nw = ylen(want), ng = d->n_actions;
    size_t *lcs = calloc((nw + 1) * (ng + 1), sizeof *lcs);
    if (!lcs)
        return;
#define L(i, j) lcs[(i) * (ng + 1) + (j)]
    for (size_t i = nw; i-- > 0;)
        for (size_t j = ng; j-- > 0;) {
            const char *w = yscalar(yitem(f, want, i));
            if (w && strcmp(w, d->actions[j]->type) == 0)
                L(i, j) = L(i + 1, j + 1) + 1;
            else
                L(i, j) = L(i + 1, j) > L(i, j + 1) ? L(i + 1, j) : L(i, j + 1);
        }
    sb_printf(out, "      actions (- expected, + got):\n");
    size_t i = 0, j = 0;
    while (i < nw || j < ng) {
        const char *w = i < nw ? yscalar(yitem(f, want, i)) : NULL;
        if (i < nw && j < ng && w && strcmp(w, d->actions[j]->type) == 0) {
            sb_printf(out, "          %-24s (rule %s)\n", w, d->actions[j]->rule_id);
            i++;
            j++;
        } else if (j < ng && (i == nw || L(i, j + 1) >= L(i + 1, j))) {
            sb_printf(out, "        + %-24s (rule %s)\n", d->actions[j]->type,
                      d->actions[j]->rule_id);
            j++;
        } else {
            sb_printf(out, "        - %s\n", w ? w : "?");
            i++;
        }
    }
#undef L
    free(lcs);
}

/* Checks fragments[] (a list) appear in text. */
static void expect_fragments(sbuf *out, sfile *f, const char *what, const char *type,
                             const char *text, yaml_node_t *frags)
{
    for (size_t i = 0; i < ylen(frags); i++) {
        const char *frag = yscalar(yitem(f, frags, i));
        if (frag && (!text || !strstr(text, frag)))
            sb_printf(out, "      %s of %s: expected to contain \"%s\"\n        got: \"%s\"\n",
                      what, type, frag, text ? text : "");
    }
}

/* Compares the decision with `expect`; appends what differs. */
static void check_expect(sfile *f, yaml_node_t *expect, const Nba__V1__Decision *d, sbuf *out)
{
    const char *s;
    yaml_node_t *v;
    if ((s = yscalar(yget(f, expect, "language"))) && strcmp(s, d->language) != 0)
        sb_printf(out, "      language: expected %s, got %s\n", s, d->language);
    if ((v = yget(f, expect, "actions"))) {
        bool same = ylen(v) == d->n_actions;
        for (size_t i = 0; same && i < d->n_actions; i++) {
            s = yscalar(yitem(f, v, i));
            same = s && strcmp(s, d->actions[i]->type) == 0;
        }
        if (!same)
            diff_actions(out, v, f, d);
    }
    if ((v = yget(f, expect, "includes")))
        for (size_t i = 0; i < ylen(v); i++)
            if ((s = yscalar(yitem(f, v, i))) && !action_of(d, s))
                sb_printf(out, "      expected a '%s' action, got none\n", s);
    if ((v = yget(f, expect, "excludes")))
        for (size_t i = 0; i < ylen(v); i++) {
            const Nba__V1__Action *a;
            if ((s = yscalar(yitem(f, v, i))) && (a = action_of(d, s)))
                sb_printf(out, "      expected no '%s' action, got one (rule %s)\n", s, a->rule_id);
        }
    static const char *const maps[] = {"rules", "params", "messages", "reasons"};
    for (size_t m = 0; m < sizeof maps / sizeof maps[0]; m++) {
        v = yget(f, expect, maps[m]);
        if (!v || v->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            const char *type = yscalar(ynode(f, p->key));
            yaml_node_t *want = ynode(f, p->value);
            const Nba__V1__Action *a = type ? action_of(d, type) : NULL;
            if (!a) {
                sb_printf(out, "      %s of %s: expected a '%s' action, got none\n", maps[m],
                          type ? type : "?", type ? type : "?");
                continue;
            }
            if (m == 0) {
                if ((s = yscalar(want)) && strcmp(s, a->rule_id) != 0)
                    sb_printf(out, "      rule of %s: expected %s, got %s\n", type, s, a->rule_id);
            } else if (m == 1 && want->type == YAML_MAPPING_NODE) {
                for (yaml_node_pair_t *q = want->data.mapping.pairs.start;
                     q < want->data.mapping.pairs.top; q++) {
                    const char *k = yscalar(ynode(f, q->key)), *val = yscalar(ynode(f, q->value));
                    const char *got = k ? param_of(a, k) : NULL;
                    if (k && val && (!got || strcmp(got, val) != 0))
                        sb_printf(out, "      params.%s of %s: expected %s, got %s\n", k, type, val,
                                  got ? got : "(none)");
                }
            } else if (m >= 2) {
                expect_fragments(out, f, m == 2 ? "message" : "reason", type,
                                 m == 2 ? a->message : a->reason, want);
            }
        }
    }
}

/* One line per rule: what it did, and for a rule that did not hold, the
 * first condition that did not. */
static void why_lines(const Nba__V1__Explanation *e, sbuf *out)
{
    sb_printf(out, "      why:\n");
    for (size_t i = 0; i < e->n_rules; i++) {
        const Nba__V1__RuleTrace *t = e->rules[i];
        if (t->held) {
            sb_printf(out, "        %s: held, %s\n", t->rule_id, t->outcome);
            continue;
        }
        const Nba__V1__ConditionTrace *first = NULL;
        for (size_t c = 0; c < t->n_conditions && !first; c++)
            if (!t->conditions[c]->held)
                first = t->conditions[c];
        if (first)
            sb_printf(out, "        %s: not held: %s is false (%s)\n", t->rule_id,
                      first->expression, first->value);
        else
            sb_printf(out, "        %s: not held\n", t->rule_id);
    }
}

/* The effects of the decision (the recorded actions, as the daemon
 * records them) and the letters they send, against `records` and
 * `letters`. Decides again, the way the daemon does, to have the hits. */
static void check_effects(const ruleset *rs, sfile *f, yaml_node_t *expect, const facts *fx,
                          arena *a, sbuf *out)
{
    yaml_node_t *records = yget(f, expect, "records"), *letters = yget(f, expect, "letters");
    if (!records && !letters)
        return;
    rule_hit *hits = arena_alloc(a, (ruleset_rule_count(rs) + 1) * sizeof *hits);
    Nba__V1__Decision *d = arena_alloc(a, sizeof *d);
    if (!hits || !d) {
        sb_printf(out, "      out of memory\n");
        return;
    }
    size_t n = ruleset_match(rs, fx, hits);
    n = ruleset_arbitrate(rs, fx, hits, n);
    nba__v1__decision__init(d);
    ruleset_effect *eff = NULL;
    size_t n_eff = 0;
    int rc = ruleset_render(rs, fx, hits, n, a, d);
    if (!rc) {
        eff = arena_alloc(a, (d->n_actions + 1) * sizeof *eff);
        rc = eff ? ruleset_effects(rs, fx, hits, n, d, eff, d->n_actions, &n_eff) : -ENOMEM;
    }
    if (rc) {
        sb_printf(out, "      effects: %s\n", strerror(-rc));
        return;
    }
    if (records) {
        bool same = ylen(records) == n_eff;
        for (size_t i = 0; same && i < n_eff; i++) {
            const char *w = yscalar(yitem(f, records, i));
            same = w && strcmp(w, eff[i].type) == 0;
        }
        if (!same) {
            sb_printf(out, "      records: expected [");
            for (size_t i = 0; i < ylen(records); i++) {
                const char *w = yscalar(yitem(f, records, i));
                sb_printf(out, "%s%s", i ? ", " : "", w ? w : "?");
            }
            sb_printf(out, "], got [");
            for (size_t i = 0; i < n_eff; i++)
                sb_printf(out, "%s%s", i ? ", " : "", eff[i].type);
            sb_printf(out, "]\n");
        }
    }
    if (!letters || letters->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = letters->data.mapping.pairs.start;
         p < letters->data.mapping.pairs.top; p++) {
        const char *type = yscalar(ynode(f, p->key));
        const ruleset_effect *e = NULL;
        for (size_t i = 0; type && i < n_eff && !e; i++)
            if (strcmp(eff[i].type, type) == 0)
                e = &eff[i];
        if (!e || !e->letter) {
            sb_printf(out, "      letter of %s: expected %s, got none\n", type ? type : "?",
                      e ? "a letter" : "a recorded action of that type");
            continue;
        }
        const char *subject, *text, *html;
        rc = ruleset_render_letter(rs, fx, e->incident, e->letter, d->language, a, &subject, &text,
                                   &html);
        if (rc) {
            sb_printf(out, "      letter of %s: %s\n", type, strerror(-rc));
            continue;
        }
        sbuf whole = {0};
        sb_printf(&whole, "%s\n\n%s", subject, text);
        expect_fragments(out, f, "letter", type, whole.s, ynode(f, p->value));
        free(whole.s);
    }
}

static const char *const scenario_keys[] = {"name",  "customer", "incidents", "history",
                                            "event", "expect",   NULL};
static const char *const expect_keys[] = {"language", "actions", "includes", "excludes",
                                          "rules",    "params",  "messages", "reasons",
                                          "records",  "letters", NULL};

/* Runs one scenario (once per channel it lists). */
static void run_scenario(run_ctx *x, yaml_node_t *sc, const customer_def *customers,
                         size_t n_customers, int64_t now, arena *a)
{
    sfile *f = x->f;
    if (!ykeys(f, sc, "a scenario", scenario_keys))
        return;
    const char *name = yscalar(yget(f, sc, "name"));
    yaml_node_t *expect = yget(f, sc, "expect");
    if (!name) {
        serr(f, sc, "a scenario needs a 'name'");
        return;
    }
    if (!expect) {
        serr(f, sc, "scenario '%s' needs 'expect'", name);
        return;
    }
    if (!ykeys(f, expect, "'expect'", expect_keys))
        return;
    yaml_node_t *event = yget(f, sc, "event");
    yaml_node_t *channels = event ? yget(f, event, "channel") : NULL;
    size_t n_channels = channels ? ylen(channels) : 1;
    for (size_t ci = 0; ci < n_channels; ci++) {
        arena_reset(a);
        Nba__V1__Channel ch = NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED;
        const char *chname = channels ? yscalar(yitem(f, channels, ci)) : NULL;
        if (channels && (!chname || !nbactl_channel(chname, &ch))) {
            serr(f, yitem(f, channels, ci),
                 "unknown channel (desk, kiosk, ivr, web, mobile, call_center)");
            return;
        }
        /* the customer */
        facts fx = {0};
        yaml_node_t *cust = yget(f, sc, "customer");
        const char *cid = "UNKNOWN";
        int64_t t = now;
        Nba__V1__ContactEvent *ev = arena_alloc(a, sizeof *ev);
        if (!ev)
            return;
        bool ok = true;
        if (cust && cust->type == YAML_SCALAR_NODE) {
            cid = yscalar(cust);
            for (size_t k = 0; k < n_customers; k++)
                if (strcmp(customers[k].id, cid) == 0)
                    ok &= build_customer(f, customers[k].node, cid, now, a, &fx);
        } else if (cust) {
            const char *id = yscalar(yget(f, cust, "id"));
            cid = id ? id : "C-TEST";
            ok &= build_customer(f, cust, cid, now, a, &fx);
        }
        if (fx.customer) {
            Nba__V1__Incident **items = (Nba__V1__Incident **)fx.incidents;
            size_t count = fx.n_incidents;
            ok &= build_incidents(f, yget(f, sc, "incidents"), cid, now, a, &items, &count);
            fx.incidents = items;
            fx.n_incidents = count;
        } else if (yget(f, sc, "incidents")) {
            serr(f, yget(f, sc, "incidents"), "incidents need a customer nbad knows");
            ok = false;
        }
        Nba__V1__HistoryEntry **entries = (Nba__V1__HistoryEntry **)fx.history;
        size_t n_entries = fx.n_history;
        ok &= build_history(f, yget(f, sc, "history"), cid, now, a, &entries, &n_entries);
        fx.history = entries;
        fx.n_history = n_entries;
        ok &= build_event(f, event, cid, &t, a, ev);
        if (!ok)
            return;
        ev->channel = ch;
        fx.event = ev;
        fx.now_ms = t;
        settle_history(x->rs, &fx);

        Nba__V1__Explanation e = NBA__V1__EXPLANATION__INIT;
        if (ruleset_explain(x->rs, &fx, a, &e) != 0) {
            serr(f, sc, "out of memory");
            return;
        }
        for (size_t r = 0; r < e.n_rules; r++) {
            const char *o = e.rules[r]->outcome;
            if (strncmp(o, "chosen", 6) == 0 && strncmp(o, "chosen, but gives nothing", 25) != 0)
                x->covered[r] = true;
        }
        sbuf diff = {0};
        check_expect(f, expect, e.decision, &diff);
        check_effects(x->rs, f, expect, &fx, a, &diff);
        char label[256];
        snprintf(label, sizeof label, "%s%s%s%s", name, chname ? " (" : "", chname ? chname : "",
                 chname ? ")" : "");
        if (diff.len == 0) {
            printf("  ok    %s\n", label);
            x->passed++;
        } else {
            printf("  FAIL  %s   %s:%zu\n", label, f->path, sc->start_mark.line + 1);
            why_lines(&e, &diff);
            fputs(diff.s, stdout);
            x->failed++;
        }
        free(diff.s);
    }
}

/* A compiled ruleset and the rules its scenarios chose. */
typedef struct loaded_rules {
    char *key; /* the paths, joined */
    ruleset *rs;
    bool *covered;
} loaded_rules;

typedef struct test_state {
    loaded_rules *sets;
    size_t n_sets;
    size_t passed, failed, file_errors;
} test_state;

static loaded_rules *rules_for(test_state *st, sfile *f, yaml_node_t *n)
{
    if (!n) {
        serr(f, NULL, "a scenario file names its rule files: rules: ../airline-checkin.yaml");
        return NULL;
    }
    size_t count = ylen(n);
    if (count == 0 || count > MAX_RULE_FILES) {
        serr(f, n, "'rules' names one rule file or a list of them");
        return NULL;
    }
    char *copy = strdup(f->path);
    if (!copy)
        return NULL;
    const char *dir = dirname(copy);
    char *paths[MAX_RULE_FILES];
    sbuf key = {0};
    size_t np = 0;
    for (size_t i = 0; i < count; i++) {
        const char *rel = yscalar(yitem(f, n, i));
        if (!rel) {
            serr(f, yitem(f, n, i), "expected a file name");
            continue;
        }
        size_t size = strlen(dir) + strlen(rel) + 2;
        paths[np] = malloc(size);
        if (!paths[np])
            break;
        if (rel[0] == '/')
            snprintf(paths[np], size, "%s", rel);
        else
            snprintf(paths[np], size, "%s/%s", dir, rel);
        sb_printf(&key, "%s\n", paths[np]);
        np++;
    }
    free(copy);
    loaded_rules *found = NULL;
    for (size_t i = 0; i < st->n_sets && !found && key.s; i++)
        if (strcmp(st->sets[i].key, key.s) == 0)
            found = &st->sets[i];
    if (!found && np == count && key.s) {
        ruleset *rs = NULL;
        if (nbactl_compile((const char *const *)paths, np, false, stdout, &rs) == EXIT_OK) {
            loaded_rules *grown = realloc(st->sets, (st->n_sets + 1) * sizeof *grown);
            bool *covered = calloc(ruleset_rule_count(rs) + 1, sizeof *covered);
            if (grown && covered) {
                st->sets = grown;
                found = &st->sets[st->n_sets++];
                found->key = key.s;
                found->rs = rs;
                found->covered = covered;
                key.s = NULL;
            } else {
                if (grown)
                    st->sets = grown;
                free(covered);
                ruleset_free(rs);
            }
        } else {
            f->errors++;
        }
    }
    for (size_t i = 0; i < np; i++)
        free(paths[i]);
    free(key.s);
    return found;
}

static void run_file(test_state *st, const char *path, arena *a)
{
    sfile f = {.path = path};
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        serr(&f, NULL, "%s", strerror(errno));
        st->file_errors++;
        return;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &f.doc)) {
        printf("%s:%zu:%zu: error: %s\n", path, parser.problem_mark.line + 1,
               parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML");
        yaml_parser_delete(&parser);
        fclose(fp);
        st->file_errors++;
        return;
    }
    yaml_parser_delete(&parser);
    fclose(fp);
    f.loaded = true;
    printf("%s\n", path);

    static const char *const keys[] = {"description", "rules",     "now",
                                       "customers",   "scenarios", NULL};
    yaml_node_t *root = yaml_document_get_root_node(&f.doc);
    customer_def *customers = NULL;
    size_t n_customers = 0;
    if (!root || !ykeys(&f, root, "a scenario file", keys))
        goto out;
    loaded_rules *lr = rules_for(st, &f, yget(&f, root, "rules"));
    if (!lr)
        goto out;
    int64_t now;
    /* a fixed default, so ages never drift */
    clock_parse_iso8601("2026-06-01T12:00:00Z", 20, &now);
    yaml_node_t *v = yget(&f, root, "now");
    if (v && !ytime(&f, v, &now))
        goto out;
    v = yget(&f, root, "customers");
    if (v) {
        if (v->type != YAML_MAPPING_NODE) {
            serr(&f, v, "'customers' maps customer ids to customers");
            goto out;
        }
        customers = calloc(ylen(v) + 1, sizeof *customers);
        if (!customers)
            goto out;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            customers[n_customers].id = yscalar(ynode(&f, p->key));
            customers[n_customers].node = ynode(&f, p->value);
            if (customers[n_customers].id)
                n_customers++;
        }
    }
    v = yget(&f, root, "scenarios");
    if (!v || v->type != YAML_SEQUENCE_NODE || ylen(v) == 0) {
        serr(&f, v ? v : root, "a scenario file needs 'scenarios', a list of scenarios");
        goto out;
    }
    run_ctx x = {.f = &f, .rs = lr->rs, .covered = lr->covered};
    for (size_t i = 0; i < ylen(v); i++)
        run_scenario(&x, yitem(&f, v, i), customers, n_customers, now, a);
    st->passed += x.passed;
    st->failed += x.failed;
out:
    if (f.errors)
        st->file_errors++;
    free(customers);
    yaml_document_delete(&f.doc);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The scenario files of a rules directory: the .yaml files of DIR/tests, in
 * name order. */
static int scenario_files(const char *dir, char ***out, size_t *n)
{
    char tests[4096];
    snprintf(tests, sizeof tests, "%s/tests", dir);
    DIR *d = opendir(tests);
    if (!d)
        return -errno;
    struct dirent *de;
    char **files = NULL;
    size_t count = 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0 || de->d_name[0] == '.')
            continue;
        char **grown = realloc(files, (count + 1) * sizeof *grown);
        if (!grown)
            break;
        files = grown;
        size_t size = strlen(tests) + len + 2;
        files[count] = malloc(size);
        if (!files[count])
            break;
        snprintf(files[count++], size, "%s/%s", tests, de->d_name);
    }
    closedir(d);
    qsort(files, count, sizeof *files, name_cmp);
    *out = files;
    *n = count;
    return 0;
}

static int rules_test(int argc, char **argv)
{
    static const struct option opts[] = {
        {"allow-uncovered", no_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool allow_uncovered = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'u')
            allow_uncovered = true;
        else if (opt == 'h')
            return nbactl_help();
        else
            return nbactl_usage(NULL);
    }
    char **files = NULL;
    size_t n_files = 0;
    bool listed = false;
    if (optind == argc || (optind + 1 == argc && strstr(argv[optind], ".yaml") == NULL)) {
        const char *dir = optind < argc ? argv[optind] : "rules";
        int rc = scenario_files(dir, &files, &n_files);
        if (rc || n_files == 0) {
            fprintf(stderr, "nbactl: no scenario files in %s/tests (%s)\n", dir,
                    rc ? strerror(-rc) : "no *.yaml");
            free(files);
            return EXIT_NOINPUT;
        }
    } else {
        files = (char **)argv + optind;
        n_files = (size_t)(argc - optind);
        listed = true;
    }
    arena a;
    if (arena_init(&a, 64 * 1024) != 0)
        return EXIT_SOFTWARE;
    test_state st = {0};
    for (size_t i = 0; i < n_files; i++)
        run_file(&st, files[i], &a);
    size_t uncovered = 0;
    for (size_t i = 0; i < st.n_sets; i++) {
        const loaded_rules *lr = &st.sets[i];
        size_t n = ruleset_rule_count(lr->rs), covered = 0;
        for (size_t r = 0; r < n; r++)
            covered += lr->covered[r];
        printf("coverage of %s: %zu of %zu rules chosen by a scenario\n", ruleset_id(lr->rs),
               covered, n);
        for (size_t r = 0; r < n; r++)
            if (!lr->covered[r])
                printf("  not chosen by any scenario: %s\n", ruleset_rule_id(lr->rs, r));
        uncovered += n - covered;
    }
    printf("%zu scenario run%s: %zu passed, %zu failed", st.passed + st.failed,
           st.passed + st.failed == 1 ? "" : "s", st.passed, st.failed);
    if (st.file_errors)
        printf("; %zu file%s with mistakes", st.file_errors, st.file_errors == 1 ? "" : "s");
    putchar('\n');
    for (size_t i = 0; i < st.n_sets; i++) {
        free(st.sets[i].key);
        free(st.sets[i].covered);
        ruleset_free(st.sets[i].rs);
    }
    free(st.sets);
    if (!listed) {
        for (size_t i = 0; i < n_files; i++)
            free(files[i]);
        free(files);
    }
    arena_destroy(&a);
    if (st.failed || st.file_errors || st.passed == 0)
        return EXIT_DATAERR;
    if (uncovered && !allow_uncovered) {
        printf("every rule needs a scenario that chooses it (or run with --allow-uncovered)\n");
        return EXIT_DATAERR;
    }
    return EXIT_OK;
}

/* ---- nbactl rules simulate ---- */

typedef struct counter {
    char *name;
    size_t current, fresh;
} counter;

typedef struct counters {
    counter *c;
    size_t n, cap;
} counters;

static void count(counters *cs, const char *name, bool fresh)
{
    counter *c = NULL;
    for (size_t i = 0; i < cs->n && !c; i++)
        if (strcmp(cs->c[i].name, name) == 0)
            c = &cs->c[i];
    if (!c) {
        if (cs->n == cs->cap) {
            size_t cap = cs->cap ? cs->cap * 2 : 16;
            counter *grown = realloc(cs->c, cap * sizeof *grown);
            if (!grown)
                return;
            cs->c = grown;
            cs->cap = cap;
        }
        c = &cs->c[cs->n];
        c->name = strdup(name);
        if (!c->name)
            return;
        c->current = c->fresh = 0;
        cs->n++;
    }
    if (fresh)
        c->fresh++;
    else
        c->current++;
}

static int counter_cmp(const void *a, const void *b)
{
    return strcmp(((const counter *)a)->name, ((const counter *)b)->name);
}

static void counters_free(counters *cs)
{
    for (size_t i = 0; i < cs->n; i++)
        free(cs->c[i].name);
    free(cs->c);
}

static bool same_decision(const Nba__V1__Decision *a, const Nba__V1__Decision *b)
{
    if (strcmp(a->language, b->language) != 0 || a->n_actions != b->n_actions)
        return false;
    for (size_t i = 0; i < a->n_actions; i++) {
        const Nba__V1__Action *x = a->actions[i], *y = b->actions[i];
        if (strcmp(x->type, y->type) != 0 || strcmp(x->rule_id, y->rule_id) != 0 ||
            x->n_params != y->n_params || x->follow_up != y->follow_up)
            return false;
        for (size_t p = 0; p < x->n_params; p++)
            if (strcmp(x->params[p]->key, y->params[p]->key) != 0 ||
                strcmp(x->params[p]->value, y->params[p]->value) != 0)
                return false;
    }
    return true;
}

static void action_list(const Nba__V1__Decision *d, sbuf *out)
{
    if (d->n_actions == 0)
        sb_printf(out, "(none)");
    for (size_t i = 0; i < d->n_actions; i++)
        sb_printf(out, "%s%s", i ? ", " : "", d->actions[i]->type);
    sb_printf(out, "   [%s]", d->language);
}

static int decide(const ruleset *rs, const facts *f, arena *a, Nba__V1__Decision *d)
{
    rule_hit *hits = arena_alloc(a, (ruleset_rule_count(rs) + 1) * sizeof *hits);
    if (!hits)
        return -ENOMEM;
    size_t n = ruleset_match(rs, f, hits);
    n = ruleset_arbitrate(rs, f, hits, n);
    nba__v1__decision__init(d);
    d->customer_id = f->event->customer_id;
    d->known = f->customer != NULL;
    return ruleset_render(rs, f, hits, n, a, d);
}

/* The customer a sample line names: the id, resolved from the event's
 * lookup key when it gave one ("booking_ref=X7K2QP" when none matched). */
static const char *who(const facts *f, const Nba__V1__ContactEvent *ev)
{
    static char buf[600];
    if (f->event->customer_id && f->event->customer_id[0])
        return f->event->customer_id;
    snprintf(buf, sizeof buf, "%s=%s", ev->key_name ? ev->key_name : "",
             ev->key_value ? ev->key_value : "");
    return buf;
}

/* One JSON line into an event; false with *why set when it is not one. */
static bool event_from_json(json_t *j, arena *a, Nba__V1__ContactEvent *ev, const char **why)
{
    nba__v1__contact_event__init(ev);
    if (!json_is_object(j)) {
        *why = "not a JSON object";
        return false;
    }
    const char *s;
    /* The customer by id, or by a lookup key as a contact point may send. */
    if ((s = json_string_value(json_object_get(j, "customer_id"))) && *s)
        ev->customer_id = astr(a, s);
    const char *kn = json_string_value(json_object_get(j, "key_name"));
    const char *kv = json_string_value(json_object_get(j, "key_value"));
    if ((kn && *kn) != (kv && *kv)) {
        *why = "\"key_name\" and \"key_value\" go together";
        return false;
    }
    if (kn && *kn) {
        ev->key_name = astr(a, kn);
        ev->key_value = astr(a, kv);
    } else if (!s || !*s) {
        *why = "no \"customer_id\" (nor \"key_name\" and \"key_value\")";
        return false;
    }
    if ((s = json_string_value(json_object_get(j, "channel"))) && *s &&
        !nbactl_channel(s, &ev->channel)) {
        *why = "unknown \"channel\"";
        return false;
    }
    if ((s = json_string_value(json_object_get(j, "touchpoint"))))
        ev->touchpoint = astr(a, s);
    if ((s = json_string_value(json_object_get(j, "language"))))
        ev->language = astr(a, s);
    if ((s = json_string_value(json_object_get(j, "location"))))
        ev->location = astr(a, s);
    if ((s = json_string_value(json_object_get(j, "at"))) &&
        clock_parse_iso8601(s, strlen(s), &ev->occurred_at_ms) != 0) {
        *why = "\"at\" is not an ISO 8601 time";
        return false;
    }
    json_t *ctx = json_object_get(j, "context");
    if (ctx && !json_is_object(ctx)) {
        *why = "\"context\" is not an object";
        return false;
    }
    if (ctx) {
        ev->context = arena_alloc(a, (json_object_size(ctx) + 1) * sizeof *ev->context);
        const char *k;
        json_t *val;
        json_object_foreach(ctx, k, val)
        {
            Nba__V1__ContactEvent__ContextEntry *e = arena_alloc(a, sizeof *e);
            if (!e || !ev->context)
                return false;
            nba__v1__contact_event__context_entry__init(e);
            e->key = astr(a, k);
            if (json_is_string(val)) {
                e->value = astr(a, json_string_value(val));
            } else {
                char *text = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
                e->value = astr(a, text ? text : "");
                free(text);
            }
            ev->context[ev->n_context++] = e;
        }
    }
    return true;
}

static void print_counters(const char *title, counters *cs)
{
    qsort(cs->c, cs->n, sizeof *cs->c, counter_cmp);
    size_t width = strlen(title);
    for (size_t i = 0; i < cs->n; i++)
        if (strlen(cs->c[i].name) + 2 > width)
            width = strlen(cs->c[i].name) + 2;
    printf("\n%-*s %10s %10s %10s\n", (int)width, title, "current", "new", "change");
    for (size_t i = 0; i < cs->n; i++) {
        const counter *c = &cs->c[i];
        long change = (long)c->fresh - (long)c->current;
        printf("  %-*s %10zu %10zu %+10ld%s\n", (int)width - 2, c->name, c->current, c->fresh,
               change, change ? "" : "");
    }
}

static json_t *counters_json(const counters *cs)
{
    json_t *o = json_object();
    for (size_t i = 0; i < cs->n; i++)
        json_object_set_new(o, cs->c[i].name,
                            json_pack("{s:I, s:I}", "current", (json_int_t)cs->c[i].current, "new",
                                      (json_int_t)cs->c[i].fresh));
    return o;
}

static int rules_simulate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"rules", required_argument, NULL, 'r'},  {"against", required_argument, NULL, 'a'},
        {"events", required_argument, NULL, 'e'}, {"db", required_argument, NULL, 'd'},
        {"sample", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *fresh_paths[MAX_RULE_FILES], *current_paths[MAX_RULE_FILES];
    size_t n_fresh = 0, n_current = 0, sample = 10;
    const char *events = NULL, *db = NULL;
    bool json = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            if (n_fresh == MAX_RULE_FILES)
                return nbactl_usage("too many --rules files");
            fresh_paths[n_fresh++] = optarg;
            break;
        case 'a':
            if (n_current == MAX_RULE_FILES)
                return nbactl_usage("too many --against files");
            current_paths[n_current++] = optarg;
            break;
        case 'e':
            events = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 's': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0)
                return nbactl_usage("--sample takes a number");
            sample = (size_t)v;
            break;
        }
        case 'j':
            json = true;
            break;
        case 'h':
            return nbactl_help();
        default:
            return nbactl_usage(NULL);
        }
    }
    if (optind < argc || !n_fresh || !n_current || !events || !db)
        return nbactl_usage("rules simulate needs --rules, --against, --events and --db");

    int code = EXIT_OK;
    ruleset *fresh = NULL, *current = NULL;
    store *st = NULL;
    store_reader *reader = NULL;
    nbactl_state sstate = {0};
    FILE *in = NULL;
    arena a;
    if (arena_init(&a, 64 * 1024) != 0)
        return EXIT_SOFTWARE;
    counters actions = {0}, rules = {0};
    sbuf samples = {0};
    json_t *jsamples = json ? json_array() : NULL;
    size_t n_events = 0, changed = 0, unknown = 0, bad = 0, shown = 0;

    if ((code = nbactl_compile(current_paths, n_current, false, stderr, &current)) ||
        (code = nbactl_compile(fresh_paths, n_fresh, false, stderr, &fresh)))
        goto out;
    nba_error err;
    if ((code = nbactl_state_open(db, &sstate)))
        goto out;
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
    in = strcmp(events, "-") == 0 ? stdin : fopen(events, "r");
    if (!in) {
        fprintf(stderr, "nbactl: %s: %s\n", events, strerror(errno));
        code = EXIT_NOINPUT;
        goto out;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\n' || *p == '\0' || *p == '#')
            continue;
        arena_reset(&a);
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        Nba__V1__ContactEvent *ev = arena_alloc(&a, sizeof *ev);
        const char *why = jerr.text;
        if (!j || !ev || !event_from_json(j, &a, ev, &why)) {
            fprintf(stderr, "nbactl: %s:%zu: %s\n", events, lineno, why);
            json_decref(j);
            bad++;
            continue;
        }
        json_decref(j);
        facts f;
        int rc = facts_load(reader, ev, &a, &f);
        if (rc == 0)
            rc = nbactl_state_add(&sstate, &a, &f);
        if (rc) {
            fprintf(stderr, "nbactl: the database could not be read: %s\n", strerror(-rc));
            code = EXIT_SOFTWARE;
            break;
        }
        n_events++;
        unknown += f.customer == NULL;
        Nba__V1__Decision dc, dn;
        if (decide(current, &f, &a, &dc) || decide(fresh, &f, &a, &dn)) {
            code = EXIT_SOFTWARE;
            break;
        }
        for (size_t i = 0; i < dc.n_actions; i++) {
            count(&actions, dc.actions[i]->type, false);
            count(&rules, dc.actions[i]->rule_id, false);
        }
        for (size_t i = 0; i < dn.n_actions; i++) {
            count(&actions, dn.actions[i]->type, true);
            count(&rules, dn.actions[i]->rule_id, true);
        }
        if (same_decision(&dc, &dn))
            continue;
        changed++;
        if (shown >= sample)
            continue;
        shown++;
        sbuf cur = {0}, nw = {0};
        action_list(&dc, &cur);
        action_list(&dn, &nw);
        const char *chname = nbactl_channel_name(ev->channel);
        if (json)
            json_array_append_new(
                jsamples, json_pack("{s:I, s:s, s:s, s:s, s:o, s:o}", "line", (json_int_t)lineno,
                                    "customer_id", f.event->customer_id, "channel", chname,
                                    "touchpoint", ev->touchpoint, "current",
                                    nbactl_decision_json(&dc), "new", nbactl_decision_json(&dn)));
        else
            sb_printf(&samples, "  %s:%zu  %s  %s %s\n      current: %s\n      new:     %s\n",
                      events, lineno, who(&f, ev), *chname ? chname : "(no channel)",
                      ev->touchpoint, cur.s, nw.s);
        free(cur.s);
        free(nw.s);
    }
    free(line);
    if (code)
        goto out;
    if (json) {
        json_t *root =
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "current",
                      ruleset_id(current), "new", ruleset_id(fresh), "events", (json_int_t)n_events,
                      "unknown_customers", (json_int_t)unknown, "unreadable_lines", (json_int_t)bad,
                      "changed", (json_int_t)changed, "actions", counters_json(&actions), "rules",
                      counters_json(&rules), "sample", jsamples);
        jsamples = NULL;
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        putchar('\n');
        json_decref(root);
    } else {
        printf("%zu contact events from %s, %zu of them for passengers nbad does not know",
               n_events, events, unknown);
        if (bad)
            printf("; %zu unreadable line%s skipped", bad, bad == 1 ? "" : "s");
        printf("\n  current  %s\n  new      %s\n", ruleset_id(current), ruleset_id(fresh));
        printf("decisions that change: %zu of %zu (%.1f%%)\n", changed, n_events,
               n_events ? 100.0 * (double)changed / (double)n_events : 0.0);
        print_counters("actions given", &actions);
        print_counters("actions per rule", &rules);
        if (changed)
            printf("\nchanged decisions (%zu of %zu shown):\n%s", shown, changed,
                   samples.s ? samples.s : "");
    }
    if (bad)
        code = EXIT_DATAERR;
out:
    json_decref(jsamples);
    free(samples.s);
    counters_free(&actions);
    counters_free(&rules);
    if (in && in != stdin)
        fclose(in);
    nbactl_state_close(&sstate);
    store_reader_free(reader);
    if (st)
        store_close(st);
    ruleset_free(fresh);
    ruleset_free(current);
    arena_destroy(&a);
    return code;
}

/* ---- dispatch ---- */

int nbactl_rules(int argc, char **argv)
{
    if (argc < 2)
        return nbactl_usage("rules needs a subcommand: check, test or simulate");
    if (strcmp(argv[1], "check") == 0)
        return rules_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "test") == 0)
        return rules_test(argc - 1, argv + 1);
    if (strcmp(argv[1], "simulate") == 0)
        return rules_simulate(argc - 1, argv + 1);
    return nbactl_usage("unknown rules subcommand (check, test, simulate)");
}
