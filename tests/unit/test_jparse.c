/* test_jparse.c -- the request JSON parser: accepted and rejected inputs
 * (each also checked against jansson, whose behaviour jparse keeps), values,
 * error positions, depth, duplicate keys, the arena, and the reqjson
 * getters on top. fuzz/fuzz_jparse.c does the same comparison on random
 * input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/jparse.h"
#include "http/reqjson.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit) lit, sizeof(lit) - 1

/* jansson 2.14 as the request path called it before jparse. */
static int jansson_accepts(const char *s, size_t len)
{
    json_error_t err;
    json_t *v = json_loadb(s, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    json_decref(v);
    return v != NULL;
}

static const struct {
    const char *in;
    size_t len;
} accepted[] = {
    {S("{}")},
    {S("[]")},
    {S(" \t\r\n{ \"a\" : [ 1 , -2 , 3.5 , true , false , null ] } \r\n")},
    {S("\"\"")},
    {S("0")},
    {S("-0")},
    {S("0.0")},
    {S("-0.0e-0")},
    {S("1E+2")},
    {S("1e-400")},                  /* underflow is fine */
    {S("-1.7976931348623157e308")}, /* -DBL_MAX */
    {S("9223372036854775807")},
    {S("-9223372036854775808")},
    {S("true")},
    {S("null")},
    {S("\"\\u0000\"")},
    {S("\"\\ud83d\\ude00 \\u00e9 \\u20AC \\/\\b\\f\\n\\r\\t\\\"\\\\\"")},
    {S("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\x7f\"")},
    {S("{\"k\":1,\"k\":2}")},
    {S("[[[[[]]]]]")},
    {S("1\0")},      /* one NUL after a number or literal: jansson skips it */
    {S("[true\0,null\0]")},
};

static const struct {
    const char *in;
    size_t len;
    const char *reason; /* a part of the error text */
    int line, column;   /* 0: not checked */
} rejected[] = {
    {S(""), "unexpected end of input; expected a value", 1, 0},
    {S("  \n "), "unexpected end of input", 2, 1},
    {S("{\"data\":"), "unexpected end of input; expected a value", 1, 8},
    {S("{\"data\":\"x\"} x"), "unexpected 'x' after the value", 1, 14},
    {S("{}{}"), "unexpected '{' after the value", 1, 3},
    {S("{\"a\":1,}"), "expected a string key", 1, 8},
    {S("{\"a\" 1}"), "expected ':'", 1, 6},
    {S("{\"a\":1 \"b\":2}"), "expected ',' or '}'", 1, 8},
    {S("[1 2]"), "expected ',' or ']'", 1, 4},
    {S("[1,]"), "unexpected ']'; expected a value", 1, 4},
    {S("{'a':1}"), "expected a string key or '}'", 1, 2},
    {S("{a:1}"), "expected a string key or '}'", 1, 2},
    {S("nul"), "invalid literal", 1, 1},
    {S("truex"), "invalid literal", 1, 1},
    {S("1\0\0"), "after the value", 0, 0},
    {S("01"), "leading zero", 0, 0},
    {S("-"), "invalid number", 0, 0},
    {S("-x"), "invalid number", 0, 0},
    {S("1."), "a digit must follow '.'", 0, 0},
    {S(".5"), "expected a value", 0, 0},
    {S("1e+"), "a digit must follow the exponent", 0, 0},
    {S("+1"), "expected a value", 0, 0},
    {S("9223372036854775808"), "too big integer", 0, 0},
    {S("-9223372036854775809"), "too big negative integer", 0, 0},
    {S("123456789012345678901234567890"), "too big integer", 0, 0},
    {S("1e309"), "real number overflow", 0, 0},
    {S("\"abc"), "unexpected end of input in a string", 0, 0},
    {S("\"a\nb\""), "unexpected newline in a string", 0, 0},
    {S("\"a\x01\""), "control character 0x01", 1, 3},
    {S("\"a\0\""), "control character 0x00", 0, 0},
    {S("\"\\q\""), "invalid escape", 1, 2},
    {S("\"\\u12g4\""), "invalid \\u escape", 0, 0},
    {S("\"\\u123\""), "invalid \\u escape", 0, 0},
    {S("\"\\ud800\""), "lone surrogate \\uD800", 0, 0},
    {S("\"\\ud800x\""), "lone surrogate", 0, 0},
    {S("\"\\udc00\""), "lone surrogate \\uDC00", 0, 0},
    {S("\"\\ud800\\u0041\""), "invalid surrogate pair \\uD800\\u0041", 0, 0},
    {S("\"\\ud800\\n\""), "lone surrogate", 0, 0},
    {S("{\"a\\u0000b\":1}"), "NUL byte", 1, 2},
    {S("\"\xff\""), "invalid UTF-8 byte 0xff", 1, 2},
    {S("\"\xc0\xaf\""), "invalid UTF-8", 0, 0},     /* overlong '/' */
    {S("\"\xe0\x80\xaf\""), "invalid UTF-8", 0, 0}, /* overlong, 3 bytes */
    {S("\"\xf0\x8f\xbf\xbf\""), "invalid UTF-8", 0, 0},
    {S("\"\xed\xa0\x80\""), "invalid UTF-8", 0, 0},     /* U+D800 */
    {S("\"\xf4\x90\x80\x80\""), "invalid UTF-8", 0, 0}, /* past U+10FFFF */
    {S("\"\xc3\""), "invalid UTF-8", 0, 0},             /* cut short */
    {S("\"\xc3\x28\""), "invalid UTF-8", 0, 0},
    {S("\xef\xbb\xbf{}"), "unexpected byte 0xef", 1, 1}, /* no BOM */
    {S("{\n  \"a\": \xc3\xa9x\n}"), "unexpected byte 0xc3", 2, 8},
};

static void test_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(accepted); i++) {
        jdoc_t d;
        jparse_err_t err;
        int rc = jparse(&d, accepted[i].in, accepted[i].len, &err);
        if (rc != 0)
            fail_msg("case %zu rejected: %s", i, err.text);
        assert_non_null(d.root);
        assert_true(jansson_accepts(accepted[i].in, accepted[i].len));
        jparse_free(&d);
        assert_null(d.root);
        jparse_free(&d); /* twice is fine */
    }
}

static void test_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(rejected); i++) {
        jdoc_t d;
        jparse_err_t err;
        int rc = jparse(&d, rejected[i].in, rejected[i].len, &err);
        if (rc != -1)
            fail_msg("case %zu accepted", i);
        assert_null(d.root);
        if (!strstr(err.text, rejected[i].reason))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err.text, rejected[i].reason);
        if (rejected[i].line && (err.line != rejected[i].line || err.column != rejected[i].column))
            fail_msg("case %zu: line %d column %d, want %d %d", i, err.line, err.column,
                     rejected[i].line, rejected[i].column);
        assert_true(err.pos <= rejected[i].len);
        assert_false(jansson_accepts(rejected[i].in, rejected[i].len));
        jparse_free(&d);
    }
}

static jval_t *parse_ok(jdoc_t *d, const char *s, size_t len)
{
    jparse_err_t err;
    if (jparse(d, s, len, &err) != 0)
        fail_msg("rejected: %s", err.text);
    return d->root;
}

static void test_values(void **state)
{
    (void)state;
    jdoc_t d;
    static const char in[] = "{\"s\":\"plain\",\"e\":\"a\\u0000\\u00e9\\ud83d\\ude00\\n\","
                             "\"i\":-9223372036854775808,\"r\":-2.5e-3,\"z\":-0.0,\"t\":true,"
                             "\"f\":false,\"n\":null,\"a\":[1,[],{}],\"o\":{\"x\":1}}";
    jval_t *o = parse_ok(&d, in, sizeof(in) - 1);
    assert_int_equal(o->type, JV_OBJECT);
    assert_int_equal(o->u.kids.n, 10);
    const jval_t *v = jparse_get(o, "s", 1);
    assert_int_equal(v->type, JV_STRING);
    assert_int_equal(v->u.str.len, 5);
    assert_memory_equal(v->u.str.s, "plain", 5);
    assert_true(v->u.str.s > in && v->u.str.s < in + sizeof(in)); /* not copied */
    v = jparse_get(o, "e", 1);
    assert_int_equal(v->u.str.len, 1 + 1 + 2 + 4 + 1);
    assert_memory_equal(v->u.str.s, "a\0\xc3\xa9\xf0\x9f\x98\x80\n", 9);
    v = jparse_get(o, "i", 1);
    assert_int_equal(v->type, JV_INT);
    assert_true(v->u.i == INT64_MIN);
    v = jparse_get(o, "r", 1);
    assert_int_equal(v->type, JV_REAL);
    assert_true(v->u.d == -2.5e-3);
    v = jparse_get(o, "z", 1);
    assert_int_equal(v->type, JV_REAL); /* a fraction makes a real, even .0 */
    assert_true(v->u.d == 0 && 1 / v->u.d < 0);
    assert_int_equal(jparse_get(o, "t", 1)->type, JV_TRUE);
    assert_int_equal(jparse_get(o, "f", 1)->type, JV_FALSE);
    assert_int_equal(jparse_get(o, "n", 1)->type, JV_NULL);
    v = jparse_get(o, "a", 1);
    assert_int_equal(v->type, JV_ARRAY);
    assert_int_equal(v->u.kids.n, 3);
    assert_int_equal(v->u.kids.first->u.i, 1);
    assert_null(v->u.kids.first->key);
    assert_int_equal(v->u.kids.first->next->type, JV_ARRAY);
    assert_int_equal(v->u.kids.first->next->next->type, JV_OBJECT);
    assert_null(v->u.kids.first->next->next->next);
    assert_null(jparse_get(v, "x", 1)); /* not an object */
    assert_int_equal(jparse_get(jparse_get(o, "o", 1), "x", 1)->u.i, 1);
    assert_null(jparse_get(o, "missing", 7));
    assert_null(jparse_get(o, "s\0", 2));
    jparse_free(&d);
}

/* Each value knows its text: what event data of any JSON type echoes. */
static void test_raw_spans(void **state)
{
    (void)state;
    static const char text[] = " {\"data\" : {\"b\":[1.50, true,\"x\\u0000\"] , \"a\":-0e5} ,\"n\":null}\t";
    jdoc_t d;
    jval_t *root = parse_ok(&d, text, sizeof(text) - 1);
    assert_int_equal(root->raw_len, sizeof(text) - 3); /* without the outer whitespace */
    assert_memory_equal(root->raw, text + 1, root->raw_len);
    const jval_t *data = jparse_get(root, "data", 4);
    static const char want[] = "{\"b\":[1.50, true,\"x\\u0000\"] , \"a\":-0e5}";
    assert_int_equal(data->raw_len, sizeof(want) - 1);
    assert_memory_equal(data->raw, want, data->raw_len);
    const jval_t *arr = jparse_get(data, "b", 1);
    assert_int_equal(arr->u.kids.first->raw_len, 4);
    assert_memory_equal(arr->u.kids.first->raw, "1.50", 4);
    assert_int_equal(arr->u.kids.first->next->next->raw_len, 9);
    assert_memory_equal(arr->u.kids.first->next->next->raw, "\"x\\u0000\"", 9);
    const jval_t *n = jparse_get(root, "n", 1);
    assert_memory_equal(n->raw, "null", n->raw_len);
    jparse_free(&d);
}

static void test_duplicates_last_wins(void **state)
{
    (void)state;
    jdoc_t d;
    jval_t *o = parse_ok(&d, S("{\"k\":1,\"x\":0,\"k\":\"two\",\"\\u006b\":3}"));
    assert_int_equal(o->u.kids.n, 4);
    const jval_t *v = jparse_get(o, "k", 1);
    assert_int_equal(v->type, JV_INT);
    assert_int_equal(v->u.i, 3);
    jparse_free(&d);
}

/* Builds n '[' + inner + n ']' and parses it. */
static int nested(size_t n, const char *inner)
{
    size_t len = 2 * n + strlen(inner);
    char *s = malloc(len);
    memset(s, '[', n);
    memcpy(s + n, inner, strlen(inner));
    memset(s + n + strlen(inner), ']', n);
    jdoc_t d;
    jparse_err_t err;
    int rc = jparse(&d, s, len, &err);
    assert_int_equal(rc == 0, jansson_accepts(s, len));
    if (rc != 0)
        assert_non_null(strstr(err.text, "nested deeper than 2048"));
    jparse_free(&d);
    free(s);
    return rc;
}

static void test_depth(void **state)
{
    (void)state;
    assert_int_equal(nested(JPARSE_MAX_DEPTH, ""), 0);
    assert_int_equal(nested(JPARSE_MAX_DEPTH - 1, "1"), 0);
    assert_int_equal(nested(JPARSE_MAX_DEPTH, "1"), -1);
    assert_int_equal(nested(JPARSE_MAX_DEPTH + 1, ""), -1);
    assert_int_equal(nested(100000, ""), -1);
}

/* A large batch grows the arena past the jdoc_t: every element is there
 * and in order, and escaped strings are decoded in the malloc'd part. */
static void test_large_batch(void **state)
{
    (void)state;
    enum { N = 5000 };
    size_t cap = N * 64 + 2, len = 0;
    char *s = malloc(cap);
    s[len++] = '[';
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s{\"data\":\"%05d\\n\",\"n\":%d}",
                                i ? "," : "", i, i);
    s[len++] = ']';
    jdoc_t d;
    jval_t *a = parse_ok(&d, s, len);
    assert_int_equal(a->u.kids.n, N);
    assert_non_null(d.chunks);
    int i = 0;
    for (const jval_t *el = a->u.kids.first; el; el = el->next, i++) {
        char want[16];
        snprintf(want, sizeof(want), "%05d\n", i);
        const jval_t *data = jparse_get(el, "data", 4);
        assert_int_equal(data->u.str.len, 6);
        assert_memory_equal(data->u.str.s, want, 6);
        assert_int_equal(jparse_get(el, "n", 1)->u.i, i);
    }
    assert_int_equal(i, N);
    jparse_free(&d);
    free(s);
}

/* A body of many tiny values needs far more arena than its length. */
static void test_dense_values(void **state)
{
    (void)state;
    enum { N = 200000 };
    char *s = malloc(2 * N + 1);
    s[0] = '[';
    for (int i = 0; i < N; i++) {
        s[1 + 2 * i] = '0';
        s[2 + 2 * i] = i + 1 < N ? ',' : ']';
    }
    jdoc_t d;
    jval_t *a = parse_ok(&d, s, 2 * N + 1);
    assert_int_equal(a->u.kids.n, N);
    jparse_free(&d);
    free(s);
}

static void test_reqjson(void **state)
{
    (void)state;
    static const char body[] = "{\"data\":\"x\\u0000y\",\"ttl\":\"1m\",\"bad\":5,\"nil\":null,"
                               "\"max\":7,\"big\":1.0,\"at\":\"2026-01-02T03:04:05Z\"}";
    jdoc_t doc;
    reqerr_t e = {0};
    assert_int_equal(reqjson_parse(body, sizeof(body) - 1, 0, 1 << 20, &doc, &e), 0);
    const jval_t *o = doc.root;
    const char *s;
    size_t len;
    assert_int_equal(reqjson_string(o, "data", &s, &len, &e), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "x\0y", 3);
    assert_int_equal(reqjson_string(o, "nil", &s, &len, &e), 0);
    assert_int_equal(reqjson_string(o, "none", &s, &len, &e), 0);
    assert_int_equal(reqjson_string(o, "bad", &s, &len, &e), -1);
    assert_string_equal(e.msg, "field \"bad\" must be a string");
    int64_t v;
    assert_int_equal(reqjson_duration(o, "ttl", 1, &v, &e), 1);
    assert_true(v == 60000000000LL);
    assert_int_equal(reqjson_int(o, "max", 1, 10, &v, &e), 1);
    assert_int_equal(v, 7);
    assert_int_equal(reqjson_int(o, "max", 8, 10, &v, &e), -1);
    assert_int_equal(reqjson_int(o, "big", 0, 10, &v, &e), -1); /* a real is not an integer */
    assert_string_equal(e.msg, "field \"big\" must be an integer from 0 to 10");
    ntime_t t;
    assert_int_equal(reqjson_time(o, "at", &t, &e), 1);
    assert_int_equal(reqjson_time(o, "data", &t, &e), -1);
    jparse_free(&doc);

    assert_int_equal(reqjson_parse("", 0, 1, 10, &doc, &e), 0);
    assert_null(doc.root);
    jparse_free(&doc);
    assert_int_equal(reqjson_parse("", 0, 0, 10, &doc, &e), -1);
    assert_int_equal(e.status, 400);
    jparse_free(&doc);
    assert_int_equal(reqjson_parse("[1,2,3]", 7, 0, 6, &doc, &e), -1);
    assert_int_equal(e.status, 413);
    jparse_free(&doc);
    assert_int_equal(reqjson_parse("{\"data\":\"x\"} x", 14, 0, 100, &doc, &e), -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.msg, "malformed JSON at line 1, column 14: unexpected 'x' after the value");
    jparse_free(&doc);
}

/* Parses body and sorts it into the fields of b; returns reqjson_fields'
 * result, with the members in f (valid until the jparse_free). */
static int fields_of(jdoc_t *doc, const char *body, const reqbody_t *b, const jval_t **f, reqerr_t *e)
{
    assert_int_equal(reqjson_parse(body, strlen(body), 0, 1 << 20, doc, e), 0);
    return reqjson_fields(doc->root, b, f, e);
}

static void test_reqjson_fields(void **state)
{
    (void)state;
    jdoc_t doc;
    reqerr_t e = {0};
    const jval_t *f[FPUB_N];
    /* any ASCII case; a later member wins; null is skipped */
    assert_int_equal(fields_of(&doc, "{\"DATA\":\"a\",\"data\":\"b\",\"Data\":null,\"TtL\":\"1m\"}",
                               &req_publish_body, f, &e), 0);
    assert_non_null(f[FPUB_DATA]);
    assert_memory_equal(f[FPUB_DATA]->u.str.s, "b", 1);
    assert_non_null(f[FPUB_TTL]);
    assert_null(f[FPUB_PUBLISH_AT]);
    assert_null(f[FPUB_PUBLISH_IN]);
    jparse_free(&doc);
    /* U+017F matches s, U+212A matches k, as in Go; other look-alikes do not */
    assert_int_equal(fields_of(&doc, "{\"publi\u017fhin\":\"1s\"}", &req_publish_body, f, &e), 0);
    assert_non_null(f[FPUB_PUBLISH_IN]);
    jparse_free(&doc);
    const jval_t *u[FUPD_N];
    assert_int_equal(fields_of(&doc, "{\"loc\u212atoken\":\"t\"}", &req_update_body, u, &e), 0);
    assert_non_null(u[FUPD_LOCK_TOKEN]);
    jparse_free(&doc);
    assert_int_equal(fields_of(&doc, "{\"d\u00e1ta\":\"x\"}", &req_publish_body, f, &e), -1);
    jparse_free(&doc);
    assert_int_equal(fields_of(&doc, "{\"data\":\"x\",\"delay\":\"1s\"}", &req_publish_body, f, &e), -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.msg, "unknown field \"delay\"; the fields accepted here are data, publishAt, "
                               "publishIn, ttl, priority, key");
    jparse_free(&doc);
    /* a body that is no object: the sentence says what the body expects */
    assert_int_equal(fields_of(&doc, "[1]", &req_acquire_body, f, &e), -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.msg, "expected a JSON object such as {\"max\":10,\"ttl\":\"1m\",\"wait\":\"20s\"}");
    jparse_free(&doc);
    assert_int_equal(fields_of(&doc, "\"x\"", &req_job_put_body, f, &e), -1);
    assert_string_equal(e.msg, "expected a JSON object with \"cronDef\"");
    jparse_free(&doc);
    /* a prefix or an extension of a name is not the name */
    assert_int_equal(fields_of(&doc, "{\"dat\":1}", &req_publish_body, f, &e), -1);
    jparse_free(&doc);
    assert_int_equal(fields_of(&doc, "{\"datas\":1}", &req_publish_body, f, &e), -1);
    jparse_free(&doc);
    /* a long name is cut in the message at a character boundary */
    char body[400] = "{\"";
    for (int i = 0; i < 100; i++)
        strcat(body, "\u00e9");
    strcat(body, "\":1}");
    const jval_t *fj[FJOB_N]; /* the job body's fields, not the publish body's */
    assert_int_equal(fields_of(&doc, body, &req_job_body, fj, &e), -1);
    assert_non_null(strstr(e.msg, "...\""));
    assert_non_null(strstr(e.msg, "name, cronDef, data, ttl"));
    jparse_free(&doc);
}

static void test_reqjson_limits(void **state)
{
    (void)state;
    jdoc_t doc;
    reqerr_t e = {0};
    static const char body[] = "{\"a\":\"876000h\",\"b\":\"876000h0.000000001s\",\"c\":\"2562047h\"}";
    assert_int_equal(reqjson_parse(body, sizeof(body) - 1, 0, 1 << 20, &doc, &e), 0);
    int64_t v;
    assert_int_equal(reqjson_duration(doc.root, "a", 1, &v, &e), 1);
    assert_true(v == REQ_DURATION_MAX_NS);
    assert_int_equal(reqjson_duration(doc.root, "b", 1, &v, &e), -1);
    assert_string_equal(e.msg, "field \"b\" must be at most 876000h (100 years)");
    assert_int_equal(reqjson_duration(doc.root, "c", 0, &v, &e), -1);
    jparse_free(&doc);
    assert_true(ntime_fits(NTIME_END - 2, 1));
    assert_false(ntime_fits(NTIME_END - 1, 1));
    assert_false(ntime_fits(INT64_MAX, REQ_DURATION_MAX_NS));
    assert_true(ntime_fits(INT64_MIN, REQ_DURATION_MAX_NS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_raw_spans),
        cmocka_unit_test(test_duplicates_last_wins),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_large_batch),
        cmocka_unit_test(test_dense_values),
        cmocka_unit_test(test_reqjson),
        cmocka_unit_test(test_reqjson_fields),
        cmocka_unit_test(test_reqjson_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
