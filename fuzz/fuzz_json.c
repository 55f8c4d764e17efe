/*
 * fuzz_json.c -- libFuzzer target for request JSON: reqjson_parse and the
 * typed getters on the field names the handlers read, and the JSON writer
 * on every string that comes out.
 *
 * The first input byte picks empty_ok and max_body (so the 413 path is
 * reached); the rest is the body. For an object, or each element of an
 * array (a batch), every getter runs on every field name the handlers use.
 * Checks, besides ASan/UBSan:
 *   - each call returns -1, 0 or 1; -1 leaves status 400 or 413 and a
 *     non-empty message; 0 and 1 leave the error alone;
 *   - a duration asked to be positive is > 0, non-negative is >= 0; an int
 *     is within [min, max];
 *   - every string value written with jsonw_str (and every key with
 *     jsonw_key) parses back with jansson to the same bytes: escaping is
 *     right, NUL bytes included.
 * (fuzz_jparse.c checks the parser itself against jansson.)
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/json/jsonw.h"
#include "../src/http/reqjson.h"

static const char *const string_keys[] = {"data", "action", "lockToken", "name", "cronDef"};
static const char *const duration_keys[] = {"ttl", "publishIn", "wait"};

static const uint8_t *in_data;
static size_t in_size;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_json: %s\n--- input ---\n%.*s\n---\n", what, (int)in_size, (const char *)in_data);
    abort();
}

static void check_rc(int rc, const reqerr_t *e)
{
    if (rc < -1 || rc > 1)
        fail("a getter returned something other than -1, 0 or 1");
    if (rc == -1 && ((e->status != 400 && e->status != 413) || e->msg[0] == '\0' ||
                     !memchr(e->msg, '\0', sizeof(e->msg))))
        fail("an error without status 400/413 or without a message");
    if (rc >= 0 && e->status != 0)
        fail("a getter that succeeded set the error");
}

/* s[0..len) through jsonw (as a value and, if it has no NUL, as a key)
 * and back through jansson must be the same bytes. */
static void check_escape(const char *s, size_t len)
{
    jsonw_t w;
    jsonw_init(&w, 16);
    jsonw_arr_begin(&w);
    jsonw_str(&w, s, len);
    jsonw_arr_end(&w);
    json_error_t jerr;
    json_t *v = json_loadb(w.buf, w.len, JSON_ALLOW_NUL, &jerr);
    json_t *str = json_array_get(v, 0);
    if (!v || json_string_length(str) != len || memcmp(json_string_value(str), s, len) != 0)
        fail("jsonw_str output does not parse back to the same string");
    json_decref(v);
    if (!memchr(s, '\0', len)) {
        char *key = malloc(len + 1); /* parsed strings are not NUL-terminated */
        memcpy(key, s, len);
        key[len] = '\0';
        jsonw_reset(&w);
        jsonw_obj_begin(&w);
        jsonw_key(&w, key);
        jsonw_int(&w, 1);
        jsonw_obj_end(&w);
        v = json_loadb(w.buf, w.len, 0, &jerr);
        if (!v || json_object_size(v) != 1 || !json_object_get(v, key))
            fail("jsonw_key output does not parse back to the same key");
        json_decref(v);
        free(key);
    }
    jsonw_free(&w);
}

/* Each body's table: 0 with every member placed, or -1 with a message. */
static void check_tables(const jval_t *o)
{
    const reqbody_t *bodies[] = {&req_publish_body, &req_update_body, &req_acquire_body, &req_job_body};
    for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
        const jval_t *f[16];
        reqerr_t e;
        memset(&e, 0, sizeof(e));
        int rc = reqjson_fields(o, bodies[b], f, &e);
        if (rc == -1 && (e.status != 400 || !e.msg[0]))
            fail("reqjson_fields failed without a 400 and a message");
        if (rc != 0 && rc != -1)
            fail("reqjson_fields returned something other than 0 or -1");
        for (size_t i = 0; rc == 0 && i < bodies[b]->n; i++)
            if (f[i] && f[i]->type == JV_NULL)
                fail("reqjson_fields placed a null member");
    }
}

static void check_fields(const jval_t *o)
{
    reqerr_t e;
    const char *s;
    size_t len;
    int64_t v;
    ntime_t t;
    for (size_t i = 0; i < sizeof(string_keys) / sizeof(string_keys[0]); i++) {
        memset(&e, 0, sizeof(e));
        int rc = reqjson_string(o, string_keys[i], &s, &len, &e);
        check_rc(rc, &e);
        if (rc == 1)
            check_escape(s, len);
    }
    for (size_t i = 0; i < sizeof(duration_keys) / sizeof(duration_keys[0]); i++) {
        for (int positive = 0; positive <= 1; positive++) {
            memset(&e, 0, sizeof(e));
            int rc = reqjson_duration(o, duration_keys[i], positive, &v, &e);
            check_rc(rc, &e);
            if (rc == 1 && ((positive ? v <= 0 : v < 0) || v > REQ_DURATION_MAX_NS))
                fail("a duration outside the range asked for");
        }
    }
    memset(&e, 0, sizeof(e));
    check_rc(reqjson_time(o, "publishAt", &t, &e), &e);
    memset(&e, 0, sizeof(e));
    int rc = reqjson_int(o, "max", 1, 1000, &v, &e);
    check_rc(rc, &e);
    if (rc == 1 && (v < 1 || v > 1000))
        fail("an int outside [min, max]");
    /* Every key too: names come back in listings. */
    if (o->type == JV_OBJECT)
        for (const jval_t *m = o->u.kids.first; m; m = m->next)
            check_escape(m->key, m->klen);
    if (o->type == JV_OBJECT)
        check_tables(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    in_data = data;
    in_size = size;
    int empty_ok = data[0] & 1;
    size_t max_body = data[0] & 2 ? 64 : 1 << 20;
    jdoc_t doc;
    reqerr_t e;
    memset(&e, 0, sizeof(e));
    int rc = reqjson_parse((const char *)data + 1, size - 1, empty_ok, max_body, &doc, &e);
    const jval_t *body = doc.root;
    if (rc != 0 && rc != -1)
        fail("reqjson_parse returned something other than 0 or -1");
    if (rc == -1 && (body != NULL || (e.status != 400 && e.status != 413) || e.msg[0] == '\0'))
        fail("reqjson_parse failed without NULL, a status and a message");
    if (rc == 0 && !body && !(empty_ok && size == 1))
        fail("reqjson_parse succeeded without a value");
    if (body && body->type == JV_ARRAY) {
        for (const jval_t *el = body->u.kids.first; el; el = el->next)
            check_fields(el);
    } else if (body) {
        check_fields(body);
    }
    jparse_free(&doc);
    return 0;
}
