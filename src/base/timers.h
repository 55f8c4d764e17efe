/*
 * timers.h -- the one deadline structure for every due time in the core.
 *
 * A 4-ary min-heap (dheap.h) ordered by (at, seq). Owners embed a tnode_t (an event,
 * a job, a parked request) and find themselves again with CONTAINER_OF; the
 * heap only borrows them. Each node remembers its heap position (index), so
 * moving or cancelling a node never searches: O(log n) for set and cancel,
 * O(1) to look at the earliest.
 * seq breaks ties in the order nodes were first scheduled, so two events
 * due at the same nanosecond become visible in creation order.
 *
 * The heap's entries hold the key (at, seq) and the owner's kind tag
 * themselves, next to the node pointer: a sift compares entries that sit
 * side by side in one array and never touches the nodes, which with a
 * million events would be a cache miss per comparison. The node is only
 * written to (its new index) when its entry moves, and is 4 bytes.
 *
 * Times: `at` is an ntime_t (the server's clock, ns: wall-clock UTC that
 * never goes back, see base/sclock.h). A wall-clock step forward makes
 * everything up to the new time due at once; after a step back the
 * server's clock runs on at the monotonic rate, so durations still elapse.
 */
#ifndef TIMERS_H
#define TIMERS_H

#include <stdint.h>
#include "ntime.h"

typedef struct tnode {
    uint32_t index;  /* 1 + position in the heap; 0 = not scheduled */
} tnode_t;

typedef struct tentry {
    ntime_t at;      /* when it is due */
    uint64_t key;    /* seq << 8 | kind; seq: order of first scheduling */
    tnode_t *node;
} tentry_t;

typedef struct timers {
    tentry_t *heap;
    uint32_t len, cap;
    uint64_t next_seq;
} timers_t;

void timers_init(timers_t *t);
void timers_free(timers_t *t); /* frees the heap array, not the nodes */

/* Schedules n at `at` with the owner's tag kind, or moves it there if it is
 * already scheduled (keeping its seq and kind). */
void timers_set(timers_t *t, tnode_t *n, ntime_t at, uint8_t kind);

/* Unschedules n; does nothing if it is not scheduled. */
void timers_cancel(timers_t *t, tnode_t *n);

static inline int timers_scheduled(const tnode_t *n) { return n->index != 0; }

/* When scheduled node n is due. */
static inline ntime_t timers_at(const timers_t *t, const tnode_t *n)
{
    return t->heap[n->index - 1].at;
}

/* The earliest node, or NULL when empty. */
tnode_t *timers_peek(const timers_t *t);

/* Removes and returns the earliest node if it is due (at <= now), else NULL;
 * its kind goes to *kind (if kind is not NULL). */
tnode_t *timers_pop_due(timers_t *t, ntime_t now, uint8_t *kind);

/* How long the loop may sleep, in whole milliseconds rounded up (so it never
 * wakes before a deadline): -1 when nothing is scheduled, 0 when something is
 * due, at most max_ms when max_ms >= 0. */
int32_t timers_wait_ms(const timers_t *t, ntime_t now, int32_t max_ms);

/* When to wake for the earliest deadline: the latest deadline no more than
 * window_ns after it, so a burst of deadlines costs one wake-up and none
 * is woken for early; NTIME_MAX when nothing is scheduled. Visits only
 * nodes inside the window, at most TIMERS_COALESCE_VISITS of them. */
#define TIMERS_COALESCE_VISITS 64
ntime_t timers_wake_at(const timers_t *t, int64_t window_ns);

uint32_t timers_count(const timers_t *t);

#endif
