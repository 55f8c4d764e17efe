/*
 * utf8.h -- strict UTF-8 (RFC 3629), one character at a time.
 *
 * The request parser, the name checks of the router and the error writer
 * all need the same answer to "is a valid character here, and how long is
 * it": no stray or missing continuation bytes, no overlong forms, no
 * surrogates, nothing past U+10FFFF.
 */
#ifndef UTF8_H
#define UTF8_H

#include <stddef.h>

/* Length (1 to 4) of the valid UTF-8 character at p, which has n bytes
 * after it; 0 if none starts there (or n is 0). */
static inline size_t utf8_len(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned c = p[0], lo = 0x80, hi = 0xbf; /* the second byte's range */
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

#endif
