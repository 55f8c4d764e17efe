/*
 * pg_batch.h -- group commit for the PostgreSQL store: concurrent requests
 * of one kind (publish, delete, acquire) on one channel become one
 * statement, one transaction, one commit.
 *
 * A request joins the queue of its kind and channel (pg_batch_add). At the
 * end of the loop's turn (a zero h2o timeout: after every request read in
 * that turn), each queue with no batch in flight sends the requests at
 * its head as one batch; one with fewer than its kind's limit in flight
 * sends another only if at least the kind's extra_min requests wait.
 * Newcomers that arrive while batches are in flight wait for one to end
 * and then go together: at low load a request goes alone in the turn it
 * came, one round trip as before; under load batches grow with the load.
 *
 * The kind's send builds one query from a batch's requests in arrival
 * order (the statement takes arrays); its callback splits the rows back to
 * each request in that order and answers each (pgop_finish), then calls
 * pg_batch_end. A batch of several requests that the database refused
 * (an error: its transaction rolled back, nothing changed) is sent again
 * one request at a time, each after the previous one's answer, in arrival
 * order (pg_batch_failed), so that each gets the answer it would have had
 * alone: one refused request changes nothing and fails no other. A batch
 * that found no database (PG_UNAVAILABLE: its outcome is unknown) answers
 * 503 to each, and so do the requests queued behind it, which were not
 * sent: so every request answers within the timeout.
 *
 * Requests share a batch only if their keys are equal (acquire: the lease
 * ttl) and their elements fit the kind's max_items (a bigger request goes
 * alone).
 *
 * Ownership: a queued request owns its op and its payload (copied: the
 * caller's request struct is borrowed only for the call); a batch owns its
 * requests from send until pg_batch_end or pg_batch_failed, which free
 * them and, at the end of its chain, it. Answers run from the loop, never
 * inside pg_batch_add.
 */
#ifndef STORE_PG_BATCH_H
#define STORE_PG_BATCH_H

#include "pg_int.h"

typedef struct pg_breq pg_breq_t;
typedef struct pg_batch pg_batch_t;
typedef struct pg_bqueue pg_bqueue_t;
typedef struct pg_batcher pg_batcher_t;

struct pg_breq {
    pgop_t *op;               /* the request: its channel and completion */
    pg_breq_t *next;          /* in its queue, then in its batch */
    size_t n;                 /* elements, toward the batch's max_items */
    int64_t key;              /* only requests with equal keys share a batch */
    void *data;               /* the kind's payload (freed with the request) */
};

/* The kinds, for the counters of /metrics. */
enum { PG_BATCH_PUBLISH, PG_BATCH_DELETE, PG_BATCH_ACQUIRE, PG_BATCH_KINDS };

typedef struct pg_bkind {
    int id;                   /* PG_BATCH_*: its counters */
    int max_inflight;         /* batches of one channel in flight at once */
    size_t extra_min;         /* a batch beyond the first goes only with this many requests waiting */
    size_t max_items;         /* elements in one batch (a bigger request goes alone) */
    /* Sends b as one query whose callback answers every request of b and
     * ends with pg_batch_failed or pg_batch_end. */
    void (*send)(pg_batch_t *b);
} pg_bkind_t;

struct pg_batch {
    pgs_t *s;
    const pg_bkind_t *kind;
    pg_bqueue_t *q;           /* its queue (it holds one of its slots) */
    pg_breq_t *reqs;          /* in arrival order */
    pg_breq_t *rest;          /* refused together: still to send one by one */
    size_t n_reqs, n_items;
    int flag;                 /* the kind's (0 when made) */
    unsigned woken;           /* the kind's: acquire's pg_wake_acquiring */
};

pg_batcher_t *pg_batcher_new(pgs_t *s);
/* Answers every request still queued with STORE_UNAVAILABLE and frees
 * all. Batches in flight must have ended (pg_pool_free first). */
void pg_batcher_free(pg_batcher_t *b);
/* From now on requests fail at once (the store is stopping). */
void pg_batcher_stop(pg_batcher_t *b);

/* Queues a request of op (ch: op->ch) with n elements, merge key and
 * payload (owned from now on); it is sent at the end of the turn. */
void pg_batch_add(pgs_t *s, const pg_bkind_t *kind, pgop_t *op, size_t n, int64_t key, void *data);

/* A query for b whose callback is cb (arg: b). */
pg_query_t *pg_batch_query(pg_batch_t *b, pg_query_cb cb);

/* In a kind's callback: 0 if q succeeded and its rows are the kind's to
 * split. Else 1, b is gone: a refused batch of several requests was sent
 * again one request at a time, or each request was answered with the
 * failure. */
int pg_batch_failed(pg_batch_t *b, pg_query_t *q);

/* Ends b (every request answered): frees it and lets its queue send. */
void pg_batch_end(pg_batch_t *b);

/* Appends this replica's batch counters to /metrics: statements sent,
 * requests they carried, batches sent again one request at a time. */
void pg_batch_metrics(const pg_batcher_t *bt, store_text_t *out);

#endif
