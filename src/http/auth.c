/*
 * auth.c -- who may ask (the bearer token) and what was answered (the
 * access log and the request counts of /metrics).
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "log.h"
#include "respond.h"
#include "server_int.h"

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

auth_result_t http_authorized(http_server_t *s, h2o_req_t *req)
{
    if (!s->auth_token || open_path(s, req) || static_open_path(req))
        return AUTH_OK;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0)
        return AUTH_MISSING;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len < 7 || strncasecmp(v.base, "bearer ", 7) != 0)
        return AUTH_NOT_BEARER;
    return same_secret(v.base + 7, v.len - 7, s->auth_token, s->auth_len) ? AUTH_OK : AUTH_WRONG;
}

void http_unauthorized(route_args_t *a, auth_result_t why)
{
    static const char challenge[] = "Bearer realm=\"distribuerad\"";
    http_add_header(a->req, "www-authenticate", challenge, sizeof(challenge) - 1);
    if (why == AUTH_MISSING)
        http_error(a, 401, "this server needs a bearer token: send Authorization: Bearer <token>");
    else if (why == AUTH_NOT_BEARER)
        http_error(a, 401, "the Authorization header is not a bearer token: send Authorization: Bearer <token>");
    else
        http_error(a, 401, "the bearer token is wrong: check the token the server was started with");
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
    log_access_t la = {.peer = peer, .method = req->method.base, .method_len = req->method.len, .path = path,
                       .status = req->res.status, .duration_ns = started ? now - started : 0,
                       .bytes = req->res.content_length == SIZE_MAX ? 0 : req->res.content_length};
    log_access(&la);
}

void http_finished(route_args_t *a)
{
    store_t *st = a->ctx->store;
    ntime_t now = st->ops->now(st);
    /* Parked requests stay out of the latency histogram: their wait is
     * the client's choice. */
    metrics_observe(a->route, a->req->res.status, a->parked ? 0 : a->started, now);
    if (a->ctx->server->access_log)
        access_line(a->req, a->started, now);
}
