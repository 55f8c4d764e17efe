/*
 * lathist.h -- a latency histogram with logarithmic buckets (HDR-like), and the
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
#ifndef BENCH_LATHIST_H
#define BENCH_LATHIST_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#define LATHIST_SUB_BITS 5
#define LATHIST_SUB (1 << LATHIST_SUB_BITS)         /* sub-buckets per octave */
#define LATHIST_LINEAR (2 * LATHIST_SUB)            /* values below this: exact */
#define LATHIST_MAX_EXP 41
#define LATHIST_BUCKETS (LATHIST_LINEAR + (LATHIST_MAX_EXP - LATHIST_SUB_BITS - 1) * LATHIST_SUB)

typedef struct lathist {
    uint64_t count;
    uint64_t max;
    uint64_t sum;
    uint64_t b[LATHIST_BUCKETS];
} lathist_t;

static inline void lathist_reset(lathist_t *h) { memset(h, 0, sizeof(*h)); }

static inline int lathist_index(uint64_t v)
{
    if (v < LATHIST_LINEAR)
        return (int)v;
    int e = 63 - __builtin_clzll(v); /* v in [2^e, 2^(e+1)), e >= SUB_BITS + 1 */
    if (e >= LATHIST_MAX_EXP)
        return LATHIST_BUCKETS - 1;
    int sub = (int)((v >> (e - LATHIST_SUB_BITS)) & (LATHIST_SUB - 1));
    return LATHIST_LINEAR + (e - LATHIST_SUB_BITS - 1) * LATHIST_SUB + sub;
}

/* The largest value that falls in bucket i. */
static inline uint64_t lathist_upper(int i)
{
    if (i < LATHIST_LINEAR)
        return (uint64_t)i;
    int e = (i - LATHIST_LINEAR) / LATHIST_SUB + LATHIST_SUB_BITS + 1;
    int sub = (i - LATHIST_LINEAR) % LATHIST_SUB;
    uint64_t lo = (1ULL << e) + ((uint64_t)sub << (e - LATHIST_SUB_BITS));
    return lo + (1ULL << (e - LATHIST_SUB_BITS)) - 1;
}

static inline void lathist_add(lathist_t *h, uint64_t v)
{
    h->b[lathist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

/* The value at quantile q (0..1), 0 when empty. */
static inline uint64_t lathist_quantile(const lathist_t *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->count + 0.999999);
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < LATHIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t u = lathist_upper(i);
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
