#!/usr/bin/env bash
# A/B of two bench_train binaries (a change against its parent), alternating on one
# configuration so that the machine's load falls on both alike: ROUNDS rounds of (A, B), then
# the median tokens/s of each and B/A. Build the binaries first, e.g. `make build/bench/bench_train
# && cp build/bench/bench_train /tmp/bt_a`, then the change, `cp ... /tmp/bt_b`.
# usage: bench/ab_train.sh BIN_A BIN_B [S|M|LM|ARCH,L,H,KV,C,T,V,B] [steps] [rounds] [threads] [flags...]
set -euo pipefail
a=$1 b=$2 cfg=${3:-S} steps=${4:-3} rounds=${5:-5} threads=${6:-2}
shift $(( $# < 6 ? $# : 6 ))
echo "# $(date -u +%FT%TZ) load average $(cut -d' ' -f1-3 /proc/loadavg)"
ta=() tb=()
for r in $(seq "$rounds"); do
  for x in a b; do
    bin=$a; [ $x = b ] && bin=$b
    line=$(OMP_NUM_THREADS=$threads "$bin" "$cfg" "$steps" 0 "$@" 2>/dev/null | tail -1)
    t=$(echo "$line" | sed -E 's/.*: ([0-9.]+) tokens\/s.*/\1/')
    echo "$x $t"
    if [ $x = a ]; then ta+=("$t"); else tb+=("$t"); fi
  done
done
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
python3 - "${ta[*]}" "${tb[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median tokens/s: A {ma:.1f} ({min(a):.1f}-{max(a):.1f}), B {mb:.1f} ({min(b):.1f}-{max(b):.1f}); B/A {mb / ma:.3f}")
PY
