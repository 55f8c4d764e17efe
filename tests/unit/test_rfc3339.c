/* test_rfc3339.c -- RFC 3339 parse/format and the civil-date helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "time/rfc3339.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A small deterministic generator, so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const struct {
    const char *in;
    ntime_t want;
} valid[] = {
    {"1970-01-01T00:00:00Z", 0},
    {"2026-11-27T02:32:50.263508703Z", 1795746770263508703LL},
    {"2026-11-27T10:00:00Z", 1795773600000000000LL},
    {"2026-11-27T12:00:00+02:00", 1795773600000000000LL},
    {"2026-11-27T04:30:00-05:30", 1795773600000000000LL},
    {"2026-11-27T10:00:00-00:00", 1795773600000000000LL},
    {"2026-11-27T10:00:00+00:00", 1795773600000000000LL},
    {"2026-11-28T09:59:00+23:59", 1795773600000000000LL},
    {"2026-11-26T10:01:00-23:59", 1795773600000000000LL},
    {"2026-11-27t10:00:00z", 1795773600000000000LL},
    {"2026-11-27t12:00:00+02:00", 1795773600000000000LL},
    {"2026-11-27T10:00:00.5Z", 1795773600500000000LL},
    /* fractions of 1..12 digits; digits past the ninth are truncated */
    {"1970-01-01T00:00:00.1Z", 100000000},
    {"1970-01-01T00:00:00.12Z", 120000000},
    {"1970-01-01T00:00:00.123Z", 123000000},
    {"1970-01-01T00:00:00.1234Z", 123400000},
    {"1970-01-01T00:00:00.12345Z", 123450000},
    {"1970-01-01T00:00:00.123456Z", 123456000},
    {"1970-01-01T00:00:00.1234567Z", 123456700},
    {"1970-01-01T00:00:00.12345678Z", 123456780},
    {"1970-01-01T00:00:00.123456789Z", 123456789},
    {"1970-01-01T00:00:00.1234567899Z", 123456789},
    {"1970-01-01T00:00:00.12345678999Z", 123456789},
    {"1970-01-01T00:00:00.123456789999Z", 123456789},
    {"1970-01-01T00:00:00.000000001Z", 1},
    {"1970-01-01T00:00:00.0000000009Z", 0},
    {"1969-12-31T23:59:59.999999999Z", -1},
    {"1969-12-31T23:59:59Z", -1000000000LL},
    {"1900-01-01T00:00:00Z", -2208988800000000000LL},
    {"2001-09-09T01:46:40Z", 1000000000000000000LL},
    {"2024-02-29T00:00:00Z", 1709164800000000000LL},
    {"2000-02-29T23:59:59Z", 951868799000000000LL},
    /* the ends of ntime_t, also reached through an offset */
    {"1677-09-21T00:12:43.145224192Z", INT64_MIN},
    {"1677-09-21T01:12:43.145224192+01:00", INT64_MIN},
    {"2262-04-11T23:47:16.854775807Z", INT64_MAX},
    {"2262-04-12T01:47:16.854775807+02:00", INT64_MAX},
    {"2262-04-11T23:47:16.8547758079Z", INT64_MAX},
};

static void test_parse_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(valid); i++) {
        ntime_t t = 42;
        char err[128] = "";
        int rc = rfc3339_parse(valid[i].in, strlen(valid[i].in), &t, err, sizeof err);
        if (rc != 0 || t != valid[i].want)
            fail_msg("%s: rc %d t %lld want %lld (%s)", valid[i].in, rc, (long long)t,
                     (long long)valid[i].want, err);
    }
}

static const struct {
    const char *in;
    const char *why; /* a substring of the error */
} invalid[] = {
    {"", "empty"},
    {"2026-13-01T00:00:00Z", "month out of range"},
    {"2026-00-01T00:00:00Z", "month out of range"},
    {"2026-01-00T00:00:00Z", "day out of range"},
    {"2026-01-32T00:00:00Z", "day out of range"},
    {"2026-04-31T00:00:00Z", "day out of range"},
    {"2023-02-29T00:00:00Z", "day out of range"},
    {"1900-02-29T00:00:00Z", "day out of range"},
    {"2026-01-01T24:00:00Z", "hour out of range"},
    {"2026-01-01T00:60:00Z", "minute out of range"},
    {"2026-01-01T00:00:60Z", "second out of range"},
    {"2016-12-31T23:59:60Z", "second out of range"},
    {"2026-01-01T00:00:00", "missing time zone"},
    {"2026-01-01T00:00:00.5", "missing time zone"},
    {"2026-01-01T00:00:00Zx", "unexpected text"},
    {"2026-01-01T00:00:00Z ", "unexpected text"},
    {"2026-01-01T00:00:00+02:00Z", "unexpected text"},
    {"2026-01-01T00:00:00+02:000", "unexpected text"},
    {" 2026-01-01T00:00:00Z", "date"},
    {"2026-01-01 00:00:00Z", "'T'"},
    {"2026-01-01", "'T'"},
    {"26-01-01T00:00:00Z", "date"},
    {"+2026-01-01T00:00:00Z", "date"},
    {"2026-1-01T00:00:00Z", "date"},
    {"2026-01-01T0:00:00Z", "time"},
    {"2026-01-01T00:00Z", "time"},
    {"2026-01-01T00:00:00.Z", "decimal point"},
    {"2026-01-01T00:00:00,5Z", "expected Z"},
    {"2026-01-01T00:00:00+02", "malformed offset"},
    {"2026-01-01T00:00:00+0200", "malformed offset"},
    {"2026-01-01T00:00:00+2:00", "malformed offset"},
    {"2026-01-01T00:00:00+24:00", "offset out of range"},
    {"2026-01-01T00:00:00+02:60", "offset out of range"},
    {"2026-01-01T00:00:00UTC", "expected Z"},
    {"0001-01-01T00:00:00Z", "supported range"},
    {"9999-12-31T23:59:59Z", "supported range"},
    {"1677-09-21T00:12:43.145224191Z", "supported range"},
    {"2262-04-11T23:47:16.854775808Z", "supported range"},
    {"2262-04-11T23:47:16.854775807-00:01", "supported range"},
};

static void test_parse_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(invalid); i++) {
        ntime_t t = 42;
        char err[128] = "";
        int rc = rfc3339_parse(invalid[i].in, strlen(invalid[i].in), &t, err, sizeof err);
        if (rc != -1 || t != 42)
            fail_msg("%s: accepted as %lld", invalid[i].in, (long long)t);
        if (strncmp(err, "invalid time \"", 14) != 0 || !strstr(err, invalid[i].why))
            fail_msg("%s: error \"%s\" lacks \"%s\"", invalid[i].in, err, invalid[i].why);
    }
}

/* The input need not be NUL-terminated: only s[0..len) is read. */
static void test_parse_respects_len(void **state)
{
    (void)state;
    const char *s = "1970-01-01T00:00:01Zgarbage";
    ntime_t t = 0;
    char err[128];
    assert_int_equal(rfc3339_parse(s, 20, &t, err, sizeof err), 0);
    assert_int_equal(t, NTIME_NS_PER_S);
    assert_int_equal(rfc3339_parse(s, 19, &t, err, sizeof err), -1);
    assert_int_equal(rfc3339_parse(s, 0, &t, NULL, 0), -1);
    assert_int_equal(rfc3339_parse(NULL, 0, &t, err, sizeof err), -1);
    assert_string_equal(err, "invalid time \"\": empty");
}

static void test_error_message(void **state)
{
    (void)state;
    char err[128];
    ntime_t t;
    const char *s = "2026-13-01T00:00:00Z";
    assert_int_equal(rfc3339_parse(s, strlen(s), &t, err, sizeof err), -1);
    assert_string_equal(err, "invalid time \"2026-13-01T00:00:00Z\": month out of range");

    /* Long input is cut at a character boundary (here inside "é"). */
    char longs[80];
    memset(longs, 'x', sizeof longs);
    memcpy(longs + 47, "\xc3\xa9", 2);
    assert_int_equal(rfc3339_parse(longs, sizeof longs, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "xxx...\""));
    assert_null(strstr(err, "\xc3"));

    /* A short buffer is truncated, never overrun. */
    char tiny[8];
    assert_int_equal(rfc3339_parse(s, strlen(s), &t, tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "invalid");
}

static const struct {
    ntime_t t;
    const char *want;
} formats[] = {
    {0, "1970-01-01T00:00:00.000000000Z"},
    {1, "1970-01-01T00:00:00.000000001Z"},
    {-1, "1969-12-31T23:59:59.999999999Z"},
    {-1000000000LL, "1969-12-31T23:59:59.000000000Z"},
    {-1000000001LL, "1969-12-31T23:59:58.999999999Z"},
    {-86400LL * 1000000000LL, "1969-12-31T00:00:00.000000000Z"},
    {-2208988800000000000LL, "1900-01-01T00:00:00.000000000Z"},
    {1795746770263508703LL, "2026-11-27T02:32:50.263508703Z"},
    {1709164800000000000LL, "2024-02-29T00:00:00.000000000Z"},
    {951868799000000000LL, "2000-02-29T23:59:59.000000000Z"},
    {INT64_MIN, "1677-09-21T00:12:43.145224192Z"},
    {INT64_MAX, "2262-04-11T23:47:16.854775807Z"},
};

static void test_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(formats); i++) {
        char out[RFC3339_LEN + 1];
        memset(out, '#', sizeof out);
        assert_int_equal(rfc3339_format(formats[i].t, out), RFC3339_LEN);
        assert_string_equal(out, formats[i].want);
    }
}

/* format then parse gives the same instant, for all of ntime_t. */
static void test_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < 200000; i++) {
        ntime_t t = (ntime_t)rng();
        if (i % 4 == 1)
            t /= 1000000000; /* near the epoch */
        else if (i % 4 == 2)
            t = t / NTIME_NS_PER_S * NTIME_NS_PER_S; /* whole seconds */
        char out[RFC3339_LEN + 1];
        ntime_t back = 0;
        char err[128];
        assert_int_equal(rfc3339_format(t, out), RFC3339_LEN);
        assert_int_equal(strlen(out), RFC3339_LEN);
        if (rfc3339_parse(out, RFC3339_LEN, &back, err, sizeof err) != 0 || back != t)
            fail_msg("%lld -> %s -> %lld (%s)", (long long)t, out, (long long)back, err);
    }
}

/* The fixed-width text sorts as the instants do. */
static void test_text_order(void **state)
{
    (void)state;
    for (int i = 0; i < 100000; i++) {
        ntime_t a = (ntime_t)rng(), b = (ntime_t)rng();
        if (i % 2 && __builtin_add_overflow(a, (ntime_t)(rng() % 2000) - 1000, &b))
            continue; /* near sorts are the interesting ones */
        char sa[RFC3339_LEN + 1], sb[RFC3339_LEN + 1];
        rfc3339_format(a, sa);
        rfc3339_format(b, sb);
        int c = strcmp(sa, sb);
        assert_true((a < b && c < 0) || (a == b && c == 0) || (a > b && c > 0));
    }
}

/* The formatter against a plain snprintf of the general civil-date
 * helper, at a random time of every day ntime_t can hold. */
static void test_format_every_day(void **state)
{
    (void)state;
    const int64_t ns_per_day = 86400 * NTIME_NS_PER_S;
    for (int64_t days = INT64_MIN / ns_per_day; days <= INT64_MAX / ns_per_day; days++) {
        ntime_t t;
        uint64_t off = rng() % (uint64_t)ns_per_day;
        if (__builtin_add_overflow(days * ns_per_day, (int64_t)off, &t))
            continue;
        int64_t y, sod = (int64_t)(off / NTIME_NS_PER_S);
        unsigned m, d;
        rfc3339_civil_from_days(days, &y, &m, &d);
        char want[64], got[RFC3339_LEN + 1];
        snprintf(want, sizeof want, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%09lluZ", (long long)y, m,
                 d, (long long)(sod / 3600), (long long)(sod / 60 % 60), (long long)(sod % 60),
                 (unsigned long long)(off % NTIME_NS_PER_S));
        assert_int_equal(rfc3339_format(t, got), RFC3339_LEN);
        assert_string_equal(got, want);
    }
}

/* The cached formatter writes what the plain one does, whatever the
 * cache held: random times, runs within one second, two interleaved
 * streams (an event's two times), exact repeats (a batch's events share
 * their times), and second 0 into an empty (zeroed) cache. */
static void test_format_cached(void **state)
{
    (void)state;
    rfc3339_cache_t c;
    memset(&c, 0, sizeof c);
    char first[RFC3339_LEN + 1];
    rfc3339_format_cached(&c, 5, first); /* second 0, as a zeroed entry's key */
    assert_string_equal(first, "1970-01-01T00:00:00.000000005Z");
    ntime_t base[3] = {0, -1, 1795746770263508703LL};
    for (int i = 0; i < 300000; i++) {
        ntime_t t;
        uint64_t r = rng();
        switch (i % 6) {
        case 0: t = (ntime_t)r; break;
        case 1: t = base[i % 3] + (ntime_t)(r % 3000000000ULL); break;
        case 2: t = base[i % 3] - (ntime_t)(r % 3000000000ULL); break;
        case 3: t = base[2] + (i % 2) * 3600 * NTIME_NS_PER_S + (ntime_t)(r % NTIME_NS_PER_S); break;
        case 4: t = (ntime_t)(r % 2) + (i % 7 ? 0 : INT64_MIN); break;
        default: t = base[2] + (ntime_t)(r % 3) * 3600 * NTIME_NS_PER_S; break; /* exact repeats */
        }
        if (i % 1000 == 0)
            memset(&c, 0, sizeof c);
        char want[RFC3339_LEN + 1], got[RFC3339_LEN + 1];
        rfc3339_format(t, want);
        assert_int_equal(rfc3339_format_cached(&c, t, got), RFC3339_LEN);
        assert_string_equal(got, want);
    }
}

/* Checks one day number both ways against the C library. */
static void check_civil(int64_t days)
{
    time_t secs = (time_t)(days * 86400);
    struct tm tm;
    assert_non_null(gmtime_r(&secs, &tm));
    int64_t y;
    unsigned m, d;
    rfc3339_civil_from_days(days, &y, &m, &d);
    if (y != (int64_t)tm.tm_year + 1900 || m != (unsigned)tm.tm_mon + 1 ||
        d != (unsigned)tm.tm_mday)
        fail_msg("day %lld: %lld-%u-%u, libc %d-%d-%d", (long long)days, (long long)y, m, d,
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    assert_int_equal(rfc3339_days_from_civil(y, m, d), days);
    assert_int_equal((int64_t)timegm(&tm), secs);
}

static void test_civil_against_libc(void **state)
{
    (void)state;
    /* Every day from about 1150 to 2790, then random days over +-5 million
     * years (negative years included). */
    for (int64_t days = -300000; days <= 300000; days++)
        check_civil(days);
    for (int i = 0; i < 200000; i++)
        check_civil((int64_t)(rng() % 3650000000ULL) - 1825000000LL);
}

static void test_civil_known_days(void **state)
{
    (void)state;
    assert_int_equal(rfc3339_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(rfc3339_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(rfc3339_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(rfc3339_days_from_civil(0, 1, 1), -719528);
    assert_int_equal(rfc3339_days_from_civil(-1, 12, 31), -719529);
    int64_t y;
    unsigned m, d;
    rfc3339_civil_from_days(-719529, &y, &m, &d);
    assert_true(y == -1 && m == 12 && d == 31);
    rfc3339_civil_from_days(11016, &y, &m, &d);
    assert_true(y == 2000 && m == 2 && d == 29);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_parse_respects_len),
        cmocka_unit_test(test_error_message),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_every_day),
        cmocka_unit_test(test_format_cached),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_text_order),
        cmocka_unit_test(test_civil_against_libc),
        cmocka_unit_test(test_civil_known_days),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
