/*
 * replay_bench.c -- restart time: writes a log of N published events (16
 * bytes of data each, in batches of 1000, as the server would log them),
 * then starts the real server on it and measures the time until it is
 * listening, and the replay time it reports.
 *
 *   replay_bench -b ../distribuerad [-n 1000000] [-d DIR]
 * Output: one line of key=value.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "store/wal.h"

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void quiet(const char *level, const char *msg)
{
    (void)level;
    (void)msg;
}

/* Writes n events into a fresh log in dir. Returns the log's size. */
static long write_log(const char *dir, long n)
{
    char err[512];
    wal_config_t cfg = {.dir = dir, .log = quiet, .fsync = WAL_FSYNC_NEVER, .rewrite_min = 1ULL << 50};
    wal_t *w = wal_open(&cfg, err, sizeof(err));
    if (!w) {
        fprintf(stderr, "replay_bench: %s\n", err);
        exit(1);
    }
    core_t *c = core_new(tz_utc());
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ntime_t now = (ntime_t)ts.tv_sec * NTIME_NS_PER_S + ts.tv_nsec - 60 * NTIME_NS_PER_S;
    wal_replay_stats_t st;
    if (wal_replay(w, c, now, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "replay_bench: %s\n", err);
        exit(1);
    }
    channel_t *ch = core_channel(c, "bench", 5);
    core_pub_t p[1000];
    event_t *out[1000];
    for (int i = 0; i < 1000; i++)
        p[i] = (core_pub_t){.data = "0123456789abcdef", .len = 16, .publish_at = now, .ttl_ns = 24 * 3600 * NTIME_NS_PER_S};
    for (long done = 0; done < n; done += 1000) {
        size_t k = n - done < 1000 ? (size_t)(n - done) : 1000;
        if (core_publish_batch(c, ch, now, p, k, out, NULL, NULL) != CORE_OK) {
            fprintf(stderr, "replay_bench: writing the log failed\n");
            exit(1);
        }
        now += NTIME_NS_PER_MS;
    }
    wal_metrics_t m;
    wal_get_metrics(w, &m);
    wal_close(w);
    core_free(c);
    return (long)m.size;
}

/* Starts bin on dir and waits for its "listening" line. */
static void restart(const char *bin, const char *dir, double *listen_s, double *replay_ms)
{
    int fds[2];
    if (pipe(fds) != 0)
        exit(1);
    double t0 = mono();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        execl(bin, bin, "-address", "127.0.0.1", "-port", "0", "-data-dir", dir, "-max-events", "100000000",
              "-max-channel-events", "100000000", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[1024];
    *listen_s = -1;
    *replay_ms = -1;
    while (fgets(line, sizeof(line), f)) {
        char *r = strstr(line, " in ");
        if (strstr(line, "recovered") && r)
            *replay_ms = atof(r + 4);
        if (strstr(line, "listening on")) {
            *listen_s = mono() - t0;
            break;
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fclose(f);
}

int main(int argc, char **argv)
{
    const char *bin = "../distribuerad", *dir = NULL;
    long n = 1000000;
    int opt;
    while ((opt = getopt(argc, argv, "b:n:d:")) != -1) {
        if (opt == 'b')
            bin = optarg;
        else if (opt == 'n')
            n = atol(optarg);
        else if (opt == 'd')
            dir = optarg;
        else {
            fprintf(stderr, "usage: replay_bench -b BINARY [-n EVENTS] [-d DIR]\n");
            return 2;
        }
    }
    char tmp[] = "/tmp/distribuerad-replay-XXXXXX";
    if (!dir && !(dir = mkdtemp(tmp))) {
        perror("mkdtemp");
        return 1;
    }
    double t0 = mono();
    long size = write_log(dir, n);
    double write_s = mono() - t0;
    double best_listen = 1e9, best_replay = 1e9;
    for (int i = 0; i < 3; i++) { /* the first start reads the file from disk, later ones from the cache */
        double listen_s, replay_ms;
        restart(bin, dir, &listen_s, &replay_ms);
        if (listen_s < 0) {
            fprintf(stderr, "replay_bench: the server did not start\n");
            return 1;
        }
        if (listen_s < best_listen)
            best_listen = listen_s;
        if (replay_ms < best_replay)
            best_replay = replay_ms;
    }
    printf("replay events=%ld log_bytes=%ld write_s=%.3f replay_ms=%.1f start_to_listen_ms=%.1f\n", n, size, write_s,
           best_replay, best_listen * 1e3);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
