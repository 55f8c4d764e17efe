/*
 * mem.c -- the memory store as a whole: construction, the loop's turn,
 * durability (group commit) and the helpers its operations share (see
 * mem.h; the operations are in mem_events.c and mem_chan.c).
 */
#include "mem_int.h"

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/sclock.h"
#include "base/util.h"

/* Deadlines this close after the earliest share its wake-up (the earliest
 * then runs up to this late): a burst of jobs created together costs one
 * wake-up a burst, while a lone deadline is met to the microsecond. */
#define MEM_COALESCE_NS (1 * NTIME_NS_PER_MS)
#define MEM_PROBE_EVERY_NS NTIME_NS_PER_S
#define MEM_REWRITE_POLL_NS (100 * NTIME_NS_PER_MS)

static void say(mem_t *m, const char *level, const char *msg)
{
    if (m->log)
        m->log(level, msg);
    else
        fprintf(stderr, "%s %s\n", level, msg);
}

/* ---- helpers of the operations ---- */

ntime_t mem_tick(mem_t *m)
{
    ntime_t now = m->clock();
    core_tick(m->core, now);
    return now;
}

void mem_fail(mem_t *m, store_res_t *res, store_status_t st, const char *fmt, ...)
{
    res->status = st;
    res->err = NULL;
    if (!fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof(m->err), fmt, ap);
    va_end(ap);
    res->err = m->err;
}

static void full(mem_t *m, store_res_t *res, size_t limit, const char *what)
{
    mem_fail(m, res, STORE_FULL, "the server holds its limit of %zu %s; nothing was changed, try again later",
             limit, what);
}

channel_t *mem_find(mem_t *m, store_chan_t name)
{
    return core_channel_find(m->core, name.name, name.len);
}

/* Would n more events in ch (NULL: a channel not made yet) pass a limit?
 * Then res says which. */
static int no_room(mem_t *m, const channel_t *ch, size_t n, store_res_t *res)
{
    if (core_counters(m->core)->events + n > m->max_events) {
        full(m, res, m->max_events, "events in all channels");
        return 1;
    }
    uint64_t held = ch ? ch->st.ready + ch->st.scheduled + ch->st.locked : 0;
    if (held + n > m->max_channel_events) {
        full(m, res, m->max_channel_events, "events in this channel");
        return 1;
    }
    return 0;
}

channel_t *mem_channel_for(mem_t *m, store_chan_t name, size_t n, int *created, store_res_t *res)
{
    *created = 0;
    channel_t *ch = mem_find(m, name);
    if (ch)
        return n && no_room(m, ch, n, res) ? NULL : ch;
    if (core_channel_count(m->core) >= m->max_channels) {
        full(m, res, m->max_channels, "channels");
        return NULL;
    }
    if (n && no_room(m, NULL, n, res))
        return NULL;
    *created = 1;
    return core_channel(m->core, name.name, name.len);
}

void mem_channel_undo(mem_t *m, channel_t *ch, int created)
{
    if (created)
        core_channel_drop(m->core, ch);
}

/* Tells the layer above of every channel that gained a free event. */
static void tell_available(mem_t *m)
{
    channel_t *ch;
    while ((ch = core_next_available(m->core)) != NULL)
        store_avail(&m->base, ch->name, ch->name_len);
}

static void flush_soon(mem_t *m);

/* What an answer must wait for: the write (and with -fsync always the
 * fsync) of the log up to its position. */
static uint64_t durable_pos(mem_t *m)
{
    return m->fsync_always ? wal_synced(m->wal) : wal_written(m->wal);
}

/* A turn whose write failed skipped the positions (from, to] of its
 * changes, and its answers get 503. An answer that comes after it and
 * adds nothing to the log waits only for what was written before. */
static uint64_t after_failed(const mem_t *m, uint64_t end)
{
    for (size_t i = m->n_failed; i-- > 0 && end == m->failed[i].to;)
        end = m->failed[i].from;
    return end;
}

void mem_done(mem_t *m, store_res_t *res, store_done_fn done, void *arg)
{
    /* Every answer waits for the write of the turn's changes so far (and,
     * with -fsync always, their fsync), reads and failures included: a
     * reader must not see a change that a failed write or a crash would
     * undo, nor a 404 that a DELETE of the same turn caused. */
    if (m->wal) {
        uint64_t end = after_failed(m, wal_pending_end(m->wal));
        if (end > durable_pos(m))
            res->durable_seq = end;
        if (end > wal_written(m->wal))
            flush_soon(m);
    }
    done(arg, res);
    tell_available(m);
}

store_event_t *mem_views(mem_t *m, size_t n)
{
    return m->views = xgrow(m->views, &m->cap_views, n, sizeof(*m->views));
}

void *mem_view_all(void **buf, size_t *cap, size_t size, void **objs, size_t n,
                   void (*view)(void *out, const void *obj))
{
    char *v = *buf = xgrow(*buf, cap, n, size);
    for (size_t i = 0; i < n; i++)
        view(v + i * size, objs[i]);
    free(objs);
    return v;
}

void mem_unsupported(mem_t *m, const char *what, store_done_fn done, void *arg)
{
    store_res_t res = {0};
    mem_fail(m, &res, STORE_INVALID, "%s is not supported yet", what);
    done(arg, &res);
}

/* ---- durability: answers wait for the write and fsync that cover them ---- */

/* Whether seq lies in a failed turn's (from, to]: a binary search, as the
 * ranges are in log order and disjoint. */
static int in_failed(const mem_t *m, uint64_t seq)
{
    size_t lo = 0, hi = m->n_failed; /* the first range with from >= seq */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->failed[mid].from < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && seq <= m->failed[lo - 1].to;
}

/* STORE_OK or STORE_UNAVAILABLE once the answer waiting for seq may go;
 * -1 while it must wait. *pos is durable_pos(m) as the caller last read
 * it (0: not yet); it is read again only before saying "wait", as the
 * read takes the fsync thread's lock. */
static int durable_state(mem_t *m, uint64_t seq, uint64_t *pos)
{
    if (in_failed(m, seq))
        return STORE_UNAVAILABLE;
    if (*pos >= seq || (*pos = durable_pos(m)) >= seq)
        return STORE_OK;
    if (m->fsync_always && wal_fsync_failing(m->wal))
        return STORE_UNAVAILABLE;
    return -1;
}

/* Calls back every waiter whose fate is known, oldest first: O(1) each.
 * A callback may add waiters. The synced position is read again before a
 * waiter is kept (durable_state): a sync that ended while the answers
 * before it were written releases it in the same round, without a trip
 * through the loop (that trip cost 1-15% of the rate at 50 connections
 * under -fsync always). */
static void durable_fire(mem_t *m)
{
    uint64_t pos = 0;
    while (m->durable_head < m->n_durable) {
        mem_durable_t d = m->durable[m->durable_head];
        int st = durable_state(m, d.seq, &pos);
        if (st < 0)
            break;
        if (++m->durable_head == m->n_durable)
            m->durable_head = m->n_durable = 0;
        d.fn(d.arg, (store_status_t)st);
    }
}

/* Queues a waiter. The fired ones at the front are dropped when they are
 * half the array or more, so each waiter is moved O(1) times. */
static void durable_push(mem_t *m, mem_durable_t d)
{
    if (m->n_durable == m->cap_durable && m->durable_head >= m->n_durable / 2 && m->durable_head > 0) {
        m->n_durable -= m->durable_head;
        memmove(m->durable, m->durable + m->durable_head, m->n_durable * sizeof(*m->durable));
        m->durable_head = 0;
    }
    m->durable = xgrow(m->durable, &m->cap_durable, m->n_durable + 1, sizeof(*m->durable));
    m->durable[m->n_durable++] = d;
}

static void note_fsync_state(mem_t *m)
{
    int failing = wal_fsync_failing(m->wal);
    if (failing && !m->fsync_failed_logged) {
        say(m, "error", "syncing the log to disk failed; answers that wait for it get 503 until it works again");
        m->fsync_failed_logged = 1;
    } else if (!failing && m->fsync_failed_logged) {
        say(m, "info", "syncing the log to disk works again");
        m->fsync_failed_logged = 0;
    }
}

/* The fsync thread made progress or failed. */
static void on_synced(h2o_socket_t *sock, const char *err)
{
    (void)err;
    mem_t *m = sock->data;
    uint64_t n; /* one read resets the eventfd (h2o polls it level-triggered) */
    ssize_t r = read(wal_sync_fd(m->wal), &n, sizeof(n));
    (void)r;
    note_fsync_state(m);
    durable_fire(m);
}

static void mem_on_durable(store_t *s, uint64_t seq, void (*fn)(void *arg, store_status_t st), void *arg)
{
    mem_t *m = mem_of(s);
    uint64_t pos = 0;
    int st = m->wal ? durable_state(m, seq, &pos) : STORE_OK;
    if (st >= 0) {
        fn(arg, (store_status_t)st);
        return;
    }
    durable_push(m, (mem_durable_t){seq, fn, arg});
}

/* ---- the turn's one write ---- */

/* The write of a turn failed and its changes are in memory only: the state
 * is rebuilt from the log, which ends on the last change written. Undoing
 * each change instead would need an inverse of every core operation, and
 * this runs once per failure: afterwards each change is written alone
 * (wal_set_defer) until writes work again. */
static void rebuild(mem_t *m)
{
    int64_t t0 = sclock_mono();
    char err[600];
    if (wal_rebuild(m->wal, m->core, m->clock(), err, sizeof(err)) != 0) {
        say(m, "error", err);
        say(m, "error", "cannot undo the changes whose write failed; stopping rather than answer from a "
                        "state the log does not hold");
        exit(1);
    }
    core_set_limits(m->core, m->max_events, m->max_channel_events);
    m->rebuilds++;
    char msg[200];
    snprintf(msg, sizeof(msg), "the changes of one loop turn could not be written to the log and were undone "
             "(state rebuilt from the log in %.1f ms); their requests get 503",
             (double)(sclock_mono() - t0) / 1e6);
    say(m, "warn", msg);
    /* Events the undone changes had taken are free again. */
    channel_t **chs;
    size_t n = core_channels_sorted(m->core, &chs);
    for (size_t i = 0; i < n; i++)
        if (chs[i]->st.ready)
            store_avail(&m->base, chs[i]->name, chs[i]->name_len);
    free(chs);
}

/* Writes the changes kept this turn, then answers whoever waited for them. */
static void mem_flush(mem_t *m)
{
    uint64_t from = wal_written(m->wal), to = wal_pending_end(m->wal);
    if (to == from)
        return;
    if (wal_flush(m->wal) != 0) {
        m->failed = xgrow(m->failed, &m->cap_failed, m->n_failed + 1, sizeof(*m->failed));
        m->failed[m->n_failed++] = (mem_range_t){from, to};
        rebuild(m);
    }
    durable_fire(m);
}

/* A zero timeout on h2o's loop: it runs after the sockets that were ready
 * in this turn of the loop have been served, before the loop sleeps, so
 * every request of the turn shares one write. */
struct mem_flusher {
    h2o_timeout_t timeout;
    h2o_timeout_entry_t entry;
    h2o_evloop_t *loop;
    mem_t *m;
};

static void on_flush(h2o_timeout_entry_t *entry)
{
    struct mem_flusher *f = H2O_STRUCT_FROM_MEMBER(struct mem_flusher, entry, entry);
    mem_flush(f->m);
}

static void flush_soon(mem_t *m)
{
    struct mem_flusher *f = m->flusher;
    if (f && !h2o_timeout_is_linked(&f->entry))
        h2o_timeout_link(f->loop, &f->timeout, &f->entry);
}

static struct mem_flusher *flusher_new(mem_t *m, h2o_evloop_t *loop)
{
    struct mem_flusher *f = xcalloc(1, sizeof(*f));
    f->loop = loop;
    f->m = m;
    f->entry.cb = on_flush;
    h2o_timeout_init(loop, &f->timeout, 0);
    return f;
}

static void flusher_free(struct mem_flusher *f)
{
    if (!f)
        return;
    if (h2o_timeout_is_linked(&f->entry))
        h2o_timeout_unlink(&f->entry);
    h2o_timeout_dispose(f->loop, &f->timeout);
    free(f);
}

/* ---- the loop ---- */

static ntime_t mem_now(store_t *s)
{
    return mem_of(s)->clock();
}

/* While the log fails, find out without a client's change whether it
 * can be written again, so /readyz recovers by itself: once a second, a
 * record that changes nothing. */
static ntime_t probe_log(mem_t *m, ntime_t now, ntime_t next)
{
    if (!wal_failing(m->wal)) {
        m->probe_at = 0;
        return next;
    }
    if (!m->probe_at)
        m->probe_at = now;
    if (now - m->probe_at >= MEM_PROBE_EVERY_NS) {
        m->probe_at = now;
        core_log_probe(m->core, now);
    }
    return next < now + MEM_PROBE_EVERY_NS ? next : now + MEM_PROBE_EVERY_NS;
}

static ntime_t mem_turn(store_t *s)
{
    mem_t *m = mem_of(s);
    ntime_t now = mem_tick(m);
    tell_available(m);
    ntime_t next = core_next_at(m->core, MEM_COALESCE_NS);
    if (!m->wal)
        return next;
    mem_flush(m);
    wal_maybe_rewrite(m->wal, m->core, now, 0);
    next = probe_log(m, now, next);
    if (wal_rewrite_running(m->wal) && next > now + MEM_REWRITE_POLL_NS)
        next = now + MEM_REWRITE_POLL_NS; /* look at the rewrite's child again soon */
    if (!m->sync_sock) {
        note_fsync_state(m);
        durable_fire(m);
    }
    return next;
}

static int mem_ready(store_t *s)
{
    mem_t *m = mem_of(s);
    return !(m->wal && wal_failing(m->wal));
}

static void mem_free(store_t *s)
{
    mem_t *m = mem_of(s);
    if (m->sync_sock) {
        h2o_socket_read_stop(m->sync_sock);
        h2o_socket_close(m->sync_sock);
    }
    flusher_free(m->flusher);
    wal_close(m->wal); /* writes and fsyncs what is left */
    core_free(m->core);
    free(m->durable);
    free(m->failed);
    free(m->views);
    free(m->stats);
    free(m->jobs);
    free(m);
}

static const store_ops_t mem_ops = {
    .publish = mem_publish,
    .list = mem_list,
    .get = mem_get,
    .lock = mem_lock,
    .unlock = mem_unlock,
    .extend = mem_extend,
    .del = mem_del,
    .acquire = mem_acquire,
    .stats = mem_stats,
    .channels = mem_channels,
    .purge = mem_purge,
    .channel_delete = mem_channel_delete,
    .settings_get = mem_settings_get,
    .settings_put = mem_settings_put,
    .redrive = mem_redrive,
    .job_put = mem_job_put,
    .job_get = mem_job_get,
    .jobs = mem_jobs,
    .job_delete = mem_job_delete,
    .job_op = mem_job_op,
    .now = mem_now,
    .turn = mem_turn,
    .on_durable = mem_on_durable,
    .ready = mem_ready,
    .metrics = mem_metrics,
    .free = mem_free,
};

/* The server's clock continues from the core's last instant (the log's
 * last record) if the wall clock is behind it (a clock stepped back, or a
 * log from a machine whose clock was ahead): new changes must not be
 * stamped before old ones, nor new events expire at once. */
static void follow_log_clock(mem_t *m)
{
    sclock_floor(core_now(m->core));
    int64_t ahead = sclock_ahead_ns();
    if (ahead <= NTIME_NS_PER_S)
        return;
    char msg[256];
    snprintf(msg, sizeof(msg),
             "the log's last change is %.1f s later than the wall clock; the server's clock runs on "
             "from it at the monotonic rate until the wall clock catches up",
             (double)ahead / NTIME_NS_PER_S);
    say(m, "warn", msg);
}

store_t *store_mem_new(const store_mem_config_t *cfg)
{
    mem_t *m = xcalloc(1, sizeof(*m));
    m->base.ops = &mem_ops;
    m->core = cfg->core;
    m->wal = cfg->wal;
    m->fsync_always = m->wal && wal_fsync_mode(m->wal) == WAL_FSYNC_ALWAYS;
    m->clock = cfg->clock ? cfg->clock : sclock_now;
    m->max_events = cfg->max_events ? cfg->max_events : SIZE_MAX;
    m->max_channel_events = cfg->max_channel_events ? cfg->max_channel_events : SIZE_MAX;
    m->max_channels = cfg->max_channels ? cfg->max_channels : SIZE_MAX;
    m->metrics_max_channels = cfg->metrics_max_channels ? cfg->metrics_max_channels : 1000;
    m->log = cfg->log;
    core_set_limits(m->core, m->max_events, m->max_channel_events);
    if (!cfg->clock)
        follow_log_clock(m);
    if (m->wal)
        wal_set_defer(m->wal, 1);
    if (m->wal && cfg->loop) {
        m->flusher = flusher_new(m, cfg->loop);
        /* h2o closes the fd it watches: give it a duplicate, the log
         * keeps (and closes) its own. */
        int fd = fcntl(wal_sync_fd(m->wal), F_DUPFD_CLOEXEC, 0);
        m->sync_sock = h2o_evloop_socket_create(cfg->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        m->sync_sock->data = m;
        h2o_socket_read_start(m->sync_sock, on_synced);
    }
    return &m->base;
}
