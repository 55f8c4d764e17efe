/*
 * test_pgstore.c -- the PostgreSQL store's operations driven directly
 * through store.h, against a throwaway PostgreSQL 15 (tests/pg/pgctl.sh;
 * DISTRIBUERAD_TEST_DATABASE_URL points at another one instead). Two
 * stores on one loop and one schema stand for two replicas. Each test
 * uses a fresh schema.
 * Without PostgreSQL the tests are skipped (under CI=true they fail).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgtest.h"
#include "store/pg.h"
#include "store/pgstart.h"
#include "store/pg_int.h"
#define H2O_USE_LIBUV 0
#include <h2o.h>

static h2o_evloop_t *loop;
static int schema_no;

static int group_setup(void **state)
{
    (void)state;
    if (pgtest_start() != 0)
        return -1;
    if (!*url)
        return 0; /* tests skip */
    loop = h2o_evloop_create();
    return 0;
}

static void skip_without_db(void)
{
    if (*url)
        return;
    if (getenv("CI") && !strcmp(getenv("CI"), "true"))
        fail_msg("PostgreSQL 15 is not installed (scripts/deps.sh test)");
    skip();
}

/* ---- stores and a loop ---- */

static char schema[64];
static store_t *stores[3];
static int nstores;

static void quiet_log(const char *level, const char *msg)
{
    if (getenv("PGSTORE_DEBUG"))
        fprintf(stderr, "%s %s\n", level, msg);
}

/* Turns the loop (and every store) until *flag or ms pass. */
static int run_until(const int *flag, uint64_t ms)
{
    uint64_t until = mono_ms() + ms;
    while (!*flag && mono_ms() < until) {
        for (int i = 0; i < nstores; i++)
            stores[i]->ops->turn(stores[i]);
        h2o_evloop_run(loop, 5);
    }
    return *flag;
}

static void spin(uint64_t ms)
{
    int never = 0;
    run_until(&never, ms);
}

/* n stores ("replicas") on a fresh schema, ready. */
static void replicas(int n, size_t max_channel_events)
{
    char info[512], err[1024];
    snprintf(schema, sizeof(schema), "pgstore_%d_%d", (int)getpid(), ++schema_no);
    assert_int_equal(pg_start(url, schema, info, sizeof(info), err, sizeof(err)), 0);
    for (int i = 0; i < n; i++) {
        store_pg_config_t cfg = {.loop = loop, .url = url, .schema = schema, .pool = 2, .timeout_ms = 5000,
                                 .max_channel_events = max_channel_events, .zone = tz_utc(), .log = quiet_log};
        stores[i] = store_pg_new(&cfg);
    }
    nstores = n;
    uint64_t until = mono_ms() + 5000;
    int ready = 0;
    while (!ready && mono_ms() < until) {
        spin(10);
        ready = 1;
        for (int i = 0; i < n; i++)
            ready &= stores[i]->ops->ready(stores[i]);
    }
    assert_true(ready);
}

static void replicas_free(void)
{
    for (int i = 0; i < nstores; i++)
        stores[i]->ops->free(stores[i]);
    nstores = 0;
}

/* A result, copied out of the callback. */
typedef struct got {
    int done;
    store_status_t status;
    char err[256];
    size_t n;
    store_event_t ev[16];
    char data[16][64];
    size_t created;
    uint8_t replayed[16];
    char next[64];
    size_t next_len;
    store_stats_t stats;
    store_job_t job;
    uint64_t count;
    store_settings_t settings;
} got_t;

static void on_done(void *arg, const store_res_t *res)
{
    got_t *g = arg;
    g->done = 1;
    g->status = res->status;
    snprintf(g->err, sizeof(g->err), "%s", res->err ? res->err : "");
    g->n = res->n_events;
    for (size_t i = 0; i < res->n_events && i < 16; i++) {
        g->ev[i] = res->events[i];
        size_t len = res->events[i].data_len < 63 ? res->events[i].data_len : 63;
        memcpy(g->data[i], res->events[i].data, len);
        g->data[i][len] = '\0';
        g->ev[i].data = g->data[i];
        g->ev[i].dead_lettered_from = NULL;
        if (res->replayed)
            g->replayed[i] = res->replayed[i];
    }
    g->created = res->created;
    if (res->next) {
        memcpy(g->next, res->next, res->next_len);
        g->next_len = res->next_len;
    }
    if (res->n_stats)
        g->stats = res->stats[0];
    if (res->n_jobs) {
        g->job = res->jobs[0];
        g->job.def.name = g->job.def.cron_def = g->job.def.data = NULL;
    }
    g->count = res->count;
    if (res->settings)
        g->settings = *res->settings;
}

#define WAIT(g) assert_true(run_until(&(g).done, 6000))

static store_chan_t CH(const char *name)
{
    return (store_chan_t){name, strlen(name)};
}

static store_pub_t pub(const char *data)
{
    return (store_pub_t){.data = data, .data_len = strlen(data), .ttl_ns = 600 * NTIME_NS_PER_S};
}

static got_t publish1(store_t *s, const char *ch, store_pub_t p)
{
    got_t g = {0};
    s->ops->publish(s, CH(ch), &p, 1, on_done, &g);
    assert_int_equal(g.done, 0); /* answered from the loop */
    WAIT(g);
    return g;
}

/* ---- tests ---- */

static void test_publish_get_list(void **state)
{
    (void)state;
    skip_without_db();
    replicas(2, 0);
    store_pub_t p = {.data = "a\0b", .data_len = 3, .ttl_ns = 60 * NTIME_NS_PER_S, .priority = 3};
    got_t g = publish1(stores[0], "orders", p);
    assert_int_equal(g.status, STORE_CREATED);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.ev[0].state, STORE_READY);
    assert_int_equal(g.ev[0].data_len, 3);
    assert_memory_equal(g.data[0], "a\0b", 3);
    assert_int_equal(g.ev[0].priority, 3);
    assert_true(g.ev[0].lives_until - g.ev[0].published_at == 60 * NTIME_NS_PER_S);
    /* the other replica sees it */
    got_t h = {0};
    stores[1]->ops->get(stores[1], CH("orders"), g.ev[0].id, on_done, &h);
    WAIT(h);
    assert_int_equal(h.status, STORE_OK);
    assert_int_equal(h.ev[0].id.hi, g.ev[0].id.hi);
    assert_int_equal(h.ev[0].id.lo, g.ev[0].id.lo);
    got_t other = {0};
    stores[1]->ops->get(stores[1], CH("elsewhere"), g.ev[0].id, on_done, &other);
    WAIT(other);
    assert_int_equal(other.status, STORE_NOT_FOUND);
    store_list_t l = {.ch = CH("orders")};
    got_t li = {0};
    stores[1]->ops->list(stores[1], &l, on_done, &li);
    WAIT(li);
    assert_int_equal(li.status, STORE_OK);
    assert_int_equal(li.n, 1);
    replicas_free();
}

static void test_batch_keys_replay(void **state)
{
    (void)state;
    skip_without_db();
    replicas(1, 0);
    store_pub_t ps[3] = {pub("x"), pub("y"), pub("z")};
    ps[0].key = "k1", ps[0].key_len = 2;
    ps[2].key = "k1", ps[2].key_len = 2; /* repeats element 0's key */
    got_t g = {0};
    stores[0]->ops->publish(stores[0], CH("keys"), ps, 3, on_done, &g);
    WAIT(g);
    assert_int_equal(g.status, STORE_CREATED);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.created, 2);
    assert_int_equal(g.replayed[2], 1);
    assert_true(g.ev[2].id.lo == g.ev[0].id.lo);
    store_pub_t again = pub("other");
    again.key = "k1", again.key_len = 2;
    got_t r = publish1(stores[0], "keys", again);
    assert_int_equal(r.status, STORE_REPLAYED);
    assert_string_equal(r.data[0], "x");
    replicas_free();
}

static void test_lock_unlock_extend_delete(void **state)
{
    (void)state;
    skip_without_db();
    replicas(2, 0);
    store_t *a = stores[0], *b = stores[1];
    got_t p = publish1(a, "locks", pub("work"));
    eid_t id = p.ev[0].id;
    got_t l1 = {0}, l2 = {0};
    a->ops->lock(a, CH("locks"), id, 30 * NTIME_NS_PER_S, on_done, &l1);
    b->ops->lock(b, CH("locks"), id, 30 * NTIME_NS_PER_S, on_done, &l2);
    WAIT(l1);
    WAIT(l2);
    /* exactly one of two concurrent locks wins */
    assert_true((l1.status == STORE_OK) != (l2.status == STORE_OK));
    got_t *won = l1.status == STORE_OK ? &l1 : &l2, *lost = won == &l1 ? &l2 : &l1;
    assert_int_equal(lost->status, STORE_GONE);
    assert_int_equal(won->ev[0].state, STORE_LOCKED);
    assert_int_equal(won->ev[0].deliveries, 1);
    uint64_t token = won->ev[0].token, bad = token ^ 2;
    assert_true(token != 0);
    got_t u = {0};
    b->ops->unlock(b, CH("locks"), id, &bad, 0, on_done, &u);
    WAIT(u);
    assert_int_equal(u.status, STORE_CONFLICT);
    got_t x = {0};
    b->ops->extend(b, CH("locks"), id, 60 * NTIME_NS_PER_S, &token, on_done, &x);
    WAIT(x);
    assert_int_equal(x.status, STORE_OK);
    assert_true(x.ev[0].token == token);
    assert_true(x.ev[0].locked_until > won->ev[0].locked_until);
    got_t d = {0};
    a->ops->del(a, CH("locks"), id, &bad, on_done, &d);
    WAIT(d);
    assert_int_equal(d.status, STORE_CONFLICT);
    memset(&d, 0, sizeof(d));
    a->ops->del(a, CH("locks"), id, &token, on_done, &d);
    WAIT(d);
    assert_int_equal(d.status, STORE_OK);
    memset(&d, 0, sizeof(d));
    a->ops->del(a, CH("locks"), id, NULL, on_done, &d);
    WAIT(d);
    assert_int_equal(d.status, STORE_NOT_FOUND);
    got_t st = {0};
    b->ops->stats(b, CH("locks"), on_done, &st);
    WAIT(st);
    assert_int_equal(st.stats.published, 1);
    assert_int_equal(st.stats.deleted, 1);
    assert_int_equal(st.stats.ready + st.stats.locked + st.stats.scheduled, 0);
    replicas_free();
}

static void test_acquire_priority_and_racing(void **state)
{
    (void)state;
    skip_without_db();
    replicas(3, 0);
    enum { N = 60 };
    store_pub_t ps[N];
    char datas[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(datas[i], sizeof(datas[i]), "%d", i);
        ps[i] = pub(datas[i]);
        ps[i].priority = (uint8_t)(i < 5 ? 9 : 0);
    }
    got_t g = {0};
    stores[0]->ops->publish(stores[0], CH("race"), ps, N, on_done, &g);
    WAIT(g);
    assert_int_equal(g.created, N);
    got_t first = {0};
    stores[0]->ops->acquire(stores[0], CH("race"), 2, 30 * NTIME_NS_PER_S, on_done, &first);
    WAIT(first);
    assert_int_equal(first.n, 2);
    assert_string_equal(first.data[0], "5"); /* priority 0 first, oldest first */
    assert_string_equal(first.data[1], "6");
    /* three replicas race for the rest, 4 at a time: each event once */
    static got_t r[30];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 30; i++)
        stores[i % 3]->ops->acquire(stores[i % 3], CH("race"), 4, 30 * NTIME_NS_PER_S, on_done, &r[i]);
    int seen[N] = {0}, total = 2;
    for (int i = 0; i < 30; i++) {
        WAIT(r[i]);
        assert_int_equal(r[i].status, STORE_OK);
        for (size_t k = 0; k < r[i].n; k++) {
            int v = atoi(r[i].data[k]);
            assert_int_equal(seen[v], 0);
            seen[v] = 1;
            total++;
        }
    }
    assert_int_equal(total, N);
    replicas_free();
}

static void test_delayed_and_paging(void **state)
{
    (void)state;
    skip_without_db();
    replicas(1, 0);
    store_pub_t d = pub("later");
    d.publish_in_ns = 300 * NTIME_NS_PER_MS;
    got_t g = publish1(stores[0], "pages", d);
    assert_int_equal(g.ev[0].state, STORE_SCHEDULED);
    for (int i = 0; i < 5; i++)
        publish1(stores[0], "pages", pub("now"));
    store_list_t l = {.ch = CH("pages"), .limit = 2};
    int seen = 0;
    char after[64] = "";
    for (int page = 0; page < 5; page++) {
        got_t li = {0};
        l.after = *after ? after : NULL;
        l.after_len = strlen(after);
        stores[0]->ops->list(stores[0], &l, on_done, &li);
        WAIT(li);
        assert_int_equal(li.status, STORE_OK);
        seen += (int)li.n;
        if (!li.next_len)
            break;
        memcpy(after, li.next, li.next_len);
        after[li.next_len] = '\0';
    }
    assert_int_equal(seen, 5);
    store_list_t sl = {.ch = CH("pages"), .state = STORE_LIST_SCHEDULED};
    got_t sch = {0};
    stores[0]->ops->list(stores[0], &sl, on_done, &sch);
    WAIT(sch);
    assert_int_equal(sch.n, 1);
    spin(400);
    got_t now = {0};
    stores[0]->ops->get(stores[0], CH("pages"), g.ev[0].id, on_done, &now);
    WAIT(now);
    assert_int_equal(now.ev[0].state, STORE_READY);
    replicas_free();
}

/* avail calls, per store */
static int avail_calls[3];
static void on_avail(void *arg, const char *ch, size_t len)
{
    (void)ch, (void)len;
    avail_calls[(intptr_t)arg]++;
}

static void test_wakeup_across_replicas(void **state)
{
    (void)state;
    skip_without_db();
    replicas(2, 0);
    for (int i = 0; i < 2; i++)
        store_set_avail_fn(stores[i], on_avail, (void *)(intptr_t)i);
    spin(300); /* LISTEN up */
    got_t a = {0};
    stores[1]->ops->acquire(stores[1], CH("wake"), 1, NTIME_NS_PER_S, on_done, &a);
    WAIT(a);
    assert_int_equal(a.n, 0);
    avail_calls[1] = 0;
    uint64_t t0 = mono_ms();
    publish1(stores[0], "wake", pub("hello"));
    while (avail_calls[1] == 0 && mono_ms() - t0 < 2000)
        spin(2);
    assert_true(avail_calls[1] > 0);
    assert_true(mono_ms() - t0 < 500);
    replicas_free();
}

static void test_jobs_fire_once_across_replicas(void **state)
{
    (void)state;
    skip_without_db();
    replicas(3, 0);
    store_job_def_t def = {.name = "tick", .name_len = 4, .cron_def = "@every 1s", .cron_len = 9, .data = "t",
                           .data_len = 1, .ttl_ns = 60 * NTIME_NS_PER_S};
    got_t j = {0};
    stores[0]->ops->job_put(stores[0], CH("cron"), &def, 0, on_done, &j);
    WAIT(j);
    assert_int_equal(j.status, STORE_CREATED);
    got_t dup = {0};
    stores[1]->ops->job_put(stores[1], CH("cron"), &def, 0, on_done, &dup);
    WAIT(dup);
    assert_int_equal(dup.status, STORE_CONFLICT);
    spin(3300);
    /* The job still fires: the runs read before and after the stats must
     * agree, or a fire came between and the reads are taken again. */
    got_t st, jg, jg2;
    for (int tries = 0; tries < 3; tries++) {
        memset(&jg, 0, sizeof(jg));
        memset(&st, 0, sizeof(st));
        memset(&jg2, 0, sizeof(jg2));
        stores[2]->ops->job_get(stores[2], CH("cron"), "tick", 4, 0, on_done, &jg);
        WAIT(jg);
        stores[2]->ops->stats(stores[2], CH("cron"), on_done, &st);
        WAIT(st);
        stores[2]->ops->job_get(stores[2], CH("cron"), "tick", 4, 0, on_done, &jg2);
        WAIT(jg2);
        if (jg.job.runs == jg2.job.runs)
            break;
    }
    assert_int_equal(jg.job.runs, jg2.job.runs);
    assert_true(st.stats.published >= 2 && st.stats.published <= 4);
    assert_int_equal(jg.job.runs, st.stats.published); /* one event per fire, none twice */
    got_t del = {0};
    stores[1]->ops->job_delete(stores[1], CH("cron"), "tick", 4, on_done, &del);
    WAIT(del);
    assert_int_equal(del.status, STORE_OK);
    got_t st2 = {0};
    stores[2]->ops->stats(stores[2], CH("cron"), on_done, &st2);
    WAIT(st2);
    spin(1500);
    got_t st3 = {0};
    stores[2]->ops->stats(stores[2], CH("cron"), on_done, &st3);
    WAIT(st3);
    assert_int_equal(st3.stats.published, st2.stats.published); /* deleted: fires nothing */
    replicas_free();
}

static void test_dead_letter_after_lapse(void **state)
{
    (void)state;
    skip_without_db();
    replicas(1, 0);
    store_t *s = stores[0];
    store_settings_put_t sp = {.has_max_deliveries = 1, .has_dead_letter_channel = 1,
                               .v = {.max_deliveries = 1, .dead_letter_channel = "dlq", .dead_letter_channel_len = 3}};
    got_t set = {0};
    s->ops->settings_put(s, CH("jobsrc"), &sp, on_done, &set);
    WAIT(set);
    assert_int_equal(set.status, STORE_OK);
    assert_int_equal(set.settings.max_deliveries, 1);
    got_t p = publish1(s, "jobsrc", pub("poison"));
    got_t a = {0};
    s->ops->acquire(s, CH("jobsrc"), 1, 100 * NTIME_NS_PER_MS, on_done, &a);
    WAIT(a);
    assert_int_equal(a.n, 1);
    spin(1600); /* the lock lapses, the sweep moves it */
    got_t g = {0};
    s->ops->get(s, CH("dlq"), p.ev[0].id, on_done, &g);
    WAIT(g);
    assert_int_equal(g.status, STORE_OK);
    assert_int_equal(g.ev[0].state, STORE_READY);
    assert_int_equal(g.ev[0].deliveries, 1);
    got_t st = {0};
    s->ops->stats(s, CH("jobsrc"), on_done, &st);
    WAIT(st);
    assert_int_equal(st.stats.dead_lettered, 1);
    replicas_free();
}

static void test_channel_limit(void **state)
{
    (void)state;
    skip_without_db();
    replicas(1, 3);
    store_pub_t ps[3] = {pub("1"), pub("2"), pub("3")};
    got_t g = {0};
    stores[0]->ops->publish(stores[0], CH("full"), ps, 3, on_done, &g);
    WAIT(g);
    assert_int_equal(g.status, STORE_CREATED);
    got_t f = publish1(stores[0], "full", pub("4"));
    assert_int_equal(f.status, STORE_FULL);
    assert_non_null(strstr(f.err, "limit of 3 events"));
    replicas_free();
}

/* The clock keeps the sample with the tightest bound: a slow round trip
 * does not move it, a tighter one does, and an old one gives way as its
 * bound ages. No database: the samples are made up. */
static void test_clock_keeps_the_tightest_sample(void **state)
{
    (void)state;
    pgs_t s;
    memset(&s, 0, sizeof(s));
    const int64_t ms = 1000000, db = 1800000000LL * 1000000000LL;
    uint64_t t = pgs_local_ns();
    pgs_clock_sample(&s, t - ms / 5, db); /* 0.2 ms round trip: the first is taken */
    assert_true(s.clock_known);
    int64_t first = s.offset_ns;
    assert_true(llabs(pgs_now(&s) - db) < ms);
    t = pgs_local_ns();
    pgs_clock_sample(&s, t - 20 * ms, db + 1000 * ms); /* 20 ms: looser, kept out */
    assert_int_equal(s.offset_ns, first);
    t = pgs_local_ns();
    pgs_clock_sample(&s, t - ms / 10, db + 1000 * ms); /* 0.1 ms: tighter, taken */
    assert_true(llabs(s.offset_ns - first - 1000 * ms) < 2 * ms);
    int64_t second = s.offset_ns;
    s.clock_at -= 60 * 1000 * ms; /* a minute old: its bound grew by 30 ms */
    t = pgs_local_ns();
    pgs_clock_sample(&s, t - 20 * ms, db + 2000 * ms); /* 20 ms now beats it */
    assert_true(llabs(s.offset_ns - second - 1000 * ms) < 25 * ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_keeps_the_tightest_sample),
        cmocka_unit_test(test_publish_get_list),
        cmocka_unit_test(test_batch_keys_replay),
        cmocka_unit_test(test_lock_unlock_extend_delete),
        cmocka_unit_test(test_acquire_priority_and_racing),
        cmocka_unit_test(test_delayed_and_paging),
        cmocka_unit_test(test_wakeup_across_replicas),
        cmocka_unit_test(test_jobs_fire_once_across_replicas),
        cmocka_unit_test(test_dead_letter_after_lapse),
        cmocka_unit_test(test_channel_limit),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
