/*
 * tz.h -- IANA time zones from the system zoneinfo (RFC 8536 TZif files).
 *
 * A zone maps an instant to its UTC offset: the transition table of the TZif
 * file (version 1 data skipped, 64-bit data of version 2+ used), and past its
 * last transition the POSIX TZ rule in the file's footer (e.g.
 * "CET-1CEST,M3.5.0,M10.5.0/3"), which slim TZif files rely on for every
 * date after 2007. Zones are loaded once and cached by name for the life of
 * the process: a tz_t* from tz_get() stays valid until tz_cleanup().
 * Files come from $TZDIR if set, else /usr/share/zoneinfo. Names are
 * checked before any file is opened: no leading '/', no "." or ".."
 * component, only [A-Za-z0-9_+-/] characters, at most 255 bytes.
 * Times here are Unix seconds (int64_t); offsets seconds east of UTC.
 */
#ifndef TZ_H
#define TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct tz tz_t;

/* The zone named name[0..len) ("Europe/Berlin", "UTC"). Returns the cached
 * zone, or NULL with one sentence in err such as
 * "unknown time zone \"Mars/Olympus\"". */
const tz_t *tz_get(const char *name, size_t len, char *err, size_t errlen);

/* UTC, always available (no file needed). */
const tz_t *tz_utc(void);

/* The server's zone, as Go's time.Local: $TZ if set (a leading ':' is
 * ignored; an absolute path names a TZif file; empty means UTC), else
 * /etc/localtime, else UTC. A zone that cannot be loaded writes a warning
 * to stderr once and is UTC. Named after the zoneinfo file it resolves to
 * ("Europe/Berlin"), else its path. */
const tz_t *tz_local(void);

/* The zone's name as given to tz_get ("UTC" for tz_utc()). */
const char *tz_name(const tz_t *z);

/* UTC offset in seconds in effect at Unix time t. */
int32_t tz_offset_at(const tz_t *z, int64_t t);

/* Converts a local wall-clock time (seconds since 1970-01-01T00:00:00 *as if
 * local were UTC*) to Unix times. Writes the instants whose local time equals
 * `local` into out[0..] in increasing order and returns how many: 0 in a
 * gap (spring forward), 1 normally, 2 in an overlap (fall back). */
int tz_local_to_utc(const tz_t *z, int64_t local, int64_t out[2]);

/* Frees every cached zone (for leak checkers at exit). */
void tz_cleanup(void);

#endif
