/*
 * pg_vacuum.c -- VACUUM of the events table while many of its rows are
 * dead (see pg.h).
 *
 * Every taken and every deleted event leaves a dead row, and dead entries
 * at the head of the free-events index that each acquire walks past.
 * Autovacuum comes by once a minute at most (its naptime), and to a big
 * table only once a fifth of it has died: a busy queue's consumption
 * slows in a saw tooth between its runs (docs/performance.md, "Vacuum
 * while consuming"). So every CHECK_EVERY_NS a replica reads the table's
 * dead-row count from the statistics and, at MIN_DEAD or more, runs
 * VACUUM itself.
 *
 * It does so on a connection of its own (a pool of one): VACUUM runs
 * outside any transaction and may take a while, and no request waits
 * behind it. SKIP_LOCKED: a replica that finds another's VACUUM, or
 * autovacuum, at work on the table passes at once, so replicas need no
 * leader. TRUNCATE false: giving back the table's empty end would take a
 * lock that publishes wait for. The connection's statement_timeout is
 * -database-timeout: a VACUUM that outlasts it is cancelled by the
 * database, said once in the log, and the next check waits BACKOFF_NS
 * (autovacuum goes on as before). Messages below ERROR (a skip) are not
 * sent.
 */
#include "pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"

#define CHECK_EVERY_NS (2 * NTIME_NS_PER_S)
#define MIN_DEAD 10000
#define BACKOFF_NS (60 * NTIME_NS_PER_S)
#define DEADLINE_SLACK_MS 1000 /* the database cancels before the pool gives up */

enum { V_DEAD, V_VACUUM, V_COUNT };

static const pg_stmt_t v_stmts[V_COUNT] = {
    [V_DEAD] = {"dq_dead", "SELECT pg_stat_get_dead_tuples('events'::regclass)", 0, NULL},
    [V_VACUUM] = {"dq_vacuum", "VACUUM (SKIP_LOCKED, TRUNCATE false) events", 0, NULL},
};

struct pg_vacuum {
    pgs_t *s;
    pg_pool_t *pool;
    char session[160];        /* the connection's set_config statement */
    ntime_t check_at;
    int busy;                 /* a check or a VACUUM is out */
    int failing;              /* the last VACUUM failed (logged once) */
    uint64_t runs;            /* VACUUMs that ended without an error */
};

pg_vacuum_t *pg_vacuum_new(pgs_t *s)
{
    pg_vacuum_t *v = xcalloc(1, sizeof(*v));
    v->s = s;
    snprintf(v->session, sizeof(v->session),
             "SELECT set_config('statement_timeout', '%llu', false), set_config('client_min_messages', 'error', "
             "false)",
             (unsigned long long)s->cfg.timeout_ms);
    pg_pool_config_t pc = {.url = s->cfg.url, .schema = s->cfg.schema, .size = 1,
                           .timeout_ms = s->cfg.timeout_ms + DEADLINE_SLACK_MS, .loop = s->cfg.loop,
                           .stmts = v_stmts, .nstmts = V_COUNT, .session_sql = v->session,
                           .name = "maintenance", .log = s->cfg.log};
    v->pool = pg_pool_new(&pc);
    return v;
}

void pg_vacuum_free(pg_vacuum_t *v)
{
    if (!v)
        return;
    pg_pool_free(v->pool); /* callbacks run: v must still be there */
    free(v);
}

uint64_t pg_vacuum_runs(const pg_vacuum_t *v)
{
    return v->runs;
}

static void vlog(pg_vacuum_t *v, const char *level, const char *msg)
{
    if (v->s->cfg.log)
        v->s->cfg.log(level, msg);
}

static void on_vacuum(pg_query_t *q, void *arg)
{
    pg_vacuum_t *v = arg;
    v->busy = 0;
    if (pg_query_status(q) == PG_OK) {
        v->runs++;
        if (v->failing)
            vlog(v, "info", "VACUUM of the events table works again");
        v->failing = 0;
        return;
    }
    /* PG_UNAVAILABLE: the pool logged the lost connection. */
    if (pg_query_status(q) != PG_ERROR)
        return;
    v->check_at = pgs_now(v->s) + BACKOFF_NS;
    if (v->failing)
        return;
    v->failing = 1;
    char msg[700];
    if (strcmp(pg_query_sqlstate(q), "57014") == 0)
        snprintf(msg, sizeof(msg), "VACUUM of the events table outlasted -database-timeout and was cancelled;"
                                   " tried again in a minute, autovacuum goes on meanwhile");
    else
        snprintf(msg, sizeof(msg), "VACUUM of the events table failed (%s); tried again in a minute",
                 pg_query_error(q));
    vlog(v, "warn", msg);
}

static void on_dead(pg_query_t *q, void *arg)
{
    pg_vacuum_t *v = arg;
    const PGresult *r = pg_query_result(q, 0);
    if (pg_query_status(q) != PG_OK || !r || PQntuples(r) != 1 || pg_get_i64(r, 0, 0) < MIN_DEAD) {
        v->busy = 0;
        return;
    }
    pg_query_t *vq = pg_query_new(v->pool, on_vacuum, v);
    pg_query_stmt(vq, V_VACUUM);
    pg_query_send(vq);
}

ntime_t pg_vacuum_turn(pg_vacuum_t *v, ntime_t now)
{
    if (v->busy || now < v->check_at)
        return v->check_at;
    v->check_at = now + CHECK_EVERY_NS;
    if (!pg_pool_ready(v->pool))
        return v->check_at;
    v->busy = 1;
    pg_query_t *q = pg_query_new(v->pool, on_dead, v);
    pg_query_stmt(q, V_DEAD);
    pg_query_send(q);
    return v->check_at;
}
