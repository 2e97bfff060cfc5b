/* ruleset.h - the ops team's rules, compiled once, evaluated per decision.
 *
 * A ruleset is loaded from YAML rule files (see rules/README.md for the
 * language) and compiled into a form that evaluates without parsing
 * anything: expressions become typed trees with every name resolved to a
 * field, decision tables become rules, messages become lists of literal and
 * placeholder segments, channel and language variants become tables indexed
 * at load time.
 *
 * One decision runs three steps over a compiled ruleset, in this order:
 *   ruleset_match()     which rules' conditions hold for these facts
 *   ruleset_arbitrate() priority order, exclusive groups, limits
 *   ruleset_render()    language choice, actions with params and messages
 * ruleset_explain() runs the same three steps and says why, rule by rule.
 * The rule files' contact policy (what a decision records in the contact
 * history, what that history holds back, the idempotency key) is applied
 * by arbitrate and render; after render, policy.h gives the decision's
 * effects for the caller to record, and letters.h the letters to send.
 *
 * Ownership and threads: a compiled ruleset is immutable. Any number of
 * threads may evaluate it at once; it is freed by ruleset_free() once no
 * thread uses it. Everything a decision allocates comes from the caller's
 * arena.
 */
#ifndef NBA_RULESET_H
#define NBA_RULESET_H

#include <stddef.h>
#include "arena.h"
#include "error.h"
#include "facts.h"
#include "nba.pb-c.h"

typedef struct ruleset ruleset;
typedef struct rule rule;

/* One rule whose condition held. */
typedef struct rule_hit {
    const rule *rule;
    /* The incident the rule is about, for {{incident.*}} placeholders:
     * picked by the first aggregate over incidents that found one (max and
     * min: the incident with that value; the others: the most recent that
     * passed the filter). NULL when the condition involves no incident. */
    const Nba__V1__Incident *incident;
} rule_hit;

/* ---- compiling ----
 *
 * A ruleset is one main rule file (the one with `ruleset:`, `version:` and
 * the languages) plus any number of part files holding more rules, tables,
 * messages and labels: one per touchpoint or team. Parts are named by the
 * main file's `include:` (paths relative to it) or given alongside it. They
 * compose in order: the main file, its includes, then the other files as
 * given. Every problem of every file is reported, not only the first. */

typedef enum ruleset_severity {
    RULESET_ERROR,   /* the ruleset does not compile */
    RULESET_WARNING, /* it compiles, but probably not as meant */
} ruleset_severity;

/* One problem. Strings live as long as the list that holds it. */
typedef struct ruleset_diag {
    ruleset_severity severity;
    const char *file;   /* the path (or buffer name) as given */
    unsigned line, col; /* from 1; col counts characters. 0: the file as a whole */
    const char *message;
    const char *hint;   /* how to fix it ("did you mean 'priority'?"), or NULL */
    const char *source; /* the line of the file (a part of it when long), or NULL */
    const char *caret;  /* blanks (tabs kept) and '^' under the column, or NULL */
} ruleset_diag;

typedef struct ruleset_diags ruleset_diags;

/* An empty list of problems. Returns 0 or -ENOMEM. */
int ruleset_diags_new(ruleset_diags **out);
void ruleset_diags_free(ruleset_diags *d);
/* The problems kept: the first 500, so that a file of garbage cannot make
 * a list of millions. ruleset_diags_errors() and ruleset_diags_warnings()
 * count every problem found, kept or not. */
size_t ruleset_diags_count(const ruleset_diags *d);
/* The i-th problem, in file order then by position; valid while d lives. */
const ruleset_diag *ruleset_diags_get(const ruleset_diags *d, size_t i);
size_t ruleset_diags_errors(const ruleset_diags *d);
size_t ruleset_diags_warnings(const ruleset_diags *d);

/* Writes "file:line:col: message; hint", the source line and the caret
 * (the way nbad reports a rule file it refuses) into buf, NUL-terminated
 * and cut to size. Returns the length it needed. */
size_t ruleset_diag_format(const ruleset_diag *d, char *buf, size_t size);

/* A rule file in memory. */
typedef struct ruleset_text {
    const char *name; /* stands for the path in messages */
    const char *text;
    size_t len;
} ruleset_text;

/* Reads the rule files at paths[0..n) (and the main file's includes) and
 * compiles them into one ruleset. Every error and warning goes to diags
 * (which may be NULL). Returns 0 (warnings allowed); -EINVAL when any error
 * was found; -ENOENT, -EACCES or -EIO when a file cannot be read; -ENOMEM.
 * On failure *out is NULL. */
int ruleset_compile_files(const char *const *paths, size_t n, ruleset **out, ruleset_diags *diags);

/* As ruleset_compile_files, from memory. `include:` is refused: there is
 * no directory to read from. */
int ruleset_compile_texts(const ruleset_text *texts, size_t n, ruleset **out, ruleset_diags *diags);

/* Reads and compiles the rule files at paths[0..n). On failure returns as
 * ruleset_compile_files and err holds every error (as many as fit), each
 * as "path:line:col: message", the offending source line and a caret under
 * the column, so ops staff can see what to fix. Warnings are not reported
 * here (nbactl rules check shows them). */
int ruleset_load_files(const char *const *paths, size_t n, ruleset **out, nba_error *err);

/* One rule file: ruleset_load_files(&path, 1, ...). */
int ruleset_load_file(const char *path, ruleset **out, nba_error *err);

/* As ruleset_load_file, from memory; `name` stands for the path in
 * messages. */
int ruleset_load_buffer(const char *name, const char *yaml, size_t len, ruleset **out,
                        nba_error *err);

void ruleset_free(ruleset *rs);

/* "name@version+hash8", as reported in every decision: the ruleset's name
 * and version from the main file, then the first 8 hex digits of a hash of
 * every file's content, so two edits that keep the version number still
 * tell apart ("airline-checkin@7+3f9a0c1e"). Valid while the ruleset lives. */
const char *ruleset_id(const ruleset *rs);

/* The parts of the id, and the whole hash (16 hex digits). */
const char *ruleset_name(const ruleset *rs);
const char *ruleset_version(const ruleset *rs);
const char *ruleset_hash(const ruleset *rs);

/* The files that compose the ruleset, in order (the main file first). */
size_t ruleset_file_count(const ruleset *rs);
const char *ruleset_file(const ruleset *rs, size_t i);

/* Number of rules (a decision table counts one per row): the most hits
 * ruleset_match() can return. */
size_t ruleset_rule_count(const ruleset *rs);

/* The id of rule i (file order): a rule's `id`, or "table#row" for a
 * decision table row without one. */
const char *ruleset_rule_id(const ruleset *rs, size_t i);

/* ---- deciding ---- */

/* Evaluates every rule's condition against f and writes the rules that hold
 * into hits (room for ruleset_rule_count() entries), in file order. Returns
 * the number of hits. Missing data never fails a decision: a comparison with
 * a missing value is false. Allocates nothing. */
size_t ruleset_match(const ruleset *rs, const facts *f, rule_hit *hits);

/* Orders hits best first (higher priority first, then file order) and drops
 * those that arbitration excludes (a rule of an exclusive group already
 * represented by a better one, the channel's action limit; only actions
 * the contact policy lets through, given f->history, count toward the
 * limit). Works in place; returns the number of hits kept. Allocates
 * nothing. */
size_t ruleset_arbitrate(const ruleset *rs, const facts *f, rule_hit *hits, size_t n);

/* Fills `out` (already initialised with nba__v1__decision__init) with the
 * language, actions, params, messages and reasons for the kept hits, in the
 * channel of f->event: the hits' actions available on that channel that
 * the contact policy lets through (an action of a recorded type given
 * before, per f->history, or past a cap, is left out), up to the channel's
 * limit. Sets out->language, out->actions, out->n_actions and
 * out->ruleset; customer_id and known are the caller's. All memory comes
 * from arena `a`. Returns 0 or -ENOMEM. Keep hits and f as they are to ask
 * ruleset_effects() (policy.h) about the decision. */
int ruleset_render(const ruleset *rs, const facts *f, const rule_hit *hits, size_t n, arena *a,
                   Nba__V1__Decision *out);

/* What ruleset_match, ruleset_arbitrate and ruleset_render would decide for
 * f, and why: out (initialised with nba__v1__explanation__init) gets the
 * decision (customer_id and known set from f) and one RuleTrace per rule in
 * file order, with each top-level condition's text, value and truth, and
 * the rule's outcome: "chosen", or why its actions were dropped (not held,
 * another rule won its exclusive group or table, the channel cannot perform
 * an action, the contact policy held it back and which policy, the
 * channel's action limit). Slower than a decision and never
 * on its path. All memory comes from arena `a`. Returns 0 or -ENOMEM. */
int ruleset_explain(const ruleset *rs, const facts *f, arena *a, Nba__V1__Explanation *out);

#endif
