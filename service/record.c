/* record.c - see include/record.h.
 *
 * The records are read with pb_read.h. A field that appears twice keeps its
 * last value, a repeated one appends, as protobuf requires. Fields this
 * code does not know are skipped by their wire type, so records written by
 * a newer loader still decode.
 */
#include "record.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "pb_read.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "record.c reads doubles as little-endian memory"
#endif

/* A string field (pb_read.h: strings stay in the record's copy). */
static int read_string(pb_reader *r, unsigned wire, pb_strings *st, char **out)
{
    return pb_string(r, wire, st, out) ? 0 : -EBADMSG;
}

/* The arena copy a record is decoded from: len bytes and a spare one. */
static const uint8_t *copy_record(const uint8_t *buf, size_t len, arena *a, pb_strings *st)
{
    uint8_t *copy = arena_alloc(a, len + 1);
    if (copy)
        memcpy(copy, buf, len);
    st->nul = NULL;
    return copy;
}

static int read_bool(pb_reader *r, unsigned wire, protobuf_c_boolean *out)
{
    uint64_t v;
    if (wire != PB_VARINT || !pb_varint(r, 10, &v))
        return -EBADMSG;
    *out = v != 0;
    return 0;
}

/* A varint field's raw value; the caller casts it to the field's type. */
static int read_varint_field(pb_reader *r, unsigned wire, uint64_t *out)
{
    return wire == PB_VARINT && pb_varint(r, 10, out) ? 0 : -EBADMSG;
}

static int read_double_field(pb_reader *r, unsigned wire, double *out)
{
    if (wire != PB_I64 || r->end - r->p < 8)
        return -EBADMSG;
    memcpy(out, r->p, 8);
    r->p += 8;
    return 0;
}

static int decode_attribute(const uint8_t *buf, size_t len, pb_strings *st, Nba__V1__Attribute *m)
{
    nba__v1__attribute__init(m);
    pb_reader r = {buf, buf + len};
    while (r.p < r.end) {
        uint32_t field;
        unsigned wire;
        int rc = 0;
        if (!pb_next_key(st, &r, &field, &wire))
            return -EBADMSG;
        switch (field) {
        case 1:
            rc = read_string(&r, wire, st, &m->name);
            break;
        case 2:
            rc = read_string(&r, wire, st, &m->text);
            break;
        case 3:
            rc = read_bool(&r, wire, &m->has_number);
            break;
        case 4:
            rc = read_double_field(&r, wire, &m->number);
            break;
        default:
            rc = pb_skip(&r, wire) ? 0 : -EBADMSG;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Counts the occurrences of `field` at the top level of buf, so a repeated
 * field gets its array in one allocation. */
static int count_field(const uint8_t *buf, size_t len, uint32_t want, size_t *count)
{
    pb_reader r = {buf, buf + len};
    size_t n = 0;
    while (r.p < r.end) {
        uint32_t field;
        unsigned wire;
        if (!pb_key(&r, &field, &wire) || !pb_skip(&r, wire))
            return -EBADMSG;
        n += field == want;
    }
    *count = n;
    return 0;
}

int record_decode_customer(const uint8_t *buf, size_t len, arena *a, Nba__V1__Customer **out)
{
    Nba__V1__Customer *m = arena_alloc(a, sizeof *m);
    pb_strings st;
    const uint8_t *copy = copy_record(buf, len, a, &st);
    if (!m || !copy)
        return -ENOMEM;
    nba__v1__customer__init(m);
    size_t attributes_cap = 0;
    int rc = 0;
    pb_reader r = {copy, copy + len};
    while (r.p < r.end) {
        uint32_t field;
        unsigned wire;
        const uint8_t *d;
        size_t n;
        Nba__V1__Attribute *attr;
        if (!pb_next_key(&st, &r, &field, &wire))
            return -EBADMSG;
        switch (field) {
        case 1:
            rc = read_string(&r, wire, &st, &m->customer_id);
            break;
        case 2:
            rc = read_string(&r, wire, &st, &m->name);
            break;
        case 3:
            rc = read_string(&r, wire, &st, &m->tier);
            break;
        case 4:
            rc = read_double_field(&r, wire, &m->lifetime_value);
            break;
        case 5:
            rc = read_double_field(&r, wire, &m->predicted_ltv);
            break;
        case 6:
            rc = read_string(&r, wire, &st, &m->language);
            break;
        case 7:
            if (wire != PB_LEN || !pb_len(&r, &d, &n))
                return -EBADMSG;
            m->attributes = arena_grow(a, m->attributes, m->n_attributes, &attributes_cap,
                                       sizeof *m->attributes);
            attr = arena_alloc(a, sizeof *attr);
            if (!m->attributes || !attr)
                return -ENOMEM;
            m->attributes[m->n_attributes] = attr;
            rc = decode_attribute(d, n, &st, attr);
            m->n_attributes += rc == 0;
            break;
        default:
            rc = pb_skip(&r, wire) ? 0 : -EBADMSG;
        }
        if (rc)
            return rc;
    }
    pb_strings_end(&st);
    *out = m;
    return 0;
}

int record_decode_incident(const uint8_t *buf, size_t len, arena *a, Nba__V1__Incident **out)
{
    Nba__V1__Incident *m = arena_alloc(a, sizeof *m);
    pb_strings st;
    const uint8_t *copy = copy_record(buf, len, a, &st);
    if (!m || !copy)
        return -ENOMEM;
    nba__v1__incident__init(m);
    pb_reader r = {copy, copy + len};
    while (r.p < r.end) {
        uint32_t field;
        unsigned wire;
        uint64_t v = 0;
        int rc = 0;
        if (!pb_next_key(&st, &r, &field, &wire))
            return -EBADMSG;
        switch (field) {
        case 1:
            rc = read_string(&r, wire, &st, &m->incident_id);
            break;
        case 2:
            rc = read_string(&r, wire, &st, &m->customer_id);
            break;
        case 3:
            rc = read_string(&r, wire, &st, &m->kind);
            break;
        case 4: /* int32: a negative value is sign-extended to ten bytes */
            rc = read_varint_field(&r, wire, &v);
            m->severity = (int32_t)(uint32_t)v;
            break;
        case 5:
            rc = read_varint_field(&r, wire, &v);
            m->occurred_at_ms = (int64_t)v;
            break;
        case 6:
            rc = read_string(&r, wire, &st, &m->flight);
            break;
        case 7:
            rc = read_bool(&r, wire, &m->resolved);
            break;
        case 8:
            rc = read_string(&r, wire, &st, &m->note);
            break;
        case 9: /* never stored by a load, but a known field all the same */
            rc = read_string(&r, wire, &st, &m->recovered_by);
            break;
        case 10:
            rc = read_varint_field(&r, wire, &v);
            m->recovered_at_ms = (int64_t)v;
            break;
        default:
            rc = pb_skip(&r, wire) ? 0 : -EBADMSG;
        }
        if (rc)
            return rc;
    }
    pb_strings_end(&st);
    *out = m;
    return 0;
}

/* A map entry (key = 1, value = 2, both strings): how protobuf writes each
 * pair of a map<string, string>. */
static int decode_string_pair(const uint8_t *buf, size_t len, pb_strings *st, char **key,
                              char **value)
{
    return pb_string_pair(buf, len, st, key, value) ? 0 : -EBADMSG;
}

/* The params and context maps of a history entry: counted first, so each
 * gets its pointers and entries in one allocation. */
static int history_maps(const uint8_t *buf, size_t len, arena *a, Nba__V1__HistoryEntry *m)
{
    size_t params, context;
    int rc = count_field(buf, len, 8, &params);
    if (rc == 0)
        rc = count_field(buf, len, 9, &context);
    if (rc)
        return rc;
    if (params) {
        m->params = arena_alloc(a, params * (sizeof *m->params + sizeof **m->params));
        if (!m->params)
            return -ENOMEM;
        Nba__V1__HistoryEntry__ParamsEntry *e =
            (Nba__V1__HistoryEntry__ParamsEntry *)(m->params + params);
        for (size_t i = 0; i < params; i++) {
            nba__v1__history_entry__params_entry__init(&e[i]);
            m->params[i] = &e[i];
        }
    }
    if (context) {
        m->context = arena_alloc(a, context * (sizeof *m->context + sizeof **m->context));
        if (!m->context)
            return -ENOMEM;
        Nba__V1__HistoryEntry__ContextEntry *e =
            (Nba__V1__HistoryEntry__ContextEntry *)(m->context + context);
        for (size_t i = 0; i < context; i++) {
            nba__v1__history_entry__context_entry__init(&e[i]);
            m->context[i] = &e[i];
        }
    }
    return 0;
}

int record_decode_history(const uint8_t *buf, size_t len, arena *a, Nba__V1__HistoryEntry **out)
{
    Nba__V1__HistoryEntry *m = arena_alloc(a, sizeof *m);
    pb_strings st;
    const uint8_t *copy = copy_record(buf, len, a, &st);
    if (!m || !copy)
        return -ENOMEM;
    nba__v1__history_entry__init(m);
    int rc = history_maps(copy, len, a, m);
    if (rc)
        return rc;
    pb_reader r = {copy, copy + len};
    while (r.p < r.end) {
        uint32_t field;
        unsigned wire;
        uint64_t v = 0;
        const uint8_t *d;
        size_t n;
        if (!pb_next_key(&st, &r, &field, &wire))
            return -EBADMSG;
        switch (field) {
        case 1:
            rc = read_string(&r, wire, &st, &m->customer_id);
            break;
        case 2:
            rc = read_varint_field(&r, wire, &v);
            m->at_ms = (int64_t)v;
            break;
        case 3: /* an open enum: any int32 value is kept */
            rc = read_varint_field(&r, wire, &v);
            m->channel = (Nba__V1__Channel)(int32_t)(uint32_t)v;
            break;
        case 4:
            rc = read_string(&r, wire, &st, &m->touchpoint);
            break;
        case 5:
            rc = read_string(&r, wire, &st, &m->action);
            break;
        case 6:
            rc = read_string(&r, wire, &st, &m->rule_id);
            break;
        case 7:
            rc = read_string(&r, wire, &st, &m->incident_id);
            break;
        case 8:
            if (wire != PB_LEN || !pb_len(&r, &d, &n))
                return -EBADMSG;
            rc = decode_string_pair(d, n, &st, &m->params[m->n_params]->key,
                                    &m->params[m->n_params]->value);
            m->n_params++;
            break;
        case 9:
            if (wire != PB_LEN || !pb_len(&r, &d, &n))
                return -EBADMSG;
            rc = decode_string_pair(d, n, &st, &m->context[m->n_context]->key,
                                    &m->context[m->n_context]->value);
            m->n_context++;
            break;
        default:
            rc = pb_skip(&r, wire) ? 0 : -EBADMSG;
        }
        if (rc)
            return rc;
    }
    pb_strings_end(&st);
    *out = m;
    return 0;
}
