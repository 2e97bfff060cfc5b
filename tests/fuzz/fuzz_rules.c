/* fuzz_rules - the rule-file compiler: YAML, conditions, decision tables,
 * placeholders, messages, labels, the checks behind `nbactl rules check`,
 * and the composition of several files into one ruleset.
 *
 * The input is split at its 0xFF bytes (never part of UTF-8 text) into at
 * most four files: the main file, then parts. A single file goes through
 * ruleset_load_buffer() as nbad's reload does; every input goes through
 * ruleset_compile_texts() with a list of problems, each formatted as ops
 * staff see it. A ruleset that compiles is evaluated against a few fixed
 * sets of facts (match, arbitrate, render into an arena, as the decider
 * does) and explained (ruleset_explain), so the evaluator, the renderer and
 * the explainer are fuzzed with every ruleset the compiler accepts.
 *
 * Checked: a refused file comes with a positioned error in a file that was
 * given; a compiled ruleset has a "name@version+hash" id, its files and an
 * id per rule; match and arbitration stay within the rule count; rendering
 * succeeds and gives a decision that names its ruleset, has a language, and
 * packs and decodes; the explanation traces every rule and holds exactly
 * that decision. Use tests/fuzz/rules.dict as -dict=. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "fuzz_util.h"
#include "nba.pb-c.h"
#include "rules_fixture.h"
#include "ruleset.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_FACTS = 4 };
static fixture fixtures[N_FACTS];
static arena render_arena;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (arena_init(&render_arena, 4096) != 0)
        fuzz_fail("out of memory");

    /* The passenger of the shipped scenario: valuable, Italian, a broken
     * screen ten days ago, checking in at a kiosk in economy. */
    fixture *fx = &fixtures[0];
    fx_init(fx, NBA__V1__CHANNEL__KIOSK, "checkin");
    fx_context(fx, "cabin", "Y");
    fx_context(fx, "flight", "AZ610");
    fx_context(fx, "utc_offset", "+01:00");
    fx_context(fx, "party_size", "3");
    fx_context(fx, "departs", "2026-09-21T18:00:00Z");
    fx_context(fx, "lounge_open", "yes");
    fx_customer(fx, "Giulia Rossi", "platinum", 86500, 48000, "it");
    /* Sorted by name, as the loader stores them. */
    fx_attr(fx, "home_airport", "FCO", false, 0);
    fx_attr(fx, "member_since", "2019-05-01", false, 0);
    fx_attr(fx, "miles_ytd", "52000", true, 52000);
    fx_attr(fx, "newsletter", "Y", false, 0);
    fx_attr(fx, "segment", "corporate", false, 0);
    fx_attr(fx, "tags", "7", true, 7);
    fx_incident(fx, "INC-1", "ife_broken", 3, 10, false, "AZ611");
    fx_incident(fx, "INC-2", "delay", 5, 400, true, "");
    fx_incident(fx, "INC-3", "lost_baggage", 1, 0, false, "AZ610");

    /* An unknown caller on the phone who picked Traditional Chinese. */
    fx = &fixtures[1];
    fx_init(fx, NBA__V1__CHANNEL__IVR, "call");
    fx->event.language = "zh-TW";

    /* A known passenger at a desk, no incidents, language picked there. */
    fx = &fixtures[2];
    fx_init(fx, NBA__V1__CHANNEL__DESK, "boarding");
    fx->event.language = "it-IT";
    fx_customer(fx, "陳美玲", "gold", 30500, 41000, "zh-Hant-HK");
    fx_attr(fx, "miles_ytd", "n/a", false, 0);

    /* A contact point that did not say its channel; odd data everywhere. */
    fx = &fixtures[3];
    fx_init(fx, NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED, "");
    fx->event.location = "";
    fx_context(fx, "cabin", "");
    fx_context(fx, "utc_offset", "-99:99");
    fx_context(fx, "party_size", "three");
    fx_context(fx, "departs", "2026-02-30");
    fx_customer(fx, "", "", -1, 1e300, "x-klingon");
    fx_attr(fx, "member_since", "yesterday", false, 0);
    fx_attr(fx, "newsletter", "", false, 0);
    fx_incident(fx, "INC-9", "", 0, -3, false, "");
    return 0;
}

/* Packs a decision as the decider would into a response; every string must
 * be there and every pointer valid. Returns the bytes, in the arena. */
static uint8_t *pack_decision(const Nba__V1__Decision *d, size_t *len)
{
    size_t size = protobuf_c_message_get_packed_size(&d->base);
    uint8_t *buf = arena_alloc(&render_arena, size + 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    size_t packed = protobuf_c_message_pack(&d->base, buf);
    FUZZ_CHECK(packed == size, "packed %zu bytes of %zu", packed, size);
    Nba__V1__Decision *again =
        nba__v1__decision__unpack(arena_pb_allocator(&render_arena), packed, buf);
    FUZZ_CHECK(again != NULL && again->n_actions == d->n_actions,
               "a rendered decision does not decode as itself");
    *len = packed;
    return buf;
}

static void decide(const ruleset *rs, fixture *fx)
{
    const facts *f = fx_facts(fx);
    size_t count = ruleset_rule_count(rs);
    rule_hit *hits = arena_alloc(&render_arena, (count + 1) * sizeof *hits);
    FUZZ_CHECK(hits != NULL, "out of memory");

    size_t matched = ruleset_match(rs, f, hits);
    FUZZ_CHECK(matched <= count, "%zu hits from %zu rules", matched, count);
    size_t kept = ruleset_arbitrate(rs, f, hits, matched);
    FUZZ_CHECK(kept <= matched, "arbitration kept %zu of %zu hits", kept, matched);

    Nba__V1__Decision d;
    nba__v1__decision__init(&d);
    int rc = ruleset_render(rs, f, hits, kept, &render_arena, &d);
    FUZZ_CHECK(rc == 0, "ruleset_render failed: %d", rc);
    FUZZ_CHECK(d.ruleset && strcmp(d.ruleset, ruleset_id(rs)) == 0,
               "the decision does not name its ruleset");
    FUZZ_CHECK(d.language && *d.language, "a decision without a language");

    d.customer_id = fx->event.customer_id;
    d.known = f->customer != NULL;
    size_t len;
    const uint8_t *bytes = pack_decision(&d, &len);

    /* The explanation holds exactly the decision a contact would get. */
    Nba__V1__Explanation ex;
    nba__v1__explanation__init(&ex);
    rc = ruleset_explain(rs, f, &render_arena, &ex);
    FUZZ_CHECK(rc == 0, "ruleset_explain failed: %d", rc);
    FUZZ_CHECK(ex.n_rules == count, "%zu rule traces for %zu rules", ex.n_rules, count);
    for (size_t i = 0; i < ex.n_rules; i++)
        FUZZ_CHECK(ex.rules[i]->rule_id &&
                       strcmp(ex.rules[i]->rule_id, ruleset_rule_id(rs, i)) == 0,
                   "trace %zu is not of rule '%s'", i, ruleset_rule_id(rs, i));
    FUZZ_CHECK(ex.decision != NULL, "an explanation without its decision");
    size_t ex_len;
    const uint8_t *ex_bytes = pack_decision(ex.decision, &ex_len);
    FUZZ_CHECK(ex_len == len && memcmp(ex_bytes, bytes, len) == 0,
               "the explanation's decision differs from the decision");
}

enum { MAX_TEXTS = 4 };

/* A compiled ruleset: its identity, then every set of facts. */
static void evaluate(const ruleset *rs, size_t n_texts)
{
    const char *id = ruleset_id(rs);
    FUZZ_CHECK(id && strchr(id, '@') && strchr(id, '+'), "ruleset id '%s' is not name@version+hash",
               id ? id : "(null)");
    FUZZ_CHECK(ruleset_file_count(rs) == n_texts, "%zu files compose a ruleset of %zu",
               ruleset_file_count(rs), n_texts);
    for (size_t i = 0; i < ruleset_rule_count(rs); i++)
        FUZZ_CHECK(ruleset_rule_id(rs, i) && *ruleset_rule_id(rs, i), "rule %zu has no id", i);
    for (size_t i = 0; i < N_FACTS; i++) {
        arena_reset(&render_arena);
        decide(rs, &fixtures[i]);
    }
    arena_reset(&render_arena);
}

static const char *const text_names[MAX_TEXTS] = {"fuzz.yaml", "part1.yaml", "part2.yaml",
                                                  "part3.yaml"};

static bool given(const char *file, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (file && strcmp(file, text_names[i]) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ruleset_text texts[MAX_TEXTS];
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < MAX_TEXTS; i++) {
        if (i == size || (data[i] == 0xFF && n + 1 < MAX_TEXTS)) {
            texts[n] = (ruleset_text){text_names[n], (const char *)data + start, i - start};
            n++;
            start = i + 1;
            if (i == size)
                break;
        }
    }

    ruleset_diags *diags;
    FUZZ_CHECK(ruleset_diags_new(&diags) == 0, "out of memory");
    ruleset *rs = NULL;
    int rc = ruleset_compile_texts(texts, n, &rs, diags);
    size_t count = ruleset_diags_count(diags);
    /* Every problem kept is an error or a warning; past the list's cap
     * (ruleset.h) problems are counted without being kept. */
    FUZZ_CHECK(ruleset_diags_errors(diags) + ruleset_diags_warnings(diags) >= count,
               "problems are neither errors nor warnings");
    char line[4096];
    for (size_t i = 0; i < count; i++) {
        const ruleset_diag *d = ruleset_diags_get(diags, i);
        FUZZ_CHECK(d && d->message && given(d->file, n), "problem %zu of an unknown file", i);
        size_t need = ruleset_diag_format(d, line, sizeof line);
        FUZZ_CHECK(strlen(line) == (need < sizeof line ? need : sizeof line - 1),
                   "a formatted problem of %zu bytes needed %zu", strlen(line), need);
        char small[16];
        FUZZ_CHECK(ruleset_diag_format(d, small, sizeof small) == need,
                   "formatting into less room needs another length");
    }
    if (rc != 0) {
        FUZZ_CHECK(rc < 0 && rs == NULL, "a refused file gives rc %d", rc);
        FUZZ_CHECK(rc == -ENOMEM || ruleset_diags_errors(diags) > 0,
                   "a refused file (rc %d) without an error", rc);
    } else {
        FUZZ_CHECK(rs != NULL, "a compiled file without a ruleset");
        FUZZ_CHECK(ruleset_diags_errors(diags) == 0, "a compiled file with errors");
    }
    ruleset_diags_free(diags);

    if (n == 1) {
        /* What nbad prints when it refuses a rule file. */
        ruleset *again = NULL;
        nba_error err;
        err.msg[0] = '\0';
        int rc1 = ruleset_load_buffer(text_names[0], texts[0].text, texts[0].len, &again, &err);
        FUZZ_CHECK(rc1 == rc, "ruleset_load_buffer gives %d, ruleset_compile_texts %d", rc1, rc);
        if (rc1 != 0)
            FUZZ_CHECK(strncmp(err.msg, "fuzz.yaml:", 10) == 0, "an error without its position: %s",
                       err.msg);
        else
            FUZZ_CHECK(strcmp(ruleset_id(again), ruleset_id(rs)) == 0,
                       "the same file compiles to two ids");
        ruleset_free(again);
    }
    if (rs)
        evaluate(rs, n);
    ruleset_free(rs);
    return 0;
}
