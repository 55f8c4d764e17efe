/*
 * waiters.h -- parked long-poll acquires, by channel, with their deadlines.
 *
 * A parked request waits on its channel's queue (oldest first) until the
 * store says the channel may have gained a free event (store_avail:
 * the queue becomes pending and is retried after the request or loop turn
 * in progress, never from inside a store operation), or until its wait
 * ends (a deadline in the waiters' own timer heap). Queues are made when
 * the first request parks on a channel and freed when the last leaves.
 * The waiters borrow the requests; h_acquire.c answers them.
 *
 * A waiter is READY, PROBING or HALF_CLOSED. One whose client sent a FIN
 * is PROBING while probe.h finds out whether that client still reads: it
 * keeps its place in its queue but is passed over (events go to the
 * waiters behind it, and newcomers do not wait for it), and it has a
 * second node, in the probes heap, for its next look. A probe that finds
 * the client reading makes it HALF_CLOSED: served in its place again, its
 * FIN expected, never probed again.
 */
#ifndef HTTP_WAITERS_H
#define HTTP_WAITERS_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include "base/strmap.h"
#include "base/timers.h"
#include "probe.h"

typedef struct waitq waitq_t;

enum { WAITER_READY, WAITER_PROBING, WAITER_HALF_CLOSED };

/* A parked request's place; it lives in the request's state. */
typedef struct waiter {
    h2o_linklist_t link;      /* on its queue, oldest first */
    tnode_t deadline;         /* end of the wait */
    tnode_t look;             /* PROBING: the probe's next look */
    waitq_t *q;               /* NULL: not parked */
    size_t max;               /* what it asked for */
    int64_t ttl_ns;
    uint8_t state;            /* WAITER_READY, ... */
    probe_t probe;            /* PROBING */
} waiter_t;

struct waitq {
    h2o_linklist_t waiting;   /* waiter_t.link */
    h2o_linklist_t pending;   /* on waiters_t.pending while it should be retried */
    const char *channel;      /* the key copy in waiters_t.queues */
    size_t channel_len;
    size_t n, probing;        /* waiters on it, and how many of them are PROBING */
    waiter_t *busy;           /* the head, while a store's acquire for it runs */
    uint8_t serving;          /* being served: kept even when empty */
    uint8_t dry;              /* the last acquire for it found nothing */
    uint8_t again;            /* it gained events while busy: retry after */
};

typedef struct waiters {
    strmap_t queues;          /* channel name -> waitq_t (owned) */
    h2o_linklist_t pending;   /* waitq_t.pending */
    timers_t deadlines;       /* waiter_t.deadline */
    timers_t looks;           /* waiter_t.look */
    size_t count;             /* parked now */
} waiters_t;

void waiters_init(waiters_t *ws);
void waiters_free(waiters_t *ws); /* all must have left */

/* Parks w on the queue of channel until `until`. */
void waiters_park(waiters_t *ws, waiter_t *w, const char *channel, size_t len, ntime_t until);

/* Takes w off its queue and timer heap (nothing if not parked); frees
 * the queue when it empties. */
void waiters_leave(waiters_t *ws, waiter_t *w);

/* Frees q if nobody waits on it and nothing runs for it. */
void waiters_tidy(waiters_t *ws, waitq_t *q);

/* Is anyone parked on channel and not PROBING? */
int waiters_any(const waiters_t *ws, const char *channel, size_t len);

/* The store's "became available": queues the channel's waiters for a
 * retry. Cheap when nobody waits. */
void waiters_avail(waiters_t *ws, const char *channel, size_t len);

/* A queue to retry (taken off the pending list), or NULL. */
waitq_t *waiters_next_pending(waiters_t *ws);

/* The oldest waiter of q that is not PROBING, or NULL. */
waiter_t *waiters_head(waitq_t *q);

/* Makes w PROBING, with its next look at `at`. */
void waiters_probe(waiters_t *ws, waiter_t *w, ntime_t at);

/* A PROBING waiter whose look is due by now (its look taken off the
 * heap), or NULL. Set the next look with waiters_probe. */
waiter_t *waiters_next_look(waiters_t *ws, ntime_t now);

/* The probe found w's client reading: w is HALF_CLOSED and its queue is
 * retried. */
void waiters_half_closed(waiters_t *ws, waiter_t *w);

/* A waiter whose wait ended by now (taken off its queue), or NULL. */
waiter_t *waiters_next_due(waiters_t *ws, ntime_t now);

/* The oldest waiter on channel that no store operation is serving
 * (taken off its queue), or NULL. */
waiter_t *waiters_take(waiters_t *ws, const char *channel, size_t len);

/* Any waiter at all (taken off its queue), or NULL: for shutdown. */
waiter_t *waiters_any_left(waiters_t *ws);

/* The earliest deadline or look, NTIME_MAX if none. */
ntime_t waiters_next_at(const waiters_t *ws);

#endif
