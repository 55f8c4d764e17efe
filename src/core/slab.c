/*
 * slab.c -- fixed-size slots in chunks, named by 32-bit indices (slab.h).
 */
#include "slab.h"

#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "base/vmem.h"

static size_t chunk_bytes(const slab_t *s)
{
    return SLAB_HEADER + (size_t)SLAB_CHUNK_SLOTS * s->size;
}

void slab_init(slab_t *s, uint32_t size)
{
    ASSERT(size >= sizeof(uint32_t));
    memset(s, 0, sizeof(*s));
    s->size = size;
    s->next = 1;
    uint32_t odd = size;
    while (!(odd & 1)) {
        odd >>= 1;
        s->size_shift++;
    }
    /* Newton's iteration doubles the correct low bits each step, from 3. */
    uint32_t inv = odd;
    for (int k = 0; k < 4; k++)
        inv *= 2 - odd * inv;
    s->size_inv = inv;
    s->chunk_align = 4096;
    while (s->chunk_align < chunk_bytes(s))
        s->chunk_align <<= 1;
}

void slab_free_all(slab_t *s)
{
    for (uint32_t k = 0; k < s->nchunks; k++)
        vmem_unmap(s->chunks[k] - SLAB_HEADER, chunk_bytes(s));
    free(s->chunks);
    slab_init(s, s->size);
}

uint32_t slab_alloc(slab_t *s)
{
    uint32_t i = s->free_head;
    if (i) {
        memcpy(&s->free_head, slab_ptr(s, i), sizeof(uint32_t));
        s->live++;
        return i;
    }
    ASSERT(s->next <= SLAB_MAX_INDEX);
    i = s->next++;
    uint32_t k = (i - 1) >> SLAB_CHUNK_SHIFT;
    if (k == s->nchunks) {
        if (s->nchunks == s->chunks_cap) {
            s->chunks_cap = s->chunks_cap ? s->chunks_cap * 2 : 8;
            s->chunks = xrealloc(s->chunks, s->chunks_cap * sizeof(*s->chunks));
        }
        /* Fresh mapped memory: pages become resident only as slots are
         * first used. */
        char *base = vmem_map_aligned(chunk_bytes(s), s->chunk_align);
        memcpy(base, &k, sizeof(k));
        s->chunks[s->nchunks++] = base + SLAB_HEADER;
    }
    s->live++;
    return i;
}

void slab_release(slab_t *s, uint32_t i)
{
    ASSERT(i > 0 && i < s->next && s->live > 0);
    memcpy(slab_ptr(s, i), &s->free_head, sizeof(uint32_t));
    s->free_head = i;
    s->live--;
}
