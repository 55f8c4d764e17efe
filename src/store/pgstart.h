/*
 * pgstart.h -- the PostgreSQL store's start-up checks: the URL, a first
 * connection, the server's version and the migrations.
 *
 * Runs once before the loop starts, so it may block. Every message it
 * writes names the host and the reason and never the password: libpq's
 * own messages are passed through pg_redact first.
 */
#ifndef STORE_PGSTART_H
#define STORE_PGSTART_H

#include <stddef.h>
#include "pq.h"

/* The oldest PostgreSQL server the store runs on (server_version_num). */
#define PG_MIN_SERVER_VERSION 130000

/* Copies msg into out with every occurrence of the password given in url
 * (as password=... or in a URI's user:password@) replaced by "***", and
 * trailing newlines dropped. */
void pg_redact(const char *msg, const char *url, char *out, size_t outlen);

/* Loads libpq (pq_load), checks url, connects (blocking), checks the server's version, applies the
 * migrations to schema and disconnects. info receives a line for the log
 * ("database ...: schema at version N"). Returns 0, or -1 with a sentence
 * in err. */
int pg_start(const char *url, const char *schema, char *info, size_t infolen, char *err, size_t errlen);

/* The host (or socket directory) a connection tried, for messages: "host"
 * or "host:port". */
void pg_describe_host(PGconn *conn, char *out, size_t outlen);

#endif
