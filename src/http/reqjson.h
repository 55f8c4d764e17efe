/*
 * reqjson.h -- reading request bodies: JSON parsing (jparse) and typed
 * field access with one readable error per failure.
 *
 * Every getter returns 1 when the field is present and valid, 0 when it is
 * absent (missing or JSON null, which counts as absent), and -1 when it is
 * invalid, after writing the status and a sentence naming the field into
 * the reqerr_t. Nothing is sent from here: the handler sends the error, so
 * a batch can prefix it with the element's index.
 */
#ifndef HTTP_REQJSON_H
#define HTTP_REQJSON_H

#include <stddef.h>
#include "base/ntime.h"
#include "json/jparse.h"

typedef struct reqerr {
    int status;      /* 400, 413, ... */
    char msg[320];
} reqerr_t;

void reqerr_set(reqerr_t *e, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses body[0..len) as one JSON value into doc. Returns 0 with the value
 * in doc->root (NULL for an empty body when empty_ok), or -1 with e set
 * (an empty body otherwise, a body over max_body, malformed JSON). Either
 * way the caller calls jparse_free(doc) afterwards; the values point into
 * body, so body must outlive them. */
int reqjson_parse(const char *body, size_t len, int empty_ok, size_t max_body, jdoc_t *doc,
                  reqerr_t *e);

/* A string: *s and *len are its bytes (not NUL-terminated; NUL bytes may
 * occur), owned by the document. */
int reqjson_string(const jval_t *o, const char *key, const char **s, size_t *len, reqerr_t *e);

/* A Go duration string. positive: must be > 0 (else >= 0). */
int reqjson_duration(const jval_t *o, const char *key, int positive, int64_t *ns, reqerr_t *e);

/* An RFC 3339 time string. */
int reqjson_time(const jval_t *o, const char *key, ntime_t *t, reqerr_t *e);

/* The same three for a member already found (v NULL when absent), for a
 * handler that reads an object's members in one pass; key only names the
 * field in errors. */
int reqjson_string_of(const jval_t *v, const char *key, const char **s, size_t *len, reqerr_t *e);
int reqjson_duration_of(const jval_t *v, const char *key, int positive, int64_t *ns, reqerr_t *e);
int reqjson_time_of(const jval_t *v, const char *key, ntime_t *t, reqerr_t *e);

/* A JSON integer within [min, max]. */
int reqjson_int(const jval_t *o, const char *key, int64_t min, int64_t max, int64_t *v,
                reqerr_t *e);

#endif
