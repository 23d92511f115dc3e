#!/usr/bin/env bash
# Training throughput, tern against PyTorch, in alternation (the machine is shared and noisy):
# ROUNDS rounds of (tern, torch) on one configuration; prints each result, the medians and the
# ratio. usage: bench/compare.sh [S|M|L,H,C,T,V,B] [steps] [rounds] [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-S} steps=${2:-5} rounds=${3:-3} threads=${4:-2}
make -s build/bench/bench_train >/dev/null
peak=$(build/tern hw --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["devices"][0]; print(d["peak_dense_tops"]["fp32"]*1000)' 2>/dev/null || echo 0)
t=() p=()
for r in $(seq "$rounds"); do
  a=$(OMP_NUM_THREADS=$threads build/bench/bench_train "$cfg" "$steps" "$peak" 2>/dev/null | tail -1); echo "$a"
  t+=("$(echo "$a" | sed -E 's/.*: ([0-9.]+) tokens\/s.*/\1/')")
  b=$(python3 bench/torch_peer.py "$cfg" "$steps" "$threads" 2>/dev/null | tail -1); echo "$b"
  p+=("$(echo "$b" | sed -E 's/.*: ([0-9.]+) tokens\/s.*/\1/')")
done
python3 - "${t[*]}" "${p[*]}" <<'PY'
import statistics, sys
t = [float(x) for x in sys.argv[1].split()]; p = [float(x) for x in sys.argv[2].split()]
mt, mp = statistics.median(t), statistics.median(p)
print(f"median tokens/s: tern {mt:.1f}, torch {mp:.1f}; ratio tern/torch {mt / mp:.2f}")
PY
