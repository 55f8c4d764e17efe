/*
 * mem.h -- the memory store: store.h over the core of core/ and the log of
 * wal.h (fsync thread, replay, rewrite).
 *
 * Every operation completes before it returns: it ticks the core to the
 * store's now (so a read never shows an expired event or hides a due
 * one), checks the limits, applies the change through the core (which
 * logs it first) and calls done. With `-fsync always` an answer that
 * reports a change must wait for the group commit: results carry the
 * log position (durable_seq) and on_durable fires when the fsync thread
 * has passed it.
 *
 * The loop: turn() runs what is due in the core, starts or completes a
 * log rewrite, probes a failing log once a second (so /readyz recovers by
 * itself), and tells the layer above which channels gained free events
 * (store_avail). It returns when it needs to run again.
 *
 * Channels, as store.h says: a publish or job add creates its channel
 * (STORE_FULL at max_channels, or when the events would pass a limit),
 * and drops it again if the change then fails; every other operation on
 * a missing channel answers as for an empty one.
 *
 * Not yet in the core, so answered STORE_INVALID "not supported yet":
 * settings, purge, channel delete, redrive, job replace, pause, resume and
 * trigger, next runs, priority, idempotency keys, list states other than
 * visible and paging, unlock with a delay.
 */
#ifndef STORE_MEM_H
#define STORE_MEM_H

#include "core/core.h"
#include "store.h"
#include "wal.h"

struct st_h2o_evloop_t;

typedef struct store_mem_config {
    core_t *core;             /* the state (replayed already); the store owns
                                 it from now on and frees it */
    wal_t *wal;               /* its log, or NULL (in memory only); owned too */
    struct st_h2o_evloop_t *loop; /* watches the log's fsync progress; NULL:
                                 only turn() looks (tests, benches) */
    ntime_t (*clock)(void);   /* the store's clock; NULL: the server's
                                 clock (base/sclock.h), floored at the
                                 core's last instant */
    size_t max_events;        /* live events in all channels (STORE_FULL past it) */
    size_t max_channel_events; /* in one channel */
    size_t max_channels;
    size_t metrics_max_channels; /* channels with /metrics series of their
                                 own; 0: 1000 */
    wal_log_fn log;           /* where the store says what happened; NULL: stderr */
} store_mem_config_t;

/* A memory store over cfg->core and cfg->wal. Never NULL. */
store_t *store_mem_new(const store_mem_config_t *cfg);

#endif
