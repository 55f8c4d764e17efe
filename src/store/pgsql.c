/*
 * pgsql.c -- the PostgreSQL store's statements, prepared on every
 * connection (see pg_int.h for the column orders the store reads).
 *
 * The functions they call are in src/store/migrations/; every statement
 * reads the database's clock (now_ns()), never the replica's.
 */
#include "pg_int.h"

#define NEVER "9223372036854775807"
#define EV_COLS                                                                                          \
    "seq, id_ms, priority, data, data_json, deliveries, dead_lettered_from, published_at, visible_at, " \
    "lives_until, locked_until, lock_token"
#define EV_COLS_OF(x)                                                                                    \
    "(" x ").seq, (" x ").id_ms, (" x ").priority, (" x ").data, (" x ").data_json, (" x ").deliveries, " \
    "(" x ").dead_lettered_from, (" x ").published_at, (" x ").visible_at, (" x ").lives_until, "       \
    "(" x ").locked_until, (" x ").lock_token"
#define JOB_COLS                                                                                       \
    "name, cron_def, data, data_json, ttl_ns, priority, overlap_skip, missed_once, missed_window_ns, " \
    "paused, runs, skipped, last_run_at, next_at, created_at"
#define JOB_COLS_OF(x)                                                                                  \
    "(" x ").name, (" x ").cron_def, (" x ").data, (" x ").data_json, (" x ").ttl_ns, (" x ").priority, " \
    "(" x ").overlap_skip, (" x ").missed_once, (" x ").missed_window_ns, (" x ").paused, (" x ").runs, " \
    "(" x ").skipped, (" x ").last_run_at, (" x ").next_at, (" x ").created_at"

#define TOTALS                                                                           \
    "coalesce(sum(published), 0)::int8 AS p, coalesce(sum(deleted), 0)::int8 AS d, "     \
    "coalesce(sum(expired), 0)::int8 AS x, coalesce(sum(dead_lettered), 0)::int8 AS dl, "  \
    "coalesce(sum(dl_failed), 0)::int8 AS f, coalesce(sum(lock_expired), 0)::int8 AS le"

/* A channel's counts without reading each of its events: its rows are its
 * counters' live total; ready is what is left of them after the rows that
 * are gone (the expiry index), those with a lease (locked, or lapsed and
 * scheduled or held: the lease index) and the free scheduled ones (the
 * visibility order index, from now on). The oldest ready event is the
 * first free one in visibility order or a lapsed lease's. Each scan reads
 * only rows that change with time (docs/SCHEMA.md "Counting"); one
 * statement, one snapshot, so the live totals and the rows agree. */
#define NOW "now_ns()"
#define GONE_ROWS "FROM events e WHERE e.lives_until <= " NOW
#define LEASE_ROWS "FROM events e WHERE e.locked_until IS NOT NULL AND e.lives_until > " NOW
#define LEASE_COUNTS                                                                                   \
    "count(*) FILTER (WHERE e.locked_until > " NOW ") AS locked, "                                     \
    "count(*) FILTER (WHERE e.locked_until <= " NOW " AND e.visible_at > " NOW                         \
    " AND e.visible_at <> " NEVER ") AS scheduled, "                                                   \
    "count(*) FILTER (WHERE e.locked_until <= " NOW " AND e.visible_at = " NEVER ") AS held, "         \
    "min(CASE WHEN e.visible_at > e.locked_until THEN e.visible_at ELSE e.published_at END)"           \
    " FILTER (WHERE e.locked_until <= " NOW " AND e.visible_at <= " NOW ") AS oldest"
#define FREE_ROWS(ch) "FROM events e WHERE e.channel = " ch " AND e.locked_until IS NULL AND e.lives_until > " NOW
/* The leases of channel ch that end after (op ">") or by ("<=") now. */
#define LEASES_OF(ch, op)                                                                              \
    "FROM events e WHERE e.channel = " ch " AND e.locked_until IS NOT NULL AND (e.channel, e.locked_until) " \
    op " (" ch ", " NOW ")"
#define FREE_SCHEDULED(ch) "(SELECT count(*) AS n " FREE_ROWS(ch) " AND e.published_at > " NOW ")"
#define FREE_OLDEST(ch)                                                                                \
    "(SELECT (SELECT e.published_at " FREE_ROWS(ch) " AND e.published_at <= " NOW                       \
    " ORDER BY e.published_at, e.vseq LIMIT 1) AS t)"
/* A listing: its rows x (the event, vseq, okey: where it is shown) from
 * the cursor ($4, $5) on, in shown order; LIST_N: $6 of them (0: all). */
#define LIST_OUT "SELECT now_ns(), false, " EV_COLS ", vseq, okey FROM ("
#define LIST_END ") x WHERE NOT $3 OR (okey, vseq) > ($4, $5) ORDER BY okey, vseq "
#define LIST_N "LIMIT CASE WHEN $6 > 0 THEN $6 END"
/* Ready free rows of $1 (and locked ones for state 0) from the cursor on,
 * shown where they were published: one range of events_order. */
#define LIST_FREE_OR_LOCKED                                                                            \
    "SELECT e.*, e.published_at AS okey FROM events e WHERE e.channel = $1"                            \
    " AND (e.channel, e.published_at, e.vseq) > ($1, $4, $5) AND e.lives_until > " NOW                 \
    " AND ((e.locked_until IS NULL AND e.published_at <= " NOW ") OR ($2 = 0 AND e.locked_until > " NOW "))"
/* Lapsed leases of $1 that are ready, at their place or (retry delay) at
 * the back: the lapsed part of events_leases, sorted. */
#define LIST_LAPSED_READY                                                                              \
    "SELECT e.*, CASE WHEN e.visible_at > e.locked_until THEN e.visible_at ELSE e.published_at END"   \
    " AS okey " LEASES_OF("$1", "<=") " AND e.visible_at <= " NOW " AND e.lives_until > " NOW
/* ready, scheduled, locked, oldest from k (lv), g (n), l, f (n), o (t). */
#define STAT_COLS                                                                                      \
    "coalesce(k.lv, 0) - coalesce(g.n, 0) - coalesce(l.locked, 0) - coalesce(l.scheduled, 0)"          \
    " - coalesce(l.held, 0) - f.n, coalesce(l.scheduled, 0) + f.n, coalesce(l.locked, 0),"             \
    " coalesce(least(l.oldest, o.t), 0)"

/* Every channel's stats row (columns as Q_STATS's from 1), by name;
 * extra: more columns of c, the channel's row. */
#define CHANNEL_ROWS(extra)                                                                            \
    "WITH k AS (SELECT channel, " TOTALS ", coalesce(sum(live), 0)::int8 AS lv FROM counters"          \
    "  GROUP BY channel),"                                                                             \
    " g AS (SELECT e.channel, count(*) AS n " GONE_ROWS " GROUP BY e.channel),"                        \
    " l AS (SELECT e.channel, " LEASE_COUNTS " " LEASE_ROWS " GROUP BY e.channel),"                    \
    " j AS (SELECT channel, count(*) AS c FROM jobs GROUP BY channel)"                                 \
    " SELECT c.name, " STAT_COLS ", coalesce(j.c, 0), coalesce(k.p, 0), coalesce(k.d, 0),"             \
    " coalesce(k.x, 0), coalesce(k.dl, 0)" extra                                                       \
    " FROM channels c LEFT JOIN k ON k.channel = c.name LEFT JOIN g ON g.channel = c.name"             \
    " LEFT JOIN l ON l.channel = c.name LEFT JOIN j ON j.channel = c.name,"                            \
    " LATERAL " FREE_SCHEDULED("c.name") " f, LATERAL " FREE_OLDEST("c.name") " o"                     \
    " ORDER BY c.name COLLATE \"C\""

static const Oid t_tick[] = {0};
static const Oid t_sweep[] = {PG_INT4, PG_INT8};
static const Oid t_publish[] = {PG_TEXT, PG_INT8, PG_INT8, PG_BYTEA_ARRAY, PG_BOOL_ARRAY, PG_INT2_ARRAY,
                                PG_INT8_ARRAY, PG_INT8_ARRAY, PG_INT8_ARRAY, PG_BYTEA_ARRAY};
static const Oid t_publish_fast[] = {PG_TEXT, PG_INT8, PG_BYTEA_ARRAY, PG_BOOL_ARRAY, PG_INT2_ARRAY,
                                     PG_INT8_ARRAY, PG_INT8_ARRAY, PG_INT8_ARRAY};
static const Oid t_list[] = {PG_TEXT, PG_INT2, PG_BOOL, PG_INT8, PG_INT8, PG_INT8};
static const Oid t_ev[] = {PG_INT8, PG_INT8, PG_TEXT, PG_INT8, PG_INT8, PG_INT8};
static const Oid t_extend[] = {PG_INT8, PG_INT8, PG_TEXT, PG_INT8, PG_INT8};
static const Oid t_delete_many[] = {PG_TEXT, PG_INT8_ARRAY, PG_INT8_ARRAY, PG_INT8_ARRAY};
static const Oid t_acquire[] = {PG_TEXT, PG_INT4, PG_INT8};
static const Oid t_ch[] = {PG_TEXT};
static const Oid t_settings[] = {PG_TEXT, PG_INT8, PG_INT4, PG_TEXT, PG_INT8};
static const Oid t_redrive[] = {PG_TEXT, PG_TEXT, PG_INT8, PG_INT8, PG_INT8};
static const Oid t_job_put[] = {PG_TEXT, PG_INT8, PG_BOOL, PG_TEXT, PG_TEXT, PG_BYTEA, PG_BOOL,
                                PG_INT8, PG_INT2, PG_BOOL, PG_BOOL, PG_INT8, PG_INT8, PG_INT8};
static const Oid t_job[] = {PG_TEXT, PG_TEXT};
static const Oid t_job_pause[] = {PG_TEXT, PG_TEXT, PG_BOOL, PG_INT8};
static const Oid t_job_trigger[] = {PG_TEXT, PG_TEXT, PG_INT8};
static const Oid t_i8[] = {PG_INT8};
static const Oid t_job_fire[] = {PG_TEXT, PG_TEXT, PG_INT8, PG_INT8, PG_INT8, PG_BOOL};
static const Oid t_texts[] = {PG_TEXT_ARRAY};
static const Oid t_notify[] = {PG_TEXT, PG_TEXT_ARRAY};

#ifndef DQ_NULL_STATEMENTS
/* ev_publish's common case as one statement, without PL/pgSQL: no
 * keys, the channel exists and has room under its limit $2 (0: none).
 * Otherwise no row comes back, nothing changed, and ev_publish runs
 * (it makes the channel, sweeps a full one, refuses). The rows come
 * back in seq order, which is the order of the elements: nextval runs
 * as unnest hands them out. */
#define PUBLISH_FAST_SQL                                                                            \
    "WITH ok AS (SELECT now_ns() AS now FROM channels WHERE name = $1 AND ($2 <= 0 OR"              \
    "  (SELECT coalesce(sum(live), 0) FROM counters WHERE channel = $1) + cardinality($3) <= $2))," \
    " x AS (SELECT nextval('event_seq') AS s, ok.now, u.*, coalesce(u.a, ok.now + u.i) AS pub"      \
    "  FROM ok, unnest($3, $4, $5, $6, $7, $8) WITH ORDINALITY u(d, j, p, a, i, t, o)),"            \
    " ins AS (INSERT INTO events (seq, id_ms, channel, vseq, priority, data, data_json,"            \
    "  published_at, visible_at, lives_until, counted)"                                             \
    "  SELECT s, now / 1000000, $1, s, p, d, j, pub, pub, pub + t, pub <= now FROM x RETURNING *)," \
    " cnt AS (INSERT INTO counters AS c (channel, slot, published, live)"                           \
    "  SELECT $1, pg_backend_pid(), count(*) FILTER (WHERE counted), count(*) FROM ins"             \
    "  HAVING count(*) > 0 ON CONFLICT (channel, slot) DO UPDATE SET"                               \
    "  published = c.published + excluded.published, live = c.live + excluded.live)"                \
    " SELECT now_ns(), false, " EV_COLS " FROM ins ORDER BY seq"
#define DELETE_MANY_SQL "SELECT s FROM ev_delete_many($1, $2, $3, $4) s"
#define ACQUIRE_SQL "SELECT now_ns(), r.* FROM ev_acquire($1, $2, $3) r"
#else
/* A benchmark's build only (bench/Makefile, out/distribuerad-null; never
 * a server to run): the three statements of publish, acquire and delete
 * make their round trip and answer in the shape the store reads, but
 * store, take and delete nothing. Acquire hands out as many made-up
 * events as asked for, delete answers success. What the replica reaches
 * with it is the ceiling its HTTP side and one round trip a merged
 * statement allow on a host (docs/performance.md, "The ceiling"). */
#define PUBLISH_FAST_SQL                                                                         \
    "WITH x AS (SELECT nextval('event_seq') AS s, now_ns() AS now, u.* FROM"                     \
    "  unnest($3, $4, $5, $6, $7, $8) WITH ORDINALITY u(d, j, p, a, i, t, o))"                   \
    " SELECT now_ns(), false, s, now / 1000000, p, d, j, 0, NULL::text, coalesce(a, now + i),"   \
    "  coalesce(a, now + i), coalesce(a, now + i) + t, NULL::int8, NULL::int8 FROM x ORDER BY s"
#define DELETE_MANY_SQL "SELECT 0 FROM unnest($2) s"
#define ACQUIRE_SQL                                                                                              \
    "SELECT n, false, nextval('event_seq'), n / 1000000, 0::int2, '\\x30313233343536373839616263646566'::bytea," \
    " false, 1, NULL::text, n, n, n + 3600000000000, n + $3, 7::int8"                                            \
    " FROM (SELECT now_ns() AS n) t, generate_series(1, $2)"
#endif

const pg_stmt_t pg_stmts[Q_COUNT] = {
    [Q_TICK] = {"dq_tick",
                "SELECT now_ns(), (SELECT coalesce(sum(live), 0)::int8 FROM counters)",
                0, t_tick},
    [Q_SWEEP] = {"dq_sweep", "SELECT sweep($1, $2)", 2, t_sweep},
    [Q_PUBLISH] = {"dq_publish",
                   "SELECT now_ns(), r.* FROM ev_publish($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) r", 10,
                   t_publish},
    [Q_PUBLISH_FAST] = {"dq_publish_fast", PUBLISH_FAST_SQL, 8, t_publish_fast},
    /* Listings (docs/SCHEMA.md "Listing"): $2 the state, $3 whether
     * there is a cursor ($4, $5; the least values without one), $6 the
     * rows wanted (0: all). Each branch reads one index range in its
     * order, so a page costs its rows, not the channel's. */
    [Q_LIST] = {"dq_list",
                LIST_OUT "(" LIST_FREE_OR_LOCKED " ORDER BY e.published_at, e.vseq " LIST_N ")"
                " UNION ALL " LIST_LAPSED_READY LIST_END LIST_N,
                6, t_list},
    /* The same unpaged (the whole channel): sorted in one go. */
    [Q_LIST_ALL] = {"dq_list_all", LIST_OUT LIST_FREE_OR_LOCKED " UNION ALL " LIST_LAPSED_READY LIST_END, 6, t_list},
    [Q_LIST_LOCKED] = {"dq_list_locked",
                       LIST_OUT "SELECT e.*, e.published_at AS okey " LEASES_OF("$1", ">")
                       " AND e.lives_until > " NOW LIST_END LIST_N,
                       6, t_list},
    [Q_LIST_SCHEDULED] = {"dq_list_scheduled",
                          LIST_OUT "(SELECT e.*, e.published_at AS okey FROM events e WHERE e.channel = $1"
                          " AND (e.channel, e.published_at, e.vseq) > ($1, CASE WHEN $4 > " NOW " THEN $4 ELSE "
                          NOW " END, CASE WHEN $4 > " NOW " THEN $5 ELSE " NEVER " END)"
                          " AND e.locked_until IS NULL AND e.lives_until > " NOW
                          " ORDER BY e.published_at, e.vseq " LIST_N ")"
                          " UNION ALL SELECT e.*, e.visible_at AS okey " LEASES_OF("$1", "<=")
                          " AND e.visible_at > " NOW " AND e.visible_at <> " NEVER " AND e.lives_until > " NOW
                          LIST_END LIST_N,
                          6, t_list},
    [Q_GET] = {"dq_get",
               "SELECT now_ns(), false, " EV_COLS " FROM events e, (SELECT now_ns() AS now) n"
               " WHERE seq = $1 AND id_ms = $2 AND channel = $3 AND lives_until > n.now"
               " AND NOT (coalesce(locked_until <= n.now, false) AND visible_at = " NEVER ")",
               3, t_ev},
    [Q_LOCK] = {"dq_lock", "SELECT now_ns(), r.* FROM ev_lock($1, $2, $3, $4) r", 4, t_ev},
    [Q_UNLOCK] = {"dq_unlock", "SELECT now_ns(), r.* FROM ev_release($1, $2, $3, $4, $5, $6) r", 6, t_ev},
    [Q_EXTEND] = {"dq_extend", "SELECT now_ns(), r.* FROM ev_extend($1, $2, $3, $4, $5) r", 5, t_extend},
    [Q_DELETE_MANY] = {"dq_delete_many", DELETE_MANY_SQL, 4, t_delete_many},
    [Q_ACQUIRE] = {"dq_acquire", ACQUIRE_SQL, 3, t_acquire},
    [Q_STATS] = {"dq_stats",
                 "WITH k AS (SELECT " TOTALS ", coalesce(sum(live), 0)::int8 AS lv FROM counters WHERE channel = $1),"
                 " g AS (SELECT count(*) FILTER (WHERE e.channel = $1) AS n " GONE_ROWS "),"
                 " l AS (SELECT " LEASE_COUNTS " " LEASE_ROWS " AND e.channel = $1)"
                 " SELECT EXISTS (SELECT 1 FROM channels WHERE name = $1), " STAT_COLS ","
                 " (SELECT count(*) FROM jobs WHERE channel = $1), k.p, k.d, k.x, k.dl, k.f, k.le"
                 " FROM k, g, l, " FREE_SCHEDULED("$1") " f, " FREE_OLDEST("$1") " o",
                 1, t_ch},
    [Q_CHANNELS] = {"dq_channels", CHANNEL_ROWS(""), 0, t_tick},
    [Q_PURGE] = {"dq_purge", "SELECT ch_purge($1)", 1, t_ch},
    [Q_CH_DELETE] = {"dq_ch_delete", "SELECT ch_delete($1)", 1, t_ch},
    [Q_SETTINGS_GET] = {"dq_settings_get",
                        "SELECT max_deliveries, dead_letter_channel, retry_delay_ns FROM channels WHERE name = $1",
                        1, t_ch},
    [Q_SETTINGS_PUT] = {"dq_settings_put",
                        "SELECT s.max_deliveries, s.dead_letter_channel, s.retry_delay_ns"
                        " FROM ch_settings($1, $2, $3, $4, $5) s",
                        5, t_settings},
    [Q_REDRIVE] = {"dq_redrive", "SELECT ch_redrive($1, $2, $3, $4, $5)", 5, t_redrive},
    [Q_JOB_PUT] = {"dq_job_put",
                   "SELECT now_ns(), " JOB_COLS_OF("r.j") ", r.made"
                   " FROM job_put($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) r",
                   14, t_job_put},
    [Q_JOB_GET] = {"dq_job_get", "SELECT now_ns(), " JOB_COLS " FROM jobs WHERE channel = $1 AND name = $2", 2,
                   t_job},
    [Q_JOBS] = {"dq_jobs", "SELECT now_ns(), " JOB_COLS " FROM jobs WHERE channel = $1 ORDER BY name COLLATE \"C\"",
                1, t_ch},
    [Q_JOB_DELETE] = {"dq_job_delete", "DELETE FROM jobs WHERE channel = $1 AND name = $2 RETURNING 1", 2, t_job},
    [Q_JOB_PAUSE] = {"dq_job_pause", "SELECT now_ns(), " JOB_COLS " FROM job_pause($1, $2, $3, $4)", 4,
                     t_job_pause},
    [Q_JOB_TRIGGER] = {"dq_job_trigger",
                       "SELECT now_ns(), " JOB_COLS_OF("r.j") ", now_ns(), false, " EV_COLS_OF("r.e")
                       " FROM job_trigger($1, $2, $3) r",
                       3, t_job_trigger},
    [Q_JOBS_DUE] = {"dq_jobs_due",
                    "SELECT now_ns(), channel, name, cron_def, next_at, created_at, missed_once, missed_window_ns"
                    " FROM jobs WHERE NOT paused AND next_at <= now_ns() + $1 ORDER BY next_at LIMIT 1000",
                    1, t_i8},
    [Q_JOB_FIRE] = {"dq_job_fire", "SELECT f.fired, now_ns(), f.at_limit FROM job_fire($1, $2, $3, $4, $5, $6) f", 6,
                    t_job_fire},
    [Q_JOB_SKIP] = {"dq_job_skip", "SELECT job_skip($1, $2, $3, $4), now_ns()", 4, t_job_fire},
    /* Per channel waited on: is an event ready, and when does the next
     * fall due (a lease end, a delayed event's or a retry delay's end).
     * Each is one range of one index, read in its order and stopped at
     * the first row (docs/SCHEMA.md "Waking parked acquires"): each ORDER
     * BY names its scan's index and the row comparisons keep the lease
     * scans on the channel's lease index, since a waited channel has
     * nothing ready and a scan that expects to find a row at once reads
     * them all. */
    [Q_WAITERS] = {"dq_waiters",
                   "SELECT " NOW ", w.ch, coalesce("
                   " (SELECT true " FREE_ROWS("w.ch") " AND e.published_at <= " NOW
                   "  ORDER BY e.priority, e.published_at LIMIT 1),"
                   " (SELECT true " LEASES_OF("w.ch", "<=") " AND e.visible_at <= " NOW
                   "  AND e.lives_until > " NOW " LIMIT 1), false),"
                   " least((SELECT e.locked_until " LEASES_OF("w.ch", ">") " AND e.lives_until > " NOW
                   "  ORDER BY e.channel, e.locked_until LIMIT 1),"
                   " (SELECT e.published_at " FREE_ROWS("w.ch") " AND e.published_at > " NOW
                   "  ORDER BY e.published_at LIMIT 1),"
                   " (SELECT min(e.visible_at) " LEASES_OF("w.ch", "<=") " AND e.visible_at > " NOW
                   "  AND e.visible_at <> " NEVER " AND e.lives_until > " NOW "))"
                   " FROM unnest($1::text[]) w(ch)",
                   1, t_texts},
    [Q_NOTIFY] = {"dq_notify", "SELECT pg_notify($1, x) FROM unnest($2::text[]) x", 2, t_notify},
    [Q_METRICS_CLAIM] = {"dq_metrics_claim", "SELECT metrics_claim($1)", 1, t_i8},
    [Q_METRICS] = {"dq_metrics", CHANNEL_ROWS(", c.metrics_own, coalesce(k.f, 0), coalesce(k.le, 0)"), 0, t_tick},
    [Q_METRICS_JOBS] = {"dq_metrics_jobs",
                        "SELECT channel, name, runs, skipped, last_late_ns FROM jobs"
                        " ORDER BY channel COLLATE \"C\", name COLLATE \"C\"",
                        0, t_tick},
    /* The background connection's (pg_vacuum.c). */
    /* The dead rows, whether this role may VACUUM the table (its owner's
     * or the database owner's privileges, or a superuser) and who owns
     * it, the rows changed since the last ANALYZE and the rows it has. */
    [Q_DEAD] = {"dq_dead",
                "SELECT pg_stat_get_dead_tuples(c.oid), pg_has_role(c.relowner, 'USAGE') OR"
                " pg_has_role(d.datdba, 'USAGE'), pg_get_userbyid(c.relowner),"
                " pg_stat_get_mod_since_analyze(c.oid), greatest(c.reltuples, 0)::int8"
                " FROM pg_class c, pg_database d"
                " WHERE c.oid = 'events'::regclass AND d.datname = current_database()",
                0, t_tick},
    [Q_VACUUM] = {"dq_vacuum", "VACUUM (SKIP_LOCKED, TRUNCATE false) events", 0, t_tick},
    [Q_ANALYZE] = {"dq_analyze", "ANALYZE (SKIP_LOCKED) events", 0, t_tick},
};

/* The statements of the hot paths and the single-event ones, which a
 * connection may pipeline two of (pgconn.h); the rest may read many rows
 * or wait. */
const unsigned char pg_stmt_quick[Q_COUNT] = {
    [Q_TICK] = 1,   [Q_PUBLISH_FAST] = 1, [Q_GET] = 1,         [Q_LOCK] = 1,
    [Q_UNLOCK] = 1, [Q_EXTEND] = 1,       [Q_DELETE_MANY] = 1, [Q_ACQUIRE] = 1,
};
