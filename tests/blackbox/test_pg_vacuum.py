"""Part D: the events table is vacuumed by the replicas once many of its
rows are dead (docs/SCHEMA.md, "Vacuum"), on a connection of their own,
so that a busy queue does not wait for autovacuum's once-a-minute visits.

The database's statistics tell VACUUMs run by a client (vacuum_count)
from autovacuum's; the replica's /metrics counts the ones it ran."""

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


@bb.pg_only("vacuum is the PostgreSQL store's")
class VacuumTest(test_pg_replicas.ReplicaSetCase):
    WEIGHT = 2

    def table_stat(self, schema, col):
        return int(psql("SELECT %s FROM pg_stat_user_tables WHERE schemaname = '%s' AND relname = 'events'"
                        % (col, schema)))

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
        # The purge's statistics reach the shared ones within 10 s (an idle
        # backend's flush), then a check every 2 s finds them.
        deadline = time.monotonic() + 30 * SCALE
        while self.table_stat(rs.schema, "vacuum_count") == 0:
            if time.monotonic() > deadline:
                self.fail("no VACUUM of %s.events within 30 s; dead rows: %d\n%s"
                          % (rs.schema, self.table_stat(rs.schema, "n_dead_tup"), rs.logs()))
            time.sleep(0.2)
        self.assertLess(self.table_stat(rs.schema, "n_dead_tup"), 10000)
        # Whichever replica ran it counts it; the other passed or found
        # nothing left to do.
        self.assertGreaterEqual(sum(vacuums_of(c) for c in clients), 1)
        # And the queue works as before.
        ch = self.chan()
        r = clients[1].req("POST", "/%s/events" % q(ch), {"data": "after"})
        self.assertEqual(r.status, 201, r.raw)
        r = clients[0].req("POST", "/%s/acquire" % q(ch), {})
        self.assertEqual(r.status, 200, r.raw)
        self.assertNotIn("VACUUM of the events table", rs.logs())
