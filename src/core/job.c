/*
 * job.c -- recurring jobs: a unique name per channel, a definition (cron,
 * data, ttl, priority, overlap and missed policies) and the state people
 * operate (paused, runs, skipped, last run).
 *
 * A job's one pending wake-up is its next fire time. When it fires it
 * publishes (or skips, see core.h), then asks the cron for the first time
 * strictly after `now`, so a late loop turn skips the times it missed
 * instead of firing a burst, and a time is never fired twice. The preview
 * of the next runs (core_job_next_runs) walks the same cron_next from the
 * same next_at, so it shows what will happen.
 *
 * Times missed while the server was down: replay ends with a tick in which
 * each job's timer comes up at its first unseen time (core_replay_end).
 * A job with missed ONCE whose unseen times include one within its window
 * is marked catch_up and fires at the first tick after replay, when the
 * log takes records again; the others resume at their first time after
 * now.
 */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>
#include "base/util.h"

static void job_schedule(core_t *c, job_t *j, ntime_t after)
{
    j->next_at = j->paused ? NTIME_MAX : cron_next(j->cron, after);
    if (j->next_at == NTIME_MAX)
        timers_cancel(&c->timers, &j->timer);
    else
        timers_set(&c->timers, &j->timer, j->next_at, CORE_TIMER_JOB);
}

/* How late a fire ran after its time, for /metrics. */
static void count_lateness(core_t *c, job_t *j, int64_t late_ns)
{
    hist_observe(&c->counters.lateness, late_ns);
    j->late_s = (double)late_ns / 1e9;
}

/* Would one more event pass a limit? Then the fire is skipped, like a
 * request past the limit: nothing stored is evicted to make room. */
static int job_full(const core_t *c, const channel_t *ch)
{
    return (c->max_events && c->counters.events >= c->max_events) ||
           (c->max_channel_events && ch->st.ready + ch->st.scheduled + ch->st.locked >= c->max_channel_events);
}

/* Is the event of the job's latest run still live in its channel? */
static int previous_live(core_t *c, const job_t *j, ntime_t now)
{
    if (!j->last_event.hi && !j->last_event.lo)
        return 0;
    event_t *e = event_lookup(c, j->channel, j->last_event);
    return e && e->lives_until > now;
}

/* ==== runs: fires and triggers ==== */

void job_ran(job_t *j, ntime_t now, eid_t id)
{
    j->runs++;
    j->last_run_at = now;
    j->last_event = id;
}

/* Publishes the job's event now, logged as a record of type `type` (a
 * PUBLISH carrying the job's name, or a JOB_TRIGGER). NULL if the log
 * could not be written (nothing changed). */
static event_t *job_publish(core_t *c, job_t *j, ntime_t now, uint8_t type)
{
    core_rec_t r;
    eid_t id = id_gen_next(&c->idgen, now);
    core_pub_t p = {.data = j->data, .len = j->data_len, .publish_at = now, .ttl_ns = j->ttl_ns,
                    .priority = j->priority, .json = j->data_json};
    event_rec_publish(&r, j->channel, now, id, &p);
    r.type = type;
    r.name = j->name; /* marks a job's fire, for replay */
    r.name_len = j->name_len;
    journal_add(c, &r);
    if (journal_commit(c) != 0)
        return NULL;
    event_t *e = event_create(c, j->channel, now, id, &p);
    job_ran(j, now, id);
    j->fires++;
    return e;
}

/* A fire that publishes nothing: logged, so `skipped` survives a restart. */
static void job_skip(core_t *c, job_t *j, ntime_t now)
{
    core_rec_t r = {.type = CORE_REC_JOB_SKIP, .now = now, .channel = j->channel->name,
                    .channel_len = j->channel->name_len, .name = j->name, .name_len = j->name_len};
    journal_add(c, &r);
    if (journal_commit(c) != 0)
        return;
    j->skipped++;
    j->skips++;
}

static void fire_live(core_t *c, job_t *j, ntime_t now)
{
    if (j->overlap == JOB_OVERLAP_SKIP && previous_live(c, j, now)) {
        job_skip(c, j, now);
    } else if (job_full(c, j->channel)) {
        c->counters.job_fires_skipped++;
        job_skip(c, j, now);
    } else if (job_publish(c, j, now, CORE_REC_PUBLISH)) {
        /* A fire that cannot be logged is skipped, like one missed while
         * the server was down; the next one is tried as usual. */
        j->channel->st.job_fires++;
        c->counters.job_fires++;
        count_lateness(c, j, now - j->next_at);
    }
}

/* Replay's last tick: was a time within the job's window missed while
 * the server was down? Its timer came up at next_at, its first unseen
 * time; any time in [max(next_at, now - window), now] qualifies. */
static int missed_in_window(const job_t *j, ntime_t now)
{
    if (j->missed != JOB_MISSED_ONCE || j->paused)
        return 0;
    ntime_t from = now - j->missed_window_ns;
    if (from <= j->next_at)
        return 1;
    return cron_next(j->cron, from - 1) <= now;
}

static void fire_replayed(core_t *c, job_t *j, ntime_t now)
{
    /* The fires and skips that happened are records of their own; a job
     * only keeps its schedule, and takes its record at the point of the
     * tick where it happened live. */
    const core_rec_t *rf = replay_claim_fire(c, j);
    if (rf)
        job_apply_run(c, j, rf);
    else if (c->replay_ending && missed_in_window(j, now))
        core_catch_up_add(c, j);
}

void job_fire(core_t *c, job_t *j, ntime_t now)
{
    if (c->replaying)
        fire_replayed(c, j, now);
    else
        fire_live(c, j, now);
    j->catch_up = 0;
    job_schedule(c, j, now);
}

void job_apply_run(core_t *c, job_t *j, const core_rec_t *r)
{
    if (r->type == CORE_REC_JOB_SKIP) {
        j->skipped++;
        return;
    }
    core_pub_t p = rec_pub(r);
    event_create(c, j->channel, r->now, r->id, &p);
    id_gen_observe(&c->idgen, r->id);
    job_ran(j, r->now, r->id);
}

void job_catch_up(core_t *c, job_t *j, ntime_t now)
{
    j->catch_up = 1;
    j->next_at = now;
    timers_set(&c->timers, &j->timer, now, CORE_TIMER_JOB);
}

/* ==== definitions ==== */

uint8_t job_def_flags(const job_def_t *d)
{
    return (uint8_t)((d->priority & CORE_JOB_F_PRIORITY) | (d->overlap == JOB_OVERLAP_SKIP ? CORE_JOB_F_SKIP : 0) |
                     (d->missed == JOB_MISSED_ONCE ? CORE_JOB_F_ONCE : 0) | (d->data_json ? CORE_JOB_F_JSON : 0));
}

int job_def_from_rec(job_def_t *d, const core_rec_t *r)
{
    memset(d, 0, sizeof(*d));
    d->cron_def = r->cron;
    d->cron_len = r->cron_len;
    d->data = r->data;
    d->data_len = r->data_len;
    d->data_json = (r->state & CORE_JOB_F_JSON) != 0;
    d->priority = r->state & CORE_JOB_F_PRIORITY;
    d->overlap = r->state & CORE_JOB_F_SKIP ? JOB_OVERLAP_SKIP : JOB_OVERLAP_ALLOW;
    d->missed = r->state & CORE_JOB_F_ONCE ? JOB_MISSED_ONCE : JOB_MISSED_SKIP;
    d->missed_window_ns = r->n_nums > 0 && r->nums[0] ? (int64_t)r->nums[0] : CORE_DEFAULT_MISSED_WINDOW_NS;
    d->ttl_ns = r->ttl_ns;
    return d->priority <= CORE_JOB_MAX_PRIORITY && d->ttl_ns > 0 && d->missed_window_ns > 0 ? 0 : -1;
}

/* Describes a definition as a JOB_ADD or JOB_REPLACE record. */
static void def_rec(core_rec_t *r, uint8_t type, const channel_t *ch, ntime_t now, const char *name,
                    size_t name_len, const job_def_t *d)
{
    *r = (core_rec_t){.type = type, .now = now, .channel = ch->name, .channel_len = ch->name_len,
                      .name = name, .name_len = (uint32_t)name_len, .cron = d->cron_def,
                      .cron_len = (uint32_t)d->cron_len, .data = d->data, .data_len = (uint32_t)d->data_len,
                      .ttl_ns = d->ttl_ns, .state = job_def_flags(d), .n_nums = 1};
    r->nums[0] = (uint64_t)d->missed_window_ns;
}

static int def_equal(const job_t *j, const job_def_t *d)
{
    return strlen(j->cron_def) == d->cron_len && memcmp(j->cron_def, d->cron_def, d->cron_len) == 0 &&
           j->data_len == d->data_len && memcmp(j->data, d->data, d->data_len) == 0 &&
           j->data_json == d->data_json && j->priority == d->priority && j->overlap == d->overlap &&
           j->missed == d->missed && j->missed_window_ns == d->missed_window_ns && j->ttl_ns == d->ttl_ns;
}

void job_define(core_t *c, job_t *j, const job_def_t *d, cron_t *cron, ntime_t defined_at, ntime_t now)
{
    cron_free(j->cron);
    free(j->cron_def);
    free(j->data);
    j->cron = cron;
    j->cron_def = xstrndup(d->cron_def, d->cron_len);
    j->data = xstrndup(d->data, d->data_len);
    j->data_len = (uint32_t)d->data_len;
    j->data_json = d->data_json;
    j->priority = d->priority;
    j->overlap = d->overlap;
    j->missed = d->missed;
    j->missed_window_ns = d->missed_window_ns;
    j->ttl_ns = d->ttl_ns;
    j->defined_at = defined_at;
    j->catch_up = 0;
    job_schedule(c, j, now);
}

job_t *job_create(core_t *c, channel_t *ch, const char *name, size_t name_len, const job_def_t *d,
                  cron_t *cron, ntime_t created_at, ntime_t defined_at, ntime_t now)
{
    job_t *j = xcalloc(1, sizeof(*j));
    j->channel = ch;
    j->created_at = created_at;
    strmap_entry_t *e = strmap_put(&ch->jobs, name, name_len, j);
    j->name = e->key;
    j->name_len = (uint32_t)name_len;
    ch->st.jobs++;
    job_define(c, j, d, cron, defined_at, now);
    return j;
}

core_status_t core_job_put(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t name_len,
                           const job_def_t *def, int replace, job_t **out, int *created, char *err,
                           size_t errlen)
{
    now = core_clock(c, now);
    core_tick(c, now);
    job_t *j = strmap_get(&ch->jobs, name, name_len);
    *created = j == NULL;
    *out = j;
    if (j && !replace) {
        snprintf(err, errlen, "a job with this name already exists in this channel");
        return CORE_CONFLICT;
    }
    if (j && def_equal(j, def))
        return CORE_OK;
    cron_t *cron = cron_parse(def->cron_def, def->cron_len, now, c->default_tz, err, errlen);
    if (!cron)
        return CORE_INVALID;
    core_rec_t r;
    def_rec(&r, j ? CORE_REC_JOB_REPLACE : CORE_REC_JOB_ADD, ch, now, name, name_len, def);
    journal_add(c, &r);
    if (journal_commit(c) != 0) {
        cron_free(cron);
        snprintf(err, errlen, "the log could not be written");
        return CORE_IO;
    }
    if (j)
        job_define(c, j, def, cron, now, now);
    else
        *out = job_create(c, ch, name, name_len, def, cron, now, now, now);
    return CORE_OK;
}

core_status_t core_job_add(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t name_len,
                           const char *cron_def, size_t cron_len, const char *data, size_t data_len,
                           int64_t ttl_ns, job_t **out, char *err, size_t errlen)
{
    job_def_t d = {.cron_def = cron_def, .cron_len = cron_len, .data = data, .data_len = data_len,
                   .missed_window_ns = CORE_DEFAULT_MISSED_WINDOW_NS, .ttl_ns = ttl_ns};
    int created;
    return core_job_put(c, ch, now, name, name_len, &d, 0, out, &created, err, errlen);
}

/* ==== operations ==== */

job_t *core_job_get(core_t *c, channel_t *ch, const char *name, size_t len)
{
    (void)c;
    return strmap_get(&ch->jobs, name, len);
}

void job_set_paused(core_t *c, job_t *j, int pause, ntime_t now)
{
    j->paused = (uint8_t)pause;
    j->catch_up = 0;
    job_schedule(c, j, now);
}

/* A record about a job by name: JOB_PAUSE, JOB_RESUME, JOB_DEL, JOB_SKIP. */
static int job_log(core_t *c, uint8_t type, const channel_t *ch, ntime_t now, const char *name, size_t len)
{
    core_rec_t r = {.type = type, .now = now, .channel = ch->name, .channel_len = ch->name_len,
                    .name = name, .name_len = (uint32_t)len};
    journal_add(c, &r);
    return journal_commit(c);
}

core_status_t core_job_pause(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t len,
                             int pause, job_t **out)
{
    now = core_clock(c, now);
    core_tick(c, now);
    job_t *j = *out = strmap_get(&ch->jobs, name, len);
    if (!j)
        return CORE_NOT_FOUND;
    if (j->paused == !!pause)
        return CORE_OK;
    if (job_log(c, pause ? CORE_REC_JOB_PAUSE : CORE_REC_JOB_RESUME, ch, now, name, len) != 0)
        return CORE_IO;
    job_set_paused(c, j, !!pause, now);
    return CORE_OK;
}

core_status_t core_job_trigger(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t len,
                               job_t **out, event_t **ev)
{
    now = core_clock(c, now);
    core_tick(c, now);
    job_t *j = *out = strmap_get(&ch->jobs, name, len);
    *ev = NULL;
    if (!j)
        return CORE_NOT_FOUND;
    *ev = job_publish(c, j, now, CORE_REC_JOB_TRIGGER);
    return *ev ? CORE_OK : CORE_IO;
}

size_t core_job_next_runs(core_t *c, const job_t *j, ntime_t now, ntime_t *out, size_t n)
{
    now = core_clock(c, now);
    ntime_t t = j->paused ? cron_next(j->cron, now) : j->next_at;
    size_t k = 0;
    for (; k < n && t != NTIME_MAX; k++) {
        out[k] = t;
        t = cron_next(j->cron, t);
    }
    return k;
}

void job_free(core_t *c, job_t *j)
{
    timers_cancel(&c->timers, &j->timer);
    cron_free(j->cron);
    free(j->cron_def);
    free(j->data);
    free(j);
}

core_status_t core_job_delete(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t len)
{
    now = core_clock(c, now);
    if (!strmap_get(&ch->jobs, name, len))
        return CORE_NOT_FOUND;
    if (job_log(c, CORE_REC_JOB_DEL, ch, now, name, len) != 0)
        return CORE_IO;
    job_t *j = strmap_del(&ch->jobs, name, len);
    ch->st.jobs--;
    job_free(c, j);
    return CORE_OK;
}
