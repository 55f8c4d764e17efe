/*
 * hello.c -- the ceiling for this HTTP stack: a minimal h2o (libh2o-evloop)
 * server that answers every request with the same 201 JSON body.
 *
 * It does what Distribuerad's HTTP layer does minus the work: one thread,
 * one h2o event loop, keep-alive and pipelining from h2o, h2o buffering the
 * request body before calling the handler, and a body about the size of an
 * event object sent with a Content-Type and a Content-Length. Whatever
 * Distribuerad answers more slowly than this is our own cost.
 *
 * Usage: hello [-address 127.0.0.1] [-port 0]; prints
 * "listening on http://ADDR:PORT" on stderr once it accepts connections.
 */
#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The size and shape of a published event object (186 bytes). */
static const char BODY[] =
    "{\"eventID\":\"06h1mpqqt40000000000\",\"publishedAt\":\"2026-11-27T05:08:08.041836734Z\","
    "\"data\":\"0123456789abcdef\",\"livesUntil\":\"2026-11-27T05:18:08.041836734Z\","
    "\"isLocked\":false,\"state\":\"ready\"}";

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    req->res.status = 201;
    req->res.reason = "Created";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    /* Without a known length h2o chunks a 200 and closes the connection
     * after any other status. */
    req->res.content_length = sizeof(BODY) - 1;
    h2o_send_inline(req, BODY, sizeof(BODY) - 1);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    for (int i = 0; i < 64; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock)
            break;
        h2o_accept(&accept_ctx, sock);
    }
}

int main(int argc, char **argv)
{
    const char *address = "127.0.0.1";
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-address") == 0)
            address = argv[i + 1];
        else if (strcmp(argv[i], "-port") == 0)
            port = atoi(argv[i + 1]);
    }
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || inet_pton(AF_INET, address, &sa.sin_addr) != 1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, SOMAXCONN) != 0) {
        perror("hello: cannot listen");
        return 1;
    }
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);

    h2o_config_init(&config);
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof(*h));
    h->on_req = on_req;

    h2o_context_init(&ctx, h2o_evloop_create(), &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;
    h2o_socket_t *listener = h2o_evloop_socket_create(ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(listener, on_accept);
    fprintf(stderr, "listening on http://%s:%d\n", address, ntohs(sa.sin_port));
    while (h2o_evloop_run(ctx.loop, INT32_MAX) == 0)
        ;
    return 1;
}
