/*
 * handlers.h -- one short function per route: parse the request, call the
 * store, map the result to a status and JSON. See router.c for the table.
 *
 * Each request has one route_args_t, its state from arrival to answer:
 * which route it took, when it arrived, its decoded names, and what a
 * handler needs once the store answers. A handler calls one store
 * operation with http_call() and http_then as its completion; the
 * continuation it named runs with the result, at once (the memory store)
 * or later (a store that answers later, or a parked acquire), and sends
 * the answer through respond.h. Nothing is kept in globals.
 */
#ifndef HTTP_HANDLERS_H
#define HTTP_HANDLERS_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include "json/jparse.h"
#include "json/jsonw.h"
#include "reqjson.h"
#include "server.h"
#include "waiters.h"

#define HTTP_NAME_MAX 200 /* bytes of a channel or job name, decoded */
#define HTTP_DEFAULT_TTL_NS (10LL * 60 * NTIME_NS_PER_S)  /* an event's or job event's ttl */
#define HTTP_DEFAULT_LOCK_NS (60LL * NTIME_NS_PER_S)      /* a lock's or acquire's */
#define HTTP_DEFAULT_MISSED_WINDOW_NS (3600LL * NTIME_NS_PER_S) /* a job's missedWindow */

/* What every handler shares: one per server. */
typedef struct http_ctx {
    http_server_t *server;
    store_t *store;
    const http_limits_t *limits;
    int ready;                /* /readyz: recovered and listening */
    jsonw_t out;              /* response writer, reused by every request */
    waiters_t waiters;        /* parked acquires */
    size_t in_store;          /* store operations out (answering later) */
    uint8_t store_gone;       /* shut down: the store may be freed, no call
                                 reaches it */
} http_ctx_t;

typedef struct route_args route_args_t;
typedef void (*then_fn)(route_args_t *a, const store_res_t *res);

/* A request's state. In the request's pool, or (with a store that
 * answers later) malloc'd and freed once both h2o and the store are done
 * with it. */
struct route_args {
    h2o_req_t *req;                   /* NULL once h2o has freed the request */
    http_ctx_t *ctx;
    int route;                        /* row of the route table, -1: none */
    uint8_t parked;                   /* waited in a long-poll (kept out of latency) */
    uint8_t in_store;                 /* a store operation for it is running */
    uint8_t on_heap;                  /* malloc'd (see above) */
    uint8_t guarded;                  /* h2o tells us when it frees the request */
    h2o_socket_t *held;               /* its connection, kept polled while the
                                         answer waits (respond.h, http_hold) */
    ntime_t started;                  /* arrival, store clock */
    h2o_iovec_t channel_raw;          /* first path segment as sent */
    char channel[HTTP_NAME_MAX + 1];  /* decoded, NUL-terminated */
    size_t channel_len;
    h2o_iovec_t param_raw;            /* {id} or {name} as sent */
    char param[HTTP_NAME_MAX + 1];    /* decoded {name}, NUL-terminated */
    size_t param_len;
    then_fn then;                     /* runs with the store's result */
    int action;                       /* PUT /events/{id}: LOCK, UNLOCK, EXTEND */
    int has_token;                    /* the request named a lease token */
    int64_t wait_ns;                  /* acquire: how long it may park */
    waiter_t wait;                    /* acquire: its place while parked */
};

/* The request's state, for a request that just arrived at started. */
route_args_t *route_args_new(http_ctx_t *ctx, h2o_req_t *req, ntime_t started);

/* Asks h2o to tell a when it frees the request (a parked request, or a
 * store that answers later), so nothing answers into freed memory. */
void route_args_guard(route_args_t *a);

/* Readies a for one store operation whose completion is http_then(a):
 * then runs with the result, unless the client has gone. Returns the
 * store to call. */
store_t *http_call(route_args_t *a, then_fn then);
void http_then(void *arg, const store_res_t *res);

/* The request's channel, for the store. */
static inline store_chan_t route_chan(const route_args_t *a)
{
    store_chan_t c = {a->channel, a->channel_len};
    return c;
}

/* The part of a handler that reads a body: root is the parsed body (NULL
 * for an empty one, where the route allows it). It calls the store or
 * answers and returns 0, or returns -1 with e set, for the opening to
 * answer. root and what points into it live until fn returns: the store
 * copies what it keeps. */
typedef int (*body_fn)(route_args_t *a, const jval_t *root, reqerr_t *e);

/* A handler's opening for a route with a body: parses the request's body
 * (400 for bad JSON or an empty body unless empty_ok, 413 past the body
 * limit), runs fn on it, answers fn's error, and frees the document. */
void handler_body(route_args_t *a, int empty_ok, body_fn fn);

typedef void (*handler_fn)(route_args_t *a);

void handle_channels(route_args_t *a);
void handle_healthz(route_args_t *a);
void handle_readyz(route_args_t *a);
void handle_metrics(route_args_t *a);
void handle_channel_stats(route_args_t *a);
void handle_events_list(route_args_t *a);
void handle_publish(route_args_t *a);
void handle_event_get(route_args_t *a);
void handle_event_update(route_args_t *a);
void handle_event_delete(route_args_t *a);
void handle_jobs_list(route_args_t *a);
void handle_job_add(route_args_t *a);
void handle_job_get(route_args_t *a);
void handle_job_delete(route_args_t *a);
void handle_job_put(route_args_t *a);
void handle_job_pause(route_args_t *a);
void handle_job_resume(route_args_t *a);
void handle_job_trigger(route_args_t *a);
void handle_acquire(route_args_t *a);
void handle_settings_get(route_args_t *a);
void handle_settings_put(route_args_t *a);
void handle_redrive(route_args_t *a);
void handle_purge(route_args_t *a);
void handle_channel_delete(route_args_t *a);
void handle_openapi(route_args_t *a);
void handle_ui(route_args_t *a);
void handle_ui_asset(route_args_t *a);

/* Is req a GET of /openapi.json, /ui or /ui/assets/...? Those hold no data
 * and need no token (h_static.c). */
int static_open_path(h2o_req_t *req);

/* h_events.c: answers status with the event ev (a publish's, a job
 * trigger's) and a Location header naming it. */
void answer_event_at(route_args_t *a, int status, const store_event_t *ev, uint64_t durable_seq);

/* h_acquire.c: the store's "became available" (store_set_avail_fn). */
void acquire_avail(void *ctx, const char *channel, size_t len);

/* Retries the parked acquirers of every channel that gained events;
 * after each request and loop turn. */
void acquire_serve_waiters(http_ctx_t *ctx);

/* Answers those whose wait ended by now with count 0. */
void acquire_expire(http_ctx_t *ctx, ntime_t now);

/* Takes the due looks of the probes of half-closed-or-closed clients
 * (probe.h): a client found reading is served again, one gone leaves. */
void acquire_probe_looks(http_ctx_t *ctx, ntime_t now);

/* Answers every parked acquirer with count 0 (shutdown). */
void acquire_release_all(http_ctx_t *ctx);

/* Answers the parked acquirers of one channel with count 0 (it was
 * deleted). */
void acquire_release_channel(http_ctx_t *ctx, const char *channel, size_t len);

/* h_misc.c: counts an answered request for /metrics. */
void metrics_observe(int route, int status, ntime_t started_at, ntime_t now);

#endif
