/* Hugging Face GPT-2 folders: config.json + model.safetensors in, and out with the tokenizer
 * files beside them. Names and layout follow transformers' GPT2LMHeadModel (Conv1D weights are
 * [in, out], which is also tern's layout, so no transposes); the tied lm_head is not stored. */
#include "tern/io.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

tern_status tern_io_model_to_st(tern_gpt2 *m, const char *prefix, tern_st_writer **out) {
    tern_st_writer *w;
    TERN_TRY(tern_st_writer_init(&w));
    size_t n;
    const tern_tensor *t = tern_gpt2_tensors(m, &n);
    const float *p = tern_gpt2_params(m);
    tern_status st = tern_st_add_meta(w, "format", "pt");
    for (size_t i = 0; st == TERN_OK && i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, t[i].name);
        st = tern_st_add(w, name, TERN_DT_F32, t[i].ndim, t[i].shape, p + t[i].offset);
    }
    if (st != TERN_OK) {
        tern_st_writer_free(w);
        return st;
    }
    *out = w;
    return TERN_OK;
}

static int json_int(cJSON *o, const char *k, int *out) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    /* range first: converting a double outside int's range to int is undefined behaviour */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= INT_MIN && v->valuedouble <= INT_MAX) ||
        v->valuedouble != (double)(int)v->valuedouble)
        return 0;
    *out = (int)v->valuedouble;
    return 1;
}

tern_status tern_io_read_hf_config(const char *path, tern_gpt2_config *cfg) {
    char *text;
    size_t n;
    TERN_TRY(tern_read_file(path, &text, &n));
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return tern_err(TERN_EFORMAT, "%s: not a JSON object", path);
    }
    tern_status st = TERN_OK;
    memset(cfg, 0, sizeof *cfg);
    const char *missing = !json_int(j, "n_layer", &cfg->n_layer)       ? "n_layer"
                          : !json_int(j, "n_head", &cfg->n_head)       ? "n_head"
                          : !json_int(j, "n_embd", &cfg->n_embd)       ? "n_embd"
                          : !json_int(j, "vocab_size", &cfg->vocab_size) ? "vocab_size"
                          : !json_int(j, "n_positions", &cfg->n_ctx)   ? "n_positions"
                                                                        : NULL;
    if (missing) st = tern_err(TERN_EFORMAT, "%s: missing or non-integer \"%s\"", path, missing);
    cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_epsilon");
    if (st == TERN_OK && cJSON_IsNumber(eps) && eps->valuedouble != 1e-5)
        st = tern_err(TERN_EFORMAT, "%s: layer_norm_epsilon %g is not supported (tern's GPT-2 uses 1e-05)", path, eps->valuedouble);
    cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "activation_function");
    if (st == TERN_OK && cJSON_IsString(act) && strcmp(act->valuestring, "gelu_new") && strcmp(act->valuestring, "gelu_pytorch_tanh"))
        st = tern_err(TERN_EFORMAT, "%s: activation_function \"%s\" is not supported (tern's GPT-2 uses gelu_new)", path,
                      act->valuestring);
    cJSON *ninner = cJSON_GetObjectItemCaseSensitive(j, "n_inner");
    if (st == TERN_OK && cJSON_IsNumber(ninner) && ninner->valuedouble != 4.0 * cfg->n_embd)
        st = tern_err(TERN_EFORMAT, "%s: n_inner %g is not 4*n_embd; tern's GPT-2 uses a 4x MLP", path, ninner->valuedouble);
    cJSON_Delete(j);
    if (st == TERN_OK && (st = tern_gpt2_config_check(cfg)) != TERN_OK) tern_err_wrap(st, "%s", path);
    return st;
}

/* Finds name with or without the "transformer." prefix. */
static const tern_st_entry *find_either(const tern_safetensors *st, const char *name) {
    const tern_st_entry *e = tern_st_find(st, name);
    if (e) return e;
    char pre[128];
    snprintf(pre, sizeof pre, "transformer.%s", name);
    return tern_st_find(st, pre);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

tern_status tern_io_load_st_params(tern_gpt2 *m, const tern_safetensors *st) {
    size_t n;
    const tern_tensor *t = tern_gpt2_tensors(m, &n);
    float *p = tern_gpt2_params(m);
    const char *label = tern_st_label(st);
    for (size_t i = 0; i < n; i++) {
        const tern_st_entry *e = find_either(st, t[i].name);
        if (!e) return tern_err(TERN_ENOTFOUND, "%s: missing tensor '%s'", label, t[i].name);
        TERN_TRY(tern_st_read_f32(st, e->name, p + t[i].offset, t[i].ndim, t[i].shape));
    }
    /* Everything else must be a known buffer or a tied head; anything unknown is refused, so a
     * file of another architecture is not half-loaded. */
    const tern_tensor *wte = tern_gpt2_find(m, "wte.weight");
    for (size_t i = 0; i < tern_st_count(st); i++) {
        const tern_st_entry *e = tern_st_entry_at(st, i);
        const char *nm = e->name;
        if (!strncmp(nm, "transformer.", 12)) nm += 12;
        if (tern_gpt2_find(m, nm)) continue;
        if (ends_with(nm, ".attn.bias") || ends_with(nm, ".attn.masked_bias"))
            continue; /* causal-mask buffers of older transformers versions */
        if (!strcmp(nm, "lm_head.weight")) {
            float *head = malloc(wte->numel * sizeof(float));
            if (!head) return tern_err(TERN_ENOMEM, "out of memory checking lm_head.weight");
            tern_status s = tern_st_read_f32(st, e->name, head, 2, wte->shape);
            int tied = s == TERN_OK && !memcmp(head, p + wte->offset, wte->numel * sizeof(float));
            free(head);
            if (s != TERN_OK) return s;
            if (!tied) return tern_err(TERN_EFORMAT, "%s: lm_head.weight differs from wte.weight; tern's GPT-2 ties them", label);
            continue;
        }
        return tern_err(TERN_EFORMAT, "%s: unexpected tensor '%s' for a GPT-2 of this shape", label, e->name);
    }
    return TERN_OK;
}

tern_status tern_io_load_hf(const char *dir, tern_gpt2 **out) {
    *out = NULL;
    char *cpath = tern_path_join(dir, "config.json"), *mpath = tern_path_join(dir, "model.safetensors");
    tern_status st = (!cpath || !mpath) ? tern_err(TERN_ENOMEM, "out of memory") : TERN_OK;
    tern_gpt2_config cfg;
    tern_gpt2 *m = NULL;
    tern_safetensors *sf = NULL;
    if (st == TERN_OK) st = tern_io_read_hf_config(cpath, &cfg);
    if (st == TERN_OK) st = tern_st_open(&sf, mpath);
    if (st == TERN_OK) {
        /* The weights must come near filling the model config.json describes (valid ones hold 2
         * bytes a parameter at least, f16/bf16; a file lacking a tensor gets the precise message
         * of tern_io_load_st_params) before it is allocated: a small config.json must not make
         * tern allocate and zero gigabytes. */
        size_t need = tern_gpt2_config_num_params(&cfg), bytes = 0;
        for (size_t i = 0; i < tern_st_count(sf); i++) bytes += tern_st_entry_at(sf, i)->end - tern_st_entry_at(sf, i)->begin;
        if (need > bytes)
            st = tern_err(TERN_EFORMAT, "%s: config.json describes a GPT-2 of %zu parameters, but %s holds %zu bytes of tensors", dir,
                          need, mpath, bytes);
    }
    if (st == TERN_OK) st = tern_gpt2_init(&m, &cfg);
    if (st == TERN_OK) st = tern_io_load_st_params(m, sf);
    tern_st_free(sf);
    free(cpath);
    free(mpath);
    if (st != TERN_OK) {
        tern_gpt2_free(m);
        return st;
    }
    *out = m;
    return TERN_OK;
}

/* Copies one tokenizer file: a sealed source is decrypted in memory with src_key (identity
 * "tokenizer NAME"); the copy is sealed with dst_key under the same identity, or written plainly
 * when dst_key is NULL. Plaintext never touches the disk on the way. */
static tern_status copy_file(const char *from, const char *to, const char *name, const tern_key *src_key, const tern_key *dst_key) {
    char ident[64];
    snprintf(ident, sizeof ident, "tokenizer %s", name);
    int sealed = 0;
    TERN_TRY(tern_sealed_probe(from, &sealed));
    tern_status st;
    if (sealed) {
        tern_plain pl = {0};
        TERN_TRY(tern_secure_read_file(&pl, from, src_key, ident));
        st = tern_seal_file(to, dst_key, ident, pl.data, pl.size);
        tern_plain_free(&pl);
        return st;
    }
    char *buf;
    size_t n;
    TERN_TRY(tern_read_file(from, &buf, &n));
    st = tern_seal_file(to, dst_key, ident, buf, n);
    free(buf);
    return st;
}

/* Copies the first of two alternative names of a tokenizer file. */
static tern_status copy_tokenizer_file(const char *dir, const char *a, const char *b, const char *to, const tern_key *src_key,
                                       const tern_key *dst_key) {
    char *pa = tern_path_join(dir, a), *pb = tern_path_join(dir, b);
    tern_status st;
    if (!pa || !pb)
        st = tern_err(TERN_ENOMEM, "out of memory");
    else if (tern_path_exists(pa))
        st = copy_file(pa, to, a, src_key, dst_key);
    else if (tern_path_exists(pb))
        st = copy_file(pb, to, a, src_key, dst_key);
    else
        st = tern_err(TERN_ENOTFOUND, "%s: tokenizer folder has neither %s nor %s", dir, a, b);
    free(pa);
    free(pb);
    return st;
}

tern_status tern_io_export_hf(tern_gpt2 *m, const char *tokenizer_dir, int eos_id, const char *outdir) {
    TERN_TRY(tern_mkdir_p(outdir));
    const tern_gpt2_config *c = tern_gpt2_cfg(m);
    char *path = NULL;
    tern_status st = TERN_OK;
    /* config.json: what transformers' GPT2Config needs, with GPT-2's defaults spelled out and
     * dropout off (tern trains without it). */
    cJSON *j = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("GPT2LMHeadModel"));
    cJSON_AddStringToObject(j, "model_type", "gpt2");
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "n_positions", c->n_ctx);
    cJSON_AddNumberToObject(j, "n_ctx", c->n_ctx);
    cJSON_AddNumberToObject(j, "n_embd", c->n_embd);
    cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(j, "n_head", c->n_head);
    cJSON_AddNullToObject(j, "n_inner");
    cJSON_AddStringToObject(j, "activation_function", "gelu_new");
    cJSON_AddNumberToObject(j, "layer_norm_epsilon", 1e-5);
    cJSON_AddNumberToObject(j, "initializer_range", 0.02);
    cJSON_AddNumberToObject(j, "resid_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "embd_pdrop", 0.0);
    cJSON_AddNumberToObject(j, "attn_pdrop", 0.0);
    cJSON_AddBoolToObject(j, "scale_attn_weights", 1);
    cJSON_AddBoolToObject(j, "tie_word_embeddings", 1);
    cJSON_AddNumberToObject(j, "bos_token_id", eos_id);
    cJSON_AddNumberToObject(j, "eos_token_id", eos_id);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    path = tern_path_join(outdir, "config.json");
    st = text && path ? tern_write_file_atomic(path, text, strlen(text)) : tern_err(TERN_ENOMEM, "out of memory");
    free(text);
    free(path);
    if (st != TERN_OK) return st;

    cJSON *g = cJSON_CreateObject();
    cJSON_AddNumberToObject(g, "bos_token_id", eos_id);
    cJSON_AddNumberToObject(g, "eos_token_id", eos_id);
    text = cJSON_Print(g);
    cJSON_Delete(g);
    path = tern_path_join(outdir, "generation_config.json");
    st = text && path ? tern_write_file_atomic(path, text, strlen(text)) : tern_err(TERN_ENOMEM, "out of memory");
    free(text);
    free(path);
    if (st != TERN_OK) return st;

    tern_st_writer *w;
    TERN_TRY(tern_io_model_to_st(m, "transformer.", &w));
    path = tern_path_join(outdir, "model.safetensors");
    st = path ? tern_st_write(w, path) : tern_err(TERN_ENOMEM, "out of memory");
    free(path);
    tern_st_writer_free(w);
    if (st != TERN_OK || !tokenizer_dir) return st;

    return tern_io_copy_tokenizer(tokenizer_dir, outdir);
}

tern_status tern_io_copy_tokenizer_key(const char *srcdir, const char *dstdir, const tern_key *src_key, const tern_key *dst_key) {
    TERN_TRY(tern_mkdir_p(dstdir));
    char *vj = tern_path_join(dstdir, "vocab.json"), *mt = tern_path_join(dstdir, "merges.txt");
    tern_status st;
    if (!vj || !mt)
        st = tern_err(TERN_ENOMEM, "out of memory");
    else if ((st = copy_tokenizer_file(srcdir, "vocab.json", "encoder.json", vj, src_key, dst_key)) == TERN_OK)
        st = copy_tokenizer_file(srcdir, "merges.txt", "vocab.bpe", mt, src_key, dst_key);
    free(vj);
    free(mt);
    return st;
}

tern_status tern_io_copy_tokenizer(const char *srcdir, const char *dstdir) {
    return tern_io_copy_tokenizer_key(srcdir, dstdir, NULL, NULL);
}
