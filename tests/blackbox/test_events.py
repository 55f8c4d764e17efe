"""Events: publish, list, get, delete, expiry (API.md Part A, plus publishIn
and GET by id from Part B)."""

import json
import time
import unittest

import bb
from bb import MS, S, SCALE, fmt_ts, now_ns, q, ts_ns


class PublishTest(bb.ServerTestCase):

    def test_publish_returns_event_and_location(self):
        ch = self.chan()
        t0 = now_ns()
        r = self.req("POST", self.ev_path(ch), {"data": "hello"})
        t1 = now_ns()
        self.assertStatus(r, 201)
        ev = r.json
        self.assertEvent(ev, state="ready")
        self.assertEqual(ev["data"], "hello")
        self.assertFalse(ev["isLocked"])
        self.assertEqual(r.headers.get("Location"), "/%s/events/%s" % (ch, ev["eventID"]))
        pub = ts_ns(ev["publishedAt"])
        if not bb.URL:
            self.assertTrue(t0 - 50 * MS <= pub <= t1 + 50 * MS,
                            "publishedAt %s is not the time of the request" % ev["publishedAt"])
        self.assertEqual(ts_ns(ev["livesUntil"]) - pub, bb.DEFAULT_TTL_NS, "default ttl is 10m")
        ct = r.headers.get("Content-Type") or ""
        self.assertTrue(ct.startswith("application/json"), ct)

    def test_ids_unique_and_increasing(self):
        ch = self.chan()
        ids = [self.publish(ch, {"data": str(i)})["eventID"] for i in range(60)]
        self.assertEqual(len(set(ids)), 60, "duplicate ids")
        self.assertEqual(ids, sorted(ids), "ids of events published one after another are not increasing")
        for i in ids:
            self.assertRegex(i, bb.ID_RE)

    def test_ttl_values(self):
        ch = self.chan()
        for ttl, ns in (("1h30m", 5400 * S), ("1.5s", 1500 * MS), ("90m", 5400 * S), ("2h", 7200 * S),
                        ("1m0.25s", 60250 * MS), ("10000ms", 10 * S), ("1000000us", S),
                        ("1000000\u00b5s", S), ("1000000\u03bcs", S), ("1000000000ns", S), (".5s", 500 * MS),
                        ("1h0m0s", 3600 * S)):
            ev = self.publish(ch, {"data": "x", "ttl": ttl})
            self.assertEqual(ts_ns(ev["livesUntil"]) - ts_ns(ev["publishedAt"]), ns, "ttl %r" % ttl)

    def test_data_missing_or_null_is_empty_string(self):
        ch = self.chan()
        for body in ({}, {"data": None}, {"ttl": "1m"}):
            ev = self.publish(ch, body)
            self.assertEqual(ev["data"], "", "body %r" % body)
        for e in self.listing(ch)["events"]:
            self.assertEqual(e["data"], "")

    def test_null_fields_count_as_absent(self):
        ch = self.chan()
        ev = self.publish(ch, {"data": "n", "ttl": None, "publishAt": None, "publishIn": None})
        self.assertEqual(ev["state"], "ready")
        self.assertEqual(ts_ns(ev["livesUntil"]) - ts_ns(ev["publishedAt"]), bb.DEFAULT_TTL_NS)

    def test_data_of_other_types_echoed(self):
        """Part C: data may be any JSON value, echoed as the same value."""
        ch = self.chan()
        for data in (1, 1.5, -3, {"a": 1}, ["x"], [], {}, True, False):
            r = self.req("POST", self.ev_path(ch), {"data": data})
            self.assertStatus(r, 201, "data %r" % (data,))
            self.assertEqual(r.json["data"], data)
            self.assertIs(type(r.json["data"]), type(data))
        self.assertCount(ch, 9, "after publishes of other types")

    def test_ttl_invalid(self):
        ch = self.chan()
        for ttl in ("0s", "0", "-1s", "abc", "", "1x", "5", "1 s", "s", "1h-5m", "9999999999h", "1e3s", "1S",
                    5, 1.5, True, {}, []):
            r = self.req("POST", self.ev_path(ch), {"data": "x", "ttl": ttl})
            self.assertError(r, 400, mention="ttl", what="ttl %r" % (ttl,))
        self.assertCount(ch, 0, "after rejected ttls")

    def test_ttl_past_the_year_2262(self):
        """A ttl so long that livesUntil leaves the 64-bit nanosecond range:
        either 400, or an event that is there (not instantly expired)."""
        ch = self.chan()
        r = self.req("POST", self.ev_path(ch), {"data": "long", "ttl": "2500000h"})
        if r.status == 400:
            self.assertError(r, 400, mention="ttl")
            self.assertCount(ch, 0)
            return
        self.assertStatus(r, 201)
        self.assertGreater(ts_ns(r.json["livesUntil"]), ts_ns(r.json["publishedAt"]))
        self.assertEqual(self.ids(ch), [r.json["eventID"]])
        self.assertStatus(self.get_event(ch, r.json["eventID"]), 200)

    def test_deeply_nested_unknown_field(self):
        ch = self.chan()
        for depth in (100, 5000, 100000):
            body = b'{"data":"deep","x":' + b"[" * depth + b"]" * depth + b"}"
            r = self.req("POST", self.ev_path(ch), body, {"Content-Type": "application/json"})
            self.assertIn(r.status, (201, 400), "nesting %d" % depth)
            if r.status == 400:
                self.assertError(r, 400)
        self.assertStatus(self.req("GET", "/healthz"), 200)

    def test_unknown_fields_refused(self):
        ch = self.chan()
        r = self.req("POST", self.ev_path(ch), {"data": "u", "foo": 1, "bar": {"a": [1, None, "x"]},
                                                 "eventID": "zzz", "isLocked": True})
        self.assertError(r, 400, mention='"foo"')
        self.assertCount(ch, 0)

    def test_data_special_characters_round_trip(self):
        ch = self.chan()
        data = ('h\u00e9llo "quoted" \\back\\slash\\ /slash\nnew\r\n\ttab \u0000nul\u0000 '
                '\u2603 \U0001d11e \u00ff \x01\x1f\x7f \u2028\u2029 </script> {"json":[1]}')
        ev = self.publish(ch, {"data": data})
        self.assertEqual(ev["data"], data)
        [listed] = self.listing(ch)["events"]
        self.assertEqual(listed["data"], data)
        r = self.get_event(ch, ev["eventID"])
        self.assertStatus(r, 200)
        self.assertEqual(r.json["data"], data)
        # escaped input decodes the same way
        raw = b'{"data":"\\u0041\\n\\ud834\\udd1e\\"\\\\\\/"}'
        r = self.req("POST", self.ev_path(ch), raw, {"Content-Type": "application/json"})
        self.assertStatus(r, 201)
        self.assertEqual(r.json["data"], 'A\n\U0001d11e"\\/')

    def test_big_data_within_limit(self):
        ch = self.chan()
        data = "0123456789abcdef" * (200 * 1024 // 16)  # 200 KiB
        ev = self.publish(ch, {"data": data})
        self.assertEqual(ev["data"], data)
        r = self.get_event(ch, ev["eventID"])
        self.assertEqual(r.json["data"], data)

    def test_body_over_1mib_is_413(self):
        ch = self.chan()
        self.publish(ch, {"data": "keep"})
        body = b'{"data":"' + b"a" * (1024 * 1024 + 16) + b'"}'
        r = self.raw().send_body_late("POST", self.ev_path(ch), body)
        self.assertError(r, 413, what="1 MiB + 26 bytes body")
        self.assertCount(ch, 1, "after an over-size body")

    def test_data_over_256kib_is_413(self):
        ch = self.chan()
        body = json.dumps({"data": "d" * (300 * 1024)}).encode() + b" " * (100 * 1024)
        r = self.req("POST", self.ev_path(ch), body, {"Content-Type": "application/json"})
        self.assertError(r, 413, what="300 KiB data")
        # multi-byte characters: 100k x 3 bytes = 300 KB of UTF-8
        r = self.req("POST", self.ev_path(ch), {"data": "\u2603" * 100000})
        self.assertError(r, 413, what="300 KB of UTF-8 data")
        self.assertCount(ch, 0, "after over-size data")

    def test_malformed_bodies_rejected(self):
        ch = self.chan()
        self.publish(ch, {"data": "first"})
        bad = [b"{", b'{"data":', b'{"data":"x"', b'{"data":"x"}x', b"{}x", b"{} {}", b"{}{}",
               b'{"data":"\xff"}', b'{"data":"\xc3\x28"}', b"\xff\xfe", b'"str"', b"123", b"true",
               b"{'data':'x'}", b'{"data":"x",}', b"{data:1}", b"[", b'{"data":"x"}]', b" ", b"\n",
               b"nul", b'{"data":"unterminated}', b'{"data":"bad escape \\q"}', b'{"data":"a\x01b"}',
               b'{"data":"\\ud800"}']
        for body in bad:
            r = self.req("POST", self.ev_path(ch), body, {"Content-Type": "application/json"})
            self.assertError(r, 400, what="body %r" % body)
        self.assertCount(ch, 1, "after malformed bodies")

    def test_empty_body_rejected(self):
        ch = self.chan()
        r = self.req("POST", self.ev_path(ch), b"")
        self.assertError(r, 400, what="empty body")
        r = self.req("POST", self.ev_path(ch))
        self.assertError(r, 400, what="no body")
        self.assertCount(ch, 0)

    def test_whitespace_around_json_is_fine(self):
        ch = self.chan()
        r = self.req("POST", self.ev_path(ch), b' \r\n\t{ "data" : "w" }\n ', {"Content-Type": "application/json"})
        self.assertStatus(r, 201)
        self.assertEqual(r.json["data"], "w")


class ScheduleTest(bb.ServerTestCase):
    """publishAt and publishIn: delayed events."""

    def test_publish_at_in_past_with_offset(self):
        ch = self.chan()
        ev = self.publish(ch, {"data": "old", "publishAt": "2020-01-01T01:00:00+01:00", "ttl": "175200h"})
        self.assertEqual(ev["publishedAt"], "2020-01-01T00:00:00.000000000Z")
        self.assertEqual(ev["livesUntil"], "2039-12-27T00:00:00.000000000Z")
        self.assertEqual(ev["state"], "ready")
        self.assertIn(ev["eventID"], self.ids(ch))

    def test_publish_at_input_forms(self):
        ch = self.chan()
        for given, want in (("2021-06-30T23:59:59.5Z", "2021-06-30T23:59:59.500000000Z"),
                            ("2021-06-30t22:00:00.123456789-01:30", "2021-06-30T23:30:00.123456789Z"),
                            ("2021-07-01T00:00:00.1234567891234Z", "2021-07-01T00:00:00.123456789Z"),
                            ("2021-07-01T02:00:00+02:00", "2021-07-01T00:00:00.000000000Z")):
            ev = self.publish(ch, {"data": given, "publishAt": given, "ttl": "175200h"})
            self.assertEqual(ev["publishedAt"], want, "publishAt %r" % given)

    def test_publish_at_invalid(self):
        ch = self.chan()
        for v in ("yesterday", "", "2020-13-01T00:00:00Z", "2021-02-29T00:00:00Z", "2020-01-01T24:00:00Z",
                  "2020-01-01T00:00:00", "2020-01-01", "2020-01-01T00:00:00+25:00", "1577836800",
                  12345, 1.5, True, ["2020-01-01T00:00:00Z"], {}):
            r = self.req("POST", self.ev_path(ch), {"data": "x", "publishAt": v})
            self.assertError(r, 400, mention="publishAt", what="publishAt %r" % (v,))
        self.assertCount(ch, 0)

    def _delayed_checks(self, ch, ev, due_ns):
        """While ev is not due: not listed, LOCK 410, GET says scheduled.
        Each check is asserted only if its answer came in before the due time
        (minus a margin), so a slow machine cannot make it fail wrongly."""
        margin = 30 * MS
        self.assertEqual(ev["state"], "scheduled")
        self.assertFalse(ev["isLocked"])
        eid = ev["eventID"]
        ids = self.ids(ch)
        if now_ns() < due_ns - margin:
            self.assertNotIn(eid, ids, "a delayed event is listed before its time")
        r = self.lock(ch, eid)
        if now_ns() < due_ns - margin:
            self.assertError(r, 410, what="LOCK of a delayed event")
        r = self.get_event(ch, eid)
        if now_ns() < due_ns - margin:
            self.assertStatus(r, 200, "GET of a delayed event")
            self.assertEvent(r.json, state="scheduled")
            self.assertEqual(r.json["publishedAt"], ev["publishedAt"])

        def listed():
            t_before = now_ns()
            got = eid in self.ids(ch)
            if got:
                # never early: the listing that shows it began after due time
                # (a request that started before could still see it; allow
                # its round trip)
                self.assertGreaterEqual(now_ns(), due_ns - 5 * MS,
                                        "delayed event visible %.1f ms early" % ((due_ns - t_before) / MS))
            return got

        self.wait_until(listed, 3.0, msg="the delayed event to become visible")
        r = self.get_event(ch, eid)
        self.assertStatus(r, 200)
        self.assertEvent(r.json, state="ready")

    def test_publish_at_future(self):
        ch = self.chan()
        due = now_ns() + int(600 * MS * SCALE)
        given = fmt_ts(due, offset_min=120)  # the same instant written as +02:00
        ev = self.publish(ch, {"data": "later", "publishAt": given})
        self.assertEqual(ev["publishedAt"], fmt_ts(due))
        self.assertEqual(ts_ns(ev["livesUntil"]) - due, bb.DEFAULT_TTL_NS)
        self._delayed_checks(ch, ev, due)

    def test_publish_in(self):
        ch = self.chan()
        t0 = now_ns()
        ev = self.publish(ch, {"data": "soon", "publishIn": "500ms", "ttl": "1m"})
        t1 = now_ns()
        due = ts_ns(ev["publishedAt"])
        d = int(500 * MS)
        self.assertTrue(t0 + d - 20 * MS <= due <= t1 + d + 20 * MS,
                        "publishIn 500ms gave publishedAt %s, %.1f ms after the request"
                        % (ev["publishedAt"], (due - t0) / MS))
        self.assertEqual(ts_ns(ev["livesUntil"]) - due, 60 * S)
        self._delayed_checks(ch, ev, due)

    def test_publish_in_zero_is_immediate(self):
        ch = self.chan()
        for v in ("0s", "0", "0ms"):
            ev = self.publish(ch, {"data": "now", "publishIn": v})
            self.assertEqual(ev["state"], "ready", "publishIn %r" % v)
            self.assertIn(ev["eventID"], self.ids(ch))

    def test_publish_in_invalid(self):
        ch = self.chan()
        for v in ("-1s", "-1ms", "abc", "", "1y", 5, True, {}):
            r = self.req("POST", self.ev_path(ch), {"data": "x", "publishIn": v})
            self.assertError(r, 400, mention="publishIn", what="publishIn %r" % (v,))
        future = fmt_ts(now_ns() + 60 * S)
        for at in ("2020-01-01T00:00:00Z", future):
            r = self.req("POST", self.ev_path(ch), {"data": "x", "publishIn": "1s", "publishAt": at})
            self.assertError(r, 400, what="publishIn together with publishAt")
        self.assertCount(ch, 0)
        # the rejected ones must not show up later either
        r = self.req("GET", "/" + q(ch))
        if r.status == 200 and isinstance(r.json, dict) and "scheduled" in r.json:
            self.assertEqual(r.json["scheduled"], 0, "a rejected publish was scheduled")

    def test_delayed_event_expiry_counts_from_publish_time(self):
        ch = self.chan()
        ev = self.publish(ch, {"data": "d", "publishIn": "1h", "ttl": "1m"})
        self.assertEqual(ts_ns(ev["livesUntil"]) - ts_ns(ev["publishedAt"]), 60 * S)
        r = self.get_event(ch, ev["eventID"])
        self.assertStatus(r, 200)
        self.assertEvent(r.json, state="scheduled")


class ListingTest(bb.ServerTestCase):

    def test_new_channel_is_empty(self):
        ch = self.chan()
        body = self.listing(ch)
        self.assertEqual(body, {"channelName": ch, "count": 0, "events": []})

    def test_fifo_order(self):
        ch = self.chan()
        evs = [self.publish(ch, {"data": "e%d" % i}) for i in range(3)]
        body = self.listing(ch)
        self.assertEqual(body["count"], 3)
        self.assertEqual([e["eventID"] for e in body["events"]], [e["eventID"] for e in evs])
        self.assertEqual([e["data"] for e in body["events"]], ["e0", "e1", "e2"])
        for got, want in zip(body["events"], evs):
            self.assertEvent(got, state="ready")
            self.assertEqual(got, want, "listed event differs from the publish answer")

    def test_fifo_by_visibility_time(self):
        ch = self.chan()
        a = self.publish(ch, {"data": "A"})
        d = self.publish(ch, {"data": "D", "publishIn": "%dms" % int(400 * SCALE)})
        b = self.publish(ch, {"data": "B"})
        self.wait_until(lambda: d["eventID"] in self.ids(ch), 3.0, msg="D to become visible")
        c = self.publish(ch, {"data": "C"})
        got = [e["data"] for e in self.listing(ch)["events"]]
        self.assertEqual(got, ["A", "B", "D", "C"])
        self.assertEqual(self.ids(ch), [a["eventID"], b["eventID"], d["eventID"], c["eventID"]])

    def test_locked_events_are_listed(self):
        ch = self.chan()
        a = self.publish(ch, {"data": "A"})
        b = self.publish(ch, {"data": "B"})
        r = self.lock(ch, a["eventID"])
        self.assertStatus(r, 202)
        evs = self.listing(ch)["events"]
        self.assertEqual([e["eventID"] for e in evs], [a["eventID"], b["eventID"]])
        self.assertEvent(evs[0], state="locked")
        self.assertTrue(evs[0]["isLocked"])
        self.assertEqual(evs[0]["lockedUntil"], r.json["lockedUntil"])
        self.assertEvent(evs[1], state="ready")

    def test_expired_event_is_gone(self):
        ch = self.chan()
        keep = self.publish(ch, {"data": "keep"})
        ev = self.publish(ch, {"data": "short", "ttl": "%dms" % int(300 * SCALE)})
        lives = ts_ns(ev["livesUntil"])
        eid = ev["eventID"]
        ids = self.ids(ch)
        if now_ns() < lives - 30 * MS:
            self.assertIn(eid, ids, "event gone before its ttl")

        def gone():
            t = now_ns()
            ids = self.ids(ch)
            if eid in ids:
                return False
            self.assertGreaterEqual(now_ns(), lives, "event gone %.1f ms early" % ((lives - t) / MS))
            return True

        self.wait_until(gone, 3.0, msg="the event to expire")
        self.assertEqual(self.ids(ch), [keep["eventID"]])
        self.assertError(self.get_event(ch, eid), 404, what="GET of an expired event")
        self.assertError(self.delete(ch, eid), 404, what="DELETE of an expired event")
        self.assertError(self.lock(ch, eid), 410, what="LOCK of an expired event")
        self.assertError(self.lock(ch, eid, {"action": "UNLOCK"}), 410, what="UNLOCK of an expired event")

    def test_expiry_removes_locked_events_too(self):
        ch = self.chan()
        ev = self.publish(ch, {"data": "short", "ttl": "%dms" % int(300 * SCALE)})
        r = self.lock(ch, ev["eventID"], {"ttl": "1m"})
        self.assertStatus(r, 202)
        self.wait_until(lambda: not self.ids(ch), 3.0, msg="the locked event to expire")
        self.assertError(self.get_event(ch, ev["eventID"]), 404)

    def test_many_events_listing(self):
        ch = self.chan()
        want = [self.publish(ch, {"data": "%04d" % i})["eventID"] for i in range(300)]
        body = self.listing(ch)
        self.assertEqual(body["count"], 300)
        self.assertEqual([e["eventID"] for e in body["events"]], want)

    def test_query_string_is_ignored_outside_the_listing(self):
        """The listing takes limit, after and state (Part C; anything else
        is a 400 there, see test_consumers); other routes ignore a query."""
        ch = self.chan()
        ev = self.publish(ch)
        for path in ("/%s" % q(ch), self.ev_path(ch, ev["eventID"]), "/%s/jobs" % q(ch)):
            self.assertStatus(self.req("GET", path + "?foo=bar&x=1"), 200, path)
        self.assertError(self.req("GET", self.ev_path(ch) + "?foo=bar"), 400, mention="foo")


class GetDeleteTest(bb.ServerTestCase):

    def test_get_event_by_id(self):
        ch = self.chan()
        ev = self.publish(ch, {"data": "g"})
        r = self.get_event(ch, ev["eventID"])
        self.assertStatus(r, 200)
        self.assertEvent(r.json, state="ready")
        self.assertEqual(r.json, ev)

    def test_get_locked_event_has_no_token(self):
        ch = self.chan()
        ev = self.publish(ch, {"data": "g"})
        lk = self.lock(ch, ev["eventID"])
        self.assertStatus(lk, 202)
        r = self.get_event(ch, ev["eventID"])
        self.assertStatus(r, 200)
        self.assertEvent(r.json, state="locked")  # asserts there is no lockToken
        self.assertEqual(r.json["lockedUntil"], lk.json["lockedUntil"])

    def test_get_unknown_or_malformed_id_404(self):
        ch = self.chan()
        ev = self.publish(ch)
        other = self.chan()
        for eid in ("00000000000000000000", "vvvvvvvvvvvvvvvvvvv0", "xyz", ev["eventID"].upper(),
                    ev["eventID"] + "0", ev["eventID"][:-1]):
            self.assertError(self.get_event(ch, eid), 404, what="GET id %r" % eid)
        self.assertError(self.get_event(other, ev["eventID"]), 404, what="GET id from another channel")

    def test_delete(self):
        ch = self.chan()
        a = self.publish(ch, {"data": "A"})
        b = self.publish(ch, {"data": "B"})
        r = self.delete(ch, a["eventID"])
        self.assertStatus(r, 202)
        self.assertEqual(self.ids(ch), [b["eventID"]])
        self.assertError(self.get_event(ch, a["eventID"]), 404)
        self.assertError(self.delete(ch, a["eventID"]), 404, what="second DELETE")
        self.assertError(self.lock(ch, a["eventID"]), 410, what="LOCK of a deleted event")

    def test_delete_unknown_404(self):
        ch = self.chan()
        ev = self.publish(ch)
        for eid in ("00000000000000000000", "nope", ev["eventID"][:-1]):
            self.assertError(self.delete(ch, eid), 404, what="DELETE id %r" % eid)
        self.assertError(self.delete(self.chan(), ev["eventID"]), 404, what="DELETE from another channel")
        self.assertEqual(self.ids(ch), [ev["eventID"]])

    def test_delete_locked_event(self):
        ch = self.chan()
        ev = self.publish(ch)
        self.assertStatus(self.lock(ch, ev["eventID"]), 202)
        self.assertStatus(self.delete(ch, ev["eventID"]), 202)
        self.assertEqual(self.ids(ch), [])
        self.assertError(self.get_event(ch, ev["eventID"]), 404)

    def test_delete_scheduled_event_cancels_it(self):
        ch = self.chan()
        ev = self.publish(ch, {"data": "never", "publishIn": "%dms" % int(300 * SCALE)})
        self.assertEqual(ev["state"], "scheduled")
        self.assertStatus(self.delete(ch, ev["eventID"]), 202)
        self.assertError(self.get_event(ch, ev["eventID"]), 404)
        due = ts_ns(ev["publishedAt"])
        while now_ns() < due + 300 * MS * SCALE:
            self.assertNotIn(ev["eventID"], self.ids(ch), "a deleted delayed event was published")
            time.sleep(0.05)
        self.assertEqual(self.ids(ch), [])
        self.assertError(self.delete(ch, ev["eventID"]), 404)

    def test_delete_middle_keeps_order(self):
        ch = self.chan()
        evs = [self.publish(ch, {"data": str(i)})["eventID"] for i in range(5)]
        self.assertStatus(self.delete(ch, evs[2]), 202)
        self.assertStatus(self.delete(ch, evs[0]), 202)
        self.assertEqual(self.ids(ch), [evs[1], evs[3], evs[4]])
        e5 = self.publish(ch)["eventID"]
        self.assertEqual(self.ids(ch), [evs[1], evs[3], evs[4], e5])


if __name__ == "__main__":
    unittest.main()
