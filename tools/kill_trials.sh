#!/usr/bin/env bash
# SIGKILL trials: runs a small training that checkpoints every step, kills it with SIGKILL at a
# random moment after it has started checkpointing, checks that ckpt/latest names a whole
# checkpoint that tern can open and that the run ledger verifies (`tern ledger verify`), and
# resumes from it in the next trial. Prints one line per trial and a summary. usage: tools/kill_trials.sh [TRIALS] [TERN]
set -u
trials=${1:-50} T=${2:-build/tern}
w=$(mktemp -d) && trap 'rm -rf "$w"' EXIT
head -c 60000 data/tinyshakespeare/input.txt > "$w/c.txt"
"$T" tokenizer train --vocab-size 320 -o "$w/tok" "$w/c.txt" >/dev/null 2>&1
"$T" prepare --tokenizer "$w/tok" --val-fraction 0.1 -o "$w/data" "$w/c.txt" >/dev/null 2>&1
flags="--tokenizer $w/tok --n-layer 2 --n-head 2 --n-embd 32 --seq 32 --batch 4 --threads 2 --steps 1000000 --ckpt-every 1 --keep 2 --eval-every 0"
ok=0 lok=0
for k in $(seq "$trials"); do
  before=$(cat "$w/r/ckpt/latest" 2>/dev/null)
  resume=""; [ -f "$w/r/config.json" ] && resume="--resume"
  "$T" train --data "$w/data" -o "$w/r" $flags $resume >/dev/null 2>&1 & pid=$!
  for i in $(seq 1200); do now=$(cat "$w/r/ckpt/latest" 2>/dev/null); [ -n "$now" ] && [ "$now" != "$before" ] && break; sleep 0.05; done
  sleep "0.$(( RANDOM % 600 ))"
  kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
  latest=$(cat "$w/r/ckpt/latest" 2>/dev/null)
  if "$T" eval "$w/r" --data "$w/data" --batches 1 >/dev/null 2>&1; then ok=$((ok + 1)); r=ok; else r=FAIL; fi
  if lv=$("$T" ledger verify "$w/r" 2>&1); then lok=$((lok + 1)); lr=ok; else lr="FAIL: $lv"; fi
  echo "trial $k: killed, latest = $latest: $r; ledger $lr"
done
echo "$ok of $trials trials left a loadable latest checkpoint"
echo "$lok of $trials trials left a ledger that verifies"
"$T" train --data "$w/data" -o "$w/r" --resume --stop-at 0 --steps $(( $(sed 's/step-0*//' "$w/r/ckpt/latest") + 2 )) >/dev/null 2>&1 && echo "final resume: ok" || echo "final resume: FAIL"
leftover=$(ls -A "$w/r/ckpt" | grep -c '^\.\(tmp\|del\)-' || true)
echo "half-written folders left after the final resume's checkpoint: $leftover"
