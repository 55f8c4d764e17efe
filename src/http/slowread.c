/*
 * slowread.c -- cutting off clients that do not read (see slowread.h).
 */
#include "slowread.h"

#include <linux/tcp.h> /* glibc's tcp_info lacks tcpi_bytes_acked */
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include "base/util.h"

sr_conn_t *slowread_conn_new(h2o_socket_t *sock, void *owner)
{
    sr_conn_t *c = xcalloc(1, sizeof(*c));
    c->sock = sock;
    c->owner = owner;
    return c;
}

static void unlink_conn(slowread_t *sr, sr_conn_t *c)
{
    if (!c->linked)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        sr->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        sr->tail = c->prev;
    c->prev = c->next = NULL;
    c->linked = 0;
}

static void append(slowread_t *sr, sr_conn_t *c, ntime_t due)
{
    unlink_conn(sr, c);
    c->due = due;
    c->prev = sr->tail;
    if (sr->tail)
        sr->tail->next = c;
    else
        sr->head = c;
    sr->tail = c;
    c->linked = 1;
}

void slowread_conn_free(slowread_t *sr, sr_conn_t *c)
{
    if (!c)
        return;
    unlink_conn(sr, c);
    free(c);
}

/* Bytes of ours the client has acknowledged, or 0 if unknown. */
static uint64_t bytes_acked(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
        return 0;
    return ti.tcpi_bytes_acked;
}

void slowread_answered(slowread_t *sr, sr_conn_t *c, size_t len, ntime_t now)
{
    if (!c || len < SLOWREAD_MIN)
        return;
    c->acked = bytes_acked(h2o_socket_get_fd(c->sock));
    append(sr, c, now + sr->timeout_ns);
}

int32_t slowread_sweep(slowread_t *sr, ntime_t now, int32_t max_ms)
{
    while (sr->head && sr->head->due <= now) {
        sr_conn_t *c = sr->head;
        unlink_conn(sr, c);
        if (!h2o_socket_is_writing(c->sock))
            continue; /* the answer went out */
        int fd = h2o_socket_get_fd(c->sock);
        uint64_t acked = bytes_acked(fd);
        if (acked != c->acked) {
            c->acked = acked; /* reading, slowly: look again later */
            append(sr, c, now + sr->timeout_ns);
            continue;
        }
        /* h2o then fails its pending write, closes the connection and
         * frees the answer with the request. Linger 0: the close resets
         * the connection, so the kernel drops what it still queued for
         * the client too, instead of trickling it out. */
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        shutdown(fd, SHUT_RDWR);
        sr->cut++;
    }
    if (!sr->head)
        return max_ms;
    int64_t ms = (sr->head->due - now + NTIME_NS_PER_MS - 1) / NTIME_NS_PER_MS;
    return max_ms >= 0 && max_ms < ms ? max_ms : (int32_t)(ms < INT32_MAX ? ms : INT32_MAX);
}
