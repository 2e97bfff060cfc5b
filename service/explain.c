/* explain.c - one decision, and why: ruleset_explain().
 *
 * Runs the decision's own steps (ruleset_match, ruleset_arbitrate,
 * ruleset_render) so the decision explained is exactly the one a contact
 * event gets, then walks every rule in file order: each top-level condition
 * evaluated on its own, with the value it looked at, and the rule's fate in
 * arbitration, including the actions the contact policy held back and why.
 * None of this is on a decision's path, so it may take its time and
 * allocate; everything goes into the caller's arena.
 */
#include "rules_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char *copy(arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

static char *printf_arena(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *printf_arena(arena *a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return copy(a, buf);
}

/* snprintf that may cut: texts shown to people, cut at a sane length. */
static void cut_printf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cut_printf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static const char *channel_words(unsigned ch)
{
    return ch ? rules_channel_name(ch) : "a contact point that gave no channel";
}

/* The value of e as text: "45000", "\"Y\"", "10d", "2026-11-12T08:30:00Z",
 * "true", or "missing". */
static void value_text(const expr *e, eval_ctx *c, char *buf, size_t size)
{
    strv s;
    double x;
    bool b;
    switch (e->type) {
    case RT_STRING:
    case RT_DYNAMIC:
        if (expr_eval_str(e, c, &s))
            snprintf(buf, size, "\"%.*s\"", (int)(s.len < 200 ? s.len : 200), s.s);
        else
            snprintf(buf, size, "missing");
        return;
    case RT_BOOL:
        if (expr_eval_truth(e, c, &b))
            snprintf(buf, size, "%s", b ? "true" : "false");
        else
            snprintf(buf, size, "missing");
        return;
    case RT_NUMBER:
    case RT_DURATION:
    case RT_TIME:
        if (!expr_eval_num(e, c, &x))
            snprintf(buf, size, "missing");
        else if (e->type == RT_DURATION)
            rules_format_duration(x, buf, size);
        else if (e->type == RT_TIME)
            rules_format_time(x, buf, size);
        else
            rules_format_number(x, buf, size);
        return;
    default:
        snprintf(buf, size, "?");
        return;
    }
}

static bool is_literal(const expr *e)
{
    return e->op == EX_NUMBER || e->op == EX_STRING || e->op == EX_BOOL || e->op == EX_LIST;
}

/* What a top-level condition looked at: the value compared with a
 * constant, or the truth of anything else. */
static void condition_value(const expr *e, const facts *f, const ruleset *rs, char *buf,
                            size_t size, bool *held)
{
    eval_ctx c = {.rs = rs, .view = {.f = f}};
    *held = expr_eval_bool(e, &c);
    eval_ctx v = {.rs = rs, .view = {.f = f}};
    switch (e->op) {
    case EX_CMP:
    case EX_IN:
    case EX_STARTS_WITH:
    case EX_CONTAINS: {
        const expr *l = e->u.kids[0], *r = e->u.kids[1];
        if (!is_literal(l) && (is_literal(r) || e->op != EX_CMP)) {
            value_text(l, &v, buf, size);
        } else if (is_literal(l) && !is_literal(r)) {
            value_text(r, &v, buf, size);
        } else if (!is_literal(l)) {
            char a[256], b[256];
            value_text(l, &v, a, sizeof a);
            value_text(r, &v, b, sizeof b);
            cut_printf(buf, size, "%s vs %s", a, b);
        } else {
            snprintf(buf, size, "%s", *held ? "true" : "false");
        }
        return;
    }
    case EX_ANY:
        if (e->over == FF_HISTORY)
            snprintf(buf, size, "%s", *held ? "true" : "no history entry matches");
        else if (*held && c.trigger && c.trigger->incident_id)
            snprintf(buf, size, "true (%s)", c.trigger->incident_id);
        else if (*held)
            snprintf(buf, size, "true");
        else
            snprintf(buf, size, "%s",
                     f->customer ? "no incident matches" : "no incidents (an unknown passenger)");
        return;
    case EX_PATH:
        value_text(e, &v, buf, size);
        return;
    case EX_SPEAKS:
    case EX_HAS:
        value_text(e->u.kids[0], &v, buf, size);
        return;
    case EX_NOT: {
        bool h;
        condition_value(e->u.kids[0], f, rs, buf, size, &h);
        return;
    }
    case EX_AND:
    case EX_OR: {
        /* a table's range cell: the column's value */
        bool range = e->op == EX_AND && e->n == 2;
        for (size_t i = 0; i < e->n && range; i++)
            range =
                e->u.kids[i]->op == EX_CMP && e->u.kids[i]->u.kids[0] == e->u.kids[0]->u.kids[0];
        if (range) {
            value_text(e->u.kids[0]->u.kids[0], &v, buf, size);
            return;
        }
        /* else each part's value */
        size_t k = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < e->n && i < 8; i++) {
            char part[256];
            bool h;
            condition_value(e->u.kids[i], f, rs, part, sizeof part, &h);
            int w = snprintf(buf + k, size - k, "%s%s", i ? "; " : "", part);
            if (w < 0 || (size_t)w >= size - k)
                break;
            k += (size_t)w;
        }
        return;
    }
    default:
        snprintf(buf, size, "%s", *held ? "true" : "false");
        return;
    }
}

/* Why action a of a kept rule is not given on channel ch. */
static const char *left_out(const ruleset *rs, const rule_action *a, unsigned ch, char *buf,
                            size_t size)
{
    if (!(a->declared & (1u << ch))) {
        size_t k = 0;
        buf[0] = '\0';
        for (unsigned i = 1; i < RULES_N_CHANNELS; i++) {
            if (!(a->declared & (1u << i)))
                continue;
            int w =
                snprintf(buf + k, size - k, "%s%s", k ? ", " : "only for ", rules_channel_name(i));
            if (w < 0 || (size_t)w >= size - k)
                break;
            k += (size_t)w;
        }
        return buf;
    }
    (void)rs;
    snprintf(buf, size, "%s cannot perform %s", channel_words(ch), a->type);
    return buf;
}

/* Why the contact policy holds an action back, in words for the agent. */
static void held_back(policy_verdict v, const policy_why *why, char *buf, size_t size)
{
    const policy_record *r = why->record;
    if (v == POLICY_CAP) {
        const policy_cap *cap = why->cap;
        char types[256], channels[128], per[64];
        size_t k = 0;
        types[0] = channels[0] = '\0';
        for (size_t i = 0; i < cap->n_types; i++) {
            int w = snprintf(types + k, sizeof types - k, "%s%s", i ? " or " : "", cap->types[i]);
            if (w < 0 || (size_t)w >= sizeof types - k)
                break;
            k += (size_t)w;
        }
        k = 0;
        for (unsigned ch = 1; ch < RULES_N_CHANNELS; ch++) {
            if (!(cap->channels & (1u << ch)))
                continue;
            int w = snprintf(channels + k, sizeof channels - k, "%s%s", k ? " or " : " on ",
                             rules_channel_name(ch));
            if (w < 0 || (size_t)w >= sizeof channels - k)
                break;
            k += (size_t)w;
        }
        rules_format_duration(cap->per_ms, per, sizeof per);
        cut_printf(buf, size,
                   "held back by the contact policy: cap %zu, at most %zu %s%s in %s, is reached",
                   why->cap_index + 1, cap->max, cap->n_types ? types : "recorded actions",
                   channels, per);
        return;
    }
    char rule_text[64];
    if (r->once_per_incident)
        snprintf(rule_text, sizeof rule_text, "once per incident");
    else {
        char per[48];
        rules_format_duration(r->once_within_ms, per, sizeof per);
        snprintf(rule_text, sizeof rule_text, "once in %s", per);
    }
    const Nba__V1__HistoryEntry *e = why->entry;
    if (!e) {
        cut_printf(buf, size,
                   "held back by the contact policy: %s %s, and this decision already gives it",
                   r->type, rule_text);
        return;
    }
    char at[48];
    rules_format_time((double)e->at_ms, at, sizeof at);
    unsigned ch = (unsigned)e->channel < RULES_N_CHANNELS ? (unsigned)e->channel : 0;
    cut_printf(buf, size,
               "held back by the contact policy: %s %s, and it was given%s%s on %s%s%s%s%s",
               r->type, rule_text, e->incident_id && *e->incident_id ? " for " : "",
               e->incident_id && *e->incident_id ? e->incident_id : "", at, ch ? " at the " : "",
               ch ? rules_channel_name(ch) : "", e->rule_id && *e->rule_id ? " by rule " : "",
               e->rule_id && *e->rule_id ? e->rule_id : "");
}

static bool share_group(const rule *a, const rule *b, int *g)
{
    for (size_t i = 0; i < a->n_groups; i++)
        for (size_t k = 0; k < b->n_groups; k++)
            if (a->groups[i] == b->groups[k]) {
                *g = a->groups[i];
                return true;
            }
    return false;
}

int ruleset_explain(const ruleset *rs, const facts *f, arena *a, Nba__V1__Explanation *out)
{
    size_t n_rules = rs->n_rules;
    rule_hit *hits = arena_alloc(a, (n_rules + 1) * sizeof *hits);
    rule_hit *kept = arena_alloc(a, (n_rules + 1) * sizeof *kept);
    const rule_hit **hit_of = arena_calloc(a, (n_rules + 1) * sizeof *hit_of);
    bool *is_kept = arena_calloc(a, n_rules + 1);
    Nba__V1__Decision *d = arena_alloc(a, sizeof *d);
    if (!hits || !kept || !hit_of || !is_kept || !d)
        return -ENOMEM;
    size_t n = ruleset_match(rs, f, hits);
    memcpy(kept, hits, n * sizeof *hits);
    size_t k = ruleset_arbitrate(rs, f, kept, n);
    for (size_t i = 0; i < n; i++)
        hit_of[hits[i].rule->index] = &hits[i];
    for (size_t i = 0; i < k; i++)
        is_kept[kept[i].rule->index] = true;

    nba__v1__decision__init(d);
    d->customer_id = f->event->customer_id ? f->event->customer_id : "";
    d->known = f->customer != NULL;
    int rc = ruleset_render(rs, f, kept, k, a, d);
    if (rc)
        return rc;
    out->decision = d;

    unsigned ch = rules_event_channel(f->event);
    size_t limit = rs->channel_max[ch];
    /* the actions each kept rule gives, in the order render gives them */
    size_t *given = arena_calloc(a, (n_rules + 1) * sizeof *given);
    char **dropped = arena_calloc(a, (n_rules + 1) * sizeof *dropped);
    if (!given || !dropped)
        return -ENOMEM;
    size_t total = 0;
    policy_state *ps = arena_alloc(a, sizeof *ps);
    if (!ps)
        return -ENOMEM;
    policy_begin(rs, f, ps);
    for (size_t i = 0; i < k; i++) {
        const rule *r = kept[i].rule;
        char list[1024];
        size_t len = 0;
        list[0] = '\0';
        for (size_t j = 0; j < r->n_actions; j++) {
            const rule_action *act = &r->actions[j];
            char why[384];
            policy_why pw;
            policy_verdict verdict;
            if (!(act->channels & (1u << ch)))
                left_out(rs, act, ch, why, sizeof why);
            else if (limit && total >= limit)
                snprintf(why, sizeof why, "over the limit of %zu action%s on %s", limit,
                         limit == 1 ? "" : "s", channel_words(ch));
            else if ((verdict = policy_admit(rs, f, ps, &kept[i], act, &pw)) != POLICY_GIVE)
                held_back(verdict, &pw, why, sizeof why);
            else {
                total++;
                given[r->index]++;
                continue;
            }
            int w = snprintf(list + len, sizeof list - len, "%s%s (%s)", len ? ", " : "", act->type,
                             why);
            if (w > 0 && (size_t)w < sizeof list - len)
                len += (size_t)w;
        }
        if (len) {
            dropped[r->index] = copy(a, list);
            if (!dropped[r->index])
                return -ENOMEM;
        }
    }

    Nba__V1__RuleTrace *traces = arena_alloc(a, (n_rules + 1) * sizeof *traces);
    Nba__V1__RuleTrace **ptrs = arena_alloc(a, (n_rules + 1) * sizeof *ptrs);
    if (!traces || !ptrs)
        return -ENOMEM;
    for (size_t i = 0; i < n_rules; i++) {
        const rule *r = &rs->rules[i];
        Nba__V1__RuleTrace *t = &traces[i];
        nba__v1__rule_trace__init(t);
        ptrs[i] = t;
        t->rule_id = copy(a, r->id);
        t->held = hit_of[i] != NULL;
        if (!t->rule_id)
            return -ENOMEM;
        if (r->n_conds) {
            Nba__V1__ConditionTrace *cs = arena_alloc(a, r->n_conds * sizeof *cs);
            Nba__V1__ConditionTrace **cp = arena_alloc(a, r->n_conds * sizeof *cp);
            if (!cs || !cp)
                return -ENOMEM;
            for (size_t j = 0; j < r->n_conds; j++) {
                nba__v1__condition_trace__init(&cs[j]);
                cp[j] = &cs[j];
                char value[512];
                bool held;
                condition_value(r->conds[j].e, f, rs, value, sizeof value, &held);
                cs[j].expression = copy(a, r->conds[j].text);
                cs[j].value = copy(a, value);
                cs[j].held = held;
                if (!cs[j].expression || !cs[j].value)
                    return -ENOMEM;
            }
            t->conditions = cp;
            t->n_conditions = r->n_conds;
        }
        if (!t->held) {
            t->outcome = "not held";
        } else if (is_kept[i]) {
            if (r->n_actions == 0)
                t->outcome = "chosen (a row that does nothing)";
            else if (!dropped[i])
                t->outcome = "chosen";
            else if (given[i] == 0)
                t->outcome = printf_arena(a, "chosen, but gives nothing on %s: %s",
                                          channel_words(ch), dropped[i]);
            else
                t->outcome = printf_arena(a, "chosen; left out: %s", dropped[i]);
        } else {
            /* a better kept rule of one of its groups, else the limit */
            const rule *winner = NULL;
            int g = -1;
            for (size_t j = 0; j < k && !winner; j++)
                if (share_group(kept[j].rule, r, &g))
                    winner = kept[j].rule;
            if (winner && rs->groups[g].table >= 0)
                t->outcome = printf_arena(
                    a, "dropped: table '%s' answered with '%s'%s", rs->groups[g].name, winner->id,
                    rs->tables[rs->groups[g].table].by_priority ? " (higher priority)"
                                                                : " (an earlier row)");
            else if (winner)
                t->outcome = printf_arena(a,
                                          "dropped: exclusive group '%s' went to '%s' (priority "
                                          "%ld)",
                                          rs->groups[g].name, winner->id, winner->priority);
            else
                t->outcome = printf_arena(a, "dropped: the limit of %zu action%s on %s was reached",
                                          limit, limit == 1 ? "" : "s", channel_words(ch));
        }
        if (!t->outcome)
            return -ENOMEM;
    }
    out->rules = ptrs;
    out->n_rules = n_rules;
    return 0;
}
