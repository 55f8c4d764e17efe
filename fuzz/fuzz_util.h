/*
 * fuzz_util.h -- small checks shared by the fuzz targets.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* FUZZ_UTF8=0 turns the UTF-8 checks off, to look past a known bug in
 * them for others. */
static inline int fuzz_check_utf8(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("FUZZ_UTF8");
        on = !(e && strcmp(e, "0") == 0);
    }
    return on;
}

/* Is s[0..n) valid UTF-8 as RFC 3629 (and jansson) define it: no overlong
 * forms, no surrogates, nothing past U+10FFFF, no cut sequence? Parsers'
 * error sentences end up in JSON bodies, where anything else is invalid. */
static inline int fuzz_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                                 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!len || (size_t)(end - p) < len)
            return 0;
        unsigned cp = len == 1 ? c : c & (0x3f >> (len - 1));
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += len;
    }
    return 1;
}

#endif
