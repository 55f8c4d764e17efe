/*
 * fsync.c -- the fsync thread (see fsync.h). One mutex guards the offsets
 * and the fd; the sync itself runs without it.
 */
#include "fsync.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "base/sclock.h"
#include "base/util.h"
#include "wal.h"

struct fsyncer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;      /* the loop wrote, or stop */
    pthread_cond_t idle;      /* a sync ended */
    int fd;
    int mode;
    int notify_fd;
    int stop;
    int syncing;
    int asleep;               /* the thread waits for a write, untimed: only
                                 then does the loop signal it */
    int failing;
    uint64_t written, synced;
    fsync_stats_t st;
};

static void notify(fsyncer_t *f)
{
    uint64_t one = 1;
    if (f->notify_fd >= 0) {
        ssize_t r = write(f->notify_fd, &one, sizeof(one));
        (void)r;
    }
}

static void record(fsyncer_t *f, int64_t ns, int ok)
{
    hist_observe(&f->st.time, ns);
    if (!ok)
        f->st.errors++;
}

/* Syncs up to f->written. Called and returns with f->mu held. */
static int sync_locked(fsyncer_t *f)
{
    uint64_t target = f->written;
    int fd = f->fd;
    f->syncing = 1;
    pthread_mutex_unlock(&f->mu);
    int64_t t0 = sclock_mono();
    int rc = fdatasync(fd);
    int err = errno;
    int64_t t1 = sclock_mono();
    pthread_mutex_lock(&f->mu);
    f->syncing = 0;
    record(f, t1 - t0, rc == 0);
    if (rc == 0 && fd == f->fd && target > f->synced)
        f->synced = target;
    f->failing = rc != 0;
    pthread_cond_broadcast(&f->idle);
    errno = err;
    return rc;
}

/* Waits until `at` (monotonic ns, the cond's clock: see fsyncer_start)
 * or a signal. Called with f->mu held. */
static void wait_until(fsyncer_t *f, int64_t at)
{
    if (at <= sclock_mono())
        return;
    struct timespec until = {.tv_sec = at / 1000000000LL, .tv_nsec = at % 1000000000LL};
    pthread_cond_timedwait(&f->cond, &f->mu, &until);
}

/* Syncs and tells the loop when it has to know: ALWAYS, where answers
 * wait for the sync, or when the sync's success changed. Under INTERVAL
 * and NEVER nothing waits for it, and an eventfd write would wake the
 * loop 20 times a second for nothing. */
static void sync_and_tell(fsyncer_t *f)
{
    int was = f->failing;
    sync_locked(f);
    if (f->mode == WAL_FSYNC_ALWAYS || f->failing != was)
        notify(f);
}

/* struct sched_attr of sched_setattr(2), spelled out: glibc has no
 * wrapper before 2.41, and the kernel's header clashes with newer ones. */
struct slice_attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
};

/* Under ALWAYS every answer waits for this thread to run the moment a sync
 * ends, on a CPU that the loop, the clients and anything else may hold:
 * it needs little CPU (tens of us a sync) but needs it at once. The
 * thread asks for a short slice (the least, 0.1 ms): on Linux 6.12 and
 * later a woken task with a shorter slice preempts the running one. Its
 * share of the CPU and its nice value stay as they are; no privilege is
 * needed, and older kernels ignore or refuse the request, which is fine. */
static void ask_short_slice(void)
{
#ifdef SYS_sched_setattr
    struct slice_attr a;
    memset(&a, 0, sizeof(a));
    if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) != 0 || a.policy != 0 /* SCHED_OTHER */)
        return;
    a.size = sizeof(a);
    a.runtime = 100 * 1000;
    (void)syscall(SYS_sched_setattr, 0, &a, 0);
#endif
}

static void *fsync_main(void *arg)
{
    fsyncer_t *f = arg;
    if (f->mode == WAL_FSYNC_ALWAYS)
        ask_short_slice();
    int64_t last = 0;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        int dirty = f->written > f->synced;
        if (dirty && f->mode == WAL_FSYNC_ALWAYS) {
            /* Group commit: the next sync starts as soon as one ends,
             * covering everything written meanwhile. */
            sync_and_tell(f);
            continue;
        }
        if (f->mode == WAL_FSYNC_INTERVAL && last && sclock_mono() - last < FSYNC_INTERVAL_NS) {
            /* Within an interval of the last sync the thread sleeps to its
             * end without being signalled: a busy log costs one wake-up
             * per interval, not a signal per clean-to-dirty change. */
            wait_until(f, last + FSYNC_INTERVAL_NS);
            continue;
        }
        if (dirty && f->mode == WAL_FSYNC_INTERVAL) {
            last = sclock_mono();
            sync_and_tell(f);
            continue;
        }
        last = 0; /* idle: a write wakes the thread, which syncs at once */
        f->asleep = 1;
        pthread_cond_wait(&f->cond, &f->mu);
        f->asleep = 0;
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static const int64_t fsync_bounds[] = {500000, 1000000, 2500000, 5000000, 10000000, 25000000, 100000000};

fsyncer_t *fsyncer_start(int fd, int mode, uint64_t synced, int notify_fd)
{
    fsyncer_t *f = xcalloc(1, sizeof(*f));
    hist_init(&f->st.time, fsync_bounds, sizeof(fsync_bounds) / sizeof(fsync_bounds[0]));
    f->fd = fd;
    f->mode = mode;
    f->notify_fd = notify_fd;
    f->written = f->synced = synced;
    pthread_mutex_init(&f->mu, NULL);
    /* The interval wait is a duration: on the wall clock a step back
     * would hold every fsync until the clock caught up. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&f->idle, NULL);
    if (pthread_create(&f->thread, NULL, fsync_main, f) != 0) {
        fprintf(stderr, "distribuerad: cannot start the fsync thread\n");
        abort();
    }
    return f;
}

void fsyncer_written(fsyncer_t *f, uint64_t written)
{
    pthread_mutex_lock(&f->mu);
    /* Only a thread asleep for want of writes needs a signal (NEVER never
     * does: it only syncs on fsyncer_flush). One busy syncing or waiting
     * for its interval's end looks at `written` again by itself. */
    int wake = f->asleep && f->mode != WAL_FSYNC_NEVER;
    f->written = written;
    if (wake)
        f->asleep = 0; /* one signal is enough */
    pthread_mutex_unlock(&f->mu);
    if (wake)
        pthread_cond_signal(&f->cond);
}

uint64_t fsyncer_synced(fsyncer_t *f)
{
    pthread_mutex_lock(&f->mu);
    uint64_t s = f->mode == WAL_FSYNC_NEVER ? f->written : f->synced;
    pthread_mutex_unlock(&f->mu);
    return s;
}

int fsyncer_failing(fsyncer_t *f)
{
    pthread_mutex_lock(&f->mu);
    int r = f->failing;
    pthread_mutex_unlock(&f->mu);
    return r;
}

void fsyncer_set_fd(fsyncer_t *f, int fd, uint64_t synced)
{
    pthread_mutex_lock(&f->mu);
    while (f->syncing)
        pthread_cond_wait(&f->idle, &f->mu);
    f->fd = fd;
    f->written = f->synced = synced;
    pthread_mutex_unlock(&f->mu);
}

int fsyncer_flush(fsyncer_t *f)
{
    pthread_mutex_lock(&f->mu);
    while (f->syncing)
        pthread_cond_wait(&f->idle, &f->mu);
    int rc = sync_locked(f);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void fsyncer_stats(fsyncer_t *f, fsync_stats_t *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->st;
    pthread_mutex_unlock(&f->mu);
}

void fsyncer_stop(fsyncer_t *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cond);
    pthread_cond_destroy(&f->idle);
    free(f);
}
