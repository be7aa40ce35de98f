#!/usr/bin/env python3
"""Counts test cases in meson's testlog.json: each TAP 'ok'/'not ok' line
of a test is one case; a test that printed none counts as one case with
meson's verdict; a test that failed after passing all its cases adds one
failure. Prints 'N passed, N failed'; exits 1 if any failed."""
import json
import re
import sys

passed = failed = 0
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        out = t.get("stdout") or ""
        oks = len(re.findall(r"^ok \d+", out, re.M))
        bad = len(re.findall(r"^not ok \d+", out, re.M))
        good = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        if oks + bad == 0:
            oks, bad = (1, 0) if good else (0, 1)
        elif not good and bad == 0:
            bad = 1
        passed += oks
        failed += bad
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
