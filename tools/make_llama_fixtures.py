#!/usr/bin/env python3
"""Writes tests/fixtures/llama_*.safetensors and tests/fixtures/hf/: transformers' own reference
values for tern's Llama family (Llama, Qwen2, Mistral).

The models are transformers' classes (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM,
eager attention, no dropout) with random float32 weights from a seeded generator, then .double().
The arithmetic is theirs: RMSNorm, rotary embeddings in the rotate-half convention with the
frequencies their rope functions compute (llama3 scaling included), SwiGLU, grouped-query
attention by repeat_kv, Qwen2's q/k/v biases, the tied or untied head.

Float64 throughout. transformers computes three things in float32 even inside a float64 model:
RMSNorm (it casts to float32 and back), the eager attention softmax (dtype=torch.float32) and the
rotary angles (.float()); its causal-LM loss casts the logits to float32 too. Inside
float64_throughout() those three run at the model's own precision, otherwise unchanged, and the loss
is F.cross_entropy on float64 logits. Each fixture is also computed by the unmodified classes, and
the two must agree to 1e-5 (they differ by float32 rounding, ~1e-7), so the lifting cannot change
what is computed. The rotary frequencies are transformers' own (float32 values, as its rope
functions return them), stored as rope_inv_freq so that tern's can be compared with them directly.

tests/fixtures/llama_<name>.safetensors mirrors tools/make_fixtures.py's GPT-2 files, read by the
same code in the C tests: the config and optimiser settings in __metadata__ (strings), the tokens of
3 batches, the initial parameters under Hugging Face's names and [out, in] layouts, the logits and
loss of batch 0, every gradient of batch 0 ("grad." + name), the loss and gradient norm of each
step, every parameter after 3 AdamW steps ("step3." + name; torch.optim.AdamW, decay on tensors of
2+ dims, clip_grad_norm_, warm-up + cosine schedule, 2 micro-batches of gradient accumulation per
step), and an evaluation loss. Values are computed in float64 and stored as float32 (the initial
parameters are float32 values, so they are stored exactly). A tied model stores no lm_head.weight:
the head is model.embed_tokens.weight (metadata tie_word_embeddings=1), and its gradient holds both
uses.

tests/fixtures/hf/ holds small float32 save_pretrained folders (config.json and the weights, no
tokenizer) for the importer, and <name>_ref.safetensors files beside them: fixed input_ids (I32,
[B, T]), the logits transformers gives for them after from_pretrained in float32 ("logits", F32)
and in float64 throughout ("logits_f64", F64).
  llama_tiny/           LlamaForCausalLM, grouped-query attention, untied head
  llama_tiny_sharded/   the same weights in 2+ shards with model.safetensors.index.json
  llama_tiny_tf4/       the same weights, config.json in transformers 4's layout (top-level
                        rope_theta and rope_scaling, torch_dtype, no head_dim)
  llama3_tiny_tf4/      transformers 4 layout with llama3 rope_scaling and a tied head (as Llama
                        3.2's files are on the Hub): model.safetensors has no lm_head.weight
  qwen2_tiny/           Qwen2ForCausalLM with q/k/v biases
  mistral_tiny/         MistralForCausalLM with sliding_window null (full attention: accepted)
  mistral_window/       MistralForCausalLM with a 16-token sliding window (to be refused)

Usage: /work/venv/bin/python tools/make_llama_fixtures.py   (any Python with torch and transformers 5;
the committed files come from transformers 5.24.0 and torch 2.15 on the CPU). It writes the files
above, prints what it wrote, and takes a few seconds on one core. The output is deterministic: a
second run writes byte-identical files.
"""
import contextlib
import json
import math
import os
import shutil
import struct
import tempfile

import torch
import torch.nn.functional as F
import transformers
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)
from transformers.models.llama import modeling_llama
from transformers.models.mistral import modeling_mistral
from transformers.models.qwen2 import modeling_qwen2

torch.set_num_threads(1)  # one reduction order, so that reruns are byte-identical
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")

# Training fixtures. rope_scaling, when given, is in the neutral form written to the metadata.
SHAPES = {
    # grouped-query attention (2 key/value heads for 4 query heads), an intermediate size of 40,
    # a prime vocabulary, untied head
    "gqa": dict(arch="llama", n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffn_dim=40, vocab_size=97, n_ctx=32,
                norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, B=2, T=13, seed=21),
    # multi-query attention (one key/value head for 3 query heads), tied head, odd T
    "mqa_tied": dict(arch="llama", n_layer=2, n_head=3, n_kv_head=1, n_embd=24, ffn_dim=52, vocab_size=64, n_ctx=16,
                     norm_eps=1e-6, rope_theta=500000.0, tie_word_embeddings=True, B=2, T=11, seed=22),
    # Qwen2: biases on q, k and v (not on o), 2 key/value heads for 4
    "qwen2": dict(arch="qwen2", n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffn_dim=36, vocab_size=64, n_ctx=32,
                  norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False, B=2, T=9, seed=23),
    # llama3 rope scaling, with plain multi-head attention (as many key/value heads as heads).
    # head_dim 16 gives 8 frequencies of wavelength 2*pi*10000^(i/8) = 6.3, 19.9, 62.8, 199, ...:
    # with original_max_position_embeddings 64, low_freq_factor 1 and high_freq_factor 4, the first
    # (wavelength < 64/4) is kept, the next two (16..64) are smoothed, the other five divided by 4.
    "llama3_rope": dict(arch="llama", n_layer=1, n_head=2, n_kv_head=2, n_embd=32, ffn_dim=48, vocab_size=50,
                        n_ctx=64, norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, B=2, T=16, seed=24,
                        rope_scaling=dict(rope_type="llama3", factor=4.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                          original_max_position_embeddings=64)),
}
# the same semantics and values as tools/make_fixtures.py's OPT
OPT = dict(lr_max=3e-3, lr_min=3e-4, warmup=1, steps=3, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-8, grad_accum=2)

ARCH = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        "mistral": (MistralConfig, MistralForCausalLM)}


# ---- float64 throughout: transformers' forward functions with their float32 casts taken out ----

def _rmsnorm_forward(self, hidden_states):
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def _rotary_forward(self, x, position_ids):
    freqs = position_ids[..., None].to(self.inv_freq.dtype) * self.inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)


def _eager_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    key_states = modeling_llama.repeat_kv(key, module.num_key_value_groups)
    value_states = modeling_llama.repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value_states).transpose(1, 2).contiguous()
    return attn_output, attn_weights


@contextlib.contextmanager
def float64_throughout():
    """While active, the Llama, Qwen2 and Mistral classes compute RMSNorm, the rotary angles and the
    eager softmax at the model's own precision (the functions above are transformers' own with the
    float32 casts removed); everything else is transformers' code as it is."""
    saved = []
    for mod, prefix in ((modeling_llama, "Llama"), (modeling_qwen2, "Qwen2"), (modeling_mistral, "Mistral")):
        for obj, attr, new in ((getattr(mod, prefix + "RMSNorm"), "forward", _rmsnorm_forward),
                               (getattr(mod, prefix + "RotaryEmbedding"), "forward", _rotary_forward),
                               (mod, "eager_attention_forward", _eager_attention)):
            saved.append((obj, attr, getattr(obj, attr)))
            setattr(obj, attr, new)
    try:
        yield
    finally:
        for obj, attr, old in reversed(saved):
            setattr(obj, attr, old)


# ---- models ----

def hf_config(c, **extra):
    """transformers 5 config for a shape dict (rope settings go in rope_parameters)."""
    cls = ARCH[c["arch"]][0]
    rope = {"rope_type": "default", "rope_theta": c["rope_theta"]}
    if c.get("rope_scaling"):
        rope.update(c["rope_scaling"])
    kw = dict(vocab_size=c["vocab_size"], hidden_size=c["n_embd"], intermediate_size=c["ffn_dim"],
              num_hidden_layers=c["n_layer"], num_attention_heads=c["n_head"], num_key_value_heads=c["n_kv_head"],
              max_position_embeddings=c["n_ctx"], rms_norm_eps=c["norm_eps"], rope_parameters=rope,
              tie_word_embeddings=c["tie_word_embeddings"], hidden_act="silu", attention_dropout=0.0,
              attn_implementation="eager")
    if c["arch"] == "llama":
        kw.update(attention_bias=False, mlp_bias=False)
    kw.update(extra)
    return cls(**kw)


def build(c, gen, **extra):
    """transformers' model for c, every parameter drawn from gen in float32 (RMSNorm weights
    1 + 0.3 N(0,1), biases 0.1 N(0,1), matrices 0.1 N(0,1)), in eval mode, still float32."""
    model = ARCH[c["arch"]][1](hf_config(c, **extra))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                t = 1.0 + 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float32)
            elif name.endswith(".bias"):
                t = 0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float32)
            else:
                t = 0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float32)
            p.copy_(t)
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    assert tied == c["tie_word_embeddings"], "transformers did not tie (or untie) the head as configured"
    return model.eval()


def logits_of(model, idx):
    return model(input_ids=idx, use_cache=False).logits


def xent(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def lr_at(s):
    o = OPT
    if s < o["warmup"]:
        return o["lr_max"] * (s + 1) / o["warmup"]
    prog = min(1.0, (s - o["warmup"]) / max(1, o["steps"] - o["warmup"]))
    return o["lr_min"] + (o["lr_max"] - o["lr_min"]) * 0.5 * (1 + math.cos(math.pi * prog))


def rel_err(a, b):
    return float((a - b).norm() / b.norm())


# ---- files ----

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32}


def write_safetensors(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, (dtype, arr) in tensors.items():
        raw = arr.detach().to(DTYPES[dtype]).contiguous().numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def neutral_meta(c):
    """The config in names that say what they are, independent of transformers' config layout."""
    meta = {k: str(c[k]) for k in ("arch", "n_layer", "n_head", "n_kv_head", "n_embd", "ffn_dim", "vocab_size",
                                   "n_ctx", "norm_eps", "rope_theta")}
    meta["head_dim"] = str(c["n_embd"] // c["n_head"])
    meta["hidden_act"] = "silu"
    meta["tie_word_embeddings"] = "1" if c["tie_word_embeddings"] else "0"
    meta["qkv_bias"] = "1" if c["arch"] == "qwen2" else "0"
    rs = c.get("rope_scaling")
    meta["rope_type"] = rs["rope_type"] if rs else "default"
    if rs:
        for k in ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
            meta["rope_" + k] = str(rs[k])
    return meta


# ---- training fixtures ----

def make(name, c):
    gen = torch.Generator().manual_seed(c["seed"])
    model = build(c, gen).double()
    p = dict(model.named_parameters())  # one entry for a tied head: model.embed_tokens.weight
    B, T, V = c["B"], c["T"], c["vocab_size"]
    tokens = torch.randint(0, V, (OPT["steps"], B, T + 1), generator=gen)
    out = {"tokens": ("I32", tokens)}
    for n, t in p.items():
        out[n] = ("F32", t.detach().clone())
    init = {n: t.detach().clone() for n, t in p.items()}
    inv_freq = model.model.rotary_emb.inv_freq.detach().clone()
    out["rope_inv_freq"] = ("F32", inv_freq)

    # the unmodified classes (float32 islands), to check that float64_throughout changes only precision
    with torch.no_grad():
        stock_logits = logits_of(model, tokens[0, :, :T])

    with float64_throughout():
        # batch 0: logits, loss, gradients
        logits = logits_of(model, tokens[0, :, :T])
        loss = xent(logits, tokens[0, :, 1:])
        loss.backward()
        out["logits"] = ("F32", logits)
        out["loss"] = ("F32", loss.reshape(()))
        for n, t in p.items():
            out["grad." + n] = ("F32", t.grad.clone())
            t.grad = None
        stock_err = rel_err(stock_logits, logits.detach())
        assert stock_err < 1e-5, f"{name}: float64_throughout changed the logits by {stock_err:.3g}"
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
                l = xent(logits_of(model, rows[:, :T]), rows[:, 1:]) / A
                l.backward()
                total += l.detach().item()
            norms.append(float(torch.nn.utils.clip_grad_norm_(list(p.values()), clip)))
            opt.step()
            step_losses.append(total)
        for n, t in p.items():
            out["step3." + n] = ("F32", t.detach().clone())
        # evaluation: a token sequence read as tern's loader reads a val split (windows of B*T+1
        # tokens stepping B*T, in order), scored by the initial model
        n_eval = 3 * B * T + 1 + 5  # three whole windows and a remainder that no window covers
        eval_tokens = torch.randint(0, V, (n_eval,), generator=gen)
        with torch.no_grad():
            for n, t in p.items():
                t.copy_(init[n])
            wl = []
            for w in range(3):
                win = eval_tokens[w * B * T:(w + 1) * B * T + 1]
                wl.append(float(xent(logits_of(model, win[:-1].view(B, T)), win[1:].view(B, T))))
    # in the order of tools/make_fixtures.py's files: eval, step losses and norms, then step3
    step3 = {k: v for k, v in out.items() if k.startswith("step3.")}
    for k in step3:
        del out[k]
    out["eval_tokens"] = ("I32", eval_tokens)
    out["eval_loss"] = ("F32", torch.tensor(sum(wl) / len(wl)))
    out["step_losses"] = ("F32", torch.tensor(step_losses))
    out["step_grad_norms"] = ("F32", torch.tensor(norms))
    out.update(step3)

    meta = neutral_meta(c)
    meta.update({k: str(c[k]) for k in ("B", "T", "seed")})
    meta.update({k: repr(v) for k, v in OPT.items()})
    meta["grad_clip"] = repr(clip)
    meta["schedule"] = "cosine"
    meta["reference"] = (f"transformers {transformers.__version__} {type(model).__name__}, eager attention, "
                         f"float64 throughout (tools/make_llama_fixtures.py)")
    path = os.path.join(FIXTURES, f"llama_{name}.safetensors")
    write_safetensors(path, out, meta)
    print(f"{os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes): loss {loss.item():.6f}, "
          f"grad norm {norm0:.4f}, clip {clip}, step losses {[round(x, 6) for x in step_losses]}, "
          f"unmodified transformers differs by {stock_err:.2g}")


# ---- importer folders ----

HF_SHAPES = {
    "llama_tiny": dict(arch="llama", n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffn_dim=40, vocab_size=64, n_ctx=64,
                       norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, seed=31),
    "llama3_tiny_tf4": dict(arch="llama", n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffn_dim=40, vocab_size=64,
                            n_ctx=1024, norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, seed=32,
                            # head_dim 8: wavelengths 6.3, 167, 4444, 118000: one kept, one smoothed, two divided
                            rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                              high_freq_factor=4.0, original_max_position_embeddings=256)),
    "qwen2_tiny": dict(arch="qwen2", n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffn_dim=40, vocab_size=64, n_ctx=64,
                       norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False, seed=33),
    "mistral_tiny": dict(arch="mistral", n_layer=2, n_head=4, n_kv_head=2, n_embd=32, ffn_dim=40, vocab_size=64,
                         n_ctx=64, norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, seed=34),
    "mistral_window": dict(arch="mistral", n_layer=1, n_head=2, n_kv_head=1, n_embd=16, ffn_dim=24, vocab_size=64,
                           n_ctx=64, norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, seed=35),
}
REF_B, REF_T = 2, 12
WEIGHT_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json")


def save_folder(model, dest, **kw):
    """save_pretrained into dest, keeping only config.json and the weights."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, **kw)
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.makedirs(dest)
        for f in sorted(os.listdir(tmp)):
            if f in WEIGHT_FILES or (f.startswith("model-") and f.endswith(".safetensors")):
                shutil.copyfile(os.path.join(tmp, f), os.path.join(dest, f))


def tf4_config(cfg):
    """A transformers 5 config.json rewritten in transformers 4's layout: rope_theta and
    rope_scaling (null, or the scaling fields with rope_type) at the top level, torch_dtype for
    dtype, and no head_dim (transformers 4 derived it as hidden_size / num_attention_heads)."""
    rope = dict(cfg.pop("rope_parameters"))
    cfg.pop("head_dim", None)
    out = {}
    for k, v in cfg.items():
        if k == "dtype":
            out["torch_dtype"] = v
        elif k == "transformers_version":
            out[k] = "4.46.0"
        else:
            out[k] = v
    out["rope_theta"] = rope.pop("rope_theta")
    out["rope_scaling"] = None if rope.get("rope_type", "default") == "default" else rope
    return dict(sorted(out.items()))


def loaded_logits(folder, idx):
    """Logits of from_pretrained(folder) in float32 (unmodified transformers) and float64 throughout."""
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()
    with torch.no_grad():
        l32 = logits_of(model, idx)
        model = model.double()
        with float64_throughout():
            l64 = logits_of(model, idx)
    return l32, l64


def write_ref(name, folders, idx, l32, l64, c):
    meta = neutral_meta(c)
    meta["folders"] = ",".join(folders)
    meta["reference"] = (f"transformers {transformers.__version__} AutoModelForCausalLM.from_pretrained, eager "
                         f"attention: logits in float32, logits_f64 in float64 throughout "
                         f"(tools/make_llama_fixtures.py)")
    path = os.path.join(FIXTURES, "hf", f"{name}_ref.safetensors")
    write_safetensors(path, {"input_ids": ("I32", idx), "logits": ("F32", l32), "logits_f64": ("F64", l64)}, meta)
    return path


def folder_size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def make_hf():
    hf = os.path.join(FIXTURES, "hf")
    os.makedirs(hf, exist_ok=True)
    written = []
    for name, c in HF_SHAPES.items():
        gen = torch.Generator().manual_seed(c["seed"])
        extra = {"sliding_window": 16 if name == "mistral_window" else None} if c["arch"] == "mistral" else {}
        model = build(c, gen, **extra)
        idx = torch.randint(0, c["vocab_size"], (REF_B, REF_T), generator=gen)
        folders = [name]
        dest = os.path.join(hf, name)
        save_folder(model, dest)
        if name == "llama3_tiny_tf4":
            # saved by transformers 5, then the config rewritten in transformers 4's layout
            cfg = tf4_config(json.load(open(os.path.join(dest, "config.json"))))
            with open(os.path.join(dest, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
                f.write("\n")
        l32, l64 = loaded_logits(dest, idx)
        assert rel_err(l32, l64) < 1e-5, f"{name}: float64_throughout changed the logits"
        if name == "llama_tiny":
            # the same weights in shards: a 30 KB limit makes 3 of this 72 KB model
            sharded = os.path.join(hf, "llama_tiny_sharded")
            save_folder(model, sharded, max_shard_size="30KB")
            n_shards = len([f for f in os.listdir(sharded) if f.startswith("model-")])
            assert n_shards >= 2 and os.path.exists(os.path.join(sharded, "model.safetensors.index.json"))
            # the same weights with transformers 4's config.json
            tf4 = os.path.join(hf, "llama_tiny_tf4")
            save_folder(model, tf4)
            cfg = tf4_config(json.load(open(os.path.join(tf4, "config.json"))))
            with open(os.path.join(tf4, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
                f.write("\n")
            for d in (sharded, tf4):
                a32, a64 = loaded_logits(d, idx)
                assert torch.equal(a32, l32) and torch.equal(a64, l64), f"{d} does not load as {dest} does"
            folders += ["llama_tiny_sharded", "llama_tiny_tf4"]
        for f in folders:
            written.append((f"tests/fixtures/hf/{f}/", folder_size(os.path.join(hf, f))))
        if name != "mistral_window":  # refused by tern, so it needs no reference logits
            ref = write_ref(name, folders, idx, l32, l64, c)
            written.append((os.path.relpath(ref, ROOT), os.path.getsize(ref)))
        print(f"hf/{name}: float32 logits vs float64 {rel_err(l32, l64):.2g}; folders {', '.join(folders)}")
    for path, size in written:
        print(f"{path} ({size} bytes)")


if __name__ == "__main__":
    torch.manual_seed(0)  # transformers' own initialisation, overwritten by build(), draws from it
    for n, c in SHAPES.items():
        make(n, c)
    make_hf()
