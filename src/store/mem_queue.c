/*
 * mem_queue.c -- the memory store's operations on a channel's queue as a
 * whole: its consumer settings, redriving dead letters, purging it and
 * deleting the channel (see mem.h).
 */
#include "mem_int.h"

#include <string.h>

static void view_settings(store_settings_t *v, const channel_t *ch)
{
    memset(v, 0, sizeof(*v));
    v->dead_letter_channel = "";
    if (!ch)
        return;
    v->max_deliveries = ch->set.max_deliveries;
    v->retry_delay_ns = ch->set.retry_delay_ns;
    if (ch->set.dlq_len) {
        v->dead_letter_channel = ch->set.dlq;
        v->dead_letter_channel_len = ch->set.dlq_len;
    }
}

static void done_settings(mem_t *m, store_res_t *res, const channel_t *ch, store_done_fn done, void *arg)
{
    store_settings_t v;
    if (res->status == STORE_OK) {
        view_settings(&v, ch);
        res->settings = &v;
    }
    mem_done(m, res, done, arg);
}

void mem_settings_get(store_t *s, store_chan_t name, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    mem_tick(m);
    done_settings(m, &res, mem_find(m, name), done, arg); /* a missing channel: the defaults */
}

/* The settings after the change p: the channel's, with p's fields over
 * them. The dead-letter name is copied into buf (the core frees the
 * channel's own copy when it takes the new settings). */
static channel_settings_t settings_merge(const channel_t *ch, const store_settings_put_t *p, char buf[256])
{
    channel_settings_t set = ch->set;
    memcpy(buf, set.dlq_len ? set.dlq : "", set.dlq_len);
    set.dlq = buf;
    if (p->has_max_deliveries)
        set.max_deliveries = p->v.max_deliveries;
    if (p->has_retry_delay)
        set.retry_delay_ns = p->v.retry_delay_ns;
    if (p->has_dead_letter_channel) {
        set.dlq = (char *)p->v.dead_letter_channel;
        set.dlq_len = p->v.dead_letter_channel_len;
    }
    return set;
}

void mem_settings_put(store_t *s, store_chan_t name, const store_settings_put_t *p, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    ntime_t now = mem_tick(m);
    if (p->has_dead_letter_channel && p->v.dead_letter_channel_len == name.len &&
        memcmp(p->v.dead_letter_channel, name.name, name.len) == 0) {
        mem_fail(m, &res, STORE_INVALID, "field \"deadLetterChannel\" names the channel itself");
        mem_done(m, &res, done, arg);
        return;
    }
    int created;
    channel_t *ch = mem_channel_for(m, name, 0, &created, &res);
    if (!ch) {
        mem_done(m, &res, done, arg);
        return;
    }
    char dlq[256];
    channel_settings_t set = settings_merge(ch, p, dlq);
    core_status_t st = core_settings_set(m->core, ch, now, &set);
    if (st != CORE_OK) {
        mem_channel_undo(m, ch, created);
        ch = NULL;
        if (st == CORE_INVALID)
            mem_fail(m, &res, STORE_INVALID, "the settings are out of range");
        else
            mem_fail(m, &res, STORE_UNAVAILABLE, NULL);
    }
    done_settings(m, &res, ch, done, arg);
}

void mem_redrive(store_t *s, store_chan_t name, const store_chan_t *to, size_t max, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    ntime_t now = mem_tick(m);
    channel_t *ch = mem_find(m, name);
    size_t fresh = ch ? core_redrive_new_channels(m->core, ch, to ? to->name : NULL, to ? to->len : 0, max) : 0;
    /* A missing channel holds no dead letters: nothing moves. The channels
     * the moves would make must fit, as for a publish; else none moves. */
    if (fresh && core_channel_count(m->core) + fresh > m->max_channels)
        mem_fail(m, &res, STORE_FULL, "the server holds its limit of %zu channels; nothing was changed, "
                 "try again later", m->max_channels);
    else if (ch && core_redrive(m->core, ch, now, to ? to->name : NULL, to ? to->len : 0, max, &res.count) != CORE_OK)
        mem_fail(m, &res, STORE_UNAVAILABLE, NULL);
    mem_done(m, &res, done, arg);
}

/* Purges ch's events (delete 0) or deletes the channel: STORE_NOT_FOUND
 * for a missing one, which neither makes. */
static void clear_channel(store_t *s, store_chan_t name, int delete, store_done_fn done, void *arg)
{
    mem_t *m = mem_of(s);
    store_res_t res = {0};
    ntime_t now = mem_tick(m);
    channel_t *ch = mem_find(m, name);
    core_status_t st = CORE_NOT_FOUND;
    if (ch)
        st = delete ? core_channel_delete(m->core, ch, now) : core_purge(m->core, ch, now, &res.count);
    res.status = mem_status_of(st);
    mem_done(m, &res, done, arg);
}

void mem_purge(store_t *s, store_chan_t name, store_done_fn done, void *arg)
{
    clear_channel(s, name, 0, done, arg);
}

void mem_channel_delete(store_t *s, store_chan_t name, store_done_fn done, void *arg)
{
    clear_channel(s, name, 1, done, arg);
}
