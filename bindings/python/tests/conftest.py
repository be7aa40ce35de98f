# SPDX-License-Identifier: MIT
"""--tap: one TAP line per test on stdout (for meson's TAP reader and the
suite's tally), failures as '#' diagnostics; pytest's own report goes to
stderr. Run with -s, so that stdout is not captured. The tests' tmp_path
folders live in one temp folder removed when the run ends, however it
ends (tests/reaper.py)."""
import os
import sys
import tempfile

import pytest


def pytest_addoption(parser):
    parser.addoption("--tap", action="store_true",
                     help="report in TAP instead of pytest's own format")


def pytest_cmdline_main(config):
    # Before pytest_configure, where the tmp_path factory reads it.
    src = os.environ.get("IDUNNO_SOURCE_DIR")
    if src and not config.option.basetemp:
        sys.path.insert(0, os.path.join(src, "tests"))
        import reaper
        config.option.basetemp = tempfile.mkdtemp(prefix="idunno-pytest-")
        reaper.folder(config.option.basetemp)


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if config.getoption("tap"):
        config.pluginmanager.register(Tap(), "idunno-tap")
        # The terminal report would mix with the TAP lines: to stderr.
        tr = config.pluginmanager.getplugin("terminalreporter")
        if tr is not None:
            config.pluginmanager.unregister(tr)
            config.pluginmanager.register(
                type(tr)(config, sys.stderr), "terminalreporter")


class Tap:
    def __init__(self):
        self.n = 0
        self.reports = []

    def emit(self, line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def pytest_collectreport(self, report):
        if report.failed:
            self.emit("Bail out! cannot collect %s" % report.nodeid)
            for line in str(report.longrepr).splitlines():
                self.emit("# " + line)

    def pytest_collection_finish(self, session):
        self.emit("1..%d" % len(session.items))

    def pytest_runtest_logreport(self, report):
        self.reports.append(report)
        if report.when != "teardown":
            return
        # One test: setup, call and teardown, the worst of them counts.
        failed = [r for r in self.reports if r.failed]
        skipped = [r for r in self.reports if r.skipped]
        self.reports = []
        self.n += 1
        name = report.nodeid.split("::")[-1]
        if failed:
            self.emit("not ok %d - %s" % (self.n, name))
            for r in failed:
                for line in str(r.longrepr).splitlines():
                    self.emit("# " + line)
        elif skipped:
            reason = skipped[0].longrepr
            reason = reason[2] if isinstance(reason, tuple) else reason
            self.emit("ok %d - %s # SKIP %s" % (self.n, name, reason))
        else:
            self.emit("ok %d - %s" % (self.n, name))
