/*
 * cron.c -- cron definitions and their next fire time; see cron.h.
 *
 * DESIGN
 * The contract is robfig/cron v3's standard parser, so this file follows
 * that library's grammar and its search step by step rather than a cleaner
 * model of cron: a model of our own would differ at the edges (steps in day
 * fields, DST jumps of 30 minutes, days without a midnight), and a client
 * cannot tell an edge from a bug. tests/crondiff compares the two.
 *
 * Parsing: a five-field definition becomes one bit mask per field (bit v
 * set: value v matches), and for day of month and day of week a "star"
 * flag: the field has an item "*" or "?" with no step above 1. Only the
 * flags pick the day rule: either starred, both must match; else either.
 * Descriptors other than "@every" are rewritten into their five fields and
 * parsed the same way, which gives the masks and flags robfig builds for
 * them.
 *
 * Next fire: robfig's Schedule.Next on Go's time.Time, with the zone's
 * offsets from tz.h. Go's operations it relies on are reproduced exactly:
 * time.Date and AddDate normalise overflowing fields and resolve a wall
 * time that does not exist or exists twice as Go does (go_date), Add moves
 * the instant, Truncate works on the instant. Then the two documented
 * exceptions: day of week 7 is Sunday (in the parser), and a fire time in
 * the second pass through a fall-back hour is dropped (cron_next).
 *
 * Times: ntime_t (ns) at the interface; Unix seconds inside the walk.
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
#define CRON_YEARS_AHEAD 5             /* search horizon, robfig's yearLimit */
#define CRON_SPEC_SHOWN 100            /* at most this much of a definition is echoed in errors */
#define CRON_EVERY_MAX_S (876000LL * 3600) /* "@every" at most 100 years */
#define CRON_WALK_MAX 1000000          /* steps before a search gives up (robfig would spin) */
#define CRON_NEVER INT64_MAX           /* no fire time, in the walk's seconds */
#define CRON_PASS_MAX (24 * 60 + 1)    /* answers passed over before giving up: a day of minutes */

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

struct cron {
    uint64_t bits[F_COUNT]; /* bit v set: value v matches; day of week 0-6, 0 = Sunday */
    bool star[F_COUNT];     /* an item "*" or "?" without a step above 1: days AND */
    bool never;             /* some field can match nothing: no fire time at all */
    int64_t every_s;        /* > 0 for "@every": whole seconds; the masks are then unused */
    int64_t anchor_s;       /* "@every" fires at anchor_s + k * every_s, k >= 1 */
    const tz_t *tz;         /* borrowed: zones live until tz_cleanup() */
};

/* Bounds of one field. Values may go up to max; '*' and the open end of
 * "a/n" stop at open_max, which differs only for day of week: 7 is
 * accepted as Sunday, but "*" and "1/2" must not reach it. */
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
#define DESCRIPTOR_COUNT (sizeof DESCRIPTORS / sizeof DESCRIPTORS[0])

/* What the parser needs to write an error: the whole definition, to echo,
 * and the caller's buffer. */
struct parser {
    const char *spec;
    size_t len;
    char *err;
    size_t errlen;
};

/* ------------------------------------------------------------------------ */
/* Text helpers                                                             */
/* ------------------------------------------------------------------------ */

/* Length of the white space character at s[0..n) as Go's unicode.IsSpace
 * sees it (robfig splits fields with strings.Fields), or 0: ASCII
 * "\t\n\v\f\r ", U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000. */
static size_t space_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n >= 1 && (u[0] == ' ' || (u[0] >= '\t' && u[0] <= '\r')))
        return 1;
    if (n >= 2 && u[0] == 0xc2 && (u[1] == 0x85 || u[1] == 0xa0))
        return 2;
    if (n < 3)
        return 0;
    if ((u[0] == 0xe1 && u[1] == 0x9a && u[2] == 0x80) || (u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x80) ||
        (u[0] == 0xe2 && u[1] == 0x81 && u[2] == 0x9f))
        return 3;
    if (u[0] == 0xe2 && u[1] == 0x80 && ((u[2] >= 0x80 && u[2] <= 0x8a) || u[2] == 0xa8 || u[2] == 0xa9 || u[2] == 0xaf))
        return 3;
    return 0;
}

/* Length of the white space character that ends s[0..n), or 0. */
static size_t space_len_back(const char *s, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (space_len(s + n - k, k) == k)
            return k;
    return 0;
}

/* Go's strings.TrimSpace on s[0..*n): moves *s and shrinks *n. */
static void trim_space(const char **s, size_t *n)
{
    size_t k;
    while (*n > 0 && (k = space_len(*s, *n)) > 0)
        *s += k, *n -= k;
    while (*n > 0 && (k = space_len_back(*s, *n)) > 0)
        *n -= k;
}

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

/* ------------------------------------------------------------------------ */
/* Fields                                                                   */
/* ------------------------------------------------------------------------ */

/* Go's strconv.Atoi followed by robfig's "not negative": an optional sign,
 * then one or more decimal digits (leading zeros allowed). Values above
 * 9999 come back as 9999: every field's range check then refuses them, as
 * Atoi's overflow error would. Returns false for anything else. */
static bool parse_int(const char *s, size_t n, int *out)
{
    bool minus = n > 0 && s[0] == '-';
    size_t i = n > 0 && (s[0] == '+' || s[0] == '-');
    int v = 0;
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
        v = v > 9999 ? 9999 : v;
    }
    if (minus && v > 0)
        return false;
    *out = v;
    return true;
}

/* Whether s[0..n) is, lowered as Go's strings.ToLower lowers it, the
 * three-letter name `name`. Besides ASCII letters only U+0130 ('I' with a
 * dot) lowers to an ASCII letter used in a name ('i', in "fri"). */
static bool name_equals(const char *s, size_t n, const char *name)
{
    size_t i = 0, j = 0;
    for (; i < n && name[j]; j++) {
        char ch = s[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if ((unsigned char)s[i] == 0xc4 && i + 1 < n && (unsigned char)s[i + 1] == 0xb0)
            ch = 'i', i++;
        if (ch != name[j])
            return false;
        i++;
    }
    return i == n && name[j] == '\0';
}

/* One value of a field: a name (where the field has them) or a number;
 * the range is checked by the caller, as robfig does. */
static int parse_value(const struct parser *p, const struct field_def *f, const char *s, size_t n, int *out)
{
    for (int i = 0; f->names && f->names[i]; i++)
        if (name_equals(s, n, f->names[i])) {
            *out = f->min + i;
            return 0;
        }
    if (parse_int(s, n, out))
        return *out <= f->max ? 0
                              : parse_error(p, "%s %.*s out of range %d-%d", f->what, utf8_prefix(s, n, 40), s,
                                            f->min, f->max);
    if (f->names)
        return parse_error(p, "%s \"%.*s\" is not a number or a name (%s)", f->what, utf8_prefix(s, n, 40), s,
                           f == &FIELDS[F_MONTH] ? "JAN-DEC" : "SUN-SAT");
    return parse_error(p, "%s \"%.*s\" is not a number", f->what, utf8_prefix(s, n, 40), s);
}

/* The "/n" of an item into *step: a number, 0 refused later. */
static int parse_step(const struct parser *p, const struct field_def *f, const char *s, size_t n, int *step)
{
    if (memchr(s, '/', n))
        return parse_error(p, "%s \"%.*s\" has more than one '/'", f->what, utf8_prefix(s, n, 40), s);
    if (!parse_int(s, n, step))
        return parse_error(p, "%s step \"%.*s\" is not a positive number", f->what, utf8_prefix(s, n, 40), s);
    return 0;
}

/* The range part of an item: "*" or "?" (anything after a '-' following
 * them is ignored, as robfig does), "a" or "a-b". */
static int parse_range(const struct parser *p, const struct field_def *f, const char *s, size_t n, int *lo,
                       int *hi, bool *star, bool *single)
{
    const char *dash = memchr(s, '-', n);
    size_t first = dash ? (size_t)(dash - s) : n;
    *single = !dash;
    if (first == 1 && (s[0] == '*' || s[0] == '?')) {
        *lo = f->min, *hi = f->open_max, *star = true;
        return 0;
    }
    if (parse_value(p, f, s, first, lo) < 0)
        return -1;
    *hi = *lo;
    if (!dash)
        return 0;
    const char *b = dash + 1;
    size_t bn = n - first - 1;
    if (memchr(b, '-', bn))
        return parse_error(p, "%s range \"%.*s\" has more than one '-'", f->what, utf8_prefix(s, n, 40), s);
    return parse_value(p, f, b, bn, hi);
}

/* One list item, robfig's getRange: a range, optionally "/n"; "a/n" means
 * a through the field's end. ORs its values into *bits; sets *star for
 * "*" or "?" with no step above 1. */
static int parse_item(const struct parser *p, const struct field_def *f, const char *s, size_t n,
                      uint64_t *bits, bool *star)
{
    const char *slash = memchr(s, '/', n);
    size_t rn = slash ? (size_t)(slash - s) : n;
    int lo, hi, step = 1;
    bool is_star = false, single;
    if (parse_range(p, f, s, rn, &lo, &hi, &is_star, &single) < 0)
        return -1;
    if (slash) {
        if (parse_step(p, f, slash + 1, n - rn - 1, &step) < 0)
            return -1;
        hi = single ? f->open_max : hi;
        is_star = is_star && step <= 1;
    }
    if (lo < f->min || lo > f->max)
        return parse_error(p, "%s %d out of range %d-%d", f->what, lo, f->min, f->max);
    if (hi > f->max)
        return parse_error(p, "%s %d out of range %d-%d", f->what, hi, f->min, f->max);
    if (lo > hi)
        return parse_error(p, "%s range \"%.*s\" runs backwards (%d is after %d)", f->what, utf8_prefix(s, rn, 40),
                           s, lo, hi);
    if (step == 0)
        return parse_error(p, "%s step \"%.*s\" is not a positive number", f->what, (int)(n - rn - 1), slash + 1);
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << v;
    *star = *star || is_star;
    return 0;
}

/* A comma-separated list of items; empty items are skipped (robfig splits
 * with strings.FieldsFunc), so "," alone matches nothing. */
static int parse_field(const struct parser *p, int field, const char *s, size_t n, cron_t *c)
{
    const struct field_def *f = &FIELDS[field];
    const char *end = s + n;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item_end = comma ? comma : end;
        if (item_end > s && parse_item(p, f, s, (size_t)(item_end - s), &c->bits[field], &c->star[field]) < 0)
            return -1;
        s = comma ? comma + 1 : end;
    }
    if (field == F_DOW && (c->bits[F_DOW] & 1ULL << 7)) /* 7 is Sunday too */
        c->bits[F_DOW] = (c->bits[F_DOW] & ~(1ULL << 7)) | 1;
    return 0;
}

/* The message for a wrong number of fields, with a hint where one helps. */
static int field_count_error(const struct parser *p, const char *first, int count)
{
    if (count >= 1 && first[0] == '@')
        return parse_error(p, "a descriptor such as \"@daily\" must be the whole definition, with no space "
                              "before it");
    if (count == 6)
        return parse_error(p, "expected 5 fields (minute hour day-of-month month day-of-week), found 6; "
                              "there is no seconds field");
    return parse_error(p, "expected 5 fields (minute hour day-of-month month day-of-week), found %d", count);
}

/* Five fields separated by white space (Go's strings.Fields). */
static int parse_fields(const struct parser *p, const char *s, size_t n, cron_t *c)
{
    const char *at[F_COUNT] = {s}, *end = s + n;
    size_t len[F_COUNT], k;
    int count = 0;
    while (s < end) {
        if ((k = space_len(s, (size_t)(end - s))) > 0) {
            s += k;
            continue;
        }
        const char *start = s;
        while (s < end && space_len(s, (size_t)(end - s)) == 0)
            s++;
        if (count < F_COUNT) {
            at[count] = start;
            len[count] = (size_t)(s - start);
        }
        count++;
    }
    if (count != F_COUNT)
        return field_count_error(p, at[0], count);
    for (int i = 0; i < F_COUNT; i++)
        if (parse_field(p, i, at[i], len[i], c) < 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Descriptors and the zone prefix                                          */
/* ------------------------------------------------------------------------ */

/* "@every <d>" after its one space: as robfig's Every, d is cut to whole
 * seconds, at least 1s; above 100 years it is refused. */
static int parse_every(const struct parser *p, const char *d, size_t n, cron_t *c)
{
    char derr[200];
    int64_t ns;
    if (n == 0 || space_len(d, n) > 0)
        return parse_error(p, "\"@every\" takes one space and then a duration such as \"1h30m\"");
    if (duration_parse(d, n, &ns, derr, sizeof derr) != 0)
        return parse_error(p, "%s", derr);
    c->every_s = ns < NTIME_NS_PER_S ? 1 : ns / NTIME_NS_PER_S;
    if (c->every_s > CRON_EVERY_MAX_S)
        return parse_error(p, "@every is at most 100 years (876000h)");
    return 0;
}

/* A descriptor, exactly as written: robfig compares the whole rest of the
 * definition, so case and trailing space matter. */
static int parse_descriptor(const struct parser *p, const char *s, size_t n, cron_t *c)
{
    const char *t = s;
    size_t tn = n;
    if (n >= 7 && memcmp(s, "@every ", 7) == 0)
        return parse_every(p, s + 7, n - 7, c);
    for (size_t i = 0; i < DESCRIPTOR_COUNT; i++)
        if (strlen(DESCRIPTORS[i].name) == n && memcmp(DESCRIPTORS[i].name, s, n) == 0)
            return parse_fields(p, DESCRIPTORS[i].fields, strlen(DESCRIPTORS[i].fields), c);
    trim_space(&t, &tn);
    for (size_t i = 0; i < DESCRIPTOR_COUNT; i++) {
        const char *name = DESCRIPTORS[i].name;
        if (strlen(name) == tn && memcmp(name, t, tn) == 0)
            return parse_error(p, "\"%s\" must be the whole definition, with no space after it", name);
        if (strlen(name) == tn && strncasecmp(name, t, tn) == 0)
            return parse_error(p, "descriptors are lower case: \"%s\"", name);
    }
    if (tn == 6 && memcmp(t, "@every", 6) == 0)
        return parse_error(p, "\"@every\" takes one space and then a duration such as \"1h30m\"");
    return parse_error(p, "unknown descriptor \"%.*s\" (expected @yearly, @annually, @monthly, @weekly, "
                          "@daily, @midnight, @hourly or @every <duration>)",
                       utf8_prefix(s, n, 40), s);
}

/* The zone named by a prefix, as Go's time.LoadLocation: "" and "UTC" are
 * UTC, "Local" the default zone; names with "..", or starting with '/' or
 * '\\', are refused before the zoneinfo is asked. */
static int load_zone(const struct parser *p, const char *name, size_t n, const tz_t *default_tz, cron_t *c)
{
    char zerr[200];
    if (n == 0)
        c->tz = tz_utc();
    else if (n == 5 && memcmp(name, "Local", 5) == 0)
        c->tz = default_tz;
    else if (name[0] == '/' || name[0] == '\\' || memmem(name, n, "..", 2))
        return parse_error(p, "invalid time zone name \"%.*s\": expected an IANA name such as "
                              "\"Europe/Berlin\"", utf8_prefix(name, n, 64), name);
    else if (!(c->tz = tz_get(name, n, zerr, sizeof zerr)))
        return parse_error(p, "%s", zerr);
    return 0;
}

/* An optional "CRON_TZ=<zone> " or "TZ=<zone> " prefix, as robfig reads
 * it: the zone runs from the '=' to the definition's first space; what
 * follows, trimmed, is the schedule. Moves *s past the prefix. */
static int parse_zone_prefix(const struct parser *p, const char **s, size_t *n, cron_t *c,
                             const tz_t *default_tz)
{
    size_t skip = 0;
    if (*n >= 8 && memcmp(*s, "CRON_TZ=", 8) == 0)
        skip = 8;
    else if (*n >= 3 && memcmp(*s, "TZ=", 3) == 0)
        skip = 3;
    else if ((*n >= 8 && strncasecmp(*s, "CRON_TZ=", 8) == 0) || (*n >= 3 && strncasecmp(*s, "TZ=", 3) == 0))
        return parse_error(p, "the zone prefix is written in upper case: \"%s\"",
                           (*s)[0] == 'c' || (*s)[0] == 'C' ? "CRON_TZ=" : "TZ=");
    else
        return 0;
    const char *name = *s + skip, *end = *s + *n;
    const char *space = memchr(name, ' ', (size_t)(end - name));
    if (!space)
        return parse_error(p, "a space and a schedule must follow the time zone");
    if (load_zone(p, name, (size_t)(space - name), default_tz, c) < 0)
        return -1;
    *s = space;
    *n = (size_t)(end - space);
    trim_space(s, n);
    if (*n == 0)
        return parse_error(p, "a schedule must follow the time zone");
    return 0;
}

/* No fire time can exist when a field matches nothing ("," alone). */
static bool never_fires(const cron_t *c)
{
    const uint64_t *b = c->bits;
    bool and_days = c->star[F_DOM] || c->star[F_DOW];
    return !b[F_MINUTE] || !b[F_HOUR] || !b[F_MONTH] || (and_days ? !b[F_DOM] || !b[F_DOW] : !b[F_DOM] && !b[F_DOW]);
}

cron_t *cron_parse(const char *spec, size_t len, ntime_t created_at, const tz_t *default_tz,
                   char *err, size_t errlen)
{
    const char *s = spec;
    size_t n = len;
    trim_space(&s, &n);
    if (n == 0) {
        snprintf(err, errlen, "cron definition is empty");
        return NULL;
    }
    struct parser p = {spec, len, err, errlen};
    cron_t *c = xcalloc(1, sizeof *c);
    s = spec, n = len;
    default_tz = default_tz ? default_tz : tz_utc();
    c->tz = default_tz;
    c->anchor_s = created_at / NTIME_NS_PER_S - (created_at % NTIME_NS_PER_S < 0);
    if (parse_zone_prefix(&p, &s, &n, c, default_tz) < 0 ||
        (s[0] == '@' ? parse_descriptor(&p, s, n, c) : parse_fields(&p, s, n, c)) < 0) {
        free(c);
        return NULL;
    }
    c->never = c->every_s == 0 && never_fires(c);
    return c;
}

void cron_free(cron_t *c)
{
    free(c);
}

/* ------------------------------------------------------------------------ */
/* Go's time, as far as robfig's search uses it                             */
/* ------------------------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b < 0) ? q - 1 : q;
}

/* A time.Time's calendar view in the schedule's zone. */
struct wall {
    int64_t year;
    int month, day, hour, min, sec, wday; /* wday 0 = Sunday */
};

static struct wall wall_at(const tz_t *z, int64_t t)
{
    int64_t local = t + tz_offset_at(z, t), days = floor_div(local, SECS_PER_DAY);
    int sod = (int)(local - days * SECS_PER_DAY);
    unsigned m, d;
    struct wall w;
    rfc3339_civil_from_days(days, &w.year, &m, &d);
    w.month = (int)m, w.day = (int)d;
    w.hour = sod / 3600, w.min = sod / 60 % 60, w.sec = sod % 60;
    w.wday = (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    return w;
}

/* Go's time.Date(year, month, day, hour, min, sec, 0, z): fields out of
 * range carry into the next (month 13 is January of the next year, day 0
 * the last of the month before). A wall time L that does not exist, or
 * exists twice, resolves as Go's does: with the offset in effect at L read
 * as an instant, checked once at the instant that gives. */
static int64_t go_date(const tz_t *z, int64_t year, int month, int day, int hour, int min, int sec)
{
    int64_t m0 = month - 1, carry = floor_div(m0, 12);
    int64_t local = (rfc3339_days_from_civil(year + carry, (unsigned)(m0 - carry * 12 + 1), 1) + day - 1) *
                        SECS_PER_DAY +
                    hour * 3600 + min * 60 + sec;
    return local - tz_offset_at(z, local - tz_offset_at(z, local));
}

/* ------------------------------------------------------------------------ */
/* Next fire time: robfig's Schedule.Next                                   */
/* ------------------------------------------------------------------------ */

/* The search's state: the instant, its wall time, and robfig's "added"
 * (a field was moved, so the smaller ones start from zero). */
struct walk {
    const cron_t *c;
    int64_t t;
    struct wall w;
    bool added;
    long steps;
};

static void walk_to(struct walk *k, int64_t t)
{
    k->t = t;
    k->w = wall_at(k->c->tz, t);
    k->steps++;
}

/* robfig's day rule: either field starred, both must match; else either. */
static bool day_matches(const cron_t *c, const struct wall *w)
{
    bool dom = c->bits[F_DOM] >> w->day & 1, dow = c->bits[F_DOW] >> w->wday & 1;
    if (c->star[F_DOM] || c->star[F_DOW])
        return dom && dow;
    return dom || dow;
}

/* Each step moves to a matching month, day, hour, minute or second and
 * returns true when it wrapped into the next larger unit, after which the
 * search starts over from the month. */
static bool walk_month(struct walk *k)
{
    const tz_t *z = k->c->tz;
    while (!(k->c->bits[F_MONTH] >> k->w.month & 1)) {
        if (!k->added) {
            k->added = true;
            walk_to(k, go_date(z, k->w.year, k->w.month, 1, 0, 0, 0));
        }
        walk_to(k, go_date(z, k->w.year, k->w.month + 1, k->w.day, k->w.hour, k->w.min, k->w.sec));
        if (k->w.month == 1)
            return true;
    }
    return false;
}

/* Whole days; where a day starts at 1:00 or 23:00 (no midnight that day),
 * robfig moves by that hour back to what it takes for midnight. */
static bool walk_day(struct walk *k)
{
    const tz_t *z = k->c->tz;
    while (!day_matches(k->c, &k->w)) {
        if (!k->added) {
            k->added = true;
            walk_to(k, go_date(z, k->w.year, k->w.month, k->w.day, 0, 0, 0));
        }
        walk_to(k, go_date(z, k->w.year, k->w.month, k->w.day + 1, k->w.hour, k->w.min, k->w.sec));
        if (k->w.hour != 0)
            walk_to(k, k->t + (k->w.hour > 12 ? 24 - k->w.hour : -k->w.hour) * 3600);
        if (k->w.day == 1)
            return true;
    }
    return false;
}

static bool walk_hour(struct walk *k)
{
    while (!(k->c->bits[F_HOUR] >> k->w.hour & 1)) {
        if (!k->added) {
            k->added = true;
            walk_to(k, go_date(k->c->tz, k->w.year, k->w.month, k->w.day, k->w.hour, 0, 0));
        }
        walk_to(k, k->t + 3600);
        if (k->w.hour == 0)
            return true;
    }
    return false;
}

static bool walk_minute(struct walk *k)
{
    while (!(k->c->bits[F_MINUTE] >> k->w.min & 1)) {
        if (!k->added) {
            k->added = true;
            walk_to(k, floor_div(k->t, 60) * 60); /* Truncate works on the instant */
        }
        walk_to(k, k->t + 60);
        if (k->w.min == 0)
            return true;
    }
    return false;
}

/* The seconds field of the standard parser is "0". */
static bool walk_second(struct walk *k)
{
    while (k->w.sec != 0) {
        k->added = true;
        walk_to(k, k->t + 1);
        if (k->w.sec == 0)
            return true;
    }
    return false;
}

/* robfig's Schedule.Next from the instant `from` (a whole second, robfig's
 * "the upcoming second"): the first matching time, or CRON_NEVER if there
 * is none up to the end of the fifth year after from's. */
static int64_t robfig_next(const cron_t *c, int64_t from)
{
    struct walk k = {.c = c};
    walk_to(&k, from);
    int64_t year_limit = k.w.year + CRON_YEARS_AHEAD;
    while (k.w.year <= year_limit && k.steps < CRON_WALK_MAX) {
        if (!walk_month(&k) && !walk_day(&k) && !walk_hour(&k) && !walk_minute(&k) && !walk_second(&k))
            return k.t;
    }
    return CRON_NEVER;
}

/* Whether instant t's wall time already occurred at an earlier instant:
 * the second pass through a fall-back hour. */
static bool second_pass(const tz_t *z, int64_t t)
{
    int64_t out[2];
    return tz_local_to_utc(z, t + tz_offset_at(z, t), out) == 2 && out[0] < t;
}

/* anchor + k * every for the smallest k >= 1 that is after `after`;
 * NTIME_MAX if that does not fit an ntime_t. */
static ntime_t every_next(const cron_t *c, ntime_t after)
{
    int64_t k = 1, span, anchor, every = c->every_s * NTIME_NS_PER_S, since;
    ntime_t at;
    if (__builtin_mul_overflow(c->anchor_s, NTIME_NS_PER_S, &anchor))
        return NTIME_MAX;
    if (after >= anchor) {
        if (__builtin_sub_overflow(after, anchor, &since))
            return NTIME_MAX;
        k = since / every + 1;
    }
    if (__builtin_mul_overflow(k, every, &span) || __builtin_add_overflow(anchor, span, &at))
        return NTIME_MAX;
    return at;
}

/* robfig's answer from the whole second after `after`, with two
 * corrections (documented exception 2). A time in the second pass through
 * a fall-back hour is passed over, and the search goes on from it, as
 * robfig would be asked for the time after it. And inside a fall-back
 * change robfig can answer a time before the one it was asked from (the
 * hour step lands on the repeated hour after the hour was checked, e.g.
 * "45 3 * * *" in Pacific/Chatham, whose 03:45 becomes 02:45); such an
 * answer is passed over and the search goes on from the next whole minute,
 * so a fire time is never early and never the same twice. */
ntime_t cron_next(const cron_t *c, ntime_t after)
{
    if (c->every_s > 0)
        return every_next(c, after);
    if (c->never)
        return NTIME_MAX;
    int64_t t = floor_div(after, NTIME_NS_PER_S); /* the search starts at t + 1 */
    for (int i = 0; i < CRON_PASS_MAX; i++) {
        int64_t r = robfig_next(c, t + 1);
        if (r == CRON_NEVER || r > NTIME_MAX / NTIME_NS_PER_S)
            return NTIME_MAX;
        if (r <= t)
            t = floor_div(t + 1, 60) * 60 + 59;
        else if (second_pass(c->tz, r))
            t = r;
        else
            return r * NTIME_NS_PER_S;
    }
    return NTIME_MAX;
}
