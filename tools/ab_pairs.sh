#!/bin/bash
# Paired A/B of two builds of examples/bench: each round runs A then B; prints both medians and
# the median (and quartiles) of the per-round ratios B/A, which cancels most of the host's drift.
# usage: tools/ab_pairs.sh <experiment> <threads> <rounds> <binary A> <binary B>
# (copy target/release/examples/bench aside before rebuilding, e.g. to /tmp/bench_a)
exp=$1; th=$2; n=$3; A=$4; B=$5
for i in $(seq $n); do
  a=$($A $exp --threads $th --json | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_us"])')
  b=$($B $exp --threads $th --json | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_us"])')
  echo "$a $b"
done | python3 -c '
import sys,statistics as s
r=[tuple(map(float,l.split())) for l in sys.stdin]
q=sorted(b/a for a,b in r)
print(f"A med {s.median(a for a,_ in r):.1f} B med {s.median(b for _,b in r):.1f}  B/A ratios: median {s.median(q):.3f}  quartiles {q[len(q)//4]:.3f}..{q[3*len(q)//4]:.3f}  n={len(q)}")'
