#!/usr/bin/env bash
# Training throughput, tern against PyTorch, in alternation (the machine is shared and noisy):
# ROUNDS rounds of (tern, torch) for each precision on one configuration; prints each result, the
# medians (tokens/s and peak RSS) and the ratios. bf16 is tern's --precision bf16 and PyTorch's
# torch.autocast("cpu", dtype=torch.bfloat16). PYTHON names the interpreter that has torch (and
# transformers, for LM).
# usage: bench/compare.sh [S|M|LM|ARCH,L,H,KV,C,T,V,B] [steps] [rounds] [threads] [fp32|bf16|fp32,bf16]
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-S} steps=${2:-5} rounds=${3:-3} threads=${4:-2} precs=${5:-fp32}
py=${PYTHON:-python3}
make -s build/bench/bench_train >/dev/null
peak=$(build/tern hw --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["devices"][0]; print(d["peak_dense_tops"]["fp32"]*1000)' 2>/dev/null || echo 0)
echo "# $(date -u +%FT%TZ) load average $(cut -d' ' -f1-3 /proc/loadavg); fp32 peak ${peak} GFLOP/s (tern hw)"
res=()
for r in $(seq "$rounds"); do
  for p in ${precs//,/ }; do
    a=$(OMP_NUM_THREADS=$threads build/bench/bench_train "$cfg" "$steps" "$peak" "$p" 2>/dev/null | tail -1); echo "$a"
    res+=("tern-$p $(echo "$a" | sed -E 's/.*: ([0-9.]+) tokens\/s.*peak RSS ([0-9]+) MiB.*/\1 \2/')")
    b=$("$py" bench/torch_peer.py "$cfg" "$steps" "$threads" "$p" 2>/dev/null | tail -1); echo "$b"
    res+=("torch-$p $(echo "$b" | sed -E 's/.*: ([0-9.]+) tokens\/s.*peak RSS ([0-9]+) MiB.*/\1 \2/')")
  done
done
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
printf '%s\n' "${res[@]}" | python3 -c '
import collections, statistics, sys
tps, rss = collections.defaultdict(list), collections.defaultdict(list)
for line in sys.stdin:
    k, t, m = line.split()
    tps[k].append(float(t)); rss[k].append(float(m))
med = {k: statistics.median(v) for k, v in tps.items()}
for k in tps:
    print(f"median {k}: {med[k]:.1f} tokens/s (of {len(tps[k])}: {min(tps[k]):.1f}-{max(tps[k]):.1f}), peak RSS {statistics.median(rss[k]):.0f} MiB")
for a, b in [("tern-fp32", "torch-fp32"), ("tern-bf16", "torch-bf16"), ("tern-bf16", "tern-fp32"), ("tern-bf16", "torch-fp32"),
             ("torch-bf16", "torch-fp32")]:
    if a in med and b in med:
        print(f"ratio {a}/{b}: {med[a] / med[b]:.2f}")
'
