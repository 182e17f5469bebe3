#!/usr/bin/env bash
# The embedded default: simulate training and held-out convergence maps (64², 3.5°,
# Ω_m 0.3, σ_8 0.8), fit the baseline emulators, generate, validate each against the
# held-out maps and write a leaderboard. Re-running reuses finished stages.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p simemu-cli
simemu=target/release/simemu
out=${1:-runs/default}
mkdir -p "$out"
stage() { [ -e "$out/$1" ] && echo "skip: $out/$1 exists" || "${@:2}"; }

stage train    $simemu --seed 1 simulate convergence --option size=64 --count 1000 --out "$out/train"
stage heldout  $simemu --seed 2 simulate convergence --option size=64 --count 500 --out "$out/heldout"
for g in simulator gaussian-field; do
    stage "runs/$g" $simemu --seed 3 train "$g" --data "$out/train" --out "$out/runs/$g"
    stage "gen-$g"  $simemu --seed 4 generate --checkpoint "$out/runs/$g" --count 500 --label "$g" --out "$out/gen-$g"
done
$simemu compare --reference "$out/heldout" "$out/gen-simulator" "$out/gen-gaussian-field" --out "$out/leaderboard" --force
