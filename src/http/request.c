/*
 * request.c -- a request's state (route_args_t), its calls into the
 * store, and a handler's opening (see handlers.h).
 */
#include <stdlib.h>
#include <string.h>
#include "base/util.h"
#include "handlers.h"
#include "reqjson.h"
#include "respond.h"

/* h2o frees the request: nothing may answer into it any more. */
static void on_request_freed(void *slot)
{
    route_args_t *a = *(route_args_t **)slot;
    a->req = NULL;
    a->held = NULL; /* its socket goes with it */
    waiters_leave(&a->ctx->waiters, &a->wait);
    if (a->on_heap && !a->in_store)
        free(a);
}

route_args_t *route_args_new(http_ctx_t *ctx, h2o_req_t *req, ntime_t started)
{
    /* Not a memset of the whole struct (two name buffers, ~460 bytes):
     * the buffers are read only up to their lengths. */
    int on_heap = ctx->store->answers_later;
    route_args_t *a = on_heap ? xmalloc(sizeof(*a)) : h2o_mem_alloc_pool(&req->pool, sizeof(*a));
    a->req = req;
    a->ctx = ctx;
    a->route = -1;
    a->parked = a->in_store = a->guarded = 0;
    a->on_heap = (uint8_t)on_heap;
    a->started = started;
    a->channel_len = a->param_len = 0; /* the router sets the rest of the names */
    a->param_raw = h2o_iovec_init(NULL, 0);
    a->wait.q = NULL;
    a->held = NULL;
    if (on_heap)
        route_args_guard(a);
    return a;
}

void route_args_guard(route_args_t *a)
{
    if (a->guarded)
        return;
    route_args_t **slot = h2o_mem_alloc_shared(&a->req->pool, sizeof(*slot), on_request_freed);
    *slot = a;
    a->guarded = 1;
}

store_t *http_call(route_args_t *a, then_fn then)
{
    a->then = then;
    a->in_store = 1;
    a->ctx->in_store++;
    /* A store that answers later answers in a later loop turn. A parked
     * acquire's connection is watched by its queue (h_acquire.c). */
    if (a->on_heap && !a->parked)
        http_hold(a);
    return a->ctx->store;
}

void http_then(void *arg, const store_res_t *res)
{
    route_args_t *a = arg;
    a->in_store = 0;
    a->ctx->in_store--;
    if (!a->req) { /* the client left while the store worked */
        if (a->on_heap)
            free(a);
        return;
    }
    int quiet = http_unhold(a);
    if (a->on_heap && !a->parked && !quiet && http_client_reset(a->req)) {
        /* Reset while the store worked, or shut at shutdown: render
         * nothing (a listing can be megabytes); the empty answer lets h2o
         * drop the connection. (A parked acquire goes on: its queue
         * waits for the answer.) A connection held in epoll all along
         * that showed nothing needs no look: the poll would be a system
         * call per answer for nothing. */
        http_respond_gone(a);
        return;
    }
    a->then(a, res);
}

void handler_body(route_args_t *a, int empty_ok, body_fn fn)
{
    reqerr_t e;
    jdoc_t doc;
    h2o_req_t *req = a->req;
    if (reqjson_parse(req->entity.base, req->entity.len, empty_ok, a->ctx->limits->max_body, &doc, &e) != 0 ||
        fn(a, doc.root, &e) != 0)
        http_error(a, e.status, "%s", e.msg);
    jparse_free(&doc);
}
