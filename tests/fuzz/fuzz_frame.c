/* fuzz_frame - the wire as a contact point could send it: a byte stream cut
 * into frames with frame_cut() (at most FRAME_DEFAULT_MAX body bytes), each
 * body decoded as an nba.v1.Request twice: by wire_decode_request(), the
 * decider's hand-written decoder, and by protobuf-c's unpack, the reference
 * it promises to match. Both decode into arenas whose first block is small,
 * so decoding chains blocks.
 *
 * Checked for every input: frame_cut() agrees with the header's length; the
 * two decoders accept the same bodies and give the same request (compared
 * as packed bytes, unknown fields aside); a decoded request has every
 * string the decider reads, packs again to a frame that frame_cut() accepts
 * whole, and decodes again to the same request. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "frame.h"
#include "fuzz_util.h"
#include "nba.pb-c.h"
#include "wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static arena decode_arena; /* protobuf-c's unpack, and the round trip */
static arena wire_arena;   /* wire_decode_request() */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (arena_init(&decode_arena, 1024) != 0 || arena_init(&wire_arena, 1024) != 0)
        fuzz_fail("out of memory");
    return 0;
}

/* What frame_cut() must answer, worked out independently of it. */
static frame_status expected_cut(const uint8_t *buf, size_t avail, uint32_t max_body)
{
    if (avail < 4)
        return FRAME_INCOMPLETE;
    uint32_t len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (len > max_body)
        return FRAME_TOO_LARGE;
    return avail - 4 >= len ? FRAME_READY : FRAME_INCOMPLETE;
}

/* The packed bytes of a request, without its unknown fields. */
static uint8_t *packed(Nba__V1__Request *req, size_t *len)
{
    fuzz_strip_unknown(&req->base);
    *len = protobuf_c_message_get_packed_size(&req->base);
    uint8_t *out = arena_alloc(&decode_arena, *len + 1);
    FUZZ_CHECK(out != NULL, "out of memory");
    FUZZ_CHECK(protobuf_c_message_pack(&req->base, out) == *len, "pack and size disagree");
    return out;
}

/* wire_decode_request() gives exactly what protobuf-c gives. */
static void check_same(Nba__V1__Request *reference, Nba__V1__Request *fast)
{
    size_t ref_len, fast_len;
    const uint8_t *ref_bytes = packed(reference, &ref_len);
    const uint8_t *fast_bytes = packed(fast, &fast_len);
    FUZZ_CHECK(ref_len == fast_len && memcmp(ref_bytes, fast_bytes, ref_len) == 0,
               "wire_decode_request and protobuf-c decode a request differently (%zu and %zu "
               "bytes packed)",
               fast_len, ref_len);
}

/* Packs req as a frame, cuts it again and decodes the body: the round trip
 * a request makes from nbactl to nbad. */
static void check_round_trip(Nba__V1__Request *req)
{
    fuzz_strip_unknown(&req->base);
    size_t size = frame_packed_size(&req->base);
    FUZZ_CHECK(size >= FRAME_HEADER_SIZE, "packed size %zu below the header size", size);
    uint8_t *out = arena_alloc(&decode_arena, size);
    FUZZ_CHECK(out != NULL, "out of memory");
    size_t written = frame_pack(&req->base, out);
    FUZZ_CHECK(written == size, "frame_pack wrote %zu bytes, frame_packed_size said %zu", written,
               size);

    uint32_t body_len = 0;
    frame_status st = frame_cut(out, written, UINT32_MAX, &body_len);
    FUZZ_CHECK(st == FRAME_READY && body_len == written - FRAME_HEADER_SIZE,
               "a packed frame does not cut whole (status %d, body %u of %zu)", (int)st,
               (unsigned)body_len, written);

    Nba__V1__Request *again = nba__v1__request__unpack(arena_pb_allocator(&decode_arena), body_len,
                                                       out + FRAME_HEADER_SIZE);
    FUZZ_CHECK(again != NULL, "a re-packed request does not decode");
    FUZZ_CHECK(again->id == req->id && again->body_case == req->body_case,
               "a re-packed request decodes differently");
    if (req->body_case == NBA__V1__REQUEST__BODY_CONTACT) {
        const Nba__V1__ContactEvent *a = req->contact, *b = again->contact;
        FUZZ_CHECK(strcmp(a->customer_id, b->customer_id) == 0 && a->channel == b->channel &&
                       strcmp(a->touchpoint, b->touchpoint) == 0 &&
                       a->occurred_at_ms == b->occurred_at_ms && a->n_context == b->n_context,
                   "a re-packed contact event decodes differently");
    }
    FUZZ_CHECK(protobuf_c_message_get_packed_size(&again->base) == body_len,
               "a re-packed request changes size when packed again");
}

/* Every string the decider reads is there (proto3: empty, never NULL). */
static void check_request(const Nba__V1__Request *req)
{
    FUZZ_CHECK(protobuf_c_message_check(&req->base), "a decoded request fails its own check");
    if (req->body_case == NBA__V1__REQUEST__BODY_CONTACT) {
        const Nba__V1__ContactEvent *ev = req->contact;
        FUZZ_CHECK(ev != NULL && ev->customer_id && ev->touchpoint && ev->location && ev->language,
                   "a decoded contact event lacks a field");
        for (size_t i = 0; i < ev->n_context; i++)
            FUZZ_CHECK(ev->context[i] && ev->context[i]->key && ev->context[i]->value,
                       "a decoded context entry lacks its key or value");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    for (;;) {
        const uint8_t *buf = data + pos;
        size_t avail = size - pos;
        uint32_t body_len = 0;
        frame_status st = frame_cut(buf, avail, FRAME_DEFAULT_MAX, &body_len);
        FUZZ_CHECK(st == expected_cut(buf, avail, FRAME_DEFAULT_MAX),
                   "frame_cut answers %d at offset %zu", (int)st, pos);
        if (st == FRAME_INCOMPLETE)
            break; /* a client that stopped in the middle of a frame */
        FUZZ_CHECK(body_len == frame_get_length(buf), "frame_cut reports another length");
        if (st == FRAME_TOO_LARGE)
            break; /* nbad answers frame_too_large and closes the connection */

        uint8_t header[FRAME_HEADER_SIZE];
        frame_put_length(header, body_len);
        FUZZ_CHECK(memcmp(header, buf, FRAME_HEADER_SIZE) == 0, "frame_put_length disagrees");

        arena_reset(&decode_arena);
        arena_reset(&wire_arena);
        const uint8_t *body = buf + FRAME_HEADER_SIZE;
        Nba__V1__Request *req =
            nba__v1__request__unpack(arena_pb_allocator(&decode_arena), body_len, body);
        Nba__V1__Request *fast = wire_decode_request(body, body_len, &wire_arena);
        FUZZ_CHECK((req == NULL) == (fast == NULL),
                   "a %u-byte body: protobuf-c %s it, wire_decode_request %s it",
                   (unsigned)body_len, req ? "decodes" : "refuses", fast ? "decodes" : "refuses");
        if (!req)
            break; /* nbad answers bad_request and closes the connection */
        check_request(fast);
        check_request(req);
        check_same(req, fast);
        check_round_trip(req);
        pos += FRAME_HEADER_SIZE + body_len;
    }
    arena_reset(&decode_arena);
    arena_reset(&wire_arena);
    return 0;
}
