#!/usr/bin/env bash
# Data-parallel scaling of tern train on this machine: one rank of one thread with the global
# batch, against 2 ranks of one thread (mpirun) with half of it each, for --zero 0/1 and
# --overlap 1/0. The model is the demo's (4 layers, width 128, GPT-2's 50257-token vocabulary:
# 7.3M parameters, so each step reduces 29 MB of gradients) on tinyshakespeare. Runs are
# interleaved and repeated, and step times are read from metrics.jsonl (the first 3 steps of each
# run are left out), so that load from other processes shows up as spread, not as a bias.
# usage: bench/bench_dist.sh [tern] [steps per run] [repeats]      (from the repository root)
# docs/PERFORMANCE.md "Distributed scaling" keeps its figures.
set -euo pipefail
tern=$(realpath "${1:-build/tern}")
steps=${2:-25}
reps=${3:-3}
B=${BATCH:-16} # global rows of 128 tokens per step
tmp=$(mktemp -d /tmp/tern-bench-dist.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp "$tern" "$tmp/tern" # a rebuild while the benchmark runs does not change what it measures
tern="$tmp/tern"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$tern" prepare --tokenizer data/gpt2 --val-fraction 0.05 -o "$tmp/data" data/tinyshakespeare/input.txt >/dev/null 2>&1
flags="--data $tmp/data --n-layer 4 --n-head 4 --n-embd 128 --seq 128 --steps $steps --warmup 5 --eval-every 0 \
--ckpt-every 0 --eval-batches 1 --threads 1"
tokens=$((B * 128))

# step times (ms) of one run, from tokens_per_s (global tokens per step / rate), first 3 left out
times() { sed -n 's/.*"tokens_per_s":\([0-9.]*\).*/\1/p' "$1/metrics.jsonl" | tail -n +4 | awk -v t=$tokens '{ printf "%.3f\n", t / $1 * 1000 }'; }

configs=("1 rank" "2 ranks, --zero 0" "2 ranks, --zero 0 --overlap 0" "2 ranks, --zero 1" "2 ranks, --zero 1 --overlap 0")
# NICE=-10 (as root) runs everything at a higher priority than the machine's other work
nice=(nice -n "${NICE:-0}")
run() { # config index, output folder
  case $1 in
  0) "${nice[@]}" "$tern" train $flags --batch $B -o "$2" ;;
  1) "${nice[@]}" mpirun -np 2 "$tern" train $flags --batch $((B / 2)) --zero 0 -o "$2" ;;
  2) "${nice[@]}" mpirun -np 2 "$tern" train $flags --batch $((B / 2)) --zero 0 --overlap 0 -o "$2" ;;
  3) "${nice[@]}" mpirun -np 2 "$tern" train $flags --batch $((B / 2)) --zero 1 -o "$2" ;;
  4) "${nice[@]}" mpirun -np 2 "$tern" train $flags --batch $((B / 2)) --zero 1 --overlap 0 -o "$2" ;;
  esac >/dev/null 2>&1
}
echo "bench_dist: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start, nice ${NICE:-0}; global batch $B x 128 tokens,"
echo "  $steps steps per run, $reps repeats interleaved, $(mpirun --version | head -1)"
for r in $(seq "$reps"); do
  for c in "${!configs[@]}"; do
    run "$c" "$tmp/run-$c-$r"
    times "$tmp/run-$c-$r" >>"$tmp/times-$c"
  done
done
echo "  load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
# median and fastest step; speed-up and efficiency (speed-up / ranks) against 1 rank
stat() { sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%s %s %d\n", a[int((NR + 1) / 2)], a[1], NR }'; }
read -r m0 f0 n0 < <(stat "$tmp/times-0")
printf "  %-32s %12s %12s %10s %12s\n" "configuration" "median ms" "fastest ms" "steps" "efficiency"
for c in "${!configs[@]}"; do
  read -r m f n < <(stat "$tmp/times-$c")
  eff=$(awk -v a="$m0" -v b="$m" -v fa="$f0" -v fb="$f" -v w=$([ "$c" = 0 ] && echo 1 || echo 2) \
    'BEGIN { printf "%.1f%% (%.1f%%)", 100 * a / b / w, 100 * fa / fb / w }')
  printf "  %-32s %12s %12s %10s %12s\n" "${configs[$c]}" "$m" "$f" "$n" "$eff"
done
echo "  efficiency: (1-rank step time / 2-rank step time) / 2, from medians (from fastest steps)"
