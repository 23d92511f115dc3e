#!/usr/bin/env bash
# Interrupts the default model of the README (tern train --data D -o R, every option at its
# default) with SIGINT or SIGTERM at a random moment 1.1-4.9 s after it starts, as a user's
# Ctrl-C or a scheduler's SIGTERM would, and checks each time that tern exits 0 and leaves a
# checkpoint that loads (tern eval on it). Prints one line per failure and a summary.
# usage: tools/signal_trials.sh TRIALS INT|TERM [TERN]   (TERN: build/tern, or build/nompi/tern for a build without MPI)
# With MPIRUN set (e.g. MPIRUN="mpirun --oversubscribe --mca odls_base_sigkill_timeout 60 -np 2"),
# the run is started by it and the signal goes to the launcher, which passes SIGTERM to every rank
# (and SIGKILL after odls_base_sigkill_timeout seconds, 1 by default); the launcher itself exits 1
# for having been signalled, so a trial counts as clean when rank 0 reports the stop and the
# checkpoint loads.
set -u
trials=${1:-20} sig=${2:-INT} T=${3:-build/tern} MPIRUN=${MPIRUN:-}
w=$(mktemp -d) && trap 'rm -rf "$w"' EXIT
"$T" prepare --tokenizer data/gpt2 --val-fraction 0.1 -o "$w/data" data/tinyshakespeare/input.txt >/dev/null 2>&1 || { echo "prepare failed"; exit 1; }
ok=0 crashed=0 noload=0
for k in $(seq "$trials"); do
  rm -rf "$w/r"
  $MPIRUN "$T" train --data "$w/data" -o "$w/r" >"$w/log" 2>&1 & pid=$!
  sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 1.1 + 3.8 * rand() }')"
  kill "-$sig" "$pid"; wait "$pid"; rc=$?
  [ -n "$MPIRUN" ] && [ "$rc" -eq 1 ] && grep -q "^stopped on request" "$w/log" && rc=0
  if [ "$rc" -ne 0 ]; then
    crashed=$((crashed + 1)); echo "trial $k: exit $rc: $(tail -1 "$w/log")"; continue
  fi
  if "$T" eval "$w/r" --data "$w/data" --batches 1 >/dev/null 2>&1; then ok=$((ok + 1)); else noload=$((noload + 1)); echo "trial $k: latest does not load"; fi
done
echo "SIG$sig, ${MPIRUN:+$MPIRUN }$T: $trials trials: $ok exited 0 with a loadable checkpoint, $crashed exited non-zero, $noload left no loadable checkpoint"
