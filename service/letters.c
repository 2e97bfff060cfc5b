/* letters.c - the `letters` section of rule files, and rendering a letter:
 * see include/letters.h and rules/README.md ("Letters").
 *
 *   letters:
 *     apology_letter:
 *       en:
 *         subject: "Our apologies for {{incident.kind | incident_kinds}}"
 *         body: |
 *           Dear {{customer.name}},
 *
 *           We are sorry about ...
 *
 * A body is cut into paragraphs at its blank lines when the file compiles,
 * and each paragraph compiles into a text with placeholders of its own, so
 * that the HTML form needs no second look at the text: each paragraph is a
 * <p>, and every character written, literal or substituted, is escaped on
 * the way out. A value holding a blank line (a note) therefore never splits
 * a paragraph or smuggles markup in.
 *
 * Languages fall back as messages do: a language without its own letter
 * gets the default_language letter, and its labels are translated in the
 * language the letter is written in, so a letter never mixes two.
 */
#include "rules_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "letters.h"

static bool blank_line(const char *s, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

static bool name_ok(const char *s, size_t len)
{
    if (!len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* The paragraphs of body n: runs of lines that are not blank, each without
 * the line break after its last line. */
static int compile_body(rules_compiler *c, const yaml_node_t *n, letter_text *lt)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    size_t count = 0;
    bool in_par = false;
    for (size_t i = 0; i < len;) {
        size_t eol = i;
        while (eol < len && s[eol] != '\n')
            eol++;
        bool blank = blank_line(s, i, eol);
        if (!blank && !in_par)
            count++;
        in_par = !blank;
        i = eol + 1;
    }
    if (count == 0)
        return rules_error_node(c->src, n,
                                "a letter's body needs text: paragraphs separated by blank lines "
                                "(write it with 'body: |')");
    const tmpl **pars = rules_alloc(c, count * sizeof *pars);
    if (!pars)
        return -ENOMEM;
    size_t k = 0, start = 0, end = 0;
    in_par = false;
    int failed = 0;
    for (size_t i = 0;;) {
        bool at_end = i >= len; /* ends the last paragraph */
        size_t eol = i;
        while (eol < len && s[eol] != '\n')
            eol++;
        bool blank = at_end || blank_line(s, i, eol);
        if (!blank) {
            if (!in_par)
                start = i;
            end = eol;
            in_par = true;
        } else if (in_par) {
            while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\r'))
                end--;
            tmpl *t = NULL;
            int rc = tmpl_compile_range(c, n, start, end, &t);
            if (rules_failed(&failed, rc))
                return failed;
            if (!rc)
                pars[k++] = t;
            in_par = false;
        }
        if (at_end)
            break;
        i = eol < len ? eol + 1 : len;
    }
    lt->paragraphs = pars;
    lt->n_paragraphs = k;
    return failed;
}

enum { LT_SUBJECT, LT_BODY, N_LETTER_KEYS };
static const char *const letter_keys[N_LETTER_KEYS] = {"subject", "body"};

static int compile_text(rules_compiler *c, const letter *l, const yaml_node_t *n,
                        const letter_text **out)
{
    yaml_node_t *v[N_LETTER_KEYS];
    int failed = 0;
    if (n->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, n,
                                "letter '%s' gives a subject and a body per language, e.g. "
                                "{ subject: \"...\", body: \"...\" }",
                                l->name);
    if (rules_failed(&failed, rules_mapping(c, n, "a letter", letter_keys, N_LETTER_KEYS,
                                            1u << LT_SUBJECT | 1u << LT_BODY, v)))
        return failed;
    letter_text *lt = rules_alloc(c, sizeof *lt);
    if (!lt)
        return -ENOMEM;
    memset(lt, 0, sizeof *lt);
    if (v[LT_SUBJECT]) {
        const char *s;
        size_t len;
        int rc = rules_scalar(c, v[LT_SUBJECT], "a subject", &s, &len);
        const char *nl = rc ? NULL : memchr(s, '\n', len);
        /* a trailing line break (`subject: |`) is no second line */
        if (nl && (size_t)(nl - s) == len - 1)
            len--, nl = NULL;
        if (nl)
            rc = rules_error_scalar(c->src, v[LT_SUBJECT], (size_t)(nl - s),
                                    "a subject is one line; hint: write it on one line, or with "
                                    "'subject: >-' to fold the lines");
        tmpl *t = NULL;
        if (!rc)
            rc = tmpl_compile_range(c, v[LT_SUBJECT], 0, len, &t);
        if (rules_failed(&failed, rc))
            return failed;
        lt->subject = t;
    }
    if (v[LT_BODY]) {
        int rc = v[LT_BODY]->type == YAML_SCALAR_NODE
                     ? compile_body(c, v[LT_BODY], lt)
                     : rules_error_node(c->src, v[LT_BODY],
                                        "a letter's body is a text: write it with 'body: |' and "
                                        "the paragraphs below, separated by blank lines");
        if (rules_failed(&failed, rc))
            return failed;
    }
    if (!failed)
        *out = lt;
    return failed;
}

static int compile_letter(rules_compiler *c, const yaml_node_t *key, const yaml_node_t *val,
                          letter *l)
{
    const ruleset *rs = c->rs;
    const char *name;
    size_t len;
    int rc = rules_scalar(c, key, "a letter name", &name, &len);
    if (rc)
        return rc;
    if (!name_ok(name, len))
        return rules_error_node(c->src, key,
                                "a letter is named after an action type: letters, digits, '_' "
                                "and '-' only");
    const letter *dup = letters_find(rs, name, len);
    if (dup)
        return rules_error_node(c->src, key, "letter '%.*s' is already defined in %s:%zu", (int)len,
                                name, c->files[dup->file].src.name, dup->node->start_mark.line + 1);
    l->name = rules_strndup(c, name, len);
    if (!l->name)
        return -ENOMEM;
    l->node = key;
    l->file = c->file;
    size_t nl = rs->n_languages;
    l->text = rules_alloc(c, nl * sizeof *l->text);
    l->written_in = rules_alloc(c, nl * sizeof *l->written_in);
    if (!l->text || !l->written_in)
        return -ENOMEM;
    memset(l->text, 0, nl * sizeof *l->text);
    if (val->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, val,
                                "letter '%s' must give its subject and body per language, e.g. "
                                "{ %s: { subject: \"...\", body: \"...\" } }",
                                l->name, rs->languages[rs->default_language]);
    const letter_text **own = (const letter_text **)l->text;
    bool has_default = false;
    int failed = 0;
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top;
         p++) {
        size_t lang;
        rc = messages_language_key(c, rules_node(c, p->key), &lang);
        if (!rc) {
            if (lang == rs->default_language)
                has_default = true;
            rc = compile_text(c, l, rules_node(c, p->value), &own[lang]);
        }
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        if (lang < 32)
            l->own_languages |= 1u << lang;
    }
    if (!has_default &&
        rules_failed(&failed, rules_error_node(c->src, key,
                                               "letter '%s' has no text in the default "
                                               "language '%s'",
                                               l->name, rs->languages[rs->default_language])))
        return failed;
    if (failed)
        return failed;
    for (size_t i = 0; i < nl; i++) {
        l->written_in[i] = own[i] ? i : rs->default_language;
        if (!own[i])
            own[i] = own[rs->default_language];
    }
    return 0;
}

int letters_compile(rules_compiler *c, const yaml_node_t *letters)
{
    ruleset *rs = c->rs;
    if (letters->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, letters,
                                "'letters' must map letter names (action types) to their "
                                "texts per language");
    int failed = 0;
    for (yaml_node_pair_t *p = letters->data.mapping.pairs.start;
         p < letters->data.mapping.pairs.top; p++) {
        letter *l = &rs->letters[rs->n_letters];
        memset(l, 0, sizeof *l);
        int rc = compile_letter(c, rules_node(c, p->key), rules_node(c, p->value), l);
        if (l->name) {
            /* registered even when broken: the actions that name it need no
             * second error; a broken one is never rendered, as the ruleset
             * does not compile */
            rs->n_letters++;
        }
        if (rules_failed(&failed, rc))
            return failed;
    }
    return failed;
}

const letter *letters_find(const ruleset *rs, const char *name, size_t len)
{
    for (size_t i = 0; i < rs->n_letters; i++)
        if (strlen(rs->letters[i].name) == len && memcmp(rs->letters[i].name, name, len) == 0)
            return &rs->letters[i];
    return NULL;
}

/* ---- checks once everything compiled ---- */

/* An action that sends l (it names it, or is of its type), preferring one
 * the policy records, since only those send letters; NULL when none. */
static const rule_action *letter_sender(const ruleset *rs, const letter *l)
{
    const rule_action *any = NULL;
    for (size_t i = 0; i < rs->n_rules; i++)
        for (size_t k = 0; k < rs->rules[i].n_actions; k++) {
            const rule_action *a = &rs->rules[i].actions[k];
            if (a->letter != l)
                continue;
            if (a->record)
                return a;
            if (!any)
                any = a;
        }
    return any;
}

void letters_check(rules_compiler *c)
{
    const ruleset *rs = c->rs;
    for (size_t i = 0; i < rs->n_letters; i++) {
        const letter *l = &rs->letters[i];
        rules_enter_file(c, l->file);
        const rule_action *sender = letter_sender(rs, l);
        if (!sender) {
            rules_warn_node(c->src, l->node,
                            "letter '%s' is never sent: no action is of type '%s' or names it "
                            "with 'letter:'",
                            l->name, l->name);
            continue;
        }
        if (!sender->record) {
            rules_warn_node(c->src, l->node,
                            "letter '%s' is never sent: letters go out for the actions the "
                            "policy records, and '%s' is not one; hint: list '%s' under "
                            "'policy: record:'",
                            l->name, sender->type, sender->type);
            continue;
        }
        char missing[256];
        size_t k = 0;
        missing[0] = '\0';
        for (size_t lang = 0; lang < rs->n_languages && lang < 32; lang++) {
            if (l->own_languages & (1u << lang))
                continue;
            int w = snprintf(missing + k, sizeof missing - k, "%s%s", k ? ", " : "",
                             rs->languages[lang]);
            if (w < 0 || (size_t)w >= sizeof missing - k)
                break;
            k += (size_t)w;
        }
        if (k)
            rules_warn_node(c->src, l->node,
                            "letter '%s' has no text in %s: passengers served in %s get the "
                            "'%s' letter; hint: add the letter in each language of 'languages'",
                            l->name, missing, strchr(missing, ',') ? "those languages" : "it",
                            rs->languages[rs->default_language]);
    }
    /* a recorded action done after the contact is the kind that writes */
    for (size_t i = 0; i < rs->n_rules; i++) {
        const rule *r = &rs->rules[i];
        for (size_t k = 0; k < r->n_actions; k++) {
            const rule_action *a = &r->actions[k];
            if (!a->record || !a->follow_up || a->letter || !a->node)
                continue;
            rules_enter_file(c, c->origins[i].file);
            rules_warn_node(c->src, a->node,
                            "action '%s' of rule '%s' is recorded and done after the contact, "
                            "but sends no letter; hint: add a letter '%s' under 'letters:', or "
                            "name one with 'letter:'",
                            a->type, r->id, a->type);
        }
    }
}

/* ---- rendering ---- */

static int letter_language(const ruleset *rs, const facts *f, const char *language)
{
    int i = language && *language ? rules_language_lookup(rs, language, strlen(language)) : -1;
    return i >= 0 ? i : (int)rules_base_language(rs, f);
}

const char *ruleset_letter_language(const ruleset *rs, const facts *f, const char *name,
                                    const char *language)
{
    const letter *l = name ? letters_find(rs, name, strlen(name)) : NULL;
    if (!l)
        return NULL;
    return rs->languages[l->written_in[letter_language(rs, f, language)]];
}

/* The paragraphs, separated by blank lines (TMPL_PLAIN), or each as a <p>
 * on its own line (TMPL_HTML). */
static void body_into(const letter_text *lt, const tmpl_env *env, tmpl_escape esc, tmpl_out *o)
{
    for (size_t i = 0; i < lt->n_paragraphs; i++) {
        if (esc == TMPL_HTML) {
            tmpl_escape_into("<p>", 3, TMPL_PLAIN, o);
            tmpl_render_into(lt->paragraphs[i], env, esc, o);
            tmpl_escape_into("</p>\n", 5, TMPL_PLAIN, o);
        } else {
            if (i)
                tmpl_escape_into("\n\n", 2, TMPL_PLAIN, o);
            tmpl_render_into(lt->paragraphs[i], env, esc, o);
        }
    }
}

static void html_into(const letter_text *lt, const tmpl_env *env, const char *lang, tmpl_out *o)
{
    static const char head1[] = "<!DOCTYPE html>\n<html lang=\"";
    static const char head2[] = "\">\n<head>\n<meta charset=\"utf-8\">\n<title>";
    static const char head3[] = "</title>\n</head>\n<body>\n";
    static const char tail[] = "</body>\n</html>\n";
    tmpl_escape_into(head1, sizeof head1 - 1, TMPL_PLAIN, o);
    tmpl_escape_into(lang, strlen(lang), TMPL_HTML, o);
    tmpl_escape_into(head2, sizeof head2 - 1, TMPL_PLAIN, o);
    tmpl_render_into(lt->subject, env, TMPL_HTML_LINE, o);
    tmpl_escape_into(head3, sizeof head3 - 1, TMPL_PLAIN, o);
    body_into(lt, env, TMPL_HTML, o);
    tmpl_escape_into(tail, sizeof tail - 1, TMPL_PLAIN, o);
}

/* Measures, then writes into the arena: the facts are read twice, which is
 * cheaper than growing a buffer, and a letter is no decision. */
static char *render_body(const letter_text *lt, const tmpl_env *env, const char *lang, bool html,
                         arena *a)
{
    tmpl_out m = {0};
    if (html)
        html_into(lt, env, lang, &m);
    else
        body_into(lt, env, TMPL_PLAIN, &m);
    char *buf = arena_alloc(a, m.len + 1);
    if (!buf)
        return NULL;
    tmpl_out o = {.out = buf, .size = m.len};
    if (html)
        html_into(lt, env, lang, &o);
    else
        body_into(lt, env, TMPL_PLAIN, &o);
    buf[m.len] = '\0';
    return buf;
}

int ruleset_render_letter(const ruleset *rs, const facts *f, const Nba__V1__Incident *incident,
                          const char *name, const char *language, arena *a, const char **subject,
                          const char **text, const char **html)
{
    const letter *l = name ? letters_find(rs, name, strlen(name)) : NULL;
    if (!l)
        return -ENOENT;
    size_t lang = (size_t)letter_language(rs, f, language);
    size_t written = l->written_in[lang];
    const letter_text *lt = l->text[lang];
    tmpl_env env = {
        .view = {.f = f, .incident = incident, .decision_language = rs->languages[lang]},
        .language = written};
    char *s = tmpl_render(lt->subject, &env, a);
    /* one line, whatever the values hold: a subject often becomes a mail
     * header, where a line break would start another header */
    for (char *p = s; p && *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    char *t = render_body(lt, &env, rs->languages[written], false, a);
    char *h = render_body(lt, &env, rs->languages[written], true, a);
    if (!s || !t || !h)
        return -ENOMEM;
    *subject = s;
    *text = t;
    *html = h;
    return 0;
}
