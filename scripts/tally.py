#!/usr/bin/env python3
"""Counts test cases in meson's testlog.json: each TAP 'ok'/'not ok' line
of a test is one case; a case with TAP's '# SKIP' directive or one that
printed '# skipped: why' (IDN_SKIP_IF) is a skip, not a pass, as is a
test meson reports skipped; a test that
printed no case counts as one case with meson's verdict; a test that
failed after passing all its cases adds one failure. Prints 'N passed,
N failed, N skipped'; exits 1 if any failed, or if any was skipped and
IDUNNO_NO_SKIP is set (CI, where every input is installed)."""
import json
import os
import re
import sys

passed = failed = skipped = 0
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        out = t.get("stdout") or ""
        oks = len(re.findall(r"^ok \d+", out, re.M))
        bad = len(re.findall(r"^not ok \d+", out, re.M))
        skips = len(re.findall(r"^# skipped: ", out, re.M)) + len(
            re.findall(r"^ok \d+[^\n#]*#\s*skip", out, re.M | re.I))
        result = t.get("result")
        good = result in ("OK", "EXPECTEDFAIL", "SKIP")
        if oks + bad == 0:
            if result == "SKIP":
                oks = skips = 1
            else:
                oks, bad = (1, 0) if good else (0, 1)
        elif not good and bad == 0:
            bad = 1
        skips = min(skips, oks)
        passed += oks - skips
        skipped += skips
        failed += bad
print(f"{passed} passed, {failed} failed, {skipped} skipped")
strict = os.environ.get("IDUNNO_NO_SKIP")
sys.exit(1 if failed or (strict and skipped) else 0)
