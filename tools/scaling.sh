#!/bin/bash
# One-to-two-thread scaling of a training step, paired: each round runs examples/bench at one and
# at two threads back to back (alternating which goes first) and, when /tmp/peak_fma exists
# (gcc -O2 -mavx2 -mfma -fopenmp tools/peak_fma.c -o /tmp/peak_fma), the FMA peak's own scaling at
# that moment. Prints the medians of the per-round ratios t(1)/t(2) (and their quartiles), which
# cancel most of the host's drift between rounds. (The peak's last two lines: AVX-512 where the
# host has it, else AVX2.)
# usage: tools/scaling.sh <experiment> <rounds> [binary] [extra bench arguments, e.g. --steps 300]
exp=$1; n=$2; shift 2; B=target/release/examples/bench
if [ $# -gt 0 ]; then B=$1; shift; fi
step() { t=$1; shift; $B $exp --threads $t --json "$@" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_us"])'; }
for i in $(seq $n); do
  if [ $((i % 2)) = 1 ]; then a=$(step 1 "$@"); b=$(step 2 "$@"); else b=$(step 2 "$@"); a=$(step 1 "$@"); fi
  p="nan nan"
  [ -x /tmp/peak_fma ] && p=$(/tmp/peak_fma | grep -o "[0-9.]* GFLOP/s in all" | tail -2 | cut -d' ' -f1 | paste -sd' ')
  echo "$a $b $p"
done | python3 -c '
import sys,statistics as s
r=[tuple(map(float,l.split())) for l in sys.stdin]
q=sorted(a/b for a,b,_,_ in r); f=sorted(y/x for _,_,x,y in r)
def quart(v): return f"{s.median(v):.2f} ({v[len(v)//4]:.2f}..{v[3*len(v)//4]:.2f})"
print(f"'$exp': 1 thread {s.median(a for a,*_ in r):.0f} us, 2 threads {s.median(b for _,b,*_ in r):.0f} us; "
      f"scaling, median of {len(q)} paired rounds (quartiles): {quart(q)}; FMA peak scaling: {quart(f)}")'
