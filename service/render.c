/* render.c - kept hits become a Decision: language, actions, params,
 * messages and reasons, for the channel the event came from.
 *
 * The decision language is chosen first, because every message depends on
 * it: the language picked at the contact point if the ruleset speaks it,
 * else the customer's first language if spoken, else default_language; then
 * the first action (best first) with a `language:` that renders to a spoken
 * language switches to it. Reasons are for staff and use agent_language.
 *
 * Every string of the decision is copied into the arena, so the decision
 * stays valid after the ruleset is replaced by a reload.
 */
#include "rules_internal.h"

#include <errno.h>
#include <string.h>

static size_t base_language(const ruleset *rs, const facts *f)
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

static char *copy(arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

/* Walks the actions a decision gives: those of the kept hits available on
 * the channel, best first, at most the channel's limit. */
typedef struct action_walk {
    const ruleset *rs;
    const rule_hit *hits;
    size_t n_hits;
    unsigned channel;
    size_t hit, action, given;
} action_walk;

static bool walk_next(action_walk *w, const rule_hit **hit, const rule_action **action)
{
    size_t limit = w->rs->channel_max[w->channel];
    if (limit && w->given >= limit)
        return false;
    while (w->hit < w->n_hits) {
        const rule *r = w->hits[w->hit].rule;
        while (w->action < r->n_actions) {
            const rule_action *a = &r->actions[w->action++];
            if (a->channels & (1u << w->channel)) {
                *hit = &w->hits[w->hit];
                *action = a;
                w->given++;
                return true;
            }
        }
        w->hit++;
        w->action = 0;
    }
    return false;
}

static int render_params(const rule_action *ra, const tmpl_env *env, const char *language, arena *a,
                         Nba__V1__Action *out)
{
    size_t n = ra->n_params + (language ? 1 : 0);
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
            entries[i].key = copy(a, ra->params[i].name);
            entries[i].value = tmpl_render(ra->params[i].value, env, a);
        } else {
            entries[i].key = copy(a, "language");
            entries[i].value = copy(a, language);
        }
        if (!entries[i].key || !entries[i].value)
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
    return t ? tmpl_render(t, env, a) : copy(a, "");
}

int ruleset_render(const ruleset *rs, const facts *f, const rule_hit *hits, size_t n, arena *a,
                   Nba__V1__Decision *out)
{
    unsigned channel = rules_event_channel(f->event);
    size_t base = base_language(rs, f);
    size_t lang = base;
    action_walk w = {.rs = rs, .hits = hits, .n_hits = n, .channel = channel};
    const rule_hit *hit;
    const rule_action *ra;

    size_t total = 0;
    while (walk_next(&w, &hit, &ra))
        total++;

    out->ruleset = copy(a, rs->id);
    if (!out->ruleset)
        return -ENOMEM;
    out->n_actions = 0;
    out->actions = NULL;

    int *matched = NULL; /* per action: the language its `language:` names, or -1 */
    if (total) {
        matched = arena_alloc(a, total * sizeof *matched);
        if (!matched)
            return -ENOMEM;
    }
    bool switched = false;
    w = (action_walk){.rs = rs, .hits = hits, .n_hits = n, .channel = channel};
    for (size_t k = 0; walk_next(&w, &hit, &ra); k++) {
        matched[k] = -1;
        if (!ra->language)
            continue;
        tmpl_env env = {
            .view = {.f = f, .incident = hit->incident, .decision_language = rs->languages[base]},
            .language = base};
        char *tag = tmpl_render(ra->language, &env, a);
        if (!tag)
            return -ENOMEM;
        matched[k] = rules_language_lookup(rs, tag, strlen(tag));
        if (matched[k] >= 0 && !switched) {
            lang = (size_t)matched[k];
            switched = true;
        }
    }

    out->language = copy(a, rs->languages[lang]);
    if (!out->language)
        return -ENOMEM;
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
    w = (action_walk){.rs = rs, .hits = hits, .n_hits = n, .channel = channel};
    for (size_t k = 0; walk_next(&w, &hit, &ra); k++) {
        Nba__V1__Action *act = &actions[k];
        nba__v1__action__init(act);
        ptrs[k] = act;
        tmpl_env env = {
            .view = {.f = f, .incident = hit->incident, .decision_language = rs->languages[lang]},
            .language = lang};
        act->type = copy(a, ra->type);
        act->rule_id = copy(a, hit->rule->id);
        if (!act->type || !act->rule_id)
            return -ENOMEM;
        int rc =
            render_params(ra, &env, matched[k] >= 0 ? rs->languages[matched[k]] : NULL, a, act);
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
