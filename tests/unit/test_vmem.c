/*
 * test_vmem.c -- growable arrays: contents survive growth across the
 * malloc/mapping threshold and back, mapped blocks are zero, aligned maps
 * are aligned and usable to their last byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/vmem.h"

static void fill(uint32_t *a, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        a[i] = (uint32_t)(i * 2654435761u);
}

static void check(const uint32_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != (uint32_t)(i * 2654435761u))
            fail_msg("element %zu lost", i);
}

static void test_grow_and_shrink_keep_contents(void **state)
{
    (void)state;
    uint32_t *a = NULL;
    size_t cap = 0;
    /* 16 elements up to 4 M elements: malloc, the crossing, then mremap */
    for (size_t next = 16; next <= (4u << 20); next *= 2) {
        a = vmem_resize(a, cap * sizeof(*a), next * sizeof(*a));
        fill(a, cap, next);
        cap = next;
        check(a, cap);
    }
    /* shrinking back below the threshold keeps the head */
    a = vmem_resize(a, cap * sizeof(*a), 100 * sizeof(*a));
    check(a, 100);
    vmem_free(a, 100 * sizeof(*a));
    vmem_free(NULL, 0);
}

static void test_zalloc_is_zero(void **state)
{
    (void)state;
    size_t sizes[] = {1, 4096, VMEM_MMAP_MIN - 4, VMEM_MMAP_MIN, 3 * VMEM_MMAP_MIN + 12};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        unsigned char *p = vmem_zalloc(sizes[k]);
        for (size_t i = 0; i < sizes[k]; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, sizes[k]);
        vmem_free(p, sizes[k]);
    }
}

static void test_map_aligned(void **state)
{
    (void)state;
    size_t aligns[] = {4096, 1 << 16, 1 << 19, 1 << 21};
    for (size_t k = 0; k < sizeof(aligns) / sizeof(aligns[0]); k++) {
        size_t size = aligns[k] - aligns[k] / 3;
        unsigned char *p = vmem_map_aligned(size, aligns[k]);
        assert_int_equal((uintptr_t)p % aligns[k], 0);
        assert_int_equal(p[0], 0);
        assert_int_equal(p[size - 1], 0);
        memset(p, 1, size);
        vmem_unmap(p, size);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_and_shrink_keep_contents),
        cmocka_unit_test(test_zalloc_is_zero),
        cmocka_unit_test(test_map_aligned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
