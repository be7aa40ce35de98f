# SPDX-License-Identifier: MIT
"""exp_detect.py: failure detection at 10 nodes, 1 and 3 simultaneous
SIGKILLs, until every survivor knows (bench/membership), beside Debian's
serf on the same machine in the same run (bench/serf-detect)."""
import os

import common
from common import Failed, mean, pct, std
import exp_failures

NAME = "detect"
TITLE = "Failure detection"


def figures(rows, at_once):
    v = [float(r["detect_ms"]) for r in rows if int(r["at_once"]) == at_once]
    f = [float(r["first_ms"]) for r in rows if int(r["at_once"]) == at_once]
    return {"n": len(v), "median": pct(v, 50), "mean": mean(v),
            "std": std(v), "max": max(v) if v else float("nan"),
            "first": mean(f), "all": v}


def run(ctx):
    rounds = {1: ctx.pick(1, 3, 10), 3: ctx.pick(1, 1, 5)}
    rows = []
    for k, n in rounds.items():
        out = ctx.csv("detect-idunno-%d" % k)
        common.run([os.path.join(common.BENCH, "membership"),
                    "--kills-at-once", str(k), "--steady", "0", "--csv",
                    out, str(n), "0"],
                   timeout=120 + 60 * n)
        rows += common.read_csv(out)
        os.unlink(out)
    common.write_csv(ctx.csv("detect"), ["round", "at_once", "node",
                                         "detect_ms", "first_ms"],
                     [[r["round"], r["at_once"], r["node"], r["detect_ms"],
                       r["first_ms"]] for r in rows])
    res = {"idunno": {k: figures(rows, k) for k in rounds}}
    serf = os.path.join(common.SRC, "bench", "serf-detect")
    try:
        if ctx.mode == "smoke":
            raise Failed("not run in a smoke run: a serf cluster takes "
                         "half a minute to form")
        common.run([serf, "--nodes", "10", "--rounds", str(rounds[3]),
                    "--at-once", "1,3", "--csv", ctx.csv("detect-serf")],
                   timeout=120 + 90 * rounds[3] * 2)
        srows = common.read_csv(ctx.csv("detect-serf"))
        res["serf"] = {k: figures(srows, k) for k in rounds}
        res["serf_why"] = ""
    except Failed as e:
        res["serf"] = None
        res["serf_why"] = ("serf is not installed" if "exited 3" in str(e)
                           else str(e))
    groups = {}
    for k in rounds:
        groups["IDunno, %d killed" % k] = [x / 1000 for x in
                                           res["idunno"][k]["all"]]
        if res["serf"]:
            groups["serf, %d killed" % k] = [x / 1000 for x in
                                             res["serf"][k]["all"]]
    exp_failures.draw_back(ctx, "detect", "Time until every survivor knows",
                           groups, ylabel="seconds after the kill")
    res["rounds"] = rounds
    return res
