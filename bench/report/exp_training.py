# SPDX-License-Identifier: MIT
"""exp_training.py: LeNet-5 and ResNet-18 trained as cluster training jobs
(SDFS data in, SDFS weights out): test accuracy on the disjoint 10,000
test images against epoch and against wall time, from the metrics each
job writes (models/M/metrics) and the times its epochs ended."""
import os
import re
import time

import common
from common import write_csv
import plot

NAME = "training"
TITLE = "Training as cluster jobs"

# The recipes (docs/MODELS.md): LeNet-5 on 1 worker, batch 64; ResNet-18
# on 2 workers, global batch 256, weights averaged every 16 steps; both on
# randomly mirrored images (ResNet-18's also shifted by up to a pixel),
# SGD with momentum 0.9, weight decay 5e-4, cosine learning rate.
# --recipes trains both to their targets (20 and 18 epochs: ResNet-18's
# alone takes about as long as the rest of the report); a full run without
# it trains 10 and 1 epochs, both at once (3 processes on 2 cores: a
# ResNet-18 epoch took 200 s so); quick and smoke runs train a slice of
# the data.
RECIPES = {
    "lenet5": {"lr": 0.03, "batch": 64, "workers": 1, "sync": 1,
               "augment": "flip"},
    "resnet18": {"lr": 0.05, "batch": 256, "workers": 2, "sync": 16,
                 "augment": "flip,crop=1"},
}
# (epochs, training images) per mode.
SIZES = {"lenet5": {"smoke": (1, 1000), "quick": (2, 12000),
                    "full": (10, 60000), "recipes": (20, 60000)},
         "resnet18": {"smoke": (1, 256), "quick": (1, 3200),
                      "full": (1, 60000), "recipes": (18, 60000)}}
WD = 0.0005


def size(ctx, m):
    return SIZES[m].get("recipes" if ctx.recipes else ctx.mode,
                        SIZES[m][ctx.mode])


def run(ctx):
    jobs = [(m,) + size(ctx, m) + (RECIPES[m]["lr"],)
            for m in ("lenet5", "resnet18")]
    cl = ctx.cluster(ctx.pick(4, 6, 6), phase="train")
    t0 = {}
    name = {m: "t-%s-%d" % (m, os.getpid()) for m, _, _, _ in jobs}
    for m, e, n, lr in jobs:
        r = RECIPES[m]
        cl.cli("train", "add", name[m], "--model", m, "--epochs", str(e),
               "--lr", str(lr), "--schedule", "cosine", "--limit", str(n),
               "--batch", str(r["batch"]), "--workers", str(r["workers"]),
               "--sync-every", str(r["sync"]), "--wd", str(WD),
               "--augment", r["augment"])
        t0[m] = common.now_ms()
    ends = {m: {} for m, _, _, _ in jobs}
    deadline = time.monotonic() + ctx.pick(300, 900, 3600)
    while time.monotonic() < deadline:
        js = {j["job"]: j for j in cl.json("jobs")["jobs"]}
        for m, _, _, _ in jobs:
            j = js.get(name[m], {})
            if j.get("state") == "failed":
                raise common.Failed("training %s failed: %s" % (
                    m, j.get("error")))
            ep = j.get("epoch", 0)
            if ep and ep not in ends[m]:
                ends[m][ep] = common.now_ms()
        if all(js.get(name[m], {}).get("state") == "done"
               for m, _, _, _ in jobs):
            break
        time.sleep(0.5)
    else:
        raise common.Failed("training did not finish in time")
    rows, last = [], {}
    for m, e, n, _ in jobs:
        text = cl.cli("get", "models/%s/metrics" % m, "-")
        for line in text.splitlines():
            w = re.match(r"epoch (\d+)/\d+ train_loss (\S+) test_loss (\S+) "
                         r"test_accuracy (\S+) lr \S+ train_ms (\d+)", line)
            if not w:
                continue
            ep = int(w.group(1))
            wall = (ends[m].get(ep, common.now_ms()) - t0[m]) / 1000.0
            rows.append([m, ep, n, float(w.group(2)), float(w.group(3)),
                         float(w.group(4)), int(w.group(5)) / 1000.0, wall])
            last[m] = rows[-1]
    ctx.release(cl)
    write_csv(ctx.csv("training"), ["model", "epoch", "train_images",
                                    "train_loss", "test_loss",
                                    "test_accuracy", "train_s", "wall_s"],
              rows)
    for x, col, label in (("epoch", 2, "epoch"),
                          ("time", 8, "wall time since the job was added "
                           "(s)")):
        body = """set key bottom right
set yrange [0:1]
plot %(d)s every ::1 using (strcol(1) eq 'lenet5' ? $%(c)d : 1/0):6 with linespoints \
lw 2 pt 7 title 'LeNet-5', \
 '' every ::1 using (strcol(1) eq 'resnet18' ? $%(c)d : 1/0):6 \
with linespoints lw 2 pt 5 title 'ResNet-18'
""" % {"d": plot.q(ctx.csv("training")), "c": col}
        plot.gnuplot(ctx.svg("training-" + x), "Test accuracy against " +
                     label.split(" (")[0], label, "test accuracy", body)
    return {"jobs": jobs, "last": last, "recipes": RECIPES, "wd": WD,
            "mode": ctx.mode, "recipes_run": ctx.recipes,
            "workers": RECIPES["resnet18"]["workers"],
            "sync": RECIPES["resnet18"]["sync"]}
