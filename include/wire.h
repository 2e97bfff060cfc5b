/* wire.h - the two messages of every decision, coded by hand: the Request a
 * contact point sends and the Response that carries its Decision.
 *
 * protobuf-c's generic code walks descriptors field by field: unpacking a
 * Request and packing a Response (sized in one pass, written in another,
 * every string measured twice) took a fifth of a decision's time in nbad.
 * These functions produce the same messages and the same bytes for the
 * shapes that matter, and hand everything else to protobuf-c, so that every
 * other input behaves exactly as it always has.
 */
#ifndef NBA_WIRE_H
#define NBA_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arena.h"
#include "nba.pb-c.h"

/* Decodes a frame body as an nba.v1.Request into arena a (see arena.h for
 * the lifetime). A request with a contact event, a ping, a status or a
 * reload request is decoded here; any other request, and every body that
 * is not plainly well-formed, goes through protobuf-c's unpack, which is
 * the reference for what is accepted. Returns the request, or NULL when
 * the body does not decode (or memory runs out). */
Nba__V1__Request *wire_decode_request(const uint8_t *body, size_t len, arena *a);

/* Whether a frame body is a request of the incident feed (report_incident
 * or resolve_incident, the last body field wins as in protobuf), found by
 * scanning its top-level fields without decoding them. Such requests only
 * write, so a connection waiting for the writer may queue more of them
 * behind the first without changing the order of its answers. false for
 * anything else, a body that does not scan included. */
bool wire_request_is_feed(const uint8_t *body, size_t len);

/* How a Response will be encoded: filled by wire_response_size(), used by
 * wire_response_pack(), from the same arena. */
typedef struct wire_plan {
    size_t *sizes; /* lengths of strings and nested messages, in writing order */
    size_t n;
    size_t frame; /* bytes of the whole frame, header included */
} wire_plan;

/* Measures resp as one frame (header and body). A decision is measured
 * here, with room for its lengths taken from arena a; any other response
 * is left to protobuf-c. Returns the frame's size, or 0 when the arena is
 * out of memory. */
size_t wire_response_size(const Nba__V1__Response *resp, arena *a, wire_plan *plan);

/* Writes resp, measured by wire_response_size() into plan and not changed
 * since, as one frame into out (plan->frame bytes): exactly the bytes
 * frame_pack() would write. Returns plan->frame. */
size_t wire_response_pack(const Nba__V1__Response *resp, const wire_plan *plan, uint8_t *out);

#endif
