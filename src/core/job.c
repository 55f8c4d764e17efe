/*
 * job.c -- recurring jobs: a unique name per channel, a cron definition,
 * and one immediate event published at each fire time.
 *
 * A job's one pending wake-up is its next fire time. When it fires it
 * publishes, then asks the cron for the first time strictly after `now`,
 * so a late loop turn skips the times it missed instead of firing a burst,
 * and a time is never fired twice.
 */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>
#include "base/util.h"

static void job_schedule(core_t *c, job_t *j, ntime_t after)
{
    j->next_at = cron_next(j->cron, after);
    if (j->next_at == NTIME_MAX)
        timers_cancel(&c->timers, &j->timer);
    else
        timers_set(&c->timers, &j->timer, j->next_at, CORE_TIMER_JOB);
}

/* Would one more event pass a limit? Then the fire is skipped, like a
 * request past the limit: nothing stored is evicted to make room. */
static int job_full(const core_t *c, const channel_t *ch)
{
    return (c->max_events && c->counters.events >= c->max_events) ||
           (c->max_channel_events && ch->st.ready + ch->st.scheduled + ch->st.locked >= c->max_channel_events);
}

void job_fire(core_t *c, job_t *j, ntime_t now)
{
    /* While replaying, the fires that happened are PUBLISH records of
     * their own; a job only keeps its schedule. */
    const core_rec_t *rf = c->replaying ? replay_claim_fire(c, j) : NULL;
    if (rf) {
        /* Replay: this is the fire the record describes, at the same point
         * of the tick as it happened live. */
        event_create(c, j->channel, now, rf->id, rf->data, rf->data_len, rf->at, rf->ttl_ns);
        id_gen_observe(&c->idgen, rf->id);
    } else if (!c->replaying && job_full(c, j->channel)) {
        c->counters.job_fires_skipped++;
    } else if (!c->replaying) {
        core_rec_t r;
        eid_t id = id_gen_next(&c->idgen, now);
        event_rec_publish(&r, j->channel, now, id, j->data, j->data_len, now, j->ttl_ns);
        r.name = j->name; /* marks a job's fire, for replay */
        r.name_len = j->name_len;
        journal_add(c, &r);
        /* A fire that cannot be logged is skipped, like one missed while
         * the server was down; the next one is tried as usual. */
        if (journal_commit(c) == 0) {
            event_create(c, j->channel, now, id, j->data, j->data_len, now, j->ttl_ns);
            j->channel->st.job_fires++;
            c->counters.job_fires++;
            hist_observe(&c->counters.lateness, now - j->next_at);
        }
    }
    job_schedule(c, j, now);
}

job_t *job_create(core_t *c, channel_t *ch, const char *name, size_t name_len, const char *cron_def,
                  size_t cron_len, cron_t *cron, const char *data, size_t data_len, int64_t ttl_ns,
                  ntime_t created_at, ntime_t now)
{
    job_t *j = xcalloc(1, sizeof(*j));
    j->channel = ch;
    j->cron = cron;
    j->cron_def = xstrndup(cron_def, cron_len);
    j->data = xstrndup(data, data_len);
    j->data_len = (uint32_t)data_len;
    j->ttl_ns = ttl_ns;
    j->created_at = created_at;
    strmap_entry_t *e = strmap_put(&ch->jobs, name, name_len, j);
    j->name = e->key;
    j->name_len = (uint32_t)name_len;
    ch->st.jobs++;
    job_schedule(c, j, now);
    return j;
}

core_status_t core_job_add(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t name_len,
                           const char *cron_def, size_t cron_len, const char *data, size_t data_len,
                           int64_t ttl_ns, job_t **out, char *err, size_t errlen)
{
    now = core_clock(c, now);
    core_tick(c, now);
    if (strmap_get(&ch->jobs, name, name_len)) {
        snprintf(err, errlen, "a job with this name already exists in this channel");
        return CORE_CONFLICT;
    }
    cron_t *cron = cron_parse(cron_def, cron_len, now, c->default_tz, err, errlen);
    if (!cron)
        return CORE_INVALID;
    core_rec_t r = {.type = CORE_REC_JOB_ADD, .now = now, .channel = ch->name,
                    .channel_len = ch->name_len, .name = name, .name_len = (uint32_t)name_len,
                    .cron = cron_def, .cron_len = (uint32_t)cron_len, .data = data,
                    .data_len = (uint32_t)data_len, .ttl_ns = ttl_ns};
    journal_add(c, &r);
    if (journal_commit(c) != 0) {
        cron_free(cron);
        snprintf(err, errlen, "the log could not be written");
        return CORE_IO;
    }
    *out = job_create(c, ch, name, name_len, cron_def, cron_len, cron, data, data_len, ttl_ns, now, now);
    return CORE_OK;
}

job_t *core_job_get(core_t *c, channel_t *ch, const char *name, size_t len)
{
    (void)c;
    return strmap_get(&ch->jobs, name, len);
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
    core_rec_t r = {.type = CORE_REC_JOB_DEL, .now = now, .channel = ch->name,
                    .channel_len = ch->name_len, .name = name, .name_len = (uint32_t)len};
    journal_add(c, &r);
    if (journal_commit(c) != 0)
        return CORE_IO;
    job_t *j = strmap_del(&ch->jobs, name, len);
    ch->st.jobs--;
    job_free(c, j);
    return CORE_OK;
}
