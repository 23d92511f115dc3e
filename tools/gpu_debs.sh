#!/usr/bin/env bash
# Run here, on a Debian machine with a package registry, before tools/gpu_check.sh goes to a GPU
# machine that has the CUDA toolkit and PyTorch but neither tern's Debian packages nor a registry:
# downloads the .deb files tern builds against (libsodium, cJSON, oneDNN and the OpenCL loader
# oneDNN links, with make in case the GPU machine lacks it) into build/gpu-debs, an ignored folder
# that the device tool carries (carry: ["build/gpu-debs"]). gpu_check.sh unpacks them with
# dpkg -x; nothing is installed on either machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/gpu-debs
pkgs=(libsodium23 libsodium-dev libcjson1 libcjson-dev libdnnl2 libdnnl-dev ocl-icd-libopencl1 make)
rm -rf "$out"
mkdir -p "$out"
[ -n "$(find /var/lib/apt/lists -name '*Packages*' -print -quit 2>/dev/null)" ] || apt-get update -qq
(cd "$out" && apt-get download "${pkgs[@]}")
ls -l "$out"
du -sh "$out"
