/* factpath.c - the names rules read (customer.tier, event.context.cabin,
 * severity, incident.kind, ...): resolved to field ids once when a rule file
 * compiles, then read from the facts of each decision by a switch on the
 * id, without looking at a name again.
 *
 * Missing is a value of its own: an unknown customer has no tier, an event
 * may lack a context key, a customer may lack an attribute. Readers return
 * false for it and the evaluator turns every comparison with it into false.
 */
#include "rules_internal.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"

static_assert(FF_CUSTOMER_ATTR <= 32, "fact_memo.read has a bit per field it keeps");
static_assert(NBA__V1__CHANNEL__DESK == 1 && NBA__V1__CHANNEL__KIOSK == 2 &&
                  NBA__V1__CHANNEL__IVR == 3 && NBA__V1__CHANNEL__WEB == 4 &&
                  NBA__V1__CHANNEL__MOBILE == 5 && NBA__V1__CHANNEL__CALL_CENTER == 6,
              "channel names are indexed by the proto enum");

/* The contract's channel names: the lower-case proto enum names. */
static const char *const channel_names[RULES_N_CHANNELS] = {
    "default", "desk", "kiosk", "ivr", "web", "mobile", "call_center",
};
static const size_t channel_name_len[RULES_N_CHANNELS] = {
    sizeof "default" - 1, sizeof "desk" - 1,   sizeof "kiosk" - 1,       sizeof "ivr" - 1,
    sizeof "web" - 1,     sizeof "mobile" - 1, sizeof "call_center" - 1,
};

const char *rules_channel_name(unsigned index)
{
    return index < RULES_N_CHANNELS ? channel_names[index] : channel_names[0];
}

int rules_channel_lookup(const char *name, size_t len, bool with_default)
{
    for (int i = with_default ? 0 : 1; i < RULES_N_CHANNELS; i++)
        if (strlen(channel_names[i]) == len && memcmp(channel_names[i], name, len) == 0)
            return i;
    return -1;
}

const char *rules_type_name(rules_type t)
{
    switch (t) {
    case RT_BOOL:
        return "true/false";
    case RT_NUMBER:
        return "number";
    case RT_STRING:
        return "text";
    case RT_DURATION:
        return "duration";
    case RT_TIME:
        return "time";
    case RT_DYNAMIC:
        return "customer attribute";
    case RT_INCIDENTS:
        return "incident list";
    }
    return "?";
}

typedef struct named_field {
    const char *name;
    fact_field field;
    rules_type type;
} named_field;

static const named_field event_fields[] = {
    {"customer_id", FF_EVENT_CUSTOMER_ID, RT_STRING},   {"channel", FF_EVENT_CHANNEL, RT_STRING},
    {"touchpoint", FF_EVENT_TOUCHPOINT, RT_STRING},     {"location", FF_EVENT_LOCATION, RT_STRING},
    {"language", FF_EVENT_LANGUAGE, RT_STRING},         {"time", FF_EVENT_TIME, RT_TIME},
    {"time_of_day", FF_EVENT_TIME_OF_DAY, RT_DURATION},
};

static const named_field customer_fields[] = {
    {"known", FF_CUSTOMER_KNOWN, RT_BOOL},
    {"id", FF_CUSTOMER_ID, RT_STRING},
    {"name", FF_CUSTOMER_NAME, RT_STRING},
    {"tier", FF_CUSTOMER_TIER, RT_STRING},
    {"lifetime_value", FF_CUSTOMER_LIFETIME_VALUE, RT_NUMBER},
    {"predicted_ltv", FF_CUSTOMER_PREDICTED_LTV, RT_NUMBER},
    {"language", FF_CUSTOMER_LANGUAGE, RT_STRING},
};

/* Bare names inside count(incidents, ...) and any(incidents, ...). */
static const named_field filter_fields[] = {
    {"id", FF_INCIDENT_ID, RT_STRING},
    {"kind", FF_INCIDENT_KIND, RT_STRING},
    {"severity", FF_INCIDENT_SEVERITY, RT_NUMBER},
    {"flight", FF_INCIDENT_FLIGHT, RT_STRING},
    {"note", FF_INCIDENT_NOTE, RT_STRING},
    {"open", FF_INCIDENT_OPEN, RT_BOOL},
    {"resolved", FF_INCIDENT_RESOLVED, RT_BOOL},
    {"age", FF_INCIDENT_AGE, RT_DURATION},
    {"occurred_at", FF_INCIDENT_OCCURRED_AT, RT_TIME},
    {"recovered", FF_INCIDENT_RECOVERED, RT_BOOL},
    {"recovered_by", FF_INCIDENT_RECOVERED_BY, RT_STRING},
};

/* Bare names inside count(history, ...) and any(history, ...), besides
 * params.<name> and context.<key>. */
static const named_field history_fields[] = {
    {"action", FF_HISTORY_ACTION, RT_STRING},
    {"channel", FF_HISTORY_CHANNEL, RT_STRING},
    {"touchpoint", FF_HISTORY_TOUCHPOINT, RT_STRING},
    {"rule", FF_HISTORY_RULE, RT_STRING},
    {"incident", FF_HISTORY_INCIDENT, RT_STRING},
    {"age", FF_HISTORY_AGE, RT_DURATION},
    {"at", FF_HISTORY_AT, RT_TIME},
};

/* incident.* in placeholders: the hit's triggering incident. */
static const named_field incident_fields[] = {
    {"id", FF_INCIDENT_ID, RT_STRING},
    {"kind", FF_INCIDENT_KIND, RT_STRING},
    {"severity", FF_INCIDENT_SEVERITY, RT_NUMBER},
    {"flight", FF_INCIDENT_FLIGHT, RT_STRING},
    {"note", FF_INCIDENT_NOTE, RT_STRING},
    {"occurred_at", FF_INCIDENT_OCCURRED_AT, RT_STRING},
    {"recovered_by", FF_INCIDENT_RECOVERED_BY, RT_STRING},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const named_field *find_field(const named_field *t, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i].name) == len && memcmp(t[i].name, name, len) == 0)
            return &t[i];
    return NULL;
}

static bool prefixed(const char *name, size_t len, const char *prefix)
{
    size_t pl = strlen(prefix);
    return len >= pl && memcmp(name, prefix, pl) == 0;
}

/* Hint over every full name valid in scope, for a name that matched no
 * prefix at all ("custmer.tier"). */
static void hint_all(rules_hint *h, fact_scope scope)
{
    static const char *const names[] = {
        "event.customer_id",      "event.channel",     "event.touchpoint",
        "event.location",         "event.language",    "event.time",
        "event.time_of_day",      "customer.known",    "customer.id",
        "customer.name",          "customer.tier",     "customer.lifetime_value",
        "customer.predicted_ltv", "customer.language",
    };
    for (size_t i = 0; i < N_OF(names); i++)
        rules_hint_try(h, names[i]);
    if (scope == FS_FILTER)
        for (size_t i = 0; i < N_OF(filter_fields); i++)
            rules_hint_try(h, filter_fields[i].name);
    if (scope == FS_HISTORY)
        for (size_t i = 0; i < N_OF(history_fields); i++)
            rules_hint_try(h, history_fields[i].name);
    if (scope == FS_TEMPLATE) {
        static const char *const tnames[] = {
            "incident.id",   "incident.kind",        "incident.severity",     "incident.flight",
            "incident.note", "incident.occurred_at", "incident.recovered_by", "decision.language"};
        for (size_t i = 0; i < N_OF(tnames); i++)
            rules_hint_try(h, tnames[i]);
    }
    if (scope != FS_TEMPLATE) {
        rules_hint_try(h, "incidents");
        rules_hint_try(h, "history");
    }
}

static int resolve_customer(rules_compiler *c, const char *name, size_t len, fact_path *out,
                            char *msg, size_t msg_size)
{
    const ruleset *rs = c->rs;
    const named_field *nf = find_field(customer_fields, N_OF(customer_fields), name, len);
    if (nf) {
        out->field = nf->field;
        out->type = nf->type;
        return 0;
    }
    if (len == 0 || memchr(name, '.', len)) {
        snprintf(msg, msg_size, "unknown customer field '%.*s'", (int)len, name);
        return -EINVAL;
    }
    rules_hint h;
    char hint[96];
    if (rs->n_attributes) {
        /* the rule file declared its attributes: hold names to them */
        for (size_t i = 0; i < rs->n_attributes; i++) {
            if (strlen(rs->attributes[i].name) != len ||
                memcmp(rs->attributes[i].name, name, len) != 0)
                continue;
            switch (rs->attributes[i].type) {
            case RT_STRING:
                out->field = FF_CUSTOMER_ATTR_TEXT;
                break;
            case RT_NUMBER:
                out->field = FF_CUSTOMER_ATTR_NUMBER;
                break;
            case RT_BOOL:
                out->field = FF_CUSTOMER_ATTR_BOOL;
                break;
            case RT_TIME:
                out->field = FF_CUSTOMER_ATTR_TIME;
                break;
            default:
                out->field = FF_CUSTOMER_ATTR;
                break;
            }
            out->type = rs->attributes[i].type;
            out->key = rs->attributes[i].name;
            out->key_len = len;
            return 0;
        }
        rules_hint_init(&h, name, len);
        for (size_t i = 0; i < rs->n_attributes; i++)
            rules_hint_try(&h, rs->attributes[i].name);
        for (size_t i = 0; i < N_OF(customer_fields); i++)
            rules_hint_try(&h, customer_fields[i].name);
        snprintf(msg, msg_size,
                 "unknown customer field '%.*s'%s (extra CSV columns must be listed under "
                 "'attributes')",
                 (int)len, name, rules_hint_text(&h, hint, sizeof hint));
        return -EINVAL;
    }
    /* Any other name is an extra CSV column, but one a typo away from a
     * built-in field is far more likely the typo. */
    rules_hint_init(&h, name, len);
    for (size_t i = 0; i < N_OF(customer_fields); i++)
        rules_hint_try(&h, customer_fields[i].name);
    if (h.best) {
        snprintf(msg, msg_size,
                 "unknown customer field '%.*s'%s (to read an extra CSV column with a name "
                 "this close, list it under 'attributes')",
                 (int)len, name, rules_hint_text(&h, hint, sizeof hint));
        return -EINVAL;
    }
    out->field = FF_CUSTOMER_ATTR;
    out->type = RT_DYNAMIC;
    out->key = rules_strndup(c, name, len);
    out->key_len = len;
    return out->key ? 0 : -ENOMEM;
}

/* event.context.<key>: text, unless the rule file declares the key's type
 * under `context:`; with such a list, other keys are refused. */
static int resolve_context(rules_compiler *c, const char *key, size_t len, fact_field field,
                           fact_path *out, char *msg, size_t msg_size)
{
    const ruleset *rs = c->rs;
    out->field = field;
    out->type = RT_STRING;
    if (!rs->n_context) {
        out->key = rules_strndup(c, key, len);
        out->key_len = len;
        return out->key ? 0 : -ENOMEM;
    }
    for (size_t i = 0; i < rs->n_context; i++) {
        if (strlen(rs->context[i].name) == len && memcmp(rs->context[i].name, key, len) == 0) {
            out->key = rs->context[i].name;
            out->key_len = len;
            out->type = rs->context[i].type == RT_DYNAMIC ? RT_STRING : rs->context[i].type;
            return 0;
        }
    }
    rules_hint h;
    char hint[96];
    rules_hint_init(&h, key, len);
    for (size_t i = 0; i < rs->n_context; i++)
        rules_hint_try(&h, rs->context[i].name);
    snprintf(msg, msg_size,
             "unknown context key '%.*s'%s (the keys contact points send are listed under "
             "'context')",
             (int)len, key, rules_hint_text(&h, hint, sizeof hint));
    return -EINVAL;
}

/* A bare name of a history entry, or params.x / context.x. */
static bool history_name(const char *name, size_t len)
{
    return find_field(history_fields, N_OF(history_fields), name, len) ||
           (prefixed(name, len, "params.") && len > 7) ||
           (prefixed(name, len, "context.") && len > 8);
}

/* A bare name inside an aggregate over the history: a field of the entry,
 * params.<name> (the action's params), context.<key> (the contact's
 * context, typed as event.context). Incident fields are not among them, so
 * a name of an incident gets a pointed message. */
static int resolve_history(rules_compiler *c, const char *name, size_t len, fact_path *out,
                           char *msg, size_t msg_size)
{
    const named_field *nf = find_field(history_fields, N_OF(history_fields), name, len);
    if (nf) {
        out->field = nf->field;
        out->type = nf->type;
        return 0;
    }
    if (prefixed(name, len, "params.") && len > 7) {
        out->field = FF_HISTORY_PARAM;
        out->type = RT_STRING;
        out->key = rules_strndup(c, name + 7, len - 7);
        out->key_len = len - 7;
        return out->key ? 0 : -ENOMEM;
    }
    if (prefixed(name, len, "context.") && len > 8)
        return resolve_context(c, name + 8, len - 8, FF_HISTORY_CONTEXT, out, msg, msg_size);
    if ((len == 6 && memcmp(name, "params", 6) == 0) ||
        (len == 7 && memcmp(name, "context", 7) == 0)) {
        snprintf(msg, msg_size, "%.*s needs a key, e.g. %s", (int)len, name,
                 len == 6 ? "params.cabin" : "context.flight");
        return -EINVAL;
    }
    if (find_field(filter_fields, N_OF(filter_fields), name, len)) {
        snprintf(msg, msg_size,
                 "'%.*s' is a field of an incident, and this filter looks at the contact "
                 "history (fields: action, channel, touchpoint, rule, incident, age, at, "
                 "params.<name>, context.<key>)",
                 (int)len, name);
        return -EINVAL;
    }
    rules_hint h;
    char hint[96];
    rules_hint_init(&h, name, len);
    hint_all(&h, FS_HISTORY);
    rules_hint_try(&h, "params");
    rules_hint_try(&h, "context");
    snprintf(msg, msg_size,
             "unknown name '%.*s'%s (a history entry has action, channel, "
             "touchpoint, rule, incident, age, at, params.<name> and context.<key>)",
             (int)len, name, rules_hint_text(&h, hint, sizeof hint));
    return -EINVAL;
}

int fact_path_resolve(rules_compiler *c, const char *name, size_t len, fact_scope scope,
                      fact_path *out, char *msg, size_t msg_size)
{
    const named_field *nf;
    rules_hint h;
    char hint[96];
    memset(out, 0, sizeof *out);

    if (prefixed(name, len, "event.")) {
        const char *rest = name + 6;
        size_t rlen = len - 6;
        if (prefixed(rest, rlen, "context.") && rlen > 8)
            return resolve_context(c, rest + 8, rlen - 8, FF_EVENT_CONTEXT, out, msg, msg_size);
        if (rlen == 7 && memcmp(rest, "context", 7) == 0) {
            snprintf(msg, msg_size, "event.context needs a key, e.g. event.context.cabin");
            return -EINVAL;
        }
        nf = find_field(event_fields, N_OF(event_fields), rest, rlen);
        if (nf) {
            out->field = nf->field;
            out->type = nf->type;
            return 0;
        }
        rules_hint_init(&h, rest, rlen);
        for (size_t i = 0; i < N_OF(event_fields); i++)
            rules_hint_try(&h, event_fields[i].name);
        rules_hint_try(&h, "context");
        snprintf(msg, msg_size, "unknown event field '%.*s'%s", (int)rlen, rest,
                 rules_hint_text(&h, hint, sizeof hint));
        return -EINVAL;
    }
    if (prefixed(name, len, "customer."))
        return resolve_customer(c, name + 9, len - 9, out, msg, msg_size);

    if (prefixed(name, len, "incident.")) {
        if (scope != FS_TEMPLATE) {
            snprintf(msg, msg_size,
                     "'%.*s' is for messages; in a condition, look at incidents with "
                     "any(incidents, ...) or count(incidents, ...) and bare names such as "
                     "kind or severity",
                     (int)len, name);
            return -EINVAL;
        }
        nf = find_field(incident_fields, N_OF(incident_fields), name + 9, len - 9);
        if (nf) {
            out->field = nf->field;
            out->type = nf->type;
            return 0;
        }
        rules_hint_init(&h, name + 9, len - 9);
        for (size_t i = 0; i < N_OF(incident_fields); i++)
            rules_hint_try(&h, incident_fields[i].name);
        snprintf(msg, msg_size, "unknown incident field '%.*s'%s", (int)len - 9, name + 9,
                 rules_hint_text(&h, hint, sizeof hint));
        return -EINVAL;
    }
    if (len == 17 && memcmp(name, "decision.language", 17) == 0) {
        if (scope != FS_TEMPLATE) {
            snprintf(msg, msg_size,
                     "decision.language is chosen after the conditions, so only messages "
                     "can use it");
            return -EINVAL;
        }
        out->field = FF_DECISION_LANGUAGE;
        out->type = RT_STRING;
        return 0;
    }
    if (len == 9 && memcmp(name, "incidents", 9) == 0 && scope != FS_TEMPLATE) {
        out->field = FF_INCIDENTS;
        out->type = RT_INCIDENTS;
        return 0;
    }
    if (len == 7 && memcmp(name, "history", 7) == 0 && scope != FS_TEMPLATE) {
        snprintf(msg, msg_size,
                 "'history' is a list: use count(history, ...), any(history, ...) or another "
                 "aggregate");
        return -EINVAL;
    }
    if (scope == FS_HISTORY)
        return resolve_history(c, name, len, out, msg, msg_size);
    nf = find_field(filter_fields, N_OF(filter_fields), name, len);
    if (nf) {
        if (scope == FS_FILTER) {
            out->field = nf->field;
            out->type = nf->type;
            return 0;
        }
        if (scope == FS_CONDITION) {
            snprintf(msg, msg_size,
                     "'%.*s' is a field of an incident: use it inside count(incidents, ...) "
                     "or any(incidents, ...)",
                     (int)len, name);
        } else {
            snprintf(msg, msg_size, "unknown name '%.*s'; did you mean 'incident.%.*s'?", (int)len,
                     name, (int)len, name);
        }
        return -EINVAL;
    }
    if (scope != FS_TEMPLATE && history_name(name, len)) {
        snprintf(msg, msg_size,
                 "'%.*s' is a field of the contact history: use it inside count(history, ...) "
                 "or any(history, ...)",
                 (int)len, name);
        return -EINVAL;
    }
    rules_hint_init(&h, name, len);
    hint_all(&h, scope);
    snprintf(msg, msg_size, "unknown name '%.*s'%s", (int)len, name,
             rules_hint_text(&h, hint, sizeof hint));
    return -EINVAL;
}

fact_missing fact_path_missing(const fact_path *p, fact_scope scope)
{
    switch (p->field) {
    case FF_EVENT_CONTEXT:
    case FF_CUSTOMER_ATTR:
    case FF_CUSTOMER_ATTR_TEXT:
    case FF_CUSTOMER_ATTR_NUMBER:
    case FF_CUSTOMER_ATTR_BOOL:
    case FF_CUSTOMER_ATTR_TIME:
        return MISS_DATA;
    case FF_CUSTOMER_ID:
    case FF_CUSTOMER_NAME:
    case FF_CUSTOMER_TIER:
    case FF_CUSTOMER_LIFETIME_VALUE:
    case FF_CUSTOMER_PREDICTED_LTV:
    case FF_CUSTOMER_LANGUAGE:
        return MISS_UNKNOWN;
    case FF_INCIDENT_ID:
    case FF_INCIDENT_KIND:
    case FF_INCIDENT_SEVERITY:
    case FF_INCIDENT_FLIGHT:
    case FF_INCIDENT_NOTE:
    case FF_INCIDENT_OPEN:
    case FF_INCIDENT_RESOLVED:
    case FF_INCIDENT_AGE:
    case FF_INCIDENT_OCCURRED_AT:
    case FF_INCIDENT_RECOVERED:
    case FF_INCIDENT_RECOVERED_BY:
        return scope == FS_FILTER ? MISS_NEVER : MISS_DATA;
    case FF_HISTORY_PARAM:
    case FF_HISTORY_CONTEXT:
        return MISS_DATA;
    case FF_HISTORY_ACTION:
    case FF_HISTORY_CHANNEL:
    case FF_HISTORY_TOUCHPOINT:
    case FF_HISTORY_RULE:
    case FF_HISTORY_INCIDENT:
    case FF_HISTORY_AGE:
    case FF_HISTORY_AT:
        return scope == FS_HISTORY ? MISS_NEVER : MISS_DATA;
    default:
        return MISS_NEVER;
    }
}

/* ---- reading ---- */

static const Nba__V1__Attribute *attribute(const Nba__V1__Customer *c, const char *name)
{
    for (size_t i = 0; i < c->n_attributes; i++)
        if (c->attributes[i] && c->attributes[i]->name && strcmp(c->attributes[i]->name, name) == 0)
            return c->attributes[i];
    return NULL;
}

static bool give(const char *s, strv *out)
{
    out->s = s ? s : ""; /* hand-built records may leave strings NULL */
    out->len = strlen(out->s);
    out->fold = false;
    return true;
}

/* give() for a text of the event or the customer, which the decision's
 * memo keeps once measured. */
static bool give_field(const char *s, fact_field field, const fact_view *v, strv *out)
{
    give(s, out);
    if (v->memo) {
        v->memo->text[field] = *out;
        v->memo->read |= 1u << field;
    }
    return true;
}

/* Text of an attribute or context value typed as a number, true/false or
 * a time: read without allocating. */
static bool text_number(const char *t, double *out)
{
    if (!t || !*t)
        return false;
    char *end;
    double x = strtod(t, &end);
    if (*end != '\0' || !isfinite(x))
        return false;
    *out = x;
    return true;
}

static bool text_bool(const char *t, bool *out)
{
    static const char *const yes[] = {"true", "yes", "y", "1"};
    static const char *const no[] = {"false", "no", "n", "0"};
    if (!t)
        return false;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(t, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(t, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool text_time(const char *t, double *out)
{
    int64_t ms;
    if (!t || clock_parse_iso8601(t, strlen(t), &ms) != 0)
        return false;
    *out = (double)ms;
    return true;
}

static const char *context_value(const Nba__V1__ContactEvent *e, const char *key)
{
    for (size_t k = 0; k < e->n_context; k++)
        if (e->context[k] && e->context[k]->key && strcmp(e->context[k]->key, key) == 0)
            return e->context[k]->value ? e->context[k]->value : "";
    return NULL;
}

/* A history entry's param or context value, NULL when it lacks the key. */
static const char *entry_param(const Nba__V1__HistoryEntry *h, const char *key)
{
    for (size_t k = 0; k < h->n_params; k++)
        if (h->params[k] && h->params[k]->key && strcmp(h->params[k]->key, key) == 0)
            return h->params[k]->value ? h->params[k]->value : "";
    return NULL;
}

static const char *entry_context(const Nba__V1__HistoryEntry *h, const char *key)
{
    for (size_t k = 0; k < h->n_context; k++)
        if (h->context[k] && h->context[k]->key && strcmp(h->context[k]->key, key) == 0)
            return h->context[k]->value ? h->context[k]->value : "";
    return NULL;
}

/* The decision measures every context key and value on its first lookup,
 * so the lookups after compare lengths before bytes. */
static void measure_context(const Nba__V1__ContactEvent *e, fact_memo *m)
{
    m->n_context = e->n_context < FACT_MEMO_CONTEXT ? e->n_context : FACT_MEMO_CONTEXT;
    for (size_t k = 0; k < m->n_context; k++) {
        const Nba__V1__ContactEvent__ContextEntry *c = e->context[k];
        m->key_len[k] = c && c->key ? strlen(c->key) : SIZE_MAX; /* SIZE_MAX: no key */
        m->value_len[k] = c && c->value ? strlen(c->value) : 0;
    }
    m->context_measured = true;
}

/* context_value() as text: the value and its length, or false when the
 * event lacks the key. */
static bool context_text(const fact_path *p, const fact_view *v, strv *out)
{
    const Nba__V1__ContactEvent *e = v->f->event;
    fact_memo *m = v->memo;
    if (!m) {
        const char *t = context_value(e, p->key);
        return t && give(t, out);
    }
    if (!m->context_measured)
        measure_context(e, m);
    out->fold = false;
    for (size_t k = 0; k < m->n_context; k++) {
        if (m->key_len[k] == p->key_len && memcmp(e->context[k]->key, p->key, p->key_len) == 0) {
            out->s = e->context[k]->value ? e->context[k]->value : "";
            out->len = m->value_len[k];
            return true;
        }
    }
    for (size_t k = m->n_context; k < e->n_context; k++) {
        if (e->context[k] && e->context[k]->key && strcmp(e->context[k]->key, p->key) == 0) {
            out->s = e->context[k]->value ? e->context[k]->value : "";
            out->len = strlen(out->s);
            return true;
        }
    }
    return false;
}

/* The contact point's offset from UTC, from the context key utc_offset
 * ("+01:00", "-0530", "+02", "Z"), in ms; 0 when absent or unreadable. */
static int64_t utc_offset_ms(const Nba__V1__ContactEvent *e)
{
    const char *t = context_value(e, "utc_offset");
    if (!t || (*t != '+' && *t != '-'))
        return 0;
    int sign = *t == '-' ? -1 : 1;
    int digits[4], n = 0;
    for (const char *p = t + 1; *p && n < 4; p++) {
        if (*p >= '0' && *p <= '9')
            digits[n++] = *p - '0';
        else if (*p != ':')
            return 0;
    }
    if (n != 2 && n != 4)
        return 0;
    int hours = digits[0] * 10 + digits[1];
    int minutes = n == 4 ? digits[2] * 10 + digits[3] : 0;
    if (hours > 14 || minutes > 59)
        return 0;
    return sign * ((int64_t)hours * 3600000 + (int64_t)minutes * 60000);
}

bool fact_string_read(const fact_path *p, const fact_view *v, strv *out)
{
    const Nba__V1__ContactEvent *e = v->f->event;
    const Nba__V1__Customer *c = v->f->customer;
    const Nba__V1__Incident *i = v->incident;

    switch (p->field) {
    case FF_EVENT_CUSTOMER_ID:
        return give_field(e->customer_id, p->field, v, out);
    case FF_EVENT_CHANNEL: { /* the contract's names, "" when the contact point did not say */
        unsigned ch = rules_event_channel(e);
        out->s = ch ? channel_names[ch] : "";
        out->len = ch ? channel_name_len[ch] : 0;
        out->fold = false;
        return true;
    }
    case FF_EVENT_TOUCHPOINT:
        return give_field(e->touchpoint, p->field, v, out);
    case FF_EVENT_LOCATION:
        return give_field(e->location, p->field, v, out);
    case FF_EVENT_LANGUAGE:
        return give_field(e->language, p->field, v, out);
    case FF_EVENT_CONTEXT:
        return context_text(p, v, out);
    case FF_CUSTOMER_ID:
        return c && give_field(c->customer_id, p->field, v, out);
    case FF_CUSTOMER_NAME:
        return c && give_field(c->name, p->field, v, out);
    case FF_CUSTOMER_TIER:
        return c && give_field(c->tier, p->field, v, out);
    case FF_CUSTOMER_LANGUAGE:
        return c && give_field(c->language, p->field, v, out);
    case FF_CUSTOMER_ATTR:
    case FF_CUSTOMER_ATTR_TEXT:
    case FF_CUSTOMER_ATTR_NUMBER:
    case FF_CUSTOMER_ATTR_BOOL:
    case FF_CUSTOMER_ATTR_TIME: {
        const Nba__V1__Attribute *a = c ? attribute(c, p->key) : NULL;
        return a && give(a->text, out);
    }
    case FF_INCIDENT_ID:
        return i && give(i->incident_id, out);
    case FF_INCIDENT_KIND:
        return i && give(i->kind, out);
    case FF_INCIDENT_FLIGHT:
        return i && give(i->flight, out);
    case FF_INCIDENT_NOTE:
        return i && give(i->note, out);
    case FF_INCIDENT_RECOVERED_BY:
        return i && give(i->recovered_by, out);
    case FF_HISTORY_ACTION:
        return v->entry && give(v->entry->action, out);
    case FF_HISTORY_CHANNEL: {
        if (!v->entry)
            return false;
        unsigned ch = (unsigned)v->entry->channel < RULES_N_CHANNELS ? v->entry->channel : 0;
        out->s = ch ? channel_names[ch] : "";
        out->len = ch ? channel_name_len[ch] : 0;
        out->fold = false;
        return true;
    }
    case FF_HISTORY_TOUCHPOINT:
        return v->entry && give(v->entry->touchpoint, out);
    case FF_HISTORY_RULE:
        return v->entry && give(v->entry->rule_id, out);
    case FF_HISTORY_INCIDENT:
        return v->entry && give(v->entry->incident_id, out);
    case FF_HISTORY_PARAM: {
        const char *t = v->entry ? entry_param(v->entry, p->key) : NULL;
        return t && give(t, out);
    }
    case FF_HISTORY_CONTEXT: {
        const char *t = v->entry ? entry_context(v->entry, p->key) : NULL;
        return t && give(t, out);
    }
    case FF_DECISION_LANGUAGE:
        return v->decision_language && give(v->decision_language, out);
    default:
        return false;
    }
}

bool fact_number_read(const fact_path *p, const fact_view *v, double *out)
{
    const Nba__V1__Customer *c = v->f->customer;

    switch (p->field) {
    case FF_EVENT_TIME:
        *out = (double)v->f->now_ms;
        return true;
    case FF_EVENT_TIME_OF_DAY: {
        int64_t local = v->f->now_ms + utc_offset_ms(v->f->event);
        int64_t day = 86400000;
        *out = (double)(((local % day) + day) % day);
        return true;
    }
    case FF_EVENT_CONTEXT: {
        strv t;
        if (!context_text(p, v, &t))
            return false;
        return p->type == RT_TIME ? text_time(t.s, out) : text_number(t.s, out);
    }
    case FF_CUSTOMER_ATTR:
    case FF_CUSTOMER_ATTR_NUMBER: {
        const Nba__V1__Attribute *a = c ? attribute(c, p->key) : NULL;
        if (!a || !a->has_number)
            return false;
        *out = a->number;
        return true;
    }
    case FF_CUSTOMER_ATTR_TIME: {
        const Nba__V1__Attribute *a = c ? attribute(c, p->key) : NULL;
        return a && text_time(a->text, out);
    }
    case FF_HISTORY_CONTEXT: {
        const char *t = v->entry ? entry_context(v->entry, p->key) : NULL;
        return p->type == RT_TIME ? text_time(t, out) : text_number(t, out);
    }
    default:
        return false;
    }
}

bool fact_bool_read(const fact_path *p, const fact_view *v, bool *out)
{
    switch (p->field) {
    case FF_CUSTOMER_ATTR_BOOL: {
        const Nba__V1__Attribute *a = v->f->customer ? attribute(v->f->customer, p->key) : NULL;
        return a && text_bool(a->text, out);
    }
    case FF_EVENT_CONTEXT: {
        strv t;
        return context_text(p, v, &t) && text_bool(t.s, out);
    }
    case FF_HISTORY_CONTEXT:
        return v->entry && text_bool(entry_context(v->entry, p->key), out);
    default:
        return false;
    }
}

/* Integers print as integers (20000, not 20000.000000 or 2e+04); others
 * with up to 15 significant digits and no trailing zeros (1.5). */
size_t rules_format_number(double x, char *buf, size_t size)
{
    if (x == x && fabs(x) < 1e15 && x == (double)(int64_t)x) {
        char tmp[24];
        size_t n = 0;
        int64_t k = (int64_t)x;
        uint64_t u = k < 0 ? (uint64_t)0 - (uint64_t)k : (uint64_t)k;
        do {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        size_t len = 0;
        if (k < 0)
            buf[len++] = '-';
        while (n)
            buf[len++] = tmp[--n];
        buf[len] = '\0';
        return len;
    }
    int n = snprintf(buf, size, "%.15g", x);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* YYYY-MM-DD of a unix time in ms, UTC; days to civil date after Howard
 * Hinnant's algorithm, so no time zone or locale is consulted. */
static size_t format_date(int64_t ms, char *buf, size_t size)
{
    int64_t days = ms / 86400000 - (ms % 86400000 < 0);
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    if (y < 0 || y > 9999 || size < 11) {
        int n = snprintf(buf, size, "%" PRId64 "-%02" PRId64 "-%02" PRId64, y, m, d);
        return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
    }
    /* by hand: snprintf would be most of a decision's rendering time */
    char *p = buf;
    *p++ = (char)('0' + y / 1000);
    *p++ = (char)('0' + y / 100 % 10);
    *p++ = (char)('0' + y / 10 % 10);
    *p++ = (char)('0' + y % 10);
    *p++ = '-';
    *p++ = (char)('0' + m / 10);
    *p++ = (char)('0' + m % 10);
    *p++ = '-';
    *p++ = (char)('0' + d / 10);
    *p++ = (char)('0' + d % 10);
    *p = '\0';
    return 10;
}

size_t rules_format_duration(double ms, char *buf, size_t size)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"d", 86400e3}, {"h", 3600e3}, {"m", 60e3}, {"s", 1e3}};
    if (size == 0)
        return 0;
    size_t k = 0;
    buf[0] = '\0';
    if (ms < 0) {
        if (size > 1)
            buf[k++] = '-';
        ms = -ms;
    }
    if (ms < 1000) {
        char num[32];
        rules_format_number(ms, num, sizeof num);
        int n = snprintf(buf + k, size - k, "%sms", num);
        return n < 0 ? k : k + (size_t)n < size ? k + (size_t)n : size - 1;
    }
    double rest = floor(ms / 1000) * 1000;
    for (size_t u = 0; u < 4; u++) {
        double q = floor(rest / units[u].ms);
        if (q < 1)
            continue;
        rest -= q * units[u].ms;
        int n = snprintf(buf + k, size - k, "%s%.0f%s", k && buf[k - 1] != '-' ? " " : "", q,
                         units[u].unit);
        if (n < 0 || k + (size_t)n >= size)
            return size - 1;
        k += (size_t)n;
    }
    return k;
}

size_t rules_format_time(double ms, char *buf, size_t size)
{
    int64_t t = (int64_t)ms;
    char date[32];
    size_t n = format_date(t, date, sizeof date);
    int64_t in_day = ((t % 86400000) + 86400000) % 86400000;
    int w = snprintf(buf, size, "%.*sT%02d:%02d:%02dZ", (int)n, date, (int)(in_day / 3600000),
                     (int)(in_day / 60000 % 60), (int)(in_day / 1000 % 60));
    return w < 0 ? 0 : (size_t)w < size ? (size_t)w : size - 1;
}

bool fact_text(const fact_path *p, const fact_view *v, char *buf, size_t size, strv *out)
{
    double x;
    bool b;
    out->fold = false;
    switch (p->field) {
    case FF_CUSTOMER_KNOWN:
        fact_bool(p, v, &b);
        return give(b ? "true" : "false", out);
    case FF_EVENT_TIME:
        fact_number(p, v, &x);
        out->len = rules_format_time(x, buf, size);
        out->s = buf;
        return true;
    case FF_EVENT_TIME_OF_DAY:
        fact_number(p, v, &x);
        out->len = rules_format_duration(x, buf, size);
        out->s = buf;
        return true;
    case FF_INCIDENT_OCCURRED_AT:
        if (!v->incident)
            return false;
        out->len = format_date(v->incident->occurred_at_ms, buf, size);
        out->s = buf;
        return true;
    case FF_CUSTOMER_LIFETIME_VALUE:
    case FF_CUSTOMER_PREDICTED_LTV:
    case FF_INCIDENT_SEVERITY:
        if (!fact_number(p, v, &x))
            return false;
        out->len = rules_format_number(x, buf, size);
        out->s = buf;
        return true;
    default:
        return fact_string(p, v, out);
    }
}
