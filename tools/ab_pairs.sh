#!/bin/bash
# Paired A/B of two builds of examples/bench: each round runs A and B back to back, alternating
# which goes first (ABBA: the second run of a pair is not always the same build); prints both
# medians and the median (and quartiles) of the per-round ratios B/A, which cancels most of the
# host's drift.
# usage: tools/ab_pairs.sh <experiment> <threads> <rounds> <binary A> <binary B> [extra bench args]
# (copy target/release/examples/bench aside before rebuilding, e.g. to /tmp/bench_a; a "binary"
# may be a small script adding options, e.g. `exec /tmp/bench "$@" --isa avx2`)
exp=$1; th=$2; n=$3; A=$4; B=$5; shift 5
run() { local bin=$1; shift; $bin $exp --threads $th --json "$@" 2>/dev/null | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_us"])'; }
for i in $(seq $n); do
  if [ $((i % 2)) = 1 ]; then a=$(run $A "$@"); b=$(run $B "$@"); else b=$(run $B "$@"); a=$(run $A "$@"); fi
  echo "$a $b"
done | python3 -c '
import sys,statistics as s
r=[tuple(map(float,l.split())) for l in sys.stdin]
q=sorted(b/a for a,b in r)
print(f"A med {s.median(a for a,_ in r):.1f} B med {s.median(b for _,b in r):.1f}  B/A ratios: median {s.median(q):.3f}  quartiles {q[len(q)//4]:.3f}..{q[3*len(q)//4]:.3f}  n={len(q)}")'
