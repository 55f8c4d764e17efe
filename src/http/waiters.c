/*
 * waiters.c -- parked acquires by channel (see waiters.h).
 */
#include "waiters.h"

#include <stdlib.h>
#include "base/util.h"

#define WAITER_OF(node) ((waiter_t *)((char *)(node) - offsetof(waiter_t, deadline)))

void waiters_init(waiters_t *ws)
{
    strmap_init(&ws->queues);
    h2o_linklist_init_anchor(&ws->pending);
    timers_init(&ws->deadlines);
    ws->count = 0;
}

void waiters_free(waiters_t *ws)
{
    ASSERT(ws->count == 0);
    strmap_free(&ws->queues);
    timers_free(&ws->deadlines);
}

void waiters_park(waiters_t *ws, waiter_t *w, const char *channel, size_t len, ntime_t until)
{
    waitq_t *q = strmap_get(&ws->queues, channel, len);
    if (!q) {
        q = xcalloc(1, sizeof(*q));
        h2o_linklist_init_anchor(&q->waiting);
        strmap_entry_t *e = strmap_put(&ws->queues, channel, len, q);
        q->channel = e->key;
        q->channel_len = len;
    }
    w->q = q;
    w->link.next = w->link.prev = NULL;
    h2o_linklist_insert(&q->waiting, &w->link);
    w->deadline.index = 0;
    timers_set(&ws->deadlines, &w->deadline, until, 0);
    ws->count++;
}

void waiters_leave(waiters_t *ws, waiter_t *w)
{
    waitq_t *q = w->q;
    if (!q)
        return;
    w->q = NULL;
    h2o_linklist_unlink(&w->link);
    timers_cancel(&ws->deadlines, &w->deadline);
    ws->count--;
    if (q->busy == w)
        q->busy = NULL;
    waiters_tidy(ws, q);
}

void waiters_tidy(waiters_t *ws, waitq_t *q)
{
    if (!h2o_linklist_is_empty(&q->waiting) || q->busy || q->serving)
        return;
    if (h2o_linklist_is_linked(&q->pending))
        h2o_linklist_unlink(&q->pending);
    free(strmap_del(&ws->queues, q->channel, q->channel_len));
}

int waiters_any(const waiters_t *ws, const char *channel, size_t len)
{
    waitq_t *q = ws->count > 0 ? strmap_get(&ws->queues, channel, len) : NULL;
    return q && !h2o_linklist_is_empty(&q->waiting);
}

void waiters_avail(waiters_t *ws, const char *channel, size_t len)
{
    if (ws->count == 0)
        return;
    waitq_t *q = strmap_get(&ws->queues, channel, len);
    if (q && !h2o_linklist_is_linked(&q->pending))
        h2o_linklist_insert(&ws->pending, &q->pending);
}

waitq_t *waiters_next_pending(waiters_t *ws)
{
    if (h2o_linklist_is_empty(&ws->pending))
        return NULL;
    waitq_t *q = H2O_STRUCT_FROM_MEMBER(waitq_t, pending, ws->pending.next);
    h2o_linklist_unlink(&q->pending);
    return q;
}

waiter_t *waiters_head(waitq_t *q)
{
    return h2o_linklist_is_empty(&q->waiting) ? NULL : H2O_STRUCT_FROM_MEMBER(waiter_t, link, q->waiting.next);
}

waiter_t *waiters_next_due(waiters_t *ws, ntime_t now)
{
    tnode_t *n = timers_pop_due(&ws->deadlines, now, NULL);
    if (!n)
        return NULL;
    waiter_t *w = WAITER_OF(n);
    waiters_leave(ws, w);
    return w;
}

waiter_t *waiters_any_left(waiters_t *ws)
{
    tnode_t *n = timers_peek(&ws->deadlines);
    if (!n)
        return NULL;
    waiter_t *w = WAITER_OF(n);
    waiters_leave(ws, w);
    return w;
}

ntime_t waiters_next_at(const waiters_t *ws)
{
    tnode_t *n = timers_peek(&ws->deadlines);
    return n ? timers_at(&ws->deadlines, n) : NTIME_MAX;
}
