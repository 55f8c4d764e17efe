/*
 * jtext.h -- JSON text for the dq client: building small request bodies and
 * finding the exact text of a value in an answer.
 *
 * A body is one flat object written member by member into a growing buffer
 * (jtext_t); strings are escaped per RFC 8259 ('"', '\\' and bytes below
 * 0x20; bytes from 0x80 are copied, the server checks UTF-8). Raw members
 * are copied as given: the caller has checked them with jparse.
 *
 * jtext_span() walks a JSON text that jparse has accepted and returns where
 * a value starts and ends, so event data that is an object or a number is
 * passed on byte for byte (member order and number text kept), which a
 * parsed tree cannot give back.
 */
#ifndef CLI_JTEXT_H
#define CLI_JTEXT_H

#include <stddef.h>

typedef struct jtext {
    char *buf;     /* "{...}" so far, NUL-terminated; malloc'd */
    size_t len, cap;
    int members;   /* members written */
} jtext_t;

/* Any text: a zeroed jtext_t is an empty buffer; jtext_append adds bytes. */
void jtext_append(jtext_t *b, const char *s, size_t n);

void jtext_init(jtext_t *b);                                    /* an empty object "{" */
void jtext_str(jtext_t *b, const char *key, const char *s, size_t len); /* "key":"s" */
void jtext_raw(jtext_t *b, const char *key, const char *json, size_t len); /* "key":json */
void jtext_members(jtext_t *b, const char *members, size_t len); /* "k":v,... as given */
const char *jtext_end(jtext_t *b); /* closes the object, returns buf (owned by b) */
void jtext_free(jtext_t *b);

/* In the valid JSON text s[0..len), the value at path: a list of steps,
 * each an object member name or, written "#N", the N-th array element
 * (from 0), ended by NULL. Sets *start and *end (one past) and returns 0,
 * or -1 if the path leads nowhere. */
int jtext_span(const char *s, size_t len, const char *const *path, size_t *start, size_t *end);

#endif
