/*
 * fuzz_request.c -- libFuzzer target for the request path as a whole: raw
 * bytes in, HTTP responses out, through h2o's HTTP/1 parser, the router,
 * the JSON handling and the core.
 *
 * DESIGN
 * The server is made by http_server_new() itself over a memory store, so
 * the configuration fuzzed (filters, limits, the handler) is the one
 * main() runs; its listener is never connected to. Each input is one
 * connection: a socketpair whose server end is handed to
 * http_server_adopt(), as the listener would hand it over. The
 * input is cut at FUZZ_SEP ("~~~~"); each piece is written on its own and
 * the loop runs until the server has answered what it can, so requests
 * arrive both pipelined (within a piece) and in fragments (a request cut
 * by the separator). Then the loop runs on; once the server is idle the
 * client half-closes, and the loop runs until the server closes its end.
 *
 * Ids and lease tokens cannot be guessed, so in each piece FUZZ_ID_MARK
 * becomes the last "eventID" and FUZZ_TOKEN_MARK the last "lockToken" the
 * server answered so far. Each mark is as long as what replaces it, so
 * Content-Length stays right.
 *
 * Time is virtual: the store's clock (the only clock the handlers and the
 * loop read) is fuzz_clock, which returns fuzz_now. Each turn
 * (http_server_turn) adds 1 ms; when the server is idle, time jumps to the
 * next deadline the turn reported, as the real loop would sleep until it.
 * Delays, ttls, leases, long-poll timeouts and cron jobs all happen
 * without waiting, the same way every run.
 *
 * The core is kept across inputs, so what one input built meets the next;
 * every FUZZ_REQUEST_RENEW inputs (default 1000) the server and core are
 * freed and made anew, at the same virtual start time. FUZZ_REQUEST_RENEW=1
 * makes every input start empty, which a lone reproducer needs.
 *
 * Checks, each an abort() that libFuzzer reports as a crash:
 *   - ASan/UBSan clean, no assertion in our code or in h2o, no leak;
 *   - every request is answered or its connection closed: once the client
 *     has half-closed and parked acquirers are released, the server closes
 *     the connection and no longer counts it;
 *   - every response is "HTTP/1.1 " + 3-digit status + headers, framed by
 *     Content-Length, chunked, or the end of the stream (last only);
 *   - an application/json body parses as JSON, and an error (4xx/5xx) body
 *     is an object with an "error" string. FUZZ_UTF8=0 lets any byte
 *     >= 0x80 pass (so a known UTF-8 bug does not hide others);
 *     FUZZ_REQUEST_JSON=0 turns the check off;
 *   - a freed server leaves no socket, file, eventfd or epoll descriptor
 *     open (checked at renewal, so with the default the input that fails
 *     is not the culprit: rerun the saved corpus with FUZZ_REQUEST_RENEW=1).
 *
 * With FUZZ_REQUEST_WAL (fuzz_request_wal.c), the server also writes a log
 * in a temporary directory (fsync always, so answers wait for the fsync
 * thread; a low rewrite threshold, so forked rewrites run), and after each
 * input a copy of the log is replayed into a new core, which must hold the
 * same jobs and the same events, in the same order, as the live one: what
 * was answered is in the log, and replay rebuilds it. Every input starts
 * from an empty server and log.
 *
 * FUZZ_REQUEST_TOKEN=<t> turns bearer-token authentication on;
 * FUZZ_REQUEST_DEBUG=1 prints every response stream.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../src/base/util.h"
#include "../src/core/core.h"
#include "../src/http/server.h"
#include "../src/store/mem.h"
#include "../src/store/wal.h"
#include "../src/time/rfc3339.h"
#include "../src/time/tz.h"
#include "fuzz_util.h"

#define FUZZ_SEP "~~~~"
#define FUZZ_ID_MARK "$EVENT_ID$$$$$$$$$$$" /* ID_LEN bytes */
#define FUZZ_TOKEN_MARK "$LOCK_TOKEN$$$$$"  /* TOKEN_LEN bytes */
_Static_assert(sizeof(FUZZ_ID_MARK) - 1 == ID_LEN, "the id mark is as long as an id");
_Static_assert(sizeof(FUZZ_TOKEN_MARK) - 1 == TOKEN_LEN, "the token mark is as long as a token");
#define FUZZ_BASE_TIME "2026-11-27T10:00:00Z"
#define FUZZ_MAX_RESPONSE (16u << 20) /* a bigger answer stream is a failure */
#define FUZZ_IDLE_TURNS 3             /* turns without progress = idle */
#define FUZZ_MAX_JUMPS 16             /* clock jumps to a deadline per input */
#define FUZZ_MAX_TURNS 200000

static ntime_t fuzz_now;
static ntime_t fuzz_next = NTIME_MAX; /* the next deadline, from the last turn */
static h2o_loop_t *loop;
static core_t *core;
static wal_t *wal;            /* FUZZ_REQUEST_WAL only */
static store_t *store;
static http_server_t *srv;
static http_config_t cfg;
static store_mem_config_t mcfg;
static unsigned renew_every = 1000, inputs_on_core;
static int check_json = 1;   /* 0 off, 1 strict, 2 bytes >= 0x80 pass */
static int debug;             /* FUZZ_REQUEST_DEBUG=1: print each response stream */
#ifdef FUZZ_REQUEST_WAL
static const int use_wal = 1;
#else
static const int use_wal = 0;
#endif
static char wal_dir[64], replay_dir[80], live_dir[80]; /* FUZZ_REQUEST_WAL only */

static ntime_t fuzz_clock(void)
{
    return fuzz_now;
}

static void fail(const char *what, const char *resp, size_t len)
{
    fprintf(stderr, "fuzz_request: %s\n--- response stream (%zu bytes) ---\n%.*s\n---\n", what, len,
            (int)(len > 4096 ? 4096 : len), resp);
    abort();
}

static ntime_t base_time(void)
{
    char err[128];
    ntime_t t;
    if (rfc3339_parse(FUZZ_BASE_TIME, strlen(FUZZ_BASE_TIME), &t, err, sizeof(err)) != 0)
        abort();
    return t;
}

/* ---- the log (FUZZ_REQUEST_WAL) ---- */

static void wal_say(const char *level, const char *msg)
{
    if (debug || strcmp(level, "info") != 0)
        fprintf(stderr, "fuzz_request: log %s: %s\n", level, msg);
}

static void wal_dirs_remove(void)
{
    const char *files[] = {"distribuerad.log", "distribuerad.log.rewrite", "distribuerad.lock"};
    const char *dirs[] = {live_dir, replay_dir};
    for (int d = 0; d < 2; d++) {
        for (int f = 0; f < 3; f++) {
            char path[160];
            snprintf(path, sizeof(path), "%s/%s", dirs[d], files[f]);
            unlink(path);
        }
        rmdir(dirs[d]);
    }
    rmdir(wal_dir);
}

static void wal_dirs_make(void)
{
    snprintf(wal_dir, sizeof(wal_dir), "%s/fuzz-distribuerad-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(wal_dir))
        abort();
    snprintf(live_dir, sizeof(live_dir), "%s/live", wal_dir);
    snprintf(replay_dir, sizeof(replay_dir), "%s/replay", wal_dir);
    atexit(wal_dirs_remove);
}

/* Opens a fresh log in dir (or replays what is there) into core. */
static wal_t *wal_start(const char *dir, core_t *c, uint64_t rewrite_min, int fsync_mode)
{
    char err[300];
    wal_config_t wc = {.dir = dir, .log = wal_say, .fsync = fsync_mode, .rewrite_min = rewrite_min};
    wal_t *w = wal_open(&wc, err, sizeof(err));
    if (!w) {
        fprintf(stderr, "fuzz_request: %s\n", err);
        abort();
    }
    wal_replay_stats_t st;
    if (wal_replay(w, c, fuzz_now, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_request: the log does not replay: %s\n", err);
        abort();
    }
    return w;
}

/* Lets a running rewrite finish. Polls rather than passing force, whose
 * blocking waitpid() a signal (libFuzzer's timer) would interrupt. */
static void wal_rewrite_wait(wal_t *w, core_t *c, ntime_t now)
{
    while (wal_rewrite_running(w)) {
        usleep(100);
        wal_maybe_rewrite(w, c, now, 0);
    }
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    if (!in || !out)
        abort();
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            abort();
    fclose(in);
    fclose(out);
}

/* A snapshot as encoded records: jobs sorted (their order follows hash
 * tables, which may differ), events in the order the snapshot gives
 * (visibility order, then scheduled ones by id), the id generator left
 * out (an id made for a refused change is never logged). */
typedef struct rec {
    unsigned char *p;
    size_t len;
} rec_t;

typedef struct snap {
    rec_t *recs;
    size_t n, cap, njobs;
} snap_t;

static void snap_add(void *arg, const core_rec_t *r)
{
    snap_t *sn = arg;
    if (r->type == CORE_REC_IDGEN)
        return;
    if (sn->n == sn->cap) {
        sn->cap = sn->cap ? sn->cap * 2 : 64;
        sn->recs = xrealloc(sn->recs, sn->cap * sizeof(*sn->recs));
    }
    rec_t *x = &sn->recs[sn->n++];
    x->len = wal_record_size(r);
    x->p = xmalloc(x->len);
    wal_encode(r, x->p);
    sn->njobs += r->type == CORE_REC_SNAP_JOB;
}

static int rec_cmp(const void *a, const void *b)
{
    const rec_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->p, y->p, x->len);
}

static void snap_take(snap_t *sn, core_t *c, ntime_t now)
{
    memset(sn, 0, sizeof(*sn));
    core_journal_t j = {snap_add, NULL, sn};
    core_snapshot(c, now, &j);
    if (sn->njobs > 1)
        qsort(sn->recs, sn->njobs, sizeof(*sn->recs), rec_cmp); /* jobs come first */
}

static void snap_free(snap_t *sn)
{
    for (size_t i = 0; i < sn->n; i++)
        free(sn->recs[i].p);
    free(sn->recs);
}

/* Replays a copy of the live log and compares the result with the live
 * core at the same instant. */
static void wal_verify(const char *resp, size_t resp_len)
{
    core_t *live = core;
    ntime_t now = fuzz_now;
    core_tick(live, now); /* what is due now is done (and logged) before the copy */
    wal_rewrite_wait(wal, live, now);
    char from[160], to[160];
    snprintf(from, sizeof(from), "%s/distribuerad.log", live_dir);
    snprintf(to, sizeof(to), "%s/distribuerad.log", replay_dir);
    mkdir(replay_dir, 0755);
    copy_file(from, to);
    core_t *replayed = core_new(tz_utc());
    wal_t *w = wal_start(replay_dir, replayed, UINT64_MAX, WAL_FSYNC_NEVER);
    snap_t a, b;
    snap_take(&a, live, now);
    snap_take(&b, replayed, now);
    if (a.n != b.n || a.njobs != b.njobs)
        fail("the replayed log holds a different number of jobs or events", resp, resp_len);
    for (size_t i = 0; i < a.n; i++)
        if (rec_cmp(&a.recs[i], &b.recs[i]) != 0) {
            fprintf(stderr, "fuzz_request: snapshot record %zu of %zu (%s) differs after replay\n", i, a.n,
                    i < a.njobs ? "a job" : "an event");
            fail("the replayed log does not rebuild the live state", resp, resp_len);
        }
    snap_free(&a);
    snap_free(&b);
    wal_close(w);
    core_free(replayed);
    unlink(to);
}

/* ---- the server: rebuilt with a new core now and then ---- */

static void options_read(void)
{
    const char *e = getenv("FUZZ_REQUEST_RENEW");
    if (e && atoi(e) > 0)
        renew_every = (unsigned)atoi(e);
    if (use_wal) {
        renew_every = 1;
        wal_dirs_make();
    }
    e = getenv("FUZZ_REQUEST_DEBUG");
    debug = e && strcmp(e, "1") == 0;
    e = getenv("FUZZ_REQUEST_JSON");
    check_json = e && strcmp(e, "0") == 0 ? 0 : fuzz_check_utf8() ? 1 : 2;
    /* Small limits, so short inputs reach the 413 and 429 paths. */
    cfg.address = "127.0.0.1";
    cfg.port = 0;
    cfg.limits.max_body = 4096;
    cfg.limits.max_data = 512;
    cfg.limits.max_batch = 8;
    mcfg.max_channels = 32;
    mcfg.max_events = 256;
    mcfg.max_channel_events = 64;
    mcfg.clock = fuzz_clock;
    mcfg.log = wal_say;
    cfg.limits.max_waiters = 4;
    cfg.limits.max_connections = 4;
    cfg.limits.request_timeout_ms = 10000;
    cfg.auth_token = getenv("FUZZ_REQUEST_TOKEN"); /* "Authorization: Bearer <it>" */
    cfg.metrics_open = 0;
}

/* A new core, store and server, built by store_mem_new() and
 * http_server_new() themselves, so the configuration fuzzed is the one
 * main() runs. */
static void server_start(void)
{
    fuzz_now = base_time();
    fuzz_next = NTIME_MAX;
    inputs_on_core = 0;
    /* http_server_new takes SIGINT/SIGTERM; give them back to libFuzzer. */
    struct sigaction old_int, old_term;
    sigaction(SIGINT, NULL, &old_int);
    sigaction(SIGTERM, NULL, &old_term);
    loop = h2o_evloop_create();
    core = core_new(tz_utc());
    if (use_wal) {
        mkdir(live_dir, 0755);
        /* A low threshold: rewrites (a forked child) run now and then. */
        wal = wal_start(live_dir, core, 2048, WAL_FSYNC_ALWAYS);
    }
    mcfg.core = core;
    mcfg.wal = wal;
    mcfg.loop = loop;
    store = store_mem_new(&mcfg);
    cfg.loop = loop;
    srv = http_server_new(&cfg, store);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (!srv)
        abort();
}

/* h2o 2.2's h2o_evloop_destroy() leaves the loop's epoll fd open (h2o
 * issue #1609: a loop is meant to live as long as the process). Its
 * epoll backend keeps the fd right after the h2o_evloop_t; returns it if
 * it really is an epoll fd, else -1. */
static int loop_epoll_fd(h2o_loop_t *l)
{
    struct epoll_loop {
        h2o_evloop_t super;
        int ep;
    } *el = (struct epoll_loop *)l;
    char path[64], target[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", el->ep);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    return n == 22 && memcmp(target, "anon_inode:[eventpoll]", 22) == 0 ? el->ep : -1;
}

/* Every connection is closed between inputs, so nothing points into the
 * old server, store or core. */
static void server_renew(void)
{
    int ep = loop_epoll_fd(loop);
    http_server_free(srv);
    if (wal) {
        char path[160];
        wal_rewrite_wait(wal, core, fuzz_now);
        snprintf(path, sizeof(path), "%s/distribuerad.log", live_dir);
        store->ops->free(store); /* closes the log and frees the core */
        unlink(path);
    } else {
        store->ops->free(store);
    }
    wal = NULL;
    core = NULL;
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    close(ep);
    server_start();
}

/* One turn of the server's own loop that never sleeps, with 1 ms of
 * virtual time passing. */
static void fuzz_turn(void)
{
    fuzz_now += NTIME_NS_PER_MS;
    fuzz_next = http_server_turn(srv, 0);
}

/* ---- the client end ---- */

typedef struct client {
    int fd;
    char *resp;
    size_t len, cap;
    int eof;
} client_t;

/* Reads what is there. Returns 1 if anything (or EOF) arrived. */
static int client_read(client_t *c)
{
    int got = 0;
    while (!c->eof) {
        if (c->cap - c->len < 65536) {
            if (c->cap >= FUZZ_MAX_RESPONSE)
                fail("response stream too large", c->resp, c->len);
            c->cap = c->cap ? c->cap * 2 : 65536;
            c->resp = xrealloc(c->resp, c->cap);
        }
        ssize_t r = read(c->fd, c->resp + c->len, c->cap - c->len);
        if (r > 0) {
            c->len += (size_t)r;
            got = 1;
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            c->eof = 1; /* ECONNRESET counts as closed too */
            got = 1;
        } else if (errno == EAGAIN) {
            break;
        }
    }
    return got;
}

static void client_write(client_t *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return; /* the server closed: the rest is never read */
        fuzz_turn();
        client_read(c);
    }
}

/* Lets the server answer what it has: turns until one brings nothing. */
static void client_settle(client_t *c)
{
    for (int i = 0; i < 16; i++) {
        fuzz_turn();
        if (!client_read(c))
            break;
    }
}

/* Replaces every mark in p[0..n) by the value of the last "key":"..." in
 * the answers so far, if there is one of the mark's length. */
static void fill_in(client_t *c, uint8_t *p, size_t n, const char *mark, const char *key)
{
    size_t mlen = strlen(mark), klen = strlen(key);
    const char *val = NULL;
    if (c->len == 0)
        return;
    for (const char *r = c->resp, *end = c->resp + c->len; r && r < end;) {
        r = memmem(r, (size_t)(end - r), key, klen);
        if (r && (size_t)(end - r) >= klen + mlen + 1 && r[klen + mlen] == '"')
            val = r + klen;
        if (r)
            r += klen;
    }
    if (!val)
        return;
    for (uint8_t *q = p; (q = memmem(q, n - (size_t)(q - p), mark, mlen)) != NULL; q += mlen)
        memcpy(q, val, mlen);
}

/* Runs the loop until the server closes the connection. When it is idle,
 * time jumps to the next deadline, as the real loop would sleep until it;
 * when no jump is left, the client half-closes (h2o then closes an idle
 * connection); when still nothing moves, parked acquirers are answered as
 * at shutdown. Still open after that: the server has lost a request. */
static void client_drain(client_t *c)
{
    int idle = 0, jumps = 0, releases = 0, writing = 1;
    for (int turns = 0; !c->eof; turns++) {
        if (turns > FUZZ_MAX_TURNS)
            fail("connection still open after the turn budget", c->resp, c->len);
        fuzz_turn();
        if (client_read(c)) {
            idle = 0;
            releases = 0;
            continue;
        }
        if (++idle < FUZZ_IDLE_TURNS)
            continue;
        idle = 0;
        /* Answers wait for the fsync thread; a rewrite's child holds a copy
         * of every socket, so a closed connection reads EOF only once the
         * child is gone (-timeout catches one that never ends). */
        if (http_server_waiting_durable(srv) || (wal && wal_rewrite_running(wal))) {
            usleep(20);
            continue;
        }
        if (jumps < FUZZ_MAX_JUMPS && fuzz_next != NTIME_MAX && fuzz_next > fuzz_now) {
            /* whole milliseconds, as the loop would sleep without its timerfd */
            fuzz_now += (fuzz_next - fuzz_now + NTIME_NS_PER_MS - 1) / NTIME_NS_PER_MS * NTIME_NS_PER_MS;
            jumps++;
        } else if (writing) {
            shutdown(c->fd, SHUT_WR);
            writing = 0;
            jumps = FUZZ_MAX_JUMPS - 4; /* a few more for what the close starts */
        } else if (releases++ < 2) {
            http_server_release_parked(srv);
        } else {
            fprintf(stderr, "fuzz_request: %zu connection(s) open, %s answers waiting for fsync%s\n",
                    http_server_connections(srv), http_server_waiting_durable(srv) ? "some" : "no",
                    wal && wal_rewrite_running(wal) ? ", a log rewrite running" : "");
            fail("the server neither answers nor closes the connection (request lost)", c->resp, c->len);
        }
    }
}

/* ---- checking the response stream ---- */

static int starts(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

static int status_line_ok(const char *p, const char *end)
{
    return starts(p, end, "HTTP/1.1 ") && end - p >= 13 && p[9] >= '1' && p[9] <= '5' && p[10] >= '0' &&
           p[10] <= '9' && p[11] >= '0' && p[11] <= '9' && p[12] == ' ';
}

static int header_is(const char *line, size_t len, const char *name, const char **value, size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return 0;
    const char *v = line + n + 1, *e = line + len;
    while (v < e && *v == ' ')
        v++;
    *value = v;
    *vlen = (size_t)(e - v);
    return 1;
}

static void check_json_body(int status, const char *body, size_t len, const char *all, size_t all_len)
{
    if (!check_json || len == 0)
        return;
    char *copy = NULL;
    if (check_json == 2) { /* FUZZ_UTF8=0: bytes >= 0x80 pass as letters */
        copy = xmalloc(len);
        for (size_t i = 0; i < len; i++)
            copy[i] = (unsigned char)body[i] >= 0x80 ? 'a' : body[i];
        body = copy;
    }
    json_error_t jerr;
    json_t *v = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    free(copy);
    if (!v) {
        char msg[300];
        snprintf(msg, sizeof(msg), "an application/json body is not JSON: %s (column %d)", jerr.text,
                 jerr.column);
        fail(msg, all, all_len);
    }
    if (status >= 400 && !json_is_string(json_object_get(v, "error")))
        fail("an error body has no \"error\" string", all, all_len);
    json_decref(v);
}

/* Decodes a chunked body at p. Returns the end of it, or NULL. */
static const char *skip_chunked(const char *p, const char *end)
{
    for (;;) {
        char *num_end;
        const char *crlf = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!crlf)
            return NULL;
        unsigned long n = strtoul(p, &num_end, 16);
        size_t left = (size_t)(end - crlf - 2);
        if (num_end == p || n > left || left - n < 2)
            return NULL;
        p = crlf + 2 + n;
        if (!starts(p, end, "\r\n"))
            return NULL;
        p += 2;
        if (n == 0)
            return p;
    }
}

/* Checks one response at p. Returns where the next one starts (end when it
 * ran to the end of the stream). */
static const char *check_one(const char *p, const char *end, const char *all, size_t all_len)
{
    if (!status_line_ok(p, end))
        fail("a response does not start with \"HTTP/1.1 \" and a 3-digit status", all, all_len);
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
    if (!hend)
        fail("a response's header block has no end", all, all_len);
    const char *line = memmem(p, (size_t)(hend - p) + 2, "\r\n", 2) + 2;
    long long clen = -1;
    int chunked = 0, json = 0, close = 0;
    while (line < hend + 2) {
        const char *eol = memmem(line, (size_t)(hend + 2 - line), "\r\n", 2);
        const char *v;
        size_t vl;
        size_t ll = (size_t)(eol - line);
        if (!memchr(line, ':', ll))
            fail("a response header line has no ':'", all, all_len);
        if (header_is(line, ll, "content-length", &v, &vl)) {
            char num[24];
            if (vl == 0 || vl >= sizeof(num) || clen >= 0)
                fail("bad or repeated content-length", all, all_len);
            memcpy(num, v, vl);
            num[vl] = '\0';
            char *ne;
            clen = strtoll(num, &ne, 10);
            if (*ne || clen < 0)
                fail("bad content-length", all, all_len);
        } else if (header_is(line, ll, "transfer-encoding", &v, &vl)) {
            chunked = vl == 7 && strncasecmp(v, "chunked", 7) == 0;
        } else if (header_is(line, ll, "content-type", &v, &vl)) {
            json = vl >= 16 && strncasecmp(v, "application/json", 16) == 0;
        } else if (header_is(line, ll, "connection", &v, &vl)) {
            close = vl == 5 && strncasecmp(v, "close", 5) == 0;
        }
        line = eol + 2;
    }
    const char *body = hend + 4;
    if (status < 200 || status == 204 || status == 304)
        return body;
    if (clen >= 0) {
        /* An answer to HEAD has the length but no body: accept either,
         * provided what follows is the end or the next response. */
        if ((size_t)(end - body) >= (size_t)clen &&
            (body + clen == end || starts(body + clen, end, "HTTP/1.1 "))) {
            if (json)
                check_json_body(status, body, (size_t)clen, all, all_len);
            return body + clen;
        }
        if (body == end || starts(body, end, "HTTP/1.1 "))
            return body;
        fail("a response body does not match its content-length", all, all_len);
    }
    if (chunked) {
        const char *next = skip_chunked(body, end);
        if (!next)
            fail("a chunked response body is malformed", all, all_len);
        return next;
    }
    (void)close; /* no length: the body runs to the end of the stream */
    return end;
}

static void check_responses(const char *resp, size_t len)
{
    const char *p = resp, *end = resp + len;
    while (p < end)
        p = check_one(p, end, resp, len);
}

/* ---- the input ---- */

/* Open file descriptors other than pipes: a server that is gone must
 * leave none behind. Pipes are left out because the sanitizers start
 * llvm-symbolizer (and keep two pipes to it) the first time libFuzzer
 * prints a newly covered function. With debug, lists them. */
static int fds_open(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], target[300];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len >= 5 && memcmp(target, "pipe:", 5) == 0)
            continue;
        n++;
        if (debug)
            fprintf(stderr, "fuzz_request: fd %s -> %.*s\n", e->d_name, (int)(len > 0 ? len : 0), target);
    }
    closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv) {
        options_read();
        server_start();
    }
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
        abort();
    http_server_adopt(srv, fds[0]);
    client_t c = {.fd = fds[1]};
    uint8_t *piece = xmalloc(size ? size : 1);
    size_t at = 0, seplen = strlen(FUZZ_SEP);
    for (;;) {
        const uint8_t *sep = memmem(data + at, size - at, FUZZ_SEP, seplen);
        size_t stop = sep ? (size_t)(sep - data) : size, n = stop - at;
        memcpy(piece, data + at, n);
        fill_in(&c, piece, n, FUZZ_ID_MARK, "\"eventID\":\"");
        fill_in(&c, piece, n, FUZZ_TOKEN_MARK, "\"lockToken\":\"");
        client_write(&c, piece, n);
        client_settle(&c);
        if (!sep)
            break;
        at = stop + seplen;
    }
    free(piece);
    client_drain(&c);
    close(c.fd);
    h2o_evloop_run(loop, 0); /* frees the closed socket */
    if (http_server_connections(srv) != 0)
        fail("the client saw EOF but the server still counts the connection", c.resp, c.len);
    if (debug)
        fprintf(stderr, "--- response stream (%zu bytes) ---\n%.*s\n---\n", c.len, (int)c.len, c.resp);
    check_responses(c.resp, c.len);
    if (use_wal)
        wal_verify(c.resp, c.len);
    /* Renewing here, not before the next input, makes a leak of this
     * server's descriptors this input's fault. */
    if (++inputs_on_core >= renew_every) {
        static int fds_base = -1;
        server_renew();
        int n = fds_open();
        if (fds_base < 0)
            fds_base = n;
        if (debug)
            fprintf(stderr, "fuzz_request: %d file descriptors open\n", n);
        if (n > fds_base) {
            debug = 1;
            fds_open(); /* lists them */
            fail("a server that is gone left file descriptors open", c.resp, c.len);
        }
    }
    free(c.resp);
    return 0;
}
