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

/* A ruleset of one rule whose condition is `when`, written as a literal
 * block so the condition needs no YAML quoting. */
static ruleset *one_rule(const char *when)
{
    size_t size = strlen(when) + sizeof head + 256;
    char *buf = malloc(size);
    if (!buf)
        return NULL;
    snprintf(buf, size,
             "%srules:\n"
             "  - id: r\n"
             "    when: |\n"
             "      %s\n"
             "    then:\n"
             "      - action: a\n",
             head, when);
    ruleset *rs = fx_load(buf);
    free(buf);
    return rs;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conditions_over_a_known_customer),
        cmocka_unit_test(conditions_over_an_unknown_customer),
        cmocka_unit_test(null_strings_read_as_empty),
        cmocka_unit_test(triggering_incident_is_most_recent_match),
        cmocka_unit_test(long_chains_evaluate),
        cmocka_unit_test(nesting_up_to_the_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
