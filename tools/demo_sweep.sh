#!/usr/bin/env bash
# The demo sweep: candidate default models, each trained under make demo's 200 s guard on the
# demo data (make demo prepares it), then scored on 8 val batches. Results in README, "The demo".
# usage: tools/demo_sweep.sh  (writes its runs under /tmp/sweep)
cd "$(dirname "$0")/.." && mkdir -p /tmp/sweep
T=build/tern
data=runs/demo/data
for cfg in "A --n-layer 4 --n-embd 128 --seq 128 --batch 16 --lr 2e-3 --steps 150" \
           "B --n-layer 2 --n-embd 128 --seq 128 --batch 16 --lr 3e-3 --steps 150" \
           "C --n-layer 4 --n-embd 128 --seq 64 --batch 16 --lr 2e-3 --steps 300" \
           "D --n-layer 4 --n-embd 96 --seq 128 --batch 8 --lr 3e-3 --steps 300"; do
  name=${cfg%% *}; flags=${cfg#* }
  rm -rf /tmp/sweep/$name
  start=$(date +%s)
  $T train --data $data -o /tmp/sweep/$name --tokenizer data/gpt2 --n-head 4 --warmup 10 $flags --eval-every 0 --time-limit 200 > /tmp/sweep/$name.log 2>&1
  steps=$(grep -c '"loss"' /tmp/sweep/$name/metrics.jsonl)
  ev=$($T eval /tmp/sweep/$name --data $data --batches 8 2>&1 | sed -E 's/.*: loss ([0-9.]+).*/\1/')
  echo "$name ($flags): $steps steps in $(( $(date +%s) - start )) s, val loss $ev"
done
