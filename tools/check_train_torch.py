#!/usr/bin/env python3
"""tern's training, step by step, against PyTorch training the same model on the same data.

Makes a random GPT-2 with transformers (save_pretrained: the Hub's own layout) beside GPT-2's
tokenizer files, prepares text with `tern prepare --val-fraction 0`, trains with
`tern train --init DIR --no-shuffle` and exports; then trains transformers' GPT2LMHeadModel in
PyTorch on the same windows (docs/FORMATS.md, "Data order") with torch.optim.AdamW (decay on
tensors of 2+ dimensions), clip_grad_norm_ and the same schedule, and compares every step's loss
and the final weights (1e-4 relative).

usage: python3 tools/check_train_torch.py [--tern build/tern] [--steps 8] [--grad-accum 2] [--schedule cosine]
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tern", default=os.path.join(ROOT, "build", "tern"))
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=32)
    ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--schedule", default="cosine")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--embd", type=int, default=48)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tern-check-train-")
    hf, data, rund, out = (os.path.join(work, x) for x in ("init", "data", "run", "export"))
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=args.layers, n_head=args.heads, n_embd=args.embd, n_positions=64, vocab_size=50257,
                     resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    ref = GPT2LMHeadModel(cfg)
    with torch.no_grad():  # non-trivial LayerNorm and bias values
        for n, p in ref.named_parameters():
            if p.dim() == 1:
                p.add_(0.05 * torch.randn_like(p))
    ref.save_pretrained(hf)
    shutil.copy(os.path.join(ROOT, "data", "gpt2", "encoder.json"), os.path.join(hf, "vocab.json"))
    shutil.copy(os.path.join(ROOT, "data", "gpt2", "vocab.bpe"), os.path.join(hf, "merges.txt"))
    text = os.path.join(work, "text.txt")
    with open(os.path.join(ROOT, "data", "tinyshakespeare", "input.txt"), "rb") as f:
        open(text, "wb").write(f.read(40_000))
    run([args.tern, "prepare", "--tokenizer", hf, "--val-fraction", "0", "-o", data, text])
    lr, min_lr, warm, wd, clip = 3e-3, 3e-4, 2, 0.1, 1.0
    run([args.tern, "train", "--init", hf, "--data", data, "-o", rund, "--no-shuffle", "--steps", str(args.steps),
         "--batch", str(args.batch), "--seq", str(args.seq), "--grad-accum", str(args.grad_accum), "--lr", str(lr),
         "--min-lr", str(min_lr), "--warmup", str(warm), "--schedule", args.schedule, "--weight-decay", str(wd),
         "--grad-clip", str(clip), "--threads", "2"])
    run([args.tern, "export", rund, "-o", out])
    tern_losses = [json.loads(l)["loss"] for l in open(os.path.join(rund, "metrics.jsonl")) if '"loss"' in l]

    # PyTorch on the same windows: one shard, windows of B*T+1 tokens stepping B*T
    man = json.load(open(os.path.join(data, "manifest.json")))
    sh = man["shards"][0]
    raw = open(os.path.join(data, sh["file"]), "rb").read()
    toks = np.frombuffer(raw[len(raw) - 2 * sh["tokens"]:], dtype=np.uint16).astype(np.int64)
    B, T, A = args.batch, args.seq, args.grad_accum
    K = (len(toks) - 1) // (B * T)
    K = sum(1 for w in range(K) if w * B * T + B * T + 1 <= len(toks))
    model = GPT2LMHeadModel.from_pretrained(hf)
    model.train()
    params = dict(model.named_parameters())
    decay = [p for n, p in params.items() if p.dim() >= 2]
    other = [p for n, p in params.items() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": other, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(s):
        if s < warm:
            return lr * (s + 1) / warm
        if args.schedule == "constant":
            return lr
        p = min(1.0, (s - warm) / max(1, args.steps - warm))
        return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * p))

    torch_losses = []
    for s in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(s)
        opt.zero_grad()
        total = 0.0
        for a in range(A):
            w = ((s * A + a) % K) * B * T
            win = torch.tensor(toks[w:w + B * T + 1])
            loss = model(win[:-1].view(B, T), labels=None).logits
            loss = torch.nn.functional.cross_entropy(loss.view(-1, loss.size(-1)), win[1:].reshape(-1)) / A
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        torch_losses.append(total)
    worst = max(abs(a - b) / abs(b) for a, b in zip(tern_losses, torch_losses))
    ok_loss = len(tern_losses) == args.steps and worst <= 1e-4
    for s, (a, b) in enumerate(zip(tern_losses, torch_losses)):
        print(f"step {s + 1}: tern {a:.7f}  torch {b:.7f}")
    print(f"{'ok' if ok_loss else 'FAIL'}: every step's loss, worst relative difference {worst:.2g} (limit 1e-4)")
    mine = load_file(os.path.join(out, "model.safetensors"))
    sd = model.state_dict()
    worst_w, worst_n = 0.0, ""
    for n, t in mine.items():
        r = sd[n]
        e = float((t - r).norm() / r.norm().clamp_min(1e-30))
        if n.endswith("attn.c_attn.bias"):  # the key third has a zero gradient: AdamW moves it by rounding noise
            C = t.numel() // 3
            e = max(float((t[:C] - r[:C]).norm() / r[:C].norm()), float((t[2 * C:] - r[2 * C:]).norm() / r[2 * C:].norm()))
        if e > worst_w:
            worst_w, worst_n = e, n
    ok_w = worst_w <= 1e-4
    print(f"{'ok' if ok_w else 'FAIL'}: final weights, worst relative error {worst_w:.2g} ({worst_n}) (limit 1e-4)")
    shutil.rmtree(work)
    sys.exit(0 if ok_loss and ok_w else 1)


if __name__ == "__main__":
    main()
