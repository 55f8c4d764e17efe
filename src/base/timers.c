/*
 * timers.c -- the deadline heap: dheap.h's 4-ary heap of tentry_t, with
 * back-indices in the nodes (see timers.h).
 */
#include "timers.h"

#include <stdlib.h>
#include "dheap.h"
#include "util.h"
#include "vmem.h"

static int before(const void *a, const void *b)
{
    const tentry_t *x = a, *y = b;
    return x->at < y->at || (x->at == y->at && x->key < y->key);
}

static void place(void *ctx, uint32_t i, const void *e)
{
    timers_t *t = ctx;
    t->heap[i] = *(const tentry_t *)e;
    t->heap[i].node->index = i + 1;
}

/* The heap as dheap.h sees it. */
static inline dheap_t heap_of(timers_t *t)
{
    dheap_t h = {t->heap, sizeof(tentry_t), t->len, before, place, t};
    return h;
}

void timers_init(timers_t *t)
{
    t->heap = NULL;
    t->len = t->cap = 0;
    t->next_seq = 1;
}

void timers_free(timers_t *t)
{
    vmem_free(t->heap, (size_t)t->cap * sizeof(*t->heap));
    t->heap = NULL;
    t->len = t->cap = 0;
}

void timers_set(timers_t *t, tnode_t *n, ntime_t at, uint8_t kind)
{
    if (n->index) {
        uint32_t i = n->index - 1;
        t->heap[i].at = at;
        dheap_t h = heap_of(t);
        dheap_fix(&h, i);
        return;
    }
    if (t->len == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        t->heap = vmem_resize(t->heap, (size_t)t->cap * sizeof(*t->heap), (size_t)cap * sizeof(*t->heap));
        t->cap = cap;
    }
    tentry_t e = {at, t->next_seq++ << 8 | kind, n};
    place(t, t->len++, &e);
    dheap_t h = heap_of(t);
    dheap_sift_up(&h, t->len - 1);
}

void timers_cancel(timers_t *t, tnode_t *n)
{
    if (!n->index)
        return;
    uint32_t i = n->index - 1;
    n->index = 0;
    dheap_t h = heap_of(t);
    dheap_remove(&h, i);
    t->len = h.len;
}

tnode_t *timers_peek(const timers_t *t)
{
    return t->len ? t->heap[0].node : NULL;
}

tnode_t *timers_pop_due(timers_t *t, ntime_t now, uint8_t *kind)
{
    if (!t->len || t->heap[0].at > now)
        return NULL;
    tnode_t *n = t->heap[0].node;
    if (kind)
        *kind = (uint8_t)t->heap[0].key;
    timers_cancel(t, n);
    return n;
}

int32_t timers_wait_ms(const timers_t *t, ntime_t now, int32_t max_ms)
{
    if (!t->len)
        return max_ms >= 0 ? max_ms : -1;
    ntime_t at = t->heap[0].at;
    if (at <= now)
        return 0;
    /* Round up: waking a millisecond late is fine, waking early is a wasted
     * turn (and an early cron fire if someone trusted it). */
    int64_t ms = (at - now + NTIME_NS_PER_MS - 1) / NTIME_NS_PER_MS;
    if (max_ms >= 0 && ms > max_ms)
        ms = max_ms;
    if (ms > INT32_MAX)
        ms = INT32_MAX;
    return (int32_t)ms;
}

ntime_t timers_wake_at(const timers_t *t, int64_t window_ns)
{
    if (!t->len)
        return NTIME_MAX;
    ntime_t first = t->heap[0].at;
    ntime_t limit = first > NTIME_MAX - window_ns ? NTIME_MAX : first + window_ns;
    ntime_t wake = first;
    /* A node past the limit has only later nodes below it: the walk stays
     * inside the window. */
    uint32_t stack[TIMERS_COALESCE_VISITS], top = 0, visits = 0;
    stack[top++] = 0;
    while (top && visits < TIMERS_COALESCE_VISITS) {
        uint32_t i = stack[--top];
        visits++;
        if (t->heap[i].at > wake)
            wake = t->heap[i].at;
        for (uint32_t c = DHEAP_ARITY * i + 1; c <= DHEAP_ARITY * i + DHEAP_ARITY && c < t->len; c++)
            if (t->heap[c].at <= limit && top < TIMERS_COALESCE_VISITS)
                stack[top++] = c;
    }
    return wake;
}

uint32_t timers_count(const timers_t *t)
{
    return t->len;
}
