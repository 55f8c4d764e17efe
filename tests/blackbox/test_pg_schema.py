"""PostgreSQL store, start-up: the schema is created and migrated once (also
with replicas starting together), a schema newer than the binary serves is
refused, and bad URLs, passwords and schemas stop the start with a message
that names the host and the reason but never the password."""

import os
import signal
import subprocess
import tempfile
import time
import unittest

import bb
import pgfix


def run(args, timeout=20.0):
    """Runs the server until it exits by itself or logs that it listens
    (then stops it with SIGTERM). Returns (exit status, output)."""
    with tempfile.TemporaryDirectory(prefix="distribuerad-pg-") as d:
        logp = os.path.join(d, "out")
        with open(logp, "wb") as logf:
            p = subprocess.Popen([bb.BIN, "-address", "127.0.0.1", "-port", "0"] + args, cwd=d,
                                 stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout * bb.SCALE
        while p.poll() is None and time.monotonic() < deadline:
            with open(logp, "rb") as f:
                if b"listening on" in f.read():
                    p.send_signal(signal.SIGTERM)
                    break
            time.sleep(0.02)
        try:
            p.wait(timeout * bb.SCALE)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        with open(logp, "rb") as f:
            return p.returncode, f.read().decode("utf-8", "replace")


@bb.memory_pass_only("it starts PostgreSQL clusters of its own")
class PgSchemaTest(unittest.TestCase):
    WEIGHT = 3

    @classmethod
    def setUpClass(cls):
        cls.db = pgfix.PgCluster.start()

    @classmethod
    def tearDownClass(cls):
        cls.db.stop()

    def start(self, schema, *extra, url=None):
        return run(["-database-url", url or self.db.url(), "-database-schema", schema] + list(extra))

    def test_migrates_once_and_starts_again(self):
        rc, out = self.start("s_twice")
        self.assertIn('schema "s_twice" migrated from version 0 to', out)
        rc, out = self.start("s_twice")
        self.assertNotIn("migrated", out)
        self.assertRegex(out, r'schema "s_twice" at version \d+')
        self.assertEqual(self.db.psql("SELECT count(*) FROM s_twice.migrations WHERE version = 1"), "1")
        for table in ("events", "channels", "jobs", "counters"):
            self.assertEqual(self.db.psql("SELECT to_regclass('s_twice.%s') IS NOT NULL" % table), "t", table)

    def test_a_name_that_needs_quoting_is_shown_as_sql_writes_it(self):
        rc, out = self.start('My"Sch ema')
        self.assertIn('schema "My""Sch ema" migrated from version 0 to', out)
        rc, out = self.start('My"Sch ema')
        self.assertRegex(out, r'schema "My""Sch ema" at version \d+')
        self.assertEqual(self.db.psql("""SELECT to_regclass('"My""Sch ema".events') IS NOT NULL"""), "t")

    def test_replicas_starting_together_migrate_once(self):
        url = self.db.url()
        procs = [subprocess.Popen([bb.BIN, "-address", "127.0.0.1", "-port", "0", "-database-url", url,
                                   "-database-schema", "s_race"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT) for _ in range(3)]
        outs = []
        for p in procs:
            try:
                out, _ = p.communicate(timeout=5 * bb.SCALE)
            except subprocess.TimeoutExpired:  # serving: stop it
                p.send_signal(signal.SIGTERM)
                out, _ = p.communicate(timeout=10 * bb.SCALE)
            outs.append(out.decode())
        self.assertEqual(sum("migrated from version 0" in o for o in outs), 1, "\n".join(outs))
        self.assertEqual(self.db.psql("SELECT count(*) FROM s_race.migrations"),
                         self.db.psql("SELECT max(version) FROM s_race.migrations"))

    def test_refuses_a_newer_schema(self):
        self.start("s_newer")
        self.db.psql("INSERT INTO s_newer.migrations (version, name, min_version) VALUES (9999, 'future', 9998)")
        rc, out = self.start("s_newer")
        self.assertNotEqual(rc, 0)
        self.assertIn('schema "s_newer" is at version 9999 and serves binaries that know version 9998 or later', out)
        self.assertNotIn("listening on", out)

    def test_runs_on_a_newer_schema_that_still_serves_it(self):
        self.start("s_compat")
        self.db.psql("INSERT INTO s_compat.migrations (version, name, min_version) VALUES (9999, 'future', 1)")
        rc, out = self.start("s_compat")
        self.assertIn("newer than this binary, still compatible", out)
        self.assertNotIn("serves binaries that know", out)

    def test_wrong_password_names_host_not_password(self):
        self.db.psql("DO $$ BEGIN CREATE ROLE pw_user LOGIN PASSWORD 'right-one'; "
                     "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        rc, out = self.start("s_pw", url=self.db.url("pw_user", "Sup3rSecretPw"))
        self.assertNotEqual(rc, 0)
        self.assertIn("cannot connect to the database at %s/sock" % self.db.path, out)
        self.assertIn("password authentication failed", out)
        self.assertNotIn("Sup3rSecretPw", out)

    def test_password_in_an_unparsable_url_is_not_shown(self):
        rc, out = self.start("s_bad", url="postgresql://bob:Sup3rSecretPw@localhost:5 5/x")
        self.assertNotEqual(rc, 0)
        self.assertIn("localhost", out)
        self.assertNotIn("Sup3rSecretPw", out)

    def test_unreachable_host_names_host_and_reason(self):
        rc, out = self.start("s_x", url="host=%s/nowhere user=postgres" % self.db.path)
        self.assertNotEqual(rc, 0)
        self.assertIn("cannot connect to the database at %s/nowhere" % self.db.path, out)
        self.assertIn("No such file or directory", out)

    def test_schema_owned_by_someone_else(self):
        self.db.psql("DO $$ BEGIN CREATE ROLE limited LOGIN; "
                     "EXCEPTION WHEN duplicate_object THEN NULL; END $$; "
                     "CREATE SCHEMA IF NOT EXISTS theirs")
        rc, out = self.start("theirs", url=self.db.url("limited"))
        self.assertNotEqual(rc, 0)
        self.assertIn('cannot create tables in the schema "theirs"', out)

    def test_in_memory_excludes_database(self):
        rc, out = run(["-in-memory", "-database-url", self.db.url()])
        self.assertEqual(rc, 2)
        self.assertIn("-database-url and -in-memory exclude each other", out)


if __name__ == "__main__":
    unittest.main()
