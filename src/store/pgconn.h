/*
 * pgconn.h -- a small pool of PostgreSQL connections on h2o's event loop.
 *
 * Each connection is libpq in non-blocking pipeline mode: connected with
 * PQconnectStart/PQconnectPoll, its socket watched by the loop (through a
 * dup of libpq's descriptor, since h2o closes what it watches), the
 * store's statements prepared once per connection. Nothing here blocks the
 * loop.
 *
 * A query is one API request: one or more prepared statements sent
 * back-to-back and ended by one Sync, so the database runs them as one
 * implicit transaction (all or nothing) and the answer comes after COMMIT.
 * Queries of different requests are pipelined on a connection (up to
 * PG_CONN_PIPELINE each, in order) and spread over the pool: a query of
 * quick statements (and not said to touch more than PG_QUICK_ROWS rows)
 * goes to the first connection in pool order with fewer than
 * PG_CONN_PACK queries in flight, all of them quick, the oldest sent less
 * than PG_PACK_AGE_MS ago, so its backend runs it right after the one
 * before, without sleeping in between and without waking another
 * backend; any other query, or when no such connection is left, goes to
 * the least busy connection. (A quick statement can still wait, for a
 * row another transaction holds: the age keeps later queries from
 * queueing behind it.)
 *
 * Connection states:
 *   DOWN        not connected; reconnects at retry_at (backoff 100 ms,
 *               doubling to 5 s; back to 100 ms once ready)
 *   CONNECTING  PQconnectPoll in progress (bounded by the timeout)
 *   SETUP       search_path set and statements prepared, in one pipeline
 *   READY       takes queries
 * A connection that fails (socket error, protocol error, a query past its
 * deadline: the database hangs) fails every query in flight on it with
 * PG_UNAVAILABLE and goes DOWN. A query's outcome is then unknown to the
 * client (it may have committed), as with any timeout.
 *
 * Deadlines: every query must complete within the pool's timeout from
 * pg_query_send, waiting for a connection included; past it, its callback
 * runs with PG_UNAVAILABLE. With no connection up at all, a query fails at
 * once instead of waiting.
 *
 * Ownership: the pool owns its connections and every query from
 * pg_query_new until its callback has returned (then it frees it). Results
 * are valid only inside the callback.
 */
#ifndef STORE_PGCONN_H
#define STORE_PGCONN_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include "pq.h"
#include <stddef.h>
#include <stdint.h>

#define PG_CONN_PIPELINE 32 /* queries in flight on one connection */
#define PG_CONN_PACK 2      /* quick queries sent to one connection before the next is used */
#define PG_QUICK_ROWS 32    /* a query said to touch more rows is not quick */
#define PG_PACK_AGE_MS 2    /* nor packed behind one in flight this long (it waits) */

/* Parameter types (binary format on the wire). */
#define PG_INT8 20
#define PG_INT4 23
#define PG_INT2 21
#define PG_BOOL 16
#define PG_BYTEA 17
#define PG_TEXT 25
#define PG_BOOL_ARRAY 1000
#define PG_BYTEA_ARRAY 1001
#define PG_INT2_ARRAY 1005
#define PG_TEXT_ARRAY 1009
#define PG_INT8_ARRAY 1016

/* A statement prepared on every connection. types: its parameters' OIDs
 * (PG_*), nparams of them. */
typedef struct pg_stmt {
    const char *name;
    const char *sql;
    int nparams;
    const Oid *types;
} pg_stmt_t;

typedef struct pg_pool_config {
    const char *url;          /* libpq URI or key=value string */
    const char *schema;       /* set as search_path on every connection */
    size_t size;              /* connections */
    uint64_t timeout_ms;      /* per query, and per connection attempt */
    h2o_evloop_t *loop;
    const pg_stmt_t *stmts;   /* borrowed for the pool's life */
    size_t nstmts;
    const unsigned char *quick; /* nstmts flags (NULL: none; borrowed): 1 for
                               * a statement that reads and writes a few rows
                               * through an index and waits for no one for
                               * long, so that a query of such statements may
                               * be pipelined behind another (see the top) */
    const char *session_sql;  /* one statement run on every connection before
                               * the statements are prepared, e.g. set_config
                               * calls (NULL: none; borrowed) */
    const char *name;         /* log lines say "<name> connection ready"
                               * (NULL: "database") */
    void (*log)(const char *level, const char *msg); /* "info", "warn", "error" */
} pg_pool_config_t;

typedef struct pg_pool pg_pool_t;
typedef struct pg_query pg_query_t;

typedef enum pg_status {
    PG_OK = 0,
    PG_ERROR,       /* the database refused a statement: see sqlstate */
    PG_UNAVAILABLE, /* no connection, lost connection or past the deadline */
} pg_status_t;

typedef void (*pg_query_cb)(pg_query_t *q, void *arg);

/* Makes the pool and starts connecting every connection (no blocking).
 * The config is copied, stmts borrowed. */
pg_pool_t *pg_pool_new(const pg_pool_config_t *cfg);

/* Fails every query still waiting or in flight (PG_UNAVAILABLE, callbacks
 * run), closes the connections and frees the pool. NULL: nothing. */
void pg_pool_free(pg_pool_t *p);

/* Results of at least this many rows are big (a listing of 100 000
 * events is some 30 MB in libpq's blocks on the heap). */
#define PG_BIG_ROWS 10000

/* Big results freed so far: glibc keeps the heap they leave in pieces
 * until malloc_trim. */
uint64_t pg_pool_big_freed(const pg_pool_t *p);

/* 1 while at least one connection is READY. */
int pg_pool_ready(const pg_pool_t *p);
/* How many of its connections are READY. */
size_t pg_pool_nready(const pg_pool_t *p);

/* 1 while a query waits or is in flight. */
int pg_pool_busy(const pg_pool_t *p);

/* 1 while a connection is READY and the last query to end did not fail
 * for want of a database (a hung database leaves idle connections READY;
 * its first query past the deadline says so): /readyz. */
int pg_pool_healthy(const pg_pool_t *p);

/* A new query; cb(q, arg) runs exactly once, from the loop, never inside
 * pg_query_send. */
pg_query_t *pg_query_new(pg_pool_t *p, pg_query_cb cb, void *arg);

/* Starts the next statement of q (an index into the pool's stmts); the
 * parameters follow, in order, each of the type the statement declares. */
void pg_query_stmt(pg_query_t *q, int stmt);
void pg_query_null(pg_query_t *q);
void pg_query_i64(pg_query_t *q, int64_t v);
void pg_query_i32(pg_query_t *q, int32_t v);
void pg_query_i16(pg_query_t *q, int16_t v);
void pg_query_bool(pg_query_t *q, int v);
/* bytea or text (text must be valid UTF-8 without NUL); copied. */
void pg_query_bytes(pg_query_t *q, const void *p, size_t n);

/* A one-dimensional array parameter, built element by element: pg_arr_init
 * with the element type (PG_INT8, ...), the elements in order, then
 * pg_query_arr with the array type (PG_INT8_ARRAY, ...), which copies it
 * and frees a's buffer. */
typedef struct pg_arr {
    char *buf;
    size_t len, cap;
    int32_t n;
    int has_null;
    Oid elem;
} pg_arr_t;
void pg_arr_init(pg_arr_t *a, Oid elem);
void pg_arr_null(pg_arr_t *a);
void pg_arr_i64(pg_arr_t *a, int64_t v);
void pg_arr_i16(pg_arr_t *a, int16_t v);
void pg_arr_bool(pg_arr_t *a, int v);
void pg_arr_bytes(pg_arr_t *a, const void *p, size_t n);
void pg_query_arr(pg_query_t *q, Oid array_type, pg_arr_t *a);

/* q touches about n rows (the events of a batch): past PG_QUICK_ROWS it
 * is not quick whatever its statements (pgconn.h, top). */
void pg_query_rows(pg_query_t *q, size_t n);

/* Queues q (all its statements, then one Sync). */
void pg_query_send(pg_query_t *q);

/* ---- inside the callback ---- */

pg_status_t pg_query_status(const pg_query_t *q);
/* PG_ERROR: the SQLSTATE ("23505", ...); else "". */
const char *pg_query_sqlstate(const pg_query_t *q);
/* PG_ERROR: the database's primary message alone (what a function
 * raised), without "ERROR:"; else "". */
const char *pg_query_message(const pg_query_t *q);
/* Not PG_OK: one line saying what went wrong (never the password). */
const char *pg_query_error(const pg_query_t *q);
/* The result of statement i (tuples in binary format), or NULL if it did
 * not run. */
const PGresult *pg_query_result(const pg_query_t *q, int i);

/* Binary-format values of a result. */
int64_t pg_get_i64(const PGresult *r, int row, int col);
int32_t pg_get_i32(const PGresult *r, int row, int col);
int16_t pg_get_i16(const PGresult *r, int row, int col);
int pg_get_bool(const PGresult *r, int row, int col);

#endif
