# SPDX-License-Identifier: MIT
"""reaper.py: what a Python test starts is cleaned up however the test
ends, as tests/harness.c's th_at_death does for the C tests. A process
of its own session reads shell commands from a pipe and, once the pipe
closes (the test exited, or died by SIGTERM from meson's timeout, or by
SIGKILL), runs them last first. A test also gets SIGTERM as SystemExit,
so that its own `finally` clean-up runs first."""
import atexit
import os
import shlex
import signal
import subprocess
import sys

_REAPER = r"""
import signal, subprocess, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
for cmd in reversed(sys.stdin.read().splitlines()):
    try:
        subprocess.run(cmd, shell=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pass
"""
_proc = None


def _on_term(signum, frame):
    sys.exit(128 + signum)


def at_death(cmd):
    """Runs shell command `cmd` when the test is gone (after the commands
    registered later)."""
    global _proc
    if _proc is None:
        # The pipe's write end is not inherited (Python's pipes are
        # close-on-exec), so nodes the test starts cannot keep it open.
        _proc = subprocess.Popen([sys.executable, "-c", _REAPER],
                                 stdin=subprocess.PIPE, text=True,
                                 start_new_session=True)
        signal.signal(signal.SIGTERM, _on_term)
        atexit.register(_proc.stdin.close)
    _proc.stdin.write(cmd.replace("\n", " ") + "\n")
    _proc.stdin.flush()


def folder(path):
    """Removes folder `path` when the test is gone."""
    at_death("rm -rf -- " + shlex.quote(path))


def pattern(path, before=""):
    """A pgrep/pkill -f pattern for command lines naming a file under
    `path` (after `before`, e.g. "--data "): "[/]tmp/..." matches the
    path but not the shell that runs pkill with it."""
    p = before + os.path.join(path, "")
    return "[%s]%s" % (p[0], p[1:])


def processes(path, before=""):
    """`pgrep -af` lines of the processes pattern(path, before) names."""
    return subprocess.run(["pgrep", "-af", "--", pattern(path, before)],
                          capture_output=True, text=True).stdout.splitlines()


def processes_under(path):
    """Kills every process whose command line names a file under `path`
    (nodes' `--data`, a browser's profile) when the test is gone."""
    at_death("pkill -KILL -f -- " + shlex.quote(pattern(path)))


def process(pid):
    """SIGKILLs process `pid` (and its process group when it leads one)
    when the test is gone."""
    at_death("kill -KILL -- -%d 2>/dev/null; kill -KILL %d 2>/dev/null"
             % (pid, pid))
