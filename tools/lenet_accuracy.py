#!/usr/bin/env python3
"""examples/lenet.rs's test accuracy on Fashion-MNIST against PyTorch's for the same model and settings.

Both sides: LeNet-5 with batch norm after each convolution (conv 1→6 5×5 pad 2, BN, ReLU, max-pool 2,
conv 6→16 5×5, BN, ReLU, max-pool 2, fc 400→120→84→10 with ReLUs), He-normal weights (fan in, zero
biases, BN γ=1 β=0), pixels in [0, 1], the last 1/10 of the training set held out for validation,
Adam (lr 1e-3, β 0.9/0.999, ε 1e-8), batch 64 with a fresh shuffle per epoch, the best validation
epoch's parameters restored, then the test accuracy. The initialisations and shuffles are each
side's own (seeded), so the two runs are two draws of the same recipe; `--seeds` runs several of
PyTorch's.

Needs the PyTorch environment of ../shared/bench/setup.sh (not part of CI):
    ~/.venvs/torch-anchor/bin/python tools/lenet_accuracy.py [--epochs 3] [--seeds 0,1]
Prints both accuracies and the difference in points; exits non-zero if it exceeds --tol (0.5).
"""
import argparse, copy, os, re, subprocess, sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity import ROOT, build, idx  # noqa: E402  (the same LeNet definition and IDX reader)


def torch_run(epochs, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    torch.set_num_threads(2)
    x = torch.from_numpy(idx("train-images-idx3-ubyte").astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
    xt = torch.from_numpy(idx("t10k-images-idx3-ubyte").astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    yt = torch.from_numpy(idx("t10k-labels-idx1-ubyte").astype(np.int64))
    n_val = len(x) // 10
    xv, yv, x, y = x[-n_val:], y[-n_val:], x[:-n_val], y[:-n_val]
    net = build("lenet")
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()

    def acc(xs, ys):
        net.eval()
        with torch.no_grad():
            right = sum(int((net(xs[i:i + 1000]).argmax(1) == ys[i:i + 1000]).sum()) for i in range(0, len(xs), 1000))
        return right / len(xs)

    best, best_state = -1.0, None
    for epoch in range(epochs):
        net.train()
        order = torch.from_numpy(rng.permutation(len(x)))
        for i in range(0, len(x), 64):
            b = order[i:i + 64]
            opt.zero_grad()
            loss_fn(net(x[b]), y[b]).backward()
            opt.step()
        v = acc(xv, yv)
        print(f"  PyTorch seed {seed} epoch {epoch + 1}: val {v:.4f}", flush=True)
        if v > best:
            best, best_state = v, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return acc(xt, yt)


def shaped_run(epochs):
    out = subprocess.run(["cargo", "run", "--release", "-q", "--example", "lenet", "--", str(epochs)], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    m = re.search(r"test (\d\.\d+)", out)
    if not m:
        sys.exit(f"no test accuracy in lenet's output:\n{out}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--tol", type=float, default=0.5, help="largest allowed difference, in points")
    a = ap.parse_args()
    s = shaped_run(a.epochs)
    print(f"shaped (examples/lenet.rs, {a.epochs} epochs): test accuracy {100 * s:.2f} %", flush=True)
    ts = [torch_run(a.epochs, int(seed)) for seed in a.seeds.split(",")]
    for seed, t in zip(a.seeds.split(","), ts):
        print(f"PyTorch {torch.__version__} (seed {seed}): test accuracy {100 * t:.2f} %")
    mean = sum(ts) / len(ts)
    diff = 100 * (s - mean)
    print(f"difference shaped − PyTorch (mean of {len(ts)}): {diff:+.2f} points (goal: within {a.tol})")
    sys.exit(0 if abs(diff) <= a.tol else 1)


if __name__ == "__main__":
    main()
