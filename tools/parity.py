#!/usr/bin/env python3
"""Parity of shaped against PyTorch: the same model, the same initial weights, the same 100 batches, in f64.

For each model (3b, 4a, 4b without dropout, and examples/lenet.rs's LeNet-5 with batch norm) it runs
`cargo run --release --example parity -- MODEL DIR` (shaped trains 100 steps and writes its initial
and final parameters in PyTorch's state_dict layout, its losses and its final scores), then builds
the equivalent torch.nn.Sequential, loads shaped's initial weights (strict), trains the same 100
batches with the same update rule (the homework's cs231n conventions, written out below), compares
the losses step by step, and loads shaped's final export into a fresh PyTorch model and compares
its predictions on 100 test images with shaped's.

Needs the PyTorch environment of ../shared/bench/setup.sh (not part of CI):
    ~/.venvs/torch-anchor/bin/python tools/parity.py [--models 3b,4a,4b,lenet] [--tol 1e-6]
Exits non-zero on a mismatch; the last line gives the largest relative difference.
"""
import argparse, gzip, json, os, struct, subprocess, sys, tempfile
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = "/usr/share/datasets/fashion-mnist"


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    dtypes = {"F64": np.float64, "F32": np.float32, "I64": np.int64}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        s, e = t["data_offsets"]
        arr = np.frombuffer(data[s:e], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def idx(name):
    for ext in (".gz", ""):
        p = os.path.join(FASHION, name + ext)
        if os.path.exists(p):
            raw = (gzip.open if ext else open)(p, "rb").read()
            ndim = raw[3]
            dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
            return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)
    sys.exit(f"Fashion-MNIST is missing under {FASHION}")


def build(model):
    seq = lambda *items: nn.Sequential(OrderedDict(items))
    if model == "3b":
        return seq(("fc1", nn.Linear(784, 64)), ("relu", nn.ReLU()), ("fc2", nn.Linear(64, 10)))
    if model == "4a":
        return seq(("conv", nn.Conv2d(1, 5, 7, bias=False)), ("relu1", nn.ReLU()), ("pool", nn.MaxPool2d(2)),
                   ("flat", nn.Flatten()), ("fc1", nn.Linear(605, 16)), ("relu2", nn.ReLU()), ("fc2", nn.Linear(16, 10)))
    if model == "4b":
        return seq(("conv", nn.Conv2d(1, 8, 7, bias=False)), ("bn1", nn.BatchNorm2d(8)), ("relu1", nn.ReLU()),
                   ("pool", nn.MaxPool2d(2)), ("flat", nn.Flatten()), ("fc1", nn.Linear(968, 16)),
                   ("bn2", nn.BatchNorm1d(16)), ("relu2", nn.ReLU()), ("fc2", nn.Linear(16, 10)))
    if model == "lenet":
        return seq(("conv1", nn.Conv2d(1, 6, 5, padding=2)), ("bn1", nn.BatchNorm2d(6)), ("relu1", nn.ReLU()),
                   ("pool1", nn.MaxPool2d(2)), ("conv2", nn.Conv2d(6, 16, 5)), ("bn2", nn.BatchNorm2d(16)),
                   ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)), ("flat", nn.Flatten()),
                   ("fc1", nn.Linear(400, 120)), ("relu3", nn.ReLU()), ("fc2", nn.Linear(120, 84)),
                   ("relu4", nn.ReLU()), ("fc3", nn.Linear(84, 10)))
    raise ValueError(model)


def regularised(net):
    """The parameters shaped's L2 applies to: the weights of Linear and Conv2d layers."""
    return {id(m.weight) for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


def step(params, state, rule, lr, reg, reg_ids, t):
    with torch.no_grad():
        for p in params:
            g = p.grad + (reg * p if id(p) in reg_ids else 0.0)
            s = state.setdefault(id(p), {})
            if rule == "sgd_momentum":
                v = s.setdefault("v", torch.zeros_like(p))
                v.mul_(0.9).sub_(lr * g)
                p.add_(v)
            elif rule == "rmsprop":
                c = s.setdefault("c", torch.zeros_like(p))
                c.mul_(0.99).add_(0.01 * g * g)
                p.sub_(lr * g / (c.sqrt() + 1e-8))
            elif rule == "adam":
                m = s.setdefault("m", torch.zeros_like(p))
                v = s.setdefault("v", torch.zeros_like(p))
                m.mul_(0.9).add_(0.1 * g)
                v.mul_(0.999).add_(0.001 * g * g)
                p.sub_(lr * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8))
            else:
                p.sub_(lr * g)


def rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def check(model, work, tol):
    subprocess.run(["cargo", "run", "--release", "-q", "--example", "parity", "--", model, work], cwd=ROOT, check=True)
    rep = json.load(open(os.path.join(work, f"{model}.json")))
    net = build(model).double()
    init = read_safetensors(os.path.join(work, f"{model}.init.safetensors"))
    net.load_state_dict(init, strict=True)
    scale = 1.0 / 255.0 if model == "lenet" else 1.0
    x_all = torch.from_numpy(idx("train-images-idx3-ubyte").astype(np.float64) * scale)
    y_all = torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
    flat = model == "3b"
    b = rep["batch"]
    params = [p for p in net.parameters()]
    reg_ids = regularised(net)
    state, worst = {}, 0.0
    net.train()
    for i, want in enumerate(rep["losses"]):
        x = x_all[i * b:(i + 1) * b]
        x = x.reshape(b, 784) if flat else x.reshape(b, 1, 28, 28)
        y = y_all[i * b:(i + 1) * b]
        for p in params:
            p.grad = None
        out = net(x)
        data_loss = nn.functional.cross_entropy(out, y)
        with torch.no_grad():  # the reported loss holds the penalty; its gradient reg·w is added in `step`
            penalty = 0.5 * rep["reg"] * sum(float((p * p).sum()) for p in params if id(p) in reg_ids)
        data_loss.backward()
        loss = data_loss.item() + penalty
        step(params, state, rep["rule"], rep["lr"], rep["reg"], reg_ids, i + 1)
        d = rel(loss, want)
        worst = max(worst, d)
        if d > tol:
            print(f"{model}: step {i + 1}: PyTorch loss {loss:.12e}, shaped {want:.12e} (relative {d:.2e})")
    # shaped's final export, loaded into a fresh PyTorch model: the same predictions.
    fresh = build(model).double()
    fresh.load_state_dict(read_safetensors(os.path.join(work, f"{model}.final.safetensors")), strict=True)
    fresh.eval()
    xt = torch.from_numpy(idx("t10k-images-idx3-ubyte")[:100].astype(np.float64) * scale)
    xt = xt.reshape(100, 784) if flat else xt.reshape(100, 1, 28, 28)
    with torch.no_grad():
        scores = fresh(xt).reshape(-1).numpy()
    theirs = np.array(rep["scores"])
    pred = float(np.max(np.abs(scores - theirs)) / max(np.max(np.abs(theirs)), 1e-300))
    same_class = bool((scores.reshape(100, 10).argmax(1) == theirs.reshape(100, 10).argmax(1)).all())
    print(f"{model}: {len(rep['losses'])} steps ({rep['rule']}, lr {rep['lr']}), largest relative loss difference "
          f"{worst:.2e}; predictions of the exported model: relative {pred:.2e}, same classes: {same_class}")
    return max(worst, pred), same_class


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="3b,4a,4b,lenet")
    ap.add_argument("--tol", type=float, default=1e-6)
    a = ap.parse_args()
    torch.set_num_threads(1)
    worst, ok = 0.0, True
    with tempfile.TemporaryDirectory() as work:
        for m in a.models.split(","):
            d, same = check(m, work, a.tol)
            worst = max(worst, d)
            ok &= same and d <= a.tol
    print(f"largest relative difference: {worst:.3e}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
