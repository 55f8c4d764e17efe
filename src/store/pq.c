/*
 * pq.c -- loading libpq at start-up (see pq.h).
 */
#define PQ_LOADER
#include "pq.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

pq_api_t pq_api;

static void *handle; /* libpq once loaded; never closed */

/* Resolves every function into t; the name of the first missing one, or
 * NULL. dlsym returns void *: memcpy into the typed member is the
 * conversion POSIX guarantees to work for functions. */
static const char *resolve(void *h, pq_api_t *t)
{
    void *sym;
#define PQ_RESOLVE(name)                                   \
    if (!(sym = dlsym(h, #name)))                          \
        return #name;                                      \
    memcpy(&t->name, &sym, sizeof(sym));
    PQ_FUNCS(PQ_RESOLVE)
#undef PQ_RESOLVE
    return NULL;
}

int pq_load(char *err, size_t errlen)
{
    if (handle)
        return 0;
    /* RTLD_NOW: a dependency of libpq that is missing fails here, at
     * start, not at the first call from the loop. */
    void *h = dlopen(PQ_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen,
                 "cannot load %s, the PostgreSQL client library that -database-url needs "
                 "(Debian package libpq5): %s", PQ_LIBRARY, dlerror());
        return -1;
    }
    pq_api_t t;
    const char *missing = resolve(h, &t);
    if (missing) {
        snprintf(err, errlen,
                 "%s lacks %s: -database-url needs the libpq of PostgreSQL 14 or later "
                 "(Debian package libpq5): %s", PQ_LIBRARY, missing, dlerror());
        dlclose(h);
        return -1;
    }
    pq_api = t;
    handle = h;
    return 0;
}
