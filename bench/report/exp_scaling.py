# SPDX-License-Identifier: MIT
"""exp_scaling.py: a backlogged sim job (100 ms per batch of 8: sleep, so
the cores do not bound it) on 1, 2, 4 and 8 workers against linear, and
the torch overhead: LeNet-5 on a 1-worker cluster (model pinned to a CPU)
against the raw libtorch loop on one thread."""

import common
from common import mean, write_csv
import exp_latency
import plot

NAME = "scaling"
TITLE = "Scaling with workers"
SIM_MS, SIM_BATCH = 100, 8


def tput(cl, job, model, batch, seconds):
    """q/s (and std) of a backlogged job sized to last about `seconds`."""
    per_worker = SIM_BATCH * 1000.0 / SIM_MS if model == "simb" else 20000
    return common.backlogged(cl, job, model, batch,
                             int(per_worker * (cl.nodes - 2) * seconds))


def run(ctx):
    seconds = ctx.pick(1, 4, 6)
    rows = []
    overhead = None
    for k in ctx.pick([1, 2], [1, 8], [1, 2, 4, 8]):
        cl = ctx.cluster(k + 2, pin=(k == 1), sims=[("simb", SIM_MS)],
                         torch_models=("lenet5",) if k == 1 else (),
                         fresh=True)
        r, sd = tput(cl, "s%d" % k, "simb", SIM_BATCH, seconds)
        rows.append([k, r, sd])
        if k == 1:
            # Loads the model on the worker.
            tput(cl, "warm", "lenet5", 32, ctx.pick(0.25, 1, 1))
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
plot %s every ::1 using 1:2:3 with yerrorlines lw 2 \
title 'measured (mean +- std of 1 s windows)', \
 '' every ::1 using 1:4 with lines dt 2 lw 2 title 'linear (k x 1 worker)'
""" % plot.q(ctx.csv("scaling"))
    plot.gnuplot(ctx.svg("scaling"), "Throughput against workers (sim model)",
                 "workers", "queries/s", body)
    return {"rows": out, "overhead": overhead, "seconds": seconds,
            "mean_vs_linear": mean([r[4] for r in out[1:]])}
