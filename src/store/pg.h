/*
 * pg.h -- the PostgreSQL store: store.h over tables in PostgreSQL, shared
 * by any number of replicas (Part D of docs/API.md; the schema in
 * docs/SCHEMA.md).
 *
 * Every operation is one request to the database: one call of a function
 * of the schema (or one SELECT), sent through the pool of pgconn.h with
 * one Sync, so it is one transaction, and done runs after COMMIT, from the
 * loop (answers_later). Concurrent publishes, deletes and acquires of one
 * channel share one such request (group commit, pg_batch.h), each still
 * answered on its own. Refusals come back as SQLSTATEs DQ404, DQ409,
 * DQ410, DQ429 and DQ400 and map to the store's statuses; a database that
 * does not answer within the timeout gives STORE_UNAVAILABLE.
 *
 * Clock: the database's. Queries read it themselves (now_ns()); for the
 * layer above and the cron arithmetic done here, store_now is this host's
 * clock plus an offset learned from the database at every tick (so a
 * replica whose clock is off still computes with the database's time).
 *
 * Background work, each at most about once a second and all of it safe to
 * run on every replica at once:
 *   tick     refresh the clock offset and the counts the limits use
 *            (they may lag by up to a second)
 *   metrics  while /metrics was scraped in the last minute: read the
 *            shared series again, claiming channels their own series
 *            (pg_metrics.c), on the background connection, and no
 *            sooner than 20 times as long as the last read took
 *   sweep    one bounded round of sweep() (only one replica at a time
 *            does work; the others return at once)
 *   jobs     read the jobs due soon, fire each at its time through
 *            job_fire (one winner per scheduled time, no leader)
 *   waiters  for channels where an acquire found nothing lately: tell the
 *            layer above of those with a free event now, and time a
 *            wake-up for the next delayed event or lease end there
 *   vacuum   every 2 s: VACUUM the events table if 10 000 of its rows or
 *            more are dead, else ANALYZE it if 10 000 and a tenth of them
 *            changed, on the background connection (pg_vacuum.c; one
 *            replica at a time works, the others pass)
 * The background connection is one more connection of the replica's own,
 * for what may take long and must not hold up requests pipelined behind
 * it; the database cancels a statement there that outlasts the timeout.
 * Wake-ups across replicas: after a commit that frees events in a channel
 * the store tells its own layer above at once and sends NOTIFY on its own
 * (never inside the publishing transaction): the first for a channel at
 * once, later ones within 100 ms coalesced into one. One LISTEN connection
 * per replica hears the others; after it reconnects the waiters poll runs
 * at once, since notifications may have been missed.
 */
#ifndef STORE_PG_H
#define STORE_PG_H

#include <stddef.h>
#include <stdint.h>
#include "store.h"
#include "time/tz.h"

struct st_h2o_evloop_t;

typedef struct store_pg_config {
    struct st_h2o_evloop_t *loop; /* the server's loop; the store watches its sockets there */
    const char *url;          /* libpq URI or key=value string (copied) */
    const char *schema;       /* the schema, migrated already (pgstart.h) (copied) */
    size_t pool;              /* connections for requests (plus one LISTEN) */
    uint64_t timeout_ms;      /* a request unanswered this long fails with 503 */
    size_t max_events;        /* live events in all channels (0: no limit) */
    size_t max_channel_events; /* in one channel */
    size_t max_channels;
    size_t metrics_max_channels; /* channels with /metrics series of their
                                  own (0: 1000); the others are summed */
    const tz_t *zone;         /* cron's default zone */
    void (*log)(const char *level, const char *msg); /* "info", "warn", "error" */
} store_pg_config_t;

/* A PostgreSQL store; starts connecting at once, without blocking (ready
 * once a connection is up and the clock known). Never NULL. */
store_t *store_pg_new(const store_pg_config_t *cfg);

#endif
