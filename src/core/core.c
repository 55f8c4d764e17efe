/*
 * core.c -- the state as a whole: channel registry, the tick that runs
 * every due deadline, the "became available" list, lease tokens.
 */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/util.h"
#include "base/vmem.h"

static const int64_t lateness_bounds[] = {
    500000, 1000000, 2000000, 5000000, 10000000, 50000000, 100000000, 1000000000,
};

void core_counters_reset(core_t *c)
{
    uint64_t events = c->counters.events;
    memset(&c->counters, 0, sizeof(c->counters));
    c->counters.events = events;
    hist_init(&c->counters.lateness, lateness_bounds, sizeof(lateness_bounds) / sizeof(lateness_bounds[0]));
}

static void core_init(core_t *c, const tz_t *default_tz)
{
    timers_init(&c->timers);
    strmap_init(&c->channels);
    slab_init(&c->events, sizeof(event_t));
    slab_init(&c->leases, sizeof(lease_t));
    ids_init(c);
    c->next_vseq = 1;
    /* Tokens only fence stale workers, they are not secrets, but they should
     * not repeat across restarts: seed from the clock and the address. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->token_state = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)c;
    c->default_tz = default_tz;
    core_counters_reset(c);
}

core_t *core_new(const tz_t *default_tz)
{
    core_t *c = xcalloc(1, sizeof(*c));
    core_init(c, default_tz);
    return c;
}

/* Frees the jobs of ch and its map of them (left empty: freeing it
 * again, as channel_destroy does, does nothing). */
static void channel_jobs_free(core_t *c, channel_t *ch)
{
    job_t **jobs;
    size_t n = core_jobs_sorted(ch, &jobs);
    for (size_t i = 0; i < n; i++)
        job_free(c, jobs[i]);
    free(jobs);
    strmap_free(&ch->jobs);
    ch->st.jobs = 0;
}

static void jobs_free_cb(strmap_entry_t *e, void *arg)
{
    channel_jobs_free(arg, e->value);
}

/* Frees what a channel owns besides its events and jobs. */
static void channel_free_parts(channel_t *ch)
{
    strmap_free(&ch->keys);
    free(ch->set.dlq);
    for (int p = 0; p < CORE_PRIO_LEVELS; p++)
        vmem_free(ch->ready[p].e, (size_t)ch->ready[p].cap * sizeof(*ch->ready[p].e));
}

static void channel_free_cb(strmap_entry_t *e, void *arg)
{
    (void)arg;
    channel_t *ch = e->value;
    channel_free_parts(ch);
    free(ch);
}

static void core_fini(core_t *c)
{
    /* Jobs first: cancelling their timers moves heap entries, which must
     * still point at live events. */
    strmap_each(&c->channels, jobs_free_cb, c);
    event_free_all(c);
    strmap_each(&c->channels, channel_free_cb, c);
    strmap_free(&c->channels);
    timers_free(&c->timers);
    ids_free(c);
    free(c->fires);
    free(c->fire_claimed);
    free(c->catch_up);
    free(c->chans);
    free(c->chans_free);
    free(c->dl_pending);
}

void core_free(core_t *c)
{
    if (!c)
        return;
    core_fini(c);
    free(c);
}

void core_replay_reset(core_t *c)
{
    const tz_t *tz = c->default_tz;
    core_fini(c);
    memset(c, 0, sizeof(*c));
    core_init(c, tz);
    c->replaying = 1;
}

void core_tick(core_t *c, ntime_t now)
{
    now = core_clock(c, now);
    tnode_t *n;
    uint8_t kind;
    while ((n = timers_pop_due(&c->timers, now, &kind)) != NULL) {
        if (kind == CORE_TIMER_EVENT)
            event_fire(c, CONTAINER_OF(n, event_t, timer), now);
        else if (kind == CORE_TIMER_EXPIRY)
            event_expire_head(c, CONTAINER_OF(n, channel_t, xtimer), now);
        else if (kind == CORE_TIMER_JOB)
            job_fire(c, CONTAINER_OF(n, job_t, timer), now);
        else
            c->timer_fn(n, now, c->timer_arg);
    }
    if (c->n_dl_pending && !c->replaying)
        dl_settle(c, now);
}

void core_set_limits(core_t *c, size_t max_events, size_t max_channel_events)
{
    c->max_events = max_events;
    c->max_channel_events = max_channel_events;
}

void core_set_timer_fn(core_t *c, core_timer_fn fn, void *arg)
{
    c->timer_fn = fn;
    c->timer_arg = arg;
}

void core_timer_set(core_t *c, tnode_t *node, ntime_t at)
{
    ASSERT(c->timer_fn != NULL);
    timers_set(&c->timers, node, at, CORE_TIMER_USER);
}

void core_timer_cancel(core_t *c, tnode_t *node)
{
    timers_cancel(&c->timers, node);
}

ntime_t core_now(const core_t *c)
{
    return c->now;
}

int32_t core_wait_ms(core_t *c, ntime_t now, int32_t max_ms)
{
    return timers_wait_ms(&c->timers, now, max_ms);
}

ntime_t core_next_at(core_t *c, int64_t window_ns)
{
    return timers_wake_at(&c->timers, window_ns);
}

const core_counters_t *core_counters(const core_t *c)
{
    return &c->counters;
}

channel_t *core_channel_find(core_t *c, const char *name, size_t len)
{
    return strmap_get(&c->channels, name, len);
}

size_t core_channel_count(const core_t *c)
{
    return c->channels.count;
}

/* Gives ch a slot in the channel table (events name it by that). */
static void chans_add(core_t *c, channel_t *ch)
{
    if (c->nchans_free) {
        ch->index = c->chans_free[--c->nchans_free];
    } else {
        if (c->nchans == c->chans_cap) {
            c->chans_cap = c->chans_cap ? 2 * c->chans_cap : 16;
            c->chans = xrealloc(c->chans, c->chans_cap * sizeof(*c->chans));
            c->chans_free = xrealloc(c->chans_free, c->chans_cap * sizeof(*c->chans_free));
        }
        ch->index = c->nchans++;
    }
    c->chans[ch->index] = ch;
}

/* Frees ch, which holds no events or jobs, and its name. */
static void channel_destroy(core_t *c, channel_t *ch)
{
    c->chans[ch->index] = NULL;
    c->chans_free[c->nchans_free++] = ch->index;
    channel_free_parts(ch);
    strmap_free(&ch->jobs);
    /* The name lives in the registry entry: strmap_del reads the key
     * before freeing it. */
    strmap_del(&c->channels, ch->name, ch->name_len);
    free(ch);
}

channel_t *core_channel(core_t *c, const char *name, size_t len)
{
    channel_t *ch = strmap_get(&c->channels, name, len);
    if (ch)
        return ch;
    ch = xcalloc(1, sizeof(*ch));
    strmap_init(&ch->jobs);
    strmap_init(&ch->keys);
    chans_add(c, ch);
    strmap_entry_t *e = strmap_put(&c->channels, name, len, ch);
    ch->name = e->key;
    ch->name_len = (uint32_t)len;
    ch->events = &c->events;
    ch->leases = &c->leases;
    return ch;
}

void core_channel_drop(core_t *c, channel_t *ch)
{
    ASSERT(!ch->vhead && !ch->ready_prios && !ch->xhead && !ch->st.scheduled && !ch->st.jobs &&
           !ch->avail_pending);
    channel_destroy(c, ch);
}

uint64_t channel_clear(core_t *c, channel_t *ch)
{
    uint64_t n = 0;
    for (; ch->vhead; n++)
        event_remove(c, channel_first(ch));
    for (; ch->shead; n++)
        event_remove(c, (event_t *)slab_ptr(&c->events, ch->shead));
    return n;
}

core_status_t core_purge(core_t *c, channel_t *ch, ntime_t now, uint64_t *n)
{
    now = core_clock(c, now);
    core_tick(c, now);
    core_rec_t r = {.type = CORE_REC_PURGE, .now = now, .channel = ch->name, .channel_len = ch->name_len};
    journal_add(c, &r);
    if (journal_commit(c) != 0)
        return CORE_IO;
    *n = channel_clear(c, ch);
    ch->st.deleted += *n;
    c->counters.deleted += *n;
    return CORE_OK;
}

/* Takes ch off the "became available" list. */
static void avail_unlink(core_t *c, channel_t *ch)
{
    if (!ch->avail_pending)
        return;
    channel_t **p = &c->avail_head, *prev = NULL;
    while (*p != ch) {
        prev = *p;
        p = &(*p)->avail_next;
    }
    *p = ch->avail_next;
    if (c->avail_tail == ch)
        c->avail_tail = prev;
    ch->avail_pending = 0;
}

void channel_apply_delete(core_t *c, channel_t *ch)
{
    channel_clear(c, ch);
    channel_jobs_free(c, ch);
    avail_unlink(c, ch);
    channel_destroy(c, ch);
}

core_status_t core_channel_delete(core_t *c, channel_t *ch, ntime_t now)
{
    now = core_clock(c, now);
    core_tick(c, now);
    core_rec_t r = {.type = CORE_REC_CHANNEL_DEL, .now = now, .channel = ch->name,
                    .channel_len = ch->name_len};
    journal_add(c, &r);
    if (journal_commit(c) != 0)
        return CORE_IO;
    channel_apply_delete(c, ch);
    return CORE_OK;
}

/* Bytewise order of two names, a shorter prefix first. */
static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    return r ? r : (alen > blen) - (alen < blen);
}

static int channel_cmp(const void *a, const void *b)
{
    const channel_t *x = *(channel_t *const *)a, *y = *(channel_t *const *)b;
    return name_cmp(x->name, x->name_len, y->name, y->name_len);
}

struct collect {
    void **items;
    size_t n;
};

static void collect_cb(strmap_entry_t *e, void *arg)
{
    struct collect *col = arg;
    col->items[col->n++] = e->value;
}

size_t core_channels_sorted(core_t *c, channel_t ***out)
{
    struct collect col = {xmalloc((c->channels.count + 1) * sizeof(void *)), 0};
    strmap_each(&c->channels, collect_cb, &col);
    qsort(col.items, col.n, sizeof(void *), channel_cmp);
    *out = (channel_t **)col.items;
    return col.n;
}

static int job_cmp(const void *a, const void *b)
{
    const job_t *x = *(job_t *const *)a, *y = *(job_t *const *)b;
    return name_cmp(x->name, x->name_len, y->name, y->name_len);
}

size_t core_jobs_sorted(channel_t *ch, job_t ***out)
{
    struct collect col = {xmalloc((ch->jobs.count + 1) * sizeof(void *)), 0};
    strmap_each(&ch->jobs, collect_cb, &col);
    qsort(col.items, col.n, sizeof(void *), job_cmp);
    *out = (job_t **)col.items;
    return col.n;
}

void core_mark_available(core_t *c, channel_t *ch)
{
    if (ch->avail_pending)
        return;
    ch->avail_pending = 1;
    ch->avail_next = NULL;
    if (c->avail_tail)
        c->avail_tail->avail_next = ch;
    else
        c->avail_head = ch;
    c->avail_tail = ch;
}

channel_t *core_next_available(core_t *c)
{
    channel_t *ch = c->avail_head;
    if (!ch)
        return NULL;
    c->avail_head = ch->avail_next;
    if (!c->avail_head)
        c->avail_tail = NULL;
    ch->avail_pending = 0;
    ch->avail_next = NULL;
    return ch;
}

uint64_t core_token_next(core_t *c)
{
    /* splitmix64: a full-period sequence with well-mixed outputs, never 0
     * in practice; 0 is skipped anyway so "no token" can be told apart. */
    uint64_t z;
    do {
        z = (c->token_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
    } while (z == 0);
    return z;
}
