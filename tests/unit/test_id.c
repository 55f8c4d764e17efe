/* test_id.c -- id generation, order, hashing and text form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/hex.h"
#include "base/id.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MS NTIME_NS_PER_MS

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static eid_t random_id(void)
{
    eid_t id = {rng(), (uint32_t)rng()};
    switch (rng() % 4) { /* equal parts make the comparisons interesting */
    case 0: id.hi &= 0xffff; break;
    case 1: id.lo &= 0xff; break;
    default: break;
    }
    return id;
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static void test_first_id_is_time(void **state)
{
    (void)state;
    id_gen_t g = {{0, 0}};
    ntime_t now = 1795746770263508703LL;
    eid_t id = id_gen_next(&g, now);
    uint64_t ms = (uint64_t)(now / MS);
    assert_int_equal(id.hi, ms << 16);
    assert_int_equal(id.lo, 0);
    /* same millisecond: the counter counts */
    eid_t b = id_gen_next(&g, now + 1);
    assert_int_equal(b.hi, ms << 16);
    assert_int_equal(b.lo, 1);
    /* next millisecond: back to the time */
    eid_t c = id_gen_next(&g, now + MS);
    assert_int_equal(c.hi, (ms + 1) << 16);
    assert_int_equal(c.lo, 0);
}

/* Ids increase strictly whatever the clock does. */
static void test_monotonic_under_clock_steps(void **state)
{
    (void)state;
    id_gen_t g = {{0, 0}};
    ntime_t now = 1700000000000000000LL;
    eid_t prev = id_gen_next(&g, now);
    for (int i = 0; i < 100000; i++) {
        switch (rng() % 5) {
        case 0: now -= (ntime_t)(rng() % (3600 * 1000)) * MS; break; /* steps back */
        case 1: now += (ntime_t)(rng() % 1000) * MS; break;
        case 2: now += 1; break;
        default: break; /* same instant */
        }
        eid_t id = id_gen_next(&g, now);
        assert_int_equal(id_cmp(prev, id), -1);
        assert_int_equal(id_cmp(g.last, id), 0);
        prev = id;
    }
}

/* A clock before the epoch still gives increasing ids. */
static void test_negative_clock(void **state)
{
    (void)state;
    id_gen_t g = {{0, 0}};
    eid_t a = id_gen_next(&g, -5 * MS);
    eid_t b = id_gen_next(&g, INT64_MIN);
    assert_int_equal(a.hi, 0);
    assert_int_equal(a.lo, 1);
    assert_int_equal(id_cmp(a, b), -1);
}

/* The counter carries from lo into hi. */
static void test_counter_carry(void **state)
{
    (void)state;
    id_gen_t g = {{7, UINT32_MAX}};
    eid_t id = id_gen_next(&g, 0);
    assert_int_equal(id.hi, 8);
    assert_int_equal(id.lo, 0);
}

/* After replay (observe), new ids are above everything seen, even when the
 * clock now reads earlier than when those ids were made. */
static void test_observe(void **state)
{
    (void)state;
    id_gen_t old = {{0, 0}};
    ntime_t then = 1800000000000000000LL;
    eid_t seen[100];
    for (size_t i = 0; i < ARRAY_LEN(seen); i++)
        seen[i] = id_gen_next(&old, then);

    id_gen_t g = {{0, 0}};
    for (size_t i = ARRAY_LEN(seen); i-- > 0;) /* any order */
        id_gen_observe(&g, seen[i]);
    id_gen_observe(&g, seen[3]); /* smaller than last: no effect */
    assert_int_equal(id_cmp(g.last, seen[99]), 0);

    eid_t next = id_gen_next(&g, then - 3600 * 1000 * MS);
    assert_int_equal(id_cmp(next, seen[99]), 1);
    assert_int_equal(next.hi, seen[99].hi);
    assert_int_equal(next.lo, seen[99].lo + 1);

    /* a later clock jumps ahead of observed ids */
    eid_t later = id_gen_next(&g, then + MS);
    assert_int_equal(later.hi, (uint64_t)((then + MS) / MS) << 16);
}

static void test_cmp(void **state)
{
    (void)state;
    eid_t a = {1, 0}, b = {0, UINT32_MAX}, c = {1, 1};
    assert_int_equal(id_cmp(a, b), 1);
    assert_int_equal(id_cmp(b, a), -1);
    assert_int_equal(id_cmp(a, c), -1);
    assert_int_equal(id_cmp(c, c), 0);
}

static const struct {
    eid_t id;
    const char *text;
} known[] = {
    {{0, 0}, "00000000000000000000"},
    {{0, 1}, "0000000000000000000g"},
    {{0, 2}, "00000000000000000010"},
    {{0, 31}, "000000000000000000fg"},
    {{UINT64_MAX, UINT32_MAX}, "vvvvvvvvvvvvvvvvvvvg"},
    {{1ULL << 63, 0}, "g0000000000000000000"},
};

static void test_format_known(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(known); i++) {
        char out[ID_LEN + 1];
        memset(out, '#', sizeof out);
        id_format(known[i].id, out);
        assert_string_equal(out, known[i].text);
        eid_t back = {9, 9};
        assert_int_equal(id_parse(known[i].text, ID_LEN, &back), 0);
        assert_int_equal(id_cmp(back, known[i].id), 0);
    }
}

static void test_round_trip_and_order(void **state)
{
    (void)state;
    for (int i = 0; i < 200000; i++) {
        eid_t a = random_id(), b = random_id();
        char ta[ID_LEN + 1], tb[ID_LEN + 1];
        id_format(a, ta);
        id_format(b, tb);
        assert_int_equal(strlen(ta), ID_LEN);
        for (int k = 0; k < ID_LEN; k++)
            assert_non_null(strchr("0123456789abcdefghijklmnopqrstuv", ta[k]));
        eid_t back;
        assert_int_equal(id_parse(ta, ID_LEN, &back), 0);
        assert_int_equal(id_cmp(back, a), 0);
        assert_int_equal(sign(strcmp(ta, tb)), id_cmp(a, b));
    }
}

/* Generated ids in text form sort in generation order (what listing by id
 * and clients sorting ids rely on). */
static void test_generated_text_order(void **state)
{
    (void)state;
    id_gen_t g = {{0, 0}};
    char prev[ID_LEN + 1], cur[ID_LEN + 1];
    id_format(id_gen_next(&g, 1), prev);
    for (int i = 0; i < 10000; i++) {
        id_format(id_gen_next(&g, (ntime_t)(i / 7) * MS), cur);
        assert_true(strcmp(prev, cur) < 0);
        memcpy(prev, cur, sizeof cur);
    }
}

static const struct {
    const char *text;
    size_t len;
} bad[] = {
    {"", 0},
    {"0000000000000000000", 19},
    {"000000000000000000000", 21},
    {"0000000000000000000G", 20}, /* upper case */
    {"C0000000000000000000", 20},
    {"00000000000000000w00", 20}, /* past the alphabet */
    {"00000000000000000z00", 20},
    {"0000000000-000000000", 20},
    {"0000000000 000000000", 20},
    {"000000000" "\0" "0000000000", 20}, /* embedded NUL */
    {"0000000000000000000\xc3", 20},
    {"00000000000000000001", 20}, /* padding bits set */
    {"0000000000000000000f", 20},
    {"vvvvvvvvvvvvvvvvvvvv", 20},
};

static void test_parse_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        eid_t id = {5, 6};
        if (id_parse(bad[i].text, bad[i].len, &id) != -1)
            fail_msg("accepted \"%s\"", bad[i].text);
        assert_true(id.hi == 5 && id.lo == 6);
    }
    /* every last character with nonzero padding is refused, the rest taken */
    const char *alpha = "0123456789abcdefghijklmnopqrstuv";
    for (int d = 0; d < 32; d++) {
        char t[ID_LEN + 1] = "0000000000000000000";
        t[ID_LEN - 1] = alpha[d];
        eid_t id;
        assert_int_equal(id_parse(t, ID_LEN, &id), d % 16 == 0 ? 0 : -1);
    }
}

/* Ids made in one burst spread evenly over the buckets of a small table,
 * and flipping one input bit flips about half of the output. */
/* Fixed-width hex fields: widths odd and even, one spelling per value. */
static void test_hex_fields(void **state)
{
    (void)state;
    char buf[20];
    memset(buf, 'x', sizeof(buf));
    assert_ptr_equal(hex_put(buf, 0xabcdef0123ULL, 5), buf + 5);
    assert_memory_equal(buf, "f0123x", 6); /* the low 20 bits, nothing after */
    hex_put(buf, 0xfe, 2);
    assert_memory_equal(buf, "fe", 2);
    hex_put(buf, UINT64_MAX, HEX_U64);
    assert_memory_equal(buf, "ffffffffffffffff", 16);
    uint64_t v = 7;
    assert_int_equal(hex_get("00a9f", 5, &v), 0);
    assert_true(v == 0xa9f);
    assert_int_equal(hex_get("0A9F", 4, &v), -1); /* upper case is another spelling */
    assert_int_equal(hex_get("12g4", 4, &v), -1);
    assert_int_equal(hex_get("12 4", 4, &v), -1);
    assert_true(v == 0xa9f); /* untouched by a failure */
    for (uint64_t x = 1; x; x <<= 3) {
        hex_put(buf, x, HEX_U64);
        assert_int_equal(hex_get(buf, HEX_U64, &v), 0);
        assert_true(v == x);
    }
}

static void test_hash(void **state)
{
    (void)state;
    enum { BUCKETS = 1024, N = 1 << 18 };
    static unsigned count[BUCKETS];
    id_gen_t g = {{0, 0}};
    for (int i = 0; i < N; i++)
        count[id_hash(id_gen_next(&g, 1700000000000000000LL + (i / 1000) * MS)) % BUCKETS]++;
    unsigned max = 0, min = N;
    for (int b = 0; b < BUCKETS; b++) {
        max = count[b] > max ? count[b] : max;
        min = count[b] < min ? count[b] : min;
    }
    /* mean 256, sd 16: 6 sd either way */
    assert_in_range(max, 256, 352);
    assert_in_range(min, 160, 256);

    uint64_t flips = 0, trials = 0;
    for (int i = 0; i < 2000; i++) {
        eid_t a = {rng(), (uint32_t)rng()};
        uint64_t ha = id_hash(a);
        for (int bit = 0; bit < 96; bit++) {
            eid_t b = a;
            if (bit < 64)
                b.hi ^= 1ULL << bit;
            else
                b.lo ^= 1U << (bit - 64);
            flips += (uint64_t)__builtin_popcountll(ha ^ id_hash(b));
            trials++;
        }
    }
    double avg = (double)flips / (double)trials;
    assert_true(avg > 31.0 && avg < 33.0);
    eid_t x = {1, 2};
    assert_int_equal(id_hash(x), id_hash(x));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_id_is_time),
        cmocka_unit_test(test_monotonic_under_clock_steps),
        cmocka_unit_test(test_negative_clock),
        cmocka_unit_test(test_counter_carry),
        cmocka_unit_test(test_observe),
        cmocka_unit_test(test_cmp),
        cmocka_unit_test(test_format_known),
        cmocka_unit_test(test_round_trip_and_order),
        cmocka_unit_test(test_generated_text_order),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_hex_fields),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
