/* response_scan.h - reads just enough of an encoded nba.v1.Response to check
 * it, without decoding it.
 *
 * The load generator must stay cheaper than the server it measures, so it
 * does not unpack responses: it walks the top-level fields of the wire
 * format (and the few fields of a Decision it reports on), skipping the
 * rest. Field numbers are those of proto/nba.proto.
 */
#ifndef NBA_RESPONSE_SCAN_H
#define NBA_RESPONSE_SCAN_H

#include <stddef.h>
#include <stdint.h>

typedef enum response_kind {
    RESPONSE_NONE = 0, /* no body set */
    RESPONSE_DECISION,
    RESPONSE_PONG,
    RESPONSE_ERROR,
} response_kind;

typedef struct response_info {
    uint64_t id;
    response_kind kind; /* the last body field present wins, as in protobuf */
    int known;          /* Decision.known (decisions only) */
    uint32_t actions;   /* number of Decision.actions (decisions only) */
} response_info;

/* Scans body[0..len), the body of one frame. Returns 0 with *out filled, or
 * -EBADMSG when the bytes are not a well-formed protobuf message (a
 * truncated varint or length, a field running past the end, a reserved wire
 * type). Unknown fields are skipped, as protobuf requires. */
int response_scan(const uint8_t *body, size_t len, response_info *out);

#endif
