# SPDX-License-Identifier: MIT
"""exp_sdfs.py: SDFS put and get throughput from 1 MiB to 1 GiB against
`cp` and `cp + fsync` of the same file on the same disk in the same run,
and re-replication time against the data the killed node held
(bench/sdfs)."""
import os

import common
from common import mean, std, write_csv
import plot

NAME = "sdfs"
TITLE = "SDFS throughput and re-replication"


def run(ctx):
    sizes = ctx.pick("1,2", "1,16,256", "1,16,256,1024")
    reps = ctx.pick(1, 1, 2)
    rerep = ctx.pick("5", "10,50", "10,50,100")
    raw = ctx.csv("sdfs")
    common.run([os.path.join(common.BENCH, "sdfs"), "--sizes", sizes,
                "--reps", str(reps), "--rerep", rerep, "--csv", raw],
               timeout=ctx.pick(300, 900, 1800))
    rows = common.read_csv(raw)
    by = {}
    for r in rows:
        if r["kind"] != "rerep":
            by.setdefault((r["kind"], float(r["size_mib"])), []).append(
                float(r["mbps"]))
    table = []
    for size in sorted({s for _, s in by}):
        line = [size]
        for kind in ("put", "get", "cp", "cp_fsync"):
            v = by.get((kind, size), [])
            line += [mean(v), std(v)]
        table.append(line)
    write_csv(ctx.csv("sdfs-throughput"),
              ["size_mib", "put_mbps", "put_sd", "get_mbps", "get_sd",
               "cp_mbps", "cp_sd", "cp_fsync_mbps", "cp_fsync_sd"], table)
    rr = [r for r in rows if r["kind"] == "rerep"]
    body = """set logscale xy
set key outside right top
plot %(d)s every ::1 using 1:2:3 with yerrorlines lw 2 \
title 'SDFS put (4 copies)', \
 '' every ::1 using 1:4:5 with yerrorlines lw 2 title 'SDFS get', \
 '' every ::1 using 1:6:7 with yerrorlines dt 2 title 'cp', \
 '' every ::1 using 1:8:9 with yerrorlines dt 2 title 'cp + fsync', \
 '' every ::1 using 1:($8/4) with lines dt 3 lw 2 title '4-copy fsync limit'
""" % {"d": plot.q(ctx.csv("sdfs-throughput"))}
    plot.gnuplot(ctx.svg("sdfs"), "SDFS throughput against file size",
                 "file size (MiB)", "MB/s", body)
    body = """set key top left
set yrange [0:*]
plot %s every ::1 using (strcol(1) eq 'rerep' ? $2 : 1/0):4 \
with linespoints pt 7 lw 2 title 'time to 4 copies again'
""" % plot.q(raw)
    plot.gnuplot(ctx.svg("sdfs-rerep"), "Re-replication after a node dies",
                 "MiB the killed node held", "seconds", body)
    return {"table": table, "rerep": [(float(r["size_mib"]), int(float(
        r["rep"])), float(r["seconds"])) for r in rr], "reps": reps}
