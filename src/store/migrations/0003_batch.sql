-- 0003_batch.sql -- statements for concurrent requests merged into one
-- (group commit: docs/SCHEMA.md, "Batches").
--
-- Additive: a binary that knows only versions 1 and 2 keeps running.

-- DELETE of several events of ch in one transaction. Element i is
-- (seqs[i], mss[i], tokens[i]) (token NULL: none). Returns one status per
-- element, in order, the answer ev_delete gives alone, as if the elements
-- ran one after the other: 0 deleted, 404 no such live event, 409 stale
-- token (given, and the event is not locked with it). Nothing is raised,
-- so one element's refusal leaves the others. Rows are deleted in seq
-- order, so that two such calls never wait for each other in a cycle; the
-- totals are counted once.
CREATE FUNCTION ev_delete_many(ch text, seqs bigint[], mss bigint[], tokens bigint[]) RETURNS SETOF integer
LANGUAGE plpgsql AS $$
DECLARE
    now bigint := now_ns();
    st integer[] := array_fill(404, ARRAY[cardinality(seqs)]);
    w record;
    e record;
    p bigint := 0;
    d bigint := 0;
BEGIN
    FOR w IN SELECT x.seq, x.ms, x.tok, x.i FROM unnest(seqs, mss, tokens) WITH ORDINALITY x(seq, ms, tok, i)
             ORDER BY x.seq, x.i LOOP
        DELETE FROM events WHERE seq = w.seq AND id_ms = w.ms AND channel = ch AND lives_until > now
            AND NOT (coalesce(locked_until <= now, false) AND visible_at = 9223372036854775807)
            AND (w.tok IS NULL OR (coalesce(locked_until > now, false) AND lock_token = w.tok))
        RETURNING counted, published_at INTO e;
        IF FOUND THEN
            st[w.i] := 0;
            d := d + 1;
            IF NOT e.counted AND e.published_at <= now THEN
                p := p + 1;
            END IF;
        ELSIF w.tok IS NOT NULL AND EXISTS (SELECT 1 FROM events WHERE seq = w.seq AND id_ms = w.ms
                AND channel = ch AND lives_until > now
                AND NOT (coalesce(locked_until <= now, false) AND visible_at = 9223372036854775807)) THEN
            st[w.i] := 409;
        END IF;
    END LOOP;
    IF d > 0 THEN
        PERFORM count_add(ch, p, d, 0, 0, -d);
    END IF;
    RETURN QUERY SELECT u.s FROM unnest(st) WITH ORDINALITY u(s, i) ORDER BY u.i;
END $$;
