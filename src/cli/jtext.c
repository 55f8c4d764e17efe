/*
 * jtext.c -- request bodies and value spans (see jtext.h).
 */
#include "jtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static void put(jtext_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->buf = xrealloc(b->buf, b->cap);
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

void jtext_append(jtext_t *b, const char *s, size_t n)
{
    put(b, s, n);
}

static void put_string(jtext_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            put(b, esc, 6);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    put(b, "\"", 1);
}

void jtext_init(jtext_t *b)
{
    memset(b, 0, sizeof(*b));
    put(b, "{", 1);
}

static void key(jtext_t *b, const char *k)
{
    if (b->members++)
        put(b, ",", 1);
    put_string(b, k, strlen(k));
    put(b, ":", 1);
}

void jtext_str(jtext_t *b, const char *k, const char *s, size_t len)
{
    key(b, k);
    put_string(b, s, len);
}

void jtext_raw(jtext_t *b, const char *k, const char *json, size_t len)
{
    key(b, k);
    put(b, json, len);
}

void jtext_members(jtext_t *b, const char *members, size_t len)
{
    if (b->members++)
        put(b, ",", 1);
    put(b, members, len);
}

const char *jtext_end(jtext_t *b)
{
    put(b, "}", 1);
    return b->buf;
}

void jtext_free(jtext_t *b)
{
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

/* ---- spans: the text is valid JSON, so the walk only finds ends ---- */

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static size_t skip_string(const char *s, size_t len, size_t i) /* at the opening '"' */
{
    for (i++; i < len && s[i] != '"'; i++)
        if (s[i] == '\\')
            i++;
    return i + 1;
}

/* The end of the value that starts at s[i]. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
    if (s[i] == '"')
        return skip_string(s, len, i);
    if (s[i] != '{' && s[i] != '[') {
        while (i < len && !strchr(",]} \t\r\n", s[i]))
            i++;
        return i;
    }
    int depth = 0;
    for (; i < len; i++) {
        if (s[i] == '"')
            i = skip_string(s, len, i) - 1;
        else if (s[i] == '{' || s[i] == '[')
            depth++;
        else if ((s[i] == '}' || s[i] == ']') && --depth == 0)
            return i + 1;
    }
    return len;
}

/* Within the object or array at s[i], the start of the child named by step;
 * 0 if there is none (a child never starts at 0). */
static size_t child(const char *s, size_t len, size_t i, const char *step)
{
    int arr = s[i] == '[';
    if (arr != (step[0] == '#') || (s[i] != '{' && s[i] != '['))
        return 0;
    long want = arr ? strtol(step + 1, NULL, 10) : 0;
    size_t klen = strlen(step);
    for (long n = 0;; n++) {
        i = skip_ws(s, len, i + 1);
        if (i >= len || s[i] == '}' || s[i] == ']')
            return 0;
        int hit = arr ? n == want : 0;
        if (!arr) {
            size_t k = i;
            i = skip_ws(s, len, skip_ws(s, len, skip_string(s, len, i)) + 1); /* past ':' */
            hit = skip_string(s, len, k) - k - 2 == klen && memcmp(s + k + 1, step, klen) == 0;
        }
        if (hit)
            return i;
        i = skip_ws(s, len, skip_value(s, len, i)); /* at ',' */
    }
}

int jtext_span(const char *s, size_t len, const char *const *path, size_t *start, size_t *end)
{
    size_t i = skip_ws(s, len, 0);
    for (; *path && i < len; path++)
        if ((i = child(s, len, i, *path)) == 0)
            return -1;
    if (i >= len)
        return -1;
    *start = i;
    *end = skip_value(s, len, i);
    return 0;
}
