-- 0002_ops.sql -- the API's changes as functions, one call per request
-- (docs/SCHEMA.md, "Functions").
--
-- Each runs in the request's transaction and reads the clock once
-- (now_ns(): the statement's time). A refusal raises an error with one of
-- these SQLSTATEs, which rolls the request back and which the store maps
-- to its status; the message is the sentence for the client:
--   DQ404 not found   DQ409 conflict (stale token, name taken)
--   DQ410 gone        DQ429 a limit      DQ400 invalid
-- Events come back as ev_row, in this column order (the store reads them
-- by position).

CREATE TYPE ev_row AS (
    replayed           boolean,  -- publish: the key was live, this is the existing event
    seq                bigint,
    id_ms              bigint,
    priority           smallint,
    data               bytea,
    data_json          boolean,
    deliveries         integer,
    dead_lettered_from text,
    published_at       bigint,
    visible_at         bigint,
    lives_until        bigint,
    locked_until       bigint,
    lock_token         bigint
);

CREATE FUNCTION ev_of(e events, replayed boolean) RETURNS ev_row LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(replayed, e.seq, e.id_ms, e.priority, e.data, e.data_json, e.deliveries,
               e.dead_lettered_from, e.published_at, e.visible_at, e.lives_until, e.locked_until,
               e.lock_token)::ev_row
$$;

-- When an event locked until `until`, delivered d times, is visible again
-- if the lock lapses (see 0001: locked_until, later with a retry delay, or
-- NEVER when it must be dead-lettered).
CREATE FUNCTION lapse_at(d integer, until bigint, max_deliveries integer, retry_delay_ns bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN coalesce(max_deliveries, 0) > 0 AND d >= max_deliveries THEN 9223372036854775807
        WHEN coalesce(retry_delay_ns, 0) > 0 THEN
            CASE WHEN retry_delay_ns >= 9223372036854775806 - until THEN 9223372036854775806
                 ELSE until + retry_delay_ns END
        ELSE until END
$$;

-- May a new channel be made while max_chans (0: no limit) is the limit?
-- Counted only when one is made, which is rare; requests racing on two
-- replicas may both pass at the limit.
CREATE FUNCTION ch_room(max_chans bigint) RETURNS boolean LANGUAGE sql AS $$
    SELECT max_chans <= 0 OR (SELECT count(*) FROM channels) < max_chans
$$;

-- Makes the channel unless it exists; at the channel limit (max_chans,
-- 0: none) a new one is refused.
CREATE FUNCTION ch_ensure(ch text, max_chans bigint, now bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM channels WHERE name = ch) THEN
        RETURN;
    END IF;
    IF NOT ch_room(max_chans) THEN
        RAISE EXCEPTION 'the server holds its limit of channels; nothing was changed, try again later'
            USING ERRCODE = 'DQ429';
    END IF;
    INSERT INTO channels (name, created_at) VALUES (ch, now) ON CONFLICT DO NOTHING;
END $$;

-- Is there room in ch for `want` more events under its limit max_ch (0:
-- none)? Its live count includes expired events the sweep has not
-- removed yet: at the limit they are removed (and counted as the sweep
-- would) and the count taken again, so the limit holds exactly.
CREATE FUNCTION ev_room(ch text, want bigint, max_ch bigint, now bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    have bigint;
BEGIN
    IF max_ch <= 0 THEN
        RETURN true;
    END IF;
    SELECT coalesce(sum(live), 0) INTO have FROM counters WHERE channel = ch;
    IF have + want <= max_ch THEN
        RETURN true;
    END IF;
    PERFORM sweep_channel(ch, now);
    SELECT coalesce(sum(live), 0) INTO have FROM counters WHERE channel = ch;
    RETURN have + want <= max_ch;
END $$;

-- Frees the key of an event that holds it but is no longer live: expired
-- (deleted and counted as the sweep would) or waiting for its dead-letter
-- move (moved now). Returns the live holder, if any.
CREATE FUNCTION key_holder(ch text, k bytea, now bigint, max_target bigint) RETURNS events
LANGUAGE plpgsql AS $$
DECLARE
    old events%ROWTYPE;
BEGIN
    SELECT * INTO old FROM events WHERE channel = ch AND idem_key = k FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF old.lives_until <= now THEN
        DELETE FROM events WHERE seq = old.seq;
        PERFORM count_add(ch, CASE WHEN NOT old.counted AND old.published_at < old.lives_until THEN 1 ELSE 0 END,
                          0, CASE WHEN old.published_at < old.lives_until THEN 1 ELSE 0 END, 0, -1);
        RETURN NULL;
    END IF;
    IF old.locked_until <= now AND old.visible_at = 9223372036854775807 THEN
        PERFORM dead_letter(old.seq, now, max_target);
        SELECT * INTO old FROM events WHERE channel = ch AND idem_key = k;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN old;
END $$;

-- Publishes n events into ch, all or nothing. Element i: data, JSON or
-- not, priority, publish_at (NULL: now + pub_in), ttl, key (NULL: none).
-- An element whose key is live comes back as that event (replayed).
-- max_ch: the channel's event limit (0: none).
CREATE FUNCTION ev_publish(ch text, max_chans bigint, max_ch bigint, datas bytea[], jsons boolean[],
                           prios smallint[], pub_at bigint[], pub_in bigint[], ttls bigint[], keys bytea[])
RETURNS SETOF ev_row LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    pub bigint;
    s bigint;
    e events%ROWTYPE;
    fresh bigint := 0;
    visible bigint := 0;
    have bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM channels WHERE name = ch) THEN
        PERFORM ch_ensure(ch, max_chans, now);
    END IF;
    FOR i IN 1 .. coalesce(array_length(datas, 1), 0) LOOP
        IF keys[i] IS NOT NULL THEN
            e := key_holder(ch, keys[i], now, max_ch);
            IF e.seq IS NOT NULL THEN
                RETURN NEXT ev_of(e, true);
                CONTINUE;
            END IF;
        END IF;
        pub := coalesce(pub_at[i], now + pub_in[i]);
        s := nextval('event_seq');
        INSERT INTO events (seq, id_ms, channel, vseq, priority, data, data_json, idem_key, published_at,
                            visible_at, lives_until, counted)
        VALUES (s, now / 1000000, ch, s, prios[i], datas[i], jsons[i], keys[i], pub, pub, pub + ttls[i],
                pub <= now)
        ON CONFLICT (channel, idem_key) WHERE idem_key IS NOT NULL DO NOTHING
        RETURNING * INTO e;
        IF NOT FOUND THEN
            -- another request published this key meanwhile and committed
            SELECT * INTO e FROM events WHERE channel = ch AND idem_key = keys[i];
            RETURN NEXT ev_of(e, true);
            CONTINUE;
        END IF;
        fresh := fresh + 1;
        IF pub <= now THEN
            visible := visible + 1;
        END IF;
        RETURN NEXT ev_of(e, false);
    END LOOP;
    IF fresh > 0 AND max_ch > 0 THEN
        IF NOT ev_room(ch, fresh, max_ch, now) THEN
            RAISE EXCEPTION 'the server holds its limit of % events in this channel; nothing was changed, try again later',
                max_ch USING ERRCODE = 'DQ429';
        END IF;
    END IF;
    IF fresh > 0 THEN
        PERFORM count_add(ch, visible, 0, 0, 0, fresh);
    END IF;
END $$;

-- The live event (seq, id_ms) of ch for a change, locked; raises `code`
-- when there is none.
CREATE FUNCTION ev_find(ev_seq bigint, ev_ms bigint, ch text, now bigint, code text) RETURNS events
LANGUAGE plpgsql AS $$
DECLARE
    e events%ROWTYPE;
BEGIN
    SELECT * INTO e FROM events WHERE seq = ev_seq AND id_ms = ev_ms AND channel = ch AND lives_until > now
        AND NOT (coalesce(locked_until <= now, false) AND visible_at = 9223372036854775807)
        FOR UPDATE;
    IF NOT FOUND THEN
        IF code = 'DQ404' THEN
            RAISE EXCEPTION 'no such event' USING ERRCODE = 'DQ404';
        END IF;
        RAISE EXCEPTION 'gone' USING ERRCODE = 'DQ410';
    END IF;
    RETURN e;
END $$;

-- Locks the rows given of ch (free now) for ttl: new token, one more
-- delivery, and the instant it is visible again should the lock lapse. A
-- row whose lock lapsed after a retry delay joins the back of the queue
-- now. PL/pgSQL with a generic plan, so that the connection plans it once
-- (a SQL function's statements are planned at every call). The rows are
-- found by seq alone: a condition on the channel here invites a bitmap
-- AND with a channel index.
CREATE FUNCTION ev_take(seqs bigint[], ch text, ttl bigint, now bigint) RETURNS SETOF events
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN QUERY WITH t AS (
        UPDATE events e SET
            locked_until = now + ttl,
            lock_token = new_token(),
            deliveries = e.deliveries + 1,
            published_at = CASE WHEN e.locked_until IS NOT NULL AND e.visible_at > e.locked_until
                                THEN e.visible_at ELSE e.published_at END,
            vseq = CASE WHEN e.locked_until IS NOT NULL AND e.visible_at > e.locked_until
                        THEN nextval('event_seq') ELSE e.vseq END,
            visible_at = lapse_at(e.deliveries + 1, now + ttl, c.max_deliveries, c.retry_delay_ns)
        FROM channels c
        WHERE c.name = ch AND e.seq = ANY (seqs)
        RETURNING e.*)
    SELECT * FROM t;
END $$;

-- LOCK: a ready event only, else gone.
CREATE FUNCTION ev_lock(ev_seq bigint, ev_ms bigint, ch text, ttl bigint) RETURNS SETOF ev_row
LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    e events%ROWTYPE := ev_find(ev_seq, ev_ms, ch, now, 'DQ410');
BEGIN
    IF e.locked_until > now OR (CASE WHEN e.locked_until IS NULL THEN e.published_at ELSE e.visible_at END) > now THEN
        RAISE EXCEPTION 'gone' USING ERRCODE = 'DQ410';
    END IF;
    RETURN QUERY SELECT r.* FROM ev_take(ARRAY[ev_seq], ch, ttl, now) t, ev_of(t, false) r;
END $$;

-- UNLOCK through ev_unlock (0001), then the event as it is now (none if
-- it left the channel).
CREATE FUNCTION ev_release(ev_seq bigint, ev_ms bigint, ch text, token bigint, delay_ns bigint, max_target bigint)
RETURNS SETOF ev_row LANGUAGE plpgsql AS $$
DECLARE
    u record;
BEGIN
    SELECT * INTO u FROM ev_unlock(ev_seq, ev_ms, ch, token, delay_ns, max_target);
    IF u.status = 2 THEN
        RAISE EXCEPTION 'gone' USING ERRCODE = 'DQ410';
    ELSIF u.status = 3 THEN
        RAISE EXCEPTION 'stale token' USING ERRCODE = 'DQ409';
    END IF;
    RETURN QUERY SELECT r.* FROM events e, ev_of(e, false) r WHERE e.seq = u.out_seq;
END $$;

-- EXTEND: a locked event's lock ends at now + ttl (same token).
CREATE FUNCTION ev_extend(ev_seq bigint, ev_ms bigint, ch text, ttl bigint, token bigint)
RETURNS SETOF ev_row LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    e events%ROWTYPE := ev_find(ev_seq, ev_ms, ch, now, 'DQ410');
    c channels%ROWTYPE;
BEGIN
    IF NOT coalesce(e.locked_until > now, false) THEN
        RAISE EXCEPTION 'gone' USING ERRCODE = 'DQ410';
    END IF;
    IF token IS NOT NULL AND e.lock_token <> token THEN
        RAISE EXCEPTION 'stale token' USING ERRCODE = 'DQ409';
    END IF;
    SELECT * INTO c FROM channels WHERE name = ch;
    UPDATE events SET locked_until = now + ttl,
        visible_at = lapse_at(deliveries, now + ttl, c.max_deliveries, c.retry_delay_ns)
    WHERE seq = ev_seq RETURNING * INTO e;
    RETURN NEXT ev_of(e, false);
END $$;

-- DELETE (acknowledge or cancel).
CREATE FUNCTION ev_delete(ev_seq bigint, ev_ms bigint, ch text, token bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    e events%ROWTYPE := ev_find(ev_seq, ev_ms, ch, now, 'DQ404');
BEGIN
    IF token IS NOT NULL AND NOT (coalesce(e.locked_until > now, false) AND e.lock_token = token) THEN
        RAISE EXCEPTION 'stale token' USING ERRCODE = 'DQ409';
    END IF;
    DELETE FROM events WHERE seq = ev_seq;
    PERFORM count_add(ch, CASE WHEN NOT e.counted AND e.published_at <= now THEN 1 ELSE 0 END, 1, 0, 0, -1);
END $$;

-- ACQUIRE: up to mx free events of ch, most urgent and oldest first, each
-- locked for ttl. SKIP LOCKED in MATERIALIZED CTEs: concurrent acquirers
-- pass over each other's rows, and the planner cannot run the LIMIT twice.
-- Two sources: free rows (the events_free index, read in its order: the
-- instant is a plain value here, so the scan is ordered and stops at mx
-- rows instead of sorting the channel) and leases that lapsed but the
-- sweep has not released yet. Generic plans: a custom plan made at every
-- call cost more than the query (docs/SCHEMA.md, "Keeping the hot paths
-- cheap").
CREATE FUNCTION ev_acquire(ch text, mx integer, ttl bigint) RETURNS SETOF ev_row
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    now bigint := now_ns();
    seqs bigint[];
BEGIN
    WITH free AS MATERIALIZED (
        SELECT seq, priority, published_at AS p, vseq FROM events
        WHERE channel = ch AND locked_until IS NULL AND published_at <= now AND lives_until > now
        ORDER BY priority, published_at, vseq LIMIT mx FOR UPDATE SKIP LOCKED),
    lapsed AS MATERIALIZED (
        SELECT seq, priority, CASE WHEN visible_at > locked_until THEN visible_at ELSE published_at END AS p,
               vseq FROM events
        WHERE channel = ch AND locked_until IS NOT NULL AND locked_until <= now AND visible_at <= now
          AND lives_until > now
        ORDER BY priority, locked_until LIMIT mx FOR UPDATE SKIP LOCKED)
    SELECT ARRAY(SELECT seq FROM (SELECT * FROM free UNION ALL SELECT * FROM lapsed) x
                 ORDER BY priority, p, vseq LIMIT mx) INTO seqs;
    IF cardinality(seqs) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT r.* FROM ev_take(seqs, ch, ttl, now) t, ev_of(t, false) r
        ORDER BY t.priority, t.published_at, t.vseq;
END $$;

-- PURGE: every event of ch gone, counted as deleted.
CREATE FUNCTION ch_purge(ch text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    n bigint;
    p bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM channels WHERE name = ch) THEN
        RAISE EXCEPTION 'no such channel' USING ERRCODE = 'DQ404';
    END IF;
    WITH d AS (DELETE FROM events WHERE channel = ch AND lives_until > now RETURNING counted, published_at)
    SELECT count(*), count(*) FILTER (WHERE NOT counted AND published_at <= now) INTO n, p FROM d;
    -- expired rows the sweep has not taken yet go as expired
    PERFORM sweep_channel(ch, now);
    PERFORM count_add(ch, p, n, 0, 0, -n);
    RETURN n;
END $$;

-- Removes the expired rows of one channel (as the sweep would).
CREATE FUNCTION sweep_channel(ch text, now bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    WITH d AS (DELETE FROM events WHERE channel = ch AND lives_until <= now
               RETURNING published_at < lives_until AS seen, counted)
    SELECT count(*) AS c, count(*) FILTER (WHERE seen) AS x, count(*) FILTER (WHERE seen AND NOT counted) AS p
    INTO r FROM d;
    IF r.c > 0 THEN
        PERFORM count_add(ch, r.p, 0, r.x, 0, -r.c);
    END IF;
END $$;

-- DELETE of a channel: its events, jobs, settings and totals.
CREATE FUNCTION ch_delete(ch text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM channels WHERE name = ch;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such channel' USING ERRCODE = 'DQ404';
    END IF;
    DELETE FROM events WHERE channel = ch;
    DELETE FROM jobs WHERE channel = ch;
    DELETE FROM counters WHERE channel = ch;
END $$;

-- Settings PUT: the fields given (NULL: unchanged). Locked events get the
-- instant their lock's lapse takes effect again, since the dead-letter
-- decision is made when the lock is taken.
CREATE FUNCTION ch_settings(ch text, max_chans bigint, md integer, dlc text, rd bigint) RETURNS channels
LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    c channels%ROWTYPE;
BEGIN
    PERFORM ch_ensure(ch, max_chans, now);
    UPDATE channels SET max_deliveries = coalesce(md, max_deliveries),
        dead_letter_channel = coalesce(dlc, dead_letter_channel), retry_delay_ns = coalesce(rd, retry_delay_ns)
    WHERE name = ch RETURNING * INTO c;
    UPDATE events SET visible_at = lapse_at(deliveries, locked_until, c.max_deliveries, c.retry_delay_ns)
    WHERE channel = ch AND locked_until > now;
    RETURN c;
END $$;

-- REDRIVE: up to mx (0: all) of ch's ready dead letters, oldest first,
-- each to `dest` or back to where it came from; each joins the back with
-- 0 deliveries. A target at its limit (max_target events) keeps its
-- event here. Returns how many moved.
CREATE FUNCTION ch_redrive(ch text, dest text, mx bigint, max_target bigint, max_chans bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    r record;
    t text;
    moved bigint := 0;
    have bigint;
BEGIN
    FOR r IN SELECT seq, dead_lettered_from FROM events
             WHERE channel = ch AND dead_lettered_from IS NOT NULL AND lives_until > now
               AND locked_until IS NULL AND published_at <= now
             ORDER BY published_at, vseq LIMIT CASE WHEN mx > 0 THEN mx END FOR UPDATE LOOP
        t := coalesce(dest, r.dead_lettered_from);
        IF t = ch THEN
            CONTINUE;
        END IF;
        IF NOT ev_room(t, 1, max_target, now) THEN
            CONTINUE;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM channels WHERE name = t) THEN
            IF NOT ch_room(max_chans) THEN
                CONTINUE;
            END IF;
            INSERT INTO channels (name, created_at) VALUES (t, now) ON CONFLICT DO NOTHING;
        END IF;
        UPDATE events SET channel = t, dead_lettered_from = NULL, deliveries = 0, published_at = now,
            visible_at = now, vseq = nextval('event_seq'),
            idem_key = CASE WHEN idem_key IS NOT NULL AND EXISTS (SELECT 1 FROM events o
                WHERE o.channel = t AND o.idem_key = events.idem_key) THEN NULL ELSE idem_key END
        WHERE seq = r.seq;
        PERFORM count_add(ch, 0, 0, 0, 0, -1);
        PERFORM count_add(t, 1, 0, 0, 0, 1);
        moved := moved + 1;
    END LOOP;
    RETURN moved;
END $$;

-- POST (replace false) or PUT (true) of a job. next_at and created_at come
-- from the replica (it computes cron times), as instants of this clock.
-- Returns the job and whether it was created (true), replaced (false) or
-- left as it was (NULL: the definition was equal).
CREATE FUNCTION job_put(ch text, max_chans bigint, do_replace boolean, jname text, def text, jdata bytea,
                        jjson boolean, ttl bigint, prio smallint, oskip boolean, monce boolean, mwin bigint,
                        created bigint, next bigint, OUT j jobs, OUT made boolean)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ch_ensure(ch, max_chans, created);
    INSERT INTO jobs (channel, name, cron_def, data, data_json, ttl_ns, priority, overlap_skip, missed_once,
                      missed_window_ns, next_at, created_at)
    VALUES (ch, jname, def, jdata, jjson, ttl, prio, oskip, monce, mwin, next, created)
    ON CONFLICT (channel, name) DO NOTHING RETURNING * INTO j;
    IF FOUND THEN
        made := true;
        RETURN;
    END IF;
    IF NOT do_replace THEN
        RAISE EXCEPTION 'a job with this name exists in this channel' USING ERRCODE = 'DQ409';
    END IF;
    SELECT * INTO j FROM jobs WHERE channel = ch AND name = jname FOR UPDATE;
    IF j.cron_def = def AND j.data = jdata AND j.data_json = jjson AND j.ttl_ns = ttl AND j.priority = prio
       AND j.overlap_skip = oskip AND j.missed_once = monce AND j.missed_window_ns = mwin THEN
        made := NULL;
        RETURN;
    END IF;
    UPDATE jobs SET cron_def = def, data = jdata, data_json = jjson, ttl_ns = ttl, priority = prio,
        overlap_skip = oskip, missed_once = monce, missed_window_ns = mwin, next_at = next
    WHERE channel = ch AND name = jname RETURNING * INTO j;
    made := false;
END $$;

-- PAUSE (paused true) or RESUME (false, with the next fire after now).
CREATE FUNCTION job_pause(ch text, jname text, pause boolean, next bigint) RETURNS jobs
LANGUAGE plpgsql AS $$
DECLARE
    j jobs%ROWTYPE;
BEGIN
    UPDATE jobs SET paused = pause,
        next_at = CASE WHEN pause OR NOT paused THEN next_at ELSE next END
    WHERE channel = ch AND name = jname RETURNING * INTO j;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such job' USING ERRCODE = 'DQ404';
    END IF;
    RETURN j;
END $$;

-- TRIGGER: the job publishes one event now, outside its schedule.
CREATE FUNCTION job_trigger(ch text, jname text, max_ch bigint, OUT j jobs, OUT e events)
LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    s bigint;
    have bigint;
BEGIN
    SELECT * INTO j FROM jobs WHERE channel = ch AND name = jname FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such job' USING ERRCODE = 'DQ404';
    END IF;
    IF NOT ev_room(ch, 1, max_ch, now) THEN
        RAISE EXCEPTION 'the server holds its limit of % events in this channel; nothing was changed, try again later',
            max_ch USING ERRCODE = 'DQ429';
    END IF;
    s := nextval('event_seq');
    INSERT INTO events (seq, id_ms, channel, vseq, priority, data, data_json, published_at, visible_at,
                        lives_until, counted)
    VALUES (s, now / 1000000, ch, s, j.priority, j.data, j.data_json, now, now, now + j.ttl_ns, true)
    RETURNING * INTO e;
    PERFORM count_add(ch, 1, 0, 0, 0, 1);
    UPDATE jobs SET runs = runs + 1, last_run_at = now, last_event_seq = s
    WHERE channel = ch AND name = jname RETURNING * INTO j;
END $$;

-- A scheduled fire that no replica made in time (the database was
-- unreachable, every replica down): the job moves on to `next` without
-- firing (missed: skip), only if it still expects `expect_at`.
CREATE FUNCTION job_skip(ch text, jname text, expect_at bigint, next bigint) RETURNS boolean
LANGUAGE sql AS $$
    WITH u AS (UPDATE jobs SET next_at = next WHERE channel = ch AND name = jname AND next_at = expect_at
               AND NOT paused RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM u)
$$;

-- Lets channels without series of their own have them, in name order,
-- while fewer than max_own have. One replica at a time (the lock), so
-- replicas that claim together stay within max_own.
CREATE FUNCTION metrics_claim(max_own bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    have bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM channels WHERE NOT metrics_own) THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.metrics_claim'));
    SELECT count(*) INTO have FROM channels WHERE metrics_own;
    IF have >= max_own THEN
        RETURN;
    END IF;
    UPDATE channels SET metrics_own = true WHERE name IN (
        SELECT name FROM channels WHERE NOT metrics_own ORDER BY name COLLATE "C" LIMIT max_own - have);
END $$;
