/*
 * deadletter.c -- what happens when a lock ends without a delete: the
 * delivery limit, dead-letter moves, the retry delay; a channel's
 * settings, and redrive (see "Deliveries and dead letters" in core.h).
 *
 * A move is a logged change of its own (DEAD_LETTER, REDRIVE), written
 * before it is applied, like a request's. A lock that lapses is not
 * logged, so replay meets the lapse first: at the limit it leaves the
 * event READY and marks it (dl_pending). The move's record, which live
 * was written in the same tick, then moves it. If no record follows (the
 * move was refused because the target was full, or the process died
 * between the lapse and the write), the mark stays, and once replay is
 * over and the log is attached, the move is tried again: never lost,
 * never done twice. A retry delay is derived from the lock's end and the
 * settings in force, both in the log, so replay recomputes it.
 */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>
#include "base/util.h"

/* Would one more event pass the per-channel limit? */
static int chan_full(const core_t *c, const channel_t *ch)
{
    return c->max_channel_events &&
           ch->st.ready + ch->st.scheduled + ch->st.locked >= c->max_channel_events;
}

int dl_due(core_t *c, event_t *e, const char **dest, size_t *dest_len)
{
    channel_t *ch = chan_of(c, e);
    if (!ch->set.max_deliveries || e->deliveries < ch->set.max_deliveries)
        return 0;
    *dest = ch->set.dlq;
    *dest_len = ch->set.dlq_len;
    channel_t *d = *dest_len ? core_channel_find(c, *dest, *dest_len) : NULL;
    if (d && chan_full(c, d)) {
        ch->st.dl_failed++;
        c->counters.dl_failed++;
        return -1;
    }
    return 1;
}

event_t *dl_move_apply(core_t *c, event_t *e, const char *to, size_t to_len, ntime_t now, int redrive)
{
    channel_t *src = chan_of(c, e);
    if (event_state(e) == EVENT_LOCKED)
        event_lock_end(c, e);
    e->dl_pending = 0;
    if (!redrive) {
        src->st.dead_lettered++;
        c->counters.dead_lettered++;
    }
    if (!to_len) {
        event_remove(c, e);
        return NULL;
    }
    channel_t *dest = core_channel(c, to, to_len);
    size_t klen;
    const char *key = event_key(e, &klen);
    if (redrive) {
        event_set_extras(e, key, klen, NULL, 0);
        e->deliveries = 0;
    } else {
        event_set_extras(e, key, klen, src->name, src->name_len);
    }
    event_move_to(c, e, dest, now);
    return e;
}

core_status_t dl_move(core_t *c, event_t *e, const char *dest, size_t dest_len, ntime_t now,
                      event_t **out)
{
    core_rec_t r;
    event_rec(&r, CORE_REC_DEAD_LETTER, now, c, e);
    r.name = dest;
    r.name_len = (uint32_t)dest_len;
    journal_add(c, &r);
    if (journal_commit(c) != 0)
        return CORE_IO;
    *out = dl_move_apply(c, e, dest, dest_len, now, 0);
    return CORE_OK;
}

event_t *dl_lock_ended(core_t *c, event_t *e, ntime_t now, ntime_t ended_at, int lapsed)
{
    const char *dest;
    size_t dest_len;
    channel_t *ch = chan_of(c, e);
    int due = dl_due(c, e, &dest, &dest_len);
    if (due == 1 && c->replaying) {
        e->dl_pending = 1;
        if (c->n_dl_pending == c->cap_dl_pending) {
            c->cap_dl_pending = c->cap_dl_pending ? 2 * c->cap_dl_pending : 16;
            c->dl_pending = xrealloc(c->dl_pending, c->cap_dl_pending * sizeof(*c->dl_pending));
        }
        c->dl_pending[c->n_dl_pending++] = event_id(e);
        return e;
    }
    if (due == 1) {
        event_t *moved;
        /* Not logged: it stays READY; the next lock's end tries again. */
        return dl_move(c, e, dest, dest_len, now, &moved) == CORE_OK ? moved : e;
    }
    if (due == 0 && lapsed && ch->set.retry_delay_ns > 0)
        event_hold(c, e, ntime_add(ended_at, ch->set.retry_delay_ns));
    return e;
}

void dl_settle(core_t *c, ntime_t now)
{
    eid_t *ids = c->dl_pending;
    size_t n = c->n_dl_pending;
    c->dl_pending = NULL;
    c->n_dl_pending = c->cap_dl_pending = 0;
    for (size_t i = 0; i < n; i++) {
        event_t *e = event_find_id(c, ids[i]);
        if (e && e->dl_pending && event_state(e) == EVENT_READY) {
            e->dl_pending = 0;
            dl_lock_ended(c, e, now, now, 0);
        }
    }
    free(ids);
}

/* ---- settings ---- */

void settings_apply(core_t *c, channel_t *ch, const channel_settings_t *s)
{
    (void)c;
    free(ch->set.dlq);
    ch->set = *s;
    ch->set.dlq = s->dlq_len ? xstrndup(s->dlq, s->dlq_len) : NULL;
}

core_status_t core_settings_set(core_t *c, channel_t *ch, ntime_t now, const channel_settings_t *s)
{
    now = core_clock(c, now);
    if (s->dlq_len > 255 || s->retry_delay_ns < 0 ||
        (s->dlq_len == ch->name_len && memcmp(s->dlq, ch->name, ch->name_len) == 0))
        return CORE_INVALID;
    core_tick(c, now);
    core_rec_t r = {.type = CORE_REC_SETTINGS, .now = now, .channel = ch->name,
                    .channel_len = ch->name_len, .n_nums = s->max_deliveries ? 1 : 0, .nums = {s->max_deliveries},
                    .ttl_ns = s->retry_delay_ns, .name = s->dlq, .name_len = s->dlq_len};
    journal_add(c, &r);
    if (journal_commit(c) != 0)
        return CORE_IO;
    settings_apply(c, ch, s);
    return CORE_OK;
}

/* ---- redrive ---- */

/* Where a redrive sends e: `to`, else back where it came from. */
static const char *redrive_target(const event_t *e, const char *to, size_t to_len, size_t *len)
{
    if (to) {
        *len = to_len;
        return to;
    }
    return event_dead_lettered_from(e, len);
}

core_status_t core_redrive(core_t *c, channel_t *ch, ntime_t now, const char *to, size_t to_len,
                           size_t max, uint64_t *moved)
{
    *moved = 0;
    if (to && (to_len == 0 || to_len > 255))
        return CORE_INVALID;
    now = core_clock(c, now);
    core_tick(c, now);
    event_t *e = channel_first(ch);
    while (e && (!max || *moved < max)) {
        event_t *next = channel_next(ch, e);
        size_t from_len, len;
        const char *dest = redrive_target(e, to, to_len, &len);
        channel_t *d = len ? core_channel_find(c, dest, len) : NULL;
        if (event_state(e) != EVENT_READY || !event_dead_lettered_from(e, &from_len)) {
            /* not a dead letter waiting */
        } else if (d && chan_full(c, d)) {
            ch->st.dl_failed++;
            c->counters.dl_failed++;
        } else {
            core_rec_t r;
            event_rec(&r, CORE_REC_REDRIVE, now, c, e);
            r.name = dest;
            r.name_len = (uint32_t)len;
            journal_add(c, &r);
            if (journal_commit(c) != 0) /* each move stands alone */
                return *moved ? CORE_OK : CORE_IO;
            /* dest may point into e's extras, which the move rewrites */
            char buf[256];
            memcpy(buf, dest, len);
            dl_move_apply(c, e, buf, len, now, 1);
            ++*moved;
        }
        e = next;
    }
    return CORE_OK;
}

size_t core_redrive_new_channels(core_t *c, const channel_t *ch, const char *to, size_t to_len, size_t max)
{
    strmap_t seen; /* targets without a channel, counted once each */
    strmap_init(&seen);
    size_t n = 0, looked = 0;
    for (event_t *e = channel_first(ch); e && (!max || looked < max); e = channel_next(ch, e)) {
        size_t from_len, len;
        if (event_state(e) != EVENT_READY || !event_dead_lettered_from(e, &from_len))
            continue;
        looked++;
        const char *dest = redrive_target(e, to, to_len, &len);
        if (core_channel_find(c, dest, len) || strmap_get(&seen, dest, len))
            continue;
        strmap_put(&seen, dest, len, (void *)1);
        n++;
    }
    strmap_free(&seen);
    return n;
}
