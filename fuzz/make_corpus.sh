#!/usr/bin/env bash
# Rewrites the seed corpora under fuzz/corpus/ from tern's own writers (fuzz/make_corpus.c),
# built against the ordinary library. Run from the repository root when a format changes;
# give names (safetensors tokenizer config run_folder hf_config checkpoint gguf sealed ledger inputs
# policy data cpuinfo) to rewrite only those.
set -euo pipefail
cd "$(dirname "$0")/.."
make build/libtern.a
mkdir -p build/fuzz
${CC:-cc} -std=c17 -O1 -g -Wall -Wextra -Werror -fopenmp -Iinclude -Isrc -D_GNU_SOURCE fuzz/make_corpus.c -o build/fuzz/make_corpus \
  build/libtern.a -fopenmp -lsodium -lcjson -ldnnl -lzstd -lz -lm -ldl
build/fuzz/make_corpus fuzz/corpus "$@"
