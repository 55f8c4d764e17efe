/*
 * rfc3339.c -- RFC 3339 timestamps in and out, and the civil-date helpers.
 *
 * Design: the parser reads the fixed layout left to right with a cursor,
 * checks every field range itself (no mktime/timegm: those read the TZ
 * environment, are not thread-safe everywhere and clamp silently), turns the
 * civil date into days with rfc3339_days_from_civil and then builds the
 * nanosecond count with overflow checks, so the supported range is exactly
 * that of ntime_t. The formatter, its reverse, is base/ntime.c: the JSON
 * writer needs it and must not depend on time/.
 */
#include "rfc3339.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SECS_PER_DAY 86400

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

struct cursor {
    const char *p, *end;
};

/* Reads exactly n digits; false if fewer are there. */
static bool read_digits(struct cursor *c, int n, unsigned *out)
{
    unsigned v = 0;
    if (c->end - c->p < n)
        return false;
    for (int i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c->p[i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    c->p += n;
    *out = v;
    return true;
}

static bool read_char(struct cursor *c, char a, char b)
{
    if (c->p == c->end || (*c->p != a && *c->p != b))
        return false;
    c->p++;
    return true;
}

/* Reads ".digits" if present into nanoseconds; digits past the ninth are
 * dropped (truncation, as Go does), not rounded, so a parsed time never
 * lands after the written one. False for a '.' without digits. */
static bool read_fraction(struct cursor *c, int64_t *ns)
{
    *ns = 0;
    if (c->p == c->end || *c->p != '.')
        return true;
    c->p++;
    int n = 0;
    int64_t scale = NTIME_NS_PER_S;
    for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++, n++) {
        if (n < 9) {
            scale /= 10;
            *ns += (*c->p - '0') * scale;
        }
    }
    return n > 0;
}

struct fields {
    unsigned year, mon, day, hour, min, sec;
    int64_t frac_ns;
    int offset_s; /* east of UTC */
};

/* Fills f->offset_s from "Z" or "+hh:mm"/"-hh:mm"; returns the error text
 * or NULL. */
static const char *read_zone(struct cursor *c, struct fields *f)
{
    if (c->p == c->end)
        return "missing time zone (Z or +hh:mm)";
    if (read_char(c, 'Z', 'z')) {
        f->offset_s = 0;
        return NULL;
    }
    char sign = *c->p;
    unsigned oh, om;
    if (!read_char(c, '+', '-'))
        return "expected Z or +hh:mm after the time";
    if (!read_digits(c, 2, &oh) || !read_char(c, ':', ':') || !read_digits(c, 2, &om))
        return "malformed offset, expected +hh:mm";
    if (oh > 23 || om > 59)
        return "offset out of range";
    f->offset_s = (int)(oh * 3600 + om * 60) * (sign == '-' ? -1 : 1);
    return NULL;
}

/* The layout part: everything up to the zone. Returns error text or NULL. */
static const char *read_layout(struct cursor *c, struct fields *f)
{
    if (!read_digits(c, 4, &f->year) || !read_char(c, '-', '-') ||
        !read_digits(c, 2, &f->mon) || !read_char(c, '-', '-') ||
        !read_digits(c, 2, &f->day))
        return "expected a date YYYY-MM-DD";
    if (!read_char(c, 'T', 't'))
        return "expected 'T' between date and time";
    if (!read_digits(c, 2, &f->hour) || !read_char(c, ':', ':') ||
        !read_digits(c, 2, &f->min) || !read_char(c, ':', ':') ||
        !read_digits(c, 2, &f->sec))
        return "expected a time hh:mm:ss";
    if (!read_fraction(c, &f->frac_ns))
        return "expected digits after the decimal point";
    return NULL;
}

static const char *check_ranges(const struct fields *f)
{
    if (f->mon < 1 || f->mon > 12)
        return "month out of range";
    if (f->day < 1 || f->day > days_in_month(f->year, f->mon))
        return "day out of range";
    if (f->hour > 23)
        return "hour out of range";
    if (f->min > 59)
        return "minute out of range";
    if (f->sec > 59)
        return "second out of range";
    return NULL;
}

/* The instant as ntime_t; false if it does not fit. Seconds cannot
 * overflow (4-digit years), only the scaling to nanoseconds can. Before
 * 1970 the fraction is borrowed from the next second first, because the
 * earliest ntime_t (INT64_MIN) is a whole second count that alone would not
 * fit, plus a positive fraction. */
static bool to_ntime(const struct fields *f, ntime_t *out)
{
    int64_t days = rfc3339_days_from_civil(f->year, f->mon, f->day);
    int64_t secs = days * SECS_PER_DAY + f->hour * 3600 + f->min * 60 + f->sec - f->offset_s;
    int64_t frac = f->frac_ns;
    int64_t ns;
    if (secs < 0 && frac > 0) {
        secs++;
        frac -= NTIME_NS_PER_S;
    }
    if (__builtin_mul_overflow(secs, NTIME_NS_PER_S, &ns) ||
        __builtin_add_overflow(ns, frac, &ns))
        return false;
    *out = ns;
    return true;
}

/* Writes "invalid time \"<s>\": why" with s cut to a readable length at a
 * UTF-8 character boundary (a half character would make the JSON error
 * body invalid). */
static void set_err(char *err, size_t errlen, const char *s, size_t len, const char *why)
{
    const size_t max = 48;
    size_t n = len;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    if (err && errlen)
        snprintf(err, errlen, "invalid time \"%.*s%s\": %s", (int)n, s, n < len ? "..." : "", why);
}

int rfc3339_parse(const char *s, size_t len, ntime_t *out, char *err, size_t errlen)
{
    struct fields f;
    const char *why = NULL;
    ntime_t t;

    if (len == 0) { /* before any arithmetic on s, which may be NULL then */
        set_err(err, errlen, "", 0, "empty");
        return -1;
    }
    struct cursor c = {s, s + len};
    why = read_layout(&c, &f);
    if (!why)
        why = read_zone(&c, &f);
    if (!why && c.p != c.end)
        why = "unexpected text after the time zone";
    if (!why)
        why = check_ranges(&f);
    if (!why && !to_ntime(&f, &t))
        why = "outside the supported range (1677-09-21 to 2262-04-11)";
    if (why) {
        set_err(err, errlen, s, len, why);
        return -1;
    }
    *out = t;
    return 0;
}
