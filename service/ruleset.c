/* ruleset.c - rule files compiled into a ruleset: see include/ruleset.h and
 * rules/README.md for the language.
 *
 * libyaml's document API gives each file as a node tree with a position for
 * every node. Each mapping is checked against its table of known keys
 * (unknown keys are refused, with a hint when one is a typo away from a known
 * key), then the sections compile in dependency order, across all files:
 * the main file's header (languages, attributes, channels), then labels,
 * messages, groups, and finally rules and decision tables, which refer to
 * all of those. A problem is recorded and compiling goes on, so one run
 * reports every mistake in every file; a ruleset with any error is never
 * handed out. Once everything compiled, the analyses (analyze.c, tables.c,
 * messages_check) add their warnings, and eval.c finds the conditions rules
 * share.
 */
#include "rules_internal.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* A rule file is written by people; anything larger is a mistake. */
#define RULE_FILE_MAX (16u << 20)
/* The ruleset's own memory grows in blocks of this size. */
#define RULESET_BLOCK 16384
/* Most files one ruleset composes. */
#define RULE_FILES_MAX 64

/* ---- helpers shared with messages.c, expr.c, template.c, tables.c ---- */

void *rules_alloc(rules_compiler *c, size_t size)
{
    return arena_alloc(&c->rs->mem, size ? size : 1);
}

const char *rules_strndup(rules_compiler *c, const char *s, size_t len)
{
    return arena_strndup(&c->rs->mem, s, len);
}

yaml_node_t *rules_node(rules_compiler *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

void rules_enter_file(rules_compiler *c, size_t i)
{
    c->file = i;
    c->src = &c->files[i].src;
    c->doc = &c->files[i].doc;
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return "a text";
    }
}

static size_t seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static size_t map_len(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

int rules_scalar(rules_compiler *c, const yaml_node_t *n, const char *what, const char **text,
                 size_t *len)
{
    /* set even on failure: callers' error paths never read them, but the
     * optimiser cannot know that the error code is never 0 */
    *text = "";
    *len = 0;
    if (n->type != YAML_SCALAR_NODE)
        return rules_error_node(c->src, n, "expected %s here, found %s", what, node_kind(n));
    *text = (const char *)n->data.scalar.value;
    *len = n->data.scalar.length;
    return 0;
}

/* A scalar that must not be empty, copied into the ruleset. */
int rules_name_value(rules_compiler *c, const yaml_node_t *n, const char *what, const char **out)
{
    const char *s;
    size_t len;
    *out = NULL;
    int rc = rules_scalar(c, n, what, &s, &len);
    if (rc)
        return rc;
    if (len == 0)
        return rules_error_node(c->src, n, "%s must not be empty", what);
    *out = rules_strndup(c, s, len);
    return *out ? 0 : -ENOMEM;
}

int rules_integer(rules_compiler *c, const yaml_node_t *n, const char *what, long *out)
{
    const char *s;
    size_t len;
    int rc = rules_scalar(c, n, what, &s, &len);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (len == 0 || end != s + len || errno)
        return rules_error_node(c->src, n, "%s must be a whole number, found '%s'", what, s);
    *out = v;
    return 0;
}

static int bool_value(rules_compiler *c, const yaml_node_t *n, const char *what, bool *out)
{
    const char *s;
    size_t len;
    int rc = rules_scalar(c, n, what, &s, &len);
    if (rc)
        return rc;
    if (strcasecmp(s, "true") == 0)
        *out = true;
    else if (strcasecmp(s, "false") == 0)
        *out = false;
    else
        return rules_error_node(c->src, n, "%s must be true or false, found '%s'", what, s);
    return 0;
}

int rules_mapping(rules_compiler *c, const yaml_node_t *n, const char *what,
                  const char *const *keys, size_t n_keys, unsigned required, yaml_node_t **vals)
{
    for (size_t i = 0; i < n_keys; i++)
        vals[i] = NULL;
    if (n->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, n, "%s must be a mapping of keys, found %s", what,
                                node_kind(n));
    int failed = 0;
    unsigned hinted = 0; /* required keys an unknown key was probably meant to be */
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = rules_node(c, p->key);
        const char *s;
        size_t len;
        if (rules_failed(&failed, rules_scalar(c, k, "a key", &s, &len)))
            return failed;
        if (k->type != YAML_SCALAR_NODE)
            continue;
        size_t i;
        for (i = 0; i < n_keys; i++)
            if (strlen(keys[i]) == len && memcmp(keys[i], s, len) == 0)
                break;
        if (i == n_keys) {
            rules_hint h;
            char hint[96];
            rules_hint_init(&h, s, len);
            for (i = 0; i < n_keys; i++)
                rules_hint_try(&h, keys[i]);
            for (i = 0; i < n_keys; i++)
                if (h.best == keys[i])
                    hinted |= 1u << i;
            if (rules_failed(&failed,
                             rules_error_node(c->src, k, "unknown key '%.*s' in %s%s", (int)len, s,
                                              what, rules_hint_text(&h, hint, sizeof hint))))
                return failed;
            continue;
        }
        vals[i] = rules_node(c, p->value);
    }
    for (size_t i = 0; i < n_keys; i++)
        if ((required & (1u << i)) && !vals[i] && !(hinted & (1u << i)) &&
            rules_failed(&failed, rules_error_node(c->src, n, "%s is missing '%s'", what, keys[i])))
            return failed;
    return failed;
}

/* A repeated key silently overrides the first in most YAML readers; here it
 * is an error, for every mapping of the file. */
static int check_duplicate_keys(rules_compiler *c)
{
    int failed = 0;
    for (yaml_node_t *n = c->doc->nodes.start; n < c->doc->nodes.top; n++) {
        if (n->type != YAML_MAPPING_NODE)
            continue;
        yaml_node_pair_t *start = n->data.mapping.pairs.start;
        yaml_node_pair_t *top = n->data.mapping.pairs.top;
        for (yaml_node_pair_t *p = start; p < top; p++) {
            const yaml_node_t *k = rules_node(c, p->key);
            if (k->type != YAML_SCALAR_NODE)
                continue;
            for (yaml_node_pair_t *q = start; q < p; q++) {
                const yaml_node_t *first = rules_node(c, q->key);
                if (first->type == YAML_SCALAR_NODE &&
                    first->data.scalar.length == k->data.scalar.length &&
                    memcmp(first->data.scalar.value, k->data.scalar.value, k->data.scalar.length) ==
                        0) {
                    if (rules_failed(&failed,
                                     rules_error_node(c->src, k,
                                                      "duplicate key '%s' (first given on line "
                                                      "%zu)",
                                                      (const char *)k->data.scalar.value,
                                                      first->start_mark.line + 1)))
                        return failed;
                    break;
                }
            }
        }
    }
    return failed;
}

/* ---- languages ---- */

static bool tag_ok(const char *s, size_t len)
{
    if (!len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
    }
    return true;
}

static int compile_languages(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    if (n->type != YAML_SEQUENCE_NODE)
        return rules_error_node(c->src, n,
                                "'languages' must be a list of language tags, e.g. [en, it]");
    size_t count = seq_len(n);
    if (count == 0)
        return rules_error_node(c->src, n, "'languages' must name at least one language");
    rs->languages = rules_alloc(c, count * sizeof *rs->languages);
    rs->language_len = rules_alloc(c, count * sizeof *rs->language_len);
    if (!rs->languages || !rs->language_len)
        return -ENOMEM;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = rules_node(c, n->data.sequence.items.start[i]);
        const char *s;
        size_t len;
        int rc = rules_scalar(c, item, "a language tag", &s, &len);
        if (!rc && !tag_ok(s, len))
            rc = rules_error_node(c->src, item,
                                  "'%s' is not a language tag (BCP 47: en, it, zh-Hant)", s);
        if (!rc && rules_language_exact(rs, s, len) >= 0)
            rc = rules_error_node(c->src, item, "language '%s' is listed twice", s);
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        rs->languages[rs->n_languages] = rules_strndup(c, s, len);
        if (!rs->languages[rs->n_languages])
            return -ENOMEM;
        rs->language_len[rs->n_languages] = len;
        rs->n_languages++;
    }
    return failed;
}

static int language_value(rules_compiler *c, const yaml_node_t *n, const char *what, size_t *out)
{
    const char *s;
    size_t len;
    int rc = rules_scalar(c, n, what, &s, &len);
    if (rc)
        return rc;
    int i = rules_language_exact(c->rs, s, len);
    if (i < 0) {
        rules_hint h;
        char hint[96];
        rules_hint_init(&h, s, len);
        for (size_t k = 0; k < c->rs->n_languages; k++)
            rules_hint_try(&h, c->rs->languages[k]);
        return rules_error_node(c->src, n, "%s '%s' is not in 'languages'%s", what, s,
                                rules_hint_text(&h, hint, sizeof hint));
    }
    *out = (size_t)i;
    return 0;
}

static int compile_aliases(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    if (n->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, n,
                                "'language_aliases' must map tags to languages, e.g. "
                                "{ zh-TW: zh-Hant }");
    size_t count = map_len(n);
    rs->aliases = rules_alloc(c, (count ? count : 1) * sizeof *rs->aliases);
    if (!rs->aliases)
        return -ENOMEM;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        const yaml_node_t *k = rules_node(c, p->key);
        const char *s;
        size_t len;
        language_alias *a = &rs->aliases[rs->n_aliases];
        int rc = rules_scalar(c, k, "a language tag", &s, &len);
        if (!rc && !tag_ok(s, len))
            rc = rules_error_node(c->src, k, "'%s' is not a language tag", s);
        if (!rc) {
            a->tag = rules_strndup(c, s, len);
            if (!a->tag)
                return -ENOMEM;
            a->tag_len = len;
            rc = language_value(c, rules_node(c, p->value), "the alias target", &a->language);
        }
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        rs->n_aliases++;
    }
    return failed;
}

/* ---- declared attributes and context keys ---- */

static int type_name(rules_compiler *c, const yaml_node_t *n, rules_type *out)
{
    static const struct {
        const char *name;
        rules_type type;
    } types[] = {
        {"text", RT_STRING}, {"number", RT_NUMBER}, {"bool", RT_BOOL},
        {"time", RT_TIME},   {"any", RT_DYNAMIC},
    };
    const char *s;
    size_t len;
    int rc = rules_scalar(c, n, "a type", &s, &len);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strlen(types[i].name) == len && memcmp(types[i].name, s, len) == 0) {
            *out = types[i].type;
            return 0;
        }
    }
    rules_hint h;
    char hint[96];
    rules_hint_init(&h, s, len);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        rules_hint_try(&h, types[i].name);
    return rules_error_node(c->src, n, "unknown type '%.*s'%s (types: text, number, bool, time)",
                            (int)len, s, rules_hint_text(&h, hint, sizeof hint));
}

/* `attributes: [a, b]` (typed by use) or `attributes: { a: number, b: text }`;
 * `context:` likewise, where an untyped key is text. */
static int compile_typed_names(rules_compiler *c, const yaml_node_t *n, const char *what,
                               rules_type untyped, typed_name **out, size_t *count_out)
{
    bool list = n->type == YAML_SEQUENCE_NODE;
    if (!list && n->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, n,
                                "'%s' must list names, e.g. [segment, miles], or give their "
                                "types, e.g. { segment: text, miles: number }",
                                what);
    size_t count = list ? seq_len(n) : map_len(n);
    typed_name *names = rules_alloc(c, (count ? count : 1) * sizeof *names);
    if (!names)
        return -ENOMEM;
    *out = names;
    *count_out = 0;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *k = list ? rules_node(c, n->data.sequence.items.start[i])
                                    : rules_node(c, n->data.mapping.pairs.start[i].key);
        typed_name *t = &names[*count_out];
        t->type = untyped;
        int rc = rules_name_value(c, k, "a name", &t->name);
        if (!rc && strchr(t->name, '.'))
            rc = rules_error_node(c->src, k, "a name in '%s' cannot contain '.'", what);
        for (size_t j = 0; !rc && j < *count_out; j++)
            if (strcmp(names[j].name, t->name) == 0)
                rc = rules_error_node(c->src, k, "'%s' is listed twice in '%s'", t->name, what);
        if (!rc && !list)
            rc = type_name(c, rules_node(c, n->data.mapping.pairs.start[i].value), &t->type);
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        (*count_out)++;
    }
    return failed;
}

/* ---- channels: what each can do ---- */

static int compile_channel_caps(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    if (n->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, n,
                                "'channels' must map channel names to what they can do, e.g. "
                                "{ ivr: { max_actions: 3, cannot: [voucher] } }");
    enum { CH_MAX, CH_CANNOT, CH_DESCRIPTION, N_CH_KEYS };
    static const char *const keys[N_CH_KEYS] = {"max_actions", "cannot", "description"};
    int failed = 0;
    unsigned seen = 0; /* channels given so far: each once */
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = rules_node(c, p->key);
        const char *s;
        size_t len;
        int rc = rules_scalar(c, k, "a channel name", &s, &len);
        int ch = rc ? -1 : rules_channel_lookup(s, len, false);
        if (!rc && ch < 0) {
            rules_hint h;
            char hint[96];
            rules_hint_init(&h, s, len);
            for (unsigned i = 1; i < RULES_N_CHANNELS; i++)
                rules_hint_try(&h, rules_channel_name(i));
            rc = rules_error_node(c->src, k,
                                  "unknown channel '%.*s'%s (channels: desk, kiosk, ivr, web, "
                                  "mobile, call_center)",
                                  (int)len, s, rules_hint_text(&h, hint, sizeof hint));
        }
        /* A channel given twice is a duplicate key, reported as such; its
         * second entry is not compiled over the first. */
        if (!rc && (seen & (1u << ch)))
            continue;
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        seen |= 1u << ch;
        yaml_node_t *v[N_CH_KEYS];
        if (rules_failed(&failed, rules_mapping(c, rules_node(c, p->value), "a channel", keys,
                                                N_CH_KEYS, 0, v)))
            return failed;
        if (v[CH_MAX]) {
            long max = 0;
            rc = rules_integer(c, v[CH_MAX], "'max_actions'", &max);
            if (!rc && max < 1)
                rc = rules_error_node(c->src, v[CH_MAX],
                                      "'max_actions' must be at least 1 (leave it out for no "
                                      "limit)");
            if (rules_failed(&failed, rc))
                return failed;
            if (!rc)
                rs->channel_max[ch] = (size_t)max;
        }
        if (v[CH_DESCRIPTION] &&
            rules_failed(&failed, rules_scalar(c, v[CH_DESCRIPTION], "a description", &s, &len)))
            return failed;
        if (v[CH_CANNOT]) {
            const yaml_node_t *l = v[CH_CANNOT];
            if (l->type != YAML_SEQUENCE_NODE) {
                if (rules_failed(&failed, rules_error_node(c->src, l,
                                                           "'cannot' must list action types, "
                                                           "e.g. [voucher]")))
                    return failed;
                continue;
            }
            size_t count = seq_len(l);
            rs->cannot[ch] = rules_alloc(c, (count ? count : 1) * sizeof *rs->cannot[ch]);
            if (!rs->cannot[ch])
                return -ENOMEM;
            for (size_t i = 0; i < count; i++) {
                const char *type;
                rc = rules_name_value(c, rules_node(c, l->data.sequence.items.start[i]),
                                      "an action type", &type);
                if (rules_failed(&failed, rc))
                    return failed;
                if (!rc)
                    rs->cannot[ch][rs->n_cannot[ch]++] = type;
            }
        }
    }
    return failed;
}

/* ---- exclusive groups ---- */

/* While compiling, groups live in a growing array of the compiler's; they
 * are copied into the ruleset at the end. */
static int group_add(rules_compiler *c, const char *name, int table, bool declared)
{
    ruleset *rs = c->rs;
    if (rs->n_groups == c->groups_cap) {
        size_t cap = c->groups_cap ? c->groups_cap * 2 : 16;
        rule_group *grown = realloc(rs->groups, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        rs->groups = grown;
        c->groups_cap = cap;
    }
    rs->groups[rs->n_groups] = (rule_group){.name = name, .table = table, .declared = declared};
    return (int)rs->n_groups++;
}

static int group_find(const ruleset *rs, const char *name)
{
    for (size_t i = 0; i < rs->n_groups; i++)
        if (rs->groups[i].table < 0 && strcmp(rs->groups[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool groups_declared(const ruleset *rs)
{
    for (size_t i = 0; i < rs->n_groups; i++)
        if (rs->groups[i].declared)
            return true;
    return false;
}

/* `groups: { cabin-change: "At most one change of cabin", ... }` */
static int compile_group_decls(rules_compiler *c, const yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, n,
                                "'groups' must map group names to descriptions, e.g. "
                                "{ cabin-change: \"At most one change of cabin\" }");
    int failed = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = rules_node(c, p->key), *v = rules_node(c, p->value);
        const char *name, *s;
        size_t len;
        int rc = rules_name_value(c, k, "a group name", &name);
        if (!rc && group_find(c->rs, name) >= 0)
            rc = rules_error_node(c->src, k, "group '%s' is declared twice", name);
        if (!rc)
            rc = rules_scalar(c, v, "a description of the group", &s, &len);
        if (!rc) {
            rc = group_add(c, name, -1, true);
            rc = rc < 0 ? rc : 0;
        }
        if (rules_failed(&failed, rc))
            return failed;
    }
    return failed;
}

/* A rule's `group:` (one name or a list), plus `extra` (a table's group)
 * when not -1. */
int rules_compile_groups(rules_compiler *c, const yaml_node_t *n, int extra, rule *r)
{
    size_t count = !n ? 0 : n->type == YAML_SEQUENCE_NODE ? seq_len(n) : 1;
    int *groups = rules_alloc(c, (count + 1) * sizeof *groups);
    if (!groups)
        return -ENOMEM;
    r->groups = groups;
    r->n_groups = 0;
    if (extra >= 0)
        groups[r->n_groups++] = extra;
    if (!n)
        return 0;
    if (n->type == YAML_MAPPING_NODE)
        return rules_error_node(c->src, n,
                                "'group' must be a group name, or a list of them such as "
                                "[service-recovery, cabin-change]");
    int failed = 0;
    bool declared = groups_declared(c->rs);
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item =
            n->type == YAML_SEQUENCE_NODE ? rules_node(c, n->data.sequence.items.start[i]) : n;
        const char *name;
        int rc = rules_name_value(c, item, "'group'", &name);
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        int g = group_find(c->rs, name);
        if (g < 0 && declared) {
            rules_hint h;
            char hint[96];
            rules_hint_init(&h, name, strlen(name));
            for (size_t k = 0; k < c->rs->n_groups; k++)
                if (c->rs->groups[k].declared)
                    rules_hint_try(&h, c->rs->groups[k].name);
            if (rules_failed(&failed,
                             rules_error_node(c->src, item,
                                              "unknown group '%s'%s (the groups are "
                                              "declared under 'groups')",
                                              name, rules_hint_text(&h, hint, sizeof hint))))
                return failed;
            continue;
        }
        if (g < 0) {
            g = group_add(c, name, -1, false);
            if (g < 0)
                return g;
        }
        bool dup = false;
        for (size_t k = 0; k < r->n_groups; k++)
            dup |= groups[k] == g;
        if (dup) {
            if (rules_failed(&failed,
                             rules_error_node(c->src, item, "group '%s' is given twice", name)))
                return failed;
            continue;
        }
        groups[r->n_groups++] = g;
    }
    return failed;
}

/* A table's own group: its rows exclude each other. */
int rules_table_group(rules_compiler *c, const char *table_id, int table)
{
    return group_add(c, table_id, table, false);
}

/* ---- rules and actions ---- */

int rules_message_ref(rules_compiler *c, const yaml_node_t *n, const char *what,
                      const message **out)
{
    const char *s;
    size_t len;
    *out = NULL;
    int rc = rules_scalar(c, n, what, &s, &len);
    if (rc)
        return rc;
    const message *m = messages_find(c->rs, s, len);
    if (m) {
        message *mm = (message *)m; /* marks are the compiler's, not the ruleset's */
        if (strcmp(what, "say") == 0)
            mm->said = true;
        else
            mm->reasoned = true;
        *out = m;
        return 0;
    }
    rules_hint h;
    char hint[96];
    rules_hint_init(&h, s, len);
    for (size_t i = 0; i < c->rs->n_messages; i++)
        rules_hint_try(&h, c->rs->messages[i].key);
    return rules_error_node(c->src, n, "unknown message '%.*s' in '%s'%s", (int)len, s, what,
                            rules_hint_text(&h, hint, sizeof hint));
}

static int compile_channels(rules_compiler *c, const yaml_node_t *n, unsigned *mask)
{
    const yaml_node_t *single = n->type == YAML_SCALAR_NODE ? n : NULL;
    size_t count = single ? 1 : 0;
    if (!single) {
        if (n->type != YAML_SEQUENCE_NODE)
            return rules_error_node(c->src, n, "'channels' must be a list such as [desk, kiosk]");
        count = seq_len(n);
        if (count == 0)
            return rules_error_node(c->src, n,
                                    "an empty 'channels' list would never give this action");
    }
    *mask = 0;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = single ? single : rules_node(c, n->data.sequence.items.start[i]);
        const char *s;
        size_t len;
        int rc = rules_scalar(c, item, "a channel name", &s, &len);
        int ch = rc ? -1 : rules_channel_lookup(s, len, false);
        if (!rc && ch < 0) {
            rules_hint h;
            char hint[96];
            rules_hint_init(&h, s, len);
            for (unsigned k = 1; k < RULES_N_CHANNELS; k++)
                rules_hint_try(&h, rules_channel_name(k));
            rc = rules_error_node(c->src, item,
                                  "unknown channel '%.*s'%s (channels: desk, kiosk, ivr, web, "
                                  "mobile, call_center)",
                                  (int)len, s, rules_hint_text(&h, hint, sizeof hint));
        }
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        *mask |= 1u << ch;
    }
    return failed;
}

static int compile_params(rules_compiler *c, const yaml_node_t *n, rule_action *a,
                          bool has_language)
{
    if (n->type != YAML_MAPPING_NODE)
        return rules_error_node(c->src, n, "'params' must map names to values, e.g. { cabin: F }");
    size_t count = map_len(n);
    a->params = rules_alloc(c, (count ? count : 1) * sizeof *a->params);
    if (!a->params)
        return -ENOMEM;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        const yaml_node_t *k = rules_node(c, p->key), *v = rules_node(c, p->value);
        rule_param *param = &a->params[a->n_params];
        int rc = rules_name_value(c, k, "a parameter name", &param->name);
        if (!rc && has_language && strcmp(param->name, "language") == 0)
            rc = rules_error_node(c->src, k,
                                  "params.language is set by the action's 'language:'; keep "
                                  "only one of them");
        if (!rc && v->type != YAML_SCALAR_NODE)
            rc = rules_error_node(c->src, v, "parameter '%s' must be a text (placeholders allowed)",
                                  param->name);
        tmpl *t = NULL;
        if (!rc)
            rc = tmpl_compile(c, v, &t);
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        param->value = t;
        a->n_params++;
    }
    return failed;
}

enum {
    A_ACTION,
    A_PARAMS,
    A_SAY,
    A_REASON,
    A_FOLLOW_UP,
    A_CHANNELS,
    A_LANGUAGE,
    A_LETTER,
    N_ACTION_KEYS
};
static const char *const action_keys[N_ACTION_KEYS] = {
    "action", "params", "say", "reason", "follow_up", "channels", "language", "letter",
};

/* An action's `letter:`: a letter of the `letters:` sections. */
static int letter_ref(rules_compiler *c, const yaml_node_t *n, const letter **out)
{
    const char *s;
    size_t len;
    int rc = rules_scalar(c, n, "a letter name", &s, &len);
    if (rc)
        return rc;
    *out = letters_find(c->rs, s, len);
    if (*out)
        return 0;
    rules_hint h;
    char hint[96];
    rules_hint_init(&h, s, len);
    for (size_t i = 0; i < c->rs->n_letters; i++)
        rules_hint_try(&h, c->rs->letters[i].name);
    return rules_error_node(c->src, n,
                            "unknown letter '%.*s' in 'letter'%s (letters are "
                            "defined under 'letters:')",
                            (int)len, s, rules_hint_text(&h, hint, sizeof hint));
}

static int compile_action(rules_compiler *c, const yaml_node_t *n, const message *rule_reason,
                          rule_action *a)
{
    yaml_node_t *v[N_ACTION_KEYS];
    memset(a, 0, sizeof *a);
    a->declared = RULES_ALL_CHANNELS;
    a->reason = rule_reason;
    a->type = "";
    a->node = n;
    int failed = 0;
    if (rules_failed(&failed, rules_mapping(c, n, "an action", action_keys, N_ACTION_KEYS,
                                            1u << A_ACTION, v)))
        return failed;
    if (v[A_ACTION]) {
        const char *type;
        int rc = rules_name_value(c, v[A_ACTION], "'action'", &type);
        if (rules_failed(&failed, rc))
            return failed;
        if (!rc)
            a->type = type;
    }
    if (v[A_LANGUAGE]) {
        tmpl *t = NULL;
        int rc = v[A_LANGUAGE]->type != YAML_SCALAR_NODE
                     ? rules_error_node(c->src, v[A_LANGUAGE],
                                        "'language' must be a text such as "
                                        "\"{{customer.language}}\"")
                     : tmpl_compile(c, v[A_LANGUAGE], &t);
        if (rules_failed(&failed, rc))
            return failed;
        a->language = t;
    }
    if (v[A_PARAMS] &&
        rules_failed(&failed, compile_params(c, v[A_PARAMS], a, v[A_LANGUAGE] != NULL)))
        return failed;
    if (v[A_SAY] && rules_failed(&failed, rules_message_ref(c, v[A_SAY], "say", &a->say)))
        return failed;
    if (v[A_REASON] &&
        rules_failed(&failed, rules_message_ref(c, v[A_REASON], "reason", &a->reason)))
        return failed;
    if (v[A_FOLLOW_UP] &&
        rules_failed(&failed, bool_value(c, v[A_FOLLOW_UP], "'follow_up'", &a->follow_up)))
        return failed;
    if (v[A_CHANNELS] && rules_failed(&failed, compile_channels(c, v[A_CHANNELS], &a->declared)))
        return failed;
    a->channels = a->declared;
    /* the letter it sends: the one it names, else the one named as its type */
    if (v[A_LETTER] && rules_failed(&failed, letter_ref(c, v[A_LETTER], &a->letter)))
        return failed;
    if (!v[A_LETTER])
        a->letter = letters_find(c->rs, a->type, strlen(a->type));
    return failed;
}

int rules_compile_actions(rules_compiler *c, const yaml_node_t *then, const message *reason,
                          bool allow_empty, rule *r)
{
    r->n_actions = 0;
    r->actions = NULL;
    if (then->type != YAML_SEQUENCE_NODE || (!allow_empty && seq_len(then) == 0))
        return rules_error_node(c->src, then,
                                "'then' must be a non-empty list of actions (- action: ...)");
    size_t count = seq_len(then);
    r->actions = rules_alloc(c, (count ? count : 1) * sizeof *r->actions);
    if (!r->actions)
        return -ENOMEM;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        if (rules_failed(&failed,
                         compile_action(c, rules_node(c, then->data.sequence.items.start[i]),
                                        reason, &r->actions[i])))
            return failed;
        r->n_actions = i + 1;
    }
    return failed;
}

const char *rules_expr_text(rules_compiler *c, const yaml_node_t *when, const expr *e)
{
    const char *s = (const char *)when->data.scalar.value;
    size_t end = e->end <= when->data.scalar.length ? e->end : when->data.scalar.length;
    size_t start = e->pos <= end ? e->pos : end;
    char *out = rules_alloc(c, end - start + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    bool blank = false;
    for (size_t i = start; i < end; i++) {
        char ch = s[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            blank = true;
            continue;
        }
        if (blank && k)
            out[k++] = ' ';
        blank = false;
        out[k++] = ch;
    }
    out[k] = '\0';
    return out;
}

/* A rule's top-level conditions: the operands of its outermost `and`. */
static int rule_conds(rules_compiler *c, const yaml_node_t *when, rule *r)
{
    const expr *e = r->when;
    size_t n = e->op == EX_AND ? e->n : 1;
    rule_cond *conds = rules_alloc(c, n * sizeof *conds);
    if (!conds)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        conds[i].e = e->op == EX_AND ? e->u.kids[i] : e;
        conds[i].text = rules_expr_text(c, when, conds[i].e);
        if (!conds[i].text)
            return -ENOMEM;
    }
    r->conds = conds;
    r->n_conds = n;
    return 0;
}

int rules_check_id(rules_compiler *c, const yaml_node_t *n, const char *id, size_t upto)
{
    const ruleset *rs = c->rs;
    for (size_t i = 0; i < upto; i++) {
        if (!rs->rules[i].id || strcmp(rs->rules[i].id, id) != 0)
            continue;
        const rule_origin *o = &c->origins[i];
        const yaml_node_t *first = o->id ? o->id : o->node;
        if (o->file == c->file)
            return rules_error_node(c->src, n, "duplicate rule id '%s' (first used on line %zu)",
                                    id, first->start_mark.line + 1);
        return rules_error_node(c->src, n, "duplicate rule id '%s' (first used in %s:%zu)", id,
                                c->files[o->file].src.name, first->start_mark.line + 1);
    }
    for (size_t i = 0; i < rs->n_tables; i++)
        if (rs->tables[i].id && strcmp(rs->tables[i].id, id) == 0)
            return rules_error_node(c->src, n, "'%s' is already the id of a decision table", id);
    return 0;
}

enum { R_ID, R_DESCRIPTION, R_PRIORITY, R_GROUP, R_WHEN, R_REASON, R_THEN, N_RULE_KEYS };
static const char *const rule_keys[N_RULE_KEYS] = {
    "id", "description", "priority", "group", "when", "reason", "then",
};

static int compile_rule(rules_compiler *c, const yaml_node_t *n, rule *r, rule_origin *o)
{
    yaml_node_t *v[N_RULE_KEYS];
    unsigned required = 1u << R_ID | 1u << R_WHEN | 1u << R_THEN;
    int failed = 0;
    int rc = rules_mapping(c, n, "a rule", rule_keys, N_RULE_KEYS, required, v);
    if (rules_failed(&failed, rc))
        return failed;
    if (n->type != YAML_MAPPING_NODE)
        return failed;
    r->table = -1;
    o->id = v[R_ID];
    o->when = v[R_WHEN];
    o->group = v[R_GROUP];
    if (v[R_ID]) {
        const char *id;
        rc = rules_name_value(c, v[R_ID], "a rule id", &id);
        if (!rc) {
            rc = rules_check_id(c, v[R_ID], id, r->index);
            r->id = id; /* even a duplicate: later rules compare with it */
        }
        if (rules_failed(&failed, rc))
            return failed;
    }
    if (v[R_DESCRIPTION]) {
        const char *s;
        size_t len;
        if (rules_failed(&failed, rules_scalar(c, v[R_DESCRIPTION], "a description", &s, &len)))
            return failed;
    }
    if (v[R_PRIORITY] &&
        rules_failed(&failed, rules_integer(c, v[R_PRIORITY], "'priority'", &r->priority)))
        return failed;
    if (rules_failed(&failed, rules_compile_groups(c, v[R_GROUP], -1, r)))
        return failed;
    if (v[R_WHEN]) {
        expr *when = NULL;
        if (v[R_WHEN]->type != YAML_SCALAR_NODE)
            rc = rules_error_node(c->src, v[R_WHEN],
                                  "'when' must be a condition written as text, found %s (use "
                                  "'when: >' for a long condition)",
                                  node_kind(v[R_WHEN]));
        else
            rc = expr_compile(c, v[R_WHEN], &when);
        if (!rc) {
            r->when = when;
            rc = rule_conds(c, v[R_WHEN], r);
        }
        if (rules_failed(&failed, rc))
            return failed;
    }
    const message *reason = NULL;
    if (v[R_REASON] && rules_failed(&failed, rules_message_ref(c, v[R_REASON], "reason", &reason)))
        return failed;
    if (v[R_THEN] && rules_failed(&failed, rules_compile_actions(c, v[R_THEN], reason, false, r)))
        return failed;
    return failed;
}

static int compile_rules(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    if (n->type != YAML_SEQUENCE_NODE)
        return rules_error_node(c->src, n, "'rules' must be a list of rules (- id: ...), found %s",
                                node_kind(n));
    int failed = 0;
    for (size_t i = 0; i < seq_len(n); i++) {
        size_t k = rs->n_rules;
        rule *r = &rs->rules[k];
        rule_origin *o = &c->origins[k];
        memset(r, 0, sizeof *r);
        r->index = k;
        r->table = -1;
        o->file = c->file;
        o->node = rules_node(c, n->data.sequence.items.start[i]);
        int rc = compile_rule(c, o->node, r, o);
        rs->n_rules++;
        if (rc) {
            o->broken = true;
            if (rules_failed(&failed, rc))
                return failed;
        }
    }
    return failed;
}

/* ---- the files ---- */

enum {
    K_RULESET,
    K_VERSION,
    K_DESCRIPTION,
    K_INCLUDE,
    K_LANGUAGES,
    K_DEFAULT_LANGUAGE,
    K_AGENT_LANGUAGE,
    K_LANGUAGE_ALIASES,
    K_ATTRIBUTES,
    K_CONTEXT,
    K_MAX_ACTIONS,
    K_CHANNELS,
    K_GROUPS,
    K_LABELS,
    K_MESSAGES,
    K_RULES,
    K_TABLES,
    K_POLICY,
    K_LETTERS,
    N_TOP_KEYS
};
static const char *const top_keys[N_TOP_KEYS] = {
    "ruleset",    "version",          "description",    "include",
    "languages",  "default_language", "agent_language", "language_aliases",
    "attributes", "context",          "max_actions",    "channels",
    "groups",     "labels",           "messages",       "rules",
    "tables",     "policy",           "letters",
};
/* Keys a part file may hold; the others belong to the main file. */
static const unsigned part_keys = 1u << K_DESCRIPTION | 1u << K_GROUPS | 1u << K_LABELS |
                                  1u << K_MESSAGES | 1u << K_RULES | 1u << K_TABLES |
                                  1u << K_LETTERS;

typedef struct file_keys {
    yaml_node_t *v[N_TOP_KEYS];
} file_keys;

static int compile_header(rules_compiler *c, const file_keys *k)
{
    ruleset *rs = c->rs;
    yaml_node_t *const *v = k->v;
    int failed = 0, rc;
    if (v[K_RULESET] &&
        rules_failed(&failed, rules_name_value(c, v[K_RULESET], "'ruleset'", &rs->name)))
        return failed;
    if (v[K_VERSION] &&
        rules_failed(&failed, rules_name_value(c, v[K_VERSION], "'version'", &rs->version)))
        return failed;
    if (v[K_DESCRIPTION]) {
        const char *s;
        size_t len;
        if (rules_failed(&failed, rules_scalar(c, v[K_DESCRIPTION], "a description", &s, &len)))
            return failed;
    }
    if (!v[K_LANGUAGES])
        return failed;
    if (rules_failed(&failed, compile_languages(c, v[K_LANGUAGES])))
        return failed;
    if (rs->n_languages == 0)
        return failed ? failed : -EINVAL;
    if (!v[K_DEFAULT_LANGUAGE])
        return failed;
    rc = language_value(c, v[K_DEFAULT_LANGUAGE], "default_language", &rs->default_language);
    if (rc) {
        rules_failed(&failed, rc);
        return failed;
    }
    rs->agent_language = rs->default_language;
    if (v[K_AGENT_LANGUAGE] &&
        rules_failed(&failed,
                     language_value(c, v[K_AGENT_LANGUAGE], "agent_language", &rs->agent_language)))
        return failed;
    if (v[K_LANGUAGE_ALIASES] && rules_failed(&failed, compile_aliases(c, v[K_LANGUAGE_ALIASES])))
        return failed;
    rules_language_index(rs);
    if (v[K_ATTRIBUTES] &&
        rules_failed(&failed, compile_typed_names(c, v[K_ATTRIBUTES], "attributes", RT_DYNAMIC,
                                                  &rs->attributes, &rs->n_attributes)))
        return failed;
    if (v[K_CONTEXT] &&
        rules_failed(&failed, compile_typed_names(c, v[K_CONTEXT], "context", RT_STRING,
                                                  &rs->context, &rs->n_context)))
        return failed;
    if (v[K_MAX_ACTIONS]) {
        long max = 0;
        rc = rules_integer(c, v[K_MAX_ACTIONS], "'max_actions'", &max);
        if (!rc && max < 1)
            rc = rules_error_node(c->src, v[K_MAX_ACTIONS],
                                  "'max_actions' must be at least 1 (leave it out for no limit)");
        if (rules_failed(&failed, rc))
            return failed;
        if (!rc)
            rs->max_actions = (size_t)max;
    }
    if (v[K_CHANNELS] && rules_failed(&failed, compile_channel_caps(c, v[K_CHANNELS])))
        return failed;
    return failed;
}

/* The ruleset's id: name@version+hash8, the hash (FNV-1a, 64 bits) over
 * every file's content in composition order. */
static int make_id(rules_compiler *c)
{
    ruleset *rs = c->rs;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < c->n_files; i++) {
        const rules_source *s = &c->files[i].src;
        for (size_t k = 0; k < s->len; k++) {
            h ^= (unsigned char)s->text[k];
            h *= 0x100000001b3ull;
        }
        uint64_t len = s->len;
        for (int k = 0; k < 8; k++) {
            h ^= (len >> (8 * k)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)h);
    rs->hash = rules_strndup(c, hash, 16);
    size_t idlen = strlen(rs->name) + 1 + strlen(rs->version) + 1 + 8;
    char *id = rules_alloc(c, idlen + 1);
    if (!rs->hash || !id)
        return -ENOMEM;
    snprintf(id, idlen + 1, "%s@%s+%.8s", rs->name, rs->version, hash);
    rs->id = id;
    rs->files = rules_alloc(c, c->n_files * sizeof *rs->files);
    if (!rs->files)
        return -ENOMEM;
    for (size_t i = 0; i < c->n_files; i++) {
        rs->files[i] = rules_strndup(c, c->files[i].src.name, strlen(c->files[i].src.name));
        if (!rs->files[i])
            return -ENOMEM;
    }
    rs->n_files = c->n_files;
    return 0;
}

/* Actions a channel cannot perform are left out there, and each channel's
 * limit falls back to the ruleset's. */
static void apply_channel_caps(ruleset *rs)
{
    for (unsigned ch = 0; ch < RULES_N_CHANNELS; ch++)
        if (!rs->channel_max[ch])
            rs->channel_max[ch] = rs->max_actions;
    for (size_t i = 0; i < rs->n_rules; i++) {
        rule *r = &rs->rules[i];
        for (size_t k = 0; k < r->n_actions; k++) {
            rule_action *a = &r->actions[k];
            a->channels = a->declared;
            for (unsigned ch = 1; ch < RULES_N_CHANNELS; ch++)
                for (size_t j = 0; j < rs->n_cannot[ch]; j++)
                    if (strcmp(rs->cannot[ch][j], a->type) == 0)
                        a->channels &= ~(1u << ch);
        }
    }
}

static int yaml_error(rules_compiler *c, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return -ENOMEM;
    const char *problem = p->problem ? p->problem : "cannot read the YAML";
    /* the reader (encoding) reports a byte offset, the scanner and parser a mark */
    size_t at = p->error == YAML_READER_ERROR ? p->problem_offset
                                              : rules_source_mark_offset(c->src, p->problem_mark);
    if (p->context)
        return rules_error_at(c->src, at, "%s (%s)", problem, p->context);
    return rules_error_at(c->src, at, "%s", problem);
}

/* Parses file i's text into its document. */
static int parse_file(rules_compiler *c, size_t i)
{
    rules_file *f = &c->files[i];
    rules_enter_file(c, i);
    yaml_parser_t parser;
    yaml_document_t extra;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)f->src.text, f->src.len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    int rc = 0;
    if (!yaml_parser_load(&parser, &f->doc)) {
        rc = yaml_error(c, &parser);
        goto out;
    }
    f->loaded = true;
    f->root = yaml_document_get_root_node(&f->doc);
    if (!f->root) {
        rc = rules_error_at(c->src, 0, "the rule file is empty");
        goto out;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        rc = yaml_error(c, &parser);
        goto out;
    }
    yaml_node_t *second = yaml_document_get_root_node(&extra);
    if (second) {
        size_t at = rules_source_mark_offset(c->src, second->start_mark);
        rc = rules_error_at(c->src, at, "a rule file holds one YAML document, found a second");
    }
    yaml_document_delete(&extra);
    if (!rc)
        rc = check_duplicate_keys(c);
out:
    yaml_parser_delete(&parser);
    return rc;
}

/* The text of a rule file, without a byte order mark (editors on some
 * systems start UTF-8 files with one; skipping it keeps line 1's columns
 * right). */
typedef struct loaded_text {
    char *owned; /* malloc'd, or NULL for caller-owned text */
    const char *name;
    const char *text;
    size_t len;
    char *name_owned;
} loaded_text;

static int read_text(const char *path, size_t index, ruleset_diags *diags, loaded_text *out)
{
    memset(out, 0, sizeof *out);
    out->name = path;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int e = errno;
        return rules_error_file(diags, path, index, -e, "%s", strerror(e));
    }
    int rc = 0;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        rc = rules_error_file(diags, path, index, -errno, "%s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = rules_error_file(diags, path, index, -EINVAL, "not a regular file");
        goto out;
    }
    if ((unsigned long long)st.st_size > RULE_FILE_MAX) {
        rc = rules_error_file(diags, path, index, -EINVAL, "rule file larger than %u MiB",
                              RULE_FILE_MAX >> 20);
        goto out;
    }
    size_t size = (size_t)st.st_size;
    out->owned = malloc(size ? size : 1);
    if (!out->owned) {
        rc = -ENOMEM;
        goto out;
    }
    if (fread(out->owned, 1, size, fp) != size) {
        rc = rules_error_file(diags, path, index, -EIO, "read error");
        goto out;
    }
    out->text = out->owned;
    out->len = size;
out:
    fclose(fp);
    return rc;
}

static void strip_bom(loaded_text *t)
{
    if (t->len >= 3 && memcmp(t->text, "\xEF\xBB\xBF", 3) == 0) {
        t->text += 3;
        t->len -= 3;
    }
}

/* A compile over texts[0..n); with from_disk, the main file's includes are
 * read too, and texts may grow to RULE_FILES_MAX. */
typedef struct compile_job {
    loaded_text *texts;
    size_t n;
    bool from_disk;
} compile_job;

/* The path of an include, relative to the main file's directory. */
static char *include_path(const char *main_path, const char *rel)
{
    if (rel[0] == '/')
        return strdup(rel);
    char *copy = strdup(main_path);
    if (!copy)
        return NULL;
    const char *dir = dirname(copy);
    size_t size = strlen(dir) + 1 + strlen(rel) + 1;
    char *p = malloc(size);
    if (p)
        snprintf(p, size, "%s/%s", dir, rel);
    free(copy);
    return p;
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return strcmp(a, b) == 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static bool has_key(rules_compiler *c, const yaml_node_t *root, const char *key)
{
    if (!root || root->type != YAML_MAPPING_NODE)
        return false;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = rules_node(c, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return true;
    }
    return false;
}

/* Reads the main file's (files[0]) `include:` list; the included files go
 * right after it. Problems in an included file sort after the files given. */
static int read_includes(rules_compiler *c, compile_job *job, const yaml_node_t *inc)
{
    rules_enter_file(c, 0);
    if (!job->from_disk)
        return rules_error_node(c->src, inc,
                                "'include' needs rule files on disk; give the files to compile "
                                "together instead");
    const yaml_node_t *single = inc->type == YAML_SCALAR_NODE ? inc : NULL;
    if (!single && inc->type != YAML_SEQUENCE_NODE)
        return rules_error_node(c->src, inc,
                                "'include' must list rule files, e.g. [recovery.yaml, "
                                "boarding.yaml]");
    size_t count = single ? 1 : seq_len(inc);
    size_t given = job->n, added = 0;
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        rules_enter_file(c, 0);
        const yaml_node_t *item =
            single ? single : rules_node(c, inc->data.sequence.items.start[i]);
        const char *rel;
        size_t len;
        int rc = rules_scalar(c, item, "a file name", &rel, &len);
        if (!rc && len == 0)
            rc = rules_error_node(c->src, item, "an included file name must not be empty");
        if (rc) {
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        if (job->n >= RULE_FILES_MAX) {
            rules_failed(&failed, rules_error_node(c->src, item, "too many rule files (at most %d)",
                                                   RULE_FILES_MAX));
            return failed;
        }
        char *path = include_path(job->texts[0].name, rel);
        if (!path)
            return -ENOMEM;
        bool dup = false;
        for (size_t k = 0; k < job->n && !dup; k++)
            dup = same_file(job->texts[k].name, path);
        loaded_text t;
        if (!dup) {
            rc = read_text(path, 0, NULL, &t);
            if (rc == -ENOMEM) {
                free(path);
                return rc;
            }
        }
        if (dup || rc) {
            rc = dup ? rules_error_node(c->src, item, "'%s' is already part of the ruleset", rel)
                     : rules_error_node(
                           c->src, item, "cannot read the included file '%s': %s", path,
                           rc == -EINVAL ? "not a regular file, or too large" : strerror(-rc));
            free(path);
            if (rules_failed(&failed, rc))
                return failed;
            continue;
        }
        t.name = path;
        t.name_owned = path;
        strip_bom(&t);
        /* insert at 1 + added: after the main file and earlier includes */
        size_t at = 1 + added;
        memmove(&job->texts[at + 1], &job->texts[at], (job->n - at) * sizeof *job->texts);
        memmove(&c->files[at + 1], &c->files[at], (job->n - at) * sizeof *c->files);
        job->texts[at] = t;
        memset(&c->files[at], 0, sizeof c->files[at]);
        job->n++;
        c->n_files++;
        added++;
        rc = rules_source_init(&c->files[at].src, t.name, t.text, t.len, given + added - 1,
                               c->diags);
        if (rc)
            return rc;
        rc = parse_file(c, at);
        if (rules_failed(&failed, rc))
            return failed;
        if (!rc && has_key(c, c->files[at].root, "ruleset"))
            rules_failed(&failed, rules_error_node(c->src, c->files[at].root,
                                                   "an included file is a part of the ruleset: "
                                                   "leave 'ruleset:' out of it"));
    }
    return failed;
}

/* Everything, in order: see the comment at the top. */
static int compile_all(rules_compiler *c, compile_job *job)
{
    ruleset *rs = c->rs;
    int failed = 0, rc;

    for (size_t i = 0; i < c->n_files; i++) {
        rc = parse_file(c, i);
        if (rules_failed(&failed, rc))
            return failed;
    }
    /* the main file: the one that names the ruleset */
    size_t main = c->n_files;
    for (size_t i = 0; i < c->n_files; i++) {
        rules_enter_file(c, i);
        if (!has_key(c, c->files[i].root, "ruleset"))
            continue;
        if (main == c->n_files) {
            main = i;
            continue;
        }
        if (rules_failed(&failed, rules_error_node(c->src, c->files[i].root,
                                                   "a ruleset has one main file, and '%s' "
                                                   "already names it; leave 'ruleset:' out of "
                                                   "the other files",
                                                   c->files[main].src.name)))
            return failed;
    }
    if (main == c->n_files) {
        rules_enter_file(c, 0);
        if (c->files[0].loaded && c->files[0].root)
            rules_failed(&failed, rules_error_node(c->src, c->files[0].root,
                                                   "the rule file is missing 'ruleset'"));
        return failed ? failed : -EINVAL;
    }
    c->files[main].main = true;

    /* the main file first, the others in the order given; the main file's
     * includes right after it */
    if (main != 0) {
        rules_file mf = c->files[main];
        loaded_text mt = job->texts[main];
        memmove(&c->files[1], &c->files[0], main * sizeof *c->files);
        memmove(&job->texts[1], &job->texts[0], main * sizeof *job->texts);
        c->files[0] = mf;
        job->texts[0] = mt;
    }
    rules_enter_file(c, 0);
    yaml_node_t *root = c->files[0].root;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = rules_node(c, p->key);
        if (k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, "include") == 0) {
            rc = read_includes(c, job, rules_node(c, p->value));
            if (rules_failed(&failed, rc))
                return failed;
            break;
        }
    }

    /* top-level keys of every file */
    file_keys *keys = calloc(c->n_files, sizeof *keys);
    if (!keys)
        return -ENOMEM;
    for (size_t i = 0; i < c->n_files; i++) {
        rules_file *f = &c->files[i];
        if (!f->loaded || !f->root)
            continue;
        rules_enter_file(c, i);
        unsigned required = f->main ? 1u << K_RULESET | 1u << K_VERSION | 1u << K_LANGUAGES |
                                          1u << K_DEFAULT_LANGUAGE
                                    : 0;
        /* a ruleset of one file needs rules (or tables) */
        if (f->main && c->n_files == 1 && !has_key(c, f->root, "tables"))
            required |= 1u << K_RULES;
        rc = rules_mapping(c, f->root, "the rule file", top_keys, N_TOP_KEYS, required, keys[i].v);
        if (rules_failed(&failed, rc))
            goto out;
        if (f->main)
            continue;
        for (size_t k = 0; k < N_TOP_KEYS; k++) {
            if (!keys[i].v[k] || (part_keys & (1u << k)))
                continue;
            /* the key node: the pair whose value this is */
            for (yaml_node_pair_t *p = f->root->data.mapping.pairs.start;
                 p < f->root->data.mapping.pairs.top; p++) {
                if (rules_node(c, p->value) != keys[i].v[k])
                    continue;
                if (rules_failed(&failed, rules_error_node(c->src, rules_node(c, p->key),
                                                           "'%s' belongs in the main rule file "
                                                           "(%s)",
                                                           top_keys[k], c->files[0].src.name)))
                    goto out;
                break;
            }
            keys[i].v[k] = NULL;
        }
    }

    rules_enter_file(c, 0);
    rc = compile_header(c, &keys[0]);
    if (rules_failed(&failed, rc))
        goto out;
    if (!rs->name || !rs->version || rs->n_languages == 0 || !keys[0].v[K_DEFAULT_LANGUAGE] || rc) {
        /* without a header nothing else can be checked meaningfully */
        if (!failed)
            failed = -EINVAL;
        goto out;
    }

    /* room for every file's labels, messages, letters, rules and tables */
    size_t n_labels = 0, n_messages = 0, n_rules = 0, n_tables = 0, n_letters = 0;
    for (size_t i = 0; i < c->n_files; i++) {
        yaml_node_t **v = keys[i].v;
        rules_enter_file(c, i);
        if (v[K_LABELS] && v[K_LABELS]->type == YAML_MAPPING_NODE)
            n_labels += map_len(v[K_LABELS]);
        if (v[K_MESSAGES] && v[K_MESSAGES]->type == YAML_MAPPING_NODE)
            n_messages += map_len(v[K_MESSAGES]);
        if (v[K_LETTERS] && v[K_LETTERS]->type == YAML_MAPPING_NODE)
            n_letters += map_len(v[K_LETTERS]);
        if (v[K_RULES] && v[K_RULES]->type == YAML_SEQUENCE_NODE)
            n_rules += seq_len(v[K_RULES]);
        if (v[K_TABLES]) {
            size_t t = 0;
            n_rules += tables_count_rows(c, v[K_TABLES], &t);
            n_tables += t;
        }
    }
    rs->labels = rules_alloc(c, (n_labels ? n_labels : 1) * sizeof *rs->labels);
    rs->messages = rules_alloc(c, (n_messages ? n_messages : 1) * sizeof *rs->messages);
    rs->rules = rules_alloc(c, (n_rules ? n_rules : 1) * sizeof *rs->rules);
    rs->tables = rules_alloc(c, (n_tables ? n_tables : 1) * sizeof *rs->tables);
    rs->letters = rules_alloc(c, (n_letters ? n_letters : 1) * sizeof *rs->letters);
    c->origins = calloc(n_rules ? n_rules : 1, sizeof *c->origins);
    if (!rs->labels || !rs->messages || !rs->rules || !rs->tables || !rs->letters || !c->origins) {
        failed = -ENOMEM;
        goto out;
    }
    memset(rs->labels, 0, (n_labels ? n_labels : 1) * sizeof *rs->labels);
    memset(rs->messages, 0, (n_messages ? n_messages : 1) * sizeof *rs->messages);

    for (size_t i = 0; i < c->n_files; i++) {
        rules_enter_file(c, i);
        if (keys[i].v[K_LABELS] &&
            rules_failed(&failed, messages_compile_labels(c, keys[i].v[K_LABELS])))
            goto out;
    }
    for (size_t i = 0; i < c->n_files; i++) {
        rules_enter_file(c, i);
        if (keys[i].v[K_MESSAGES] &&
            rules_failed(&failed, messages_compile(c, keys[i].v[K_MESSAGES])))
            goto out;
    }
    for (size_t i = 0; i < c->n_files; i++) {
        rules_enter_file(c, i);
        if (keys[i].v[K_LETTERS] && rules_failed(&failed, letters_compile(c, keys[i].v[K_LETTERS])))
            goto out;
    }
    for (size_t i = 0; i < c->n_files; i++) {
        rules_enter_file(c, i);
        if (keys[i].v[K_GROUPS] &&
            rules_failed(&failed, compile_group_decls(c, keys[i].v[K_GROUPS])))
            goto out;
    }
    for (size_t i = 0; i < c->n_files; i++) {
        rules_enter_file(c, i);
        if (keys[i].v[K_RULES] && rules_failed(&failed, compile_rules(c, keys[i].v[K_RULES])))
            goto out;
        if (keys[i].v[K_TABLES] && rules_failed(&failed, tables_compile(c, keys[i].v[K_TABLES])))
            goto out;
    }
    /* the policy reads the action types the rules give */
    rules_enter_file(c, 0);
    if (keys[0].v[K_POLICY] && rules_failed(&failed, policy_compile(c, keys[0].v[K_POLICY])))
        goto out;
    apply_channel_caps(rs);
    rc = make_id(c);
    if (rules_failed(&failed, rc))
        goto out;
    /* Warnings about rules hold even beside errors elsewhere (a rule whose
     * condition did not compile is left out); the others would only echo
     * the errors (a misspelt 'say:' leaves its message unused). */
    if (failed != -ENOMEM)
        rules_analyze(c);
    if (!failed) {
        messages_check(c);
        letters_check(c);
        tables_check(c);
        failed = rules_share_conditions(c);
    }
out:
    free(keys);
    return failed;
}

static int compile_job_run(compile_job *job, ruleset **out, ruleset_diags *diags)
{
    *out = NULL;
    rules_compiler c = {.diags = diags};
    int rc = 0;
    ruleset *rs = calloc(1, sizeof *rs);
    c.files = calloc(RULE_FILES_MAX, sizeof *c.files);
    if (!rs || !c.files) {
        free(rs);
        free(c.files);
        return -ENOMEM;
    }
    rc = arena_init(&rs->mem, RULESET_BLOCK);
    if (rc) {
        free(rs);
        free(c.files);
        return rc;
    }
    c.rs = rs;
    c.n_files = job->n;
    for (size_t i = 0; i < job->n; i++) {
        strip_bom(&job->texts[i]);
        rc = rules_source_init(&c.files[i].src, job->texts[i].name, job->texts[i].text,
                               job->texts[i].len, i, diags);
        if (rc)
            goto out;
    }
    rc = compile_all(&c, job);
    rule_group *tmp = rs->groups;
    rs->groups = NULL;
    if (!rc && rs->n_groups) {
        rs->groups = rules_alloc(&c, rs->n_groups * sizeof *rs->groups);
        if (!rs->groups)
            rc = -ENOMEM;
        else
            memcpy(rs->groups, tmp, rs->n_groups * sizeof *rs->groups);
    }
    free(tmp);
    if (!rc && diags && ruleset_diags_errors(diags))
        rc = -EINVAL;
out:
    for (size_t i = 0; i < c.n_files; i++) {
        if (c.files[i].loaded)
            yaml_document_delete(&c.files[i].doc);
        rules_source_free(&c.files[i].src);
    }
    free(c.files);
    free(c.origins);
    rules_diags_sort(diags);
    if (rc) {
        ruleset_free(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

int ruleset_compile_texts(const ruleset_text *texts, size_t n, ruleset **out, ruleset_diags *diags)
{
    *out = NULL;
    if (n == 0 || n > RULE_FILES_MAX)
        return -EINVAL;
    loaded_text *t = calloc(RULE_FILES_MAX, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        t[i].name = texts[i].name;
        t[i].text = texts[i].text;
        t[i].len = texts[i].len;
    }
    compile_job job = {.texts = t, .n = n, .from_disk = false};
    int rc = compile_job_run(&job, out, diags);
    free(t);
    return rc;
}

int ruleset_compile_files(const char *const *paths, size_t n, ruleset **out, ruleset_diags *diags)
{
    *out = NULL;
    if (n == 0)
        return -EINVAL;
    if (n > RULE_FILES_MAX)
        return rules_error_file(diags, paths[0], 0, -EINVAL, "too many rule files (at most %d)",
                                RULE_FILES_MAX);
    loaded_text *t = calloc(RULE_FILES_MAX, sizeof *t);
    if (!t)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int r = 0;
        for (size_t k = 0; k < i && !r; k++)
            if (same_file(paths[k], paths[i]))
                r = rules_error_file(diags, paths[i], i, -EINVAL,
                                     "given twice (a file is part of a ruleset once)");
        if (!r)
            r = read_text(paths[i], i, diags, &t[i]);
        if (r && (rc == 0 || r == -ENOMEM))
            rc = r;
    }
    if (!rc) {
        compile_job job = {.texts = t, .n = n, .from_disk = true};
        rc = compile_job_run(&job, out, diags);
        n = job.n;
    }
    for (size_t i = 0; i < RULE_FILES_MAX; i++) {
        free(t[i].owned);
        free(t[i].name_owned);
    }
    free(t);
    return rc;
}

/* err gets every error, as many as fit. */
static int errors_to(const ruleset_diags *d, int rc, const char *name, nba_error *err)
{
    if (!err)
        return rc;
    if (rc == -ENOMEM || !d || ruleset_diags_errors(d) == 0)
        return nba_error_set(err, rc, "%s: %s", name,
                             rc == -ENOMEM ? "out of memory" : "cannot be compiled");
    size_t used = 0, shown = 0;
    err->msg[0] = '\0';
    for (size_t i = 0; i < ruleset_diags_count(d); i++) {
        const ruleset_diag *g = ruleset_diags_get(d, i);
        if (g->severity != RULESET_ERROR)
            continue;
        char one[NBA_ERROR_MAX];
        size_t len = ruleset_diag_format(g, one, sizeof one);
        size_t sep = used ? 1 : 0;
        /* keep room for the count of the rest */
        if (used + sep + len + 48 >= NBA_ERROR_MAX && shown > 0)
            break;
        if (sep)
            err->msg[used++] = '\n';
        snprintf(err->msg + used, NBA_ERROR_MAX - used, "%s", one);
        used = strlen(err->msg);
        shown++;
    }
    size_t total = ruleset_diags_errors(d);
    if (shown < total)
        snprintf(err->msg + used, NBA_ERROR_MAX - used, "\n(and %zu more error%s)", total - shown,
                 total - shown == 1 ? "" : "s");
    return rc;
}

int ruleset_load_files(const char *const *paths, size_t n, ruleset **out, nba_error *err)
{
    ruleset_diags *d = NULL;
    *out = NULL;
    if (ruleset_diags_new(&d))
        return nba_error_set(err, -ENOMEM, "%s: out of memory", n ? paths[0] : "rules");
    int rc = ruleset_compile_files(paths, n, out, d);
    if (rc)
        errors_to(d, rc, n ? paths[0] : "rules", err);
    ruleset_diags_free(d);
    return rc;
}

int ruleset_load_file(const char *path, ruleset **out, nba_error *err)
{
    return ruleset_load_files(&path, 1, out, err);
}

int ruleset_load_buffer(const char *name, const char *yaml, size_t len, ruleset **out,
                        nba_error *err)
{
    ruleset_diags *d = NULL;
    *out = NULL;
    if (ruleset_diags_new(&d))
        return nba_error_set(err, -ENOMEM, "%s: out of memory", name);
    ruleset_text t = {name, yaml, len};
    int rc = ruleset_compile_texts(&t, 1, out, d);
    if (rc)
        errors_to(d, rc, name, err);
    ruleset_diags_free(d);
    return rc;
}

void ruleset_free(ruleset *rs)
{
    if (!rs)
        return;
    arena_destroy(&rs->mem);
    free(rs);
}

const char *ruleset_id(const ruleset *rs)
{
    return rs->id;
}

const char *ruleset_name(const ruleset *rs)
{
    return rs->name;
}

const char *ruleset_version(const ruleset *rs)
{
    return rs->version;
}

const char *ruleset_hash(const ruleset *rs)
{
    return rs->hash;
}

size_t ruleset_file_count(const ruleset *rs)
{
    return rs->n_files;
}

const char *ruleset_file(const ruleset *rs, size_t i)
{
    return i < rs->n_files ? rs->files[i] : NULL;
}

size_t ruleset_rule_count(const ruleset *rs)
{
    return rs->n_rules;
}

const char *ruleset_rule_id(const ruleset *rs, size_t i)
{
    return i < rs->n_rules ? rs->rules[i].id : NULL;
}
