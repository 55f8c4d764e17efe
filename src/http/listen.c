/*
 * listen.c -- the listening socket, TLS and accepting (see listen.h).
 */
#include "listen.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include "badreq.h"
#include "log.h"

static void on_accept(h2o_socket_t *listener, const char *err);

static void on_conn_close(void *data)
{
    sr_conn_t *c = data;
    http_server_t *s = c->owner;
    slowread_conn_free(&s->slow, c);
    s->nconns--;
    if (s->accept_paused && s->listener) {
        s->accept_paused = 0;
        h2o_socket_read_start(s->listener, on_accept);
    }
}

/* Serves sock, or closes it at once past the connection limit: cheaper
 * than an answer, and the client's retry finds room later. */
static void accept_one(http_server_t *s, h2o_socket_t *sock)
{
    if (s->nconns >= s->hctx.limits->max_connections) {
        store_t *st = s->hctx.store;
        ntime_t now = st->ops->now(st);
        if (now - s->full_logged_at > 10 * NTIME_NS_PER_S) {
            log_warn("refusing connections: %zu open, the limit", s->nconns);
            s->full_logged_at = now;
        }
        h2o_socket_close(sock);
        return;
    }
    s->nconns++;
    sock->on_close.cb = on_conn_close;
    sock->on_close.data = slowread_conn_new(sock, s);
    h2o_accept(&s->accept_ctx, sock);
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
        accept_one(s, sock);
    }
}

void http_server_adopt(http_server_t *s, int fd)
{
    accept_one(s, h2o_evloop_socket_create(s->ctx.loop, fd, 0));
}

size_t http_server_connections(const http_server_t *s)
{
    return s->nconns;
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

int listen_start(http_server_t *s, const http_config_t *cfg, char *bound, size_t boundlen)
{
    if (cfg->tls_cert && !(s->ssl_ctx = tls_context(cfg->tls_cert, cfg->tls_key)))
        return -1;
    s->listen_fd = listen_on(cfg->address, cfg->port, bound, boundlen);
    if (s->listen_fd < 0) {
        listen_free(s);
        return -1;
    }
    return 0;
}

void listen_accept_start(http_server_t *s)
{
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;
    s->accept_ctx.ssl_ctx = s->ssl_ctx;
    char why[160];
    if (badreq_selfcheck(&s->ctx, s->config.hosts, why, sizeof(why)) != 0)
        log_error("malformed requests will get h2o's plain-text 400, not JSON: %s", why);
    s->listener = h2o_evloop_socket_create(s->ctx.loop, s->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    s->listen_fd = -1; /* the listener's now */
    s->listener->data = s;
    h2o_socket_read_start(s->listener, on_accept);
}

void listen_stop(http_server_t *s)
{
    if (s->listener) {
        h2o_socket_read_stop(s->listener);
        h2o_socket_close(s->listener);
        s->listener = NULL;
    }
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
    }
}

void listen_free(http_server_t *s)
{
    if (s->ssl_ctx)
        SSL_CTX_free(s->ssl_ctx);
    s->ssl_ctx = NULL;
}
