/* test_jsonw.c -- the JSON writer: escaping, commas, numbers, and random
 * documents checked by parsing them back with jansson. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "time/rfc3339.h"
#include "json/jsonw.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rng_state = 0x853c49e6748fea9bULL;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Asserts the writer holds exactly want (and the NUL after it). */
static void expect(const jsonw_t *w, const char *want)
{
    if (w->len != strlen(want) || memcmp(w->buf, want, w->len) != 0 || w->buf[w->len] != '\0')
        fail_msg("got \"%.*s\", want \"%s\"", (int)w->len, w->buf, want);
}

/* The string s[0..len) written as a value. */
static void expect_str(const char *s, size_t len, const char *want)
{
    jsonw_t w;
    jsonw_init(&w, 0);
    jsonw_str(&w, s, len);
    expect(&w, want);
    jsonw_free(&w);
}

static void test_escape_control_bytes(void **state)
{
    (void)state;
    static const char *named[32] = {['\b'] = "\"\\b\"", ['\t'] = "\"\\t\"", ['\n'] = "\"\\n\"",
                                    ['\f'] = "\"\\f\"", ['\r'] = "\"\\r\""};
    for (unsigned c = 0; c < 0x20; c++) {
        char want[16];
        if (named[c])
            strcpy(want, named[c]);
        else
            snprintf(want, sizeof want, "\"\\u%04x\"", c);
        char in = (char)c;
        expect_str(&in, 1, want);
    }
    expect_str("\x7f", 1, "\"\x7f\"");
    expect_str(" ", 1, "\" \"");
}

static const struct {
    const char *in;
    size_t len;
    const char *want;
} strings[] = {
    {"", 0, "\"\""},
    {"plain", 5, "\"plain\""},
    {"\"", 1, "\"\\\"\""},
    {"\\", 1, "\"\\\\\""},
    {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
    {"\\\"\\\"", 4, "\"\\\\\\\"\\\\\\\"\""},
    {"/", 1, "\"/\""},
    {"a\0b", 3, "\"a\\u0000b\""},
    {"\0\0", 2, "\"\\u0000\\u0000\""},
    {"line1\nline2\r\n", 13, "\"line1\\nline2\\r\\n\""},
    {"tab\there", 8, "\"tab\\there\""},
    {"\x1b[0m", 4, "\"\\u001b[0m\""},
    {"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15,
     "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\""},
    {"\xe2\x80\xa8", 3, "\"\xe2\x80\xa8\""}, /* U+2028 passes through */
    {"<>&'", 4, "\"<>&'\""},
};

static void test_escape_strings(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(strings); i++)
        expect_str(strings[i].in, strings[i].len, strings[i].want);
}

/* A long string with escapes scattered through it, past several growths
 * of a tiny initial buffer. */
static void test_escape_long(void **state)
{
    (void)state;
    size_t n = 100000;
    char *in = malloc(n);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)(i % 97 == 0 ? '\n' : i % 89 == 0 ? '"' : 'a' + (char)(i % 26));
    jsonw_t w;
    jsonw_init(&w, 1);
    jsonw_str(&w, in, n);
    size_t k = 1;
    assert_int_equal(w.buf[0], '"');
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\n' || in[i] == '"') {
            assert_int_equal(w.buf[k++], '\\');
            assert_int_equal(w.buf[k++], in[i] == '\n' ? 'n' : '"');
        } else {
            assert_int_equal(w.buf[k++], in[i]);
        }
    }
    assert_int_equal(w.buf[k++], '"');
    assert_int_equal(k, w.len);
    jsonw_free(&w);
    free(in);
}

/* The escaping rule, one byte at a time, as the header states it. */
static size_t reference_escape(const unsigned char *s, size_t len, char *out)
{
    size_t k = 0;
    out[k++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        const char *named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : NULL;
        if (named)
            k += (size_t)sprintf(out + k, "%s", named);
        else if (c < 0x20)
            k += (size_t)sprintf(out + k, "\\u%04x", c);
        else
            out[k++] = (char)c;
    }
    out[k++] = '"';
    out[k] = '\0';
    return k;
}

static void expect_reference(const unsigned char *s, size_t len)
{
    char want[6 * 64 + 3];
    assert_true(len <= 64);
    reference_escape(s, len, want);
    expect_str((const char *)s, len, want);
}

/* Every byte value at every offset of a run longer than the writer's
 * eight-byte stride, among plain, high and near-miss neighbours. */
static void test_escape_every_byte_every_offset(void **state)
{
    (void)state;
    static const unsigned char fillers[] = {'x', 0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff};
    for (size_t f = 0; f < ARRAY_LEN(fillers); f++)
        for (unsigned b = 0; b < 256; b++)
            for (size_t pos = 0; pos < 24; pos++) {
                unsigned char s[24];
                memset(s, fillers[f], sizeof s);
                s[pos] = (unsigned char)b;
                expect_reference(s, sizeof s);
                expect_reference(s + pos % 8, sizeof s - pos % 8); /* other alignments */
            }
}

/* Random bytes (not necessarily UTF-8: the writer copies them as given). */
static void test_escape_random_bytes(void **state)
{
    (void)state;
    for (int i = 0; i < 100000; i++) {
        unsigned char s[64];
        size_t len = (size_t)(rng() % (sizeof s + 1));
        unsigned mask = rng() % 2 ? 0xff : 0x7f;
        for (size_t k = 0; k < len; k++)
            s[k] = (unsigned char)(rng() % 8 ? 0x20 + rng() % 0x60 : rng()) & (unsigned char)mask;
        expect_reference(s, len);
    }
}

static void test_escape_into(void **state)
{
    (void)state;
    jsonw_t w;
    jsonw_init(&w, 4);
    jsonw_escape_into(&w, "say \"hi\"\n", 9);
    expect(&w, "say \\\"hi\\\"\\n");
    jsonw_free(&w);
}

static void test_keys_escaped(void **state)
{
    (void)state;
    jsonw_t w;
    jsonw_init(&w, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "a\"b\n");
    jsonw_int(&w, 1);
    jsonw_obj_end(&w);
    expect(&w, "{\"a\\\"b\\n\":1}");
    jsonw_free(&w);
}

static void test_commas_nested(void **state)
{
    (void)state;
    jsonw_t w;
    jsonw_init(&w, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "a");
    jsonw_arr_begin(&w);
    jsonw_arr_end(&w);
    jsonw_key(&w, "b");
    jsonw_obj_begin(&w);
    jsonw_obj_end(&w);
    jsonw_key(&w, "c");
    jsonw_arr_begin(&w);
    jsonw_int(&w, 1);
    jsonw_arr_begin(&w);
    jsonw_int(&w, 2);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "d");
    jsonw_null(&w);
    jsonw_key(&w, "e");
    jsonw_bool(&w, 1);
    jsonw_obj_end(&w);
    jsonw_arr_end(&w);
    jsonw_bool(&w, 0);
    jsonw_arr_begin(&w);
    jsonw_arr_end(&w);
    jsonw_cstr(&w, "x");
    jsonw_cstr(&w, NULL);
    jsonw_arr_end(&w);
    jsonw_key(&w, "f");
    jsonw_raw(&w, "{\"r\":[1,2]}", 11);
    jsonw_key(&w, "g");
    jsonw_uint(&w, 7);
    jsonw_obj_end(&w);
    expect(&w, "{\"a\":[],\"b\":{},\"c\":[1,[2,{\"d\":null,\"e\":true}],false,[],\"x\",null],"
               "\"f\":{\"r\":[1,2]},\"g\":7}");
    assert_int_equal(w.depth, 0);
    jsonw_free(&w);
}

/* Top-level scalars, and the writer reused after reset. */
static void test_top_level_and_reset(void **state)
{
    (void)state;
    jsonw_t w;
    jsonw_init(&w, 0);
    jsonw_int(&w, 5);
    expect(&w, "5");
    jsonw_reset(&w);
    expect(&w, "");
    jsonw_arr_begin(&w);
    jsonw_int(&w, 1);
    jsonw_int(&w, 2);
    jsonw_arr_end(&w);
    expect(&w, "[1,2]");
    jsonw_reset(&w);
    jsonw_arr_begin(&w); /* no comma left over from before the reset */
    jsonw_int(&w, 3);
    jsonw_arr_end(&w);
    expect(&w, "[3]");
    /* empty pieces may come as (NULL, 0) */
    jsonw_reset(&w);
    jsonw_arr_begin(&w);
    jsonw_str(&w, NULL, 0);
    jsonw_raw(&w, "0", 1);
    jsonw_arr_end(&w);
    jsonw_escape_into(&w, NULL, 0);
    expect(&w, "[\"\",0]");
    jsonw_free(&w);
    jsonw_free(NULL);
}

/* The full depth works and each level keeps its own comma bit. */
static void test_max_depth(void **state)
{
    (void)state;
    jsonw_t w;
    jsonw_init(&w, 0);
    char want[JSONW_MAX_DEPTH * 6 + 8], *p = want;
    for (int d = 0; d < JSONW_MAX_DEPTH; d++) {
        jsonw_arr_begin(&w);
        jsonw_int(&w, d);
        p += sprintf(p, d + 1 < JSONW_MAX_DEPTH ? "[%d," : "[%d", d);
    }
    assert_int_equal(w.depth, JSONW_MAX_DEPTH);
    for (int d = 0; d < JSONW_MAX_DEPTH; d++) {
        jsonw_arr_end(&w);
        *p++ = ']';
    }
    *p = '\0';
    /* every level but the last had a member before its inner array */
    expect(&w, want);
    jsonw_free(&w);
}

static const struct {
    int64_t v;
    const char *want;
} ints[] = {
    {0, "0"},
    {1, "1"},
    {-1, "-1"},
    {10, "10"},
    {-10, "-10"},
    {600000000000LL, "600000000000"},
    {INT64_MAX, "9223372036854775807"},
    {INT64_MIN, "-9223372036854775808"},
    {INT64_MIN + 1, "-9223372036854775807"},
};

static void test_numbers(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(ints); i++) {
        jsonw_t w;
        jsonw_init(&w, 0);
        jsonw_int(&w, ints[i].v);
        expect(&w, ints[i].want);
        jsonw_free(&w);
    }
    jsonw_t w;
    jsonw_init(&w, 0);
    jsonw_arr_begin(&w);
    jsonw_uint(&w, 0);
    jsonw_uint(&w, UINT64_MAX);
    jsonw_bool(&w, 42);
    jsonw_arr_end(&w);
    expect(&w, "[0,18446744073709551615,true]");
    jsonw_free(&w);
}

static void test_time(void **state)
{
    (void)state;
    jsonw_t w;
    jsonw_init(&w, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "publishedAt");
    jsonw_time(&w, 1795746770263508703LL);
    jsonw_key(&w, "old");
    jsonw_time(&w, -1);
    jsonw_obj_end(&w);
    expect(&w, "{\"publishedAt\":\"2026-11-27T02:32:50.263508703Z\","
               "\"old\":\"1969-12-31T23:59:59.999999999Z\"}");
    jsonw_free(&w);
}

static void test_steal(void **state)
{
    (void)state;
    jsonw_t w;
    jsonw_init(&w, 0);
    jsonw_cstr(&w, "hello");
    size_t len = 0;
    char *s = jsonw_steal(&w, &len);
    assert_int_equal(len, 7);
    assert_string_equal(s, "\"hello\"");
    free(s);
    /* usable again after a steal, and a second steal of nothing is "" */
    jsonw_int(&w, 1);
    s = jsonw_steal(&w, &len);
    assert_string_equal(s, "1");
    free(s);
    s = jsonw_steal(&w, &len);
    assert_int_equal(len, 0);
    assert_string_equal(s, "");
    free(s);
    jsonw_free(&w);
}

/* ------------------------------------------------------------------------ */
/* Random documents, parsed back with jansson                                */
/* ------------------------------------------------------------------------ */

/* Appends one random code point as UTF-8, biased towards bytes that need
 * escaping. Surrogates are not characters, so they are skipped. */
static size_t random_char(char *p)
{
    uint32_t cp;
    switch (rng() % 8) {
    case 0: cp = (uint32_t)(rng() % 0x20); break;
    case 1: cp = "\"\\/"[rng() % 3]; break;
    case 2: cp = 0x80 + (uint32_t)(rng() % 0x780); break;
    case 3: cp = 0x800 + (uint32_t)(rng() % 0xf800); break;
    case 4: cp = 0x10000 + (uint32_t)(rng() % 0x100000); break;
    default: cp = 0x20 + (uint32_t)(rng() % 0x5f); break;
    }
    if (cp >= 0xd800 && cp <= 0xdfff)
        cp = 'x';
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (char)(0xc0 | cp >> 6);
        p[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (char)(0xe0 | cp >> 12);
        p[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        p[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    p[0] = (char)(0xf0 | cp >> 18);
    p[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    p[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    p[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static size_t random_string(char *buf, size_t max_chars, int allow_nul)
{
    size_t n = 0, chars = (size_t)(rng() % (max_chars + 1));
    for (size_t i = 0; i < chars; i++) {
        size_t k = random_char(buf + n);
        if (!allow_nul && k == 1 && buf[n] == '\0')
            buf[n] = '0';
        n += k;
    }
    buf[n] = '\0';
    return n;
}

/* Writes a random value into w and returns the jansson value it should
 * parse back to. */
static json_t *random_value(jsonw_t *w, int depth);

static json_t *random_object(jsonw_t *w, int depth)
{
    json_t *obj = json_object();
    jsonw_obj_begin(w);
    int n = (int)(rng() % 6);
    for (int i = 0; i < n; i++) {
        char key[16 * 4 + 16];
        size_t len = random_string(key, 16, 0);
        snprintf(key + len, sizeof key - len, "#%d", i); /* unique keys */
        jsonw_key(w, key);
        json_object_set_new(obj, key, random_value(w, depth + 1));
    }
    jsonw_obj_end(w);
    return obj;
}

static json_t *random_array(jsonw_t *w, int depth)
{
    json_t *arr = json_array();
    jsonw_arr_begin(w);
    int n = (int)(rng() % 6);
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, random_value(w, depth + 1));
    jsonw_arr_end(w);
    return arr;
}

static json_t *random_scalar(jsonw_t *w)
{
    char s[64 * 4 + 1];
    size_t len;
    int64_t v;
    switch (rng() % 8) {
    case 0:
        v = (int64_t)rng();
        jsonw_int(w, v);
        return json_integer(v);
    case 1:
        v = (int64_t)(rng() >> 1);
        jsonw_uint(w, (uint64_t)v);
        return json_integer(v);
    case 2:
        v = (int64_t)(rng() % 3);
        if (v == 2) {
            jsonw_null(w);
            return json_null();
        }
        jsonw_bool(w, (int)v);
        return json_boolean(v);
    case 3: {
        ntime_t t = (ntime_t)rng();
        char text[RFC3339_LEN + 1];
        rfc3339_format(t, text);
        jsonw_time(w, t);
        return json_string(text);
    }
    case 4: {
        static const char raw[] = "[true,{\"k\":-1}]";
        jsonw_raw(w, raw, sizeof raw - 1);
        return json_loads(raw, 0, NULL);
    }
    default:
        len = random_string(s, 64, 1);
        jsonw_str(w, s, len);
        return json_stringn(s, len);
    }
}

static json_t *random_value(jsonw_t *w, int depth)
{
    uint64_t r = rng() % 10;
    if (depth < JSONW_MAX_DEPTH && (r < 2 || (depth < 4 && r < 5)))
        return r % 2 ? random_object(w, depth) : random_array(w, depth);
    return random_scalar(w);
}

static void test_random_documents(void **state)
{
    (void)state;
    jsonw_t w;
    jsonw_init(&w, 16);
    for (int i = 0; i < 3000; i++) {
        jsonw_reset(&w);
        json_t *want = random_value(&w, 0);
        assert_int_equal(w.depth, 0);
        json_error_t err;
        json_t *got = json_loadb(w.buf, w.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!got)
            fail_msg("doc %d: jansson: %s at %d: %.*s", i, err.text, err.position, (int)w.len,
                     w.buf);
        if (!json_equal(got, want))
            fail_msg("doc %d differs: %.*s", i, (int)w.len, w.buf);
        json_decref(got);
        json_decref(want);
    }
    jsonw_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_control_bytes),
        cmocka_unit_test(test_escape_strings),
        cmocka_unit_test(test_escape_long),
        cmocka_unit_test(test_escape_every_byte_every_offset),
        cmocka_unit_test(test_escape_random_bytes),
        cmocka_unit_test(test_escape_into),
        cmocka_unit_test(test_keys_escaped),
        cmocka_unit_test(test_commas_nested),
        cmocka_unit_test(test_top_level_and_reset),
        cmocka_unit_test(test_max_depth),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_random_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
