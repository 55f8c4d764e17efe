/* test_duration.c -- Go duration syntax; cases follow Go's time tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "time/duration.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define S 1000000000LL
#define MS 1000000LL

static const struct {
    const char *in;
    int64_t want;
} valid[] = {
    /* the API examples */
    {"1h30m10s", 5410 * S},
    {"1.5h", 5400 * S},
    {"300ms", 300 * MS},
    {"2µs", 2000},           /* U+00B5 */
    {"2μs", 2000},           /* U+03BC */
    {"-1.5s", -1500 * MS},
    {"0", 0},
    /* simple, signs, zero */
    {"+0", 0},
    {"-0", 0},
    {"0s", 0},
    {"-0s", 0},
    {"+0s", 0},
    {"5s", 5 * S},
    {"30s", 30 * S},
    {"1478s", 1478 * S},
    {"-5s", -5 * S},
    {"+5s", 5 * S},
    {"00010s", 10 * S},
    /* fractions, including Go's "1.s" and ".5s" */
    {"5.0s", 5 * S},
    {"5.6s", 5600 * MS},
    {"5.s", 5 * S},
    {"1.s", 1 * S},
    {".5s", 500 * MS},
    {"1.0s", 1 * S},
    {"1.00s", 1 * S},
    {"1.004s", 1004 * MS},
    {"1.0040s", 1004 * MS},
    {"100.00100s", 100001 * MS},
    /* every unit */
    {"10ns", 10},
    {"11us", 11000},
    {"12µs", 12000},
    {"12μs", 12000},
    {"13ms", 13 * MS},
    {"14s", 14 * S},
    {"15m", 15 * 60 * S},
    {"16h", 16 * 3600 * S},
    /* composites */
    {"3h30m", (3 * 3600 + 30 * 60) * S},
    {"10.5s4m", 4 * 60 * S + 10500 * MS},
    {"-2m3.4s", -(2 * 60 * S + 3400 * MS)},
    {"1h2m3s4ms5us6ns", 3723004005006LL},
    {"39h9m14.425s", (39 * 3600 + 9 * 60 + 14) * S + 425 * MS},
    {"1m1m", 120 * S},
    /* large values and precision */
    {"52763797000ns", 52763797000LL},
    {"0.3333333333333333333h", 20 * 60 * S},
    {"9007199254740993ns", (1LL << 53) + 1},
    {"0.100000000000000000000h", 6 * 60 * S},
    {"0.830103483285477580700h", (49 * 60 + 48) * S + 372539827},
    {"0.0000000001s", 0},
    {"9223372036854775807ns", INT64_MAX},
    {"9223372036854775.807us", INT64_MAX},
    {"9223372036s854ms775us807ns", INT64_MAX},
    {"2562047h47m16.854775807s", INT64_MAX},
    {"-9223372036854775808ns", INT64_MIN},
    {"-9223372036854775.808us", INT64_MIN},
    {"-9223372036s854ms775us808ns", INT64_MIN},
    {"-2562047h47m16.854775808s", INT64_MIN},
};

static void test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(valid); i++) {
        int64_t d = 42;
        char err[160] = "";
        int rc = duration_parse(valid[i].in, strlen(valid[i].in), &d, err, sizeof err);
        if (rc != 0 || d != valid[i].want)
            fail_msg("%s: rc %d got %lld want %lld (%s)", valid[i].in, rc, (long long)d,
                     (long long)valid[i].want, err);
    }
}

static const struct {
    const char *in;
    const char *why; /* substring of the error */
} invalid[] = {
    {"", "empty"},
    {"1", "missing unit"},
    {"1x", "unknown unit \"x\""},
    {"s", "expected a number"},
    {"1.5.5s", "missing unit"},
    {"9223372036854775808ns", "out of range"},
    {" 1s", "expected a number"},
    {"1s ", "unknown unit \"s \""},
    {"--1s", "expected a number"},
    {"-", "no number"},
    {"+", "no number"},
    {"3", "missing unit"},
    {"00", "missing unit"},
    {".", "around '.'"},
    {"-.", "around '.'"},
    {".s", "around '.'"},
    {"+.s", "around '.'"},
    {"1d", "unknown unit \"d\""},
    {"1S", "unknown unit \"S\""},
    {"1H", "unknown unit \"H\""},
    {"1sec", "unknown unit \"sec\""},
    {"1h 30m", "unknown unit \"h \""},
    {"1s-1s", "unknown unit \"s-\""},
    {"1e3s", "unknown unit \"e\""},
    {"\x85\x85", "expected a number"},
    {"\xff" "ff", "expected a number"},
    {"1\xc2s", "unknown unit"},
    {"9223372036854775.808us", "out of range"},
    {"9223372036854ms775us808ns", "out of range"},
    {"-9223372036854775809ns", "out of range"},
    {"2562048h", "out of range"},
    {"99999999999999999999s", "out of range"},
    {"-9223372036854775808ns1ns", "out of range"},
    /* Go wraps this sum to 0; we call it what it is. */
    {"9223372036854775808ns9223372036854775808ns", "out of range"},
    {"-9223372036854775808ns-9223372036854775808ns", "unknown unit \"ns-\""},
};

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(invalid); i++) {
        int64_t d = 42;
        char err[160] = "";
        int rc = duration_parse(invalid[i].in, strlen(invalid[i].in), &d, err, sizeof err);
        if (rc != -1 || d != 42)
            fail_msg("%s: accepted as %lld", invalid[i].in, (long long)d);
        if (strncmp(err, "invalid duration \"", 18) != 0 || !strstr(err, invalid[i].why))
            fail_msg("%s: error \"%s\" lacks \"%s\"", invalid[i].in, err, invalid[i].why);
    }
}

static void test_error_text(void **state)
{
    (void)state;
    char err[160];
    int64_t d;
    assert_int_equal(duration_parse("5x", 2, &d, err, sizeof err), -1);
    assert_string_equal(err, "invalid duration \"5x\": unknown unit \"x\"");
    assert_int_equal(duration_parse("", 0, &d, err, sizeof err), -1);
    assert_string_equal(err, "invalid duration \"\": empty");

    /* Long input is quoted in part, cut before a split character. */
    char longs[100];
    memset(longs, '1', sizeof longs);
    memcpy(longs + 47, "\xce\xbc", 2);
    assert_int_equal(duration_parse(longs, sizeof longs, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "111...\""));
    assert_null(strstr(err, "\xce"));

    /* A small or absent buffer is fine. */
    char tiny[4];
    assert_int_equal(duration_parse("x", 1, &d, tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "inv");
    assert_int_equal(duration_parse("x", 1, &d, NULL, 0), -1);
    assert_int_equal(duration_parse(NULL, 0, &d, err, sizeof err), -1);
    assert_string_equal(err, "invalid duration \"\": empty");
}

/* Only s[0..len) is read; the input need not be NUL-terminated. */
static void test_respects_len(void **state)
{
    (void)state;
    int64_t d = 0;
    char err[160];
    assert_int_equal(duration_parse("10s5m", 3, &d, err, sizeof err), 0);
    assert_int_equal(d, 10 * S);
    assert_int_equal(duration_parse("10s5m", 2, &d, err, sizeof err), -1);
    assert_int_equal(duration_parse("0s", 1, &d, err, sizeof err), 0);
    assert_int_equal(d, 0);
    char exact[2] = {'7', 'h'}; /* no NUL after it */
    assert_int_equal(duration_parse(exact, 2, &d, err, sizeof err), 0);
    assert_int_equal(d, 7 * 3600 * S);
}

/* The reason after the quoted input: "invalid duration \"...\": <why>". */
static const char *why_of(const char *err)
{
    const char *w = strstr(err, "\": ");
    return w ? w + 3 : err;
}

/* duration_parse takes a fast path for unsigned input of digits and ASCII
 * units; a leading '+' always takes the general one. Both must agree on
 * every input: same result, same value, same reason. */
static void check_fast_matches_general(const char *s)
{
    char plus[128], err1[200] = "", err2[200] = "";
    size_t n = strlen(s);
    if (n == 0 || s[0] == '-' || s[0] == '+') /* "" is empty, "+" has no number */
        return;
    assert_true(n + 1 < sizeof plus);
    plus[0] = '+';
    memcpy(plus + 1, s, n);
    int64_t v1 = 42, v2 = 42;
    int rc1 = duration_parse(s, n, &v1, err1, sizeof err1);
    int rc2 = duration_parse(plus, n + 1, &v2, err2, sizeof err2);
    if (rc1 != rc2 || v1 != v2 || strcmp(why_of(err1), why_of(err2)) != 0)
        fail_msg("\"%s\": %d %lld (%s) vs general %d %lld (%s)", s, rc1, (long long)v1, err1, rc2,
                 (long long)v2, err2);
}

static void test_fast_path(void **state)
{
    (void)state;
    static const char *nums[] = {"", "0", "1", "7", "00", "01", "30", "999", "2562047", "2562048",
                                 "153722867", "153722868", "9223372036", "9223372036854",
                                 "9223372036854775", "922337203685477580", "9223372036854775807",
                                 "9223372036854775808", "99999999999999999999", "1.5", ".5", "1."};
    static const char *units[] = {"", "h", "m", "s", "ms", "us", "ns", "\xc2\xb5s", "\xce\xbcs",
                                  "mss", "hm", "x", "H", "u", "n", " ", "-", "sm"};
    char s[96];
    size_t nn = ARRAY_LEN(nums), nu = ARRAY_LEN(units);
    for (size_t a = 0; a < nn; a++)
        for (size_t b = 0; b < nu; b++) {
            snprintf(s, sizeof s, "%s%s", nums[a], units[b]);
            check_fast_matches_general(s);
            /* and as the first or second of two parts */
            for (size_t c = 0; c < nn; c += 3)
                for (size_t d = 0; d < nu; d += 2) {
                    snprintf(s, sizeof s, "%s%s%s%s", nums[a], units[b], nums[c], units[d]);
                    check_fast_matches_general(s);
                }
        }
    /* pseudo-random strings over the alphabet that matters */
    static const char alpha[] = "0123456789hmsun.9";
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = 1 + x % 24;
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            s[k] = alpha[x % (sizeof alpha - 1)];
        }
        s[len] = '\0';
        check_fast_matches_general(s);
    }
    /* the edges of the sum */
    check_fast_matches_general("2562047h47m16s854ms775us807ns");
    check_fast_matches_general("2562047h47m16s854ms775us808ns");
    check_fast_matches_general("9223372036854775807ns0s");
    check_fast_matches_general("9223372036854775807ns1ns");
    check_fast_matches_general("922337203685477580ns922337203685477580ns");
}

/* Go's time.Duration.String, and a round trip through the parser. */
static void test_format(void **state)
{
    (void)state;
    static const struct {
        int64_t ns;
        const char *want;
    } cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {999, "999ns"},
        {1000, "1\xc2\xb5s"},
        {1500, "1.5\xc2\xb5s"},
        {1000000, "1ms"},
        {300000000, "300ms"},
        {1234567, "1.234567ms"},
        {1000000000, "1s"},
        {1500000000, "1.5s"},
        {60000000000LL, "1m0s"},
        {90000000000LL, "1m30s"},
        {3600000000000LL, "1h0m0s"},
        {5430500000000LL, "1h30m30.5s"},
        {600000000000LL, "10m0s"},
        {876000LL * 3600000000000LL, "876000h0m0s"},
        {1000000001, "1.000000001s"},
        {-1500000000, "-1.5s"},
        {-1, "-1ns"},
        {INT64_MAX, "2562047h47m16.854775807s"},
        {INT64_MIN, "-2562047h47m16.854775808s"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[DURATION_TEXT_MAX];
        size_t n = duration_format(cases[i].ns, out);
        assert_string_equal(out, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
        int64_t back;
        char err[128];
        assert_int_equal(duration_parse(out, n, &back, err, sizeof(err)), 0);
        assert_true(back == cases[i].ns);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_respects_len),
        cmocka_unit_test(test_fast_path),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
