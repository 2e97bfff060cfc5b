/* rules_internal.h - the compiled form of a rule file, shared by the files of
 * the rule engine (nba_rules) and by nothing else.
 *
 *   rules_source.c  the rule file's text: positions, errors with a caret, hints
 *   ruleset.c       YAML -> compiled ruleset: top level, rules, actions
 *   messages.c      the messages and labels sections
 *   factpath.c      names like customer.tier -> field ids, and reading them
 *   expr.c          `when:` text -> typed expression tree
 *   eval.c          expression trees -> true/false per decision (ruleset_match)
 *   template.c      "{{placeholder}}" text -> segments, and rendering them
 *   language.c      BCP 47 tag -> one of the ruleset's languages
 *   arbitrate.c     priority order, exclusive groups, limits
 *   render.c        kept hits -> Decision
 *
 * Everything a compiled ruleset points to lives in its arena `mem`, so
 * ruleset_free() is one arena_destroy(). Nothing here is written after
 * compilation: worker threads share a ruleset without locks.
 */
#ifndef NBA_RULES_INTERNAL_H
#define NBA_RULES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "arena.h"
#include "error.h"
#include "facts.h"
#include "ruleset.h"

/* Channel indexes are the values of the proto enum Channel; index 0
 * (CHANNEL_UNSPECIFIED) is the "default" variant of a message. */
#define RULES_N_CHANNELS 7
/* Bit c set: the action is given on channel c. */
#define RULES_ALL_CHANNELS ((1u << RULES_N_CHANNELS) - 1)

/* Deepest nesting of parentheses, `not` and calls in a condition. The
 * evaluator recurses once per level, so this bounds its stack. */
#define RULES_MAX_DEPTH 64
/* Most literal and placeholder pieces in one text: rendering keeps them in
 * a fixed array on the stack. */
#define RULES_MAX_SEGMENTS 64

/* ---- rule file text and diagnostics (rules_source.c) ---- */

typedef struct rules_source {
    const char *name; /* the path, as shown in messages */
    const char *text;
    size_t len;
    size_t *line_start; /* byte offset of each line */
    size_t n_lines;
} rules_source;

int rules_source_init(rules_source *s, const char *name, const char *text, size_t len);
void rules_source_free(rules_source *s);

/* Byte offset of a libyaml mark (whose column counts characters). */
size_t rules_source_mark_offset(const rules_source *s, yaml_mark_t mark);

/* Writes "name:line:col: message", the source line and a caret under the
 * column into err and returns -EINVAL. `at` is a byte offset in the text. */
int rules_error_at(const rules_source *s, nba_error *err, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* As rules_error_at, at the start of node n. */
int rules_error_node(const rules_source *s, nba_error *err, const yaml_node_t *n, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* As rules_error_at, at byte `offset` of the value of scalar n, mapped back
 * to the file through quoting, folding and block indentation. Falls back to
 * the scalar's start when an escape sequence makes the mapping unsure. */
int rules_error_scalar(const rules_source *s, nba_error *err, const yaml_node_t *n, size_t offset,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "Did you mean" hints: feed the candidates, get the closest one that is
 * near enough to be a typo, or NULL. */
typedef struct rules_hint {
    const char *word;
    size_t len;
    const char *best;
    size_t best_distance;
} rules_hint;

void rules_hint_init(rules_hint *h, const char *word, size_t len);
void rules_hint_try(rules_hint *h, const char *candidate);
/* "; did you mean 'x'?" or "" - ready to append to a message. */
const char *rules_hint_text(const rules_hint *h, char *buf, size_t size);

/* ---- values and paths (factpath.c) ---- */

typedef enum rules_type {
    RT_BOOL,
    RT_NUMBER,
    RT_STRING,
    RT_DURATION, /* milliseconds; compares only with durations (180d, 6h) */
    RT_DYNAMIC,  /* customer.<attribute>: number or text, chosen by what it is compared with */
    RT_INCIDENTS,
} rules_type;

const char *rules_type_name(rules_type t);

typedef enum fact_field {
    FF_EVENT_CUSTOMER_ID,
    FF_EVENT_CHANNEL,
    FF_EVENT_TOUCHPOINT,
    FF_EVENT_LOCATION,
    FF_EVENT_LANGUAGE,
    FF_EVENT_CONTEXT, /* key = context key */
    FF_CUSTOMER_KNOWN,
    FF_CUSTOMER_ID,
    FF_CUSTOMER_NAME,
    FF_CUSTOMER_TIER,
    FF_CUSTOMER_LIFETIME_VALUE,
    FF_CUSTOMER_PREDICTED_LTV,
    FF_CUSTOMER_LANGUAGE,
    FF_CUSTOMER_ATTR,        /* key = attribute name; text or number (RT_DYNAMIC) */
    FF_CUSTOMER_ATTR_TEXT,   /* FF_CUSTOMER_ATTR once typed as a string */
    FF_CUSTOMER_ATTR_NUMBER, /* FF_CUSTOMER_ATTR once typed as a number */
    FF_INCIDENTS,            /* the customer's incidents: only inside count()/any() */
    FF_INCIDENT_ID,
    FF_INCIDENT_KIND,
    FF_INCIDENT_SEVERITY,
    FF_INCIDENT_FLIGHT,
    FF_INCIDENT_NOTE,
    FF_INCIDENT_OPEN,
    FF_INCIDENT_RESOLVED,
    FF_INCIDENT_AGE,
    FF_INCIDENT_OCCURRED_AT,
    FF_DECISION_LANGUAGE,
} fact_field;

typedef struct fact_path {
    fact_field field;
    rules_type type;
    const char *key; /* context key or attribute name, else NULL */
} fact_path;

/* Where a name is read. */
typedef enum fact_scope {
    FS_CONDITION, /* a `when:` outside an incident filter */
    FS_FILTER,    /* inside count(incidents, ...) / any(...): bare incident fields too */
    FS_TEMPLATE,  /* a {{placeholder}}: incident.* and decision.language too */
} fact_scope;

/* What a decision reads paths from. */
typedef struct fact_view {
    const facts *f;
    const Nba__V1__Incident *incident; /* the one a filter looks at, or the hit's */
    const char *decision_language;
} fact_view;

/* A string value: `fold` means compare as ASCII lower case (lower()), so
 * no evaluation needs a buffer. */
typedef struct strv {
    const char *s;
    size_t len;
    bool fold;
} strv;

typedef struct rules_compiler rules_compiler;

/* Resolves name[0..len) in scope. On failure writes the reason (with a hint)
 * into msg and returns -EINVAL; -ENOMEM when out of memory. */
int fact_path_resolve(rules_compiler *c, const char *name, size_t len, fact_scope scope,
                      fact_path *out, char *msg, size_t msg_size);

/* Readers: false when the value is missing (unknown customer, absent
 * context key or attribute, no incident). */
bool fact_string(const fact_path *p, const fact_view *v, strv *out);
bool fact_number(const fact_path *p, const fact_view *v, double *out);
bool fact_bool(const fact_path *p, const fact_view *v);

/* Text form for placeholders: numbers without trailing zeros, booleans as
 * true/false, incident.occurred_at as YYYY-MM-DD. buf holds at least 32
 * bytes for numbers. */
bool fact_text(const fact_path *p, const fact_view *v, char *buf, size_t size, strv *out);

/* "desk", ... for index 1..6, "default" for 0. */
const char *rules_channel_name(unsigned index);
/* Index of channel name[0..len), or -1. `default` is accepted only when
 * with_default. */
int rules_channel_lookup(const char *name, size_t len, bool with_default);

static inline unsigned rules_event_channel(const Nba__V1__ContactEvent *e)
{
    unsigned c = (unsigned)e->channel;
    return c < RULES_N_CHANNELS ? c : 0; /* a newer client's channel: the default variant */
}

/* ---- conditions (expr.c, eval.c) ---- */

typedef enum expr_op {
    EX_BOOL,
    EX_NUMBER, /* also durations */
    EX_STRING,
    EX_LIST,
    EX_PATH,
    EX_AND,
    EX_OR,
    EX_NOT,
    EX_CMP,
    EX_IN,
    EX_COUNT,
    EX_ANY,
    EX_LOWER,
    EX_STARTS_WITH,
    EX_CONTAINS,
    EX_SPEAKS,
} expr_op;

typedef enum expr_cmp { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE } expr_cmp;

typedef struct expr expr;
struct expr {
    expr_op op;
    rules_type type;    /* of the value */
    rules_type operand; /* EX_CMP, EX_IN: the type compared (number, string or bool) */
    expr_cmp cmp;       /* EX_CMP */
    bool negate;        /* EX_IN: `not in` */
    size_t pos;         /* byte offset in the `when` text, for messages */
    size_t n;           /* kids, or list items */
    union {
        bool b;
        double num;
        strv str;
        fact_path path;
        expr **kids; /* and/or/not, cmp and in (2), calls, aggregates (0 or 1: the filter) */
    } u;
    /* EX_LIST items, of type list_type */
    rules_type list_type;
    double *nums;
    strv *strs;
};

/* Compiles the `when:` scalar n into a bool expression. */
int expr_compile(rules_compiler *c, const yaml_node_t *n, expr **out);

/* Evaluates a condition; *trigger receives the triggering incident. */
bool expr_holds(const ruleset *rs, const expr *e, const facts *f,
                const Nba__V1__Incident **trigger);

/* ---- texts with placeholders (template.c) ---- */

typedef struct label_table label_table;

typedef struct tmpl_seg {
    strv lit;                  /* literal text before the placeholder (may be empty) */
    bool has_path;             /* false: the last, literal-only segment */
    fact_path path;            /* the placeholder */
    const label_table *labels; /* `| table`, or NULL */
} tmpl_seg;

typedef struct tmpl {
    size_t n;
    tmpl_seg *segs;
} tmpl;

typedef struct tmpl_env {
    fact_view view;
    size_t language; /* index into the ruleset's languages, for labels */
} tmpl_env;

int tmpl_compile(rules_compiler *c, const yaml_node_t *n, tmpl **out);

/* Renders into the arena; NULL when out of memory. */
char *tmpl_render(const tmpl *t, const tmpl_env *env, arena *a);

/* ---- messages and labels (messages.c) ---- */

struct label_table {
    const char *name;
    size_t n;
    struct label_entry {
        const char *value;
        const char **text; /* per language, default_language filled in; NULL: raw value */
    } * entries;           /* sorted by value, for bsearch */
};

typedef struct message {
    const char *key;
    /* [language * RULES_N_CHANNELS + channel], fallbacks already applied:
     * [lang][channel] -> [lang][default] -> [default_language][channel] ->
     * [default_language][default]. */
    const tmpl **text;
} message;

int messages_compile_labels(rules_compiler *c, const yaml_node_t *labels);
int messages_compile(rules_compiler *c, const yaml_node_t *messages);
const label_table *labels_find(const ruleset *rs, const char *name, size_t len);
const message *messages_find(const ruleset *rs, const char *key, size_t len);
/* The translation of value in language, or NULL. */
const char *labels_translate(const label_table *t, const char *value, size_t len, size_t language);

/* ---- language tags (language.c) ---- */

/* Index of the ruleset language serving tag[0..len): the tag itself, an alias
 * from language_aliases, then shorter prefixes ("zh-Hant-TW" -> "zh-Hant",
 * "it-IT" -> "it"); case-insensitive, '_' taken as '-'. -1 when none. */
int rules_language_lookup(const ruleset *rs, const char *tag, size_t len);
/* Exact (case-insensitive) match only; for compile-time checks. */
int rules_language_exact(const ruleset *rs, const char *tag, size_t len);

/* ---- the compiled ruleset ---- */

typedef struct rule_param {
    const char *name;
    const tmpl *value;
} rule_param;

typedef struct rule_action {
    const char *type;
    size_t n_params;
    rule_param *params;
    const message *say;
    const message *reason; /* the action's, else the rule's */
    const tmpl *language;
    unsigned channels; /* RULES_ALL_CHANNELS unless `channels:` */
    bool follow_up;
} rule_action;

struct rule {
    const char *id;
    size_t index; /* file order */
    long priority;
    int group; /* index into ruleset.groups, -1 for none */
    const expr *when;
    size_t n_actions;
    rule_action *actions;
};

typedef struct language_alias {
    const char *tag;
    size_t language;
} language_alias;

struct ruleset {
    arena mem; /* owns everything below */
    const char *name;
    const char *version;
    const char *id; /* name@version */

    size_t n_languages;
    const char **languages;
    size_t default_language;
    size_t agent_language;
    size_t n_aliases;
    language_alias *aliases;

    size_t n_attributes; /* declared customer attributes; 0: any name */
    const char **attributes;

    size_t max_actions; /* 0: no limit */

    size_t n_rules;
    rule *rules;
    size_t n_groups;
    const char **groups;

    size_t n_messages;
    message *messages;
    size_t n_labels;
    label_table *labels;
};

/* State while one rule file compiles. */
struct rules_compiler {
    rules_source src;
    nba_error *err;
    ruleset *rs;
    yaml_document_t *doc;
};

/* Allocation from the ruleset's arena; NULL when out of memory. */
void *rules_alloc(rules_compiler *c, size_t size);
const char *rules_strndup(rules_compiler *c, const char *s, size_t len);

/* The scalar text of n, or an error naming `what` when n is no scalar. */
int rules_scalar(rules_compiler *c, const yaml_node_t *n, const char *what, const char **text,
                 size_t *len);

/* Checks that n is a mapping whose keys are among keys[0..n_keys) (with a
 * hint for near misses) and that holds every key whose bit is set in
 * `required`. vals[i] receives the value of keys[i], or NULL. Duplicate keys
 * were rejected for the whole document before. */
int rules_mapping(rules_compiler *c, const yaml_node_t *n, const char *what,
                  const char *const *keys, size_t n_keys, unsigned required, yaml_node_t **vals);

yaml_node_t *rules_node(rules_compiler *c, int id);

#endif
