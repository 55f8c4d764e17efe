/*
 * pg_events.c -- the PostgreSQL store's event operations: publish, list,
 * get, lock, unlock, extend, delete, acquire (see pg.h). Each is one
 * statement; the functions it calls are in migrations/0002_ops.sql.
 */
#include "pg_batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "base/hex.h"
#include "base/util.h"

/* Group commit (pg_batch.h): batches of one channel in flight at once,
 * the requests that must wait before a second goes, and the elements one
 * statement takes. Two publishes in flight keep both of a small
 * database's cores busy while the next batch gathers (one replica
 * published 1.25-1.33x as many events as with one); the second only for
 * two waiting requests or more, so that a replica with few clients keeps
 * merging them (three replicas 1.1-1.2x as many as without that rule;
 * docs/performance.md). Deletes and acquires stay at one, as their
 * statements contend for the same rows at the head of the queue. */
#define PUB_INFLIGHT 2
#define PUB_EXTRA_MIN 2
#define PUB_MAX_ITEMS 1000
#define DEL_INFLIGHT 1
#define DEL_MAX_ITEMS 1000
#define ACQ_INFLIGHT 1
#define ACQ_MAX_ITEMS 1000
#define ACQ_AGAIN 3 /* an acquire that read too early goes again at most so often */

static void send_acquire(pg_batch_t *b);

/* ---- publish ---- */

/* Checks the instants of element i with the memory store's rule and
 * sentences: each must fall before 2262-01-01 (NTIME_END). 0, or -1
 * after failing op. */
static int pub_check(pgop_t *op, const store_pub_t *p, size_t i, size_t n, ntime_t now)
{
    static const char *const too_long[] = {
        "field \"ttl\" is too long: now plus \"ttl\" must be before 2262-01-01",
        "field \"ttl\" is too long: \"publishAt\" plus \"ttl\" must be before 2262-01-01",
        "field \"ttl\" is too long: now plus \"publishIn\" plus \"ttl\" must be before 2262-01-01",
    };
    char where[32] = "";
    if (n > 1)
        snprintf(where, sizeof(where), "events[%zu]: ", i);
    int from = p->has_publish_at ? 1 : p->publish_in_ns ? 2 : 0;
    ntime_t at = p->has_publish_at ? p->publish_at : now;
    if (from == 2) {
        if (!ntime_fits(now, p->publish_in_ns)) {
            pgop_fail(op, STORE_INVALID,
                      "%sfield \"publishIn\" is too long: now plus \"publishIn\" must be before 2262-01-01", where);
            return -1;
        }
        at = now + p->publish_in_ns;
    }
    if (!ntime_fits(at, p->ttl_ns)) {
        pgop_fail(op, STORE_INVALID, "%s%s", where, too_long[from]);
        return -1;
    }
    return 0;
}

/* The elements of a publish as the arrays ev_publish takes: init, add
 * each request's elements in order, then params. */
typedef struct pub_arrays {
    pg_arr_t data, json, prio, at, in, ttl, key;
} pub_arrays_t;

static void pub_arrays_init(pub_arrays_t *a)
{
    pg_arr_init(&a->data, PG_BYTEA);
    pg_arr_init(&a->json, PG_BOOL);
    pg_arr_init(&a->prio, PG_INT2);
    pg_arr_init(&a->at, PG_INT8);
    pg_arr_init(&a->in, PG_INT8);
    pg_arr_init(&a->ttl, PG_INT8);
    pg_arr_init(&a->key, PG_BYTEA);
}

static void pub_arrays_add(pub_arrays_t *a, const store_pub_t *pubs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const store_pub_t *p = &pubs[i];
        pg_arr_bytes(&a->data, p->data, p->data_len);
        pg_arr_bool(&a->json, p->data_json);
        pg_arr_i16(&a->prio, p->priority);
        if (p->has_publish_at)
            pg_arr_i64(&a->at, p->publish_at);
        else
            pg_arr_null(&a->at);
        pg_arr_i64(&a->in, p->has_publish_at ? 0 : p->publish_in_ns);
        pg_arr_i64(&a->ttl, p->ttl_ns);
        if (p->key)
            pg_arr_bytes(&a->key, p->key, p->key_len);
        else
            pg_arr_null(&a->key);
    }
}

/* The arrays as parameters; keys only if with_keys (else freed). */
static void pub_arrays_params(pg_query_t *q, pub_arrays_t *a, int with_keys)
{
    pg_query_arr(q, PG_BYTEA_ARRAY, &a->data);
    pg_query_arr(q, PG_BOOL_ARRAY, &a->json);
    pg_query_arr(q, PG_INT2_ARRAY, &a->prio);
    pg_query_arr(q, PG_INT8_ARRAY, &a->at);
    pg_query_arr(q, PG_INT8_ARRAY, &a->in);
    pg_query_arr(q, PG_INT8_ARRAY, &a->ttl);
    if (with_keys)
        pg_query_arr(q, PG_BYTEA_ARRAY, &a->key);
    else
        free(a->key.buf);
}

/* A copy of n elements in one block (the request's struct is borrowed
 * for the call only): the elements, then their data and keys. */
static store_pub_t *pubs_copy(const store_pub_t *pubs, size_t n)
{
    size_t size = n * sizeof(*pubs);
    for (size_t i = 0; i < n; i++)
        size += pubs[i].data_len + (pubs[i].key ? pubs[i].key_len : 0);
    store_pub_t *c = xmalloc(size ? size : 1);
    char *p = (char *)(c + n);
    for (size_t i = 0; i < n; i++) {
        c[i] = pubs[i];
        memcpy(p, pubs[i].data, pubs[i].data_len);
        c[i].data = p;
        p += pubs[i].data_len;
        if (pubs[i].key) {
            memcpy(p, pubs[i].key, pubs[i].key_len);
            c[i].key = p;
            p += pubs[i].key_len;
        }
    }
    return c;
}

/* b->flag of a publish batch: which statement it went through. */
enum { PUB_UNSENT, PUB_TRIED_FAST, PUB_CLASSIC };

static void send_publish(pg_batch_t *b);

/* A merged publish: one row per element of every request, in order. */
static void on_publish(pg_query_t *q, void *arg)
{
    pg_batch_t *b = arg;
    pgs_t *s = b->s;
    if (pg_batch_failed(b, q))
        return;
    const PGresult *r = pg_query_result(q, 0);
    if (b->flag == PUB_TRIED_FAST && (!r || PQntuples(r) == 0)) {
        send_publish(b); /* a new channel, or one at its limit: ev_publish decides */
        return;
    }
    size_t n;
    store_event_t *evs = pgs_events(s, r, &n);
    uint8_t *rep = pgs_replayed_room(s, n);
    int visible = 0;
    for (size_t i = 0; i < n; i++) {
        rep[i] = (uint8_t)pg_get_bool(r, (int)i, EC_REPLAYED);
        s->live_total += !rep[i];
        visible |= !rep[i] && evs[i].state == STORE_READY;
    }
    const pgop_t *op0 = b->reqs->op;
    if (visible)
        pg_wake_freed(s, op0->ch, op0->ch_len);
    pg_wake_events(s, op0->ch, op0->ch_len, evs, n);
    size_t off = 0;
    for (pg_breq_t *rq = b->reqs; rq; rq = rq->next) {
        store_res_t res = {0};
        res.n_events = off + rq->n <= n ? rq->n : 0;
        res.events = res.n_events ? evs + off : NULL;
        res.replayed = res.n_events ? rep + off : NULL;
        for (size_t i = 0; i < res.n_events; i++)
            res.created += !rep[off + i];
        res.status = res.n_events < rq->n ? STORE_UNAVAILABLE : res.created > 0 ? STORE_CREATED : STORE_REPLAYED;
        off += res.n_events;
        pgop_finish(rq->op, &res);
    }
    pg_batch_end(b);
}

static int no_keys(const pg_batch_t *b)
{
    for (const pg_breq_t *r = b->reqs; r; r = r->next) {
        const store_pub_t *p = r->data;
        for (size_t i = 0; i < r->n; i++)
            if (p[i].key)
                return 0;
    }
    return 1;
}

/* Sends b through Q_PUBLISH_FAST when no element has a key and fast
 * (b->flag 0: not yet tried), else through ev_publish. */
static void send_publish(pg_batch_t *b)
{
    pgs_t *s = b->s;
    const pgop_t *op0 = b->reqs->op;
    pub_arrays_t a;
    pub_arrays_init(&a);
    for (pg_breq_t *r = b->reqs; r; r = r->next)
        pub_arrays_add(&a, r->data, r->n);
    int fast = b->flag == 0 && no_keys(b);
    b->flag = fast ? PUB_TRIED_FAST : PUB_CLASSIC;
    pg_query_t *q = pg_batch_query(b, on_publish);
    pg_query_stmt(q, fast ? Q_PUBLISH_FAST : Q_PUBLISH);
    pg_query_bytes(q, op0->ch, op0->ch_len);
    if (!fast)
        pg_query_i64(q, (int64_t)s->cfg.max_channels);
    pg_query_i64(q, (int64_t)s->cfg.max_channel_events);
    pub_arrays_params(q, &a, !fast);
    pg_query_rows(q, b->n_items);
    pg_query_send(q);
}

static const pg_bkind_t publish_kind = {.id = PG_BATCH_PUBLISH, .max_inflight = PUB_INFLIGHT,
                                        .extra_min = PUB_EXTRA_MIN,
                                        .max_items = PUB_MAX_ITEMS, .send = send_publish};

void pg_publish(store_t *st, store_chan_t ch, const store_pub_t *pubs, size_t n, store_done_fn done, void *arg)
{
    pgs_t *s = pgs_of(st);
    pgop_t *op = pgop_new(s, ch.name, ch.len, done, arg);
    ntime_t now = pgs_now(s);
    for (size_t i = 0; i < n; i++)
        if (pub_check(op, &pubs[i], i, n, now) != 0)
            return;
    if (s->cfg.max_events && s->live_total + n > s->cfg.max_events) {
        pgop_fail(op, STORE_FULL, "the server holds its limit of %zu events in all channels; nothing was "
                  "changed, try again later", s->cfg.max_events);
        return;
    }
    pg_batch_add(s, &publish_kind, op, n, 0, pubs_copy(pubs, n));
}

/* ---- list ---- */

/* A cursor: the last shown event's published_at and vseq, two 64-bit
 * hex fields (base/hex.h). */
#define CURSOR_LEN (2 * HEX_U64)

static int cursor_parse(const char *p, size_t len, int64_t *t, int64_t *v)
{
    uint64_t a, b;
    if (len != CURSOR_LEN || hex_get(p, HEX_U64, &a) != 0 || hex_get(p + HEX_U64, HEX_U64, &b) != 0)
        return -1;
    *t = (int64_t)a;
    *v = (int64_t)b;
    return 0;
}

static void list_rows(pgop_t *op, const PGresult *r, store_res_t *res)
{
    char cursor[CURSOR_LEN + 1];
    res->events = pgs_events(op->s, r, &res->n_events);
    if (op->n > 0 && res->n_events > (size_t)op->n) {
        /* one row more than asked: there is a next page, after the last shown */
        res->n_events = (size_t)op->n;
        int last = op->n - 1;
        char *p = hex_put(cursor, (uint64_t)pg_get_i64(r, last, EC_END + 1), HEX_U64);
        *hex_put(p, (uint64_t)pg_get_i64(r, last, EC_END), HEX_U64) = '\0';
        res->next = cursor;
        res->next_len = CURSOR_LEN;
    }
    pgop_finish(op, res);
}

void pg_list(store_t *st, const store_list_t *l, store_done_fn done, void *arg)
{
    pgs_t *s = pgs_of(st);
    pgop_t *op = pgop_new(s, l->ch.name, l->ch.len, done, arg);
    int64_t t = INT64_MIN, v = INT64_MIN; /* before every row */
    if (l->after && cursor_parse(l->after, l->after_len, &t, &v) != 0) {
        pgop_fail(op, STORE_INVALID, "parameter \"after\": not a cursor from an earlier answer");
        return;
    }
    op->n = (int)l->limit;
    pg_query_t *q = pgop_query_rows(op, list_rows);
    pg_query_stmt(q, l->state == STORE_LIST_LOCKED      ? Q_LIST_LOCKED
                     : l->state == STORE_LIST_SCHEDULED ? Q_LIST_SCHEDULED
                     : l->limit                         ? Q_LIST
                                                        : Q_LIST_ALL);
    pg_query_bytes(q, l->ch.name, l->ch.len);
    pg_query_i16(q, (int16_t)l->state);
    pg_query_bool(q, l->after != NULL);
    pg_query_i64(q, t);
    pg_query_i64(q, v);
    pg_query_i64(q, l->limit ? (int64_t)l->limit + 1 : 0);
    pg_query_send(q);
}

/* ---- one event ---- */

/* Answers with the event row(s) of statement 0, if any. */
static void on_event(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    store_res_t res = {0};
    if (pgs_failed(op->s, q, &res)) {
        pgop_finish(op, &res);
        return;
    }
    res.events = pgs_events(op->s, pg_query_result(q, 0), &res.n_events);
    if (op->flag == Q_GET && res.n_events == 0)
        res.status = STORE_NOT_FOUND;
    if (op->flag == Q_UNLOCK)
        pg_wake_freed(op->s, op->ch, op->ch_len);
    if (op->flag == Q_LOCK || op->flag == Q_EXTEND || op->flag == Q_UNLOCK)
        pg_wake_events(op->s, op->ch, op->ch_len, res.events, res.n_events);
    pgop_finish(op, &res);
}

/* A query on one event: its statement, then seq, id_ms, channel. */
static pg_query_t *event_query(pgop_t *op, int stmt, store_chan_t ch, eid_t id)
{
    int64_t seq, ms;
    pgs_id_split(id, &seq, &ms);
    op->flag = stmt;
    pg_query_t *q = pgop_query(op, on_event);
    pg_query_stmt(q, stmt);
    pg_query_i64(q, seq);
    pg_query_i64(q, ms);
    pg_query_bytes(q, ch.name, ch.len);
    return q;
}

static void token_param(pg_query_t *q, const uint64_t *token)
{
    if (token)
        pg_query_i64(q, (int64_t)*token);
    else
        pg_query_null(q);
}

/* 0 if now + ttl fits, else fails op. */
static int ttl_check(pgop_t *op, int64_t ttl_ns)
{
    if (!ntime_fits(pgs_now(op->s), ttl_ns)) {
        pgop_fail(op, STORE_INVALID,
                  "field \"ttl\" is too long: now plus the lock's \"ttl\" must be before 2262-01-01");
        return -1;
    }
    return 0;
}

void pg_get(store_t *st, store_chan_t ch, eid_t id, store_done_fn done, void *arg)
{
    pgop_t *op = pgop_new(pgs_of(st), ch.name, ch.len, done, arg);
    pg_query_send(event_query(op, Q_GET, ch, id));
}

void pg_lock(store_t *st, store_chan_t ch, eid_t id, int64_t ttl_ns, store_done_fn done, void *arg)
{
    pgop_t *op = pgop_new(pgs_of(st), ch.name, ch.len, done, arg);
    if (ttl_check(op, ttl_ns) != 0)
        return;
    pg_query_t *q = event_query(op, Q_LOCK, ch, id);
    pg_query_i64(q, ttl_ns);
    pg_query_send(q);
}

void pg_unlock(store_t *st, store_chan_t ch, eid_t id, const uint64_t *token, int64_t delay_ns,
               store_done_fn done, void *arg)
{
    pgs_t *s = pgs_of(st);
    pgop_t *op = pgop_new(s, ch.name, ch.len, done, arg);
    if (delay_ns > NTIME_MAX - pgs_now(s)) {
        pgop_fail(op, STORE_INVALID, "field \"delay\" is too large");
        return;
    }
    pg_query_t *q = event_query(op, Q_UNLOCK, ch, id);
    token_param(q, token);
    pg_query_i64(q, delay_ns);
    pg_query_i64(q, (int64_t)s->cfg.max_channel_events);
    pg_query_send(q);
}

void pg_extend(store_t *st, store_chan_t ch, eid_t id, int64_t ttl_ns, const uint64_t *token, store_done_fn done,
               void *arg)
{
    pgop_t *op = pgop_new(pgs_of(st), ch.name, ch.len, done, arg);
    if (ttl_check(op, ttl_ns) != 0)
        return;
    pg_query_t *q = event_query(op, Q_EXTEND, ch, id);
    pg_query_i64(q, ttl_ns);
    token_param(q, token);
    pg_query_send(q);
}

/* ---- delete ---- */

typedef struct del_req {
    int64_t seq, ms;
    int has_token;
    int64_t token;
} del_req_t;

/* One status per element, in order (0003_batch.sql, ev_delete_many). */
static void on_delete(pg_query_t *q, void *arg)
{
    pg_batch_t *b = arg;
    if (pg_batch_failed(b, q))
        return;
    const PGresult *r = pg_query_result(q, 0);
    int n = r ? PQntuples(r) : 0, i = 0;
    for (pg_breq_t *rq = b->reqs; rq; rq = rq->next, i++) {
        store_res_t res = {.status = STORE_UNAVAILABLE};
        if (i < n) {
            int32_t code = pg_get_i32(r, i, 0);
            res.status = code == 0 ? STORE_OK : code == 409 ? STORE_CONFLICT : STORE_NOT_FOUND;
        }
        pgop_finish(rq->op, &res);
    }
    pg_batch_end(b);
}

static void send_delete(pg_batch_t *b)
{
    const pgop_t *op0 = b->reqs->op;
    pg_arr_t seqs, mss, tokens;
    pg_arr_init(&seqs, PG_INT8);
    pg_arr_init(&mss, PG_INT8);
    pg_arr_init(&tokens, PG_INT8);
    for (pg_breq_t *r = b->reqs; r; r = r->next) {
        const del_req_t *d = r->data;
        pg_arr_i64(&seqs, d->seq);
        pg_arr_i64(&mss, d->ms);
        if (d->has_token)
            pg_arr_i64(&tokens, d->token);
        else
            pg_arr_null(&tokens);
    }
    pg_query_t *q = pg_batch_query(b, on_delete);
    pg_query_stmt(q, Q_DELETE_MANY);
    pg_query_bytes(q, op0->ch, op0->ch_len);
    pg_query_arr(q, PG_INT8_ARRAY, &seqs);
    pg_query_arr(q, PG_INT8_ARRAY, &mss);
    pg_query_arr(q, PG_INT8_ARRAY, &tokens);
    pg_query_rows(q, b->n_items);
    pg_query_send(q);
}

static const pg_bkind_t delete_kind = {.id = PG_BATCH_DELETE, .max_inflight = DEL_INFLIGHT,
                                       .max_items = DEL_MAX_ITEMS, .send = send_delete};

void pg_del(store_t *st, store_chan_t ch, eid_t id, const uint64_t *token, store_done_fn done, void *arg)
{
    pgs_t *s = pgs_of(st);
    del_req_t *d = xcalloc(1, sizeof(*d));
    pgs_id_split(id, &d->seq, &d->ms);
    d->has_token = token != NULL;
    d->token = token ? (int64_t)*token : 0;
    pg_batch_add(s, &delete_kind, pgop_new(s, ch.name, ch.len, done, arg), 1, 0, d);
}

/* ---- acquire ---- */

/* A merged acquire: the rows in order, each request taking up to its max
 * in arrival order; one that gets none may park (pg_wake_wanted). A batch
 * that got nothing while a wake-up for its channel came goes again at
 * once (up to ACQ_AGAIN times, b->flag counting): its statement may have
 * read the channel before the change, and the wake-up found no one
 * parked to retry. */
static void on_acquire(pg_query_t *q, void *arg)
{
    pg_batch_t *b = arg;
    pgs_t *s = b->s;
    const pgop_t *op0 = b->reqs->op;
    int moved = pg_wake_acquired(s, op0->ch, op0->ch_len, b->woken);
    if (pg_batch_failed(b, q))
        return;
    size_t n, off = 0;
    store_event_t *evs = pgs_events(s, pg_query_result(q, 0), &n);
    if (n == 0 && moved && b->flag < ACQ_AGAIN) {
        b->flag++;
        send_acquire(b);
        return;
    }
    pg_wake_events(s, op0->ch, op0->ch_len, evs, n);
    for (pg_breq_t *rq = b->reqs; rq; rq = rq->next) {
        store_res_t res = {0};
        res.n_events = n - off < rq->n ? n - off : rq->n;
        res.events = res.n_events ? evs + off : NULL;
        off += res.n_events;
        if (res.n_events == 0)
            pg_wake_wanted(s, rq->op->ch, rq->op->ch_len, moved);
        pgop_finish(rq->op, &res);
    }
    pg_batch_end(b);
}

static void send_acquire(pg_batch_t *b)
{
    const pgop_t *op0 = b->reqs->op;
    b->woken = pg_wake_acquiring(b->s, op0->ch, op0->ch_len);
    pg_query_t *q = pg_batch_query(b, on_acquire);
    pg_query_stmt(q, Q_ACQUIRE);
    pg_query_bytes(q, op0->ch, op0->ch_len);
    pg_query_i32(q, (int32_t)b->n_items);
    pg_query_i64(q, b->reqs->key);
    pg_query_rows(q, b->n_items);
    pg_query_send(q);
}

static const pg_bkind_t acquire_kind = {.id = PG_BATCH_ACQUIRE, .max_inflight = ACQ_INFLIGHT,
                                        .max_items = ACQ_MAX_ITEMS, .send = send_acquire};

void pg_acquire(store_t *st, store_chan_t ch, size_t max, int64_t ttl_ns, store_done_fn done, void *arg)
{
    pgs_t *s = pgs_of(st);
    pgop_t *op = pgop_new(s, ch.name, ch.len, done, arg);
    if (ttl_check(op, ttl_ns) != 0)
        return;
    pg_batch_add(s, &acquire_kind, op, max > 100000 ? 100000 : max, ttl_ns, NULL);
}
