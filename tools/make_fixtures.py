#!/usr/bin/env python3
"""Writes tests/fixtures/gpt2_*.safetensors: PyTorch reference values for tern's core tests.

GPT-2 is written here from its equations (Hugging Face GPT2LMHeadModel's arithmetic: pre-LN
blocks, eps 1e-5, causal attention scaled by 1/sqrt(head size), tanh-GELU MLP, final LN, head
tied to wte), independently of tern's C code. Everything is computed in float64 from float32
initial values, so the fixture is the exact answer that tern's float32 must approach.
Each file holds: the config and optimiser settings (__metadata__), the tokens of 3 batches,
the initial parameters (Hugging Face names and [in, out] layouts), the logits and loss of batch 0,
every gradient of batch 0, the loss of each step, and every parameter after 3 AdamW steps
(torch.optim.AdamW, decay on tensors of 2+ dims, clip_grad_norm_, warm-up + cosine schedule,
2 micro-batches of gradient accumulation per step).

Usage: python3 tools/make_fixtures.py   (needs torch; writes the files under tests/fixtures/)
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

SHAPES = {
    # awkward vocabulary (97, prime), 4 heads, two layers
    "v97": dict(n_layer=2, n_head=4, n_embd=32, n_ctx=24, vocab_size=97, B=4, T=16, seed=1),
    # three layers of three heads, odd sequence length below n_ctx
    "l3": dict(n_layer=3, n_head=3, n_embd=36, n_ctx=16, vocab_size=64, B=2, T=11, seed=2),
    # a byte-level-sized vocabulary (data folders need at least 257 tokens): the eval fixture
    "v300": dict(n_layer=1, n_head=2, n_embd=16, n_ctx=16, vocab_size=300, B=2, T=8, seed=3),
}
OPT = dict(lr_max=3e-3, lr_min=3e-4, warmup=1, steps=3, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-8, grad_accum=2)


def param_shapes(c):
    L, C, V, P = c["n_layer"], c["n_embd"], c["vocab_size"], c["n_ctx"]
    shapes = [("wte.weight", (V, C)), ("wpe.weight", (P, C))]
    for l in range(L):
        h = f"h.{l}."
        shapes += [
            (h + "ln_1.weight", (C,)), (h + "ln_1.bias", (C,)),
            (h + "attn.c_attn.weight", (C, 3 * C)), (h + "attn.c_attn.bias", (3 * C,)),
            (h + "attn.c_proj.weight", (C, C)), (h + "attn.c_proj.bias", (C,)),
            (h + "ln_2.weight", (C,)), (h + "ln_2.bias", (C,)),
            (h + "mlp.c_fc.weight", (C, 4 * C)), (h + "mlp.c_fc.bias", (4 * C,)),
            (h + "mlp.c_proj.weight", (4 * C, C)), (h + "mlp.c_proj.bias", (C,)),
        ]
    shapes += [("ln_f.weight", (C,)), ("ln_f.bias", (C,))]
    return shapes


def init_params(c, gen):
    params = {}
    for name, shape in param_shapes(c):
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
            t = 1.0 + 0.2 * torch.randn(shape, generator=gen, dtype=torch.float32)  # non-trivial LN
        elif name.endswith(".bias"):
            t = 0.05 * torch.randn(shape, generator=gen, dtype=torch.float32)
        else:
            t = 0.08 * torch.randn(shape, generator=gen, dtype=torch.float32)
        params[name] = t.to(torch.float64).requires_grad_(True)
    return params


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(p, c, idx):
    B, T = idx.shape
    C, NH = c["n_embd"], c["n_head"]
    hs = C // NH
    x = p["wte.weight"][idx] + p["wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(c["n_layer"]):
        h = f"h.{l}."
        a = F.layer_norm(x, (C,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], eps=1e-5)
        qkv = a @ p[h + "attn.c_attn.weight"] + p[h + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=2)
        q, k, v = (t.view(B, T, NH, hs).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ p[h + "attn.c_proj.weight"] + p[h + "attn.c_proj.bias"]
        m = F.layer_norm(x, (C,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], eps=1e-5)
        m = gelu_tanh(m @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"])
        x = x + m @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], eps=1e-5)
    return x @ p["wte.weight"].T


def lr_at(s):
    o = OPT
    if s < o["warmup"]:
        return o["lr_max"] * (s + 1) / o["warmup"]
    prog = min(1.0, (s - o["warmup"]) / max(1, o["steps"] - o["warmup"]))
    return o["lr_min"] + (o["lr_max"] - o["lr_min"]) * 0.5 * (1 + math.cos(math.pi * prog))


def write_safetensors(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, (dtype, arr) in tensors.items():
        arr = arr.detach().contiguous()
        raw = arr.to(torch.float32 if dtype == "F32" else torch.int32).numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def make(name, c):
    gen = torch.Generator().manual_seed(c["seed"])
    p = init_params(c, gen)
    B, T, V = c["B"], c["T"], c["vocab_size"]
    tokens = torch.randint(0, V, (OPT["steps"], B, T + 1), generator=gen)
    out = {"tokens": ("I32", tokens)}
    for n, t in p.items():
        out[n] = ("F32", t.detach().clone())
    # batch 0: logits, loss, gradients
    logits = forward(p, c, tokens[0, :, :T])
    loss = F.cross_entropy(logits.reshape(-1, V), tokens[0, :, 1:].reshape(-1))
    loss.backward()
    out["logits"] = ("F32", logits)
    out["loss"] = ("F32", loss.reshape(()))
    for n, t in p.items():
        out["grad." + n] = ("F32", t.grad.clone())
        t.grad = None
    # clip at half the first gradient norm, so that clipping acts
    norm0 = math.sqrt(sum(float((out["grad." + n][1] ** 2).sum()) for n in p))
    clip = round(0.5 * norm0, 4)
    decay = [t for n, t in p.items() if t.dim() >= 2]
    no_decay = [t for n, t in p.items() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": OPT["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=OPT["lr_max"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"])
    A, mb = OPT["grad_accum"], B // OPT["grad_accum"]
    step_losses, norms = [], []
    for s in range(OPT["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(s)
        opt.zero_grad()
        total = 0.0
        for a in range(A):
            rows = tokens[s, a * mb:(a + 1) * mb]
            lg = forward(p, c, rows[:, :T])
            l = F.cross_entropy(lg.reshape(-1, V), rows[:, 1:].reshape(-1)) / A
            l.backward()
            total += l.detach().item()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(p.values()), clip)))
        opt.step()
        step_losses.append(total)
    # evaluation: a token sequence read as tern's loader reads a val split (windows of B*T+1
    # tokens stepping B*T, in order), scored by the initial model
    n_eval = 3 * B * T + 1 + 5  # three whole windows and a remainder that no window covers
    eval_tokens = torch.randint(0, V, (n_eval,), generator=gen)
    with torch.no_grad():
        p0 = {n: out[n][1].to(torch.float64) for n in p}
        wl = []
        for w in range(3):
            win = eval_tokens[w * B * T:(w + 1) * B * T + 1]
            lg = forward(p0, c, win[:-1].view(B, T))
            wl.append(float(F.cross_entropy(lg.reshape(-1, V), win[1:].reshape(-1))))
    out["eval_tokens"] = ("I32", eval_tokens)
    out["eval_loss"] = ("F32", torch.tensor(sum(wl) / len(wl)))
    out["step_losses"] = ("F32", torch.tensor(step_losses))
    out["step_grad_norms"] = ("F32", torch.tensor(norms))
    for n, t in p.items():
        out["step3." + n] = ("F32", t.detach().clone())
    meta = {k: str(v) for k, v in c.items()}
    meta.update({k: repr(v) for k, v in OPT.items()})
    meta["grad_clip"] = repr(clip)
    meta["schedule"] = "cosine"
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", f"gpt2_{name}.safetensors")
    write_safetensors(os.path.normpath(path), out, meta)
    print(f"{name}: loss {loss.detach().item():.6f}, grad norm {norm0:.4f}, clip {clip}, step losses {step_losses}")


if __name__ == "__main__":
    for n, c in SHAPES.items():
        make(n, c)
