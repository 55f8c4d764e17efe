/*
 * reqjson.c -- request body parsing (see reqjson.h).
 */
#include "reqjson.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "time/duration.h"
#include "time/rfc3339.h"

void reqerr_set(reqerr_t *e, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    e->status = status;
}

int reqjson_parse(const char *body, size_t len, int empty_ok, size_t max_body, jdoc_t *doc,
                  reqerr_t *e)
{
    jparse_init(doc);
    if (len > max_body) {
        reqerr_set(e, 413, "request body is %zu bytes; the limit is %zu", len, max_body);
        return -1;
    }
    if (len == 0) {
        if (empty_ok)
            return 0;
        reqerr_set(e, 400, "request body is empty; expected a JSON object");
        return -1;
    }
    /* Any value parses (a scalar too, so we can say it is the wrong type);
     * "\u0000" is valid JSON, and data is binary-safe. */
    jparse_err_t jerr;
    if (jparse(doc, body, len, &jerr) != 0) {
        reqerr_set(e, 400, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                   jerr.text);
        return -1;
    }
    return 0;
}

/* The field, or NULL when missing or null. */
static const jval_t *field(const jval_t *o, const char *key)
{
    return jparse_get(o, key, strlen(key));
}

static const jval_t *present(const jval_t *v)
{
    return v && v->type != JV_NULL ? v : NULL;
}

int reqjson_string_of(const jval_t *v, const char *key, const char **s, size_t *len, reqerr_t *e)
{
    if (!(v = present(v)))
        return 0;
    if (v->type != JV_STRING) {
        reqerr_set(e, 400, "field \"%s\" must be a string", key);
        return -1;
    }
    *s = v->u.str.s;
    *len = v->u.str.len;
    return 1;
}

int reqjson_duration_of(const jval_t *v, const char *key, int positive, int64_t *ns, reqerr_t *e)
{
    if (!(v = present(v)))
        return 0;
    if (v->type != JV_STRING) {
        reqerr_set(e, 400, "field \"%s\" must be a duration string such as \"1m30s\"", key);
        return -1;
    }
    char err[200];
    int64_t d;
    if (duration_parse(v->u.str.s, v->u.str.len, &d, err, sizeof(err)) != 0) {
        reqerr_set(e, 400, "field \"%s\": %s", key, err);
        return -1;
    }
    if (positive ? d <= 0 : d < 0) {
        reqerr_set(e, 400, "field \"%s\" must be a %s duration", key,
                   positive ? "positive" : "non-negative");
        return -1;
    }
    *ns = d;
    return 1;
}

int reqjson_time_of(const jval_t *v, const char *key, ntime_t *t, reqerr_t *e)
{
    if (!(v = present(v)))
        return 0;
    if (v->type != JV_STRING) {
        reqerr_set(e, 400, "field \"%s\" must be an RFC 3339 time string", key);
        return -1;
    }
    char err[200];
    if (rfc3339_parse(v->u.str.s, v->u.str.len, t, err, sizeof(err)) != 0) {
        reqerr_set(e, 400, "field \"%s\": %s", key, err);
        return -1;
    }
    return 1;
}

int reqjson_string(const jval_t *o, const char *key, const char **s, size_t *len, reqerr_t *e)
{
    return reqjson_string_of(field(o, key), key, s, len, e);
}

int reqjson_duration(const jval_t *o, const char *key, int positive, int64_t *ns, reqerr_t *e)
{
    return reqjson_duration_of(field(o, key), key, positive, ns, e);
}

int reqjson_time(const jval_t *o, const char *key, ntime_t *t, reqerr_t *e)
{
    return reqjson_time_of(field(o, key), key, t, e);
}

int reqjson_int(const jval_t *o, const char *key, int64_t min, int64_t max, int64_t *v,
                reqerr_t *e)
{
    const jval_t *f = present(field(o, key));
    if (!f)
        return 0;
    if (f->type != JV_INT || f->u.i < min || f->u.i > max) {
        reqerr_set(e, 400, "field \"%s\" must be an integer from %lld to %lld", key, (long long)min,
                   (long long)max);
        return -1;
    }
    *v = f->u.i;
    return 1;
}
