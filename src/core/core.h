/*
 * core.h -- channels, events, leases and jobs: the whole state of a server,
 * and the narrow set of operations the HTTP layer calls.
 *
 * Event states:
 *   SCHEDULED  published with a future publishAt, or held back (UNLOCK with
 *              a delay, a lapsed lock under a retry delay); invisible to
 *              listing, locking and acquiring until then
 *   READY      visible and free; in its priority's ready heap of the channel
 *   LOCKED     visible and leased until locked_until; same place in the queue
 *   (gone)     expired at lives_until, deleted, purged, or dead-lettered
 *              without a dead-letter channel: freed at once
 * Every live event is in the global id hash. Visible events (READY and
 * LOCKED) are in their channel's visible list in the order they became
 * visible (vseq); SCHEDULED ones are on the channel's scheduled list (the
 * same links, no order). READY ones are also in one of the channel's ready
 * heaps, one per priority, each ordered by vseq, so acquire takes the most
 * urgent, then the oldest free event in O(log n) however many are locked,
 * and the oldest READY event of all is the oldest of at most 16 heap tops
 * (statistics: oldestReadyAge), not a walk past locked events. Each event has exactly one pending wake-up: its
 * publish time (SCHEDULED), its expiry (READY), or the earlier of lock end
 * and expiry (LOCKED). Events of a channel usually expire in the order they
 * became visible (one ttl, published now), so a READY event whose expiry is
 * no earlier than the last one on its channel's expiry list joins that list
 * instead of the timer heap, and only the list's head is in the heap: a
 * heap entry costs 24 bytes, a place on the list 4. Others (a shorter ttl,
 * a publishAt in the past, an event whose lock ended) have their own entry.
 *
 * Deliveries and dead letters: each lock counts a delivery. When a lock
 * ends without a delete (it lapses, or UNLOCK) and the count has reached
 * the channel's max_deliveries (> 0), the event moves to the channel's
 * dead-letter channel (same id, data, priority, key, deliveries and
 * lives_until; published_at = the move; dead_lettered_from = the source),
 * or is dropped when there is none. A move into a full channel fails: the
 * event stays READY and dl_failed counts it. A lapsed lock under a retry
 * delay holds the event back until locked_until + retry delay.
 *
 * Idempotency keys: an event published with a key is found by it in its
 * channel's key map while it lives there; the key leaves with the event.
 *
 * Times: all instants are ntime_t (wall-clock ns, UTC), durations int64 ns.
 * Callers pass `now`; the core never reads the clock. Every operation first
 * treats anything due at `now` as having happened (core_tick), so a late
 * timer never exposes an expired event or hides a due one.
 *
 * Ownership: the core owns channels (in its registry and its channel
 * table, where events name their channel by index); a channel owns its
 * events, jobs and settings; an event owns its data (inline when short)
 * and, while LOCKED, its lease. Events and leases sit in the core's slabs
 * (slab.h). The hash, heaps, lists and key maps borrow.
 * Pointers returned by the core are valid until the next core call that
 * takes a `now` (which may expire or delete them) or that mutates.
 */
#ifndef CORE_H
#define CORE_H

#include <stddef.h>
#include <stdint.h>
#include "time/cron.h"
#include "base/hist.h"
#include "base/id.h"
#include "base/ntime.h"
#include "slab.h"
#include "base/strmap.h"
#include "base/timers.h"

typedef enum core_status {
    CORE_OK = 0,
    CORE_NOT_FOUND, /* no such live event or job */
    CORE_GONE,      /* the event cannot be locked now (locked, scheduled, gone) */
    CORE_CONFLICT,  /* stale lease token, or a job name already taken */
    CORE_INVALID,   /* bad argument; the message says which */
    CORE_IO,        /* the change could not be written to the log: not applied */
} core_status_t;

typedef enum event_state { EVENT_SCHEDULED, EVENT_READY, EVENT_LOCKED } event_state_t;

typedef struct channel channel_t;
typedef struct job job_t;

/* Data of up to EVENT_INLINE bytes is kept in the event itself, without a
 * NUL, unless the event has extras (a key, a dead_lettered_from); longer
 * data, or data with extras, in its own allocation: the data, a NUL, then
 * the extras (see event_key). */
#define EVENT_INLINE 16
#define EVENT_LEASE_BIT 0x80000000u
#define EVENT_XLISTED 0x80000000u
#define EVENT_MAX_DELIVERIES 0xffffffu /* the count stops here */
#define CORE_MAX_PRIORITY 9

/* An event: 80 bytes in the core's event slab, linked to the others by
 * 32-bit slab indices (0: none); its own index follows from its address
 * (slab_index). Read it through the accessors below; the lock's end, token
 * and visibility order of a LOCKED event live in a lease record, and the
 * visibility order of a READY one in its ready heap entry, so neither costs
 * space in the event while it is not needed.
 * A READY event whose expiry comes no earlier than that of every event
 * before it on its channel's expiry list joins the end of that list and has
 * no timer entry of its own (see struct channel). */
typedef struct event {
    ntime_t published_at;     /* when it is or became (or will become) visible */
    ntime_t lives_until;      /* gone at this instant */
    uint64_t id_hi;           /* the id (eid_t.hi; split to save its padding) */
    uint32_t id_lo;           /* eid_t.lo */
    uint32_t chan;            /* owner: its index in the core's channel table */
    uint32_t data_len;
    uint32_t vprev, vnext;    /* visible list, in visibility order; while
                                 SCHEDULED the channel's scheduled list */
    uint32_t hnext;           /* id hash chain */
    tnode_t timer;            /* its one pending wake-up; while on the
                                 expiry list, the index of the event before
                                 it there instead (0: none) */
    uint32_t xnext;           /* on the expiry list: EVENT_XLISTED | the next
                                 event's index (0: none); else 0 */
    uint32_t slot;            /* 0: SCHEDULED; READY: 1 + position in its
                                 priority's ready heap; LOCKED: EVENT_LEASE_BIT | lease */
    uint32_t deliveries : 24; /* times locked, up to EVENT_MAX_DELIVERIES */
    uint32_t priority : 4;    /* 0-9, lower first */
    uint32_t json : 1;        /* data is JSON text, not a string's bytes */
    uint32_t extras : 1;      /* a key or dead_lettered_from follows the data */
    uint32_t returning : 1;   /* SCHEDULED after being visible (held back):
                                 not published again when it returns */
    uint32_t dl_pending : 1;  /* replay: its lock ended at the delivery limit;
                                 the move's record follows, or the move is
                                 tried again when replay ends */
    union {
        char inl[EVENT_INLINE];
        char *ext;
    } d;                      /* see event_data */
} event_t;

/* A LOCKED event's lease, in the core's lease slab. */
typedef struct lease {
    ntime_t locked_until;     /* lease end */
    uint64_t token;           /* new per lock */
    uint64_t vseq;            /* the event's visibility order, for its return */
} lease_t;

/* A ready heap entry: the key inline, so sifting never reads events. */
typedef struct rentry {
    uint64_t key;             /* priority << RENTRY_PRIO_SHIFT | vseq */
    uint32_t ev;              /* event slab index */
} __attribute__((packed)) rentry_t;
#define RENTRY_PRIO_SHIFT 58  /* vseq stays below 2^58 */
/* Ready heaps per channel: one for every value event.priority's four bits
 * can hold (the API allows 0-9), so no log record can name a missing one. */
#define CORE_PRIO_LEVELS 16

/* One priority's READY events: a min-heap by vseq (dheap.h). */
typedef struct rheap {
    rentry_t *e;              /* vmem, cap entries */
    uint32_t len, cap;
} rheap_t;

typedef struct channel_stats {
    uint64_t ready, scheduled, locked, jobs; /* current */
    uint64_t published, deleted, expired;    /* since start (or creation) */
    uint64_t lock_expired, job_fires;
    uint64_t dead_lettered;   /* moved to the dead-letter channel or dropped */
    uint64_t dl_failed;       /* moves refused: the target was full */
} channel_stats_t;

/* A channel's consumer settings; all zero: Part A's behaviour. */
typedef struct channel_settings {
    uint32_t max_deliveries;  /* 0: unlimited */
    int64_t retry_delay_ns;   /* 0: a lapsed lock frees the event at once */
    char *dlq;                /* dead-letter channel (owned), or NULL */
    uint32_t dlq_len;
} channel_settings_t;

struct channel {
    char *name;               /* the key copy inside the registry entry */
    uint32_t name_len;
    uint32_t index;           /* in the core's channel table (event.chan) */
    uint32_t vhead, vtail;    /* visible list (event slab indices) */
    uint32_t shead;           /* scheduled list, unordered */
    rheap_t ready[CORE_PRIO_LEVELS]; /* READY events by priority, then vseq */
    uint16_t ready_prios;     /* bit p set: ready[p] is not empty */
    uint32_t xhead, xtail;    /* expiry list: READY events by lives_until */
    tnode_t xtimer;           /* scheduled at xhead's lives_until while the
                                 list is not empty */
    const slab_t *events;     /* the core's slabs, for the accessors */
    const slab_t *leases;
    channel_stats_t st;       /* jobs, ready, scheduled, locked kept current */
    channel_settings_t set;
    strmap_t jobs;            /* name -> job_t* */
    strmap_t keys;            /* idempotency key -> event_t* (borrowed) */
    channel_t *avail_next;    /* on core's "became available" list */
    uint8_t avail_pending;
    uint8_t metrics_own;      /* has series of its own in /metrics (the
                                 store's choice, kept while it exists) */
};

/* A job's definition: what a POST or PUT of a job gives. Everything else
 * of a job is state, kept when the definition is replaced. */
typedef enum job_overlap { JOB_OVERLAP_ALLOW, JOB_OVERLAP_SKIP } job_overlap_t;
typedef enum job_missed { JOB_MISSED_SKIP, JOB_MISSED_ONCE } job_missed_t;
#define CORE_JOB_MAX_PRIORITY 9
#define CORE_DEFAULT_MISSED_WINDOW_NS (3600LL * NTIME_NS_PER_S)

typedef struct job_def {
    const char *cron_def;     /* as given, cron_len bytes */
    size_t cron_len;
    const char *data;         /* copied into each event */
    size_t data_len;
    uint8_t data_json;        /* 1: data is JSON text, 0: a string's bytes */
    uint8_t priority;         /* 0-9, of the events it publishes */
    uint8_t overlap;          /* job_overlap_t */
    uint8_t missed;           /* job_missed_t */
    int64_t missed_window_ns; /* > 0 */
    int64_t ttl_ns;           /* > 0, of the events it publishes */
} job_def_t;

/* A job: a definition and its state. Times:
 *   created_at   when the name was first defined; a replace keeps it
 *   defined_at   when the current definition was given: "@every" counts
 *                from it
 *   next_at      the next fire time; NTIME_MAX while paused or when the
 *                definition never fires again
 *   last_run_at  the latest fire or trigger that published (0: none)
 * A job fires at next_at unless paused. A fire publishes one event, or is
 * skipped (counted in `skipped`) when overlap is SKIP and the event of the
 * previous fire or trigger (last_event) is still live in the channel, or
 * when a limit is reached. runs, skipped, last_run_at, last_event and
 * paused are in the log; fires, skips and lateness count since start. */
struct job {
    tnode_t timer;            /* next fire; not scheduled while paused */
    channel_t *channel;       /* owner */
    char *name;               /* the key copy inside channel->jobs */
    uint32_t name_len;
    char *cron_def;           /* as given, NUL-terminated */
    char *data;               /* NUL-terminated copy, data_len bytes */
    uint32_t data_len;
    uint8_t data_json, priority, overlap, missed; /* as in job_def_t */
    uint8_t paused;
    uint8_t catch_up;         /* its next fire makes up a time missed while
                                 the server was down (missed ONCE) */
    int64_t missed_window_ns;
    int64_t ttl_ns;           /* ttl of each event it publishes */
    ntime_t created_at;
    ntime_t defined_at;
    ntime_t next_at;
    ntime_t last_run_at;
    uint64_t runs, skipped;   /* fires and triggers that published; fires
                                 skipped (overlap or a limit) */
    eid_t last_event;         /* of the latest run; {0,0}: none */
    cron_t *cron;
    uint64_t fires, skips;    /* since start, for /metrics: events published
                                 (fires and triggers), fires skipped */
    double late_s;            /* how late the latest fire ran, seconds */
};

typedef struct core_counters {
    uint64_t published, deleted, expired, lock_expired, job_fires;
    uint64_t job_fires_skipped; /* the server or channel was full */
    uint64_t dead_lettered;   /* moved or dropped at the delivery limit */
    uint64_t dl_failed;       /* dead-letter moves refused: target full */
    uint64_t events;          /* live events, any state */
    hist_t lateness;          /* job fires by how late they ran:
                                 <= 0.5 1 2 5 10 50 100 1000 ms, more */
} core_counters_t;

typedef struct core core_t;

#define CORE_TIMER_EVENT 1
#define CORE_TIMER_JOB 2
#define CORE_TIMER_USER 3 /* a caller's deadline, e.g. a long-poll's end */
#define CORE_TIMER_EXPIRY 4 /* a channel's expiry list */
#define CORE_DEFAULT_TTL_NS (10LL * 60 * NTIME_NS_PER_S)
#define CORE_DEFAULT_LOCK_NS (60LL * NTIME_NS_PER_S)

/* A new, empty state. default_tz is the zone of cron definitions without a
 * prefix. Free with core_free. */
core_t *core_new(const tz_t *default_tz);
void core_free(core_t *c);

/* Runs everything due at now: delayed events become visible, locks end,
 * events expire, jobs fire. */
void core_tick(core_t *c, ntime_t now);

/* The latest instant the core has seen (after replay: the log's last
 * record, or the replay's end). The server's clock must not read earlier,
 * or new changes would be stamped before old ones. */
ntime_t core_now(const core_t *c);

/* Milliseconds the loop may sleep before the next deadline (see
 * timers_wait_ms): -1 if nothing is scheduled. */
int32_t core_wait_ms(core_t *c, ntime_t now, int32_t max_ms);

/* The instant to wake for the next deadline, to the nanosecond, for a loop
 * that can sleep more precisely than whole milliseconds: the latest
 * deadline within window_ns of the earliest, so deadlines close together
 * share one wake-up (see timers_wake_at); NTIME_MAX if nothing is
 * scheduled. */
ntime_t core_next_at(core_t *c, int64_t window_ns);

const core_counters_t *core_counters(const core_t *c);

/* Limits jobs respect: a fire that would pass them is skipped (counted in
 * job_fires_skipped). 0 means no limit. The HTTP layer checks the same
 * limits for requests. */
void core_set_limits(core_t *c, size_t max_events, size_t max_channel_events);

/* Caller deadlines share the core's one timer heap. fn runs from
 * core_tick for each due node scheduled with core_timer_set; the node is
 * unscheduled before fn runs. */
typedef void (*core_timer_fn)(tnode_t *node, ntime_t now, void *arg);
void core_set_timer_fn(core_t *c, core_timer_fn fn, void *arg);
void core_timer_set(core_t *c, tnode_t *node, ntime_t at);
void core_timer_cancel(core_t *c, tnode_t *node);

/* ---- channels ---- */

/* The channel of that name, created if absent. The name is not checked
 * here (the HTTP layer validates it). */
channel_t *core_channel(core_t *c, const char *name, size_t len);

/* Removes a channel that holds nothing (no events in any state, no jobs),
 * such as one created for a change that then failed, so a failed request
 * leaves no channel behind. ch is invalid afterwards. */
void core_channel_drop(core_t *c, channel_t *ch);

/* The channel of that name, or NULL if it does not exist. */
channel_t *core_channel_find(core_t *c, const char *name, size_t len);
size_t core_channel_count(const core_t *c);

/* Every channel sorted by name (bytewise). *out is malloc'd; caller frees
 * the array. Returns the count. */
size_t core_channels_sorted(core_t *c, channel_t ***out);

/* A channel that gained an available event since the last call, or NULL.
 * Long-poll acquirers are served from this list. */
channel_t *core_next_available(core_t *c);

/* ---- events ---- */

/* Publishes data[0..len) with a time to live. publish_at <= now (or an
 * absent publishAt, given as now) makes it visible at once with
 * published_at = publish_at; later makes it SCHEDULED. Returns NULL only
 * if the log could not be written (nothing changed).
 * The caller checks ttl_ns > 0 and that publish_at + ttl_ns fits. */
event_t *core_publish(core_t *c, channel_t *ch, ntime_t now, const char *data, size_t len,
                      ntime_t publish_at, int64_t ttl_ns);

/* The live event with that id in ch, in any state, or NULL. */
event_t *core_event_get(core_t *c, channel_t *ch, ntime_t now, eid_t id);

/* Locks a READY event until now + ttl_ns with a new token (written to
 * *token). CORE_GONE if it is not READY or not live. */
core_status_t core_lock(core_t *c, channel_t *ch, ntime_t now, eid_t id, int64_t ttl_ns,
                        event_t **out);

/* Ends a lock. token NULL: any lock (or none) may be ended. With a token,
 * the event must be LOCKED with that token, else CORE_CONFLICT.
 * CORE_GONE if the event is not live or SCHEDULED. delay_ns > 0 holds the
 * event back (SCHEDULED) until now + delay_ns, locked or not. If the lock
 * ends at the delivery limit the event is dead-lettered instead: *out is
 * then the event in its new channel, or NULL if it was dropped. */
core_status_t core_unlock(core_t *c, channel_t *ch, ntime_t now, eid_t id,
                          const uint64_t *token, int64_t delay_ns, event_t **out);

/* Moves a lock's end to now + ttl_ns, keeping its token. CORE_GONE if not
 * LOCKED; CORE_CONFLICT on a token mismatch. */
core_status_t core_extend(core_t *c, channel_t *ch, ntime_t now, eid_t id, int64_t ttl_ns,
                          const uint64_t *token, event_t **out);

/* Deletes a live event in any state. CORE_NOT_FOUND if it is not live;
 * CORE_CONFLICT if a token is given and the event is not LOCKED with it. */
core_status_t core_delete(core_t *c, channel_t *ch, ntime_t now, eid_t id, const uint64_t *token);

/* Locks up to max READY events of ch for ttl_ns each, the lowest priority
 * first and the oldest first within one, and writes them to out[]. Returns
 * how many. */
size_t core_acquire(core_t *c, channel_t *ch, ntime_t now, size_t max, int64_t ttl_ns,
                    event_t **out);

/* The live event with that idempotency key in ch, or NULL. */
event_t *core_event_by_key(core_t *c, channel_t *ch, ntime_t now, const char *key, size_t len);

/* ---- pages of a channel's events ---- */

typedef enum core_list_state {
    CORE_LIST_VISIBLE,   /* READY and LOCKED, in visibility order */
    CORE_LIST_READY,
    CORE_LIST_LOCKED,
    CORE_LIST_SCHEDULED, /* in the order they will become visible */
} core_list_state_t;

/* A position in a listing: after it come the events later in that order.
 * It names a place, not an event, so it stays valid when events go. */
typedef struct core_cursor {
    ntime_t at;               /* SCHEDULED: the last event's published_at */
    uint64_t vseq;            /* visible orders: the last event's vseq */
    eid_t id;                 /* the last event (a shortcut while it lives;
                                 SCHEDULED: breaks ties of at) */
} core_cursor_t;

#define CORE_CURSOR_LEN 41    /* the text form: a letter and 40 hex digits */
void core_cursor_format(core_list_state_t st, const core_cursor_t *cur, char out[CORE_CURSOR_LEN + 1]);
/* 0 and the cursor, or -1 if s is not one made for this state. */
int core_cursor_parse(core_list_state_t st, const char *s, size_t len, core_cursor_t *out);

/* Up to limit events of ch in state st after *after (NULL: from the
 * start), into out[]. Returns how many; *more is 1 when events may remain,
 * and *next is the position after the last one written. out must hold
 * limit pointers. */
size_t core_list(core_t *c, channel_t *ch, ntime_t now, core_list_state_t st,
                 const core_cursor_t *after, size_t limit, event_t **out, int *more,
                 core_cursor_t *next);

/* ---- clearing ---- */

/* Deletes every event of ch (counted as deleted); jobs and settings stay.
 * Returns how many in *n. CORE_IO if it could not be logged. */
core_status_t core_purge(core_t *c, channel_t *ch, ntime_t now, uint64_t *n);

/* Removes ch with its events, jobs and settings; its name is free. The
 * layer above answers the channel's parked acquirers. ch is invalid
 * afterwards. CORE_IO if it could not be logged. */
core_status_t core_channel_delete(core_t *c, channel_t *ch, ntime_t now);

/* ---- settings and dead letters ---- */

/* Sets ch's settings to *s (dlq copied; dlq_len 0: none). CORE_INVALID
 * if the dead-letter channel is ch itself; CORE_IO if not logged. */
core_status_t core_settings_set(core_t *c, channel_t *ch, ntime_t now, const channel_settings_t *s);

/* Moves up to max (0: all) of ch's READY events that carry
 * dead_lettered_from, oldest first, each to `to` (NULL: back to its
 * dead_lettered_from), with deliveries 0 and no dead_lettered_from. A move
 * into a full channel is skipped. Returns the number moved in *moved;
 * CORE_IO if nothing could be logged. */
core_status_t core_redrive(core_t *c, channel_t *ch, ntime_t now, const char *to, size_t to_len,
                           size_t max, uint64_t *moved);

/* How many channels that do not exist a redrive of ch (same to and max)
 * would create: the distinct targets of its first max (0: all) dead
 * letters that have no channel. A store refuses the redrive when they do
 * not fit under its channel limit, as it refuses a publish. */
size_t core_redrive_new_channels(core_t *c, const channel_t *ch, const char *to, size_t to_len, size_t max);

/* The oldest READY event's published_at (the first READY one in
 * visibility order), or 0 when none is READY. O(1): the oldest of the
 * ready heaps' tops. */
ntime_t core_oldest_ready(const channel_t *ch);

/* ---- reading an event ---- */

static inline event_state_t event_state(const event_t *e)
{
    return !e->slot ? EVENT_SCHEDULED : e->slot & EVENT_LEASE_BIT ? EVENT_LOCKED : EVENT_READY;
}

static inline eid_t event_id(const event_t *e)
{
    eid_t id = {e->id_hi, e->id_lo};
    return id;
}

/* data_len bytes; NUL-terminated only when kept out of line. */
static inline int event_inline(const event_t *e)
{
    return e->data_len <= EVENT_INLINE && !e->extras;
}

static inline const char *event_data(const event_t *e)
{
    return event_inline(e) ? e->d.inl : e->d.ext;
}

/* The channel that holds e. */
channel_t *event_channel(const core_t *c, const event_t *e);

/* The lease of a LOCKED event, else NULL. */
const lease_t *event_lease(const core_t *c, const event_t *e);

/* Lease end and token while LOCKED; 0 otherwise. */
ntime_t event_locked_until(const core_t *c, const event_t *e);
uint64_t event_lock_token(const core_t *c, const event_t *e);

/* The event's idempotency key and the channel it was dead-lettered from:
 * a pointer to *len bytes, or NULL (len 0) when it has none. */
const char *event_key(const event_t *e, size_t *len);
const char *event_dead_lettered_from(const event_t *e, size_t *len);

/* The channel's visible events in visibility order: the first, or NULL. */
static inline event_t *channel_first(const channel_t *ch)
{
    return (event_t *)slab_ptr0(ch->events, ch->vhead);
}

/* The one after e, or NULL. */
static inline event_t *channel_next(const channel_t *ch, const event_t *e)
{
    return (event_t *)slab_ptr0(ch->events, e->vnext);
}

/* ---- jobs ---- */

/* Adds a recurring job. cron_def is parsed with created_at = now; on a bad
 * definition returns CORE_INVALID with the reason in err. CORE_CONFLICT if
 * the name is taken (the existing job is unchanged). ttl_ns > 0. */
core_status_t core_job_add(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t name_len,
                           const char *cron_def, size_t cron_len, const char *data, size_t data_len,
                           int64_t ttl_ns, job_t **out, char *err, size_t errlen);

job_t *core_job_get(core_t *c, channel_t *ch, const char *name, size_t len);

/* Defines a job (PUT with replace = 1, POST with replace = 0). A new name
 * is created: *created = 1. An existing name is CORE_CONFLICT for POST;
 * for PUT its definition is replaced (*created = 0) keeping its state
 * (created_at, paused, runs, skipped, last_run_at), and next_at follows
 * the new definition from now; a definition equal to the current one
 * changes nothing and writes nothing. A bad cron definition is
 * CORE_INVALID with the reason in err. def's fields are checked by the
 * caller (priority 0-9, positive durations). */
core_status_t core_job_put(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t name_len,
                           const job_def_t *def, int replace, job_t **out, int *created, char *err,
                           size_t errlen);

/* Pauses (pause = 1) or resumes a job. A paused job fires nothing and has
 * next_at NTIME_MAX; on resume it fires at its first time after now.
 * Pausing a paused job (or resuming a running one) changes nothing.
 * CORE_NOT_FOUND, CORE_IO or CORE_OK with the job in *out. */
core_status_t core_job_pause(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t len,
                             int pause, job_t **out);

/* Publishes the job's event now, outside its schedule (also when paused):
 * it counts in runs and last_run_at and as the previous fire for overlap
 * SKIP; next_at is unchanged. The caller checks the event limits.
 * CORE_NOT_FOUND, CORE_IO or CORE_OK with the job and the event. */
core_status_t core_job_trigger(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t len,
                               job_t **out, event_t **ev);

/* The job's next fire times, by the code that schedules its fires: from
 * next_at (or, while paused, from its first time after now) on. Writes at
 * most n to out; returns how many (fewer when the definition ends). */
size_t core_job_next_runs(core_t *c, const job_t *j, ntime_t now, ntime_t *out, size_t n);

/* CORE_NOT_FOUND, CORE_IO or CORE_OK; the job is freed and its name free
 * again. */
core_status_t core_job_delete(core_t *c, channel_t *ch, ntime_t now, const char *name, size_t len);

/* The channel's jobs sorted by name; *out malloc'd, caller frees it. */
size_t core_jobs_sorted(channel_t *ch, job_t ***out);

/* ---- the log: every change as a record ----
 *
 * Before a change is applied in memory, the core describes it as records
 * and hands them to the journal: add() for each record, then commit(),
 * which writes them. If commit fails, the change is not applied and the
 * operation returns CORE_IO (or NULL), so memory never holds what the log
 * does not. Derived changes (a delayed event falling due, a lock or ttl
 * running out) are not logged: replaying the records at their times
 * reproduces them. Records carry `now`, the instant of the change. A
 * change of several records (a batch publish, an acquire of several
 * events) sets `more` on each but the last: replay applies such a change
 * only when its last record is there. */

typedef enum core_rec_type {
    CORE_REC_PUBLISH = 1, /* channel id at=publish_at ttl data attr [key]
                             [name: a job's fire] */
    CORE_REC_LOCK,        /* channel id at=the lock's end token */
    CORE_REC_UNLOCK,      /* channel id [at: held back until then] */
    CORE_REC_EXTEND,      /* channel id at=the lock's new end */
    CORE_REC_DELETE,      /* channel id */
    CORE_REC_JOB_ADD,     /* channel name cron data ttl state=flags
                             nums=[missed_window] (created_at = now) */
    CORE_REC_JOB_DEL,     /* channel name */
    CORE_REC_SNAP_EVENT,  /* rewrite: channel id state at=published_at lives_until
                             locked_until token data attr [key]
                             nums=[deliveries] [name=dead_lettered_from] */
    CORE_REC_SNAP_JOB,    /* rewrite: channel name cron data ttl state=flags
                             at=created_at id=last_event nums=[missed_window
                             runs skipped defined_at last_run_at] */
    CORE_REC_IDGEN,       /* rewrite: id = the generator's last id */
    /* Consumers: dead letters, settings, clearing. */
    CORE_REC_DEAD_LETTER, /* channel id [name: the dead-letter channel;
                             none: dropped]: its lock ended at the limit */
    CORE_REC_SETTINGS,    /* channel nums=[max_deliveries] ttl=retry_delay
                             [name=dead-letter channel]; also in a rewrite */
    CORE_REC_PURGE,       /* channel */
    CORE_REC_CHANNEL_DEL, /* channel */
    CORE_REC_REDRIVE,     /* channel id name=the channel it moves to */
    /* Jobs people operate (numbered apart, so other additions do not
     * collide with them). */
    CORE_REC_JOB_REPLACE = 20, /* as JOB_ADD: a new definition (defined_at = now) */
    CORE_REC_JOB_PAUSE,   /* channel name */
    CORE_REC_JOB_RESUME,  /* channel name */
    CORE_REC_JOB_TRIGGER, /* channel name id at=publish_at ttl data attr */
    CORE_REC_JOB_SKIP,    /* channel name: a fire skipped (overlap, limit) */
} core_rec_type_t;

/* attr: an event's priority and flags in one byte. */
#define CORE_ATTR_PRIO 0x0f
#define CORE_ATTR_JSON 0x10       /* data is JSON text */
#define CORE_ATTR_RETURNING 0x20  /* SNAP_EVENT: held back after being visible */

/* The job flags of JOB_ADD, JOB_REPLACE and SNAP_JOB's `state`. */
#define CORE_JOB_F_PRIORITY 0x0f /* priority 0-9 */
#define CORE_JOB_F_SKIP 0x10     /* overlap SKIP */
#define CORE_JOB_F_ONCE 0x20     /* missed ONCE */
#define CORE_JOB_F_JSON 0x40     /* data is JSON text */
#define CORE_JOB_F_PAUSED 0x80   /* SNAP_JOB only */

#define CORE_REC_NUMS 5 /* most numbers a record carries in nums[] */

typedef struct core_rec {
    uint8_t type;             /* core_rec_type_t */
    uint8_t state;            /* SNAP_EVENT: event_state_t; job records: flags */
    uint8_t more;             /* 1: the next record belongs to the same change
                                 (a batch, an acquire); the log keeps a change's
                                 records whole or drops them all */
    uint8_t attr;             /* CORE_ATTR_* */
    ntime_t now;
    const char *channel;
    uint32_t channel_len;
    eid_t id;
    const char *data;         /* an event's or a job's */
    uint32_t data_len;
    ntime_t at;               /* the instant the record is about: the publish
                                 time (PUBLISH, SNAP_EVENT), the lock's end
                                 (LOCK, EXTEND), the creation (SNAP_JOB),
                                 the trigger (JOB_TRIGGER) */
    ntime_t lives_until;      /* SNAP_EVENT */
    ntime_t locked_until;     /* SNAP_EVENT of a locked event */
    uint64_t token;
    int64_t ttl_ns;
    const char *name;
    uint32_t name_len;
    const char *cron;
    uint32_t cron_len;
    uint8_t n_nums;           /* further numbers, by type (0: none) */
    uint64_t nums[CORE_REC_NUMS];
    const char *key;
    uint32_t key_len;
} core_rec_t;

typedef struct core_journal {
    void (*add)(void *arg, const core_rec_t *r); /* buffers one record */
    int (*commit)(void *arg);                    /* writes them: 0, or -1 (dropped) */
    void *arg;
} core_journal_t;

/* Sets (or with NULL clears) the journal. Without one nothing is logged. */
void core_set_journal(core_t *c, const core_journal_t *j);

/* Replay: applies one record read from the log, through the same code as
 * live requests, at the record's time. Jobs do not fire while replaying
 * (their fires are in the log as PUBLISH records). Returns CORE_OK, or
 * CORE_INVALID if the record does not fit the state (the log is not
 * from this history). */
void core_replay_begin(core_t *c);
core_status_t core_apply(core_t *c, const core_rec_t *r);
/* Applies job fires that core_apply held back (fires logged in one tick
 * are replayed in one tick, so they take their places in the queue as
 * they did live). Records handed to core_apply must stay valid until
 * this or core_replay_end has run. */
void core_replay_flush(core_t *c);
/* Drops everything replayed so far: c is as new (same zone), still
 * replaying. For a replay that must start again after cutting the log. */
void core_replay_reset(core_t *c);
/* Ends replay at now: what fell due while down happens at once, except
 * job fires, which resume at their next time after now. Counters since
 * start are reset. */
void core_replay_end(core_t *c, ntime_t now);

/* Writes a record that changes nothing (the id generator's position) and
 * commits it: 0 if the log can be written again. For recovering from a
 * failed write without waiting for a client's change. */
int core_log_probe(core_t *c, ntime_t now);

/* Writes the whole state as records (IDGEN, SNAP_JOB, SNAP_EVENT) to
 * j->add, in an order that replays to the same state. Returns how many. */
uint64_t core_snapshot(core_t *c, ntime_t now, const core_journal_t *j);

/* Publishes several events at once, all or nothing: one commit for all.
 * pubs[i] gives data, publish_at, ttl, priority and an optional key;
 * out[i] receives each event. An element whose key is live in ch (or
 * repeats an earlier element's) publishes nothing: out[i] is the existing
 * event and replayed[i] (if replayed is not NULL) is 1. *created (if not
 * NULL) counts the new events. Returns CORE_OK or CORE_IO. Pointers in
 * out[] are valid until the next core call, like those of core_publish. */
typedef struct core_pub {
    const char *data;
    size_t len;
    ntime_t publish_at;
    int64_t ttl_ns;
    uint8_t priority;         /* 0-CORE_MAX_PRIORITY */
    uint8_t json;             /* data is JSON text */
    const char *key;          /* idempotency key, or NULL */
    size_t key_len;           /* 1-CORE_MAX_KEY */
} core_pub_t;
#define CORE_MAX_KEY 255
core_status_t core_publish_batch(core_t *c, channel_t *ch, ntime_t now, const core_pub_t *pubs,
                                 size_t n, event_t **out, uint8_t *replayed, size_t *created);

#endif
