/*
 * test_cron.c -- cron definitions: parse errors, fire-time tables, "@every"
 * anchoring, and next-fire sweeps checked against independent oracles:
 * brute force over UTC minutes for the field logic, and glibc's
 * localtime_r around daylight-saving changes for the zone logic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "time/cron.h"
#include "time/tz.h"

#define NS NTIME_NS_PER_S

/* ntime of a UTC "YYYY-MM-DD HH:MM:SS". */
static ntime_t utc(const char *s)
{
    struct tm tm = {0};
    int n = sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec);
    assert_int_equal(n, 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (ntime_t)timegm(&tm) * NS;
}

/* A time for messages; one static buffer per slot so two fit in a line. */
static const char *show(ntime_t t, int slot)
{
    static char buf[2][48];
    if (t == NTIME_MAX)
        return "NTIME_MAX";
    time_t s = (time_t)(t / NS - (t % NS < 0));
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(buf[slot], sizeof buf[slot], "%04d-%02d-%02d %02d:%02d:%02d+%09lldns", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)((t % NS + NS) % NS));
    return buf[slot];
}

static const tz_t *zone(const char *name)
{
    char err[256];
    const tz_t *z = name ? tz_get(name, strlen(name), err, sizeof err) : tz_utc();
    if (!z)
        fail_msg("%s: %s", name, err);
    return z;
}

static cron_t *parse_in(const char *spec, const char *zone_name, ntime_t created_at)
{
    char err[256] = "";
    cron_t *c = cron_parse(spec, strlen(spec), created_at, zone(zone_name), err, sizeof err);
    if (!c)
        fail_msg("cron_parse(\"%s\"): %s", spec, err);
    return c;
}

static void expect_next(const cron_t *c, const char *spec, ntime_t after, ntime_t want)
{
    ntime_t got = cron_next(c, after);
    if (got != want)
        fail_msg("\"%s\" after %s: %s", spec, show(after, 0), show(got, 1));
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */
/* ------------------------------------------------------------------------ */

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *want; /* want: a part of the message */
    } cases[] = {
        {"", "cron definition is empty"},
        {"  \t ", "cron definition is empty"},
        {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4"},
        {"* * * * * *", "found 6"},
        {"*", "found 1"},
        {"61 * * * *", "cron definition \"61 * * * *\": minute 61 out of range 0-59"},
        {"* 24 * * *", "hour 24 out of range 0-23"},
        {"* * 0 * *", "day of month 0 out of range 1-31"},
        {"* * 32 * *", "day of month 32 out of range 1-31"},
        {"* * * 13 *", "month 13 out of range 1-12"},
        {"* * * 0 *", "month 0 out of range 1-12"},
        {"* * * * 8", "day of week 8 out of range 0-7"},
        {"0-60 * * * *", "minute 60 out of range 0-59"},
        {"*/0 * * * *", "minute step \"0\" is not a positive number"},
        {"*/x * * * *", "minute step \"x\" is not a positive number"},
        {"* */ * * *", "hour step \"\" is not a positive number"},
        {"1/2/3 * * * *", "more than one '/'"},
        {"1-2-3 * * * *", "more than one '-'"},
        {"5-3 * * * *", "minute range \"5-3\" runs backwards"},
        {"* * * * FRI-MON", "day of week range \"FRI-MON\" runs backwards"},
        {"* * * FOO *", "month \"FOO\" is not a number or a name (JAN-DEC)"},
        {"* * * * FUNDAY", "day of week \"FUNDAY\" is not a number or a name (SUN-SAT)"},
        {"* * * * MONDAY", "day of week \"MONDAY\""},
        {"* * MON * *", "day of month \"MON\" is not a number"},
        {"-1 * * * *", "minute \"\" is not a number"},
        {"99999999999 * * * *", "minute 99999999999 out of range 0-59"},
        {"CRON_TZ=Mars/Olympus * * * * *", "unknown time zone \"Mars/Olympus\""},
        {"TZ=Foo/Bar 0 0 * * *", "unknown time zone \"Foo/Bar\""},
        {"TZ=../etc/passwd * * * * *", "invalid time zone name"},
        {"CRON_TZ=/etc/localtime * * * * *", "invalid time zone name"},
        {"CRON_TZ=Europe/Berlin", "a space and a schedule must follow the time zone"},
        {"CRON_TZ=Europe/Berlin 61 * * * *", "minute 61 out of range"},
        {"@every", "\"@every\" takes one space and then a duration such as \"1h30m\""},
        {"@every   ", "takes one space"},
        {"@every  2s", "takes one space"},
        {"@every 876000h1s", "@every is at most 100 years (876000h)"},
        {"@every 2562047h", "at most 100 years"},
        {" @daily", "a descriptor such as \"@daily\" must be the whole definition, with no space before it"},
        {"@daily ", "\"@daily\" must be the whole definition, with no space after it"},
        {"@Hourly", "descriptors are lower case: \"@hourly\""},
        {"cron_tz=UTC 0 0 * * *", "the zone prefix is written in upper case: \"CRON_TZ=\""},
        {"Tz=UTC 0 0 * * *", "upper case: \"TZ=\""},
        {"CRON_TZ=UTC\t0 0 * * *", "invalid time zone name \"UTC?0\""},
        {"CRON_TZ=UTC ", "a schedule must follow the time zone"},
        {"0 0 * * * *", "found 6; there is no seconds field"},
        {"*/-1 * * * *", "minute step \"-1\" is not a positive number"},
        {"* * * * 7/2", "day of week range"},
        {"0 0 1 * FRIDAY", "day of week \"FRIDAY\" is not a number or a name (SUN-SAT)"},
        {"@every 5x", "5x"},
        {"@everyday", "unknown descriptor \"@everyday\""},
        {"@fortnightly", "unknown descriptor \"@fortnightly\" (expected @yearly"},
        {"@daily 5", "unknown descriptor"},
        {"@DAILY", "descriptors are lower case"},
        {"@", "unknown descriptor"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        cron_t *c = cron_parse(cases[i].spec, strlen(cases[i].spec), 0, tz_utc(), err, sizeof err);
        if (c) {
            cron_free(c);
            fail_msg("\"%s\" parsed", cases[i].spec);
        }
        if (!strstr(err, cases[i].want) || strchr(err, '\n'))
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", cases[i].spec, err, cases[i].want);
        int blank = cases[i].spec[strspn(cases[i].spec, " \t")] == '\0';
        if (!blank && strncmp(err, "cron definition \"", 17) != 0)
            fail_msg("\"%s\": message \"%s\" does not name the definition", cases[i].spec, err);
    }
}

/* The spec need not be NUL-terminated, and a long one is echoed cut. */
static void test_parse_lengths(void **state)
{
    (void)state;
    char err[512];
    cron_t *c = cron_parse("0 0 * * *garbage", 9, 0, NULL, err, sizeof err);
    assert_non_null(c);
    expect_next(c, "0 0 * * *", utc("2024-01-01 12:00:00"), utc("2024-01-02 00:00:00"));
    cron_free(c);
    char spec[400];
    memset(spec, '1', sizeof spec - 1);
    spec[sizeof spec - 1] = '\0';
    assert_null(cron_parse(spec, strlen(spec), 0, NULL, err, sizeof err));
    assert_non_null(strstr(err, "...\": expected 5 fields"));
    assert_null(cron_parse("61 * * * *", 10, 0, NULL, err, 8)); /* a short buffer is cut, not overrun */
    assert_string_equal(err, "cron de");
    cron_free(NULL);
}

static void test_parse_accepts(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "? ? ? ? ?", "0 0 * JAN-MAR mon-FRI", "0 0 1,15 * SUN,7", "*/1 * * * *", "0 0 * * 7",
        "  0 0 * * *  ", "\t0\t0\t*\t*\t*", "TZ=UTC 0 0 * * *", "CRON_TZ=Local 0 0 * * *",
        "CRON_TZ=Europe/Berlin   0 0 * * *", "0-59/60 0-23/24 1-31/31 1-12/12 0-7/7", "00 05 01 01 0",
        "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
        "@every 1h30m", "@every 1s", "CRON_TZ=Europe/Berlin @every 1s", "* * * Jan-Dec/2 *",
        /* robfig takes these too */
        "1,,2 * * * *", "1, * * * *", ", * * * *", "+1 * * * *", "0005 * * * *", "*-5 * * * *", "?-x-y * * * *",
        "CRON_TZ= 0 0 * * *", "CRON_TZ=UTC  @daily \t", "@every 500ms", "@every 0s",
        "@every -5s", "@every 876000h", "0\xc2\xa0" "0 * * *", "0\xe3\x80\x80" "0 * * FR\xc4\xb0", "* * * * */7",
        "TZ= \xe2\x81\x9f@every 0", /* the schedule after a zone is trimmed of Unicode spaces */
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        cron_free(parse_in(specs[i], NULL, 0));
}

/* ------------------------------------------------------------------------ */
/* Fire-time tables                                                         */
/* ------------------------------------------------------------------------ */

/* Each row: the spec, the default zone (NULL: UTC), the start, then the
 * successive fires, each being cron_next of the one before. */
static const struct next_case {
    const char *spec, *zone, *after;
    const char *fires[6];
} NEXT_CASES[] = {
    /* plain UTC */
    {"* * * * *", NULL, "2024-01-01 00:00:00", {"2024-01-01 00:01:00", "2024-01-01 00:02:00"}},
    {"* * * * *", NULL, "2024-01-01 00:00:59", {"2024-01-01 00:01:00"}},
    {"0 * * * *", NULL, "2024-01-01 00:00:00", {"2024-01-01 01:00:00", "2024-01-01 02:00:00"}},
    {"5/15 * * * *", NULL, "2024-01-01 00:00:00",
     {"2024-01-01 00:05:00", "2024-01-01 00:20:00", "2024-01-01 00:35:00", "2024-01-01 00:50:00",
      "2024-01-01 01:05:00"}},
    {"10-40/10 * * * *", NULL, "2024-01-01 00:00:00",
     {"2024-01-01 00:10:00", "2024-01-01 00:20:00", "2024-01-01 00:30:00", "2024-01-01 00:40:00",
      "2024-01-01 01:10:00"}},
    {"0 0 1 1 *", NULL, "2024-06-01 00:00:00", {"2025-01-01 00:00:00", "2026-01-01 00:00:00"}},
    {"@yearly", NULL, "2024-06-01 00:00:00", {"2025-01-01 00:00:00"}},
    {"@annually", NULL, "2099-12-31 23:59:59", {"2100-01-01 00:00:00"}},
    {"@monthly", NULL, "2024-01-31 12:00:00", {"2024-02-01 00:00:00", "2024-03-01 00:00:00"}},
    {"@weekly", NULL, "2024-01-01 00:00:00", {"2024-01-07 00:00:00", "2024-01-14 00:00:00"}},
    {"@daily", NULL, "2024-02-28 00:00:00", {"2024-02-29 00:00:00", "2024-03-01 00:00:00"}},
    {"@midnight", NULL, "2023-12-31 23:59:59", {"2024-01-01 00:00:00"}},
    {"@hourly", NULL, "2024-01-01 23:30:00", {"2024-01-02 00:00:00", "2024-01-02 01:00:00"}},
    {"0 0 29 2 *", NULL, "2024-03-01 00:00:00", {"2028-02-29 00:00:00", "2032-02-29 00:00:00"}},
    {"0 0 29 2 *", NULL, "2095-03-01 00:00:00", {"2096-02-29 00:00:00"}},
    {"0 12 * * MON-FRI", NULL, "2024-01-05 13:00:00", {"2024-01-08 12:00:00", "2024-01-09 12:00:00"}},
    {"0 0 * * 7", NULL, "2024-01-01 00:00:00", {"2024-01-07 00:00:00", "2024-01-14 00:00:00"}},
    {"0 0 * * 5-7", NULL, "2024-01-01 00:00:00",
     {"2024-01-05 00:00:00", "2024-01-06 00:00:00", "2024-01-07 00:00:00", "2024-01-12 00:00:00"}},
    {"30 23 31 12 *", NULL, "2024-12-31 23:30:00", {"2025-12-31 23:30:00"}},
    {"0 0 31 * *", NULL, "2024-01-31 00:00:00",
     {"2024-03-31 00:00:00", "2024-05-31 00:00:00", "2024-07-31 00:00:00", "2024-08-31 00:00:00"}},
    {"0 9 * JAN,jul *", NULL, "2024-01-31 09:00:00", {"2024-07-01 09:00:00"}},
    {"0 0 * * *", NULL, "1969-12-31 12:00:00", {"1970-01-01 00:00:00"}},
    {"0 0 * * *", NULL, "1960-06-01 00:00:00", {"1960-06-02 00:00:00"}},
    /* day of month OR day of week, both restricted */
    {"0 0 13 * 5", NULL, "2024-01-01 00:00:00",
     {"2024-01-05 00:00:00", "2024-01-12 00:00:00", "2024-01-13 00:00:00", "2024-01-19 00:00:00"}},
    {"0 0 1 * MON", NULL, "2024-01-22 00:00:00",
     {"2024-01-29 00:00:00", "2024-02-01 00:00:00", "2024-02-05 00:00:00"}},
    /* robfig's rule: "*" with a step above 1 is restricted, so OR */
    {"0 0 */10 * 1", NULL, "2024-01-01 00:00:00",
     {"2024-01-08 00:00:00", "2024-01-11 00:00:00", "2024-01-15 00:00:00", "2024-01-21 00:00:00"}},
    {"0 0 */2 * MON", NULL, "2024-01-01 00:00:00",
     {"2024-01-03 00:00:00", "2024-01-05 00:00:00", "2024-01-07 00:00:00", "2024-01-08 00:00:00",
      "2024-01-09 00:00:00"}},
    /* ... while "*" with a step of 1 and "?" are not: AND */
    {"0 0 */1 * 1", NULL, "2024-01-01 00:00:00", {"2024-01-08 00:00:00", "2024-01-15 00:00:00"}},
    {"0 0 1,? * 1", NULL, "2024-01-01 00:00:00", {"2024-01-08 00:00:00", "2024-01-15 00:00:00"}},
    /* ... AND when either is '*' or '?' */
    {"0 0 13 * *", NULL, "2024-01-01 00:00:00", {"2024-01-13 00:00:00", "2024-02-13 00:00:00"}},
    {"0 0 * * 5", NULL, "2024-01-01 00:00:00", {"2024-01-05 00:00:00", "2024-01-12 00:00:00"}},
    {"0 0 ? * 5", NULL, "2024-01-01 00:00:00", {"2024-01-05 00:00:00", "2024-01-12 00:00:00"}},
    {"0 0 13 * ?", NULL, "2024-01-01 00:00:00", {"2024-01-13 00:00:00", "2024-02-13 00:00:00"}},
    {"0 0 13 * */1", NULL, "2024-01-01 00:00:00", {"2024-01-13 00:00:00", "2024-02-13 00:00:00"}},
    {"0 0 13 * 5", NULL, "2024-09-01 00:00:00", {"2024-09-06 00:00:00", "2024-09-13 00:00:00",
                                                 "2024-09-20 00:00:00"}},
    /* the zone: default, prefix, "Local" */
    {"0 0 * * *", "Europe/Berlin", "2024-01-01 12:00:00", {"2024-01-01 23:00:00"}},
    {"0 0 * * *", "Europe/Berlin", "2024-07-01 12:00:00", {"2024-07-01 22:00:00"}},
    {"CRON_TZ=Asia/Kolkata 0 0 * * *", "Europe/Berlin", "2024-01-01 12:00:00", {"2024-01-01 18:30:00"}},
    {"TZ=America/New_York 0 0 * * *", NULL, "2024-01-01 12:00:00", {"2024-01-02 05:00:00"}},
    {"CRON_TZ=Local 0 0 * * *", "Europe/Berlin", "2024-01-01 12:00:00", {"2024-01-01 23:00:00"}},
    {"CRON_TZ=UTC 0 0 * * *", "Europe/Berlin", "2024-01-01 12:00:00", {"2024-01-02 00:00:00"}},
    /* spring forward: a time in the gap does not fire that day */
    {"30 2 * * *", "Europe/Berlin", "2024-03-29 12:00:00",
     {"2024-03-30 01:30:00", "2024-04-01 00:30:00", "2024-04-02 00:30:00"}},
    {"0 3 * * *", "Europe/Berlin", "2024-03-30 12:00:00", {"2024-03-31 01:00:00"}},
    {"59 1 * * *", "Europe/Berlin", "2024-03-30 12:00:00", {"2024-03-31 00:59:00"}},
    {"30 2 * * *", "America/New_York", "2024-03-09 12:00:00", {"2024-03-11 06:30:00"}},
    {"*/15 * * * *", "America/New_York", "2024-03-10 06:40:00",
     {"2024-03-10 06:45:00", "2024-03-10 07:00:00", "2024-03-10 07:15:00"}},
    {"15 2 * * *", "Australia/Lord_Howe", "2024-10-04 12:00:00",
     {"2024-10-04 15:45:00", "2024-10-06 15:15:00"}}, /* 02:15 does not exist on Oct 6 */
    {"30 2 * * *", "Australia/Lord_Howe", "2024-10-04 12:00:00",
     {"2024-10-04 16:00:00", "2024-10-05 15:30:00", "2024-10-06 15:30:00"}}, /* 02:30 does */
    {"30 2 * * *", "America/Sao_Paulo", "2030-02-15 00:00:00",
     {"2030-02-15 05:30:00", "2030-02-16 05:30:00"}},
    /* fall back: a repeated time fires once, at its first occurrence */
    {"30 1 * * *", "America/New_York", "2024-11-02 06:00:00",
     {"2024-11-03 05:30:00", "2024-11-04 06:30:00"}},
    {"30 1 * * *", "America/New_York", "2024-11-03 06:00:00", {"2024-11-04 06:30:00"}},
    {"*/15 * * * *", "America/New_York", "2024-11-03 05:30:00",
     {"2024-11-03 05:45:00", "2024-11-03 07:00:00", "2024-11-03 07:15:00"}},
    {"*/15 * * * *", "America/New_York", "2024-11-03 06:10:00", /* inside the second 01:xx */
     {"2024-11-03 07:00:00"}},
    {"30 2 * * *", "Europe/Berlin", "2024-10-26 12:00:00", {"2024-10-27 00:30:00", "2024-10-28 01:30:00"}},
    {"45 1 * * *", "Australia/Lord_Howe", "2024-04-06 12:00:00",
     {"2024-04-06 14:45:00", "2024-04-07 15:15:00"}},
    /* robfig's walk at odd changes (checked against robfig by tests/crondiff):
     * Lord Howe's half-hour fall back: the hour step lands on 02:30 after
     * the repeated half hour, so 02:15 (once, LHST) does not fire that day */
    {"15 2 * * *", "Australia/Lord_Howe", "2024-04-05 15:15:00", {"2024-04-07 15:45:00"}},
    /* Chatham's 03:45 -> 02:45: robfig answers 02:45 CHAST, before the time
     * asked from; passed over, then the first 03:45 */
    {"45/7 3-22 * * 0", "Pacific/Chatham", "2028-04-01 13:30:00",
     {"2028-04-01 15:00:00", "2028-04-01 15:07:00", "2028-04-01 15:14:00"}},
    {"45/7 3-22 * * 0", "Pacific/Chatham", "2028-04-01 14:00:01", {"2028-04-01 15:00:00"}},
    /* Santiago's change at midnight: from 23:39 the hour step runs past the
     * missing 00:00 into 01:00 of the 3rd and robfig answers it, although
     * the day is the 2nd's; from the last second before the change the day
     * step is taken and passes over it to the next year */
    {"0 1 2 9 *", "America/Santiago", "2028-09-03 03:39:00", {"2028-09-03 04:00:00", "2029-09-02 04:00:00"}},
    {"0 1 2 9 *", "America/Santiago", "2028-09-03 03:59:59", {"2029-09-02 04:00:00"}},
    /* a day without a midnight: no fire that day */
    {"0 0 * * *", "America/Santiago", "2024-09-07 12:00:00", {"2024-09-09 03:00:00", "2024-09-10 03:00:00"}},
    {"30 0 * * *", "America/Havana", "2024-03-09 12:00:00", {"2024-03-11 04:30:00"}},
    /* no daylight saving */
    {"30 2 * * *", "Asia/Kolkata", "2024-03-30 00:00:00", {"2024-03-30 21:00:00", "2024-03-31 21:00:00"}},
    {"30 2 * * *", "Asia/Kolkata", "2024-10-26 00:00:00", {"2024-10-26 21:00:00", "2024-10-27 21:00:00"}},
    /* nothing within five years */
    {"0 0 30 2 *", NULL, "2024-01-01 00:00:00", {"-"}},
    {"0 0 31 4,6,9,11 *", NULL, "2024-01-01 00:00:00", {"-"}},
    {"0 0 29 2 *", NULL, "2097-03-01 00:00:00", {"-"}}, /* 2100 is no leap year; 2104 is too far */
    {"0 0 29 2 *", "Europe/Berlin", "2096-03-01 00:00:00", {"-"}},
};

static void test_next_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof NEXT_CASES / sizeof NEXT_CASES[0]; i++) {
        const struct next_case *k = &NEXT_CASES[i];
        cron_t *c = parse_in(k->spec, k->zone, 0);
        ntime_t t = utc(k->after);
        for (int j = 0; j < 6 && k->fires[j]; j++) {
            ntime_t want = strcmp(k->fires[j], "-") == 0 ? NTIME_MAX : utc(k->fires[j]);
            expect_next(c, k->spec, t, want);
            expect_next(c, k->spec, t + 1, want); /* a nanosecond later changes nothing */
            t = want;
        }
        cron_free(c);
    }
}

/* "@every" as robfig's Every: d cut to whole seconds, at least 1s; fires
 * at created_at's whole second + k*d, in no zone, the same fire never
 * twice. */
static void test_every(void **state)
{
    (void)state;
    ntime_t created = utc("2024-01-01 00:00:00") + 123, base = utc("2024-01-01 00:00:00");
    cron_t *c = parse_in("@every 2.9s", "Europe/Berlin", created);
    const ntime_t d = 2 * NS;
    expect_next(c, "@every 2.9s", created, base + d);
    expect_next(c, "@every 2.9s", base + d, base + 2 * d);
    expect_next(c, "@every 2.9s", base + d - 1, base + d);
    expect_next(c, "@every 2.9s", created - 10 * NS, base + d);
    expect_next(c, "@every 2.9s", INT64_MIN, base + d);
    expect_next(c, "@every 2.9s", base + 1000 * NS + 7, base + 501 * d);
    expect_next(c, "@every 2.9s", NTIME_MAX - 1, NTIME_MAX);
    cron_free(c);

    static const char *const one_second[] = {"@every 1s", "@every 1.999s", "@every 500ms", "@every 0s",
                                             "@every -1s", "@every 1ns"};
    for (size_t i = 0; i < sizeof one_second / sizeof one_second[0]; i++) {
        c = parse_in(one_second[i], NULL, created);
        expect_next(c, one_second[i], created, base + NS);
        expect_next(c, one_second[i], base + NS, base + 2 * NS);
        cron_free(c);
    }

    c = parse_in("CRON_TZ=America/New_York @every 1h30m", NULL, created);
    expect_next(c, "@every 1h30m", created, base + 5400 * NS);
    /* 307 days and 6 hours after created_at is a whole number of 90
     * minutes; New York's change that morning does not matter. */
    expect_next(c, "@every 1h30m", utc("2024-11-03 05:59:00"), utc("2024-11-03 06:00:00"));
    cron_free(c);

    c = parse_in("@every 876000h", NULL, created);
    expect_next(c, "@every 876000h", created, utc("2123-12-08 00:00:00"));
    expect_next(c, "@every 876000h", utc("2123-12-08 00:00:00"), utc("2223-11-14 00:00:00"));
    expect_next(c, "@every 876000h", utc("2223-11-14 00:00:00"), NTIME_MAX); /* 2323 does not fit */
    cron_free(c);
    c = parse_in("@every 1s", NULL, NTIME_MAX - NS / 2);
    expect_next(c, "@every 1s", 0, NTIME_MAX);
    cron_free(c);
}

/* ------------------------------------------------------------------------ */
/* Sweeps against oracles                                                   */
/* ------------------------------------------------------------------------ */

/* A comma list of plain numbers, or "*", as a bit mask: a deliberately
 * tiny stand-in for the real parser, so the oracle does not share its
 * bugs. */
static uint64_t mask_of(const char *list, int min, int max)
{
    uint64_t m = 0;
    if (strcmp(list, "*") == 0) {
        for (int v = min; v <= max; v++)
            m |= 1ULL << v;
        return m;
    }
    for (const char *p = list; *p;) {
        char *end;
        m |= 1ULL << strtol(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
    return m;
}

struct oracle_spec {
    const char *spec;
    const char *fields[5]; /* minute hour dom month dow, as comma lists or "*" */
    int or_days;           /* day of month OR day of week */
};

static int oracle_matches(const struct oracle_spec *o, const uint64_t masks[5], const struct tm *tm)
{
    int v[5] = {tm->tm_min, tm->tm_hour, tm->tm_mday, tm->tm_mon + 1, tm->tm_wday};
    int ok[5];
    for (int i = 0; i < 5; i++)
        ok[i] = (int)(masks[i] >> v[i] & 1);
    int days = o->or_days ? ok[2] || ok[4] : ok[2] && ok[4];
    return ok[0] && ok[1] && ok[3] && days;
}

/* Fires found by walking every minute of (from, to) through gmtime_r or
 * localtime_r (under the TZ already set), keeping a local minute only the
 * first time the clock shows it. Returns how many, at most max. */
static int oracle_fires(const struct oracle_spec *o, int local, ntime_t from, ntime_t to, ntime_t *out,
                        int max)
{
    static const int lo[5] = {0, 0, 1, 1, 0}, hi[5] = {59, 23, 31, 12, 6};
    uint64_t masks[5];
    int n = 0;
    int64_t seen = INT64_MIN;
    for (int i = 0; i < 5; i++)
        masks[i] = mask_of(o->fields[i], lo[i], hi[i]);
    assert_true(from % (60 * NS) == 0);
    for (int64_t s = from / NS + 60; s < to / NS && n < max; s += 60) {
        time_t tt = (time_t)s;
        struct tm tm;
        if (local)
            localtime_r(&tt, &tm);
        else
            gmtime_r(&tt, &tm);
        int64_t wall = s + tm.tm_gmtoff;
        if (wall <= seen)
            continue; /* the second pass through a fall-back hour */
        seen = wall;
        if (oracle_matches(o, masks, &tm))
            out[n++] = (ntime_t)s * NS;
    }
    return n;
}

/* cron_next agrees with the oracle's list: chained from the start, and
 * from points scattered between fires (odd seconds and nanoseconds). */
static void check_against(const cron_t *c, const char *what, ntime_t from, const ntime_t *fires, int n)
{
    ntime_t t = from;
    for (int i = 0; i < n; i++) {
        ntime_t got = cron_next(c, t);
        if (got != fires[i])
            fail_msg("%s: after %s got %s", what, show(t, 0), show(got, 1));
        t = got;
    }
    int i = 0;
    for (ntime_t p = from; n > 0 && p < fires[n - 1]; p += 7 * 60 * NS + 13 * NS + 500000001) {
        while (fires[i] <= p)
            i++;
        ntime_t got = cron_next(c, p);
        if (got != fires[i])
            fail_msg("%s: after %s got %s", what, show(p, 0), show(got, 1));
    }
}

static const struct oracle_spec UTC_SPECS[] = {
    {"0 0 13 * 5", {"0", "0", "13", "*", "5"}, 1},
    {"*/20 1-3 * * *", {"0,20,40", "1,2,3", "*", "*", "*"}, 0},
    {"15 10 1,15 * MON", {"15", "10", "1,15", "*", "1"}, 1},
    {"0 12 * FEB sat,SUN", {"0", "12", "*", "2", "0,6"}, 0},
    {"5/15 */6 10-20/5 * *", {"5,20,35,50", "0,6,12,18", "10,15,20", "*", "*"}, 0},
    {"0 0 */10 * 1", {"0", "0", "1,11,21,31", "*", "1"}, 0},
    {"0 0 29 2 *", {"0", "0", "29", "2", "*"}, 0},
    {"@weekly", {"0", "0", "*", "*", "0"}, 0},
    {"59 23 * JAN,MAR 0,7", {"59", "23", "*", "1,3", "0"}, 0},
    {"? 0 ? ? ?", {"*", "0", "*", "*", "*"}, 0},
};

/* The field logic, by brute force over every UTC minute of ten weeks. */
static void test_sweep_utc(void **state)
{
    (void)state;
    static ntime_t fires[20000];
    ntime_t from = utc("2023-12-31 12:00:00"), to = utc("2024-03-10 00:00:00");
    for (size_t i = 0; i < sizeof UTC_SPECS / sizeof UTC_SPECS[0]; i++) {
        int n = oracle_fires(&UTC_SPECS[i], 0, from, to, fires, 20000);
        assert_true(n > 0 && n < 20000);
        cron_t *c = parse_in(UTC_SPECS[i].spec, NULL, 0);
        check_against(c, UTC_SPECS[i].spec, from, fires, n);
        cron_free(c);
    }
}

static const struct oracle_spec DST_SPECS[] = {
    {"*/15 * * * *", {"0,15,30,45", "*", "*", "*", "*"}, 0},
    {"30 2 * * *", {"30", "2", "*", "*", "*"}, 0},
    {"30 1 * * *", {"30", "1", "*", "*", "*"}, 0},
    {"15 2 * * *", {"15", "2", "*", "*", "*"}, 0},
    {"45 1 * * *", {"45", "1", "*", "*", "*"}, 0},
    {"* 2 * * *", {"*", "2", "*", "*", "*"}, 0},
    {"0 * * * *", {"0", "*", "*", "*", "*"}, 0},
    {"0,30 0-3 * * *", {"0,30", "0,1,2,3", "*", "*", "*"}, 0},
    {"59 23 * * *", {"59", "23", "*", "*", "*"}, 0},
    {"0 0 * * SUN", {"0", "0", "*", "*", "0"}, 0},
};

/* Each zone with a few UTC instants near its changes (or anywhere, for a
 * zone without them); the sweep covers two days either side. The oracle
 * agrees with robfig where changes move whole hours away from midnight;
 * the other zones are rows of NEXT_CASES and tests/crondiff's. */
static const struct {
    const char *zone;
    const char *near[4];
} DST_WINDOWS[] = {
    {"Europe/Berlin",
     {"2024-03-31 01:00:00", "2024-10-27 01:00:00", "2100-03-28 01:00:00", "2100-10-31 01:00:00"}},
    {"America/New_York",
     {"2024-03-10 07:00:00", "2024-11-03 06:00:00", "2075-03-10 07:00:00", "2075-11-03 06:00:00"}},
    {"America/Sao_Paulo", {"2018-11-04 03:00:00", "2019-02-17 02:00:00", "2024-06-01 00:00:00"}},
    {"Asia/Kolkata", {"2024-03-31 00:00:00", "1942-09-01 00:00:00"}},
    {"UTC", {"2024-03-31 00:00:00"}},
};

static void test_sweep_dst(void **state)
{
    (void)state;
    static ntime_t fires[2000];
    for (size_t z = 0; z < sizeof DST_WINDOWS / sizeof DST_WINDOWS[0]; z++) {
        setenv("TZ", DST_WINDOWS[z].zone, 1);
        tzset();
        for (int w = 0; w < 4 && DST_WINDOWS[z].near[w]; w++) {
            ntime_t mid = utc(DST_WINDOWS[z].near[w]), from = mid - 2 * 86400 * NS, to = mid + 2 * 86400 * NS;
            for (size_t i = 0; i < sizeof DST_SPECS / sizeof DST_SPECS[0]; i++) {
                char what[160];
                int n = oracle_fires(&DST_SPECS[i], 1, from, to, fires, 2000);
                cron_t *c = parse_in(DST_SPECS[i].spec, DST_WINDOWS[z].zone, 0);
                snprintf(what, sizeof what, "\"%s\" in %s near %s", DST_SPECS[i].spec, DST_WINDOWS[z].zone,
                         DST_WINDOWS[z].near[w]);
                check_against(c, what, from, fires, n);
                cron_free(c);
            }
        }
    }
    unsetenv("TZ");
    tzset();
}

/* Never early and never the same fire twice: for pseudo-random instants
 * t, f = next(t) > t, next(f) > f, and every instant in [t, f) leads to f. */
static void test_never_early(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "* * * * *", "*/15 * * * *", "30 2 * * *", "30 1 * * *", "0 0 13 * 5", "0 0 29 2 *",
        "CRON_TZ=America/New_York */15 * * * *", "CRON_TZ=Europe/Berlin 30 2 * * *",
        "CRON_TZ=Australia/Lord_Howe 0,15,30,45 1-2 * * *", "CRON_TZ=Asia/Kolkata 0 0 * * *", "@every 7s",
        "@every 1.000000001s",
    };
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        cron_t *c = parse_in(specs[i], NULL, utc("2000-01-01 00:00:00") + 17);
        for (int k = 0; k < 2000; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            /* 1970..2090: "0 0 29 2 *" always has a fire within five years */
            ntime_t t = (ntime_t)(seed >> 2) % (120LL * 365 * 86400 * NS);
            ntime_t f = cron_next(c, t);
            if (f <= t || f == NTIME_MAX)
                fail_msg("\"%s\" after %s: %s", specs[i], show(t, 0), show(f, 1));
            ntime_t g = cron_next(c, f);
            if (g <= f)
                fail_msg("\"%s\" after fire %s: %s", specs[i], show(f, 0), show(g, 1));
            expect_next(c, specs[i], f - 1, f);
            expect_next(c, specs[i], t + (f - t) / 2, f);
        }
        cron_free(c);
    }
}

/* The ends of ntime_t: no overflow, NTIME_MAX when the next fire does not
 * fit, whole minutes before 1970. */
static void test_extremes(void **state)
{
    (void)state;
    cron_t *c = parse_in("* * * * *", NULL, 0);
    expect_next(c, "* * * * *", NTIME_MAX - 1, NTIME_MAX);
    expect_next(c, "* * * * *", NTIME_MAX, NTIME_MAX);
    ntime_t f = cron_next(c, INT64_MIN);
    assert_true(f > INT64_MIN && f % (60 * NS) == 0 && f - INT64_MIN <= 60 * NS);
    expect_next(c, "* * * * *", -1, 0);
    expect_next(c, "* * * * *", -60 * NS - 1, -60 * NS);
    cron_free(c);
    c = parse_in("CRON_TZ=Europe/Berlin 0 0 1 1 *", NULL, 0);
    expect_next(c, "0 0 1 1 *", utc("2261-06-01 00:00:00"), utc("2261-12-31 23:00:00"));
    expect_next(c, "0 0 1 1 *", utc("2262-01-01 00:00:00"), NTIME_MAX);
    cron_free(c);
}

static int cleanup(void **state)
{
    (void)state;
    tz_cleanup();
    return 0;
}

/* Found by the cron fuzzer: an error message that quoted the definition
 * cut a two-byte UTF-8 character in half, so the JSON error was invalid. */
static void test_error_message_keeps_utf8_whole(void **state)
{
    (void)state;
    char ones[160];
    memset(ones, '1', sizeof(ones));
    for (size_t pad = 0; pad < sizeof(ones); pad++) { /* the cut falls at every byte */
        char spec[200], err[512];
        int n = snprintf(spec, sizeof(spec), "@every %.*s\xd3\xae", (int)pad, ones);
        assert_null(cron_parse(spec, (size_t)n, 0, tz_utc(), err, sizeof(err)));
        for (const unsigned char *p = (const unsigned char *)err; *p; p++) {
            if (*p < 0x80)
                continue;
            assert_true(*p >= 0xc2 && *p <= 0xdf); /* only Ӯ can appear: whole */
            p++;
            assert_true((*p & 0xc0) == 0x80);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* The differential test's driver (tests/crondiff/run.py)                   */
/* ------------------------------------------------------------------------ */

/* "test_cron --diff": for each stdin line "start_ns 0x1f count 0x1f
 * definition [0x1f ...]" prints the definition's fire times as
 * tests/crondiff/robfig.go does: "E" if it is rejected, else up to count
 * times in Unix nanoseconds, each cron_next of the one before (the first of
 * start_ns, which is also the creation time), and "-" if there is no
 * further time. The default zone is the server's, tz_local(). */
static int diff_driver(void)
{
    static char line[1 << 16];
    while (fgets(line, sizeof line, stdin)) {
        char *f1 = strchr(line, '\x1f'), *f2 = f1 ? strchr(f1 + 1, '\x1f') : NULL, *end, err[512];
        if (!f2)
            return fprintf(stderr, "test_cron --diff: bad input line\n"), 2;
        end = f2 + 1 + strcspn(f2 + 1, "\x1f\n");
        ntime_t t = strtoll(line, NULL, 10);
        int count = atoi(f1 + 1);
        cron_t *c = cron_parse(f2 + 1, (size_t)(end - f2 - 1), t, tz_local(), err, sizeof err);
        if (!c) {
            puts("E");
            continue;
        }
        for (int i = 0; i < count; i++) {
            t = cron_next(c, t);
            printf(i ? " %s" : "%s", t == NTIME_MAX ? "-" : "");
            if (t == NTIME_MAX)
                break;
            printf("%lld", (long long)t);
        }
        putchar('\n');
        cron_free(c);
    }
    tz_cleanup();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--diff") == 0)
        return diff_driver();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_message_keeps_utf8_whole),
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_parse_lengths),
        cmocka_unit_test(test_parse_accepts), cmocka_unit_test(test_next_table),
        cmocka_unit_test(test_every),         cmocka_unit_test(test_sweep_utc),
        cmocka_unit_test(test_sweep_dst),     cmocka_unit_test(test_never_early),
        cmocka_unit_test(test_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup);
}
