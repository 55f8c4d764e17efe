/*
 * rfc3339.h -- RFC 3339 timestamps in (output: base/ntime.h).
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
#include "base/ntime.h"

/* Parses s[0..len) into *out. Returns 0 on success; on failure -1, *out
 * untouched, and one sentence in err[errlen] such as
 * "invalid time \"2026-13-01T00:00:00Z\": month out of range". */
int rfc3339_parse(const char *s, size_t len, ntime_t *out, char *err, size_t errlen);

#endif
