/*
 * cron.h -- cron definitions, as robfig/cron v3's standard parser reads them,
 * and their next fire time, as its Schedule.Next gives it.
 *
 * Syntax: an optional "CRON_TZ=<zone> " or "TZ=<zone> " prefix (upper case;
 * the zone runs to the first space; "" and "UTC" are UTC, "Local" the
 * default zone), then either five fields (minute hour day-of-month month
 * day-of-week) separated by white space, or a descriptor that is the whole
 * rest of the definition. Fields: lists "a,b-c,..." (empty items skipped)
 * of '*' or '?' (any), numbers ("+5" and "05" too), ranges "a-b", steps
 * "*" "/n", "a-b/n" and "a/n" (= a-max/n). Months accept JAN-DEC, weekdays
 * SUN-SAT (case-insensitive); weekday 0-6 with 0 = Sunday, and 7 is Sunday
 * too (an exception: robfig refuses 7).
 * Day rule: a day field is unrestricted only if it has an item '*' or '?'
 * without a step above 1; if either day field is unrestricted a day must
 * match both, else either (a day of month of '*' with step 2 and a day
 * of week of MON: odd days or Mondays).
 * Descriptors: @yearly @annually @monthly @weekly @daily @midnight @hourly,
 * and "@every <go duration>": cut to whole seconds, at least 1s, at most
 * 100 years; fires at created_at's whole second + k*d, k >= 1, in no zone.
 * Daylight saving: robfig's walk, whatever it does at a change (a local
 * time that does not exist is skipped, and more: see cron.c), except that
 * a fire time whose wall time already occurred (the second pass through a
 * fall-back hour) is dropped, so a repeated wall time fires once.
 * Times are ntime_t (ns, UTC). Fire times of five-field specs are whole
 * minutes.
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
 * "expected 5 fields ..., found 3", "unknown time zone \"Foo/Bar\"",
 * "the zone prefix is written in upper case: \"CRON_TZ=\"". */
cron_t *cron_parse(const char *spec, size_t len, ntime_t created_at, const tz_t *default_tz,
                   char *err, size_t errlen);

/* The first fire time strictly after `after`. Returns NTIME_MAX if there is
 * none up to the end of the fifth year after `after`'s (e.g. "0 0 30 2 *"),
 * or it does not fit an ntime_t. */
ntime_t cron_next(const cron_t *c, ntime_t after);

void cron_free(cron_t *c); /* cron_free(NULL) does nothing */

#endif
