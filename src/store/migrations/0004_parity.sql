-- 0004_parity.sql -- the rules of Parts A-C the PostgreSQL store kept
-- differently from the memory store (docs/SCHEMA.md, "Functions").
--
-- Additive: columns with defaults, two triggers, functions replaced with
-- the same signatures, and a new overload of job_fire; a binary of schema
-- 1 to 3 still runs on it.
--   * A dead-letter move or redrive refused because its target is full is
--     counted (counters.dl_failed, /metrics
--     distribuerad_dead_letter_moves_failed_total).
--   * A job's scheduled fire into a channel at its event limit (or with
--     every channel at the total limit) is skipped, as a publish would be
--     refused: counted in the job's `skipped`, nothing published.
--   * A redrive that would create channels past the channel limit is
--     refused as a publish would be (DQ429), nothing moved; the message of
--     the channel limit names the limit, as the memory store's does.
--   * A redrive's `max` counts the events moved, not those tried, and a
--     redrive `to` the channel itself moves its dead letters to its back.
--   * Lapsed leases are counted (counters.lock_expired, /metrics
--     distribuerad_lock_expiries_total) by triggers on events.

-- Dead-letter moves and redrives out of this channel refused because the
-- target was full. Kept in the channel's slot-0 row: refusals are rare,
-- so the row is not hot, and the sweep's fold of ended connections'
-- rows never needs to carry it.
ALTER TABLE counters ADD COLUMN dl_failed bigint NOT NULL DEFAULT 0;

CREATE FUNCTION count_dl_failed(ch text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counters AS c (channel, slot, dl_failed) VALUES (ch, 0, 1)
    ON CONFLICT (channel, slot) DO UPDATE SET dl_failed = c.dl_failed + 1;
END $$;

-- As in 0001, and a refused move is counted.
CREATE OR REPLACE FUNCTION dead_letter(ev_seq bigint, now bigint, max_target bigint) RETURNS integer
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
            PERFORM count_dl_failed(src);
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

-- As in 0002; the message names the limit.
CREATE OR REPLACE FUNCTION ch_ensure(ch text, max_chans bigint, now bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM channels WHERE name = ch) THEN
        RETURN;
    END IF;
    IF NOT ch_room(max_chans) THEN
        RAISE EXCEPTION 'the server holds its limit of % channels; nothing was changed, try again later',
            max_chans USING ERRCODE = 'DQ429';
    END IF;
    INSERT INTO channels (name, created_at) VALUES (ch, now) ON CONFLICT DO NOTHING;
END $$;

-- REDRIVE: up to mx (0: all) of ch's ready dead letters, oldest first,
-- each to `dest` or back to where it came from; each joins the back with
-- 0 deliveries. A target at its limit (max_target events) keeps its
-- event here, counted as a refused move. First, the channels the moves
-- would create (those of the first mx dead letters that do not exist)
-- must fit under max_chans (0: no limit), else nothing moves (DQ429).
-- Returns how many moved.
CREATE OR REPLACE FUNCTION ch_redrive(ch text, dest text, mx bigint, max_target bigint, max_chans bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    r record;
    t text;
    moved bigint := 0;
    fresh bigint;
BEGIN
    IF max_chans > 0 THEN
        SELECT count(DISTINCT x.t) INTO fresh FROM (
            SELECT coalesce(dest, dead_lettered_from) AS t FROM events
            WHERE channel = ch AND dead_lettered_from IS NOT NULL AND lives_until > now
              AND locked_until IS NULL AND published_at <= now
            ORDER BY published_at, vseq LIMIT CASE WHEN mx > 0 THEN mx END) x
        WHERE NOT EXISTS (SELECT 1 FROM channels WHERE name = x.t);
        IF fresh > 0 AND (SELECT count(*) FROM channels) + fresh > max_chans THEN
            RAISE EXCEPTION 'the server holds its limit of % channels; nothing was changed, try again later',
                max_chans USING ERRCODE = 'DQ429';
        END IF;
    END IF;
    FOR r IN SELECT seq, dead_lettered_from FROM events
             WHERE channel = ch AND dead_lettered_from IS NOT NULL AND lives_until > now
               AND locked_until IS NULL AND published_at <= now
             ORDER BY published_at, vseq FOR UPDATE LOOP
        EXIT WHEN mx > 0 AND moved >= mx;
        t := coalesce(dest, r.dead_lettered_from);
        IF NOT ev_room(t, 1, max_target, now) THEN
            PERFORM count_dl_failed(ch);
            CONTINUE;
        END IF;
        INSERT INTO channels (name, created_at) VALUES (t, now) ON CONFLICT DO NOTHING;
        UPDATE events SET channel = t, dead_lettered_from = NULL, deliveries = 0, published_at = now,
            visible_at = now, vseq = nextval('event_seq'),
            idem_key = CASE WHEN idem_key IS NOT NULL AND EXISTS (SELECT 1 FROM events o
                WHERE o.channel = t AND o.idem_key = events.idem_key AND o.seq <> events.seq)
                THEN NULL ELSE idem_key END
        WHERE seq = r.seq;
        PERFORM count_add(ch, 0, 0, 0, 0, -1);
        PERFORM count_add(t, 1, 0, 0, 0, 1);
        moved := moved + 1;
    END LOOP;
    RETURN moved;
END $$;

-- A job's scheduled fire, as job_fire of 0001, and like a publish it is
-- refused by a limit: when the channel holds max_ch events (0: no limit)
-- or total_full (every channel together is at the total limit, which the
-- replica knows), the fire is skipped (at_limit = true), counted in the job's
-- `skipped`, and the job moves on to new_next_at.
CREATE FUNCTION job_fire(ch text, jname text, expect_at bigint, new_next_at bigint, max_ch bigint,
                         total_full boolean, OUT fired boolean, OUT ev_seq bigint, OUT at_limit boolean)
LANGUAGE plpgsql AS $$
DECLARE
    j jobs%ROWTYPE;
    now bigint := now_ns();
    s bigint;
BEGIN
    fired := NULL;
    ev_seq := NULL;
    at_limit := false;
    SELECT * INTO j FROM jobs WHERE channel = ch AND name = jname AND next_at = expect_at
        AND next_at <= now AND NOT paused FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF j.overlap_skip AND j.last_event_seq IS NOT NULL AND EXISTS (SELECT 1 FROM events
            WHERE seq = j.last_event_seq AND channel = ch AND lives_until > now
            AND (locked_until > now OR visible_at <> 9223372036854775807)) THEN
        at_limit := false;
    ELSIF total_full OR NOT ev_room(ch, 1, max_ch, now) THEN
        at_limit := true;
    ELSE
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
        RETURN;
    END IF;
    UPDATE jobs SET next_at = new_next_at, skipped = skipped + 1 WHERE channel = ch AND name = jname;
    fired := false;
END $$;

-- Lock expiries (/metrics distribuerad_lock_expiries_total): a lease that
-- lapsed is counted when its row next changes lock (released by the sweep
-- or an UNLOCK, taken again, dead-lettered) or leaves the table, whoever
-- does it, once. A lease that ran out no earlier than its event's end is
-- not counted (the event expired while locked, as in the memory store).
-- The WHEN clause is checked in the executor, so the rows of the hot
-- paths (fresh rows taken, leases acknowledged in time) queue nothing.
ALTER TABLE counters ADD COLUMN lock_expired bigint NOT NULL DEFAULT 0;

CREATE FUNCTION count_lapsed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counters AS c (channel, slot, lock_expired) VALUES (OLD.channel, pg_backend_pid(), 1)
    ON CONFLICT (channel, slot) DO UPDATE SET lock_expired = c.lock_expired + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER events_lapsed_relock AFTER UPDATE OF locked_until ON events FOR EACH ROW
    WHEN (OLD.locked_until IS NOT NULL AND OLD.locked_until < OLD.lives_until
          AND OLD.locked_until <= now_ns() AND NEW.locked_until IS DISTINCT FROM OLD.locked_until)
    EXECUTE FUNCTION count_lapsed();
CREATE TRIGGER events_lapsed_gone AFTER DELETE ON events FOR EACH ROW
    WHEN (OLD.locked_until IS NOT NULL AND OLD.locked_until < OLD.lives_until
          AND OLD.locked_until <= now_ns())
    EXECUTE FUNCTION count_lapsed();

-- As in 0001; the fold of ended connections' rows carries lock_expired.
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
