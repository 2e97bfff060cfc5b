/* arena.c - see include/arena.h. */
#include "arena.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A block's free space is tracked in the arena (next, end) while it is the
 * head, so that arena_alloc() can be inline. */
struct arena_block {
    arena_block *prev; /* the block filled before this one; NULL for the first */
    size_t size;       /* usable bytes in data[] */
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

static arena_block *block_new(size_t size, arena_block *prev)
{
    if (size > SIZE_MAX - sizeof(arena_block))
        return NULL;
    arena_block *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->prev = prev;
    b->size = size;
    return b;
}

static void *pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* released all at once by arena_reset() */
}

int arena_init(arena *a, size_t block_size)
{
    memset(a, 0, sizeof *a);
    if (block_size < 1024)
        block_size = 1024;
    a->head = block_new(block_size, NULL);
    if (!a->head)
        return -ENOMEM;
    a->next = a->head->data;
    a->end = a->head->data + block_size;
    a->block_size = block_size;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    return 0;
}

void arena_destroy(arena *a)
{
    arena_block *b = a->head;
    while (b) {
        arena_block *prev = b->prev;
        free(b);
        b = prev;
    }
    a->head = NULL;
    a->next = a->end = NULL;
}

void *arena_alloc_slow(arena *a, size_t n)
{
    size_t rounded = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (rounded < n)
        return NULL; /* overflow */
    if (rounded > (size_t)(a->end - a->next)) {
        /* Chain a block big enough for this request and then some, so a
         * large request does not chain one block per allocation. */
        size_t size = rounded > a->block_size ? rounded : a->block_size;
        arena_block *nb = block_new(size, a->head);
        if (!nb)
            return NULL;
        a->head = nb;
        a->next = nb->data;
        a->end = nb->data + size;
    }
    void *p = a->next;
    a->next += rounded;
    a->used_total += rounded;
    return p;
}

void *arena_calloc(arena *a, size_t n)
{
    void *p = arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *arena_grow_slow(arena *a, void *arr, size_t n, size_t *cap, size_t size)
{
    size_t more = *cap ? *cap * 2 : 4;
    if (more < *cap || more > SIZE_MAX / size)
        return NULL;
    void *grown = arena_alloc(a, more * size);
    if (!grown)
        return NULL;
    if (n)
        memcpy(grown, arr, n * size);
    *cap = more;
    return grown;
}

void arena_reset(arena *a)
{
    if (a->used_total > a->high_water)
        a->high_water = a->used_total;
    arena_block *b = a->head;
    while (b->prev) {
        arena_block *prev = b->prev;
        free(b);
        b = prev;
    }
    a->head = b;
    a->next = b->data;
    a->end = b->data + b->size;
    a->used_total = 0;
}
