/*
 * chanmetrics.c -- the per-channel series of /metrics (see chanmetrics.h).
 */
#include "chanmetrics.h"

#include <stdio.h>
#include <string.h>

void chanmetrics_claim(uint8_t *own, size_t n, size_t max)
{
    size_t have = 0;
    for (size_t i = 0; i < n; i++)
        have += own[i] != 0;
    for (size_t i = 0; i < n && have < max; i++)
        if (!own[i]) {
            own[i] = 1;
            have++;
        }
}

void chanmetrics_label(store_text_t *out, const char *key, const char *v, size_t len)
{
    prom_append(out, key, strlen(key));
    prom_append(out, "=\"", 2);
    for (size_t i = 0; i < len; i++) {
        const char *esc = v[i] == '\\' ? "\\\\" : v[i] == '"' ? "\\\"" : v[i] == '\n' ? "\\n" : NULL;
        if (esc)
            prom_append(out, esc, 2);
        else
            prom_append(out, v + i, 1);
    }
    prom_append(out, "\"", 1);
}

/* name{channel="...",state="..."} v; state NULL: no state label. */
static void sample(store_text_t *out, const char *name, const store_stats_t *v, const char *state, double x)
{
    char num[48];
    prom_append(out, name, strlen(name));
    chanmetrics_label(out, "{channel", v->channel, v->channel_len);
    if (state)
        chanmetrics_label(out, ",state", state, strlen(state));
    int n = snprintf(num, sizeof(num), "} %.17g\n", x);
    prom_append(out, num, (size_t)n);
}

static double age_s(const store_stats_t *v, ntime_t now)
{
    if (!v->oldest_ready_at || now <= v->oldest_ready_at)
        return 0;
    return (double)(now - v->oldest_ready_at) / 1e9;
}

static const char *const states[3] = {"ready", "scheduled", "locked"};

static void render_events(store_text_t *out, const store_stats_t *v, const uint8_t *own, size_t n)
{
    double over[3] = {0, 0, 0};
    prom_head(out, "distribuerad_channel_events", "gauge", "Live events of the channel by state.");
    for (size_t i = 0; i < n; i++) {
        double x[3] = {(double)v[i].ready, (double)v[i].scheduled, (double)v[i].locked};
        for (int k = 0; k < 3; k++) {
            if (own[i])
                sample(out, "distribuerad_channel_events", &v[i], states[k], x[k]);
            else
                over[k] += x[k];
        }
    }
    prom_head(out, "distribuerad_channel_events_overflow", "gauge",
              "Live events by state of the channels past -metrics-max-channels.");
    for (int k = 0; k < 3; k++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "{state=\"%s\"}", states[k]);
        prom_value(out, "distribuerad_channel_events_overflow", labels, over[k]);
    }
}

static void render_age(store_text_t *out, const store_stats_t *v, const uint8_t *own, size_t n, ntime_t now)
{
    double over = 0;
    prom_head(out, "distribuerad_channel_oldest_ready_age_seconds", "gauge",
              "Seconds since the channel's oldest ready event became visible; 0 when none.");
    for (size_t i = 0; i < n; i++) {
        double a = age_s(&v[i], now);
        if (own[i])
            sample(out, "distribuerad_channel_oldest_ready_age_seconds", &v[i], NULL, a);
        else if (a > over)
            over = a;
    }
    prom_head(out, "distribuerad_channel_oldest_ready_age_seconds_overflow", "gauge",
              "The largest oldest ready age of the channels past -metrics-max-channels.");
    prom_value(out, "distribuerad_channel_oldest_ready_age_seconds_overflow", "", over);
}

/* The four counters: name, the overflow's name, help, and the field. */
static const struct counter {
    const char *name, *over, *help;
    size_t off;
} counters[] = {
    {"distribuerad_channel_published_total", "distribuerad_channel_published_overflow_total",
     "Events that became visible in the channel.", offsetof(store_stats_t, published)},
    {"distribuerad_channel_deleted_total", "distribuerad_channel_deleted_overflow_total",
     "Events of the channel deleted (acknowledged, cancelled or purged).", offsetof(store_stats_t, deleted)},
    {"distribuerad_channel_expired_total", "distribuerad_channel_expired_overflow_total",
     "Events of the channel whose ttl ran out.", offsetof(store_stats_t, expired)},
    {"distribuerad_channel_dead_lettered_total", "distribuerad_channel_dead_lettered_overflow_total",
     "Events of the channel that reached maxDeliveries.", offsetof(store_stats_t, dead_lettered)},
};

static void render_counter(store_text_t *out, const struct counter *c, const store_stats_t *v,
                           const uint8_t *own, size_t n)
{
    double over = 0;
    char help[160];
    prom_head(out, c->name, "counter", c->help);
    for (size_t i = 0; i < n; i++) {
        uint64_t x;
        memcpy(&x, (const char *)&v[i] + c->off, sizeof(x));
        if (own[i])
            sample(out, c->name, &v[i], NULL, (double)x);
        else
            over += (double)x;
    }
    snprintf(help, sizeof(help), "%s Summed over the channels past -metrics-max-channels.", c->help);
    prom_head(out, c->over, "counter", help);
    prom_value(out, c->over, "", over);
}

void chanmetrics_render(store_text_t *out, const store_stats_t *v, const uint8_t *own, size_t n,
                        ntime_t now)
{
    render_events(out, v, own, n);
    render_age(out, v, own, n, now);
    for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++)
        render_counter(out, &counters[k], v, own, n);
}

static void job_sample(store_text_t *out, const char *name, const chanmetrics_job_t *j, double v)
{
    char num[40];
    prom_append(out, name, strlen(name));
    chanmetrics_label(out, "{channel", j->channel, j->channel_len);
    chanmetrics_label(out, ",job", j->name, j->name_len);
    int n = snprintf(num, sizeof(num), "} %.17g\n", v);
    prom_append(out, num, (size_t)n);
}

void chanmetrics_render_jobs(store_text_t *out, const chanmetrics_job_t *j, size_t n)
{
    static const char *const names[3] = {"distribuerad_channel_job_fires_total",
                                         "distribuerad_channel_job_skips_total",
                                         "distribuerad_channel_job_lateness_seconds"};
    static const char *const helps[3] = {"Events the job published (schedule and trigger) since start.",
                                         "The job's fires skipped (overlap skip, or an event limit) since start.",
                                         "How long after its scheduled time the job's latest fire ran."};
    double over[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        prom_head(out, names[k], k < 2 ? "counter" : "gauge", helps[k]);
        for (size_t i = 0; i < n; i++) {
            double v = k == 0 ? (double)j[i].fires : k == 1 ? (double)j[i].skips : j[i].late_s;
            if (j[i].own)
                job_sample(out, names[k], &j[i], v);
            else
                over[k] = k < 2 ? over[k] + v : (v > over[k] ? v : over[k]);
        }
    }
    prom_head(out, "distribuerad_channel_job_fires_overflow_total", "counter",
              "Job events of channels past -metrics-max-channels.");
    prom_value(out, "distribuerad_channel_job_fires_overflow_total", "", over[0]);
    prom_head(out, "distribuerad_channel_job_skips_overflow_total", "counter",
              "Skipped job fires of channels past -metrics-max-channels.");
    prom_value(out, "distribuerad_channel_job_skips_overflow_total", "", over[1]);
    prom_head(out, "distribuerad_channel_job_lateness_seconds_overflow", "gauge",
              "The largest latest-fire lateness of jobs of channels past -metrics-max-channels.");
    prom_value(out, "distribuerad_channel_job_lateness_seconds_overflow", "", over[2]);
}
