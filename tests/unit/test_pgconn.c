/*
 * test_pgconn.c -- the PostgreSQL connection pool on h2o's loop, against a
 * throwaway PostgreSQL 15 (tests/pg/pgctl.sh; DISTRIBUERAD_TEST_DATABASE_URL
 * points at another one instead): connecting without blocking, pipelined
 * queries spread over the pool, one request's statements as one
 * transaction, a deadline that fails a hung query and a pool that comes
 * back by itself, an unreachable database answered at once, binary
 * parameters and results (NUL bytes in bytea), and where a query goes
 * (quick ones two to a connection, never behind one that waits).
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
#include "store/pgconn.h"


static const Oid t_i8[] = {PG_INT8};
static const Oid t_bytea[] = {PG_BYTEA};
static const Oid t_ins[] = {PG_INT8};
static const pg_stmt_t stmts[] = {
    {"plus1", "SELECT $1 + 1", 1, t_i8},
    {"echo", "SELECT $1, length($1)", 1, t_bytea},
    {"ins", "INSERT INTO pgconn_t (v) VALUES ($1)", 1, t_ins},
    {"div0", "SELECT 1 / (SELECT count(*) - count(*) FROM pgconn_t)", 0, NULL},
    {"sleep", "SELECT pg_sleep(2)", 0, NULL},
    {"count", "SELECT count(*) FROM pgconn_t", 0, NULL},
    /* which backend ran it: quick, not quick, quick but waiting 300 ms */
    {"pid", "SELECT pg_backend_pid()::int8", 0, NULL},
    {"pid_slow", "SELECT pg_backend_pid()::int8", 0, NULL},
    {"pid_wait", "SELECT pid FROM (SELECT pg_backend_pid()::int8 AS pid, pg_sleep(0.3)) s", 0, NULL},
};
enum { S_PLUS1, S_ECHO, S_INS, S_DIV0, S_SLEEP, S_COUNT, S_PID, S_PID_SLOW, S_PID_WAIT };
static const unsigned char quick[sizeof(stmts) / sizeof(stmts[0])] = {[S_PLUS1] = 1, [S_PID] = 1, [S_PID_WAIT] = 1};

static int group_setup(void **state)
{
    (void)state;
    if (pgtest_start() != 0)
        return -1;
    if (!*url)
        return 0; /* tests skip */
    char cmd[2048], out[256];
    snprintf(cmd, sizeof(cmd), "psql -X -q '%s' -c 'DROP TABLE IF EXISTS pgconn_t; CREATE TABLE pgconn_t (v bigint)'", url);
    return sh(cmd, out, sizeof(out)) == 0 ? 0 : -1;
}

static void skip_without_db(void)
{
    if (*url)
        return;
    if (getenv("CI") && !strcmp(getenv("CI"), "true"))
        fail_msg("PostgreSQL 15 is not installed (scripts/deps.sh test)");
    skip();
}

/* ---- a loop and a pool ---- */

typedef struct got {
    int done;
    pg_status_t status;
    char sqlstate[6];
    int64_t v;
    int64_t len;
    char bytes[64];
    int has_first, has_second;
    uint64_t at_ms;
} got_t;

static h2o_evloop_t *loop;

static void on_done(pg_query_t *q, void *arg)
{
    got_t *g = arg;
    g->done = 1;
    g->at_ms = mono_ms();
    g->status = pg_query_status(q);
    if (g->status != PG_OK && getenv("PGCONN_DEBUG"))
        fprintf(stderr, "query failed: %s\n", pg_query_error(q));
    snprintf(g->sqlstate, sizeof(g->sqlstate), "%s", pg_query_sqlstate(q));
    const PGresult *r = pg_query_result(q, 0);
    g->has_first = r != NULL;
    g->has_second = pg_query_result(q, 1) != NULL;
    if (r && PQntuples(r) == 1 && PQnfields(r) >= 1 && PQftype(r, 0) == PG_INT8)
        g->v = pg_get_i64(r, 0, 0);
    if (r && PQntuples(r) == 1 && PQnfields(r) == 2) {
        size_t n = (size_t)PQgetlength(r, 0, 0);
        memcpy(g->bytes, PQgetvalue(r, 0, 0), n < sizeof(g->bytes) ? n : sizeof(g->bytes));
        g->len = pg_get_i32(r, 0, 1);
    }
}

static pg_pool_t *pool_new(const char *u, size_t size, uint64_t timeout_ms)
{
    if (!loop)
        loop = h2o_evloop_create();
    pg_pool_config_t cfg = {.url = u, .schema = "public", .size = size, .timeout_ms = timeout_ms,
                            .loop = loop, .stmts = stmts, .nstmts = sizeof(stmts) / sizeof(stmts[0]), .quick = quick};
    return pg_pool_new(&cfg);
}

/* Runs the loop until *flag or ms pass; returns *flag. */
static int run_until(const int *flag, uint64_t ms)
{
    uint64_t until = mono_ms() + ms;
    while (!*flag && mono_ms() < until)
        h2o_evloop_run(loop, 10);
    return *flag;
}

static int pool_is_ready(pg_pool_t *p, uint64_t ms)
{
    uint64_t until = mono_ms() + ms;
    while (!pg_pool_ready(p) && mono_ms() < until)
        h2o_evloop_run(loop, 10);
    return pg_pool_ready(p);
}

/* Sends statement st alone (said to touch rows rows, 0: not said). */
static void send_one(pg_pool_t *p, int st, size_t rows, got_t *g)
{
    pg_query_t *q = pg_query_new(p, on_done, g);
    pg_query_stmt(q, st);
    if (rows)
        pg_query_rows(q, rows);
    pg_query_send(q);
}

/* A pool of size connections, every one of them ready. */
static pg_pool_t *pool_all_ready(size_t size)
{
    pg_pool_t *p = pool_new(url, size, 5000);
    uint64_t until = mono_ms() + 5000;
    while (pg_pool_nready(p) < size && mono_ms() < until)
        h2o_evloop_run(loop, 10);
    assert_int_equal(pg_pool_nready(p), size);
    return p;
}

static int all_done(const got_t *g, int n, uint64_t ms)
{
    uint64_t until = mono_ms() + ms;
    for (;;) {
        int all = 1;
        for (int i = 0; i < n; i++)
            all &= g[i].done;
        if (all || mono_ms() >= until)
            return all;
        h2o_evloop_run(loop, 10);
    }
}

/* ---- tests ---- */

static void test_connects_and_pipelines(void **state)
{
    (void)state;
    skip_without_db();
    pg_pool_t *p = pool_new(url, 3, 5000);
    assert_false(pg_pool_ready(p)); /* connecting happens on the loop */
    assert_true(pool_is_ready(p, 5000));
    enum { N = 200 };
    static got_t g[N];
    memset(g, 0, sizeof(g));
    for (int i = 0; i < N; i++) {
        pg_query_t *q = pg_query_new(p, on_done, &g[i]);
        pg_query_stmt(q, S_PLUS1);
        pg_query_i64(q, (int64_t)i * 1000000000000LL);
        pg_query_send(q);
        assert_int_equal(g[i].done, 0); /* never inside send */
    }
    int all = 0;
    uint64_t until = mono_ms() + 5000;
    while (!all && mono_ms() < until) {
        h2o_evloop_run(loop, 10);
        all = 1;
        for (int i = 0; i < N; i++)
            all &= g[i].done;
    }
    assert_true(all);
    for (int i = 0; i < N; i++) {
        assert_int_equal(g[i].status, PG_OK);
        assert_true(g[i].v == (int64_t)i * 1000000000000LL + 1);
    }
    pg_pool_free(p);
}

static void test_binary_bytes_round_trip(void **state)
{
    (void)state;
    skip_without_db();
    pg_pool_t *p = pool_new(url, 1, 5000);
    got_t g = {0};
    pg_query_t *q = pg_query_new(p, on_done, &g);
    pg_query_stmt(q, S_ECHO);
    pg_query_bytes(q, "a\0b\"\\", 5);
    pg_query_send(q);
    assert_true(run_until(&g.done, 5000));
    assert_int_equal(g.status, PG_OK);
    assert_int_equal(g.len, 5);
    assert_memory_equal(g.bytes, "a\0b\"\\", 5);
    pg_pool_free(p);
}

/* A request's statements commit together or not at all. */
static void test_one_request_one_transaction(void **state)
{
    (void)state;
    skip_without_db();
    pg_pool_t *p = pool_new(url, 2, 5000);
    got_t bad = {0}, good = {0}, count = {0};
    pg_query_t *q = pg_query_new(p, on_done, &bad);
    pg_query_stmt(q, S_INS);
    pg_query_i64(q, 7);
    pg_query_stmt(q, S_DIV0);
    pg_query_stmt(q, S_INS);
    pg_query_i64(q, 8);
    pg_query_send(q);
    assert_true(run_until(&bad.done, 5000));
    assert_int_equal(bad.status, PG_ERROR);
    assert_string_equal(bad.sqlstate, "22012"); /* division_by_zero */
    q = pg_query_new(p, on_done, &good);
    pg_query_stmt(q, S_INS);
    pg_query_i64(q, 9);
    pg_query_send(q);
    assert_true(run_until(&good.done, 5000));
    assert_int_equal(good.status, PG_OK);
    q = pg_query_new(p, on_done, &count);
    pg_query_stmt(q, S_COUNT);
    pg_query_send(q);
    assert_true(run_until(&count.done, 5000));
    assert_int_equal(count.v, 1); /* 9 only: 7 rolled back with the error */
    pg_pool_free(p);
}

/* A query the database does not answer in time fails at its deadline;
 * the pool reconnects and serves again. */
static void test_deadline_then_recovers(void **state)
{
    (void)state;
    skip_without_db();
    pg_pool_t *p = pool_new(url, 1, 300);
    assert_true(pool_is_ready(p, 5000));
    got_t slow = {0}, after = {0};
    uint64_t t0 = mono_ms();
    pg_query_t *q = pg_query_new(p, on_done, &slow);
    pg_query_stmt(q, S_SLEEP);
    pg_query_send(q);
    assert_true(run_until(&slow.done, 5000));
    assert_int_equal(slow.status, PG_UNAVAILABLE);
    assert_true(slow.at_ms - t0 >= 250 && slow.at_ms - t0 < 1500);
    assert_true(pool_is_ready(p, 5000));
    q = pg_query_new(p, on_done, &after);
    pg_query_stmt(q, S_PLUS1);
    pg_query_i64(q, 41);
    pg_query_send(q);
    assert_true(run_until(&after.done, 5000));
    assert_int_equal(after.status, PG_OK);
    assert_true(after.v == 42);
    pg_pool_free(p);
}

/* Nothing listens: the pool never blocks the loop, and once its attempts
 * failed a query is refused at once rather than at its deadline. */
static void test_unreachable_fails_fast(void **state)
{
    (void)state;
    skip_without_db();
    char bad[1200];
    snprintf(bad, sizeof(bad), "host=%s/nowhere user=postgres password=hush", *cluster ? cluster : "/tmp");
    pg_pool_t *p = pool_new(bad, 2, 5000);
    int never = 0;
    run_until(&never, 300); /* the first attempts fail */
    assert_false(pg_pool_ready(p));
    got_t g = {0};
    uint64_t t0 = mono_ms();
    pg_query_t *q = pg_query_new(p, on_done, &g);
    pg_query_stmt(q, S_PLUS1);
    pg_query_i64(q, 1);
    pg_query_send(q);
    assert_true(run_until(&g.done, 5000));
    assert_int_equal(g.status, PG_UNAVAILABLE);
    assert_true(g.at_ms - t0 < 500);
    pg_pool_free(p);
}

/* Quick queries go two to a connection, anything else to the least busy
 * one (pgconn.h): the backend that answered shows where each went. */
static void test_quick_queries_two_to_a_connection(void **state)
{
    (void)state;
    skip_without_db();
    pg_pool_t *p = pool_all_ready(3);
    got_t g[3] = {0};
    for (int i = 0; i < 3; i++)
        send_one(p, S_PID, 0, &g[i]);
    assert_true(all_done(g, 3, 5000));
    assert_true(g[0].v == g[1].v);
    assert_true(g[2].v != g[0].v);
    got_t s[2] = {0}; /* not quick */
    send_one(p, S_PID_SLOW, 0, &s[0]);
    send_one(p, S_PID_SLOW, 0, &s[1]);
    assert_true(all_done(s, 2, 5000));
    assert_true(s[0].v != s[1].v);
    got_t r[2] = {0}; /* quick statements, but many rows */
    send_one(p, S_PID, 0, &r[0]);
    send_one(p, S_PID, PG_QUICK_ROWS + 1, &r[1]);
    assert_true(all_done(r, 2, 5000));
    assert_true(r[0].v != r[1].v);
    pg_pool_free(p);
}

/* A quick query that waits in the database keeps later ones off its
 * connection once it is PG_PACK_AGE_MS old: they are answered first. */
static void test_nothing_queues_behind_a_waiting_query(void **state)
{
    (void)state;
    skip_without_db();
    pg_pool_t *p = pool_all_ready(2);
    got_t w = {0}, later = {0};
    send_one(p, S_PID_WAIT, 0, &w);
    int never = 0;
    run_until(&never, 50);
    send_one(p, S_PID, 0, &later);
    assert_true(run_until(&later.done, 5000));
    assert_false(w.done);
    assert_true(run_until(&w.done, 5000));
    assert_true(w.v != later.v);
    pg_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connects_and_pipelines),
        cmocka_unit_test(test_binary_bytes_round_trip),
        cmocka_unit_test(test_one_request_one_transaction),
        cmocka_unit_test(test_deadline_then_recovers),
        cmocka_unit_test(test_unreachable_fails_fast),
        cmocka_unit_test(test_quick_queries_two_to_a_connection),
        cmocka_unit_test(test_nothing_queues_behind_a_waiting_query),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
