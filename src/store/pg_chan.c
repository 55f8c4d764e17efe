/*
 * pg_chan.c -- the PostgreSQL store's channel-wide operations: statistics,
 * the channel list, purge, delete, settings and redrive (see pg.h).
 */
#include "pg_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"

/* ---- statistics ---- */

void pgs_stats_view(store_stats_t *v, const PGresult *r, int row)
{
    v->ready = (uint64_t)pg_get_i64(r, row, 1);
    v->scheduled = (uint64_t)pg_get_i64(r, row, 2);
    v->locked = (uint64_t)pg_get_i64(r, row, 3);
    v->oldest_ready_at = pg_get_i64(r, row, 4);
    v->jobs = (uint64_t)pg_get_i64(r, row, 5);
    v->published = (uint64_t)pg_get_i64(r, row, 6);
    v->deleted = (uint64_t)pg_get_i64(r, row, 7);
    v->expired = (uint64_t)pg_get_i64(r, row, 8);
    v->dead_lettered = (uint64_t)pg_get_i64(r, row, 9);
}

static void on_stats(pgop_t *op, const PGresult *r, store_res_t *res)
{
    store_stats_t v = {.channel = op->ch, .channel_len = (uint32_t)op->ch_len};
    if (pgs_nrows(r) == 1)
        pgs_stats_view(&v, r, 0);
    res->stats = &v;
    res->n_stats = 1;
    pgop_finish(op, res);
}

void pg_stats(store_t *st, store_chan_t ch, store_done_fn done, void *arg)
{
    pgs_send_ch(pgs_of(st), Q_STATS, ch, on_stats, done, arg);
}

static void on_channels(pgop_t *op, const PGresult *r, store_res_t *res)
{
    size_t n = pgs_nrows(r);
    store_stats_t *v = pgs_stats_room(op->s, n);
    for (size_t i = 0; i < n; i++) {
        memset(&v[i], 0, sizeof(v[i]));
        v[i].channel = pgs_text(r, (int)i, 0, &v[i].channel_len);
        pgs_stats_view(&v[i], r, (int)i);
    }
    res->stats = v;
    res->n_stats = n;
    pgop_finish(op, res);
}

void pg_channels(store_t *st, store_done_fn done, void *arg)
{
    pgop_t *op = pgop_new(pgs_of(st), NULL, 0, done, arg);
    pg_query_t *q = pgop_query_rows(op, on_channels);
    pg_query_stmt(q, Q_CHANNELS);
    pg_query_send(q);
}

/* ---- purge, delete, redrive ---- */

/* Answers a count (statement 0's single value, if any). */
static void on_count(pgop_t *op, const PGresult *r, store_res_t *res)
{
    if (pgs_nrows(r) == 1 && PQnfields(r) == 1 && PQftype(r, 0) == PG_INT8 && !PQgetisnull(r, 0, 0))
        res->count = (uint64_t)pg_get_i64(r, 0, 0);
    if (op->flag && res->count > 0 && op->name)
        pg_wake_freed(op->s, op->name, op->name_len);
    pgop_finish(op, res);
}

void pg_purge(store_t *st, store_chan_t ch, store_done_fn done, void *arg)
{
    pgs_send_ch(pgs_of(st), Q_PURGE, ch, on_count, done, arg);
}

void pg_channel_delete(store_t *st, store_chan_t ch, store_done_fn done, void *arg)
{
    pgs_send_ch(pgs_of(st), Q_CH_DELETE, ch, on_count, done, arg);
}

void pg_redrive(store_t *st, store_chan_t ch, const store_chan_t *to, size_t max, store_done_fn done, void *arg)
{
    pgs_t *s = pgs_of(st);
    pgop_t *op = pgop_new(s, ch.name, ch.len, done, arg);
    op->flag = 1;
    if (to) {
        op->name = xstrndup(to->name, to->len);
        op->name_len = to->len;
    }
    pg_query_t *q = pgop_query_rows(op, on_count);
    pg_query_stmt(q, Q_REDRIVE);
    pg_query_bytes(q, ch.name, ch.len);
    if (to)
        pg_query_bytes(q, to->name, to->len);
    else
        pg_query_null(q);
    pg_query_i64(q, (int64_t)max);
    pg_query_i64(q, (int64_t)s->cfg.max_channel_events);
    pg_query_i64(q, (int64_t)s->cfg.max_channels);
    pg_query_send(q);
}

/* ---- settings ---- */

static void on_settings(pgop_t *op, const PGresult *r, store_res_t *res)
{
    store_settings_t v = {.dead_letter_channel = ""};
    if (pgs_nrows(r) == 1) {
        v.max_deliveries = (uint32_t)pg_get_i32(r, 0, 0);
        v.dead_letter_channel = pgs_text(r, 0, 1, &v.dead_letter_channel_len);
        v.retry_delay_ns = pg_get_i64(r, 0, 2);
    }
    res->settings = &v;
    pgop_finish(op, res);
}

void pg_settings_get(store_t *st, store_chan_t ch, store_done_fn done, void *arg)
{
    pgs_send_ch(pgs_of(st), Q_SETTINGS_GET, ch, on_settings, done, arg);
}

void pg_settings_put(store_t *st, store_chan_t ch, const store_settings_put_t *p, store_done_fn done, void *arg)
{
    pgs_t *s = pgs_of(st);
    pgop_t *op = pgop_new(s, ch.name, ch.len, done, arg);
    if (p->has_dead_letter_channel && p->v.dead_letter_channel_len == ch.len &&
        !memcmp(p->v.dead_letter_channel, ch.name, ch.len)) {
        pgop_fail(op, STORE_INVALID, "field \"deadLetterChannel\": a channel cannot be its own dead-letter channel");
        return;
    }
    pg_query_t *q = pgop_query_rows(op, on_settings);
    pg_query_stmt(q, Q_SETTINGS_PUT);
    pg_query_bytes(q, ch.name, ch.len);
    pg_query_i64(q, (int64_t)s->cfg.max_channels);
    if (p->has_max_deliveries)
        pg_query_i32(q, (int32_t)p->v.max_deliveries);
    else
        pg_query_null(q);
    if (p->has_dead_letter_channel)
        pg_query_bytes(q, p->v.dead_letter_channel, p->v.dead_letter_channel_len);
    else
        pg_query_null(q);
    if (p->has_retry_delay)
        pg_query_i64(q, p->v.retry_delay_ns);
    else
        pg_query_null(q);
    pg_query_send(q);
}
