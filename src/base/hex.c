/*
 * hex.c -- fixed-width lower-case hexadecimal fields (see hex.h).
 *
 * The writer takes two digits per byte from a table ("00" ... "ff"):
 * eight steps instead of sixteen for a 64-bit field; a lock answer
 * writes one token, a listing page one cursor.
 */
#include "hex.h"

#include <string.h>

#define HEX_PAIRS_16(c)                                                                          \
    c "0" c "1" c "2" c "3" c "4" c "5" c "6" c "7" c "8" c "9" c "a" c "b" c "c" c "d" c "e" c \
    "f"
static const char hex_pairs[2 * 256 + 1] =
    HEX_PAIRS_16("0") HEX_PAIRS_16("1") HEX_PAIRS_16("2") HEX_PAIRS_16("3") HEX_PAIRS_16("4")
    HEX_PAIRS_16("5") HEX_PAIRS_16("6") HEX_PAIRS_16("7") HEX_PAIRS_16("8") HEX_PAIRS_16("9")
    HEX_PAIRS_16("a") HEX_PAIRS_16("b") HEX_PAIRS_16("c") HEX_PAIRS_16("d") HEX_PAIRS_16("e")
    HEX_PAIRS_16("f");

char *hex_put(char *out, uint64_t v, unsigned n)
{
    unsigned i = n;
    for (; i >= 2; i -= 2, v >>= 8)
        memcpy(out + i - 2, hex_pairs + 2 * (v & 0xff), 2);
    if (i)
        out[0] = hex_pairs[2 * (v & 0xf) + 1]; /* the d of "0d" */
    return out + n;
}

int hex_get(const char *s, unsigned n, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}
