/*
 * fuzz_cron.c -- libFuzzer target for cron_parse and cron_next, zones
 * included (CRON_TZ= and TZ= prefixes load real TZif files).
 *
 * Every spec is parsed with the same created_at and UTC as the default
 * zone. For one that parses, a few fire times are computed, and checked:
 *   - strictly increasing (cron_next(c, t) > t), NTIME_MAX ends the list;
 *   - "first fire strictly after": in UTC, from one nanosecond before a
 *     fire time and from a point between two fire times, the next fire is
 *     that one; in any zone, the next fire after such a point is after it;
 *   - a spec without "@every" fires on whole minutes;
 *   - "@every d" fires on whole seconds, created_at's whole second + k*d:
 *     equal gaps.
 * The error buffer is an exact-size heap buffer of the size handle_job_add
 * passes (ASan sees an overrun) and must hold a non-empty sentence on
 * failure, valid UTF-8 when the spec is (it ends up in a JSON error body).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/time/cron.h"
#include "../src/time/rfc3339.h"
#include "fuzz_util.h"

#define FIRES 6
#define MINUTE_NS (60 * NTIME_NS_PER_S)

static ntime_t created_at;

static void fail(const char *what, const uint8_t *s, size_t n, const ntime_t *fires, int nf)
{
    fprintf(stderr, "fuzz_cron: %s: \"%.*s\"\n", what, (int)n, (const char *)s);
    for (int i = 0; i < nf; i++) {
        char buf[RFC3339_LEN + 1];
        rfc3339_format(fires[i], buf);
        fprintf(stderr, "  fire[%d] = %s (%lld)\n", i, buf, (long long)fires[i]);
    }
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[100];
    /* Not on a minute, so "@every" and five-field specs differ. */
    const char *t = "2026-11-27T02:32:50.263508703Z";
    if (rfc3339_parse(t, strlen(t), &created_at, err, sizeof(err)) != 0)
        abort();
    return 0;
}

/* Length of the white space character at s[0..n) as Go's unicode.IsSpace
 * sees it (robfig trims the schedule after a zone prefix with
 * strings.TrimSpace), or 0. Written out here, not taken from cron.c, so
 * that the property does not share the parser's reading. */
static size_t go_space(const uint8_t *u, size_t n)
{
    static const char *const wide[] = {"\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\xa8",
                                       "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80"};
    if (n >= 1 && (u[0] == ' ' || (u[0] >= '\t' && u[0] <= '\r')))
        return 1;
    if (n >= 3 && u[0] == 0xe2 && u[1] == 0x80 && u[2] >= 0x80 && u[2] <= 0x8a) /* U+2000..U+200A */
        return 3;
    for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++) {
        size_t k = strlen(wide[i]);
        if (n >= k && memcmp(u, wide[i], k) == 0)
            return k;
    }
    return 0;
}

/* Is the definition an @every one? As robfig reads it: a zone prefix
 * only at the very start, running to the first ASCII space, then the rest
 * trimmed of white space (Unicode's, as Go's); "@every " only there:
 * elsewhere "@every" is text robfig passes over (a field "*-0@every/1"
 * reads as "*"), and the spec is a five-field one. */
static int is_every(const uint8_t *data, size_t size)
{
    size_t i = 0, k;
    if ((size >= 8 && memcmp(data, "CRON_TZ=", 8) == 0) || (size >= 3 && memcmp(data, "TZ=", 3) == 0)) {
        while (i < size && data[i] != ' ')
            i++;
        while (i < size && (k = go_space(data + i, size - i)) > 0)
            i += k;
    }
    return size - i >= 7 && memcmp(data + i, "@every ", 7) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t errlen = 300;
    char *err = malloc(errlen);
    memset(err, 0x7f, errlen);
    cron_t *c = cron_parse((const char *)data, size, created_at, tz_utc(), err, errlen);
    if (!c) {
        if (!memchr(err, '\0', errlen) || err[0] == '\0')
            fail("failure left no error sentence", data, size, NULL, 0);
        if (fuzz_check_utf8() && fuzz_utf8_valid((const char *)data, size) &&
            !fuzz_utf8_valid(err, strlen(err))) {
            fprintf(stderr, "fuzz_cron: error sentence: %s\n", err);
            fail("the error sentence is not valid UTF-8", data, size, NULL, 0);
        }
        free(err);
        return 0;
    }
    free(err);
    int every = is_every(data, size);
    /* In a zone with daylight saving, robfig's search (which cron_next
     * follows) can find from a later point a time it passed over from an
     * earlier one (Lord Howe's half-hour fall back), and from just before a
     * fire miss it (Santiago: "0 1 2 9 *" fires at 01:00 on 3 September
     * 2028, reached by the hour step past the missing midnight; from a
     * nanosecond before, the day step passes over it). So "a point between
     * two fires leads to the later one" and "from t-1ns the next fire is t"
     * hold only in UTC. */
    int zoned = memmem(data, size, "TZ=", 3) != NULL;
    ntime_t fires[FIRES];
    int n = 0;
    ntime_t after = created_at;
    while (n < FIRES) {
        ntime_t t = cron_next(c, after);
        if (t == NTIME_MAX)
            break;
        fires[n++] = t;
        if (t <= after)
            fail("a fire time is not after the time given", data, size, fires, n);
        if (!every && t % MINUTE_NS != 0)
            fail("a five-field spec fired off a whole minute", data, size, fires, n);
        if (every && (t % NTIME_NS_PER_S != 0 || (n >= 3 && t - fires[n - 2] != fires[1] - fires[0])))
            fail("@every fires are not evenly spaced whole seconds", data, size, fires, n);
        if (every && n == 1 && (t - created_at / NTIME_NS_PER_S * NTIME_NS_PER_S) % NTIME_NS_PER_S != 0)
            fail("@every does not start from created_at's whole second", data, size, fires, n);
        ntime_t from_before = cron_next(c, t - 1);
        if (from_before <= t - 1)
            fail("the next fire after t-1ns is not after it", data, size, fires, n);
        if (!zoned && from_before != t)
            fail("the first fire after t-1ns is not t", data, size, fires, n);
        ntime_t mid = n >= 2 ? fires[n - 2] + (t - fires[n - 2]) / 2 : 0, from_mid = n >= 2 ? cron_next(c, mid) : 0;
        if (n >= 2 && from_mid <= mid)
            fail("the next fire after a point between two fires is not after it", data, size, fires, n);
        if (n >= 2 && !zoned && from_mid != t)
            fail("a point between two fires does not lead to the later one", data, size, fires, n);
        after = t;
    }
    cron_free(c);
    return 0;
}
