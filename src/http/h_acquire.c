/*
 * h_acquire.c -- POST /{channel}/acquire: hand out the oldest available
 * events, each locked, and park the request when there are none.
 *
 * A parked request waits in waiters.h. It leaves in exactly one of five
 * ways: served (the store said its channel gained events and an acquire
 * got some), timed out (answered with count 0), released at shutdown,
 * found gone before anything was locked for it (reset, or a FIN that a
 * probe showed to be a close, or that could not be probed: an empty
 * answer), or freed (the client went away and h2o freed the request,
 * which the request's guard reports). A probe that hears nothing back
 * answers count 0, as a timeout does. Earlier waiters go first: a
 * newcomer takes events directly only when nobody is parked on its
 * channel, or all who are are being probed.
 */
#include <string.h>
#include <sys/socket.h>
#include "handlers.h"
#include "probe.h"
#include "render.h"
#include "reqjson.h"
#include "respond.h"

#define ACQUIRE_MAX 1000
#define ACQUIRE_MAX_WAIT_NS (60LL * NTIME_NS_PER_S)

static void answer(route_args_t *a, const store_res_t *res)
{
    size_t n = res ? res->n_events : 0;
    render_event_list(&a->ctx->out, a->channel, a->channel_len, n ? res->events : NULL, n, 1);
    http_respond(a, 200, &a->ctx->out, res ? res->durable_seq : 0);
}

void acquire_avail(void *ctx, const char *channel, size_t len)
{
    waiters_avail(&((http_ctx_t *)ctx)->waiters, channel, len);
}

static void serve_queue(http_ctx_t *ctx, waitq_t *q);

/* The store's answer for a parked request at the head of its queue. */
static void served(route_args_t *a, const store_res_t *res)
{
    waitq_t *q = a->wait.q;
    if (!q) /* its wait ended while the store worked */
        return;
    http_ctx_t *ctx = a->ctx;
    int later = ctx->store->answers_later;
    q->busy = NULL;
    if (res->status == STORE_OK && res->n_events == 0) {
        q->dry = 1; /* nothing free after all: it stays first */
        if (later && q->again) /* the channel gained events meanwhile */
            serve_queue(ctx, q);
        return;
    }
    if (later)
        q->serving = 1; /* keeps q when its last waiter leaves: served below */
    waiters_leave(&ctx->waiters, &a->wait);
    if (res->status != STORE_OK)
        http_store_error(a, res, NULL);
    else
        answer(a, res);
    if (later) {
        q->serving = 0;
        serve_queue(ctx, q);
    }
}

/* Nothing is locked for a client that has gone; the empty answer lets
 * h2o find the closed socket and free the connection. */
static void gone(http_ctx_t *ctx, route_args_t *a)
{
    waiters_leave(&ctx->waiters, &a->wait);
    http_respond_gone(a);
}

/* May events be locked for w: is its client still there to read them?
 * A reset client is gone. A FIN means closed or half-closed: a 100
 * Continue finds out which (probe.h), and w is passed over until then;
 * where no probe can be sent, the FIN is taken as a close. */
static int client_reads(http_ctx_t *ctx, waiter_t *w, route_args_t *a)
{
    if (http_client_reset(a->req)) {
        gone(ctx, a);
        return 0;
    }
    if (w->state == WAITER_HALF_CLOSED || !http_client_fin(a->req))
        return 1;
    ntime_t look = probe_start(&w->probe, a->req, ctx->store->ops->now(ctx->store));
    if (look)
        waiters_probe(&ctx->waiters, w, look);
    else
        gone(ctx, a);
    return 0;
}

/* Hands the channel's free events to its waiters, oldest first, until
 * one gets nothing. The queue is kept while this runs, even if it
 * empties (waiters_tidy frees it after). A store that answers later
 * serves one waiter at a time: served() goes on; news that comes while
 * one is out (again) makes the next round start even if it finds
 * nothing. */
static void serve_queue(http_ctx_t *ctx, waitq_t *q)
{
    waiter_t *w;
    if (q->busy) {
        q->again = 1;
        return;
    }
    q->serving = 1;
    q->again = 0;
    while (!q->busy && (w = waiters_head(q)) != NULL) {
        route_args_t *a = H2O_STRUCT_FROM_MEMBER(route_args_t, wait, w);
        if (!client_reads(ctx, w, a))
            continue;
        q->busy = w;
        q->dry = 0;
        store_t *st = http_call(a, served);
        st->ops->acquire(st, route_chan(a), w->max, w->ttl_ns, http_then, a);
        if (q->dry || st->answers_later)
            break; /* the channel is dry, or served() goes on */
    }
    q->serving = 0;
    waiters_tidy(&ctx->waiters, q);
}

void acquire_serve_waiters(http_ctx_t *ctx)
{
    waitq_t *q;
    while ((q = waiters_next_pending(&ctx->waiters)) != NULL)
        serve_queue(ctx, q);
}

void acquire_expire(http_ctx_t *ctx, ntime_t now)
{
    waiter_t *w;
    while ((w = waiters_next_due(&ctx->waiters, now)) != NULL)
        answer(H2O_STRUCT_FROM_MEMBER(route_args_t, wait, w), NULL);
}

void acquire_probe_looks(http_ctx_t *ctx, ntime_t now)
{
    waiter_t *w;
    while ((w = waiters_next_look(&ctx->waiters, now)) != NULL) {
        route_args_t *a = H2O_STRUCT_FROM_MEMBER(route_args_t, wait, w);
        ntime_t next = 0;
        switch (probe_check(&w->probe, a->req, now, &next)) {
        case PROBE_WAIT:
            waiters_probe(&ctx->waiters, w, next);
            break;
        case PROBE_ALIVE:
            waiters_half_closed(&ctx->waiters, w);
            break;
        case PROBE_GONE:
            gone(ctx, a);
            break;
        case PROBE_SILENT:
            waiters_leave(&ctx->waiters, w);
            answer(a, NULL);
            break;
        }
    }
}

void acquire_release_all(http_ctx_t *ctx)
{
    waiter_t *w;
    while ((w = waiters_any_left(&ctx->waiters)) != NULL)
        answer(H2O_STRUCT_FROM_MEMBER(route_args_t, wait, w), NULL);
}

/* Is anyone parked on the channel and not being probed? Waiters at the
 * head whose clients hung up leave first (and those that sent a FIN are
 * probed): with a store that answers later they may not have been woken
 * yet, and must not hold back the newcomer. */
static int others_waiting(http_ctx_t *ctx, const char *channel, size_t len)
{
    waitq_t *q = ctx->waiters.count ? strmap_get(&ctx->waiters.queues, channel, len) : NULL;
    waiter_t *w;
    if (!q || q->busy || q->serving)
        return q != NULL;
    q->serving = 1; /* kept while its waiters leave */
    while ((w = waiters_head(q)) != NULL && !client_reads(ctx, w, H2O_STRUCT_FROM_MEMBER(route_args_t, wait, w)))
        ;
    q->serving = 0;
    waiters_tidy(&ctx->waiters, q);
    return waiters_any(&ctx->waiters, channel, len);
}

void acquire_release_channel(http_ctx_t *ctx, const char *channel, size_t len)
{
    waiter_t *w;
    while ((w = waiters_take(&ctx->waiters, channel, len)) != NULL)
        answer(H2O_STRUCT_FROM_MEMBER(route_args_t, wait, w), NULL);
}

static int parse_acquire(const jval_t *body, int64_t *max, int64_t *ttl, int64_t *wait, reqerr_t *e)
{
    *max = 1;
    *ttl = HTTP_DEFAULT_LOCK_NS;
    *wait = 0;
    if (!body)
        return 0;
    const jval_t *f[FACQ_N];
    if (reqjson_fields(body, &req_acquire_body, f, e) < 0 ||
        reqjson_int_of(f[FACQ_MAX], "max", 1, ACQUIRE_MAX, max, e) < 0 ||
        reqjson_duration_of(f[FACQ_TTL], "ttl", 1, ttl, e) < 0 ||
        reqjson_duration_of(f[FACQ_WAIT], "wait", 0, wait, e) < 0)
        return -1;
    if (*wait > ACQUIRE_MAX_WAIT_NS) {
        reqerr_set(e, 400, "field \"wait\" must be at most 60s");
        return -1;
    }
    return 0;
}

static void park(route_args_t *a)
{
    http_ctx_t *ctx = a->ctx;
    if (ctx->waiters.count >= ctx->limits->max_waiters) {
        http_error_full(a, "parked acquire requests", ctx->limits->max_waiters);
        return;
    }
    route_args_guard(a);
    a->parked = 1;
    ntime_t now = ctx->store->ops->now(ctx->store);
    waiters_park(&ctx->waiters, &a->wait, a->channel, a->channel_len, now + a->wait_ns);
}

static void acquired(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK)
        http_store_error(a, res, NULL);
    else if (res->n_events > 0 || a->wait_ns == 0)
        answer(a, res);
    else
        park(a);
}

static int acquire(route_args_t *a, const jval_t *body, reqerr_t *e)
{
    int64_t max, ttl;
    if (parse_acquire(body, &max, &ttl, &a->wait_ns, e) != 0)
        return -1;
    a->wait.max = (size_t)max;
    a->wait.ttl_ns = ttl;
    if (others_waiting(a->ctx, a->channel, a->channel_len)) {
        /* Earlier waiters go first. */
        if (a->wait_ns == 0)
            answer(a, NULL);
        else
            park(a);
        return 0;
    }
    store_t *st = http_call(a, acquired);
    st->ops->acquire(st, route_chan(a), (size_t)max, ttl, http_then, a);
    return 0;
}

void handle_acquire(route_args_t *a)
{
    handler_body(a, 1, acquire);
}
