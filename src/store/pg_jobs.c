/*
 * pg_jobs.c -- the PostgreSQL store's jobs: the job operations, and the
 * scheduler every replica runs (see pg.h).
 *
 * Scheduler: once a second each replica reads the jobs due within
 * SCHED_HORIZON_NS and keeps them in a small list; at each one's time it
 * computes the following fire time (cron is computed here, not in SQL)
 * and calls job_fire(channel, name, the next_at it read, the following
 * time). That statement locks the job row and fires only while next_at
 * still is the time read, the job exists and is not paused, so across
 * replicas exactly one call wins per scheduled time, and a job deleted
 * or paused fires nothing after that answer. No leader, no lease.
 *
 * Missed times: a fire found more than SCHED_MISSED_NS late was missed by
 * every replica (the database was unreachable, or none ran). With
 * missed "skip" the job moves on to its next time after now without
 * firing (job_skip); with "once" it fires once now, for the latest missed
 * time, if that is within the job's window.
 */
#include "pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"

#define SCHED_HORIZON_NS (1500 * NTIME_NS_PER_MS)
#define SCHED_MISSED_NS (2 * NTIME_NS_PER_S)
#define DEFAULT_MISSED_WINDOW_NS (3600 * NTIME_NS_PER_S)

typedef struct entry {
    char *ch, *name, *def;
    size_t ch_len, name_len;
    ntime_t next_at, created_at, new_next;
    ntime_t hold;             /* a fire came before the database's clock
                                 reached next_at: not again before this */
    int missed_once;
    int64_t window_ns;
    int inflight;             /* a fire or skip is out */
    int seen;                 /* in the last poll's answer */
} entry_t;

struct pg_sched {
    entry_t **e;
    size_t n, cap;
    int polling;
};

/* ---- the list of jobs due soon ---- */

static entry_t *entry_find(pg_sched_t *j, const char *ch, size_t ch_len, const char *name, size_t name_len)
{
    for (size_t i = 0; i < j->n; i++)
        if (j->e[i]->ch_len == ch_len && j->e[i]->name_len == name_len && !memcmp(j->e[i]->ch, ch, ch_len) &&
            !memcmp(j->e[i]->name, name, name_len))
            return j->e[i];
    return NULL;
}

static void entry_free(entry_t *e)
{
    free(e->ch);
    free(e->name);
    free(e->def);
    free(e);
}

/* Adds or updates the job (channel, name) with its definition and next
 * time; an entry with a fire out is left alone. */
static void entry_set(pg_sched_t *j, const char *ch, size_t ch_len, const char *name, size_t name_len,
                      const char *def, size_t def_len, ntime_t next_at, ntime_t created_at, int missed_once,
                      int64_t window_ns)
{
    entry_t *e = entry_find(j, ch, ch_len, name, name_len);
    if (e && e->inflight) {
        e->seen = 1;
        return;
    }
    if (!e) {
        if (j->n == j->cap) {
            j->cap = j->cap ? 2 * j->cap : 16;
            j->e = xrealloc(j->e, j->cap * sizeof(*j->e));
        }
        e = j->e[j->n++] = xcalloc(1, sizeof(*e));
        e->ch = xstrndup(ch, ch_len);
        e->ch_len = ch_len;
        e->name = xstrndup(name, name_len);
        e->name_len = name_len;
    }
    free(e->def);
    e->def = xstrndup(def, def_len);
    if (e->next_at != next_at)
        e->hold = 0;
    e->next_at = next_at;
    e->created_at = created_at;
    e->missed_once = missed_once;
    e->window_ns = window_ns;
    e->seen = 1;
}

static void entry_remove(pg_sched_t *j, entry_t *e)
{
    for (size_t i = 0; i < j->n; i++)
        if (j->e[i] == e) {
            j->e[i] = j->e[--j->n];
            entry_free(e);
            return;
        }
}

pg_sched_t *pg_sched_new(pgs_t *s)
{
    (void)s;
    return xcalloc(1, sizeof(pg_sched_t));
}

void pg_sched_free(pg_sched_t *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++)
        entry_free(j->e[i]);
    free(j->e);
    free(j);
}

void pg_sched_note(pgs_t *s, const char *ch, size_t ch_len, const store_job_t *v)
{
    if (v->paused || v->next_at == NTIME_MAX)
        return;
    entry_set(s->sched, ch, ch_len, v->def.name, v->def.name_len, v->def.cron_def, v->def.cron_len, v->next_at, v->created_at,
              v->def.missed == STORE_MISSED_ONCE, v->def.missed_window_ns);
}

static void on_due(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    pg_sched_t *j = op->s->sched;
    const PGresult *r = pg_query_result(q, 0);
    j->polling = 0;
    if (pg_query_status(q) != PG_OK || !r) {
        pgop_free(op);
        return;
    }
    for (size_t i = 0; i < j->n; i++)
        j->e[i]->seen = 0;
    for (int row = 0; row < PQntuples(r); row++) {
        uint32_t cl, nl, dl;
        const char *ch = pgs_text(r, row, 1, &cl), *name = pgs_text(r, row, 2, &nl), *def = pgs_text(r, row, 3, &dl);
        entry_set(j, ch, cl, name, nl, def, dl, pg_get_i64(r, row, 4), pg_get_i64(r, row, 5), pg_get_bool(r, row, 6),
                  pg_get_i64(r, row, 7));
    }
    /* gone, paused or moved past the horizon by another replica */
    for (size_t i = j->n; i-- > 0;)
        if (!j->e[i]->seen && !j->e[i]->inflight)
            entry_remove(j, j->e[i]);
    pgop_free(op);
}

void pg_sched_poll(pgs_t *s)
{
    if (s->sched->polling)
        return;
    s->sched->polling = 1;
    pgop_t *op = pgop_new(s, NULL, 0, NULL, NULL);
    pg_query_t *q = pgop_query(op, on_due);
    pg_query_stmt(q, Q_JOBS_DUE);
    pg_query_i64(q, SCHED_HORIZON_NS);
    pg_query_send(q);
}

/* ---- firing ---- */

static void on_fire(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    pgs_t *s = op->s;
    entry_t *e = (entry_t *)op->name;
    op->name = NULL;
    const PGresult *r = pg_query_result(q, 0);
    int answered = pg_query_status(q) == PG_OK && r && PQntuples(r) == 1;
    int won = answered && !PQgetisnull(r, 0, 0);
    e->inflight = 0;
    if (answered && !won && op->flag == Q_JOB_FIRE && pg_get_i64(r, 0, 1) < e->next_at) {
        /* Sent before the database's clock reached the time (this
         * replica's idea of that clock is off by up to half a round
         * trip): not lost, early. Again when the database gets there. */
        int64_t early = e->next_at - pg_get_i64(r, 0, 1);
        e->hold = pgs_now(s) + early;
        pgop_free(op);
        return;
    }
    if (won && op->flag == Q_JOB_FIRE) {
        if (pg_get_bool(r, 0, 0)) {
            s->m_fires++;
            pg_metrics_fired(s, pg_get_i64(r, 0, 1) - e->next_at);
            pg_wake_freed(s, e->ch, e->ch_len);
        } else if (pg_get_bool(r, 0, 2)) {
            s->m_skips++; /* an event limit, as the memory store counts */
        }
    }
    if (won && (op->flag == Q_JOB_FIRE || pg_get_bool(r, 0, 0))) {
        e->next_at = e->new_next; /* ours: the next time is known */
        e->hold = 0;
    } else {
        entry_remove(s->sched, e); /* another replica's, or unknown: the next poll tells */
    }
    pgop_free(op);
}

/* The latest fire time of c in [from, now] (from is one). */
static ntime_t latest_missed(const cron_t *c, ntime_t from, ntime_t now)
{
    ntime_t t = from;
    for (int i = 0; i < 1000000; i++) {
        ntime_t n = cron_next(c, t);
        if (n > now || n == NTIME_MAX)
            break;
        t = n;
    }
    return t;
}

/* Sends the fire (or skip) of e, due at e->next_at. */
static void fire(pgs_t *s, entry_t *e, ntime_t now)
{
    char err[256];
    cron_t *c = cron_parse(e->def, strlen(e->def), e->created_at, s->cfg.zone, err, sizeof(err));
    if (!c) {
        entry_remove(s->sched, e);
        return;
    }
    int stmt = Q_JOB_FIRE;
    if (now - e->next_at > SCHED_MISSED_NS) {
        ntime_t last = latest_missed(c, e->next_at, now);
        int64_t window = e->window_ns > 0 ? e->window_ns : DEFAULT_MISSED_WINDOW_NS;
        e->new_next = cron_next(c, now);
        if (!e->missed_once || now - last > window)
            stmt = Q_JOB_SKIP;
    } else {
        e->new_next = cron_next(c, e->next_at);
        if (e->new_next <= now)
            e->new_next = cron_next(c, now); /* late: one fire, not a burst */
    }
    cron_free(c);
    pgop_t *op = pgop_new(s, NULL, 0, NULL, NULL);
    op->flag = stmt;
    op->name = (char *)e; /* borrowed; on_fire takes it back */
    e->inflight = 1;
    pg_query_t *q = pgop_query(op, on_fire);
    pg_query_stmt(q, stmt);
    pg_query_bytes(q, e->ch, e->ch_len);
    pg_query_bytes(q, e->name, e->name_len);
    pg_query_i64(q, e->next_at);
    pg_query_i64(q, e->new_next);
    if (stmt == Q_JOB_FIRE) { /* a fire is refused by the limits, as a publish */
        pg_query_i64(q, (int64_t)s->cfg.max_channel_events);
        pg_query_bool(q, s->cfg.max_events && s->live_total >= s->cfg.max_events);
    }
    pg_query_send(q);
}

ntime_t pg_sched_turn(pgs_t *s, ntime_t now)
{
    pg_sched_t *j = s->sched;
    ntime_t next = NTIME_MAX;
    if (!s->clock_known)
        return next;
    for (size_t i = 0; i < j->n; i++) {
        entry_t *e = j->e[i];
        if (e->inflight)
            continue;
        ntime_t at = e->hold > e->next_at ? e->hold : e->next_at;
        if (at <= now) {
            fire(s, e, now);
            /* fire may have removed e: look at this index again */
            if (i < j->n && j->e[i] != e)
                i--;
            continue;
        }
        if (at < next)
            next = at;
    }
    return next;
}

/* ---- operations ---- */

/* The job of r's first row into v; 0 after ending op with
 * STORE_NOT_FOUND if there is none. */
static int job_row(pgop_t *op, const PGresult *r, store_res_t *res, store_job_t *v)
{
    if (pgs_nrows(r) == 0) {
        res->status = STORE_NOT_FOUND;
        pgop_finish(op, res);
        return 0;
    }
    pgs_job_view(v, r, 0);
    return 1;
}

/* The schedule of v (NULL if its definition does not parse); the
 * caller frees it. */
static cron_t *job_cron(const pgs_t *s, const store_job_t *v)
{
    char err[256];
    return cron_parse(v->def.cron_def, v->def.cron_len, v->created_at, s->cfg.zone, err, sizeof(err));
}

/* Answers with the job of statement 0 (columns JC_*), if any. */
static void on_job(pgop_t *op, const PGresult *r, store_res_t *res)
{
    store_job_t v;
    ntime_t runs[100];
    if (!job_row(op, r, res, &v))
        return;
    if (op->flag == Q_JOB_PUT && !PQgetisnull(r, 0, JC_END) && pg_get_bool(r, 0, JC_END))
        res->status = STORE_CREATED;
    if (op->n > 0) {
        cron_t *c = job_cron(op->s, &v);
        ntime_t t = c && v.paused ? cron_next(c, pg_get_i64(r, 0, JC_NOW)) : v.next_at;
        for (int i = 0; c && i < op->n && i < 100 && t != NTIME_MAX; i++, t = cron_next(c, t))
            runs[v.n_next_runs++] = t;
        v.next_runs = runs;
        cron_free(c);
    }
    if (op->flag == Q_JOB_PUT || op->flag == Q_JOB_PAUSE)
        pg_sched_note(op->s, op->ch, op->ch_len, &v);
    res->jobs = &v;
    res->n_jobs = 1;
    pgop_finish(op, res);
}

void pg_job_put(store_t *st, store_chan_t ch, const store_job_def_t *def, int replace, store_done_fn done,
                void *arg)
{
    pgs_t *s = pgs_of(st);
    pgop_t *op = pgop_new(s, ch.name, ch.len, done, arg);
    char err[256];
    ntime_t now = pgs_now(s);
    cron_t *c = cron_parse(def->cron_def, def->cron_len, now, s->cfg.zone, err, sizeof(err));
    if (!c) {
        pgop_fail(op, STORE_INVALID, "field \"cronDef\": %s", err);
        return;
    }
    ntime_t next = cron_next(c, now);
    cron_free(c);
    op->flag = Q_JOB_PUT;
    pg_query_t *q = pgop_query_rows(op, on_job);
    pg_query_stmt(q, Q_JOB_PUT);
    pg_query_bytes(q, ch.name, ch.len);
    pg_query_i64(q, (int64_t)s->cfg.max_channels);
    pg_query_bool(q, replace);
    pg_query_bytes(q, def->name, def->name_len);
    pg_query_bytes(q, def->cron_def, def->cron_len);
    pg_query_bytes(q, def->data, def->data_len);
    pg_query_bool(q, def->data_json);
    pg_query_i64(q, def->ttl_ns);
    pg_query_i16(q, def->priority);
    pg_query_bool(q, def->overlap == STORE_OVERLAP_SKIP);
    pg_query_bool(q, def->missed == STORE_MISSED_ONCE);
    pg_query_i64(q, def->missed_window_ns > 0 ? def->missed_window_ns : DEFAULT_MISSED_WINDOW_NS);
    pg_query_i64(q, now);
    pg_query_i64(q, next);
    pg_query_send(q);
}

/* A query of stmt on (channel, job name). */
static pg_query_t *job_query(pgop_t *op, int stmt, pgop_rows_fn rows, store_chan_t ch, const char *name,
                             size_t len)
{
    pg_query_t *q = pgop_query_rows(op, rows);
    pg_query_stmt(q, stmt);
    pg_query_bytes(q, ch.name, ch.len);
    pg_query_bytes(q, name, len);
    return q;
}

void pg_job_get(store_t *st, store_chan_t ch, const char *name, size_t len, unsigned next, store_done_fn done,
                void *arg)
{
    pgop_t *op = pgop_new(pgs_of(st), ch.name, ch.len, done, arg);
    op->n = (int)next;
    op->flag = Q_JOB_GET;
    pg_query_send(job_query(op, Q_JOB_GET, on_job, ch, name, len));
}

static void on_jobs(pgop_t *op, const PGresult *r, store_res_t *res)
{
    size_t n = pgs_nrows(r);
    store_job_t *v = pgs_jobs_room(op->s, n);
    for (size_t i = 0; i < n; i++)
        pgs_job_view(&v[i], r, (int)i);
    res->jobs = v;
    res->n_jobs = n;
    pgop_finish(op, res);
}

void pg_jobs(store_t *st, store_chan_t ch, store_done_fn done, void *arg)
{
    pgs_send_ch(pgs_of(st), Q_JOBS, ch, on_jobs, done, arg);
}

static void on_job_delete(pgop_t *op, const PGresult *r, store_res_t *res)
{
    if (pgs_nrows(r) == 0)
        res->status = STORE_NOT_FOUND;
    pgop_finish(op, res);
}

void pg_job_delete(store_t *st, store_chan_t ch, const char *name, size_t len, store_done_fn done, void *arg)
{
    pgop_t *op = pgop_new(pgs_of(st), ch.name, ch.len, done, arg);
    pg_query_send(job_query(op, Q_JOB_DELETE, on_job_delete, ch, name, len));
}

static void on_trigger(pgop_t *op, const PGresult *r, store_res_t *res)
{
    store_job_t v;
    store_event_t ev;
    pgs_job_view(&v, r, 0);
    pgs_event_view(&ev, r, 0, JC_END);
    res->status = STORE_CREATED;
    res->jobs = &v;
    res->n_jobs = 1;
    res->events = &ev;
    res->n_events = 1;
    op->s->live_total++;
    pg_wake_freed(op->s, op->ch, op->ch_len);
    pgop_finish(op, res);
}

/* Pauses (paused 1, next NTIME_MAX) or resumes the job; answers with it. */
static void send_pause(pgop_t *op, store_chan_t ch, const char *name, size_t len, int paused, ntime_t next)
{
    op->flag = Q_JOB_PAUSE;
    pg_query_t *q = job_query(op, Q_JOB_PAUSE, on_job, ch, name, len);
    pg_query_bool(q, paused);
    pg_query_i64(q, next);
    pg_query_send(q);
}

/* Resume, second step: the definition is known, the next time after now
 * follows from it. */
static void on_resume_def(pgop_t *op, const PGresult *r, store_res_t *res)
{
    store_job_t v;
    if (!job_row(op, r, res, &v))
        return;
    cron_t *c = job_cron(op->s, &v);
    ntime_t next = c ? cron_next(c, pg_get_i64(r, 0, JC_NOW)) : NTIME_MAX;
    cron_free(c);
    store_chan_t ch = {op->ch, op->ch_len};
    send_pause(op, ch, v.def.name, v.def.name_len, 0, next);
}

void pg_job_op(store_t *st, store_chan_t ch, const char *name, size_t len, store_job_op_t kind, store_done_fn done,
               void *arg)
{
    pgs_t *s = pgs_of(st);
    pgop_t *op = pgop_new(s, ch.name, ch.len, done, arg);
    pg_query_t *q;
    switch (kind) {
    case STORE_JOB_PAUSE:
        send_pause(op, ch, name, len, 1, NTIME_MAX);
        return;
    case STORE_JOB_RESUME:
        q = job_query(op, Q_JOB_GET, on_resume_def, ch, name, len);
        break;
    default:
        q = job_query(op, Q_JOB_TRIGGER, on_trigger, ch, name, len);
        pg_query_i64(q, (int64_t)s->cfg.max_channel_events);
        break;
    }
    pg_query_send(q);
}
