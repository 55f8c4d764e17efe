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

#endif
