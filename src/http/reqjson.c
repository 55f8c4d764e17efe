/*
 * reqjson.c -- request body parsing (see reqjson.h).
 */
#include "reqjson.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "time/duration.h"
#include "time/rfc3339.h"

#define REQ_FIELD_NAME(id, name) name,
static const char *const publish_names[] = {REQ_PUBLISH_FIELDS(REQ_FIELD_NAME)};
static const char *const update_names[] = {REQ_UPDATE_FIELDS(REQ_FIELD_NAME)};
static const char *const acquire_names[] = {REQ_ACQUIRE_FIELDS(REQ_FIELD_NAME)};
static const char *const job_names[] = {REQ_JOB_FIELDS(REQ_FIELD_NAME)};
static const char *const settings_names[] = {REQ_SETTINGS_FIELDS(REQ_FIELD_NAME)};
static const char *const redrive_names[] = {REQ_REDRIVE_FIELDS(REQ_FIELD_NAME)};
const reqbody_t req_publish_body = {publish_names, FPUB_N, "with \"data\" (or an array of them)"};
const reqbody_t req_update_body = {update_names, FUPD_N, "such as {\"action\":\"LOCK\",\"ttl\":\"1m\"}"};
const reqbody_t req_acquire_body = {acquire_names, FACQ_N, "such as {\"max\":10,\"ttl\":\"1m\",\"wait\":\"20s\"}"};
const reqbody_t req_job_body = {job_names, FJOB_N, "with \"name\" and \"cronDef\""};
const reqbody_t req_job_put_body = {job_names, FJOB_N, "with \"cronDef\""};
const reqbody_t req_settings_body = {settings_names, FSET_N,
                                     "such as {\"maxDeliveries\":5,\"deadLetterChannel\":\"dead\"}"};
const reqbody_t req_redrive_body = {redrive_names, FRED_N, "such as {\"to\":\"orders\",\"max\":100}"};

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

int reqjson_data_of(const jval_t *v, const char *key, const char **s, size_t *len, uint8_t *json,
                    reqerr_t *e)
{
    if (!(v = present(v)))
        return 0;
    if (v->type == JV_STRING) {
        *json = 0;
        return reqjson_string_of(v, key, s, len, e);
    }
    *json = 1;
    *s = v->raw;
    *len = v->raw_len;
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
    if (d > REQ_DURATION_MAX_NS) {
        reqerr_set(e, 400, "field \"%s\" must be at most 876000h (100 years)", key);
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

int reqjson_int_of(const jval_t *v, const char *key, int64_t min, int64_t max, int64_t *out,
                   reqerr_t *e)
{
    if (!(v = present(v)))
        return 0;
    if (v->type != JV_INT || v->u.i < min || v->u.i > max) {
        reqerr_set(e, 400, "field \"%s\" must be an integer from %lld to %lld", key, (long long)min,
                   (long long)max);
        return -1;
    }
    *out = v->u.i;
    return 1;
}

int reqjson_int(const jval_t *o, const char *key, int64_t min, int64_t max, int64_t *v,
                reqerr_t *e)
{
    return reqjson_int_of(field(o, key), key, min, max, v, e);
}

/* ---- field names ---- */

static char ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Does key[0..klen) (valid UTF-8, from the client) name field (ASCII) as
 * Go's encoding/json would match it? Go folds both names to the smallest
 * rune of each case-folding orbit; for an ASCII field that is ASCII case
 * plus the two runes whose orbit holds an ASCII letter: U+017F (long s)
 * and U+212A (Kelvin sign). */
static int name_matches(const char *key, size_t klen, const char *field)
{
    const unsigned char *k = (const unsigned char *)key;
    size_t i = 0;
    for (; *field; field++) {
        char f = ascii_upper(*field);
        if (i < klen && k[i] < 0x80 && ascii_upper((char)k[i]) == f)
            i += 1;
        else if (f == 'S' && i + 1 < klen && k[i] == 0xc5 && k[i + 1] == 0xbf)
            i += 2;
        else if (f == 'K' && i + 2 < klen && k[i] == 0xe2 && k[i + 1] == 0x84 && k[i + 2] == 0xaa)
            i += 3;
        else
            return 0;
    }
    return i == klen;
}

/* The index of the field key names in b, or -1. The documented spelling
 * is tried first: it is what nearly every client sends. */
static int field_index(const reqbody_t *b, const char *key, size_t klen)
{
    for (size_t i = 0; i < b->n; i++)
        if (strlen(b->names[i]) == klen && memcmp(b->names[i], key, klen) == 0)
            return (int)i;
    for (size_t i = 0; i < b->n; i++)
        if (name_matches(key, klen, b->names[i]))
            return (int)i;
    return -1;
}

/* e: "unknown field "<key>"; ..." with the key cut at a character boundary
 * so the sentence stays short (the key is valid UTF-8: jparse checked). */
static void unknown_field(const reqbody_t *b, const char *key, size_t klen, reqerr_t *e)
{
    size_t show = klen;
    const char *more = "";
    if (show > 40) {
        show = 40;
        while (show > 0 && ((unsigned char)key[show] & 0xc0) == 0x80)
            show--;
        more = "...";
    }
    char list[160] = "";
    size_t n = 0;
    for (size_t i = 0; i < b->n && n < sizeof(list); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", b->names[i]);
    reqerr_set(e, 400, "unknown field \"%.*s%s\"; the fields accepted here are %s", (int)show, key,
               more, list);
}

int reqjson_fields(const jval_t *o, const reqbody_t *b, const jval_t **out, reqerr_t *e)
{
    if (o->type != JV_OBJECT) {
        reqerr_set(e, 400, "expected a JSON object %s", b->expected);
        return -1;
    }
    for (size_t i = 0; i < b->n; i++)
        out[i] = NULL;
    for (const jval_t *m = o->u.kids.first; m; m = m->next) {
        int i = field_index(b, m->key, m->klen);
        if (i < 0) {
            unknown_field(b, m->key, m->klen, e);
            return -1;
        }
        if (m->type != JV_NULL)
            out[i] = m;
    }
    return 0;
}
