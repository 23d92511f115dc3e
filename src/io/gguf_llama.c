/* The Llama family as GGUF: llama.cpp's "llama" architecture (and "qwen2" for a model with q, k
 * and v biases), their metadata keys and tensor names, and the row permutation of q_proj and
 * k_proj that llama.cpp's converter applies to Hugging Face's weights for "llama" (whose rotary
 * embedding pairs neighbouring elements; "qwen2" pairs them as Hugging Face does and keeps the
 * rows). Follows convert_hf_to_gguf.py's LlamaModel and Qwen2Model and gguf-py's names. */
#include "io/gguf_arch.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *hf, *gg;
    int layout;      /* for "llama"; "qwen2" keeps every matrix as it is */
} name_map;

static const name_map block_names[] = {
    {"input_layernorm.weight", "attn_norm.weight", GGUF_AS_IS},
    {"self_attn.q_proj.weight", "attn_q.weight", GGUF_ROPE_Q},
    {"self_attn.q_proj.bias", "attn_q.bias", GGUF_AS_IS},
    {"self_attn.k_proj.weight", "attn_k.weight", GGUF_ROPE_K},
    {"self_attn.k_proj.bias", "attn_k.bias", GGUF_AS_IS},
    {"self_attn.v_proj.weight", "attn_v.weight", GGUF_AS_IS},
    {"self_attn.v_proj.bias", "attn_v.bias", GGUF_AS_IS},
    {"self_attn.o_proj.weight", "attn_output.weight", GGUF_AS_IS},
    {"post_attention_layernorm.weight", "ffn_norm.weight", GGUF_AS_IS},
    {"mlp.gate_proj.weight", "ffn_gate.weight", GGUF_AS_IS},
    {"mlp.up_proj.weight", "ffn_up.weight", GGUF_AS_IS},
    {"mlp.down_proj.weight", "ffn_down.weight", GGUF_AS_IS},
};

static int tensor_name(const char *name, char out[TERN_GGUF_MAX_NAME], int permute) {
    if (!strcmp(name, "model.embed_tokens.weight")) return snprintf(out, TERN_GGUF_MAX_NAME, "token_embd.weight"), GGUF_AS_IS;
    if (!strcmp(name, "model.norm.weight")) return snprintf(out, TERN_GGUF_MAX_NAME, "output_norm.weight"), GGUF_AS_IS;
    if (!strcmp(name, "lm_head.weight")) return snprintf(out, TERN_GGUF_MAX_NAME, "output.weight"), GGUF_AS_IS;
    char *end;
    TERN_ASSERT(!strncmp(name, "model.layers.", 13));
    unsigned long l = strtoul(name + 13, &end, 10);
    TERN_ASSERT(*end == '.');
    for (size_t i = 0; i < sizeof block_names / sizeof block_names[0]; i++)
        if (!strcmp(end + 1, block_names[i].hf)) {
            snprintf(out, TERN_GGUF_MAX_NAME, "blk.%lu.%s", l, block_names[i].gg);
            return permute ? block_names[i].layout : GGUF_AS_IS;
        }
    TERN_ASSERT(!"a tensor of tern's Llama has no llama.cpp name");
    return GGUF_AS_IS;
}

static int llama_tensor(const tern_model_config *c, const char *name, char out[TERN_GGUF_MAX_NAME], int *keep_f32) {
    (void)c;
    *keep_f32 = 0;
    return tensor_name(name, out, 1);
}

static int qwen2_tensor(const tern_model_config *c, const char *name, char out[TERN_GGUF_MAX_NAME], int *keep_f32) {
    (void)c;
    *keep_f32 = 0;
    return tensor_name(name, out, 0);
}

/* The keys llama.cpp's llama and qwen2 loaders read, under the architecture's prefix, as its
 * converter writes them: for llama also the vocabulary size, the rotary dimensions and the head
 * size (which it writes for a config.json with head_dim, as transformers 5 always saves it); for
 * qwen2 the head size only where it is not n_embd / n_head. */
static tern_status meta(tern_gguf_writer *w, const tern_model_config *c, const char *arch, int qwen) {
    char k[96];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
    if (!qwen) TERN_TRY(tern_gguf_add_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size));
    TERN_TRY(tern_gguf_add_u32(w, KEY("context_length"), (uint32_t)c->n_ctx));
    TERN_TRY(tern_gguf_add_u32(w, KEY("embedding_length"), (uint32_t)c->n_embd));
    TERN_TRY(tern_gguf_add_u32(w, KEY("block_count"), (uint32_t)c->n_layer));
    TERN_TRY(tern_gguf_add_u32(w, KEY("feed_forward_length"), (uint32_t)c->ffn_dim));
    if (!qwen) TERN_TRY(tern_gguf_add_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim));
    TERN_TRY(tern_gguf_add_f32(w, KEY("rope.freq_base"), (float)c->rope_theta));
    TERN_TRY(tern_gguf_add_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head));
    TERN_TRY(tern_gguf_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head));
    TERN_TRY(tern_gguf_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)c->norm_eps));
    if (!qwen || c->head_dim * c->n_head != c->n_embd) {
        TERN_TRY(tern_gguf_add_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim));
        TERN_TRY(tern_gguf_add_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim));
    }
#undef KEY
    return TERN_OK;
}

static tern_status llama_meta(tern_gguf_writer *w, const tern_model_config *c) { return meta(w, c, "llama", 0); }
static tern_status qwen2_meta(tern_gguf_writer *w, const tern_model_config *c) { return meta(w, c, "qwen2", 1); }

/* An optional key: *out is left as it is when the file lacks it. */
static tern_status opt_int(const tern_gguf *g, const char *key, int *out) {
    return tern_gguf_find_kv(g, key) ? gguf_get_int(g, key, out) : TERN_OK;
}

/* The shortest decimal that rounds to f: GGUF keeps eps and theta as f32, and 1e-5f read back
 * should be 1e-5 again (in arithmetic, and in a Hugging Face config.json written from it). */
static double decimal_of(float f) {
    char b[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, (double)f);
        double d = strtod(b, NULL);
        if ((float)d == f) return d;
    }
    return f;
}

static tern_status opt_f32(const tern_gguf *g, const char *key, double *out) {
    float v;
    if (!tern_gguf_find_kv(g, key)) return TERN_OK;
    TERN_TRY(tern_gguf_get_f32(g, key, &v));
    *out = decimal_of(v);
    return TERN_OK;
}

/* What llama.cpp's loader reads for these architectures, and a refusal for what it would compute
 * differently from tern's Llama: rope scaling, experts, partial rotary dimensions, and biases
 * under "llama" (whose q rows the converter permutes but whose bias it does not). */
static tern_status config(const tern_gguf *g, tern_model_config *c, const char *arch, int qwen) {
    const char *L = tern_gguf_label(g);
    char k[96];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
    int n_layer, n_head, n_embd, n_ctx, n_kv, ff;
    TERN_TRY(gguf_get_int(g, KEY("block_count"), &n_layer));
    TERN_TRY(gguf_get_int(g, KEY("attention.head_count"), &n_head));
    TERN_TRY(gguf_get_int(g, KEY("embedding_length"), &n_embd));
    TERN_TRY(gguf_get_int(g, KEY("context_length"), &n_ctx));
    TERN_TRY(gguf_get_int(g, KEY("feed_forward_length"), &ff));
    n_kv = n_head;
    TERN_TRY(opt_int(g, KEY("attention.head_count_kv"), &n_kv));
    *c = tern_model_config_llama(n_layer, n_head, n_kv, n_embd, n_ctx, 0);
    c->ffn_dim = ff;
    c->qkv_bias = qwen;
    int kl = n_head > 0 ? n_embd / n_head : 0, vl = kl, rot;
    TERN_TRY(opt_int(g, KEY("attention.key_length"), &kl));
    TERN_TRY(opt_int(g, KEY("attention.value_length"), &vl));
    if (kl != vl) return tern_err(TERN_EFORMAT, "%s: %s.attention.key_length %d differs from value_length %d", L, arch, kl, vl);
    c->head_dim = rot = kl;
    TERN_TRY(opt_int(g, KEY("rope.dimension_count"), &rot));
    if (rot != c->head_dim)
        return tern_err(TERN_EFORMAT, "%s: %s.rope.dimension_count %d is not the head size %d; tern rotates whole heads", L, arch, rot,
                        c->head_dim);
    float eps;
    TERN_TRY(tern_gguf_get_f32(g, KEY("attention.layer_norm_rms_epsilon"), &eps));
    c->norm_eps = decimal_of(eps);
    TERN_TRY(opt_f32(g, KEY("rope.freq_base"), &c->rope_theta));
    int experts = 0;
    TERN_TRY(opt_int(g, KEY("expert_count"), &experts));
    if (experts > 0) return tern_err(TERN_EFORMAT, "%s: %s.expert_count is %d; tern's Llama has no mixture of experts", L, arch, experts);
    const tern_gguf_kv *scaling = tern_gguf_find_kv(g, KEY("rope.scaling.type"));
    if (scaling) {
        tern_gguf_str t;
        TERN_TRY(tern_gguf_get_str(g, k, &t));
        if (t.n != 4 || memcmp(t.p, "none", 4))
            return tern_err(TERN_EFORMAT, "%s: %s.rope.scaling.type is '%.*s'; tern loads GGUF files without rope scaling", L, arch,
                            (int)(t.n > 40 ? 40 : t.n), t.p);
    }
#undef KEY
    if (tern_gguf_find_tensor(g, "rope_freqs.weight"))
        return tern_err(TERN_EFORMAT, "%s: rope_freqs.weight (Llama 3's rope scaling) is not loaded; convert the Hugging Face folder instead", L);
    if (!qwen && tern_gguf_find_tensor(g, "blk.0.attn_q.bias"))
        return tern_err(TERN_EFORMAT, "%s: blk.0.attn_q.bias: q, k and v biases under the llama architecture are not loaded", L);
    c->tie_embeddings = tern_gguf_find_tensor(g, "output.weight") == NULL;
    return TERN_OK;
}

static tern_status llama_config(const tern_gguf *g, tern_model_config *c) { return config(g, c, "llama", 0); }
static tern_status qwen2_config(const tern_gguf *g, tern_model_config *c) { return config(g, c, "qwen2", 1); }

const gguf_arch tern_gguf_arch_llama = {"llama", "Llama", llama_meta, llama_config, llama_tensor};
const gguf_arch tern_gguf_arch_qwen2 = {"qwen2", "Qwen2", qwen2_meta, qwen2_config, qwen2_tensor};
