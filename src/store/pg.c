/*
 * pg.c -- the PostgreSQL store as a whole: construction, the clock, the
 * loop's turn with its background round, and the helpers the operations
 * share to turn rows and errors into results (see pg.h).
 */
#include "pg_batch.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/sclock.h"
#include "base/util.h"
#include "pgstart.h"

#define TICK_EVERY_NS NTIME_NS_PER_S
#define SWEEP_ROWS 1000
#define METRICS_FRESH_NS (60 * NTIME_NS_PER_S)
#define TRIM_EVERY_NS (200 * NTIME_NS_PER_MS)
#define BG_SLACK_MS 1000 /* the background connection's deadline past the timeout */
/* Every connection: no JIT compiling, which costs tens to hundreds of
 * milliseconds a statement and pays only for long analytic queries. */
#define JIT_OFF "set_config('jit', 'off', false)"
#define POOL_SESSION "SELECT " JIT_OFF

/* ---- the clock ---- */

uint64_t pgs_local_ns(void)
{
    return (uint64_t)sclock_mono();
}

void pgs_log(pgs_t *s, const char *level, const char *msg)
{
    if (!s->cfg.log)
        return;
    char clean[1024];
    pg_redact(msg, s->cfg.url, clean, sizeof(clean));
    s->cfg.log(level, clean);
}

ntime_t pgs_now(pgs_t *s)
{
    return (ntime_t)pgs_local_ns() + s->offset_ns;
}

static void clock_say(pgs_t *s, int64_t db_now, uint64_t half)
{
    int64_t wall = sclock_read(CLOCK_REALTIME) - (int64_t)half;
    char msg[160];
    snprintf(msg, sizeof(msg), "database clock: %+.3f s from this host's", (double)(db_now - wall) / 1e9);
    s->cfg.log("info", msg);
}

void pgs_clock_sample(pgs_t *s, uint64_t sent_local, int64_t db_now)
{
    /* The database read its clock somewhere between send and now: take
     * the middle, which is off by at most half the round trip. */
    uint64_t back = pgs_local_ns();
    uint64_t half = (back - sent_local) / 2;
    if (s->clock_known && half > s->clock_bound + (back - s->clock_at) / PG_CLOCK_DRIFT_DIV)
        return; /* the offset in use is still the tighter */
    if (!s->clock_known && s->cfg.log)
        clock_say(s, db_now, half);
    s->offset_ns = db_now - (int64_t)(sent_local + half);
    s->clock_bound = half;
    s->clock_at = back;
    s->clock_known = 1;
}

static ntime_t pg_now(store_t *st)
{
    return pgs_now(pgs_of(st));
}

/* ---- ops: context, errors, results ---- */

pgop_t *pgop_new(pgs_t *s, const char *ch, size_t len, store_done_fn done, void *arg)
{
    pgop_t *op = xcalloc(1, sizeof(*op));
    op->s = s;
    op->done = done;
    op->arg = arg;
    if (ch) {
        op->ch = xstrndup(ch, len);
        op->ch_len = len;
    }
    return op;
}

void pgop_free(pgop_t *op)
{
    free(op->ch);
    free(op->name);
    free(op);
}

pg_query_t *pgop_query(pgop_t *op, pg_query_cb cb)
{
    op->local_at = pgs_local_ns();
    return pg_query_new(op->s->pool, cb, op);
}

pg_query_t *pgop_query_bg(pgop_t *op, pg_query_cb cb)
{
    op->local_at = pgs_local_ns();
    return pg_query_new(op->s->bg, cb, op);
}

static void on_rows(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    store_res_t res = {0};
    if (pgs_failed(op->s, q, &res))
        pgop_finish(op, &res);
    else
        op->rows(op, pg_query_result(q, 0), &res);
}

pg_query_t *pgop_query_rows(pgop_t *op, pgop_rows_fn rows)
{
    op->rows = rows;
    return pgop_query(op, on_rows);
}

void pgs_send_ch(pgs_t *s, int stmt, store_chan_t ch, pgop_rows_fn rows, store_done_fn done, void *arg)
{
    pgop_t *op = pgop_new(s, ch.name, ch.len, done, arg);
    pg_query_t *q = pgop_query_rows(op, rows);
    pg_query_stmt(q, stmt);
    pg_query_bytes(q, ch.name, ch.len);
    pg_query_send(q);
}

void pgop_finish(pgop_t *op, store_res_t *res)
{
    if (res->status == STORE_UNAVAILABLE)
        op->s->m_unavailable++;
    op->done(op->arg, res);
    pgop_free(op);
}

void pgop_fail(pgop_t *op, store_status_t st, const char *fmt, ...)
{
    store_res_t res = {.status = st};
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(op->s->err, sizeof(op->s->err), fmt, ap);
        va_end(ap);
        res.err = op->s->err;
    }
    pgop_finish(op, &res);
}

int pgs_failed(pgs_t *s, pg_query_t *q, store_res_t *res)
{
    static const struct { const char *state; store_status_t st; int say; } map[] = {
        {"DQ404", STORE_NOT_FOUND, 0}, {"DQ409", STORE_CONFLICT, 0}, {"DQ410", STORE_GONE, 0},
        {"DQ429", STORE_FULL, 1},      {"DQ400", STORE_INVALID, 1},
    };
    pg_status_t st = pg_query_status(q);
    if (st == PG_OK)
        return 0;
    res->err = NULL;
    if (st == PG_ERROR)
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (!strcmp(pg_query_sqlstate(q), map[i].state)) {
                res->status = map[i].st;
                if (map[i].say) {
                    snprintf(s->err, sizeof(s->err), "%s", pg_query_message(q));
                    res->err = s->err;
                }
                return 1;
            }
    res->status = STORE_UNAVAILABLE;
    snprintf(s->err, sizeof(s->err), "the database did not complete the request: %s", pg_query_error(q));
    res->err = s->err;
    if (st == PG_ERROR && s->cfg.log)
        s->cfg.log("error", s->err); /* a failure of ours, not of the database being away */
    return 1;
}

size_t pgs_nrows(const PGresult *r)
{
    return r ? (size_t)PQntuples(r) : 0;
}

const char *pgs_text(const PGresult *r, int row, int col, uint32_t *len)
{
    if (PQgetisnull(r, row, col)) {
        *len = 0;
        return "";
    }
    *len = (uint32_t)PQgetlength(r, row, col);
    return PQgetvalue(r, row, col);
}

void pgs_id_split(eid_t id, int64_t *seq, int64_t *ms)
{
    *seq = (int64_t)(((id.hi & 0xffff) << 32) | id.lo);
    *ms = (int64_t)(id.hi >> 16);
}

static int64_t opt_i64(const PGresult *r, int row, int col, int64_t none)
{
    return PQgetisnull(r, row, col) ? none : pg_get_i64(r, row, col);
}

void pgs_event_view(store_event_t *v, const PGresult *r, int row, int c0)
{
    int64_t now = pg_get_i64(r, row, c0 + EC_NOW), seq = pg_get_i64(r, row, c0 + EC_SEQ);
    int64_t ms = pg_get_i64(r, row, c0 + EC_MS), vis = pg_get_i64(r, row, c0 + EC_VIS);
    int64_t until = opt_i64(r, row, c0 + EC_LOCKED, 0);
    int has_lock = !PQgetisnull(r, row, c0 + EC_LOCKED);
    memset(v, 0, sizeof(*v));
    v->id.hi = ((uint64_t)ms << 16) | ((uint64_t)seq >> 32);
    v->id.lo = (uint32_t)seq;
    v->published_at = pg_get_i64(r, row, c0 + EC_PUB);
    v->lives_until = pg_get_i64(r, row, c0 + EC_LIVES);
    if (has_lock && until > now) {
        v->state = STORE_LOCKED;
        v->locked_until = until;
        v->token = (uint64_t)pg_get_i64(r, row, c0 + EC_TOKEN);
    } else {
        if (has_lock && vis > until)
            v->published_at = vis; /* returned after a retry delay: at the back */
        v->state = (has_lock ? vis : v->published_at) > now ? STORE_SCHEDULED : STORE_READY;
    }
    uint32_t len;
    v->data = pgs_text(r, row, c0 + EC_DATA, &len);
    v->data_len = len;
    v->data_json = (uint8_t)pg_get_bool(r, row, c0 + EC_JSON);
    v->priority = (uint8_t)pg_get_i16(r, row, c0 + EC_PRIO);
    v->deliveries = (uint32_t)pg_get_i32(r, row, c0 + EC_DELIV);
    if (!PQgetisnull(r, row, c0 + EC_DLF))
        v->dead_lettered_from = pgs_text(r, row, c0 + EC_DLF, &v->dead_lettered_from_len);
}

store_event_t *pgs_events(pgs_t *s, const PGresult *r, size_t *n)
{
    *n = pgs_nrows(r);
    s->views = xgrow(s->views, &s->cap_views, *n, sizeof(*s->views));
    for (size_t i = 0; i < *n; i++)
        pgs_event_view(&s->views[i], r, (int)i, 0);
    return s->views;
}

store_job_t *pgs_jobs_room(pgs_t *s, size_t n)
{
    return s->jobs = xgrow(s->jobs, &s->cap_jobs, n, sizeof(*s->jobs));
}

store_stats_t *pgs_stats_room(pgs_t *s, size_t n)
{
    return s->stats = xgrow(s->stats, &s->cap_stats, n, sizeof(*s->stats));
}

uint8_t *pgs_replayed_room(pgs_t *s, size_t n)
{
    return s->replayed = xgrow(s->replayed, &s->cap_replayed, n, 1);
}

void pgs_job_view(store_job_t *v, const PGresult *r, int row)
{
    uint32_t len;
    memset(v, 0, sizeof(*v));
    v->def.name = pgs_text(r, row, JC_NAME, &len);
    v->def.name_len = len;
    v->def.cron_def = pgs_text(r, row, JC_CRON, &len);
    v->def.cron_len = len;
    v->def.data = pgs_text(r, row, JC_DATA, &len);
    v->def.data_len = len;
    v->def.data_json = (uint8_t)pg_get_bool(r, row, JC_JSON);
    v->def.ttl_ns = pg_get_i64(r, row, JC_TTL);
    v->def.priority = (uint8_t)pg_get_i16(r, row, JC_PRIO);
    v->def.overlap = pg_get_bool(r, row, JC_OSKIP) ? STORE_OVERLAP_SKIP : STORE_OVERLAP_ALLOW;
    v->def.missed = pg_get_bool(r, row, JC_MONCE) ? STORE_MISSED_ONCE : STORE_MISSED_SKIP;
    v->def.missed_window_ns = pg_get_i64(r, row, JC_MWIN);
    v->paused = (uint8_t)pg_get_bool(r, row, JC_PAUSED);
    v->runs = (uint64_t)pg_get_i64(r, row, JC_RUNS);
    v->skipped = (uint64_t)pg_get_i64(r, row, JC_SKIPPED);
    v->last_run_at = opt_i64(r, row, JC_LAST, 0);
    v->next_at = v->paused ? NTIME_MAX : pg_get_i64(r, row, JC_NEXT);
    v->created_at = pg_get_i64(r, row, JC_CREATED);
}

/* ---- the background round ---- */

static void on_tick(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    pgs_t *s = op->s;
    const PGresult *r = pg_query_result(q, 0);
    if (pg_query_status(q) == PG_OK && r && PQntuples(r) == 1) {
        pgs_clock_sample(s, op->local_at, pg_get_i64(r, 0, 0));
        s->live_total = (uint64_t)pg_get_i64(r, 0, 1);
    }
    s->tick_busy--;
    pgop_free(op);
}

static void on_sweep(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    op->s->tick_busy--;
    (void)q;
    pgop_free(op);
}

/* Sends one background query (no parameters but sweep's). */
static void send_bg(pgs_t *s, int stmt, pg_query_cb cb)
{
    pgop_t *op = pgop_new(s, NULL, 0, NULL, NULL);
    pg_query_t *q = pgop_query(op, cb);
    pg_query_stmt(q, stmt);
    if (stmt == Q_SWEEP) {
        pg_query_i32(q, SWEEP_ROWS);
        pg_query_i64(q, (int64_t)s->cfg.max_channel_events);
    }
    s->tick_busy++;
    pg_query_send(q);
}

/* Once a second: the clock and counts, the sweep, the jobs due soon and
 * the channels with waiters. A round still out (the database is slow)
 * delays the next rather than piling up. */
static void background(pgs_t *s, ntime_t now)
{
    if (now < s->tick_at || s->tick_busy > 0 || !pg_pool_ready(s->pool))
        return;
    s->tick_at = now + TICK_EVERY_NS;
    send_bg(s, Q_TICK, on_tick);
    send_bg(s, Q_SWEEP, on_sweep);
    if (s->metrics_wanted_at && now - s->metrics_wanted_at < METRICS_FRESH_NS)
        pg_metrics_refresh(s);
    pg_sched_poll(s);
    pg_wake_poll(s);
}

/* Big results (a 100 000-event listing) leave the heap in pieces that
 * glibc gives back only to malloc_trim: once they are freed, trim, at
 * most every TRIM_EVERY_NS. Returns when to look again. */
static ntime_t trim(pgs_t *s, ntime_t now)
{
    uint64_t freed = pg_pool_big_freed(s->pool);
    if (freed == s->trimmed)
        return NTIME_MAX;
    if (now < s->trim_at)
        return s->trim_at;
    malloc_trim(0);
    s->trimmed = freed;
    s->trim_at = now + TRIM_EVERY_NS;
    return NTIME_MAX;
}

static ntime_t pg_turn(store_t *st)
{
    pgs_t *s = pgs_of(st);
    ntime_t now = pgs_now(s);
    background(s, now);
    ntime_t next = s->tick_busy > 0 || !pg_pool_ready(s->pool) ? now + 100 * NTIME_NS_PER_MS : s->tick_at;
    ntime_t j = pg_sched_turn(s, now), w = pg_wake_turn(s, now), t = trim(s, now);
    ntime_t v = pg_vacuum_turn(s->vacuum, now);
    next = j < next ? j : next;
    next = t < next ? t : next;
    next = v < next ? v : next;
    return w < next ? w : next;
}

static void pg_on_durable(store_t *st, uint64_t seq, void (*fn)(void *arg, store_status_t st), void *arg)
{
    (void)st, (void)seq;
    fn(arg, STORE_OK); /* every answer comes after COMMIT */
}

static int pg_ready(store_t *st)
{
    pgs_t *s = pgs_of(st);
    return s->clock_known && pg_pool_healthy(s->pool);
}

static void pg_free(store_t *st)
{
    pgs_t *s = pgs_of(st);
    pg_batcher_stop(s->batch);
    pg_pool_free(s->pool); /* fails what is in flight; callbacks run */
    pg_pool_free(s->bg);
    pg_vacuum_free(s->vacuum);
    pg_batcher_free(s->batch);
    pg_wake_free(s->wake);
    pg_sched_free(s->sched);
    pg_metrics_free(s->mcache);
    free((char *)s->cfg.url);
    free((char *)s->cfg.schema);
    free(s->views);
    free(s->stats);
    free(s->jobs);
    free(s->replayed);
    free(s);
}

static const store_ops_t pg_ops = {
    .publish = pg_publish,
    .list = pg_list,
    .get = pg_get,
    .lock = pg_lock,
    .unlock = pg_unlock,
    .extend = pg_extend,
    .del = pg_del,
    .acquire = pg_acquire,
    .stats = pg_stats,
    .channels = pg_channels,
    .purge = pg_purge,
    .channel_delete = pg_channel_delete,
    .settings_get = pg_settings_get,
    .settings_put = pg_settings_put,
    .redrive = pg_redrive,
    .job_put = pg_job_put,
    .job_get = pg_job_get,
    .jobs = pg_jobs,
    .job_delete = pg_job_delete,
    .job_op = pg_job_op,
    .now = pg_now,
    .turn = pg_turn,
    .on_durable = pg_on_durable,
    .ready = pg_ready,
    .metrics = pg_metrics,
    .free = pg_free,
};

store_t *store_pg_new(const store_pg_config_t *cfg)
{
    pgs_t *s = xcalloc(1, sizeof(*s));
    s->base.ops = &pg_ops;
    s->base.answers_later = 1;
    s->cfg = *cfg;
    s->cfg.url = xstrndup(cfg->url, strlen(cfg->url));
    s->cfg.schema = xstrndup(cfg->schema, strlen(cfg->schema));
    pg_pool_config_t pc = {.url = s->cfg.url, .schema = s->cfg.schema, .size = cfg->pool ? cfg->pool : 1,
                           .timeout_ms = cfg->timeout_ms, .loop = cfg->loop, .stmts = pg_stmts,
                           .nstmts = Q_COUNT, .quick = pg_stmt_quick, .log = cfg->log, .session_sql = POOL_SESSION};
    s->pool = pg_pool_new(&pc);
    /* The background connection: a statement there may take a while and
     * delays no request; the database cancels one that outlasts the
     * timeout, before the pool would give up on the connection. Its
     * scans run in one process, leaving the other cores to requests. */
    snprintf(s->bg_session, sizeof(s->bg_session),
             "SELECT set_config('statement_timeout', '%llu', false),"
             " set_config('client_min_messages', 'error', false),"
             " set_config('max_parallel_workers_per_gather', '0', false), " JIT_OFF,
             (unsigned long long)cfg->timeout_ms);
    pc.size = 1;
    pc.timeout_ms = cfg->timeout_ms + BG_SLACK_MS;
    pc.session_sql = s->bg_session;
    pc.name = "background";
    s->bg = pg_pool_new(&pc);
    s->sched = pg_sched_new(s);
    s->wake = pg_wake_new(s);
    s->batch = pg_batcher_new(s);
    s->mcache = pg_metrics_new();
    s->vacuum = pg_vacuum_new(s);
    return &s->base;
}
