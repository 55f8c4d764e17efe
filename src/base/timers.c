/*
 * timers.c -- binary min-heap with back-indices (see timers.h).
 */
#include "timers.h"

#include <stdlib.h>
#include "util.h"
#include "vmem.h"

static inline int before(const tentry_t *a, const tentry_t *b)
{
    return a->at < b->at || (a->at == b->at && a->key < b->key);
}

static inline void place(timers_t *t, uint32_t i, tentry_t e)
{
    t->heap[i] = e;
    e.node->index = i + 1;
}

/* Four children per entry: half the depth of a binary heap, so half the
 * moves, each of which writes the moved node (a cold event at a million). */
#define ARITY 4

static void sift_up(timers_t *t, uint32_t i)
{
    tentry_t e = t->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / ARITY;
        if (!before(&e, &t->heap[parent]))
            break;
        place(t, i, t->heap[parent]);
        i = parent;
    }
    place(t, i, e);
}

static void sift_down(timers_t *t, uint32_t i)
{
    tentry_t e = t->heap[i];
    for (;;) {
        uint32_t first = ARITY * i + 1;
        if (first >= t->len)
            break;
        uint32_t end = first + ARITY < t->len ? first + ARITY : t->len;
        uint32_t child = first;
        for (uint32_t k = first + 1; k < end; k++)
            if (before(&t->heap[k], &t->heap[child]))
                child = k;
        if (!before(&t->heap[child], &e))
            break;
        place(t, i, t->heap[child]);
        i = child;
    }
    place(t, i, e);
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
        ntime_t old = t->heap[i].at;
        t->heap[i].at = at;
        if (at < old)
            sift_up(t, i);
        else
            sift_down(t, i);
        return;
    }
    if (t->len == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        t->heap = vmem_resize(t->heap, (size_t)t->cap * sizeof(*t->heap), (size_t)cap * sizeof(*t->heap));
        t->cap = cap;
    }
    tentry_t e = {at, t->next_seq++ << 8 | kind, n};
    place(t, t->len++, e);
    sift_up(t, t->len - 1);
}

void timers_cancel(timers_t *t, tnode_t *n)
{
    if (!n->index)
        return;
    uint32_t i = n->index - 1;
    n->index = 0;
    tentry_t last = t->heap[--t->len];
    if (i == t->len)
        return;
    place(t, i, last);
    /* The moved entry may belong above or below its new spot. */
    if (i > 0 && before(&last, &t->heap[(i - 1) / ARITY]))
        sift_up(t, i);
    else
        sift_down(t, i);
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
        for (uint32_t c = ARITY * i + 1; c <= ARITY * i + ARITY && c < t->len; c++)
            if (t->heap[c].at <= limit && top < TIMERS_COALESCE_VISITS)
                stack[top++] = c;
    }
    return wake;
}

uint32_t timers_count(const timers_t *t)
{
    return t->len;
}
