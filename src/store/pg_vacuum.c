/*
 * pg_vacuum.c -- VACUUM of the events table while many of its rows are
 * dead, and ANALYZE of it after many changed (see pg.h).
 *
 * Every taken and every deleted event leaves a dead row, and dead entries
 * at the head of the free-events index that each acquire walks past.
 * Autovacuum comes by once a minute at most (its naptime), and to a big
 * table only once a fifth of it has died: a busy queue's consumption
 * slows in a saw tooth between its runs (docs/performance.md, "Vacuum
 * while consuming"). So every CHECK_EVERY_NS a replica reads the table's
 * dead-row count from the statistics and, at MIN_DEAD or more, runs
 * VACUUM itself. Likewise ANALYZE, once MIN_CHANGED rows and a tenth of
 * the table changed since the last: the counting and listing statements
 * (docs/SCHEMA.md "Counting") read few rows only with statistics that
 * know the table, and autovacuum would gather them up to a minute later.
 *
 * It does so on the background connection (s->bg, pg.c): VACUUM runs
 * outside any transaction and may take a while, and no request waits
 * behind it there. SKIP_LOCKED: a replica that finds another's VACUUM, or
 * autovacuum, at work on the table passes at once, so replicas need no
 * leader. TRUNCATE false: giving back the table's empty end would take a
 * lock that publishes wait for. That connection's statement_timeout is
 * -database-timeout: a VACUUM that outlasts it is cancelled by the
 * database, said once in the log, and the next check waits BACKOFF_NS
 * (autovacuum goes on as before). Messages below ERROR (a skip) are not
 * sent there. Only the table's owner or the database's may VACUUM it: a
 * replica running as another role says so once and leaves it to
 * autovacuum. The /metrics read shares that connection; each waits until
 * the other is done, so that neither waits past its deadline behind the
 * other.
 */
#include "pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"

#define CHECK_EVERY_NS (2 * NTIME_NS_PER_S)
#define MIN_DEAD 10000
#define MIN_CHANGED 10000  /* ANALYZE after this many rows changed... */
#define ANALYZE_SHARE 10   /* ...and a tenth of the table, as autovacuum */
#define ANALYZE_EVERY_NS (10 * NTIME_NS_PER_S) /* and no more often (a small busy table) */
#define BACKOFF_NS (60 * NTIME_NS_PER_S)
#define RETRY_NS (100 * NTIME_NS_PER_MS)

struct pg_vacuum {
    pgs_t *s;
    ntime_t check_at;
    int busy;                 /* a check or a VACUUM is out */
    int failing;              /* the last VACUUM failed (logged once) */
    int not_owner;            /* this role may not VACUUM it or ANALYZE it
                                 (logged once) */
    int sent;                 /* Q_VACUUM or Q_ANALYZE, while out */
    ntime_t analyzed_at;      /* when the last ANALYZE was sent */
    uint64_t runs;            /* VACUUMs that ended without an error */
};

pg_vacuum_t *pg_vacuum_new(pgs_t *s)
{
    pg_vacuum_t *v = xcalloc(1, sizeof(*v));
    v->s = s;
    return v;
}

void pg_vacuum_free(pg_vacuum_t *v)
{
    free(v);
}

uint64_t pg_vacuum_runs(const pg_vacuum_t *v)
{
    return v->runs;
}

/* The answer to the VACUUM or ANALYZE sent (v->sent). */
static void on_upkeep(pg_query_t *q, void *arg)
{
    pg_vacuum_t *v = arg;
    const char *what = v->sent == Q_VACUUM ? "VACUUM" : "ANALYZE";
    char msg[700];
    v->busy = 0;
    if (pg_query_status(q) == PG_OK) {
        if (v->sent == Q_VACUUM)
            v->runs++;
        if (v->failing) {
            snprintf(msg, sizeof(msg), "%s of the events table works again", what);
            pgs_log(v->s, "info", msg);
        }
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
    if (strcmp(pg_query_sqlstate(q), "57014") == 0)
        snprintf(msg, sizeof(msg), "%s of the events table outlasted -database-timeout and was cancelled;"
                                   " tried again in a minute, autovacuum goes on meanwhile", what);
    else
        snprintf(msg, sizeof(msg), "%s of the events table failed (%s); tried again in a minute", what,
                 pg_query_error(q));
    pgs_log(v->s, "warn", msg);
}

/* Says once that this role may not VACUUM or ANALYZE the table (the
 * database would skip it with a warning), and once that it may again. */
static void say_owner(pg_vacuum_t *v, int may, const char *owner)
{
    if (may == !v->not_owner)
        return;
    v->not_owner = !may;
    char msg[400];
    if (may)
        snprintf(msg, sizeof(msg), "VACUUM and ANALYZE of the events table: this role may run them again");
    else
        snprintf(msg, sizeof(msg), "VACUUM and ANALYZE of the events table are left to autovacuum: only its"
                                   " owner (%.100s) or the database's may run them, and this role is neither",
                 owner);
    pgs_log(v->s, may ? "info" : "warn", msg);
}

static void on_dead(pg_query_t *q, void *arg)
{
    pg_vacuum_t *v = arg;
    const PGresult *r = pg_query_result(q, 0);
    if (pg_query_status(q) != PG_OK || !r || PQntuples(r) != 1) {
        v->busy = 0;
        return;
    }
    say_owner(v, pg_get_bool(r, 0, 1), PQgetvalue(r, 0, 2));
    int64_t dead = pg_get_i64(r, 0, 0), changed = pg_get_i64(r, 0, 3), rows = pg_get_i64(r, 0, 4);
    ntime_t now = pgs_now(v->s);
    int analyze = changed >= MIN_CHANGED && changed >= rows / ANALYZE_SHARE &&
                  (!v->analyzed_at || now - v->analyzed_at >= ANALYZE_EVERY_NS);
    if (v->not_owner || (dead < MIN_DEAD && !analyze)) {
        v->busy = 0;
        return;
    }
    v->sent = dead >= MIN_DEAD ? Q_VACUUM : Q_ANALYZE;
    if (v->sent == Q_ANALYZE)
        v->analyzed_at = now;
    pg_query_t *vq = pg_query_new(v->s->bg, on_upkeep, v);
    pg_query_stmt(vq, v->sent);
    pg_query_send(vq);
}

ntime_t pg_vacuum_turn(pg_vacuum_t *v, ntime_t now)
{
    if (v->busy || now < v->check_at)
        return v->check_at;
    /* One thing at a time there: while a read for /metrics is out, look
     * again shortly. */
    int other = pg_pool_busy(v->s->bg);
    v->check_at = now + (other ? RETRY_NS : CHECK_EVERY_NS);
    if (other || !pg_pool_ready(v->s->bg))
        return v->check_at;
    v->busy = 1;
    pg_query_t *q = pg_query_new(v->s->bg, on_dead, v);
    pg_query_stmt(q, Q_DEAD);
    pg_query_send(q);
    return v->check_at;
}
