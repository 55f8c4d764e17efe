/*
 * work.c -- dq work: run a command for each event of a channel.
 *
 * Design: --parallel N threads ("slots"), each with its own client, each
 * looping acquire (max 1, long-poll) -> run the command -> settle. One
 * event per acquire keeps a slot from holding leases it cannot start on.
 * While the command runs its slot waits on a pidfd with the extension
 * period as timeout, so the lease is extended every ttl/3 without a timer
 * thread. The data goes to the command through a memfd, so a large event
 * never blocks dq on a pipe the command does not read.
 *
 * Stopping: SIGTERM and SIGINT are handled by the main thread only (the
 * slots block them); the handler sets `stopping`. A slot that is parked in
 * an acquire aborts it (libcurl asks about once a second); a slot running a
 * command lets it finish and settles its event, then ends. An acquire
 * answered just as it is aborted leaves its event locked until its lease
 * runs out, after which it is handed out again (at-least-once delivery).
 *
 * Times: ttl and delays as the user wrote them go to the server; dq parses
 * them only for the extension period, in nanoseconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "json/jparse.h"
#include "dq.h"
#include "jtext.h"

#define WAIT "20s"              /* long-poll of each acquire */
#define ACQUIRE_TIMEOUT_MS 50000L /* the wait plus room for a slow answer */
#define TIMEOUT_MS 30000L
#define MAX_BACKOFF_MS 5000

extern char **environ;

typedef struct work {
    const char *channel;
    char *path;          /* "/<channel, escaped>" */
    const char *ttl;     /* lease, as given */
    long period_ms;      /* extend every this long: a third of the lease */
    const char *retry;   /* --retry-delay, or NULL */
    char **argv;         /* the command */
    atomic_int status;   /* DQ_OK, or why dq must stop */
} work_t;

typedef struct event {
    char *id, *token;
    char deliveries[24]; /* "" if the server does not report it */
    char *data;          /* what goes to stdin */
    size_t len;
} event_t;

static atomic_int stopping;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stopping, 1);
}

static int should_stop(void *arg)
{
    (void)arg;
    return atomic_load(&stopping);
}

static void nap_ms(long ms) /* sleeps, waking early when dq is stopping */
{
    for (; ms > 0 && !atomic_load(&stopping); ms -= 50)
        nanosleep(&(struct timespec){0, (ms < 50 ? ms : 50) * 1000000L}, NULL);
}

static void event_free(event_t *e)
{
    free(e->id), free(e->token), free(e->data);
}

/* ---- taking an event ---- */

static char *dup_str(const jval_t *v)
{
    return v && v->type == JV_STRING ? xstrndup(v->u.str.s, v->u.str.len) : NULL;
}

/* Reads the first event of an acquire answer into e; 1, or 0 if none. */
static int read_event(const dq_resp_t *r, event_t *e)
{
    jdoc_t d;
    jparse_err_t err;
    int got = 0;
    memset(e, 0, sizeof(*e));
    const jval_t *evs = jparse(&d, r->body, r->len, &err) == 0 ? jparse_get(d.root, "events", 6) : NULL;
    const jval_t *ev = evs && evs->type == JV_ARRAY ? evs->u.kids.first : NULL;
    if (ev) {
        e->id = dup_str(jparse_get(ev, "eventID", 7));
        e->token = dup_str(jparse_get(ev, "lockToken", 9));
        const jval_t *n = jparse_get(ev, "deliveries", 10), *data = jparse_get(ev, "data", 4);
        if (n && n->type == JV_INT)
            snprintf(e->deliveries, sizeof(e->deliveries), "%lld", (long long)n->u.i);
        static const char *const path[] = {"events", "#0", "data", NULL};
        size_t from, to;
        if (data && data->type == JV_STRING)
            e->data = xstrndup(data->u.str.s, e->len = data->u.str.len);
        else if (data && jtext_span(r->body, r->len, path, &from, &to) == 0)
            e->data = xstrndup(r->body + from, e->len = to - from);
        got = e->id && e->token;
        if (!e->data)
            e->data = xstrndup("", 0);
    }
    jparse_free(&d);
    if (ev && !got)
        event_free(e);
    return got;
}

/* One acquire: 1 with *e filled, 0 nothing came (or stopping), -1 try again
 * later (unreachable, busy), -2 refused for good. */
static int acquire(work_t *w, dq_client_t *c, event_t *e)
{
    jtext_t b;
    jtext_init(&b);
    jtext_members(&b, "\"max\":1,\"wait\":\"" WAIT "\"", strlen("\"max\":1,\"wait\":\"" WAIT "\""));
    jtext_str(&b, "ttl", w->ttl, strlen(w->ttl));
    jtext_end(&b);
    char path[4096];
    snprintf(path, sizeof(path), "%s/acquire", w->path);
    dq_resp_t r;
    dq_client_set_stop(c, should_stop, NULL);
    int sent = dq_request(c, "POST", path, b.buf, b.len, NULL, ACQUIRE_TIMEOUT_MS, &r);
    dq_client_set_stop(c, NULL, NULL);
    jtext_free(&b);
    char msg[512];
    int rc;
    if (sent != 0) {
        rc = atomic_load(&stopping) ? 0 : -1;
        if (rc)
            fprintf(stderr, "dq work: cannot reach the server (%s); trying again\n", r.err);
    } else if (r.status == 200) {
        rc = read_event(&r, e);
    } else {
        rc = r.status == 429 || r.status == 408 || r.status >= 500 ? -1 : -2;
        fprintf(stderr, "dq work: acquire on %s: %s (HTTP %ld)%s\n", w->channel,
                dq_resp_error(&r, msg, sizeof(msg)), r.status, rc == -1 ? "; trying again" : "");
    }
    dq_resp_free(&r);
    return rc;
}

/* ---- settling: extend, delete, unlock ---- */

/* PUT or DELETE on the event with its lease token; a failed connection is
 * tried three times. Returns the answer's status, 0 if none came. */
static long event_request(work_t *w, dq_client_t *c, const event_t *e, const char *method,
                          const char *body, char *msg, size_t n)
{
    char path[4096], tok[256];
    char *id = dq_escape(e->id);
    snprintf(path, sizeof(path), "%s/events/%s", w->path, id);
    snprintf(tok, sizeof(tok), "Lock-Token: %s", e->token);
    free(id);
    const char *hdrs[] = {tok, NULL};
    long status = 0;
    for (int attempt = 0; attempt < 3 && status == 0; attempt++) {
        dq_resp_t r;
        if (attempt)
            nanosleep(&(struct timespec){0, 200000000L}, NULL);
        if (dq_request(c, method, path, body, body ? strlen(body) : 0, hdrs, TIMEOUT_MS, &r) == 0) {
            status = r.status;
            dq_resp_error(&r, msg, n);
        } else {
            snprintf(msg, n, "%s", r.err);
        }
        dq_resp_free(&r);
    }
    return status;
}

static int extend(work_t *w, dq_client_t *c, const event_t *e)
{
    jtext_t b;
    char msg[512];
    jtext_init(&b);
    jtext_str(&b, "action", "EXTEND", 6);
    jtext_str(&b, "ttl", w->ttl, strlen(w->ttl));
    long status = event_request(w, c, e, "PUT", jtext_end(&b), msg, sizeof(msg));
    jtext_free(&b);
    if (status >= 200 && status < 300)
        return 0;
    fprintf(stderr, "dq work: event %s: could not extend its lease: %s (HTTP %ld)\n", e->id, msg, status);
    return -1;
}

/* Deletes the event if the command succeeded, else unlocks it. */
static void settle(work_t *w, dq_client_t *c, const event_t *e, int ok)
{
    jtext_t b;
    char msg[512];
    jtext_init(&b);
    jtext_str(&b, "action", "UNLOCK", 6);
    if (w->retry)
        jtext_str(&b, "delay", w->retry, strlen(w->retry));
    jtext_end(&b);
    long status = ok ? event_request(w, c, e, "DELETE", NULL, msg, sizeof(msg))
                     : event_request(w, c, e, "PUT", b.buf, msg, sizeof(msg));
    jtext_free(&b);
    if (status < 200 || status >= 300)
        fprintf(stderr, "dq work: event %s: could not %s it: %s (HTTP %ld)\n", e->id,
                ok ? "delete" : "unlock", msg, status);
}

/* ---- running the command ---- */

/* environ plus the event's variables (the array is malloc'd, and so are
 * the three strings at its end). */
static char **make_env(work_t *w, const event_t *e)
{
    static const char *const names[] = {"DQ_CHANNEL=", "DQ_EVENT_ID=", "DQ_DELIVERIES="};
    const char *vals[] = {w->channel, e->id, e->deliveries};
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = xcalloc(n + 4, sizeof(*env));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "DQ_", 3) != 0 ||
            (strncmp(environ[i], names[0], 11) && strncmp(environ[i], names[1], 12) &&
             strncmp(environ[i], names[2], 14)))
            env[k++] = environ[i];
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(names[i]) + strlen(vals[i]) + 1;
        env[k] = xmalloc(len);
        snprintf(env[k++], len, "%s%s", names[i], vals[i]);
    }
    return env;
}

static void free_env(char **env)
{
    size_t n = 0;
    while (env[n])
        n++;
    for (size_t i = n - 3; i < n; i++)
        free(env[i]);
    free(env);
}

/* A memfd holding the data, at offset 0; -1 on failure (errno set). */
static int data_fd(const event_t *e)
{
    int fd = memfd_create("dq-event", MFD_CLOEXEC);
    size_t off = 0;
    while (fd >= 0 && off < e->len) {
        ssize_t n = write(fd, e->data + off, e->len - off);
        if (n < 0 && errno != EINTR)
            return close(fd), -1;
        off += n > 0 ? (size_t)n : 0;
    }
    if (fd >= 0)
        lseek(fd, 0, SEEK_SET);
    return fd;
}

/* The slot blocks SIGTERM and SIGINT: the command starts with no signal
 * blocked and the default action for those (and SIGPIPE). */
static void spawn_attr(posix_spawnattr_t *at)
{
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_init(at);
    posix_spawnattr_setsigmask(at, &none);
    posix_spawnattr_setsigdefault(at, &dfl);
    posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

/* Starts the command for e; its pid, or -1 with a message printed. */
static pid_t spawn(work_t *w, const event_t *e)
{
    pid_t pid = -1;
    int fd = data_fd(e), err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fd, 0);
        spawn_attr(&at);
        char **env = make_env(w, e);
        err = posix_spawnp(&pid, w->argv[0], &fa, &at, w->argv, env);
        free_env(env);
        posix_spawnattr_destroy(&at);
        posix_spawn_file_actions_destroy(&fa);
        close(fd);
    }
    if (err) {
        fprintf(stderr, "dq work: cannot run %s: %s\n", w->argv[0], strerror(err));
        return -1;
    }
    return pid;
}

/* Waits up to ms for pid to exit; 1 with *status set if it did. pidfd is
 * -1 where the kernel has no pidfd_open: then it polls every 20 ms. */
static int wait_exit(pid_t pid, int pidfd, long ms, int *status)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return 0;
        if (pidfd >= 0)
            poll(&(struct pollfd){.fd = pidfd, .events = POLLIN}, 1, (int)left);
        else
            nanosleep(&(struct timespec){0, (left < 20 ? left : 20) * 1000000L}, NULL);
    }
}

static void report_failure(const event_t *e, int status)
{
    if (WIFEXITED(status))
        fprintf(stderr, "dq work: event %s: the command exited with status %d; unlocked\n", e->id,
                WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        fprintf(stderr, "dq work: event %s: the command was killed by signal %d; unlocked\n", e->id,
                WTERMSIG(status));
}

/* Runs the command for e, extending its lease, then settles it. */
static void run_event(work_t *w, dq_client_t *c, const event_t *e)
{
    pid_t pid = spawn(w, e);
    if (pid < 0) {
        settle(w, c, e, 0);
        atomic_store(&w->status, DQ_USAGE);
        atomic_store(&stopping, 1);
        return;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), status = 0, extending = 1;
    while (!wait_exit(pid, pidfd, w->period_ms, &status))
        if (extending && extend(w, c, e) != 0)
            extending = 0; /* lost: the delete or unlock will say so too */
    if (pidfd >= 0)
        close(pidfd);
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok)
        report_failure(e, status);
    settle(w, c, e, ok);
}

/* ---- slots and the command ---- */

static void *slot_main(void *arg)
{
    work_t *w = arg;
    dq_client_t *c = dq_client_new(dq_server_url, dq_token);
    long backoff = 100;
    while (c && !atomic_load(&stopping)) {
        event_t e;
        int rc = acquire(w, c, &e);
        if (rc == 1) {
            run_event(w, c, &e);
            event_free(&e);
        }
        if (rc == -1)
            nap_ms(backoff), backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
        else
            backoff = 100;
        if (rc == -2) {
            atomic_store(&w->status, DQ_REFUSED);
            atomic_store(&stopping, 1);
        }
    }
    if (!c)
        atomic_store(&w->status, DQ_USAGE), atomic_store(&stopping, 1);
    dq_client_free(c);
    return NULL;
}

/* 0 if argv0 names an executable file, directly or through PATH, as
 * posix_spawnp will look for it; else -1 with errno set. Checked once at
 * start, so that a typo fails at once instead of for every event. */
static int find_program(const char *argv0)
{
    if (strchr(argv0, '/'))
        return access(argv0, X_OK);
    const char *path = getenv("PATH");
    char full[4096];
    for (path = path && *path ? path : "/bin:/usr/bin"; *path;) {
        size_t n = strcspn(path, ":");
        snprintf(full, sizeof(full), "%.*s%s%s", (int)n, path, n ? "/" : "", argv0);
        if (access(full, X_OK) == 0)
            return 0;
        path += n + (path[n] == ':');
    }
    errno = ENOENT;
    return -1;
}

/* Reads the options into w; DQ_OK or DQ_USAGE (message printed). */
static int work_options(const dq_cmd_t *cmd, const dq_args_t *a, work_t *w, long *parallel)
{
    const char *ttl = dq_opt_value(cmd, a, "--ttl"), *par = dq_opt_value(cmd, a, "--parallel");
    long long ns;
    char *end = NULL;
    w->ttl = ttl ? ttl : "1m";
    w->retry = dq_opt_value(cmd, a, "--retry-delay");
    *parallel = par ? strtol(par, &end, 10) : 1;
    if (dq_duration_ns(w->ttl, &ns) != 0 || ns < 3000000)
        return fprintf(stderr, "dq work: --ttl %s is not a duration of at least 3ms\n", w->ttl), DQ_USAGE;
    w->period_ms = (long)(ns / 3000000);
    if (w->retry && dq_duration_ns(w->retry, &ns) != 0)
        return fprintf(stderr, "dq work: --retry-delay %s is not a duration\n", w->retry), DQ_USAGE;
    if (par && (*end || *parallel < 1 || *parallel > 1000))
        return fprintf(stderr, "dq work: --parallel needs a number from 1 to 1000\n"), DQ_USAGE;
    if (find_program(w->argv[0]) != 0)
        return fprintf(stderr, "dq work: cannot run %s: %s\n", w->argv[0], strerror(errno)), DQ_USAGE;
    return DQ_OK;
}

int dq_work(const dq_cmd_t *cmd, dq_client_t *c, const dq_args_t *a)
{
    (void)c; /* each slot has its own */
    work_t w = {.channel = a->pos[0], .argv = a->rest};
    long parallel;
    if (work_options(cmd, a, &w, &parallel) != DQ_OK)
        return DQ_USAGE;
    char *esc = dq_escape(w.channel);
    w.path = xmalloc(strlen(esc) + 2);
    sprintf(w.path, "/%s", esc);
    free(esc);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old); /* the slots inherit this mask */
    pthread_t *t = xcalloc((size_t)parallel, sizeof(*t));
    long started = 0;
    while (started < parallel && pthread_create(&t[started], NULL, slot_main, &w) == 0)
        started++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started < parallel) {
        fprintf(stderr, "dq work: cannot start %ld threads\n", parallel);
        atomic_store(&stopping, 1);
    }
    for (long i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
    free(w.path);
    return started == parallel ? atomic_load(&w.status) : DQ_USAGE;
}
