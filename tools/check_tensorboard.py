#!/usr/bin/env python3
"""Checks tern's TensorBoard event files with TensorBoard's own reader.

1. Without --run: prepares a slice of tinyshakespeare with GPT-2's tokenizer, trains a small model
   for 30 steps with val loss every 10, and appends a HellaSwag metrics line (tern eval --task
   hellaswag --limit 20 --json, at the last step), as a run with task evaluation has.
2. `tern tb RUNDIR -o OUT` writes the run's metrics.jsonl as an event file.
3. tensorboard's EventAccumulator (tensorboard.backend.event_processing.event_accumulator) loads
   OUT. Every numeric field of every metrics line must be there as a scalar under its tag
   (train/<key>, val/<key> for val_<key>, <task>/<key> for a task's keys), at its step, with the
   value rounded to float32, and at wall time start + elapsed_s (the start being the file_version
   event's time); no other scalar may be there; the file version must be 2 ("brain.Event:2").

Usage: python3 tools/check_tensorboard.py [--tern build/tern] [--run RUNDIR] [--keep DIR]
Needs the tensorboard package (pip install tensorboard). Exits non-zero on any difference.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
GROUPS = ("val", "hellaswag", "lambada", "piqa")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


def tag_for(key):
    if key in ("step", "elapsed_s"):
        return None
    for g in GROUPS:
        if key.startswith(g + "_") and len(key) > len(g) + 1:
            return g + "/" + key[len(g) + 1:]
    return "train/" + key


def make_run(tern, work):
    corpus = os.path.join(work, "corpus.txt")
    with open(os.path.join(ROOT, "data", "tinyshakespeare", "input.txt"), "rb") as f:
        open(corpus, "wb").write(f.read(200_000))
    data, rundir = os.path.join(work, "data"), os.path.join(work, "run")
    tok = os.path.join(ROOT, "data", "gpt2")
    run([tern, "prepare", "--tokenizer", tok, "--val-fraction", "0.1", "-o", data, corpus])
    run([tern, "train", "--data", data, "-o", rundir, "--tokenizer", tok, "--n-layer", "2", "--n-head", "2", "--n-embd", "32",
         "--seq", "32", "--batch", "4", "--steps", "30", "--eval-every", "10", "--eval-batches", "2"])
    line = json.loads(run([tern, "eval", rundir, "--task", "hellaswag", "--limit", "20", "--json"]))
    with open(os.path.join(rundir, "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"step": 30, **line}) + "\n")
    return rundir


def expected_scalars(rundir):
    """{tag: [(step, elapsed_s, value)]} from metrics.jsonl, as tern's converter reads it."""
    want, elapsed = {}, 0.0
    with open(os.path.join(rundir, "metrics.jsonl")) as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if '"skipped":true' in line or i == len(lines) - 1:
                continue  # a skipped step's nan, or a torn last line: tern skips them too
            raise
        if isinstance(obj.get("elapsed_s"), (int, float)):
            elapsed = float(obj["elapsed_s"])
        for k, v in obj.items():
            tag = tag_for(k)
            if tag is None or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            want.setdefault(tag, []).append((obj["step"], elapsed, float(np.float32(v))))
    return want


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tern", default=os.path.join(ROOT, "build", "tern"))
    ap.add_argument("--run", help="check this run folder instead of training one")
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="tern-check-tb-")
    os.makedirs(work, exist_ok=True)
    rundir = args.run or make_run(args.tern, work)
    out = os.path.join(work, "tb")
    print(run([args.tern, "tb", rundir, "-o", out]).strip())

    acc = event_accumulator.EventAccumulator(out, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    failures = 0
    if acc.file_version != 2.0:  # EventAccumulator keeps the number after "brain.Event:"
        print(f"FAIL: file_version {acc.file_version!r}")
        failures += 1
    start = acc.FirstEventTimestamp()
    want = expected_scalars(rundir)
    have = set(acc.Tags()["scalars"])
    if have != set(want):
        print(f"FAIL: tags differ: only in the file {sorted(have - set(want))}, only in metrics.jsonl {sorted(set(want) - have)}")
        failures += 1
    n = 0
    for tag in sorted(set(want) & have):
        got = acc.Scalars(tag)
        exp = want[tag]
        if len(got) != len(exp):
            print(f"FAIL: {tag}: {len(got)} scalars, metrics.jsonl has {len(exp)}")
            failures += 1
            continue
        for g, (step, elapsed, value) in zip(got, exp):
            n += 1
            same_value = g.value == value or (math.isnan(g.value) and math.isnan(value))
            if g.step != step or not same_value or abs(g.wall_time - (start + elapsed)) > 1e-6 * max(1.0, start):
                print(f"FAIL: {tag}: step {g.step} value {g.value!r} wall {g.wall_time:.6f}; "
                      f"expected step {step} value {value!r} wall {start + elapsed:.6f}")
                failures += 1
    print(f"{'ok' if not failures else 'FAIL'}: EventAccumulator read file version {acc.file_version!r} and {n} scalars "
          f"under {len(have)} tags ({', '.join(sorted(have))}); every step, value (float32) and wall time as written")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
