/*
 * ntime.c -- the time type's text: RFC 3339 output and civil dates.
 *
 * Design: the formatter works with floor division, so instants before 1970
 * come out right, and writes digits two at a time from a table: it runs
 * twice for every event in every listing. The parser (time/rfc3339.c) uses
 * the same civil-date helpers.
 */
#include "ntime.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define SECS_PER_DAY 86400

/* ------------------------------------------------------------------------ */
/* Civil dates (Howard Hinnant's days_from_civil / civil_from_days)          */
/* ------------------------------------------------------------------------ */

/* Floor division for a positive divisor; C's '/' truncates toward zero. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b < 0) ? q - 1 : q;
}

/* Days since 1970-01-01 of y-m-d. The year is shifted to start in March so
 * the leap day is the last day of a "year" and each 400-year era has the
 * same 146097 days; that keeps the arithmetic branch-free of month tables. */
int64_t rfc3339_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                               /* [0, 399] */
    int64_t mp = (m + 9) % 12;                                 /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + (int64_t)d - 1;         /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;       /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void rfc3339_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;                                 /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);             /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                  /* [0, 11] */
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = era * 400 + yoe + (*m <= 2);
}

/* ------------------------------------------------------------------------ */
/* Formatting                                                                */
/* ------------------------------------------------------------------------ */

/* "00" "01" ... "99": two digits per lookup instead of a division per
 * digit. */
#define DIGITS_10(t) t "0" t "1" t "2" t "3" t "4" t "5" t "6" t "7" t "8" t "9"
static const char two_digits[201] = DIGITS_10("0") DIGITS_10("1") DIGITS_10("2") DIGITS_10("3")
    DIGITS_10("4") DIGITS_10("5") DIGITS_10("6") DIGITS_10("7") DIGITS_10("8") DIGITS_10("9");

static char *put2(char *p, uint32_t v, char sep)
{
    memcpy(p, two_digits + 2 * v, 2);
    p[2] = sep;
    return p + 3;
}

/* rfc3339_civil_from_days for days >= -719468 (0000-03-01), which covers
 * every ntime_t: the era is then never negative, so the arithmetic runs
 * on unsigned 32-bit numbers without floor division, and each division by
 * a constant becomes a multiply. Tested against the general version over
 * all of ntime_t's days. */
static void civil_from_days_fast(int64_t days, uint32_t *y, uint32_t *m, uint32_t *d)
{
    uint32_t z = (uint32_t)(days + 719468);
    uint32_t era = z / 146097;
    uint32_t doe = z - era * 146097;                                    /* [0, 146096] */
    uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);            /* [0, 365] */
    uint32_t mp = (5 * doy + 2) / 153;                                 /* [0, 11] */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = era * 400 + yoe + (*m <= 2);
}

/* Splits t into whole seconds (floor) and nanoseconds [0, 1e9). */
static int64_t split_secs(ntime_t t, uint32_t *ns)
{
    /* Not t - secs * 1e9: for t near INT64_MIN that product overflows. */
    int64_t secs = t / NTIME_NS_PER_S;
    int64_t nsec = t % NTIME_NS_PER_S;
    if (nsec < 0) {
        nsec += NTIME_NS_PER_S;
        secs--;
    }
    *ns = (uint32_t)nsec;
    return secs;
}

/* Writes "YYYY-MM-DDTHH:MM:SS." (20 bytes) for secs. */
static void format_secs(int64_t secs, char *p)
{
    int64_t days = floor_div(secs, SECS_PER_DAY);
    uint32_t sod = (uint32_t)(secs - days * SECS_PER_DAY); /* [0, 86400) */
    uint32_t y, m, d;
    civil_from_days_fast(days, &y, &m, &d);
    /* Every ntime_t lies in years 1677..2262, so four digits always fit. */
    uint32_t hour = sod / 3600, min_sec = sod % 3600;
    memcpy(p, two_digits + 2 * (y / 100), 2);
    p = put2(p + 2, y % 100, '-');
    p = put2(p, m, '-');
    p = put2(p, d, 'T');
    p = put2(p, hour, ':');
    p = put2(p, min_sec / 60, ':');
    put2(p, min_sec % 60, '.');
}

/* Writes the nine fraction digits, 'Z' and the NUL at p. ns / 1e8 is
 * taken in 7.57 fixed point (ns times 2^57 / 1e8, rounded up): the integer
 * part is the first digit, and each multiplication of the fraction part
 * by 100 moves the next two digits into the integer part. The rounding
 * error, below 1e9 * 0.25 / 2^57 of a digit, grows by 100 per step and is
 * still below 0.17 of the last pair, so every digit is exact (checked for
 * all 10^9 values when written), at one multiply per pair instead of a
 * division per pair. */
static void format_fraction(uint32_t ns, char *p)
{
    const uint64_t mask = ((uint64_t)1 << 57) - 1;
    uint64_t f = (uint64_t)ns * 1441151881; /* ceil(2^57 / 1e8) */
    p[0] = (char)('0' + (f >> 57));
    f = (f & mask) * 100;
    memcpy(p + 1, two_digits + 2 * (f >> 57), 2);
    f = (f & mask) * 100;
    memcpy(p + 3, two_digits + 2 * (f >> 57), 2);
    f = (f & mask) * 100;
    memcpy(p + 5, two_digits + 2 * (f >> 57), 2);
    f = (f & mask) * 100;
    memcpy(p + 7, two_digits + 2 * (f >> 57), 2);
    p[9] = 'Z';
    p[10] = '\0';
}

/* Writes the fixed layout with a two-digit table: this runs twice for
 * every event of every listing, where the former digit-at-a-time loop and
 * the signed 64-bit date arithmetic cost ~440 instructions a call. */
size_t rfc3339_format(ntime_t t, char out[RFC3339_LEN + 1])
{
    uint32_t ns;
    format_secs(split_secs(t, &ns), out);
    format_fraction(ns, out + 20);
    return RFC3339_LEN;
}

/* Two entries, least recently used replaced: the two times of each event
 * then stay cached while their seconds last, where one entry would swap
 * on every call. */
size_t rfc3339_format_cached(rfc3339_cache_t *c, ntime_t t, char out[RFC3339_LEN + 1])
{
    uint32_t ns;
    int64_t secs = split_secs(t, &ns);
    unsigned i = c->last;
    if (c->secs[i] != secs || !c->text[i][0]) {
        i ^= 1;
        if (c->secs[i] != secs || !c->text[i][0]) {
            c->secs[i] = secs;
            format_secs(secs, c->text[i]);
            c->whole[i] = ~t; /* any time but t */
        }
        c->last = (unsigned char)i;
    }
    memcpy(out, c->text[i], 20);
    /* A batch's events share both their times: the whole text repeats. */
    if (c->whole[i] == t) {
        memcpy(out + 20, c->frac[i], 10);
        out[30] = '\0';
    } else {
        format_fraction(ns, out + 20);
        memcpy(c->frac[i], out + 20, 10);
        c->whole[i] = t;
    }
    return RFC3339_LEN;
}
