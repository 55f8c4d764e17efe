/*
 * duration.h -- Go's time.ParseDuration syntax.
 *
 * A duration is an optional sign, then one or more "<decimal><unit>" parts:
 * a decimal is digits with an optional fraction ("1", "1.5", ".5", "1."), a
 * unit is one of ns, us, µs (U+00B5), μs (U+03BC), ms, s, m, h. "0" alone
 * needs no unit. Examples: "300ms", "-1.5h", "1h30m10s". The result is in
 * nanoseconds; values outside int64 are rejected. Pure function.
 */
#ifndef DURATION_H
#define DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parses s[0..len) (not NUL-terminated necessarily) into *out_ns.
 * Returns 0 on success. On failure returns -1, leaves *out_ns untouched and
 * writes one sentence (without the field name) into err[errlen], such as
 * "invalid duration \"5x\": unknown unit \"x\"". Empty input is invalid. */
int duration_parse(const char *s, size_t len, int64_t *out_ns, char *err, size_t errlen);

/* Room for the longest text duration_format writes, with its NUL
 * ("-2562047h47m16.854775808s"). */
#define DURATION_TEXT_MAX 32

/* Writes ns in Go's canonical form (time.Duration.String): "0s", "1.5s",
 * "1m0s", "1h30m0s", "300ms", "1.5µs" (U+00B5), "-2ns": hours, minutes and
 * seconds with a fraction without trailing zeros from 1s up, one smaller
 * unit below. out needs DURATION_TEXT_MAX bytes; returns the length. */
size_t duration_format(int64_t ns, char out[DURATION_TEXT_MAX]);

#endif
