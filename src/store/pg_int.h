/*
 * pg_int.h -- what the files of the PostgreSQL store share (see pg.h):
 * the store's struct, its statements, and the helpers that turn rows into
 * the views of store.h.
 *
 * Files: pg.c (construction, clock, turn, results), pgsql.c (the SQL),
 * pg_events.c and pg_chan.c (the operations), pg_batch.c (concurrent
 * requests merged into one statement), pg_jobs.c (job operations and the
 * scheduler), pg_wake.c (waiters, NOTIFY and LISTEN), pg_metrics.c
 * (/metrics), pg_vacuum.c (VACUUM while many events died).
 *
 * An operation makes a pgop_t (owned by the query until its callback
 * returned) and sends one query. Most send it with pgop_query_rows: a
 * failed query ends the op with the status its error maps to, and only
 * the rows of a query that succeeded reach the operation's reader, which
 * builds the result on the stack or in the store's scratch arrays and
 * ends the op with pgop_finish (calls done, frees the op). The event
 * operations (pg_events.c) give pgop_query a callback of their own that
 * checks pgs_failed first, except publish, delete and acquire, whose ops
 * queue in pg_batch.c and share one query per batch; the background
 * queries answer no one.
 */
#ifndef STORE_PG_INT_H
#define STORE_PG_INT_H

#include "pg.h"
#include "pgconn.h"
#include "base/strmap.h"
#include "time/cron.h"

/* The statements, prepared on every connection (pgsql.c). */
enum {
    Q_TICK,
    Q_SWEEP,
    Q_PUBLISH,
    Q_PUBLISH_FAST,
    Q_LIST,
    Q_LIST_ALL,
    Q_LIST_LOCKED,
    Q_LIST_SCHEDULED,
    Q_GET,
    Q_LOCK,
    Q_UNLOCK,
    Q_EXTEND,
    Q_DELETE_MANY,
    Q_ACQUIRE,
    Q_STATS,
    Q_CHANNELS,
    Q_PURGE,
    Q_CH_DELETE,
    Q_SETTINGS_GET,
    Q_SETTINGS_PUT,
    Q_REDRIVE,
    Q_JOB_PUT,
    Q_JOB_GET,
    Q_JOBS,
    Q_JOB_DELETE,
    Q_JOB_PAUSE,
    Q_JOB_TRIGGER,
    Q_JOBS_DUE,
    Q_JOB_FIRE,
    Q_JOB_SKIP,
    Q_WAITERS,
    Q_NOTIFY,
    Q_METRICS_CLAIM,
    Q_METRICS,
    Q_METRICS_JOBS,
    Q_DEAD,
    Q_VACUUM,
    Q_ANALYZE,
    Q_COUNT
};
extern const pg_stmt_t pg_stmts[Q_COUNT];
extern const unsigned char pg_stmt_quick[Q_COUNT]; /* pgconn.h: pg_pool_config_t */

/* Columns of an event row (ev_row in 0002_ops.sql, after now_ns()). */
enum { EC_NOW, EC_REPLAYED, EC_SEQ, EC_MS, EC_PRIO, EC_DATA, EC_JSON, EC_DELIV, EC_DLF, EC_PUB, EC_VIS, EC_LIVES,
       EC_LOCKED, EC_TOKEN, EC_END };
/* Columns of a job row. */
enum { JC_NOW, JC_NAME, JC_CRON, JC_DATA, JC_JSON, JC_TTL, JC_PRIO, JC_OSKIP, JC_MONCE, JC_MWIN, JC_PAUSED,
       JC_RUNS, JC_SKIPPED, JC_LAST, JC_NEXT, JC_CREATED, JC_END };

typedef struct pg_sched pg_sched_t;   /* pg_jobs.c */
typedef struct pg_batcher pg_batcher_t; /* pg_batch.c */
typedef struct pg_wake pg_wake_t;     /* pg_wake.c */
typedef struct pg_mcache pg_mcache_t; /* pg_metrics.c */
typedef struct pg_vacuum pg_vacuum_t; /* pg_vacuum.c */

typedef struct pgs {
    store_t base;
    store_pg_config_t cfg;    /* url and schema copied */
    pg_pool_t *pool;          /* requests and the background round */
    pg_pool_t *bg;            /* one connection for what may take long:
                               * the /metrics read and VACUUM */
    char bg_session[256];     /* its session settings (set_config) */
    int64_t offset_ns;        /* the database's clock minus this host's monotonic clock */
    int clock_known;
    uint64_t clock_bound;     /* the error bound of offset_ns when it was learnt (ns) */
    uint64_t clock_at;        /* when it was learnt (pgs_local_ns) */
    ntime_t tick_at;          /* next background round (store time) */
    int tick_busy;            /* queries of the last round still out */
    uint64_t trimmed;         /* big results freed at the last malloc_trim */
    ntime_t trim_at;          /* not again before */
    uint64_t live_total;      /* live events in all channels, at the last tick */
    ntime_t metrics_wanted_at; /* /metrics was read then: refresh its numbers */
    pg_mcache_t *mcache;      /* the shared series, as last read */
    uint64_t m_unavailable;   /* requests answered 503 */
    uint64_t m_fires, m_skips; /* job fires and skips by this replica */
    pg_sched_t *sched;
    pg_wake_t *wake;
    pg_batcher_t *batch;      /* group commit (pg_batch.h) */
    pg_vacuum_t *vacuum;      /* VACUUM of events, on bg */
    char err[512];            /* a result's sentence lives here until done returns */
    store_event_t *views;     /* scratch for results */
    size_t cap_views;
    store_stats_t *stats;
    size_t cap_stats;
    store_job_t *jobs;
    size_t cap_jobs;
    uint8_t *replayed;
    size_t cap_replayed;
} pgs_t;

typedef struct pgop pgop_t;

/* What an operation makes of the rows of its query's first statement (r:
 * NULL if it gave no result), called only if the query succeeded: fills
 * in res (all zero on entry: STORE_OK) and ends op with pgop_finish, or
 * sends op on with another query. */
typedef void (*pgop_rows_fn)(pgop_t *op, const PGresult *r, store_res_t *res);

struct pgop {
    pgs_t *s;
    store_done_fn done;
    void *arg;
    char *ch;                 /* the channel (a NUL-terminated copy) */
    size_t ch_len;
    uint64_t local_at;        /* this host's clock when sent (ns) */
    int n;                    /* op-specific: elements, list limit, next runs */
    int flag;                 /* op-specific */
    char *name;               /* a job's name, or a target channel */
    size_t name_len;
    pgop_rows_fn rows;        /* the reader of pgop_query_rows */
};

static inline pgs_t *pgs_of(store_t *s)
{
    return (pgs_t *)s;
}

/* pg.c */
ntime_t pgs_now(pgs_t *s);
/* This host's monotonic clock (ns): round trips and pgs_now's base, so
 * a step of the host's wall clock changes neither. */
uint64_t pgs_local_ns(void);
/* A line of the store's log (the URL's password redacted); nothing
 * without a logger. */
void pgs_log(pgs_t *s, const char *level, const char *msg);
pgop_t *pgop_new(pgs_t *s, const char *ch, size_t len, store_done_fn done, void *arg);
void pgop_free(pgop_t *op);
/* A query for op whose callback is cb. */
pg_query_t *pgop_query(pgop_t *op, pg_query_cb cb);
/* The same on the background connection (s->bg). */
pg_query_t *pgop_query_bg(pgop_t *op, pg_query_cb cb);
/* A query for op whose rows go to rows if it succeeds; if it fails, op
 * ends with the status its error maps to. */
pg_query_t *pgop_query_rows(pgop_t *op, pgop_rows_fn rows);
/* Sends the operation that is statement stmt with channel ch as its one
 * parameter, its rows going to rows. */
void pgs_send_ch(pgs_t *s, int stmt, store_chan_t ch, pgop_rows_fn rows, store_done_fn done, void *arg);
/* If q failed: fills res with the status its error maps to and returns 1
 * (for callbacks of pgop_query that answer an operation). */
int pgs_failed(pgs_t *s, pg_query_t *q, store_res_t *res);
/* Ends op with res: calls done, frees op. */
void pgop_finish(pgop_t *op, store_res_t *res);
/* Ends op with a status (and an optional sentence). */
void pgop_fail(pgop_t *op, store_status_t st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The op ended in a callback that found no query error: rows of r from
 * the event columns, into the scratch views. */
store_event_t *pgs_events(pgs_t *s, const PGresult *r, size_t *n);
void pgs_event_view(store_event_t *v, const PGresult *r, int row, int col0);
void pgs_job_view(store_job_t *v, const PGresult *r, int row);
store_job_t *pgs_jobs_room(pgs_t *s, size_t n);
store_stats_t *pgs_stats_room(pgs_t *s, size_t n);
uint8_t *pgs_replayed_room(pgs_t *s, size_t n);
/* id <-> (seq, id_ms) */
void pgs_id_split(eid_t id, int64_t *seq, int64_t *ms);
/* Learns the offset of the database's clock from a now_ns() read in a
 * query sent at op->local_at (pgs_local_ns). The sample's error bound is
 * half its round trip; it replaces the offset in use only if that bound
 * is no worse than the one in use, grown by PG_CLOCK_DRIFT_DIV-th of the
 * time since (so a slow round trip under load does not move the clock,
 * and a stepped database clock is followed within a few samples). */
#define PG_CLOCK_DRIFT_DIV 2000 /* 500 ppm */
void pgs_clock_sample(pgs_t *s, uint64_t sent_local, int64_t db_now);
/* The rows of r (0 if r is NULL). */
size_t pgs_nrows(const PGresult *r);
/* A text value (NULL as ""). */
const char *pgs_text(const PGresult *r, int row, int col, uint32_t *len);

/* pg_events.c */
void pg_publish(store_t *s, store_chan_t ch, const store_pub_t *pubs, size_t n, store_done_fn done, void *arg);
void pg_list(store_t *s, const store_list_t *q, store_done_fn done, void *arg);
void pg_get(store_t *s, store_chan_t ch, eid_t id, store_done_fn done, void *arg);
void pg_lock(store_t *s, store_chan_t ch, eid_t id, int64_t ttl_ns, store_done_fn done, void *arg);
void pg_unlock(store_t *s, store_chan_t ch, eid_t id, const uint64_t *token, int64_t delay_ns,
               store_done_fn done, void *arg);
void pg_extend(store_t *s, store_chan_t ch, eid_t id, int64_t ttl_ns, const uint64_t *token, store_done_fn done,
               void *arg);
void pg_del(store_t *s, store_chan_t ch, eid_t id, const uint64_t *token, store_done_fn done, void *arg);
void pg_acquire(store_t *s, store_chan_t ch, size_t max, int64_t ttl_ns, store_done_fn done, void *arg);

/* pg_chan.c */
void pg_stats(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
void pg_channels(store_t *s, store_done_fn done, void *arg);
void pg_purge(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
void pg_channel_delete(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
void pg_settings_get(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
void pg_settings_put(store_t *s, store_chan_t ch, const store_settings_put_t *p, store_done_fn done, void *arg);
void pg_redrive(store_t *s, store_chan_t ch, const store_chan_t *to, size_t max, store_done_fn done, void *arg);
/* Columns 1..9 of a stats row (pgsql.c: Q_STATS, Q_CHANNELS). */
void pgs_stats_view(store_stats_t *v, const PGresult *r, int row);

/* pg_metrics.c */
pg_mcache_t *pg_metrics_new(void);
void pg_metrics_free(pg_mcache_t *m);
/* Reads the shared series again, unless a read is out. */
void pg_metrics_refresh(pgs_t *s);
/* A job fire by this replica ran late_ns after its scheduled time. */
void pg_metrics_fired(pgs_t *s, int64_t late_ns);
void pg_metrics(store_t *s, store_text_t *out);

/* pg_jobs.c */
void pg_job_put(store_t *s, store_chan_t ch, const store_job_def_t *def, int replace, store_done_fn done,
                void *arg);
void pg_job_get(store_t *s, store_chan_t ch, const char *name, size_t len, unsigned next, store_done_fn done,
                void *arg);
void pg_jobs(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
void pg_job_delete(store_t *s, store_chan_t ch, const char *name, size_t len, store_done_fn done, void *arg);
void pg_job_op(store_t *s, store_chan_t ch, const char *name, size_t len, store_job_op_t op, store_done_fn done,
               void *arg);
pg_sched_t *pg_sched_new(pgs_t *s);
void pg_sched_free(pg_sched_t *j);
/* Sends the query for the jobs due soon. */
void pg_sched_poll(pgs_t *s);
/* Fires what is due; returns when it next needs to run. */
ntime_t pg_sched_turn(pgs_t *s, ntime_t now);
/* A job this replica wrote: (re)schedules it at once. */
void pg_sched_note(pgs_t *s, const char *ch, size_t ch_len, const store_job_t *j);

/* pg_wake.c */
pg_wake_t *pg_wake_new(pgs_t *s);
void pg_wake_free(pg_wake_t *w);
/* ch may have gained a free event through this replica's commit: tell
 * the layer above now and the other replicas by NOTIFY. */
void pg_wake_freed(pgs_t *s, const char *ch, size_t len);
/* Events of ch fall due at `at` (a lease ends, a delayed event shows):
 * this replica's waiters there wake then, the others' learn it through
 * NOTIFY and their poll. */
void pg_wake_due(pgs_t *s, const char *ch, size_t len, ntime_t at);
/* pg_wake_due for the earliest lease end or visibility among evs. */
void pg_wake_events(pgs_t *s, const char *ch, size_t len, const store_event_t *evs, size_t n);
/* An acquire on ch found nothing: the layer above may park there. missed:
 * a wake-up for ch came while it was out, so the waiters poll looks at
 * once (after the parking). */
void pg_wake_wanted(pgs_t *s, const char *ch, size_t len, int missed);
/* An acquire's statement on ch goes out: returns ch's count of wake-ups,
 * to hand to pg_wake_acquired when it answers (each send, one answer). */
unsigned pg_wake_acquiring(pgs_t *s, const char *ch, size_t len);
/* The acquire sent when ch's count was `woken` answered: 1 if a wake-up
 * for ch came meanwhile (what it read may be out of date). */
int pg_wake_acquired(pgs_t *s, const char *ch, size_t len, unsigned woken);
/* Sends the waiters poll. */
void pg_wake_poll(pgs_t *s);
/* Sends due notifications, fires due wake-ups, keeps LISTEN up; returns
 * when it next needs to run. */
ntime_t pg_wake_turn(pgs_t *s, ntime_t now);
int pg_wake_listening(const pgs_t *s);

/* pg_vacuum.c */
/* Works on s->bg. */
pg_vacuum_t *pg_vacuum_new(pgs_t *s);
/* After s->bg was freed (its callbacks ran). */
void pg_vacuum_free(pg_vacuum_t *v);
/* Checks the dead rows, VACUUMs if many; returns when to run again. */
ntime_t pg_vacuum_turn(pg_vacuum_t *v, ntime_t now);
/* VACUUMs this replica sent that ended without an error. */
uint64_t pg_vacuum_runs(const pg_vacuum_t *v);

#endif
