/*
 * waiters.c -- parked acquires by channel (see waiters.h).
 */
#include "waiters.h"

#include <stdlib.h>
#include "base/util.h"

#define WAITER_OF(node) ((waiter_t *)((char *)(node) - offsetof(waiter_t, deadline)))
#define WAITER_OF_LOOK(node) ((waiter_t *)((char *)(node) - offsetof(waiter_t, look)))

void waiters_init(waiters_t *ws)
{
    strmap_init(&ws->queues);
    h2o_linklist_init_anchor(&ws->pending);
    timers_init(&ws->deadlines);
    timers_init(&ws->looks);
    ws->count = 0;
}

void waiters_free(waiters_t *ws)
{
    ASSERT(ws->count == 0);
    strmap_free(&ws->queues);
    timers_free(&ws->deadlines);
    timers_free(&ws->looks);
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
    w->state = WAITER_READY;
    w->link.next = w->link.prev = NULL;
    h2o_linklist_insert(&q->waiting, &w->link);
    q->n++;
    w->deadline.index = w->look.index = 0;
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
    q->n--;
    if (w->state == WAITER_PROBING)
        q->probing--;
    timers_cancel(&ws->deadlines, &w->deadline);
    timers_cancel(&ws->looks, &w->look);
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
    return q && q->n > q->probing;
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
    if (q->n == q->probing)
        return NULL;
    /* Probes are few and last at most a second: a walk past them. */
    for (h2o_linklist_t *l = q->waiting.next; l != &q->waiting; l = l->next) {
        waiter_t *w = H2O_STRUCT_FROM_MEMBER(waiter_t, link, l);
        if (w->state != WAITER_PROBING)
            return w;
    }
    return NULL;
}

void waiters_probe(waiters_t *ws, waiter_t *w, ntime_t at)
{
    ASSERT(w->q);
    if (w->state != WAITER_PROBING) {
        w->state = WAITER_PROBING;
        w->q->probing++;
    }
    timers_set(&ws->looks, &w->look, at, 0);
}

waiter_t *waiters_next_look(waiters_t *ws, ntime_t now)
{
    tnode_t *n = timers_pop_due(&ws->looks, now, NULL);
    return n ? WAITER_OF_LOOK(n) : NULL;
}

void waiters_half_closed(waiters_t *ws, waiter_t *w)
{
    ASSERT(w->q && w->state == WAITER_PROBING);
    w->state = WAITER_HALF_CLOSED;
    w->q->probing--;
    timers_cancel(&ws->looks, &w->look);
    waiters_avail(ws, w->q->channel, w->q->channel_len);
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

waiter_t *waiters_take(waiters_t *ws, const char *channel, size_t len)
{
    waitq_t *q = ws->count > 0 ? strmap_get(&ws->queues, channel, len) : NULL;
    if (!q)
        return NULL;
    for (h2o_linklist_t *n = q->waiting.next; n != &q->waiting; n = n->next) {
        waiter_t *w = H2O_STRUCT_FROM_MEMBER(waiter_t, link, n);
        if (w != q->busy) {
            waiters_leave(ws, w);
            return w;
        }
    }
    return NULL;
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
    tnode_t *l = timers_peek(&ws->looks);
    ntime_t at = n ? timers_at(&ws->deadlines, n) : NTIME_MAX;
    ntime_t look = l ? timers_at(&ws->looks, l) : NTIME_MAX;
    return look < at ? look : at;
}
