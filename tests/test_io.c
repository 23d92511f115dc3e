/* Tests of ckpt/ and io/: safetensors round trips and malformed files (exact messages), Hugging
 * Face folders out and in (bit-exact), the Hub's own layouts, the generation cache against the
 * full forward pass, and checkpoint folders (latest pointer, keeping the last K). */
#include "lib.h"

#include <cjson/cJSON.h>

#include <unistd.h>

static tern_model *random_model(int L, int NH, int C, int P, int V, uint64_t seed) {
    tern_model_config cfg = tern_model_config_gpt2(L, NH, C, P, V);
    tern_model *m;
    if (tern_model_init(&m, &cfg, NULL) != TERN_OK) {
        printf("%s\n", tern_errmsg());
        exit(2);
    }
    tern_model_init_weights(m, seed);
    /* non-trivial LayerNorm parameters and biases, so that a mix-up would show */
    float *p = test_model_copy(m, TERN_PARAMS);
    for (size_t i = 0; i < tern_model_num_params(m); i++) p[i] += 0.01f * tern_rng_normal(seed, 99, i);
    test_model_set(m, TERN_PARAMS, p);
    free(p);
    return m;
}

static void test_st_roundtrip(void) {
    const char *d = test_tmpdir("io_st");
    float a[6] = {1, -2, 3.5f, 0, 1e-30f, -7};
    int32_t b[3] = {7, -1, 65536};
    size_t sa[2] = {2, 3}, sb[1] = {3};
    tern_st_writer *w;
    CHECK(tern_st_writer_init(&w) == TERN_OK, "init");
    tern_st_add(w, "a", TERN_DT_F32, 2, sa, a);
    tern_st_add(w, "b", TERN_DT_I32, 1, sb, b);
    tern_st_add_meta(w, "k", "v");
    char *p = tern_path_join(d, "x.safetensors");
    CHECK(tern_st_write(w, p) == TERN_OK, "%s", tern_errmsg());
    tern_st_writer_free(w);
    tern_safetensors *st;
    CHECK(tern_st_open(&st, p) == TERN_OK, "%s", tern_errmsg());
    float got[6];
    CHECK(tern_st_read_f32(st, "a", got, 2, sa) == TERN_OK && !memcmp(got, a, sizeof a), "a");
    const tern_st_entry *e = tern_st_find(st, "b");
    CHECK(e && e->dtype == TERN_DT_I32 && !memcmp(tern_st_data(st, e), b, sizeof b), "b");
    CHECK(tern_st_meta(st, "k") && !strcmp(tern_st_meta(st, "k"), "v"), "meta");
    size_t wrong[2] = {3, 2};
    CHECK(tern_st_read_f32(st, "a", got, 2, wrong) == TERN_EFORMAT, "shape");
    char want[600];
    snprintf(want, sizeof want, "%s: tensor 'a' has shape [2, 3], expected [3, 2]", p);
    CHECK(!strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    CHECK(tern_st_read_f32(st, "nope", got, 2, sa) == TERN_ENOTFOUND, "missing");
    tern_st_free(st);
    free(p);
}

/* A safetensors buffer with the given header text and n data bytes. */
static size_t make_st(uint8_t *buf, const char *header, size_t ndata) {
    size_t h = strlen(header);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(h >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, 0, ndata);
    return 8 + h + ndata;
}

static void expect_bad(const uint8_t *buf, size_t n, const char *msg) {
    tern_safetensors *st;
    tern_status s = tern_st_from_buffer(&st, buf, n, "f.st");
    CHECK(s == TERN_EFORMAT, "accepted, expected: %s", msg);
    CHECK(!strcmp(tern_errmsg(), msg), "got '%s', expected '%s'", tern_errmsg(), msg);
}

static void test_st_malformed(void) {
    uint8_t buf[512];
    expect_bad((const uint8_t *)"abc", 3, "f.st: not a safetensors file: 3 bytes, shorter than the 8-byte header length");
    size_t n = make_st(buf, "{}", 0);
    buf[0] = 200;
    expect_bad(buf, n, "f.st: safetensors header length 200 runs past the end of the file (10 bytes)");
    n = make_st(buf, "[1]", 0);
    expect_bad(buf, n, "f.st: safetensors header is not a JSON object");
    n = make_st(buf, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    expect_bad(buf, n, "f.st: tensor 'b' starts at byte 4 of the data buffer, expected 8 (gap or overlap)");
    n = make_st(buf, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    expect_bad(buf, n, "f.st: tensor 'a' has 8 bytes of data but its shape and dtype need 12");
    n = make_st(buf, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8);
    expect_bad(buf, n, "f.st: tensor 'a' has data_offsets outside the 8-byte data buffer");
    n = make_st(buf, "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    expect_bad(buf, n, "f.st: tensor 'a' has unsupported dtype 'Q4'");
    n = make_st(buf, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    expect_bad(buf, n, "f.st: tensor 'a' appears twice");
    n = make_st(buf, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8);
    expect_bad(buf, n, "f.st: the tensors cover 4 bytes but the data buffer has 8");
    n = make_st(buf, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    expect_bad(buf, n, "f.st: tensor 'a' has a bad dimension in its shape");
}

static void test_hf_roundtrip(void) {
    const char *d = test_tmpdir("io_hf");
    tern_model *m = random_model(2, 2, 16, 12, 37, 5);
    CHECK(tern_io_export_hf(m, NULL, NULL, 36, d) == TERN_OK, "%s", tern_errmsg());
    tern_model *back;
    CHECK(tern_io_load_hf(d, &back, NULL) == TERN_OK, "%s", tern_errmsg());
    if (back) {
        const tern_model_config *c = tern_model_cfg(back);
        CHECK(c->n_layer == 2 && c->n_head == 2 && c->n_embd == 16 && c->n_ctx == 12 && c->vocab_size == 37, "config");
        CHECK(test_same_params(back, m), "parameters differ after export and import");
        tern_model_free(back);
    }
    tern_model_free(m);
}

/* The Hub's layout: names without the prefix, attention-mask buffers, a tied lm_head. */
static void test_hf_hub_layouts(void) {
    const char *d = test_tmpdir("io_hub");
    tern_model *m = random_model(1, 2, 8, 6, 11, 3);
    size_t n;
    const tern_tensor *t = tern_model_tensors(m, &n);
    float *p = test_model_copy(m, TERN_PARAMS);
    static float mask[36], other[88];
    static uint8_t bmask[36];
    size_t mshape[4] = {1, 1, 6, 6};
    const tern_tensor *wte = tern_model_find(m, "wte.weight");
    CHECK(tern_io_export_hf(m, NULL, NULL, 10, d) == TERN_OK, "%s", tern_errmsg()); /* its config.json */
    for (int variant = 0; variant < 4; variant++) {
        tern_st_writer *w;
        tern_st_writer_init(&w);
        for (size_t i = 0; i < n; i++)
            if (!(variant == 3 && !strcmp(t[i].name, "ln_f.bias"))) tern_st_add(w, t[i].name, TERN_DT_F32, t[i].ndim, t[i].shape, p + t[i].offset);
        /* older files store the causal mask as BOOL */
        if (variant == 0)
            tern_st_add(w, "h.0.attn.bias", TERN_DT_BOOL, 4, mshape, bmask);
        else
            tern_st_add(w, "h.0.attn.bias", TERN_DT_F32, 4, mshape, mask);
        tern_st_add(w, "h.0.attn.masked_bias", TERN_DT_F32, 0, NULL, mask);
        memcpy(other, p + wte->offset, sizeof other);
        if (variant == 1) other[5] += 1.0f;
        tern_st_add(w, variant == 2 ? "lm_head.extra" : "lm_head.weight", TERN_DT_F32, 2, wte->shape, variant == 2 ? p : other);
        char *path = tern_path_join(d, "model.safetensors");
        tern_st_write(w, path);
        tern_st_writer_free(w);
        tern_safetensors *st;
        CHECK(tern_st_open(&st, path) == TERN_OK, "%s", tern_errmsg());
        tern_st_free(st);
        tern_model *b = NULL;
        tern_status s = tern_io_load_hf(d, &b, NULL);
        char want[256];
        if (variant == 0) {
            CHECK(s == TERN_OK, "%s", tern_errmsg());
            CHECK(b && test_same_params(b, m), "values");
        } else if (variant == 1) {
            snprintf(want, sizeof want, "%s: lm_head.weight differs from wte.weight, but config.json ties them", path);
            CHECK(s == TERN_EFORMAT && !strcmp(tern_errmsg(), want), "%s", tern_errmsg());
        } else if (variant == 2) {
            snprintf(want, sizeof want, "%s: unexpected tensor 'lm_head.extra' for a gpt2 of this shape", path);
            CHECK(s == TERN_EFORMAT && !strcmp(tern_errmsg(), want), "%s", tern_errmsg());
        } else {
            snprintf(want, sizeof want, "%s: missing tensor 'transformer.ln_f.bias' in its weight files", path);
            CHECK(s == TERN_ENOTFOUND && !strcmp(tern_errmsg(), want), "%s", tern_errmsg());
        }
        tern_model_free(b);
        free(path);
    }
    free(p);
    tern_model_free(m);
}

static void test_kv_cache_matches_forward(void) {
    tern_model *m = random_model(2, 4, 32, 10, 29, 11);
    size_t T = 9, V = 29;
    tern_model_reserve(m, 1, T);
    int32_t in[9] = {1, 5, 28, 0, 3, 3, 17, 9, 2};
    CHECK(tern_model_forward(m, in, NULL, 1, T, NULL) == TERN_OK, "%s", tern_errmsg());
    float *full = malloc(T * V * sizeof(float));
    CHECK(tern_model_logits(m, full) == TERN_OK, "%s", tern_errmsg());
    tern_model_cache *c;
    CHECK(tern_model_cache_init(&c, m) == TERN_OK, "%s", tern_errmsg());
    for (size_t t = 0; t < T; t++) {
        const float *lg;
        CHECK(tern_model_cache_step(m, c, in[t], &lg) == TERN_OK, "%s", tern_errmsg());
        double e = rel_l2(lg, full + t * V, V);
        CHECK(e < 1e-5, "position %zu: relative error %.3g", t, e);
    }
    const float *lg;
    CHECK(tern_model_cache_step(m, c, 1, &lg) == TERN_OK, "10th position fits");
    CHECK(tern_model_cache_step(m, c, 1, &lg) == TERN_EINVAL && !strcmp(tern_errmsg(), "the context is full (10 positions)"),
          "%s", tern_errmsg());
    tern_model_cache_free(c);
    free(full);
    tern_model_free(m);
}

static void test_ckpt_keep_and_latest(void) {
    const char *d = test_tmpdir("io_ckpt");
    tern_model *m = random_model(1, 2, 8, 6, 11, 4);
    size_t np = tern_model_num_params(m);
    tern_adamw opt;
    tern_adamw_init(&opt, NULL, 0, np);
    float *mv = malloc(2 * np * sizeof(float));
    for (size_t i = 0; i < np; i++) {
        mv[i] = tern_rng_normal(1, 1, i);
        mv[np + i] = fabsf(tern_rng_normal(1, 2, i));
    }
    tern_adamw_write(&opt, 0, 0, np, mv);
    tern_adamw_write(&opt, 1, 0, np, mv + np);
    for (uint64_t s = 1; s <= 5; s++) CHECK(tern_ckpt_save(d, s, m, &opt, "{\"step\":1}", 2, NULL) == TERN_OK, "%s", tern_errmsg());
    char out[512];
    CHECK(run_cmd(out, sizeof out, "ls -A '%s/ckpt' | tr '\\n' ' '", d) == 0 && !strcmp(out, "latest step-000004 step-000005 "),
          "folder holds '%s'", out);
    char *ck;
    CHECK(tern_ckpt_latest(d, &ck) == TERN_OK && strstr(ck, "step-000005"), "%s", tern_errmsg());
    tern_model_config cfg = *tern_model_cfg(m);
    tern_model *b;
    tern_model_init(&b, &cfg, NULL);
    tern_adamw o2;
    tern_adamw_init(&o2, NULL, 0, np);
    CHECK(tern_ckpt_load_model(ck, b, NULL) == TERN_OK && test_same_params(b, m), "model");
    float *mv2 = malloc(2 * np * sizeof(float));
    CHECK(tern_ckpt_load_optimizer(ck, b, &o2, NULL) == TERN_OK && tern_adamw_read(&o2, 0, 0, np, mv2) == TERN_OK &&
              tern_adamw_read(&o2, 1, 0, np, mv2 + np) == TERN_OK && !memcmp(mv, mv2, 2 * np * 4),
          "optimizer: %s", tern_errmsg());
    free(mv);
    free(mv2);
    free(ck);
    /* a `latest` that names something else is refused with the file's name */
    char *lp = tern_path_join(d, "ckpt/latest");
    tern_write_file_atomic(lp, "../../etc\n", 10);
    char want[600];
    snprintf(want, sizeof want, "%s: does not name a checkpoint folder (found \"../../etc\")", lp);
    CHECK(tern_ckpt_latest(d, &ck) == TERN_EFORMAT && !strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    tern_write_file_atomic(lp, "step-000009\n", 12);
    snprintf(want, sizeof want, "%s: names step-000009, which does not exist", lp);
    CHECK(tern_ckpt_latest(d, &ck) == TERN_ENOTFOUND && !strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    free(lp);
    tern_adamw_free(&opt);
    tern_adamw_free(&o2);
    tern_model_free(m);
    tern_model_free(b);
}

/* transformers' own save_pretrained folders of each family load with transformers' logits:
 * grouped-query attention, sharded weights, transformers 4's config layout, Llama 3's rope scaling
 * with a tied head, Qwen2's biases, Mistral without a window. */
static void test_hf_families_load_with_transformers_logits(void) {
    static const struct {
        const char *folder, *ref;
    } cases[] = {
        {"llama_tiny", "llama_tiny_ref"},     {"llama_tiny_sharded", "llama_tiny_ref"}, {"llama_tiny_tf4", "llama_tiny_ref"},
        {"llama3_tiny_tf4", "llama3_tiny_tf4_ref"}, {"qwen2_tiny", "qwen2_tiny_ref"},       {"mistral_tiny", "mistral_tiny_ref"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[256], ref[256];
        snprintf(dir, sizeof dir, "tests/fixtures/hf/%s", cases[i].folder);
        snprintf(ref, sizeof ref, "tests/fixtures/hf/%s.safetensors", cases[i].ref);
        tern_model *m = NULL;
        tern_safetensors *st = NULL;
        CHECK(tern_io_load_hf(dir, &m, NULL) == TERN_OK, "%s: %s", dir, tern_errmsg());
        CHECK(tern_st_open(&st, ref) == TERN_OK, "%s", tern_errmsg());
        if (!m || !st) {
            tern_model_free(m);
            tern_st_free(st);
            continue;
        }
        const tern_st_entry *ids = tern_st_find(st, "input_ids");
        size_t B = ids->shape[0], T = ids->shape[1], V = (size_t)tern_model_cfg(m)->vocab_size;
        float *want = malloc(B * T * V * sizeof(float)), *got = malloc(B * T * V * sizeof(float));
        size_t shape[3] = {B, T, V};
        CHECK(tern_st_read_f32(st, "logits_f64", want, 3, shape) == TERN_OK, "%s", tern_errmsg());
        CHECK(tern_model_reserve(m, B, T) == TERN_OK && tern_model_forward(m, tern_st_data(st, ids), NULL, B, T, NULL) == TERN_OK &&
                  tern_model_logits(m, got) == TERN_OK,
              "%s", tern_errmsg());
        double e = rel_l2(got, want, B * T * V);
        CHECK(e <= 1e-5, "%s: logits relative error %.3g against transformers", cases[i].folder, e);
        printf("  %s (%s): logits within %.3g of transformers'\n", cases[i].folder, tern_model_cfg(m)->arch, e);
        free(want);
        free(got);
        tern_st_free(st);
        tern_model_free(m);
    }
}

/* Writes tests/fixtures/hf/llama_tiny's config.json with one edit into dir/config.json and links
 * its weights beside it. edit: a JSON text of keys to replace or add (null removes). */
static void edited_llama(const char *dir, const char *edit) {
    char out[1024];
    run_cmd(out, sizeof out, "rm -rf '%s' && mkdir -p '%s' && cp tests/fixtures/hf/llama_tiny/model.safetensors '%s/'", dir, dir, dir);
    char *text;
    size_t n;
    tern_read_file("tests/fixtures/hf/llama_tiny/config.json", &text, &n);
    cJSON *j = cJSON_Parse(text), *e = cJSON_Parse(edit);
    free(text);
    for (cJSON *it = e ? e->child : NULL; it; it = it->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, it->string);
        if (!cJSON_IsNull(it)) cJSON_AddItemToObject(j, it->string, cJSON_Duplicate(it, 1));
    }
    char *s = cJSON_Print(j), *path = tern_path_join(dir, "config.json");
    tern_write_file_atomic(path, s, strlen(s));
    free(s);
    free(path);
    cJSON_Delete(j);
    cJSON_Delete(e);
}

/* What tern cannot compute exactly is refused by name before anything is allocated. */
static void test_hf_refusals(void) {
    const char *d = test_tmpdir("io_hf_refuse");
    static const struct {
        const char *edit, *want;
    } cases[] = {
        {"{\"model_type\": \"mixtral\"}", "config.json: model_type \"mixtral\" is not one tern trains (gpt2, llama, mistral, qwen2)"},
        {"{\"num_local_experts\": 8}", "config.json: a mixture of experts is not a model tern trains"},
        {"{\"num_key_value_heads\": 3}", "config.json: the key/value heads (3) must divide the heads (4)"},
        {"{\"hidden_act\": \"gelu\"}", "config.json: hidden_act \"gelu\" is not supported (tern's Llama uses SwiGLU with silu)"},
        {"{\"attention_bias\": true}", "config.json: attention_bias is set (biases on q, k, v and o); tern computes Qwen2's q, k, v "
                                         "biases but no o_proj bias"},
        {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 10000, \"factor\": 4}}",
         "config.json: rope scaling of type \"yarn\" is not supported (tern computes plain rotary embeddings and Llama 3's \"llama3\" "
         "scaling)"},
        {"{\"intermediate_size\": 48}", "model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' has shape [40, 32], expected "
                                          "[48, 32]"},
        {"{\"num_hidden_layers\": 3}", "missing tensor 'model.layers.2.self_attn.q_proj.weight' in its weight files"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/c%zu", d, i);
        edited_llama(dir, cases[i].edit);
        tern_model *m = NULL;
        tern_status st = tern_io_load_hf(dir, &m, NULL);
        CHECK(st != TERN_OK && !m && strstr(tern_errmsg(), cases[i].want), "%s: got '%s', want '...%s'", cases[i].edit, tern_errmsg(),
              cases[i].want);
        tern_model_free(m);
    }
    /* Mistral's sliding window: the model loads, and a sequence longer than the window is refused */
    tern_model *m = NULL;
    CHECK(tern_io_load_hf("tests/fixtures/hf/mistral_window", &m, NULL) == TERN_OK, "%s", tern_errmsg());
    if (m) {
        CHECK(tern_model_cfg(m)->sliding_window == 16, "window %d", tern_model_cfg(m)->sliding_window);
        CHECK(tern_model_reserve(m, 1, 16) == TERN_OK, "%s", tern_errmsg());
        CHECK(tern_model_reserve(m, 1, 17) == TERN_EINVAL && strstr(tern_errmsg(), "sliding attention window (16)"), "%s", tern_errmsg());
        /* exported, it is a Mistral folder again, window and all */
        const char *out = test_tmpdir("mistral_export");
        char dir[512], *text = NULL;
        size_t n;
        snprintf(dir, sizeof dir, "%s/hf", out);
        CHECK(tern_io_export_hf(m, NULL, NULL, 0, dir) == TERN_OK, "%s", tern_errmsg());
        char *cfgpath = tern_path_join(dir, "config.json");
        CHECK(tern_read_file(cfgpath, &text, &n) == TERN_OK, "%s", tern_errmsg());
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        CHECK(j && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model_type")), "mistral") &&
                  cJSON_GetNumberValue(cJSON_GetObjectItem(j, "sliding_window")) == 16,
              "%s", text ? text : "");
        cJSON_Delete(j);
        free(text);
        free(cfgpath);
        tern_model *back = NULL;
        CHECK(tern_io_load_hf(dir, &back, NULL) == TERN_OK && tern_model_cfg(back)->sliding_window == 16 && test_same_params(back, m), "%s",
              tern_errmsg());
        tern_model_free(back);
        tern_model_free(m);
    }
}

int main(void) {
    RUN(test_st_roundtrip);
    RUN(test_st_malformed);
    RUN(test_hf_roundtrip);
    RUN(test_hf_hub_layouts);
    RUN(test_kv_cache_matches_forward);
    RUN(test_ckpt_keep_and_latest);
    RUN(test_hf_families_load_with_transformers_logits);
    RUN(test_hf_refusals);
    return check_exit();
}
