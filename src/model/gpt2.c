/* The GPT-2 family as Hugging Face's GPT2LMHeadModel computes it: learned token and position
 * embeddings, pre-LayerNorm blocks with causal multi-head attention (q, k and v packed in one
 * projection) and a 4x GELU(tanh) MLP, a final LayerNorm, and an output head tied to the token
 * embedding; no dropout. Weights in Conv1D's [in, out] layout, as Hugging Face stores them. The
 * structure of one flat buffer per kind follows llm.c; model.c holds what families share. */
#include "model/model_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The parameter kinds, in flat-buffer order. X(field, HF name suffix, per layer, rows, cols,
 * decay, init): cols 0 means a vector. init: 'n' normal(0.02), 'r' a residual projection
 * normal(0.02/sqrt(2L)), 'z' zeros, 'o' ones. This one list drives the offsets, the names, the
 * decay flags and the initialisation. */
#define GPT2_PARAMS(X)                                                                        \
    X(wte, "wte.weight", 0, V, C, 1, 'n')                                                     \
    X(wpe, "wpe.weight", 0, maxT, C, 1, 'n')                                                  \
    X(ln1w, "ln_1.weight", 1, C, 0, 0, 'o')                                                   \
    X(ln1b, "ln_1.bias", 1, C, 0, 0, 'z')                                                     \
    X(qkvw, "attn.c_attn.weight", 1, C, 3 * C, 1, 'n')                                        \
    X(qkvb, "attn.c_attn.bias", 1, 3 * C, 0, 0, 'z')                                          \
    X(attprojw, "attn.c_proj.weight", 1, C, C, 1, 'r')                                        \
    X(attprojb, "attn.c_proj.bias", 1, C, 0, 0, 'z')                                          \
    X(ln2w, "ln_2.weight", 1, C, 0, 0, 'o')                                                   \
    X(ln2b, "ln_2.bias", 1, C, 0, 0, 'z')                                                     \
    X(fcw, "mlp.c_fc.weight", 1, C, 4 * C, 1, 'n')                                            \
    X(fcb, "mlp.c_fc.bias", 1, 4 * C, 0, 0, 'z')                                              \
    X(fcprojw, "mlp.c_proj.weight", 1, 4 * C, C, 1, 'r')                                      \
    X(fcprojb, "mlp.c_proj.bias", 1, C, 0, 0, 'z')                                            \
    X(lnfw, "ln_f.weight", 0, C, 0, 0, 'o')                                                   \
    X(lnfb, "ln_f.bias", 0, C, 0, 0, 'z')

enum {
#define X(f, name, per_layer, rows, cols, decay, init) KIND_##f,
    GPT2_PARAMS(X)
#undef X
    NUM_KINDS
};

typedef struct {
#define X(f, name, per_layer, rows, cols, decay, init) float *f;
    GPT2_PARAMS(X)
#undef X
} gpt2_params;

/* Activations saved by the forward pass for the backward pass: X(field, elements) with sizes in
 * B, T, C, L, NH of the reserved shape. S is the number of blocks whose inner activations are
 * kept: L, or 1 with recomputation, where only each block's output (residual3) is kept for every
 * block and the backward pass recomputes a block's insides from its input just before it needs
 * them. */
#define GPT2_ACTS(X)                                                                          \
    X(encoded, B * T * C)                                                                     \
    X(ln1, S * B * T * C)                                                                     \
    X(ln1_mean, S * B * T)                                                                    \
    X(ln1_rstd, S * B * T)                                                                    \
    X(qkv, S * B * T * 3 * C)                                                                 \
    X(atty, S * B * T * C)                                                                    \
    X(lse, S * B * NH * T)                                                                    \
    X(attproj, S * B * T * C)                                                                 \
    X(residual2, S * B * T * C)                                                               \
    X(ln2, S * B * T * C)                                                                     \
    X(ln2_mean, S * B * T)                                                                    \
    X(ln2_rstd, S * B * T)                                                                    \
    X(fch, S * B * T * 4 * C)                                                                 \
    X(fch_gelu, S * B * T * 4 * C)                                                            \
    X(fcproj, S * B * T * C)                                                                  \
    X(residual3, L * B * T * C)                                                               \
    X(lnf, B * T * C)                                                                         \
    X(lnf_mean, B * T)                                                                        \
    X(lnf_rstd, B * T)                                                                        \
    /* backward scratch, reused layer by layer */                                             \
    X(dres, B * T * C)                                                                        \
    X(dln, B * T * C)                                                                         \
    X(datty, B * T * C)                                                                       \
    X(dqkv, B * T * 3 * C)                                                                    \
    X(dfch, B * T * 4 * C)                                                                    \
    X(attscr, TERN_ATT_SCRATCH(B, T, NH)) /* attention's working space, forward and backward */

enum {
#define X(f, n) ACT_##f,
    GPT2_ACTS(X)
#undef X
    NUM_ACTS
};

typedef struct {
    gpt2_params p, g;
#define X(f, n) float *f;
    GPT2_ACTS(X)
#undef X
} gpt2_state;

#define ST(m) ((gpt2_state *)(m)->fs)

static tern_status gpt2_check(const tern_model_config *c) {
    if (c->n_embd % c->n_head)
        return tern_err(TERN_EINVAL, "n_embd (%d) must be divisible by n_head (%d)", c->n_embd, c->n_head);
    if (c->n_kv_head != c->n_head)
        return tern_err(TERN_EINVAL, "GPT-2 has as many key/value heads as heads (%d), got %d", c->n_head, c->n_kv_head);
    if (c->ffn_dim != 4 * c->n_embd) return tern_err(TERN_EINVAL, "GPT-2's MLP is 4 x n_embd (%d) wide, got %d", 4 * c->n_embd, c->ffn_dim);
    if (c->head_dim != c->n_embd / c->n_head)
        return tern_err(TERN_EINVAL, "GPT-2's head size is n_embd / n_head (%d), got %d", c->n_embd / c->n_head, c->head_dim);
    if (!c->tie_embeddings) return tern_err(TERN_EINVAL, "GPT-2's head is tied to its token embedding");
    return TERN_OK;
}

/* Table order is Hugging Face's: wte, wpe, then each block's tensors, then ln_f. */
static size_t gpt2_tensors(const tern_model_config *c, tern_tensor *out) {
    size_t L = (size_t)c->n_layer, V = (size_t)c->vocab_size, C = (size_t)c->n_embd, maxT = (size_t)c->n_ctx, n = 0;
    (void)V;
    (void)maxT;
    float resid_std = 0.02f / sqrtf(2.0f * (float)c->n_layer);
#define ADD(nm, layer, rows, cols, dec, in)                                                                            \
    do {                                                                                                               \
        if (out) {                                                                                                     \
            tern_tensor *t = &out[n];                                                                                  \
            memset(t, 0, sizeof *t);                                                                                   \
            if ((layer) >= 0)                                                                                          \
                snprintf(t->name, sizeof t->name, "h.%d.%s", (int)(layer), nm);                                         \
            else                                                                                                       \
                snprintf(t->name, sizeof t->name, "%s", nm);                                                           \
            t->ndim = (cols) != 0 ? 2 : 1;                                                                             \
            t->shape[0] = (rows);                                                                                      \
            t->shape[1] = (cols);                                                                                      \
            t->decay = (dec);                                                                                          \
            t->init = (in) == 'r' ? 'n' : (in);                                                                        \
            t->init_std = (in) == 'r' ? resid_std : 0.02f;                                                             \
            /* the backward unit after which its gradient is final: ln_f's first, then each block's, \
             * the embeddings (wte is also the head) at the end */                                                     \
            t->hook = (layer) >= 0 ? (int)(layer) : !strncmp(nm, "ln_f", 4) ? (int)L : -1;                             \
        }                                                                                                              \
        n++;                                                                                                           \
    } while (0)
    /* embeddings, blocks, final: three passes over the one list */
#define X(f, nm, pl, r, cc, d, in)                                                                                     \
    if (!pl && (KIND_##f == KIND_wte || KIND_##f == KIND_wpe)) ADD(nm, -1, r, cc, d, in);
    GPT2_PARAMS(X)
#undef X
    for (size_t l = 0; l < L; l++) {
#define X(f, nm, pl, r, cc, d, in)                                                                                     \
    if (pl) ADD(nm, (long)l, r, cc, d, in);
        GPT2_PARAMS(X)
#undef X
    }
#define X(f, nm, pl, r, cc, d, in)                                                                                     \
    if (!pl && KIND_##f != KIND_wte && KIND_##f != KIND_wpe) ADD(nm, -1, r, cc, d, in);
    GPT2_PARAMS(X)
#undef X
#undef ADD
    return n;
}

static size_t gpt2_acts(const tern_model_config *c, size_t B, size_t T, int recompute, size_t *sizes) {
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, NH = (size_t)c->n_head;
    size_t S = recompute ? 1 : L;
    size_t tmp[] = {
#define X(f, n) (n),
        GPT2_ACTS(X)
#undef X
    };
    if (sizes) memcpy(sizes, tmp, sizeof tmp);
    return NUM_ACTS;
}

/* The flat buffer holds the table in order, block after block: block l's tensor of a kind is
 * layer_floats after block l-1's (12 C^2 + 13 C floats: two LayerNorms, the attention's and the
 * MLP's weights and biases), so a block's gradients are one contiguous range. */
static size_t layer_floats(const tern_model_config *c) {
    size_t C = (size_t)c->n_embd;
    return 12 * C * C + 13 * C;
}

/* Points each kind at its tensor (block 0's for per-block kinds). */
static void point_params(tern_model *m, gpt2_params *p, int g) {
    size_t L = (size_t)m->cfg.n_layer;
    (void)L;
#define X(f, nm, pl, r, cc, d, in) p->f = tern_model_ptr(m, pl ? "h.0." nm : nm, g);
    GPT2_PARAMS(X)
#undef X
}

static tern_status gpt2_bind(tern_model *m) {
    gpt2_state *s = calloc(1, sizeof *s);
    if (!s) return tern_err(TERN_ENOMEM, "out of memory");
    point_params(m, &s->p, 0);
    point_params(m, &s->g, 1);
    size_t i = 0;
#define X(f, n) s->f = m->slot[i++];
    GPT2_ACTS(X)
#undef X
    m->fs = s;
    m->xf = s->lnf;
    m->dxf = s->dln; /* the head's gradient goes where ln_f's backward reads it */
    return TERN_OK;
}

static void gpt2_unbind(tern_model *m) {
    free(m->fs);
    m->fs = NULL;
}

/* Layer l's slice of an (L, ...) activation: per-layer stride uses the reserved shape. SLOT is
 * the same for the inner activations, which all blocks share under recomputation. */
#define LAYER(buf, l, per_row) ((buf) + (l) * m->resB * m->resT * (per_row))
#define SLOT(buf, l, per_row) LAYER(buf, m->recompute ? 0 : (l), per_row)

/* Where block l's activations live: its input, its slot of inner activations, its output. */
typedef struct {
    const float *x;
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *lse, *attproj, *res2, *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu,
        *fcproj, *res3;
} block_acts;

static block_acts block_slots(tern_model *m, size_t l) {
    size_t C = (size_t)m->cfg.n_embd, NH = (size_t)m->cfg.n_head;
    gpt2_state *a = ST(m);
    return (block_acts){
        .x = l == 0 ? a->encoded : LAYER(a->residual3, l - 1, C),
        .ln1 = SLOT(a->ln1, l, C), .ln1_mean = SLOT(a->ln1_mean, l, 1), .ln1_rstd = SLOT(a->ln1_rstd, l, 1),
        .qkv = SLOT(a->qkv, l, 3 * C), .atty = SLOT(a->atty, l, C), .lse = SLOT(a->lse, l, NH),
        .attproj = SLOT(a->attproj, l, C), .res2 = SLOT(a->residual2, l, C),
        .ln2 = SLOT(a->ln2, l, C), .ln2_mean = SLOT(a->ln2_mean, l, 1), .ln2_rstd = SLOT(a->ln2_rstd, l, 1),
        .fch = SLOT(a->fch, l, 4 * C), .fch_gelu = SLOT(a->fch_gelu, l, 4 * C),
        .fcproj = SLOT(a->fcproj, l, C), .res3 = LAYER(a->residual3, l, C),
    };
}

/* GPT-2's packed (B,T,3C) q, k, v as attention's shape. */
static tern_att_shape att_shape(const tern_model *m, size_t B, size_t T) {
    size_t C = (size_t)m->cfg.n_embd, NH = (size_t)m->cfg.n_head;
    return (tern_att_shape){B, T, NH, NH, C / NH, 3 * C, 3 * C, 3 * C};
}

/* Block l's forward pass over the last batch: from its input (the embeddings or block l-1's
 * output) to its output residual3[l], through its slot of inner activations. */
static void block_fwd(tern_model *m, size_t l) {
    const tern_kern *k = m->k;
    tern_backend *be = m->be;
    size_t C = (size_t)m->cfg.n_embd, B = m->B, T = m->T, N = B * T;
    float eps = (float)m->cfg.norm_eps;
    gpt2_params *p = &ST(m)->p;
    size_t ls = layer_floats(&m->cfg);
    const block_acts b = block_slots(m, l);
    tern_att_shape as = att_shape(m, B, T);

    k->layernorm_fwd(be, b.ln1, b.ln1_mean, b.ln1_rstd, b.x, p->ln1w + l * ls, p->ln1b + l * ls, N, C, eps);
    tern_model_check_out(m, b.ln1, N * C, "layernorm_fwd (ln_1)", (long)l);
    k->matmul_fwd(be, b.qkv, b.ln1, p->qkvw + l * ls, p->qkvb + l * ls, N, C, 3 * C, 0);
    tern_model_check_out(m, b.qkv, N * 3 * C, "matmul_fwd (attn.c_attn)", (long)l);
    k->attention_fwd(be, b.atty, b.lse, ST(m)->attscr, b.qkv, b.qkv + C, b.qkv + 2 * C, &as);
    tern_model_check_out(m, b.atty, N * C, "attention_fwd", (long)l);
    k->matmul_fwd(be, b.attproj, b.atty, p->attprojw + l * ls, p->attprojb + l * ls, N, C, C, 0);
    tern_model_check_out(m, b.attproj, N * C, "matmul_fwd (attn.c_proj)", (long)l);
    if (k->residual_layernorm_fwd) {
        k->residual_layernorm_fwd(be, b.res2, b.ln2, b.ln2_mean, b.ln2_rstd, b.x, b.attproj, p->ln2w + l * ls, p->ln2b + l * ls, N, C,
                                  eps);
    } else {
        k->residual_fwd(be, b.res2, b.x, b.attproj, N * C);
        k->layernorm_fwd(be, b.ln2, b.ln2_mean, b.ln2_rstd, b.res2, p->ln2w + l * ls, p->ln2b + l * ls, N, C, eps);
    }
    tern_model_check_out(m, b.res2, N * C, "residual_fwd (attention)", (long)l);
    tern_model_check_out(m, b.ln2, N * C, "layernorm_fwd (ln_2)", (long)l);
    if (k->bias_gelu_fwd) {
        k->matmul_fwd(be, b.fch, b.ln2, p->fcw + l * ls, NULL, N, C, 4 * C, 0);
        k->bias_gelu_fwd(be, b.fch_gelu, b.fch, p->fcb + l * ls, N, 4 * C);
    } else {
        k->matmul_fwd(be, b.fch, b.ln2, p->fcw + l * ls, p->fcb + l * ls, N, C, 4 * C, 0);
        k->gelu_fwd(be, b.fch_gelu, b.fch, N * 4 * C);
    }
    tern_model_check_out(m, b.fch, N * 4 * C, "matmul_fwd (mlp.c_fc)", (long)l);
    tern_model_check_out(m, b.fch_gelu, N * 4 * C, "gelu_fwd", (long)l);
    k->matmul_fwd(be, b.fcproj, b.fch_gelu, p->fcprojw + l * ls, p->fcprojb + l * ls, N, 4 * C, C, 0);
    tern_model_check_out(m, b.fcproj, N * C, "matmul_fwd (mlp.c_proj)", (long)l);
    k->residual_fwd(be, b.res3, b.res2, b.fcproj, N * C);
    tern_model_check_out(m, b.res3, N * C, "residual_fwd (mlp)", (long)l);
}

static void gpt2_forward(tern_model *m) {
    size_t L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd, N = m->B * m->T;
    gpt2_state *a = ST(m);
    m->k->encoder_fwd(m->be, a->encoded, m->inputs, a->p.wte, a->p.wpe, m->B, m->T, C);
    tern_model_check_out(m, a->encoded, N * C, "encoder_fwd", -1);
    for (size_t l = 0; l < L; l++) block_fwd(m, l);
    m->k->layernorm_fwd(m->be, a->lnf, a->lnf_mean, a->lnf_rstd, LAYER(a->residual3, L - 1, C), a->p.lnfw, a->p.lnfb, N, C,
                        (float)m->cfg.norm_eps);
    tern_model_check_out(m, a->lnf, N * C, "layernorm_fwd (ln_f)", -1);
}

/* The backward pass from d loss / d lnf (in dln, from the head) down to the embeddings. */
static void gpt2_backward(tern_model *m) {
    const tern_kern *k = m->k;
    tern_backend *be = m->be;
    size_t L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd, B = m->B, T = m->T, N = B * T;
    gpt2_state *a = ST(m);
    gpt2_params *p = &a->p, *g = &a->g;
    size_t ls = layer_floats(&m->cfg);
    tern_att_shape as = att_shape(m, B, T);

    be->mem->zero(be, a->dres, N * C * sizeof(float));
    k->layernorm_bwd(be, a->dres, g->lnfw, g->lnfb, a->dln, LAYER(a->residual3, L - 1, C), p->lnfw, a->lnf_mean, a->lnf_rstd,
                     N, C);
    tern_model_check_out(m, a->dres, N * C, "layernorm_bwd (ln_f)", -1);
    tern_model_hook(m, (int)L);
    /* dres now holds d loss / d residual3[L-1]; walk the blocks backwards. */
    for (size_t l = L; l-- > 0;) {
        /* under recomputation the shared slot still holds the last block's from the forward pass */
        if (m->recompute && l != L - 1) block_fwd(m, l);
        const block_acts b = block_slots(m, l);

        /* residual3 = residual2 + fcproj(gelu(fc(ln2(residual2)))) */
        k->matmul_bwd(be, a->dfch, g->fcprojw + l * ls, g->fcprojb + l * ls, a->dres, b.fch_gelu,
                      p->fcprojw + l * ls, N, 4 * C, C, 0);
        k->gelu_bwd(be, a->dfch, b.fch, a->dfch, N * 4 * C);
        k->matmul_bwd(be, a->dln, g->fcw + l * ls, g->fcb + l * ls, a->dfch, b.ln2, p->fcw + l * ls, N, C,
                      4 * C, 0);
        k->layernorm_bwd(be, a->dres, g->ln2w + l * ls, g->ln2b + l * ls, a->dln, b.res2, p->ln2w + l * ls, b.ln2_mean,
                         b.ln2_rstd, N, C);
        /* residual2 = x + attproj(attention(qkv(ln1(x)))) */
        k->matmul_bwd(be, a->datty, g->attprojw + l * ls, g->attprojb + l * ls, a->dres, b.atty, p->attprojw + l * ls,
                      N, C, C, 0);
        k->attention_bwd(be, a->dqkv, a->dqkv + C, a->dqkv + 2 * C, a->attscr, a->datty, b.qkv, b.qkv + C, b.qkv + 2 * C,
                         b.lse, &as);
        tern_model_check_out(m, a->dqkv, N * 3 * C, "attention_bwd", (long)l);
        k->matmul_bwd(be, a->dln, g->qkvw + l * ls, g->qkvb + l * ls, a->dqkv, b.ln1, p->qkvw + l * ls, N,
                      C, 3 * C, 0);
        k->layernorm_bwd(be, a->dres, g->ln1w + l * ls, g->ln1b + l * ls, a->dln, b.x, p->ln1w + l * ls, b.ln1_mean,
                         b.ln1_rstd, N, C);
        tern_model_check_out(m, a->dres, N * C, "layernorm_bwd (ln_1)", (long)l);
        tern_model_hook(m, (int)l);
    }
    k->encoder_bwd(be, g->wte, g->wpe, a->dres, m->inputs, B, T, C);
    tern_model_hook(m, -1);
}

/* One position through the blocks with the cache (llama2.c's run.c, on the kernel table). */
static void gpt2_decode(tern_model *m, tern_model_cache *c, size_t pos) {
    const tern_kern *k = m->k;
    tern_backend *be = m->be;
    size_t L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd, NH = (size_t)m->cfg.n_head, hs = C / NH;
    float eps = (float)m->cfg.norm_eps;
    gpt2_params pp, *p = &pp;
    point_params(m, p, 0); /* from the table: no activations need be reserved to generate */
    size_t ls = layer_floats(&m->cfg);
    k->encoder_fwd(be, c->x, c->tok, p->wte, p->wpe + pos * C, 1, 1, C);
    for (size_t l = 0; l < L; l++) {
        float *kc = c->kc + l * c->cap * C, *vc = c->vc + l * c->cap * C;
        k->layernorm_fwd(be, c->h, c->mean, c->rstd, c->x, p->ln1w + l * ls, p->ln1b + l * ls, 1, C, eps);
        k->matmul_fwd(be, c->qkv, c->h, p->qkvw + l * ls, p->qkvb + l * ls, 1, C, 3 * C, 0);
        be->mem->copy(be, kc + pos * C, c->qkv + C, C * sizeof(float));
        be->mem->copy(be, vc + pos * C, c->qkv + 2 * C, C * sizeof(float));
        k->attention_decode(be, c->y, c->att, c->qkv, kc, vc, pos + 1, NH, NH, hs, C);
        k->matmul_fwd(be, c->tmp, c->y, p->attprojw + l * ls, p->attprojb + l * ls, 1, C, C, 0);
        k->residual_fwd(be, c->x, c->x, c->tmp, C);
        k->layernorm_fwd(be, c->h, c->mean, c->rstd, c->x, p->ln2w + l * ls, p->ln2b + l * ls, 1, C, eps);
        k->matmul_fwd(be, c->f1, c->h, p->fcw + l * ls, p->fcb + l * ls, 1, C, 4 * C, 0);
        k->gelu_fwd(be, c->f2, c->f1, 4 * C);
        k->matmul_fwd(be, c->tmp, c->f2, p->fcprojw + l * ls, p->fcprojb + l * ls, 1, 4 * C, C, 0);
        k->residual_fwd(be, c->x, c->x, c->tmp, C);
    }
    k->layernorm_fwd(be, c->h, c->mean, c->rstd, c->x, p->lnfw, p->lnfb, 1, C, eps);
    be->mem->copy(be, c->x, c->h, C * sizeof(float));
}

static const char *gpt2_head(const tern_model_config *c) {
    (void)c;
    return "wte.weight";
}

static double gpt2_flops(const tern_model_config *c, size_t T) {
    /* 6 per parameter except the position embedding (a lookup; the tied token embedding is the
     * head's product) plus attention's 12 L T C, as nanoGPT and PaLM's appendix B count */
    double P = (double)tern_model_config_num_params(c) - (double)c->n_ctx * c->n_embd;
    return 6.0 * P + 12.0 * c->n_layer * (double)T * c->n_embd;
}

const tern_family tern_family_gpt2 = {
    .name = "gpt2",
    .hf_prefix = "transformer.",
    .check = gpt2_check,
    .tensors = gpt2_tensors,
    .acts = gpt2_acts,
    .bind = gpt2_bind,
    .unbind = gpt2_unbind,
    .forward = gpt2_forward,
    .backward = gpt2_backward,
    .decode = gpt2_decode,
    .head = gpt2_head,
    .flops_per_token = gpt2_flops,
};
