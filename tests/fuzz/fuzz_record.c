/* fuzz_record - the records nbad reads on every decision, as a damaged or
 * foreign database could hold them: the input's first byte picks the
 * message (a customer, an incident, a contact history entry), the rest is
 * its stored bytes, decoded twice: by the one-pass decoders of record.c
 * into an arena whose first block is small, and by protobuf-c's unpack,
 * the reference they promise to match.
 *
 * Checked for every input: what protobuf-c refuses, the decoder refuses;
 * what the decoder accepts, protobuf-c accepts too, with the same fields
 * (compared packed, unknown fields aside), and it passes protobuf-c's own
 * check. (The decoder may refuse more: a known field of the wrong wire
 * type, which protobuf-c takes for some types.) */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "fuzz_util.h"
#include "nba.pb-c.h"
#include "record.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static arena fast_arena; /* record.c */
static arena ref_arena;  /* protobuf-c, and packing */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (arena_init(&fast_arena, 1024) != 0 || arena_init(&ref_arena, 1024) != 0)
        fuzz_fail("out of memory");
    return 0;
}

static const uint8_t *packed(ProtobufCMessage *m, size_t *len)
{
    fuzz_strip_unknown(m);
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *out = arena_alloc(&ref_arena, *len + 1);
    FUZZ_CHECK(out != NULL, "out of memory");
    FUZZ_CHECK(protobuf_c_message_pack(m, out) == *len, "pack and size disagree");
    return out;
}

static void check_same(const char *what, ProtobufCMessage *ref, int rc, ProtobufCMessage *fast)
{
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG, "decoding %s answered %d", what, rc);
    if (!ref) {
        FUZZ_CHECK(rc == -EBADMSG, "protobuf-c refuses %s, record.c decodes it", what);
        return;
    }
    if (rc)
        return; /* stricter about wire types than protobuf-c */
    FUZZ_CHECK(protobuf_c_message_check(fast), "a decoded %s fails its own check", what);
    size_t ref_len, fast_len;
    const uint8_t *ref_bytes = packed(ref, &ref_len);
    const uint8_t *fast_bytes = packed(fast, &fast_len);
    FUZZ_CHECK(ref_len == fast_len && memcmp(ref_bytes, fast_bytes, ref_len) == 0,
               "record.c and protobuf-c decode %s differently (%zu and %zu bytes packed)", what,
               fast_len, ref_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *buf = data + 1;
    size_t len = size - 1;
    ProtobufCAllocator *pb = arena_pb_allocator(&ref_arena);
    switch (data[0] % 3) {
    case 0: {
        Nba__V1__Customer *fast = NULL;
        int rc = record_decode_customer(buf, len, &fast_arena, &fast);
        Nba__V1__Customer *ref = nba__v1__customer__unpack(pb, len, buf);
        check_same("a customer", ref ? &ref->base : NULL, rc, fast ? &fast->base : NULL);
        break;
    }
    case 1: {
        Nba__V1__Incident *fast = NULL;
        int rc = record_decode_incident(buf, len, &fast_arena, &fast);
        Nba__V1__Incident *ref = nba__v1__incident__unpack(pb, len, buf);
        check_same("an incident", ref ? &ref->base : NULL, rc, fast ? &fast->base : NULL);
        break;
    }
    default: {
        Nba__V1__HistoryEntry *fast = NULL;
        int rc = record_decode_history(buf, len, &fast_arena, &fast);
        Nba__V1__HistoryEntry *ref = nba__v1__history_entry__unpack(pb, len, buf);
        check_same("a history entry", ref ? &ref->base : NULL, rc, fast ? &fast->base : NULL);
        break;
    }
    }
    arena_reset(&fast_arena);
    arena_reset(&ref_arena);
    return 0;
}
