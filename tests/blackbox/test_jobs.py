"""Recurring jobs: POST/GET/DELETE /{c}/jobs, cron definitions, nextRunAt
and firing."""

import datetime
import time
import unittest
import zoneinfo

import bb
from bb import MS, S, now_ns, q, ts_ns

JOB_KEYS = {"jobID", "cron", "data", "ttl", "createdAt"}


def next_fire(after_ns, zone, pred, max_days=62):
    """The first whole minute strictly after after_ns whose wall-clock time in
    zone (None = UTC) satisfies pred(datetime). Walking UTC minutes gives the
    documented DST rules: a local time that does not exist is never seen, one
    that occurs twice is seen first at its first occurrence."""
    tz = zoneinfo.ZoneInfo(zone) if zone else datetime.timezone.utc
    t = (after_ns // (60 * S) + 1) * 60
    for _ in range(max_days * 1440):
        if pred(datetime.datetime.fromtimestamp(t, tz)):
            return t * S
        t += 60
    raise AssertionError("no fire time within %d days" % max_days)


# spec -> (zone for the check (None = UTC), predicate on the local datetime)
# The server is started with TZ=UTC, so unprefixed specs are in UTC.
NEXT_CASES = {
    "*/5 * * * *": (None, lambda d: d.minute % 5 == 0),
    "0 9 * * MON-FRI": (None, lambda d: (d.hour, d.minute) == (9, 0) and d.weekday() < 5),
    "@hourly": (None, lambda d: d.minute == 0),
    "@daily": (None, lambda d: (d.hour, d.minute) == (0, 0)),
    "@midnight": (None, lambda d: (d.hour, d.minute) == (0, 0)),
    "@weekly": (None, lambda d: (d.hour, d.minute) == (0, 0) and d.weekday() == 6),
    "@monthly": (None, lambda d: (d.day, d.hour, d.minute) == (1, 0, 0)),
    "CRON_TZ=Europe/Berlin 30 2 * * *": ("Europe/Berlin", lambda d: (d.hour, d.minute) == (2, 30)),
    "TZ=America/New_York 0 0 1 * *": ("America/New_York", lambda d: (d.day, d.hour, d.minute) == (1, 0, 0)),
    "0 0 ? * SUN": (None, lambda d: (d.hour, d.minute) == (0, 0) and d.weekday() == 6),
    "0 0 * * 7": (None, lambda d: (d.hour, d.minute) == (0, 0) and d.weekday() == 6),
    "0 0 * * 0": (None, lambda d: (d.hour, d.minute) == (0, 0) and d.weekday() == 6),
    "10-40/10 * * * *": (None, lambda d: d.minute in (10, 20, 30, 40)),
    "5/15 * * * *": (None, lambda d: d.minute in (5, 20, 35, 50)),
    "0 0 1,15 * *": (None, lambda d: (d.hour, d.minute) == (0, 0) and d.day in (1, 15)),
    "0 0 13 * FRI": (None, lambda d: (d.hour, d.minute) == (0, 0) and (d.day == 13 or d.weekday() == 4)),
    "0 0 */2 * MON": (None, lambda d: (d.hour, d.minute) == (0, 0) and (d.day % 2 == 1 or d.weekday() == 0)),
    "0 0 */1 * MON": (None, lambda d: (d.hour, d.minute) == (0, 0) and d.weekday() == 0),
    "0 0 ? * mon,wed": (None, lambda d: (d.hour, d.minute) == (0, 0) and d.weekday() in (0, 2)),
    "15 14 * * 1-5": (None, lambda d: (d.hour, d.minute) == (14, 15) and d.weekday() < 5),
    "CRON_TZ=Asia/Kolkata 0 12 * * *": ("Asia/Kolkata", lambda d: (d.hour, d.minute) == (12, 0)),
}

VALID_SPECS = list(NEXT_CASES) + [
    "@yearly", "@annually", "@every 1h30m", "@every 1s", "@every 1.5s", "* * * * *",
    "0 0 1 JAN *", "0 0 * jan,JUL *", "0 0 1 1-12/3 *", "59 23 31 12 *", "0 0 28 2 *",
    "0,30 8-18 * * SAT,sun", "@every 100ms", "@every 0s", "@every -1s", "+5 * * * *", "1,,2 * * * *",
    "*-5 * * * *", "CRON_TZ= 0 0 * * *", "CRON_TZ=UTC  @daily ",
]

INVALID_SPECS = [
    "61 * * * *", "60 * * * *", "* * *", "* * * *", "* * * * * *", "@every", "@every abc",
    "@every 876001h", " @daily", "@daily ", "@Daily", "cron_tz=UTC 0 0 * * *", "@every  1s", "CRON_TZ=Mars/Olympus * * * * *", "TZ=Foo/Bar 0 * * * *",
    "@foo", "0 25 * * *", "*/0 * * * *", "5-1 * * * *", "* * 32 * *", "* * 0 * *", "* * * 13 *",
    "* * * 0 *", "* * * * 8", "x * * * *", "0 0 * FOO *", "* * * * MON-FOO", "1-2-3 * * * *",
    "CRON_TZ=Europe/Berlin", "-1 * * * *", "*/ * * * *",
]


class JobsTest(bb.ServerTestCase):

    def jobs_path(self, ch, name=None):
        p = "/%s/jobs" % q(ch)
        return p if name is None else p + "/" + q(name)

    def add(self, ch, body, status=201):
        r = self.req("POST", self.jobs_path(ch), body)
        self.assertStatus(r, status, "POST job %r" % (body,))
        return r

    def assertJob(self, job, name=None, cron=None, data=None, ttl=None):
        self.assertIsInstance(job, dict)
        missing = JOB_KEYS - set(job)
        self.assertFalse(missing, "job lacks %s: %r" % (sorted(missing), job))
        self.assertIs(type(job["ttl"]), int, "ttl is not an integer: %r" % job)
        self.assertRegex(job["createdAt"], bb.TIME_RE)
        if "nextRunAt" in job:
            self.assertRegex(job["nextRunAt"], bb.TIME_RE)
        for k, v in (("jobID", name), ("cron", cron), ("data", data), ("ttl", ttl)):
            if v is not None:
                self.assertEqual(job[k], v, "job %s: %r" % (k, job))

    def get_job(self, ch, name):
        r = self.req("GET", self.jobs_path(ch, name))
        self.assertStatus(r, 200, "GET job %r" % name)
        self.assertJob(r.json, name=name)
        self.assertRegex(r.json.get("nextRunAt", ""), bb.TIME_RE, "GET job without nextRunAt: %r" % r.json)
        return r.json

    def test_add_job(self):
        ch = self.chan()
        t0 = now_ns()
        r = self.add(ch, {"name": "nightly", "data": "run it", "cronDef": "0 3 * * *", "ttl": "1m"})
        job = r.json
        self.assertJob(job, name="nightly", cron="0 3 * * *", data="run it", ttl=60 * S)
        created = ts_ns(job["createdAt"])
        if not bb.URL:
            self.assertTrue(t0 - 50 * MS <= created <= now_ns() + 50 * MS, "createdAt %s" % job["createdAt"])
        ct = r.headers.get("Content-Type") or ""
        self.assertTrue(ct.startswith("application/json"), ct)
        got = self.get_job(ch, "nightly")
        for k in JOB_KEYS:
            self.assertEqual(got[k], job[k], k)

    def test_default_ttl_and_ttl_forms(self):
        ch = self.chan()
        job = self.add(ch, {"name": "a", "data": "d", "cronDef": "@hourly"}).json
        self.assertJob(job, ttl=600000000000)
        self.assertEqual(self.get_job(ch, "a")["ttl"], 600000000000)
        for i, (ttl, ns) in enumerate((("1m", 60 * S), ("1.5s", 1500 * MS), ("2h30m", 9000 * S), ("250ms", 250 * MS))):
            job = self.add(ch, {"name": "t%d" % i, "cronDef": "@hourly", "ttl": ttl}).json
            self.assertEqual(job["ttl"], ns, "ttl %r" % ttl)
        job = self.add(ch, {"name": "nul", "cronDef": "@hourly", "ttl": None, "data": None}).json
        self.assertEqual(job["ttl"], 600000000000)
        self.assertEqual(job["data"], "")

    def test_invalid_ttl(self):
        ch = self.chan()
        for ttl in ("0s", "-1m", "abc", "", 60, True):
            r = self.req("POST", self.jobs_path(ch), {"name": "x", "cronDef": "@hourly", "ttl": ttl})
            self.assertError(r, 400, mention="ttl", what="job ttl %r" % (ttl,))
        self.assertEqual(self.jobs(ch), [])

    def jobs(self, ch):
        r = self.req("GET", self.jobs_path(ch))
        self.assertStatus(r, 200)
        self.assertEqual(r.json.get("channelName"), ch)
        self.assertIsInstance(r.json.get("jobs"), list)
        return r.json["jobs"]

    def test_required_fields(self):
        ch = self.chan()
        bad = [{}, {"cronDef": "@hourly"}, {"name": "", "cronDef": "@hourly"}, {"name": "x"},
               {"name": "x", "cronDef": ""}, {"name": None, "cronDef": "@hourly"}, {"name": "x", "cronDef": None},
               {"name": 5, "cronDef": "@hourly"}, {"name": "x", "cronDef": 5}, {"name": ["x"], "cronDef": "@hourly"},
               {"name": "x", "cronDef": {"m": 1}}, {"name": "x", "cronDef": "@hourly", "priority": 10},
               {"name": True, "cronDef": "@hourly"}]
        for body in bad:
            r = self.req("POST", self.jobs_path(ch), body)
            self.assertError(r, 400, what="job body %r" % body)
        for body in (b"", b"{", b"{}x", b"[]", b'"x"', b'{"name":"x","cronDef":"@hourly"} {}'):
            r = self.req("POST", self.jobs_path(ch), body, {"Content-Type": "application/json"})
            self.assertError(r, 400, what="job body %r" % body)
        self.assertEqual(self.jobs(ch), [])

    def test_invalid_cron(self):
        ch = self.chan()
        for spec in INVALID_SPECS:
            r = self.req("POST", self.jobs_path(ch), {"name": "j", "cronDef": spec})
            self.assertError(r, 400, what="cronDef %r" % spec)
            self.assertGreater(len(r.json["error"]), 10, "the error says too little: %r" % r.json)
        self.assertEqual(self.jobs(ch), [])

    def test_valid_specs_accepted(self):
        ch = self.chan()
        for i, spec in enumerate(VALID_SPECS):
            r = self.req("POST", self.jobs_path(ch), {"name": "v%02d" % i, "data": spec, "cronDef": spec})
            self.assertStatus(r, 201, "cronDef %r" % spec)
            self.assertJob(r.json, name="v%02d" % i, cron=spec, data=spec)
            self.assertStatus(self.req("DELETE", self.jobs_path(ch, "v%02d" % i)), 202)

    def test_next_run_at(self):
        ch = self.chan()
        for i, (spec, (zone, pred)) in enumerate(sorted(NEXT_CASES.items())):
            if zone is None and bb.URL:
                continue  # the running server's zone is unknown
            r = self.req("POST", self.jobs_path(ch), {"name": "n%02d" % i, "cronDef": spec})
            self.assertStatus(r, 201, "cronDef %r" % spec)
            created = ts_ns(r.json["createdAt"])
            job = self.get_job(ch, "n%02d" % i)
            t_get = now_ns()
            want = next_fire(created, zone, pred)
            got = ts_ns(job["nextRunAt"])
            if t_get >= want - S:  # a fire time passed while we asked: the next one is fine too
                ok = got in (want, next_fire(want, zone, pred))
            else:
                ok = got == want
            self.assertTrue(ok, "cronDef %r created %s: nextRunAt %s, want %s"
                            % (spec, r.json["createdAt"], job["nextRunAt"], bb.fmt_ts(want)))

    def test_next_run_at_yearly(self):
        ch = self.chan()
        if bb.URL:
            self.skipTest("the running server's zone is unknown")
        for name, spec in (("y1", "@yearly"), ("y2", "@annually"), ("y3", "0 0 1 1 *")):
            created = ts_ns(self.add(ch, {"name": name, "cronDef": spec}).json["createdAt"])
            year = time.gmtime(created // S).tm_year + 1
            want = "%04d-01-01T00:00:00.000000000Z" % year
            self.assertEqual(self.get_job(ch, name)["nextRunAt"], want, spec)

    def test_every_next_run_at_exact(self):
        ch = self.chan()
        # robfig's Every: d cut to whole seconds, from createdAt's whole second
        for name, spec, d in (("h", "@every 1h", 3600 * S), ("hm", "@every 1h30m", 5400 * S),
                              ("odd", "@every 1m0.123456789s", 60 * S), ("sub", "@every 999ms", S)):
            created = ts_ns(self.add(ch, {"name": name, "cronDef": spec}).json["createdAt"])
            job = self.get_job(ch, name)
            self.assertEqual(ts_ns(job["nextRunAt"]), created // S * S + d,
                             "%s: createdAt %s, nextRunAt %s" % (spec, job["createdAt"], job["nextRunAt"]))

    def test_duplicate_name_409(self):
        ch = self.chan()
        first = self.add(ch, {"name": "dup", "data": "one", "cronDef": "@hourly", "ttl": "1m"}).json
        r = self.req("POST", self.jobs_path(ch), {"name": "dup", "data": "two", "cronDef": "@daily", "ttl": "2m"})
        self.assertError(r, 409, what="duplicate job name")
        got = self.get_job(ch, "dup")
        for k in JOB_KEYS:
            self.assertEqual(got[k], first[k], "409 changed the job's %s" % k)
        # an invalid duplicate is still an error and changes nothing
        r = self.req("POST", self.jobs_path(ch), {"name": "dup", "cronDef": "nonsense"})
        self.assertIn(r.status, (400, 409))
        self.assertEqual(len(self.jobs(ch)), 1)
        # the same name in another channel is fine
        self.add(self.chan(), {"name": "dup", "cronDef": "@hourly"})

    def test_list_sorted_by_name(self):
        ch = self.chan()
        self.assertEqual(self.jobs(ch), [])
        names = ["b", "a", "C", "c10", "c2", "\u00e4", "z"]
        for n in names:
            self.add(ch, {"name": n, "data": "d-" + n, "cronDef": "@hourly"})
        jobs = self.jobs(ch)
        self.assertEqual([j["jobID"] for j in jobs], sorted(names))
        for j in jobs:
            self.assertJob(j, cron="@hourly", data="d-" + j["jobID"], ttl=600000000000)
            self.assertRegex(j.get("nextRunAt", ""), bb.TIME_RE, "listed job without nextRunAt: %r" % j)

    def test_get_unknown_404(self):
        ch = self.chan()
        self.assertError(self.req("GET", self.jobs_path(ch, "nope")), 404)
        self.add(ch, {"name": "Yes", "cronDef": "@hourly"})
        self.assertError(self.req("GET", self.jobs_path(ch, "yes")), 404, what="job names are case-sensitive")
        self.assertError(self.req("GET", self.jobs_path(self.chan(), "Yes")), 404, what="job of another channel")

    def test_name_with_special_characters(self):
        ch = self.chan()
        name = 'my job \u00f6 "q" \\'
        job = self.add(ch, {"name": name, "cronDef": "@hourly"}).json
        self.assertEqual(job["jobID"], name)
        self.assertEqual(self.get_job(ch, name)["jobID"], name)
        self.assertStatus(self.req("DELETE", self.jobs_path(ch, name)), 202)

    def test_delete_and_reuse(self):
        ch = self.chan()
        self.add(ch, {"name": "del", "data": "old", "cronDef": "@hourly"})
        self.add(ch, {"name": "stay", "cronDef": "@hourly"})
        self.assertStatus(self.req("DELETE", self.jobs_path(ch, "del")), 202)
        self.assertError(self.req("GET", self.jobs_path(ch, "del")), 404)
        self.assertEqual([j["jobID"] for j in self.jobs(ch)], ["stay"])
        self.assertError(self.req("DELETE", self.jobs_path(ch, "del")), 404, what="second DELETE")
        job = self.add(ch, {"name": "del", "data": "new", "cronDef": "@daily"}).json
        self.assertJob(job, name="del", data="new", cron="@daily")
        self.assertEqual(self.get_job(ch, "del")["data"], "new")

    def test_delete_unknown_404(self):
        ch = self.chan()
        self.assertError(self.req("DELETE", self.jobs_path(ch, "ghost")), 404)


class JobFireTest(bb.ServerTestCase):
    """A job "@every 1s" publishes one event a second, never early, and
    nothing after it is deleted."""

    WEIGHT = 5  # slow: start it first

    def job_series(self, ch, name):
        """(fires, lateness in ns) of the job's latest fire, from one scrape
        of /metrics, or None before it fired there (on PostgreSQL the
        per-job series may lag by up to a second)."""
        r = self.req("GET", "/metrics")
        self.assertStatus(r, 200, "GET /metrics")
        got = {}
        labels = '{channel="%s",job="%s"}' % (ch, name)
        for line in r.raw.decode("utf-8").splitlines():
            for what in ("fires_total", "lateness_seconds"):
                if line.startswith("distribuerad_channel_job_%s%s " % (what, labels)):
                    got[what] = float(line.split()[-1])
        if len(got) < 2 or got["fires_total"] < 1:
            return None
        return int(got["fires_total"]), round(got["lateness_seconds"] * S)

    def test_every_second_fires(self):
        ch = self.chan()
        r = self.req("POST", "/%s/jobs" % q(ch), {"name": "tick", "data": "tick", "cronDef": "@every 1s", "ttl": "1m"})
        self.assertStatus(r, 201)
        created = ts_ns(r.json["createdAt"]) // S * S  # fires on whole seconds after it
        n0 = self.listing(ch)["count"]
        if now_ns() < created + 900 * MS:
            self.assertEqual(n0, 0, "a job fired at once")
        # Meanwhile the server's own report of each fire: how late it ran
        # (taken before the listing, so the listing holds those fires).
        seen = {}
        while now_ns() < created + 3300 * MS:
            f = self.job_series(ch, "tick")
            if f:
                seen[f[0]] = f[1]
            time.sleep(0.05)
        if not seen:
            f = self.wait_until(lambda: self.job_series(ch, "tick"), 3.0, msg="the job's fires in /metrics")
            seen[f[0]] = f[1]
        evs = self.listing(ch)["events"]
        listed = now_ns()
        # Times are the server's: how late the test itself runs on a busy
        # machine changes nothing below.
        self.assertGreaterEqual(len(evs), 2, "%d events after 3.3 s of @every 1s" % len(evs))
        self.assertLessEqual(len(evs), (listed - created) // S,
                             "%d events %.2f s after createdAt's second" % (len(evs), (listed - created) / S))
        pubs = [ts_ns(e["publishedAt"]) for e in evs]
        for e in evs:
            self.assertEvent(e, state="ready")
            self.assertEqual(e["data"], "tick")
            self.assertEqual(ts_ns(e["livesUntil"]) - ts_ns(e["publishedAt"]), 60 * S, "the job's ttl")
        # Fire i belongs to the time createdAt's second + i s: never early,
        # and before the next time, so no time is skipped or fired twice.
        for i, p in enumerate(pubs):
            due = created + (i + 1) * S
            self.assertGreaterEqual(p, due, "fire %d came early: %s" % (i + 1, evs[i]["publishedAt"]))
            self.assertLess(p, due + S, "fire %d is not the one for its second: %s"
                            % (i + 1, [e["publishedAt"] for e in evs]))
        # and the schedule itself runs on whole seconds from createdAt, not
        # from when fires ran: each fire, minus how late the server says it
        # ran, is exactly its scheduled time.
        for fires, late in sorted(seen.items()):
            self.assertLessEqual(fires, len(evs), "/metrics counts %d fires, the channel holds %d" % (fires, len(evs)))
            self.assertAlmostEqual(pubs[fires - 1] - late, created + fires * S, delta=1000,
                                   msg="fire %d at %s ran %.6f s late: not createdAt's second + %d s"
                                   % (fires, evs[fires - 1]["publishedAt"], late / S, fires))
        self.assertStatus(self.req("DELETE", "/%s/jobs/tick" % q(ch)), 202)
        t_del = now_ns()
        n = self.listing(ch)["count"]
        time.sleep(1.3)
        evs = self.listing(ch)["events"]
        self.assertEqual(len(evs), n, "a deleted job still publishes")
        for e in evs:
            self.assertLess(ts_ns(e["publishedAt"]), t_del + 5 * MS)

    def test_recreated_job_restarts_schedule(self):
        ch = self.chan()
        path = "/%s/jobs" % q(ch)
        self.assertStatus(self.req("POST", path, {"name": "j", "cronDef": "@every 1h"}), 201)
        self.assertStatus(self.req("DELETE", path + "/j"), 202)
        r = self.req("POST", path, {"name": "j", "data": "fast", "cronDef": "@every 1s"})
        self.assertStatus(r, 201)
        created = ts_ns(r.json["createdAt"]) // S * S
        self.wait_until(lambda: self.listing(ch)["count"] >= 1, 3.0, msg="the re-created job to fire")
        [e] = self.listing(ch)["events"][:1]
        self.assertEqual(e["data"], "fast")
        self.assertGreaterEqual(ts_ns(e["publishedAt"]), created + S)
        self.assertStatus(self.req("DELETE", path + "/j"), 202)


if __name__ == "__main__":
    unittest.main()
