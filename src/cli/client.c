/*
 * client.c -- dq_request on one libcurl easy handle (see client.h).
 */
#include "client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "json/jparse.h"

struct dq_client {
    CURL *curl;
    char *base;     /* the server's base URL, without a trailing '/' */
    char *auth;     /* "Authorization: Bearer ..." or NULL */
    int (*should_stop)(void *);
    void *stop_arg;
};

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

int dq_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void dq_global_cleanup(void)
{
    curl_global_cleanup();
}

dq_client_t *dq_client_new(const char *base_url, const char *token)
{
    CURL *curl = curl_easy_init();
    if (!curl)
        return NULL;
    dq_client_t *c = xcalloc(1, sizeof(*c));
    c->curl = curl;
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/')
        n--;
    c->base = xstrndup(base_url, n);
    if (token && *token) {
        size_t len = strlen(token) + sizeof("Authorization: Bearer ");
        c->auth = xmalloc(len);
        snprintf(c->auth, len, "Authorization: Bearer %s", token);
    }
    return c;
}

void dq_client_free(dq_client_t *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->auth);
    free(c);
}

void dq_client_set_stop(dq_client_t *c, int (*should_stop)(void *), void *arg)
{
    c->should_stop = should_stop;
    c->stop_arg = arg;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    buf_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    dq_client_t *c = arg;
    return c->should_stop && c->should_stop(c->stop_arg) ? 1 : 0;
}

/* The request's header list: content type, token, the caller's lines.
 * "Expect:" turns off curl's 100-continue wait on larger bodies. */
static struct curl_slist *make_headers(dq_client_t *c, const char *const *headers)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    if (c->auth)
        h = curl_slist_append(h, c->auth);
    for (size_t i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    return h;
}

static void set_options(dq_client_t *c, const char *method, const char *url, const char *body,
                        size_t len, struct curl_slist *h, long timeout_ms, buf_t *out)
{
    CURL *k = c->curl;
    curl_easy_reset(k);
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(k, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(k, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(k, CURLOPT_XFERINFODATA, c);
    if (body) {
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(k, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "DELETE") != 0) { /* POST, PUT: Content-Length: 0 */
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
}

int dq_request(dq_client_t *c, const char *method, const char *path, const char *body, size_t len,
               const char *const *headers, long timeout_ms, dq_resp_t *r)
{
    memset(r, 0, sizeof(*r));
    buf_t out = {xmalloc(64), 0, 64};
    out.p[0] = '\0';
    size_t ulen = strlen(c->base) + strlen(path) + 1;
    char *url = xmalloc(ulen);
    snprintf(url, ulen, "%s%s", c->base, path);
    struct curl_slist *h = make_headers(c, headers);
    set_options(c, method, url, body, len, h, timeout_ms, &out);
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
    else
        snprintf(r->err, sizeof(r->err), "%s %s: %s", method, url,
                 rc == CURLE_ABORTED_BY_CALLBACK ? "stopped" : curl_easy_strerror(rc));
    curl_slist_free_all(h);
    free(url);
    r->body = out.p;
    r->len = out.len;
    return rc == CURLE_OK ? 0 : -1;
}

void dq_resp_free(dq_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

const char *dq_resp_error(const dq_resp_t *r, char *buf, size_t n)
{
    jdoc_t d;
    jparse_err_t e;
    const jval_t *m = NULL;
    if (jparse(&d, r->body, r->len, &e) == 0)
        m = jparse_get(d.root, "error", 5);
    if (m && m->type == JV_STRING)
        snprintf(buf, n, "%.*s", (int)m->u.str.len, m->u.str.s);
    else if (r->len > 0)
        snprintf(buf, n, "%.*s", (int)r->len, r->body);
    else
        snprintf(buf, n, "HTTP status %ld", r->status);
    jparse_free(&d);
    return buf;
}

char *dq_escape(const char *seg)
{
    static const char keep[] = "-._~";
    size_t n = strlen(seg);
    char *out = xmalloc(3 * n + 1), *p = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)seg[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            (ch && strchr(keep, ch)))
            *p++ = (char)ch;
        else
            p += sprintf(p, "%%%02X", ch);
    }
    *p = '\0';
    return out;
}

/* ---- durations ---- */

static long long unit_ns(const char *u, size_t n)
{
    static const struct { const char *name; long long ns; } units[] = {
        {"ns", 1}, {"us", 1000}, {"\xc2\xb5s", 1000}, {"\xce\xbcs", 1000}, {"ms", 1000000},
        {"s", 1000000000LL}, {"m", 60000000000LL}, {"h", 3600000000000LL},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
            return units[i].ns;
    return 0;
}

int dq_duration_ns(const char *s, long long *ns)
{
    const long double max = 876000.0L * 3600 * 1e9L; /* 100 years */
    long double total = 0;
    if (strcmp(s, "0") == 0 || strcmp(s, "+0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '+')
        s++;
    if (!*s)
        return -1;
    while (*s) {
        long double v = 0, f = 0.1L;
        int digits = 0;
        for (; *s >= '0' && *s <= '9'; s++, digits++)
            v = v * 10 + (*s - '0');
        if (*s == '.')
            for (s++; *s >= '0' && *s <= '9'; s++, digits++, f /= 10)
                v += (*s - '0') * f;
        size_t n = strcspn(s, "0123456789.");
        long long u = unit_ns(s, n);
        if (digits == 0 || u == 0)
            return -1;
        total += v * u;
        if (total > max)
            return -1;
        s += n;
    }
    *ns = (long long)total;
    return 0;
}
