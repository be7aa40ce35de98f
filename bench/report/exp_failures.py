# SPDX-License-Identifier: MIT
"""exp_failures.py: recovery after failures with two jobs running (the
seed's 2 and 3): one worker, three workers at once, or the active
coordinator is SIGKILLed mid-run, and the time until the cluster is back
to normal is measured from the jobs' timing rows (pair.back_to_normal).
The kills come one after another in one long run of the two jobs (each
victim restarts before the next kill). For the coordinator the takeover
is the kill to the first lease a worker received after it (from the
timing rows), beside etcd's leader failover measured in the same run."""
import os
import random

import common
from common import Failed, mean, pct, std, write_csv
import pair
import plot


IN_FLIGHT_MS = 50


def kill_series(cl, tag, rate, kills, before_s, gap_s, tail_s, raw_csv):
    """Both jobs run; after before_s together, each entry of `kills` (a
    function naming the nodes to kill) is applied gap_s apart; the killed
    nodes restart 60% into their gap; the jobs last tail_s more. Returns
    one dict per kill: back to normal (s or None), steady q/s, takeover
    (kill to the first lease a worker received after it, ms), rate 2 s
    after / 4 s before; and the run as a timeline: (timing rows, first
    job's start, [(ms, event)], rate)."""
    total = before_s + len(kills) * gap_s + tail_s
    ja, t_a = pair.add(cl, tag, 0, rate, total * 1.1)
    jb, t_b = pair.add(cl, tag, 1, rate, total)
    common.wait_for(lambda: all(pair.has_results(cl, j) for j in (ja, jb)),
                    120, "both jobs' results")
    t_both = common.now_ms()
    t = t_both + before_s * 1000
    done = []
    for victims in kills:
        common.wait_for(lambda: common.now_ms() >= t, before_s + gap_s + 30,
                        "the next kill", step_s=0.02)
        names = victims()
        cl.kill(*names)
        # After the SIGKILL was sent: a lease a worker received from here
        # on came from the new coordinator.
        kill_ms = common.now_ms()
        common.wait_for(lambda: common.now_ms() >= kill_ms + gap_s * 600,
                        gap_s + 30, "the restart", step_s=0.05)
        restart_ms = common.now_ms()
        cl.restart(*names)
        done.append((names, kill_ms, restart_ms))
        t = kill_ms + gap_s * 1000
    cl.wait_job(jb, 600)
    cl.wait_job(ja, 600)
    ts = [cl.timing(ja), cl.timing(jb)]
    common.write_timing(raw_csv, ts, [("kill " + " ".join(n), k) for n, k,
                                      _ in done])
    # The timeline's events, for a smoke run's timeline (exp_timeline).
    series = (ts, t_a, [(t_b, "job 2 added")] + [
        (k, "coordinator killed" if n[0] in ("coord", "standby") else
         "%d worker%s killed" % (len(n), "s" * (len(n) > 1)))
        for n, k, _ in done] + [
        (done[-1][2], "workers rejoin")], rate)
    total, fair = pair.normal(ts, t_both + 2000, pair.both_end(ts) - 3000)
    out = []
    for names, kill_ms, restart_ms in done:
        steady = pair.steady_rate(ts, kill_ms - 3500, kill_ms - 500)
        back = pair.back_to_normal(ts, kill_ms, total, fair, restart_ms)
        # A lease a worker received in the first 50 ms after the kill was
        # already on its way from the killed coordinator (one such came
        # 4 ms after); no takeover is that fast (300 ms of silence first).
        leases = [r["lease_ms"] for x in ts for r in x.rows
                  if r["lease_ms"] > kill_ms + IN_FLIGHT_MS]
        before = pair.steady_rate(ts, kill_ms - 4000, kill_ms)
        after = pair.steady_rate(ts, kill_ms, kill_ms + 2000)
        out.append({"names": names, "back": back, "steady": steady,
                    "normal": total, "normal_fair": max(pair.FAIR, fair),
                    "takeover": min(leases) - kill_ms if leases else None,
                    "ratio": after / before if before else float("nan")})
    exactly_once(cl, ja)
    exactly_once(cl, jb)
    common.settle(cl)
    return out, series


def exactly_once(cl, job):
    """Every query of the job is answered exactly once in its output."""
    lines = cl.cli("result", job, "-", timeout=300).splitlines()
    qs = [int(l.split(",", 1)[0]) for l in lines if l[:1].isdigit()]
    if sorted(qs) != list(range(len(qs))) or not qs:
        raise Failed("%s: the output does not answer every query exactly "
                     "once (%d lines)" % (job, len(qs)))


def series_run(ctx, tag, kills_of):
    """kill_series on a fresh cluster (the mode's size) with the kills
    kills_of(cluster) names; returns its results, the pair's rate, the
    gap between kills and the cluster's size."""
    nodes = ctx.pick(5, 10, 10)
    gap = ctx.pick(2, 10, 12)
    cl = pair.setup(ctx, nodes)
    rate = pair.calibrate(cl, ctx.pick(1, 4, 6))
    res, ctx.last_series = kill_series(cl, tag, rate, kills_of(cl),
                                       ctx.pick(0.5, 4, 5), gap,
                                       ctx.pick(1, 4, 4),
                                       ctx.csv(tag + "-timing"))
    ctx.release(cl)
    return res, rate, gap, cl.nodes


def stats_of(v):
    ok = [x for x in v if x is not None]
    return {"mean": mean(ok), "std": std(ok), "max": max(ok) if ok else
            float("nan"), "median": pct(ok, 50), "n": len(ok),
            "never": len(v) - len(ok)}


def no_nan(x):
    return x if x is not None else float("nan")


class WorkerFail:
    NAME = "workers"
    TITLE = "Recovery after worker failures"

    @staticmethod
    def run(ctx):
        reps = ctx.pick(1, 2, 5)
        rnd = random.Random(7)

        def kills(cl):
            def victims(k):
                def pick():
                    st = cl.status()
                    ws = [n["name"] for n in st
                          if n["role"] == "worker" and n["alive"]]
                    # At least 4 nodes stay (SDFS's copies of a result:
                    # a smaller cluster waits for the restarts instead).
                    alive = sum(1 for n in st if n["alive"])
                    return rnd.sample(ws, max(1, min(k, len(ws) - 1,
                                                     alive - 4)))
                return pick
            ks = [victims(1)] * reps + [victims(3)] * reps
            if ctx.mode == "smoke":  # the coordinator's section's kill too
                ks.append(lambda: [cl.active_coord()])  # (and timeline's)
            return ks
        res, rate, gap, nodes = series_run(ctx, "wk", kills)
        if ctx.mode == "smoke":
            ctx.coord_series, res = (res[-1:], rate, gap), res[:-1]
        rows = [[len(r["names"]), " ".join(r["names"]), r["steady"],
                 no_nan(r["back"])] for r in res]
        write_csv(ctx.csv("workers"), ["at_once", "killed", "steady_qps",
                                       "back_to_normal_s"], rows)
        by = {k: stats_of([r["back"] for r in res[i * reps:(i + 1) * reps]])
              for i, k in enumerate((1, 3))}
        draw_back(ctx, "workers", "Back to normal after worker kills",
                  {"1 worker": [r[3] for r in rows[:reps]],
                   "3 workers": [r[3] for r in rows[reps:]]})
        return {"reps": reps, "rate": rate, "by": by, "nodes": nodes,
                "normal": res[0]["normal"],
                "normal_fair": res[0]["normal_fair"],
                "window": gap * 0.6, "killed3": len(res[-1]["names"])}


class CoordFail:
    NAME = "coordinator"
    TITLE = "Recovery after the coordinator fails"

    @staticmethod
    def run(ctx):
        kills = ctx.pick(1, 3, 10)
        # A smoke run kills its coordinator in the workers' series.
        res, rate, gap = ctx.coord_series or series_run(
            ctx, "co", lambda cl: [lambda: [cl.active_coord()]] * kills)[:3]
        rows = [[i, r["names"][0], r["steady"], no_nan(r["takeover"]),
                 r["ratio"], no_nan(r["back"])] for i, r in enumerate(res)]
        write_csv(ctx.csv("coordinator"), ["kill", "killed", "steady_qps",
                                           "takeover_ms", "rate_ratio",
                                           "back_to_normal_s"], rows)
        take = [r[3] for r in rows if r[3] == r[3]]
        ratios = [r[4] for r in rows if r[4] == r[4]]
        etcd = etcd_failover(ctx, kills)
        draw_back(ctx, "takeover", "Takeover time: IDunno beside etcd",
                  {"IDunno takeover": [t / 1000 for t in take],
                   "etcd leader failover": [t / 1000 for t in etcd["ms"]]},
                  ylabel="seconds")
        if not take:
            raise Failed("no lease after any kill: no takeover seen")
        return {"kills": kills, "rate": rate, "window": gap * 0.6,
                "normal": res[0]["normal"],
                "normal_fair": res[0]["normal_fair"],
                "back": stats_of([r["back"] for r in res]),
                "take": {"median": pct(take, 50), "mean": mean(take),
                         "std": std(take), "max": max(take),
                         "n": len(take)},
                "ratio": {"mean": mean(ratios), "std": std(ratios),
                          "min": min(ratios) if ratios else float("nan")},
                "etcd": etcd}


def etcd_failover(ctx, kills):
    """bench/etcd-failover (3 members, 100 ms heartbeat, 1 s election
    timeout) when Debian's etcd is installed; "why" says why not."""
    if ctx.mode == "smoke":
        return {"ms": [], "why": "not run in a smoke run: an etcd cluster "
                "takes longer to start than the whole smoke run may last"}
    out = ctx.csv("etcd")
    prog = os.path.join(common.SRC, "bench", "etcd-failover")
    try:
        common.run([prog, "--kills", str(kills), "--csv", out],
                   timeout=60 + kills * 40)
    except Failed as e:
        if "exited 3" in str(e):
            return {"ms": [], "why": "etcd-server/etcd-client are not "
                    "installed"}
        return {"ms": [], "why": str(e)}
    ms = [float(r["takeover_ms"]) for r in common.read_csv(out)]
    return {"ms": ms, "median": pct(ms, 50), "mean": mean(ms),
            "std": std(ms), "max": max(ms) if ms else float("nan"),
            "why": ""}


def draw_back(ctx, name, title, groups, ylabel="seconds after the kill"):
    """Each group's values as points, with its mean +- std."""
    rows = []
    for i, (label, vals) in enumerate(groups.items(), 1):
        ok = [v for v in vals if v == v]
        for v in ok:
            rows.append([i, label, v, "", ""])
        if ok:
            rows.append([i + 0.15, label, "", mean(ok), std(ok)])
    path = ctx.csv(name + "-plot")
    write_csv(path, ["x", "group", "value", "mean", "std"], rows)
    tics = ", ".join("'%s' %d" % (g, i) for i, g in enumerate(groups, 1))
    body = """set xrange [0.5:%d.5]
set xtics (%s)
set key top left
""" % (len(groups), tics)
    if rows:
        body += """set yrange [0:*]
plot %s every ::1 using 1:3 with points pt 7 ps 0.8 title 'each run', \
 '' every ::1 using 1:4:5 with yerrorbars lw 2 pt 5 title 'mean +- std'
""" % plot.q(path)
    else:  # nothing was measured: an empty frame that says so
        body += """set yrange [0:1]
set label 'no value in this run' at graph 0.5, 0.5 center
plot -1 notitle
"""
    plot.gnuplot(ctx.svg(name), title, "", ylabel, body)
    os.unlink(path)
