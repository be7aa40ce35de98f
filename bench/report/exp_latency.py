# SPDX-License-Identifier: MIT
"""exp_latency.py: latency against throughput for a sim model, LeNet-5 and
ResNet-18: each model's capacity on the cluster is measured first (a
backlogged job), then the offered rate is swept from 10% to 150% of it;
every figure comes from the jobs' timing rows in SDFS."""
import os

import common
from common import Failed, mean, std, summary, write_csv
import plot

NAME = "latency"
TITLE = "Latency against throughput"

# (model, batch): the sim model sleeps 20 ms a batch (I/O-like work, no
# CPU), the torch models run on 1 thread each worker.
MODELS = [("sim20", 32), ("lenet5", 32), ("resnet18", 16)]
FRACTIONS = {"smoke": [0.3, 1.3],
             "quick": [0.1, 0.5, 0.85, 1.3],
             "full": [0.1, 0.3, 0.5, 0.7, 0.85, 1.0, 1.2, 1.5]}
# A first guess of each model's capacity (q/s on this cluster), only to
# size the capacity probe.
GUESS = {"sim20": 10000, "lenet5": 15000, "resnet18": 1500}


def warm(cl, model, batch):
    """A short backlogged job, so that every worker has loaded the model
    (ResNet-18's 45 MB take seconds) before anything is measured."""
    job, _ = cl.infer("warm-" + model, model, batch, GUESS[model] * 50,
                      GUESS[model] // 2)
    cl.wait_job(job, 300)


def capacity(cl, model, batch, seconds):
    """Queries per second the cluster completes with a job backlogged."""
    return common.backlogged(cl, "cap-" + model, model, batch,
                             int(GUESS[model] * seconds))[0]


def point(cl, model, batch, rate, warm_s, steady_s, tail_s, tag):
    """One offered rate: the job runs warm_s + steady_s + tail_s (queries
    after the window fill its last tasks); figures are over the queries
    that arrived in the steady window."""
    job = "lt-%s-%s" % (model, tag)
    limit = max(batch * 4, int(rate * (warm_s + steady_s + tail_s)))
    job, _ = cl.infer(job, model, batch, rate, limit)
    cl.wait_job(job, 120 + steady_s * 10)
    t = cl.timing(job)
    a0 = t.start_ms + warm_s * 1000
    a1 = a0 + steady_s * 1000
    lat = t.latencies(a0, a1)
    if not lat:
        raise Failed("%s at %.0f q/s: no query in the steady window" %
                     (model, rate))
    # Throughput: queries completed in the steady window; its spread is
    # the standard deviation over the window's seconds.
    per_s = [r for _, r in common.rate_series(t.commits(), a0, a1)]
    parts = breakdown(t, a0, a1)
    return summary(lat), mean(per_s), std(per_s), parts


def breakdown(t, a0, a1):
    """Mean ms of a query's parts: waiting for its task's last query
    (fill), queued until the worker starts the task (queue, the lease
    wait included), reading inputs (inputs), the model, the result write
    (write)."""
    acc = {"fill": [], "queue": [], "inputs": [], "model": [], "write": []}
    for a, _, r in t.queries():
        if a0 <= a < a1:
            acc["fill"].append(r["arrival_ms"] - a)
            acc["queue"].append(max(0, r["start_ms"] - r["arrival_ms"]))
            acc["inputs"].append(r["model_start_ms"] - r["start_ms"])
            acc["model"].append(r["model_end_ms"] - r["model_start_ms"])
            acc["write"].append(r["commit_ms"] - r["model_end_ms"])
    return {k: mean(v) for k, v in acc.items()}


def raw_limit(ctx, model, batch, workers):
    """The raw libtorch loop's images/s on 1 thread (bench/model) times
    the cores the workers share: the cluster's ceiling."""
    if model.startswith("sim"):
        return workers * batch * 1000.0 / 20
    out = ctx.csv("raw-%s" % model)
    common.run([os.path.join(common.BENCH, "model"), "--models", model,
                "--batches", str(batch), "--csv", out, common.MODELS,
                str(ctx.pick(0.2, 2, 3))], timeout=300)
    rows = common.read_csv(out)
    os.unlink(out)
    return float(rows[0]["images_per_s"]) * min(os.cpu_count(), workers)


def run(ctx):
    nodes = ctx.pick(4, 10, 10)
    steady = ctx.pick(1, 2, 30)
    warm_s = ctx.pick(0.3, 1, 2)
    cl = ctx.cluster(nodes, sims=[("sim20", 20)])
    nodes = cl.nodes
    rows, parts_rows, knees = [], [], {}
    for model, batch in MODELS:
        if ctx.mode != "smoke":  # there the capacity run warms
            warm(cl, model, batch)
        cap = capacity(cl, model, batch, ctx.pick(0.3, 3, 5))
        limit = raw_limit(ctx, model, batch, nodes - 2)
        base_p99 = None
        knee = 0
        for i, f in enumerate(FRACTIONS[ctx.mode]):
            rate = cap * f
            s, thr, thr_sd, parts = point(cl, model, batch, rate, warm_s,
                                          steady, ctx.pick(0.2, 1, 1),
                                          "%d" % i)
            if base_p99 is None:
                base_p99 = s["p99"]
            if s["p99"] <= 2 * base_p99:
                knee = max(knee, rate)
            rows.append([model, batch, f, rate, thr, thr_sd, s["n"],
                         s["mean"], s["std"], s["p50"], s["p95"], s["p99"],
                         cap, limit])
            if abs(f - 0.5) < 0.11 or (ctx.mode == "smoke" and i == 0):
                parts_rows.append([model, rate] + [parts[k] for k in (
                    "fill", "queue", "inputs", "model", "write")])
        knees[model] = {"knee": knee, "cap": cap, "limit": limit,
                        "base_p99": base_p99}
    ctx.release(cl)
    write_csv(ctx.csv("latency"), ["model", "batch", "fraction", "offered_qps",
                                   "achieved_qps", "achieved_sd", "queries",
                                   "mean_ms", "std_ms", "p50_ms", "p95_ms",
                                   "p99_ms", "capacity_qps", "raw_limit_qps"],
              rows)
    write_csv(ctx.csv("latency-parts"), ["model", "offered_qps", "fill_ms",
                                         "queue_ms", "inputs_ms", "model_ms",
                                         "write_ms"], parts_rows)
    draw(ctx)
    return {"knees": knees, "rows": rows, "parts": parts_rows,
            "nodes": nodes, "steady": steady}


def draw(ctx):
    data = ctx.csv("latency")
    for model, _ in MODELS:
        body = """set logscale y
set xlabel 'achieved throughput (queries/s)'
stats %(d)s every ::1 using (strcol(1) eq '%(m)s' ? $14 : 1/0) nooutput
lim = STATS_max
stats %(d)s every ::1 using (strcol(1) eq '%(m)s' ? $5 : 1/0) nooutput
set xrange [0:(lim > STATS_max ? lim : STATS_max) * 1.08]
set arrow from lim, graph 0 to lim, graph 1 nohead dt 2 lc rgb '#888888'
set label 'raw libtorch loop (same cores)' at lim, graph 0.95 right offset -1,0
plot %(d)s every ::1 using %(x)s:%(mn)s:(column(9)) with yerrorbars \
title 'mean +- std' lc rgb '#999999', \
 '' every ::1 using %(x)s:%(p50)s with linespoints title 'p50' lw 2, \
 '' every ::1 using %(x)s:%(p95)s with linespoints title 'p95' lw 2, \
 '' every ::1 using %(x)s:%(p99)s with linespoints title 'p99' lw 2
""" % {"d": plot.q(data), "m": model,
       "x": "(strcol(1) eq '%s' ? $5 : 1/0)" % model,
       "mn": "(strcol(1) eq '%s' ? $8 : 1/0)" % model,
       "p50": "(strcol(1) eq '%s' ? $10 : 1/0)" % model,
       "p95": "(strcol(1) eq '%s' ? $11 : 1/0)" % model,
       "p99": "(strcol(1) eq '%s' ? $12 : 1/0)" % model}
        plot.gnuplot(ctx.svg("latency-%s" % model),
                     "%s: latency against achieved throughput" % model,
                     "achieved throughput (queries/s)", "latency (ms)", body)
    parts = ctx.csv("latency-parts")
    body = """set style data histograms
set style histogram rowstacked
set style fill solid 0.8 border -1
set boxwidth 0.6
set logscale y
set yrange [0.01:*]
plot %s every ::1 using 3:xtic(1) title 'waiting for the task to fill', \
 '' every ::1 using 4 title 'queued (lease, worker queue)', \
 '' every ::1 using 5 title 'reading inputs', \
 '' every ::1 using 6 title 'model', \
 '' every ::1 using 7 title 'result write (4 replicas)'
""" % plot.q(parts)
    body = body.replace("set logscale y\nset yrange [0.01:*]\n", "")
    plot.gnuplot(ctx.svg("latency-parts"),
                 "Where a query's time goes (about half of capacity)",
                 "model", "mean ms per query", body)
