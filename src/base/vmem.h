/*
 * vmem.h -- growable arrays that cost only the pages they use.
 *
 * The core's big arrays (the timer heap, ready heaps, id hash buckets,
 * slab chunks) grow by doubling. Through realloc, once glibc's dynamic
 * mmap threshold has risen, they land in the brk heap: each doubling
 * copies the array into a new block whose pages all become resident, and
 * the freed old copy stays resident too, a few bytes per event in all.
 * Here an array of VMEM_MMAP_MIN bytes or more is its own mapping, grown
 * with mremap, which moves page tables instead of copying and leaves no
 * old copy behind; capacity never written is never resident. Smaller
 * arrays stay with malloc, so a channel with a few events does not pay a
 * page for its heap.
 *
 * The caller keeps the size in bytes (the capacity it already tracks) and
 * passes it back; a block must be resized and freed with the size it was
 * last given.
 */
#ifndef VMEM_H
#define VMEM_H

#include <stddef.h>

#define VMEM_MMAP_MIN (16 * 1024)

/* A block of size bytes, all zero. Free with vmem_free(p, size). */
void *vmem_zalloc(size_t size);

/* Resizes p (old_size bytes, or NULL with old_size 0) to new_size bytes,
 * keeping the first min(old_size, new_size) bytes; the rest is undefined.
 * Returns the new address; p is invalid afterwards. Aborts when memory
 * runs out. */
void *vmem_resize(void *p, size_t old_size, size_t new_size);

/* Frees p, which holds size bytes. vmem_free(NULL, 0) does nothing. */
void vmem_free(void *p, size_t size);

/* A zeroed mapping of size bytes whose address is a multiple of align (a
 * power of two, at least the page size). Free with vmem_unmap(p, size). */
void *vmem_map_aligned(size_t size, size_t align);
void vmem_unmap(void *p, size_t size);

#endif
