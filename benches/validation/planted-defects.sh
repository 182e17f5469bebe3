#!/usr/bin/env bash
# The tables of docs/validation.md ("What they catch", "No false alarms"): run in
# an empty directory with `simemu` on PATH (or SIMEMU=path/to/simemu) and a
# python3 with numpy and scipy. Reports land in suite-*/.
set -euo pipefail
S=${SIMEMU:-simemu}
HERE=$(cd "$(dirname "$0")" && pwd)
STATS=pixel-pdf,power-spectrum,minkowski,peaks,fpd,kpd,covariance,c2st,c2st-stats
$S -q --seed 1 simulate convergence --option size=64 --count 500 --out ref --force
$S -q --seed 2 simulate convergence --option size=64 --count 500 --out cand --force
$S -q --seed 1 train gaussian-field --data ref --out gf-run --force
$S -q --seed 5 generate --checkpoint gf-run --count 500 --out gf --force
$S -q --seed 6 generate --checkpoint builtin:convergence-64 --count 500 --out shipped --force
$S -q export cand --format npy --out cand.npy --force
python3 "$HERE/planted_defects.py"
for d in scaled pattern peaked; do
  $S -q import $d.npy --out $d --angle-deg 3.5 --field kappa --force
done
for d in cand scaled pattern peaked gf shipped; do
  $S -q validate --reference ref --candidate $d --stats $STATS --out suite-$d --force
done
for k in $(seq 1 10); do
  a=$((100 + 2 * k)); b=$((101 + 2 * k))
  $S -q --seed $a simulate convergence --option size=64 --count 500 --out null-$a --force
  $S -q --seed $b simulate convergence --option size=64 --count 500 --out null-$b --force
  $S -q validate --reference null-$a --candidate null-$b --stats $STATS --out suite-null-$k --force
done
