/*
 * jparse.c -- strict single-pass JSON parser (see jparse.h).
 *
 * Recursive descent straight over the bytes: no token stream, no copy of
 * the input. Each value becomes one node bumped from the document's arena
 * and linked after its previous sibling, so building a tree costs no more
 * than reading it. Strings are scanned 16 (SSE2) or 8 bytes at a time for
 * the bytes that need a look ('"', '\\', controls, non-ASCII); a string
 * with escapes is decoded into the arena in a second, short pass over just
 * that string.
 * The recursion is bounded by JPARSE_MAX_DEPTH.
 */
#include "jparse.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "base/utf8.h"
#include "base/util.h"

struct jchunk {
    jchunk_t *next;
    size_t size; /* usable bytes after the header */
    union {
        jval_t align;
        char b[1];
    } data;
};

typedef struct parser {
    const unsigned char *s;   /* the whole input */
    const unsigned char *p;   /* the next byte to read */
    const unsigned char *end; /* s + len */
    jdoc_t *d;
    jparse_err_t *err;
} parser_t;

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

/* ------------------------------------------------------------------------ */
/* Arena                                                                    */
/* ------------------------------------------------------------------------ */

void jparse_init(jdoc_t *d)
{
    d->root = NULL;
    d->chunks = NULL;
    d->top = d->first.b;
    d->end = d->first.b + sizeof(d->first.b);
    d->used = 0;
}

void jparse_free(jdoc_t *d)
{
    jchunk_t *c = d->chunks;
    while (c) {
        jchunk_t *next = c->next;
        free(c);
        c = next;
    }
    jparse_init(d);
}

/* Starts a new chunk with room for n bytes. Its size follows the bytes per
 * input byte used so far, times the input left, so a body that keeps the
 * shape of its start (a batch of alike events) needs a single malloc;
 * the unused tail of a large chunk is never touched. */
static void arena_grow(parser_t *ps, size_t n)
{
    jdoc_t *d = ps->d;
    d->used += (size_t)(d->top - (d->chunks ? d->chunks->data.b : d->first.b));
    size_t read = (size_t)(ps->p - ps->s) + 1;
    size_t left = (size_t)(ps->end - ps->p);
    size_t want = (d->used / read + 1) * left;
    want += want / 4 + n + 1024;
    if (want < 4096)
        want = 4096;
    jchunk_t *c = xmalloc(offsetof(jchunk_t, data) + want);
    c->size = want;
    c->next = d->chunks;
    d->chunks = c;
    d->top = c->data.b;
    d->end = c->data.b + want;
}

static inline void *arena_alloc(parser_t *ps, size_t n)
{
    jdoc_t *d = ps->d;
    if ((size_t)(d->end - d->top) < n)
        arena_grow(ps, n);
    void *r = d->top;
    d->top += n;
    return r;
}

static inline jval_t *new_node(parser_t *ps, jtype_t type)
{
    jval_t *v = arena_alloc(ps, sizeof(jval_t));
    v->next = NULL;
    v->key = NULL;
    v->klen = 0;
    v->type = type;
    return v;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Records the first error at byte `at` and returns NULL, so a parse
 * function can `return fail(...)`. */
static void *fail(parser_t *ps, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *fail(parser_t *ps, const unsigned char *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err->text, sizeof(ps->err->text), fmt, ap);
    va_end(ap);
    ps->err->pos = (size_t)(at - ps->s);
    return NULL;
}

/* A byte as an error message shows it: 'x' when printable ASCII, else its
 * hex value, so the message stays valid UTF-8 whatever the input. */
static const char *show(const unsigned char *p, char buf[16])
{
    if (*p >= 0x20 && *p < 0x7f)
        snprintf(buf, 16, "'%c'", *p);
    else
        snprintf(buf, 16, "byte 0x%02x", *p);
    return buf;
}

/* fail() for "expected X": at the end of the input, or naming the byte. */
static void *unexpected(parser_t *ps, const unsigned char *at, const char *expected)
{
    char b[16];
    if (at == ps->end)
        return fail(ps, at, "unexpected end of input; expected %s", expected);
    return fail(ps, at, "unexpected %s; expected %s", show(at, b), expected);
}

/* Line and column of byte offset pos, counting characters (UTF-8 lead
 * bytes) as an editor does; the column of the end of the input is that of
 * its last character. Only errors pay for this scan. */
static void locate(const unsigned char *s, size_t len, size_t pos, jparse_err_t *err)
{
    int line = 1, col = 0;
    size_t stop = pos < len ? pos + 1 : len;
    for (size_t i = 0; i < stop; i++) {
        if (s[i] == '\n' && i != pos) {
            line++;
            col = 0;
        } else if ((s[i] & 0xc0) != 0x80) {
            col++;
        }
    }
    err->line = line;
    err->column = col;
}

/* ------------------------------------------------------------------------ */
/* Strings                                                                  */
/* ------------------------------------------------------------------------ */

/* plain[c]: the byte stands for itself inside a string. */
static const unsigned char plain[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
    R16(0), R16(0),
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x22 '"' */
    R16(1), R16(1),
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x5c '\\' */
    R16(1), R16(1),
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0),
#undef R16
};

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

/* A mask whose lowest set bit (if any) is the high bit of the first of the
 * eight bytes in w (little-endian) that is not plain. Each term can flag
 * false bytes only above a true one (a borrow runs upward), so the lowest
 * flag is exact. */
static inline uint64_t special_bytes(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    return ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w) | (w & HIGH);
}

/* Skips plain bytes from p; returns the first byte that is not plain, or
 * end. With SSE2 (every x86-64) sixteen bytes take one compare each for
 * '"' and '\\' and one signed compare for "below 0x20 or from 0x80". */
static inline const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                   _mm_cmplt_epi8(x, space));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t m = special_bytes(w) & HIGH;
        if (m)
            return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < end && plain[*p])
        p++;
    return p;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? (int)(c - 'a' + 10) : -1;
}

/* The four hex digits at p, which the scan has checked. */
static unsigned hex4(const unsigned char *p)
{
    return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* Decodes the escapes of the string body [p, end), which the scan has
 * checked except for surrogate pairing, into the arena. Decoding never
 * lengthens: "\n" is 1 byte of 2, "\uXXXX" at most 3 of 6, a pair 4 of 12.
 * Returns 0, or -1 after fail(). */
static int unescape(parser_t *ps, const unsigned char *p, const unsigned char *end, const char **out,
                    size_t *outlen)
{
    char *buf = arena_alloc(ps, ALIGN8((size_t)(end - p))), *o = buf;
    while (p < end) {
        const unsigned char *bs = memchr(p, '\\', (size_t)(end - p));
        if (!bs)
            bs = end;
        memcpy(o, p, (size_t)(bs - p));
        o += bs - p;
        p = bs;
        if (p == end)
            break;
        unsigned c = p[1];
        if (c != 'u') {
            *o++ = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : (char)c;
            p += 2;
            continue;
        }
        unsigned cp = hex4(p + 2);
        if (cp >= 0xdc00 && cp <= 0xdfff) {
            fail(ps, p, "lone surrogate \\u%04X (a low half without a high one)", cp);
            return -1;
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (end - p < 12 || p[6] != '\\' || p[7] != 'u') {
                fail(ps, p, "lone surrogate \\u%04X (a high half without a low one)", cp);
                return -1;
            }
            unsigned lo = hex4(p + 8);
            if (lo < 0xdc00 || lo > 0xdfff) {
                fail(ps, p, "invalid surrogate pair \\u%04X\\u%04X", cp, lo);
                return -1;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        }
        o = put_utf8(o, cp);
        p += 6;
    }
    *out = buf;
    *outlen = (size_t)(o - buf);
    /* Give back what decoding saved, as buf is the newest allocation. */
    ps->d->top = buf + ALIGN8((size_t)(o - buf));
    return 0;
}

/* Reads the string whose opening quote is at ps->p. Returns 0 with the
 * bytes (pointing into the input when there were no escapes) and whether
 * there were escapes, or -1 after fail(). */
static int parse_string(parser_t *ps, const char **out, size_t *outlen, int *escaped)
{
    const unsigned char *start = ps->p + 1, *p = start, *end = ps->end;
    int esc = 0;
    for (;;) {
        p = skip_plain(p, end);
        if (p == end) {
            fail(ps, p, "unexpected end of input in a string");
            return -1;
        }
        unsigned c = *p;
        if (c == '"')
            break;
        if (c == '\\') {
            esc = 1;
            c = p + 1 < end ? p[1] : 0;
            if (c == 'u') {
                for (int i = 2; i < 6; i++) {
                    if (p + i >= end || hexval(p[i]) < 0) {
                        fail(ps, p, "invalid \\u escape (four hex digits expected)");
                        return -1;
                    }
                }
                p += 6;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                       c == 'r' || c == 't') {
                p += 2;
            } else {
                fail(ps, p, "invalid escape in a string");
                return -1;
            }
        } else if (c < 0x20) {
            if (c == '\n')
                fail(ps, p, "unexpected newline in a string");
            else
                fail(ps, p, "control character 0x%02x in a string", c);
            return -1;
        } else {
            size_t n = utf8_len(p, (size_t)(end - p)); /* c >= 0x80 here */
            if (!n) {
                fail(ps, p, "invalid UTF-8 byte 0x%02x in a string", c);
                return -1;
            }
            p += n;
        }
    }
    ps->p = p + 1;
    *escaped = esc;
    if (!esc) {
        *out = (const char *)start;
        *outlen = (size_t)(p - start);
        return 0;
    }
    return unescape(ps, start, p, out, outlen);
}

/* ------------------------------------------------------------------------ */
/* Numbers and literals                                                     */
/* ------------------------------------------------------------------------ */

static inline int is_digit(unsigned c)
{
    return c - '0' < 10;
}

/* Moves past a number or literal that ends at p. jansson 2.14 reads the
 * byte after one, puts it back, and loses it if it is a NUL (its stream
 * takes a NUL in its one-character buffer for "empty"), so "1\0" and
 * "[true\0]" parse there. We accept the same, so a body means the same to
 * both parsers: one NUL right after a number or literal is skipped. */
static inline void end_token(parser_t *ps, const unsigned char *p)
{
    ps->p = p + (p < ps->end && *p == '\0');
}

/* A number with a fraction or exponent, [start, p): strtod, as jansson,
 * which rejects only overflow (underflow gives 0 or a subnormal). */
static jval_t *parse_real(parser_t *ps, const unsigned char *start, const unsigned char *p)
{
    size_t n = (size_t)(p - start);
    char small[64];
    char *buf = n < sizeof(small) ? small : xmalloc(n + 1);
    memcpy(buf, start, n);
    buf[n] = '\0';
    errno = 0;
    double d = strtod(buf, NULL);
    int overflow = (d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE;
    if (buf != small)
        free(buf);
    if (overflow)
        return fail(ps, start, "real number overflow");
    jval_t *v = new_node(ps, JV_REAL);
    v->u.d = d;
    end_token(ps, p);
    return v;
}

static jval_t *parse_number(parser_t *ps)
{
    const unsigned char *start = ps->p, *p = start, *end = ps->end;
    int neg = *p == '-';
    p += neg;
    if (p == end || !is_digit(*p))
        return fail(ps, start, "invalid number");
    const unsigned char *digits = p;
    uint64_t u = 0;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(ps, start, "invalid number (leading zero)");
    } else {
        while (p < end && is_digit(*p))
            u = u * 10 + (*p++ - '0'); /* wraps past 19 digits; checked below */
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) {
        if (*p == '.') {
            p++;
            if (p == end || !is_digit(*p))
                return fail(ps, start, "invalid number (a digit must follow '.')");
            while (p < end && is_digit(*p))
                p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < end && (*p == '+' || *p == '-'))
                p++;
            if (p == end || !is_digit(*p))
                return fail(ps, start, "invalid number (a digit must follow the exponent)");
            while (p < end && is_digit(*p))
                p++;
        }
        return parse_real(ps, start, p);
    }
    /* 19 digits always fit in a uint64_t; 20 never fit in an int64_t. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (p - digits > 19 || u > limit)
        return fail(ps, start, neg ? "too big negative integer" : "too big integer");
    jval_t *v = new_node(ps, JV_INT);
    v->u.i = neg ? (int64_t)(0 - u) : (int64_t)u; /* 0 - 2^63 is INT64_MIN's bits */
    end_token(ps, p);
    return v;
}

static jval_t *parse_literal(parser_t *ps, const char *word, size_t n, jtype_t type)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0 ||
        ((size_t)(ps->end - ps->p) > n && (unsigned)((ps->p[n] | 0x20) - 'a') < 26))
        return fail(ps, ps->p, "invalid literal; expected a value");
    end_token(ps, ps->p + n);
    return new_node(ps, type);
}

/* ------------------------------------------------------------------------ */
/* Values                                                                   */
/* ------------------------------------------------------------------------ */

static inline void skip_ws(parser_t *ps)
{
    const unsigned char *p = ps->p, *end = ps->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

static jval_t *parse_value(parser_t *ps, unsigned depth);

/* ps->p is just past the '['. */
static jval_t *parse_array(parser_t *ps, jval_t *a, unsigned depth)
{
    a->u.kids.first = NULL;
    a->u.kids.n = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return a;
    }
    jval_t **link = &a->u.kids.first;
    for (;;) {
        jval_t *v = parse_value(ps, depth + 1);
        if (!v)
            return NULL;
        *link = v;
        link = &v->next;
        a->u.kids.n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return a;
        }
        return unexpected(ps, ps->p, "',' or ']'");
    }
}

/* ps->p is just past the '{'. Keys stay in input order, duplicates too;
 * jparse_get() finds the last. */
static jval_t *parse_object(parser_t *ps, jval_t *o, unsigned depth)
{
    o->u.kids.first = NULL;
    o->u.kids.n = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return o;
    }
    jval_t **link = &o->u.kids.first;
    for (;;) {
        if (ps->p == ps->end || *ps->p != '"')
            return unexpected(ps, ps->p, o->u.kids.n ? "a string key" : "a string key or '}'");
        const unsigned char *kat = ps->p;
        const char *key;
        size_t klen;
        int escaped;
        if (parse_string(ps, &key, &klen, &escaped) != 0)
            return NULL;
        if (escaped && memchr(key, '\0', klen))
            return fail(ps, kat, "NUL byte (\\u0000) in an object key");
        skip_ws(ps);
        if (ps->p == ps->end || *ps->p != ':')
            return unexpected(ps, ps->p, "':'");
        ps->p++;
        skip_ws(ps);
        jval_t *v = parse_value(ps, depth + 1);
        if (!v)
            return NULL;
        v->key = key;
        v->klen = (uint32_t)klen;
        *link = v;
        link = &v->next;
        o->u.kids.n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return o;
        }
        return unexpected(ps, ps->p, "',' or '}'");
    }
}

/* The value at ps->p (whitespace skipped), nested `depth` deep (the top
 * value is 1, as jansson counts). */
static jval_t *parse_value_at(parser_t *ps, unsigned depth);

/* The value at ps->p, with the span of its text. */
static jval_t *parse_value(parser_t *ps, unsigned depth)
{
    const unsigned char *start = ps->p;
    jval_t *v = parse_value_at(ps, depth);
    if (v) {
        v->raw = (const char *)start;
        v->raw_len = (size_t)(ps->p - start);
    }
    return v;
}

static jval_t *parse_value_at(parser_t *ps, unsigned depth)
{
    if (depth > JPARSE_MAX_DEPTH)
        return fail(ps, ps->p, "nested deeper than %d", JPARSE_MAX_DEPTH);
    if (ps->p == ps->end)
        return unexpected(ps, ps->p, "a value");
    jval_t *v;
    switch (*ps->p) {
    case '"': {
        int escaped;
        v = new_node(ps, JV_STRING);
        return parse_string(ps, &v->u.str.s, &v->u.str.len, &escaped) == 0 ? v : NULL;
    }
    case '{':
        ps->p++;
        return parse_object(ps, new_node(ps, JV_OBJECT), depth);
    case '[':
        ps->p++;
        return parse_array(ps, new_node(ps, JV_ARRAY), depth);
    case 't':
        return parse_literal(ps, "true", 4, JV_TRUE);
    case 'f':
        return parse_literal(ps, "false", 5, JV_FALSE);
    case 'n':
        return parse_literal(ps, "null", 4, JV_NULL);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return parse_number(ps);
    default:
        return unexpected(ps, ps->p, "a value");
    }
}

int jparse(jdoc_t *d, const char *s, size_t len, jparse_err_t *err)
{
    jparse_init(d);
    parser_t ps = {(const unsigned char *)s, (const unsigned char *)s,
                   (const unsigned char *)s + len, d, err};
    jval_t *root = NULL;
    if (len > UINT32_MAX) {
        fail(&ps, ps.s, "input larger than 4 GiB");
    } else {
        skip_ws(&ps);
        root = parse_value(&ps, 1);
        if (root) {
            skip_ws(&ps);
            if (ps.p != ps.end) {
                char b[16];
                root = fail(&ps, ps.p, "unexpected %s after the value", show(ps.p, b));
            }
        }
    }
    if (!root) {
        locate(ps.s, len, err->pos, err);
        return -1;
    }
    d->root = root;
    return 0;
}

const jval_t *jparse_get(const jval_t *o, const char *key, size_t klen)
{
    if (!o || o->type != JV_OBJECT)
        return NULL;
    const jval_t *found = NULL;
    for (const jval_t *m = o->u.kids.first; m; m = m->next) {
        if (m->klen != klen)
            continue;
        size_t i = 0; /* keys are short: no call to memcmp */
        while (i < klen && m->key[i] == key[i])
            i++;
        if (i == klen)
            found = m;
    }
    return found;
}
