/* GPT-2's forward and backward passes as sequences of backend kernels, over one buffer each for
 * parameters, gradients and activations. Follows the equations of Hugging Face's GPT2LMHeadModel
 * (pre-LN blocks, tied head); the structure of one flat buffer per kind follows llm.c. The model
 * never branches on the backend: it only calls the kernel table. */
#include "tern/model.h"

#include "kern/kern.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The parameter kinds, in flat-buffer order. X(field, HF name suffix, per layer, rows, cols,
 * decay, init): cols 0 means a vector. init: 'n' normal(0.02), 'r' residual projection
 * normal(0.02/sqrt(2L)), 'z' zeros, 'o' ones. This one list drives the struct, the sizes, the
 * offsets, the names and the initialisation; nothing is listed twice. */
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

typedef struct {
#define X(f, name, per_layer, rows, cols, decay, init) float *f;
    GPT2_PARAMS(X)
#undef X
} gpt2_params;

enum {
#define X(f, name, per_layer, rows, cols, decay, init) KIND_##f,
    GPT2_PARAMS(X)
#undef X
    NUM_KINDS
};

/* The tied head and the cross-entropy run over chunks of this many rows (positions), so that no
 * (B*T, V) matrix of logits is kept when training (823 MB at GPT-2 small's B 4, T 1024). */
#define HEAD_CHUNK 512
#define HEAD_ROWS(n) ((n) < HEAD_CHUNK ? (n) : HEAD_CHUNK)

/* Activations saved by the forward pass for the backward pass. X(field, elements) with sizes in
 * B, T, C, L, NH, V of the reserved shape. S is the number of blocks whose inner activations are
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
    X(logits, HEAD_ROWS(B * T) * V) /* one chunk of rows; full logits live in full_logits */  \
    X(losses, B * T)                                                                          \
    /* backward scratch, reused layer by layer */                                             \
    X(dres, B * T * C)                                                                        \
    X(dln, B * T * C)                                                                         \
    X(datty, B * T * C)                                                                       \
    X(dqkv, B * T * 3 * C)                                                                    \
    X(dfch, B * T * 4 * C)                                                                    \
    X(attscr, TERN_ATT_SCRATCH(B, T, NH)) /* attention's working space, forward and backward */

typedef struct {
#define X(f, n) float *f;
    GPT2_ACTS(X)
#undef X
} gpt2_acts;

struct tern_gpt2 {
    tern_gpt2_config cfg;
    const tern_kern *k;
    float *params, *grads;
    size_t num_params;
    gpt2_params p, g;
    size_t kind_offset[NUM_KINDS], kind_numel[NUM_KINDS]; /* per layer for per-layer kinds */
    tern_tensor *tensors;
    size_t num_tensors;
    /* activations for the reserved shape */
    float *acts;
    size_t acts_floats, resB, resT;
    gpt2_acts a;
    int32_t *inputs, *targets; /* copies of the last batch, (resB, resT) */
    float *full_logits;        /* (B,T,V) of the last forward without targets; allocated then */
    size_t full_logits_cap;    /* floats */
    size_t B, T;               /* shape of the last forward */
    int have_targets;
    int detect;                /* check every kernel's output for non-finite values */
    int recompute;             /* keep one block's inner activations; recompute in backward */
    char anomaly[160];         /* the first kernel that produced one, "" if none */
    tern_gpt2_grad_hook grad_hook; /* see tern_gpt2_set_grad_hook */
    void *grad_hook_ctx;
};

tern_status tern_gpt2_config_check(const tern_gpt2_config *c) {
    if (c->n_layer < 1 || c->n_layer > 1024) return tern_err(TERN_EINVAL, "n_layer must be 1..1024, got %d", c->n_layer);
    if (c->n_head < 1) return tern_err(TERN_EINVAL, "n_head must be at least 1, got %d", c->n_head);
    if (c->n_embd < 1 || c->n_embd > 65536) return tern_err(TERN_EINVAL, "n_embd must be 1..65536, got %d", c->n_embd);
    if (c->n_embd % c->n_head)
        return tern_err(TERN_EINVAL, "n_embd (%d) must be divisible by n_head (%d)", c->n_embd, c->n_head);
    if (c->n_ctx < 1 || c->n_ctx > 1 << 20) return tern_err(TERN_EINVAL, "n_ctx must be 1..1048576, got %d", c->n_ctx);
    if (c->vocab_size < 2 || c->vocab_size > 1 << 24)
        return tern_err(TERN_EINVAL, "vocab_size must be 2..16777216, got %d", c->vocab_size);
    return TERN_OK;
}

static void kind_shape(const tern_gpt2_config *cfg, int kind, size_t *rows, size_t *cols, int *per_layer, int *decay,
                       char *init, const char **name) {
    size_t V = (size_t)cfg->vocab_size, C = (size_t)cfg->n_embd, maxT = (size_t)cfg->n_ctx;
    (void)V;
    (void)maxT;
    switch (kind) {
#define X(f, nm, pl, r, c, d, in)                                                             \
    case KIND_##f:                                                                            \
        *rows = (r);                                                                          \
        *cols = (c);                                                                          \
        *per_layer = (pl);                                                                    \
        *decay = (d);                                                                         \
        *init = (in);                                                                         \
        *name = (nm);                                                                         \
        break;
        GPT2_PARAMS(X)
#undef X
    default: TERN_ASSERT(0);
    }
}

size_t tern_gpt2_config_num_params(const tern_gpt2_config *cfg) {
    size_t total = 0;
    for (int k = 0; k < NUM_KINDS; k++) {
        size_t rows, cols;
        int pl, decay;
        char init;
        const char *name;
        kind_shape(cfg, k, &rows, &cols, &pl, &decay, &init, &name);
        total += rows * (cols ? cols : 1) * (pl ? (size_t)cfg->n_layer : 1);
    }
    return total;
}

static void point_params(gpt2_params *p, float *base, const size_t *off) {
#define X(f, name, per_layer, rows, cols, decay, init) p->f = base + off[KIND_##f];
    GPT2_PARAMS(X)
#undef X
}

tern_status tern_gpt2_init(tern_gpt2 **out, const tern_gpt2_config *cfg) {
    *out = NULL;
    TERN_TRY(tern_gpt2_config_check(cfg));
    tern_gpt2 *m = calloc(1, sizeof *m);
    if (!m) return tern_err(TERN_ENOMEM, "out of memory for the model");
    m->cfg = *cfg;
    m->k = tern_kern_get();
    size_t L = (size_t)cfg->n_layer, off = 0, ntens = 0;
    for (int k = 0; k < NUM_KINDS; k++) {
        size_t rows, cols;
        int pl, decay;
        char init;
        const char *name;
        kind_shape(cfg, k, &rows, &cols, &pl, &decay, &init, &name);
        m->kind_offset[k] = off;
        m->kind_numel[k] = rows * (cols ? cols : 1);
        off += m->kind_numel[k] * (pl ? L : 1);
        ntens += pl ? L : 1;
    }
    m->num_params = off;
    tern_status st;
    if ((st = tern_alloc((void **)&m->params, off * sizeof(float), "the model's parameters")) != TERN_OK ||
        (st = tern_alloc((void **)&m->grads, off * sizeof(float), "the model's gradients")) != TERN_OK) {
        tern_gpt2_free(m);
        return st;
    }
    m->tensors = calloc(ntens, sizeof(tern_tensor));
    if (!m->tensors) {
        tern_gpt2_free(m);
        return tern_err(TERN_ENOMEM, "out of memory for the tensor table");
    }
    /* Table order is Hugging Face's: wte, wpe, then each block's tensors, then ln_f. */
    size_t t = 0;
    for (int pass = 0; pass < 3; pass++) {
        size_t lmax = pass == 1 ? L : 1;
        for (size_t l = 0; l < lmax; l++)
            for (int k = 0; k < NUM_KINDS; k++) {
                size_t rows, cols;
                int pl, decay;
                char init;
                const char *name;
                kind_shape(cfg, k, &rows, &cols, &pl, &decay, &init, &name);
                int want = pass == 1 ? pl : (!pl && ((pass == 0) == (k == KIND_wte || k == KIND_wpe)));
                if (!want) continue;
                tern_tensor *tt = &m->tensors[t++];
                if (pl)
                    snprintf(tt->name, sizeof tt->name, "h.%zu.%s", l, name);
                else
                    snprintf(tt->name, sizeof tt->name, "%s", name);
                tt->ndim = cols ? 2 : 1;
                tt->shape[0] = rows;
                tt->shape[1] = cols;
                tt->numel = m->kind_numel[k];
                tt->offset = m->kind_offset[k] + (pl ? l * tt->numel : 0);
                tt->decay = decay;
            }
    }
    TERN_ASSERT(t == ntens);
    m->num_tensors = ntens;
    point_params(&m->p, m->params, m->kind_offset);
    point_params(&m->g, m->grads, m->kind_offset);
    *out = m;
    return TERN_OK;
}

void tern_gpt2_free(tern_gpt2 *m) {
    if (!m) return;
    tern_free(m->params);
    tern_free(m->grads);
    tern_free(m->acts);
    tern_free(m->full_logits);
    free(m->tensors);
    free(m->inputs);
    free(m->targets);
    free(m);
}

void tern_gpt2_set_grad_hook(tern_gpt2 *m, tern_gpt2_grad_hook fn, void *ctx) {
    m->grad_hook = fn;
    m->grad_hook_ctx = ctx;
}

tern_status tern_gpt2_set_kernels(tern_gpt2 *m, const char *name) {
    const tern_kern *k = tern_kern_by_name(name);
    if (!k) return tern_err(TERN_EINVAL, "unknown kernel set '%s' (known: ref, cpu)", name);
    m->k = k;
    return TERN_OK;
}

/* Floats of each activation buffer for batches of B x T (the GPT2_ACTS list), and their sum,
 * each rounded up to 16 floats (64 bytes) as laid out. */
static size_t acts_sizes(const tern_gpt2_config *cfg, size_t B, size_t T, int recompute, size_t *sizes) {
    size_t L = (size_t)cfg->n_layer, C = (size_t)cfg->n_embd, NH = (size_t)cfg->n_head, V = (size_t)cfg->vocab_size;
    size_t S = recompute ? 1 : L;
    size_t tmp[] = {
#define X(f, n) (n),
        GPT2_ACTS(X)
#undef X
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) {
        if (sizes) sizes[i] = tmp[i];
        total += (tmp[i] + 15) & ~(size_t)15;
    }
    return total;
}

size_t tern_gpt2_activation_bytes_for(const tern_gpt2_config *cfg, size_t B, size_t T, int recompute) {
    return acts_sizes(cfg, B, T, recompute, NULL) * sizeof(float);
}

void tern_gpt2_set_recompute(tern_gpt2 *m, int on) {
    if (!!on == m->recompute) return;
    m->recompute = !!on;
    /* the layout changes: drop the buffers so that the next reserve lays them out anew */
    tern_free(m->acts);
    m->acts = NULL;
    m->acts_floats = m->resB = m->resT = 0;
}

tern_status tern_gpt2_reserve(tern_gpt2 *m, size_t B, size_t T) {
    if (B == 0 || T == 0) return tern_err(TERN_EINVAL, "batch and sequence length must be positive");
    if (T > (size_t)m->cfg.n_ctx)
        return tern_err(TERN_EINVAL, "sequence length %zu is longer than the model's context (n_ctx %d)", T, m->cfg.n_ctx);
    if (m->acts && B <= m->resB && T <= m->resT) return TERN_OK;
    size_t sizes[64];
    size_t total = acts_sizes(&m->cfg, B, T, m->recompute, sizes);
    tern_free(m->acts);
    free(m->inputs);
    free(m->targets);
    m->acts = NULL;
    m->inputs = m->targets = NULL;
    m->resB = m->resT = 0;
    TERN_TRY(tern_alloc((void **)&m->acts, total * sizeof(float), "activations"));
    m->inputs = malloc(B * T * sizeof(int32_t));
    m->targets = malloc(B * T * sizeof(int32_t));
    if (!m->inputs || !m->targets) return tern_err(TERN_ENOMEM, "out of memory for the batch");
    float *p = m->acts;
    size_t i = 0;
#define X(f, n)                                                                               \
    m->a.f = p;                                                                               \
    p += (sizes[i++] + 15) & ~(size_t)15;
    GPT2_ACTS(X)
#undef X
    m->acts_floats = total;
    m->resB = B;
    m->resT = T;
    return TERN_OK;
}

size_t tern_gpt2_activation_bytes(const tern_gpt2 *m) { return m->acts_floats * sizeof(float); }

void tern_gpt2_init_weights(tern_gpt2 *m, uint64_t seed) {
    float resid_std = 0.02f / sqrtf(2.0f * (float)m->cfg.n_layer);
    for (size_t t = 0; t < m->num_tensors; t++) {
        const tern_tensor *tt = &m->tensors[t];
        float *w = m->params + tt->offset;
        const char *dot = strrchr(tt->name, '.');
        int is_bias = !strcmp(dot, ".bias");
        int is_ln = strstr(tt->name, "ln_") != NULL;
        int is_resid = strstr(tt->name, "c_proj.weight") != NULL;
        if (is_bias) {
            memset(w, 0, tt->numel * sizeof(float));
        } else if (is_ln) {
            for (size_t i = 0; i < tt->numel; i++) w[i] = 1.0f;
        } else {
            float std = is_resid ? resid_std : 0.02f;
            uint64_t stream = tern_rng_stream("init", t, 0);
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < tt->numel; i++) w[i] = std * tern_rng_normal(seed, stream, i);
        }
    }
}

/* Layer l's slice of an (L, ...) activation: per-layer stride uses the reserved shape. SLOT is
 * the same for the inner activations, which all blocks share under recomputation. */
#define LAYER(buf, l, per_row) ((buf) + (l) * m->resB * m->resT * (per_row))
#define SLOT(buf, l, per_row) LAYER(buf, m->recompute ? 0 : (l), per_row)

void tern_gpt2_set_anomaly_detection(tern_gpt2 *m, int on) {
    m->detect = on;
    m->anomaly[0] = 0;
}

const char *tern_gpt2_anomaly(const tern_gpt2 *m) { return m->anomaly[0] ? m->anomaly : NULL; }

/* With detection on, records the first kernel whose output holds a non-finite value. */
static void check_out(tern_gpt2 *m, const float *p, size_t n, const char *kernel, long layer) {
    if (!m->detect || m->anomaly[0]) return;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) {
            if (layer >= 0)
                snprintf(m->anomaly, sizeof m->anomaly, "%s of block %ld produced %g at element %zu", kernel, layer, p[i], i);
            else
                snprintf(m->anomaly, sizeof m->anomaly, "%s produced %g at element %zu", kernel, p[i], i);
            return;
        }
}

/* Where block l's activations live: its input, its slot of inner activations, its output. */
typedef struct {
    const float *x;
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *lse, *attproj, *res2, *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu,
        *fcproj, *res3;
} block_acts;

static block_acts block_slots(tern_gpt2 *m, size_t l) {
    size_t C = (size_t)m->cfg.n_embd, NH = (size_t)m->cfg.n_head;
    gpt2_acts *a = &m->a;
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

/* Block l's forward pass over the batch of the last tern_gpt2_forward: from its input (the
 * embeddings or block l-1's output) to its output residual3[l], through its slot of inner
 * activations. */
static void block_fwd(tern_gpt2 *m, size_t l) {
    const tern_kern *k = m->k;
    size_t C = (size_t)m->cfg.n_embd, NH = (size_t)m->cfg.n_head, B = m->B, T = m->T, N = B * T;
    gpt2_params *p = &m->p;
    const block_acts b = block_slots(m, l);

    k->layernorm_fwd(b.ln1, b.ln1_mean, b.ln1_rstd, b.x, p->ln1w + l * C, p->ln1b + l * C, N, C);
    check_out(m, b.ln1, N * C, "layernorm_fwd (ln_1)", (long)l);
    k->matmul_fwd(b.qkv, b.ln1, p->qkvw + l * C * 3 * C, p->qkvb + l * 3 * C, N, C, 3 * C);
    check_out(m, b.qkv, N * 3 * C, "matmul_fwd (attn.c_attn)", (long)l);
    k->attention_fwd(b.atty, b.lse, m->a.attscr, b.qkv, B, T, C, NH);
    check_out(m, b.atty, N * C, "attention_fwd", (long)l);
    k->matmul_fwd(b.attproj, b.atty, p->attprojw + l * C * C, p->attprojb + l * C, N, C, C);
    check_out(m, b.attproj, N * C, "matmul_fwd (attn.c_proj)", (long)l);
    k->residual_fwd(b.res2, b.x, b.attproj, N * C);
    check_out(m, b.res2, N * C, "residual_fwd (attention)", (long)l);
    k->layernorm_fwd(b.ln2, b.ln2_mean, b.ln2_rstd, b.res2, p->ln2w + l * C, p->ln2b + l * C, N, C);
    check_out(m, b.ln2, N * C, "layernorm_fwd (ln_2)", (long)l);
    k->matmul_fwd(b.fch, b.ln2, p->fcw + l * C * 4 * C, p->fcb + l * 4 * C, N, C, 4 * C);
    check_out(m, b.fch, N * 4 * C, "matmul_fwd (mlp.c_fc)", (long)l);
    k->gelu_fwd(b.fch_gelu, b.fch, N * 4 * C);
    check_out(m, b.fch_gelu, N * 4 * C, "gelu_fwd", (long)l);
    k->matmul_fwd(b.fcproj, b.fch_gelu, p->fcprojw + l * 4 * C * C, p->fcprojb + l * C, N, 4 * C, C);
    check_out(m, b.fcproj, N * C, "matmul_fwd (mlp.c_proj)", (long)l);
    k->residual_fwd(b.res3, b.res2, b.fcproj, N * C);
    check_out(m, b.res3, N * C, "residual_fwd (mlp)", (long)l);
}

/* Checks the batch, keeps a copy, and runs the embeddings, the blocks and ln_f. */
static tern_status forward_body(tern_gpt2 *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T) {
    if (!m->acts || B > m->resB || T > m->resT)
        return tern_err(TERN_EINVAL, "batch %zux%zu exceeds the reserved %zux%zu", B, T, m->resB, m->resT);
    const tern_kern *k = m->k;
    size_t L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd, V = (size_t)m->cfg.vocab_size, N = B * T;
    for (size_t i = 0; i < N; i++) {
        if (inputs[i] < 0 || (size_t)inputs[i] >= V)
            return tern_err(TERN_EINVAL, "input token %d at position %zu is outside the vocabulary (size %zu)", inputs[i],
                            i, V);
        if (targets && (targets[i] < 0 || (size_t)targets[i] >= V))
            return tern_err(TERN_EINVAL, "target token %d at position %zu is outside the vocabulary (size %zu)",
                            targets[i], i, V);
    }
    memcpy(m->inputs, inputs, N * sizeof(int32_t));
    if (targets) memcpy(m->targets, targets, N * sizeof(int32_t));
    m->B = B;
    m->T = T;
    m->have_targets = targets != NULL;

    gpt2_params *p = &m->p;
    gpt2_acts *a = &m->a;
    m->anomaly[0] = 0;
    k->encoder_fwd(a->encoded, m->inputs, p->wte, p->wpe, B, T, C);
    check_out(m, a->encoded, N * C, "encoder_fwd", -1);
    for (size_t l = 0; l < L; l++) block_fwd(m, l);
    k->layernorm_fwd(a->lnf, a->lnf_mean, a->lnf_rstd, LAYER(a->residual3, L - 1, C), p->lnfw, p->lnfb, N, C);
    check_out(m, a->lnf, N * C, "layernorm_fwd (ln_f)", -1);
    return TERN_OK;
}

/* The tied head (logits = lnf @ wte^T, wte being (V,C)) and the cross-entropy, HEAD_CHUNK rows at
 * a time through one chunk of logits: the per-position losses, and with bwd also the head's
 * backward pass for d(loss_scale * mean loss): dlogits = (softmax - onehot) * loss_scale / N over
 * the chunk, dlnf = dlogits @ wte into dln, dwte += dlogits^T @ lnf. */
static void head(tern_gpt2 *m, float loss_scale, int bwd) {
    const tern_kern *k = m->k;
    size_t C = (size_t)m->cfg.n_embd, V = (size_t)m->cfg.vocab_size, N = m->B * m->T;
    gpt2_acts *a = &m->a;
    float *lg = a->logits;
    for (size_t r0 = 0; r0 < N; r0 += HEAD_CHUNK) {
        size_t n = HEAD_ROWS(N - r0);
        k->sgemm(0, 1, n, V, C, 1.0f, a->lnf + r0 * C, C, m->p.wte, C, 0.0f, lg, V);
        check_out(m, lg, n * V, "sgemm (tied head, logits)", -1);
        k->crossentropy_fwd_bwd(a->losses + r0, bwd ? lg : NULL, lg, m->targets + r0, loss_scale / (float)N, n, V);
        if (!bwd) continue;
        check_out(m, lg, n * V, "crossentropy_bwd", -1);
        k->sgemm(0, 0, n, C, V, 1.0f, lg, V, m->p.wte, C, 0.0f, a->dln + r0 * C, C);
        k->sgemm(1, 0, V, C, n, 1.0f, lg, V, a->lnf + r0 * C, C, 1.0f, m->g.wte, C);
    }
    check_out(m, a->losses, N, "crossentropy_fwd", -1);
}

static float mean_loss(const tern_gpt2 *m) {
    size_t N = m->B * m->T;
    double s = 0.0;
    for (size_t i = 0; i < N; i++) s += m->a.losses[i];
    return (float)(s / (double)N);
}

tern_status tern_gpt2_forward(tern_gpt2 *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T,
                              float *loss) {
    TERN_TRY(forward_body(m, inputs, targets, B, T));
    size_t C = (size_t)m->cfg.n_embd, V = (size_t)m->cfg.vocab_size, N = B * T;
    if (targets) {
        head(m, 0.0f, 0);
        if (loss) *loss = mean_loss(m);
    } else {
        if (m->full_logits_cap < N * V) {
            tern_free(m->full_logits);
            m->full_logits = NULL;
            m->full_logits_cap = 0;
            TERN_TRY(tern_alloc((void **)&m->full_logits, N * V * sizeof(float), "logits"));
            m->full_logits_cap = N * V;
        }
        m->k->sgemm(0, 1, N, V, C, 1.0f, m->a.lnf, C, m->p.wte, C, 0.0f, m->full_logits, V);
        check_out(m, m->full_logits, N * V, "sgemm (tied head, logits)", -1);
    }
    if (m->anomaly[0]) return tern_err(TERN_ENUMERIC, "non-finite value in the forward pass: %s", m->anomaly);
    return TERN_OK;
}

void tern_gpt2_zero_grad(tern_gpt2 *m) { memset(m->grads, 0, m->num_params * sizeof(float)); }

/* The backward pass from d loss / d lnf (in dln, from head()) down to the embeddings. */
static void backward_body(tern_gpt2 *m) {
    const tern_kern *k = m->k;
    size_t L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd, NH = (size_t)m->cfg.n_head, B = m->B, T = m->T,
           N = B * T;
    gpt2_params *p = &m->p, *g = &m->g;
    gpt2_acts *a = &m->a;

    memset(a->dres, 0, N * C * sizeof(float));
    k->layernorm_bwd(a->dres, g->lnfw, g->lnfb, a->dln, LAYER(a->residual3, L - 1, C), p->lnfw, a->lnf_mean,
                     a->lnf_rstd, N, C);
    check_out(m, a->dres, N * C, "layernorm_bwd (ln_f)", -1);
    if (m->grad_hook) m->grad_hook(m->grad_hook_ctx, (int)L);
    /* dres now holds d loss / d residual3[L-1]; walk the blocks backwards. */
    for (size_t l = L; l-- > 0;) {
        /* under recomputation the shared slot still holds the last block's from the forward pass */
        if (m->recompute && l != L - 1) block_fwd(m, l);
        const block_acts b = block_slots(m, l);

        /* residual3 = residual2 + fcproj(gelu(fc(ln2(residual2)))) */
        k->matmul_bwd(a->dfch, g->fcprojw + l * 4 * C * C, g->fcprojb + l * C, a->dres, b.fch_gelu,
                      p->fcprojw + l * 4 * C * C, N, 4 * C, C);
        k->gelu_bwd(a->dfch, b.fch, a->dfch, N * 4 * C);
        k->matmul_bwd(a->dln, g->fcw + l * C * 4 * C, g->fcb + l * 4 * C, a->dfch, b.ln2, p->fcw + l * C * 4 * C, N, C,
                      4 * C);
        k->layernorm_bwd(a->dres, g->ln2w + l * C, g->ln2b + l * C, a->dln, b.res2, p->ln2w + l * C, b.ln2_mean,
                         b.ln2_rstd, N, C);
        /* residual2 = x + attproj(attention(qkv(ln1(x)))) */
        k->matmul_bwd(a->datty, g->attprojw + l * C * C, g->attprojb + l * C, a->dres, b.atty, p->attprojw + l * C * C, N,
                      C, C);
        k->attention_bwd(a->dqkv, a->attscr, a->datty, b.qkv, b.lse, B, T, C, NH);
        check_out(m, a->dqkv, N * 3 * C, "attention_bwd", (long)l);
        k->matmul_bwd(a->dln, g->qkvw + l * C * 3 * C, g->qkvb + l * 3 * C, a->dqkv, b.ln1, p->qkvw + l * C * 3 * C, N, C,
                      3 * C);
        k->layernorm_bwd(a->dres, g->ln1w + l * C, g->ln1b + l * C, a->dln, b.x, p->ln1w + l * C, b.ln1_mean,
                         b.ln1_rstd, N, C);
        check_out(m, a->dres, N * C, "layernorm_bwd (ln_1)", (long)l);
        if (m->grad_hook) m->grad_hook(m->grad_hook_ctx, (int)l);
    }
    k->encoder_bwd(g->wte, g->wpe, a->dres, m->inputs, B, T, C);
    if (m->grad_hook) m->grad_hook(m->grad_hook_ctx, -1);
}

void tern_gpt2_backward(tern_gpt2 *m, float loss_scale) {
    TERN_ASSERT(m->have_targets);
    head(m, loss_scale, 1); /* the logits again, chunk by chunk, and their gradient */
    backward_body(m);
    m->have_targets = 0;
}

tern_status tern_gpt2_forward_backward(tern_gpt2 *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T,
                                       float loss_scale, float *loss) {
    TERN_TRY(forward_body(m, inputs, targets, B, T));
    if (!m->anomaly[0]) head(m, loss_scale, 1);
    if (loss) *loss = mean_loss(m);
    if (m->anomaly[0]) return tern_err(TERN_ENUMERIC, "non-finite value in the forward pass: %s", m->anomaly);
    backward_body(m);
    m->have_targets = 0;
    return TERN_OK;
}

const tern_gpt2_config *tern_gpt2_cfg(const tern_gpt2 *m) { return &m->cfg; }
float *tern_gpt2_params(tern_gpt2 *m) { return m->params; }
float *tern_gpt2_grads(tern_gpt2 *m) { return m->grads; }
size_t tern_gpt2_num_params(const tern_gpt2 *m) { return m->num_params; }
const float *tern_gpt2_logits(const tern_gpt2 *m) { return m->full_logits; }
const float *tern_gpt2_losses(const tern_gpt2 *m) { return m->a.losses; }

const tern_tensor *tern_gpt2_tensors(const tern_gpt2 *m, size_t *n) {
    *n = m->num_tensors;
    return m->tensors;
}

const tern_tensor *tern_gpt2_find(const tern_gpt2 *m, const char *name) {
    for (size_t i = 0; i < m->num_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

/* ---- generation: one position at a time, keys and values cached per layer ---- */

struct tern_gpt2_cache {
    size_t len, cap;
    float *k, *v;       /* (L, cap, C) each */
    float *x, *h, *qkv, *y, *f, *fg, *tmp, *att, *logits; /* one position's activations */
    float *mean, *rstd; /* scratch for LayerNorm (1 row) */
};

tern_status tern_gpt2_cache_init(tern_gpt2_cache **out, const tern_gpt2 *m) {
    *out = NULL;
    size_t L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd, P = (size_t)m->cfg.n_ctx,
           V = (size_t)m->cfg.vocab_size;
    tern_gpt2_cache *c = calloc(1, sizeof *c);
    if (!c) return tern_err(TERN_ENOMEM, "out of memory for the generation cache");
    c->cap = P;
    size_t sizes[] = {L * P * C, L * P * C, C, C, 3 * C, C, 4 * C, 4 * C, C, P, V, 1, 1};
    float **bufs[] = {&c->k, &c->v, &c->x, &c->h, &c->qkv, &c->y, &c->f, &c->fg, &c->tmp, &c->att, &c->logits, &c->mean, &c->rstd};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        tern_status st = tern_alloc((void **)bufs[i], sizes[i] * sizeof(float), "the generation cache");
        if (st != TERN_OK) {
            tern_gpt2_cache_free(c);
            return st;
        }
    }
    *out = c;
    return TERN_OK;
}

void tern_gpt2_cache_free(tern_gpt2_cache *c) {
    if (!c) return;
    float *bufs[] = {c->k, c->v, c->x, c->h, c->qkv, c->y, c->f, c->fg, c->tmp, c->att, c->logits, c->mean, c->rstd};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) tern_free(bufs[i]);
    free(c);
}

void tern_gpt2_cache_reset(tern_gpt2_cache *c) { c->len = 0; }
size_t tern_gpt2_cache_len(const tern_gpt2_cache *c) { return c->len; }

tern_status tern_gpt2_cache_step(tern_gpt2 *m, tern_gpt2_cache *c, int32_t token, const float **logits) {
    const tern_kern *k = m->k;
    size_t L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd, NH = (size_t)m->cfg.n_head,
           V = (size_t)m->cfg.vocab_size, hs = C / NH, pos = c->len;
    if (pos >= c->cap) return tern_err(TERN_EINVAL, "the context is full (%zu positions)", c->cap);
    if (token < 0 || (size_t)token >= V)
        return tern_err(TERN_EINVAL, "token %d is outside the vocabulary (size %zu)", token, V);
    gpt2_params *p = &m->p;
    int32_t tok = token;
    k->encoder_fwd(c->x, &tok, p->wte, p->wpe + pos * C, 1, 1, C);
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t l = 0; l < L; l++) {
        float *kc = c->k + l * c->cap * C, *vc = c->v + l * c->cap * C;
        k->layernorm_fwd(c->h, c->mean, c->rstd, c->x, p->ln1w + l * C, p->ln1b + l * C, 1, C);
        k->matmul_fwd(c->qkv, c->h, p->qkvw + l * C * 3 * C, p->qkvb + l * 3 * C, 1, C, 3 * C);
        memcpy(kc + pos * C, c->qkv + C, C * sizeof(float));
        memcpy(vc + pos * C, c->qkv + 2 * C, C * sizeof(float));
        for (size_t h = 0; h < NH; h++) {
            const float *q = c->qkv + h * hs;
            float mx = -INFINITY;
            for (size_t u = 0; u <= pos; u++) {
                const float *kk = kc + u * C + h * hs;
                float s = 0.0f;
                for (size_t i = 0; i < hs; i++) s += q[i] * kk[i];
                c->att[u] = s * scale;
                if (c->att[u] > mx) mx = c->att[u];
            }
            float sum = 0.0f;
            for (size_t u = 0; u <= pos; u++) {
                c->att[u] = expf(c->att[u] - mx);
                sum += c->att[u];
            }
            float *y = c->y + h * hs;
            for (size_t i = 0; i < hs; i++) y[i] = 0.0f;
            for (size_t u = 0; u <= pos; u++) {
                const float *vv = vc + u * C + h * hs;
                float a = c->att[u] / sum;
                for (size_t i = 0; i < hs; i++) y[i] += a * vv[i];
            }
        }
        k->matmul_fwd(c->tmp, c->y, p->attprojw + l * C * C, p->attprojb + l * C, 1, C, C);
        k->residual_fwd(c->x, c->x, c->tmp, C);
        k->layernorm_fwd(c->h, c->mean, c->rstd, c->x, p->ln2w + l * C, p->ln2b + l * C, 1, C);
        k->matmul_fwd(c->f, c->h, p->fcw + l * C * 4 * C, p->fcb + l * 4 * C, 1, C, 4 * C);
        k->gelu_fwd(c->fg, c->f, 4 * C);
        k->matmul_fwd(c->tmp, c->fg, p->fcprojw + l * 4 * C * C, p->fcprojb + l * C, 1, 4 * C, C);
        k->residual_fwd(c->x, c->x, c->tmp, C);
    }
    k->layernorm_fwd(c->h, c->mean, c->rstd, c->x, p->lnfw, p->lnfb, 1, C);
    k->sgemm(0, 1, 1, V, C, 1.0f, c->h, C, p->wte, C, 0.0f, c->logits, V);
    c->len++;
    *logits = c->logits;
    return TERN_OK;
}
