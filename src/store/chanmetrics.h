/*
 * chanmetrics.h -- the per-channel series of /metrics, one renderer for
 * every store.
 *
 * A store hands over a view (store_stats_t) of each channel, in name
 * order, and which of them have series of their own. Those get series
 * labelled `channel`; the others are summed into the _overflow series
 * without the label (the oldest ready age: their maximum). The names are
 * the ones docs/API.md lists. Which channels have series of their own is
 * the store's state: chanmetrics_claim keeps the channels that had them
 * and lets others join, in the order given, while there is room, so a
 * channel's counters never go backwards while it exists.
 *
 * Per job the same: a job of a channel with series of its own has series
 * labelled `channel` and `job` (fires, skips, the latest fire's
 * lateness); the others are summed (lateness: their maximum).
 */
#ifndef STORE_CHANMETRICS_H
#define STORE_CHANMETRICS_H

#include <stddef.h>
#include <stdint.h>
#include "store.h"

/* own[i] (0 or 1) for n channels: sets more of them to 1 while fewer
 * than max are set. */
void chanmetrics_claim(uint8_t *own, size_t n, size_t max);

/* Appends key="v" with \ " and newline escaped (key may start with
 * "{" or ","). */
void chanmetrics_label(store_text_t *out, const char *key, const char *v, size_t len);

/* The series of channels v[0..n), own[i] as claimed; now for the age of
 * the oldest ready event. */
void chanmetrics_render(store_text_t *out, const store_stats_t *v, const uint8_t *own, size_t n,
                        ntime_t now);

/* A job as its series show it. */
typedef struct chanmetrics_job {
    const char *channel, *name;
    size_t channel_len, name_len;
    uint8_t own;              /* its channel has series of its own */
    uint64_t fires;           /* events it published (fires and triggers) */
    uint64_t skips;           /* fires it skipped */
    double late_s;            /* how late its latest fire ran */
} chanmetrics_job_t;

/* The series of jobs j[0..n), by channel and then name. */
void chanmetrics_render_jobs(store_text_t *out, const chanmetrics_job_t *j, size_t n);

#endif
