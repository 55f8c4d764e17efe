"""PostgreSQL store, failover: a primary and a streaming standby made with
pg_basebackup, one server given both hosts with
target_session_attrs=read-write; the primary crashes under a running
publisher, the standby is promoted, and the server must be ready again
without a restart with every acknowledged event listed. The steps are
tests/pg/failover.sh (also run by hand); this runs it on the binary under
test. It skips while the server does not serve from PostgreSQL."""

import os
import subprocess
import unittest

import bb
import pgfix

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg", "failover.sh")


@bb.memory_pass_only("it starts PostgreSQL clusters of its own")
class PgFailoverTest(unittest.TestCase):
    WEIGHT = 4

    def test_standby_promoted_keeps_every_acknowledged_event(self):
        if bb.URL:
            raise unittest.SkipTest("needs its own server, and DISTRIBUERAD_URL is set")
        if bb.VALGRIND:
            raise unittest.SkipTest("the script runs the binary itself, not under valgrind")
        pgfix.require()
        r = subprocess.run([SCRIPT, bb.BIN], capture_output=True, text=True, timeout=300)
        out = r.stdout + r.stderr
        if r.returncode == 77:
            why = r.stderr.strip().splitlines()
            raise unittest.SkipTest(why[-1] if why else "skipped")
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("failover: passed", out)
