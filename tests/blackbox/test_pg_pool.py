"""Part D: how a replica spreads its requests over its connections
(src/store/pgconn.h). Short statements of the hot paths are pipelined two
to a connection, so one backend runs them back to back; but a statement
that waits in the database (for a row another transaction holds) keeps
no later request waiting behind it: those go to another connection.
"""

import threading
import time

import bb
from bb import SCALE, q
import test_pg_replicas
from test_pg_replicas import PsqlSession, psql


class RowLock(PsqlSession):
    """The rows of one channel locked FOR UPDATE by a psql session of its
    own, from the constructor until release()."""

    def __init__(self, schema, ch):
        super().__init__()
        self.send("BEGIN")
        n = self.ask("SELECT count(*) FROM (SELECT 1 FROM \"%s\".events WHERE channel = '%s' FOR UPDATE) l"
                     % (schema, ch.replace("'", "''")))
        assert n == "1", "expected one row locked, got %r" % n

    def release(self):
        if self.proc.poll() is None:
            self.send("COMMIT")
            self.close()


@bb.pg_only("the PostgreSQL store's connection pool")
class PoolTest(test_pg_replicas.ReplicaSetCase):

    def test_a_waiting_statement_holds_up_no_later_request(self):
        rs = self.replicas(1)
        c = rs.client(0)
        held, free = self.chan(), self.chan()
        r = c.req("POST", "/%s/events" % q(held), {"data": "held"})
        self.assertEqual(r.status, 201, r.raw)
        eid = r.json["eventID"]
        lock = RowLock(rs.schema, held)
        out = {}

        def delete():
            d = rs.client(0, timeout=30 * SCALE)
            out["r"] = d.req("DELETE", "/%s/events/%s" % (q(held), eid))
            d.close()

        th = threading.Thread(target=delete)
        try:
            th.start()
            deadline = time.monotonic() + 10 * SCALE
            while psql("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'") == "0":
                self.assertLess(time.monotonic(), deadline, "the delete did not come to wait for the row")
                time.sleep(0.01)
            # one at a time, then many at once: while the delete waits,
            # every one of them is answered (a request queued behind it
            # would wait for as long as the row is held)
            quick = rs.client(0, timeout=3 * SCALE)
            for i in range(10):
                r = quick.req("POST", "/%s/events" % q(free), {"data": "one %d" % i})
                self.assertEqual(r.status, 201, r.raw)
            quick.close()
            answers = []

            def publish(k):
                p = rs.client(0, timeout=3 * SCALE)
                for i in range(5):
                    try:
                        answers.append(p.req("POST", "/%s/events" % q(free), {"data": "many %d %d" % (k, i)}).status)
                    except AssertionError as e:  # no answer in time
                        answers.append(str(e))
                p.close()

            ths = [threading.Thread(target=publish, args=(k,)) for k in range(8)]
            for t in ths:
                t.start()
            for t in ths:
                t.join(30 * SCALE)
            self.assertEqual(answers, [201] * 40)
            self.assertTrue(th.is_alive(), "the delete ended while the row was held")
        finally:
            lock.release()
            th.join(30 * SCALE)
        self.assertEqual(out["r"].status, 202, out["r"].raw)
        self.assertEqual(c.req("GET", "/%s" % q(free)).json["ready"], 50)
        c.close()
