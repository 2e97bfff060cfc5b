/* fuzz_rules - the rule-file compiler: YAML, conditions, placeholders,
 * messages and labels, through ruleset_load_buffer(). A rule file that
 * compiles is then evaluated against a few fixed sets of facts (match,
 * arbitrate, render into an arena, as the decider does), so the evaluator
 * and the renderer are fuzzed with every ruleset the compiler accepts.
 *
 * Checked: a refused file comes with a positioned message; a compiled
 * ruleset has an id; match and arbitration stay within the rule count;
 * rendering succeeds and gives a decision that names its ruleset and packs
 * and decodes as protobuf. Use tests/fuzz/rules.dict as -dict=. */
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
    fx_customer(fx, "Giulia Rossi", "platinum", 86500, 48000, "it");
    fx_attr(fx, "home_airport", "FCO", false, 0);
    fx_attr(fx, "miles_ytd", "52000", true, 52000);
    fx_attr(fx, "segment", "corporate", false, 0);
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
    fx_customer(fx, "", "", -1, 1e300, "x-klingon");
    fx_incident(fx, "INC-9", "", 0, -3, false, "");
    return 0;
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

    /* The decider packs every decision into a response: every string must
     * be there and every pointer valid. */
    d.customer_id = fx->event.customer_id;
    d.known = f->customer != NULL;
    size_t size = protobuf_c_message_get_packed_size(&d.base);
    uint8_t *buf = arena_alloc(&render_arena, size + 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    size_t packed = protobuf_c_message_pack(&d.base, buf);
    FUZZ_CHECK(packed == size, "packed %zu bytes of %zu", packed, size);
    Nba__V1__Decision *again =
        nba__v1__decision__unpack(arena_pb_allocator(&render_arena), packed, buf);
    FUZZ_CHECK(again != NULL && again->n_actions == d.n_actions,
               "a rendered decision does not decode as itself");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ruleset *rs = NULL;
    nba_error err;
    err.msg[0] = '\0';
    int rc = ruleset_load_buffer("fuzz.yaml", (const char *)data, size, &rs, &err);
    if (rc != 0) {
        FUZZ_CHECK(rc < 0 && rs == NULL, "a refused file gives rc %d", rc);
        FUZZ_CHECK(strncmp(err.msg, "fuzz.yaml:", 10) == 0, "an error without its position: %s",
                   err.msg);
        return 0;
    }
    FUZZ_CHECK(rs != NULL, "a compiled file without a ruleset");
    const char *id = ruleset_id(rs);
    FUZZ_CHECK(id && strchr(id, '@'), "ruleset id '%s' is not name@version", id ? id : "(null)");
    for (size_t i = 0; i < N_FACTS; i++) {
        arena_reset(&render_arena);
        decide(rs, &fixtures[i]);
    }
    arena_reset(&render_arena);
    ruleset_free(rs);
    return 0;
}
