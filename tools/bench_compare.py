#!/usr/bin/env python3
"""Runs shaped's bench example and the PyTorch baseline back to back for each spec model and thread
count, and prints a Markdown table of medians and their ratio (numbers for BENCHMARKS.md).

Usage: python3 tools/bench_compare.py [--models 1a,1b,...] [--threads 1,2] [--rounds N] [--torch-venv DIR]
                                     [--isa avx2]
With --rounds N, each model and thread count runs N times (PyTorch, then shaped, back to back); the
table gives the median step times and the median of the N per-round ratios, and the range of those
ratios, so that one noisy moment on a shared machine does not decide a figure.
With --isa avx2, both sides are held to AVX2 on an AVX-512 host (shaped's `--isa avx2`; PyTorch's
ATEN_CPU_CAPABILITY=avx2 and oneDNN's ONEDNN_MAX_CPU_ISA=AVX2): the same core as an AVX2-only host
would have, for the "AVX2 hosts alike" comparison when no such host is at hand.
Needs: `cargo build --release --example bench`, and the PyTorch baseline installed by
../shared/bench/setup.sh (a virtualenv under ~/.venvs/torch-anchor). Both sides run through
../shared/bench/bench_exec.sh, one after the other, so they see the same machine state.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared", "bench")
LETTER = {"1a": "a", "1b": "b", "2a": "c1", "2b": "c2", "3a": "d", "3b": "e", "4a": "f", "4b": "g", "5": "h"}
TINY = {"1a", "1b", "2a", "2b"}


def run(cmd, env=None):
    out = subprocess.run([os.path.join(SHARED, "bench_exec.sh")] + cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return out.stdout


def shaped(model, threads, isa):
    cmd = [os.path.join(ROOT, "target", "release", "examples", "bench"), model, "--threads", str(threads), "--json"]
    line = run(cmd + (["--isa", isa] if isa else []))
    return json.loads(line.strip().splitlines()[-1])["step_us"]


def torch(model, threads, venv, isa):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        cmd = [os.path.join(venv, "bin", "python"), os.path.join(SHARED, "pytorch_seed_models.py"),
               "--model", LETTER[model], "--threads", str(threads), "--epochs", "1", "--json-out", out]
        if model in TINY:
            cmd.append("--step-bench")
        elif model == "5":
            cmd += ["--limit-train", "5000"]
        else:
            cmd += ["--limit-train", "20000"]
        env = dict(os.environ, PIXEL_SCALE="1")
        if isa == "avx2":
            env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
        run(cmd, env)
        r = json.load(open(out))
        if model in TINY:
            return r["step_bench"]["step_us_median"]
        return r["train"]["step_ms_median"] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="1a,1b,2a,2b,3a,3b,4a,4b,5")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--torch-venv", default=os.path.expanduser("~/.venvs/torch-anchor"))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--isa", choices=["avx2"], help="hold both sides to this instruction set")
    a = ap.parse_args()
    print("| model | threads | batch | PyTorch step (µs) | shaped step (µs) | shaped samples/s | speed-up | ratio range |")
    print("|---|---|---|---|---|---|---|---|")
    for m in a.models.split(","):
        batch = 50 if m in TINY else 100
        for t in [int(x) for x in a.threads.split(",")]:
            pts, shs = [], []
            for _ in range(max(1, a.rounds)):
                pts.append(torch(m, t, a.torch_venv, a.isa))
                shs.append(shaped(m, t, a.isa))
            ratios = [p / s for p, s in zip(pts, shs)]
            pt, sh, r = statistics.median(pts), statistics.median(shs), statistics.median(ratios)
            print(f"| {m} | {t} | {batch} | {pt:.1f} | {sh:.1f} | {batch / sh * 1e6:,.0f} | {r:.1f}× "
                  f"| {min(ratios):.1f}–{max(ratios):.1f}× |", flush=True)

if __name__ == "__main__":
    main()
