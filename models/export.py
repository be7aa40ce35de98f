# SPDX-License-Identifier: MIT
# export.py: writes TorchScript models for 1x28x28 Fashion-MNIST images,
# their IDunno descriptors (docs/MODELS.md) and reference input/output files
# for the C equality test. Run with Debian's /usr/bin/python3 (it has torch):
#   /usr/bin/python3 models/export.py --out build/models [--alexnet]
# Per model NAME it writes NAME.pt (TorchScript, random weights from a fixed
# seed), NAME.desc, NAME.ref.in (REF_N uint8 images, N*1*28*28 bytes) and
# NAME.ref.out (REF_N*10 little-endian float32 logits). It also writes
# sim.desc, a descriptor for the sim backend.
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
           "Shirt", "Sneaker", "Bag", "Ankle boot"]
MEAN = 0.2860  # Fashion-MNIST training set, pixels scaled to [0, 1]
STD = 0.3530
REF_N = 8


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 inputs (padding 2 stands in for 32x32)."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


RESNET_STEM = "imagenet"


def resnet18():
    # torchvision's ResNet-18 with a 1-channel stem. "imagenet" keeps its
    # 7x7 stride-2 conv and max-pool (layer1 sees 7x7): 33 ms per batch of
    # 32 and ~4 s per 1,000 training images on 1 thread. "cifar" (3x3
    # stride 1, no max-pool, layer1 sees 28x28) costs 8x that: 266 ms per
    # batch of 32, ~30 s per 1,000 training images (docs/MODELS.md).
    m = torchvision.models.resnet18(num_classes=10)
    if RESNET_STEM == "cifar":
        m.conv1 = nn.Conv2d(1, 64, 3, stride=1, padding=1, bias=False)
        m.maxpool = nn.Identity()
    else:
        m.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
    return m


def alexnet():
    # torchvision's AlexNet with a 1-channel stride-1 first conv; its
    # adaptive average pool then maps the 1x1 feature map to 6x6.
    m = torchvision.models.alexnet(num_classes=10)
    m.features[0] = nn.Conv2d(1, 64, 11, stride=1, padding=2)
    return m


def descriptor(name):
    return ("# IDunno model descriptor (docs/MODELS.md)\n"
            f"name = {name}\n"
            "backend = torch\n"
            "input = 1x28x28\n"
            "classes = 10\n"
            f"class_names = {', '.join(CLASSES)}\n"
            f"mean = {MEAN:.4f}\n"
            f"std = {STD:.4f}\n")


SIM_DESC = ("# IDunno model descriptor (docs/MODELS.md): the sim backend\n"
            "name = sim\n"
            "backend = sim\n"
            "input = 1x28x28\n"
            "classes = 10\n"
            f"class_names = {', '.join(CLASSES)}\n"
            "service_ms = 20\n")


def ref_input():
    # A fixed pseudo-random batch (an LCG, no dataset needed).
    x = np.empty(REF_N * 28 * 28, dtype=np.uint8)
    s = 12345
    for i in range(x.size):
        s = (s * 1103515245 + 12345) & 0x7fffffff
        x[i] = (s >> 16) & 0xff
    return x


def normalise(u8):
    # The same operations, in the same order, as shim.cpp's normalise().
    x = torch.from_numpy(u8.copy()).view(-1, 1, 28, 28).to(torch.float32)
    mean = torch.tensor([MEAN], dtype=torch.float32).view(1, 1, 1, 1)
    std = torch.tensor([STD], dtype=torch.float32).view(1, 1, 1, 1)
    return x.div_(255.0).sub_(mean).div_(std)


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def export(name, make, out):
    torch.manual_seed(0)
    model = make().eval()
    scripted = torch.jit.script(model)
    u8 = ref_input()
    with torch.no_grad():
        y = scripted(normalise(u8)).to(torch.float32).contiguous()
        eager = model(normalise(u8))
    if not torch.allclose(y, eager, atol=1e-5):
        sys.exit(f"{name}: scripted and eager outputs differ")
    scripted.save(os.path.join(out, name + ".pt"))
    write(os.path.join(out, name + ".desc"), descriptor(name).encode())
    write(os.path.join(out, name + ".ref.in"), u8.tobytes())
    write(os.path.join(out, name + ".ref.out"),
          y.numpy().astype("<f4").tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--alexnet", action="store_true",
                    help="also export AlexNet (228 MB)")
    ap.add_argument("--only", help="export just this model")
    ap.add_argument("--resnet-stem", choices=["imagenet", "cifar"],
                    default="imagenet", help="ResNet-18's first layers")
    a = ap.parse_args()
    global RESNET_STEM
    RESNET_STEM = a.resnet_stem
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    models = {"lenet5": LeNet5, "resnet18": resnet18}
    if a.alexnet:
        models["alexnet"] = alexnet
    if a.only:
        models = {a.only: {"lenet5": LeNet5, "resnet18": resnet18,
                           "alexnet": alexnet}[a.only]}
    for name, make in models.items():
        export(name, make, a.out)
    if not a.only:
        write(os.path.join(a.out, "sim.desc"), SIM_DESC.encode())


if __name__ == "__main__":
    main()
