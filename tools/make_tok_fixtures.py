#!/usr/bin/env python3
"""Writes tests/fixtures/tok/: GPT-2 tokenizer test vectors with ids from independent
implementations, and a BPE-training reference, for tests/test_tok.c.

Not used by the tests at run time (they are C and need no Python). Sources of truth:
  - tiktoken (PyPI), its "gpt2" encoding rebuilt from the local data/gpt2/ files (not downloaded);
  - Hugging Face GPT2TokenizerFast (PyPI `transformers`/`tokenizers`) on the same files;
  - OpenAI's encoder.py algorithm (the `regex` module and merge-rank BPE, re-typed here) for
    text that is not valid UTF-8, which the other two cannot take: bytes are decoded with
    errors="surrogateescape", so each invalid byte is one character of its own.
Every valid-UTF-8 case must get the same ids from all three, or the tool stops; the one place
they differ by design is "<|endoftext|>" inside text, which Hugging Face turns into id 50256
and OpenAI's encoder (and tiktoken's encode_ordinary, and tern) encode as plain text.

usage: python3 tools/make_tok_fixtures.py   (run from the repository root)
"""
import json
import os
import random
import sys

import regex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPT2 = os.path.join(ROOT, "data", "gpt2")
OUT = os.path.join(ROOT, "tests", "fixtures", "tok")
PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()


class Gpt2Reference:
    """encoder.py's Encoder.encode, over bytes (surrogateescape for invalid UTF-8)."""

    def __init__(self, encoder, merges):
        self.encoder = encoder
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.pat = regex.compile(PATTERN)
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new.extend(word[i:])
                    break
                new.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        self.cache[token] = word
        return word

    def encode(self, data: bytes):
        text = data.decode("utf-8", "surrogateescape")
        ids = []
        for piece in self.pat.findall(text):
            t = "".join(B2U[b] for b in piece.encode("utf-8", "surrogateescape"))
            ids.extend(self.encoder[w] for w in self.bpe(t))
        return ids


def load_gpt2():
    encoder = json.load(open(os.path.join(GPT2, "encoder.json"), encoding="utf-8"))
    lines = open(os.path.join(GPT2, "vocab.bpe"), encoding="utf-8").read().split("\n")[1:-1]
    merges = [tuple(l.split()) for l in lines]
    return encoder, merges


def load_tiktoken():
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    ranks = data_gym_to_mergeable_bpe_ranks(os.path.join(GPT2, "vocab.bpe"), os.path.join(GPT2, "encoder.json"))
    pat = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    return tiktoken.Encoding(name="gpt2_local", pat_str=pat, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def load_hf(tmp):
    import shutil
    from transformers import GPT2TokenizerFast
    os.makedirs(tmp, exist_ok=True)
    shutil.copy(os.path.join(GPT2, "encoder.json"), os.path.join(tmp, "vocab.json"))
    shutil.copy(os.path.join(GPT2, "vocab.bpe"), os.path.join(tmp, "merges.txt"))
    return GPT2TokenizerFast.from_pretrained(tmp)


# Hand-picked cases: scripts, emoji (with joiners, modifiers, flags), combining marks, every
# kind of space, CRLF, runs of spaces and digits, contractions in and out of the pattern.
HAND = [
    "", " ", "  ", "\n", "\n\n", "\r\n", "\r\n\r\n", "\t", " \t ", "a", "Hello world", " Hello world",
    "Hello  world", "Hello   world", "Hello    world\n", "hello\n\n\nworld", "line one\r\nline two\r\n",
    "   leading spaces", "trailing spaces   ", "trailing newline\n", "tabs\tand\tspaces \t x",
    "don't can't won't I'm you're we've they'll he'd it's", "DON'T I'LL WE'VE", "'s 's' 'S ''s '''",
    "rock 'n' roll", "’s ‘quoted’ “double”", "1 12 123 1234 12345 123456789012345", "3.14159 2,718 1e10 -42 +7",
    "0000000000000000", "x1 a2b3 42nd 1st", "٣٤٥ ½ Ⅻ ² ³ ௧௨", "$100.00, €50 £20 ¥1000",
    "Ünïcödé façade naïve coöperate résumé", "Führer Straße Ærøskøbing", "Привет мир! Как дела?",
    "Γειά σου Κόσμε", "שלום עולם", "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีชาวโลก",
    "日本語のテキストです。東京都", "中文文本，包括标点符号！", "한국어 텍스트입니다", "ｆｕｌｌｗｉｄｔｈ　ｓｐａｃｅ",
    "e\u0301 a\u0308 n\u0303 Z\u0351\u0352\u0353 ḁ̶̢", "e\u0301\u0301\u0301\u0301", "\u00e9 vs e\u0301",
    "😀 😃 😄 😁", "👍🏽👍🏿", "👨\u200d👩\u200d👧\u200d👦 family", "🇫🇷🇩🇪🇯🇵", "❤\ufe0f ☺ ✓ ✗", "🤖🦜🪿",
    "a\u00a0b\u00a0\u00a0c", "x\u3000y\u3000\u3000z", "p\u2009q\u200ar\u202fs\u205ft", "u\u200bv\u200cw\u200dx",
    "\u2028\u2029 separators", "\x0b\x0c vertical", "\x85 next line", "\x1c\x1d\x1e\x1f unit separators",
    "\x00\x01\x02 control \x7f", "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|> <|endoftext|>",
    "<html><body class=\"x\">&amp;</body></html>", "def f(x):\n    return x**2  # square\n",
    "int main(void) { return 0; }\n", "https://example.com/path?q=1&r=2#frag", "user@example.com",
    "!!!??? ... --- *** ___ ~~~", "a-b_c.d,e;f:g", "(parenthesis) [brackets] {braces}",
    "    indented\n        more\n\tless", "The quick brown fox jumps over the lazy dog. " * 3,
    "Ĳ ĳ ŉ ǅ ǈ ǋ", "ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚", "\ud7ff\ue000\uffef\U0010fffd", " 's", "x 's", " ' s", "\u3000'll",
]

POOL = [
    "a", "b", "Z", "é", "ß", "ñ", "日", "本", "語", "中", "한", "ا", "я", "Ж", "ü", "\u0301", "\u0308", "\u20dd",
    "0", "1", "9", "٣", "½", "Ⅳ", "²", " ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2009",
    "\u200b", "\x0b", "\x85", "\x1c", "'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "’s", "!", ".", ",",
    "?", "-", "—", "…", "“", "(", "$", "#", "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "Hello", " world", "don't",
    "I'LL", "   ", "1234567", "3.14",
]


def random_cases(rng, n):
    out = []
    for _ in range(n):
        s = "".join(rng.choice(POOL) for _ in range(rng.randint(1, 14)))
        out.append(s.encode("utf-8"))
    return out


def invalid_cases(rng, n):
    out = [b"\xff", b"\xc3", b"\xc3(", b"a\x80b", b"\xe2\x82", b"\xe2\x82\xac\xe2\x82", b"\xed\xa0\x80 surrogate",
           b"\xf4\x90\x80\x80 above", b"\xc0\xaf overlong", b"\xf8\x88\x80\x80\x80", b" \xff\xfe\xfd", b"'\xffs",
           b"don\x92t", b"caf\xe9 latin-1", b"\x80\x80\x80 world"]
    for _ in range(n):
        b = bytearray("".join(rng.choice(POOL) for _ in range(rng.randint(1, 10))).encode("utf-8"))
        for _ in range(rng.randint(1, 3)):
            b.insert(rng.randint(0, len(b)), rng.randint(0x80, 0xFF))
        out.append(bytes(b))
    return out


def long_text():
    """A ~24 KB text with long pieces: the quadratic and the heap BPE paths both run."""
    rng = random.Random(11)
    parts = []
    for _ in range(120):
        parts.append("".join(rng.choice(POOL) for _ in range(rng.randint(5, 40))))
    parts.append("a" * 700)
    parts.append(" " + "".join(rng.choice("abcdefghij") for _ in range(2000)))
    parts.append("1" * 600)
    parts.append(" " * 500 + "x")
    parts.append("中文" * 300)
    parts.append("\n" * 300)
    parts.append("!?" * 400)
    return "".join(parts).encode("utf-8")


# ---- a reference BPE trainer (slow and plain) for tern's training rules ----

def order_of_bytes():
    """GPT-2's id order of the 256 byte tokens (bytes_to_unicode's order)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    return bs + [b for b in range(256) if b not in bs]


def train_reference(data: bytes, vocab_size: int):
    """Count pieces; merge the most frequent pair, ties to the smaller (left id, right id); a merge
    whose bytes already are a token reuses that id; stop at vocab_size - 1 tokens (then
    <|endoftext|>) or when no pair is left. Returns the list of tokens (bytes) and merges."""
    pat = regex.compile(PATTERN)
    counts = {}
    for piece in pat.findall(data.decode("utf-8", "surrogateescape")):
        b = piece.encode("utf-8", "surrogateescape")
        counts[b] = counts.get(b, 0) + 1
    tokens = [bytes([b]) for b in order_of_bytes()]
    tid = {t: i for i, t in enumerate(tokens)}
    words = [[tid[bytes([c])] for c in w] for w in counts]
    wc = list(counts.values())
    merges = []
    while len(tokens) < vocab_size - 1:
        pc = {}
        for w, c in zip(words, wc):
            for p in zip(w, w[1:]):
                pc[p] = pc.get(p, 0) + c
        if not pc:
            break
        best = min(pc, key=lambda p: (-pc[p], p))
        a, b = best
        nb = tokens[a] + tokens[b]
        if nb in tid:
            x = tid[nb]
        else:
            x = len(tokens)
            tokens.append(nb)
            tid[nb] = x
        merges.append((a, b))
        for k, w in enumerate(words):
            i, nw = 0, []
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    nw.append(x)
                    i += 2
                else:
                    nw.append(w[i])
                    i += 1
            words[k] = nw
    return tokens, merges


def gpt2_text(b: bytes):
    return "".join(B2U[x] for x in b)


def write_trained(tokens, merges, vocab_path, merges_path):
    with open(vocab_path, "w", encoding="utf-8") as f:
        vocab = {gpt2_text(t): i for i, t in enumerate(tokens)}
        vocab["<|endoftext|>"] = len(tokens)
        json.dump(vocab, f, ensure_ascii=False)
    with open(merges_path, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{gpt2_text(tokens[a])} {gpt2_text(tokens[b])}\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    encoder, merges = load_gpt2()
    ref = Gpt2Reference(encoder, merges)
    tk = load_tiktoken()
    hf = load_hf(os.path.join("/tmp", "tern-tok-fixtures-hf"))
    rng = random.Random(20240501)

    rows = []
    valid = [s.encode("utf-8") for s in HAND] + random_cases(rng, 400) + [long_text()]
    hf_special = 0
    for b in valid:
        s = b.decode("utf-8")
        a = tk.encode_ordinary(s)
        r = ref.encode(b)
        h = hf.encode(s)
        if a != r:
            sys.exit(f"tiktoken and encoder.py differ on {s!r}")
        if h != r:
            if "<|endoftext|>" in s:
                hf_special += 1  # HF makes it the special token; OpenAI's encoder does not
            else:
                sys.exit(f"Hugging Face and encoder.py differ on {s!r}")
        rows.append((b, r, "tiktoken+hf+encoder.py" if h == r else "tiktoken+encoder.py"))
    for b in invalid_cases(rng, 150):
        rows.append((b, ref.encode(b), "encoder.py+surrogateescape"))

    with open(os.path.join(OUT, "gpt2_cases.tsv"), "w") as f:
        f.write("# hex of the text bytes <TAB> GPT-2 ids <TAB> which implementations agreed; "
                "made by tools/make_tok_fixtures.py\n")
        for b, ids, src in rows:
            f.write(f"{b.hex()}\t{' '.join(map(str, ids))}\t{src}\n")
    print(f"gpt2_cases.tsv: {len(rows)} cases ({hf_special} where HF maps <|endoftext|> to the special id)")

    # training reference: a small public-domain text (Shakespeare's plays), vocabulary 400
    src = "/work/shared/data/tinyshakespeare/input.txt"
    data = open(src, "rb").read()[:30000]
    data += "\n日本語 ｶﾀｶﾅ 123 4567 😀😀 naïve\r\n".encode() * 5 + b"\xff\xfe bytes\n"
    with open(os.path.join(OUT, "train_small.txt"), "wb") as f:
        f.write(data)
    tokens, tmerges = train_reference(data, 400)
    write_trained(tokens, tmerges, os.path.join(OUT, "train_small_vocab.json"), os.path.join(OUT, "train_small_merges.txt"))
    print(f"train_small: {len(data)} bytes, {len(tokens) + 1} tokens, {len(tmerges)} merges")


if __name__ == "__main__":
    main()
