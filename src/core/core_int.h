/*
 * core_int.h -- what core.c, event.c and job.c share; not for http/.
 */
#ifndef CORE_INT_H
#define CORE_INT_H

#include "core.h"

struct core {
    timers_t timers;          /* every event's and job's wake-up */
    strmap_t channels;        /* name -> channel_t* (owned) */
    event_t **ids;            /* id hash buckets; chains through event.hnext */
    uint32_t ids_mask;
    id_gen_t idgen;
    uint64_t next_vseq;
    uint64_t token_state;     /* lease token generator */
    channel_t *avail_head, *avail_tail;
    const tz_t *default_tz;
    core_counters_t counters;
    core_timer_fn timer_fn;   /* for CORE_TIMER_USER nodes */
    void *timer_arg;
};

/* event.c */
void event_fire(core_t *c, event_t *e, ntime_t now);
void event_free_all(core_t *c);
/* core_publish without the tick, for jobs firing inside a tick. */
event_t *event_publish(core_t *c, channel_t *ch, ntime_t now, const char *data, size_t len,
                       ntime_t publish_at, int64_t ttl_ns);
void ids_init(core_t *c);

/* job.c */
void job_fire(core_t *c, job_t *j, ntime_t now);
void job_free(core_t *c, job_t *j);

/* core.c */
void core_mark_available(core_t *c, channel_t *ch);
uint64_t core_token_next(core_t *c);

#endif
