"""The server's clock (API.md general rules, "Clock"): it never goes back
and never stands still. A restart that finds the log later than the wall
clock, or a wall clock stepped back while running, leaves the server's
clock running on from its latest value at the monotonic rate, so every
duration (ttl, lock ttl, wait, publishIn, a job's period) still elapses as
a duration.

The wall clock is moved with libfaketime (Debian `faketime`, installed by
scripts/deps.sh test), preloaded into the server only. Its monotonic clock
is left alone (FAKETIME_DONT_FAKE_MONOTONIC), as a real clock step leaves
CLOCK_MONOTONIC alone.
"""

import os
import shutil
import tempfile
import time
import unittest

import bb
from bb import S, SCALE, ts_ns

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def faketime_env(**extra):
    env = dict(os.environ)
    env.pop("TZ", None)
    env.update({"LD_PRELOAD": LIBFAKETIME, "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    env.update(extra)
    return env


def plain_env():
    env = dict(os.environ)
    env.pop("TZ", None)
    return env


class ClockCase(bb.ServerTestCase):
    CLASS_SERVER = False
    OWN_SERVER = True

    def setUp(self):
        if not os.path.exists(LIBFAKETIME):
            self.skipTest("libfaketime is not installed (scripts/deps.sh test installs faketime)")
        if bb.VALGRIND or bb.SANITIZED:
            self.skipTest("libfaketime is not preloaded under valgrind or the sanitizers")
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="distribuerad-clock-")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
            s.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)
        super().tearDown()

    def start(self, env, args=None):
        s = bb.Server(args if args is not None else ["-data-dir", os.path.join(self.dir, "data")], env=env)
        self.servers.append(s)
        s.start()
        self.c = bb.Client(s.host, s.port)
        self.host, self.port = s.host, s.port
        return s

    # ---- what the rule promises, checked on whatever the clock did before
    def assertDurationsElapse(self):
        ch = self.chan()
        # a new event lives its ttl
        ev = self.publish(ch, {"data": "new", "ttl": "3s"})
        r = self.req("GET", self.ev_path(ch, ev["eventID"]))
        self.assertStatus(r, 200, "GET of an event just published")
        self.assertGreaterEqual(ts_ns(ev["livesUntil"]) - ts_ns(ev["publishedAt"]), 3 * S)
        # publishIn waits
        later = self.publish(ch, {"data": "later", "publishIn": "1h"})
        r = self.req("GET", self.ev_path(ch, later["eventID"]))
        self.assertStatus(r, 200)
        self.assertEqual(r.json["state"], "scheduled", "publishIn:1h is visible at once: %r" % r.json)
        # a lock of 1s lasts about 1s
        r = self.req("PUT", self.ev_path(ch, ev["eventID"]), {"action": "LOCK", "ttl": "1s"})
        self.assertStatus(r, 202)
        t0 = time.monotonic()
        r = self.req("PUT", self.ev_path(ch, ev["eventID"]), {"action": "LOCK", "ttl": "1s"})
        self.assertStatus(r, 410, "a 1s lock ended at once")
        while time.monotonic() - t0 < 5 * SCALE:
            r = self.req("GET", self.ev_path(ch, ev["eventID"]))
            self.assertStatus(r, 200)
            if r.json["state"] == "ready":
                break
            time.sleep(0.05)
        held = time.monotonic() - t0
        self.assertEqual(r.json["state"], "ready", "a 1s lock still held after %.1f s" % held)
        self.assertGreater(held, 0.7, "a 1s lock ended after %.2f s" % held)
        # a long-poll waits
        t0 = time.monotonic()
        r = self.req("POST", "/%s/acquire" % bb.q(self.chan()), {"wait": "1s"})
        waited = time.monotonic() - t0
        self.assertStatus(r, 200)
        self.assertEqual(r.json["count"], 0)
        self.assertGreater(waited, 0.8, "acquire with wait:1s returned after %.2f s" % waited)
        self.assertLess(waited, 3 * SCALE, "acquire with wait:1s returned after %.2f s" % waited)
        # a job fires
        jc = self.chan()
        r = self.req("POST", "/%s/jobs" % bb.q(jc), {"name": "j", "cronDef": "@every 1s", "data": "tick"})
        self.assertStatus(r, 201)
        deadline = time.monotonic() + 4 * SCALE
        count = 0
        while time.monotonic() < deadline and count == 0:
            time.sleep(0.1)
            count = self.req("GET", self.ev_path(jc)).json["count"]
        self.assertGreater(count, 0, "an @every 1s job fired nothing in 4 s")
        # and the short ttl of the first event elapses
        deadline = time.monotonic() + 5 * SCALE
        while time.monotonic() < deadline:
            if self.req("GET", self.ev_path(ch, ev["eventID"])).status == 404:
                break
            time.sleep(0.1)
        self.assertStatus(self.req("GET", self.ev_path(ch, ev["eventID"])), 404, "a 3s event still there")


class RestartBehindLogTest(ClockCase):
    """A log written with the clock a day fast, then a restart on the real
    clock: acknowledged events must not be lost, and the server's clock
    continues from the log's last record."""

    def test_restart_with_the_clock_behind_the_log(self):
        s = self.start(faketime_env(FAKETIME="+1d"))
        ch = self.chan()
        old = self.publish(ch, {"data": "from tomorrow"})
        self.assertGreater(ts_ns(old["publishedAt"]), time.time_ns() + 23 * 3600 * S,
                           "libfaketime did not move the server's clock")
        self.c.close()
        self.assertEqual(s.stop(), 0)

        self.start(plain_env())
        r = self.req("GET", self.ev_path(ch, old["eventID"]))
        self.assertStatus(r, 200, "the event published before the restart")
        ev = self.publish(ch, {"data": "after the restart"})
        self.assertGreaterEqual(ev["publishedAt"], old["publishedAt"], "the server's clock went back")
        r = self.req("GET", self.ev_path(ch, ev["eventID"]))
        self.assertStatus(r, 200, "an event answered 201 after the restart")
        st = self.req("GET", "/" + bb.q(ch)).json
        self.assertEqual(st["expired"], 0, "events expired at once: %r" % st)
        self.assertDurationsElapse()


class WallClockStepBackTest(ClockCase):
    """The wall clock stepped back an hour while the server runs."""

    def test_step_back_while_running(self):
        fake = os.path.join(self.dir, "faketime")
        with open(fake, "w") as f:
            f.write("+0\n")
        self.start(faketime_env(FAKETIME_TIMESTAMP_FILE=fake, FAKETIME_NO_CACHE="1"),
                   ["-in-memory"])
        ch = self.chan()
        before = self.publish(ch, {"data": "before"})
        with open(fake, "w") as f:
            f.write("-1h\n")
        time.sleep(0.2)
        ev = self.publish(ch, {"data": "after"})
        self.assertGreaterEqual(ev["publishedAt"], before["publishedAt"], "the server's clock went back")
        self.assertGreater(ev["publishedAt"], before["publishedAt"], "the server's clock stood still")
        self.assertDurationsElapse()


if __name__ == "__main__":
    unittest.main()
