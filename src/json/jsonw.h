/*
 * jsonw.h -- a small streaming JSON writer.
 *
 * Output JSON is written straight into one growing buffer instead of building
 * a tree to print: the writer keeps only a stack of "is this the first member"
 * bits, so it puts commas itself. Strings are escaped per RFC 8259: '"', '\\'
 * and every byte below 0x20 (\b \f \n \r \t by name, the rest as \u00XX);
 * bytes >= 0x80 are copied as they are (the caller passes valid UTF-8).
 * NUL bytes inside a string are written as \u0000, so data is binary-safe.
 * The buffer is malloc'd and owned by the writer until jsonw_steal().
 * Allocation failure aborts (see xmalloc in core/util.h).
 */
#ifndef JSONW_H
#define JSONW_H

#include <stddef.h>
#include <stdint.h>
#include "base/ntime.h"

#define JSONW_MAX_DEPTH 64

typedef struct jsonw {
    char *buf;
    size_t len, cap;
    unsigned depth;          /* open objects/arrays */
    uint64_t has_member;     /* bit d set: level d already has a member */
    int after_key;           /* a key was written; the next value needs no comma */
    rfc3339_cache_t times;   /* recent seconds, for jsonw_time and render.c */
} jsonw_t;

void jsonw_init(jsonw_t *w, size_t initial_cap);
void jsonw_free(jsonw_t *w);         /* frees the buffer; jsonw_free(NULL) is fine */
void jsonw_reset(jsonw_t *w);        /* empties it, keeps the buffer */
char *jsonw_steal(jsonw_t *w, size_t *len); /* caller owns and frees the buffer */

void jsonw_obj_begin(jsonw_t *w);
void jsonw_obj_end(jsonw_t *w);
void jsonw_arr_begin(jsonw_t *w);
void jsonw_arr_end(jsonw_t *w);
void jsonw_key(jsonw_t *w, const char *key);                /* NUL-terminated, escaped */
void jsonw_str(jsonw_t *w, const char *s, size_t len);     /* escaped string value */
void jsonw_cstr(jsonw_t *w, const char *s);                 /* NUL-terminated */
void jsonw_int(jsonw_t *w, int64_t v);
void jsonw_uint(jsonw_t *w, uint64_t v);
void jsonw_bool(jsonw_t *w, int v);
void jsonw_null(jsonw_t *w);
void jsonw_time(jsonw_t *w, ntime_t t);                     /* RFC 3339 string, 9 digits */
void jsonw_raw(jsonw_t *w, const char *s, size_t len);     /* already-valid JSON value */

/* Appends s as JSON string content (escaped, no quotes) to any buffer; used
 * by jsonw_str and by error messages. */
void jsonw_escape_into(jsonw_t *w, const char *s, size_t len);

/* ---- writing a value in pieces, for fixed shapes (see render.c) ----
 * A renderer that knows its value's layout writes it straight into the
 * buffer: jsonw_value_room() puts the comma the value needs and returns
 * where to write, with room for n bytes; the caller writes at most that
 * many and hands the end to jsonw_commit(). jsonw_room() makes room for
 * the next piece (after jsonw_commit and, say, jsonw_escape_into). The
 * caller's pieces must form one complete JSON value: the writer does not
 * look inside them. A pointer from either function is valid until the
 * next call that writes. */
char *jsonw_value_room(jsonw_t *w, size_t n);
void jsonw_grow(jsonw_t *w, size_t n); /* the slow path of jsonw_room */

static inline char *jsonw_room(jsonw_t *w, size_t n)
{
    if (w->cap - w->len <= n) /* <=: one byte more for the trailing NUL */
        jsonw_grow(w, n);
    return w->buf + w->len;
}

static inline void jsonw_commit(jsonw_t *w, char *end)
{
    w->len = (size_t)(end - w->buf);
    *end = '\0';
}

#endif
