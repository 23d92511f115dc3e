#!/usr/bin/env bash
# Runs each test program, shows its output, and ends with the line "N passed, N failed".
# A program that crashes or exits non-zero without a FAIL line counts as one failure. Checks that
# this machine cannot run (a GPU backend without a GPU) print "SKIP ..." lines: they are listed and
# counted apart, never as passed.
set -u
pass=0 fail=0 skip=0
export TERN_BIN="${BUILD:-build}/tern"
export ASAN_OPTIONS="allocator_may_return_null=1:${ASAN_OPTIONS:-}"
# cairo's fonts keep fontconfig's caches for the life of the process (tests/lsan_fontconfig.supp)
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan_fontconfig.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export TERN_TEST_TMP="${TMPDIR:-/tmp}/tern-test-$$"
mkdir -p "$TERN_TEST_TMP"
for t in "$@"; do
  log="$TERN_TEST_TMP/$(basename "$t").log"
  start=$(date +%s)
  timeout 900 "$t" >"$log" 2>&1
  rc=$?
  p=$(grep -c '^PASS ' "$log")
  f=$(grep -c '^FAIL ' "$log")
  k=$(grep -c '^SKIP ' "$log")
  grep -E '^(FAIL|SKIP|  )' "$log" | head -50
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $(basename "$t"): exited with status $rc"; tail -20 "$log"; f=1
  fi
  echo "$(basename "$t"): $p passed, $f failed ($(( $(date +%s) - start ))s)"
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + k))
done
rm -rf "$TERN_TEST_TMP"
[ "$skip" -gt 0 ] && echo "$skip skipped: checks this machine cannot run (listed above as SKIP)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
