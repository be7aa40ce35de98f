# SPDX-License-Identifier: MIT
"""exp_scaling.py: a backlogged sim job (100 ms per batch of 8: sleep, so
the cores do not bound it) on 1, 2, 4 and 8 workers against linear, and
the torch overhead: LeNet-5 on a 1-worker cluster (model pinned to a CPU)
against the raw libtorch loop on one thread."""
import os

import common
from common import mean, std, write_csv
import exp_latency
import plot

NAME = "scaling"
TITLE = "Scaling with workers"
SIM_MS, SIM_BATCH = 100, 8


def tput(cl, job, model, batch, seconds):
    """q/s of a backlogged job: every query arrives at once; the middle
    80% of the results count; std over its 1 s windows."""
    per_worker = SIM_BATCH * 1000.0 / SIM_MS if model == "simb" else 20000
    n = int(per_worker * (cl.nodes - 2) * seconds)
    job, _ = cl.infer(job, model, batch, 1e6, n)
    cl.wait_job(job, 120 + seconds * 10)
    done = sorted(cl.timing(job).commits())
    k0, k1 = len(done) // 10, max(len(done) * 9 // 10, len(done) // 10 + 1)
    t0, t1 = done[k0][0], done[k1 - 1][0]
    q = sum(c for _, c in done[k0:k1])
    per_s = [r for _, r in common.rate_series(done, t0, t1)]
    return q * 1000.0 / max(1, t1 - t0), std(per_s)


def run(ctx):
    seconds = ctx.pick(2, 5, 10)
    rows = []
    overhead = None
    for k in ctx.pick([1, 2], [1, 2, 4, 8], [1, 2, 4, 8]):
        cl = ctx.cluster(k + 2, pin=(k == 1), sims=[("simb", SIM_MS)],
                         torch_models=("lenet5",) if k == 1 else ())
        r, sd = tput(cl, "s%d" % k, "simb", SIM_BATCH, seconds)
        rows.append([k, r, sd])
        if k == 1:
            tput(cl, "warm", "lenet5", 32, 1)  # loads the model
            c, csd = tput(cl, "t1", "lenet5", 32, seconds)
            raw = exp_latency.raw_limit(ctx, "lenet5", 32, 1)
            overhead = {"cluster": c, "cluster_sd": csd, "raw": raw,
                        "ratio": c / raw}
        ctx.release(cl)
    one = rows[0][1]
    out = [[k, r, sd, k * one, r / (k * one)] for k, r, sd in rows]
    write_csv(ctx.csv("scaling"), ["workers", "qps", "qps_sd", "linear_qps",
                                   "vs_linear"], out)
    write_csv(ctx.csv("overhead"), ["cluster_qps", "cluster_sd", "raw_qps",
                                    "ratio"],
              [[overhead["cluster"], overhead["cluster_sd"],
                overhead["raw"], overhead["ratio"]]])
    body = """set key top left
set xtics (1, 2, 4, 8)
plot %s every ::1 using 1:2:3 with yerrorlines lw 2 title 'measured (mean +- std of 1 s windows)', \
 '' every ::1 using 1:4 with lines dt 2 lw 2 title 'linear (k x 1 worker)'
""" % plot.q(ctx.csv("scaling"))
    plot.gnuplot(ctx.svg("scaling"), "Throughput against workers (sim model)",
                 "workers", "queries/s", body)
    return {"rows": out, "overhead": overhead, "seconds": seconds,
            "mean_vs_linear": mean([r[4] for r in out[1:]])}
