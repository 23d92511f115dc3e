#!/usr/bin/env python3
"""Builds a JSON Lines corpus compressed with zstd from the real texts in shared/data, for the
prepare benchmark (tools/bench_prepare.sh). Not a test fixture and not committed: it is written
into the folder given and can be made again at any time.

Documents: every TinyStories story (the train and validation heads, split at <|endoftext|> and
at blank lines respectively), each clean Gutenberg book cut into pieces of about 8 KB at paragraph
breaks, and tinyshakespeare cut the same way; 14 MB in all. Rounds of them, each round in a new
seeded order, are written as {"id": N, "text": ...} lines until the uncompressed size reaches the
target, then compressed with the zstandard package at level 3 (the zstd tool's default).

usage: python3 tools/make_jsonl_corpus.py DATA_DIR OUT.jsonl.zst [MEGABYTES=1000]
"""
import glob
import json
import os
import random
import sys

import zstandard


def pieces(text, size=8000):
    out, cur, n = [], [], 0
    for para in text.split("\n\n"):
        cur.append(para)
        n += len(para) + 2
        if n >= size:
            out.append("\n\n".join(cur))
            cur, n = [], 0
    if cur:
        out.append("\n\n".join(cur))
    return [p for p in out if p.strip()]


def documents(data):
    docs = []
    with open(os.path.join(data, "tinystories/TinyStories-train_head2MiB.txt"), encoding="utf-8", errors="replace") as f:
        docs += [s.strip() for s in f.read().split("<|endoftext|>") if s.strip()]
    with open(os.path.join(data, "tinystories/TinyStories-validation_head.txt"), encoding="utf-8", errors="replace") as f:
        docs += [s.strip() for s in f.read().split("\n\n") if s.strip()]
    for path in sorted(glob.glob(os.path.join(data, "gutenberg/pg*.txt"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            docs += pieces(f.read())
    with open(os.path.join(data, "tinyshakespeare/input.txt"), encoding="utf-8") as f:
        docs += pieces(f.read())
    return docs


def main():
    data, out = sys.argv[1], sys.argv[2]
    target = int(float(sys.argv[3]) * 1e6) if len(sys.argv) > 3 else 1_000_000_000
    docs = documents(data)
    rng = random.Random(1)
    written = lines = 0
    cctx = zstandard.ZstdCompressor(level=3)
    with open(out, "wb") as f, cctx.stream_writer(f) as w:
        while written < target:
            order = list(range(len(docs)))
            rng.shuffle(order)
            for i in order:
                line = (json.dumps({"id": lines, "text": docs[i]}, ensure_ascii=False) + "\n").encode("utf-8")
                w.write(line)
                written += len(line)
                lines += 1
                if written >= target:
                    break
    print(f"{out}: {lines} documents, {written / 1e6:.1f} MB of JSON Lines, {os.path.getsize(out) / 1e6:.1f} MB compressed "
          f"({len(docs)} distinct documents)")


if __name__ == "__main__":
    main()
