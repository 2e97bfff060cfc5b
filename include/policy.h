/* policy.h - the contact policy of a ruleset: what a decision records in
 * the customer's contact history, and how a retried event is told apart.
 *
 * The main rule file's `policy:` section (rules/README.md, "Contact
 * policy") names the action types with a lasting effect (an upgrade, an
 * apology letter, goodwill miles): those are recorded in the contact
 * history, and some of them recover the incident they answer. It also
 * holds back actions given before (`once_per: incident`, `once_per: 30d`)
 * and caps how many recorded actions a customer gets in a window; those
 * two are applied by ruleset_arbitrate() and ruleset_render() from
 * facts.history, so a decision never gives what the policy holds back.
 *
 * What is left to the caller (the daemon): after ruleset_render(), write a
 * history entry for each effect of the decision, mark the incidents that
 * effects recover, queue the letters (letters.h); and before deciding,
 * look the event's idempotency key up, so a retried event gets the first
 * answer and records nothing twice.
 *
 * Everything here reads the compiled ruleset and the caller's facts only,
 * allocates nothing, and may run on any number of threads at once.
 */
#ifndef NBA_POLICY_H
#define NBA_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "facts.h"
#include "ruleset.h"
#include "nba.pb-c.h"

/* One action of a decision that the policy records. */
typedef struct ruleset_effect {
    /* Its index in decision->actions. */
    size_t action;
    /* decision->actions[action]->type and ->rule_id: the decision's strings. */
    const char *type;
    const char *rule_id;
    /* The incident it answers: the incident of the hit that gave it (see
     * rule_hit), NULL when its rule looked at no incident. Points into the
     * facts. */
    const Nba__V1__Incident *incident;
    /* The policy says this type recovers the incident it answers, and it
     * answers one: the caller sets incident->recovered_by from it. */
    bool recovers;
    /* Done after the contact (the action's follow_up). */
    bool follow_up;
    /* The letter sent for it, for ruleset_render_letter(): the action's
     * `letter:`, else the letter named as its type; NULL when none. Valid
     * while the ruleset lives. */
    const char *letter;
} ruleset_effect;

/* The effects of decision d: for each action of d whose type the policy
 * records, in the order of d->actions, one ruleset_effect in out[0..max).
 * hits[0..n_hits) and f must be exactly those ruleset_render() made d from
 * (the hits as ruleset_arbitrate() left them): each action of d is matched
 * to the hit and the rule action that gave it by walking them again the
 * way render does, and checked against d (type and rule id).
 *
 * Returns 0 with *n set to the number of effects; -EINVAL when d does not
 * come from these hits and facts (a different number of actions, or an
 * action of another type or rule), with *n = 0; -ENOSPC when more than max
 * effects, with *n set to the number needed (max = d->n_actions always
 * suffices). Allocates nothing. */
int ruleset_effects(const ruleset *rs, const facts *f, const rule_hit *hits, size_t n_hits,
                    const Nba__V1__Decision *d, ruleset_effect *out, size_t max, size_t *n);

/* Whether a rule of hits[0..n_hits) gives an action of a type the policy
 * records. When not, a decision made from these hits has no effects, and
 * ruleset_effects() need not be asked; when so, it may still have none
 * (actions held back, or not for this channel). Compares no strings. */
bool ruleset_hits_record(const ruleset *rs, const rule_hit *hits, size_t n_hits);

/* Whether the policy records action_type in the contact history, and
 * whether it recovers the incident it answers. */
bool ruleset_records(const ruleset *rs, const char *action_type);
bool ruleset_recovers(const ruleset *rs, const char *action_type);

/* The idempotency key of the event in f: the customer id, then each part
 * the policy's `idempotency: key:` names (channel, touchpoint, location,
 * language, context.<key>), in that order. Each part is written as its
 * length in decimal, ':' and its bytes, or as '-' when the event lacks it
 * (a context key not sent); parts are joined with '|':
 * "5:C1001|5:kiosk|7:checkin|5:AZ610". The lengths make the key
 * unambiguous whatever bytes the parts hold.
 *
 * Writes the key into buf, NUL-terminated and cut to size, like snprintf;
 * returns the length of the whole key (without the NUL), so a result >=
 * size means it was cut. Returns 0, writing nothing but a NUL when size >
 * 0, when the ruleset defines no idempotency key. Allocates nothing. */
size_t ruleset_idempotency_key(const ruleset *rs, const facts *f, char *buf, size_t size);

/* How long an event stays a retry of an earlier one with the same key, in
 * milliseconds: the policy's `idempotency: window:`; 0 when not given (the
 * caller's default applies). */
int64_t ruleset_idempotency_window_ms(const ruleset *rs);

/* How long the contact history is kept, in milliseconds: the policy's
 * `keep_history:`, never shorter than a cap's or a once_per window; 0 when
 * not given (kept for good). */
int64_t ruleset_history_kept_ms(const ruleset *rs);

#endif
