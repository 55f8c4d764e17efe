"""libpq is loaded only for the PostgreSQL store: a server on the memory
store never maps it (nor needs it: a broken libpq.so.5 first in the
library path does not stop it), a server given -database-url loads it at
start, and one whose libpq cannot be loaded or lacks a function stops at
start with a message naming the library, Debian's package and the
loader's reason, with the exit status of any other start-up failure."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import bb

LIBZ = "/lib/x86_64-linux-gnu/libz.so.1"


def dead_url():
    """A URL whose connection is refused at once."""
    return "postgresql://127.0.0.1:%d/x" % bb.free_port()


@bb.memory_pass_only("it is about which store loads libpq")
class LibpqTest(unittest.TestCase):

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="distribuerad-libpq-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def fake_libpq(self, source=None):
        """A folder holding a libpq.so.5 that is not libpq: empty (cannot
        be loaded) or a copy of source (loads, lacks every PQ function)."""
        d = self.tmpdir()
        path = os.path.join(d, "libpq.so.5")
        if source:
            shutil.copyfile(source, path)
        else:
            open(path, "wb").close()
        return d

    def run_bin(self, args, env_extra=None):
        env = dict(os.environ, **(env_extra or {}))
        p = subprocess.run([bb.BIN, "-address", "127.0.0.1", "-port", "0"] + args, cwd=self.tmpdir(),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=20 * bb.SCALE, env=env)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def maps(self, pid):
        with open("/proc/%d/maps" % pid) as f:
            return f.read()

    def test_memory_store_never_maps_libpq(self):
        for args in (["-in-memory"], ["-data-dir", "data"]):
            srv = bb.Server(args)
            self.addCleanup(srv.cleanup)
            srv.start()
            maps = self.maps(srv.proc.pid)
            self.assertIn("libh2o-evloop", maps, "reading %s's maps" % args)
            self.assertNotIn("libpq", maps, "%s: the memory store mapped libpq" % args)
            self.assertEqual(srv.stop(), 0, srv.log())

    def test_memory_store_starts_with_a_broken_libpq(self):
        env = dict(os.environ, TZ="UTC", LD_LIBRARY_PATH=self.fake_libpq())
        srv = bb.Server(["-data-dir", "data"], env=env)
        self.addCleanup(srv.cleanup)
        srv.start()
        self.assertEqual(srv.stop(), 0, srv.log())

    def test_database_url_loads_libpq(self):
        # A listener that accepts and never answers: the server waits in
        # its first connection, libpq loaded, until it is stopped.
        lsn = socket.socket()
        self.addCleanup(lsn.close)
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        lsn.settimeout(10 * bb.SCALE)
        url = "postgresql://u@127.0.0.1:%d/x" % lsn.getsockname()[1]
        p = subprocess.Popen([bb.BIN, "-address", "127.0.0.1", "-port", "0", "-database-url", url],
                             cwd=self.tmpdir(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            conn, _ = lsn.accept()
            self.addCleanup(conn.close)
            self.assertIn("/libpq.so.5", self.maps(p.pid))
        finally:
            p.kill()
            p.wait()

    def test_unloadable_libpq_stops_the_start(self):
        rc_refused, out = self.run_bin(["-database-url", dead_url()])
        self.assertIn("cannot connect to the database", out)
        d = self.fake_libpq()
        rc, out = self.run_bin(["-database-url", dead_url()], {"LD_LIBRARY_PATH": d})
        self.assertEqual(rc, rc_refused, out)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("cannot load libpq.so.5", out)
        self.assertIn("Debian package libpq5", out)
        self.assertIn(os.path.join(d, "libpq.so.5"), out, "no reason from the loader")
        self.assertNotIn("cannot connect", out)

    def test_incomplete_libpq_stops_the_start(self):
        if not os.path.exists(LIBZ):
            self.skipTest(LIBZ + " not found")
        rc, out = self.run_bin(["-database-url", dead_url()], {"LD_LIBRARY_PATH": self.fake_libpq(LIBZ)})
        self.assertEqual(rc, 1, out)
        self.assertIn("libpq.so.5 lacks PQ", out)
        self.assertIn("Debian package libpq5", out)
        self.assertIn("undefined symbol", out)


if __name__ == "__main__":
    unittest.main()
