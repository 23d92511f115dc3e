#!/usr/bin/env bash
# Does bf16 train like fp32? The same run twice, --precision fp32 and --precision bf16: S's shape
# (6 layers, 6 heads, width 384, context 256, 16 rows a step) on tinyshakespeare with GPT-2's
# tokenizer, the same seed and so the same batches. Prints both loss curves in windows of WINDOW
# steps, each bf16 window's relative difference from fp32's, the val losses, and whether bf16 stays
# within 1% of fp32 over the whole curve. Not a test: it takes about an hour on 2 cores.
# usage: bench/bf16_curve.sh [steps (500)] [folder (/tmp/tern-bf16-curve)] [window (25)] [extra tern train options...]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-500} dir=${2:-/tmp/tern-bf16-curve} window=${3:-25}
shift $(( $# < 3 ? $# : 3 ))
make -s build/tern
rm -rf "$dir" && mkdir -p "$dir"
echo "# $(date -u +%FT%TZ) load average $(cut -d' ' -f1-3 /proc/loadavg); $(build/tern hw | grep 'tern kernels' | sed 's/^ *//')"
build/tern prepare --tokenizer data/gpt2 --val-fraction 0.1 -o "$dir/data" data/tinyshakespeare/input.txt >/dev/null
for p in fp32 bf16; do
  start=$(date +%s)
  build/tern train --data "$dir/data" -o "$dir/$p" --tokenizer data/gpt2 --n-layer 6 --n-head 6 --n-embd 384 --seq 256 --batch 16 \
    --steps "$steps" --eval-every 100 --ckpt-every 0 --precision "$p" "$@" 2>&1 | grep -E "^training|val" | head -3
  echo "# $p: $(( $(date +%s) - start )) s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
python3 - "$dir" "$window" <<'PY'
import json, statistics, sys
d, w = sys.argv[1], int(sys.argv[2])
def read(p):
    loss, val, tps = {}, {}, []
    for line in open(f"{d}/{p}/metrics.jsonl"):
        j = json.loads(line)
        if "val_loss" in j: val[j["step"]] = j["val_loss"]
        elif "loss" in j: loss[j["step"]] = j["loss"]; tps.append(j.get("tokens_per_s", 0))
    return loss, val, tps
(a, va, ta), (b, vb, tb) = read("fp32"), read("bf16")
steps = sorted(set(a) & set(b))
worst, rows = 0.0, []
for s0 in range(0, len(steps), w):
    win = steps[s0:s0 + w]
    ma, mb = statistics.mean(a[s] for s in win), statistics.mean(b[s] for s in win)
    rel = (mb - ma) / ma
    worst = max(worst, abs(rel))
    rows.append(f"steps {win[0]:4d}-{win[-1]:4d}: fp32 {ma:.4f}  bf16 {mb:.4f}  {100 * rel:+.2f}%")
print("\n".join(rows))
step_worst = max(abs(b[s] - a[s]) / a[s] for s in steps)
print(f"per step: largest relative difference {100 * step_worst:.2f}% (single steps: the two runs' noise)")
for s in sorted(set(va) & set(vb)):
    print(f"val loss at step {s}: fp32 {va[s]:.4f}, bf16 {vb[s]:.4f} ({100 * (vb[s] - va[s]) / va[s]:+.2f}%)")
print(f"median tokens/s: fp32 {statistics.median(ta):.0f}, bf16 {statistics.median(tb):.0f} ({statistics.median(tb) / statistics.median(ta):.2f}x)")
print(f"bf16 within 1% of fp32 in every window of {w} steps: {'yes' if worst <= 0.01 else 'no'} (largest {100 * worst:.2f}%)")
PY
