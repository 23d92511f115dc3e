#!/usr/bin/env python3
"""Writes tests/fixtures/eval/: a tiny GPT-2 trained by tern, and PyTorch's scores of benchmark items.

1. tern trains a 512-token byte-level BPE tokenizer on tinyshakespeare, prepares the text with it,
   trains a small GPT-2 (2 layers, 2 heads, width 32, 128 positions) for 150 steps and exports it
   as a Hugging Face folder: tests/fixtures/eval/tiny/ (config.json, model.safetensors, vocab.json,
   merges.txt; about 200 KB).
2. transformers' GPT2LMHeadModel loads that folder (in float64) and GPT2TokenizerFast its
   tokenizer files; this script then scores the first 200 HellaSwag tasks and the first 200
   LAMBADA passages as lm-evaluation-harness does, written here from its definitions and not from
   tern's code: the context and " " + choice (LAMBADA: the text up to its last space and " " + the
   last word), context whitespace moved to the continuation, the continuation's ids taken from
   the joint encoding past the context's, the input cut on the left to the last 128 tokens before
   the final one, log_softmax over the vocabulary, greedy = every continuation token is the argmax.
3. Writes tests/fixtures/eval/reference.jsonl: a first line of provenance, then one line per item
   with the log-likelihood and token count of each choice and the three predictions (sum, per
   character, per token).

tests/test_tasks.c scores the same items with tern and requires the same token counts and
choices and log-likelihoods within 1e-4.

Usage: python3 tools/make_eval_fixture.py [--tern build/tern]   (needs torch and transformers)
"""
import argparse
import bz2
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import GPT2LMHeadModel, GPT2TokenizerFast

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "eval")
N_ITEMS = 200


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


def train_model(tern, work, hf):
    text = os.path.join(ROOT, "data", "tinyshakespeare", "input.txt")
    tok, data, rundir = (os.path.join(work, x) for x in ("tok", "data", "run"))
    run([tern, "tokenizer", "train", "--vocab-size", "512", "-o", tok, text])
    run([tern, "prepare", "--tokenizer", tok, "--val-fraction", "0.05", "-o", data, text])
    run([tern, "train", "--data", data, "-o", rundir, "--tokenizer", tok, "--n-layer", "2", "--n-head", "2", "--n-embd", "32",
         "--seq", "128", "--batch", "8", "--steps", "150", "--lr", "3e-3", "--warmup", "10", "--eval-every", "0"])
    if os.path.exists(hf):
        shutil.rmtree(hf)
    run([tern, "export", rundir, "-o", hf])
    os.remove(os.path.join(hf, "generation_config.json"))  # not needed by the test or by from_pretrained


def hellaswag_items():
    lines = bz2.open(os.path.join(ROOT, "data", "eval", "hellaswag", "hellaswag_val_full.txt.bz2"), "rt",
                     encoding="utf-8").read().split("\n")
    for i in range(N_ITEMS):
        ctx, gold, ends = lines[6 * i], int(lines[6 * i + 1]), lines[6 * i + 2:6 * i + 6]
        yield ctx, ends, gold


def lambada_items():
    with open(os.path.join(ROOT, "data", "eval", "lambada", "lambada_test.jsonl"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == N_ITEMS:
                break
            text = json.loads(line)["text"]
            ctx, word = text.rsplit(" ", 1)
            yield ctx, [word], 0


class Scorer:
    def __init__(self, hf):
        self.tok = GPT2TokenizerFast.from_pretrained(hf)
        self.model = GPT2LMHeadModel.from_pretrained(hf, torch_dtype=torch.float64).eval()
        self.max_len = self.model.config.n_positions

    def encode_pair(self, context, continuation):
        n = len(context) - len(context.rstrip())
        if n:
            continuation = context[-n:] + continuation
            context = context[:-n]
        whole = self.tok.encode(context + continuation)
        ctx = self.tok.encode(context)
        return ctx, whole[len(ctx):]

    @torch.no_grad()
    def loglikelihood(self, context, continuation):
        ctx, cont = self.encode_pair(context, continuation)
        seq = (ctx + cont)[-(self.max_len + 1):][:-1]
        logits = self.model(torch.tensor([seq])).logits[0]
        logp = torch.log_softmax(logits, dim=-1)[-len(cont):]
        target = torch.tensor(cont)
        ll = logp.gather(1, target[:, None]).sum().item()
        greedy = bool((logp.argmax(dim=-1) == target).all())
        return ll, len(cont), greedy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tern", default=os.path.join(ROOT, "build", "tern"))
    args = ap.parse_args()
    hf = os.path.join(OUT, "tiny")
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tern-eval-fixture-") as work:
        train_model(args.tern, work, hf)
    s = Scorer(hf)
    rows = [{"meta": {"made_by": "tools/make_eval_fixture.py", "torch": torch.__version__,
                      "transformers": transformers.__version__, "dtype": "float64", "items": N_ITEMS,
                      "n_positions": s.max_len}}]
    margin = np.inf
    for task, items in (("hellaswag", hellaswag_items()), ("lambada", lambada_items())):
        for i, (ctx, choices, gold) in enumerate(items):
            scored = [s.loglikelihood(ctx, " " + c) for c in choices]
            ll = [x[0] for x in scored]
            ntok = [x[1] for x in scored]
            row = {"task": task, "index": i, "ll": ll, "tokens": ntok, "greedy": [x[2] for x in scored]}
            if len(choices) > 1:
                by = {"pred": np.array(ll), "pred_norm": np.array(ll) / np.array([len(c) for c in choices]),
                      "pred_norm_tok": np.array(ll) / np.array(ntok)}
                for k, v in by.items():
                    row[k] = int(np.argmax(v))
                    top = np.sort(v)[::-1]
                    margin = min(margin, top[0] - top[1])
            rows.append(row)
    with open(os.path.join(OUT, "reference.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"wrote {hf} and {os.path.join(OUT, 'reference.jsonl')}: {len(rows) - 1} items; smallest margin between the "
          f"best and second choice of any metric {margin:.3g}")


if __name__ == "__main__":
    main()
