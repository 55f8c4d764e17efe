"""The files that run Distribuerad elsewhere, checked against the binary.

docker-compose.yml: parsed; every DISTRIBUERAD_* variable is one that
`distribuerad -help` lists, each published port is the port the service
listens on, the data volume is where the server keeps its log (and where the
Dockerfile puts it), and the health check (`dq ready`) is run for real
against a server started with the service's environment. The postgres
profile's variables are checked once the binary has -database-url.
deploy/systemd/distribuerad.service: `systemd-analyze verify` and
`systemd-analyze security --offline` (exposure at most 2.0), its flags and
variables against -help. man/: every server flag in distribuerad(8), every
dq command in dq(1), both free of groff warnings.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

import yaml

import bb
from test_dq import DQ, clean_env

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPOSE = os.path.join(ROOT, "docker-compose.yml")
UNIT = os.path.join(ROOT, "deploy", "systemd", "distribuerad.service")
HARDENING = ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
             "PrivateDevices=yes", "CapabilityBoundingSet=", "RestrictAddressFamilies=",
             "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes", "DynamicUser=yes",
             "StateDirectory=distribuerad", "ProtectKernelTunables=yes", "RestrictNamespaces=yes"]


def server_help():
    """(flags, env names, defaults by flag) from `distribuerad -help`."""
    out = subprocess.run([bb.BIN, "-help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=10).stdout.decode()
    flags = set(re.findall(r"^  (-[a-z][\w-]*)", out, re.M))
    envs = set(re.findall(r"env (DISTRIBUERAD_\w+)\)", out))
    defaults = dict(re.findall(r"^  (-[\w-]+)[^\n]*\n[^\n]*\(default ([^;]*);", out, re.M))
    return flags, envs, defaults


def dockerfile_env():
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = f.read()
    return dict(re.findall(r"^ENV (\w+)=(\S+)", text, re.M)), re.findall(r'^VOLUME \["([^"]+)"\]', text, re.M)


class ComposeTest(bb.ServerTestCase):
    CLASS_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(COMPOSE) as f:
            cls.compose = yaml.safe_load(f)
        cls.flags, cls.envs, cls.defaults = server_help()

    def distribuerad_services(self, profile=None):
        out = {}
        for name, svc in self.compose["services"].items():
            if svc.get("image", "").startswith("distribuerad") and \
                    (svc.get("profiles") or [None])[0] == profile:
                out[name] = svc
        return out

    def check_service(self, name, svc):
        env = svc.get("environment") or {}
        unknown = [k for k in env if k.startswith("DISTRIBUERAD_") and k not in self.envs]
        self.assertFalse(unknown, "%s: variables that -help does not list: %s" % (name, unknown))
        port = int(env.get("DISTRIBUERAD_PORT", self.defaults["-port"]))
        published = [int(str(p).rsplit(":", 1)[1]) for p in svc.get("ports", [])]
        self.assertEqual(published, [port], "%s: published ports %r, the server listens on %d" % (name, published, port))
        test = svc["healthcheck"]["test"]
        self.assertEqual(test[0], "CMD")
        self.assertEqual((test[1], test[-1]), ("dq", "ready"), "%s: health check %r" % (name, test))
        self.assertEqual(test[3], "http://127.0.0.1:%d" % port, "%s: health check URL" % name)
        self.assertEqual(svc.get("stop_signal"), "SIGTERM")

    def test_server_service(self):
        svcs = self.distribuerad_services()
        self.assertEqual(list(svcs), ["distribuerad"])
        svc = svcs["distribuerad"]
        self.check_service("distribuerad", svc)
        data_dir = svc["environment"]["DISTRIBUERAD_DATA_DIR"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        self.assertIn(data_dir, mounts, "the log directory %s is not on a volume" % data_dir)
        self.assertIn(mounts[data_dir], self.compose["volumes"])
        env, volumes = dockerfile_env()
        self.assertEqual(env.get("DISTRIBUERAD_DATA_DIR"), data_dir, "the Dockerfile keeps the log elsewhere")
        self.assertEqual(volumes, [data_dir])

    def test_postgres_profile(self):
        svcs = self.distribuerad_services("postgres")
        self.assertEqual(sorted(svcs), ["replica-1", "replica-2"])
        pg = self.compose["services"]["postgres"]
        self.assertEqual(pg["profiles"], ["postgres"])
        self.assertIn("pg_isready", " ".join(pg["healthcheck"]["test"]))
        for name, svc in svcs.items():
            url = svc["environment"]["DISTRIBUERAD_DATABASE_URL"]
            self.assertRegex(url, r"^postgres://[^@]+@postgres:5432/\w+$")
            self.assertEqual(svc["depends_on"]["postgres"]["condition"], "service_healthy")
            self.assertNotIn("volumes", svc, "%s: replicas keep their state in PostgreSQL" % name)
        if "-database-url" not in self.flags:
            self.skipTest("the binary has no -database-url yet (API Part D); variables not checked")
        for name, svc in svcs.items():
            self.check_service(name, svc)

    def test_health_check_runs(self):
        if bb.URL:
            self.skipTest("starts servers of its own")
        svc = self.compose["services"]["distribuerad"]
        tmp = tempfile.mkdtemp(prefix="compose-")
        port = bb.free_port()
        env = clean_env(**{k: str(v) for k, v in svc["environment"].items()
                           if not str(v).startswith("${")})
        env.update(DISTRIBUERAD_DATA_DIR=tmp, DISTRIBUERAD_PORT=str(port), DISTRIBUERAD_ADDRESS="127.0.0.1")
        test = [DQ if w == "dq" else w for w in svc["healthcheck"]["test"][1:]]
        test = [w.replace(":%s" % svc["environment"]["DISTRIBUERAD_PORT"], ":%d" % port) for w in test]
        p = subprocess.run(test, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10, env=clean_env())
        self.assertEqual(p.returncode, 2, "the health check passes with no server")
        proc = subprocess.Popen([bb.BIN], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            for _ in range(int(200 * bb.SCALE)):
                p = subprocess.run(test, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10,
                                   env=clean_env())
                if p.returncode == 0:
                    break
                time.sleep(0.05)
            self.assertEqual(p.returncode, 0, "health check %r: %s" % (test, p.stderr))
            self.assertIn(b'"status":"ok"', p.stdout)
            proc.terminate()
            self.assertEqual(proc.wait(10 * bb.SCALE), 0)
            self.assertTrue(os.listdir(tmp), "the server wrote no log into DISTRIBUERAD_DATA_DIR")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            shutil.rmtree(tmp, ignore_errors=True)


class SystemdUnitTest(bb.ServerTestCase):
    CLASS_SERVER = False

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="unit-")
        with open(UNIT) as f:
            self.text = f.read()
        # verify wants the ExecStart binary and the Documentation= man pages to exist
        with open(os.path.join(self.tmp, "distribuerad.service"), "w") as f:
            f.write(self.text.replace("/usr/local/bin/distribuerad", bb.BIN))
        for page, sec in (("dq.1", "1"), ("distribuerad.8", "8")):
            os.makedirs(os.path.join(self.tmp, "man", "man" + sec), exist_ok=True)
            shutil.copy(os.path.join(ROOT, "man", page), os.path.join(self.tmp, "man", "man" + sec))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def analyze(self, *args):
        exe = shutil.which("systemd-analyze")
        self.assertIsNotNone(exe, "systemd-analyze is missing (Debian package systemd; scripts/deps.sh test)")
        env = clean_env(MANPATH=os.path.join(self.tmp, "man"), SYSTEMD_LOG_LEVEL="notice")
        return subprocess.run([exe] + list(args) + [os.path.join(self.tmp, "distribuerad.service")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=60)

    def test_verify(self):
        p = self.analyze("verify")
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertNotIn("distribuerad.service", out, "systemd-analyze verify warns:\n" + out)

    def test_security_exposure(self):
        p = self.analyze("security", "--offline=yes", "--no-pager")
        out = p.stdout.decode()
        m = re.search(r"Overall exposure level for distribuerad\.service: (\d+\.\d+)", out)
        self.assertTrue(m, out[-2000:])
        self.assertLessEqual(float(m.group(1)), 2.0, out[-3000:])

    def test_hardening_flags_and_variables(self):
        lines = [ln.strip() for ln in self.text.splitlines() if ln.strip() and not ln.startswith("#")]
        for opt in HARDENING:
            self.assertTrue(any(ln.startswith(opt) for ln in lines), "the unit lacks %s" % opt)
        flags, envs, _ = server_help()
        exec_start = next(ln for ln in lines if ln.startswith("ExecStart="))
        used = re.findall(r"\s(-[a-z][\w-]*)", exec_start)
        self.assertTrue(used)
        self.assertFalse(set(used) - flags, "ExecStart flags that -help does not list")
        for name in re.findall(r"\b(DISTRIBUERAD_\w+)=", self.text):
            self.assertIn(name, envs, "the unit mentions %s, which -help does not list" % name)
        self.assertIn("KillSignal=SIGTERM", lines)


class ManPagesTest(bb.ServerTestCase):
    CLASS_SERVER = False

    def groff_warnings(self, page):
        p = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", os.path.join(ROOT, "man", page)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return p.returncode, p.stderr.decode()

    def test_distribuerad_8_has_every_flag(self):
        with open(os.path.join(ROOT, "man", "distribuerad.8")) as f:
            text = f.read().replace("\\-", "-")
        flags, _, _ = server_help()
        missing = sorted(f for f in flags if not re.search(r"\.B[IR]? %s\b" % re.escape(f), text))
        self.assertFalse(missing, "flags of -help without an entry in man/distribuerad.8: %s" % missing)
        self.assertEqual(self.groff_warnings("distribuerad.8"), (0, ""))

    def test_dq_1_has_every_command(self):
        with open(os.path.join(ROOT, "man", "dq.1")) as f:
            text = f.read().replace("\\-", "-")
        out = subprocess.run([DQ, "--help"], stdout=subprocess.PIPE, timeout=10).stdout.decode()
        commands = re.findall(r"^  ([a-z]+(?: [a-z]+)?)  +", out, re.M)
        self.assertIn("job trigger", commands)
        missing = [c for c in commands if not re.search(r"^\.B[R]? \"?%s\b" % re.escape(c), text, re.M)
                   and ('"%s"' % c) not in text]
        self.assertFalse(missing, "dq commands without an entry in man/dq.1: %s" % missing)
        self.assertEqual(self.groff_warnings("dq.1"), (0, ""))
