/* Reading a tokenizer folder: GPT-2's vocabulary (vocab.json / encoder.json: token text -> id,
 * each byte written as one character of bytes_to_unicode) and merges (merges.txt / vocab.bpe:
 * an optional "#version" line, then one "left right" pair per line, in rank order), as OpenAI's
 * encoder.py and Hugging Face's GPT-2 tokenizer read them. Not a general JSON or HF tokenizer.json
 * reader. Every problem is an error naming the file (and the line, for merges). */
#include "tok/tok_int.h"

#include "tern/secure.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char eot_text[] = "<|endoftext|>";

/* The byte that a character of GPT-2's files stands for, or -1. */
static int char_to_byte(uint32_t cp) {
    if (cp < 256) return tok_byte_printable(cp) ? (int)cp : -1;
    if (cp > 323) return -1;
    uint32_t k = cp - 256;
    return (int)(k <= 32 ? k : k <= 66 ? k + 94 : 173);
}

/* Turns token text (UTF-8, GPT-2 characters) into bytes: out needs n bytes. Returns the
 * length, or -1 with *bad set to the offending code point (TOK_INVALID for bad UTF-8). */
static long text_to_bytes(uint8_t *out, const char *text, size_t n, uint32_t *bad) {
    const uint8_t *p = (const uint8_t *)text, *end = p + n;
    long k = 0;
    while (p < end) {
        uint32_t cp;
        p += tok_utf8(p, end, &cp);
        int b = cp == TOK_INVALID ? -1 : char_to_byte(cp);
        if (b < 0) {
            *bad = cp;
            return -1;
        }
        out[k++] = (uint8_t)b;
    }
    return k;
}

/* ---- loading ---- */

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p *= 2;
    return p;
}

static void describe_cp(char *out, size_t n, uint32_t cp) {
    if (cp == TOK_INVALID) snprintf(out, n, "a byte that is not UTF-8");
    else snprintf(out, n, "U+%04X", (unsigned)cp);
}

/* Pass 1: ids valid and distinct, and each token's length bounded by its key's UTF-8 bytes
 * (kept in tok_off[id + 1] for pass 2). */
static tern_status vocab_ids(tern_tok *tok, const cJSON *root, const char *name, size_t *maxlen) {
    size_t nv = tok->n_vocab;
    *maxlen = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        double d = it->valuedouble;
        /* range before the cast: converting a double outside int64_t's range is undefined */
        if (!cJSON_IsNumber(it) || d < 0 || d >= (double)nv || d != (double)(int64_t)d)
            return tern_err(TERN_EFORMAT, "%s: token \"%s\" has id %s; ids must be whole numbers from 0 to %zu", name, it->string,
                            cJSON_IsNumber(it) ? "out of range" : "that is not a number", nv - 1);
        size_t id = (size_t)d;
        if (tok->tok_off[id + 1]) return tern_err(TERN_EFORMAT, "%s: id %zu is given to two tokens", name, id);
        size_t len = strlen(it->string);
        if (len == 0) return tern_err(TERN_EFORMAT, "%s: token with id %zu is empty", name, id);
        tok->tok_off[id + 1] = len;
        if (len > *maxlen) *maxlen = len;
    }
    return TERN_OK; /* nv distinct ids in [0, nv): every id is there */
}

/* Pass 2: each token's bytes, decoded from GPT-2's characters into a slot of its upper-bound
 * length, then compacted down to the final offsets (which never exceed the slots' starts). */
static tern_status vocab_bytes(tern_tok *tok, const cJSON *root, const char *name, size_t maxlen) {
    size_t nv = tok->n_vocab;
    uint64_t total = 0;
    for (size_t i = 0; i < nv; i++) total += tok->tok_off[i + 1];
    tok->blob = malloc(total ? total : 1);
    uint8_t *scratch = malloc(maxlen + 1);
    uint64_t *start = calloc(nv, sizeof(uint64_t));
    tern_status st = tok->blob && scratch && start ? TERN_OK : tern_err(TERN_ENOMEM, "%s: out of memory for token bytes", name);
    uint64_t acc = 0;
    for (size_t i = 0; st == TERN_OK && i < nv; i++) {
        start[i] = acc;
        acc += tok->tok_off[i + 1];
    }
    for (const cJSON *it = root->child; st == TERN_OK && it; it = it->next) {
        size_t id = (size_t)it->valuedouble;
        uint32_t bad = 0;
        long k = text_to_bytes(scratch, it->string, strlen(it->string), &bad);
        if (k < 0) {
            char what[48];
            describe_cp(what, sizeof what, bad);
            st = tern_err(TERN_EFORMAT, "%s: token \"%s\" (id %zu) has %s, which is not one of GPT-2's 256 byte characters", name,
                          it->string, id, what);
            break;
        }
        memcpy(tok->blob + start[id], scratch, (size_t)k);
        tok->tok_off[id + 1] = (uint64_t)k;
    }
    if (st == TERN_OK) {
        uint64_t off = 0;
        for (size_t i = 0; i < nv; i++) {
            uint64_t len = tok->tok_off[i + 1];
            memmove(tok->blob + off, tok->blob + start[i], len);
            tok->tok_off[i] = off;
            off += len;
        }
        tok->tok_off[nv] = off;
    }
    free(start);
    free(scratch);
    return st;
}

/* The bytes -> id table, refusing two tokens of the same bytes; then the 256 single bytes and
 * <|endoftext|>, which a byte-level vocabulary must have. */
static tern_status vocab_index(tern_tok *tok, const char *name) {
    size_t nv = tok->n_vocab, cap = pow2_at_least(nv * 2);
    tok->bytes_map = calloc(cap, sizeof(uint32_t));
    if (!tok->bytes_map) return tern_err(TERN_ENOMEM, "%s: out of memory", name);
    tok->bytes_mask = cap - 1;
    for (size_t id = 0; id < nv; id++) {
        const uint8_t *p = tok->blob + tok->tok_off[id];
        size_t len = (size_t)(tok->tok_off[id + 1] - tok->tok_off[id]);
        int32_t other = tok_lookup(tok, p, len);
        if (other >= 0) return tern_err(TERN_EFORMAT, "%s: tokens %d and %zu stand for the same bytes", name, other, id);
        size_t i = (size_t)tok_hash_bytes(p, len) & tok->bytes_mask;
        while (tok->bytes_map[i]) i = (i + 1) & tok->bytes_mask;
        tok->bytes_map[i] = (uint32_t)id + 1;
    }
    for (unsigned b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        tok->byte_id[b] = tok_lookup(tok, &c, 1);
        if (tok->byte_id[b] < 0) {
            char t[4];
            size_t k = tok_bytes_to_text(t, &c, 1, 0);
            return tern_err(TERN_EFORMAT, "%s: no token for byte 0x%02X (\"%.*s\"); a byte-level vocabulary needs all 256", name, b,
                            (int)k, t);
        }
    }
    tok->eot = tok_lookup(tok, (const uint8_t *)eot_text, strlen(eot_text));
    if (tok->eot < 0) return tern_err(TERN_EFORMAT, "%s: no <|endoftext|> token; tern needs it to separate documents", name);
    return TERN_OK;
}

static tern_status load_vocab(tern_tok *tok, const char *text, size_t n, const char *name) {
    cJSON *root = cJSON_ParseWithLength(text, n);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text && at <= text + n ? (long)(at - text) : -1;
        return tern_err(TERN_EFORMAT, "%s: not valid JSON (error near byte %ld)", name, off);
    }
    size_t nv = (size_t)cJSON_GetArraySize(root), maxlen = 0;
    tern_status st = TERN_OK;
    if (!cJSON_IsObject(root)) st = tern_err(TERN_EFORMAT, "%s: expected a JSON object of token -> id", name);
    else if (nv < 257 || nv > (size_t)INT32_MAX)
        st = tern_err(TERN_EFORMAT, "%s: %zu tokens; a byte-level vocabulary has at least 257 (256 bytes and <|endoftext|>)", name, nv);
    if (st == TERN_OK) {
        tok->n_vocab = nv;
        tok->tok_off = calloc(nv + 1, sizeof(uint64_t));
        if (!tok->tok_off) st = tern_err(TERN_ENOMEM, "%s: out of memory for %zu tokens", name, nv);
    }
    if (st == TERN_OK) st = vocab_ids(tok, root, name, &maxlen);
    if (st == TERN_OK) st = vocab_bytes(tok, root, name, maxlen);
    if (st == TERN_OK) st = vocab_index(tok, name);
    cJSON_Delete(root);
    return st;
}

static void merge_insert(tern_tok *tok, uint64_t key, uint32_t rank, int32_t result) {
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & tok->merge_mask;
    while (tok->merges[i].key != UINT64_MAX) i = (i + 1) & tok->merge_mask;
    tok->merges[i].key = key;
    tok->merges[i].rank = rank;
    tok->merges[i].result = result;
}

/* One side of a merge line as a token id, or an error. */
static tern_status merge_side(const tern_tok *tok, const char *s, size_t n, const char *name, size_t line, uint8_t *buf,
                              size_t *blen, int32_t *id) {
    uint32_t bad = 0;
    long k = text_to_bytes(buf, s, n, &bad);
    if (k < 0) {
        char what[48];
        describe_cp(what, sizeof what, bad);
        return tern_err(TERN_EFORMAT, "%s:%zu: \"%.*s\" has %s, which is not one of GPT-2's 256 byte characters", name, line,
                        (int)n, s, what);
    }
    *blen = (size_t)k;
    *id = tok_lookup(tok, buf, (size_t)k);
    if (*id < 0) return tern_err(TERN_EFORMAT, "%s:%zu: \"%.*s\" is not in the vocabulary", name, line, (int)n, s);
    return TERN_OK;
}

static tern_status load_merges(tern_tok *tok, const char *text, size_t n, const char *name) {
    /* count lines for the table size */
    size_t lines = 1;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    size_t cap = pow2_at_least(lines * 2);
    tok->merges = malloc(cap * sizeof(tok_merge));
    uint8_t *buf = malloc(n + 1);
    if (!tok->merges || !buf) {
        free(buf);
        return tern_err(TERN_ENOMEM, "%s: out of memory for %zu merges", name, lines);
    }
    for (size_t i = 0; i < cap; i++) tok->merges[i].key = UINT64_MAX;
    tok->merge_mask = cap - 1;
    tern_status st = TERN_OK;
    size_t pos = 0, line = 0;
    uint32_t rank = 0;
    while (pos < n) {
        line++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - s) : n - pos;
        pos += len + (nl ? 1 : 0);
        if (len && s[len - 1] == '\r') len--;
        if (line == 1 && len >= 8 && memcmp(s, "#version", 8) == 0) continue;
        if (len == 0 && pos >= n) break; /* the final newline */
        const char *sp = memchr(s, ' ', len);
        if (!sp || sp == s || sp + 1 == s + len || memchr(sp + 1, ' ', (size_t)(s + len - sp - 1))) {
            st = tern_err(TERN_EFORMAT, "%s:%zu: expected two tokens separated by one space, found \"%.*s\"", name, line,
                          (int)(len > 60 ? 60 : len), s);
            break;
        }
        size_t na, nb;
        int32_t a, b;
        if ((st = merge_side(tok, s, (size_t)(sp - s), name, line, buf, &na, &a)) != TERN_OK) break;
        /* the right side's bytes land after the left's: buf then holds the merged token */
        if ((st = merge_side(tok, sp + 1, (size_t)(s + len - sp - 1), name, line, buf + na, &nb, &b)) != TERN_OK) break;
        int32_t r = tok_lookup(tok, buf, na + nb);
        if (r < 0) {
            st = tern_err(TERN_EFORMAT, "%s:%zu: the merge \"%.*s\" makes a token that is not in the vocabulary", name, line,
                          (int)len, s);
            break;
        }
        const tok_merge *m = tok_find_merge(tok, a, b);
        if (m) {
            st = tern_err(TERN_EFORMAT, "%s:%zu: the merge \"%.*s\" repeats an earlier line", name, line, (int)len, s);
            break;
        }
        merge_insert(tok, (uint64_t)(uint32_t)a << 32 | (uint32_t)b, rank++, r);
    }
    tok->n_merges = rank;
    free(buf);
    return st;
}

/* Marks the tokens that a piece equal to them encodes to directly (BPE of their bytes gives
 * themselves). For GPT-2's files that is every token but <|endoftext|>. */
static tern_status find_whole_tokens(tern_tok *tok) {
    tok->whole = calloc(tok->n_vocab, 1);
    if (!tok->whole) return tern_err(TERN_ENOMEM, "out of memory");
    tok_worker *w;
    TERN_TRY(tok_worker_init(&w, tok));
    tern_ids ids = {0};
    tern_status st = TERN_OK;
    for (size_t id = 0; id < tok->n_vocab && st == TERN_OK; id++) {
        ids.n = 0;
        st = tok_bpe_piece(w, tok->blob + tok->tok_off[id], (size_t)(tok->tok_off[id + 1] - tok->tok_off[id]), &ids);
        tok->whole[id] = st == TERN_OK && ids.n == 1 && ids.p[0] == (int32_t)id;
    }
    tern_ids_free(&ids);
    tok_worker_free(w);
    return st;
}

/* The tokenizer's identity (docs/FORMATS.md "Tokenizer folder"): BLAKE2b-256 of what it does,
 * not of how its files spell it, so that a tokenizer rewritten by another program (vocab.json
 * with raw UTF-8 instead of \u escapes, another key order, no #version line, GPT-2's or Hugging
 * Face's file names) keeps it: "tern-tokenizer-2\n"; the number of tokens; for each id in order,
 * its length and bytes; the number of merges; for each merge in rank order, its two ids; the id
 * of <|endoftext|>. Every number is 8 bytes, little-endian. */
static void put_u64(tern_hasher *h, uint64_t v) {
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
    tern_hash_update(h, le, 8);
}

static tern_status tok_hash_content(tern_tok *tok) {
    uint64_t *by_rank = malloc((tok->n_merges ? tok->n_merges : 1) * sizeof(uint64_t));
    if (!by_rank) return tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; i <= tok->merge_mask; i++)
        if (tok->merges[i].key != UINT64_MAX) by_rank[tok->merges[i].rank] = tok->merges[i].key;
    tern_hasher h;
    tern_hash_init(&h);
    static const char tag[] = "tern-tokenizer-2\n";
    tern_hash_update(&h, tag, sizeof tag - 1);
    put_u64(&h, tok->n_vocab);
    for (size_t id = 0; id < tok->n_vocab; id++) {
        uint64_t len = tok->tok_off[id + 1] - tok->tok_off[id];
        put_u64(&h, len);
        tern_hash_update(&h, tok->blob + tok->tok_off[id], (size_t)len);
    }
    put_u64(&h, tok->n_merges);
    for (size_t r = 0; r < tok->n_merges; r++) {
        put_u64(&h, by_rank[r] >> 32);
        put_u64(&h, by_rank[r] & 0xFFFFFFFFu);
    }
    put_u64(&h, (uint64_t)tok->eot);
    tern_hash_final(&h, tok->hash);
    free(by_rank);
    return TERN_OK;
}

/* The older identity, still recorded by data folders and runs made before the one above: BLAKE2b-256
 * of "tern-tokenizer-1\n", then for the vocabulary and then the merges file, its length as 8
 * little-endian bytes and its bytes. */
static void tok_hash_files(uint8_t out[TERN_HASH_BYTES], const char *vocab, size_t vocab_n, const char *merges,
                           size_t merges_n) {
    tern_hasher h;
    tern_hash_init(&h);
    static const char tag[] = "tern-tokenizer-1\n";
    tern_hash_update(&h, tag, sizeof tag - 1);
    put_u64(&h, vocab_n);
    tern_hash_update(&h, vocab, vocab_n);
    put_u64(&h, merges_n);
    tern_hash_update(&h, merges, merges_n);
    tern_hash_final(&h, out);
}

tern_status tern_tok_from_buffers(tern_tok **out, const char *vocab, size_t vocab_n, const char *vocab_name,
                                  const char *merges, size_t merges_n, const char *merges_name) {
    *out = NULL;
    tern_tok *tok = calloc(1, sizeof *tok);
    if (!tok) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = load_vocab(tok, vocab, vocab_n, vocab_name);
    if (st == TERN_OK) st = load_merges(tok, merges, merges_n, merges_name);
    if (st == TERN_OK) st = find_whole_tokens(tok);
    if (st == TERN_OK) st = tok_hash_content(tok);
    if (st != TERN_OK) {
        tern_tok_free(tok);
        return st;
    }
    tok_hash_files(tok->file_hash, vocab, vocab_n, merges, merges_n);
    *out = tok;
    return TERN_OK;
}

/* Picks the two files of a tokenizer folder: vocab.json + merges.txt (Hugging Face's names)
 * if vocab.json exists, else encoder.json + vocab.bpe (GPT-2's). */
static tern_status tok_files(const char *dir, char **vpath, char **mpath) {
    *vpath = *mpath = NULL;
    if (!tern_path_exists(dir)) return tern_err(TERN_ENOTFOUND, "%s: no such tokenizer folder", dir);
    char *v = tern_path_join(dir, "vocab.json"), *m = NULL;
    if (v && tern_path_exists(v)) {
        m = tern_path_join(dir, "merges.txt");
    } else if (v) {
        free(v);
        v = tern_path_join(dir, "encoder.json");
        if (v && !tern_path_exists(v)) {
            free(v);
            return tern_err(TERN_ENOTFOUND, "%s: no tokenizer here: expected vocab.json and merges.txt, or encoder.json and vocab.bpe",
                            dir);
        }
        m = tern_path_join(dir, "vocab.bpe");
    }
    if (!v || !m) {
        free(v);
        free(m);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    *vpath = v;
    *mpath = m;
    return TERN_OK;
}

/* One tokenizer file: a sealed one is decrypted in memory with key (identity "tokenizer
 * vocab.json" or "tokenizer merges.txt"; without a key it is refused, naming the file); a plain
 * one is read as it is, with or without a key, since a tokenizer is public (GPT-2's, or one the
 * user names). The bytes are copied out of the wiped plaintext into malloc'd memory. */
static tern_status read_tok_file(const char *path, const tern_key *key, const char *identity, char **out, size_t *n) {
    *out = NULL;
    *n = 0;
    int sealed = 0;
    tern_status st = tern_sealed_probe(path, &sealed);
    if (st != TERN_OK || !sealed) return tern_read_file(path, out, n);
    tern_plain pl = {0};
    TERN_TRY(tern_secure_read_file(&pl, path, key, identity));
    *out = malloc(pl.size + 1);
    if (!*out) {
        tern_plain_free(&pl);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    if (pl.size) memcpy(*out, pl.data, pl.size);
    (*out)[pl.size] = 0;
    *n = pl.size;
    tern_plain_free(&pl);
    return TERN_OK;
}

static tern_status read_tok_pair(const char *dir, const tern_key *key, char **vp, char **mp, char **vt, size_t *vn, char **mt,
                                 size_t *mn) {
    TERN_TRY(tok_files(dir, vp, mp));
    tern_status st = read_tok_file(*vp, key, "tokenizer vocab.json", vt, vn);
    if (st == TERN_OK) st = read_tok_file(*mp, key, "tokenizer merges.txt", mt, mn);
    return st;
}

tern_status tern_tok_load(tern_tok **out, const char *dir, const tern_key *key) {
    *out = NULL;
    char *vp = NULL, *mp = NULL, *vt = NULL, *mt = NULL;
    size_t vn = 0, mn = 0;
    tern_status st = read_tok_pair(dir, key, &vp, &mp, &vt, &vn, &mt, &mn);
    if (st == TERN_OK) st = tern_tok_from_buffers(out, vt, vn, vp, mt, mn, mp);
    free(vt);
    free(mt);
    free(vp);
    free(mp);
    return st;
}


tern_status tern_tok_hash_dir(uint8_t out[TERN_HASH_BYTES], const char *dir, const tern_key *key) {
    tern_tok *tok;
    TERN_TRY(tern_tok_load(&tok, dir, key));
    memcpy(out, tok->hash, TERN_HASH_BYTES);
    tern_tok_free(tok);
    return TERN_OK;
}
