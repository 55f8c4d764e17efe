/*
 * respond.c -- answers: the one way out, the fsync-wait queue, the store
 * status mapping and the JSON body of h2o's own errors (see respond.h).
 */
#include "respond.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include "base/utf8.h"
#include "base/util.h"
#include "server_int.h"

/* One string, compared by address: the usual type costs no strlen. */
static const char JSON_TYPE[] = "application/json";

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

void http_add_header(h2o_req_t *req, const char *name, const char *value, size_t len)
{
    size_t nlen = strlen(name);
    char *v = h2o_mem_alloc_pool(&req->pool, len ? len : 1);
    memcpy(v, value, len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, nlen, 1, NULL, v, len);
}

/* Hands a whole answer to h2o. owned: body lives as long as the request
 * (it is in the request's pool), so h2o writes it from there; else it is
 * copied into the pool first, as h2o_send_inline does. */
static void send_body(h2o_req_t *req, int status, const char *body, size_t len, const char *ctype, int owned)
{
    static h2o_generator_t generator = {NULL, NULL}; /* final at once: never called */
    req->res.status = status;
    req->res.reason = reason_of(status);
    if (ctype == JSON_TYPE)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT(JSON_TYPE));
    else if (ctype)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    /* Without a length h2o would chunk a 200 and close the connection
     * after any other status. */
    req->res.content_length = len;
    h2o_iovec_t buf = owned ? h2o_iovec_init(body, len) : h2o_strdup(&req->pool, body, len);
    h2o_start_response(req, &generator);
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static h2o_socket_t *socket_of(h2o_req_t *req)
{
    return req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
}

/* Sends and counts the answer of a routed request; a big one is watched
 * until its client reads it (slowread.h). */
static void send_counted(route_args_t *a, int status, const char *body, size_t len, const char *ctype, int owned)
{
    send_body(a->req, status, body, len, ctype, owned);
    http_server_t *s = a->ctx->server;
    s->sends++;
    h2o_socket_t *sock = len >= SLOWREAD_MIN ? socket_of(a->req) : NULL;
    if (sock)
        slowread_answered(&s->slow, sock->on_close.data, len, a->ctx->store->ops->now(a->ctx->store));
    http_finished(a);
}

void http_respond_gone(route_args_t *a)
{
    send_body(a->req, 204, "", 0, NULL, 1);
    a->ctx->server->sends++;
}

/* ---- clients that left ---- */

/* The socket's connection is reset, or closed both ways. The poll leaves
 * the socket's error for h2o to find. */
static int conn_broken(h2o_socket_t *sock)
{
    struct pollfd pfd = {.fd = h2o_socket_get_fd(sock), .events = 0};
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

int http_client_reset(h2o_req_t *req)
{
    h2o_socket_t *sock = socket_of(req);
    return sock && conn_broken(sock);
}

int http_client_fin(h2o_req_t *req)
{
    /* HTTP/1 stops reading while a request is in flight, so h2o would
     * only notice at write time: look at the socket. */
    h2o_socket_t *sock = socket_of(req);
    char b;
    return sock && recv(h2o_socket_get_fd(sock), &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* ---- the fsync-wait queue ---- */

/* An answer waiting until its store position is durable. */
typedef struct deferred {
    h2o_linklist_t link;      /* on the server's queue; unlinked once sent */
    route_args_t *a;
    uint64_t seq;
    int status;
    const char *ctype;        /* static */
    h2o_iovec_t body;         /* in the request's pool */
} deferred_t;

/* h2o's HTTP/1 stops reading a connection while its request is answered
 * and starts again once the answer is written. An answer that comes in a
 * later loop turn (from a store that answers later, or after an fsync)
 * made h2o's loop take the socket out of epoll in between and put it back
 * after: two epoll_ctl a request. While the answer waits, the socket
 * stays polled instead, without reading: a client that sends more (a
 * pipelined request) or leaves is only noticed, and then the socket
 * leaves epoll as it would have. Just before the answer goes, the socket
 * is stopped again, and h2o restarts it in the same turn once the answer
 * is written: no system call. */
static void on_held_readable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_dont_read(sock, 0);
    h2o_socket_read_stop(sock);
}

void http_hold(route_args_t *a)
{
    h2o_socket_t *sock = socket_of(a->req);
    a->held = NULL;
    if (!sock || h2o_socket_is_reading(sock))
        return; /* not HTTP/1, or h2o reads it already */
    h2o_socket_dont_read(sock, 1);
    h2o_socket_read_start(sock, on_held_readable);
    a->held = sock;
}

int http_unhold(route_args_t *a)
{
    h2o_socket_t *sock = a->held;
    if (!sock)
        return 0;
    /* on_held_readable stops reading once it has run: a socket still read
     * showed nothing since the hold began. */
    int quiet = h2o_socket_is_reading(sock) && !a->req->conn->ctx->shutdown_requested;
    on_held_readable(sock, NULL);
    a->held = NULL;
    return quiet;
}

static void on_deferred_dispose(void *p)
{
    deferred_t *d = p;
    if (h2o_linklist_is_linked(&d->link))
        h2o_linklist_unlink(&d->link);
}

static void on_durable(void *arg, store_status_t st);

/* Asks the store about the oldest waiting answer, one position at a
 * time: a store that answers at once is asked again in this loop. */
static void durable_ask(http_server_t *s)
{
    if (s->durable_asking)
        return;
    s->durable_asking = 1;
    while (!s->durable_asked && !h2o_linklist_is_empty(&s->durable)) {
        deferred_t *d = H2O_STRUCT_FROM_MEMBER(deferred_t, link, s->durable.next);
        s->durable_asked = d->seq;
        store_t *st = s->hctx.store;
        st->ops->on_durable(st, d->seq, on_durable, s);
    }
    s->durable_asking = 0;
}

/* Everything up to the position asked is durable (or cannot be made so):
 * send what waited for it. */
static void on_durable(void *arg, store_status_t st)
{
    http_server_t *s = arg;
    uint64_t upto = s->durable_asked;
    s->durable_asked = 0;
    while (!h2o_linklist_is_empty(&s->durable)) {
        deferred_t *d = H2O_STRUCT_FROM_MEMBER(deferred_t, link, s->durable.next);
        if (d->seq > upto)
            break;
        h2o_linklist_unlink(&d->link);
        http_unhold(d->a);
        if (st == STORE_OK)
            send_counted(d->a, d->status, d->body.base, d->body.len, d->ctype, 1);
        else
            http_error(d->a, 503, "the log could not be written or synced to disk, so this answer's "
                                  "changes were not made durable; try again later");
    }
    durable_ask(s);
}

/* Queues an answer until seq is durable. */
static void defer(route_args_t *a, uint64_t seq, int status, const char *body, size_t len, const char *ctype,
                  int owned)
{
    h2o_req_t *req = a->req;
    deferred_t *d = h2o_mem_alloc_shared(&req->pool, sizeof(*d), on_deferred_dispose);
    memset(&d->link, 0, sizeof(d->link));
    d->a = a;
    d->seq = seq;
    d->status = status;
    d->ctype = ctype;
    d->body = owned ? h2o_iovec_init(body, len) : h2o_strdup(&req->pool, body, len);
    http_hold(a);
    http_server_t *s = a->ctx->server;
    h2o_linklist_insert(&s->durable, &d->link);
    durable_ask(s);
}

size_t durable_waiting(const http_server_t *s)
{
    size_t n = 0;
    for (h2o_linklist_t *l = s->durable.next; l != &s->durable; l = l->next)
        n++;
    return n;
}

/* ---- answers ---- */

/* Answers at least this long are handed over rather than copied. */
#define RESPONSE_ADOPT_MIN (8 * 1024)
#define RESPONSE_BUFFER_KEEP (64 * 1024)

static void on_body_dispose(void *slot)
{
    free(*(char **)slot);
}

static void send_or_defer(route_args_t *a, uint64_t seq, int status, const char *body, size_t len, const char *ctype,
                          int owned)
{
    if (seq)
        defer(a, seq, status, body, len, ctype, owned);
    else
        send_counted(a, status, body, len, ctype, owned);
}

void http_respond(route_args_t *a, int status, jsonw_t *w, uint64_t durable_seq)
{
    if (w->len >= RESPONSE_ADOPT_MIN) {
        /* A large answer (a 1 000-event batch is ~190 kB, a 20 000-event
         * listing megabytes): the request's pool adopts the writer's
         * buffer, h2o writes from it and it is freed with the request;
         * the writer starts a new one. Copying it cost a memmove of
         * every byte. */
        size_t len;
        char **slot = h2o_mem_alloc_shared(&a->req->pool, sizeof(*slot), on_body_dispose);
        *slot = jsonw_steal(w, &len);
        jsonw_init(w, 4096);
        send_or_defer(a, durable_seq, status, *slot, len, JSON_TYPE, 1);
        return;
    }
    send_or_defer(a, durable_seq, status, w->buf, w->len, JSON_TYPE, 0);
    if (w->cap > RESPONSE_BUFFER_KEEP) { /* give back what a large answer grew */
        jsonw_free(w);
        jsonw_init(w, 4096);
    } else {
        jsonw_reset(w);
    }
}

void http_respond_bytes(route_args_t *a, int status, const char *content_type, const char *body, size_t len,
                        int copy)
{
    send_counted(a, status, body, len, content_type, !copy);
}

void http_respond_empty(route_args_t *a, int status, uint64_t durable_seq)
{
    send_or_defer(a, durable_seq, status, "", 0, NULL, 1);
}

/* Replaces every byte that does not start a valid UTF-8 sequence with
 * '?': messages may quote client bytes, and the answer must be JSON. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s, *end = p + strlen(s);
    while (p < end) {
        size_t len = utf8_len(p, (size_t)(end - p));
        if (!len) {
            *p++ = '?';
            continue;
        }
        p += len;
    }
}

/* {"error": msg} into w, msg made valid UTF-8. */
static void error_body(jsonw_t *w, char *msg)
{
    utf8_sanitize(msg);
    jsonw_init(w, 64 + strlen(msg));
    jsonw_obj_begin(w);
    jsonw_key(w, "error");
    jsonw_cstr(w, msg);
    jsonw_obj_end(w);
}

void http_error(route_args_t *a, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    jsonw_t w;
    error_body(&w, msg);
    send_counted(a, status, w.buf, w.len, JSON_TYPE, 0);
    jsonw_free(&w);
}

void http_error_full(route_args_t *a, const char *what, size_t limit)
{
    http_add_header(a->req, "retry-after", "1", 1);
    http_error(a, 429, "the server holds its limit of %zu %s; nothing was changed, try again later", limit, what);
}

/* ---- store results ---- */

int http_status_of(store_status_t st)
{
    static const int codes[] = {
        [STORE_OK] = 200,        [STORE_CREATED] = 201,  [STORE_REPLAYED] = 200,
        [STORE_NOT_FOUND] = 404, [STORE_GONE] = 410,     [STORE_CONFLICT] = 409,
        [STORE_INVALID] = 400,   [STORE_FULL] = 429,     [STORE_UNAVAILABLE] = 503,
    };
    return (unsigned)st < sizeof(codes) / sizeof(codes[0]) ? codes[st] : 500;
}

/* What a failure says when neither the store nor the handler has words. */
static const char *usual_sentence(store_status_t st)
{
    switch (st) {
    case STORE_NOT_FOUND: return "no such resource";
    case STORE_GONE: return "the event cannot be changed now";
    case STORE_CONFLICT: return "the request conflicts with the current state";
    case STORE_FULL: return "a limit of the server is reached; nothing was changed, try again later";
    case STORE_UNAVAILABLE:
        return "the change could not be written to the log, so it was not made; try again later";
    default: return "the request is not valid";
    }
}

void http_store_error(route_args_t *a, const store_res_t *res, const char *usual)
{
    if (res->status == STORE_FULL)
        http_add_header(a->req, "retry-after", "1", 1);
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", res->err ? res->err : usual ? usual : usual_sentence(res->status));
    /* A failure may tell of a change not yet durable (a 404 after a
     * DELETE in the same loop turn): it waits like a success would. */
    jsonw_t w;
    error_body(&w, msg);
    send_or_defer(a, res->durable_seq, http_status_of(res->status), w.buf, w.len, JSON_TYPE, 0);
    jsonw_free(&w);
}

/* ---- h2o's own errors (a body past its size limit, a broken request)
 * leave as JSON too: a filter swaps their plain-text body ---- */

typedef struct json_error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    int sent;
} json_error_ostream_t;

static void json_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t n,
                            h2o_send_state_t state)
{
    (void)bufs;
    (void)n;
    json_error_ostream_t *o = (json_error_ostream_t *)self;
    int first = !o->sent;
    o->sent = 1;
    h2o_ostream_send_next(self, req, first ? &o->body : NULL, first ? 1 : 0, state);
}

/* The Server header, first of the headers as h2o would write it from
 * server_name. h2o formats that one with a sprintf of its own (about 740
 * instructions a response); a header entry costs a small fraction. Every
 * response passes the filter below, ours and h2o's own errors alike. */
static void add_server_header(h2o_req_t *req)
{
    static h2o_iovec_t name = {H2O_STRLIT("Server")};
    h2o_headers_t *h = &req->res.headers;
    h2o_vector_reserve(&req->pool, h, h->size + 1);
    memmove(h->entries + 1, h->entries, h->size * sizeof(h->entries[0]));
    h->entries[0] = (h2o_header_t){&name, NULL, {H2O_STRLIT("distribuerad")}};
    h->size++;
}

static int is_json(h2o_req_t *req)
{
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    return ct >= 0 && h2o_memis(req->res.headers.entries[ct].value.base, 16, H2O_STRLIT("application/json"));
}

void http_response_filter(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    add_server_header(req);
    if (req->res.status >= 400 && !is_json(req)) {
        const char *msg = req->res.status == 413 ? "request body is larger than this server accepts"
                          : req->res.status == 400 ? "malformed HTTP request"
                                                   : req->res.reason;
        char buf[160];
        int len = snprintf(buf, sizeof(buf), "{\"error\":\"%s\"}", msg);
        json_error_ostream_t *o = (json_error_ostream_t *)h2o_add_ostream(req, sizeof(*o), slot);
        o->super.do_send = json_error_send;
        o->body = h2o_strdup(&req->pool, buf, (size_t)len);
        o->sent = 0;
        req->res.content_length = (size_t)len;
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/json"), 1);
        slot = &o->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}
