/*
 * loadgen.c -- an HTTP/1.1 load generator for Distribuerad's benchmarks.
 *
 * Design: one thread, one epoll loop, N keep-alive connections to one
 * loopback server. Each connection runs the chosen scenario as a small state
 * machine: the scenario appends the connection's next request (or says it
 * must wait for an answer first) and digests each complete response, so a
 * scenario can build per-request bodies from what it learned (the id a
 * publish returned, the lease token an acquire handed out). Independent
 * requests are pipelined up to -P deep; dependent ones go one at a time.
 *
 * Responses are parsed properly: status line, headers, a Content-Length
 * body. A chunked response or one without a length is an error (the servers
 * measured here always send a length), as is a closed connection; the
 * connection is then reopened and its in-flight requests count as errors.
 *
 * Timing: -w seconds of warm-up are run and thrown away, then -d seconds
 * are measured; or -n requests are sent and all of them measured. Latency
 * is from the moment a request is queued for writing to the moment its
 * response is complete, recorded in lathist.h's log buckets. Output is one
 * line of key=value pairs for bench/run.sh.
 *
 * Loopback only: the target must be 127.0.0.0/8 or ::1, since a load
 * generator aimed at someone else's server is a denial of service.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "lathist.h"

#define MAX_DEPTH 256
#define ID_LEN 20
#define TOKEN_LEN 16
#define READ_CHUNK 65536
#define MAX_HEAD 65536

enum kind { K_PUBLISH, K_BATCH, K_LOCK, K_DELETE, K_ACQUIRE, K_GET };
enum scenario { S_PUBLISH, S_BATCH, S_LOCKDEL, S_ACQDEL, S_GET, S_MIXED, S_CONSUME };
static const char *const scenario_names[] = {"publish", "batch", "lockdel", "acqdel", "get", "mixed", "consume"};

static struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host[128];           /* Host header value */
    int conns, depth, consumers, acquire_max, batch, data_size;
    double duration, warmup;
    long long count;          /* -n: requests to send; 0 = timed run */
    enum scenario scenario;
    const char *channel, *ttl, *lock_ttl, *wait;
    int verbose;
} opt = {
    .conns = 50, .depth = 1, .consumers = 0, .acquire_max = 0, .batch = 1000, .data_size = 16,
    .duration = 5, .warmup = 1, .scenario = S_PUBLISH, .channel = "bench", .ttl = "1h",
    .lock_ttl = "1m", .wait = "1s",
};

typedef struct buf {
    char *p;
    size_t off, len, cap;     /* bytes [off, len) are pending */
} buf_t;

typedef struct idtok {
    char id[ID_LEN + 1];
    char token[TOKEN_LEN + 1];
} idtok_t;

typedef struct conn {
    int fd;
    int consumer;             /* mixed: acquires and deletes instead of publishing */
    int want_out;             /* EPOLLOUT armed: a write is pending */
    buf_t w, r;
    int have_head;            /* the response's head is parsed */
    int status;
    size_t head_len, body_len;
    uint8_t kinds[MAX_DEPTH]; /* in flight, oldest first (a ring) */
    uint64_t sent[MAX_DEPTH];
    int qh, qn;
    int step;                 /* lockdel / acqdel: position in the cycle */
    idtok_t cur;              /* the event this cycle works on */
    idtok_t *todo;            /* mixed consumers: acquired, not yet deleted */
    int ntodo, todo_pos, todo_cap;
} conn_t;

static struct {
    uint64_t responses, non2xx, errors, bytes_in;
    uint64_t published, acquired, deleted, cycles, empty_acquires;
    lathist_t lat;
} st;

static int measuring;
static int stopping;
static long long issued, completed;
static int epfd;
static char *publish_req, *batch_req;
static size_t publish_req_len, batch_req_len;
static int reported_non2xx;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* ---- buffers ---- */

static void buf_reserve(buf_t *b, size_t n)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len >= n)
        return;
    if (b->off > 0) { /* compact before growing */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= n)
            return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
        die("out of memory");
    b->cap = cap;
}

static void buf_add(buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- requests ---- */

/* Appends a whole request; extra is more header lines (each ending CRLF). */
static void put_request(buf_t *b, const char *method, const char *path, const char *extra,
                        const char *body, size_t blen)
{
    buf_printf(b, "%s %s HTTP/1.1\r\nHost: %s\r\n%s", method, path, opt.host, extra ? extra : "");
    if (body)
        buf_printf(b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", blen);
    else
        buf_add(b, "\r\n", 2);
    if (body)
        buf_add(b, body, blen);
}

/* One publish body: {"data":"<data_size bytes>","ttl":"<ttl>"}. */
static void publish_body(buf_t *b)
{
    buf_add(b, "{\"data\":\"", 9);
    for (int i = 0; i < opt.data_size; i++)
        buf_add(b, &"0123456789abcdef"[i % 16], 1);
    buf_printf(b, "\",\"ttl\":\"%s\"}", opt.ttl);
}

static void build_templates(void)
{
    char path[256];
    snprintf(path, sizeof(path), "/%s/events", opt.channel);
    buf_t body = {0}, req = {0};
    publish_body(&body);
    put_request(&req, "POST", path, NULL, body.p, body.len);
    publish_req = req.p;
    publish_req_len = req.len;

    buf_t arr = {0}, breq = {0};
    buf_add(&arr, "[", 1);
    for (int i = 0; i < opt.batch; i++) {
        if (i)
            buf_add(&arr, ",", 1);
        buf_add(&arr, body.p, body.len);
    }
    buf_add(&arr, "]", 1);
    put_request(&breq, "POST", path, NULL, arr.p, arr.len);
    batch_req = breq.p;
    batch_req_len = breq.len;
    free(body.p);
    free(arr.p);
}

static void req_lock(conn_t *c)
{
    char path[256], body[128];
    snprintf(path, sizeof(path), "/%s/events/%s", opt.channel, c->cur.id);
    int n = snprintf(body, sizeof(body), "{\"action\":\"LOCK\",\"ttl\":\"%s\"}", opt.lock_ttl);
    put_request(&c->w, "PUT", path, NULL, body, (size_t)n);
}

static void req_delete(conn_t *c, const idtok_t *it)
{
    char path[256], hdr[64] = "";
    snprintf(path, sizeof(path), "/%s/events/%s", opt.channel, it->id);
    if (it->token[0])
        snprintf(hdr, sizeof(hdr), "Lock-Token: %s\r\n", it->token);
    put_request(&c->w, "DELETE", path, hdr, NULL, 0);
}

static void req_acquire(conn_t *c, int max, const char *wait)
{
    char path[256], body[128];
    snprintf(path, sizeof(path), "/%s/acquire", opt.channel);
    int n = snprintf(body, sizeof(body), "{\"max\":%d,\"ttl\":\"%s\",\"wait\":\"%s\"}", max, opt.lock_ttl,
                     wait);
    put_request(&c->w, "POST", path, NULL, body, (size_t)n);
}

static void req_get(conn_t *c)
{
    char path[256];
    snprintf(path, sizeof(path), "/%s/events", opt.channel);
    put_request(&c->w, "GET", path, NULL, NULL, 0);
}

/* Appends c's next request and returns its kind, or -1 if c must wait for
 * an answer first. */
static int next_request(conn_t *c)
{
    switch (opt.scenario) {
    case S_PUBLISH:
        buf_add(&c->w, publish_req, publish_req_len);
        return K_PUBLISH;
    case S_BATCH:
        buf_add(&c->w, batch_req, batch_req_len);
        return K_BATCH;
    case S_GET:
        req_get(c);
        return K_GET;
    case S_LOCKDEL: /* publish -> lock it -> delete it */
    case S_ACQDEL:  /* publish -> acquire the oldest -> delete it */
    case S_CONSUME: /* acquire the oldest -> delete it (a filled queue) */
        if (c->qn)
            return -1;
        if (c->step == 0 && opt.scenario == S_CONSUME)
            c->step = 1;
        if (c->step == 0) {
            buf_add(&c->w, publish_req, publish_req_len);
            return K_PUBLISH;
        }
        if (c->step == 1 && opt.scenario == S_LOCKDEL) {
            req_lock(c);
            return K_LOCK;
        }
        if (c->step == 1) {
            req_acquire(c, 1, "0s");
            return K_ACQUIRE;
        }
        req_delete(c, &c->cur);
        return K_DELETE;
    case S_MIXED:
        if (!c->consumer) {
            buf_add(&c->w, publish_req, publish_req_len);
            return K_PUBLISH;
        }
        if (c->todo_pos < c->ntodo) { /* deletes are independent: pipeline them */
            req_delete(c, &c->todo[c->todo_pos++]);
            return K_DELETE;
        }
        if (c->qn)
            return -1;
        c->ntodo = c->todo_pos = 0;
        req_acquire(c, opt.acquire_max, opt.wait);
        return K_ACQUIRE;
    }
    return -1;
}

/* ---- responses ---- */

/* Copies the n-character value of the first "key":"..." at or after *p
 * (and before end) into out; advances *p past it. Returns 0 or -1. */
static int find_str(const char **p, const char *end, const char *key, char *out, size_t n)
{
    size_t klen = strlen(key);
    const char *k = memmem(*p, (size_t)(end - *p), key, klen);
    if (!k || (size_t)(end - k) < klen + n)
        return -1;
    memcpy(out, k + klen, n);
    out[n] = '\0';
    *p = k + klen + n;
    return 0;
}

/* Reads every (eventID, lockToken) pair of an acquire answer into c->todo. */
static int take_acquired(conn_t *c, const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    int n = 0;
    idtok_t it;
    while (find_str(&p, end, "\"eventID\":\"", it.id, ID_LEN) == 0) {
        const char *next = memmem(p, (size_t)(end - p), "\"eventID\"", 9);
        const char *q = p;
        it.token[0] = '\0';
        find_str(&q, next ? next : end, "\"lockToken\":\"", it.token, TOKEN_LEN);
        if (c->ntodo == c->todo_cap) {
            c->todo_cap = c->todo_cap ? 2 * c->todo_cap : 16;
            c->todo = realloc(c->todo, (size_t)c->todo_cap * sizeof(*c->todo));
            if (!c->todo)
                die("out of memory");
        }
        c->todo[c->ntodo++] = it;
        n++;
    }
    return n;
}

static void on_response(conn_t *c, int kind, int status, const char *body, size_t len)
{
    int ok = status >= 200 && status < 300;
    if (measuring && !ok) {
        st.non2xx++;
        if (!reported_non2xx++ || opt.verbose)
            fprintf(stderr, "loadgen: status %d for a %s request: %.*s\n", status,
                    (const char *[]){"publish", "batch", "lock", "delete", "acquire", "get"}[kind],
                    (int)(len > 200 ? 200 : len), body);
    }
    if (!ok) {
        c->step = 0; /* start the cycle afresh */
        return;
    }
    const char *p = body, *end = body + len;
    switch (kind) {
    case K_PUBLISH:
        if (measuring)
            st.published++;
        if (opt.scenario == S_LOCKDEL) {
            if (find_str(&p, end, "\"eventID\":\"", c->cur.id, ID_LEN) == 0)
                c->step = 1;
        } else if (opt.scenario == S_ACQDEL) {
            c->step = 1;
        }
        break;
    case K_BATCH:
        if (measuring)
            st.published += (uint64_t)opt.batch;
        break;
    case K_LOCK:
        c->cur.token[0] = '\0'; /* delete as the original's clients do: no token */
        c->step = 2;
        break;
    case K_ACQUIRE: {
        int n;
        if (opt.scenario == S_ACQDEL || opt.scenario == S_CONSUME) {
            c->ntodo = 0;
            n = take_acquired(c, body, len);
            if (n > 0) {
                c->cur = c->todo[0];
                c->step = 2;
            } else {
                c->step = 0;
            }
        } else {
            n = take_acquired(c, body, len);
        }
        if (measuring) {
            st.acquired += (uint64_t)n;
            st.empty_acquires += n == 0;
        }
        break;
    }
    case K_DELETE:
        if (measuring) {
            st.deleted++;
            st.cycles += opt.scenario == S_LOCKDEL || opt.scenario == S_ACQDEL || opt.scenario == S_CONSUME;
        }
        c->step = 0;
        break;
    case K_GET:
        break;
    }
}

/* Finds the header's value in head (CRLF-separated lines after the status
 * line); returns its length and sets *v, or -1. */
static long header_value(const char *head, size_t len, const char *name, const char **v)
{
    size_t nlen = strlen(name);
    const char *p = memchr(head, '\n', len), *end = head + len;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *s = p + nlen + 1;
            while (s < eol && (*s == ' ' || *s == '\t'))
                s++;
            const char *e = eol;
            while (e > s && (e[-1] == '\r' || e[-1] == ' '))
                e--;
            *v = s;
            return e - s;
        }
        p = eol;
    }
    return -1;
}

/* Parses a complete head at r.p+off. Returns 0, or -1 (protocol error). */
static int parse_head(conn_t *c, const char *h, size_t len)
{
    if (len < 12 || memcmp(h, "HTTP/1.", 7) != 0)
        return -1;
    c->status = atoi(h + 9);
    const char *v;
    long vl = header_value(h, len, "transfer-encoding", &v);
    if (vl >= 0) {
        fprintf(stderr, "loadgen: chunked (or other transfer-encoded) response: not supported\n");
        return -1;
    }
    vl = header_value(h, len, "content-length", &v);
    if (vl > 0) {
        char num[32];
        memcpy(num, v, (size_t)(vl < 31 ? vl : 31));
        num[vl < 31 ? vl : 31] = '\0';
        char *endp;
        unsigned long long n = strtoull(num, &endp, 10);
        if (*endp)
            return -1;
        c->body_len = (size_t)n;
    } else if (c->status == 204 || c->status == 304 || c->status < 200) {
        c->body_len = 0;
    } else {
        fprintf(stderr, "loadgen: response %d without Content-Length: not supported\n", c->status);
        return -1;
    }
    c->head_len = len;
    c->have_head = 1;
    return 0;
}

/* Digests every complete response in c's read buffer. Returns -1 on a
 * protocol error. */
static int parse_responses(conn_t *c)
{
    for (;;) {
        char *p = c->r.p + c->r.off;
        size_t avail = c->r.len - c->r.off;
        if (!c->have_head) {
            char *e = memmem(p, avail, "\r\n\r\n", 4);
            if (!e)
                return avail > MAX_HEAD ? -1 : 0;
            if (parse_head(c, p, (size_t)(e - p) + 4) != 0)
                return -1;
        }
        if (avail < c->head_len + c->body_len) {
            /* Make room for the whole body once, so big answers are read
             * straight into place. */
            buf_reserve(&c->r, c->head_len + c->body_len - avail + READ_CHUNK);
            return 0;
        }
        if (c->qn == 0)
            return -1; /* an answer nobody asked for */
        int kind = c->kinds[c->qh];
        uint64_t sent = c->sent[c->qh];
        c->qh = (c->qh + 1) % MAX_DEPTH;
        c->qn--;
        completed++;
        if (measuring) {
            st.responses++;
            st.bytes_in += c->head_len + c->body_len;
            lathist_add(&st.lat, now_ns() - sent);
        }
        c->have_head = 0;
        c->r.off += c->head_len + c->body_len;
        on_response(c, kind, c->status, p + c->head_len, c->body_len);
    }
}

/* ---- connections ---- */

static void conn_arm(conn_t *c, int out)
{
    if (c->want_out == out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static int conn_flush(conn_t *c)
{
    while (c->w.off < c->w.len) {
        ssize_t n = write(c->fd, c->w.p + c->w.off, c->w.len - c->w.off);
        if (n > 0) {
            c->w.off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            conn_arm(c, 1);
            return 0;
        } else {
            return -1;
        }
    }
    c->w.off = c->w.len = 0;
    conn_arm(c, 0);
    return 0;
}

/* Queues as many requests as the scenario and the pipeline depth allow. */
static int conn_pump(conn_t *c)
{
    /* A mixed consumer pipelines the deletes of what one acquire gave it. */
    int depth = c->consumer && opt.acquire_max > opt.depth ? opt.acquire_max : opt.depth;
    if (depth > MAX_DEPTH)
        depth = MAX_DEPTH;
    while (!stopping && c->qn < depth && (!opt.count || issued < opt.count)) {
        int kind = next_request(c);
        if (kind < 0)
            break;
        int slot = (c->qh + c->qn) % MAX_DEPTH;
        c->kinds[slot] = (uint8_t)kind;
        c->sent[slot] = now_ns();
        c->qn++;
        issued++;
    }
    return conn_flush(c);
}

static void conn_open(conn_t *c)
{
    c->fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&opt.addr, opt.addrlen) != 0)
        die("cannot connect to %s: %s", opt.host, strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = 0;
}

/* A broken connection: its in-flight requests are lost; reopen it. */
static void conn_fail(conn_t *c, const char *why)
{
    static int failures;
    if (measuring)
        st.errors += (uint64_t)c->qn;
    issued -= c->qn;
    if (++failures <= 3 || opt.verbose)
        fprintf(stderr, "loadgen: connection lost (%s) with %d requests in flight; reconnecting\n",
                why, c->qn);
    if (failures > 1000)
        die("too many broken connections");
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->w.off = c->w.len = c->r.off = c->r.len = 0;
    c->have_head = 0;
    c->qh = c->qn = 0;
    c->step = 0;
    c->ntodo = c->todo_pos = 0;
    conn_open(c);
    conn_pump(c);
}

static void conn_read(conn_t *c)
{
    for (;;) {
        buf_reserve(&c->r, READ_CHUNK);
        ssize_t n = read(c->fd, c->r.p + c->r.len, c->r.cap - c->r.len);
        if (n > 0) {
            c->r.len += (size_t)n;
            if (parse_responses(c) != 0) {
                conn_fail(c, "malformed response");
                return;
            }
            if ((size_t)n < READ_CHUNK)
                break;
        } else if (n == 0) {
            conn_fail(c, "closed by the server");
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN) {
            break;
        } else {
            conn_fail(c, strerror(errno));
            return;
        }
    }
    if (conn_pump(c) != 0)
        conn_fail(c, "write failed");
}

/* ---- set-up ---- */

static void parse_target(const char *addr, int port)
{
    memset(&opt.addr, 0, sizeof(opt.addr));
    if (strcmp(addr, "localhost") == 0)
        addr = "127.0.0.1";
    struct sockaddr_in *a4 = (struct sockaddr_in *)&opt.addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&opt.addr;
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
            die("refusing %s: the target must be a loopback address (127.0.0.0/8 or ::1)", addr);
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        opt.addrlen = sizeof(*a4);
        snprintf(opt.host, sizeof(opt.host), "%s:%d", addr, port);
    } else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
            die("refusing %s: the target must be a loopback address (127.0.0.0/8 or ::1)", addr);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        opt.addrlen = sizeof(*a6);
        snprintf(opt.host, sizeof(opt.host), "[%s]:%d", addr, port);
    } else {
        die("%s is not a numeric IPv4 or IPv6 address", addr);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen -p PORT [options]\n"
            "  -a ADDR   loopback address of the server (127.0.0.1; others are refused)\n"
            "  -s NAME   scenario: publish | batch | lockdel | acqdel | consume | get | mixed\n"
            "            (publish); lockdel: publish, lock it, delete it;  acqdel: publish,\n"
            "            acquire the oldest, delete it (cycles keep the queue length steady);\n"
            "            consume: acquire the oldest, delete it (fill the queue first);\n"
            "            mixed: producers publish, -m consumers acquire -x and delete\n"
            "  -c N      connections (50)            -P N  pipelining depth (1)\n"
            "  -d SECS   measured duration (5)       -w SECS  warm-up, not measured (1)\n"
            "  -n N      send N requests and measure them all (instead of -d/-w)\n"
            "  -q NAME   channel (bench)             -b N  events per batch (1000)\n"
            "  -D BYTES  event data size (16)        -t TTL  event ttl (1h)\n"
            "  -m N      mixed: consumer connections (conns/5)\n"
            "  -x N      mixed: acquire max (10)     -W DUR  mixed: acquire wait (1s)\n"
            "output: one line of key=value; total= counts warm-up responses too\n"
            "  -v        report every non-2xx and every broken connection\n");
    exit(2);
}

static void print_result(double secs)
{
    double r = secs > 0 ? 1.0 / secs : 0;
    printf("scenario=%s conns=%d depth=%d secs=%.3f requests=%llu rate=%.0f non2xx=%llu errors=%llu "
           "published=%llu publish_rate=%.0f acquired=%llu deleted=%llu delete_rate=%.0f "
           "cycles=%llu cycle_rate=%.0f empty_acquires=%llu p50_us=%.1f p99_us=%.1f p999_us=%.1f "
           "max_us=%.1f mean_us=%.1f in_mbps=%.1f total=%lld\n",
           scenario_names[opt.scenario], opt.conns, opt.depth, secs,
           (unsigned long long)st.responses, (double)st.responses * r, (unsigned long long)st.non2xx,
           (unsigned long long)st.errors, (unsigned long long)st.published, (double)st.published * r,
           (unsigned long long)st.acquired, (unsigned long long)st.deleted, (double)st.deleted * r,
           (unsigned long long)st.cycles, (double)st.cycles * r, (unsigned long long)st.empty_acquires,
           lathist_quantile(&st.lat, 0.50) / 1e3, lathist_quantile(&st.lat, 0.99) / 1e3,
           lathist_quantile(&st.lat, 0.999) / 1e3, st.lat.max / 1e3,
           st.lat.count ? (double)st.lat.sum / (double)st.lat.count / 1e3 : 0.0,
           (double)st.bytes_in * r / 1e6, completed);
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    int port = 0, ch;
    while ((ch = getopt(argc, argv, "a:p:s:c:P:d:w:n:q:b:D:t:m:x:W:v")) != -1) {
        switch (ch) {
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 's': {
            int i, n = (int)(sizeof(scenario_names) / sizeof(scenario_names[0]));
            for (i = 0; i < n && strcmp(optarg, scenario_names[i]) != 0; i++)
                ;
            if (i == n)
                usage();
            opt.scenario = (enum scenario)i;
            break;
        }
        case 'c': opt.conns = atoi(optarg); break;
        case 'P': opt.depth = atoi(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 'n': opt.count = atoll(optarg); break;
        case 'q': opt.channel = optarg; break;
        case 'b': opt.batch = atoi(optarg); break;
        case 'D': opt.data_size = atoi(optarg); break;
        case 't': opt.ttl = optarg; break;
        case 'm': opt.consumers = atoi(optarg); break;
        case 'x': opt.acquire_max = atoi(optarg); break;
        case 'W': opt.wait = optarg; break;
        case 'v': opt.verbose = 1; break;
        default: usage();
        }
    }
    if (port <= 0 || port > 65535 || opt.conns < 1 || opt.depth < 1 || opt.depth > MAX_DEPTH ||
        opt.batch < 1 || opt.data_size < 0 || opt.duration <= 0)
        usage();
    if (opt.scenario == S_MIXED) {
        if (opt.consumers <= 0)
            opt.consumers = opt.conns / 5 > 0 ? opt.conns / 5 : 1;
        if (opt.consumers >= opt.conns)
            die("mixed needs at least one producer: -m must be below -c");
        if (opt.acquire_max <= 0)
            opt.acquire_max = 10;
    }
    parse_target(addr, port);
    build_templates();

    epfd = epoll_create1(EPOLL_CLOEXEC);
    conn_t *conns = calloc((size_t)opt.conns, sizeof(*conns));
    if (epfd < 0 || !conns)
        die("set-up failed: %s", strerror(errno));
    for (int i = 0; i < opt.conns; i++) {
        conns[i].consumer = opt.scenario == S_MIXED && i < opt.consumers;
        conn_open(&conns[i]);
    }
    uint64_t start = now_ns(), measure_at = start, end_at = UINT64_MAX;
    if (opt.count) {
        measuring = 1;
    } else {
        measure_at = start + (uint64_t)(opt.warmup * 1e9);
        end_at = measure_at + (uint64_t)(opt.duration * 1e9);
        measuring = opt.warmup <= 0;
    }
    for (int i = 0; i < opt.conns; i++)
        if (conn_pump(&conns[i]) != 0)
            die("write failed: %s", strerror(errno));

    struct epoll_event evs[256];
    uint64_t t = start;
    for (;;) {
        t = now_ns();
        if (!measuring && t >= measure_at) {
            memset(&st, 0, sizeof(st));
            measuring = 1;
        }
        if (t >= end_at || (opt.count && completed >= opt.count))
            break;
        int n = epoll_wait(epfd, evs, 256, 5);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_read(c);
            else if ((evs[i].events & EPOLLOUT) && conn_flush(c) != 0)
                conn_fail(c, "write failed");
        }
    }
    stopping = 1;
    print_result((double)(t - measure_at) / 1e9);
    for (int i = 0; i < opt.conns; i++)
        close(conns[i].fd);
    return st.responses > 0 ? 0 : 1;
}
