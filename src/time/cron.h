/*
 * cron.h -- cron definitions, as robfig/cron v3's standard parser reads them,
 * and their next fire time.
 *
 * Syntax: an optional "CRON_TZ=<zone> " or "TZ=<zone> " prefix, then either
 * five fields (minute hour day-of-month month day-of-week) or a descriptor.
 * Fields: '*' or '?' (any), numbers, ranges "a-b", steps "*" "/n", "a-b/n"
 * and "a/n" (= a-max/n), lists "a,b-c,...". Months accept JAN-DEC, weekdays
 * SUN-SAT (case-insensitive); weekday 0-6 with 0 = Sunday, 7 is Sunday too.
 * When both day-of-month and day-of-week are restricted (neither starts with
 * '*' or '?'), a day matches if either matches; else both must.
 * Descriptors: @yearly @annually @monthly @weekly @daily @midnight @hourly,
 * and "@every <go duration>" (>= 1s): fires at created_at + k*d, k >= 1,
 * exactly (not rounded to seconds), in no zone.
 * Zone: the prefix's IANA zone, else the default zone given to cron_parse.
 * Daylight saving: a local time that does not exist on a day (spring
 * forward) does not fire that day; a local time that occurs twice (fall
 * back) fires once, at its first occurrence.
 * Times are ntime_t (ns, UTC). Fire times of five-field specs are whole
 * minutes (seconds and nanoseconds zero).
 */
#ifndef CRON_H
#define CRON_H

#include <stddef.h>
#include <stdint.h>
#include "base/ntime.h"
#include "tz.h"

typedef struct cron cron_t;

/* Parses spec[0..len). created_at anchors "@every". default_tz is used when
 * the spec has no zone prefix. Returns a new cron_t (free with cron_free), or
 * NULL with one sentence in err[errlen] that says what is wrong, e.g.
 * "cron definition \"61 * * * *\": minute 61 out of range 0-59",
 * "expected 5 fields, found 3", "unknown time zone \"Foo/Bar\"",
 * "@every needs a duration of at least 1s". */
cron_t *cron_parse(const char *spec, size_t len, ntime_t created_at, const tz_t *default_tz,
                   char *err, size_t errlen);

/* The first fire time strictly after `after`. Returns NTIME_MAX if there is
 * none within the next 5 years (e.g. "0 0 30 2 *"). */
ntime_t cron_next(const cron_t *c, ntime_t after);

void cron_free(cron_t *c); /* cron_free(NULL) does nothing */

#endif
