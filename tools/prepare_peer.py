#!/usr/bin/env python3
"""The usual Python pipeline that tern prepare is measured against (tools/bench_prepare.sh): a
JSON Lines file compressed with zstd, read as a stream with the zstandard package, each line's
"text" tokenized with tiktoken's GPT-2 encoding (built from the local data/gpt2 files, nothing
downloaded) on its own threads (encode_ordinary_batch), <|endoftext|> before each document, and
the tokens written as uint16 shards of 100M tokens with llm.c's 256-int32 header, as llm.c's
dev/data/fineweb.py and nanoGPT's prepare scripts do (without Hugging Face `datasets`). Not a test.

usage: python3 tools/prepare_peer.py CORPUS.jsonl.zst OUT_DIR THREADS   (run from the repository root)
"""
import io
import json
import os
import sys
import time

import numpy as np
import tiktoken
import zstandard
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

SHARD = 100_000_000
BATCH = 1024


def encoding():
    ranks = data_gym_to_mergeable_bpe_ranks("data/gpt2/vocab.bpe", "data/gpt2/encoder.json")
    pat = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    return tiktoken.Encoding(name="gpt2_local", pat_str=pat, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})


def write_shard(out, index, tokens, n):
    header = np.zeros(256, dtype=np.int32)
    header[0], header[1], header[2] = 20240520, 1, n
    with open(os.path.join(out, f"shard_{index:06d}.bin"), "wb") as f:
        f.write(header.tobytes())
        f.write(tokens[:n].tobytes())


def main():
    path, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    enc = encoding()
    eot = enc._special_tokens["<|endoftext|>"]
    t0 = time.perf_counter()
    buf = np.empty(SHARD, dtype=np.uint16)
    n = shards = docs = total = text_bytes = 0

    def flush_batch(texts):
        nonlocal n, shards, docs, total
        for ids in enc.encode_ordinary_batch(texts, num_threads=threads):
            toks = np.array([eot] + ids, dtype=np.uint16)
            docs += 1
            total += len(toks)
            while len(toks):
                k = min(len(toks), SHARD - n)
                buf[n:n + k] = toks[:k]
                n += k
                toks = toks[k:]
                if n == SHARD:
                    write_shard(out, shards, buf, n)
                    shards += 1
                    n = 0

    with open(path, "rb") as f:
        reader = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8")
        batch = []
        for line in reader:
            text = json.loads(line)["text"]
            text_bytes += len(text.encode("utf-8"))
            batch.append(text)
            if len(batch) == BATCH:
                flush_batch(batch)
                batch = []
        if batch:
            flush_batch(batch)
    if n:
        write_shard(out, shards, buf, n)
        shards += 1
    dt = time.perf_counter() - t0
    print(f"peer: {docs} documents, {text_bytes} bytes of text, {total} tokens, {shards} shards in {dt:.2f} s: "
          f"{text_bytes / 1e6 / dt:.2f} MB/s, {total / dt:.0f} tokens/s")


if __name__ == "__main__":
    main()
