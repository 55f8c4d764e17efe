/*
 * mem_int.h -- what the files of the memory store share (mem.c: the loop
 * and durability; mem_events.c: events; mem_chan.c: channels and jobs).
 */
#ifndef STORE_MEM_INT_H
#define STORE_MEM_INT_H

#include "mem.h"

/* An answer waiting for the fsync that covers the log up to seq. */
typedef struct mem_durable {
    uint64_t seq;
    void (*fn)(void *arg, store_status_t st);
    void *arg;
} mem_durable_t;

/* Log positions (from, to] of a loop turn whose write failed: its changes
 * were undone, so an answer waiting for one of them gets 503. */
typedef struct mem_range {
    uint64_t from, to;
} mem_range_t;

struct mem_flusher;

typedef struct mem {
    store_t base;
    core_t *core;
    wal_t *wal;
    int fsync_always;         /* wal with -fsync always: answers wait for it */
    ntime_t (*clock)(void);
    size_t max_events, max_channel_events, max_channels;
    size_t metrics_max_channels;
    wal_log_fn log;
    struct st_h2o_socket_t *sync_sock; /* the log's eventfd on the loop */
    int fsync_failed_logged;  /* the fsync failure is logged; waiting for recovery */
    ntime_t probe_at;         /* last write probe while the log was failing */
    mem_durable_t *durable;   /* waiting for the write or fsync, oldest first:
                                 [durable_head, n_durable) of the array */
    size_t durable_head, n_durable, cap_durable;
    struct mem_flusher *flusher; /* writes the turn's changes before the loop
                                 sleeps; NULL without a loop (turn() does) */
    mem_range_t *failed;      /* turns undone after a failed write, in log
                                 order */
    size_t n_failed, cap_failed;
    uint64_t rebuilds;        /* times the state was rebuilt from the log */
    store_event_t *views;     /* results of the operation in progress */
    size_t cap_views;
    store_stats_t *stats;
    size_t cap_stats;
    store_job_t *jobs;
    size_t cap_jobs;
    char err[320];            /* the sentence of a failed operation */
    char cursor[CORE_CURSOR_LEN + 1]; /* the "next" of the listing in progress */
} mem_t;

static inline mem_t *mem_of(store_t *s)
{
    return (mem_t *)s;
}

/* The store's now, and the core ticked to it. */
ntime_t mem_tick(mem_t *m);

/* The channel of that name, or NULL: reads and other changes create none. */
channel_t *mem_find(mem_t *m, store_chan_t name);

/* The channel of that name for a change that adds n events (0: a job):
 * made if missing (*created = 1), unless the channel limit or an event
 * limit is reached: then NULL with res set to STORE_FULL. */
channel_t *mem_channel_for(mem_t *m, store_chan_t name, size_t n, int *created, store_res_t *res);

/* The change failed: drops the channel made for it (if created). */
void mem_channel_undo(mem_t *m, channel_t *ch, int created);

/* The store status of a core status: CORE_IO (the log failed) and
 * anything else the store has no word for is STORE_UNAVAILABLE. */
static inline store_status_t mem_status_of(core_status_t st)
{
    switch (st) {
    case CORE_OK: return STORE_OK;
    case CORE_NOT_FOUND: return STORE_NOT_FOUND;
    case CORE_GONE: return STORE_GONE;
    case CORE_CONFLICT: return STORE_CONFLICT;
    case CORE_INVALID: return STORE_INVALID;
    default: return STORE_UNAVAILABLE;
    }
}

/* Sets res to a failure with a sentence (fmt NULL: the status's usual
 * one, left to the layer above). */
void mem_fail(mem_t *m, store_res_t *res, store_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Completes an operation: fills in the log position an answer waits for,
 * calls done, then tells the layer above of channels that gained events. */
void mem_done(mem_t *m, store_res_t *res, store_done_fn done, void *arg);

/* Room for n event views, valid until the next call. */
store_event_t *mem_views(mem_t *m, size_t n);

/* The views of n core objects (a core_*_sorted array, which it frees):
 * view(&out[i], objs[i]) into the buffer *buf of *cap elements of size
 * bytes, grown as needed. Returns the buffer. */
void *mem_view_all(void **buf, size_t *cap, size_t size, void **objs, size_t n,
                   void (*view)(void *out, const void *obj));

void mem_view_event(mem_t *m, store_event_t *v, const event_t *e);

/* The answer of an operation the core cannot do yet. */
void mem_unsupported(mem_t *m, const char *what, store_done_fn done, void *arg);

/* mem_events.c, mem_chan.c: the operations, for the table in mem.c. */
void mem_publish(store_t *s, store_chan_t ch, const store_pub_t *pubs, size_t n, store_done_fn done,
                 void *arg);
void mem_list(store_t *s, const store_list_t *q, store_done_fn done, void *arg);
void mem_get(store_t *s, store_chan_t ch, eid_t id, store_done_fn done, void *arg);
void mem_lock(store_t *s, store_chan_t ch, eid_t id, int64_t ttl_ns, store_done_fn done, void *arg);
void mem_unlock(store_t *s, store_chan_t ch, eid_t id, const uint64_t *token, int64_t delay_ns,
                store_done_fn done, void *arg);
void mem_extend(store_t *s, store_chan_t ch, eid_t id, int64_t ttl_ns, const uint64_t *token,
                store_done_fn done, void *arg);
void mem_del(store_t *s, store_chan_t ch, eid_t id, const uint64_t *token, store_done_fn done,
             void *arg);
void mem_acquire(store_t *s, store_chan_t ch, size_t max, int64_t ttl_ns, store_done_fn done,
                 void *arg);
void mem_stats(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
void mem_channels(store_t *s, store_done_fn done, void *arg);
void mem_purge(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
void mem_channel_delete(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
void mem_settings_get(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
void mem_settings_put(store_t *s, store_chan_t ch, const store_settings_put_t *p,
                      store_done_fn done, void *arg);
void mem_redrive(store_t *s, store_chan_t ch, const store_chan_t *to, size_t max,
                 store_done_fn done, void *arg);
void mem_job_put(store_t *s, store_chan_t ch, const store_job_def_t *def, int replace,
                 store_done_fn done, void *arg);
void mem_job_get(store_t *s, store_chan_t ch, const char *name, size_t len, unsigned next,
                 store_done_fn done, void *arg);
void mem_jobs(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
void mem_job_delete(store_t *s, store_chan_t ch, const char *name, size_t len,
                    store_done_fn done, void *arg);
void mem_job_op(store_t *s, store_chan_t ch, const char *name, size_t len, store_job_op_t op,
                store_done_fn done, void *arg);
void mem_metrics(store_t *s, store_text_t *out);

#endif
