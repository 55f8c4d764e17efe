/*
 * sclock.c -- the server's clock (see sclock.h).
 */
#include "sclock.h"

#include <time.h>

static int64_t offset; /* server - monotonic, ns; only grows */
static int started;

int64_t sclock_read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NTIME_NS_PER_S + ts.tv_nsec;
}

ntime_t sclock_now(void)
{
    /* The wall clock first: a pause between the two reads then makes
     * wall - mono smaller, never larger, so it cannot push the offset
     * (which keeps its maximum) ahead of the wall clock. */
    int64_t wall = sclock_read(CLOCK_REALTIME);
    monotime_t mono = sclock_read(CLOCK_MONOTONIC);
    if (!started || wall - mono > offset) {
        offset = wall - mono;
        started = 1;
    }
    return mono + offset;
}

void sclock_floor(ntime_t at)
{
    if (sclock_now() >= at)
        return;
    offset = at - sclock_read(CLOCK_MONOTONIC);
}

monotime_t sclock_mono_at(ntime_t at)
{
    if (!started)
        sclock_now();
    return at - offset;
}

monotime_t sclock_mono(void)
{
    return sclock_read(CLOCK_MONOTONIC);
}

int64_t sclock_ahead_ns(void)
{
    int64_t wall = sclock_read(CLOCK_REALTIME);
    ntime_t now = sclock_now();
    return now > wall ? now - wall : 0;
}
