/* The Llama family as Hugging Face's LlamaForCausalLM computes it, with the variants its users
 * deploy chosen by configuration: pre-RMSNorm blocks; causal attention with rotary position
 * embeddings in the rotate-half convention (plain, or Llama 3's frequency scaling) and grouped
 * query attention (n_kv_head dividing n_head; 1 is multi-query); a SwiGLU MLP (gate, up, down);
 * no biases, except on q, k and v for Qwen2; a final RMSNorm; an output head that is untied or
 * tied to the token embedding. Mistral without a sliding window is this model. Weights keep
 * nn.Linear's [out, in] layout, as Hugging Face stores them. */
#include "model/model_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- shape and tensors ---- */

static tern_status llama_check(const tern_model_config *c) {
    if (c->n_kv_head < 1 || c->n_head % c->n_kv_head)
        return tern_err(TERN_EINVAL, "the key/value heads (%d) must divide the heads (%d)", c->n_kv_head, c->n_head);
    if (c->head_dim < 2 || c->head_dim % 2)
        return tern_err(TERN_EINVAL, "the head size must be even for rotary embeddings, got %d", c->head_dim);
    if (c->head_dim > 4096) return tern_err(TERN_EINVAL, "head_dim must be at most 4096, got %d", c->head_dim);
    if (!(c->rope_theta > 1)) return tern_err(TERN_EINVAL, "rope_theta must be above 1, got %g", c->rope_theta);
    if (c->rope_type == TERN_ROPE_LLAMA3 &&
        !(c->rope_factor >= 1 && c->rope_low_freq_factor > 0 && c->rope_high_freq_factor > c->rope_low_freq_factor &&
          c->rope_original_ctx > 0))
        return tern_err(TERN_EINVAL, "rope scaling llama3 needs factor >= 1, 0 < low_freq_factor < high_freq_factor and "
                                     "original_max_position_embeddings > 0");
    return TERN_OK;
}

/* Per-layer tensors in the order of a LlamaDecoderLayer's state dict. */
enum { T_Q, T_QB, T_K, T_KB, T_V, T_VB, T_O, T_GATE, T_UP, T_DOWN, T_LN1, T_LN2, T_PER_LAYER };

static size_t llama_tensors(const tern_model_config *c, tern_tensor *out) {
    size_t L = (size_t)c->n_layer, V = (size_t)c->vocab_size, C = (size_t)c->n_embd, F = (size_t)c->ffn_dim;
    size_t q = (size_t)c->n_head * (size_t)c->head_dim, kv = (size_t)c->n_kv_head * (size_t)c->head_dim, n = 0;
    struct {
        const char *name;
        size_t rows, cols;
    } per[T_PER_LAYER] = {
        {"self_attn.q_proj.weight", q, C}, {"self_attn.q_proj.bias", q, 0},   {"self_attn.k_proj.weight", kv, C},
        {"self_attn.k_proj.bias", kv, 0},  {"self_attn.v_proj.weight", kv, C}, {"self_attn.v_proj.bias", kv, 0},
        {"self_attn.o_proj.weight", C, q}, {"mlp.gate_proj.weight", F, C},   {"mlp.up_proj.weight", F, C},
        {"mlp.down_proj.weight", C, F},    {"input_layernorm.weight", C, 0},  {"post_attention_layernorm.weight", C, 0},
    };
#define ADD(layer, nm, rows, cols, hk)                                                                                 \
    do {                                                                                                               \
        if (out) {                                                                                                     \
            tern_tensor *t = &out[n];                                                                                  \
            memset(t, 0, sizeof *t);                                                                                   \
            if ((layer) >= 0)                                                                                          \
                snprintf(t->name, sizeof t->name, "model.layers.%d.%s", (int)(layer), nm);                             \
            else                                                                                                       \
                snprintf(t->name, sizeof t->name, "%s", nm);                                                           \
            t->ndim = (cols) ? 2 : 1;                                                                                  \
            t->shape[0] = (rows);                                                                                      \
            t->shape[1] = (cols);                                                                                      \
            t->decay = (cols) != 0; /* matrices decay; norms and biases do not */                                       \
            t->init = (cols) ? 'n' : strstr(nm, "norm") ? 'o' : 'z';                                                   \
            t->init_std = 0.02f;                                                                                       \
            t->hook = (hk);                                                                                            \
        }                                                                                                              \
        n++;                                                                                                           \
    } while (0)
    ADD(-1, "model.embed_tokens.weight", V, C, -1);
    for (size_t l = 0; l < L; l++)
        for (int i = 0; i < T_PER_LAYER; i++) {
            if ((i == T_QB || i == T_KB || i == T_VB) && !c->qkv_bias) continue;
            ADD((long)l, per[i].name, per[i].rows, per[i].cols, (int)l);
        }
    ADD(-1, "model.norm.weight", C, 0, (int)L);
    if (!c->tie_embeddings) ADD(-1, "lm_head.weight", V, C, (int)L);
#undef ADD
    return n;
}

static const char *llama_head(const tern_model_config *c) { return c->tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"; }

/* ---- rotary frequencies ---- */

/* inv_freq[i] = theta^(-2i/hs) as transformers computes it (in float), then Llama 3's scaling:
 * wavelengths longer than original_ctx/low_freq_factor are divided by factor, shorter than
 * original_ctx/high_freq_factor kept, and those between blended (transformers'
 * _compute_llama3_parameters). */
static void rope_freqs(const tern_model_config *c, float *f) {
    size_t half = (size_t)c->head_dim / 2;
    for (size_t i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)c->head_dim;
        float inv = 1.0f / powf((float)c->rope_theta, e);
        if (c->rope_type == TERN_ROPE_LLAMA3) {
            double old = c->rope_original_ctx, lo = old / c->rope_low_freq_factor, hi = old / c->rope_high_freq_factor;
            double wavelen = 2.0 * M_PI / inv, v = inv;
            if (wavelen > lo) {
                v = inv / c->rope_factor;
            } else if (wavelen >= hi) {
                double smooth = (old / wavelen - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
                v = (1 - smooth) * inv / c->rope_factor + smooth * inv;
            }
            inv = (float)v;
        }
        f[i] = inv;
    }
}

typedef struct {
    float *freq; /* (head_dim/2) on the backend */
} llama_const;

static tern_status llama_setup(tern_model *m) {
    llama_const *lc = calloc(1, sizeof *lc);
    if (!lc) return tern_err(TERN_ENOMEM, "out of memory");
    m->fc = lc;
    size_t half = (size_t)m->cfg.head_dim / 2;
    float host[2048];
    rope_freqs(&m->cfg, host);
    TERN_TRY(m->be->mem->alloc(m->be, (void **)&lc->freq, half * sizeof(float), "rotary frequencies"));
    m->be->mem->upload(m->be, lc->freq, host, half * sizeof(float));
    return TERN_OK;
}

static void llama_teardown(tern_model *m) {
    llama_const *lc = m->fc;
    if (!lc) return;
    m->be->mem->free(m->be, lc->freq);
    free(lc);
    m->fc = NULL;
}

/* ---- activations ---- */

/* X(field, elements) with sizes in B, T, C, L, NH, F, Q (= NH*hs) and KV (= NKV*hs); S as in
 * gpt2.c: L, or 1 under recomputation. q and k are kept after the rotation, as attention reads
 * them. */
#define LLAMA_ACTS(X)                                                                         \
    X(encoded, B * T * C)                                                                     \
    X(ln1, S * B * T * C)                                                                     \
    X(ln1_rstd, S * B * T)                                                                    \
    X(q, S * B * T * Q)                                                                       \
    X(k, S * B * T * KV)                                                                      \
    X(v, S * B * T * KV)                                                                      \
    X(atty, S * B * T * Q)                                                                    \
    X(lse, S * B * NH * T)                                                                    \
    X(res2, S * B * T * C)                                                                    \
    X(ln2, S * B * T * C)                                                                     \
    X(ln2_rstd, S * B * T)                                                                    \
    X(gate, S * B * T * F)                                                                    \
    X(up, S * B * T * F)                                                                      \
    X(hsw, S * B * T * F)                                                                     \
    X(res3, L * B * T * C)                                                                    \
    X(lnf, B * T * C)                                                                         \
    X(lnf_rstd, B * T)                                                                        \
    /* scratch: a projection's output before its residual add; the backward pass's buffers */ \
    X(proj, B * T * C)                                                                        \
    X(dres, B * T * C)                                                                        \
    X(dln, B * T * C)                                                                         \
    X(datty, B * T * Q)                                                                       \
    X(dq, B * T * Q)                                                                          \
    X(dk, B * T * KV)                                                                         \
    X(dv, B * T * KV)                                                                         \
    X(dgate, B * T * F)                                                                       \
    X(dup, B * T * F)                                                                         \
    X(attscr, TERN_ATT_SCRATCH(B, T, NH))

enum {
#define X(f, n) ACT_##f,
    LLAMA_ACTS(X)
#undef X
    NUM_ACTS
};

typedef struct {
#define X(f, n) float *f;
    LLAMA_ACTS(X)
#undef X
} llama_acts;

static size_t llama_acts_sizes(const tern_model_config *c, size_t B, size_t T, int recompute, size_t *sizes) {
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, NH = (size_t)c->n_head, F = (size_t)c->ffn_dim;
    size_t Q = NH * (size_t)c->head_dim, KV = (size_t)c->n_kv_head * (size_t)c->head_dim, S = recompute ? 1 : L;
    size_t tmp[] = {
#define X(f, n) (n),
        LLAMA_ACTS(X)
#undef X
    };
    if (sizes) memcpy(sizes, tmp, sizeof tmp);
    return NUM_ACTS;
}

static tern_status llama_bind(tern_model *m) {
    llama_acts *a = calloc(1, sizeof *a);
    if (!a) return tern_err(TERN_ENOMEM, "out of memory");
    size_t i = 0;
#define X(f, n) a->f = m->slot[i++];
    LLAMA_ACTS(X)
#undef X
    m->fs = a;
    m->xf = a->lnf;
    m->dxf = a->dln;
    return TERN_OK;
}

static void llama_unbind(tern_model *m) {
    free(m->fs);
    m->fs = NULL;
}

/* ---- one block's weights ---- */

typedef struct {
    const float *q, *qb, *k, *kb, *v, *vb, *o, *gate, *up, *down, *ln1, *ln2;
} layer_w;

typedef struct {
    float *q, *qb, *k, *kb, *v, *vb, *o, *gate, *up, *down, *ln1, *ln2;
} layer_g;

/* Block l's tensors: the table holds T_PER_LAYER of them per block (three fewer without q, k, v
 * biases), after the embedding. */
static const tern_tensor *layer_tensors(const tern_model *m, size_t l, const tern_tensor *t[T_PER_LAYER]) {
    size_t per = m->cfg.qkv_bias ? T_PER_LAYER : T_PER_LAYER - 3, j = 1 + l * per;
    for (int i = 0; i < T_PER_LAYER; i++) {
        if ((i == T_QB || i == T_KB || i == T_VB) && !m->cfg.qkv_bias) {
            t[i] = NULL;
            continue;
        }
        t[i] = &m->tensors[j++];
    }
    return t[0];
}

static layer_w weights(const tern_model *m, size_t l, const float *base) {
    const tern_tensor *t[T_PER_LAYER];
    layer_tensors(m, l, t);
#define P(i) (t[i] ? base + t[i]->offset : NULL)
    return (layer_w){P(T_Q), P(T_QB), P(T_K), P(T_KB), P(T_V), P(T_VB), P(T_O), P(T_GATE), P(T_UP), P(T_DOWN), P(T_LN1), P(T_LN2)};
#undef P
}

static layer_g grads(const tern_model *m, size_t l) {
    const tern_tensor *t[T_PER_LAYER];
    layer_tensors(m, l, t);
#define G(i) (t[i] ? m->grads + t[i]->offset : NULL)
    return (layer_g){G(T_Q), G(T_QB), G(T_K), G(T_KB), G(T_V), G(T_VB), G(T_O), G(T_GATE), G(T_UP), G(T_DOWN), G(T_LN1), G(T_LN2)};
#undef G
}

#define LAYER(buf, l, per_row) ((buf) + (l) * m->resB * m->resT * (per_row))
#define SLOT(buf, l, per_row) LAYER(buf, m->recompute ? 0 : (l), per_row)

typedef struct {
    const float *x;
    float *ln1, *ln1_rstd, *q, *k, *v, *atty, *lse, *res2, *ln2, *ln2_rstd, *gate, *up, *hsw, *res3;
} block_acts;

static block_acts block_slots(tern_model *m, size_t l) {
    const tern_model_config *c = &m->cfg;
    size_t C = (size_t)c->n_embd, NH = (size_t)c->n_head, F = (size_t)c->ffn_dim, Q = NH * (size_t)c->head_dim,
           KV = (size_t)c->n_kv_head * (size_t)c->head_dim;
    llama_acts *a = m->fs;
    return (block_acts){
        .x = l == 0 ? a->encoded : LAYER(a->res3, l - 1, C),
        .ln1 = SLOT(a->ln1, l, C), .ln1_rstd = SLOT(a->ln1_rstd, l, 1),
        .q = SLOT(a->q, l, Q), .k = SLOT(a->k, l, KV), .v = SLOT(a->v, l, KV),
        .atty = SLOT(a->atty, l, Q), .lse = SLOT(a->lse, l, NH), .res2 = SLOT(a->res2, l, C),
        .ln2 = SLOT(a->ln2, l, C), .ln2_rstd = SLOT(a->ln2_rstd, l, 1),
        .gate = SLOT(a->gate, l, F), .up = SLOT(a->up, l, F), .hsw = SLOT(a->hsw, l, F),
        .res3 = LAYER(a->res3, l, C),
    };
}

static tern_att_shape att_shape(const tern_model *m, size_t B, size_t T) {
    const tern_model_config *c = &m->cfg;
    size_t hs = (size_t)c->head_dim, NH = (size_t)c->n_head, NKV = (size_t)c->n_kv_head;
    return (tern_att_shape){B, T, NH, NKV, hs, NH * hs, NKV * hs, NKV * hs};
}

/* ---- forward ---- */

static void block_fwd(tern_model *m, size_t l) {
    const tern_kern *k = m->k;
    tern_backend *be = m->be;
    const tern_model_config *c = &m->cfg;
    size_t C = (size_t)c->n_embd, F = (size_t)c->ffn_dim, hs = (size_t)c->head_dim, NH = (size_t)c->n_head,
           NKV = (size_t)c->n_kv_head, Q = NH * hs, KV = NKV * hs, B = m->B, T = m->T, N = B * T;
    float eps = (float)c->norm_eps;
    const float *freq = ((llama_const *)m->fc)->freq;
    llama_acts *a = m->fs;
    const block_acts b = block_slots(m, l);
    layer_w w = weights(m, l, m->params);
    tern_att_shape as = att_shape(m, B, T);

    /* res2 = x + o(attention(rope(q(ln1(x))), rope(k(ln1(x))), v(ln1(x)))) */
    k->rmsnorm_fwd(be, b.ln1, b.ln1_rstd, b.x, w.ln1, N, C, eps);
    tern_model_check_out(m, b.ln1, N * C, "rmsnorm_fwd (input_layernorm)", (long)l);
    k->matmul_fwd(be, b.q, b.ln1, w.q, w.qb, N, C, Q, 1);
    k->matmul_fwd(be, b.k, b.ln1, w.k, w.kb, N, C, KV, 1);
    k->matmul_fwd(be, b.v, b.ln1, w.v, w.vb, N, C, KV, 1);
    k->rope_fwd(be, b.q, freq, B, T, NH, hs, Q, 0);
    k->rope_fwd(be, b.k, freq, B, T, NKV, hs, KV, 0);
    tern_model_check_out(m, b.q, N * Q, "matmul_fwd and rope_fwd (q_proj)", (long)l);
    tern_model_check_out(m, b.k, N * KV, "matmul_fwd and rope_fwd (k_proj)", (long)l);
    tern_model_check_out(m, b.v, N * KV, "matmul_fwd (v_proj)", (long)l);
    k->attention_fwd(be, b.atty, b.lse, a->attscr, b.q, b.k, b.v, &as);
    tern_model_check_out(m, b.atty, N * Q, "attention_fwd", (long)l);
    k->matmul_fwd(be, a->proj, b.atty, w.o, NULL, N, Q, C, 1);
    /* res3 = res2 + down(silu(gate(ln2(res2))) * up(ln2(res2))) */
    if (k->residual_rmsnorm_fwd) {
        k->residual_rmsnorm_fwd(be, b.res2, b.ln2, b.ln2_rstd, b.x, a->proj, w.ln2, N, C, eps);
    } else {
        k->residual_fwd(be, b.res2, b.x, a->proj, N * C);
        k->rmsnorm_fwd(be, b.ln2, b.ln2_rstd, b.res2, w.ln2, N, C, eps);
    }
    tern_model_check_out(m, b.res2, N * C, "matmul_fwd and residual_fwd (o_proj)", (long)l);
    tern_model_check_out(m, b.ln2, N * C, "rmsnorm_fwd (post_attention_layernorm)", (long)l);
    k->matmul_fwd(be, b.gate, b.ln2, w.gate, NULL, N, C, F, 1);
    k->matmul_fwd(be, b.up, b.ln2, w.up, NULL, N, C, F, 1);
    k->swiglu_fwd(be, b.hsw, b.gate, b.up, N * F);
    tern_model_check_out(m, b.hsw, N * F, "matmul_fwd and swiglu_fwd (gate_proj, up_proj)", (long)l);
    k->matmul_fwd(be, a->proj, b.hsw, w.down, NULL, N, F, C, 1);
    k->residual_fwd(be, b.res3, b.res2, a->proj, N * C);
    tern_model_check_out(m, b.res3, N * C, "matmul_fwd and residual_fwd (down_proj)", (long)l);
}

static void llama_forward(tern_model *m) {
    size_t L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd, N = m->B * m->T;
    llama_acts *a = m->fs;
    m->k->encoder_fwd(m->be, a->encoded, m->inputs, tern_model_ptr(m, "model.embed_tokens.weight", 0), NULL, m->B, m->T, C);
    tern_model_check_out(m, a->encoded, N * C, "encoder_fwd", -1);
    for (size_t l = 0; l < L; l++) block_fwd(m, l);
    m->k->rmsnorm_fwd(m->be, a->lnf, a->lnf_rstd, LAYER(a->res3, L - 1, C), tern_model_ptr(m, "model.norm.weight", 0), N, C,
                      (float)m->cfg.norm_eps);
    tern_model_check_out(m, a->lnf, N * C, "rmsnorm_fwd (norm)", -1);
}

/* ---- backward ---- */

static void llama_backward(tern_model *m) {
    const tern_kern *k = m->k;
    tern_backend *be = m->be;
    const tern_model_config *c = &m->cfg;
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, F = (size_t)c->ffn_dim, hs = (size_t)c->head_dim,
           NH = (size_t)c->n_head, NKV = (size_t)c->n_kv_head, Q = NH * hs, KV = NKV * hs, B = m->B, T = m->T, N = B * T;
    const float *freq = ((llama_const *)m->fc)->freq;
    llama_acts *a = m->fs;
    tern_att_shape as = att_shape(m, B, T);

    be->mem->zero(be, a->dres, N * C * sizeof(float));
    k->rmsnorm_bwd(be, a->dres, tern_model_ptr(m, "model.norm.weight", 1), a->dln, LAYER(a->res3, L - 1, C),
                   tern_model_ptr(m, "model.norm.weight", 0), a->lnf_rstd, N, C);
    tern_model_check_out(m, a->dres, N * C, "rmsnorm_bwd (norm)", -1);
    tern_model_hook(m, (int)L);
    for (size_t l = L; l-- > 0;) {
        if (m->recompute && l != L - 1) block_fwd(m, l);
        const block_acts b = block_slots(m, l);
        layer_w w = weights(m, l, m->params);
        layer_g g = grads(m, l);
        /* the MLP: dres is d loss / d res3, which passes unchanged to res2 */
        k->matmul_bwd(be, a->dgate, g.down, NULL, a->dres, b.hsw, w.down, N, F, C, 1);
        k->swiglu_bwd(be, a->dgate, a->dup, a->dgate, b.gate, b.up, N * F);
        k->matmul_bwd(be, a->dln, g.gate, NULL, a->dgate, b.ln2, w.gate, N, C, F, 1);
        k->matmul_bwd(be, a->proj, g.up, NULL, a->dup, b.ln2, w.up, N, C, F, 1);
        k->residual_fwd(be, a->dln, a->dln, a->proj, N * C);
        k->rmsnorm_bwd(be, a->dres, g.ln2, a->dln, b.res2, w.ln2, b.ln2_rstd, N, C);
        /* attention: dres is now d loss / d res2, which passes unchanged to x */
        k->matmul_bwd(be, a->datty, g.o, NULL, a->dres, b.atty, w.o, N, Q, C, 1);
        k->attention_bwd(be, a->dq, a->dk, a->dv, a->attscr, a->datty, b.q, b.k, b.v, b.lse, &as);
        tern_model_check_out(m, a->dq, N * Q, "attention_bwd", (long)l);
        k->rope_bwd(be, a->dq, freq, B, T, NH, hs, Q, 0);
        k->rope_bwd(be, a->dk, freq, B, T, NKV, hs, KV, 0);
        k->matmul_bwd(be, a->dln, g.q, g.qb, a->dq, b.ln1, w.q, N, C, Q, 1);
        k->matmul_bwd(be, a->proj, g.k, g.kb, a->dk, b.ln1, w.k, N, C, KV, 1);
        k->residual_fwd(be, a->dln, a->dln, a->proj, N * C);
        k->matmul_bwd(be, a->proj, g.v, g.vb, a->dv, b.ln1, w.v, N, C, KV, 1);
        k->residual_fwd(be, a->dln, a->dln, a->proj, N * C);
        k->rmsnorm_bwd(be, a->dres, g.ln1, a->dln, b.x, w.ln1, b.ln1_rstd, N, C);
        tern_model_check_out(m, a->dres, N * C, "rmsnorm_bwd (input_layernorm)", (long)l);
        tern_model_hook(m, (int)l);
    }
    k->encoder_bwd(be, tern_model_ptr(m, "model.embed_tokens.weight", 1), NULL, a->dres, m->inputs, B, T, C);
    tern_model_hook(m, -1);
}

/* ---- one position with the cache ---- */

static void llama_decode(tern_model *m, tern_model_cache *cc, size_t pos) {
    const tern_kern *k = m->k;
    tern_backend *be = m->be;
    const tern_model_config *c = &m->cfg;
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, F = (size_t)c->ffn_dim, hs = (size_t)c->head_dim,
           NH = (size_t)c->n_head, NKV = (size_t)c->n_kv_head, Q = NH * hs, KV = NKV * hs;
    float eps = (float)c->norm_eps;
    const float *freq = ((llama_const *)m->fc)->freq;
    float *q = cc->qkv, *kk = cc->qkv + Q, *vv = cc->qkv + Q + KV;
    k->encoder_fwd(be, cc->x, cc->tok, tern_model_ptr(m, "model.embed_tokens.weight", 0), NULL, 1, 1, C);
    for (size_t l = 0; l < L; l++) {
        layer_w w = weights(m, l, m->params);
        float *kc = cc->kc + l * cc->cap * KV, *vc = cc->vc + l * cc->cap * KV;
        k->rmsnorm_fwd(be, cc->h, cc->rstd, cc->x, w.ln1, 1, C, eps);
        k->matmul_fwd(be, q, cc->h, w.q, w.qb, 1, C, Q, 1);
        k->matmul_fwd(be, kk, cc->h, w.k, w.kb, 1, C, KV, 1);
        k->matmul_fwd(be, vv, cc->h, w.v, w.vb, 1, C, KV, 1);
        k->rope_fwd(be, q, freq, 1, 1, NH, hs, Q, pos);
        k->rope_fwd(be, kk, freq, 1, 1, NKV, hs, KV, pos);
        be->mem->copy(be, kc + pos * KV, kk, KV * sizeof(float));
        be->mem->copy(be, vc + pos * KV, vv, KV * sizeof(float));
        k->attention_decode(be, cc->y, cc->att, q, kc, vc, pos + 1, NH, NKV, hs, KV);
        k->matmul_fwd(be, cc->tmp, cc->y, w.o, NULL, 1, Q, C, 1);
        k->residual_fwd(be, cc->x, cc->x, cc->tmp, C);
        k->rmsnorm_fwd(be, cc->h, cc->rstd, cc->x, w.ln2, 1, C, eps);
        k->matmul_fwd(be, cc->f1, cc->h, w.gate, NULL, 1, C, F, 1);
        k->matmul_fwd(be, cc->f2, cc->h, w.up, NULL, 1, C, F, 1);
        k->swiglu_fwd(be, cc->f1, cc->f1, cc->f2, F);
        k->matmul_fwd(be, cc->tmp, cc->f1, w.down, NULL, 1, F, C, 1);
        k->residual_fwd(be, cc->x, cc->x, cc->tmp, C);
    }
    k->rmsnorm_fwd(be, cc->h, cc->rstd, cc->x, tern_model_ptr(m, "model.norm.weight", 0), 1, C, eps);
    be->mem->copy(be, cc->x, cc->h, C * sizeof(float));
}

static double llama_flops(const tern_model_config *c, size_t T) {
    /* 6 per parameter in a matrix product: all but the token embedding's lookup (which is the
     * head's product when tied), plus attention's 12 L T (NH hs) */
    double P = (double)tern_model_config_num_params(c);
    if (!c->tie_embeddings) P -= (double)c->vocab_size * c->n_embd;
    return 6.0 * P + 12.0 * c->n_layer * (double)T * c->n_head * c->head_dim;
}

const tern_family tern_family_llama = {
    .name = "llama",
    .hf_prefix = "",
    .check = llama_check,
    .setup = llama_setup,
    .teardown = llama_teardown,
    .tensors = llama_tensors,
    .acts = llama_acts_sizes,
    .bind = llama_bind,
    .unbind = llama_unbind,
    .forward = llama_forward,
    .backward = llama_backward,
    .decode = llama_decode,
    .head = llama_head,
    .flops_per_token = llama_flops,
};
