"""Connections at their edges: clients that reset or half-close while an
acquire is parked, clients that never read their answers, conflicting
message framing, and h2o's own errors (API.md Part B "Limits"; general
rules: every error answer is JSON).
"""

import json
import os
import select
import socket
import struct
import time
import unittest

import bb
from bb import SCALE, q


def parked_acquire(host, port, ch, wait="10s"):
    """A raw connection with an acquire parked on ch (it has no events)."""
    s = socket.create_connection((host, port), timeout=10 * SCALE)
    body = json.dumps({"wait": wait, "ttl": "1m"}).encode()
    s.sendall(bb.http_request_bytes("POST", "/%s/acquire" % q(ch), body,
                                    {"Content-Type": "application/json"}))
    time.sleep(0.3)  # parked by now
    return s


def read_answer(s):
    raw = bb.RawConn.__new__(bb.RawConn)
    raw.sock, raw.buf = s, b""
    return raw.read_response()


def read_final_answer(s):
    """The answer after any interim (1xx) ones, as an HTTP/1.1 client
    reads it."""
    raw = bb.RawConn.__new__(bb.RawConn)
    raw.sock, raw.buf = s, b""
    r = raw.read_response()
    while 100 <= r.status < 200:
        r = raw.read_response()
    return r


class ParkedClientTest(bb.ServerTestCase):

    def test_reset_while_parked_does_not_swallow_an_event(self):
        ch = self.chan()
        s = parked_acquire(self.host, self.port, ch)
        # SO_LINGER 0: close() sends a reset, not a FIN
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        time.sleep(0.2)
        ev = self.publish(ch, {"data": "for a live client"})
        r = self.req("POST", "/%s/acquire" % q(ch), {"wait": "2s"})
        self.assertStatus(r, 200)
        self.assertEqual(r.json["count"], 1,
                         "the event went to the acquire whose client had reset: %r" % r.json)
        self.assertEqual(r.json["events"][0]["eventID"], ev["eventID"])

    def test_half_closed_client_gets_its_answer(self):
        """A client done sending (shutdown SHUT_WR) still reads: the server
        tells it from a closed one by a 100 Continue, then answers it."""
        ch = self.chan()
        s = parked_acquire(self.host, self.port, ch)
        self._extra.append(s)
        s.shutdown(socket.SHUT_WR)  # done sending, still reading
        time.sleep(0.2)
        ev = self.publish(ch, {"data": "for the half-closed client"})
        r = read_final_answer(s)
        self.assertStatus(r, 200)
        self.assertEqual(r.json["count"], 1, "the half-closed client got no event: %r" % r.json)
        self.assertEqual(r.json["events"][0]["eventID"], ev["eventID"])

    def test_half_closed_client_keeps_its_place(self):
        """Passed over while the server finds out whether it still reads,
        then served in its arrival order, ahead of a client that parked
        after it, and not asked again."""
        ch = self.chan()
        half = parked_acquire(self.host, self.port, ch)
        self._extra.append(half)
        first = parked_acquire(self.host, self.port, ch)
        self._extra.append(first)
        second = parked_acquire(self.host, self.port, ch)
        self._extra.append(second)
        half.shutdown(socket.SHUT_WR)
        time.sleep(0.2)
        e1 = self.publish(ch, {"data": "while the half-closed client is asked"})
        r1 = read_final_answer(first)
        self.assertEqual([e["eventID"] for e in r1.json["events"]], [e1["eventID"]])
        time.sleep(0.3)  # the half-closed client has acknowledged the 100 by now
        e2 = self.publish(ch, {"data": "for the half-closed client, first in line"})
        rh = read_final_answer(half)
        self.assertStatus(rh, 200)
        self.assertEqual([e["eventID"] for e in rh.json["events"]], [e2["eventID"]])
        e3 = self.publish(ch, {"data": "for the last one"})
        r2 = read_final_answer(second)
        self.assertEqual([e["eventID"] for e in r2.json["events"]], [e3["eventID"]])

    def test_closed_client_is_not_taken_for_half_closed(self):
        """A client that closed (a FIN, as a half-close sends) answers the
        server's 100 Continue with a reset: it gets no event, even once
        the server has had time to find out."""
        ch = self.chan()
        s = parked_acquire(self.host, self.port, ch)
        s.close()
        time.sleep(0.2)
        ev = self.publish(ch, {"data": "for a live client"})
        time.sleep(0.5)
        r = self.req("POST", "/%s/acquire" % q(ch), {"max": 10})
        self.assertStatus(r, 200)
        self.assertEqual([e["eventID"] for e in r.json["events"]], [ev["eventID"]],
                         "the event went to the acquire whose client had closed: %r" % r.json)


class FramingTest(bb.ServerTestCase):
    """RFC 9112 section 6.3: a message framed two ways is refused with a
    JSON 400 and its connection closed, so nothing hidden in its body is
    read as a request."""

    def smuggle(self, head_lines, body):
        ch = self.chan()
        inner = bb.http_request_bytes("POST", "/%s/events" % q(ch), b'{"data":"smuggled"}')
        body = body.replace(b"INNER", inner)
        head = "POST /%s/events HTTP/1.1\r\nHost: x\r\n" % q(self.chan())
        for line in head_lines:
            head += line.replace("LEN", str(len(body))) + "\r\n"
        s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)
        self._extra.append(s)
        s.sendall(head.encode() + b"\r\n" + body)
        raw = bb.RawConn.__new__(bb.RawConn)
        raw.sock, raw.buf = s, b""
        r = raw.read_response()
        self.assertError(r, 400, None, "framing %r" % head_lines)
        self.assertEqual((r.headers.get("Connection") or "").lower(), "close")
        # the connection ends: nothing more is answered on it
        rest = raw.buf
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                rest += d
        except (ConnectionResetError, socket.timeout):
            pass
        self.assertNotIn(b"HTTP/1.1", rest, "a second answer on a refused connection: %r" % rest[:200])
        self.assertEqual(self.req("GET", "/%s/events" % q(ch)).json["count"], 0, "the smuggled request was published")
        return r

    def test_two_different_content_lengths(self):
        r = self.smuggle(["Content-Length: 0", "Content-Length: LEN"], b"INNER")
        self.assertIn("content-length", r.json["error"].lower())

    def test_content_length_and_transfer_encoding(self):
        chunked = b"%x\r\nINNER\r\n0\r\n\r\n"
        self.smuggle(["Content-Length: 4", "Transfer-Encoding: chunked"], chunked.replace(b"%x", b"%x" % 0))

    def test_transfer_encoding_then_content_length(self):
        self.smuggle(["Transfer-Encoding: chunked", "Content-Length: 0"], b"0\r\n\r\nINNER")

    def test_equal_duplicate_lengths_accepted(self):
        body = b'{"data":"x"}'
        req = ("POST /%s/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n"
               % (q(self.chan()), len(body), len(body))).encode() + body
        r = self.raw()
        r.send(req)
        self.assertStatus(r.read_response(), 201)


# What h2o itself refuses before any handler runs: each case is sent as the
# first request of a connection and as a keep-alive request after a good one.
MALFORMED = [
    ("a bad request line", b"GET /healthz HTTQ/1.1\r\nHost: x\r\n\r\n", "malformed"),
    ("garbage", b"\x00\x01\x02garbage\r\n\r\n", "malformed"),
    ("a header line without a colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", "malformed"),
    ("101 header fields", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-F: y\r\n" * 100 + b"\r\n", "header fields"),
    ("an HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2"),
    # h2o's limit on a request head is 8 KiB + 100 * 4 KiB = 408 KiB
    ("a 500 KB header line", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 500000 + b"\r\n\r\n",
     "longer than"),
]


class MalformedRequestTest(bb.ServerTestCase):
    """Requests h2o refuses itself (API.md: every error answer is JSON)
    answer a JSON 400 and close the connection."""

    def refused(self, raw, data, mention, what):
        raw.send(data, tolerant=True)
        r = raw.read_response()
        self.assertError(r, 400, mention, what)
        self.assertEqual((r.headers.get("Connection") or "").lower(), "close", what)
        self.assertEqual(r.headers.get("Server"), "distribuerad", what)
        self.assertIsNotNone(r.headers.get("Date"), what)
        self.assertEqual(int(r.headers["Content-Length"]), len(r.raw), what)
        raw.sock.settimeout(5 * SCALE)
        try:
            rest = raw.buf + raw.sock.recv(65536)
        except ConnectionResetError:
            rest = b""
        self.assertEqual(rest, b"", "%s: more after the 400: %r" % (what, rest[:200]))
        raw.close()

    def test_first_request(self):
        if not bb.URL:
            # the start-up self-check found the replacement in place
            self.assertNotIn("plain-text 400", type(self).server.log(200))
        for what, data, mention in MALFORMED:
            self.refused(self.raw(), data, mention, what)
        self.assertStatus(self.req("GET", "/healthz"), 200)

    def test_keep_alive_request(self):
        for what, data, mention in MALFORMED:
            raw = self.raw()
            raw.send(bb.http_request_bytes("GET", "/healthz"))
            self.assertStatus(raw.read_response(), 200)
            self.refused(raw, data, mention, what + " after a good request")

    def test_pipelined_after_a_good_request(self):
        for what, data, mention in MALFORMED[:5]:
            raw = self.raw()
            raw.send(bb.http_request_bytes("GET", "/healthz") + data)
            self.assertStatus(raw.read_response(), 200)
            self.refused(raw, b"", mention, what + " pipelined")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def hung_up(s):
    """Did the server reset s (a client that never read: only a reset can
    reach it past the unread data)? Looks without reading."""
    p = select.poll()
    p.register(s, select.POLLERR | select.POLLHUP)
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))


class SlowReaderTest(bb.ServerTestCase):
    """Clients that ask for a big listing and never read it: after
    -request-timeout without reading they are disconnected and what was
    buffered for them is freed."""

    OWN_SERVER = True
    # On PostgreSQL the 20 listings of 100 000 events queue on the
    # replica's connections, each answer read after the one before it: on
    # a busy machine the last wait longer than the default 5 s
    # -database-timeout, and a reader answered 503 (a short answer, never
    # stuck) would never be cut off. This test is about slow readers, not
    # a slow database.
    SERVER_ARGS = ["-in-memory", "-request-timeout", "1s", "-max-batch", "100000",
                   "-max-body-size", "20000000", "-database-timeout", "60s"]

    def pinned(self, base):
        """The memory the 20 answers pin, half a second after they were
        asked. On PostgreSQL each listing comes from the database, one
        after another: the most pinned within a few seconds."""
        if not bb.PG:
            time.sleep(0.5 * SCALE)
            return rss_kb(self.server.proc.pid) - base
        most, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < 6 * SCALE:
            time.sleep(0.1)
            held = rss_kb(self.server.proc.pid) - base
            if most > 50 * 1024 and held < most * 0.8:
                break  # past the peak: the first cut-offs
            most = max(most, held)
        return most

    def test_readers_that_never_read_are_cut_off(self):
        if bb.VALGRIND or bb.SANITIZED:
            self.skipTest("RSS says nothing under valgrind or ASan")
        ch = self.chan()
        batch = [{"data": "d" * 100} for _ in range(20000)]
        for _ in range(5):
            self.assertStatus(self.req("POST", self.ev_path(ch), batch), 201)
        base = rss_kb(self.server.proc.pid)
        readers = []
        for _ in range(20):
            s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(bb.http_request_bytes("GET", self.ev_path(ch)))
            readers.append(s)
            self._extra.append(s)
        held = self.pinned(base)
        self.assertGreater(held, 50 * 1024, "the test does not pin memory (%d kB): it shows nothing" % held)
        # -request-timeout is 1s after each answer was ready; on PostgreSQL
        # the answers are made one after another, later on a busy machine:
        # wait until every reader was cut off (a server that never cuts
        # them off still fails here), then what was buffered for them must
        # be freed promptly
        self.wait_until(lambda: all(hung_up(s) for s in readers), 60, interval=0.2,
                        msg="the server to cut off 20 clients that never read")
        deadline = time.monotonic() + 5 * SCALE
        while True:
            now_held = rss_kb(self.server.proc.pid) - base
            if now_held < held / 4 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertLess(now_held, held / 4, "20 clients cut off, yet their answers still pin %d kB (at first %d kB)"
                        % (now_held, held))
        # and they were disconnected: reading now ends before a whole answer
        s = readers[0]
        s.settimeout(2 * SCALE)
        got = 0
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                got += len(d)
        except (ConnectionResetError, socket.timeout):
            pass
        self.assertLess(got, 20 * 1024 * 1024, "the whole listing still arrived")
        self.assertStatus(self.req("GET", "/healthz"), 200)

    def test_a_slow_but_steady_reader_gets_everything(self):
        ch = self.chan()
        batch = [{"data": "d" * 100} for _ in range(20000)]
        for _ in range(3):
            self.assertStatus(self.req("POST", self.ev_path(ch), batch), 201)
        s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)
        self._extra.append(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(bb.http_request_bytes("GET", self.ev_path(ch)))
        # about 10 MB, more than the kernel's buffers hold, read 16 kB each
        # 5 ms: takes longer than -request-timeout
        data = bytearray()
        t0 = time.monotonic()
        want = None
        while want is None or len(data) < want:
            d = s.recv(16384)
            if not d:
                break
            data += d
            if want is None and b"\r\n\r\n" in data:
                head = bytes(data).split(b"\r\n\r\n", 1)[0]
                n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
                want = len(head) + 4 + n
            time.sleep(0.005)
        body = bytes(data[len(head) + 4:])
        took = time.monotonic() - t0
        self.assertGreater(took, 1.2, "the reader was not slow (%.1f s): the test shows nothing" % took)
        self.assertEqual(json.loads(body)["count"], 60000)


if __name__ == "__main__":
    unittest.main()
