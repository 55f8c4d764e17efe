/*
 * pg_events.c -- the PostgreSQL store's event operations: publish, list,
 * get, lock, unlock, extend, delete, acquire (see pg.h). Each is one
 * statement; the functions it calls are in migrations/0002_ops.sql.
 */
#include "pg_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "base/util.h"

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

/* The elements as the arrays ev_publish takes. */
static void pub_params(pg_query_t *q, const store_pub_t *pubs, size_t n)
{
    pg_arr_t data, json, prio, at, in, ttl, key;
    pg_arr_init(&data, PG_BYTEA);
    pg_arr_init(&json, PG_BOOL);
    pg_arr_init(&prio, PG_INT2);
    pg_arr_init(&at, PG_INT8);
    pg_arr_init(&in, PG_INT8);
    pg_arr_init(&ttl, PG_INT8);
    pg_arr_init(&key, PG_BYTEA);
    for (size_t i = 0; i < n; i++) {
        const store_pub_t *p = &pubs[i];
        pg_arr_bytes(&data, p->data, p->data_len);
        pg_arr_bool(&json, p->data_json);
        pg_arr_i16(&prio, p->priority);
        if (p->has_publish_at)
            pg_arr_i64(&at, p->publish_at);
        else
            pg_arr_null(&at);
        pg_arr_i64(&in, p->has_publish_at ? 0 : p->publish_in_ns);
        pg_arr_i64(&ttl, p->ttl_ns);
        if (p->key)
            pg_arr_bytes(&key, p->key, p->key_len);
        else
            pg_arr_null(&key);
    }
    pg_query_arr(q, PG_BYTEA_ARRAY, &data);
    pg_query_arr(q, PG_BOOL_ARRAY, &json);
    pg_query_arr(q, PG_INT2_ARRAY, &prio);
    pg_query_arr(q, PG_INT8_ARRAY, &at);
    pg_query_arr(q, PG_INT8_ARRAY, &in);
    pg_query_arr(q, PG_INT8_ARRAY, &ttl);
    pg_query_arr(q, PG_BYTEA_ARRAY, &key);
}

static void on_publish(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    pgs_t *s = op->s;
    store_res_t res = {0};
    if (pgs_failed(s, q, &res)) {
        pgop_finish(op, &res);
        return;
    }
    const PGresult *r = pg_query_result(q, 0);
    res.events = pgs_events(s, r, &res.n_events);
    uint8_t *rep = pgs_replayed_room(s, res.n_events);
    int visible = 0;
    for (size_t i = 0; i < res.n_events; i++) {
        rep[i] = (uint8_t)pg_get_bool(r, (int)i, EC_REPLAYED);
        res.created += !rep[i];
        visible |= !rep[i] && res.events[i].state == STORE_READY;
    }
    res.replayed = rep;
    res.status = res.created > 0 ? STORE_CREATED : STORE_REPLAYED;
    s->live_total += res.created;
    if (visible)
        pg_wake_freed(s, op->ch, op->ch_len);
    pg_wake_events(s, op->ch, op->ch_len, res.events, res.n_events);
    pgop_finish(op, &res);
}

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
    pg_query_t *q = pgop_query(op, on_publish);
    pg_query_stmt(q, Q_PUBLISH);
    pg_query_bytes(q, ch.name, ch.len);
    pg_query_i64(q, (int64_t)s->cfg.max_channels);
    pg_query_i64(q, (int64_t)s->cfg.max_channel_events);
    pub_params(q, pubs, n);
    pg_query_send(q);
}

/* ---- list ---- */

#define CURSOR_LEN 32

static int cursor_parse(const char *p, size_t len, int64_t *t, int64_t *v)
{
    char buf[CURSOR_LEN + 1];
    if (len != CURSOR_LEN)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    unsigned long long a, b;
    if (sscanf(buf, "%16llx%16llx", &a, &b) != 2)
        return -1;
    *t = (int64_t)a;
    *v = (int64_t)b;
    return 0;
}

static void on_list(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    store_res_t res = {0};
    char cursor[CURSOR_LEN + 1];
    if (pgs_failed(op->s, q, &res)) {
        pgop_finish(op, &res);
        return;
    }
    const PGresult *r = pg_query_result(q, 0);
    res.events = pgs_events(op->s, r, &res.n_events);
    if (op->n > 0 && res.n_events > (size_t)op->n) {
        /* one row more than asked: there is a next page, after the last shown */
        res.n_events = (size_t)op->n;
        int last = op->n - 1;
        snprintf(cursor, sizeof(cursor), "%016llx%016llx", (unsigned long long)pg_get_i64(r, last, EC_END + 1),
                 (unsigned long long)pg_get_i64(r, last, EC_END));
        res.next = cursor;
        res.next_len = CURSOR_LEN;
    }
    pgop_finish(op, &res);
}

void pg_list(store_t *st, const store_list_t *l, store_done_fn done, void *arg)
{
    pgs_t *s = pgs_of(st);
    pgop_t *op = pgop_new(s, l->ch.name, l->ch.len, done, arg);
    int64_t t = 0, v = 0;
    if (l->after && cursor_parse(l->after, l->after_len, &t, &v) != 0) {
        pgop_fail(op, STORE_INVALID, "parameter \"after\": not a cursor from an earlier answer");
        return;
    }
    op->n = (int)l->limit;
    pg_query_t *q = pgop_query(op, on_list);
    pg_query_stmt(q, Q_LIST);
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
    if (op->flag != Q_DELETE)
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

void pg_del(store_t *st, store_chan_t ch, eid_t id, const uint64_t *token, store_done_fn done, void *arg)
{
    pgop_t *op = pgop_new(pgs_of(st), ch.name, ch.len, done, arg);
    pg_query_t *q = event_query(op, Q_DELETE, ch, id);
    token_param(q, token);
    pg_query_send(q);
}

/* ---- acquire ---- */

static void on_acquire(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    store_res_t res = {0};
    if (pgs_failed(op->s, q, &res)) {
        pgop_finish(op, &res);
        return;
    }
    res.events = pgs_events(op->s, pg_query_result(q, 0), &res.n_events);
    if (res.n_events == 0)
        pg_wake_wanted(op->s, op->ch, op->ch_len);
    else
        pg_wake_events(op->s, op->ch, op->ch_len, res.events, res.n_events);
    pgop_finish(op, &res);
}

void pg_acquire(store_t *st, store_chan_t ch, size_t max, int64_t ttl_ns, store_done_fn done, void *arg)
{
    pgop_t *op = pgop_new(pgs_of(st), ch.name, ch.len, done, arg);
    if (ttl_check(op, ttl_ns) != 0)
        return;
    pg_query_t *q = pgop_query(op, on_acquire);
    pg_query_stmt(q, Q_ACQUIRE);
    pg_query_bytes(q, ch.name, ch.len);
    pg_query_i32(q, (int32_t)(max > 100000 ? 100000 : max));
    pg_query_i64(q, ttl_ns);
    pg_query_send(q);
}
