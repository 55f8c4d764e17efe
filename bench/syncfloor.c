/*
 * syncfloor.c -- what one fdatasync of a log costs on this machine, with no
 * server around it: appended records against records written over zeros.
 *
 * Usage: syncfloor [-n SYNCS] [-s BYTES] [-d DIR]
 * Runs twice on a fresh file in DIR (default: the current directory): each
 * of SYNCS rounds writes BYTES (default 3 000 rounds of 2 400 bytes, a turn
 * of a busy log) and calls fdatasync. "append" grows the file each time;
 * "zeros" first writes zeros over the whole range and syncs them, then
 * writes over them, as the log does (docs/WAL.md, "Room"). For each it
 * prints the mean, p50 and p99 of a sync and the thread's CPU per sync
 * (CLOCK_THREAD_CPUTIME_ID). The file is removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double usec(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what)
{
    fprintf(stderr, "syncfloor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void fill_zeros(int fd, size_t total)
{
    static unsigned char zeros[1 << 16];
    for (size_t at = 0; at < total; at += sizeof(zeros))
        if (pwrite(fd, zeros, sizeof(zeros), (off_t)at) != (ssize_t)sizeof(zeros))
            die("writing zeros");
    if (fsync(fd) != 0)
        die("fsync");
}

static void run(const char *path, int zeros, int n, size_t size)
{
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(path);
    if (zeros)
        fill_zeros(fd, (size_t)n * size + (1 << 16));
    unsigned char *buf = malloc(size);
    double *lat = malloc((size_t)n * sizeof(*lat));
    if (!buf || !lat)
        die("malloc");
    memset(buf, 'x', size);
    double wall0 = usec(CLOCK_MONOTONIC), cpu0 = usec(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < n; i++) {
        double t = usec(CLOCK_MONOTONIC);
        if (pwrite(fd, buf, size, (off_t)i * (off_t)size) != (ssize_t)size)
            die("write");
        if (fdatasync(fd) != 0)
            die("fdatasync");
        lat[i] = usec(CLOCK_MONOTONIC) - t;
    }
    double wall = usec(CLOCK_MONOTONIC) - wall0, cpu = usec(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
    printf("%-6s syncs=%d bytes=%zu mean_us=%.0f p50_us=%.0f p99_us=%.0f cpu_per_sync_us=%.1f\n",
           zeros ? "zeros" : "append", n, size, wall / n, lat[n / 2], lat[(size_t)n * 99 / 100], cpu / n);
    free(buf);
    free(lat);
    close(fd);
    unlink(path);
}

int main(int argc, char **argv)
{
    int n = 3000;
    size_t size = 2400;
    const char *dir = ".";
    int opt;
    while ((opt = getopt(argc, argv, "n:s:d:")) != -1) {
        if (opt == 'n')
            n = atoi(optarg);
        else if (opt == 's')
            size = (size_t)atol(optarg);
        else if (opt == 'd')
            dir = optarg;
        else {
            fprintf(stderr, "usage: syncfloor [-n SYNCS] [-s BYTES] [-d DIR]\n");
            return 2;
        }
    }
    if (n < 1 || size < 1) {
        fprintf(stderr, "syncfloor: -n and -s must be positive\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/syncfloor.%d", dir, (int)getpid());
    run(path, 0, n, size);
    run(path, 1, n, size);
    return 0;
}
