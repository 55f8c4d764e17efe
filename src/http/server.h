/*
 * server.h -- the HTTP side as main() and the tests see it: start a
 * server over a store, run its loop, stop it.
 *
 * One thread runs one h2o event loop, which the server shares with the
 * store (the memory store watches its fsync thread on it; the PostgreSQL
 * store its connections). Each loop turn: the store runs what is due,
 * parked acquirers whose wait ended are answered and those whose channel
 * gained events retried, then the loop sleeps in h2o until the next
 * deadline or socket event. Nothing due means no wake-ups.
 * docs/HACKING.md follows one request through it.
 */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <stdint.h>
#include "store/store.h"

typedef struct http_limits {
    size_t max_body;          /* bytes of a request body (413 past it) */
    size_t max_data;          /* bytes of one event's data (413 past it) */
    size_t max_batch;         /* events in one batch publish (413 past it) */
    size_t max_waiters;       /* parked long-poll acquires (429 past it) */
    size_t max_connections;   /* open client connections; more are closed at once */
    uint64_t request_timeout_ms; /* to receive a request's headers and body; idle keep-alive */
} http_limits_t;

typedef struct http_config {
    const char *address;      /* listen address, e.g. "0.0.0.0" */
    int port;                 /* 0 picks a free port (logged) */
    http_limits_t limits;
    h2o_loop_t *loop;         /* the event loop (the store's too); the caller
                                 owns it and destroys it after the server */
    const char *auth_token;   /* NULL: no authentication */
    int metrics_open;         /* /metrics needs no token */
    const char *tls_cert;     /* PEM files; both NULL: plain HTTP */
    const char *tls_key;
    int access_log;           /* log a line per answered request */
} http_config_t;

typedef struct http_server http_server_t;

/* Starts listening; the server uses store, which the caller frees after
 * http_server_run returned and before http_server_free: a store that
 * answers later then answers what is still in flight (with an error)
 * into a server that is still there. Returns NULL after logging what
 * failed. */
http_server_t *http_server_new(const http_config_t *cfg, store_t *store);

/* Runs the loop until a stop is requested (http_server_stop or SIGTERM /
 * SIGINT), then stops accepting, answers parked requests, lets store
 * calls in flight finish and written responses drain for a moment, and
 * returns 0. From then on the server calls the store no more. */
int http_server_run(http_server_t *s);

/* Asks the loop to stop; safe from a signal handler. */
void http_server_stop(http_server_t *s);

void http_server_free(http_server_t *s);

/* ---- for tests and fuzzing ---- */

/* Serves a connected socket as if the listener had accepted it (counted
 * against max_connections like any other); the server owns fd. */
void http_server_adopt(http_server_t *s, int fd);

/* One loop turn: run what is due, then wait at most max_ms (0: never
 * sleep; -1: until something happens) for socket events. Returns the
 * next deadline the server knows of (the store's and parked requests'),
 * NTIME_MAX if none. */
ntime_t http_server_turn(http_server_t *s, int32_t max_ms);

/* Answers every parked acquire with what it can get now (as at shutdown). */
void http_server_release_parked(http_server_t *s);

/* Open connections, and answers waiting for the log's fsync. */
size_t http_server_connections(const http_server_t *s);
size_t http_server_waiting_durable(const http_server_t *s);

#endif
