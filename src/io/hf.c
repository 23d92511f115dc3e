/* Hugging Face folders in and out, for every family: config.json read into a model config (or
 * refused by name when tern cannot compute the model exactly), weights from one or several
 * safetensors files, and export with the tokenizer beside them. Names and layouts are
 * transformers' own (GPT2LMHeadModel's Conv1D [in, out]; Llama's nn.Linear [out, in]), so nothing
 * is transposed; a tied head is not stored. */
#include "tern/io.h"

#include "tern/json.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- config.json ---- */

/* obj[key] as an int in [lo, hi]: *out set and 1; absent: 0 (and *out unchanged); a value of the
 * wrong kind fails with a message naming the field. */
static tern_status get_int(const cJSON *o, const char *key, int required, long lo, long hi, int *out, const char *what) {
    long v = *out;
    TERN_TRY(tern_json_long(o, key, required, lo, hi, &v, what));
    *out = (int)v;
    return TERN_OK;
}

static int get_bool(const cJSON *o, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static const char *get_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static tern_status gpt2_config(const cJSON *j, const char *path, tern_model_config *cfg) {
    int L = 0, H = 0, C = 0, P = 0, V = 0;
    TERN_TRY(get_int(j, "n_layer", 1, 1, INT_MAX, &L, path));
    TERN_TRY(get_int(j, "n_head", 1, 1, INT_MAX, &H, path));
    TERN_TRY(get_int(j, "n_embd", 1, 1, INT_MAX, &C, path));
    TERN_TRY(get_int(j, "vocab_size", 1, 1, INT_MAX, &V, path));
    TERN_TRY(get_int(j, "n_positions", 1, 1, INT_MAX, &P, path));
    *cfg = tern_model_config_gpt2(L, H, C, P, V);
    double eps = 1e-5;
    TERN_TRY(tern_json_number(j, "layer_norm_epsilon", 0, &eps, path));
    if (eps != 1e-5) return tern_err(TERN_EFORMAT, "%s: layer_norm_epsilon %g is not supported (tern's GPT-2 uses 1e-05)", path, eps);
    const char *act = get_str(j, "activation_function");
    if (act && strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh"))
        return tern_err(TERN_EFORMAT, "%s: activation_function \"%s\" is not supported (tern's GPT-2 uses gelu_new)", path, act);
    const cJSON *ninner = cJSON_GetObjectItemCaseSensitive(j, "n_inner");
    if (cJSON_IsNumber(ninner) && ninner->valuedouble != 4.0 * C)
        return tern_err(TERN_EFORMAT, "%s: n_inner %g is not 4*n_embd; tern's GPT-2 uses a 4x MLP", path, ninner->valuedouble);
    return TERN_OK;
}

/* The rope block: transformers 5's rope_parameters (rope_theta inside) or transformers 4's
 * top-level rope_theta with rope_scaling (null, or an object with rope_type or type). */
static tern_status rope_config(const cJSON *j, const char *path, tern_model_config *cfg) {
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(j, "rope_parameters");
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    cfg->rope_theta = 10000.0;
    TERN_TRY(tern_json_number(j, "rope_theta", 0, &cfg->rope_theta, path));
    const cJSON *r = NULL;
    if (cJSON_IsObject(params)) {
        TERN_TRY(tern_json_number(params, "rope_theta", 0, &cfg->rope_theta, path));
        r = params;
    } else if (cJSON_IsObject(scaling)) {
        r = scaling;
    } else if (scaling && !cJSON_IsNull(scaling)) {
        return tern_err(TERN_EFORMAT, "%s: rope_scaling must be an object or null", path);
    }
    if (!r) return TERN_OK;
    const char *type = get_str(r, "rope_type");
    if (!type) type = get_str(r, "type");
    if (!type || !strcmp(type, "default")) return TERN_OK;
    if (strcmp(type, "llama3"))
        return tern_err(TERN_EFORMAT, "%s: rope scaling of type \"%s\" is not supported (tern computes plain rotary embeddings and "
                                      "Llama 3's \"llama3\" scaling)", path, type);
    cfg->rope_type = TERN_ROPE_LLAMA3;
    TERN_TRY(tern_json_number(r, "factor", 1, &cfg->rope_factor, path));
    TERN_TRY(tern_json_number(r, "low_freq_factor", 1, &cfg->rope_low_freq_factor, path));
    TERN_TRY(tern_json_number(r, "high_freq_factor", 1, &cfg->rope_high_freq_factor, path));
    return get_int(r, "original_max_position_embeddings", 1, 1, INT_MAX, &cfg->rope_original_ctx, path);
}

static tern_status llama_config(const cJSON *j, const char *path, const char *type, tern_model_config *cfg) {
    int L = 0, H = 0, KV = 0, C = 0, P = 0, V = 0, F = 0;
    TERN_TRY(get_int(j, "num_hidden_layers", 1, 1, INT_MAX, &L, path));
    TERN_TRY(get_int(j, "num_attention_heads", 1, 1, INT_MAX, &H, path));
    TERN_TRY(get_int(j, "hidden_size", 1, 1, INT_MAX, &C, path));
    TERN_TRY(get_int(j, "vocab_size", 1, 1, INT_MAX, &V, path));
    TERN_TRY(get_int(j, "max_position_embeddings", 1, 1, INT_MAX, &P, path));
    TERN_TRY(get_int(j, "intermediate_size", 1, 1, INT_MAX, &F, path));
    KV = H;
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(j, "num_key_value_heads");
    if (kv && !cJSON_IsNull(kv)) TERN_TRY(get_int(j, "num_key_value_heads", 1, 1, INT_MAX, &KV, path));
    *cfg = tern_model_config_llama(L, H, KV, C, P, V);
    cfg->ffn_dim = F;
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(j, "head_dim");
    if (hd && !cJSON_IsNull(hd)) TERN_TRY(get_int(j, "head_dim", 1, 1, INT_MAX, &cfg->head_dim, path));
    cfg->norm_eps = 1e-6;
    TERN_TRY(tern_json_number(j, "rms_norm_eps", 0, &cfg->norm_eps, path));
    cfg->tie_embeddings = get_bool(j, "tie_word_embeddings", 0);
    const char *act = get_str(j, "hidden_act");
    if (act && strcmp(act, "silu"))
        return tern_err(TERN_EFORMAT, "%s: hidden_act \"%s\" is not supported (tern's Llama uses SwiGLU with silu)", path, act);
    if (get_bool(j, "mlp_bias", 0)) return tern_err(TERN_EFORMAT, "%s: mlp_bias is set; tern's Llama has no MLP biases", path);
    if (!strcmp(type, "qwen2")) {
        cfg->qkv_bias = 1; /* Qwen2's q, k and v projections always have biases, o_proj none */
    } else if (get_bool(j, "attention_bias", 0)) {
        return tern_err(TERN_EFORMAT, "%s: attention_bias is set (biases on q, k, v and o); tern computes Qwen2's q, k, v biases "
                                      "but no o_proj bias", path);
    }
    /* Mistral's window (Qwen2's only when use_sliding_window is set) */
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(j, "sliding_window");
    int use_sw = !strcmp(type, "qwen2") ? get_bool(j, "use_sliding_window", 0) : 1;
    if (use_sw && sw && !cJSON_IsNull(sw)) {
        TERN_TRY(get_int(j, "sliding_window", 1, 1, INT_MAX, &cfg->sliding_window, path));
        if (cfg->sliding_window >= P) cfg->sliding_window = 0; /* a window as long as the context is none */
    }
    return rope_config(j, path, cfg);
}

tern_status tern_io_read_hf_config(const char *path, tern_model_config *cfg) {
    cJSON *j;
    TERN_TRY(tern_json_load(&j, path));
    tern_status st = TERN_OK;
    memset(cfg, 0, sizeof *cfg);
    const char *type = cJSON_IsObject(j) ? get_str(j, "model_type") : NULL;
    if (!cJSON_IsObject(j)) {
        st = tern_err(TERN_EFORMAT, "%s: not a JSON object", path);
    } else if (!type) {
        /* GPT-2 folders written before model_type was required */
        st = cJSON_GetObjectItemCaseSensitive(j, "n_layer") ? gpt2_config(j, path, cfg)
                                                              : tern_err(TERN_EFORMAT, "%s: no \"model_type\"", path);
    } else if (!strcmp(type, "gpt2")) {
        st = gpt2_config(j, path, cfg);
    } else if (!strcmp(type, "llama") || !strcmp(type, "mistral") || !strcmp(type, "qwen2")) {
        if (cJSON_GetObjectItemCaseSensitive(j, "num_local_experts") || cJSON_GetObjectItemCaseSensitive(j, "num_experts"))
            st = tern_err(TERN_EFORMAT, "%s: a mixture of experts is not a model tern trains", path);
        else
            st = llama_config(j, path, type, cfg);
    } else {
        st = tern_err(TERN_EFORMAT, "%s: model_type \"%s\" is not one tern trains (gpt2, llama, mistral, qwen2)", path, type);
    }
    cJSON_Delete(j);
    if (st == TERN_OK && (st = tern_model_config_check(cfg)) != TERN_OK) tern_err_wrap(st, "%s", path);
    return st;
}

/* ---- weights ---- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Tensors of a Hugging Face file that are not parameters: causal-mask buffers of older GPT-2
 * files, Llama's rotary inv_freq buffers, and a head equal to the tied embedding. */
static tern_status hf_extra(tern_model *m, const tern_safetensors *sf, const tern_st_entry *e, void *ctx) {
    (void)ctx;
    const char *nm = e->name, *label = tern_st_label(sf);
    if (ends_with(nm, ".attn.bias") || ends_with(nm, ".attn.masked_bias") || ends_with(nm, "rotary_emb.inv_freq")) return TERN_OK;
    const tern_model_config *c = tern_model_cfg(m);
    if (!strcmp(nm, "lm_head.weight") && c->tie_embeddings) {
        const tern_tensor *emb = tern_model_tensors(m, &(size_t){0}); /* the token embedding leads the table */
        float *a = malloc(emb->numel * sizeof(float)), *b = malloc(emb->numel * sizeof(float));
        tern_status st = a && b ? tern_st_read_f32(sf, nm, a, 2, emb->shape) : tern_err(TERN_ENOMEM, "out of memory checking %s", nm);
        if (st == TERN_OK) st = tern_model_read(m, TERN_PARAMS, emb->offset, emb->numel, b);
        int tied = st == TERN_OK && !memcmp(a, b, emb->numel * sizeof(float));
        free(a);
        free(b);
        TERN_TRY(st);
        if (!tied) return tern_err(TERN_EFORMAT, "%s: lm_head.weight differs from %s, but config.json ties them", label, emb->name);
        return TERN_OK;
    }
    return tern_err(TERN_EFORMAT, "%s: unexpected tensor '%s' for a %s of this shape", label, nm, c->arch);
}

/* The weight files of a folder: model.safetensors, or the files model.safetensors.index.json's
 * weight_map names (each once, in order of first mention). */
static tern_status weight_files(const char *dir, char ***files, size_t *n) {
    *files = NULL;
    *n = 0;
    char *single = tern_path_join(dir, "model.safetensors"), *index = tern_path_join(dir, "model.safetensors.index.json");
    tern_status st = single && index ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK && tern_path_exists(single)) {
        *files = malloc(sizeof **files);
        if (!*files) st = tern_err(TERN_ENOMEM, "out of memory");
        else {
            (*files)[(*n)++] = single;
            single = NULL;
        }
    } else if (st == TERN_OK && tern_path_exists(index)) {
        cJSON *j;
        st = tern_json_load(&j, index);
        const cJSON *map = st == TERN_OK ? cJSON_GetObjectItemCaseSensitive(j, "weight_map") : NULL;
        if (st == TERN_OK && !cJSON_IsObject(map)) st = tern_err(TERN_EFORMAT, "%s: no \"weight_map\" object", index);
        size_t cap = (size_t)cJSON_GetArraySize(map) + 1;
        if (st == TERN_OK && !(*files = calloc(cap, sizeof **files))) st = tern_err(TERN_ENOMEM, "out of memory");
        for (const cJSON *e = map ? map->child : NULL; st == TERN_OK && e; e = e->next) {
            if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, '/') || e->valuestring[0] == '.') {
                st = tern_err(TERN_EFORMAT, "%s: weight_map[\"%s\"] is not a file name in the folder", index, e->string);
                break;
            }
            int seen = 0;
            for (size_t i = 0; i < *n && !seen; i++) seen = !strcmp(strrchr((*files)[i], '/') + 1, e->valuestring);
            if (seen) continue;
            if (!((*files)[*n] = tern_path_join(dir, e->valuestring))) st = tern_err(TERN_ENOMEM, "out of memory");
            else (*n)++;
        }
        if (st == TERN_OK && *n == 0) st = tern_err(TERN_EFORMAT, "%s: the weight_map names no files", index);
        if (j) cJSON_Delete(j);
    } else if (st == TERN_OK) {
        st = tern_err(TERN_ENOTFOUND, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    free(single);
    free(index);
    if (st != TERN_OK) {
        for (size_t i = 0; i < *n; i++) free((*files)[i]);
        free(*files);
        *files = NULL;
        *n = 0;
    }
    return st;
}

/* Each of the table's tensors from whichever file holds it; every file is checked for tensors the
 * model does not have. */
tern_status tern_io_load_hf_weights(tern_model *m, tern_safetensors *const *sf, size_t nsf) {
    size_t n;
    const tern_tensor *t = tern_model_tensors(m, &n);
    const char *prefix = tern_model_hf_prefix(m);
    size_t most = 0;
    for (size_t i = 0; i < n; i++) most = t[i].numel > most ? t[i].numel : most;
    float *buf = malloc(most * sizeof(float));
    tern_status st = buf ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; st == TERN_OK && i < n; i++) {
        char pre[160];
        snprintf(pre, sizeof pre, "%s%s", prefix, t[i].name);
        const tern_safetensors *in = NULL;
        const char *name = NULL;
        for (size_t f = 0; f < nsf && !in; f++) {
            if (tern_st_find(sf[f], t[i].name)) in = sf[f], name = t[i].name;
            else if (*prefix && tern_st_find(sf[f], pre)) in = sf[f], name = pre;
        }
        if (!in) st = tern_err(TERN_ENOTFOUND, "%s: missing tensor '%s' in its weight files", tern_st_label(sf[0]), pre);
        if (st == TERN_OK) st = tern_st_read_f32(in, name, buf, t[i].ndim, t[i].shape);
        if (st == TERN_OK) st = tern_model_write(m, TERN_PARAMS, t[i].offset, t[i].numel, buf);
    }
    free(buf);
    size_t np = strlen(prefix);
    for (size_t f = 0; st == TERN_OK && f < nsf; f++)
        for (size_t i = 0; st == TERN_OK && i < tern_st_count(sf[f]); i++) {
            const tern_st_entry *e = tern_st_entry_at(sf[f], i);
            const char *nm = np && !strncmp(e->name, prefix, np) ? e->name + np : e->name;
            if (!tern_model_find(m, nm)) st = hf_extra(m, sf[f], e, NULL);
        }
    return st;
}

tern_status tern_io_load_hf(const char *dir, tern_model **out, tern_backend *be) {
    *out = NULL;
    char *cpath = tern_path_join(dir, "config.json"), **files = NULL;
    size_t nfiles = 0;
    tern_status st = cpath ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    tern_model_config cfg;
    tern_model *m = NULL;
    tern_safetensors **sf = NULL;
    if (st == TERN_OK) st = tern_io_read_hf_config(cpath, &cfg);
    if (st == TERN_OK) st = weight_files(dir, &files, &nfiles);
    if (st == TERN_OK && !(sf = calloc(nfiles, sizeof *sf))) st = tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; st == TERN_OK && i < nfiles; i++) st = tern_st_open(&sf[i], files[i]);
    if (st == TERN_OK) {
        /* The weights must come near filling the model config.json describes (valid ones hold 2
         * bytes a parameter at least, f16/bf16; a file lacking a tensor gets the precise message
         * of the loader) before it is allocated: a small config.json must not make tern allocate
         * and zero gigabytes. */
        size_t need = tern_model_config_num_params(&cfg), bytes = 0;
        for (size_t f = 0; f < nfiles; f++)
            for (size_t i = 0; i < tern_st_count(sf[f]); i++) bytes += tern_st_entry_at(sf[f], i)->end - tern_st_entry_at(sf[f], i)->begin;
        if (need > bytes)
            st = tern_err(TERN_EFORMAT, "%s: config.json describes a %s of %zu parameters, but its weight files hold %zu bytes of "
                                        "tensors", dir, cfg.arch, need, bytes);
    }
    if (st == TERN_OK) st = tern_model_init(&m, &cfg, be);
    if (st == TERN_OK) st = tern_io_load_hf_weights(m, sf, nfiles);
    for (size_t i = 0; i < nfiles; i++) {
        if (sf) tern_st_free(sf[i]);
        free(files[i]);
    }
    free(sf);
    free(files);
    free(cpath);
    if (st != TERN_OK) {
        tern_model_free(m);
        return st;
    }
    *out = m;
    return TERN_OK;
}

/* ---- export ---- */

static void add_rope(cJSON *j, const tern_model_config *c) {
    /* transformers 4 reads the top-level rope_theta and rope_scaling; transformers 5 reads them
     * too and rebuilds its rope_parameters from them */
    cJSON_AddNumberToObject(j, "rope_theta", c->rope_theta);
    if (c->rope_type == TERN_ROPE_LLAMA3) {
        cJSON *r = cJSON_AddObjectToObject(j, "rope_scaling");
        cJSON_AddStringToObject(r, "rope_type", "llama3");
        cJSON_AddNumberToObject(r, "factor", c->rope_factor);
        cJSON_AddNumberToObject(r, "low_freq_factor", c->rope_low_freq_factor);
        cJSON_AddNumberToObject(r, "high_freq_factor", c->rope_high_freq_factor);
        cJSON_AddNumberToObject(r, "original_max_position_embeddings", c->rope_original_ctx);
    } else {
        cJSON_AddNullToObject(j, "rope_scaling");
    }
}

static cJSON *hf_config_json(const tern_model_config *c, int eos_id) {
    cJSON *j = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    if (!strcmp(c->arch, "gpt2")) {
        /* what transformers' GPT2Config needs, GPT-2's defaults spelled out and dropout off */
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
        cJSON_AddNumberToObject(j, "layer_norm_epsilon", c->norm_eps);
        cJSON_AddNumberToObject(j, "initializer_range", 0.02);
        cJSON_AddNumberToObject(j, "resid_pdrop", 0.0);
        cJSON_AddNumberToObject(j, "embd_pdrop", 0.0);
        cJSON_AddNumberToObject(j, "attn_pdrop", 0.0);
        cJSON_AddBoolToObject(j, "scale_attn_weights", 1);
    } else {
        /* Q, K and V biases without an output bias are Qwen2's layout; a sliding window is
         * Mistral's (kept so transformers limits attention as the source model did); otherwise a
         * Llama */
        int qwen = c->qkv_bias, mistral = !qwen && c->sliding_window;
        cJSON_AddItemToArray(arch, cJSON_CreateString(qwen ? "Qwen2ForCausalLM" : mistral ? "MistralForCausalLM" : "LlamaForCausalLM"));
        cJSON_AddStringToObject(j, "model_type", qwen ? "qwen2" : mistral ? "mistral" : "llama");
        cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
        cJSON_AddNumberToObject(j, "hidden_size", c->n_embd);
        cJSON_AddNumberToObject(j, "intermediate_size", c->ffn_dim);
        cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layer);
        cJSON_AddNumberToObject(j, "num_attention_heads", c->n_head);
        cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_head);
        cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
        cJSON_AddNumberToObject(j, "max_position_embeddings", c->n_ctx);
        cJSON_AddNumberToObject(j, "rms_norm_eps", c->norm_eps);
        cJSON_AddStringToObject(j, "hidden_act", "silu");
        cJSON_AddNumberToObject(j, "initializer_range", 0.02);
        add_rope(j, c);
        if (qwen) {
            cJSON_AddBoolToObject(j, "use_sliding_window", 0);
            cJSON_AddNullToObject(j, "sliding_window");
        } else if (mistral) {
            cJSON_AddNumberToObject(j, "sliding_window", c->sliding_window);
        } else {
            cJSON_AddBoolToObject(j, "attention_bias", 0);
            cJSON_AddBoolToObject(j, "mlp_bias", 0);
        }
        cJSON_AddNumberToObject(j, "attention_dropout", 0.0);
        cJSON_AddBoolToObject(j, "use_cache", 1);
    }
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_embeddings);
    cJSON_AddNumberToObject(j, "bos_token_id", eos_id);
    cJSON_AddNumberToObject(j, "eos_token_id", eos_id);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    return j;
}

static tern_status write_json(const char *dir, const char *name, cJSON *j) {
    char *text = cJSON_Print(j), *path = tern_path_join(dir, name);
    tern_status st = text && path ? tern_write_file_atomic(path, text, strlen(text)) : tern_err(TERN_ENOMEM, "out of memory");
    free(text);
    free(path);
    return st;
}

/* What tokenizer_config.json needs for transformers' GPT2Tokenizer to load the folder without
 * falling back to guesses (save_pretrained writes the same fields). */
static cJSON *tokenizer_config_json(int n_ctx) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "tokenizer_class", "GPT2Tokenizer");
    cJSON_AddStringToObject(j, "bos_token", "<|endoftext|>");
    cJSON_AddStringToObject(j, "eos_token", "<|endoftext|>");
    cJSON_AddStringToObject(j, "unk_token", "<|endoftext|>");
    cJSON_AddBoolToObject(j, "add_prefix_space", 0);
    cJSON_AddBoolToObject(j, "add_bos_token", 0);
    cJSON_AddNumberToObject(j, "model_max_length", n_ctx);
    cJSON_AddBoolToObject(j, "clean_up_tokenization_spaces", 0);
    return j;
}

/* The files an export writes: an existing folder holding only these is an earlier export, which a
 * new one replaces; anything else in it is refused, so nothing of the user's is removed. */
static const char *const export_files[] = {"config.json", "generation_config.json", "model.safetensors", "vocab.json",
                                           "merges.txt", "tokenizer_config.json", NULL};

static tern_status check_replaceable(const char *outdir) {
    DIR *d = opendir(outdir);
    if (!d) return errno == ENOENT ? TERN_OK : tern_err(TERN_EIO, "%s: cannot read folder: %s", outdir, strerror(errno));
    struct dirent *e;
    tern_status st = TERN_OK;
    while (st == TERN_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int ours = 0;
        for (int i = 0; export_files[i] && !ours; i++) ours = !strcmp(e->d_name, export_files[i]);
        if (!ours)
            st = tern_err(TERN_EINVAL, "%s exists and holds %s, which is not part of an export; choose another folder", outdir,
                          e->d_name);
    }
    closedir(d);
    return st;
}

static void remove_folder(const char *dir) {
    for (int i = 0; export_files[i]; i++) {
        char *p = tern_path_join(dir, export_files[i]);
        if (p) unlink(p);
        free(p);
    }
    rmdir(dir);
}

tern_status tern_io_export_hf(tern_model *m, const char *tokenizer_dir, const tern_key *tok_key, int eos_id, const char *outdir) {
    TERN_TRY(check_replaceable(outdir));
    /* written into a hidden folder beside outdir, then renamed into place: a failure (a full disk)
     * never leaves a folder that looks like a model */
    size_t n = strlen(outdir);
    while (n > 1 && outdir[n - 1] == '/') n--;
    char *tmp = malloc(n + 40), *old = malloc(n + 40);
    if (!tmp || !old) {
        free(tmp);
        free(old);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    snprintf(tmp, n + 40, "%.*s.tmp-%ld", (int)n, outdir, (long)getpid());
    snprintf(old, n + 40, "%.*s.old-%ld", (int)n, outdir, (long)getpid());
    remove_folder(tmp);
    tern_status st = tern_mkdir_p(tmp);
    const tern_model_config *c = tern_model_cfg(m);
    cJSON *j = NULL;
    /* transformers 5 overrides tokenizer_config.json for model_type qwen2 (it lists Qwen2 among
     * the models whose Hub tokenizer class it distrusts) and splits text as Qwen2's tokenizer
     * does, which gives other ids than the GPT-2 tokenizer the model was trained with */
    if (c->qkv_bias && tokenizer_dir)
        tern_log(TERN_LOG_WARN, "%s: a Qwen2 folder: load its tokenizer with GPT2TokenizerFast.from_pretrained, not AutoTokenizer "
                                "(transformers 5 gives model_type qwen2 Qwen2's pre-tokenizer, which splits text differently)", outdir);
    if (st == TERN_OK) {
        j = hf_config_json(c, eos_id);
        st = write_json(tmp, "config.json", j);
        cJSON_Delete(j);
    }
    if (st == TERN_OK) {
        j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "bos_token_id", eos_id);
        cJSON_AddNumberToObject(j, "eos_token_id", eos_id);
        st = write_json(tmp, "generation_config.json", j);
        cJSON_Delete(j);
    }
    if (st == TERN_OK) {
        tern_st_writer *w = NULL;
        char *path = tern_path_join(tmp, "model.safetensors");
        st = path ? tern_st_writer_init(&w) : tern_err(TERN_ENOMEM, "out of memory");
        if (st == TERN_OK) st = tern_params_to_st(m, tern_model_hf_prefix(m), w);
        if (st == TERN_OK) st = tern_st_write(w, path);
        tern_st_writer_free(w);
        free(path);
    }
    if (st == TERN_OK && tokenizer_dir) {
        st = tern_io_copy_tokenizer(tokenizer_dir, tmp, tok_key, NULL);
        if (st == TERN_OK) {
            j = tokenizer_config_json(c->n_ctx);
            st = write_json(tmp, "tokenizer_config.json", j);
            cJSON_Delete(j);
        }
    }
    if (st == TERN_OK) st = tern_fsync_dir(tmp);
    /* an earlier export moves aside first, so that one of the two is always whole */
    int had_old = tern_path_exists(outdir);
    if (st == TERN_OK && had_old) {
        remove_folder(old);
        if (rename(outdir, old) != 0) st = tern_err(TERN_EIO, "%s: cannot move the earlier export aside: %s", outdir, strerror(errno));
    }
    if (st == TERN_OK && rename(tmp, outdir) != 0) {
        st = tern_err(TERN_EIO, "%s: cannot rename the export into place: %s", outdir, strerror(errno));
        if (had_old) rename(old, outdir);
    }
    if (st == TERN_OK) {
        char *parent = strdup(outdir), *slash = parent ? strrchr(parent, '/') : NULL;
        if (slash && slash != parent) *slash = 0;
        if (parent) tern_fsync_dir(slash ? (slash == parent ? "/" : parent) : ".");
        free(parent);
        if (had_old) remove_folder(old);
    } else {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", tern_errmsg());
        remove_folder(tmp);
        tern_err(st, "%s", msg);
    }
    free(tmp);
    free(old);
    return st;
}

/* ---- tokenizer files ---- */

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

tern_status tern_io_copy_tokenizer(const char *srcdir, const char *dstdir, const tern_key *src_key, const tern_key *dst_key) {
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
