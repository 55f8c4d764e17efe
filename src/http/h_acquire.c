/*
 * h_acquire.c -- POST /{channel}/acquire: hand out the oldest available
 * events, each locked, and park the request when there are none.
 *
 * A parked request is a waiter on its channel's list (oldest first), with
 * its end of wait in the core's timer heap. It leaves the list in exactly
 * one of three ways: served (events became available), timed out (answered
 * with count 0), or disposed (the client went away and h2o freed the
 * request). The waiter lives in the request's pool with a dispose hook, so
 * a hang-up can never leave a dangling waiter.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "handlers.h"
#include "render.h"
#include "reqjson.h"

#define ACQUIRE_MAX 1000
#define ACQUIRE_MAX_WAIT_NS (60LL * NTIME_NS_PER_S)

typedef struct waiter {
    tnode_t timer;            /* end of the wait */
    struct waiter *prev, *next;
    h2o_req_t *req;
    http_ctx_t *ctx;
    channel_t *channel;
    size_t max;
    int64_t ttl_ns;
    int route;                /* for metrics */
    ntime_t started;          /* for the access log */
    int linked;               /* on the channel's list */
} waiter_t;

static size_t nwaiters; /* parked now, all channels */

static void unlink_waiter(waiter_t *w)
{
    if (!w->linked)
        return;
    nwaiters--;
    channel_t *ch = w->channel;
    if (w->prev)
        w->prev->next = w->next;
    else
        ch->wait_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        ch->wait_tail = w->prev;
    w->linked = 0;
    core_timer_cancel(w->ctx->core, &w->timer);
}

static void on_waiter_dispose(void *p)
{
    unlink_waiter(p);
}

static void answer(h2o_req_t *req, http_ctx_t *ctx, channel_t *ch, event_t **evs, size_t n)
{
    render_event_list(&ctx->out, ch, evs, n, 1);
    http_respond(req, 200, &ctx->out);
}

/* Has the client of a parked request hung up? HTTP/1 stops reading while
 * a request is in flight, so h2o would only notice at write time: look at
 * the socket before locking anything for it. */
static int client_gone(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (!sock)
        return 0;
    char b;
    ssize_t r = recv(h2o_socket_get_fd(sock), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0;
}

void acquire_serve_waiters(http_ctx_t *ctx)
{
    channel_t *ch;
    while ((ch = core_next_available(ctx->core)) != NULL) {
        while (ch->wait_head && ch->ready_len > 0) {
            waiter_t *w = ch->wait_head;
            unlink_waiter(w);
            if (client_gone(w->req)) {
                /* Nothing is locked for it; the empty answer lets h2o find
                 * the closed socket and free the connection. */
                answer(w->req, ctx, ch, NULL, 0);
                continue;
            }
            event_t **evs = h2o_mem_alloc_pool(&w->req->pool, w->max * sizeof(*evs));
            size_t n = core_acquire(ctx->core, ch, http_now(), w->max, w->ttl_ns, evs);
            answer(w->req, ctx, ch, evs, n);
            http_finished(w->req, w->route, w->started, 1);
        }
    }
}

void acquire_on_timeout(http_ctx_t *ctx, tnode_t *node, ntime_t now)
{
    (void)now;
    waiter_t *w = (waiter_t *)(void *)((char *)node - offsetof(waiter_t, timer));
    unlink_waiter(w);
    answer(w->req, ctx, w->channel, NULL, 0);
    http_finished(w->req, w->route, w->started, 1);
}

void acquire_release_all(http_ctx_t *ctx)
{
    channel_t **chans;
    size_t n = core_channels_sorted(ctx->core, &chans);
    for (size_t i = 0; i < n; i++) {
        while (chans[i]->wait_head) {
            waiter_t *w = chans[i]->wait_head;
            unlink_waiter(w);
            answer(w->req, ctx, chans[i], NULL, 0);
        }
    }
    free(chans);
}

static int parse_acquire(const jval_t *body, int64_t *max, int64_t *ttl, int64_t *wait, reqerr_t *e)
{
    *max = 1;
    *ttl = CORE_DEFAULT_LOCK_NS;
    *wait = 0;
    if (!body)
        return 0;
    if (body->type != JV_OBJECT) {
        reqerr_set(e, 400, "expected a JSON object such as {\"max\":10,\"ttl\":\"1m\",\"wait\":\"20s\"}");
        return -1;
    }
    if (reqjson_int(body, "max", 1, ACQUIRE_MAX, max, e) < 0 ||
        reqjson_duration(body, "ttl", 1, ttl, e) < 0 || reqjson_duration(body, "wait", 0, wait, e) < 0)
        return -1;
    if (*wait > ACQUIRE_MAX_WAIT_NS) {
        reqerr_set(e, 400, "field \"wait\" must be at most 60s");
        return -1;
    }
    return 0;
}

void handle_acquire(h2o_req_t *req, route_args_t *a)
{
    reqerr_t e;
    jdoc_t doc;
    int64_t max, ttl, wait;
    if (reqjson_parse(req->entity.base, req->entity.len, 1, a->ctx->limits->max_body, &doc, &e) ||
        parse_acquire(doc.root, &max, &ttl, &wait, &e)) {
        jparse_free(&doc);
        http_error(req, e.status, "%s", e.msg);
        return;
    }
    jparse_free(&doc);
    core_t *c = a->ctx->core;
    channel_t *ch = route_channel(req, a);
    if (!ch)
        return;
    ntime_t now = http_now();
    event_t **evs = h2o_mem_alloc_pool(&req->pool, (size_t)max * sizeof(*evs));
    /* Earlier waiters go first: a newcomer only takes events directly when
     * nobody is parked on this channel. */
    size_t n = ch->wait_head ? 0 : core_acquire(c, ch, now, (size_t)max, ttl, evs);
    if (n == 0 && ch->ready_len > 0 && !ch->wait_head) {
        http_error_io(req); /* there were events, but the locks could not be logged */
        return;
    }
    if (n > 0 || wait == 0) {
        answer(req, a->ctx, ch, evs, n);
        return;
    }
    if (nwaiters >= a->ctx->limits->max_waiters) {
        http_error_full(req, "parked acquire requests", a->ctx->limits->max_waiters);
        return;
    }
    waiter_t *w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), on_waiter_dispose);
    memset(w, 0, sizeof(*w));
    w->req = req;
    w->ctx = a->ctx;
    w->channel = ch;
    w->max = (size_t)max;
    w->ttl_ns = ttl;
    w->route = a->route;
    w->started = now;
    w->prev = ch->wait_tail;
    if (ch->wait_tail)
        ((waiter_t *)ch->wait_tail)->next = w;
    else
        ch->wait_head = w;
    ch->wait_tail = w;
    w->linked = 1;
    nwaiters++;
    core_timer_set(c, &w->timer, now + wait);
}
