"""PUT/PATCH /{c}/events/{id}: LOCK, UNLOCK, EXTEND, lease tokens, and
concurrent LOCKs of one event."""

import http.client
import threading
import time
import unittest

import bb
from bb import MS, S, SCALE, now_ns, ts_ns


class LockTest(bb.ServerTestCase):

    def locked_body(self, r, what="LOCK"):
        """Checks a LOCK/EXTEND 202 answer; returns (event without token, token)."""
        self.assertStatus(r, 202, what)
        ev = dict(r.json)
        tok = ev.pop("lockToken", None)
        self.assertIsInstance(tok, str, "%s answer has no lockToken: %r" % (what, r.json))
        self.assertTrue(tok, "empty lockToken")
        self.assertEvent(ev, state="locked")
        self.assertTrue(ev["isLocked"])
        return ev, tok

    def state(self, ch, eid):
        r = self.get_event(ch, eid)
        self.assertStatus(r, 200)
        self.assertEvent(r.json)
        return r.json

    def test_lock_with_empty_object(self):
        ch = self.chan()
        ev = self.publish(ch)
        t0 = now_ns()
        r = self.lock(ch, ev["eventID"], {})
        t1 = now_ns()
        locked, tok = self.locked_body(r)
        self.assertEqual(locked["eventID"], ev["eventID"])
        self.assertEqual(locked["publishedAt"], ev["publishedAt"])
        self.assertEqual(locked["livesUntil"], ev["livesUntil"])
        self.assertEqual(locked["data"], ev["data"])
        until = ts_ns(locked["lockedUntil"])
        self.assertTrue(t0 + 60 * S - 50 * MS <= until <= t1 + 60 * S + 50 * MS,
                        "default lock is not now+1m: lockedUntil %s" % locked["lockedUntil"])
        st = self.state(ch, ev["eventID"])
        self.assertEqual(st["state"], "locked")
        self.assertEqual(st["lockedUntil"], locked["lockedUntil"])

    def test_lock_with_empty_body_put_and_patch(self):
        ch = self.chan()
        a = self.publish(ch)
        b = self.publish(ch)
        c = self.publish(ch)
        self.locked_body(self.req("PUT", self.ev_path(ch, a["eventID"])), "PUT without body")
        self.locked_body(self.req("PATCH", self.ev_path(ch, b["eventID"]), b""), "PATCH with empty body")
        self.locked_body(self.req("PATCH", self.ev_path(ch, c["eventID"]), {}), "PATCH {}")
        for e in self.listing(ch)["events"]:
            self.assertTrue(e["isLocked"])

    def test_action_is_case_insensitive(self):
        ch = self.chan()
        ev = self.publish(ch)
        eid = ev["eventID"]
        for lock, unlock in (("lock", "Unlock"), ("LOCK", "UNLOCK"), ("Lock", "unlock"), ("lOcK", "uNlOcK")):
            self.locked_body(self.lock(ch, eid, {"action": lock}), lock)
            self.assertStatus(self.lock(ch, eid, {"action": unlock}), 202, unlock)
            self.assertEqual(self.state(ch, eid)["state"], "ready")
        self.locked_body(self.lock(ch, eid, {"action": None}), "action null = LOCK")

    def test_lock_twice_410(self):
        ch = self.chan()
        ev = self.publish(ch)
        _, tok = self.locked_body(self.lock(ch, ev["eventID"]))
        for body, method in (({}, "PUT"), ({"action": "LOCK"}, "PATCH"), ({"ttl": "1s"}, "PUT")):
            r = self.lock(ch, ev["eventID"], body, method=method)
            self.assertError(r, 410, what="second LOCK %r" % body)

    def test_unlock_keeps_queue_position(self):
        ch = self.chan()
        evs = [self.publish(ch, {"data": d}) for d in "ABC"]
        ids = [e["eventID"] for e in evs]
        self.locked_body(self.lock(ch, ids[1]))
        self.locked_body(self.lock(ch, ids[0]))
        r = self.lock(ch, ids[1], {"action": "UNLOCK"})
        self.assertStatus(r, 202)
        lst = self.listing(ch)["events"]
        self.assertEqual([e["eventID"] for e in lst], ids)
        self.assertEqual([e["state"] for e in lst], ["locked", "ready", "ready"])
        self.assertNotIn("lockedUntil", lst[1])
        # and it can be locked again
        self.locked_body(self.lock(ch, ids[1]))

    def test_unlock_when_not_locked_202(self):
        ch = self.chan()
        ev = self.publish(ch)
        for method in ("PUT", "PATCH"):
            r = self.lock(ch, ev["eventID"], {"action": "UNLOCK"}, method=method)
            self.assertStatus(r, 202, "UNLOCK of an unlocked event")
        self.assertEqual(self.state(ch, ev["eventID"])["state"], "ready")

    def test_unknown_id_410(self):
        ch = self.chan()
        ev = self.publish(ch)
        self.assertStatus(self.delete(ch, ev["eventID"]), 202)
        for eid in (ev["eventID"], "00000000000000000000"):
            for body in ({}, {"action": "LOCK"}, {"action": "UNLOCK"}, {"action": "EXTEND"}):
                self.assertError(self.lock(ch, eid, body), 410, what="%r on unknown id %s" % (body, eid))
        other = self.publish(self.chan())
        self.assertError(self.lock(ch, other["eventID"]), 410, what="LOCK of an id from another channel")
        r = self.lock(ch, "not-an-id")
        self.assertIn(r.status, (404, 410), "LOCK of a malformed id")
        self.assertError(r, r.status)

    def test_lock_ttl_expires_in_place(self):
        ch = self.chan()
        ids = [self.publish(ch, {"data": d})["eventID"] for d in "ABC"]
        t0 = now_ns()
        ev, _ = self.locked_body(self.lock(ch, ids[0], {"ttl": "%dms" % int(300 * SCALE)}))
        until = ts_ns(ev["lockedUntil"])
        self.assertTrue(t0 + 300 * MS * SCALE - 50 * MS <= until <= now_ns() + 300 * MS * SCALE + 50 * MS,
                        "lockedUntil %s is not now+300ms" % ev["lockedUntil"])
        st = self.state(ch, ids[0])
        if now_ns() < until - 30 * MS:
            self.assertEqual(st["state"], "locked")

        def unlocked():
            lst = self.listing(ch)["events"]
            if lst[0]["isLocked"]:
                return False
            self.assertGreaterEqual(now_ns(), until, "lock ended early")
            return lst

        lst = self.wait_until(unlocked, 3.0, msg="the lock to expire")
        self.assertEqual([e["eventID"] for e in lst], ids, "an expired lock moved the event")
        self.assertEvent(lst[0], state="ready")
        self.locked_body(self.lock(ch, ids[0]), "LOCK after the lock expired")

    def test_invalid_action_400(self):
        ch = self.chan()
        ev = self.publish(ch)
        for body in ({"action": "FOO"}, {"action": ""}, {"action": "LOCKX"}, {"action": " lock"},
                     {"action": 1}, {"action": True}, {"action": ["LOCK"]}, {"action": {}}):
            r = self.lock(ch, ev["eventID"], body)
            self.assertError(r, 400, what="body %r" % body)
        self.assertEqual(self.state(ch, ev["eventID"])["state"], "ready", "a rejected request locked it")

    def test_invalid_ttl_400(self):
        ch = self.chan()
        ev = self.publish(ch)
        for ttl in ("0s", "0", "-1s", "abc", "", "10", 5, True):
            for action in ("LOCK", "EXTEND"):
                r = self.lock(ch, ev["eventID"], {"action": action, "ttl": ttl})
                if action == "EXTEND" and r.status == 410:
                    continue  # EXTEND of an unlocked event may be judged first
                self.assertError(r, 400, mention="ttl", what="%s ttl %r" % (action, ttl))
        self.assertEqual(self.state(ch, ev["eventID"])["state"], "ready")
        # and on a locked event EXTEND must check its ttl
        ev2, _ = self.locked_body(self.lock(ch, ev["eventID"]))
        for ttl in ("0s", "-5m", "x"):
            r = self.lock(ch, ev["eventID"], {"action": "EXTEND", "ttl": ttl})
            self.assertError(r, 400, mention="ttl", what="EXTEND ttl %r" % ttl)
        self.assertEqual(self.state(ch, ev["eventID"])["lockedUntil"], ev2["lockedUntil"])

    def test_malformed_body_400(self):
        ch = self.chan()
        ev = self.publish(ch)
        for body in (b"{", b"{}x", b'"LOCK"', b"[]", b"\xff", b"{} {}"):
            r = self.req("PUT", self.ev_path(ch, ev["eventID"]), body, {"Content-Type": "application/json"})
            self.assertError(r, 400, what="PUT body %r" % body)
        self.assertEqual(self.state(ch, ev["eventID"])["state"], "ready")

    def test_extend(self):
        ch = self.chan()
        ev = self.publish(ch)
        eid = ev["eventID"]
        locked, tok = self.locked_body(self.lock(ch, eid, {"ttl": "2s"}))
        u1 = ts_ns(locked["lockedUntil"])
        t0 = now_ns()
        ext, tok2 = self.locked_body(self.lock(ch, eid, {"action": "EXTEND", "ttl": "5m", "lockToken": tok}),
                                     "EXTEND")
        t1 = now_ns()
        u2 = ts_ns(ext["lockedUntil"])
        self.assertTrue(t0 + 300 * S - 50 * MS <= u2 <= t1 + 300 * S + 50 * MS,
                        "EXTEND 5m gave lockedUntil %s" % ext["lockedUntil"])
        self.assertGreater(u2, u1)
        self.assertEqual(tok2, tok, "EXTEND changed the lock token")
        self.assertEqual(self.state(ch, eid)["lockedUntil"], ext["lockedUntil"])
        # default ttl 1m, PATCH, lower-case action
        t0 = now_ns()
        ext, tok3 = self.locked_body(self.lock(ch, eid, {"action": "extend"}, method="PATCH",
                                               headers={"Lock-Token": tok}), "EXTEND")
        u3 = ts_ns(ext["lockedUntil"])
        self.assertTrue(t0 + 60 * S - 50 * MS <= u3 <= now_ns() + 60 * S + 50 * MS,
                        "EXTEND without ttl is not now+1m: %s" % ext["lockedUntil"])
        self.assertEqual(tok3, tok)

    def test_extend_without_token_does_not_reveal_it(self):
        """Anyone may extend a lock without its token (as the original
        allows LOCK without one), but the answer then carries no lockToken:
        the token cannot be learned by extending someone else's lock."""
        ch = self.chan()
        eid = self.publish(ch)["eventID"]
        self.locked_body(self.lock(ch, eid))
        r = self.lock(ch, eid, {"action": "EXTEND", "ttl": "5m"})
        self.assertStatus(r, 202)
        self.assertTrue(r.json["isLocked"])
        self.assertNotIn("lockToken", r.json)

    def test_extend_can_shorten(self):
        ch = self.chan()
        ev = self.publish(ch)
        eid = ev["eventID"]
        _, tok = self.locked_body(self.lock(ch, eid))
        ext, _ = self.locked_body(self.lock(ch, eid, {"action": "EXTEND", "ttl": "%dms" % int(300 * SCALE),
                                                      "lockToken": tok}))
        until = ts_ns(ext["lockedUntil"])
        self.wait_until(lambda: self.state(ch, eid)["state"] == "ready", 3.0, msg="the shortened lock to end")
        self.assertGreaterEqual(now_ns(), until)

    def test_extend_unlocked_410(self):
        ch = self.chan()
        ev = self.publish(ch)
        self.assertError(self.lock(ch, ev["eventID"], {"action": "EXTEND"}), 410, what="EXTEND of a ready event")
        self.locked_body(self.lock(ch, ev["eventID"]))
        self.assertStatus(self.lock(ch, ev["eventID"], {"action": "UNLOCK"}), 202)
        self.assertError(self.lock(ch, ev["eventID"], {"action": "EXTEND", "ttl": "1m"}), 410,
                         what="EXTEND after UNLOCK")
        sched = self.publish(ch, {"publishIn": "1h"})
        self.assertError(self.lock(ch, sched["eventID"], {"action": "EXTEND"}), 410,
                         what="EXTEND of a scheduled event")

    def test_tokens_are_new_per_lock(self):
        ch = self.chan()
        ev = self.publish(ch)
        toks = set()
        for _ in range(5):
            _, tok = self.locked_body(self.lock(ch, ev["eventID"]))
            toks.add(tok)
            self.assertStatus(self.lock(ch, ev["eventID"], {"action": "UNLOCK"}), 202)
        self.assertEqual(len(toks), 5, "lock tokens repeat")
        other = self.publish(ch)
        _, t2 = self.locked_body(self.lock(ch, other["eventID"]))
        self.assertNotIn(t2, toks)

    def test_wrong_token_409_changes_nothing(self):
        ch = self.chan()
        ev = self.publish(ch)
        eid = ev["eventID"]
        locked, tok = self.locked_body(self.lock(ch, eid, {"ttl": "1m"}))
        wrong = "x" + tok
        tries = [
            ("PUT", {"action": "UNLOCK", "lockToken": wrong}, None),
            ("PATCH", {"action": "UNLOCK"}, {"Lock-Token": wrong}),
            ("PUT", {"action": "EXTEND", "ttl": "5m", "lockToken": wrong}, None),
            ("PATCH", {"action": "EXTEND", "ttl": "5m"}, {"Lock-Token": wrong}),
        ]
        for method, body, hdrs in tries:
            r = self.req(method, self.ev_path(ch, eid), body, hdrs)
            self.assertError(r, 409, what="%s %r %r" % (method, body, hdrs))
        r = self.delete(ch, eid, {"Lock-Token": wrong})
        self.assertError(r, 409, what="DELETE with a wrong Lock-Token")
        st = self.state(ch, eid)
        self.assertEqual(st["state"], "locked", "a 409 changed the lock")
        self.assertEqual(st["lockedUntil"], locked["lockedUntil"], "a 409 changed lockedUntil")
        self.assertEqual(self.ids(ch), [eid])

    def test_right_token_202(self):
        ch = self.chan()
        ev = self.publish(ch)
        eid = ev["eventID"]
        _, tok = self.locked_body(self.lock(ch, eid))
        ext, tok2 = self.locked_body(self.lock(ch, eid, {"action": "EXTEND", "ttl": "2m", "lockToken": tok}))
        self.assertEqual(tok2, tok)
        ext, _ = self.locked_body(self.req("PATCH", self.ev_path(ch, eid), {"action": "EXTEND"},
                                           {"Lock-Token": tok}))
        self.assertStatus(self.req("PUT", self.ev_path(ch, eid), {"action": "UNLOCK"}, {"Lock-Token": tok}), 202)
        self.assertEqual(self.state(ch, eid)["state"], "ready")
        _, tok3 = self.locked_body(self.lock(ch, eid))
        self.assertNotEqual(tok3, tok)
        self.assertStatus(self.lock(ch, eid, {"action": "unlock", "lockToken": tok3}), 202)
        _, tok4 = self.locked_body(self.lock(ch, eid))
        self.assertStatus(self.delete(ch, eid, {"Lock-Token": tok4}), 202, "DELETE with the right token")
        self.assertEqual(self.ids(ch), [])

    def test_old_token_after_unlock_409(self):
        ch = self.chan()
        ev = self.publish(ch)
        eid = ev["eventID"]
        _, tok = self.locked_body(self.lock(ch, eid))
        self.assertStatus(self.lock(ch, eid, {"action": "UNLOCK"}), 202)
        self.assertError(self.lock(ch, eid, {"action": "UNLOCK", "lockToken": tok}), 409,
                         what="UNLOCK with the token of an ended lock")
        self.assertError(self.delete(ch, eid, {"Lock-Token": tok}), 409, what="DELETE with an ended lock's token")
        self.assertEqual(self.ids(ch), [eid])
        _, tok2 = self.locked_body(self.lock(ch, eid))
        self.assertError(self.delete(ch, eid, {"Lock-Token": tok}), 409, what="DELETE with the previous token")
        self.assertError(self.lock(ch, eid, {"action": "EXTEND", "lockToken": tok}), 409)
        self.assertEqual(self.state(ch, eid)["state"], "locked")
        self.assertStatus(self.delete(ch, eid, {"Lock-Token": tok2}), 202)

    def test_token_of_expired_lock_409(self):
        ch = self.chan()
        ev = self.publish(ch)
        eid = ev["eventID"]
        _, tok = self.locked_body(self.lock(ch, eid, {"ttl": "%dms" % int(200 * SCALE)}))
        self.wait_until(lambda: self.state(ch, eid)["state"] == "ready", 3.0, msg="the lock to expire")
        locked2, tok2 = self.locked_body(self.lock(ch, eid))
        self.assertNotEqual(tok2, tok)
        self.assertError(self.lock(ch, eid, {"action": "UNLOCK", "lockToken": tok}), 409)
        self.assertError(self.lock(ch, eid, {"action": "EXTEND", "ttl": "1h"}, {"Lock-Token": tok}), 409)
        self.assertError(self.delete(ch, eid, {"Lock-Token": tok}), 409)
        st = self.state(ch, eid)
        self.assertEqual(st["state"], "locked")
        self.assertEqual(st["lockedUntil"], locked2["lockedUntil"])

    def test_without_token_part_a_behaviour(self):
        ch = self.chan()
        ev = self.publish(ch)
        eid = ev["eventID"]
        self.locked_body(self.lock(ch, eid))
        self.assertStatus(self.lock(ch, eid, {"action": "EXTEND"}), 202)
        self.assertStatus(self.lock(ch, eid, {"action": "UNLOCK"}), 202)
        self.locked_body(self.lock(ch, eid))
        self.assertStatus(self.delete(ch, eid), 202)

    def test_lock_scheduled_410(self):
        ch = self.chan()
        ev = self.publish(ch, {"publishIn": "1h"})
        self.assertError(self.lock(ch, ev["eventID"]), 410)
        r = self.get_event(ch, ev["eventID"])
        self.assertEqual(r.json["state"], "scheduled")


class LockRaceTest(bb.ServerTestCase):
    """Of many concurrent LOCKs on one event exactly one gets 202."""

    N = 20

    def race(self, ch, eid, body_for=lambda i: {}, method_for=lambda i: "PUT"):
        conns = []
        for _ in range(self.N):
            c = http.client.HTTPConnection(self.host, self.port, timeout=10 * SCALE)
            c.connect()
            conns.append(c)
        barrier = threading.Barrier(self.N)
        results = [None] * self.N
        path = self.ev_path(ch, eid)

        def go(i):
            try:
                body = bb.encode_body(body_for(i))
                barrier.wait(10)
                conns[i].request(method_for(i), path, body=body, headers={"Content-Type": "application/json"})
                r = conns[i].getresponse()
                results[i] = (r.status, bb.parse_json(r.read()))
            except Exception as e:  # reported below
                results[i] = ("exception", repr(e))

        threads = [threading.Thread(target=go, args=(i,)) for i in range(self.N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30 * SCALE)
        for c in conns:
            c.close()
        statuses = sorted(str(s) for s, _ in results)
        self.assertEqual(statuses.count("202"), 1, "202s in a LOCK race: %s" % statuses)
        self.assertEqual(statuses.count("410"), self.N - 1, "statuses in a LOCK race: %s" % statuses)
        return [b for s, b in results if s == 202][0]

    def test_lock_race(self):
        ch = self.chan()
        for i in range(5):
            ev = self.publish(ch, {"data": str(i)})
            won = self.race(ch, ev["eventID"], method_for=lambda i: "PUT" if i % 2 else "PATCH")
            self.assertEqual(won["eventID"], ev["eventID"])
            self.assertTrue(won.get("lockToken"))
        for e in self.listing(ch)["events"]:
            self.assertTrue(e["isLocked"])

    def test_lock_race_after_unlock(self):
        ch = self.chan()
        ev = self.publish(ch)
        for i in range(3):
            won = self.race(ch, ev["eventID"], body_for=lambda i: {"action": "lock", "ttl": "1m"})
            self.assertStatus(self.lock(ch, ev["eventID"], {"action": "UNLOCK"}), 202)


if __name__ == "__main__":
    unittest.main()
