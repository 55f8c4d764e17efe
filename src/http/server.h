/*
 * server.h -- the HTTP side: h2o glue, the loop, limits, and the one way a
 * response leaves (now or later).
 *
 * One thread runs one h2o event loop and owns the core. Each loop turn:
 * read the clock, run what is due in the core, serve parked acquirers that
 * can now be served, then sleep in h2o until the next deadline or socket
 * event. Nothing due means no wake-ups.
 *
 * A request is answered either inside its handler or later (a parked
 * long-poll acquire), always through http_respond(), which works both ways.
 */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <stdint.h>
#include "core/core.h"
#include "store/wal.h"
#include "json/jsonw.h"

typedef struct http_limits {
    size_t max_body;          /* bytes of a request body (413 past it) */
    size_t max_data;          /* bytes of one event's data (413 past it) */
    size_t max_batch;         /* events in one batch publish (413 past it) */
    size_t max_channels;      /* channels in all (429 past it) */
    size_t max_events;        /* live events in all (429 past it) */
    size_t max_channel_events; /* live events in one channel (429 past it) */
    size_t max_waiters;       /* parked long-poll acquires (429 past it) */
    size_t max_connections;   /* open client connections; more are closed at once */
    uint64_t request_timeout_ms; /* to receive a request's headers and body; idle keep-alive */
} http_limits_t;

typedef struct http_config {
    const char *address;      /* listen address, e.g. "0.0.0.0" */
    int port;                 /* 0 picks a free port (logged) */
    http_limits_t limits;
    wal_t *wal;               /* NULL: in memory only */
    const char *auth_token;   /* NULL: no authentication */
    int metrics_open;         /* /metrics needs no token */
    const char *tls_cert;     /* PEM files; both NULL: plain HTTP */
    const char *tls_key;
    int access_log;           /* log a line per answered request */
} http_config_t;

typedef struct http_server http_server_t;

/* Starts listening. Returns NULL after logging what failed. */
http_server_t *http_server_new(const http_config_t *cfg, core_t *core);

/* Runs the loop until a stop is requested (http_server_stop or SIGTERM /
 * SIGINT), then stops accepting, answers parked requests, lets written
 * responses drain for a moment, and returns 0. */
int http_server_run(http_server_t *s);

/* Asks the loop to stop; safe from a signal handler. */
void http_server_stop(http_server_t *s);

void http_server_free(http_server_t *s);

/* ---- for handlers ---- */

typedef struct http_ctx {
    http_server_t *server;
    core_t *core;
    const http_limits_t *limits;
    int ready;                /* /readyz: recovered and listening */
    wal_t *wal;               /* NULL: in memory only */
    jsonw_t out;              /* response writer, reused by every request */
} http_ctx_t;

/* The wall clock now, in ns. */
ntime_t http_now(void);

/* Sends status with the JSON in w (w is emptied). With -fsync always,
 * the answer waits until everything logged so far is on disk (group
 * commit), so no 2xx leaves before its change is durable. */
void http_respond(h2o_req_t *req, int status, jsonw_t *w);

/* Sends status with an empty body. */
void http_respond_empty(h2o_req_t *req, int status);

/* Sends {"error": "<message>"} with status. */
void http_error(h2o_req_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Counts an answered request in /metrics and writes its access-log line.
 * parked: it waited in a long-poll (kept out of the latency histogram). */
void http_finished(h2o_req_t *req, int route, ntime_t started, int parked);

/* Tells the server which route is handling the request (for metrics of
 * answers sent later). */
void http_set_route(int route);

/* 503: the change could not be written to the log and was not made. */
void http_error_io(h2o_req_t *req);

/* 429 with Retry-After: a limit is reached; nothing was changed. */
void http_error_full(h2o_req_t *req, const char *what, size_t limit);

/* Adds a response header (value copied into the request's pool). */
void http_add_header(h2o_req_t *req, const char *name, const char *value, size_t len);

#endif
