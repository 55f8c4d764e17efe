-- 0006_dead_letter_room.sql -- a dead-letter move asks whether its target
-- has room from the target's counters, not by counting its events
-- (docs/SCHEMA.md, "Functions", migration 6).
--
-- Additive: the same signature; a binary of schema 1 to 5 still runs on it.
--   * dead_letter counted the target's live events at every move under a
--     channel limit: a dead-letter channel holding many events made each
--     move, and the sweep or request that ran it, as slow as a scan of
--     them. It now asks ev_room, as a redrive does: the live total, and
--     at the limit the target's expired rows removed and the total read
--     again, so the limit holds exactly as before.

-- As in 0004, the target's room from ev_room.
CREATE OR REPLACE FUNCTION dead_letter(ev_seq bigint, now bigint, max_target bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    src text;
    dlc text;
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
    IF NOT ev_room(dlc, 1, max_target, now) THEN
        UPDATE events SET locked_until = NULL, lock_token = NULL, visible_at = now,
            published_at = now, vseq = nextval('event_seq') WHERE seq = ev_seq;
        PERFORM count_dl_failed(src);
        RETURN 0;
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
