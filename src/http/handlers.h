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
    channel_t *created;               /* made by this request, until it succeeds */
} route_args_t;

/* Channels: only a change that succeeds creates one (a publish, a job add);
 * reads, failed requests and acquires never do, so a mistyped name leaves
 * nothing behind and does not count against -max-channels. */

/* The request's channel, or NULL if it does not exist (nothing answered). */
channel_t *route_channel_find(route_args_t *a);

/* The request's channel for reading: the channel, or (if it does not exist)
 * *blank made into an empty stand-in with the request's name, to render as
 * an empty channel. The stand-in must never be passed to the core. */
const channel_t *route_channel_view(route_args_t *a, channel_t *blank);

/* The request's channel for a change that adds n events (0: none, a job):
 * created if absent, unless the channel limit or an event limit is
 * reached, when it answers 429 and returns NULL. If the change then fails,
 * the handler calls route_channel_undo. */
channel_t *route_channel_create(h2o_req_t *req, route_args_t *a, size_t n);

/* Drops the channel this request created, if any (its change failed). */
void route_channel_undo(route_args_t *a);

/* Answers 429 and returns 1 if adding n events to ch (NULL: a channel not
 * yet created) would pass a limit. */
int events_full(h2o_req_t *req, route_args_t *a, const channel_t *ch, size_t n);

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

/* A channel was just created: acquirers parked on its name while it did not
 * exist move onto it, in the order they came. */
void acquire_adopt_waiters(http_ctx_t *ctx, channel_t *ch);

/* The reverse, for a channel about to be dropped again. */
void acquire_orphan_waiters(http_ctx_t *ctx, channel_t *ch);

/* A parked acquirer's wait ended (its tnode fired): answer count 0. */
void acquire_on_timeout(http_ctx_t *ctx, tnode_t *node, ntime_t now);

/* Answers every parked acquirer with what it can get now (shutdown). */
void acquire_release_all(http_ctx_t *ctx);

/* Metrics: counts a finished request for /metrics. */
void metrics_observe(int route, int status, ntime_t started_at, ntime_t now);

#endif
