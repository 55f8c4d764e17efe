/*
 * vmem.c -- malloc below VMEM_MMAP_MIN, private mappings above (vmem.h).
 */
#include "vmem.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include "util.h"

/* LeakSanitizer scans malloc'd blocks, stacks and globals, not private
 * mappings: a malloc'd block whose only pointer sits in a mapping (an
 * event's long data in a slab chunk) would look leaked. Under ASan every
 * mapping is made a root region for as long as it lives. */
#if defined(__SANITIZE_ADDRESS__)
#define VMEM_LSAN_ROOTS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VMEM_LSAN_ROOTS 1
#endif
#endif
#ifdef VMEM_LSAN_ROOTS
#include <sanitizer/lsan_interface.h>
#define roots_add(p, n) __lsan_register_root_region((p), (n))
#define roots_del(p, n) __lsan_unregister_root_region((p), (n))
#else
#define roots_add(p, n) ((void)(p), (void)(n))
#define roots_del(p, n) ((void)(p), (void)(n))
#endif

static size_t page_round(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

static int mapped(size_t size)
{
    return size >= VMEM_MMAP_MIN;
}

static void *map(size_t size)
{
    void *p = mmap(NULL, page_round(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "distribuerad: out of memory mapping %zu bytes\n", size);
        abort();
    }
    roots_add(p, page_round(size));
    return p;
}

void *vmem_zalloc(size_t size)
{
    return mapped(size) ? map(size) : xcalloc(1, size);
}

void *vmem_resize(void *p, size_t old_size, size_t new_size)
{
    if (!p)
        old_size = 0;
    if (!mapped(new_size) && !mapped(old_size))
        return xrealloc(p, new_size);
    if (mapped(new_size) && mapped(old_size)) {
        if (page_round(new_size) == page_round(old_size))
            return p;
        void *q = mremap(p, page_round(old_size), page_round(new_size), MREMAP_MAYMOVE);
        if (q == MAP_FAILED) {
            fprintf(stderr, "distribuerad: out of memory remapping %zu bytes\n", new_size);
            abort();
        }
        roots_del(p, page_round(old_size));
        roots_add(q, page_round(new_size));
        return q;
    }
    /* Crossing the threshold: copy once between malloc and a mapping. */
    void *q = mapped(new_size) ? map(new_size) : xmalloc(new_size);
    if (p)
        memcpy(q, p, old_size < new_size ? old_size : new_size);
    vmem_free(p, old_size);
    return q;
}

void vmem_free(void *p, size_t size)
{
    if (!p)
        return;
    if (mapped(size)) {
        roots_del(p, page_round(size));
        munmap(p, page_round(size));
    } else {
        free(p);
    }
}

void *vmem_map_aligned(size_t size, size_t align)
{
    ASSERT(align >= 4096 && (align & (align - 1)) == 0);
    /* Map enough to contain an aligned block, then give back the ends. */
    size = page_round(size);
    char *p = map(size + align);
    roots_del(p, size + align);
    uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)p;
    if (head)
        munmap(p, head);
    if (align - head)
        munmap((char *)start + size, align - head);
    roots_add((void *)start, size);
    return (void *)start;
}

void vmem_unmap(void *p, size_t size)
{
    if (p) {
        roots_del(p, page_round(size));
        munmap(p, page_round(size));
    }
}
