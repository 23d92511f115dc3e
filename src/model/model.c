/* What every model family shares: the tensor table and one buffer each for parameters,
 * gradients and activations in the backend's memory (llm.c's flat buffers), the head and
 * cross-entropy over chunks of positions, the loss, initialisation, anomaly checks and the
 * key-value cache shell. A family (gpt2.c, llama.c) supplies its tensors and its arithmetic
 * through tern_family; nothing here branches on the family or on the backend. */
#include "model/model_int.h"

#include "tern/json.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- configurations ---- */

tern_model_config tern_model_config_gpt2(int n_layer, int n_head, int n_embd, int n_ctx, int vocab_size) {
    tern_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.arch, sizeof c.arch, "gpt2");
    c.n_layer = n_layer;
    c.n_head = c.n_kv_head = n_head;
    c.n_embd = n_embd;
    c.head_dim = n_head > 0 ? n_embd / n_head : 0;
    c.ffn_dim = n_embd > 0 && n_embd <= INT_MAX / 4 ? 4 * n_embd : 0; /* 0: refused by tern_model_config_check */
    c.n_ctx = n_ctx;
    c.vocab_size = vocab_size;
    c.norm_eps = 1e-5;
    c.tie_embeddings = 1;
    return c;
}

tern_model_config tern_model_config_llama(int n_layer, int n_head, int n_kv_head, int n_embd, int n_ctx, int vocab_size) {
    tern_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.arch, sizeof c.arch, "llama");
    c.n_layer = n_layer;
    c.n_head = n_head;
    c.n_kv_head = n_kv_head > 0 ? n_kv_head : n_head;
    c.n_embd = n_embd;
    c.head_dim = n_head > 0 ? n_embd / n_head : 0;
    /* Llama's SwiGLU width: 2/3 of 4C, rounded up to a multiple of 256 (Meta's reference code) */
    double f = 8.0 * n_embd / 3.0;
    c.ffn_dim = f > 0 && f < (double)(INT_MAX - 255) ? (int)(((long long)f + 255) / 256 * 256) : 0; /* 0: refused, as above */
    c.n_ctx = n_ctx;
    c.vocab_size = vocab_size;
    c.norm_eps = 1e-5;
    c.rope_theta = 10000.0;
    return c;
}

const tern_family *tern_family_of(const tern_model_config *c) {
    if (!strcmp(c->arch, "gpt2")) return &tern_family_gpt2;
    if (!strcmp(c->arch, "llama")) return &tern_family_llama;
    return NULL;
}

tern_status tern_model_config_check(const tern_model_config *c) {
    const tern_family *f = tern_family_of(c);
    if (!f) return tern_err(TERN_EINVAL, "unknown architecture '%.15s' (known: gpt2, llama)", c->arch);
    if (c->n_layer < 1 || c->n_layer > 1024) return tern_err(TERN_EINVAL, "n_layer must be 1..1024, got %d", c->n_layer);
    if (c->n_head < 1 || c->n_head > 4096) return tern_err(TERN_EINVAL, "n_head must be 1..4096, got %d", c->n_head);
    if (c->n_embd < 1 || c->n_embd > 65536) return tern_err(TERN_EINVAL, "n_embd must be 1..65536, got %d", c->n_embd);
    if (c->n_ctx < 1 || c->n_ctx > 1 << 20) return tern_err(TERN_EINVAL, "n_ctx must be 1..1048576, got %d", c->n_ctx);
    if (c->vocab_size < 2 || c->vocab_size > 1 << 24)
        return tern_err(TERN_EINVAL, "vocab_size must be 2..16777216, got %d", c->vocab_size);
    if (c->ffn_dim < 1 || c->ffn_dim > 1 << 20) return tern_err(TERN_EINVAL, "ffn_dim must be 1..1048576, got %d", c->ffn_dim);
    if (!(c->norm_eps > 0 && c->norm_eps < 1)) return tern_err(TERN_EINVAL, "the norm epsilon must be in (0, 1), got %g", c->norm_eps);
    return f->check(c);
}

/* Fills t (n entries) with the family's tensors and their offsets; returns the parameter count. */
static size_t lay_out(const tern_family *f, const tern_model_config *c, tern_tensor *t, size_t n) {
    f->tensors(c, t);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        t[i].numel = t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
        t[i].offset = off;
        off += t[i].numel;
    }
    return off;
}

size_t tern_model_config_num_params(const tern_model_config *c) {
    const tern_family *f = tern_family_of(c);
    if (!f) return 0;
    size_t n = f->tensors(c, NULL);
    tern_tensor *t = calloc(n, sizeof *t);
    if (!t) return 0;
    size_t np = lay_out(f, c, t, n);
    free(t);
    return np;
}

double tern_model_config_flops_per_token(const tern_model_config *c, size_t T) {
    const tern_family *f = tern_family_of(c);
    return f ? f->flops_per_token(c, T) : 0;
}

char *tern_model_config_to_json(const tern_model_config *c) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "arch", c->arch);
    cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(j, "n_head", c->n_head);
    cJSON_AddNumberToObject(j, "n_kv_head", c->n_kv_head);
    cJSON_AddNumberToObject(j, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(j, "ffn_dim", c->ffn_dim);
    cJSON_AddNumberToObject(j, "n_ctx", c->n_ctx);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "norm_eps", c->norm_eps);
    cJSON_AddBoolToObject(j, "tie_embeddings", c->tie_embeddings);
    if (!strcmp(c->arch, "llama")) {
        cJSON_AddNumberToObject(j, "rope_theta", c->rope_theta);
        cJSON_AddBoolToObject(j, "qkv_bias", c->qkv_bias);
        if (c->rope_type == TERN_ROPE_LLAMA3) {
            cJSON *r = cJSON_AddObjectToObject(j, "rope_scaling");
            cJSON_AddStringToObject(r, "rope_type", "llama3");
            cJSON_AddNumberToObject(r, "factor", c->rope_factor);
            cJSON_AddNumberToObject(r, "low_freq_factor", c->rope_low_freq_factor);
            cJSON_AddNumberToObject(r, "high_freq_factor", c->rope_high_freq_factor);
            cJSON_AddNumberToObject(r, "original_max_position_embeddings", c->rope_original_ctx);
        }
    }
    if (c->sliding_window) cJSON_AddNumberToObject(j, "sliding_window", c->sliding_window);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* An integer field of 0 .. 2^30; a missing optional one leaves *field as it is. */
static tern_status json_int(const cJSON *o, const char *key, int required, int *field, const char *what) {
    long v = *field;
    TERN_TRY(tern_json_long(o, key, required, 0, 1L << 30, &v, what));
    *field = (int)v;
    return TERN_OK;
}

tern_status tern_model_config_from_json(tern_model_config *c, const cJSON *o, const char *what) {
    static const char *const keys[] = {"arch", "n_layer", "n_head", "n_kv_head", "n_embd", "head_dim", "ffn_dim", "n_ctx",
                                       "vocab_size", "norm_eps", "tie_embeddings", "rope_theta", "qkv_bias", "rope_scaling",
                                       "sliding_window", NULL};
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(o)) return tern_err(TERN_EFORMAT, "%s: \"model\" is not an object", what);
    TERN_TRY(tern_json_check_keys(o, keys, what));
    TERN_TRY(tern_json_string(o, "arch", 1, c->arch, sizeof c->arch, what));
    long v;
    TERN_TRY(json_int(o, "n_layer", 1, &c->n_layer, what));
    TERN_TRY(json_int(o, "n_head", 1, &c->n_head, what));
    TERN_TRY(json_int(o, "n_kv_head", 1, &c->n_kv_head, what));
    TERN_TRY(json_int(o, "n_embd", 1, &c->n_embd, what));
    TERN_TRY(json_int(o, "head_dim", 1, &c->head_dim, what));
    TERN_TRY(json_int(o, "ffn_dim", 1, &c->ffn_dim, what));
    TERN_TRY(json_int(o, "n_ctx", 1, &c->n_ctx, what));
    TERN_TRY(json_int(o, "vocab_size", 1, &c->vocab_size, what));
    TERN_TRY(json_int(o, "sliding_window", 0, &c->sliding_window, what));
    TERN_TRY(tern_json_number(o, "norm_eps", 1, &c->norm_eps, what));
    TERN_TRY(tern_json_number(o, "rope_theta", 0, &c->rope_theta, what));
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "tie_embeddings");
    if (!cJSON_IsBool(b)) return tern_err(TERN_EFORMAT, "%s: field \"tie_embeddings\" must be true or false", what);
    c->tie_embeddings = cJSON_IsTrue(b);
    b = cJSON_GetObjectItemCaseSensitive(o, "qkv_bias");
    c->qkv_bias = cJSON_IsTrue(b);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rope_scaling");
    if (r) {
        static const char *const rkeys[] = {"rope_type", "factor", "low_freq_factor", "high_freq_factor",
                                            "original_max_position_embeddings", NULL};
        char type[16] = "";
        TERN_TRY(tern_json_check_keys(r, rkeys, what));
        TERN_TRY(tern_json_string(r, "rope_type", 1, type, sizeof type, what));
        if (strcmp(type, "llama3")) return tern_err(TERN_EFORMAT, "%s: rope_scaling of type '%s' is not one tern computes (llama3)", what, type);
        c->rope_type = TERN_ROPE_LLAMA3;
        TERN_TRY(tern_json_number(r, "factor", 1, &c->rope_factor, what));
        TERN_TRY(tern_json_number(r, "low_freq_factor", 1, &c->rope_low_freq_factor, what));
        TERN_TRY(tern_json_number(r, "high_freq_factor", 1, &c->rope_high_freq_factor, what));
        v = 0;
        TERN_TRY(tern_json_long(r, "original_max_position_embeddings", 1, 1, 1L << 30, &v, what));
        c->rope_original_ctx = (int)v;
    }
    tern_status st = tern_model_config_check(c);
    return st == TERN_OK ? st : tern_err_wrap(st, "%s", what);
}

/* ---- the model and its memory ---- */

float *tern_model_ptr(tern_model *m, const char *name, int g) {
    const tern_tensor *t = tern_model_find(m, name);
    TERN_ASSERT(t);
    return (g ? m->grads : m->params) + t->offset;
}

tern_status tern_model_init(tern_model **out, const tern_model_config *cfg, tern_backend *be) {
    *out = NULL;
    TERN_TRY(tern_model_config_check(cfg));
    tern_model *m = calloc(1, sizeof *m);
    if (!m) return tern_err(TERN_ENOMEM, "out of memory for the model");
    m->cfg = *cfg;
    m->fam = tern_family_of(cfg);
    m->be = be ? be : tern_backend_default();
    m->k = m->be->k;
    m->num_tensors = m->fam->tensors(cfg, NULL);
    m->tensors = calloc(m->num_tensors, sizeof *m->tensors);
    if (!m->tensors) {
        free(m);
        return tern_err(TERN_ENOMEM, "out of memory for the tensor table");
    }
    m->num_params = lay_out(m->fam, cfg, m->tensors, m->num_tensors);
    tern_status st;
    if ((st = m->be->mem->alloc(m->be, (void **)&m->params, m->num_params * sizeof(float), "the model's parameters")) != TERN_OK ||
        (st = m->be->mem->alloc(m->be, (void **)&m->grads, m->num_params * sizeof(float), "the model's gradients")) != TERN_OK) {
        tern_model_free(m);
        return st;
    }
    m->head_w = tern_model_ptr(m, m->fam->head(cfg), 0);
    m->head_dw = tern_model_ptr(m, m->fam->head(cfg), 1);
    if (m->fam->setup && (st = m->fam->setup(m)) != TERN_OK) {
        tern_model_free(m);
        return st;
    }
    *out = m;
    return TERN_OK;
}

static void drop_acts(tern_model *m) {
    if (m->fs) m->fam->unbind(m);
    tern_backend *be = m->be;
    be->mem->free(be, m->acts);
    be->mem->free(be, m->inputs);
    be->mem->free(be, m->targets);
    m->acts = NULL;
    m->inputs = m->targets = NULL;
    m->acts_floats = m->resB = m->resT = 0;
    m->nslots = 0;
}

void tern_model_free(tern_model *m) {
    if (!m) return;
    drop_acts(m);
    if (m->fam->teardown) m->fam->teardown(m);
    m->be->mem->free(m->be, m->params);
    m->be->mem->free(m->be, m->grads);
    m->be->mem->free(m->be, m->full_logits);
    tern_backend_drop_derived(m->be);
    free(m->tensors);
    free(m);
}

const tern_model_config *tern_model_cfg(const tern_model *m) { return &m->cfg; }
tern_backend *tern_model_backend(const tern_model *m) { return m->be; }
size_t tern_model_num_params(const tern_model *m) { return m->num_params; }

const tern_tensor *tern_model_tensors(const tern_model *m, size_t *n) {
    *n = m->num_tensors;
    return m->tensors;
}

const tern_tensor *tern_model_find(const tern_model *m, const char *name) {
    for (size_t i = 0; i < m->num_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

const char *tern_model_hf_prefix(const tern_model *m) { return m->fam->hf_prefix; }

void tern_model_set_grad_hook(tern_model *m, tern_grad_hook fn, void *ctx) {
    m->grad_hook = fn;
    m->grad_hook_ctx = ctx;
}

void tern_model_hook(tern_model *m, int unit) {
    if (m->grad_hook) m->grad_hook(m->grad_hook_ctx, unit);
}

tern_status tern_model_read(tern_model *m, tern_which which, size_t off, size_t n, float *dst) {
    TERN_ASSERT(off <= m->num_params && n <= m->num_params - off);
    m->be->mem->download(m->be, dst, (which == TERN_GRADS ? m->grads : m->params) + off, n * sizeof(float));
    return tern_backend_sync(m->be);
}

tern_status tern_model_write(tern_model *m, tern_which which, size_t off, size_t n, const float *src) {
    TERN_ASSERT(off <= m->num_params && n <= m->num_params - off);
    m->be->mem->upload(m->be, (which == TERN_GRADS ? m->grads : m->params) + off, src, n * sizeof(float));
    return tern_backend_sync(m->be);
}

float *tern_model_buffer(tern_model *m, tern_which which) { return which == TERN_GRADS ? m->grads : m->params; }

/* ---- activations ---- */

/* Floats of every slot (the family's, then one chunk of logits and the losses) and their total,
 * each rounded up to 16 floats (64 bytes) as laid out. */
static size_t slot_sizes(const tern_model_config *c, size_t B, size_t T, int recompute, size_t *sizes, size_t *nslots) {
    const tern_family *f = tern_family_of(c);
    size_t n = f->acts(c, B, T, recompute, sizes);
    TERN_ASSERT(n + 2 <= MODEL_MAX_SLOTS);
    sizes[n] = HEAD_ROWS(B * T) * (size_t)c->vocab_size;
    sizes[n + 1] = B * T;
    size_t total = 0;
    for (size_t i = 0; i < n + 2; i++) total += (sizes[i] + 15) & ~(size_t)15;
    if (nslots) *nslots = n;
    return total;
}

size_t tern_model_activation_bytes_for(const tern_model_config *c, size_t B, size_t T, int recompute) {
    size_t sizes[MODEL_MAX_SLOTS];
    return slot_sizes(c, B, T, recompute, sizes, NULL) * sizeof(float);
}

size_t tern_model_activation_bytes(const tern_model *m) { return m->acts_floats * sizeof(float); }

void tern_model_set_recompute(tern_model *m, int on) {
    if (!!on == m->recompute) return;
    m->recompute = !!on;
    drop_acts(m); /* the layout changes: the next reserve lays it out anew */
}

tern_status tern_model_reserve(tern_model *m, size_t B, size_t T) {
    if (B == 0 || T == 0) return tern_err(TERN_EINVAL, "batch and sequence length must be positive");
    if (T > (size_t)m->cfg.n_ctx)
        return tern_err(TERN_EINVAL, "sequence length %zu is longer than the model's context (n_ctx %d)", T, m->cfg.n_ctx);
    if (m->cfg.sliding_window && T > (size_t)m->cfg.sliding_window)
        return tern_err(TERN_EINVAL, "sequence length %zu is longer than the model's sliding attention window (%d); tern computes "
                                     "full causal attention, which equals the window's only up to its length: use --seq %d or less",
                        T, m->cfg.sliding_window, m->cfg.sliding_window);
    if (m->acts && B <= m->resB && T <= m->resT) return TERN_OK;
    drop_acts(m);
    size_t sizes[MODEL_MAX_SLOTS], n;
    size_t total = slot_sizes(&m->cfg, B, T, m->recompute, sizes, &n);
    tern_backend *be = m->be;
    TERN_TRY(be->mem->alloc(be, (void **)&m->acts, total * sizeof(float), "activations"));
    tern_status st = be->mem->alloc(be, (void **)&m->inputs, B * T * sizeof(int32_t), "the batch");
    if (st == TERN_OK) st = be->mem->alloc(be, (void **)&m->targets, B * T * sizeof(int32_t), "the batch");
    if (st != TERN_OK) {
        drop_acts(m);
        return st;
    }
    float *p = m->acts, *at[MODEL_MAX_SLOTS];
    for (size_t i = 0; i < n + 2; i++) {
        at[i] = p;
        p += (sizes[i] + 15) & ~(size_t)15;
    }
    memcpy(m->slot, at, n * sizeof at[0]);
    m->nslots = n;
    m->logits = at[n];
    m->losses = at[n + 1];
    m->acts_floats = total;
    m->resB = B;
    m->resT = T;
    if ((st = m->fam->bind(m)) != TERN_OK) drop_acts(m);
    return st;
}

tern_status tern_model_init_weights(tern_model *m, uint64_t seed) {
    for (size_t t = 0; t < m->num_tensors; t++) {
        const tern_tensor *tt = &m->tensors[t];
        float *w = m->params + tt->offset;
        if (tt->init == 'z')
            m->k->fill(m->be, w, tt->numel, 0.0f);
        else if (tt->init == 'o')
            m->k->fill(m->be, w, tt->numel, 1.0f);
        else
            m->k->fill_normal(m->be, w, tt->numel, tt->init_std, seed, tern_rng_stream("init", t, 0));
    }
    return tern_backend_sync(m->be);
}

/* ---- anomalies ---- */

void tern_model_set_anomaly_detection(tern_model *m, int on) {
    m->detect = on;
    m->anomaly[0] = 0;
}

const char *tern_model_anomaly(const tern_model *m) { return m->anomaly[0] ? m->anomaly : NULL; }

void tern_model_check_out(tern_model *m, const float *p, size_t n, const char *kernel, long layer) {
    if (!m->detect || m->anomaly[0]) return;
    float v = 0;
    long long i = m->k->find_nonfinite(m->be, p, n, &v);
    if (i < 0) return;
    if (layer >= 0)
        snprintf(m->anomaly, sizeof m->anomaly, "%s of block %ld produced %g at element %lld", kernel, layer, v, i);
    else
        snprintf(m->anomaly, sizeof m->anomaly, "%s produced %g at element %lld", kernel, v, i);
}

/* ---- forward, head, backward ---- */

/* Checks the batch, copies it into the backend's memory, and runs the family's forward pass. */
static tern_status forward_body(tern_model *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T) {
    if (!m->acts || B > m->resB || T > m->resT)
        return tern_err(TERN_EINVAL, "batch %zux%zu exceeds the reserved %zux%zu", B, T, m->resB, m->resT);
    size_t V = (size_t)m->cfg.vocab_size, N = B * T;
    for (size_t i = 0; i < N; i++) {
        if (inputs[i] < 0 || (size_t)inputs[i] >= V)
            return tern_err(TERN_EINVAL, "input token %d at position %zu is outside the vocabulary (size %zu)", inputs[i],
                            i, V);
        if (targets && (targets[i] < 0 || (size_t)targets[i] >= V))
            return tern_err(TERN_EINVAL, "target token %d at position %zu is outside the vocabulary (size %zu)",
                            targets[i], i, V);
    }
    m->be->mem->upload(m->be, m->inputs, inputs, N * sizeof(int32_t));
    if (targets) m->be->mem->upload(m->be, m->targets, targets, N * sizeof(int32_t));
    m->B = B;
    m->T = T;
    m->have_targets = targets != NULL;
    m->anomaly[0] = 0;
    m->fam->forward(m);
    return TERN_OK;
}

/* The head (logits = xf @ W^T, W being (V,C)) and the cross-entropy, HEAD_CHUNK rows at a time
 * through one chunk of logits: the per-position losses, and with bwd also the head's backward
 * pass for d(loss_scale * mean loss): dlogits = (softmax - onehot) * loss_scale / N over the
 * chunk, dxf = dlogits @ W, dW += dlogits^T @ xf. */
static void head(tern_model *m, float loss_scale, int bwd) {
    const tern_kern *k = m->k;
    tern_backend *be = m->be;
    size_t C = (size_t)m->cfg.n_embd, V = (size_t)m->cfg.vocab_size, N = m->B * m->T;
    float *lg = m->logits;
    for (size_t r0 = 0; r0 < N; r0 += HEAD_CHUNK) {
        size_t n = HEAD_ROWS(N - r0);
        k->matmul_fwd(be, lg, m->xf + r0 * C, m->head_w, NULL, n, C, V, 1);
        tern_model_check_out(m, lg, n * V, "matmul_fwd (head, logits)", -1);
        k->crossentropy_fwd_bwd(be, m->losses + r0, bwd ? lg : NULL, lg, m->targets + r0, loss_scale / (float)N, n, V);
        if (!bwd) continue;
        tern_model_check_out(m, lg, n * V, "crossentropy_bwd", -1);
        /* dxf = dlogits W, dW += dlogits^T xf: one matmul backward, so that a backend converting
         * operands (bf16) converts the chunk's dlogits once for both */
        k->matmul_bwd(be, m->dxf + r0 * C, m->head_dw, NULL, lg, m->xf + r0 * C, m->head_w, n, C, V, 1);
    }
    tern_model_check_out(m, m->losses, N, "crossentropy_fwd", -1);
}

static float mean_loss(tern_model *m) {
    size_t N = m->B * m->T;
    return (float)(m->k->sum(m->be, m->losses, N) / (double)N);
}

static tern_status forward(tern_model *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T, float *loss) {
    TERN_TRY(forward_body(m, inputs, targets, B, T));
    size_t C = (size_t)m->cfg.n_embd, V = (size_t)m->cfg.vocab_size, N = B * T;
    if (targets) {
        head(m, 0.0f, 0);
        if (loss) *loss = mean_loss(m);
    } else {
        if (m->full_logits_cap < N * V) {
            m->be->mem->free(m->be, m->full_logits);
            m->full_logits = NULL;
            m->full_logits_cap = 0;
            TERN_TRY(m->be->mem->alloc(m->be, (void **)&m->full_logits, N * V * sizeof(float), "logits"));
            m->full_logits_cap = N * V;
        }
        m->k->sgemm(m->be, 0, 1, N, V, C, 1.0f, m->xf, C, m->head_w, C, 0.0f, m->full_logits, V);
        tern_model_check_out(m, m->full_logits, N * V, "sgemm (head, logits)", -1);
    }
    TERN_TRY(tern_backend_sync(m->be));
    if (m->anomaly[0]) return tern_err(TERN_ENUMERIC, "non-finite value in the forward pass: %s", m->anomaly);
    return TERN_OK;
}

tern_status tern_model_zero_grad(tern_model *m) {
    m->be->mem->zero(m->be, m->grads, m->num_params * sizeof(float));
    return TERN_OK;
}

static tern_status backward(tern_model *m, float loss_scale) {
    TERN_ASSERT(m->have_targets);
    head(m, loss_scale, 1); /* the logits again, chunk by chunk, and their gradient */
    m->fam->backward(m);
    m->have_targets = 0;
    return tern_backend_sync(m->be);
}

static tern_status forward_backward(tern_model *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T,
                                    float loss_scale, float *loss) {
    TERN_TRY(forward_body(m, inputs, targets, B, T));
    if (!m->anomaly[0]) head(m, loss_scale, 1);
    if (loss) *loss = mean_loss(m);
    if (m->anomaly[0]) return tern_err(TERN_ENUMERIC, "non-finite value in the forward pass: %s", m->anomaly);
    m->fam->backward(m);
    m->have_targets = 0;
    return tern_backend_sync(m->be);
}

/* The passes hold the weights (tern_backend_hold_weights) while they run: nothing writes them
 * until the pass returns, so the backend may reuse what it derives from them (bf16 copies) across
 * the pass's products. */
tern_status tern_model_forward(tern_model *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T, float *loss) {
    tern_backend_hold_weights(m->be, m->params, m->num_params);
    tern_status st = forward(m, inputs, targets, B, T, loss);
    tern_backend_release_weights(m->be);
    return st;
}

tern_status tern_model_backward(tern_model *m, float loss_scale) {
    tern_backend_hold_weights(m->be, m->params, m->num_params);
    tern_status st = backward(m, loss_scale);
    tern_backend_release_weights(m->be);
    return st;
}

tern_status tern_model_forward_backward(tern_model *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T,
                                        float loss_scale, float *loss) {
    tern_backend_hold_weights(m->be, m->params, m->num_params);
    tern_status st = forward_backward(m, inputs, targets, B, T, loss_scale, loss);
    tern_backend_release_weights(m->be);
    return st;
}

tern_status tern_model_losses(tern_model *m, float *dst) {
    m->be->mem->download(m->be, dst, m->losses, m->B * m->T * sizeof(float));
    return tern_backend_sync(m->be);
}

tern_status tern_model_logits(tern_model *m, float *dst) { return tern_model_logits_rows(m, 0, m->B * m->T, dst); }

tern_status tern_model_logits_rows(tern_model *m, size_t pos, size_t n, float *dst) {
    if (!m->full_logits) return tern_err(TERN_EINVAL, "no logits: the last forward pass had targets");
    if (pos > m->B * m->T || n > m->B * m->T - pos)
        return tern_err(TERN_EINVAL, "logits of positions %zu..%zu asked, the last forward pass had %zu", pos, pos + n, m->B * m->T);
    size_t V = (size_t)m->cfg.vocab_size;
    m->be->mem->download(m->be, dst, m->full_logits + pos * V, n * V * sizeof(float));
    return tern_backend_sync(m->be);
}

/* ---- generation: one position at a time, keys and values cached per layer ---- */

tern_status tern_model_cache_init(tern_model_cache **out, tern_model *m) {
    *out = NULL;
    const tern_model_config *c = &m->cfg;
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, P = (size_t)c->n_ctx, V = (size_t)c->vocab_size;
    size_t q = (size_t)c->n_head * (size_t)c->head_dim, kvw = (size_t)c->n_kv_head * (size_t)c->head_dim, F = (size_t)c->ffn_dim;
    tern_model_cache *cc = calloc(1, sizeof *cc);
    if (!cc) return tern_err(TERN_ENOMEM, "out of memory for the generation cache");
    cc->be = m->be;
    cc->cap = P;
    cc->kvw = kvw;
    size_t wide = q > C ? q : C;
    size_t sizes[] = {L * P * kvw, L * P * kvw, C, C, q + 2 * kvw, wide, F, F, C, P, V, 1, 1, 1};
    float **bufs[] = {&cc->kc, &cc->vc, &cc->x, &cc->h, &cc->qkv, &cc->y, &cc->f1, &cc->f2, &cc->tmp, &cc->att, &cc->dlogits,
                      &cc->mean, &cc->rstd, (float **)&cc->tok};
    tern_status st = TERN_OK;
    for (size_t i = 0; st == TERN_OK && i < sizeof sizes / sizeof sizes[0]; i++)
        st = m->be->mem->alloc(m->be, (void **)bufs[i], sizes[i] * sizeof(float), "the generation cache");
    if (st == TERN_OK && !(cc->logits = malloc(V * sizeof(float)))) st = tern_err(TERN_ENOMEM, "out of memory for the logits");
    if (st != TERN_OK) {
        tern_model_cache_free(cc);
        return st;
    }
    *out = cc;
    return TERN_OK;
}

void tern_model_cache_free(tern_model_cache *c) {
    if (!c) return;
    float *bufs[] = {c->kc, c->vc, c->x, c->h, c->qkv, c->y, c->f1, c->f2, c->tmp, c->att, c->dlogits, c->mean, c->rstd,
                     (float *)c->tok};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) c->be->mem->free(c->be, bufs[i]);
    free(c->logits);
    free(c);
}

void tern_model_cache_reset(tern_model_cache *c) { c->len = 0; }
size_t tern_model_cache_len(const tern_model_cache *c) { return c->len; }

tern_status tern_model_cache_step(tern_model *m, tern_model_cache *c, int32_t token, const float **logits) {
    size_t C = (size_t)m->cfg.n_embd, V = (size_t)m->cfg.vocab_size, pos = c->len;
    if (pos >= c->cap) return tern_err(TERN_EINVAL, "the context is full (%zu positions)", c->cap);
    if (token < 0 || (size_t)token >= V) return tern_err(TERN_EINVAL, "token %d is outside the vocabulary (size %zu)", token, V);
    m->be->mem->upload(m->be, c->tok, &token, sizeof token);
    m->fam->decode(m, c, pos);
    m->k->sgemm(m->be, 0, 1, 1, V, C, 1.0f, c->x, C, m->head_w, C, 0.0f, c->dlogits, V);
    m->be->mem->download(m->be, c->logits, c->dlogits, V * sizeof(float));
    TERN_TRY(tern_backend_sync(m->be));
    c->len++;
    *logits = c->logits;
    return TERN_OK;
}
