/*
 * pg_wake.c -- waking parked acquires across replicas (see pg.h).
 *
 * Channels a waiter may park on are "wanted": an acquire there found
 * nothing within the last WANT_FOR_NS. Three ways tell the layer above
 * (store_avail) that one of them may have a free event:
 *   - this replica committed a change that frees events there (at once);
 *   - another replica did and sent NOTIFY, heard on this replica's LISTEN
 *     connection (payload: the channel's name);
 *   - the waiters poll: once a second, and right after the LISTEN
 *     connection (re)connects or a notification names a wanted channel,
 *     one query answers for each wanted channel whether it has a free
 *     event now and when the next delayed event or lease end there falls
 *     due; a timer fires at that instant, and a poll follows it shortly
 *     (the instant is on the estimate of the database's clock, which may
 *     run a little ahead of it).
 * A wake-up that comes while an acquire's statement on that channel is
 * in flight finds no waiter to wake there yet: the acquire may have read
 * the channel before the change and will park on an answer already out
 * of date. So each channel counts its wake-ups, and an acquire's answer
 * that found nothing is checked against the count read when it was sent
 * (pg_wake_acquiring, pg_wake_acquired): if it moved, the acquire goes
 * again at once instead of waiting for the next poll.
 * NOTIFY goes out in its own transaction after the change committed
 * (inside every publish it would serialise commits): the first for a
 * channel at once, then at most one per NOTIFY_EVERY_NS, later ones
 * coalesced into it.
 */
#include "pg_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/util.h"

#define NOTIFY_EVERY_NS (100 * NTIME_NS_PER_MS)
#define WANT_FOR_NS (65 * NTIME_NS_PER_S) /* longer than the longest wait */
#define POLL_MAX_CHANNELS 1000
#define POLL_SHORTLY_NS (20 * NTIME_NS_PER_MS) /* the poll that follows a wake-up */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

typedef struct chan_entry {
    ntime_t last_sent;        /* NOTIFY: when the last one went out */
    int pending;              /* NOTIFY: one is due at last_sent + NOTIFY_EVERY_NS */
    ntime_t wanted_at;        /* an acquire here found nothing then (0: not wanted) */
    ntime_t due_at;           /* a delayed event or lease end falls due (0: none known) */
    unsigned woken;           /* wake-ups told to the layer above (wraps) */
    unsigned acquiring;       /* acquire statements in flight (keeps the entry) */
} chan_entry_t;

enum listen_state { L_DOWN, L_CONNECTING, L_LISTENING };

struct pg_wake {
    pgs_t *s;
    strmap_t chans;           /* name -> chan_entry_t */
    int notify_now;           /* some entries must be sent at once */
    int polling;
    ntime_t poll_soon;        /* run the waiters poll at this instant (0: no) */
    /* the LISTEN connection */
    PGconn *pq;
    h2o_socket_t *sock;
    enum listen_state state;
    int listen_sent;
    uint64_t retry_at_ms, backoff_ms, connect_until_ms;
};

static void listen_fail(pg_wake_t *w, const char *why);

static chan_entry_t *chan(pg_wake_t *w, const char *name, size_t len)
{
    chan_entry_t *e = strmap_get(&w->chans, name, len);
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        strmap_put(&w->chans, name, len, e);
    }
    return e;
}

/* Tells the layer above that ch may have a free event, and counts it
 * for the acquires in flight there (e: ch's entry, if any). */
static void wake(pg_wake_t *w, chan_entry_t *e, const char *name, size_t len)
{
    if (e)
        e->woken++;
    store_avail(&w->s->base, name, len);
}

/* ---- this replica's changes ---- */

/* Queues a NOTIFY for ch: the first at once, later ones coalesced. */
static void notify_later(pg_wake_t *w, chan_entry_t *e)
{
    if (e->pending)
        return;
    e->pending = 1;
    if (pgs_now(w->s) - e->last_sent >= NOTIFY_EVERY_NS) {
        e->last_sent = 0; /* marks "send at once" for the turn */
        w->notify_now = 1;
    }
}

/* Asks for the waiters poll shortly after a wake-up, unless one is asked
 * for already. */
static void poll_shortly(pg_wake_t *w, ntime_t now)
{
    if (!w->poll_soon)
        w->poll_soon = now + POLL_SHORTLY_NS;
}

void pg_wake_freed(pgs_t *s, const char *name, size_t len)
{
    chan_entry_t *e = chan(s->wake, name, len);
    wake(s->wake, e, name, len);
    notify_later(s->wake, e);
}

void pg_wake_due(pgs_t *s, const char *name, size_t len, ntime_t at)
{
    pg_wake_t *w = s->wake;
    chan_entry_t *e = chan(w, name, len);
    if (e->wanted_at && (!e->due_at || at < e->due_at))
        e->due_at = at; /* this replica's waiters: a timer at once */
    notify_later(w, e); /* the others' waiters: they poll for it */
}

void pg_wake_events(pgs_t *s, const char *name, size_t len, const store_event_t *evs, size_t n)
{
    ntime_t at = NTIME_MAX;
    for (size_t i = 0; i < n; i++) {
        ntime_t t = evs[i].state == STORE_LOCKED      ? evs[i].locked_until
                    : evs[i].state == STORE_SCHEDULED ? evs[i].published_at
                                                      : NTIME_MAX;
        at = t < at ? t : at;
    }
    if (at != NTIME_MAX)
        pg_wake_due(s, name, len, at);
}

void pg_wake_wanted(pgs_t *s, const char *name, size_t len, int missed)
{
    pg_wake_t *w = s->wake;
    chan_entry_t *e = chan(w, name, len);
    ntime_t now = pgs_now(s);
    /* A channel not waited on lately: learn its due times at once, so a
     * delayed event or lease end there wakes its new waiters in time. */
    if (missed || !e->wanted_at || now - e->wanted_at > NTIME_NS_PER_S)
        if (!w->poll_soon || w->poll_soon > now)
            w->poll_soon = now;
    e->wanted_at = now;
}

unsigned pg_wake_acquiring(pgs_t *s, const char *name, size_t len)
{
    chan_entry_t *e = chan(s->wake, name, len);
    e->acquiring++;
    return e->woken;
}

int pg_wake_acquired(pgs_t *s, const char *name, size_t len, unsigned woken)
{
    chan_entry_t *e = strmap_get(&s->wake->chans, name, len);
    ASSERT(e && e->acquiring > 0);
    e->acquiring--;
    return e->woken != woken;
}

/* ---- the waiters poll ---- */

static void on_poll(pg_query_t *q, void *arg)
{
    pgop_t *op = arg;
    pgs_t *s = op->s;
    pg_wake_t *w = s->wake;
    const PGresult *r = pg_query_result(q, 0);
    w->polling = 0;
    for (int row = 0; r && pg_query_status(q) == PG_OK && row < PQntuples(r); row++) {
        uint32_t len;
        const char *name = pgs_text(r, row, 1, &len);
        chan_entry_t *e = strmap_get(&w->chans, name, len);
        if (!e)
            continue;
        e->due_at = PQgetisnull(r, row, 3) ? 0 : pg_get_i64(r, row, 3);
        if (pg_get_bool(r, row, 2))
            wake(w, e, name, len);
    }
    pgop_free(op);
}

typedef struct collect {
    pg_arr_t *arr;
    ntime_t now;
    int n;
} collect_t;

static void collect_wanted(strmap_entry_t *me, void *arg)
{
    collect_t *c = arg;
    chan_entry_t *e = me->value;
    if (e->wanted_at && c->now - e->wanted_at < WANT_FOR_NS && c->n < POLL_MAX_CHANNELS) {
        pg_arr_bytes(c->arr, me->key, me->len);
        c->n++;
    }
}

void pg_wake_poll(pgs_t *s)
{
    pg_wake_t *w = s->wake;
    if (w->polling)
        return;
    pg_arr_t arr;
    pg_arr_init(&arr, PG_TEXT);
    collect_t c = {&arr, pgs_now(s), 0};
    strmap_each(&w->chans, collect_wanted, &c);
    w->poll_soon = 0;
    if (c.n == 0) {
        free(arr.buf);
        return;
    }
    w->polling = 1;
    pgop_t *op = pgop_new(s, NULL, 0, NULL, NULL);
    pg_query_t *q = pgop_query(op, on_poll);
    pg_query_stmt(q, Q_WAITERS);
    pg_query_arr(q, PG_TEXT_ARRAY, &arr);
    pg_query_send(q);
}

/* ---- the turn: notifications out, timers, forgetting ---- */

typedef struct sweep_ctx {
    pg_wake_t *w;
    ntime_t now, next;
    pg_arr_t *out;
    int n_out;
    strmap_entry_t **drop;
    size_t n_drop, cap_drop;
} sweep_ctx_t;

static void turn_entry(strmap_entry_t *me, void *arg)
{
    sweep_ctx_t *c = arg;
    chan_entry_t *e = me->value;
    if (e->pending) {
        ntime_t at = e->last_sent ? e->last_sent + NOTIFY_EVERY_NS : c->now;
        if (at <= c->now) {
            pg_arr_bytes(c->out, me->key, me->len);
            c->n_out++;
            e->pending = 0;
            e->last_sent = c->now;
        } else if (at < c->next) {
            c->next = at;
        }
    }
    if (e->due_at && e->due_at <= c->now) {
        e->due_at = 0;
        wake(c->w, e, me->key, me->len);
        /* The due time is read on the estimate of the database's clock,
         * which may run a little ahead: a waiter that finds the lease not
         * yet lapsed parks again. The poll reads it again from the
         * database. */
        poll_shortly(c->w, c->now);
    } else if (e->due_at && e->due_at < c->next) {
        c->next = e->due_at;
    }
    if (!e->pending && !e->due_at && !e->acquiring && c->now - e->last_sent > NTIME_NS_PER_S &&
        (!e->wanted_at || c->now - e->wanted_at > WANT_FOR_NS)) {
        if (c->n_drop == c->cap_drop) {
            c->cap_drop = c->cap_drop ? 2 * c->cap_drop : 16;
            c->drop = xrealloc(c->drop, c->cap_drop * sizeof(*c->drop));
        }
        c->drop[c->n_drop++] = me;
    }
}

static void on_notify_sent(pg_query_t *q, void *arg)
{
    (void)q;
    pgop_free(arg);
}

static void send_notify(pgs_t *s, pg_arr_t *arr)
{
    pgop_t *op = pgop_new(s, NULL, 0, NULL, NULL);
    pg_query_t *q = pgop_query(op, on_notify_sent);
    pg_query_stmt(q, Q_NOTIFY);
    pg_query_bytes(q, s->cfg.schema, strlen(s->cfg.schema));
    pg_query_arr(q, PG_TEXT_ARRAY, arr);
    pg_query_send(q);
}

static void listen_turn(pg_wake_t *w);

ntime_t pg_wake_turn(pgs_t *s, ntime_t now)
{
    pg_wake_t *w = s->wake;
    listen_turn(w);
    if (w->poll_soon && w->poll_soon <= now)
        pg_wake_poll(s);
    pg_arr_t out;
    pg_arr_init(&out, PG_TEXT);
    sweep_ctx_t c = {.w = w, .now = now, .next = NTIME_MAX, .out = &out};
    strmap_each(&w->chans, turn_entry, &c);
    w->notify_now = 0;
    for (size_t i = 0; i < c.n_drop; i++)
        free(strmap_del(&w->chans, c.drop[i]->key, c.drop[i]->len));
    free(c.drop);
    if (c.n_out > 0 && pg_pool_ready(s->pool))
        send_notify(s, &out);
    else
        free(out.buf);
    /* A poll asked for while one is out goes after its answer, which
     * wakes the loop itself: waking for it meanwhile would spin. */
    if (w->poll_soon && !w->polling && w->poll_soon < c.next)
        c.next = w->poll_soon;
    if (w->state != L_LISTENING && c.next > now + 100 * NTIME_NS_PER_MS)
        c.next = now + 100 * NTIME_NS_PER_MS; /* reconnect attempts are checked here */
    return c.next;
}

/* ---- the LISTEN connection ---- */

static uint64_t ms_now(pg_wake_t *w)
{
    return h2o_now(w->s->cfg.loop);
}

static void sock_close(pg_wake_t *w)
{
    if (w->sock) {
        h2o_socket_read_stop(w->sock);
        h2o_socket_close(w->sock);
        w->sock = NULL;
    }
}

static void listen_fail(pg_wake_t *w, const char *why)
{
    if (w->state == L_LISTENING) {
        char msg[1200];
        snprintf(msg, sizeof(msg), "notification connection lost: %s", why);
        pgs_log(w->s, "warn", msg);
    }
    sock_close(w);
    if (w->pq)
        PQfinish(w->pq);
    w->pq = NULL;
    w->state = L_DOWN;
    w->retry_at_ms = ms_now(w) + w->backoff_ms;
    w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
}

/* Every notification: the channel it names may have a free event. */
static void take_notifies(pg_wake_t *w)
{
    PGnotify *n;
    while ((n = PQnotifies(w->pq)) != NULL) {
        size_t len = strlen(n->extra);
        chan_entry_t *e = strmap_get(&w->chans, n->extra, len);
        wake(w, e, n->extra, len);
        if (e && e->wanted_at)
            poll_shortly(w, pgs_now(w->s)); /* learn its due times too */
        PQfreemem(n);
    }
}

static void on_listen_io(h2o_socket_t *sock, const char *err);

static int listen_watch(pg_wake_t *w)
{
    sock_close(w);
    int fd = fcntl(PQsocket(w->pq), F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    w->sock = h2o_evloop_socket_create(w->s->cfg.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    w->sock->data = w;
    h2o_socket_read_start(w->sock, on_listen_io);
    return 0;
}

static void on_listen_writable(h2o_socket_t *sock, const char *err);

/* Connection steps (PQconnectPoll), then LISTEN. */
static void listen_connect_poll(pg_wake_t *w)
{
    PostgresPollingStatusType st = PQconnectPoll(w->pq);
    if (st == PGRES_POLLING_FAILED) {
        listen_fail(w, PQerrorMessage(w->pq));
        return;
    }
    if (listen_watch(w) != 0) {
        listen_fail(w, "cannot watch the socket");
        return;
    }
    if (st == PGRES_POLLING_WRITING) {
        h2o_socket_notify_write(w->sock, on_listen_writable);
        return;
    }
    if (st != PGRES_POLLING_OK)
        return;
    char *qs = PQescapeIdentifier(w->pq, w->s->cfg.schema, strlen(w->s->cfg.schema));
    char sql[200];
    snprintf(sql, sizeof(sql), "LISTEN %s", qs ? qs : "\"\"");
    PQfreemem(qs);
    if (PQsetnonblocking(w->pq, 1) != 0 || !PQsendQuery(w->pq, sql)) {
        listen_fail(w, PQerrorMessage(w->pq));
        return;
    }
    w->listen_sent = 1;
    if (PQflush(w->pq) > 0)
        h2o_socket_notify_write(w->sock, on_listen_writable);
}

/* Reads what came: LISTEN's answer (then it listens), notifications. */
static void listen_read(pg_wake_t *w)
{
    if (!PQconsumeInput(w->pq)) {
        listen_fail(w, PQerrorMessage(w->pq));
        return;
    }
    while (!PQisBusy(w->pq)) {
        PGresult *r = PQgetResult(w->pq);
        if (!r)
            break;
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            char why[600];
            snprintf(why, sizeof(why), "LISTEN failed: %s", PQresultErrorMessage(r));
            PQclear(r);
            listen_fail(w, why);
            return;
        }
        PQclear(r);
        if (w->state == L_CONNECTING && w->listen_sent) {
            w->state = L_LISTENING;
            w->backoff_ms = BACKOFF_MIN_MS;
            /* notifications sent while it was down are lost: look now */
            w->poll_soon = pgs_now(w->s);
        }
    }
    take_notifies(w);
}

/* The socket is readable (writable 0) or writable: the connection steps
 * until LISTEN is sent; then reads what came, or sends what is left. */
static void listen_io(h2o_socket_t *sock, const char *err, int writable)
{
    pg_wake_t *w = sock->data;
    if (err)
        listen_fail(w, err);
    else if (w->state == L_CONNECTING && !w->listen_sent)
        listen_connect_poll(w);
    else if (!writable)
        listen_read(w);
    else if (PQflush(w->pq) > 0)
        h2o_socket_notify_write(w->sock, on_listen_writable);
}

static void on_listen_io(h2o_socket_t *sock, const char *err)
{
    listen_io(sock, err, 0);
}

static void on_listen_writable(h2o_socket_t *sock, const char *err)
{
    listen_io(sock, err, 1);
}

static void listen_start(pg_wake_t *w)
{
    w->pq = PQconnectStart(w->s->cfg.url);
    w->listen_sent = 0;
    if (!w->pq || PQstatus(w->pq) == CONNECTION_BAD) {
        listen_fail(w, w->pq ? PQerrorMessage(w->pq) : "out of memory");
        return;
    }
    w->state = L_CONNECTING;
    w->connect_until_ms = ms_now(w) + w->s->cfg.timeout_ms;
    if (listen_watch(w) != 0) {
        listen_fail(w, "cannot watch the socket");
        return;
    }
    h2o_socket_notify_write(w->sock, on_listen_writable);
}

/* Reconnects when due; gives up a connection attempt past the timeout. */
static void listen_turn(pg_wake_t *w)
{
    uint64_t now = ms_now(w);
    if (w->state == L_DOWN && now >= w->retry_at_ms)
        listen_start(w);
    else if (w->state == L_CONNECTING && now >= w->connect_until_ms)
        listen_fail(w, "connecting took longer than -database-timeout");
}

int pg_wake_listening(const pgs_t *s)
{
    return s->wake->state == L_LISTENING;
}

pg_wake_t *pg_wake_new(pgs_t *s)
{
    pg_wake_t *w = xcalloc(1, sizeof(*w));
    w->s = s;
    strmap_init(&w->chans);
    w->backoff_ms = BACKOFF_MIN_MS;
    w->state = L_DOWN;
    return w;
}

static void free_entry(strmap_entry_t *e, void *arg)
{
    (void)arg;
    free(e->value);
}

void pg_wake_free(pg_wake_t *w)
{
    if (!w)
        return;
    sock_close(w);
    if (w->pq)
        PQfinish(w->pq);
    strmap_each(&w->chans, free_entry, NULL);
    strmap_free(&w->chans);
    free(w);
}
