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

#include <stddef.h>
#include <stdint.h>

typedef int64_t ntime_t; /* ns since 1970-01-01T00:00:00Z */

#define NTIME_NS_PER_US 1000LL
#define NTIME_NS_PER_MS 1000000LL
#define NTIME_NS_PER_S 1000000000LL
#define NTIME_MAX INT64_MAX

/* The end of the times the API accepts: every instant a request makes
 * (now + ttl, publishAt + ttl, now + a lock's ttl, ...) must fall before
 * it, so no sum of a time and a duration wraps. 2262-01-01T00:00:00Z. */
#define NTIME_END 9214646400000000000LL

/* Does at + d fall before NTIME_END? d is >= 0; at may be any time. */
static inline int ntime_fits(ntime_t at, int64_t d)
{
    return at < NTIME_END - d;
}

/* t + d for a duration d >= 0, or NTIME_MAX if the sum would pass it: the
 * HTTP layer keeps requested times below 2262-01-01, and this keeps a sum
 * it cannot check (a job's fire, a clock run far ahead) from wrapping. */
static inline ntime_t ntime_add(ntime_t t, int64_t d)
{
    return t > 0 && d > NTIME_MAX - t ? NTIME_MAX : t + d;
}

/* RFC 3339 output: always UTC with exactly nine fraction digits and 'Z',
 * fixed width RFC3339_LEN, so strings sort as times:
 * "2026-11-27T02:32:50.263508703Z". The parser is time/rfc3339.h. */
#define RFC3339_LEN 30 /* strlen("2026-11-27T02:32:50.263508703Z") */

/* Writes t as UTC with nine fraction digits into out and NUL-terminates it.
 * Works for every ntime_t (negative too, years before 1970). Returns
 * RFC3339_LEN. */
size_t rfc3339_format(ntime_t t, char out[RFC3339_LEN + 1]);

/* The text of the last two seconds formatted, "YYYY-MM-DDTHH:MM:SS.",
 * kept by the caller (one per thread that formats). A listing formats
 * publishedAt and livesUntil for each event, and consecutive events mostly
 * share both seconds, so the date and time of day are reused and only the
 * nine fraction digits are written. All zero is an empty cache. */
typedef struct rfc3339_cache {
    int64_t secs[2];
    char text[2][20];   /* an entry is set when text[i][0] != 0 */
    ntime_t whole[2];   /* the last time formatted with entry i ... */
    char frac[2][10];   /* ... and its nine digits and 'Z' */
    unsigned char last; /* the entry used most recently */
} rfc3339_cache_t;

/* rfc3339_format with the cache: the same bytes, and updates c. */
size_t rfc3339_format_cached(rfc3339_cache_t *c, ntime_t t, char out[RFC3339_LEN + 1]);

/* Civil-date helpers shared with tz.c and cron.c (proleptic Gregorian). */
int64_t rfc3339_days_from_civil(int64_t y, unsigned m, unsigned d);
void rfc3339_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);


#endif
