/*
 * event.c -- the event lifecycle: publish, become visible, lock, unlock,
 * extend, delete, expire, acquire (see the states in core.h).
 *
 * Three borrowed indexes point at each event: the global id hash (every
 * live event), the channel's visible list (READY and LOCKED, in visibility
 * order) and the channel's ready heap (READY only, by vseq); a fourth holds
 * its wake-up: the timer heap, or for most READY events the channel's
 * expiry list. Each has a back-link in the event, so every change is O(1)
 * or O(log n).
 *
 * Events live in the core's event slab and name each other by slab index
 * (4 bytes instead of an 8-byte pointer, no malloc header); an event's own
 * index follows from its address (slab_index). A lease record
 * exists only while an event is LOCKED.
 */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>
#include "base/dheap.h"
#include "base/util.h"
#include "base/vmem.h"

_Static_assert(sizeof(event_t) == 80, "event_t should stay 80 bytes");
_Static_assert(sizeof(rentry_t) == 12, "ready heap entries are 12 bytes");

static inline event_t *ev(const core_t *c, uint32_t i)
{
    return slab_ptr(&c->events, i);
}

/* An event's own slab index, from its address. */
static inline uint32_t idx(const core_t *c, const event_t *e)
{
    return slab_index(&c->events, e);
}

static inline lease_t *lease_of(const core_t *c, const event_t *e)
{
    return slab_ptr(&c->leases, e->slot & ~EVENT_LEASE_BIT);
}

/* ---- id hash ----
 *
 * The bucket of an id is a mix of its millisecond plus its counter, so ids
 * made one after another (a batch, a replay) land in neighbouring buckets:
 * inserting them walks memory in order instead of missing the cache once
 * per event. Ids of different milliseconds still scatter.
 *
 * The table doubles when there are more than two events per bucket: a
 * chain of two costs one more event read on a lookup (the first is read
 * anyway to compare its id), while half the buckets save 2 bytes per
 * event. Moving every
 * chain at once would stall the loop (27 ms at a million events), so the
 * old buckets are moved a few at a time by each insert and delete, as
 * Redis's incremental rehash does; until an old bucket is moved, its ids
 * are looked up and inserted there. IDS_STEP buckets per insert finish the
 * move long before the next doubling (which takes as many inserts as there
 * were old buckets). */

#define IDS_STEP 4

static inline uint64_t id_bucket(uint64_t hi, uint32_t lo)
{
    uint64_t ms = hi >> 16, counter = (hi & 0xffff) << 32 | lo;
    return ms * 0x9e3779b97f4a7c15ULL + counter;
}

void ids_init(core_t *c)
{
    c->ids_mask = 255;
    c->ids = vmem_zalloc(((size_t)c->ids_mask + 1) * sizeof(*c->ids));
    c->ids_old = NULL;
}

void ids_free(core_t *c)
{
    vmem_free(c->ids, ((size_t)c->ids_mask + 1) * sizeof(*c->ids));
    vmem_free(c->ids_old, c->ids_old ? ((size_t)c->ids_old_mask + 1) * sizeof(*c->ids) : 0);
    c->ids = c->ids_old = NULL;
}

static void ids_step(core_t *c)
{
    for (int k = 0; k < IDS_STEP && c->ids_moved <= c->ids_old_mask; k++) {
        uint32_t i = c->ids_old[c->ids_moved++];
        while (i) {
            event_t *e = ev(c, i);
            uint32_t next = e->hnext;
            uint32_t *b = &c->ids[id_bucket(e->id_hi, e->id_lo) & c->ids_mask];
            e->hnext = *b;
            *b = i;
            i = next;
        }
    }
    if (c->ids_moved > c->ids_old_mask) {
        vmem_free(c->ids_old, ((size_t)c->ids_old_mask + 1) * sizeof(*c->ids));
        c->ids_old = NULL;
    }
}

/* The bucket that holds (or will hold) an id with bucket hash h. */
static inline uint32_t *ids_head(const core_t *c, uint64_t h)
{
    if (c->ids_old && ((uint32_t)h & c->ids_old_mask) >= c->ids_moved)
        return &c->ids_old[(uint32_t)h & c->ids_old_mask];
    return &c->ids[(uint32_t)h & c->ids_mask];
}

/* The link that holds the index of the event with that id, or the 0 that
 * ends its chain. */
static uint32_t *ids_slot(const core_t *c, eid_t id)
{
    uint32_t *p = ids_head(c, id_bucket(id.hi, id.lo));
    while (*p) {
        event_t *e = ev(c, *p);
        if (e->id_hi == id.hi && e->id_lo == id.lo)
            break;
        p = &e->hnext;
    }
    return p;
}

static void ids_add(core_t *c, event_t *e)
{
    if (c->ids_old) {
        ids_step(c);
    } else if (c->counters.events > 2 * (uint64_t)c->ids_mask + 1) {
        c->ids_old = c->ids;
        c->ids_old_mask = c->ids_mask;
        c->ids_moved = 0;
        c->ids_mask = c->ids_mask * 2 + 1;
        c->ids = vmem_zalloc(((size_t)c->ids_mask + 1) * sizeof(*c->ids));
    }
    uint32_t *b = ids_head(c, id_bucket(e->id_hi, e->id_lo));
    e->hnext = *b;
    *b = idx(c, e);
}

static void ids_del(core_t *c, event_t *e)
{
    if (c->ids_old)
        ids_step(c);
    uint32_t *p = ids_slot(c, event_id(e));
    ASSERT(*p == idx(c, e));
    *p = e->hnext;
}

static size_t collect_table(core_t *c, const uint32_t *t, uint32_t from, uint32_t mask,
                            event_t **out, size_t n)
{
    for (uint64_t b = from; b <= mask; b++)
        for (uint32_t i = t[b]; i; i = ev(c, i)->hnext)
            out[n++] = ev(c, i);
    return n;
}

size_t event_collect(core_t *c, event_t **out)
{
    size_t n = collect_table(c, c->ids, 0, c->ids_mask, out, 0);
    if (c->ids_old)
        n = collect_table(c, c->ids_old, c->ids_moved, c->ids_old_mask, out, n);
    return n;
}

/* ---- ready heap: READY events of a channel, oldest visibility first ----
 *
 * Entries carry the vseq they are ordered by, so a sift reads only the
 * array; the event is written once per move (its position). */

static int ready_before(const void *a, const void *b)
{
    return ((const rentry_t *)a)->vseq < ((const rentry_t *)b)->vseq;
}

static void ready_place(void *ctx, uint32_t i, const void *e)
{
    channel_t *ch = ctx;
    rentry_t r;
    memcpy(&r, e, sizeof(r));
    ch->ready[i] = r;
    ((event_t *)slab_ptr(ch->events, r.ev))->slot = i + 1;
}

/* The channel's ready heap as dheap.h sees it. */
static inline dheap_t ready_heap(channel_t *ch)
{
    dheap_t h = {ch->ready, sizeof(rentry_t), ch->ready_len, ready_before, ready_place, ch};
    return h;
}

static void ready_add(core_t *c, channel_t *ch, event_t *e, uint64_t vseq)
{
    if (ch->ready_len == ch->ready_cap) {
        uint32_t cap = ch->ready_cap ? ch->ready_cap * 2 : 16;
        ch->ready = vmem_resize(ch->ready, (size_t)ch->ready_cap * sizeof(*ch->ready),
                                (size_t)cap * sizeof(*ch->ready));
        ch->ready_cap = cap;
    }
    rentry_t r = {vseq, idx(c, e)};
    ch->ready[ch->ready_len++] = r;
    dheap_t h = ready_heap(ch);
    dheap_sift_up(&h, ch->ready_len - 1);
    ch->st.ready++;
    core_mark_available(c, ch);
}

/* Takes a READY e out of the heap; returns its vseq. e->slot is left for
 * the caller to set. */
static uint64_t ready_del(channel_t *ch, event_t *e)
{
    uint32_t i = e->slot - 1;
    ASSERT(e->slot && !(e->slot & EVENT_LEASE_BIT) && ch->ready[i].ev == slab_index(ch->events, e));
    uint64_t vseq = ch->ready[i].vseq;
    e->slot = 0;
    ch->st.ready--;
    dheap_t h = ready_heap(ch);
    dheap_remove(&h, i);
    ch->ready_len = h.len;
    return vseq;
}

uint64_t event_vseq(const event_t *e)
{
    switch (event_state(e)) {
    case EVENT_READY:
        return e->channel->ready[e->slot - 1].vseq;
    case EVENT_LOCKED:
        return event_lease(e)->vseq;
    default:
        return 0;
    }
}

/* ---- lifecycle ---- */

/* ---- expiry list: READY events of a channel in lives_until order ----
 *
 * Only the head is in the timer heap (the channel's xtimer). An event joins
 * at the end when its expiry is no earlier than the end's, so the list stays
 * sorted without searching; the previous link lives in the event's tnode,
 * which is unused while it is on the list. */

static void xlist_add(core_t *c, channel_t *ch, event_t *e)
{
    uint32_t i = idx(c, e);
    e->timer.index = ch->xtail;
    e->xnext = EVENT_XLISTED;
    if (ch->xtail) {
        ev(c, ch->xtail)->xnext = EVENT_XLISTED | i;
    } else {
        ch->xhead = i;
        timers_set(&c->timers, &ch->xtimer, e->lives_until, CORE_TIMER_EXPIRY);
    }
    ch->xtail = i;
}

static void xlist_del(core_t *c, channel_t *ch, event_t *e)
{
    uint32_t prev = e->timer.index, next = e->xnext & ~EVENT_XLISTED;
    if (next)
        ev(c, next)->timer.index = prev;
    else
        ch->xtail = prev;
    if (prev) {
        ev(c, prev)->xnext = EVENT_XLISTED | next;
    } else {
        ch->xhead = next;
        if (next)
            timers_set(&c->timers, &ch->xtimer, ev(c, next)->lives_until, CORE_TIMER_EXPIRY);
        else
            timers_cancel(&c->timers, &ch->xtimer);
    }
    e->timer.index = 0;
    e->xnext = 0;
}

/* The one pending wake-up for e's current state (core.h). */
static void reschedule(core_t *c, event_t *e)
{
    channel_t *ch = e->channel;
    ntime_t at = e->lives_until;
    if (event_state(e) == EVENT_READY) {
        if (e->xnext)
            return; /* on the list already: its expiry never moves */
        if (!ch->xtail || at >= ev(c, ch->xtail)->lives_until) {
            timers_cancel(&c->timers, &e->timer);
            xlist_add(c, ch, e);
            return;
        }
    } else if (e->xnext) {
        xlist_del(c, ch, e);
    }
    if (!e->slot) {
        at = e->published_at;
    } else if (e->slot & EVENT_LEASE_BIT) {
        ntime_t until = lease_of(c, e)->locked_until;
        if (until < at)
            at = until;
    }
    timers_set(&c->timers, &e->timer, at, CORE_TIMER_EVENT);
}

static void make_visible(core_t *c, event_t *e)
{
    channel_t *ch = e->channel;
    uint32_t i = idx(c, e);
    e->vprev = ch->vtail;
    e->vnext = 0;
    if (ch->vtail)
        ev(c, ch->vtail)->vnext = i;
    else
        ch->vhead = i;
    ch->vtail = i;
    ch->st.published++;
    c->counters.published++;
    ready_add(c, ch, e, c->next_vseq++);
}

/* Unlinks e from every index and frees it. */
static void event_remove(core_t *c, event_t *e)
{
    channel_t *ch = e->channel;
    if (e->xnext)
        xlist_del(c, ch, e);
    else
        timers_cancel(&c->timers, &e->timer);
    ids_del(c, e);
    event_state_t state = event_state(e);
    if (state == EVENT_SCHEDULED) {
        ch->st.scheduled--;
    } else {
        if (state == EVENT_READY) {
            ready_del(ch, e);
        } else {
            ch->st.locked--;
            slab_release(&c->leases, e->slot & ~EVENT_LEASE_BIT);
        }
        if (e->vprev)
            ev(c, e->vprev)->vnext = e->vnext;
        else
            ch->vhead = e->vnext;
        if (e->vnext)
            ev(c, e->vnext)->vprev = e->vprev;
        else
            ch->vtail = e->vprev;
    }
    c->counters.events--;
    if (e->data_len > EVENT_INLINE)
        free(e->d.ext);
    slab_release(&c->events, idx(c, e));
}

static void expire(core_t *c, event_t *e)
{
    /* A scheduled event that dies before it is due was never published. */
    if (event_state(e) != EVENT_SCHEDULED) {
        e->channel->st.expired++;
        c->counters.expired++;
    }
    event_remove(c, e);
}

static void lock_end(core_t *c, event_t *e)
{
    uint32_t li = e->slot & ~EVENT_LEASE_BIT;
    uint64_t vseq = ((lease_t *)slab_ptr(&c->leases, li))->vseq;
    slab_release(&c->leases, li);
    e->slot = 0;
    e->channel->st.locked--;
    ready_add(c, e->channel, e, vseq);
}

void event_fire(core_t *c, event_t *e, ntime_t now)
{
    if (now >= e->lives_until) {
        expire(c, e);
        return;
    }
    event_state_t state = event_state(e);
    if (state == EVENT_SCHEDULED && now >= e->published_at) {
        e->channel->st.scheduled--;
        make_visible(c, e);
    } else if (state == EVENT_LOCKED && now >= lease_of(c, e)->locked_until) {
        e->channel->st.lock_expired++;
        c->counters.lock_expired++;
        lock_end(c, e);
    }
    reschedule(c, e);
}

void event_expire_head(core_t *c, channel_t *ch, ntime_t now)
{
    event_t *e = ev(c, ch->xhead);
    ASSERT(ch->xhead && e->lives_until <= now);
    expire(c, e);
}

event_t *event_create(core_t *c, channel_t *ch, ntime_t now, eid_t id, const char *data, size_t len,
                      ntime_t publish_at, int64_t ttl_ns)
{
    uint32_t i = slab_alloc(&c->events);
    event_t *e = ev(c, i);
    memset(e, 0, sizeof(*e));
    e->channel = ch;
    e->id_hi = id.hi;
    e->id_lo = id.lo;
    e->published_at = publish_at;
    e->lives_until = ntime_add(publish_at, ttl_ns);
    e->data_len = (uint32_t)len;
    if (len <= EVENT_INLINE) {
        memcpy(e->d.inl, data, len);
    } else {
        e->d.ext = xmalloc(len + 1);
        memcpy(e->d.ext, data, len);
        e->d.ext[len] = '\0';
    }
    c->counters.events++;
    ids_add(c, e);
    if (publish_at > now)
        ch->st.scheduled++;
    else
        make_visible(c, e);
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
    r->at = publish_at;
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
        r.more = i + 1 < n; /* one change: replay keeps all or none */
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
    uint32_t i = *ids_slot(c, id);
    event_t *e = i ? ev(c, i) : NULL;
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
    uint64_t vseq = ready_del(ch, e);
    uint32_t li = slab_alloc(&c->leases);
    ASSERT(li < EVENT_LEASE_BIT);
    lease_t *l = slab_ptr(&c->leases, li);
    l->locked_until = locked_until;
    l->token = token;
    l->vseq = vseq;
    e->slot = EVENT_LEASE_BIT | li;
    ch->st.locked++;
    reschedule(c, e);
}

void event_unlock_apply(core_t *c, event_t *e)
{
    if (event_state(e) != EVENT_LOCKED)
        return;
    lock_end(c, e);
    reschedule(c, e);
}

void event_extend_apply(core_t *c, event_t *e, ntime_t locked_until)
{
    lease_of(c, e)->locked_until = locked_until;
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
    r->id = event_id(e);
}

/* Journals one record and commits it. */
static int log1(core_t *c, const core_rec_t *r)
{
    journal_add(c, r);
    return journal_commit(c);
}

static int token_ok(const event_t *e, const uint64_t *token)
{
    return !token || (event_state(e) == EVENT_LOCKED && event_lock_token(e) == *token);
}

#define IN(state) (1u << (state))

/* The event a change may touch: live in ch, in one of the states of the
 * mask (IN(EVENT_READY) | ...), and locked with *token if token is given.
 * Else NULL with *st: `missing` (no such event, or in another state) or
 * CORE_CONFLICT (another token). */
static event_t *target(core_t *c, channel_t *ch, ntime_t now, eid_t id, unsigned states, core_status_t missing,
                       const uint64_t *token, core_status_t *st)
{
    event_t *e = find(c, ch, now, id);
    if (!e || !(states & IN(event_state(e)))) {
        *st = missing;
        return NULL;
    }
    if (!token_ok(e, token)) {
        *st = CORE_CONFLICT;
        return NULL;
    }
    return e;
}

/* A LOCK (a READY event, a new token) or an EXTEND (a LOCKED event, its
 * token kept): the lease ends at now + ttl_ns. */
static core_status_t lease(core_t *c, channel_t *ch, ntime_t now, eid_t id, int64_t ttl_ns, const uint64_t *token,
                           int extend, event_t **out)
{
    core_status_t st;
    now = core_clock(c, now);
    event_t *e = target(c, ch, now, id, IN(extend ? EVENT_LOCKED : EVENT_READY), CORE_GONE, token, &st);
    if (!e)
        return st;
    core_rec_t r;
    rec_event(&r, extend ? CORE_REC_EXTEND : CORE_REC_LOCK, now, e);
    r.at = ntime_add(now, ttl_ns);
    r.token = extend ? 0 : core_token_next(c);
    if (log1(c, &r) != 0)
        return CORE_IO;
    if (extend)
        event_extend_apply(c, e, r.at);
    else
        event_lock_apply(c, e, r.at, r.token);
    *out = e;
    return CORE_OK;
}

core_status_t core_lock(core_t *c, channel_t *ch, ntime_t now, eid_t id, int64_t ttl_ns,
                        event_t **out)
{
    return lease(c, ch, now, id, ttl_ns, NULL, 0, out);
}

core_status_t core_extend(core_t *c, channel_t *ch, ntime_t now, eid_t id, int64_t ttl_ns,
                          const uint64_t *token, event_t **out)
{
    return lease(c, ch, now, id, ttl_ns, token, 1, out);
}

core_status_t core_unlock(core_t *c, channel_t *ch, ntime_t now, eid_t id,
                          const uint64_t *token, event_t **out)
{
    core_status_t st;
    now = core_clock(c, now);
    event_t *e = target(c, ch, now, id, IN(EVENT_READY) | IN(EVENT_LOCKED), CORE_GONE, token, &st);
    if (!e)
        return st;
    if (event_state(e) == EVENT_LOCKED) {
        core_rec_t r;
        rec_event(&r, CORE_REC_UNLOCK, now, e);
        if (log1(c, &r) != 0)
            return CORE_IO;
        event_unlock_apply(c, e);
    }
    *out = e;
    return CORE_OK;
}

core_status_t core_delete(core_t *c, channel_t *ch, ntime_t now, eid_t id, const uint64_t *token)
{
    core_status_t st;
    now = core_clock(c, now);
    event_t *e = target(c, ch, now, id, IN(EVENT_SCHEDULED) | IN(EVENT_READY) | IN(EVENT_LOCKED), CORE_NOT_FOUND,
                        token, &st);
    if (!e)
        return st;
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
    size_t n = 0, want = max < ch->ready_len ? max : ch->ready_len;
    while (n < want) {
        event_t *e = ev(c, ch->ready[0].ev);
        core_rec_t r;
        rec_event(&r, CORE_REC_LOCK, now, e);
        r.at = ntime_add(now, ttl_ns);
        r.token = core_token_next(c);
        r.more = n + 1 < want; /* one change: replay keeps all or none */
        journal_add(c, &r);
        event_lock_apply(c, e, r.at, r.token);
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
    ntime_t at = r->state == EVENT_SCHEDULED ? r->at - 1 : r->at;
    event_t *e = event_create(c, ch, at, r->id, r->data, r->data_len, r->at, r->lives_until - r->at);
    id_gen_observe(&c->idgen, r->id);
    if (r->state == EVENT_LOCKED)
        event_lock_apply(c, e, r->locked_until, r->token);
}

void event_free_all(core_t *c)
{
    size_t n = c->counters.events;
    event_t **all = xmalloc((n + 1) * sizeof(*all));
    ASSERT(event_collect(c, all) == n);
    for (size_t i = 0; i < n; i++)
        if (all[i]->data_len > EVENT_INLINE)
            free(all[i]->d.ext);
    free(all);
    memset(c->ids, 0, ((size_t)c->ids_mask + 1) * sizeof(*c->ids));
    if (c->ids_old)
        vmem_free(c->ids_old, ((size_t)c->ids_old_mask + 1) * sizeof(*c->ids));
    c->ids_old = NULL;
    slab_free_all(&c->events);
    slab_free_all(&c->leases);
    c->counters.events = 0;
}
