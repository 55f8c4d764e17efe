"""Strict requests: every body accepts a fixed set of fields (matched
without regard to case, null = absent), reads and failed requests create no
channel, and no time arithmetic wraps (durations at most 100 years, instants
before 2262-01-01). Also the request-level error messages."""

import glob
import os
import threading
import time
import unittest

import bb
from bb import MS, S, SCALE, now_ns, q, ts_ns

YEARS_100 = "876000h"
NS_100_YEARS = 876000 * 3600 * S
END_2262 = 9214646400 * S  # 2262-01-01T00:00:00Z

PUBLISH_FIELDS = ("data", "publishAt", "publishIn", "ttl", "priority", "key")
UPDATE_FIELDS = ("action", "ttl", "lockToken", "delay")
ACQUIRE_FIELDS = ("max", "ttl", "wait")
JOB_FIELDS = ("name", "cronDef", "data", "ttl")


class StrictMixin:

    def channel_names(self):
        r = self.req("GET", "/channels")
        self.assertStatus(r, 200)
        return [c["channelName"] for c in r.json["channels"]]

    def assertNoChannel(self, ch, what):
        self.assertNotIn(ch, self.channel_names(), "%s left channel %r behind" % (what, ch))

    def assertUnknownField(self, r, field, accepted, what):
        self.assertError(r, 400, mention='"%s"' % field, what=what)
        err = r.json["error"]
        self.assertIn("unknown field", err.lower(), what)
        for name in accepted:
            self.assertIn(name, err, "%s: the error does not list the accepted field %r: %s" % (what, name, err))

    def job_path(self, ch, name=None):
        p = "/%s/jobs" % q(ch)
        return p if name is None else p + "/" + q(name)

    def acq(self, ch, body=None, client=None):
        return (client or self.c).req("POST", "/%s/acquire" % q(ch), {} if body is None else body)


class FieldsTest(StrictMixin, bb.ServerTestCase):
    """Item: an unknown field is a 400 naming it and the accepted ones."""

    def test_publish_unknown_field(self):
        ch = self.chan()
        for body, field in (({"data": "x", "delay": "30s"}, "delay"),
                            ({"data": "x", "publish_in": "1h"}, "publish_in"),
                            ({"data": "x", "foo": 1}, "foo"),
                            ({"data": "x", "eventID": "zzz"}, "eventID"),
                            ({"x": {"deep": [1, 2]}}, "x"),
                            ({"data": "x", "": 1}, "")):
            r = self.req("POST", self.ev_path(ch), body)
            self.assertUnknownField(r, field, PUBLISH_FIELDS, "publish with %r" % (body,))
        self.assertCount(ch, 0, "after refused publishes")
        self.assertNoChannel(ch, "refused publishes")

    def test_publish_names_without_case(self):
        """"publishin" is publishIn (the original's Go decoder matches names
        without regard to case): the event is delayed, not published at once."""
        ch = self.chan()
        ev = self.publish(ch, {"DATA": "d", "publishin": "1h", "TTL": "2h"})
        self.assertEqual(ev["data"], "d")
        self.assertEqual(ev["state"], "scheduled")
        self.assertEqual(ts_ns(ev["livesUntil"]) - ts_ns(ev["publishedAt"]), 2 * 3600 * S)
        at = bb.fmt_ts(now_ns() + 3600 * S)
        ev = self.publish(ch, {"Data": "e", "PublishAt": at})
        self.assertEqual(ev["state"], "scheduled")
        self.assertEqual(ev["publishedAt"], at)
        # Go's folding also maps U+017F (long s) to s and U+212A (Kelvin) to k
        ev = self.publish(ch, {"data": "f", "publi\u017fhIn": "1h"})
        self.assertEqual(ev["state"], "scheduled")
        self.assertCount(ch, 0)

    def test_null_counts_as_absent(self):
        ch = self.chan()
        ev = self.publish(ch, {"data": None, "ttl": None, "publishAt": None, "publishIn": None})
        self.assertEqual(ev["data"], "")
        self.assertEqual(ev["state"], "ready")
        self.assertEqual(ts_ns(ev["livesUntil"]) - ts_ns(ev["publishedAt"]), bb.DEFAULT_TTL_NS)
        # null never overrides a value given under another spelling
        ev = self.publish(ch, {"data": "kept", "DATA": None})
        self.assertEqual(ev["data"], "kept")
        # both given, one null: not "both publishAt and publishIn"
        ev = self.publish(ch, {"data": "x", "publishAt": None, "publishIn": "0s"})
        self.assertEqual(ev["state"], "ready")

    def test_batch_unknown_field_names_index(self):
        ch = self.chan()
        r = self.req("POST", self.ev_path(ch), [{"data": "a"}, {"data": "b"}, {"data": "c", "dleay": "1s"}])
        self.assertUnknownField(r, "dleay", PUBLISH_FIELDS, "batch")
        self.assertIn("events[2]", r.json["error"])
        self.assertNoChannel(ch, "a refused batch")
        r = self.req("POST", self.ev_path(ch), [{"Data": "a"}, {"dAtA": "b", "TtL": "1m"}])
        self.assertStatus(r, 201, "batch with other spellings")
        self.assertEqual([e["data"] for e in r.json["events"]], ["a", "b"])

    def test_lock_unknown_field(self):
        ch = self.chan()
        ev = self.publish(ch)
        eid = ev["eventID"]
        for method in ("PUT", "PATCH"):
            for body, field in (({"action": "LOCK", "tll": "1m"}, "tll"),
                                ({"action": "UNLOCK", "token": "abc"}, "token"),
                                ({"action": "UNLOCK", "dealy": "5s"}, "dealy"),
                                ({"timeout": "5s"}, "timeout")):
                r = self.lock(ch, eid, body, method=method)
                self.assertUnknownField(r, field, UPDATE_FIELDS, "%s %r" % (method, body))
        self.assertEqual(self.get_event(ch, eid).json["state"], "ready", "a refused LOCK locked")
        r = self.lock(ch, eid, {"ACTION": "lock", "TTL": "%dms" % int(300 * SCALE)})
        self.assertStatus(r, 202, "LOCK with other spellings")
        until = ts_ns(r.json["lockedUntil"])
        self.assertLess(until, now_ns() + 2 * S * SCALE, "TTL was not read as ttl")
        tok = r.json["lockToken"]
        r = self.lock(ch, eid, {"action": "EXTEND", "LOCKTOKEN": "0" * len(tok)})
        self.assertError(r, 409, what="EXTEND with a wrong LOCKTOKEN")
        r = self.lock(ch, eid, {"action": "extend", "loc\u212aToken": tok, "ttl": "1m"})
        self.assertStatus(r, 202, "EXTEND with the token under a Kelvin-sign k")

    def test_acquire_unknown_field(self):
        """{"limit":3} or {"timeout":"5s"} must not quietly acquire one event
        without waiting."""
        ch = self.chan()
        self.publish(ch)
        for body, field in (({"limit": 3}, "limit"), ({"timeout": "5s"}, "timeout"),
                            ({"max": 2, "visibility": "1m"}, "visibility")):
            t = time.monotonic()
            r = self.acq(ch, body)
            self.assertUnknownField(r, field, ACQUIRE_FIELDS, "acquire %r" % (body,))
            self.assertLess(time.monotonic() - t, 2 * SCALE)
        self.assertEqual(self.listing(ch)["events"][0]["state"], "ready", "a refused acquire locked")
        r = self.acq(ch, {"MAX": 5, "Wait": "0s", "TTL": "1m"})
        self.assertStatus(r, 200)
        self.assertEqual(r.json["count"], 1)

    def test_job_unknown_field(self):
        ch = self.chan()
        for body, field in (({"name": "j", "cronDef": "@hourly", "schedule": "x"}, "schedule"),
                            ({"name": "j", "cron": "@hourly"}, "cron"),
                            ({"jobID": "j", "cronDef": "@hourly"}, "jobID")):
            r = self.req("POST", self.job_path(ch), body)
            self.assertUnknownField(r, field, JOB_FIELDS, "job add %r" % (body,))
        self.assertNoChannel(ch, "refused job adds")
        r = self.req("POST", self.job_path(ch), {"Name": "j", "CRONDEF": "@hourly", "Data": "d", "Ttl": "1m"})
        self.assertStatus(r, 201, "job add with other spellings")
        self.assertEqual((r.json["jobID"], r.json["cron"], r.json["data"], r.json["ttl"]),
                         ("j", "@hourly", "d", 60 * S))

    def test_long_unknown_name_is_cut(self):
        ch = self.chan()
        r = self.req("POST", self.ev_path(ch), {"data": "x", "\u00e9" * 300: 1})
        self.assertError(r, 400, mention="unknown field")
        self.assertLess(len(r.json["error"]), 400)


class MessagesTest(StrictMixin, bb.ServerTestCase):
    """Request-level messages say which field and what to do."""

    def test_job_says_which_field_is_missing(self):
        ch = self.chan()
        r = self.req("POST", self.job_path(ch), {"name": "j"})
        self.assertError(r, 400, mention='"cronDef" is required')
        self.assertNotIn('"name"', r.json["error"])
        r = self.req("POST", self.job_path(ch), {"cronDef": "@hourly"})
        self.assertError(r, 400, mention='"name" is required')
        self.assertNotIn('"cronDef"', r.json["error"])
        r = self.req("POST", self.job_path(ch), {"name": "", "cronDef": "@hourly"})
        self.assertError(r, 400, mention='"name" is required and must not be empty')
        r = self.req("POST", self.job_path(ch), {"name": "j", "cronDef": ""})
        self.assertError(r, 400, mention='"cronDef" is required and must not be empty')
        r = self.req("POST", self.job_path(ch), {"name": "j", "cronDef": None})
        self.assertError(r, 400, mention='"cronDef" is required')
        self.assertNoChannel(ch, "refused job adds")

    def test_unknown_action_is_quoted(self):
        ch = self.chan()
        ev = self.publish(ch)
        r = self.lock(ch, ev["eventID"], {"action": "LOKC"})
        self.assertError(r, 400, mention='"LOKC"')
        self.assertIn("LOCK, UNLOCK or EXTEND", r.json["error"])


LIMIT = 5


class ReadsCreateNothingTest(StrictMixin, bb.ServerTestCase):
    """Only a successful publish or job add creates a channel."""

    OWN_SERVER = True
    SERVER_ARGS = ["-in-memory", "-max-channels", str(LIMIT)]
    WEIGHT = 2

    def test_reads_answer_as_empty_and_create_nothing(self):
        ch = self.chan("typo")
        eid = "0" * 20
        r = self.req("GET", "/" + q(ch))
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"channelName": ch, "ready": 0, "scheduled": 0, "locked": 0, "jobs": 0,
                                  "published": 0, "deleted": 0, "expired": 0, "deadLettered": 0,
                                  "oldestReadyAge": 0})
        r = self.req("GET", self.ev_path(ch))
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"channelName": ch, "count": 0, "events": []})
        r = self.req("GET", self.job_path(ch))
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"channelName": ch, "jobs": []})
        self.assertError(self.req("GET", self.ev_path(ch, eid)), 404)
        self.assertError(self.req("GET", self.job_path(ch, "j")), 404)
        self.assertError(self.req("DELETE", self.ev_path(ch, eid)), 404)
        self.assertError(self.req("DELETE", self.job_path(ch, "j")), 404)
        for body in ({}, {"action": "LOCK"}, {"action": "UNLOCK"}, {"action": "EXTEND"},
                     {"action": "UNLOCK", "lockToken": "0123456789abcdef"}):
            self.assertError(self.lock(ch, eid, body), 410, what="PUT %r" % (body,))
        r = self.acq(ch, {"max": 3})
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"channelName": ch, "count": 0, "events": []})
        self.assertNoChannel(ch, "reads")

    def test_failed_changes_create_nothing(self):
        ch = self.chan("fail")
        for method, path, body in (("POST", self.ev_path(ch), {"data": "x", "priority": -1}),
                                   ("POST", self.ev_path(ch), {"data": "x", "ttl": "0s"}),
                                   ("POST", self.ev_path(ch), [{"data": "x"}, {"ttl": "x"}]),
                                   ("POST", self.ev_path(ch), []),
                                   ("POST", self.job_path(ch), {"name": "j", "cronDef": "61 * * * *"}),
                                   ("POST", self.job_path(ch), {"name": "j", "cronDef": "CRON_TZ=No/Where @daily"}),
                                   ("POST", self.job_path(ch), {"name": "j"}),
                                   ("POST", "/%s/acquire" % q(ch), {"max": 0}),
                                   ("PUT", self.ev_path(ch, "0" * 20), {"action": "JUMP"})):
            r = self.req(method, path, body)
            self.assertError(r, 400, what="%s %s %r" % (method, path, body))
        self.assertNoChannel(ch, "failed requests")

    def test_reads_do_not_count_against_the_channel_limit(self):
        """Runs last in this class (the name sorts last): it fills the limit."""
        for _ in range(LIMIT - len(self.channel_names())):
            self.publish(self.chan("lim"))
        extra = self.chan("read")
        for method, suffix, body in (("GET", "", None), ("GET", "/events", None), ("GET", "/jobs", None),
                                     ("POST", "/acquire", {}), ("PUT", "/events/" + "0" * 20, {})):
            r = self.req(method, "/" + q(extra) + suffix, body)
            self.assertIn(r.status, (200, 410), "%s %s past -max-channels: %r" % (method, suffix, r.raw[:200]))
        r = self.req("POST", self.ev_path(extra), {"data": "x"})
        self.assertError(r, 429, what="a publish creating one channel too many")
        r = self.req("POST", self.job_path(extra), {"name": "j", "cronDef": "@hourly"})
        self.assertError(r, 429, what="a job add creating one channel too many")
        self.assertNoChannel(extra, "reads and refused changes at the limit")

    def parked(self, ch, body):
        """Starts an acquire on its own connection; returns (thread, box)
        where box["r"] is its answer once the thread ends."""
        box = {}
        c = self.client()

        def run():
            box["r"] = self.acq(ch, body, client=c)
        t = threading.Thread(target=run)
        t.start()
        return t, box

    def test_parked_acquire_on_unknown_channel(self):
        ch = self.chan("park")
        t, box = self.parked(ch, {"wait": "%dms" % int(3000 * SCALE), "ttl": "1m"})
        time.sleep(0.3 * SCALE)
        self.assertTrue(t.is_alive(), "the acquire did not wait")
        self.assertNoChannel(ch, "a parked acquire")
        ev = self.publish(ch, {"data": "for the waiter"})
        t.join(5 * SCALE)
        self.assertFalse(t.is_alive(), "the parked acquire was not served by the publish")
        r = box["r"]
        self.assertStatus(r, 200)
        self.assertEqual(r.json["channelName"], ch)
        self.assertEqual([e["eventID"] for e in r.json["events"]], [ev["eventID"]])
        self.assertIn(ch, self.channel_names())

    def test_parked_acquire_times_out_without_channel(self):
        ch = self.chan("park")
        t0 = time.monotonic()
        r = self.acq(ch, {"wait": "%dms" % int(300 * SCALE)})
        self.assertGreaterEqual(time.monotonic() - t0, 0.25 * SCALE)
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"channelName": ch, "count": 0, "events": []})
        self.assertNoChannel(ch, "a timed-out acquire")

    def test_earlier_waiters_first_across_creation(self):
        """A waiter parked before the channel existed is served before one
        that parked after a job add created it; a job add that fails leaves
        the first waiter parked."""
        ch = self.chan("order")
        t1, box1 = self.parked(ch, {"wait": "%dms" % int(4000 * SCALE)})
        time.sleep(0.2 * SCALE)
        r = self.req("POST", self.job_path(ch), {"name": "bad", "cronDef": "not a cron"})
        self.assertError(r, 400)
        self.assertNoChannel(ch, "a failed job add")
        r = self.req("POST", self.job_path(ch), {"name": "yearly", "cronDef": "0 0 1 1 *"})
        self.assertStatus(r, 201)
        t2, box2 = self.parked(ch, {"wait": "%dms" % int(1500 * SCALE)})
        time.sleep(0.2 * SCALE)
        self.assertTrue(t1.is_alive() and t2.is_alive(), "both acquires should be waiting")
        ev = self.publish(ch, {"data": "one"})
        t1.join(5 * SCALE)
        self.assertFalse(t1.is_alive(), "the first waiter was not served")
        self.assertEqual([e["eventID"] for e in box1["r"].json["events"]], [ev["eventID"]],
                         "the first waiter did not get the event")
        t2.join(5 * SCALE)
        self.assertEqual(box2["r"].json["count"], 0, "the later waiter took the event")


class TimeLimitsTest(StrictMixin, bb.ServerTestCase):
    """Durations at most 100 years; instants before 2262-01-01; no wrap."""

    def test_durations_over_100_years(self):
        ch = self.chan()
        eid = self.publish(ch)["eventID"]
        for d in ("876000h0m0.000000001s", "876001h", "2562047h"):
            for what, method, path, body, field in (
                    ("publish ttl", "POST", self.ev_path(ch), {"data": "x", "ttl": d}, "ttl"),
                    ("publishIn", "POST", self.ev_path(ch), {"data": "x", "publishIn": d}, "publishIn"),
                    ("LOCK ttl", "PUT", self.ev_path(ch, eid), {"action": "LOCK", "ttl": d}, "ttl"),
                    ("acquire ttl", "POST", "/%s/acquire" % q(ch), {"ttl": d}, "ttl"),
                    ("job ttl", "POST", self.job_path(ch), {"name": "j", "cronDef": "@hourly", "ttl": d}, "ttl")):
                r = self.req(method, path, body)
                self.assertError(r, 400, mention='"%s"' % field, what="%s %s" % (what, d))
                self.assertIn("876000h", r.json["error"], what)
        self.assertEqual(self.ids(ch), [eid])
        self.assertEqual(self.get_event(ch, eid).json["state"], "ready", "a refused LOCK or acquire locked")
        self.assertEqual(self.req("GET", self.job_path(ch)).json["jobs"], [])

    def test_extend_over_100_years(self):
        """EXTEND with 2562047h answered 202 with lockedUntil in 1734."""
        ch = self.chan()
        eid = self.publish(ch)["eventID"]
        r = self.lock(ch, eid, {"ttl": "1m"})
        self.assertStatus(r, 202)
        until = r.json["lockedUntil"]
        for d in ("2562047h", "876001h"):
            r = self.lock(ch, eid, {"action": "EXTEND", "ttl": d})
            self.assertError(r, 400, mention='"ttl"', what="EXTEND %s" % d)
        r = self.get_event(ch, eid)
        self.assertEqual((r.json["state"], r.json["lockedUntil"]), ("locked", until))

    def test_100_years_is_accepted(self):
        ch = self.chan()
        t0 = now_ns()
        ev = self.publish(ch, {"data": "x", "ttl": YEARS_100})
        self.assertEqual(ts_ns(ev["livesUntil"]) - ts_ns(ev["publishedAt"]), NS_100_YEARS)
        r = self.lock(ch, ev["eventID"], {"ttl": YEARS_100})
        self.assertStatus(r, 202)
        until = ts_ns(r.json["lockedUntil"])
        self.assertTrue(t0 + NS_100_YEARS <= until <= now_ns() + NS_100_YEARS, "lockedUntil %s" % r.json["lockedUntil"])
        self.assertEqual(self.get_event(ch, ev["eventID"]).json["state"], "locked")
        ev2 = self.publish(ch, {"data": "y", "publishIn": YEARS_100})
        self.assertEqual(ev2["state"], "scheduled")
        r = self.acq(ch, {"ttl": YEARS_100})
        self.assertStatus(r, 200)
        r = self.req("POST", self.job_path(ch), {"name": "j", "cronDef": "@hourly", "ttl": YEARS_100})
        self.assertStatus(r, 201)
        self.assertEqual(r.json["ttl"], NS_100_YEARS)

    def test_instants_before_2262(self):
        ch = self.chan()
        late = bb.fmt_ts(END_2262 - 30 * 60 * S)  # 2261-12-31T23:30Z
        r = self.req("POST", self.ev_path(ch), {"data": "x", "publishAt": late})
        self.assertStatus(r, 201, "publishAt 2261-12-31T23:30Z with the default 10m ttl")
        self.assertEqual(r.json["livesUntil"], bb.fmt_ts(END_2262 - 20 * 60 * S))
        for body in ({"data": "x", "publishAt": late, "ttl": "30m"},
                     {"data": "x", "publishAt": late, "ttl": "8760h"},
                     {"data": "x", "publishAt": "2262-02-01T00:00:00Z"},
                     {"data": "x", "publishAt": "2262-04-11T23:47:16Z", "ttl": "1s"}):
            r = self.req("POST", self.ev_path(ch), body)
            self.assertError(r, 400, mention='"ttl"', what="publish %r" % (body,))
            self.assertIn("2262-01-01", r.json["error"])
        r = self.req("POST", self.ev_path(ch), [{"data": "a"}, {"data": "b", "publishAt": late, "ttl": "1h"}])
        self.assertError(r, 400, mention="events[1]")
        self.assertEqual(self.req("GET", "/" + q(ch)).json["scheduled"], 1)


def libfaketime():
    for pat in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"):
        found = glob.glob(pat)
        if found:
            return found[0]
    return None


@bb.memory_only("the clock is moved by libfaketime; on PostgreSQL it is the database's")
@unittest.skipIf(libfaketime() is None, "needs libfaketime (Debian package faketime)")
class FarFutureClockTest(StrictMixin, bb.ServerTestCase):
    """A server whose clock reads 2200: now + 100 years passes 2262, so every
    duration counted from now is refused, naming its field, instead of
    wrapping to a time in the 1700s."""

    OWN_SERVER = True

    @classmethod
    def new_server(cls):
        env = dict(os.environ)
        env.pop("TZ", None)
        env["LD_PRELOAD"] = libfaketime()
        env["FAKETIME"] = "@2200-01-01 00:00:00"
        env["DONT_FAKE_MONOTONIC"] = "1"
        # a sanitizer build wants its runtime first; libfaketime only wraps
        # clock calls, so the order does not matter here
        env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if x)
        return bb.Server(["-in-memory"], env=env)

    def test_now_plus_ttl_past_2262(self):
        ch = self.chan()
        ev = self.publish(ch, {"data": "x", "ttl": "1h"})
        self.assertTrue(ev["publishedAt"].startswith("2200-"), "the fake clock is not in effect: %r" % ev)
        eid = ev["eventID"]
        d = "%dh" % (63 * 365 * 24)  # 63 years: fits the 100-year rule, not 2262
        for what, method, path, body, field in (
                ("publish ttl", "POST", self.ev_path(ch), {"data": "x", "ttl": d}, "ttl"),
                ("publishIn", "POST", self.ev_path(ch), {"data": "x", "publishIn": d}, "publishIn"),
                ("LOCK ttl", "PUT", self.ev_path(ch, eid), {"ttl": d}, "ttl"),
                ("acquire ttl", "POST", "/%s/acquire" % q(ch), {"ttl": d}, "ttl"),
                ("job ttl", "POST", self.job_path(ch), {"name": "j", "cronDef": "@hourly", "ttl": d}, "ttl")):
            r = self.req(method, path, body)
            self.assertError(r, 400, mention='"%s"' % field, what=what)
            self.assertIn("2262-01-01", r.json["error"], what)
        r = self.lock(ch, eid, {"ttl": "1m"})
        self.assertStatus(r, 202)
        r = self.lock(ch, eid, {"action": "EXTEND", "ttl": d})
        self.assertError(r, 400, mention='"ttl"', what="EXTEND")
        self.assertEqual(self.ids(ch), [eid])
        self.assertEqual(self.req("GET", self.job_path(ch)).json["jobs"], [])


if __name__ == "__main__":
    unittest.main()
