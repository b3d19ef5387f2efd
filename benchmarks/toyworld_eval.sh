#!/usr/bin/env bash
# The paper's comparison repeated on the toy world (issue: the toy world). Writes
# benchmarks/results/toyworld_eval.json and prints the table for docs/RESULTS.md.
#
#   [OUT=FILE.json] bash benchmarks/toyworld_eval.sh [SEED] [SUBJECTS]
#
# OUT (default benchmarks/results/toyworld_eval.json) keeps an earlier recipe's report in place.
# SEED defaults to 90210, not used while developing until the fifteenth session compared finishing
# recipes on it (docs/RESULTS.md); a seed drawn afterwards, 5151, checks it, and
# benchmarks/toyworld_fresh_seed.sh checks recognition on a seed never used (60606, ten subjects).
set -euo pipefail
cd "$(dirname "$0")/.."
seed="${1:-90210}"
subjects="${2:-5}"
data="$(mktemp -d)/toyworld-seed${seed}"
out="${OUT:-benchmarks/results/toyworld_eval.json}"
.venv/bin/yollava toyworld dataset --out "$data" --seed "$seed" --subjects "$subjects"
.venv/bin/yollava eval --data "$data" --model toyworld --threads 2 --seed 0 \
  --method vanilla --method description \
  --method learned-k16 --method no-hard-negatives --method no-text-qa \
  --method learned-k0 --method learned-k2 --method learned-k4 --method learned-k8 --method learned-k32 \
  --json "$out"
.venv/bin/python benchmarks/results_table.py "$out"
