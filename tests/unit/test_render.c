/* test_render.c -- the API's event shape: render_event writes fixed
 * fragments straight into the buffer, so it is checked byte for byte
 * against the same object built key by key through the generic writer, for
 * every state, with and without token, with data that needs escaping or is
 * JSON text, with deliveries, priorities and a dead-letter source, and as a
 * member of an array. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/render.h"

static uint64_t rng_state = 0x6a09e667f3bcc909ULL;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The event written the plain way, one writer call per token. */
static void reference_event(jsonw_t *w, const store_event_t *e, int with_token)
{
    static const char *const state_names[] = {"scheduled", "ready", "locked"};
    char id[ID_LEN + 1];
    id_format(e->id, id);
    jsonw_obj_begin(w);
    jsonw_key(w, "eventID");
    jsonw_str(w, id, ID_LEN);
    jsonw_key(w, "publishedAt");
    jsonw_time(w, e->published_at);
    jsonw_key(w, "data");
    if (e->data_json)
        jsonw_raw(w, e->data, e->data_len);
    else
        jsonw_str(w, e->data, e->data_len);
    jsonw_key(w, "livesUntil");
    jsonw_time(w, e->lives_until);
    jsonw_key(w, "isLocked");
    jsonw_bool(w, e->state == STORE_LOCKED);
    jsonw_key(w, "state");
    jsonw_cstr(w, state_names[e->state]);
    if (e->state == STORE_LOCKED) {
        jsonw_key(w, "lockedUntil");
        jsonw_time(w, e->locked_until);
        if (with_token) {
            char tok[TOKEN_LEN + 1];
            token_format(e->token, tok);
            jsonw_key(w, "lockToken");
            jsonw_str(w, tok, TOKEN_LEN);
        }
    }
    jsonw_key(w, "deliveries");
    jsonw_uint(w, e->deliveries);
    jsonw_key(w, "priority");
    jsonw_uint(w, e->priority);
    if (e->dead_lettered_from) {
        jsonw_key(w, "deadLetteredFrom");
        jsonw_str(w, e->dead_lettered_from, e->dead_lettered_from_len);
    }
    jsonw_obj_end(w);
}

/* A random event view with len bytes of data (in data, which the caller
 * frees) in a random state; bytes that need escaping are frequent when
 * nasty is set. Times are anything a store could hold. */
static store_event_t random_event(size_t len, int nasty, char **data)
{
    *data = malloc(len + 1);
    assert_non_null(*data);
    for (size_t i = 0; i < len; i++) {
        uint64_t r = rng();
        (*data)[i] = (char)(nasty && r % 4 == 0 ? r >> 8 : 'a' + r % 26);
    }
    store_event_t e;
    memset(&e, 0, sizeof(e));
    e.id.hi = rng();
    e.id.lo = (uint32_t)rng();
    e.state = (store_state_t)(rng() % 3);
    e.published_at = (ntime_t)(rng() >> 2); /* up to ~73 years of ns */
    e.lives_until = e.published_at + 1 + (int64_t)(rng() % (1ULL << 58));
    if (e.state == STORE_LOCKED) {
        e.locked_until = e.published_at + 1 + (int64_t)(rng() % (1ULL << 40));
        e.token = rng() | 1;
    }
    e.data = *data;
    e.data_len = (uint32_t)len;
    e.deliveries = (uint32_t)(rng() % 4 == 0 ? rng() % 0x1000000 : rng() % 3);
    e.priority = (uint8_t)(rng() % 10);
    if (rng() % 4 == 0) { /* a dead letter from a channel named by a piece of the data */
        e.dead_lettered_from = *data;
        e.dead_lettered_from_len = (uint32_t)(len < 200 ? len : 200);
    }
    if (rng() % 4 == 0 && !nasty) { /* JSON text: a number of len digits */
        memset(*data, '7', len);
        if (len == 0) {
            e.data = "0";
            e.data_len = 1;
        }
        e.data_json = 1;
    }
    return e;
}

static void expect_same(const jsonw_t *got, const jsonw_t *want)
{
    if (got->len != want->len || memcmp(got->buf, want->buf, got->len) != 0 ||
        got->buf[got->len] != '\0')
        fail_msg("got  %.*s\nwant %.*s", (int)got->len, got->buf, (int)want->len, want->buf);
}

static void test_event_matches_reference(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 7, 8, 9, 16, 100, 1000, 70000};
    for (int i = 0; i < 20000; i++) {
        size_t len = lens[i % (sizeof lens / sizeof lens[0])];
        if (len > 1000 && i % 100 >= 9)
            len = 16; /* a few large ones are enough */
        char *data;
        store_event_t e = random_event(len, i % 2, &data);
        int with_token = (int)(rng() % 2);
        jsonw_t got, want;
        jsonw_init(&got, i % 3 ? 0 : 1); /* a tiny buffer grows on the way */
        jsonw_init(&want, 0);
        render_event(&got, &e, with_token);
        reference_event(&want, &e, with_token);
        expect_same(&got, &want);
        jsonw_free(&got);
        jsonw_free(&want);
        free(data);
    }
}

/* In a list the writer's comma logic and the fragments meet. */
static void test_events_in_array(void **state)
{
    (void)state;
    jsonw_t got, want;
    jsonw_init(&got, 0);
    jsonw_init(&want, 0);
    jsonw_arr_begin(&got);
    jsonw_arr_begin(&want);
    for (int i = 0; i < 500; i++) {
        char *data;
        store_event_t e = random_event(rng() % 40, 1, &data);
        render_event(&got, &e, 1);
        reference_event(&want, &e, 1);
        free(data);
    }
    jsonw_arr_end(&got);
    jsonw_arr_end(&want);
    expect_same(&got, &want);
    jsonw_free(&got);
    jsonw_free(&want);
}

static void test_event_known(void **state)
{
    (void)state;
    eid_t id = {0x0123456789abcdefULL, 0x01234567};
    store_event_t e = {.id = id, .state = STORE_LOCKED, .published_at = 1795746770263508703LL,
                       .lives_until = 1795750370263508703LL, .locked_until = 1795746800000000000LL,
                       .token = 0xff, .data = "a\"\n\x01", .data_len = 4, .deliveries = 3, .priority = 9,
                       .dead_lettered_from = "s\xc3\xa9\"q", .dead_lettered_from_len = 5};
    jsonw_t w;
    jsonw_init(&w, 0);
    render_event(&w, &e, 1);
    const char *want = "{\"eventID\":\"04hkaps9lf6uu0938ljg\","
                       "\"publishedAt\":\"2026-11-27T02:32:50.263508703Z\","
                       "\"data\":\"a\\\"\\n\\u0001\","
                       "\"livesUntil\":\"2026-11-27T03:32:50.263508703Z\","
                       "\"isLocked\":true,\"state\":\"locked\","
                       "\"lockedUntil\":\"2026-11-27T02:33:20.000000000Z\","
                       "\"lockToken\":\"00000000000000ff\","
                       "\"deliveries\":3,\"priority\":9,\"deadLetteredFrom\":\"s\u00e9\\\"q\"}";
    if (w.len != strlen(want) || memcmp(w.buf, want, w.len) != 0)
        fail_msg("got  %.*s\nwant %s", (int)w.len, w.buf, want);
    jsonw_free(&w);
}

/* The Location of a published event: the channel segment as sent. */
static void test_event_path(void **state)
{
    (void)state;
    eid_t id = {0x0123456789abcdefULL, 0x01234567};
    char out[RENDER_EVENT_PATH_LEN(9) + 1];
    memset(out, '#', sizeof out);
    assert_int_equal(render_event_path(out, "a%2Fb%20c", 9, id), RENDER_EVENT_PATH_LEN(9));
    assert_int_equal(RENDER_EVENT_PATH_LEN(9), 38);
    assert_memory_equal(out, "/a%2Fb%20c/events/04hkaps9lf6uu0938ljg#", 39);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_matches_reference),
        cmocka_unit_test(test_events_in_array),
        cmocka_unit_test(test_event_known),
        cmocka_unit_test(test_event_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
