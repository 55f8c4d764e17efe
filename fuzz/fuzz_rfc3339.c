/*
 * fuzz_rfc3339.c -- libFuzzer target for rfc3339_parse and rfc3339_format.
 *
 * Checks, besides ASan/UBSan:
 *   - a string that parses formats to RFC3339_LEN bytes that parse back to
 *     the same instant and format to the same string;
 *   - any ntime_t (the first 8 input bytes) formats to a string that parses
 *     back to it: the format covers the whole ntime_t range and the parser
 *     accepts exactly that range (years 1677-2262);
 *   - the error buffer stays within errlen (exact-size heap buffer), is a
 *     non-empty sentence (valid UTF-8 when the input is), and *out is
 *     untouched on failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/time/rfc3339.h"
#include "fuzz_util.h"

#define UNTOUCHED INT64_C(0x5a5a5a5a5a5a5a5a)

static void fail(const char *what, const char *s, size_t n)
{
    fprintf(stderr, "fuzz_rfc3339: %s: \"%.*s\"\n", what, (int)n, s);
    abort();
}

static int parse(const char *s, size_t n, ntime_t *t)
{
    size_t errlen = 160;
    char *err = malloc(errlen);
    memset(err, 0x7f, errlen);
    *t = UNTOUCHED;
    int rc = rfc3339_parse(s, n, t, err, errlen);
    if (rc != 0 && rc != -1)
        fail("returned neither 0 nor -1", s, n);
    if (rc != 0 && (*t != UNTOUCHED || !memchr(err, '\0', errlen) || err[0] == '\0'))
        fail("failure wrote *out or left no error sentence", s, n);
    if (rc != 0 && fuzz_check_utf8() && fuzz_utf8_valid(s, n) && !fuzz_utf8_valid(err, strlen(err)))
        fail("the error sentence is not valid UTF-8", s, n);
    free(err);
    return rc;
}

/* format(t) must be fixed-width and parse back to t. */
static void round_trip(ntime_t t, const char *from, size_t from_len)
{
    char out[RFC3339_LEN + 1], again[RFC3339_LEN + 1];
    memset(out, 0x7f, sizeof(out));
    if (rfc3339_format(t, out) != RFC3339_LEN || strlen(out) != RFC3339_LEN)
        fail("format is not RFC3339_LEN bytes", from, from_len);
    ntime_t back;
    if (parse(out, RFC3339_LEN, &back) != 0 || back != t) {
        fprintf(stderr, "fuzz_rfc3339: t=%lld formats to %s\n", (long long)t, out);
        fail("format does not parse back to the same instant", from, from_len);
    }
    rfc3339_format(back, again);
    if (strcmp(out, again) != 0)
        fail("format -> parse -> format changed the string", from, from_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ntime_t t;
    if (parse((const char *)data, size, &t) == 0)
        round_trip(t, (const char *)data, size);
    if (size >= sizeof(ntime_t)) {
        memcpy(&t, data, sizeof(t));
        round_trip(t, (const char *)data, size);
    }
    return 0;
}
