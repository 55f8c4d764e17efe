/*
 * pg_batch.c -- group commit on the database (see pg_batch.h).
 *
 * Queues are kept by kind and channel while they hold requests or have
 * batches in flight; the dirty list names the queues the next flush must
 * look at (a request came, or a batch ended with requests waiting). The
 * flush runs from a zero h2o timeout, which the loop runs after the
 * sockets' callbacks of its turn and which keeps the loop from sleeping
 * while it is linked.
 */
#include "pg_batch.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"

struct pg_bqueue {
    const pg_bkind_t *kind;
    pg_breq_t *head, *tail;   /* waiting, oldest first */
    size_t waiting;           /* requests from head to tail */
    int inflight;             /* batches of this queue in flight */
    int dirty;                /* on the batcher's dirty list */
    int pinned;               /* being flushed: kept even if it empties */
    pg_bqueue_t *next_dirty;
    const char *key;          /* its key: the map entry's copy */
    size_t key_len;
};

struct pg_batcher {
    pgs_t *s;
    strmap_t queues;          /* kind and channel -> pg_bqueue_t */
    pg_bqueue_t *dirty, *dirty_tail;
    h2o_timeout_t zero;       /* 0 ms: runs in the loop's turn */
    h2o_timeout_entry_t flush;
    int stopping;
    uint64_t sent[PG_BATCH_KINDS];     /* statements (batches) sent */
    uint64_t carried[PG_BATCH_KINDS];  /* requests they carried */
    uint64_t split[PG_BATCH_KINDS];    /* batches sent again one by one */
};

static void on_flush(h2o_timeout_entry_t *entry);

pg_batcher_t *pg_batcher_new(pgs_t *s)
{
    pg_batcher_t *bt = xcalloc(1, sizeof(*bt));
    bt->s = s;
    strmap_init(&bt->queues);
    h2o_timeout_init(s->cfg.loop, &bt->zero, 0);
    bt->flush.cb = on_flush;
    return bt;
}

void pg_batcher_stop(pg_batcher_t *bt)
{
    bt->stopping = 1;
}

static void breq_free(pg_breq_t *r)
{
    free(r->data);
    free(r);
}

/* Answers every request of the list with res and frees them. The
 * sentence is copied first: an answer may start a request that writes
 * the store's error buffer. */
static void answer_all(pgs_t *s, pg_breq_t *r, const store_res_t *res_in)
{
    char err[sizeof(s->err)];
    store_res_t res = *res_in;
    if (res.err) {
        snprintf(err, sizeof(err), "%s", res.err);
        res.err = err;
    }
    while (r) {
        pg_breq_t *next = r->next;
        pgop_finish(r->op, &res);
        breq_free(r);
        r = next;
    }
}

static void collect_queue(strmap_entry_t *me, void *arg)
{
    pg_bqueue_t ***out = arg;
    *(*out)++ = me->value;
}

void pg_batcher_free(pg_batcher_t *bt)
{
    if (!bt)
        return;
    store_res_t res = {.status = STORE_UNAVAILABLE, .err = "the server is stopping"};
    size_t n = bt->queues.count;
    pg_bqueue_t **all = xcalloc(n + 1, sizeof(*all)), **end = all;
    strmap_each(&bt->queues, collect_queue, &end);
    for (size_t i = 0; i < n; i++) {
        pg_breq_t *r = all[i]->head;
        all[i]->head = all[i]->tail = NULL;
        answer_all(bt->s, r, &res);
        free(all[i]);
    }
    free(all);
    strmap_free(&bt->queues);
    if (h2o_timeout_is_linked(&bt->flush))
        h2o_timeout_unlink(&bt->flush);
    h2o_timeout_dispose(bt->s->cfg.loop, &bt->zero);
    free(bt);
}

/* The map's key of a queue: the kind's address, then the channel. */
static size_t queue_key(char *buf, const pg_bkind_t *kind, const pgop_t *op)
{
    memcpy(buf, &kind, sizeof(kind));
    memcpy(buf + sizeof(kind), op->ch, op->ch_len);
    return sizeof(kind) + op->ch_len;
}

/* The queue of kind and op's channel, made if there is none. */
static pg_bqueue_t *queue_of(pg_batcher_t *bt, const pg_bkind_t *kind, const pgop_t *op)
{
    char small[256];
    size_t need = sizeof(kind) + op->ch_len;
    char *key = need <= sizeof(small) ? small : xmalloc(need);
    size_t len = queue_key(key, kind, op);
    pg_bqueue_t *q = strmap_get(&bt->queues, key, len);
    if (!q) {
        q = xcalloc(1, sizeof(*q));
        q->kind = kind;
        q->key = strmap_put(&bt->queues, key, len, q)->key;
        q->key_len = len;
    }
    if (key != small)
        free(key);
    return q;
}

/* Forgets q once nothing waits or flies there. */
static void queue_tidy(pg_batcher_t *bt, pg_bqueue_t *q)
{
    if (q->head || q->inflight || q->dirty || q->pinned)
        return;
    strmap_del(&bt->queues, q->key, q->key_len);
    free(q);
}

/* May q send a batch now? Its first in flight always; one more (up to
 * the kind's limit) only with extra_min requests waiting, so that a
 * replica with few clients keeps merging them. */
static int may_send(const pg_bqueue_t *q)
{
    return q->head && (q->inflight == 0 ||
                       (q->inflight < q->kind->max_inflight && q->waiting >= q->kind->extra_min));
}

static void mark_dirty(pg_batcher_t *bt, pg_bqueue_t *q)
{
    if (!q->dirty) {
        q->dirty = 1;
        q->next_dirty = NULL;
        if (bt->dirty_tail)
            bt->dirty_tail->next_dirty = q;
        else
            bt->dirty = q;
        bt->dirty_tail = q;
    }
    if (!h2o_timeout_is_linked(&bt->flush))
        h2o_timeout_link(bt->s->cfg.loop, &bt->zero, &bt->flush);
}

void pg_batch_add(pgs_t *s, const pg_bkind_t *kind, pgop_t *op, size_t n, int64_t key, void *data)
{
    pg_batcher_t *bt = s->batch;
    if (bt->stopping) {
        free(data);
        pgop_fail(op, STORE_UNAVAILABLE, "the server is stopping");
        return;
    }
    pg_breq_t *r = xcalloc(1, sizeof(*r));
    r->op = op;
    r->n = n;
    r->key = key;
    r->data = data;
    pg_bqueue_t *q = queue_of(bt, kind, op);
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->waiting++;
    if (may_send(q))
        mark_dirty(bt, q);
}

static void send_batch(pg_batch_t *b)
{
    pg_batcher_t *bt = b->s->batch;
    bt->sent[b->kind->id]++;
    bt->carried[b->kind->id] += b->n_reqs;
    b->kind->send(b);
}

/* Sends the requests at q's head that fit one batch. */
static void send_head(pgs_t *s, pg_bqueue_t *q)
{
    pg_batch_t *b = xcalloc(1, sizeof(*b));
    b->s = s;
    b->kind = q->kind;
    b->q = q;
    pg_breq_t **tail = &b->reqs;
    int64_t key = q->head->key;
    while (q->head && q->head->key == key && (b->n_reqs == 0 || b->n_items + q->head->n <= q->kind->max_items)) {
        pg_breq_t *r = q->head;
        q->head = r->next;
        q->waiting--;
        r->next = NULL;
        *tail = r;
        tail = &r->next;
        b->n_reqs++;
        b->n_items += r->n;
    }
    if (!q->head)
        q->tail = NULL;
    q->inflight++;
    send_batch(b);
}

static void on_flush(h2o_timeout_entry_t *entry)
{
    pg_batcher_t *bt = H2O_STRUCT_FROM_MEMBER(pg_batcher_t, flush, entry);
    pg_bqueue_t *q;
    while ((q = bt->dirty) != NULL) {
        bt->dirty = q->next_dirty;
        if (!bt->dirty)
            bt->dirty_tail = NULL;
        q->dirty = 0;
        q->pinned = 1; /* a send that fails at once ends its batch inside */
        while (may_send(q) && !bt->stopping)
            send_head(bt->s, q);
        q->pinned = 0;
        queue_tidy(bt, q);
    }
}

pg_query_t *pg_batch_query(pg_batch_t *b, pg_query_cb cb)
{
    return pg_query_new(b->s->pool, cb, b);
}

/* Sends the next request of b's chain (b->rest) alone; b keeps its
 * queue's slot until the chain ends, so the requests are decided one
 * after the other in arrival order, and nothing else of the channel
 * overtakes them. */
static void send_next_alone(pg_batch_t *b)
{
    pg_breq_t *r = b->rest;
    b->rest = r->next;
    r->next = NULL;
    b->reqs = r;
    b->n_reqs = 1;
    b->n_items = r->n;
    b->flag = 0;
    send_batch(b);
}

void pg_batch_end(pg_batch_t *b)
{
    pg_batcher_t *bt = b->s->batch;
    pg_bqueue_t *q = b->q;
    pg_breq_t *r = b->reqs;
    while (r) {
        pg_breq_t *next = r->next;
        breq_free(r);
        r = next;
    }
    b->reqs = NULL;
    if (b->rest && !bt->stopping) {
        send_next_alone(b);
        return;
    }
    if (b->rest) {
        store_res_t res = {.status = STORE_UNAVAILABLE, .err = "the server is stopping"};
        answer_all(b->s, b->rest, &res);
    }
    free(b);
    q->inflight--;
    if (q->head && !bt->stopping)
        mark_dirty(bt, q);
    else
        queue_tidy(bt, q);
}

/* The database did not answer (in time): the requests still to be sent
 * alone and those queued behind b would each wait another timeout, and
 * a 503 must come within one. Returns list with them appended; nothing
 * was sent for them, so nothing changed. */
static pg_breq_t *take_waiting(pg_batch_t *b, pg_breq_t *list)
{
    pg_breq_t **tail = &list;
    while (*tail)
        tail = &(*tail)->next;
    *tail = b->rest;
    b->rest = NULL;
    while (*tail)
        tail = &(*tail)->next;
    *tail = b->q->head;
    b->q->head = b->q->tail = NULL;
    b->q->waiting = 0;
    return list;
}

int pg_batch_failed(pg_batch_t *b, pg_query_t *q)
{
    pg_status_t st = pg_query_status(q);
    if (st == PG_OK)
        return 0;
    if (st == PG_ERROR && b->n_reqs > 1 && !b->s->batch->stopping) {
        /* Rolled back, nothing changed: which request was refused, and
         * would the others have passed without it? Each alone tells. */
        b->s->batch->split[b->kind->id]++;
        b->rest = b->reqs;
        send_next_alone(b);
        return 1;
    }
    store_res_t res = {0};
    pgs_failed(b->s, q, &res);
    pg_breq_t *all = b->reqs;
    b->reqs = NULL;
    if (st == PG_UNAVAILABLE)
        all = take_waiting(b, all);
    answer_all(b->s, all, &res);
    pg_batch_end(b);
    return 1;
}

void pg_batch_metrics(const pg_batcher_t *bt, store_text_t *out)
{
    static const struct { const char *name, *help; size_t off; } m[] = {
        {"distribuerad_database_batches_total",
         "Statements this replica sent for publish, delete and acquire requests (concurrent requests of one "
         "channel share one).", offsetof(pg_batcher_t, sent)},
        {"distribuerad_database_batched_requests_total", "Requests those statements carried.",
         offsetof(pg_batcher_t, carried)},
        {"distribuerad_database_batches_split_total",
         "Statements of several requests that the database refused, sent again one request at a time.",
         offsetof(pg_batcher_t, split)},
    };
    static const char *const kinds[PG_BATCH_KINDS] = {"publish", "delete", "acquire"};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        const uint64_t *v = (const uint64_t *)((const char *)bt + m[i].off);
        prom_head(out, m[i].name, "counter", m[i].help);
        for (int k = 0; k < PG_BATCH_KINDS; k++) {
            char labels[32];
            snprintf(labels, sizeof(labels), "{op=\"%s\"}", kinds[k]);
            prom_value(out, m[i].name, labels, (double)v[k]);
        }
    }
}
