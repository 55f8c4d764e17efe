-- 0001_init.sql -- the first schema of the PostgreSQL store (docs/SCHEMA.md).
--
-- Runs inside one transaction with search_path set to the store's schema,
-- under the migration lock; it must not name the schema itself.
--
-- Times: every instant is a bigint of nanoseconds since the Unix epoch from
-- the database's clock (now_ns()); every duration a bigint of nanoseconds.
-- 9223372036854775807 (NEVER) stands for "no such time".
--
-- An event's state at instant now, from its columns:
--   gone       lives_until <= now (expired: the sweep deletes the row)
--   locked     locked_until > now
--   held       the lock lapsed and the event must leave the channel
--              (visible_at = NEVER: dead-lettered or dropped by the sweep);
--              shown nowhere meanwhile
--   scheduled  visible_at > now
--   ready      otherwise
-- A free row (locked_until IS NULL) always has visible_at = published_at.
-- A lock sets visible_at to when the event is visible again if the lock
-- lapses: locked_until itself (the event keeps its place), locked_until +
-- the channel's retryDelay (it joins the back then), or NEVER when its
-- deliveries reached the channel's maxDeliveries.

CREATE FUNCTION now_ns() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT (extract(epoch FROM statement_timestamp()) * 1000000000)::bigint $$;

-- A new lease token: 63 random bits, never 0.
CREATE FUNCTION new_token() RETURNS bigint LANGUAGE sql VOLATILE AS
$$ SELECT (floor(random() * 4611686018427387904)::bigint * 2 + 1) $$;

-- seq: an event's counter (the low 48 bits of its id) and, as vseq, the
-- order of events that became visible at the same instant.
CREATE SEQUENCE event_seq MAXVALUE 281474976710655;

CREATE TABLE channels (
    name                text PRIMARY KEY,
    created_at          bigint NOT NULL,
    max_deliveries      integer NOT NULL DEFAULT 0,   -- 0: unlimited
    dead_letter_channel text NOT NULL DEFAULT '',     -- '': drop instead
    retry_delay_ns      bigint NOT NULL DEFAULT 0,
    metrics_own         boolean NOT NULL DEFAULT false -- has /metrics series of its own
);

CREATE TABLE events (
    seq                bigint PRIMARY KEY,      -- from event_seq; id = id_ms << 48 | seq
    id_ms              bigint NOT NULL,         -- the id's millisecond
    channel            text NOT NULL,
    vseq               bigint NOT NULL,         -- tie-break of published_at; new when it joins the back
    priority           smallint NOT NULL DEFAULT 0,
    data               bytea NOT NULL,          -- a string's bytes, or JSON text (never jsonb)
    data_json          boolean NOT NULL DEFAULT false, -- data is JSON text, not a string
    idem_key           bytea,                   -- idempotency key; NULL: none
    deliveries         integer NOT NULL DEFAULT 0,
    dead_lettered_from text,
    published_at       bigint NOT NULL,         -- visible from (shown as publishedAt)
    visible_at         bigint NOT NULL,         -- see the states above
    lives_until        bigint NOT NULL,
    locked_until       bigint,                  -- NULL: never locked or released
    lock_token         bigint,
    counted            boolean NOT NULL         -- counted as published (delayed: once visible)
);

-- acquire: free events of a channel in priority and visibility order
CREATE INDEX events_free ON events (channel, priority, published_at, vseq)
    WHERE locked_until IS NULL;
-- listing and per-channel counts, in visibility order
CREATE INDEX events_order ON events (channel, published_at, vseq);
-- leases of a channel (acquire takes lapsed ones), and for the sweep
CREATE INDEX events_leases ON events (channel, locked_until) WHERE locked_until IS NOT NULL;
CREATE INDEX events_lease_ends ON events (locked_until) WHERE locked_until IS NOT NULL;
-- the sweep's expiry
CREATE INDEX events_expiry ON events (lives_until);
-- delayed events not yet counted as published
CREATE INDEX events_uncounted ON events (published_at) WHERE NOT counted;
-- one live event per idempotency key and channel (the sweep or the next
-- publish with that key removes an expired holder first)
CREATE UNIQUE INDEX events_key ON events (channel, idem_key) WHERE idem_key IS NOT NULL;

CREATE TABLE jobs (
    channel          text NOT NULL,
    name             text NOT NULL,
    cron_def         text NOT NULL,
    data             bytea NOT NULL,
    data_json        boolean NOT NULL DEFAULT false,
    ttl_ns           bigint NOT NULL,
    priority         smallint NOT NULL DEFAULT 0,
    overlap_skip     boolean NOT NULL DEFAULT false,  -- overlap: skip (else allow)
    missed_once      boolean NOT NULL DEFAULT false,  -- missed: once (else skip)
    missed_window_ns bigint NOT NULL DEFAULT 3600000000000,
    paused           boolean NOT NULL DEFAULT false,
    runs             bigint NOT NULL DEFAULT 0,
    skipped          bigint NOT NULL DEFAULT 0,
    last_run_at      bigint,
    last_event_seq   bigint,                  -- the event of the last fire or trigger
    next_at          bigint NOT NULL,         -- NEVER: it will not fire again
    created_at       bigint NOT NULL,
    last_late_ns     bigint NOT NULL DEFAULT 0, -- how late the latest scheduled fire ran
    PRIMARY KEY (channel, name)
);
CREATE INDEX jobs_due ON jobs (next_at) WHERE NOT paused;

-- Stats totals: one row per channel and writing connection (slot is the
-- backend's pid, so concurrent transactions never wait for one row; slot 0
-- holds the totals the sweep folded in from connections that ended).
CREATE TABLE counters (
    channel       text NOT NULL,
    slot          integer NOT NULL,
    published     bigint NOT NULL DEFAULT 0,
    deleted       bigint NOT NULL DEFAULT 0,
    expired       bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    live          bigint NOT NULL DEFAULT 0,   -- events added minus removed (the limits)
    PRIMARY KEY (channel, slot)
);

-- Adds to this connection's counter row of a channel: the totals, and
-- lv to the live events (every event counts there from its publish to its
-- removal, delayed ones too; the channel's limit is checked against it).
-- PL/pgSQL, not SQL: a SQL function's INSERT is planned again at every
-- call, this one's plan is kept by the connection (it runs in nearly every
-- change).
CREATE FUNCTION count_add(ch text, p bigint, d bigint, x bigint, dl bigint, lv bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counters AS c (channel, slot, published, deleted, expired, dead_lettered, live)
    VALUES (ch, pg_backend_pid(), p, d, x, dl, lv)
    ON CONFLICT (channel, slot) DO UPDATE SET
        published = c.published + excluded.published,
        deleted = c.deleted + excluded.deleted,
        expired = c.expired + excluded.expired,
        dead_lettered = c.dead_lettered + excluded.dead_lettered,
        live = c.live + excluded.live;
END $$;

-- Moves an event whose lock ended without a delete and whose deliveries
-- reached its channel's maxDeliveries: to the dead-letter channel (the
-- back of its queue, same id, data, key and deliveries) or, with none set
-- or the target full (max_target events; 0: no limit), out of the queue.
-- A full target leaves the event ready in its channel. Returns 1 when it
-- moved or dropped the event, 0 when it stayed.
CREATE FUNCTION dead_letter(ev_seq bigint, now bigint, max_target bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    src text;
    dlc text;
    n bigint;
BEGIN
    SELECT e.channel, coalesce(c.dead_letter_channel, '') INTO src, dlc
    FROM events e LEFT JOIN channels c ON c.name = e.channel WHERE e.seq = ev_seq FOR UPDATE OF e;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF dlc = '' THEN
        DELETE FROM events WHERE seq = ev_seq;
        PERFORM count_add(src, 0, 0, 0, 1, -1);
        RETURN 1;
    END IF;
    IF max_target > 0 THEN
        SELECT count(*) INTO n FROM events WHERE channel = dlc AND lives_until > now;
        IF n >= max_target THEN
            UPDATE events SET locked_until = NULL, lock_token = NULL, visible_at = now,
                published_at = now, vseq = nextval('event_seq') WHERE seq = ev_seq;
            RETURN 0;
        END IF;
    END IF;
    INSERT INTO channels (name, created_at) VALUES (dlc, now) ON CONFLICT DO NOTHING;
    -- a live event with the same key in the target keeps its key
    UPDATE events SET channel = dlc, dead_lettered_from = src, locked_until = NULL,
        lock_token = NULL, published_at = now, visible_at = now, vseq = nextval('event_seq'),
        idem_key = CASE WHEN idem_key IS NOT NULL AND EXISTS (SELECT 1 FROM events o
            WHERE o.channel = dlc AND o.idem_key = events.idem_key) THEN NULL ELSE idem_key END
    WHERE seq = ev_seq;
    PERFORM count_add(src, 0, 0, 0, 1, -1);
    PERFORM count_add(dlc, 1, 0, 0, 0, 1);
    RETURN 1;
END $$;

-- UNLOCK (with an optional token and delay). Returns the status
-- (0 ok, 2 gone: unknown, expired or scheduled; 3 conflict: stale token)
-- and the event's seq when it is still in the channel.
CREATE FUNCTION ev_unlock(ev_seq bigint, ev_ms bigint, ch text, token bigint, delay_ns bigint,
                          max_target bigint, OUT status integer, OUT out_seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
    e events%ROWTYPE;
    now bigint := now_ns();
    locked boolean;
BEGIN
    out_seq := NULL;
    SELECT * INTO e FROM events WHERE seq = ev_seq AND id_ms = ev_ms AND channel = ch
        AND lives_until > now FOR UPDATE;
    locked := FOUND AND coalesce(e.locked_until > now, false);
    IF NOT FOUND OR (NOT locked AND e.visible_at > now) THEN
        status := 2;
        RETURN;
    END IF;
    IF token IS NOT NULL AND (NOT locked OR e.lock_token <> token) THEN
        status := 3;
        RETURN;
    END IF;
    status := 0;
    IF locked AND e.visible_at = 9223372036854775807 THEN
        IF dead_letter(ev_seq, now, max_target) = 1 THEN
            RETURN;
        END IF;
    ELSIF coalesce(delay_ns, 0) > 0 THEN
        UPDATE events SET locked_until = NULL, lock_token = NULL, published_at = now + delay_ns,
            visible_at = now + delay_ns, vseq = nextval('event_seq') WHERE seq = ev_seq;
    ELSIF locked OR e.locked_until IS NOT NULL THEN
        -- released now; a lapsed lock with a retry delay joins the back
        UPDATE events SET locked_until = NULL, lock_token = NULL,
            published_at = CASE WHEN locked OR visible_at <= locked_until THEN published_at ELSE visible_at END,
            visible_at = CASE WHEN locked OR visible_at <= locked_until THEN published_at ELSE visible_at END
        WHERE seq = ev_seq;
    END IF;
    out_seq := ev_seq;
END $$;

-- One bounded round of the time-driven work: expired events go (counted as
-- expired), lapsed locks are released (joining the back after a retry
-- delay, or dead-lettered), delayed events that became visible are counted
-- as published, and counter rows of connections that ended are folded into
-- slot 0. At most max_rows rows per kind; one replica at a time (the others
-- return -1 at once). Returns the number of rows changed.
CREATE FUNCTION sweep(max_rows integer, max_target bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    n integer := 0;
    r record;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext(current_schema() || '.sweep')) THEN
        RETURN -1;
    END IF;
    -- an event held back past its end (published_at >= lives_until) was
    -- never visible then: it goes uncounted, as in the memory store
    FOR r IN WITH d AS (
            DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE lives_until <= now
                ORDER BY lives_until LIMIT max_rows FOR UPDATE SKIP LOCKED)
            RETURNING channel, published_at < lives_until AS seen, counted)
        SELECT channel, count(*) AS c, count(*) FILTER (WHERE seen) AS x,
               count(*) FILTER (WHERE seen AND NOT counted) AS p FROM d GROUP BY channel LOOP
        PERFORM count_add(r.channel, r.p, 0, r.x, 0, -r.c);
        n := n + r.c;
    END LOOP;
    FOR r IN SELECT seq, visible_at, locked_until FROM events WHERE locked_until <= now
            ORDER BY locked_until LIMIT max_rows FOR UPDATE SKIP LOCKED LOOP
        IF r.visible_at = 9223372036854775807 THEN
            PERFORM dead_letter(r.seq, now, max_target);
        ELSIF r.visible_at > r.locked_until THEN
            UPDATE events SET locked_until = NULL, lock_token = NULL, published_at = visible_at,
                vseq = nextval('event_seq') WHERE seq = r.seq;
        ELSE
            UPDATE events SET locked_until = NULL, lock_token = NULL, visible_at = published_at
            WHERE seq = r.seq;
        END IF;
        n := n + 1;
    END LOOP;
    FOR r IN WITH u AS (
            UPDATE events SET counted = true WHERE seq IN (SELECT seq FROM events
                WHERE NOT counted AND published_at <= now LIMIT max_rows FOR UPDATE SKIP LOCKED)
            RETURNING channel)
        SELECT channel, count(*) AS c FROM u GROUP BY channel LOOP
        PERFORM count_add(r.channel, r.c, 0, 0, 0, 0);
        n := n + r.c;
    END LOOP;
    FOR r IN WITH gone AS (
            DELETE FROM counters WHERE (channel, slot) IN (SELECT channel, slot FROM counters
                WHERE slot <> 0 AND slot NOT IN (SELECT pid FROM pg_stat_activity)
                LIMIT max_rows FOR UPDATE SKIP LOCKED)
            RETURNING *)
        SELECT channel, sum(published) AS p, sum(deleted) AS d, sum(expired) AS x,
               sum(dead_lettered) AS dl, sum(live) AS lv FROM gone GROUP BY channel LOOP
        INSERT INTO counters AS c (channel, slot, published, deleted, expired, dead_lettered, live)
        VALUES (r.channel, 0, r.p, r.d, r.x, r.dl, r.lv)
        ON CONFLICT (channel, slot) DO UPDATE SET published = c.published + excluded.published,
            deleted = c.deleted + excluded.deleted, expired = c.expired + excluded.expired,
            dead_lettered = c.dead_lettered + excluded.dead_lettered, live = c.live + excluded.live;
    END LOOP;
    RETURN n;
END $$;

-- A job's scheduled fire at expect_at (its next_at as the caller read it):
-- if the job still exists, is not paused and still has that next_at, and
-- that time has come, its next_at becomes new_next_at and, unless it
-- skips (overlap skip while its previous event lives), it publishes one
-- event. Exactly one caller wins per scheduled time; the others get
-- fired = NULL. Returns fired (true, false: skipped) and the event's seq.
CREATE FUNCTION job_fire(ch text, jname text, expect_at bigint, new_next_at bigint,
                         OUT fired boolean, OUT ev_seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
    j jobs%ROWTYPE;
    now bigint := now_ns();
    s bigint;
BEGIN
    fired := NULL;
    ev_seq := NULL;
    SELECT * INTO j FROM jobs WHERE channel = ch AND name = jname AND next_at = expect_at
        AND next_at <= now AND NOT paused FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF j.overlap_skip AND j.last_event_seq IS NOT NULL AND EXISTS (SELECT 1 FROM events
            WHERE seq = j.last_event_seq AND channel = ch AND lives_until > now
            AND (locked_until > now OR visible_at <> 9223372036854775807)) THEN
        UPDATE jobs SET next_at = new_next_at, skipped = skipped + 1
        WHERE channel = ch AND name = jname;
        fired := false;
        RETURN;
    END IF;
    s := nextval('event_seq');
    INSERT INTO events (seq, id_ms, channel, vseq, priority, data, data_json, published_at,
                        visible_at, lives_until, counted)
    VALUES (s, now / 1000000, ch, s, j.priority, j.data, j.data_json, now, now, now + j.ttl_ns, true);
    PERFORM count_add(ch, 1, 0, 0, 0, 1);
    UPDATE jobs SET next_at = new_next_at, runs = runs + 1, last_run_at = now, last_event_seq = s,
        last_late_ns = now - expect_at
    WHERE channel = ch AND name = jname;
    fired := true;
    ev_seq := s;
END $$;
