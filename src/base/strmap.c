/*
 * strmap.c -- chained hash map of byte strings (see strmap.h).
 */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>
#include "util.h"

uint64_t strmap_hash(const char *key, size_t len)
{
    /* FNV-1a, then a final mix so the low bits we index by are good. */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

void strmap_init(strmap_t *m)
{
    m->mask = 7;
    m->count = 0;
    m->buckets = xcalloc(m->mask + 1, sizeof(*m->buckets));
}

void strmap_free(strmap_t *m)
{
    if (!m->buckets)
        return;
    for (uint32_t i = 0; i <= m->mask; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->count = 0;
}

static strmap_entry_t **find(const strmap_t *m, const char *key, size_t len, uint64_t h)
{
    strmap_entry_t **p = &m->buckets[h & m->mask];
    while (*p && !((*p)->hash == h && (*p)->len == len && memcmp((*p)->key, key, len) == 0))
        p = &(*p)->next;
    return p;
}

void *strmap_get(const strmap_t *m, const char *key, size_t len)
{
    strmap_entry_t *e = *find(m, key, len, strmap_hash(key, len));
    return e ? e->value : NULL;
}

static void grow(strmap_t *m)
{
    uint32_t nmask = m->mask * 2 + 1;
    strmap_entry_t **nb = xcalloc((size_t)nmask + 1, sizeof(*nb));
    for (uint32_t i = 0; i <= m->mask; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *next = e->next;
            e->next = nb[e->hash & nmask];
            nb[e->hash & nmask] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = nb;
    m->mask = nmask;
}

strmap_entry_t *strmap_put(strmap_t *m, const char *key, size_t len, void *value)
{
    if (m->count > m->mask)
        grow(m);
    uint64_t h = strmap_hash(key, len);
    strmap_entry_t **p = find(m, key, len, h);
    ASSERT(*p == NULL);
    strmap_entry_t *e = xmalloc(sizeof(*e) + len + 1);
    e->next = NULL;
    e->value = value;
    e->hash = h;
    e->len = (uint32_t)len;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    *p = e;
    m->count++;
    return e;
}

void *strmap_del(strmap_t *m, const char *key, size_t len)
{
    strmap_entry_t **p = find(m, key, len, strmap_hash(key, len));
    strmap_entry_t *e = *p;
    if (!e)
        return NULL;
    void *v = e->value;
    *p = e->next;
    free(e);
    m->count--;
    return v;
}

void strmap_each(const strmap_t *m, void (*fn)(strmap_entry_t *e, void *arg), void *arg)
{
    for (uint32_t i = 0; i <= m->mask; i++)
        for (strmap_entry_t *e = m->buckets[i]; e; e = e->next)
            fn(e, arg);
}
