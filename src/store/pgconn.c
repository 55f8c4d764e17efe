/*
 * pgconn.c -- the connection pool on the loop (see pgconn.h).
 *
 * Reading results: in pipeline mode libpq hands back, per statement, its
 * result(s) then NULL; an aborted statement gives PGRES_PIPELINE_ABORTED
 * then NULL; a Sync gives PGRES_PIPELINE_SYNC with no NULL after it. So a
 * connection knows at every point which query (the head of its FIFO) and
 * which statement of it a result belongs to.
 */
#include "pgconn.h"

#include <endian.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "base/util.h"
#include "pgstart.h"

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_SETUP, CONN_READY };

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define TICK_MS 100

typedef struct pg_conn {
    pg_pool_t *pool;
    PGconn *pq;
    h2o_socket_t *sock;       /* watches a dup of PQsocket(pq) */
    enum conn_state state;
    int writing;              /* waiting for the socket to be writable */
    pg_query_t *head, *tail;  /* in flight, oldest first */
    size_t inflight;
    uint64_t retry_at;        /* DOWN: loop ms when to reconnect */
    uint64_t backoff_ms;
    uint64_t connect_until;   /* CONNECTING/SETUP: loop ms */
} pg_conn_t;

typedef struct param {
    uint32_t off;             /* into q->buf */
    int32_t len;              /* -1: NULL */
} param_t;

typedef struct item {
    int stmt;
    uint32_t first;           /* index of its first param */
    int nparams;
} item_t;

struct pg_query {
    pg_pool_t *pool;
    pg_query_cb cb;
    void *arg;
    item_t *items;
    int nitems, items_cap;
    param_t *params;
    uint32_t nparams, params_cap;
    char *buf;
    size_t buf_len, buf_cap;
    PGresult **results;       /* one per item */
    int cur;                  /* the item whose results come next */
    pg_status_t status;
    char sqlstate[6];
    char *err;
    char *msg;                /* PG_ERROR: the primary message */
    int done;                 /* the callback ran */
    int quick;                /* every statement is quick, few rows */
    size_t rows;              /* pg_query_rows */
    uint64_t sent_ms;         /* loop ms when it went to its connection */
    pg_conn_t *conn;          /* in flight on; NULL while waiting */
    pg_query_t *next;         /* in the wait queue or a connection's FIFO */
    h2o_timeout_entry_t deadline;
};

struct pg_pool {
    pg_pool_config_t cfg;
    char *url, *schema;
    pg_conn_t *conns;
    pg_query_t *wait_head, *wait_tail;
    pg_query_t *failed;       /* told "unreachable", answered at the next tick */
    h2o_timeout_t deadlines;  /* cfg.timeout_ms: queries */
    h2o_timeout_t ticks;      /* TICK_MS: reconnects and connect deadlines */
    h2o_timeout_entry_t tick;
    size_t ready;             /* connections READY */
    int failing;              /* the last query to end found no database */
    int freeing;
    uint64_t big_freed;       /* results of PG_BIG_ROWS rows or more freed */
};

static void conn_start(pg_conn_t *c);
static void conn_fail(pg_conn_t *c, const char *why);
static void pool_dispatch(pg_pool_t *p);
static void on_readable(h2o_socket_t *sock, const char *err);

static void plog(pg_pool_t *p, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void plog(pg_pool_t *p, const char *level, const char *fmt, ...)
{
    if (!p->cfg.log)
        return;
    char raw[1024], msg[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    pg_redact(raw, p->url, msg, sizeof(msg));
    p->cfg.log(level, msg);
}

static const char *pool_name(const pg_pool_t *p)
{
    return p->cfg.name ? p->cfg.name : "database";
}

static uint64_t loop_ms(pg_pool_t *p)
{
    return h2o_now(p->cfg.loop);
}

/* ---- queries ---- */

pg_query_t *pg_query_new(pg_pool_t *p, pg_query_cb cb, void *arg)
{
    pg_query_t *q = xcalloc(1, sizeof(*q));
    q->pool = p;
    q->cb = cb;
    q->arg = arg;
    return q;
}

void pg_query_stmt(pg_query_t *q, int stmt)
{
    ASSERT(stmt >= 0 && (size_t)stmt < q->pool->cfg.nstmts);
    if (q->nitems > 0)
        ASSERT(q->items[q->nitems - 1].nparams == q->pool->cfg.stmts[q->items[q->nitems - 1].stmt].nparams);
    if (q->nitems == q->items_cap) {
        q->items_cap = q->items_cap ? 2 * q->items_cap : 4;
        q->items = xrealloc(q->items, (size_t)q->items_cap * sizeof(*q->items));
    }
    q->items[q->nitems++] = (item_t){.stmt = stmt, .first = q->nparams, .nparams = 0};
}

/* Appends a parameter of type oid with n bytes (p NULL and n -1: NULL). */
static void param_add(pg_query_t *q, Oid oid, const void *p, int32_t n)
{
    ASSERT(q->nitems > 0);
    item_t *it = &q->items[q->nitems - 1];
    const pg_stmt_t *st = &q->pool->cfg.stmts[it->stmt];
    ASSERT(it->nparams < st->nparams);
    ASSERT(oid == 0 || st->types[it->nparams] == oid ||
           (oid == PG_BYTEA && st->types[it->nparams] == PG_TEXT));
    if (q->nparams == q->params_cap) {
        q->params_cap = q->params_cap ? 2 * q->params_cap : 16;
        q->params = xrealloc(q->params, q->params_cap * sizeof(*q->params));
    }
    size_t need = q->buf_len + (n > 0 ? (size_t)n : 0);
    if (need > q->buf_cap) {
        q->buf_cap = need > 2 * q->buf_cap ? need : 2 * q->buf_cap;
        q->buf = xrealloc(q->buf, q->buf_cap);
    }
    q->params[q->nparams++] = (param_t){.off = (uint32_t)q->buf_len, .len = n};
    if (n > 0) {
        memcpy(q->buf + q->buf_len, p, (size_t)n);
        q->buf_len += (size_t)n;
    }
    it->nparams++;
}

void pg_query_null(pg_query_t *q)
{
    param_add(q, 0, NULL, -1);
}

void pg_query_i64(pg_query_t *q, int64_t v)
{
    uint64_t be = htobe64((uint64_t)v);
    param_add(q, PG_INT8, &be, 8);
}

void pg_query_i32(pg_query_t *q, int32_t v)
{
    uint32_t be = htobe32((uint32_t)v);
    param_add(q, PG_INT4, &be, 4);
}

void pg_query_i16(pg_query_t *q, int16_t v)
{
    uint16_t be = htobe16((uint16_t)v);
    param_add(q, PG_INT2, &be, 2);
}

void pg_query_bool(pg_query_t *q, int v)
{
    char b = v ? 1 : 0;
    param_add(q, PG_BOOL, &b, 1);
}

void pg_query_bytes(pg_query_t *q, const void *p, size_t n)
{
    ASSERT(n < INT32_MAX);
    param_add(q, PG_BYTEA, p, (int32_t)n);
}

/* ---- array parameters (PostgreSQL's binary array format) ---- */

static void arr_put(pg_arr_t *a, const void *p, size_t n)
{
    if (a->len + n > a->cap) {
        a->cap = a->len + n > 2 * a->cap ? a->len + n + 64 : 2 * a->cap;
        a->buf = xrealloc(a->buf, a->cap);
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
}

static void arr_elem(pg_arr_t *a, const void *p, int32_t n)
{
    uint32_t be = htobe32((uint32_t)n);
    arr_put(a, &be, 4);
    if (n > 0)
        arr_put(a, p, (size_t)n);
    a->n++;
}

void pg_arr_init(pg_arr_t *a, Oid elem)
{
    memset(a, 0, sizeof(*a));
    a->elem = elem;
    char hdr[20] = {0}; /* ndim, flags, type, dim, lower bound: filled in by pg_query_arr */
    arr_put(a, hdr, sizeof(hdr));
}

void pg_arr_null(pg_arr_t *a)
{
    a->has_null = 1;
    arr_elem(a, NULL, -1);
}

void pg_arr_i64(pg_arr_t *a, int64_t v)
{
    uint64_t be = htobe64((uint64_t)v);
    arr_elem(a, &be, 8);
}

void pg_arr_i16(pg_arr_t *a, int16_t v)
{
    uint16_t be = htobe16((uint16_t)v);
    arr_elem(a, &be, 2);
}

void pg_arr_bool(pg_arr_t *a, int v)
{
    char b = v ? 1 : 0;
    arr_elem(a, &b, 1);
}

void pg_arr_bytes(pg_arr_t *a, const void *p, size_t n)
{
    ASSERT(n < INT32_MAX);
    arr_elem(a, p, (int32_t)n);
}

void pg_query_arr(pg_query_t *q, Oid array_type, pg_arr_t *a)
{
    uint32_t hdr[5] = {htobe32(a->n ? 1 : 0), htobe32(a->has_null ? 1 : 0), htobe32(a->elem),
                       htobe32((uint32_t)a->n), htobe32(1)};
    /* An empty array has no dimensions: its header is three words. */
    size_t hlen = a->n ? 20 : 12;
    memcpy(a->buf + 20 - hlen, hdr, hlen);
    ASSERT(a->len - (20 - hlen) < INT32_MAX);
    param_add(q, array_type, a->buf + 20 - hlen, (int32_t)(a->len - (20 - hlen)));
    free(a->buf);
    a->buf = NULL;
}

pg_status_t pg_query_status(const pg_query_t *q)
{
    return q->status;
}

const char *pg_query_sqlstate(const pg_query_t *q)
{
    return q->sqlstate;
}

const char *pg_query_message(const pg_query_t *q)
{
    return q->msg ? q->msg : "";
}

const char *pg_query_error(const pg_query_t *q)
{
    return q->err ? q->err : "";
}

const PGresult *pg_query_result(const pg_query_t *q, int i)
{
    return i >= 0 && i < q->nitems && q->results ? q->results[i] : NULL;
}

static void query_free(pg_query_t *q)
{
    for (int i = 0; q->results && i < q->nitems; i++) {
        if (q->results[i] && PQntuples(q->results[i]) >= PG_BIG_ROWS)
            q->pool->big_freed++;
        PQclear(q->results[i]);
    }
    free(q->results);
    free(q->items);
    free(q->params);
    free(q->buf);
    free(q->err);
    free(q->msg);
    free(q);
}

static void query_set_error(pg_query_t *q, pg_status_t st, const char *msg)
{
    if (q->status != PG_OK)
        return; /* the first error tells */
    q->status = st;
    char clean[1024];
    pg_redact(msg, q->pool->url, clean, sizeof(clean));
    q->err = xstrndup(clean, strlen(clean));
}

/* Runs the callback once; the caller frees q when it is off every list. */
static void query_finish(pg_query_t *q)
{
    if (q->done)
        return;
    q->done = 1;
    if (h2o_timeout_is_linked(&q->deadline))
        h2o_timeout_unlink(&q->deadline);
    if (!q->pool->freeing)
        q->pool->failing = q->status == PG_UNAVAILABLE; /* PG_ERROR: the database answered */
    q->cb(q, q->arg);
}

static void on_query_deadline(h2o_timeout_entry_t *entry)
{
    pg_query_t *q = H2O_STRUCT_FROM_MEMBER(pg_query_t, deadline, entry);
    pg_pool_t *p = q->pool;
    if (q->conn) {
        /* The database took too long: this connection is stuck (a hung
         * server, a lock wait, a network gone quiet). Start afresh. */
        conn_fail(q->conn, "the database did not answer within -database-timeout");
        return;
    }
    pg_query_t **pp = &p->wait_head, *prev = NULL;
    while (*pp && *pp != q) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = q->next;
        if (p->wait_tail == q)
            p->wait_tail = prev;
    }
    query_set_error(q, PG_UNAVAILABLE, "no database connection became free within -database-timeout");
    query_finish(q);
    query_free(q);
}

/* 1 when every connection failed its last attempt (none is trying for
 * the first time, none is up). */
static int pool_unreachable(const pg_pool_t *p)
{
    if (p->ready > 0)
        return 0;
    for (size_t i = 0; i < p->cfg.size; i++)
        if (p->conns[i].state != CONN_DOWN || p->conns[i].backoff_ms <= BACKOFF_MIN_MS)
            return 0;
    return 1;
}

void pg_query_rows(pg_query_t *q, size_t n)
{
    q->rows = n;
}

/* Whether every statement of q is quick and it touches few rows. */
static int query_quick(const pg_query_t *q)
{
    const unsigned char *quick = q->pool->cfg.quick;
    if (!quick || q->rows > PG_QUICK_ROWS)
        return 0;
    for (int i = 0; i < q->nitems; i++)
        if (!quick[q->items[i].stmt])
            return 0;
    return 1;
}

void pg_query_send(pg_query_t *q)
{
    pg_pool_t *p = q->pool;
    ASSERT(q->nitems > 0);
    q->results = xcalloc((size_t)q->nitems, sizeof(*q->results));
    q->quick = query_quick(q);
    q->next = NULL;
    if (pool_unreachable(p)) {
        /* Say so now rather than at the deadline; the callback must not
         * run inside send, so the next tick runs it. */
        query_set_error(q, PG_UNAVAILABLE, "the database is unreachable");
        q->next = p->failed;
        p->failed = q;
        if (!h2o_timeout_is_linked(&p->tick))
            h2o_timeout_link(p->cfg.loop, &p->ticks, &p->tick);
        return;
    }
    q->deadline.cb = on_query_deadline;
    h2o_timeout_link(p->cfg.loop, &p->deadlines, &q->deadline);
    if (p->wait_tail)
        p->wait_tail->next = q;
    else
        p->wait_head = q;
    p->wait_tail = q;
    pool_dispatch(p);
}

/* ---- one connection ---- */

static void sock_close(pg_conn_t *c)
{
    if (c->sock) {
        h2o_socket_read_stop(c->sock);
        h2o_socket_close(c->sock);
        c->sock = NULL;
    }
    c->writing = 0;
}

/* Watches libpq's current socket (a dup: h2o closes what it watches). */
static int sock_watch(pg_conn_t *c)
{
    sock_close(c);
    int fd = fcntl(PQsocket(c->pq), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    c->sock = h2o_evloop_socket_create(c->pool->cfg.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    c->sock->data = c;
    h2o_socket_read_start(c->sock, on_readable);
    return 0;
}

static void on_writable(h2o_socket_t *sock, const char *err);

static void want_write(pg_conn_t *c)
{
    if (!c->writing && c->sock) {
        c->writing = 1;
        h2o_socket_notify_write(c->sock, on_writable);
    }
}

/* Sends what libpq buffered; waits for writability if the socket is full. */
static int conn_flush(pg_conn_t *c)
{
    int r = PQflush(c->pq);
    if (r < 0) {
        conn_fail(c, PQerrorMessage(c->pq));
        return -1;
    }
    if (r > 0)
        want_write(c);
    return 0;
}

/* Everything in flight fails; the connection goes DOWN with backoff. */
static void conn_fail(pg_conn_t *c, const char *why_in)
{
    pg_pool_t *p = c->pool;
    /* why_in is often PQerrorMessage(c->pq), which PQfinish frees. */
    char why[512];
    snprintf(why, sizeof(why), "%s", why_in ? why_in : "");
    int was_ready = c->state == CONN_READY;
    if (c->state != CONN_DOWN && !p->freeing)
        plog(p, "warn", "%s connection lost: %s", pool_name(p), why);
    if (was_ready)
        p->ready--;
    sock_close(c);
    if (c->pq)
        PQfinish(c->pq);
    c->pq = NULL;
    c->state = CONN_DOWN;
    pg_query_t *q;
    while ((q = c->head) != NULL) {
        c->head = q->next;
        query_set_error(q, PG_UNAVAILABLE, why);
        query_finish(q);
        query_free(q);
    }
    c->tail = NULL;
    c->inflight = 0;
    c->retry_at = loop_ms(p) + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    if (!p->freeing && !h2o_timeout_is_linked(&p->tick))
        h2o_timeout_link(p->cfg.loop, &p->ticks, &p->tick);
}

/* Connected: pipeline mode, search_path, the session's statement and every
 * statement prepared, one Sync. */
static void conn_setup(pg_conn_t *c)
{
    pg_pool_t *p = c->pool;
    char sql[256];
    char *qs = PQescapeIdentifier(c->pq, p->schema, strlen(p->schema));
    if (!qs || PQsetnonblocking(c->pq, 1) != 0 || !PQenterPipelineMode(c->pq)) {
        PQfreemem(qs);
        conn_fail(c, PQerrorMessage(c->pq));
        return;
    }
    snprintf(sql, sizeof(sql), "SET search_path TO %s", qs);
    PQfreemem(qs);
    int ok = PQsendQueryParams(c->pq, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (ok && p->cfg.session_sql)
        ok = PQsendQueryParams(c->pq, p->cfg.session_sql, 0, NULL, NULL, NULL, NULL, 0);
    for (size_t i = 0; ok && i < p->cfg.nstmts; i++) {
        const pg_stmt_t *s = &p->cfg.stmts[i];
        ok = PQsendPrepare(c->pq, s->name, s->sql, s->nparams, s->types);
    }
    if (!ok || !PQpipelineSync(c->pq)) {
        conn_fail(c, PQerrorMessage(c->pq));
        return;
    }
    c->state = CONN_SETUP;
    conn_flush(c);
}

/* Reads setup results; READY after the Sync. */
static void setup_result(pg_conn_t *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        c->state = CONN_READY;
        c->backoff_ms = BACKOFF_MIN_MS;
        c->pool->ready++;
        if (c->pool->ready == 1)
            plog(c->pool, "info", "%s connection ready", pool_name(c->pool));
        pool_dispatch(c->pool);
        return;
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char why[1024];
        snprintf(why, sizeof(why), "preparing the store's statements failed: %s", PQresultErrorMessage(r));
        PQclear(r);
        conn_fail(c, why);
        return;
    }
    PQclear(r);
}

/* A result of the head query; its item's results end with NULL. */
static void query_result(pg_conn_t *c, PGresult *r)
{
    pg_query_t *q = c->head;
    ASSERT(q);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        c->head = q->next;
        if (!c->head)
            c->tail = NULL;
        c->inflight--;
        q->conn = NULL;
        query_finish(q);
        query_free(q);
        return;
    }
    if (st == PGRES_FATAL_ERROR) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (q->status == PG_OK && state)
            snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", state);
        if (q->status == PG_OK && primary && !q->msg)
            q->msg = xstrndup(primary, strlen(primary));
        query_set_error(q, PG_ERROR, PQresultErrorMessage(r));
    }
    if ((st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) && q->cur < q->nitems && !q->results[q->cur])
        q->results[q->cur] = r;
    else
        PQclear(r);
}

/* Takes every result libpq has complete. */
static void conn_drain(pg_conn_t *c)
{
    while (c->pq && (c->state == CONN_SETUP || c->head) && !PQisBusy(c->pq)) {
        PGresult *r = PQgetResult(c->pq);
        if (!r) {
            if (c->state == CONN_READY)
                c->head->cur++;
            continue;
        }
        if (c->state == CONN_SETUP)
            setup_result(c, r);
        else
            query_result(c, r);
    }
}

static void connect_poll(pg_conn_t *c)
{
    PostgresPollingStatusType st = PQconnectPoll(c->pq);
    if (st == PGRES_POLLING_FAILED) {
        char host[300], why[1400];
        pg_describe_host(c->pq, host, sizeof(host));
        snprintf(why, sizeof(why), "cannot connect to the database at %s: %s", host, PQerrorMessage(c->pq));
        conn_fail(c, why);
        return;
    }
    /* libpq may have moved to another socket (the next host of a list). */
    if (sock_watch(c) != 0) {
        conn_fail(c, "cannot watch the database socket");
        return;
    }
    if (st == PGRES_POLLING_OK)
        conn_setup(c);
    else if (st == PGRES_POLLING_WRITING)
        want_write(c);
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    pg_conn_t *c = sock->data;
    if (err) {
        conn_fail(c, err);
        return;
    }
    if (c->state == CONN_CONNECTING) {
        connect_poll(c);
        return;
    }
    if (!PQconsumeInput(c->pq)) {
        conn_fail(c, PQerrorMessage(c->pq));
        return;
    }
    conn_drain(c);
    if (c->pq && c->state != CONN_DOWN)
        conn_flush(c);
    pool_dispatch(c->pool); /* completed queries made room */
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    pg_conn_t *c = sock->data;
    c->writing = 0;
    if (err) {
        conn_fail(c, err);
        return;
    }
    if (c->state == CONN_CONNECTING)
        connect_poll(c);
    else
        conn_flush(c);
}

static void conn_start(pg_conn_t *c)
{
    pg_pool_t *p = c->pool;
    c->pq = PQconnectStart(p->url);
    if (!c->pq || PQstatus(c->pq) == CONNECTION_BAD) {
        conn_fail(c, c->pq ? PQerrorMessage(c->pq) : "out of memory");
        return;
    }
    c->state = CONN_CONNECTING;
    c->connect_until = loop_ms(p) + p->cfg.timeout_ms;
    if (sock_watch(c) != 0) {
        conn_fail(c, "cannot watch the database socket");
        return;
    }
    want_write(c); /* PQconnectStart's contract: poll for writing first */
    if (!h2o_timeout_is_linked(&p->tick))
        h2o_timeout_link(p->cfg.loop, &p->ticks, &p->tick);
}

/* Sends q's statements and its Sync on c. */
static void conn_send_query(pg_conn_t *c, pg_query_t *q)
{
    const char *values[64];
    int lens[64], fmts[64];
    int ok = 1;
    for (int i = 0; ok && i < q->nitems; i++) {
        const item_t *it = &q->items[i];
        const pg_stmt_t *st = &q->pool->cfg.stmts[it->stmt];
        ASSERT(it->nparams == st->nparams && it->nparams <= 64);
        for (int k = 0; k < it->nparams; k++) {
            const param_t *pa = &q->params[it->first + (uint32_t)k];
            values[k] = pa->len < 0 ? NULL : q->buf + pa->off;
            lens[k] = pa->len < 0 ? 0 : pa->len;
            fmts[k] = 1;
        }
        ok = PQsendQueryPrepared(c->pq, st->name, it->nparams, values, lens, fmts, 1);
    }
    q->conn = c;
    q->sent_ms = loop_ms(c->pool);
    q->next = NULL;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    c->inflight++;
    if (!ok || !PQpipelineSync(c->pq))
        conn_fail(c, PQerrorMessage(c->pq));
}

/* May a quick query go behind c's: fewer than PG_CONN_PACK in flight,
 * all of them quick, the oldest younger than PG_PACK_AGE_MS? */
static int conn_packable(pg_pool_t *p, const pg_conn_t *c)
{
    if (c->state != CONN_READY || c->inflight >= PG_CONN_PACK)
        return 0;
    if (c->head && loop_ms(p) - c->head->sent_ms >= PG_PACK_AGE_MS)
        return 0;
    for (const pg_query_t *q = c->head; q; q = q->next)
        if (!q->quick)
            return 0;
    return 1;
}

/* Where q goes (pgconn.h): a quick query to the first packable
 * connection; otherwise to the least busy. NULL: every connection is full
 * or down. */
static pg_conn_t *pool_pick(pg_pool_t *p, const pg_query_t *q)
{
    for (size_t i = 0; q->quick && i < p->cfg.size; i++)
        if (conn_packable(p, &p->conns[i]))
            return &p->conns[i];
    pg_conn_t *best = NULL;
    for (size_t i = 0; i < p->cfg.size; i++) {
        pg_conn_t *c = &p->conns[i];
        if (c->state == CONN_READY && c->inflight < PG_CONN_PIPELINE && (!best || c->inflight < best->inflight))
            best = c;
    }
    return best;
}

/* Hands waiting queries to READY connections, in order. */
static void pool_dispatch(pg_pool_t *p)
{
    while (p->wait_head) {
        pg_conn_t *best = pool_pick(p, p->wait_head);
        if (!best)
            return;
        pg_query_t *q = p->wait_head;
        p->wait_head = q->next;
        if (!p->wait_head)
            p->wait_tail = NULL;
        conn_send_query(best, q);
        if (best->state == CONN_READY)
            conn_flush(best);
    }
}

/* Every TICK_MS while something waits: reconnect who is due, give up
 * connection attempts past their deadline, answer queries that were told
 * the database is unreachable. */
static void on_tick(h2o_timeout_entry_t *entry)
{
    pg_pool_t *p = H2O_STRUCT_FROM_MEMBER(pg_pool_t, tick, entry);
    uint64_t now = loop_ms(p);
    int again = 0;
    for (size_t i = 0; i < p->cfg.size; i++) {
        pg_conn_t *c = &p->conns[i];
        if (c->state == CONN_DOWN && now >= c->retry_at)
            conn_start(c);
        else if ((c->state == CONN_CONNECTING || c->state == CONN_SETUP) && now >= c->connect_until)
            conn_fail(c, "connecting took longer than -database-timeout");
        again |= c->state != CONN_READY;
    }
    pg_query_t *q;
    while ((q = p->failed) != NULL) {
        p->failed = q->next;
        query_finish(q);
        query_free(q);
    }
    if (again && !h2o_timeout_is_linked(&p->tick))
        h2o_timeout_link(p->cfg.loop, &p->ticks, &p->tick);
}

/* ---- the pool ---- */

pg_pool_t *pg_pool_new(const pg_pool_config_t *cfg)
{
    pg_pool_t *p = xcalloc(1, sizeof(*p));
    p->cfg = *cfg;
    p->url = xstrndup(cfg->url, strlen(cfg->url));
    p->schema = xstrndup(cfg->schema, strlen(cfg->schema));
    p->cfg.url = p->url;
    p->cfg.schema = p->schema;
    h2o_timeout_init(cfg->loop, &p->deadlines, cfg->timeout_ms);
    h2o_timeout_init(cfg->loop, &p->ticks, TICK_MS);
    p->tick.cb = on_tick;
    p->conns = xcalloc(cfg->size, sizeof(*p->conns));
    for (size_t i = 0; i < cfg->size; i++) {
        p->conns[i].pool = p;
        p->conns[i].backoff_ms = BACKOFF_MIN_MS;
        conn_start(&p->conns[i]);
    }
    return p;
}

uint64_t pg_pool_big_freed(const pg_pool_t *p)
{
    return p->big_freed;
}

int pg_pool_ready(const pg_pool_t *p)
{
    return p->ready > 0;
}

size_t pg_pool_nready(const pg_pool_t *p)
{
    return p->ready;
}

int pg_pool_busy(const pg_pool_t *p)
{
    if (p->wait_head)
        return 1;
    for (size_t i = 0; i < p->cfg.size; i++)
        if (p->conns[i].inflight)
            return 1;
    return 0;
}

int pg_pool_healthy(const pg_pool_t *p)
{
    return p->ready > 0 && !p->failing;
}

void pg_pool_free(pg_pool_t *p)
{
    if (!p)
        return;
    p->freeing = 1;
    for (size_t i = 0; i < p->cfg.size; i++)
        conn_fail(&p->conns[i], "the server is stopping");
    pg_query_t *q;
    while ((q = p->wait_head) != NULL) {
        p->wait_head = q->next;
        query_set_error(q, PG_UNAVAILABLE, "the server is stopping");
        query_finish(q);
        query_free(q);
    }
    while ((q = p->failed) != NULL) {
        p->failed = q->next;
        query_finish(q);
        query_free(q);
    }
    if (h2o_timeout_is_linked(&p->tick))
        h2o_timeout_unlink(&p->tick);
    h2o_timeout_dispose(p->cfg.loop, &p->deadlines);
    h2o_timeout_dispose(p->cfg.loop, &p->ticks);
    free(p->conns);
    free(p->url);
    free(p->schema);
    free(p);
}

/* ---- values ---- */

/* The big-endian integer of size (at most 8) bytes at (row, col), as it
 * came: its bytes go to the low end of a big-endian 64-bit word. */
static inline uint64_t get_be(const PGresult *r, int row, int col, int size)
{
    uint64_t be = 0;
    ASSERT(PQgetlength(r, row, col) == size);
    memcpy((char *)&be + 8 - size, PQgetvalue(r, row, col), (size_t)size);
    return be64toh(be);
}

int64_t pg_get_i64(const PGresult *r, int row, int col)
{
    return (int64_t)get_be(r, row, col, 8);
}

int32_t pg_get_i32(const PGresult *r, int row, int col)
{
    return (int32_t)get_be(r, row, col, 4);
}

int16_t pg_get_i16(const PGresult *r, int row, int col)
{
    return (int16_t)get_be(r, row, col, 2);
}

int pg_get_bool(const PGresult *r, int row, int col)
{
    return PQgetlength(r, row, col) == 1 && PQgetvalue(r, row, col)[0] != 0;
}
