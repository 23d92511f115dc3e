#!/usr/bin/env bash
# Builds and runs tools/cuda_emu: the CUDA backend's kernels on the CPU (no GPU, no CUDA toolkit
# needed; g++ with C++20), each against a plain reference. Exits non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/cuda-emu
mkdir -p "$out"
flags=(-std=c++20 -O2 -pthread -Wall -Wextra -Werror -Wno-unknown-pragmas -Wno-unused-function -include tools/cuda_emu/emu.h -Isrc)
for f in attention kernels main; do g++ "${flags[@]}" -c "tools/cuda_emu/$f.cpp" -o "$out/$f.o" & done
wait
g++ -pthread "$out"/attention.o "$out"/kernels.o "$out"/main.o -o "$out/check"
"$out/check"
