#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dash_test.py: the coordinator's dashboard, /metrics and `idunno top`
on a real local cluster running two sim inference jobs: status shows the
HTTP ports, the health routes answer, /metrics parses with
prometheus_client, a headless chromium renders the job table, its rate
chart moves between two looks, a killed worker shows as failed in the
browser and in `top` (under a pseudo-terminal), the counters do not go
back across a takeover (SIGKILL of the active coordinator; the standby
serves the same series), and `top` follows the new coordinator. Prints
TAP. Needs chromium, chromium-driver,
python3-selenium and python3-prometheus-client (scripts/install-deps);
the browser checks are skipped, with the reason, where they cannot run.
"""
import json
import os
import pty
import random
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BIN = os.environ.get("IDUNNO_BIN_DIR", "build/tools")
SRC = os.environ.get("IDUNNO_SOURCE_DIR", ".")
BUILD = os.environ.get("IDUNNO_BUILD_DIR", "build")
IDUNNO = os.path.join(BIN, "idunno")
sys.path.insert(0, os.path.join(SRC, "tests"))
import reaper  # noqa: E402
QUERIES = "datasets/fashion-mnist/test"

results = []


def tap(ok, name, skip=None):
    n = len(results) + 1
    results.append(ok)
    line = "%s %d - %s" % ("ok" if ok else "not ok", n, name)
    if skip:
        line += " # SKIP " + skip
    print(line, flush=True)


def diag(msg):
    for ln in str(msg).splitlines():
        print("# " + ln, flush=True)


def cli(root, *args, check=True):
    p = subprocess.run([IDUNNO, "--root", root] + list(args),
                       capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise RuntimeError("idunno %s: %s%s" % (" ".join(args), p.stdout,
                                                 p.stderr))
    return p.stdout


def raw(addr, data, answer=True):
    """Sends bytes to addr over a new connection; returns what came back
    within 3 s (b"" when the server closed or said nothing)."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3) as s:
        try:
            s.sendall(data)
            return s.recv(65536) if answer else b""
        except OSError:  # reset or timed out: refused, not crashed
            return b""


def hostile(addr):
    """Bytes no browser sends; returns what the traversal request got."""
    rnd = random.Random(5)
    raw(addr, bytes(rnd.randrange(256) for _ in range(4096)))
    raw(addr, b"GET /" + b"A" * 100000 + b" HTTP/1.1\r\n\r\n")
    raw(addr, b"GET / HTTP/1.1\r\nX: " + b"B" * 65536 + b"\r\n\r\n")
    raw(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 999999999\r\n"
        b"\r\nabc", answer=False)
    raw(addr, b"BREW / HTTP/1.1\r\n\r\n")
    raw(addr, b"GET /\r\n\x00\x00\r\n\r\n")
    raw(addr, b"GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n")
    # Half-sent requests held open while others are served.
    held = []
    host, port = addr.rsplit(":", 1)
    for _ in range(40):
        s = socket.create_connection((host, int(port)), timeout=3)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    try:
        ok = http_get(addr, "/healthz")[0] == 200
    finally:
        for s in held:
            s.close()
    return ok, raw(addr, b"GET /../../../../etc/passwd HTTP/1.1\r\n\r\n")


def http_get(addr, path):
    try:
        with urllib.request.urlopen("http://%s%s" % (addr, path),
                                    timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def until(fn, timeout_s, what):
    """Polls fn until it returns a true value, at most timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # not there yet: keep polling
            last = e
        time.sleep(0.2)
    raise TimeoutError("%s: not within %d s (last: %r)" %
                       (what, timeout_s, last))


def status(root):
    return json.loads(cli(root, "cluster", "status", "--json"))["nodes"]


def http_of(root, name):
    for n in status(root):
        if n["name"] == name and n["alive"]:
            return n.get("http")
    return None


def scrape(addr):
    from prometheus_client.parser import text_string_to_metric_families
    code, text = http_get(addr, "/metrics")
    if code != 200:
        raise RuntimeError("/metrics: HTTP %d" % code)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    return fams


def counter_values(fams):
    """Every sample of every counter and histogram: name{labels} -> v."""
    out = {}
    for f in fams.values():
        if f.type not in ("counter", "histogram"):
            continue
        for s in f.samples:
            key = s.name + json.dumps(sorted(s.labels.items()))
            out[key] = s.value
    return out


class Top:
    """`idunno top` under a pseudo-terminal; its output drained by a
    thread. screen() is the last full frame drawn."""

    def __init__(self, root):
        import fcntl
        import struct
        import termios
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(IDUNNO, [IDUNNO, "--root", root, "top"])
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", 60, 200, 0, 0))
        self.out = b""
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._drain, daemon=True)
        self.t.start()

    def _drain(self):
        while True:
            r, _, _ = select.select([self.fd], [], [], 0.5)
            if not r:
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.out = (self.out + data)[-200000:]

    def screen(self):
        with self.lock:
            text = self.out.decode(errors="replace")
        frames = text.split("\x1b[H")
        return frames[-2] if len(frames) > 2 else ""

    def quit(self, timeout_s=10):
        os.write(self.fd, b"q")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                return os.waitstatus_to_exitcode(st)
            time.sleep(0.1)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        return None


def run_pty(root, *args, timeout_s=60):
    """Runs idunno under a pseudo-terminal: (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(IDUNNO, [IDUNNO, "--root", root] + list(args))
    out = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        try:
            data = os.read(fd, 4096) if r else b""
        except OSError:
            break
        if r and not data:
            break
        out += data
    else:
        os.kill(pid, 9)  # past the deadline: do not wait forever
    _, st = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(st), out.decode(errors="replace")


def tiny_mnist(d, n_train, n_test):
    """A small set in MNIST's layout (gzipped IDX files) in folder d."""
    import gzip
    import random
    import struct
    os.makedirs(d)
    rnd = random.Random(11)
    for pre, n in (("train", n_train), ("t10k", n_test)):
        with gzip.open(os.path.join(d, pre + "-images-idx3-ubyte.gz"),
                       "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, 28, 28))
            f.write(bytes(rnd.randrange(256) for _ in range(n * 784)))
        with gzip.open(os.path.join(d, pre + "-labels-idx1-ubyte.gz"),
                       "wb") as f:
            f.write(struct.pack(">II", 0x801, n))
            f.write(bytes(rnd.randrange(10) for _ in range(n)))


def run_piped(root, *args):
    """Runs idunno with its output piped: (exit code, stdout + stderr)."""
    p = subprocess.run([IDUNNO, "--root", root] + list(args),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def browser_driver(profile):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "python3-selenium is not installed"
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        return None, "chromium or chromium-driver is not installed"
    o = webdriver.ChromeOptions()
    o.binary_location = chromium
    for a in ("--user-data-dir=" + profile, "--headless=new", "--no-sandbox",
              "--disable-gpu",
              "--disable-dev-shm-usage", "--window-size=1500,1300"):
        o.add_argument(a)
    try:
        return webdriver.Chrome(service=Service(driver), options=o), None
    except Exception as e:
        return None, "chromium does not start: %s" % str(e).splitlines()[0]


def main():
    root = tempfile.mkdtemp(prefix="idn_dash_")
    reaper.folder(root)
    reaper.processes_under(root)  # the nodes, and the browser's profile
    sim = os.path.join(root, "sim")
    os.makedirs(sim)
    open(os.path.join(sim, "empty.pt"), "w").close()
    drv = None
    try:
        cli(root, "cluster", "up", "-n", "6")
        nodes = status(root)
        with_http = sorted(n["name"] for n in nodes if "http" in n)
        tap(with_http == ["coord", "standby"] and all(
            n["http"].startswith("127.0.0.1:") for n in nodes
            if "http" in n),
            "cluster status --json: http on coord and standby only, "
            "loopback")
        coord = http_of(root, "coord")
        standby = http_of(root, "standby")
        # The standby is ready once it holds a caught-up copy of the
        # ledger (issue 11: "standby caught up").
        until(lambda: http_get(standby, "/readyz")[0] == 200, 30,
              "standby ready")
        tap(http_get(coord, "/healthz")[0] == 200 and
            http_get(coord, "/readyz")[0] == 200 and
            http_get(standby, "/healthz")[0] == 200 and
            http_get(standby, "/readyz")[0] == 200 and
            http_get(coord, "/nope")[0] == 404,
            "/healthz up on both; /readyz 200 on the coordinator and on "
            "the caught-up standby; unknown paths 404")
        served, trav = hostile(coord)
        tap(served and b"root:" not in trav and
            http_get(coord, "/healthz")[0] == 200 and
            [n["alive"] for n in status(root) if n["name"] == "coord"] ==
            [True], "hostile HTTP (garbage, a 100 kB path, a 64 kB "
            "header, a lying Content-Length, 40 half-sent requests held "
            "open, ../ paths): the coordinator keeps serving")

        cli(root, "dataset", "import", "fashion-mnist")
        for name, ms in (("fast", 100), ("slow", 400)):
            d = os.path.join(sim, name + ".desc")
            with open(d, "w") as f:
                f.write("backend = sim\ninput = 1x28x28\nclasses = 10\n"
                        "service_ms = %d\n" % ms)
            cli(root, "model", "put", name, os.path.join(sim, "empty.pt"),
                d)
        cli(root, "infer", "start")
        # 10,000 queries at 150 q/s: the jobs run past the test's end.
        for job, model in (("alpha", "fast"), ("beta", "slow")):
            cli(root, "infer", "add", job, "--model", model, "--queries",
                QUERIES, "--batch", "32", "--rate", "150")

        def both_counted():
            f = scrape(coord)
            s = {x.labels["job"]: x.value
                 for x in f["idunno_queries"].samples}
            return f if s.get("alpha", 0) > 0 and s.get("beta", 0) > 0 \
                else None
        fams = until(both_counted, 30, "both jobs answer queries")
        want = {"idunno_queries": "counter",
                "idunno_query_processing_seconds": "histogram",
                "idunno_query_latency_seconds": "histogram",
                "idunno_member_state": "gauge",
                "idunno_leases_held": "gauge",
                "idunno_sdfs_put_bytes": "counter",
                "idunno_sdfs_rereplications": "counter",
                "idunno_rpc_rejected_messages": "counter"}
        got = {k: fams[k].type for k in want if k in fams}
        tap(got == want, "/metrics parses; families and types: %s" % got)
        lat = [s for s in fams["idunno_query_latency_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["job"] == "alpha"]
        inf = [s.value for s in lat if s.labels["le"] == "+Inf"]
        tap(len(lat) > 2 and inf and all(
            a.value <= b.value for a, b in zip(lat, lat[1:])),
            "latency buckets are cumulative up to +Inf (%s)" % inf)

        top = Top(root)
        scr = until(lambda: (lambda t: t if "alpha" in t and "beta" in t
                             else None)(top.screen()), 20, "top's jobs")
        tap("running" in scr and "NODES" in scr and "EVENTS" in scr,
            "top under a pseudo-terminal shows both jobs, the nodes and "
            "the events")
        drv, why = browser_driver(os.path.join(root, "chrome"))
        if drv is not None:
            reaper.process(drv.service.process.pid)
        names = ["the job table shows both jobs",
                 "the rate chart changes between two looks",
                 "a killed worker shows as failed",
                 "screenshot saved"]
        if drv is None:
            for n in names:
                tap(True, n, skip=why)
            cli(root, "cluster", "kill", "worker4")
        else:
            drv.set_page_load_timeout(20)
            drv.get("http://%s/" % coord)

            # Rows are redrawn every second: read them in one script.
            def rows():
                r = drv.execute_script(
                    "return [...document.querySelectorAll('#jobs tbody tr')]"
                    ".map(tr => [...tr.children].map(td => td.textContent));")
                return r if sorted(x[0] for x in r) == ["alpha", "beta"] \
                    else None
            r = until(rows, 20, "job rows")
            cells = r[0]
            tap(cells[1] == "infer" and cells[2] == "running",
                "the job table shows both jobs (%s)" % cells[:6])

            def look():
                return drv.execute_script(
                    "const c = document.getElementById('rate');"
                    "return [c.dataset.points, c.toDataURL()];")
            first = until(lambda: look() if int(look()[0] or 0) > 1
                          else None, 20, "chart points")
            second = until(lambda: (lambda x: x if x[1] != first[1] and
                                    int(x[0]) > int(first[0]) else None)(
                look()), 10, "the chart to move")
            tap(True, "the rate chart changes between two looks "
                "(%s -> %s points)" % (first[0], second[0]))

            killed = [n for n in status(root) if n["name"] == "worker4"][0]
            cli(root, "cluster", "kill", "worker4")
            port = killed["addr"].split(":")[1]

            def failed_row():
                for nid, st, cls in drv.execute_script(
                        "return [...document.querySelectorAll("
                        "'#nodes tbody tr')].map(tr => [tr.dataset.node, "
                        "tr.dataset.state, tr.className]);"):
                    if nid.split(":")[1] == port and st == "failed" and \
                            "failed" in cls:
                        return nid
                return None
            nid = until(failed_row, 20, "worker4 marked failed")
            tap(True, "a killed worker shows as failed (%s)" % nid)
            until(rows, 5, "rows")
            out = os.path.join(BUILD, "dashboard.png")
            drv.save_screenshot(out)
            if os.environ.get("IDUNNO_UPDATE_FIGURES"):
                shutil.copy(out, os.path.join(SRC, "docs", "figures",
                                              "dashboard.png"))
            tap(os.path.getsize(out) > 10000, "screenshot saved (%s)" % out)

        w4 = [n for n in status(root) if n["name"] == "worker4"][0]

        def top_failed():
            for ln in top.screen().splitlines():
                if "FAILED" in ln and ":%s:" % w4["addr"].split(":")[1] \
                        in ln:
                    return ln
            return None
        ln = until(top_failed, 20, "top marks worker4 failed")
        tap(True, "top marks the killed worker: %s" %
            ln.replace("\x1b[K", "").strip())

        # Takeover: SIGKILL the active coordinator; the standby (its HTTP
        # port from status --json) becomes the active one and serves the
        # same series, none lower than before.
        epoch = scrape(coord)["idunno_coordinator_epoch"].samples[0].value
        before = counter_values(scrape(coord))
        # The standby serves the same series from its copy of the ledger
        # (it may trail the active by one pull: wait for it to hold what
        # the scrape saw, which also keeps the last ~50 ms of completions a
        # crash may cost, re-reported later by the workers, out of the
        # check).
        ledger = [k for k in before if '"node"' not in k]

        def standby_has():
            sb = counter_values(scrape(standby))
            return all(k in sb and sb[k] >= before[k] for k in ledger)
        until(standby_has, 20, "the standby holds the active's figures")
        tap(len(ledger) > 10, "the standby serves the active's %d ledger "
            "series, none lower" % len(ledger))
        cli(root, "cluster", "kill", "coord")

        def took_over():
            f = scrape(standby)
            e = f["idunno_coordinator_epoch"].samples[0].value
            return f if e > epoch and http_get(standby, "/readyz")[0] == \
                200 else None
        fams2 = until(took_over, 60, "standby takes over")
        epoch2 = fams2["idunno_coordinator_epoch"].samples[0].value
        after = counter_values(fams2)
        # Every series the new active serves is not lower than before (a
        # process's own counters carry its member id, so the two nodes'
        # own series differ); the ledger's series (no node label) are all
        # still there.
        back = [k for k, v in before.items()
                if (k in after and after[k] < v) or
                (k not in after and '"node"' not in k)]
        both = [k for k in before if k in after]
        if back:
            diag("went back or missing: %s" % back[:5])
        tap(not back and len(both) > 10 and len(before) > 10,
            "%d counter and histogram series (%d served by both) do not "
            "go back across a takeover (epoch %d -> %d)" %
            (len(before), len(both), epoch, epoch2))
        new = [n for n in status(root) if n["name"] == "standby"][0]["addr"]
        until(lambda: "coordinator %s:" % new in top.screen(), 30,
              "top follows the new coordinator")
        tap(True, "top follows the new coordinator at %s" % new)
        tap(top.quit() == 0, "top quits on q with status 0")

        # Progress on a terminal, none when piped: wait, put, get.
        code, text = run_pty(root, "wait", "alpha", "--timeout", "2")
        piped = subprocess.run([IDUNNO, "--root", root, "wait", "alpha",
                                "--timeout", "1"], capture_output=True,
                               text=True, timeout=20)
        tap(code == 1 and "queries (" in text and "ETA" in text and
            "ETA" not in piped.stderr and "timed out" in piped.stderr,
            "wait: progress (queries, rate, ETA) on a terminal, none "
            "when piped")
        big = os.path.join(root, "big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(12 << 20))
        code, text = run_pty(root, "put", big, "ops/big")
        tap(code == 0 and "bytes (" in text and "put ops/big" in text,
            "put: bytes done, rate and ETA on a terminal")
        code, text = run_pty(root, "get", "ops/big", big + ".2")
        with open(big, "rb") as f1, open(big + ".2", "rb") as f2:
            same = f1.read() == f2.read()
        piped = subprocess.run([IDUNNO, "--root", root, "get", "ops/big",
                                big + ".3"], capture_output=True, text=True,
                               timeout=60)
        tap(code == 0 and same and "bytes (" in text and
            "bytes (" not in piped.stderr + piped.stdout,
            "get: progress on a terminal, the same bytes, none when piped")

        # dataset import and train local: images and batches.
        tiny = os.path.join(root, "tiny")
        tiny_mnist(tiny, 600, 100)
        imp = ("dataset", "import", "fashion-mnist", "--dir", tiny,
               "--shard-size", "20", "--prefix")
        code, text = run_pty(root, *imp, "ops/tiny")
        tap(code == 0 and "/700 images (" in text and "ETA" in text and
            "imported fashion-mnist into ops/tiny/train" in text,
            "dataset import: images done of both sets, rate and ETA on a "
            "terminal")
        code2, text2 = run_piped(root, *imp, "ops/tiny2")
        code3, text3 = run_pty(root, *imp, "ops/tiny3", "--quiet")
        tap(code2 == 0 and code3 == 0 and "imported" in text2 + text3 and
            "images (" not in text2 + text3,
            "dataset import: no progress when piped or with --quiet")
        # The sim "fast" model sleeps 100 ms a batch: 600 images in
        # batches of 64 are 10 batches an epoch, 20 in all.
        train = ("train", "local", "fast", "--data", "ops/tiny", "--batch",
                 "64", "--epochs", "2")
        code, text = run_pty(root, *train)
        tap(code == 0 and "/20 batches (" in text and "ETA" in text and
            "epoch 2/2" in text and "stored models/fast/weights" in text,
            "train local: batches done, rate and ETA on a terminal")
        code2, text2 = run_piped(root, *train)
        tap(code2 == 0 and "epoch 2/2" in text2 and "batches (" not in
            text2, "train local: no progress when piped")
    except Exception as e:
        diag("error: %r" % e)
        tap(False, "the test ran to its end")
    finally:
        if drv is not None:
            drv.quit()
        subprocess.run([IDUNNO, "--root", root, "cluster", "down"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
