/*
 * mem_chan.c -- the memory store's channel-wide operations: statistics,
 * the channel list, jobs, /metrics, and the Part C operations the core
 * cannot do yet (see mem.h).
 */
#include "mem_int.h"

#include <stdlib.h>
#include <string.h>
#include "base/util.h"

static void view_stats(void *out, const void *obj)
{
    store_stats_t *v = out;
    const channel_t *ch = obj;
    memset(v, 0, sizeof(*v));
    v->channel = ch->name;
    v->channel_len = ch->name_len;
    v->ready = ch->st.ready;
    v->scheduled = ch->st.scheduled;
    v->locked = ch->st.locked;
    v->jobs = ch->st.jobs;
    v->published = ch->st.published;
    v->deleted = ch->st.deleted;
    v->expired = ch->st.expired;
}

void mem_stats(store_t *s, store_chan_t name, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    store_stats_t v;
    mem_tick(m);
    channel_t *ch = mem_find(m, name);
    if (ch) {
        view_stats(&v, ch);
    } else { /* as for an empty channel */
        memset(&v, 0, sizeof(v));
        v.channel = name.name;
        v.channel_len = (uint32_t)name.len;
    }
    res.stats = &v;
    res.n_stats = 1;
    mem_done(m, &res, done, arg);
}

void mem_channels(store_t *s, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    mem_tick(m);
    channel_t **chans;
    res.n_stats = core_channels_sorted(m->core, &chans);
    res.stats = mem_view_all((void **)&m->stats, &m->cap_stats, sizeof(*m->stats), (void **)chans, res.n_stats,
                             view_stats);
    mem_done(m, &res, done, arg);
}

/* ---- jobs ---- */

static void view_job(void *out, const void *obj)
{
    store_job_t *v = out;
    const job_t *j = obj;
    memset(v, 0, sizeof(*v));
    v->def.name = j->name;
    v->def.name_len = j->name_len;
    v->def.cron_def = j->cron_def;
    v->def.cron_len = strlen(j->cron_def);
    v->def.data = j->data;
    v->def.data_len = j->data_len;
    v->def.overlap = STORE_OVERLAP_ALLOW;
    v->def.missed = STORE_MISSED_SKIP;
    v->def.ttl_ns = j->ttl_ns;
    v->created_at = j->created_at;
    v->next_at = j->next_at;
}

static void done_job(mem_t *m, store_res_t *res, const job_t *j, store_done_fn done, void *arg)
{
    store_job_t v;
    if (j) {
        view_job(&v, j);
        res->jobs = &v;
        res->n_jobs = 1;
    }
    mem_done(m, res, done, arg);
}

void mem_job_put(store_t *s, store_chan_t name, const store_job_def_t *def, int replace, store_done_fn done,
                 void *arg)
{
    mem_t *m = mem_of(s);
    if (replace || def->priority || def->overlap != STORE_OVERLAP_ALLOW || def->missed != STORE_MISSED_SKIP ||
        def->missed_window_ns) {
        mem_unsupported(m, replace ? "replacing a job" : "a job's priority, overlap or missed policy", done, arg);
        return;
    }
    store_res_t res = {0};
    job_t *j = NULL;
    char err[256];
    int created;
    ntime_t now = m->clock();
    channel_t *ch = NULL;
    /* Each fire publishes an event living until fire + ttl. A fire is
     * never before now; the core caps one that would pass the end of the
     * time range, which only a server running in the 2160s can reach. */
    if (!ntime_fits(now, def->ttl_ns))
        mem_fail(m, &res, STORE_INVALID, "field \"ttl\" is too long: now plus \"ttl\" must be before 2262-01-01");
    else
        ch = mem_channel_for(m, name, 0, &created, &res);
    if (!ch) {
        mem_done(m, &res, done, arg);
        return;
    }
    core_status_t st = core_job_add(m->core, ch, now, def->name, def->name_len, def->cron_def, def->cron_len,
                                    def->data, def->data_len, def->ttl_ns, &j, err, sizeof(err));
    if (st != CORE_OK)
        mem_channel_undo(m, ch, created);
    if (st == CORE_CONFLICT)
        mem_fail(m, &res, STORE_CONFLICT, NULL);
    else if (st == CORE_INVALID)
        mem_fail(m, &res, STORE_INVALID, "field \"cronDef\": %s", err);
    else if (st != CORE_OK)
        mem_fail(m, &res, STORE_UNAVAILABLE, NULL);
    else
        res.status = STORE_CREATED;
    done_job(m, &res, j, done, arg);
}

void mem_job_get(store_t *s, store_chan_t name, const char *jname, size_t len, unsigned next,
                 store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    if (next) {
        mem_unsupported(m, "previewing a job's next runs", done, arg);
        return;
    }
    store_res_t res = {0};
    mem_tick(m);
    channel_t *ch = mem_find(m, name);
    job_t *j = ch ? core_job_get(m->core, ch, jname, len) : NULL;
    if (!j)
        mem_fail(m, &res, STORE_NOT_FOUND, NULL);
    done_job(m, &res, j, done, arg);
}

void mem_jobs(store_t *s, store_chan_t name, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    mem_tick(m);
    channel_t *ch = mem_find(m, name);
    if (ch) {
        job_t **jobs;
        res.n_jobs = core_jobs_sorted(ch, &jobs);
        res.jobs = mem_view_all((void **)&m->jobs, &m->cap_jobs, sizeof(*m->jobs), (void **)jobs, res.n_jobs,
                                view_job);
    }
    mem_done(m, &res, done, arg);
}

void mem_job_delete(store_t *s, store_chan_t name, const char *jname, size_t len, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    channel_t *ch = mem_find(m, name);
    core_status_t st = ch ? core_job_delete(m->core, ch, m->clock(), jname, len) : CORE_NOT_FOUND;
    res.status = st == CORE_OK ? STORE_OK : st == CORE_NOT_FOUND ? STORE_NOT_FOUND : STORE_UNAVAILABLE;
    mem_done(m, &res, done, arg);
}

/* ---- not in the core yet ---- */

void mem_job_op(store_t *s, store_chan_t ch, const char *name, size_t len, store_job_op_t op,
                store_done_fn done, void *arg)
{
    (void)ch, (void)name, (void)len, (void)op;
    mem_unsupported(mem_of(s), "pausing, resuming or triggering a job", done, arg);
}

void mem_purge(store_t *s, store_chan_t ch, store_done_fn done, void *arg)
{
    (void)ch;
    mem_unsupported(mem_of(s), "purging a channel", done, arg);
}

void mem_channel_delete(store_t *s, store_chan_t ch, store_done_fn done, void *arg)
{
    (void)ch;
    mem_unsupported(mem_of(s), "deleting a channel", done, arg);
}

void mem_settings_get(store_t *s, store_chan_t ch, store_done_fn done, void *arg)
{
    (void)ch;
    mem_unsupported(mem_of(s), "channel settings", done, arg);
}

void mem_settings_put(store_t *s, store_chan_t ch, const store_settings_put_t *p, store_done_fn done, void *arg)
{
    (void)ch, (void)p;
    mem_unsupported(mem_of(s), "channel settings", done, arg);
}

void mem_redrive(store_t *s, store_chan_t ch, const store_chan_t *to, size_t max, store_done_fn done, void *arg)
{
    (void)ch, (void)to, (void)max;
    mem_unsupported(mem_of(s), "redriving dead letters", done, arg);
}

/* ---- /metrics ---- */

static void metrics_core(mem_t *m, store_text_t *out)
{
    channel_t **chans;
    size_t n = core_channels_sorted(m->core, &chans);
    uint64_t ready = 0, scheduled = 0, locked = 0, jobs = 0;
    for (size_t i = 0; i < n; i++) {
        ready += chans[i]->st.ready;
        scheduled += chans[i]->st.scheduled;
        locked += chans[i]->st.locked;
        jobs += chans[i]->st.jobs;
    }
    free(chans);
    const core_counters_t *k = core_counters(m->core);
    prom_head(out, "distribuerad_events", "gauge", "Live events by state.");
    prom_value(out, "distribuerad_events", "{state=\"ready\"}", (double)ready);
    prom_value(out, "distribuerad_events", "{state=\"scheduled\"}", (double)scheduled);
    prom_value(out, "distribuerad_events", "{state=\"locked\"}", (double)locked);
    prom_head(out, "distribuerad_channels", "gauge", "Channels that exist.");
    prom_value(out, "distribuerad_channels", "", (double)n);
    prom_head(out, "distribuerad_jobs", "gauge", "Recurring jobs.");
    prom_value(out, "distribuerad_jobs", "", (double)jobs);
    struct { const char *name, *help; uint64_t v; } cs[] = {
        {"distribuerad_events_published_total", "Events that became visible.", k->published},
        {"distribuerad_events_deleted_total", "Events deleted (acknowledged or cancelled).", k->deleted},
        {"distribuerad_events_expired_total", "Visible events whose ttl ran out.", k->expired},
        {"distribuerad_lock_expiries_total", "Locks that ran out before unlock or delete.", k->lock_expired},
        {"distribuerad_job_fires_total", "Events published by recurring jobs.", k->job_fires},
        {"distribuerad_job_fires_skipped_total", "Job fires skipped because an event limit was reached.",
         k->job_fires_skipped},
    };
    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
        prom_head(out, cs[i].name, "counter", cs[i].help);
        prom_value(out, cs[i].name, "", (double)cs[i].v);
    }
    prom_hist(out, "distribuerad_job_lateness_seconds", "How long after its scheduled time a job fire ran.",
              &k->lateness);
}

static void metrics_wal(wal_t *wal, store_text_t *out)
{
    wal_metrics_t w;
    wal_get_metrics(wal, &w);
    struct { const char *name, *type, *help; uint64_t v; } cs[] = {
        {"distribuerad_log_bytes_written_total", "counter", "Bytes appended to the log.", w.bytes_written},
        {"distribuerad_log_size_bytes", "gauge", "Size of the log file.", w.size},
        {"distribuerad_log_write_errors_total", "counter", "Log writes that failed (answered 503).", w.write_errors},
        {"distribuerad_log_rewrites_total", "counter", "Log rewrites done.", w.rewrites},
        {"distribuerad_log_fsync_errors_total", "counter", "fsync calls that failed.", w.fsync_errors},
    };
    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
        prom_head(out, cs[i].name, cs[i].type, cs[i].help);
        prom_value(out, cs[i].name, "", (double)cs[i].v);
    }
    prom_hist(out, "distribuerad_log_fsync_duration_seconds", "Time one fsync of the log took.", &w.fsync_time);
}

void mem_metrics(store_t *s, store_text_t *out)
{
    mem_t *m = mem_of(s);
    mem_tick(m);
    metrics_core(m, out);
    if (m->wal)
        metrics_wal(m->wal, out);
}
