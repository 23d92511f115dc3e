/* Any tern model as GGUF for llama.cpp: the family's architecture table (gguf_gpt2.c,
 * gguf_llama.c) says the metadata and each tensor's name and layout; this file writes the file
 * around them: general.* keys, the GPT-2 byte-level BPE tokenizer every tern model uses, and the
 * tensors converted to f32, f16 or q8_0 as they are written. Not a quantised runtime: f16 and q8_0
 * are written for llama.cpp, never computed with here. The choice of which tensors stay f32 follows
 * llama.cpp's convert_hf_to_gguf.py and gguf-py. */
#include "io/gguf_arch.h"
#include "tern/tok.h"

#include <stdlib.h>
#include <string.h>

uint32_t gguf_dims(const tern_tensor *t, int transpose, uint64_t ne[2]) {
    if (t->ndim == 1) {
        ne[0] = t->shape[0];
        return 1;
    }
    ne[0] = transpose ? t->shape[0] : t->shape[1];
    ne[1] = transpose ? t->shape[1] : t->shape[0];
    return 2;
}

/* ---- GPT-2's byte-to-unicode table (OpenAI's encoder.py bytes_to_unicode) ----
 * Printable bytes map to themselves; the others, in order, to U+0100 upwards. vocab.json keys
 * and llama.cpp's token strings are the UTF-8 of these code points. */
static void byte_unicode(uint32_t cp[256]) {
    uint32_t n = 0;
    for (uint32_t b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        cp[b] = keep ? b : 256 + n++;
    }
}

typedef struct {
    tern_model *m;
    const tern_tensor **src; /* per written tensor */
    int *layout;             /* GGUF_* */
    uint32_t *type;
    float *tmp;              /* the largest tensor, rearranged */
    float *host;             /* the largest tensor, read from the backend */
} export_ctx;

/* Rows of a [r, c] matrix permuted within heads of hs rows, as llama.cpp's converter permutes
 * q_proj and k_proj (its rotary embedding pairs neighbouring elements, Hugging Face's pairs i with
 * i + hs/2): row (h, j, i) of (heads, 2, hs/2) is row (h, i, j) in the file. */
void gguf_relayout(float *dst, const float *src, size_t r, size_t c, int layout, size_t heads, int to_file) {
    switch (layout) {
    case GGUF_TRANSPOSE: /* tern's [r][c] is the file's [c][r] */
        for (size_t a = 0; a < r; a++)
            for (size_t b = 0; b < c; b++) {
                if (to_file) dst[b * r + a] = src[a * c + b];
                else dst[a * c + b] = src[b * r + a];
            }
        return;
    case GGUF_ROPE_Q:
    case GGUF_ROPE_K: {
        size_t hs = r / heads, half = hs / 2;
        for (size_t h = 0; h < heads; h++)
            for (size_t j = 0; j < 2; j++)
                for (size_t i = 0; i < half; i++) {
                    size_t tern_row = h * hs + j * half + i, file_row = h * hs + i * 2 + j;
                    memcpy(dst + (to_file ? file_row : tern_row) * c, src + (to_file ? tern_row : file_row) * c, c * sizeof(float));
                }
        return;
    }
    default: memcpy(dst, src, r * c * sizeof(float));
    }
}

static tern_status fill_tensor(void *vctx, size_t i, uint8_t *dst, size_t nbytes) {
    export_ctx *x = vctx;
    const tern_tensor *t = x->src[i];
    TERN_TRY(tern_model_read(x->m, TERN_PARAMS, t->offset, t->numel, x->host));
    size_t n = t->numel, r = t->shape[0], c = t->ndim == 2 ? t->shape[1] : 1;
    const tern_model_config *cfg = tern_model_cfg(x->m);
    const float *p = x->host;
    if (x->layout[i] != GGUF_AS_IS) {
        gguf_relayout(x->tmp, x->host, r, c, x->layout[i], (size_t)(x->layout[i] == GGUF_ROPE_Q ? cfg->n_head : cfg->n_kv_head), 1);
        p = x->tmp;
    }
    switch (x->type[i]) {
    case TERN_GGML_F32:
        TERN_ASSERT(nbytes == n * 4);
        memcpy(dst, p, nbytes);
        break;
    case TERN_GGML_F16:
        TERN_ASSERT(nbytes == n * 2);
        for (size_t k = 0; k < n; k++) {
            uint16_t h = tern_f32_to_f16(p[k]);
            dst[2 * k] = (uint8_t)(h & 0xff);
            dst[2 * k + 1] = (uint8_t)(h >> 8);
        }
        break;
    default:
        TERN_ASSERT(x->type[i] == TERN_GGML_Q8_0 && nbytes == n / 32 * 34);
        tern_q8_0_quantize(dst, p, n);
    }
    return TERN_OK;
}

/* The merges file of a tokenizer folder, as lines "a b" without the "#version" header. The
 * lines point into *text (malloc'd, owned by the caller). */
static tern_status read_merges(const char *tokdir, char **text, const char ***lines, size_t **lens, size_t *n) {
    char *vj = tern_path_join(tokdir, "vocab.json");
    if (!vj) return tern_err(TERN_ENOMEM, "out of memory");
    char *path = tern_path_join(tokdir, tern_path_exists(vj) ? "merges.txt" : "vocab.bpe");
    free(vj);
    if (!path) return tern_err(TERN_ENOMEM, "out of memory");
    size_t size;
    tern_status st = tern_read_file(path, text, &size);
    free(path);
    TERN_TRY(st);
    size_t cap = 1;
    for (size_t i = 0; i < size; i++) cap += (*text)[i] == '\n';
    *lines = malloc(cap * sizeof **lines);
    *lens = malloc(cap * sizeof **lens);
    if (!*lines || !*lens) return tern_err(TERN_ENOMEM, "out of memory for %zu merges", cap);
    *n = 0;
    for (size_t i = 0, first = 1; i < size; first = 0) {
        char *s = *text + i, *nl = memchr(s, '\n', size - i);
        size_t len = nl ? (size_t)(nl - s) : size - i;
        i += len + (nl != NULL);
        if (len && s[len - 1] == '\r') len--;
        if (len == 0 || (first && !strncmp(s, "#version", 8))) continue;
        (*lines)[*n] = s;
        (*lens)[(*n)++] = len;
    }
    return TERN_OK;
}

/* The tokenizer keys: GPT-2's byte-level BPE (tern's tokenizers all are), tokens as
 * byte-to-unicode strings (at most 2 UTF-8 bytes per byte) with their types, the merges, and
 * <|endoftext|> as BOS and EOS. */
static tern_status add_tokenizer(tern_gguf_writer *w, const tern_tok *tok, const char *tokdir) {
    size_t V = tern_tok_vocab_size(tok), n_merges = 0;
    char *mtext = NULL, **toks = calloc(V, sizeof *toks);
    const char **mlines = NULL;
    size_t *mlens = NULL, *tlens = calloc(V, sizeof *tlens);
    int32_t *ttypes = calloc(V, sizeof *ttypes), eot = tern_tok_eot(tok);
    tern_status st = toks && tlens && ttypes ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory for %zu tokens", V);
    if (st == TERN_OK) st = read_merges(tokdir, &mtext, &mlines, &mlens, &n_merges);
    uint32_t cp[256];
    byte_unicode(cp);
    for (size_t i = 0; st == TERN_OK && i < V; i++) {
        size_t len;
        const uint8_t *b = tern_tok_token(tok, (int32_t)i, &len);
        if (!(toks[i] = malloc(2 * len + 1))) {
            st = tern_err(TERN_ENOMEM, "out of memory");
            break;
        }
        size_t k = 0;
        for (size_t j = 0; j < len; j++) {
            uint32_t u = cp[b[j]];
            if (u < 0x80) {
                toks[i][k++] = (char)u;
            } else {
                toks[i][k++] = (char)(0xc0 | (u >> 6));
                toks[i][k++] = (char)(0x80 | (u & 0x3f));
            }
        }
        tlens[i] = k;
        ttypes[i] = (int32_t)i == eot ? 3 : 1; /* llama_token_type CONTROL, NORMAL */
    }
    if (st == TERN_OK) st = tern_gguf_add_str(w, "tokenizer.ggml.model", "gpt2");
    if (st == TERN_OK) st = tern_gguf_add_str(w, "tokenizer.ggml.pre", "gpt-2");
    if (st == TERN_OK) st = tern_gguf_add_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)toks, tlens, V);
    if (st == TERN_OK) st = tern_gguf_add_i32_arr(w, "tokenizer.ggml.token_type", ttypes, V);
    if (st == TERN_OK) st = tern_gguf_add_str_arr(w, "tokenizer.ggml.merges", mlines, mlens, n_merges);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)eot);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eot);
    for (size_t i = 0; toks && i < V; i++) free(toks[i]);
    free(toks);
    free(tlens);
    free(ttypes);
    free(mtext);
    free(mlines);
    free(mlens);
    return st;
}

/* The tensors, in tern's (Hugging Face's) order, with their llama.cpp names and types; their bytes
 * are converted when the file is written. */
static tern_status add_tensors(tern_gguf_writer *w, const gguf_arch *arch, tern_model *m, uint32_t type, export_ctx *x) {
    size_t nt, maxn = 0;
    const tern_tensor *t = tern_model_tensors(m, &nt);
    x->m = m;
    x->src = calloc(nt, sizeof *x->src);
    x->layout = calloc(nt, sizeof *x->layout);
    x->type = calloc(nt, sizeof *x->type);
    for (size_t i = 0; i < nt; i++) maxn = t[i].numel > maxn ? t[i].numel : maxn;
    x->tmp = malloc(maxn * sizeof(float));
    x->host = malloc(maxn * sizeof(float));
    if (!x->src || !x->layout || !x->type || !x->tmp || !x->host) return tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; i < nt; i++) {
        char gname[TERN_GGUF_MAX_NAME];
        uint64_t ne[2];
        int keep_f32 = 0;
        x->layout[i] = arch->tensor(tern_model_cfg(m), t[i].name, gname, &keep_f32);
        uint32_t nd = gguf_dims(&t[i], x->layout[i] == GGUF_TRANSPOSE, ne);
        /* As llama.cpp's converter: vectors (and a few matrices the table names) stay f32; a row
         * length that is not a multiple of q8_0's block of 32 falls back to f16. */
        uint32_t tt = type;
        if (nd == 1 || keep_f32) tt = TERN_GGML_F32;
        if (tt == TERN_GGML_Q8_0 && ne[0] % 32) {
            tern_log(TERN_LOG_WARN, "%s: rows of %llu elements are not a multiple of 32; written as f16", gname, (unsigned long long)ne[0]);
            tt = TERN_GGML_F16;
        }
        x->src[i] = &t[i];
        x->type[i] = tt;
        TERN_TRY(tern_gguf_add_tensor(w, gname, tt, nd, ne, NULL));
    }
    return TERN_OK;
}

/* The architecture llama.cpp loads a model of this family as. */
static const gguf_arch *arch_of(const tern_model_config *c) {
    if (!strcmp(c->arch, "gpt2")) return &tern_gguf_arch_gpt2;
    if (!strcmp(c->arch, "llama")) return c->qkv_bias ? &tern_gguf_arch_qwen2 : &tern_gguf_arch_llama;
    return NULL;
}

tern_status tern_gguf_export(tern_model *m, const char *tokdir, uint32_t type, const char *name, const char *path) {
    if (type != TERN_GGML_F32 && type != TERN_GGML_F16 && type != TERN_GGML_Q8_0)
        return tern_err(TERN_EINVAL, "GGUF export: type %u is not f32, f16 or q8_0", type);
    const tern_model_config *c = tern_model_cfg(m);
    const gguf_arch *arch = arch_of(c);
    if (!arch) return tern_err(TERN_EINVAL, "GGUF export: no llama.cpp architecture for a %s", c->arch);
    if (c->sliding_window && c->sliding_window < c->n_ctx)
        return tern_err(TERN_EINVAL, "GGUF export: a sliding attention window of %d positions (below the context of %d) is not written; "
                                     "llama.cpp's llama architecture attends to every position", c->sliding_window, c->n_ctx);
    if (c->rope_type != TERN_ROPE_NONE)
        return tern_err(TERN_EINVAL, "GGUF export: Llama 3's rope scaling is not written (llama.cpp reads it from a rope_freqs tensor); "
                                     "export to a Hugging Face folder instead");
    tern_tok *tok = NULL;
    tern_gguf_writer *w = NULL;
    export_ctx x;
    memset(&x, 0, sizeof x);
    tern_status st = tern_tok_load(&tok, tokdir, NULL);
    size_t V = st == TERN_OK ? tern_tok_vocab_size(tok) : 0;
    if (st == TERN_OK && V != (size_t)c->vocab_size)
        st = tern_err(TERN_EINVAL, "%s: the tokenizer has %zu tokens but the model's vocabulary is %d; llama.cpp needs them equal", tokdir, V,
                      c->vocab_size);
    if (st == TERN_OK) st = tern_gguf_writer_init(&w);
    /* metadata, in the order llama.cpp's converter writes it */
    uint32_t file_type = type == TERN_GGML_F32 ? 0 : type == TERN_GGML_F16 ? 1 : 7; /* llama_ftype ALL_F32, MOSTLY_F16, MOSTLY_Q8_0 */
    if (st == TERN_OK) st = tern_gguf_add_str(w, "general.architecture", arch->name);
    if (st == TERN_OK) st = tern_gguf_add_str(w, "general.type", "model");
    if (st == TERN_OK && name) st = tern_gguf_add_str(w, "general.name", name);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "general.file_type", file_type);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "general.quantization_version", 2); /* GGML_QNT_VERSION */
    if (st == TERN_OK) st = arch->meta(w, c);
    if (st == TERN_OK) st = add_tokenizer(w, tok, tokdir);
    if (st == TERN_OK) st = add_tensors(w, arch, m, type, &x);
    if (st == TERN_OK) {
        tern_gguf_set_fill(w, fill_tensor, &x);
        st = tern_gguf_write(w, path);
    }
    free(x.src);
    free(x.layout);
    free(x.type);
    free(x.tmp);
    free(x.host);
    tern_gguf_writer_free(w);
    tern_tok_free(tok);
    return st;
}
