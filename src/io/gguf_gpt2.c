/* GPT-2 as GGUF: llama.cpp's "gpt2" architecture, its names and metadata both ways (for
 * gguf_export.c and gguf_load.c). Names, layouts and metadata follow llama.cpp's
 * convert_hf_to_gguf.py (GPT2Model) and gguf-py. */
#include "io/gguf_arch.h"

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

static tern_status gpt2_meta(tern_gguf_writer *w, const tern_model_config *c) {
    TERN_TRY(tern_gguf_add_u32(w, "gpt2.context_length", (uint32_t)c->n_ctx));
    TERN_TRY(tern_gguf_add_u32(w, "gpt2.embedding_length", (uint32_t)c->n_embd));
    TERN_TRY(tern_gguf_add_u32(w, "gpt2.feed_forward_length", (uint32_t)c->ffn_dim));
    TERN_TRY(tern_gguf_add_u32(w, "gpt2.block_count", (uint32_t)c->n_layer));
    TERN_TRY(tern_gguf_add_u32(w, "gpt2.attention.head_count", (uint32_t)c->n_head));
    return tern_gguf_add_f32(w, "gpt2.attention.layer_norm_epsilon", (float)c->norm_eps);
}

static int gpt2_tensor(const tern_model_config *c, const char *name, char out[TERN_GGUF_MAX_NAME], int *keep_f32) {
    (void)c;
    int tr;
    gguf_name(name, out, &tr);
    *keep_f32 = !strcmp(out, "position_embd.weight");
    return tr ? GGUF_TRANSPOSE : GGUF_AS_IS;
}

static tern_status gpt2_config(const tern_gguf *g, tern_model_config *c) {
    const char *L = tern_gguf_label(g);
    int n_layer, n_head, n_embd, n_ctx;
    TERN_TRY(gguf_get_int(g, "gpt2.block_count", &n_layer));
    TERN_TRY(gguf_get_int(g, "gpt2.attention.head_count", &n_head));
    TERN_TRY(gguf_get_int(g, "gpt2.embedding_length", &n_embd));
    TERN_TRY(gguf_get_int(g, "gpt2.context_length", &n_ctx));
    *c = tern_model_config_gpt2(n_layer, n_head, n_embd, n_ctx, 0);
    float eps;
    TERN_TRY(tern_gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &eps));
    if (eps != 1e-5f) return tern_err(TERN_EFORMAT, "%s: gpt2.attention.layer_norm_epsilon is %g; tern's GPT-2 uses 1e-05", L, (double)eps);
    if (tern_gguf_find_kv(g, "gpt2.feed_forward_length")) {
        int ff;
        TERN_TRY(gguf_get_int(g, "gpt2.feed_forward_length", &ff));
        if ((long long)ff != 4LL * c->n_embd)
            return tern_err(TERN_EFORMAT, "%s: gpt2.feed_forward_length %d is not 4*n_embd (%d); tern's GPT-2 uses a 4x MLP", L, ff, c->n_embd);
    }
    return TERN_OK;
}

const gguf_arch tern_gguf_arch_gpt2 = {"gpt2", "GPT-2", gpt2_meta, gpt2_config, gpt2_tensor};


