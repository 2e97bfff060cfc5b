/* arena.h - a bump allocator reset once per request.
 *
 * Everything a request needs (the decoded request, the customer and incident
 * records copied out of LMDB, the decision and the response) is allocated
 * from the worker's arena and released all at once by arena_reset(). The
 * first block is reused from request to request, so a steady stream of
 * requests makes no malloc calls; a request larger than the block chains
 * extra blocks that the next reset frees.
 *
 * Ownership: memory returned by arena_alloc() and friends belongs to the
 * arena and is valid until the next arena_reset() or arena_destroy().
 * Not thread-safe: one arena per thread.
 */
#ifndef NBA_ARENA_H
#define NBA_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct arena_block arena_block;

typedef struct arena {
    arena_block *head;     /* block being filled; the first block is kept on reset */
    size_t block_size;     /* size of the first block */
    size_t high_water;     /* most bytes one cycle used, for diagnostics */
    size_t used_total;     /* bytes handed out since the last reset */
    ProtobufCAllocator pb; /* protobuf-c allocator backed by this arena */
} arena;

/* Initialises an arena whose first block holds block_size bytes.
 * Returns 0 or -ENOMEM. */
int arena_init(arena *a, size_t block_size);

/* Releases every block. The arena may be arena_init()ed again. */
void arena_destroy(arena *a);

/* Returns n bytes aligned to 16, or NULL when memory is exhausted. */
void *arena_alloc(arena *a, size_t n);

/* As arena_alloc, zero-filled. */
void *arena_calloc(arena *a, size_t n);

/* Copies s[0..len) into the arena and NUL-terminates it. NULL on -ENOMEM. */
char *arena_strndup(arena *a, const char *s, size_t len);

/* Forgets every allocation; keeps the first block for reuse and frees the
 * others. */
void arena_reset(arena *a);

/* The protobuf-c allocator backed by this arena, to pass to
 * protobuf_c_message_unpack() and friends. Its free() is a no-op: messages
 * unpacked with it are released by arena_reset(), never by
 * *_free_unpacked(). */
static inline ProtobufCAllocator *arena_pb_allocator(arena *a)
{
    return &a->pb;
}

#endif
