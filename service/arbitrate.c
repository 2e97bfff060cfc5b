/* arbitrate.c - from the rules that hold to the rules that act.
 *
 * Best first: higher priority first, file order among equals (a stable
 * insertion sort: a decision has a handful of hits, and it needs no memory).
 * Then, walking best first:
 *   - an exclusive group keeps only its best rule: of the service-recovery
 *     rules that hold, only the most generous one speaks;
 *   - once the actions given on this channel reach max_actions, the
 *     remaining hits are dropped (ruleset_render() cuts the last hit's
 *     actions at the limit too).
 * A group is decided by the rules that hold, whatever channel the event
 * came from: a rule whose actions are all for other channels still wins
 * its group, and gives nothing here.
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
    size_t kept = 0, actions = 0;
    for (size_t i = 0; i < n; i++) {
        const rule *r = hits[i].rule;
        if (rs->max_actions && actions >= rs->max_actions)
            break;
        if (r->group >= 0) {
            bool taken = false;
            for (size_t k = 0; k < kept && !taken; k++)
                taken = hits[k].rule->group == r->group;
            if (taken)
                continue;
        }
        actions += actions_on(r, channel);
        hits[kept++] = hits[i];
    }
    return kept;
}
