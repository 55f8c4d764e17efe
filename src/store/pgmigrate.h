/*
 * pgmigrate.h -- the PostgreSQL store's schema: versioned migrations
 * compiled into the binary, applied at start-up (docs/SCHEMA.md).
 *
 * Versions: migration N (src/store/migrations/NNNN_*.sql) takes the schema
 * from version N-1 to N. The table <schema>.migrations records each applied
 * version with min_version: the oldest schema version a binary may know and
 * still run against this schema. Migrations are additive (expand now,
 * contract in a later version), so a migration that only adds keeps the
 * previous min_version and the previous binary keeps running during a
 * rolling update; one that removes what an older binary uses raises it.
 *
 * At start a binary that knows versions up to K, against a schema at V:
 *   V < K   applies V+1..K, each in its own transaction
 *   V = K   nothing to do
 *   V > K   runs if the schema's min_version <= K, else refuses to start
 * All of it happens under a session advisory lock on the schema's name, so
 * replicas starting together apply each migration once.
 *
 * These calls block: they run once at start-up, before the loop.
 */
#ifndef STORE_PGMIGRATE_H
#define STORE_PGMIGRATE_H

#include <stddef.h>
#include "pq.h"

/* The newest schema version this binary knows. */
int pg_schema_version(void);

/* The oldest schema version a binary must know to run against a schema
 * that this binary has migrated. */
int pg_schema_min_version(void);

typedef struct pg_migrate_result {
    int from;                 /* the version found (0: a new schema) */
    int to;                   /* the version after */
    int applied;              /* migrations applied now */
    char qschema[130];        /* the schema's name as SQL writes it, for
                                 messages ("My""Sch ema"; 63 bytes quoted) */
} pg_migrate_result_t;

/* Creates the schema if needed and applies the missing migrations on conn,
 * an open connection (left in its default state). Returns 0, or -1 with a
 * sentence in err: the schema cannot be created or written, a migration
 * failed (its version and the database's message), or the schema is newer
 * than this binary serves. */
int pg_migrate(PGconn *conn, const char *schema, pg_migrate_result_t *res, char *err, size_t errlen);

#endif
