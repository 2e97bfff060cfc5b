/* rules_internal.h - the compiled form of a ruleset, shared by the files of
 * the rule engine (nba_rules) and by nothing else.
 *
 *   rules_source.c  a rule file's text: positions, problems with a caret, hints
 *   ruleset.c       YAML files -> one compiled ruleset: files, top level, rules
 *   tables.c        decision tables -> rules, and their gap and overlap checks
 *   messages.c      the messages and labels sections
 *   factpath.c      names like customer.tier -> field ids, and reading them
 *   expr.c          `when:` text -> typed expression tree
 *   eval.c          expression trees -> true/false per decision (ruleset_match)
 *   analyze.c       warnings a file compiles with: rules that never fire,
 *                   shadowed rules, comparisons with data that may be missing
 *   template.c      "{{placeholder}}" text -> segments, and rendering them
 *   language.c      BCP 47 tag -> one of the ruleset's languages
 *   arbitrate.c     priority order, exclusive groups, limits per channel,
 *                   and the actions a decision gives
 *   policy.c        the `policy:` section: what is recorded in the contact
 *                   history, suppression, caps, the idempotency key; the
 *                   decision's effects
 *   letters.c       the `letters:` section: letters sent after a contact,
 *                   as plain text and HTML
 *   render.c        kept hits -> Decision
 *   explain.c       one decision with every rule's conditions and fate
 *
 * Everything a compiled ruleset points to lives in its arena `mem`, so
 * ruleset_free() is one arena_destroy(). Nothing here is written after
 * compilation: worker threads share a ruleset without locks.
 */
#ifndef NBA_RULES_INTERNAL_H
#define NBA_RULES_INTERNAL_H

#include <errno.h>
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

#define RULES_DAY_MS 86400000.0

/* ---- rule file text and problems (rules_source.c) ---- */

typedef struct rules_source {
    const char *name; /* the path, as shown in messages */
    const char *text;
    size_t len;
    size_t *line_start; /* byte offset of each line */
    size_t n_lines;
    size_t index;         /* order of the file in the ruleset: problems sort by it */
    ruleset_diags *diags; /* where problems go */
} rules_source;

int rules_source_init(rules_source *s, const char *name, const char *text, size_t len, size_t index,
                      ruleset_diags *diags);
void rules_source_free(rules_source *s);

/* Byte offset of a libyaml mark (whose column counts characters). */
size_t rules_source_mark_offset(const rules_source *s, yaml_mark_t mark);

/* Records a problem at byte `at` of the file: "name:line:col: message", the
 * source line and a caret under the column. A message may end in a hint,
 * after "; did you mean " or "; hint: ", which is kept apart. Errors return
 * -EINVAL (or -ENOMEM when even the problem cannot be recorded), warnings
 * 0. */
int rules_report_at(const rules_source *s, ruleset_severity severity, size_t at, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

/* An error at byte `at`; returns -EINVAL. */
int rules_error_at(const rules_source *s, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As rules_error_at, at the start of node n. */
int rules_error_node(const rules_source *s, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As rules_error_at, at byte `offset` of the value of scalar n, mapped back
 * to the file through quoting, folding and block indentation. Falls back to
 * the scalar's start when an escape sequence makes the mapping unsure. */
int rules_error_scalar(const rules_source *s, const yaml_node_t *n, size_t offset, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

/* Warnings: the file still compiles. */
void rules_warn_node(const rules_source *s, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rules_warn_scalar(const rules_source *s, const yaml_node_t *n, size_t offset, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

/* A problem with a file as a whole (cannot be read, out of memory): no
 * position. Returns code. */
int rules_error_file(ruleset_diags *d, const char *name, size_t index, int code, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

/* Sorts the problems by file, then position. */
void rules_diags_sort(ruleset_diags *d);

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
    RT_TIME,     /* unix milliseconds; compares only with times (2026-11-01) */
    RT_DYNAMIC,  /* customer.<attribute>: number or text, chosen by what it is compared with */
    RT_INCIDENTS,
} rules_type;

const char *rules_type_name(rules_type t);

/* Numbers, durations and times are all read as doubles. */
static inline bool rules_type_numeric(rules_type t)
{
    return t == RT_NUMBER || t == RT_DURATION || t == RT_TIME;
}

typedef enum fact_field {
    FF_EVENT_CUSTOMER_ID,
    FF_EVENT_CHANNEL,
    FF_EVENT_TOUCHPOINT,
    FF_EVENT_LOCATION,
    FF_EVENT_LANGUAGE,
    FF_EVENT_TIME,        /* the contact's time (facts.now_ms) */
    FF_EVENT_TIME_OF_DAY, /* duration since local midnight at the contact */
    FF_EVENT_CONTEXT,     /* key = context key; typed by path.type (text unless declared) */
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
    FF_CUSTOMER_ATTR_BOOL,   /* declared bool: true/yes/1, false/no/0 */
    FF_CUSTOMER_ATTR_TIME,   /* declared time: an ISO 8601 date or time */
    FF_INCIDENTS,            /* the customer's incidents: only inside aggregates */
    FF_INCIDENT_ID,
    FF_INCIDENT_KIND,
    FF_INCIDENT_SEVERITY,
    FF_INCIDENT_FLIGHT,
    FF_INCIDENT_NOTE,
    FF_INCIDENT_OPEN,
    FF_INCIDENT_RESOLVED,
    FF_INCIDENT_AGE,
    FF_INCIDENT_OCCURRED_AT, /* a time in conditions; YYYY-MM-DD in texts */
    FF_DECISION_LANGUAGE,
    FF_INCIDENT_RECOVERED,    /* recovered_by is set */
    FF_INCIDENT_RECOVERED_BY, /* the recorded action that recovered it, "" while none */
    FF_HISTORY,               /* the contact history: only inside aggregates */
    FF_HISTORY_ACTION,
    FF_HISTORY_CHANNEL, /* the contract's channel name, "" when unspecified */
    FF_HISTORY_TOUCHPOINT,
    FF_HISTORY_RULE,
    FF_HISTORY_INCIDENT, /* the id of the incident it answered, "" if none */
    FF_HISTORY_PARAM,    /* key = the action's param name */
    FF_HISTORY_CONTEXT,  /* key = context key of the contact; typed as event.context */
    FF_HISTORY_AGE,
    FF_HISTORY_AT,
} fact_field;

typedef struct fact_path {
    fact_field field;
    rules_type type;
    const char *key; /* context key or attribute name, else NULL */
    size_t key_len;
} fact_path;

/* Where a name is read. */
typedef enum fact_scope {
    FS_CONDITION, /* a `when:` outside an aggregate's filter */
    FS_FILTER,    /* inside an aggregate over incidents: bare incident fields too */
    FS_TEMPLATE,  /* a {{placeholder}}: incident.* and decision.language too */
    FS_HISTORY,   /* inside an aggregate over the history: bare history fields too */
} fact_scope;

/* A string value: `fold` means compare as ASCII lower case (lower()), so
 * no evaluation needs a buffer. */
typedef struct strv {
    const char *s;
    size_t len;
    bool fold;
} strv;

/* Most context entries of an event whose key and value lengths a decision
 * keeps; lookups past them compare whole strings. */
#define FACT_MEMO_CONTEXT 16

/* What one decision measures once: the facts do not change while it is
 * decided, and many rules and messages read the same texts (every rule of
 * a touchpoint reads event.touchpoint), which protobuf-c hands over without
 * their lengths. Kept on the deciding thread's stack; fact_memo_init()
 * before the first read. */
typedef struct fact_memo {
    /* the event's and the customer's own texts, by fact_field: text[f]
     * once bit f of `read` is set */
    unsigned read;
    strv text[FF_CUSTOMER_ATTR];
    /* the event's context entries: measured together on the first lookup */
    bool context_measured;
    size_t n_context; /* entries measured: the first FACT_MEMO_CONTEXT */
    size_t key_len[FACT_MEMO_CONTEXT];
    size_t value_len[FACT_MEMO_CONTEXT];
} fact_memo;

static inline void fact_memo_init(fact_memo *m)
{
    m->read = 0;
    m->context_measured = false;
}

/* What a decision reads paths from. */
typedef struct fact_view {
    const facts *f;
    const Nba__V1__Incident *incident;  /* the one a filter looks at, or the hit's */
    const Nba__V1__HistoryEntry *entry; /* the one a history filter looks at */
    const char *decision_language;
    fact_memo *memo; /* the decision's measurements, or NULL: measure on every read */
} fact_view;

typedef struct rules_compiler rules_compiler;

/* Resolves name[0..len) in scope. On failure writes the reason (with a hint)
 * into msg and returns -EINVAL; -ENOMEM when out of memory. */
int fact_path_resolve(rules_compiler *c, const char *name, size_t len, fact_scope scope,
                      fact_path *out, char *msg, size_t msg_size);

/* How a path can lack a value. */
typedef enum fact_missing {
    MISS_NEVER,   /* event fields, customer.known, incident fields in a filter */
    MISS_UNKNOWN, /* built-in customer fields: missing only for an unknown customer */
    MISS_DATA,    /* attributes and context keys: missing whenever the data lacks them */
} fact_missing;

fact_missing fact_path_missing(const fact_path *p, fact_scope scope);

/* Readers: false when the value is missing (unknown customer, absent
 * context key or attribute, no incident, text that is not of the declared
 * type). */
bool fact_string_read(const fact_path *p, const fact_view *v, strv *out);

/* fact_string_read(), but a text of the event or the customer that the
 * decision read before comes from its memo, without a call. */
static inline bool fact_string(const fact_path *p, const fact_view *v, strv *out)
{
    const fact_memo *m = v->memo;
    if (m && p->field < FF_CUSTOMER_ATTR && (m->read >> p->field & 1u)) {
        *out = m->text[p->field];
        return true;
    }
    return fact_string_read(p, v, out);
}

bool fact_number_read(const fact_path *p, const fact_view *v, double *out);
bool fact_bool_read(const fact_path *p, const fact_view *v, bool *out);

/* fact_number_read(), with the fields that need no more than a load (those
 * of incident filters above all) read here, without a call. */
static inline bool fact_number(const fact_path *p, const fact_view *v, double *out)
{
    const Nba__V1__Customer *c = v->f->customer;
    const Nba__V1__Incident *i = v->incident;
    switch (p->field) {
    case FF_CUSTOMER_LIFETIME_VALUE:
        if (!c)
            return false;
        *out = c->lifetime_value;
        return true;
    case FF_CUSTOMER_PREDICTED_LTV:
        if (!c)
            return false;
        *out = c->predicted_ltv;
        return true;
    case FF_INCIDENT_SEVERITY:
        if (!i)
            return false;
        *out = i->severity;
        return true;
    case FF_INCIDENT_AGE:
        if (!i)
            return false;
        *out = (double)(v->f->now_ms - i->occurred_at_ms);
        return true;
    case FF_INCIDENT_OCCURRED_AT:
        if (!i)
            return false;
        *out = (double)i->occurred_at_ms;
        return true;
    case FF_HISTORY_AGE:
        if (!v->entry)
            return false;
        *out = (double)(v->f->now_ms - v->entry->at_ms);
        return true;
    case FF_HISTORY_AT:
        if (!v->entry)
            return false;
        *out = (double)v->entry->at_ms;
        return true;
    default:
        return fact_number_read(p, v, out);
    }
}

/* true/false into *out; returns false when missing. As fact_number(). */
static inline bool fact_bool(const fact_path *p, const fact_view *v, bool *out)
{
    switch (p->field) {
    case FF_CUSTOMER_KNOWN:
        *out = v->f->customer != NULL;
        return true;
    case FF_INCIDENT_OPEN:
        if (!v->incident)
            return false;
        *out = !v->incident->resolved;
        return true;
    case FF_INCIDENT_RESOLVED:
        if (!v->incident)
            return false;
        *out = v->incident->resolved;
        return true;
    case FF_INCIDENT_RECOVERED:
        if (!v->incident)
            return false;
        *out = v->incident->recovered_by && v->incident->recovered_by[0];
        return true;
    default:
        return fact_bool_read(p, v, out);
    }
}

/* Text form for placeholders: numbers without trailing zeros, booleans as
 * true/false, incident.occurred_at as YYYY-MM-DD. buf holds at least 32
 * bytes for numbers. */
bool fact_text(const fact_path *p, const fact_view *v, char *buf, size_t size, strv *out);

/* Value formatting shared with explain: 20000, 1.5; 10d 2h; 2026-11-01T08:30:00Z. */
size_t rules_format_number(double x, char *buf, size_t size);
size_t rules_format_duration(double ms, char *buf, size_t size);
size_t rules_format_time(double ms, char *buf, size_t size);

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
    EX_NUMBER, /* also durations and times */
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
    EX_SUM,
    EX_MAX,
    EX_MIN,
    EX_LATEST,
    EX_LOWER,
    EX_STARTS_WITH,
    EX_CONTAINS,
    EX_SPEAKS,
    EX_HAS,
    EX_AGE,        /* duration since a time */
    EX_DAYS_SINCE, /* whole days since a time */
} expr_op;

static inline bool expr_is_aggregate(expr_op op)
{
    return op == EX_COUNT || op == EX_ANY || op == EX_SUM || op == EX_MAX || op == EX_MIN ||
           op == EX_LATEST;
}

typedef enum expr_cmp { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE } expr_cmp;

typedef struct expr expr;
struct expr {
    expr_op op;
    rules_type type;    /* of the value */
    rules_type operand; /* EX_CMP, EX_IN: the type compared (number, string or bool) */
    expr_cmp cmp;       /* EX_CMP */
    bool negate;        /* EX_IN: `not in` */
    size_t pos;         /* byte offset in the `when` text, for messages */
    size_t end;         /* just past the expression's last character */
    size_t n;           /* kids, or list items */
    union {
        bool b;
        double num;
        strv str;
        fact_path path;
        expr **kids; /* and/or/not, cmp and in (2), calls */
    } u;
    /* aggregates: what they look at (FF_INCIDENTS or FF_HISTORY), the
     * filter (NULL: every item) and the value summed, compared or read
     * (NULL for count and any) */
    fact_field over;
    const expr *filter;
    const expr *value;
    /* EX_LIST items, of type list_type */
    rules_type list_type;
    double *nums;
    strv *strs;
};

/* Compiles the `when:` scalar n into a bool expression. */
int expr_compile(rules_compiler *c, const yaml_node_t *n, expr **out);

/* A duration given on its own (policy windows): scalar n must hold one,
 * longer than nothing, such as 30d or 1h30m. `what` names it in the error.
 * Sets *ms. */
int expr_compile_duration(rules_compiler *c, const yaml_node_t *n, const char *what, double *ms);

/* Compiles a table column's input (scalar n) into a value expression of
 * any type but an incident list. */
int expr_compile_value(rules_compiler *c, const yaml_node_t *n, expr **out);

/* Decision tables build their conditions from pieces: a node (with room
 * for n_kids kids), the typing of an attribute whose type comes from the
 * cells, and one literal of a cell: text[from..to) of scalar n, of type
 * `want` (unquoted text is taken as written). */
expr *expr_new(rules_compiler *c, expr_op op, rules_type type, size_t n_kids);
void expr_settle_dynamic(expr *e, rules_type t);
int expr_compile_literal(rules_compiler *c, const yaml_node_t *n, size_t from, size_t to,
                         rules_type want, expr **out);

/* One evaluation's state, for explain.c: the same evaluator as
 * ruleset_match, one node at a time. */
typedef struct eval_ctx {
    const ruleset *rs;
    fact_view view;
    /* set by the first aggregate over incidents that found one; the
     * history's aggregates pick none */
    const Nba__V1__Incident *trigger;
} eval_ctx;

bool expr_eval_bool(const expr *e, eval_ctx *c);
/* Value readers: false when the value is missing. */
bool expr_eval_num(const expr *e, eval_ctx *c, double *out);
bool expr_eval_str(const expr *e, eval_ctx *c, strv *out);
bool expr_eval_truth(const expr *e, eval_ctx *c, bool *out);

/* Same tree, same meaning: for the analyses. */
bool expr_equal(const expr *a, const expr *b);

/* Most conditions that rules share (rule_term.shared): a decision keeps
 * their outcomes in a bit each. */
#define RULES_MAX_SHARED 64

/* A top-level condition as ruleset_match() evaluates it. */
typedef struct rule_term {
    const expr *e;
    /* Index of the decision's outcome of this condition when other rules
     * or tables test the very same one (every rule of a touchpoint starts
     * with event.touchpoint == "..."), so a decision evaluates it once; -1
     * when this rule alone tests it, or when it looks at incidents (an
     * aggregate picks the rule's incident, so it runs for each rule). */
    int shared;
} rule_term;

/* Once the ruleset compiled without errors: the terms of every rule and
 * table guard, with the conditions they share. Returns 0 or -ENOMEM. */
int rules_share_conditions(rules_compiler *c);

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
/* As tmpl_compile, over the bytes [from, to) of scalar n's value (a
 * paragraph of a letter); positions in messages stay those of the file. */
int tmpl_compile_range(rules_compiler *c, const yaml_node_t *n, size_t from, size_t to, tmpl **out);

/* Renders into the arena; NULL when out of memory. */
char *tmpl_render(const tmpl *t, const tmpl_env *env, arena *a);

/* How tmpl_render_escaped() writes text. */
typedef enum tmpl_escape {
    TMPL_PLAIN,     /* as it is */
    TMPL_HTML,      /* & < > " ' as entities, line breaks as <br> */
    TMPL_HTML_LINE, /* as TMPL_HTML, line breaks as spaces (a title) */
} tmpl_escape;

/* A text written in pieces: bytes go to out[len] while len < size, and
 * len counts every byte, so a pass with out NULL measures and a second
 * pass into a buffer of that size writes. Never NUL-terminated. */
typedef struct tmpl_out {
    char *out;
    size_t size;
    size_t len;
} tmpl_out;

/* Appends t rendered, its literal parts and its values alike, escaped as
 * asked. */
void tmpl_render_into(const tmpl *t, const tmpl_env *env, tmpl_escape esc, tmpl_out *o);
/* Appends s[0..n), escaped as asked. */
void tmpl_escape_into(const char *s, size_t n, tmpl_escape esc, tmpl_out *o);

/* ---- messages and labels (messages.c) ---- */

struct label_table {
    const char *name;
    size_t n;
    struct label_entry {
        const char *value;
        const char **text;   /* per language, default_language filled in; NULL: raw value */
    } * entries;             /* sorted by value, for bsearch */
    const yaml_node_t *node; /* while compiling: where it is defined */
    size_t file;
    bool used;
};

typedef struct message {
    const char *key;
    /* [language * RULES_N_CHANNELS + channel], fallbacks already applied:
     * [lang][channel] -> [lang][default] -> [default_language][channel] ->
     * [default_language][default]. NULL when the message did not compile. */
    const tmpl **text;
    unsigned own_languages;  /* bit l: language l gives its own text (first 32) */
    const yaml_node_t *node; /* while compiling: where it is defined */
    size_t file;
    bool said;     /* used by a say: */
    bool reasoned; /* used by a reason: */
} message;

/* Each compiles one file's section into the ruleset's tables (which have
 * room for every file's), reporting every problem. */
int messages_compile_labels(rules_compiler *c, const yaml_node_t *labels);
int messages_compile(rules_compiler *c, const yaml_node_t *messages);
const label_table *labels_find(const ruleset *rs, const char *name, size_t len);
/* The ruleset language a messages/labels/letters key names, or an error
 * naming the languages, with a hint. */
int messages_language_key(rules_compiler *c, const yaml_node_t *key, size_t *out);
const message *messages_find(const ruleset *rs, const char *key, size_t len);
/* The translation of value in language, or NULL. */
const char *labels_translate(const label_table *t, const char *value, size_t len, size_t language);
/* Warnings once everything compiled: messages said in a language without
 * their own text, messages and label tables nothing uses. */
void messages_check(rules_compiler *c);

/* ---- letters (letters.c) ---- */

/* A letter in one language: a one-line subject and its paragraphs. */
typedef struct letter_text {
    const tmpl *subject;
    size_t n_paragraphs;
    const tmpl **paragraphs;
} letter_text;

typedef struct letter {
    const char *name; /* an action type, or the name an action's `letter:` gives */
    /* per language, default_language filled in for the languages without
     * their own; and the language each of those is written in */
    const letter_text **text;
    size_t *written_in;
    unsigned own_languages;  /* bit l: language l gives its own letter (first 32) */
    const yaml_node_t *node; /* while compiling: where it is defined */
    size_t file;
} letter;

typedef struct rule_action rule_action;

/* Each compiles one file's `letters:` into rs->letters (room for every
 * file's), reporting every problem. */
int letters_compile(rules_compiler *c, const yaml_node_t *letters);
const letter *letters_find(const ruleset *rs, const char *name, size_t len);
/* Once the rules compiled: each action's letter (its own `letter:`, else
 * the one named as its type), and warnings for letters no action sends,
 * letters that lack a language, and recorded follow-up actions without a
 * letter. */
void letters_check(rules_compiler *c);

/* ---- contact policy (policy.c) ---- */

/* Most caps a ruleset may have: a decision counts each in a fixed array. */
#define RULES_MAX_CAPS 32
/* Most recorded actions one decision remembers for `once_per`; more is
 * never written, and past it only the history holds them back. */
#define RULES_MAX_TAKEN 64
/* Most parts of an idempotency key. */
#define RULES_MAX_KEY_PARTS 16

/* An action type with a lasting effect, recorded in the contact history. */
typedef struct policy_record {
    const char *type;
    size_t type_len;
    bool recovers;          /* answers its hit's incident, recovered from then on */
    bool once_per_incident; /* at most once per incident */
    double once_within_ms;  /* at most once in this window; 0: no window */
    uint32_t caps;          /* bit k: cap k counts this type */
    const yaml_node_t *node;
} policy_record;

/* At most `max` recorded actions in `per_ms`, of these types (none: any
 * recorded type) on these channels (0: any). */
typedef struct policy_cap {
    size_t n_types;
    const char **types;
    unsigned channels;
    size_t max;
    double per_ms;
    const yaml_node_t *node;
} policy_cap;

/* Compiles the main file's `policy:` section. Runs once the rules
 * compiled: it warns about action types no rule gives. */
int policy_compile(rules_compiler *c, const yaml_node_t *policy);
/* The record of an action type, or NULL when it is not recorded. */
const policy_record *policy_find(const ruleset *rs, const char *type, size_t len);

/* What a decision's policy checks have seen so far: the recorded actions
 * each cap counts (the history's, then those given), and the recorded
 * actions given. On the deciding thread's stack. */
typedef struct policy_state {
    size_t used[RULES_MAX_CAPS];
    size_t n_taken;
    struct policy_taken {
        const policy_record *record;
        const Nba__V1__Incident *incident;
    } taken[RULES_MAX_TAKEN];
} policy_state;

typedef enum policy_verdict {
    POLICY_GIVE,
    POLICY_ONCE, /* given before: `once_per` */
    POLICY_CAP,  /* a cap is reached */
} policy_verdict;

/* Why an action is held back, for explain. */
typedef struct policy_why {
    const policy_record *record;
    const Nba__V1__HistoryEntry *entry; /* POLICY_ONCE: the earlier one; NULL: in this decision */
    const policy_cap *cap;              /* POLICY_CAP */
    size_t cap_index;
} policy_why;

/* Counts the history for every cap. */
void policy_begin(const ruleset *rs, const facts *f, policy_state *s);
/* Whether action a of hit h may be given, after what s has seen; a given
 * action is counted into s. Actions that are not recorded are always
 * given. why (may be NULL) says what held it back. */
policy_verdict policy_admit(const ruleset *rs, const facts *f, policy_state *s, const rule_hit *h,
                            const rule_action *a, policy_why *why);

/* ---- language tags (language.c) ---- */

/* Index of the ruleset language serving tag[0..len): the tag itself, an alias
 * from language_aliases, then shorter prefixes ("zh-Hant-TW" -> "zh-Hant",
 * "it-IT" -> "it"); case-insensitive, '_' taken as '-'. -1 when none. */
int rules_language_lookup(const ruleset *rs, const char *tag, size_t len);
/* Works out rules_language_lookup() for every two-letter tag ("it", "EN")
 * into the ruleset's table, which the lookup answers them from then
 * on: most tags that contact points and the warehouse send are two
 * letters, or become two letters once their region is dropped. Called
 * once the languages and the aliases are compiled. */
void rules_language_index(ruleset *rs);
/* Exact (case-insensitive) match only; for compile-time checks. */
int rules_language_exact(const ruleset *rs, const char *tag, size_t len);

/* ---- the compiled ruleset ---- */

typedef struct rule_param {
    const char *name;
    const tmpl *value;
} rule_param;

struct rule_action {
    const char *type;
    size_t n_params;
    rule_param *params;
    const message *say;
    const message *reason; /* the action's, else the rule's */
    const tmpl *language;
    unsigned declared; /* channels: as written (RULES_ALL_CHANNELS without) */
    unsigned channels; /* declared, less the channels that cannot perform the type */
    bool follow_up;
    const policy_record *record; /* recorded in the contact history, or NULL */
    const letter *letter;        /* sent after the contact, or NULL */
    const yaml_node_t *node;     /* while compiling: the action */
};

/* A top-level condition of a rule (a conjunct of its `when`, or a cell of
 * a table row), with its text, for explain. */
typedef struct rule_cond {
    const expr *e;
    const char *text;
} rule_cond;

/* One test of a table row: the value of column `column` compared with a
 * literal (EX_CMP), or looked for in a list (EX_IN). A cell is one test, or
 * two for a range ("1..3": >= lo, then <= hi). The same meaning as the
 * cell's expression in the row's conds, without walking it. */
typedef struct table_cell {
    size_t column;
    expr_op op;         /* EX_CMP or EX_IN */
    rules_type operand; /* RT_NUMBER (also durations, times), RT_STRING or RT_BOOL */
    expr_cmp cmp;       /* EX_CMP */
    bool negate;        /* EX_IN: `not in` */
    double num;         /* EX_CMP: the literal, by operand */
    strv str;
    bool b;
    size_t n; /* EX_IN: the list */
    const double *nums;
    const strv *strs;
} table_cell;

struct rule {
    const char *id;
    size_t index; /* order in the ruleset */
    long priority;
    size_t n_groups;
    const int *groups; /* exclusive groups, indexes into ruleset.groups */
    int table;         /* index into ruleset.tables, -1 for a plain rule */
    size_t row;        /* a table row's number, from 1 */
    const expr *when;  /* NULL only while a broken file compiles */
    /* a table row: its cells alone (the table's `when` is apart), as tests
     * of the column values ruleset_match reads once per table */
    size_t n_cells;
    const table_cell *cells;
    size_t n_conds;
    const rule_cond *conds;
    /* a plain rule: its conds as ruleset_match evaluates them */
    size_t n_terms;
    const rule_term *terms;
    size_t n_actions;
    rule_action *actions;
};

typedef struct rule_group {
    const char *name;
    int table; /* the decision table whose rows it keeps exclusive, or -1 */
    bool declared;
} rule_group;

typedef struct table_column {
    const char *name;
    const expr *input;
    /* gap check: the values that exist, when declared */
    size_t n_values;
    const expr **values;
    bool has_range;
    double range_lo, range_hi;
} table_column;

typedef struct rule_table {
    const char *id;
    const expr *guard;    /* the table's own `when`, evaluated once for all rows; or NULL */
    size_t n_guard_terms; /* its top-level conditions, as ruleset_match evaluates them */
    const rule_term *guard_terms;
    bool by_priority; /* policy: priority (else first hit) */
    size_t first_rule, n_rows;
    size_t n_columns;
    table_column *columns;
} rule_table;

typedef struct language_alias {
    const char *tag;
    size_t tag_len;
    size_t language;
} language_alias;

/* A declared customer attribute or context key, and its type (RT_DYNAMIC
 * for a list of attribute names without types). */
typedef struct typed_name {
    const char *name;
    rules_type type;
} typed_name;

struct ruleset {
    arena mem; /* owns everything below */
    const char *name;
    const char *version;
    const char *hash; /* 16 hex digits over every file's content */
    const char *id;   /* name@version+first 8 digits of the hash */
    size_t n_files;
    const char **files;

    size_t n_languages;
    const char **languages;
    size_t *language_len;
    size_t default_language;
    size_t agent_language;
    size_t n_aliases;
    language_alias *aliases;
    /* rules_language_lookup() of the two-letter tags, by letter ('a'..'z'),
     * once two_letter_built (rules_language_index). */
    bool two_letter_built;
    int16_t two_letter[26][26];

    size_t n_attributes; /* declared customer attributes; 0: any name */
    typed_name *attributes;
    size_t n_context; /* declared context keys; 0: any key, as text */
    typed_name *context;

    size_t max_actions;                   /* 0: no limit */
    size_t channel_max[RULES_N_CHANNELS]; /* per channel, default applied; 0: no limit */
    size_t n_cannot[RULES_N_CHANNELS];    /* action types a channel cannot perform */
    const char **cannot[RULES_N_CHANNELS];

    size_t n_rules;
    rule *rules;
    size_t n_groups;
    rule_group *groups;
    size_t n_tables;
    rule_table *tables;
    size_t n_shared; /* conditions rules share (rule_term.shared) */

    size_t n_messages;
    message *messages;
    size_t n_labels;
    label_table *labels;
    size_t n_letters;
    letter *letters;

    /* the contact policy (policy.c) */
    size_t n_records;
    policy_record *records;
    size_t n_caps;
    policy_cap *caps;
    uint32_t caps_any_type; /* bit k: cap k counts every type (it names none) */
    size_t n_key_parts;     /* 0: no idempotency key */
    fact_path *key_parts;
    double key_window_ms;   /* 0: not given */
    double keep_history_ms; /* policy keep_history; 0: not given (kept for good) */
};

/* Where a rule came from, while compiling: for the analyses' warnings. */
typedef struct rule_origin {
    size_t file;
    const yaml_node_t *node;  /* the rule (or table row) */
    const yaml_node_t *id;    /* its id, or NULL for a row without one */
    const yaml_node_t *when;  /* the `when` scalar, or NULL (a row) */
    const yaml_node_t *group; /* its `group`, or NULL */
    bool broken;              /* did not compile */
} rule_origin;

/* One file of a ruleset while it compiles. */
typedef struct rules_file {
    rules_source src;
    yaml_document_t doc;
    bool loaded;       /* doc holds a document */
    bool main;         /* the file that names the ruleset */
    yaml_node_t *root; /* its top-level mapping */
} rules_file;

/* State while one ruleset compiles. */
struct rules_compiler {
    rules_source *src; /* the file being compiled */
    yaml_document_t *doc;
    ruleset *rs;
    ruleset_diags *diags;
    size_t n_files;
    rules_file *files;
    size_t file;          /* index of the file being compiled */
    rule_origin *origins; /* per rule */
    size_t groups_cap;    /* rs->groups grows (malloc) until compiled */
};

/* Makes file i the one being compiled. */
void rules_enter_file(rules_compiler *c, size_t i);

/* Allocation from the ruleset's arena; NULL when out of memory. */
void *rules_alloc(rules_compiler *c, size_t size);
const char *rules_strndup(rules_compiler *c, const char *s, size_t len);

/* Keeps the first failure in *acc, -ENOMEM above all, and tells whether
 * compiling must stop (out of memory); any other error is recorded and the
 * compiler goes on, to report every problem of the file at once. */
static inline bool rules_failed(int *acc, int rc)
{
    if (rc && (*acc == 0 || rc == -ENOMEM))
        *acc = rc;
    return rc == -ENOMEM;
}

/* The scalar text of n, or an error naming `what` when n is no scalar. */
int rules_scalar(rules_compiler *c, const yaml_node_t *n, const char *what, const char **text,
                 size_t *len);

/* Checks that n is a mapping whose keys are among keys[0..n_keys) (with a
 * hint for near misses) and that holds every key whose bit is set in
 * `required`. vals[i] receives the value of keys[i], or NULL. Every unknown
 * or missing key is reported; vals are filled for the known ones even
 * then. Duplicate keys were rejected for the whole document before. */
int rules_mapping(rules_compiler *c, const yaml_node_t *n, const char *what,
                  const char *const *keys, size_t n_keys, unsigned required, yaml_node_t **vals);

yaml_node_t *rules_node(rules_compiler *c, int id);

/* Parts of ruleset.c used by tables.c. */
int rules_compile_actions(rules_compiler *c, const yaml_node_t *then, const message *reason,
                          bool allow_empty, rule *r);
int rules_message_ref(rules_compiler *c, const yaml_node_t *n, const char *what,
                      const message **out);
int rules_compile_groups(rules_compiler *c, const yaml_node_t *n, int extra, rule *r);
/* A decision table's own exclusive group; returns its index or -ENOMEM. */
int rules_table_group(rules_compiler *c, const char *table_id, int table);
int rules_integer(rules_compiler *c, const yaml_node_t *n, const char *what, long *out);
int rules_name_value(rules_compiler *c, const yaml_node_t *n, const char *what, const char **out);
/* The text of e (compiled from the scalar `when`) as written, blanks and
 * line breaks squeezed to one space; NULL when out of memory. */
const char *rules_expr_text(rules_compiler *c, const yaml_node_t *when, const expr *e);
/* An id unique among rules and tables, else an error naming the first use. */
int rules_check_id(rules_compiler *c, const yaml_node_t *n, const char *id, size_t upto);

/* ---- decision tables (tables.c) ---- */

/* Room the tables of one file need: rows (as rules) and tables. */
size_t tables_count_rows(rules_compiler *c, const yaml_node_t *tables, size_t *n_tables);
/* Compiles one file's tables into rules from rs->rules[rs->n_rules]. */
int tables_compile(rules_compiler *c, const yaml_node_t *tables);
/* Gap and overlap warnings, once every rule compiled. */
void tables_check(rules_compiler *c);

/* ---- the actions a decision gives (arbitrate.c) ---- */

/* Walks the actions of kept hits that a decision gives, best first: those
 * available on the event's channel, that the contact policy lets through,
 * up to the channel's limit. ruleset_render() gives exactly these, so
 * ruleset_effects() finds the same ones at the same indexes. */
typedef struct given_walk {
    const ruleset *rs;
    const facts *f;
    const rule_hit *hits;
    size_t n_hits, hit, action;
    size_t count, limit;
    unsigned channel;
    policy_state policy;
} given_walk;

void given_begin(given_walk *w, const ruleset *rs, const facts *f, const rule_hit *hits, size_t n);
/* The next action given and its hit; false once there is none. */
bool given_next(given_walk *w, const rule_hit **hit, const rule_action **action);

/* ---- rendering (render.c) ---- */

/* The language a decision for f starts from: the contact point's choice if
 * spoken, else the customer's first language if spoken, else
 * default_language (an action's `language:` may switch it after). */
size_t rules_base_language(const ruleset *rs, const facts *f);

/* ---- analyses (analyze.c) ---- */

/* Warnings for rules that never fire or never act, rules shadowed by a
 * better rule of their exclusive group, and comparisons that missing data
 * turns surprising. Runs once everything compiled without errors. */
void rules_analyze(rules_compiler *c);

#endif
