/*
 * h_misc.c -- server-wide routes: channel statistics, the channel list,
 * health, readiness and Prometheus metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include "base/prom.h"
#include "base/version.h"
#include "handlers.h"
#include "render.h"
#include "respond.h"
#include "router.h"

/* ---- statistics ---- */

static void got_stats(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK) {
        http_store_error(a, res, NULL);
        return;
    }
    render_stats(&a->ctx->out, &res->stats[0], a->ctx->store->ops->now(a->ctx->store));
    http_respond(a, 200, &a->ctx->out, res->durable_seq);
}

void handle_channel_stats(route_args_t *a)
{
    store_t *st = http_call(a, got_stats);
    st->ops->stats(st, route_chan(a), http_then, a);
}

static void got_channels(route_args_t *a, const store_res_t *res)
{
    if (res->status != STORE_OK) {
        http_store_error(a, res, NULL);
        return;
    }
    jsonw_t *w = &a->ctx->out;
    ntime_t now = a->ctx->store->ops->now(a->ctx->store);
    jsonw_obj_begin(w);
    jsonw_key(w, "channels");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < res->n_stats; i++)
        render_stats(w, &res->stats[i], now);
    jsonw_arr_end(w);
    jsonw_obj_end(w);
    http_respond(a, 200, w, res->durable_seq);
}

void handle_channels(route_args_t *a)
{
    store_t *st = http_call(a, got_channels);
    st->ops->channels(st, http_then, a);
}

static void status_ok(route_args_t *a, int ok)
{
    jsonw_t *w = &a->ctx->out;
    jsonw_obj_begin(w);
    jsonw_key(w, "status");
    jsonw_cstr(w, ok ? "ok" : "unavailable");
    jsonw_obj_end(w);
    http_respond(a, ok ? 200 : 503, w, 0);
}

void handle_healthz(route_args_t *a)
{
    status_ok(a, 1);
}

void handle_readyz(route_args_t *a)
{
    store_t *st = a->ctx->store;
    status_ok(a, a->ctx->ready && st->ops->ready(st));
}

/* ---- metrics ---- */

#define ROUTES_MAX 32
static const int statuses[] = {200, 201, 202, 400, 401, 404, 405, 409, 410, 413, 429, 500, 503};
#define NSTATUS (int)(sizeof(statuses) / sizeof(statuses[0]))
static const int64_t latency_bounds[] = {100000, 250000, 500000, 1000000, 2500000,
                                         5000000, 10000000, 25000000, 100000000, 1000000000};

static struct {
    uint64_t requests[ROUTES_MAX + 1][NSTATUS + 1]; /* [route + 1][status index] */
    hist_t latency;
} m = {.latency = {.bounds_ns = latency_bounds, .n_bounds = sizeof(latency_bounds) / sizeof(latency_bounds[0])}};

void metrics_observe(int route, int status, ntime_t started_at, ntime_t now)
{
    int r = route + 1;
    if (r < 0 || r > ROUTES_MAX)
        r = 0;
    int si = NSTATUS;
    for (int i = 0; i < NSTATUS; i++)
        if (statuses[i] == status)
            si = i;
    m.requests[r][si]++;
    if (started_at == 0)
        return;
    hist_observe(&m.latency, now - started_at);
}

static void write_requests(prom_text_t *out)
{
    prom_head(out, "distribuerad_http_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (int r = 0; r <= ROUTES_MAX && r <= router_route_count(); r++) {
        for (int si = 0; si <= NSTATUS; si++) {
            if (!m.requests[r][si])
                continue;
            char labels[128];
            char status[8];
            snprintf(status, sizeof(status), "%d", si < NSTATUS ? statuses[si] : 0);
            snprintf(labels, sizeof(labels), "{route=\"%s\",status=\"%s\"}",
                     r == 0 ? "other" : router_route_label(r - 1), si < NSTATUS ? status : "other");
            prom_value(out, "distribuerad_http_requests_total", labels, (double)m.requests[r][si]);
        }
    }
    prom_hist(out, "distribuerad_http_request_duration_seconds",
              "Time from a request's arrival to its answer, parked requests excluded.", &m.latency);
}

static void write_build(prom_text_t *out)
{
    prom_head(out, "distribuerad_build_info", "gauge", "Always 1; the version label is the server's version.");
    prom_value(out, "distribuerad_build_info", "{version=\"" DISTRIBUERAD_VERSION "\"}", 1);
}

void handle_metrics(route_args_t *a)
{
    prom_text_t out = {NULL, 0, 0};
    write_build(&out);
    write_requests(&out);
    store_t *st = a->ctx->store;
    st->ops->metrics(st, &out);
    http_respond_bytes(a, 200, "text/plain; version=0.0.4; charset=utf-8", out.buf ? out.buf : "", out.len, 1);
    free(out.buf);
}
