# SPDX-License-Identifier: MIT
"""pair.py: two backlogged inference jobs (ResNet-18 and LeNet-5) on one
cluster, the rates they get, and "back to normal" after a failure, all
from the jobs' timing rows."""
import common

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


def calibrate(cl, queries=6000, tag="cal"):
    """The query rate each job of the pair gets when both are backlogged
    and fair time gives them equal rates: each model's backlogged rate
    alone (after a warm-up that loads it on every worker), C_r and C_l,
    then r = 1 / (1/C_r + 1/C_l), each job taking its share of time."""
    inv = 0.0
    for m, b in JOBS:
        n = queries if m == "resnet18" else queries * 10
        common.backlogged(cl, "%s-warm-%s" % (tag, m), m, b, n // 4)
        inv += 1.0 / common.backlogged(cl, "%s-%s" % (tag, m), m, b, n)[0]
    return 1.0 / inv


def add(cl, tag, k, rate_each, seconds):
    """Adds job k of the pair, sized to run `seconds` at rate_each."""
    m, b = JOBS[k]
    return cl.infer("%s-%s" % (tag, m), m, b, rate_each * OVER,
                    max(b * 8, rate_each * seconds))


def rates(ts, t0, t1):
    """Per job, [(t, q/s)] over sliding windows, from commits."""
    return [common.rate_series(t.commits(), t0, t1, STEP_MS, WINDOW_MS)
            for t in ts]


def both_end(ts):
    """The time the first of the jobs had its last result."""
    return min(max(c for c, _ in t.commits()) for t in ts)


def steady_rate(ts, t0, t1):
    """Total completed q/s of the jobs over [t0, t1)."""
    n = sum(c for t in ts for w, c in t.commits() if t0 <= w < t1)
    return n * 1000.0 / max(1, t1 - t0)


def back_to_normal(ts, kill_ms, steady, end_ms):
    """Seconds from the kill until, for HOLD_MS, every window has the total
    rate within NORMAL of `steady` and the two rates within FAIR; None
    when that did not happen before end_ms (a job ran out of queries)."""
    series = rates(ts, kill_ms, end_ms)
    ok_since = None
    for k in range(len(series[0])):
        t = series[0][k][0]
        rs = [s[k][1] for s in series]
        tot = sum(rs)
        good = (abs(tot - steady) <= NORMAL * steady and min(rs) > 0 and
                max(rs) / min(rs) <= FAIR)
        if not good:
            ok_since = None
            continue
        # The window ending at t is the first good one: normal from its
        # start on.
        if ok_since is None:
            ok_since = t - WINDOW_MS
        if t - ok_since >= HOLD_MS + WINDOW_MS:
            return max(0.0, (ok_since - kill_ms) / 1000.0)
    return None
