/* request_scan.h - reads the id and the customer id of an encoded
 * nba.v1.Request without decoding it.
 *
 * nbaceiling answers every request after one database lookup and nothing
 * else, so it must not pay for a protobuf decode: it walks the top-level
 * fields of the wire format and, inside the contact event (field 2), finds
 * customer_id (field 1), skipping everything else. Field numbers are those
 * of proto/nba.proto.
 */
#ifndef NBA_REQUEST_SCAN_H
#define NBA_REQUEST_SCAN_H

#include <stddef.h>
#include <stdint.h>

typedef enum request_kind {
    REQUEST_OTHER = 0, /* no body, or one the scan does not look into */
    REQUEST_CONTACT,
    REQUEST_PING,
} request_kind;

typedef struct request_info {
    uint64_t id;
    request_kind kind;       /* the last body field present wins, as in protobuf */
    const uint8_t *customer; /* contact events: ContactEvent.customer_id, inside body */
    size_t customer_len;     /* 0 when absent */
} request_info;

/* Scans body[0..len), the body of one request frame. Returns 0 with *out
 * filled (out->customer points into body), or -EBADMSG when the bytes are
 * not a well-formed protobuf message (a truncated varint or length, a field
 * running past the end, a reserved wire type), at the top level or inside
 * the contact event. */
int request_scan(const uint8_t *body, size_t len, request_info *out);

#endif
