/*
 * rfc3339.h -- RFC 3339 timestamps in and out.
 *
 * Input: "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)", 'T'/'t' and
 * 'Z'/'z' in either case, any number of fraction digits (1 or more; digits
 * past the ninth are truncated). Field ranges are checked (month 1-12, day
 * valid for the month and year, hour 0-23, minute 0-59, second 0-59; a leap
 * second "60" is rejected), offsets up to +-23:59. The instant must fit an
 * ntime_t (years 1678-2262); outside is an error.
 * Output: always UTC with exactly nine fraction digits and 'Z', fixed width
 * RFC3339_LEN, so strings sort as times: "2026-11-27T02:32:50.263508703Z".
 * Pure functions.
 */
#ifndef RFC3339_H
#define RFC3339_H

#include <stddef.h>
#include "ntime.h"

#define RFC3339_LEN 30 /* strlen("2026-11-27T02:32:50.263508703Z") */

/* Parses s[0..len) into *out. Returns 0 on success; on failure -1, *out
 * untouched, and one sentence in err[errlen] such as
 * "invalid time \"2026-13-01T00:00:00Z\": month out of range". */
int rfc3339_parse(const char *s, size_t len, ntime_t *out, char *err, size_t errlen);

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
