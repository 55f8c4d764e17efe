/*
 * slab.h -- a pool of fixed-size slots addressed by 32-bit indices.
 *
 * The core keeps millions of small records (events, leases). One malloc per
 * record costs a 16-byte header plus rounding, and a pointer per link costs
 * 8 bytes; a slab hands out slots of exactly `size` bytes, carved in order
 * from chunks of SLAB_CHUNK_SLOTS slots, and names each by an index, so
 * links between records are 4 bytes. Index 0 means "none"; valid indices
 * start at 1.
 *
 * A chunk is a mapping aligned to a power of two at least its size, with
 * a small header holding its number ahead of the slots, so the index of a
 * slot can be computed from its address (slab_index): records need not
 * carry their own index.
 *
 * Freed slots go on a free list (threaded through the slot's first 4 bytes)
 * and are reused first, newest first. A chunk is allocated on first use and
 * touched in order, so memory the process has never needed stays untouched
 * (not resident). Chunks are only returned by slab_free_all.
 *
 * Ownership: the slab owns its chunks; the records in them belong to
 * whoever allocated them. A slot's address stays valid until it is released.
 */
#ifndef SLAB_H
#define SLAB_H

#include <stddef.h>
#include <stdint.h>

#define SLAB_CHUNK_SHIFT 12
#define SLAB_CHUNK_SLOTS (1u << SLAB_CHUNK_SHIFT)
#define SLAB_MAX_INDEX 0x7fffffffu /* indices fit in 31 bits */

#define SLAB_HEADER 64        /* bytes ahead of a chunk's first slot */

typedef struct slab {
    char **chunks;           /* chunk k's first slot, which holds index
                                k*SLAB_CHUNK_SLOTS + 1 */
    uint32_t nchunks, chunks_cap;
    uint32_t size;           /* bytes per slot, >= 4 */
    uint32_t size_shift;     /* size = odd << size_shift */
    uint32_t size_inv;       /* odd * size_inv == 1 (mod 2^32) */
    uintptr_t chunk_align;   /* each chunk's mapping is aligned to this */
    uint32_t next;           /* next never-used index */
    uint32_t free_head;      /* most recently released slot, 0 if none */
    uint32_t live;           /* slots handed out and not released */
} slab_t;

/* An empty slab of slots of `size` bytes (at least 4; a multiple of the
 * records' alignment). */
void slab_init(slab_t *s, uint32_t size);

/* Frees every chunk; every index becomes invalid. */
void slab_free_all(slab_t *s);

/* A new slot's index (>= 1); its contents are undefined. Aborts past
 * SLAB_MAX_INDEX slots or when memory runs out. */
uint32_t slab_alloc(slab_t *s);

/* Gives slot i back; i must be live. */
void slab_release(slab_t *s, uint32_t i);

/* The address of live slot i (i >= 1). */
static inline void *slab_ptr(const slab_t *s, uint32_t i)
{
    i--;
    return s->chunks[i >> SLAB_CHUNK_SHIFT] + (size_t)(i & (SLAB_CHUNK_SLOTS - 1)) * s->size;
}

/* The index of live slot p (an address slab_ptr gave). */
static inline uint32_t slab_index(const slab_t *s, const void *p)
{
    uintptr_t base = (uintptr_t)p & ~(s->chunk_align - 1);
    uint32_t k = *(const uint32_t *)base;
    /* The offset is an exact multiple of size: dividing by the odd part is
     * a multiplication by its inverse modulo 2^32. */
    uint32_t off = (uint32_t)((uintptr_t)p - base - SLAB_HEADER);
    return (k << SLAB_CHUNK_SHIFT) + ((off >> s->size_shift) * s->size_inv) + 1;
}

/* slab_ptr, or NULL for index 0. */
static inline void *slab_ptr0(const slab_t *s, uint32_t i)
{
    return i ? slab_ptr(s, i) : (void *)0;
}

#endif
