/*
 * fuzz_duration.c -- libFuzzer target for duration_parse (Go durations).
 *
 * Checks, besides ASan/UBSan: the error buffer is written within errlen
 * (each call gets a heap buffer of exactly errlen bytes, so ASan sees an
 * overrun) and is a non-empty sentence, valid UTF-8 when the input is (it
 * ends up in a JSON error body); *out is untouched on failure; a
 * small errlen does not change the result; and signs are symmetric: an
 * unsigned s and "+" s both fail or both parse to the same v (s may take
 * the fast path, "+" s never does), and then "-" s parses to -v.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/time/duration.h"
#include "fuzz_util.h"

#define UNTOUCHED INT64_C(0x5a5a5a5a5a5a5a5a)

static void fail(const char *what, const uint8_t *s, size_t n)
{
    fprintf(stderr, "fuzz_duration: %s: \"%.*s\"\n", what, (int)n, (const char *)s);
    abort();
}

/* Parses with an exact-size error buffer; returns the parse result. */
static int parse(const uint8_t *s, size_t n, size_t errlen, int64_t *v)
{
    char *err = malloc(errlen);
    memset(err, 0x7f, errlen);
    *v = UNTOUCHED;
    int rc = duration_parse((const char *)s, n, v, err, errlen);
    if (rc != 0 && rc != -1)
        fail("returned neither 0 nor -1", s, n);
    if (rc != 0) {
        if (*v != UNTOUCHED)
            fail("wrote *out on failure", s, n);
        if (!memchr(err, '\0', errlen) || (errlen > 1 && err[0] == '\0'))
            fail("error is not a non-empty NUL-terminated sentence", s, n);
        if (fuzz_check_utf8() && fuzz_utf8_valid((const char *)s, n) && !fuzz_utf8_valid(err, strlen(err)))
            fail("the error sentence is not valid UTF-8", s, n);
    }
    free(err);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t v, v2;
    int rc = parse(data, size, 200, &v);
    if (parse(data, size, 1, &v2) != rc || (rc == 0 && v2 != v))
        fail("the result depends on the error buffer's size", data, size);
    if (size == 0 || data[0] == '-' || data[0] == '+')
        return 0;
    uint8_t *signed_s = malloc(size + 1);
    memcpy(signed_s + 1, data, size);
    /* "+" s takes the general path, s maybe the fast one: they agree. */
    signed_s[0] = '+';
    if (parse(signed_s, size + 1, 200, &v2) != rc || (rc == 0 && v2 != v))
        fail("\"+\" s and s disagree", data, size);
    signed_s[0] = '-';
    if (rc == 0 && (parse(signed_s, size + 1, 200, &v2) != 0 || v2 != -v))
        fail("\"-\" s does not parse to -v", data, size);
    free(signed_s);
    return 0;
}
