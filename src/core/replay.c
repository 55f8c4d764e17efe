/*
 * replay.c -- the core's side of the log: applying records read back,
 * and describing the whole state as records for a log rewrite.
 *
 * Replay runs each record through the same apply functions as live
 * requests, after a tick at the record's time, so delayed events fall due,
 * locks and ttls run out in the same order as they did live.
 */
#include <stdlib.h>
#include <string.h>
#include "core_int.h"
#include "base/util.h"

void core_set_journal(core_t *c, const core_journal_t *j)
{
    if (j)
        c->journal = *j;
    else
        memset(&c->journal, 0, sizeof(c->journal));
}

void core_replay_begin(core_t *c)
{
    c->replaying = 1;
}

static void reset_totals(strmap_entry_t *e, void *arg)
{
    (void)arg;
    channel_t *ch = e->value;
    ch->st.published = ch->st.deleted = ch->st.expired = 0;
    ch->st.lock_expired = ch->st.job_fires = 0;
    ch->st.dead_lettered = ch->st.dl_failed = 0;
}

void core_catch_up_add(core_t *c, job_t *j)
{
    if (c->n_catch_up == c->catch_up_cap) {
        c->catch_up_cap = c->catch_up_cap ? 2 * c->catch_up_cap : 16;
        c->catch_up = xrealloc(c->catch_up, c->catch_up_cap * sizeof(*c->catch_up));
    }
    c->catch_up[c->n_catch_up++] = j;
}

void core_replay_end(core_t *c, ntime_t now)
{
    core_replay_flush(c);
    /* Still replaying: jobs whose times passed while down skip them, but
     * those with missed ONCE and such a time within their window are
     * noted, and fire at the first tick, when the log takes records. */
    c->replay_ending = 1;
    core_tick(c, now);
    c->replay_ending = 0;
    c->replaying = 0;
    for (size_t i = 0; i < c->n_catch_up; i++)
        job_catch_up(c, c->catch_up[i], c->now);
    c->n_catch_up = 0;
    strmap_each(&c->channels, reset_totals, NULL);
    core_counters_reset(c);
}

core_pub_t rec_pub(const core_rec_t *r)
{
    core_pub_t p = {.data = r->data, .len = r->data_len, .publish_at = r->at, .ttl_ns = r->ttl_ns,
                    .priority = r->attr & CORE_ATTR_PRIO, .json = !!(r->attr & CORE_ATTR_JSON),
                    .key = r->key, .key_len = r->key_len};
    return p;
}

/* A move of e (DEAD_LETTER, REDRIVE): the target is copied first, as it
 * may name the event's own dead_lettered_from. */
static core_status_t apply_move(core_t *c, event_t *e, const core_rec_t *r)
{
    char to[256];
    if (r->name_len > sizeof(to) || (r->type == CORE_REC_REDRIVE && !r->name_len) ||
        (r->type == CORE_REC_REDRIVE && event_state(e) != EVENT_READY) || event_state(e) == EVENT_SCHEDULED)
        return CORE_INVALID;
    memcpy(to, r->name, r->name_len);
    dl_move_apply(c, e, to, r->name_len, r->now, r->type == CORE_REC_REDRIVE);
    return CORE_OK;
}

static core_status_t apply_event_rec(core_t *c, channel_t *ch, const core_rec_t *r)
{
    event_t *e = event_lookup(c, ch, r->id);
    if (!e)
        return CORE_INVALID;
    switch (r->type) {
    case CORE_REC_LOCK:
        if (event_state(e) != EVENT_READY)
            return CORE_INVALID;
        event_lock_apply(c, e, r->at, r->token);
        break;
    case CORE_REC_UNLOCK:
        if (event_state(e) == EVENT_SCHEDULED)
            return CORE_INVALID;
        event_unlock_apply(c, e, r->at);
        break;
    case CORE_REC_DEAD_LETTER:
    case CORE_REC_REDRIVE:
        return apply_move(c, e, r);
    case CORE_REC_EXTEND:
        if (event_state(e) != EVENT_LOCKED)
            return CORE_INVALID;
        event_extend_apply(c, e, r->at);
        break;
    default: /* CORE_REC_DELETE */
        event_delete_apply(c, e);
        break;
    }
    return CORE_OK;
}

/* A job's definition with its state, from a SNAP_JOB. */
static core_status_t restore_job(core_t *c, channel_t *ch, const core_rec_t *r, const job_def_t *d)
{
    ntime_t defined = r->n_nums > 3 && r->nums[3] ? (ntime_t)r->nums[3] : r->at;
    char err[256];
    /* The zone comes from the definition or the server's zone now: a job
     * written without a prefix follows the server's TZ of this run. */
    cron_t *cron = cron_parse(r->cron, r->cron_len, defined, c->default_tz, err, sizeof(err));
    if (!cron)
        return CORE_INVALID;
    job_t *j = job_create(c, ch, r->name, r->name_len, d, cron, r->at, defined, r->now);
    j->last_run_at = r->n_nums > 4 ? (ntime_t)r->nums[4] : 0;
    j->last_event = r->id;
    j->runs = r->n_nums > 1 ? r->nums[1] : 0;
    j->skipped = r->n_nums > 2 ? r->nums[2] : 0;
    if (r->state & CORE_JOB_F_PAUSED)
        job_set_paused(c, j, 1, r->now);
    return CORE_OK;
}

/* JOB_ADD, SNAP_JOB, JOB_REPLACE: a definition. */
static core_status_t apply_job_def(core_t *c, channel_t *ch, const core_rec_t *r)
{
    job_def_t d;
    job_t *j = strmap_get(&ch->jobs, r->name, r->name_len);
    if (job_def_from_rec(&d, r) != 0 || (j != NULL) != (r->type == CORE_REC_JOB_REPLACE))
        return CORE_INVALID;
    if (r->type == CORE_REC_SNAP_JOB)
        return restore_job(c, ch, r, &d);
    char err[256];
    cron_t *cron = cron_parse(r->cron, r->cron_len, r->now, c->default_tz, err, sizeof(err));
    if (!cron)
        return CORE_INVALID;
    if (j)
        job_define(c, j, &d, cron, r->now, r->now);
    else
        job_create(c, ch, r->name, r->name_len, &d, cron, r->now, r->now, r->now);
    return CORE_OK;
}

static core_status_t apply_job_rec(core_t *c, channel_t *ch, const core_rec_t *r)
{
    if (r->type == CORE_REC_JOB_ADD || r->type == CORE_REC_SNAP_JOB || r->type == CORE_REC_JOB_REPLACE)
        return apply_job_def(c, ch, r);
    if (r->type == CORE_REC_JOB_DEL)
        return core_job_delete(c, ch, r->now, r->name, r->name_len) == CORE_OK ? CORE_OK : CORE_INVALID;
    job_t *j = strmap_get(&ch->jobs, r->name, r->name_len);
    if (!j)
        return CORE_INVALID;
    if (r->type == CORE_REC_JOB_TRIGGER) {
        if (event_lookup(c, ch, r->id) || r->ttl_ns <= 0)
            return CORE_INVALID;
        job_apply_run(c, j, r);
        return CORE_OK;
    }
    /* JOB_PAUSE, JOB_RESUME: each is written only when it changes the job. */
    int pause = r->type == CORE_REC_JOB_PAUSE;
    if (j->paused == pause)
        return CORE_INVALID;
    job_set_paused(c, j, pause, r->now);
    return CORE_OK;
}

/* ---- job fires ----
 *
 * A job's fire is created inside the tick, when the job's timer comes up,
 * so it lands in the queue where it did live (say, before a delayed event
 * due at the same instant). Fires logged in one tick share its `now` and
 * follow each other in the log; they are held back until the group ends
 * and replayed in one tick, since a tick that claimed only the first would
 * move the others' jobs on and let events due later in that tick get
 * ahead of them. A fire no timer claims is created after the tick. A
 * JOB_SKIP (a fire that published nothing) is held and claimed the same
 * way, so it keeps the fires around it in their places. */

static int same_job(const core_rec_t *r, const job_t *j)
{
    return r->name_len == j->name_len && memcmp(r->name, j->name, j->name_len) == 0 &&
           r->channel_len == j->channel->name_len && memcmp(r->channel, j->channel->name, r->channel_len) == 0;
}

const core_rec_t *replay_claim_fire(core_t *c, const job_t *j)
{
    /* Jobs come up in the order they fired live: the next unclaimed fire
     * is nearly always the one. */
    for (size_t i = c->fire_next; i < c->nfires; i++) {
        if (c->fire_claimed[i] || !same_job(&c->fires[i], j))
            continue;
        c->fire_claimed[i] = 1;
        while (c->fire_next < c->nfires && c->fire_claimed[c->fire_next])
            c->fire_next++;
        return &c->fires[i];
    }
    return NULL;
}

void core_replay_flush(core_t *c)
{
    if (c->nfires == 0)
        return;
    core_tick(c, c->fires[0].now);
    for (size_t i = c->fire_next; i < c->nfires; i++) {
        const core_rec_t *r = &c->fires[i];
        if (c->fire_claimed[i])
            continue;
        channel_t *ch = core_channel(c, r->channel, r->channel_len);
        job_t *j = strmap_get(&ch->jobs, r->name, r->name_len);
        if (j) {
            job_apply_run(c, j, r);
        } else if (r->type == CORE_REC_PUBLISH) {
            id_gen_observe(&c->idgen, r->id);
            core_pub_t p = rec_pub(r);
            event_create(c, ch, r->now, r->id, &p);
        }
    }
    c->nfires = c->fire_next = 0;
}

/* The id of the last fire held (not a skip), or NULL. */
static const eid_t *last_held_id(const core_t *c)
{
    for (size_t i = c->nfires; i-- > 0;)
        if (c->fires[i].type == CORE_REC_PUBLISH)
            return &c->fires[i].id;
    return NULL;
}

static core_status_t hold_fire(core_t *c, const core_rec_t *r)
{
    if (c->nfires > 0 && r->now != c->fires[0].now)
        core_replay_flush(c);
    channel_t *ch = core_channel(c, r->channel, r->channel_len);
    /* Ids grow within a history, so a held fire's id must be above the
     * one before (and not live) to be new. */
    const eid_t *prev = last_held_id(c);
    if (r->type == CORE_REC_PUBLISH &&
        (event_lookup(c, ch, r->id) || r->ttl_ns <= 0 || (prev && id_cmp(r->id, *prev) <= 0)))
        return CORE_INVALID;
    if (c->nfires == c->fires_cap) {
        c->fires_cap = c->fires_cap ? 2 * c->fires_cap : 16;
        c->fires = xrealloc(c->fires, c->fires_cap * sizeof(*c->fires));
        c->fire_claimed = xrealloc(c->fire_claimed, c->fires_cap);
    }
    c->fire_claimed[c->nfires] = 0;
    c->fires[c->nfires++] = *r;
    return CORE_OK;
}

static core_status_t apply_settings(core_t *c, channel_t *ch, const core_rec_t *r)
{
    uint64_t max = r->n_nums ? r->nums[0] : 0;
    channel_settings_t s = {.max_deliveries = (uint32_t)max, .retry_delay_ns = r->ttl_ns,
                            .dlq = (char *)r->name, .dlq_len = r->name_len};
    if (r->ttl_ns < 0 || r->name_len > 255 || max > UINT32_MAX)
        return CORE_INVALID;
    settings_apply(c, ch, &s);
    return CORE_OK;
}

core_status_t core_apply(core_t *c, const core_rec_t *r)
{
    if ((r->type == CORE_REC_PUBLISH && r->name_len > 0) || r->type == CORE_REC_JOB_SKIP)
        return hold_fire(c, r);
    core_replay_flush(c);
    core_tick(c, r->now);
    if (r->type == CORE_REC_IDGEN) {
        id_gen_observe(&c->idgen, r->id);
        return CORE_OK;
    }
    channel_t *ch = core_channel(c, r->channel, r->channel_len);
    switch (r->type) {
    case CORE_REC_PUBLISH:
        if (event_lookup(c, ch, r->id) || r->ttl_ns <= 0)
            return CORE_INVALID;
        id_gen_observe(&c->idgen, r->id);
        core_pub_t p = rec_pub(r);
        event_create(c, ch, r->now, r->id, &p);
        return CORE_OK;
    case CORE_REC_SNAP_EVENT:
        if (event_lookup(c, ch, r->id) || r->state > EVENT_LOCKED ||
            (r->lives_until <= r->at && !(r->attr & CORE_ATTR_RETURNING)))
            return CORE_INVALID;
        event_restore(c, ch, r);
        return CORE_OK;
    case CORE_REC_LOCK:
    case CORE_REC_UNLOCK:
    case CORE_REC_EXTEND:
    case CORE_REC_DELETE:
    case CORE_REC_DEAD_LETTER:
    case CORE_REC_REDRIVE:
        return apply_event_rec(c, ch, r);
    case CORE_REC_SETTINGS:
        return apply_settings(c, ch, r);
    case CORE_REC_PURGE:
        channel_clear(c, ch);
        return CORE_OK;
    case CORE_REC_CHANNEL_DEL:
        channel_apply_delete(c, ch);
        return CORE_OK;
    case CORE_REC_JOB_ADD:
    case CORE_REC_JOB_DEL:
    case CORE_REC_SNAP_JOB:
    case CORE_REC_JOB_REPLACE:
    case CORE_REC_JOB_PAUSE:
    case CORE_REC_JOB_RESUME:
    case CORE_REC_JOB_TRIGGER:
        return apply_job_rec(c, ch, r);
    default:
        return CORE_INVALID;
    }
}

int core_log_probe(core_t *c, ntime_t now)
{
    /* A page of padding: on a nearly full disk a few bytes may fit where
     * a real change would not, and the probe should not claim more. */
    static const char pad[4096];
    core_rec_t r = {.type = CORE_REC_IDGEN, .now = now, .id = c->idgen.last, .data = pad,
                    .data_len = sizeof(pad)};
    journal_add(c, &r);
    return journal_commit(c);
}

/* ---- snapshot ---- */

/* A visible event and its visibility order, for sorting. */
typedef struct vsorted {
    uint64_t vseq;
    event_t *e;
} vsorted_t;

static int by_vseq(const void *a, const void *b)
{
    uint64_t x = ((const vsorted_t *)a)->vseq, y = ((const vsorted_t *)b)->vseq;
    return (x > y) - (x < y);
}

static int by_id(const void *a, const void *b)
{
    return id_cmp(event_id(*(event_t *const *)a), event_id(*(event_t *const *)b));
}

struct snap_jobs {
    const core_journal_t *j;
    ntime_t now;
    uint64_t n;
};

static void snap_channel_jobs(strmap_entry_t *e, void *arg)
{
    struct snap_jobs *s = arg;
    channel_t *ch = e->value;
    job_t **jobs;
    size_t n = core_jobs_sorted(ch, &jobs);
    for (size_t i = 0; i < n; i++) {
        job_t *jb = jobs[i];
        job_def_t d = {.data_json = jb->data_json, .priority = jb->priority, .overlap = jb->overlap,
                       .missed = jb->missed};
        core_rec_t r = {.type = CORE_REC_SNAP_JOB, .now = s->now, .channel = ch->name,
                        .channel_len = ch->name_len, .name = jb->name, .name_len = jb->name_len,
                        .cron = jb->cron_def, .cron_len = (uint32_t)strlen(jb->cron_def),
                        .data = jb->data, .data_len = jb->data_len, .ttl_ns = jb->ttl_ns,
                        .at = jb->created_at, .id = jb->last_event, .n_nums = 5,
                        .state = (uint8_t)(job_def_flags(&d) | (jb->paused ? CORE_JOB_F_PAUSED : 0))};
        r.nums[0] = (uint64_t)jb->missed_window_ns;
        r.nums[1] = jb->runs;
        r.nums[2] = jb->skipped;
        r.nums[3] = (uint64_t)jb->defined_at;
        r.nums[4] = (uint64_t)jb->last_run_at;
        s->j->add(s->j->arg, &r);
        s->n++;
    }
    free(jobs);
    const channel_settings_t *set = &ch->set;
    if (set->max_deliveries || set->retry_delay_ns || set->dlq_len) {
        core_rec_t r = {.type = CORE_REC_SETTINGS, .now = s->now, .channel = ch->name,
                        .channel_len = ch->name_len, .n_nums = set->max_deliveries ? 1 : 0,
                        .nums = {set->max_deliveries},
                        .ttl_ns = set->retry_delay_ns, .name = set->dlq, .name_len = set->dlq_len};
        s->j->add(s->j->arg, &r);
        s->n++;
    }
}

/* A snapshot record of e. */
static void snap_event(const core_t *c, const event_t *e, ntime_t now, core_rec_t *r)
{
    const channel_t *ch = event_channel(c, e);
    size_t klen, flen;
    const char *key = event_key(e, &klen), *from = event_dead_lettered_from(e, &flen);
    *r = (core_rec_t){.type = CORE_REC_SNAP_EVENT, .state = (uint8_t)event_state(e), .now = now,
                      .channel = ch->name, .channel_len = ch->name_len, .id = event_id(e),
                      .at = e->published_at, .lives_until = e->lives_until,
                      .locked_until = event_locked_until(c, e), .token = event_lock_token(c, e),
                      .data = event_data(e), .data_len = e->data_len,
                      .attr = (uint8_t)(e->priority | (e->json ? CORE_ATTR_JSON : 0) |
                                        (e->returning ? CORE_ATTR_RETURNING : 0)),
                      .n_nums = e->deliveries ? 1 : 0, .nums = {e->deliveries}, .key = key, .key_len = (uint32_t)klen,
                      .name = from, .name_len = (uint32_t)flen};
}

uint64_t core_snapshot(core_t *c, ntime_t now, const core_journal_t *j)
{
    core_rec_t r = {.type = CORE_REC_IDGEN, .now = now, .id = c->idgen.last};
    j->add(j->arg, &r);
    struct snap_jobs sj = {j, now, 1};
    strmap_each(&c->channels, snap_channel_jobs, &sj);

    /* Visible events in visibility order (vseq is server-wide), then
     * scheduled ones in creation order, which is id order. */
    size_t n = c->counters.events, nv = 0, ns = 0;
    event_t **all = xmalloc((n + 1) * sizeof(*all));
    ASSERT(event_collect(c, all) == n);
    vsorted_t *vis = xmalloc((n + 1) * sizeof(*vis));
    for (size_t i = 0; i < n; i++) {
        if (event_state(all[i]) == EVENT_SCHEDULED)
            all[ns++] = all[i];
        else
            vis[nv++] = (vsorted_t){event_vseq(c, all[i]), all[i]};
    }
    ASSERT(nv + ns == n);
    qsort(vis, nv, sizeof(*vis), by_vseq);
    qsort(all, ns, sizeof(*all), by_id);
    for (size_t i = 0; i < n; i++) {
        event_t *e = i < nv ? vis[i].e : all[i - nv];
        core_rec_t er;
        snap_event(c, e, now, &er);
        j->add(j->arg, &er);
    }
    free(vis);
    free(all);
    return sj.n + n;
}
