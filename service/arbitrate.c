/* arbitrate.c - from the rules that hold to the rules that act.
 *
 * Best first: higher priority first, file order among equals (a stable
 * insertion sort: a decision has a handful of hits, and it needs no memory).
 * Then, walking best first:
 *   - an exclusive group keeps only its best rule: of the cabin changes that
 *     hold, only the most generous one speaks. A rule may belong to several
 *     groups, and is left out when any of them is already taken; the rows
 *     of a decision table form a group of their own, so one row answers;
 *   - once the actions given on this channel reach the channel's limit
 *     (`channels: { ivr: { max_actions: 3 } }`, else `max_actions`), the
 *     remaining hits are dropped (ruleset_render() cuts the last hit's
 *     actions at the limit too).
 * An action is given when it is for this channel, the channel can perform
 * it, and the contact policy lets it through (policy.c: given before, or a
 * cap reached); only actions given count toward the limit.
 * A group is decided by the rules that hold, whatever channel the event
 * came from and whatever the contact history: a rule whose actions are all
 * for other channels, or all held back by the policy, still wins its
 * group, and gives nothing here. So a recovery that was already given is
 * not replaced by a lesser one.
 */
#include "rules_internal.h"

static bool before(const rule_hit *a, const rule_hit *b)
{
    if (a->rule->priority != b->rule->priority)
        return a->rule->priority > b->rule->priority;
    return a->rule->index < b->rule->index;
}

/* The actions hit h gives on the channel that the policy lets through. */
static size_t actions_given(const ruleset *rs, const facts *f, policy_state *ps, const rule_hit *h,
                            unsigned channel)
{
    const rule *r = h->rule;
    size_t n = 0;
    for (size_t i = 0; i < r->n_actions; i++)
        if ((r->actions[i].channels & (1u << channel)) &&
            policy_admit(rs, f, ps, h, &r->actions[i], NULL) == POLICY_GIVE)
            n++;
    return n;
}

static bool share_group(const rule *a, const rule *b)
{
    for (size_t i = 0; i < a->n_groups; i++)
        for (size_t k = 0; k < b->n_groups; k++)
            if (a->groups[i] == b->groups[k])
                return true;
    return false;
}

size_t ruleset_arbitrate(const ruleset *rs, const facts *f, rule_hit *hits, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        rule_hit h = hits[i];
        size_t j = i;
        while (j > 0 && before(&h, &hits[j - 1])) {
            hits[j] = hits[j - 1];
            j--;
        }
        hits[j] = h;
    }

    unsigned channel = rules_event_channel(f->event);
    size_t limit = rs->channel_max[channel];
    size_t kept = 0, actions = 0;
    policy_state ps;
    policy_begin(rs, f, &ps);
    for (size_t i = 0; i < n; i++) {
        const rule *r = hits[i].rule;
        if (limit && actions >= limit)
            break;
        if (r->n_groups) {
            bool taken = false;
            for (size_t k = 0; k < kept && !taken; k++)
                taken = share_group(hits[k].rule, r);
            if (taken)
                continue;
        }
        actions += actions_given(rs, f, &ps, &hits[i], channel);
        hits[kept++] = hits[i];
    }
    return kept;
}

void given_begin(given_walk *w, const ruleset *rs, const facts *f, const rule_hit *hits, size_t n)
{
    w->rs = rs;
    w->f = f;
    w->hits = hits;
    w->n_hits = n;
    w->hit = w->action = w->count = 0;
    w->channel = rules_event_channel(f->event);
    w->limit = rs->channel_max[w->channel];
    policy_begin(rs, f, &w->policy);
}

bool given_next(given_walk *w, const rule_hit **hit, const rule_action **action)
{
    while (w->hit < w->n_hits) {
        if (w->limit && w->count >= w->limit)
            return false;
        const rule_hit *h = &w->hits[w->hit];
        const rule *r = h->rule;
        if (w->action >= r->n_actions) {
            w->hit++;
            w->action = 0;
            continue;
        }
        const rule_action *a = &r->actions[w->action++];
        if (!(a->channels & (1u << w->channel)))
            continue;
        if (policy_admit(w->rs, w->f, &w->policy, h, a, NULL) != POLICY_GIVE)
            continue;
        w->count++;
        *hit = h;
        *action = a;
        return true;
    }
    return false;
}
