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

#include <string.h>

typedef struct eval_ctx {
    const ruleset *rs;
    fact_view view;
    const Nba__V1__Incident *trigger; /* set by the first aggregate that matched */
} eval_ctx;

static bool eval_bool(const expr *e, eval_ctx *c);
static bool eval_num(const expr *e, eval_ctx *c, double *out);
static bool eval_str(const expr *e, eval_ctx *c, strv *out);

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

/* count()/any(): the incidents passing the filter. The first aggregate that
 * finds any also picks the rule's triggering incident, the most recent one,
 * so it looks at every incident; later ones may stop at the first match. */
static size_t aggregate(const expr *e, eval_ctx *c, bool any)
{
    const facts *f = c->view.f;
    if (!f->customer || !f->incidents)
        return 0;
    const expr *filter = e->n ? e->u.kids[0] : NULL;
    bool want_trigger = c->trigger == NULL;
    const Nba__V1__Incident *best = NULL;
    size_t count = 0;
    for (size_t i = 0; i < f->n_incidents; i++) {
        const Nba__V1__Incident *inc = f->incidents[i];
        if (!inc)
            continue;
        c->view.incident = inc;
        if (filter && !eval_bool(filter, c))
            continue;
        count++;
        if (want_trigger) {
            if (!best || inc->occurred_at_ms > best->occurred_at_ms)
                best = inc;
        } else if (any) {
            break;
        }
    }
    c->view.incident = NULL;
    if (best)
        c->trigger = best;
    return count;
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
        bool a = eval_bool(l, c), b = eval_bool(r, c);
        return e->cmp == CMP_EQ ? a == b : a != b;
    }
    default:
        return false;
    }
}

static bool eval_bool(const expr *e, eval_ctx *c)
{
    strv a, b;
    switch (e->op) {
    case EX_BOOL:
        return e->u.b;
    case EX_PATH:
        return fact_bool(&e->u.path, &c->view);
    case EX_AND:
        for (size_t i = 0; i < e->n; i++)
            if (!eval_bool(e->u.kids[i], c))
                return false;
        return true;
    case EX_OR:
        for (size_t i = 0; i < e->n; i++)
            if (eval_bool(e->u.kids[i], c))
                return true;
        return false;
    case EX_NOT:
        return !eval_bool(e->u.kids[0], c);
    case EX_CMP:
        return eval_cmp(e, c);
    case EX_IN:
        return eval_in(e, c);
    case EX_ANY:
        return aggregate(e, c, true) > 0;
    case EX_STARTS_WITH:
        return eval_str(e->u.kids[0], c, &a) && eval_str(e->u.kids[1], c, &b) && starts_with(a, b);
    case EX_CONTAINS:
        return eval_str(e->u.kids[0], c, &a) && eval_str(e->u.kids[1], c, &b) && contains(a, b);
    case EX_SPEAKS:
        return eval_str(e->u.kids[0], c, &a) && rules_language_lookup(c->rs, a.s, a.len) >= 0;
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
    case EX_COUNT:
        *out = (double)aggregate(e, c, false);
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
    default:
        return false;
    }
}

bool expr_holds(const ruleset *rs, const expr *e, const facts *f, const Nba__V1__Incident **trigger)
{
    eval_ctx c = {.rs = rs, .view = {.f = f}};
    bool holds = eval_bool(e, &c);
    *trigger = holds ? c.trigger : NULL;
    return holds;
}

size_t ruleset_match(const ruleset *rs, const facts *f, rule_hit *hits)
{
    size_t n = 0;
    for (size_t i = 0; i < rs->n_rules; i++) {
        const rule *r = &rs->rules[i];
        const Nba__V1__Incident *trigger;
        if (expr_holds(rs, r->when, f, &trigger)) {
            hits[n].rule = r;
            hits[n].incident = trigger;
            n++;
        }
    }
    return n;
}
