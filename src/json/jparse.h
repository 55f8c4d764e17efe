/*
 * jparse.h -- a strict, single-pass JSON parser for request bodies.
 *
 * It accepts and rejects exactly what jansson 2.14's json_loadb() does with
 * JSON_ALLOW_NUL | JSON_DECODE_ANY (fuzz/fuzz_jparse.c checks this against
 * jansson): RFC 8259 with any value at the top, nothing after it but
 * whitespace, strict UTF-8 (no overlong forms, no surrogates, nothing past
 * U+10FFFF), \u escapes with surrogate pairs and no lone surrogates, "\u0000"
 * in strings but not in object keys, integers within int64 (a number with a
 * fraction or exponent is a real), reals that do not overflow a double, and
 * values nested at most JPARSE_MAX_DEPTH deep. A key given twice keeps its
 * last value.
 *
 * Memory: a document (jdoc_t) owns every node and every decoded string in
 * an arena: a small buffer inside the jdoc_t, then chunks from malloc sized
 * from what the body needs, so a small body parses without malloc and a
 * large one with one or two. jparse_free() releases it all at once.
 * Strings without escapes are not copied: they point into the parsed
 * buffer, which must outlive the document. No string is NUL-terminated;
 * each has a length (data may hold NUL bytes), and the byte after one is
 * never part of it.
 *
 * Shape: arrays and objects keep their children as a singly linked list in
 * input order with a count; an object member is a value whose key is set.
 * Looking up a key scans the members (request objects hold a handful), and
 * the last member with the key wins.
 */
#ifndef HTTP_JPARSE_H
#define HTTP_JPARSE_H

#include <stddef.h>
#include <stdint.h>

#define JPARSE_MAX_DEPTH 2048   /* the deepest nesting accepted, as in jansson */
#define JPARSE_INLINE 1024      /* arena bytes inside the jdoc_t, before malloc */

typedef enum jtype { JV_NULL, JV_FALSE, JV_TRUE, JV_INT, JV_REAL, JV_STRING, JV_ARRAY, JV_OBJECT } jtype_t;

typedef struct jval jval_t;
struct jval {
    jval_t *next;    /* the next element or member of the parent, or NULL */
    const char *key; /* member name (not NUL-terminated), NULL outside objects */
    uint32_t klen;   /* bytes of key */
    uint32_t type;   /* a jtype_t */
    const char *raw; /* the value's JSON text in the parsed buffer, as sent */
    size_t raw_len;
    union {
        struct {
            const char *s; /* into the parsed buffer, or the arena if it had escapes */
            size_t len;
        } str;
        int64_t i;
        double d;
        struct {
            jval_t *first; /* elements or members, in input order */
            size_t n;      /* how many (duplicate keys included) */
        } kids;
    } u;
};

typedef struct jchunk jchunk_t;

typedef struct jdoc {
    jval_t *root;      /* the parsed value; NULL before a successful parse */
    jchunk_t *chunks;  /* malloc'd arena chunks, newest first */
    char *top, *end;   /* the free part of the current chunk */
    size_t used;       /* bytes handed out from full chunks, to size the next */
    union {
        jval_t align;
        char b[JPARSE_INLINE];
    } first;           /* the first chunk */
} jdoc_t;

typedef struct jparse_err {
    int line, column; /* 1-based, as an editor counts: column in characters */
    size_t pos;       /* byte offset of the offending byte (len at the end) */
    char text[96];    /* a short reason, e.g. "expected ',' or '}'" */
} jparse_err_t;

/* Makes d an empty document, so that jparse_free(d) is safe before (or
 * without) a jparse(d, ...). */
void jparse_init(jdoc_t *d);

/* Parses s[0..len) as one JSON value into d, which need not be initialised.
 * Returns 0 with d->root set, or -1 with err filled in (d->root NULL). In
 * both cases d owns memory afterwards: call jparse_free(d) once done with
 * the values (and with s, which they may point into). */
int jparse(jdoc_t *d, const char *s, size_t len, jparse_err_t *err);

/* Releases everything d owns; d->root becomes NULL. Safe to call twice. */
void jparse_free(jdoc_t *d);

/* The value of member key[0..klen) of object o (the last one if the key is
 * given more than once), or NULL if o has no such member or is not an
 * object. O(members). */
const jval_t *jparse_get(const jval_t *o, const char *key, size_t klen);

#endif
