/* expr.c - the condition language of `when:`, compiled into a typed tree.
 *
 *   condition := or
 *   or        := and ('or' and)*
 *   and       := not ('and' not)*
 *   not       := 'not' not | compare
 *   compare   := operand (('==' | '!=' | '<' | '<=' | '>' | '>=') operand
 *                         | 'in' list | 'not' 'in' list)?
 *   operand   := number | duration | time | string | true | false | path
 *              | name '(' arguments ')' | '(' or ')'
 *   list      := '[' (literal (',' literal)* ','?)? ']'
 *   duration  := (number unit)+        90d, 6h, 1h30m
 *   time      := YYYY-MM-DD('T'hh:mm(:ss)?('Z'|offset))?
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

#include "clock.h"

typedef enum tok_kind {
    T_EOF,
    T_NUMBER,
    T_DURATION,
    T_TIME,
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
    double num; /* T_NUMBER, T_DURATION (in ms), T_TIME (unix ms) */
    strv str;   /* T_STRING, unescaped; T_NAME, as written */
} token;

typedef struct parser {
    rules_compiler *c;
    const yaml_node_t *node;
    const char *text;
    size_t len;
    size_t at;       /* where the lexer reads next */
    token tok;       /* the current token */
    size_t prev_end; /* just past the token before the current one */
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
    return rules_error_scalar(p->c->src, p->node, pos, "%s", msg);
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

static const struct {
    const char *unit;
    double ms;
} duration_units[] = {{"ms", 1},     {"s", 1e3},     {"m", 60e3},
                      {"h", 3600e3}, {"d", 86400e3}, {"w", 7 * 86400e3}};

/* Digits (with '_' ignored) and at most one fraction at i; returns the end. */
static size_t scan_decimal(const parser *p, size_t i, double *out)
{
    const char *s = p->text;
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
    *out = strtod(buf, NULL);
    return i;
}

/* A unit at i (letters); returns its factor, or 0 with *end set anyway. */
static double scan_unit(const parser *p, size_t i, size_t *end)
{
    const char *s = p->text;
    size_t u = i;
    while (i < p->len && is_alpha(s[i]))
        i++;
    *end = i;
    size_t ulen = i - u;
    for (size_t k = 0; k < sizeof duration_units / sizeof duration_units[0]; k++)
        if (strlen(duration_units[k].unit) == ulen &&
            memcmp(duration_units[k].unit, s + u, ulen) == 0)
            return duration_units[k].ms;
    return 0;
}

static int lex_number(parser *p, token *t)
{
    const char *s = p->text;
    size_t i = scan_decimal(p, p->at, &t->num);
    t->kind = T_NUMBER;
    if (i < p->len && is_alpha(s[i])) {
        /* a duration: one or more number-unit pairs, 90d or 1h30m */
        double total = 0, x = t->num;
        for (;;) {
            size_t u = i, end;
            double ms = scan_unit(p, i, &end);
            if (!ms)
                return perr(p, u,
                            "unknown unit '%.*s' after a number (durations are written 90d, 6h, "
                            "1h30m, 45s, 500ms or 2w)",
                            (int)(end - u), s + u);
            total += x * ms;
            i = end;
            if (i >= p->len || !is_digit(s[i]))
                break;
            i = scan_decimal(p, i, &x);
            if (i >= p->len || !is_alpha(s[i]))
                return perr(p, i, "a duration like 1h30m needs a unit after each number");
        }
        t->num = total;
        t->kind = T_DURATION;
    }
    p->at = i;
    return 0;
}

/* 2026-11-01 or 2026-11-01T08:30:00Z at p->at? */
static bool looks_like_time(const parser *p)
{
    const char *s = p->text + p->at;
    size_t left = p->len - p->at;
    if (left < 10)
        return false;
    for (size_t i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? s[i] != '-' : !is_digit(s[i]))
            return false;
    }
    return true;
}

static int lex_time(parser *p, token *t)
{
    const char *s = p->text;
    size_t i = p->at;
    while (i < p->len && (is_digit(s[i]) || s[i] == '-' || s[i] == ':' || s[i] == '.' ||
                          s[i] == '+' || s[i] == 'T' || s[i] == 'Z'))
        i++;
    int64_t ms;
    if (clock_parse_iso8601(s + p->at, i - p->at, &ms) != 0)
        return perr(p, p->at,
                    "'%.*s' is not a date or time (write 2026-11-01, or 2026-11-01T08:30:00Z "
                    "in UTC)",
                    (int)(i - p->at), s + p->at);
    t->kind = T_TIME;
    t->num = (double)ms;
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
    p->prev_end = t->pos + t->len;
    memset(t, 0, sizeof *t);
    t->pos = p->at;
    if (p->at >= p->len) {
        t->kind = T_EOF;
        return 0;
    }
    char ch = s[p->at];
    char nx = p->at + 1 < p->len ? s[p->at + 1] : '\0';
    int rc = 0;
    if (is_digit(ch) && looks_like_time(p))
        rc = lex_time(p, t);
    else if (is_digit(ch) || (ch == '-' && is_digit(nx)))
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
    e->end = pos;
    return e;
}

static expr **kids(parser *p, size_t n)
{
    return rules_alloc(p->c, (n ? n : 1) * sizeof(expr *));
}

/* customer.<attribute> is typed by what it meets: text next to text,
 * number next to a number. */
static void as_text(expr *e)
{
    if (e->type == RT_DYNAMIC && e->op == EX_PATH) {
        e->u.path.field = FF_CUSTOMER_ATTR_TEXT;
        e->u.path.type = e->type = RT_STRING;
    }
}

static void as_number(expr *e)
{
    if (e->type == RT_DYNAMIC && e->op == EX_PATH) {
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
                    "number: compare it, e.g. customer.%s == \"yes\"; hint: or declare it as "
                    "bool under 'attributes'",
                    where, e->op == EX_PATH ? e->u.path.key : "x");
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

/* event.channel (or a history entry's channel) compared with a literal:
 * the literal must be a channel. */
static int check_channel(parser *p, const expr *path, const strv *lit, size_t pos)
{
    if (path->op != EX_PATH ||
        (path->u.path.field != FF_EVENT_CHANNEL && path->u.path.field != FF_HISTORY_CHANNEL) ||
        lit->len == 0)
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

static rules_type token_type(tok_kind k)
{
    return k == T_STRING   ? RT_STRING
           : k == T_NUMBER ? RT_NUMBER
           : k == T_TIME   ? RT_TIME
                           : RT_DURATION;
}

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
        if (t.kind != T_STRING && t.kind != T_NUMBER && t.kind != T_DURATION && t.kind != T_TIME) {
            char buf[64];
            rc = perr(p, t.pos, "a list holds literal text, numbers, durations or times, found %s",
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
                      "all items of a list must be of one kind (text, numbers, durations or "
                      "times)");
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
    list->end = p->prev_end;
    list->n = n;
    list->list_type = n ? token_type(items[0].kind) : RT_DYNAMIC;
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

/* An expression over one incident or one history entry (filter scope). */
static int parse_in_filter(parser *p, fact_field over, expr **out)
{
    p->scope = over == FF_HISTORY ? FS_HISTORY : FS_FILTER;
    int rc = parse_or(p, out);
    p->scope = FS_CONDITION;
    return rc;
}

/* count(incidents[, filter]), any(incidents[, filter]),
 * sum|max|min|latest(incidents, value[, filter]); the same over history. */
static int parse_aggregate(parser *p, expr *e, const char *fn)
{
    bool valued = e->op != EX_COUNT && e->op != EX_ANY;
    if (p->scope == FS_FILTER || p->scope == FS_HISTORY)
        return perr(p, e->pos, "%s() cannot be used inside another aggregate over %s", fn,
                    p->scope == FS_FILTER ? "incidents" : "the history");
    bool history = p->tok.kind == T_NAME && name_is(&p->tok, "history");
    if (p->tok.kind != T_NAME || (!history && !name_is(&p->tok, "incidents"))) {
        rules_hint h;
        char hint[96];
        if (p->tok.kind == T_NAME) {
            rules_hint_init(&h, p->tok.str.s, p->tok.str.len);
            rules_hint_try(&h, "incidents");
            rules_hint_try(&h, "history");
        }
        return perr(p, p->tok.pos,
                    "%s() looks at incidents or the contact history: write %s(incidents, %s) or "
                    "%s(history, %s)%s",
                    fn, fn, valued ? "<value>[, <filter>]" : "<filter>", fn,
                    valued ? "<value>[, <filter>]" : "<filter>",
                    p->tok.kind == T_NAME ? rules_hint_text(&h, hint, sizeof hint) : "");
    }
    e->over = history ? FF_HISTORY : FF_INCIDENTS;
    const char *coll = history ? "history" : "incidents";
    int rc = next(p);
    if (rc)
        return rc;
    if (valued) {
        if (p->tok.kind != T_COMMA)
            return perr(p, p->tok.pos,
                        history ? "%s() needs the value to look at: %s(%s, at) or "
                                  "%s(%s, at, action == \"upgrade\")"
                                : "%s() needs the value to look at: %s(%s, severity) or "
                                  "%s(%s, severity, open)",
                        fn, fn, coll, fn, coll);
        rc = next(p);
        if (rc)
            return rc;
        expr *value;
        rc = parse_in_filter(p, e->over, &value);
        if (rc)
            return rc;
        if (value->type == RT_DYNAMIC) {
            if (e->op == EX_LATEST)
                as_text(value);
            else
                as_number(value);
        }
        bool ok = e->op == EX_SUM      ? value->type == RT_NUMBER || value->type == RT_DURATION
                  : e->op == EX_LATEST ? value->type != RT_INCIDENTS
                                       : rules_type_numeric(value->type);
        if (!ok)
            return perr(p, value->pos, "%s() cannot look at a %s%s", fn,
                        rules_type_name(value->type),
                        e->op == EX_SUM      ? " (it adds numbers or durations)"
                        : e->op == EX_LATEST ? ""
                                             : " (it compares numbers, durations "
                                               "or times)");
        e->value = value;
        e->type = value->type;
    }
    if (p->tok.kind == T_COMMA) {
        rc = next(p);
        if (rc)
            return rc;
        expr *filter;
        rc = parse_in_filter(p, e->over, &filter);
        if (rc)
            return rc;
        rc = need_bool(p, filter, history ? "the history filter" : "the incident filter");
        if (rc)
            return rc;
        e->filter = filter;
    }
    return 0;
}

static const struct {
    const char *name;
    expr_op op;
    rules_type type;
    size_t args; /* for the functions that are not aggregates */
} functions[] = {
    {"count", EX_COUNT, RT_NUMBER, 0},
    {"any", EX_ANY, RT_BOOL, 0},
    {"sum", EX_SUM, RT_NUMBER, 0},
    {"max", EX_MAX, RT_NUMBER, 0},
    {"min", EX_MIN, RT_NUMBER, 0},
    {"latest", EX_LATEST, RT_NUMBER, 0},
    {"lower", EX_LOWER, RT_STRING, 1},
    {"starts_with", EX_STARTS_WITH, RT_BOOL, 2},
    {"contains", EX_CONTAINS, RT_BOOL, 2},
    {"speaks", EX_SPEAKS, RT_BOOL, 1},
    {"has", EX_HAS, RT_BOOL, 1},
    {"age", EX_AGE, RT_DURATION, 1},
    {"days_since", EX_DAYS_SINCE, RT_NUMBER, 1},
};
#define N_FUNCTIONS (sizeof functions / sizeof functions[0])

/* The argument of a function that is not about text. */
static int check_arg(parser *p, expr_op op, expr *arg, const char *fn)
{
    switch (op) {
    case EX_HAS:
        if (arg->op == EX_BOOL || arg->op == EX_NUMBER || arg->op == EX_STRING ||
            arg->type == RT_INCIDENTS)
            return perr(p, arg->pos,
                        "has() tells whether a value is there: give it a name such as "
                        "customer.segment or event.context.cabin");
        return 0;
    case EX_AGE:
    case EX_DAYS_SINCE:
        if (arg->type != RT_TIME)
            return perr(p, arg->pos,
                        "%s() takes a time (such as event.time, occurred_at, latest(history, "
                        "at) or an attribute declared as time), found a %s",
                        fn, rules_type_name(arg->type));
        return 0;
    default:
        return need_text(p, arg, fn);
    }
}

static int parse_call(parser *p, const token *name, expr **out)
{
    size_t k;
    for (k = 0; k < N_FUNCTIONS; k++)
        if (name_is(name, functions[k].name))
            break;
    if (k == N_FUNCTIONS) {
        rules_hint h;
        char hint[96];
        rules_hint_init(&h, name->str.s, name->str.len);
        for (k = 0; k < N_FUNCTIONS; k++)
            rules_hint_try(&h, functions[k].name);
        return perr(p, name->pos,
                    "unknown function '%.*s'%s (functions: count, any, sum, max, min, latest, "
                    "lower, starts_with, contains, speaks, has, age, days_since)",
                    (int)name->str.len, name->str.s, rules_hint_text(&h, hint, sizeof hint));
    }
    expr *e = node(p, functions[k].op, functions[k].type, name->pos);
    if (!e)
        return -ENOMEM;
    int rc = next(p); /* the '(' */
    if (rc)
        return rc;
    if (expr_is_aggregate(functions[k].op)) {
        rc = parse_aggregate(p, e, functions[k].name);
        if (rc)
            return rc;
    } else {
        expr *args[2];
        size_t n = 0;
        while (p->tok.kind != T_RPAREN) {
            if (n == functions[k].args)
                return perr(p, p->tok.pos, "%s() takes %zu argument%s", functions[k].name,
                            functions[k].args, functions[k].args == 1 ? "" : "s");
            rc = parse_or(p, &args[n]);
            if (rc)
                return rc;
            rc = check_arg(p, functions[k].op, args[n], functions[k].name);
            if (rc)
                return rc;
            n++;
            if (p->tok.kind != T_COMMA)
                break;
            rc = next(p);
            if (rc)
                return rc;
        }
        if (n != functions[k].args)
            return perr(p, name->pos, "%s() takes %zu argument%s, found %zu", functions[k].name,
                        functions[k].args, functions[k].args == 1 ? "" : "s", n);
        e->u.kids = kids(p, n);
        if (!e->u.kids)
            return -ENOMEM;
        memcpy(e->u.kids, args, n * sizeof args[0]);
        e->n = n;
    }
    rc = expect(p, T_RPAREN, "')' to close the call");
    if (rc)
        return rc;
    e->end = p->prev_end;
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
    case T_TIME:
        e = node(p, EX_NUMBER, token_type(t.kind), t.pos);
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
        rc = next(p);
        if (rc)
            return rc;
        /* the parentheses belong to the text shown for it */
        e->pos = t.pos;
        e->end = p->prev_end;
        *out = e;
        return 0;
    case T_LBRACKET:
        return perr(p, t.pos, "a list can only follow 'in', as in x in [\"a\", \"b\"]");
    case T_NAME:
        rc = next(p);
        if (rc)
            return rc;
        if (p->tok.kind == T_LPAREN)
            return parse_call(p, &t, out);
        if (name_is(&t, "incidents") || name_is(&t, "history"))
            return perr(p, t.pos,
                        "'%.*s' is a list: use count(%.*s, ...), any(%.*s, ...) or another "
                        "aggregate",
                        (int)t.str.len, t.str.s, (int)t.str.len, t.str.s, (int)t.str.len, t.str.s);
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
        e->end = p->prev_end;
        *out = e;
        return 0;
    case T_EOF:
        return perr(p, t.pos, "the condition ends where a value was expected");
    default:
        return perr(p, t.pos, "expected a value, a name or '(', found %s",
                    tok_text(p, &t, buf, sizeof buf));
    }
    rc = next(p);
    if (rc)
        return rc;
    e->end = p->prev_end;
    *out = e;
    return 0;
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
        else if (l->type == RT_TIME || r->type == RT_TIME)
            extra = "; hint: a time compares with a time (2026-11-01); for how long ago, use "
                    "age(...) or days_since(...)";
        else if (l->type == RT_DYNAMIC || r->type == RT_DYNAMIC)
            extra = "; hint: declare the attribute's type under 'attributes'";
        else if ((l->type == RT_NUMBER && r->op == EX_STRING) ||
                 (r->type == RT_NUMBER && l->op == EX_STRING))
            extra = "; hint: write the number without quotes";
        else if ((l->type == RT_STRING && r->op == EX_NUMBER) ||
                 (r->type == RT_STRING && l->op == EX_NUMBER))
            extra = "; hint: a text is written in quotes, \"3\"";
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

static rules_type operand_of(rules_type t)
{
    return rules_type_numeric(t) ? RT_NUMBER : t;
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
        e->operand = operand_of(l->type);
        e->u.kids[0] = l;
        e->u.kids[1] = r;
        e->n = 2;
        e->end = r->end;
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
        if (r->list_type == RT_DYNAMIC && (l->type == RT_STRING || rules_type_numeric(l->type)))
            r->list_type = l->type; /* an empty list holds anything */
        if (l->type != r->list_type)
            return perr(p, op.pos, "cannot look for a %s in %s", rules_type_name(l->type),
                        r->list_type == RT_STRING     ? "a list of text"
                        : r->list_type == RT_NUMBER   ? "a list of numbers"
                        : r->list_type == RT_DURATION ? "a list of durations"
                        : r->list_type == RT_TIME     ? "a list of times"
                                                      : "a list");
        expr *e = node(p, EX_IN, RT_BOOL, l->pos);
        if (!e || !(e->u.kids = kids(p, 2)))
            return -ENOMEM;
        e->negate = negate;
        e->operand = operand_of(l->type);
        e->u.kids[0] = l;
        e->u.kids[1] = r;
        e->n = 2;
        e->end = r->end;
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
    e->end = x->end;
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
            e->end = items[n - 1]->end;
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

static int parse_whole(rules_compiler *c, const yaml_node_t *n, expr **out, parser *p)
{
    *p = (parser){
        .c = c,
        .node = n,
        .text = (const char *)n->data.scalar.value,
        .len = n->data.scalar.length,
        .scope = FS_CONDITION,
    };
    int rc = next(p);
    if (rc)
        return rc;
    if (p->tok.kind == T_EOF)
        return perr(p, 0, "the condition is empty");
    rc = parse_or(p, out);
    if (rc)
        return rc;
    if (p->tok.kind != T_EOF) {
        char buf[64];
        return perr(p, p->tok.pos, "expected 'and', 'or' or the end of the condition, found %s",
                    tok_text(p, &p->tok, buf, sizeof buf));
    }
    return 0;
}

int expr_compile(rules_compiler *c, const yaml_node_t *n, expr **out)
{
    parser p;
    expr *e = NULL; /* set on success; -O3 cannot tell */
    int rc = parse_whole(c, n, &e, &p);
    if (rc)
        return rc;
    rc = need_bool(&p, e, "'when'");
    if (rc)
        return rc;
    *out = e;
    return 0;
}

int expr_compile_value(rules_compiler *c, const yaml_node_t *n, expr **out)
{
    parser p;
    expr *e = NULL; /* set on success; -O3 cannot tell */
    int rc = parse_whole(c, n, &e, &p);
    if (rc)
        return rc;
    if (e->type == RT_INCIDENTS)
        return perr(&p, e->pos, "a table column needs one value, not a list of incidents");
    *out = e;
    return 0;
}

int expr_compile_duration(rules_compiler *c, const yaml_node_t *n, const char *what, double *ms)
{
    const char *text = (const char *)n->data.scalar.value;
    parser p = {
        .c = c, .node = n, .text = text, .len = n->data.scalar.length, .scope = FS_CONDITION};
    int rc = next(&p);
    if (rc)
        return rc;
    token t = p.tok;
    if (t.kind == T_DURATION) {
        rc = next(&p);
        if (rc)
            return rc;
        if (p.tok.kind == T_EOF && t.num > 0) {
            *ms = t.num;
            return 0;
        }
        if (p.tok.kind == T_EOF)
            return perr(&p, t.pos, "%s must be longer than nothing", what);
        t = p.tok;
    }
    return perr(&p, t.kind == T_EOF ? 0 : t.pos,
                "%s must be a duration such as 30d, 12h or 1h30m%s", what,
                t.kind == T_NUMBER ? " (write the unit)" : "");
}

bool expr_equal(const expr *a, const expr *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->op != b->op || a->type != b->type || a->n != b->n)
        return false;
    switch (a->op) {
    case EX_BOOL:
        return a->u.b == b->u.b;
    case EX_NUMBER:
        return a->u.num == b->u.num;
    case EX_STRING:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case EX_PATH:
        return a->u.path.field == b->u.path.field && a->u.path.type == b->u.path.type &&
               (a->u.path.key == b->u.path.key ||
                (a->u.path.key && b->u.path.key && strcmp(a->u.path.key, b->u.path.key) == 0));
    case EX_LIST:
        if (a->list_type != b->list_type)
            return false;
        for (size_t i = 0; i < a->n; i++) {
            if (a->list_type == RT_STRING
                    ? a->strs[i].len != b->strs[i].len ||
                          memcmp(a->strs[i].s, b->strs[i].s, a->strs[i].len) != 0
                    : a->nums[i] != b->nums[i])
                return false;
        }
        return true;
    case EX_COUNT:
    case EX_ANY:
    case EX_SUM:
    case EX_MAX:
    case EX_MIN:
    case EX_LATEST:
        return a->over == b->over && expr_equal(a->filter, b->filter) &&
               expr_equal(a->value, b->value);
    default:
        if (a->cmp != b->cmp || a->negate != b->negate)
            return false;
        for (size_t i = 0; i < a->n; i++)
            if (!expr_equal(a->u.kids[i], b->u.kids[i]))
                return false;
        return true;
    }
}

/* ---- pieces for decision tables ---- */

expr *expr_new(rules_compiler *c, expr_op op, rules_type type, size_t n_kids)
{
    expr *e = rules_alloc(c, sizeof *e);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    e->op = op;
    e->type = type;
    if (n_kids) {
        e->u.kids = rules_alloc(c, n_kids * sizeof(expr *));
        if (!e->u.kids)
            return NULL;
        e->n = n_kids;
    }
    return e;
}

void expr_settle_dynamic(expr *e, rules_type t)
{
    if (t == RT_NUMBER)
        as_number(e);
    else
        as_text(e);
}

static bool blank_char(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

int expr_compile_literal(rules_compiler *c, const yaml_node_t *n, size_t from, size_t to,
                         rules_type want, expr **out)
{
    const char *text = (const char *)n->data.scalar.value;
    while (from < to && blank_char(text[from]))
        from++;
    while (to > from && blank_char(text[to - 1]))
        to--;
    parser p = {.c = c, .node = n, .text = text, .len = to, .at = from, .scope = FS_CONDITION};
    if (from == to)
        return perr(&p, from, "expected a %s here", rules_type_name(want));
    expr *e = node(&p, EX_STRING, want, from);
    if (!e)
        return -ENOMEM;
    e->end = to;
    /* text: as written, unless quoted */
    if (want == RT_STRING && text[from] != '"' && text[from] != '\'') {
        e->u.str.s = rules_strndup(c, text + from, to - from);
        if (!e->u.str.s)
            return -ENOMEM;
        e->u.str.len = to - from;
        *out = e;
        return 0;
    }
    int rc = next(&p);
    if (rc)
        return rc;
    token t = p.tok;
    rc = next(&p);
    if (rc)
        return rc;
    if (p.tok.kind != T_EOF)
        return perr(&p, p.tok.pos, "expected one %s here, found more", rules_type_name(want));
    rules_type got = t.kind == T_STRING                      ? RT_STRING
                     : t.kind == T_TRUE || t.kind == T_FALSE ? RT_BOOL
                     : t.kind == T_NUMBER || t.kind == T_DURATION || t.kind == T_TIME
                         ? token_type(t.kind)
                         : RT_INCIDENTS;
    if (got != want) {
        char buf[64];
        return perr(&p, t.pos, "this column holds a %s, found %s", rules_type_name(want),
                    got == RT_INCIDENTS ? tok_text(&p, &t, buf, sizeof buf) : rules_type_name(got));
    }
    switch (got) {
    case RT_STRING:
        e->u.str = t.str;
        break;
    case RT_BOOL:
        e->op = EX_BOOL;
        e->u.b = t.kind == T_TRUE;
        break;
    default:
        e->op = EX_NUMBER;
        e->u.num = t.num;
        break;
    }
    *out = e;
    return 0;
}
