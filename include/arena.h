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
    unsigned char *next; /* the free bytes of the head block: [next, end) */
    unsigned char *end;
    arena_block *head;     /* block being filled; the first block is kept on reset */
    size_t block_size;     /* size of the first block */
    size_t high_water;     /* most bytes one cycle used, for diagnostics */
    size_t used_total;     /* bytes handed out since the last reset */
    ProtobufCAllocator pb; /* protobuf-c allocator backed by this arena */
} arena;

#define ARENA_ALIGN 16

/* Initialises an arena whose first block holds block_size bytes.
 * Returns 0 or -ENOMEM. */
int arena_init(arena *a, size_t block_size);

/* Releases every block. The arena may be arena_init()ed again. */
void arena_destroy(arena *a);

/* arena_alloc() when the head block has no room left: chains a block. */
void *arena_alloc_slow(arena *a, size_t n);

/* Returns n bytes aligned to 16, or NULL when memory is exhausted.
 * Inline: a decision makes a few dozen allocations, nearly all of which
 * the head block has room for. */
static inline void *arena_alloc(arena *a, size_t n)
{
    size_t rounded = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (rounded >= n && rounded <= (size_t)(a->end - a->next)) {
        void *p = a->next;
        a->next += rounded;
        a->used_total += rounded;
        return p;
    }
    return arena_alloc_slow(a, n);
}

/* As arena_alloc, zero-filled. */
void *arena_calloc(arena *a, size_t n);

/* Copies s[0..len) into the arena and NUL-terminates it. NULL on -ENOMEM. */
char *arena_strndup(arena *a, const char *s, size_t len);

/* The copy arena_grow() makes when the array is full. */
void *arena_grow_slow(arena *a, void *arr, size_t n, size_t *cap, size_t size);

/* Room for one more element of an array of n elements of `size` bytes
 * that has room for *cap: arr itself while n < *cap, else a copy of it
 * with twice the room (4 elements when *cap is 0), *cap updated; the old
 * array stays until the reset. For lists whose length is not known before
 * they are read (a record's attributes, a customer's incidents): no
 * counting pass first. NULL on -ENOMEM. */
static inline void *arena_grow(arena *a, void *arr, size_t n, size_t *cap, size_t size)
{
    return n < *cap ? arr : arena_grow_slow(a, arr, n, cap, size);
}

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
