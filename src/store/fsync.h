/*
 * fsync.h -- the thread that makes the log durable, so the event loop never
 * waits on the disk.
 *
 * Policies: ALWAYS syncs as soon as there is something unsynced; requests
 * that arrive while a sync runs share the next one (group commit).
 * INTERVAL syncs at most every 50 ms while there is something unsynced.
 * NEVER leaves it to the kernel (fsyncer_flush still syncs, at stop).
 * The loop wakes the thread only when the log goes from clean to dirty
 * (INTERVAL) or when no sync is running (ALWAYS): a wake-up per commit
 * would cost a context switch per request.
 * The thread reports progress through `synced` and, for the loop, by
 * writing to notify_fd (an eventfd).
 */
#ifndef FSYNC_H
#define FSYNC_H

#include <stdint.h>
#include "base/hist.h"

typedef struct fsyncer fsyncer_t;

#define FSYNC_INTERVAL_NS (50LL * 1000 * 1000)
typedef struct fsync_stats {
    uint64_t errors;
    hist_t time;              /* <= 0.5, 1, 2.5, 5, 10, 25, 100 ms, more */
} fsync_stats_t;

/* Starts the thread for fd, whose first `synced` bytes are on disk.
 * mode is a wal_fsync_t. */
fsyncer_t *fsyncer_start(int fd, int mode, uint64_t synced, int notify_fd);

/* The loop wrote up to offset `written`. */
void fsyncer_written(fsyncer_t *f, uint64_t written);

uint64_t fsyncer_synced(fsyncer_t *f);
int fsyncer_failing(fsyncer_t *f);

/* Switches to a new file (after a rewrite) whose `synced` bytes are on
 * disk. Waits for a sync of the old file in progress to end. */
void fsyncer_set_fd(fsyncer_t *f, int fd, uint64_t synced);

/* Syncs everything written so far, now, from the calling thread. */
int fsyncer_flush(fsyncer_t *f);

void fsyncer_stats(fsyncer_t *f, fsync_stats_t *out);

/* Stops the thread and frees f (the caller syncs first with
 * fsyncer_flush, in every mode). */
void fsyncer_stop(fsyncer_t *f);

#endif
