#!/usr/bin/env bash
# Runs each libFuzzer target given for SECONDS seconds, one after another on one core, over its
# seed corpus fuzz/corpus/<format> plus what earlier runs learnt (build/fuzz/corpus/<format>,
# not committed), with the dictionary fuzz/dict/<format>.dict where there is one. Crash inputs
# go to build/fuzz/crashes/<format>-*. Prints one line per target (executions, seconds, corpus
# size) and exits non-zero when any target failed.
# Usage: fuzz/run.sh SECONDS build/fuzz/fuzz_<format>...   (make fuzz FUZZ_SECONDS=N calls it)
# SECONDS 0 means no time limit; FUZZ_RUNS=N stops each target after N executions instead;
# FUZZ_SEED=N fixes libFuzzer's random seed (with FUZZ_RUNS and a fresh corpus, the same tree then
# runs the same inputs every time: CI's pass is reproducible); FUZZ_OUT=DIR keeps corpora, crashes
# and logs in DIR instead of build/fuzz.
set -u
secs="$1"; shift
out=${FUZZ_OUT:-build/fuzz} # corpora learnt, crash inputs and logs
mkdir -p "$out/crashes" "$out/logs"
# ASan and UBSan report, then abort, so that libFuzzer records the input.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export OMP_NUM_THREADS=1 # one core: the machine is shared, and a target should not depend on threads
runs=(); [ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
[ -n "${FUZZ_SEED:-}" ] && runs+=(-seed="$FUZZ_SEED")
failed=0
for bin in "$@"; do
  name=$(basename "$bin"); fmt=${name#fuzz_}
  seeds=fuzz/corpus/$fmt; work=$out/corpus/$fmt; log=$out/logs/$fmt.log
  mkdir -p "$work" "$seeds"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb also bounds any single malloc, so a
  # small file that makes a reader ask for gigabytes is reported (as out-of-memory).
  dict=(); [ -f "fuzz/dict/$fmt.dict" ] && dict=(-dict="fuzz/dict/$fmt.dict")
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" "${runs[@]}" \
    -artifact_prefix="$out/crashes/$fmt-" "$work" "$seeds" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  ncorp=$(find "$work" -type f | wc -l)
  if [ "$rc" -ne 0 ]; then
    failed=1
    echo "FAIL $fmt: exit $rc after ${execs:-?} executions; log $log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz invariant|.*runtime error)' "$log" | head -5
    grep -E '^artifact_prefix|Test unit written to' "$log" | tail -2
  else
    echo "ok   $fmt: ${execs:-?} executions in ${took:-?} s, corpus $ncorp inputs"
  fi
done
[ "$failed" -eq 0 ]
