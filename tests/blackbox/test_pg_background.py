"""Part D, what each replica does on its background connection
(docs/SCHEMA.md, "The background connection"): it VACUUMs the events
table once many of its rows are dead, so that a busy queue does not wait
for autovacuum's once-a-minute visits (and ANALYZEs it once many
changed, so the planner knows a freshly filled table), and it reads the
shared /metrics series, which counts the events whose state changes with
time, no more often than its cost allows.

The database's statistics tell VACUUMs run by a client (vacuum_count)
from autovacuum's; the replica's /metrics counts the ones it ran.
pg_stat_activity shows which connection ran the /metrics read and when
it last started. A replica whose role may not VACUUM the table says so and
sends none. analyze_count counts the ANALYZEs clients ran."""

import re
import time

import bb
from bb import SCALE, q
import test_pg_replicas
from test_pg_replicas import psql


def vacuums_of(client):
    r = client.req("GET", "/metrics")
    m = re.search(r"^distribuerad_database_vacuums_total (\d+)$", r.raw.decode(), re.M)
    assert m, "no distribuerad_database_vacuums_total in /metrics"
    return int(m.group(1))


def one_per_read(samples):
    """The reads among (pid, query_start, ran) samples, by start. A
    statement run through the extended protocol shows two query_starts,
    its Bind (where a custom plan is made) and its Execute, a millisecond
    or so apart: such a pair of one pid is one read, from the first start
    to the later end. Reads themselves start a second or more apart."""
    reads = []
    for pid, start, ran in sorted(samples, key=lambda r: r[1]):
        if reads and reads[-1][0] == pid and start - reads[-1][1] < 0.02:
            p, s, r = reads[-1]
            reads[-1] = (p, s, max(s + r, start + ran) - s)
        else:
            reads.append((pid, start, ran))
    return reads


@bb.pg_only("the background connection is the PostgreSQL store's")
class BackgroundTest(test_pg_replicas.ReplicaSetCase):
    WEIGHT = 2

    def table_stat(self, schema, col):
        return int(psql("SELECT %s FROM pg_stat_user_tables WHERE schemaname = '%s' AND relname = 'events'"
                        % (col, schema)))

    def wait_stat(self, schema, col, ok, want, detail):
        """Waits up to 30 s until ok(n) for the column col of schema.events's
        statistics (they reach the shared ones within 10 s of a change, an
        idle backend's flush); want says what ok asks and detail() more if
        it never holds."""
        deadline = time.monotonic() + 30 * SCALE
        while not ok(self.table_stat(schema, col)):
            if time.monotonic() > deadline:
                self.fail("%s of %s.events is %d, not %s, after 30 s; %s"
                          % (col, schema, self.table_stat(schema, col), want, detail()))
            time.sleep(0.2)

    def fill_and_purge(self, c, ch, n):
        for _ in range(n // 5000):
            r = c.req("POST", "/%s/events" % q(ch), [{"data": "x"}] * 5000)
            self.assertEqual(r.status, 201, r.raw[:300])
        r = c.req("POST", "/%s/purge" % q(ch))
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(r.json["deleted"], n)

    def test_many_dead_rows_are_vacuumed(self):
        rs = self.replicas(2)
        clients = [rs.client(0), rs.client(1)]
        self.assertEqual(self.table_stat(rs.schema, "vacuum_count"), 0)
        self.fill_and_purge(clients[0], self.chan(), 15000)
        # The purge's statistics reach the shared ones, then a check every
        # 2 s finds them.
        self.wait_stat(rs.schema, "vacuum_count", lambda n: n >= 1, "at least 1",
                       lambda: "no VACUUM; dead rows: %d\n%s" % (self.table_stat(rs.schema, "n_dead_tup"), rs.logs()))
        # A transaction another test holds open on the shared cluster (a
        # row or table lock of its own) keeps a VACUUM from removing the
        # rows; the next check, 2 s on, runs it again.
        self.wait_stat(rs.schema, "n_dead_tup", lambda n: n < 10000, "below 10000",
                       lambda: "vacuums: %d\n%s" % (self.table_stat(rs.schema, "vacuum_count"), rs.logs()))
        # Whichever replica ran it counts it once its answer is in; the
        # other passed or found nothing left to do.
        deadline = time.monotonic() + 10 * SCALE
        while sum(vacuums_of(c) for c in clients) == 0:
            self.assertLess(time.monotonic(), deadline, "no replica counted the VACUUM")
            time.sleep(0.05)
        # And the queue works as before.
        ch = self.chan()
        r = clients[1].req("POST", "/%s/events" % q(ch), {"data": "after"})
        self.assertEqual(r.status, 201, r.raw)
        r = clients[0].req("POST", "/%s/acquire" % q(ch), {})
        self.assertEqual(r.status, 200, r.raw)
        self.assertNotIn("VACUUM of the events table", rs.logs())

    def test_many_changed_rows_are_analyzed(self):
        rs = self.replicas(1)
        c = rs.client(0)
        self.assertEqual(self.table_stat(rs.schema, "analyze_count"), 0)
        ch = self.chan()
        for _ in range(3):
            r = c.req("POST", "/%s/events" % q(ch), [{"data": "x"}] * 5000)
            self.assertEqual(r.status, 201, r.raw[:300])
        # The inserts reach the statistics; a check every 2 s finds 15 000
        # rows changed of 15 000.
        self.wait_stat(rs.schema, "analyze_count", lambda n: n >= 1, "at least 1",
                       lambda: "no ANALYZE; changed rows: %d\n%s"
                       % (self.table_stat(rs.schema, "n_mod_since_analyze"), rs.logs()))
        self.assertNotIn("ANALYZE of the events table", rs.logs())

    def test_metrics_reads_on_their_own_connection_and_spaced_by_their_cost(self):
        # A database of its own, so that pg_stat_activity shows this
        # replica's reads and not those of replicas other tests run.
        db = bb.fresh_schema()
        psql("CREATE DATABASE %s" % db)
        self.addCleanup(psql, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
        self.assertIn("///postgres?", bb.PG_URL)
        rs = test_pg_replicas.Replicas(bb.PG_URL.replace("///postgres?", "///%s?" % db), 1)
        self.sets.append(rs)
        c = rs.client(0, timeout=30 * SCALE)
        ch = self.chan()
        # 500 000 scheduled events, which a read counts one by one (unlike
        # ready ones, docs/SCHEMA.md "Counting"): it takes 100 ms or more,
        # also once the replica has analyzed the table.
        later = bb.fmt_ts(time.time_ns() + 3600 * bb.S)
        for _ in range(100):
            r = c.req("POST", "/%s/events" % q(ch), [{"data": "x", "publishAt": later}] * 5000)
            self.assertEqual(r.status, 201, r.raw[:300])
        self.assertEqual(c.req("GET", "/metrics").status, 200)  # scraped: reads go on for a minute
        # Each read, while it runs: its pid, when it started and how long it
        # has run (the database's clock), sampled every 50 ms.
        seen = {}
        runs = []
        deadline = time.monotonic() + 40 * SCALE
        while time.monotonic() < deadline:
            out = psql("SELECT pid, query_start, extract(epoch FROM query_start),"
                       " extract(epoch FROM clock_timestamp() - query_start) FROM pg_stat_activity"
                       " WHERE state = 'active' AND backend_type = 'client backend' AND datname = '%s'"
                       " AND query LIKE 'WITH k AS (SELECT channel, %%'" % db)
            for line in out.splitlines():
                pid, key, start, ran = line.split("|")
                old = seen.get(key, (pid, float(start), 0.0))
                seen[key] = (pid, float(start), max(old[2], float(ran)))
            runs = one_per_read(seen.values())
            if len(runs) >= 3:
                break
            time.sleep(0.05)
        self.assertGreaterEqual(len(runs), 3, runs)
        # One connection runs them all: the background one (GET /channels,
        # whose statement begins alike, is not asked here).
        self.assertEqual(len({pid for pid, _, _ in runs}), 1, (runs, rs.logs()))
        # A read starts no sooner than 20 times as long as the last took
        # after it ended (about once a second before, whatever it took).
        # (A read is seen running for less than it ran: the bound holds
        # all the more. One seen for 50 ms or more tells the rules apart.)
        for (_, start, ran), (_, nxt, _) in zip(runs, runs[1:]):
            self.assertGreaterEqual(nxt - start, 21 * ran, runs)
        self.assertTrue(any(ran >= 0.05 for _, _, ran in runs[:-1]), ("too few events to tell", runs))

    def test_a_role_that_does_not_own_the_table_leaves_vacuum_to_autovacuum(self):
        owner = self.replicas(1)  # the schema, made by the suite's role
        schema = owner.schema
        owner.stop()
        self.sets.remove(owner)
        role = "dq_" + bb.fresh_schema()
        # A replica needs CREATE on the schema (its migrations); the
        # tables stay the owner's.
        psql("CREATE ROLE %s LOGIN; GRANT USAGE, CREATE ON SCHEMA %s TO %s;"
             " GRANT ALL ON ALL TABLES IN SCHEMA %s TO %s; GRANT ALL ON ALL SEQUENCES IN SCHEMA %s TO %s"
             % (role, schema, role, schema, role, schema, role))
        self.addCleanup(psql, "DROP OWNED BY %s; DROP ROLE %s" % (role, role))
        self.assertIn("user=postgres", bb.PG_URL)
        rs = test_pg_replicas.Replicas(bb.PG_URL.replace("user=postgres", "user=" + role), 1, schema=schema)
        self.sets.append(rs)
        said = "VACUUM and ANALYZE of the events table are left to autovacuum: only its owner (postgres)"
        deadline = time.monotonic() + 10 * SCALE
        while said not in rs.servers[0].log(200):
            self.assertLess(time.monotonic(), deadline, "not said\n" + rs.logs())
            time.sleep(0.1)
        # With many dead rows it still sends no VACUUM, and the queue works.
        c = rs.client(0)
        self.fill_and_purge(c, self.chan(), 15000)
        self.wait_stat(schema, "n_dead_tup", lambda n: n >= 10000, "at least 10000",
                       lambda: "the purge's dead rows not in the statistics")
        time.sleep(2.5)  # a check of the dead rows, every 2 s
        self.assertEqual(vacuums_of(c), 0)
        self.assertEqual(self.table_stat(schema, "vacuum_count"), 0)
        self.assertEqual(self.table_stat(schema, "analyze_count"), 0)
        self.assertEqual(rs.servers[0].log(200).count(said), 1, rs.logs())
