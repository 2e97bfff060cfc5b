/* rules_source.c - the rule file's text, for error messages ops staff can act
 * on: "file:line:col: message", the offending line, and a caret under the
 * column, the way compilers and netplan print them.
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

int rules_source_init(rules_source *s, const char *name, const char *text, size_t len)
{
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

static int error_at_va(const rules_source *s, nba_error *err, size_t at, const char *fmt,
                       va_list ap)
{
    if (!err)
        return -EINVAL;
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

    nba_error_set(err, -EINVAL, "%s:%zu:%zu: %s\n%.*s\n%s", s->name, line + 1, col, msg,
                  (int)(shown_end - shown), s->text + shown, caret);
    return -EINVAL;
}

int rules_error_at(const rules_source *s, nba_error *err, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = error_at_va(s, err, at, fmt, ap);
    va_end(ap);
    return rc;
}

int rules_error_node(const rules_source *s, nba_error *err, const yaml_node_t *n, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = error_at_va(s, err, rules_source_mark_offset(s, n->start_mark), fmt, ap);
    va_end(ap);
    return rc;
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

int rules_error_scalar(const rules_source *s, nba_error *err, const yaml_node_t *n, size_t offset,
                       const char *fmt, ...)
{
    size_t at = n->type == YAML_SCALAR_NODE ? scalar_offset(s, n, offset)
                                            : rules_source_mark_offset(s, n->start_mark);
    va_list ap;
    va_start(ap, fmt);
    int rc = error_at_va(s, err, at, fmt, ap);
    va_end(ap);
    return rc;
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
