#!/usr/bin/env python3
"""run.py -- runs the black-box tests (tests/blackbox/test_*.py) against the
server binary and prints one closing line:

    blackbox: N passed, M failed[, K skipped]

Usage: python3 tests/blackbox/run.py --bin ./distribuerad [--valgrind]
           [--store mem|pg|log] [-k SUBSTRING] [-j N] [-v] [--list]

Tests are unittest.TestCase classes. Each class runs in its own worker
process (this script with --worker) with its own server, up to -j classes at
a time (default 2); a class that takes longer than its time limit is killed
and its unfinished tests count as failed. A test that errors counts as
failed; skipped tests are not counted as passed. Exit status 0 only if
nothing failed.

--valgrind     start every server under valgrind (-q --leak-check=full
               --error-exitcode=99) with longer timeouts, and fail a class
               whose server does not exit 0 at SIGTERM.
--store pg     run the suite against the PostgreSQL store: one throwaway
               cluster for the whole run (tests/pg/pgctl.sh), each class on
               a fresh schema with two replicas (see bb.py); the closing
               line is then "blackbox-pg: ...". Also BLACKBOX_STORE=pg.
--store log    run the suite against the memory store with its log and
               -fsync always (every answer waits for an fsync): each server
               that would run -in-memory gets a data directory instead;
               the closing line is "blackbox-log: ...".
-k SUBSTRING   run only tests whose id (module.Class.test_name) contains it.
DISTRIBUERAD_URL=http://host:port   use that running server; tests that need
               a server of their own are skipped.
"""

import argparse
import importlib
import json
import re
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CLASS_TIMEOUT = 240.0  # seconds per test class (times 4 under valgrind)


# ------------------------------------------------------------- discovery ----

def discover(ksub):
    """Returns [(class_id, [test_id, ...])] in file and definition order,
    only classes with a test whose id contains ksub."""
    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    classes = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        mod = importlib.import_module(fn[:-3])
        suite = loader.loadTestsFromModule(mod)
        groups = {}
        order = []
        for t in iter_tests(suite):
            tid = t.id()
            if ksub and ksub not in tid:
                continue
            cid = tid.rsplit(".", 1)[0]
            if cid not in groups:
                groups[cid] = []
                order.append((cid, type(t)))
            groups[cid].append(tid)
        for cid, cls in order:
            classes.append((cid, groups[cid], getattr(cls, "WEIGHT", 1)))
    # longest classes first, so -j workers finish together
    classes.sort(key=lambda c: -c[2])
    return [(cid, tids) for cid, tids, _ in classes]


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


# ---------------------------------------------------------------- worker ----

class RecordingResult(unittest.TestResult):
    """Keeps one record per test: id, outcome (pass|fail|skip), detail."""

    def __init__(self):
        super().__init__()
        self.records = {}
        self.class_errors = []  # (outcome, detail) from setUpClass/tearDownClass
        self.started = {}

    def startTest(self, test):
        super().startTest(test)
        self.started[test.id()] = time.monotonic()

    def _dur(self, test):
        t0 = self.started.get(test.id())
        return time.monotonic() - t0 if t0 else 0.0

    def _detail(self, err, test):
        text = self._exc_info_to_string(err, test)
        log = ""
        if hasattr(test, "server_log"):
            try:
                log = test.server_log()
            except Exception:
                log = ""
        if log and "--- server log ---" not in text:
            text += "\n" + log
        return text

    def _put(self, test, outcome, detail):
        tid = test.id()
        if not isinstance(test, unittest.TestCase) or tid not in self.started:
            # setUpClass/tearDownClass: unittest reports them as _ErrorHolder
            self.class_errors.append((outcome, tid, detail))
            return
        prev = self.records.get(tid)
        if prev and prev["outcome"] == "fail":
            # a failure in tearDown after the test failed: keep both texts
            if outcome == "fail":
                prev["detail"] += "\n" + detail
            return
        self.records[tid] = {"id": tid, "outcome": outcome, "detail": detail, "time": self._dur(test)}

    def addSuccess(self, test):
        super().addSuccess(test)
        if test.id() not in self.records:
            self._put(test, "pass", "")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._put(test, "fail", self._detail(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._put(test, "fail", self._detail(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._put(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._put(test, "pass", "")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._put(test, "fail", "unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            outcome = "skip" if issubclass(err[0], unittest.SkipTest) else "fail"
            if outcome == "fail":
                rec = self.records.get(test.id())
                detail = "%s\n%s" % (subtest.id(), self._detail(err, test))
                if rec and rec["outcome"] == "fail":
                    rec["detail"] += "\n" + detail
                else:
                    self.records[test.id()] = {"id": test.id(), "outcome": "fail", "detail": detail,
                                               "time": self._dur(test)}

    def stopTest(self, test):
        super().stopTest(test)
        tid = test.id()
        if tid in self.records:
            self.records[tid]["time"] = self._dur(test)


def run_worker(class_id, ksub, out_path):
    sys.path.insert(0, HERE)
    modname, clsname = class_id.rsplit(".", 1)
    mod = importlib.import_module(modname)
    cls = getattr(mod, clsname)
    loader = unittest.TestLoader()
    tests = [t for t in loader.loadTestsFromTestCase(cls) if not ksub or ksub in t.id()]
    result = RecordingResult()
    unittest.TestSuite(tests).run(result)
    records = []
    class_fail = [d for o, _, d in result.class_errors if o == "fail"]
    class_skip = [d for o, _, d in result.class_errors if o == "skip"]
    for t in tests:
        rec = result.records.get(t.id())
        if rec is None:  # never ran: setUpClass failed or skipped the class
            if class_fail:
                rec = {"id": t.id(), "outcome": "fail", "time": 0.0,
                       "detail": "not run, setUpClass failed:\n" + class_fail[0]}
            else:
                rec = {"id": t.id(), "outcome": "skip", "time": 0.0,
                       "detail": class_skip[0] if class_skip else "not run"}
        records.append(rec)
    for o, tid, d in result.class_errors:
        if o == "fail" and "setUpClass" not in tid:
            records.append({"id": tid, "outcome": "fail", "detail": d, "time": 0.0})
    with open(out_path, "w") as f:
        json.dump(records, f)


# ---------------------------------------------------------------- runner ----

class Runner:
    def __init__(self, args, classes):
        self.args = args
        self.classes = list(classes)
        self.lock = threading.Lock()
        self.records = []
        self.timeout = CLASS_TIMEOUT * (4 if args.valgrind else 1)

    def run_class(self, cid, tids):
        out = tempfile.NamedTemporaryFile(prefix="bb-res-", suffix=".json", delete=False)
        out.close()
        logf = tempfile.TemporaryFile()
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", cid, "--out", out.name]
        if self.args.k:
            cmd += ["-k", self.args.k]
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        try:
            p.wait(self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the worker and the servers it started
            except ProcessLookupError:
                pass
            p.wait()
        logf.seek(0)
        output = logf.read().decode("utf-8", "replace")
        logf.close()
        recs = []
        try:
            with open(out.name) as f:
                recs = json.load(f)
        except (OSError, ValueError):
            pass
        os.unlink(out.name)
        if not recs:
            why = ("killed after %.0f s (time limit of the class)" % self.timeout if timed_out
                   else "worker exited with status %s and no results" % p.returncode)
            recs = [{"id": t, "outcome": "fail", "time": 0.0, "detail": why + "\n" + output[-6000:]}
                    for t in tids]
        elif output.strip() and self.args.v:
            recs[0]["detail"] = (recs[0].get("detail") or "") + "\nworker output:\n" + output[-3000:]
        self.report(cid, recs, time.monotonic() - t0)

    def report(self, cid, recs, elapsed):
        with self.lock:
            self.records.extend(recs)
            p = sum(r["outcome"] == "pass" for r in recs)
            f = sum(r["outcome"] == "fail" for r in recs)
            s = sum(r["outcome"] == "skip" for r in recs)
            line = "%-44s %3d passed, %d failed" % (cid, p, f)
            if s:
                line += ", %d skipped" % s
            print("%s (%.1f s)" % (line, elapsed), flush=True)
            for r in recs:
                if r["outcome"] == "fail":
                    print("  FAIL %s (%.1f s)" % (r["id"], r.get("time", 0.0)))
                    for ln in (r.get("detail") or "").rstrip().splitlines():
                        print("    " + ln)
                elif self.args.v:
                    extra = (" (%s)" % r["detail"]) if r["outcome"] == "skip" else ""
                    print("  %-4s %s (%.2f s)%s" % (r["outcome"], r["id"], r.get("time", 0.0), extra))
            sys.stdout.flush()

    def run(self):
        todo = list(self.classes)
        qlock = threading.Lock()

        def worker():
            while True:
                with qlock:
                    if not todo:
                        return
                    cid, tids = todo.pop(0)
                try:
                    self.run_class(cid, tids)
                except Exception:
                    self.report(cid, [{"id": t, "outcome": "fail", "time": 0.0,
                                       "detail": traceback.format_exc()} for t in tids], 0.0)

        threads = [threading.Thread(target=worker) for _ in range(max(1, self.args.j))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def main():
    ap = argparse.ArgumentParser(description="Distribuerad black-box tests")
    ap.add_argument("--bin", default="./distribuerad", help="server binary")
    ap.add_argument("--valgrind", action="store_true", help="run servers under valgrind")
    ap.add_argument("--store", choices=("mem", "pg", "log"), default=os.environ.get("BLACKBOX_STORE") or "mem",
                    help="the store the servers use (default mem; log: mem with -fsync always)")
    ap.add_argument("-k", default=None, help="only tests whose id contains this")
    ap.add_argument("-j", type=int, default=2, help="test classes run at once (default 2)")
    ap.add_argument("-v", action="store_true", help="list every test")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:  # the environment was set by the parent
        run_worker(args.worker, args.k, args.out)
        return 0

    os.environ["BLACKBOX_BIN"] = os.path.abspath(args.bin)
    os.environ["BLACKBOX_VALGRIND"] = "1" if args.valgrind else "0"
    os.environ["BLACKBOX_STORE"] = args.store
    label = "blackbox" if args.store == "mem" else "blackbox-" + args.store
    if args.store == "pg" and not args.list:
        try:
            cluster = start_cluster()
        except Exception as e:
            print("%s: cannot start PostgreSQL: %s" % (label, e))
            print("%s: 0 passed, 1 failed" % label)
            return 1
        try:
            return run_suite(args, label)
        finally:
            stop_cluster(cluster)
    return run_suite(args, label)


PGCTL = os.path.join(HERE, "..", "pg", "pgctl.sh")


def start_cluster():
    """Starts the run's one PostgreSQL (or uses BLACKBOX_PG_URL if set);
    returns its directory, or None for a cluster not ours."""
    if os.environ.get("BLACKBOX_PG_URL"):
        return None
    sys.path.insert(0, HERE)
    import pgfix
    if not pgfix.available():
        raise RuntimeError("PostgreSQL 15 is not installed (scripts/deps.sh test installs postgresql-15)")
    out = subprocess.run([PGCTL, "start"], check=True, capture_output=True, text=True, timeout=180)
    d = out.stdout.strip().splitlines()[-1]
    os.environ["BLACKBOX_PG_DIR"] = d
    os.environ["BLACKBOX_PG_URL"] = "postgresql:///postgres?host=%s/sock&user=postgres" % d
    return d


def stop_cluster(d):
    if d:
        subprocess.run([PGCTL, "stop", d], capture_output=True, timeout=180)


def run_suite(args, label):
    t0 = time.monotonic()
    try:
        classes = discover(args.k)
    except Exception:
        traceback.print_exc()
        print("%s: 0 passed, 1 failed" % label)
        return 1
    if args.list:
        for cid, tids in classes:
            for t in tids:
                print(t)
        print("%d tests in %d classes" % (sum(len(t) for _, t in classes), len(classes)))
        return 0
    if not os.environ.get("DISTRIBUERAD_URL") and not os.access(args.bin, os.X_OK):
        print("warning: %s is not an executable file; the tests will fail" % args.bin)

    runner = Runner(args, classes)
    runner.run()
    recs = runner.records
    p = sum(r["outcome"] == "pass" for r in recs)
    f = sum(r["outcome"] == "fail" for r in recs)
    s = sum(r["outcome"] == "skip" for r in recs)
    if f:
        print("\nfailed:")
        for r in recs:
            if r["outcome"] == "fail":
                detail = (r.get("detail") or "").split("--- server log ---")[0]
                first = next((ln for ln in reversed(detail.splitlines())
                              if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b", ln)), "")
                print("  %s  %s" % (r["id"], first[:160]))
    print("(%.1f s)" % (time.monotonic() - t0))
    line = "%s: %d passed, %d failed" % (label, p, f)
    if s:
        line += ", %d skipped" % s
    print(line, flush=True)
    return 0 if f == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
