#!/usr/bin/env python3
"""check_gguf_llama.py: checks tern's GGUF export of the Llama family against llama.cpp.

For a random LlamaForCausalLM (grouped-query attention, untied head) and a random
Qwen2ForCausalLM (q/k/v biases, tied head), each made with transformers and GPT-2's tokenizer
(the tokenizer every tern model uses):
  1. tern loads the Hugging Face folder and gives transformers' logits;
  2. `tern export HFDIR -o F.gguf --type f32|f16|q8_0` gives the same metadata (all but
     general.name and the converter's naming keys) and the same tensors, byte for byte, as
     llama.cpp's own convert_hf_to_gguf.py run on that folder (--llama-src);
  3. tern loads the converter's f32 GGUF and gives transformers' logits;
  4. with llama-cpp-python installed, llama.cpp's logits for the tern GGUF (f32, f32 KV cache)
     against transformers'.
Each line of output is "ok ..." or "FAIL ..."; the exit status is 1 on any FAIL.

Usage:
  python3 tools/check_gguf_llama.py --llama-src LLAMA_CPP_DIR [--tern build/tern]
                                    [--tokenizer data/gpt2] [--workdir DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

FAILS = []


def ok(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)
    return cond


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("command failed:", " ".join(cmd), "\n", r.stdout, r.stderr, file=sys.stderr)
        raise SystemExit(1)
    return r.stdout


def tern_logits(tern, model, tokens, out):
    from safetensors.numpy import load_file

    run([tern, "logits", model, "--tokens", " ".join(map(str, tokens)), "-o", out])
    return load_file(out)["logits"]


def make_model(kind, path, tokdir, seed):
    """A random model of the family, norms and biases made non-trivial, saved with save_pretrained
    beside GPT-2's tokenizer files."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    common = dict(vocab_size=50257, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=64, rms_norm_eps=1e-6, bos_token_id=50256, eos_token_id=50256)
    if kind == "llama":
        cfg = LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, rope_theta=500000.0, **common)
        model = LlamaForCausalLM(cfg)
    else:
        cfg = Qwen2Config(num_key_value_heads=1, tie_word_embeddings=True, rope_theta=1000000.0, **common)
        model = Qwen2ForCausalLM(cfg)
    model.eval()
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(path)
    for a, b in (("vocab.json", "encoder.json"), ("merges.txt", "vocab.bpe")):  # OpenAI's names are the second
        shutil.copy(os.path.join(tokdir, a if os.path.exists(os.path.join(tokdir, a)) else b), os.path.join(path, a))
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                   "unk_token": "<|endoftext|>", "model_max_length": 64}, f)
    return model


def compare_files(a_path, b_path, what):
    import gguf

    a, b = gguf.GGUFReader(a_path), gguf.GGUFReader(b_path)
    # the converter's naming keys (from the folder name and parameter count) and the key count
    skip = {"general.name", "general.size_label", "general.basename", "general.finetune", "GGUF.kv_count"}
    ka, kb = set(a.fields) - skip, set(b.fields) - skip
    diff = sorted(k for k in ka & kb if a.fields[k].contents() != b.fields[k].contents() or a.fields[k].types != b.fields[k].types)
    ok(ka == kb and not diff, f"{what}: tern's metadata = the converter's (missing {sorted(kb - ka)}, extra {sorted(ka - kb)}, "
                              f"differing {diff})")
    ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
    bad = [n for n in ta if n not in tb or ta[n].tensor_type != tb[n].tensor_type or list(ta[n].shape) != list(tb[n].shape)
           or not np.array_equal(np.asarray(ta[n].data).view(np.uint8), np.asarray(tb[n].data).view(np.uint8))]
    ok(set(ta) == set(tb) and not bad, f"{what}: tern's {len(ta)} tensors = the converter's {len(tb)}, byte for byte"
                                       + (f" (differ: {bad[:6]})" if bad else ""))


def llama_cpp_logits(path, tokens):
    from llama_cpp import Llama

    n = len(tokens)
    llm = Llama(model_path=path, n_ctx=n, logits_all=True, verbose=False, n_threads=2, n_batch=n, n_ubatch=n,
                type_k=0, type_v=0)  # GGML_TYPE_F32 KV cache
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[:n], dtype=np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tern", default="build/tern")
    ap.add_argument("--tokenizer", default="data/gpt2" if os.path.isdir("data/gpt2") else "/work/shared/data/gpt2")
    ap.add_argument("--llama-src", required=True, help="a llama.cpp source tree (its convert_hf_to_gguf.py and gguf-py)")
    ap.add_argument("--workdir")
    a = ap.parse_args()
    import torch

    tern = os.path.abspath(a.tern)
    work = a.workdir or tempfile.mkdtemp(prefix="check_gguf_llama_")
    os.makedirs(work, exist_ok=True)
    tokens = [int(t) for t in np.random.default_rng(5).integers(0, 50257, size=24)]
    rel = lambda x, y: float(np.linalg.norm(x - y) / np.linalg.norm(y))
    for kind, arch in (("llama", "llama"), ("qwen2", "qwen2")):
        hf = os.path.join(work, kind)
        model = make_model(kind, hf, a.tokenizer, seed=11)
        with torch.no_grad():
            ref = model(torch.tensor([tokens])).logits[0].numpy()
        got = tern_logits(tern, hf, tokens, os.path.join(work, f"{kind}_hf.safetensors"))
        ok(float(np.abs(got - ref).max()) < 1e-4, f"{kind}: tern's logits from the Hugging Face folder = transformers' "
                                                  f"(max |diff| {float(np.abs(got - ref).max()):.3g})")
        for typ in ("f32", "f16", "q8_0"):
            mine = os.path.join(work, f"{kind}-tern-{typ}.gguf")
            run([tern, "export", hf, "-o", mine, "--type", typ])
            theirs = os.path.join(work, f"{kind}-converter-{typ}.gguf")
            # transformers 5 gives a qwen2 folder Qwen2Tokenizer whatever tokenizer_config.json says, and
            # the converter then cannot recognise GPT-2's pre-tokenizer: it is run with GPT-2's
            # tokenizer class, as a user converting such a model has to.
            conv = ("import runpy, sys, transformers\n"
                    "transformers.AutoTokenizer.from_pretrained = transformers.GPT2TokenizerFast.from_pretrained\n"
                    f"sys.argv = {[ 'convert_hf_to_gguf.py', hf, '--outfile', theirs, '--outtype', typ]!r}\n"
                    f"runpy.run_path({os.path.join(a.llama_src, 'convert_hf_to_gguf.py')!r}, run_name='__main__')\n")
            r = subprocess.run([sys.executable, "-c", conv], capture_output=True, text=True,
                               env=dict(os.environ, PYTHONPATH=os.pathsep.join([a.llama_src, os.path.join(a.llama_src, "gguf-py")])))
            if not ok(r.returncode == 0, f"{kind}: llama.cpp's convert_hf_to_gguf.py --outtype {typ}"):
                print(r.stderr[-3000:])
                continue
            compare_files(mine, theirs, f"{kind} {typ} (general.architecture {arch})")
            if typ == "f32":
                got = tern_logits(tern, theirs, tokens, os.path.join(work, f"{kind}_conv.safetensors"))
                d = float(np.abs(got - ref).max())
                ok(d < 1e-4, f"{kind}: tern loads the converter's f32 GGUF; logits = transformers' (max |diff| {d:.3g})")
                try:
                    import llama_cpp  # noqa: F401
                except ImportError:
                    print(f"skip {kind}: llama.cpp's logits (llama-cpp-python is not installed)")
                    continue
                lc = llama_cpp_logits(mine, tokens)
                ok(rel(lc, ref) < 1e-4, f"{kind}: llama.cpp's logits for tern's f32 GGUF vs transformers': relative L2 "
                                        f"{rel(lc, ref):.3g}, max |diff| {float(np.abs(lc - ref).max()):.3g}, same argmax at "
                                        f"{float(np.mean(lc.argmax(-1) == ref.argmax(-1))):.0%} of positions")
    print(f"{len(FAILS)} failed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
