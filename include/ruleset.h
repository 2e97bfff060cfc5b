/* ruleset.h - the ops team's rules, compiled once, evaluated per decision.
 *
 * A ruleset is loaded from a YAML rule file (see rules/README.md for the
 * language) and compiled into a form that evaluates without parsing
 * anything: expressions become typed trees with every name resolved to a
 * field, messages become lists of literal and placeholder segments, channel
 * and language variants become tables indexed at load time.
 *
 * One decision runs three steps over a compiled ruleset, in this order:
 *   ruleset_match()     which rules' conditions hold for these facts
 *   ruleset_arbitrate() priority order, exclusive groups, limits
 *   ruleset_render()    language choice, actions with params and messages
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
    /* The incident that made the rule's incident condition true (the most
     * recent matching one), for {{incident.*}} placeholders; NULL when the
     * condition involves no incident. */
    const Nba__V1__Incident *incident;
} rule_hit;

/* Reads and compiles the rule file at path. On failure returns -EINVAL (or
 * -ENOENT/-EACCES for an unreadable file) and err holds
 * "path:line:col: message", the offending source line and a caret under the
 * column, so ops staff can see what to fix. */
int ruleset_load_file(const char *path, ruleset **out, nba_error *err);

/* As ruleset_load_file, from memory; `name` stands for the path in
 * messages. */
int ruleset_load_buffer(const char *name, const char *yaml, size_t len, ruleset **out,
                        nba_error *err);

void ruleset_free(ruleset *rs);

/* "name@version" of the ruleset, as reported in every decision. Valid while
 * the ruleset lives. */
const char *ruleset_id(const ruleset *rs);

/* Number of rules: the most hits ruleset_match() can return. */
size_t ruleset_rule_count(const ruleset *rs);

/* Evaluates every rule's condition against f and writes the rules that hold
 * into hits (room for ruleset_rule_count() entries), in file order. Returns
 * the number of hits. Missing data never fails a decision: a comparison with
 * a missing value is false. */
size_t ruleset_match(const ruleset *rs, const facts *f, rule_hit *hits);

/* Orders hits best first (higher priority first, then file order) and drops
 * those that arbitration excludes (a lower-priority rule of an exclusive
 * group already represented, limits). Works in place; returns the number of
 * hits kept. */
size_t ruleset_arbitrate(const ruleset *rs, const facts *f, rule_hit *hits, size_t n);

/* Fills `out` (already initialised with nba__v1__decision__init) with the
 * language, actions, params, messages and reasons for the kept hits, in the
 * channel of f->event. Sets out->language, out->actions, out->n_actions and
 * out->ruleset; customer_id and known are the caller's. All memory comes
 * from arena `a`. Returns 0 or -ENOMEM. */
int ruleset_render(const ruleset *rs, const facts *f, const rule_hit *hits, size_t n, arena *a,
                   Nba__V1__Decision *out);

#endif
