/*
 * hist.h -- a histogram of durations in fixed buckets, for /metrics.
 *
 * The one histogram type of the server: request latency (http/), job
 * lateness (core/) and fsync time (store/) each keep one. Buckets are
 * given by their upper bounds in ns, ascending; a value lands in the
 * first bucket whose bound is >= it, or in the last, unbounded one.
 * Counts are per bucket (not cumulative); prom.h writes them the way
 * Prometheus wants. Not thread-safe: the fsync thread guards its own.
 */
#ifndef HIST_H
#define HIST_H

#include <stdint.h>

#define HIST_MAX_BOUNDS 12

typedef struct hist {
    const int64_t *bounds_ns; /* n_bounds upper bounds, ascending (static) */
    unsigned n_bounds;
    uint64_t counts[HIST_MAX_BOUNDS + 1]; /* the last: past every bound */
    uint64_t count;
    double sum_s;             /* of every value, in seconds */
} hist_t;

/* An empty histogram over bounds_ns[0..n) (n <= HIST_MAX_BOUNDS), which
 * it borrows: give it static storage. */
void hist_init(hist_t *h, const int64_t *bounds_ns, unsigned n);

/* Counts one value of ns nanoseconds. */
void hist_observe(hist_t *h, int64_t ns);

#endif
