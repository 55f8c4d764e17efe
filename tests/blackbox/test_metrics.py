"""GET /metrics (issue 5 item 5): the Prometheus text passes
`promtool check metrics` after traffic of every kind, and the counters move
by exactly what the traffic did.

The main server runs with a data directory (not -in-memory), so the log
metrics are there too.

"""

import math
import os
import re
import shutil
import subprocess
import threading
import time
import unittest

import bb
from bb import SCALE, log_end, q

PROMTOOL = shutil.which("promtool")
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)(\s+-?\d+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape_label(v):
    """A label value as written, backslash escapes and all, to its text."""
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of every sample, and
    {name: type} from the # TYPE lines."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("not a sample line: %r" % line)
        labels = tuple(sorted((k, unescape_label(v)) for k, v in LABEL_RE.findall(m.group(2) or "")))
        key = (m.group(1), labels)
        if key in samples:
            raise AssertionError("sample given twice: %r" % line)
        samples[key] = float(m.group(3))
    return samples, types


class Scrape:
    def __init__(self, text):
        self.text = text
        self.samples, self.types = parse_metrics(text)

    def get(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def has(self, name):
        return any(k[0] == name for k in self.samples)

    def requests(self, route, status):
        return self.get("distribuerad_http_requests_total", route=route, status=str(status))


def scrape_settled(tc, cond, timeout=3.0):
    """A scrape of /metrics through tc.req. The memory store's series are
    exact at once: one scrape. On PostgreSQL the shared series are read
    from the database about once a second (API.md, Part D: they may lag by
    up to a second): scrape until cond(scrape) holds or timeout passes;
    the caller asserts on the scrape as always."""
    def one():
        r = tc.req("GET", "/metrics")
        tc.assertStatus(r, 200, "GET /metrics")
        return Scrape(r.raw.decode("utf-8"))
    s = one()
    deadline = time.monotonic() + timeout * SCALE
    while bb.PG and not cond(s) and time.monotonic() < deadline:
        time.sleep(0.05)
        s = one()
    return s


class MetricsCase(bb.ServerTestCase):

    def setUp(self):
        super().setUp()
        self.scrapes = 0

    def scrape(self):
        r = self.req("GET", "/metrics")
        self.assertStatus(r, 200, "GET /metrics")
        ct = r.headers.get("Content-Type") or ""
        self.assertTrue(ct.startswith("text/plain"), "Content-Type %r" % ct)
        self.scrapes += 1
        return Scrape(r.raw.decode("utf-8"))

    def promtool(self, text, what):
        if not PROMTOOL:
            self.skipTest("promtool is not installed (Debian package prometheus; scripts/deps.sh test)")
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode("utf-8", "replace").strip()
        self.assertEqual((p.returncode, out), (0, ""), "promtool check metrics (%s):\n%s\n--- metrics ---\n%s"
                         % (what, out, text[:3000]))

    def check_histograms(self, s):
        for name, typ in s.types.items():
            if typ != "histogram":
                continue
            buckets = sorted(((float("inf") if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"])), v)
                             for k, v in s.samples.items() if k[0] == name + "_bucket")
            self.assertTrue(buckets, "histogram %s has no buckets" % name)
            self.assertEqual(buckets[-1][0], float("inf"), "histogram %s has no +Inf bucket" % name)
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), "histogram %s buckets are not cumulative: %r" % (name, buckets))
            self.assertEqual(counts[-1], s.get(name + "_count"), "histogram %s: +Inf bucket != _count" % name)
            total = s.get(name + "_sum")
            self.assertTrue(total >= 0 and not math.isnan(total), "histogram %s: _sum %r" % (name, total))

    def settled(self, cond):
        """scrape_settled: at once on the memory store, once cond holds
        (or after 3 s) on PostgreSQL."""
        self.scrapes += 1
        return scrape_settled(self, cond)

    def wait_metric(self, cond, timeout, what):
        deadline = time.monotonic() + timeout * SCALE
        while True:
            s = self.scrape()
            if cond(s):
                return s
            if time.monotonic() > deadline:
                self.fail("timed out after %.1f s waiting for %s" % (timeout * SCALE, what))
            time.sleep(0.05)


@bb.memory_only("the log's series; its data directory")
class MetricsTest(MetricsCase):
    OWN_SERVER = True
    WEIGHT = 2
    SERVER_ARGS = ["-data-dir", "data"]  # relative to the server's own temp dir

    def log_file(self):
        return os.path.join(type(self).server.dir, "data", "distribuerad.log")

    def test_counters_follow_traffic(self):
        before = self.scrape()
        scrapes0 = self.scrapes
        ch = self.chan()
        # publishes: 5 single, one batch of 3
        evs = [self.publish(ch, {"data": str(i)}) for i in range(5)]
        r = self.req("POST", self.ev_path(ch), [{"data": "b%d" % i} for i in range(3)])
        self.assertStatus(r, 201)
        posts = 6
        # deletes: 2
        for e in evs[:2]:
            self.assertStatus(self.delete(ch, e["eventID"]), 202)
        # 404s: 3
        for _ in range(3):
            self.assertStatus(self.get_event(ch, "00000000000000000000"), 404)
        # expiries: 2 events that live 300 ms
        for i in range(2):
            self.publish(ch, {"data": "short", "ttl": "300ms"})
        posts += 2
        # a lock that runs out
        target = self.publish(ch, {"data": "lock me"})
        posts += 1
        self.assertStatus(self.lock(ch, target["eventID"], {"ttl": "200ms"}), 202)
        # a delayed event: published when it falls due
        self.publish(ch, {"data": "delayed", "publishIn": "300ms"})
        posts += 1
        # a job that fires every second, in its own channel
        jch = self.chan("job")
        self.assertStatus(self.req("POST", "/%s/jobs" % q(jch), {"name": "tick", "cronDef": "@every 1s"}), 201)
        # errors of several kinds, for the labels
        self.assertStatus(self.req("POST", self.ev_path(ch), b"{"), 400)
        self.assertStatus(self.req("DELETE", self.ev_path(ch)), 405)
        self.assertStatus(self.req("POST", "/%s/jobs" % q(jch), {"name": "tick", "cronDef": "@hourly"}), 409)
        self.assertStatus(self.lock(ch, evs[0]["eventID"]), 410)
        self.assertStatus(self.req("POST", self.ev_path(ch), {"data": "x" * (300 * 1024)}), 413)

        self.wait_metric(lambda s: s.get("distribuerad_job_fires_total") > before.get("distribuerad_job_fires_total")
                         and s.get("distribuerad_events_expired_total") >= before.get("distribuerad_events_expired_total") + 2
                         and s.get("distribuerad_lock_expiries_total") > before.get("distribuerad_lock_expiries_total")
                         and s.get("distribuerad_events_published_total")
                         >= before.get("distribuerad_events_published_total") + 13,
                         3.0, "a job fire, 2 expiries, a lock expiry and the delayed publish")
        self.assertStatus(self.req("DELETE", "/%s/jobs/tick" % q(jch)), 202)  # no more fires
        fired = self.listing(jch)["count"]
        time.sleep(0.1)  # the last fsync of the interval
        after = self.scrape()
        scraped = self.scrapes - scrapes0 - 1  # the scrapes between before and after
        d = lambda name, **l: after.get(name, **l) - before.get(name, **l)
        dr = lambda route, status: after.requests(route, status) - before.requests(route, status)

        self.assertGreaterEqual(fired, 1)
        self.assertEqual(d("distribuerad_job_fires_total"), fired, "job fires")
        self.assertEqual(d("distribuerad_job_lateness_seconds_count"), fired, "job lateness observations")
        self.assertEqual(d("distribuerad_events_published_total"), 5 + 3 + 2 + 1 + 1 + fired,
                         "published: 5 single, a batch of 3, 2 short-lived, 1 to lock, 1 delayed, and the job's")
        self.assertEqual(d("distribuerad_events_deleted_total"), 2, "deleted")
        self.assertEqual(d("distribuerad_events_expired_total"), 2, "expired")
        self.assertEqual(d("distribuerad_lock_expiries_total"), 1, "lock expiries")
        self.assertEqual(dr("POST /{c}/events", 201), posts, "POST /{c}/events 201")
        self.assertEqual(dr("POST /{c}/events", 400), 1, "POST /{c}/events 400")
        self.assertEqual(dr("POST /{c}/events", 413), 1, "POST /{c}/events 413")
        self.assertEqual(dr("DELETE /{c}/events/{p}", 202), 2, "DELETE /{c}/events/{p} 202")
        self.assertEqual(dr("GET /{c}/events/{p}", 404), 3, "GET /{c}/events/{p} 404")
        self.assertEqual(dr("PUT /{c}/events/{p}", 202), 1, "PUT /{c}/events/{p} 202")
        self.assertEqual(dr("PUT /{c}/events/{p}", 410), 1, "PUT /{c}/events/{p} 410")
        self.assertEqual(dr("POST /{c}/jobs", 201), 1, "POST /{c}/jobs 201")
        self.assertEqual(dr("POST /{c}/jobs", 409), 1, "POST /{c}/jobs 409")
        self.assertEqual(dr("DELETE /{c}/jobs/{p}", 202), 1, "DELETE /{c}/jobs/{p} 202")
        self.assertEqual(dr("GET /metrics", 200), scraped + 1, "GET /metrics 200 (the scrape itself counts)")
        self.assertGreaterEqual(d("distribuerad_http_request_duration_seconds_count"), posts + 10)
        # events by state agree with the channels
        chans = self.req("GET", "/channels").json["channels"]
        for state in ("ready", "scheduled", "locked"):
            self.assertEqual(after.get("distribuerad_events", state=state), sum(c[state] for c in chans),
                             "distribuerad_events{state=%r}" % state)
        self.assertEqual(after.get("distribuerad_channels"), len(chans))
        # the log: bytes written match the file's growth, fsyncs happened
        self.assertGreater(d("distribuerad_log_bytes_written_total"), 0, "log bytes written")
        if d("distribuerad_log_rewrites_total") == 0:
            self.assertEqual(d("distribuerad_log_bytes_written_total"), d("distribuerad_log_size_bytes"),
                             "bytes written != growth of distribuerad_log_size_bytes")
        self.assertEqual(after.get("distribuerad_log_size_bytes"), log_end(self.log_file()),
                         "distribuerad_log_size_bytes != the end of data/distribuerad.log's records")
        self.assertGreater(d("distribuerad_log_fsync_duration_seconds_count"), 0, "no fsync observed")
        self.assertEqual(d("distribuerad_log_write_errors_total"), 0)
        for s in (before, after):
            self.check_histograms(s)
        for name in ("distribuerad_log_bytes_written_total", "distribuerad_log_fsync_duration_seconds_count",
                     "distribuerad_job_lateness_seconds_count", "distribuerad_lock_expiries_total"):
            self.assertTrue(after.has(name), "%s missing" % name)
        self.promtool(after.text, "after traffic")

    def test_log_grows_with_each_publish(self):
        """Every publish is one more log record: bytes written grow with
        each, the fsync count does not stand still."""
        before = self.scrape()
        ch = self.chan()
        sizes = []
        for i in range(3):
            self.publish(ch, {"data": "d" * (100 * (i + 1))})
            sizes.append(self.scrape().get("distribuerad_log_bytes_written_total"))
        growth = [b - a for a, b in zip([before.get("distribuerad_log_bytes_written_total")] + sizes, sizes)]
        self.assertTrue(all(g > 100 for g in growth), "bytes written per publish: %r" % growth)
        self.assertTrue(growth[0] < growth[1] < growth[2], "larger data, larger records: %r" % growth)
        s = self.wait_metric(lambda s: s.get("distribuerad_log_fsync_duration_seconds_count")
                             > before.get("distribuerad_log_fsync_duration_seconds_count"), 2.0, "an fsync")
        self.promtool(s.text, "after publishes")


class TrafficMetricsTest(MetricsCase):
    """The Part B series on any store: totals, lock expiries, job fires and
    their lateness, requests by route and status move by exactly what the
    traffic did. On PostgreSQL the requests go to one replica (request
    series are per replica), the shared series may lag by up to a second
    (waited for), and job fires are per replica: summed over both."""
    OWN_SERVER = True

    def scrape_all(self):
        """One scrape of every replica (one on the memory store)."""
        out = []
        for port in type(self).ports or [self.port]:
            c = bb.Client(self.host, port)
            try:
                r = c.req("GET", "/metrics")
            finally:
                c.close()
            self.assertStatus(r, 200)
            self.scrapes += port == self.port  # counted in that replica's requests
            out.append(Scrape(r.raw.decode("utf-8")))
        return out

    def fires(self, name):
        return sum(s.get(name) for s in self.scrape_all())

    def test_counters_follow_traffic(self):
        self.pin_client()
        before = self.scrape()
        fires0 = self.fires("distribuerad_job_fires_total")
        late0 = self.fires("distribuerad_job_lateness_seconds_count")
        scrapes0 = self.scrapes
        ch = self.chan()
        evs = [self.publish(ch, {"data": str(i)}) for i in range(5)]
        self.assertStatus(self.req("POST", self.ev_path(ch), [{"data": "b%d" % i} for i in range(3)]), 201)
        for e in evs[:2]:
            self.assertStatus(self.delete(ch, e["eventID"]), 202)
        for _ in range(3):
            self.assertStatus(self.get_event(ch, "00000000000000000000"), 404)
        for i in range(2):
            self.publish(ch, {"data": "short", "ttl": "300ms"})
        target = self.publish(ch, {"data": "lock me"})
        self.assertStatus(self.lock(ch, target["eventID"], {"ttl": "200ms"}), 202)
        self.publish(ch, {"data": "delayed", "publishIn": "300ms"})
        jch = self.chan("job")
        self.assertStatus(self.req("POST", "/%s/jobs" % q(jch), {"name": "tick", "cronDef": "@every 1s"}), 201)
        self.assertStatus(self.req("POST", self.ev_path(ch), b"{"), 400)
        self.assertStatus(self.lock(ch, evs[0]["eventID"]), 410)
        d = lambda s, name: s.get(name) - before.get(name)
        want = {"distribuerad_events_published_total": 5 + 3 + 2 + 1 + 1,
                "distribuerad_events_deleted_total": 2, "distribuerad_events_expired_total": 2,
                "distribuerad_lock_expiries_total": 1}
        self.wait_metric(lambda s: all(d(s, k) >= v for k, v in want.items()), 4.0,
                         "2 expiries, a lock expiry and the delayed publish")
        deadline = time.monotonic() + 4 * SCALE
        while self.fires("distribuerad_job_fires_total") == fires0 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertStatus(self.req("DELETE", "/%s/jobs/tick" % q(jch)), 202)  # no more fires
        fired = self.listing(jch)["count"]
        self.assertGreaterEqual(fired, 1)
        want["distribuerad_events_published_total"] += fired
        after = self.wait_metric(lambda s: all(d(s, k) >= v for k, v in want.items()), 3.0, "the job's events")
        time.sleep(0.2 if bb.PG else 0)  # a fire in flight when the job was deleted
        self.assertEqual(self.fires("distribuerad_job_fires_total") - fires0, fired, "job fires")
        self.assertEqual(self.fires("distribuerad_job_lateness_seconds_count") - late0, fired,
                         "job lateness observations")
        for name, v in want.items():
            self.assertEqual(d(after, name), v, name)
        scraped = self.scrapes - scrapes0 - 1
        dr = lambda route, status: after.requests(route, status) - before.requests(route, status)
        self.assertEqual(dr("POST /{c}/events", 201), 10, "POST /{c}/events 201")
        self.assertEqual(dr("POST /{c}/events", 400), 1, "POST /{c}/events 400")
        self.assertEqual(dr("DELETE /{c}/events/{p}", 202), 2, "DELETE /{c}/events/{p} 202")
        self.assertEqual(dr("GET /{c}/events/{p}", 404), 3, "GET /{c}/events/{p} 404")
        self.assertEqual(dr("PUT /{c}/events/{p}", 202), 1, "PUT /{c}/events/{p} 202")
        self.assertEqual(dr("PUT /{c}/events/{p}", 410), 1, "PUT /{c}/events/{p} 410")
        self.assertEqual(dr("POST /{c}/jobs", 201), 1, "POST /{c}/jobs 201")
        self.assertEqual(dr("DELETE /{c}/jobs/{p}", 202), 1, "DELETE /{c}/jobs/{p} 202")
        self.assertEqual(dr("GET /metrics", 200), scraped + 1, "GET /metrics 200 (the scrape itself counts)")
        chans = self.req("GET", "/channels").json["channels"]
        after = self.settled(lambda s: all(s.get("distribuerad_events", state=st) == sum(c[st] for c in chans)
                                           for st in ("ready", "scheduled", "locked")))
        for state in ("ready", "scheduled", "locked"):
            self.assertEqual(after.get("distribuerad_events", state=state), sum(c[state] for c in chans),
                             "distribuerad_events{state=%r}" % state)
        self.assertEqual(after.get("distribuerad_channels"), len(chans))
        for s in self.scrape_all():
            self.check_histograms(s)
            self.promtool(s.text, "after traffic")

    def test_parked_acquire_counted_under_its_route(self):
        self.pin_client()
        ch = self.chan()
        before = self.scrape()
        res = {}

        def park():
            c = bb.Client(self.host, self.port, timeout=10.0)
            res["r"] = c.req("POST", "/%s/acquire" % q(ch), {"wait": "5s"})
            c.close()

        t = threading.Thread(target=park)
        t.start()
        time.sleep(0.3 * SCALE)
        self.publish(ch, {"data": "wake"})
        t.join(10 * SCALE)
        self.assertStatus(res["r"], 200)
        self.assertEqual(res["r"].json["count"], 1)
        # and one that times out
        self.assertEqual(self.req("POST", "/%s/acquire" % q(ch), {"wait": "200ms"}).json["count"], 0)
        # and one answered at once
        self.assertEqual(self.req("POST", "/%s/acquire" % q(ch), {}).json["count"], 0)
        after = self.scrape()
        got = after.requests("POST /{c}/acquire", 200) - before.requests("POST /{c}/acquire", 200)
        other = after.requests("other", 200) - before.requests("other", 200)
        self.assertEqual((got, other), (3, 0), "3 acquires answered 200 (one woken, one timed out, one at once) "
                         "counted as route=\"POST /{c}/acquire\": %d, as route=\"other\": %d" % (got, other))
        self.promtool(after.text, "after acquires")


class InMemoryMetricsTest(MetricsCase):
    """The default -in-memory server: no log, still valid text."""

    def test_promtool_in_memory(self):
        # On PostgreSQL request series are per replica: all go to one; the
        # shared gauges may lag by up to a second (Part D).
        self.pin_client()
        ch = self.chan()
        e = self.publish(ch)
        self.assertStatus(self.lock(ch, e["eventID"]), 202)
        self.assertStatus(self.req("GET", "/nope/x/y/z"), 404)
        s = self.wait_metric(lambda s: (s.get("distribuerad_events", state="locked") or 0) >= 1, 1.0,
                             "the locked event in distribuerad_events")
        self.assertGreaterEqual(s.requests("POST /{c}/events", 201), 1)
        self.assertGreaterEqual(s.requests("other", 404), 1)
        self.check_histograms(s)
        self.promtool(s.text, "in memory")


# How far the PostgreSQL store's estimate of the database clock may be off
# on a busy machine (half the round trip of its clock query).
CLOCK_SLACK = 0.5
CHANNEL_STATES = ("ready", "scheduled", "locked")
CHANNEL_COUNTERS = ("published", "deleted", "expired", "dead_lettered")


class ChannelMetricsTest(MetricsCase):
    """Per-channel series: events by state, the oldest ready age and the
    totals, each labelled with its channel, agreeing with the channel's
    stats."""
    OWN_SERVER = True

    def chan_get(self, s, what, ch, **labels):
        key = ("distribuerad_channel_" + what, tuple(sorted(dict(labels, channel=ch).items())))
        self.assertIn(key, s.samples, "no sample %r" % (key,))
        return s.samples[key]

    def test_series_follow_traffic(self):
        ch = self.chan('q"\\\u00e5')  # a quote, a backslash, UTF-8: escaped in the label
        evs = [self.publish(ch, {"data": str(i)}) for i in range(4)]
        self.assertStatus(self.delete(ch, evs[0]["eventID"]), 202)
        self.assertStatus(self.lock(ch, evs[1]["eventID"], {"ttl": "1m"}), 202)
        self.publish(ch, {"data": "later", "publishIn": "1h"})
        self.publish(ch, {"data": "short", "ttl": "200ms"})
        s = self.wait_metric(lambda s: s.get("distribuerad_channel_expired_total", channel=ch) >= 1, 3.0,
                             "the short-lived event's expiry")
        st = self.req("GET", "/%s" % q(ch)).json
        for state in CHANNEL_STATES:
            self.assertEqual(self.chan_get(s, "events", ch, state=state), st[state], "events{state=%r}" % state)
        self.assertEqual((self.chan_get(s, "events", ch, state="ready"), self.chan_get(s, "events", ch, state="locked"),
                          self.chan_get(s, "events", ch, state="scheduled")), (2, 1, 1))
        self.assertEqual(self.chan_get(s, "published_total", ch), 5, "4 at once and the short-lived one")
        self.assertEqual(self.chan_get(s, "deleted_total", ch), 1)
        self.assertEqual(self.chan_get(s, "expired_total", ch), 1)
        self.assertEqual(self.chan_get(s, "dead_lettered_total", ch), 0)
        for name, typ in (("distribuerad_channel_events", "gauge"),
                          ("distribuerad_channel_oldest_ready_age_seconds", "gauge"),
                          ("distribuerad_channel_published_total", "counter"),
                          ("distribuerad_channel_deleted_total", "counter"),
                          ("distribuerad_channel_expired_total", "counter"),
                          ("distribuerad_channel_dead_lettered_total", "counter"),
                          ("distribuerad_channel_events_overflow", "gauge"),
                          ("distribuerad_channel_oldest_ready_age_seconds_overflow", "gauge"),
                          ("distribuerad_channel_published_overflow_total", "counter"),
                          ("distribuerad_channel_deleted_overflow_total", "counter"),
                          ("distribuerad_channel_expired_overflow_total", "counter"),
                          ("distribuerad_channel_dead_lettered_overflow_total", "counter")):
            self.assertEqual(s.types.get(name), typ, name)
        self.promtool(s.text, "per-channel series")

    def test_oldest_ready_age(self):
        # One scrape renders every channel's age at one instant of the
        # server's clock: the difference of two channels' ages is exactly
        # the difference of the publishedAt of their oldest ready events,
        # however long the test takes between steps, and whatever the
        # server's estimate of the database clock (Part D). A reference
        # channel with one event published first gives that instant.
        ref, ch = self.chan(), self.chan()
        base = bb.ts_ns(self.publish(ref, {"data": "reference"})["publishedAt"])
        first = self.publish(ch, {"data": "first"})
        time.sleep(0.3)
        second = self.publish(ch, {"data": "second"})
        p1, p2 = bb.ts_ns(first["publishedAt"]), bb.ts_ns(second["publishedAt"])
        ready = lambda s, n: (s.get("distribuerad_channel_events", channel=ch, state="ready") == n and
                              s.get("distribuerad_channel_events", channel=ref, state="ready") == 1)
        # the age of the first event
        before = bb.now_ns()
        s = self.settled(lambda s: ready(s, 2))
        after = bb.now_ns()
        age, ref_age = (self.chan_get(s, "oldest_ready_age_seconds", c) for c in (ch, ref))
        self.assertAlmostEqual(ref_age - age, (p1 - base) / 1e9, delta=1e-6,
                               msg="age %r, reference %r: not the first event's" % (age, ref_age))
        self.assertAge(age, p1, before, after)
        # a locked event is not ready: the age is the next ready one's
        lk = self.lock(ch, first["eventID"], {"ttl": "1m"})
        self.assertStatus(lk, 202)
        time.sleep(0.1)
        before = bb.now_ns()
        s = self.settled(lambda s: ready(s, 1))
        after = bb.now_ns()
        age, ref_age = (self.chan_get(s, "oldest_ready_age_seconds", c) for c in (ch, ref))
        self.assertAlmostEqual(ref_age - age, (p2 - base) / 1e9, delta=1e-6,
                               msg="age %r, reference %r: not the second event's (first locked)" % (age, ref_age))
        self.assertAge(age, p2, before, after)
        # none ready: 0
        self.assertStatus(self.delete(ch, second["eventID"]), 202)
        s = self.settled(lambda s: ready(s, 0))
        self.assertEqual(self.chan_get(s, "oldest_ready_age_seconds", ch), 0)

    def assertAge(self, age, published, before, after):
        """age is in seconds since published, as of some instant between
        before and after (this host's clock; on PostgreSQL the server's
        estimate of the database clock, off by up to half a round trip of
        its once-a-second clock query: CLOCK_SLACK)."""
        slack = (CLOCK_SLACK if bb.PG else 0.001) * SCALE
        self.assertGreaterEqual(age, (before - published) / 1e9 - slack, "age %r before the scrape" % age)
        self.assertLessEqual(age, (after - published) / 1e9 + slack, "age %r after the scrape" % age)


class ChannelMetricsCapTest(MetricsCase):
    """-metrics-max-channels 2: the first two channels seen keep their
    series; later ones, even ones whose names sort first, are summed into
    the _overflow series without a channel label."""
    OWN_SERVER = True
    SERVER_ARGS = ["-in-memory", "-metrics-max-channels", "2"]

    def test_cap_and_overflow(self):
        a, b, z = "m-" + self.chan(), "n-" + self.chan(), "a-" + self.chan()
        self.publish(a)
        self.publish(b)
        s = self.settled(lambda s: s.get("distribuerad_channel_published_total", channel=a) == 1 and
                         s.get("distribuerad_channel_published_total", channel=b) == 1)
        self.assertEqual(s.get("distribuerad_channel_published_total", channel=a), 1)
        self.assertEqual(s.get("distribuerad_channel_published_total", channel=b), 1)
        self.assertEqual(s.get("distribuerad_channel_published_overflow_total"), 0)
        # z sorts before a and b but comes later: past the cap
        ev = [self.publish(z) for _ in range(3)]
        self.assertStatus(self.delete(z, ev[0]["eventID"]), 202)
        self.assertStatus(self.lock(z, ev[1]["eventID"], {"ttl": "1m"}), 202)
        time.sleep(0.2)
        s = self.settled(lambda s: s.get("distribuerad_channel_events_overflow", state="locked") == 1 and
                         s.get("distribuerad_channel_deleted_overflow_total") == 1)
        channels = {dict(k[1]).get("channel") for k in s.samples if k[0].startswith("distribuerad_channel_")}
        self.assertNotIn(z, channels, "a channel past the cap has series of its own")
        self.assertTrue({a, b} <= channels)
        self.assertEqual(s.get("distribuerad_channel_published_total", channel=a), 1, "a kept its series")
        self.assertEqual(s.get("distribuerad_channel_published_overflow_total"), 3)
        self.assertEqual(s.get("distribuerad_channel_deleted_overflow_total"), 1)
        self.assertEqual(s.get("distribuerad_channel_expired_overflow_total"), 0)
        self.assertEqual(s.get("distribuerad_channel_dead_lettered_overflow_total"), 0)
        self.assertEqual(s.get("distribuerad_channel_events_overflow", state="ready"), 1)
        self.assertEqual(s.get("distribuerad_channel_events_overflow", state="locked"), 1)
        self.assertEqual(s.get("distribuerad_channel_events_overflow", state="scheduled"), 0)
        # the overflow age is z's (the only ready event past the cap), younger than a's
        over = s.get("distribuerad_channel_oldest_ready_age_seconds_overflow")
        self.assertTrue(0.2 <= over < 10, "overflow age %r" % over)
        self.assertLess(over, s.get("distribuerad_channel_oldest_ready_age_seconds", channel=a))
        self.promtool(s.text, "with overflow")


if __name__ == "__main__":
    unittest.main()
