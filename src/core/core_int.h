/*
 * core_int.h -- what core.c, event.c and job.c share; not for http/.
 */
#ifndef CORE_INT_H
#define CORE_INT_H

#include "core.h"

struct core {
    timers_t timers;          /* every event's and job's wake-up */
    strmap_t channels;        /* name -> channel_t* (owned) */
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

/* event.c */
void event_fire(core_t *c, event_t *e, ntime_t now);
/* Expires the first event on ch's expiry list, which is due at now. */
void event_expire_head(core_t *c, channel_t *ch, ntime_t now);
void event_free_all(core_t *c);
/* Creates an event with a given id (no tick, no journal). */
event_t *event_create(core_t *c, channel_t *ch, ntime_t now, eid_t id, const char *data, size_t len,
                      ntime_t publish_at, int64_t ttl_ns);
/* Describes a publish as a record for the journal. */
void event_rec_publish(core_rec_t *r, channel_t *ch, ntime_t now, eid_t id, const char *data,
                       size_t len, ntime_t publish_at, int64_t ttl_ns);
/* replay.c */
event_t *event_lookup(core_t *c, channel_t *ch, eid_t id);
void event_lock_apply(core_t *c, event_t *e, ntime_t locked_until, uint64_t token);
void event_unlock_apply(core_t *c, event_t *e);
void event_extend_apply(core_t *c, event_t *e, ntime_t locked_until);
void event_delete_apply(core_t *c, event_t *e);
void event_restore(core_t *c, channel_t *ch, const core_rec_t *r);
void ids_init(core_t *c);
void ids_free(core_t *c);
/* Every live event, in no particular order, into out (room for
 * counters.events). Returns how many. */
size_t event_collect(core_t *c, event_t **out);
/* The visibility order of a visible event (0 for a SCHEDULED one). */
uint64_t event_vseq(const event_t *e);

/* replay.c: the held-back fire or skip of job j, if any (and marks it
 * claimed). */
const core_rec_t *replay_claim_fire(core_t *c, const job_t *j);
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
