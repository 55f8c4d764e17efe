"""One version: `distribuerad -version`, the distribuerad_build_info series
in /metrics, the Dockerfile's image label, src/base/version.h and the
latest release in CHANGELOG.md all say the same."""

import os
import re
import subprocess
import unittest

import bb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


class VersionTest(bb.ServerTestCase):

    def test_one_version_everywhere(self):
        m = re.search(r'#define DISTRIBUERAD_VERSION "([^"]+)"', read("src/base/version.h"))
        self.assertTrue(m, "no DISTRIBUERAD_VERSION in src/base/version.h")
        version = m.group(1)
        self.assertRegex(version, r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$", "not a semantic version")

        out = subprocess.run([bb.BIN, "-version"], stdout=subprocess.PIPE, timeout=5 * bb.SCALE).stdout.decode()
        self.assertEqual(out.strip(), "distribuerad " + version, "-version")

        r = self.req("GET", "/metrics")
        self.assertStatus(r, 200)
        series = re.findall(r'^distribuerad_build_info\{version="([^"]*)"\} 1$', r.raw.decode(), re.M)
        self.assertEqual(series, [version], "/metrics distribuerad_build_info")

        docker = re.findall(r"^ARG VERSION=(\S+)$", read("Dockerfile"), re.M)
        self.assertEqual(docker, [version], "Dockerfile ARG VERSION (the image label)")
        self.assertIn('org.opencontainers.image.version="${VERSION}"', read("Dockerfile"))

        releases = re.findall(r"^## (\d+\.\d+\.\d+\S*)", read("CHANGELOG.md"), re.M)
        self.assertTrue(releases, "no release heading in CHANGELOG.md")
        self.assertEqual(releases[0], version, "the latest release in CHANGELOG.md")

    def test_license(self):
        text = read("LICENSE")
        self.assertIn("MIT License", text)
        self.assertIn("Copyright (c) 2026 the Distribuerad authors", text)


if __name__ == "__main__":
    unittest.main()
