/*
 * mem_events.c -- the memory store's event operations: publish, list (in
 * pages), get, lock, unlock, extend, delete, acquire (see mem.h).
 */
#include "mem_int.h"

#include <string.h>
#include "base/util.h"

void mem_view_event(mem_t *m, store_event_t *v, const event_t *e)
{
    static const store_state_t states[] = {
        [EVENT_SCHEDULED] = STORE_SCHEDULED, [EVENT_READY] = STORE_READY, [EVENT_LOCKED] = STORE_LOCKED};
    v->id = event_id(e);
    v->state = states[event_state(e)];
    v->published_at = e->published_at;
    v->lives_until = e->lives_until;
    v->locked_until = event_locked_until(m->core, e);
    v->token = event_lock_token(m->core, e);
    v->data = event_data(e);
    v->data_len = e->data_len;
    v->data_json = e->json;
    v->priority = e->priority;
    v->deliveries = e->deliveries;
    size_t from_len;
    v->dead_lettered_from = event_dead_lettered_from(e, &from_len);
    v->dead_lettered_from_len = (uint32_t)from_len;
}

/* Completes an operation that answers one event (or fails, or, e NULL,
 * one that answers none: an UNLOCK that dropped its event). */
static void done_one(mem_t *m, store_res_t *res, const event_t *e, store_done_fn done, void *arg)
{
    store_event_t v;
    if ((res->status == STORE_OK || res->status == STORE_CREATED) && e) {
        mem_view_event(m, &v, e);
        res->events = &v;
        res->n_events = 1;
    }
    mem_done(m, res, done, arg);
}

/* Fails element i of n with a sentence (a batch's names the element). */
static int pub_fail(mem_t *m, store_res_t *res, size_t i, size_t n, const char *what)
{
    if (n > 1)
        mem_fail(m, res, STORE_INVALID, "events[%zu]: %s", i, what);
    else
        mem_fail(m, res, STORE_INVALID, "%s", what);
    return -1;
}

/* The request's publish times in the core's terms; 0, or -1 with res set
 * when an instant would reach 2262 (NTIME_END). */
static int pub_times(mem_t *m, const store_pub_t *p, size_t i, size_t n, ntime_t now, core_pub_t *out,
                     store_res_t *res)
{
    static const char *const too_long[] = {
        "field \"ttl\" is too long: now plus \"ttl\" must be before 2262-01-01",
        "field \"ttl\" is too long: \"publishAt\" plus \"ttl\" must be before 2262-01-01",
        "field \"ttl\" is too long: now plus \"publishIn\" plus \"ttl\" must be before 2262-01-01",
    };
    int from = p->has_publish_at ? 1 : p->publish_in_ns ? 2 : 0;
    out->data = p->data;
    out->len = p->data_len;
    out->ttl_ns = p->ttl_ns;
    out->publish_at = p->has_publish_at ? p->publish_at : now;
    if (from == 2) {
        if (!ntime_fits(now, p->publish_in_ns))
            return pub_fail(m, res, i, n,
                            "field \"publishIn\" is too long: now plus \"publishIn\" must be before 2262-01-01");
        out->publish_at = now + p->publish_in_ns;
    }
    if (!ntime_fits(out->publish_at, p->ttl_ns))
        return pub_fail(m, res, i, n, too_long[from]);
    out->priority = p->priority;
    out->json = p->data_json;
    out->key = p->key;
    out->key_len = p->key ? p->key_len : 0;
    return 0;
}

/* How many of the n publishes would make a new event: those whose key is
 * live in ch are answered with the live event instead. */
static size_t pub_new(mem_t *m, store_chan_t name, const core_pub_t *cp, size_t n, ntime_t now)
{
    channel_t *ch = mem_find(m, name);
    size_t fresh = n;
    for (size_t i = 0; ch && i < n; i++)
        if (cp[i].key_len && core_event_by_key(m->core, ch, now, cp[i].key, cp[i].key_len))
            fresh--;
    return fresh;
}

void mem_publish(store_t *s, store_chan_t name, const store_pub_t *pubs, size_t n, store_done_fn done,
                 void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    ntime_t now = mem_tick(m); /* what expired frees room first */
    core_pub_t one, *cp = n == 1 ? &one : xmalloc(n * sizeof(*cp));
    event_t *ev_one, **evs = n == 1 ? &ev_one : xmalloc(n * sizeof(*evs));
    uint8_t rp_one, *replayed = n == 1 ? &rp_one : xmalloc(n);
    channel_t *ch = NULL;
    int created;
    for (size_t i = 0; i < n; i++)
        if (pub_times(m, &pubs[i], i, n, now, &cp[i], &res) != 0)
            goto out;
    if (!(ch = mem_channel_for(m, name, pub_new(m, name, cp, n, now), &created, &res)))
        goto out;
    if (core_publish_batch(m->core, ch, now, cp, n, evs, replayed, &res.created) != CORE_OK) {
        mem_channel_undo(m, ch, created);
        mem_fail(m, &res, STORE_UNAVAILABLE, NULL);
        goto out;
    }
    store_event_t *v = mem_views(m, n);
    for (size_t i = 0; i < n; i++)
        mem_view_event(m, &v[i], evs[i]);
    res.status = res.created ? STORE_CREATED : STORE_REPLAYED;
    res.events = v;
    res.n_events = n;
    res.replayed = replayed;
out:
    mem_done(m, &res, done, arg);
    if (n > 1) {
        free(cp);
        free(evs);
        free(replayed);
    }
}

static const core_list_state_t list_states[] = {
    [STORE_LIST_VISIBLE] = CORE_LIST_VISIBLE, [STORE_LIST_READY] = CORE_LIST_READY,
    [STORE_LIST_LOCKED] = CORE_LIST_LOCKED, [STORE_LIST_SCHEDULED] = CORE_LIST_SCHEDULED};

/* How many events of ch a listing in state st may hold. */
static size_t list_bound(const channel_t *ch, store_list_state_t st)
{
    switch (st) {
    case STORE_LIST_READY: return ch->st.ready;
    case STORE_LIST_LOCKED: return ch->st.locked;
    case STORE_LIST_SCHEDULED: return ch->st.scheduled;
    default: return ch->st.ready + ch->st.locked;
    }
}

/* A page (or, limit 0, all) of ch's events in the listing's state. */
static void list_page(mem_t *m, channel_t *ch, const store_list_t *q, const core_cursor_t *after, ntime_t now,
                      store_res_t *res)
{
    core_list_state_t st = list_states[q->state];
    size_t bound = list_bound(ch, q->state);
    size_t limit = q->limit && q->limit < bound ? q->limit : bound;
    event_t **evs = xmalloc((limit + 1) * sizeof(*evs));
    int more = 0;
    core_cursor_t next;
    size_t n = core_list(m->core, ch, now, st, after, limit, evs, &more, &next);
    store_event_t *v = mem_views(m, n);
    for (size_t i = 0; i < n; i++)
        mem_view_event(m, &v[i], evs[i]);
    free(evs);
    res->events = v;
    res->n_events = n;
    if (q->limit && more && n) {
        core_cursor_format(st, &next, m->cursor);
        res->next = m->cursor;
        res->next_len = CORE_CURSOR_LEN;
    }
}

void mem_list(store_t *s, const store_list_t *q, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    ntime_t now = mem_tick(m);
    core_cursor_t after;
    if (q->after && core_cursor_parse(list_states[q->state], q->after, q->after_len, &after) != 0) {
        mem_fail(m, &res, STORE_INVALID,
                 "parameter \"after\" is not a cursor of this listing (pass the \"next\" of an earlier page "
                 "with the same \"state\")");
        mem_done(m, &res, done, arg);
        return;
    }
    channel_t *ch = mem_find(m, q->ch);
    if (ch && q->state == STORE_LIST_VISIBLE && !q->limit && !q->after) {
        /* Part A's listing: every visible event, no cursor. */
        size_t n = 0;
        store_event_t *v = mem_views(m, ch->st.ready + ch->st.locked);
        for (event_t *e = channel_first(ch); e; e = channel_next(ch, e))
            mem_view_event(m, &v[n++], e);
        res.events = v;
        res.n_events = n;
    } else if (ch) {
        list_page(m, ch, q, q->after ? &after : NULL, now, &res);
    }
    mem_done(m, &res, done, arg);
}

void mem_get(store_t *s, store_chan_t name, eid_t id, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    channel_t *ch = mem_find(m, name);
    event_t *e = ch ? core_event_get(m->core, ch, m->clock(), id) : NULL;
    if (!e)
        mem_fail(m, &res, STORE_NOT_FOUND, NULL);
    done_one(m, &res, e, done, arg);
}

/* Does a lock of ttl_ns from now end before 2262? Else res says so. */
static int lock_fits(mem_t *m, ntime_t now, int64_t ttl_ns, store_res_t *res)
{
    if (ntime_fits(now, ttl_ns))
        return 1;
    mem_fail(m, res, STORE_INVALID, "field \"ttl\" is too long: now plus the lock's \"ttl\" must be before 2262-01-01");
    return 0;
}

/* An operation on one event: an unknown channel holds no events, so the
 * answer is the one for an unknown event (st), and nothing is created. */
static channel_t *target_channel(mem_t *m, store_chan_t name, store_status_t st, store_res_t *res)
{
    channel_t *ch = mem_find(m, name);
    if (!ch)
        mem_fail(m, res, st, NULL);
    return ch;
}

/* LOCK (token NULL) or EXTEND: the lease ends at now + ttl_ns. */
static void lease(mem_t *m, store_chan_t name, eid_t id, int64_t ttl_ns, const uint64_t *token, int extend,
                  store_done_fn done, void *arg)
{
    store_res_t res = {0};
    event_t *e = NULL;
    ntime_t now = m->clock();
    channel_t *ch;
    if (lock_fits(m, now, ttl_ns, &res) && (ch = target_channel(m, name, STORE_GONE, &res)))
        res.status = mem_status_of(extend ? core_extend(m->core, ch, now, id, ttl_ns, token, &e)
                                      : core_lock(m->core, ch, now, id, ttl_ns, &e));
    done_one(m, &res, e, done, arg);
}

void mem_lock(store_t *s, store_chan_t name, eid_t id, int64_t ttl_ns, store_done_fn done, void *arg)
{
    lease(mem_of(s), name, id, ttl_ns, NULL, 0, done, arg);
}

void mem_unlock(store_t *s, store_chan_t name, eid_t id, const uint64_t *token, int64_t delay_ns,
                store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    event_t *e = NULL;
    ntime_t now = m->clock();
    channel_t *ch = NULL;
    if (delay_ns > 0 && !ntime_fits(now, delay_ns))
        mem_fail(m, &res, STORE_INVALID, "field \"delay\" is too long: now plus \"delay\" must be before 2262-01-01");
    else
        ch = target_channel(m, name, STORE_GONE, &res);
    /* An unlock at the delivery limit moves the event to another channel
     * or drops it: either way it is no longer in this one, and the answer
     * carries no event. */
    if (ch)
        res.status = mem_status_of(core_unlock(m->core, ch, now, id, token, delay_ns, &e));
    if (e && event_channel(m->core, e) != ch)
        e = NULL;
    done_one(m, &res, e, done, arg);
}

void mem_extend(store_t *s, store_chan_t name, eid_t id, int64_t ttl_ns, const uint64_t *token,
                store_done_fn done, void *arg)
{
    lease(mem_of(s), name, id, ttl_ns, token, 1, done, arg);
}

void mem_del(store_t *s, store_chan_t name, eid_t id, const uint64_t *token, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    channel_t *ch = target_channel(m, name, STORE_NOT_FOUND, &res);
    if (ch)
        res.status = mem_status_of(core_delete(m->core, ch, m->clock(), id, token));
    mem_done(m, &res, done, arg);
}

void mem_acquire(store_t *s, store_chan_t name, size_t max, int64_t ttl_ns, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    ntime_t now = m->clock();
    channel_t *ch = NULL;
    /* An unknown channel has nothing to hand out, and is not created. */
    if (!lock_fits(m, now, ttl_ns, &res) || !(ch = mem_find(m, name))) {
        mem_done(m, &res, done, arg);
        return;
    }
    event_t *one, **evs = max == 1 ? &one : xmalloc(max * sizeof(*evs));
    size_t n = core_acquire(m->core, ch, now, max, ttl_ns, evs);
    if (n == 0 && ch->st.ready > 0) {
        mem_fail(m, &res, STORE_UNAVAILABLE, NULL); /* there were events, but the locks could not be logged */
    } else {
        store_event_t *v = mem_views(m, n);
        for (size_t i = 0; i < n; i++)
            mem_view_event(m, &v[i], evs[i]);
        res.events = v;
        res.n_events = n;
    }
    if (evs != &one)
        free(evs);
    mem_done(m, &res, done, arg);
}
