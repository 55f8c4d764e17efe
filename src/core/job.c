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
#include "util.h"

static void job_schedule(core_t *c, job_t *j, ntime_t after)
{
    j->next_at = cron_next(j->cron, after);
    if (j->next_at == NTIME_MAX)
        timers_cancel(&c->timers, &j->timer);
    else
        timers_set(&c->timers, &j->timer, j->next_at);
}

void job_fire(core_t *c, job_t *j, ntime_t now)
{
    event_publish(c, j->channel, now, j->data, j->data_len, now, j->ttl_ns);
    j->channel->st.job_fires++;
    c->counters.job_fires++;
    job_schedule(c, j, now);
}

core_status_t core_job_add(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t name_len,
                           const char *cron_def, size_t cron_len, const char *data, size_t data_len,
                           int64_t ttl_ns, job_t **out, char *err, size_t errlen)
{
    core_tick(c, now);
    if (strmap_get(&ch->jobs, name, name_len)) {
        snprintf(err, errlen, "a job with this name already exists in this channel");
        return CORE_CONFLICT;
    }
    cron_t *cron = cron_parse(cron_def, cron_len, now, c->default_tz, err, errlen);
    if (!cron)
        return CORE_INVALID;
    job_t *j = xcalloc(1, sizeof(*j));
    j->timer.kind = CORE_TIMER_JOB;
    j->channel = ch;
    j->cron = cron;
    j->cron_def = xstrndup(cron_def, cron_len);
    j->data = xstrndup(data, data_len);
    j->data_len = (uint32_t)data_len;
    j->ttl_ns = ttl_ns;
    j->created_at = now;
    strmap_entry_t *e = strmap_put(&ch->jobs, name, name_len, j);
    j->name = e->key;
    j->name_len = (uint32_t)name_len;
    ch->st.jobs++;
    job_schedule(c, j, now);
    *out = j;
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

core_status_t core_job_delete(core_t *c, channel_t *ch, const char *name, size_t len)
{
    job_t *j = strmap_del(&ch->jobs, name, len);
    if (!j)
        return CORE_NOT_FOUND;
    ch->st.jobs--;
    job_free(c, j);
    return CORE_OK;
}
