/*
 * probe.c -- a 100 Continue that tells a half-closed client from a closed
 * one (see probe.h).
 */
#include "probe.h"

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";

static h2o_socket_t *socket_of(h2o_req_t *req)
{
    return req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
}

/* The smoothed RTT in ns, or -1 when the socket is not TCP. */
static int64_t rtt_ns(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_rtt) + sizeof(ti.tcpi_rtt))
        return -1;
    return (int64_t)ti.tcpi_rtt * NTIME_NS_PER_US;
}

ntime_t probe_start(probe_t *p, h2o_req_t *req, ntime_t now)
{
    h2o_socket_t *sock = socket_of(req);
    /* h2o writes nothing on an HTTP/1 connection while its request is
     * unanswered; is_writing would mean a write of its own is under way,
     * which the 100 must not cut into. */
    if (!sock || sock->ssl || req->version != 0x101 || h2o_socket_is_writing(sock))
        return 0;
    int fd = h2o_socket_get_fd(sock);
    int queued;
    if (rtt_ns(fd) < 0 || ioctl(fd, SIOCOUTQ, &queued) != 0 || queued != 0)
        return 0;
    /* The send buffer is empty, so the 25 bytes go whole or not at all. */
    if (send(fd, CONTINUE, sizeof(CONTINUE) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(CONTINUE) - 1)
        return 0;
    p->sent_at = now;
    p->alive_at = 0;
    p->step_ns = PROBE_STEP_MIN_NS;
    return now + p->step_ns;
}

/* Reset, or closed both ways. poll leaves the socket's error for h2o. */
static int broken(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = 0};
    return poll(&pfd, 1, 0) != 0 && (pfd.revents & (POLLHUP | POLLERR));
}

probe_result_t probe_check(probe_t *p, h2o_req_t *req, ntime_t now, ntime_t *next_at)
{
    h2o_socket_t *sock = socket_of(req);
    if (!sock)
        return PROBE_GONE;
    int fd = h2o_socket_get_fd(sock);
    int queued; /* bytes written but not acknowledged */
    if (broken(fd) || ioctl(fd, SIOCOUTQ, &queued) != 0)
        return PROBE_GONE;
    if (queued == 0 && p->alive_at == 0) {
        int64_t grace = 2 * rtt_ns(fd);
        grace = grace < PROBE_GRACE_MIN_NS ? PROBE_GRACE_MIN_NS : grace > PROBE_LIMIT_NS ? PROBE_LIMIT_NS : grace;
        p->alive_at = now + grace;
    }
    if (p->alive_at != 0 && now >= p->alive_at)
        return PROBE_ALIVE;
    if (p->alive_at == 0 && now - p->sent_at >= PROBE_LIMIT_NS)
        return PROBE_SILENT;
    *next_at = now + p->step_ns;
    if (p->alive_at != 0 && *next_at > p->alive_at)
        *next_at = p->alive_at;
    if (p->step_ns < PROBE_STEP_MAX_NS)
        p->step_ns *= 2;
    return PROBE_WAIT;
}
