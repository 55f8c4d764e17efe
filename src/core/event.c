/*
 * event.c -- the event lifecycle: publish, become visible, lock, unlock,
 * extend, delete, expire, acquire (see the states in core.h).
 *
 * Three borrowed indexes point at each event: the global id hash (every
 * live event), the channel's visible list (READY and LOCKED, in visibility
 * order; SCHEDULED ones are on the channel's scheduled list through the
 * same links) and one of the channel's ready heaps (READY only, one per
 * priority, by vseq); a fourth holds its wake-up: the timer heap, or for
 * most READY events the channel's expiry list. Each has a back-link in the event, so
 * every change is O(1) or O(log n). An event with a key is also in its
 * channel's key map.
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

channel_t *event_channel(const core_t *c, const event_t *e)
{
    return chan_of(c, e);
}

const lease_t *event_lease(const core_t *c, const event_t *e)
{
    return e->slot & EVENT_LEASE_BIT ? lease_of(c, e) : NULL;
}

ntime_t event_locked_until(const core_t *c, const event_t *e)
{
    const lease_t *l = event_lease(c, e);
    return l ? l->locked_until : 0;
}

uint64_t event_lock_token(const core_t *c, const event_t *e)
{
    const lease_t *l = event_lease(c, e);
    return l ? l->token : 0;
}

/* ---- extras: a key and dead_lettered_from after the data ----
 *
 * Most events have neither, so they cost no field in the event: the data
 * moves out of line and the extras follow it, each a length byte and its
 * bytes: data, NUL, klen, key, flen, from. */

static const unsigned char *extras_at(const event_t *e)
{
    return e->extras ? (const unsigned char *)e->d.ext + e->data_len + 1 : NULL;
}

const char *event_key(const event_t *e, size_t *len)
{
    const unsigned char *x = extras_at(e);
    *len = x ? x[0] : 0;
    return *len ? (const char *)x + 1 : NULL;
}

const char *event_dead_lettered_from(const event_t *e, size_t *len)
{
    const unsigned char *x = extras_at(e);
    if (x)
        x += 1 + x[0];
    *len = x ? x[0] : 0;
    return *len ? (const char *)x + 1 : NULL;
}

void event_set_extras(event_t *e, const char *key, size_t klen, const char *from, size_t flen)
{
    ASSERT(klen <= 255 && flen <= 255);
    size_t n = e->data_len;
    char *old = event_inline(e) ? NULL : e->d.ext;
    char buf[EVENT_INLINE];
    const char *data = event_data(e);
    if (!old) {
        memcpy(buf, data, n); /* the inline bytes share the union with ext */
        data = buf;
    }
    if (!klen && !flen && n <= EVENT_INLINE) {
        memcpy(e->d.inl, data, n);
        e->extras = 0;
    } else {
        char *x = xmalloc(n + 3 + klen + flen);
        memcpy(x, data, n);
        x[n] = '\0';
        x[n + 1] = (char)klen;
        if (klen)
            memcpy(x + n + 2, key, klen);
        x[n + 2 + klen] = (char)flen;
        if (flen)
            memcpy(x + n + 3 + klen, from, flen);
        e->d.ext = x;
        e->extras = klen || flen;
    }
    free(old); /* after the copy: key or from may point into it */
}

/* The key map: key -> the live event with it in its channel. A moved
 * event whose key is taken in its new channel keeps the key unmapped. */
void event_key_add(core_t *c, event_t *e)
{
    size_t len;
    const char *key = event_key(e, &len);
    channel_t *ch = chan_of(c, e);
    if (key && !strmap_get(&ch->keys, key, len))
        strmap_put(&ch->keys, key, len, e);
}

void event_key_del(core_t *c, event_t *e)
{
    size_t len;
    const char *key = event_key(e, &len);
    channel_t *ch = chan_of(c, e);
    if (key && strmap_get(&ch->keys, key, len) == e)
        strmap_del(&ch->keys, key, len);
}

event_t *core_event_by_key(core_t *c, channel_t *ch, ntime_t now, const char *key, size_t len)
{
    core_tick(c, core_clock(c, now));
    return strmap_get(&ch->keys, key, len);
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

/* ---- ready heaps: READY events of a channel, one heap per priority ----
 *
 * Entries carry the key they are ordered by, (priority, vseq) in one
 * integer, so a sift reads only the array; the event is written once per
 * move (its position). Acquire takes the top of the most urgent heap that
 * is not empty (ready_prios); the oldest READY event is the smallest vseq
 * among the tops. One heap ordered by (priority, vseq) served acquire as
 * well, but its top says nothing about the oldest event of other
 * priorities: finding that walked the visible list past every locked
 * event. */

#define VSEQ_MASK ((1ULL << RENTRY_PRIO_SHIFT) - 1)

static int ready_before(const void *a, const void *b)
{
    return ((const rentry_t *)a)->key < ((const rentry_t *)b)->key;
}

static void ready_place(void *ctx, uint32_t i, const void *e)
{
    channel_t *ch = ctx;
    rentry_t r;
    memcpy(&r, e, sizeof(r));
    ch->ready[r.key >> RENTRY_PRIO_SHIFT].e[i] = r;
    ((event_t *)slab_ptr(ch->events, r.ev))->slot = i + 1;
}

/* The ready heap of priority p as dheap.h sees it. */
static inline dheap_t ready_heap(channel_t *ch, unsigned p)
{
    dheap_t h = {ch->ready[p].e, sizeof(rentry_t), ch->ready[p].len, ready_before, ready_place, ch};
    return h;
}

static void ready_add(core_t *c, channel_t *ch, event_t *e, uint64_t vseq)
{
    rheap_t *rh = &ch->ready[e->priority];
    if (rh->len == rh->cap) {
        uint32_t cap = rh->cap ? rh->cap * 2 : 16;
        rh->e = vmem_resize(rh->e, (size_t)rh->cap * sizeof(*rh->e), (size_t)cap * sizeof(*rh->e));
        rh->cap = cap;
    }
    ASSERT(vseq <= VSEQ_MASK);
    rentry_t r = {(uint64_t)e->priority << RENTRY_PRIO_SHIFT | vseq, idx(c, e)};
    rh->e[rh->len++] = r;
    dheap_t h = ready_heap(ch, e->priority);
    dheap_sift_up(&h, rh->len - 1);
    ch->ready_prios |= (uint16_t)(1u << e->priority);
    ch->st.ready++;
    core_mark_available(c, ch);
}

/* Takes a READY e out of its heap; returns its vseq. e->slot is left for
 * the caller to set. */
static uint64_t ready_del(channel_t *ch, event_t *e)
{
    uint32_t i = e->slot - 1;
    rheap_t *rh = &ch->ready[e->priority];
    ASSERT(e->slot && !(e->slot & EVENT_LEASE_BIT) && rh->e[i].ev == slab_index(ch->events, e));
    uint64_t vseq = rh->e[i].key & VSEQ_MASK;
    e->slot = 0;
    ch->st.ready--;
    dheap_t h = ready_heap(ch, e->priority);
    dheap_remove(&h, i);
    rh->len = h.len;
    if (!rh->len)
        ch->ready_prios &= (uint16_t)~(1u << e->priority);
    return vseq;
}

/* The most urgent, then oldest READY event of ch, or NULL. */
static event_t *ready_first(const core_t *c, const channel_t *ch)
{
    if (!ch->ready_prios)
        return NULL;
    return ev(c, ch->ready[__builtin_ctz(ch->ready_prios)].e[0].ev);
}

ntime_t core_oldest_ready(const channel_t *ch)
{
    const rentry_t *oldest = NULL;
    for (unsigned m = ch->ready_prios; m; m &= m - 1) {
        const rentry_t *top = &ch->ready[__builtin_ctz(m)].e[0];
        if (!oldest || (top->key & VSEQ_MASK) < (oldest->key & VSEQ_MASK))
            oldest = top;
    }
    return oldest ? ((const event_t *)slab_ptr(ch->events, oldest->ev))->published_at : 0;
}

uint64_t event_vseq(const core_t *c, const event_t *e)
{
    switch (event_state(e)) {
    case EVENT_READY:
        return chan_of(c, e)->ready[e->priority].e[e->slot - 1].key & VSEQ_MASK;
    case EVENT_LOCKED:
        return event_lease(c, e)->vseq;
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
    channel_t *ch = chan_of(c, e);
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
        if (e->published_at < at) /* a held event may die before it returns */
            at = e->published_at;
    } else if (e->slot & EVENT_LEASE_BIT) {
        ntime_t until = lease_of(c, e)->locked_until;
        if (until < at)
            at = until;
    }
    timers_set(&c->timers, &e->timer, at, CORE_TIMER_EVENT);
}

/* ---- the two lists of a channel: visible (in order) and scheduled ---- */

static void vlist_append(core_t *c, channel_t *ch, event_t *e)
{
    uint32_t i = idx(c, e);
    e->vprev = ch->vtail;
    e->vnext = 0;
    if (ch->vtail)
        ev(c, ch->vtail)->vnext = i;
    else
        ch->vhead = i;
    ch->vtail = i;
}

static void vlist_del(core_t *c, channel_t *ch, event_t *e)
{
    if (e->vprev)
        ev(c, e->vprev)->vnext = e->vnext;
    else
        ch->vhead = e->vnext;
    if (e->vnext)
        ev(c, e->vnext)->vprev = e->vprev;
    else
        ch->vtail = e->vprev;
}

static void slist_add(core_t *c, channel_t *ch, event_t *e)
{
    uint32_t i = idx(c, e);
    e->vprev = 0;
    e->vnext = ch->shead;
    if (ch->shead)
        ev(c, ch->shead)->vprev = i;
    ch->shead = i;
    ch->st.scheduled++;
}

static void slist_del(core_t *c, channel_t *ch, event_t *e)
{
    if (e->vprev)
        ev(c, e->vprev)->vnext = e->vnext;
    else
        ch->shead = e->vnext;
    if (e->vnext)
        ev(c, e->vnext)->vprev = e->vprev;
    ch->st.scheduled--;
}

/* A SCHEDULED event (off both lists) joins the back of the queue. */
static void make_visible(core_t *c, channel_t *ch, event_t *e)
{
    vlist_append(c, ch, e);
    if (!e->returning) {
        ch->st.published++;
        c->counters.published++;
    }
    e->returning = 0;
    ready_add(c, ch, e, c->next_vseq++);
}

/* Takes e out of its channel's lists, heap, lease and wake-up; it stays
 * in the id hash and keeps its data. */
static void event_detach(core_t *c, event_t *e)
{
    channel_t *ch = chan_of(c, e);
    if (e->xnext)
        xlist_del(c, ch, e);
    else
        timers_cancel(&c->timers, &e->timer);
    event_state_t state = event_state(e);
    if (state == EVENT_SCHEDULED) {
        slist_del(c, ch, e);
        return;
    }
    if (state == EVENT_READY) {
        ready_del(ch, e);
    } else {
        ch->st.locked--;
        slab_release(&c->leases, e->slot & ~EVENT_LEASE_BIT);
        e->slot = 0;
    }
    vlist_del(c, ch, e);
}

void event_remove(core_t *c, event_t *e)
{
    event_key_del(c, e);
    event_detach(c, e);
    ids_del(c, e);
    c->counters.events--;
    if (!event_inline(e))
        free(e->d.ext);
    slab_release(&c->events, idx(c, e));
}

void event_hold(core_t *c, event_t *e, ntime_t at)
{
    channel_t *ch = chan_of(c, e);
    event_detach(c, e);
    e->published_at = at;
    e->returning = 1;
    slist_add(c, ch, e);
    reschedule(c, e);
}

void event_move_to(core_t *c, event_t *e, channel_t *dest, ntime_t now)
{
    event_key_del(c, e);
    event_detach(c, e);
    e->chan = dest->index;
    e->published_at = now;
    e->returning = 0;
    make_visible(c, dest, e);
    event_key_add(c, e);
    reschedule(c, e);
}

static void expire(core_t *c, event_t *e)
{
    /* A scheduled event that dies before it is first due was never
     * published. */
    if (event_state(e) != EVENT_SCHEDULED || e->returning) {
        chan_of(c, e)->st.expired++;
        c->counters.expired++;
    }
    event_remove(c, e);
}

void event_lock_end(core_t *c, event_t *e)
{
    channel_t *ch = chan_of(c, e);
    uint32_t li = e->slot & ~EVENT_LEASE_BIT;
    uint64_t vseq = ((lease_t *)slab_ptr(&c->leases, li))->vseq;
    slab_release(&c->leases, li);
    e->slot = 0;
    ch->st.locked--;
    ready_add(c, ch, e, vseq);
    reschedule(c, e);
}

void event_fire(core_t *c, event_t *e, ntime_t now)
{
    if (now >= e->lives_until) {
        expire(c, e);
        return;
    }
    channel_t *ch = chan_of(c, e);
    event_state_t state = event_state(e);
    if (state == EVENT_SCHEDULED && now >= e->published_at) {
        slist_del(c, ch, e);
        make_visible(c, ch, e);
    } else if (state == EVENT_LOCKED && now >= lease_of(c, e)->locked_until) {
        ntime_t ended = lease_of(c, e)->locked_until;
        ch->st.lock_expired++;
        c->counters.lock_expired++;
        event_lock_end(c, e);
        dl_lock_ended(c, e, now, ended, 1);
        return;
    }
    reschedule(c, e);
}

void event_expire_head(core_t *c, channel_t *ch, ntime_t now)
{
    event_t *e = ev(c, ch->xhead);
    ASSERT(ch->xhead && e->lives_until <= now);
    expire(c, e);
}

event_t *event_create(core_t *c, channel_t *ch, ntime_t now, eid_t id, const core_pub_t *p)
{
    uint32_t i = slab_alloc(&c->events);
    event_t *e = ev(c, i);
    memset(e, 0, sizeof(*e));
    e->chan = ch->index;
    e->id_hi = id.hi;
    e->id_lo = id.lo;
    e->published_at = p->publish_at;
    e->lives_until = ntime_add(p->publish_at, p->ttl_ns);
    e->data_len = (uint32_t)p->len;
    e->priority = p->priority;
    e->json = p->json ? 1 : 0;
    if (p->len <= EVENT_INLINE) {
        memcpy(e->d.inl, p->data, p->len);
    } else {
        e->d.ext = xmalloc(p->len + 1);
        memcpy(e->d.ext, p->data, p->len);
        e->d.ext[p->len] = '\0';
    }
    if (p->key_len)
        event_set_extras(e, p->key, p->key_len, NULL, 0);
    c->counters.events++;
    ids_add(c, e);
    event_key_add(c, e);
    if (p->publish_at > now)
        slist_add(c, ch, e);
    else
        make_visible(c, ch, e);
    /* An event published with a past publishAt whose ttl has already run
     * out is due at once: the next tick expires it, before anyone can see it. */
    reschedule(c, e);
    return e;
}

void event_rec_publish(core_rec_t *r, channel_t *ch, ntime_t now, eid_t id, const core_pub_t *p)
{
    memset(r, 0, sizeof(*r));
    r->type = CORE_REC_PUBLISH;
    r->now = now;
    r->channel = ch->name;
    r->channel_len = ch->name_len;
    r->id = id;
    r->at = p->publish_at;
    r->ttl_ns = p->ttl_ns;
    r->data = p->data;
    r->data_len = (uint32_t)p->len;
    r->attr = (uint8_t)(p->priority | (p->json ? CORE_ATTR_JSON : 0));
    r->key = p->key;
    r->key_len = (uint32_t)p->key_len;
}

event_t *core_publish(core_t *c, channel_t *ch, ntime_t now, const char *data, size_t len,
                      ntime_t publish_at, int64_t ttl_ns)
{
    event_t *e;
    core_pub_t p = {.data = data, .len = len, .publish_at = publish_at, .ttl_ns = ttl_ns};
    return core_publish_batch(c, ch, now, &p, 1, &e, NULL, NULL) == CORE_OK ? e : NULL;
}

/* Elements whose key is live in ch get that event in out[i]; elements
 * that repeat an earlier element's key get src[i] = 1 + its index. The
 * rest are new. Returns how many are not new. */
static size_t keys_resolve(channel_t *ch, const core_pub_t *pubs, size_t n, event_t **out,
                           uint32_t *src)
{
    strmap_t seen;
    strmap_init(&seen);
    size_t old = 0;
    for (size_t i = 0; i < n; i++) {
        const core_pub_t *p = &pubs[i];
        if (!p->key_len)
            continue;
        ASSERT(p->key_len <= CORE_MAX_KEY);
        void *first = strmap_get(&seen, p->key, p->key_len);
        if ((out[i] = strmap_get(&ch->keys, p->key, p->key_len)) != NULL || first) {
            src[i] = out[i] ? 0 : (uint32_t)(uintptr_t)first;
            old++;
        } else {
            strmap_put(&seen, p->key, p->key_len, (void *)(uintptr_t)(i + 1));
        }
    }
    strmap_free(&seen);
    return old;
}

static int any_key(const core_pub_t *pubs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pubs[i].key_len)
            return 1;
    return 0;
}

core_status_t core_publish_batch(core_t *c, channel_t *ch, ntime_t now, const core_pub_t *pubs,
                                 size_t n, event_t **out, uint8_t *replayed, size_t *created)
{
    now = core_clock(c, now);
    core_tick(c, now);
    uint32_t *src = NULL;
    memset(out, 0, n * sizeof(*out));
    if (any_key(pubs, n))
        keys_resolve(ch, pubs, n, out, src = xcalloc(n, sizeof(*src)));
    /* Ids are taken first so the records hold them; a failed commit only
     * skips some ids, which stay unique. */
    id_gen_t before = c->idgen;
    size_t fresh = 0, nfresh = n;
    for (size_t i = 0; src && i < n; i++)
        nfresh -= out[i] || src[i];
    for (size_t i = 0; i < n; i++) {
        if (out[i] || (src && src[i]))
            continue;
        core_rec_t r;
        event_rec_publish(&r, ch, now, id_gen_next(&c->idgen, now), &pubs[i]);
        r.more = fresh + 1 < nfresh; /* one change: replay keeps all or none */
        journal_add(c, &r);
        fresh++;
    }
    if (fresh && journal_commit(c) != 0) {
        free(src);
        return CORE_IO;
    }
    /* The generator is deterministic: replaying it from `before` gives the
     * ids the records hold. */
    id_gen_t again = before;
    for (size_t i = 0; i < n; i++) {
        int old = out[i] || (src && src[i]);
        if (replayed)
            replayed[i] = (uint8_t)old;
        if (!old)
            out[i] = event_create(c, ch, now, id_gen_next(&again, now), &pubs[i]);
        else if (!out[i])
            out[i] = out[src[i] - 1];
    }
    if (created)
        *created = fresh;
    free(src);
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
    return e && e->chan == ch->index ? e : NULL;
}

event_t *event_find_id(core_t *c, eid_t id)
{
    uint32_t i = *ids_slot(c, id);
    return i ? ev(c, i) : NULL;
}

event_t *core_event_get(core_t *c, channel_t *ch, ntime_t now, eid_t id)
{
    now = core_clock(c, now);
    return find(c, ch, now, id);
}

void event_lock_apply(core_t *c, event_t *e, ntime_t locked_until, uint64_t token)
{
    channel_t *ch = chan_of(c, e);
    if (e->deliveries < EVENT_MAX_DELIVERIES)
        e->deliveries++;
    e->dl_pending = 0;
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

void event_unlock_apply(core_t *c, event_t *e, ntime_t hold_until)
{
    if (event_state(e) == EVENT_LOCKED)
        event_lock_end(c, e);
    if (hold_until)
        event_hold(c, e, hold_until);
}

void event_extend_apply(core_t *c, event_t *e, ntime_t locked_until)
{
    lease_of(c, e)->locked_until = locked_until;
    reschedule(c, e);
}

void event_delete_apply(core_t *c, event_t *e)
{
    chan_of(c, e)->st.deleted++;
    c->counters.deleted++;
    event_remove(c, e);
}

void event_rec(core_rec_t *r, int type, ntime_t now, const core_t *c, const event_t *e)
{
    memset(r, 0, sizeof(*r));
    r->type = (uint8_t)type;
    r->now = now;
    r->channel = chan_of(c, e)->name;
    r->channel_len = chan_of(c, e)->name_len;
    r->id = event_id(e);
}

/* Journals one record and commits it. */
static int log1(core_t *c, const core_rec_t *r)
{
    journal_add(c, r);
    return journal_commit(c);
}

static int token_ok(const core_t *c, const event_t *e, const uint64_t *token)
{
    return !token || (event_state(e) == EVENT_LOCKED && event_lock_token(c, e) == *token);
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
    if (!token_ok(c, e, token)) {
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
    event_rec(&r, extend ? CORE_REC_EXTEND : CORE_REC_LOCK, now, c, e);
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
                          const uint64_t *token, int64_t delay_ns, event_t **out)
{
    core_status_t st;
    now = core_clock(c, now);
    event_t *e = target(c, ch, now, id, IN(EVENT_READY) | IN(EVENT_LOCKED), CORE_GONE, token, &st);
    if (!e)
        return st;
    *out = e;
    int locked = event_state(e) == EVENT_LOCKED;
    const char *dest;
    size_t dest_len;
    if (locked && dl_due(c, e, &dest, &dest_len) == 1)
        return dl_move(c, e, dest, dest_len, now, out);
    if (!locked && delay_ns <= 0)
        return CORE_OK;
    core_rec_t r;
    event_rec(&r, CORE_REC_UNLOCK, now, c, e);
    r.at = delay_ns > 0 ? ntime_add(now, delay_ns) : 0;
    if (log1(c, &r) != 0)
        return CORE_IO;
    event_unlock_apply(c, e, r.at);
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
    event_rec(&r, CORE_REC_DELETE, now, c, e);
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
    size_t n = 0, want = max < ch->st.ready ? max : ch->st.ready;
    while (n < want) {
        event_t *e = ready_first(c, ch);
        core_rec_t r;
        event_rec(&r, CORE_REC_LOCK, now, c, e);
        r.at = ntime_add(now, ttl_ns);
        r.token = core_token_next(c);
        r.more = n + 1 < want; /* one change: replay keeps all or none */
        journal_add(c, &r);
        event_lock_apply(c, e, r.at, r.token);
        out[n++] = e;
    }
    if (n > 0 && journal_commit(c) != 0) {
        while (n > 0) {
            event_t *e = out[--n];
            event_lock_end(c, e);
            e->deliveries--; /* the lock never happened */
        }
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
    core_pub_t p = {.data = r->data, .len = r->data_len, .publish_at = r->at, .ttl_ns = r->lives_until - r->at,
                    .priority = r->attr & CORE_ATTR_PRIO, .json = !!(r->attr & CORE_ATTR_JSON),
                    .key = r->key, .key_len = r->key_len};
    event_t *e = event_create(c, ch, at, r->id, &p);
    e->lives_until = r->lives_until; /* a held or moved event's ttl no longer spans it */
    uint64_t d = r->n_nums ? r->nums[0] : 0;
    e->deliveries = d > EVENT_MAX_DELIVERIES ? EVENT_MAX_DELIVERIES : (uint32_t)d;
    if (r->name_len)
        event_set_extras(e, r->key, r->key_len, r->name, r->name_len);
    id_gen_observe(&c->idgen, r->id);
    if (r->state == EVENT_SCHEDULED && (r->attr & CORE_ATTR_RETURNING))
        e->returning = 1;
    if (r->state == EVENT_LOCKED) {
        event_lock_apply(c, e, r->locked_until, r->token);
        e->deliveries--; /* restored, not a new delivery */
    }
}

void event_free_all(core_t *c)
{
    size_t n = c->counters.events;
    event_t **all = xmalloc((n + 1) * sizeof(*all));
    ASSERT(event_collect(c, all) == n);
    for (size_t i = 0; i < n; i++)
        if (!event_inline(all[i]))
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
