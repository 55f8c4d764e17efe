-- 0008_sweep_leased.sql -- the sweep looks for lapsed leases only in the
-- channels that have a lease (docs/SCHEMA.md, "Functions", migration 8).
--
-- Additive: the same signature; a binary of schema 1 to 7 still runs on it.
--   * sweep: as in 0007, but where few channels can hold a lease the
--     channels it reads lapsed leases from are found in events_leases
--     itself, one probe per channel with a lease (which also gives that
--     channel's earliest lease end), instead of a probe for every row of
--     channels: with 100 000 channels the sweep, run once a second by one
--     replica, probed them all each time.

CREATE OR REPLACE FUNCTION sweep(max_rows integer, max_target bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    n integer := 0;
    r record;
    loose boolean;
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
    -- lapsed leases, channel by channel through events_leases. Where few
    -- channels can have a lease (fewer leases, as last counted, than a
    -- third of the channels) they are found in the index itself: one probe
    -- past the channel before gives the next channel with a lease and its
    -- earliest end (a loose index scan), and only a channel whose earliest
    -- end has passed is read further. Otherwise every channel is probed,
    -- as in 0007 (a step of the loose scan costs about three probes).
    loose := (SELECT reltuples FROM pg_class WHERE oid = 'events_leases'::regclass) * 3
             < (SELECT reltuples FROM pg_class WHERE oid = 'channels'::regclass);
    FOR r IN WITH RECURSIVE leased(name, first_end) AS (
            (SELECT channel, locked_until FROM events WHERE loose AND locked_until IS NOT NULL
             ORDER BY channel, locked_until LIMIT 1)
            UNION ALL
            SELECT n.channel, n.locked_until FROM leased
                CROSS JOIN LATERAL (SELECT e.channel, e.locked_until FROM events e
                    WHERE e.locked_until IS NOT NULL AND e.channel > leased.name
                    ORDER BY e.channel, e.locked_until LIMIT 1) n),
        lapsing(name) AS (SELECT name FROM leased WHERE first_end <= now
            UNION ALL SELECT name FROM channels WHERE NOT loose)
        SELECT l.seq, l.visible_at, l.locked_until FROM lapsing
            CROSS JOIN LATERAL (SELECT seq, visible_at, locked_until FROM events
                WHERE channel = lapsing.name AND locked_until IS NOT NULL AND locked_until <= now
                ORDER BY channel, locked_until LIMIT max_rows FOR UPDATE SKIP LOCKED) l
            LIMIT max_rows LOOP
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
               sum(dead_lettered) AS dl, sum(live) AS lv, sum(lock_expired) AS le FROM gone GROUP BY channel LOOP
        INSERT INTO counters AS c (channel, slot, published, deleted, expired, dead_lettered, live, lock_expired)
        VALUES (r.channel, 0, r.p, r.d, r.x, r.dl, r.lv, r.le)
        ON CONFLICT (channel, slot) DO UPDATE SET published = c.published + excluded.published,
            deleted = c.deleted + excluded.deleted, expired = c.expired + excluded.expired,
            dead_lettered = c.dead_lettered + excluded.dead_lettered, live = c.live + excluded.live,
            lock_expired = c.lock_expired + excluded.lock_expired;
    END LOOP;
    RETURN n;
END $$;
