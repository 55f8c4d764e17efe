/*
 * util.h -- allocation that never returns NULL, and invariant checks.
 *
 * A failed allocation aborts with a message, so callers have no
 * out-of-memory branches. ASSERT stays on in release builds; it checks our
 * own invariants, never user input.
 */
#ifndef UTIL_H
#define UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrndup(const char *s, size_t n);
/* p (an array of elements of size bytes, *cap of them) with room for at
 * least n: p itself if it has, else reallocated with *cap doubled (from 16)
 * until it does. Elements past the old *cap are uninitialised. */
void *xgrow(void *p, size_t *cap, size_t n, size_t size);

#define ASSERT(cond)                                                                      \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

#define CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
