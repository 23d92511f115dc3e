#!/usr/bin/env bash
# The CUDA backend's checks on a machine with an NVIDIA GPU (an H100 or H200; docs/GPU.md), in one
# run of about 6 minutes that ends with a table:
#   1. build tern there with CUDA=1 MPI=0 for this GPU's architecture, against the Debian packages
#      that tools/gpu_debs.sh downloaded into build/gpu-debs (unpacked with dpkg -x, not installed);
#   2. tests/test_backend_ops (every kernel of "cuda" against ref in fp32, outputs NaN-poisoned) and
#      tests/test_cuda (attention at model sizes, bf16 within 1e-2, bit-identical repeats, failures
#      named at synchronisation, whole steps against the CPU);
#   3. for GPT-2 and a Llama (grouped-query) model: 20 fp32 steps from the same initial weights on
#      cuda and on cpu (losses within 1e-4), a run stopped at step 10 and resumed on the GPU
#      (losses and checkpoint bit-identical), a GPU checkpoint resumed on the CPU and a CPU one on
#      the GPU (losses within 1e-4 of the unbroken runs);
#   4. throughput, MFU (of 989 TFLOP/s, dense bf16) and peak device memory of GPT-2 small and the
#      Llama of its size (T 1024, batch 16) in bf16: tern, then PyTorch eager and torch.compile.
# Logs go to $OUT (the device tool's folder) or build/gpu-check. Needs nvidia-smi, nvcc, gcc,
# python3 with torch; everything else comes with the working tree.
# With the device tool: run(command="bash tools/gpu_check.sh", carry=["build/gpu-debs"], timeout_s=540).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
BUDGET=${GPU_CHECK_SECONDS:-480}
LOG=${OUT:-build/gpu-check}
mkdir -p "$LOG"
ROWS=()
FAILS=0

elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET - $(elapsed))); }
# row NAME RESULT DETAIL: one line of the closing table (FAIL counts).
row() {
  ROWS+=("$(printf '%-46s %-5s %s' "$1" "$2" "$3")")
  [ "$2" = FAIL ] && FAILS=$((FAILS + 1))
  echo "== $1: $2 $3 ($(elapsed)s)"
}
table() {
  echo
  echo "=== tools/gpu_check.sh on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $(elapsed)s ==="
  printf '%-46s %-5s %s\n' check result detail
  for r in "${ROWS[@]}"; do echo "$r"; done
  echo "$FAILS failed"
}

# ---- 0. the machine ----
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader | tee "$LOG/gpu.txt"
CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')
CC=${CC:-90}
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$NVCC")")}
"$NVCC" --version | tail -1
gcc --version | head -1
python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)' 2>&1 | tail -1

# ---- 1. build ----
root=$PWD/build/gpu-root
if ls build/gpu-debs/*.deb >/dev/null 2>&1; then
  mkdir -p "$root"
  for d in build/gpu-debs/*.deb; do dpkg -x "$d" "$root"; done
  lib=$root/usr/lib/x86_64-linux-gnu
  export CPATH="$root/usr/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  command -v make >/dev/null || export PATH="$PATH:$root/usr/bin"
else
  echo "no build/gpu-debs: run tools/gpu_debs.sh where a registry is, and carry build/gpu-debs"
fi
mkdir -p build && touch build/.deps-ok # the packages are in place: the Makefile must not call apt
B=build/cuda/nompi
t0=$(date +%s)
if make -j"$(nproc)" CUDA=1 MPI=0 CUDA_GENCODE="-gencode arch=compute_$CC,code=sm_$CC" \
  $B/tern $B/tests/test_backend_ops $B/tests/test_cuda $B/bench/bench_gpu >"$LOG/build.log" 2>&1; then
  row "build (make CUDA=1 MPI=0, sm_$CC)" PASS "$(($(date +%s) - t0))s"
else
  tail -40 "$LOG/build.log"
  row "build (make CUDA=1 MPI=0, sm_$CC)" FAIL "see build.log"
  table
  exit 1
fi
TERN=$PWD/$B/tern

# ---- 2. the tests ----
export TERN_TEST_TMP=$PWD/build/gpu-check-tmp TERN_BIN=$TERN
mkdir -p "$TERN_TEST_TMP"
for t in test_backend_ops test_cuda; do
  timeout 300 "$B/tests/$t" >"$LOG/$t.log" 2>&1
  rc=$?
  grep -E "cuda|FAIL|SKIP" "$LOG/$t.log" | head -60
  f=$(grep -c '^FAIL' "$LOG/$t.log")
  p=$(grep -c '^PASS' "$LOG/$t.log")
  s=$(grep -c '^SKIP.*cuda' "$LOG/$t.log") # CPU sets this CPU lacks may be skipped; the GPU may not
  if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then
    row "$t" PASS "$p tests"
  else
    row "$t" FAIL "exit $rc, $f failed, $s skipped: see $t.log"
  fi
done

# ---- 3. steps, resume and checkpoints across devices, through tern train ----
D=build/gpu-check-data
R=build/gpu-check-runs
rm -rf "$R" && mkdir -p "$R"
[ -f "$D/manifest.json" ] || "$TERN" prepare --tokenizer data/gpt2 --val-fraction 0.1 -o "$D" data/tinyshakespeare/input.txt >"$LOG/prepare.log" 2>&1
COMMON=(--data "$D" --n-layer 2 --n-head 4 --n-embd 128 --seq 64 --batch 8 --steps 20 --warmup 5 --eval-every 0 --eval-batches 2
  --ckpt-every 10 --keep 5 --seed 7 --precision fp32 --threads 8)
# losses A B FROM TOL: max |loss_A - loss_B| over steps >= FROM; exit 0 when within TOL (0: bit-identical)
losses() {
  python3 - "$@" <<'PY'
import json, sys
a, b, lo, tol = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def read(p):
    try:
        return {j["step"]: j["loss"] for j in map(json.loads, open(p)) if "loss" in j}
    except OSError:
        print("no run:", p); sys.exit(1)
x, y = read(a), read(b)
steps = [s for s in sorted(x) if s >= lo]
if not steps or any(s not in y for s in steps) or len([s for s in y if s >= lo]) != len(steps):
    print("steps differ:", sorted(x), sorted(y)); sys.exit(1)
d = max(abs(x[s] - y[s]) for s in steps)
print(f"{len(steps)} steps, max |dloss| {d:.3g}, last {x[steps[-1]]:.6f} / {y[steps[-1]]:.6f}")
sys.exit(0 if (d <= tol if tol > 0 else all(x[s] == y[s] for s in steps)) else 1)
PY
}
train() { "$TERN" train "$@" >>"$LOG/train.log" 2>&1; }
# one architecture's runs: full on cpu and cuda, each also stopped at 10 and resumed
device_runs() {
  local a=$1
  shift
  train "${COMMON[@]}" "$@" -o "$R/$a-cpu" --device cpu &
  train "${COMMON[@]}" "$@" -o "$R/$a-cuda" --device cuda
  train "${COMMON[@]}" "$@" -o "$R/$a-cuda-half" --device cuda --stop-at 10
  wait
  train "${COMMON[@]}" "$@" -o "$R/$a-cpu-half" --device cpu --stop-at 10
  cp -a "$R/$a-cuda-half" "$R/$a-cuda-then-cpu"
  cp -a "$R/$a-cpu-half" "$R/$a-cpu-then-cuda"
  rm -f "$R/$a-cuda-then-cpu/lock" "$R/$a-cpu-then-cuda/lock"
  train -o "$R/$a-cuda-then-cpu" --resume --device cpu --threads 8 &
  train -o "$R/$a-cuda-half" --resume --device cuda
  train -o "$R/$a-cpu-then-cuda" --resume --device cuda
  wait
}
check_runs() {
  local a=$1 d
  if d=$(losses "$R/$a-cpu/metrics.jsonl" "$R/$a-cuda/metrics.jsonl" 1 1e-4); then row "$a: 20 fp32 steps, cuda vs cpu" PASS "$d"
  else row "$a: 20 fp32 steps, cuda vs cpu" FAIL "$d"; fi
  local same=1
  for f in model.safetensors optimizer.safetensors; do
    cmp -s "$R/$a-cuda/ckpt/step-000020/$f" "$R/$a-cuda-half/ckpt/step-000020/$f" || same=0
  done
  if d=$(losses "$R/$a-cuda/metrics.jsonl" "$R/$a-cuda-half/metrics.jsonl" 1 0) && [ $same = 1 ]; then
    row "$a: stopped at 10, resumed on cuda" PASS "bit-identical losses and step-20 checkpoint"
  else row "$a: stopped at 10, resumed on cuda" FAIL "$d; checkpoint identical: $same"; fi
  if d=$(losses "$R/$a-cpu/metrics.jsonl" "$R/$a-cuda-then-cpu/metrics.jsonl" 11 1e-4); then
    row "$a: cuda checkpoint resumed on cpu" PASS "$d"
  else row "$a: cuda checkpoint resumed on cpu" FAIL "$d"; fi
  if d=$(losses "$R/$a-cuda/metrics.jsonl" "$R/$a-cpu-then-cuda/metrics.jsonl" 11 1e-4); then
    row "$a: cpu checkpoint resumed on cuda" PASS "$d"
  else row "$a: cpu checkpoint resumed on cuda" FAIL "$d"; fi
}
if [ -f "$D/manifest.json" ]; then
  device_runs gpt2 &
  device_runs llama --arch llama --n-kv-head 2
  wait
  grep -iE "error|fail" "$LOG/train.log" | head -20
  check_runs gpt2
  check_runs llama
else
  row "tern prepare (the bundled corpus)" FAIL "see prepare.log"
fi

# ---- 4. throughput beside PyTorch ----
PEAK=989
declare -A TPS
bench() { # key, name, then the command; its last line is the result
  local key=$1 name=$2 out
  shift 2
  out=$(timeout "$(($(left) > 30 ? $(left) : 30))" "$@" 2>>"$LOG/bench.log" | tail -1)
  echo "$out" >>"$LOG/bench.log"
  if [ -n "$out" ] && echo "$out" | grep -q "tokens/s"; then
    TPS[$key]=$(echo "$out" | sed -E 's/.*: ([0-9]+) tokens\/s.*/\1/')
    row "$name" PASS "$(echo "$out" | sed -E 's/.*: ([0-9]+ tokens\/s).*(MFU [0-9.]+%).*peak memory ([0-9]+ MiB).*/\1, \2, \3/')"
  else
    row "$name" FAIL "no result (see bench.log)"
  fi
}
ratio() { # tern's tokens/s over torch's: tern KEY, torch KEY
  if [ -n "${TPS[$1]:-}" ] && [ -n "${TPS[$2]:-}" ]; then
    row "  tern / $2" INFO "$(python3 -c "print(f'{${TPS[$1]} / ${TPS[$2]}:.2f}x')")"
  fi
}
bench tern-gpt2 "tern gpt2 124M bf16, B16 T1024" "$B/bench/bench_gpu" cuda bf16 M 10 $PEAK
bench tern-llama "tern llama 12L 4kv bf16, B16 T1024" "$B/bench/bench_gpu" cuda bf16 LM 10 $PEAK
bench tern-gpt2-fp32 "tern gpt2 124M fp32 (the exact mode)" "$B/bench/bench_gpu" cuda fp32 M 3 $PEAK
for arch in gpt2 llama; do
  bench eager-$arch "torch eager $arch bf16" python3 tools/gpu_torch_bench.py $arch eager 10 16 $PEAK
  ratio tern-$arch eager-$arch
done
for arch in gpt2 llama; do
  if [ "$(left)" -gt 90 ]; then
    bench compile-$arch "torch.compile $arch bf16" python3 tools/gpu_torch_bench.py $arch compile 10 16 $PEAK
    ratio tern-$arch compile-$arch
  else
    row "torch.compile $arch bf16" SKIP "$(left)s left of the ${BUDGET}s budget"
  fi
done
table
[ "$FAILS" -eq 0 ]
