/*
 * test_jobs.c -- jobs people operate, in the core: define and replace,
 * pause and resume, trigger, overlap and missed policies, the preview of
 * next runs, and what a restart keeps (through a journal kept in memory
 * and replayed into a new core). Time is passed in, so nothing sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/core.h"
#include "time/tz.h"

#define S NTIME_NS_PER_S
#define MS NTIME_NS_PER_MS
static const ntime_t T0 = 1790000000LL * S; /* 2026-09-21T14:13:20Z */

/* ---- a journal in memory: deep copies of every record committed ---- */

typedef struct memlog {
    core_rec_t recs[4096];
    size_t n, pending;        /* pending: added since the last commit */
    int fail;                 /* 1: commit fails (drops what was added) */
} memlog_t;

static char *dup(const char *s, uint32_t len)
{
    char *p = malloc(len + 1);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static void ml_add(void *arg, const core_rec_t *r)
{
    memlog_t *m = arg;
    assert_true(m->n < sizeof(m->recs) / sizeof(m->recs[0]));
    core_rec_t *x = &m->recs[m->n++];
    *x = *r;
    x->channel = dup(r->channel, r->channel_len);
    x->name = dup(r->name, r->name_len);
    x->cron = dup(r->cron, r->cron_len);
    x->data = dup(r->data, r->data_len);
    m->pending++;
}

static void ml_drop(memlog_t *m, size_t keep)
{
    while (m->n > keep) {
        core_rec_t *x = &m->recs[--m->n];
        free((char *)x->channel);
        free((char *)x->name);
        free((char *)x->cron);
        free((char *)x->data);
    }
}

static int ml_commit(void *arg)
{
    memlog_t *m = arg;
    if (m->fail) {
        ml_drop(m, m->n - m->pending);
        m->pending = 0;
        return -1;
    }
    m->pending = 0;
    return 0;
}

static core_t *new_core(memlog_t *m)
{
    core_t *c = core_new(tz_utc());
    memset(m, 0, sizeof(*m));
    core_journal_t j = {ml_add, ml_commit, m};
    core_set_journal(c, &j);
    return c;
}

/* A restart at now: a new core replays the log and journals to it. */
static core_t *restart(core_t *old, memlog_t *m, ntime_t now)
{
    core_free(old);
    core_t *c = core_new(tz_utc());
    core_replay_begin(c);
    for (size_t i = 0; i < m->n; i++)
        assert_int_equal(core_apply(c, &m->recs[i]), CORE_OK);
    core_replay_end(c, now);
    core_journal_t j = {ml_add, ml_commit, m};
    core_set_journal(c, &j);
    return c;
}

static size_t count_type(const memlog_t *m, uint8_t type)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        k += m->recs[i].type == type;
    return k;
}

static job_def_t def(const char *cron, const char *data)
{
    job_def_t d = {.cron_def = cron, .cron_len = strlen(cron), .data = data, .data_len = strlen(data),
                   .missed_window_ns = CORE_DEFAULT_MISSED_WINDOW_NS, .ttl_ns = 600 * S};
    return d;
}

static job_t *put(core_t *c, channel_t *ch, ntime_t now, const char *name, const job_def_t *d, int want_created)
{
    job_t *j;
    int created;
    char err[256];
    assert_int_equal(core_job_put(c, ch, now, name, strlen(name), d, 1, &j, &created, err, sizeof(err)), CORE_OK);
    assert_int_equal(created, want_created);
    return j;
}

static uint64_t live(channel_t *ch)
{
    return ch->st.ready + ch->st.scheduled + ch->st.locked;
}

/* ---- definitions ---- */

/* PUT creates, then replaces keeping the state; an equal definition
 * writes nothing and keeps next_at; POST of a taken name conflicts. */
static void test_put_create_replace_equal(void **state)
{
    (void)state;
    memlog_t m;
    core_t *c = new_core(&m);
    channel_t *ch = core_channel(c, "c", 1);
    job_def_t d = def("@every 10s", "v1");
    job_t *j = put(c, ch, T0, "j", &d, 1);
    assert_true(j->created_at == T0);
    assert_true(j->next_at == T0 + 10 * S);
    core_tick(c, T0 + 10 * S);
    assert_int_equal(j->runs, 1);
    assert_int_equal(core_job_pause(c, ch, T0 + 11 * S, "j", 1, 1, &j), CORE_OK);
    size_t before = m.n;
    /* equal: nothing written, nothing moved */
    job_def_t same = def("@every 10s", "v1");
    assert_ptr_equal(put(c, ch, T0 + 12 * S, "j", &same, 0), j);
    assert_int_equal(m.n, before);
    assert_true(j->next_at == NTIME_MAX);
    /* changed: replaced, state kept, @every counts from now */
    job_def_t d2 = def("@every 10s", "v2");
    d2.priority = 4;
    assert_ptr_equal(put(c, ch, T0 + 13 * S, "j", &d2, 0), j);
    assert_int_equal(m.n, before + 1);
    assert_int_equal(m.recs[before].type, CORE_REC_JOB_REPLACE);
    assert_true(j->created_at == T0);
    assert_true(j->defined_at == T0 + 13 * S);
    assert_int_equal(j->paused, 1);
    assert_int_equal(j->runs, 1);
    assert_int_equal(j->priority, 4);
    assert_string_equal(j->data, "v2");
    assert_int_equal(core_job_pause(c, ch, T0 + 14 * S, "j", 1, 0, &j), CORE_OK);
    assert_true(j->next_at == T0 + 23 * S);
    /* POST of a taken name: 409, unchanged */
    char err[256];
    job_t *x;
    int created;
    assert_int_equal(core_job_put(c, ch, T0 + 15 * S, "j", 1, &d, 0, &x, &created, err, sizeof(err)),
                     CORE_CONFLICT);
    assert_string_equal(j->data, "v2");
    /* a bad definition changes nothing */
    job_def_t bad = def("61 * * * *", "v3");
    assert_int_equal(core_job_put(c, ch, T0 + 15 * S, "j", 1, &bad, 1, &x, &created, err, sizeof(err)),
                     CORE_INVALID);
    assert_string_equal(j->cron_def, "@every 10s");
    assert_true(j->next_at == T0 + 23 * S);
    /* a replace the log refuses changes nothing either */
    m.fail = 1;
    job_def_t d3 = def("@hourly", "v3");
    assert_int_equal(core_job_put(c, ch, T0 + 15 * S, "j", 1, &d3, 1, &x, &created, err, sizeof(err)), CORE_IO);
    assert_string_equal(j->cron_def, "@every 10s");
    core_free(c);
    ml_drop(&m, 0);
}

/* ---- pause, resume, trigger ---- */

static void test_pause_resume_trigger(void **state)
{
    (void)state;
    memlog_t m;
    core_t *c = new_core(&m);
    channel_t *ch = core_channel(c, "c", 1);
    job_def_t d = def("* * * * *", "x"); /* every minute, on the minute */
    ntime_t t = T0 - 20 * S;              /* 14:13:00 */
    job_t *j = put(c, ch, t, "j", &d, 1);
    assert_true(j->next_at == t + 60 * S);
    assert_int_equal(core_job_pause(c, ch, t + S, "j", 1, 1, &j), CORE_OK);
    assert_true(j->next_at == NTIME_MAX);
    size_t before = m.n;
    assert_int_equal(core_job_pause(c, ch, t + S, "j", 1, 1, &j), CORE_OK); /* again: nothing */
    assert_int_equal(m.n, before);
    core_tick(c, t + 300 * S);
    assert_int_equal(live(ch), 0); /* paused: no fire */
    /* trigger while paused: publishes now, counts, schedule unchanged */
    event_t *e;
    assert_int_equal(core_job_trigger(c, ch, t + 301 * S, "j", 1, &j, &e), CORE_OK);
    assert_non_null(e);
    assert_true(e->published_at == t + 301 * S);
    assert_int_equal(j->runs, 1);
    assert_true(j->last_run_at == t + 301 * S);
    assert_true(j->next_at == NTIME_MAX);
    /* resume: the next time after now, the missed ones not made up */
    assert_int_equal(core_job_pause(c, ch, t + 302 * S, "j", 1, 0, &j), CORE_OK);
    assert_true(j->next_at == t + 360 * S);
    core_tick(c, t + 360 * S);
    assert_int_equal(live(ch), 2);
    assert_int_equal(j->runs, 2);
    /* unknown jobs */
    assert_int_equal(core_job_pause(c, ch, t + 400 * S, "k", 1, 1, &j), CORE_NOT_FOUND);
    assert_int_equal(core_job_trigger(c, ch, t + 400 * S, "k", 1, &j, &e), CORE_NOT_FOUND);
    core_free(c);
    ml_drop(&m, 0);
}

/* ---- overlap ---- */

static void test_overlap_skip(void **state)
{
    (void)state;
    memlog_t m;
    core_t *c = new_core(&m);
    channel_t *ch = core_channel(c, "c", 1);
    job_def_t d = def("@every 1s", "x");
    d.overlap = JOB_OVERLAP_SKIP;
    d.ttl_ns = 2500 * MS;
    job_t *j = put(c, ch, T0, "j", &d, 1);
    core_tick(c, T0 + 1 * S); /* fires: the event lives until T0 + 3.5s */
    core_tick(c, T0 + 2 * S); /* skipped */
    core_tick(c, T0 + 3 * S); /* skipped */
    assert_int_equal(j->runs, 1);
    assert_int_equal(j->skipped, 2);
    core_tick(c, T0 + 4 * S); /* the first expired at 3.5s: fires */
    assert_int_equal(j->runs, 2);
    /* deleting the live event frees the next fire */
    eid_t id = j->last_event;
    assert_int_equal(core_delete(c, ch, T0 + 4 * S + 1, id, NULL), CORE_OK);
    core_tick(c, T0 + 5 * S);
    assert_int_equal(j->runs, 3);
    /* a trigger counts as the previous fire */
    event_t *e;
    assert_int_equal(core_job_trigger(c, ch, T0 + 5 * S + 1, "j", 1, &j, &e), CORE_OK);
    assert_int_equal(core_delete(c, ch, T0 + 5 * S + 2, j->last_event, NULL), CORE_OK);
    core_tick(c, T0 + 6 * S); /* the trigger's event is gone: fires */
    assert_int_equal(j->runs, 5);
    assert_int_equal(j->skipped, 2);
    assert_int_equal(j->skips, 2);
    assert_int_equal(count_type(&m, CORE_REC_JOB_SKIP), 2);
    /* allow: fires whatever is live */
    job_def_t a = def("@every 1s", "y");
    job_t *k = put(c, ch, T0 + 6 * S, "k", &a, 1);
    core_tick(c, T0 + 7 * S);
    core_tick(c, T0 + 8 * S);
    assert_int_equal(k->runs, 2);
    assert_int_equal(k->skipped, 0);
    core_free(c);
    ml_drop(&m, 0);
}

/* ---- next runs ---- */

/* The preview shows the times the job then fires at. */
static void test_next_runs_match_fires(void **state)
{
    (void)state;
    static const char *defs[] = {"*/7 * * * *", "@every 90s", "0 0 */2 * MON", "CRON_TZ=Europe/Berlin 30 2 * * *",
                                 "@hourly"};
    for (size_t di = 0; di < sizeof(defs) / sizeof(defs[0]); di++) {
        memlog_t m;
        core_t *c = new_core(&m);
        channel_t *ch = core_channel(c, "c", 1);
        job_def_t d = def(defs[di], "x");
        d.ttl_ns = S;
        job_t *j = put(c, ch, T0, "j", &d, 1);
        ntime_t want[20];
        assert_int_equal(core_job_next_runs(c, j, T0, want, 20), 20);
        for (int i = 0; i < 20; i++) {
            assert_true(j->next_at == want[i]);
            core_tick(c, want[i] - 1);
            assert_int_equal(j->runs, (uint64_t)i);
            core_tick(c, want[i]);
            assert_int_equal(j->runs, (uint64_t)i + 1);
            assert_true(j->last_run_at == want[i]);
        }
        /* paused: a preview from now */
        assert_int_equal(core_job_pause(c, ch, want[19], "j", 1, 1, &j), CORE_OK);
        ntime_t p[3];
        assert_int_equal(core_job_next_runs(c, j, want[19], p, 3), 3);
        assert_true(p[0] > want[19]);
        core_free(c);
        ml_drop(&m, 0);
    }
    /* a definition that never fires again has no next runs */
    memlog_t m;
    core_t *c = new_core(&m);
    job_def_t never = def("0 0 30 2 *", "x");
    job_t *j = put(c, core_channel(c, "c", 1), T0, "j", &never, 1);
    ntime_t p[3];
    assert_int_equal(core_job_next_runs(c, j, T0, p, 3), 0);
    core_free(c);
    ml_drop(&m, 0);
}

/* ---- restarts ---- */

/* Paused, runs, skipped, last run, the definition and the policies come
 * back after a restart. */
static void test_restart_keeps_state(void **state)
{
    (void)state;
    memlog_t m;
    core_t *c = new_core(&m);
    channel_t *ch = core_channel(c, "c", 1);
    job_def_t d = def("@every 1s", "[1,2]");
    d.data_json = 1;
    d.priority = 9;
    d.overlap = JOB_OVERLAP_SKIP;
    d.missed = JOB_MISSED_ONCE;
    d.missed_window_ns = 5 * S;
    job_t *j = put(c, ch, T0, "j", &d, 1);
    core_tick(c, T0 + 1 * S);
    core_tick(c, T0 + 2 * S);
    assert_int_equal(core_job_pause(c, ch, T0 + 2 * S + 1, "j", 1, 1, &j), CORE_OK);
    c = restart(c, &m, T0 + 10 * S);
    ch = core_channel_find(c, "c", 1);
    j = core_job_get(c, ch, "j", 1);
    assert_non_null(j);
    assert_int_equal(j->paused, 1);
    assert_true(j->next_at == NTIME_MAX);
    assert_int_equal(j->runs, 1);
    assert_int_equal(j->skipped, 1);
    assert_true(j->last_run_at == T0 + 1 * S);
    assert_int_equal(j->priority, 9);
    assert_int_equal(j->data_json, 1);
    assert_int_equal(j->overlap, JOB_OVERLAP_SKIP);
    assert_int_equal(j->missed, JOB_MISSED_ONCE);
    assert_true(j->missed_window_ns == 5 * S);
    /* paused: no catch-up either */
    core_tick(c, T0 + 10 * S);
    assert_int_equal(j->runs, 1);
    core_free(c);
    ml_drop(&m, 0);
}

/* missed ONCE: one fire at once after a restart past a fire time within
 * the window; none when every missed time is older than the window; and
 * none with missed SKIP. */
static void test_missed_once(void **state)
{
    (void)state;
    memlog_t m;
    core_t *c = new_core(&m);
    channel_t *ch = core_channel(c, "c", 1);
    job_def_t once = def("* * * * *", "once"); /* on each minute */
    once.missed = JOB_MISSED_ONCE;
    once.missed_window_ns = 90 * S;
    job_def_t old = once;
    old.data = "old";
    old.data_len = 3;
    old.missed_window_ns = 10 * S;
    job_def_t skip = def("* * * * *", "skip");
    ntime_t t = T0 - 20 * S; /* 14:13:00 */
    put(c, ch, t, "once", &once, 1);
    put(c, ch, t, "old", &old, 1);
    put(c, ch, t, "skip", &skip, 1);
    core_tick(c, t + 60 * S); /* each fires once: 14:14 */
    assert_int_equal(live(ch), 3);
    /* down from 14:14:05 to 14:17:30: 14:15, 14:16, 14:17 missed. The
     * latest (14:17) is 30 s old: within 90 s, not within 10 s. */
    core_tick(c, t + 65 * S);
    c = restart(c, &m, t + 270 * S);
    ch = core_channel_find(c, "c", 1);
    job_t *jo = core_job_get(c, ch, "once", 4), *jold = core_job_get(c, ch, "old", 3),
          *js = core_job_get(c, ch, "skip", 4);
    assert_true(jo->next_at == t + 270 * S); /* due at once */
    assert_true(jold->next_at == t + 300 * S);
    assert_true(js->next_at == t + 300 * S);
    assert_int_equal(live(ch), 3);
    core_tick(c, t + 270 * S + MS);
    assert_int_equal(live(ch), 4);
    assert_int_equal(jo->runs, 2);
    assert_true(jo->last_run_at == t + 270 * S + MS); /* published now */
    assert_true(jo->next_at == t + 300 * S);
    assert_int_equal(jold->runs, 1);
    assert_int_equal(js->runs, 1);
    core_tick(c, t + 299 * S);
    assert_int_equal(live(ch), 4); /* exactly once */
    /* the catch-up is in the log: a second restart neither loses it nor
     * makes it up again */
    c = restart(c, &m, t + 299 * S);
    ch = core_channel_find(c, "c", 1);
    jo = core_job_get(c, ch, "once", 4);
    assert_int_equal(jo->runs, 2);
    assert_int_equal(live(ch), 4);
    core_tick(c, t + 299 * S + MS);
    assert_int_equal(live(ch), 4);
    core_tick(c, t + 300 * S);
    assert_int_equal(live(ch), 7);
    core_free(c);
    ml_drop(&m, 0);
}

/* Down across one fire time, well within the window: made up once. */
static void test_missed_once_short_outage(void **state)
{
    (void)state;
    memlog_t m;
    core_t *c = new_core(&m);
    channel_t *ch = core_channel(c, "c", 1);
    job_def_t once = def("@every 10s", "once");
    once.missed = JOB_MISSED_ONCE;
    job_t *j = put(c, ch, T0, "j", &once, 1);
    core_tick(c, T0 + 10 * S);
    c = restart(c, &m, T0 + 21 * S); /* 20 s was missed, 1 s ago */
    ch = core_channel_find(c, "c", 1);
    j = core_job_get(c, ch, "j", 1);
    core_tick(c, T0 + 21 * S);
    assert_int_equal(j->runs, 2);
    assert_true(j->next_at == T0 + 30 * S);
    core_free(c);
    ml_drop(&m, 0);
}

/* A restart with no time missed fires nothing extra. */
static void test_missed_once_nothing_missed(void **state)
{
    (void)state;
    memlog_t m;
    core_t *c = new_core(&m);
    channel_t *ch = core_channel(c, "c", 1);
    job_def_t once = def("@every 10s", "once");
    once.missed = JOB_MISSED_ONCE;
    job_t *j = put(c, ch, T0, "j", &once, 1);
    core_tick(c, T0 + 10 * S);
    c = restart(c, &m, T0 + 15 * S);
    ch = core_channel_find(c, "c", 1);
    j = core_job_get(c, ch, "j", 1);
    assert_true(j->next_at == T0 + 20 * S);
    core_tick(c, T0 + 19 * S);
    assert_int_equal(j->runs, 1);
    core_free(c);
    ml_drop(&m, 0);
}

/* ---- the differential test's driver (tests/crondiff/run.py) ---- */

/* Prints a job's preview as tests/crondiff/robfig.go prints fire times:
 * up to n times, then "-" if the definition ends. */
static void print_runs(const ntime_t *t, size_t k, size_t n)
{
    for (size_t i = 0; i < k; i++)
        printf(i ? " %lld" : "%lld", (long long)t[i]);
    if (k < n)
        printf(k ? " -" : "-");
    putchar('\n');
}

/* "test_jobs --diff": the input of "test_cron --diff" ("start_ns 0x1f
 * count 0x1f definition [0x1f ...]"); for each line, a job of that
 * definition created at start_ns and its preview of count next runs
 * (core_job_next_runs), or "E" if the job is refused. The preview of the
 * same job paused at start_ns must be the same, else "P" is printed. */
static int diff_driver(void)
{
    static char line[1 << 16];
    ntime_t a[128], b[128];
    while (fgets(line, sizeof line, stdin)) {
        char *f1 = strchr(line, '\x1f'), *f2 = f1 ? strchr(f1 + 1, '\x1f') : NULL, err[512];
        if (!f2)
            return fprintf(stderr, "test_jobs --diff: bad input line\n"), 2;
        size_t len = strcspn(f2 + 1, "\x1f\n"), n = (size_t)atoi(f1 + 1);
        ntime_t start = strtoll(line, NULL, 10);
        if (n > 128)
            return fprintf(stderr, "test_jobs --diff: count above 128\n"), 2;
        core_t *c = core_new(tz_local());
        channel_t *ch = core_channel(c, "c", 1);
        job_t *j;
        if (core_job_add(c, ch, start, "j", 1, f2 + 1, len, "", 0, S, &j, err, sizeof err) != CORE_OK) {
            puts("E");
        } else {
            size_t k = core_job_next_runs(c, j, start, a, n);
            if (core_job_pause(c, ch, start, "j", 1, 1, &j) != CORE_OK ||
                core_job_next_runs(c, j, start, b, n) != k || memcmp(a, b, k * sizeof(a[0])) != 0)
                puts("P");
            else
                print_runs(a, k, n);
        }
        core_free(c);
    }
    tz_cleanup();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--diff") == 0)
        return diff_driver();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_create_replace_equal),
        cmocka_unit_test(test_pause_resume_trigger),
        cmocka_unit_test(test_overlap_skip),
        cmocka_unit_test(test_next_runs_match_fires),
        cmocka_unit_test(test_restart_keeps_state),
        cmocka_unit_test(test_missed_once),
        cmocka_unit_test(test_missed_once_short_outage),
        cmocka_unit_test(test_missed_once_nothing_missed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
