# SPDX-License-Identifier: MIT
"""exp_fair.py: fair time when a second job joins (the seed's 1a and 1b):
ResNet-18 runs alone, LeNet-5 is added; the shares the scheduler gives
each job, the time to the new job's first result, the time until the two
rates are within 10%, and both rates over time."""
import threading
import time

import common
from common import Failed, mean, std, write_csv
import pair
import plot

NAME = "fair"
TITLE = "Fair time when a second job joins"


def poll_assign(cl, stop, out):
    """Samples `assign --json` every 0.5 s: (ms, {job: summed share})."""
    while not stop.is_set():
        try:
            a = cl.json("assign", timeout=5)["assignments"]
            sums = {}
            for w in a:
                for j in w["jobs"]:
                    sums[j["job"]] = sums.get(j["job"], 0) + j["share"]
            out.append((common.now_ms(), sums))
        except (Failed, ValueError, KeyError):
            pass
        stop.wait(0.5)


def one(cl, k, rate, alone_s, both_s, rows, series, shares, timings):
    tag = "f%d" % k
    ja, _ = pair.add(cl, tag, 0, rate, alone_s * 1.2 + both_s)
    # The second job joins once the first has results.
    common.wait_for(lambda: pair.has_results(cl, ja), 120,
                    "the first job's first result")
    time.sleep(alone_s)
    stop, samples = threading.Event(), []
    th = threading.Thread(target=poll_assign, args=(cl, stop, samples))
    th.start()
    try:
        jb, t_add = pair.add(cl, tag, 1, rate, both_s)
        cl.wait_job(jb, 300)
        cl.wait_job(ja, 300)
    finally:
        stop.set()
        th.join()
    ta, tb = cl.timing(ja), cl.timing(jb)
    timings += [ta, tb]
    first_start = min(r["model_start_ms"] for r in tb.rows) - t_add
    first_done = min(r["commit_ms"] for r in tb.rows) - t_add
    end = pair.both_end([ta, tb])
    ra, rb = pair.rates([ta, tb], t_add, end)
    within = None
    for i in range(len(ra)):
        lo, hi = sorted([ra[i][1], rb[i][1]])
        if lo > 0 and hi / lo <= 1.10:
            # Within 10% from here to the end of the shared run?
            if all(min(ra[j][1], rb[j][1]) > 0 and
                   max(ra[j][1], rb[j][1]) / min(ra[j][1], rb[j][1])
                   <= 1.10 for j in range(i, min(len(ra), i + 8))):
                within = (ra[i][0] - pair.WINDOW_MS - t_add) / 1000.0
                within = max(within, first_done / 1000.0)
                break
    # The shares once settled: the samples of the second half.
    late = [s for ms, s in samples if ms > t_add + (end - t_add) / 2]
    sa = mean([s.get(ja, 0) for s in late])
    sb = mean([s.get(jb, 0) for s in late])
    steady = [max(a[1], b[1]) / min(a[1], b[1]) for a, b in zip(ra, rb)
              if a[0] > t_add + (end - t_add) / 2 and min(a[1], b[1]) > 0]
    rows.append([k, first_start, first_done, within if within is not None
                 else float("nan"), sa, sb, sa / sb if sb else float("nan"),
                 mean(steady)])
    if k == 0:  # drawn until the later job's end (a smoke run's is short)
        last = max(c for t in (ta, tb) for c, _ in t.commits())
        win = min(pair.WINDOW_MS, max(pair.STEP_MS, (last - t_add) // 2))
        for (t, a), (_, b) in zip(*pair.rates([ta, tb], t_add, last + 1,
                                               win)):
            series.append([(t - t_add) / 1000.0, a, b])
        for ms, s in samples:
            shares.append([(ms - t_add) / 1000.0, s.get(ja, 0),
                           s.get(jb, 0)])


def run(ctx):
    reps = ctx.pick(1, 3, 5)
    cl = pair.setup(ctx, ctx.pick(4, 10, 10))
    rate = pair.calibrate(cl, ctx.pick(1, 4, 6))
    rows, series, shares, timings = [], [], [], []
    for k in range(reps):
        one(cl, k, rate, ctx.pick(1, 3, 4), ctx.pick(5, 10, 16), rows,
            series, shares, timings)
    common.write_timing(ctx.csv("fair-timing"), timings)
    ctx.release(cl)
    write_csv(ctx.csv("fair"), ["rep", "first_start_ms", "first_result_ms",
                                "within10_s", "share_resnet18",
                                "share_lenet5", "share_ratio",
                                "rate_ratio_settled"], rows)
    write_csv(ctx.csv("fair-series"), ["t_s", "resnet18_qps", "lenet5_qps"],
              series)
    write_csv(ctx.csv("fair-shares"), ["t_s", "share_resnet18",
                                       "share_lenet5"], shares)
    body = """set y2label 'workers (summed shares)'
set y2tics
set y2range [0:*]
set ytics nomirror
set arrow from 0, graph 0 to 0, graph 1 nohead dt 2
set label 'LeNet-5 added' at 0, graph 0.97 offset 0.5,0
plot %(d)s every ::1 using 1:2 with lines lw 2 title 'ResNet-18 q/s', \
 '' every ::1 using 1:3 with lines lw 2 title 'LeNet-5 q/s', \
 %(s)s every ::1 using 1:2 axes x1y2 with steps dt 3 title 'ResNet-18 workers', \
 '' every ::1 using 1:3 axes x1y2 with steps dt 3 title 'LeNet-5 workers'
""" % {"d": plot.q(ctx.csv("fair-series")),
       "s": plot.q(ctx.csv("fair-shares"))}
    plot.gnuplot(ctx.svg("fair"), "Rates and shares when a second job joins",
                 "seconds since LeNet-5 was added", "queries/s (3 s windows)",
                 body)
    col = list(zip(*rows))
    return {"reps": reps, "rate": rate,
            "first_start": (mean(col[1]), std(col[1])),
            "first_done": (mean(col[2]), std(col[2])),
            "within": (mean([x for x in col[3] if x == x]),
                       std([x for x in col[3] if x == x]),
                       sum(1 for x in col[3] if x != x)),
            "share_a": (mean(col[4]), std(col[4])),
            "share_b": (mean(col[5]), std(col[5])),
            "ratio": (mean(col[6]), std(col[6])),
            "settled": (mean(col[7]), std(col[7]))}
