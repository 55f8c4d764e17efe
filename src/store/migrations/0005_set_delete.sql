-- 0005_set_delete.sql -- a batch of deletes in one statement, and the
-- lapsed-lease triggers' condition without a function call
-- (docs/SCHEMA.md, "Keeping the hot paths cheap").
--
-- Additive: the same signatures; a binary of schema 1 to 4 still runs on it.
--   * ev_delete_many ran one DELETE per element: an executor start per
--     event, and the AFTER DELETE trigger's WHEN condition read from the
--     catalog, planned and its now_ns() inlined (the function's SQL text
--     parsed) again at every one. It is now one DELETE for the batch.
--   * The triggers' WHEN conditions name the database clock's expression
--     itself instead of now_ns(): a trigger's condition is prepared once
--     per statement, and inlining a SQL function parses its text each time.

-- DELETE of several events of ch in one statement. Element i is
-- (seqs[i], mss[i], tokens[i]) (token NULL: none). Returns one status per
-- element, in order, as if the elements ran one after the other: 0
-- deleted, 404 no such live event, 409 stale token (given, and the event
-- is not locked with it). Of elements naming the same event, one that may
-- delete it runs first, so the others find it gone (404). Nothing is
-- raised, so one element's refusal leaves the others. The join reads the
-- elements in seq order (nested loop over the materialized list, by the
-- primary key), so two such calls lock rows in the same order and never
-- wait for each other in a cycle; the totals are counted once. A generic
-- plan: a custom plan made at every call would cost more than the delete.
CREATE OR REPLACE FUNCTION ev_delete_many(ch text, seqs bigint[], mss bigint[], tokens bigint[])
RETURNS SETOF integer
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    now bigint := now_ns();
    st integer[];
    p bigint;
    d bigint;
BEGIN
    WITH x AS MATERIALIZED (
        SELECT u.seq, u.ms, u.tok, u.i FROM unnest(seqs, mss, tokens) WITH ORDINALITY u(seq, ms, tok, i)
        ORDER BY u.seq, u.i),
    del AS (
        DELETE FROM events e USING x
        WHERE e.seq = x.seq AND e.id_ms = x.ms AND e.channel = ch AND e.lives_until > now
          AND NOT (coalesce(e.locked_until <= now, false) AND e.visible_at = 9223372036854775807)
          AND (x.tok IS NULL OR (coalesce(e.locked_until > now, false) AND e.lock_token = x.tok))
        RETURNING x.i, e.seq, e.counted, e.published_at),
    gone AS (SELECT DISTINCT seq FROM del)
    SELECT array_agg(CASE
               WHEN mine.i IS NOT NULL THEN 0
               WHEN gone.seq IS NOT NULL THEN 404
               WHEN x.tok IS NOT NULL AND EXISTS (SELECT 1 FROM events e WHERE e.seq = x.seq
                   AND e.id_ms = x.ms AND e.channel = ch AND e.lives_until > now
                   AND NOT (coalesce(e.locked_until <= now, false) AND e.visible_at = 9223372036854775807))
                   THEN 409
               ELSE 404 END ORDER BY x.i),
           (SELECT count(*) FROM del WHERE NOT del.counted AND del.published_at <= now),
           (SELECT count(*) FROM del)
    INTO st, p, d
    FROM x LEFT JOIN del mine ON mine.i = x.i LEFT JOIN gone ON gone.seq = x.seq;
    IF d > 0 THEN
        PERFORM count_add(ch, p, d, 0, 0, -d);
    END IF;
    RETURN QUERY SELECT u.s FROM unnest(st) WITH ORDINALITY u(s, i) ORDER BY u.i;
END $$;

DROP TRIGGER events_lapsed_relock ON events;
DROP TRIGGER events_lapsed_gone ON events;
CREATE TRIGGER events_lapsed_relock AFTER UPDATE OF locked_until ON events FOR EACH ROW
    WHEN (OLD.locked_until IS NOT NULL AND OLD.locked_until < OLD.lives_until
          AND OLD.locked_until <= (extract(epoch FROM statement_timestamp()) * 1000000000)::bigint
          AND NEW.locked_until IS DISTINCT FROM OLD.locked_until)
    EXECUTE FUNCTION count_lapsed();
CREATE TRIGGER events_lapsed_gone AFTER DELETE ON events FOR EACH ROW
    WHEN (OLD.locked_until IS NOT NULL AND OLD.locked_until < OLD.lives_until
          AND OLD.locked_until <= (extract(epoch FROM statement_timestamp()) * 1000000000)::bigint)
    EXECUTE FUNCTION count_lapsed();
