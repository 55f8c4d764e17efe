/*
 * wakefloor.c -- what one timed wake-up costs on this machine, with no
 * server around it: the floor under Distribuerad's idle-CPU figure.
 *
 * It sleeps in epoll_wait (as h2o's loop does, with a millisecond timeout)
 * until each of N deadlines a second, spread evenly, does nothing, and goes
 * back to sleep; after -d seconds it prints its CPU time from
 * /proc/self/schedstat (nanoseconds on CPU) and how late it woke past each
 * deadline. Distribuerad with 30 jobs created at different instants wakes
 * 30 times a second, so neither its CPU nor its job lateness can beat this
 * program's at -n 30 in the same run: what is above it is ours, what is
 * below it is the kernel, the hypervisor and the neighbours.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include "lathist.h"

static long long wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long cpu_ns(void)
{
    long long v = -1;
    FILE *f = fopen("/proc/self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%lld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

int main(int argc, char **argv)
{
    int per_s = 30;
    double secs = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-n") == 0)
            per_s = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-d") == 0)
            secs = atof(argv[i + 1]);
    }
    if (per_s < 1 || secs <= 0) {
        fprintf(stderr, "usage: wakefloor [-n wake-ups per second (30)] [-d seconds (10)]\n");
        return 2;
    }
    int ep = epoll_create1(0);
    long long start = wall_ns(), end = start + (long long)(secs * 1e9), next = start;
    long long c0 = cpu_ns();
    long wakes = 0;
    static lathist_t late;
    while (wall_ns() < end) {
        next += 1000000000LL / per_s;
        long long now;
        /* round up to whole ms, as the server does; sleep again if early */
        while ((now = wall_ns()) < next) {
            struct epoll_event ev;
            epoll_wait(ep, &ev, 1, (int)((next - now + 999999) / 1000000));
            wakes++;
        }
        lathist_add(&late, (uint64_t)(now - next));
    }
    long long c1 = cpu_ns();
    printf("scenario=wakefloor per_s=%d secs=%.1f wakeups=%ld cpu_pct=%.4f us_per_wakeup=%.1f "
           "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
           per_s, secs, wakes, (double)(c1 - c0) / 1e9 / secs * 100, (double)(c1 - c0) / 1e3 / (double)wakes,
           lathist_quantile(&late, 0.5) / 1e6, lathist_quantile(&late, 0.99) / 1e6, late.max / 1e6);
    return 0;
}
