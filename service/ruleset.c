/* ruleset.c - a rule file compiled into a ruleset: see include/ruleset.h and
 * rules/README.md for the language.
 *
 * libyaml's document API gives the whole file as a node tree with a position
 * for every node. Each mapping is checked against its table of known keys
 * (unknown keys are refused, with a hint when one is a typo away from a known
 * key), then the sections compile in dependency order: languages before the
 * labels that translate into them, labels before the messages that use them,
 * messages before the rules that say them. The first error stops the load
 * and is reported at its line and column; a file that does not compile never
 * becomes a ruleset.
 */
#include "rules_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* A rule file is written by people; anything larger is a mistake. */
#define RULE_FILE_MAX (16u << 20)
/* The ruleset's own memory grows in blocks of this size. */
#define RULESET_BLOCK 16384

/* ---- helpers shared with messages.c, expr.c, template.c ---- */

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

int rules_scalar(rules_compiler *c, const yaml_node_t *n, const char *what, const char **text,
                 size_t *len)
{
    /* set even on failure: callers' error paths never read them, but the
     * optimiser cannot know that the error code is never 0 */
    *text = "";
    *len = 0;
    if (n->type != YAML_SCALAR_NODE)
        return rules_error_node(&c->src, c->err, n, "expected %s here, found %s", what,
                                node_kind(n));
    *text = (const char *)n->data.scalar.value;
    *len = n->data.scalar.length;
    return 0;
}

/* A scalar that must not be empty, copied into the ruleset. */
static int name_value(rules_compiler *c, const yaml_node_t *n, const char *what, const char **out)
{
    const char *s;
    size_t len;
    int rc = rules_scalar(c, n, what, &s, &len);
    if (rc)
        return rc;
    if (len == 0)
        return rules_error_node(&c->src, c->err, n, "%s must not be empty", what);
    *out = rules_strndup(c, s, len);
    return *out ? 0 : -ENOMEM;
}

static int integer_value(rules_compiler *c, const yaml_node_t *n, const char *what, long *out)
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
        return rules_error_node(&c->src, c->err, n, "%s must be a whole number, found '%s'", what,
                                s);
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
        return rules_error_node(&c->src, c->err, n, "%s must be true or false, found '%s'", what,
                                s);
    return 0;
}

int rules_mapping(rules_compiler *c, const yaml_node_t *n, const char *what,
                  const char *const *keys, size_t n_keys, unsigned required, yaml_node_t **vals)
{
    if (n->type != YAML_MAPPING_NODE)
        return rules_error_node(&c->src, c->err, n, "%s must be a mapping of keys, found %s", what,
                                node_kind(n));
    for (size_t i = 0; i < n_keys; i++)
        vals[i] = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = rules_node(c, p->key);
        const char *s;
        size_t len;
        int rc = rules_scalar(c, k, "a key", &s, &len);
        if (rc)
            return rc;
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
            return rules_error_node(&c->src, c->err, k, "unknown key '%.*s' in %s%s", (int)len, s,
                                    what, rules_hint_text(&h, hint, sizeof hint));
        }
        vals[i] = rules_node(c, p->value);
    }
    for (size_t i = 0; i < n_keys; i++)
        if ((required & (1u << i)) && !vals[i])
            return rules_error_node(&c->src, c->err, n, "%s is missing '%s'", what, keys[i]);
    return 0;
}

/* A repeated key silently overrides the first in most YAML readers; here it
 * is an error, for every mapping of the file. */
static int check_duplicate_keys(rules_compiler *c)
{
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
                        0)
                    return rules_error_node(
                        &c->src, c->err, k, "duplicate key '%s' (first given on line %zu)",
                        (const char *)k->data.scalar.value, first->start_mark.line + 1);
            }
        }
    }
    return 0;
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
        return rules_error_node(&c->src, c->err, n,
                                "'languages' must be a list of language tags, e.g. [en, it]");
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0)
        return rules_error_node(&c->src, c->err, n, "'languages' must name at least one language");
    rs->languages = rules_alloc(c, count * sizeof *rs->languages);
    if (!rs->languages)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = rules_node(c, n->data.sequence.items.start[i]);
        const char *s;
        size_t len;
        int rc = rules_scalar(c, item, "a language tag", &s, &len);
        if (rc)
            return rc;
        if (!tag_ok(s, len))
            return rules_error_node(&c->src, c->err, item,
                                    "'%s' is not a language tag (BCP 47: en, it, zh-Hant)", s);
        if (rules_language_exact(rs, s, len) >= 0)
            return rules_error_node(&c->src, c->err, item, "language '%s' is listed twice", s);
        rs->languages[i] = rules_strndup(c, s, len);
        if (!rs->languages[i])
            return -ENOMEM;
        rs->n_languages = i + 1;
    }
    return 0;
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
        return rules_error_node(&c->src, c->err, n, "%s '%s' is not in 'languages'%s", what, s,
                                rules_hint_text(&h, hint, sizeof hint));
    }
    *out = (size_t)i;
    return 0;
}

static int compile_aliases(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    if (n->type != YAML_MAPPING_NODE)
        return rules_error_node(&c->src, c->err, n,
                                "'language_aliases' must map tags to languages, e.g. "
                                "{ zh-TW: zh-Hant }");
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    rs->aliases = rules_alloc(c, (count ? count : 1) * sizeof *rs->aliases);
    if (!rs->aliases)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        const yaml_node_t *k = rules_node(c, p->key);
        const char *s;
        size_t len;
        int rc = rules_scalar(c, k, "a language tag", &s, &len);
        if (rc)
            return rc;
        if (!tag_ok(s, len))
            return rules_error_node(&c->src, c->err, k, "'%s' is not a language tag", s);
        rs->aliases[i].tag = rules_strndup(c, s, len);
        if (!rs->aliases[i].tag)
            return -ENOMEM;
        rc = language_value(c, rules_node(c, p->value), "the alias target",
                            &rs->aliases[i].language);
        if (rc)
            return rc;
        rs->n_aliases = i + 1;
    }
    return 0;
}

static int compile_attributes(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    if (n->type != YAML_SEQUENCE_NODE)
        return rules_error_node(&c->src, c->err, n,
                                "'attributes' must be a list of customer CSV columns");
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    rs->attributes = rules_alloc(c, (count ? count : 1) * sizeof *rs->attributes);
    if (!rs->attributes)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        int rc = name_value(c, rules_node(c, n->data.sequence.items.start[i]), "an attribute",
                            &rs->attributes[i]);
        if (rc)
            return rc;
        rs->n_attributes = i + 1;
    }
    return 0;
}

/* ---- rules and actions ---- */

static int message_ref(rules_compiler *c, const yaml_node_t *n, const char *what,
                       const message **out)
{
    const char *s;
    size_t len;
    int rc = rules_scalar(c, n, what, &s, &len);
    if (rc)
        return rc;
    *out = messages_find(c->rs, s, len);
    if (*out)
        return 0;
    rules_hint h;
    char hint[96];
    rules_hint_init(&h, s, len);
    for (size_t i = 0; i < c->rs->n_messages; i++)
        rules_hint_try(&h, c->rs->messages[i].key);
    return rules_error_node(&c->src, c->err, n, "unknown message '%.*s' in '%s'%s", (int)len, s,
                            what, rules_hint_text(&h, hint, sizeof hint));
}

static int compile_channels(rules_compiler *c, const yaml_node_t *n, unsigned *mask)
{
    const yaml_node_t *single = n->type == YAML_SCALAR_NODE ? n : NULL;
    size_t count = single ? 1 : 0;
    if (!single) {
        if (n->type != YAML_SEQUENCE_NODE)
            return rules_error_node(&c->src, c->err, n,
                                    "'channels' must be a list such as [desk, kiosk]");
        count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (count == 0)
            return rules_error_node(&c->src, c->err, n,
                                    "an empty 'channels' list would never give this action");
    }
    *mask = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = single ? single : rules_node(c, n->data.sequence.items.start[i]);
        const char *s;
        size_t len;
        int rc = rules_scalar(c, item, "a channel name", &s, &len);
        if (rc)
            return rc;
        int ch = rules_channel_lookup(s, len, false);
        if (ch < 0) {
            rules_hint h;
            char hint[96];
            rules_hint_init(&h, s, len);
            for (unsigned k = 1; k < RULES_N_CHANNELS; k++)
                rules_hint_try(&h, rules_channel_name(k));
            return rules_error_node(&c->src, c->err, item,
                                    "unknown channel '%.*s'%s (channels: desk, kiosk, ivr, web, "
                                    "mobile, call_center)",
                                    (int)len, s, rules_hint_text(&h, hint, sizeof hint));
        }
        *mask |= 1u << ch;
    }
    return 0;
}

static int compile_params(rules_compiler *c, const yaml_node_t *n, rule_action *a,
                          bool has_language)
{
    if (n->type != YAML_MAPPING_NODE)
        return rules_error_node(&c->src, c->err, n,
                                "'params' must map names to values, e.g. { cabin: F }");
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    a->params = rules_alloc(c, (count ? count : 1) * sizeof *a->params);
    if (!a->params)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        const yaml_node_t *k = rules_node(c, p->key), *v = rules_node(c, p->value);
        int rc = name_value(c, k, "a parameter name", &a->params[i].name);
        if (rc)
            return rc;
        if (has_language && strcmp(a->params[i].name, "language") == 0)
            return rules_error_node(&c->src, c->err, k,
                                    "params.language is set by the action's 'language:'; keep "
                                    "only one of them");
        if (v->type != YAML_SCALAR_NODE)
            return rules_error_node(&c->src, c->err, v,
                                    "parameter '%s' must be a text (placeholders allowed)",
                                    a->params[i].name);
        tmpl *t;
        rc = tmpl_compile(c, v, &t);
        if (rc)
            return rc;
        a->params[i].value = t;
        a->n_params = i + 1;
    }
    return 0;
}

enum { A_ACTION, A_PARAMS, A_SAY, A_REASON, A_FOLLOW_UP, A_CHANNELS, A_LANGUAGE, N_ACTION_KEYS };
static const char *const action_keys[N_ACTION_KEYS] = {
    "action", "params", "say", "reason", "follow_up", "channels", "language",
};

static int compile_action(rules_compiler *c, const yaml_node_t *n, const message *rule_reason,
                          rule_action *a)
{
    yaml_node_t *v[N_ACTION_KEYS];
    int rc = rules_mapping(c, n, "an action", action_keys, N_ACTION_KEYS, 1u << A_ACTION, v);
    if (rc)
        return rc;
    memset(a, 0, sizeof *a);
    a->channels = RULES_ALL_CHANNELS;
    a->reason = rule_reason;
    rc = name_value(c, v[A_ACTION], "'action'", &a->type);
    if (!rc && v[A_LANGUAGE]) {
        if (v[A_LANGUAGE]->type != YAML_SCALAR_NODE)
            return rules_error_node(&c->src, c->err, v[A_LANGUAGE],
                                    "'language' must be a text such as \"{{customer.language}}\"");
        tmpl *t;
        rc = tmpl_compile(c, v[A_LANGUAGE], &t);
        a->language = t;
    }
    if (!rc && v[A_PARAMS])
        rc = compile_params(c, v[A_PARAMS], a, v[A_LANGUAGE] != NULL);
    if (!rc && v[A_SAY])
        rc = message_ref(c, v[A_SAY], "say", &a->say);
    if (!rc && v[A_REASON])
        rc = message_ref(c, v[A_REASON], "reason", &a->reason);
    if (!rc && v[A_FOLLOW_UP])
        rc = bool_value(c, v[A_FOLLOW_UP], "'follow_up'", &a->follow_up);
    if (!rc && v[A_CHANNELS])
        rc = compile_channels(c, v[A_CHANNELS], &a->channels);
    return rc;
}

enum { R_ID, R_DESCRIPTION, R_PRIORITY, R_GROUP, R_WHEN, R_REASON, R_THEN, N_RULE_KEYS };
static const char *const rule_keys[N_RULE_KEYS] = {
    "id", "description", "priority", "group", "when", "reason", "then",
};

static int compile_group(rules_compiler *c, const yaml_node_t *n, int *out)
{
    ruleset *rs = c->rs;
    const char *name;
    int rc = name_value(c, n, "'group'", &name);
    if (rc)
        return rc;
    for (size_t i = 0; i < rs->n_groups; i++) {
        if (strcmp(rs->groups[i], name) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    /* rs->groups has room for one group per rule */
    rs->groups[rs->n_groups] = name;
    *out = (int)rs->n_groups++;
    return 0;
}

static int compile_rule(rules_compiler *c, const yaml_node_t *n, rule *r,
                        const yaml_node_t **id_nodes)
{
    ruleset *rs = c->rs;
    yaml_node_t *v[N_RULE_KEYS];
    unsigned required = 1u << R_ID | 1u << R_WHEN | 1u << R_THEN;
    int rc = rules_mapping(c, n, "a rule", rule_keys, N_RULE_KEYS, required, v);
    if (rc)
        return rc;
    r->group = -1;
    rc = name_value(c, v[R_ID], "a rule id", &r->id);
    if (rc)
        return rc;
    for (size_t i = 0; i < r->index; i++)
        if (strcmp(rs->rules[i].id, r->id) == 0)
            return rules_error_node(&c->src, c->err, v[R_ID],
                                    "duplicate rule id '%s' (first used on line %zu)", r->id,
                                    id_nodes[i]->start_mark.line + 1);
    id_nodes[r->index] = v[R_ID];
    if (v[R_DESCRIPTION]) {
        const char *s;
        size_t len;
        rc = rules_scalar(c, v[R_DESCRIPTION], "a description", &s, &len);
        if (rc)
            return rc;
    }
    if (v[R_PRIORITY]) {
        rc = integer_value(c, v[R_PRIORITY], "'priority'", &r->priority);
        if (rc)
            return rc;
    }
    if (v[R_GROUP]) {
        rc = compile_group(c, v[R_GROUP], &r->group);
        if (rc)
            return rc;
    }
    if (v[R_WHEN]->type != YAML_SCALAR_NODE)
        return rules_error_node(&c->src, c->err, v[R_WHEN],
                                "'when' must be a condition written as text, found %s (use "
                                "'when: >' for a long condition)",
                                node_kind(v[R_WHEN]));
    expr *when;
    rc = expr_compile(c, v[R_WHEN], &when);
    if (rc)
        return rc;
    r->when = when;
    const message *reason = NULL;
    if (v[R_REASON]) {
        rc = message_ref(c, v[R_REASON], "reason", &reason);
        if (rc)
            return rc;
    }
    const yaml_node_t *then = v[R_THEN];
    if (then->type != YAML_SEQUENCE_NODE ||
        then->data.sequence.items.top == then->data.sequence.items.start)
        return rules_error_node(&c->src, c->err, then,
                                "'then' must be a non-empty list of actions (- action: ...)");
    size_t count = (size_t)(then->data.sequence.items.top - then->data.sequence.items.start);
    r->actions = rules_alloc(c, count * sizeof *r->actions);
    if (!r->actions)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        rc = compile_action(c, rules_node(c, then->data.sequence.items.start[i]), reason,
                            &r->actions[i]);
        if (rc)
            return rc;
        r->n_actions = i + 1;
    }
    return 0;
}

static int compile_rules(rules_compiler *c, const yaml_node_t *n)
{
    ruleset *rs = c->rs;
    if (n->type != YAML_SEQUENCE_NODE)
        return rules_error_node(&c->src, c->err, n,
                                "'rules' must be a list of rules (- id: ...), found %s",
                                node_kind(n));
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    size_t room = count ? count : 1;
    rs->rules = rules_alloc(c, room * sizeof *rs->rules);
    rs->groups = rules_alloc(c, room * sizeof *rs->groups);
    const yaml_node_t **id_nodes = malloc(room * sizeof *id_nodes);
    int rc = 0;
    if (!rs->rules || !rs->groups || !id_nodes) {
        rc = -ENOMEM;
        goto out;
    }
    memset(rs->rules, 0, room * sizeof *rs->rules);
    for (size_t i = 0; i < count; i++) {
        rs->rules[i].index = i;
        rc = compile_rule(c, rules_node(c, n->data.sequence.items.start[i]), &rs->rules[i],
                          id_nodes);
        if (rc)
            goto out;
        rs->n_rules = i + 1;
    }
out:
    free(id_nodes);
    return rc;
}

/* ---- the file ---- */

enum {
    K_RULESET,
    K_VERSION,
    K_DESCRIPTION,
    K_LANGUAGES,
    K_DEFAULT_LANGUAGE,
    K_AGENT_LANGUAGE,
    K_LANGUAGE_ALIASES,
    K_ATTRIBUTES,
    K_MAX_ACTIONS,
    K_LABELS,
    K_MESSAGES,
    K_RULES,
    N_TOP_KEYS
};
static const char *const top_keys[N_TOP_KEYS] = {
    "ruleset",          "version",        "description",      "languages",
    "default_language", "agent_language", "language_aliases", "attributes",
    "max_actions",      "labels",         "messages",         "rules",
};

static int compile_top(rules_compiler *c, const yaml_node_t *root)
{
    ruleset *rs = c->rs;
    yaml_node_t *v[N_TOP_KEYS];
    unsigned required = 1u << K_RULESET | 1u << K_VERSION | 1u << K_LANGUAGES |
                        1u << K_DEFAULT_LANGUAGE | 1u << K_RULES;
    int rc = rules_mapping(c, root, "the rule file", top_keys, N_TOP_KEYS, required, v);
    if (rc)
        return rc;
    rc = name_value(c, v[K_RULESET], "'ruleset'", &rs->name);
    if (rc)
        return rc;
    rc = name_value(c, v[K_VERSION], "'version'", &rs->version);
    if (rc)
        return rc;
    size_t idlen = strlen(rs->name) + 1 + strlen(rs->version);
    char *id = rules_alloc(c, idlen + 1);
    if (!id)
        return -ENOMEM;
    snprintf(id, idlen + 1, "%s@%s", rs->name, rs->version);
    rs->id = id;
    if (v[K_DESCRIPTION]) {
        const char *s;
        size_t len;
        rc = rules_scalar(c, v[K_DESCRIPTION], "a description", &s, &len);
        if (rc)
            return rc;
    }
    rc = compile_languages(c, v[K_LANGUAGES]);
    if (rc)
        return rc;
    rc = language_value(c, v[K_DEFAULT_LANGUAGE], "default_language", &rs->default_language);
    if (rc)
        return rc;
    rs->agent_language = rs->default_language;
    if (v[K_AGENT_LANGUAGE]) {
        rc = language_value(c, v[K_AGENT_LANGUAGE], "agent_language", &rs->agent_language);
        if (rc)
            return rc;
    }
    if (v[K_LANGUAGE_ALIASES]) {
        rc = compile_aliases(c, v[K_LANGUAGE_ALIASES]);
        if (rc)
            return rc;
    }
    if (v[K_ATTRIBUTES]) {
        rc = compile_attributes(c, v[K_ATTRIBUTES]);
        if (rc)
            return rc;
    }
    if (v[K_MAX_ACTIONS]) {
        long max;
        rc = integer_value(c, v[K_MAX_ACTIONS], "'max_actions'", &max);
        if (rc)
            return rc;
        if (max < 1)
            return rules_error_node(&c->src, c->err, v[K_MAX_ACTIONS],
                                    "'max_actions' must be at least 1 (leave it out for no "
                                    "limit)");
        rs->max_actions = (size_t)max;
    }
    rc = messages_compile_labels(c, v[K_LABELS]);
    if (rc)
        return rc;
    rc = messages_compile(c, v[K_MESSAGES]);
    if (rc)
        return rc;
    return compile_rules(c, v[K_RULES]);
}

static int yaml_error(rules_compiler *c, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return nba_error_set(c->err, -ENOMEM, "%s: out of memory", c->src.name);
    const char *problem = p->problem ? p->problem : "cannot read the YAML";
    /* the reader (encoding) reports a byte offset, the scanner and parser a mark */
    size_t at = p->error == YAML_READER_ERROR ? p->problem_offset
                                              : rules_source_mark_offset(&c->src, p->problem_mark);
    if (p->context)
        return rules_error_at(&c->src, c->err, at, "%s (%s)", problem, p->context);
    return rules_error_at(&c->src, c->err, at, "%s", problem);
}

int ruleset_load_buffer(const char *name, const char *yaml, size_t len, ruleset **out,
                        nba_error *err)
{
    *out = NULL;
    rules_compiler c = {.err = err};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool parser_ready = false, doc_ready = false;
    int rc;

    ruleset *rs = calloc(1, sizeof *rs);
    if (!rs)
        return nba_error_set(err, -ENOMEM, "%s: out of memory", name);
    rc = arena_init(&rs->mem, RULESET_BLOCK);
    if (rc) {
        free(rs);
        return nba_error_set(err, rc, "%s: out of memory", name);
    }
    c.rs = rs;
    /* Editors on some systems start UTF-8 files with a byte order mark;
     * skipping it keeps line 1's columns right. */
    if (len >= 3 && memcmp(yaml, "\xEF\xBB\xBF", 3) == 0) {
        yaml += 3;
        len -= 3;
    }
    rc = rules_source_init(&c.src, name, yaml, len);
    if (rc) {
        nba_error_set(err, rc, "%s: out of memory", name);
        goto out;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = nba_error_set(err, -ENOMEM, "%s: out of memory", name);
        goto out;
    }
    parser_ready = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_error(&c, &parser);
        goto out;
    }
    doc_ready = true;
    c.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = rules_error_at(&c.src, err, 0, "the rule file is empty");
        goto out;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        rc = yaml_error(&c, &parser);
        goto out;
    }
    yaml_node_t *second = yaml_document_get_root_node(&extra);
    if (second) {
        size_t at = rules_source_mark_offset(&c.src, second->start_mark);
        yaml_document_delete(&extra);
        rc = rules_error_at(&c.src, err, at, "a rule file holds one YAML document, found a second");
        goto out;
    }
    yaml_document_delete(&extra);
    rc = check_duplicate_keys(&c);
    if (rc)
        goto out;
    rc = compile_top(&c, root);
    if (rc == -ENOMEM)
        nba_error_set(err, rc, "%s: out of memory", name);
out:
    if (doc_ready)
        yaml_document_delete(&doc);
    if (parser_ready)
        yaml_parser_delete(&parser);
    rules_source_free(&c.src);
    if (rc) {
        ruleset_free(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

int ruleset_load_file(const char *path, ruleset **out, nba_error *err)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int e = errno;
        return nba_error_set(err, -e, "%s: %s", path, strerror(e));
    }
    char *buf = NULL;
    int rc = 0;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        rc = nba_error_set(err, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = nba_error_set(err, -EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if ((unsigned long long)st.st_size > RULE_FILE_MAX) {
        rc = nba_error_set(err, -EINVAL, "%s: rule file larger than %u MiB", path,
                           RULE_FILE_MAX >> 20);
        goto out;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        rc = nba_error_set(err, -ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (fread(buf, 1, size, fp) != size) {
        rc = nba_error_set(err, -EIO, "%s: read error", path);
        goto out;
    }
    rc = ruleset_load_buffer(path, buf, size, out, err);
out:
    free(buf);
    fclose(fp);
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

size_t ruleset_rule_count(const ruleset *rs)
{
    return rs->n_rules;
}
