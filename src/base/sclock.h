/*
 * sclock.h -- the server's clock: wall-clock instants that never go back
 * and never stand still.
 *
 * Instants are wall-clock UTC (users give absolute times such as
 * publishAt), but durations must elapse as durations. So the server's
 * clock is the monotonic clock plus an offset, and the offset only grows:
 *
 *   now = max(wall, mono + offset);  offset = now - mono
 *
 * While the wall clock runs normally, wall - mono is constant and now is
 * the wall clock. If the wall clock steps back (NTP, a VM restored), the
 * offset stays and the server's clock runs on from its latest value at the
 * monotonic rate, ahead of the wall clock until that catches up (a step
 * forward). sclock_floor() does the same for a restart that finds the
 * log's last record later than the wall clock. A step forward is followed
 * at once.
 *
 * Times: ntime_t (ns since the epoch, UTC) for the server's instants;
 * monotime_t (ns of CLOCK_MONOTONIC) for the kernel's timers. One process
 * has one server clock: the state is static, read on the loop thread only.
 */
#ifndef SCLOCK_H
#define SCLOCK_H

#include <time.h>
#include "ntime.h"

typedef int64_t monotime_t; /* ns of CLOCK_MONOTONIC */

/* The kernel's clock id (CLOCK_REALTIME, CLOCK_MONOTONIC, ...) in ns, as
 * clock_gettime reads it: no state, any thread. */
int64_t sclock_read(clockid_t id);

/* The server's clock now: never less than any value it returned before,
 * nor than the last floor. */
ntime_t sclock_now(void);

/* From now on the clock reads at least `at` (it continues from there at
 * the monotonic rate if the wall clock is behind). */
void sclock_floor(ntime_t at);

/* The CLOCK_MONOTONIC instant at which the server's clock will read `at`,
 * as far as is known now (a later step forward of the wall clock makes it
 * come sooner). */
monotime_t sclock_mono_at(ntime_t at);

/* CLOCK_MONOTONIC now (sclock_read's: no state, any thread). */
monotime_t sclock_mono(void);

/* How far the server's clock is ahead of the wall clock now, in ns (0
 * while the wall clock leads). */
int64_t sclock_ahead_ns(void);

#endif
