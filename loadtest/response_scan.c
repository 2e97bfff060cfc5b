/* response_scan.c - see response_scan.h. */
#include "response_scan.h"

#include <errno.h>

enum wire_type { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

/* Field numbers of proto/nba.proto. */
enum { RESPONSE_ID = 1, RESPONSE_DECISION_F = 2, RESPONSE_PONG_F = 3, RESPONSE_ERROR_F = 4 };
enum { DECISION_KNOWN = 2, DECISION_ACTIONS = 4 };

/* Reads a varint at *p (at most 10 bytes, before end), advancing *p. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*p >= end)
            return -EBADMSG;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -EBADMSG;
}

/* Reads one field header and, for length-delimited fields, the payload
 * bounds; other payloads are read (varint) or skipped (fixed). */
typedef struct field {
    uint32_t number;
    unsigned type;
    uint64_t varint;     /* WIRE_VARINT payload */
    const uint8_t *data; /* WIRE_LEN payload */
    size_t len;
} field;

static int next_field(const uint8_t **p, const uint8_t *end, field *f)
{
    uint64_t key;
    int rc = read_varint(p, end, &key);
    if (rc)
        return rc;
    f->number = (uint32_t)(key >> 3);
    f->type = (unsigned)(key & 7);
    if (f->number == 0)
        return -EBADMSG;
    switch (f->type) {
    case WIRE_VARINT:
        return read_varint(p, end, &f->varint);
    case WIRE_I64:
        if (end - *p < 8)
            return -EBADMSG;
        *p += 8;
        return 0;
    case WIRE_I32:
        if (end - *p < 4)
            return -EBADMSG;
        *p += 4;
        return 0;
    case WIRE_LEN: {
        uint64_t n;
        rc = read_varint(p, end, &n);
        if (rc)
            return rc;
        if (n > (uint64_t)(end - *p))
            return -EBADMSG;
        f->data = *p;
        f->len = (size_t)n;
        *p += n;
        return 0;
    }
    default: /* groups (3, 4) are not proto3; 6 and 7 are reserved */
        return -EBADMSG;
    }
}

static int scan_decision(const uint8_t *p, const uint8_t *end, response_info *out)
{
    out->known = 0;
    out->actions = 0;
    while (p < end) {
        field f;
        int rc = next_field(&p, end, &f);
        if (rc)
            return rc;
        if (f.number == DECISION_KNOWN && f.type == WIRE_VARINT)
            out->known = f.varint != 0;
        else if (f.number == DECISION_ACTIONS && f.type == WIRE_LEN)
            out->actions++;
    }
    return 0;
}

int response_scan(const uint8_t *body, size_t len, response_info *out)
{
    const uint8_t *p = body, *end = body + len;
    *out = (response_info){0};
    while (p < end) {
        field f;
        int rc = next_field(&p, end, &f);
        if (rc)
            return rc;
        switch (f.number) {
        case RESPONSE_ID:
            if (f.type != WIRE_VARINT)
                return -EBADMSG;
            out->id = f.varint;
            break;
        case RESPONSE_DECISION_F:
            if (f.type != WIRE_LEN)
                return -EBADMSG;
            out->kind = RESPONSE_DECISION;
            rc = scan_decision(f.data, f.data + f.len, out);
            if (rc)
                return rc;
            break;
        case RESPONSE_PONG_F:
        case RESPONSE_ERROR_F:
            if (f.type != WIRE_LEN)
                return -EBADMSG;
            out->kind = f.number == RESPONSE_PONG_F ? RESPONSE_PONG : RESPONSE_ERROR;
            break;
        default:
            break;
        }
    }
    return 0;
}
