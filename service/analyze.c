/* analyze.c - what a rule file says that its author probably did not mean,
 * found once it compiled: warnings, never errors.
 *
 *   - a rule that can never fire: its top-level conditions contradict each
 *     other (customer.tier == "gold" and customer.tier == "silver";
 *     count(incidents) > 3 and count(incidents) < 2; a condition that is
 *     false whatever the data);
 *   - a rule that never gives an action: it holds only on channels where
 *     none of its actions is given;
 *   - a rule shadowed by a better rule of its exclusive group: whenever it
 *     holds the other holds too, so it never acts;
 *   - a comparison that missing data makes surprising: `!=`, `not in` and
 *     comparisons under `not` with a value that may be missing (any
 *     comparison with a missing value is false), and comparisons of extra
 *     customer columns, which any customer may lack.
 *
 * The reasoning is sound but simple: each rule's top-level conditions (the
 * operands of its outer `and`) are read as constraints on the value they
 * compare with a constant, per value (a name, or an aggregate such as
 * count(incidents, open)); values are the same when their expressions are
 * the same tree. What it cannot read it does not judge, so it may miss a
 * contradiction but never reports one that is not there.
 */
#include "rules_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- constraints on one value ---- */

typedef struct lit {
    double num;
    strv str;
} lit;

typedef struct lits {
    lit *v;
    size_t n, cap;
} lits;

typedef struct domain {
    const expr *term;
    rules_type type; /* RT_NUMBER for every numeric type, RT_STRING, RT_BOOL */
    bool integer;    /* counts */
    double lo, hi;
    bool lo_open, hi_open;
    bool has_allowed; /* a finite set of values (== and in) */
    lits allowed;
    lits excluded;
    bool has_bool, bool_value;
    const expr *first; /* the first condition that constrained it, for messages */
    bool empty;
    const expr *culprit; /* the condition that made it empty */
} domain;

typedef struct domains {
    domain *d;
    size_t n, cap;
    bool oom;
    bool always_false; /* a condition that is false whatever the data */
    const expr *false_cond;
} domains;

static bool str_eq(strv a, strv b)
{
    return a.len == b.len && memcmp(a.s, b.s, a.len) == 0;
}

static bool lit_eq(rules_type t, const lit *a, const lit *b)
{
    return t == RT_STRING ? str_eq(a->str, b->str) : a->num == b->num;
}

static bool lits_has(rules_type t, const lits *l, const lit *x)
{
    for (size_t i = 0; i < l->n; i++)
        if (lit_eq(t, &l->v[i], x))
            return true;
    return false;
}

static int lits_add(lits *l, lit x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        lit *grown = realloc(l->v, cap * sizeof *grown);
        if (!grown)
            return -1;
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

static void domains_free(domains *ds)
{
    for (size_t i = 0; i < ds->n; i++) {
        free(ds->d[i].allowed.v);
        free(ds->d[i].excluded.v);
    }
    free(ds->d);
    memset(ds, 0, sizeof *ds);
}

static bool is_literal(const expr *e)
{
    return e->op == EX_NUMBER || e->op == EX_STRING || e->op == EX_BOOL;
}

/* A value worth reasoning about: a name or an aggregate, not lower(). */
static bool is_term(const expr *e)
{
    return e->op == EX_PATH || expr_is_aggregate(e->op) || e->op == EX_AGE ||
           e->op == EX_DAYS_SINCE;
}

static domain *domain_of(domains *ds, const expr *term, rules_type type)
{
    for (size_t i = 0; i < ds->n; i++)
        if (expr_equal(ds->d[i].term, term))
            return &ds->d[i];
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 8;
        domain *grown = realloc(ds->d, cap * sizeof *grown);
        if (!grown) {
            ds->oom = true;
            return NULL;
        }
        ds->d = grown;
        ds->cap = cap;
    }
    domain *d = &ds->d[ds->n++];
    memset(d, 0, sizeof *d);
    d->term = term;
    d->type = type;
    d->integer = term->op == EX_COUNT || term->op == EX_DAYS_SINCE;
    d->lo = term->op == EX_COUNT ? 0 : -INFINITY;
    d->hi = INFINITY;
    return d;
}

static expr_cmp flip(expr_cmp c)
{
    switch (c) {
    case CMP_LT:
        return CMP_GT;
    case CMP_LE:
        return CMP_GE;
    case CMP_GT:
        return CMP_LT;
    case CMP_GE:
        return CMP_LE;
    default:
        return c;
    }
}

/* The interval, narrowed to whole numbers for counts. */
static void effective(const domain *d, double *lo, double *hi, bool *lo_open, bool *hi_open)
{
    *lo = d->lo;
    *hi = d->hi;
    *lo_open = d->lo_open;
    *hi_open = d->hi_open;
    if (d->integer) {
        if (isfinite(*lo))
            *lo = *lo_open ? floor(*lo) + 1 : ceil(*lo);
        if (isfinite(*hi))
            *hi = *hi_open ? ceil(*hi) - 1 : floor(*hi);
        *lo_open = *hi_open = false;
    }
}

static bool in_interval(const domain *d, double x)
{
    double lo, hi;
    bool lo_open, hi_open;
    effective(d, &lo, &hi, &lo_open, &hi_open);
    if (x < lo || (x == lo && lo_open) || x > hi || (x == hi && hi_open))
        return false;
    return !d->integer || x == floor(x);
}

/* Whether some value satisfies every constraint so far. */
static bool satisfiable(const domain *d)
{
    if (d->type == RT_BOOL)
        return true; /* conflicts are caught as they come */
    if (d->type == RT_STRING) {
        if (!d->has_allowed)
            return true;
        for (size_t i = 0; i < d->allowed.n; i++)
            if (!lits_has(RT_STRING, &d->excluded, &d->allowed.v[i]))
                return true;
        return false;
    }
    double lo, hi;
    bool lo_open, hi_open;
    effective(d, &lo, &hi, &lo_open, &hi_open);
    if (lo > hi || (lo == hi && (lo_open || hi_open)))
        return false;
    if (d->has_allowed) {
        for (size_t i = 0; i < d->allowed.n; i++)
            if (in_interval(d, d->allowed.v[i].num) &&
                !lits_has(RT_NUMBER, &d->excluded, &d->allowed.v[i]))
                return true;
        return false;
    }
    if (lo == hi && lits_has(RT_NUMBER, &d->excluded, &(lit){.num = lo}))
        return false;
    return true;
}

static void restrict_allowed(domain *d, const lit *v, size_t n)
{
    if (!d->has_allowed) {
        d->has_allowed = true;
        for (size_t i = 0; i < n; i++)
            if (lits_add(&d->allowed, v[i]))
                return;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < d->allowed.n; i++) {
        bool keep = false;
        for (size_t j = 0; j < n && !keep; j++)
            keep = lit_eq(d->type, &d->allowed.v[i], &v[j]);
        if (keep)
            d->allowed.v[k++] = d->allowed.v[i];
    }
    d->allowed.n = k;
}

static void apply_cmp(domain *d, expr_cmp cmp, const lit *x)
{
    if (d->type == RT_STRING) {
        if (cmp == CMP_EQ)
            restrict_allowed(d, x, 1);
        else if (cmp == CMP_NE)
            lits_add(&d->excluded, *x);
        return; /* order of text: not followed */
    }
    double v = x->num;
    switch (cmp) {
    case CMP_EQ:
        restrict_allowed(d, x, 1);
        break;
    case CMP_NE:
        lits_add(&d->excluded, *x);
        break;
    case CMP_LT:
    case CMP_LE:
        if (v < d->hi || (v == d->hi && cmp == CMP_LT)) {
            d->hi = v;
            d->hi_open = cmp == CMP_LT;
        }
        break;
    case CMP_GT:
    case CMP_GE:
        if (v > d->lo || (v == d->lo && cmp == CMP_GT)) {
            d->lo = v;
            d->lo_open = cmp == CMP_GT;
        }
        break;
    }
}

static lit lit_of(const expr *e)
{
    lit x = {0};
    if (e->op == EX_STRING)
        x.str = e->u.str;
    else if (e->op == EX_NUMBER)
        x.num = e->u.num;
    else if (e->op == EX_BOOL)
        x.num = e->u.b;
    return x;
}

static bool const_cmp(const expr *l, const expr *r, expr_cmp cmp)
{
    int o;
    if (l->op == EX_STRING) {
        size_t n = l->u.str.len < r->u.str.len ? l->u.str.len : r->u.str.len;
        o = memcmp(l->u.str.s, r->u.str.s, n);
        if (!o)
            o = l->u.str.len < r->u.str.len ? -1 : l->u.str.len > r->u.str.len;
    } else {
        double a = l->op == EX_BOOL ? l->u.b : l->u.num, b = r->op == EX_BOOL ? r->u.b : r->u.num;
        o = a < b ? -1 : a > b;
    }
    switch (cmp) {
    case CMP_EQ:
        return o == 0;
    case CMP_NE:
        return o != 0;
    case CMP_LT:
        return o < 0;
    case CMP_LE:
        return o <= 0;
    case CMP_GT:
        return o > 0;
    case CMP_GE:
        return o >= 0;
    }
    return false;
}

/* An atom: `term op literal`, `term in list`, a bool term (true/false).
 * Returns false when e is none of those. */
typedef struct atom {
    const expr *term;
    rules_type type;
    enum { A_CMP, A_IN, A_BOOL } kind;
    expr_cmp cmp;
    lit value;
    const expr *list;
    bool negate;
    bool bool_value;
} atom;

static bool never_missing_bool(const expr *e)
{
    return (e->op == EX_PATH && fact_path_missing(&e->u.path, FS_CONDITION) == MISS_NEVER) ||
           e->op == EX_ANY;
}

static bool atom_of(const expr *e, atom *a)
{
    memset(a, 0, sizeof *a);
    if (e->op == EX_CMP) {
        const expr *l = e->u.kids[0], *r = e->u.kids[1];
        if (is_term(l) && is_literal(r)) {
            a->term = l;
            a->cmp = e->cmp;
            a->value = lit_of(r);
        } else if (is_literal(l) && is_term(r)) {
            a->term = r;
            a->cmp = flip(e->cmp);
            a->value = lit_of(l);
        } else {
            return false;
        }
        a->type = e->operand;
        if (a->type == RT_BOOL) {
            if (a->cmp != CMP_EQ && a->cmp != CMP_NE)
                return false;
            a->kind = A_BOOL;
            a->bool_value = (a->value.num != 0) == (a->cmp == CMP_EQ);
            return true;
        }
        a->kind = A_CMP;
        return true;
    }
    if (e->op == EX_IN && is_term(e->u.kids[0])) {
        a->term = e->u.kids[0];
        a->type = e->operand;
        a->kind = A_IN;
        a->list = e->u.kids[1];
        a->negate = e->negate;
        return true;
    }
    if (e->type == RT_BOOL && is_term(e)) {
        a->term = e;
        a->type = RT_BOOL;
        a->kind = A_BOOL;
        a->bool_value = true;
        return true;
    }
    if (e->op == EX_NOT && is_term(e->u.kids[0]) && e->u.kids[0]->type == RT_BOOL &&
        never_missing_bool(e->u.kids[0])) {
        a->term = e->u.kids[0];
        a->type = RT_BOOL;
        a->kind = A_BOOL;
        a->bool_value = false;
        return true;
    }
    return false;
}

static void list_lits(const expr *list, rules_type t, lits *out)
{
    for (size_t i = 0; i < list->n; i++) {
        lit x = {0};
        if (t == RT_STRING)
            x.str = list->strs[i];
        else
            x.num = list->nums[i];
        if (lits_add(out, x))
            return;
    }
}

/* Adds one top-level condition to the domains. */
static void add_condition(domains *ds, const expr *e)
{
    if (e->op == EX_AND) {
        for (size_t i = 0; i < e->n; i++)
            add_condition(ds, e->u.kids[i]);
        return;
    }
    if (e->op == EX_BOOL) {
        if (!e->u.b && !ds->always_false) {
            ds->always_false = true;
            ds->false_cond = e;
        }
        return;
    }
    if (e->op == EX_CMP && is_literal(e->u.kids[0]) && is_literal(e->u.kids[1])) {
        if (!const_cmp(e->u.kids[0], e->u.kids[1], e->cmp) && !ds->always_false) {
            ds->always_false = true;
            ds->false_cond = e;
        }
        return;
    }
    atom a;
    if (!atom_of(e, &a))
        return;
    domain *d = domain_of(ds, a.term, a.type);
    if (!d || d->empty)
        return;
    if (!d->first)
        d->first = e;
    switch (a.kind) {
    case A_BOOL:
        if (d->has_bool && d->bool_value != a.bool_value) {
            d->empty = true;
            d->culprit = e;
        }
        d->has_bool = true;
        d->bool_value = a.bool_value;
        return;
    case A_CMP:
        apply_cmp(d, a.cmp, &a.value);
        break;
    case A_IN: {
        lits l = {0};
        list_lits(a.list, a.type, &l);
        if (a.negate) {
            for (size_t i = 0; i < l.n; i++)
                lits_add(&d->excluded, l.v[i]);
        } else {
            restrict_allowed(d, l.v, l.n);
        }
        free(l.v);
        break;
    }
    }
    if (!satisfiable(d)) {
        d->empty = true;
        d->culprit = e;
    }
}

/* ---- implication: whenever B's conditions hold, does `a` hold? ---- */

static bool implies(const domains *b, const expr *const *b_conds, size_t n_b, const expr *a);

static const domain *find_domain(const domains *ds, const expr *term)
{
    for (size_t i = 0; i < ds->n; i++)
        if (expr_equal(ds->d[i].term, term))
            return &ds->d[i];
    return NULL;
}

/* Every value d allows satisfies `op x`. */
static bool domain_within_cmp(const domain *d, expr_cmp cmp, const lit *x)
{
    if (d->type == RT_STRING) {
        if (cmp == CMP_EQ)
            return d->has_allowed && d->allowed.n == 1 && str_eq(d->allowed.v[0].str, x->str);
        if (cmp == CMP_NE)
            return lits_has(RT_STRING, &d->excluded, x) ||
                   (d->has_allowed && !lits_has(RT_STRING, &d->allowed, x));
        return false;
    }
    if (d->has_allowed) {
        for (size_t i = 0; i < d->allowed.n; i++) {
            const lit *v = &d->allowed.v[i];
            if (!in_interval(d, v->num) || lits_has(RT_NUMBER, &d->excluded, v))
                continue;
            if (!const_cmp(&(expr){.op = EX_NUMBER, .u.num = v->num},
                           &(expr){.op = EX_NUMBER, .u.num = x->num}, cmp))
                return false;
        }
        return true;
    }
    double lo, hi;
    bool lo_open, hi_open;
    effective(d, &lo, &hi, &lo_open, &hi_open);
    double c = x->num;
    switch (cmp) {
    case CMP_GE:
        return lo >= c;
    case CMP_GT:
        return lo > c || (lo == c && lo_open);
    case CMP_LE:
        return hi <= c;
    case CMP_LT:
        return hi < c || (hi == c && hi_open);
    case CMP_EQ:
        return lo == c && hi == c && !lo_open && !hi_open;
    case CMP_NE:
        return c < lo || (c == lo && lo_open) || c > hi || (c == hi && hi_open) ||
               lits_has(RT_NUMBER, &d->excluded, x);
    }
    return false;
}

static bool atom_implied(const domains *b, const expr *const *b_conds, size_t n_b, const atom *a)
{
    const domain *d = find_domain(b, a->term);
    if (a->kind == A_BOOL) {
        if (d && d->has_bool && d->bool_value == a->bool_value)
            return true;
        /* any(incidents, F) follows from any(incidents, G) when G implies F */
        if (a->term->op == EX_ANY && a->bool_value) {
            for (size_t i = 0; i < n_b; i++) {
                const expr *g = b_conds[i];
                if (g->op != EX_ANY || g->over != a->term->over)
                    continue;
                if (!a->term->filter)
                    return true;
                if (!g->filter)
                    continue;
                domains fd = {0};
                const expr *const *fc;
                size_t nf;
                const expr *one[1] = {g->filter};
                if (g->filter->op == EX_AND) {
                    fc = (const expr *const *)g->filter->u.kids;
                    nf = g->filter->n;
                } else {
                    fc = one;
                    nf = 1;
                }
                for (size_t k = 0; k < nf; k++)
                    add_condition(&fd, fc[k]);
                bool ok = !fd.oom && implies(&fd, fc, nf, a->term->filter);
                domains_free(&fd);
                if (ok)
                    return true;
            }
        }
        return false;
    }
    if (!d || d->empty)
        return false;
    if (a->kind == A_CMP)
        return domain_within_cmp(d, a->cmp, &a->value);
    /* in / not in */
    const expr *list = a->list;
    if (a->negate) {
        for (size_t i = 0; i < list->n; i++) {
            lit x = {0};
            if (a->type == RT_STRING)
                x.str = list->strs[i];
            else
                x.num = list->nums[i];
            if (!domain_within_cmp(d, CMP_NE, &x))
                return false;
        }
        return true;
    }
    if (!d->has_allowed) {
        double lo, hi;
        bool lo_open, hi_open;
        effective(d, &lo, &hi, &lo_open, &hi_open);
        if (d->type != RT_NUMBER || lo != hi || lo_open || hi_open)
            return false;
        for (size_t i = 0; i < list->n; i++)
            if (list->nums[i] == lo)
                return true;
        return false;
    }
    for (size_t i = 0; i < d->allowed.n; i++) {
        const lit *v = &d->allowed.v[i];
        if (d->type == RT_NUMBER &&
            (!in_interval(d, v->num) || lits_has(RT_NUMBER, &d->excluded, v)))
            continue;
        if (d->type == RT_STRING && lits_has(RT_STRING, &d->excluded, v))
            continue;
        bool found = false;
        for (size_t k = 0; k < list->n && !found; k++)
            found = d->type == RT_STRING ? str_eq(list->strs[k], v->str) : list->nums[k] == v->num;
        if (!found)
            return false;
    }
    return true;
}

static bool implies(const domains *b, const expr *const *b_conds, size_t n_b, const expr *a)
{
    if (a->op == EX_BOOL)
        return a->u.b;
    for (size_t i = 0; i < n_b; i++)
        if (expr_equal(b_conds[i], a))
            return true;
    if (a->op == EX_AND) {
        for (size_t i = 0; i < a->n; i++)
            if (!implies(b, b_conds, n_b, a->u.kids[i]))
                return false;
        return true;
    }
    if (a->op == EX_OR) {
        for (size_t i = 0; i < a->n; i++)
            if (implies(b, b_conds, n_b, a->u.kids[i]))
                return true;
        return false;
    }
    atom at;
    return atom_of(a, &at) && atom_implied(b, b_conds, n_b, &at);
}

/* ---- per rule ---- */

typedef struct rule_facts {
    domains ds;
    const expr **conds; /* top-level conditions, nested `and`s flattened */
    size_t n_conds;
    bool never;
} rule_facts;

static void flatten(const expr *e, const expr ***out, size_t *n, size_t *cap, bool *oom)
{
    if (e->op == EX_AND) {
        for (size_t i = 0; i < e->n; i++)
            flatten(e->u.kids[i], out, n, cap, oom);
        return;
    }
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        const expr **grown = realloc(*out, c * sizeof *grown);
        if (!grown) {
            *oom = true;
            return;
        }
        *out = grown;
        *cap = c;
    }
    (*out)[(*n)++] = e;
}

static void warn_rule(rules_compiler *c, size_t i, const expr *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A warning at condition `at` of rule i (at its text within `when`), or at
 * the rule (a table row, or no condition). */
static void warn_rule(rules_compiler *c, size_t i, const expr *at, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const rule_origin *o = &c->origins[i];
    rules_enter_file(c, o->file);
    if (o->when && at)
        rules_warn_scalar(c->src, o->when, at->pos, "%s", msg);
    else
        rules_warn_node(c->src, o->id ? o->id : o->node, "%s", msg);
}

/* The text of condition e of rule i: as the rule's top-level conditions
 * give it, else from the `when` text. */
static const char *cond_text(rules_compiler *c, size_t i, const expr *e, char *buf, size_t size)
{
    const rule *r = &c->rs->rules[i];
    for (size_t k = 0; k < r->n_conds; k++) {
        if (r->conds[k].e == e) {
            snprintf(buf, size, "%s", r->conds[k].text);
            return buf;
        }
    }
    const yaml_node_t *when = c->origins[i].when;
    if (when && e->end <= when->data.scalar.length && e->pos < e->end) {
        snprintf(buf, size, "%.*s", (int)(e->end - e->pos),
                 (const char *)when->data.scalar.value + e->pos);
        for (char *p = buf; *p; p++)
            if (*p == '\n')
                *p = ' ';
        return buf;
    }
    snprintf(buf, size, "a condition");
    return buf;
}

static void check_never(rules_compiler *c, size_t i, rule_facts *rf)
{
    const rule *r = &c->rs->rules[i];
    char a[256], b[256];
    if (rf->ds.always_false) {
        rf->never = true;
        warn_rule(c, i, rf->ds.false_cond,
                  "rule '%s' can never fire: %s is false whatever the data", r->id,
                  cond_text(c, i, rf->ds.false_cond, a, sizeof a));
        return;
    }
    for (size_t k = 0; k < rf->ds.n; k++) {
        const domain *d = &rf->ds.d[k];
        if (!d->empty)
            continue;
        rf->never = true;
        if (d->first == d->culprit)
            warn_rule(c, i, d->culprit, "rule '%s' can never fire: %s is never true", r->id,
                      cond_text(c, i, d->culprit, a, sizeof a));
        else
            warn_rule(c, i, d->culprit, "rule '%s' can never fire: %s contradicts %s", r->id,
                      cond_text(c, i, d->culprit, a, sizeof a),
                      cond_text(c, i, d->first, b, sizeof b));
        return;
    }
}

/* The channels a rule can hold on, from its conditions on event.channel. */
static unsigned channels_allowed(const rule_facts *rf)
{
    unsigned mask = RULES_ALL_CHANNELS;
    for (size_t k = 0; k < rf->ds.n; k++) {
        const domain *d = &rf->ds.d[k];
        if (d->term->op != EX_PATH || d->term->u.path.field != FF_EVENT_CHANNEL)
            continue;
        unsigned m = 0;
        for (unsigned ch = 0; ch < RULES_N_CHANNELS; ch++) {
            const char *name = ch ? rules_channel_name(ch) : "";
            lit x = {.str = {name, strlen(name), false}};
            bool ok = !lits_has(RT_STRING, &d->excluded, &x) &&
                      (!d->has_allowed || lits_has(RT_STRING, &d->allowed, &x));
            if (ok)
                m |= 1u << ch;
        }
        mask &= m;
    }
    return mask;
}

static void channel_list(unsigned mask, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = '\0';
    for (unsigned ch = 1; ch < RULES_N_CHANNELS; ch++) {
        if (!(mask & (1u << ch)))
            continue;
        int w = snprintf(buf + k, size - k, "%s%s", k ? ", " : "", rules_channel_name(ch));
        if (w < 0 || (size_t)w >= size - k)
            return;
        k += (size_t)w;
    }
    if (!k)
        snprintf(buf, size, "no channel");
}

static void check_acts(rules_compiler *c, size_t i, const rule_facts *rf)
{
    const rule *r = &c->rs->rules[i];
    if (r->n_actions == 0 || rf->never || c->origins[i].broken)
        return;
    unsigned given = 0, declared = 0;
    for (size_t k = 0; k < r->n_actions; k++) {
        given |= r->actions[k].channels;
        declared |= r->actions[k].declared;
    }
    unsigned holds = channels_allowed(rf);
    if (given & holds)
        return;
    char on[128], to[128];
    channel_list(holds, on, sizeof on);
    channel_list(declared, to, sizeof to);
    if ((declared & holds) == 0)
        warn_rule(c, i, NULL,
                  "rule '%s' never gives an action: it holds only on %s, and its actions are for "
                  "%s",
                  r->id, on, to);
    else
        warn_rule(c, i, NULL,
                  "rule '%s' never gives an action: the channels it holds on (%s) cannot perform "
                  "its actions (see 'channels:')",
                  r->id, on);
}

static bool beats(const rule *a, const rule *b)
{
    return a->priority > b->priority || (a->priority == b->priority && a->index < b->index);
}

static int shared_group(const rule *a, const rule *b)
{
    for (size_t i = 0; i < a->n_groups; i++)
        for (size_t k = 0; k < b->n_groups; k++)
            if (a->groups[i] == b->groups[k])
                return a->groups[i];
    return -1;
}

static void check_shadow(rules_compiler *c, size_t i, rule_facts *facts)
{
    const ruleset *rs = c->rs;
    const rule *b = &rs->rules[i];
    if (!b->n_groups || facts[i].never)
        return;
    for (size_t k = 0; k < rs->n_rules; k++) {
        const rule *a = &rs->rules[k];
        if (k == i || !a->when || !beats(a, b))
            continue;
        int g = shared_group(a, b);
        if (g < 0)
            continue;
        /* rows of one table: tables_check tells */
        if (a->table >= 0 && a->table == b->table)
            continue;
        if (!implies(&facts[i].ds, facts[i].conds, facts[i].n_conds, a->when))
            continue;
        const rule_origin *o = &c->origins[k];
        const yaml_node_t *at = o->id ? o->id : o->node;
        const rule_group *grp = &rs->groups[g];
        char where[300];
        if (o->file == c->origins[i].file)
            snprintf(where, sizeof where, "line %zu", at->start_mark.line + 1);
        else
            snprintf(where, sizeof where, "%s:%zu", c->files[o->file].src.name,
                     at->start_mark.line + 1);
        warn_rule(c, i, NULL,
                  "rule '%s' is shadowed by '%s' (%s): whenever it holds, '%s' holds too and "
                  "wins their exclusive %s '%s'; hint: give '%s' a higher priority than '%s', "
                  "or narrow '%s'",
                  b->id, a->id, where, a->id, grp->table >= 0 ? "table" : "group", grp->name, b->id,
                  a->id, a->id);
        return;
    }
}

/* ---- missing data ---- */

typedef struct guards {
    bool known;       /* customer.known holds (or an incident was found) */
    const expr **has; /* values has() confirms */
    size_t n_has;
} guards;

static bool guarded(const guards *g, const expr *value, fact_missing m)
{
    if (m == MISS_UNKNOWN && g->known)
        return true;
    for (size_t i = 0; i < g->n_has; i++)
        if (expr_equal(g->has[i], value))
            return true;
    /* has(customer.x) on a retyped attribute guards its other readings */
    if (value->op == EX_PATH && value->u.path.key) {
        for (size_t i = 0; i < g->n_has; i++) {
            const expr *h = g->has[i];
            if (h->op == EX_PATH && h->u.path.key && strcmp(h->u.path.key, value->u.path.key) == 0)
                return true;
        }
    }
    return false;
}

typedef struct missing_walk {
    rules_compiler *c;
    size_t rule;
    const guards *g;
    const expr *warned[8]; /* values already warned about in this rule */
    size_t n_warned;
} missing_walk;

static bool already(missing_walk *w, const expr *v)
{
    for (size_t i = 0; i < w->n_warned; i++)
        if (expr_equal(w->warned[i], v))
            return true;
    if (w->n_warned < 8)
        w->warned[w->n_warned++] = v;
    return false;
}

static const char *value_name(const missing_walk *w, const expr *v, char *buf, size_t size)
{
    const yaml_node_t *when = w->c->origins[w->rule].when;
    const char *s = (const char *)when->data.scalar.value;
    size_t end = v->end <= when->data.scalar.length ? v->end : when->data.scalar.length;
    snprintf(buf, size, "%.*s", (int)(end - v->pos), s + v->pos);
    return buf;
}

/* The value that may be missing among a comparison's operands, if any. */
static const expr *missing_operand(const missing_walk *w, const expr *e, fact_scope scope,
                                   fact_missing *how)
{
    for (size_t i = 0; i < e->n; i++) {
        const expr *v = e->u.kids[i];
        while (v->op == EX_LOWER)
            v = v->u.kids[0];
        fact_missing m = MISS_NEVER;
        if (v->op == EX_PATH)
            m = fact_path_missing(&v->u.path, scope);
        else if (v->op == EX_MAX || v->op == EX_MIN || v->op == EX_LATEST)
            m = MISS_DATA;
        if (m == MISS_NEVER || guarded(w->g, v, m))
            continue;
        *how = m;
        return v;
    }
    return NULL;
}

static bool is_attribute(const expr *v)
{
    return v->op == EX_PATH &&
           (v->u.path.field == FF_CUSTOMER_ATTR || v->u.path.field == FF_CUSTOMER_ATTR_TEXT ||
            v->u.path.field == FF_CUSTOMER_ATTR_NUMBER ||
            v->u.path.field == FF_CUSTOMER_ATTR_BOOL || v->u.path.field == FF_CUSTOMER_ATTR_TIME);
}

static void walk_missing(missing_walk *w, const expr *e, bool negated, fact_scope scope)
{
    char name[200];
    const rule *r = &w->c->rs->rules[w->rule];
    switch (e->op) {
    case EX_AND:
    case EX_OR:
        for (size_t i = 0; i < e->n; i++)
            walk_missing(w, e->u.kids[i], negated, scope);
        return;
    case EX_NOT:
        walk_missing(w, e->u.kids[0], !negated, scope);
        return;
    case EX_COUNT:
    case EX_ANY:
    case EX_SUM:
    case EX_MAX:
    case EX_MIN:
    case EX_LATEST:
        if (e->filter)
            walk_missing(w, e->filter, false, e->over == FF_HISTORY ? FS_HISTORY : FS_FILTER);
        return;
    case EX_PATH:
        if (e->type == RT_BOOL && e->u.path.field == FF_CUSTOMER_ATTR_BOOL &&
            !guarded(w->g, e, MISS_DATA) && !already(w, e))
            warn_rule(w->c, w->rule, e,
                      "%s may be missing (an empty cell, or neither true nor false): it then "
                      "counts as false%s; hint: write has(%s) and ... to say that is meant",
                      value_name(w, e, name, sizeof name),
                      negated ? ", and 'not' makes it true" : "", name);
        return;
    case EX_CMP:
    case EX_IN:
    case EX_STARTS_WITH:
    case EX_CONTAINS: {
        fact_missing how;
        const expr *v = missing_operand(w, e, scope, &how);
        if (!v)
            return;
        bool negative = (e->op == EX_CMP && e->cmp == CMP_NE) || (e->op == EX_IN && e->negate);
        bool surprising = negative != negated;
        if (!surprising && !is_attribute(v))
            return;
        if (already(w, v))
            return;
        value_name(w, v, name, sizeof name);
        bool of_history = v->op == EX_PATH ? v->u.path.field == FF_HISTORY_PARAM ||
                                                 v->u.path.field == FF_HISTORY_CONTEXT
                                           : v->over == FF_HISTORY;
        const char *when_missing =
            how == MISS_UNKNOWN              ? "for a passenger nbad does not know"
            : is_attribute(v)                ? "when the customer's cell is empty or not of the "
                                               "column's type"
            : v->op != EX_PATH && of_history ? "when no history entry passes the filter"
            : v->op != EX_PATH               ? "when no incident passes the filter"
            : of_history                     ? "when the history entry lacks it"
                                             : "when the contact point does not send it";
        char guard[220];
        if (how == MISS_UNKNOWN)
            snprintf(guard, sizeof guard, "customer.known");
        else
            snprintf(guard, sizeof guard, "has(%s)", name);
        if (surprising)
            warn_rule(w->c, w->rule, e,
                      "in rule '%s', %s is missing %s, and then this comparison is false%s; "
                      "hint: write %s and ... to say what is meant",
                      r->id, name, when_missing,
                      negated ? " and the 'not' around it makes the condition true" : ", not true",
                      guard);
        else
            warn_rule(w->c, w->rule, e,
                      "in rule '%s', %s may be missing (an empty cell, or not of the column's "
                      "type): the comparison is then false; hint: if that is meant, say so with "
                      "has(%s) and ...",
                      r->id, name, name);
        return;
    }
    default:
        return;
    }
}

static void check_missing(rules_compiler *c, size_t i, const rule_facts *rf)
{
    const rule *r = &c->rs->rules[i];
    if (!c->origins[i].when || rf->never)
        return;
    guards g = {0};
    g.has = calloc(rf->n_conds ? rf->n_conds : 1, sizeof *g.has);
    if (!g.has)
        return;
    for (size_t k = 0; k < rf->n_conds; k++) {
        const expr *e = rf->conds[k];
        if (e->op == EX_PATH && e->u.path.field == FF_CUSTOMER_KNOWN)
            g.known = true;
        else if ((e->op == EX_ANY || e->op == EX_LATEST) && e->over != FF_HISTORY)
            g.known = true; /* no incident without a customer */
        else if (e->op == EX_HAS)
            g.has[g.n_has++] = e->u.kids[0];
        else if (e->op == EX_CMP && e->u.kids[0]->op == EX_COUNT &&
                 e->u.kids[0]->over != FF_HISTORY && (e->cmp == CMP_GT || e->cmp == CMP_GE) &&
                 e->u.kids[1]->op == EX_NUMBER && e->u.kids[1]->u.num >= (e->cmp == CMP_GT ? 0 : 1))
            g.known = true;
    }
    missing_walk w = {.c = c, .rule = i, .g = &g};
    walk_missing(&w, r->when, false, FS_CONDITION);
    free(g.has);
}

void rules_analyze(rules_compiler *c)
{
    const ruleset *rs = c->rs;
    rule_facts *facts = calloc(rs->n_rules ? rs->n_rules : 1, sizeof *facts);
    if (!facts)
        return;
    for (size_t i = 0; i < rs->n_rules; i++) {
        const rule *r = &rs->rules[i];
        rule_facts *rf = &facts[i];
        if (!r->when)
            continue; /* its condition did not compile */
        size_t cap = 0;
        bool oom = false;
        flatten(r->when, &rf->conds, &rf->n_conds, &cap, &oom);
        for (size_t k = 0; k < rf->n_conds && !oom; k++)
            add_condition(&rf->ds, rf->conds[k]);
        if (oom || rf->ds.oom) {
            domains_free(&rf->ds);
            free(rf->conds);
            rf->conds = NULL;
            rf->n_conds = 0;
            continue;
        }
        check_never(c, i, rf);
        check_acts(c, i, rf);
        check_missing(c, i, rf);
    }
    for (size_t i = 0; i < rs->n_rules; i++)
        if (rs->rules[i].when && facts[i].conds)
            check_shadow(c, i, facts);
    for (size_t i = 0; i < rs->n_rules; i++) {
        domains_free(&facts[i].ds);
        free(facts[i].conds);
    }
    free(facts);
}
