/*
 * test_slab.c -- the slot pool under events, and the event store built on
 * it: index reuse, chunk boundaries, the id hash growing while it is used,
 * long and short data, leases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/core.h"
#include "core/slab.h"
#include "time/tz.h"

#define S NTIME_NS_PER_S
static const ntime_t T0 = 1790000000LL * S;

static void test_slab_indices_and_reuse(void **state)
{
    (void)state;
    slab_t s;
    slab_init(&s, 24);
    uint32_t n = SLAB_CHUNK_SLOTS * 2 + 5; /* three chunks */
    uint32_t *idx = malloc(n * sizeof(*idx));
    for (uint32_t i = 0; i < n; i++) {
        idx[i] = slab_alloc(&s);
        assert_int_equal(idx[i], i + 1); /* fresh slots in order, from 1 */
        memset(slab_ptr(&s, idx[i]), (int)(i & 0xff), 24);
    }
    assert_int_equal(s.live, n);
    assert_int_equal(s.nchunks, 3);
    /* neighbours in a chunk are size bytes apart; every slot kept its bytes */
    assert_ptr_equal((char *)slab_ptr(&s, 2), (char *)slab_ptr(&s, 1) + 24);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(((unsigned char *)slab_ptr(&s, idx[i]))[23], i & 0xff);
    /* every slot's index follows from its address */
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(slab_index(&s, slab_ptr(&s, idx[i])), idx[i]);
    slab_release(&s, 7);
    slab_release(&s, SLAB_CHUNK_SLOTS + 1);
    assert_int_equal(s.live, n - 2);
    /* released slots come back newest first, before fresh ones */
    assert_int_equal(slab_alloc(&s), SLAB_CHUNK_SLOTS + 1);
    assert_int_equal(slab_alloc(&s), 7);
    assert_int_equal(slab_alloc(&s), n + 1);
    assert_null(slab_ptr0(&s, 0));
    slab_free_all(&s);
    assert_int_equal(s.live, 0);
    assert_int_equal(slab_alloc(&s), 1);
    slab_free_all(&s);
    free(idx);
}

/* Publishes and deletes across several doublings of the id hash, so that
 * lookups, inserts and deletes happen while old buckets are still being
 * moved; every live event stays findable, every deleted one is gone. */
static void test_id_hash_grows_in_steps(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    enum { N = 20000 };
    eid_t *ids = malloc(N * sizeof(*ids));
    char data[64];
    for (int i = 0; i < N; i++) {
        /* a new millisecond now and then, so ids scatter as well as run */
        ntime_t now = T0 + (i / 300) * NTIME_NS_PER_MS;
        int len = snprintf(data, sizeof(data), "%d", i);
        event_t *e = core_publish(c, ch, now, data, (size_t)len, now, 3600 * S);
        assert_non_null(e);
        ids[i] = event_id(e);
        if (i % 3 == 2) /* delete an older one while the table grows */
            assert_int_equal(core_delete(c, ch, now, ids[i / 2], NULL), CORE_OK);
        if (i % 97 == 0)
            for (int k = 0; k <= i; k += 13) {
                event_t *x = core_event_get(c, ch, now, ids[k]);
                if (x) /* deleted ones are checked at the end */
                    assert_int_equal(id_cmp(event_id(x), ids[k]), 0);
            }
    }
    /* which ones were deleted: ids[i / 2] for every i % 3 == 2 */
    char *gone = calloc(N, 1);
    for (int i = 2; i < N; i += 3)
        gone[i / 2] = 1;
    size_t live = 0;
    ntime_t now = T0 + (N / 300) * NTIME_NS_PER_MS;
    for (int i = 0; i < N; i++) {
        event_t *e = core_event_get(c, ch, now, ids[i]);
        if (gone[i]) {
            assert_null(e);
        } else {
            assert_non_null(e);
            int len = snprintf(data, sizeof(data), "%d", i);
            assert_int_equal(e->data_len, len);
            assert_memory_equal(event_data(e), data, (size_t)len);
            live++;
        }
    }
    assert_int_equal(core_counters(c)->events, live);
    free(gone);
    free(ids);
    core_free(c);
}

/* Data longer than EVENT_INLINE is kept apart and NUL-terminated; a lease
 * exists only while locked and its fields read back exactly. */
static void test_long_data_and_leases(void **state)
{
    (void)state;
    core_t *c = core_new(tz_utc());
    channel_t *ch = core_channel(c, "c", 1);
    char big[300];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    for (size_t len = EVENT_INLINE - 1; len <= EVENT_INLINE + 1; len++) {
        event_t *e = core_publish(c, ch, T0, big, len, T0, 60 * S);
        assert_int_equal(e->data_len, len);
        assert_memory_equal(event_data(e), big, len);
    }
    event_t *e = core_publish(c, ch, T0, big, sizeof(big), T0, 60 * S);
    assert_memory_equal(event_data(e), big, sizeof(big));
    assert_int_equal(event_data(e)[sizeof(big)], '\0');
    eid_t id = event_id(e);
    assert_null(event_lease(c, e));
    assert_int_equal(event_lock_token(c, e), 0);
    assert_int_equal(core_lock(c, ch, T0 + 1, id, 5 * S, &e), CORE_OK);
    assert_non_null(event_lease(c, e));
    assert_int_equal(event_locked_until(c, e), T0 + 1 + 5 * S);
    uint64_t token = event_lock_token(c, e);
    assert_int_not_equal(token, 0);
    event_t *got;
    assert_int_equal(core_unlock(c, ch, T0 + 2, id, &token, 0, &got), CORE_OK);
    assert_null(event_lease(c, got));
    assert_int_equal(event_locked_until(c, got), 0);
    /* a locked event with long data freed with the core: no leak */
    assert_int_equal(core_lock(c, ch, T0 + 3, id, 5 * S, &e), CORE_OK);
    core_free(c);
}

static void test_slab_index_odd_and_even_sizes(void **state)
{
    (void)state;
    uint32_t sizes[] = {4, 12, 24, 72, 76, 80, 96, 100};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        slab_t s;
        slab_init(&s, sizes[k]);
        for (uint32_t i = 1; i <= SLAB_CHUNK_SLOTS + 3; i++) {
            assert_int_equal(slab_alloc(&s), i);
            memset(slab_ptr(&s, i), 0xee, sizes[k]);
        }
        for (uint32_t i = 1; i <= SLAB_CHUNK_SLOTS + 3; i++)
            assert_int_equal(slab_index(&s, slab_ptr(&s, i)), i);
        slab_free_all(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slab_indices_and_reuse),
        cmocka_unit_test(test_slab_index_odd_and_even_sizes),
        cmocka_unit_test(test_id_hash_grows_in_steps),
        cmocka_unit_test(test_long_data_and_leases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
