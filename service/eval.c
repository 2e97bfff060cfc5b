/* eval.c - conditions evaluated per decision: ruleset_match().
 *
 * A walk over the typed tree expr.c built: every node's type is known, so
 * each evaluator reads exactly the kind of value it expects, and nothing is
 * parsed, looked up by name or allocated. lower() does not copy its text: it
 * marks the value as folded and the comparisons fold as they go.
 *
 * Missing values (an unknown customer's tier, an absent context key) make
 * every comparison false, `!=` and `not in` included; `not` then inverts
 * that false like any other.
 */
#include "rules_internal.h"

#include <math.h>
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
    return a.len == b.len && str_cmp(a, b) == 0;
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

/* One pass of an aggregate over the incidents that pass its filter. */
typedef struct agg {
    size_t count;                    /* incidents that passed */
    double num;                      /* sum, max or min of the value */
    bool has;                        /* num holds a value */
    const Nba__V1__Incident *pick;   /* latest: the most recent; max/min: the extreme one */
    const Nba__V1__Incident *recent; /* the most recent that passed */
} agg;

/* The first aggregate that finds an incident picks the rule's triggering
 * incident (max and min the extreme one, the others the most recent one),
 * so it looks at every incident; once the trigger is known, any() may stop
 * at the first match. */
static void aggregate(const expr *e, eval_ctx *c, agg *r)
{
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

/* latest(): the value of the most recent incident that passed. */
static const Nba__V1__Incident *latest(const expr *e, eval_ctx *c)
{
    agg r;
    aggregate(e, c, &r);
    return r.pick;
}

static bool eval_in(const expr *e, eval_ctx *c)
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

static bool eval_cmp(const expr *e, eval_ctx *c)
{
    const expr *l = e->u.kids[0], *r = e->u.kids[1];
    switch (e->operand) {
    case RT_NUMBER: {
        double a, b;
        return eval_num(l, c, &a) && eval_num(r, c, &b) && num_cmp(a, b, e->cmp);
    }
    case RT_STRING: {
        strv a, b;
        return eval_str(l, c, &a) && eval_str(r, c, &b) && ordered(str_cmp(a, b), e->cmp);
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

static bool eval_bool(const expr *e, eval_ctx *c)
{
    bool b;
    return eval_truth(e, c, &b) && b;
}

/* A true/false value, or missing (a bool attribute with no value, an
 * incident field outside a filter). Conditions read missing as false. */
static bool eval_truth(const expr *e, eval_ctx *c, bool *out)
{
    strv a, b;
    agg r;
    *out = false;
    switch (e->op) {
    case EX_BOOL:
        *out = e->u.b;
        return true;
    case EX_PATH:
        return fact_bool(&e->u.path, &c->view, out);
    case EX_AND:
        for (size_t i = 0; i < e->n; i++)
            if (!eval_bool(e->u.kids[i], c))
                return true;
        *out = true;
        return true;
    case EX_OR:
        for (size_t i = 0; i < e->n; i++) {
            if (eval_bool(e->u.kids[i], c)) {
                *out = true;
                return true;
            }
        }
        return true;
    case EX_NOT:
        *out = !eval_bool(e->u.kids[0], c);
        return true;
    case EX_CMP:
        *out = eval_cmp(e, c);
        return true;
    case EX_IN:
        *out = eval_in(e, c);
        return true;
    case EX_ANY:
        aggregate(e, c, &r);
        *out = r.count > 0;
        return true;
    case EX_LATEST: {
        const Nba__V1__Incident *pick = latest(e, c);
        if (!pick)
            return false;
        const Nba__V1__Incident *keep = c->view.incident;
        c->view.incident = pick;
        bool ok = eval_truth(e->value, c, out);
        c->view.incident = keep;
        return ok;
    }
    case EX_STARTS_WITH:
        *out = eval_str(e->u.kids[0], c, &a) && eval_str(e->u.kids[1], c, &b) && starts_with(a, b);
        return true;
    case EX_CONTAINS:
        *out = eval_str(e->u.kids[0], c, &a) && eval_str(e->u.kids[1], c, &b) && contains(a, b);
        return true;
    case EX_SPEAKS:
        *out = eval_str(e->u.kids[0], c, &a) && rules_language_lookup(c->rs, a.s, a.len) >= 0;
        return true;
    case EX_HAS:
        *out = has_value(e->u.kids[0], c);
        return true;
    default:
        return false;
    }
}

static bool eval_num(const expr *e, eval_ctx *c, double *out)
{
    agg r;
    double t;
    switch (e->op) {
    case EX_NUMBER:
        *out = e->u.num;
        return true;
    case EX_PATH:
        return fact_number(&e->u.path, &c->view, out);
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
        const Nba__V1__Incident *pick = latest(e, c);
        if (!pick)
            return false;
        const Nba__V1__Incident *keep = c->view.incident;
        c->view.incident = pick;
        bool ok = eval_num(e->value, c, out);
        c->view.incident = keep;
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

static bool eval_str(const expr *e, eval_ctx *c, strv *out)
{
    switch (e->op) {
    case EX_STRING:
        *out = e->u.str;
        return true;
    case EX_PATH:
        return fact_string(&e->u.path, &c->view, out);
    case EX_LOWER:
        if (!eval_str(e->u.kids[0], c, out))
            return false;
        out->fold = true;
        return true;
    case EX_LATEST: {
        const Nba__V1__Incident *pick = latest(e, c);
        if (!pick)
            return false;
        const Nba__V1__Incident *keep = c->view.incident;
        c->view.incident = pick;
        bool ok = eval_str(e->value, c, out);
        c->view.incident = keep;
        return ok;
    }
    default:
        return false;
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

bool expr_holds(const ruleset *rs, const expr *e, const facts *f, const Nba__V1__Incident **trigger)
{
    eval_ctx c = {.rs = rs, .view = {.f = f}};
    bool holds = eval_bool(e, &c);
    *trigger = holds ? c.trigger : NULL;
    return holds;
}

/* The rows of a decision table: the table's `when` once, then each row's
 * cells. The triggering incident is the first an aggregate found, the
 * table's `when` first, as if each row's condition were written out. */
static size_t match_table(const ruleset *rs, const rule_table *t, const facts *f, rule_hit *hits)
{
    const Nba__V1__Incident *guard_trigger = NULL;
    if (t->guard) {
        eval_ctx c = {.rs = rs, .view = {.f = f}};
        if (!eval_bool(t->guard, &c))
            return 0;
        guard_trigger = c.trigger;
    }
    size_t n = 0;
    for (size_t k = 0; k < t->n_rows; k++) {
        const rule *r = &rs->rules[t->first_rule + k];
        eval_ctx c = {.rs = rs, .view = {.f = f}, .trigger = guard_trigger};
        if (eval_bool(r->cells, &c)) {
            hits[n].rule = r;
            hits[n].incident = c.trigger;
            n++;
        }
    }
    return n;
}

size_t ruleset_match(const ruleset *rs, const facts *f, rule_hit *hits)
{
    size_t n = 0;
    for (size_t i = 0; i < rs->n_rules; i++) {
        const rule *r = &rs->rules[i];
        if (r->table >= 0) {
            const rule_table *t = &rs->tables[r->table];
            n += match_table(rs, t, f, hits + n);
            i = t->first_rule + t->n_rows - 1;
            continue;
        }
        const Nba__V1__Incident *trigger;
        if (expr_holds(rs, r->when, f, &trigger)) {
            hits[n].rule = r;
            hits[n].incident = trigger;
            n++;
        }
    }
    return n;
}
