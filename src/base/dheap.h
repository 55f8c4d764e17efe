/*
 * dheap.h -- the sifts of a 4-ary min-heap, written once for any entry.
 *
 * A heap is an array of entries its owner keeps (the timer heap's
 * tentry_t, a channel's ready heap of rentry_t); this file only moves
 * them. Entries hold their key, so comparing two never touches what they
 * stand for. Every move goes through the owner's place(ctx, i, entry),
 * which stores the entry at position i and tells the object it stands
 * for its new position (the back-index that makes removal O(log n)
 * without a search, as beanstalkd's heap.c does with setpos).
 *
 * Four children per entry: half the depth of a binary heap, so half the
 * moves (each a write to a cold object when there are a million), and
 * the four children's keys sit in one or two cache lines.
 *
 * The functions are forced inline so that each heap gets its own copy
 * with its before() and place() called directly: no call through a
 * pointer on the publish path.
 */
#ifndef DHEAP_H
#define DHEAP_H

#include <stdint.h>
#include <string.h>

#define DHEAP_ARITY 4
#define DHEAP_ENTRY_MAX 32 /* bytes of the largest entry type */

/* Does entry a sort before entry b? */
typedef int (*dheap_before_fn)(const void *a, const void *b);
/* Stores entry e at position i of the heap and tells its owner. */
typedef void (*dheap_place_fn)(void *ctx, uint32_t i, const void *e);

typedef struct dheap {
    void *entries;            /* the array, owned by the caller */
    size_t size;              /* bytes of one entry (<= DHEAP_ENTRY_MAX) */
    uint32_t len;             /* entries in the heap */
    dheap_before_fn before;
    dheap_place_fn place;
    void *ctx;                /* handed to place */
} dheap_t;

#define DHEAP_AT(h, i) ((char *)(h)->entries + (size_t)(i) * (h)->size)

/* Moves the entry at i up to where it belongs. */
static inline __attribute__((always_inline)) void dheap_sift_up(const dheap_t *h, uint32_t i)
{
    _Alignas(16) unsigned char e[DHEAP_ENTRY_MAX];
    memcpy(e, DHEAP_AT(h, i), h->size);
    while (i > 0) {
        uint32_t parent = (i - 1) / DHEAP_ARITY;
        if (!h->before(e, DHEAP_AT(h, parent)))
            break;
        h->place(h->ctx, i, DHEAP_AT(h, parent));
        i = parent;
    }
    h->place(h->ctx, i, e);
}

/* Moves the entry at i down to where it belongs. */
static inline __attribute__((always_inline)) void dheap_sift_down(const dheap_t *h, uint32_t i)
{
    _Alignas(16) unsigned char e[DHEAP_ENTRY_MAX];
    memcpy(e, DHEAP_AT(h, i), h->size);
    for (;;) {
        uint32_t first = DHEAP_ARITY * i + 1;
        if (first >= h->len)
            break;
        uint32_t end = first + DHEAP_ARITY < h->len ? first + DHEAP_ARITY : h->len;
        uint32_t child = first;
        for (uint32_t k = first + 1; k < end; k++)
            if (h->before(DHEAP_AT(h, k), DHEAP_AT(h, child)))
                child = k;
        if (!h->before(DHEAP_AT(h, child), e))
            break;
        h->place(h->ctx, i, DHEAP_AT(h, child));
        i = child;
    }
    h->place(h->ctx, i, e);
}

/* The entry at i changed (or was put there): moves it up or down. */
static inline __attribute__((always_inline)) void dheap_fix(const dheap_t *h, uint32_t i)
{
    if (i > 0 && h->before(DHEAP_AT(h, i), DHEAP_AT(h, (i - 1) / DHEAP_ARITY)))
        dheap_sift_up(h, i);
    else
        dheap_sift_down(h, i);
}

/* Removes the entry at i: the last entry takes its place. The caller
 * has already told the removed entry's owner it is out. h->len shrinks. */
static inline __attribute__((always_inline)) void dheap_remove(dheap_t *h, uint32_t i)
{
    uint32_t last = --h->len;
    if (i == last)
        return;
    h->place(h->ctx, i, DHEAP_AT(h, last));
    dheap_fix(h, i);
}

#endif
