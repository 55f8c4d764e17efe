/*
 * beanstalk.c -- the C peer as a reference: starts its own beanstalkd on a
 * free loopback port and runs put / reserve / delete cycles against it with
 * the same design as loadgen.c (one epoll loop, N connections, each a small
 * state machine, latency per command in lathist.h's buckets).
 *
 * Phases: start beanstalkd (in memory, no binlog, as Distribuerad's
 * -in-memory); read its RSS; preload -q jobs of -D bytes with deep
 * pipelining; read its RSS again (so bytes per job = the difference / q);
 * then -w seconds of warm-up and -d measured seconds of cycles, each
 *   put <data>  ->  reserve-with-timeout  ->  delete <the reserved id>
 * which keeps the queue length steady, as loadgen's lockdel and acqdel do.
 * Prints one key=value line, with beanstalkd's CPU time per command over
 * the measured part; beanstalkd is stopped on every way out.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lathist.h"

#define MAX_DEPTH 512

enum step { PUT, RESERVE, DELETE };

typedef struct conn {
    int fd;
    char rbuf[65536];
    size_t rlen;
    char wbuf[65536];
    size_t wlen, woff;
    int step;
    unsigned long long job;    /* the reserved job to delete */
    int inflight;
    uint64_t sent;             /* when the command in flight was sent */
    long long preload;         /* puts still to send in the preload phase */
    long long preload_wait;    /* INSERTED lines still to read */
} conn_t;

static pid_t child = -1;
static int epfd;
static int conns_n = 10, data_size = 16, verbose;
static double duration = 5, warmup = 1;
static long long preload = 1000;
static char data[65536];
static int measuring;
static struct {
    uint64_t ops, cycles, errors;
    lathist_t lat;
} st;

static void stop_child(void)
{
    if (child > 0) {
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
        child = -1;
    }
}

static void on_signal(int sig)
{
    if (child > 0)
        kill(child, SIGTERM);
    _exit(128 + sig);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "beanstalk: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1); /* atexit stops beanstalkd */
}

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        die("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

static int try_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Starts beanstalkd on a free port and waits until it accepts. */
static int start_beanstalkd(void)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = free_port();
        char ps[16];
        snprintf(ps, sizeof(ps), "%d", port);
        child = fork();
        if (child < 0)
            die("fork: %s", strerror(errno));
        if (child == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive us */
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execlp("beanstalkd", "beanstalkd", "-l", "127.0.0.1", "-p", ps, (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 200; i++) {
            int fd = try_connect(port);
            if (fd >= 0) {
                close(fd);
                return port;
            }
            if (waitpid(child, NULL, WNOHANG) == child) {
                child = -1;
                break; /* lost the port race, or no beanstalkd: try again */
            }
            usleep(10000);
        }
        stop_child();
    }
    die("cannot start beanstalkd (is it installed? scripts/deps.sh bench)");
    return -1;
}

/* ns the process has run on a CPU (/proc/PID/schedstat), or -1. */
static long long cpu_ns_of(pid_t pid)
{
    char path[64];
    long long v = -1;
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* ---- the cycle ---- */

static void put_cmd(conn_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->wbuf + c->wlen, sizeof(c->wbuf) - c->wlen, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(c->wbuf) - c->wlen)
        die("command too long");
    c->wlen += (size_t)n;
}

static void put_job(conn_t *c)
{
    put_cmd(c, "put 0 0 3600 %d\r\n", data_size);
    if (c->wlen + (size_t)data_size + 2 > sizeof(c->wbuf))
        die("job too large");
    memcpy(c->wbuf + c->wlen, data, (size_t)data_size);
    c->wlen += (size_t)data_size;
    memcpy(c->wbuf + c->wlen, "\r\n", 2);
    c->wlen += 2;
}

static void flush(conn_t *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
        if (n <= 0)
            die("write to beanstalkd: %s", strerror(errno));
        c->woff += (size_t)n;
    }
    c->woff = c->wlen = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void send_next(conn_t *c)
{
    if (c->step == PUT)
        put_job(c);
    else if (c->step == RESERVE)
        put_cmd(c, "reserve-with-timeout 1\r\n");
    else
        put_cmd(c, "delete %llu\r\n", c->job);
    c->inflight = 1;
    c->sent = now_ns();
    flush(c);
}

/* Handles one reply line (and a RESERVED job's body). Returns the bytes
 * consumed, or 0 if the reply is not complete yet. */
static size_t on_reply(conn_t *c, const char *p, size_t len)
{
    const char *eol = memmem(p, len, "\r\n", 2);
    if (!eol)
        return 0;
    size_t used = (size_t)(eol - p) + 2;
    unsigned long long id;
    unsigned bytes;
    int ok = 0;
    if (c->step == PUT) {
        ok = strncmp(p, "INSERTED ", 9) == 0;
        c->step = ok ? RESERVE : PUT;
    } else if (c->step == RESERVE) {
        if (sscanf(p, "RESERVED %llu %u", &id, &bytes) == 2) {
            if (len < used + bytes + 2)
                return 0;
            used += bytes + 2;
            c->job = id;
            c->step = DELETE;
            ok = 1;
        } else {
            c->step = PUT; /* TIMED_OUT: the queue was empty */
        }
    } else {
        ok = strncmp(p, "DELETED", 7) == 0;
        c->step = PUT;
        if (ok && measuring)
            st.cycles++;
    }
    c->inflight = 0;
    if (measuring) {
        st.ops++;
        st.errors += !ok;
        lathist_add(&st.lat, now_ns() - c->sent);
        if (!ok && verbose)
            fprintf(stderr, "beanstalk: unexpected reply %.*s\n", (int)(eol - p), p);
    }
    return used;
}

static void on_readable(conn_t *c, int preloading)
{
    ssize_t n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
    if (n == 0)
        die("beanstalkd closed a connection");
    if (n < 0)
        return; /* EAGAIN / EINTR: level-triggered, we will be back */
    c->rlen += (size_t)n;
    size_t off = 0;
    for (;;) {
        size_t used;
        if (preloading) {
            const char *eol = memmem(c->rbuf + off, c->rlen - off, "\r\n", 2);
            if (!eol)
                break;
            if (strncmp(c->rbuf + off, "INSERTED ", 9) != 0)
                die("preload: unexpected reply %.*s", (int)(eol - c->rbuf - off), c->rbuf + off);
            used = (size_t)(eol - c->rbuf - off) + 2;
            c->preload_wait--;
        } else {
            used = c->inflight ? on_reply(c, c->rbuf + off, c->rlen - off) : 0;
            if (!used)
                break;
        }
        off += used;
        if (!preloading && !c->inflight)
            send_next(c);
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    if (c->rlen == sizeof(c->rbuf))
        die("reply too long");
}

/* Sends as many preload puts as fit the pipeline. */
static void preload_pump(conn_t *c)
{
    while (c->preload > 0 && c->preload_wait < MAX_DEPTH && c->wlen + 64 + (size_t)data_size < sizeof(c->wbuf)) {
        put_job(c);
        c->preload--;
        c->preload_wait++;
    }
    flush(c);
}

static void loop_until(conn_t *conns, int preloading, uint64_t until)
{
    struct epoll_event evs[64];
    for (;;) {
        if (preloading) {
            int busy = 0;
            for (int i = 0; i < conns_n; i++)
                busy |= conns[i].preload > 0 || conns[i].preload_wait > 0;
            if (!busy)
                return;
        } else if (now_ns() >= until) {
            return;
        }
        int n = epoll_wait(epfd, evs, 64, 5);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c, preloading);
            if (preloading)
                preload_pump(c);
            else if (evs[i].events & EPOLLOUT)
                flush(c);
        }
    }
}

int main(int argc, char **argv)
{
    int ch;
    while ((ch = getopt(argc, argv, "c:d:w:q:D:v")) != -1) {
        switch (ch) {
        case 'c': conns_n = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'q': preload = atoll(optarg); break;
        case 'D': data_size = atoi(optarg); break;
        case 'v': verbose = 1; break;
        default:
            fprintf(stderr, "usage: beanstalk [-c conns=10] [-d secs=5] [-w warmup=1] [-q preload=1000] "
                            "[-D data bytes=16] [-v]\n");
            return 2;
        }
    }
    if (conns_n < 1 || data_size < 0 || data_size > 60000 || preload < 0 || duration <= 0)
        die("bad arguments");
    for (int i = 0; i < data_size; i++)
        data[i] = "0123456789abcdef"[i % 16];
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    atexit(stop_child);
    int port = start_beanstalkd();
    usleep(100000);
    long rss_base = rss_kb(child);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    conn_t *conns = calloc((size_t)conns_n, sizeof(*conns));
    if (!conns)
        die("out of memory");
    for (int i = 0; i < conns_n; i++) {
        conn_t *c = &conns[i];
        if ((c->fd = try_connect(port)) < 0)
            die("cannot connect to beanstalkd: %s", strerror(errno));
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
        c->preload = preload / conns_n + (i < preload % conns_n);
    }
    uint64_t t0 = now_ns();
    for (int i = 0; i < conns_n; i++)
        preload_pump(&conns[i]);
    loop_until(conns, 1, 0);
    double preload_secs = (double)(now_ns() - t0) / 1e9;
    long rss_loaded = rss_kb(child);

    uint64_t start = now_ns();
    measuring = warmup <= 0;
    for (int i = 0; i < conns_n; i++)
        send_next(&conns[i]);
    if (!measuring) {
        loop_until(conns, 0, start + (uint64_t)(warmup * 1e9));
        measuring = 1;
    }
    uint64_t m0 = now_ns();
    long long c0 = cpu_ns_of(child);
    loop_until(conns, 0, m0 + (uint64_t)(duration * 1e9));
    double secs = (double)(now_ns() - m0) / 1e9;
    long long c1 = cpu_ns_of(child);
    long rss_end = rss_kb(child);
    printf("scenario=beanstalk conns=%d preload=%lld preload_secs=%.2f secs=%.3f ops=%llu op_rate=%.0f "
           "cycles=%llu cycle_rate=%.0f errors=%llu p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
           "rss_base_kb=%ld rss_loaded_kb=%ld rss_end_kb=%ld cpu_us_per_op=%.2f\n",
           conns_n, preload, preload_secs, secs, (unsigned long long)st.ops, (double)st.ops / secs,
           (unsigned long long)st.cycles, (double)st.cycles / secs, (unsigned long long)st.errors,
           lathist_quantile(&st.lat, 0.5) / 1e3, lathist_quantile(&st.lat, 0.99) / 1e3,
           lathist_quantile(&st.lat, 0.999) / 1e3, st.lat.max / 1e3, rss_base, rss_loaded, rss_end,
           st.ops && c0 >= 0 ? (double)(c1 - c0) / 1e3 / (double)st.ops : 0.0);
    return 0;
}
