#!/usr/bin/env bash
# What sealing costs a training run: tinyshakespeare prepared with a 1024-token BPE trained on it,
# twice (plain and with --key), then the same run trained on each (reading the shards, and writing a
# checkpoint every CKPT steps, sealed or not), alternately, ROUNDS times. Prints each run's wall
# and CPU time and tokens per second (from the whole command: data opening, steps and
# checkpoints), the medians, and the sealed run's cost in percent. On a shared machine the CPU
# time (user + sys of the tern process) is the steadier figure. Not a test: the figures go in docs/PERFORMANCE.md.
# Usage: bench/bench_sealed.sh [STEPS] [CKPT] [ROUNDS]   (run from the repository root after make)
set -euo pipefail
STEPS=${1:-50}
CKPT=${2:-10}
ROUNDS=${3:-5}
T=${TERN:-build/tern}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
FLAGS="--n-layer 4 --n-head 4 --n-embd 128 --seq 128 --batch 8 --steps $STEPS --ckpt-every $CKPT --eval-every 0 --eval-batches 1 --keep 2 --threads 1"
"$T" keygen -o "$W/k.key" >/dev/null
"$T" tokenizer train --vocab-size 1024 -o "$W/tok" data/tinyshakespeare/input.txt >/dev/null
"$T" prepare --tokenizer "$W/tok" --val-fraction 0.05 -o "$W/plain" data/tinyshakespeare/input.txt >/dev/null
"$T" prepare --tokenizer "$W/tok" --val-fraction 0.05 --key "$W/k.key" -o "$W/sealed" data/tinyshakespeare/input.txt >/dev/null
tokens=$((STEPS * 8 * 128))
run() { # $1 = plain|sealed, $2 = round; prints "wall cpu" in seconds (cpu = user + sys of tern)
  local extra=""
  [ "$1" = sealed ] && extra="--key $W/k.key"
  local TIMEFORMAT='%R %U %S' t
  t=$( { time "$T" train --data "$W/$1" -o "$W/run-$1-$2" $FLAGS $extra >/dev/null 2>&1; } 2>&1 )
  rm -rf "$W/run-$1-$2"
  echo "$t" | awk '{printf "%.3f %.3f\n", $1, $2 + $3}'
}
declare -a PW PC SW SC
for r in $(seq "$ROUNDS"); do
  read -r pw pc < <(run plain "$r")
  read -r sw sc < <(run sealed "$r")
  PW+=("$pw"); PC+=("$pc"); SW+=("$sw"); SC+=("$sc")
  printf 'round %d: plain %.3f s wall, %.3f s cpu; sealed %.3f s wall, %.3f s cpu\n' "$r" "$pw" "$pc" "$sw" "$sc"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
for kind in wall cpu; do
  if [ $kind = wall ]; then mp=$(median "${PW[@]}"); ms=$(median "${SW[@]}"); else mp=$(median "${PC[@]}"); ms=$(median "${SC[@]}"); fi
  printf 'median %s: plain %.3f s (%.0f tok/s), sealed %.3f s (%.0f tok/s): sealing costs %.2f%% of throughput\n' "$kind" "$mp" \
    "$(echo "$tokens / $mp" | bc -l)" "$ms" "$(echo "$tokens / $ms" | bc -l)" "$(echo "(1 - $mp / $ms) * 100" | bc -l)"
done
