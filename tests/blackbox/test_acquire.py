"""POST /{c}/acquire (Part B): up to max available events, oldest first,
each locked with a token; long-poll with wait."""

import http.client
import threading
import time
import unittest

import bb
from bb import MS, S, SCALE, now_ns, q, ts_ns

class AcquireTest(bb.ServerTestCase):

    WEIGHT = 3  # long-polls: start it early

    def acq(self, ch, body=None, client=None):
        return (client or self.c).req("POST", "/%s/acquire" % q(ch), {} if body is None else body)

    def acquired(self, r, ch, n=None):
        """Checks a 200 acquire answer; returns the events (tokens kept in
        each under 'lockToken')."""
        self.assertStatus(r, 200, "acquire")
        body = r.json
        self.assertIsInstance(body, dict)
        self.assertEqual(body.get("channelName"), ch)
        self.assertIsInstance(body.get("events"), list)
        self.assertEqual(body.get("count"), len(body["events"]))
        if n is not None:
            self.assertEqual(body["count"], n, "acquired %d events, want %d" % (body["count"], n))
        for e in body["events"]:
            e2 = dict(e)
            tok = e2.pop("lockToken", None)
            self.assertIsInstance(tok, str, "acquired event without lockToken: %r" % e)
            self.assertTrue(tok)
            self.assertEvent(e2, state="locked")
        return body["events"]

    def test_basic(self):
        ch = self.chan()
        evs = [self.publish(ch, {"data": d}) for d in "ABC"]
        t0 = now_ns()
        got = self.acquired(self.acq(ch, {"max": 2}), ch, 2)
        self.assertEqual([e["eventID"] for e in got], [evs[0]["eventID"], evs[1]["eventID"]])
        self.assertEqual([e["data"] for e in got], ["A", "B"])
        for e in got:
            until = ts_ns(e["lockedUntil"])
            self.assertTrue(t0 + 60 * S - 50 * MS <= until <= now_ns() + 60 * S + 50 * MS, "default lock ttl 1m")
        self.assertNotEqual(got[0]["lockToken"], got[1]["lockToken"])
        lst = self.listing(ch)["events"]
        self.assertEqual([e["state"] for e in lst], ["locked", "locked", "ready"])
        got2 = self.acquired(self.acq(ch, {"max": 10}), ch, 1)
        self.assertEqual(got2[0]["eventID"], evs[2]["eventID"])
        t = time.monotonic()
        self.acquired(self.acq(ch, {"wait": "0s"}), ch, 0)
        self.acquired(self.acq(ch), ch, 0)
        self.assertLess(time.monotonic() - t, 1.0 * SCALE, "acquire without wait waited")

    def test_default_max_is_one(self):
        ch = self.chan()
        for _ in range(3):
            self.publish(ch)
        self.acquired(self.acq(ch, {}), ch, 1)
        self.acquired(self.acq(ch, {"max": None, "ttl": None, "wait": None}), ch, 1)

    def test_skips_locked_and_scheduled(self):
        ch = self.chan()
        a = self.publish(ch)
        self.publish(ch, {"publishIn": "1h"})
        b = self.publish(ch)
        self.assertStatus(self.lock(ch, a["eventID"]), 202)
        got = self.acquired(self.acq(ch, {"max": 5}), ch, 1)
        self.assertEqual(got[0]["eventID"], b["eventID"])

    def test_ttl_and_tokens(self):
        ch = self.chan()
        ev = self.publish(ch)
        [got] = self.acquired(self.acq(ch, {"ttl": "%dms" % int(300 * SCALE)}), ch, 1)
        tok = got["lockToken"]
        self.assertError(self.delete(ch, ev["eventID"], {"Lock-Token": "wrong"}), 409)
        r = self.wait_until(lambda: self.acq(ch).json["events"], 3.0, msg="the acquired lock to expire")
        tok2 = r[0]["lockToken"]
        self.assertNotEqual(tok2, tok)
        self.assertError(self.delete(ch, ev["eventID"], {"Lock-Token": tok}), 409)
        self.assertStatus(self.lock(ch, ev["eventID"], {"action": "EXTEND", "lockToken": tok2}), 202)
        self.assertStatus(self.delete(ch, ev["eventID"], {"Lock-Token": tok2}), 202)
        self.assertEqual(self.ids(ch), [])

    def test_invalid_parameters(self):
        ch = self.chan()
        self.publish(ch)
        cases = [({"max": 0}, "max"), ({"max": 1001}, "max"), ({"max": "x"}, "max"), ({"max": -1}, "max"),
                 ({"max": 1.5}, "max"), ({"max": True}, "max"), ({"ttl": "0s"}, "ttl"), ({"ttl": "abc"}, "ttl"),
                 ({"ttl": 5}, "ttl"), ({"wait": "61s"}, "wait"), ({"wait": "-1s"}, "wait"),
                 ({"wait": "abc"}, "wait"), ({"wait": 1}, "wait")]
        for body, field in cases:
            self.assertError(self.acq(ch, body), 400, mention=field, what="acquire %r" % body)
        for raw in (b"{", b"{}x", b"[]", b'"x"'):
            r = self.req("POST", "/%s/acquire" % q(ch), raw, {"Content-Type": "application/json"})
            self.assertError(r, 400, what="acquire body %r" % raw)
        self.assertEqual([e["state"] for e in self.listing(ch)["events"]], ["ready"], "a rejected acquire locked")
        self.acquired(self.acq(ch, {"max": 1000, "wait": "60s"}), ch, 1)

    def test_method_and_slash(self):
        ch = self.chan()
        r = self.req("GET", "/%s/acquire" % q(ch))
        self.assertError(r, 405)
        self.assertIn("POST", (r.headers.get("Allow") or "").upper())
        self.publish(ch)
        r = self.req("POST", "/%s/acquire/" % q(ch), {})
        self.acquired(r, ch, 1)

    def test_wait_times_out(self):
        ch = self.chan()
        t = time.monotonic()
        self.acquired(self.acq(ch, {"wait": "500ms"}), ch, 0)
        took = time.monotonic() - t
        self.assertGreaterEqual(took, 0.45, "answered before wait was over")
        self.assertLess(took, 3.0 * SCALE)

    def background_acquire(self, ch, body):
        """Starts an acquire on its own connection; returns (thread, result
        dict with 'r' and 't' = seconds until answered)."""
        res = {}
        cl = self.client()
        cl._connect()

        def go():
            t = time.monotonic()
            try:
                res["r"] = cl.req("POST", "/%s/acquire" % q(ch), body)
            except Exception as e:
                res["e"] = e
            res["t"] = time.monotonic() - t

        th = threading.Thread(target=go)
        th.start()
        return th, res

    def woken(self, th, res, ch, eid, after):
        th.join(10 * SCALE)
        self.assertNotIn("e", res, res.get("e"))
        got = self.acquired(res["r"], ch, 1)
        self.assertEqual(got[0]["eventID"], eid)
        self.assertLess(res["t"], after + 1.0 * SCALE, "the long-poll was not woken promptly")

    def test_woken_by_publish(self):
        ch = self.chan()
        th, res = self.background_acquire(ch, {"wait": "5s"})
        time.sleep(0.3)
        self.assertNotIn("r", res, "acquire answered before anything was published")
        ev = self.publish(ch)
        self.woken(th, res, ch, ev["eventID"], 0.3)

    def test_woken_by_delayed_event(self):
        ch = self.chan()
        ev = self.publish(ch, {"publishIn": "400ms"})
        th, res = self.background_acquire(ch, {"wait": "5s"})
        self.woken(th, res, ch, ev["eventID"], 0.4)
        self.assertGreaterEqual(now_ns(), ts_ns(ev["publishedAt"]))

    def test_woken_by_unlock(self):
        ch = self.chan()
        ev = self.publish(ch)
        self.assertStatus(self.lock(ch, ev["eventID"]), 202)
        th, res = self.background_acquire(ch, {"wait": "5s"})
        time.sleep(0.3)
        self.assertNotIn("r", res)
        self.assertStatus(self.lock(ch, ev["eventID"], {"action": "UNLOCK"}), 202)
        self.woken(th, res, ch, ev["eventID"], 0.3)

    def test_woken_by_lock_expiry(self):
        ch = self.chan()
        ev = self.publish(ch)
        r = self.lock(ch, ev["eventID"], {"ttl": "400ms"})
        self.assertStatus(r, 202)
        th, res = self.background_acquire(ch, {"wait": "5s"})
        self.woken(th, res, ch, ev["eventID"], 0.4)
        self.assertGreaterEqual(now_ns(), ts_ns(r.json["lockedUntil"]))

    def test_one_event_many_waiters(self):
        ch = self.chan()
        waiters = [self.background_acquire(ch, {"wait": "1500ms"}) for _ in range(5)]
        time.sleep(0.3)
        ev = self.publish(ch)
        counts = []
        for th, res in waiters:
            th.join(10 * SCALE)
            self.assertNotIn("e", res, res.get("e"))
            counts.append(len(self.acquired(res["r"], ch)))
        self.assertEqual(sorted(counts), [0, 0, 0, 0, 1], "one event handed to %s" % counts)
        self.assertEqual(self.listing(ch)["events"][0]["eventID"], ev["eventID"])

    def test_disconnected_waiter_gets_nothing(self):
        ch = self.chan()
        raw = self.raw()
        raw.send(bb.http_request_bytes("POST", "/%s/acquire" % q(ch), b'{"wait":"5s"}',
                                       {"Content-Type": "application/json"}))
        time.sleep(0.3)
        raw.close()
        time.sleep(0.2)
        ev = self.publish(ch)
        got = self.acquired(self.acq(ch), ch, 1)
        self.assertEqual(got[0]["eventID"], ev["eventID"], "the event went to a client that had hung up")

    def test_pipelined_behind_long_poll(self):
        """A parked acquire holds back the answers pipelined after it, and
        they come in order once it is answered."""
        ch = self.chan()
        c = self.raw()
        t = time.monotonic()
        c.send(bb.http_request_bytes("POST", "/%s/acquire" % q(ch), b'{"wait":"700ms"}',
                                     {"Content-Type": "application/json"})
               + bb.http_request_bytes("GET", "/healthz"))
        r1 = c.read_response()
        self.acquired(r1, ch, 0)
        self.assertGreaterEqual(time.monotonic() - t, 0.65)
        r2 = c.read_response()
        self.assertStatus(r2, 200)
        self.assertEqual(r2.json, {"status": "ok"})

    def test_concurrent_acquirers_each_event_once(self):
        ch = self.chan()
        n = 1000
        want = set()
        for i in range(n):
            want.add(self.publish(ch, {"data": str(i)})["eventID"])
        got = [[] for _ in range(10)]
        errors = []
        barrier = threading.Barrier(10)

        def work(k):
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=20 * SCALE)
                barrier.wait(10)
                while True:
                    conn.request("POST", "/%s/acquire" % q(ch), body=b'{"max":7,"ttl":"5m"}',
                                 headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    body = bb.parse_json(r.read())
                    if r.status != 200:
                        errors.append((r.status, body))
                        return
                    if body["count"] == 0:
                        return
                    got[k].extend(e["eventID"] for e in body["events"])
            except Exception as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * SCALE)
        self.assertEqual(errors, [])
        flat = [x for l in got for x in l]
        self.assertEqual(len(flat), len(set(flat)), "an event was handed out twice")
        self.assertEqual(set(flat), want)
        for l in got:
            self.assertEqual(l, sorted(l), "one acquirer got events out of order")


class AcquireStopTest(bb.ServerTestCase):
    """SIGTERM answers parked long-polls and exits 0 promptly."""

    OWN_SERVER = True
    CLASS_SERVER = False

    def test_sigterm_with_parked_acquire(self):
        srv = bb.Server()
        self.addCleanup(srv.cleanup)
        srv.start()
        ch = self.chan()
        c = bb.RawConn(srv.host, srv.port)
        self.addCleanup(c.close)
        c.send(bb.http_request_bytes("POST", "/%s/acquire" % q(ch), b'{"wait":"30s"}',
                                     {"Content-Type": "application/json"}))
        time.sleep(0.3)
        t = time.monotonic()
        srv.proc.send_signal(bb.signal.SIGTERM)
        r = c.closed_or_response()
        if r is not None:
            self.assertEqual(r.status, 200, "parked acquire answered %d at SIGTERM" % r.status)
            self.assertEqual(r.json.get("count"), 0)
        rc = srv.stop(timeout=5.0)
        self.assertLess(time.monotonic() - t, 5.0 * SCALE)
        self.assertEqual(rc, 0, "exit status after SIGTERM with a parked acquire\n%s" % srv.log())


if __name__ == "__main__":
    unittest.main()
