#!/usr/bin/env python3
"""The peers of bench/bench_tok.c, measured the same way on the same text: tiktoken's GPT-2
encoding (built from the local data/gpt2 files, nothing downloaded) and Hugging Face
`tokenizers` BPE training (GPT-2's byte-level pre-tokenization, 32,000 tokens). Not a test.

usage: python3 tools/bench_tok_peer.py CORPUS_DIR REPEATS MAX_THREADS   (run from the repository root)
Threads: tiktoken's encode_ordinary is one thread; encode_ordinary_batch takes num_threads.
tokenizers trains on RAYON_NUM_THREADS threads, which must be set before it is imported, so
each thread count runs in a child process.
"""
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time


def corpus(d):
    files = sorted(glob.glob(os.path.join(d, "pg*.txt")))
    return files, b"".join(open(f, "rb").read() for f in files)


def encode_bench(d, reps, maxt):
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    ranks = data_gym_to_mergeable_bpe_ranks("data/gpt2/vocab.bpe", "data/gpt2/encoder.json")
    pat = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    enc = tiktoken.Encoding(name="gpt2_local", pat_str=pat, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
    files, data = corpus(d)
    text = data.decode("utf-8")
    v, c = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        ids = enc.encode_ordinary(text)
        v.append(len(data) / 1e6 / (time.perf_counter() - t0))
        c.append(len(data) / 1e6 / (time.process_time() - c0))
    one = statistics.median(v)
    print(f"tiktoken {tiktoken.__version__} encode gpt2, 1 thread: {one:.1f} MB/s ({len(ids)} tokens); "
          f"{statistics.median(c):.1f} MB per CPU-second")
    t = 2
    while t <= maxt:
        # the same text in 4*t pieces cut at newlines (tiktoken cannot split a text itself)
        pieces, n, start = [], len(text), 0
        for k in range(1, 4 * t):
            cut = text.find("\n", k * n // (4 * t))
            if cut > start:
                pieces.append(text[start:cut])
                start = cut
        pieces.append(text[start:])
        v, c = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            enc.encode_ordinary_batch(pieces, num_threads=t)
            v.append(len(data) / 1e6 / (time.perf_counter() - t0))
            c.append(len(data) / 1e6 / (time.process_time() - c0))
        m = statistics.median(v)
        print(f"tiktoken encode gpt2 (encode_ordinary_batch), {t} threads: {m:.1f} MB/s ({m / one:.2f}x one thread); "
              f"{statistics.median(c):.1f} MB per CPU-second")
        t *= 2


TRAIN_CHILD = r"""
import glob, os, sys, time, statistics, tempfile
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, __version__
d, reps = sys.argv[1], int(sys.argv[2])
files = sorted(glob.glob(os.path.join(d, "pg*.txt")))
v, c = [], []
for _ in range(reps):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tr = trainers.BpeTrainer(vocab_size=32000, min_frequency=0, special_tokens=["<|endoftext|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    tok.train(files, tr)
    with tempfile.TemporaryDirectory() as out:
        tok.model.save(out)
    v.append(time.perf_counter() - t0)
    c.append(time.process_time() - c0)
print(f"{__version__} {statistics.median(v):.2f} {tok.get_vocab_size()} {statistics.median(c):.2f}")
"""


def train_bench(d, reps, maxt):
    t = 1
    while t <= maxt:
        env = dict(os.environ, RAYON_NUM_THREADS=str(t))
        r = subprocess.run([sys.executable, "-c", TRAIN_CHILD, d, str(min(reps, 3))], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            sys.exit(1)
        ver, secs, vocab, cpu = r.stdout.split()
        print(f"HF tokenizers {ver} train 32k vocabulary, {t} thread{'s' if t > 1 else ''}: {float(secs):.2f} s ({vocab} tokens); "
              f"{float(cpu):.2f} CPU-seconds")
        t *= 2


if __name__ == "__main__":
    d, reps, maxt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    encode_bench(d, reps, maxt)
    train_bench(d, reps, maxt)
