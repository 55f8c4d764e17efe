"""Channel names, trailing slashes, health routes, GET /{c} and /channels,
and the reserved names used as channels."""

import re
import unittest
import uuid

import bb
from bb import MS, SCALE, now_ns, q, ts_ns

STATS_KEYS = ("channelName", "ready", "scheduled", "locked", "jobs", "published", "deleted", "expired")


class ChannelNameTest(bb.ServerTestCase):

    def roundtrip(self, name, path_seg=None):
        """Publishes into the channel named `name` (sent as path_seg, default
        fully percent-encoded) and checks the echoes."""
        seg = path_seg or q(name)
        r = self.req("POST", "/%s/events" % seg, {"data": "n"})
        self.assertStatus(r, 201, "publish to %r" % name)
        self.assertEqual(r.headers.get("Location"), "/%s/events/%s" % (seg, r.json["eventID"]),
                         "Location does not echo the path as sent")
        r2 = self.req("GET", "/%s/events" % seg)
        self.assertStatus(r2, 200)
        self.assertEqual(r2.json["channelName"], name)
        self.assertEqual([e["eventID"] for e in r2.json["events"]], [r.json["eventID"]])
        r3 = self.req("GET", "/%s/events/%s" % (seg, r.json["eventID"]))
        self.assertStatus(r3, 200)
        r4 = self.req("GET", "/%s/jobs" % seg)
        self.assertStatus(r4, 200)
        self.assertEqual(r4.json["channelName"], name)
        return r.json

    def test_space_in_name(self):
        self.roundtrip("a b-" + uuid.uuid4().hex[:8])

    def test_plus_is_not_space(self):
        u = uuid.uuid4().hex[:8]
        self.roundtrip("a+b-" + u, "a+b-" + u)
        self.assertEqual(self.listing("a b-" + u)["count"], 0)

    def test_unicode_name(self):
        self.roundtrip("kanal-\u00f6-" + uuid.uuid4().hex[:8])
        self.roundtrip("\u6f22\u5b57-\U0001f600-" + uuid.uuid4().hex[:8])

    def test_json_special_characters_in_name(self):
        self.roundtrip('q"b\\s<>{}-' + uuid.uuid4().hex[:8])

    def test_unreserved_characters_unencoded(self):
        u = uuid.uuid4().hex[:8]
        self.roundtrip("A.b_c~d-" + u, "A.b_c~d-" + u)
        self.roundtrip("x:@!$&'()*,;=-" + u, "x:@!$&'()*,;=-" + u)

    def test_case_sensitive(self):
        u = uuid.uuid4().hex[:8]
        self.publish("Abc-" + u)
        self.assertEqual(self.listing("abc-" + u)["count"], 0)
        self.assertEqual(self.listing("ABC-" + u)["count"], 0)
        self.assertEqual(self.listing("Abc-" + u)["count"], 1)

    def test_name_length_limit(self):
        u = uuid.uuid4().hex[:12]
        ok = u + "x" * (200 - len(u))
        self.roundtrip(ok)
        ok2 = u + "\u00f6" * 94  # 12 + 188 = 200 bytes of UTF-8
        self.assertEqual(len(ok2.encode()), 200)
        self.roundtrip(ok2)
        for bad in (ok + "x", ok2 + "a", u + "\u00f6" * 95, "y" * 1000):
            for method, suffix, body in (("GET", "/events", None), ("POST", "/events", {"data": "x"}),
                                         ("GET", "/jobs", None), ("GET", "", None)):
                r = self.req(method, "/" + q(bad) + suffix, body)
                self.assertError(r, 400, what="%s of a %d-byte name" % (method + suffix, len(bad.encode())))

    def test_invalid_names_400(self):
        for seg in ("%00", "a%00b", "%2F", "a%2Fb", "a%2fb", "%FF", "a%C3%28", "%C0%AF", "%ED%A0%80", "%F8%88%80%80%80",
                    "%01", "a%1Fb", "%0A", "%0D%0A", "%09"):
            for method, suffix, body in (("GET", "/events", None), ("POST", "/events", {"data": "x"}),
                                         ("POST", "/jobs", {"name": "j", "cronDef": "@hourly"}),
                                         ("GET", "/jobs", None), ("GET", "", None)):
                r = self.req(method, "/" + seg + suffix, body)
                self.assertError(r, 400, what="%s /%s%s" % (method, seg, suffix))

    def test_empty_segments_404(self):
        for method, path in (("GET", "//events"), ("POST", "//events"), ("GET", "//events/"), ("GET", "//jobs"),
                             ("GET", "/c//events"), ("GET", "//"), ("GET", "///"), ("GET", "/c/events//"),
                             ("GET", "//events/00000000000000000000")):
            r = self.req(method, path, {"data": "x"} if method == "POST" else None)
            self.assertError(r, 404, what="%s %s" % (method, path))

    def test_channel_created_by_publish_not_by_reads(self):
        a, b, c = self.chan("first-a"), self.chan("first-b"), self.chan("first-c")
        self.assertStatus(self.req("GET", "/%s/events" % a), 200)
        self.assertStatus(self.req("GET", "/%s/jobs" % b), 200)
        self.assertStatus(self.req("GET", "/%s" % c), 200)
        names = [x["channelName"] for x in self.req("GET", "/channels").json["channels"]]
        for n in (a, b, c):
            self.assertNotIn(n, names)
        self.publish(a)
        self.assertStatus(self.req("POST", "/%s/jobs" % b, {"name": "j", "cronDef": "@yearly"}), 201)
        names = [x["channelName"] for x in self.req("GET", "/channels").json["channels"]]
        self.assertIn(a, names)
        self.assertIn(b, names)


class TrailingSlashTest(bb.ServerTestCase):

    def test_every_route_with_trailing_slash(self):
        ch = self.chan()
        r = self.req("POST", "/%s/events/" % ch, {"data": "s"})
        self.assertStatus(r, 201, "POST /c/events/")
        eid = r.json["eventID"]
        self.assertEqual(r.headers.get("Location"), "/%s/events/%s" % (ch, eid))
        eid2 = self.publish(ch)["eventID"]
        checks = [
            ("GET", "/%s/events/" % ch, None, 200),
            ("GET", "/%s/events/%s/" % (ch, eid), None, 200),
            ("PUT", "/%s/events/%s/" % (ch, eid), {}, 202),
            ("PATCH", "/%s/events/%s/" % (ch, eid), {"action": "UNLOCK"}, 202),
            ("DELETE", "/%s/events/%s/" % (ch, eid), None, 202),
            ("DELETE", "/%s/events/%s/" % (ch, eid), None, 404),
            ("GET", "/%s/events/%s/" % (ch, eid2), None, 200),
            ("POST", "/%s/jobs/" % ch, {"name": "j", "cronDef": "@hourly"}, 201),
            ("GET", "/%s/jobs/" % ch, None, 200),
            ("GET", "/%s/jobs/j/" % ch, None, 200),
            ("DELETE", "/%s/jobs/j/" % ch, None, 202),
            ("GET", "/%s/jobs/j/" % ch, None, 404),
            ("GET", "/%s/" % ch, None, 200),
            ("GET", "/healthz/", None, 200),
            ("GET", "/readyz/", None, 200),
            ("GET", "/channels/", None, 200),
            ("GET", "/metrics/", None, 200),
            ("DELETE", "/%s/events/" % ch, None, 405),
        ]
        for method, path, body, want in checks:
            r = self.req(method, path, body)
            self.assertStatus(r, want, "%s %s" % (method, path))
            self.assertIsNone(r.headers.get("Location") if want != 201 else None, "%s %s redirects" % (method, path))
        body = self.req("GET", "/%s/events/" % ch).json
        self.assertEqual(body["channelName"], ch)
        self.assertEqual([e["eventID"] for e in body["events"]], [eid2])
        self.assertEqual(self.req("GET", "/healthz/").json, {"status": "ok"})
        self.assertEqual(self.req("GET", "/%s/" % ch).json["channelName"], ch)


class HealthTest(bb.ServerTestCase):

    def test_healthz_readyz(self):
        for path in ("/healthz", "/readyz"):
            r = self.req("GET", path)
            self.assertStatus(r, 200, path)
            self.assertEqual(r.json, {"status": "ok"})
            self.assertTrue((r.headers.get("Content-Type") or "").startswith("application/json"))

    def test_metrics_is_prometheus_text(self):
        self.publish(self.chan())
        r = self.req("GET", "/metrics")
        self.assertStatus(r, 200)
        ct = r.headers.get("Content-Type") or ""
        self.assertTrue(ct.startswith("text/plain"), "metrics Content-Type %r" % ct)
        text = r.raw.decode("utf-8")
        self.assertIn("# TYPE ", text)
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? ([-+]?[0-9.eE+-]+|[-+]?Inf|NaN)( -?\d+)?$')
        samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        self.assertTrue(samples, "no samples in /metrics")
        for line in samples:
            self.assertRegex(line, sample, "not a Prometheus sample line")


class StatsTest(bb.ServerTestCase):

    def stats(self, ch):
        r = self.req("GET", "/" + q(ch))
        self.assertStatus(r, 200, "GET /%s" % ch)
        for k in STATS_KEYS:
            self.assertIn(k, r.json, "channel stats lack %s: %r" % (k, r.json))
        for k in STATS_KEYS[1:]:
            self.assertIs(type(r.json[k]), int, "%s is not an integer: %r" % (k, r.json))
        return r.json

    def want(self, ch, **kw):
        d = {"channelName": ch, "ready": 0, "scheduled": 0, "locked": 0, "jobs": 0,
             "published": 0, "deleted": 0, "expired": 0}
        d.update(kw)
        return d

    def pick(self, st):
        return {k: st[k] for k in STATS_KEYS}

    def test_new_channel_zero(self):
        ch = self.chan()
        self.assertEqual(self.pick(self.stats(ch)), self.want(ch))

    def test_known_sequence(self):
        ch = self.chan()
        a, b, c = (self.publish(ch, {"data": d}) for d in "ABC")
        self.publish(ch, {"data": "D", "publishIn": "1m"})
        e = self.publish(ch, {"data": "E", "ttl": "%dms" % int(300 * SCALE)})
        self.assertStatus(self.lock(ch, a["eventID"]), 202)
        self.assertStatus(self.delete(ch, b["eventID"]), 202)
        self.assertStatus(self.req("POST", "/%s/jobs" % q(ch), {"name": "j", "cronDef": "0 0 1 1 *"}), 201)
        self.wait_until(lambda: self.stats(ch)["expired"] == 1, 3.0, msg="E to expire")
        self.assertEqual(self.pick(self.stats(ch)),
                         self.want(ch, ready=1, scheduled=1, locked=1, jobs=1, published=4, deleted=1, expired=1))
        self.assertEqual(self.ids(ch), [a["eventID"], c["eventID"]])
        # unlock and delete the locked one: published stays, deleted grows
        self.assertStatus(self.lock(ch, a["eventID"], {"action": "UNLOCK"}), 202)
        self.assertEqual(self.pick(self.stats(ch)),
                         self.want(ch, ready=2, scheduled=1, locked=0, jobs=1, published=4, deleted=1, expired=1))
        self.assertStatus(self.delete(ch, a["eventID"]), 202)
        self.assertStatus(self.req("DELETE", "/%s/jobs/j" % q(ch)), 202)
        self.assertEqual(self.pick(self.stats(ch)),
                         self.want(ch, ready=1, scheduled=1, locked=0, jobs=0, published=4, deleted=2, expired=1))

    def test_delayed_counts_as_published_when_visible(self):
        ch = self.chan()
        ev = self.publish(ch, {"publishIn": "%dms" % int(400 * SCALE)})
        st = self.stats(ch)
        if now_ns() < ts_ns(ev["publishedAt"]) - 30 * MS:
            self.assertEqual(self.pick(st), self.want(ch, scheduled=1))
        self.wait_until(lambda: self.stats(ch)["published"] == 1, 3.0, msg="the delayed event to be published")
        self.assertEqual(self.pick(self.stats(ch)), self.want(ch, ready=1, published=1))

    def test_lock_expiry_returns_to_ready(self):
        ch = self.chan()
        ev = self.publish(ch)
        self.assertStatus(self.lock(ch, ev["eventID"], {"ttl": "%dms" % int(200 * SCALE)}), 202)
        self.wait_until(lambda: self.stats(ch)["locked"] == 0, 3.0, msg="the lock to expire")
        self.assertEqual(self.pick(self.stats(ch)), self.want(ch, ready=1, published=1))

    def test_channels_list_sorted(self):
        u = uuid.uuid4().hex[:8]
        names = ["zz-" + u, "aa-" + u, "Mm-" + u, "m\u00f6-" + u, "m z-" + u]
        for i, n in enumerate(names):
            for _ in range(i + 1):
                self.publish(n)
        r = self.req("GET", "/channels")
        self.assertStatus(r, 200)
        self.assertEqual(list(r.json), ["channels"])
        chans = r.json["channels"]
        got = [x["channelName"] for x in chans]
        self.assertEqual(got, sorted(got), "/channels is not sorted by name")
        self.assertEqual(len(set(got)), len(got), "a channel listed twice")
        by = {x["channelName"]: x for x in chans}
        for i, n in enumerate(names):
            self.assertIn(n, by)
            self.assertEqual(self.pick(by[n]), self.want(n, ready=i + 1, published=i + 1))
            self.assertEqual(self.pick(by[n]), self.pick(self.stats(n)))


class ReservedNamesTest(bb.ServerTestCase):
    """/metrics, /channels, /healthz and /readyz are fixed routes, but the
    names still work as channels for every deeper path."""

    def test_reserved_names_as_channels(self):
        for name in ("metrics", "channels", "healthz", "readyz"):
            ev = self.publish(name, {"data": "in " + name})
            self.assertEqual(ev.get("data"), "in " + name)
            body = self.listing(name)
            self.assertIn(ev["eventID"], [e["eventID"] for e in body["events"]])
            r = self.get_event(name, ev["eventID"])
            self.assertStatus(r, 200, "GET /%s/events/ID" % name)
            self.assertStatus(self.lock(name, ev["eventID"]), 202, "LOCK in channel %s" % name)
            self.assertStatus(self.delete(name, ev["eventID"]), 202, "DELETE in channel %s" % name)
            r = self.req("POST", "/%s/jobs" % name, {"name": "j-" + uuid.uuid4().hex[:8], "cronDef": "@yearly"})
            self.assertStatus(r, 201, "POST /%s/jobs" % name)
            r = self.req("GET", "/%s/jobs" % name)
            self.assertStatus(r, 200)
            self.assertEqual(r.json["channelName"], name)
        self.assertEqual(self.req("GET", "/healthz").json, {"status": "ok"})
        self.assertEqual(self.req("GET", "/readyz").json, {"status": "ok"})
        r = self.req("GET", "/channels")
        self.assertEqual(list(r.json), ["channels"])
        names = [x["channelName"] for x in r.json["channels"]]
        for name in ("metrics", "channels", "healthz", "readyz"):
            self.assertIn(name, names)
        r = self.req("GET", "/metrics")
        self.assertStatus(r, 200)
        self.assertIsNone(r.json, "GET /metrics answered JSON, not the metrics text")


if __name__ == "__main__":
    unittest.main()
