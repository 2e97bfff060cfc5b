/* workload.c - see workload.h. The tables below are the shape of a day at an
 * airline's contact points; they only steer what the pool holds, and the
 * rules decide what any of it means. */
#include "workload.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "customer_id.h"
#include "nba.pb-c.h"
#include "rng.h"
#include "zipf.h"

#define POOL_MAX (16u * 1024u * 1024u)

typedef struct weighted {
    const char *name;
    unsigned weight;
} weighted;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Where the contact happens: AZ's hubs first. */
static const weighted airports[] = {
    {"FCO", 35}, {"MXP", 15}, {"LIN", 8}, {"NAP", 6}, {"VCE", 5}, {"CTA", 5}, {"BLQ", 4},
    {"PMO", 3},  {"JFK", 4},  {"CDG", 3}, {"LHR", 3}, {"FRA", 3}, {"MAD", 2}, {"BCN", 2},
    {"BOS", 1},  {"TPE", 1},  {"NRT", 1}, {"PEK", 1}, {"GRU", 1}, {"ICN", 1}, {"DXB", 1},
};

/* Booked cabin: economy, premium economy, business, first. */
static const weighted cabins[] = {{"Y", 80}, {"W", 10}, {"J", 8}, {"F", 2}};

static const weighted carriers[] = {{"AZ", 85}, {"DL", 4}, {"AF", 3}, {"KL", 2},
                                    {"LH", 2},  {"BR", 2}, {"JL", 1}, {"KE", 1}};

/* Language chosen at the contact point (a kiosk's flag, an IVR menu). */
static const weighted languages[] = {
    {"en", 30},     {"it", 20},     {"de", 9},    {"fr", 8}, {"es", 8}, {"ja", 5},
    {"zh-Hans", 6}, {"zh-Hant", 3}, {"pt-BR", 5}, {"ko", 4}, {"ar", 2},
};

/* Default touchpoints per channel, and how often the passenger picks a
 * language at that channel. */
typedef struct channel_profile {
    weighted touchpoints[3];
    unsigned language_pct;
    const char *location_kind; /* "K" kiosk, "D" desk, NULL: the airport alone */
} channel_profile;

static const channel_profile profiles[WORKLOAD_CHANNELS] = {
    [NBA__V1__CHANNEL__CHANNEL_UNSPECIFIED] = {{{"checkin", 1}}, 0, NULL},
    [NBA__V1__CHANNEL__DESK] = {{{"checkin", 75}, {"boarding", 25}}, 5, "D"},
    [NBA__V1__CHANNEL__KIOSK] = {{{"checkin", 90}, {"boarding", 10}}, 40, "K"},
    [NBA__V1__CHANNEL__IVR] = {{{"call", 60}, {"checkin", 40}}, 70, NULL},
    [NBA__V1__CHANNEL__WEB] = {{{"checkin", 90}, {"booking", 10}}, 50, NULL},
    [NBA__V1__CHANNEL__MOBILE] = {{{"checkin", 90}, {"boarding", 10}}, 50, NULL},
    [NBA__V1__CHANNEL__CALL_CENTER] = {{{"call", 100}}, 20, NULL},
};

static const char *pick(rng *r, const weighted *w, size_t n)
{
    unsigned total = 0;
    for (size_t i = 0; i < n; i++)
        total += w[i].weight;
    uint64_t x = rng_below(r, total);
    for (size_t i = 0; i < n; i++) {
        if (x < w[i].weight)
            return w[i].name;
        x -= w[i].weight;
    }
    return w[n - 1].name;
}

void workload_defaults(workload *w)
{
    *w = (workload){0};
    w->customers = 1000;
    snprintf(w->id_prefix, sizeof w->id_prefix, "%s", CUSTOMER_ID_PREFIX);
    w->channel_weights[NBA__V1__CHANNEL__KIOSK] = 50;
    w->channel_weights[NBA__V1__CHANNEL__DESK] = 30;
    w->channel_weights[NBA__V1__CHANNEL__IVR] = 20;
    w->seed = 1;
    w->pool_size = 65536;
}

int workload_id_width(const workload *w)
{
    return w->id_width > 0 ? w->id_width : customer_id_width(w->customers);
}

/* Calls item(name, weight) for each "name=weight" of a comma-separated list. */
static int parse_list(const char *text, const char *what,
                      int (*item)(void *ctx, const char *name, unsigned weight), void *ctx,
                      nba_error *err)
{
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", text) >= (int)sizeof buf)
        return nba_error_set(err, -EINVAL, "%s list is too long", what);
    char *save = NULL;
    int items = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        char *end = NULL;
        unsigned long v = eq ? strtoul(eq + 1, &end, 10) : 0;
        if (!eq || eq == tok || end == eq + 1 || *end != '\0' || v > 1000000)
            return nba_error_set(err, -EINVAL, "%s: expected name=weight, got \"%s\"", what, tok);
        *eq = '\0';
        int rc = item(ctx, tok, (unsigned)v);
        if (rc)
            return nba_error_set(err, rc, "%s: unknown or repeated name \"%s\"", what, tok);
        items++;
    }
    if (items == 0)
        return nba_error_set(err, -EINVAL, "%s list is empty", what);
    return 0;
}

static int mix_item(void *ctx, const char *name, unsigned weight)
{
    workload *w = ctx;
    char upper[32];
    size_t n = strlen(name);
    if (n >= sizeof upper)
        return -EINVAL;
    for (size_t i = 0; i <= n; i++)
        upper[i] = (char)toupper((unsigned char)name[i]);
    /* The schema's own names, so a channel added to the proto needs no
     * change here. */
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value_by_name(&nba__v1__channel__descriptor, upper);
    if (!v || v->value <= 0 || v->value >= WORKLOAD_CHANNELS)
        return -EINVAL;
    w->channel_weights[v->value] = weight;
    return 0;
}

int workload_parse_mix(workload *w, const char *text, nba_error *err)
{
    unsigned saved[WORKLOAD_CHANNELS];
    memcpy(saved, w->channel_weights, sizeof saved);
    memset(w->channel_weights, 0, sizeof w->channel_weights);
    int rc = parse_list(text, "--mix", mix_item, w, err);
    unsigned total = 0;
    for (int i = 0; i < WORKLOAD_CHANNELS; i++)
        total += w->channel_weights[i];
    if (rc == 0 && total == 0)
        rc = nba_error_set(err, -EINVAL, "--mix: every weight is 0");
    if (rc)
        memcpy(w->channel_weights, saved, sizeof saved);
    return rc;
}

static int touchpoint_item(void *ctx, const char *name, unsigned weight)
{
    touchpoint_mix *m = ctx;
    if (m->count == WORKLOAD_MAX_TOUCHPOINT || strlen(name) >= sizeof m->names[0])
        return -EINVAL;
    for (unsigned i = 0; i < m->count; i++)
        if (strcmp(m->names[i], name) == 0)
            return -EINVAL;
    snprintf(m->names[m->count], sizeof m->names[0], "%s", name);
    m->weights[m->count++] = weight;
    return 0;
}

int workload_parse_touchpoints(workload *w, const char *text, nba_error *err)
{
    touchpoint_mix m = {0};
    int rc = parse_list(text, "--touchpoints", touchpoint_item, &m, err);
    if (rc)
        return rc;
    unsigned total = 0;
    for (unsigned i = 0; i < m.count; i++)
        total += m.weights[i];
    if (total == 0)
        return nba_error_set(err, -EINVAL, "--touchpoints: every weight is 0");
    w->touchpoints = m;
    return 0;
}

void workload_describe_mix(const workload *w, char *buf, size_t cap)
{
    unsigned total = 0;
    int order[WORKLOAD_CHANNELS], n_order = 0;
    for (int i = 1; i < WORKLOAD_CHANNELS; i++) {
        total += w->channel_weights[i];
        if (!w->channel_weights[i])
            continue;
        /* heaviest first; ties in the schema's order */
        int at = n_order++;
        while (at > 0 && w->channel_weights[order[at - 1]] < w->channel_weights[i]) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = i;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < n_order; k++) {
        int i = order[k];
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&nba__v1__channel__descriptor, i);
        char lower[32];
        size_t n = 0;
        for (const char *p = v ? v->name : "?"; *p && n < sizeof lower - 1; p++)
            lower[n++] = (char)tolower((unsigned char)*p);
        lower[n] = '\0';
        int wrote = snprintf(buf + used, cap - used, "%s%s %.0f%%", used ? " " : "", lower,
                             100.0 * w->channel_weights[i] / total);
        if (wrote < 0 || (size_t)wrote >= cap - used)
            break;
        used += (size_t)wrote;
    }
}

/* Maps popularity rank 1..n onto customer number 1..n through a fixed
 * permutation (multiplication by a unit mod n), so the frequent flyers are
 * spread over the key space as they would be in real data rather than
 * sitting together in the first pages of the database. */
typedef struct rank_map {
    uint64_t n, mult, offset;
} rank_map;

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void rank_map_init(rank_map *m, uint64_t n, rng *r)
{
    m->n = n;
    m->mult = n > 2 ? (UINT64_C(0x9e3779b97f4a7c15) % n) | 1 : 1;
    while (n > 2 && gcd(m->mult, n) != 1)
        m->mult += 2;
    m->offset = rng_below(r, n);
}

static uint64_t rank_map_apply(const rank_map *m, uint64_t rank)
{
    unsigned __int128 x = (unsigned __int128)(rank - 1) * m->mult + m->offset;
    return (uint64_t)(x % m->n) + 1;
}

/* One contact event drawn from the workload, encoded into out. */
typedef struct draw_ctx {
    const workload *w;
    rng r;
    zipf popularity;
    rank_map ranks;
    unsigned channel_total;
    unsigned touchpoint_total;
    int width;
} draw_ctx;

static size_t draw_contact(draw_ctx *d, size_t index, uint8_t *out, size_t cap)
{
    const workload *w = d->w;
    char customer[CUSTOMER_ID_MAX], location[32], flight[16], seat[8];

    if (w->each_once) {
        customer_id_format(customer, w->id_prefix, d->width,
                           rank_map_apply(&d->ranks, index % w->customers + 1));
    } else if (rng_chance(&d->r, w->unknown_ratio)) {
        char prefix[24];
        snprintf(prefix, sizeof prefix, "%sX", w->id_prefix);
        customer_id_format(customer, prefix, d->width, 1 + rng_below(&d->r, 9999999));
    } else {
        uint64_t n = rank_map_apply(&d->ranks, zipf_next(&d->popularity, &d->r));
        customer_id_format(customer, w->id_prefix, d->width, n);
    }

    unsigned ch = rng_weighted(&d->r, w->channel_weights, WORKLOAD_CHANNELS, d->channel_total);
    const channel_profile *prof = &profiles[ch];

    const char *touchpoint;
    if (w->touchpoints.count) {
        unsigned t =
            rng_weighted(&d->r, w->touchpoints.weights, w->touchpoints.count, d->touchpoint_total);
        touchpoint = w->touchpoints.names[t];
    } else {
        size_t n = 0;
        while (n < COUNT(prof->touchpoints) && prof->touchpoints[n].name)
            n++;
        touchpoint = pick(&d->r, prof->touchpoints, n);
    }

    const char *airport = pick(&d->r, airports, COUNT(airports));
    if (prof->location_kind)
        snprintf(location, sizeof location, "%s-%s%02u", airport, prof->location_kind,
                 (unsigned)(1 + rng_below(&d->r, 40)));
    else
        snprintf(location, sizeof location, "%s", airport);

    const char *cabin = pick(&d->r, cabins, COUNT(cabins));
    snprintf(flight, sizeof flight, "%s%u", pick(&d->r, carriers, COUNT(carriers)),
             (unsigned)(1 + rng_below(&d->r, 1999)));

    Nba__V1__ContactEvent__ContextEntry entries[3];
    Nba__V1__ContactEvent__ContextEntry *context[3];
    size_t n_context = 0;
    const char *keys[3] = {"flight", "cabin", "seat"};
    const char *values[3] = {flight, cabin, seat};
    size_t wanted = 2;
    if (strcmp(touchpoint, "call") != 0 && prof->location_kind && rng_chance(&d->r, 0.6)) {
        /* Rows by cabin, as on a narrow- or wide-body AZ aircraft. */
        unsigned row = cabin[0] == 'F'   ? 1 + (unsigned)rng_below(&d->r, 2)
                       : cabin[0] == 'J' ? 3 + (unsigned)rng_below(&d->r, 6)
                       : cabin[0] == 'W' ? 10 + (unsigned)rng_below(&d->r, 5)
                                         : 20 + (unsigned)rng_below(&d->r, 26);
        snprintf(seat, sizeof seat, "%u%c", row, "ABCDEFGHJK"[rng_below(&d->r, 10)]);
        wanted = 3;
    }
    for (size_t i = 0; i < wanted; i++) {
        nba__v1__contact_event__context_entry__init(&entries[i]);
        entries[i].key = (char *)keys[i];
        entries[i].value = (char *)values[i];
        context[n_context++] = &entries[i];
    }

    Nba__V1__ContactEvent ev = NBA__V1__CONTACT_EVENT__INIT;
    ev.customer_id = customer;
    ev.channel = (Nba__V1__Channel)ch;
    ev.touchpoint = (char *)touchpoint;
    ev.location = location;
    ev.occurred_at_ms = 0; /* now, as the server sees it */
    ev.language = rng_below(&d->r, 100) < prof->language_pct
                      ? (char *)pick(&d->r, languages, COUNT(languages))
                      : (char *)"";
    ev.context = context;
    ev.n_context = n_context;

    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.id = 0; /* left out of the body: workload_frame() puts it in front */
    req.body_case = NBA__V1__REQUEST__BODY_CONTACT;
    req.contact = &ev;
    size_t size = protobuf_c_message_get_packed_size(&req.base);
    if (size > cap)
        return 0;
    return protobuf_c_message_pack(&req.base, out);
}

static size_t draw_ping(uint8_t *out, size_t cap)
{
    Nba__V1__Ping ping = NBA__V1__PING__INIT;
    Nba__V1__Request req = NBA__V1__REQUEST__INIT;
    req.body_case = NBA__V1__REQUEST__BODY_PING;
    req.ping = &ping;
    if (protobuf_c_message_get_packed_size(&req.base) > cap)
        return 0;
    return protobuf_c_message_pack(&req.base, out);
}

int workload_build(const workload *w, request_pool *out, nba_error *err)
{
    *out = (request_pool){0};
    if (w->customers == 0)
        return nba_error_set(err, -EINVAL, "the workload needs at least one customer");
    if (w->pool_size == 0 || w->pool_size > POOL_MAX)
        return nba_error_set(err, -EINVAL, "the request pool holds 1 to %u requests", POOL_MAX);
    if (!(w->unknown_ratio >= 0 && w->unknown_ratio <= 1))
        return nba_error_set(err, -EINVAL, "the unknown ratio is a fraction 0..1");

    draw_ctx d = {.w = w, .width = workload_id_width(w)};
    rng_seed(&d.r, w->seed);
    int rc = zipf_init(&d.popularity, w->customers, w->skew);
    if (rc)
        return nba_error_set(err, rc, "the skew is a Zipf exponent >= 0");
    rank_map_init(&d.ranks, w->customers, &d.r);
    for (int i = 0; i < WORKLOAD_CHANNELS; i++)
        d.channel_total += w->channel_weights[i];
    for (unsigned i = 0; i < w->touchpoints.count; i++)
        d.touchpoint_total += w->touchpoints.weights[i];
    if (d.channel_total == 0)
        return nba_error_set(err, -EINVAL, "the channel mix is empty");

    size_t count = w->ping ? 1 : w->each_once ? (size_t)w->customers : w->pool_size;
    if (count > POOL_MAX)
        return nba_error_set(err, -EINVAL, "the request pool holds 1 to %u requests", POOL_MAX);
    size_t cap = count * 128 + 4096, used = 0, max_body = 0;
    out->bytes = malloc(cap);
    out->offset = malloc((count + 1) * sizeof *out->offset);
    if (!out->bytes || !out->offset) {
        rc = nba_error_set(err, -ENOMEM, "out of memory for %zu requests", count);
        goto fail;
    }
    for (size_t i = 0; i < count; i++) {
        if (cap - used < 1024) {
            size_t bigger = cap * 2;
            uint8_t *b = bigger < UINT32_MAX ? realloc(out->bytes, bigger) : NULL;
            if (!b) {
                rc = nba_error_set(err, -ENOMEM, "out of memory for %zu requests", count);
                goto fail;
            }
            out->bytes = b;
            cap = bigger;
        }
        size_t n = w->ping ? draw_ping(out->bytes + used, 1024)
                           : draw_contact(&d, i, out->bytes + used, 1024);
        if (n == 0) {
            rc = nba_error_set(err, -EINVAL, "a request does not fit 1024 bytes (id prefix?)");
            goto fail;
        }
        out->offset[i] = (uint32_t)used;
        used += n;
        if (n > max_body)
            max_body = n;
    }
    out->offset[count] = (uint32_t)used;
    out->count = count;
    out->max_frame = FRAME_HEADER_SIZE + 1 + 10 + max_body;
    return 0;
fail:
    request_pool_free(out);
    return rc;
}

void request_pool_free(request_pool *p)
{
    free(p->bytes);
    free(p->offset);
    *p = (request_pool){0};
}
