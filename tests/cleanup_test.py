#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cleanup_test.py: a test that is stopped midway (SIGTERM, as meson's
timeout sends, or SIGKILL of its process group) leaves no node, browser
or temp folder behind. Each test runs with a TMPDIR of its own; once it
has started something there, it is stopped, and within a deadline no
process may name that folder and the folder must be empty. Covers the
Python-based tests (tests/reaper.py) and a C test (the harness's
reaper). Prints TAP."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("IDUNNO_SOURCE_DIR", ".")
BUILD = os.environ.get("IDUNNO_BUILD_DIR", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "tests"))
import reaper  # noqa: E402
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else \
    sys.executable
results = []


def tap(ok, name, why=""):
    results.append(ok)
    print("%s %d - %s" % ("ok" if ok else "not ok", len(results), name))
    for line in why.splitlines() if not ok else []:
        print("# " + line)
    sys.stdout.flush()


def naming(tmp):
    """Processes whose command line names a file under tmp."""
    return reaper.processes(tmp)


def until(cond, timeout_s):
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def case(name, argv, started, sig, env=None):
    """Runs argv with TMPDIR of its own until started(tmp) holds, stops it
    with sig and checks that nothing of it is left."""
    tmp = tempfile.mkdtemp(prefix="idn-cleanup-")
    e = dict(os.environ, TMPDIR=tmp, IDUNNO_SOURCE_DIR=SRC,
             IDUNNO_BUILD_DIR=BUILD,
             IDUNNO_BIN_DIR=os.path.join(BUILD, "tools"))
    e.update(env or {})
    p = subprocess.Popen(argv, env=e, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        up = until(lambda: started(tmp) or p.poll() is not None, 120)
        if not up or p.poll() is not None:
            tap(False, "%s: stopped midway, leaves nothing" % name,
                "it never started anything (exit %s)" % p.poll())
            return
        if sig == signal.SIGKILL:
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
        p.wait(timeout=120)
        clean = until(lambda: not naming(tmp) and not os.listdir(tmp), 60)
        tap(clean, "%s: %s midway leaves no process or folder" % (
            name, signal.Signals(sig).name),
            "left: %s; in TMPDIR: %s" % (naming(tmp)[:3], os.listdir(tmp)))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        subprocess.run(["pkill", "-KILL", "-f", "--", os.path.join(tmp, "")],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def has_node(tmp):
    return any("--data" in l for l in naming(tmp))


def has_file(tmp):
    return bool(os.listdir(tmp))


def main():
    integ = os.path.join(SRC, "tests", "integration")
    case("dash_test.py", [PY, os.path.join(integ, "dash_test.py")],
         has_node, signal.SIGTERM)
    case("report_test.py", [PY, os.path.join(integ, "report_test.py")],
         has_node, signal.SIGTERM)
    case("report_test.py", [PY, os.path.join(integ, "report_test.py")],
         has_node, signal.SIGKILL)
    case("the Python binding's pytest",
         [PY, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--tap",
          os.path.join(SRC, "bindings", "python", "tests")], has_node,
         signal.SIGTERM, env={"PYTHONPATH": os.path.join(
             BUILD, "bindings", "python"), "PYTHONDONTWRITEBYTECODE": "1"})
    case("install_test.py", [PY, os.path.join(SRC, "tests", "install",
                                              "install_test.py"),
                             shutil.which("meson") or "meson", BUILD, SRC],
         has_file, signal.SIGTERM)
    case("layers_test.py", [PY, os.path.join(SRC, "tests",
                                             "layers_test.py")],
         has_file, signal.SIGKILL)
    case("a C test (membership)", [os.path.join(BUILD, "tests",
                                                "membership_itest")],
         has_node, signal.SIGKILL,
         env={"CMOCKA_MESSAGE_OUTPUT": "TAP"})
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
