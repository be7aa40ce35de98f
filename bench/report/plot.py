# SPDX-License-Identifier: MIT
"""plot.py: SVG figures drawn by gnuplot from the report's CSV files."""
import os
import subprocess

from common import Failed

HEAD = """set terminal svg size 820,480 dynamic enhanced font 'Helvetica,12' \
background rgb 'white'
set output '%s'
set datafile separator ','
set key outside right top
set grid lc rgb '#dddddd'
set title '%s'
set xlabel '%s'
set ylabel '%s'
"""


def gnuplot(out_svg, title, xlabel, ylabel, body):
    """Draws one figure: `body` holds gnuplot commands (set ..., plot ...)
    whose data files are CSVs with a header line (skipped by `every ::1`
    or columnheader)."""
    script = HEAD % (out_svg, title.replace("'", ""), xlabel, ylabel) + body
    gp = out_svg[:-4] + ".gp"
    with open(gp, "w") as f:
        f.write(script)
    p = subprocess.run(["gnuplot", gp], capture_output=True, text=True,
                       timeout=60)
    os.unlink(gp)
    if p.returncode != 0 or not os.path.exists(out_svg):
        raise Failed("gnuplot (%s): %s" % (os.path.basename(out_svg),
                                           p.stderr.strip()[-300:]))


def q(path):
    """A path quoted for gnuplot."""
    return "'" + path.replace("'", "") + "'"
