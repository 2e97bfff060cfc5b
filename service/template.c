/* template.c - texts with {{placeholders}}: messages, params, language.
 *
 * A text compiles into segments, each a literal part followed by at most
 * one placeholder whose path is already resolved to a field and whose label
 * table is already found. Rendering reads the fields, translates through
 * labels, measures, and copies once into the decision's arena.
 *
 *   {{customer.name}}                      the value as it is
 *   {{incident.kind | incident_kinds}}     translated through
 *                                          labels.incident_kinds.<value>.<language>
 */
#include "rules_internal.h"

#include <errno.h>
#include <string.h>

static bool path_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.';
}

static size_t skip_blank(const char *s, size_t i, size_t end)
{
    while (i < end && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

/* Parses the placeholder between `open` (at "{{") and `close` (at "}}"). */
static int placeholder(rules_compiler *c, const yaml_node_t *n, size_t open, size_t close,
                       tmpl_seg *seg)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t i = skip_blank(s, open + 2, close);
    size_t p0 = i;
    while (i < close && path_char(s[i]))
        i++;
    size_t p1 = i;
    if (p0 == p1)
        return rules_error_scalar(c->src, n, p0 == close ? open : p0,
                                  p0 == close ? "empty placeholder: write {{customer.name}} or "
                                                "similar"
                                              : "bad placeholder: expected a name such as "
                                                "customer.name");
    i = skip_blank(s, i, close);
    size_t t0 = 0, t1 = 0;
    if (i < close && s[i] == '|') {
        i = skip_blank(s, i + 1, close);
        t0 = i;
        while (i < close && path_char(s[i]) && s[i] != '.')
            i++;
        t1 = i;
        if (t0 == t1)
            return rules_error_scalar(c->src, n, t0,
                                      "bad placeholder: expected a label table name after '|'");
        i = skip_blank(s, i, close);
    }
    if (i != close)
        return rules_error_scalar(c->src, n, i, "bad placeholder: expected '}}' or '| table' here");

    char msg[400];
    int rc = fact_path_resolve(c, s + p0, p1 - p0, FS_TEMPLATE, &seg->path, msg, sizeof msg);
    if (rc == -EINVAL)
        return rules_error_scalar(c->src, n, p0, "%s", msg);
    if (rc)
        return rc;
    seg->has_path = true;
    if (t1 > t0) {
        seg->labels = labels_find(c->rs, s + t0, t1 - t0);
        if (seg->labels)
            ((label_table *)seg->labels)->used = true; /* the compiler's mark */
        if (!seg->labels) {
            rules_hint h;
            char hint[96];
            rules_hint_init(&h, s + t0, t1 - t0);
            for (size_t k = 0; k < c->rs->n_labels; k++)
                rules_hint_try(&h, c->rs->labels[k].name);
            return rules_error_scalar(c->src, n, t0, "unknown label table '%.*s'%s", (int)(t1 - t0),
                                      s + t0, rules_hint_text(&h, hint, sizeof hint));
        }
    }
    return 0;
}

int tmpl_compile(rules_compiler *c, const yaml_node_t *n, tmpl **out)
{
    return tmpl_compile_range(c, n, 0, n->data.scalar.length, out);
}

int tmpl_compile_range(rules_compiler *c, const yaml_node_t *n, size_t from, size_t len, tmpl **out)
{
    const char *s = (const char *)n->data.scalar.value;
    tmpl_seg segs[RULES_MAX_SEGMENTS];
    size_t count = 0;
    size_t lit = from; /* start of the current literal part */
    size_t i = from;
    int rc;

    while (i + 1 < len) {
        if (!(s[i] == '{' && s[i + 1] == '{')) {
            i++;
            continue;
        }
        const char *close = NULL;
        for (size_t k = i + 2; k + 1 < len; k++) {
            if (s[k] == '}' && s[k + 1] == '}') {
                close = s + k;
                break;
            }
            if (s[k] == '{' && s[k + 1] == '{')
                break;
        }
        if (!close)
            return rules_error_scalar(c->src, n, i, "placeholder '{{' is not closed with '}}'");
        if (count == RULES_MAX_SEGMENTS - 1)
            return rules_error_scalar(c->src, n, i,
                                      "too many placeholders in one text (at most %d)",
                                      RULES_MAX_SEGMENTS - 1);
        tmpl_seg *seg = &segs[count];
        memset(seg, 0, sizeof *seg);
        seg->lit.s = rules_strndup(c, s + lit, i - lit);
        if (!seg->lit.s)
            return -ENOMEM;
        seg->lit.len = i - lit;
        rc = placeholder(c, n, i, (size_t)(close - s), seg);
        if (rc)
            return rc;
        count++;
        i = (size_t)(close - s) + 2;
        lit = i;
    }
    /* the literal tail, always present so rendering needs no special case */
    tmpl_seg *tail = &segs[count++];
    memset(tail, 0, sizeof *tail);
    tail->lit.s = rules_strndup(c, s + lit, len - lit);
    if (!tail->lit.s)
        return -ENOMEM;
    tail->lit.len = len - lit;

    tmpl *t = rules_alloc(c, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->segs = rules_alloc(c, count * sizeof *t->segs);
    if (!t->segs)
        return -ENOMEM;
    memcpy(t->segs, segs, count * sizeof *segs);
    t->n = count;
    *out = t;
    return 0;
}

#define NUM_BUF 32

char *tmpl_render(const tmpl *t, const tmpl_env *env, arena *a)
{
    if (t->n == 1)
        return arena_strndup(a, t->segs[0].lit.s, t->segs[0].lit.len);

    strv values[RULES_MAX_SEGMENTS];
    char nums[RULES_MAX_SEGMENTS][NUM_BUF];
    size_t total = 0;
    for (size_t i = 0; i < t->n; i++) {
        const tmpl_seg *seg = &t->segs[i];
        total += seg->lit.len;
        values[i].len = 0;
        if (!seg->has_path || !fact_text(&seg->path, &env->view, nums[i], NUM_BUF, &values[i])) {
            values[i].len = 0; /* missing renders as nothing */
            continue;
        }
        if (seg->labels) {
            const char *tr =
                labels_translate(seg->labels, values[i].s, values[i].len, env->language);
            if (tr) {
                values[i].s = tr;
                values[i].len = strlen(tr);
            }
        }
        total += values[i].len;
    }
    char *out = arena_alloc(a, total + 1);
    if (!out)
        return NULL;
    char *p = out;
    for (size_t i = 0; i < t->n; i++) {
        memcpy(p, t->segs[i].lit.s, t->segs[i].lit.len);
        p += t->segs[i].lit.len;
        if (values[i].len) {
            memcpy(p, values[i].s, values[i].len);
            p += values[i].len;
        }
    }
    *p = '\0';
    return out;
}

/* ---- escaped rendering (letters) ---- */

static void put(tmpl_out *o, const char *s, size_t n)
{
    if (o->out && o->len < o->size)
        memcpy(o->out + o->len, s, o->len + n <= o->size ? n : o->size - o->len);
    o->len += n;
}

void tmpl_escape_into(const char *s, size_t n, tmpl_escape esc, tmpl_out *o)
{
    if (esc == TMPL_PLAIN) {
        put(o, s, n);
        return;
    }
    size_t run = 0; /* start of the bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        const char *entity;
        switch (s[i]) {
        case '&':
            entity = "&amp;";
            break;
        case '<':
            entity = "&lt;";
            break;
        case '>':
            entity = "&gt;";
            break;
        case '"':
            entity = "&quot;";
            break;
        case '\'':
            entity = "&#39;";
            break;
        case '\n':
            entity = esc == TMPL_HTML ? "<br>\n" : " ";
            break;
        case '\r':
            if (esc == TMPL_HTML)
                continue;
            entity = " ";
            break;
        default:
            continue;
        }
        put(o, s + run, i - run);
        put(o, entity, strlen(entity));
        run = i + 1;
    }
    put(o, s + run, n - run);
}

void tmpl_render_into(const tmpl *t, const tmpl_env *env, tmpl_escape esc, tmpl_out *o)
{
    char num[NUM_BUF];
    for (size_t i = 0; i < t->n; i++) {
        const tmpl_seg *seg = &t->segs[i];
        tmpl_escape_into(seg->lit.s, seg->lit.len, esc, o);
        strv v;
        if (!seg->has_path || !fact_text(&seg->path, &env->view, num, NUM_BUF, &v))
            continue; /* missing renders as nothing */
        if (seg->labels) {
            const char *tr = labels_translate(seg->labels, v.s, v.len, env->language);
            if (tr) {
                v.s = tr;
                v.len = strlen(tr);
            }
        }
        tmpl_escape_into(v.s, v.len, esc, o);
    }
}
