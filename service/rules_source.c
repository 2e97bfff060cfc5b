/* rules_source.c - the rule file's text, for problems ops staff can act on:
 * "file:line:col: message", the offending line, and a caret under the
 * column, the way compilers and netplan print them. Every problem of a
 * compile goes into one list (ruleset_diags), errors and warnings alike, so
 * a file with three mistakes shows all three at once.
 *
 * libyaml marks count characters, not bytes, and a scalar's value is not its
 * source text (quotes, folded lines, block indentation), so positions are
 * mapped back to byte offsets here, once an error has happened: nothing on
 * the success path pays for it.
 */
#include "rules_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rules_source_init(rules_source *s, const char *name, const char *text, size_t len, size_t index,
                      ruleset_diags *diags)
{
    s->index = index;
    s->diags = diags;
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n')
            n++;
    s->name = name;
    s->text = text;
    s->len = len;
    s->n_lines = n;
    s->line_start = malloc(n * sizeof *s->line_start);
    if (!s->line_start)
        return -ENOMEM;
    s->line_start[0] = 0;
    n = 1;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n')
            s->line_start[n++] = i + 1;
    return 0;
}

void rules_source_free(rules_source *s)
{
    free(s->line_start);
    s->line_start = NULL;
}

static bool utf8_continuation(unsigned char ch)
{
    return (ch & 0xC0) == 0x80;
}

static size_t line_end(const rules_source *s, size_t line)
{
    size_t end = line + 1 < s->n_lines ? s->line_start[line + 1] - 1 : s->len;
    if (end > s->line_start[line] && s->text[end - 1] == '\r')
        end--;
    return end;
}

size_t rules_source_mark_offset(const rules_source *s, yaml_mark_t mark)
{
    if (mark.line >= s->n_lines)
        return s->len;
    size_t at = s->line_start[mark.line];
    size_t end = line_end(s, mark.line);
    /* Skip `column` characters: a character is a lead byte and its
     * continuation bytes. */
    for (size_t col = 0; col < mark.column && at < end; col++) {
        at++;
        while (at < end && utf8_continuation((unsigned char)s->text[at]))
            at++;
    }
    return at;
}

static size_t line_of(const rules_source *s, size_t at)
{
    size_t lo = 0, hi = s->n_lines;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->line_start[mid] <= at)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Decodes the code point at p (at most n bytes); returns its length. */
static size_t utf8_decode(const unsigned char *p, size_t n, unsigned *cp)
{
    unsigned c = p[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (len > n)
        len = 1;
    *cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t i = 1; i < len; i++)
        *cp = (*cp << 6) | (p[i] & 0x3F);
    return len;
}

/* Chinese, Japanese and Korean characters take two columns in a terminal;
 * the caret must still land under the right character. */
static bool wide(unsigned cp)
{
    return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
           (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
           (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

/* Longest part of a line shown; a caret further right shows the part of the
 * line around it. */
#define SHOWN_MAX 240

/* ---- the list of problems ---- */

/* Past this many, problems are counted but not kept: a file of garbage
 * must not take the memory of a file of mistakes. */
#define DIAGS_MAX 500

typedef struct diag_item {
    ruleset_diag d;
    size_t file; /* rules_source.index */
    size_t at;   /* byte offset, for sorting */
    size_t seq;  /* order of reporting, for a stable sort */
} diag_item;

struct ruleset_diags {
    diag_item *items;
    size_t n, cap;
    size_t errors, warnings;
};

int ruleset_diags_new(ruleset_diags **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

static void item_free(diag_item *it)
{
    free((char *)it->d.file);
    free((char *)it->d.message);
    free((char *)it->d.hint);
    free((char *)it->d.source);
    free((char *)it->d.caret);
}

void ruleset_diags_free(ruleset_diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        item_free(&d->items[i]);
    free(d->items);
    free(d);
}

size_t ruleset_diags_count(const ruleset_diags *d)
{
    return d->n;
}

const ruleset_diag *ruleset_diags_get(const ruleset_diags *d, size_t i)
{
    return i < d->n ? &d->items[i].d : NULL;
}

size_t ruleset_diags_errors(const ruleset_diags *d)
{
    return d->errors;
}

size_t ruleset_diags_warnings(const ruleset_diags *d)
{
    return d->warnings;
}

static int item_cmp(const void *pa, const void *pb)
{
    const diag_item *a = pa, *b = pb;
    if (a->file != b->file)
        return a->file < b->file ? -1 : 1;
    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void rules_diags_sort(ruleset_diags *d)
{
    if (d && d->n > 1)
        qsort(d->items, d->n, sizeof *d->items, item_cmp);
}

static char *dup_or_null(const char *s, size_t len)
{
    if (!s)
        return NULL;
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* Splits a hint off the message: "...; did you mean 'x'?" keeps "did you
 * mean 'x'?", "...; hint: text" keeps "text". */
static void split_hint(const char *msg, size_t *msg_len, const char **hint)
{
    const char *h = strstr(msg, "; did you mean ");
    const char *k = strstr(msg, "; hint: ");
    if (k && (!h || k < h)) {
        *msg_len = (size_t)(k - msg);
        *hint = k + 8;
    } else if (h) {
        *msg_len = (size_t)(h - msg);
        *hint = h + 2;
    } else {
        *msg_len = strlen(msg);
        *hint = NULL;
    }
}

/* Adds one problem; source and caret may be NULL. Returns 0 or -ENOMEM. */
static int diags_add(ruleset_diags *d, ruleset_severity sev, const char *name, size_t file,
                     size_t at, unsigned line, unsigned col, const char *msg, const char *source,
                     size_t source_len, const char *caret)
{
    if (!d)
        return 0;
    if (sev == RULESET_ERROR)
        d->errors++;
    else
        d->warnings++;
    if (d->n >= DIAGS_MAX)
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        diag_item *grown = realloc(d->items, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        d->items = grown;
        d->cap = cap;
    }
    size_t msg_len;
    const char *hint;
    split_hint(msg, &msg_len, &hint);
    diag_item *it = &d->items[d->n];
    memset(it, 0, sizeof *it);
    it->file = file;
    it->at = at;
    it->seq = d->n;
    it->d.severity = sev;
    it->d.line = line;
    it->d.col = col;
    it->d.file = dup_or_null(name, strlen(name));
    it->d.message = dup_or_null(msg, msg_len);
    it->d.hint = hint ? dup_or_null(hint, strlen(hint)) : NULL;
    it->d.source = source ? dup_or_null(source, source_len) : NULL;
    it->d.caret = caret ? dup_or_null(caret, strlen(caret)) : NULL;
    if (!it->d.file || !it->d.message || (hint && !it->d.hint) || (source && !it->d.source) ||
        (caret && !it->d.caret)) {
        item_free(it);
        return -ENOMEM;
    }
    d->n++;
    return 0;
}

size_t ruleset_diag_format(const ruleset_diag *d, char *buf, size_t size)
{
    int n;
    const char *sep = d->hint ? "; " : "";
    const char *hint = d->hint ? d->hint : "";
    if (d->line == 0)
        n = snprintf(buf, size, "%s: %s%s%s", d->file, d->message, sep, hint);
    else if (!d->source)
        n = snprintf(buf, size, "%s:%u:%u: %s%s%s", d->file, d->line, d->col, d->message, sep,
                     hint);
    else
        n = snprintf(buf, size, "%s:%u:%u: %s%s%s\n%s\n%s", d->file, d->line, d->col, d->message,
                     sep, hint, d->source, d->caret ? d->caret : "^");
    return n < 0 ? 0 : (size_t)n;
}

int rules_error_file(ruleset_diags *d, const char *name, size_t index, int code, const char *fmt,
                     ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int rc = diags_add(d, RULESET_ERROR, name, index, 0, 0, 0, msg, NULL, 0, NULL);
    return rc ? rc : code;
}

static int report_va(const rules_source *s, ruleset_severity sev, size_t at, const char *fmt,
                     va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (at > s->len)
        at = s->len;
    size_t line = line_of(s, at);
    size_t start = s->line_start[line];
    size_t end = line_end(s, line);
    if (at > end)
        at = end;

    size_t col = 1;
    for (size_t i = start; i < at; i++)
        if (!utf8_continuation((unsigned char)s->text[i]))
            col++;

    size_t shown = start;
    if (at - shown > SHOWN_MAX / 2) {
        shown = at - SHOWN_MAX / 2;
        while (shown < at && utf8_continuation((unsigned char)s->text[shown]))
            shown++;
    }
    size_t shown_end = end;
    if (shown_end - shown > SHOWN_MAX) {
        shown_end = shown + SHOWN_MAX;
        while (shown_end > at && utf8_continuation((unsigned char)s->text[shown_end]))
            shown_end--;
    }

    char caret[SHOWN_MAX * 2 + 2];
    size_t k = 0;
    for (size_t i = shown; i < at && k + 3 < sizeof caret;) {
        unsigned cp;
        i += utf8_decode((const unsigned char *)s->text + i, at - i, &cp);
        if (cp == '\t') {
            caret[k++] = '\t';
        } else {
            caret[k++] = ' ';
            if (wide(cp))
                caret[k++] = ' ';
        }
    }
    caret[k++] = '^';
    caret[k] = '\0';

    int rc = diags_add(s->diags, sev, s->name, s->index, at, (unsigned)(line + 1), (unsigned)col,
                       msg, s->text + shown, shown_end - shown, caret);
    if (rc)
        return rc;
    return sev == RULESET_ERROR ? -EINVAL : 0;
}

int rules_report_at(const rules_source *s, ruleset_severity severity, size_t at, const char *fmt,
                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = report_va(s, severity, at, fmt, ap);
    va_end(ap);
    return rc;
}

int rules_error_at(const rules_source *s, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = report_va(s, RULESET_ERROR, at, fmt, ap);
    va_end(ap);
    return rc;
}

int rules_error_node(const rules_source *s, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = report_va(s, RULESET_ERROR, rules_source_mark_offset(s, n->start_mark), fmt, ap);
    va_end(ap);
    return rc;
}

void rules_warn_node(const rules_source *s, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_va(s, RULESET_WARNING, rules_source_mark_offset(s, n->start_mark), fmt, ap);
    va_end(ap);
}

static bool blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Walks the scalar's source and its value side by side until `offset` bytes
 * of the value are behind. Source bytes that the value lacks are quoting,
 * indentation and line breaks folded into spaces; anything else (an escape
 * sequence) gives up and returns the scalar's start. */
static size_t scalar_offset(const rules_source *s, const yaml_node_t *n, size_t offset)
{
    size_t start = rules_source_mark_offset(s, n->start_mark);
    size_t end = rules_source_mark_offset(s, n->end_mark);
    const char *v = (const char *)n->data.scalar.value;
    size_t vlen = n->data.scalar.length;
    yaml_scalar_style_t style = n->data.scalar.style;
    const char *src = s->text;

    size_t si = start;
    switch (style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        si++;
        break;
    case YAML_LITERAL_SCALAR_STYLE:
    case YAML_FOLDED_SCALAR_STYLE:
        /* the content starts on the line after the `>` or `|` header */
        while (si < end && src[si] != '\n')
            si++;
        si++;
        break;
    default:
        break;
    }
    if (offset > vlen)
        offset = vlen;
    size_t vi = 0;
    while (vi < offset) {
        if (si >= end)
            return start;
        char sc = src[si], vc = v[vi];
        if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE && sc == '\'' && vc == '\'' && si + 1 < end &&
            src[si + 1] == '\'') {
            si += 2;
            vi++;
        } else if (style == YAML_DOUBLE_QUOTED_SCALAR_STYLE && sc == '\\') {
            if (si + 1 < end && src[si + 1] == vc && (vc == '"' || vc == '\\' || vc == '/')) {
                si += 2;
                vi++;
            } else {
                return start;
            }
        } else if (sc == vc) {
            si++;
            vi++;
        } else if (vc == ' ' && (sc == '\n' || sc == '\r')) {
            /* a line break folded into a space */
            si += sc == '\r' && si + 1 < end && src[si + 1] == '\n' ? 2 : 1;
            vi++;
        } else if (blank(sc)) {
            si++;
        } else {
            return start;
        }
    }
    /* land on the character itself, not on the indentation before it */
    while (si < end && vi < vlen && src[si] != v[vi] && blank(src[si]))
        si++;
    return si;
}

static size_t scalar_at(const rules_source *s, const yaml_node_t *n, size_t offset)
{
    return n->type == YAML_SCALAR_NODE ? scalar_offset(s, n, offset)
                                       : rules_source_mark_offset(s, n->start_mark);
}

int rules_error_scalar(const rules_source *s, const yaml_node_t *n, size_t offset, const char *fmt,
                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = report_va(s, RULESET_ERROR, scalar_at(s, n, offset), fmt, ap);
    va_end(ap);
    return rc;
}

void rules_warn_scalar(const rules_source *s, const yaml_node_t *n, size_t offset, const char *fmt,
                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_va(s, RULESET_WARNING, scalar_at(s, n, offset), fmt, ap);
    va_end(ap);
}

/* ---- hints ---- */

void rules_hint_init(rules_hint *h, const char *word, size_t len)
{
    h->word = word;
    h->len = len;
    h->best = NULL;
    h->best_distance = (size_t)-1;
}

#define HINT_MAX_LEN 64

/* Edit distance counting a swap of two neighbours as one edit ("teir"). */
static size_t distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[HINT_MAX_LEN + 1][HINT_MAX_LEN + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

void rules_hint_try(rules_hint *h, const char *candidate)
{
    size_t lc = strlen(candidate);
    if (h->len > HINT_MAX_LEN || lc > HINT_MAX_LEN || h->len == 0)
        return;
    /* Short names tolerate one typo, longer ones two or three: beyond that
     * a hint is more confusing than helpful. */
    size_t limit = lc <= 4 ? 1 : lc <= 9 ? 2 : 3;
    size_t d = distance(h->word, h->len, candidate, lc);
    if (d > 0 && d <= limit && d < h->best_distance) {
        h->best = candidate;
        h->best_distance = d;
    }
}

const char *rules_hint_text(const rules_hint *h, char *buf, size_t size)
{
    if (!h->best)
        return "";
    snprintf(buf, size, "; did you mean '%s'?", h->best);
    return buf;
}
