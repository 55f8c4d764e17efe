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

static void jobs_free_cb(strmap_entry_t *e, void *arg)
{
    core_t *c = arg;
    channel_t *ch = e->value;
    job_t **jobs;
    size_t n = core_jobs_sorted(ch, &jobs);
    for (size_t i = 0; i < n; i++)
        job_free(c, jobs[i]);
    free(jobs);
    strmap_free(&ch->jobs);
}

static void channel_free_cb(strmap_entry_t *e, void *arg)
{
    (void)arg;
    channel_t *ch = e->value;
    vmem_free(ch->ready, (size_t)ch->ready_cap * sizeof(*ch->ready));
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

channel_t *core_channel(core_t *c, const char *name, size_t len)
{
    channel_t *ch = strmap_get(&c->channels, name, len);
    if (ch)
        return ch;
    ch = xcalloc(1, sizeof(*ch));
    strmap_init(&ch->jobs);
    strmap_entry_t *e = strmap_put(&c->channels, name, len, ch);
    ch->name = e->key;
    ch->name_len = (uint32_t)len;
    ch->events = &c->events;
    ch->leases = &c->leases;
    return ch;
}

void core_channel_drop(core_t *c, channel_t *ch)
{
    ASSERT(!ch->vhead && !ch->ready_len && !ch->xhead && !ch->st.scheduled && !ch->st.jobs &&
           !ch->avail_pending);
    /* The name lives in the registry entry: free the channel's own parts
     * first, then the entry (strmap_del reads the key before freeing it). */
    strmap_free(&ch->jobs);
    vmem_free(ch->ready, (size_t)ch->ready_cap * sizeof(*ch->ready));
    strmap_del(&c->channels, ch->name, ch->name_len);
    free(ch);
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
