/*
 * test_tz.c -- the TZif reader against glibc's localtime_r, hand-checked
 * gap and overlap conversions, name validation, and hand-built files.
 *
 * glibc is the oracle: setenv("TZ", name) + tzset(), then tm_gmtoff from
 * localtime_r for the same instant. Both read the same zoneinfo files, so
 * any disagreement is a bug in our reading of the file or its footer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "time/tz.h"

static const char *const ZONES[] = {
    "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
    "Asia/Kolkata",  "UTC",              "America/Sao_Paulo",
};
#define NZONES (sizeof ZONES / sizeof ZONES[0])

/* Unix time of a UTC "YYYY-MM-DD HH:MM:SS". */
static int64_t utc(const char *s)
{
    struct tm tm = {0};
    int n = sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec);
    assert_int_equal(n, 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static const tz_t *zone(const char *name)
{
    char err[256] = "";
    const tz_t *z = tz_get(name, strlen(name), err, sizeof err);
    if (!z)
        fail_msg("tz_get(%s): %s", name, err);
    return z;
}

static void oracle_use(const char *name)
{
    setenv("TZ", name, 1);
    tzset();
}

static int32_t oracle_offset(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    assert_non_null(localtime_r(&tt, &tm));
    return (int32_t)tm.tm_gmtoff;
}

static void check_offset(const char *name, const tz_t *z, int64_t t)
{
    int32_t want = oracle_offset(t), got = tz_offset_at(z, t);
    if (want != got)
        fail_msg("%s at %lld: offset %d, glibc says %d", name, (long long)t, got, want);
}

/* The first second in (lo, hi] whose offset differs from lo's. */
static int64_t oracle_bisect(int64_t lo, int64_t hi)
{
    int32_t before = oracle_offset(lo);
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (oracle_offset(mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* Walks 1900..2100 in steps just over six days (so the time of day drifts),
 * and at every change of offset finds the exact second and checks around
 * it. */
static void test_offsets_match_glibc(void **state)
{
    (void)state;
    static const int64_t around[] = {-3601, -3600, -1801, -1800, -61, -1, 0, 1, 59, 1800, 3600};
    for (size_t i = 0; i < NZONES; i++) {
        const tz_t *z = zone(ZONES[i]);
        int changes = 0;
        oracle_use(ZONES[i]);
        int64_t end = utc("2100-12-31 23:59:59"), step = 6 * 86400 + 4 * 3600 + 17 * 60 + 13;
        for (int64_t t = utc("1900-01-01 00:00:00"); t < end; t += step) {
            check_offset(ZONES[i], z, t);
            if (oracle_offset(t) == oracle_offset(t + step))
                continue;
            int64_t at = oracle_bisect(t, t + step);
            changes++;
            for (size_t k = 0; k < sizeof around / sizeof around[0]; k++)
                check_offset(ZONES[i], z, at + around[k]);
        }
        if (strcmp(ZONES[i], "Europe/Berlin") == 0 || strcmp(ZONES[i], "America/New_York") == 0 ||
            strcmp(ZONES[i], "Australia/Lord_Howe") == 0)
            assert_true(changes > 100); /* the walk really crossed the footer years */
    }
    unsetenv("TZ");
    tzset();
}

/* Offsets written down by hand, so a broken oracle set-up cannot hide a bug. */
static void test_offsets_known(void **state)
{
    (void)state;
    static const struct {
        const char *zone, *at;
        int32_t off;
    } cases[] = {
        {"Europe/Berlin", "2024-01-15 12:00:00", 3600},
        {"Europe/Berlin", "2024-07-01 12:00:00", 7200},
        {"Europe/Berlin", "2024-03-31 00:59:59", 3600},
        {"Europe/Berlin", "2024-03-31 01:00:00", 7200},
        {"Europe/Berlin", "2100-07-01 00:00:00", 7200}, /* footer rule */
        {"America/New_York", "2024-11-03 05:59:59", -14400},
        {"America/New_York", "2024-11-03 06:00:00", -18000},
        {"America/New_York", "2099-12-31 00:00:00", -18000},
        {"Australia/Lord_Howe", "2024-01-01 00:00:00", 39600},
        {"Australia/Lord_Howe", "2024-07-01 00:00:00", 37800},
        {"Asia/Kolkata", "2024-07-01 00:00:00", 19800},
        {"Asia/Kolkata", "2090-01-01 00:00:00", 19800},
        {"America/Sao_Paulo", "2018-01-01 00:00:00", -7200},
        {"America/Sao_Paulo", "2024-01-01 00:00:00", -10800},
        {"UTC", "2024-01-01 00:00:00", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t got = tz_offset_at(zone(cases[i].zone), utc(cases[i].at));
        if (got != cases[i].off)
            fail_msg("%s at %s: %d, want %d", cases[i].zone, cases[i].at, got, cases[i].off);
    }
}

/* Local wall-clock times in gaps (0 answers), overlaps (2) and ordinary
 * stretches (1), including a 30-minute change and dates only the footer
 * rule covers. */
static void test_local_to_utc_table(void **state)
{
    (void)state;
    static const struct {
        const char *zone, *local;
        int n;
        const char *want[2];
    } cases[] = {
        {"Europe/Berlin", "2024-03-31 02:30:00", 0, {0}},
        {"Europe/Berlin", "2024-03-31 02:00:00", 0, {0}},
        {"Europe/Berlin", "2024-03-31 01:59:59", 1, {"2024-03-31 00:59:59"}},
        {"Europe/Berlin", "2024-03-31 03:00:00", 1, {"2024-03-31 01:00:00"}},
        {"Europe/Berlin", "2024-10-27 02:00:00", 2, {"2024-10-27 00:00:00", "2024-10-27 01:00:00"}},
        {"Europe/Berlin", "2024-10-27 02:30:00", 2, {"2024-10-27 00:30:00", "2024-10-27 01:30:00"}},
        {"Europe/Berlin", "2024-10-27 03:00:00", 1, {"2024-10-27 02:00:00"}},
        {"Europe/Berlin", "2100-03-28 02:30:00", 0, {0}},
        {"Europe/Berlin", "2100-10-31 02:30:00", 2, {"2100-10-31 00:30:00", "2100-10-31 01:30:00"}},
        {"America/New_York", "2024-03-10 02:30:00", 0, {0}},
        {"America/New_York", "2024-11-03 00:59:00", 1, {"2024-11-03 04:59:00"}},
        {"America/New_York", "2024-11-03 01:30:00", 2, {"2024-11-03 05:30:00", "2024-11-03 06:30:00"}},
        {"Australia/Lord_Howe", "2024-10-06 02:15:00", 0, {0}},
        {"Australia/Lord_Howe", "2024-10-06 02:30:00", 1, {"2024-10-05 15:30:00"}},
        {"Australia/Lord_Howe", "2024-04-07 01:29:00", 1, {"2024-04-06 14:29:00"}},
        {"Australia/Lord_Howe", "2024-04-07 01:45:00", 2, {"2024-04-06 14:45:00", "2024-04-06 15:15:00"}},
        {"Asia/Kolkata", "2024-06-01 12:00:00", 1, {"2024-06-01 06:30:00"}},
        {"UTC", "2024-06-01 12:00:00", 1, {"2024-06-01 12:00:00"}},
        {"America/Sao_Paulo", "2018-11-04 00:30:00", 0, {0}},
        {"America/Sao_Paulo", "2019-02-16 23:30:00", 2, {"2019-02-17 01:30:00", "2019-02-17 02:30:00"}},
        {"America/Sao_Paulo", "2030-02-16 23:30:00", 1, {"2030-02-17 02:30:00"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t out[2] = {-1, -1};
        int n = tz_local_to_utc(zone(cases[i].zone), utc(cases[i].local), out);
        if (n != cases[i].n)
            fail_msg("%s %s: %d instants, want %d", cases[i].zone, cases[i].local, n, cases[i].n);
        for (int k = 0; k < n; k++)
            if (out[k] != utc(cases[i].want[k]))
                fail_msg("%s %s: instant %d is %lld, want %s", cases[i].zone, cases[i].local, k,
                         (long long)out[k], cases[i].want[k]);
    }
}

/* For instants across two centuries: the local time of u converts back to
 * a set that holds u, and every member really shows that local time. */
static void test_local_to_utc_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < NZONES; i++) {
        const tz_t *z = zone(ZONES[i]);
        int64_t end = utc("2100-01-01 00:00:00");
        for (int64_t u = utc("1900-01-01 00:00:00"); u < end; u += 86400 * 3 + 3600 + 59) {
            int64_t local = u + tz_offset_at(z, u), out[2];
            int n = tz_local_to_utc(z, local, out);
            assert_in_range(n, 1, 2);
            assert_true(out[0] == u || (n == 2 && out[1] == u));
            for (int k = 0; k < n; k++)
                assert_int_equal(out[k] + tz_offset_at(z, out[k]), local);
            if (n == 2)
                assert_true(out[0] < out[1]);
        }
    }
}

static void test_invalid_names(void **state)
{
    (void)state;
    static const char *const names[] = {
        "../etc/passwd", "/etc/localtime", "", "Mars/Olympus", "Europe/../Europe/Berlin",
        "Europe//Berlin", "Europe/Berlin/", "./UTC", "Europe/Ber lin", "Europe/Berlin\n",
        "Europe", /* a directory, not a zone */
        "zone1970.tab", "Europe/Berlin\x01",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char err[256] = "";
        assert_null(tz_get(names[i], strlen(names[i]), err, sizeof err));
        if (err[0] == '\0' || strchr(err, '\n') || strchr(err, '\x01'))
            fail_msg("%s: bad message \"%s\"", names[i], err);
    }
    char err[256], longname[300];
    memset(longname, 'A', sizeof longname);
    assert_null(tz_get(longname, sizeof longname, err, sizeof err));
    assert_non_null(strstr(err, "invalid time zone name"));
    assert_null(tz_get("Mars/Olympus", 12, err, sizeof err));
    assert_string_equal(err, "unknown time zone \"Mars/Olympus\"");
}

/* A name need not be NUL-terminated; the cache hands back one zone per
 * name; "UTC" needs no file. */
static void test_cache_and_names(void **state)
{
    (void)state;
    char err[256];
    const tz_t *a = tz_get("Europe/BerlinXYZ", 13, err, sizeof err);
    const tz_t *b = zone("Europe/Berlin");
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_string_equal(tz_name(a), "Europe/Berlin");
    assert_ptr_equal(zone("UTC"), tz_utc());
    assert_string_equal(tz_name(tz_utc()), "UTC");
    assert_int_equal(tz_offset_at(tz_utc(), INT64_MIN), 0);
    assert_int_equal(tz_offset_at(tz_utc(), INT64_MAX), 0);
    int32_t far = tz_offset_at(b, INT64_MAX); /* clamped, but still CET or CEST */
    assert_true(far == 3600 || far == 7200);
    assert_int_equal(tz_offset_at(b, INT64_MIN), 3208);   /* LMT +0:53:28 */
    int64_t out[2];
    assert_int_equal(tz_local_to_utc(b, INT64_MAX, out), 0);
}

static void test_local_zone(void **state)
{
    (void)state;
    const char *saved = getenv("TZ");
    char *copy = saved ? strdup(saved) : NULL;
    unsetenv("TZ"); /* /etc/localtime, as Go's time.Local; UTC without it */
    tz_cleanup();
    if (access("/etc/localtime", F_OK) != 0)
        assert_ptr_equal(tz_local(), tz_utc());
    else
        assert_true(tz_local() != tz_utc() && tz_name(tz_local())[0] != '\0');
    setenv("TZ", "", 1);
    tz_cleanup();
    assert_ptr_equal(tz_local(), tz_utc());
    setenv("TZ", ":Asia/Kolkata", 1);
    tz_cleanup();
    assert_string_equal(tz_name(tz_local()), "Asia/Kolkata");
    assert_ptr_equal(tz_local(), tz_local());
    setenv("TZ", "/usr/share/zoneinfo/Asia/Kathmandu", 1); /* a file, named after its zone */
    tz_cleanup();
    assert_string_equal(tz_name(tz_local()), "Asia/Kathmandu");
    assert_int_equal(tz_offset_at(tz_local(), 1700000000), 5 * 3600 + 45 * 60);
    setenv("TZ", "Mars/Olympus", 1); /* warns on stderr once, then UTC */
    tz_cleanup();
    assert_ptr_equal(tz_local(), tz_utc());
    if (copy)
        setenv("TZ", copy, 1);
    else
        unsetenv("TZ");
    free(copy);
    tz_cleanup();
}

/* ------------------------------------------------------------------------ */
/* Hand-built files in a private $TZDIR                                     */
/* ------------------------------------------------------------------------ */

struct tzif_spec {
    int version;          /* 0 (version 1, 32-bit only) or '2'..'4' */
    int ntimes;
    const int64_t *times;
    const uint8_t *idx;
    int ntypes;
    const int32_t *offs;
    const char *footer;   /* version 2+ only */
};

static size_t put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
    return 4;
}

static size_t put_header(uint8_t *p, int version, uint32_t ntimes, uint32_t ntypes, uint32_t nchars)
{
    memset(p, 0, 44);
    memcpy(p, "TZif", 4);
    p[4] = (uint8_t)version;
    put32(p + 32, ntimes);
    put32(p + 36, ntypes);
    put32(p + 40, nchars);
    return 44;
}

/* Writes the data block: times, indices, types (all named "ZZZ"). */
static size_t put_block(uint8_t *p, const struct tzif_spec *s, int tsize)
{
    size_t n = 0;
    for (int i = 0; i < s->ntimes; i++) {
        if (tsize == 8)
            n += put32(p + n, (uint32_t)((uint64_t)s->times[i] >> 32));
        n += put32(p + n, (uint32_t)s->times[i]);
    }
    for (int i = 0; i < s->ntimes; i++)
        p[n++] = s->idx[i];
    for (int i = 0; i < s->ntypes; i++) {
        n += put32(p + n, (uint32_t)s->offs[i]);
        p[n++] = 0;
        p[n++] = 0;
    }
    memcpy(p + n, "ZZZ", 4);
    return n + 4;
}

static size_t tzif_build(uint8_t *buf, const struct tzif_spec *s)
{
    size_t n = 0;
    if (s->version == 0) {
        n += put_header(buf, 0, (uint32_t)s->ntimes, (uint32_t)s->ntypes, 4);
        return n + put_block(buf + n, s, 4);
    }
    static const int32_t zero = 0;
    struct tzif_spec v1 = {.ntypes = 1, .offs = &zero}; /* the minimal block zic -b slim writes */
    n += put_header(buf, s->version, 0, 1, 4);
    n += put_block(buf + n, &v1, 4);
    n += put_header(buf + n, s->version, (uint32_t)s->ntimes, (uint32_t)s->ntypes, 4);
    n += put_block(buf + n, s, 8);
    return n + (size_t)sprintf((char *)buf + n, "\n%s\n", s->footer);
}

static char tzdir[64];

/* A zone from the system directory while $TZDIR points at ours. */
static const tz_t *system_zone(const char *name)
{
    unsetenv("TZDIR");
    const tz_t *z = zone(name);
    setenv("TZDIR", tzdir, 1);
    return z;
}

static void write_zone(const char *name, const void *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tzdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_spec(const char *name, const struct tzif_spec *s)
{
    uint8_t buf[4096];
    write_zone(name, buf, tzif_build(buf, s));
}

static int tzdir_setup(void **state)
{
    (void)state;
    strcpy(tzdir, "/tmp/test_tz.XXXXXX");
    if (!mkdtemp(tzdir))
        return -1;
    char sub[96];
    snprintf(sub, sizeof sub, "%s/Test", tzdir);
    mkdir(sub, 0700);
    setenv("TZDIR", tzdir, 1);
    return 0;
}

static int tzdir_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tzdir);
    unsetenv("TZDIR");
    return system(cmd) == 0 ? 0 : -1;
}

/* Zones that are a footer rule only, as the tail of a slim file is, must
 * agree with the system's full files wherever the same rule holds. */
static void test_footer_only_zones(void **state)
{
    (void)state;
    static const struct {
        const char *name, *footer, *system, *from;
    } cases[] = {
        {"Test/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3", "Europe/Berlin", "1997-01-01 00:00:00"},
        {"Test/NewYork", "EST5EDT,M3.2.0,M11.1.0", "America/New_York", "2008-01-01 00:00:00"},
        {"Test/LordHowe", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "Australia/Lord_Howe",
         "2009-01-01 00:00:00"},
        {"Test/Kolkata", "IST-5:30", "Asia/Kolkata", "1946-01-01 00:00:00"},
    };
    static const int32_t zero = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tzif_spec s = {.version = '2', .ntypes = 1, .offs = &zero, .footer = cases[i].footer};
        write_spec(cases[i].name, &s);
        const tz_t *slim = zone(cases[i].name), *full = system_zone(cases[i].system);
        int64_t end = utc("2120-01-01 00:00:00");
        for (int64_t t = utc(cases[i].from); t < end; t += 3600 * 13 + 7) {
            if (tz_offset_at(slim, t) != tz_offset_at(full, t))
                fail_msg("%s at %lld: %d vs %d", cases[i].name, (long long)t, tz_offset_at(slim, t),
                         tz_offset_at(full, t));
        }
    }
}

/* A version 1 file: 32-bit data only, no footer. */
static void test_version1_file(void **state)
{
    (void)state;
    static const int64_t t1[] = {0, 1000000};
    static const uint8_t i1[] = {1, 0};
    static const int32_t o1[] = {3600, 7200};
    struct tzif_spec v1 = {.version = 0, .ntimes = 2, .times = t1, .idx = i1, .ntypes = 2, .offs = o1};
    write_spec("Test/V1", &v1);
    const tz_t *z = zone("Test/V1");
    assert_int_equal(tz_offset_at(z, -1), 3600);
    assert_int_equal(tz_offset_at(z, 0), 7200);
    assert_int_equal(tz_offset_at(z, 999999), 7200);
    assert_int_equal(tz_offset_at(z, 1000000), 3600);
    assert_int_equal(tz_offset_at(z, INT64_MAX), 3600);
}

/* A transition table until 2000, then a footer rule with other numbers
 * and negative rule times (as America/Nuuk has). */
static void test_table_then_footer(void **state)
{
    (void)state;
    static const int64_t t2[] = {946684800};
    static const uint8_t i2[] = {0};
    static const int32_t o2[] = {-3 * 3600};
    struct tzif_spec hand = {.version = '3', .ntimes = 1, .times = t2, .idx = i2, .ntypes = 1, .offs = o2,
                             .footer = "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1"};
    write_spec("Test/Handover", &hand);
    const tz_t *z = zone("Test/Handover");
    assert_int_equal(tz_offset_at(z, 946684799), -3 * 3600);
    assert_int_equal(tz_offset_at(z, utc("2024-01-01 00:00:00")), -3 * 3600);
    assert_int_equal(tz_offset_at(z, utc("2024-07-01 00:00:00")), -2 * 3600);
    /* M3.5.0/-2: the last Sunday of March 2024 is the 31st; -2h is
     * Saturday 22:00 local standard time, 01:00 UTC on the 31st. */
    assert_int_equal(tz_offset_at(z, utc("2024-03-31 00:59:59")), -3 * 3600);
    assert_int_equal(tz_offset_at(z, utc("2024-03-31 01:00:00")), -2 * 3600);
}

/* Daylight time all year, and rule times beyond a day either way. */
static void test_unusual_rules(void **state)
{
    (void)state;
    static const int32_t zero = 0;
    struct tzif_spec always = {.version = '3', .ntypes = 1, .offs = &zero, .footer = "EST5EDT,0/0,J365/25"};
    write_spec("Test/AlwaysDST", &always);
    const tz_t *z = zone("Test/AlwaysDST");
    static const char *const ats[] = {"2023-12-31 23:59:59", "2024-01-01 00:00:00", "2024-01-01 05:00:00",
                                      "2024-06-01 00:00:00", "2024-12-31 23:59:59", "2025-01-01 05:00:00"};
    for (size_t i = 0; i < sizeof ats / sizeof ats[0]; i++)
        assert_int_equal(tz_offset_at(z, utc(ats[i])), -4 * 3600);

    struct tzif_spec late = {.version = '3', .ntypes = 1, .offs = &zero,
                             .footer = "XXX0YYY,J60/100,J300/-30"};
    write_spec("Test/LateRule", &late);
    z = zone("Test/LateRule");
    /* J60 is March 1 (Feb 29 never counts); 100h later is March 5 04:00. */
    assert_int_equal(tz_offset_at(z, utc("2024-03-05 03:59:59")), 0);
    assert_int_equal(tz_offset_at(z, utc("2024-03-05 04:00:00")), 3600);
    /* J300 is October 27; -30h is October 25 18:00 daylight, 17:00 UTC. */
    assert_int_equal(tz_offset_at(z, utc("2024-10-25 16:59:59")), 3600);
    assert_int_equal(tz_offset_at(z, utc("2024-10-25 17:00:00")), 0);
}

static void test_bad_files(void **state)
{
    (void)state;
    uint8_t buf[4096];
    static const int32_t zero = 0, huge = 100000;
    struct tzif_spec ok = {.version = '2', .ntypes = 1, .offs = &zero, .footer = "UTC0"};
    size_t n = tzif_build(buf, &ok);
    write_zone("Test/Truncated", buf, n - 3);
    buf[0] = 'X';
    write_zone("Test/Magic", buf, n);
    write_zone("Test/Text", "Europe/Berlin\n", 14);
    write_zone("Test/Empty", "", 0);
    struct tzif_spec bad_footer = {.version = '2', .ntypes = 1, .offs = &zero,
                                   .footer = "CET-1CEST,M13.5.0,M10.5.0"};
    write_spec("Test/BadFooter", &bad_footer);
    struct tzif_spec bad_off = {.version = '2', .ntypes = 1, .offs = &huge, .footer = ""};
    write_spec("Test/BadOffset", &bad_off);
    static const int64_t unsorted[] = {10, 5};
    static const uint8_t idx[] = {0, 1};
    struct tzif_spec bad_idx = {.version = '2', .ntimes = 2, .times = unsorted, .idx = idx, .ntypes = 1,
                                .offs = &zero, .footer = ""};
    write_spec("Test/BadIndex", &bad_idx);
    static const char *const names[] = {"Test/Truncated", "Test/Magic", "Test/Text", "Test/Empty",
                                        "Test/BadFooter", "Test/BadOffset", "Test/BadIndex", "Test"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char err[256] = "";
        if (tz_get(names[i], strlen(names[i]), err, sizeof err))
            fail_msg("%s loaded", names[i]);
        assert_true(err[0] != '\0');
    }
}

static int cleanup(void **state)
{
    (void)state;
    tz_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets_match_glibc),
        cmocka_unit_test(test_offsets_known),
        cmocka_unit_test(test_local_to_utc_table),
        cmocka_unit_test(test_local_to_utc_round_trip),
        cmocka_unit_test(test_invalid_names),
        cmocka_unit_test(test_cache_and_names),
        cmocka_unit_test(test_local_zone),
        cmocka_unit_test_setup_teardown(test_footer_only_zones, tzdir_setup, tzdir_teardown),
        cmocka_unit_test_setup_teardown(test_version1_file, tzdir_setup, tzdir_teardown),
        cmocka_unit_test_setup_teardown(test_table_then_footer, tzdir_setup, tzdir_teardown),
        cmocka_unit_test_setup_teardown(test_unusual_rules, tzdir_setup, tzdir_teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, tzdir_setup, tzdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup);
}
