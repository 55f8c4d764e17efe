"""Part D: a client that leaves while its request waits in the database.
The answer of a store that answers later is rendered only for a client
still there (src/http/request.c, http_then): a listing can be megabytes.
While the request waits its connection stays polled (respond.h,
http_hold), so a reset is seen then, not looked for at every answer.
"""

import socket
import struct
import time

import bb
from bb import SCALE, q
import test_pg_replicas
from test_pg_replicas import TableLock, psql


def waiting_for(schema):
    """Does a statement wait for the lock on schema's events table?"""
    return psql("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'relation'"
                " AND relation = '\"%s\".events'::regclass" % schema) != "0"


@bb.pg_only("a request that waits in the PostgreSQL store")
class LeftWhileWaitingTest(test_pg_replicas.ReplicaSetCase):

    def listing_lines(self, srv, ch):
        with open(srv.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        return [l for l in text.splitlines() if '"GET /%s/events"' % q(ch) in l]

    def test_reset_while_waiting_renders_nothing(self):
        rs = self.replicas(1, ["-access-log"])
        srv = rs.servers[0]
        c = rs.client(0, timeout=10 * SCALE)
        ch = self.chan()
        for i in range(3):
            self.assertEqual(c.req("POST", "/%s/events" % q(ch), {"data": "e%d" % i}).status, 201)
        lock = TableLock(rs.schema, "events", 2.0 * SCALE).start()
        s = socket.create_connection((srv.host, srv.port), timeout=10 * SCALE)
        s.sendall(bb.http_request_bytes("GET", "/%s/events" % q(ch), b"", {}))
        deadline = time.monotonic() + 10 * SCALE
        while not waiting_for(rs.schema):
            self.assertLess(time.monotonic(), deadline, "the listing did not come to wait for the table")
            time.sleep(0.01)
        time.sleep(0.1)
        # SO_LINGER 0: close() sends a reset, not a FIN
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        time.sleep(0.2)
        self.assertTrue(waiting_for(rs.schema), "the lock ended before the client reset")
        lock.wait()
        # the same listing by a client still there is answered and logged
        r = c.req("GET", "/%s/events" % q(ch))
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual([e["data"] for e in r.json["events"]], ["e0", "e1", "e2"], r.json)
        deadline = time.monotonic() + 5 * SCALE
        while not self.listing_lines(srv, ch):
            self.assertLess(time.monotonic(), deadline, "no access line for the listing:\n" + srv.log(20))
            time.sleep(0.05)
        lines = self.listing_lines(srv, ch)
        self.assertEqual(len(lines), 1, "the reset client's listing was rendered too:\n" + "\n".join(lines))
        c.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
