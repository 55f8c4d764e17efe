/*
 * duration.c -- Go's time.ParseDuration, byte for byte.
 *
 * Design: a port of Go's algorithm, so clients of the original server get
 * the same answers: the integer part accumulates in a uint64 with overflow
 * checks, the fraction keeps as many digits as fit and is scaled through a
 * double (as Go does: exact to the nanosecond for fractions of an hour,
 * the largest unit), and the magnitude is summed unsigned so that
 * "-9223372036854775808ns" (INT64_MIN) is accepted while its positive twin
 * is not. Where Go's sum can wrap (two parts of exactly 2^63 each) we
 * reject instead: overflow is always an error here.
 */
#include "duration.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAG_LIMIT (1ULL << 63) /* |INT64_MIN| */

static const struct {
    const char *name;
    size_t len;
    uint64_t ns;
} units[] = {
    {"ns", 2, 1ULL},
    {"us", 2, 1000ULL},
    {"\xc2\xb5s", 3, 1000ULL}, /* U+00B5 MICRO SIGN */
    {"\xce\xbcs", 3, 1000ULL}, /* U+03BC GREEK SMALL LETTER MU */
    {"ms", 2, 1000000ULL},
    {"s", 1, 1000000000ULL},
    {"m", 1, 60000000000ULL},
    {"h", 1, 3600000000000ULL},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* How much of s[0..len) to quote: at most QUOTE_MAX bytes, cut at a UTF-8
 * character boundary (the text ends up in a JSON error body, where half a
 * character would be invalid). */
#define QUOTE_MAX 48
static int quote_len(const char *s, size_t len)
{
    if (len <= QUOTE_MAX)
        return (int)len;
    size_t n = QUOTE_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return (int)n;
}

/* Writes "invalid duration \"<s>\": why[ \"<unit>\"]" and returns -1. */
static int fail(char *err, size_t errlen, const char *s, size_t len, const char *why,
                const char *unit, size_t unit_len)
{
    if (!err || !errlen)
        return -1;
    int n = quote_len(s, len);
    const char *more = (size_t)n < len ? "..." : "";
    if (unit)
        snprintf(err, errlen, "invalid duration \"%.*s%s\": %s \"%.*s\"", n, s, more, why,
                 quote_len(unit, unit_len), unit);
    else
        snprintf(err, errlen, "invalid duration \"%.*s%s\": %s", n, s, more, why);
    return -1;
}

/* Consumes [0-9]* into *v; false on overflow past 2^63 (Go's leadingInt). */
static bool leading_int(const char **p, const char *end, uint64_t *v)
{
    uint64_t x = 0;
    for (; *p < end && is_digit(**p); (*p)++) {
        if (x > MAG_LIMIT / 10)
            return false;
        x = x * 10 + (uint64_t)(**p - '0');
        if (x > MAG_LIMIT)
            return false;
    }
    *v = x;
    return true;
}

/* Consumes [0-9]* as a fraction f / scale; digits that no longer fit are
 * skipped, not an error (Go's leadingFraction). */
static void leading_fraction(const char **p, const char *end, uint64_t *f, double *scale)
{
    uint64_t x = 0;
    double sc = 1;
    bool overflow = false;
    for (; *p < end && is_digit(**p); (*p)++) {
        if (overflow)
            continue;
        if (x > (MAG_LIMIT - 1) / 10) {
            overflow = true;
            continue;
        }
        uint64_t y = x * 10 + (uint64_t)(**p - '0');
        if (y > MAG_LIMIT) {
            overflow = true;
            continue;
        }
        x = y;
        sc *= 10;
    }
    *f = x;
    *scale = sc;
}

static const char *unit_end(const char *p, const char *end)
{
    while (p < end && *p != '.' && !is_digit(*p))
        p++;
    return p;
}

/* Nanoseconds per unit u[0..n), or 0 if unknown. */
static uint64_t unit_ns(const char *u, size_t n)
{
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (units[i].len == n && memcmp(units[i].name, u, n) == 0)
            return units[i].ns;
    return 0;
}

/* Why a part failed: a reason, and for an unknown unit the unit itself. */
struct part_err {
    const char *why;
    const char *unit;
    size_t unit_len;
};

static bool part_fail(struct part_err *e, const char *why)
{
    e->why = why;
    return false;
}

/* Parses one "<decimal><unit>" at *p into its magnitude in ns (<= 2^63). */
static bool parse_part(const char **p, const char *end, uint64_t *out, struct part_err *e)
{
    uint64_t v, f = 0;
    double scale = 1;
    if (**p != '.' && !is_digit(**p))
        return part_fail(e, "expected a number");
    const char *start = *p;
    if (!leading_int(p, end, &v))
        return part_fail(e, "out of range");
    bool pre = *p != start, post = false;
    if (*p < end && **p == '.') {
        start = ++*p;
        leading_fraction(p, end, &f, &scale);
        post = *p != start;
    }
    if (!pre && !post)
        return part_fail(e, "expected digits around '.'");

    const char *u = *p;
    *p = unit_end(u, end);
    if (*p == u)
        return part_fail(e, "missing unit (ns, us, ms, s, m or h)");
    uint64_t unit = unit_ns(u, (size_t)(*p - u));
    if (!unit) {
        e->unit = u;
        e->unit_len = (size_t)(*p - u);
        return part_fail(e, "unknown unit");
    }
    if (v > MAG_LIMIT / unit)
        return part_fail(e, "out of range");
    v *= unit;
    /* <= 3.6e12 (an hour in ns, the largest unit), so the double is exact
     * enough and the conversion cannot overflow. */
    if (f > 0)
        v += (uint64_t)((double)f * ((double)unit / scale));
    if (v > MAG_LIMIT)
        return part_fail(e, "out of range");
    *out = v;
    return true;
}

/* The common forms: no sign, each part plain digits and an ASCII unit
 * ("1h", "1h30m", "300ms"), the sum within int64. Whatever it accepts
 * the general path below gives the same value for; anything else (a sign,
 * a fraction, µs, 19 digits or more, an overflow, an error) returns false
 * and is left to it. "1h" costs a tenth of the general path: no unit table
 * walk, no fraction or sign handling. */
static bool parse_simple(const char *p, const char *end, int64_t *out_ns)
{
    uint64_t d = 0;
    do {
        const char *start = p;
        uint64_t v = 0;
        while (p < end && is_digit(*p) && p - start < 18) /* < 10^18: no overflow */
            v = v * 10 + (uint64_t)(*p++ - '0');
        if (p == start || p == end)
            return false;
        uint64_t unit;
        switch (*p++) {
        case 'h':
            unit = 3600000000000ULL;
            break;
        case 's':
            unit = 1000000000ULL;
            break;
        case 'm':
            unit = 60000000000ULL;
            if (p < end && *p == 's') {
                unit = 1000000ULL;
                p++;
            }
            break;
        case 'u':
        case 'n':
            if (p == end || *p != 's')
                return false;
            unit = p[-1] == 'u' ? 1000ULL : 1ULL;
            p++;
            break;
        default:
            return false;
        }
        if (v > (uint64_t)INT64_MAX / unit)
            return false;
        v *= unit;
        if (v > (uint64_t)INT64_MAX - d)
            return false;
        d += v;
    } while (p < end);
    *out_ns = (int64_t)d;
    return true;
}

int duration_parse(const char *s, size_t len, int64_t *out_ns, char *err, size_t errlen)
{
    bool neg = false;
    uint64_t d = 0, v;
    struct part_err e = {NULL, NULL, 0};

    if (len == 0) /* before any arithmetic on s, which may be NULL then */
        return fail(err, errlen, "", 0, "empty", NULL, 0);
    const char *p = s, *end = s + len;
    if (is_digit(*p) && parse_simple(p, end, out_ns))
        return 0;
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    if (end - p == 1 && *p == '0') {
        *out_ns = 0;
        return 0;
    }
    if (p == end)
        return fail(err, errlen, s, len, "no number", NULL, 0);
    while (p < end) {
        if (!parse_part(&p, end, &v, &e))
            return fail(err, errlen, s, len, e.why, e.unit, e.unit_len);
        if (v > MAG_LIMIT - d)
            return fail(err, errlen, s, len, "out of range", NULL, 0);
        d += v;
    }
    if (!neg && d > (uint64_t)INT64_MAX)
        return fail(err, errlen, s, len, "out of range", NULL, 0);
    /* -(int64_t)d would overflow for 2^63; INT64_MIN is its exact value. */
    *out_ns = d == MAG_LIMIT ? INT64_MIN : neg ? -(int64_t)d : (int64_t)d;
    return 0;
}

/* ---- the canonical form ----
 * Built right to left in a buffer, as the digits come out of divisions. */

/* Writes the fraction of v / 10^prec (digits without trailing zeros,
 * after a '.') before *w; returns v / 10^prec. */
static uint64_t put_frac(char *buf, size_t *w, uint64_t v, int prec)
{
    int printed = 0;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(v % 10);
        printed = printed || digit != 0;
        if (printed)
            buf[--*w] = (char)('0' + digit);
        v /= 10;
    }
    if (printed)
        buf[--*w] = '.';
    return v;
}

static void put_int(char *buf, size_t *w, uint64_t v)
{
    do {
        buf[--*w] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
}

/* A magnitude below one second: one unit, ns, µs or ms. */
static void put_small(char *buf, size_t *w, uint64_t u)
{
    buf[--*w] = 's';
    int prec;
    if (u < 1000) {
        buf[--*w] = 'n';
        prec = 0;
    } else if (u < 1000000) {
        *w -= 2;
        memcpy(buf + *w, "\xc2\xb5", 2);
        prec = 3;
    } else {
        buf[--*w] = 'm';
        prec = 6;
    }
    put_int(buf, w, put_frac(buf, w, u, prec));
}

size_t duration_format(int64_t ns, char out[DURATION_TEXT_MAX])
{
    char buf[DURATION_TEXT_MAX];
    size_t w = sizeof(buf);
    uint64_t u = ns < 0 ? -(uint64_t)ns : (uint64_t)ns;
    if (u == 0) {
        memcpy(out, "0s", 3);
        return 2;
    }
    if (u < 1000000000ULL) {
        put_small(buf, &w, u);
    } else {
        buf[--w] = 's';
        u = put_frac(buf, &w, u, 9);
        put_int(buf, &w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            put_int(buf, &w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                put_int(buf, &w, u);
            }
        }
    }
    if (ns < 0)
        buf[--w] = '-';
    size_t len = sizeof(buf) - w;
    memcpy(out, buf + w, len);
    out[len] = '\0';
    return len;
}
