#!/bin/bash
# One-to-two-thread scaling of a training step, paired: each round runs examples/bench at one and
# at two threads back to back (alternating which goes first) and, when /tmp/peak_fma exists
# (gcc -O2 -mavx2 -mfma -fopenmp tools/peak_fma.c -o /tmp/peak_fma), the FMA peak's own scaling at
# that moment, and when /tmp/xcore_probe exists (see tools/xcore_probe.c), the time of a 40 KB
# hand-over between the cores. Prints the medians of the per-round ratios t(1)/t(2) (and their
# quartiles), which cancel most of the host's drift between rounds, and the same medians over the
# rounds whose hand-over took under 2 µs (the host's fast state; in its slow state two-thread
# steps lose much more than the FMA peak shows). (The peak's last two lines: AVX-512 where the
# host has it, else AVX2.)
# usage: tools/scaling.sh <experiment> <rounds> [binary] [extra bench arguments, e.g. --steps 300]
exp=$1; n=$2; shift 2; B=target/release/examples/bench
if [ $# -gt 0 ]; then B=$1; shift; fi
step() { t=$1; shift; $B $exp --threads $t --json "$@" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_us"])'; }
for i in $(seq $n); do
  if [ $((i % 2)) = 1 ]; then a=$(step 1 "$@"); b=$(step 2 "$@"); else b=$(step 2 "$@"); a=$(step 1 "$@"); fi
  p="nan nan"; x=nan
  [ -x /tmp/peak_fma ] && p=$(/tmp/peak_fma | grep -o "[0-9.]* GFLOP/s in all" | tail -2 | cut -d' ' -f1 | paste -sd' ')
  [ -x /tmp/xcore_probe ] && x=$(/tmp/xcore_probe | cut -d' ' -f1)
  echo "$a $b $p $x"
done | python3 -c '
import sys,statistics as s
r=[tuple(map(float,l.split())) for l in sys.stdin]
def quart(v):
    v=sorted(v)
    return f"{s.median(v):.2f} ({v[len(v)//4]:.2f}..{v[3*len(v)//4]:.2f})" if v else "none"
q=[a/b for a,b,*_ in r]; f=[y/x for _,_,x,y,_ in r]
fast=[a/b for a,b,_,_,x in r if x < 2.0]
print(f"'$exp': 1 thread {s.median(a for a,*_ in r):.0f} us, 2 threads {s.median(b for _,b,*_ in r):.0f} us; "
      f"scaling, median of {len(q)} paired rounds (quartiles): {quart(q)}; FMA peak scaling: {quart(f)}; "
      f"hand-over {quart([x for *_,x in r])} us; scaling in the {len(fast)} rounds under 2 us: {quart(fast)}")'
