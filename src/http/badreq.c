/*
 * badreq.c -- JSON answers for the requests h2o refuses by itself (see
 * badreq.h for why and what this relies on).
 */
#include "badreq.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <h2o/http1.h>
#include "base/util.h"

/* picohttpparser, built into libh2o and exported by it; Debian ships no
 * header for it. */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);

/* lib/http1.c, send_bad_request: the one answer recognised. */
static const char H2O_400[] = "HTTP/1.1 400 Bad Request\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Connection: close\r\n"
                              "Content-Length: 11\r\n"
                              "\r\n"
                              "Bad Request";

typedef void (*write_fn)(h2o_socket_t *, h2o_iovec_t *, size_t, h2o_socket_cb);

/* A replacement answer; lives until its socket is disposed. */
typedef struct answer {
    void (*close_cb)(void *); /* the socket's on_close before ours */
    void *close_data;
    size_t len;
    char bytes[];
} answer_t;

static write_fn real_write;
static uint64_t replaced; /* answers replaced, for the self-check */

/* What is wrong with the unparsed head at buf[0..len), which h2o refused. */
static const char *diagnose(const char *buf, size_t len)
{
    if (len >= 12 && memcmp(buf, "PRI * HTTP/2", 12) == 0)
        return "an HTTP/2 connection preface: this port speaks HTTP/1.1 only";
    size_t n = len < H2O_MAX_REQLEN ? len : H2O_MAX_REQLEN;
    /* h2o parsed with room for H2O_MAX_HEADERS fields; with room for as
     * many as the head can hold (a field takes at least 3 bytes), a parse
     * that then gets further shows there were too many. Rare, so the
     * allocation is fine. */
    size_t room = n / 3 + 1, nf = room;
    struct phr_header *fields = xmalloc(room * sizeof(*fields));
    const char *method, *path;
    size_t method_len, path_len;
    int minor;
    int r = phr_parse_request(buf, n, &method, &method_len, &path, &path_len, &minor, fields, &nf, 0);
    free(fields);
    if (r == -2 && n >= H2O_MAX_REQLEN)
        return "the request line and header fields are longer than 417792 bytes";
    if (r != -1)
        return "the request has more than 100 header fields";
    return "malformed request line or header field";
}

static void answer_on_close(void *data)
{
    answer_t *a = data;
    void (*cb)(void *) = a->close_cb;
    void *cb_data = a->close_data;
    free(a);
    if (cb)
        cb(cb_data);
}

/* Our 400 for sock, owned by the socket from now on. */
static answer_t *answer_new(h2o_socket_t *sock)
{
    char date[64], body[160];
    time_t t = time(NULL);
    struct tm tm;
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
    int blen = snprintf(body, sizeof(body), "{\"error\":\"%s\"}",
                        diagnose(sock->input->bytes, sock->input->size));
    size_t cap = 256 + sizeof(date) + (size_t)blen;
    answer_t *a = xmalloc(sizeof(*a) + cap);
    int len = snprintf(a->bytes, cap,
                       "HTTP/1.1 400 Bad Request\r\nDate: %s\r\nConnection: close\r\nContent-Length: %d\r\n"
                       "Server: distribuerad\r\ncontent-type: application/json\r\n\r\n%s",
                       date, blen, body);
    a->len = (size_t)len;
    a->close_cb = sock->on_close.cb;
    a->close_data = sock->on_close.data;
    sock->on_close.cb = answer_on_close;
    sock->on_close.data = a;
    return a;
}

static void find_real_write(void)
{
    *(void **)&real_write = dlsym(RTLD_NEXT, "h2o_socket_write");
    if (!real_write) {
        fprintf(stderr, "distribuerad: h2o_socket_write not found in libh2o: %s\n", dlerror());
        abort();
    }
}

/* Interposes libh2o's h2o_socket_write; see badreq.h. */
void h2o_socket_write(h2o_socket_t *sock, h2o_iovec_t *bufs, size_t bufcnt, h2o_socket_cb cb)
{
    if (!real_write)
        find_real_write();
    if (bufcnt == 1 && bufs[0].len == sizeof(H2O_400) - 1 && memcmp(bufs[0].base, H2O_400, bufs[0].len) == 0) {
        answer_t *a = answer_new(sock);
        h2o_iovec_t ours = h2o_iovec_init(a->bytes, a->len); /* h2o copies the vector */
        replaced++;
        real_write(sock, &ours, 1, cb);
        return;
    }
    real_write(sock, bufs, bufcnt, cb);
}

/* Runs the loop until the peer sees the connection closed; returns the
 * bytes read into buf (NUL-terminated). */
static size_t read_answer(h2o_loop_t *loop, int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (int i = 0; i < 2000 && got < cap - 1; i++) {
        h2o_evloop_run(loop, 1);
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            break;
        if (r > 0)
            got += (size_t)r;
    }
    buf[got] = '\0';
    return got;
}

int badreq_selfcheck(h2o_context_t *ctx, h2o_hostconf_t **hosts, char *err, size_t errlen)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return -1;
    }
    static const char bad[] = "NOT HTTP\r\n\r\n";
    if (write(fds[1], bad, sizeof(bad) - 1) != (ssize_t)sizeof(bad) - 1) {
        snprintf(err, errlen, "write: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    uint64_t before = replaced;
    h2o_accept_ctx_t actx = {.ctx = ctx, .hosts = hosts};
    struct timeval now;
    gettimeofday(&now, NULL);
    h2o_http1_accept(&actx, h2o_evloop_socket_create(ctx->loop, fds[0], 0), now);
    char got[512];
    read_answer(ctx->loop, fds[1], got, sizeof(got));
    close(fds[1]);
    for (char *c = got; *c; c++)
        if (*c < ' ')
            *c = ' ';
    if (replaced == before || strncmp(got, "HTTP/1.1 400 ", 13) != 0 || !strstr(got, "application/json")) {
        snprintf(err, errlen, "libh2o's own 400 for a malformed request is not replaced (got %.60s...)", got);
        return -1;
    }
    return 0;
}
