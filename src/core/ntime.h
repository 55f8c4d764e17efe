/*
 * ntime.h -- the one clock of the core.
 *
 * Times: every instant in the core is an ntime_t, nanoseconds since the Unix
 * epoch in UTC (wall clock, because users give absolute times such as
 * publishAt). Every duration is an int64_t count of nanoseconds and its name
 * ends in _ns. The core never reads the clock itself: the loop reads it once
 * per turn and passes `now` in, so core tests are deterministic.
 */
#ifndef NTIME_H
#define NTIME_H

#include <stdint.h>

typedef int64_t ntime_t; /* ns since 1970-01-01T00:00:00Z */

#define NTIME_NS_PER_US 1000LL
#define NTIME_NS_PER_MS 1000000LL
#define NTIME_NS_PER_S 1000000000LL
#define NTIME_MAX INT64_MAX

#endif
