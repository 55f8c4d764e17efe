/*
 * h_static.c -- the compiled-in files: GET /openapi.json, GET /ui (the
 * dashboard's page) and GET /ui/assets/<name> (its script and style).
 *
 * These routes hold no data, so they are served without the token; the
 * page itself asks for the token when the API answers 401. Every answer
 * carries a Content-Security-Policy that allows scripts, styles and
 * requests only from this server and no inline script at all, so text a
 * user wrote can never run as code even if it reached the page as HTML.
 */
#include <string.h>
#include "assets.h"
#include "handlers.h"
#include "respond.h"

static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static void send_asset(route_args_t *a, const asset_t *as)
{
    h2o_req_t *req = a->req;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    http_add_header(req, "x-content-type-options", "nosniff", sizeof("nosniff") - 1);
    http_add_header(req, "content-security-policy", csp, sizeof(csp) - 1);
    http_add_header(req, "referrer-policy", "no-referrer", sizeof("no-referrer") - 1);
    /* The bytes are static: h2o writes them from where they are. */
    http_respond_bytes(a, 200, as->type, (const char *)as->data, as->len, 0);
}

static void serve(route_args_t *a, const char *name, size_t len)
{
    const asset_t *as = assets_find(name, len);
    if (!as) {
        http_error(a, 404, "no such resource");
        return;
    }
    send_asset(a, as);
}

void handle_openapi(route_args_t *a)
{
    serve(a, H2O_STRLIT("openapi.json"));
}

void handle_ui(route_args_t *a)
{
    serve(a, H2O_STRLIT("index.html"));
}

void handle_ui_asset(route_args_t *a)
{
    serve(a, a->param, a->param_len);
}

int static_open_path(h2o_req_t *req)
{
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        return 0;
    h2o_iovec_t p = req->path;
    if (req->query_at != SIZE_MAX)
        p.len = req->query_at;
    if (p.len > 1 && p.base[p.len - 1] == '/')
        p.len--;
    static const char assets_prefix[] = "/ui/assets/";
    return h2o_memis(p.base, p.len, H2O_STRLIT("/openapi.json")) || h2o_memis(p.base, p.len, H2O_STRLIT("/ui")) ||
           (p.len > sizeof(assets_prefix) - 1 &&
            memcmp(p.base, assets_prefix, sizeof(assets_prefix) - 1) == 0);
}
