/* messages.c - the `messages` and `labels` sections of a rule file.
 *
 * A message is a text per language and, optionally, per channel: the desk
 * agent reads a prompt, the kiosk shows a screen text, the IVR speaks a
 * sentence. The fallbacks (this channel, then the language's default, then
 * the same in default_language) are worked out here, once, into a table
 * indexed by [language][channel], so rendering is one lookup.
 *
 * Labels translate data values ("ife_broken") into words per language for
 * placeholders; each table is sorted by value for a binary search.
 *
 * Every file of a ruleset may hold messages and labels; their keys are one
 * namespace. A message or table with a mistake is still registered under
 * its key, so the rules that use it do not get a second, misleading error.
 */
#include "rules_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void language_list(const ruleset *rs, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < rs->n_languages && k < size; i++) {
        int n = snprintf(buf + k, size - k, "%s%s", i ? ", " : "", rs->languages[i]);
        if (n < 0)
            break;
        k += (size_t)n;
    }
}

int messages_language_key(rules_compiler *c, const yaml_node_t *key, size_t *out)
{
    const char *s;
    size_t len;
    int rc = rules_scalar(c, key, "a language", &s, &len);
    if (rc)
        return rc;
    int i = rules_language_exact(c->rs, s, len);
    if (i >= 0) {
        *out = (size_t)i;
        return 0;
    }
    rules_hint h;
    char hint[96], list[256];
    rules_hint_init(&h, s, len);
    for (size_t k = 0; k < c->rs->n_languages; k++)
        rules_hint_try(&h, c->rs->languages[k]);
    language_list(c->rs, list, sizeof list);
    return rules_error_node(c->src, key,
                            "language '%.*s' is not one of the ruleset's languages (%s)%s",
                            (int)len, s, list, rules_hint_text(&h, hint, sizeof hint));
}

/* ---- labels ---- */

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct label_entry *)a)->value, ((const struct label_entry *)b)->value);
}

static int label_name_ok(const char *s, size_t len)
{
    if (!len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static int compile_label_entry(rules_compiler *c, const yaml_node_t *vk, const yaml_node_t *vv,
                               struct label_entry *e)
{
    const ruleset *rs = c->rs;
    const char *name;
    size_t len;
    int rc = rules_scalar(c, vk, "a value", &name, &len);
    if (rc)
        return rc;
    e->value = rules_strndup(c, name, len);
    e->text = rules_alloc(c, rs->n_languages * sizeof *e->text);
    if (!e->value || !e->text)
        return -ENOMEM;
    memset(e->text, 0, rs->n_languages * sizeof *e->text);
    if (vv->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, vv,
                                "expected translations per language, e.g. "
                                "{ en: \"...\", it: \"...\" }");
    int failed = 0;
    for (yaml_node_pair_t *lp = vv->data.mapping.pairs.start; lp < vv->data.mapping.pairs.top;
         lp++) {
        size_t lang;
        rc = messages_language_key(c, rules_node(c, lp->key), &lang);
        const char *text;
        size_t tlen;
        if (!rc)
            rc = rules_scalar(c, rules_node(c, lp->value), "a translation", &text, &tlen);
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        e->text[lang] = rules_strndup(c, text, tlen);
        if (!e->text[lang])
            return -ENOMEM;
    }
    for (size_t l = 0; l < rs->n_languages; l++)
        if (!e->text[l])
            e->text[l] = e->text[rs->default_language]; /* may stay NULL: raw value */
    return failed;
}

static int compile_label_table(rules_compiler *c, const yaml_node_t *key, const yaml_node_t *val,
                               label_table *t)
{
    const char *name;
    size_t len;
    int rc = rules_scalar(c, key, "a label table name", &name, &len);
    if (rc)
        return rc;
    if (!label_name_ok(name, len))
        return rules_error_node(c->src, key,
                                "a label table name uses letters, digits, '_' and '-' only");
    const label_table *dup = labels_find(c->rs, name, len);
    if (dup)
        return rules_error_node(c->src, key, "label table '%.*s' is already defined in %s:%zu",
                                (int)len, name, c->files[dup->file].src.name,
                                dup->node->start_mark.line + 1);
    t->name = rules_strndup(c, name, len);
    if (!t->name)
        return -ENOMEM;
    t->node = key;
    t->file = c->file;
    if (val->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, val,
                                "label table '%s' must map values to translations, e.g. "
                                "ife_broken: { en: \"...\", it: \"...\" }",
                                t->name);
    size_t n = (size_t)(val->data.mapping.pairs.top - val->data.mapping.pairs.start);
    t->entries = rules_alloc(c, (n ? n : 1) * sizeof *t->entries);
    if (!t->entries)
        return -ENOMEM;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pair = &val->data.mapping.pairs.start[i];
        rc = compile_label_entry(c, rules_node(c, pair->key), rules_node(c, pair->value),
                                 &t->entries[t->n]);
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        t->n++;
    }
    qsort(t->entries, t->n, sizeof *t->entries, entry_cmp);
    return failed;
}

int messages_compile_labels(rules_compiler *c, const yaml_node_t *labels)
{
    ruleset *rs = c->rs;
    if (labels->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, labels,
                                "'labels' must map table names to tables of translations");
    size_t n = (size_t)(labels->data.mapping.pairs.top - labels->data.mapping.pairs.start);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pair = &labels->data.mapping.pairs.start[i];
        label_table *t = &rs->labels[rs->n_labels];
        memset(t, 0, sizeof *t);
        int rc = compile_label_table(c, rules_node(c, pair->key), rules_node(c, pair->value), t);
        if (t->name)
            rs->n_labels++; /* registered even when broken: its users need no second error */
        if (rules_failed(&failed, rc))
            return failed;
    }
    return failed;
}

const label_table *labels_find(const ruleset *rs, const char *name, size_t len)
{
    for (size_t i = 0; i < rs->n_labels; i++)
        if (strlen(rs->labels[i].name) == len && memcmp(rs->labels[i].name, name, len) == 0)
            return &rs->labels[i];
    return NULL;
}

const char *labels_translate(const label_table *t, const char *value, size_t len, size_t language)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *v = t->entries[mid].value;
        int r = strncmp(v, value, len);
        if (r == 0 && v[len] != '\0')
            r = 1; /* v is longer, so it sorts after */
        if (r == 0)
            return t->entries[mid].text[language];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- messages ---- */

static int compile_variants(rules_compiler *c, const message *m, const yaml_node_t *val,
                            size_t lang, const tmpl **v)
{
    if (val->type == YAML_SCALAR_NODE) {
        tmpl *t;
        int rc = tmpl_compile(c, val, &t);
        if (rc)
            return rc;
        v[0] = t;
        return 0;
    }
    if (val->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, val,
                                "expected a text, or channel variants such as "
                                "{ default: \"...\", ivr: \"...\" }");
    int failed = 0;
    bool has_default = false; /* given, even if its text has a mistake */
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = rules_node(c, p->key);
        const char *name;
        size_t len;
        int rc = rules_scalar(c, k, "a channel name", &name, &len);
        int ch = rc ? -1 : rules_channel_lookup(name, len, true);
        if (ch == 0)
            has_default = true;
        if (!rc && ch < 0) {
            rules_hint h;
            char hint[96];
            rules_hint_init(&h, name, len);
            for (unsigned i = 0; i < RULES_N_CHANNELS; i++)
                rules_hint_try(&h, rules_channel_name(i));
            rc = rules_error_node(c->src, k,
                                  "unknown channel '%.*s'%s (channels: default, desk, kiosk, "
                                  "ivr, web, mobile, call_center)",
                                  (int)len, name, rules_hint_text(&h, hint, sizeof hint));
        }
        tmpl *t = NULL;
        if (!rc) {
            const yaml_node_t *tv = rules_node(c, p->value);
            rc = tv->type == YAML_SCALAR_NODE
                     ? tmpl_compile(c, tv, &t)
                     : rules_error_node(c->src, tv, "expected a text, found a %s",
                                        tv->type == YAML_MAPPING_NODE ? "mapping" : "list");
        }
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        v[ch] = t;
    }
    if (lang == c->rs->default_language && !has_default &&
        rules_failed(&failed, rules_error_node(c->src, val,
                                               "message '%s' needs a 'default' variant in the "
                                               "default language '%s', for channels without "
                                               "their own text",
                                               m->key, c->rs->languages[lang])))
        return failed;
    return failed;
}

static int compile_message(rules_compiler *c, const yaml_node_t *key, const yaml_node_t *val,
                           message *m, const tmpl **v)
{
    const ruleset *rs = c->rs;
    const char *name;
    size_t len;
    int rc = rules_scalar(c, key, "a message key", &name, &len);
    if (rc)
        return rc;
    const message *dup = messages_find(rs, name, len);
    if (dup)
        return rules_error_node(c->src, key, "message '%.*s' is already defined in %s:%zu",
                                (int)len, name, c->files[dup->file].src.name,
                                dup->node->start_mark.line + 1);
    m->key = rules_strndup(c, name, len);
    if (!m->key)
        return -ENOMEM;
    m->node = key;
    m->file = c->file;
    if (val->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, val,
                                "message '%s' must give its text per language, e.g. "
                                "{ %s: \"...\" }",
                                m->key, rs->languages[rs->default_language]);
    size_t nl = rs->n_languages;
    memset(v, 0, nl * RULES_N_CHANNELS * sizeof *v);
    bool has_default = false;
    int failed = 0;
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top;
         p++) {
        size_t lang;
        rc = messages_language_key(c, rules_node(c, p->key), &lang);
        if (!rc) {
            /* the language is there, even if its texts have mistakes */
            if (lang == rs->default_language)
                has_default = true;
            rc = compile_variants(c, m, rules_node(c, p->value), lang, v + lang * RULES_N_CHANNELS);
        }
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        if (lang < 32)
            m->own_languages |= 1u << lang;
    }
    if (!has_default &&
        rules_failed(&failed, rules_error_node(c->src, key,
                                               "message '%s' has no text in the "
                                               "default language '%s'",
                                               m->key, rs->languages[rs->default_language])))
        return failed;
    if (failed)
        return failed;
    const tmpl **text = rules_alloc(c, nl * RULES_N_CHANNELS * sizeof *text);
    if (!text)
        return -ENOMEM;
    const tmpl **d = v + rs->default_language * RULES_N_CHANNELS;
    for (size_t l = 0; l < nl; l++) {
        const tmpl **own = v + l * RULES_N_CHANNELS;
        for (size_t ch = 0; ch < RULES_N_CHANNELS; ch++) {
            const tmpl *t = own[ch] ? own[ch] : own[0] ? own[0] : d[ch] ? d[ch] : d[0];
            text[l * RULES_N_CHANNELS + ch] = t;
        }
    }
    m->text = text;
    return 0;
}

int messages_compile(rules_compiler *c, const yaml_node_t *messages)
{
    ruleset *rs = c->rs;
    if (messages->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, messages,
                                "'messages' must map message keys to texts per language");
    size_t n = (size_t)(messages->data.mapping.pairs.top - messages->data.mapping.pairs.start);
    const tmpl **v = malloc(rs->n_languages * RULES_N_CHANNELS * sizeof *v);
    if (!v)
        return -ENOMEM;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pair = &messages->data.mapping.pairs.start[i];
        message *m = &rs->messages[rs->n_messages];
        memset(m, 0, sizeof *m);
        int rc = compile_message(c, rules_node(c, pair->key), rules_node(c, pair->value), m, v);
        if (m->key)
            rs->n_messages++; /* registered even when broken: its users need no second error */
        if (rules_failed(&failed, rc))
            break;
    }
    free(v);
    return failed;
}

const message *messages_find(const ruleset *rs, const char *key, size_t len)
{
    for (size_t i = 0; i < rs->n_messages; i++)
        if (strlen(rs->messages[i].key) == len && memcmp(rs->messages[i].key, key, len) == 0)
            return &rs->messages[i];
    return NULL;
}

/* ---- checks once everything compiled ---- */

void messages_check(rules_compiler *c)
{
    const ruleset *rs = c->rs;
    for (size_t i = 0; i < rs->n_messages; i++) {
        const message *m = &rs->messages[i];
        rules_enter_file(c, m->file);
        if (!m->said && !m->reasoned) {
            rules_warn_node(c->src, m->node,
                            "message '%s' is never used (no 'say:' or 'reason:' names it)", m->key);
            continue;
        }
        if (!m->said)
            continue; /* a reason: agent_language is enough */
        char missing[256];
        size_t k = 0;
        missing[0] = '\0';
        for (size_t l = 0; l < rs->n_languages && l < 32; l++) {
            if (m->own_languages & (1u << l))
                continue;
            int w =
                snprintf(missing + k, sizeof missing - k, "%s%s", k ? ", " : "", rs->languages[l]);
            if (w < 0 || (size_t)w >= sizeof missing - k)
                break;
            k += (size_t)w;
        }
        if (k)
            rules_warn_node(c->src, m->node,
                            "message '%s' has no text in %s: passengers served in %s get the "
                            "'%s' text; hint: add a text for each language in 'languages'",
                            m->key, missing, strchr(missing, ',') ? "those languages" : "it",
                            rs->languages[rs->default_language]);
    }
    for (size_t i = 0; i < rs->n_labels; i++) {
        const label_table *t = &rs->labels[i];
        if (t->used)
            continue;
        rules_enter_file(c, t->file);
        rules_warn_node(c->src, t->node,
                        "label table '%s' is never used (no placeholder says '| %s')", t->name,
                        t->name);
    }
}
