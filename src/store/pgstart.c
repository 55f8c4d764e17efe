/*
 * pgstart.c -- start-up checks of the PostgreSQL store (see pgstart.h).
 */
#include "pgstart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pgmigrate.h"

/* The password in url, or NULL: from libpq's own parse, so every form it
 * accepts (key=value, URI, percent-encoded) is covered. Free with
 * PQconninfoFree through *opts. */
static const char *password_of(const char *url, PQconninfoOption **opts)
{
    *opts = PQconninfoParse(url, NULL);
    for (PQconninfoOption *o = *opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && *o->val)
            return o->val;
    return NULL;
}

/* Replaces each occurrence of secret (len > 0) in s by "***", in place
 * within size bytes. */
static void blank(char *s, size_t size, const char *secret)
{
    size_t n = strlen(secret);
    char *p;
    while (n > 0 && (p = strstr(s, secret)) != NULL) {
        size_t rest = strlen(p + n);
        if ((size_t)(p - s) + 3 + rest + 1 > size)
            rest = size - (size_t)(p - s) - 4;
        memmove(p + 3, p + n, rest);
        memcpy(p, "***", 3);
        p[3 + rest] = '\0';
    }
}

void pg_redact(const char *msg, const char *url, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", msg);
    /* libpq's messages run over lines ("...failed: X\n\tIs the server
     * running..."): one log line reads better. */
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    PQconninfoOption *opts;
    const char *pw = password_of(url, &opts);
    if (pw)
        blank(out, outlen, pw);
    PQconninfoFree(opts);
    /* A URL libpq cannot parse still has its user:password@ blanked. */
    const char *scheme = strstr(url, "://");
    if (scheme) {
        const char *at = strchr(scheme + 3, '@'), *colon = strchr(scheme + 3, ':');
        if (at && colon && colon < at) {
            char raw[256];
            size_t len = (size_t)(at - colon - 1);
            if (len > 0 && len < sizeof(raw)) {
                memcpy(raw, colon + 1, len);
                raw[len] = '\0';
                blank(out, outlen, raw);
            }
        }
    }
}

void pg_describe_host(PGconn *conn, char *out, size_t outlen)
{
    const char *host = conn ? PQhost(conn) : NULL, *port = conn ? PQport(conn) : NULL;
    if (!host || !*host)
        host = "the default socket";
    if (port && *port && host[0] != '/')
        snprintf(out, outlen, "%s:%s", host, port);
    else
        snprintf(out, outlen, "%s", host);
}

/* Connects or explains why not. */
static PGconn *connect_once(const char *url, char *err, size_t errlen)
{
    char msg[1024];
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    if (!opts) {
        snprintf(err, errlen, "invalid -database-url: not a libpq connection URI or key=value string");
        return NULL;
    }
    PQconninfoFree(opts);
    PGconn *conn = PQconnectdb(url);
    if (PQstatus(conn) == CONNECTION_OK)
        return conn;
    char host[300];
    pg_describe_host(conn, host, sizeof(host));
    pg_redact(PQerrorMessage(conn), url, msg, sizeof(msg));
    snprintf(err, errlen, "cannot connect to the database at %s: %s", host, msg);
    PQfinish(conn);
    return NULL;
}

int pg_start(const char *url, const char *schema, char *info, size_t infolen, char *err, size_t errlen)
{
    if (pq_load(err, errlen) != 0)
        return -1;
    PGconn *conn = connect_once(url, err, errlen);
    if (!conn)
        return -1;
    char host[300];
    pg_describe_host(conn, host, sizeof(host));
    int v = PQserverVersion(conn);
    if (v < PG_MIN_SERVER_VERSION) {
        snprintf(err, errlen, "the database at %s runs PostgreSQL %d.%d; distribuerad needs 13 or later", host,
                 v / 10000, v % 10000);
        PQfinish(conn);
        return -1;
    }
    pg_migrate_result_t res;
    char merr[1024];
    if (pg_migrate(conn, schema, &res, merr, sizeof(merr)) != 0) {
        char msg[1024];
        pg_redact(merr, url, msg, sizeof(msg));
        snprintf(err, errlen, "database at %s: %s", host, msg);
        PQfinish(conn);
        return -1;
    }
    if (res.applied)
        snprintf(info, infolen, "database at %s (PostgreSQL %d): schema %s migrated from version %d to %d", host,
                 v / 10000, res.qschema, res.from, res.to);
    else
        snprintf(info, infolen, "database at %s (PostgreSQL %d): schema %s at version %d%s", host, v / 10000,
                 res.qschema, res.from,
                 res.from > pg_schema_version() ? " (newer than this binary, still compatible)" : "");
    PQfinish(conn);
    return 0;
}
