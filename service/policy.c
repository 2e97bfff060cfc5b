/* policy.c - the contact policy: the main rule file's `policy:` section,
 * the checks a decision makes against the contact history, the effects of
 * a decision and the idempotency key of an event. See include/policy.h and
 * rules/README.md ("Contact policy").
 *
 *   policy:
 *     record:                          # kept in the contact history
 *       upgrade: { recovers: true, once_per: incident }
 *       goodwill_miles: { once_per: 30d }
 *     caps:                            # at most N recorded actions in a window
 *       - { action: goodwill_miles, max: 2, per: 365d }
 *       - { channel: ivr, max: 3, per: 1d }
 *     idempotency:
 *       key: [channel, touchpoint, context.flight]
 *       window: 1d
 *
 * Everything is compiled once: each rule action points to its record, each
 * cap holds its types and channels, each key part is a resolved path. A
 * decision then walks its history once per cap (policy_begin) and once per
 * recorded action it considers (policy_admit), comparing strings the
 * history holds with those of the ruleset, on the stack, allocating
 * nothing.
 */
#include "rules_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

static size_t seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static size_t map_len(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* Whether some rule gives actions of this type. */
static bool type_given(const ruleset *rs, const char *type)
{
    for (size_t i = 0; i < rs->n_rules; i++)
        for (size_t k = 0; k < rs->rules[i].n_actions; k++)
            if (strcmp(rs->rules[i].actions[k].type, type) == 0)
                return true;
    return false;
}

/* "; did you mean 'x'?" over the action types the rules give. */
static const char *type_hint(const ruleset *rs, const char *type, char *buf, size_t size)
{
    rules_hint h;
    rules_hint_init(&h, type, strlen(type));
    for (size_t i = 0; i < rs->n_rules; i++)
        for (size_t k = 0; k < rs->rules[i].n_actions; k++)
            rules_hint_try(&h, rs->rules[i].actions[k].type);
    return rules_hint_text(&h, buf, size);
}

const policy_record *policy_find(const ruleset *rs, const char *type, size_t len)
{
    for (size_t i = 0; i < rs->n_records; i++)
        if (rs->records[i].type_len == len && memcmp(rs->records[i].type, type, len) == 0)
            return &rs->records[i];
    return NULL;
}

/* ---- compiling ---- */

enum { R_RECOVERS, R_ONCE_PER, R_DESCRIPTION, N_RECORD_KEYS };
static const char *const record_keys[N_RECORD_KEYS] = {"recovers", "once_per", "description"};

static int compile_record_options(rules_compiler *c, const yaml_node_t *n, policy_record *r)
{
    /* `upgrade:` with nothing after it: recorded, nothing more */
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0)
        return 0;
    yaml_node_t *v[N_RECORD_KEYS];
    int failed = 0;
    if (rules_failed(&failed,
                     rules_mapping(c, n, "a recorded action", record_keys, N_RECORD_KEYS, 0, v)))
        return failed;
    const char *s;
    size_t len;
    if (v[R_RECOVERS]) {
        int rc = rules_scalar(c, v[R_RECOVERS], "true or false", &s, &len);
        if (!rc && strcmp(s, "true") == 0)
            r->recovers = true;
        else if (!rc && strcmp(s, "false") != 0)
            rc = rules_error_node(c->src, v[R_RECOVERS], "'recovers' must be true or false");
        if (rules_failed(&failed, rc))
            return failed;
    }
    if (v[R_ONCE_PER]) {
        int rc = rules_scalar(c, v[R_ONCE_PER], "'incident' or a duration", &s, &len);
        if (!rc && len == 8 && memcmp(s, "incident", 8) == 0) {
            r->once_per_incident = true;
        } else if (!rc && len && !(s[0] >= '0' && s[0] <= '9')) {
            rules_hint h;
            char hint[96];
            rules_hint_init(&h, s, len);
            rules_hint_try(&h, "incident");
            rc = rules_error_node(c->src, v[R_ONCE_PER],
                                  "'once_per' must be 'incident' or a duration such as 30d%s",
                                  rules_hint_text(&h, hint, sizeof hint));
        } else if (!rc) {
            rc = expr_compile_duration(c, v[R_ONCE_PER], "'once_per'", &r->once_within_ms);
        }
        if (rules_failed(&failed, rc))
            return failed;
    }
    if (v[R_DESCRIPTION] &&
        rules_failed(&failed, rules_scalar(c, v[R_DESCRIPTION], "a description", &s, &len)))
        return failed;
    return failed;
}

/* `record:` as a mapping (type: options) or a list of types. */
static int compile_records(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    bool list = n->type == YAML_SEQUENCE_NODE;
    if (!list && n->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, n,
                                "'record' must map action types to what the policy does with "
                                "them, e.g. { upgrade: { recovers: true, once_per: incident } }, "
                                "or list them, e.g. [upgrade, goodwill_miles]");
    size_t count = list ? seq_len(n) : map_len(n);
    rs->records = rules_alloc(c, (count ? count : 1) * sizeof *rs->records);
    if (!rs->records)
        return -ENOMEM;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *k = list ? rules_node(c, n->data.sequence.items.start[i])
                                    : rules_node(c, n->data.mapping.pairs.start[i].key);
        policy_record *r = &rs->records[rs->n_records];
        memset(r, 0, sizeof *r);
        int rc = rules_name_value(c, k, "an action type", &r->type);
        r->type_len = r->type ? strlen(r->type) : 0;
        if (!rc && policy_find(rs, r->type, r->type_len))
            rc = rules_error_node(c->src, k, "'%s' is listed twice in 'record'", r->type);
        if (!rc && !list)
            rc = compile_record_options(c, rules_node(c, n->data.mapping.pairs.start[i].value), r);
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        r->node = k;
        rs->n_records++;
        char hint[96];
        if (!type_given(rs, r->type))
            rules_warn_node(c->src, k, "policy records action type '%s', but no rule gives it%s",
                            r->type, type_hint(rs, r->type, hint, sizeof hint));
    }
    return failed;
}

/* A name or a list of names, each checked by `one`. */
static int name_list(rules_compiler *c, const yaml_node_t *n, const char *what,
                     int (*one)(rules_compiler *, const yaml_node_t *, policy_cap *),
                     policy_cap *cap)
{
    if (n->type == YAML_SCALAR_NODE)
        return one(c, n, cap);
    if (n->type != YAML_SEQUENCE_NODE || seq_len(n) == 0)
        return rules_error_node(c->src, n, "'%s' must be a name, or a list of them", what);
    int failed = 0;
    for (size_t i = 0; i < seq_len(n); i++)
        if (rules_failed(&failed, one(c, rules_node(c, n->data.sequence.items.start[i]), cap)))
            return failed;
    return failed;
}

static int cap_type(rules_compiler *c, const yaml_node_t *n, policy_cap *cap)
{
    const char *type;
    int rc = rules_name_value(c, n, "an action type", &type);
    if (rc)
        return rc;
    if (!policy_find(c->rs, type, strlen(type))) {
        rules_hint h;
        char hint[96];
        rules_hint_init(&h, type, strlen(type));
        for (size_t i = 0; i < c->rs->n_records; i++)
            rules_hint_try(&h, c->rs->records[i].type);
        return rules_error_node(c->src, n,
                                "a cap counts recorded actions, and '%s' is not under "
                                "'record'%s",
                                type, rules_hint_text(&h, hint, sizeof hint));
    }
    cap->types[cap->n_types++] = type;
    return 0;
}

static int cap_channel(rules_compiler *c, const yaml_node_t *n, policy_cap *cap)
{
    const char *s;
    size_t len;
    int rc = rules_scalar(c, n, "a channel name", &s, &len);
    if (rc)
        return rc;
    int ch = rules_channel_lookup(s, len, false);
    if (ch < 0) {
        rules_hint h;
        char hint[96];
        rules_hint_init(&h, s, len);
        for (unsigned i = 1; i < RULES_N_CHANNELS; i++)
            rules_hint_try(&h, rules_channel_name(i));
        return rules_error_node(c->src, n,
                                "unknown channel '%.*s'%s (channels: desk, kiosk, ivr, web, "
                                "mobile, call_center)",
                                (int)len, s, rules_hint_text(&h, hint, sizeof hint));
    }
    cap->channels |= 1u << ch;
    return 0;
}

enum { C_ACTION, C_CHANNEL, C_MAX, C_PER, C_DESCRIPTION, N_CAP_KEYS };
static const char *const cap_keys[N_CAP_KEYS] = {"action", "channel", "max", "per", "description"};

static int compile_cap(rules_compiler *c, const yaml_node_t *n, policy_cap *cap)
{
    yaml_node_t *v[N_CAP_KEYS];
    int failed = 0;
    memset(cap, 0, sizeof *cap);
    cap->node = n;
    if (rules_failed(&failed, rules_mapping(c, n, "a cap", cap_keys, N_CAP_KEYS,
                                            1u << C_MAX | 1u << C_PER, v)))
        return failed;
    if (n->type != YAML_MAPPING_NODE)
        return failed;
    if (v[C_ACTION]) {
        size_t count = v[C_ACTION]->type == YAML_SEQUENCE_NODE ? seq_len(v[C_ACTION]) : 1;
        cap->types = rules_alloc(c, (count ? count : 1) * sizeof *cap->types);
        if (!cap->types)
            return -ENOMEM;
        if (rules_failed(&failed, name_list(c, v[C_ACTION], "action", cap_type, cap)))
            return failed;
    }
    if (v[C_CHANNEL] &&
        rules_failed(&failed, name_list(c, v[C_CHANNEL], "channel", cap_channel, cap)))
        return failed;
    if (v[C_MAX]) {
        long max = 0;
        int rc = rules_integer(c, v[C_MAX], "'max'", &max);
        if (!rc && max < 1)
            rc = rules_error_node(c->src, v[C_MAX],
                                  "'max' must be at least 1 (to never give an action, leave it "
                                  "out of the rules)");
        if (rules_failed(&failed, rc))
            return failed;
        cap->max = (size_t)max;
    }
    if (v[C_PER]) {
        const char *s;
        size_t len;
        int rc = rules_scalar(c, v[C_PER], "a duration", &s, &len);
        if (!rc)
            rc = expr_compile_duration(c, v[C_PER], "'per'", &cap->per_ms);
        if (rules_failed(&failed, rc))
            return failed;
    }
    if (v[C_DESCRIPTION]) {
        const char *s;
        size_t len;
        if (rules_failed(&failed, rules_scalar(c, v[C_DESCRIPTION], "a description", &s, &len)))
            return failed;
    }
    return failed;
}

static int compile_caps(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    if (n->type != YAML_SEQUENCE_NODE)
        return rules_error_node(c->src, n,
                                "'caps' must be a list of caps, e.g. "
                                "[{ action: goodwill_miles, max: 2, per: 365d }]");
    size_t count = seq_len(n);
    if (count > RULES_MAX_CAPS)
        return rules_error_node(c->src, n, "too many caps (at most %d)", RULES_MAX_CAPS);
    rs->caps = rules_alloc(c, (count ? count : 1) * sizeof *rs->caps);
    if (!rs->caps)
        return -ENOMEM;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        int rc =
            compile_cap(c, rules_node(c, n->data.sequence.items.start[i]), &rs->caps[rs->n_caps]);
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        rs->n_caps++;
    }
    return failed;
}

/* One part of the idempotency key: an event field, written as in
 * conditions with or without `event.`. */
static int key_part(rules_compiler *c, const yaml_node_t *n, fact_path *out)
{
    const char *s;
    size_t len;
    int rc = rules_scalar(c, n, "an event field", &s, &len);
    if (rc)
        return rc;
    char name[256];
    int w = len >= 6 && memcmp(s, "event.", 6) == 0
                ? snprintf(name, sizeof name, "%.*s", (int)len, s)
                : snprintf(name, sizeof name, "event.%.*s", (int)len, s);
    if (w < 0 || (size_t)w >= sizeof name)
        return rules_error_node(c->src, n, "'%.*s' is not an event field", (int)len, s);
    char msg[400];
    rc = fact_path_resolve(c, name, (size_t)w, FS_CONDITION, out, msg, sizeof msg);
    if (rc == -EINVAL)
        return rules_error_node(c->src, n, "%s", msg);
    if (rc)
        return rc;
    switch (out->field) {
    case FF_EVENT_CHANNEL:
    case FF_EVENT_TOUCHPOINT:
    case FF_EVENT_LOCATION:
    case FF_EVENT_LANGUAGE:
    case FF_EVENT_CONTEXT:
        return 0;
    case FF_EVENT_CUSTOMER_ID:
        return rules_error_node(c->src, n,
                                "the customer id is always the first part of the key; leave it "
                                "out of the list");
    case FF_EVENT_TIME:
    case FF_EVENT_TIME_OF_DAY:
        return rules_error_node(c->src, n,
                                "a retried event is sent again later, so its time differs: the "
                                "key holds what a retry repeats (channel, touchpoint, location, "
                                "language, context.<key>); how long a retry counts is 'window'");
    default:
        return rules_error_node(c->src, n,
                                "the key is made of event fields: channel, touchpoint, "
                                "location, language, context.<key>");
    }
}

enum { I_KEY, I_WINDOW, N_IDEM_KEYS };
static const char *const idem_keys[N_IDEM_KEYS] = {"key", "window"};

static int compile_idempotency(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    yaml_node_t *v[N_IDEM_KEYS];
    int failed = 0;
    if (rules_failed(&failed,
                     rules_mapping(c, n, "'idempotency'", idem_keys, N_IDEM_KEYS, 1u << I_KEY, v)))
        return failed;
    if (v[I_WINDOW]) {
        const char *s;
        size_t len;
        int rc = rules_scalar(c, v[I_WINDOW], "a duration", &s, &len);
        if (!rc)
            rc = expr_compile_duration(c, v[I_WINDOW], "'window'", &rs->key_window_ms);
        if (rules_failed(&failed, rc))
            return failed;
    }
    const yaml_node_t *key = v[I_KEY];
    if (!key)
        return failed;
    if (key->type != YAML_SEQUENCE_NODE || seq_len(key) == 0)
        return rules_error_node(c->src, key,
                                "'key' must list the event fields that identify a retried "
                                "event, e.g. [channel, touchpoint, context.flight]");
    size_t count = seq_len(key);
    if (count > RULES_MAX_KEY_PARTS)
        return rules_error_node(c->src, key, "too many key parts (at most %d)",
                                RULES_MAX_KEY_PARTS);
    fact_path *parts = rules_alloc(c, count * sizeof *parts);
    if (!parts)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = rules_node(c, key->data.sequence.items.start[i]);
        int rc = key_part(c, item, &parts[k]);
        for (size_t j = 0; !rc && j < k; j++)
            if (parts[j].field == parts[k].field &&
                (parts[j].key == parts[k].key ||
                 (parts[j].key && parts[k].key && strcmp(parts[j].key, parts[k].key) == 0)))
                rc = rules_error_node(c->src, item, "this part is already in the key");
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        k++;
    }
    if (!failed) {
        rs->key_parts = parts;
        rs->n_key_parts = k;
    }
    return failed;
}

enum { P_RECORD, P_CAPS, P_IDEMPOTENCY, P_KEEP_HISTORY, P_DESCRIPTION, N_POLICY_KEYS };
static const char *const policy_keys[N_POLICY_KEYS] = {"record", "caps", "idempotency",
                                                       "keep_history", "description"};

/* `keep_history: 400d`: how long history entries are kept. Shorter than a
 * window the policy counts in, it would make that window shorter in fact:
 * refused, naming the window. */
static int compile_keep_history(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    const char *s;
    size_t len;
    int rc = rules_scalar(c, n, "a duration", &s, &len);
    if (!rc)
        rc = expr_compile_duration(c, n, "'keep_history'", &rs->keep_history_ms);
    if (rc)
        return rc;
    if (rs->keep_history_ms <= 0)
        return rules_error_node(c->src, n, "'keep_history' must be a positive duration, e.g. 400d");
    for (size_t k = 0; k < rs->n_caps; k++)
        if (rs->caps[k].per_ms > rs->keep_history_ms)
            return rules_error_node(c->src, n,
                                    "'keep_history' is shorter than the window of a cap (line "
                                    "%zu): the cap would count only what is kept",
                                    rs->caps[k].node ? rs->caps[k].node->start_mark.line + 1 : 0);
    for (size_t i = 0; i < rs->n_records; i++)
        if (rs->records[i].once_within_ms > rs->keep_history_ms)
            return rules_error_node(c->src, n,
                                    "'keep_history' is shorter than the 'once_per' window of %s: "
                                    "it would hold back only what is kept",
                                    rs->records[i].type);
    return 0;
}

int policy_compile(rules_compiler *c, const yaml_node_t *policy)
{
    ruleset *rs = c->rs;
    yaml_node_t *v[N_POLICY_KEYS];
    int failed = 0;
    if (rules_failed(&failed,
                     rules_mapping(c, policy, "'policy'", policy_keys, N_POLICY_KEYS, 0, v)))
        return failed;
    if (v[P_RECORD] && rules_failed(&failed, compile_records(c, v[P_RECORD])))
        return failed;
    if (v[P_CAPS] && rules_failed(&failed, compile_caps(c, v[P_CAPS])))
        return failed;
    if (v[P_IDEMPOTENCY] && rules_failed(&failed, compile_idempotency(c, v[P_IDEMPOTENCY])))
        return failed;
    if (v[P_KEEP_HISTORY] && rules_failed(&failed, compile_keep_history(c, v[P_KEEP_HISTORY])))
        return failed;
    if (v[P_DESCRIPTION]) {
        const char *s;
        size_t len;
        if (rules_failed(&failed, rules_scalar(c, v[P_DESCRIPTION], "a description", &s, &len)))
            return failed;
    }
    /* which caps count each record, so a decision compares no type */
    for (size_t k = 0; k < rs->n_caps; k++) {
        const policy_cap *cap = &rs->caps[k];
        if (!cap->n_types)
            rs->caps_any_type |= (uint32_t)1 << k;
        for (size_t i = 0; i < rs->n_records; i++) {
            bool counts = !cap->n_types;
            for (size_t t = 0; t < cap->n_types && !counts; t++)
                counts = strcmp(cap->types[t], rs->records[i].type) == 0;
            if (counts)
                rs->records[i].caps |= (uint32_t)1 << k;
        }
    }
    /* every action of a recorded type points to its record */
    for (size_t i = 0; i < rs->n_rules; i++)
        for (size_t k = 0; k < rs->rules[i].n_actions; k++) {
            rule_action *a = &rs->rules[i].actions[k];
            a->record = policy_find(rs, a->type, strlen(a->type));
        }
    return failed;
}

/* ---- deciding ---- */

static bool str_is(const char *s, const char *t)
{
    return s && strcmp(s, t) == 0;
}
/* The caps of `mask` that count an action on this channel. */
static uint32_t caps_on(const ruleset *rs, uint32_t mask, unsigned channel)
{
    uint32_t on = 0;
    for (size_t k = 0; k < rs->n_caps; k++)
        if ((mask >> k & 1u) &&
            (!rs->caps[k].channels ||
             (channel < RULES_N_CHANNELS && (rs->caps[k].channels & (1u << channel)))))
            on |= (uint32_t)1 << k;
    return on;
}

void policy_begin(const ruleset *rs, const facts *f, policy_state *s)
{
    s->n_taken = 0;
    if (!rs->n_caps)
        return;
    for (size_t k = 0; k < rs->n_caps; k++)
        s->used[k] = 0;
    size_t n = f->history ? f->n_history : 0;
    for (size_t i = 0; i < n; i++) {
        const Nba__V1__HistoryEntry *h = f->history[i];
        if (!h)
            continue;
        /* a type the policy no longer records still counts for the caps
         * that name no type */
        const policy_record *r = h->action ? policy_find(rs, h->action, strlen(h->action)) : NULL;
        uint32_t mask = caps_on(rs, r ? r->caps : rs->caps_any_type, (unsigned)h->channel);
        double age = (double)(f->now_ms - h->at_ms);
        for (size_t k = 0; k < rs->n_caps; k++)
            if ((mask >> k & 1u) && age < rs->caps[k].per_ms)
                s->used[k]++;
    }
}

policy_verdict policy_admit(const ruleset *rs, const facts *f, policy_state *s, const rule_hit *h,
                            const rule_action *a, policy_why *why)
{
    const policy_record *r = a->record;
    if (!r)
        return POLICY_GIVE;
    if (why)
        *why = (policy_why){.record = r};
    const Nba__V1__Incident *inc = h->incident;
    const char *inc_id = inc && inc->incident_id && *inc->incident_id ? inc->incident_id : NULL;
    size_t n = f->history ? f->n_history : 0;
    /* the most recent first: that is the one explain names */
    if (r->once_per_incident && inc_id && (s->n_taken || n)) {
        for (size_t i = 0; i < s->n_taken; i++)
            if (s->taken[i].record == r && s->taken[i].incident &&
                str_is(s->taken[i].incident->incident_id, inc_id))
                return POLICY_ONCE;
        for (size_t i = n; i-- > 0;) {
            const Nba__V1__HistoryEntry *e = f->history[i];
            if (e && str_is(e->action, r->type) && str_is(e->incident_id, inc_id)) {
                if (why)
                    why->entry = e;
                return POLICY_ONCE;
            }
        }
    }
    if (r->once_within_ms > 0 && (s->n_taken || n)) {
        for (size_t i = 0; i < s->n_taken; i++)
            if (s->taken[i].record == r)
                return POLICY_ONCE;
        for (size_t i = n; i-- > 0;) {
            const Nba__V1__HistoryEntry *e = f->history[i];
            if (e && str_is(e->action, r->type) &&
                (double)(f->now_ms - e->at_ms) < r->once_within_ms) {
                if (why)
                    why->entry = e;
                return POLICY_ONCE;
            }
        }
    }
    uint32_t mask = r->caps ? caps_on(rs, r->caps, rules_event_channel(f->event)) : 0;
    for (size_t k = 0; k < rs->n_caps; k++) {
        if ((mask >> k & 1u) && s->used[k] >= rs->caps[k].max) {
            if (why) {
                why->cap = &rs->caps[k];
                why->cap_index = k;
            }
            return POLICY_CAP;
        }
    }
    for (size_t k = 0; k < rs->n_caps; k++)
        if (mask >> k & 1u)
            s->used[k]++;
    if (s->n_taken < RULES_MAX_TAKEN)
        s->taken[s->n_taken++] = (struct policy_taken){.record = r, .incident = inc};
    return POLICY_GIVE;
}

/* ---- for the daemon (policy.h) ---- */

int ruleset_effects(const ruleset *rs, const facts *f, const rule_hit *hits, size_t n_hits,
                    const Nba__V1__Decision *d, ruleset_effect *out, size_t max, size_t *n)
{
    given_walk w;
    given_begin(&w, rs, f, hits, n_hits);
    const rule_hit *hit;
    const rule_action *a;
    size_t k = 0, count = 0;
    *n = 0;
    while (given_next(&w, &hit, &a)) {
        if (k >= d->n_actions)
            return -EINVAL;
        const Nba__V1__Action *act = d->actions[k];
        if (!act || !str_is(act->type, a->type) || !str_is(act->rule_id, hit->rule->id))
            return -EINVAL;
        if (a->record) {
            if (count < max)
                out[count] = (ruleset_effect){
                    .action = k,
                    .type = act->type,
                    .rule_id = act->rule_id,
                    .incident = hit->incident,
                    .recovers = a->record->recovers && hit->incident != NULL,
                    .follow_up = a->follow_up,
                    .letter = a->letter ? a->letter->name : NULL,
                };
            count++;
        }
        k++;
    }
    if (k != d->n_actions)
        return -EINVAL;
    *n = count;
    return count > max ? -ENOSPC : 0;
}

bool ruleset_hits_record(const ruleset *rs, const rule_hit *hits, size_t n_hits)
{
    if (!rs->n_records)
        return false;
    for (size_t i = 0; i < n_hits; i++)
        for (size_t k = 0; k < hits[i].rule->n_actions; k++)
            if (hits[i].rule->actions[k].record)
                return true;
    return false;
}

bool ruleset_records(const ruleset *rs, const char *action_type)
{
    return action_type && policy_find(rs, action_type, strlen(action_type)) != NULL;
}

bool ruleset_recovers(const ruleset *rs, const char *action_type)
{
    const policy_record *r = action_type ? policy_find(rs, action_type, strlen(action_type)) : NULL;
    return r && r->recovers;
}

int64_t ruleset_idempotency_window_ms(const ruleset *rs)
{
    return (int64_t)rs->key_window_ms;
}

int64_t ruleset_history_kept_ms(const ruleset *rs)
{
    return (int64_t)rs->keep_history_ms;
}

/* A part of the key: "len:bytes", or "-" when missing. */
static void key_put(tmpl_out *o, bool first, const strv *v)
{
    if (!first)
        tmpl_escape_into("|", 1, TMPL_PLAIN, o);
    if (!v) {
        tmpl_escape_into("-", 1, TMPL_PLAIN, o);
        return;
    }
    char num[24];
    size_t k = sizeof num;
    num[--k] = ':';
    size_t len = v->len;
    do {
        num[--k] = (char)('0' + len % 10);
        len /= 10;
    } while (len);
    tmpl_escape_into(num + k, sizeof num - k, TMPL_PLAIN, o);
    tmpl_escape_into(v->s, v->len, TMPL_PLAIN, o);
}

size_t ruleset_idempotency_key(const ruleset *rs, const facts *f, char *buf, size_t size)
{
    if (size)
        buf[0] = '\0';
    if (!rs->n_key_parts)
        return 0;
    tmpl_out o = {.out = size ? buf : NULL, .size = size ? size - 1 : 0};
    const char *id = f->event->customer_id ? f->event->customer_id : "";
    strv v = {id, strlen(id), false};
    key_put(&o, true, &v);
    fact_view view = {.f = f};
    for (size_t i = 0; i < rs->n_key_parts; i++) {
        bool present = fact_string_read(&rs->key_parts[i], &view, &v);
        key_put(&o, false, present ? &v : NULL);
    }
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len;
}
