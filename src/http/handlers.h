/*
 * handlers.h -- one short function per route: parse the request, call the
 * core, map the result to a status and JSON. See router.c for the table.
 */
#ifndef HTTP_HANDLERS_H
#define HTTP_HANDLERS_H

#include "server.h"

#define HTTP_NAME_MAX 200 /* bytes of a channel or job name, decoded */

typedef struct route_args {
    http_ctx_t *ctx;
    int route;                        /* row of the route table, for metrics */
    h2o_iovec_t channel_raw;          /* first path segment as sent */
    char channel[HTTP_NAME_MAX + 1];  /* decoded, NUL-terminated */
    size_t channel_len;
    h2o_iovec_t param_raw;            /* {id} or {name} as sent */
    char param[HTTP_NAME_MAX + 1];    /* decoded {name}, NUL-terminated */
    size_t param_len;
} route_args_t;

/* The request's channel, created on first use. NULL (after answering 429)
 * if it does not exist and the channel limit is reached. */
channel_t *route_channel(h2o_req_t *req, route_args_t *a);

/* Answers 429 and returns 1 if adding n events to ch would pass a limit. */
int events_full(h2o_req_t *req, route_args_t *a, channel_t *ch, size_t n);

typedef void (*handler_fn)(h2o_req_t *req, route_args_t *a);

void handle_channels(h2o_req_t *req, route_args_t *a);
void handle_healthz(h2o_req_t *req, route_args_t *a);
void handle_readyz(h2o_req_t *req, route_args_t *a);
void handle_metrics(h2o_req_t *req, route_args_t *a);
void handle_channel_stats(h2o_req_t *req, route_args_t *a);
void handle_events_list(h2o_req_t *req, route_args_t *a);
void handle_publish(h2o_req_t *req, route_args_t *a);
void handle_event_get(h2o_req_t *req, route_args_t *a);
void handle_event_update(h2o_req_t *req, route_args_t *a);
void handle_event_delete(h2o_req_t *req, route_args_t *a);
void handle_jobs_list(h2o_req_t *req, route_args_t *a);
void handle_job_add(h2o_req_t *req, route_args_t *a);
void handle_job_get(h2o_req_t *req, route_args_t *a);
void handle_job_delete(h2o_req_t *req, route_args_t *a);
void handle_acquire(h2o_req_t *req, route_args_t *a);
void handle_openapi(h2o_req_t *req, route_args_t *a);
void handle_ui(h2o_req_t *req, route_args_t *a);
void handle_ui_asset(h2o_req_t *req, route_args_t *a);

/* Is req a GET of /openapi.json, /ui or /ui/assets/...? Those hold no data
 * and need no token (h_static.c). */
int static_open_path(h2o_req_t *req);

/* Serves parked acquirers of every channel that gained available events.
 * Called by the loop after each turn and after each request. */
void acquire_serve_waiters(http_ctx_t *ctx);

/* A parked acquirer's wait ended (its tnode fired): answer count 0. */
void acquire_on_timeout(http_ctx_t *ctx, tnode_t *node, ntime_t now);

/* Answers every parked acquirer with what it can get now (shutdown). */
void acquire_release_all(http_ctx_t *ctx);

/* Metrics: counts a finished request for /metrics. */
void metrics_observe(int route, int status, ntime_t started_at, ntime_t now);

#endif
