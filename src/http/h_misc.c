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
    channel_t blank;
    render_stats(&a->ctx->out, route_channel_view(a, &blank));
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

static void write_histogram(jsonw_t *w, const char *name, const uint64_t *counts, int n,
                            const double *bounds_s, double sum);

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
    write_histogram(w, "distribuerad_http_request_duration_seconds", m.latency, NBUCKETS + 1, buckets,
                    m.latency_sum);
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
        {"distribuerad_job_fires_skipped_total", "Job fires skipped because an event limit was reached.", k->job_fires_skipped},
    };
    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
        metric_head(w, cs[i].name, "counter", cs[i].help);
        metric_value(w, cs[i].name, "", (double)cs[i].v);
    }
}

static void write_histogram(jsonw_t *w, const char *name, const uint64_t *counts, int n,
                            const double *bounds_s, double sum)
{
    char full[128], labels[64];
    uint64_t cum = 0;
    snprintf(full, sizeof(full), "%s_bucket", name);
    for (int b = 0; b < n; b++) {
        cum += counts[b];
        if (b < n - 1)
            snprintf(labels, sizeof(labels), "{le=\"%g\"}", bounds_s[b]);
        else
            snprintf(labels, sizeof(labels), "{le=\"+Inf\"}");
        metric_value(w, full, labels, (double)cum);
    }
    snprintf(full, sizeof(full), "%s_sum", name);
    metric_value(w, full, "", sum);
    snprintf(full, sizeof(full), "%s_count", name);
    metric_value(w, full, "", (double)cum);
}

static void write_lateness(jsonw_t *w, core_t *c)
{
    const core_counters_t *k = core_counters(c);
    double bounds[CORE_LATENESS_BUCKETS - 1];
    for (int i = 0; i < CORE_LATENESS_BUCKETS - 1; i++)
        bounds[i] = (double)core_lateness_bounds[i] / 1e9;
    metric_head(w, "distribuerad_job_lateness_seconds", "histogram",
                "How long after its scheduled time a job fire ran.");
    write_histogram(w, "distribuerad_job_lateness_seconds", k->lateness, CORE_LATENESS_BUCKETS, bounds,
                    k->lateness_sum);
}

static void write_wal(jsonw_t *w, wal_t *wal)
{
    wal_metrics_t m;
    wal_get_metrics(wal, &m);
    metric_head(w, "distribuerad_log_bytes_written_total", "counter", "Bytes appended to the log.");
    metric_value(w, "distribuerad_log_bytes_written_total", "", (double)m.bytes_written);
    metric_head(w, "distribuerad_log_size_bytes", "gauge", "Size of the log file.");
    metric_value(w, "distribuerad_log_size_bytes", "", (double)m.size);
    metric_head(w, "distribuerad_log_write_errors_total", "counter", "Log writes that failed (answered 503).");
    metric_value(w, "distribuerad_log_write_errors_total", "", (double)m.write_errors);
    metric_head(w, "distribuerad_log_rewrites_total", "counter", "Log rewrites done.");
    metric_value(w, "distribuerad_log_rewrites_total", "", (double)m.rewrites);
    metric_head(w, "distribuerad_log_fsync_errors_total", "counter", "fsync calls that failed.");
    metric_value(w, "distribuerad_log_fsync_errors_total", "", (double)m.fsync_errors);
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1};
    metric_head(w, "distribuerad_log_fsync_duration_seconds", "histogram", "Time one fsync of the log took.");
    write_histogram(w, "distribuerad_log_fsync_duration_seconds", m.fsync_buckets, 8, bounds, m.fsync_seconds_sum);
}

void handle_metrics(h2o_req_t *req, route_args_t *a)
{
    core_tick(a->ctx->core, http_now());
    jsonw_t *w = &a->ctx->out;
    write_requests(w);
    write_core(w, a->ctx->core);
    write_lateness(w, a->ctx->core);
    if (a->ctx->wal)
        write_wal(w, a->ctx->wal);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    req->res.content_length = w->len;
    h2o_send_inline(req, w->buf, w->len);
    jsonw_reset(w);
}
