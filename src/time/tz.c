/*
 * tz.c -- IANA time zones read from TZif files (RFC 8536); see tz.h.
 *
 * DESIGN
 * A loaded zone is a sorted array of transition instants, the UTC offset in
 * effect from each one on, the offset before the first (time type 0), and
 * the footer's POSIX TZ rule, which answers for every instant at or after
 * the last transition. Time types are resolved to plain offsets at load
 * time: lookups only ever need the offset, never the abbreviation or the
 * is-DST flag, so the zone stays two parallel arrays and a binary search.
 *
 * Version 1 files are read with their 32-bit data; version 2+ files skip it
 * and read the 64-bit block and its footer. Files with leap-second records
 * (the "right/" zones) are refused: their timestamps count leap seconds,
 * Unix time does not, and every answer would be off by half a minute.
 *
 * Zones are cached in a singly linked list keyed by name. A process sees at
 * most a few hundred distinct zones (the files on disk bound it), and tz_get
 * runs when a cron definition is parsed, not per fire, so a hash table would
 * buy nothing. Lookups that fail are not cached: the name comes from users,
 * and caching misses would let them grow the list without bound.
 *
 * Single-threaded, like the rest of the core.
 */
#include "tz.h"
#include "rfc3339.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_NAME_MAX 255
#define TZ_FILE_MAX (1 << 20)   /* real files are under 4 KiB; bounds a bad file's cost */
#define TZ_UTOFF_MIN (-89999)   /* RFC 8536 section 3.2: offsets stay within -25h..+26h */
#define TZ_UTOFF_MAX 93599
#define TZ_WINDOW (26 * 3600)   /* any instant is within this of its local time */
#define TZ_RULE_T_MAX (1LL << 60) /* footer rule years are computed within +-36e9 years */
#define SECS_PER_DAY 86400

/* One end of a daylight-saving period in a POSIX TZ rule. */
struct tz_rule_date {
    char kind;      /* 'J': day 1-365 never counting Feb 29; 'D': day 0-365; 'M': month.week.day */
    int16_t day;    /* 'J'/'D': the day number; 'M': weekday 0-6, 0 = Sunday */
    int8_t month;   /* 'M' only: 1-12 */
    int8_t week;    /* 'M' only: 1-5, 5 = the last such weekday of the month */
    int32_t secs;   /* local time of day of the change, -167h..+167h (RFC 8536 extension) */
};

/* The footer's POSIX TZ string, e.g. "CET-1CEST,M3.5.0,M10.5.0/3". */
struct tz_rule {
    int32_t std_off;    /* seconds east of UTC, standard time */
    int32_t dst_off;    /* seconds east of UTC, daylight time (has_dst only) */
    bool has_dst;
    struct tz_rule_date start; /* change to daylight time, given in standard local time */
    struct tz_rule_date end;   /* change back, given in daylight local time */
};

struct tz {
    char *name;          /* as given to tz_get; owned */
    size_t ntrans;
    int64_t *trans_at;   /* transition instants, strictly increasing; owned */
    int32_t *trans_off;  /* offset in effect from trans_at[i] on; owned */
    int32_t first_off;   /* offset before trans_at[0] (time type 0) */
    bool has_rule;       /* footer rule present: it answers from trans_at[ntrans-1] on */
    struct tz_rule rule;
    struct tz *next;     /* cache list link */
};

static char utc_name[] = "UTC";
static struct tz utc_zone = {.name = utc_name};
static struct tz *zone_cache;       /* every zone tz_get loaded; owned */
static const struct tz *local_zone; /* tz_local()'s answer, once computed; borrowed */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b < 0) ? q - 1 : q;
}

/* ------------------------------------------------------------------------ */
/* POSIX TZ rules (the TZif footer)                                         */
/* ------------------------------------------------------------------------ */

struct cursor {
    const char *p, *end;
};

static bool cur_peek(const struct cursor *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static bool cur_digit(const struct cursor *c)
{
    return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

/* Reads 1 to max_digits decimal digits. */
static bool cur_number(struct cursor *c, int max_digits, int32_t *out)
{
    int32_t v = 0;
    int n = 0;
    while (cur_digit(c) && n < max_digits) {
        v = v * 10 + (*c->p++ - '0');
        n++;
    }
    *out = v;
    return n > 0;
}

/* A zone abbreviation: "<...>" quoted (may hold digits and signs, as in
 * "<+1030>"), or three or more letters. The text itself is not needed. */
static bool posix_name(struct cursor *c)
{
    const char *start = c->p;
    if (cur_peek(c, '<')) {
        while (c->p < c->end && *c->p != '>')
            c->p++;
        if (c->p == c->end || c->p - start < 2)
            return false;
        c->p++;
        return true;
    }
    while (c->p < c->end && ((*c->p >= 'A' && *c->p <= 'Z') || (*c->p >= 'a' && *c->p <= 'z')))
        c->p++;
    return c->p - start >= 3;
}

/* "[+-]hh[:mm[:ss]]" with hours up to max_hours, as signed seconds. */
static bool posix_hms(struct cursor *c, int32_t max_hours, int32_t *out)
{
    int32_t sign = 1, h, m = 0, s = 0;
    if (cur_peek(c, '+') || cur_peek(c, '-'))
        sign = *c->p++ == '-' ? -1 : 1;
    if (!cur_number(c, 3, &h) || h > max_hours)
        return false;
    if (cur_peek(c, ':')) {
        c->p++;
        if (!cur_number(c, 2, &m) || m > 59)
            return false;
        if (cur_peek(c, ':')) {
            c->p++;
            if (!cur_number(c, 2, &s) || s > 59)
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

/* "Jn", "n" or "Mm.w.d", then an optional "/time" (default 02:00). */
static bool posix_date(struct cursor *c, struct tz_rule_date *d)
{
    int32_t a, b, w;
    d->secs = 2 * 3600;
    if (cur_peek(c, 'M')) {
        c->p++;
        if (!cur_number(c, 2, &a) || !cur_peek(c, '.') || a < 1 || a > 12)
            return false;
        c->p++;
        if (!cur_number(c, 1, &w) || !cur_peek(c, '.') || w < 1 || w > 5)
            return false;
        c->p++;
        if (!cur_number(c, 1, &b) || b > 6)
            return false;
        *d = (struct tz_rule_date){.kind = 'M', .day = (int16_t)b, .month = (int8_t)a,
                                   .week = (int8_t)w, .secs = d->secs};
    } else {
        d->kind = cur_peek(c, 'J') ? 'J' : 'D';
        c->p += d->kind == 'J';
        if (!cur_number(c, 3, &a) || a > 365 || (d->kind == 'J' && a < 1))
            return false;
        d->day = (int16_t)a;
    }
    if (cur_peek(c, '/')) {
        c->p++;
        return posix_hms(c, 167, &d->secs);
    }
    return true;
}

static bool utoff_valid(int32_t off)
{
    return off >= TZ_UTOFF_MIN && off <= TZ_UTOFF_MAX;
}

/* Parses a whole POSIX TZ string. POSIX offsets count hours west of UTC,
 * so each is negated into our seconds-east convention. A daylight name
 * without rules gets the US rules, as glibc does; zic never writes that. */
static bool posix_parse(const char *s, size_t len, struct tz_rule *r)
{
    struct cursor c = {s, s + len};
    int32_t v;
    memset(r, 0, sizeof *r);
    if (!posix_name(&c) || !posix_hms(&c, 24, &v))
        return false;
    r->std_off = -v;
    if (c.p == c.end)
        return utoff_valid(r->std_off);
    if (!posix_name(&c))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (c.p < c.end && *c.p != ',') {
        if (!posix_hms(&c, 24, &v))
            return false;
        r->dst_off = -v;
    }
    if (c.p == c.end) {
        r->start = (struct tz_rule_date){.kind = 'M', .day = 0, .month = 3, .week = 2, .secs = 7200};
        r->end = (struct tz_rule_date){.kind = 'M', .day = 0, .month = 11, .week = 1, .secs = 7200};
    } else if (!cur_peek(&c, ',') || (c.p++, !posix_date(&c, &r->start)) || !cur_peek(&c, ',') ||
               (c.p++, !posix_date(&c, &r->end)) || c.p != c.end) {
        return false;
    }
    return utoff_valid(r->std_off) && utoff_valid(r->dst_off);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The local wall-clock second (as if local were UTC) at which the rule
 * date d falls in year y. */
static int64_t rule_date_local(const struct tz_rule_date *d, int64_t y)
{
    int64_t days;
    if (d->kind == 'J') {
        days = rfc3339_days_from_civil(y, 1, 1) + d->day - 1 + (is_leap(y) && d->day >= 60);
    } else if (d->kind == 'D') {
        days = rfc3339_days_from_civil(y, 1, 1) + d->day;
    } else {
        int64_t first = rfc3339_days_from_civil(y, (unsigned)d->month, 1);
        int64_t next = d->month == 12 ? rfc3339_days_from_civil(y + 1, 1, 1)
                                      : rfc3339_days_from_civil(y, (unsigned)d->month + 1, 1);
        int64_t wday = ((first + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
        int64_t dd = (d->day - wday + 7) % 7 + (d->week - 1) * 7;
        if (dd >= next - first) /* week 5 means "last": step back into the month */
            dd -= 7;
        days = first + dd;
    }
    return days * SECS_PER_DAY + d->secs;
}

/* A change of the rule as an instant: the start is written in standard
 * local time and the end in daylight local time, each being the time in
 * force just before it. */
struct rule_event {
    int64_t at;
    bool dst; /* daylight time from `at` on */
};

#define RULE_MAX_YEARS 4

/* The changes of the years y0 .. y0+nyears-1 into ev[0 .. 2*nyears),
 * sorted by time. Ties put the end first, so a zone on daylight time all
 * year ("0/0,J365/25") stays on it across New Year. */
static void rule_events(const struct tz_rule *r, int64_t y0, int nyears, struct rule_event *ev)
{
    int n = 2 * nyears;
    for (int i = 0; i < nyears; i++) {
        ev[2 * i] = (struct rule_event){rule_date_local(&r->end, y0 + i) - r->dst_off, false};
        ev[2 * i + 1] = (struct rule_event){rule_date_local(&r->start, y0 + i) - r->std_off, true};
    }
    for (int i = 1; i < n; i++) /* insertion sort of at most eight */
        for (int j = i; j > 0 && (ev[j].at < ev[j - 1].at ||
                                  (ev[j].at == ev[j - 1].at && !ev[j].dst && ev[j - 1].dst)); j--) {
            struct rule_event tmp = ev[j];
            ev[j] = ev[j - 1];
            ev[j - 1] = tmp;
        }
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    unsigned m, d;
    rfc3339_civil_from_days(floor_div(t, SECS_PER_DAY), &y, &m, &d);
    return y;
}

/* Instants beyond +-2^60 s (36 billion years) are clamped, which keeps the
 * year arithmetic clear of overflow; no caller comes near. */
static int64_t rule_clamp(int64_t t)
{
    return t > TZ_RULE_T_MAX ? TZ_RULE_T_MAX : t < -TZ_RULE_T_MAX ? -TZ_RULE_T_MAX : t;
}

/* Offset under the rule at t: the state set by the last change at or
 * before t. The changes of the year before count too: a southern zone is on
 * daylight time in January because of last year's start, and a change
 * written as late as "J365/167" lands in the next year. */
static int32_t rule_offset_at(const struct tz_rule *r, int64_t t)
{
    struct rule_event ev[2 * RULE_MAX_YEARS];
    bool dst = false;
    if (!r->has_dst)
        return r->std_off;
    t = rule_clamp(t);
    rule_events(r, year_of(t + r->std_off) - 1, 3, ev);
    for (int i = 0; i < 6 && ev[i].at <= t; i++)
        dst = ev[i].dst;
    return dst ? r->dst_off : r->std_off;
}

/* The first change of the rule strictly after t, or INT64_MAX. */
static int64_t rule_next_change(const struct tz_rule *r, int64_t t)
{
    struct rule_event ev[2 * RULE_MAX_YEARS];
    if (!r->has_dst || t >= TZ_RULE_T_MAX)
        return INT64_MAX;
    t = rule_clamp(t);
    rule_events(r, year_of(t + r->std_off) - 1, RULE_MAX_YEARS, ev);
    for (int i = 0; i < 2 * RULE_MAX_YEARS; i++)
        if (ev[i].at > t)
            return ev[i].at;
    return INT64_MAX;
}

/* ------------------------------------------------------------------------ */
/* TZif files                                                               */
/* ------------------------------------------------------------------------ */

struct reader {
    const uint8_t *p, *end;
};

/* Returns the next n bytes and consumes them, or NULL if fewer remain. */
static const uint8_t *rd_take(struct reader *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return NULL;
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be_time(const uint8_t *p, size_t size)
{
    if (size == 4)
        return (int32_t)be32(p);
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The six counts of a TZif header, in file order. */
struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

/* Reads a 44-byte header; *version is 0 for version 1, else '2', '3', ... */
static bool tzif_header(struct reader *r, struct tzif_counts *n, int *version)
{
    const uint8_t *h = rd_take(r, 44);
    if (!h || memcmp(h, "TZif", 4) != 0)
        return false;
    *version = h[4];
    if (*version != 0 && *version < '2')
        return false;
    uint32_t *dst[6] = {&n->isut, &n->isstd, &n->leap, &n->time, &n->type, &n->chars};
    for (int i = 0; i < 6; i++)
        *dst[i] = be32(h + 20 + 4 * i);
    /* Counts beyond the file cap are rejected here so the size sums below
     * cannot overflow. */
    return n->type >= 1 && n->type <= 256 && n->chars >= 1 && n->time <= TZ_FILE_MAX &&
           n->leap <= TZ_FILE_MAX && n->chars <= TZ_FILE_MAX &&
           (n->isut == 0 || n->isut == n->type) && (n->isstd == 0 || n->isstd == n->type);
}

static size_t tzif_block_size(const struct tzif_counts *n, size_t tsize)
{
    return n->time * (tsize + 1) + n->type * 6 + n->chars + n->leap * (tsize + 4) + n->isstd + n->isut;
}

/* Reads one data block into z: transition times (tsize bytes each), their
 * type indices, and the types' offsets. The rest of the block (names,
 * leap records, std/ut indicators) is not needed for offsets. */
static bool tzif_block(struct reader *r, const struct tzif_counts *n, size_t tsize, struct tz *z)
{
    const uint8_t *times = n->leap == 0 ? rd_take(r, tzif_block_size(n, tsize)) : NULL;
    int32_t offs[256];
    if (!times)
        return false;
    const uint8_t *idx = times + n->time * tsize, *types = idx + n->time;
    for (uint32_t i = 0; i < n->type; i++) {
        offs[i] = (int32_t)be32(types + 6 * i);
        if (!utoff_valid(offs[i]) || types[6 * i + 4] > 1 || types[6 * i + 5] >= n->chars)
            return false;
    }
    z->ntrans = n->time;
    z->trans_at = xmalloc(n->time * sizeof *z->trans_at);
    z->trans_off = xmalloc(n->time * sizeof *z->trans_off);
    z->first_off = offs[0];
    for (uint32_t i = 0; i < n->time; i++) {
        z->trans_at[i] = be_time(times + i * tsize, tsize);
        if (idx[i] >= n->type || (i > 0 && z->trans_at[i] <= z->trans_at[i - 1]))
            return false;
        z->trans_off[i] = offs[idx[i]];
    }
    return true;
}

/* The footer of a version 2+ file: "\n<POSIX TZ string>\n"; empty means
 * no rule, and the last transition's offset holds forever. */
static bool tzif_footer(struct reader *r, struct tz *z)
{
    if (!rd_take(r, 1) || r->p[-1] != '\n')
        return false;
    const uint8_t *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
    if (!nl)
        return false;
    size_t len = (size_t)(nl - r->p);
    z->has_rule = len > 0;
    return len == 0 || posix_parse((const char *)r->p, len, &z->rule);
}

/* Parses a whole TZif file into z. On failure z may hold partial arrays,
 * which the caller frees. */
static bool tzif_parse(const uint8_t *buf, size_t len, struct tz *z)
{
    struct reader r = {buf, buf + len};
    struct tzif_counts n;
    int version;
    if (!tzif_header(&r, &n, &version))
        return false;
    if (version == 0)
        return tzif_block(&r, &n, 4, z);
    /* Version 2+: skip the 32-bit block, which exists only for old readers
     * and stops in 2038. Its counts may differ from the 64-bit block's. */
    if (n.leap != 0 || !rd_take(&r, tzif_block_size(&n, 4)) || !tzif_header(&r, &n, &version))
        return false;
    return tzif_block(&r, &n, 8, z) && tzif_footer(&r, z);
}

/* ------------------------------------------------------------------------ */
/* Loading and the cache                                                    */
/* ------------------------------------------------------------------------ */

/* Names are checked before any path is built, so a name can never reach
 * outside the zoneinfo directory: no leading '/', no empty component, and
 * '.' is not an allowed character at all, which rules out "." and "..". */
static bool tz_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > TZ_NAME_MAX || name[0] == '/' || name[len - 1] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  ch == '_' || ch == '+' || ch == '-' || ch == '/';
        if (!ok || (ch == '/' && name[i + 1] == '/'))
            return false;
    }
    return true;
}

/* Reads the whole regular file at fd (at most TZ_FILE_MAX bytes). Returns
 * a malloc'd buffer and its length, or NULL with errno set. */
static uint8_t *read_file(int fd, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return NULL;
    if (!S_ISREG(st.st_mode) || st.st_size > TZ_FILE_MAX) {
        errno = S_ISREG(st.st_mode) ? EFBIG : ENOENT; /* a directory like "Europe" is no zone */
        return NULL;
    }
    uint8_t *buf = xmalloc((size_t)st.st_size);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            errno = n == 0 ? EIO : errno;
            return NULL;
        }
        got += (size_t)n;
    }
    *len = got;
    return buf;
}

static void tz_free(struct tz *z)
{
    free(z->name);
    free(z->trans_at);
    free(z->trans_off);
    free(z);
}

/* Loads the TZif file at path and names the zone name[0..len). Returns a
 * new zone, or NULL with one sentence in err. */
static struct tz *tz_load_path(const char *path, const char *name, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t size = 0;
    uint8_t *buf = fd < 0 ? NULL : read_file(fd, &size);
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (!buf) {
        if (saved == ENOENT || saved == ENOTDIR)
            snprintf(err, errlen, "unknown time zone \"%.*s\"", (int)len, name);
        else
            snprintf(err, errlen, "cannot read time zone file %s: %s", path, strerror(saved));
        return NULL;
    }
    struct tz *z = xcalloc(1, sizeof *z);
    bool ok = tzif_parse(buf, size, z);
    free(buf);
    if (!ok) {
        snprintf(err, errlen, "time zone file %s is not a valid TZif file", path);
        tz_free(z);
        return NULL;
    }
    z->name = xstrndup(name, len);
    return z;
}

/* Loads the zone file for a validated name from $TZDIR or the system
 * zoneinfo. Returns a new zone, or NULL with one sentence in err. */
static struct tz *tz_load(const char *name, size_t len, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR");
    char path[4096];
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    if ((size_t)snprintf(path, sizeof path, "%s/%.*s", dir, (int)len, name) >= sizeof path) {
        snprintf(err, errlen, "time zone directory path \"%s\" is too long", dir);
        return NULL;
    }
    return tz_load_path(path, name, len, err, errlen);
}

/* Copies up to 64 bytes of an untrusted name into out for an error
 * message, with anything unprintable shown as '?'. */
static void printable(const char *s, size_t len, char out[68])
{
    size_t n = len > 64 ? 64 : len;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
    strcpy(out + n, len > 64 ? "..." : "");
}

const tz_t *tz_get(const char *name, size_t len, char *err, size_t errlen)
{
    if (!tz_name_valid(name, len)) {
        char shown[68];
        printable(name, len, shown);
        snprintf(err, errlen,
                 "invalid time zone name \"%s\": expected an IANA name such as \"Europe/Berlin\"", shown);
        return NULL;
    }
    if (len == 3 && memcmp(name, "UTC", 3) == 0) /* needs no file, as in Go */
        return &utc_zone;
    for (struct tz *z = zone_cache; z; z = z->next)
        if (strlen(z->name) == len && memcmp(z->name, name, len) == 0)
            return z;
    struct tz *z = tz_load(name, len, err, errlen);
    if (z) {
        z->next = zone_cache;
        zone_cache = z;
    }
    return z;
}

const tz_t *tz_utc(void)
{
    return &utc_zone;
}

/* A zone read from an absolute path ($TZ=/path or /etc/localtime), named
 * after the file it resolves to below the system zoneinfo when it does
 * ("Europe/Berlin"), else after the path. It joins the cache, so
 * tz_cleanup frees it, but tz_get never finds it: no valid name starts
 * with '/'. */
static const struct tz *tz_local_file(const char *path, char *err, size_t errlen)
{
    static const char ZONEINFO[] = "/usr/share/zoneinfo/";
    char *real = realpath(path, NULL);
    const char *name = path;
    if (real && strncmp(real, ZONEINFO, sizeof ZONEINFO - 1) == 0 && real[sizeof ZONEINFO - 1])
        name = real + sizeof ZONEINFO - 1;
    struct tz *z = tz_load_path(path, name, strlen(name), err, errlen);
    free(real);
    if (z) {
        z->next = zone_cache;
        zone_cache = z;
    }
    return z;
}

/* As Go's time.Local: $TZ unset means /etc/localtime; $TZ empty, ":" or
 * "UTC" means UTC, and so does a missing /etc/localtime; a leading ':' is dropped; an absolute path is read as a
 * file, anything else as a zone name. What cannot be loaded is UTC (with a
 * warning here, where Go is silent). */
const tz_t *tz_local(void)
{
    if (local_zone)
        return local_zone;
    const char *env = getenv("TZ");
    const char *name = !env ? NULL : env[0] == ':' ? env + 1 : env;
    const tz_t *z = &utc_zone;
    char err[256] = "";
    if (!env && access("/etc/localtime", F_OK) == 0) /* no file: UTC, silently */
        z = tz_local_file("/etc/localtime", err, sizeof err);
    else if (name[0] == '/')
        z = tz_local_file(name, err, sizeof err);
    else if (name[0])
        z = tz_get(name, strlen(name), err, sizeof err);
    if (!z)
        fprintf(stderr, "distribuerad: %s%s: %s; using UTC\n", env ? "TZ=" : "", env ? env : "/etc/localtime",
                err);
    local_zone = z ? z : &utc_zone;
    return local_zone;
}

const char *tz_name(const tz_t *z)
{
    return z->name;
}

void tz_cleanup(void)
{
    while (zone_cache) {
        struct tz *next = zone_cache->next;
        tz_free(zone_cache);
        zone_cache = next;
    }
    local_zone = NULL; /* it may have pointed into the cache */
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                  */
/* ------------------------------------------------------------------------ */

/* Index of the last transition at or before t; t must be >= trans_at[0]. */
static size_t last_trans_at_or_before(const struct tz *z, int64_t t)
{
    size_t lo = 0, hi = z->ntrans; /* answer in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans_at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* At and after the last transition the footer rule answers, as in glibc;
 * zic writes files on which both agree at that instant. */
int32_t tz_offset_at(const tz_t *z, int64_t t)
{
    if (z->ntrans == 0 || t >= z->trans_at[z->ntrans - 1]) {
        if (z->has_rule)
            return rule_offset_at(&z->rule, t);
        return z->ntrans ? z->trans_off[z->ntrans - 1] : z->first_off;
    }
    if (t < z->trans_at[0])
        return z->first_off;
    return z->trans_off[last_trans_at_or_before(z, t)];
}

/* The first instant after t at which the offset may change, or INT64_MAX. */
static int64_t tz_next_change(const struct tz *z, int64_t t)
{
    if (z->ntrans > 0 && t < z->trans_at[z->ntrans - 1]) {
        if (t < z->trans_at[0])
            return z->trans_at[0];
        return z->trans_at[last_trans_at_or_before(z, t) + 1];
    }
    return z->has_rule ? rule_next_change(&z->rule, t) : INT64_MAX;
}

/* Every instant u with u + offset(u) == local lies within TZ_WINDOW of
 * local. Walk the stretches of constant offset that cover that window;
 * each holds at most one solution, local - its offset, if that falls
 * inside it. Guessing from the offsets a day before and after would miss
 * zones that change twice within a day; the walk cannot. */
int tz_local_to_utc(const tz_t *z, int64_t local, int64_t out[2])
{
    int n = 0;
    if (local > INT64_MAX - 2 * TZ_WINDOW || local < INT64_MIN + 2 * TZ_WINDOW)
        return 0; /* no representable instant needs this */
    for (int64_t a = local - TZ_WINDOW; a <= local + TZ_WINDOW && n < 2;) {
        int64_t b = tz_next_change(z, a);
        int64_t u = local - tz_offset_at(z, a);
        if (u >= a && u < b)
            out[n++] = u;
        if (b == INT64_MAX)
            break;
        a = b;
    }
    return n;
}
