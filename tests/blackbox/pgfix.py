"""pgfix.py -- a throwaway PostgreSQL for black-box tests of the
PostgreSQL store (tests/pg/pgctl.sh does the work).

    db = PgCluster.start()      # initdb + pg_ctl start, socket only
    db.url()                    # libpq URL (user postgres, trusted)
    db.psql("SELECT 1")         # runs SQL, returns stdout (raises on error)
    db.stop()                   # stops and removes it

Without PostgreSQL 15's binaries the tests that need it are skipped, except
under CI=true, where a missing database is a failure (scripts/deps.sh test
installs it).
"""

import os
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PGCTL = os.path.join(HERE, "..", "pg", "pgctl.sh")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")


def available():
    return os.access(os.path.join(PGBIN, "initdb"), os.X_OK)


def require(testcase_cls_or_self=None):
    """Skips (or, under CI, fails) when PostgreSQL is not installed."""
    if available():
        return
    msg = "PostgreSQL 15 is not installed (scripts/deps.sh test installs postgresql-15)"
    if os.environ.get("CI") == "true":
        raise AssertionError(msg)
    raise unittest.SkipTest(msg)


class PgCluster:
    def __init__(self, path):
        self.path = path

    @classmethod
    def start(cls):
        require()
        out = subprocess.run([PGCTL, "start"], check=True, capture_output=True, text=True, timeout=120)
        return cls(out.stdout.strip().splitlines()[-1])

    def url(self, user="postgres", password=None, dbname="postgres"):
        u = "postgresql:///%s?host=%s/sock&user=%s" % (dbname, self.path, user)
        if password is not None:
            u += "&password=" + password
        return u

    def psql(self, sql, user="postgres"):
        r = subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            self.url(user), "-c", sql], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("psql failed: %s\n%s" % (sql, r.stderr))
        return r.stdout.strip()

    def restart(self, mode="fast"):
        subprocess.run([PGCTL, "restart", self.path, mode], check=True, timeout=120)

    def stop(self):
        subprocess.run([PGCTL, "stop", self.path], timeout=120)
