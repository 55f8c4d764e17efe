/*
 * hex.h -- fixed-width lower-case hexadecimal fields: the text of lease
 * tokens (id.h) and of the cursors of event listings (core/page.c).
 *
 * A field is exactly n digits, most significant first, of
 * "0123456789abcdef" only, so each value has one spelling and texts of
 * one width sort as their numbers do. A field holds at most 64 bits
 * (n <= 16). Nothing is NUL-terminated here: callers place fields side by
 * side and end the text themselves.
 */
#ifndef HEX_H
#define HEX_H

#include <stdint.h>

#define HEX_U64 16 /* digits of a 64-bit field */

/* Writes the low 4n bits of v as n digits at out. Returns out + n. */
char *hex_put(char *out, uint64_t v, unsigned n);

/* Reads n digits at s into *out. Returns 0, or -1 if one of them is not
 * a lower-case hex digit (*out untouched). */
int hex_get(const char *s, unsigned n, uint64_t *out);

#endif
