#!/usr/bin/env bash
# Installs the Debian packages tern builds against, if any are missing. Needs root for apt;
# without root it only says what is missing.
set -eu
pkgs=(gcc make libsodium-dev libcjson-dev libdnnl-dev libzstd-dev zstd zlib1g-dev libcairo2-dev fonts-dejavu-core libbz2-dev strace libopenmpi-dev openmpi-bin slurm-wlm munge)
# `make fuzz` alone needs clang with libFuzzer (libclang-rt-14-dev) and llvm-symbolizer (llvm-14).
[ "${1:-}" = "--fuzz" ] && pkgs+=(clang libclang-rt-14-dev llvm-14)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "tern: missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "tern: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
