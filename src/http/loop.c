/*
 * loop.c -- the server's loop: making the server, each turn (the store,
 * parked requests, the deadline timer), a request's way in, signals and
 * shutdown. The listener is in listen.c, answers in respond.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "base/util.h"
#include "listen.h"
#include "log.h"
#include "respond.h"
#include "router.h"
#include "server_int.h"
#include "wire.h"

typedef struct dr_handler {
    h2o_handler_t super;
    http_server_t *server;
} dr_handler_t;

static http_server_t *signal_target;

/* ---- a request's way in ---- */

/* Only reads need the check (they may render megabytes); a change is
 * made whether or not its answer arrives. A client that pipelined its
 * reads and half-closed still gets them. */
static int client_hung_up(h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) && http_client_reset(req);
}

/* RFC 9112 section 6.3: a message framed two ways (wire.h) is refused and
 * its connection closed, so no byte of it is read as a request. Only a
 * request with a body can carry a framing header. */
static int bad_framing(route_args_t *a)
{
    h2o_req_t *req = a->req;
    if (!req->entity.base)
        return 0;
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    const char *why = sock && sock->input ? wire_framing_conflict(sock->input->bytes, sock->input->size) : NULL;
    if (!why)
        return 0;
    req->http1_is_persistent = 0;
    http_error(a, 400, "%s; the connection is closed", why);
    return 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    http_server_t *s = ((dr_handler_t *)self)->server;
    store_t *st = s->hctx.store;
    if (s->hctx.store_gone) { /* a request read after the shutdown */
        req->http1_is_persistent = 0;
        h2o_send_error_503(req, "Service Unavailable", "the server is stopping", 0);
        return 0;
    }
    route_args_t *a = route_args_new(&s->hctx, req, st->ops->now(st));
    if (bad_framing(a))
        return 0;
    auth_result_t auth = http_authorized(s, req);
    if (auth != AUTH_OK) {
        http_unauthorized(a, auth);
        return 0;
    }
    if (client_hung_up(req)) {
        /* A client that pipelined requests and left: do not render the
         * rest of its queue for nobody. */
        req->http1_is_persistent = 0;
        http_respond_gone(a);
        return 0;
    }
    router_dispatch(a);
    /* Whatever the handler changed may have freed events for parked
     * acquirers (an UNLOCK, a publish). */
    acquire_serve_waiters(&s->hctx);
    return 0;
}

/* ---- signals: a self-pipe, so a signal that lands just before the loop
 * goes to sleep still wakes it ---- */

static void on_signal(int sig)
{
    (void)sig;
    if (signal_target) {
        int saved = errno;
        signal_target->stop = 1;
        ssize_t r = write(signal_target->wakeup_fds[1], "x", 1);
        (void)r;
        errno = saved;
    }
}

static void on_wakeup(h2o_socket_t *sock, const char *err)
{
    (void)err;
    http_server_t *s = sock->data;
    char buf[64];
    while (read(s->wakeup_fds[0], buf, sizeof(buf)) > 0)
        ;
}

void http_server_stop(http_server_t *s)
{
    on_signal(0);
    (void)s;
}

/* ---- the deadline timer ---- */

/* armed_at when a clock step has made the armed instant stale. */
#define ARMED_UNKNOWN INT64_MIN

/* Arms the step watcher: a realtime timer far in the future that the
 * kernel cancels whenever the wall clock is set. Returns 0 or -1. */
static int arm_stepwatch(int fd)
{
    struct itimerspec its = {{0, 0}, {(time_t)7258118400, 0}}; /* 2200-01-01 */
    return timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL);
}

/* The next deadline wakes the loop through a timerfd, to the nanosecond:
 * h2o's loop can only sleep whole milliseconds, and rounding up to them
 * made every job fire up to 1 ms late. */
static void on_deadline(h2o_socket_t *sock, const char *err)
{
    (void)err;
    http_server_t *s = sock->data;
    uint64_t expirations;
    if (read(h2o_socket_get_fd(sock), &expirations, sizeof(expirations)) == sizeof(expirations))
        s->armed_at = NTIME_MAX; /* one-shot: it has disarmed itself */
}

/* The wall clock was set. A step forward moves the store's clock (and
 * so every deadline) closer: forget where the deadline timer is armed, so
 * the turn that follows re-arms it from the store's new now. */
static void on_clock_step(h2o_socket_t *sock, const char *err)
{
    (void)err;
    http_server_t *s = sock->data;
    uint64_t expirations;
    int fd = h2o_socket_get_fd(sock);
    if (read(fd, &expirations, sizeof(expirations)) < 0 && errno == ECANCELED)
        arm_stepwatch(fd);
    s->armed_at = ARMED_UNKNOWN;
}

/* Arms the timerfd for the store's instant `at` (NTIME_MAX: disarms it),
 * with no system call when it is already armed there. The timer runs on
 * CLOCK_MONOTONIC and is set relative to the store's now: durations
 * elapse as durations whatever the wall clock does, and a preloaded
 * libfaketime (which shifts every absolute timer by its wall-clock offset)
 * leaves it alone. Returns 0, or -1 if the kernel refused. */
static int arm_deadline(http_server_t *s, ntime_t at, ntime_t now)
{
    if (at == s->armed_at)
        return 0;
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (at != NTIME_MAX) {
        int64_t in = at - now;
        if (in < 1)
            in = 1; /* an all-zero it_value would disarm */
        its.it_value.tv_sec = (time_t)(in / NTIME_NS_PER_S);
        its.it_value.tv_nsec = (long)(in % NTIME_NS_PER_S);
    }
    if (timerfd_settime(h2o_socket_get_fd(s->deadline), 0, &its, NULL) != 0)
        return -1;
    s->armed_at = at;
    return 0;
}

/* ---- the loop ---- */

ntime_t http_server_turn(http_server_t *s, int32_t max_ms)
{
    store_t *st = s->hctx.store;
    uint64_t sends = s->sends;
    ntime_t next = st->ops->turn(st);
    ntime_t now = st->ops->now(st);
    max_ms = slowread_sweep(&s->slow, now, max_ms);
    acquire_expire(&s->hctx, now);
    acquire_probe_looks(&s->hctx, now);
    acquire_serve_waiters(&s->hctx);
    ntime_t wake = waiters_next_at(&s->hctx.waiters);
    if (wake < next)
        next = wake;
    /* An answer sent from here, outside h2o's callbacks, completes (and
     * lets its connection read the next request) only in h2o's next turn:
     * that turn must not sleep. */
    int32_t wait = max_ms < 0 ? INT32_MAX : max_ms;
    if (s->sends != sends || next <= now) {
        wait = 0;
    } else if (arm_deadline(s, next, now) != 0 && next != NTIME_MAX) {
        /* whole milliseconds, then, rounded up: waking early is a wasted turn */
        int64_t ms = (next - now + NTIME_NS_PER_MS - 1) / NTIME_NS_PER_MS;
        wait = ms < wait ? (int32_t)ms : wait;
    }
    /* else: sleeps until the timerfd, a socket, or max_ms */
    h2o_evloop_run(s->ctx.loop, wait);
    return next;
}

static void on_avail(void *arg, const char *channel, size_t len)
{
    acquire_avail(arg, channel, len);
}

/* Timers and pipes the loop watches besides the listener; -1 after
 * logging what failed. */
static int watch_loop_fds(http_server_t *s)
{
    if (pipe2(s->wakeup_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_error("cannot create the signal pipe: %s", strerror(errno));
        return -1;
    }
    /* The store's clock runs at the monotonic rate (base/sclock.h), so
     * deadlines are monotonic; a second timer, on the wall clock, only
     * tells when that clock is set, since a step forward brings every
     * deadline closer. */
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int sfd = tfd < 0 ? -1 : timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (sfd < 0 || arm_stepwatch(sfd) != 0) {
        log_error("cannot create the deadline timer: %s", strerror(errno));
        if (tfd >= 0)
            close(tfd);
        if (sfd >= 0)
            close(sfd);
        close(s->wakeup_fds[0]);
        close(s->wakeup_fds[1]);
        return -1;
    }
    s->wakeup = h2o_evloop_socket_create(s->ctx.loop, s->wakeup_fds[0], H2O_SOCKET_FLAG_DONT_READ);
    s->wakeup->data = s;
    h2o_socket_read_start(s->wakeup, on_wakeup);
    s->deadline = h2o_evloop_socket_create(s->ctx.loop, tfd, H2O_SOCKET_FLAG_DONT_READ);
    s->deadline->data = s;
    s->armed_at = NTIME_MAX;
    h2o_socket_read_start(s->deadline, on_deadline);
    s->stepwatch = h2o_evloop_socket_create(s->ctx.loop, sfd, H2O_SOCKET_FLAG_DONT_READ);
    s->stepwatch->data = s;
    h2o_socket_read_start(s->stepwatch, on_clock_step);
    return 0;
}

/* h2o's configuration: limits, timeouts, the one handler and the filter. */
static void configure(http_server_t *s, const http_config_t *cfg)
{
    h2o_config_init(&s->config);
    /* No server_name: the response filter writes the same bytes for less. */
    s->config.server_name = h2o_iovec_init(NULL, 0);
    /* h2o refuses bodies past this itself (plain-text 413); keep it above
     * our limit so ordinary over-size bodies get our JSON 413. */
    s->config.max_request_entity_size = cfg->limits.max_body * 2 + 4096;
    /* Time to receive a request (a slow-loris client is cut off after it)
     * and to keep an idle connection. */
    s->config.http1.req_timeout = cfg->limits.request_timeout_ms;
    s->config.handshake_timeout = cfg->limits.request_timeout_ms;
    /* HTTP/1.1 only: h2o's HTTP/2 on a plain port (h2c) would not apply
     * the request timeout. */
    s->config.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_create_filter(&host->fallback_path, sizeof(h2o_filter_t))->on_setup_ostream = http_response_filter;
    h2o_create_filter(path, sizeof(h2o_filter_t))->on_setup_ostream = http_response_filter;
    dr_handler_t *h = (dr_handler_t *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->server = s;
}

http_server_t *http_server_new(const http_config_t *cfg, store_t *store)
{
    http_server_t *s = xcalloc(1, sizeof(*s));
    char bound[128];
    if (listen_start(s, cfg, bound, sizeof(bound)) != 0) {
        free(s);
        return NULL;
    }
    configure(s, cfg);
    h2o_context_init(&s->ctx, cfg->loop, &s->config);
    if (watch_loop_fds(s) != 0) {
        h2o_context_dispose(&s->ctx);
        h2o_config_dispose(&s->config);
        listen_stop(s);
        free(s);
        return NULL;
    }
    listen_accept_start(s);
    s->auth_token = cfg->auth_token;
    s->auth_len = cfg->auth_token ? strlen(cfg->auth_token) : 0;
    s->metrics_open = cfg->metrics_open;
    s->access_log = cfg->access_log;
    s->slow.timeout_ns = (int64_t)cfg->limits.request_timeout_ms * NTIME_NS_PER_MS;
    h2o_linklist_init_anchor(&s->durable);
    s->hctx.server = s;
    s->hctx.store = store;
    s->hctx.limits = &cfg->limits;
    s->hctx.ready = 1;
    jsonw_init(&s->hctx.out, 4096);
    waiters_init(&s->hctx.waiters);
    store_set_avail_fn(store, on_avail, &s->hctx);

    /* Answers that wait for the turn's log write keep their requests'
     * memory until the turn ends: with 50 connections a few hundred kB
     * come and go together each turn. glibc's default would give them
     * back to the kernel (brk) every turn and fault the pages in again
     * the next. */
    mallopt(M_TRIM_THRESHOLD, 2 << 20);
    signal_target = s;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_info("listening on %s://%s%s", s->ssl_ctx ? "https" : "http", bound,
             cfg->auth_token ? " (bearer token required)" : "");
    return s;
}

static int shutdown_conn(h2o_req_t *req, void *arg)
{
    (void)arg;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock)
        shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
    return 0;
}

/* A connection still open as the server is freed: its close must not
 * reach the server. */
static int orphan_conn(h2o_req_t *req, void *arg)
{
    (void)arg;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock && sock->on_close.cb) {
        free(sock->on_close.data);
        sock->on_close.cb = NULL;
        sock->on_close.data = NULL;
    }
    return 0;
}

int http_server_run(http_server_t *s)
{
    while (!s->stop)
        http_server_turn(s, -1);
    log_info("stopping: no new connections, answering parked requests");
    listen_stop(s);
    s->ctx.shutdown_requested = 1; /* answers from now on close their connection */
    acquire_release_all(&s->hctx);
    /* Requests in flight finish (a store that answers later gets a
     * second) and their answers (some waiting for an fsync) drain for a
     * moment; then the connections are shut so h2o closes them itself. */
    store_t *st = s->hctx.store;
    ntime_t t0 = st->ops->now(st);
    while (st->ops->now(st) - t0 < 100 * NTIME_NS_PER_MS ||
           (s->hctx.in_store && st->ops->now(st) - t0 < 1000 * NTIME_NS_PER_MS) ||
           (!h2o_linklist_is_empty(&s->durable) && st->ops->now(st) - t0 < 300 * NTIME_NS_PER_MS))
        http_server_turn(s, 20);
    s->config.http1.callbacks.foreach_request(&s->ctx, shutdown_conn, NULL);
    /* Connections whose store call is still out close only once the
     * store answers: when it is freed (server.h). */
    ntime_t until = st->ops->now(st) + 1000 * NTIME_NS_PER_MS;
    while (st->ops->now(st) < until && s->nconns > s->hctx.in_store)
        http_server_turn(s, 20);
    /* From here the caller may free the store: nothing calls it. */
    store_set_avail_fn(st, NULL, NULL);
    s->hctx.store_gone = 1;
    return 0;
}

void http_server_release_parked(http_server_t *s)
{
    acquire_release_all(&s->hctx);
}

size_t http_server_waiting_durable(const http_server_t *s)
{
    return durable_waiting(s);
}

void http_server_free(http_server_t *s)
{
    if (!s)
        return;
    signal_target = NULL;
    if (!s->hctx.store_gone)
        store_set_avail_fn(s->hctx.store, NULL, NULL);
    s->hctx.store_gone = 1;
    listen_stop(s);
    h2o_socket_read_stop(s->wakeup);
    h2o_socket_close(s->wakeup);
    h2o_socket_read_stop(s->deadline);
    h2o_socket_close(s->deadline);
    h2o_socket_read_stop(s->stepwatch);
    h2o_socket_close(s->stepwatch);
    close(s->wakeup_fds[1]);
    /* Answers the store gave as it was freed close their (shut)
     * connections in a turn or two. */
    h2o_evloop_run(s->ctx.loop, 0);
    for (int i = 0; i < 100 && s->nconns > 0; i++)
        h2o_evloop_run(s->ctx.loop, 10);
    /* h2o cannot dispose a context with connections still open; a client
     * that ignored the shutdown keeps its memory until exit, and its
     * close must not reach this server. */
    s->config.http1.callbacks.foreach_request(&s->ctx, orphan_conn, NULL);
    if (h2o_linklist_is_empty(&s->ctx.http1._conns)) {
        h2o_multithread_queue_t *queue = s->ctx.queue;
        h2o_context_dispose(&s->ctx);
        /* h2o 2.2's evloop build closes the queue's sockets but never frees
         * the queue itself. */
        free(queue);
        waiters_free(&s->hctx.waiters);
    }
    h2o_config_dispose(&s->config);
    jsonw_free(&s->hctx.out);
    listen_free(s);
    free(s);
}
