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
 * A group is decided by the rules that hold, whatever channel the event
 * came from: a rule whose actions are all for other channels (or that the
 * channel cannot perform) still wins its group, and gives nothing here.
 */
#include "rules_internal.h"

static bool before(const rule_hit *a, const rule_hit *b)
{
    if (a->rule->priority != b->rule->priority)
        return a->rule->priority > b->rule->priority;
    return a->rule->index < b->rule->index;
}

static size_t actions_on(const rule *r, unsigned channel)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_actions; i++)
        if (r->actions[i].channels & (1u << channel))
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
        actions += actions_on(r, channel);
        hits[kept++] = hits[i];
    }
    return kept;
}
