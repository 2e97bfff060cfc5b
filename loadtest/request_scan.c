/* request_scan.c - see request_scan.h. */
#include "request_scan.h"

#include <errno.h>

#include "pb_read.h"

/* Field numbers of proto/nba.proto. */
enum { REQUEST_ID = 1, REQUEST_CONTACT_F = 2, REQUEST_PING_F = 3 };
enum { CONTACT_CUSTOMER_ID = 1 };

static int scan_contact(const uint8_t *p, size_t len, request_info *out)
{
    pb_reader r = {p, p + len};
    out->customer = NULL;
    out->customer_len = 0;
    while (r.p < r.end) {
        pb_field f;
        if (!pb_next_field(&r, &f))
            return -EBADMSG;
        if (f.number == CONTACT_CUSTOMER_ID && f.wire == PB_LEN) {
            out->customer = f.data;
            out->customer_len = f.len;
        }
    }
    return 0;
}

int request_scan(const uint8_t *body, size_t len, request_info *out)
{
    pb_reader r = {body, body + len};
    *out = (request_info){0};
    while (r.p < r.end) {
        pb_field f;
        int rc;
        if (!pb_next_field(&r, &f))
            return -EBADMSG;
        switch (f.number) {
        case REQUEST_ID:
            if (f.wire != PB_VARINT)
                return -EBADMSG;
            out->id = f.varint;
            break;
        case REQUEST_CONTACT_F:
            if (f.wire != PB_LEN)
                return -EBADMSG;
            out->kind = REQUEST_CONTACT;
            rc = scan_contact(f.data, f.len, out);
            if (rc)
                return rc;
            break;
        case REQUEST_PING_F:
            if (f.wire != PB_LEN)
                return -EBADMSG;
            out->kind = REQUEST_PING;
            break;
        default:
            if (f.number > REQUEST_PING_F && f.number <= 6 && f.wire == PB_LEN)
                out->kind = REQUEST_OTHER; /* status, explain, reload: a later body wins */
            break;
        }
    }
    return 0;
}
