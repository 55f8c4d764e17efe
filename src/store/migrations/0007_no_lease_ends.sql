-- 0007_no_lease_ends.sql -- no index of every channel's leases by their
-- end: the sweep finds lapsed leases channel by channel through
-- events_leases (docs/SCHEMA.md, "Functions", migration 7).
--
-- Additive: the same signatures; a binary of schema 1 to 6 still runs on it.
--   * events_lease_ends (locked_until), partial on leases, served only the
--     sweep's scan of lapsed leases across channels. With it, the generic
--     plan of ev_acquire's scan for a channel's lapsed leases, made at a
--     connection's first acquire, could be a BitmapAnd of events_order
--     (every event of the channel) and events_lease_ends when the table
--     had no statistics yet (right after a bulk fill): each acquire then
--     read the whole channel until the next ANALYZE replanned it. Without
--     it the scan has events_leases, and every lease costs one index entry
--     fewer.
--   * sweep: as in 0004, but the lapsed leases come from each channel's
--     range of events_leases (at most max_rows in all).

DROP INDEX events_lease_ends;

-- As in 0004; the lapsed leases channel by channel.
CREATE OR REPLACE FUNCTION sweep(max_rows integer, max_target bigint) RETURNS integer
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
    -- lapsed leases, channel by channel through events_leases
    FOR r IN SELECT l.seq, l.visible_at, l.locked_until FROM channels c
            CROSS JOIN LATERAL (SELECT seq, visible_at, locked_until FROM events
                WHERE channel = c.name AND locked_until IS NOT NULL AND locked_until <= now
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
