"""HTTP/1.1 behaviour: keep-alive, pipelining, chunked bodies, oversized and
malformed requests, many connections, and a clean stop on SIGTERM/SIGINT."""

import os
import signal
import socket
import threading
import time
import unittest

import bb
from bb import SCALE, q


class HttpTest(bb.ServerTestCase):

    def test_keep_alive_many_requests(self):
        ch = self.chan()
        self.pin_client()
        self.assertStatus(self.req("GET", "/healthz"), 200)
        sock = self.c.conn.sock
        self.assertIsNotNone(sock)
        for i in range(150):
            r = self.req("POST", self.ev_path(ch), {"data": str(i)}) if i % 3 else self.req("GET", self.ev_path(ch))
            self.assertIn(r.status, (200, 201))
            self.assertNotEqual((r.headers.get("Connection") or "").lower(), "close")
            self.assertIs(self.c.conn.sock, sock, "the server closed a keep-alive connection after %d requests" % i)
        self.assertEqual(self.listing(ch)["count"], 100)

    def test_pipelining(self):
        ch = self.chan()
        p = self.ev_path(ch)
        reqs = (bb.http_request_bytes("POST", p, b'{"data":"p1"}', {"Content-Type": "application/json"})
                + bb.http_request_bytes("POST", p, b'{"data":"p2"}', {"Content-Type": "application/json"})
                + bb.http_request_bytes("GET", p))
        c = self.raw()
        c.send(reqs)
        r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        self.assertStatus(r1, 201)
        self.assertStatus(r2, 201)
        self.assertStatus(r3, 200)
        self.assertEqual(r1.json["data"], "p1")
        self.assertEqual(r2.json["data"], "p2")
        self.assertEqual([e["eventID"] for e in r3.json["events"]], [r1.json["eventID"], r2.json["eventID"]])
        # many small ones, all in one write
        c.send(b"".join(bb.http_request_bytes("GET", "/healthz") for _ in range(30)))
        for _ in range(30):
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.json, {"status": "ok"})

    def test_long_pipeline(self):
        ch = self.chan()
        n = 300
        p = self.ev_path(ch)
        c = self.raw()
        c.send(b"".join(bb.http_request_bytes("POST", p, b'{"data":"%d"}' % i, {"Content-Type": "application/json"})
                        for i in range(n)) + bb.http_request_bytes("GET", p))
        ids = []
        for i in range(n):
            r = c.read_response()
            self.assertStatus(r, 201, "pipelined request %d" % i)
            self.assertEqual(r.json["data"], str(i), "pipelined answers out of order")
            ids.append(r.json["eventID"])
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual([e["eventID"] for e in r.json["events"]], ids)

    def test_expect_100_continue(self):
        """curl sends "Expect: 100-continue" for bodies over 1 KiB."""
        ch = self.chan()
        body = b'{"data":"' + b"e" * 4000 + b'"}'
        c = self.raw()
        c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % (self.ev_path(ch).encode(), len(body)))
        ready, _, _ = bb.select.select([c.sock], [], [], 1.0 * SCALE)  # curl waits 1 s for the 100
        if ready:
            r = c.read_response()
            self.assertEqual(r.status, 100, "answered before the body was sent: %r" % (r.raw[:200],))
        c.send(body)
        r = c.read_response()
        while r.status == 100:
            r = c.read_response()
        self.assertStatus(r, 201)
        self.assertEqual(len(r.json["data"]), 4000)

    def test_huge_header_refused_and_server_lives(self):
        c = self.raw()
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n", tolerant=True)
        r = c.closed_or_response()
        if r is not None:
            self.assertTrue(400 <= r.status < 500 or r.status == 200, "a 200 KB header answered %d" % r.status)
        other = self.client()
        self.assertStatus(other.req("GET", "/healthz"), 200)

    def test_pipelined_request_split_across_writes(self):
        ch = self.chan()
        data = bb.http_request_bytes("POST", self.ev_path(ch), b'{"data":"split"}',
                                     {"Content-Type": "application/json"})
        c = self.raw()
        for i in range(0, len(data), 7):
            c.send(data[i:i + 7])
            time.sleep(0.002)
        r = c.read_response()
        self.assertStatus(r, 201)
        self.assertEqual(r.json["data"], "split")

    def test_chunked_request_body(self):
        ch = self.chan()
        status, body = self.post_chunked(self.ev_path(ch), [b'{"data":', b'"chun', b'ked"}'])
        self.assertEqual(status, 201, body)
        self.assertEqual(body["data"], "chunked")

    def test_huge_content_length_413(self):
        ch = self.chan()
        self.publish(ch, {"data": "before"})
        c = self.raw()
        c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 10000000000\r\n\r\n{\"data\":\"" % self.ev_path(ch).encode())
        r = c.read_response()
        self.assertError(r, 413, what="Content-Length 10 GB")
        # the server keeps serving others
        other = self.client()
        self.assertStatus(other.req("GET", "/healthz"), 200)
        self.assertEqual(self.listing(ch)["count"], 1)
        self.publish(ch, {"data": "after"})

    def test_garbage_closes_or_400(self):
        garbage = [b"\x00\x01\x02\x03garbage\r\n\r\n", b"HELLO WORLD\r\n\r\n", b"GET\r\n\r\n",
                   b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", os.urandom(2048) + b"\r\n\r\n",
                   b"POST /c/events HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                   b"POST /c/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"]
        for g in garbage:
            c = self.raw()
            c.send(g, tolerant=True)
            r = c.closed_or_response()
            if r is not None:
                self.assertEqual(r.status, 400, "garbage %r answered %d" % (g[:40], r.status))
            c.close()
            other = self.client()
            self.assertStatus(other.req("GET", "/healthz"), 200, "after garbage %r" % g[:40])

    def test_client_gone_mid_body(self):
        ch = self.chan()
        c = self.raw()
        c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"data\":" % self.ev_path(ch).encode())
        time.sleep(0.05)
        c.close()
        c2 = self.raw()
        c2.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # half a request left behind, then gone
        c2.close()
        time.sleep(0.05)
        self.assertEqual(self.listing(ch)["count"], 0)
        self.publish(ch)

    def test_http10(self):
        c = self.raw()
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"status": "ok"})

    def test_many_connections_at_once(self):
        ch = self.chan()
        n_conn, per = 32, 20
        ids = [[] for _ in range(n_conn)]
        errors = []
        barrier = threading.Barrier(n_conn)

        def work(i):
            try:
                cl = bb.Client(self.host, self.port)
                cl._connect()
                barrier.wait(10)
                for j in range(per):
                    r = cl.req("POST", self.ev_path(ch), {"data": "%d-%d" % (i, j)})
                    if r.status != 201:
                        errors.append((r.status, r.raw[:200]))
                        return
                    ids[i].append(r.json["eventID"])
                cl.close()
            except Exception as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(n_conn)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * SCALE)
        self.assertEqual(errors, [])
        all_ids = [x for l in ids for x in l]
        self.assertEqual(len(set(all_ids)), n_conn * per)
        listed = self.ids(ch)
        self.assertEqual(sorted(listed), sorted(all_ids))
        # per connection, FIFO order holds
        pos = {eid: k for k, eid in enumerate(listed)}
        for l in ids:
            self.assertEqual([pos[x] for x in l], sorted(pos[x] for x in l))

    def test_large_response(self):
        ch = self.chan()
        data = "x" * 2048
        for _ in range(400):
            self.publish(ch, {"data": data})
        body = self.listing(ch)
        self.assertEqual(body["count"], 400)
        self.assertTrue(all(e["data"] == data for e in body["events"]))
        self.assertStatus(self.req("GET", "/healthz"), 200)


class SignalTest(bb.ServerTestCase):
    """Each test starts its own server and stops it with a signal."""

    OWN_SERVER = True
    CLASS_SERVER = False

    def start(self):
        srv = bb.Server()
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv

    def check_stop(self, srv, sig):
        t0 = time.monotonic()
        rc = srv.stop(sig, timeout=5.0)
        took = time.monotonic() - t0
        self.assertIsNotNone(rc, "server did not exit within 5 s of %s\n%s" % (sig.name, srv.log()))
        if bb.VALGRIND and rc == 99:
            self.fail("valgrind found errors\n%s" % srv.log())
        self.assertEqual(rc, 0, "exit status after %s\n%s" % (sig.name, srv.log()))
        return took

    def test_sigterm_with_idle_keepalive_connection(self):
        srv = self.start()
        cl = bb.Client(srv.host, srv.port)
        ch = self.chan()
        self.assertStatus(cl.req("POST", "/%s/events" % ch, {"data": "x"}), 201)
        self.assertStatus(cl.req("GET", "/%s/events" % ch), 200)
        idle = socket.create_connection((srv.host, srv.port))  # connected, never sends
        half = socket.create_connection((srv.host, srv.port))
        half.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # a request head never finished
        try:
            self.check_stop(srv, signal.SIGTERM)
        finally:
            cl.close()
            idle.close()
            half.close()

    def test_sigint(self):
        srv = self.start()
        cl = bb.Client(srv.host, srv.port)
        self.assertStatus(cl.req("GET", "/healthz"), 200)
        try:
            self.check_stop(srv, signal.SIGINT)
        finally:
            cl.close()

    def test_sigterm_stops_listening(self):
        srv = self.start()
        self.check_stop(srv, signal.SIGTERM)
        with self.assertRaises(OSError):
            socket.create_connection((srv.host, srv.port), timeout=2).close()


if __name__ == "__main__":
    unittest.main()
