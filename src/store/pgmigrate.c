/*
 * pgmigrate.c -- applies the compiled-in migrations (see pgmigrate.h).
 *
 * The SQL files are embedded with the assembler's .incbin, each followed by
 * a NUL, so they stay plain .sql files that psql can also run (Makefile:
 * this object depends on src/store/migrations/). A migration runs with
 * search_path set to the store's schema and must not name the schema.
 */
#include "pgmigrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EMBED(sym, path)                                  \
    __asm__(".section .rodata\n"                          \
            ".global " #sym "\n"                          \
            ".type " #sym ", @object\n" #sym ":\n"        \
            ".incbin \"" path "\"\n"                      \
            ".byte 0\n"                                   \
            ".previous\n");                               \
    extern const char sym[]

EMBED(pg_migration_0001, "src/store/migrations/0001_init.sql");
EMBED(pg_migration_0002, "src/store/migrations/0002_ops.sql");
EMBED(pg_migration_0003, "src/store/migrations/0003_batch.sql");
EMBED(pg_migration_0004, "src/store/migrations/0004_parity.sql");
EMBED(pg_migration_0005, "src/store/migrations/0005_set_delete.sql");
EMBED(pg_migration_0006, "src/store/migrations/0006_dead_letter_room.sql");
EMBED(pg_migration_0007, "src/store/migrations/0007_no_lease_ends.sql");
EMBED(pg_migration_0008, "src/store/migrations/0008_sweep_leased.sql");

typedef struct migration {
    int version;
    const char *name;
    int min_version;          /* the oldest binary (by the schema version it
                                 knows) that still runs after this one */
    const char *sql;
} migration_t;

static const migration_t migrations[] = {
    {1, "init", 1, pg_migration_0001},
    {2, "ops", 1, pg_migration_0002},
    {3, "batch", 1, pg_migration_0003},
    {4, "parity", 1, pg_migration_0004},
    {5, "set_delete", 1, pg_migration_0005},
    {6, "dead_letter_room", 1, pg_migration_0006},
    {7, "no_lease_ends", 1, pg_migration_0007},
    {8, "sweep_leased", 1, pg_migration_0008},
};
#define NMIGRATIONS (int)(sizeof(migrations) / sizeof(migrations[0]))

int pg_schema_version(void)
{
    return migrations[NMIGRATIONS - 1].version;
}

int pg_schema_min_version(void)
{
    return migrations[NMIGRATIONS - 1].min_version;
}

/* Runs sql; 0, or -1 with "what: the database's message" in err. */
static int exec(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return 0;
    }
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        n--;
    snprintf(err, errlen, "%s: %.*s", what, (int)n, msg);
    PQclear(r);
    return -1;
}

/* Runs a one-value query; the value as an int in *out (0 if NULL). */
static int query_int(PGconn *conn, const char *sql, int *out, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) > 1) {
        snprintf(err, errlen, "cannot read the schema version: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    *out = PQntuples(r) == 0 || PQgetisnull(r, 0, 0) ? 0 : atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* Applies migration m in one transaction. */
static int apply(PGconn *conn, const char *qschema, const migration_t *m, char *err, size_t errlen)
{
    char sql[512], what[128];
    snprintf(what, sizeof(what), "migration %04d_%s failed", m->version, m->name);
    snprintf(sql, sizeof(sql), "BEGIN; SET LOCAL search_path TO %s", qschema);
    if (exec(conn, sql, what, err, errlen) != 0)
        return -1;
    snprintf(sql, sizeof(sql), "INSERT INTO %s.migrations (version, name, min_version) VALUES (%d, '%s', %d)",
             qschema, m->version, m->name, m->min_version);
    if (exec(conn, m->sql, what, err, errlen) != 0 || exec(conn, sql, what, err, errlen) != 0 ||
        exec(conn, "COMMIT", what, err, errlen) != 0) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
        return -1;
    }
    return 0;
}

/* Creates the schema unless it exists (CREATE SCHEMA IF NOT EXISTS would
 * need CREATE on the database even then), and says clearly when it exists
 * but belongs to someone who did not let this user create tables in it. */
static int ensure_schema(PGconn *conn, const char *schema, const char *qschema, char *err, size_t errlen)
{
    const char *params[1] = {schema};
    PGresult *r = PQexecParams(conn,
                               "SELECT pg_get_userbyid(nspowner), has_schema_privilege(oid, 'CREATE'), current_user"
                               " FROM pg_namespace WHERE nspname = $1", 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "cannot look up the schema %s: %s", qschema, PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int exists = PQntuples(r) == 1, ok = exists && PQgetvalue(r, 0, 1)[0] == 't';
    if (exists && !ok)
        snprintf(err, errlen, "cannot create tables in the schema %s: it is owned by %s and the user %s has no CREATE "
                 "privilege on it (use another -database-schema, or GRANT CREATE ON SCHEMA to this user)",
                 qschema, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 2));
    PQclear(r);
    if (exists)
        return ok ? 0 : -1;
    char sql[300], what[300];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", qschema);
    snprintf(what, sizeof(what), "cannot create the schema %s (create it for this user, or grant CREATE on the database)", qschema);
    return exec(conn, sql, what, err, errlen);
}

/* Creates the schema and its migrations table if they are missing. */
static int bootstrap(PGconn *conn, const char *schema, const char *qschema, char *err, size_t errlen)
{
    char sql[512], what[300];
    if (ensure_schema(conn, schema, qschema, err, errlen) != 0)
        return -1;
    snprintf(sql, sizeof(sql),
             "CREATE TABLE IF NOT EXISTS %s.migrations (version integer PRIMARY KEY, name text NOT NULL,"
             " min_version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())", qschema);
    snprintf(what, sizeof(what), "cannot create tables in the schema %s", qschema);
    return exec(conn, sql, what, err, errlen);
}

/* Under the lock: compares versions, then applies what is missing. */
static int migrate_locked(PGconn *conn, const char *schema, const char *qschema, pg_migrate_result_t *res,
                          char *err, size_t errlen)
{
    char sql[512];
    int have, min;
    if (bootstrap(conn, schema, qschema, err, errlen) != 0)
        return -1;
    snprintf(sql, sizeof(sql), "SELECT max(version) FROM %s.migrations", qschema);
    if (query_int(conn, sql, &have, err, errlen) != 0)
        return -1;
    snprintf(sql, sizeof(sql), "SELECT min_version FROM %s.migrations ORDER BY version DESC LIMIT 1", qschema);
    if (query_int(conn, sql, &min, err, errlen) != 0)
        return -1;
    res->from = res->to = have;
    res->applied = 0;
    int known = pg_schema_version();
    if (have > known && min > known) {
        snprintf(err, errlen,
                 "the database schema %s is at version %d and serves binaries that know version %d or later; "
                 "this binary knows versions up to %d: run a newer distribuerad",
                 qschema, have, min, known);
        return -1;
    }
    for (int i = 0; i < NMIGRATIONS; i++) {
        if (migrations[i].version <= have)
            continue;
        if (apply(conn, qschema, &migrations[i], err, errlen) != 0)
            return -1;
        res->to = migrations[i].version;
        res->applied++;
    }
    return 0;
}

/* "schema already exists, skipping" and the like are expected here. */
static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

int pg_migrate(PGconn *conn, const char *schema, pg_migrate_result_t *res, char *err, size_t errlen)
{
    PQnoticeProcessor old = PQsetNoticeProcessor(conn, quiet, NULL);
    char *q = PQescapeIdentifier(conn, schema, strlen(schema));
    if (!q) {
        snprintf(err, errlen, "invalid schema name \"%s\": %s", schema, PQerrorMessage(conn));
        return -1;
    }
    snprintf(res->qschema, sizeof(res->qschema), "%s", q);
    /* The key: the schema's name hashed, so stores in different schemas
     * of one database migrate independently. */
    const char *params[1] = {schema};
    PGresult *r = PQexecParams(conn, "SELECT pg_advisory_lock(hashtextextended('distribuerad migrate ' || $1, 0))",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "cannot take the migration lock: %s", PQresultErrorMessage(r));
        PQclear(r);
        PQfreemem(q);
        PQsetNoticeProcessor(conn, old, NULL);
        return -1;
    }
    PQclear(r);
    int rc = migrate_locked(conn, schema, q, res, err, errlen);
    r = PQexecParams(conn, "SELECT pg_advisory_unlock(hashtextextended('distribuerad migrate ' || $1, 0))",
                     1, NULL, params, NULL, NULL, 0);
    PQclear(r);
    PQfreemem(q);
    PQsetNoticeProcessor(conn, old, NULL);
    return rc;
}
