/*
 * hist.h -- a latency histogram with logarithmic buckets (HDR-like), and the
 * small helpers the benchmark clients share.
 *
 * Buckets: values below 64 ns each have their own bucket; above, every
 * power of two is split into 32 equal sub-buckets, so a reported value is
 * within 1/32 (3%) of the true one. Values are nanoseconds; 1184 buckets
 * cover up to 2^41 ns (about 36 minutes). Recording is a few instructions,
 * so the client's own cost does not bend what it measures.
 * Percentiles report the upper edge of the bucket they fall in (never
 * better than the truth); max is exact.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1 << HIST_SUB_BITS)         /* sub-buckets per octave */
#define HIST_LINEAR (2 * HIST_SUB)            /* values below this: exact */
#define HIST_MAX_EXP 41
#define HIST_BUCKETS (HIST_LINEAR + (HIST_MAX_EXP - HIST_SUB_BITS - 1) * HIST_SUB)

typedef struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t sum;
    uint64_t b[HIST_BUCKETS];
} hist_t;

static inline void hist_reset(hist_t *h) { memset(h, 0, sizeof(*h)); }

static inline int hist_index(uint64_t v)
{
    if (v < HIST_LINEAR)
        return (int)v;
    int e = 63 - __builtin_clzll(v); /* v in [2^e, 2^(e+1)), e >= SUB_BITS + 1 */
    if (e >= HIST_MAX_EXP)
        return HIST_BUCKETS - 1;
    int sub = (int)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
    return HIST_LINEAR + (e - HIST_SUB_BITS - 1) * HIST_SUB + sub;
}

/* The largest value that falls in bucket i. */
static inline uint64_t hist_upper(int i)
{
    if (i < HIST_LINEAR)
        return (uint64_t)i;
    int e = (i - HIST_LINEAR) / HIST_SUB + HIST_SUB_BITS + 1;
    int sub = (i - HIST_LINEAR) % HIST_SUB;
    uint64_t lo = (1ULL << e) + ((uint64_t)sub << (e - HIST_SUB_BITS));
    return lo + (1ULL << (e - HIST_SUB_BITS)) - 1;
}

static inline void hist_add(hist_t *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

/* The value at quantile q (0..1), 0 when empty. */
static inline uint64_t hist_quantile(const hist_t *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->count + 0.999999);
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t u = hist_upper(i);
            return u < h->max ? u : h->max;
        }
    }
    return h->max;
}

/* Monotonic nanoseconds. */
static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#endif
