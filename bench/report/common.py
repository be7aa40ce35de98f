# SPDX-License-Identifier: MIT
"""common.py: what every experiment of scripts/report shares: the build's
programs, local clusters that are always torn down (also on Ctrl-C or a
failed experiment), the per-task timing rows jobs keep in SDFS, plain
statistics and CSV files."""
import calendar
import csv
import gzip
import json
import math
import os
import subprocess
import tempfile
import sys
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("IDUNNO_BUILD_DIR", os.path.join(SRC, "build"))
TOOLS = os.environ.get("IDUNNO_BIN_DIR", os.path.join(BUILD, "tools"))
IDUNNO = os.path.join(TOOLS, "idunno")
BENCH = os.path.join(BUILD, "bench")
MODELS = os.path.join(BUILD, "models")
QUERIES = "datasets/fashion-mnist/train"  # 60,000 images, replayed past that
TEST_SET = "datasets/fashion-mnist/test"
SIM_DESC = ("backend = sim\ninput = 1x28x28\nclasses = 10\n"
            "service_ms = %d\n")

# Every cluster root that is up, so that exit and signals take them down.
_live = set()


class Failed(Exception):
    """An experiment failed; its message goes into the report."""


def now_ms():
    return int(time.time() * 1000)


def run(args, timeout=600, check=True, env=None, quiet=False):
    """Runs a program; returns its stdout. Raises Failed with its stderr."""
    e = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    e.update(env or {})
    t0 = time.monotonic()
    try:
        p = subprocess.run(args, capture_output=True, text=True,
                           timeout=timeout, env=e, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise Failed("%s: no answer in %d s" % (" ".join(args[:3]), timeout))
    except OSError as e:
        raise Failed("%s: %s" % (args[0], e.strerror))
    if os.environ.get("IDUNNO_REPORT_TRACE"):
        shown = args[3:] if args[1:2] == ["--root"] else [
            os.path.basename(args[0])] + args[1:]
        sys.stderr.write("trace %.2f s %s\n" % (time.monotonic() - t0,
                                                " ".join(shown)[:160]))
    if check and p.returncode != 0:
        err = (p.stderr or p.stdout).strip().splitlines()
        raise Failed("%s exited %d: %s" % (" ".join(args[:4]), p.returncode,
                                          err[-1] if err else ""))
    return p.stdout


def wait_for(cond, timeout_s, what, step_s=0.1):
    """Polls cond() until it returns a true value; Failed after timeout."""
    end = time.monotonic() + timeout_s
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise Failed("timed out after %.0f s waiting for %s" %
                         (timeout_s, what))
        time.sleep(step_s)


class Cluster:
    """A local cluster (`idunno cluster up`) under a temp root."""

    def __init__(self, nodes, pin=False, tmp=None):
        self.nodes = nodes
        self.root = tempfile.mkdtemp(prefix="idunno-report-", dir=tmp)
        _live.add(self.root)
        self.cli("cluster", "up", "-n", str(nodes), *(["--pin"] if pin
                                                      else []), timeout=120)
        wait_for(lambda: self.alive() >= nodes, 60, "%d alive members" %
                 nodes)

    def cli(self, *args, timeout=120, check=True):
        return run([IDUNNO, "--root", self.root] + list(args),
                   timeout=timeout, check=check)

    def json(self, *args, timeout=30):
        return json.loads(self.cli(*args, "--json", timeout=timeout))

    def alive(self):
        try:
            m = self.json("members", timeout=5)["members"]
        except (Failed, ValueError):
            return 0
        return sum(1 for x in m if x["state"] == "alive")

    def status(self):
        return self.json("cluster", "status")["nodes"]

    def workers(self):
        return [n["name"] for n in self.status() if n["role"] == "worker"]

    def active_coord(self):
        """The name of the node that acts as coordinator now. A node
        restarted a moment ago may not see one yet: asked again for up
        to 10 s."""
        def coordinator():
            try:
                return self.json("jobs")["coordinator"]
            except (Failed, ValueError, KeyError):
                return None
        addr = wait_for(coordinator, 10, "a coordinator to answer",
                        step_s=0.2)
        for n in self.status():
            if addr and addr.startswith(n["addr"]):
                return n["name"]
        raise Failed("no node has the coordinator's address %s" % addr)

    def kill(self, *names):
        for n in names:
            self.cli("cluster", "kill", n)

    def restart(self, *names):
        """Restarts the nodes (a just-killed one may still be going away:
        tried again for up to 10 s), then waits until all are alive."""
        def restarted(n):
            try:
                self.cli("cluster", "restart", n, timeout=60)
                return True
            except Failed:
                return False
        for n in names:
            wait_for(lambda: restarted(n), 10, "a restart of " + n,
                     step_s=0.2)
        wait_for(lambda: self.alive() >= self.nodes, 60,
                 "%d alive members after a restart" % self.nodes)

    def setup_data(self, torch_models=("lenet5", "resnet18"), sims=(),
                   images=0):
        """Fashion-MNIST (its first `images` training and test images
        when not 0) and the models the experiment runs into SDFS."""
        if images:
            d = tempfile.mkdtemp(dir=os.path.dirname(self.root))
            small_set(d, images)
            self.cli("dataset", "import", "fashion-mnist", "--dir", d,
                     timeout=600)
            subprocess.run(["rm", "-rf", d])
        else:
            self.cli("dataset", "import", "fashion-mnist", timeout=600)
        for m in torch_models:
            self.cli("model", "put", m, os.path.join(MODELS, m + ".pt"),
                     os.path.join(MODELS, m + ".desc"), timeout=300)
        for name, ms in sims:
            with tempfile.NamedTemporaryFile("w", suffix=".desc",
                                             delete=False) as f:
                f.write(SIM_DESC % ms)
            try:
                self.cli("model", "put", name, "/dev/null", f.name)
            finally:
                os.unlink(f.name)

    def infer(self, job, model, batch, rate, limit, queries=QUERIES):
        """Adds an inference job; returns its name (made unique on this
        cluster, which a smoke run shares) and when it was added."""
        self.jobs = getattr(self, "jobs", 0) + 1
        job = "%s-%d" % (job, self.jobs)
        self.cli("infer", "add", job, "--model", model, "--queries", queries,
                 "--batch", str(batch), "--rate", "%g" % rate, "--limit",
                 str(int(limit)))
        return job, now_ms()

    def wait_job(self, job, timeout_s):
        self.cli("wait", job, "--timeout", str(int(timeout_s)), "--quiet",
                 timeout=timeout_s + 60)

    def timing(self, job):
        """The job's timing rows (results/JOB/timing) and header."""
        text = self.cli("get", "results/%s/timing" % job, "-")
        return Timing(text)

    def down(self):
        down(self.root)


def small_set(d, n):
    """The first n images and labels of each Fashion-MNIST split, as IDX
    files in folder d (a smoke run's quick import)."""
    src = "/usr/share/datasets/fashion-mnist"
    for split in ("train", "t10k"):
        for kind, head, size in (("images-idx3", 16, 784),
                                 ("labels-idx1", 8, 1)):
            name = "%s-%s-ubyte.gz" % (split, kind)
            with gzip.open(os.path.join(src, name)) as f:
                h = bytearray(f.read(head))
                body = f.read(n * size)
            h[4:8] = (len(body) // size).to_bytes(4, "big")
            with gzip.open(os.path.join(d, name), "wb", 1) as f:
                f.write(bytes(h) + body)


def down(root):
    """Kills every node of a cluster root, then removes the root. SIGKILL
    at once: a graceful leave of a cluster about to vanish only costs
    time (up to 5 s a node under load). Nodes are found by their command
    line (`--data ROOT/NAME`), so one restarting as `down` runs is
    caught too."""
    pat = "--data " + root + "/"
    for _ in range(50):
        if subprocess.run(["pkill", "-KILL", "-f", "--", pat],
                          capture_output=True).returncode != 0:
            break  # none left
        time.sleep(0.1)
    subprocess.run(["rm", "-rf", root])
    _live.discard(root)


def down_all(keep=None):
    for r in list(_live):
        if r != keep:
            down(r)


def live():
    return set(_live)


class Timing:
    """results/JOB/timing: a header `# job=.. start_ms=.. rate=..`, then a
    CSV row per task. Query q arrived at start_ms + floor(q*1000/rate)."""

    def __init__(self, text):
        lines = text.splitlines()
        meta = {}
        for w in lines[0].lstrip("# ").split():
            k, _, v = w.partition("=")
            meta[k] = v
        self.job = meta.get("job", "")
        self.start_ms = int(meta["start_ms"])
        self.rate = float(meta["rate"])
        self.rows = []
        for r in csv.DictReader(lines[1:]):
            row = {k: (v if k == "worker" else int(float(v)))
                   for k, v in r.items()}
            self.rows.append(row)
        self.rows.sort(key=lambda r: r["first"])

    def arrival(self, q):
        return self.start_ms + int(math.floor(q * 1000.0 / self.rate))

    def queries(self):
        """(arrival_ms, commit_ms, row) of every query."""
        for r in self.rows:
            for q in range(r["first"], r["first"] + r["count"]):
                yield self.arrival(q), r["commit_ms"], r

    def latencies(self, t0=None, t1=None):
        """Latency of each query that arrived in [t0, t1) ms."""
        return [c - a for a, c, _ in self.queries()
                if (t0 is None or a >= t0) and (t1 is None or a < t1)]

    def commits(self):
        """(commit_ms, count) per task."""
        return [(r["commit_ms"], r["count"]) for r in self.rows]


def backlogged(cl, job, model, batch, n):
    """(q/s, std of its 1 s windows) of a backlogged job of n queries that
    all arrive at once: the middle 80% of its results count."""
    job, _ = cl.infer(job, model, batch, 1e6, n)
    cl.wait_job(job, 600)
    done = sorted(cl.timing(job).commits())
    k0, k1 = len(done) // 10, max(len(done) * 9 // 10, len(done) // 10 + 1)
    t0, t1 = done[k0][0], done[k1 - 1][0]
    q = sum(c for _, c in done[k0:k1])
    if t1 <= t0 or q == 0:
        raise Failed("%s: too few results to measure a rate" % job)
    per_s = [r for _, r in rate_series(done, t0, t1)]
    return q * 1000.0 / (t1 - t0), std(per_s)


def write_timing(path, timings, events=()):
    """Keeps the raw timing rows of a run's jobs as one CSV (a row per
    task, its job's name and arrival parameters beside it), and its
    events as rows of job "event"."""
    rows = []
    for t in timings:
        for r in t.rows:
            rows.append([t.job, t.start_ms, t.rate, r["first"], r["count"],
                         r["arrival_ms"], r["lease_ms"], r["start_ms"],
                         r["model_start_ms"], r["model_end_ms"],
                         r["commit_ms"], r["worker"], r["attempt"]])
    for what, ms in events:
        rows.append(["event", ms, 0, 0, 0, 0, 0, 0, 0, 0, 0, what, 0])
    write_csv(path, ["job", "job_start_ms", "rate", "first", "count",
                     "arrival_ms", "lease_ms", "start_ms", "model_start_ms",
                     "model_end_ms", "commit_ms", "worker", "attempt"], rows)


def rate_series(commits, t0, t1, step_ms=1000, window_ms=1000):
    """Completed queries per second in windows ending every step_ms."""
    out = []
    t = t0 + window_ms
    while t <= t1:
        n = sum(c for when, c in commits if t - window_ms <= when < t)
        out.append((t, n * 1000.0 / window_ms))
        t += step_ms
    return out


def mean(v):
    return sum(v) / len(v) if v else float("nan")


def std(v):
    """Sample standard deviation (n - 1); 0 for one value."""
    if len(v) < 2:
        return 0.0 if v else float("nan")
    m = mean(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


def pct(v, p):
    """Percentile p (0..100), linear between the nearest ranks (numpy's
    default, as the coordinator's statistics)."""
    if not v:
        return float("nan")
    s = sorted(v)
    x = p / 100.0 * (len(s) - 1)
    i = int(math.floor(x))
    j = min(i + 1, len(s) - 1)
    return s[i] + (s[j] - s[i]) * (x - i)


def summary(v):
    return {"n": len(v), "mean": mean(v), "std": std(v), "p50": pct(v, 50),
            "p90": pct(v, 90), "p95": pct(v, 95), "p99": pct(v, 99),
            "max": max(v) if v else float("nan")}


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([fmt(x) for x in r])


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def fmt(x):
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        return "%.6g" % x
    return x


def settle(cl, seconds=2.0):
    """Waits until SDFS has had no copy pulled or dropped for `seconds`
    (re-replication after a restart would load the next measurement), at
    most cl.settle_s."""
    timeout_s = getattr(cl, "settle_s", 60)
    def last_repair():
        last = 0
        for n in os.listdir(cl.root):
            path = os.path.join(cl.root, n, "node.log")
            try:
                with open(path, "rb") as f:
                    f.seek(max(0, os.path.getsize(path) - 256 * 1024))
                    tail = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            for line in tail.splitlines():
                if "sdfs: pulled " in line or "sdfs: dropping " in line:
                    last = max(last, _log_ms(line.split(" ", 1)[0]))
        return last
    try:
        wait_for(lambda: now_ms() - last_repair() > seconds * 1000,
                 timeout_s, "SDFS to settle", step_s=0.5)
    except Failed:
        pass  # measured anyway; the repair is then part of the load


def _log_ms(stamp):
    """Milliseconds of a log line's `2026-11-26T07:36:41.557Z`."""
    try:
        t = time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
        return calendar.timegm(t) * 1000 + int(stamp[20:23])
    except (ValueError, IndexError):
        return 0
