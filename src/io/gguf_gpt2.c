/* GPT-2 as GGUF: export of a tern model with its tokenizer for llama.cpp's "gpt2" architecture,
 * and loading such a file (f32 only) back into tern. Not a quantised runtime: f16 and q8_0 are
 * written for llama.cpp, never computed with here. Names, layouts, metadata and the choice of
 * which tensors stay f32 follow llama.cpp's convert_hf_to_gguf.py (GPT2Model) and gguf-py. */
#include "tern/gguf.h"
#include "tern/tok.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- names: Hugging Face (tern's table) to llama.cpp ---- */

typedef struct {
    const char *hf, *gg;
    int transpose; /* Conv1D weights: HF stores [in, out], llama.cpp wants [out, in] */
} name_map;

static const name_map global_names[] = {
    {"wte.weight", "token_embd.weight", 0},  {"wpe.weight", "position_embd.weight", 0},
    {"ln_f.weight", "output_norm.weight", 0}, {"ln_f.bias", "output_norm.bias", 0},
};
static const name_map block_names[] = {
    {"ln_1.weight", "attn_norm.weight", 0},       {"ln_1.bias", "attn_norm.bias", 0},
    {"attn.c_attn.weight", "attn_qkv.weight", 1}, {"attn.c_attn.bias", "attn_qkv.bias", 0},
    {"attn.c_proj.weight", "attn_output.weight", 1}, {"attn.c_proj.bias", "attn_output.bias", 0},
    {"ln_2.weight", "ffn_norm.weight", 0},        {"ln_2.bias", "ffn_norm.bias", 0},
    {"mlp.c_fc.weight", "ffn_up.weight", 1},      {"mlp.c_fc.bias", "ffn_up.bias", 0},
    {"mlp.c_proj.weight", "ffn_down.weight", 1},  {"mlp.c_proj.bias", "ffn_down.bias", 0},
};

/* llama.cpp's name for one of tern's tensors, and whether its matrix is transposed. */
static void gguf_name(const char *hf, char out[TERN_GGUF_MAX_NAME], int *transpose) {
    for (size_t i = 0; i < sizeof global_names / sizeof global_names[0]; i++)
        if (!strcmp(hf, global_names[i].hf)) {
            snprintf(out, TERN_GGUF_MAX_NAME, "%s", global_names[i].gg);
            *transpose = global_names[i].transpose;
            return;
        }
    TERN_ASSERT(!strncmp(hf, "h.", 2));
    char *end;
    unsigned long l = strtoul(hf + 2, &end, 10);
    TERN_ASSERT(*end == '.');
    for (size_t i = 0; i < sizeof block_names / sizeof block_names[0]; i++)
        if (!strcmp(end + 1, block_names[i].hf)) {
            snprintf(out, TERN_GGUF_MAX_NAME, "blk.%lu.%s", l, block_names[i].gg);
            *transpose = block_names[i].transpose;
            return;
        }
    TERN_ASSERT(!"a tensor of tern's GPT-2 has no llama.cpp name");
}

/* ggml dims of a tern tensor as written: ne[0] is the row length of the stored matrix. A [r, c]
 * matrix stored as is has ne {c, r}; transposed to [c][r] it has ne {r, c}. */
static uint32_t gguf_dims(const tern_tensor *t, int transpose, uint64_t ne[2]) {
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

/* ---- export ---- */

typedef struct {
    tern_model *m;
    const tern_tensor **src; /* per written tensor */
    int *transpose;
    uint32_t *type;
    float *tmp;   /* the largest tensor, transposed */
    float *host;  /* the largest tensor, read from the backend */
} export_ctx;

static tern_status fill_tensor(void *vctx, size_t i, uint8_t *dst, size_t nbytes) {
    export_ctx *x = vctx;
    const tern_tensor *t = x->src[i];
    TERN_TRY(tern_model_read(x->m, TERN_PARAMS, t->offset, t->numel, x->host));
    const float *p = x->host;
    size_t n = t->numel;
    if (x->transpose[i]) {
        size_t r = t->shape[0], c = t->shape[1]; /* [r][c] in, [c][r] out */
        for (size_t a = 0; a < r; a++)
            for (size_t b = 0; b < c; b++) x->tmp[b * r + a] = p[a * c + b];
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

tern_status tern_gguf_export_gpt2(tern_model *m, const char *tokdir, uint32_t type, const char *name, const char *path) {
    if (type != TERN_GGML_F32 && type != TERN_GGML_F16 && type != TERN_GGML_Q8_0)
        return tern_err(TERN_EINVAL, "GGUF export: type %u is not f32, f16 or q8_0", type);
    if (strcmp(tern_model_cfg(m)->arch, "gpt2")) return tern_err(TERN_EINVAL, "GGUF export: the model is a %s, not a gpt2", tern_model_cfg(m)->arch);
    const tern_model_config *c = tern_model_cfg(m);
    tern_tok *tok = NULL;
    tern_gguf_writer *w = NULL;
    char *mtext = NULL, **toks = NULL;
    const char **mlines = NULL;
    size_t *mlens = NULL, *tlens = NULL, n_merges = 0, nt;
    int32_t *ttypes = NULL;
    export_ctx x = {m, NULL, NULL, NULL, NULL, NULL};
    const tern_tensor *t = tern_model_tensors(m, &nt);

    tern_status st = tern_tok_load(&tok, tokdir);
    size_t V = st == TERN_OK ? tern_tok_vocab_size(tok) : 0;
    if (st == TERN_OK && V != (size_t)c->vocab_size)
        st = tern_err(TERN_EINVAL, "%s: the tokenizer has %zu tokens but the model's vocabulary is %d; llama.cpp needs them equal", tokdir, V,
                      c->vocab_size);
    if (st == TERN_OK) st = read_merges(tokdir, &mtext, &mlines, &mlens, &n_merges);
    if (st == TERN_OK) st = tern_gguf_writer_init(&w);

    /* metadata, in the order llama.cpp's converter writes it */
    uint32_t file_type = type == TERN_GGML_F32 ? 0 : type == TERN_GGML_F16 ? 1 : 7; /* llama_ftype ALL_F32, MOSTLY_F16, MOSTLY_Q8_0 */
    if (st == TERN_OK) st = tern_gguf_add_str(w, "general.architecture", "gpt2");
    if (st == TERN_OK) st = tern_gguf_add_str(w, "general.type", "model");
    if (st == TERN_OK && name) st = tern_gguf_add_str(w, "general.name", name);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "general.file_type", file_type);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "general.quantization_version", 2); /* GGML_QNT_VERSION */
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "gpt2.context_length", (uint32_t)c->n_ctx);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "gpt2.embedding_length", (uint32_t)c->n_embd);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "gpt2.feed_forward_length", 4u * (uint32_t)c->n_embd);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "gpt2.block_count", (uint32_t)c->n_layer);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "gpt2.attention.head_count", (uint32_t)c->n_head);
    if (st == TERN_OK) st = tern_gguf_add_f32(w, "gpt2.attention.layer_norm_epsilon", 1e-5f);
    if (st == TERN_OK) st = tern_gguf_add_str(w, "tokenizer.ggml.model", "gpt2");
    if (st == TERN_OK) st = tern_gguf_add_str(w, "tokenizer.ggml.pre", "gpt-2");

    /* tokens as byte-to-unicode strings (at most 2 UTF-8 bytes per byte), and their types */
    if (st == TERN_OK) {
        toks = calloc(V, sizeof *toks);
        tlens = calloc(V, sizeof *tlens);
        ttypes = calloc(V, sizeof *ttypes);
        if (!toks || !tlens || !ttypes) st = tern_err(TERN_ENOMEM, "out of memory for %zu tokens", V);
    }
    uint32_t cp[256];
    byte_unicode(cp);
    int32_t eot = st == TERN_OK ? tern_tok_eot(tok) : -1;
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
    if (st == TERN_OK) st = tern_gguf_add_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)toks, tlens, V);
    if (st == TERN_OK) st = tern_gguf_add_i32_arr(w, "tokenizer.ggml.token_type", ttypes, V);
    if (st == TERN_OK) st = tern_gguf_add_str_arr(w, "tokenizer.ggml.merges", mlines, mlens, n_merges);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)eot);
    if (st == TERN_OK) st = tern_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eot);

    /* tensors, in tern's (Hugging Face's) order, converted when written */
    if (st == TERN_OK) {
        x.src = calloc(nt, sizeof *x.src);
        x.transpose = calloc(nt, sizeof *x.transpose);
        x.type = calloc(nt, sizeof *x.type);
        size_t maxn = 0;
        for (size_t i = 0; i < nt; i++) maxn = t[i].numel > maxn ? t[i].numel : maxn;
        x.tmp = malloc(maxn * sizeof(float));
        x.host = malloc(maxn * sizeof(float));
        if (!x.src || !x.transpose || !x.type || !x.tmp || !x.host) st = tern_err(TERN_ENOMEM, "out of memory");
    }
    for (size_t i = 0; st == TERN_OK && i < nt; i++) {
        char gname[TERN_GGUF_MAX_NAME];
        uint64_t ne[2];
        gguf_name(t[i].name, gname, &x.transpose[i]);
        uint32_t nd = gguf_dims(&t[i], x.transpose[i], ne);
        /* As llama.cpp's converter: 1-D tensors and position_embd stay f32; a row length that is
         * not a multiple of q8_0's block of 32 falls back to f16. */
        uint32_t tt = type;
        if (nd == 1 || !strcmp(gname, "position_embd.weight")) tt = TERN_GGML_F32;
        if (tt == TERN_GGML_Q8_0 && ne[0] % 32) {
            tern_log(TERN_LOG_WARN, "%s: rows of %llu elements are not a multiple of 32; written as f16", gname, (unsigned long long)ne[0]);
            tt = TERN_GGML_F16;
        }
        x.src[i] = &t[i];
        x.type[i] = tt;
        st = tern_gguf_add_tensor(w, gname, tt, nd, ne, NULL);
    }
    if (st == TERN_OK) {
        tern_gguf_set_fill(w, fill_tensor, &x);
        st = tern_gguf_write(w, path);
    }

    free(x.src);
    free(x.transpose);
    free(x.type);
    free(x.tmp);
    free(x.host);
    for (size_t i = 0; toks && i < V; i++) free(toks[i]);
    free(toks);
    free(tlens);
    free(ttypes);
    free(mtext);
    free(mlines);
    free(mlens);
    tern_gguf_writer_free(w);
    tern_tok_free(tok);
    return st;
}

/* ---- loading ---- */

static tern_status get_int(const tern_gguf *g, const char *key, int *out) {
    uint32_t v;
    TERN_TRY(tern_gguf_get_u32(g, key, &v));
    if (v > INT_MAX) return tern_err(TERN_EFORMAT, "%s: key '%s' is %u, too large", tern_gguf_label(g), key, v);
    *out = (int)v;
    return TERN_OK;
}

static void fmt_dims(char *out, size_t n, uint32_t nd, const uint64_t *ne) {
    size_t k = (size_t)snprintf(out, n, "{");
    for (uint32_t j = 0; j < nd && k < n; j++) k += (size_t)snprintf(out + k, n - k, "%s%llu", j ? ", " : "", (unsigned long long)ne[j]);
    if (k < n) snprintf(out + k, n - k, "}");
}

tern_status tern_gguf_load_gpt2(const tern_gguf *g, tern_model **out, tern_backend *be) {
    *out = NULL;
    const char *L = tern_gguf_label(g);
    tern_gguf_str arch;
    TERN_TRY(tern_gguf_get_str(g, "general.architecture", &arch));
    if (arch.n != 4 || memcmp(arch.p, "gpt2", 4))
        return tern_err(TERN_EFORMAT, "%s: architecture '%.*s' is not gpt2", L, (int)(arch.n > 40 ? 40 : arch.n), arch.p);
    int n_layer, n_head, n_embd, n_ctx;
    TERN_TRY(get_int(g, "gpt2.block_count", &n_layer));
    TERN_TRY(get_int(g, "gpt2.attention.head_count", &n_head));
    TERN_TRY(get_int(g, "gpt2.embedding_length", &n_embd));
    TERN_TRY(get_int(g, "gpt2.context_length", &n_ctx));
    tern_model_config cfg = tern_model_config_gpt2(n_layer, n_head, n_embd, n_ctx, 0);
    float eps;
    TERN_TRY(tern_gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &eps));
    if (eps != 1e-5f) return tern_err(TERN_EFORMAT, "%s: gpt2.attention.layer_norm_epsilon is %g; tern's GPT-2 uses 1e-05", L, (double)eps);
    if (tern_gguf_find_kv(g, "gpt2.feed_forward_length")) {
        int ff;
        TERN_TRY(get_int(g, "gpt2.feed_forward_length", &ff));
        if ((long long)ff != 4LL * cfg.n_embd)
            return tern_err(TERN_EFORMAT, "%s: gpt2.feed_forward_length %d is not 4*n_embd (%d); tern's GPT-2 uses a 4x MLP", L, ff, cfg.n_embd);
    }
    const tern_gguf_tensor *te = tern_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return tern_err(TERN_ENOTFOUND, "%s: missing tensor 'token_embd.weight'", L);
    if (te->n_dims != 2 || te->ne[1] > INT_MAX) return tern_err(TERN_EFORMAT, "%s: token_embd.weight is not a [vocabulary, n_embd] matrix", L);
    cfg.vocab_size = (int)te->ne[1];
    const tern_gguf_kv *toks = tern_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (toks && toks->n != te->ne[1])
        return tern_err(TERN_EFORMAT, "%s: tokenizer.ggml.tokens has %llu tokens but token_embd.weight has %llu rows", L,
                        (unsigned long long)toks->n, (unsigned long long)te->ne[1]);
    tern_status st = tern_model_config_check(&cfg);
    if (st != TERN_OK) return tern_err_wrap(st, "%s", L);
    /* Every parameter comes from a tensor of the file, so a shape the file cannot come near
     * filling (more than twice the values it holds; a file that merely lacks a tensor gets the
     * precise message below) is refused before the model is allocated: a few bytes of metadata
     * must not make tern allocate and zero gigabytes. Tensors lie inside the file at under 8
     * values a byte, so the sum cannot wrap. */
    uint64_t need = tern_model_config_num_params(&cfg), have = 0;
    for (size_t i = 0; i < tern_gguf_tensor_count(g); i++) have += tern_gguf_tensor_at(g, i)->numel;
    if (need / 2 > have)
        return tern_err(TERN_EFORMAT, "%s: a GPT-2 of this shape has %llu parameters, but the file's tensors hold %llu values", L,
                        (unsigned long long)need, (unsigned long long)have);

    tern_model *m;
    TERN_TRY(tern_model_init(&m, &cfg, be));
    size_t nt, most = 0;
    const tern_tensor *t = tern_model_tensors(m, &nt);
    for (size_t i = 0; i < nt; i++) most = t[i].numel > most ? t[i].numel : most;
    float *dst = malloc(most * sizeof(float));
    if (!dst) st = tern_err(TERN_ENOMEM, "out of memory reading %s", L);
    for (size_t i = 0; st == TERN_OK && i < nt; i++) {
        char gname[TERN_GGUF_MAX_NAME], have[96], want[96];
        int tr;
        uint64_t ne[2];
        gguf_name(t[i].name, gname, &tr);
        uint32_t nd = gguf_dims(&t[i], tr, ne);
        const tern_gguf_tensor *s = tern_gguf_find_tensor(g, gname);
        if (!s) {
            st = tern_err(TERN_ENOTFOUND, "%s: missing tensor '%s'", L, gname);
            break;
        }
        if (s->type != TERN_GGML_F32) {
            st = tern_err(TERN_EFORMAT, "%s: tensor '%s' is %s; tern loads f32 GGUF files only (tern export --type f32)", L, gname,
                          tern_ggml_type_name(s->type));
            break;
        }
        if (s->n_dims != nd || s->ne[0] != ne[0] || (nd == 2 && s->ne[1] != ne[1])) {
            fmt_dims(have, sizeof have, s->n_dims, s->ne);
            fmt_dims(want, sizeof want, nd, ne);
            st = tern_err(TERN_EFORMAT, "%s: tensor '%s' has ggml dims %s, expected %s", L, gname, have, want);
            break;
        }
        if (!tr) {
            memcpy(dst, s->data, t[i].numel * sizeof(float));
        } else {
            size_t r = t[i].shape[0], c = t[i].shape[1]; /* stored [c][r], tern's [r][c] */
            for (size_t b = 0; b < c; b++)
                for (size_t a = 0; a < r; a++) memcpy(&dst[a * c + b], s->data + 4 * (b * r + a), 4);
        }
        st = tern_model_write(m, TERN_PARAMS, t[i].offset, t[i].numel, dst);
    }
    free(dst);
    /* Anything else must be a tied output head; an unknown tensor means another model. Every
     * expected name was found above and names are unique, so the count bounds the scan. */
    size_t nf = tern_gguf_tensor_count(g);
    if (st == TERN_OK && nf > nt + 1)
        st = tern_err(TERN_EFORMAT, "%s: %zu tensors, but a GPT-2 of this shape has %zu (and maybe output.weight)", L, nf, nt);
    for (size_t i = 0; st == TERN_OK && i < nf; i++) {
        const tern_gguf_tensor *s = tern_gguf_tensor_at(g, i);
        if (!strcmp(s->name, "output.weight")) {
            if (s->type != te->type || s->n_dims != 2 || s->ne[0] != te->ne[0] || s->ne[1] != te->ne[1] ||
                memcmp(s->data, te->data, s->nbytes))
                st = tern_err(TERN_EFORMAT, "%s: output.weight differs from token_embd.weight; tern's GPT-2 ties them", L);
            continue;
        }
        int known = 0;
        for (size_t k = 0; !known && k < nt; k++) {
            char gname[TERN_GGUF_MAX_NAME];
            int tr;
            gguf_name(t[k].name, gname, &tr);
            known = !strcmp(gname, s->name);
        }
        if (!known) st = tern_err(TERN_EFORMAT, "%s: unexpected tensor '%s' for a GPT-2 of this shape", L, s->name);
    }
    if (st != TERN_OK) {
        tern_model_free(m);
        return st;
    }
    *out = m;
    return TERN_OK;
}

/* ---- the embedded tokenizer, back to vocab.json + merges.txt ---- */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_put(sbuf *b, const void *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 1;
}

/* A JSON string: quote, backslash and control characters escaped, other bytes as they are. */
static int sb_json_str(sbuf *b, const char *s, size_t n) {
    int ok = sb_put(b, "\"", 1);
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            ok = sb_put(b, esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            ok = sb_put(b, esc, 6);
        } else {
            ok = sb_put(b, s + i, 1);
        }
    }
    return ok && sb_put(b, "\"", 1);
}

static tern_status tokenizer_texts(const tern_gguf *g, sbuf *vocab, sbuf *merges) {
    const char *L = tern_gguf_label(g);
    tern_gguf_str model;
    TERN_TRY(tern_gguf_get_str(g, "tokenizer.ggml.model", &model));
    if (model.n != 4 || memcmp(model.p, "gpt2", 4))
        return tern_err(TERN_EFORMAT, "%s: tokenizer.ggml.model is '%.*s'; tern reads GPT-2 byte-level BPE ('gpt2') only", L,
                        (int)(model.n > 40 ? 40 : model.n), model.p);
    const tern_gguf_kv *tk, *mg;
    TERN_TRY(tern_gguf_get_arr(g, "tokenizer.ggml.tokens", TERN_GGUF_STRING, &tk));
    TERN_TRY(tern_gguf_get_arr(g, "tokenizer.ggml.merges", TERN_GGUF_STRING, &mg));
    int ok = sb_put(vocab, "{", 1);
    for (uint64_t i = 0; ok && i < tk->n; i++) {
        char num[32];
        int k = snprintf(num, sizeof num, ": %llu", (unsigned long long)i);
        ok = (i == 0 || sb_put(vocab, ", ", 2)) && sb_json_str(vocab, tk->strs[i].p, (size_t)tk->strs[i].n) && sb_put(vocab, num, (size_t)k);
    }
    ok = ok && sb_put(vocab, "}\n", 2) && sb_put(merges, "#version: 0.2\n", 14);
    for (uint64_t i = 0; ok && i < mg->n; i++) {
        const tern_gguf_str *s = &mg->strs[i];
        if (memchr(s->p, '\n', (size_t)s->n) || memchr(s->p, '\r', (size_t)s->n))
            return tern_err(TERN_EFORMAT, "%s: merge %llu of tokenizer.ggml.merges contains a line break", L, (unsigned long long)i);
        ok = sb_put(merges, s->p, (size_t)s->n) && sb_put(merges, "\n", 1);
    }
    return ok ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory writing the tokenizer of %s", L);
}

static tern_status write_texts(const char *dir, const sbuf *vocab, const sbuf *merges) {
    TERN_TRY(tern_mkdir_p(dir));
    char *vp = tern_path_join(dir, "vocab.json"), *mp = tern_path_join(dir, "merges.txt");
    tern_status st = (!vp || !mp) ? tern_err(TERN_ENOMEM, "out of memory") : TERN_OK;
    if (st == TERN_OK) st = tern_write_file_atomic(vp, vocab->p, vocab->n);
    if (st == TERN_OK) st = tern_write_file_atomic(mp, merges->p, merges->n);
    free(vp);
    free(mp);
    return st;
}

tern_status tern_gguf_write_tokenizer(const tern_gguf *g, const char *dir) {
    sbuf v = {0}, m = {0};
    tern_status st = tokenizer_texts(g, &v, &m);
    if (st == TERN_OK) st = write_texts(dir, &v, &m);
    free(v.p);
    free(m.p);
    return st;
}

tern_status tern_gguf_open_model(const char *path, tern_model **out, char **tokdir, tern_backend *be) {
    *out = NULL;
    if (tokdir) *tokdir = NULL;
    tern_gguf *g;
    TERN_TRY(tern_gguf_open(&g, path));
    tern_status st = tern_gguf_load_gpt2(g, out, be);
    if (st == TERN_OK && tokdir) {
        /* The tokenizer goes to a folder named by its content, so files with the same tokenizer
         * share it and a different one never overwrites it. */
        sbuf v = {0}, m = {0};
        st = tokenizer_texts(g, &v, &m);
        if (st == TERN_OK) {
            tern_hasher h;
            uint8_t dig[TERN_HASH_BYTES];
            char hex[2 * 12 + 1], name[64];
            tern_hash_init(&h);
            tern_hash_update(&h, v.p, v.n);
            tern_hash_update(&h, m.p, m.n);
            tern_hash_final(&h, dig);
            tern_hex(hex, dig, 12);
            snprintf(name, sizeof name, "tern-gguf-tokenizer-%s", hex);
            const char *tmp = getenv("TMPDIR");
            *tokdir = tern_path_join(tmp && *tmp ? tmp : "/tmp", name);
            st = *tokdir ? write_texts(*tokdir, &v, &m) : tern_err(TERN_ENOMEM, "out of memory");
            if (st != TERN_OK) tern_err_wrap(st, "extracting the tokenizer of %s", path);
        }
        free(v.p);
        free(m.p);
    }
    tern_gguf_free(g);
    if (st != TERN_OK) {
        tern_model_free(*out);
        *out = NULL;
        if (tokdir) {
            free(*tokdir);
            *tokdir = NULL;
        }
    }
    return st;
}
