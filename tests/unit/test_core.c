/*
 * test_core.c -- the core as a plain library: timers, the event lifecycle,
 * leases, acquire order, jobs. Time is passed in, so nothing sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/core.h"
#include "base/timers.h"

#define S NTIME_NS_PER_S
#define MS NTIME_NS_PER_MS
static const ntime_t T0 = 1790000000LL * S; /* 2026-09-21 */

/* ---- timers ---- */

static void test_timers_order_and_ties(void **state)
{
    (void)state;
    timers_t t;
    timers_init(&t);
    tnode_t n[6];
    memset(n, 0, sizeof(n));
    ntime_t at[6] = {50, 10, 30, 10, 40, 10};
    for (int i = 0; i < 6; i++)
        timers_set(&t, &n[i], at[i], (uint8_t)i);
    /* equal times come out in the order they were first scheduled */
    tnode_t *want[6] = {&n[1], &n[3], &n[5], &n[2], &n[4], &n[0]};
    for (int i = 0; i < 6; i++) {
        uint8_t kind;
        assert_ptr_equal(timers_pop_due(&t, 100, &kind), want[i]);
        assert_int_equal(kind, want[i] - n); /* the tag given when scheduled */
    }
    assert_null(timers_pop_due(&t, 100, NULL));
    timers_free(&t);
}

static void test_timers_move_and_cancel(void **state)
{
    (void)state;
    timers_t t;
    timers_init(&t);
    tnode_t n[100];
    memset(n, 0, sizeof(n));
    for (int i = 0; i < 100; i++)
        timers_set(&t, &n[i], 1000 + (i * 37) % 100, 0);
    for (int i = 0; i < 100; i += 3)
        timers_cancel(&t, &n[i]);
    for (int i = 1; i < 100; i += 3)
        timers_set(&t, &n[i], 5000 - i, 0); /* move later, reversed */
    timers_cancel(&t, &n[0]); /* not scheduled: nothing happens */
    ntime_t last = 0;
    int count = 0;
    tnode_t *x;
    while ((x = timers_peek(&t)) != NULL) {
        ntime_t at = timers_at(&t, x);
        assert_ptr_equal(timers_pop_due(&t, 1 << 20, NULL), x);
        assert_true(at >= last);
        assert_int_equal(x->index, 0);
        last = at;
        count++;
    }
    assert_int_equal(count, 100 - 34);
    timers_free(&t);
}

static void test_timers_wait_rounds_up(void **state)
{
    (void)state;
    timers_t t;
    timers_init(&t);
    assert_int_equal(timers_wait_ms(&t, 0, -1), -1); /* nothing: sleep until woken */
    assert_int_equal(timers_wait_ms(&t, 0, 250), 250);
    tnode_t n = {0};
    timers_set(&t, &n, 10 * MS + 1, 0);
    assert_int_equal(timers_wait_ms(&t, 0, -1), 11);   /* never wake early */
    assert_int_equal(timers_wait_ms(&t, 0, 5), 5);
    assert_int_equal(timers_wait_ms(&t, 10 * MS, -1), 1);
    assert_int_equal(timers_wait_ms(&t, 10 * MS + 1, -1), 0);
    assert_int_equal(timers_wait_ms(&t, 20 * MS, -1), 0); /* overdue */
    timers_set(&t, &n, (ntime_t)1 << 62, 0);
    assert_int_equal(timers_wait_ms(&t, 0, -1), INT32_MAX);
    timers_free(&t);
}

static void test_timers_wake_at_coalesces(void **state)
{
    (void)state;
    timers_t t;
    timers_init(&t);
    assert_true(timers_wake_at(&t, MS) == NTIME_MAX);
    /* Deadlines at 10.0, 10.3, 10.6, 10.9, 11.2 ms and 50 ms, added out of order. */
    static const int64_t us[] = {10900, 50000, 10000, 11200, 10600, 10300};
    tnode_t n[6] = {{0}};
    for (int i = 0; i < 6; i++)
        timers_set(&t, &n[i], us[i] * 1000, 0);
    assert_true(timers_wake_at(&t, 0) == 10 * MS);            /* exact */
    assert_true(timers_wake_at(&t, 500000) == 10300000);      /* 10.0 + 0.5 */
    assert_true(timers_wake_at(&t, MS) == 10900000);          /* never past the window */
    assert_true(timers_wake_at(&t, 100 * MS) == 50 * MS);
    assert_true(timers_wake_at(&t, INT64_MAX) == 50 * MS);    /* no overflow */
    /* Many deadlines inside the window: the walk stops early, and still
     * never answers a time past the window. */
    tnode_t many[1000] = {{0}};
    for (int i = 0; i < 1000; i++)
        timers_set(&t, &many[i], 10 * MS + i, 0);
    ntime_t w = timers_wake_at(&t, MS);
    assert_true(w >= 10 * MS && w <= 11 * MS);
    timers_free(&t);
}

/* ---- events ---- */

/* e's data is the string want (event data is not NUL-terminated). */
static void assert_data(const event_t *e, const char *want)
{
    assert_int_equal(e->data_len, strlen(want));
    assert_memory_equal(event_data(e), want, e->data_len);
}

static event_t *pub(core_t *c, channel_t *ch, ntime_t now, const char *data, ntime_t at, int64_t ttl)
{
    event_t *e = core_publish(c, ch, now, data, strlen(data), at, ttl);
    assert_non_null(e);
    return e;
}

/* The data of the visible events, in queue order, joined by ','. */
static const char *queue(channel_t *ch)
{
    static char buf[256];
    buf[0] = '\0';
    for (event_t *e = channel_first(ch); e; e = channel_next(ch, e)) {
        if (buf[0])
            strcat(buf, ",");
        strncat(buf, event_data(e), e->data_len);
    }
    return buf;
}

static void test_publish_delay_expire(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    pub(c, ch, T0, "a", T0, 10 * S);
    event_t *late = pub(c, ch, T0, "late", T0 + 2 * S, 10 * S);
    eid_t late_id = event_id(late);
    pub(c, ch, T0 + 1 * S, "b", T0 + 1 * S, 10 * S);
    assert_string_equal(queue(ch), "a,b");
    assert_int_equal(ch->st.scheduled, 1);
    assert_int_equal(core_wait_ms(c, T0 + 1 * S, -1), 1000);
    assert_true(core_next_at(c, 0) == T0 + 2 * S); /* to the nanosecond */
    core_tick(c, T0 + 2 * S);
    assert_string_equal(queue(ch), "a,b,late"); /* in the order they became visible */
    event_t *e = core_event_get(c, ch, T0 + 2 * S, late_id);
    assert_int_equal(event_state(e), EVENT_READY);
    core_tick(c, T0 + 10 * S); /* "a" lives until exactly T0+10s */
    assert_string_equal(queue(ch), "b,late");
    assert_int_equal(ch->st.expired, 1);
    core_tick(c, T0 + 12 * S);
    assert_string_equal(queue(ch), "");
    assert_int_equal(core_counters(c)->events, 0);
    assert_int_equal(core_wait_ms(c, T0 + 12 * S, -1), -1); /* nothing due: no wake-ups */
    assert_true(core_next_at(c, MS) == NTIME_MAX);
    core_free(c);
}

static int listed(const event_t *e)
{
    return (e->xnext & EVENT_XLISTED) != 0;
}

/* READY events that expire in order share their channel's one timer entry;
 * others keep their own, and each still goes at its own lives_until. */
static void test_expiry_list(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1), *other = core_channel(c, "o", 1);
    event_t *a = pub(c, ch, T0, "a", T0, 10 * S);
    eid_t a_id = event_id(a);
    event_t *b = pub(c, ch, T0 + 1 * S, "b", T0 + 1 * S, 10 * S);
    eid_t b_id = event_id(b);
    event_t *x = pub(c, ch, T0 + 1 * S, "x", T0 + 1 * S, 3 * S); /* before b's end */
    event_t *d = pub(c, ch, T0 + 2 * S, "d", T0 + 2 * S, 10 * S);
    event_t *y = pub(c, ch, T0 + 2 * S, "y", T0 + 2 * S, 10 * S); /* same end as d */
    event_t *s = pub(c, ch, T0 + 2 * S, "s", T0 + 5 * S, 1 * S);  /* scheduled */
    event_t *o = pub(c, other, T0 + 2 * S, "o", T0 + 2 * S, 2500 * MS);
    assert_true(listed(a) && listed(b) && listed(d) && listed(y) && listed(o));
    assert_false(listed(x) || listed(s));
    assert_true(core_next_at(c, 0) == T0 + 4 * S); /* x comes first */
    /* out of the middle, then the head leaves when locked */
    assert_int_equal(core_delete(c, ch, T0 + 3 * S, b_id, NULL), CORE_OK);
    event_t *got;
    assert_int_equal(core_lock(c, ch, T0 + 3 * S, a_id, 1 * S, &got), CORE_OK);
    assert_false(listed(got));
    assert_true(core_next_at(c, 0) == T0 + 4 * S);
    core_tick(c, T0 + 4 * S); /* a's lock ends, x expires */
    assert_string_equal(queue(ch), "a,d,y");
    a = core_event_get(c, ch, T0 + 4 * S, a_id);
    assert_int_equal(event_state(a), EVENT_READY);
    assert_false(listed(a)); /* it ends before the list's last: its own entry */
    core_tick(c, T0 + 4500 * MS); /* o's channel: its one event */
    assert_string_equal(queue(other), "");
    core_tick(c, T0 + 5 * S); /* s becomes visible, ends before d: not listed */
    assert_string_equal(queue(ch), "a,d,y,s");
    core_tick(c, T0 + 6 * S);
    core_tick(c, T0 + 10 * S - 1);
    assert_string_equal(queue(ch), "a,d,y");
    core_tick(c, T0 + 10 * S);
    assert_string_equal(queue(ch), "d,y");
    core_tick(c, T0 + 12 * S - 1);
    assert_string_equal(queue(ch), "d,y");
    core_tick(c, T0 + 12 * S); /* both at the same instant */
    assert_string_equal(queue(ch), "");
    assert_int_equal(ch->st.expired, 5); /* x s a d y; b was deleted */
    assert_true(core_next_at(c, 0) == NTIME_MAX);
    /* an emptied list starts again */
    event_t *z = pub(c, ch, T0 + 13 * S, "z", T0 + 13 * S, 1 * S);
    assert_true(listed(z));
    assert_true(core_next_at(c, 0) == T0 + 14 * S);
    core_free(c);
}

static void test_lock_unlock_keeps_place(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    event_t *a = pub(c, ch, T0, "a", T0, 60 * S);
    eid_t ida = event_id(a);
    pub(c, ch, T0, "b", T0, 60 * S);
    event_t *out;
    assert_int_equal(core_lock(c, ch, T0, ida, 5 * S, &out), CORE_OK);
    uint64_t token = event_lock_token(c, out);
    assert_int_not_equal(token, 0);
    assert_int_equal(core_lock(c, ch, T0, ida, 5 * S, &out), CORE_GONE); /* exactly one wins */
    uint64_t wrong = token + 1;
    assert_int_equal(core_unlock(c, ch, T0, ida, &wrong, 0, &out), CORE_CONFLICT);
    assert_int_equal(core_delete(c, ch, T0, ida, &wrong), CORE_CONFLICT);
    assert_int_equal(core_extend(c, ch, T0 + 1 * S, ida, 10 * S, &token, &out), CORE_OK);
    assert_int_equal(event_locked_until(c, out), T0 + 11 * S);
    assert_int_equal(event_lock_token(c, out), token); /* EXTEND keeps the token */
    core_tick(c, T0 + 11 * S);                 /* the lock runs out */
    assert_int_equal(event_state(core_event_get(c, ch, T0 + 11 * S, ida)), EVENT_READY);
    assert_int_equal(ch->st.lock_expired, 1);
    assert_string_equal(queue(ch), "a,b");
    event_t *got[2];
    assert_int_equal(core_acquire(c, ch, T0 + 11 * S, 1, S, got), 1);
    assert_data(got[0], "a"); /* back at its place: oldest first */
    /* the stale token of the first lock cannot delete it now */
    assert_int_equal(core_delete(c, ch, T0 + 11 * S, ida, &token), CORE_CONFLICT);
    uint64_t now_token = event_lock_token(c, got[0]);
    assert_int_not_equal(now_token, token);
    assert_int_equal(core_delete(c, ch, T0 + 11 * S, ida, &now_token), CORE_OK);
    assert_int_equal(core_delete(c, ch, T0 + 11 * S, ida, NULL), CORE_NOT_FOUND);
    core_free(c);
}

static void test_acquire_skips_locked_oldest_first(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    char name[16];
    eid_t ids[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "%d", i);
        ids[i] = event_id(pub(c, ch, T0, name, T0, 3600 * S));
    }
    event_t *out;
    for (int i = 0; i < 1000; i += 2) /* lock every even one */
        assert_int_equal(core_lock(c, ch, T0, ids[i], 60 * S, &out), CORE_OK);
    assert_int_equal(core_unlock(c, ch, T0, ids[500], NULL, 0, &out), CORE_OK);
    event_t *got[10];
    assert_int_equal(core_acquire(c, ch, T0, 3, 60 * S, got), 3);
    assert_data(got[0], "1");
    assert_data(got[1], "3");
    assert_data(got[2], "5");
    event_t *all[600];
    size_t n = core_acquire(c, ch, T0, 600, 60 * S, all);
    assert_int_equal(n, 498); /* 497 odd ones left, and 500 */
    assert_int_equal(ch->st.ready, 0);
    assert_int_equal(ch->st.locked, 1000);
    core_free(c);
}

static void test_delete_cancels_scheduled(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    channel_t *other = core_channel(c, "d", 1);
    eid_t id = event_id(pub(c, ch, T0, "x", T0 + 5 * S, 60 * S));
    event_t *out;
    assert_int_equal(core_lock(c, ch, T0, id, S, &out), CORE_GONE); /* not yet published */
    assert_null(core_event_get(c, other, T0, id));                  /* not in that channel */
    assert_int_equal(core_delete(c, other, T0, id, NULL), CORE_NOT_FOUND);
    assert_int_equal(core_delete(c, ch, T0, id, NULL), CORE_OK);
    core_tick(c, T0 + 10 * S);
    assert_string_equal(queue(ch), "");
    assert_int_equal(ch->st.published, 0);
    core_free(c);
}

/* ---- jobs ---- */

static void test_job_fires_once_per_time_never_early(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    job_t *j;
    char err[256];
    assert_int_equal(core_job_add(c, ch, T0, "j", 1, "@every 1s", 9, "tick", 4, 60 * S, &j, err, sizeof(err)),
                     CORE_OK);
    assert_int_equal(j->next_at, T0 + S);
    assert_int_equal(core_job_add(c, ch, T0, "j", 1, "@hourly", 7, "", 0, S, &j, err, sizeof(err)),
                     CORE_CONFLICT);
    core_tick(c, T0 + S - 1);
    assert_int_equal(ch->st.ready, 0); /* never early */
    core_tick(c, T0 + S);
    core_tick(c, T0 + S); /* the same time again: no second fire */
    assert_int_equal(ch->st.ready, 1);
    core_tick(c, T0 + 5 * S + 300 * MS); /* a late turn skips the missed times */
    assert_int_equal(ch->st.ready, 2);
    j = core_job_get(c, ch, "j", 1);
    assert_int_equal(j->next_at, T0 + 6 * S); /* the phase is kept */
    assert_int_equal(core_job_delete(c, ch, T0 + 6 * S, "j", 1), CORE_OK);
    core_tick(c, T0 + 60 * S);
    assert_int_equal(ch->st.ready, 2);
    assert_int_equal(core_job_add(c, ch, T0, "k", 1, "61 * * * *", 10, "", 0, S, &j, err, sizeof(err)),
                     CORE_INVALID);
    assert_true(strlen(err) > 0);
    core_free(c);
}

/* Lease tokens: sixteen lower-case hex digits, most significant first,
 * and back. */
static void test_token_format(void **state)
{
    (void)state;
    char out[TOKEN_LEN + 1];
    token_format(0x0123456789abcdefULL, out);
    assert_string_equal(out, "0123456789abcdef");
    token_format(0, out);
    assert_string_equal(out, "0000000000000000");
    token_format(UINT64_MAX, out);
    assert_string_equal(out, "ffffffffffffffff");
    uint64_t v = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 10000; i++) {
        v = v * 6364136223846793005ULL + 1442695040888963407ULL;
        char want[TOKEN_LEN + 1];
        snprintf(want, sizeof want, "%016llx", (unsigned long long)v);
        token_format(v, out);
        assert_string_equal(out, want);
        uint64_t back;
        assert_int_equal(token_parse(out, TOKEN_LEN, &back), 0);
        assert_true(back == v);
    }
}

/* A channel can be dropped while it holds nothing; the others stay. */
static void test_channel_drop(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *keep = core_channel(c, "keep", 4);
    pub(c, keep, T0, "a", T0, 10 * S);
    channel_t *ch = core_channel(c, "gone", 4);
    assert_int_equal(core_channel_count(c), 2);
    core_channel_drop(c, ch);
    assert_int_equal(core_channel_count(c), 1);
    assert_null(core_channel_find(c, "gone", 4));
    assert_ptr_equal(core_channel_find(c, "keep", 4), keep);
    assert_string_equal(queue(keep), "a");
    ch = core_channel(c, "gone", 4); /* the name is free again */
    assert_int_equal(ch->st.published, 0);
    core_free(c);
}

/* Sums of times and durations saturate instead of wrapping. */
static void test_time_sums_saturate(void **state)
{
    (void)state;
    assert_true(ntime_add(T0, S) == T0 + S);
    assert_true(ntime_add(NTIME_MAX - 1, 2) == NTIME_MAX);
    assert_true(ntime_add(-5 * S, 2 * S) == -3 * S);
    assert_true(ntime_add(INT64_MIN, INT64_MAX) == -1);
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    event_t *e = pub(c, ch, T0, "x", NTIME_MAX - S, 2 * S);
    assert_true(e->lives_until == NTIME_MAX);
    core_free(c);
}

/* ---- consumers: priorities, keys, deliveries, dead letters, pages ---- */

static event_t *pubp(core_t *c, channel_t *ch, ntime_t now, const char *data, int prio, const char *key)
{
    core_pub_t p = {.data = data, .len = strlen(data), .publish_at = now, .ttl_ns = 600 * S,
                    .priority = (uint8_t)prio, .key = key, .key_len = key ? strlen(key) : 0};
    event_t *e;
    assert_int_equal(core_publish_batch(c, ch, now, &p, 1, &e, NULL, NULL), CORE_OK);
    return e;
}

/* The data of events[0..n), joined by ','. */
static const char *joined(event_t *const *events, size_t n)
{
    static char buf[256];
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (buf[0])
            strcat(buf, ",");
        strncat(buf, event_data(events[i]), events[i]->data_len);
    }
    return buf;
}

static void test_priority_order(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    const char *data[] = {"a5", "b0", "c9", "d0", "e5", "f1"};
    int prio[] = {5, 0, 9, 0, 5, 1};
    for (int i = 0; i < 6; i++)
        pubp(c, ch, T0 + i, data[i], prio[i], NULL);
    event_t *got[6];
    assert_int_equal(core_acquire(c, ch, T0 + 10, 1, S, got), 1);
    assert_string_equal(joined(got, 1), "b0");
    assert_int_equal(core_acquire(c, ch, T0 + 10, 6, S, got), 5);
    assert_string_equal(joined(got, 5), "d0,f1,a5,e5,c9");
    assert_string_equal(queue(ch), "a5,b0,c9,d0,e5,f1"); /* the listing keeps its order */
    core_tick(c, T0 + 10 + S); /* the locks lapse: each back in its place */
    assert_int_equal(core_acquire(c, ch, T0 + 2 * S, 6, S, got), 6);
    assert_string_equal(joined(got, 6), "b0,d0,f1,a5,e5,c9");
    assert_int_equal(got[0]->deliveries, 2);
    assert_int_equal(got[0]->priority, 0);
    core_free(c);
}

static void test_idempotency_keys(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1), *other = core_channel(c, "o", 1);
    event_t *first = pubp(c, ch, T0, "one", 0, "k1");
    eid_t id1 = event_id(first);
    core_pub_t p[3] = {
        {.data = "x", .len = 1, .publish_at = T0, .ttl_ns = S, .key = "k2", .key_len = 2},
        {.data = "y", .len = 1, .publish_at = T0, .ttl_ns = S, .key = "k2", .key_len = 2},
        {.data = "z", .len = 1, .publish_at = T0, .ttl_ns = S, .key = "k1", .key_len = 2},
    };
    event_t *out[3];
    uint8_t rep[3];
    size_t created;
    assert_int_equal(core_publish_batch(c, ch, T0, p, 3, out, rep, &created), CORE_OK);
    assert_int_equal(created, 1);
    assert_int_equal(rep[0], 0);
    assert_int_equal(rep[1], 1);
    assert_int_equal(rep[2], 1);
    assert_ptr_equal(out[1], out[0]);
    assert_int_equal(id_cmp(event_id(out[2]), id1), 0);
    assert_data(out[2], "one");
    assert_int_equal(ch->st.ready, 2);
    size_t klen;
    assert_memory_equal(event_key(out[0], &klen), "k2", 2);
    assert_data(out[0], "x"); /* short data moved out of line stays whole */
    assert_non_null(pubp(c, other, T0, "o", 0, "k1")); /* keys are per channel */
    assert_int_equal(core_delete(c, ch, T0, id1, NULL), CORE_OK);
    assert_null(core_event_by_key(c, ch, T0, "k1", 2)); /* it went with the event */
    event_t *again = pubp(c, ch, T0, "two", 0, "k1");
    assert_int_equal(id_cmp(event_id(again), id1) > 0, 1);
    core_tick(c, T0 + 2 * S); /* x expires: k2 is free */
    assert_null(core_event_by_key(c, ch, T0 + 2 * S, "k2", 2));
    core_free(c);
}

static void set_dlq(core_t *c, channel_t *ch, uint32_t max, const char *dlq, int64_t retry)
{
    channel_settings_t s = {.max_deliveries = max, .retry_delay_ns = retry, .dlq = (char *)dlq,
                            .dlq_len = dlq ? (uint32_t)strlen(dlq) : 0};
    assert_int_equal(core_settings_set(c, ch, T0, &s), CORE_OK);
}

static void test_dead_letter_on_lapse(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    set_dlq(c, ch, 2, "dead", 0);
    channel_settings_t self = {.dlq = "c", .dlq_len = 1};
    assert_int_equal(core_settings_set(c, ch, T0, &self), CORE_INVALID);
    eid_t id = event_id(pubp(c, ch, T0, "poison", 3, "key"));
    event_t *e;
    assert_int_equal(core_acquire(c, ch, T0, 1, S, &e), 1);
    core_tick(c, T0 + S); /* first delivery lapses: below the limit */
    assert_int_equal(ch->st.ready, 1);
    assert_int_equal(core_acquire(c, ch, T0 + S, 1, S, &e), 1);
    uint64_t token = event_lock_token(c, e);
    core_tick(c, T0 + 3 * S); /* the second lapses at the limit: moved */
    channel_t *dead = core_channel_find(c, "dead", 4);
    assert_non_null(dead);
    assert_null(core_event_get(c, ch, T0 + 3 * S, id));
    e = core_event_get(c, dead, T0 + 3 * S, id);
    assert_non_null(e);
    assert_int_equal(event_state(e), EVENT_READY);
    assert_int_equal(e->deliveries, 2);
    assert_int_equal(e->priority, 3);
    assert_true(e->published_at == T0 + 3 * S);
    assert_true(e->lives_until == T0 + 600 * S);
    size_t len;
    assert_memory_equal(event_dead_lettered_from(e, &len), "c", 1);
    assert_memory_equal(event_key(e, &len), "key", 3);
    assert_ptr_equal(core_event_by_key(c, dead, T0 + 3 * S, "key", 3), e);
    assert_null(core_event_by_key(c, ch, T0 + 3 * S, "key", 3));
    assert_int_equal(ch->st.dead_lettered, 1);
    assert_int_equal(ch->st.deleted, 0);
    assert_int_equal(dead->st.published, 1);
    assert_int_equal(core_delete(c, ch, T0 + 3 * S, id, &token), CORE_NOT_FOUND);
    assert_int_equal(core_delete(c, dead, T0 + 3 * S, id, &token), CORE_CONFLICT);
    core_free(c);
}

static void test_dead_letter_unlock_drop_and_full(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1), *full = core_channel(c, "full", 4);
    set_dlq(c, ch, 1, NULL, 0);
    event_t *e;
    eid_t id = event_id(pubp(c, ch, T0, "a", 0, NULL));
    assert_int_equal(core_lock(c, ch, T0, id, S, &e), CORE_OK);
    assert_int_equal(core_unlock(c, ch, T0, id, NULL, 0, &e), CORE_OK);
    assert_null(e); /* dropped: no dead-letter channel */
    assert_null(core_event_get(c, ch, T0, id));
    assert_int_equal(ch->st.dead_lettered, 1);
    /* a full target refuses the move: the event stays, ready */
    core_set_limits(c, 0, 1);
    pubp(c, full, T0, "f", 0, NULL);
    set_dlq(c, ch, 1, "full", 0);
    id = event_id(pubp(c, ch, T0, "b", 0, NULL));
    assert_int_equal(core_acquire(c, ch, T0, 1, S, &e), 1);
    core_tick(c, T0 + S);
    e = core_event_get(c, ch, T0 + S, id);
    assert_non_null(e);
    assert_int_equal(event_state(e), EVENT_READY);
    assert_int_equal(ch->st.dl_failed, 1);
    assert_int_equal(core_counters(c)->dl_failed, 1);
    core_free(c);
}

static void test_retry_delay_and_unlock_delay(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    set_dlq(c, ch, 0, NULL, 5 * S);
    pubp(c, ch, T0, "a", 0, NULL);
    eid_t b = event_id(pubp(c, ch, T0, "b", 0, NULL));
    event_t *e;
    assert_int_equal(core_acquire(c, ch, T0, 1, S, &e), 1);
    core_tick(c, T0 + 2 * S); /* lapsed at T0+1s: back at T0+6s */
    assert_int_equal(event_state(e), EVENT_SCHEDULED);
    assert_true(e->published_at == T0 + 6 * S);
    assert_string_equal(queue(ch), "b");
    assert_int_equal(core_unlock(c, ch, T0 + 2 * S, b, NULL, 10 * S, &e), CORE_OK); /* not locked: held */
    assert_int_equal(event_state(e), EVENT_SCHEDULED);
    assert_true(e->published_at == T0 + 12 * S);
    assert_int_equal(ch->st.scheduled, 2);
    core_tick(c, T0 + 6 * S);
    assert_string_equal(queue(ch), "a");
    core_tick(c, T0 + 12 * S);
    assert_string_equal(queue(ch), "a,b");
    assert_int_equal(ch->st.published, 2); /* returning is not publishing */
    assert_true(e->lives_until == T0 + 600 * S);
    core_free(c);
}

static void test_pages(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    eid_t ids[6];
    for (int i = 0; i < 6; i++) {
        char d[2] = {(char)('a' + i), 0};
        ids[i] = event_id(pubp(c, ch, T0, d, 0, NULL));
    }
    event_t *out[6], *e;
    int more;
    core_cursor_t next, cur;
    size_t n = core_list(c, ch, T0, CORE_LIST_VISIBLE, NULL, 2, out, &more, &next);
    assert_string_equal(joined(out, n), "a,b");
    assert_true(more);
    char text[CORE_CURSOR_LEN + 1];
    core_cursor_format(CORE_LIST_VISIBLE, &next, text);
    assert_int_equal(core_cursor_parse(CORE_LIST_VISIBLE, text, strlen(text), &cur), 0);
    assert_int_equal(core_cursor_parse(CORE_LIST_READY, text, strlen(text), &cur), -1);
    assert_int_equal(core_delete(c, ch, T0, ids[1], NULL), CORE_OK); /* the cursor's event goes */
    assert_int_equal(core_lock(c, ch, T0, ids[2], S, &e), CORE_OK);
    n = core_list(c, ch, T0, CORE_LIST_VISIBLE, &cur, 2, out, &more, &next);
    assert_string_equal(joined(out, n), "c,d");
    n = core_list(c, ch, T0, CORE_LIST_READY, &cur, 10, out, &more, &next);
    assert_string_equal(joined(out, n), "d,e,f");
    assert_false(more);
    n = core_list(c, ch, T0, CORE_LIST_LOCKED, NULL, 10, out, &more, &next);
    assert_string_equal(joined(out, n), "c");
    /* scheduled: in the order they will become visible */
    core_pub_t p[3] = {{.data = "s3", .len = 2, .publish_at = T0 + 3 * S, .ttl_ns = S},
                       {.data = "s1", .len = 2, .publish_at = T0 + 1 * S, .ttl_ns = S},
                       {.data = "s2", .len = 2, .publish_at = T0 + 2 * S, .ttl_ns = S}};
    event_t *o3[3];
    assert_int_equal(core_publish_batch(c, ch, T0, p, 3, o3, NULL, NULL), CORE_OK);
    n = core_list(c, ch, T0, CORE_LIST_SCHEDULED, NULL, 2, out, &more, &next);
    assert_string_equal(joined(out, n), "s1,s2");
    assert_true(more);
    n = core_list(c, ch, T0, CORE_LIST_SCHEDULED, &next, 2, out, &more, &next);
    assert_string_equal(joined(out, n), "s3");
    assert_false(more);
    core_free(c);
}

static void test_purge_delete_redrive(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    set_dlq(c, ch, 1, "dead", 0);
    eid_t id = event_id(pubp(c, ch, T0, "a", 0, "k"));
    pubp(c, ch, T0, "b", 0, NULL);
    event_t *e;
    assert_int_equal(core_lock(c, ch, T0, id, S, &e), CORE_OK);
    assert_int_equal(core_unlock(c, ch, T0, id, NULL, 0, &e), CORE_OK);
    channel_t *dead = core_channel_find(c, "dead", 4);
    assert_ptr_equal(event_channel(c, e), dead);
    uint64_t moved;
    assert_int_equal(core_redrive(c, dead, T0 + S, NULL, 0, 0, &moved), CORE_OK);
    assert_int_equal(moved, 1);
    e = core_event_get(c, ch, T0 + S, id);
    assert_non_null(e);
    assert_int_equal(e->deliveries, 0);
    size_t len;
    assert_null(event_dead_lettered_from(e, &len));
    assert_string_equal(queue(ch), "b,a");
    assert_ptr_equal(core_event_by_key(c, ch, T0 + S, "k", 1), e);
    uint64_t n;
    pubp(c, ch, T0 + S, "later", 0, NULL);
    core_pub_t sp = {.data = "s", .len = 1, .publish_at = T0 + 9 * S, .ttl_ns = 60 * S};
    event_t *se;
    assert_int_equal(core_publish_batch(c, ch, T0 + S, &sp, 1, &se, NULL, NULL), CORE_OK);
    assert_int_equal(core_purge(c, ch, T0 + S, &n), CORE_OK);
    assert_int_equal(n, 4);
    assert_int_equal(ch->st.deleted, 4);
    assert_int_equal(ch->st.ready + ch->st.scheduled + ch->st.locked, 0);
    assert_null(core_event_by_key(c, ch, T0 + S, "k", 1));
    assert_int_equal(ch->set.max_deliveries, 1); /* settings stay */
    char err[128];
    job_t *j;
    assert_int_equal(core_job_add(c, ch, T0 + S, "j", 1, "* * * * *", 9, "", 0, S, &j, err, sizeof(err)),
                     CORE_OK);
    pubp(c, ch, T0 + S, "x", 0, NULL);
    assert_int_equal(core_channel_delete(c, ch, T0 + S), CORE_OK);
    assert_null(core_channel_find(c, "c", 1));
    ch = core_channel(c, "c", 1);
    assert_int_equal(ch->set.max_deliveries, 0);
    assert_int_equal(ch->st.jobs + ch->st.published + ch->st.deleted, 0);
    core_tick(c, T0 + 3600 * S); /* the deleted job fires nothing */
    assert_int_equal(ch->st.ready, 0);
    core_free(c);
}

/* ---- the oldest READY event (statistics: oldestReadyAge) ---- */

/* What core_oldest_ready must answer: the published_at of the first READY
 * event in visibility order, found the slow way. */
static ntime_t oldest_by_walk(const channel_t *ch)
{
    for (event_t *e = channel_first(ch); e; e = channel_next(ch, e))
        if (event_state(e) == EVENT_READY)
            return e->published_at;
    return 0;
}

static void test_oldest_ready_follows_every_change(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    eid_t ids[400];
    unsigned seed = 12345;
    ntime_t now = T0;
    assert_int_equal(core_oldest_ready(ch), 0);
    for (int i = 0; i < 400; i++) {
        seed = seed * 1103515245u + 12345u;
        /* some published with a past publishAt: their place is the back */
        ntime_t at = (seed >> 16) % 4 == 0 ? now - (ntime_t)((seed >> 8) % 1000) * MS : now;
        core_pub_t p = {.data = "x", .len = 1, .publish_at = at, .ttl_ns = 3600 * S,
                        .priority = (uint8_t)((seed >> 20) % 10)};
        event_t *e;
        assert_int_equal(core_publish_batch(c, ch, now, &p, 1, &e, NULL, NULL), CORE_OK);
        ids[i] = event_id(e);
        now += MS;
    }
    for (int step = 0; step < 3000; step++) {
        seed = seed * 1103515245u + 12345u;
        eid_t id = ids[(seed >> 8) % 400];
        event_t *out, *got[8];
        switch ((seed >> 20) % 5) {
        case 0: core_lock(c, ch, now, id, (int64_t)((seed >> 4) % 50 + 1) * MS, &out); break;
        case 1: core_unlock(c, ch, now, id, NULL, 0, &out); break;
        case 2: core_acquire(c, ch, now, (seed >> 4) % 8 + 1, 30 * MS, got); break;
        case 3: core_unlock(c, ch, now, id, NULL, (int64_t)((seed >> 4) % 20 + 1) * MS, &out); break;
        default: core_tick(c, now); break;
        }
        now += MS;
        core_tick(c, now); /* locks lapse, held events return */
        assert_int_equal(core_oldest_ready(ch), oldest_by_walk(ch));
    }
    core_free(c);
}

/* Every event but one near the back locked: the answer does not walk
 * past them.
 * 2 000 reads over 200 000 locked events took seconds when it did. */
static void test_oldest_ready_does_not_walk_past_locks(void **state)
{
    (void)state;
    enum { N = 200000, READS = 2000 };
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    for (int i = 0; i <= N; i++)
        pubp(c, ch, T0 + i, "x", i % 10, NULL);
    event_t **got = malloc(N * sizeof(*got));
    assert_int_equal(core_acquire(c, ch, T0 + N, N, 3600 * S, got), N);
    free(got);
    assert_int_equal(ch->st.ready, 1); /* the newest of priority 9 */
    ntime_t want = oldest_by_walk(ch);
    assert_true(want == T0 + N - 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    int right = 0;
    for (int i = 0; i < READS; i++)
        right += core_oldest_ready(ch) == want;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    assert_int_equal(right, READS);
    double spent = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(spent < 0.1);
    core_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_order_and_ties),
        cmocka_unit_test(test_timers_move_and_cancel),
        cmocka_unit_test(test_timers_wait_rounds_up),
        cmocka_unit_test(test_timers_wake_at_coalesces),
        cmocka_unit_test(test_publish_delay_expire),
        cmocka_unit_test(test_expiry_list),
        cmocka_unit_test(test_lock_unlock_keeps_place),
        cmocka_unit_test(test_acquire_skips_locked_oldest_first),
        cmocka_unit_test(test_delete_cancels_scheduled),
        cmocka_unit_test(test_job_fires_once_per_time_never_early),
        cmocka_unit_test(test_token_format),
        cmocka_unit_test(test_channel_drop),
        cmocka_unit_test(test_time_sums_saturate),
        cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_idempotency_keys),
        cmocka_unit_test(test_dead_letter_on_lapse),
        cmocka_unit_test(test_dead_letter_unlock_drop_and_full),
        cmocka_unit_test(test_retry_delay_and_unlock_delay),
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_purge_delete_redrive),
        cmocka_unit_test(test_oldest_ready_follows_every_change),
        cmocka_unit_test(test_oldest_ready_does_not_walk_past_locks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
