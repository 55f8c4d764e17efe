/*
 * router.c -- the route table and its matcher.
 *
 * Table key:
 *   path    segments; "{c}" is a channel name, "{p}" an event id or job
 *           name, anything else a literal. Fixed top-level routes come first
 *           so GET /channels is the listing, not the channel "channels".
 *   method  the one method the row answers
 *   handler what runs
 */
#include "router.h"

#include <stdio.h>
#include <string.h>
#include "base/utf8.h"
#include "base/util.h"
#include "respond.h"

typedef struct route {
    const char *path;
    const char *method;
    handler_fn handler;
} route_t;

static const route_t routes[] = {
    {"/channels", "GET", handle_channels},
    {"/healthz", "GET", handle_healthz},
    {"/readyz", "GET", handle_readyz},
    {"/metrics", "GET", handle_metrics},
    {"/openapi.json", "GET", handle_openapi},
    {"/ui", "GET", handle_ui},
    {"/ui/assets/{p}", "GET", handle_ui_asset},
    {"/{c}", "GET", handle_channel_stats},
    {"/{c}", "DELETE", handle_channel_delete},
    {"/{c}/events", "GET", handle_events_list},
    {"/{c}/events", "POST", handle_publish},
    {"/{c}/events/{p}", "GET", handle_event_get},
    {"/{c}/events/{p}", "PUT", handle_event_update},
    {"/{c}/events/{p}", "PATCH", handle_event_update},
    {"/{c}/events/{p}", "DELETE", handle_event_delete},
    {"/{c}/jobs", "GET", handle_jobs_list},
    {"/{c}/jobs", "POST", handle_job_add},
    {"/{c}/jobs/{p}", "GET", handle_job_get},
    {"/{c}/jobs/{p}", "PUT", handle_job_put},
    {"/{c}/jobs/{p}", "DELETE", handle_job_delete},
    {"/{c}/jobs/{p}/pause", "POST", handle_job_pause},
    {"/{c}/jobs/{p}/resume", "POST", handle_job_resume},
    {"/{c}/jobs/{p}/trigger", "POST", handle_job_trigger},
    {"/{c}/acquire", "POST", handle_acquire},
    {"/{c}/settings", "GET", handle_settings_get},
    {"/{c}/settings", "PUT", handle_settings_put},
    {"/{c}/redrive", "POST", handle_redrive},
    {"/{c}/purge", "POST", handle_purge},
};
#define NROUTES (int)(sizeof(routes) / sizeof(routes[0]))
#define MAX_SEGS 4

/* A row of the table split once, at the first request, so matching
 * compares lengths and bytes instead of re-scanning the path patterns
 * with strchr/strlen for every row of every request. */
typedef struct shape {
    int nsegs;
    h2o_iovec_t seg[MAX_SEGS]; /* a literal segment; base NULL for {c} or {p} */
    size_t method_len;
    int has_channel;           /* the first segment is {c} */
    int same_as_prev;          /* the path of the row above: its match holds */
} shape_t;

static shape_t shapes[NROUTES];

static void shapes_init(void)
{
    for (int i = 0; i < NROUTES; i++) {
        shape_t *sh = &shapes[i];
        const char *p = routes[i].path;
        ASSERT(*p == '/');
        while (*p == '/') {
            p++;
            size_t len = strcspn(p, "/");
            ASSERT(len > 0 && sh->nsegs < MAX_SEGS);
            sh->seg[sh->nsegs++] = h2o_iovec_init(p[0] == '{' ? NULL : p, len);
            p += len;
        }
        sh->method_len = strlen(routes[i].method);
        sh->has_channel = routes[i].path[1] == '{' && routes[i].path[2] == 'c';
        sh->same_as_prev = i > 0 && strcmp(routes[i].path, routes[i - 1].path) == 0;
    }
}

int router_route_count(void)
{
    return NROUTES;
}

const char *router_route_label(int route)
{
    static char labels[NROUTES + 1][48];
    if (route < 0 || route >= NROUTES)
        return "other";
    if (!labels[route][0])
        snprintf(labels[route], sizeof(labels[route]), "%s %s", routes[route].method,
                 routes[route].path);
    return labels[route];
}

/* The table's paths for a 404, each once, in the words of the API:
 * "/channels, ..., /{channel}/events/{id}, ...". Built at the first use. */
static const char *route_list(void)
{
    static char list[1024];
    if (list[0])
        return list;
    size_t n = 0;
    for (int i = 0; i < NROUTES; i++) {
        if (i > 0 && strcmp(routes[i].path, routes[i - 1].path) == 0)
            continue;
        char path[96];
        size_t k = 0;
        for (const char *p = routes[i].path; *p && k + 16 < sizeof(path); p++) {
            const char *word = NULL;
            if (!strncmp(p, "{c}", 3))
                word = "{channel}";
            else if (!strncmp(p, "{p}", 3))
                word = p >= routes[i].path + 7 && !strncmp(p - 7, "events/", 7) ? "{id}" : "{name}";
            if (word) {
                k += (size_t)snprintf(path + k, sizeof(path) - k, "%s", word);
                p += 2;
            } else {
                path[k++] = *p;
            }
        }
        path[k] = '\0';
        int w = snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "", path);
        if (w < 0 || (size_t)w >= sizeof(list) - n)
            break;
        n += (size_t)w;
    }
    return list;
}

/* Splits path (no query) into at most MAX_SEGS segments. Returns the count,
 * or -1 if there are more or one is empty. */
static int split(h2o_iovec_t path, h2o_iovec_t segs[MAX_SEGS])
{
    const char *p = path.base, *end = path.base + path.len;
    if (p == end || *p != '/')
        return -1;
    p++;
    if (end > p && end[-1] == '/')
        end--; /* one trailing slash is the same resource */
    if (p == end)
        return -1;
    int n = 0;
    while (p <= end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash ? slash : end;
        if (stop == p || n == MAX_SEGS)
            return -1;
        segs[n++] = h2o_iovec_init(p, (size_t)(stop - p));
        p = stop + 1;
    }
    return n;
}

/* Does the route's shape match the segments? */
static int shape_matches(const shape_t *sh, const h2o_iovec_t *segs, int n)
{
    if (sh->nsegs != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (sh->seg[i].base &&
            !(segs[i].len == sh->seg[i].len && memcmp(segs[i].base, sh->seg[i].base, segs[i].len) == 0))
            return 0;
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Length of the valid UTF-8 sequence at s (of n bytes) that is not a
 * control character, or 0. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    size_t len = utf8_len(s, n);
    if (len == 1)
        return s[0] >= 0x20 && s[0] != 0x7f ? 1 : 0;
    if (len == 2 && s[0] == 0xc2 && s[1] <= 0x9f) /* C1 controls, U+0080..U+009F */
        return 0;
    return len;
}

int router_decode_name(h2o_iovec_t seg, char *out, size_t *out_len, char *err, size_t errlen)
{
    /* Most names are printable ASCII without '%': nothing to decode and
     * nothing for the UTF-8 check to find, so one scan and a copy. */
    size_t plain = 0;
    while (plain < seg.len && seg.base[plain] >= 0x20 && seg.base[plain] < 0x7f &&
           seg.base[plain] != '%' && seg.base[plain] != '/')
        plain++;
    if (plain == seg.len && plain > 0 && plain <= HTTP_NAME_MAX) {
        memcpy(out, seg.base, plain);
        out[plain] = '\0';
        *out_len = plain;
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < seg.len; i++) {
        char ch = seg.base[i];
        if (ch == '%') {
            int hi = i + 2 < seg.len ? hexval(seg.base[i + 1]) : -1;
            int lo = i + 2 < seg.len ? hexval(seg.base[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                snprintf(err, errlen, "malformed percent-encoding in the path");
                return -1;
            }
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (n == HTTP_NAME_MAX) {
            snprintf(err, errlen, "name must be 1 to %d bytes long", HTTP_NAME_MAX);
            return -1;
        }
        out[n++] = ch;
    }
    out[n] = '\0';
    if (router_valid_name(out, n, err, errlen) != 0)
        return -1;
    *out_len = n;
    return 0;
}

int router_valid_name(const char *s, size_t n, char *err, size_t errlen)
{
    if (n == 0 || n > HTTP_NAME_MAX) {
        snprintf(err, errlen, "name must be 1 to %d bytes long", HTTP_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < n;) {
        size_t len = s[i] == '/' ? 0 : utf8_char((const unsigned char *)s + i, n - i);
        if (!len) {
            snprintf(err, errlen, "name must be UTF-8 without control characters or '/'");
            return -1;
        }
        i += len;
    }
    return 0;
}

static void method_not_allowed(route_args_t *a, const h2o_iovec_t *segs, int n)
{
    char allow[64] = "";
    for (int i = 0; i < NROUTES; i++) {
        if (!shape_matches(&shapes[i], segs, n) || strstr(allow, routes[i].method))
            continue;
        /* Literal routes shadow {c} only for the methods they have; the
         * shadowed GET /{c} has the same single method. */
        if (allow[0])
            strcat(allow, ", ");
        strcat(allow, routes[i].method);
    }
    http_add_header(a->req, "allow", allow, strlen(allow));
    /* The method is not echoed: it is client bytes, not necessarily UTF-8. */
    http_error(a, 405, "this method is not allowed here; allowed: %s", allow);
}

void router_dispatch(route_args_t *a)
{
    if (!shapes[0].nsegs)
        shapes_init();
    h2o_req_t *req = a->req;
    h2o_iovec_t path = req->path;
    if (req->query_at != SIZE_MAX)
        path.len = req->query_at;
    h2o_iovec_t segs[MAX_SEGS];
    int n = split(path, segs);
    int shape = 0, match = 0;
    for (int i = 0; n > 0 && i < NROUTES; i++) {
        /* Rows of one path sit together: check the path once for them. */
        if (!shapes[i].same_as_prev)
            match = shape_matches(&shapes[i], segs, n);
        if (!match)
            continue;
        shape = 1;
        if (!h2o_memis(req->method.base, req->method.len, routes[i].method, shapes[i].method_len))
            continue;
        a->route = i;
        char err[128];
        if (shapes[i].has_channel) {
            a->channel_raw = segs[0];
            if (router_decode_name(segs[0], a->channel, &a->channel_len, err, sizeof(err)) != 0) {
                http_error(a, 400, "invalid channel name: %s", err);
                return;
            }
        }
        if (n >= 3) { /* {p} is the third segment; a fourth is an operation */
            a->param_raw = segs[2];
            if (router_decode_name(segs[2], a->param, &a->param_len, err, sizeof(err)) != 0)
                a->param_len = 0; /* handlers answer "not found" for an empty param */
        }
        routes[i].handler(a);
        return;
    }
    if (shape)
        method_not_allowed(a, segs, n);
    else
        http_error(a, 404, "no such resource: the routes are %s", route_list());
}
