#!/usr/bin/env python3
"""PyTorch's training step for the same configurations as bench/bench_train.c, on the CPU:
forward + backward + AdamW (decay 0.1, betas 0.9/0.95) + clipping at 1.0, random tokens, the given
number of threads. GPT-2 is written out in torch.nn (attention by scaled_dot_product_attention);
the Llama is Hugging Face's LlamaForCausalLM (untied head; attention "sdpa", or "eager" when the
environment sets TORCH_ATTN=eager). With "bf16" the forward
pass runs under torch.autocast("cpu", dtype=torch.bfloat16): bf16 matrix products with fp32
master weights, gradients and optimizer state, the peer of tern's --precision bf16. Prints
tokens/s (median of the timed steps) in the same form as bench_train, so bench/compare.sh can set
them side by side.
usage: torch_peer.py S|M|LM|ARCH,L,H,KV,C,T,V,B [steps] [threads] [bf16]"""
import contextlib
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, NH):
        super().__init__()
        self.NH = NH
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.NH, C // self.NH).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L, NH, C, T, V):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList(Block(C, NH) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        self.lookups = T * C  # the position table: a lookup, not a product

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.h:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.T
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1))


class Llama(nn.Module):
    """LlamaForCausalLM of tern's configuration: SwiGLU width 8C/3 rounded up to 256, RMSNorm eps
    1e-5, rope theta 10000, untied head."""

    def __init__(self, L, NH, KV, C, T, V):
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(vocab_size=V, hidden_size=C, intermediate_size=(8 * C // 3 + 255) // 256 * 256, num_hidden_layers=L,
                          num_attention_heads=NH, num_key_value_heads=KV, max_position_embeddings=T, rms_norm_eps=1e-5,
                          rope_theta=10000.0, tie_word_embeddings=False, attention_bias=False)
        cfg._attn_implementation = os.environ.get("TORCH_ATTN", "sdpa")
        self.m = LlamaForCausalLM(cfg)
        self.lookups = V * C  # the token table: a lookup (the head is its own matrix)

    def forward(self, idx, targets):
        h = self.m.model(input_ids=idx).last_hidden_state
        logits = self.m.lm_head(h)
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1))


def main():
    arch, L, NH, KV, C, T, V, B = "gpt2", 6, 6, 6, 384, 256, 8192, 16
    arg = sys.argv[1] if len(sys.argv) > 1 else "S"
    if arg == "M":
        L, NH, KV, C, T, V, B = 12, 12, 12, 768, 1024, 50257, 4
    elif arg == "LM":
        arch, L, NH, KV, C, T, V, B = "llama", 12, 12, 4, 768, 1024, 50257, 4
    elif arg != "S":
        a = arg.split(",")
        arch, (L, NH, KV, C, T, V, B) = a[0], map(int, a[1:])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    bf16 = len(sys.argv) > 4 and sys.argv[4] == "bf16"
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = Llama(L, NH, KV, C, T, V) if arch == "llama" else GPT(L, NH, C, T, V)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    times = []
    for s in range(steps + 1):
        idx = torch.randint(0, V, (B, T))
        tgt = torch.randint(0, V, (B, T))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if s > 0:
            times.append(dt)
        print(f"step {s}: {dt:.3f} s, loss {loss.item():.4f}", file=sys.stderr)
    med = statistics.median(times)
    n = sum(p.numel() for p in model.parameters()) - model.lookups
    flops_tok = 6 * n + 12 * L * C * T
    tps = B * T / med
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    attn = f" {os.environ.get('TORCH_ATTN', 'sdpa')} attention" if arch == "llama" else ""
    print(f"torch {torch.__version__} {'bf16 autocast' if bf16 else 'fp32'}{attn} {arch} L{L} H{NH} KV{KV} C{C} T{T} V{V} B{B}: "
          f"{tps:.1f} tokens/s (median of {steps} steps, {med:.3f} s/step), {tps * flops_tok / 1e9:.1f} GFLOP/s, "
          f"peak RSS {rss:.0f} MiB, {threads} threads")


if __name__ == "__main__":
    main()
