/* rules_fixture.h - hand-built facts for the rule engine's tests: an event,
 * a customer with attributes and incidents, built from the nba.pb-c.h
 * structs the way the decider fills them from a request and the store. */
#ifndef NBA_TESTS_RULES_FIXTURE_H
#define NBA_TESTS_RULES_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "facts.h"
#include "nba.pb-c.h"
#include "ruleset.h"

#define FX_MAX    8
#define FX_DAY_MS 86400000LL
#define FX_NOW_MS 1790000000000LL /* 2026-09-21 */

typedef struct fixture {
    Nba__V1__ContactEvent event;
    Nba__V1__ContactEvent__ContextEntry context[FX_MAX];
    Nba__V1__ContactEvent__ContextEntry *context_ptrs[FX_MAX];
    Nba__V1__Customer customer;
    Nba__V1__Attribute attrs[FX_MAX];
    Nba__V1__Attribute *attr_ptrs[FX_MAX];
    Nba__V1__Incident incidents[FX_MAX];
    Nba__V1__Incident *incident_ptrs[FX_MAX];
    bool known;
    facts f;
} fixture;

/* An event at a channel and touchpoint; no customer yet. */
static inline void fx_init(fixture *fx, Nba__V1__Channel channel, const char *touchpoint)
{
    memset(fx, 0, sizeof *fx);
    nba__v1__contact_event__init(&fx->event);
    fx->event.customer_id = "C-1";
    fx->event.channel = channel;
    fx->event.touchpoint = (char *)touchpoint;
    fx->event.location = "FCO-T1-K12";
    fx->event.context = fx->context_ptrs;
    nba__v1__customer__init(&fx->customer);
    fx->customer.attributes = fx->attr_ptrs;
}

static inline void fx_context(fixture *fx, const char *key, const char *value)
{
    size_t i = fx->event.n_context++;
    nba__v1__contact_event__context_entry__init(&fx->context[i]);
    fx->context[i].key = (char *)key;
    fx->context[i].value = (char *)value;
    fx->context_ptrs[i] = &fx->context[i];
}

static inline void fx_customer(fixture *fx, const char *name, const char *tier, double ltv,
                               double predicted, const char *language)
{
    fx->known = true;
    fx->customer.customer_id = "C-1";
    fx->customer.name = (char *)name;
    fx->customer.tier = (char *)tier;
    fx->customer.lifetime_value = ltv;
    fx->customer.predicted_ltv = predicted;
    fx->customer.language = (char *)language;
}

static inline void fx_attr(fixture *fx, const char *name, const char *text, bool has_number,
                           double number)
{
    size_t i = fx->customer.n_attributes++;
    nba__v1__attribute__init(&fx->attrs[i]);
    fx->attrs[i].name = (char *)name;
    fx->attrs[i].text = (char *)text;
    fx->attrs[i].has_number = has_number;
    fx->attrs[i].number = number;
    fx->attr_ptrs[i] = &fx->attrs[i];
}

static inline Nba__V1__Incident *fx_incident(fixture *fx, const char *id, const char *kind,
                                             int severity, int age_days, bool resolved,
                                             const char *flight)
{
    size_t i = 0;
    while (i < FX_MAX && fx->incident_ptrs[i])
        i++;
    Nba__V1__Incident *inc = &fx->incidents[i];
    nba__v1__incident__init(inc);
    inc->incident_id = (char *)id;
    inc->customer_id = "C-1";
    inc->kind = (char *)kind;
    inc->severity = severity;
    inc->occurred_at_ms = FX_NOW_MS - (int64_t)age_days * FX_DAY_MS;
    inc->resolved = resolved;
    inc->flight = (char *)flight;
    fx->incident_ptrs[i] = inc;
    return inc;
}

/* The facts as the decider would pass them. */
static inline const facts *fx_facts(fixture *fx)
{
    size_t n = 0;
    while (n < FX_MAX && fx->incident_ptrs[n])
        n++;
    fx->f.event = &fx->event;
    fx->f.customer = fx->known ? &fx->customer : NULL;
    fx->f.incidents = fx->known ? fx->incident_ptrs : NULL;
    fx->f.n_incidents = fx->known ? n : 0;
    fx->f.now_ms = FX_NOW_MS;
    return &fx->f;
}

/* Match, arbitrate and render, as the decider does. Returns what render
 * returned; the decision's memory is in `a`. */
static inline int fx_decide(const ruleset *rs, fixture *fx, arena *a, Nba__V1__Decision *d)
{
    const facts *f = fx_facts(fx);
    rule_hit hits[64];
    if (ruleset_rule_count(rs) > 64)
        return -1;
    size_t n = ruleset_match(rs, f, hits);
    n = ruleset_arbitrate(rs, f, hits, n);
    nba__v1__decision__init(d);
    return ruleset_render(rs, f, hits, n, a, d);
}

static inline const Nba__V1__Action *fx_action(const Nba__V1__Decision *d, const char *type)
{
    for (size_t i = 0; i < d->n_actions; i++)
        if (strcmp(d->actions[i]->type, type) == 0)
            return d->actions[i];
    return NULL;
}

static inline const char *fx_param(const Nba__V1__Action *a, const char *key)
{
    for (size_t i = 0; a && i < a->n_params; i++)
        if (strcmp(a->params[i]->key, key) == 0)
            return a->params[i]->value;
    return NULL;
}

/* True when id is "<name_version>+" and 8 hex digits: a ruleset id. */
static inline bool fx_id_is(const char *id, const char *name_version)
{
    size_t n = strlen(name_version);
    if (!id || strncmp(id, name_version, n) != 0 || id[n] != '+' || strlen(id) != n + 9)
        return false;
    for (size_t i = n + 1; id[i]; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

#define assert_id(id, name_version)                                                                \
    do {                                                                                           \
        if (!fx_id_is((id), (name_version)))                                                       \
            fail_msg("ruleset id '%s' is not %s+hash8", (id), (name_version));                     \
    } while (0)

/* Loads YAML text, failing the test with the compiler's message. */
static inline ruleset *fx_load(const char *yaml)
{
    ruleset *rs = NULL;
    nba_error err = {{0}};
    int rc = ruleset_load_buffer("test.yaml", yaml, strlen(yaml), &rs, &err);
    if (rc) {
        fprintf(stderr, "rule file did not compile: %s\n--- text:\n%.2000s\n", err.msg, yaml);
        return NULL;
    }
    return rs;
}

#endif
