/* response_scan.c - see response_scan.h. */
#include "response_scan.h"

#include <errno.h>

#include "pb_read.h"

/* Field numbers of proto/nba.proto. */
enum { RESPONSE_ID = 1, RESPONSE_DECISION_F = 2, RESPONSE_PONG_F = 3, RESPONSE_ERROR_F = 4 };
enum { DECISION_KNOWN = 2, DECISION_ACTIONS = 4 };

static int scan_decision(const uint8_t *p, size_t len, response_info *out)
{
    pb_reader r = {p, p + len};
    out->known = 0;
    out->actions = 0;
    while (r.p < r.end) {
        pb_field f;
        if (!pb_next_field(&r, &f))
            return -EBADMSG;
        if (f.number == DECISION_KNOWN && f.wire == PB_VARINT)
            out->known = f.varint != 0;
        else if (f.number == DECISION_ACTIONS && f.wire == PB_LEN)
            out->actions++;
    }
    return 0;
}

int response_scan(const uint8_t *body, size_t len, response_info *out)
{
    pb_reader r = {body, body + len};
    *out = (response_info){0};
    while (r.p < r.end) {
        pb_field f;
        int rc;
        if (!pb_next_field(&r, &f))
            return -EBADMSG;
        switch (f.number) {
        case RESPONSE_ID:
            if (f.wire != PB_VARINT)
                return -EBADMSG;
            out->id = f.varint;
            break;
        case RESPONSE_DECISION_F:
            if (f.wire != PB_LEN)
                return -EBADMSG;
            out->kind = RESPONSE_DECISION;
            rc = scan_decision(f.data, f.len, out);
            if (rc)
                return rc;
            break;
        case RESPONSE_PONG_F:
        case RESPONSE_ERROR_F:
            if (f.wire != PB_LEN)
                return -EBADMSG;
            out->kind = f.number == RESPONSE_PONG_F ? RESPONSE_PONG : RESPONSE_ERROR;
            break;
        default:
            break;
        }
    }
    return 0;
}
