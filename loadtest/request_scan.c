/* request_scan.c - see request_scan.h. */
#include "request_scan.h"

#include <errno.h>

enum wire_type { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

/* Field numbers of proto/nba.proto. */
enum { REQUEST_ID = 1, REQUEST_CONTACT_F = 2, REQUEST_PING_F = 3 };
enum { CONTACT_CUSTOMER_ID = 1 };

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

typedef struct field {
    uint32_t number;
    unsigned type;
    uint64_t varint;     /* WIRE_VARINT payload */
    const uint8_t *data; /* WIRE_LEN payload */
    size_t len;
} field;

/* Reads one field at *p: its header, then its payload (varints read,
 * length-delimited bounds taken, fixed sizes skipped). */
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
    case WIRE_I32: {
        long size = f->type == WIRE_I64 ? 8 : 4;
        if (end - *p < size)
            return -EBADMSG;
        *p += size;
        return 0;
    }
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
    default:
        return -EBADMSG;
    }
}

static int scan_contact(const uint8_t *p, const uint8_t *end, request_info *out)
{
    out->customer = NULL;
    out->customer_len = 0;
    while (p < end) {
        field f;
        int rc = next_field(&p, end, &f);
        if (rc)
            return rc;
        if (f.number == CONTACT_CUSTOMER_ID && f.type == WIRE_LEN) {
            out->customer = f.data;
            out->customer_len = f.len;
        }
    }
    return 0;
}

int request_scan(const uint8_t *body, size_t len, request_info *out)
{
    const uint8_t *p = body, *end = body + len;
    *out = (request_info){0};
    while (p < end) {
        field f;
        int rc = next_field(&p, end, &f);
        if (rc)
            return rc;
        switch (f.number) {
        case REQUEST_ID:
            if (f.type != WIRE_VARINT)
                return -EBADMSG;
            out->id = f.varint;
            break;
        case REQUEST_CONTACT_F:
            if (f.type != WIRE_LEN)
                return -EBADMSG;
            out->kind = REQUEST_CONTACT;
            rc = scan_contact(f.data, f.data + f.len, out);
            if (rc)
                return rc;
            break;
        case REQUEST_PING_F:
            if (f.type != WIRE_LEN)
                return -EBADMSG;
            out->kind = REQUEST_PING;
            break;
        default:
            if (f.number > REQUEST_PING_F && f.number <= 6 && f.type == WIRE_LEN)
                out->kind = REQUEST_OTHER; /* status, explain, reload: a later body wins */
            break;
        }
    }
    return 0;
}
