/* render.c - kept hits become a Decision: language, actions, params,
 * messages and reasons, for the channel the event came from.
 *
 * The decision language is chosen first, because every message depends on
 * it: the language picked at the contact point if the ruleset speaks it,
 * else the customer's first language if spoken, else default_language; then
 * the first action (best first) with a `language:` that renders to a spoken
 * language switches to it. Reasons are for staff and use agent_language.
 *
 * The actions are those given_walk (arbitrate.c) gives: on the channel,
 * through the contact policy, up to the channel's limit; ruleset_effects()
 * walks them again to find each action's hit.
 *
 * The decision's texts that the ruleset holds as they are (its id, rule
 * ids, action types, param names, language tags, texts without
 * placeholders) are the ruleset's own, not copies: the caller holds the
 * ruleset until the decision is encoded (decider_done). Rendered texts are
 * in the arena.
 */
#include "rules_internal.h"

#include <errno.h>
#include <string.h>

size_t rules_base_language(const ruleset *rs, const facts *f)
{
    const char *tag = f->event->language;
    int i;
    if (tag && *tag && (i = rules_language_lookup(rs, tag, strlen(tag))) >= 0)
        return (size_t)i;
    tag = f->customer ? f->customer->language : NULL;
    if (tag && *tag && (i = rules_language_lookup(rs, tag, strlen(tag))) >= 0)
        return (size_t)i;
    return rs->default_language;
}

/* An action the decision gives, the hit that gives it, and the language
 * its `language:` names (-1: none). */
typedef struct given {
    const rule_hit *hit;
    const rule_action *action;
    int language;
} given;

/* The actions a decision gives (given_walk: on the channel, through the
 * contact policy, up to the channel's limit), best first. Sets *out (in the
 * arena; NULL when none) and *n. Returns 0 or -ENOMEM. */
static int given_actions(const ruleset *rs, const facts *f, const rule_hit *hits, size_t n_hits,
                         arena *a, given **out, size_t *n)
{
    size_t cap = 0;
    for (size_t i = 0; i < n_hits; i++)
        cap += hits[i].rule->n_actions;
    size_t limit = rs->channel_max[rules_event_channel(f->event)];
    if (limit && cap > limit)
        cap = limit;
    *out = NULL;
    *n = 0;
    if (!cap)
        return 0;
    given *g = arena_alloc(a, cap * sizeof *g);
    if (!g)
        return -ENOMEM;
    given_walk w;
    given_begin(&w, rs, f, hits, n_hits);
    size_t k = 0;
    const rule_hit *hit;
    const rule_action *action;
    while (k < cap && given_next(&w, &hit, &action))
        g[k++] = (given){.hit = hit, .action = action, .language = -1};
    *out = g;
    *n = k;
    return 0;
}

/* A text of the ruleset as a field of the decision. protobuf-c's string
 * fields are not const, but nothing writes through a decision's. */
static char *held_text(const char *s)
{
    return (char *)s;
}

/* t rendered; a text without placeholders is the ruleset's own. */
static char *render_text(const tmpl *t, const tmpl_env *env, arena *a)
{
    return t->n == 1 ? held_text(t->segs[0].lit.s) : tmpl_render(t, env, a);
}

static int render_params(const ruleset *rs, const given *g, const tmpl_env *env, arena *a,
                         Nba__V1__Action *out)
{
    const rule_action *ra = g->action;
    size_t n = ra->n_params + (g->language >= 0 ? 1 : 0);
    if (!n)
        return 0;
    Nba__V1__Action__ParamsEntry *entries = arena_alloc(a, n * sizeof *entries);
    Nba__V1__Action__ParamsEntry **ptrs = arena_alloc(a, n * sizeof *ptrs);
    if (!entries || !ptrs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        nba__v1__action__params_entry__init(&entries[i]);
        ptrs[i] = &entries[i];
        if (i < ra->n_params) {
            entries[i].key = held_text(ra->params[i].name);
            entries[i].value = render_text(ra->params[i].value, env, a);
        } else {
            entries[i].key = held_text("language");
            entries[i].value = held_text(rs->languages[g->language]);
        }
        if (!entries[i].value) /* a rendered text; the rest are the ruleset's */
            return -ENOMEM;
    }
    out->params = ptrs;
    out->n_params = n;
    return 0;
}

static char *render_message(const message *m, size_t language, unsigned channel,
                            const tmpl_env *env, arena *a)
{
    const tmpl *t = m->text[language * RULES_N_CHANNELS + channel];
    return t ? render_text(t, env, a) : held_text("");
}

int ruleset_render(const ruleset *rs, const facts *f, const rule_hit *hits, size_t n, arena *a,
                   Nba__V1__Decision *out)
{
    unsigned channel = rules_event_channel(f->event);
    size_t base = rules_base_language(rs, f);
    size_t lang = base;
    /* the texts of the event and the customer are measured once for all
     * the decision's messages */
    fact_memo memo;
    fact_memo_init(&memo);

    out->ruleset = held_text(rs->id);
    out->n_actions = 0;
    out->actions = NULL;
    given *g;
    size_t total;
    int rc = given_actions(rs, f, hits, n, a, &g, &total);
    if (rc)
        return rc;

    bool switched = false;
    for (size_t k = 0; k < total; k++) {
        if (!g[k].action->language)
            continue;
        tmpl_env env = {.view = {.f = f,
                                 .incident = g[k].hit->incident,
                                 .decision_language = rs->languages[base],
                                 .memo = &memo},
                        .language = base};
        char *tag = tmpl_render(g[k].action->language, &env, a);
        if (!tag)
            return -ENOMEM;
        g[k].language = rules_language_lookup(rs, tag, strlen(tag));
        if (g[k].language >= 0 && !switched) {
            lang = (size_t)g[k].language;
            switched = true;
        }
    }

    out->language = held_text(rs->languages[lang]);
    if (!total)
        return 0;

    Nba__V1__Action *actions = arena_alloc(a, total * sizeof *actions);
    Nba__V1__Action **ptrs = arena_alloc(a, total * sizeof *ptrs);
    if (!actions || !ptrs)
        return -ENOMEM;
    /* A rule's reason usually serves all its actions: render it once per hit
     * and let the actions share the string (the encoder does not mind). */
    const message *shared_reason = NULL;
    const rule_hit *shared_hit = NULL;
    char *shared_text = NULL;
    for (size_t k = 0; k < total; k++) {
        const rule_hit *hit = g[k].hit;
        const rule_action *ra = g[k].action;
        Nba__V1__Action *act = &actions[k];
        nba__v1__action__init(act);
        ptrs[k] = act;
        tmpl_env env = {.view = {.f = f,
                                 .incident = hit->incident,
                                 .decision_language = rs->languages[lang],
                                 .memo = &memo},
                        .language = lang};
        act->type = held_text(ra->type);
        act->rule_id = held_text(hit->rule->id);
        rc = render_params(rs, &g[k], &env, a, act);
        if (rc)
            return rc;
        if (ra->say) {
            act->message = render_message(ra->say, lang, channel, &env, a);
            if (!act->message)
                return -ENOMEM;
        }
        if (ra->reason && ra->reason == shared_reason && hit == shared_hit) {
            act->reason = shared_text;
        } else if (ra->reason) {
            tmpl_env agent = env;
            agent.language = rs->agent_language;
            act->reason = render_message(ra->reason, rs->agent_language, channel, &agent, a);
            if (!act->reason)
                return -ENOMEM;
            shared_reason = ra->reason;
            shared_hit = hit;
            shared_text = act->reason;
        }
        act->follow_up = ra->follow_up;
    }
    out->actions = ptrs;
    out->n_actions = total;
    return 0;
}
