#!/usr/bin/env bash
# Compile cost of shaped as a user meets it, for one source tree (this one by default):
#   clean   CPU seconds (user+sys) of a release build of the shaped crates alone (dependencies built first)
#   check   wall seconds of `cargo check --example EX` after touching it (median of 3)
#   build   wall and CPU seconds of an incremental `cargo build --release --example EX` after
#           changing one layer width in it and back (median of 3)
# Usage: tools/compile_cost.sh [TREE] [EXAMPLE] [WIDTH-EDIT]   e.g. tools/compile_cost.sh . lenet 'Linear<400, 120>/Linear<400, 121>'
# WIDTH-EDIT is a sed `a/b` pair applied and reverted between builds (the `b` side must still compile
# for the build measurement: pick a width whose next layer is not fixed, or edit both).
set -euo pipefail
tree=${1:-.}
ex=${2:-deep20}
edit=${3:-}
cd "$tree"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
t() { /usr/bin/time -f "%e %U %S" "$@" 2>&1 >/dev/null | tail -1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
grep -m1 "model name" /proc/cpuinfo
cargo build --release --example "$ex" -q 2>/dev/null
cargo clean -q --release -p shaped -p shaped-macros
read -r w u s < <(t cargo build --release --lib -q)
echo "clean build of shaped + shaped-macros (release): ${w}s wall, $(echo "$u + $s" | bc)s CPU"
cargo check --example "$ex" -q
for i in 1 2 3; do touch "examples/$ex.rs"; t cargo check --example "$ex" -q | awk '{print $1}'; done | median | xargs printf "cargo check --example $ex after touch: %ss wall (median of 3)\n"
if [ -n "$edit" ]; then
  from=${edit%%/*}; to=${edit#*/}
  cargo build --release --example "$ex" -q
  for i in 1 2 3; do
    sed -i "s/$from/$to/" "examples/$ex.rs"; t cargo build --release --example "$ex" -q
    sed -i "s/$to/$from/" "examples/$ex.rs"; t cargo build --release --example "$ex" -q
  done > /tmp/compile_cost.$$
  awk '{print $1}' /tmp/compile_cost.$$ | median | xargs printf "incremental release build of $ex after a width edit: %ss wall (median of 6)\n"
  awk '{print $2 + $3}' /tmp/compile_cost.$$ | median | xargs printf "  and %ss CPU (median of 6)\n"
  rm -f /tmp/compile_cost.$$
fi
