#!/usr/bin/env bash
# Data-parallel scaling of tern train on this machine: one rank of one thread with the global
# batch, against 2 ranks of one thread (mpirun) with half of it each, for --zero 0/1 and
# --overlap 1/0, and against two separate processes of half the batch that do not communicate
# (what the two cores give at best). The model is the demo's (4 layers, width 128, GPT-2's
# 50257-token vocabulary: 7.2M parameters, so each step reduces 29 MB of gradients). Runs are
# interleaved and repeated, and step times are read from metrics.jsonl (the first 3 steps of each
# run are left out), so that load from other processes shows up as spread, not as a bias.
# usage: [NICE=-19] [BATCH=16] bench/bench_dist.sh [tern] [steps per run] [repeats]   (repository root)
# docs/PERFORMANCE.md "Distributed scaling" keeps its figures.
set -euo pipefail
tern=$(realpath "${1:-build/tern}")
steps=${2:-25}
reps=${3:-3}
B=${BATCH:-16} # global rows of 128 tokens per step
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$tern" "$tmp/tern" # a rebuild while the benchmark runs does not change what it measures
tern="$tmp/tern"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$tern" prepare --tokenizer data/gpt2 --val-fraction 0.05 -o "$tmp/data" data/tinyshakespeare/input.txt >/dev/null 2>&1
flags="--data $tmp/data --n-layer 4 --n-head 4 --n-embd 128 --seq 128 --steps $steps --warmup 5 --eval-every 0 \
--ckpt-every 0 --eval-batches 1 --threads 1"
tokens=$((B * 128))

# step times (ms) of one run, from tokens_per_s (tokens per step / rate), first 3 left out
times() { sed -n 's/.*"tokens_per_s":\([0-9.]*\).*/\1/p' "$1/metrics.jsonl" | tail -n +4 | awk -v t="$2" '{ printf "%.3f\n", t / $1 * 1000 }'; }

# "2 processes, no MPI": two separate single-process runs of half the batch at once, one per
# core: the same compute as 2 ranks without any communication, i.e. what this machine's two cores
# can give at best.
configs=("1 rank" "2 processes, no MPI" "2 ranks, --zero 0" "2 ranks, --zero 0 --overlap 0" "2 ranks, --zero 1"
  "2 ranks, --zero 1 --overlap 0")
# NICE=-19 (as root) runs everything at a higher priority than the machine's other work
nice=(nice -n "${NICE:-0}")
run() { # config index, output folder
  case $1 in
  0) "${nice[@]}" "$tern" train $flags --batch $B -o "$2" ;;
  1) "${nice[@]}" taskset -c 0 "$tern" train $flags --batch $((B / 2)) -o "$2/a" &
     "${nice[@]}" taskset -c 1 "$tern" train $flags --batch $((B / 2)) -o "$2/b"; wait ;;
  2) "${nice[@]}" mpirun -np 2 "$tern" train $flags --batch $((B / 2)) --zero 0 -o "$2" ;;
  3) "${nice[@]}" mpirun -np 2 "$tern" train $flags --batch $((B / 2)) --zero 0 --overlap 0 -o "$2" ;;
  4) "${nice[@]}" mpirun -np 2 "$tern" train $flags --batch $((B / 2)) --zero 1 -o "$2" ;;
  5) "${nice[@]}" mpirun -np 2 "$tern" train $flags --batch $((B / 2)) --zero 1 --overlap 0 -o "$2" ;;
  esac >/dev/null 2>&1
}
echo "bench_dist: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start, nice ${NICE:-0}; global batch $B x 128 tokens,"
echo "  $steps steps per run, $reps repeats interleaved, $(mpirun --version | head -1)"
for r in $(seq "$reps"); do
  for c in "${!configs[@]}"; do
    run "$c" "$tmp/run-$c-$r"
    if [ "$c" = 1 ]; then
      times "$tmp/run-$c-$r/a" $((tokens / 2)) >>"$tmp/times-$c"
      times "$tmp/run-$c-$r/b" $((tokens / 2)) >>"$tmp/times-$c"
    else
      times "$tmp/run-$c-$r" $tokens >>"$tmp/times-$c"
    fi
  done
done
echo "  load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
# median and fastest step; efficiency (1-rank time / 2-rank time / 2) and, against the two
# processes that do not communicate, what the data parallelism itself costs
stat() { sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%s %s %d\n", a[int((NR + 1) / 2)], a[1], NR }'; }
read -r m0 f0 n0 < <(stat "$tmp/times-0")
read -r m1 f1 n1 < <(stat "$tmp/times-1")
printf "  %-32s %10s %11s %6s %18s %22s\n" "configuration" "median ms" "fastest ms" "steps" "efficiency" "vs 2 processes, no MPI"
for c in "${!configs[@]}"; do
  read -r m f n < <(stat "$tmp/times-$c")
  w=$([ "$c" = 0 ] && echo 1 || echo 2)
  eff=$(awk -v a="$m0" -v b="$m" -v fa="$f0" -v fb="$f" -v w=$w 'BEGIN { printf "%.1f%% (%.1f%%)", 100 * a / b / w, 100 * fa / fb / w }')
  rel=$(awk -v a="$m1" -v b="$m" -v fa="$f1" -v fb="$f" 'BEGIN { printf "%.1f%% (%.1f%%)", 100 * a / b, 100 * fa / fb }')
  [ "$c" = 0 ] && rel="-"
  printf "  %-32s %10s %11s %6s %18s %22s\n" "${configs[$c]}" "$m" "$f" "$n" "$eff" "$rel"
done
echo "  efficiency: (1-rank step time / 2-rank step time) / 2; vs 2 processes: their step time / this one's;"
echo "  from medians (from fastest steps)"
