/* nbabench - what the hot parts of a decision cost alone, in ns per
 * operation, in this process, without the network.
 *
 *   nbabench [--db DIR] [--customers N] [--rules FILE] [--time S] [--runs N]
 *            [--filter TEXT] [--no-state | --state DIR] [--map-size BYTES] [--json]
 *
 * With --db, the database nbactl load built from nbagen's extracts of
 * --customers customers (the ids both tools derive from that count); without
 * it, nbabench builds a database of --customers synthetic customers in a
 * temporary directory and removes it at the end. The contact events are
 * nbaload's (workload.h, same defaults: Zipf 0.99 popularity, 2% unknown
 * customers, kiosk 50% desk 30% ivr 20%), so the mix of facts the rules see
 * is the one the load test sends.
 *
 * Each case runs --runs times for --time/--runs seconds after a calibration
 * and reports the median ns per operation, with the fastest and slowest run.
 * The cases:
 *
 *   frame.decode_request    nba.v1.Request body -> message in the arena
 *                           (wire.h, as nbad does; then protobuf-c's unpack)
 *   frame.encode_response   decision Response -> frame, sized then packed
 *                           (wire.h, as nbad does; then protobuf-c's pack)
 *   store.snapshot          read transaction renewed and reset
 *   store.lookup_customer   snapshot + customer alone, the events' mix
 *   store.lookup            snapshot + customer + incidents, the events' mix
 *   store.lookup_uniform    the same, every customer equally likely (cold)
 *   rules.match             every rule's condition, the whole ruleset
 *   rules.match[<id>]       one rule alone (a ruleset of just that rule), and
 *                           one decision table alone (all its rows)
 *   rules.arbitrate         priority order, groups, limits
 *   rules.render            language, actions, messages
 *   rules.decide            match + arbitrate + render
 *   state.snapshot          the state's read transaction renewed and reset
 *   state.lookup            snapshot + what the state holds about the
 *                           event's customer
 *   policy.idempotency_key  the event's idempotency key
 *   policy.effects          what a decision would record
 *   decider.decide          decider_decide: facts from LMDB, then the rules
 *   decider.handle          decode + decide + Response: decider_handle
 *   decider.handle_encode   decider_handle + the answer frame, the work
 *                           nbad times per decision apart from its buffers
 *
 * The decider reads a state as nbad's workers do: an empty one of its own,
 * or with --state the state directory of a database root that nbad has
 * written to (DB/state, copied aside: nbabench only reads it), where some
 * of the events' customers have a history; --no-state leaves it out (and
 * the state.* cases), for what a decision costs without one. --map-size
 * maps the database smaller than LMDB's default 64 GiB, which valgrind
 * cannot map.
 *
 * Nothing is asserted: the numbers are for reading and comparing.
 *
 * Exit codes: 0 done, 64 usage, 66 no such database or rule file, 70 a
 * failure.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "arena.h"
#include "clock.h"
#include "customer_id.h"
#include "decider.h"
#include "facts.h"
#include "frame.h"
#include "policy.h"
#include "rng.h"
#include "rules_live.h"
#include "ruleset.h"
#include "state.h"
#include "store.h"
#include "store_live.h"
#include "wire.h"
#include "workload.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_USAGE = 64,
    EXIT_NOINPUT = 66,
    EXIT_SOFTWARE = 70,
};

#define DEFAULT_RULES "rules/airline-checkin.yaml"
#define EVENTS        4096 /* distinct contact events the cases cycle through */
#define CALIBRATE_NS  (5ull * 1000 * 1000)
#define MAX_RULES     64
#define MAX_CASES     (24 + MAX_RULES)

typedef struct options {
    const char *db;
    const char *rules;
    uint64_t customers;
    double seconds; /* per case, all runs together */
    int runs;
    const char *filter;
    bool json;
    bool no_state;     /* the decider reads no state */
    const char *state; /* NULL: an empty state of its own */
    size_t map_size;   /* 0: LMDB's default */
} options;

/* One ruleset of a single rule of the shipped file, for rules.match[<id>]. */
typedef struct single_rule {
    char name[96];
    ruleset *rs;
} single_rule;

/* Everything the cases need, prepared before any is timed. */
typedef struct bench {
    store *st;
    store_reader *reader;
    ruleset *rs;
    rules_live *live;
    decider *dec;
    arena scratch; /* reset before every operation that allocates */
    arena keep;    /* the prepared events, facts and answers */

    size_t n;                            /* events */
    const uint8_t **body;                /* encoded Request of event i */
    size_t *body_len;                    /* its length */
    Nba__V1__ContactEvent **event;       /* decoded, in keep */
    facts *facts;                        /* event i's facts, in keep */
    rule_hit **hits;                     /* matched and arbitrated, in keep */
    size_t *n_hits;                      /* how many */
    Nba__V1__Response **response;        /* the answer to event i, in keep */
    char (*uniform_id)[CUSTOMER_ID_MAX]; /* customers drawn uniformly */
    rule_hit *work_hits;                 /* room for any ruleset's hits */
    uint8_t *frame_buf;                  /* room for any answer frame */
    size_t frame_cap;

    single_rule single[MAX_RULES];
    size_t n_single;
    size_t cur_single; /* the rule rules.match[...] runs now */

    size_t next;                /* event the next operation uses */
    uint64_t sink;              /* results folded in, so nothing is optimised away */
    state *state;               /* an empty state: the decider reads it as nbad's do */
    state_reader *state_reader; /* the state.* cases' own */
} bench;

typedef struct bench_case {
    char name[112];
    void (*run)(bench *b, uint64_t iters);
    size_t single; /* for rules.match[<id>] */
} bench_case;

typedef struct result {
    double median, min, max; /* ns per operation */
    uint64_t iters;          /* per run */
} result;

static size_t next_event(bench *b)
{
    size_t i = b->next;
    b->next = i + 1 == b->n ? 0 : i + 1;
    return i;
}

/* ---- the cases ---- */

static void run_decode_request(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b);
        arena_reset(&b->scratch);
        Nba__V1__Request *req = wire_decode_request(b->body[i], b->body_len[i], &b->scratch);
        b->sink += req != NULL;
    }
}

static void run_decode_request_pbc(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b);
        arena_reset(&b->scratch);
        Nba__V1__Request *req =
            nba__v1__request__unpack(arena_pb_allocator(&b->scratch), b->body_len[i], b->body[i]);
        b->sink += req != NULL;
    }
}

static void run_encode_response(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b);
        wire_plan plan;
        arena_reset(&b->scratch);
        size_t n = wire_response_size(b->response[i], &b->scratch, &plan);
        b->sink += n <= b->frame_cap ? wire_response_pack(b->response[i], &plan, b->frame_buf) : 0;
    }
}

static void run_encode_response_pbc(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b);
        const ProtobufCMessage *m = &b->response[i]->base;
        size_t n = frame_packed_size(m);
        b->sink += n <= b->frame_cap ? frame_pack(m, b->frame_buf) : 0;
    }
}

static void run_snapshot(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        b->sink += (uint64_t)store_reader_begin(b->reader);
        store_reader_end(b->reader);
    }
}

static void lookup(bench *b, const char *customer_id)
{
    Nba__V1__Customer *c = NULL;
    Nba__V1__Incident **inc = NULL;
    size_t n = 0;
    arena_reset(&b->scratch);
    store_reader_begin(b->reader);
    if (store_get_customer(b->reader, customer_id, &b->scratch, &c) == 0)
        store_get_incidents(b->reader, customer_id, &b->scratch, &inc, &n);
    store_reader_end(b->reader);
    b->sink += n + (c != NULL);
}

static void run_lookup(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++)
        lookup(b, b->event[next_event(b)]->customer_id);
}

static void run_lookup_customer(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        Nba__V1__Customer *c = NULL;
        arena_reset(&b->scratch);
        store_reader_begin(b->reader);
        store_get_customer(b->reader, b->event[next_event(b)]->customer_id, &b->scratch, &c);
        store_reader_end(b->reader);
        b->sink += c != NULL;
    }
}

static void run_lookup_uniform(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++)
        lookup(b, b->uniform_id[next_event(b)]);
}

static void run_match(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++)
        b->sink += ruleset_match(b->rs, &b->facts[next_event(b)], b->work_hits);
}

static void run_match_single(bench *b, uint64_t iters)
{
    const ruleset *rs = b->single[b->cur_single].rs;
    for (uint64_t k = 0; k < iters; k++)
        b->sink += ruleset_match(rs, &b->facts[next_event(b)], b->work_hits);
}

static void run_arbitrate(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b);
        /* Arbitration works in place: start each time from the matched hits. */
        size_t n = ruleset_match(b->rs, &b->facts[i], b->work_hits);
        b->sink += ruleset_arbitrate(b->rs, &b->facts[i], b->work_hits, n);
    }
}

static void run_render(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b);
        Nba__V1__Decision d = NBA__V1__DECISION__INIT;
        arena_reset(&b->scratch);
        ruleset_render(b->rs, &b->facts[i], b->hits[i], b->n_hits[i], &b->scratch, &d);
        b->sink += d.n_actions;
    }
}

static void run_rules_decide(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b);
        Nba__V1__Decision d = NBA__V1__DECISION__INIT;
        arena_reset(&b->scratch);
        size_t n = ruleset_match(b->rs, &b->facts[i], b->work_hits);
        n = ruleset_arbitrate(b->rs, &b->facts[i], b->work_hits, n);
        ruleset_render(b->rs, &b->facts[i], b->work_hits, n, &b->scratch, &d);
        b->sink += d.n_actions;
    }
}

static void run_state_snapshot(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        b->sink += (uint64_t)state_reader_begin(b->state_reader);
        state_reader_end(b->state_reader);
    }
}

static void run_state_lookup(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        state_customer sc;
        arena_reset(&b->scratch);
        state_reader_begin(b->state_reader);
        b->sink += (uint64_t)state_get_customer(
            b->state_reader, b->event[next_event(b)]->customer_id, NULL, 0, &b->scratch, &sc);
        state_reader_end(b->state_reader);
        b->sink += sc.n_history;
    }
}

static void run_idempotency_key(bench *b, uint64_t iters)
{
    char key[STATE_MAX_KEY];
    for (uint64_t k = 0; k < iters; k++)
        b->sink += ruleset_idempotency_key(b->rs, &b->facts[next_event(b)], key, sizeof key);
}

static void run_effects(bench *b, uint64_t iters)
{
    ruleset_effect effects[16];
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b), n = 0;
        b->sink += (uint64_t)ruleset_effects(b->rs, &b->facts[i], b->hits[i], b->n_hits[i],
                                             b->response[i]->decision, effects, 16, &n);
        b->sink += n;
    }
}

static void run_decider_decide(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b);
        Nba__V1__Decision d = NBA__V1__DECISION__INIT;
        b->sink += (uint64_t)decider_decide(b->dec, b->event[i], &d) + d.n_actions;
        /* decider_decide allocates from the decider's arena, which only
         * decider_handle resets: a ping every so often keeps it bounded
         * without adding to the time per decision measurably. */
        if ((k & 63) == 63) {
            Nba__V1__Response *r;
            static const uint8_t ping[] = {0x1a, 0x00}; /* Request{ping: {}} */
            decider_handle(b->dec, ping, sizeof ping, &r);
        }
    }
}

static void run_decider_handle(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b);
        Nba__V1__Response *r = NULL;
        b->sink += (uint64_t)decider_handle(b->dec, b->body[i], b->body_len[i], &r);
        b->sink += r->body_case;
    }
}

static void run_decider_handle_encode(bench *b, uint64_t iters)
{
    for (uint64_t k = 0; k < iters; k++) {
        size_t i = next_event(b);
        Nba__V1__Response *r = NULL;
        wire_plan plan;
        decider_handle(b->dec, b->body[i], b->body_len[i], &r);
        arena_reset(&b->scratch);
        size_t n = wire_response_size(r, &b->scratch, &plan);
        b->sink += n <= b->frame_cap ? wire_response_pack(r, &plan, b->frame_buf) : 0;
    }
}

/* ---- timing ---- */

static double time_run(bench *b, const bench_case *c, uint64_t iters)
{
    uint64_t t0 = clock_mono_ns();
    c->run(b, iters);
    return (double)(clock_mono_ns() - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Doubles the batch until it takes CALIBRATE_NS (which also warms caches
 * and the arena), sizes each run to its share of the time, and takes the
 * median of the runs. */
static void measure(bench *b, const bench_case *c, const options *o, result *r)
{
    uint64_t iters = 1;
    double ns;
    for (;;) {
        ns = time_run(b, c, iters);
        if (ns >= CALIBRATE_NS || iters >= (1ull << 32))
            break;
        iters *= 2;
    }
    double per_op = ns / (double)iters;
    double budget = o->seconds * 1e9 / o->runs;
    r->iters = per_op > 0 ? (uint64_t)(budget / per_op) : iters;
    if (r->iters < 1)
        r->iters = 1;
    double v[64];
    for (int k = 0; k < o->runs; k++)
        v[k] = time_run(b, c, r->iters) / (double)r->iters;
    qsort(v, (size_t)o->runs, sizeof v[0], cmp_double);
    r->min = v[0];
    r->max = v[o->runs - 1];
    r->median = o->runs % 2 ? v[o->runs / 2] : (v[o->runs / 2 - 1] + v[o->runs / 2]) / 2;
}

/* ---- preparation ---- */

/* A database of n synthetic customers in dir: every third with incidents,
 * recent and open often enough that the recovery rules fire. */
static int build_db(const char *dir, uint64_t n, nba_error *err)
{
    static const char *const languages[] = {"en", "it", "zh-Hant", "de", "ja", "zh-Hans"};
    static const char *const tiers[] = {"none", "none", "none", "silver", "gold", "platinum"};
    static const char *const kinds[] = {"delay", "ife_broken", "lost_baggage", "complaint"};
    store *st = NULL;
    store_txn *t = NULL;
    int rc = store_open(dir, STORE_CREATE, (size_t)1 << 34, 0, &st, err);
    if (!rc)
        rc = store_txn_begin(st, &t, err);
    rng r;
    rng_seed(&r, 7);
    int width = customer_id_width(n);
    int64_t now = clock_now_ms();
    for (uint64_t i = 1; !rc && i <= n; i++) {
        char id[CUSTOMER_ID_MAX], name[32], email[8];
        customer_id_format(id, CUSTOMER_ID_PREFIX, width, i);
        snprintf(name, sizeof name, "Passenger %llu", (unsigned long long)i);
        snprintf(email, sizeof email, "%d", (int)(i % 2));
        Nba__V1__Attribute attr = NBA__V1__ATTRIBUTE__INIT, *attrs[] = {&attr};
        attr.name = "email_opt_in";
        attr.text = email;
        attr.has_number = true;
        attr.number = (double)(i % 2);
        Nba__V1__Customer c = NBA__V1__CUSTOMER__INIT;
        c.customer_id = id;
        c.name = name;
        c.tier = (char *)tiers[rng_below(&r, 6)];
        c.lifetime_value = (double)rng_below(&r, 50000);
        c.predicted_ltv = (double)rng_below(&r, 40000);
        c.language = (char *)languages[rng_below(&r, 6)];
        c.n_attributes = 1;
        c.attributes = attrs;
        rc = store_txn_put_customer(t, &c, err);
        for (uint64_t k = 0; !rc && i % 3 == 0 && k < 1 + i % 4; k++) {
            char iid[32];
            snprintf(iid, sizeof iid, "INC-%llu-%llu", (unsigned long long)i,
                     (unsigned long long)k);
            Nba__V1__Incident inc = NBA__V1__INCIDENT__INIT;
            inc.incident_id = iid;
            inc.customer_id = id;
            inc.kind = (char *)kinds[rng_below(&r, 4)];
            inc.severity = 1 + (int32_t)rng_below(&r, 5);
            inc.occurred_at_ms = now - (int64_t)rng_below(&r, 360) * 86400000;
            inc.flight = "AZ611";
            inc.resolved = rng_below(&r, 3) == 0;
            inc.note = "seat 32C, screen dead for the whole flight";
            rc = store_txn_put_incident(t, &inc, err);
        }
    }
    if (t)
        rc = rc ? (store_txn_abort(t), rc) : store_txn_commit(t, err);
    store_close(st);
    return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Appends the emitter's output to a growing buffer. */
typedef struct text {
    char *p;
    size_t len, cap;
} text;

static int text_write(void *data, unsigned char *buf, size_t size)
{
    text *t = data;
    if (t->len + size + 1 > t->cap) {
        size_t cap = (t->len + size + 1) * 2;
        char *p = realloc(t->p, cap);
        if (!p)
            return 0;
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, buf, size);
    t->len += size;
    t->p[t->len] = '\0';
    return 1;
}

/* The lists of the root mapping that hold rules: the rules themselves, and
 * decision tables (one rule per row). */
static const char *const rule_lists[] = {"rules", "tables"};
#define N_RULE_LISTS (sizeof rule_lists / sizeof rule_lists[0])

/* Which one rule (or table) a copy of the rule file keeps. */
typedef struct selection {
    const char *list; /* one of rule_lists */
    int item;
} selection;

static bool is_rule_list(const yaml_node_t *key)
{
    for (size_t i = 0; i < N_RULE_LISTS; i++)
        if (key->type == YAML_SCALAR_NODE &&
            !strcmp((const char *)key->data.scalar.value, rule_lists[i]))
            return true;
    return false;
}

/* Copies node `index` of src into dst. In the root mapping (sel not NULL)
 * every list of rule_lists becomes empty but for the one item sel names.
 * Returns the new node's index, 0 on failure. */
static int copy_node(yaml_document_t *dst, yaml_document_t *src, int index, const selection *sel)
{
    yaml_node_t *n = yaml_document_get_node(src, index);
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return yaml_document_add_scalar(dst, n->tag, n->data.scalar.value,
                                        (int)n->data.scalar.length, n->data.scalar.style);
    case YAML_SEQUENCE_NODE: {
        int seq = yaml_document_add_sequence(dst, n->tag, n->data.sequence.style);
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             seq && it < n->data.sequence.items.top; it++) {
            int child = copy_node(dst, src, *it, NULL);
            if (!child || !yaml_document_append_sequence_item(dst, seq, child))
                return 0;
        }
        return seq;
    }
    case YAML_MAPPING_NODE: {
        int map = yaml_document_add_mapping(dst, n->tag, n->data.mapping.style);
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             map && p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *key = yaml_document_get_node(src, p->key);
            yaml_node_t *value = yaml_document_get_node(src, p->value);
            int k = copy_node(dst, src, p->key, NULL), v;
            if (sel && is_rule_list(key) && value->type == YAML_SEQUENCE_NODE) {
                v = yaml_document_add_sequence(dst, value->tag, YAML_BLOCK_SEQUENCE_STYLE);
                if (v && !strcmp((const char *)key->data.scalar.value, sel->list)) {
                    int item =
                        copy_node(dst, src, value->data.sequence.items.start[sel->item], NULL);
                    if (!item || !yaml_document_append_sequence_item(dst, v, item))
                        return 0;
                }
            } else {
                v = copy_node(dst, src, p->value, NULL);
            }
            if (!k || !v || !yaml_document_append_mapping_pair(dst, map, k, v))
                return 0;
        }
        return map;
    }
    default:
        return 0;
    }
}

/* The case's name: "rules.match[<id>]", or "rules.match[table <id>]". */
static void case_name(yaml_document_t *src, yaml_node_t *rule, const char *list, char *out,
                      size_t cap)
{
    const char *kind = strcmp(list, "rules") ? "table " : "";
    snprintf(out, cap, "rules.match[%s?]", kind);
    if (rule->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = rule->data.mapping.pairs.start; p < rule->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(src, p->key);
        yaml_node_t *v = yaml_document_get_node(src, p->value);
        if (k->type == YAML_SCALAR_NODE && v->type == YAML_SCALAR_NODE &&
            !strcmp((const char *)k->data.scalar.value, "id"))
            snprintf(out, cap, "rules.match[%s%s]", kind, (const char *)v->data.scalar.value);
    }
}

/* Writes the document (and frees it) as YAML text into out. */
static bool emit(yaml_document_t *doc, text *out)
{
    yaml_emitter_t em;
    yaml_emitter_initialize(&em);
    yaml_emitter_set_output(&em, text_write, out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    bool ok = yaml_emitter_open(&em) && yaml_emitter_dump(&em, doc) && yaml_emitter_close(&em);
    yaml_emitter_delete(&em);
    return ok;
}

/* Compiles one ruleset per rule and per decision table of the file at path:
 * the same file with every other rule and table left out. One that does not
 * compile alone (a rule file that includes others, say) is skipped with a
 * note on stderr. */
static int load_single_rules(bench *b, const char *path, nba_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nba_error_set(err, -errno, "%s: %s", path, strerror(errno));
    yaml_parser_t parser;
    yaml_document_t src;
    int rc = 0;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &src)) {
        yaml_parser_delete(&parser);
        fclose(f);
        return nba_error_set(err, -EINVAL, "%s: not YAML", path);
    }
    yaml_node_t *root = yaml_document_get_root_node(&src);
    for (yaml_node_pair_t *p =
             root && root->type == YAML_MAPPING_NODE ? root->data.mapping.pairs.start : NULL;
         p && p < root->data.mapping.pairs.top && !rc; p++) {
        yaml_node_t *key = yaml_document_get_node(&src, p->key);
        yaml_node_t *list = yaml_document_get_node(&src, p->value);
        if (!is_rule_list(key) || list->type != YAML_SEQUENCE_NODE)
            continue;
        int count = (int)(list->data.sequence.items.top - list->data.sequence.items.start);
        for (int i = 0; i < count && b->n_single < MAX_RULES; i++) {
            selection sel = {(const char *)key->data.scalar.value, i};
            single_rule *s = &b->single[b->n_single];
            case_name(&src, yaml_document_get_node(&src, list->data.sequence.items.start[i]),
                      sel.list, s->name, sizeof s->name);
            yaml_document_t one;
            text out = {0};
            yaml_document_initialize(&one, NULL, NULL, NULL, 1, 1);
            if (!copy_node(&one, &src, (int)(root - src.nodes.start) + 1, &sel)) {
                yaml_document_delete(&one);
                rc = nba_error_set(err, -ENOMEM, "%s: cannot copy %s", path, s->name);
                break;
            }
            if (!emit(&one, &out)) {
                free(out.p);
                rc = nba_error_set(err, -EINVAL, "%s: cannot write %s", path, s->name);
                break;
            }
            nba_error why = {{0}};
            if (ruleset_load_buffer(s->name, out.p, out.len, &s->rs, &why) == 0)
                b->n_single++;
            else
                fprintf(stderr, "nbabench: %s skipped, it does not compile alone:\n%s\n", s->name,
                        why.msg);
            free(out.p);
        }
    }
    yaml_document_delete(&src);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

/* Draws the events the load test would send, decodes them, reads their
 * facts once and answers them once, all into b->keep. */
static int prepare_events(bench *b, const options *o, nba_error *err)
{
    workload w;
    request_pool pool;
    workload_defaults(&w);
    w.customers = o->customers;
    w.skew = 0.99;
    w.unknown_ratio = 0.02;
    w.pool_size = EVENTS;
    int rc = workload_build(&w, &pool, err);
    if (rc)
        return rc;
    b->n = pool.count;
    arena *k = &b->keep;
    b->body = arena_alloc(k, b->n * sizeof *b->body);
    b->body_len = arena_alloc(k, b->n * sizeof *b->body_len);
    b->event = arena_alloc(k, b->n * sizeof *b->event);
    b->facts = arena_alloc(k, b->n * sizeof *b->facts);
    b->hits = arena_alloc(k, b->n * sizeof *b->hits);
    b->n_hits = arena_alloc(k, b->n * sizeof *b->n_hits);
    b->response = arena_alloc(k, b->n * sizeof *b->response);
    b->uniform_id = arena_alloc(k, b->n * sizeof *b->uniform_id);
    b->work_hits = arena_alloc(k, (MAX_RULES + ruleset_rule_count(b->rs)) * sizeof(rule_hit));
    if (!b->body || !b->body_len || !b->event || !b->facts || !b->hits || !b->n_hits ||
        !b->response || !b->uniform_id || !b->work_hits) {
        request_pool_free(&pool);
        return nba_error_set(err, -ENOMEM, "out of memory");
    }

    rng r;
    rng_seed(&r, 11);
    int width = customer_id_width(o->customers);
    size_t largest = 0;
    int64_t now = clock_now_ms();
    for (size_t i = 0; i < b->n && !rc; i++) {
        size_t len = pool.offset[i + 1] - pool.offset[i];
        uint8_t *body = arena_alloc(k, len ? len : 1);
        if (!body) {
            rc = nba_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        memcpy(body, pool.bytes + pool.offset[i], len);
        b->body[i] = body;
        b->body_len[i] = len;
        Nba__V1__Request *req = nba__v1__request__unpack(arena_pb_allocator(k), len, body);
        if (!req || req->body_case != NBA__V1__REQUEST__BODY_CONTACT) {
            rc = nba_error_set(err, -EBADMSG, "workload request %zu does not decode", i);
            break;
        }
        b->event[i] = req->contact;
        customer_id_format(b->uniform_id[i], CUSTOMER_ID_PREFIX, width,
                           1 + rng_below(&r, o->customers));

        facts *f = &b->facts[i];
        Nba__V1__Customer *c = NULL;
        Nba__V1__Incident **inc = NULL;
        size_t n_inc = 0;
        store_reader_begin(b->reader);
        if (store_get_customer(b->reader, req->contact->customer_id, k, &c) == 0)
            store_get_incidents(b->reader, req->contact->customer_id, k, &inc, &n_inc);
        store_reader_end(b->reader);
        f->event = req->contact;
        f->customer = c;
        f->incidents = inc;
        f->n_incidents = n_inc;
        f->history = NULL; /* the state is empty */
        f->n_history = 0;
        f->now_ms = req->contact->occurred_at_ms ? req->contact->occurred_at_ms : now;

        b->hits[i] = arena_alloc(k, (ruleset_rule_count(b->rs) + 1) * sizeof(rule_hit));
        b->response[i] = arena_calloc(k, sizeof *b->response[i]);
        Nba__V1__Decision *d = arena_alloc(k, sizeof *d);
        if (!b->hits[i] || !b->response[i] || !d) {
            rc = nba_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        size_t n = ruleset_match(b->rs, f, b->hits[i]);
        b->n_hits[i] = ruleset_arbitrate(b->rs, f, b->hits[i], n);
        nba__v1__decision__init(d);
        d->customer_id = req->contact->customer_id;
        d->known = c != NULL;
        rc = ruleset_render(b->rs, f, b->hits[i], b->n_hits[i], k, d);
        nba__v1__response__init(b->response[i]);
        b->response[i]->id = i + 1;
        b->response[i]->body_case = NBA__V1__RESPONSE__BODY_DECISION;
        b->response[i]->decision = d;
        size_t size = frame_packed_size(&b->response[i]->base);
        if (size > largest)
            largest = size;
    }
    request_pool_free(&pool);
    if (rc)
        return rc;
    b->frame_cap = largest * 2 + 4096;
    b->frame_buf = arena_alloc(k, b->frame_cap);
    return b->frame_buf ? 0 : nba_error_set(err, -ENOMEM, "out of memory");
}

/* ---- output ---- */

static void print_human(const bench_case *cases, const result *res, size_t n, const options *o,
                        const char *db)
{
    printf("nbabench: %s, %llu customers, rules %s, %d runs of %.2f s per case\n", db,
           (unsigned long long)o->customers, o->rules, o->runs, o->seconds / o->runs);
    printf("%-34s %12s %12s %12s\n", "case", "ns/op", "fastest", "slowest");
    for (size_t i = 0; i < n; i++)
        printf("%-34s %12.1f %12.1f %12.1f\n", cases[i].name, res[i].median, res[i].min,
               res[i].max);
}

static double rounded(double v)
{
    return (double)(long long)(v * 10 + 0.5) / 10;
}

static void print_json(const bench_case *cases, const result *res, size_t n, const options *o,
                       const char *db)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s, s:f, s:f, s:f, s:I}", "name", cases[i].name,
                                              "ns_per_op", rounded(res[i].median), "fastest",
                                              rounded(res[i].min), "slowest", rounded(res[i].max),
                                              "iterations_per_run", (json_int_t)res[i].iters));
    json_t *root = json_pack("{s:o, s:{s:s, s:I, s:s, s:f, s:i, s:i}}", "cases", list, "config",
                             "db", db, "customers", (json_int_t)o->customers, "rules", o->rules,
                             "seconds_per_case", o->seconds, "runs", o->runs, "events", EVENTS);
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
    putchar('\n');
    json_decref(root);
}

/* ---- main ---- */

static int usage(const char *problem)
{
    if (problem)
        fprintf(stderr, "nbabench: %s\n", problem);
    fputs("usage: nbabench [--db DIR] [--customers N] [--rules FILE] [--time S] [--runs N]\n"
          "                [--filter TEXT] [--no-state | --state DIR] [--map-size BYTES] [--json]\n"
          "  --db DIR       database built by nbactl load from nbagen's extracts (default:\n"
          "                 build a synthetic one in a temporary directory)\n"
          "  --customers N  customers in that database, as given to nbagen (default 100000)\n"
          "  --rules FILE   rule file (default " DEFAULT_RULES ")\n"
          "  --time S       seconds per case, all runs together (default 1)\n"
          "  --runs N       runs per case, the median is reported (default 5, at most 64)\n"
          "  --filter TEXT  only the cases whose name contains TEXT\n"
          "  --no-state     the decider reads no state (nbad's always reads one)\n"
          "  --state DIR    the decider reads this state directory (default: an empty one)\n"
          "  --map-size B   map the database with B bytes (default LMDB's 64 GiB, which\n"
          "                 valgrind cannot map)\n"
          "  --json         one JSON object instead of the table\n",
          problem ? stderr : stdout);
    return problem ? EXIT_USAGE : EXIT_OK;
}

static int parse_options(int argc, char **argv, options *o)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},    {"customers", required_argument, NULL, 'c'},
        {"rules", required_argument, NULL, 'r'}, {"time", required_argument, NULL, 't'},
        {"runs", required_argument, NULL, 'n'},  {"filter", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},        {"no-state", no_argument, NULL, 's'},
        {"state", required_argument, NULL, 'S'}, {"map-size", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    *o = (options){.rules = DEFAULT_RULES, .customers = 100000, .seconds = 1, .runs = 5};
    int opt;
    char *end;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            o->db = optarg;
            break;
        case 'c':
            o->customers = strtoull(optarg, &end, 10);
            if (*end || o->customers < 1 || o->customers > 1000000000)
                return usage("--customers takes a number from 1 to 1000000000");
            break;
        case 'r':
            o->rules = optarg;
            break;
        case 't':
            o->seconds = strtod(optarg, &end);
            if (*end || !(o->seconds > 0 && o->seconds <= 600))
                return usage("--time takes seconds, more than 0 and at most 600");
            break;
        case 'n':
            o->runs = (int)strtol(optarg, &end, 10);
            if (*end || o->runs < 1 || o->runs > 64)
                return usage("--runs takes a number from 1 to 64");
            break;
        case 'f':
            o->filter = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case 's':
            o->no_state = true;
            break;
        case 'S':
            o->state = optarg;
            break;
        case 'm': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || v < (1u << 20))
                return usage("--map-size takes bytes, at least 1048576");
            o->map_size = (size_t)v;
            break;
        }
        case 'h':
            usage(NULL);
            return -1;
        default:
            return usage("unknown option");
        }
    }
    if (optind < argc)
        return usage("unexpected argument");
    if (o->no_state && o->state)
        return usage("--no-state and --state exclude each other");
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;

    nba_error err = {{0}};
    bench b = {0};
    int status = EXIT_SOFTWARE;
    char tmp[] = "/tmp/nbabench-XXXXXX";
    char state_dir[] = "/tmp/nbabench-state-XXXXXX";
    bool own_state = !o.no_state && !o.state;
    bool own_db = !o.db;
    bool registered = false;
    bench_case *cases = calloc(MAX_CASES, sizeof *cases);
    result *res = calloc(MAX_CASES, sizeof *res);
    struct stat sb;
    if (o.state && (stat(o.state, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
        fprintf(stderr, "nbabench: %s: no such state directory\n", o.state);
        status = EXIT_NOINPUT;
        goto out;
    }
    if (!cases || !res || arena_init(&b.scratch, 64 * 1024) || arena_init(&b.keep, 1 << 20)) {
        fprintf(stderr, "nbabench: out of memory\n");
        goto out;
    }

    if (own_db) {
        if (!mkdtemp(tmp)) {
            fprintf(stderr, "nbabench: cannot create a temporary directory: %s\n", strerror(errno));
            goto out;
        }
        o.db = tmp;
        fprintf(stderr, "nbabench: building %llu synthetic customers in %s\n",
                (unsigned long long)o.customers, tmp);
        if (build_db(tmp, o.customers, &err)) {
            fprintf(stderr, "nbabench: %s\n", err.msg);
            goto out;
        }
    }
    /* A database root (generations) or a flat environment: nbad's view. */
    if (store_open_serving(o.db, o.map_size, 0, &b.st, NULL, &err)) {
        fprintf(stderr, "nbabench: %s\n", err.msg);
        status = EXIT_NOINPUT;
        goto out;
    }
    if (ruleset_load_file(o.rules, &b.rs, &err) || rules_live_new(o.rules, &b.live, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        status = EXIT_NOINPUT;
        goto out;
    }
    rules_live_register_thread();
    registered = true;
    /* The decider reads a state (an empty one of its own unless --state
     * names one), as every decision in nbad reads the customer's state (and
     * works out what it would record); with no writer attached, nothing is
     * deferred. */
    if (own_state && !mkdtemp(state_dir)) {
        fprintf(stderr, "nbabench: cannot create a temporary directory: %s\n", strerror(errno));
        goto out;
    }
    if (store_reader_new(b.st, &b.reader, &err) || decider_new(b.st, b.live, &b.dec, &err) ||
        (!o.no_state && (state_open(o.state ? o.state : state_dir,
                                    o.state ? o.map_size : (size_t)1 << 26, &b.state, &err) ||
                         decider_attach_state(b.dec, b.state, NULL, NULL, NULL, &err) ||
                         state_reader_new(b.state, &b.state_reader, &err))) ||
        load_single_rules(&b, o.rules, &err) || prepare_events(&b, &o, &err)) {
        fprintf(stderr, "nbabench: %s\n", err.msg);
        goto out;
    }

    size_t n = 0;
#define ADD(label, fn)                                                                             \
    (snprintf(cases[n].name, sizeof cases[n].name, "%s", label), cases[n++].run = fn)
    ADD("frame.decode_request", run_decode_request);
    ADD("frame.decode_request (protobuf-c)", run_decode_request_pbc);
    ADD("frame.encode_response", run_encode_response);
    ADD("frame.encode_response (protobuf-c)", run_encode_response_pbc);
    ADD("store.snapshot", run_snapshot);
    ADD("store.lookup_customer", run_lookup_customer);
    ADD("store.lookup", run_lookup);
    ADD("store.lookup_uniform", run_lookup_uniform);
    ADD("rules.match", run_match);
    for (size_t i = 0; i < b.n_single; i++) {
        ADD(b.single[i].name, run_match_single);
        cases[n - 1].single = i;
    }
    ADD("rules.arbitrate (with match)", run_arbitrate);
    ADD("rules.render", run_render);
    ADD("rules.decide", run_rules_decide);
    if (b.state) {
        ADD("state.snapshot", run_state_snapshot);
        ADD("state.lookup", run_state_lookup);
    }
    ADD("policy.idempotency_key", run_idempotency_key);
    ADD("policy.effects", run_effects);
    ADD("decider.decide", run_decider_decide);
    ADD("decider.handle", run_decider_handle);
    ADD("decider.handle_encode", run_decider_handle_encode);
#undef ADD

    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (o.filter && !strstr(cases[i].name, o.filter))
            continue;
        b.cur_single = cases[i].single;
        b.next = 0;
        measure(&b, &cases[i], &o, &res[kept]);
        cases[kept++] = cases[i];
    }
    if (o.json)
        print_json(cases, res, kept, &o, own_db ? "synthetic" : o.db);
    else
        print_human(cases, res, kept, &o, own_db ? "synthetic" : o.db);
    status = EXIT_OK;

out:
    decider_free(b.dec);
    state_reader_free(b.state_reader);
    state_close(b.state);
    if (b.state && own_state)
        nftw(state_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    store_reader_free(b.reader);
    if (registered)
        rules_live_unregister_thread();
    for (size_t i = 0; i < b.n_single; i++)
        ruleset_free(b.single[i].rs);
    rules_live_free(b.live);
    ruleset_free(b.rs);
    if (b.st)
        store_close(b.st);
    if (own_db && o.db == tmp)
        nftw(tmp, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    arena_destroy(&b.keep);
    arena_destroy(&b.scratch);
    free(res);
    free(cases);
    return status;
}
