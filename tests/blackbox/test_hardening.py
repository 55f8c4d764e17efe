"""Hostile clients and limits (issue 6, items 2 and 5).

The abuse tests feed the server garbage, truncated and malformed requests,
broken chunked bodies, invalid UTF-8 and NUL bytes, deep JSON, thousands of
held connections, clients that never read and slow-loris clients. Each
test first stores an event and a job (seed()) and ends with
assertIntact(): a fresh client is answered at once and what was stored
before is unchanged.

The limit tests start servers with small -max-* flags and check the 413 and
429 answers (with Retry-After), that nothing is stored past a limit, and
that room comes back when events go.

"""

import http.client
import os
import random
import resource
import select
import shutil
import socket
import struct
import threading
import time
import unittest

import bb
from bb import SCALE, q


# ------------------------------------------------------------ helpers ----

def exchange(host, port, data, shut=True, timeout=5.0):
    """Sends data on a new connection, optionally half-closes it (so the
    server sees the end of the input), and reads until the server closes
    or timeout. Returns (bytes received, closed_by_server)."""
    s = socket.create_connection((host, port), timeout=timeout * SCALE)
    out = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed
        if shut:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        while True:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                return out, True
            except socket.timeout:
                return out, False
            if not d:
                return out, True
            out += d
    finally:
        s.close()


def statuses(raw):
    """The status codes of the HTTP/1.x responses at the start of each
    response head found in raw (good enough for short error answers)."""
    found = []
    for part in raw.split(b"HTTP/1.")[1:]:
        try:
            found.append(int(part[2:5]))
        except ValueError:
            pass
    return found


def proc_pid(test):
    srv = type(test).server
    return srv.proc.pid if srv is not None and srv.proc is not None else None


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_nofile():
    """Raises this process's open-file limit to its hard limit; returns
    the soft limit in effect."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# ---------------------------------------------------------- test base ----

class AbuseBase(bb.ServerTestCase):
    """seed() in setUp stores an event (data with a NUL and non-ASCII) and a
    job; assertIntact() checks from a new connection that both are still
    there, unchanged, and that a publish and a delete still work."""

    def setUp(self):
        super().setUp()
        self.seed()

    def seed(self):
        c = bb.Client(self.host, self.port)
        try:
            ch = self.chan("seed")
            ev = self.publish(ch, {"data": "seed \u0000 \u00e9 \U0001F600"}, client=c)
            job = {"name": "seed-job", "cronDef": "0 0 1 1 *", "data": "job \u0000 data"}
            r = c.req("POST", "/%s/jobs" % q(ch), job)
            self.assertStatus(r, 201, "seed job")
        finally:
            c.close()
        self.seed_ch, self.seed_ev, self.seed_job = ch, ev, r.json

    def assertIntact(self, what=""):
        what = what or "after the abuse"
        c = bb.Client(self.host, self.port, timeout=5.0)
        try:
            t0 = time.monotonic()
            r = c.req("GET", "/healthz")
            self.assertStatus(r, 200, "%s: GET /healthz from a new client" % what)
            took = time.monotonic() - t0
            self.assertLess(took, 2.0 * SCALE, "%s: GET /healthz took %.2f s" % (what, took))
            ch, ev = self.seed_ch, self.seed_ev
            r = c.req("GET", self.ev_path(ch, ev["eventID"]))
            self.assertStatus(r, 200, "%s: the event stored before" % what)
            for k in ("eventID", "data", "publishedAt", "livesUntil", "state"):
                self.assertEqual(r.json.get(k), ev[k], "%s: the stored event's %s changed" % (what, k))
            r = c.req("GET", self.ev_path(ch))
            self.assertStatus(r, 200)
            self.assertEqual([e["eventID"] for e in r.json["events"]], [ev["eventID"]],
                             "%s: the seed channel's listing changed" % what)
            r = c.req("GET", "/%s/jobs/seed-job" % q(ch))
            self.assertStatus(r, 200, "%s: the job stored before" % what)
            for k in ("jobID", "cron", "data", "ttl", "createdAt"):
                self.assertEqual(r.json.get(k), self.seed_job[k], "%s: the stored job's %s changed" % (what, k))
            ch2 = self.chan("after")
            e2 = self.publish(ch2, {"data": "after"}, client=c)
            self.assertStatus(c.req("DELETE", self.ev_path(ch2, e2["eventID"])), 202, "%s: delete" % what)
        finally:
            c.close()

    def assertNothingStored(self, ch, what):
        r = bb.Client(self.host, self.port)
        try:
            resp = r.req("GET", self.ev_path(ch))
        finally:
            r.close()
        self.assertStatus(resp, 200, what)
        self.assertEqual(resp.json["count"], 0, "%s: an event was stored: %r" % (what, resp.json["events"][:3]))

    def assertRefused(self, raw, closed, what, allowed=(400, 404, 405, 408, 411, 413, 414, 417, 431, 501, 505)):
        """raw is what the server sent for bad input: nothing (it closed the
        connection) or error answers only -- never a 2xx."""
        got = statuses(raw)
        if not got:
            self.assertTrue(closed or raw == b"",
                            "%s: the server neither answered nor closed the connection: %r" % (what, raw[:200]))
            self.assertEqual(raw, b"", "%s: not an HTTP answer: %r" % (what, raw[:200]))
            return
        for st in got:
            self.assertIn(st, allowed, "%s: answered %d: %r" % (what, st, raw[:300]))


# --------------------------------------------------------------- abuse ----

class AbuseTest(AbuseBase):

    def test_garbage_bytes(self):
        rnd = random.Random(6)  # reproducible
        rb = lambda n: bytes(rnd.getrandbits(8) for _ in range(n))
        garbage = [
            (b"\x00", "one NUL"), (b"\x00" * 100000, "100 KB of NULs"), (b"\r\n" * 5000, "only CRLFs"),
            (b"\xff\xfe\xfd\r\n\r\n", "high bytes"), (rb(16), "16 random bytes"), (rb(3000) + b"\r\n\r\n", "3 KB random"),
            (rb(70000), "70 KB random"), (b"HELLO WORLD\r\n\r\n", "no HTTP"), (b"GET\r\n\r\n", "method only"),
            (b"GET /healthz\r\n\r\n", "HTTP/0.9 line"), (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", "HTTP/9.9"),
            (b"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n", "NUL in the request line"),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", "NUL in a header value"),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", "header without colon"),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-F: y\r\n" * 300 + b"\r\n", "300 header fields"),
            # h2o's own limit on a request head is 8 KiB + 100 * 4 KiB = 408 KiB
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 500000 + b"\r\n\r\n", "500 KB header"),
            (b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "100 KB URL"),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rb(600), "a TLS ClientHello"),
            (b"POST /%s/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" % b"g",
             "unsupported transfer coding"),
        ]
        for data, what in garbage:
            raw, closed = exchange(self.host, self.port, data)
            self.assertRefused(raw, closed, "garbage (%s)" % what)
            other = bb.Client(self.host, self.port, timeout=5.0)
            try:
                self.assertStatus(other.req("GET", "/healthz"), 200, "after garbage (%s)" % what)
            finally:
                other.close()
        self.assertIntact()

    def test_truncated_requests(self):
        ch = self.chan("trunc")
        p = self.ev_path(ch).encode()
        body = b'{"data":"truncated"}'
        full = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            p, len(body), body)
        head_len = full.index(b"\r\n\r\n") + 4
        cuts = [5, full.index(b"\r\n") + 2, head_len - 30, head_len - 2, head_len, head_len + 1, len(full) - 1]
        for cut in cuts:
            for shut in (True, False):
                s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)
                s.sendall(full[:cut])
                if shut:  # half-close: the server sees the end of the input
                    s.shutdown(socket.SHUT_WR)
                    s.settimeout(5 * SCALE)
                    out = b""
                    try:
                        while True:
                            d = s.recv(4096)
                            if not d:
                                break
                            out += d
                    except ConnectionResetError:
                        pass
                    self.assertFalse(any(200 <= st < 300 for st in statuses(out)),
                                     "request cut at byte %d of %d was answered %r" % (cut, len(full), out[:200]))
                else:  # just gone
                    time.sleep(0.01)
                s.close()
        # a body shorter than Content-Length, then gone
        s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" % p + body)
        time.sleep(0.05)
        s.close()
        time.sleep(0.1)
        self.assertNothingStored(ch, "after truncated requests")
        self.assertIntact()

    def test_content_length_huge_negative_and_non_numeric(self):
        ch = self.chan("cl")
        p = self.ev_path(ch).encode()
        # 10 GB: an early 413 (JSON), not an attempt to read it
        c = self.raw()
        c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 10000000000\r\n\r\n{\"data\":\"" % p)
        r = c.read_response()
        self.assertError(r, 413, what="Content-Length 10 GB")
        c.close()
        for value in (b"-1", b"-5", b"-10000000000", b"abc", b"12abc", b"0x0c", b"+12", b"1 2", b"",
                      b"18446744073709551617", b"99999999999999999999999999"):
            raw, closed = exchange(self.host, self.port,
                                   b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n{\"data\":\"bad cl\"}"
                                   % (p, value))
            self.assertRefused(raw, closed, "Content-Length %r" % value, allowed=(400, 411, 413))
        self.assertNothingStored(ch, "after bad Content-Length values")
        self.assertIntact()

    def test_chunked_valid(self):
        ch = self.chan("chunk")
        p = self.ev_path(ch).encode()
        # http.client's own chunking
        status, body = self.post_chunked(self.ev_path(ch), [b'{"da', b'ta":"one', b'"}'])
        self.assertEqual(status, 201, body)
        self.assertEqual(body["data"], "one")
        # by hand: upper-case hex, a chunk extension, a trailer, then a
        # second request on the same connection
        c = self.raw()
        c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"A;name=value\r\n{\"data\":\"t\r\n"
               b"4\r\nwo\"}\r\n"
               b"0\r\nX-Trailer: yes\r\n\r\n" % p + bb.http_request_bytes("GET", self.ev_path(ch)))
        r = c.read_response()
        self.assertStatus(r, 201, "chunked with extension and trailer")
        self.assertEqual(r.json["data"], "two")
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual([e["data"] for e in r.json["events"]], ["one", "two"])
        self.assertIntact()

    def test_chunked_broken(self):
        ch = self.chan("badchunk")
        head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % (
            self.ev_path(ch).encode())
        broken = [
            (b"zz\r\n{\"data\":\"x\"}\r\n0\r\n\r\n", "chunk size not hex"),
            (b"-c\r\n{\"data\":\"x\"}\r\n0\r\n\r\n", "negative chunk size"),
            (b"FFFFFFFFFFFFFFFFFFFF\r\n{\"data\":\"x\"}\r\n0\r\n\r\n", "chunk size overflows"),
            (b"3\r\n{\"data\":\"x\"}\r\n0\r\n\r\n", "chunk longer than its size"),
            (b"c\r\n{\"data\":\"x\"}", "missing CRLF after the data and terminator"),
            (b"c\r\n{\"data\":\"x\"}\r\n", "missing last chunk"),
            (b"c\r\n{\"data\":\"x\"}\r\n0\r\n", "missing final CRLF"),
            (b"\r\n\r\n", "no chunk size at all"),
        ]
        for body, what in broken:
            raw, closed = exchange(self.host, self.port, head + body)
            self.assertRefused(raw, closed, "broken chunked body (%s)" % what, allowed=(400, 413))
        self.assertNothingStored(ch, "after broken chunked bodies")
        self.assertIntact()

    def test_pipelined_garbage_after_valid_request(self):
        ch = self.chan("pipe")
        valid = bb.http_request_bytes("POST", self.ev_path(ch), b'{"data":"valid"}',
                                      {"Content-Type": "application/json"})
        for garbage in (b"\x00\x01\x02garbage\xff\r\n\r\n", b"NOT HTTP AT ALL\r\n\r\n",
                        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", os.urandom(4000)):
            c = self.raw()
            c.send(valid + garbage, tolerant=True)
            r = c.read_response()
            self.assertStatus(r, 201, "the valid request before garbage %r" % garbage[:20])
            self.assertEqual(r.json["data"], "valid")
            c.sock.shutdown(socket.SHUT_WR)
            rest = c.closed_or_response()
            if rest is not None:
                self.assertTrue(400 <= rest.status < 500, "garbage after a valid request answered %d" % rest.status)
            c.close()
        self.assertEqual([e["data"] for e in self.listing(ch)["events"]], ["valid"] * 4)
        self.assertIntact()

    def test_invalid_utf8_and_nul_in_data(self):
        ch = self.chan("utf")
        # \u0000 and other escaped control characters are valid JSON strings
        # and round-trip exactly, in events and job data
        data = "a\u0000b\u0001c\u001f\u007f \u00e9 \U0001F600 \u2028"
        ev = self.publish(ch, {"data": data})
        self.assertEqual(ev["data"], data)
        r = self.get_event(ch, ev["eventID"])
        self.assertStatus(r, 200)
        self.assertEqual(r.json["data"], data)
        self.assertEqual(self.listing(ch)["events"][0]["data"], data)
        self.assertIn(b"\\u0000", r.raw, "a NUL must leave escaped")
        r = self.req("POST", "/%s/jobs" % q(ch), {"name": "nul-job", "cronDef": "@yearly", "data": data})
        self.assertStatus(r, 201)
        self.assertEqual(self.req("GET", "/%s/jobs/nul-job" % q(ch)).json["data"], data)
        r = self.req("POST", self.ev_path(ch), [{"data": data}, {"data": "\u0000"}])
        self.assertStatus(r, 201, "batch with NULs")
        self.assertEqual([e["data"] for e in r.json["events"]], [data, "\u0000"])
        before = self.ids(ch)
        # raw bytes that are not UTF-8, and JSON that is not valid
        bad = [
            b'{"data":"\xff"}', b'{"data":"\xc3"}', b'{"data":"\xc0\x80"}', b'{"data":"\xe0\x80\xaf"}',
            b'{"data":"\xed\xa0\x80"}', b'{"data":"\xf4\x90\x80\x80"}', b'{"data":"\xf8\x88\x80\x80\x80"}',
            b'{"data":"ok","\xff":1}', b'{"data":"a\x00b"}', b'{"data":"a\x01b"}', b'{"data":"a\nb"}',
            b'{"data":"x"}\x00', b'\x00{"data":"x"}', b'{"data":"\\ud800"}', b'{"data":"\\udc00x"}',
            b'{"data":"\\u00"}', b'{"data":"\\x41"}', b'[{"data":"ok"},{"data":"\xff"}]',
            b'\xef\xbb\xbf{"data":"bom"}',
        ]
        for body in bad:
            r = self.req("POST", self.ev_path(ch), body, {"Content-Type": "application/json"})
            self.assertError(r, 400, what="publish body %r" % body)
        for body in (b'{"name":"\xff","cronDef":"@yearly"}', b'{"name":"j","cronDef":"@yearly","data":"\xc0\x80"}',
                     b'{"name":"a\\u0000b","cronDef":"@yearly"}'):
            self.assertError(self.req("POST", "/%s/jobs" % q(ch), body), 400, what="job body %r" % body)
        eid = before[0]
        for body in (b'{"action":"LOCK\xff"}', b'{"action":"LOCK","ttl":"1\x00s"}'):
            self.assertError(self.req("PUT", self.ev_path(ch, eid), body), 400, what="lock body %r" % body)
        self.assertEqual(self.ids(ch), before, "a refused request stored or changed events")
        self.assertEqual(self.get_event(ch, eid).json["state"], "ready")
        self.assertEqual([j["jobID"] for j in self.req("GET", "/%s/jobs" % q(ch)).json["jobs"]], ["nul-job"])
        self.assertIntact()

    def test_invalid_channel_names(self):
        names = ["%00", "a%00b", "%FF", "a%FFb", "%C0%80", "%ED%A0%80", "%F4%90%80%80", "%E2%82", "%0A", "%1F",
                 "%7F", "a%2Fb", "%FE%FF"]
        for n in names:
            for method, suffix, body in (("GET", "/events", None), ("POST", "/events", {"data": "x"}),
                                         ("POST", "/jobs", {"name": "j", "cronDef": "@yearly"}),
                                         ("POST", "/acquire", {}), ("GET", "", None)):
                r = self.req(method, "/" + n + suffix, body)
                self.assertError(r, 400, what="%s /%s%s" % (method, n, suffix))
        # raw (not percent-encoded) bytes in the path: refused, never stored
        for seg in (b"\xff", b"a\x00b", b"\xc0\x80", b"a\x01b"):
            raw, closed = exchange(self.host, self.port, b"POST /%s/events HTTP/1.1\r\nHost: x\r\n"
                                   b"Content-Length: 12\r\n\r\n{\"data\":\"x\"}" % seg)
            self.assertRefused(raw, closed, "raw path byte %r" % seg, allowed=(400, 404))
        r = self.req("GET", "/channels")
        self.assertStatus(r, 200)
        for c in r.json["channels"]:
            name = c["channelName"]
            self.assertTrue(name and all(ord(ch) >= 0x20 and ch != "\u007f" and ch != "/" for ch in name),
                            "an invalid channel name was created: %r" % name)
        self.assertIntact()

    def test_deeply_nested_json(self):
        ch = self.chan("deep")
        depth = 100000
        bodies = [
            ("[" * depth, "100 000 '['"),
            ("[" * depth + "]" * depth, "100 000 balanced []"),
            ('{"a":' * depth + "1" + "}" * depth, "100 000 nested objects"),
            ('{"data":"x","extra":' + "[" * depth + "]" * depth + "}", "deep unknown field"),
            ('[{"data":"x"},' + "[" * depth + "]" * depth + "]", "deep batch element"),
        ]
        for body, what in bodies:
            r = self.req("POST", self.ev_path(ch), body.encode())
            self.assertIn(r.status, (400, 413), "publish %s answered %d" % (what, r.status))
            self.assertError(r, r.status, what="publish %s" % what)
            self.assertStatus(self.client().req("GET", "/healthz"), 200, "after %s" % what)
        eid = self.seed_ev["eventID"]
        deep = ("[" * depth).encode()
        for method, path in (("POST", "/%s/jobs" % q(ch)), ("POST", "/%s/acquire" % q(ch)),
                             ("PUT", self.ev_path(self.seed_ch, eid)), ("PATCH", self.ev_path(self.seed_ch, eid))):
            r = self.req(method, path, deep, {"Content-Type": "application/json"})
            self.assertError(r, 400, what="%s %s with 100 000 '['" % (method, path))
        self.assertNothingStored(ch, "after deep JSON")
        self.assertIntact()

    def stuck_clients(self, n, flood):
        """n clients that pipeline requests for a 1 MB listing and read
        nothing: 20 each, or with flood as many as the server takes in
        0.5 s (thousands). Checks that another client is served meanwhile.
        Returns (sockets, listing channel)."""
        pid = proc_pid(self)
        ch = self.chan("big")
        data = "r" * 2000
        for _ in range(2):
            r = self.req("POST", self.ev_path(ch), [{"data": data}] * 250)
            self.assertStatus(r, 201)
        req = bb.http_request_bytes("GET", self.ev_path(ch))  # a 1 MB answer each
        rss0 = rss_kib(pid) if pid else 0
        stuck = []
        try:
            for _ in range(n):
                s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)
                stuck.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.setblocking(False)
                sent, t0 = 0, time.monotonic()
                if not flood:
                    s.setblocking(True)
                    s.sendall(req * 20)
                    sent = len(req) * 20
                while flood and time.monotonic() - t0 < 0.5 * SCALE:  # until the server stops taking them
                    try:
                        sent += s.send(req * 200)
                    except BlockingIOError:
                        select.select([], [s], [], 0.05)
                self.assertGreaterEqual(sent, len(req) * 20, "could not even send 20 requests")
                # another client is served at once, meanwhile
                c = bb.Client(self.host, self.port, timeout=5.0)
                t1 = time.monotonic()
                self.assertStatus(c.req("GET", "/healthz"), 200)
                r = c.req("GET", self.ev_path(ch))
                took = time.monotonic() - t1
                c.close()
                self.assertStatus(r, 200)
                self.assertEqual(r.json["count"], 500)
                self.assertLess(took, 2.0 * SCALE, "a reading client waited %.2f s behind %d stuck ones"
                                % (took, len(stuck)))
            if pid and not bb.VALGRIND:
                grown = (rss_kib(pid) - rss0) / 1024.0
                self.assertLess(grown, 128, "the server grew by %.0f MB for %d clients that do not read" % (grown, n))
            self.assertIntact("while %d clients do not read" % n)
        except BaseException:
            close_all(stuck)
            raise
        return stuck, ch

    def test_clients_that_stop_reading(self):
        """Stuck clients (20 requests for 1 MB each pipelined, nothing read)
        stay connected: the others are served; then they go."""
        stuck, ch = self.stuck_clients(3, flood=False)
        try:
            for s in stuck:
                s.shutdown(socket.SHUT_WR)
            time.sleep(0.2)
            self.assertIntact("with 3 stuck clients")
        finally:
            close_all(stuck)

    def test_clients_that_stop_reading_then_hang_up(self):
        if bb.VALGRIND:
            self.skipTest("under valgrind the stall of bug H1 lasts minutes")
        stuck, ch = self.stuck_clients(1, flood=True)
        close_all(stuck)
        # They hung up with thousands of requests still pipelined: what the
        # server had read of them must not keep it busy for everyone else.
        time.sleep(0.05)
        c = bb.Client(self.host, self.port, timeout=60.0)
        t0 = time.monotonic()
        r = c.req("GET", "/healthz")
        took = time.monotonic() - t0
        c.close()
        self.assertStatus(r, 200)
        self.assertLess(took, 1.0 * SCALE, "after a client that never read hung up, another client waited %.2f s "
                        "for GET /healthz (the server went on answering their pipelined requests)" % took)
        self.assertIntact()


# --------------------------------------------------------- connections ----

class ConnectionFloodTest(AbuseBase):
    """As many idle connections as the open-file limit allows (at most
    10 000), held while others are served; none leak when they go."""

    OWN_SERVER = True
    TARGET = 1000 if bb.VALGRIND else 10000
    SERVER_ARGS = ["-in-memory", "-max-connections", str(TARGET + 200), "-request-timeout", "60s"]

    @classmethod
    def setUpClass(cls):
        cls.nofile = raise_nofile()  # before the server starts: it inherits it
        super().setUpClass()

    def test_hold_many_connections(self):
        n = min(self.TARGET, self.nofile - 300)
        if n < 500:
            self.skipTest("the open-file limit (%d) allows too few connections" % self.nofile)
        pid = proc_pid(self)
        base = fd_count(pid)
        held = []
        try:
            t0 = time.monotonic()
            for i in range(n):
                try:
                    held.append(socket.create_connection((self.host, self.port), timeout=5 * SCALE))
                except OSError as e:
                    self.fail("connection %d of %d failed after %.1f s: %r" % (i, n, time.monotonic() - t0, e))
            # the server accepted them all (they are its sockets, not a backlog)
            deadline = time.monotonic() + 10 * SCALE
            while fd_count(pid) < base + n - 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertGreaterEqual(fd_count(pid), base + n - 5, "the server holds only %d of %d connections"
                                    % (fd_count(pid) - base, n))
            # a normal request from a fresh connection is served promptly
            c = bb.Client(self.host, self.port, timeout=5.0)
            t1 = time.monotonic()
            ev = self.publish(self.chan(), {"data": "while held"}, client=c)
            took = time.monotonic() - t1
            c.close()
            self.assertEqual(ev["data"], "while held")
            self.assertLess(took, 2.0 * SCALE, "a publish took %.2f s with %d connections held" % (took, n))
            # the held ones work too: the first and the last
            for s in (held[0], held[-1]):
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                rc = bb.RawConn.__new__(bb.RawConn)
                rc.sock, rc.buf = s, b""
                self.assertStatus(rc.read_response(), 200, "a request on a held connection")
            self.assertIntact("with %d connections held" % n)
        finally:
            close_all(held)
        # they all go away on the server's side too: no leaked descriptors
        deadline = time.monotonic() + 10 * SCALE
        while fd_count(pid) > base + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertLessEqual(fd_count(pid), base + 5, "the server still holds %d descriptors after the clients left"
                             % (fd_count(pid) - base))
        self.assertIntact()


class ConnectionLimitTest(AbuseBase):
    """-max-connections 20: connections past it are closed at once, the
    ones held keep working, and service resumes when they go."""

    OWN_SERVER = True
    LIMIT = 20
    SERVER_ARGS = ["-in-memory", "-max-connections", str(LIMIT)]

    def test_past_the_limit_closed_then_service_resumes(self):
        held = []
        try:
            for i in range(self.LIMIT):
                deadline = time.monotonic() + 3 * SCALE
                while True:  # the seed's connections may not be gone yet
                    c = bb.RawConn(self.host, self.port, timeout=5.0)
                    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", tolerant=True)
                    try:
                        r = c.read_response()
                        break
                    except AssertionError:
                        c.close()
                        self.assertLess(time.monotonic(), deadline, "held connection %d refused" % i)
                        time.sleep(0.05)
                held.append(c)
                self.assertStatus(r, 200, "held connection %d" % i)
            for i in range(5):
                s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)
                t0 = time.monotonic()
                try:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                try:
                    d = s.recv(4096)
                except ConnectionResetError:
                    d = b""
                except socket.timeout:
                    self.fail("connection %d past the limit was neither closed nor answered" % (self.LIMIT + i))
                s.close()
                self.assertEqual(d, b"", "connection %d past -max-connections %d was answered: %r"
                                 % (self.LIMIT + i + 1, self.LIMIT, d[:100]))
                self.assertLess(time.monotonic() - t0, 2.0 * SCALE, "not closed at once")
            for i, c in enumerate(held):  # the held ones are still served
                c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertStatus(c.read_response(), 200, "held connection %d after the refusals" % i)
            for c in held[:5]:
                c.close()
            # room again: a new client is served (the server notices the
            # closes a moment later)
            deadline = time.monotonic() + 5 * SCALE
            while True:
                try:
                    c = bb.Client(self.host, self.port, timeout=2.0)
                    r = c.req("GET", "/healthz")
                    c.close()
                    if r.status == 200:
                        break
                except AssertionError:
                    pass
                self.assertLess(time.monotonic(), deadline, "no room for a new connection after 5 left")
                time.sleep(0.05)
        finally:
            for c in held:
                c.close()
        deadline = time.monotonic() + 5 * SCALE
        while True:  # all of them gone: the intact check needs two connections
            try:
                self.assertIntact()
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


class FdLimitServer(bb.Server):
    """A server whose open-file limit (soft and hard) is nofile, below its
    -max-connections: it runs out of descriptors before connections."""

    def __init__(self, nofile, args):
        super().__init__(args)
        self.nofile = nofile

    def argv(self, port):
        return ["prlimit", "--nofile=%d:%d" % (self.nofile, self.nofile), "--"] + super().argv(port)


@unittest.skipIf(bb.VALGRIND, "valgrind needs descriptors of its own")
@unittest.skipUnless(shutil.which("prlimit"), "needs prlimit (util-linux)")
class FdExhaustionTest(AbuseBase):
    """More clients than the server has file descriptors (its hard limit
    is below -max-connections): it must not spin, the connections it holds
    keep working, and service resumes when clients go."""

    OWN_SERVER = True
    NOFILE = 128

    @classmethod
    def new_server(cls):
        return FdLimitServer(cls.NOFILE, ["-in-memory", "-max-connections", "1000"])

    def test_out_of_descriptors(self):
        pid = proc_pid(self)
        held = []
        try:
            first = bb.RawConn(self.host, self.port, timeout=5.0)
            held.append(first)
            first.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertStatus(first.read_response(), 200)
            for _ in range(self.NOFILE + 72):
                held.append(socket.create_connection((self.host, self.port), timeout=5 * SCALE))
            time.sleep(0.3)
            c0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(1.0)
            busy = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
            first.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertStatus(first.read_response(), 200, "a connection it held before")
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 5 * SCALE
        while True:
            try:
                self.assertIntact("after the clients left")
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.assertLess(busy, 0.2, "out of file descriptors the server spins: %.0f%% CPU while idle "
                        "(accept fails with EMFILE and the listener stays readable)" % (busy * 100))


# ----------------------------------------------------------- slow loris ----

class SlowLorisTest(AbuseBase):
    """-request-timeout 1s: clients that send their request too slowly are
    cut off after it; everyone else is served meanwhile."""

    OWN_SERVER = True
    WEIGHT = 2
    SERVER_ARGS = ["-in-memory", "-request-timeout", "1s"]
    TIMEOUT = 1.0

    def dribble(self, prefix, rest, interval, result, key):
        """Sends prefix, then rest one byte per interval, until the server
        closes; result[key] = (seconds until closed or None, bytes got)."""
        s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)
        t0 = time.monotonic()
        got = b""
        try:
            if prefix:
                s.sendall(prefix)
            for b in rest:
                try:
                    s.sendall(bytes([b]))
                except (BrokenPipeError, ConnectionResetError):
                    break
                r, _, _ = select.select([s], [], [], interval)
                if r:
                    try:
                        d = s.recv(4096)
                    except ConnectionResetError:
                        d = b""
                    got += d
                    if not d:
                        break
                if time.monotonic() - t0 > 8 * self.TIMEOUT * SCALE:
                    result[key] = (None, got)
                    return
            else:  # all sent: wait for the close
                s.settimeout(8 * self.TIMEOUT * SCALE)
                try:
                    while True:
                        d = s.recv(4096)
                        if not d:
                            break
                        got += d
                except socket.timeout:
                    result[key] = (None, got)
                    return
                except ConnectionResetError:
                    pass
            result[key] = (time.monotonic() - t0, got)
        finally:
            s.close()

    def served_meanwhile(self, threads):
        """Runs normal requests from another client until the threads end;
        returns the slowest answer time."""
        c = bb.Client(self.host, self.port, timeout=5.0)
        slowest, n = 0.0, 0
        ch = self.chan("meanwhile")
        try:
            while any(t.is_alive() for t in threads):
                t0 = time.monotonic()
                self.publish(ch, {"data": str(n)}, client=c)
                self.assertStatus(c.req("GET", self.ev_path(ch)), 200)
                slowest = max(slowest, time.monotonic() - t0)
                n += 1
                time.sleep(0.05)
        finally:
            c.close()
        self.assertGreater(n, 3, "too few requests meanwhile")
        return slowest

    def check_cut(self, result, what):
        took, got = result
        self.assertIsNotNone(took, "%s: not cut off within %.0f s" % (what, 8 * self.TIMEOUT * SCALE))
        self.assertGreater(took, 0.7 * self.TIMEOUT, "%s: cut off after %.2f s, before -request-timeout" % (what, took))
        self.assertLess(took, self.TIMEOUT * SCALE + 2.0, "%s: cut off only after %.2f s" % (what, took))
        self.assertFalse(any(200 <= st < 300 for st in statuses(got)), "%s: answered %r" % (what, got[:200]))

    def test_headers_byte_by_byte(self):
        req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 400 + b"\r\n\r\n"
        result = {}
        threads = [threading.Thread(target=self.dribble, args=(b"", req, 0.05, result, i)) for i in range(10)]
        for t in threads:
            t.start()
        slowest = self.served_meanwhile(threads)
        for t in threads:
            t.join()
        for i in range(10):
            self.check_cut(result[i], "slow-loris headers %d" % i)
        self.assertLess(slowest, 0.5 * SCALE, "another client waited %.2f s meanwhile" % slowest)
        self.assertIntact()

    def test_body_byte_by_byte(self):
        ch = self.chan("slowbody")
        body = b'{"data":"' + b"b" * 300 + b'"}'
        result = {}
        t1 = threading.Thread(target=self.dribble, args=(
            b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (self.ev_path(ch).encode(), len(body)),
            body, 0.05, result, "cl"))
        t2 = threading.Thread(target=self.dribble, args=(
            b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % self.ev_path(ch).encode(),
            b"".join(b"1\r\n%s\r\n" % bytes([x]) for x in body), 0.02, result, "chunked"))
        t1.start()
        t2.start()
        slowest = self.served_meanwhile([t1, t2])
        t1.join()
        t2.join()
        self.check_cut(result["cl"], "body byte by byte")
        self.check_cut(result["chunked"], "chunked body byte by byte")
        self.assertLess(slowest, 0.5 * SCALE, "another client waited %.2f s meanwhile" % slowest)
        self.assertNothingStored(ch, "after slow bodies")
        self.assertIntact()

    def test_idle_connections_closed(self):
        s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)  # never sends
        c = self.raw()
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertStatus(c.read_response(), 200)
        t0 = time.monotonic()
        for sock, what in ((s, "a connection that never sent a byte"), (c.sock, "an idle keep-alive connection")):
            sock.settimeout(5 * SCALE)
            try:
                d = sock.recv(100)
            except ConnectionResetError:
                d = b""
            except socket.timeout:
                self.fail("%s was not closed within 5 s" % what)
            self.assertEqual(d, b"", what)
        self.assertLess(time.monotonic() - t0, self.TIMEOUT * SCALE + 2.0)
        s.close()
        self.assertIntact()

    def test_long_poll_outlives_request_timeout(self):
        """A parked acquire has sent its whole request: the request timeout
        does not cut it, and it gets its answer."""
        ch = self.chan("lp")
        c = bb.Client(self.host, self.port, timeout=10.0)
        t0 = time.monotonic()
        r = c.req("POST", "/%s/acquire" % q(ch), {"wait": "2500ms"})
        took = time.monotonic() - t0
        c.close()
        self.assertStatus(r, 200, "a long-poll longer than -request-timeout")
        self.assertEqual(r.json["count"], 0)
        self.assertGreater(took, 2.3)
        # and one woken by a publish after the request timeout has passed
        res = {}

        def poll():
            cl = bb.Client(self.host, self.port, timeout=10.0)
            res["r"] = cl.req("POST", "/%s/acquire" % q(ch), {"wait": "%gs" % (5 * SCALE)})
            cl.close()

        t = threading.Thread(target=poll)
        t.start()
        time.sleep(1.8)  # past the request timeout
        self.publish(ch, {"data": "late"})
        t.join(10 * SCALE)
        self.assertStatus(res["r"], 200)
        self.assertEqual([e["data"] for e in res["r"].json["events"]], ["late"], "the parked acquire was not woken")
        self.assertIntact()

    def test_http2_dribble_cut_off_or_refused(self):
        """HTTP/2 with prior knowledge (h2c) on the plain port: either not
        spoken at all, or a stream that dribbles its body is cut off after
        -request-timeout like an HTTP/1.1 one."""
        ch = self.chan("h2")

        def frame(ftype, flags, sid, payload):
            return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload

        path = ("/%s/events" % q(ch)).encode()
        # HPACK: :method POST (idx 3), :scheme http (idx 6), :path literal
        # (name idx 4), :authority literal (name idx 1)
        hdrs = bytes([0x83, 0x86, 0x44, len(path)]) + path + bytes([0x41, 0x01]) + b"x"
        s = socket.create_connection((self.host, self.port), timeout=5 * SCALE)
        t0 = time.monotonic()
        spoke_h2, closed_at, got = False, None, b""
        try:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 0x4, 1, hdrs))
            while time.monotonic() - t0 < 5 * self.TIMEOUT * SCALE:
                try:
                    s.sendall(frame(0, 0, 1, b"{"))  # one byte of body
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic() - t0
                    break
                r, _, _ = select.select([s], [], [], 0.2)
                if r:
                    try:
                        d = s.recv(65536)
                    except ConnectionResetError:
                        d = b""
                    if not d:
                        closed_at = time.monotonic() - t0
                        break
                    got += d
                    if len(got) >= 9 and got[3] == 4 and not got.startswith(b"HTTP/"):
                        spoke_h2 = True  # a SETTINGS frame
                    # an answer (HEADERS), RST_STREAM or GOAWAY ends the stream too
                    if spoke_h2 and any(got[i + 3] in (1, 3, 7) for i in self._frame_offsets(got)):
                        closed_at = time.monotonic() - t0
                        break
        finally:
            s.close()
        if spoke_h2:
            self.assertIsNotNone(closed_at, "an HTTP/2 (h2c) stream dribbling its body one byte per 0.2 s was "
                                 "still open after %.1f s with -request-timeout 1s: h2c bypasses the "
                                 "slow-loris limit" % (time.monotonic() - t0))
            self.assertLess(closed_at, self.TIMEOUT * SCALE + 2.0)
        self.assertNothingStored(ch, "after the h2c dribble")
        self.assertIntact()

    @staticmethod
    def _frame_offsets(buf):
        i = 0
        while i + 9 <= len(buf):
            yield i
            i += 9 + int.from_bytes(buf[i:i + 3], "big")


# -------------------------------------------------------------- limits ----

class LimitMixin:
    def assertFull(self, r, what):
        """A 429 with Retry-After and a JSON error."""
        self.assertError(r, 429, what=what)
        ra = r.headers.get("Retry-After")
        self.assertIsNotNone(ra, "%s: 429 without Retry-After" % what)
        self.assertTrue(ra.strip().isdigit() and int(ra) >= 1, "%s: Retry-After %r" % (what, ra))


class ChannelLimitTest(LimitMixin, bb.ServerTestCase):
    OWN_SERVER = True
    SERVER_ARGS = ["-in-memory", "-max-channels", "3"]

    def test_max_channels(self):
        chans = [self.chan() for _ in range(3)]
        evs = [self.publish(ch, {"data": ch}) for ch in chans]
        extra = self.chan()
        for method, suffix, body in (("POST", "/events", {"data": "x"}),
                                     ("POST", "/jobs", {"name": "j", "cronDef": "@hourly"})):
            self.assertFull(self.req(method, "/" + q(extra) + suffix, body), "%s on a 4th channel" % method)
        # reads and acquires create no channel, so the limit does not refuse them
        for method, suffix, body in (("GET", "/events", None), ("POST", "/acquire", {}), ("GET", "", None)):
            r = self.req(method, "/" + q(extra) + suffix, body)
            self.assertStatus(r, 200, "%s %s on a 4th channel" % (method, suffix))
        r = self.req("POST", self.ev_path(extra), [{"data": "a"}, {"data": "b"}])
        self.assertFull(r, "batch into a 4th channel")
        names = [c["channelName"] for c in self.req("GET", "/channels").json["channels"]]
        self.assertEqual(sorted(names), sorted(chans), "a refused channel was created")
        # the channels there keep working
        for ch, ev in zip(chans, evs):
            self.publish(ch, {"data": "more"})
            self.assertEqual(self.ids(ch)[0], ev["eventID"])
            self.assertStatus(self.delete(ch, ev["eventID"]), 202)
        self.assertStatus(self.req("POST", "/%s/jobs" % q(chans[0]), {"name": "j", "cronDef": "@hourly"}), 201)

    def test_refused_requests_do_not_leak(self):
        """Requests refused for the channel limit free what they parsed:
        100 of each with 200 KB of data must not grow the server by 20 MB."""
        pid = type(self).server.proc.pid if type(self).server else None
        if pid is None or bb.VALGRIND or bb.SANITIZED:
            self.skipTest("needs the server's pid and plain malloc (valgrind and LeakSanitizer find "
                          "such leaks themselves)")
        for i in range(3 - len(self.req("GET", "/channels").json["channels"])):
            self.publish(self.chan(), {"data": "fill"})
        extra = self.chan()
        big = "x" * 200000
        # acquire and PUT create no channel: they are refused for their
        # unknown field instead, and must free what they parsed all the same
        for method, suffix, body, status in (("POST", "/events", {"data": big}, 429),
                                             ("POST", "/events", [{"data": big}], 429),
                                             ("POST", "/acquire", {"max": 1, "x": big}, 400),
                                             ("PUT", "/events/00000000000000000000", {"action": "LOCK", "x": big}, 400),
                                             ("POST", "/jobs", {"name": "j", "cronDef": "@hourly", "data": big}, 429)):
            with open("/proc/%d/status" % pid) as f:
                rss0 = int([l for l in f if l.startswith("VmRSS:")][0].split()[1])
            for _ in range(100):
                r = self.req(method, "/" + q(extra) + suffix, body)
                self.assertEqual(r.status, status, "%s %s past -max-channels" % (method, suffix))
            with open("/proc/%d/status" % pid) as f:
                rss1 = int([l for l in f if l.startswith("VmRSS:")][0].split()[1])
            self.assertLess((rss1 - rss0) / 1024.0, 10, "100 refused %s %s (200 KB each) grew the server by %.0f MB"
                            % (method, suffix, (rss1 - rss0) / 1024.0))


class ChannelEventLimitTest(LimitMixin, bb.ServerTestCase):
    OWN_SERVER = True
    SERVER_ARGS = ["-in-memory", "-max-channel-events", "5"]

    def test_channel_limit_publish_and_batch(self):
        ch = self.chan()
        evs = [self.publish(ch, {"data": str(i)}) for i in range(3)]
        delayed = self.publish(ch, {"data": "later", "publishIn": "1h"})  # scheduled ones count
        self.assertStatus(self.lock(ch, evs[0]["eventID"]), 202)  # locked ones count
        r = self.req("POST", self.ev_path(ch), [{"data": "b1"}, {"data": "b2"}])
        self.assertFull(r, "batch of 2 into 4 of 5")
        self.assertEqual(len(self.ids(ch)), 3, "a refused batch stored events")
        self.publish(ch, {"data": "fifth"})
        for body in ({"data": "sixth"}, [{"data": "b"}], {"data": "d", "publishIn": "10s"}):
            self.assertFull(self.req("POST", self.ev_path(ch), body), "publish %r into a full channel" % (body,))
        self.assertEqual(len(self.ids(ch)), 4)
        self.assertStatus(self.get_event(ch, delayed["eventID"]), 200)
        self.assertEqual(self.get_event(ch, evs[0]["eventID"]).json["state"], "locked", "a refusal touched a lock")
        # another channel is not affected by this one's limit
        self.publish(self.chan(), {"data": "elsewhere"})
        # deleting one (here: cancelling the scheduled one) makes room for one
        self.assertStatus(self.delete(ch, delayed["eventID"]), 202)
        self.publish(ch, {"data": "room again"})
        self.assertFull(self.req("POST", self.ev_path(ch), {"data": "x"}), "full again")
        # an expiry makes room too
        self.assertStatus(self.delete(ch, evs[1]["eventID"]), 202)
        short = self.publish(ch, {"data": "short", "ttl": "300ms"})
        self.assertFull(self.req("POST", self.ev_path(ch), {"data": "x"}), "full with a short-lived one")
        time.sleep(0.4)
        e = self.publish(ch, {"data": "after expiry"})
        self.assertNotEqual(e["eventID"], short["eventID"])
        # a batch that exactly fits
        self.assertStatus(self.delete(ch, evs[2]["eventID"]), 202)
        self.assertStatus(self.delete(ch, e["eventID"]), 202)
        r = self.req("POST", self.ev_path(ch), [{"data": "f1"}, {"data": "f2"}])
        self.assertStatus(r, 201, "a batch that exactly fits")
        self.assertEqual(len(self.ids(ch)), 5)


class JobEventLimitTest(LimitMixin, bb.ServerTestCase):
    """A job's fire into a channel at -max-channel-events is refused like a
    publish: nothing is published, nothing stored is evicted, the fire is
    counted in the job's `skipped`; with room again the job fires."""

    OWN_SERVER = True
    SERVER_ARGS = ["-in-memory", "-max-channel-events", "2"]

    def job_path(self, ch, name=None):
        return "/%s/jobs" % q(ch) + ("" if name is None else "/" + q(name))

    def job(self, ch):
        r = self.req("GET", self.job_path(ch, "tick"))
        self.assertStatus(r, 200)
        return r.json

    def wait_job(self, ch, cond, what):
        deadline = time.monotonic() + 5 * SCALE
        j = self.job(ch)
        while not cond(j) and time.monotonic() < deadline:
            time.sleep(0.1)
            j = self.job(ch)
        self.assertTrue(cond(j), "%s: %r" % (what, j))
        return j

    def test_a_fire_into_a_full_channel_is_skipped(self):
        ch = self.chan()
        evs = [self.publish(ch, {"data": str(i)})["eventID"] for i in range(2)]
        self.assertFull(self.req("POST", self.ev_path(ch), {"data": "x"}), "publish into a full channel")
        self.assertStatus(self.req("POST", self.job_path(ch), {"name": "tick", "cronDef": "@every 1s"}), 201)
        j = self.wait_job(ch, lambda j: j["skipped"] >= 2, "two fires into the full channel")
        self.assertEqual(j["runs"], 0, "a fire published into a full channel")
        self.assertEqual(self.ids(ch), evs, "a fire changed a full channel")
        # room for one: the next fire takes it, the one after is skipped again
        self.assertStatus(self.delete(ch, evs[0]), 202)
        j = self.wait_job(ch, lambda j: j["runs"] >= 1, "a fire once there is room")
        skipped = j["skipped"]
        self.wait_job(ch, lambda j: j["skipped"] > skipped, "a fire into the channel full again")
        self.assertStatus(self.req("DELETE", self.job_path(ch, "tick")), 202)
        ids = self.ids(ch)
        self.assertEqual(len(ids), 2, "the channel holds more than its limit")
        self.assertEqual(ids[0], evs[1])


class TotalEventLimitTest(LimitMixin, bb.ServerTestCase):
    OWN_SERVER = True
    SERVER_ARGS = ["-in-memory", "-max-events", "8", "-max-channel-events", "5"]

    def counts_settle(self):
        """On PostgreSQL the total limit is enforced against counts that
        may lag by up to a second (Part D): let them catch up."""
        if bb.PG:
            time.sleep(1.1)

    def total(self):
        return sum(c["ready"] + c["scheduled"] + c["locked"] for c in self.req("GET", "/channels").json["channels"])

    def test_total_limit(self):
        before = self.total()
        room = 8 - before
        self.assertGreaterEqual(room, 4, "the other test left too many events: %d" % before)
        chans = [self.chan() for _ in range(room)]
        evs = [self.publish(ch, {"data": "t"}) for ch in chans]
        other = self.chan()
        self.counts_settle()
        self.assertFull(self.req("POST", self.ev_path(other), {"data": "x"}), "publish past -max-events")
        self.assertFull(self.req("POST", self.ev_path(chans[0]), [{"data": "x"}]), "batch past -max-events")
        self.assertEqual(self.total(), 8)
        self.assertStatus(self.delete(chans[1], evs[1]["eventID"]), 202)
        self.counts_settle()
        self.assertFull(self.req("POST", self.ev_path(other), [{"data": "x"}, {"data": "y"}]), "batch of 2, room for 1")
        self.publish(other, {"data": "fits"})
        self.assertEqual(self.total(), 8)
        for ch, ev in zip(chans, evs):
            if ch != chans[1]:
                self.assertStatus(self.get_event(ch, ev["eventID"]), 200, "a stored event was evicted")


class WaiterLimitTest(LimitMixin, bb.ServerTestCase):
    OWN_SERVER = True
    SERVER_ARGS = ["-in-memory", "-max-waiters", "2"]

    def test_max_waiters(self):
        ch = self.chan()
        res = {}

        def park(i, wait):
            c = bb.Client(self.host, self.port, timeout=10.0)
            res[i] = (c.req("POST", "/%s/acquire" % q(ch), {"wait": wait}), time.monotonic())
            c.close()

        ts = [threading.Thread(target=park, args=(i, "5s")) for i in range(2)]
        for t in ts:
            t.start()
        time.sleep(0.3 * SCALE)  # both parked
        self.pin_client()  # the limit is per replica: all to the one they parked on
        t0 = time.monotonic()
        r = self.req("POST", "/%s/acquire" % q(ch), {"wait": "5s"})
        self.assertFull(r, "a third parked acquire")
        self.assertLess(time.monotonic() - t0, 1.0 * SCALE, "the refusal waited")
        r = self.req("POST", "/%s/acquire" % q(self.chan()), {"wait": "1s"})
        self.assertFull(r, "a parked acquire on another channel")
        # without a wait nothing parks: still answered
        r = self.req("POST", "/%s/acquire" % q(ch), {})
        self.assertStatus(r, 200, "an acquire that does not wait")
        self.assertEqual(r.json["count"], 0)
        # the two parked ones get the next two events
        evs = [self.publish(ch, {"data": str(i)}) for i in range(2)]
        for t in ts:
            t.join(10 * SCALE)
        got = sorted(e["eventID"] for i in range(2) for e in res[i][0].json["events"])
        self.assertEqual(got, sorted(e["eventID"] for e in evs))
        # room again: this one parks and times out with count 0
        t0 = time.monotonic()
        r = self.req("POST", "/%s/acquire" % q(ch), {"wait": "300ms"})
        self.assertStatus(r, 200, "parking once the waiters left")
        self.assertEqual(r.json["count"], 0)
        self.assertGreater(time.monotonic() - t0, 0.25)


class SizeLimitTest(LimitMixin, bb.ServerTestCase):
    OWN_SERVER = True
    BODY, DATA, BATCH = 4096, 1000, 5
    SERVER_ARGS = ["-in-memory", "-max-body-size", str(BODY), "-max-data-size", str(DATA), "-max-batch", str(BATCH)]

    def body_of(self, size):
        """A valid publish body of exactly size bytes (padded with
        whitespace: an unknown field would be refused)."""
        pad = size - len(b'{"data":""}')
        return b'{"data":""' + b" " * pad + b'}'

    def test_body_size(self):
        ch = self.chan()
        b = self.body_of(self.BODY)
        self.assertEqual(len(b), self.BODY)
        self.assertStatus(self.req("POST", self.ev_path(ch), b), 201, "a body of exactly -max-body-size")
        self.assertError(self.req("POST", self.ev_path(ch), self.body_of(self.BODY + 1)), 413,
                         what="a body 1 byte past -max-body-size")
        c = self.raw()
        self.assertError(c.send_body_late("POST", self.ev_path(ch), self.body_of(100 * self.BODY)), 413,
                         what="a body 100 times -max-body-size")
        c.close()
        # the same past the limit in a chunked body
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10 * SCALE)
        try:
            big = self.body_of(50 * self.BODY)
            conn.request("POST", self.ev_path(ch), body=iter([big[i:i + 1000] for i in range(0, len(big), 1000)]),
                         headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                         encode_chunked=True)
            r = conn.getresponse()
            raw = r.read()
        except (ConnectionResetError, BrokenPipeError):
            r, raw = None, b""
        finally:
            conn.close()
        if r is not None:
            self.assertEqual(r.status, 413, "a chunked body past the limit: %r" % raw[:200])
            self.assertIn(b"error", raw)
        # other bodies too: job, lock, acquire
        pad = {"x": "p" * self.BODY}
        self.assertError(self.req("POST", "/%s/jobs" % q(ch), dict(pad, name="j", cronDef="@hourly")), 413, what="job")
        eid = self.ids(ch)[0]
        self.assertError(self.req("PUT", self.ev_path(ch, eid), dict(pad, action="LOCK")), 413, what="lock")
        self.assertError(self.req("POST", "/%s/acquire" % q(ch), pad), 413, what="acquire")
        self.assertEqual(len(self.ids(ch)), 1)
        self.assertEqual(self.get_event(ch, eid).json["state"], "ready")
        self.assertEqual(self.req("GET", "/%s/jobs" % q(ch)).json["jobs"], [])

    def test_data_size(self):
        ch = self.chan()
        self.publish(ch, {"data": "d" * self.DATA})
        self.publish(ch, {"data": "\u00e9" * (self.DATA // 2)})  # bytes, not characters
        for data in ("d" * (self.DATA + 1), "\u00e9" * (self.DATA // 2 + 1), "\u0000" * (self.DATA + 1)):
            self.assertError(self.req("POST", self.ev_path(ch), {"data": data}), 413,
                             what="data of %d bytes" % len(data.encode()))
        r = self.req("POST", self.ev_path(ch), [{"data": "ok"}, {"data": "d" * (self.DATA + 1)}])
        self.assertError(r, 413, what="a batch with one over-size element")
        r = self.req("POST", "/%s/jobs" % q(ch), {"name": "j", "cronDef": "@hourly", "data": "d" * (self.DATA + 1)})
        self.assertError(r, 413, what="job data")
        self.assertEqual(len(self.ids(ch)), 2)
        self.assertEqual(self.req("GET", "/%s/jobs" % q(ch)).json["jobs"], [])

    def test_batch_size(self):
        ch = self.chan()
        r = self.req("POST", self.ev_path(ch), [{"data": str(i)} for i in range(self.BATCH)])
        self.assertStatus(r, 201, "a batch of exactly -max-batch")
        r = self.req("POST", self.ev_path(ch), [{"data": str(i)} for i in range(self.BATCH + 1)])
        self.assertError(r, 413, what="a batch 1 past -max-batch")
        self.assertEqual(len(self.ids(ch)), self.BATCH)


if __name__ == "__main__":
    unittest.main()
