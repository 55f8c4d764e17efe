/*
 * respond.h -- the one way an answer leaves, now or later.
 *
 * Every answer of a routed request goes through these functions, which
 * count it for /metrics and the access log as it is handed to h2o. A
 * success answer whose store result carried a durable_seq (the memory
 * store with -fsync always) is rendered at once and queued until the
 * store reports that position durable (group commit); the queue is the
 * server's, so a client that hangs up meanwhile just leaves it.
 * Errors leave at once: they report no change.
 */
#ifndef HTTP_RESPOND_H
#define HTTP_RESPOND_H

#include "handlers.h"

/* Sends status with the JSON in w (w is emptied) once durable_seq is
 * durable (0: now). */
void http_respond(route_args_t *a, int status, jsonw_t *w, uint64_t durable_seq);

/* Sends status with len bytes of body of that type, now: copied into the
 * request's memory, or (copy 0) sent from where they are, which must
 * outlive the request (a compiled-in file). */
void http_respond_bytes(route_args_t *a, int status, const char *content_type, const char *body, size_t len,
                        int copy);

/* The same with an empty body. */
void http_respond_empty(route_args_t *a, int status, uint64_t durable_seq);

/* Sends {"error": "<message>"} with status. */
void http_error(route_args_t *a, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The HTTP status of a store status: the one mapping. */
int http_status_of(store_status_t st);

/* Answers a failed store result: its status's code, and the store's
 * sentence, else `usual` (the handler's words for this failure), else the
 * status's own. STORE_FULL adds Retry-After. With res->durable_seq it
 * waits for it like an answer of http_respond. */
void http_store_error(route_args_t *a, const store_res_t *res, const char *usual);

/* 429 with Retry-After: a limit of the HTTP layer is reached. */
void http_error_full(route_args_t *a, const char *what, size_t limit);

/* Adds a response header (value copied into the request's pool). */
void http_add_header(h2o_req_t *req, const char *name, const char *value, size_t len);

/* Sends an empty answer that is not counted: for a client that has gone
 * (the answer lets h2o find the closed socket and drop the connection). */
void http_respond_gone(route_args_t *a);

/* Has the client of req sent a FIN? It closed, or only half-closed
 * (probe.h tells which). For answers sent later (a parked acquire),
 * before anything is locked for it. */
int http_client_fin(h2o_req_t *req);

/* Is the connection of req reset, or closed both ways? (A client that
 * half-closed after pipelining its requests still reads the answers.) */
int http_client_reset(h2o_req_t *req);

/* While a's answer waits (for the store, or for an fsync), its HTTP/1
 * connection stays in epoll without being read, instead of h2o taking it
 * out and putting it back: two epoll_ctl a request saved. A client that
 * sends more or leaves meanwhile is only noticed (the socket then leaves
 * epoll, as h2o would have had it). http_unhold, just before the answer
 * goes, hands the socket back to h2o as it left it, with no system call;
 * it does nothing if a was not held. It returns 1 when the connection was
 * held and nothing came on it meanwhile (no data, FIN or reset that an
 * earlier loop turn saw), so http_client_reset need not be asked; 0 when
 * it was not held, something came, or the server is shutting connections
 * down. */
void http_hold(route_args_t *a);
int http_unhold(route_args_t *a);

/* The response filter that gives h2o's own errors (a body past its size
 * limit, a broken request) a JSON body, and every answer its Server
 * header. */
void http_response_filter(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot);

/* ---- the fsync-wait queue (server_int.h holds it) ---- */

/* Answers still waiting for the store's durability. */
size_t durable_waiting(const http_server_t *s);


#endif
