/*
 * mem_chan.c -- the memory store's channel-wide operations: statistics,
 * the channel list, jobs and /metrics (see mem.h). Settings, redrive,
 * purge and channel delete are in mem_queue.c.
 */
#include "mem_int.h"

#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "chanmetrics.h"

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
    v->dead_lettered = ch->st.dead_lettered;
    v->oldest_ready_at = core_oldest_ready(ch);
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
    v->def.cron_len = (uint32_t)strlen(j->cron_def);
    v->def.data = j->data;
    v->def.data_len = j->data_len;
    v->def.data_json = j->data_json;
    v->def.priority = j->priority;
    v->paused = j->paused;
    v->def.overlap = j->overlap == JOB_OVERLAP_SKIP ? STORE_OVERLAP_SKIP : STORE_OVERLAP_ALLOW;
    v->def.missed = j->missed == JOB_MISSED_ONCE ? STORE_MISSED_ONCE : STORE_MISSED_SKIP;
    v->def.missed_window_ns = j->missed_window_ns;
    v->def.ttl_ns = j->ttl_ns;
    v->created_at = j->created_at;
    v->next_at = j->next_at;
    v->last_run_at = j->last_run_at;
    v->runs = j->runs;
    v->skipped = j->skipped;
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

static job_def_t core_def(const store_job_def_t *d)
{
    job_def_t c = {.cron_def = d->cron_def, .cron_len = d->cron_len, .data = d->data, .data_len = d->data_len,
                   .data_json = d->data_json, .priority = d->priority,
                   .overlap = d->overlap == STORE_OVERLAP_SKIP ? JOB_OVERLAP_SKIP : JOB_OVERLAP_ALLOW,
                   .missed = d->missed == STORE_MISSED_ONCE ? JOB_MISSED_ONCE : JOB_MISSED_SKIP,
                   .missed_window_ns = d->missed_window_ns ? d->missed_window_ns : CORE_DEFAULT_MISSED_WINDOW_NS,
                   .ttl_ns = d->ttl_ns};
    return c;
}

void mem_job_put(store_t *s, store_chan_t name, const store_job_def_t *def, int replace, store_done_fn done,
                 void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    job_t *j = NULL;
    char err[256];
    int created, made;
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
    job_def_t cd = core_def(def);
    core_status_t st = core_job_put(m->core, ch, now, def->name, def->name_len, &cd, replace, &j, &made, err,
                                    sizeof(err));
    if (st != CORE_OK)
        mem_channel_undo(m, ch, created);
    if (st == CORE_CONFLICT)
        mem_fail(m, &res, STORE_CONFLICT, NULL);
    else if (st == CORE_INVALID)
        mem_fail(m, &res, STORE_INVALID, "field \"cronDef\": %s", err);
    else if (st != CORE_OK)
        mem_fail(m, &res, STORE_UNAVAILABLE, NULL);
    else
        res.status = made ? STORE_CREATED : STORE_OK;
    done_job(m, &res, st == CORE_OK ? j : NULL, done, arg);
}

/* The job jname of the channel name, or NULL (a missing channel holds
 * none); the channel, or NULL, into *chp unless chp is NULL. */
static job_t *find_job(mem_t *m, store_chan_t name, const char *jname, size_t len, channel_t **chp)
{
    channel_t *ch = mem_find(m, name);
    if (chp)
        *chp = ch;
    return ch ? core_job_get(m->core, ch, jname, len) : NULL;
}

void mem_job_get(store_t *s, store_chan_t name, const char *jname, size_t len, unsigned next,
                 store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    ntime_t now = mem_tick(m);
    job_t *j = find_job(m, name, jname, len, NULL);
    if (!j) {
        mem_fail(m, &res, STORE_NOT_FOUND, NULL);
        mem_done(m, &res, done, arg);
        return;
    }
    ntime_t runs[100];
    store_job_t v;
    view_job(&v, j);
    if (next) {
        v.next_runs = runs;
        v.n_next_runs = (uint32_t)core_job_next_runs(m->core, j, now, runs, next < 100 ? next : 100);
    }
    res.jobs = &v;
    res.n_jobs = 1;
    mem_done(m, &res, done, arg);
}

/* Pause, resume, trigger. A trigger publishes, so it meets the event
 * limits like a publish (429, nothing changed). */
void mem_job_op(store_t *s, store_chan_t name, const char *jname, size_t len, store_job_op_t op,
                store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    ntime_t now = mem_tick(m);
    channel_t *ch;
    job_t *j = find_job(m, name, jname, len, &ch);
    event_t *e = NULL;
    int created;
    core_status_t st = CORE_OK;
    if (!j)
        st = CORE_NOT_FOUND;
    else if (op != STORE_JOB_TRIGGER)
        st = core_job_pause(m->core, ch, now, jname, len, op == STORE_JOB_PAUSE, &j);
    else if (!mem_channel_for(m, name, 1, &created, &res))
        j = NULL;
    else
        st = core_job_trigger(m->core, ch, now, jname, len, &j, &e);
    if (st == CORE_NOT_FOUND)
        mem_fail(m, &res, STORE_NOT_FOUND, NULL);
    else if (st != CORE_OK)
        mem_fail(m, &res, STORE_UNAVAILABLE, NULL);
    else if (e)
        res.status = STORE_CREATED;
    store_event_t ev;
    if (e) {
        mem_view_event(m, &ev, e);
        res.events = &ev;
        res.n_events = 1;
    }
    done_job(m, &res, res.status <= STORE_CREATED ? j : NULL, done, arg);
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
    res.status = mem_status_of(st);
    mem_done(m, &res, done, arg);
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
        {"distribuerad_events_dead_lettered_total",
         "Events whose lock ended at maxDeliveries: moved to the dead-letter channel, or dropped without one.",
         k->dead_lettered},
        {"distribuerad_dead_letter_moves_failed_total",
         "Dead-letter moves and redrives refused because the target channel was at its event limit.", k->dl_failed},
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
        {"distribuerad_log_size_bytes", "gauge", "Bytes of records in the log (not the zeros after them).", w.size},
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

/* ---- per-channel and per-job series ----
 * At most metrics_max_channels channels have series of their own; a
 * channel keeps them while it exists (its counters never go backwards).
 * The others are summed into the _overflow series (chanmetrics.h). */

/* Marks channels with series of their own: those marked before stay;
 * unmarked ones join (in name order) while there is room. */
static void metrics_claim(mem_t *m, channel_t **chans, size_t n)
{
    uint8_t *own = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        own[i] = chans[i]->metrics_own;
    chanmetrics_claim(own, n, m->metrics_max_channels);
    for (size_t i = 0; i < n; i++)
        chans[i]->metrics_own = own[i];
    free(own);
}

static void metrics_channels(channel_t **chans, size_t n, ntime_t now, store_text_t *out)
{
    store_stats_t *v = xmalloc((n + 1) * sizeof(*v));
    uint8_t *own = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        view_stats(&v[i], chans[i]);
        own[i] = chans[i]->metrics_own;
    }
    chanmetrics_render(out, v, own, n, now);
    free(own);
    free(v);
}

static void metrics_jobs(channel_t **chans, size_t n, store_text_t *out)
{
    chanmetrics_job_t *v = NULL;
    size_t nv = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        job_t **jobs;
        size_t nj = core_jobs_sorted(chans[i], &jobs);
        if (nv + nj > cap) {
            cap = 2 * (nv + nj);
            v = xrealloc(v, cap * sizeof(*v));
        }
        for (size_t x = 0; x < nj; x++)
            v[nv++] = (chanmetrics_job_t){.channel = chans[i]->name, .channel_len = chans[i]->name_len,
                                          .name = jobs[x]->name, .name_len = jobs[x]->name_len,
                                          .own = chans[i]->metrics_own, .fires = jobs[x]->fires,
                                          .skips = jobs[x]->skips, .late_s = jobs[x]->late_s};
        free(jobs);
    }
    chanmetrics_render_jobs(out, v, nv);
    free(v);
}

void mem_metrics(store_t *s, store_text_t *out)
{
    mem_t *m = mem_of(s);
    ntime_t now = mem_tick(m);
    metrics_core(m, out);
    channel_t **chans;
    size_t n = core_channels_sorted(m->core, &chans);
    metrics_claim(m, chans, n);
    metrics_channels(chans, n, now, out);
    metrics_jobs(chans, n, out);
    free(chans);
    if (m->wal)
        metrics_wal(m->wal, out);
}
