/*
 * main.c -- flags, start-up and the loop.
 *
 * Flags follow Go's flag package, as the original server's do: -name value,
 * -name=value, --name value, --name=value; boolean flags take no value (or
 * =true/=false). Every flag can also come from the environment as
 * DISTRIBUERAD_<NAME> (upper case, '-' as '_'); a flag on the command line
 * wins over the environment.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "base/sclock.h"
#include "base/version.h"
#include "core/core.h"
#include "http/log.h"
#include "http/server.h"
#include "store/mem.h"
#include "store/pg.h"
#include "store/pgstart.h"
#include "store/wal.h"
#include "time/duration.h"
#include "time/tz.h"

enum flag_kind { FLAG_STR, FLAG_INT, FLAG_BOOL };

typedef struct flag {
    const char *name;
    enum flag_kind kind;
    const char *def;          /* default, as text */
    const char *help;
    const char *value;        /* set from env or the command line */
} flag_t;

static flag_t flags[] = {
    {"address", FLAG_STR, "0.0.0.0", "address to listen on", NULL},
    {"port", FLAG_INT, "3333", "TCP port to listen on (0 picks a free one)", NULL},
    {"data-dir", FLAG_STR, "./data", "directory of the event log", NULL},
    {"in-memory", FLAG_BOOL, "false", "keep nothing on disk (state is lost on restart)", NULL},
    {"fsync", FLAG_STR, "interval", "when the log is synced to disk: always (before each answer), interval (every 50ms) or never", NULL},
    {"truncate-corrupt-log", FLAG_BOOL, "false", "at start, cut the log at a damaged record instead of refusing to start", NULL},
    {"log-rewrite-min-size", FLAG_INT, "67108864", "rewrite the log once it is this many bytes and twice its size after the last rewrite", NULL},
    {"max-body-size", FLAG_INT, "1048576", "largest request body in bytes (413 past it)", NULL},
    {"max-data-size", FLAG_INT, "262144", "largest event data in bytes (413 past it; at most 1 GiB - 64 KiB, so an event fits one log record)", NULL},
    {"max-batch", FLAG_INT, "10000", "most events in one batch publish (413 past it)", NULL},
    {"max-channels", FLAG_INT, "100000", "most channels (429 past it)", NULL},
    {"metrics-max-channels", FLAG_INT, "1000", "channels with /metrics series of their own; the rest are summed", NULL},
    {"max-events", FLAG_INT, "10000000", "most live events in all channels (429 past it; with -database-url each replica counts them up to a second late)", NULL},
    {"max-channel-events", FLAG_INT, "1000000", "most live events in one channel (429 past it)", NULL},
    {"max-waiters", FLAG_INT, "10000", "most parked long-poll acquires (429 past it)", NULL},
    {"max-connections", FLAG_INT, "10000", "most open client connections; more are closed at once", NULL},
    {"request-timeout", FLAG_STR, "10s", "time to send a request's headers and body, to keep an idle connection, and for a client to read some of its answer", NULL},
    {"auth-token", FLAG_STR, "", "require Authorization: Bearer <token> (prefer the env or a file: flags show in ps)", NULL},
    {"auth-token-file", FLAG_STR, "", "read the bearer token from this file (e.g. a Kubernetes secret)", NULL},
    {"metrics-open", FLAG_BOOL, "false", "serve /metrics without the token (/healthz and /readyz always are)", NULL},
    {"tls-cert", FLAG_STR, "", "serve HTTPS with this PEM certificate chain (needs -tls-key)", NULL},
    {"tls-key", FLAG_STR, "", "the PEM private key for -tls-cert", NULL},
    {"log-format", FLAG_STR, "text", "log line format: text or json", NULL},
    {"access-log", FLAG_BOOL, "false", "log a line per answered request (never bodies, data or tokens)", NULL},
    {"database-url", FLAG_STR, "", "keep the state in PostgreSQL (a libpq URI or key=value string) instead of the log; replicas with the same URL and schema share it", NULL},
    {"database-schema", FLAG_STR, "distribuerad", "the PostgreSQL schema of the tables (created and migrated at start)", NULL},
    {"database-pool", FLAG_INT, "8", "PostgreSQL connections of this replica (plus one for notifications and one for background work)", NULL},
    {"database-timeout", FLAG_STR, "5s", "a request the database has not answered by then fails with 503", NULL},
};
#define NFLAGS (int)(sizeof(flags) / sizeof(flags[0]))
static unsigned char from_env[NFLAGS]; /* flags[i].value came from DISTRIBUERAD_<NAME> */

/* DISTRIBUERAD_<NAME>: upper case, '-' as '_'. */
static void env_name(const char *flag, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "DISTRIBUERAD_");
    for (const char *p = flag; *p && n < size - 1; p++)
        out[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    out[n] = '\0';
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: distribuerad [flags]\n\n"
               "Distribuerad distributes events over channels: immediate, delayed and\n"
               "expiring events, leases, and recurring cron jobs, over HTTP.\n\nFlags:\n");
    for (int i = 0; i < NFLAGS; i++) {
        char env[64];
        env_name(flags[i].name, env, sizeof(env));
        fprintf(f, "  -%s %s\n        %s (default %s; env %s)\n", flags[i].name,
                flags[i].kind == FLAG_BOOL ? "" : flags[i].kind == FLAG_INT ? "int" : "string",
                flags[i].help, flags[i].def, env);
    }
    fprintf(f, "  -help\n        show this help\n  -version\n        print the version\n");
}

static flag_t *find_flag(const char *name, size_t len)
{
    for (int i = 0; i < NFLAGS; i++)
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    return NULL;
}

static void load_env(void)
{
    for (int i = 0; i < NFLAGS; i++) {
        char env[64];
        env_name(flags[i].name, env, sizeof(env));
        const char *v = getenv(env);
        if (v) {
            flags[i].value = v;
            from_env[i] = 1;
        }
    }
}

/* Where a flag's value came from, for error messages: "flag -port" or
 * "environment variable DISTRIBUERAD_PORT" (an operator who set the
 * variable must find it named). */
static const char *flag_source(const char *name)
{
    static char buf[96];
    flag_t *f = find_flag(name, strlen(name));
    if (f && from_env[f - flags]) {
        char env[64];
        env_name(name, env, sizeof(env));
        snprintf(buf, sizeof(buf), "environment variable %s", env);
    } else {
        snprintf(buf, sizeof(buf), "flag -%s", name);
    }
    return buf;
}

/* Returns 0, 1 for "help/version printed", or -1 after an error message. */
static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            fprintf(stderr, "distribuerad: unexpected argument %s\n", a);
            return -1;
        }
        a += a[1] == '-' ? 2 : 1;
        if (strcmp(a, "") == 0)
            break; /* "--" ends the flags */
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if ((nlen == 4 && strncmp(a, "help", 4) == 0) || (nlen == 1 && a[0] == 'h')) {
            usage(stdout);
            return 1;
        }
        if (nlen == 7 && strncmp(a, "version", 7) == 0) {
            printf("distribuerad %s\n", DISTRIBUERAD_VERSION);
            return 1;
        }
        flag_t *f = find_flag(a, nlen);
        if (!f) {
            fprintf(stderr, "distribuerad: flag provided but not defined: -%.*s\n", (int)nlen, a);
            usage(stderr);
            return -1;
        }
        from_env[f - flags] = 0;
        if (eq)
            f->value = eq + 1;
        else if (f->kind == FLAG_BOOL)
            f->value = "true";
        else if (i + 1 < argc)
            f->value = argv[++i];
        else {
            fprintf(stderr, "distribuerad: flag needs an argument: -%s\n", f->name);
            return -1;
        }
    }
    return 0;
}

static const char *flag_str(const char *name)
{
    flag_t *f = find_flag(name, strlen(name));
    return f->value ? f->value : f->def;
}

static int flag_int(const char *name, long long min, long long max, long long *out)
{
    const char *s = flag_str(name);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "distribuerad: invalid value \"%s\" for %s: want an integer from %lld to %lld\n",
                s, flag_source(name), min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int flag_bool(const char *name, int *out)
{
    const char *s = flag_str(name);
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "t") || !strcmp(s, "TRUE") || !strcmp(s, "True"))
        *out = 1;
    else if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "f") || !strcmp(s, "FALSE") || !strcmp(s, "False"))
        *out = 0;
    else {
        fprintf(stderr, "distribuerad: invalid boolean value \"%s\" for %s\n", s, flag_source(name));
        return -1;
    }
    return 0;
}

/* The bearer token from -auth-token or -auth-token-file, or NULL for none.
 * Sets *bad after printing why it cannot be used. The token is never
 * logged. */
static char *auth_token(int *bad)
{
    const char *t = flag_str("auth-token"), *file = flag_str("auth-token-file");
    *bad = 0;
    if (*t && *file) {
        fprintf(stderr, "distribuerad: give -auth-token or -auth-token-file, not both\n");
        *bad = 1;
        return NULL;
    }
    if (*t)
        return strdup(t);
    if (!*file)
        return NULL;
    FILE *f = fopen(file, "r");
    char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (!f || ferror(f)) {
        fprintf(stderr, "distribuerad: cannot read the token file %s: %s\n", file, strerror(errno));
        if (f)
            fclose(f);
        *bad = 1;
        return NULL;
    }
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--; /* secrets written by editors and kubectl often end in a newline */
    buf[n] = '\0';
    if (n == 0) {
        fprintf(stderr, "distribuerad: the token file %s is empty\n", file);
        *bad = 1;
        return NULL;
    }
    return strdup(buf);
}

static int flag_duration_ms(const char *name, uint64_t *ms)
{
    const char *s = flag_str(name);
    int64_t ns;
    char err[200];
    if (duration_parse(s, strlen(s), &ns, err, sizeof(err)) != 0 || ns <= 0) {
        fprintf(stderr, "distribuerad: invalid value \"%s\" for %s: want a positive duration such as 10s\n", s,
                flag_source(name));
        return -1;
    }
    *ms = (uint64_t)((ns + NTIME_NS_PER_MS - 1) / NTIME_NS_PER_MS);
    return 0;
}

/* Lets the process hold max connections plus its own files; where the
 * open-file limit cannot be raised that far, fewer connections are
 * allowed, so the excess is closed at once instead of failing accept. */
static size_t fit_fd_limit(size_t conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return conns;
    rlim_t want = (rlim_t)conns + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= want)
        return conns;
    size_t fit = rl.rlim_cur > 128 ? (size_t)rl.rlim_cur - 64 : 64;
    log_warn("the open-file limit is %llu: allowing %zu connections, not %zu",
             (unsigned long long)rl.rlim_cur, fit, conns);
    return fit;
}

static void wal_log(const char *level, const char *msg)
{
    if (!strcmp(level, "error"))
        log_error("%s", msg);
    else if (!strcmp(level, "warn"))
        log_warn("%s", msg);
    else
        log_info("%s", msg);
}

/* Opens the log in dir and replays it into core. NULL after logging why. */
static wal_t *open_log(const char *dir, wal_fsync_t mode, int truncate_corrupt, uint64_t rewrite_min,
                       core_t *core)
{
    char err[1024];
    wal_config_t wc = {.dir = dir, .log = wal_log, .fsync = mode, .truncate_corrupt = truncate_corrupt,
                       .rewrite_min = rewrite_min};
    wal_t *wal = wal_open(&wc, err, sizeof(err));
    if (!wal) {
        log_error("%s", err);
        return NULL;
    }
    wal_replay_stats_t st;
    if (wal_replay(wal, core, sclock_now(), &st, err, sizeof(err)) != 0) {
        log_error("%s", err);
        wal_close(wal);
        return NULL;
    }
    log_info("recovered %llu records (%llu bytes) from %s/distribuerad.log in %.1f ms: %llu events live",
             (unsigned long long)st.records, (unsigned long long)st.bytes, dir, (double)st.elapsed_ns / 1e6,
             (unsigned long long)st.events);
    return wal;
}

/* The PostgreSQL flags, checked; *url is NULL without -database-url.
 * Returns 0, or -1 after a message. */
static int database_flags(int in_memory, const char **url, const char **schema, long long *pool,
                          uint64_t *timeout_ms)
{
    const char *u = flag_str("database-url");
    *url = *u ? u : NULL;
    *schema = flag_str("database-schema");
    if (flag_int("database-pool", 1, 1000, pool) || flag_duration_ms("database-timeout", timeout_ms))
        return -1;
    if (*url && in_memory) {
        fprintf(stderr, "distribuerad: -database-url and -in-memory exclude each other: the state lives in the database\n");
        return -1;
    }
    if (!**schema || strlen(*schema) > 63) {
        fprintf(stderr, "distribuerad: invalid value \"%s\" for flag -database-schema: want 1 to 63 bytes\n", *schema);
        return -1;
    }
    return 0;
}

/* Connects to the database, migrates its schema and makes the
 * PostgreSQL store on it. NULL after logging why (never the password). */
static store_t *open_database(const store_pg_config_t *pc)
{
    char info[1024], err[2048];
    if (pg_start(pc->url, pc->schema, info, sizeof(info), err, sizeof(err)) != 0) {
        log_error("%s", err);
        return NULL;
    }
    log_info("%s", info);
    return store_pg_new(pc);
}

typedef struct store_limits {
    size_t max_events, max_channel_events, max_channels;
    size_t metrics_max_channels;
} store_limits_t;

typedef struct log_opts {
    const char *dir;
    wal_fsync_t fsync;
    int truncate_corrupt;
    uint64_t rewrite_min;
    int in_memory;
} log_opts_t;

/* The memory store: the core, replayed from the log in lo->dir unless in
 * memory only. NULL after logging why. */
static store_t *open_memory(const log_opts_t *lo, const tz_t *zone, h2o_loop_t *loop,
                            const store_limits_t *lim)
{
    core_t *core = core_new(zone);
    wal_t *wal = NULL;
    if (lo->in_memory) {
        log_warn("running in memory only: nothing survives a restart");
    } else if (!(wal = open_log(lo->dir, lo->fsync, lo->truncate_corrupt, lo->rewrite_min, core))) {
        core_free(core);
        return NULL;
    }
    store_mem_config_t mc = {.core = core, .wal = wal, .loop = loop, .max_events = lim->max_events,
                             .max_channel_events = lim->max_channel_events,
                             .max_channels = lim->max_channels,
                             .metrics_max_channels = lim->metrics_max_channels, .log = wal_log};
    return store_mem_new(&mc);
}

int main(int argc, char **argv)
{
    /* A log that hits the file-size limit must fail its write (EFBIG, then
     * 503), not kill the process. */
    signal(SIGXFSZ, SIG_IGN);
    /* Blocks of a megabyte or more (a listing of 100 000 events is 27 MB)
     * are mapped, so they go back to the system when the answer is freed.
     * Left to itself, glibc raises this threshold to the size of each
     * mapped block freed, and the next big answers then come from the
     * heap, which rarely shrinks: clients cut off for not reading kept
     * holding hundreds of megabytes that way. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    load_env();
    int rc = parse_args(argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    long long port, max_body, max_data, max_batch;
    int in_memory;
    if (flag_int("port", 0, 65535, &port) || flag_int("max-body-size", 1, WAL_MAX_DATA, &max_body) ||
        flag_int("max-data-size", 0, WAL_MAX_DATA, &max_data) || flag_int("max-batch", 1, 1000000, &max_batch) ||
        flag_bool("in-memory", &in_memory))
        return 2;
    const char *log_format = flag_str("log-format");
    if (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0) {
        fprintf(stderr, "distribuerad: invalid value \"%s\" for %s: want text or json\n", log_format,
                flag_source("log-format"));
        return 2;
    }
    log_set_json(strcmp(log_format, "json") == 0);

    const char *fsync_s = flag_str("fsync");
    wal_fsync_t fsync_mode = !strcmp(fsync_s, "always") ? WAL_FSYNC_ALWAYS
                             : !strcmp(fsync_s, "never") ? WAL_FSYNC_NEVER
                                                         : WAL_FSYNC_INTERVAL;
    if (strcmp(fsync_s, "always") && strcmp(fsync_s, "never") && strcmp(fsync_s, "interval")) {
        fprintf(stderr, "distribuerad: invalid value \"%s\" for %s: want always, interval or never\n", fsync_s,
                flag_source("fsync"));
        return 2;
    }
    long long rewrite_min, max_channels, max_events, max_channel_events, max_waiters, max_conns, metrics_max;
    int truncate_corrupt, metrics_open, bad_token, access_log;
    uint64_t request_timeout_ms;
    if (flag_int("log-rewrite-min-size", 0, 1LL << 50, &rewrite_min) || flag_bool("truncate-corrupt-log", &truncate_corrupt) ||
        flag_int("max-channels", 1, 1LL << 40, &max_channels) || flag_int("max-events", 1, 1LL << 40, &max_events) ||
        flag_int("max-channel-events", 1, 1LL << 40, &max_channel_events) ||
        flag_int("max-waiters", 0, 1LL << 30, &max_waiters) || flag_int("max-connections", 1, 1LL << 30, &max_conns) ||
        flag_duration_ms("request-timeout", &request_timeout_ms) || flag_bool("metrics-open", &metrics_open) ||
        flag_bool("access-log", &access_log) || flag_int("metrics-max-channels", 1, 1LL << 30, &metrics_max))
        return 2;
    const char *tls_cert = flag_str("tls-cert"), *tls_key = flag_str("tls-key");
    if (!*tls_cert != !*tls_key) {
        fprintf(stderr, "distribuerad: -tls-cert and -tls-key go together\n");
        return 2;
    }
    char *token = auth_token(&bad_token);
    if (bad_token)
        return 2;
    const char *db_url, *db_schema;
    long long db_pool;
    uint64_t db_timeout_ms;
    if (database_flags(in_memory, &db_url, &db_schema, &db_pool, &db_timeout_ms) != 0) {
        free(token);
        return 2;
    }
    const tz_t *zone = tz_local();
    log_info("distribuerad %s starting (pid %d, cron zone %s)", DISTRIBUERAD_VERSION, (int)getpid(), tz_name(zone));
    h2o_loop_t *loop = h2o_evloop_create();
    store_limits_t limits = {.max_events = (size_t)max_events, .max_channel_events = (size_t)max_channel_events,
                             .max_channels = (size_t)max_channels,
                             .metrics_max_channels = (size_t)metrics_max};
    store_t *store;
    if (db_url) {
        store_pg_config_t pc = {.loop = loop, .url = db_url, .schema = db_schema, .pool = (size_t)db_pool,
                                .timeout_ms = db_timeout_ms, .max_events = limits.max_events,
                                .max_channel_events = limits.max_channel_events,
                                .max_channels = limits.max_channels,
                                .metrics_max_channels = limits.metrics_max_channels, .zone = zone, .log = wal_log};
        store = open_database(&pc);
    } else {
        log_opts_t lo = {.dir = flag_str("data-dir"), .fsync = fsync_mode, .truncate_corrupt = truncate_corrupt,
                         .rewrite_min = (uint64_t)rewrite_min, .in_memory = in_memory};
        store = open_memory(&lo, zone, loop, &limits);
    }
    if (!store) {
        h2o_evloop_destroy(loop);
        tz_cleanup();
        free(token);
        return 1;
    }
    http_config_t cfg = {
        .address = flag_str("address"),
        .port = (int)port,
        .limits = {.max_body = (size_t)max_body, .max_data = (size_t)max_data, .max_batch = (size_t)max_batch,
                   .max_waiters = (size_t)max_waiters, .max_connections = fit_fd_limit((size_t)max_conns),
                   .request_timeout_ms = request_timeout_ms},
        .loop = loop,
        .auth_token = token,
        .metrics_open = metrics_open,
        .tls_cert = *tls_cert ? tls_cert : NULL,
        .tls_key = *tls_key ? tls_key : NULL,
        .access_log = access_log,
    };
    http_server_t *server = http_server_new(&cfg, store);
    if (server)
        http_server_run(server);
    /* The store first: it writes and fsyncs what is left of the log, and
     * answers what is still in flight into the server. */
    store->ops->free(store);
    http_server_free(server);
    h2o_evloop_run(loop, 0); /* lets the loop close what was closed on it */
    /* A server that could not dispose its context (a client ignored the
     * shutdown) leaves its timeouts on the loop, which h2o then refuses
     * to destroy: its memory stays until exit. */
    if (h2o_linklist_is_empty(&loop->_timeouts))
        h2o_evloop_destroy(loop);
    tz_cleanup();
    free(token);
    if (!server)
        return 1;
    log_info("stopped");
    return 0;
}
