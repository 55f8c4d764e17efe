/* test_router.c -- decoding and checking channel and job names from a path
 * segment: the plain-ASCII shortcut and the full decoder agree. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http/router.h"

static int decode(const char *seg, size_t len, char *out, size_t *out_len)
{
    char err[128] = "";
    int rc = router_decode_name(h2o_iovec_init(seg, len), out, out_len, err, sizeof err);
    if (rc != 0)
        assert_true(strlen(err) > 0);
    return rc;
}

static void expect_name(const char *seg, const char *want, size_t want_len)
{
    char out[HTTP_NAME_MAX + 1];
    size_t n = 0;
    assert_int_equal(decode(seg, strlen(seg), out, &n), 0);
    assert_int_equal(n, want_len);
    assert_memory_equal(out, want, want_len);
    assert_int_equal(out[n], '\0');
}

static void expect_bad(const char *seg, size_t len)
{
    char out[HTTP_NAME_MAX + 1];
    size_t n = 12345;
    assert_int_equal(decode(seg, len, out, &n), -1);
    assert_int_equal(n, 12345); /* untouched on failure */
}

static void test_plain_and_encoded_agree(void **state)
{
    (void)state;
    expect_name("bench", "bench", 5);
    expect_name("%62ench", "bench", 5);
    expect_name("a b~!", "a b~!", 5);
    expect_name("a%20b", "a b", 3);
    expect_name("%C3%A5sa", "\xc3\xa5sa", 4);
    expect_name("\xc3\xa5sa", "\xc3\xa5sa", 4);
}

static void test_rejects(void **state)
{
    (void)state;
    expect_bad("", 0);
    expect_bad("a\x7f", 2);
    expect_bad("a\x1f", 2);
    expect_bad("a%2Fb", 5);   /* an encoded '/' */
    expect_bad("a%zz", 4);
    expect_bad("a%2", 3);
    expect_bad("a%00b", 5);
    expect_bad("\xc3", 1);     /* a cut UTF-8 sequence */
    expect_bad("\xc2\x85", 2); /* a C1 control */
}

static void test_length_limit(void **state)
{
    (void)state;
    char seg[HTTP_NAME_MAX + 2];
    memset(seg, 'x', sizeof seg);
    char out[HTTP_NAME_MAX + 1];
    size_t n = 0;
    assert_int_equal(decode(seg, HTTP_NAME_MAX, out, &n), 0);
    assert_int_equal(n, HTTP_NAME_MAX);
    expect_bad(seg, HTTP_NAME_MAX + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_encoded_agree),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_length_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
