/* expr.c - the condition language of `when:`, compiled into a typed tree.
 *
 *   condition := or
 *   or        := and ('or' and)*
 *   and       := not ('and' not)*
 *   not       := 'not' not | compare
 *   compare   := operand (('==' | '!=' | '<' | '<=' | '>' | '>=') operand
 *                         | 'in' list | 'not' 'in' list)?
 *   operand   := number | duration | string | true | false | path
 *              | name '(' arguments ')' | '(' or ')'
 *   list      := '[' (literal (',' literal)* ','?)? ']'
 *
 * Every name is resolved and every operand typed here, once, so evaluation
 * never looks at a name or meets a type it cannot handle; a mistake is a
 * compile error pointing at the token, never a surprise at the desk. `and`
 * and `or` chains become one n-ary node, so the depth of the tree, and with
 * it the evaluator's recursion, is bounded by RULES_MAX_DEPTH.
 */
#include "rules_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum tok_kind {
    T_EOF,
    T_NUMBER,
    T_DURATION,
    T_STRING,
    T_NAME,
    T_LPAREN,
    T_RPAREN,
    T_LBRACKET,
    T_RBRACKET,
    T_COMMA,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_AND,
    T_OR,
    T_NOT,
    T_IN,
    T_TRUE,
    T_FALSE,
} tok_kind;

typedef struct token {
    tok_kind kind;
    size_t pos; /* byte offset in the condition text */
    size_t len;
    double num; /* T_NUMBER, T_DURATION (in ms) */
    strv str;   /* T_STRING, unescaped; T_NAME, as written */
} token;

typedef struct parser {
    rules_compiler *c;
    const yaml_node_t *node;
    const char *text;
    size_t len;
    size_t at; /* where the lexer reads next */
    token tok; /* the current token */
    int depth;
    fact_scope scope;
} parser;

static int perr(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int perr(parser *p, size_t pos, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rules_error_scalar(&p->c->src, p->c->err, p->node, pos, "%s", msg);
}

/* ---- lexer ---- */

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool is_name_char(char ch)
{
    return is_alpha(ch) || is_digit(ch) || ch == '-';
}

static bool name_is(const token *t, const char *word)
{
    return t->str.len == strlen(word) && memcmp(t->str.s, word, t->str.len) == 0;
}

static int lex_number(parser *p, token *t)
{
    const char *s = p->text;
    size_t i = p->at;
    char buf[64];
    size_t n = 0;
    if (s[i] == '-')
        buf[n++] = s[i++];
    bool dot = false;
    while (i < p->len && (is_digit(s[i]) || s[i] == '_' || (s[i] == '.' && !dot))) {
        if (s[i] == '.') {
            /* "1." followed by a non-digit is not a number's fraction */
            if (i + 1 >= p->len || !is_digit(s[i + 1]))
                break;
            dot = true;
        }
        if (s[i] != '_' && n + 1 < sizeof buf)
            buf[n++] = s[i];
        i++;
    }
    buf[n] = '\0';
    t->num = strtod(buf, NULL);
    t->kind = T_NUMBER;
    if (i < p->len && is_alpha(s[i])) {
        size_t u = i;
        while (i < p->len && is_alpha(s[i]))
            i++;
        static const struct {
            const char *unit;
            double ms;
        } units[] = {{"ms", 1},     {"s", 1e3},     {"m", 60e3},
                     {"h", 3600e3}, {"d", 86400e3}, {"w", 7 * 86400e3}};
        size_t ulen = i - u;
        size_t k;
        for (k = 0; k < sizeof units / sizeof units[0]; k++)
            if (strlen(units[k].unit) == ulen && memcmp(units[k].unit, s + u, ulen) == 0)
                break;
        if (k == sizeof units / sizeof units[0])
            return perr(p, u,
                        "unknown unit '%.*s' after a number (durations are written 90d, 6h, "
                        "30m, 45s, 500ms or 2w)",
                        (int)ulen, s + u);
        t->num *= units[k].ms;
        t->kind = T_DURATION;
    }
    p->at = i;
    return 0;
}

static int lex_string(parser *p, token *t)
{
    const char *s = p->text;
    char quote = s[p->at];
    size_t i = p->at + 1;
    /* the unescaped text is never longer than the source */
    char *out = rules_alloc(p->c, p->len - p->at);
    if (!out)
        return -ENOMEM;
    size_t n = 0;
    for (;;) {
        if (i >= p->len)
            return perr(p, t->pos, "text started here is missing its closing %c", quote);
        char ch = s[i];
        if (ch == quote) {
            i++;
            break;
        }
        if (ch == '\\') {
            if (i + 1 >= p->len)
                return perr(p, i, "unfinished escape at the end of the condition");
            char e = s[i + 1];
            switch (e) {
            case '\\':
            case '"':
            case '\'':
                out[n++] = e;
                break;
            case 'n':
                out[n++] = '\n';
                break;
            case 't':
                out[n++] = '\t';
                break;
            default:
                return perr(p, i, "unknown escape '\\%c' (use \\\\, \\\", \\', \\n or \\t)", e);
            }
            i += 2;
            continue;
        }
        out[n++] = ch;
        i++;
    }
    out[n] = '\0';
    t->kind = T_STRING;
    t->str.s = out;
    t->str.len = n;
    p->at = i;
    return 0;
}

static int lex_name(parser *p, token *t)
{
    const char *s = p->text;
    size_t i = p->at;
    for (;;) {
        while (i < p->len && is_name_char(s[i]))
            i++;
        /* a dot joins segments: customer.tier, event.context.cabin */
        if (i + 1 < p->len && s[i] == '.' && is_name_char(s[i + 1]))
            i++;
        else
            break;
    }
    t->str.s = s + p->at;
    t->str.len = i - p->at;
    t->kind = T_NAME;
    static const struct {
        const char *word;
        tok_kind kind;
    } keywords[] = {{"and", T_AND}, {"or", T_OR},     {"not", T_NOT},
                    {"in", T_IN},   {"true", T_TRUE}, {"false", T_FALSE}};
    for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++) {
        if (name_is(t, keywords[k].word)) {
            t->kind = keywords[k].kind;
            break;
        }
        if (t->str.len == strlen(keywords[k].word) &&
            strncasecmp(t->str.s, keywords[k].word, t->str.len) == 0)
            return perr(p, t->pos, "write '%s' in lower case", keywords[k].word);
    }
    p->at = i;
    return 0;
}

static int next(parser *p)
{
    const char *s = p->text;
    while (p->at < p->len &&
           (s[p->at] == ' ' || s[p->at] == '\t' || s[p->at] == '\n' || s[p->at] == '\r'))
        p->at++;
    token *t = &p->tok;
    memset(t, 0, sizeof *t);
    t->pos = p->at;
    if (p->at >= p->len) {
        t->kind = T_EOF;
        return 0;
    }
    char ch = s[p->at];
    char nx = p->at + 1 < p->len ? s[p->at + 1] : '\0';
    int rc = 0;
    if (is_digit(ch) || (ch == '-' && is_digit(nx)))
        rc = lex_number(p, t);
    else if (ch == '"' || ch == '\'')
        rc = lex_string(p, t);
    else if (is_alpha(ch))
        rc = lex_name(p, t);
    else {
        size_t width = 1;
        switch (ch) {
        case '(':
            t->kind = T_LPAREN;
            break;
        case ')':
            t->kind = T_RPAREN;
            break;
        case '[':
            t->kind = T_LBRACKET;
            break;
        case ']':
            t->kind = T_RBRACKET;
            break;
        case ',':
            t->kind = T_COMMA;
            break;
        case '=':
            if (nx != '=')
                return perr(p, t->pos, "use '==' to compare ('=' alone is not an operator)");
            t->kind = T_EQ;
            width = 2;
            break;
        case '!':
            if (nx != '=')
                return perr(p, t->pos, "write 'not' instead of '!'");
            t->kind = T_NE;
            width = 2;
            break;
        case '<':
            t->kind = nx == '=' ? T_LE : T_LT;
            width = nx == '=' ? 2 : 1;
            break;
        case '>':
            t->kind = nx == '=' ? T_GE : T_GT;
            width = nx == '=' ? 2 : 1;
            break;
        case '&':
            return perr(p, t->pos, "write 'and' instead of '&&'");
        case '|':
            return perr(p, t->pos, "write 'or' instead of '||'");
        default: {
            size_t n = 1;
            while (p->at + n < p->len && ((unsigned char)s[p->at + n] & 0xC0) == 0x80)
                n++;
            return perr(p, t->pos, "unexpected character '%.*s'", (int)n, s + p->at);
        }
        }
        p->at += width;
    }
    if (rc)
        return rc;
    t->len = p->at - t->pos;
    return 0;
}

static const char *tok_text(const parser *p, const token *t, char *buf, size_t size)
{
    if (t->kind == T_EOF)
        return "the end of the condition";
    snprintf(buf, size, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), p->text + t->pos);
    return buf;
}

static int expect(parser *p, tok_kind kind, const char *what)
{
    if (p->tok.kind != kind) {
        char buf[64];
        return perr(p, p->tok.pos, "expected %s, found %s", what,
                    tok_text(p, &p->tok, buf, sizeof buf));
    }
    return next(p);
}

/* ---- tree ---- */

static expr *node(parser *p, expr_op op, rules_type type, size_t pos)
{
    expr *e = rules_alloc(p->c, sizeof *e);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    e->op = op;
    e->type = type;
    e->pos = pos;
    return e;
}

static expr **kids(parser *p, size_t n)
{
    return rules_alloc(p->c, n * sizeof(expr *));
}

/* customer.<attribute> is typed by what it meets: text next to text,
 * number next to a number. */
static void as_text(expr *e)
{
    if (e->type == RT_DYNAMIC) {
        e->u.path.field = FF_CUSTOMER_ATTR_TEXT;
        e->u.path.type = e->type = RT_STRING;
    }
}

static void as_number(expr *e)
{
    if (e->type == RT_DYNAMIC) {
        e->u.path.field = FF_CUSTOMER_ATTR_NUMBER;
        e->u.path.type = e->type = RT_NUMBER;
    }
}

static int need_bool(parser *p, const expr *e, const char *where)
{
    if (e->type == RT_BOOL)
        return 0;
    if (e->type == RT_DYNAMIC)
        return perr(p, e->pos,
                    "%s needs a condition (true/false), and a customer attribute is text or a "
                    "number: compare it, e.g. customer.%s == \"yes\"",
                    where, e->u.path.key);
    return perr(p, e->pos, "%s needs a condition (true/false), found a %s", where,
                rules_type_name(e->type));
}

static int need_text(parser *p, expr *e, const char *fn)
{
    as_text(e);
    if (e->type != RT_STRING)
        return perr(p, e->pos, "%s() works on text, found a %s", fn, rules_type_name(e->type));
    return 0;
}

/* event.channel compared with a literal: the literal must be a channel. */
static int check_channel(parser *p, const expr *path, const strv *lit, size_t pos)
{
    if (path->op != EX_PATH || path->u.path.field != FF_EVENT_CHANNEL || lit->len == 0)
        return 0;
    if (rules_channel_lookup(lit->s, lit->len, false) > 0)
        return 0;
    rules_hint h;
    char hint[96];
    rules_hint_init(&h, lit->s, lit->len);
    for (unsigned i = 1; i < RULES_N_CHANNELS; i++)
        rules_hint_try(&h, rules_channel_name(i));
    return perr(p, pos,
                "unknown channel '%.*s'%s (channels: desk, kiosk, ivr, web, mobile, "
                "call_center)",
                (int)lit->len, lit->s, rules_hint_text(&h, hint, sizeof hint));
}

static int parse_or(parser *p, expr **out);

static int parse_list(parser *p, const expr *lhs, expr *list)
{
    size_t pos = p->tok.pos;
    int rc = expect(p, T_LBRACKET, "a list like [\"Y\", \"W\"] after 'in'");
    if (rc)
        return rc;
    size_t cap = 0, n = 0;
    token *items = NULL;
    while (p->tok.kind != T_RBRACKET) {
        token t = p->tok;
        if (t.kind != T_STRING && t.kind != T_NUMBER && t.kind != T_DURATION) {
            char buf[64];
            rc = perr(p, t.pos, "a list holds literal text or numbers, found %s",
                      tok_text(p, &t, buf, sizeof buf));
            goto out;
        }
        if (t.kind == T_STRING) {
            rc = check_channel(p, lhs, &t.str, t.pos);
            if (rc)
                goto out;
        }
        if (n && t.kind != items[0].kind) {
            rc = perr(p, t.pos,
                      "all items of a list must be of one kind (text, numbers or "
                      "durations)");
            goto out;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            token *grown = realloc(items, cap * sizeof *items);
            if (!grown) {
                rc = -ENOMEM;
                goto out;
            }
            items = grown;
        }
        items[n++] = t;
        rc = next(p);
        if (rc)
            goto out;
        if (p->tok.kind == T_COMMA) {
            rc = next(p);
            if (rc)
                goto out;
        } else if (p->tok.kind != T_RBRACKET) {
            char buf[64];
            rc = perr(p, p->tok.pos, "expected ',' or ']' in the list, found %s",
                      tok_text(p, &p->tok, buf, sizeof buf));
            goto out;
        }
    }
    rc = next(p);
    if (rc)
        goto out;
    list->op = EX_LIST;
    list->pos = pos;
    list->n = n;
    list->list_type = !n                          ? RT_DYNAMIC
                      : items[0].kind == T_STRING ? RT_STRING
                      : items[0].kind == T_NUMBER ? RT_NUMBER
                                                  : RT_DURATION;
    if (n && list->list_type == RT_STRING) {
        list->strs = rules_alloc(p->c, n * sizeof *list->strs);
        if (!list->strs) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            list->strs[i] = items[i].str;
    } else if (n) {
        list->nums = rules_alloc(p->c, n * sizeof *list->nums);
        if (!list->nums) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            list->nums[i] = items[i].num;
    }
out:
    free(items);
    return rc;
}

/* count(incidents[, filter]) and any(incidents[, filter]) */
static int parse_aggregate(parser *p, expr *e, const char *fn)
{
    if (p->scope == FS_FILTER)
        return perr(p, e->pos, "%s() cannot be used inside another count() or any()", fn);
    if (p->tok.kind != T_NAME || !name_is(&p->tok, "incidents"))
        return perr(p, p->tok.pos, "%s() looks at incidents: write %s(incidents, <filter>)", fn,
                    fn);
    int rc = next(p);
    if (rc)
        return rc;
    e->n = 0;
    e->u.kids = NULL;
    if (p->tok.kind == T_COMMA) {
        rc = next(p);
        if (rc)
            return rc;
        expr *filter;
        p->scope = FS_FILTER;
        rc = parse_or(p, &filter);
        p->scope = FS_CONDITION;
        if (rc)
            return rc;
        rc = need_bool(p, filter, "the incident filter");
        if (rc)
            return rc;
        e->u.kids = kids(p, 1);
        if (!e->u.kids)
            return -ENOMEM;
        e->u.kids[0] = filter;
        e->n = 1;
    }
    return 0;
}

static int parse_call(parser *p, const token *name, expr **out)
{
    static const struct {
        const char *name;
        expr_op op;
        rules_type type;
        size_t args; /* for the text functions */
    } fns[] = {
        {"count", EX_COUNT, RT_NUMBER, 0},     {"any", EX_ANY, RT_BOOL, 0},
        {"lower", EX_LOWER, RT_STRING, 1},     {"starts_with", EX_STARTS_WITH, RT_BOOL, 2},
        {"contains", EX_CONTAINS, RT_BOOL, 2}, {"speaks", EX_SPEAKS, RT_BOOL, 1},
    };
    size_t k;
    for (k = 0; k < sizeof fns / sizeof fns[0]; k++)
        if (name_is(name, fns[k].name))
            break;
    if (k == sizeof fns / sizeof fns[0]) {
        rules_hint h;
        char hint[96];
        rules_hint_init(&h, name->str.s, name->str.len);
        for (k = 0; k < sizeof fns / sizeof fns[0]; k++)
            rules_hint_try(&h, fns[k].name);
        return perr(p, name->pos,
                    "unknown function '%.*s'%s (functions: count, any, lower, starts_with, "
                    "contains, speaks)",
                    (int)name->str.len, name->str.s, rules_hint_text(&h, hint, sizeof hint));
    }
    expr *e = node(p, fns[k].op, fns[k].type, name->pos);
    if (!e)
        return -ENOMEM;
    int rc = next(p); /* the '(' */
    if (rc)
        return rc;
    if (fns[k].op == EX_COUNT || fns[k].op == EX_ANY) {
        rc = parse_aggregate(p, e, fns[k].name);
        if (rc)
            return rc;
    } else {
        expr *args[2];
        size_t n = 0;
        while (p->tok.kind != T_RPAREN) {
            if (n == fns[k].args)
                return perr(p, p->tok.pos, "%s() takes %zu argument%s", fns[k].name, fns[k].args,
                            fns[k].args == 1 ? "" : "s");
            rc = parse_or(p, &args[n]);
            if (rc)
                return rc;
            rc = need_text(p, args[n], fns[k].name);
            if (rc)
                return rc;
            n++;
            if (p->tok.kind != T_COMMA)
                break;
            rc = next(p);
            if (rc)
                return rc;
        }
        if (n != fns[k].args)
            return perr(p, name->pos, "%s() takes %zu argument%s, found %zu", fns[k].name,
                        fns[k].args, fns[k].args == 1 ? "" : "s", n);
        e->u.kids = kids(p, n);
        if (!e->u.kids)
            return -ENOMEM;
        memcpy(e->u.kids, args, n * sizeof args[0]);
        e->n = n;
    }
    rc = expect(p, T_RPAREN, "')' to close the call");
    if (rc)
        return rc;
    *out = e;
    return 0;
}

static int parse_operand(parser *p, expr **out)
{
    token t = p->tok;
    expr *e;
    int rc;
    char buf[64];

    switch (t.kind) {
    case T_NUMBER:
    case T_DURATION:
        e = node(p, EX_NUMBER, t.kind == T_NUMBER ? RT_NUMBER : RT_DURATION, t.pos);
        if (!e)
            return -ENOMEM;
        e->u.num = t.num;
        break;
    case T_STRING:
        e = node(p, EX_STRING, RT_STRING, t.pos);
        if (!e)
            return -ENOMEM;
        e->u.str = t.str;
        break;
    case T_TRUE:
    case T_FALSE:
        e = node(p, EX_BOOL, RT_BOOL, t.pos);
        if (!e)
            return -ENOMEM;
        e->u.b = t.kind == T_TRUE;
        break;
    case T_LPAREN:
        rc = next(p);
        if (rc)
            return rc;
        rc = parse_or(p, &e);
        if (rc)
            return rc;
        if (p->tok.kind != T_RPAREN)
            return perr(p, p->tok.pos, "expected ')' to close the '(', found %s",
                        tok_text(p, &p->tok, buf, sizeof buf));
        break;
    case T_LBRACKET:
        return perr(p, t.pos, "a list can only follow 'in', as in x in [\"a\", \"b\"]");
    case T_NAME:
        rc = next(p);
        if (rc)
            return rc;
        if (p->tok.kind == T_LPAREN)
            return parse_call(p, &t, out);
        if (name_is(&t, "incidents"))
            return perr(p, t.pos,
                        "'incidents' is a list: use count(incidents, ...) or "
                        "any(incidents, ...)");
        e = node(p, EX_PATH, RT_BOOL, t.pos);
        if (!e)
            return -ENOMEM;
        {
            char msg[400];
            rc = fact_path_resolve(p->c, t.str.s, t.str.len, p->scope, &e->u.path, msg, sizeof msg);
            if (rc == -EINVAL)
                return perr(p, t.pos, "%s", msg);
            if (rc)
                return rc;
        }
        e->type = e->u.path.type;
        *out = e;
        return 0;
    case T_EOF:
        return perr(p, t.pos, "the condition ends where a value was expected");
    default:
        return perr(p, t.pos, "expected a value, a name or '(', found %s",
                    tok_text(p, &t, buf, sizeof buf));
    }
    *out = e;
    return next(p);
}

static bool is_cmp(tok_kind k)
{
    return k == T_EQ || k == T_NE || k == T_LT || k == T_LE || k == T_GT || k == T_GE;
}

static int type_compare(parser *p, expr *l, expr *r, size_t op_pos, expr_cmp cmp)
{
    if (l->type == RT_DYNAMIC && r->type == RT_DYNAMIC) {
        as_text(l);
        as_text(r);
    } else if (l->type == RT_DYNAMIC) {
        if (r->type == RT_NUMBER)
            as_number(l);
        else if (r->type == RT_STRING)
            as_text(l);
    } else if (r->type == RT_DYNAMIC) {
        if (l->type == RT_NUMBER)
            as_number(r);
        else if (l->type == RT_STRING)
            as_text(r);
    }
    if (l->type != r->type) {
        const char *extra = "";
        if ((l->type == RT_DURATION && r->type == RT_NUMBER) ||
            (l->type == RT_NUMBER && r->type == RT_DURATION))
            extra = " (write a duration with its unit: 180d, 6h, 30m, 45s)";
        return perr(p, op_pos, "cannot compare a %s with a %s%s", rules_type_name(l->type),
                    rules_type_name(r->type), extra);
    }
    if (l->type == RT_DYNAMIC || l->type == RT_INCIDENTS)
        return perr(p, op_pos, "cannot compare a %s", rules_type_name(l->type));
    if (l->type == RT_BOOL && cmp != CMP_EQ && cmp != CMP_NE)
        return perr(p, op_pos, "true/false can only be compared with == or !=");
    if (r->op == EX_STRING) {
        int rc = check_channel(p, l, &r->u.str, r->pos);
        if (rc)
            return rc;
    }
    if (l->op == EX_STRING)
        return check_channel(p, r, &l->u.str, l->pos);
    return 0;
}

static int parse_compare(parser *p, expr **out)
{
    expr *l, *r;
    int rc = parse_operand(p, &l);
    if (rc)
        return rc;
    token op = p->tok;
    if (is_cmp(op.kind)) {
        rc = next(p);
        if (rc)
            return rc;
        rc = parse_operand(p, &r);
        if (rc)
            return rc;
        static const expr_cmp cmps[] = {[T_EQ] = CMP_EQ, [T_NE] = CMP_NE, [T_LT] = CMP_LT,
                                        [T_LE] = CMP_LE, [T_GT] = CMP_GT, [T_GE] = CMP_GE};
        expr_cmp cmp = cmps[op.kind];
        rc = type_compare(p, l, r, op.pos, cmp);
        if (rc)
            return rc;
        expr *e = node(p, EX_CMP, RT_BOOL, l->pos);
        if (!e || !(e->u.kids = kids(p, 2)))
            return -ENOMEM;
        e->cmp = cmp;
        e->operand = l->type == RT_DURATION ? RT_NUMBER : l->type;
        e->u.kids[0] = l;
        e->u.kids[1] = r;
        e->n = 2;
        if (is_cmp(p->tok.kind))
            return perr(p, p->tok.pos, "comparisons do not chain: join them with 'and'");
        *out = e;
        return 0;
    }
    if (op.kind == T_IN || op.kind == T_NOT) {
        bool negate = op.kind == T_NOT;
        rc = next(p);
        if (rc)
            return rc;
        if (negate) {
            rc = expect(p, T_IN, "'in' after 'not' (as in x not in [\"a\"])");
            if (rc)
                return rc;
        }
        r = node(p, EX_LIST, RT_DYNAMIC, p->tok.pos);
        if (!r)
            return -ENOMEM;
        rc = parse_list(p, l, r);
        if (rc)
            return rc;
        if (l->type == RT_DYNAMIC) {
            if (r->list_type == RT_NUMBER)
                as_number(l);
            else
                as_text(l);
        }
        if (r->list_type == RT_DYNAMIC &&
            (l->type == RT_STRING || l->type == RT_NUMBER || l->type == RT_DURATION))
            r->list_type = l->type; /* an empty list holds anything */
        if (l->type != r->list_type)
            return perr(p, op.pos, "cannot look for a %s in %s", rules_type_name(l->type),
                        r->list_type == RT_STRING     ? "a list of text"
                        : r->list_type == RT_NUMBER   ? "a list of numbers"
                        : r->list_type == RT_DURATION ? "a list of durations"
                                                      : "a list");
        expr *e = node(p, EX_IN, RT_BOOL, l->pos);
        if (!e || !(e->u.kids = kids(p, 2)))
            return -ENOMEM;
        e->negate = negate;
        e->operand = l->type == RT_DURATION ? RT_NUMBER : l->type;
        e->u.kids[0] = l;
        e->u.kids[1] = r;
        e->n = 2;
        *out = e;
        return 0;
    }
    *out = l;
    return 0;
}

static int enter(parser *p, size_t pos)
{
    if (++p->depth > RULES_MAX_DEPTH)
        return perr(p, pos, "condition nested too deeply (more than %d levels)", RULES_MAX_DEPTH);
    return 0;
}

static int parse_not(parser *p, expr **out)
{
    if (p->tok.kind != T_NOT)
        return parse_compare(p, out);
    size_t pos = p->tok.pos;
    int rc = enter(p, pos);
    if (rc)
        return rc;
    rc = next(p);
    if (rc)
        return rc;
    expr *x;
    rc = parse_not(p, &x);
    if (rc)
        return rc;
    rc = need_bool(p, x, "'not'");
    if (rc)
        return rc;
    p->depth--;
    expr *e = node(p, EX_NOT, RT_BOOL, pos);
    if (!e || !(e->u.kids = kids(p, 1)))
        return -ENOMEM;
    e->u.kids[0] = x;
    e->n = 1;
    *out = e;
    return 0;
}

/* One level of `and` or `or`: operands collected into one n-ary node. */
static int parse_chain(parser *p, tok_kind sep, expr_op op, int (*sub)(parser *, expr **),
                       expr **out)
{
    expr *first;
    int rc = sub(p, &first);
    if (rc)
        return rc;
    if (p->tok.kind != sep) {
        *out = first;
        return 0;
    }
    const char *what = sep == T_AND ? "'and'" : "'or'";
    size_t cap = 4, n = 0;
    expr **items = malloc(cap * sizeof *items);
    if (!items)
        return -ENOMEM;
    items[n++] = first;
    rc = need_bool(p, first, what);
    while (!rc && p->tok.kind == sep) {
        rc = next(p);
        if (rc)
            break;
        expr *x;
        rc = sub(p, &x);
        if (rc)
            break;
        rc = need_bool(p, x, what);
        if (rc)
            break;
        if (n == cap) {
            cap *= 2;
            expr **grown = realloc(items, cap * sizeof *items);
            if (!grown) {
                rc = -ENOMEM;
                break;
            }
            items = grown;
        }
        items[n++] = x;
    }
    if (!rc) {
        expr *e = node(p, op, RT_BOOL, first->pos);
        if (!e || !(e->u.kids = kids(p, n))) {
            rc = -ENOMEM;
        } else {
            memcpy(e->u.kids, items, n * sizeof *items);
            e->n = n;
            *out = e;
        }
    }
    free(items);
    return rc;
}

static int parse_and(parser *p, expr **out)
{
    return parse_chain(p, T_AND, EX_AND, parse_not, out);
}

static int parse_or(parser *p, expr **out)
{
    int rc = enter(p, p->tok.pos);
    if (rc)
        return rc;
    rc = parse_chain(p, T_OR, EX_OR, parse_and, out);
    p->depth--;
    return rc;
}

int expr_compile(rules_compiler *c, const yaml_node_t *n, expr **out)
{
    parser p = {
        .c = c,
        .node = n,
        .text = (const char *)n->data.scalar.value,
        .len = n->data.scalar.length,
        .scope = FS_CONDITION,
    };
    int rc = next(&p);
    if (rc)
        return rc;
    if (p.tok.kind == T_EOF)
        return perr(&p, 0, "the condition is empty");
    expr *e;
    rc = parse_or(&p, &e);
    if (rc)
        return rc;
    if (p.tok.kind != T_EOF) {
        char buf[64];
        return perr(&p, p.tok.pos, "expected 'and', 'or' or the end of the condition, found %s",
                    tok_text(&p, &p.tok, buf, sizeof buf));
    }
    rc = need_bool(&p, e, "'when'");
    if (rc)
        return rc;
    *out = e;
    return 0;
}
