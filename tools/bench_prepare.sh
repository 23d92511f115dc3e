#!/usr/bin/env bash
# The prepare benchmark of docs/PERFORMANCE.md: a JSON Lines corpus compressed with zstd, made from
# the real texts in shared/data (tools/make_jsonl_corpus.py, about 1 GB uncompressed, in a scratch
# folder, not kept), prepared by tern on 1 and 2 threads and by the usual Python pipeline
# (tools/prepare_peer.py: zstandard + tiktoken's GPT-2 encoding on its own threads) on 1 and 2
# threads, interleaved, REPEATS times each. Each run is timed and its peak resident size taken by
# /usr/bin/time -v; the script prints every run and then the medians and ratios. Both write the
# same tokens (the script checks the counts; tern's shards and the peer's are compared token for
# token on the first repeat). Not a test. Run from the repository root after `make`.
# usage: tools/bench_prepare.sh [MEGABYTES=1000] [REPEATS=3] [DATA_DIR=../shared/data] [PYTHON=/work/venv/bin/python]
set -euo pipefail
mb=${1:-1000} reps=${2:-3} data=${3:-../shared/data} py=${4:-/work/venv/bin/python}
T=build/tern
w=$(mktemp -d) && trap 'rm -rf "$w"' EXIT
corpus="$w/corpus.jsonl.zst"
"$py" tools/make_jsonl_corpus.py "$data" "$corpus" "$mb"
text_bytes=""
run() { # NAME THREADS REP
  local name=$1 th=$2 rep=$3 out="$w/out-$1-$2" log="$w/time-$1-$2-$3"
  rm -rf "$out"
  if [ "$name" = tern ]; then
    /usr/bin/time -v "$T" prepare --tokenizer data/gpt2 --quiet --val-fraction 0 --threads "$th" -o "$out" "$corpus" >"$log.out" 2>"$log"
    tokens=$(sed -n 's/.*train: \([0-9]*\) tokens.*/\1/p' "$log.out")
  else
    /usr/bin/time -v "$py" tools/prepare_peer.py "$corpus" "$out" "$th" >"$log.out" 2>"$log"
    tokens=$(sed -n 's/.*text, \([0-9]*\) tokens.*/\1/p' "$log.out")
  fi
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
  cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { print u + s }' "$log")
  echo "$name threads=$th rep=$rep wall_s=$wall cpu_s=$cpu peak_rss_kib=$rss tokens=$tokens" | tee -a "$w/results"
  if [ "$rep" = 1 ] && [ "$name" = peer ] && [ -d "$w/out-tern-$th" ]; then
    cmp <(tail -c +1025 "$out/shard_000000.bin") <(tail -c +65 "$w/out-tern-$th/train_000000.bin") >/dev/null &&
      echo "  the first shard's tokens are identical to tern's" || echo "  TOKENS DIFFER from tern's"
  fi
}
text_bytes=$("$py" -c "
import io, json, sys, zstandard
n = 0
with open(sys.argv[1], 'rb') as f:
    for line in io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding='utf-8'):
        n += len(json.loads(line)['text'].encode('utf-8'))
print(n)" "$corpus")
echo "corpus: $(stat -c %s "$corpus") bytes compressed, $text_bytes bytes of text"
grep -m1 'model name' /proc/cpuinfo; echo "cores: $(nproc); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq "$reps"); do
  for th in 1 2; do run tern "$th" "$rep"; run peer "$th" "$rep"; done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
summary() { # RESULTS_FILE TEXT_BYTES: medians of wall time, CPU time and peak memory, and the ratios
  awk -v tb="$2" '
    { name = $1; th = $2; sub("threads=", "", th)
      for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      k = name " " th; c = ++n[k]; W[k, c] = v["wall_s"] + 0; C[k, c] = v["cpu_s"] + 0; R[k, c] = v["peak_rss_kib"] + 0; tok[k] = v["tokens"] }
    function med(A, k, m,    i, j, t, a) {
      for (i = 1; i <= m; i++) a[i] = A[k, i]
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      if (m % 2) return a[(m + 1) / 2]
      return (a[m / 2] + a[m / 2 + 1]) / 2 }
    END {
      for (th = 1; th <= 2; th++) {
        t = "tern " th; p = "peer " th
        wt = med(W, t, n[t]); wp = med(W, p, n[p]); ct = med(C, t, n[t]); cp = med(C, p, n[p]); rt = med(R, t, n[t]); rp = med(R, p, n[p])
        printf("%d thread(s), medians of %d: tern %.1f MB/s, %.0f tokens/s, %.1f MB per CPU-second, peak %.0f MiB | ", th, n[t], tb / 1e6 / wt, tok[t] / wt, tb / 1e6 / ct, rt / 1024)
        printf("peer %.1f MB/s, %.0f tokens/s, %.1f MB per CPU-second, peak %.0f MiB | ", tb / 1e6 / wp, tok[p] / wp, tb / 1e6 / cp, rp / 1024)
        printf("tern/peer: throughput %.2fx, per CPU-second %.2fx, memory %.3fx\n", wp / wt, cp / ct, rt / rp)
        if (tok[t] != tok[p]) printf("  TOKEN COUNTS DIFFER: tern %s, peer %s\n", tok[t], tok[p])
      } }' "$1"
}
summary "$w/results" "$text_bytes"
