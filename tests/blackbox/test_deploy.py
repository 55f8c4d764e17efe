"""deploy/grafana and deploy/prometheus: the dashboard JSON parses and
names only metrics that docs/API.md lists; the ServiceMonitor selects the
Service of deploy/kubernetes, scrapes its named port at /metrics and takes
the token from the Secret the StatefulSet uses. No server needed."""

import json
import os
import re
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASH = os.path.join(ROOT, "deploy", "grafana", "distribuerad-dashboard.json")
MONITOR = os.path.join(ROOT, "deploy", "prometheus", "servicemonitor.yaml")
METRIC_RE = re.compile(r"\bdistribuerad_[a-z0-9_]+")
HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def documented_metrics():
    """Metric names written in backticks in docs/API.md."""
    names = set()
    for line in read(os.path.join(ROOT, "docs", "API.md")).splitlines():
        for code in re.findall(r"`([^`]+)`", line):
            names.update(METRIC_RE.findall(code))
    return names


def exprs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("expr", "query", "definition") and isinstance(v, str):
                yield v
            else:
                yield from exprs(v)
    elif isinstance(node, list):
        for v in node:
            yield from exprs(v)


class GrafanaDashboardTest(unittest.TestCase):

    def test_parses_and_has_panels(self):
        d = json.loads(read(DASH))
        self.assertEqual(d["uid"], "distribuerad")
        panels = [p for p in d["panels"] if p["type"] != "row"]
        self.assertGreaterEqual(len(panels), 8)
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        for p in panels:
            self.assertTrue(p.get("targets"), "panel %r has no query" % p["title"])

    def test_every_metric_is_documented(self):
        doc = documented_metrics()
        self.assertIn("distribuerad_channel_events", doc)
        used = set()
        for e in exprs(json.loads(read(DASH))):
            for name in METRIC_RE.findall(e):
                for part in HISTOGRAM_PARTS:
                    if name.endswith(part) and name[:-len(part)] in doc:
                        name = name[:-len(part)]
                used.add(name)
        self.assertTrue(used)
        self.assertEqual(sorted(used - doc), [], "metrics in the dashboard that docs/API.md does not list")

    def test_the_per_channel_series_are_all_shown(self):
        text = read(DASH)
        for name in ("distribuerad_channel_events", "distribuerad_channel_oldest_ready_age_seconds",
                     "distribuerad_channel_published_total", "distribuerad_channel_deleted_total",
                     "distribuerad_channel_expired_total", "distribuerad_channel_dead_lettered_total",
                     "distribuerad_channel_job_fires_total", "distribuerad_channel_job_skips_total",
                     "distribuerad_channel_job_lateness_seconds"):
            self.assertRegex(text, r"\b%s\b" % name)


class ServiceMonitorTest(unittest.TestCase):

    def load(self, path):
        try:
            import yaml  # Debian: python3-yaml (scripts/deps.sh test)
        except ImportError:
            self.fail("needs the Python module yaml (Debian: apt-get install python3-yaml)")
        return list(yaml.safe_load_all(read(path)))

    def test_selects_the_service_and_its_port(self):
        (sm,) = self.load(MONITOR)
        self.assertEqual((sm["apiVersion"], sm["kind"]), ("monitoring.coreos.com/v1", "ServiceMonitor"))
        (svc,) = self.load(os.path.join(ROOT, "deploy", "kubernetes", "service.yaml"))
        labels = svc["metadata"]["labels"]
        for k, v in sm["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(k), v, "the Service lacks label %s=%s" % (k, v))
        ports = {p["name"] for p in svc["spec"]["ports"]}
        (ep,) = sm["spec"]["endpoints"]
        self.assertIn(ep["port"], ports)
        self.assertEqual(ep["path"], "/metrics")
        cred = ep["authorization"]["credentials"]
        (secret,) = self.load(os.path.join(ROOT, "deploy", "kubernetes", "secret.yaml"))
        self.assertEqual(cred["name"], secret["metadata"]["name"])
        self.assertIn(cred["key"], secret["stringData"])
        sts = read(os.path.join(ROOT, "deploy", "kubernetes", "statefulset.yaml"))
        self.assertIn("name: %s" % cred["name"], sts, "the StatefulSet takes its token from another Secret")
