#!/usr/bin/env python3
"""Projected data-parallel scaling of a training step under the alpha-beta model of a ring
all-reduce (the BENCHMARKS.md table).

    T_ring(p) = 2(p-1)·alpha + 2(p-1)/p · n · beta          (n bytes, p nodes)
    t_step(p) = t_compute + T_ring(p)                        (no overlap, as shaped does it)
    samples/s = p · b / t_step(p);  efficiency = t_compute / t_step(p)

usage: tools/dist_projection.py T_COMPUTE_MS BATCH_PER_NODE GRADIENT_BYTES [SHM_ALPHA_US SHM_BETA_NS]
(the last two: the measured shared-memory alpha and beta of examples/allreduce_bench.rs)
"""
import sys

t_c = float(sys.argv[1]) / 1e3
b = int(sys.argv[2])
n = float(sys.argv[3])
networks = [
    # name, alpha (s), beta (s/byte): assumed, typical MPI figures per link
    ("10 GbE (TCP)", 50e-6, 1 / 1.1e9),
    ("25 GbE (TCP)", 20e-6, 1 / 2.8e9),
    ("100 Gb/s InfiniBand or RoCE", 2e-6, 1 / 11.5e9),
]
if len(sys.argv) > 5:
    networks.append(("this host's shared memory (measured)", float(sys.argv[4]) * 1e-6, float(sys.argv[5]) * 1e-9))
print(f"compute per step {t_c * 1e3:.1f} ms for {b} samples per node ({b / t_c:.0f} samples/s); gradient buffer {n / 1e6:.3f} MB")
ps = (4, 16, 64)
print("| network (alpha, bandwidth per link) | " + " | ".join(f"p = {p}: all-reduce, samples/s, efficiency" for p in ps) + " |")
print("|---|" + "---|" * len(ps))
for name, alpha, beta in networks:
    cells = []
    for p in ps:
        t_ring = 2 * (p - 1) * alpha + 2 * (p - 1) / p * n * beta
        t = t_c + t_ring
        cells.append(f"{t_ring * 1e3:.2f} ms, {p * b / t:.0f}, {t_c / t * 100:.0f} %")
    print(f"| {name} ({alpha * 1e6:.1f} µs, {1 / beta / 1e9:.2f} GB/s) | " + " | ".join(cells) + " |")
