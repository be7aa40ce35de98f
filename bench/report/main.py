# SPDX-License-Identifier: MIT
"""main.py: scripts/report's driver: checks its arguments, runs each
experiment (a module of this folder) on local clusters, keeps their CSVs
and figures in a temp folder and moves it over DIR only at the end."""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import common
from common import Failed
import render

import exp_latency
import exp_fair
import exp_failures
import exp_timeline
import exp_detect
import exp_scaling
import exp_sdfs
import exp_training

EXPERIMENTS = [exp_latency, exp_fair, exp_failures.WorkerFail,
               exp_failures.CoordFail, exp_timeline, exp_detect, exp_scaling,
               exp_sdfs, exp_training]

USAGE = """scripts/report [--quick | --smoke] [--recipes] [--out DIR] [--only NAMES]

Runs IDunno's evaluation on local clusters it starts and stops itself and
writes DIR/REPORT.md with figures (SVG) under DIR/figures/ and each run's
raw data (CSV) under DIR/figures/data/. DIR defaults to docs.
  --quick    the same figures and tables from fewer, shorter runs (<10 min)
  --smoke    every figure and table from tiny runs (<90 s), for the tests
  --recipes  the training section trains both models' full recipes
             (docs/MODELS.md; about 20 min more); without it LeNet-5
             trains 10 epochs and ResNet-18 one
  --only     comma list of experiments to run (%s)
IDUNNO_REPORT_TRACE=1 prints each command it runs, with its time.
Exit codes: 0 every experiment ran, 1 one failed (its section says why),
2 bad arguments or a missing tool (nothing was started).""" % ", ".join(
    e.NAME for e in EXPERIMENTS)


# Every sim model an experiment uses: (name, ms a batch).
SHARED_SIMS = [("sim20", 20), ("simb", 100)]
# The first this many images of each split: a smoke run's data set, and
# that of the fresh clusters (their sim model replays the queries).
SMALL_SET = 1000


class Ctx:
    """What an experiment gets: the mode's sizes, where to write."""

    def __init__(self, mode, out_tmp, tmp, recipes=False):
        self.mode = mode
        self.recipes = recipes
        self.out = out_tmp
        self.fig = os.path.join(out_tmp, "figures")
        self.data = os.path.join(self.fig, "data")
        self.tmp = tmp
        self.shared = None
        # The last kill series (exp_failures), and in a smoke run its
        # coordinator kill: a smoke run's later sections draw from them.
        self.last_series = self.coord_series = None
        os.makedirs(self.data)

    def cluster(self, nodes, phase="infer", pin=False,
                torch_models=("lenet5", "resnet18"), sims=(), fresh=False):
        """A cluster with Fashion-MNIST and the models in SDFS, in the
        phase asked. The experiments share one cluster (smoke: 5 nodes
        and a small data set; quick and full: 10 nodes), so only the
        first pays for its start and imports; `fresh` starts one of
        `nodes` nodes with a small data set and only the models asked."""
        if fresh:
            cl = common.Cluster(nodes, pin=pin, tmp=self.tmp)
            cl.setup_data(torch_models, sims, images=SMALL_SET)
        elif self.shared is None or self.shared.root not in common.live():
            cl = self.shared = common.Cluster(self.pick(5, 10, 10),
                                              tmp=self.tmp)
            cl.setup_data(("lenet5", "resnet18"), SHARED_SIMS,
                          images=self.pick(SMALL_SET, 0, 0))
        else:
            cl = self.shared
        cl.settle_s = self.pick(0, 5, 30)
        other = "train" if phase == "infer" else "infer"
        cl.cli(other, "stop", check=False)
        cl.cli(phase, "start", check=False)
        return cl

    def release(self, cl):
        if cl is not self.shared:
            cl.down()

    def pick(self, smoke, quick, full):
        return {"smoke": smoke, "quick": quick, "full": full}[self.mode]

    def csv(self, name):
        return os.path.join(self.data, name + ".csv")

    def svg(self, name):
        return os.path.join(self.fig, name + ".svg")


def usage_error(msg):
    sys.stderr.write("report: %s\n" % msg)
    sys.exit(2)


def check_out(out):
    if os.path.exists(out) and not os.path.isdir(out):
        usage_error("--out %s is a file, not a folder" % out)
    parent = out if os.path.isdir(out) else os.path.dirname(
        os.path.abspath(out))
    if not os.path.isdir(parent):
        usage_error("--out %s: %s does not exist" % (out, parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        usage_error("--out %s: %s is not writable" % (out, parent))


def check_tools():
    for prog in ("gnuplot", "dot"):
        if shutil.which(prog) is None:
            usage_error("%s is missing: install gnuplot-nox and graphviz "
                        "(scripts/install-deps)" % prog)
    for path in (common.IDUNNO, os.path.join(common.MODELS, "lenet5.pt")):
        if not os.path.exists(path):
            usage_error("%s is missing: build first (ninja -C %s)" %
                        (path, common.BUILD))


def machine():
    cpus = os.cpu_count()
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 1024 / 1024
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    blas = "unknown"
    try:
        out = common.run([os.path.join(common.BENCH, "model"), "--models",
                          "lenet5", "--batches", "1", common.MODELS, "0.1"],
                         timeout=60, check=False)
        for line in out.splitlines():
            if "BLAS" in line:
                blas = line.split("BLAS", 1)[1].strip(" #")
    except Failed:
        pass
    commit = subprocess.run(["git", "-C", common.SRC, "rev-parse", "--short",
                             "HEAD"], capture_output=True, text=True
                            ).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", common.SRC, "status", "--porcelain",
                            "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return {"cpus": cpus, "mem_gib": mem, "cpu": model, "blas": blas,
            "commit": commit + ("+changes" if dirty else ""),
            "kernel": platform.release(),
            "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")}


def progress(k, n, name, t0, done_s):
    el = time.monotonic() - t0
    left = ""
    if done_s:
        per = el / len(done_s)
        left = ", about %.0f min left" % ((n - k + 1) * per / 60)
    sys.stderr.write("report: experiment %d of %d (%s), %.0f s elapsed%s\n"
                     % (k, n, name, el, left))
    sys.stderr.flush()


def main(argv):
    ap = argparse.ArgumentParser(usage=USAGE, add_help=False)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--recipes", action="store_true")
    ap.add_argument("--out", default=os.path.join(common.SRC, "docs"))
    ap.add_argument("--only", default="")
    ap.add_argument("-h", "--help", action="store_true")
    try:
        a = ap.parse_args(argv)
    except SystemExit:
        sys.exit(2)
    if a.help:
        print(USAGE)
        return 0
    if a.quick and a.smoke:
        usage_error("--quick and --smoke exclude each other")
    if a.recipes and (a.quick or a.smoke):
        usage_error("--recipes is for a full run")
    only = [x for x in a.only.split(",") if x]
    names = [e.NAME for e in EXPERIMENTS]
    for x in only:
        if x not in names:
            usage_error("no experiment '%s' (one of %s)" % (x,
                                                            ", ".join(names)))
    mode = "smoke" if a.smoke else "quick" if a.quick else "full"
    check_out(a.out)
    check_tools()
    tmp = tempfile.mkdtemp(prefix="idunno-report-")
    stage = tempfile.mkdtemp(prefix=".report-", dir=os.path.dirname(
        os.path.abspath(a.out)))

    def stop(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    failed = 0
    try:
        ctx = Ctx(mode, os.path.join(stage, "out"), tmp, a.recipes)
        info = machine()
        results = earlier(a.out, ctx, only)
        chosen = [e for e in EXPERIMENTS if not only or e.NAME in only]
        t0 = time.monotonic()
        times = []
        for k, e in enumerate(chosen, 1):
            progress(k, len(chosen), e.NAME, t0, times)
            s = time.monotonic()
            try:
                results[e.NAME] = {"ok": True, "v": e.run(ctx)}
            except Failed as x:
                results[e.NAME] = {"ok": False, "why": str(x)}
            except KeyboardInterrupt:
                raise
            except Exception as x:  # a bug of ours: the rest still runs
                traceback.print_exc()
                results[e.NAME] = {"ok": False, "why": "%s: %s" % (
                    type(x).__name__, x)}
            finally:
                ok = results.get(e.NAME, {}).get("ok")
                common.down_all(keep=ctx.shared.root if ok and ctx.shared
                                else None)
            if not results[e.NAME]["ok"]:
                failed += 1
                sys.stderr.write("report: %s failed: %s\n" % (
                    e.NAME, results[e.NAME]["why"]))
            times.append(time.monotonic() - s)
            results[e.NAME]["seconds"] = times[-1]
            results[e.NAME]["run"] = {k: info[k] for k in ("commit", "date")}
            results[e.NAME]["mode"] = mode
            with open(os.path.join(ctx.data, e.NAME + ".json"), "w") as f:
                json.dump(results[e.NAME], f)
        info["seconds"] = time.monotonic() - t0
        info["rerun"] = [e.NAME for e in chosen] if only else []
        render.write(ctx, info, [e for e in EXPERIMENTS
                                 if e.NAME in results], results)
        publish(ctx.out, a.out)
        sys.stderr.write("report: wrote %s in %.0f s\n" % (
            os.path.join(a.out, "REPORT.md"), info["seconds"]))
    except KeyboardInterrupt:
        sys.stderr.write("report: interrupted; %s is unchanged\n" % a.out)
        return 130
    finally:
        t_down = time.monotonic()
        common.down_all()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(stage, ignore_errors=True)
        sys.stderr.write("report: clusters stopped and cleaned up in %.0f s\n"
                         % (time.monotonic() - t_down))
    return 1 if failed else 0


def earlier(out, ctx, only):
    """With --only, the other sections come from the last run into OUT:
    their results (figures/data/NAME.json), CSVs and figures are carried
    into the new report unchanged."""
    res = {}
    if not only:
        return res
    fig = os.path.join(out, "figures")
    for e in EXPERIMENTS:
        path = os.path.join(fig, "data", e.NAME + ".json")
        if e.NAME in only or not os.path.exists(path):
            continue
        with open(path) as f:
            res[e.NAME] = json.load(f, object_hook=int_keys)
        shutil.copy2(path, ctx.data)
    for n in os.listdir(fig) if res else []:
        p = os.path.join(fig, n)
        if n.endswith(".svg") and os.path.isfile(p):
            shutil.copy2(p, ctx.fig)
    for n in os.listdir(os.path.join(fig, "data")) if res else []:
        if n.endswith(".csv"):
            shutil.copy2(os.path.join(fig, "data", n), ctx.data)
    return res


def int_keys(d):
    """JSON keeps only string keys: "1" back to 1 (kills at once)."""
    return {int(k) if k.isdigit() else k: v for k, v in d.items()}


def publish(src, out):
    """Moves the finished report into OUT: figures/data/ is replaced as a
    whole, the figures are written over, REPORT.md last; other files of
    OUT (docs/*.md, the dashboard's screenshot) stay."""
    fig = os.path.join(out, "figures")
    os.makedirs(fig, exist_ok=True)
    data = os.path.join(fig, "data")
    shutil.rmtree(data + ".old", ignore_errors=True)
    if os.path.isdir(data):
        os.rename(data, data + ".old")
    shutil.move(os.path.join(src, "figures", "data"), data)
    shutil.rmtree(data + ".old", ignore_errors=True)
    for n in os.listdir(os.path.join(src, "figures")):
        shutil.copy2(os.path.join(src, "figures", n), os.path.join(fig, n))
    os.replace(os.path.join(src, "REPORT.md"), os.path.join(out,
                                                            "REPORT.md"))
