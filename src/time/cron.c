/*
 * cron.c -- cron definitions and their next fire time; see cron.h.
 *
 * DESIGN
 * A five-field definition becomes one bit mask per field (bit v set: value
 * v matches) plus, for day of month and day of week, whether the field was
 * restricted. That flag, not the mask, picks between the AND and the OR
 * rule for days, as the API defines it: a field that starts with '*' or
 * '?' (with any step) is unrestricted. So a day of month of '*' with step
 * 2 and a day of week of 1 fire on odd days that are Mondays, while
 * "0 0 1 * 1" fires on the 1st or on Mondays. robfig/cron counts a step above 1 as restricted; the API
 * document is followed here.
 * Descriptors other than "@every" are rewritten into their five fields and
 * parsed the same way, so they cannot drift from the field semantics.
 *
 * Next fire: fire times are the first occurrences of local wall-clock
 * minutes that match. The search walks local time ("seconds as if local
 * were UTC"), where every day has 24 hours and fields are plain calendar
 * arithmetic, jumping whole months, days and hours as robfig/cron does, and
 * only converts a matching minute to an instant with tz_local_to_utc. A
 * minute with no instant (a spring-forward gap) is passed over; a minute
 * with two instants (a fall-back overlap) fires at the first, and the
 * second is never a candidate. Walking UTC instead and converting each
 * instant to local would make the overlap fire twice and need care to skip
 * the gap; walking local time makes both rules fall out of one check.
 *
 * Times: ntime_t (ns) at the interface; seconds inside the walk.
 */
#include "cron.h"
#include "duration.h"
#include "rfc3339.h"
#include "base/util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECS_PER_DAY 86400
#define CRON_YEARS_AHEAD 5 /* search horizon, as robfig/cron's yearLimit */
#define CRON_SPEC_SHOWN 100 /* at most this much of a definition is echoed in errors */

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

struct cron {
    uint64_t bits[F_COUNT]; /* bit v set: value v matches; day of week 0-6, 0 = Sunday */
    bool star[F_COUNT];     /* field started with '*' or '?': then days AND */
    int64_t every_ns;       /* > 0 for "@every"; the masks are then unused */
    ntime_t created_at;     /* "@every" fires at created_at + k * every_ns, k >= 1 */
    const tz_t *tz;         /* borrowed: zones live until tz_cleanup() */
};

/* Bounds of one field. Values may go up to max; '*' and the open end of
 * "a/n" stop at open_max, which differs only for day of week: 7 is
 * accepted as Sunday, but "*" and "1/2" must not reach it twice. */
struct field_def {
    const char *what;
    int min, max, open_max;
    const char *const *names; /* three-letter names of min, min+1, ...; or NULL */
};

static const char *const MONTH_NAMES[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const DOW_NAMES[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field_def FIELDS[F_COUNT] = {
    [F_MINUTE] = {"minute", 0, 59, 59, NULL},
    [F_HOUR] = {"hour", 0, 23, 23, NULL},
    [F_DOM] = {"day of month", 1, 31, 31, NULL},
    [F_MONTH] = {"month", 1, 12, 12, MONTH_NAMES},
    [F_DOW] = {"day of week", 0, 7, 6, DOW_NAMES},
};

static const struct {
    const char *name, *fields;
} DESCRIPTORS[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* What the parser needs to write an error: the whole definition, to echo,
 * and the caller's buffer. */
struct parser {
    const char *spec;
    size_t len;
    char *err;
    size_t errlen;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */
/* ------------------------------------------------------------------------ */

/* How much of s[0..n) to quote, at most max bytes, without cutting a
 * UTF-8 character in two (messages end up in JSON). */
static int utf8_prefix(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return (int)max;
}

/* Drops a character left incomplete at the end of a truncated message. */
static void utf8_trim_end(char *s)
{
    size_t n = strlen(s), i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
        i--;
    if (i == 0 || (unsigned char)s[i - 1] < 0xc0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    if (n - (i - 1) < need)
        s[i - 1] = '\0';
}

/* Writes "cron definition \"<spec>\": <message>" into the caller's buffer.
 * Always returns -1, so error paths read "return parse_error(...)". */
static int parse_error(const struct parser *p, const char *fmt, ...)
{
    va_list ap;
    int shown = utf8_prefix(p->spec, p->len, CRON_SPEC_SHOWN);
    int n = snprintf(p->err, p->errlen, "cron definition \"%.*s%s\": ", shown, p->spec,
                     p->len > CRON_SPEC_SHOWN ? "..." : "");
    if (n >= 0 && (size_t)n < p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    if (p->errlen)
        utf8_trim_end(p->err);
    return -1;
}

/* Decimal digits only, at most 9 of them (no sign, as in robfig/cron,
 * where a '-' would already have split the range). */
static bool parse_uint(const char *s, size_t n, int *out)
{
    int v = 0;
    if (n == 0 || n > 9)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* One value of a field: a number within [min, max] or, where the field has
 * them, a three-letter name in any case. */
static int parse_value(const struct parser *p, const struct field_def *f, const char *s, size_t n, int *out)
{
    for (int i = 0; f->names && f->names[i]; i++)
        if (n == 3 && strncasecmp(s, f->names[i], 3) == 0) {
            *out = f->min + i;
            return 0;
        }
    if (!parse_uint(s, n, out)) {
        if (f->names)
            return parse_error(p, "%s \"%.*s\" is not a number or a name (%s-%s)", f->what, utf8_prefix(s, n, 40), s,
                               f == &FIELDS[F_MONTH] ? "JAN" : "SUN", f == &FIELDS[F_MONTH] ? "DEC" : "SAT");
        return parse_error(p, "%s \"%.*s\" is not a number", f->what, utf8_prefix(s, n, 40), s);
    }
    if (*out < f->min || *out > f->max)
        return parse_error(p, "%s %d out of range %d-%d", f->what, *out, f->min, f->max);
    return 0;
}

/* The "/n" part of a range, if any, into *step (1 when absent). */
static int parse_step(const struct parser *p, const struct field_def *f, const char *slash, const char *end,
                      int *step)
{
    *step = 1;
    if (!slash)
        return 0;
    const char *s = slash + 1;
    if (memchr(s, '/', (size_t)(end - s)))
        return parse_error(p, "%s \"%.*s\" has more than one '/'", f->what, utf8_prefix(slash, (size_t)(end - slash), 40), slash);
    if (!parse_uint(s, (size_t)(end - s), step) || *step == 0)
        return parse_error(p, "%s step \"%.*s\" is not a positive number", f->what, utf8_prefix(s, (size_t)(end - s), 40), s);
    return 0;
}

/* One list item: "*", "?", "a", "a-b", each optionally followed by "/n";
 * "a/n" means a through the field's end, every n. ORs its values into
 * *bits and sets *star for an item that starts with '*' or '?' (any step):
 * such a day field does not count as restricted for the day-of-month OR
 * day-of-week rule, as the API defines it. */
static int parse_item(const struct parser *p, const struct field_def *f, const char *s, size_t n,
                      uint64_t *bits, bool *star)
{
    const char *end = s + n, *slash = memchr(s, '/', n);
    const char *range_end = slash ? slash : end;
    size_t rn = (size_t)(range_end - s);
    const char *dash = memchr(s, '-', rn);
    int lo, hi, step;
    if (n == 0)
        return parse_error(p, "%s list has an empty item", f->what);
    if (parse_step(p, f, slash, end, &step) < 0)
        return -1;
    if (rn == 1 && (s[0] == '*' || s[0] == '?')) {
        lo = f->min, hi = f->open_max;
        *star = true;
    } else if (dash) {
        if (memchr(dash + 1, '-', (size_t)(range_end - dash - 1)))
            return parse_error(p, "%s range \"%.*s\" has more than one '-'", f->what, utf8_prefix(s, rn, 40), s);
        if (parse_value(p, f, s, (size_t)(dash - s), &lo) < 0 ||
            parse_value(p, f, dash + 1, (size_t)(range_end - dash - 1), &hi) < 0)
            return -1;
    } else {
        if (parse_value(p, f, s, rn, &lo) < 0)
            return -1;
        hi = slash ? f->open_max : lo;
    }
    if (lo > hi)
        return parse_error(p, "%s range \"%.*s\" runs backwards (%d is after %d)", f->what, utf8_prefix(s, rn, 40), s, lo,
                           hi);
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << v;
    return 0;
}

/* A comma-separated list of items for field f. */
static int parse_field(const struct parser *p, int field, const char *s, size_t n, cron_t *c)
{
    const struct field_def *f = &FIELDS[field];
    const char *end = s + n;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item_end = comma ? comma : end;
        if (parse_item(p, f, s, (size_t)(item_end - s), &c->bits[field], &c->star[field]) < 0)
            return -1;
        if (!comma)
            break;
        s = comma + 1;
    }
    if (field == F_DOW && (c->bits[F_DOW] & 1ULL << 7)) /* 7 is Sunday too */
        c->bits[F_DOW] = (c->bits[F_DOW] & ~(1ULL << 7)) | 1;
    return 0;
}

/* Five whitespace-separated fields. */
static int parse_fields(const struct parser *p, const char *s, size_t n, cron_t *c)
{
    const char *at[F_COUNT], *end = s + n;
    size_t len[F_COUNT];
    int count = 0;
    while (s < end) {
        while (s < end && is_space(*s))
            s++;
        if (s == end)
            break;
        const char *start = s;
        while (s < end && !is_space(*s))
            s++;
        if (count < F_COUNT) {
            at[count] = start;
            len[count] = (size_t)(s - start);
        }
        count++;
    }
    if (count != F_COUNT)
        return parse_error(p, "expected 5 fields (minute hour day-of-month month day-of-week), found %d",
                           count);
    for (int i = 0; i < F_COUNT; i++)
        if (parse_field(p, i, at[i], len[i], c) < 0)
            return -1;
    return 0;
}

/* "@every <duration>" (at least 1s; not rounded) or a named descriptor. */
static int parse_descriptor(const struct parser *p, const char *s, size_t n, cron_t *c)
{
    if (n >= 6 && memcmp(s, "@every", 6) == 0 && (n == 6 || is_space(s[6]))) {
        char derr[200];
        const char *d = s + 6, *end = s + n;
        while (d < end && is_space(*d))
            d++;
        if (d == end)
            return parse_error(p, "@every needs a duration such as \"1h30m\"");
        if (duration_parse(d, (size_t)(end - d), &c->every_ns, derr, sizeof derr) != 0)
            return parse_error(p, "%s", derr);
        if (c->every_ns < NTIME_NS_PER_S)
            return parse_error(p, "@every needs a duration of at least 1s");
        return 0;
    }
    for (size_t i = 0; i < sizeof DESCRIPTORS / sizeof DESCRIPTORS[0]; i++)
        if (strlen(DESCRIPTORS[i].name) == n && memcmp(DESCRIPTORS[i].name, s, n) == 0)
            return parse_fields(p, DESCRIPTORS[i].fields, strlen(DESCRIPTORS[i].fields), c);
    return parse_error(p, "unknown descriptor \"%.*s\" (expected @yearly, @annually, @monthly, @weekly, "
                          "@daily, @midnight, @hourly or @every <duration>)",
                       utf8_prefix(s, n, 40), s);
}

/* An optional "CRON_TZ=<zone> " or "TZ=<zone> " prefix: sets c->tz and
 * moves *s past it. "Local" is Go's name for the server's own zone, so it
 * means default_tz here. */
static int parse_zone_prefix(const struct parser *p, const char **s, size_t *n, cron_t *c,
                             const tz_t *default_tz)
{
    size_t skip = 0;
    if (*n >= 8 && memcmp(*s, "CRON_TZ=", 8) == 0)
        skip = 8;
    else if (*n >= 3 && memcmp(*s, "TZ=", 3) == 0)
        skip = 3;
    else
        return 0;
    const char *name = *s + skip, *end = *s + *n, *rest = name;
    while (rest < end && !is_space(*rest))
        rest++;
    size_t name_len = (size_t)(rest - name);
    while (rest < end && is_space(*rest))
        rest++;
    if (rest == end)
        return parse_error(p, "a schedule must follow the time zone");
    if (name_len == 5 && memcmp(name, "Local", 5) == 0) {
        c->tz = default_tz;
    } else {
        char zerr[200];
        c->tz = tz_get(name, name_len, zerr, sizeof zerr);
        if (!c->tz)
            return parse_error(p, "%s", zerr);
    }
    *n = (size_t)(end - rest);
    *s = rest;
    return 0;
}

cron_t *cron_parse(const char *spec, size_t len, ntime_t created_at, const tz_t *default_tz,
                   char *err, size_t errlen)
{
    while (len > 0 && is_space(spec[0]))
        spec++, len--;
    while (len > 0 && is_space(spec[len - 1]))
        len--;
    if (len == 0) {
        snprintf(err, errlen, "cron definition is empty");
        return NULL;
    }
    struct parser p = {spec, len, err, errlen};
    cron_t *c = xcalloc(1, sizeof *c);
    const char *s = spec;
    size_t n = len;
    default_tz = default_tz ? default_tz : tz_utc();
    c->tz = default_tz;
    c->created_at = created_at;
    if (parse_zone_prefix(&p, &s, &n, c, default_tz) < 0 ||
        (s[0] == '@' ? parse_descriptor(&p, s, n, c) : parse_fields(&p, s, n, c)) < 0) {
        free(c);
        return NULL;
    }
    return c;
}

void cron_free(cron_t *c)
{
    free(c);
}

/* ------------------------------------------------------------------------ */
/* Next fire time                                                           */
/* ------------------------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b < 0) ? q - 1 : q;
}

/* The smallest v in [from, max] with bit v set in mask, or -1. */
static int next_bit(uint64_t mask, int from, int max)
{
    for (int v = from; v <= max; v++)
        if (mask >> v & 1)
            return v;
    return -1;
}

/* The day rule: if either day field starts with '*' or '?', both must
 * match; otherwise either may. */
static bool day_matches(const cron_t *c, int64_t days, unsigned mday)
{
    int wday = (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    bool dom = c->bits[F_DOM] >> mday & 1, dow = c->bits[F_DOW] >> wday & 1;
    if (c->star[F_DOM] || c->star[F_DOW])
        return dom && dow;
    return dom || dow;
}

/* The first local minute at or after `local` (a whole minute, local
 * seconds) whose fields match, or INT64_MAX once past year_limit. Each
 * miss jumps to the start of the next month, day, hour or minute that
 * could match, so a year costs at most a few hundred steps. */
static int64_t next_local_match(const cron_t *c, int64_t local, int64_t year_limit)
{
    for (;;) {
        int64_t days = floor_div(local, SECS_PER_DAY), y;
        int sod = (int)(local - days * SECS_PER_DAY), h = sod / 3600, mi = sod % 3600 / 60, next;
        unsigned m, d;
        rfc3339_civil_from_days(days, &y, &m, &d);
        if (y > year_limit)
            return INT64_MAX;
        if (!(c->bits[F_MONTH] >> m & 1)) {
            next = next_bit(c->bits[F_MONTH], (int)m + 1, 12);
            days = next < 0 ? rfc3339_days_from_civil(y + 1, 1, 1)
                            : rfc3339_days_from_civil(y, (unsigned)next, 1);
            local = days * SECS_PER_DAY;
        } else if (!day_matches(c, days, d)) {
            local = (days + 1) * SECS_PER_DAY;
        } else if (!(c->bits[F_HOUR] >> h & 1)) {
            next = next_bit(c->bits[F_HOUR], h + 1, 23);
            local = next < 0 ? (days + 1) * SECS_PER_DAY : days * SECS_PER_DAY + next * 3600;
        } else if (!(c->bits[F_MINUTE] >> mi & 1)) {
            next = next_bit(c->bits[F_MINUTE], mi + 1, 59);
            local = days * SECS_PER_DAY + h * 3600 + (next < 0 ? 3600 : next * 60);
        } else {
            return local;
        }
    }
}

/* created_at + k * every_ns for the smallest k >= 1 that is after `after`;
 * NTIME_MAX if that does not fit an ntime_t. */
static ntime_t every_next(const cron_t *c, ntime_t after)
{
    int64_t k = 1, since, span;
    ntime_t at;
    if (after >= c->created_at) {
        if (__builtin_sub_overflow(after, c->created_at, &since))
            return NTIME_MAX;
        k = since / c->every_ns + 1;
    }
    if (__builtin_mul_overflow(k, c->every_ns, &span) || __builtin_add_overflow(c->created_at, span, &at))
        return NTIME_MAX;
    return at;
}

/* Starts at the first whole local minute after `after`'s local time and
 * takes the first matching minute whose first occurrence is after
 * `after`. The check against `after` also covers an `after` inside a
 * fall-back overlap: minutes of the repeated hour then map to first
 * occurrences already past, and are passed over. */
ntime_t cron_next(const cron_t *c, ntime_t after)
{
    if (c->every_ns > 0)
        return every_next(c, after);
    int64_t after_s = floor_div(after, NTIME_NS_PER_S);
    int64_t local = floor_div(after_s + tz_offset_at(c->tz, after_s), 60) * 60 + 60;
    int64_t y;
    unsigned m, d;
    rfc3339_civil_from_days(floor_div(local, SECS_PER_DAY), &y, &m, &d);
    for (int64_t year_limit = y + CRON_YEARS_AHEAD;; local += 60) {
        int64_t out[2];
        local = next_local_match(c, local, year_limit);
        if (local == INT64_MAX)
            return NTIME_MAX;
        if (tz_local_to_utc(c->tz, local, out) > 0 && out[0] > after_s)
            return out[0] > NTIME_MAX / NTIME_NS_PER_S ? NTIME_MAX : out[0] * NTIME_NS_PER_S;
    }
}
