/*
 * server_int.h -- the server's state, shared by loop.c (the loop and the
 * listener), respond.c (answers and the fsync-wait queue) and auth.c
 * (authentication and the access log). Not for handlers.
 */
#ifndef HTTP_SERVER_INT_H
#define HTTP_SERVER_INT_H

#include <signal.h>
#include "handlers.h"
#include "slowread.h"

struct http_server {
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    SSL_CTX *ssl_ctx;
    int listen_fd;             /* bound and listening, until the listener owns it */
    h2o_socket_t *listener;
    size_t nconns;             /* open client connections */
    slowread_t slow;           /* connections whose answers wait for the client to read */
    int accept_paused;         /* out of descriptors: listener not watched */
    ntime_t full_logged_at;    /* last "too many connections" log line */
    h2o_socket_t *wakeup;      /* read end of the self-pipe signals write to */
    int wakeup_fds[2];
    h2o_socket_t *deadline;    /* monotonic timerfd armed at the next deadline */
    ntime_t armed_at;          /* the store's instant it is armed at;
                                  NTIME_MAX: disarmed; INT64_MIN: unknown
                                  (the wall clock was set since) */
    h2o_socket_t *stepwatch;   /* realtime timerfd that fires when the wall clock is set */
    volatile sig_atomic_t stop;
    uint64_t sends;            /* answers handed to h2o, ever */
    h2o_linklist_t durable;    /* answers waiting for durability, oldest first */
    uint64_t durable_asked;    /* the position asked of the store; 0: none */
    int durable_asking;        /* inside the store's on_durable call */
    const char *auth_token;    /* NULL: no authentication */
    size_t auth_len;
    int metrics_open;
    int access_log;            /* a line per answered request */
    http_ctx_t hctx;
};

typedef enum auth_result { AUTH_OK, AUTH_MISSING, AUTH_NOT_BEARER, AUTH_WRONG } auth_result_t;

/* auth.c: may the request pass? AUTH_OK, or why not. */
auth_result_t http_authorized(http_server_t *s, h2o_req_t *req);

/* auth.c: the 401 for a request that may not pass, with a message that
 * tells the three ways to fail apart (the token itself is never echoed). */
void http_unauthorized(route_args_t *a, auth_result_t why);

/* auth.c: counts an answered request for /metrics and writes its
 * access-log line. */
void http_finished(route_args_t *a);

#endif
