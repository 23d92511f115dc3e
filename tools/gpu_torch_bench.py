#!/usr/bin/env python3
"""PyTorch's training step on the GPU, beside bench/bench_gpu.c in tools/gpu_check.sh: the same two
models (GPT-2 small; the Llama of its size: 12 layers, 12 heads, 4 key/value heads, width 768,
SwiGLU width 2048, untied head, vocabulary 50257, T 1024), the same step (forward, cross-entropy
over every position, backward, clip at 1.0, AdamW with betas 0.9/0.95 and decay 0.1 on matrices)
and the same precision regime (fp32 weights, gradients and optimizer; matrix products and
attention in bf16 under autocast), nanoGPT-style modules with scaled_dot_product_attention
(FlashAttention), fused AdamW. Eager or torch.compile. Prints one line in bench_gpu's form:
tokens/s (median of the timed steps), MFU against the peak by the same FLOP count as tern's
(6 per parameter in a matrix product, lookups left out, plus 12 L T NH hs for attention), and
device memory at its highest (total - free after the run: context and caching allocator
included) with torch's own max_memory_allocated.
usage: gpu_torch_bench.py gpt2|llama eager|compile [steps] [batch] [peak_tflops]"""
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

L, NH, C, T, V = 12, 12, 768, 1024, 50257


class Attention(nn.Module):
    def __init__(self, nkv, bias, rope):
        super().__init__()
        self.nkv, self.hs, self.rope = nkv, C // NH, rope
        self.qkv = nn.Linear(C, (NH + 2 * nkv) * self.hs, bias=bias)
        self.proj = nn.Linear(C, C, bias=bias)

    def forward(self, x, cos, sin):
        B = x.shape[0]
        q, k, v = self.qkv(x).split([NH * self.hs, self.nkv * self.hs, self.nkv * self.hs], dim=2)
        q = q.view(B, T, NH, self.hs).transpose(1, 2)
        k = k.view(B, T, self.nkv, self.hs).transpose(1, 2)
        v = v.view(B, T, self.nkv, self.hs).transpose(1, 2)
        if self.rope:
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if self.nkv != NH:  # grouped-query: each key/value head serves NH/nkv query heads
            k, v = (t.repeat_interleave(NH // self.nkv, dim=1) for t in (k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


def rotate(x, cos, sin):
    """Rotary embedding, rotate-half convention (Hugging Face's)."""
    a, b = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # bf16 under autocast: attention's operands keep one type
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


class Block(nn.Module):
    def __init__(self, llama):
        super().__init__()
        self.llama = llama
        norm = (lambda: nn.RMSNorm(C, eps=1e-5)) if llama else (lambda: nn.LayerNorm(C))
        self.n1, self.n2 = norm(), norm()
        self.attn = Attention(4 if llama else NH, not llama, llama)
        if llama:
            self.gate_up = nn.Linear(C, 2 * 2048, bias=False)
            self.down = nn.Linear(2048, C, bias=False)
        else:
            self.fc, self.fc_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.n1(x), cos, sin)
        h = self.n2(x)
        if self.llama:
            g, u = self.gate_up(h).chunk(2, dim=-1)
            return x + self.down(F.silu(g) * u)
        return x + self.fc_proj(F.gelu(self.fc(h), approximate="tanh"))


class Model(nn.Module):
    def __init__(self, llama):
        super().__init__()
        self.llama = llama
        self.wte = nn.Embedding(V, C)
        if not llama:
            self.wpe = nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block(llama) for _ in range(L))
        self.norm = nn.RMSNorm(C, eps=1e-5) if llama else nn.LayerNorm(C)
        self.head = nn.Linear(C, V, bias=False)
        if not llama:
            self.head.weight = self.wte.weight  # GPT-2's head is its token embedding
        hs = C // NH
        inv = 1.0 / (10000.0 ** (torch.arange(0, hs, 2).float() / hs))
        ang = torch.outer(torch.arange(T).float(), inv)
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)

    def forward(self, idx):
        x = self.wte(idx)
        if not self.llama:
            x = x + self.wpe(torch.arange(T, device=idx.device))
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        return self.head(self.norm(x))


def main():
    arch, mode = sys.argv[1], sys.argv[2]
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    B = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    peak = float(sys.argv[5]) if len(sys.argv) > 5 else 989.0
    llama = arch == "llama"
    torch.manual_seed(1)
    dev = torch.device("cuda")
    model = Model(llama).to(dev)
    params = list(model.parameters())  # shared tensors once
    decay = [p for p in params if p.dim() >= 2]
    other = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}], lr=1e-4,
                            betas=(0.9, 0.95), eps=1e-8, fused=True)
    fwd = torch.compile(model) if mode == "compile" else model

    def step(idx, tgt):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = fwd(idx)
        loss = F.cross_entropy(logits.float().view(-1, V), tgt.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    g = torch.Generator(device=dev).manual_seed(7)
    times, losses = [], []
    for s in range(steps + 2):  # two warm-up steps: compilation, autotuning, allocator
        idx = torch.randint(0, V, (B, T), device=dev, generator=g)
        tgt = torch.randint(0, V, (B, T), device=dev, generator=g)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step(idx, tgt)
        torch.cuda.synchronize()
        if s >= 2:
            times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    med = statistics.median(times)
    tps = B * T / med
    P = sum(p.numel() for p in params)
    lookups = T * C if not llama else V * C  # wpe for GPT-2; the untied embedding for Llama
    flops = 6.0 * (P - lookups) + 12.0 * L * T * C
    free, total = torch.cuda.mem_get_info()
    print(f"torch {mode} {torch.__version__} {arch} L{L} H{NH} KV{4 if llama else NH} C{C} T{T} V{V} B{B}: {tps:.0f} tokens/s "
          f"(median of {steps} steps, {med * 1e3:.1f} ms/step), MFU {100 * tps * flops / (peak * 1e12):.1f}% of {peak:.0f} TFLOP/s, "
          f"peak memory {(total - free) / 2**20:.0f} MiB (allocated {torch.cuda.max_memory_allocated() / 2**20:.0f}), "
          f"loss {losses[0]:.4f} -> {losses[-1]:.4f}", flush=True)


if __name__ == "__main__":
    main()
