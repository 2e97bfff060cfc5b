/* Unit tests of the condition language: evaluation over hand-built facts,
 * missing data, unknown customers, and the triggering incident. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rules_fixture.h"

static const char head[] = "ruleset: t\n"
                           "version: 1\n"
                           "languages: [en, it, zh-Hant, zh-Hans]\n"
                           "default_language: en\n";

/* The YAML of a ruleset of one rule whose condition is `when`, written as
 * a literal block so the condition needs no YAML quoting; `extra` goes
 * into the header (attributes:, context:). Caller frees. */
static char *one_rule_yaml(const char *extra, const char *when)
{
    size_t size = strlen(when) + strlen(extra) + sizeof head + 256;
    char *buf = malloc(size);
    if (!buf)
        return NULL;
    snprintf(buf, size,
             "%s%srules:\n"
             "  - id: r\n"
             "    when: |\n"
             "      %s\n"
             "    then:\n"
             "      - action: a\n",
             head, extra, when);
    return buf;
}

static ruleset *one_rule_with(const char *extra, const char *when)
{
    char *buf = one_rule_yaml(extra, when);
    if (!buf)
        return NULL;
    ruleset *rs = fx_load(buf);
    free(buf);
    return rs;
}

static ruleset *one_rule(const char *when)
{
    return one_rule_with("", when);
}

/* 1 when the condition holds, 0 when not, -1 when it does not compile. */
static int eval_with(const char *extra, const char *when, fixture *fx)
{
    ruleset *rs = one_rule_with(extra, when);
    if (!rs)
        return -1;
    rule_hit hits[1];
    size_t n = ruleset_match(rs, fx_facts(fx), hits);
    ruleset_free(rs);
    return (int)n;
}

/* 1 when the condition holds, 0 when not, -1 when it does not compile. */
static int eval(const char *when, fixture *fx, const Nba__V1__Incident **trigger)
{
    ruleset *rs = one_rule(when);
    if (!rs)
        return -1;
    rule_hit hits[1];
    size_t n = ruleset_match(rs, fx_facts(fx), hits);
    if (trigger)
        *trigger = n ? hits[0].incident : NULL;
    ruleset_free(rs);
    return (int)n;
}

/* The passenger of the blueprint, at a kiosk, with three incidents. */
static void full_fixture(fixture *fx)
{
    fx_init(fx, NBA__V1__CHANNEL__KIOSK, "checkin");
    fx_context(fx, "cabin", "Y");
    fx_context(fx, "flight", "AZ610");
    fx_customer(fx, "Maria Rossi", "platinum", 12000, 45000, "it-IT");
    fx_attr(fx, "miles", "12000", true, 12000);
    fx_attr(fx, "segment", "vip", false, 0);
    fx_attr(fx, "zeta", "1.5", true, 1.5);
    fx_incident(fx, "I-1", "ife_broken", 3, 10, false, "AZ610");
    fx_incident(fx, "I-2", "delay", 1, 40, true, "AZ611");
    fx_incident(fx, "I-3", "lost_baggage", 2, 200, false, "");
}

typedef struct eval_case {
    const char *when;
    int expect;
} eval_case;

static const eval_case known_cases[] = {
    /* event */
    {"event.touchpoint == \"checkin\"", 1},
    {"event.touchpoint != \"checkin\"", 0},
    {"event.channel == \"kiosk\"", 1},
    {"event.channel in [\"desk\", \"ivr\"]", 0},
    {"event.location == \"FCO-T1-K12\"", 1},
    {"event.customer_id == \"C-1\"", 1},
    {"event.language == \"\"", 1},
    {"event.context.cabin in [\"Y\", \"W\"]", 1},
    {"event.context.cabin not in [\"Y\", \"W\"]", 0},
    /* a context key the event lacks: every comparison is false */
    {"event.context.seat == \"12A\"", 0},
    {"event.context.seat != \"12A\"", 0},
    {"event.context.seat not in [\"12A\"]", 0},
    {"not (event.context.seat == \"12A\")", 1},
    {"event.context.cabin == \"Y\" or event.context.seat == \"1A\"", 1},
    /* customer */
    {"customer.known", 1},
    {"customer.known == true", 1},
    {"customer.tier == \"platinum\" and customer.predicted_ltv >= 20000", 1},
    {"customer.lifetime_value > 12000", 0},
    {"customer.lifetime_value >= 12000", 1},
    {"customer.language == \"it-IT\"", 1},
    /* extra CSV columns: text, or number when compared with a number */
    {"customer.segment == \"vip\"", 1},
    {"customer.segment in [\"gold\", \"vip\"]", 1},
    {"customer.miles > 10000", 1},
    {"customer.miles == \"12000\"", 1},
    {"customer.miles in [12000, 13000]", 1},
    {"customer.zeta == 1.5", 1},
    {"customer.segment > 0", 0},
    {"customer.segment != 5", 0},
    {"customer.nosuch == \"x\"", 0},
    {"customer.nosuch != \"x\"", 0},
    {"lower(customer.segment) == \"vip\"", 1},
    {"customer.segment == customer.segment", 1},
    /* incidents */
    {"count(incidents) == 3", 1},
    {"count(incidents, open) == 2", 1},
    {"count(incidents, resolved) == 1", 1},
    {"count(incidents, not open) == 1", 1},
    {"any(incidents, open and severity >= 2 and age < 180d)", 1},
    {"any(incidents, open and age < 5d)", 0},
    {"count(incidents, age > 30d and age <= 40d) == 1", 1},
    {"any(incidents, kind == \"delay\" and flight == \"AZ611\" and resolved)", 1},
    {"any(incidents, id == \"I-3\" and note == \"\")", 1},
    {"any(incidents, kind in [\"lost_baggage\", \"downgrade\"] and severity == 2)", 1},
    {"any(incidents, flight == event.context.flight and open)", 1},
    {"any(incidents)", 1},
    {"count(incidents, kind == \"nomatch\") == 0", 1},
    {"count(incidents, severity >= 3) >= 1 and customer.tier == \"platinum\"", 1},
    /* text functions */
    {"lower(customer.name) == \"maria rossi\"", 1},
    {"customer.name == \"maria rossi\"", 0},
    {"starts_with(customer.id, \"C-\")", 1},
    {"starts_with(customer.id, \"C-12\")", 0},
    {"contains(lower(customer.name), \"ross\")", 1},
    {"contains(customer.name, \"ross\")", 0},
    {"starts_with(lower(event.location), \"fco\")", 1},
    {"lower(\"ABC\") < \"abd\"", 1},
    {"speaks(customer.language)", 1},
    {"speaks(\"fr\")", 0},
    {"speaks(\"ZH-hant\")", 1},
    /* precedence: not > comparison > and > or */
    {"true or false and false", 1},
    {"(true or false) and false", 0},
    {"not customer.known == false", 1},
    {"not not customer.known", 1},
    /* literals */
    {"1d == 24h", 1},
    {"90m > 1h", 1},
    {"500ms < 1s", 1},
    {"2w == 14d", 1},
    {"20_000 == 20000", 1},
    {"'single' == \"single\"", 1},
    {"\"a\\\"b\" == 'a\"b'", 1},
    {"\"apple\" < \"banana\"", 1},
    {"-5 < 0", 1},
    {"1.25 > 1.2", 1},
};

static void conditions_over_a_known_customer(void **state)
{
    (void)state;
    fixture fx;
    full_fixture(&fx);
    for (size_t i = 0; i < sizeof known_cases / sizeof known_cases[0]; i++) {
        int got = eval(known_cases[i].when, &fx, NULL);
        if (got != known_cases[i].expect)
            fail_msg("'%s': expected %d, got %d", known_cases[i].when, known_cases[i].expect, got);
    }
}

static const eval_case unknown_cases[] = {
    {"customer.known", 0},
    {"not customer.known", 1},
    {"customer.known == false", 1},
    {"customer.tier == \"platinum\"", 0},
    {"customer.tier != \"platinum\"", 0},
    {"not (customer.tier == \"platinum\")", 1},
    {"customer.tier in [\"gold\"]", 0},
    {"customer.tier not in [\"gold\"]", 0},
    {"customer.predicted_ltv < 1", 0},
    {"customer.predicted_ltv >= 0", 0},
    {"customer.language == \"\"", 0},
    {"customer.segment == \"vip\"", 0},
    {"customer.miles > 0", 0},
    {"lower(customer.name) == \"\"", 0},
    {"contains(customer.name, \"\")", 0},
    {"speaks(customer.language)", 0},
    {"count(incidents) == 0", 1},
    {"any(incidents, open)", 0},
    {"any(incidents)", 0},
    {"event.touchpoint == \"checkin\" and not customer.known", 1},
};

/* facts.customer == NULL: customer.* is missing, incidents are empty, and
 * the event still counts. The fixture keeps incident records around to
 * show they are ignored without a customer. */
static void conditions_over_an_unknown_customer(void **state)
{
    (void)state;
    fixture fx;
    fx_init(&fx, NBA__V1__CHANNEL__DESK, "checkin");
    fx_incident(&fx, "I-1", "ife_broken", 3, 10, false, "AZ610");
    const facts *f = fx_facts(&fx);
    assert_null(f->customer);
    for (size_t i = 0; i < sizeof unknown_cases / sizeof unknown_cases[0]; i++) {
        int got = eval(unknown_cases[i].when, &fx, NULL);
        if (got != unknown_cases[i].expect)
            fail_msg("'%s': expected %d, got %d", unknown_cases[i].when, unknown_cases[i].expect,
                     got);
    }
}

/* Records assembled by hand may leave strings NULL; they read as empty. */
static void null_strings_read_as_empty(void **state)
{
    (void)state;
    fixture fx;
    fx_init(&fx, NBA__V1__CHANNEL__IVR, "call");
    fx.event.touchpoint = NULL;
    fx.event.language = NULL;
    fx_customer(&fx, NULL, NULL, 0, 0, NULL);
    Nba__V1__Incident *inc = fx_incident(&fx, NULL, NULL, 2, 1, false, NULL);
    inc->note = NULL;
    assert_int_equal(eval("event.touchpoint == \"\"", &fx, NULL), 1);
    assert_int_equal(eval("customer.tier == \"\" and customer.name == \"\"", &fx, NULL), 1);
    assert_int_equal(
        eval("any(incidents, kind == \"\" and note == \"\" and id == \"\")", &fx, NULL), 1);
    assert_int_equal(eval("speaks(customer.language)", &fx, NULL), 0);
}

/* A decision measures the event's context once and then compares key
 * lengths before bytes: keys that begin like others, entries without a key
 * or a value, and keys past the entries it keeps measured. */
static void context_keys_of_every_length(void **state)
{
    (void)state;
    enum { N = 24 };
    Nba__V1__ContactEvent__ContextEntry entries[N];
    Nba__V1__ContactEvent__ContextEntry *ptrs[N];
    char keys[N][8], values[N][8];
    for (size_t i = 0; i < N; i++) {
        nba__v1__contact_event__context_entry__init(&entries[i]);
        snprintf(keys[i], sizeof keys[i], "k%zu", i);
        snprintf(values[i], sizeof values[i], "v%zu", i);
        entries[i].key = keys[i];
        entries[i].value = values[i];
        ptrs[i] = &entries[i];
    }
    entries[0].key = "cab";
    entries[0].value = "short";
    entries[1].key = NULL;
    entries[2].key = "cabin";
    entries[2].value = NULL;
    entries[3].key = "cabins";
    entries[3].value = "W";
    ptrs[4] = NULL;
    entries[N - 1].key = "late";
    entries[N - 1].value = "yes";
    fixture fx;
    fx_init(&fx, NBA__V1__CHANNEL__KIOSK, "checkin");
    fx.event.context = ptrs;
    fx.event.n_context = N;
    assert_int_equal(eval("event.context.cab == \"short\"", &fx, NULL), 1);
    assert_int_equal(eval("event.context.cabin == \"\"", &fx, NULL), 1);
    assert_int_equal(eval("has(event.context.cabin)", &fx, NULL), 0);
    assert_int_equal(eval("event.context.cabins == \"W\"", &fx, NULL), 1);
    assert_int_equal(eval("event.context.ca == \"short\"", &fx, NULL), 0);
    assert_int_equal(eval("event.context.k5 == \"v5\"", &fx, NULL), 1);
    assert_int_equal(eval("event.context.late == \"yes\"", &fx, NULL), 1);
    assert_int_equal(eval("event.context.k20 == \"v20\"", &fx, NULL), 1);
    assert_int_equal(eval("event.context.k4 == \"v4\"", &fx, NULL), 0);
    /* several lookups in one decision */
    assert_int_equal(eval("event.context.cab == \"short\" and event.context.cabins == \"W\" and "
                          "event.context.late == \"yes\" and event.context.cabin == \"\"",
                          &fx, NULL),
                     1);
}

static void triggering_incident_is_most_recent_match(void **state)
{
    (void)state;
    fixture fx;
    fx_init(&fx, NBA__V1__CHANNEL__DESK, "checkin");
    fx_customer(&fx, "Ada", "gold", 1, 1, "en");
    Nba__V1__Incident *a = fx_incident(&fx, "A", "delay", 3, 100, false, "X1");
    Nba__V1__Incident *b = fx_incident(&fx, "B", "ife_broken", 2, 10, false, "X2");
    Nba__V1__Incident *c = fx_incident(&fx, "C", "downgrade", 5, 1, true, "X3");
    const Nba__V1__Incident *t;

    assert_int_equal(eval("any(incidents, open and severity >= 2)", &fx, &t), 1);
    assert_ptr_equal(t, b);
    /* the first aggregate matched nothing: the second one picks */
    assert_int_equal(
        eval("count(incidents, kind == \"zzz\") == 0 and any(incidents, resolved)", &fx, &t), 1);
    assert_ptr_equal(t, c);
    /* the first aggregate that matched picks, even if a later one is narrower */
    assert_int_equal(
        eval("any(incidents, severity >= 3) and any(incidents, kind == \"delay\")", &fx, &t), 1);
    assert_ptr_equal(t, c);
    assert_int_equal(eval("any(incidents, kind == \"zzz\") or any(incidents, open)", &fx, &t), 1);
    assert_ptr_equal(t, b);
    assert_int_equal(eval("count(incidents, severity == 3) == 1", &fx, &t), 1);
    assert_ptr_equal(t, a);
    /* no incident involved, or none matched */
    assert_int_equal(eval("customer.known", &fx, &t), 1);
    assert_null(t);
    assert_int_equal(eval("not any(incidents, kind == \"zzz\")", &fx, &t), 1);
    assert_null(t);
}

/* An `and` chain thousands long is one node: it neither hits the nesting
 * limit nor deepens the evaluator's recursion. */
static void long_chains_evaluate(void **state)
{
    (void)state;
    fixture fx;
    full_fixture(&fx);
    size_t n = 4000;
    char *when = malloc(n * 24 + 64);
    assert_non_null(when);
    char *p = when;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%scustomer.known", i ? " and " : "");
    assert_int_equal(eval(when, &fx, NULL), 1);
    strcpy(p, " and customer.tier == \"x\"");
    assert_int_equal(eval(when, &fx, NULL), 0);
    free(when);
}

/* Conditions nested exactly to the limit compile and evaluate. */
static void nesting_up_to_the_limit(void **state)
{
    (void)state;
    fixture fx;
    full_fixture(&fx);
    char when[512];
    size_t k = 0;
    for (int i = 0; i < 60; i++)
        when[k++] = '(';
    k += (size_t)sprintf(when + k, "customer.known");
    for (int i = 0; i < 60; i++)
        when[k++] = ')';
    when[k] = '\0';
    assert_int_equal(eval(when, &fx, NULL), 1);
}

/* ---- times, aggregates, has(), typed attributes and context ---- */

/* The fixture's now is 2026-09-21T14:13:20Z; incidents I-1 (2026-09-11,
 * severity 3, open), I-2 (2026-08-12, 1, resolved), I-3 (2026-03-05, 2,
 * open, no flight). */
static const eval_case time_cases[] = {
    {"event.time > 2026-09-21", 1},
    {"event.time < 2026-09-21T14:00:00Z", 0},
    {"event.time >= 2026-09-21T14:13:20Z and event.time <= 2026-09-21T16:13:20+02:00", 1},
    {"event.time_of_day > 14h and event.time_of_day < 14h15m", 1},
    {"event.time_of_day == 14h13m20s", 1},
    {"any(incidents, occurred_at > 2026-09-01)", 1},
    {"count(incidents, occurred_at < 2026-08-13) == 2", 1},
    {"age(event.time) == 0s", 1},
    {"days_since(2026-09-01) == 20", 1},
    {"days_since(2026-09-20T14:13:21Z) == 0", 1},
    {"1h30m == 90m and 1d12h == 36h and 2w1d == 15d", 1},
    {"2026-11-01 < 2026-11-01T00:00:01Z", 1},
    {"2026-11-01 in [2026-10-31, 2026-11-01]", 1},
    {"event.time not in [2026-11-01]", 1},
    /* aggregates */
    {"sum(incidents, severity) == 6", 1},
    {"sum(incidents, severity, open) == 5", 1},
    {"sum(incidents, severity, kind == \"nomatch\") == 0", 1},
    {"sum(incidents, age) > 240d", 1},
    {"max(incidents, severity) == 3", 1},
    {"max(incidents, severity, resolved) == 1", 1},
    {"min(incidents, severity) == 1", 1},
    {"max(incidents, age) > 100d and min(incidents, age) < 11d", 1},
    {"max(incidents, occurred_at) > 2026-09-10", 1},
    {"max(incidents, severity, kind == \"nomatch\") >= 0", 0},
    {"not (max(incidents, severity, kind == \"nomatch\") >= 0)", 1},
    {"latest(incidents, kind) == \"ife_broken\"", 1},
    {"latest(incidents, kind, resolved) == \"delay\"", 1},
    {"latest(incidents, severity, not open) == 1", 1},
    {"latest(incidents, open)", 1},
    {"latest(incidents, open, resolved) == false", 1},
    {"latest(incidents, occurred_at, severity == 2) < 2026-04-01", 1},
    {"latest(incidents, kind, kind == \"none\") == \"x\"", 0},
    {"latest(incidents, kind, kind == \"none\") != \"x\"", 0},
    /* has() */
    {"has(event.context.cabin)", 1},
    {"has(event.context.seat)", 0},
    {"has(customer.segment) and has(customer.miles)", 1},
    {"has(customer.nosuch)", 0},
    {"has(customer.tier)", 1},
    {"has(max(incidents, severity))", 1},
    {"has(max(incidents, severity, kind == \"nomatch\"))", 0},
    {"has(latest(incidents, flight, kind == \"lost_baggage\"))", 0},
    {"has(latest(incidents, flight))", 1},
};

static const eval_case unknown_time_cases[] = {
    {"sum(incidents, severity) == 0", 1},
    {"has(max(incidents, severity))", 0},
    {"latest(incidents, kind) == \"x\"", 0},
    {"latest(incidents, kind) != \"x\"", 0},
    {"has(customer.tier)", 0},
    {"event.time > 2000-01-01", 1},
};

static void times_aggregates_and_has(void **state)
{
    (void)state;
    fixture fx;
    full_fixture(&fx);
    for (size_t i = 0; i < sizeof time_cases / sizeof time_cases[0]; i++) {
        int got = eval(time_cases[i].when, &fx, NULL);
        if (got != time_cases[i].expect)
            fail_msg("'%s': expected %d, got %d", time_cases[i].when, time_cases[i].expect, got);
    }
    fx_init(&fx, NBA__V1__CHANNEL__DESK, "checkin");
    for (size_t i = 0; i < sizeof unknown_time_cases / sizeof unknown_time_cases[0]; i++) {
        int got = eval(unknown_time_cases[i].when, &fx, NULL);
        if (got != unknown_time_cases[i].expect)
            fail_msg("unknown customer, '%s': expected %d, got %d", unknown_time_cases[i].when,
                     unknown_time_cases[i].expect, got);
    }
}

/* The contact point's local time, from its utc_offset context key. */
static void time_of_day_at_the_contact(void **state)
{
    (void)state;
    static const struct {
        const char *offset;
        const char *when;
    } cases[] = {
        {"+02:00", "event.time_of_day == 16h13m20s"},
        {"-05:30", "event.time_of_day == 8h43m20s"},
        {"+0930", "event.time_of_day == 23h43m20s"},
        {"+10", "event.time_of_day == 13m20s"},       /* past local midnight */
        {"-15:00", "event.time_of_day == 14h13m20s"}, /* impossible: UTC */
        {"Z", "event.time_of_day == 14h13m20s"},
        {"", "event.time_of_day == 14h13m20s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        full_fixture(&fx);
        fx_context(&fx, "utc_offset", cases[i].offset);
        if (eval(cases[i].when, &fx, NULL) != 1)
            fail_msg("offset '%s': expected %s", cases[i].offset, cases[i].when);
    }
}

/* The triggering incident of max/min is the extreme one, of latest the
 * most recent. */
static void aggregates_pick_their_incident(void **state)
{
    (void)state;
    fixture fx;
    full_fixture(&fx);
    const Nba__V1__Incident *t;
    assert_int_equal(eval("max(incidents, severity) >= 3", &fx, &t), 1);
    assert_string_equal(t->incident_id, "I-1");
    assert_int_equal(eval("min(incidents, severity) == 1", &fx, &t), 1);
    assert_string_equal(t->incident_id, "I-2");
    assert_int_equal(eval("max(incidents, age) > 100d", &fx, &t), 1);
    assert_string_equal(t->incident_id, "I-3");
    assert_int_equal(eval("latest(incidents, kind, open) == \"ife_broken\"", &fx, &t), 1);
    assert_string_equal(t->incident_id, "I-1");
    assert_int_equal(eval("sum(incidents, severity, kind != \"ife_broken\") == 3", &fx, &t), 1);
    assert_string_equal(t->incident_id, "I-2");
}

static const char typed_attributes[] =
    "attributes: { miles: number, segment: text, vip: bool, member_since: time, joined: time, "
    "tags: any }\n";

static void typed_fixture(fixture *fx, const char *vip)
{
    full_fixture(fx);
    fx_attr(fx, "vip", vip, false, 0);
    fx_attr(fx, "member_since", "2019-05-01", false, 0);
    fx_attr(fx, "joined", "not a date", false, 0);
    fx_attr(fx, "tags", "a,b", false, 0);
}

static void typed_attributes_and_context(void **state)
{
    (void)state;
    static const eval_case attr_cases[] = {
        {"customer.vip", 1},
        {"customer.vip == true", 1},
        {"not customer.vip", 0},
        {"customer.vip != false", 1},
        {"customer.member_since < 2020-01-01", 1},
        {"days_since(customer.member_since) > 365", 1},
        {"age(customer.member_since) > 52w", 1},
        {"customer.joined < 2030-01-01", 0},
        {"has(customer.joined)", 0},
        {"customer.miles > 10000 and customer.segment == \"vip\"", 1},
        {"customer.tags == \"a,b\"", 1},
    };
    fixture fx;
    typed_fixture(&fx, "Yes");
    for (size_t i = 0; i < sizeof attr_cases / sizeof attr_cases[0]; i++) {
        int got = eval_with(typed_attributes, attr_cases[i].when, &fx);
        if (got != attr_cases[i].expect)
            fail_msg("'%s': expected %d, got %d", attr_cases[i].when, attr_cases[i].expect, got);
    }
    /* a bool attribute that is neither: missing, so every comparison is false */
    typed_fixture(&fx, "maybe");
    assert_int_equal(eval_with(typed_attributes, "customer.vip == true", &fx), 0);
    assert_int_equal(eval_with(typed_attributes, "customer.vip != true", &fx), 0);
    assert_int_equal(eval_with(typed_attributes, "customer.vip", &fx), 0);
    assert_int_equal(eval_with(typed_attributes, "has(customer.vip)", &fx), 0);
    typed_fixture(&fx, "0");
    assert_int_equal(eval_with(typed_attributes, "customer.vip == false", &fx), 1);

    static const char typed_context[] =
        "context: { cabin: text, party: number, lounge: bool, departs: time, flight: text }\n";
    static const eval_case context_cases[] = {
        {"event.context.party >= 3", 1},
        {"event.context.lounge", 1},
        {"event.context.departs > event.time", 1},
        {"event.context.cabin == \"Y\"", 1},
    };
    full_fixture(&fx);
    fx_context(&fx, "party", "3");
    fx_context(&fx, "lounge", "true");
    fx_context(&fx, "departs", "2026-09-21T18:00:00Z");
    for (size_t i = 0; i < sizeof context_cases / sizeof context_cases[0]; i++) {
        int got = eval_with(typed_context, context_cases[i].when, &fx);
        if (got != context_cases[i].expect)
            fail_msg("'%s': expected %d, got %d", context_cases[i].when, context_cases[i].expect,
                     got);
    }
}

typedef struct type_error_case {
    const char *extra;
    const char *when;
    const char *fragment;
} type_error_case;

/* Type mistakes are found when the file loads, never at the desk. */
static void type_errors_at_compile_time(void **state)
{
    (void)state;
    static const type_error_case cases[] = {
        {typed_attributes, "customer.miles == \"x\"", "cannot compare a number with a text"},
        {typed_attributes, "customer.vip == 1", "cannot compare a true/false with a number"},
        {typed_attributes, "customer.member_since > 3", "cannot compare a time with a number"},
        {typed_attributes, "customer.member_since > 3d",
         "cannot compare a time with a duration; a time compares with a time"},
        {typed_attributes, "days_since(customer.segment) > 1", "days_since() takes a time"},
        {typed_attributes, "customer.nosuch == 1", "unknown customer field 'nosuch'"},
        {typed_attributes, "customer.segment",
         "'when' needs a condition (true/false), found a text"},
        {"attributes: { miles: numbr }\n", "true", "unknown type 'numbr'; did you mean 'number'?"},
        {"context: { party: number }\n", "event.context.pary > 1",
         "unknown context key 'pary'; did you mean 'party'?"},
        {"", "sum(incidents, kind) > 1", "sum() cannot look at a text"},
        {"", "max(incidents, open)", "max() cannot look at a true/false"},
        {"", "max(incidents) > 1", "max() needs the value to look at"},
        {"", "latest(incidents, kind) > 1", "cannot compare a text with a number"},
        {"", "sum(incidents, severity, any(incidents, open)) > 1", "cannot be used inside"},
        {"", "has(\"x\")", "has() tells whether a value is there"},
        {"", "age(customer.tier) > 1d", "age() takes a time"},
        {"", "event.time > 2026-02-30", "'2026-02-30' is not a date or time"},
        {"", "1h30 > 1h", "a duration like 1h30m needs a unit after each number"},
        {"", "event.time_of_day > 6", "cannot compare a duration with a number"},
        {"", "customer.segment > 1d", "cannot compare a customer attribute with a duration"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *yaml = one_rule_yaml(cases[i].extra, cases[i].when);
        assert_non_null(yaml);
        ruleset *rs;
        nba_error err;
        int rc = ruleset_load_buffer("t.yaml", yaml, strlen(yaml), &rs, &err);
        free(yaml);
        if (rc != -EINVAL || !strstr(err.msg, cases[i].fragment))
            fail_msg("'%s': expected an error with \"%s\", got %d: %s", cases[i].when,
                     cases[i].fragment, rc, rc ? err.msg : "(compiled)");
    }
}

/* ---- the contact history ---- */

typedef struct history_fixture {
    Nba__V1__HistoryEntry entries[4];
    Nba__V1__HistoryEntry *ptrs[4];
    Nba__V1__HistoryEntry__ParamsEntry params[4];
    Nba__V1__HistoryEntry__ParamsEntry *param_ptrs[4];
    Nba__V1__HistoryEntry__ContextEntry context[4][2];
    Nba__V1__HistoryEntry__ContextEntry *context_ptrs[4][2];
    size_t n;
} history_fixture;

/* Appends a recorded action (the history is oldest first); a NULL param
 * or flight leaves it out. */
static void hx_entry(history_fixture *h, fixture *fx, const char *action, Nba__V1__Channel channel,
                     int64_t age_ms, const char *rule, const char *incident, const char *param,
                     const char *value, const char *flight)
{
    size_t i = h->n++;
    Nba__V1__HistoryEntry *e = &h->entries[i];
    nba__v1__history_entry__init(e);
    e->customer_id = "C-1";
    e->action = (char *)action;
    e->channel = channel;
    e->touchpoint = "checkin";
    e->at_ms = FX_NOW_MS - age_ms;
    e->rule_id = (char *)rule;
    e->incident_id = (char *)incident;
    if (param) {
        nba__v1__history_entry__params_entry__init(&h->params[i]);
        h->params[i].key = (char *)param;
        h->params[i].value = (char *)value;
        h->param_ptrs[i] = &h->params[i];
        e->params = &h->param_ptrs[i];
        e->n_params = 1;
    }
    e->context = h->context_ptrs[i];
    if (flight) {
        nba__v1__history_entry__context_entry__init(&h->context[i][0]);
        h->context[i][0].key = "flight";
        h->context[i][0].value = (char *)flight;
        h->context_ptrs[i][e->n_context++] = &h->context[i][0];
    }
    nba__v1__history_entry__context_entry__init(&h->context[i][1]);
    h->context[i][1].key = "party";
    h->context[i][1].value = "2";
    h->context_ptrs[i][e->n_context++] = &h->context[i][1];
    h->ptrs[i] = e;
    fx->f.history = h->ptrs;
    fx->f.n_history = h->n;
}

/* The blueprint passenger after a kiosk contact half an hour ago (upgrade
 * and letter for I-1, which the upgrade recovered) and goodwill miles at
 * a desk a hundred days ago. */
static void history_fixture_init(history_fixture *h, fixture *fx)
{
    memset(h, 0, sizeof *h);
    full_fixture(fx);
    hx_entry(h, fx, "goodwill_miles", NBA__V1__CHANNEL__DESK, 100 * FX_DAY_MS, "miles", "I-2",
             "miles", "5000", NULL);
    hx_entry(h, fx, "upgrade", NBA__V1__CHANNEL__KIOSK, 30 * 60000, "recovery", "I-1", "cabin", "F",
             "AZ610");
    hx_entry(h, fx, "apology_letter", NBA__V1__CHANNEL__KIOSK, 30 * 60000, "recovery", "I-1", NULL,
             NULL, "AZ610");
    fx->incidents[0].recovered_by = "upgrade";
    fx->incidents[0].recovered_at_ms = FX_NOW_MS - 30 * 60000;
}

static const eval_case history_cases[] = {
    {"count(history) == 3", 1},
    {"count(history, action == \"upgrade\") == 1", 1},
    {"any(history, action == \"upgrade\" and context.flight == event.context.flight)", 1},
    {"any(history, action == \"upgrade\" and context.flight == \"AZ611\")", 0},
    {"any(history, channel == \"kiosk\" and age < 1h)", 1},
    {"any(history, channel == \"desk\" and age < 1h)", 0},
    {"any(history, touchpoint == \"checkin\" and rule == \"recovery\")", 1},
    {"count(history, incident == \"I-1\") == 2", 1},
    {"any(history, params.cabin == \"F\")", 1},
    /* a param or context key the entry lacks: every comparison is false */
    {"any(history, params.cabin != \"F\")", 0},
    {"any(history, not (params.cabin == \"F\"))", 1},
    {"count(history, has(context.flight)) == 2", 1},
    /* the most recent; of two at the same time, the later in the list */
    {"latest(history, action) == \"apology_letter\"", 1},
    {"latest(history, channel, action == \"goodwill_miles\") == \"desk\"", 1},
    {"days_since(latest(history, at, action == \"goodwill_miles\")) == 100", 1},
    {"age(latest(history, at)) == 30m", 1},
    {"max(history, age) > 99d", 1},
    {"min(history, at) < event.time", 1},
    {"days_since(latest(history, at, action == \"none\")) >= 0", 0},
    {"latest(history, action, action == \"none\") != \"x\"", 0},
    /* incidents: recovered from the history by the daemon */
    {"any(incidents, recovered)", 1},
    {"any(incidents, recovered and recovered_by == \"upgrade\")", 1},
    {"count(incidents, open and not recovered) == 1", 1},
    {"latest(incidents, recovered_by, recovered) == \"upgrade\"", 1},
};

static void conditions_over_the_history(void **state)
{
    (void)state;
    history_fixture h;
    fixture fx;
    history_fixture_init(&h, &fx);
    for (size_t i = 0; i < sizeof history_cases / sizeof history_cases[0]; i++) {
        int got = eval(history_cases[i].when, &fx, NULL);
        if (got != history_cases[i].expect)
            fail_msg("'%s': expected %d, got %d", history_cases[i].when, history_cases[i].expect,
                     got);
    }
    /* a context key declared as a number is read as one in the history */
    assert_int_equal(eval_with("context: { party: number, flight: text }\n",
                               "any(history, context.party >= 2 and context.flight == \"AZ610\")",
                               &fx),
                     1);
    /* a history aggregate picks no incident: the rule's incident is the
     * incident aggregate's */
    const Nba__V1__Incident *t = NULL;
    assert_int_equal(eval("any(history, action == \"upgrade\") and any(incidents, open)", &fx, &t),
                     1);
    assert_non_null(t);
    assert_string_equal(t->incident_id, "I-1");
    assert_int_equal(eval("any(history, action == \"upgrade\")", &fx, &t), 1);
    assert_null(t);

    /* the history is the caller's, known customer or not */
    fixture unknown;
    fx_init(&unknown, NBA__V1__CHANNEL__DESK, "checkin");
    unknown.f.history = h.ptrs;
    unknown.f.n_history = h.n;
    assert_int_equal(eval("count(history, action == \"upgrade\") == 1", &unknown, NULL), 1);
    /* none at all */
    fx.f.history = NULL;
    fx.f.n_history = 0;
    assert_int_equal(eval("count(history) == 0 and not any(history)", &fx, NULL), 1);
    assert_int_equal(eval("sum(history, age) == 0d", &fx, NULL), 1);
}

/* Mistakes over the history are found when the file loads, with the
 * nearest name. */
static void history_errors_at_compile_time(void **state)
{
    (void)state;
    static const type_error_case cases[] = {
        {"", "count(history, severity > 1) > 0",
         "'severity' is a field of an incident, and this filter looks at the contact history"},
        {"", "any(history, acton == \"x\")", "unknown name 'acton'; did you mean 'action'?"},
        {"", "any(incidents, action == \"x\")", "'action' is a field of the contact history"},
        {"", "action == \"x\"", "'action' is a field of the contact history"},
        {"", "count(histroy) > 0", "did you mean 'history'?"},
        {"", "history", "'history' is a list: use count(history, ...)"},
        {"", "any(history, channel == \"kisok\")",
         "unknown channel 'kisok'; did you mean 'kiosk'?"},
        {"", "latest(history, at) > 1d", "cannot compare a time with a duration"},
        {"", "any(history, count(history) > 1)",
         "count() cannot be used inside another aggregate over the history"},
        {"", "any(history, any(incidents, open))", "cannot be used inside another aggregate"},
        {"", "any(history, params)", "params needs a key, e.g. params.cabin"},
        {"", "any(incidents, recovred)", "unknown name 'recovred'; did you mean 'recovered'?"},
        {"", "sum(history, action) > 1", "sum() cannot look at a text"},
        {"", "latest(history) == \"x\"", "needs the value to look at: latest(history, at)"},
        {"context: { party: number }\n", "any(history, context.pary == 2)",
         "unknown context key 'pary'; did you mean 'party'?"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *yaml = one_rule_yaml(cases[i].extra, cases[i].when);
        assert_non_null(yaml);
        ruleset *rs;
        nba_error err;
        int rc = ruleset_load_buffer("t.yaml", yaml, strlen(yaml), &rs, &err);
        free(yaml);
        if (rc != -EINVAL || !strstr(err.msg, cases[i].fragment))
            fail_msg("'%s': expected an error with \"%s\", got %d: %s", cases[i].when,
                     cases[i].fragment, rc, rc ? err.msg : "(compiled)");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conditions_over_a_known_customer),
        cmocka_unit_test(conditions_over_an_unknown_customer),
        cmocka_unit_test(null_strings_read_as_empty),
        cmocka_unit_test(context_keys_of_every_length),
        cmocka_unit_test(triggering_incident_is_most_recent_match),
        cmocka_unit_test(long_chains_evaluate),
        cmocka_unit_test(nesting_up_to_the_limit),
        cmocka_unit_test(times_aggregates_and_has),
        cmocka_unit_test(time_of_day_at_the_contact),
        cmocka_unit_test(aggregates_pick_their_incident),
        cmocka_unit_test(typed_attributes_and_context),
        cmocka_unit_test(type_errors_at_compile_time),
        cmocka_unit_test(conditions_over_the_history),
        cmocka_unit_test(history_errors_at_compile_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
