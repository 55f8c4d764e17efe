/*
 * fuzz_jparse.c -- differential libFuzzer target: jparse against jansson.
 *
 * The whole input is one body, parsed by jparse() and by jansson's
 * json_loadb(JSON_ALLOW_NUL | JSON_DECODE_ANY), which the request path
 * used before jparse. Checks, besides ASan/UBSan:
 *   - both accept or both reject;
 *   - accepted: the same value: type, integer value, the bits of a real,
 *     string bytes, array elements in order, and object members as a map
 *     (the last of a duplicated key is what jparse_get() finds and what
 *     jansson keeps);
 *   - rejected: the error has line >= 1, column >= 0, an offset within the
 *     input and a non-empty reason in valid UTF-8 (it goes into a JSON
 *     answer).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/json/jparse.h"
#include "fuzz_util.h"

static const uint8_t *in_data;
static size_t in_size;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_jparse: %s%s%s\n--- input (%zu bytes) ---\n%.*s\n---\n", what,
            detail ? ": " : "", detail ? detail : "", in_size, (int)in_size, (const char *)in_data);
    abort();
}

static int same(const jval_t *v, json_t *j);

static int same_object(const jval_t *v, json_t *j)
{
    if (!json_is_object(j))
        return 0;
    size_t distinct = 0;
    for (const jval_t *m = v->u.kids.first; m; m = m->next) {
        if (!m->key || jparse_get(v, m->key, m->klen) != m)
            continue; /* a key given again later: that one counts */
        distinct++;
        json_t *jm = json_object_getn(j, m->key, m->klen);
        if (!jm || !same(m, jm))
            return 0;
    }
    return distinct == json_object_size(j);
}

static int same(const jval_t *v, json_t *j)
{
    switch ((jtype_t)v->type) {
    case JV_NULL:
        return json_is_null(j);
    case JV_FALSE:
        return json_is_false(j);
    case JV_TRUE:
        return json_is_true(j);
    case JV_INT:
        return json_is_integer(j) && json_integer_value(j) == v->u.i;
    case JV_REAL: {
        double d = json_is_real(j) ? json_real_value(j) : 0;
        return json_is_real(j) && memcmp(&d, &v->u.d, sizeof(d)) == 0;
    }
    case JV_STRING:
        return json_is_string(j) && json_string_length(j) == v->u.str.len &&
               memcmp(json_string_value(j), v->u.str.s, v->u.str.len) == 0;
    case JV_ARRAY: {
        if (!json_is_array(j) || json_array_size(j) != v->u.kids.n)
            return 0;
        size_t i = 0;
        for (const jval_t *e = v->u.kids.first; e; e = e->next, i++)
            if (e->key || !same(e, json_array_get(j, i)))
                return 0;
        return i == v->u.kids.n;
    }
    case JV_OBJECT:
        return same_object(v, j);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in_data = data;
    in_size = size;
    json_error_t jerr;
    json_t *want = json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    jdoc_t doc;
    jparse_err_t err;
    memset(&err, 0, sizeof(err));
    int rc = jparse(&doc, (const char *)data, size, &err);
    if (rc != 0 && rc != -1)
        fail("jparse returned something other than 0 or -1", NULL);
    if (want && rc != 0)
        fail("jparse rejects what jansson accepts", err.text);
    if (!want && rc == 0)
        fail("jparse accepts what jansson rejects", jerr.text);
    if (rc == 0) {
        if (!doc.root)
            fail("jparse succeeded without a value", NULL);
        if (!same(doc.root, want))
            fail("jparse and jansson parse different values", NULL);
    } else {
        if (doc.root)
            fail("jparse failed but left a value", NULL);
        if (err.line < 1 || err.column < 0 || err.pos > size || err.text[0] == '\0' ||
            !memchr(err.text, '\0', sizeof(err.text)))
            fail("an error without a position or a reason", err.text);
        if (fuzz_check_utf8() && !fuzz_utf8_valid(err.text, strlen(err.text)))
            fail("an error reason that is not valid UTF-8", NULL);
    }
    jparse_free(&doc);
    json_decref(want);
    return 0;
}
