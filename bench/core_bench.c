/*
 * core_bench.c -- the core alone, in process, no HTTP: how fast are the
 * operations themselves, and do they stay flat as the queue grows?
 *
 * For each queue length N (1 000, 100 000, 1 000 000 by default) a fresh
 * core gets N ready events of 16 bytes in one channel, then each figure runs
 * in rounds of K = min(N/10, 10 000) operations until -t seconds of timed
 * work have passed. Only the operations named are timed; what keeps the
 * queue at N between rounds (re-publishing what a round consumed, deleting
 * what it published) is not:
 *   publish       core_publish K events                 (then delete them)
 *   lock+delete   core_lock + core_delete the K oldest  (then publish K)
 *   acquire+del   core_acquire(max 1) + core_delete, K times (then publish K)
 *   timer churn   core_acquire(max 1, 1 ms lease) K times, then one
 *                 core_tick 1 ms later that expires the K leases: two timer
 *                 moves and a pop per event
 * Time is this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not the wall
 * clock, so time spent waiting for a CPU on a shared machine does not count;
 * each figure is run -r times (default 2) and the best is kept, since
 * neighbours (their cache traffic) only ever make a run slower.
 * Also reported: resident bytes per queued event (the growth of the
 * process's RSS while filling, the bench's own id ring touched first), so
 * the HTTP figure can be split into what the core keeps and what the
 * process adds. The core's big arrays are their own mappings (vmem.h),
 * which malloc statistics would not see.
 *
 * The core never reads the clock: `now` is synthetic, starting at
 * 2026-01-01 and moved forward by hand.
 */
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/core.h"
#include "lathist.h"
#include "time/tz.h"

#define DATA "0123456789abcdef"
#define DATA_LEN 16
#define TTL_NS (3600LL * NTIME_NS_PER_S)
#define T0 ((ntime_t)1767225600LL * NTIME_NS_PER_S) /* 2026-01-01T00:00:00Z */

static double budget_s = 0.5;

static uint64_t clock_cost; /* ns one cpu_ns() call adds to a timed span */

/* This thread's CPU time in ns. It is a system call (no vDSO), so rounds
 * subtract its cost, measured once by calibrate_clock. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void calibrate_clock(void)
{
    uint64_t t0 = cpu_ns();
    for (int i = 0; i < 10000; i++)
        cpu_ns();
    clock_cost = (cpu_ns() - t0) / 10001;
}

/* The CPU time since t, less the cost of reading the clock. */
static uint64_t since(uint64_t t)
{
    uint64_t d = cpu_ns() - t;
    return d > clock_cost ? d - clock_cost : 0;
}
static int repeats = 2;

/* A FIFO of the ids of the channel's events, oldest first. */
typedef struct ring {
    eid_t *ids;
    size_t cap, head, len;
} ring_t;

static void ring_push(ring_t *r, eid_t id)
{
    if (r->len == r->cap) {
        fprintf(stderr, "core_bench: id ring full\n");
        exit(1);
    }
    r->ids[(r->head + r->len++) % r->cap] = id;
}

static eid_t ring_pop(ring_t *r)
{
    eid_t id = r->ids[r->head];
    r->head = (r->head + 1) % r->cap;
    r->len--;
    return id;
}

struct bench;
typedef struct bench {
    core_t *core;
    channel_t *ch;
    ntime_t now;
    ring_t ring;
    size_t n, k;
    int prios;                /* > 0: events get priorities 0..prios-1 in turn */
    uint64_t published;
} bench_t;

static void publish_untimed(bench_t *b, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        core_pub_t p = {.data = DATA, .len = DATA_LEN, .publish_at = b->now, .ttl_ns = TTL_NS,
                        .priority = b->prios ? (uint8_t)(b->published++ % (uint64_t)b->prios) : 0};
        event_t *e;
        if (core_publish_batch(b->core, b->ch, b->now, &p, 1, &e, NULL, NULL) != CORE_OK) {
            fprintf(stderr, "core_bench: publish failed\n");
            exit(1);
        }
        ring_push(&b->ring, event_id(e));
    }
}

typedef void (*figure_fn)(struct bench *b);

static struct best {
    uint64_t ops, ns;
} best;

/* Keeps the best of a figure's repeats; run_figure prints it. */
static void report(uint64_t ops, uint64_t ns)
{
    if (!best.ns || (double)ops / (double)ns > (double)best.ops / (double)best.ns)
        best = (struct best){ops, ns};
}

static void print_figure(const char *op, size_t n, uint64_t ops, uint64_t ns)
{
    printf("core op=%s queued=%zu ops=%llu secs=%.3f rate=%.0f ns_per_op=%.1f\n", op, n,
           (unsigned long long)ops, ns / 1e9, ns ? (double)ops * 1e9 / (double)ns : 0.0,
           ops ? (double)ns / (double)ops : 0.0);
    fflush(stdout);
}

static void bench_publish(bench_t *b)
{
    eid_t *mine = malloc(b->k * sizeof(*mine));
    uint64_t ops = 0, ns = 0;
    while (ns < (uint64_t)(budget_s * 1e9)) {
        b->now += NTIME_NS_PER_US;
        uint64_t t = cpu_ns();
        for (size_t i = 0; i < b->k; i++)
            mine[i] = event_id(core_publish(b->core, b->ch, b->now, DATA, DATA_LEN, b->now, TTL_NS));
        ns += since(t);
        ops += b->k;
        for (size_t i = 0; i < b->k; i++)
            core_delete(b->core, b->ch, b->now, mine[i], NULL);
    }
    free(mine);
    report(ops, ns);
}

static void bench_lock_delete(bench_t *b)
{
    uint64_t ops = 0, ns = 0;
    while (ns < (uint64_t)(budget_s * 1e9)) {
        b->now += NTIME_NS_PER_US;
        uint64_t t = cpu_ns();
        for (size_t i = 0; i < b->k; i++) {
            eid_t id = ring_pop(&b->ring);
            event_t *e;
            uint64_t token;
            if (core_lock(b->core, b->ch, b->now, id, 60 * NTIME_NS_PER_S, &e) != CORE_OK ||
                (token = event_lock_token(b->core, e),
                 core_delete(b->core, b->ch, b->now, id, &token) != CORE_OK)) {
                fprintf(stderr, "core_bench: lock+delete failed\n");
                exit(1);
            }
        }
        ns += since(t);
        ops += b->k;
        publish_untimed(b, b->k);
    }
    report(ops, ns);
}

static void bench_acquire_delete(bench_t *b)
{
    uint64_t ops = 0, ns = 0;
    while (ns < (uint64_t)(budget_s * 1e9)) {
        b->now += NTIME_NS_PER_US;
        uint64_t t = cpu_ns();
        for (size_t i = 0; i < b->k; i++) {
            event_t *e;
            uint64_t token;
            if (core_acquire(b->core, b->ch, b->now, 1, 60 * NTIME_NS_PER_S, &e) != 1 ||
                (token = event_lock_token(b->core, e),
                 core_delete(b->core, b->ch, b->now, event_id(e), &token) != CORE_OK)) {
                fprintf(stderr, "core_bench: acquire+delete failed\n");
                exit(1);
            }
        }
        ns += since(t);
        ops += b->k;
        /* acquire took the oldest, which are the ring's oldest too */
        for (size_t i = 0; i < b->k; i++)
            ring_pop(&b->ring);
        publish_untimed(b, b->k);
    }
    report(ops, ns);
}

static void bench_timer_churn(bench_t *b)
{
    uint64_t ops = 0, ns = 0;
    uint64_t expired0 = core_counters(b->core)->lock_expired;
    while (ns < (uint64_t)(budget_s * 1e9)) {
        b->now += NTIME_NS_PER_US;
        uint64_t t = cpu_ns();
        for (size_t i = 0; i < b->k; i++) {
            event_t *e;
            if (core_acquire(b->core, b->ch, b->now, 1, NTIME_NS_PER_MS, &e) != 1) {
                fprintf(stderr, "core_bench: acquire failed\n");
                exit(1);
            }
        }
        b->now += NTIME_NS_PER_MS;
        core_tick(b->core, b->now);
        ns += since(t);
        ops += b->k;
    }
    if (core_counters(b->core)->lock_expired - expired0 != ops) {
        fprintf(stderr, "core_bench: expected %llu lock expiries\n", (unsigned long long)ops);
        exit(1);
    }
    report(ops, ns);
}

static void run_figure(const char *op, struct bench *b, figure_fn fn)
{
    best = (struct best){0, 0};
    for (int i = 0; i < repeats; i++)
        fn(b);
    print_figure(op, b->n, best.ops, best.ns);
}

/* Resident bytes of this process (statm's second field, in pages). */
static double rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return (double)resident * 4096;
}

/* acquire + delete with 10 priorities in use: the heap orders by
 * (priority, age), so this should cost what one priority costs. */
static void run_priorities(size_t n)
{
    bench_t b = {.n = n, .k = n / 10 < 10000 ? (n / 10 ? n / 10 : 1) : 10000, .now = T0, .prios = 10};
    b.ring.cap = n + b.k + 1;
    b.ring.ids = malloc(b.ring.cap * sizeof(eid_t));
    b.core = core_new(tz_utc());
    b.ch = core_channel(b.core, "bench", 5);
    publish_untimed(&b, n);
    run_figure("acquire+delete/10-priorities", &b, bench_acquire_delete);
    core_free(b.core);
    free(b.ring.ids);
}

static void run_size(size_t n)
{
    bench_t b = {.n = n, .k = n / 10 < 10000 ? (n / 10 ? n / 10 : 1) : 10000, .now = T0};
    b.ring.cap = n + b.k + 1;
    b.ring.ids = malloc(b.ring.cap * sizeof(eid_t));
    memset(b.ring.ids, 0xff, b.ring.cap * sizeof(eid_t)); /* not 0: that may become calloc */
    b.core = core_new(tz_utc());
    b.ch = core_channel(b.core, "bench", 5);
    double rss0 = rss_bytes();
    uint64_t t = cpu_ns();
    publish_untimed(&b, n);
    uint64_t fill_ns = since(t);
    double used = rss_bytes() - rss0;
    print_figure("fill", n, n, fill_ns);
    printf("core op=heap queued=%zu bytes_per_event=%.1f overhead_per_event=%.1f\n", n,
           used / (double)n, used / (double)n - DATA_LEN);
    run_figure("publish", &b, bench_publish);
    run_figure("lock+delete", &b, bench_lock_delete);
    run_figure("acquire+delete", &b, bench_acquire_delete);
    run_figure("timer-churn", &b, bench_timer_churn);
    core_free(b.core);
    free(b.ring.ids);
}

int main(int argc, char **argv)
{
    size_t sizes[8] = {1000, 100000, 1000000};
    int nsizes = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            budget_s = atof(argv[++i]);
        } else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
            repeats = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            nsizes = 0;
            for (char *s = argv[++i]; *s && nsizes < 8; s += *s == ',') {
                sizes[nsizes++] = strtoull(s, &s, 10);
            }
        } else {
            fprintf(stderr, "usage: core_bench [-t seconds per figure (0.5)] [-r repeats, best kept (2)]\n"
                            "                  [-n sizes (1000,100000,1000000)]\n");
            return 2;
        }
    }
    calibrate_clock();
    printf("core op=clock ns_per_read=%llu\n", (unsigned long long)clock_cost);
    for (int i = 0; i < nsizes; i++) {
        run_size(sizes[i]);
        run_priorities(sizes[i]);
    }
    return 0;
}
