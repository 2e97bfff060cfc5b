/* eval.c - conditions evaluated per decision: ruleset_match().
 *
 * A walk over the typed tree expr.c built: every node's type is known, so
 * each evaluator reads exactly the kind of value it expects, and nothing is
 * parsed, looked up by name or allocated. lower() does not copy its text: it
 * marks the value as folded and the comparisons fold as they go.
 *
 * Within one decision nothing is worked out twice that need not be: the
 * event's and the customer's texts are measured once (fact_memo), a
 * condition several rules share is evaluated once, and a decision table's
 * `when` and column values once for all its rows. Conditions that look at
 * incidents run for each rule, since they pick the rule's incident.
 *
 * Missing values (an unknown customer's tier, an absent context key) make
 * every comparison false, `!=` and `not in` included; `not` then inverts
 * that false like any other.
 */
#include "rules_internal.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool eval_bool(const expr *e, eval_ctx *c);
static bool eval_num(const expr *e, eval_ctx *c, double *out);
static bool eval_str(const expr *e, eval_ctx *c, strv *out);
static bool eval_truth(const expr *e, eval_ctx *c, bool *out);

static unsigned char fold(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + ('a' - 'A')) : ch;
}

static unsigned char at(strv s, size_t i)
{
    unsigned char ch = (unsigned char)s.s[i];
    return s.fold ? fold(ch) : ch;
}

/* Byte order, which for UTF-8 is code point order. */
static int str_cmp(strv a, strv b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    if (!a.fold && !b.fold) {
        int r = memcmp(a.s, b.s, n);
        if (r)
            return r;
    } else {
        for (size_t i = 0; i < n; i++)
            if (at(a, i) != at(b, i))
                return at(a, i) < at(b, i) ? -1 : 1;
    }
    return a.len < b.len ? -1 : a.len > b.len;
}

static bool str_eq(strv a, strv b)
{
    if (a.len != b.len)
        return false;
    return !a.fold && !b.fold ? memcmp(a.s, b.s, a.len) == 0 : str_cmp(a, b) == 0;
}

static bool starts_with(strv s, strv prefix)
{
    if (prefix.len > s.len)
        return false;
    s.len = prefix.len;
    return str_cmp(s, prefix) == 0;
}

static bool contains(strv s, strv part)
{
    for (size_t i = 0; i + part.len <= s.len; i++) {
        strv tail = {s.s + i, s.len - i, s.fold};
        if (starts_with(tail, part))
            return true;
    }
    return false;
}

static bool ordered(int r, expr_cmp cmp)
{
    switch (cmp) {
    case CMP_EQ:
        return r == 0;
    case CMP_NE:
        return r != 0;
    case CMP_LT:
        return r < 0;
    case CMP_LE:
        return r <= 0;
    case CMP_GT:
        return r > 0;
    case CMP_GE:
        return r >= 0;
    }
    return false;
}

static bool num_cmp(double a, double b, expr_cmp cmp)
{
    switch (cmp) {
    case CMP_EQ:
        return a == b;
    case CMP_NE:
        return a != b;
    case CMP_LT:
        return a < b;
    case CMP_LE:
        return a <= b;
    case CMP_GT:
        return a > b;
    case CMP_GE:
        return a >= b;
    }
    return false;
}

/* One pass of an aggregate over the incidents (or history entries) that
 * pass its filter. */
typedef struct agg {
    size_t count;                            /* items that passed */
    double num;                              /* sum, max or min of the value */
    bool has;                                /* num holds a value */
    const Nba__V1__Incident *pick;           /* latest: the most recent; max/min: the extreme one */
    const Nba__V1__Incident *recent;         /* the most recent that passed */
    const Nba__V1__HistoryEntry *entry_pick; /* the same, over the history */
    const Nba__V1__HistoryEntry *entry_recent;
} agg;

/* An aggregate over the contact history: as over incidents, but it picks
 * no triggering incident, so any() stops at the first entry that passes.
 * Among entries of the same time the later in the list (the history is
 * oldest first) is the most recent. */
static void aggregate_history(const expr *e, eval_ctx *c, agg *r)
{
    const facts *f = c->view.f;
    memset(r, 0, sizeof *r);
    const Nba__V1__HistoryEntry *keep = c->view.entry;
    size_t n = f->history ? f->n_history : 0;
    for (size_t i = 0; i < n; i++) {
        const Nba__V1__HistoryEntry *h = f->history[i];
        if (!h)
            continue;
        c->view.entry = h;
        if (e->filter && !eval_bool(e->filter, c))
            continue;
        r->count++;
        if (!r->entry_recent || h->at_ms >= r->entry_recent->at_ms)
            r->entry_recent = h;
        double x;
        switch (e->op) {
        case EX_SUM:
            if (eval_num(e->value, c, &x)) {
                r->num = r->has ? r->num + x : x;
                r->has = true;
            }
            break;
        case EX_MAX:
        case EX_MIN:
            if (eval_num(e->value, c, &x) &&
                (!r->has || (e->op == EX_MAX ? x > r->num : x < r->num))) {
                r->num = x;
                r->has = true;
                r->entry_pick = h;
            }
            break;
        case EX_ANY:
            goto done;
        default:
            break;
        }
    }
done:
    c->view.entry = keep;
    if (e->op == EX_LATEST)
        r->entry_pick = r->entry_recent;
    if (e->op == EX_SUM && !r->has) {
        r->num = 0;
        r->has = true;
    }
}

/* The first aggregate that finds an incident picks the rule's triggering
 * incident (max and min the extreme one, the others the most recent one),
 * so it looks at every incident; once the trigger is known, any() may stop
 * at the first match. */
static void aggregate(const expr *e, eval_ctx *c, agg *r)
{
    if (e->over == FF_HISTORY) {
        aggregate_history(e, c, r);
        return;
    }
    const facts *f = c->view.f;
    memset(r, 0, sizeof *r);
    bool want_trigger = c->trigger == NULL;
    const Nba__V1__Incident *keep = c->view.incident;
    /* an unknown customer has no incidents */
    size_t n = f->customer && f->incidents ? f->n_incidents : 0;
    for (size_t i = 0; i < n; i++) {
        const Nba__V1__Incident *inc = f->incidents[i];
        if (!inc)
            continue;
        c->view.incident = inc;
        if (e->filter && !eval_bool(e->filter, c))
            continue;
        r->count++;
        if (!r->recent || inc->occurred_at_ms > r->recent->occurred_at_ms)
            r->recent = inc;
        double x;
        switch (e->op) {
        case EX_SUM:
            if (eval_num(e->value, c, &x)) {
                r->num = r->has ? r->num + x : x;
                r->has = true;
            }
            break;
        case EX_MAX:
        case EX_MIN:
            if (eval_num(e->value, c, &x) &&
                (!r->has || (e->op == EX_MAX ? x > r->num : x < r->num))) {
                r->num = x;
                r->has = true;
                r->pick = inc;
            }
            break;
        case EX_ANY:
            if (!want_trigger)
                goto done;
            break;
        default:
            break;
        }
    }
done:
    c->view.incident = keep;
    if (e->op == EX_LATEST)
        r->pick = r->recent;
    if (e->op == EX_SUM && !r->has) {
        r->num = 0;
        r->has = true;
    }
    if (want_trigger && r->count)
        c->trigger = r->pick ? r->pick : r->recent;
}

/* latest(): points the view at the most recent incident (or history
 * entry) that passed, keeping the view it had in *saved; false when none
 * passed, and the value is missing. */
static bool latest(const expr *e, eval_ctx *c, fact_view *saved)
{
    agg r;
    aggregate(e, c, &r);
    *saved = c->view;
    if (e->over == FF_HISTORY) {
        c->view.entry = r.entry_pick;
        return r.entry_pick != NULL;
    }
    c->view.incident = r.pick;
    return r.pick != NULL;
}

/* The evaluators below that a condition's nodes dispatch to stay out of
 * eval_bool(), so that it keeps no frame: every node of every condition and
 * incident filter passes through it. */
#define NOINLINE __attribute__((noinline))

static bool NOINLINE eval_in(const expr *e, eval_ctx *c)
{
    const expr *l = e->u.kids[0], *list = e->u.kids[1];
    bool found = false;
    if (e->operand == RT_STRING) {
        strv s;
        if (!eval_str(l, c, &s))
            return false;
        for (size_t i = 0; i < list->n && !found; i++)
            found = str_eq(s, list->strs[i]);
    } else {
        double x;
        if (!eval_num(l, c, &x))
            return false;
        for (size_t i = 0; i < list->n && !found; i++)
            found = x == list->nums[i];
    }
    return e->negate ? !found : found;
}

static bool NOINLINE eval_cmp(const expr *e, eval_ctx *c)
{
    const expr *l = e->u.kids[0], *r = e->u.kids[1];
    switch (e->operand) {
    case RT_NUMBER: {
        /* most comparisons are with a literal: read it in place */
        double a, b;
        if (!eval_num(l, c, &a))
            return false;
        if (r->op == EX_NUMBER)
            b = r->u.num;
        else if (!eval_num(r, c, &b))
            return false;
        return num_cmp(a, b, e->cmp);
    }
    case RT_STRING: {
        strv a, b;
        if (!eval_str(l, c, &a))
            return false;
        if (r->op == EX_STRING)
            b = r->u.str;
        else if (!eval_str(r, c, &b))
            return false;
        if (e->cmp == CMP_EQ || e->cmp == CMP_NE)
            return str_eq(a, b) == (e->cmp == CMP_EQ);
        return ordered(str_cmp(a, b), e->cmp);
    }
    case RT_BOOL: {
        bool a, b;
        return eval_truth(l, c, &a) && eval_truth(r, c, &b) && (e->cmp == CMP_EQ ? a == b : a != b);
    }
    default:
        return false;
    }
}

static bool has_value(const expr *x, eval_ctx *c)
{
    strv sv;
    double d;
    bool b;
    switch (x->type) {
    case RT_STRING:
    case RT_DYNAMIC:
        if (x->op == EX_PATH && x->type == RT_DYNAMIC) {
            fact_path text = x->u.path;
            text.field = FF_CUSTOMER_ATTR_TEXT;
            return fact_string(&text, &c->view, &sv) && sv.len > 0;
        }
        return eval_str(x, c, &sv) && sv.len > 0;
    case RT_BOOL:
        return eval_truth(x, c, &b);
    default:
        return eval_num(x, c, &d);
    }
}

static bool NOINLINE eval_and(const expr *e, eval_ctx *c)
{
    for (size_t i = 0; i < e->n; i++)
        if (!eval_bool(e->u.kids[i], c))
            return false;
    return true;
}

static bool NOINLINE eval_or(const expr *e, eval_ctx *c)
{
    for (size_t i = 0; i < e->n; i++)
        if (eval_bool(e->u.kids[i], c))
            return true;
    return false;
}

static bool NOINLINE eval_not(const expr *e, eval_ctx *c)
{
    return !eval_bool(e->u.kids[0], c);
}

static bool NOINLINE path_holds(const expr *e, eval_ctx *c)
{
    bool b;
    return fact_bool(&e->u.path, &c->view, &b) && b;
}

/* The value of latest()'s incident, which is missing when no incident
 * passed. */
static bool latest_truth(const expr *e, eval_ctx *c, bool *out)
{
    fact_view saved;
    bool ok = latest(e, c, &saved) && eval_truth(e->value, c, out);
    c->view = saved;
    return ok;
}

static bool NOINLINE call_holds(const expr *e, eval_ctx *c)
{
    strv a, b;
    agg r;
    bool t;
    switch (e->op) {
    case EX_ANY:
        aggregate(e, c, &r);
        return r.count > 0;
    case EX_LATEST:
        return latest_truth(e, c, &t) && t;
    case EX_STARTS_WITH:
        return eval_str(e->u.kids[0], c, &a) && eval_str(e->u.kids[1], c, &b) && starts_with(a, b);
    case EX_CONTAINS:
        return eval_str(e->u.kids[0], c, &a) && eval_str(e->u.kids[1], c, &b) && contains(a, b);
    case EX_SPEAKS:
        return eval_str(e->u.kids[0], c, &a) && rules_language_lookup(c->rs, a.s, a.len) >= 0;
    case EX_HAS:
        return has_value(e->u.kids[0], c);
    default:
        return false;
    }
}

/* Whether a condition holds: missing reads as false. */
static bool eval_bool(const expr *e, eval_ctx *c)
{
    switch (e->op) {
    case EX_BOOL:
        return e->u.b;
    case EX_PATH:
        return path_holds(e, c);
    case EX_AND:
        return eval_and(e, c);
    case EX_OR:
        return eval_or(e, c);
    case EX_NOT:
        return eval_not(e, c);
    case EX_CMP:
        return eval_cmp(e, c);
    case EX_IN:
        return eval_in(e, c);
    default:
        return call_holds(e, c);
    }
}

/* A true/false value, or missing (a bool attribute with no value, an
 * incident field outside a filter, latest() of no incident). */
static bool eval_truth(const expr *e, eval_ctx *c, bool *out)
{
    *out = false;
    switch (e->op) {
    case EX_PATH:
        return fact_bool(&e->u.path, &c->view, out);
    case EX_LATEST:
        return latest_truth(e, c, out);
    case EX_BOOL:
    case EX_AND:
    case EX_OR:
    case EX_NOT:
    case EX_CMP:
    case EX_IN:
    case EX_ANY:
    case EX_STARTS_WITH:
    case EX_CONTAINS:
    case EX_SPEAKS:
    case EX_HAS:
        *out = eval_bool(e, c);
        return true;
    default:
        return false;
    }
}

/* eval_num()'s calls, apart so that eval_num() keeps no frame. */
static bool NOINLINE eval_num_call(const expr *e, eval_ctx *c, double *out)
{
    agg r;
    double t;
    switch (e->op) {
    case EX_COUNT:
        aggregate(e, c, &r);
        *out = (double)r.count;
        return true;
    case EX_SUM:
    case EX_MAX:
    case EX_MIN:
        aggregate(e, c, &r);
        *out = r.num;
        return r.has;
    case EX_LATEST: {
        fact_view saved;
        bool ok = latest(e, c, &saved) && eval_num(e->value, c, out);
        c->view = saved;
        return ok;
    }
    case EX_AGE:
        if (!eval_num(e->u.kids[0], c, &t))
            return false;
        *out = (double)c->view.f->now_ms - t;
        return true;
    case EX_DAYS_SINCE:
        if (!eval_num(e->u.kids[0], c, &t))
            return false;
        *out = floor(((double)c->view.f->now_ms - t) / RULES_DAY_MS);
        return true;
    default:
        return false;
    }
}

static bool eval_num(const expr *e, eval_ctx *c, double *out)
{
    switch (e->op) {
    case EX_NUMBER:
        *out = e->u.num;
        return true;
    case EX_PATH:
        return fact_number(&e->u.path, &c->view, out);
    default:
        return eval_num_call(e, c, out);
    }
}

/* eval_str()'s calls, apart so that eval_str() keeps no frame. */
static bool NOINLINE eval_str_call(const expr *e, eval_ctx *c, strv *out)
{
    switch (e->op) {
    case EX_LOWER:
        if (!eval_str(e->u.kids[0], c, out))
            return false;
        out->fold = true;
        return true;
    case EX_LATEST: {
        fact_view saved;
        bool ok = latest(e, c, &saved) && eval_str(e->value, c, out);
        c->view = saved;
        return ok;
    }
    default:
        return false;
    }
}

static bool eval_str(const expr *e, eval_ctx *c, strv *out)
{
    switch (e->op) {
    case EX_STRING:
        *out = e->u.str;
        return true;
    case EX_PATH:
        return fact_string(&e->u.path, &c->view, out);
    default:
        return eval_str_call(e, c, out);
    }
}

bool expr_eval_bool(const expr *e, eval_ctx *c)
{
    return eval_bool(e, c);
}

bool expr_eval_num(const expr *e, eval_ctx *c, double *out)
{
    return eval_num(e, c, out);
}

bool expr_eval_str(const expr *e, eval_ctx *c, strv *out)
{
    return eval_str(e, c, out);
}

bool expr_eval_truth(const expr *e, eval_ctx *c, bool *out)
{
    return eval_truth(e, c, out);
}

/* A table column's value in one decision, read the first time a row tests
 * it. */
typedef struct column_value {
    bool read;
    bool present; /* false: missing, so every test of it fails */
    double num;
    strv str;
    bool b;
    /* the incident the column's aggregates picked (NULL when none did, or
     * when the table's `when` had already picked one) */
    const Nba__V1__Incident *trigger;
} column_value;

static const column_value *column(const rule_table *t, size_t i, eval_ctx *base, column_value *v)
{
    if (v->read)
        return v;
    const expr *input = t->columns[i].input;
    eval_ctx c = *base;
    if (rules_type_numeric(input->type))
        v->present = eval_num(input, &c, &v->num);
    else if (input->type == RT_STRING)
        v->present = eval_str(input, &c, &v->str);
    else
        v->present = eval_truth(input, &c, &v->b);
    v->trigger = c.trigger;
    v->read = true;
    return v;
}

static bool test_holds(const table_cell *k, const column_value *v)
{
    if (!v->present)
        return false; /* `!=` and `not in` included, as in conditions */
    if (k->op == EX_IN) {
        bool found = false;
        if (k->operand == RT_STRING) {
            for (size_t i = 0; i < k->n && !found; i++)
                found = str_eq(v->str, k->strs[i]);
        } else {
            for (size_t i = 0; i < k->n && !found; i++)
                found = v->num == k->nums[i];
        }
        return k->negate ? !found : found;
    }
    switch (k->operand) {
    case RT_NUMBER:
        return num_cmp(v->num, k->num, k->cmp);
    case RT_STRING:
        if (k->cmp == CMP_EQ || k->cmp == CMP_NE)
            return str_eq(v->str, k->str) == (k->cmp == CMP_EQ);
        return ordered(str_cmp(v->str, k->str), k->cmp);
    case RT_BOOL:
        return k->cmp == CMP_EQ ? v->b == k->b : v->b != k->b;
    default:
        return false;
    }
}

/* One decision's state, shared by every rule it evaluates. */
typedef struct match_state {
    fact_memo memo;
    /* shared conditions (rule_term.shared), a bit each: evaluated, and
     * held */
    uint64_t shared_known, shared_held;
} match_state;

static_assert(RULES_MAX_SHARED <= 64, "a decision keeps a bit per shared condition");

/* The conjunction of terms[0..n), in order, as eval_bool() of their `and`
 * would evaluate it; a shared term's outcome is kept for the decision. */
static bool terms_hold(const rule_term *terms, size_t n, eval_ctx *c, match_state *m)
{
    for (size_t i = 0; i < n; i++) {
        int k = terms[i].shared;
        if (k < 0) {
            if (!eval_bool(terms[i].e, c))
                return false;
            continue;
        }
        uint64_t bit = (uint64_t)1 << k;
        if (!(m->shared_known & bit)) {
            m->shared_known |= bit;
            if (eval_bool(terms[i].e, c))
                m->shared_held |= bit;
        }
        if (!(m->shared_held & bit))
            return false;
    }
    return true;
}

/* The rows of a decision table: the table's `when` once, each column's
 * value once (when a row first tests it), then each row's tests of those
 * values. Every row gets the hit it would get if its condition were
 * written out, the table's `when` and then its cells in column order: the
 * triggering incident is the first an aggregate found, the `when`'s first,
 * then that of the first column the row tests whose aggregates found one.
 * A column's aggregates pick the same incident whichever row reads it
 * first, as its value depends on the facts alone. */
static size_t match_table(const ruleset *rs, const rule_table *t, const facts *f, match_state *m,
                          rule_hit *hits)
{
    eval_ctx base = {.rs = rs, .view = {.f = f, .memo = &m->memo}};
    if (!terms_hold(t->guard_terms, t->n_guard_terms, &base, m))
        return 0;
    column_value values[64]; /* a table has at most 64 columns */
    for (size_t i = 0; i < t->n_columns; i++)
        values[i].read = false;
    size_t n = 0;
    for (size_t k = 0; k < t->n_rows; k++) {
        const rule *r = &rs->rules[t->first_rule + k];
        const Nba__V1__Incident *trigger = base.trigger;
        bool holds = true;
        for (size_t j = 0; j < r->n_cells && holds; j++) {
            const table_cell *cell = &r->cells[j];
            const column_value *v = column(t, cell->column, &base, &values[cell->column]);
            holds = test_holds(cell, v);
            if (!trigger)
                trigger = v->trigger;
        }
        if (holds) {
            hits[n].rule = r;
            hits[n].incident = trigger;
            n++;
        }
    }
    return n;
}

size_t ruleset_match(const ruleset *rs, const facts *f, rule_hit *hits)
{
    match_state m;
    fact_memo_init(&m.memo);
    m.shared_known = m.shared_held = 0;
    size_t n = 0;
    for (size_t i = 0; i < rs->n_rules; i++) {
        const rule *r = &rs->rules[i];
        if (r->table >= 0) {
            const rule_table *t = &rs->tables[r->table];
            n += match_table(rs, t, f, &m, hits + n);
            i = t->first_rule + t->n_rows - 1;
            continue;
        }
        eval_ctx c = {.rs = rs, .view = {.f = f, .memo = &m.memo}};
        if (terms_hold(r->terms, r->n_terms, &c, &m)) {
            hits[n].rule = r;
            hits[n].incident = c.trigger;
            n++;
        }
    }
    return n;
}

/* ---- conditions rules share ---- */

/* Whether e runs an aggregate over incidents, which picks the rule's
 * incident as it goes: such a condition must run for each rule that tests
 * it. One over the history picks nothing, and its filter holds no other
 * aggregate, so it is shared like any other condition. */
static bool looks_at_incidents(const expr *e)
{
    if (expr_is_aggregate(e->op))
        return e->over != FF_HISTORY;
    switch (e->op) {
    case EX_BOOL:
    case EX_NUMBER:
    case EX_STRING:
    case EX_LIST:
    case EX_PATH:
        return false;
    default:
        for (size_t i = 0; i < e->n; i++)
            if (looks_at_incidents(e->u.kids[i]))
                return true;
        return false;
    }
}

static uint64_t mix(uint64_t h, uint64_t x)
{
    return (h ^ x) * 0x100000001b3ull;
}

static uint64_t mix_bytes(uint64_t h, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = mix(h, (unsigned char)s[i]);
    return h;
}

/* A hash that expr_equal() trees share (a few equal ones may differ, such
 * as 0 and -0: they are then merely not shared). */
static uint64_t expr_hash(const expr *e)
{
    uint64_t h = mix(mix(mix(0xcbf29ce484222325ull, e->op), e->type), e->n);
    uint64_t bits;
    switch (e->op) {
    case EX_BOOL:
        return mix(h, e->u.b);
    case EX_NUMBER:
        memcpy(&bits, &e->u.num, sizeof bits);
        return mix(h, bits);
    case EX_STRING:
        return mix_bytes(h, e->u.str.s, e->u.str.len);
    case EX_PATH:
        h = mix(mix(h, e->u.path.field), e->u.path.type);
        return e->u.path.key ? mix_bytes(h, e->u.path.key, strlen(e->u.path.key)) : h;
    case EX_LIST:
        for (size_t i = 0; i < e->n; i++) {
            if (e->list_type == RT_STRING) {
                h = mix_bytes(mix(h, e->strs[i].len), e->strs[i].s, e->strs[i].len);
            } else {
                memcpy(&bits, &e->nums[i], sizeof bits);
                h = mix(h, bits);
            }
        }
        return h;
    default:
        h = mix(mix(h, e->cmp), e->negate);
        for (size_t i = 0; i < e->n; i++)
            h = mix(h, expr_hash(e->u.kids[i]));
        return h;
    }
}

/* Top-level conditions: the operands of the outermost `and`. */
static size_t conjuncts(const expr *e)
{
    return e->op == EX_AND ? e->n : 1;
}

static const expr *conjunct(const expr *e, size_t i)
{
    return e->op == EX_AND ? e->u.kids[i] : e;
}

int rules_share_conditions(rules_compiler *c)
{
    ruleset *rs = c->rs;
    /* every term, rules first, then table guards */
    size_t n = 0;
    for (size_t i = 0; i < rs->n_rules; i++)
        if (rs->rules[i].table < 0 && rs->rules[i].when)
            n += conjuncts(rs->rules[i].when);
    for (size_t i = 0; i < rs->n_tables; i++)
        if (rs->tables[i].guard)
            n += conjuncts(rs->tables[i].guard);
    rule_term *terms = rules_alloc(c, (n ? n : 1) * sizeof *terms);
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    size_t *slots = malloc(cap * sizeof *slots); /* open addressing: a term + 1, 0 empty */
    uint64_t *hashes = malloc((n ? n : 1) * sizeof *hashes);
    size_t *first = malloc((n ? n : 1) * sizeof *first); /* the first equal term */
    unsigned *count = calloc(n ? n : 1, sizeof *count);
    int rc = terms && slots && hashes && first && count ? 0 : -ENOMEM;
    if (rc)
        goto out;
    memset(slots, 0, cap * sizeof *slots);
    size_t k = 0;
    for (size_t i = 0; i < rs->n_rules; i++) {
        rule *r = &rs->rules[i];
        if (r->table >= 0 || !r->when)
            continue;
        r->terms = &terms[k];
        r->n_terms = conjuncts(r->when);
        for (size_t j = 0; j < r->n_terms; j++)
            terms[k++] = (rule_term){.e = conjunct(r->when, j), .shared = -1};
    }
    for (size_t i = 0; i < rs->n_tables; i++) {
        rule_table *t = &rs->tables[i];
        if (!t->guard)
            continue;
        t->guard_terms = &terms[k];
        t->n_guard_terms = conjuncts(t->guard);
        for (size_t j = 0; j < t->n_guard_terms; j++)
            terms[k++] = (rule_term){.e = conjunct(t->guard, j), .shared = -1};
    }
    /* group equal terms under the first of them */
    for (size_t i = 0; i < n; i++) {
        first[i] = i;
        if (looks_at_incidents(terms[i].e))
            continue;
        hashes[i] = expr_hash(terms[i].e);
        size_t at = (size_t)hashes[i] & (cap - 1);
        while (slots[at]) {
            size_t j = slots[at] - 1;
            if (hashes[j] == hashes[i] && expr_equal(terms[j].e, terms[i].e)) {
                first[i] = j;
                break;
            }
            at = (at + 1) & (cap - 1);
        }
        if (first[i] == i)
            slots[at] = i + 1;
        count[first[i]]++;
    }
    /* a decision keeps the outcome of those that several rules test */
    rs->n_shared = 0;
    for (size_t i = 0; i < n; i++) {
        if (first[i] == i && count[i] > 1 && rs->n_shared < RULES_MAX_SHARED)
            terms[i].shared = (int)rs->n_shared++;
        else if (first[i] != i)
            terms[i].shared = terms[first[i]].shared;
    }
out:
    free(slots);
    free(hashes);
    free(first);
    free(count);
    return rc;
}
