# SPDX-License-Identifier: MIT
"""exp_timeline.py: one run of two jobs over several minutes, with the
events of a cluster's life: the second job added, a worker killed, three
workers killed at once, the coordinator killed, the workers rejoining.
Both rates per second come from the jobs' timing rows."""
import random

import common
from common import write_csv
import pair
import plot

NAME = "timeline"
TITLE = "Timeline: two jobs through failures"

# Seconds from the first job's start (full run); shorter modes scale it.
EVENTS = [(20, "job 2 added"), (60, "1 worker killed"),
          (100, "3 workers killed"), (140, "coordinator killed"),
          (170, "workers rejoin")]
END = 210


def run(ctx):
    # A smoke run draws the workers section's series: it has these events.
    if ctx.mode == "smoke" and ctx.last_series:
        ts, t0, events, rate = ctx.last_series
        return draw(ctx, ts, t0, [[(t - t0) / 1000.0, w] for t, w in events],
                    rate)
    scale = ctx.pick(0.025, 0.2, 0.5)
    cl = pair.setup(ctx, ctx.pick(6, 10, 10))
    rate = pair.calibrate(cl, ctx.pick(1, 4, 6))
    rnd = random.Random(11)
    ja, t0 = pair.add(cl, "tl", 0, rate, END * scale)
    events, killed, jb = [], [], None
    for at, what in EVENTS:
        common.wait_for(lambda: common.now_ms() >= t0 + at * scale * 1000,
                        at * scale + 30, "the timeline's next event",
                        step_s=0.05)
        t = common.now_ms()
        if what == "job 2 added":
            jb, _ = pair.add(cl, "tl", 1, rate, (END - at) * scale)
        elif what.endswith("killed") and "coordinator" not in what:
            live = [n["name"] for n in cl.status()
                    if n["role"] == "worker" and n["alive"]]
            names = rnd.sample(live, min(int(what[0]), len(live) - 1))
            cl.kill(*names)
            killed += names
        elif what == "coordinator killed":
            name = cl.active_coord()
            cl.kill(name)
            killed.append(name)
        else:
            for n in killed:
                cl.cli("cluster", "restart", n, check=False, timeout=60)
        events.append([(t - t0) / 1000.0, what])
    cl.wait_job(ja, 600)
    cl.wait_job(jb, 600)
    ts = [cl.timing(ja), cl.timing(jb)]
    ctx.release(cl)
    return draw(ctx, ts, t0, events, rate)


def draw(ctx, ts, t0, events, rate):
    """The figure and tables of two jobs' timing rows and the events
    ([seconds after t0, what])."""
    common.write_timing(ctx.csv("timeline-timing"), ts,
                        [(w, t0 + t * 1000) for t, w in events])
    end = max(c for t in ts for c, _ in t.commits())
    # 3 s windows every second: a LeNet-5 task holds hundreds of queries,
    # so 1 s windows swing between 0 and twice the rate.
    ra = common.rate_series(ts[0].commits(), t0, end, 1000, pair.WINDOW_MS)
    rb = common.rate_series(ts[1].commits(), t0, end, 1000, pair.WINDOW_MS)
    write_csv(ctx.csv("timeline"), ["t_s", "resnet18_qps", "lenet5_qps"],
              [[(t - t0) / 1000.0, a, b] for (t, a), (_, b) in zip(ra, rb)])
    # Each event's dip: the total rate's lowest window in the 5 s
    # after it against its mean over the 5 s before.
    tot = [(t, a + b) for (t, a), (_, b) in zip(ra, rb)]
    for ev in events:
        at = t0 + ev[0] * 1000
        before = [r for t, r in tot if at - 5000 < t <= at]
        after = [r for t, r in tot if at < t <= at + 5000]
        ev += [common.mean(before), min(after) if after else float("nan")]
    write_csv(ctx.csv("timeline-events"), ["t_s", "event", "qps_before",
                                           "lowest_qps_after"], events)
    marks = "".join(
        "set arrow from first %.2f, graph 0 to first %.2f, graph 1 nohead "
        "dt 2 lc rgb '#888888'\nset label '%s' at first %.2f, graph 0.98 "
        "rotate by 90 right offset -0.6,0 font ',10'\n" % (t, t, w, t)
        for t, w, _, _ in events)
    body = marks + """set key below
plot %s every ::1 using 1:2 with lines lw 1.5 title 'ResNet-18', \
 '' every ::1 using 1:3 with lines lw 1.5 title 'LeNet-5'
""" % plot.q(ctx.csv("timeline"))
    plot.gnuplot(ctx.svg("timeline"), "Two jobs' rates through failures",
                 "seconds", "completed queries/s (3 s windows)", body)
    return {"events": events, "seconds": (end - t0) / 1000.0,
            "window_s": pair.WINDOW_MS / 1000.0,
            "rate": rate}
