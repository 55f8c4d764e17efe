#!/usr/bin/env python3
"""The cron differential test: Distribuerad's fire times against robfig/cron v3's.

Generates cron definitions from a fixed seed -- random five-field ones biased
towards the hours and minutes daylight-saving changes touch, every descriptor,
"@every" with odd durations, zone prefixes, and malformed ones -- and feeds the
same cases to tests/crondiff/robfig.go (robfig's ParseStandard and Next, built
offline against Debian's golang-github-robfig-cron-dev) and to
`test_cron --diff` (cron_parse and cron_next), and to `test_jobs --diff`: a
job of the definition created at the start instant and its preview of the
next runs (core_job_next_runs, the code behind `GET .../jobs/{name}?next=N`),
running and paused. Each case starts just before a
daylight-saving change of the zone under test (or at a random instant near
one) and asks for the next few fire times; both sides must print the same
line, including "E" for a rejected definition.

Each zone is one test. Prints one line per zone and a closing
"N passed, M failed" for tests/run.sh. Without Go or the robfig source the
test is skipped (0 passed, 0 failed).

Usage: tests/crondiff/run.py BUILD_DIR [--seed N] [--per-zone N] [-v]
"""
import argparse
import datetime
import os
import random
import shutil
import subprocess
import sys
import zoneinfo

HERE = os.path.dirname(os.path.abspath(__file__))
ROBFIG_SRC = "/usr/share/gocode/src/github.com/robfig/cron"
ZONES = [
    "Australia/Lord_Howe",   # 30-minute changes
    "Pacific/Chatham",       # +12:45/+13:45, changes at 02:45/03:45
    "Africa/Casablanca",     # negative DST around Ramadan, several changes a year
    "America/Santiago",      # changes at midnight: days without a 00:00
    "Europe/Dublin",         # negative DST in the tz data
    "America/St_Johns",      # -03:30, changes at 02:00 local
    "Asia/Kathmandu",        # +05:45, no DST
    "Pacific/Apia",          # DST until 2021, then none; skipped a day in 2011
    "America/Havana",        # changes at midnight (00:00 -> 01:00, 01:00 -> 00:00)
    "America/New_York",
    "Europe/Berlin",
    "UTC",
]
PREFIX_ZONES = ZONES + ["Asia/Kolkata", "America/Sao_Paulo", "Local", "", "Asia/Tehran"]
DESCRIPTORS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# minute, hour, day of month, month, day of week: (min, max, names)
FIELDS = [(0, 59, None), (0, 23, None), (1, 31, None), (1, 12, MONTHS), (0, 6, DAYS)]
FAVOURED = [[0, 1, 15, 29, 30, 31, 44, 45, 59], [0, 1, 2, 3, 22, 23], [1, 2, 28, 29, 30, 31], [], []]
DURATIONS = ["1s", "2s", "59s", "1m", "90s", "1m30s", "1.5s", "1.999s", "500ms", "0s", "0", "-1s", "-1h",
             "1h", "25h", "24h0m0.5s", "168h", "1h30m", "2h45m", "999999999ns", "1000000001ns", "1µs",
             "876000h", "876000h1s", "2562047h", "+5s", "5", "1e3s", "", " 5s", "5s ", "1h-5m", "3.7m"]
YEAR_FROM, YEAR_TO = 2019, 2031
COUNT = 6  # fire times asked per case


def case_line(start_ns, definition, robfig_definition=None):
    fields = [str(start_ns), str(COUNT), definition]
    if robfig_definition is not None and robfig_definition != definition:
        fields.append(robfig_definition)
    return "\x1f".join(fields)


class Generator:
    def __init__(self, rng):
        self.rng = rng

    def number(self, lo, hi, favoured):
        """A number and its text; rarely out of range (never 7 for day of week, which only
        Distribuerad takes)."""
        r = self.rng
        if favoured and r.random() < 0.6:
            v = r.choice(favoured)
        else:
            v = r.randint(lo, hi)
        if r.random() < 0.01:
            v = r.choice([lo - 1, hi + 1 if hi != 6 else 8, 99, 100000000000000000000])
        text = str(v) if v >= 0 else str(v)
        if r.random() < 0.03:
            text = r.choice(["0", "00", "+"]) + text
        return v, text

    def value(self, i):
        """A value of field i as (ours, robfig's text, number)."""
        lo, hi, names = FIELDS[i]
        r = self.rng
        if names and r.random() < 0.25:
            k = r.randrange(len(names))
            name = "".join(ch.upper() if r.random() < 0.5 else ch for ch in names[k])
            if names[k] == "fri" and r.random() < 0.3:
                name = name[:2] + "\u0130"  # Go lowers U+0130 to "i"
            return name, name, lo + k
        v, text = self.number(lo, hi, FAVOURED[i])
        if i == 4 and r.random() < 0.08:  # Sunday as 7: Distribuerad only
            return "7", "0", 0
        return text, text, v

    def item(self, i):
        r = self.rng
        lo, hi, _ = FIELDS[i]
        kind = r.random()
        step = str(r.choice([1, 1, 2, 2, 3, 5, 7, 10, 15, 30, r.randint(1, hi + 1)]))
        if r.random() < 0.01:
            step = r.choice(["0", "-1", "+2", "x", ""])
        if kind < 0.18:
            return (r.choice("**?"),) * 2
        if kind < 0.3:
            s = r.choice("**?") + "/" + step
            return s, s
        if kind < 0.33:  # robfig ignores what follows "*-"
            s = "*-" + str(r.randint(0, 9))
            return s, s
        a, ra, va = self.value(i)
        if kind < 0.55:
            return a, ra
        if kind < 0.65:
            return ra + "/" + step, ra + "/" + step
        b, rb, vb = self.value(i)
        if vb < va and r.random() < 0.95:  # mostly ranges that run forwards
            a, ra, b, rb = b, rb, a, ra
        if (a, b) != (ra, rb):  # a 7 in a range: leave it as robfig would not take it
            a, b = ra, rb
        s = a + "-" + b
        rs = ra + "-" + rb
        if kind < 0.85:
            return s, rs
        return s + "/" + step, rs + "/" + step

    def field(self, i):
        r = self.rng
        n = 1 if r.random() < 0.7 else r.randint(2, 4)
        items = [self.item(i) for _ in range(n)]
        ours = ",".join(a for a, _ in items)
        theirs = ",".join(b for _, b in items)
        if r.random() < 0.01:
            ours = theirs = r.choice([",", theirs + ",", "," + theirs, theirs.replace(",", ",,")])
        return ours, theirs

    def separator(self):
        r = self.rng.random()
        if r < 0.9:
            return " "
        return self.rng.choice(["  ", "\t", " \t ", "\u00a0", "\u3000", "\u2003"])

    def five_fields(self):
        fields = [self.field(i) for i in range(5)]
        if self.rng.random() < 0.3:  # mostly plain hours and days, so that fires are frequent
            fields[2] = fields[3] = ("*", "*")
        ours = fields[0][0]
        theirs = fields[0][1]
        for a, b in fields[1:]:
            sep = self.separator()
            ours += sep + a
            theirs += sep + b
        return ours, theirs

    def prefix(self):
        r = self.rng
        zone = r.choice(PREFIX_ZONES)
        p = r.choice(["CRON_TZ=", "CRON_TZ=", "TZ="])
        if r.random() < 0.03:
            p = p.lower()
        return p + zone + r.choice([" ", " ", " ", "  ", " \t"])

    def mutate(self, s):
        r = self.rng
        k = r.randint(0, 5)
        if k == 0:
            return " " + s
        if k == 1:
            return s + r.choice([" ", "\f", "\u00a0"])
        if k == 2:
            return s + " *"
        if k == 3:
            return " ".join(s.split()[:-1])
        if k == 4:
            # not inside a zone name: Distribuerad refuses names like "Asia//Kolkata" or
            # "./UTC" (documented), which Go would open
            start = s.index(" ") + 1 if s.startswith(("CRON_TZ=", "TZ=")) and " " in s else 0
            pos = r.randint(start, len(s))
            return s[:pos] + r.choice("-/,*?xX@=#0") + s[pos:]
        return s.upper()

    def definition(self):
        """(ours, robfig's) text of one random definition."""
        r = self.rng
        x = r.random()
        if x < 0.06:
            s = r.choice(DESCRIPTORS)
            ours = theirs = s
        elif x < 0.12:
            ours = theirs = "@every " + r.choice(DURATIONS)
        else:
            ours, theirs = self.five_fields()
        if r.random() < 0.15:
            p = self.prefix()
            ours, theirs = p + ours, p + theirs
        if r.random() < 0.05:
            ours = theirs = self.mutate(ours if ours == theirs else theirs)
        return ours, theirs


def run(cmd, lines, tz):
    env = dict(os.environ, TZ=tz)
    out = subprocess.run(cmd, input="".join(l + "\n" for l in lines).encode(), env=env,
                         stdout=subprocess.PIPE, check=True, timeout=120).stdout.decode()
    return out.split("\n")[:-1]


def build_robfig(build_dir):
    """Builds robfig.go into BUILD_DIR/crondiff/robfig, offline. Returns its path or None."""
    go = shutil.which("go")
    if not go or not os.path.isdir(ROBFIG_SRC):
        return None
    out_dir = os.path.abspath(os.path.join(build_dir, "crondiff"))
    os.makedirs(out_dir, exist_ok=True)
    binary = os.path.join(out_dir, "robfig")
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOFLAGS="", GOPROXY="off",
               GOTOOLCHAIN="local", GOCACHE=os.path.join(out_dir, "gocache"), CGO_ENABLED="0")
    env.pop("GOROOT", None)
    subprocess.run([go, "build", "-o", binary, os.path.join(HERE, "robfig.go")], env=env, check=True)
    return binary


def transitions(robfig, zone):
    lo = int(datetime.datetime(YEAR_FROM, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
    hi = int(datetime.datetime(YEAR_TO, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
    out = subprocess.run([robfig, "-transitions", str(lo), str(hi)], env=dict(os.environ, TZ=zone),
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    return [int(x) for x in out.split()]


def starts_near(rng, changes):
    """A start instant (ns): just before a change, or random within two days of one."""
    if not changes:
        changes = [int(datetime.datetime(2024, 3, 31, tzinfo=datetime.timezone.utc).timestamp())]
    t = rng.choice(changes)
    k = rng.random()
    if k < 0.5:
        before = rng.choice([1, 59, 60, 61, 1799, 1800, 3599, 3600, 3601, 7200, 86399, 86400])
        return (t - before) * 10**9 + rng.choice([0, 0, 1, 999999999, rng.randint(0, 10**9 - 1)])
    return t * 10**9 + rng.randint(-2 * 86400 * 10**9, 2 * 86400 * 10**9)


def zone_cases(rng, zone, changes, per_zone):
    gen = Generator(rng)
    cases = []
    for _ in range(per_zone):
        ours, theirs = gen.definition()
        cases.append(case_line(starts_near(rng, changes), ours, theirs))
    for d in DESCRIPTORS:  # every descriptor from every change
        for t in changes:
            cases.append(case_line((t - 1) * 10**9, d))
            cases.append(case_line((t - 3601) * 10**9 + 5, "CRON_TZ=" + zone + " " + d))
    for t in changes:  # fixed schedules that DST changes hit, from each change
        for d in ["* * * * *", "*/15 * * * *", "30 * * * *", "0 0 * * *", "30 0 * * *", "0 1 * * *",
                  "30 1 * * *", "45 1 * * *", "15 2 * * *", "30 2 * * *", "45 2 * * *", "0 3 * * *",
                  "0 23 * * *", "0 0 */2 * MON", "0 0 1,15 * 7", "@every 1h", "@every 1.5s"]:
            cases.append(case_line((t - 3601) * 10**9, d, d.replace("* 7", "* 0")))
    return cases


def show(ns_text, zone):
    if ns_text in ("E", "-", "P"):
        return ns_text
    tz = zoneinfo.ZoneInfo(zone) if zone else datetime.timezone.utc
    t = datetime.datetime.fromtimestamp(int(ns_text) // 10**9, tz)
    return f"{t.isoformat()}({ns_text[-9:]})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CRONDIFF_SEED", "1")))
    ap.add_argument("--per-zone", type=int, default=int(os.environ.get("CRONDIFF_PER_ZONE", "800")))
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    ours_bin = os.path.join(args.build_dir, "tests", "test_cron")
    preview_bin = os.path.join(args.build_dir, "tests", "test_jobs")
    robfig = build_robfig(args.build_dir)
    if robfig is None:
        print("crondiff: skipped: needs go and golang-github-robfig-cron-dev (scripts/deps.sh test)")
        print("crondiff: 0 passed, 0 failed")
        return 0
    rng = random.Random(args.seed)
    passed = failed = total = 0
    for zone in ZONES:
        changes = transitions(robfig, zone)
        cases = zone_cases(rng, zone, changes, args.per_zone)
        theirs = run([robfig], cases, zone)
        ours = run([ours_bin, "--diff"], cases, zone)
        preview = run([preview_bin, "--diff"], cases, zone)
        bad = [i for i in range(len(cases))
               if i >= len(ours) or ours[i] != theirs[i] or i >= len(preview) or preview[i] != theirs[i]]
        total += len(cases)
        rejected = sum(1 for t in theirs if t == "E")
        print(f"crondiff {zone}: {len(cases)} definitions ({rejected} rejected), {len(changes)} changes "
              f"{YEAR_FROM}-{YEAR_TO - 1}, {len(bad)} differ")
        for i in bad[:8]:
            start, _, definition = cases[i].split("\x1f")[:3]
            print(f"  {definition!r} from {show(start, zone)}")
            print(f"    robfig: {' '.join(show(x, zone) for x in theirs[i].split())}")
            got = ours[i] if i < len(ours) else "(no line)"
            print(f"    ours:   {' '.join(show(x, zone) for x in got.split())}")
            got = preview[i] if i < len(preview) else "(no line)"
            print(f"    next=N: {' '.join(show(x, zone) for x in got.split())}")
        if bad:
            failed += 1
        else:
            passed += 1
    print(f"crondiff: {total} definitions compared in {len(ZONES)} zones, seed {args.seed}")
    print(f"crondiff: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
