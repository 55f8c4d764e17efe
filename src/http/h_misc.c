/*
 * h_misc.c -- server-wide routes: channel statistics, the channel list,
 * health, readiness and Prometheus metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include "handlers.h"
#include "render.h"
#include "router.h"

/* ---- statistics ---- */

void handle_channel_stats(h2o_req_t *req, route_args_t *a)
{
    core_tick(a->ctx->core, http_now());
    channel_t *ch = core_channel(a->ctx->core, a->channel, a->channel_len);
    render_stats(&a->ctx->out, ch);
    http_respond(req, 200, &a->ctx->out);
}

void handle_channels(h2o_req_t *req, route_args_t *a)
{
    core_tick(a->ctx->core, http_now());
    channel_t **chans;
    size_t n = core_channels_sorted(a->ctx->core, &chans);
    jsonw_t *w = &a->ctx->out;
    jsonw_obj_begin(w);
    jsonw_key(w, "channels");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < n; i++)
        render_stats(w, chans[i]);
    jsonw_arr_end(w);
    jsonw_obj_end(w);
    free(chans);
    http_respond(req, 200, w);
}

static void status_ok(h2o_req_t *req, route_args_t *a, int ok)
{
    jsonw_t *w = &a->ctx->out;
    jsonw_obj_begin(w);
    jsonw_key(w, "status");
    jsonw_cstr(w, ok ? "ok" : "unavailable");
    jsonw_obj_end(w);
    http_respond(req, ok ? 200 : 503, w);
}

void handle_healthz(h2o_req_t *req, route_args_t *a)
{
    status_ok(req, a, 1);
}

void handle_readyz(h2o_req_t *req, route_args_t *a)
{
    status_ok(req, a, a->ctx->ready && !(a->ctx->wal && wal_failing(a->ctx->wal)));
}

/* ---- metrics ---- */

#define ROUTES_MAX 32
static const int statuses[] = {200, 201, 202, 400, 401, 404, 405, 409, 410, 413, 429, 500, 503};
#define NSTATUS (int)(sizeof(statuses) / sizeof(statuses[0]))
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1};
#define NBUCKETS (int)(sizeof(buckets) / sizeof(buckets[0]))

static struct {
    uint64_t requests[ROUTES_MAX + 1][NSTATUS + 1]; /* [route + 1][status index] */
    uint64_t latency[NBUCKETS + 1];                 /* non-cumulative; last is +Inf */
    uint64_t latency_count;
    double latency_sum;
} m;

void metrics_observe(int route, int status, ntime_t started_at, ntime_t now)
{
    int r = route + 1;
    if (r < 0 || r > ROUTES_MAX)
        r = 0;
    if (route == -2) /* a parked acquire answered later */
        r = 0;
    int si = NSTATUS;
    for (int i = 0; i < NSTATUS; i++)
        if (statuses[i] == status)
            si = i;
    m.requests[r][si]++;
    if (started_at == 0)
        return;
    double secs = (double)(now - started_at) / 1e9;
    int b = 0;
    while (b < NBUCKETS && secs > buckets[b])
        b++;
    m.latency[b]++;
    m.latency_count++;
    m.latency_sum += secs;
}

static void metric_head(jsonw_t *w, const char *name, const char *type, const char *help)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    jsonw_raw(w, line, (size_t)n);
}

static void metric_value(jsonw_t *w, const char *name, const char *labels, double v)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%s%s %.17g\n", name, labels, v);
    jsonw_raw(w, line, (size_t)n);
}

static void write_requests(jsonw_t *w)
{
    metric_head(w, "distribuerad_http_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (int r = 0; r <= ROUTES_MAX && r <= router_route_count(); r++) {
        for (int si = 0; si <= NSTATUS; si++) {
            if (!m.requests[r][si])
                continue;
            char labels[128];
            char status[8];
            snprintf(status, sizeof(status), "%d", si < NSTATUS ? statuses[si] : 0);
            snprintf(labels, sizeof(labels), "{route=\"%s\",status=\"%s\"}",
                     r == 0 ? "other" : router_route_label(r - 1), si < NSTATUS ? status : "other");
            metric_value(w, "distribuerad_http_requests_total", labels, (double)m.requests[r][si]);
        }
    }
    metric_head(w, "distribuerad_http_request_duration_seconds", "histogram",
                "Time from a request's arrival to its answer, parked requests excluded.");
    uint64_t cum = 0;
    for (int b = 0; b <= NBUCKETS; b++) {
        cum += m.latency[b];
        char labels[64];
        if (b < NBUCKETS)
            snprintf(labels, sizeof(labels), "{le=\"%g\"}", buckets[b]);
        else
            snprintf(labels, sizeof(labels), "{le=\"+Inf\"}");
        metric_value(w, "distribuerad_http_request_duration_seconds_bucket", labels, (double)cum);
    }
    metric_value(w, "distribuerad_http_request_duration_seconds_sum", "", m.latency_sum);
    metric_value(w, "distribuerad_http_request_duration_seconds_count", "", (double)m.latency_count);
}

static void write_core(jsonw_t *w, core_t *c)
{
    channel_t **chans;
    size_t n = core_channels_sorted(c, &chans);
    uint64_t ready = 0, scheduled = 0, locked = 0, jobs = 0;
    for (size_t i = 0; i < n; i++) {
        ready += chans[i]->st.ready;
        scheduled += chans[i]->st.scheduled;
        locked += chans[i]->st.locked;
        jobs += chans[i]->st.jobs;
    }
    free(chans);
    const core_counters_t *k = core_counters(c);
    metric_head(w, "distribuerad_events", "gauge", "Live events by state.");
    metric_value(w, "distribuerad_events", "{state=\"ready\"}", (double)ready);
    metric_value(w, "distribuerad_events", "{state=\"scheduled\"}", (double)scheduled);
    metric_value(w, "distribuerad_events", "{state=\"locked\"}", (double)locked);
    metric_head(w, "distribuerad_channels", "gauge", "Channels that exist.");
    metric_value(w, "distribuerad_channels", "", (double)n);
    metric_head(w, "distribuerad_jobs", "gauge", "Recurring jobs.");
    metric_value(w, "distribuerad_jobs", "", (double)jobs);
    struct { const char *name, *help; uint64_t v; } cs[] = {
        {"distribuerad_events_published_total", "Events that became visible.", k->published},
        {"distribuerad_events_deleted_total", "Events deleted (acknowledged or cancelled).", k->deleted},
        {"distribuerad_events_expired_total", "Visible events whose ttl ran out.", k->expired},
        {"distribuerad_lock_expiries_total", "Locks that ran out before unlock or delete.", k->lock_expired},
        {"distribuerad_job_fires_total", "Events published by recurring jobs.", k->job_fires},
    };
    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
        metric_head(w, cs[i].name, "counter", cs[i].help);
        metric_value(w, cs[i].name, "", (double)cs[i].v);
    }
}

void handle_metrics(h2o_req_t *req, route_args_t *a)
{
    core_tick(a->ctx->core, http_now());
    jsonw_t *w = &a->ctx->out;
    write_requests(w);
    write_core(w, a->ctx->core);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    req->res.content_length = w->len;
    h2o_send_inline(req, w->buf, w->len);
    jsonw_reset(w);
}
