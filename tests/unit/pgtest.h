/*
 * pgtest.h -- a throwaway PostgreSQL for the unit tests of the PostgreSQL
 * store (test_pgconn.c, test_pgstore.c): started with tests/pg/pgctl.sh,
 * or DISTRIBUERAD_TEST_DATABASE_URL when set. Included by one test file
 * each; everything here is static.
 */
#ifndef PGTEST_H
#define PGTEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "store/pq.h"

static char cluster[512]; /* the cluster's folder; empty: none started */
static char url[1024];    /* empty: no database, the tests skip */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs cmd, its output (trailing newlines cut) in out; pclose's status. */
static int sh(const char *cmd, char *out, size_t outlen)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    while (n > 0 && out[n - 1] == '\n')
        out[--n] = '\0';
    return pclose(f);
}

/* Loads libpq as the server does, then sets url: 0 (also when PostgreSQL is not installed: url stays empty),
 * or -1 if a cluster could not be started. */
static int pgtest_start(void)
{
    char err[512];
    if (pq_load(err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    const char *env = getenv("DISTRIBUERAD_TEST_DATABASE_URL");
    if (env && *env) {
        snprintf(url, sizeof(url), "%s", env);
        return 0;
    }
    if (access("/usr/lib/postgresql/15/bin/initdb", X_OK) != 0)
        return 0; /* tests skip */
    if (sh("tests/pg/pgctl.sh start", cluster, sizeof(cluster)) != 0 || !*cluster)
        return -1;
    snprintf(url, sizeof(url), "postgresql:///postgres?host=%s/sock&user=postgres", cluster);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (*cluster) {
        char cmd[600], out[64];
        snprintf(cmd, sizeof(cmd), "tests/pg/pgctl.sh stop '%s'", cluster);
        sh(cmd, out, sizeof(out));
    }
    return 0;
}

#endif
