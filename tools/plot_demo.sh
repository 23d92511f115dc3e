#!/usr/bin/env bash
# Makes docs/plot-demo.png from real runs: the demo model (tern train's defaults) trained for 200
# steps on the bundled Shakespeare at two peak learning rates, val loss every 25 steps, HellaSwag
# (its first 200 tasks) scored on the checkpoints of steps 50 to 200 with `tern eval --task` and
# appended to each run's metrics.jsonl as the trainer will write it, then both runs drawn by
# `tern plot`. The runs stay in runs/plot-demo/. docs/EVALUATION.md gives the timings.
# Usage: tools/plot_demo.sh [build/tern] [docs/plot-demo.png]
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-build/tern}
out=${2:-docs/plot-demo.png}
root=runs/plot-demo
data=$root/data
if [ ! -f "$data/manifest.json" ]; then
  "$T" prepare --tokenizer data/gpt2 --val-fraction 0.1 -o "$data" data/tinyshakespeare/input.txt
fi
runs=()
for lr in 2e-3 5e-4; do
  run=$root/lr-$lr
  rm -rf "$run"
  "$T" train --data "$data" -o "$run" --tokenizer data/gpt2 --steps 200 --lr "$lr" --eval-every 25 --eval-batches 8 \
    --ckpt-every 50 --keep 4
  for step in 50 100 150 200; do
    line=$("$T" eval "$run" --step "$step" --task hellaswag --limit 200 --json)
    echo "{\"step\":$step,${line#\{}" >>"$run/metrics.jsonl"
  done
  runs+=("$run")
done
"$T" plot "${runs[@]}" -o "$out" --title "tern demo model on Shakespeare: two peak learning rates"
