/*
 * strmap.h -- a hash map from byte strings to pointers.
 *
 * Used for the channel registry and each channel's jobs. Separate chaining
 * with a power-of-two bucket array that doubles when the load passes 1, so
 * get, put and del are O(1) on average. Keys are copied in; values are
 * borrowed (the map never frees them).
 */
#ifndef STRMAP_H
#define STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap_entry {
    struct strmap_entry *next;
    void *value;
    uint64_t hash;
    uint32_t len;
    char key[]; /* len bytes, then a NUL */
} strmap_entry_t;

typedef struct strmap {
    strmap_entry_t **buckets;
    uint32_t mask;  /* bucket count - 1 */
    uint32_t count;
} strmap_t;

void strmap_init(strmap_t *m);
void strmap_free(strmap_t *m); /* frees entries and buckets, not values */

/* The value for key, or NULL. */
void *strmap_get(const strmap_t *m, const char *key, size_t len);

/* Adds key -> value; the key must not be present. Returns the entry, whose
 * key copy lives as long as the entry. */
strmap_entry_t *strmap_put(strmap_t *m, const char *key, size_t len, void *value);

/* Removes key; returns its value or NULL. */
void *strmap_del(strmap_t *m, const char *key, size_t len);

/* Calls fn for every entry, in no particular order. fn must not change m. */
void strmap_each(const strmap_t *m, void (*fn)(strmap_entry_t *e, void *arg), void *arg);

uint64_t strmap_hash(const char *key, size_t len);

#endif
