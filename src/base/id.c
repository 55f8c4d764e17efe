/*
 * id.c -- 96-bit event ids and their 20-character text form.
 *
 * Design: the arithmetic is done on an unsigned __int128 holding the 96
 * bits, which keeps "last + 1" and the parser's shifts to one line each
 * instead of carrying between hi and lo by hand. The text is the 96 bits
 * followed by four zero bits, read five bits at a time from the top, with
 * an alphabet in ASCII order, so comparing texts with memcmp compares ids.
 * The formatter, which runs for every event rendered, reads ten bits at a
 * time from two 64-bit words instead.
 */
#include "id.h"

#include <string.h>

#include "hex.h"
#include "util.h"

typedef unsigned __int128 u128;

#define ID_BITS 96
static const u128 ID_MAX = ((u128)1 << ID_BITS) - 1;

static u128 to_u128(eid_t id)
{
    return (u128)id.hi << 32 | id.lo;
}

static eid_t from_u128(u128 v)
{
    eid_t id = {(uint64_t)(v >> 32), (uint32_t)v};
    return id;
}

eid_t id_gen_next(id_gen_t *gen, ntime_t now)
{
    /* Before 1970 cannot happen with a sane clock; treat it as the epoch so
     * the shift below stays defined. The counter alone then keeps ids
     * increasing. */
    uint64_t now_ms = now > 0 ? (uint64_t)(now / NTIME_NS_PER_MS) : 0;
    u128 last = to_u128(gen->last);
    u128 at_now = (u128)now_ms << 48;
    /* 2^48 ids per millisecond would have to be exceeded for ever to get
     * here; wrapping to zero would silently repeat ids, so stop instead. */
    ASSERT(last < ID_MAX);
    u128 next = at_now > last ? at_now : last + 1;
    gen->last = from_u128(next);
    return gen->last;
}

void id_gen_observe(id_gen_t *gen, eid_t id)
{
    if (id_cmp(id, gen->last) > 0)
        gen->last = id;
}

int id_cmp(eid_t a, eid_t b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    if (a.lo != b.lo)
        return a.lo < b.lo ? -1 : 1;
    return 0;
}

/* The two words go through one multiply-xorshift round each before the
 * murmur3 finalizer: ids made in one millisecond differ only in their low
 * bits, and a table indexed by the low bits of a weak hash would pile them
 * into neighbouring buckets. */
uint64_t id_hash(eid_t id)
{
    uint64_t h = id.hi * 0x9e3779b97f4a7c15ULL;
    h ^= (uint64_t)id.lo * 0xc2b2ae3d27d4eb4fULL + (h >> 29);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Every pair of base32hex characters, indexed by ten bits: "00" "01" ...
 * "vv". Formatting ten bits per lookup halves the steps of the former
 * five-bit loop over a 128-bit shift. */
#define ID_PAIRS_32(c)                                                                            \
    c "0" c "1" c "2" c "3" c "4" c "5" c "6" c "7" c "8" c "9" c "a" c "b" c "c" c "d" c "e" c  \
    "f" c "g" c "h" c "i" c "j" c "k" c "l" c "m" c "n" c "o" c "p" c "q" c "r" c "s" c "t" c "u" \
    c "v"
static const char id_pairs[2 * 1024 + 1] =
    ID_PAIRS_32("0") ID_PAIRS_32("1") ID_PAIRS_32("2") ID_PAIRS_32("3") ID_PAIRS_32("4")
    ID_PAIRS_32("5") ID_PAIRS_32("6") ID_PAIRS_32("7") ID_PAIRS_32("8") ID_PAIRS_32("9")
    ID_PAIRS_32("a") ID_PAIRS_32("b") ID_PAIRS_32("c") ID_PAIRS_32("d") ID_PAIRS_32("e")
    ID_PAIRS_32("f") ID_PAIRS_32("g") ID_PAIRS_32("h") ID_PAIRS_32("i") ID_PAIRS_32("j")
    ID_PAIRS_32("k") ID_PAIRS_32("l") ID_PAIRS_32("m") ID_PAIRS_32("n") ID_PAIRS_32("o")
    ID_PAIRS_32("p") ID_PAIRS_32("q") ID_PAIRS_32("r") ID_PAIRS_32("s") ID_PAIRS_32("t")
    ID_PAIRS_32("u") ID_PAIRS_32("v");

/* The two characters of the ten bits of v at bit shift and below. */
#define PAIR(out, v, shift) memcpy((out), id_pairs + 2 * ((v) >> (shift) & 1023), 2)

/* The 100 bits (id and four padding bits) as two words of plain 64-bit
 * arithmetic: the top 60 bits (twelve characters) are hi's top 60, the
 * low 40 (eight characters) are hi's last four bits, lo and the padding.
 * Written out rather than as a loop, which the compiler keeps. */
void id_format(eid_t id, char out[ID_LEN + 1])
{
    uint64_t top = id.hi >> 4;                              /* bits 99..40 */
    uint64_t low = (id.hi & 15) << 36 | (uint64_t)id.lo << 4; /* bits 39..0 */
    PAIR(out, top, 50);
    PAIR(out + 2, top, 40);
    PAIR(out + 4, top, 30);
    PAIR(out + 6, top, 20);
    PAIR(out + 8, top, 10);
    PAIR(out + 10, top, 0);
    PAIR(out + 12, low, 30);
    PAIR(out + 14, low, 20);
    PAIR(out + 16, low, 10);
    PAIR(out + 18, low, 0);
    out[ID_LEN] = '\0';
}

/* The value of one text character, or -1. Upper case is refused so that
 * each id has exactly one spelling (ids are compared and hashed as text by
 * clients). */
static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'v')
        return c - 'a' + 10;
    return -1;
}

int id_parse(const char *s, size_t len, eid_t *out)
{
    if (len != ID_LEN)
        return -1;
    u128 v = 0;
    for (size_t i = 0; i < ID_LEN; i++) {
        int d = digit_value(s[i]);
        if (d < 0)
            return -1;
        v = v << 5 | (unsigned)d;
    }
    if (v & 15)
        return -1; /* padding bits must be zero, again for one spelling */
    *out = from_u128(v >> 4);
    return 0;
}

/* ---- lease tokens ---- */

void token_format(uint64_t token, char out[TOKEN_LEN + 1])
{
    *hex_put(out, token, TOKEN_LEN) = '\0';
}

int token_parse(const char *s, size_t len, uint64_t *out)
{
    return len == TOKEN_LEN ? hex_get(s, TOKEN_LEN, out) : -1;
}
