#!/usr/bin/env bash
# Training speed of a debug build against a release build of the same user program
# (examples/lenet.rs as a user's own crate, depending on shaped with the setting the README
# recommends: `[profile.dev.package.shaped]` with opt-level 3 and no debug assertions). Prints both
# rates and their ratio; run on a quiet machine (each side once per round, three rounds).
# Usage: tools/debug_speed.sh [EPOCHS]   (needs Fashion-MNIST: apt-get install dataset-fashion-mnist)
set -euo pipefail
epochs=${1:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/src"
cp "$root/examples/lenet.rs" "$dir/src/main.rs"
cat > "$dir/Cargo.toml" <<TOML
[package]
name = "lenet-user"
version = "0.1.0"
edition = "2024"

[dependencies]
shaped = { path = "$root" }
rand = { version = "0.9", default-features = false, features = ["std", "std_rng"] }

[profile.dev.package.shaped]
opt-level = 3
debug-assertions = false
overflow-checks = false
TOML
export CARGO_TARGET_DIR="$dir/target"
grep -m1 "model name" /proc/cpuinfo
rate() { grep -o '[0-9]* training samples/s' | awk '{print $1}'; }
(cd "$dir" && cargo build -q --release && cargo build -q)
for round in 1 2 3; do
  rel=$("$CARGO_TARGET_DIR/release/lenet-user" "$epochs" 2>/dev/null | rate)
  dbg=$("$CARGO_TARGET_DIR/debug/lenet-user" "$epochs" 2>/dev/null | rate)
  echo "round $round: release $rel samples/s, debug (shaped optimised) $dbg samples/s, ratio $(echo "scale=2; $dbg / $rel" | bc)"
done
