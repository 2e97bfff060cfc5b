/* Unit tests of the rule engine: compile errors as ops staff see them,
 * arbitration, language choice, rendering per channel and language, labels,
 * the contact policy (suppression, caps, effects, idempotency key), letters,
 * and the shipped rules/airline-checkin.yaml scenario. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "letters.h"
#include "policy.h"
#include "rules_fixture.h"
#include "rules_live.h"

/* Allocation counter: the test is linked with --wrap for malloc, calloc and
 * realloc (see tests/CMakeLists.txt), so the per-decision path can be shown
 * to allocate nothing outside the arena. */
static size_t alloc_calls;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
    alloc_calls++;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    alloc_calls++;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    alloc_calls++;
    return __real_realloc(p, n);
}

#define HEAD                                                                                       \
    "ruleset: t\n"                                                                                 \
    "version: 1\n"                                                                                 \
    "languages: [en, it, zh-Hant, zh-Hans]\n"                                                      \
    "default_language: en\n"

/* ---- compile errors ---- */

typedef struct error_case {
    const char *yaml;
    const char *where;    /* "line:col" */
    const char *fragment; /* part of the message */
    int caret;            /* columns before the caret, when not col - 1 (wide characters) */
} error_case;

static const error_case error_cases[] = {
    {"ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\nrulez: []\n", "5:1",
     "unknown key 'rulez' in the rule file; did you mean 'rules'?", 0},
    {"ruleset: t\nversion: 1\nlanguages: [en]\nrules: []\n", "1:1",
     "the rule file is missing 'default_language'", 0},
    {"", "1:1", "the rule file is empty", 0},
    {"ruleset: t\nversion: 1\nlanguages: [en, it]\ndefault_language: itt\nrules: []\n", "4:19",
     "default_language 'itt' is not in 'languages'; did you mean 'it'?", 0},
    {"ruleset: t\nversion: 1\nlanguages: [en, it\ndefault_language: en\n", "4:17",
     "did not find expected ',' or ']'", 0},
    {HEAD "rules: []\n---\nfoo: 1\n", "7:1", "one YAML document", 0},
    {HEAD "rules:\n  - id: r\n    priorty: 5\n    when: true\n    then: [{action: a}]\n", "7:5",
     "unknown key 'priorty' in a rule; did you mean 'priority'?", 0},
    {HEAD "rules:\n  - id: r\n    when: true\n    then:\n      - action: a\n        folow_up: "
          "true\n",
     "10:9", "did you mean 'follow_up'?", 0},
    {HEAD "rules:\n  - id: r\n    then: [{action: a}]\n", "6:5", "a rule is missing 'when'", 0},
    {HEAD "rules:\n  - id: r\n    when: true\n    then: [{action: a}]\n  - id: r\n    when: "
          "true\n    then: [{action: a}]\n",
     "9:9", "duplicate rule id 'r' (first used on line 6)", 0},
    {HEAD "rules:\n  - id: r\n    when: true\n    when: false\n    then: [{action: a}]\n", "8:5",
     "duplicate key 'when' (first given on line 7)", 0},
    {HEAD "rules:\n  - id: r\n    priority: high\n    when: true\n    then: [{action: a}]\n",
     "7:15", "'priority' must be a whole number", 0},
    {HEAD "rules:\n  - id: r\n    when: true\n    then: []\n", "8:11",
     "'then' must be a non-empty list", 0},
    {HEAD "rules:\n  - id: r\n    when: {a: b}\n    then: [{action: a}]\n", "7:11",
     "'when' must be a condition written as text", 0},
    /* messages and references to them */
    {HEAD "rules:\n  - id: r\n    when: true\n    then: [{action: a, say: helo}]\nmessages:\n  "
          "hello: {en: \"Hi\"}\n",
     "8:29", "unknown message 'helo' in 'say'; did you mean 'hello'?", 0},
    {HEAD "rules:\n  - id: r\n    when: true\n    reason: why\n    then: [{action: a}]\n", "8:13",
     "unknown message 'why' in 'reason'", 0},
    {HEAD "rules: []\nmessages:\n  hello:\n    it: \"Ciao\"\n", "7:3",
     "message 'hello' has no text in the default language 'en'", 0},
    {HEAD "rules: []\nmessages:\n  hello:\n    en: \"Hi\"\n    fr: \"Salut\"\n", "9:5",
     "language 'fr' is not one of the ruleset's languages (en, it, zh-Hant, zh-Hans)", 0},
    {HEAD "rules: []\nmessages:\n  hello:\n    en:\n      default: \"Hi\"\n      ivrr: \"Hi\"\n",
     "10:7", "unknown channel 'ivrr'; did you mean 'ivr'?", 0},
    {HEAD "rules: []\nmessages:\n  hello:\n    en:\n      desk: \"Hi\"\n", "9:7",
     "needs a 'default' variant", 0},
    {HEAD "rules:\n  - id: r\n    when: true\n    then:\n      - action: a\n        channels: "
          "[desk, kisok]\n",
     "10:26", "unknown channel 'kisok'; did you mean 'kiosk'?", 0},
    {HEAD "rules:\n  - id: r\n    when: true\n    then:\n      - action: a\n        follow_up: "
          "maybe\n",
     "10:20", "'follow_up' must be true or false", 0},
    {HEAD "rules:\n  - id: r\n    when: true\n    then:\n      - action: a\n        language: "
          "\"{{customer.language}}\"\n        params: { language: it }\n",
     "11:19", "params.language is set by the action's 'language:'", 0},
    /* placeholders */
    {HEAD "rules: []\nmessages:\n  hello:\n    en: \"Sorry about {{incident.kind | kinds}}\"\n",
     "8:40", "unknown label table 'kinds'", 0},
    {HEAD "rules: []\nmessages:\n  hello:\n    en: \"Hi {{customer.name\"\n", "8:13",
     "placeholder '{{' is not closed with '}}'", 0},
    {HEAD "rules: []\nmessages:\n  hello:\n    en: Hi {{customer.nme}}!\n", "8:14",
     "unknown customer field 'nme'; did you mean 'name'?", 0},
    {HEAD "rules: []\nmessages:\n  hello:\n    en: \"{{customer name}}\"\n", "8:21",
     "bad placeholder", 0},
    {HEAD "rules: []\nmessages:\n  hello:\n    en: \"{{severity}}\"\n", "8:12",
     "did you mean 'incident.severity'?", 0},
    /* Chinese before the error: the column counts characters, the caret
     * allows two terminal columns for each (您, 好 and the full-width comma) */
    {HEAD "rules: []\nmessages:\n  hello:\n    en: \"Hi\"\n    zh-Hant: "
          "\"您好，{{customer.nmae}}\"\n",
     "9:20", "did you mean 'name'?", 22},
    {HEAD "rules: []\nlabels:\n  kinds:\n    delay: { en: delay, de: Verspätung }\n", "8:25",
     "language 'de' is not one of the ruleset's languages", 0},
    /* conditions: plain, quoted and block scalars */
    {HEAD "rules:\n  - id: r\n    when: customer.predicted_ltv >= \"x\"\n    then: [{action: "
          "a}]\n",
     "7:34", "cannot compare a number with a text", 0},
    {HEAD "rules:\n  - id: r\n    when: >\n      event.touchpoint == \"checkin\"\n      and "
          "customer.teir == \"gold\"\n    then: [{action: a}]\n",
     "9:11", "unknown customer field 'teir'; did you mean 'tier'?", 0},
    {HEAD "rules:\n  - id: r\n    when: |\n      customer.known\n      and\n        "
          "cnt(incidents) > 0\n    then: [{action: a}]\n",
     "10:9", "unknown function 'cnt'; did you mean 'count'?", 0},
    {HEAD "rules:\n  - id: r\n    when: 'customer.tier == ''gold'' and customer.known and 5'\n "
          "   then: [{action: a}]\n",
     "7:61", "'and' needs a condition (true/false), found a number", 0},
    {HEAD "rules:\n  - id: r\n    when: \"customer.tier == \\\"gold\\\" and 5\"\n    then: "
          "[{action: a}]\n",
     "7:42", "'and' needs a condition (true/false), found a number", 0},
    {HEAD "rules:\n  - id: r\n    when: \"\"\n    then: [{action: a}]\n", "7:12",
     "the condition is empty", 0},
    {HEAD "rules:\n  - id: r\n    when: lowr(customer.name) == \"x\"\n    then: [{action: a}]\n",
     "7:11", "did you mean 'lower'?", 0},
    {HEAD "rules:\n  - id: r\n    when: customer.predicted_ltv and customer.known\n    then: "
          "[{action: a}]\n",
     "7:11", "'and' needs a condition (true/false), found a number", 0},
    {HEAD "rules:\n  - id: r\n    when: any(incidents, age < 180)\n    then: [{action: a}]\n",
     "7:30", "cannot compare a duration with a number (write a duration", 0},
    {HEAD "rules:\n  - id: r\n    when: any(incidents, age < 180x)\n    then: [{action: a}]\n",
     "7:35", "unknown unit 'x'", 0},
    {HEAD "rules:\n  - id: r\n    when: severity >= 2\n    then: [{action: a}]\n", "7:11",
     "'severity' is a field of an incident", 0},
    {HEAD "rules:\n  - id: r\n    when: any(incidents, count(incidents) > 1)\n    then: [{action: "
          "a}]\n",
     "7:26", "cannot be used inside another", 0},
    {HEAD "rules:\n  - id: r\n    when: customer.known && true\n    then: [{action: a}]\n", "7:26",
     "write 'and' instead of '&&'", 0},
    {HEAD "rules:\n  - id: r\n    when: event.channel == \"kisok\"\n    then: [{action: a}]\n",
     "7:28", "unknown channel 'kisok'; did you mean 'kiosk'?", 0},
    {HEAD "rules:\n  - id: r\n    when: customer.tier = \"gold\"\n    then: [{action: a}]\n",
     "7:25", "use '=='", 0},
    {HEAD "rules:\n  - id: r\n    when: 1 < 2 < 3\n    then: [{action: a}]\n", "7:17",
     "comparisons do not chain", 0},
    {HEAD "rules:\n  - id: r\n    when: event.touchpont == \"x\"\n    then: [{action: a}]\n",
     "7:11", "unknown event field 'touchpont'; did you mean 'touchpoint'?", 0},
    {HEAD "rules:\n  - id: r\n    when: event.touchpoint == \"checkin\n    then: [{action: a}]\n",
     "7:31", "missing its closing", 0},
    {HEAD "rules:\n  - id: r\n    when: decision.language == \"it\"\n    then: [{action: a}]\n",
     "7:11", "only messages can use it", 0},
    {HEAD "rules:\n  - id: r\n    when: event.context.cabin in [\"Y\", 2]\n    then: [{action: "
          "a}]\n",
     "7:40", "all items of a list must be of one kind", 0},
    {HEAD "rules:\n  - id: r\n    when: customer.tier in \"gold\"\n    then: [{action: a}]\n",
     "7:28", "expected a list like", 0},
    {HEAD "rules:\n  - id: r\n    when: customer.known == 1\n    then: [{action: a}]\n", "7:26",
     "cannot compare a true/false with a number", 0},
    {HEAD "rules:\n  - id: r\n    when: customer.tier\n    then: [{action: a}]\n", "7:11",
     "'when' needs a condition (true/false), found a text", 0},
    {"ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\nattributes: [segment]\n"
     "rules:\n  - id: r\n    when: customer.segmnt == \"vip\"\n    then: [{action: a}]\n",
     "8:11", "unknown customer field 'segmnt'; did you mean 'segment'?", 0},
};

/* The n-th line (1-based) of text, into buf. */
static const char *nth_line(const char *text, int n, char *buf, size_t size)
{
    const char *p = text;
    for (int i = 1; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p)
        p = "";
    size_t len = strcspn(p, "\n");
    if (len >= size)
        len = size - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return buf;
}

static void check_error(const char *yaml, const char *where, const char *fragment, int caret)
{
    ruleset *rs = NULL;
    nba_error err = {{0}};
    int rc = ruleset_load_buffer("test.yaml", yaml, strlen(yaml), &rs, &err);
    if (rc != -EINVAL || rs)
        fail_msg("expected -EINVAL at %s, got %d for:\n%s", where, rc, yaml);

    char prefix[64];
    snprintf(prefix, sizeof prefix, "test.yaml:%s: ", where);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0 || !strstr(err.msg, fragment))
        fail_msg("expected \"%s...%s\", got:\n%s", prefix, fragment, err.msg);

    /* the source line, then the caret under the column */
    const char *l2 = strchr(err.msg, '\n');
    assert_non_null(l2);
    l2++;
    const char *l3 = strchr(l2, '\n');
    assert_non_null(l3);
    l3++;
    assert_null(strchr(l3, '\n'));
    int line = atoi(where);
    int col = atoi(strchr(where, ':') + 1);
    char src[512];
    nth_line(yaml, line, src, sizeof src);
    if ((size_t)(l3 - 1 - l2) != strlen(src) || strncmp(l2, src, strlen(src)) != 0)
        fail_msg("expected the source line \"%s\" in:\n%s", src, err.msg);
    size_t spaces = strspn(l3, " ");
    size_t want = caret ? (size_t)caret : (size_t)(col - 1);
    if (spaces != want || strcmp(l3 + spaces, "^") != 0)
        fail_msg("expected the caret after %zu spaces in:\n%s", want, err.msg);
}

static void compile_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++)
        check_error(error_cases[i].yaml, error_cases[i].where, error_cases[i].fragment,
                    error_cases[i].caret);
}

static void compile_error_format(void **state)
{
    (void)state;
    const char *yaml = HEAD "rules:\n  - id: r\n    when: customer.predicted_ltv >= \"x\"\n    "
                            "then: [{action: a}]\n";
    ruleset *rs;
    nba_error err;
    assert_int_equal(ruleset_load_buffer("rules/x.yaml", yaml, strlen(yaml), &rs, &err), -EINVAL);
    assert_null(rs);
    assert_string_equal(err.msg, "rules/x.yaml:7:34: cannot compare a number with a text; write "
                                 "the number without quotes\n"
                                 "    when: customer.predicted_ltv >= \"x\"\n"
                                 "                                 ^");
}

/* Nesting past the limit is an error, not a deep recursion. */
static void nesting_limit(void **state)
{
    (void)state;
    char yaml[1024];
    size_t k = (size_t)snprintf(yaml, sizeof yaml, HEAD "rules:\n  - id: r\n    when: ");
    for (int i = 0; i < 70; i++)
        yaml[k++] = '(';
    k += (size_t)sprintf(yaml + k, "true");
    for (int i = 0; i < 70; i++)
        yaml[k++] = ')';
    k += (size_t)sprintf(yaml + k, "\n    then: [{action: a}]\n");
    check_error(yaml, "7:75", "nested too deeply (more than 64 levels)", 0);

    k = (size_t)snprintf(yaml, sizeof yaml, HEAD "rules:\n  - id: r\n    when: ");
    for (int i = 0; i < 100; i++)
        k += (size_t)sprintf(yaml + k, "not ");
    k += (size_t)sprintf(yaml + k, "true\n    then: [{action: a}]\n");
    ruleset *rs;
    nba_error err;
    assert_int_equal(ruleset_load_buffer("t.yaml", yaml, k, &rs, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "nested too deeply"));
}

/* Files written on other systems: a byte order mark, CRLF line ends. */
static void bom_and_crlf(void **state)
{
    (void)state;
    check_error("\xEF\xBB\xBFruleset: t\nversion: 1\nrulez: 1\nlanguages: [en]\n"
                "default_language: en\n",
                "3:1", "unknown key 'rulez'", 0);
    const char *crlf = "ruleset: t\r\nversion: 1\r\nlanguages: [en]\r\ndefault_language: en\r\n"
                       "rules:\r\n  - id: r\r\n    when: >\r\n      customer.known\r\n"
                       "      and customer.tier == 3\r\n    then: [{action: a}]\r\n";
    ruleset *rs;
    nba_error err;
    assert_int_equal(ruleset_load_buffer("t.yaml", crlf, strlen(crlf), &rs, &err), -EINVAL);
    assert_string_equal(err.msg, "t.yaml:9:25: cannot compare a text with a number; a text is "
                                 "written in quotes, \"3\"\n"
                                 "      and customer.tier == 3\n"
                                 "                        ^");
    const char *ok = "\xEF\xBB\xBFruleset: t\r\nversion: 1\r\nlanguages: [en]\r\n"
                     "default_language: en\r\nrules:\r\n  - id: r\r\n    when: >\r\n"
                     "      customer.known\r\n    then: [{action: a}]\r\n";
    assert_int_equal(ruleset_load_buffer("t.yaml", ok, strlen(ok), &rs, &err), 0);
    assert_id(ruleset_id(rs), "t@1");
    ruleset_free(rs);
}

static void load_file_errors(void **state)
{
    (void)state;
    ruleset *rs = (ruleset *)1;
    nba_error err;
    assert_int_equal(ruleset_load_file("/nonexistent/rules.yaml", &rs, &err), -ENOENT);
    assert_null(rs);
    assert_non_null(strstr(err.msg, "/nonexistent/rules.yaml"));
    /* err may be NULL */
    assert_int_equal(ruleset_load_buffer("x", "rules: [", 8, &rs, NULL), -EINVAL);
}

static void ruleset_identity(void **state)
{
    (void)state;
    ruleset *rs = fx_load("ruleset: airline\nversion: \"2026.1\"\nlanguages: [en]\n"
                          "default_language: en\nrules:\n  - id: a\n    when: true\n    then: "
                          "[{action: x}]\n  - id: b\n    when: false\n    then: [{action: y}]\n");
    assert_non_null(rs);
    assert_id(ruleset_id(rs), "airline@2026.1");
    assert_string_equal(ruleset_name(rs), "airline");
    assert_string_equal(ruleset_version(rs), "2026.1");
    assert_int_equal(strlen(ruleset_hash(rs)), 16);
    assert_memory_equal(ruleset_hash(rs), ruleset_id(rs) + strlen("airline@2026.1+"), 8);
    assert_int_equal(ruleset_file_count(rs), 1);
    assert_string_equal(ruleset_file(rs, 0), "test.yaml");
    assert_int_equal(ruleset_rule_count(rs), 2);
    ruleset_free(rs);
    ruleset_free(NULL);
}

/* ---- every problem at once, several files, the id's hash ---- */

/* Compiles texts; returns the diags (caller frees) and the ruleset in *out. */
static ruleset_diags *compile_texts(const ruleset_text *t, size_t n, ruleset **out, int *rc)
{
    ruleset_diags *d = NULL;
    assert_int_equal(ruleset_diags_new(&d), 0);
    *rc = ruleset_compile_texts(t, n, out, d);
    return d;
}

/* "file:line:col: severity: message" of problem i, for comparisons. */
static const char *diag_line(const ruleset_diags *d, size_t i, char *buf, size_t size)
{
    const ruleset_diag *g = ruleset_diags_get(d, i);
    snprintf(buf, size, "%s:%u:%u: %s: %s%s%s", g->file, g->line, g->col,
             g->severity == RULESET_ERROR ? "error" : "warning", g->message, g->hint ? " | " : "",
             g->hint ? g->hint : "");
    return buf;
}

static void every_error_is_reported(void **state)
{
    (void)state;
    const char *yaml = HEAD "rules:\n"
                            "  - id: a\n"
                            "    priorty: 5\n"
                            "    when: customer.predicted_ltv >= \"x\"\n"
                            "    then: [{action: a, say: helo}]\n"
                            "  - id: b\n"
                            "    when: customer.teir == \"gold\"\n"
                            "    then: [{action: b}]\n"
                            "  - id: a\n"
                            "    when: true\n"
                            "    then: [{action: c}]\n"
                            "messages:\n"
                            "  hello: {en: Hi}\n";
    ruleset_text t = {"many.yaml", yaml, strlen(yaml)};
    ruleset *rs = (ruleset *)1;
    int rc;
    ruleset_diags *d = compile_texts(&t, 1, &rs, &rc);
    assert_int_equal(rc, -EINVAL);
    assert_null(rs);
    static const char *const want[] = {
        "many.yaml:7:5: error: unknown key 'priorty' in a rule | did you mean 'priority'?",
        "many.yaml:8:34: error: cannot compare a number with a text | write the number without "
        "quotes",
        "many.yaml:9:29: error: unknown message 'helo' in 'say' | did you mean 'hello'?",
        "many.yaml:11:11: error: unknown customer field 'teir' | did you mean 'tier'? (to read "
        "an extra CSV column with a name this close, list it under 'attributes')",
        "many.yaml:13:9: error: duplicate rule id 'a' (first used on line 6)",
    };
    size_t n = sizeof want / sizeof want[0];
    assert_int_equal(ruleset_diags_errors(d), n);
    assert_int_equal(ruleset_diags_count(d), n);
    char buf[512];
    for (size_t i = 0; i < n; i++)
        if (strcmp(diag_line(d, i, buf, sizeof buf), want[i]) != 0)
            fail_msg("problem %zu: expected\n  %s\ngot\n  %s", i, want[i], buf);
    const ruleset_diag *g = ruleset_diags_get(d, 0);
    assert_string_equal(g->source, "    priorty: 5");
    assert_string_equal(g->caret, "    ^");
    assert_null(ruleset_diags_get(d, n));
    ruleset_diags_free(d);

    /* the old interface: every error in err, one after another */
    nba_error err;
    assert_int_equal(ruleset_load_buffer("many.yaml", yaml, strlen(yaml), &rs, &err), -EINVAL);
    assert_true(strncmp(err.msg,
                        "many.yaml:7:5: unknown key 'priorty' in a rule; did you mean "
                        "'priority'?\n    priorty: 5\n    ^\nmany.yaml:8:34: ",
                        93) == 0);
    assert_non_null(strstr(err.msg, "\nmany.yaml:13:9: duplicate rule id 'a'"));
}

/* A file of nothing but mistakes keeps a bounded list, and counts the rest. */
static void error_flood_is_bounded(void **state)
{
    (void)state;
    size_t n = 2000, size = n * 64 + 256;
    char *yaml = malloc(size);
    assert_non_null(yaml);
    size_t k = (size_t)snprintf(yaml, size, HEAD "rules:\n");
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(yaml + k, size - k, "  - {id: r%zu, wen: x, then: [{action: a}]}\n",
                              i);
    ruleset_text t = {"flood.yaml", yaml, k};
    ruleset *rs;
    int rc;
    ruleset_diags *d = compile_texts(&t, 1, &rs, &rc);
    assert_int_equal(rc, -EINVAL);
    /* one each: unknown 'wen' (its hint, 'when', stands for the missing 'when') */
    assert_int_equal(ruleset_diags_errors(d), n);
    assert_true(ruleset_diags_count(d) <= 500);
    ruleset_diags_free(d);
    nba_error err;
    assert_int_equal(ruleset_load_buffer("flood.yaml", yaml, k, &rs, &err), -EINVAL);
    assert_true(strlen(err.msg) < NBA_ERROR_MAX);
    assert_non_null(strstr(err.msg, "more errors)"));
    free(yaml);
}

static const char main_yaml[] = "ruleset: composed\n"
                                "version: 4\n"
                                "languages: [en, it]\n"
                                "default_language: en\n"
                                "rules:\n"
                                "  - id: greet\n"
                                "    when: customer.known\n"
                                "    then: [{action: greet, say: hello}]\n"
                                "messages:\n"
                                "  hello: {en: Hello, it: Ciao}\n";

static const char part_yaml[] =
    "# the boarding team's rules\n"
    "rules:\n"
    "  - id: boarding-lounge\n"
    "    priority: 5\n"
    "    when: event.touchpoint == \"boarding\"\n"
    "    then: [{action: lounge, say: lounge}]\n"
    "messages:\n"
    "  lounge: {en: \"Lounge access, {{customer.name}}\", it: Salotto}\n";

static void files_compose_one_ruleset(void **state)
{
    (void)state;
    /* the main file need not come first */
    ruleset_text t[] = {{"boarding.yaml", part_yaml, strlen(part_yaml)},
                        {"main.yaml", main_yaml, strlen(main_yaml)}};
    ruleset *rs;
    int rc;
    ruleset_diags *d = compile_texts(t, 2, &rs, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(ruleset_diags_errors(d), 0);
    ruleset_diags_free(d);
    assert_int_equal(ruleset_rule_count(rs), 2);
    assert_string_equal(ruleset_rule_id(rs, 0), "greet"); /* main file first */
    assert_string_equal(ruleset_rule_id(rs, 1), "boarding-lounge");
    assert_int_equal(ruleset_file_count(rs), 2);
    assert_string_equal(ruleset_file(rs, 0), "main.yaml");
    assert_string_equal(ruleset_file(rs, 1), "boarding.yaml");
    assert_id(ruleset_id(rs), "composed@4");

    fixture fx;
    fx_init(&fx, NBA__V1__CHANNEL__KIOSK, "boarding");
    fx_customer(&fx, "Ada", "gold", 1, 1, "it");
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    Nba__V1__Decision dec;
    assert_int_equal(fx_decide(rs, &fx, &a, &dec), 0);
    assert_int_equal(dec.n_actions, 2);
    assert_string_equal(dec.actions[0]->type, "lounge");
    assert_string_equal(dec.actions[0]->message, "Salotto");
    assert_string_equal(dec.actions[1]->message, "Ciao");
    char first_id[64];
    snprintf(first_id, sizeof first_id, "%s", ruleset_id(rs));
    ruleset_free(rs);

    /* the same version with one character changed in a part: another id */
    char changed[sizeof part_yaml];
    memcpy(changed, part_yaml, sizeof part_yaml);
    *strstr(changed, "priority: 5") = ' ';
    memcpy(strstr(changed, "riority: 5") - 1, "priority: 6", 11);
    t[0].text = changed;
    d = compile_texts(t, 2, &rs, &rc);
    assert_int_equal(rc, 0);
    ruleset_diags_free(d);
    assert_id(ruleset_id(rs), "composed@4");
    assert_string_not_equal(ruleset_id(rs), first_id);
    ruleset_free(rs);
    arena_destroy(&a);
}

typedef struct compose_case {
    const char *part;
    const char *want; /* the first problem, as diag_line writes it */
} compose_case;

static void composition_errors(void **state)
{
    (void)state;
    static const compose_case cases[] = {
        {"rules:\n  - id: greet\n    when: true\n    then: [{action: x}]\n",
         "part.yaml:2:9: error: duplicate rule id 'greet' (first used in main.yaml:6)"},
        {"languages: [en]\nrules: []\n",
         "part.yaml:1:1: error: 'languages' belongs in the main rule file (main.yaml)"},
        {"ruleset: other\nversion: 1\nlanguages: [en]\ndefault_language: en\nrules: []\n",
         "part.yaml:1:1: error: a ruleset has one main file, and 'main.yaml' already names it; "
         "leave 'ruleset:' out of the other files"},
        {"messages:\n  hello: {en: Hi}\n",
         "part.yaml:2:3: error: message 'hello' is already defined in main.yaml:10"},
        {"rules:\n  - id: r\n    when: true\n    then: [{action: x, say: helo}]\n",
         "part.yaml:4:29: error: unknown message 'helo' in 'say' | did you mean 'hello'?"},
        {"include: [x.yaml]\nrules: []\n",
         "part.yaml:1:1: error: 'include' belongs in the main rule file (main.yaml)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ruleset_text t[] = {{"main.yaml", main_yaml, strlen(main_yaml)},
                            {"part.yaml", cases[i].part, strlen(cases[i].part)}};
        ruleset *rs;
        int rc;
        ruleset_diags *d = compile_texts(t, 2, &rs, &rc);
        char buf[512];
        if (rc != -EINVAL || ruleset_diags_count(d) == 0 ||
            strcmp(diag_line(d, 0, buf, sizeof buf), cases[i].want) != 0)
            fail_msg("case %zu: expected\n  %s\ngot rc %d and\n  %s", i, cases[i].want, rc,
                     ruleset_diags_count(d) ? buf : "(nothing)");
        ruleset_diags_free(d);
    }
    /* no main file at all */
    ruleset_text t = {"part.yaml", part_yaml, strlen(part_yaml)};
    ruleset *rs;
    int rc;
    ruleset_diags *d = compile_texts(&t, 1, &rs, &rc);
    assert_int_equal(rc, -EINVAL);
    char buf[512];
    assert_string_equal(diag_line(d, 0, buf, sizeof buf),
                        "part.yaml:2:1: error: the rule file is missing 'ruleset'");
    ruleset_diags_free(d);
    /* include: needs files on disk */
    const char *inc = "ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                      "include: [part.yaml]\nrules: []\n";
    t = (ruleset_text){"main.yaml", inc, strlen(inc)};
    d = compile_texts(&t, 1, &rs, &rc);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(diag_line(d, 0, buf, sizeof buf), "main.yaml:5:10: error: 'include' "
                                                             "needs rule files on disk"));
    ruleset_diags_free(d);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void include_reads_parts_from_disk(void **state)
{
    (void)state;
    char dir[] = "/tmp/nba-rules-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char main_path[128], part_path[128], other_path[128], sub[128];
    snprintf(main_path, sizeof main_path, "%s/main.yaml", dir);
    snprintf(sub, sizeof sub, "%s/teams", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(part_path, sizeof part_path, "%s/teams/boarding.yaml", dir);
    snprintf(other_path, sizeof other_path, "%s/other.yaml", dir);
    char text[2048];
    snprintf(text, sizeof text, "%.*sinclude: [teams/boarding.yaml]\n%s",
             (int)(strstr(main_yaml, "rules:") - main_yaml), main_yaml,
             strstr(main_yaml, "rules:"));
    write_text(main_path, text);
    write_text(part_path, part_yaml);

    ruleset *rs;
    nba_error err;
    if (ruleset_load_file(main_path, &rs, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(ruleset_rule_count(rs), 2);
    assert_int_equal(ruleset_file_count(rs), 2);
    assert_string_equal(ruleset_file(rs, 1), part_path);
    ruleset_free(rs);

    /* a file given on the command line too is not composed twice */
    const char *both[] = {main_path, part_path};
    assert_int_equal(ruleset_load_files(both, 2, &rs, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "'teams/boarding.yaml' is already part of the ruleset"));

    /* an include that cannot be read, at the line that names it */
    write_text(main_path, "ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                          "include:\n  - teams/nope.yaml\nrules: []\n");
    assert_int_equal(ruleset_load_file(main_path, &rs, &err), -EINVAL);
    char want[256];
    snprintf(want, sizeof want,
             "%s:6:5: cannot read the included file '%s/teams/nope.yaml': No such file", main_path,
             dir);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("expected %s, got %s", want, err.msg);

    /* an error in a part names the part */
    write_text(main_path, text);
    write_text(part_path, "rules:\n  - id: x\n    when: customer.tier == 3\n    then: [{action: "
                          "a}]\n");
    assert_int_equal(ruleset_load_file(main_path, &rs, &err), -EINVAL);
    snprintf(want, sizeof want, "%s:3:25: cannot compare a text with a number", part_path);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("expected %s, got %s", want, err.msg);

    /* a missing file given directly */
    const char *missing[] = {main_path, other_path};
    assert_int_equal(ruleset_load_files(missing, 2, &rs, &err), -ENOENT);
    snprintf(want, sizeof want, "%s: No such file or directory", other_path);
    assert_string_equal(err.msg, want);

    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A ruleset of several files reloads as one: a changed part gives a new id,
 * a broken part leaves the old ruleset serving with every error named. */
static void live_reload_of_several_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/nba-live-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char main_path[128], part_path[128];
    snprintf(main_path, sizeof main_path, "%s/main.yaml", dir);
    snprintf(part_path, sizeof part_path, "%s/part.yaml", dir);
    write_text(main_path, main_yaml);
    write_text(part_path, part_yaml);
    const char *paths[] = {main_path, part_path};
    rules_live *rl;
    nba_error err;
    if (rules_live_new_files(paths, 2, &rl, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(rules_live_file_count(rl), 2);
    assert_string_equal(rules_live_file(rl, 1), part_path);
    assert_string_equal(rules_live_path(rl), main_path);
    char first[128], id[128];
    rules_live_id(rl, first, sizeof first);
    assert_id(first, "composed@4");

    /* the same version, one part changed: the id changes */
    char changed[sizeof part_yaml + 16];
    snprintf(changed, sizeof changed, "%s", part_yaml);
    memcpy(strstr(changed, "priority: 5"), "priority: 7", 11);
    write_text(part_path, changed);
    assert_int_equal(rules_live_reload(rl, id, sizeof id, &err), 0);
    assert_id(id, "composed@4");
    assert_string_not_equal(id, first);
    const ruleset *rs = rules_live_enter(rl);
    assert_string_equal(ruleset_id(rs), id);
    rules_live_leave(rl);

    /* a broken part: refused, every error in err, the last good ruleset serves */
    write_text(part_path, "rules:\n  - id: x\n    when: customer.teir == 1\n    then: [{action: "
                          "a, say: nope}]\n");
    char before[128];
    snprintf(before, sizeof before, "%s", id);
    assert_int_equal(rules_live_reload(rl, id, sizeof id, &err), -EINVAL);
    assert_string_equal(id, before);
    assert_non_null(strstr(err.msg, "part.yaml:3:11: unknown customer field 'teir'"));
    assert_non_null(strstr(err.msg, "part.yaml:4:29: unknown message 'nope'"));
    rules_live_free(rl);

    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- arbitration ---- */

static const char arbitration_yaml[] =
    HEAD "rules:\n"
         "  - {id: low, priority: 1, when: 'true', then: [{action: low}]}\n"
         "  - {id: tie1, priority: 3, when: 'true', then: [{action: tie1}]}\n"
         "  - {id: g-a, priority: 5, group: g, when: 'true', then: [{action: ga}]}\n"
         "  - {id: high, priority: 10, when: 'true', then: [{action: high}]}\n"
         "  - {id: g-b, priority: 7, group: g, when: 'true', then: [{action: gb}]}\n"
         "  - {id: tie2, priority: 3, when: 'true', then: [{action: tie2}]}\n"
         "  - {id: never, priority: 100, when: 'false', then: [{action: never}]}\n"
         "  - {id: g-c, priority: 7, group: g, when: 'true', then: [{action: gc}]}\n"
         "  - {id: h-a, group: h, when: 'true', then: [{action: ha}]}\n";

static void arbitration_orders_and_excludes(void **state)
{
    (void)state;
    ruleset *rs = fx_load(arbitration_yaml);
    assert_non_null(rs);
    fixture fx;
    fx_init(&fx, NBA__V1__CHANNEL__DESK, "checkin");
    const facts *f = fx_facts(&fx);
    rule_hit hits[16];
    size_t n = ruleset_match(rs, f, hits);
    assert_int_equal(n, 8);
    /* file order from match */
    static const char *const matched[] = {"low", "tie1", "g-a", "high",
                                          "g-b", "tie2", "g-c", "h-a"};
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    Nba__V1__Decision d;
    assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
    for (size_t i = 0; i < n; i++) {
        nba__v1__decision__init(&d);
        assert_int_equal(ruleset_render(rs, f, &hits[i], 1, &a, &d), 0);
        assert_string_equal(d.actions[0]->rule_id, matched[i]);
    }
    n = ruleset_arbitrate(rs, f, hits, n);
    /* best first; g-b beats g-a on priority and g-c on file order; a group of
     * one (h) keeps its rule */
    static const char *const kept[] = {"high", "g-b", "tie1", "tie2", "low", "h-a"};
    assert_int_equal(n, 6);
    nba__v1__decision__init(&d);
    assert_int_equal(ruleset_render(rs, f, hits, n, &a, &d), 0);
    assert_int_equal(d.n_actions, 6);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(d.actions[i]->rule_id, kept[i]);
    arena_destroy(&a);
    ruleset_free(rs);
}

static const char limits_yaml[] =
    HEAD "max_actions: 3\n"
         "rules:\n"
         "  - id: a\n"
         "    priority: 3\n"
         "    when: true\n"
         "    then:\n"
         "      - action: a1\n"
         "      - action: a2-desk\n"
         "        channels: [desk]\n"
         "  - id: b\n"
         "    priority: 2\n"
         "    when: true\n"
         "    then: [{action: b1}, {action: b2, channels: ivr}]\n"
         "  - id: c\n"
         "    priority: 1\n"
         "    when: true\n"
         "    then: [{action: c1}, {action: c2, channels: [web, mobile]}]\n";

typedef struct limit_case {
    int channel;
    size_t kept_hits;
    const char *actions; /* types, space separated, best first */
} limit_case;

static void max_actions_and_channels(void **state)
{
    (void)state;
    static const limit_case cases[] = {
        {NBA__V1__CHANNEL__KIOSK, 3, "a1 b1 c1"},
        {NBA__V1__CHANNEL__DESK, 2, "a1 a2-desk b1"},
        {NBA__V1__CHANNEL__IVR, 2, "a1 b1 b2"},
        {NBA__V1__CHANNEL__WEB, 3, "a1 b1 c1"},
        /* no channel given, or one this build does not know: only actions
         * without a channels list */
        {NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED, 3, "a1 b1 c1"},
        {42, 3, "a1 b1 c1"},
    };
    ruleset *rs = fx_load(limits_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        fx_init(&fx, (Nba__V1__Channel)cases[i].channel, "checkin");
        const facts *f = fx_facts(&fx);
        rule_hit hits[8];
        size_t n = ruleset_match(rs, f, hits);
        assert_int_equal(n, 3);
        n = ruleset_arbitrate(rs, f, hits, n);
        assert_int_equal(n, cases[i].kept_hits);
        Nba__V1__Decision d = NBA__V1__DECISION__INIT;
        assert_int_equal(ruleset_render(rs, f, hits, n, &a, &d), 0);
        char got[128] = "";
        for (size_t k = 0; k < d.n_actions; k++) {
            strcat(got, k ? " " : "");
            strcat(got, d.actions[k]->type);
        }
        if (strcmp(got, cases[i].actions) != 0)
            fail_msg("channel %d: expected \"%s\", got \"%s\"", cases[i].channel, cases[i].actions,
                     got);
        arena_reset(&a);
    }
    arena_destroy(&a);
    ruleset_free(rs);
}

/* ---- arbitration declared in the file: groups, channel limits, what a
 * channel cannot do ---- */

static const char caps_yaml[] =
    "ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
    "max_actions: 4\n"
    "channels:\n"
    "  ivr: { max_actions: 2, cannot: [voucher] }\n"
    "  mobile: { max_actions: 1 }\n"
    "groups:\n"
    "  g1: first group\n"
    "  g2: second group\n"
    "rules:\n"
    "  - {id: a, priority: 10, group: g1, when: 'true', then: [{action: a}]}\n"
    "  - {id: b, priority: 5, group: [g1, g2], when: 'true', then: [{action: b}]}\n"
    "  - {id: c, priority: 4, group: [g2], when: 'true', then: [{action: c}]}\n"
    "  - {id: v, priority: 3, when: 'true', then: [{action: voucher}, {action: v2}]}\n"
    "  - {id: w, priority: 2, when: 'true', then: [{action: w}]}\n";

static void groups_limits_and_capabilities(void **state)
{
    (void)state;
    static const limit_case cases[] = {
        /* b loses g1 to a; c keeps g2, which b never took; w is past the limit */
        {NBA__V1__CHANNEL__DESK, 3, "a c voucher v2"},
        /* the IVR cannot hand over a voucher, and says two things at most */
        {NBA__V1__CHANNEL__IVR, 2, "a c"},
        {NBA__V1__CHANNEL__MOBILE, 1, "a"},
        {NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED, 3, "a c voucher v2"},
    };
    ruleset *rs = fx_load(caps_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        fx_init(&fx, (Nba__V1__Channel)cases[i].channel, "checkin");
        const facts *f = fx_facts(&fx);
        rule_hit hits[8];
        size_t n = ruleset_match(rs, f, hits);
        assert_int_equal(n, 5);
        n = ruleset_arbitrate(rs, f, hits, n);
        assert_int_equal(n, cases[i].kept_hits);
        Nba__V1__Decision d = NBA__V1__DECISION__INIT;
        assert_int_equal(ruleset_render(rs, f, hits, n, &a, &d), 0);
        char got[128] = "";
        for (size_t k = 0; k < d.n_actions; k++) {
            strcat(got, k ? " " : "");
            strcat(got, d.actions[k]->type);
        }
        if (strcmp(got, cases[i].actions) != 0)
            fail_msg("channel %d: expected \"%s\", got \"%s\"", cases[i].channel, cases[i].actions,
                     got);
        arena_reset(&a);
    }
    arena_destroy(&a);
    ruleset_free(rs);

    check_error("ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                "groups: { cabin-change: one cabin change }\n"
                "rules:\n  - {id: a, group: cabin-chang, when: 'true', then: [{action: a}]}\n",
                "7:20", "unknown group 'cabin-chang'; did you mean 'cabin-change'?", 0);
    check_error("ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                "channels: { kisok: { max_actions: 1 } }\nrules: []\n",
                "5:13", "unknown channel 'kisok'; did you mean 'kiosk'?", 0);
    check_error("ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                "channels: { ivr: { max_action: 1 } }\nrules: []\n",
                "5:20", "unknown key 'max_action' in a channel; did you mean 'max_actions'?", 0);
    check_error("ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                "rules:\n  - {id: a, group: [g, g], when: 'true', then: [{action: a}]}\n",
                "6:24", "group 'g' is given twice", 0);
}

/* ---- decision tables ---- */

static const char table_yaml[] =
    "ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
    "attributes: { country: text }\n"
    "channels:\n"
    "  ivr: { cannot: [voucher] }\n"
    "tables:\n"
    "  - id: goodwill\n"
    "    description: tier x worst open incident -> compensation\n"
    "    priority: 50\n"
    "    when: event.touchpoint == \"checkin\"\n"
    "    columns:\n"
    "      tier: customer.tier\n"
    "      severity:\n"
    "        value: max(incidents, severity, open)\n"
    "        range: [1, 5]\n"
    "    rows:\n"
    "      - { tier: platinum, severity: \">= 3\", then: [{action: miles, params: {amount: "
    "\"20000\"}}] }\n"
    "      - { tier: [gold, platinum], severity: 1..2, then: [{action: miles, params: {amount: "
    "\"5000\"}}] }\n"
    "      - { id: gold-voucher, tier: gold, severity: \">= 3\", then: [{action: voucher}] }\n"
    "      - { tier: \"*\", then: [] }\n"
    "  - id: language\n"
    "    policy: priority\n"
    "    columns: { country: customer.country }\n"
    "    rows:\n"
    "      - { country: [IT, SM, VA], priority: 10, then: [{action: speak, params: {lang: it}}] "
    "}\n"
    "      - { country: \"*\", priority: 1, then: [{action: speak, params: {lang: en}}] }\n";

typedef struct table_case {
    const char *tier; /* NULL: unknown customer */
    int severity;     /* 0: no incident */
    const char *country;
    int channel;
    const char *touchpoint;
    const char *want; /* "type[=param] ..." */
} table_case;

static void decision_tables_decide(void **state)
{
    (void)state;
    static const table_case cases[] = {
        {"platinum", 3, "IT", NBA__V1__CHANNEL__DESK, "checkin", "miles=20000 speak=it"},
        {"platinum", 1, "FR", NBA__V1__CHANNEL__DESK, "checkin", "miles=5000 speak=en"},
        {"gold", 2, "FR", NBA__V1__CHANNEL__DESK, "checkin", "miles=5000 speak=en"},
        {"gold", 4, "SM", NBA__V1__CHANNEL__DESK, "checkin", "voucher speak=it"},
        {"gold", 4, "SM", NBA__V1__CHANNEL__IVR, "checkin", "speak=it"},
        {"silver", 5, "FR", NBA__V1__CHANNEL__DESK, "checkin", "speak=en"},
        {"platinum", 3, "FR", NBA__V1__CHANNEL__DESK, "boarding", "speak=en"},
        /* "*" matches a missing value too: the last rows answer */
        {NULL, 0, NULL, NBA__V1__CHANNEL__DESK, "checkin", "speak=en"},
    };
    ruleset *rs = fx_load(table_yaml);
    assert_non_null(rs);
    assert_int_equal(ruleset_rule_count(rs), 6);
    assert_string_equal(ruleset_rule_id(rs, 0), "goodwill#1");
    assert_string_equal(ruleset_rule_id(rs, 2), "gold-voucher");
    assert_string_equal(ruleset_rule_id(rs, 5), "language#2");
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const table_case *tc = &cases[i];
        fixture fx;
        fx_init(&fx, (Nba__V1__Channel)tc->channel, tc->touchpoint);
        if (tc->tier) {
            fx_customer(&fx, "Ada", tc->tier, 1, 1, "en");
            fx_attr(&fx, "country", tc->country, false, 0);
            if (tc->severity)
                fx_incident(&fx, "I-1", "delay", tc->severity, 3, false, "AZ1");
            fx_incident(&fx, "I-0", "delay", 5, 300, true, "AZ0"); /* resolved: not counted */
        }
        Nba__V1__Decision d;
        assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
        char got[256] = "";
        for (size_t k = 0; k < d.n_actions; k++) {
            strcat(got, k ? " " : "");
            strcat(got, d.actions[k]->type);
            if (d.actions[k]->n_params) {
                strcat(got, "=");
                strcat(got, d.actions[k]->params[0]->value);
            }
        }
        if (strcmp(got, tc->want) != 0)
            fail_msg("case %zu: expected \"%s\", got \"%s\"", i, tc->want, got);
        arena_reset(&a);
    }
    arena_destroy(&a);
    ruleset_free(rs);
}

/* A decision reads each column of a table once, and rules that test the
 * same condition share its outcome; each hit still gets the incident its
 * condition written out would pick: the first aggregate's that found one,
 * the table's `when` before the row's cells, the cells in column order, a
 * "*" cell reading nothing. */
static const char picks_yaml[] =
    "ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
    "rules:\n"
    "  - id: delayed\n"
    "    when: event.touchpoint == \"checkin\" and any(incidents, kind == \"delay\") and "
    "any(incidents, open)\n"
    "    then: [{action: a, params: {i: \"{{incident.id}}\"}}]\n"
    "  - id: open\n"
    "    when: event.touchpoint == \"checkin\" and any(incidents, open)\n"
    "    then: [{action: a, params: {i: \"{{incident.id}}\"}}]\n"
    "tables:\n"
    "  - id: plain\n"
    "    columns:\n"
    "      tier: customer.tier\n"
    "      worst: max(incidents, severity, open)\n"
    "      recent: count(incidents, age < 30d)\n"
    "    rows:\n"
    "      - { tier: gold, worst: \">= 3\", recent: \">= 1\", then: [{action: a, params: {i: "
    "\"{{incident.id}}\"}}] }\n"
    "      - { tier: gold, worst: \"*\", recent: \">= 1\", then: [{action: a, params: {i: "
    "\"{{incident.id}}\"}}] }\n"
    "      - { tier: \"*\", then: [{action: a, params: {i: \"{{incident.id}}\"}}] }\n"
    "      - { tier: silver, then: [{action: a, params: {i: \"{{incident.id}}\"}}] }\n"
    "  - id: guarded\n"
    "    when: any(incidents, kind == \"lost_baggage\") and event.touchpoint == \"checkin\"\n"
    "    columns:\n"
    "      worst: max(incidents, severity, open)\n"
    "    rows:\n"
    "      - { worst: \">= 1\", then: [{action: a, params: {i: \"{{incident.id}}\"}}] }\n"
    "      - { worst: \">= 5\", then: [{action: a, params: {i: \"{{incident.id}}\"}}] }\n";

static void table_and_shared_conditions_pick_incidents(void **state)
{
    (void)state;
    ruleset *rs = fx_load(picks_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    static const struct {
        const char *touchpoint;
        const char *want; /* "rule:incident ..." of every hit, before arbitration */
    } cases[] = {
        {"checkin", "delayed:I-1 open:I-5 plain#1:I-2 plain#2:I-4 plain#3:- guarded#1:I-3"},
        {"boarding", "plain#1:I-2 plain#2:I-4 plain#3:-"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        fx_init(&fx, NBA__V1__CHANNEL__KIOSK, cases[i].touchpoint);
        fx_customer(&fx, "Ada", "gold", 1, 1, "en");
        fx_incident(&fx, "I-1", "delay", 2, 20, false, "AZ1");
        fx_incident(&fx, "I-2", "ife_broken", 4, 60, false, "AZ2");
        fx_incident(&fx, "I-3", "lost_baggage", 1, 10, true, "AZ3");
        fx_incident(&fx, "I-4", "complaint", 5, 5, true, "AZ4");
        fx_incident(&fx, "I-5", "downgrade", 1, 15, false, "AZ5");
        const facts *f = fx_facts(&fx);
        rule_hit hits[16];
        assert_true(ruleset_rule_count(rs) <= 16);
        size_t n = ruleset_match(rs, f, hits);
        char got[256] = "";
        for (size_t k = 0; k < n; k++) {
            /* each hit alone: its rule's id and the incident it is about */
            Nba__V1__Decision d;
            nba__v1__decision__init(&d);
            assert_int_equal(ruleset_render(rs, f, &hits[k], 1, &a, &d), 0);
            assert_int_equal(d.n_actions, 1);
            const char *inc = fx_param(d.actions[0], "i");
            size_t len = strlen(got);
            snprintf(got + len, sizeof got - len, "%s%s:%s", k ? " " : "", d.actions[0]->rule_id,
                     inc && *inc ? inc : "-");
            arena_reset(&a);
        }
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s: expected \"%s\", got \"%s\"", cases[i].touchpoint, cases[i].want, got);
    }
    arena_destroy(&a);
    ruleset_free(rs);
}

/* Compiles yaml and returns its problems as "line:col: severity: message"
 * lines, joined. */
static const char *problems(const char *yaml, char *buf, size_t size)
{
    ruleset_text t = {"t.yaml", yaml, strlen(yaml)};
    ruleset *rs = NULL;
    int rc;
    ruleset_diags *d = compile_texts(&t, 1, &rs, &rc);
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ruleset_diags_count(d); i++) {
        char line[600];
        diag_line(d, i, line, sizeof line);
        int w = snprintf(buf + k, size - k, "%s\n", line + strlen("t.yaml:"));
        if (w < 0 || (size_t)w >= size - k)
            break;
        k += (size_t)w;
    }
    ruleset_diags_free(d);
    ruleset_free(rs);
    return buf;
}

static void expect_problem(const char *got, const char *want)
{
    if (!strstr(got, want))
        fail_msg("expected a problem\n  %s\nin\n%s", want, got);
}

static void decision_table_checks(void **state)
{
    (void)state;
    char buf[8192];
    /* first hit: a gap, and a row nothing can reach */
    const char *gaps = "ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                       "tables:\n"
                       "  - id: comp\n"
                       "    columns:\n"
                       "      tier: customer.tier\n"
                       "      severity: { value: \"max(incidents, severity)\", range: [1, 5] }\n"
                       "    rows:\n"
                       "      - { tier: platinum, severity: \">= 3\", then: [{action: a}] }\n"
                       "      - { tier: [gold, platinum], severity: 1..2, then: [{action: b}] }\n"
                       "      - { tier: gold, severity: \">= 4\", then: [{action: c}] }\n"
                       "      - { tier: platinum, severity: 4, then: [{action: d}] }\n";
    problems(gaps, buf, sizeof buf);
    expect_problem(buf, "11:9: warning: table 'comp' has no row for tier = gold, severity = 3 | "
                        "add a row for it ('then: []' if nothing should happen), or a last row "
                        "with \"*\" for the rest");
    expect_problem(buf, "14:9: warning: row 4 ('comp#4') of table 'comp' is never chosen: earlier "
                        "rows match every case it matches");
    assert_null(strstr(buf, "error"));

    /* priority: two rows of equal priority for the same case */
    const char *overlap = "ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                          "attributes: [country]\n"
                          "tables:\n"
                          "  - id: lang\n"
                          "    policy: priority\n"
                          "    columns: { country: customer.country }\n"
                          "    rows:\n"
                          "      - { country: IT, priority: 5, then: [{action: it}] }\n"
                          "      - { country: [IT, FR], priority: 5, then: [{action: fr}] }\n"
                          "      - { country: \"*\", priority: 1, then: [] }\n";
    problems(overlap, buf, sizeof buf);
    expect_problem(buf, "12:9: warning: row 1 ('lang#1') and row 2 ('lang#2') of table 'lang' both "
                        "match country = IT with the same priority");
    assert_null(strstr(buf, "no row for"));

    /* a table with a row for every case is quiet */
    const char *complete = "ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                           "tables:\n"
                           "  - id: t\n"
                           "    columns:\n"
                           "      known: customer.known\n"
                           "      n: count(incidents, open)\n"
                           "    rows:\n"
                           "      - { known: true, n: \">= 2\", then: [{action: a}] }\n"
                           "      - { known: true, n: 0..1, then: [{action: b}] }\n"
                           "      - { known: false, then: [] }\n";
    problems(complete, buf, sizeof buf);
    assert_string_equal(buf, "");

    /* mistakes in tables */
    const char *head = "ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                       "tables:\n  - id: t\n    columns: { tier: customer.tier, n: "
                       "count(incidents) }\n    rows:\n";
    static const struct {
        const char *row;
        const char *want;
    } bad[] = {
        {"      - { teir: gold, then: [] }\n",
         "9:11: error: unknown column 'teir' in a row of table 't' | did you mean 'tier'?"},
        {"      - { n: \">= x\", then: [] }\n",
         "9:18: error: this column holds a number, found 'x'"},
        {"      - { n: 3..1, then: [] }\n",
         "9:14: error: a range goes from the lowest to the highest"},
        {"      - { tier: gold }\n", "9:9: error: a row is missing 'then'"},
        {"      - { tier: gold, priority: 3, then: [] }\n",
         "9:33: error: a row's 'priority' counts only with 'policy: priority'"},
        {"      - { tier: [], then: [] }\n", "9:17: error: an empty list would never match"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml, "%s%s", head, bad[i].row);
        problems(yaml, buf, sizeof buf);
        expect_problem(buf, bad[i].want);
    }
}

/* ---- language choice ---- */

/* One message in each of HEAD's languages. */
#define HELLO_MESSAGES                                                                             \
    "messages:\n"                                                                                  \
    "  hello:\n"                                                                                   \
    "    en: Welcome\n"                                                                            \
    "    it: Benvenuti\n"                                                                          \
    "    zh-Hant: 歡迎光臨\n"                                                                  \
    "    zh-Hans: 欢迎光临\n"

static const char language_yaml[] =
    HEAD "language_aliases: { zh-TW: zh-Hant, zh-CN: zh-Hans, tw: zh-Hant }\n"
         "rules:\n"
         "  - id: r\n"
         "    when: true\n"
         "    then: [{action: hello, say: hello}]\n" HELLO_MESSAGES;

typedef struct language_case {
    const char *event;    /* event.language */
    const char *customer; /* customer.language; NULL: unknown customer */
    const char *expect;
    const char *message;
} language_case;

static void language_choice(void **state)
{
    (void)state;
    static const language_case cases[] = {
        {"", "it", "it", "Benvenuti"},
        {"en", "it", "en", "Welcome"},
        {"it-IT", NULL, "it", "Benvenuti"},
        {"", "zh-Hant", "zh-Hant", "歡迎光臨"},
        {"", "zh-Hans", "zh-Hans", "欢迎光临"},
        {"zh-Hans", "zh-Hant", "zh-Hans", "欢迎光临"},
        {"zh-TW", NULL, "zh-Hant", "歡迎光臨"},
        {"zh-Hant-HK", "", "zh-Hant", "歡迎光臨"},
        {"zh_CN", "", "zh-Hans", "欢迎光临"},
        {"zh", "it", "it", "Benvenuti"},
        {"fr", "de", "en", "Welcome"},
        {"FR", "IT", "it", "Benvenuti"},
        {"ZH-HANS", "it", "zh-Hans", "欢迎光临"},
        {"fr-CA", "it-CH", "it", "Benvenuti"},
        {"", "", "en", "Welcome"},
        {"", NULL, "en", "Welcome"},
        /* two letters, answered from the table built at compile time */
        {"tw", "it", "zh-Hant", "歡迎光臨"},
        {"Tw", "it", "zh-Hant", "歡迎光臨"},
        {"tw-XX", "it", "zh-Hant", "歡迎光臨"},
        {"i_", "it", "it", "Benvenuti"},
        {"1t", "zz", "en", "Welcome"},
        {"It", "", "it", "Benvenuti"},
    };
    ruleset *rs = fx_load(language_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        fx_init(&fx, NBA__V1__CHANNEL__KIOSK, "checkin");
        fx.event.language = (char *)cases[i].event;
        if (cases[i].customer)
            fx_customer(&fx, "Ada", "gold", 1, 1, cases[i].customer);
        Nba__V1__Decision d;
        assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
        if (strcmp(d.language, cases[i].expect) != 0 || d.n_actions != 1 ||
            strcmp(d.actions[0]->message, cases[i].message) != 0)
            fail_msg("event '%s', customer '%s': expected %s \"%s\", got %s \"%s\"", cases[i].event,
                     cases[i].customer ? cases[i].customer : "(unknown)", cases[i].expect,
                     cases[i].message, d.language, d.n_actions ? d.actions[0]->message : "");
        arena_reset(&a);
    }
    arena_destroy(&a);
    ruleset_free(rs);
}

static const char switch_yaml[] =
    HEAD "rules:\n"
         "  - id: switch-low\n"
         "    priority: 1\n"
         "    when: true\n"
         "    then:\n"
         "      - action: set_language\n"
         "        language: \"{{event.context.second}}\"\n"
         "        say: hello\n"
         "  - id: switch-high\n"
         "    priority: 5\n"
         "    when: true\n"
         "    then:\n"
         "      - action: set_language\n"
         "        language: \"{{event.context.first}}\"\n"
         "        say: hello\n"
         "        params: { was: \"{{decision.language}}\" }\n" HELLO_MESSAGES;

typedef struct switch_case {
    const char *first, *second;
    const char *language;     /* of the decision */
    const char *first_param;  /* params.language of the best action, NULL: none */
    const char *second_param; /* of the other */
    const char *message;
} switch_case;

/* The first kept action (best first) whose `language:` is spoken switches
 * the decision language; each action's params.language is its own match. */
static void action_language_switch(void **state)
{
    (void)state;
    static const switch_case cases[] = {
        {"zh-Hans", "it", "zh-Hans", "zh-Hans", "it", "欢迎光临"},
        {"fr", "it-IT", "it", NULL, "it", "Benvenuti"},
        {"", "", "en", NULL, NULL, "Welcome"},
        {"ZH-tw", "", "en", NULL, NULL, "Welcome"}, /* no alias in this file */
        {"zh-hant", "en", "zh-Hant", "zh-Hant", "en", "歡迎光臨"},
    };
    ruleset *rs = fx_load(switch_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        fx_init(&fx, NBA__V1__CHANNEL__KIOSK, "checkin");
        fx_context(&fx, "first", cases[i].first);
        fx_context(&fx, "second", cases[i].second);
        Nba__V1__Decision d;
        assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
        assert_int_equal(d.n_actions, 2);
        assert_string_equal(d.language, cases[i].language);
        assert_string_equal(d.actions[0]->rule_id, "switch-high");
        const char *p0 = fx_param(d.actions[0], "language");
        const char *p1 = fx_param(d.actions[1], "language");
        if (cases[i].first_param)
            assert_string_equal(p0, cases[i].first_param);
        else
            assert_null(p0);
        if (cases[i].second_param)
            assert_string_equal(p1, cases[i].second_param);
        else
            assert_null(p1);
        assert_string_equal(fx_param(d.actions[0], "was"), cases[i].language);
        assert_string_equal(d.actions[0]->message, cases[i].message);
        assert_string_equal(d.actions[1]->message, cases[i].message);
        arena_reset(&a);
    }
    arena_destroy(&a);
    ruleset_free(rs);
}

/* ---- rendering ---- */

static const char render_yaml[] =
    HEAD "agent_language: it\n"
         "rules:\n"
         "  - id: r\n"
         "    when: true\n"
         "    reason: why\n"
         "    then:\n"
         "      - action: show\n"
         "        say: text\n"
         "        follow_up: false\n"
         "        params:\n"
         "          value: \"{{customer.predicted_ltv}}\"\n"
         "          ratio: \"{{customer.lifetime_value}}\"\n"
         "          missing: \"[{{event.context.nope}}]\"\n"
         "          known: \"{{customer.known}}\"\n"
         "          sev: \"<{{incident.severity}}>\"\n"
         "          miles: \"{{customer.miles}}\"\n"
         "          channel: \"{{event.channel}}\"\n"
         "          fixed: F\n"
         "messages:\n"
         "  text:\n"
         "    en: { default: en-default, desk: en-desk, kiosk: en-kiosk }\n"
         "    it: { default: it-default, kiosk: it-kiosk }\n"
         "    zh-Hant: zh-Hant-all\n"
         "  why:\n"
         "    en: \"reason-en {{decision.language}}\"\n"
         "    it: { default: \"motivo {{decision.language}}\", desk: motivo-desk }\n";

typedef struct render_case {
    int channel;
    const char *language; /* event.language */
    const char *message;
    const char *reason;
} render_case;

static void render_per_channel_and_language(void **state)
{
    (void)state;
    static const render_case cases[] = {
        {NBA__V1__CHANNEL__DESK, "en", "en-desk", "motivo-desk"},
        {NBA__V1__CHANNEL__KIOSK, "en", "en-kiosk", "motivo en"},
        {NBA__V1__CHANNEL__IVR, "en", "en-default", "motivo en"},
        /* the language's own default comes before another language's channel text */
        {NBA__V1__CHANNEL__DESK, "it", "it-default", "motivo-desk"},
        {NBA__V1__CHANNEL__KIOSK, "it", "it-kiosk", "motivo it"},
        {NBA__V1__CHANNEL__IVR, "zh-Hant", "zh-Hant-all", "motivo zh-Hant"},
        /* no text in this language: default_language's, for this channel */
        {NBA__V1__CHANNEL__DESK, "zh-Hans", "en-desk", "motivo-desk"},
        {NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED, "zh-Hans", "en-default", "motivo zh-Hans"},
        {42, "it", "it-default", "motivo it"},
    };
    ruleset *rs = fx_load(render_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        fx_init(&fx, (Nba__V1__Channel)cases[i].channel, "checkin");
        fx.event.language = (char *)cases[i].language;
        fx_customer(&fx, "Ada", "gold", 1.5, 20000, "en");
        fx_attr(&fx, "miles", "012000", true, 12000);
        Nba__V1__Decision d;
        assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
        assert_int_equal(d.n_actions, 1);
        const Nba__V1__Action *act = d.actions[0];
        if (strcmp(act->message, cases[i].message) != 0 || strcmp(act->reason, cases[i].reason))
            fail_msg("channel %d, %s: expected \"%s\" / \"%s\", got \"%s\" / \"%s\"",
                     cases[i].channel, cases[i].language, cases[i].message, cases[i].reason,
                     act->message, act->reason);
        assert_id(d.ruleset, "t@1");
        assert_string_equal(act->type, "show");
        assert_string_equal(act->rule_id, "r");
        assert_false(act->follow_up);
        assert_int_equal(act->n_params, 8);
        /* params in file order */
        assert_string_equal(act->params[0]->key, "value");
        assert_string_equal(act->params[7]->key, "fixed");
        assert_string_equal(fx_param(act, "value"), "20000");
        assert_string_equal(fx_param(act, "ratio"), "1.5");
        assert_string_equal(fx_param(act, "missing"), "[]");
        assert_string_equal(fx_param(act, "known"), "true");
        assert_string_equal(fx_param(act, "sev"), "<>");
        assert_string_equal(fx_param(act, "miles"), "012000"); /* as written */
        assert_string_equal(fx_param(act, "fixed"), "F");
        const char *channel = fx_param(act, "channel");
        if (cases[i].channel >= 1 && cases[i].channel <= 6)
            assert_true(strlen(channel) > 2);
        else
            assert_string_equal(channel, "");
        arena_reset(&a);
    }

    /* an unknown customer: every customer placeholder is empty */
    fixture fx;
    fx_init(&fx, NBA__V1__CHANNEL__DESK, "checkin");
    Nba__V1__Decision d;
    assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
    assert_int_equal(d.n_actions, 1);
    assert_string_equal(fx_param(d.actions[0], "value"), "");
    assert_string_equal(fx_param(d.actions[0], "known"), "false");
    assert_string_equal(fx_param(d.actions[0], "channel"), "desk");
    arena_destroy(&a);
    ruleset_free(rs);
}

static const char labels_yaml[] =
    HEAD "rules:\n"
         "  - id: r\n"
         "    when: any(incidents)\n"
         "    then:\n"
         "      - action: sorry\n"
         "        say: sorry\n"
         "        params:\n"
         "          sev: \"{{incident.severity | severities}}\"\n"
         "          date: \"{{incident.occurred_at}}\"\n"
         "          flight: \"{{incident.flight}}\"\n"
         "          kind: \"{{ incident.kind|kinds }}\"\n"
         "messages:\n"
         "  sorry:\n"
         "    en: \"Sorry about {{incident.kind | kinds}}.\"\n"
         "    it: \"Ci scusiamo per {{incident.kind | kinds}}.\"\n"
         "    zh-Hant: \"對於{{incident.kind | kinds}}，我們深表歉意。\"\n"
         "    zh-Hans: \"对于{{incident.kind | kinds}}，我们深表歉意。\"\n"
         "labels:\n"
         "  kinds:\n"
         "    ife_broken: { en: the broken screen, it: lo schermo guasto, zh-Hant: 螢幕故障, "
         "zh-Hans: 屏幕故障 }\n"
         "    delay: { en: the delay, it: il ritardo }\n"
         "    downgrade: { it: il declassamento }\n"
         "  severities:\n"
         "    \"3\": { en: serious, it: grave }\n";

typedef struct label_case {
    const char *language;
    const char *kind;
    int severity;
    const char *message;
    const char *sev;
} label_case;

static void labels_translate_values(void **state)
{
    (void)state;
    static const label_case cases[] = {
        {"en", "ife_broken", 3, "Sorry about the broken screen.", "serious"},
        {"it", "ife_broken", 3, "Ci scusiamo per lo schermo guasto.", "grave"},
        {"zh-Hant", "ife_broken", 3, "對於螢幕故障，我們深表歉意。", "serious"},
        {"zh-Hans", "ife_broken", 2, "对于屏幕故障，我们深表歉意。", "2"},
        /* no zh-Hans label: default_language's */
        {"zh-Hans", "delay", 3, "对于the delay，我们深表歉意。", "serious"},
        /* no label at all: the raw value */
        {"it", "lost_baggage", 1, "Ci scusiamo per lost_baggage.", "1"},
        /* no label in this language nor in default_language: the raw value */
        {"en", "downgrade", 1, "Sorry about downgrade.", "1"},
        {"it", "downgrade", 1, "Ci scusiamo per il declassamento.", "1"},
    };
    ruleset *rs = fx_load(labels_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        fx_init(&fx, NBA__V1__CHANNEL__KIOSK, "checkin");
        fx.event.language = (char *)cases[i].language;
        fx_customer(&fx, "Ada", "gold", 1, 1, "en");
        Nba__V1__Incident *inc =
            fx_incident(&fx, "I-9", cases[i].kind, cases[i].severity, 0, false, "AZ610");
        inc->occurred_at_ms = 951782400000LL + 3600000; /* 2000-02-29T01:00Z */
        Nba__V1__Decision d;
        assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
        assert_int_equal(d.n_actions, 1);
        assert_string_equal(d.actions[0]->message, cases[i].message);
        assert_string_equal(fx_param(d.actions[0], "sev"), cases[i].sev);
        assert_string_equal(fx_param(d.actions[0], "date"), "2000-02-29");
        assert_string_equal(fx_param(d.actions[0], "flight"), "AZ610");
        arena_reset(&a);
    }

    /* dates either side of the epoch */
    static const struct {
        int64_t ms;
        const char *date;
    } dates[] = {{0, "1970-01-01"},
                 {-1, "1969-12-31"},
                 {-86400000LL, "1969-12-31"},
                 {4102531199000LL, "2100-01-01"},
                 {1790000000000LL, "2026-09-21"}};
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        fixture fx;
        fx_init(&fx, NBA__V1__CHANNEL__KIOSK, "checkin");
        fx_customer(&fx, "Ada", "gold", 1, 1, "en");
        fx_incident(&fx, "I-9", "delay", 1, 0, false, "")->occurred_at_ms = dates[i].ms;
        Nba__V1__Decision d;
        assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
        assert_string_equal(fx_param(d.actions[0], "date"), dates[i].date);
        arena_reset(&a);
    }
    arena_destroy(&a);
    ruleset_free(rs);
}

/* The rule's triggering incident feeds its {{incident.*}} placeholders; each
 * hit has its own. */
static void placeholders_use_the_hits_incident(void **state)
{
    (void)state;
    ruleset *rs = fx_load(HEAD "rules:\n"
                               "  - id: delays\n"
                               "    when: any(incidents, kind == \"delay\")\n"
                               "    then: [{action: a, params: {id: \"{{incident.id}}\"}}]\n"
                               "  - id: severe\n"
                               "    when: any(incidents, severity >= 4)\n"
                               "    then: [{action: b, params: {id: \"{{incident.id}}\"}}]\n"
                               "  - id: none\n"
                               "    when: customer.known\n"
                               "    then: [{action: c, params: {id: \"{{incident.id}}\"}}]\n");
    assert_non_null(rs);
    fixture fx;
    fx_init(&fx, NBA__V1__CHANNEL__KIOSK, "checkin");
    fx_customer(&fx, "Ada", "gold", 1, 1, "en");
    fx_incident(&fx, "D-old", "delay", 1, 30, false, "");
    fx_incident(&fx, "S-1", "downgrade", 5, 3, false, "");
    fx_incident(&fx, "D-new", "delay", 2, 2, true, "");
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    Nba__V1__Decision d;
    assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
    assert_int_equal(d.n_actions, 3);
    assert_string_equal(fx_param(fx_action(&d, "a"), "id"), "D-new");
    assert_string_equal(fx_param(fx_action(&d, "b"), "id"), "S-1");
    assert_string_equal(fx_param(fx_action(&d, "c"), "id"), "");
    arena_destroy(&a);
    ruleset_free(rs);
}

/* The decision's fixed texts are the ruleset's own, not copies (the
 * decider holds the ruleset until the answer is encoded: decider_done),
 * and its rendered texts are in the arena: encoded before the ruleset
 * goes, it is whole. */
static void decision_encodes_while_ruleset_held(void **state)
{
    (void)state;
    ruleset *rs = fx_load(render_yaml);
    assert_non_null(rs);
    fixture fx;
    fx_init(&fx, NBA__V1__CHANNEL__DESK, "checkin");
    fx_customer(&fx, "Ada", "gold", 1.5, 20000, "en");
    arena a;
    assert_int_equal(arena_init(&a, 4096), 0);
    Nba__V1__Decision d;
    assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
    uint8_t buf[4096];
    size_t len = nba__v1__decision__get_packed_size(&d);
    assert_true(len < sizeof buf);
    nba__v1__decision__pack(&d, buf);
    ruleset_free(rs);
    Nba__V1__Decision *back = nba__v1__decision__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_id(back->ruleset, "t@1");
    assert_string_equal(back->actions[0]->message, "en-desk");
    assert_string_equal(back->actions[0]->params[7]->value, "F");
    nba__v1__decision__free_unpacked(back, NULL);
    arena_destroy(&a);
}

/* ---- the shipped rules ---- */

static ruleset *shipped(void)
{
    const char *dir = getenv("NBA_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/rules/airline-checkin.yaml", dir ? dir : "..");
    ruleset *rs = NULL;
    nba_error err;
    if (ruleset_load_file(path, &rs, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    return rs;
}

/* The blueprint's passenger: platinum, high predicted value, Italian, an
 * open severity-3 broken in-flight entertainment system 10 days ago,
 * checking in booked in economy. */
static void blueprint_passenger(fixture *fx, Nba__V1__Channel channel)
{
    fx_init(fx, channel, "checkin");
    fx_context(fx, "cabin", "Y");
    fx_context(fx, "flight", "AZ611");
    fx_customer(fx, "Maria Rossi", "platinum", 80000, 45000, "it");
    fx_incident(fx, "INC-7", "ife_broken", 3, 10, false, "AZ610");
}

static void shipped_rules_blueprint(void **state)
{
    (void)state;
    ruleset *rs = shipped();
    assert_non_null(rs);
    assert_id(ruleset_id(rs), "airline-checkin@1");
    static const Nba__V1__Channel channels[] = {NBA__V1__CHANNEL__KIOSK, NBA__V1__CHANNEL__DESK,
                                                NBA__V1__CHANNEL__IVR};
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    char upgrade_msg[3][1024], letter_msg[3][1024], types[3][256];
    for (size_t c = 0; c < 3; c++) {
        fixture fx;
        blueprint_passenger(&fx, channels[c]);
        Nba__V1__Decision d;
        assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
        assert_string_equal(d.language, "it");
        assert_id(d.ruleset, "airline-checkin@1");

        const Nba__V1__Action *up = fx_action(&d, "upgrade");
        assert_non_null(up);
        assert_string_equal(up->rule_id, "recovery-upgrade");
        assert_string_equal(fx_param(up, "cabin"), "F");
        assert_false(up->follow_up);
        assert_non_null(strstr(up->message, "prima classe"));
        assert_non_null(strstr(up->message, "intrattenimento di bordo")); /* the label, in it */
        /* the reason is for the agent, in English, and says why */
        assert_non_null(strstr(up->reason, "AZ610"));
        assert_non_null(strstr(up->reason, "in-flight entertainment"));

        const Nba__V1__Action *letter = fx_action(&d, "apology_letter");
        assert_non_null(letter);
        assert_true(letter->follow_up);
        assert_string_equal(fx_param(letter, "incident"), "INC-7");
        assert_true(strlen(letter->message) > 0);
        assert_non_null(strstr(letter->message, "lettera")); /* announced, in Italian */

        const Nba__V1__Action *lang = fx_action(&d, "set_language");
        assert_non_null(lang);
        assert_string_equal(fx_param(lang, "language"), "it");
        assert_non_null(fx_action(&d, "greet"));

        /* best first: the upgrade leads */
        assert_string_equal(d.actions[0]->type, "upgrade");
        snprintf(upgrade_msg[c], sizeof upgrade_msg[c], "%s", up->message);
        snprintf(letter_msg[c], sizeof letter_msg[c], "%s", letter->message);
        types[c][0] = '\0';
        for (size_t k = 0; k < d.n_actions; k++) {
            strcat(types[c], d.actions[k]->type);
            strcat(types[c], " ");
        }
        arena_reset(&a);
    }
    /* the same actions everywhere, said the way each channel says things */
    assert_string_equal(types[0], types[1]);
    assert_string_equal(types[1], types[2]);
    assert_string_not_equal(upgrade_msg[0], upgrade_msg[1]);
    assert_string_not_equal(upgrade_msg[1], upgrade_msg[2]);
    assert_string_not_equal(upgrade_msg[0], upgrade_msg[2]);
    /* the letter is announced the way each channel speaks */
    assert_string_not_equal(letter_msg[0], letter_msg[1]);
    assert_string_not_equal(letter_msg[1], letter_msg[2]);
    arena_destroy(&a);
    ruleset_free(rs);
}

typedef struct scenario {
    const char *name;
    const char *tier;
    double predicted;
    const char *language; /* customer's; NULL: unknown customer */
    const char *picked;   /* event.language */
    const char *cabin;    /* NULL: no cabin in the context */
    int severity;         /* 0: no incident */
    bool resolved;
    int age_days;
    Nba__V1__Channel channel;
    const char *expect_language;
    const char *present; /* action types that must be there, space separated */
    const char *absent;  /* and must not */
    const char *upgrade_contains;
} scenario;

static const scenario scenarios[] = {
    {"low value, no incident", "none", 500, "en", "", "Y", 0, false, 0, NBA__V1__CHANNEL__KIOSK,
     "en", "greet set_language", "upgrade apology_letter", NULL},
    {"low value, open incident", "silver", 500, "it", "", "Y", 1, false, 5, NBA__V1__CHANNEL__DESK,
     "it", "apology_letter greet", "upgrade", NULL},
    {"valuable, but flying business", "platinum", 45000, "it", "", "J", 3, false, 10,
     NBA__V1__CHANNEL__KIOSK, "it", "apology_letter", "upgrade", NULL},
    {"valuable, incident resolved", "platinum", 45000, "it", "", "Y", 3, true, 10,
     NBA__V1__CHANNEL__KIOSK, "it", "greet", "upgrade apology_letter", NULL},
    {"valuable, incident too old", "gold", 45000, "en", "", "W", 3, false, 400,
     NBA__V1__CHANNEL__KIOSK, "en", "greet", "upgrade apology_letter", NULL},
    {"valuable by value alone", "none", 25000, "en", "", "W", 2, false, 100, NBA__V1__CHANNEL__IVR,
     "en", "upgrade apology_letter", NULL, "First Class"},
    {"traditional chinese", "platinum", 45000, "zh-Hant", "", "Y", 3, false, 10,
     NBA__V1__CHANNEL__KIOSK, "zh-Hant", "upgrade set_language", NULL, "頭等艙"},
    {"simplified chinese", "platinum", 45000, "zh-Hans", "", "Y", 3, false, 10,
     NBA__V1__CHANNEL__KIOSK, "zh-Hans", "upgrade set_language", NULL, "头等舱"},
    {"taiwanese tag", "platinum", 45000, "zh-TW", "", "Y", 3, false, 10, NBA__V1__CHANNEL__DESK,
     "zh-Hant", "upgrade", NULL, "頭等艙"},
    {"regional italian", "platinum", 45000, "it-IT", "", "Y", 3, false, 10, NBA__V1__CHANNEL__IVR,
     "it", "upgrade set_language", NULL, "prima classe"},
    {"contact point picked english", "platinum", 45000, "it", "en", "Y", 3, false, 10,
     NBA__V1__CHANNEL__KIOSK, "en", "upgrade apology_letter greet", "set_language", "First Class"},
    {"language we do not speak", "gold", 100, "fr", "", "Y", 0, false, 0, NBA__V1__CHANNEL__KIOSK,
     "en", "greet", "set_language upgrade", NULL},
    {"no cabin in the request", "platinum", 45000, "it", "", NULL, 3, false, 10,
     NBA__V1__CHANNEL__KIOSK, "it", "apology_letter", "upgrade", NULL},
    {"unknown customer", NULL, 0, NULL, "", "Y", 0, false, 0, NBA__V1__CHANNEL__KIOSK, "en", "",
     "upgrade apology_letter greet set_language", NULL},
    {"unknown customer who picked italian", NULL, 0, NULL, "it", "Y", 0, false, 0,
     NBA__V1__CHANNEL__IVR, "it", "", "upgrade apology_letter greet set_language", NULL},
};

static bool has_type(const Nba__V1__Decision *d, const char *type, size_t len)
{
    for (size_t i = 0; i < d->n_actions; i++)
        if (strlen(d->actions[i]->type) == len && memcmp(d->actions[i]->type, type, len) == 0)
            return true;
    return false;
}

static void shipped_rules_scenarios(void **state)
{
    (void)state;
    ruleset *rs = shipped();
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        const scenario *s = &scenarios[i];
        fixture fx;
        fx_init(&fx, s->channel, "checkin");
        fx.event.language = (char *)s->picked;
        if (s->cabin)
            fx_context(&fx, "cabin", s->cabin);
        if (s->language) {
            fx_customer(&fx, "Maria Rossi", s->tier, 1000, s->predicted, s->language);
            if (s->severity)
                fx_incident(&fx, "INC-1", "delay", s->severity, s->age_days, s->resolved, "AZ1");
        }
        Nba__V1__Decision d;
        assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
        if (strcmp(d.language, s->expect_language) != 0)
            fail_msg("%s: expected language %s, got %s", s->name, s->expect_language, d.language);
        assert_id(d.ruleset, "airline-checkin@1");
        for (const char *p = s->present; *p;) {
            size_t len = strcspn(p, " ");
            if (!has_type(&d, p, len))
                fail_msg("%s: expected a '%.*s' action", s->name, (int)len, p);
            p += len + (p[len] == ' ');
        }
        for (const char *p = s->absent ? s->absent : ""; *p;) {
            size_t len = strcspn(p, " ");
            if (has_type(&d, p, len))
                fail_msg("%s: did not expect a '%.*s' action", s->name, (int)len, p);
            p += len + (p[len] == ' ');
        }
        if (s->upgrade_contains) {
            const Nba__V1__Action *up = fx_action(&d, "upgrade");
            assert_non_null(up);
            if (!strstr(up->message, s->upgrade_contains))
                fail_msg("%s: expected \"%s\" in \"%s\"", s->name, s->upgrade_contains,
                         up->message);
        }
        for (size_t k = 0; k < d.n_actions; k++) {
            assert_non_null(d.actions[k]->message);
            assert_true(strlen(d.actions[k]->message) > 0);
        }
        arena_reset(&a);
    }
    arena_destroy(&a);
    ruleset_free(rs);
}

/* Traditional and Simplified texts are distinct: each in its own script. */
static void shipped_rules_chinese_scripts(void **state)
{
    (void)state;
    ruleset *rs = shipped();
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    fixture fx;
    blueprint_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    fx.customer.language = "zh-Hant";
    Nba__V1__Decision d;
    assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
    const Nba__V1__Action *up = fx_action(&d, "upgrade");
    assert_non_null(up);
    assert_non_null(strstr(up->message, "機上娛樂系統故障"));
    assert_null(strstr(up->message, "头等舱"));
    char hant[1024];
    snprintf(hant, sizeof hant, "%s", up->message);
    arena_reset(&a);

    fx.customer.language = "zh-Hans";
    assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
    up = fx_action(&d, "upgrade");
    assert_non_null(up);
    assert_non_null(strstr(up->message, "机上娱乐系统故障"));
    assert_null(strstr(up->message, "頭等艙"));
    assert_string_not_equal(up->message, hant);
    arena_destroy(&a);
    ruleset_free(rs);
}

/* ---- warnings: rules that never fire or act, shadowed rules, missing
 * data, messages ---- */

typedef struct warn_case {
    const char *extra; /* header lines */
    const char *rules; /* the rules: section's items */
    const char *want;  /* a problem, as problems() writes it; NULL: no warning at all */
} warn_case;

static void analyses_warn(void **state)
{
    (void)state;
    static const warn_case cases[] = {
        /* never fires */
        {"",
         "  - {id: r, when: 'customer.tier == \"gold\" and customer.tier == \"silver\"', "
         "then: [{action: a}]}\n",
         "6:48: warning: rule 'r' can never fire: customer.tier == \"silver\" contradicts "
         "customer.tier == \"gold\""},
        {"",
         "  - {id: r, when: 'count(incidents) > 3 and count(incidents) < 2', then: [{action: "
         "a}]}\n",
         "rule 'r' can never fire: count(incidents) < 2 contradicts count(incidents) > 3"},
        {"",
         "  - {id: r, when: 'count(incidents, open) > 2 and count(incidents, open) < 3', "
         "then: [{action: a}]}\n",
         "rule 'r' can never fire: count(incidents, open) < 3 contradicts"},
        {"", "  - {id: r, when: 'customer.known and 1 > 2', then: [{action: a}]}\n",
         "6:39: warning: rule 'r' can never fire: 1 > 2 is false whatever the data"},
        {"", "  - {id: r, when: 'customer.known and not customer.known', then: [{action: a}]}\n",
         "rule 'r' can never fire: not customer.known contradicts customer.known"},
        {"",
         "  - {id: r, when: 'event.context.cabin in [\"Y\", \"W\"] and event.context.cabin == "
         "\"J\"', then: [{action: a}]}\n",
         "rule 'r' can never fire: event.context.cabin == \"J\" contradicts"},
        {"",
         "  - {id: r, when: 'event.time_of_day > 20h and event.time_of_day < 6h', then: "
         "[{action: a}]}\n",
         "rule 'r' can never fire"},
        /* never acts */
        {"",
         "  - {id: r, when: 'event.channel == \"ivr\"', then: [{action: a, channels: "
         "[desk]}]}\n",
         "6:10: warning: rule 'r' never gives an action: it holds only on ivr, and its actions "
         "are for desk"},
        {"channels: { ivr: { cannot: [voucher] } }\n",
         "  - {id: r, when: 'event.channel == \"ivr\"', then: [{action: voucher}]}\n",
         "rule 'r' never gives an action: the channels it holds on (ivr) cannot perform its "
         "actions"},
        /* shadowed */
        {"",
         "  - {id: a, priority: 10, group: g, when: 'customer.tier in [\"gold\", "
         "\"platinum\"]', then: [{action: a}]}\n"
         "  - {id: b, priority: 5, group: g, when: 'customer.tier == \"gold\" and "
         "customer.known', then: [{action: b}]}\n",
         "7:10: warning: rule 'b' is shadowed by 'a' (line 6): whenever it holds, 'a' holds too "
         "and wins their exclusive group 'g' | give 'b' a higher priority than 'a', or narrow "
         "'a'"},
        {"",
         "  - {id: a, priority: 10, group: g, when: 'any(incidents, open)', then: [{action: "
         "a}]}\n"
         "  - {id: b, group: g, when: 'any(incidents, open and severity > 2) and "
         "customer.predicted_ltv >= 5', then: [{action: b}]}\n",
         "rule 'b' is shadowed by 'a'"},
        {"",
         "  - {id: a, group: g, when: 'customer.predicted_ltv >= 20000', then: [{action: "
         "a}]}\n"
         "  - {id: b, group: g, when: 'customer.predicted_ltv >= 50000 or customer.tier == "
         "\"platinum\"', then: [{action: b}]}\n",
         NULL},
        {"",
         "  - {id: a, group: g, when: 'customer.predicted_ltv >= 20000 or customer.tier == "
         "\"platinum\"', then: [{action: a}]}\n"
         "  - {id: b, group: g, when: 'customer.predicted_ltv > 50000', then: [{action: "
         "b}]}\n",
         "rule 'b' is shadowed by 'a' (line 6)"},
        /* b would be shadowed, but it wins on priority */
        {"",
         "  - {id: a, priority: 1, group: g, when: 'customer.known', then: [{action: a}]}\n"
         "  - {id: b, priority: 2, group: g, when: 'customer.known and customer.tier == "
         "\"x\"', then: [{action: b}]}\n",
         NULL},
        /* different groups */
        {"",
         "  - {id: a, group: g, when: 'customer.known', then: [{action: a}]}\n"
         "  - {id: b, group: h, when: 'customer.known', then: [{action: b}]}\n",
         NULL},
        /* missing data */
        {"", "  - {id: r, when: 'customer.tier != \"gold\"', then: [{action: a}]}\n",
         "6:20: warning: in rule 'r', customer.tier is missing for a passenger nbad does not "
         "know, and then this comparison is false, not true | write customer.known and ... to "
         "say what is meant"},
        {"",
         "  - {id: r, when: 'customer.known and customer.tier != \"gold\"', then: [{action: "
         "a}]}\n",
         NULL},
        {"", "  - {id: r, when: 'not (event.context.cabin == \"Y\")', then: [{action: a}]}\n",
         "in rule 'r', event.context.cabin is missing when the contact point does not send it, "
         "and then this comparison is false and the 'not' around it makes the condition true | "
         "write has(event.context.cabin) and ... to say what is meant"},
        {"", "  - {id: r, when: 'event.context.cabin == \"Y\"', then: [{action: a}]}\n", NULL},
        {"", "  - {id: r, when: 'customer.segment == \"vip\"', then: [{action: a}]}\n",
         "in rule 'r', customer.segment may be missing (an empty cell, or not of the column's "
         "type): the comparison is then false | if that is meant, say so with "
         "has(customer.segment) and ..."},
        {"",
         "  - {id: r, when: 'has(customer.segment) and customer.segment == \"vip\"', then: "
         "[{action: a}]}\n",
         NULL},
        {"", "  - {id: r, when: 'max(incidents, severity) != 3', then: [{action: a}]}\n",
         "max(incidents, severity) is missing when no incident passes the filter"},
        {"attributes: { vip: bool }\n", "  - {id: r, when: 'customer.vip', then: [{action: a}]}\n",
         "customer.vip may be missing (an empty cell, or neither true nor false)"},
        /* messages */
        {"", "  - {id: r, when: 'true', then: [{action: a}]}\nmessages:\n  idle: {en: Hi}\n",
         "8:3: warning: message 'idle' is never used"},
        {"languages: [en, it]\n",
         "  - {id: r, when: 'true', then: [{action: a, say: hi}]}\nmessages:\n  hi: {en: Hi}\n",
         "warning: message 'hi' has no text in it: passengers served in it get the 'en' text"},
    };
    char buf[8192];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[2048];
        const char *langs = strstr(cases[i].extra, "languages:") ? "" : "languages: [en]\n";
        snprintf(yaml, sizeof yaml, "ruleset: t\nversion: 1\n%sdefault_language: en\n%srules:\n%s",
                 langs, cases[i].extra, cases[i].rules);
        /* the header's lines shift with `extra`: want names lines of the
         * plain header; cases with extra lines only check the message */
        problems(yaml, buf, sizeof buf);
        if (cases[i].want && !strstr(buf, cases[i].want))
            fail_msg("case %zu: expected\n  %s\nin\n%s", i, cases[i].want, buf);
        if (!cases[i].want && buf[0])
            fail_msg("case %zu: expected no problem, got\n%s", i, buf);
        assert_null(strstr(buf, "error"));
    }
}

/* ---- explain ---- */

static const Nba__V1__RuleTrace *trace_of(const Nba__V1__Explanation *e, const char *id)
{
    for (size_t i = 0; i < e->n_rules; i++)
        if (strcmp(e->rules[i]->rule_id, id) == 0)
            return e->rules[i];
    fail_msg("no trace for rule %s", id);
    return NULL;
}

static ruleset *shipped(void);
static void blueprint_passenger(fixture *fx, Nba__V1__Channel channel);

static void explain_the_blueprint_passenger(void **state)
{
    (void)state;
    ruleset *rs = shipped();
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    fixture fx;
    blueprint_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    fx_context(&fx, "free_cabins", "W,J");
    Nba__V1__Decision d;
    assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);

    Nba__V1__Explanation e = NBA__V1__EXPLANATION__INIT;
    assert_int_equal(ruleset_explain(rs, fx_facts(&fx), &a, &e), 0);
    /* exactly the decision a contact event gets */
    assert_non_null(e.decision);
    assert_string_equal(e.decision->customer_id, "C-1");
    assert_true(e.decision->known);
    assert_string_equal(e.decision->ruleset, d.ruleset);
    assert_string_equal(e.decision->language, d.language);
    assert_int_equal(e.decision->n_actions, d.n_actions);
    for (size_t i = 0; i < d.n_actions; i++) {
        assert_string_equal(e.decision->actions[i]->type, d.actions[i]->type);
        assert_string_equal(e.decision->actions[i]->message, d.actions[i]->message);
    }
    /* every rule, in file order */
    assert_int_equal(e.n_rules, ruleset_rule_count(rs));
    for (size_t i = 0; i < e.n_rules; i++)
        assert_string_equal(e.rules[i]->rule_id, ruleset_rule_id(rs, i));

    /* why the upgrade fired */
    const Nba__V1__RuleTrace *up = trace_of(&e, "recovery-upgrade");
    assert_true(up->held);
    assert_string_equal(up->outcome, "chosen");
    assert_int_equal(up->n_conditions, 4);
    static const char *const exprs[] = {
        "event.touchpoint == \"checkin\"",
        "(customer.predicted_ltv >= 20000 or customer.tier == \"platinum\")",
        "event.context.cabin in [\"Y\", \"W\"]",
        "any(incidents, open and not recovered and severity >= 2 and age < 180d)",
    };
    static const char *const values[] = {"\"checkin\"", "45000; \"platinum\"", "\"Y\"",
                                         "true (INC-7)"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(up->conditions[i]->expression, exprs[i]);
        assert_string_equal(up->conditions[i]->value, values[i]);
        assert_true(up->conditions[i]->held);
    }
    /* why no other cabin action did */
    const Nba__V1__RuleTrace *loyal = trace_of(&e, "loyalty-upgrade");
    assert_true(loyal->held);
    assert_string_equal(loyal->outcome, "dropped: exclusive group 'cabin-change' went to "
                                        "'recovery-upgrade' (priority 100)");
    const Nba__V1__RuleTrace *seat = trace_of(&e, "exit-row-seat");
    assert_false(seat->held);
    assert_string_equal(seat->outcome, "not held");
    assert_string_equal(seat->conditions[1]->expression, "customer.tier == \"silver\"");
    assert_string_equal(seat->conditions[1]->value, "\"platinum\"");
    assert_false(seat->conditions[1]->held);
    assert_string_equal(seat->conditions[3]->value, "missing");
    const Nba__V1__RuleTrace *apology = trace_of(&e, "recovery-apology");
    assert_true(apology->held);
    assert_string_equal(apology->outcome, "dropped: exclusive group 'service-recovery' went to "
                                          "'recovery-upgrade' (priority 100)");
    /* the table: the first row answered, the others did not hold */
    const Nba__V1__RuleTrace *row1 = trace_of(&e, "goodwill-miles#1");
    assert_string_equal(row1->outcome, "chosen");
    assert_string_equal(row1->conditions[0]->expression, "event.touchpoint == \"checkin\"");
    assert_string_equal(row1->conditions[1]->expression, "tier == platinum");
    assert_string_equal(row1->conditions[2]->expression, "severity >= 3");
    assert_string_equal(row1->conditions[2]->value, "3");
    const Nba__V1__RuleTrace *row2 = trace_of(&e, "goodwill-miles#2");
    assert_false(row2->held);
    assert_string_equal(row2->conditions[2]->expression, "severity in 1..2");
    assert_string_equal(row2->conditions[2]->value, "3");
    arena_destroy(&a);
    ruleset_free(rs);
}

/* What arbitration did, in words: groups, channels, limits. */
static void explain_arbitration(void **state)
{
    (void)state;
    ruleset *rs = fx_load(caps_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    static const struct {
        int channel;
        const char *rule, *outcome;
    } cases[] = {
        {NBA__V1__CHANNEL__DESK, "a", "chosen"},
        {NBA__V1__CHANNEL__DESK, "b", "dropped: exclusive group 'g1' went to 'a' (priority 10)"},
        {NBA__V1__CHANNEL__DESK, "v", "chosen"},
        {NBA__V1__CHANNEL__DESK, "w", "dropped: the limit of 4 actions on desk was reached"},
        {NBA__V1__CHANNEL__IVR, "c", "chosen"},
        {NBA__V1__CHANNEL__IVR, "v", "dropped: the limit of 2 actions on ivr was reached"},
        {NBA__V1__CHANNEL__MOBILE, "c", "dropped: the limit of 1 action on mobile was reached"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture fx;
        fx_init(&fx, (Nba__V1__Channel)cases[i].channel, "checkin");
        Nba__V1__Explanation e = NBA__V1__EXPLANATION__INIT;
        assert_int_equal(ruleset_explain(rs, fx_facts(&fx), &a, &e), 0);
        const Nba__V1__RuleTrace *t = trace_of(&e, cases[i].rule);
        if (strcmp(t->outcome, cases[i].outcome) != 0)
            fail_msg("channel %d, rule %s: expected \"%s\", got \"%s\"", cases[i].channel,
                     cases[i].rule, cases[i].outcome, t->outcome);
        arena_reset(&a);
    }
    ruleset_free(rs);

    /* actions a channel cannot perform, or that are for other channels */
    rs = fx_load("ruleset: t\nversion: 1\nlanguages: [en]\ndefault_language: en\n"
                 "channels: { ivr: { cannot: [voucher] } }\n"
                 "rules:\n"
                 "  - {id: v, when: 'true', then: [{action: voucher}, {action: note}]}\n"
                 "  - {id: d, when: 'true', then: [{action: print, channels: [desk, kiosk]}]}\n");
    assert_non_null(rs);
    fixture fx;
    fx_init(&fx, NBA__V1__CHANNEL__IVR, "checkin");
    Nba__V1__Explanation e = NBA__V1__EXPLANATION__INIT;
    assert_int_equal(ruleset_explain(rs, fx_facts(&fx), &a, &e), 0);
    assert_string_equal(trace_of(&e, "v")->outcome,
                        "chosen; left out: voucher (ivr cannot perform voucher)");
    assert_string_equal(trace_of(&e, "d")->outcome,
                        "chosen, but gives nothing on ivr: print (only for desk, kiosk)");
    assert_int_equal(e.decision->n_actions, 1);
    assert_string_equal(e.decision->actions[0]->type, "note");
    /* an unknown passenger */
    ruleset_free(rs);
    arena_destroy(&a);
}

/* ---- the contact policy, effects, idempotency, letters ---- */

/* A contact history built by hand, oldest first. */
typedef struct history {
    Nba__V1__HistoryEntry entries[8];
    Nba__V1__HistoryEntry *ptrs[8];
    size_t n;
} history;

static void hist_add(history *h, fixture *fx, const char *action, Nba__V1__Channel channel,
                     int64_t age_ms, const char *incident)
{
    Nba__V1__HistoryEntry *e = &h->entries[h->n];
    nba__v1__history_entry__init(e);
    e->customer_id = "C-1";
    e->action = (char *)action;
    e->channel = channel;
    e->touchpoint = "checkin";
    e->rule_id = "earlier-rule";
    e->incident_id = (char *)incident;
    e->at_ms = FX_NOW_MS - age_ms;
    h->ptrs[h->n++] = e;
    fx->f.history = h->ptrs;
    fx->f.n_history = h->n;
}

#define HOUR_MS (3600 * 1000LL)

static const char policy_yaml[] =
    "ruleset: t\n"
    "version: 1\n"
    "languages: [en, it, zh-Hant, zh-Hans]\n"
    "default_language: en\n"
    "max_actions: 10\n"
    "channels: { mobile: { max_actions: 3 } }\n"
    "policy:\n"
    "  record:\n"
    "    upgrade: { recovers: true, once_per: incident }\n"
    "    letter: { recovers: true, once_per: incident }\n"
    "    miles: { once_per: 30d }\n"
    "    voucher:\n"
    "  caps:\n"
    "    - { action: voucher, max: 2, per: 7d }\n"
    "    - { channel: ivr, max: 1, per: 1d, description: one lasting thing a day by phone }\n"
    "  idempotency:\n"
    "    key: [channel, touchpoint, context.flight]\n"
    "    window: 6h\n"
    "  keep_history: 400d\n"
    "groups: { recovery: one recovery a contact }\n"
    "rules:\n"
    "  - id: recover\n"
    "    priority: 100\n"
    "    group: recovery\n"
    "    when: any(incidents, open and not recovered)\n"
    "    then:\n"
    "      - { action: upgrade, params: { cabin: F } }\n"
    "      - { action: letter, follow_up: true }\n"
    "  - id: apologise\n"
    "    priority: 50\n"
    "    group: recovery\n"
    "    when: any(incidents, open)\n"
    "    then: [{ action: note }]\n"
    "  - id: miles\n"
    "    priority: 40\n"
    "    when: any(incidents, open)\n"
    "    then: [{ action: miles, follow_up: true, letter: miles_note }]\n"
    "  - id: also-letter\n"
    "    priority: 35\n"
    "    when: any(incidents, open)\n"
    "    then: [{ action: letter, follow_up: true }]\n"
    "  - id: vouchers\n"
    "    priority: 30\n"
    "    when: customer.known\n"
    "    then: [{ action: voucher }, { action: voucher }]\n"
    "  - id: greet\n"
    "    priority: 10\n"
    "    when: customer.known\n"
    "    then: [{ action: greet }]\n"
    "labels:\n"
    "  kinds:\n"
    "    delay: { en: the delay, it: il ritardo }\n"
    "letters:\n"
    "  letter:\n"
    "    en:\n"
    "      subject: \"Sorry about {{incident.kind | kinds}} & more <again>\"\n"
    "      body: |\n"
    "        Dear {{customer.name}},\n"
    "\n"
    "        We are sorry about {{incident.kind | kinds}} on flight {{incident.flight}}.\n"
    "        Fish & chips <free>, said \"{{incident.note}}\".\n"
    "\n"
    "\n"
    "        Yours,\n"
    "        Customer Relations\n"
    "    it:\n"
    "      subject: Ci scusiamo per {{incident.kind | kinds}}\n"
    "      body: |\n"
    "        Gentile {{customer.name}},\n"
    "\n"
    "        ci scusiamo per {{incident.kind | kinds}} ({{decision.language}}).\n"
    "    zh-Hant:\n"
    "      subject: 致歉\n"
    "      body: \"{{customer.name}} 您好：\\n\\n我們深表歉意。\"\n"
    "  miles_note:\n"
    "    en: { subject: Miles, body: \"Dear {{customer.name}}, miles are on their way.\" }\n";

static const char *const types_of_all[] = {"upgrade", "letter",  "miles",
                                           "voucher", "voucher", "greet"};

/* The action types of d, joined with spaces. */
static const char *types_of(const Nba__V1__Decision *d, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < d->n_actions; i++) {
        int w = snprintf(buf + k, size - k, "%s%s", i ? " " : "", d->actions[i]->type);
        if (w < 0 || (size_t)w >= size - k)
            break;
        k += (size_t)w;
    }
    return buf;
}

static void policy_passenger(fixture *fx, Nba__V1__Channel channel)
{
    fx_init(fx, channel, "checkin");
    fx_context(fx, "flight", "AZ610");
    fx_customer(fx, "Ann Lee", "gold", 1000, 30000, "en");
    Nba__V1__Incident *inc = fx_incident(fx, "I-1", "delay", 3, 2, false, "AZ611");
    inc->recovered_by = "";
}

static const char *decide_types(const ruleset *rs, fixture *fx, arena *a, char *buf, size_t size)
{
    Nba__V1__Decision d;
    assert_int_equal(fx_decide(rs, fx, a, &d), 0);
    return types_of(&d, buf, size);
}

/* Suppression and caps are applied from the history, action by action; a
 * rule whose actions are held back still wins its group. */
static void policy_holds_back_and_caps(void **state)
{
    (void)state;
    ruleset *rs = fx_load(policy_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    char got[256];
    fixture fx;
    history h;

    /* no history: everything once; the second letter for the same incident
     * in this decision is held back, both vouchers fit the cap */
    policy_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got),
                        "upgrade letter miles voucher voucher greet");

    /* an upgrade given for I-1 before (the incident not marked): held
     * back, and 'recover' still wins the group: no note */
    policy_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    memset(&h, 0, sizeof h);
    hist_add(&h, &fx, "upgrade", NBA__V1__CHANNEL__KIOSK, 1 * HOUR_MS, "I-1");
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got),
                        "letter miles voucher voucher greet");
    /* ... for another incident: given */
    h.entries[0].incident_id = "I-0";
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got),
                        "upgrade letter miles voucher voucher greet");

    /* once in 30 days */
    policy_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    memset(&h, 0, sizeof h);
    hist_add(&h, &fx, "miles", NBA__V1__CHANNEL__DESK, 10 * FX_DAY_MS, "I-0");
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got),
                        "upgrade letter voucher voucher greet");
    h.entries[0].at_ms = FX_NOW_MS - 40 * FX_DAY_MS;
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got),
                        "upgrade letter miles voucher voucher greet");

    /* two vouchers a week: one in the history leaves room for one */
    policy_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    memset(&h, 0, sizeof h);
    hist_add(&h, &fx, "voucher", NBA__V1__CHANNEL__DESK, 2 * FX_DAY_MS, "");
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got),
                        "upgrade letter miles voucher greet");
    h.entries[0].at_ms = FX_NOW_MS - 8 * FX_DAY_MS; /* out of the window */
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got),
                        "upgrade letter miles voucher voucher greet");

    /* one recorded action a day by phone: counted within the decision too */
    policy_passenger(&fx, NBA__V1__CHANNEL__IVR);
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got), "upgrade greet");
    memset(&h, 0, sizeof h);
    hist_add(&h, &fx, "voucher", NBA__V1__CHANNEL__IVR, 3 * HOUR_MS, "");
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got), "greet");
    /* the phone's cap does not touch the kiosk (the voucher cap counts
     * that voucher, though) */
    fx.event.channel = NBA__V1__CHANNEL__KIOSK;
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got),
                        "upgrade letter miles voucher greet");

    /* only the actions given count toward the channel's limit */
    policy_passenger(&fx, NBA__V1__CHANNEL__MOBILE);
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got), "upgrade letter miles");
    memset(&h, 0, sizeof h);
    hist_add(&h, &fx, "upgrade", NBA__V1__CHANNEL__KIOSK, 1 * HOUR_MS, "I-1");
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got), "letter miles voucher");

    /* a recovered incident: 'recover' does not hold, the lesser rule acts */
    policy_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    fx.incidents[0].recovered_by = "letter";
    assert_string_equal(decide_types(rs, &fx, &a, got, sizeof got),
                        "note miles letter voucher voucher greet");

    /* explain says which policy held what back */
    policy_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    memset(&h, 0, sizeof h);
    hist_add(&h, &fx, "upgrade", NBA__V1__CHANNEL__KIOSK, 1 * HOUR_MS, "I-1");
    hist_add(&h, &fx, "voucher", NBA__V1__CHANNEL__DESK, 30 * 60000, "");
    arena_reset(&a);
    Nba__V1__Explanation e = NBA__V1__EXPLANATION__INIT;
    assert_int_equal(ruleset_explain(rs, fx_facts(&fx), &a, &e), 0);
    assert_string_equal(types_of(e.decision, got, sizeof got), "letter miles voucher greet");
    const Nba__V1__RuleTrace *t = trace_of(&e, "recover");
    assert_string_equal(t->outcome,
                        "chosen; left out: upgrade (held back by the contact policy: upgrade once "
                        "per incident, and it was given for I-1 on 2026-09-21T13:13:20Z at the "
                        "kiosk by rule earlier-rule)");
    t = trace_of(&e, "also-letter");
    assert_string_equal(t->outcome,
                        "chosen, but gives nothing on kiosk: letter (held back by the contact "
                        "policy: letter once per incident, and this decision already gives it)");
    t = trace_of(&e, "vouchers");
    assert_string_equal(t->outcome,
                        "chosen; left out: voucher (held back by the contact policy: cap 1, at "
                        "most 2 voucher in 7d, is reached)");
    assert_string_equal(trace_of(&e, "apologise")->outcome,
                        "dropped: exclusive group 'recovery' went to 'recover' (priority 100)");
    policy_passenger(&fx, NBA__V1__CHANNEL__IVR);
    memset(&h, 0, sizeof h);
    hist_add(&h, &fx, "miles", NBA__V1__CHANNEL__IVR, 3 * HOUR_MS, "I-0");
    assert_int_equal(ruleset_explain(rs, fx_facts(&fx), &a, &e), 0);
    assert_non_null(strstr(trace_of(&e, "recover")->outcome,
                           "upgrade (held back by the contact policy: cap 2, at most 1 recorded "
                           "actions on ivr in 1d, is reached)"));

    /* what the daemon asks of the policy */
    assert_true(ruleset_records(rs, "upgrade"));
    assert_true(ruleset_records(rs, "voucher"));
    assert_false(ruleset_records(rs, "greet"));
    assert_false(ruleset_records(rs, NULL));
    assert_true(ruleset_recovers(rs, "letter"));
    assert_false(ruleset_recovers(rs, "miles"));
    assert_false(ruleset_recovers(rs, "greet"));
    assert_int_equal(ruleset_idempotency_window_ms(rs), 6 * HOUR_MS);
    assert_int_equal(ruleset_history_kept_ms(rs), 400 * 24 * HOUR_MS);
    arena_destroy(&a);
    ruleset_free(rs);
}

/* The effects of a decision: each recorded action with its index, the
 * incident it answers, whether it recovers, its letter; checked against
 * the decision. */
static void effects_of_a_decision(void **state)
{
    (void)state;
    ruleset *rs = fx_load(policy_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    fixture fx;
    policy_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    const facts *f = fx_facts(&fx);
    rule_hit hits[16];
    size_t n = ruleset_arbitrate(rs, f, hits, ruleset_match(rs, f, hits));
    Nba__V1__Decision d;
    nba__v1__decision__init(&d);
    assert_int_equal(ruleset_render(rs, f, hits, n, &a, &d), 0);
    assert_int_equal(d.n_actions, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(d.actions[i]->type, types_of_all[i]);

    ruleset_effect eff[8];
    size_t ne = 99;
    assert_int_equal(ruleset_effects(rs, f, hits, n, &d, eff, 8, &ne), 0);
    assert_int_equal(ne, 5); /* not the greeting */
    static const struct {
        size_t action;
        const char *type, *rule;
        bool incident, recovers, follow_up;
        const char *letter;
    } want[] = {
        {0, "upgrade", "recover", true, true, false, NULL},
        {1, "letter", "recover", true, true, true, "letter"},
        {2, "miles", "miles", true, false, true, "miles_note"},
        {3, "voucher", "vouchers", false, false, false, NULL},
        {4, "voucher", "vouchers", false, false, false, NULL},
    };
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(eff[i].action, want[i].action);
        assert_string_equal(eff[i].type, want[i].type);
        assert_ptr_equal(eff[i].type, d.actions[eff[i].action]->type);
        assert_string_equal(eff[i].rule_id, want[i].rule);
        if (want[i].incident)
            assert_ptr_equal(eff[i].incident, fx.incident_ptrs[0]);
        else
            assert_null(eff[i].incident);
        assert_int_equal(eff[i].recovers, want[i].recovers);
        assert_int_equal(eff[i].follow_up, want[i].follow_up);
        if (want[i].letter)
            assert_string_equal(eff[i].letter, want[i].letter);
        else
            assert_null(eff[i].letter);
    }
    /* room for too few: how many are needed */
    assert_int_equal(ruleset_effects(rs, f, hits, n, &d, eff, 2, &ne), -ENOSPC);
    assert_int_equal(ne, 5);
    /* a decision that does not come from these hits */
    Nba__V1__Decision other = d;
    other.n_actions = 5;
    assert_int_equal(ruleset_effects(rs, f, hits, n, &other, eff, 8, &ne), -EINVAL);
    assert_int_equal(ne, 0);
    Nba__V1__Action swapped = *d.actions[0];
    swapped.type = "note";
    Nba__V1__Action *acts[6];
    memcpy(acts, d.actions, sizeof acts);
    acts[0] = &swapped;
    other = d;
    other.actions = acts;
    assert_int_equal(ruleset_effects(rs, f, hits, n, &other, eff, 8, &ne), -EINVAL);
    swapped = *d.actions[0];
    swapped.rule_id = "apologise";
    assert_int_equal(ruleset_effects(rs, f, hits, n, &other, eff, 8, &ne), -EINVAL);
    assert_int_equal(ruleset_effects(rs, f, hits, n - 1, &d, eff, 8, &ne), -EINVAL);
    /* the same facts with a history: the hits no longer give that decision */
    history h = {0};
    hist_add(&h, &fx, "upgrade", NBA__V1__CHANNEL__KIOSK, 1 * HOUR_MS, "I-1");
    assert_int_equal(ruleset_effects(rs, fx_facts(&fx), hits, n, &d, eff, 8, &ne), -EINVAL);

    /* nothing recorded: no effect */
    fixture unknown;
    fx_init(&unknown, NBA__V1__CHANNEL__KIOSK, "checkin");
    f = fx_facts(&unknown);
    n = ruleset_arbitrate(rs, f, hits, ruleset_match(rs, f, hits));
    nba__v1__decision__init(&d);
    assert_int_equal(ruleset_render(rs, f, hits, n, &a, &d), 0);
    assert_int_equal(ruleset_effects(rs, f, hits, n, &d, eff, 0, &ne), 0);
    assert_int_equal(ne, 0);
    arena_destroy(&a);
    ruleset_free(rs);
}

/* The idempotency key: the customer and the parts the policy names,
 * length-prefixed, so no two events share one by accident. */
static void idempotency_key_is_unambiguous(void **state)
{
    (void)state;
    ruleset *rs = fx_load(policy_yaml);
    assert_non_null(rs);
    fixture fx;
    char key[128], other[128];
    policy_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    size_t len = ruleset_idempotency_key(rs, fx_facts(&fx), key, sizeof key);
    assert_string_equal(key, "3:C-1|5:kiosk|7:checkin|5:AZ610");
    assert_int_equal(len, strlen(key));
    /* the length without a buffer, and a cut key */
    assert_int_equal(ruleset_idempotency_key(rs, fx_facts(&fx), NULL, 0), len);
    char small[8];
    assert_int_equal(ruleset_idempotency_key(rs, fx_facts(&fx), small, sizeof small), len);
    assert_string_equal(small, "3:C-1|5");
    /* a context key not sent, and one sent empty, differ */
    fx_init(&fx, NBA__V1__CHANNEL__DESK, "checkin");
    ruleset_idempotency_key(rs, fx_facts(&fx), key, sizeof key);
    assert_string_equal(key, "3:C-1|4:desk|7:checkin|-");
    fx_context(&fx, "flight", "");
    ruleset_idempotency_key(rs, fx_facts(&fx), key, sizeof key);
    assert_string_equal(key, "3:C-1|4:desk|7:checkin|0:");
    /* no channel given */
    fx_init(&fx, NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED, "checkin");
    ruleset_idempotency_key(rs, fx_facts(&fx), key, sizeof key);
    assert_string_equal(key, "3:C-1|0:|7:checkin|-");
    /* parts that would read the same joined plainly */
    fx_init(&fx, NBA__V1__CHANNEL__DESK, "a|b");
    fx_context(&fx, "flight", "c");
    ruleset_idempotency_key(rs, fx_facts(&fx), key, sizeof key);
    fx_init(&fx, NBA__V1__CHANNEL__DESK, "a");
    fx_context(&fx, "flight", "b|c");
    ruleset_idempotency_key(rs, fx_facts(&fx), other, sizeof other);
    assert_string_not_equal(key, other);
    fx_init(&fx, NBA__V1__CHANNEL__DESK, "5:x|-");
    fx.event.customer_id = "";
    ruleset_idempotency_key(rs, fx_facts(&fx), key, sizeof key);
    assert_string_equal(key, "0:|4:desk|5:5:x|-|-");
    ruleset_free(rs);

    /* a ruleset without a key */
    rs = fx_load(HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n");
    assert_non_null(rs);
    strcpy(key, "x");
    assert_int_equal(ruleset_idempotency_key(rs, fx_facts(&fx), key, sizeof key), 0);
    assert_string_equal(key, "");
    assert_int_equal(ruleset_idempotency_window_ms(rs), 0);
    assert_int_equal(ruleset_history_kept_ms(rs), 0);
    assert_false(ruleset_records(rs, "a"));
    ruleset_free(rs);
}

/* Letters: subject, paragraphs as text and as HTML with every character
 * escaped, the same language fallback as messages. */
static void letters_render_text_and_html(void **state)
{
    (void)state;
    ruleset *rs = fx_load(policy_yaml);
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    fixture fx;
    policy_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    fx.customer.name = "Ann <b>\"O'Lee\"</b> & co";
    fx.incidents[0].note = "two\n\nlines";
    const facts *f = fx_facts(&fx);
    const Nba__V1__Incident *inc = fx.incident_ptrs[0];
    const char *subject, *text, *html;

    assert_int_equal(ruleset_render_letter(rs, f, inc, "letter", "en", &a, &subject, &text, &html),
                     0);
    assert_string_equal(subject, "Sorry about the delay & more <again>");
    assert_string_equal(text, "Dear Ann <b>\"O'Lee\"</b> & co,\n\n"
                              "We are sorry about the delay on flight AZ611.\n"
                              "Fish & chips <free>, said \"two\n\nlines\".\n\n"
                              "Yours,\nCustomer Relations");
    assert_string_equal(html,
                        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                        "<title>Sorry about the delay &amp; more &lt;again&gt;</title>\n"
                        "</head>\n<body>\n"
                        "<p>Dear Ann &lt;b&gt;&quot;O&#39;Lee&quot;&lt;/b&gt; &amp; co,</p>\n"
                        "<p>We are sorry about the delay on flight AZ611.<br>\n"
                        "Fish &amp; chips &lt;free&gt;, said &quot;two<br>\n<br>\n"
                        "lines&quot;.</p>\n"
                        "<p>Yours,<br>\nCustomer Relations</p>\n"
                        "</body>\n</html>\n");
    assert_string_equal(ruleset_letter_language(rs, f, "letter", "en"), "en");

    /* Italian: its own letter, labels in Italian; tags as decisions read them */
    fx.customer.name = "Anna";
    assert_int_equal(
        ruleset_render_letter(rs, f, inc, "letter", "it-IT", &a, &subject, &text, &html), 0);
    assert_string_equal(subject, "Ci scusiamo per il ritardo");
    assert_string_equal(text, "Gentile Anna,\n\nci scusiamo per il ritardo (it).");
    assert_non_null(strstr(html, "<html lang=\"it\">"));
    /* no language given: the customer's (here: it) */
    fx.customer.language = "it";
    assert_int_equal(ruleset_render_letter(rs, f, inc, "letter", NULL, &a, &subject, &text, &html),
                     0);
    assert_string_equal(subject, "Ci scusiamo per il ritardo");
    assert_string_equal(ruleset_letter_language(rs, f, "letter", NULL), "it");
    /* a body written in one line with \n escapes */
    assert_int_equal(
        ruleset_render_letter(rs, f, inc, "letter", "zh-Hant", &a, &subject, &text, &html), 0);
    assert_string_equal(text, "Anna 您好：\n\n我們深表歉意。");
    /* no Simplified Chinese letter: the English one, labels in English too */
    assert_int_equal(
        ruleset_render_letter(rs, f, inc, "letter", "zh-Hans", &a, &subject, &text, &html), 0);
    assert_string_equal(subject, "Sorry about the delay & more <again>");
    assert_non_null(strstr(html, "<html lang=\"en\">"));
    assert_string_equal(ruleset_letter_language(rs, f, "letter", "zh-Hans"), "en");
    /* a value cannot break the subject's line */
    fx.incidents[0].kind = "x\r\nBcc: someone";
    assert_int_equal(ruleset_render_letter(rs, f, inc, "letter", "en", &a, &subject, &text, &html),
                     0);
    assert_string_equal(subject, "Sorry about x  Bcc: someone & more <again>");
    assert_non_null(strstr(html, "<title>Sorry about x  Bcc: someone &amp; more"));
    fx.incidents[0].kind = "delay";
    /* no incident: its placeholders render as nothing */
    assert_int_equal(ruleset_render_letter(rs, f, NULL, "letter", "en", &a, &subject, &text, &html),
                     0);
    assert_string_equal(subject, "Sorry about  & more <again>");
    /* no such letter: the outputs are left alone */
    subject = text = html = "unchanged";
    assert_int_equal(ruleset_render_letter(rs, f, inc, "greet", "en", &a, &subject, &text, &html),
                     -ENOENT);
    assert_int_equal(ruleset_render_letter(rs, f, inc, NULL, "en", &a, &subject, &text, &html),
                     -ENOENT);
    assert_string_equal(subject, "unchanged");
    assert_null(ruleset_letter_language(rs, f, "greet", "en"));
    arena_destroy(&a);
    ruleset_free(rs);
}

/* `rules check` on policies and letters: errors with the nearest name,
 * warnings for what is probably not meant. */
static void policy_and_letter_checks(void **state)
{
    (void)state;
    char buf[8192];
    static const struct {
        const char *yaml;
        const char *want;
    } cases[] = {
        {HEAD "policy: { record: { upgrad: {} } }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: upgrade}]}\n",
         "5:21: warning: policy records action type 'upgrad', but no rule gives it | did you "
         "mean 'upgrade'?"},
        {HEAD "policy: { record: { a: { once_per: incidnet } } }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "5:36: error: 'once_per' must be 'incident' or a duration such as 30d | did you mean "
         "'incident'?"},
        {HEAD "policy: { record: { a: { once_per: 30 } } }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "error: 'once_per' must be a duration such as 30d, 12h or 1h30m (write the unit)"},
        {HEAD "policy: { record: [a], caps: [{ action: b, max: 1, per: 1d }] }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}, {action: b}]}\n",
         "5:41: error: a cap counts recorded actions, and 'b' is not under 'record'"},
        {HEAD "policy: { record: [a], caps: [{ channel: kisok, max: 1, per: 1d }] }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "error: unknown channel 'kisok' | did you mean 'kiosk'?"},
        {HEAD "policy: { record: [a], caps: [{ max: 0, per: 1d }] }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "error: 'max' must be at least 1"},
        {HEAD "policy: { record: [a], caps: [{ max: 1, pre: 1d }] }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "error: unknown key 'pre' in a cap | did you mean 'per'?"},
        {HEAD "policy: { idempotency: { key: [chanel, context.flight] } }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "5:32: error: unknown event field 'chanel' | did you mean 'channel'?"},
        {HEAD "policy: { idempotency: { key: [time] } }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "error: a retried event is sent again later, so its time differs"},
        {HEAD "context: [flight]\npolicy: { idempotency: { key: [context.fligth] } }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "error: unknown context key 'fligth' | did you mean 'flight'?"},
        {HEAD "policy: { idempotency: { key: [touchpoint], window: soon } }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "error: 'window' must be a duration such as 30d, 12h or 1h30m"},
        {HEAD "policy: { record: [a], keep_history: forever }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "error: 'keep_history' must be a duration such as 30d, 12h or 1h30m"},
        {HEAD "policy:\n  record: [a]\n  caps: [{ max: 2, per: 365d }]\n  keep_history: 90d\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "8:17: error: 'keep_history' is shorter than the window of a cap (line 7): the cap "
         "would count only what is kept"},
        {HEAD "policy: { record: { a: { once_per: 30d } }, keep_history: 7d }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "error: 'keep_history' is shorter than the 'once_per' window of a: it would hold back "
         "only what is kept"},
        {HEAD "policy: { record: { a: { once_per: 30d } }, keep_histroy: 400d }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         "error: unknown key 'keep_histroy' in 'policy' | did you mean 'keep_history'?"},
        {HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\npolicy: { record: [a] }\n",
         ""},
        /* letters */
        {HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a, letter: leter}]}\n"
              "letters:\n  letter: { en: { subject: S, body: B } }\n",
         "6:54: error: unknown letter 'leter' in 'letter' | did you mean 'letter'?"},
        {HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n"
              "letters:\n  a: { en: { subject: \"S\\nT\", body: B } }\n",
         "8:25: error: a subject is one line"},
        {HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n"
              "letters:\n  a: { en: { subject: S, body: \"\" } }\n",
         "error: a letter's body needs text"},
        {HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n"
              "letters:\n  a: { it: { subject: S, body: B } }\n",
         "8:3: error: letter 'a' has no text in the default language 'en'"},
        {HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n"
              "letters:\n  a: { en: { subject: S, body: \"{{customer.nmae}}\" } }\n",
         "error: unknown customer field 'nmae' | did you mean 'name'?"},
        {HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n"
              "letters:\n  a: { en: { subjet: S, body: B } }\n",
         "error: unknown key 'subjet' in a letter | did you mean 'subject'?"},
        {HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n"
              "letters:\n  b: { en: { subject: S, body: B } }\n",
         "8:3: warning: letter 'b' is never sent: no action is of type 'b' or names it with "
         "'letter:'"},
        {HEAD "policy: { record: [a] }\nrules:\n  - {id: r, when: 'true', then: [{action: a}]}\n"
              "letters:\n  a: { en: { subject: S, body: B }, it: { subject: S, body: B } }\n",
         "warning: letter 'a' has no text in zh-Hant, zh-Hans: passengers served in those "
         "languages get the 'en' letter"},
        {HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a, letter: b}]}\n"
              "letters:\n  b: { en: { subject: S, body: B } }\n",
         "8:3: warning: letter 'b' is never sent: letters go out for the actions the policy "
         "records, and 'a' is not one | list 'a' under 'policy: record:'"},
        {HEAD "policy: { record: [a] }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a, follow_up: true}]}\n",
         "7:34: warning: action 'a' of rule 'r' is recorded and done after the contact, but "
         "sends no letter | add a letter 'a' under 'letters:', or name one with 'letter:'"},
        {HEAD "policy: { record: [a] }\n"
              "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n",
         ""},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        problems(cases[i].yaml, buf, sizeof buf);
        if (cases[i].want && !strstr(buf, cases[i].want))
            print_error("case %zu: expected\n  %s\nin\n%s", i, cases[i].want, buf), failures++;
        if (cases[i].want && !cases[i].want[0] && buf[0])
            print_error("case %zu: expected no problem, got\n%s", i, buf), failures++;
    }
    assert_int_equal(failures, 0);
    /* a policy belongs in the main file; letters may be in a part */
    ruleset_text parts[2] = {
        {"main.yaml", HEAD "rules:\n  - {id: r, when: 'true', then: [{action: a}]}\n", 0},
        {"part.yaml", "policy: { record: [a] }\nletters:\n  a: { en: { subject: S, body: B } }\n",
         0},
    };
    parts[0].len = strlen(parts[0].text);
    parts[1].len = strlen(parts[1].text);
    ruleset *rs = NULL;
    int rc;
    ruleset_diags *d = compile_texts(parts, 2, &rs, &rc);
    assert_int_equal(rc, -EINVAL);
    char line[600];
    bool found = false;
    for (size_t i = 0; i < ruleset_diags_count(d); i++) {
        diag_line(d, i, line, sizeof line);
        found |=
            strstr(line, "part.yaml:1:1: error: 'policy' belongs in the main rule file") != NULL;
    }
    assert_true(found);
    ruleset_diags_free(d);
    parts[1].text = "letters:\n  a: { en: { subject: S, body: B } }\n";
    parts[1].len = strlen(parts[1].text);
    d = compile_texts(parts, 2, &rs, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(rs);
    ruleset_diags_free(d);
    ruleset_free(rs);
}

/* The shipped rules close the loop: the kiosk records, the desk confirms. */
static void shipped_rules_recovery_loop(void **state)
{
    (void)state;
    ruleset *rs = shipped();
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    fixture fx;
    blueprint_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    const facts *f = fx_facts(&fx);
    rule_hit hits[64];
    size_t n = ruleset_arbitrate(rs, f, hits, ruleset_match(rs, f, hits));
    Nba__V1__Decision d;
    nba__v1__decision__init(&d);
    assert_int_equal(ruleset_render(rs, f, hits, n, &a, &d), 0);
    char got[256];
    assert_string_equal(types_of(&d, got, sizeof got),
                        "upgrade apology_letter set_language goodwill_miles greet");
    ruleset_effect eff[8];
    size_t ne;
    assert_int_equal(ruleset_effects(rs, f, hits, n, &d, eff, 8, &ne), 0);
    assert_int_equal(ne, 3);
    assert_string_equal(eff[0].type, "upgrade");
    assert_true(eff[0].recovers);
    assert_null(eff[0].letter);
    assert_string_equal(eff[1].letter, "apology_letter_upgrade");
    assert_string_equal(eff[2].letter, "goodwill_miles");
    const char *subject, *text, *html;
    assert_int_equal(ruleset_render_letter(rs, f, eff[1].incident, eff[1].letter, d.language, &a,
                                           &subject, &text, &html),
                     0);
    assert_string_equal(subject,
                        "Le nostre scuse per il suo volo AZ610, e il suo upgrade in prima classe");
    assert_non_null(strstr(text, "Gentile Maria Rossi,\n\nci scusiamo sinceramente per il sistema "
                                 "di intrattenimento di bordo guasto durante il suo volo AZ610"));
    assert_non_null(strstr(html, "<p>Cordiali saluti,<br>\nRelazioni con la clientela</p>"));
    char key[128];
    ruleset_idempotency_key(rs, f, key, sizeof key);
    assert_string_equal(key, "3:C-1|5:kiosk|7:checkin|5:AZ611");

    /* the daemon records them; then the passenger goes to the desk */
    history h = {0};
    for (size_t i = 0; i < ne; i++) {
        hist_add(&h, &fx, eff[i].type, NBA__V1__CHANNEL__KIOSK, 20 * 60000,
                 eff[i].incident->incident_id);
        Nba__V1__HistoryEntry *e = &h.entries[i];
        static Nba__V1__HistoryEntry__ParamsEntry cabin;
        static Nba__V1__HistoryEntry__ParamsEntry *cabin_ptr = &cabin;
        static Nba__V1__HistoryEntry__ContextEntry flight;
        static Nba__V1__HistoryEntry__ContextEntry *flight_ptr = &flight;
        nba__v1__history_entry__params_entry__init(&cabin);
        cabin.key = "cabin";
        cabin.value = "F";
        nba__v1__history_entry__context_entry__init(&flight);
        flight.key = "flight";
        flight.value = "AZ611";
        e->params = &cabin_ptr;
        e->n_params = 1;
        e->context = &flight_ptr;
        e->n_context = 1;
        if (eff[i].recovers)
            fx.incidents[0].recovered_by = (char *)eff[i].type;
    }
    fx.event.channel = NBA__V1__CHANNEL__DESK;
    assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
    assert_string_equal(types_of(&d, got, sizeof got), "upgrade_confirmed set_language greet");
    assert_non_null(strstr(fx_action(&d, "upgrade_confirmed")->message, "AZ611"));
    arena_destroy(&a);
    ruleset_free(rs);
}

/* ---- threads, allocations, speed ---- */

typedef struct worker {
    const ruleset *rs;
    const char *expect;
    int failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    arena a;
    if (arena_init(&a, 16384) != 0) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < 2000; i++) {
        fixture fx;
        blueprint_passenger(&fx, NBA__V1__CHANNEL__DESK);
        Nba__V1__Decision d;
        const Nba__V1__Action *up;
        if (fx_decide(w->rs, &fx, &a, &d) != 0 || !(up = fx_action(&d, "upgrade")) ||
            strcmp(up->message, w->expect) != 0)
            w->failures++;
        arena_reset(&a);
    }
    arena_destroy(&a);
    return NULL;
}

/* A compiled ruleset is shared by worker threads without locks. */
static void shared_between_threads(void **state)
{
    (void)state;
    ruleset *rs = shipped();
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    fixture fx;
    blueprint_passenger(&fx, NBA__V1__CHANNEL__DESK);
    Nba__V1__Decision d;
    assert_int_equal(fx_decide(rs, &fx, &a, &d), 0);
    const Nba__V1__Action *up = fx_action(&d, "upgrade");
    assert_non_null(up);
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.rs = rs, .expect = up->message};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    arena_destroy(&a);
    ruleset_free(rs);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Steady state: a decision allocates nothing outside the arena, and fits
 * the arena's first block; nor do its effects and idempotency key, with a
 * contact history for the policy to read. Prints the time per decision. */
static void decisions_do_not_allocate(void **state)
{
    (void)state;
    ruleset *rs = shipped();
    assert_non_null(rs);
    arena a;
    assert_int_equal(arena_init(&a, 16384), 0);
    fixture fx;
    blueprint_passenger(&fx, NBA__V1__CHANNEL__KIOSK);
    /* earlier contacts the policy weighs: miles for other incidents, a
     * voucher */
    history h = {0};
    hist_add(&h, &fx, "goodwill_miles", NBA__V1__CHANNEL__DESK, 200 * FX_DAY_MS, "INC-1");
    hist_add(&h, &fx, "meal_voucher", NBA__V1__CHANNEL__KIOSK, 3 * FX_DAY_MS, "INC-5");
    hist_add(&h, &fx, "upgrade", NBA__V1__CHANNEL__KIOSK, 3 * FX_DAY_MS, "INC-5");
    Nba__V1__Decision d;
    assert_int_equal(fx_decide(rs, &fx, &a, &d), 0); /* warm */
    arena_reset(&a);

    int rounds = 20000;
    size_t before = alloc_calls;
    double t0 = now_ns();
    const facts *f = fx_facts(&fx);
    rule_hit hits[64];
    ruleset_effect eff[8];
    char key[128];
    for (int i = 0; i < rounds; i++) {
        size_t n = ruleset_arbitrate(rs, f, hits, ruleset_match(rs, f, hits));
        nba__v1__decision__init(&d);
        assert_int_equal(ruleset_render(rs, f, hits, n, &a, &d), 0);
        assert_int_equal(d.n_actions, 5); /* upgrade, letter, language, miles, greeting */
        size_t ne;
        assert_int_equal(ruleset_effects(rs, f, hits, n, &d, eff, 8, &ne), 0);
        assert_int_equal(ne, 3);
        assert_true(ruleset_idempotency_key(rs, f, key, sizeof key) < sizeof key);
        assert_true(a.used_total < a.block_size);
        arena_reset(&a);
    }
    double per = (now_ns() - t0) / rounds;
    assert_int_equal(alloc_calls - before, 0);

    /* match alone, the part that runs for every rule */
    t0 = now_ns();
    size_t total = 0;
    for (int i = 0; i < rounds; i++)
        total += ruleset_match(rs, f, hits);
    double per_match = (now_ns() - t0) / rounds;
    assert_int_equal(total, (size_t)rounds * 5);
    print_message("match+arbitrate+render+effects+key: %.0f ns/decision; match: %.0f ns (%s "
                  "build)\n",
                  per, per_match,
#if defined(__SANITIZE_ADDRESS__) || !defined(__OPTIMIZE__)
                  "unoptimised or sanitised"
#else
                  "optimised"
#endif
    );
    arena_destroy(&a);
    ruleset_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compile_errors),
        cmocka_unit_test(compile_error_format),
        cmocka_unit_test(nesting_limit),
        cmocka_unit_test(bom_and_crlf),
        cmocka_unit_test(load_file_errors),
        cmocka_unit_test(ruleset_identity),
        cmocka_unit_test(every_error_is_reported),
        cmocka_unit_test(error_flood_is_bounded),
        cmocka_unit_test(files_compose_one_ruleset),
        cmocka_unit_test(composition_errors),
        cmocka_unit_test(include_reads_parts_from_disk),
        cmocka_unit_test(live_reload_of_several_files),
        cmocka_unit_test(arbitration_orders_and_excludes),
        cmocka_unit_test(max_actions_and_channels),
        cmocka_unit_test(groups_limits_and_capabilities),
        cmocka_unit_test(decision_tables_decide),
        cmocka_unit_test(decision_table_checks),
        cmocka_unit_test(table_and_shared_conditions_pick_incidents),
        cmocka_unit_test(language_choice),
        cmocka_unit_test(action_language_switch),
        cmocka_unit_test(render_per_channel_and_language),
        cmocka_unit_test(labels_translate_values),
        cmocka_unit_test(placeholders_use_the_hits_incident),
        cmocka_unit_test(decision_encodes_while_ruleset_held),
        cmocka_unit_test(shipped_rules_blueprint),
        cmocka_unit_test(shipped_rules_scenarios),
        cmocka_unit_test(shipped_rules_chinese_scripts),
        cmocka_unit_test(analyses_warn),
        cmocka_unit_test(explain_the_blueprint_passenger),
        cmocka_unit_test(explain_arbitration),
        cmocka_unit_test(policy_holds_back_and_caps),
        cmocka_unit_test(effects_of_a_decision),
        cmocka_unit_test(idempotency_key_is_unambiguous),
        cmocka_unit_test(letters_render_text_and_html),
        cmocka_unit_test(policy_and_letter_checks),
        cmocka_unit_test(shipped_rules_recovery_loop),
        cmocka_unit_test(shared_between_threads),
        cmocka_unit_test(decisions_do_not_allocate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
