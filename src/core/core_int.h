/*
 * core_int.h -- what core.c, event.c and job.c share; not for http/.
 */
#ifndef CORE_INT_H
#define CORE_INT_H

#include "core.h"

struct core {
    timers_t timers;          /* every event's and job's wake-up */
    strmap_t channels;        /* name -> channel_t* (owned) */
    channel_t **chans;        /* channel table: event.chan -> channel (NULL:
                                 a free slot) */
    uint32_t nchans, chans_cap;
    uint32_t *chans_free;     /* free slots of the table, reused first */
    uint32_t nchans_free;
    slab_t events;            /* every live event (event_t) */
    slab_t leases;            /* the lease of every LOCKED event (lease_t) */
    uint32_t *ids;            /* id hash buckets of event indices; chains
                                 through event.hnext */
    uint32_t ids_mask;
    uint32_t *ids_old;        /* while growing: the previous buckets, moved a
                                 few per insert or delete (NULL otherwise) */
    uint32_t ids_old_mask;
    uint32_t ids_moved;       /* old buckets below this are moved */
    id_gen_t idgen;
    uint64_t next_vseq;
    uint64_t token_state;     /* lease token generator */
    channel_t *avail_head, *avail_tail;
    const tz_t *default_tz;
    core_counters_t counters;
    core_timer_fn timer_fn;   /* for CORE_TIMER_USER nodes */
    void *timer_arg;
    core_journal_t journal;   /* add == NULL: nothing is logged */
    int replaying;            /* jobs do not fire; records give ids and tokens */
    size_t max_events, max_channel_events; /* for job fires; 0: none */
    ntime_t now;              /* the latest now seen (core_clock) */
    core_rec_t *fires;        /* replay: jobs' PUBLISH records of one tick (one
                                 now), created when each job's timer comes up */
    uint8_t *fire_claimed;    /* fires[i] was created by its job's timer */
    size_t nfires, fires_cap, fire_next; /* fire_next: the first unclaimed */
    int replay_ending;        /* replay's last tick: missed times are known */
    job_t **catch_up;         /* jobs that make up a missed time (missed ONCE),
                                 found in replay's last tick */
    size_t n_catch_up, catch_up_cap;
    eid_t *dl_pending;        /* replay: events whose lock ended at the limit */
    size_t n_dl_pending, cap_dl_pending;
};

/* The core's now: never before a now it has already seen. A wall-clock
 * step back would otherwise let a change be logged before one already
 * applied (a lock after the tick that ended the previous lock), which
 * replay could not follow. The server's clock never goes back (base/sclock.h),
 * so this only guards callers that pass an older now. */
static inline ntime_t core_clock(core_t *c, ntime_t now)
{
    if (now < c->now)
        return c->now;
    return c->now = now;
}

/* Hands r to the journal, if any. */
static inline void journal_add(core_t *c, const core_rec_t *r)
{
    if (c->journal.add)
        c->journal.add(c->journal.arg, r);
}

/* Commits what was added: 0, or -1 if it could not be written. */
static inline int journal_commit(core_t *c)
{
    return c->journal.commit ? c->journal.commit(c->journal.arg) : 0;
}

static inline channel_t *chan_of(const core_t *c, const event_t *e)
{
    return c->chans[e->chan];
}

/* event.c */
void event_fire(core_t *c, event_t *e, ntime_t now);
/* Expires the first event on ch's expiry list, which is due at now. */
void event_expire_head(core_t *c, channel_t *ch, ntime_t now);
void event_free_all(core_t *c);
/* Creates an event with a given id (no tick, no journal). */
event_t *event_create(core_t *c, channel_t *ch, ntime_t now, eid_t id, const core_pub_t *p);
/* Describes a publish as a record for the journal. */
void event_rec_publish(core_rec_t *r, channel_t *ch, ntime_t now, eid_t id, const core_pub_t *p);
/* A record naming one event. */
void event_rec(core_rec_t *r, int type, ntime_t now, const core_t *c, const event_t *e);
/* Unlinks e from every index and frees it (no counting). */
void event_remove(core_t *c, event_t *e);
/* Takes a visible event out of view (its lock, if any, is released) and
 * makes it SCHEDULED until at; it returns then without counting as
 * published again. */
void event_hold(core_t *c, event_t *e, ntime_t at);
/* Puts e, which is SCHEDULED and unlinked, into ch's view at now as the
 * newest event (a move between channels). */
void event_move_to(core_t *c, event_t *e, channel_t *dest, ntime_t now);
/* Replaces the extras kept after the data (key, dead_lettered_from). */
void event_set_extras(event_t *e, const char *key, size_t klen, const char *from, size_t flen);
/* The key map entry of e, kept while e lives in its channel. */
void event_key_add(core_t *c, event_t *e);
void event_key_del(core_t *c, event_t *e);
/* Ends e's lock (no counting): it is READY in its old place. */
void event_lock_end(core_t *c, event_t *e);
/* replay.c */
event_t *event_lookup(core_t *c, channel_t *ch, eid_t id);
/* The live event with that id in any channel, or NULL. */
event_t *event_find_id(core_t *c, eid_t id);
void event_lock_apply(core_t *c, event_t *e, ntime_t locked_until, uint64_t token);
/* Ends e's lock if it has one; hold_until > 0 then holds it back. */
void event_unlock_apply(core_t *c, event_t *e, ntime_t hold_until);
void event_extend_apply(core_t *c, event_t *e, ntime_t locked_until);
void event_delete_apply(core_t *c, event_t *e);
void event_restore(core_t *c, channel_t *ch, const core_rec_t *r);
void ids_init(core_t *c);
void ids_free(core_t *c);
/* Every live event, in no particular order, into out (room for
 * counters.events). Returns how many. */
size_t event_collect(core_t *c, event_t **out);
/* The visibility order of a visible event (0 for a SCHEDULED one). */
uint64_t event_vseq(const core_t *c, const event_t *e);

/* deadletter.c */
/* Whether a lock of e ending now moves it: 1 with the dead-letter channel
 * in *dest (len 0: none, the event is dropped); 0 below the limit; -1 at
 * the limit while the target is full (counted as a failed move). */
int dl_due(core_t *c, event_t *e, const char **dest, size_t *dest_len);
/* Logs the move of e (its lock ends) and applies it: *out is the moved
 * event, or NULL if dropped. CORE_IO if it could not be logged. */
core_status_t dl_move(core_t *c, event_t *e, const char *dest, size_t dest_len, ntime_t now,
                      event_t **out);
/* A lock of e ended (lapsed or UNLOCK) without a delete: dead-letters it
 * at the limit (logging the move; in replay, waiting for its record),
 * else applies the retry delay if lapsed. Returns e, the moved event, or
 * NULL if it was dropped. */
event_t *dl_lock_ended(core_t *c, event_t *e, ntime_t now, ntime_t ended_at, int lapsed);
/* Moves e (its lock ends) to channel `to` (len 0: drops it, counted as
 * dead-lettered). redrive: deliveries start again and dead_lettered_from
 * goes; else the source is counted and becomes dead_lettered_from. to
 * must not point into e. Returns e, or NULL if dropped. */
event_t *dl_move_apply(core_t *c, event_t *e, const char *to, size_t to_len, ntime_t now, int redrive);
/* After replay, with the journal attached: the moves replay found due
 * whose records were never written (the target was full, or a crash
 * came first) are tried now. Called from core_tick. */
void dl_settle(core_t *c, ntime_t now);
void settings_apply(core_t *c, channel_t *ch, const channel_settings_t *s);
/* Frees every event of ch; returns how many. */
uint64_t channel_clear(core_t *c, channel_t *ch);
void channel_apply_delete(core_t *c, channel_t *ch);

/* replay.c: the held-back fire or skip of job j, if any (and marks it
 * claimed). */
const core_rec_t *replay_claim_fire(core_t *c, const job_t *j);
/* replay.c: the publish a PUBLISH or JOB_TRIGGER record describes. */
core_pub_t rec_pub(const core_rec_t *r);
/* replay.c: remembers j for a catch-up fire once replay has ended. */
void core_catch_up_add(core_t *c, job_t *j);

/* job.c */
void job_fire(core_t *c, job_t *j, ntime_t now);
void job_free(core_t *c, job_t *j);
/* A new job of a parsed definition (cron, owned by the job from now on),
 * scheduled from now. */
job_t *job_create(core_t *c, channel_t *ch, const char *name, size_t name_len, const job_def_t *d,
                  cron_t *cron, ntime_t created_at, ntime_t defined_at, ntime_t now);
/* Replaces j's definition (cron owned by j from now on); its state stays. */
void job_define(core_t *c, job_t *j, const job_def_t *d, cron_t *cron, ntime_t defined_at, ntime_t now);
void job_set_paused(core_t *c, job_t *j, int pause, ntime_t now);
/* Counts a run of j at now that published event id. */
void job_ran(job_t *j, ntime_t now, eid_t id);
/* Applies a fire (PUBLISH with a name) or JOB_SKIP record of j. */
void job_apply_run(core_t *c, job_t *j, const core_rec_t *r);
/* Makes j fire at the first tick at or after now, as a catch-up. */
void job_catch_up(core_t *c, job_t *j, ntime_t now);
/* The flags byte of a definition, and a definition from a record's
 * fields (0, or -1 if they are out of range). d borrows r's strings. */
uint8_t job_def_flags(const job_def_t *d);
int job_def_from_rec(job_def_t *d, const core_rec_t *r);

/* core.c */
void core_mark_available(core_t *c, channel_t *ch);
uint64_t core_token_next(core_t *c);
/* Zeroes the counters since start (not the live event count). */
void core_counters_reset(core_t *c);

#endif
