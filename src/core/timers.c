/*
 * timers.c -- binary min-heap with back-indices (see timers.h).
 */
#include "timers.h"

#include <stdlib.h>
#include "util.h"

static int before(const tnode_t *a, const tnode_t *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void place(timers_t *t, uint32_t i, tnode_t *n)
{
    t->heap[i] = n;
    n->index = i + 1;
}

static void sift_up(timers_t *t, uint32_t i)
{
    tnode_t *n = t->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!before(n, t->heap[parent]))
            break;
        place(t, i, t->heap[parent]);
        i = parent;
    }
    place(t, i, n);
}

static void sift_down(timers_t *t, uint32_t i)
{
    tnode_t *n = t->heap[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= t->len)
            break;
        if (child + 1 < t->len && before(t->heap[child + 1], t->heap[child]))
            child++;
        if (!before(t->heap[child], n))
            break;
        place(t, i, t->heap[child]);
        i = child;
    }
    place(t, i, n);
}

void timers_init(timers_t *t)
{
    t->heap = NULL;
    t->len = t->cap = 0;
    t->next_seq = 1;
}

void timers_free(timers_t *t)
{
    free(t->heap);
    t->heap = NULL;
    t->len = t->cap = 0;
}

void timers_set(timers_t *t, tnode_t *n, ntime_t at)
{
    if (n->index) {
        ntime_t old = n->at;
        n->at = at;
        if (at < old)
            sift_up(t, n->index - 1);
        else
            sift_down(t, n->index - 1);
        return;
    }
    if (t->len == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->heap = xrealloc(t->heap, t->cap * sizeof(*t->heap));
    }
    n->at = at;
    n->seq = t->next_seq++;
    place(t, t->len++, n);
    sift_up(t, t->len - 1);
}

void timers_cancel(timers_t *t, tnode_t *n)
{
    if (!n->index)
        return;
    uint32_t i = n->index - 1;
    n->index = 0;
    tnode_t *last = t->heap[--t->len];
    if (i == t->len)
        return;
    place(t, i, last);
    /* The moved node may belong above or below its new spot. */
    if (i > 0 && before(last, t->heap[(i - 1) / 2]))
        sift_up(t, i);
    else
        sift_down(t, i);
}

tnode_t *timers_peek(const timers_t *t)
{
    return t->len ? t->heap[0] : NULL;
}

tnode_t *timers_pop_due(timers_t *t, ntime_t now)
{
    tnode_t *n = timers_peek(t);
    if (!n || n->at > now)
        return NULL;
    timers_cancel(t, n);
    return n;
}

int32_t timers_wait_ms(const timers_t *t, ntime_t now, int32_t max_ms)
{
    const tnode_t *n = timers_peek(t);
    if (!n)
        return max_ms >= 0 ? max_ms : -1;
    if (n->at <= now)
        return 0;
    /* Round up: waking a millisecond late is fine, waking early is a wasted
     * turn (and an early cron fire if someone trusted it). */
    int64_t ms = (n->at - now + NTIME_NS_PER_MS - 1) / NTIME_NS_PER_MS;
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
    ntime_t first = t->heap[0]->at;
    ntime_t limit = first > NTIME_MAX - window_ns ? NTIME_MAX : first + window_ns;
    ntime_t wake = first;
    /* A node past the limit has only later nodes below it: the walk stays
     * inside the window. */
    uint32_t stack[TIMERS_COALESCE_VISITS], top = 0, visits = 0;
    stack[top++] = 0;
    while (top && visits < TIMERS_COALESCE_VISITS) {
        uint32_t i = stack[--top];
        visits++;
        if (t->heap[i]->at > wake)
            wake = t->heap[i]->at;
        for (uint32_t c = 2 * i + 1; c <= 2 * i + 2 && c < t->len; c++)
            if (t->heap[c]->at <= limit && top < TIMERS_COALESCE_VISITS)
                stack[top++] = c;
    }
    return wake;
}

uint32_t timers_count(const timers_t *t)
{
    return t->len;
}
