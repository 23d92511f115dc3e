#!/usr/bin/env bash
# What sealing costs a training run: tinyshakespeare prepared with GPT-2's tokenizer twice (plain
# and with --key), then the same run trained on each (reading the shards, and writing a
# checkpoint every CKPT steps, sealed or not), alternately, ROUNDS times. Prints each run's wall
# time and tokens per second (from the whole command: data opening, steps and checkpoints), the
# medians, and the sealed run's cost in percent. Not a test: the figures go in docs/PERFORMANCE.md.
# Usage: bench/bench_sealed.sh [STEPS] [CKPT] [ROUNDS]   (run from the repository root after make)
set -euo pipefail
STEPS=${1:-40}
CKPT=${2:-10}
ROUNDS=${3:-3}
T=${TERN:-build/tern}
W=$(mktemp -d /tmp/tern-bench-sealed.XXXXXX)
trap 'rm -rf "$W"' EXIT
FLAGS="--n-layer 4 --n-head 4 --n-embd 128 --seq 128 --batch 8 --steps $STEPS --ckpt-every $CKPT --eval-every 0 --eval-batches 1 --keep 2"
"$T" keygen -o "$W/k.key" >/dev/null
"$T" prepare --tokenizer data/gpt2 --val-fraction 0.05 -o "$W/plain" data/tinyshakespeare/input.txt >/dev/null
"$T" prepare --tokenizer data/gpt2 --val-fraction 0.05 --key "$W/k.key" -o "$W/sealed" data/tinyshakespeare/input.txt >/dev/null
tokens=$((STEPS * 8 * 128))
run() { # $1 = plain|sealed, $2 = round
  local extra=""
  [ "$1" = sealed ] && extra="--key $W/k.key"
  local t0 t1
  t0=$(date +%s.%N)
  "$T" train --data "$W/$1" -o "$W/run-$1-$2" $FLAGS $extra >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
declare -a P S
for r in $(seq "$ROUNDS"); do
  p=$(run plain "$r"); s=$(run sealed "$r")
  P+=("$p"); S+=("$s")
  printf 'round %d: plain %.3f s (%.0f tok/s), sealed %.3f s (%.0f tok/s)\n' "$r" "$p" "$(echo "$tokens / $p" | bc -l)" "$s" \
    "$(echo "$tokens / $s" | bc -l)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
mp=$(median "${P[@]}"); ms=$(median "${S[@]}")
printf 'median: plain %.3f s (%.0f tok/s), sealed %.3f s (%.0f tok/s): sealing costs %.2f%% of throughput\n' "$mp" \
  "$(echo "$tokens / $mp" | bc -l)" "$ms" "$(echo "$tokens / $ms" | bc -l)" "$(echo "(1 - $mp / $ms) * 100" | bc -l)"
