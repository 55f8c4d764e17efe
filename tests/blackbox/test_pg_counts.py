"""Part D, what the PostgreSQL store reads for requests that look at a
channel: the counts of GET /channels and GET /{channel} (docs/SCHEMA.md,
"Counting") read the rows whose state changes with time (leases,
scheduled, expired) and the live totals, never every ready event; a page
of GET /{channel}/events reads about its rows ("Listing"); the poll for
parked acquires reads the first row of a few index ranges ("Waking parked
acquires"); a dead-letter move under the channel limit asks the target's
counters, not its events, for room (migration 6). So a dashboard or a
long-poll costs the same with a million events waiting as with ten.

The database's statistics count the events rows each scan read
(seq_tup_read, idx_tup_fetch of pg_stat_user_tables). A backend reports
them at the end of a transaction at most once a second, so the replica
runs with one request connection and a cheap request after a pause makes
it report (its background connection reports after its next round, once
a second). The statistics the planner uses are gathered first, as
autovacuum would within a minute."""

import time

import bb
from bb import SCALE, q
import test_pg_replicas
from test_pg_replicas import psql

READY = 40000  # in two channels
BOUND = 2000  # rows a test's few requests may read; reading every event is 20 000 and more


@bb.pg_only("the PostgreSQL store's counting statements")
class CountingTest(test_pg_replicas.ReplicaSetCase):
    WEIGHT = 2

    def events_stat(self, schema, expr):
        """expr over the columns of schema.events's pg_stat_user_tables row."""
        return int(psql("SELECT %s FROM pg_stat_user_tables WHERE schemaname = '%s' AND relname = 'events'"
                        % (expr, schema)))

    def rows_read(self, schema):
        return self.events_stat(schema, "seq_tup_read + coalesce(idx_tup_fetch, 0)")

    def reported(self, c, ch, schema):
        """The rows read so far, once the request connection reported."""
        time.sleep(1.2)
        self.assertEqual(c.req("GET", "/%s/settings" % q(ch)).status, 200)  # reads channels only
        time.sleep(1.3)
        return self.rows_read(schema)

    def fill(self, c, ch, n, body=None):
        for _ in range(n // 5000):
            r = c.req("POST", "/%s/events" % q(ch), [body or {"data": "x"}] * 5000)
            self.assertEqual(r.status, 201, r.raw[:300])

    def test_counts_read_only_rows_that_change_with_time(self):
        rs = self.replicas(1, ["-database-pool", "1"])
        c = rs.client(0, timeout=30 * SCALE)
        big, small = self.chan(), self.chan()
        self.fill(c, big, READY * 3 // 4)
        self.fill(c, small, READY // 4)
        r = c.req("POST", "/%s/acquire" % q(big), {"max": 2})
        self.assertEqual(r.status, 200, r.raw)
        later = bb.fmt_ts(time.time_ns() + 3600 * bb.S)
        r = c.req("POST", "/%s/events" % q(big), {"data": "later", "publishAt": later})
        self.assertEqual(r.status, 201, r.raw)

        # The plans read few rows once the database has statistics of the
        # table, which the replicas gather within seconds of a change of a
        # tenth of its rows (autovacuum within a minute); gathered here so
        # that the measure does not race them (docs/SCHEMA.md).
        psql("ANALYZE %s.events" % rs.schema)
        before = self.reported(c, big, rs.schema)
        for _ in range(3):
            r = c.req("GET", "/channels")
            self.assertEqual(r.status, 200, r.raw)
            r = c.req("GET", "/%s" % q(big))
            self.assertEqual(r.status, 200, r.raw)
        after = self.reported(c, big, rs.schema)

        # The answers are right, and reading them read few rows.
        self.assertEqual((r.json["ready"], r.json["locked"], r.json["scheduled"]),
                         (READY * 3 // 4 - 2, 2, 1), r.json)
        chans = {x["channelName"]: x for x in c.req("GET", "/channels").json["channels"]}
        self.assertEqual(chans[small]["ready"], READY // 4, chans[small])
        self.assertLess(after - before, BOUND, "six counting requests read %d rows of %d events"
                        % (after - before, READY + 1))

    def test_dead_letter_move_reads_the_targets_counters(self):
        rs = self.replicas(1, ["-database-pool", "1"])
        c = rs.client(0, timeout=30 * SCALE)
        src, dlc = self.chan(), self.chan()
        self.fill(c, dlc, 20000)
        r = c.req("PUT", "/%s/settings" % q(src), {"maxDeliveries": 1, "deadLetterChannel": dlc})
        self.assertEqual(r.status, 200, r.raw)
        r = c.req("POST", "/%s/events" % q(src), {"data": "poison"})
        self.assertEqual(r.status, 201, r.raw)
        psql("ANALYZE %s.events" % rs.schema)
        before = self.reported(c, src, rs.schema)
        r = c.req("POST", "/%s/acquire" % q(src), {"ttl": "100ms"})
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(len(r.json["events"]), 1, r.json)
        # The lease lapses at its last delivery: the sweep moves the event.
        deadline = time.monotonic() + 10 * SCALE
        while c.req("GET", "/%s" % q(dlc)).json["ready"] != 20001:
            self.assertLess(time.monotonic(), deadline, "not moved\n" + rs.logs())
            time.sleep(0.1)
        after = self.reported(c, src, rs.schema)
        self.assertLess(after - before, BOUND, "a move into a channel of 20 000 events read %d rows"
                        % (after - before))

    def test_waiters_poll_reads_only_the_waited_channels_index_ranges(self):
        # An acquire parked on an empty channel: the replica polls the
        # channels with waiters (once a second, and when it learns of a
        # new one) for a ready event and the next due time. Nothing of the
        # other channel's events is read for it.
        rs = self.replicas(1, ["-database-pool", "1"])
        c = rs.client(0, timeout=30 * SCALE)
        big, waited = self.chan(), self.chan()
        self.fill(c, big, READY)
        r = c.req("POST", "/%s/events" % q(waited), {"data": "later", "publishAt": bb.fmt_ts(time.time_ns() + 3600 * bb.S)})
        self.assertEqual(r.status, 201, r.raw)
        psql("ANALYZE %s.events" % rs.schema)
        before = self.reported(c, big, rs.schema)
        r = c.req("POST", "/%s/acquire" % q(waited), {"wait": "3s"})
        self.assertEqual((r.status, r.json["count"]), (200, 0), r.raw)
        after = self.reported(c, big, rs.schema)
        self.assertLess(after - before, BOUND, "3 s parked on an empty channel read %d rows" % (after - before))

    def test_sweep_probes_only_the_channels_with_a_lease(self):
        # The sweep (once a second, on one replica) reads lapsed leases
        # channel by channel. With many channels and few leases it finds
        # the channels that hold one in events_leases itself (migration 8)
        # instead of scanning events once for every channel.
        rs = self.replicas(1, ["-database-pool", "1"])
        c = rs.client(0, timeout=30 * SCALE)
        ch = self.chan()
        r = c.req("POST", "/%s/events" % q(ch), {"data": "held"})
        self.assertEqual(r.status, 201, r.raw)
        r = c.req("POST", "/%s/acquire" % q(ch), {"ttl": "1h"})
        self.assertEqual((r.status, r.json["count"]), (200, 1), r.raw)
        psql("INSERT INTO %s.channels (name, created_at) SELECT 'idle-' || g, 0 FROM generate_series(1, 20000) g"
             % rs.schema)
        psql("ANALYZE %s.channels" % rs.schema)
        psql("ANALYZE %s.events" % rs.schema)

        scans = "seq_scan + coalesce(idx_scan, 0)"  # scans begun (a nested loop's rescans count)
        time.sleep(1.5)  # a sweep before the statistics were gathered is reported
        before = self.events_stat(rs.schema, scans)
        time.sleep(3.5 * SCALE)  # about three sweeps, reported
        after = self.events_stat(rs.schema, scans)
        self.assertLess(after - before, 2000, "three sweeps scanned events %d times with 20 001 channels"
                        " and one lease" % (after - before))
        r = c.req("GET", "/%s" % q(ch))
        self.assertEqual((r.status, r.json["locked"]), (200, 1), r.raw)

    def test_a_page_reads_its_rows(self):
        # GET /{channel}/events?limit=N (the dashboard's channel page, every
        # 2 s) in each state, and the next page: each reads about its rows.
        rs = self.replicas(1, ["-database-pool", "1"])
        c = rs.client(0, timeout=30 * SCALE)
        ch = self.chan()
        self.fill(c, ch, READY)
        r = c.req("POST", "/%s/acquire" % q(ch), {"max": 3})
        self.assertEqual(r.status, 200, r.raw)
        later = bb.fmt_ts(time.time_ns() + 3600 * bb.S)
        self.fill(c, ch, 5000, {"data": "later", "publishAt": later})
        psql("ANALYZE %s.events" % rs.schema)
        before = self.reported(c, ch, rs.schema)
        sizes = {}
        for state in ("visible", "ready", "locked", "scheduled"):
            r = c.req("GET", "/%s/events?limit=50&state=%s" % (q(ch), state))
            self.assertEqual(r.status, 200, r.raw[:300])
            sizes[state] = r.json["count"]
            if "next" in r.json:
                r = c.req("GET", "/%s/events?limit=50&state=%s&after=%s" % (q(ch), state, r.json["next"]))
                self.assertEqual(r.status, 200, r.raw[:300])
                sizes[state] += r.json["count"]
        after = self.reported(c, ch, rs.schema)
        self.assertEqual(sizes, {"visible": 100, "ready": 100, "locked": 3, "scheduled": 100})
        self.assertLess(after - before, BOUND, "seven pages of 50 read %d rows of %d events"
                        % (after - before, READY + 5000))
