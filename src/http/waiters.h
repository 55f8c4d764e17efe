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
 */
#ifndef HTTP_WAITERS_H
#define HTTP_WAITERS_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include "base/strmap.h"
#include "base/timers.h"

typedef struct waitq waitq_t;

/* A parked request's place; it lives in the request's state. */
typedef struct waiter {
    h2o_linklist_t link;      /* on its queue, oldest first */
    tnode_t deadline;         /* end of the wait */
    waitq_t *q;               /* NULL: not parked */
    size_t max;               /* what it asked for */
    int64_t ttl_ns;
} waiter_t;

struct waitq {
    h2o_linklist_t waiting;   /* waiter_t.link */
    h2o_linklist_t pending;   /* on waiters_t.pending while it should be retried */
    const char *channel;      /* the key copy in waiters_t.queues */
    size_t channel_len;
    waiter_t *busy;           /* the head, while a store's acquire for it runs */
    uint8_t serving;          /* being served: kept even when empty */
    uint8_t dry;              /* the last acquire for it found nothing */
    uint8_t again;            /* it gained events while busy: retry after */
};

typedef struct waiters {
    strmap_t queues;          /* channel name -> waitq_t (owned) */
    h2o_linklist_t pending;   /* waitq_t.pending */
    timers_t deadlines;       /* waiter_t.deadline */
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

/* Is anyone parked on channel? */
int waiters_any(const waiters_t *ws, const char *channel, size_t len);

/* The store's "became available": queues the channel's waiters for a
 * retry. Cheap when nobody waits. */
void waiters_avail(waiters_t *ws, const char *channel, size_t len);

/* A queue to retry (taken off the pending list), or NULL. */
waitq_t *waiters_next_pending(waiters_t *ws);

/* The oldest waiter of q, or NULL. */
waiter_t *waiters_head(waitq_t *q);

/* A waiter whose wait ended by now (taken off its queue), or NULL. */
waiter_t *waiters_next_due(waiters_t *ws, ntime_t now);

/* Any waiter at all (taken off its queue), or NULL: for shutdown. */
waiter_t *waiters_any_left(waiters_t *ws);

/* The earliest deadline, NTIME_MAX if none. */
ntime_t waiters_next_at(const waiters_t *ws);

#endif
