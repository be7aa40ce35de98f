#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report_test.py: `scripts/report --smoke` end to end: every figure and
table appears and parses (the CSVs have their columns and rows, the SVGs
are SVG, REPORT.md names only figures that exist and has no unfilled
placeholder or failed section), no node is left running, also after
a Ctrl-C (which leaves the previous REPORT.md), `--only` reruns one
section and keeps the others, and bad arguments exit 2 before any
cluster starts. Prints TAP."""
import csv
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

SRC = os.environ.get("IDUNNO_SOURCE_DIR", ".")
REPORT = os.path.join(SRC, "scripts", "report")
sys.path.insert(0, os.path.join(SRC, "tests"))
import reaper  # noqa: E402
results = []
# The runs' clusters live under this test's temp folder (their TMPDIR),
# so the checks see only this test's nodes, not another run's.
TMP = tempfile.mkdtemp(prefix="report-test-")
ENV = dict(os.environ, TMPDIR=TMP)


def tap(ok, name, why=""):
    results.append(ok)
    print("%s %d - %s%s" % ("ok" if ok else "not ok", len(results), name,
                            "" if ok else ": " + why))
    sys.stdout.flush()


def left():
    """Node processes of this test's report runs (their data is in TMP)."""
    return reaper.processes(TMP, "--data ")


def report(*args, timeout=900):
    """Runs scripts/report in a session of its own, killed with it
    should this test die: (exit code, stderr)."""
    p = subprocess.Popen([REPORT] + list(args), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=ENV,
                         start_new_session=True)
    reaper.process(p.pid)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
        err += "\nno exit within %d s" % timeout
    return p.returncode, err


def bad_args(tmp):
    f = os.path.join(tmp, "a-file")
    open(f, "w").close()
    for args, name in (([f], "--out into a file"),
                       ([os.path.join(tmp, "no", "such")],
                        "--out under a missing folder")):
        rc, err = report("--smoke", "--out", *args, timeout=60)
        tap(rc == 2 and "report:" in err and not left(), name + " exits 2",
            "exit %d: %s" % (rc, err.strip()[-200:]))
    rc, err = report("--bogus", timeout=60)
    tap(rc == 2, "an unknown flag exits 2", err[-200:])
    rc, err = report("--smoke", "--recipes", "--out", tmp, timeout=60)
    tap(rc == 2 and "--recipes" in err and not left(),
        "--recipes in a smoke run exits 2",
        "exit %d: %s" % (rc, err.strip()[-200:]))


def interrupted(out):
    """Ctrl-C in the middle of an experiment: no node is left and the
    previous REPORT.md stays."""
    p = subprocess.Popen([REPORT, "--smoke", "--out", out, "--only",
                          "latency"], stderr=subprocess.PIPE, text=True,
                         env=ENV)
    reaper.process(p.pid)
    # Interrupt once a cluster of the run is up.
    for _ in range(600):
        if left() or p.poll() is not None:
            break
        time.sleep(0.1)
    time.sleep(2)
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        err = "no exit within 120 s of SIGINT"
    tap(p.returncode == 130 and "interrupted" in err,
        "Ctrl-C stops the run", "exit %s: %s" % (p.returncode,
                                                err.strip()[-200:]))
    nodes = []
    for _ in range(100):  # the nodes may take a moment to go
        nodes = left()
        if not nodes:
            break
        time.sleep(0.1)
    tap(not nodes, "Ctrl-C leaves no node behind", "; ".join(nodes)[:300])
    text = open(os.path.join(out, "REPORT.md")).read()
    tap(text == "previous\n", "Ctrl-C leaves the previous REPORT.md",
        text[:80])


def check_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        return "no rows"
    head = rows[0]
    if not head or any(not h or " " in h for h in head):
        return "bad header %r" % head
    for r in rows[1:]:
        if len(r) != len(head):
            return "row of %d columns under %d: %r" % (len(r), len(head), r)
    return ""


def main():
    reaper.folder(TMP)
    reaper.processes_under(TMP)
    tmp = TMP
    try:
        bad_args(tmp)
        out = os.path.join(tmp, "out")
        old = os.path.join(out, "REPORT.md")
        os.makedirs(out)
        with open(old, "w") as f:
            f.write("previous\n")
        interrupted(out)
        rc, err = report("--smoke", "--out", out)
        sys.stdout.write("".join("# " + l + "\n" for l in
                                 err.splitlines()[-30:]))
        tap(rc == 0, "report --smoke exits 0", "exit %d" % rc)
        tap(re.search(r"experiment \d+ of \d+ .*elapsed", err)
            is not None, "it prints a progress line")
        tap(not left(), "no node is left running", "; ".join(left())[:300])
        text = open(old).read() if os.path.exists(old) else ""
        tap(text.startswith("# IDunno: the report"), "REPORT.md written",
            text[:80])
        holes = re.findall(r"\{[a-z_0-9]+\}|%\(?[a-z]|\bNone\b|\bnan\b",
                           text)
        tap(not holes, "REPORT.md has no unfilled placeholder",
            repr(holes[:5]))
        tap("This experiment failed" not in text,
            "every experiment ran", "; ".join(re.findall(
                r"This experiment failed\*\*[^\n]*", text))[:400])
        figs = re.findall(r"\(figures/([^)]+\.svg)\)", text)
        tap(len(figs) >= 12, "REPORT.md shows the figures (%d)" % len(figs))
        missing = [f for f in figs if not os.path.exists(
            os.path.join(out, "figures", f))]
        tap(not missing, "every figure it names exists", repr(missing))
        bad = []
        for svg in glob.glob(os.path.join(out, "figures", "*.svg")):
            try:
                root = ET.parse(svg).getroot()
                if not root.tag.endswith("svg"):
                    bad.append(os.path.basename(svg))
            except ET.ParseError as e:
                bad.append("%s: %s" % (os.path.basename(svg), e))
        tap(not bad, "every SVG parses as SVG", repr(bad))
        csvs = glob.glob(os.path.join(out, "figures", "data", "*.csv"))
        errs = ["%s: %s" % (os.path.basename(c), check_csv(c))
                for c in csvs if check_csv(c)]
        tap(len(csvs) >= 9 and not errs,
            "every CSV (%d) has its columns and rows" % len(csvs),
            repr(errs))
        for name, cols in (("latency", ["model", "offered_qps",
                                        "achieved_qps", "p50_ms",
                                        "p99_ms"]),
                           ("fair", ["first_result_ms", "within10_s"]),
                           ("workers", ["at_once", "back_to_normal_s"]),
                           ("sdfs-throughput", ["size_mib", "put_mbps",
                                                "cp_fsync_mbps"]),
                           ("training", ["model", "epoch",
                                         "test_accuracy"])):
            path = os.path.join(out, "figures", "data", name + ".csv")
            head = next(csv.reader(open(path))) if os.path.exists(path) \
                else []
            tap(all(c in head for c in cols), "%s.csv has %s" % (
                name, ", ".join(cols)), repr(head))
        # Rerunning one section keeps the others, from the first run.
        rc, _ = report("--smoke", "--out", out, "--only", "sdfs",
                       timeout=300)
        again = open(old).read()
        tap(rc == 0 and again.count("\n## ") == text.count(
            "\n## ") and "reran sdfs" in again and
            "## Training as cluster jobs" in again,
            "--only sdfs reruns that section and keeps the others",
            "exit %d, %d of %d sections" % (rc,
                                            again.count("\n## "),
                                            text.count("\n## ")))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
