/*
 * pg_metrics.c -- the PostgreSQL store's /metrics (see pg.h).
 *
 * The shared series (events by state, totals, per channel and per job)
 * are read from the database and rendered from the copy last read, so a
 * scrape answers at once. A read is one query: metrics_claim (while fewer
 * than -metrics-max-channels channels have series of their own; the claim
 * is the database's, so every replica shows the same channels), then every
 * channel's stats row with its metrics_own, then every job's runs, skips
 * and latest lateness. It runs with the background round (about once a
 * second) while someone scraped in the last minute, and at a scrape whose
 * copy is older than MCACHE_STALE_NS: values may lag by up to a second,
 * the same on every replica (Prometheus should take the max across
 * replicas, not the sum). The request and process series are per replica.
 *
 * The read counts each channel's events by state, which change with time
 * alone: it reads the rows a clock can change (leased, scheduled, expired
 * and not yet swept; docs/SCHEMA.md "Counting"), so its cost grows with
 * those, a second or so for 1 000 000 of them. So it goes on the
 * background connection, where no request waits behind it, and a read
 * starts no sooner after the last one ended than READ_SHARE times as long
 * as that one took: the reads take at most about 1/READ_SHARE of one
 * database connection's time, and values may lag by that much more.
 */
#include "pg_batch.h"

#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "chanmetrics.h"

#define MCACHE_STALE_NS (200 * NTIME_NS_PER_MS)
#define READ_SHARE 20
#define DEFAULT_METRICS_MAX_CHANNELS 1000

struct pg_mcache {
    store_stats_t *chans;     /* every channel, by name */
    uint8_t *own;             /* chans[i] has series of its own */
    size_t n, n_own;
    chanmetrics_job_t *jobs;  /* every job, by channel and name */
    size_t n_jobs;
    uint64_t dl_failed;       /* refused dead-letter moves and redrives, summed */
    uint64_t lock_expired;    /* leases that lapsed, summed */
    hist_t lateness;          /* this replica's job fires by how late they ran */
    char *names;              /* the names the views point into */
    ntime_t read_at;          /* when the copy was read (0: never) */
    uint64_t ended_at;        /* when the last read ended, well or not (local ns) */
    uint64_t took_ns;         /* how long it took */
    int busy;                 /* a read is out */
    int failing;              /* the last read failed (logged once) */
    int claim;                /* the next read claims first */
};

/* As the memory store's (core.c), so the two histograms compare. */
static const int64_t lateness_bounds[] = {
    500000, 1000000, 2000000, 5000000, 10000000, 50000000, 100000000, 1000000000,
};

pg_mcache_t *pg_metrics_new(void)
{
    pg_mcache_t *m = xcalloc(1, sizeof(*m));
    m->claim = 1;
    hist_init(&m->lateness, lateness_bounds, sizeof(lateness_bounds) / sizeof(lateness_bounds[0]));
    return m;
}

void pg_metrics_fired(pgs_t *s, int64_t late_ns)
{
    hist_observe(&s->mcache->lateness, late_ns);
}

static void mcache_clear(pg_mcache_t *m)
{
    free(m->chans);
    free(m->own);
    free(m->jobs);
    free(m->names);
    m->chans = NULL;
    m->own = NULL;
    m->jobs = NULL;
    m->names = NULL;
    m->n = m->n_own = m->n_jobs = 0;
    m->dl_failed = m->lock_expired = 0;
}

void pg_metrics_free(pg_mcache_t *m)
{
    if (!m)
        return;
    mcache_clear(m);
    free(m);
}

static size_t max_own(const pgs_t *s)
{
    return s->cfg.metrics_max_channels ? s->cfg.metrics_max_channels : DEFAULT_METRICS_MAX_CHANNELS;
}

/* ---- reading ---- */

/* Copies name (len bytes) to *at and returns where it went. */
static const char *keep(char **at, const char *name, size_t len)
{
    const char *p = *at;
    memcpy(*at, name, len);
    *at += len;
    return p;
}

/* The bytes every name of the channel rows rc and job rows rj take. */
static size_t names_size(const PGresult *rc, const PGresult *rj)
{
    size_t n = 1;
    for (int i = 0; i < PQntuples(rc); i++)
        n += (size_t)PQgetlength(rc, i, 0);
    for (int i = 0; i < PQntuples(rj); i++)
        n += (size_t)PQgetlength(rj, i, 0) + (size_t)PQgetlength(rj, i, 1);
    return n;
}

static void read_channels(pg_mcache_t *m, const PGresult *r, char **at)
{
    m->n = (size_t)PQntuples(r);
    m->chans = xcalloc(m->n + 1, sizeof(*m->chans));
    m->own = xcalloc(m->n + 1, 1);
    for (size_t i = 0; i < m->n; i++) {
        uint32_t len;
        const char *name = pgs_text(r, (int)i, 0, &len);
        m->chans[i].channel = keep(at, name, len);
        m->chans[i].channel_len = len;
        pgs_stats_view(&m->chans[i], r, (int)i);
        m->own[i] = (uint8_t)pg_get_bool(r, (int)i, 10);
        m->n_own += m->own[i];
        m->dl_failed += (uint64_t)pg_get_i64(r, (int)i, 11);
        m->lock_expired += (uint64_t)pg_get_i64(r, (int)i, 12);
    }
}

/* Both lists are in name order (COLLATE "C"): a merge finds each job's
 * channel. A job whose channel came after the channel rows were read is
 * left out until the next read. */
static void read_jobs(pg_mcache_t *m, const PGresult *r, char **at)
{
    size_t c = 0, nr = (size_t)PQntuples(r);
    m->jobs = xcalloc(nr + 1, sizeof(*m->jobs));
    for (size_t i = 0; i < nr; i++) {
        uint32_t cl, nl;
        const char *ch = pgs_text(r, (int)i, 0, &cl), *name = pgs_text(r, (int)i, 1, &nl);
        int cmp = 1;
        while (c < m->n) {
            size_t l = m->chans[c].channel_len;
            cmp = memcmp(m->chans[c].channel, ch, l < cl ? l : cl);
            if (!cmp)
                cmp = l < cl ? -1 : l > cl;
            if (cmp >= 0)
                break;
            c++;
        }
        if (cmp != 0)
            continue;
        chanmetrics_job_t *j = &m->jobs[m->n_jobs++];
        j->channel = m->chans[c].channel;
        j->channel_len = cl;
        j->name = keep(at, name, nl);
        j->name_len = nl;
        j->own = m->own[c];
        j->fires = (uint64_t)pg_get_i64(r, (int)i, 2);
        j->skips = (uint64_t)pg_get_i64(r, (int)i, 3);
        j->late_s = (double)pg_get_i64(r, (int)i, 4) / 1e9;
    }
}

/* A refused or cancelled read is said once (a lost connection is said by
 * the pool), and once when reads work again. */
static void read_failed(pgs_t *s, pg_query_t *q)
{
    pg_mcache_t *m = s->mcache;
    int failed = pg_query_status(q) == PG_ERROR;
    if (pg_query_status(q) == PG_UNAVAILABLE || failed == m->failing)
        return;
    m->failing = failed;
    char msg[700];
    if (!failed)
        snprintf(msg, sizeof(msg), "the /metrics read of the database works again");
    else
        snprintf(msg, sizeof(msg), "the /metrics read of the database failed (%s); its series keep their last "
                 "values", pg_query_error(q));
    pgs_log(s, failed ? "warn" : "info", msg);
}

static void on_read(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    pgs_t *s = op->s;
    pg_mcache_t *m = s->mcache;
    int first = op->flag; /* the claim came first */
    const PGresult *rc = pg_query_result(q, first), *rj = pg_query_result(q, first + 1);
    m->busy = 0;
    m->ended_at = pgs_local_ns();
    m->took_ns = m->ended_at - op->local_at;
    read_failed(s, q);
    if (pg_query_status(q) == PG_OK && rc && rj) {
        mcache_clear(m);
        m->names = xmalloc(names_size(rc, rj));
        char *at = m->names;
        read_channels(m, rc, &at);
        read_jobs(m, rj, &at);
        m->read_at = pgs_now(s);
        /* Room for more: the next read lets new channels in. */
        m->claim = m->n_own < max_own(s);
    }
    pgop_free(op);
}

void pg_metrics_refresh(pgs_t *s)
{
    pg_mcache_t *m = s->mcache;
    if (m->busy || !pg_pool_ready(s->bg) || pg_pool_busy(s->bg) ||
        pgs_local_ns() - m->ended_at < READ_SHARE * m->took_ns)
        return;
    m->busy = 1;
    pgop_t *op = pgop_new(s, NULL, 0, NULL, NULL);
    op->flag = m->claim;
    pg_query_t *q = pgop_query_bg(op, on_read);
    if (m->claim) {
        pg_query_stmt(q, Q_METRICS_CLAIM);
        pg_query_i64(q, (int64_t)max_own(s));
    }
    pg_query_stmt(q, Q_METRICS);
    pg_query_stmt(q, Q_METRICS_JOBS);
    pg_query_send(q);
}

/* ---- rendering ---- */

static void series(store_text_t *t, const char *name, const char *type, const char *help, const char *labels,
                   uint64_t v, int head)
{
    if (head)
        prom_head(t, name, type, help);
    prom_value(t, name, labels, (double)v);
}

/* The shared totals: sums over the channels. */
static void render_shared(const pg_mcache_t *m, store_text_t *out)
{
    store_stats_t t = {0};
    for (size_t i = 0; i < m->n; i++) {
        const store_stats_t *v = &m->chans[i];
        t.ready += v->ready;
        t.scheduled += v->scheduled;
        t.locked += v->locked;
        t.jobs += v->jobs;
        t.published += v->published;
        t.deleted += v->deleted;
        t.expired += v->expired;
        t.dead_lettered += v->dead_lettered;
    }
    series(out, "distribuerad_events", "gauge", "Live events by state (shared; up to a second old).",
           "{state=\"ready\"}", t.ready, 1);
    series(out, "distribuerad_events", "gauge", "", "{state=\"scheduled\"}", t.scheduled, 0);
    series(out, "distribuerad_events", "gauge", "", "{state=\"locked\"}", t.locked, 0);
    series(out, "distribuerad_channels", "gauge", "Channels that exist.", "", m->n, 1);
    series(out, "distribuerad_jobs", "gauge", "Recurring jobs.", "", t.jobs, 1);
    series(out, "distribuerad_events_published_total", "counter", "Events that became visible (shared).", "",
           t.published, 1);
    series(out, "distribuerad_events_deleted_total", "counter", "Events deleted (shared).", "", t.deleted, 1);
    series(out, "distribuerad_events_expired_total", "counter", "Visible events whose ttl ran out (shared).", "",
           t.expired, 1);
    series(out, "distribuerad_events_dead_lettered_total", "counter", "Events moved or dropped after their "
           "last delivery (shared).", "", t.dead_lettered, 1);
    series(out, "distribuerad_dead_letter_moves_failed_total", "counter", "Dead-letter moves and redrives "
           "refused because the target channel was at its event limit (shared).", "", m->dl_failed, 1);
    series(out, "distribuerad_lock_expiries_total", "counter", "Locks that ran out before unlock or delete "
           "(shared; counted when the lease is next touched, by the sweep within about a second).", "",
           m->lock_expired, 1);
}

static void render_replica(pgs_t *s, store_text_t *out)
{
    series(out, "distribuerad_job_fires_total", "counter", "Job fires made by this replica.", "", s->m_fires, 1);
    series(out, "distribuerad_job_fires_skipped_total", "counter",
           "Job fires this replica skipped because an event limit was reached.", "", s->m_skips, 1);
    prom_hist(out, "distribuerad_job_lateness_seconds", "How long after its scheduled time a job fire by this "
              "replica ran.", &s->mcache->lateness);
    series(out, "distribuerad_database_unavailable_total", "counter",
           "Requests this replica answered 503 because the database did not answer.", "", s->m_unavailable, 1);
    series(out, "distribuerad_database_ready", "gauge", "1 while a database connection is up.", "",
           (uint64_t)pg_pool_ready(s->pool), 1);
    series(out, "distribuerad_database_vacuums_total", "counter",
           "VACUUMs of the events table this replica sent that ended without an error.", "",
           pg_vacuum_runs(s->vacuum), 1);
    pg_batch_metrics(s->batch, out);
}

void pg_metrics(store_t *st, store_text_t *out)
{
    pgs_t *s = pgs_of(st);
    pg_mcache_t *m = s->mcache;
    ntime_t now = pgs_now(s);
    s->metrics_wanted_at = now;
    if (!m->read_at || now - m->read_at > MCACHE_STALE_NS)
        pg_metrics_refresh(s);
    render_shared(m, out);
    chanmetrics_render(out, m->chans, m->own, m->n, now);
    chanmetrics_render_jobs(out, m->jobs, m->n_jobs);
    render_replica(s, out);
}
