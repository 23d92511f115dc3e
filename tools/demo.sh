#!/usr/bin/env bash
# make demo [ARCH=gpt2|llama]: prepare the bundled corpus with GPT-2's tokenizer, train the
# default model of the family within a few minutes on this machine, evaluate it on the held-out
# tenth, and print a sample.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-build/tern}
ARCH=${2:-gpt2}
case "$ARCH" in gpt2) run=runs/demo/run ;; llama) run=runs/demo/run-llama ;; *) echo "make demo: ARCH is gpt2 or llama, not '$ARCH'" >&2; exit 2 ;; esac
data=runs/demo/data
if [ ! -f "$data/manifest.json" ]; then
  "$T" prepare --tokenizer data/gpt2 --val-fraction 0.1 -o "$data" data/tinyshakespeare/input.txt
fi
# A run the demo made earlier (it leaves a mark, $run/made-by-demo) is replaced; any other run in
# that folder is the user's, and is never deleted.
if [ -e "$run" ]; then
  if [ ! -e "$run/made-by-demo" ]; then
    echo "make demo: $run holds a run that the demo did not make; move it away (or train elsewhere) and run make demo again" >&2
    exit 1
  fi
  rm -rf "$run"
fi
mkdir -p "$run"
touch "$run/made-by-demo"
# The default model and schedule (tern train --help lists them): sized for this demo's budget,
# see README "The demo". --time-limit guards the budget on a busy machine.
"$T" train --data "$data" -o "$run" --tokenizer data/gpt2 --arch "$ARCH" --time-limit 200
"$T" eval "$run" --data "$data" --batches 8
echo "--- sample (seed 1) ---"
"$T" sample "$run" --prompt "ROMEO:" -n 120 --seed 1
