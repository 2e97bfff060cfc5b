/* wire.c - see include/wire.h.
 *
 * Decoding: one pass over the body that either produces exactly the
 * message protobuf-c's unpack would, or gives up (FALLBACK) and lets
 * protobuf-c do it. It gives up on anything unusual: a field of the wrong
 * wire type, a second body, an explain request, a malformed or oversized
 * key, varint or length. Fields it does not know are skipped, as protobuf-c
 * skips them (it keeps them as unknown fields, which nbad never reads).
 *
 * Encoding: a measuring pass records, in writing order, the length of every
 * string and nested message (each string is measured once), then a writing
 * pass emits the fields in field-number order, leaving out fields that hold
 * their default value as protobuf-c does for proto3 fields.
 */
#include "wire.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "frame.h"
#include "pb_read.h"

/* Not a failure: the body is left to protobuf-c. */
#define FALLBACK 1

/* ---- decoding ---- */

static int read_varint_field(pb_reader *r, unsigned wire, uint64_t *out)
{
    return wire == PB_VARINT && pb_varint(r, 10, out) ? 0 : FALLBACK;
}

/* A request is decoded from a copy of its body in the arena, its strings
 * left in place (pb_read.h). */
typedef struct decoder {
    arena *a;
    pb_strings st;
} decoder;

static int read_string(pb_reader *r, unsigned wire, decoder *dc, char **out)
{
    return pb_string(r, wire, &dc->st, out) ? 0 : FALLBACK;
}

/* A message of no known fields (Ping, StatusRequest, ReloadRequest): its
 * content must skip cleanly. */
static int read_empty(pb_reader *r, unsigned wire)
{
    const uint8_t *d;
    size_t n;
    if (wire != PB_LEN || !pb_len(r, &d, &n))
        return FALLBACK;
    pb_reader in = {d, d + n};
    while (in.p < in.end) {
        uint32_t field;
        unsigned w;
        if (!pb_key(&in, &field, &w) || !pb_skip(&in, w))
            return FALLBACK;
    }
    return 0;
}

static int decode_context_entry(const uint8_t *d, size_t n, decoder *dc,
                                Nba__V1__ContactEvent__ContextEntry *e)
{
    nba__v1__contact_event__context_entry__init(e);
    return pb_string_pair(d, n, &dc->st, &e->key, &e->value) ? 0 : FALLBACK;
}

static int decode_contact(pb_reader *outer, unsigned wire, decoder *dc, Nba__V1__ContactEvent **out)
{
    const uint8_t *d;
    size_t n;
    if (wire != PB_LEN || !pb_len(outer, &d, &n))
        return FALLBACK;
    Nba__V1__ContactEvent *ev = arena_alloc(dc->a, sizeof *ev);
    if (!ev)
        return -ENOMEM;
    nba__v1__contact_event__init(ev);
    /* The context's pointers grow by doubling in the arena: a contact
     * carries a handful of entries, so once or twice, and no counting pass
     * over the body first. */
    size_t context_cap = 0;
    pb_reader r = {d, d + n};
    while (r.p < r.end) {
        uint32_t field;
        unsigned w;
        uint64_t v = 0;
        const uint8_t *ed;
        size_t en;
        Nba__V1__ContactEvent__ContextEntry *entry;
        int rc = 0;
        if (!pb_next_key(&dc->st, &r, &field, &w))
            return FALLBACK;
        switch (field) {
        case 1:
            rc = read_string(&r, w, dc, &ev->customer_id);
            break;
        case 2: /* an open enum: any int32 value is kept */
            rc = read_varint_field(&r, w, &v);
            ev->channel = (Nba__V1__Channel)(int32_t)(uint32_t)v;
            break;
        case 3:
            rc = read_string(&r, w, dc, &ev->touchpoint);
            break;
        case 4:
            rc = read_varint_field(&r, w, &v);
            ev->occurred_at_ms = (int64_t)v;
            break;
        case 5:
            rc = read_string(&r, w, dc, &ev->location);
            break;
        case 6:
            rc = read_string(&r, w, dc, &ev->language);
            break;
        case 7:
            if (w != PB_LEN || !pb_len(&r, &ed, &en))
                return FALLBACK;
            ev->context =
                arena_grow(dc->a, ev->context, ev->n_context, &context_cap, sizeof *ev->context);
            entry = arena_alloc(dc->a, sizeof *entry);
            if (!ev->context || !entry)
                return -ENOMEM;
            rc = decode_context_entry(ed, en, dc, entry);
            ev->context[ev->n_context] = entry;
            ev->n_context += rc == 0;
            break;
        case 8: /* a lookup key instead of the customer_id */
            rc = read_string(&r, w, dc, &ev->key_name);
            break;
        case 9:
            rc = read_string(&r, w, dc, &ev->key_value);
            break;
        default:
            rc = pb_skip(&r, w) ? 0 : FALLBACK;
        }
        if (rc)
            return rc;
    }
    *out = ev;
    return 0;
}

/* The common requests. Returns 0, FALLBACK or -ENOMEM. */
static int decode_request(const uint8_t *body, size_t len, arena *a, Nba__V1__Request **out)
{
    Nba__V1__Request *req = arena_alloc(a, sizeof *req);
    uint8_t *copy = arena_alloc(a, len + 1);
    if (!req || !copy)
        return -ENOMEM;
    memcpy(copy, body, len);
    decoder dc = {a, {NULL}};
    nba__v1__request__init(req);
    pb_reader r = {copy, copy + len};
    while (r.p < r.end) {
        uint32_t field;
        unsigned wire;
        uint64_t v = 0;
        int rc = 0;
        if (!pb_next_key(&dc.st, &r, &field, &wire))
            return FALLBACK;
        if (field >= 2 && field <= 8 && req->body_case != NBA__V1__REQUEST__BODY__NOT_SET)
            return FALLBACK; /* a second body: protobuf-c's rules decide */
        switch (field) {
        case 1:
            rc = read_varint_field(&r, wire, &v);
            req->id = v;
            break;
        case 2:
            rc = decode_contact(&r, wire, &dc, &req->contact);
            req->body_case = NBA__V1__REQUEST__BODY_CONTACT;
            break;
        case 3:
            rc = read_empty(&r, wire);
            req->ping = arena_alloc(a, sizeof *req->ping);
            if (!req->ping)
                return -ENOMEM;
            nba__v1__ping__init(req->ping);
            req->body_case = NBA__V1__REQUEST__BODY_PING;
            break;
        case 4:
            rc = read_empty(&r, wire);
            req->status = arena_alloc(a, sizeof *req->status);
            if (!req->status)
                return -ENOMEM;
            nba__v1__status_request__init(req->status);
            req->body_case = NBA__V1__REQUEST__BODY_STATUS;
            break;
        case 6:
            rc = read_empty(&r, wire);
            req->reload = arena_alloc(a, sizeof *req->reload);
            if (!req->reload)
                return -ENOMEM;
            nba__v1__reload_request__init(req->reload);
            req->body_case = NBA__V1__REQUEST__BODY_RELOAD;
            break;
        case 5:              /* explain */
        case 7:              /* report_incident */
        case 8:              /* resolve_incident */
            return FALLBACK; /* rarer than contacts: protobuf-c decodes them */
        default:
            rc = pb_skip(&r, wire) ? 0 : FALLBACK;
        }
        if (rc)
            return rc;
    }
    pb_strings_end(&dc.st); /* the last string: on the copy's spare byte */
    *out = req;
    return 0;
}

Nba__V1__Request *wire_decode_request(const uint8_t *body, size_t len, arena *a)
{
    Nba__V1__Request *req = NULL;
    int rc = decode_request(body, len, a, &req);
    if (rc == 0)
        return req;
    if (rc < 0)
        return NULL;
    /* What the fast path allocated before giving up stays in the arena
     * until its next reset: a few bytes, once per unusual request. */
    return nba__v1__request__unpack(arena_pb_allocator(a), len, body);
}

bool wire_request_is_feed(const uint8_t *body, size_t len)
{
    pb_reader r = {body, body + len};
    bool feed = false;
    while (r.p < r.end) {
        uint32_t field;
        unsigned wire;
        if (!pb_key(&r, &field, &wire) || !pb_skip(&r, wire))
            return false;
        if (field >= 2 && field <= 8)
            feed = field == NBA__V1__REQUEST__BODY_REPORT_INCIDENT ||
                   field == NBA__V1__REQUEST__BODY_RESOLVE_INCIDENT;
    }
    return feed;
}

/* ---- encoding ---- */

/* The writing helpers run for every field of every answer; GCC at -O2 left
 * them out of line, which cost about a tenth of an answer's encoding. */
#define FIELD_HELPER static inline __attribute__((always_inline))

static inline size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Field keys here are single bytes: field numbers below 16. */
static size_t len_field_size(size_t len)
{
    return 1 + varint_size(len) + len;
}

typedef struct measure {
    size_t *sizes;
    size_t n;
} measure;

/* A string field's bytes (0 when empty, which proto3 leaves out); records
 * its length. */
FIELD_HELPER size_t measure_string(measure *m, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    m->sizes[m->n++] = len;
    return len ? len_field_size(len) : 0;
}

static size_t measure_action(measure *m, const Nba__V1__Action *act)
{
    size_t slot = m->n++, size = 0;
    size += measure_string(m, act->type);
    size += measure_string(m, act->rule_id);
    for (size_t i = 0; i < act->n_params; i++) {
        size_t entry_slot = m->n++;
        size_t entry = measure_string(m, act->params[i]->key);
        entry += measure_string(m, act->params[i]->value);
        m->sizes[entry_slot] = entry;
        size += len_field_size(entry);
    }
    size += measure_string(m, act->message);
    size += measure_string(m, act->reason);
    size += act->follow_up ? 2 : 0;
    m->sizes[slot] = size;
    return size;
}

size_t wire_response_size(const Nba__V1__Response *resp, arena *a, wire_plan *plan)
{
    plan->sizes = NULL;
    plan->n = 0;
    const Nba__V1__Decision *d =
        resp->body_case == NBA__V1__RESPONSE__BODY_DECISION ? resp->decision : NULL;
    if (!d) {
        plan->frame = frame_packed_size(&resp->base);
        return plan->frame;
    }
    size_t slots = 4;
    for (size_t i = 0; i < d->n_actions; i++)
        slots += 5 + 3 * d->actions[i]->n_params;
    measure m = {arena_alloc(a, slots * sizeof(size_t)), 0};
    if (!m.sizes)
        return 0;

    size_t slot = m.n++, size = 0;
    size += measure_string(&m, d->customer_id);
    size += d->known ? 2 : 0;
    size += measure_string(&m, d->language);
    for (size_t i = 0; i < d->n_actions; i++)
        size += len_field_size(measure_action(&m, d->actions[i]));
    size += measure_string(&m, d->ruleset);
    m.sizes[slot] = size;

    size_t body = (resp->id ? 1 + varint_size(resp->id) : 0) + len_field_size(size);
    plan->sizes = m.sizes;
    plan->n = m.n;
    plan->frame = FRAME_HEADER_SIZE + body;
    return plan->frame;
}

typedef struct writer {
    uint8_t *p;
    const size_t *sizes;
    size_t next;
} writer;

FIELD_HELPER void put_varint(writer *w, uint64_t v)
{
    while (v >= 0x80) {
        *w->p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w->p++ = (uint8_t)v;
}

/* The key and length of a nested message, whose size comes next in the
 * plan. */
FIELD_HELPER void put_message_header(writer *w, unsigned field)
{
    *w->p++ = (uint8_t)(field << 3 | PB_LEN);
    put_varint(w, w->sizes[w->next++]);
}

FIELD_HELPER void put_string(writer *w, unsigned field, const char *s)
{
    size_t len = w->sizes[w->next++];
    if (!len)
        return;
    *w->p++ = (uint8_t)(field << 3 | PB_LEN);
    put_varint(w, len);
    memcpy(w->p, s, len);
    w->p += len;
}

static void put_bool(writer *w, unsigned field, protobuf_c_boolean b)
{
    if (!b)
        return;
    *w->p++ = (uint8_t)(field << 3 | PB_VARINT);
    *w->p++ = 1;
}

size_t wire_response_pack(const Nba__V1__Response *resp, const wire_plan *plan, uint8_t *out)
{
    if (!plan->sizes)
        return frame_pack(&resp->base, out);
    const Nba__V1__Decision *d = resp->decision;
    writer w = {out + FRAME_HEADER_SIZE, plan->sizes, 0};
    if (resp->id) {
        *w.p++ = 1 << 3 | PB_VARINT;
        put_varint(&w, resp->id);
    }
    put_message_header(&w, 2);
    put_string(&w, 1, d->customer_id);
    put_bool(&w, 2, d->known);
    put_string(&w, 3, d->language);
    for (size_t i = 0; i < d->n_actions; i++) {
        const Nba__V1__Action *act = d->actions[i];
        put_message_header(&w, 4);
        put_string(&w, 1, act->type);
        put_string(&w, 2, act->rule_id);
        for (size_t k = 0; k < act->n_params; k++) {
            put_message_header(&w, 3);
            put_string(&w, 1, act->params[k]->key);
            put_string(&w, 2, act->params[k]->value);
        }
        put_string(&w, 4, act->message);
        put_string(&w, 5, act->reason);
        put_bool(&w, 6, act->follow_up);
    }
    put_string(&w, 5, d->ruleset);
    frame_put_length(out, (uint32_t)(plan->frame - FRAME_HEADER_SIZE));
    return plan->frame;
}
