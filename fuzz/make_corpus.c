/* Writes the seed corpora of the fuzz targets (fuzz/corpus/<format>/) with tern's own writers,
 * so that each target starts from valid files of its format and mutates from there. Not a
 * fuzz target and not part of libtern; run by fuzz/make_corpus.sh when a format changes.
 * Sealed seeds use the fixed key of fuzz_sealed.c, ledger seeds the fixed signing key of
 * fuzz_ledger.c, so that the targets can open and re-sign them. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include "tern.h"
#include "tern/data.h"
#include "tern/train.h"

static const char *root;

static void die(const char *what) {
    fprintf(stderr, "make_corpus: %s: %s\n", what, tern_errmsg());
    exit(1);
}

#define OK(x)                                                                                 \
    do {                                                                                      \
        if ((x) != TERN_OK) die(#x);                                                          \
    } while (0)

/* fuzz/corpus/<fmt>/<name>, with an optional leading mode byte */
static void put(const char *fmt, const char *name, int mode, const void *p, size_t n) {
    char dir[512], path[1024];
    snprintf(dir, sizeof dir, "%s/%s", root, fmt);
    OK(tern_mkdir_p(dir));
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (mode >= 0) fputc(mode, f);
    if (n && fwrite(p, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static void put_str(const char *fmt, const char *name, const char *s) { put(fmt, name, -1, s, strlen(s)); }

/* A fresh scratch folder under $TMPDIR (or /tmp) for one generator, named after it, into buf;
 * and its removal. The six X are mkdtemp's template, which it replaces. */
static void scratch_dir(char *buf, size_t cap, const char *what) {
    const char *t = getenv("TMPDIR");
    if ((size_t)snprintf(buf, cap, "%s/tern-corpus-%s-XXXXXX", t && *t ? t : "/tmp", what) >= cap) die("scratch path");
    if (!mkdtemp(buf)) die("mkdtemp");
}

static void remove_dir(const char *dir) {
    char cmd[640];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) die("rm");
}

static char *slurp(const char *path, size_t *n) {
    char *p;
    OK(tern_read_file(path, &p, n));
    return p;
}

/* ---- safetensors ---- */
static void safetensors(void) {
    float f[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    uint16_t h[4] = {0x3c00, 0xc000, 0x7bff, 0x0001};
    double d[2] = {1.5, -1e300};
    int64_t i64[2] = {-1, 1LL << 40};
    uint8_t u8[3] = {1, 2, 255};
    tern_st_writer *w;
    OK(tern_st_writer_init(&w));
    OK(tern_st_add_meta(w, "format", "pt"));
    size_t s23[2] = {2, 3}, s4[1] = {4}, s2[1] = {2}, s3[1] = {3}, s0[1] = {0};
    OK(tern_st_add(w, "wte.weight", TERN_DT_F32, 2, s23, f));
    OK(tern_st_add(w, "h.0.ln_1.bias", TERN_DT_F16, 1, s4, h));
    OK(tern_st_add(w, "bf", TERN_DT_BF16, 1, s4, h));
    OK(tern_st_add(w, "d", TERN_DT_F64, 1, s2, d));
    OK(tern_st_add(w, "i", TERN_DT_I64, 1, s2, i64));
    OK(tern_st_add(w, "u", TERN_DT_U8, 1, s3, u8));
    OK(tern_st_add(w, "empty", TERN_DT_I32, 1, s0, f));
    OK(tern_st_add(w, "scalar", TERN_DT_F32, 0, NULL, f));
    uint8_t *img;
    size_t n;
    OK(tern_st_serialize(w, &img, &n));
    put("safetensors", "dtypes.safetensors", -1, img, n);
    free(img);
    tern_st_writer_free(w);
    OK(tern_st_writer_init(&w));
    OK(tern_st_serialize(w, &img, &n));
    put("safetensors", "no_tensors.safetensors", -1, img, n);
    free(img);
    tern_st_writer_free(w);
}

/* ---- tokenizer: vocab.json NUL merges.txt ---- */
static void tokenizer(void) {
    size_t vn, mn;
    char *v = slurp("tests/fixtures/tok/train_small_vocab.json", &vn), *m = slurp("tests/fixtures/tok/train_small_merges.txt", &mn);
    char *p = malloc(vn + 1 + mn);
    memcpy(p, v, vn);
    p[vn] = 0;
    memcpy(p + vn + 1, m, mn);
    put("tokenizer", "train_small", -1, p, vn + 1 + mn);
    /* the same vocabulary without merges, and GPT-2's own spelling (no #version line, CRLF) */
    put("tokenizer", "no_merges", -1, p, vn + 1);
    char *q = malloc(vn + 1 + 2 * mn), *o = q;
    memcpy(o, v, vn + 1);
    o += vn + 1;
    const char *s = strchr(m, '\n') + 1;
    for (; *s; s++) {
        if (*s == '\n') *o++ = '\r';
        *o++ = *s;
    }
    put("tokenizer", "crlf_no_version", -1, q, (size_t)(o - q));
    free(q);
    free(p);
    free(v);
    free(m);
}

/* ---- config JSON ---- */
static void config(void) {
    tern_train_opts o;
    tern_train_opts_defaults(&o);
    char *j = tern_train_opts_to_json(&o);
    put_str("config", "defaults.json", j);
    free(j);
    put_str("config", "small.json",
            "{\"data\": \"data/shakespeare\", \"out\": \"runs/x\", \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 64, \"seq\": 64,"
            " \"steps\": 100, \"lr\": 0.003, \"schedule\": \"constant\", \"no_shuffle\": true, \"seed\": 7, \"resume\": false,"
            " \"min_lr\": null}\n");
    put_str("config", "strings.json", "{\"batch\": \"16\", \"lr\": \"1e-4\", \"no_shuffle\": \"1\", \"precision\": \"fp32\"}");
}

/* ---- a run folder's config.json NUL ckpt/latest ---- */
static void run_folder(void) {
    tern_train_opts o;
    tern_train_opts_defaults(&o);
    char *j = tern_train_opts_to_json(&o);
    size_t n = strlen(j);
    static const char latest[] = "step-000100\n";
    char *p = malloc(n + 1 + sizeof latest);
    memcpy(p, j, n);
    p[n] = 0;
    memcpy(p + n + 1, latest, sizeof latest - 1);
    put("run_folder", "defaults_latest", -1, p, n + sizeof latest);
    put("run_folder", "defaults_no_latest", -1, p, n);
    free(p);
    free(j);
    /* the shape of the checkpoint fuzz_run_folder.c keeps: this one opens */
    static const char tiny[] = "{\"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4, \"n_ctx\": 4, \"vocab_size\": 8, \"seq\": 4}\0step-000100\n";
    put("run_folder", "tiny_latest", -1, tiny, sizeof tiny - 1);
}

/* ---- checkpoint weights and AdamW moments of fuzz_checkpoint.c's model (byte 0: weights, 1:
 * moments), as tern_ckpt_save writes them, and the weights as a Hugging Face file ---- */
static void checkpoint(void) {
    const tern_model_config tiny = tern_model_config_gpt2(1, 1, 4, 4, 8);
    tern_model *m;
    OK(tern_model_init(&m, &tiny, NULL));
    size_t np = tern_model_num_params(m);
    float *p = malloc(np * sizeof(float)), *mm = malloc(np * sizeof(float)), *vv = malloc(np * sizeof(float));
    for (size_t i = 0; i < np; i++) p[i] = (float)i / 64, mm[i] = -(float)i, vv[i] = (float)i * i;
    OK(tern_model_write(m, TERN_PARAMS, 0, np, p));
    tern_adamw opt;
    OK(tern_adamw_init(&opt, NULL, 0, np));
    OK(tern_adamw_write(&opt, 0, 0, np, mm));
    OK(tern_adamw_write(&opt, 1, 0, np, vv));
    char dir[512], path[600];
    scratch_dir(dir, sizeof dir, "ckpt");
    OK(tern_ckpt_save(dir, 100, m, &opt, "{\"step\": 100}", 1, NULL));
    size_t n;
    snprintf(path, sizeof path, "%s/ckpt/step-000100/model.safetensors", dir);
    char *b = slurp(path, &n);
    put("checkpoint", "model", 0, b, n);
    free(b);
    snprintf(path, sizeof path, "%s/ckpt/step-000100/optimizer.safetensors", dir);
    b = slurp(path, &n);
    put("checkpoint", "optimizer", 1, b, n);
    free(b);
    tern_st_writer *w;
    OK(tern_st_writer_init(&w));
    OK(tern_params_to_st(m, "transformer.", w));
    const tern_tensor *wte = tern_model_find(m, "wte.weight");
    OK(tern_st_add(w, "lm_head.weight", TERN_DT_F32, 2, wte->shape, p + wte->offset));
    uint8_t *img;
    OK(tern_st_serialize(w, &img, &n));
    put("checkpoint", "hf_tied_head", 0, img, n);
    free(img);
    tern_st_writer_free(w);
    tern_adamw_free(&opt);
    tern_model_free(m);
    free(p), free(mm), free(vv);
    remove_dir(dir);
}

/* ---- Hugging Face config.json (the fields transformers writes for GPT-2 small) ---- */
static void hf_config(void) {
    put_str("hf_config", "gpt2.json",
            "{\n  \"activation_function\": \"gelu_new\",\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"attn_pdrop\": 0.1,\n"
            "  \"bos_token_id\": 50256,\n  \"embd_pdrop\": 0.1,\n  \"eos_token_id\": 50256,\n  \"initializer_range\": 0.02,\n"
            "  \"layer_norm_epsilon\": 1e-05,\n  \"model_type\": \"gpt2\",\n  \"n_ctx\": 1024,\n  \"n_embd\": 768,\n  \"n_head\": 12,\n"
            "  \"n_inner\": null,\n  \"n_layer\": 12,\n  \"n_positions\": 1024,\n  \"resid_pdrop\": 0.1,\n  \"vocab_size\": 50257\n}\n");
    put_str("hf_config", "tiny.json",
            "{\"n_layer\": 1, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": 16, \"vocab_size\": 400, \"n_inner\": 32,"
            " \"activation_function\": \"gelu_pytorch_tanh\"}");
}

/* ---- GGUF ---- */
static void gguf(void) {
    tern_gguf_writer *w;
    OK(tern_gguf_writer_init(&w));
    OK(tern_gguf_add_str(w, "general.architecture", "gpt2"));
    OK(tern_gguf_add_u32(w, "gpt2.block_count", 1));
    OK(tern_gguf_add_f32(w, "gpt2.attention.layer_norm_epsilon", 1e-5f));
    const char *toks[3] = {"a", "b", "ab"};
    size_t lens[3] = {1, 1, 2};
    OK(tern_gguf_add_str_arr(w, "tokenizer.ggml.tokens", toks, lens, 3));
    int32_t ids[4] = {0, 1, -1, 7};
    OK(tern_gguf_add_i32_arr(w, "tokenizer.ggml.token_type", ids, 4));
    OK(tern_gguf_set_alignment(w, 64));
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)i / 8 - 4;
    uint16_t hx[64];
    for (int i = 0; i < 64; i++) hx[i] = tern_f32_to_f16(x[i]);
    uint8_t q[2 * 34];
    tern_q8_0_quantize(q, x, 64);
    uint64_t ne2[2] = {32, 2}, ne1[1] = {8};
    OK(tern_gguf_add_tensor(w, "f32", TERN_GGML_F32, 2, ne2, x));
    OK(tern_gguf_add_tensor(w, "f16", TERN_GGML_F16, 2, ne2, hx));
    OK(tern_gguf_add_tensor(w, "q8", TERN_GGML_Q8_0, 2, ne2, q));
    OK(tern_gguf_add_tensor(w, "v", TERN_GGML_F32, 1, ne1, x));
    uint8_t *img;
    size_t n;
    OK(tern_gguf_serialize(w, &img, &n));
    put("gguf", "types.gguf", -1, img, n);
    free(img);
    tern_gguf_writer_free(w);
    /* a tiny GPT-2 with the 400-token test tokenizer, as `tern export --type f32` writes it */
    tern_model_config cfg = tern_model_config_gpt2(1, 2, 8, 4, 400);
    tern_model *m;
    OK(tern_model_init(&m, &cfg, NULL));
    size_t np = tern_model_config_num_params(&cfg);
    float *p = malloc(np * sizeof(float));
    for (size_t i = 0; i < np; i++) p[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    OK(tern_model_write(m, TERN_PARAMS, 0, np, p));
    free(p);
    char tokdir[512], path[600];
    scratch_dir(tokdir, sizeof tokdir, "tok");
    size_t vn, mn;
    char *v = slurp("tests/fixtures/tok/train_small_vocab.json", &vn), *mg = slurp("tests/fixtures/tok/train_small_merges.txt", &mn);
    snprintf(path, sizeof path, "%s/vocab.json", tokdir);
    OK(tern_write_file_atomic(path, v, vn));
    snprintf(path, sizeof path, "%s/merges.txt", tokdir);
    OK(tern_write_file_atomic(path, mg, mn));
    snprintf(path, sizeof path, "%s/m.gguf", tokdir);
    OK(tern_gguf_export(m, tokdir, TERN_GGML_F32, "tiny", path));
    char *g = slurp(path, &n);
    put("gguf", "gpt2_tiny_f32.gguf", -1, g, n);
    free(g);
    OK(tern_gguf_export(m, tokdir, TERN_GGML_Q8_0, "tiny", path));
    g = slurp(path, &n);
    put("gguf", "gpt2_tiny_q8.gguf", -1, g, n);
    free(g);
    free(v);
    free(mg);
    tern_model_free(m);
    remove_dir(tokdir);
}

/* ---- sealed files (the key of fuzz_sealed.c) ---- */
static void sealed(void) {
    uint8_t kb[TERN_KEY_BYTES];
    for (int i = 0; i < TERN_KEY_BYTES; i++) kb[i] = (uint8_t)(i * 7 + 1);
    tern_key *k;
    OK(tern_key_from_bytes(&k, kb));
    static const char text[] = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n";
    struct {
        const char *name;
        size_t n, chunk;
    } cases[] = {{"empty", 0, 64}, {"one_chunk", 40, 64}, {"exact_chunk", 64, 64}, {"three_chunks", sizeof text - 1, 64},
                 {"default_chunk", sizeof text - 1, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *img;
        size_t n;
        OK(tern_seal_buffer(&img, &n, k, "fuzz identity", text, cases[i].n, cases[i].chunk));
        char name[64];
        snprintf(name, sizeof name, "%s.raw", cases[i].name);
        put("sealed", name, 0, img, n);
        snprintf(name, sizeof name, "%s.remac", cases[i].name);
        put("sealed", name, 1, img, n);
        free(img);
    }
    /* mode 2: chunk size byte, edit, position (3 bytes), value, read offset (2 bytes), plaintext */
    for (int edit = 0; edit < 6; edit++) {
        uint8_t buf[8 + sizeof text];
        buf[0] = 3;
        buf[1] = (uint8_t)edit;
        buf[2] = 100;
        buf[3] = buf[4] = 0;
        buf[5] = 0x41;
        buf[6] = 5;
        buf[7] = 0;
        memcpy(buf + 8, text, sizeof text - 1);
        char name[32];
        snprintf(name, sizeof name, "tamper_%d", edit);
        put("sealed", name, 2, buf, 8 + sizeof text - 1);
    }
    tern_key_free(k);
}

/* ---- run ledgers (the signing key of fuzz_ledger.c) ---- */
static void ledger_one(const char *dir, const tern_sign_key *sk, const char *name, int flags) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/run' && mkdir -p '%s/run/ckpt/step-000010' && echo weights > '%s/run/ckpt/step-000010/model.safetensors'"
             " && echo state > '%s/run/ckpt/step-000010/state.json'", dir, dir, dir, dir);
    if (system(cmd) != 0) die("setup");
    char run[512];
    snprintf(run, sizeof run, "%s/run", dir);
    uint8_t h[TERN_HASH_BYTES];
    tern_hash(h, "config", 6);
    tern_ledger_start info = {.run_id = "20250101-fuzz", .config_hash = h, .manifest_hash = h};
    tern_ledger *l;
    OK(tern_ledger_create(&l, run, sk, &info));
    const char *files[2] = {"model.safetensors", "state.json"};
    OK(tern_ledger_checkpoint(l, 10, "ckpt/step-000010", files, 2, NULL));
    OK(tern_ledger_resume(l, 10, "ckpt/step-000010", files, 2, NULL));
    OK(tern_ledger_append(l, "note", NULL));
    OK(tern_ledger_end(l, "completed", NULL));
    tern_ledger_close(l);
    char path[600];
    snprintf(path, sizeof path, "%s/ledger.jsonl", run);
    size_t n;
    char *t = slurp(path, &n);
    put("ledger", name, flags, t, n);
    /* and its first line alone */
    char *nl = memchr(t, '\n', n);
    char one[64];
    snprintf(one, sizeof one, "%s_start", name);
    put("ledger", one, flags, t, (size_t)(nl - t) + 1);
    free(t);
}

static void ledger(void) {
    char dir[512];
    scratch_dir(dir, sizeof dir, "ledger");
    if (sodium_init() < 0) die("sodium");
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], seed[crypto_sign_SEEDBYTES];
    for (size_t i = 0; i < sizeof seed; i++) seed[i] = (unsigned char)(0xA5 ^ i);
    crypto_sign_seed_keypair(pk, sk, seed);
    char kp[600];
    snprintf(kp, sizeof kp, "%s/sign.key", dir);
    FILE *f = fopen(kp, "wb");
    if (!f || fwrite(sk, 1, sizeof sk, f) != sizeof sk) die("key file");
    fclose(f);
    chmod(kp, 0600);
    tern_sign_key *k;
    OK(tern_sign_key_from_file(&k, kp));
    ledger_one(dir, NULL, "unsigned", 1);
    ledger_one(dir, k, "signed", 1 | 2 | 4);
    ledger_one(dir, k, "signed_raw", 0);
    tern_sign_key_free(k);
    remove_dir(dir);
}

/* ---- policy, site and planner files: the test fixtures, and a few variants ---- */
static void copy(const char *fmt, const char *name, const char *src) {
    size_t n;
    char *p = slurp(src, &n);
    put(fmt, name, -1, p, n);
    free(p);
}

static void ledger_json(void) {
    copy("policy", "policy.json", "tests/fixtures/policy/policy.json");
    put_str("policy", "all_rules.json",
            "{\"policy\": \"p\", \"country_sets\": {\"eu\": [\"DE\", \"FR\", \"NL\"]}, \"rules\": ["
            "{\"id\": \"a\", \"type\": \"data_residency\", \"data_classes\": [\"restricted\", \"internal\"], \"countries\": [\"@eu\", \"CH\"]},"
            "{\"id\": \"b\", \"type\": \"hardware_class\", \"countries\": [\"*\"], \"allowed_classes\": [\"not 3A090\"]},"
            "{\"id\": \"c\", \"type\": \"sealing\", \"data_classes\": [\"*\"], \"except_countries\": [\"@eu\"]}]}");
    const char *sites[] = {"site_cn_h100.json", "site_cn_h20.json", "site_home.json", "site_sg.json"};
    for (size_t i = 0; i < 4; i++) {
        char src[128];
        snprintf(src, sizeof src, "tests/fixtures/policy/%s", sites[i]);
        copy("site", sites[i], src);
    }
    put_str("site", "custom.json",
            "{\"site\": \"lab\", \"operator\": \"Lab\", \"country\": \"DE\", \"hardware\": ["
            "{\"accelerator\": \"custom\", \"name\": \"X1\", \"count\": 4, \"dense_tops\": {\"bf16\": 400, \"int8\": 800},"
            " \"die_area_mm2\": 600, \"datacenter\": true},"
            "{\"accelerator\": \"custom\", \"tpp\": 4000}, {\"accelerator\": \"cpu\", \"count\": 2}],"
            " \"price_per_device_hour\": 2.5, \"bandwidth_to_home_gbps\": 10, \"utilisation\": 0.4, \"precision\": \"bf16\","
            " \"tokens_per_s\": 1200, \"at_home\": false}");
    copy("plan_config", "plan_config.json", "tests/fixtures/policy/plan_config.json");
    put_str("plan_config", "small.json", "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 64, \"seq\": 64, \"vocab_size\": 400, \"batch\": 4, \"lr\": 1e-3}");
}

/* ---- token shards (flag byte: 1 fix the checksum, 2 full check) and a manifest ---- */
static void data(void) {
    char dir[512], path[600];
    scratch_dir(dir, sizeof dir, "data");
    struct {
        const char *name;
        size_t vocab, n;
    } cases[] = {{"v400", 400, 40}, {"v70000", 70000, 20}, {"empty", 400, 0}};
    tern_manifest m = {0};
    tern_manifest_shard sh[3];
    for (size_t c = 0; c < 3; c++) {
        snprintf(path, sizeof path, "%s/%s.bin", dir, cases[c].name);
        tern_shard_writer *w;
        OK(tern_shard_writer_open(&w, path, cases[c].vocab, NULL, NULL));
        int32_t ids[40];
        for (size_t i = 0; i < cases[c].n; i++) ids[i] = (int32_t)((i * 7919) % cases[c].vocab);
        OK(tern_shard_writer_add(w, ids, cases[c].n));
        uint64_t nt;
        OK(tern_shard_writer_close(w, &nt, sh[c].checksum));
        size_t n;
        char *b = slurp(path, &n);
        char name[64];
        snprintf(name, sizeof name, "%s_checked", cases[c].name);
        put("shard", name, 2, b, n);
        snprintf(name, sizeof name, "%s_fixed", cases[c].name);
        put("shard", name, 3, b, n);
        snprintf(name, sizeof name, "%s_header", cases[c].name);
        put("shard", name, 0, b, n);
        free(b);
        sh[c].file = (char *)(c == 1 ? "val_000000.bin" : c == 0 ? "train_000000.bin" : "train_000001.bin");
        sh[c].split = c == 1 ? TERN_SPLIT_VAL : TERN_SPLIT_TRAIN;
        sh[c].n_tokens = nt;
    }
    tern_hash(m.tokenizer_hash, "tok", 3);
    m.vocab_size = 400;
    m.eot = 399;
    m.bytes_per_token = 2;
    m.docs[0] = 3;
    m.docs[1] = 1;
    m.val_fraction = 0.1;
    m.seed = 1337;
    m.n_shards = 3;
    m.shards = sh;
    OK(tern_manifest_write(&m, dir, NULL));
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    copy("manifest", "manifest.json", path);
    /* a folder as fuzz_dataset.c takes it: flags, manifest length, manifest, train_000000.bin */
    m.n_shards = 1;
    size_t mn, sn;
    char *mt, *st;
    OK(tern_manifest_write(&m, dir, NULL));
    mt = slurp(path, &mn);
    snprintf(path, sizeof path, "%s/v400.bin", dir);
    st = slurp(path, &sn);
    for (int flags = 0; flags < 32; flags += 9) {
        uint8_t *img = malloc(2 + mn + sn);
        img[0] = (uint8_t)(mn & 0xff);
        img[1] = (uint8_t)(mn >> 8);
        memcpy(img + 2, mt, mn);
        memcpy(img + 2 + mn, st, sn);
        char name[32];
        snprintf(name, sizeof name, "folder_%d", flags);
        put("dataset", name, flags, img, 2 + mn + sn);
        free(img);
    }
    free(mt);
    free(st);
    m.n_shards = 3;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    m.n_shards = 0;
    OK(tern_manifest_write(&m, dir, NULL));
    copy("manifest", "no_shards.json", path);
    /* with what prepare records of how it prepared */
    m.n_shards = 3;
    tern_manifest_source src[2] = {{.path = "corpus/web", .format = "jsonl", .files = 12, .documents = 3, .bytes = 900, .tokens = 240},
                                   {.path = "-", .format = "text", .files = 1, .documents = 1, .bytes = 30, .tokens = 9}};
    src[0].skipped[TERN_SKIP_DUPLICATE] = 2;
    src[0].skipped[TERN_SKIP_INVALID_JSON] = 1;
    m.val_split = TERN_VAL_SPLIT_DOCUMENTS;
    m.has_prepare = 1;
    m.text_key = "text";
    m.doc_separator = "<|endoftext|>";
    m.min_bytes = 10;
    m.dedup = 1;
    m.skipped[TERN_SKIP_DUPLICATE] = 2;
    m.skipped[TERN_SKIP_INVALID_JSON] = 1;
    m.n_sources = 2;
    m.sources = src;
    OK(tern_manifest_write(&m, dir, NULL));
    copy("manifest", "prepared.json", path);
    remove_dir(dir);
}

/* ---- the inputs of prepare: JSON Lines lines, files (plain, zstd, gzip), mixtures as text ---- */
static void zstd_frames(const char *name, const char *text, int frames) {
    size_t n = strlen(text), at = 0, cap = ZSTD_compressBound(n) * (size_t)frames + 64, k = 0;
    uint8_t *img = malloc(cap);
    for (int f = 0; f < frames; f++) {
        size_t len = f == frames - 1 ? n - at : n / (size_t)frames;
        size_t z = ZSTD_compress(img + k, cap - k, text + at, len, 3);
        if (ZSTD_isError(z)) die("zstd");
        k += z;
        at += len;
    }
    put("text_stream", name, -1, img, k);
    free(img);
}

static void gzip_members(const char *name, const char *text, int members) {
    size_t n = strlen(text), at = 0, k = 0, cap = n + 64 * (size_t)members + 1024;
    uint8_t *img = malloc(cap);
    for (int m = 0; m < members; m++) {
        size_t len = m == members - 1 ? n - at : n / (size_t)members;
        z_stream z = {0};
        if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) die("deflateInit2");
        z.next_in = (unsigned char *)text + at;
        z.avail_in = (uInt)len;
        z.next_out = img + k;
        z.avail_out = (uInt)(cap - k);
        if (deflate(&z, Z_FINISH) != Z_STREAM_END) die("deflate");
        k = cap - z.avail_out;
        deflateEnd(&z);
        at += len;
    }
    put("text_stream", name, -1, img, k);
    free(img);
}

static void inputs(void) {
    put_str("jsonl", "plain", "{\"text\": \"Once upon a time, a fox.\"}");
    put_str("jsonl", "escapes", "{\"id\": 7, \"text\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}");
    put_str("jsonl", "members", "{\"meta\": {\"text\": [1, -2.5e-3, true, false, null]}, \"text\": \"raw UTF-8: \xc3\xa9 \xe6\x97\xa5\"} \r");
    put_str("jsonl", "repeated", "{\"text\": \"first\", \"text\": \"last wins\"}");
    put_str("jsonl", "not_string", "{\"text\": 42}");
    put_str("jsonl", "missing", "{\"body\": \"no text\"}");
    put_str("jsonl", "array", "[\"text\", {\"text\": \"x\"}]");
    put_str("jsonl", "surrogate", "{\"text\": \"\\ud800 alone\"}");
    static const char lines[] = "{\"text\": \"one\"}\n{\"text\": \"two \\u00e9\"}\n\n{\"text\": \"three\"}\n";
    put_str("text_stream", "plain.jsonl", lines);
    put_str("text_stream", "plain.txt", "It was the best of times, it was the worst of times.\n<|endoftext|>\nÜnïcödé.\n");
    put_str("text_stream", "empty", "");
    zstd_frames("lines.jsonl.zst", lines, 2);
    zstd_frames("one_frame.zst", "A document in one zstd frame.\n", 1);
    gzip_members("lines.jsonl.gz", lines, 2);
    /* a skippable frame (magic 0x184D2A50, 4 bytes of content) before a zstd frame */
    size_t n = strlen(lines), cap = ZSTD_compressBound(n) + 12;
    uint8_t *img = malloc(cap);
    memcpy(img, "\x50\x2a\x4d\x18\x04\x00\x00\x00skip", 12);
    size_t z = ZSTD_compress(img + 12, cap - 12, lines, n, 1);
    if (ZSTD_isError(z)) die("zstd");
    put("text_stream", "skippable.zst", -1, img, 12 + z);
    free(img);
    put_str("mixture_spec", "two", "data/web:0.7,data/books:0.3");
    put_str("mixture_spec", "defaults", "web,books,code:2");
    put_str("mixture_spec", "colon", "a:b:2,c:1e-3");
}

/* ---- /proc/cpuinfo: an x86 and an Arm sample ---- */
static void cpuinfo(void) {
    put_str("cpuinfo", "x86.txt",
            "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
            "model name\t: Intel(R) Xeon(R) Platinum 8480+\nstepping\t: 8\ncpu MHz\t\t: 2000.000\nphysical id\t: 0\n"
            "siblings\t: 2\ncore id\t\t: 0\ncpu cores\t: 1\nflags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512_bf16 avx512_vnni"
            " avx_vnni amx_tile amx_bf16 amx_int8\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
            "model name\t: Intel(R) Xeon(R) Platinum 8480+\nphysical id\t: 0\nsiblings\t: 2\ncore id\t\t: 0\ncpu cores\t: 1\n"
            "flags\t\t: fpu sse sse2 avx fma avx2 avx512f\n\n");
    put_str("cpuinfo", "amd.txt",
            "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n"
            "cpu MHz\t\t: 2445.422\nphysical id\t: 0\nsiblings\t: 2\ncore id\t\t: 0\ncpu cores\t: 2\nflags\t\t: fpu sse sse2 fma avx avx2\n\n");
    put_str("cpuinfo", "arm.txt",
            "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp"
            " cpuid asimdrdm lrcpc dcpop asimddp sve\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\n"
            "CPU part\t: 0xd40\nCPU revision\t: 1\n\n");
}

static int n_only;
static char **only;
/* With format names after the folder, only those corpora are rewritten. */
static int want(const char *fmt) {
    if (!n_only) return 1;
    for (int i = 0; i < n_only; i++)
        if (!strcmp(only[i], fmt)) return 1;
    return 0;
}

int main(int argc, char **argv) {
    root = argc > 1 ? argv[1] : "fuzz/corpus";
    n_only = argc > 2 ? argc - 2 : 0;
    only = argv + 2;
    if (want("safetensors")) safetensors();
    if (want("tokenizer")) tokenizer();
    if (want("config")) config();
    if (want("run_folder")) run_folder();
    if (want("hf_config")) hf_config();
    if (want("checkpoint")) checkpoint();
    if (want("gguf")) gguf();
    if (want("sealed")) sealed();
    if (want("ledger")) ledger();
    if (want("policy")) ledger_json(); /* policy, site and plan_config */
    if (want("data")) data();           /* shard, manifest and dataset */
    if (want("cpuinfo")) cpuinfo();
    if (want("inputs")) inputs();       /* jsonl, text_stream and mixture_spec */
    printf("seed corpora written under %s\n", root);
    return 0;
}
