/*
 * event.c -- the event lifecycle: publish, become visible, lock, unlock,
 * extend, delete, expire, acquire (see the states in core.h).
 *
 * Three borrowed indexes point at each event: the global id hash (every
 * live event), the channel's visible list (READY and LOCKED, in visibility
 * order) and the channel's ready heap (READY only, by vseq). Each has a
 * back-link in the event, so every change is O(1) or O(log n).
 */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>
#include "util.h"

/* ---- id hash ----
 *
 * The bucket of an id is a mix of its millisecond plus its counter, so ids
 * made one after another (a batch, a replay) land in neighbouring buckets:
 * inserting them walks memory in order instead of missing the cache once
 * per event. Ids of different milliseconds still scatter. */

static uint64_t id_bucket(eid_t id)
{
    uint64_t ms = id.hi >> 16, counter = (id.hi & 0xffff) << 32 | id.lo;
    return ms * 0x9e3779b97f4a7c15ULL + counter;
}

void ids_init(core_t *c)
{
    c->ids_mask = 1023;
    c->ids = xcalloc((size_t)c->ids_mask + 1, sizeof(*c->ids));
}

static void ids_grow(core_t *c)
{
    uint32_t nmask = c->ids_mask * 2 + 1;
    event_t **nb = xcalloc((size_t)nmask + 1, sizeof(*nb));
    for (uint32_t i = 0; i <= c->ids_mask; i++) {
        event_t *e = c->ids[i];
        while (e) {
            event_t *next = e->hnext;
            uint32_t b = (uint32_t)id_bucket(e->id) & nmask;
            e->hnext = nb[b];
            nb[b] = e;
            e = next;
        }
    }
    free(c->ids);
    c->ids = nb;
    c->ids_mask = nmask;
}

static event_t **ids_slot(core_t *c, eid_t id)
{
    event_t **p = &c->ids[id_bucket(id) & c->ids_mask];
    while (*p && id_cmp((*p)->id, id) != 0)
        p = &(*p)->hnext;
    return p;
}

static void ids_add(core_t *c, event_t *e)
{
    if (c->counters.events > c->ids_mask)
        ids_grow(c);
    event_t **slot = &c->ids[id_bucket(e->id) & c->ids_mask];
    e->hnext = *slot;
    *slot = e;
}

static void ids_del(core_t *c, event_t *e)
{
    event_t **p = ids_slot(c, e->id);
    ASSERT(*p == e);
    *p = e->hnext;
}

/* ---- ready heap: READY events of a channel, oldest visibility first ---- */

static void rplace(channel_t *ch, uint32_t i, event_t *e)
{
    ch->ready[i] = e;
    e->rindex = i + 1;
}

static void rsift_up(channel_t *ch, uint32_t i)
{
    event_t *e = ch->ready[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (ch->ready[parent]->vseq < e->vseq)
            break;
        rplace(ch, i, ch->ready[parent]);
        i = parent;
    }
    rplace(ch, i, e);
}

static void rsift_down(channel_t *ch, uint32_t i)
{
    event_t *e = ch->ready[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= ch->ready_len)
            break;
        if (child + 1 < ch->ready_len && ch->ready[child + 1]->vseq < ch->ready[child]->vseq)
            child++;
        if (e->vseq < ch->ready[child]->vseq)
            break;
        rplace(ch, i, ch->ready[child]);
        i = child;
    }
    rplace(ch, i, e);
}

static void ready_add(core_t *c, channel_t *ch, event_t *e)
{
    if (ch->ready_len == ch->ready_cap) {
        ch->ready_cap = ch->ready_cap ? ch->ready_cap * 2 : 16;
        ch->ready = xrealloc(ch->ready, ch->ready_cap * sizeof(*ch->ready));
    }
    rplace(ch, ch->ready_len++, e);
    rsift_up(ch, ch->ready_len - 1);
    e->state = EVENT_READY;
    ch->st.ready++;
    core_mark_available(c, ch);
}

static void ready_del(channel_t *ch, event_t *e)
{
    uint32_t i = e->rindex - 1;
    ASSERT(e->rindex && ch->ready[i] == e);
    e->rindex = 0;
    ch->st.ready--;
    event_t *last = ch->ready[--ch->ready_len];
    if (i == ch->ready_len)
        return;
    rplace(ch, i, last);
    if (i > 0 && last->vseq < ch->ready[(i - 1) / 2]->vseq)
        rsift_up(ch, i);
    else
        rsift_down(ch, i);
}

/* ---- lifecycle ---- */

/* The one pending wake-up for e's current state (core.h). */
static void reschedule(core_t *c, event_t *e)
{
    ntime_t at = e->lives_until;
    if (e->state == EVENT_SCHEDULED)
        at = e->published_at;
    else if (e->state == EVENT_LOCKED && e->locked_until < at)
        at = e->locked_until;
    timers_set(&c->timers, &e->timer, at);
}

static void make_visible(core_t *c, event_t *e)
{
    channel_t *ch = e->channel;
    e->vseq = c->next_vseq++;
    e->vprev = ch->vtail;
    e->vnext = NULL;
    if (ch->vtail)
        ch->vtail->vnext = e;
    else
        ch->vhead = e;
    ch->vtail = e;
    ch->st.published++;
    c->counters.published++;
    ready_add(c, ch, e);
}

/* Unlinks e from every index and frees it. */
static void event_remove(core_t *c, event_t *e)
{
    channel_t *ch = e->channel;
    timers_cancel(&c->timers, &e->timer);
    ids_del(c, e);
    if (e->state == EVENT_SCHEDULED) {
        ch->st.scheduled--;
    } else {
        if (e->state == EVENT_READY)
            ready_del(ch, e);
        else
            ch->st.locked--;
        if (e->vprev)
            e->vprev->vnext = e->vnext;
        else
            ch->vhead = e->vnext;
        if (e->vnext)
            e->vnext->vprev = e->vprev;
        else
            ch->vtail = e->vprev;
    }
    c->counters.events--;
    free(e);
}

static void expire(core_t *c, event_t *e)
{
    /* A scheduled event that dies before it is due was never published. */
    if (e->state != EVENT_SCHEDULED) {
        e->channel->st.expired++;
        c->counters.expired++;
    }
    event_remove(c, e);
}

static void lock_end(core_t *c, event_t *e)
{
    e->channel->st.locked--;
    e->lock_token = 0;
    e->locked_until = 0;
    ready_add(c, e->channel, e);
}

void event_fire(core_t *c, event_t *e, ntime_t now)
{
    if (now >= e->lives_until) {
        expire(c, e);
        return;
    }
    if (e->state == EVENT_SCHEDULED && now >= e->published_at) {
        e->channel->st.scheduled--;
        make_visible(c, e);
    } else if (e->state == EVENT_LOCKED && now >= e->locked_until) {
        e->channel->st.lock_expired++;
        c->counters.lock_expired++;
        lock_end(c, e);
    }
    reschedule(c, e);
}

event_t *event_create(core_t *c, channel_t *ch, ntime_t now, eid_t id, const char *data, size_t len,
                      ntime_t publish_at, int64_t ttl_ns)
{
    event_t *e = xmalloc(sizeof(*e) + len + 1);
    memset(e, 0, sizeof(*e));
    e->timer.kind = CORE_TIMER_EVENT;
    e->channel = ch;
    e->id = id;
    e->published_at = publish_at;
    e->lives_until = publish_at + ttl_ns;
    e->data_len = (uint32_t)len;
    memcpy(e->data, data, len);
    e->data[len] = '\0';
    c->counters.events++;
    ids_add(c, e);
    if (publish_at > now) {
        e->state = EVENT_SCHEDULED;
        ch->st.scheduled++;
    } else {
        make_visible(c, e);
    }
    /* An event published with a past publishAt whose ttl has already run
     * out is due at once: the next tick expires it, before anyone can see it. */
    reschedule(c, e);
    return e;
}

void event_rec_publish(core_rec_t *r, channel_t *ch, ntime_t now, eid_t id, const char *data,
                       size_t len, ntime_t publish_at, int64_t ttl_ns)
{
    memset(r, 0, sizeof(*r));
    r->type = CORE_REC_PUBLISH;
    r->now = now;
    r->channel = ch->name;
    r->channel_len = ch->name_len;
    r->id = id;
    r->t1 = publish_at;
    r->ttl_ns = ttl_ns;
    r->data = data;
    r->data_len = (uint32_t)len;
}

event_t *core_publish(core_t *c, channel_t *ch, ntime_t now, const char *data, size_t len,
                      ntime_t publish_at, int64_t ttl_ns)
{
    event_t *e;
    core_pub_t p = {data, len, publish_at, ttl_ns};
    return core_publish_batch(c, ch, now, &p, 1, &e) == CORE_OK ? e : NULL;
}

core_status_t core_publish_batch(core_t *c, channel_t *ch, ntime_t now, const core_pub_t *pubs,
                                 size_t n, event_t **out)
{
    now = core_clock(c, now);
    core_tick(c, now);
    /* Ids are taken first so the records hold them; a failed commit only
     * skips some ids, which stay unique. */
    id_gen_t before = c->idgen;
    for (size_t i = 0; i < n; i++) {
        core_rec_t r;
        event_rec_publish(&r, ch, now, id_gen_next(&c->idgen, now), pubs[i].data, pubs[i].len,
                          pubs[i].publish_at, pubs[i].ttl_ns);
        journal_add(c, &r);
    }
    if (journal_commit(c) != 0)
        return CORE_IO;
    /* The generator is deterministic: replaying it from `before` gives the
     * ids the records hold. */
    id_gen_t again = before;
    for (size_t i = 0; i < n; i++)
        out[i] = event_create(c, ch, now, id_gen_next(&again, now), pubs[i].data, pubs[i].len,
                              pubs[i].publish_at, pubs[i].ttl_ns);
    return CORE_OK;
}

/* The live event with that id in ch, after running what is due. */
static event_t *find(core_t *c, channel_t *ch, ntime_t now, eid_t id)
{
    core_tick(c, now);
    return event_lookup(c, ch, id);
}

event_t *event_lookup(core_t *c, channel_t *ch, eid_t id)
{
    event_t *e = *ids_slot(c, id);
    return e && e->channel == ch ? e : NULL;
}

event_t *core_event_get(core_t *c, channel_t *ch, ntime_t now, eid_t id)
{
    now = core_clock(c, now);
    return find(c, ch, now, id);
}

void event_lock_apply(core_t *c, event_t *e, ntime_t locked_until, uint64_t token)
{
    channel_t *ch = e->channel;
    ready_del(ch, e);
    e->state = EVENT_LOCKED;
    ch->st.locked++;
    e->locked_until = locked_until;
    e->lock_token = token;
    reschedule(c, e);
}

void event_unlock_apply(core_t *c, event_t *e)
{
    if (e->state != EVENT_LOCKED)
        return;
    lock_end(c, e);
    reschedule(c, e);
}

void event_extend_apply(core_t *c, event_t *e, ntime_t locked_until)
{
    e->locked_until = locked_until;
    reschedule(c, e);
}

void event_delete_apply(core_t *c, event_t *e)
{
    e->channel->st.deleted++;
    c->counters.deleted++;
    event_remove(c, e);
}

/* A record naming one event. */
static void rec_event(core_rec_t *r, int type, ntime_t now, const event_t *e)
{
    memset(r, 0, sizeof(*r));
    r->type = (uint8_t)type;
    r->now = now;
    r->channel = e->channel->name;
    r->channel_len = e->channel->name_len;
    r->id = e->id;
}

/* Journals one record and commits it. */
static int log1(core_t *c, const core_rec_t *r)
{
    journal_add(c, r);
    return journal_commit(c);
}

core_status_t core_lock(core_t *c, channel_t *ch, ntime_t now, eid_t id, int64_t ttl_ns,
                        event_t **out)
{
    now = core_clock(c, now);
    event_t *e = find(c, ch, now, id);
    if (!e || e->state != EVENT_READY)
        return CORE_GONE;
    core_rec_t r;
    rec_event(&r, CORE_REC_LOCK, now, e);
    r.t1 = now + ttl_ns;
    r.token = core_token_next(c);
    if (log1(c, &r) != 0)
        return CORE_IO;
    event_lock_apply(c, e, r.t1, r.token);
    *out = e;
    return CORE_OK;
}

static int token_ok(const event_t *e, const uint64_t *token)
{
    return !token || (e->state == EVENT_LOCKED && e->lock_token == *token);
}

core_status_t core_unlock(core_t *c, channel_t *ch, ntime_t now, eid_t id,
                          const uint64_t *token, event_t **out)
{
    now = core_clock(c, now);
    event_t *e = find(c, ch, now, id);
    if (!e || e->state == EVENT_SCHEDULED)
        return CORE_GONE;
    if (!token_ok(e, token))
        return CORE_CONFLICT;
    if (e->state == EVENT_LOCKED) {
        core_rec_t r;
        rec_event(&r, CORE_REC_UNLOCK, now, e);
        if (log1(c, &r) != 0)
            return CORE_IO;
        event_unlock_apply(c, e);
    }
    *out = e;
    return CORE_OK;
}

core_status_t core_extend(core_t *c, channel_t *ch, ntime_t now, eid_t id, int64_t ttl_ns,
                          const uint64_t *token, event_t **out)
{
    now = core_clock(c, now);
    event_t *e = find(c, ch, now, id);
    if (!e || e->state != EVENT_LOCKED)
        return CORE_GONE;
    if (!token_ok(e, token))
        return CORE_CONFLICT;
    core_rec_t r;
    rec_event(&r, CORE_REC_EXTEND, now, e);
    r.t1 = now + ttl_ns;
    if (log1(c, &r) != 0)
        return CORE_IO;
    event_extend_apply(c, e, r.t1);
    *out = e;
    return CORE_OK;
}

core_status_t core_delete(core_t *c, channel_t *ch, ntime_t now, eid_t id, const uint64_t *token)
{
    now = core_clock(c, now);
    event_t *e = find(c, ch, now, id);
    if (!e)
        return CORE_NOT_FOUND;
    if (!token_ok(e, token))
        return CORE_CONFLICT;
    core_rec_t r;
    rec_event(&r, CORE_REC_DELETE, now, e);
    if (log1(c, &r) != 0)
        return CORE_IO;
    event_delete_apply(c, e);
    return CORE_OK;
}

size_t core_acquire(core_t *c, channel_t *ch, ntime_t now, size_t max, int64_t ttl_ns,
                    event_t **out)
{
    now = core_clock(c, now);
    core_tick(c, now);
    /* Lock first, then commit all records at once; if the commit fails,
     * every lock is undone, which puts each event back in its place (the
     * ready heap orders by visibility, not by insertion). */
    size_t n = 0;
    while (n < max && ch->ready_len > 0) {
        event_t *e = ch->ready[0];
        core_rec_t r;
        rec_event(&r, CORE_REC_LOCK, now, e);
        r.t1 = now + ttl_ns;
        r.token = core_token_next(c);
        journal_add(c, &r);
        event_lock_apply(c, e, r.t1, r.token);
        out[n++] = e;
    }
    if (n > 0 && journal_commit(c) != 0) {
        while (n > 0)
            event_unlock_apply(c, out[--n]);
        return 0;
    }
    return n;
}

/* Rebuilds an event from a snapshot record, after those already restored:
 * visible ones come in visibility order, scheduled ones in creation order. */
void event_restore(core_t *c, channel_t *ch, const core_rec_t *r)
{
    /* "now" is the publish time for a visible event, so it is appended
     * visible; just before it for a scheduled one. */
    ntime_t at = r->state == EVENT_SCHEDULED ? r->t1 - 1 : r->t1;
    event_t *e = event_create(c, ch, at, r->id, r->data, r->data_len, r->t1, r->t2 - r->t1);
    id_gen_observe(&c->idgen, r->id);
    if (r->state == EVENT_LOCKED)
        event_lock_apply(c, e, r->t3, r->token);
}

void event_free_all(core_t *c)
{
    for (uint32_t i = 0; i <= c->ids_mask; i++) {
        event_t *e = c->ids[i];
        while (e) {
            event_t *next = e->hnext;
            free(e);
            e = next;
        }
        c->ids[i] = NULL;
    }
    c->counters.events = 0;
}
