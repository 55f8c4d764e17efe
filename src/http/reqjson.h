/*
 * reqjson.h -- reading request bodies: JSON parsing with jansson and typed
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

#include <jansson.h>
#include <stddef.h>
#include "../core/ntime.h"

typedef struct reqerr {
    int status;      /* 400, 413, ... */
    char msg[320];
} reqerr_t;

void reqerr_set(reqerr_t *e, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses body[0..len) as one JSON value. An empty body gives *out = NULL
 * and returns 0 when empty_ok, else an error. Returns 0 or -1 (e set).
 * The caller owns *out (json_decref). */
int reqjson_parse(const char *body, size_t len, int empty_ok, size_t max_body, json_t **out,
                  reqerr_t *e);

int reqjson_string(json_t *o, const char *key, const char **s, size_t *len, reqerr_t *e);

/* A Go duration string. positive: must be > 0 (else >= 0). */
int reqjson_duration(json_t *o, const char *key, int positive, int64_t *ns, reqerr_t *e);

/* An RFC 3339 time string. */
int reqjson_time(json_t *o, const char *key, ntime_t *t, reqerr_t *e);

/* A JSON integer within [min, max]. */
int reqjson_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *v, reqerr_t *e);

#endif
