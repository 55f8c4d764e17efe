/*
 * store.h -- the seam: every operation of the API on the state, whichever
 * store holds it.
 *
 * Two stores implement it: the memory store (store/mem.h, made by
 * store_mem_new: the core of core/, replayed and logged by wal.c and
 * fsync.c) and the PostgreSQL store (store/pg.h, store_pg_new). main.c
 * makes one and hands it to the HTTP layer, which reaches state only
 * through this header; nothing above it knows which store it talks to.
 *
 * Calls: each operation takes a request struct (borrowed for the call
 * only: the store copies what it keeps) and a completion (fn, arg). The
 * store calls fn exactly once, either before the operation returns (the
 * memory store) or later from the event loop (the PostgreSQL store, once
 * the database answered). The result handed to fn, and every pointer in it,
 * is valid only until fn returns: render it, do not keep it.
 *
 * Durability: a result is final when fn runs, and the memory store has
 * written the change to its log by then; but with `-fsync always` it
 * answers only after the fsync that covers the change (group commit). So when
 * res->durable_seq is nonzero, an answer that reports the change must wait
 * for ops->on_durable(seq) before it leaves; render it at once (the views
 * die with fn), send it then. 0 means the change is already as durable as
 * the store makes it (the PostgreSQL store calls fn after COMMIT).
 *
 * Time: the store owns the clock (the memory store: the loop's clock,
 * never going back; the PostgreSQL store: the database's). Requests carry
 * durations and absolute instants as the client gave them; the store adds
 * its `now` and checks that every computed instant fits (before 2262):
 * else STORE_INVALID naming the field. store_now() is the store's idea of
 * now for the layer above (logs, latency).
 *
 * Availability: the layer above parks long-poll acquires itself. The store
 * calls the function set with store_set_avail_fn when a channel may have
 * gained a free event (a publish, an unlock, a lapsed lock, a delayed
 * event falling due, a move into it, in this replica or another); the
 * layer above then retries its parked acquires on that channel. A spurious
 * call is harmless (the retry finds nothing).
 *
 * Channels: named by (name, len), validated above the seam. Only a
 * successful publish, job add or put, or settings put creates one; reads
 * of a missing channel answer as for an empty one (STORE_OK, zero counts,
 * nothing created); purge and delete of a missing one are STORE_NOT_FOUND.
 *
 * Times are ntime_t (ns since the epoch, UTC); durations int64_t ns.
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>
#include "base/id.h"
#include "base/ntime.h"
#include "base/prom.h"

typedef struct store store_t;

typedef enum store_status {
    STORE_OK = 0,
    STORE_CREATED,     /* publish, job put: something new was made (201) */
    STORE_REPLAYED,    /* publish: an idempotency key was live; nothing new (200) */
    STORE_NOT_FOUND,   /* no such live event, job or channel (404) */
    STORE_GONE,        /* the event cannot be locked or extended now (410) */
    STORE_CONFLICT,    /* stale lease token, or a job name taken (409) */
    STORE_INVALID,     /* a value the store checks (a cron definition, an
                          instant past 2262, ...): 400, err names the field */
    STORE_FULL,        /* a limit (events, channel events, channels): 429 */
    STORE_UNAVAILABLE, /* the log cannot be written or the database does not
                          answer: 503, nothing changed */
} store_status_t;

typedef enum store_state {
    STORE_SCHEDULED, /* not yet visible: delayed, held back, or returning */
    STORE_READY,     /* visible and free */
    STORE_LOCKED,    /* visible and leased */
} store_state_t;

/* ---- views: what results are made of (borrowed, see the top) ---- */

typedef struct store_event {
    eid_t id;
    store_state_t state;
    ntime_t published_at;     /* visible at (or since) */
    ntime_t lives_until;      /* gone at this instant */
    ntime_t locked_until;     /* LOCKED: the lease's end; else 0 */
    uint64_t token;           /* LOCKED: the lease token; else 0 */
    const char *data;         /* data_len bytes, not NUL-terminated */
    uint32_t data_len;
    uint8_t data_json;        /* 1: data is JSON text (any value but a string),
                                 echoed as is; 0: a string's decoded bytes */
    uint8_t priority;         /* 0-9, lower first */
    uint32_t deliveries;      /* times locked (LOCK or acquire) */
    const char *dead_lettered_from; /* the source channel of a dead-letter
                                       move, or NULL */
    uint32_t dead_lettered_from_len;
} store_event_t;

typedef struct store_stats {
    const char *channel;
    uint32_t channel_len;
    uint64_t ready, scheduled, locked, jobs;          /* now */
    uint64_t published, deleted, expired, dead_lettered; /* totals */
    ntime_t oldest_ready_at;  /* when the oldest READY event became visible; 0: none */
} store_stats_t;

typedef struct store_settings {
    uint32_t max_deliveries;  /* 0: unlimited */
    const char *dead_letter_channel; /* "" (len 0): none */
    uint32_t dead_letter_channel_len;
    int64_t retry_delay_ns;   /* 0: none */
} store_settings_t;

typedef enum store_overlap { STORE_OVERLAP_ALLOW, STORE_OVERLAP_SKIP } store_overlap_t;
typedef enum store_missed { STORE_MISSED_SKIP, STORE_MISSED_ONCE } store_missed_t;

/* A job's definition: what a job add or put gives, and what a job shows. */
typedef struct store_job_def {
    const char *name;
    size_t name_len;
    const char *cron_def;
    size_t cron_len;
    const char *data;
    size_t data_len;
    uint8_t data_json;
    uint8_t priority;
    store_overlap_t overlap;
    store_missed_t missed;
    int64_t missed_window_ns;
    int64_t ttl_ns;           /* > 0 (the default filled in above) */
    uint8_t has_ttl;          /* ttl given (the job shows the default otherwise) */
} store_job_def_t;

/* A job: its definition and its state. */
typedef struct store_job {
    store_job_def_t def;
    uint8_t paused;
    ntime_t created_at;
    ntime_t next_at;          /* NTIME_MAX: never (or paused) */
    ntime_t last_run_at;      /* 0: never */
    uint64_t runs, skipped;
    const ntime_t *next_runs; /* store_job_get with next > 0: that many */
    uint32_t n_next_runs;
} store_job_t;

/* ---- results ---- */

typedef struct store_res {
    store_status_t status;
    const char *err;          /* not OK: one sentence for the client, or NULL
                                 for the status's usual sentence */
    uint64_t durable_seq;     /* see "Durability" above; 0: durable now */
    /* events: publish (one per request element, in order), list, get,
     * lock, unlock, extend, acquire */
    const store_event_t *events;
    size_t n_events;
    const uint8_t *replayed;  /* publish: replayed[i] = 1 if element i's key
                                 was live (events[i] is the existing event) */
    size_t created;           /* publish: how many events are new */
    const char *next;         /* list with a limit: cursor, or NULL at the end */
    size_t next_len;
    const store_stats_t *stats; /* stats: one; channels: all, sorted by name */
    size_t n_stats;
    const store_job_t *jobs;  /* job ops: one; jobs list: all, sorted by name */
    size_t n_jobs;
    const store_settings_t *settings;
    uint64_t count;           /* purge: deleted; redrive: moved */
} store_res_t;

typedef void (*store_done_fn)(void *arg, const store_res_t *res);

/* ---- requests ---- */

typedef struct store_chan {
    const char *name;
    size_t len;
} store_chan_t;

typedef struct store_pub {
    const char *data;
    size_t data_len;
    uint8_t data_json;
    uint8_t priority;
    uint8_t has_publish_at;   /* publish_at given: visible then (or now if past) */
    ntime_t publish_at;
    int64_t publish_in_ns;    /* without publish_at: visible at now + this (0: now) */
    int64_t ttl_ns;           /* > 0 */
    const char *key;          /* idempotency key, or NULL */
    size_t key_len;
} store_pub_t;

typedef enum store_list_state {
    STORE_LIST_VISIBLE, /* ready and locked, in visibility order (Part A) */
    STORE_LIST_READY,
    STORE_LIST_LOCKED,
    STORE_LIST_SCHEDULED, /* in the order they will become visible */
} store_list_state_t;

typedef struct store_list {
    store_chan_t ch;
    store_list_state_t state;
    size_t limit;             /* 0: all (no cursor in the answer) */
    const char *after;        /* a cursor from an earlier answer, or NULL */
    size_t after_len;
} store_list_t;

typedef enum store_job_op {
    STORE_JOB_PAUSE,
    STORE_JOB_RESUME,
    STORE_JOB_TRIGGER, /* res: the job and, in events[0], the event published */
} store_job_op_t;

/* A settings change: only the fields whose has_ flag is set. */
typedef struct store_settings_put {
    uint8_t has_max_deliveries, has_dead_letter_channel, has_retry_delay;
    store_settings_t v;
} store_settings_put_t;

/* ---- the operations (each calls done exactly once; see the top) ---- */

/* Text the store appends for /metrics: a growable buffer owned by the
 * caller (base/prom.h writes the lines). */
typedef prom_text_t store_text_t;


typedef struct store_ops {
    /* n >= 1 events, all or nothing (batch = the request was an array:
     * a batch answers 201 if anything is new). */
    void (*publish)(store_t *s, store_chan_t ch, const store_pub_t *pubs, size_t n,
                    store_done_fn done, void *arg);
    void (*list)(store_t *s, const store_list_t *q, store_done_fn done, void *arg);
    void (*get)(store_t *s, store_chan_t ch, eid_t id, store_done_fn done, void *arg);
    void (*lock)(store_t *s, store_chan_t ch, eid_t id, int64_t ttl_ns, store_done_fn done,
                 void *arg);
    /* token NULL: any lock or none. delay_ns > 0: held back until now + delay.
     * An unlock at the channel's maxDeliveries dead-letters the event (moved
     * or dropped): STORE_OK with no event in the result. */
    void (*unlock)(store_t *s, store_chan_t ch, eid_t id, const uint64_t *token, int64_t delay_ns,
                   store_done_fn done, void *arg);
    void (*extend)(store_t *s, store_chan_t ch, eid_t id, int64_t ttl_ns, const uint64_t *token,
                   store_done_fn done, void *arg);
    void (*del)(store_t *s, store_chan_t ch, eid_t id, const uint64_t *token, store_done_fn done,
                void *arg);
    /* Up to max free events, lowest priority first, oldest first within
     * one, each locked for ttl_ns; n_events 0 when none is free (the layer
     * above decides whether to park). Creates no channel. */
    void (*acquire)(store_t *s, store_chan_t ch, size_t max, int64_t ttl_ns, store_done_fn done,
                    void *arg);
    void (*stats)(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
    void (*channels)(store_t *s, store_done_fn done, void *arg);
    void (*purge)(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
    void (*channel_delete)(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
    void (*settings_get)(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
    void (*settings_put)(store_t *s, store_chan_t ch, const store_settings_put_t *p,
                         store_done_fn done, void *arg);
    /* to NULL: each event back to its dead_lettered_from. max 0: all. */
    void (*redrive)(store_t *s, store_chan_t ch, const store_chan_t *to, size_t max,
                    store_done_fn done, void *arg);
    /* replace 0: POST (STORE_CONFLICT if the name is taken); 1: PUT
     * (STORE_CREATED, or STORE_OK with the definition replaced, or
     * unchanged if equal). */
    void (*job_put)(store_t *s, store_chan_t ch, const store_job_def_t *def, int replace,
                    store_done_fn done, void *arg);
    /* next: 0, or 1-100 fire times to preview in next_runs. */
    void (*job_get)(store_t *s, store_chan_t ch, const char *name, size_t len, unsigned next,
                    store_done_fn done, void *arg);
    void (*jobs)(store_t *s, store_chan_t ch, store_done_fn done, void *arg);
    void (*job_delete)(store_t *s, store_chan_t ch, const char *name, size_t len,
                       store_done_fn done, void *arg);
    void (*job_op)(store_t *s, store_chan_t ch, const char *name, size_t len, store_job_op_t op,
                   store_done_fn done, void *arg);

    /* ---- the loop and the operator ---- */

    ntime_t (*now)(store_t *s);
    /* Runs what is due (delayed events, lapsed locks, expiries, job
     * fires, the log's write of this turn) and returns the instant the
     * loop should wake next for the store (NTIME_MAX: nothing due). */
    ntime_t (*turn)(store_t *s);
    /* fn(arg, STORE_OK) runs once everything up to seq is durable (at
     * once if it already is); fn(arg, STORE_UNAVAILABLE) if it cannot be
     * made durable (the fsync failed): the answer waiting for it must not
     * report success. */
    void (*on_durable)(store_t *s, uint64_t seq, void (*fn)(void *arg, store_status_t st),
                       void *arg);
    /* 1 when the store can take changes (/readyz). */
    int (*ready)(store_t *s);
    /* Appends the store's Prometheus series (events by state, totals,
     * per-channel and per-job series, the log's or database's own) to out. */
    void (*metrics)(store_t *s, store_text_t *out);
    /* Finishes what is in flight (each done runs, and may still call
     * now), makes everything durable, frees all. */
    void (*free)(store_t *s);
} store_ops_t;

struct store {
    const store_ops_t *ops;
    uint8_t answers_later;    /* 1: done may run after the operation returned
                                 (the PostgreSQL store); 0: always before (the
                                 memory store), so the layer above may keep a
                                 call's state in the request's memory */
    void (*avail_fn)(void *arg, const char *channel, size_t len);
    void *avail_arg;
};

/* Sets the function told when a channel may have gained a free event. */
static inline void store_set_avail_fn(store_t *s, void (*fn)(void *, const char *, size_t), void *arg)
{
    s->avail_fn = fn;
    s->avail_arg = arg;
}

/* For the stores: tells the layer above. */
static inline void store_avail(store_t *s, const char *channel, size_t len)
{
    if (s->avail_fn)
        s->avail_fn(s->avail_arg, channel, len);
}

#endif
