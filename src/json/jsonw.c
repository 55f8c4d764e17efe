/*
 * jsonw.c -- the streaming JSON writer.
 *
 * Design: every value goes through value_begin(), which writes the comma
 * if the enclosing container already has a member; bit d-1 of has_member
 * belongs to the container at depth d (1..JSONW_MAX_DEPTH), so 64 levels
 * fit one word and the top level (depth 0) needs no bit. The writer trusts
 * its caller for structure (a key before each object member, balanced
 * begin/end): those are our own code paths, checked by ASSERT where cheap.
 * The buffer always has room for a NUL after len, so a stolen buffer is a
 * C string too (handy for logging a body).
 * Escaping checks and copies bytes that need no escape eight at a time;
 * event data is mostly such runs.
 */
#include "jsonw.h"

#include <string.h>

#include "base/ntime.h"
#include "base/util.h"

#define JSONW_DEFAULT_CAP 256

/* Makes room for n more bytes plus the trailing NUL. */
void jsonw_grow(jsonw_t *w, size_t n)
{
    if (w->cap - w->len > n)
        return;
    size_t cap = w->cap ? w->cap : JSONW_DEFAULT_CAP;
    while (cap - w->len <= n) {
        ASSERT(cap <= SIZE_MAX / 2);
        cap *= 2;
    }
    w->buf = xrealloc(w->buf, cap);
    w->cap = cap;
}

static void put(jsonw_t *w, const char *s, size_t n)
{
    if (n == 0)
        return; /* s may be NULL then, which memcpy does not allow */
    char *p = jsonw_room(w, n);
    memcpy(p, s, n);
    jsonw_commit(w, p + n);
}

static void put_char(jsonw_t *w, char c)
{
    char *p = jsonw_room(w, 1);
    *p = c;
    jsonw_commit(w, p + 1);
}

void jsonw_init(jsonw_t *w, size_t initial_cap)
{
    memset(w, 0, sizeof *w);
    w->cap = initial_cap ? initial_cap + 1 : JSONW_DEFAULT_CAP;
    w->buf = xmalloc(w->cap);
    w->buf[0] = '\0';
}

void jsonw_free(jsonw_t *w)
{
    if (!w)
        return;
    free(w->buf);
    memset(w, 0, sizeof *w);
}

void jsonw_reset(jsonw_t *w)
{
    w->len = 0;
    w->depth = 0;
    w->has_member = 0;
    w->after_key = 0;
    if (w->buf)
        w->buf[0] = '\0';
}

/* Hands over the buffer (NUL-terminated, *len without the NUL) and leaves
 * the writer empty and usable; it allocates afresh on the next write. */
char *jsonw_steal(jsonw_t *w, size_t *len)
{
    jsonw_grow(w, 0); /* a writer that was stolen from before has no buffer */
    w->buf[w->len] = '\0';
    char *buf = w->buf;
    if (len)
        *len = w->len;
    memset(w, 0, sizeof *w);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Structure                                                                 */
/* ------------------------------------------------------------------------ */

/* Called before every value and key: a comma unless this is the first
 * member of its container or the value right after its key. */
static void value_begin(jsonw_t *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth == 0)
        return;
    uint64_t bit = 1ULL << (w->depth - 1);
    if (w->has_member & bit)
        put_char(w, ',');
    w->has_member |= bit;
}

static void open_container(jsonw_t *w, char c)
{
    value_begin(w);
    ASSERT(w->depth < JSONW_MAX_DEPTH);
    w->depth++;
    w->has_member &= ~(1ULL << (w->depth - 1));
    put_char(w, c);
}

static void close_container(jsonw_t *w, char c)
{
    ASSERT(w->depth > 0 && !w->after_key);
    w->depth--;
    put_char(w, c);
}

void jsonw_obj_begin(jsonw_t *w)
{
    open_container(w, '{');
}

void jsonw_obj_end(jsonw_t *w)
{
    close_container(w, '}');
}

void jsonw_arr_begin(jsonw_t *w)
{
    open_container(w, '[');
}

void jsonw_arr_end(jsonw_t *w)
{
    close_container(w, ']');
}

/* ------------------------------------------------------------------------ */
/* Strings                                                                   */
/* ------------------------------------------------------------------------ */

/* For each byte: 0 = copy as is, a letter = "\<letter>", 'u' = "\u00XX". */
static const char escape_of[256] = {
    ['\0'] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u',
    [0x06] = 'u', [0x07] = 'u', ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', [0x0b] = 'u',
    ['\f'] = 'f', ['\r'] = 'r', [0x0e] = 'u', [0x0f] = 'u', [0x10] = 'u', [0x11] = 'u',
    [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u',
    [0x18] = 'u', [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u', [0x1d] = 'u',
    [0x1e] = 'u', [0x1f] = 'u', ['"'] = '"', ['\\'] = '\\',
};

/* Writes the escape of c at p (2 or 6 bytes) and returns its end. */
static char *write_escape(char *p, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char e = escape_of[c];
    p[0] = '\\';
    if (e != 'u') {
        p[1] = e;
        return p + 2;
    }
    memcpy(p + 1, "u00", 3);
    p[4] = hex[c >> 4];
    p[5] = hex[c & 15];
    return p + 6;
}

/* Whether any byte of the word is < 0x20, '"' or '\\' (the classic
 * "has zero byte" trick: a byte b sets its high bit in (b - k) & ~b only if
 * b < k, and a borrow can only mark bytes above a real match, so a hit
 * merely sends that word to the byte loop). Bytes >= 0x80 never hit. */
static int word_needs_escape(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\'); /* zero bytes where they match */
    uint64_t ctl = (x - ones * 0x20) & ~x & highs;
    uint64_t quote = (q - ones) & ~q & highs;
    uint64_t bslash = (b - ones) & ~b & highs;
    return (ctl | quote | bslash) != 0;
}

void jsonw_escape_into(jsonw_t *w, const char *s, size_t len)
{
    if (len == 0)
        return; /* (s, 0) may be (NULL, 0): no pointer arithmetic on it */
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    /* Room for the common case of nothing to escape, taken once. Words
     * without an escape are stored as they are checked, eight bytes at a
     * time, which is most of any event's data; a word with one goes
     * byte by byte, and each escape makes room for itself and the rest
     * rather than reserving 6x up front. */
    char *o = jsonw_room(w, len);
    while (p < end) {
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8); /* unaligned load without undefined behaviour */
            if (word_needs_escape(x))
                break;
            memcpy(o, &x, 8);
            p += 8;
            o += 8;
        }
        const unsigned char *stop = end - p > 8 ? p + 8 : end;
        for (; p < stop; p++) {
            if (!escape_of[*p]) {
                *o++ = (char)*p;
                continue;
            }
            w->len = (size_t)(o - w->buf);
            o = jsonw_room(w, 6 + (size_t)(end - p - 1));
            o = write_escape(o, *p);
        }
    }
    jsonw_commit(w, o);
}

void jsonw_key(jsonw_t *w, const char *key)
{
    ASSERT(!w->after_key && w->depth > 0);
    value_begin(w);
    size_t len = strlen(key);
    char *p = jsonw_room(w, len + 3);
    *p = '"';
    jsonw_commit(w, p + 1);
    jsonw_escape_into(w, key, len);
    p = jsonw_room(w, 2);
    memcpy(p, "\":", 2);
    jsonw_commit(w, p + 2);
    w->after_key = 1;
}

void jsonw_str(jsonw_t *w, const char *s, size_t len)
{
    value_begin(w);
    char *p = jsonw_room(w, len + 2);
    *p = '"';
    jsonw_commit(w, p + 1);
    jsonw_escape_into(w, s, len);
    put_char(w, '"');
}

/* NULL is written as JSON null: an absent C string is an absent value. */
void jsonw_cstr(jsonw_t *w, const char *s)
{
    if (s)
        jsonw_str(w, s, strlen(s));
    else
        jsonw_null(w);
}

/* ------------------------------------------------------------------------ */
/* Scalars                                                                   */
/* ------------------------------------------------------------------------ */

/* Digits of v, written backwards into a small buffer; no snprintf, since
 * numbers appear in every listing. */
static void put_u64(jsonw_t *w, uint64_t v, int neg)
{
    char tmp[21];
    char *p = tmp + sizeof tmp;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg)
        *--p = '-';
    put(w, p, (size_t)(tmp + sizeof tmp - p));
}

void jsonw_int(jsonw_t *w, int64_t v)
{
    value_begin(w);
    /* 0 - (uint64_t)v is the magnitude also for INT64_MIN, where -v is UB. */
    put_u64(w, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

void jsonw_uint(jsonw_t *w, uint64_t v)
{
    value_begin(w);
    put_u64(w, v, 0);
}

void jsonw_bool(jsonw_t *w, int v)
{
    value_begin(w);
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void jsonw_null(jsonw_t *w)
{
    value_begin(w);
    put(w, "null", 4);
}

void jsonw_time(jsonw_t *w, ntime_t t)
{
    value_begin(w);
    char *p = jsonw_room(w, RFC3339_LEN + 2);
    p[0] = '"';
    rfc3339_format_cached(&w->times, t, p + 1); /* its NUL is overwritten by the quote */
    p[RFC3339_LEN + 1] = '"';
    jsonw_commit(w, p + RFC3339_LEN + 2);
}

void jsonw_raw(jsonw_t *w, const char *s, size_t len)
{
    value_begin(w);
    put(w, s, len);
}

char *jsonw_value_room(jsonw_t *w, size_t n)
{
    value_begin(w);
    return jsonw_room(w, n);
}
