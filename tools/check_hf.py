#!/usr/bin/env python3
"""The transformers round trip, run end to end, for each model family tern trains.

1. Prepares a slice of tinyshakespeare with GPT-2's own tokenizer (data/gpt2), trains a small
   tern model for a few steps (--arch gpt2, llama with grouped-query attention, or qwen2: llama
   with q/k/v biases), and exports it as a Hugging Face folder (tern export).
2. Loads the folder with transformers' AutoModelForCausalLM.from_pretrained (which picks
   GPT2LMHeadModel, LlamaForCausalLM or Qwen2ForCausalLM from config.json) and
   GPT2TokenizerFast.from_pretrained, and requires no missing or unexpected weights.
3. Compares transformers' logits with tern's (tern logits) on a prompt, to 1e-5 relative.
4. Compares tern eval's loss on the val split with the same loss computed by transformers over
   the same windows (B rows of T tokens, read in order), to 1e-4 relative.
5. Checks that the tokenizer encodes the prompt to the same ids in tern and in transformers.
6. Saves transformers' model again with save_pretrained (its own layout and config keys), starts
   a tern run from it with --init, and compares that run's logits with transformers', to 1e-5.

Usage: python3 tools/check_hf.py [--arch gpt2|llama|qwen2] [--tern build/tern] [--keep DIR]
Needs torch and transformers (pip). Prints one line per check and exits non-zero on a failure.
It works in a temporary folder that it removes at the end, whatever the outcome; --keep DIR works
in DIR instead and leaves it (a second run reuses the data and runs it finds there).
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from transformers import AutoModelForCausalLM, GPT2TokenizerFast

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


def read_st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "I32": np.int32}[v["dtype"]]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dt).reshape(v["shape"])
    return out


def rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tern", default=os.path.join(ROOT, "build", "tern"))
    ap.add_argument("--keep", help="work in this folder and keep it")
    ap.add_argument("--arch", default="gpt2", choices=["gpt2", "llama", "qwen2"])
    args = ap.parse_args()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        check(args, args.keep)
        return
    work = tempfile.mkdtemp(prefix="tern-check-hf-")
    try:
        check(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check(args, work):
    t = args.tern
    corpus = os.path.join(work, "corpus.txt")
    with open(os.path.join(ROOT, "data", "tinyshakespeare", "input.txt"), "rb") as f:
        open(corpus, "wb").write(f.read(200_000))
    data, rundir, hf = (os.path.join(work, x) for x in ("data", "run-" + args.arch, "hf-" + args.arch))
    tok = os.path.join(ROOT, "data", "gpt2")
    B, T = 4, 64
    if not os.path.exists(os.path.join(data, "manifest.json")):
        run([t, "prepare", "--tokenizer", tok, "--val-fraction", "0.1", "-o", data, corpus])
    if not os.path.exists(os.path.join(rundir, "ckpt", "latest")):
        shape = {"gpt2": [], "llama": ["--arch", "llama", "--n-kv-head", "2"],
                 "qwen2": ["--arch", "llama", "--n-kv-head", "2", "--qkv-bias", "--rope-theta", "1000000"]}[args.arch]
        run([t, "train", "--data", data, "-o", rundir, "--tokenizer", tok, "--n-layer", "2", "--n-head", "4",
             "--n-embd", "64", "--seq", str(T), "--batch", str(B), "--steps", "20", "--lr", "3e-3", "--warmup", "5"] + shape)
    run([t, "export", rundir, "-o", hf])
    failures = 0

    model, info = AutoModelForCausalLM.from_pretrained(hf, output_loading_info=True, torch_dtype=torch.float32)
    model.eval()
    problems = {k: v for k, v in info.items() if v}
    ok = not problems
    failures += not ok
    print(f"{'ok' if ok else 'FAIL'}: {type(model).__name__}.from_pretrained: missing/unexpected/mismatched: {problems or 'none'}")
    tk = GPT2TokenizerFast.from_pretrained(hf)

    prompt = "ROMEO:\nBut soft, what light through yonder window breaks?"
    ids_hf = tk(prompt)["input_ids"]
    enc = subprocess.run([t, "tokenizer", "encode", "--tokenizer", hf], input=prompt, capture_output=True, text=True)
    ids_tern = [int(x) for x in enc.stdout.split()]
    ok = ids_tern == ids_hf
    failures += not ok
    print(f"{'ok' if ok else 'FAIL'}: tokenizer: {len(ids_hf)} ids, tern and GPT2TokenizerFast {'agree' if ok else 'differ'}")

    lo = os.path.join(work, "logits.safetensors")
    run([t, "logits", rundir, "--tokens", " ".join(map(str, ids_hf)), "-o", lo])
    ours = read_st(lo)["logits"]
    with torch.no_grad():
        theirs = model(torch.tensor([ids_hf])).logits[0].numpy()
    e = rel(ours, theirs)
    ok = e <= 1e-5
    failures += not ok
    print(f"{'ok' if ok else 'FAIL'}: logits on a {len(ids_hf)}-token prompt: relative error {e:.3g} (limit 1e-5)")

    out = run([t, "eval", rundir, "--data", data, "--batch", str(B), "--seq", str(T)])
    tern_loss = float(out.split(": loss ")[1].split(",")[0])
    # the same windows: the val shard's tokens in order, B*T+1 per window, stepping B*T
    man = json.load(open(os.path.join(data, "manifest.json")))
    val = [s for s in man["shards"] if s["split"] == "val"]
    losses = []
    for s in val:
        raw = open(os.path.join(data, s["file"]), "rb").read()
        ntok = s["tokens"]
        bpt = man.get("bytes_per_token", 2)
        toks = np.frombuffer(raw[len(raw) - ntok * bpt:], dtype=np.uint16 if bpt == 2 else np.uint32).astype(np.int64)
        for w in range(0, len(toks) - B * T, B * T):
            win = torch.tensor(toks[w:w + B * T + 1])
            x, y = win[:-1].view(B, T), win[1:].view(B, T)
            with torch.no_grad():
                lg = model(x).logits
            losses.append(float(torch.nn.functional.cross_entropy(lg.view(-1, lg.size(-1)), y.reshape(-1))))
    torch_loss = float(np.mean(losses))
    e = abs(tern_loss - torch_loss) / torch_loss
    ok = e <= 1e-4
    failures += not ok
    print(f"{'ok' if ok else 'FAIL'}: eval on the val split ({len(losses)} windows of {B}x{T}): tern {tern_loss:.6f}, "
          f"transformers {torch_loss:.6f}, relative difference {e:.2g} (limit 1e-4)")
    # transformers' own save_pretrained folder (its config keys, e.g. transformers 5's
    # rope_parameters), then tern train --init from it: the same logits as transformers
    saved = os.path.join(work, "saved-" + args.arch)
    model.save_pretrained(saved)
    tk.save_pretrained(saved)
    init_run = os.path.join(work, "init-" + args.arch)
    if not os.path.exists(os.path.join(init_run, "ckpt", "latest")):
        run([t, "train", "--data", data, "-o", init_run, "--init", saved, "--seq", str(T), "--batch", str(B), "--steps", "1",
             "--stop-at", "0", "--lr", "1e-9", "--warmup", "0"])
    lo2 = os.path.join(work, "logits-init.safetensors")
    run([t, "logits", saved, "--tokens", " ".join(map(str, ids_hf)), "-o", lo2])
    e = rel(read_st(lo2)["logits"], theirs)
    ok = e <= 1e-5
    failures += not ok
    print(f"{'ok' if ok else 'FAIL'}: logits of transformers' save_pretrained folder read by tern: relative error {e:.3g} "
          f"(limit 1e-5)")
    if args.keep:
        print(f"work folder: {work}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
