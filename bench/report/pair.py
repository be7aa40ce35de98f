# SPDX-License-Identifier: MIT
"""pair.py: two backlogged inference jobs (ResNet-18 and LeNet-5) on one
cluster, the rates they get, and "back to normal" after a failure, all
from the jobs' timing rows."""
import time

import common
from common import Failed

# Both are offered 3x what they get at their fair share: backlogged.
JOBS = (("resnet18", 16), ("lenet5", 32))
OVER = 3.0
# Rates are over 3 s windows every 250 ms: a LeNet-5 task of the pair
# holds hundreds of queries, so 2 s windows swung by 10-15% a task.
WINDOW_MS = 3000
STEP_MS = 250
HOLD_MS = 2000     # "back to normal" must hold this long
NORMAL = 0.10      # total rate within 10% of the steady rate
FAIR = 1.10        # and max/min of the jobs' rates at most this


def setup(ctx, nodes):
    return ctx.cluster(nodes)


def calibrate(cl, seconds=5, tag="cal"):
    """The query rate each job of the pair gets when both are backlogged:
    both run with more queries than they can finish; after `seconds` of
    warm-up (both models loaded on every worker) the rate is the mean of
    the two jobs' completed-query rates over the next `seconds` (from
    `stats`), and both are removed. Sized by count instead (6,000 queries
    arriving at once) it read 3x the rate the pair keeps for minutes:
    such short jobs end in a burst of tasks. A cluster shared between
    experiments is calibrated once."""
    if getattr(cl, "pair_rate", None):
        return cl.pair_rate
    jobs = [cl.infer("%s-%s" % (tag, m), m, b, 1e6, 100000)[0]
            for m, b in JOBS]
    common.wait_for(lambda: all(has_results(cl, j) for j in jobs), 120,
                    "the calibration jobs' first results")
    time.sleep(seconds)  # the warm-up

    def done():
        return [cl.json("stats", j)["jobs"][0]["done"] for j in jobs], \
            common.now_ms()
    d0, t0 = done()
    time.sleep(seconds)  # the measured window
    d1, t1 = done()
    for j in jobs:
        cl.cli("infer", "remove", j, check=False)
    cl.pair_rate = common.mean([(b - a) * 1000.0 / (t1 - t0)
                                for a, b in zip(d0, d1)])
    if cl.pair_rate <= 0:
        raise Failed("calibration: the pair's jobs completed nothing in "
                     "%g s" % seconds)
    return cl.pair_rate


def add(cl, tag, k, rate_each, seconds):
    """Adds job k of the pair, sized to run `seconds` at rate_each."""
    m, b = JOBS[k]
    return cl.infer("%s-%s" % (tag, m), m, b, rate_each * OVER,
                    max(b * 8, rate_each * seconds))


def has_results(cl, job):
    """Whether the job has a finished query. A `stats` answered by the
    standby can miss a job added a moment ago ("no such job"): not yet."""
    out = cl.cli("stats", job, "--json", check=False)
    return out.startswith("{") and '"done": 0,' not in out


def rates(ts, t0, t1, window_ms=WINDOW_MS):
    """Per job, [(t, q/s)] over sliding windows, from commits."""
    return [common.rate_series(t.commits(), t0, t1, STEP_MS, window_ms)
            for t in ts]


def both_end(ts):
    """The time the first of the jobs had its last result."""
    return min(max(c for c, _ in t.commits()) for t in ts)


def steady_rate(ts, t0, t1):
    """Total completed q/s of the jobs over [t0, t1)."""
    n = sum(c for t in ts for w, c in t.commits() if t0 <= w < t1)
    return n * 1000.0 / max(1, t1 - t0)


def normal(ts, t0, t1):
    """What is normal for this run: the median total rate of its 3 s
    windows in [t0, t1), and the 90th percentile of the two jobs' max/min
    rate ratio (what fairness the cluster keeps when nothing fails)."""
    series = rates(ts, t0, t1)
    tot = [sum(s[k][1] for s in series) for k in range(len(series[0]))]
    fair = [max(s[k][1] for s in series) / min(s[k][1] for s in series)
            for k in range(len(series[0]))
            if min(s[k][1] for s in series) > 0]
    return common.pct(tot, 50), common.pct(fair, 90)


def back_to_normal(ts, kill_ms, total, fair, end_ms):
    """Seconds from the kill to the start of the first 3 s window, among
    those starting after the kill, from which on for HOLD_MS every window
    has the total rate at least (1 - NORMAL) x `total` and the jobs'
    max/min at most max(FAIR, `fair`); None when that did not happen by
    end_ms."""
    series = rates(ts, kill_ms, end_ms)
    first = None
    for k in range(len(series[0])):
        rs = [s[k][1] for s in series]
        good = (sum(rs) >= (1 - NORMAL) * total and min(rs) > 0 and
                max(rs) / min(rs) <= max(FAIR, fair))
        if not good:
            first = None
            continue
        first = k if first is None else first
        if (k - first) * STEP_MS >= HOLD_MS:
            return first * STEP_MS / 1000.0
    return None
