/*
 * server.c -- h2o glue: the listener, the loop, signals, and responses.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <poll.h>
#include "base/utf8.h"
#include "base/util.h"
#include "handlers.h"
#include "log.h"
#include "router.h"

/* An answer waiting for the fsync that covers the log up to `offset`. */
typedef struct deferred {
    struct deferred *prev, *next;
    h2o_req_t *req;
    uint64_t offset;
    int route;                 /* for metrics, counted when it is sent */
    ntime_t started;
    int status;
    int json;
    h2o_iovec_t body;
} deferred_t;

struct http_server {
    h2o_globalconf_t config;
    h2o_socket_t *sync_sock;   /* the log's eventfd: an fsync finished */
    deferred_t *dhead, *dtail; /* answers waiting for fsync, oldest first */
    uint64_t sends;            /* answers handed to h2o, ever */
    int cur_route;             /* the request being handled, for defer() */
    int access_log;            /* a line per answered request */
    int fsync_failed_logged;   /* the fsync failure is logged; waiting for recovery */
    ntime_t cur_started;
    size_t nconns;             /* open client connections */
    ntime_t probe_at;          /* last write probe while the log was failing */
    int accept_paused;         /* out of descriptors: listener not watched */
    ntime_t full_logged_at;    /* last "too many connections" log line */
    const char *auth_token;    /* NULL: no authentication */
    size_t auth_len;
    int metrics_open;
    SSL_CTX *ssl_ctx;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_socket_t *wakeup;      /* read end of the self-pipe signals write to */
    int wakeup_fds[2];
    h2o_socket_t *deadline;    /* timerfd armed at the core's next deadline */
    ntime_t armed_at;          /* what it is armed at; NTIME_MAX: disarmed */
    volatile sig_atomic_t stop;
    http_ctx_t hctx;
};

typedef struct dr_handler {
    h2o_handler_t super;
    http_server_t *server;
} dr_handler_t;

static http_server_t *signal_target;
static http_server_t *current; /* one server per process: for http_respond */

ntime_t http_now(void)
{
    /* Never backwards: a wall-clock step back would otherwise log a change
     * stamped before one already applied, which replay could not follow.
     * After a step back the server's time stands still until the clock
     * catches up. */
    static ntime_t last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ntime_t t = (ntime_t)ts.tv_sec * NTIME_NS_PER_S + ts.tv_nsec;
    if (t < last)
        return last;
    return last = t;
}

/* ---- responses: the one way out ---- */

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

/* Sends a whole answer. owned: body lives as long as the request (it is
 * in the request's pool), so h2o writes it from there; else it is copied
 * into the pool first, as h2o_send_inline does. */
static void send_body(h2o_req_t *req, int status, const char *body, size_t len, int json, int owned)
{
    static h2o_generator_t generator = {NULL, NULL}; /* final at once: never called */
    req->res.status = status;
    req->res.reason = reason_of(status);
    if (json)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/json"));
    /* Without a length h2o would chunk a 200 and close the connection
     * after any other status. */
    req->res.content_length = len;
    h2o_iovec_t buf = owned ? h2o_iovec_init(body, len) : h2o_strdup(&req->pool, body, len);
    h2o_start_response(req, &generator);
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
    if (current)
        current->sends++;
}

static void deferred_unlink(http_server_t *s, deferred_t *d)
{
    if (!d->req)
        return;
    if (d->prev)
        d->prev->next = d->next;
    else
        s->dhead = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        s->dtail = d->prev;
    d->req = NULL;
}

static void on_deferred_dispose(void *p)
{
    if (current)
        deferred_unlink(current, p);
}

/* With -fsync always and something not yet on disk, queues the answer and
 * returns 1; else returns 0 and the caller sends it now. */
static int defer(h2o_req_t *req, int status, const char *body, size_t len, int json, int owned)
{
    http_server_t *s = current;
    wal_t *wal = s ? s->hctx.wal : NULL;
    if (!wal || wal_fsync_mode(wal) != WAL_FSYNC_ALWAYS || wal_synced(wal) >= wal_written(wal))
        return 0;
    deferred_t *d = h2o_mem_alloc_shared(&req->pool, sizeof(*d), on_deferred_dispose);
    d->req = req;
    d->offset = wal_written(wal);
    d->route = s->cur_route;
    d->started = s->cur_started;
    d->status = status;
    d->json = json;
    d->body = owned ? h2o_iovec_init(body, len) : h2o_strdup(&req->pool, body, len);
    d->next = NULL;
    d->prev = s->dtail;
    if (s->dtail)
        s->dtail->next = d;
    else
        s->dhead = d;
    s->dtail = d;
    return 1;
}

/* Sends the answers whose log records are now on disk. */
static void on_synced(h2o_socket_t *sock, const char *err)
{
    (void)err;
    http_server_t *s = sock->data;
    uint64_t n;
    while (read(wal_sync_fd(s->hctx.wal), &n, sizeof(n)) > 0)
        ;
    uint64_t synced = wal_synced(s->hctx.wal);
    int failing = wal_failing(s->hctx.wal);
    if (failing && !s->fsync_failed_logged) {
        log_error("syncing the log to disk failed; answers that wait for it get 503 until it works again");
        s->fsync_failed_logged = 1;
    } else if (!failing && s->fsync_failed_logged) {
        log_info("syncing the log to disk works again");
        s->fsync_failed_logged = 0;
    }
    while (s->dhead && (s->dhead->offset <= synced || failing)) {
        deferred_t *d = s->dhead;
        h2o_req_t *req = d->req;
        deferred_unlink(s, d);
        if (d->offset <= synced)
            send_body(req, d->status, d->body.base, d->body.len, d->json, 1);
        else
            http_error(req, 503, "the change was written but the log could not be synced to disk");
        http_finished(req, d->route, d->started, 0);
    }
}

/* Answers at least this long are handed over rather than copied. */
#define RESPONSE_ADOPT_MIN (8 * 1024)
#define RESPONSE_BUFFER_KEEP (64 * 1024)

static void on_body_dispose(void *slot)
{
    free(*(char **)slot);
}

void http_respond(h2o_req_t *req, int status, jsonw_t *w)
{
    if (w->len >= RESPONSE_ADOPT_MIN) {
        /* A large answer (a 1 000-event batch is ~190 kB, a 20 000-event
         * listing megabytes): the request's pool adopts the writer's
         * buffer, h2o writes from it and it is freed with the request;
         * the writer starts a new one. Copying it cost a memmove of
         * every byte. */
        size_t len;
        char **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_body_dispose);
        *slot = jsonw_steal(w, &len);
        jsonw_init(w, 4096);
        if (!defer(req, status, *slot, len, 1, 1))
            send_body(req, status, *slot, len, 1, 1);
        return;
    }
    if (!defer(req, status, w->buf, w->len, 1, 0))
        send_body(req, status, w->buf, w->len, 1, 0);
    if (w->cap > RESPONSE_BUFFER_KEEP) { /* give back what a large answer grew */
        jsonw_free(w);
        jsonw_init(w, 4096);
    } else {
        jsonw_reset(w);
    }
}

void http_respond_empty(h2o_req_t *req, int status)
{
    if (!defer(req, status, "", 0, 0, 1))
        send_body(req, status, "", 0, 0, 1);
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

void http_error(h2o_req_t *req, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_sanitize(msg);
    jsonw_t w;
    jsonw_init(&w, 64 + strlen(msg));
    jsonw_obj_begin(&w);
    jsonw_key(&w, "error");
    jsonw_cstr(&w, msg);
    jsonw_obj_end(&w);
    send_body(req, status, w.buf, w.len, 1, 0);
    jsonw_free(&w);
}

void http_error_full(h2o_req_t *req, const char *what, size_t limit)
{
    http_add_header(req, "retry-after", "1", 1);
    http_error(req, 429, "the server holds its limit of %zu %s; nothing was changed, try again later",
               limit, what);
}

/* One access-log line: peer, method, path, status, time, bytes. The
 * path is the only client text in it, cut and with unprintable bytes
 * escaped; bodies, event data and tokens never appear. */
static void access_line(h2o_req_t *req, ntime_t started, ntime_t now)
{
    char peer[64] = "-", path[256];
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl)
        getnameinfo((struct sockaddr *)&ss, sl, peer, sizeof(peer), NULL, 0, NI_NUMERICHOST);
    size_t n = 0;
    for (size_t i = 0; i < req->path.len && n + 5 < sizeof(path); i++) {
        unsigned char c = (unsigned char)req->path.base[i];
        n += (size_t)(c > 0x20 && c < 0x7f && c != '"' ? snprintf(path + n, 2, "%c", c)
                                                       : snprintf(path + n, 5, "\\x%02x", c));
    }
    path[n] = '\0';
    log_info("access %s \"%.*s %s\" %d %.3fms %zu", peer, (int)(req->method.len < 16 ? req->method.len : 16),
             req->method.base, path, req->res.status, started ? (double)(now - started) / 1e6 : 0.0,
             req->res.content_length == SIZE_MAX ? 0 : req->res.content_length);
}

void http_finished(h2o_req_t *req, int route, ntime_t started, int parked)
{
    ntime_t now = http_now();
    /* Parked requests stay out of the latency histogram: their wait is
     * the client's choice. */
    metrics_observe(route, req->res.status, parked ? 0 : started, now);
    if (current && current->access_log)
        access_line(req, started, now);
}

void http_set_route(int route)
{
    if (current)
        current->cur_route = route;
}

void http_error_io(h2o_req_t *req)
{
    http_error(req, 503, "the change could not be written to the log, so it was not made; try again later");
}

/* ---- requests ---- */

/* ---- authentication ---- */

/* Compares in time that depends only on the lengths, not on where the
 * first difference is. */
static int same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < blen; i++)
        diff |= (unsigned char)(b[i] ^ (i < alen ? a[i] : 0));
    return diff == 0;
}

/* Probes and (if asked) metrics stay open, so Kubernetes needs no token. */
static int open_path(http_server_t *s, h2o_req_t *req)
{
    h2o_iovec_t p = req->path;
    if (req->query_at != SIZE_MAX)
        p.len = req->query_at;
    if (p.len > 1 && p.base[p.len - 1] == '/')
        p.len--;
    return h2o_memis(p.base, p.len, H2O_STRLIT("/healthz")) || h2o_memis(p.base, p.len, H2O_STRLIT("/readyz")) ||
           (s->metrics_open && h2o_memis(p.base, p.len, H2O_STRLIT("/metrics")));
}

static int authorized(http_server_t *s, h2o_req_t *req)
{
    if (!s->auth_token || open_path(s, req) || static_open_path(req))
        return 1;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len < 7 || strncasecmp(v.base, "bearer ", 7) != 0)
        return 0;
    return same_secret(v.base + 7, v.len - 7, s->auth_token, s->auth_len);
}

/* Only reads need the check (they may render megabytes); a change is
 * made whether or not its answer arrives. */
static int client_hung_up(h2o_req_t *req)
{
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        return 0;
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (!sock)
        return 0;
    struct pollfd pfd = {.fd = h2o_socket_get_fd(sock), .events = 0};
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    http_server_t *s = ((dr_handler_t *)self)->server;
    ntime_t started = http_now();
    if (!authorized(s, req)) {
        static const char challenge[] = "Bearer realm=\"distribuerad\"";
        http_add_header(req, "www-authenticate", challenge, sizeof(challenge) - 1);
        http_error(req, 401, "this server needs a bearer token: send Authorization: Bearer <token>");
        http_finished(req, -1, started, 0);
        return 0;
    }
    if (client_hung_up(req)) {
        /* A client that pipelined requests and left: do not render the
         * rest of its queue for nobody. A tiny answer lets h2o find the
         * closed socket and drop the connection. */
        req->http1_is_persistent = 0;
        http_respond_empty(req, 204);
        return 0;
    }
    s->cur_route = -1;
    s->cur_started = started;
    int route = router_dispatch(req, &s->hctx);
    /* Whatever the handler changed may have freed events for parked
     * acquirers (an UNLOCK, a publish). */
    acquire_serve_waiters(&s->hctx);
    if (req->res.status)
        http_finished(req, route, started, 0);
    return 0;
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

static void json_error_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
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

/* ---- listener ---- */

static void on_accept(h2o_socket_t *listener, const char *err);

static void on_conn_close(void *data)
{
    http_server_t *s = data;
    s->nconns--;
    if (s->accept_paused && s->listener) {
        s->accept_paused = 0;
        h2o_socket_read_start(s->listener, on_accept);
    }
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    http_server_t *s = listener->data;
    if (err != NULL)
        return;
    /* Drain the backlog: accept until there is nothing left. */
    for (int i = 0; i < 64; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: the listener stays readable, so stop
                 * watching it until a connection closes, instead of
                 * spinning. */
                log_warn("out of file descriptors with %zu connections open; pausing accept", s->nconns);
                h2o_socket_read_stop(listener);
                s->accept_paused = 1;
            }
            break;
        }
        if (s->nconns >= s->hctx.limits->max_connections) {
            /* Past the limit a connection is closed at once: cheaper than
             * an answer, and the client's retry finds room later. */
            ntime_t now = http_now();
            if (now - s->full_logged_at > 10 * NTIME_NS_PER_S) {
                log_warn("refusing connections: %zu open, the limit", s->nconns);
                s->full_logged_at = now;
            }
            h2o_socket_close(sock);
            continue;
        }
        s->nconns++;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = s;
        h2o_accept(&s->accept_ctx, sock);
    }
}

/* ---- TLS ---- */

static SSL_CTX *tls_context(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        unsigned long e = ERR_peek_last_error();
        log_error("cannot load the TLS certificate %s: %s", cert,
                  ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "PEM expected");
        goto error;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            log_error("the TLS key %s does not match the certificate %s", key, cert);
        else
            log_error("cannot load the TLS key %s: %s", key, ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "PEM expected");
        goto error;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_error("the TLS key %s does not match the certificate %s", key, cert);
        goto error;
    }
    return ctx;
error:
    SSL_CTX_free(ctx);
    return NULL;
}

static int listen_on(const char *address, int port, char *bound, size_t boundlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(address, portstr, &hints, &res);
    if (rc != 0) {
        log_error("cannot resolve listen address %s: %s", address, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        log_error("cannot listen on %s port %d: %s", address, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(bound, boundlen, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
    return fd;
}

/* ---- signals: a self-pipe, so a signal that lands just before the loop
 * goes to sleep still wakes it ---- */

static void on_signal(int sig)
{
    (void)sig;
    if (signal_target) {
        int saved = errno;
        signal_target->stop = 1;
        ssize_t r = write(signal_target->wakeup_fds[1], "x", 1);
        (void)r;
        errno = saved;
    }
}

static void on_wakeup(h2o_socket_t *sock, const char *err)
{
    (void)err;
    http_server_t *s = sock->data;
    char buf[64];
    while (read(s->wakeup_fds[0], buf, sizeof(buf)) > 0)
        ;
}

/* The core's deadlines wake the loop through a timerfd, to the
 * nanosecond: h2o's loop can only sleep whole milliseconds, and rounding
 * up to them made every job fire up to 1 ms late. */
static void on_deadline(h2o_socket_t *sock, const char *err)
{
    (void)err;
    http_server_t *s = sock->data;
    uint64_t expirations;
    if (read(h2o_socket_get_fd(sock), &expirations, sizeof(expirations)) == sizeof(expirations))
        s->armed_at = NTIME_MAX; /* one-shot: it has disarmed itself */
}

/* Deadlines this close after the earliest share its wake-up (the earliest
 * then runs up to this late): a burst of jobs created together costs one
 * wake-up a burst, while a lone deadline is met to the microsecond. */
#define DEADLINE_COALESCE_NS (1 * NTIME_NS_PER_MS)

/* Arms the timerfd at `at` (NTIME_MAX: disarms it), with no system call
 * when it is already armed there. Returns 0, or -1 if the kernel refused. */
static int arm_deadline(http_server_t *s, ntime_t at)
{
    if (at == s->armed_at)
        return 0;
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (at != NTIME_MAX) {
        if (at < 1)
            at = 1; /* an all-zero it_value would disarm */
        its.it_value.tv_sec = (time_t)(at / NTIME_NS_PER_S);
        its.it_value.tv_nsec = (long)(at % NTIME_NS_PER_S);
    }
    if (timerfd_settime(h2o_socket_get_fd(s->deadline), TFD_TIMER_ABSTIME, &its, NULL) != 0)
        return -1;
    s->armed_at = at;
    return 0;
}

void http_server_stop(http_server_t *s)
{
    on_signal(0);
    (void)s;
}

static void user_timer(tnode_t *node, ntime_t now, void *arg);

http_server_t *http_server_new(const http_config_t *cfg, core_t *core)
{
    http_server_t *s = xcalloc(1, sizeof(*s));
    if (cfg->tls_cert && !(s->ssl_ctx = tls_context(cfg->tls_cert, cfg->tls_key))) {
        free(s);
        return NULL;
    }
    char bound[NI_MAXHOST + NI_MAXSERV + 4];
    int fd = listen_on(cfg->address, cfg->port, bound, sizeof(bound));
    if (fd < 0) {
        if (s->ssl_ctx)
            SSL_CTX_free(s->ssl_ctx);
        free(s);
        return NULL;
    }
    if (pipe2(s->wakeup_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_error("cannot create the signal pipe: %s", strerror(errno));
        close(fd);
        free(s);
        return NULL;
    }
    /* CLOCK_REALTIME, like every instant in the core: a deadline is a wall
     * time, and the kernel keeps an absolute timer right across clock
     * steps. */
    int tfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) {
        log_error("cannot create the deadline timer: %s", strerror(errno));
        close(s->wakeup_fds[0]);
        close(s->wakeup_fds[1]);
        close(fd);
        free(s);
        return NULL;
    }
    h2o_config_init(&s->config);
    /* No server_name: add_server_header writes the same bytes for less. */
    s->config.server_name = h2o_iovec_init(NULL, 0);
    /* h2o refuses bodies past this itself (plain-text 413); keep it above
     * our limit so ordinary over-size bodies get our JSON 413. */
    s->config.max_request_entity_size = cfg->limits.max_body * 2 + 4096;
    /* Time to receive a request (a slow-loris client is cut off after it)
     * and to keep an idle connection. */
    s->config.http1.req_timeout = cfg->limits.request_timeout_ms;
    s->config.handshake_timeout = cfg->limits.request_timeout_ms;
    /* HTTP/1.1 only: h2o's HTTP/2 on a plain port (h2c) would not apply
     * the request timeout. */
    s->config.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_create_filter(&host->fallback_path, sizeof(h2o_filter_t))->on_setup_ostream = json_error_setup;
    h2o_create_filter(path, sizeof(h2o_filter_t))->on_setup_ostream = json_error_setup;
    dr_handler_t *h = (dr_handler_t *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->server = s;

    h2o_context_init(&s->ctx, h2o_evloop_create(), &s->config);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;
    s->accept_ctx.ssl_ctx = s->ssl_ctx;
    s->auth_token = cfg->auth_token;
    s->auth_len = cfg->auth_token ? strlen(cfg->auth_token) : 0;
    s->metrics_open = cfg->metrics_open;
    s->access_log = cfg->access_log;
    s->listener = h2o_evloop_socket_create(s->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    s->listener->data = s;
    h2o_socket_read_start(s->listener, on_accept);
    s->wakeup = h2o_evloop_socket_create(s->ctx.loop, s->wakeup_fds[0], H2O_SOCKET_FLAG_DONT_READ);
    s->wakeup->data = s;
    h2o_socket_read_start(s->wakeup, on_wakeup);
    s->deadline = h2o_evloop_socket_create(s->ctx.loop, tfd, H2O_SOCKET_FLAG_DONT_READ);
    s->deadline->data = s;
    s->armed_at = NTIME_MAX;
    h2o_socket_read_start(s->deadline, on_deadline);

    s->hctx.server = s;
    s->hctx.core = core;
    s->hctx.limits = &cfg->limits;
    s->hctx.ready = 1;
    s->hctx.wal = cfg->wal;
    jsonw_init(&s->hctx.out, 4096);
    if (cfg->wal) {
        /* h2o closes the fd it watches: give it a duplicate, the log
         * keeps (and closes) its own. */
        s->sync_sock = h2o_evloop_socket_create(s->ctx.loop, fcntl(wal_sync_fd(cfg->wal), F_DUPFD_CLOEXEC, 0),
                                                H2O_SOCKET_FLAG_DONT_READ);
        s->sync_sock->data = s;
        h2o_socket_read_start(s->sync_sock, on_synced);
    }
    current = s;
    core_set_timer_fn(core, user_timer, &s->hctx);

    signal_target = s;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_info("listening on %s://%s%s", s->ssl_ctx ? "https" : "http", bound,
             cfg->auth_token ? " (bearer token required)" : "");
    return s;
}

static void user_timer(tnode_t *node, ntime_t now, void *arg)
{
    acquire_on_timeout(arg, node, now);
}

/* One loop turn: run what is due, serve who can be served, then sleep
 * until the next deadline (or max_ms) or a socket event. */
static void turn(http_server_t *s, int32_t max_ms)
{
    ntime_t now = http_now();
    uint64_t sends = s->sends;
    core_tick(s->hctx.core, now);
    acquire_serve_waiters(&s->hctx);
    if (s->hctx.wal)
        wal_maybe_rewrite(s->hctx.wal, s->hctx.core, now, 0);
    /* An answer sent from here, outside h2o's callbacks, completes (and
     * lets its connection read the next request) only in h2o's next turn:
     * that turn must not sleep. */
    if (s->hctx.wal && wal_failing(s->hctx.wal)) {
        /* Find out without a client's change whether the log can be
         * written again, so /readyz recovers by itself: once a second, a
         * page-sized record that changes nothing. */
        if (!s->probe_at)
            s->probe_at = now;
        if (now - s->probe_at >= NTIME_NS_PER_S) {
            s->probe_at = now;
            core_log_probe(s->hctx.core, now);
        }
        if (max_ms < 0 || max_ms > 1000)
            max_ms = 1000;
    } else {
        s->probe_at = 0;
    }
    if (s->hctx.wal && wal_rewrite_running(s->hctx.wal) && (max_ms < 0 || max_ms > 100))
        max_ms = 100; /* look at the rewrite's child again soon */
    int32_t wait = max_ms < 0 ? INT32_MAX : max_ms;
    ntime_t next = core_next_at(s->hctx.core, DEADLINE_COALESCE_NS);
    if (s->sends != sends || next <= now)
        wait = 0;
    else if (arm_deadline(s, next) != 0 && next != NTIME_MAX)
        wait = core_wait_ms(s->hctx.core, now, max_ms); /* whole milliseconds, then */
    /* else: sleeps until the timerfd, a socket, or max_ms */
    h2o_evloop_run(s->ctx.loop, wait);
}

static int shutdown_conn(h2o_req_t *req, void *arg)
{
    (void)arg;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock)
        shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
    return 0;
}

int http_server_run(http_server_t *s)
{
    while (!s->stop)
        turn(s, -1);
    log_info("stopping: no new connections, answering parked requests");
    h2o_socket_read_stop(s->listener);
    h2o_socket_close(s->listener);
    s->listener = NULL;
    s->ctx.shutdown_requested = 1; /* answers from now on close their connection */
    acquire_release_all(&s->hctx);
    /* Requests in flight finish and their answers (some waiting for an
     * fsync) drain for a moment; then idle keep-alive connections are
     * shut so h2o closes them itself. */
    ntime_t until = http_now() + 300 * NTIME_NS_PER_MS;
    while (http_now() < until && (s->dhead || http_now() < until - 200 * NTIME_NS_PER_MS))
        turn(s, 20);
    s->config.http1.callbacks.foreach_request(&s->ctx, shutdown_conn, NULL);
    until = http_now() + 1000 * NTIME_NS_PER_MS;
    while (http_now() < until && !h2o_linklist_is_empty(&s->ctx.http1._conns))
        turn(s, 20);
    return 0;
}

void http_server_free(http_server_t *s)
{
    if (!s)
        return;
    signal_target = NULL;
    current = NULL;
    if (s->sync_sock) {
        h2o_socket_read_stop(s->sync_sock);
        h2o_socket_close(s->sync_sock);
    }
    if (s->listener)
        h2o_socket_close(s->listener);
    h2o_socket_read_stop(s->wakeup);
    h2o_socket_close(s->wakeup);
    h2o_socket_read_stop(s->deadline);
    h2o_socket_close(s->deadline);
    close(s->wakeup_fds[1]);
    h2o_evloop_run(s->ctx.loop, 0);
    /* h2o cannot dispose a context with connections still open; a client
     * that ignored the shutdown keeps its memory until exit. */
    if (h2o_linklist_is_empty(&s->ctx.http1._conns)) {
        h2o_multithread_queue_t *queue = s->ctx.queue;
        h2o_context_dispose(&s->ctx);
        /* h2o 2.2's evloop build closes the queue's sockets but never frees
         * the queue itself. */
        free(queue);
        h2o_evloop_destroy(s->ctx.loop);
    }
    h2o_config_dispose(&s->config);
    jsonw_free(&s->hctx.out);
    if (s->ssl_ctx)
        SSL_CTX_free(s->ssl_ctx);
    free(s);
}
