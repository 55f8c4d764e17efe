"""Command-line flags: --help, unknown flags, and the spellings of -port."""

import os
import shutil
import subprocess
import tempfile
import unittest

import bb


class FlagsTest(bb.ServerTestCase):

    OWN_SERVER = True
    CLASS_SERVER = False

    def run_bin(self, *args, timeout=5.0):
        try:
            p = subprocess.run([bb.BIN] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout * bb.SCALE, cwd=self.tmpdir())
        except subprocess.TimeoutExpired:
            self.fail("%s %s did not exit within %.0f s" % (bb.BIN, " ".join(args), timeout))
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="distribuerad-flags-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def test_help(self):
        for flag in ("--help", "-help", "-h"):
            rc, out = self.run_bin(flag)
            self.assertEqual(rc, 0, "%s exited %d: %s" % (flag, rc, out))
            self.assertIn("-port", out, "%s output does not mention -port" % flag)
            self.assertIn("-address", out, "%s output does not mention -address" % flag)

    def test_unknown_flag(self):
        for args in (["--bogus"], ["-bogus=1"], ["-in-memory", "-nosuchflag"]):
            rc, out = self.run_bin(*args)
            self.assertNotEqual(rc, 0, "%s exited 0" % args)
            self.assertTrue(out.strip(), "%s: no message" % args)
            self.assertIn(args[-1].lstrip("-").split("=")[0], out, "%s: the message does not name the flag" % args)

    def test_bad_flag_values(self):
        for args in (["-port"], ["-port", "abc"], ["-port", "70000"], ["-port", "-1"], ["-port="]):
            rc, out = self.run_bin("-in-memory", "-address", "127.0.0.1", *args)
            self.assertNotEqual(rc, 0, "%s exited 0" % args)
            self.assertTrue(out.strip(), "%s: no message" % args)

    def test_bad_env_value_names_the_variable(self):
        cases = [("DISTRIBUERAD_PORT", "99999"), ("DISTRIBUERAD_FSYNC", "sometimes"),
                 ("DISTRIBUERAD_IN_MEMORY", "maybe"), ("DISTRIBUERAD_REQUEST_TIMEOUT", "soon"),
                 ("DISTRIBUERAD_LOG_FORMAT", "yaml")]
        for var, value in cases:
            env = dict(os.environ, **{var: value})
            p = subprocess.run([bb.BIN, "-address", "127.0.0.1", "-port", "0"] if var != "DISTRIBUERAD_PORT"
                               else [bb.BIN, "-address", "127.0.0.1", "-in-memory"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=5 * bb.SCALE, cwd=self.tmpdir(), env=env)
            out = p.stdout.decode("utf-8", "replace")
            self.assertEqual(p.returncode, 2, "%s=%s: exit %d: %s" % (var, value, p.returncode, out))
            self.assertIn(var, out, "%s=%s: the message does not name the variable: %s" % (var, value, out))
        # a flag on the command line wins, and is named as the flag
        env = dict(os.environ, DISTRIBUERAD_PORT="1")
        p = subprocess.run([bb.BIN, "-in-memory", "-port", "99999"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=5 * bb.SCALE, env=env)
        out = p.stdout.decode()
        self.assertIn("-port", out)
        self.assertNotIn("DISTRIBUERAD_PORT", out)

    def test_port_spellings(self):
        forms = {
            "-port=N": lambda p: ["-address", "127.0.0.1", "-port=%d" % p],
            "--port N": lambda p: ["-address", "127.0.0.1", "--port", str(p)],
            "-port N": lambda p: ["-address", "127.0.0.1", "-port", str(p)],
            "--port=N --address=A": lambda p: ["--address=127.0.0.1", "--port=%d" % p],
            "-address=A -port N": lambda p: ["-address=127.0.0.1", "-port", str(p)],
        }
        for name, f in forms.items():
            srv = bb.Server(port_args=f)
            try:
                try:
                    srv.start()
                except bb.ServerError as e:
                    self.fail("flags %s: %s" % (name, e))
                cl = bb.Client(srv.host, srv.port)
                r = cl.req("GET", "/healthz")
                cl.close()
                self.assertEqual(r.status, 200, name)
                rc = srv.stop()
                self.assertEqual(rc, 0, "flags %s: exit status %s\n%s" % (name, rc, srv.log()))
            finally:
                srv.cleanup()


if __name__ == "__main__":
    unittest.main()
