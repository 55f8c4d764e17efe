/*
 * page.c -- a channel's events a page at a time, and the cursors that
 * name where a page ended.
 *
 * Visible orders (all visible, READY, LOCKED) walk the visible list, which
 * is in vseq order; a cursor holds the last event's vseq and id. While
 * that event is still visible at that vseq the next page starts right
 * after it (O(1)); otherwise (it was deleted, or left and came back) the
 * walk starts at the front and skips what is not after the position, so a
 * cursor never goes stale. SCHEDULED events have no order of their own:
 * a page collects the channel's scheduled list and sorts it by
 * (published_at, id), the order they will become visible in.
 */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>
#include "base/hex.h"
#include "base/util.h"

static const char cursor_tag[] = {
    [CORE_LIST_VISIBLE] = 'v', [CORE_LIST_READY] = 'r', [CORE_LIST_LOCKED] = 'l',
    [CORE_LIST_SCHEDULED] = 's'};

/* The text: the list's letter, then the position (at or vseq) and the id
 * as hex fields of 16, 16 and 8 digits. */
void core_cursor_format(core_list_state_t st, const core_cursor_t *cur, char out[CORE_CURSOR_LEN + 1])
{
    uint64_t first = st == CORE_LIST_SCHEDULED ? (uint64_t)cur->at : cur->vseq;
    char *p = out;
    *p++ = cursor_tag[st];
    p = hex_put(p, first, HEX_U64);
    p = hex_put(p, cur->id.hi, HEX_U64);
    *hex_put(p, cur->id.lo, 8) = '\0';
}

int core_cursor_parse(core_list_state_t st, const char *s, size_t len, core_cursor_t *out)
{
    uint64_t first, hi, lo;
    if (len != CORE_CURSOR_LEN || s[0] != cursor_tag[st] || hex_get(s + 1, HEX_U64, &first) != 0 ||
        hex_get(s + 17, HEX_U64, &hi) != 0 || hex_get(s + 33, 8, &lo) != 0)
        return -1;
    memset(out, 0, sizeof(*out));
    if (st == CORE_LIST_SCHEDULED)
        out->at = (ntime_t)first;
    else
        out->vseq = first;
    out->id.hi = hi;
    out->id.lo = (uint32_t)lo;
    return 0;
}

static int state_wanted(const event_t *e, core_list_state_t st)
{
    event_state_t s = event_state(e);
    return st == CORE_LIST_VISIBLE || (st == CORE_LIST_READY && s == EVENT_READY) ||
           (st == CORE_LIST_LOCKED && s == EVENT_LOCKED);
}

/* The first visible event after the cursor's position. */
static event_t *visible_after(core_t *c, channel_t *ch, const core_cursor_t *after)
{
    if (!after)
        return channel_first(ch);
    event_t *last = event_lookup(c, ch, after->id);
    if (last && event_state(last) != EVENT_SCHEDULED && event_vseq(c, last) == after->vseq)
        return channel_next(ch, last);
    event_t *e = channel_first(ch);
    while (e && event_vseq(c, e) <= after->vseq)
        e = channel_next(ch, e);
    return e;
}

static size_t list_visible(core_t *c, channel_t *ch, core_list_state_t st, const core_cursor_t *after,
                           size_t limit, event_t **out, int *more, core_cursor_t *next)
{
    size_t n = 0;
    event_t *e = visible_after(c, ch, after);
    for (; e && n < limit; e = channel_next(ch, e))
        if (state_wanted(e, st))
            out[n++] = e;
    while (e && !state_wanted(e, st) && st != CORE_LIST_VISIBLE)
        e = channel_next(ch, e);
    *more = e != NULL;
    if (n) {
        next->vseq = event_vseq(c, out[n - 1]);
        next->id = event_id(out[n - 1]);
    }
    return n;
}

static int sched_cmp(const void *a, const void *b)
{
    const event_t *x = *(event_t *const *)a, *y = *(event_t *const *)b;
    if (x->published_at != y->published_at)
        return x->published_at < y->published_at ? -1 : 1;
    return id_cmp(event_id(x), event_id(y));
}

/* Is e after the scheduled position cur? */
static int sched_after(const event_t *e, const core_cursor_t *cur)
{
    return e->published_at > cur->at || (e->published_at == cur->at && id_cmp(event_id(e), cur->id) > 0);
}

static size_t list_scheduled(core_t *c, channel_t *ch, const core_cursor_t *after, size_t limit,
                             event_t **out, int *more, core_cursor_t *next)
{
    event_t **all = xmalloc((ch->st.scheduled + 1) * sizeof(*all));
    size_t k = 0;
    for (uint32_t i = ch->shead; i; i = ((event_t *)slab_ptr(&c->events, i))->vnext) {
        event_t *e = slab_ptr(&c->events, i);
        if (!after || sched_after(e, after))
            all[k++] = e;
    }
    qsort(all, k, sizeof(*all), sched_cmp);
    size_t n = k < limit ? k : limit;
    memcpy(out, all, n * sizeof(*out));
    free(all);
    *more = k > n;
    if (n) {
        next->at = out[n - 1]->published_at;
        next->id = event_id(out[n - 1]);
    }
    return n;
}

size_t core_list(core_t *c, channel_t *ch, ntime_t now, core_list_state_t st,
                 const core_cursor_t *after, size_t limit, event_t **out, int *more,
                 core_cursor_t *next)
{
    core_tick(c, core_clock(c, now));
    core_cursor_t from; /* after and next may be one cursor */
    if (after) {
        from = *after;
        after = &from;
    }
    memset(next, 0, sizeof(*next));
    if (st == CORE_LIST_SCHEDULED)
        return list_scheduled(c, ch, after, limit, out, more, next);
    return list_visible(c, ch, st, after, limit, out, more, next);
}
