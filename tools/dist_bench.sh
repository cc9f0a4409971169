#!/bin/bash
# Data-parallel throughput on one machine: training samples/s of 4a, 4b and the VGG (5) as one
# process with --threads 2 against `mpirun -np 2 … --distributed` with one kernel thread per rank
# (and one process with one thread, for reference),
# interleaved in the same run (each round runs both, alternating which goes first), then the
# all-reduce latency and bandwidth at the models' gradient sizes (examples/allreduce_bench.rs).
# Prints every measurement and the medians per model and mode.
# usage: tools/dist_bench.sh [rounds=5] [allreduce seconds per size=1]
# Needs the `mpi` feature's system packages (openmpi-bin libopenmpi-dev libclang-dev). The VGG runs
# on a synthetic CIFAR-format set (examples/make_cifar.rs, 5,000 training images); 4a/4b on
# Fashion-MNIST (/usr/share/datasets/fashion-mnist), one epoch each.
set -euo pipefail
rounds=${1:-5}
ar_seconds=${2:-1}
T=${CARGO_TARGET_DIR:-target}/release/examples
nice cargo build --release --features mpi --example hw1 --example allreduce_bench --example make_cifar >&2
MPIRUN=(mpirun --oversubscribe -np 2)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
cifar=$(mktemp -d)
trap 'rm -rf "$cifar"' EXIT
"$T/make_cifar" "$cifar" --per-batch 1000 >/dev/null
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs," \
  "avx512f: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no), $(mpirun --version | head -1)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
rate() { tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["train_samples_per_sec"])'; }
data_args() { if [ "$1" = 5 ]; then echo "--data $cifar --limit 5000"; fi; }
one() { "$T/hw1" "$1" --epochs 1 --threads "${2:-2}" --json --quiet $(data_args "$1") | rate; }
two() { "${MPIRUN[@]}" "$T/hw1" "$1" --epochs 1 --threads 1 --distributed --json --quiet $(data_args "$1") | rate; }
for i in $(seq "$rounds"); do
  for m in 4a 4b 5; do
    if [ $((i % 2)) = 1 ]; then a=$(one $m); b=$(two $m); c=$(one $m 1); else c=$(one $m 1); b=$(two $m); a=$(one $m); fi
    echo "round $i $m one-process-2-threads $a mpirun-np2 $b one-process-1-thread $c load $(cut -d' ' -f1 /proc/loadavg)"
  done
done | tee /dev/stderr | python3 -c '
import sys, statistics as s
r = {}
for l in sys.stdin:
    f = l.split()
    r.setdefault(f[2], []).append((float(f[4]), float(f[6]), float(f[8])))
print("| model | one process, --threads 2 | mpirun -np 2, 1 thread each | ratio np2 / threads2 (median of rounds, range) | one process, 1 thread |")
print("|---|---|---|---|---|")
for m, v in r.items():
    name = "VGG (5)" if m == "5" else m
    q = sorted(b / a for a, b, _ in v)
    print(f"| {name} | {s.median(a for a, _, _ in v):.0f} samples/s | {s.median(b for _, b, _ in v):.0f} samples/s | "
          f"{s.median(q):.2f} ({q[0]:.2f}–{q[-1]:.2f}, {len(q)} rounds) | {s.median(c for _, _, c in v):.0f} samples/s |")'
"${MPIRUN[@]}" "$T/allreduce_bench" --seconds "$ar_seconds"
