/* Tests of io/gguf: f16 conversion over every half value, q8_0 blocks by hand, the writer against
 * a file laid out by hand here, malformed files with exact messages (every truncation and random
 * byte changes included), GPT-2 export of a run read back (metadata, tokenizer, every tensor:
 * f32 exact, f16 and q8_0 within the bounds their formats imply), f32 GGUF giving the run's logits
 * bit for bit through tern_io_open_model, and the loader's refusals. The name table, the half
 * decoder and the byte layout here are written independently of src/io/gguf*.c. */
#include "lib.h"
#include "tern.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKDIR "tests/fixtures/gguf/tok" /* GPT-2's tokenizer cut to 200 merges: 457 tokens */
#define V_FIX 457
#define EOT_FIX 456

static tern_model *random_model(int L, int NH, int C, int P, int V, uint64_t seed) {
    tern_model_config cfg = tern_model_config_gpt2(L, NH, C, P, V);
    tern_model *m;
    if (tern_model_init(&m, &cfg, NULL) != TERN_OK) {
        printf("%s\n", tern_errmsg());
        exit(2);
    }
    tern_model_init_weights(m, seed);
    float *p = test_model_copy(m, TERN_PARAMS); /* non-trivial LayerNorms and biases */
    for (size_t i = 0; i < tern_model_num_params(m); i++) p[i] += 0.01f * tern_rng_normal(seed, 99, i);
    test_model_set(m, TERN_PARAMS, p);
    free(p);
    return m;
}

/* A run folder as tern train leaves it: config.json, ckpt/step-000001, tokenizer/. */
static void make_run(const char *dir, tern_model *m) {
    const tern_model_config *c = tern_model_cfg(m);
    char cfg[256], path[600], out[256];
    snprintf(cfg, sizeof cfg, "{\"n_layer\": %d, \"n_head\": %d, \"n_embd\": %d, \"n_ctx\": %d, \"vocab_size\": %d}", c->n_layer,
             c->n_head, c->n_embd, c->n_ctx, c->vocab_size);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(tern_write_file_atomic(path, cfg, strlen(cfg)) == TERN_OK, "%s", tern_errmsg());
    tern_adamw opt;
    tern_adamw_init(&opt, NULL, 0, tern_model_num_params(m));
    CHECK(tern_ckpt_save(dir, 1, m, &opt, "{\"step\":1}", 1, NULL) == TERN_OK, "%s", tern_errmsg());
    tern_adamw_free(&opt);
    CHECK(run_cmd(out, sizeof out, "cp -r %s '%s/tokenizer'", TOKDIR, dir) == 0, "%s", out);
}

/* ---- an independent half decoder and the llama.cpp names ---- */

static float half(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(1024 + m), e - 25);
    return (h & 0x8000) ? -v : v;
}

static void llama_name(const char *hf, char *out, int *transpose) {
    static const char *const g[][2] = {{"wte.weight", "token_embd.weight"}, {"wpe.weight", "position_embd.weight"},
                                       {"ln_f.weight", "output_norm.weight"}, {"ln_f.bias", "output_norm.bias"}};
    static const char *const b[][2] = {{"ln_1", "attn_norm"}, {"attn.c_attn", "attn_qkv"}, {"attn.c_proj", "attn_output"},
                                       {"ln_2", "ffn_norm"},  {"mlp.c_fc", "ffn_up"},      {"mlp.c_proj", "ffn_down"}};
    *transpose = 0;
    for (int i = 0; i < 4; i++)
        if (!strcmp(hf, g[i][0])) {
            strcpy(out, g[i][1]);
            return;
        }
    int l, k;
    char mod[32];
    sscanf(hf, "h.%d.%n", &l, &k);
    const char *kind = strrchr(hf, '.') + 1;
    snprintf(mod, sizeof mod, "%.*s", (int)(kind - 1 - (hf + k)), hf + k);
    for (int i = 0; i < 6; i++)
        if (!strcmp(mod, b[i][0])) {
            sprintf(out, "blk.%d.%s.%s", l, b[i][1], kind);
            *transpose = !strcmp(kind, "weight") && strncmp(mod, "ln_", 3);
        }
}

static int same_str(tern_gguf_str s, const char *z) { return s.n == strlen(z) && !memcmp(s.p, z, s.n); }

/* ---- conversions ---- */

static void test_f16_every_value(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = tern_f16_to_f32((uint16_t)h), want = half((uint16_t)h);
        if (isnan(want)) {
            bad += !isnan(f) || !isnan(tern_f16_to_f32(tern_f32_to_f16(f)));
            continue;
        }
        bad += memcmp(&f, &want, 4) != 0 || tern_f32_to_f16(f) != h;
        /* the midpoint to the next half up (in magnitude) rounds to the even one of the two */
        if ((h & 0x7fff) < 0x7bff) {
            float up = half((uint16_t)(h + 1)), mid = (f + up) / 2; /* exact in float */
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            bad += tern_f32_to_f16(mid) != even;
            bad += tern_f32_to_f16(nextafterf(mid, 0)) != h || tern_f32_to_f16(nextafterf(mid, up * 2)) != (uint16_t)(h + 1);
        }
    }
    CHECK(bad == 0, "%d half values convert wrongly", bad);
    CHECK(tern_f32_to_f16(65519.99f) == 0x7bff && tern_f32_to_f16(65520.0f) == 0x7c00 && tern_f32_to_f16(-1e10f) == 0xfc00,
          "overflow to infinity at 65520");
    CHECK(tern_f32_to_f16(ldexpf(1, -25)) == 0 && tern_f32_to_f16(ldexpf(1.0001f, -25)) == 1 && tern_f32_to_f16(1e-30f) == 0,
          "underflow: 2^-25 ties to zero, just above it rounds to the smallest subnormal");
}

static void test_q8_0_block(void) {
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = 0.5f * (float)(j - 16); /* absmax 8 at j = 0 */
    uint8_t q[34];
    tern_q8_0_quantize(q, x, 32);
    uint16_t d = (uint16_t)(q[0] | q[1] << 8);
    /* d = 8/127 = 0.0629921..., whose nearest half is 0x2c08 (0.06298828125) */
    CHECK(d == 0x2c08, "d = 0x%04x", d);
    /* q = roundf(x * 127/8): 0 at j=16, 7.9375 -> 8 at j=17, 119.0625 -> 119 at j=31, -127 at j=0,
     * -15.875*7.5 = -119.0625 -> -119 at j=1 */
    CHECK((int8_t)q[2 + 0] == -127 && (int8_t)q[2 + 1] == -119 && q[2 + 16] == 0 && q[2 + 17] == 8 && q[2 + 31] == 119, "quants");
    memset(x, 0, sizeof x);
    tern_q8_0_quantize(q, x, 32);
    int zero = 1;
    for (int j = 0; j < 34; j++) zero &= q[j] == 0;
    CHECK(zero, "an all-zero block quantises to d = 0 and q = 0");
}

/* ---- a GGUF file laid out by hand ---- */

typedef struct {
    uint8_t b[2048];
    size_t n;
} buf;
static void put(buf *b, const void *p, size_t n) {
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void u32(buf *b, uint32_t v) {
    for (int i = 0; i < 4; i++) b->b[b->n++] = (uint8_t)(v >> 8 * i);
}
static void u64(buf *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b->b[b->n++] = (uint8_t)(v >> 8 * i);
}
static void str(buf *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void set64(buf *b, size_t at, uint64_t v) {
    for (int i = 0; i < 8; i++) b->b[at + i] = (uint8_t)(v >> 8 * i);
}
static void set32(buf *b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; i++) b->b[at + i] = (uint8_t)(v >> 8 * i);
}

typedef struct {
    size_t ver, nt, nkv, k0len, k0type, k1name, k2elem, k2count, k3count, k3s1len, kalign_type, kalign_val;
    size_t t0namelen, t0name, t0ndims, t0ne0, t0ne1, t0type, t0off, t1name, t1ne0, t1type, t1off, header_end, data;
} layout;

static const float W[6] = {1, -2, 3.5f, 0.25f, -0.125f, 1e-3f};
static uint8_t Q[68]; /* two q8_0 blocks: d = 0.25 (0x3400) and 2^-24 (0x0001), q = j - 16 and 16 - j */

static void fill_q(void) {
    Q[0] = 0x00, Q[1] = 0x34, Q[34] = 0x01, Q[35] = 0x00;
    for (int j = 0; j < 32; j++) {
        Q[2 + j] = (uint8_t)(int8_t)(j - 16);
        Q[36 + j] = (uint8_t)(int8_t)(16 - j);
    }
}

/* Header, 5 (or 6) keys, tensors w (f32 {3,2}) and q (q8_0 {64}), data aligned to `align`. */
static void build(buf *b, layout *L, uint32_t align) {
    memset(b, 0, sizeof *b);
    fill_q();
    put(b, "GGUF", 4);
    L->ver = b->n, u32(b, 3);
    L->nt = b->n, u64(b, 2);
    L->nkv = b->n, u64(b, align == 32 ? 5 : 6);
    L->k0len = b->n, str(b, "general.architecture");
    L->k0type = b->n, u32(b, 8), str(b, "gpt2");
    L->k1name = b->n + 8, str(b, "a.u32"), u32(b, 4), u32(b, 7);
    str(b, "a.arr"), u32(b, 9);
    L->k2elem = b->n, u32(b, 5);
    L->k2count = b->n, u64(b, 3), u32(b, 1), u32(b, (uint32_t)-2), u32(b, 3);
    str(b, "a.strs"), u32(b, 9), u32(b, 8);
    L->k3count = b->n, u64(b, 2), str(b, "x");
    L->k3s1len = b->n, str(b, "yz");
    str(b, "a.f32"), u32(b, 6), u32(b, 0x3f000000); /* 0.5f */
    if (align != 32) {
        str(b, "general.alignment");
        L->kalign_type = b->n, u32(b, 4);
        L->kalign_val = b->n, u32(b, align);
    }
    L->t0namelen = b->n, str(b, "w");
    L->t0name = L->t0namelen + 8;
    L->t0ndims = b->n, u32(b, 2);
    L->t0ne0 = b->n, u64(b, 3);
    L->t0ne1 = b->n, u64(b, 2);
    L->t0type = b->n, u32(b, 0);
    L->t0off = b->n, u64(b, 0);
    L->t1name = b->n + 8, str(b, "q"), u32(b, 1);
    L->t1ne0 = b->n, u64(b, 64);
    L->t1type = b->n, u32(b, 8);
    L->t1off = b->n, u64(b, align);
    L->header_end = b->n;
    while (b->n % align) b->b[b->n++] = 0;
    L->data = b->n;
    put(b, W, sizeof W);
    while (b->n % align) b->b[b->n++] = 0;
    put(b, Q, sizeof Q);
    while (b->n % align) b->b[b->n++] = 0;
}

/* The same file through tern's writer must come out byte for byte. */
static void test_writer_matches_layout(void) {
    for (uint32_t align = 32; align <= 64; align += 32) {
        buf b;
        layout L;
        build(&b, &L, align);
        tern_gguf_writer *w;
        CHECK(tern_gguf_writer_init(&w) == TERN_OK, "init");
        int32_t arr[3] = {1, -2, 3};
        const char *strs[2] = {"x", "yz"};
        size_t lens[2] = {1, 2};
        uint64_t ne0[2] = {3, 2}, ne1[1] = {64};
        tern_gguf_add_str(w, "general.architecture", "gpt2");
        tern_gguf_add_u32(w, "a.u32", 7);
        tern_gguf_add_i32_arr(w, "a.arr", arr, 3);
        tern_gguf_add_str_arr(w, "a.strs", strs, lens, 2);
        tern_gguf_add_f32(w, "a.f32", 0.5f);
        if (align != 32) tern_gguf_set_alignment(w, align);
        tern_gguf_add_tensor(w, "w", TERN_GGML_F32, 2, ne0, W);
        tern_gguf_add_tensor(w, "q", TERN_GGML_Q8_0, 1, ne1, Q);
        CHECK(tern_gguf_add_u32(w, "a.u32", 8) == TERN_EINVAL && !strcmp(tern_errmsg(), "gguf writer: duplicate key 'a.u32'"), "%s",
              tern_errmsg());
        uint64_t bad[1] = {48};
        CHECK(tern_gguf_add_tensor(w, "z", TERN_GGML_Q8_0, 1, bad, Q) == TERN_EINVAL &&
                  !strcmp(tern_errmsg(), "gguf writer: tensor 'z': rows of 48 elements are not a multiple of the q8_0 block size 32"),
              "%s", tern_errmsg());
        uint8_t *out;
        size_t n;
        CHECK(tern_gguf_serialize(w, &out, &n) == TERN_OK, "%s", tern_errmsg());
        CHECK(n == b.n && !memcmp(out, b.b, n), "alignment %u: the writer's %zu bytes differ from the %zu laid out by hand", align, n, b.n);
        free(out);
        tern_gguf_writer_free(w);
    }
}

static void test_reader_fields(void) {
    buf b;
    layout L;
    build(&b, &L, 32);
    tern_gguf *g;
    CHECK(tern_gguf_from_buffer(&g, b.b, b.n, "m.gguf") == TERN_OK, "%s", tern_errmsg());
    if (!g) return;
    CHECK(tern_gguf_version(g) == 3 && tern_gguf_alignment(g) == 32 && tern_gguf_data_offset(g) == L.data, "header");
    CHECK(tern_gguf_kv_count(g) == 5 && tern_gguf_tensor_count(g) == 2, "counts");
    tern_gguf_str s;
    uint32_t u;
    float f;
    const tern_gguf_kv *kv;
    CHECK(tern_gguf_get_str(g, "general.architecture", &s) == TERN_OK && same_str(s, "gpt2"), "architecture");
    CHECK(tern_gguf_get_u32(g, "a.u32", &u) == TERN_OK && u == 7, "u32");
    CHECK(tern_gguf_get_f32(g, "a.f32", &f) == TERN_OK && f == 0.5f, "f32");
    CHECK(tern_gguf_get_arr(g, "a.arr", TERN_GGUF_I32, &kv) == TERN_OK && kv->n == 3 && (int8_t)kv->data[4] == -2, "i32 array");
    CHECK(tern_gguf_get_arr(g, "a.strs", TERN_GGUF_STRING, &kv) == TERN_OK && kv->n == 2 && same_str(kv->strs[1], "yz"), "strings");
    CHECK(tern_gguf_get_u32(g, "general.architecture", &u) == TERN_EFORMAT &&
              !strcmp(tern_errmsg(), "m.gguf: key 'general.architecture' is str, expected u32"),
          "%s", tern_errmsg());
    CHECK(tern_gguf_get_u32(g, "nope", &u) == TERN_ENOTFOUND && !strcmp(tern_errmsg(), "m.gguf: missing key 'nope'"), "%s", tern_errmsg());
    CHECK(tern_gguf_get_arr(g, "a.arr", TERN_GGUF_STRING, &kv) == TERN_EFORMAT &&
              !strcmp(tern_errmsg(), "m.gguf: key 'a.arr' is an array of i32, expected an array of str"),
          "%s", tern_errmsg());
    const tern_gguf_tensor *w = tern_gguf_find_tensor(g, "w"), *q = tern_gguf_find_tensor(g, "q");
    CHECK(w && w->type == 0 && w->n_dims == 2 && w->ne[0] == 3 && w->ne[1] == 2 && w->ne[2] == 1 && w->numel == 6 && w->nbytes == 24 &&
              w->offset == 0 && w->data == b.b + L.data,
          "tensor w");
    CHECK(q && q->type == 8 && q->n_dims == 1 && q->ne[0] == 64 && q->nbytes == 68 && q->offset == 32 && q->data == b.b + L.data + 32,
          "tensor q");
    float x[64];
    if (q && tern_gguf_tensor_to_f32(g, q, x) == TERN_OK) {
        int bad = 0;
        for (int j = 0; j < 32; j++) bad += x[j] != 0.25f * (float)(j - 16) || x[32 + j] != ldexpf((float)(16 - j), -24);
        CHECK(bad == 0, "q8_0 dequantised as d * q");
    }
    tern_gguf_free(g);
    tern_gguf_free(NULL);
}

static void expect_bad(const buf *b, size_t n, const char *want) {
    uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes, so ASan sees any read past them */
    memcpy(copy, b->b, n);
    tern_gguf *g = (tern_gguf *)1;
    tern_status st = tern_gguf_from_buffer(&g, copy, n, "m.gguf");
    CHECK(st == TERN_EFORMAT && g == NULL && !strcmp(tern_errmsg(), want), "want '%s'\n    got  '%s'", want, tern_errmsg());
    free(copy);
}

static void test_malformed(void) {
    buf b0, b;
    layout L;
    build(&b0, &L, 32);
    char want[512];
#define MUT(stmt, msg)                                                                                                  \
    do {                                                                                                                \
        b = b0;                                                                                                         \
        stmt;                                                                                                           \
        expect_bad(&b, b.n, msg);                                                                                       \
    } while (0)
    expect_bad(&b0, 3, "m.gguf: not a GGUF file: 3 bytes, shorter than the magic");
    MUT(b.b[3] = 'X', "m.gguf: not a GGUF file: magic 'GGUX', expected 'GGUF'");
    MUT(set32(&b, L.ver, 1), "m.gguf: GGUF version 1 is not supported (tern reads versions 2 and 3)");
    MUT(set32(&b, L.ver, 4), "m.gguf: GGUF version 4 is not supported (tern reads versions 2 and 3)");
    MUT(set32(&b, L.ver, 0x03000000), "m.gguf: version field reads 50331648: a big-endian GGUF file? tern reads little-endian files only");
    expect_bad(&b0, 10, "m.gguf: truncated: the file ends at byte 10, inside the header");
    snprintf(want, sizeof want, "m.gguf: the header claims 1099511627776 keys, more than the remaining %zu bytes can hold", b0.n - 24);
    MUT(set64(&b, L.nkv, 1ull << 40), want);
    snprintf(want, sizeof want, "m.gguf: the header claims 1099511627776 tensors, more than the remaining %zu bytes can hold", b0.n - 24);
    MUT(set64(&b, L.nt, 1ull << 40), want);
    snprintf(want, sizeof want, "m.gguf: key 0: a string of 18446744073709551615 bytes runs past the end of the file (%zu bytes left)",
             b0.n - 32);
    MUT(set64(&b, L.k0len, UINT64_MAX), want);
    MUT(set64(&b, L.k0len, 0), "m.gguf: key 0 has an empty name");
    MUT(set32(&b, L.k0type, 13), "m.gguf: key 'general.architecture' has unknown type 13");
    MUT(set32(&b, L.k2elem, 9), "m.gguf: key 'a.arr' is an array of arrays, which GGUF readers do not accept");
    MUT(set32(&b, L.k2elem, 200), "m.gguf: key 'a.arr' has unknown element type 200");
    snprintf(want, sizeof want, "m.gguf: key 'a.arr': 1099511627776 values of type i32 run past the end of the file (%zu bytes left)",
             b0.n - L.k2count - 8);
    MUT(set64(&b, L.k2count, 1ull << 40), want);
    snprintf(want, sizeof want, "m.gguf: key 'a.strs': 4611686018427387904 strings cannot fit in the %zu bytes left", b0.n - L.k3count - 8);
    MUT(set64(&b, L.k3count, 1ull << 62), want);
    snprintf(want, sizeof want,
             "m.gguf: the value of key 'a.strs': a string of 9223372036854775808 bytes runs past the end of the file (%zu bytes left)",
             b0.n - L.k3s1len - 8);
    MUT(set64(&b, L.k3s1len, 1ull << 63), want);
    MUT(memcpy(b.b + L.k1name, "a.arr", 5), "m.gguf: duplicate key 'a.arr'");
    MUT(set64(&b, L.t0namelen, 64), "m.gguf: the name of tensor 0 is 64 bytes long; GGUF allows at most 63");
    MUT(b.b[L.t0name] = 0, "m.gguf: the name of tensor 0 contains a NUL byte");
    MUT(b.b[L.t1name] = 'w', "m.gguf: duplicate tensor name 'w'");
    MUT(set32(&b, L.t0ndims, 5), "m.gguf: tensor 'w' has 5 dimensions; GGUF allows at most 4");
    MUT(set64(&b, L.t0ne0, 1ull << 63), "m.gguf: tensor 'w' dimension 0 is 9223372036854775808, more than ggml can index");
    MUT((set64(&b, L.t0ne0, 1ull << 32), set64(&b, L.t0ne1, 1ull << 32)), "m.gguf: tensor 'w' has more elements than ggml can index");
    MUT(set32(&b, L.t0type, 4), "m.gguf: tensor 'w' has unknown type 4");
    MUT(set64(&b, L.t1ne0, 48), "m.gguf: tensor 'q' of type q8_0 has rows of 48 elements, not a multiple of its block size 32");
    MUT(set64(&b, L.t1off, 8), "m.gguf: tensor 'q' has offset 8, not a multiple of the alignment 32");
    MUT(set64(&b, L.t1off, 64), "m.gguf: tensor 'q' has offset 64, expected 32 (tensors follow each other in order)");
    MUT(set64(&b, L.t0off, 32), "m.gguf: tensor 'w' has offset 32, expected 0 (tensors follow each other in order)");
    snprintf(want, sizeof want,
             "m.gguf: truncated: tensor 'q' (68 bytes at offset 32 of the data section) runs past the end of the file (%zu bytes)",
             L.data + 32 + 67);
    expect_bad(&b0, L.data + 32 + 67, want);
    if (L.header_end + 1 < L.data) {
        snprintf(want, sizeof want, "m.gguf: truncated: the data section would start at byte %zu but the file has %zu bytes", L.data,
                 L.header_end + 1);
        expect_bad(&b0, L.header_end + 1, want);
    }
    /* general.alignment: its type and value */
    build(&b0, &L, 64);
    tern_gguf *g;
    CHECK(tern_gguf_from_buffer(&g, b0.b, b0.n, "m.gguf") == TERN_OK && tern_gguf_alignment(g) == 64 &&
              tern_gguf_data_offset(g) % 64 == 0 && tern_gguf_find_tensor(g, "q")->offset == 64,
          "alignment 64: %s", tern_errmsg());
    tern_gguf_free(g);
    MUT(set32(&b, L.kalign_type, 6), "m.gguf: key 'general.alignment' is f32, expected u32");
    MUT(set32(&b, L.kalign_val, 48), "m.gguf: general.alignment 48 is not a power of two");
    MUT(set32(&b, L.kalign_val, 0), "m.gguf: general.alignment 0 is not a power of two");
#undef MUT
}

/* Every prefix of the file is refused until the last tensor's bytes are in; random byte changes
 * give a clear refusal or a file whose tensors lie inside the buffer, never a crash. */
static void test_truncations_and_changes(void) {
    buf b0;
    layout L;
    build(&b0, &L, 32);
    size_t need = L.data + 32 + 68;
    int bad = 0;
    for (size_t k = 0; k <= b0.n; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, b0.b, k);
        tern_gguf *g;
        tern_status st = tern_gguf_from_buffer(&g, copy, k, "m.gguf");
        bad += k < need ? st != TERN_EFORMAT : st != TERN_OK;
        tern_gguf_free(g);
        free(copy);
    }
    CHECK(bad == 0, "%d prefixes judged wrongly", bad);
    int accepted = 0;
    bad = 0;
    uint64_t ctr = 0;
    for (int i = 0; i < 4000; i++) {
        uint8_t *copy = malloc(b0.n);
        memcpy(copy, b0.b, b0.n);
        int nchanges = 1 + (int)tern_rng_below(5, 1, &ctr, 3);
        for (int c = 0; c < nchanges; c++) copy[tern_rng_below(5, 2, &ctr, L.header_end)] = (uint8_t)tern_rng_below(5, 3, &ctr, 256);
        tern_gguf *g;
        tern_status st = tern_gguf_from_buffer(&g, copy, b0.n, "m.gguf");
        if (st == TERN_OK) {
            accepted++;
            for (size_t t = 0; t < tern_gguf_tensor_count(g); t++) {
                const tern_gguf_tensor *x = tern_gguf_tensor_at(g, t);
                bad += x->data < copy || x->data + x->nbytes > copy + b0.n;
            }
        } else {
            bad += st != TERN_EFORMAT;
        }
        tern_gguf_free(g);
        free(copy);
    }
    CHECK(bad == 0, "%d changed files gave a wrong status or a tensor outside the buffer", bad);
    printf("  %d of 4000 changed headers were still valid GGUF\n", accepted);
}

/* ---- GPT-2 export ---- */

/* Checks an exported file against the model and the fixture tokenizer. */
static void check_export(const char *path, tern_model *m, uint32_t type) {
    tern_gguf *g;
    CHECK(tern_gguf_open(&g, path) == TERN_OK, "%s", tern_errmsg());
    if (!g) return;
    const tern_model_config *c = tern_model_cfg(m);
    tern_gguf_str s;
    uint32_t u;
    float f;
    CHECK(tern_gguf_version(g) == 3 && tern_gguf_alignment(g) == 32, "version and alignment");
    CHECK(tern_gguf_get_str(g, "general.architecture", &s) == TERN_OK && same_str(s, "gpt2"), "architecture");
    const struct {
        const char *k;
        uint32_t v;
    } ints[] = {{"gpt2.context_length", (uint32_t)c->n_ctx},       {"gpt2.embedding_length", (uint32_t)c->n_embd},
                {"gpt2.feed_forward_length", 4u * (uint32_t)c->n_embd}, {"gpt2.block_count", (uint32_t)c->n_layer},
                {"gpt2.attention.head_count", (uint32_t)c->n_head}, {"general.file_type", type == 0 ? 0u : type == 1 ? 1u : 7u},
                {"general.quantization_version", 2},               {"tokenizer.ggml.bos_token_id", EOT_FIX},
                {"tokenizer.ggml.eos_token_id", EOT_FIX}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        CHECK(tern_gguf_get_u32(g, ints[i].k, &u) == TERN_OK && u == ints[i].v, "%s = %u, want %u", ints[i].k, u, ints[i].v);
    CHECK(tern_gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &f) == TERN_OK && f == 1e-5f, "eps");
    CHECK(tern_gguf_get_str(g, "tokenizer.ggml.model", &s) == TERN_OK && same_str(s, "gpt2"), "tokenizer model");
    CHECK(tern_gguf_get_str(g, "tokenizer.ggml.pre", &s) == TERN_OK && same_str(s, "gpt-2"), "tokenizer pre");

    /* tokens: vocab.json's keys by id; merges: merges.txt's lines */
    char *text;
    size_t n;
    tern_read_file(TOKDIR "/vocab.json", &text, &n);
    cJSON *vocab = cJSON_ParseWithLength(text, n);
    free(text);
    const tern_gguf_kv *toks, *types, *merges;
    CHECK(tern_gguf_get_arr(g, "tokenizer.ggml.tokens", TERN_GGUF_STRING, &toks) == TERN_OK && toks->n == V_FIX, "tokens");
    CHECK(tern_gguf_get_arr(g, "tokenizer.ggml.token_type", TERN_GGUF_I32, &types) == TERN_OK && types->n == V_FIX, "types");
    CHECK(tern_gguf_get_arr(g, "tokenizer.ggml.merges", TERN_GGUF_STRING, &merges) == TERN_OK && merges->n == 200, "merges");
    int bad = 0;
    for (cJSON *e = vocab ? vocab->child : NULL; e && toks && types; e = e->next) {
        int id = (int)e->valuedouble;
        bad += !same_str(toks->strs[id], e->string);
        bad += (int32_t)(types->data[4 * id] | types->data[4 * id + 1] << 8) != (id == EOT_FIX ? 3 : 1);
    }
    CHECK(bad == 0 && cJSON_GetArraySize(vocab) == V_FIX, "%d tokens differ from vocab.json", bad);
    cJSON_Delete(vocab);
    tern_read_file(TOKDIR "/merges.txt", &text, &n);
    char *line = strchr(text, '\n') + 1; /* past "#version: 0.2" */
    bad = 0;
    for (uint64_t i = 0; merges && i < merges->n; i++) {
        char *nl = strchr(line, '\n');
        *nl = 0;
        bad += !same_str(merges->strs[i], line);
        line = nl + 1;
    }
    CHECK(bad == 0, "%d merges differ from merges.txt", bad);
    free(text);

    /* tensors: llama.cpp's names, the converter's types, ggml dims, and values */
    size_t nt;
    const tern_tensor *t = tern_model_tensors(m, &nt);
    float *p = test_model_copy(m, TERN_PARAMS);
    CHECK(tern_gguf_tensor_count(g) == nt, "%zu tensors, want %zu (no output.weight)", tern_gguf_tensor_count(g), nt);
    for (size_t i = 0; i < nt; i++) {
        char name[64];
        int tr;
        llama_name(t[i].name, name, &tr);
        const tern_gguf_tensor *x = tern_gguf_find_tensor(g, name);
        CHECK(x != NULL, "missing %s", name);
        if (!x) continue;
        size_t rows = t[i].ndim == 1 ? 1 : tr ? t[i].shape[1] : t[i].shape[0], cols = t[i].ndim == 1 ? t[i].shape[0] : tr ? t[i].shape[0] : t[i].shape[1];
        uint32_t want = t[i].ndim == 1 || !strcmp(name, "position_embd.weight") ? 0 : type;
        if (want == 8 && cols % 32) want = 1;
        CHECK(x->type == want && x->n_dims == (uint32_t)t[i].ndim && x->ne[0] == cols && (t[i].ndim == 1 || x->ne[1] == rows),
              "%s: type %u dims %u {%llu, %llu}", name, x->type, x->n_dims, (unsigned long long)x->ne[0], (unsigned long long)x->ne[1]);
        if (x->type != want || x->ne[0] != cols) continue;
        /* the value each stored element must hold: [rows][cols], transposed for Conv1D weights */
        const float *src = p + t[i].offset;
        double worst = 0; /* the largest error as a fraction of its bound */
        for (size_t r = 0; r < rows; r++)
            for (size_t b0 = 0; b0 < cols; b0 += want == 8 ? 32 : 1) {
                size_t bl = want == 8 ? 32 : 1;
                float orig[32], amax = 0;
                for (size_t j = 0; j < bl; j++) {
                    size_t col = b0 + j;
                    orig[j] = tr ? src[col * rows + r] : src[r * cols + col];
                    amax = fmaxf(amax, fabsf(orig[j]));
                }
                size_t k = r * cols + b0;
                if (want == 0) {
                    float v;
                    memcpy(&v, x->data + 4 * k, 4);
                    worst = fmax(worst, v == orig[0] ? 0 : INFINITY);
                } else if (want == 1) {
                    /* f16 rounding: within half a unit in the last place, 2^-11 relative (2^-25 below 2^-14) */
                    float v = half((uint16_t)(x->data[2 * k] | x->data[2 * k + 1] << 8));
                    double bound = fmax(fabs(orig[0]) * 0x1p-11, 0x1p-25);
                    worst = fmax(worst, fabs(v - orig[0]) / bound);
                } else {
                    /* q8_0: d = absmax/127, q = round(x/d), so |x - d q| <= d/2; storing d as f16 moves
                     * each value by at most 127 |d - f16(d)|, with |d - f16(d)| <= 2^-11 d (2^-25 when
                     * subnormal); float rounding of x/d and of f16(d) q adds at most 2^-22 absmax. */
                    const uint8_t *blk = x->data + (k / 32) * 34;
                    float D = half((uint16_t)(blk[0] | blk[1] << 8)), d = amax / 127.0f;
                    double bound = 0.5 * d + 127 * fmax(d * 0x1p-11, 0x1p-25) + amax * 0x1p-22;
                    for (size_t j = 0; j < 32; j++) worst = fmax(worst, fabs(D * (float)(int8_t)blk[2 + j] - orig[j]) / bound);
                }
            }
        CHECK(worst <= 1.0, "%s (%s): error %.3g times its bound", name, tern_ggml_type_name(want), worst);
    }
    free(p);
    tern_gguf_free(g);
}

static float *logits_of(tern_model *m, const int32_t *in, size_t T) {
    size_t V = (size_t)tern_model_cfg(m)->vocab_size;
    tern_model_reserve(m, 1, T);
    CHECK(tern_model_forward(m, in, NULL, 1, T, NULL) == TERN_OK, "%s", tern_errmsg());
    float *out = malloc(T * V * sizeof(float));
    CHECK(tern_model_logits(m, out) == TERN_OK, "%s", tern_errmsg());
    return out;
}

static void test_export_run(void) {
    const char *d = test_tmpdir("gguf_run");
    tern_model *m = random_model(2, 4, 64, 32, V_FIX, 21);
    make_run(d, m);
    const char *types[3] = {"f32", "f16", "q8_0"};
    const uint32_t ids[3] = {0, 1, 8};
    char out[4096], path[600];
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/m-%s.gguf", d, types[k]);
        int rc = run_cmd(out, sizeof out, "%s export '%s' -o '%s' --type %s", test_tern_bin(), d, path, types[k]);
        CHECK(rc == 0, "export %s: %s", types[k], out);
        check_export(path, m, ids[k]);
    }

    /* f32: the same logits as the run, bit for bit, through the path tern eval and sample take */
    int32_t in[20];
    for (int i = 0; i < 20; i++) in[i] = (int32_t)((i * 97 + 5) % V_FIX);
    float *want = logits_of(m, in, 20);
    tern_model *back;
    char *tokdir;
    snprintf(path, sizeof path, "%s/m-f32.gguf", d);
    CHECK(tern_io_open_model(path, 0, &back, &tokdir, NULL, NULL) == TERN_OK, "%s", tern_errmsg());
    if (back) {
        float *got = logits_of(back, in, 20);
        CHECK(!memcmp(got, want, 20 * V_FIX * sizeof(float)), "logits of the f32 GGUF differ from the run's");
        CHECK(test_same_params(back, m), "parameters differ");
        free(got);
        tern_model_free(back);
        /* the extracted tokenizer is the same tokenizer */
        tern_tok *a, *b;
        CHECK(tern_tok_load(&a, TOKDIR, NULL) == TERN_OK && tern_tok_load(&b, tokdir, NULL) == TERN_OK, "%s", tern_errmsg());
        int bad = tern_tok_vocab_size(b) != V_FIX || tern_tok_eot(b) != EOT_FIX;
        for (int32_t i = 0; i < V_FIX && !bad; i++) {
            size_t la, lb;
            const uint8_t *pa = tern_tok_token(a, i, &la), *pb = tern_tok_token(b, i, &lb);
            bad += la != lb || memcmp(pa, pb, la);
        }
        const char *text = "the quick brown fox, \xc3\xbc\xe2\x9c\x93 and 1234\n\n";
        tern_ids ea = {0}, eb = {0};
        tern_tok_encode(a, text, strlen(text), &ea);
        tern_tok_encode(b, text, strlen(text), &eb);
        bad += ea.n != eb.n || memcmp(ea.p, eb.p, ea.n * sizeof(int32_t));
        CHECK(bad == 0, "the tokenizer taken out of the GGUF differs from the original");
        tern_ids_free(&ea);
        tern_ids_free(&eb);
        tern_tok_free(a);
        tern_tok_free(b);
        /* the extracted folder is temporary: freeing its name removes it */
        char *kept = strdup(tokdir);
        tern_io_tokdir_free(tokdir);
        CHECK(kept && !tern_path_exists(kept), "%s is left behind", kept);
        free(kept);
    }
    free(want);

    /* tern sample gives the same text from the run and from its f32 GGUF; export goes back to HF.
     * Neither leaves the GGUF's extracted tokenizer in the temporary folder. */
    char a[4096], tmp[700];
    snprintf(tmp, sizeof tmp, "%s/tmp", d);
    mkdir(tmp, 0755);
    run_cmd(a, sizeof a, "%s sample '%s' --prompt 'the' -n 12 --seed 3", test_tern_bin(), d);
    CHECK(run_cmd(out, sizeof out, "TMPDIR='%s' %s sample '%s' --prompt 'the' -n 12 --seed 3", tmp, test_tern_bin(), path) == 0 &&
              !strcmp(a, out),
          "sample from the GGUF:\n%s\nfrom the run:\n%s", out, a);
    char hf[700];
    snprintf(hf, sizeof hf, "%s/hf-from-gguf", d);
    CHECK(run_cmd(out, sizeof out, "TMPDIR='%s' %s export '%s' -o '%s'", tmp, test_tern_bin(), path, hf) == 0, "%s", out);
    CHECK(run_cmd(out, sizeof out, "ls -A '%s'", tmp) == 0 && !strcmp(out, ""), "left in TMPDIR: %s", out);
    tern_model *h = NULL;
    CHECK(tern_io_load_hf(hf, &h, NULL) == TERN_OK && test_same_params(h, m),
          "GGUF -> Hugging Face folder changed the parameters: %s", tern_errmsg());
    tern_model_free(h);

    /* refusals: a quantised file as a model, a step in a file, a bad --type */
    char msg[900];
    snprintf(path, sizeof path, "%s/m-q8_0.gguf", d);
    snprintf(msg, sizeof msg, "%s: tensor 'token_embd.weight' is q8_0; tern loads f32 GGUF files only (tern export --type f32)", path);
    CHECK(tern_io_open_model(path, 0, &back, NULL, NULL, NULL) == TERN_EFORMAT && !strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    snprintf(msg, sizeof msg, "%s: a GGUF file has no steps to choose from", path);
    CHECK(tern_io_open_model(path, 2, &back, NULL, NULL, NULL) == TERN_EINVAL && !strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    CHECK(run_cmd(out, sizeof out, "%s export '%s' -o x.gguf --type q4_0", test_tern_bin(), d) == 2 &&
              !strcmp(out, "tern export: unknown --type 'q4_0' (f32, f16 or q8_0)\n"),
          "%s", out);
    CHECK(run_cmd(out, sizeof out, "%s export '%s' -o hfdir --type q8_0", test_tern_bin(), d) == 2 &&
              !strcmp(out, "tern export: --type applies to GGUF files only (--format gguf, or -o FILE.gguf)\n"),
          "%s", out);
    tern_model_free(m);
}

/* q8_0 of a width that is not a multiple of 32: those tensors fall back to f16, as llama.cpp's
 * converter does; ffn_down (rows of 4*48 = 192) stays q8_0. A tokenizer of another size is refused. */
static void test_export_q8_fallback_and_mismatch(void) {
    const char *d = test_tmpdir("gguf_w48");
    tern_model *m = random_model(1, 3, 48, 16, V_FIX, 8);
    char path[600], out[2048], want[1400];
    snprintf(path, sizeof path, "%s/m.gguf", d);
    CHECK(tern_gguf_export(m, TOKDIR, TERN_GGML_Q8_0, "w48", path) == TERN_OK, "%s", tern_errmsg());
    check_export(path, m, TERN_GGML_Q8_0);
    tern_gguf *g;
    if (tern_gguf_open(&g, path) == TERN_OK) {
        CHECK(tern_gguf_find_tensor(g, "blk.0.ffn_down.weight")->type == TERN_GGML_Q8_0 &&
                  tern_gguf_find_tensor(g, "blk.0.attn_qkv.weight")->type == TERN_GGML_F16,
              "fallback");
        tern_gguf_str s;
        CHECK(tern_gguf_get_str(g, "general.name", &s) == TERN_OK && same_str(s, "w48"), "general.name");
        tern_gguf_free(g);
    }
    tern_model_free(m);
    m = random_model(1, 2, 32, 8, V_FIX + 3, 9);
    make_run(d, m);
    CHECK(run_cmd(out, sizeof out, "%s export '%s' -o '%s'", test_tern_bin(), d, path) == 1, "%s", out);
    snprintf(want, sizeof want,
             "tern export: %s/tokenizer: the tokenizer has 457 tokens but the model's vocabulary is 460; llama.cpp needs them equal\n", d);
    CHECK(!strcmp(out, want), "%s", out);
    tern_model_free(m);
}

/* tern logits: the same numbers as a forward pass in this process, for a run and its GGUF. */
static void test_logits_command(void) {
    const char *d = test_tmpdir("gguf_logits");
    tern_model *m = random_model(1, 2, 32, 16, V_FIX, 12);
    make_run(d, m);
    char out[2048], path[600], gg[600], want[700];
    snprintf(gg, sizeof gg, "%s/m.gguf", d);
    CHECK(tern_gguf_export(m, TOKDIR, TERN_GGML_F32, NULL, gg) == TERN_OK, "%s", tern_errmsg());
    int32_t in[5] = {456, 3, 300, 0, 17};
    float *ref = logits_of(m, in, 5);
    const char *models[2] = {d, gg};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/logits%d.safetensors", d, k);
        CHECK(run_cmd(out, sizeof out, "%s logits '%s' --tokens '456 3,300 0 17' -o '%s'", test_tern_bin(), models[k], path) == 0, "%s", out);
        tern_safetensors *st;
        float got[5 * V_FIX];
        size_t shape[2] = {5, V_FIX};
        CHECK(tern_st_open(&st, path) == TERN_OK && tern_st_read_f32(st, "logits", got, 2, shape) == TERN_OK, "%s", tern_errmsg());
        CHECK(!memcmp(got, ref, sizeof got), "%s: logits differ from the forward pass", models[k]);
        tern_st_free(st);
    }
    CHECK(run_cmd(out, sizeof out, "%s logits '%s' --tokens '1 x' -o '%s'", test_tern_bin(), gg, path) == 2 &&
              !strcmp(out, "tern logits: --tokens: '1 x' is not a list of token ids\n"),
          "%s", out);
    CHECK(run_cmd(out, sizeof out, "%s logits '%s' --tokens '1 457' -o '%s'", test_tern_bin(), gg, path) == 1 &&
              !strcmp(out, "tern logits: input token 457 at position 1 is outside the vocabulary (size 457)\n"),
          "%s", out);
    /* --device: the plain C kernels agree with the default ones; a name this build cannot run is refused */
    snprintf(path, sizeof path, "%s/logits_ref.safetensors", d);
    CHECK(run_cmd(out, sizeof out, "%s logits '%s' --tokens '456 3 300 0 17' -o '%s' --device ref", test_tern_bin(), gg, path) == 0, "%s", out);
    tern_safetensors *rs = NULL;
    float got[5 * V_FIX], e = 0;
    size_t shape[2] = {5, V_FIX};
    CHECK(tern_st_open(&rs, path) == TERN_OK && tern_st_read_f32(rs, "logits", got, 2, shape) == TERN_OK, "%s", tern_errmsg());
    for (size_t i = 0; i < 5 * V_FIX; i++) e = fmaxf(e, fabsf(got[i] - ref[i]));
    CHECK(e < 1e-4f, "--device ref: logits differ by %g", (double)e);
    tern_st_free(rs);
    CHECK(run_cmd(out, sizeof out, "%s logits '%s' --tokens '1' -o '%s' --device tpu", test_tern_bin(), gg, path) == 1 &&
              !strcmp(out, "tern logits: --device tpu: unknown backend 'tpu' (known: cpu, ref, avx2, avx512, cuda, cuda:N)\n"),
          "%s", out);
    snprintf(want, sizeof want, "tern logits: 17 tokens, more than the model's 16 positions\n");
    CHECK(run_cmd(out, sizeof out, "%s logits '%s' --tokens '1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1' -o '%s'", test_tern_bin(), gg, path) == 2 &&
              !strcmp(out, want),
          "%s", out);
    free(ref);
    tern_model_free(m);
}

/* ---- the loader's refusals, on files built here with the writer ---- */

enum { OK_PLAIN, OK_TIED, ARCH, NO_KEY, KEY_TYPE, EPS, FF, F16_TENSOR, SHAPE, NO_TENSOR, EXTRA, UNTIED, NTOKENS, N_VARIANTS };

static tern_status load_variant(tern_model *m, int v, tern_model **out) {
    const tern_model_config *c = tern_model_cfg(m);
    tern_gguf_writer *w;
    tern_gguf_writer_init(&w);
    tern_gguf_add_str(w, "general.architecture", v == ARCH ? "falcon" : "gpt2");
    if (v != NO_KEY) tern_gguf_add_u32(w, "gpt2.block_count", (uint32_t)c->n_layer);
    if (v == KEY_TYPE)
        tern_gguf_add_f32(w, "gpt2.context_length", (float)c->n_ctx);
    else
        tern_gguf_add_u32(w, "gpt2.context_length", (uint32_t)c->n_ctx);
    tern_gguf_add_u32(w, "gpt2.embedding_length", (uint32_t)c->n_embd);
    tern_gguf_add_u32(w, "gpt2.feed_forward_length", (uint32_t)(v == FF ? 3 : 4) * (uint32_t)c->n_embd);
    tern_gguf_add_u32(w, "gpt2.attention.head_count", (uint32_t)c->n_head);
    tern_gguf_add_f32(w, "gpt2.attention.layer_norm_epsilon", v == EPS ? 1e-6f : 1e-5f);
    const char *toks[3] = {"a", "b", "c"};
    size_t lens[3] = {1, 1, 1};
    if (v == NTOKENS) tern_gguf_add_str_arr(w, "tokenizer.ggml.tokens", toks, lens, 3);
    size_t nt;
    const tern_tensor *t = tern_model_tensors(m, &nt);
    float *p = test_model_copy(m, TERN_PARAMS);
    float *tr = calloc(tern_model_num_params(m), sizeof(float)); /* transposed copies */
    uint16_t *h16 = malloc(4 * (size_t)c->n_embd * (size_t)c->n_embd * 2);
    for (size_t i = 0; i < nt; i++) {
        char name[64];
        int transpose;
        llama_name(t[i].name, name, &transpose);
        if (v == NO_TENSOR && !strcmp(name, "blk.1.ffn_up.bias")) continue;
        uint64_t ne[2] = {t[i].ndim == 1 ? t[i].shape[0] : transpose ? t[i].shape[0] : t[i].shape[1], transpose ? t[i].shape[1] : t[i].shape[0]};
        const void *data = p + t[i].offset;
        if (transpose) {
            float *dst = tr + t[i].offset;
            for (size_t a = 0; a < t[i].shape[0]; a++)
                for (size_t b = 0; b < t[i].shape[1]; b++) dst[b * t[i].shape[0] + a] = p[t[i].offset + a * t[i].shape[1] + b];
            data = dst;
        }
        uint32_t type = TERN_GGML_F32;
        if (v == F16_TENSOR && !strcmp(name, "blk.0.ffn_up.weight")) {
            for (size_t k = 0; k < t[i].numel; k++) h16[k] = tern_f32_to_f16(((const float *)data)[k]);
            data = h16, type = TERN_GGML_F16;
        }
        if (v == SHAPE && !strcmp(name, "blk.0.attn_qkv.weight")) {
            uint64_t x = ne[0];
            ne[0] = ne[1], ne[1] = x;
        }
        tern_gguf_add_tensor(w, name, type, (uint32_t)t[i].ndim, ne, data);
    }
    const tern_tensor *wte = tern_model_find(m, "wte.weight");
    uint64_t ne[2] = {wte->shape[1], wte->shape[0]};
    if (v == OK_TIED) tern_gguf_add_tensor(w, "output.weight", TERN_GGML_F32, 2, ne, p + wte->offset);
    if (v == UNTIED) tern_gguf_add_tensor(w, "output.weight", TERN_GGML_F32, 2, ne, tr + wte->offset); /* wte is not transposed: zeros */
    if (v == EXTRA) tern_gguf_add_tensor(w, "blk.0.attn_q.weight", TERN_GGML_F32, 2, ne, p + wte->offset);
    uint8_t *bytes;
    size_t n;
    tern_status st = tern_gguf_serialize(w, &bytes, &n);
    tern_gguf_writer_free(w);
    free(tr);
    free(h16);
    free(p);
    if (st != TERN_OK) return st;
    tern_gguf *g;
    st = tern_gguf_from_buffer(&g, bytes, n, "m.gguf");
    if (st == TERN_OK) st = tern_gguf_load_model(g, out, NULL);
    tern_gguf_free(g);
    free(bytes);
    return st;
}

static void test_load_refusals(void) {
    tern_model *m = random_model(2, 2, 16, 8, 11, 4);
    static const char *const want[N_VARIANTS] = {
        [ARCH] = "m.gguf: architecture 'falcon' is not one tern loads (gpt2, llama, qwen2)",
        [NO_KEY] = "m.gguf: missing key 'gpt2.block_count'",
        [KEY_TYPE] = "m.gguf: key 'gpt2.context_length' is f32, expected u32",
        [EPS] = "m.gguf: gpt2.attention.layer_norm_epsilon is 1e-06; tern's GPT-2 uses 1e-05",
        [FF] = "m.gguf: gpt2.feed_forward_length 48 is not 4*n_embd (16); tern's GPT-2 uses a 4x MLP",
        [F16_TENSOR] = "m.gguf: tensor 'blk.0.ffn_up.weight' is f16; tern loads f32 GGUF files only (tern export --type f32)",
        [SHAPE] = "m.gguf: tensor 'blk.0.attn_qkv.weight' has ggml dims {48, 16}, expected {16, 48}",
        [NO_TENSOR] = "m.gguf: missing tensor 'blk.1.ffn_up.bias'",
        [EXTRA] = "m.gguf: unexpected tensor 'blk.0.attn_q.weight' for a GPT-2 of this shape",
        [UNTIED] = "m.gguf: output.weight differs from token_embd.weight; tern's GPT-2 ties them",
        [NTOKENS] = "m.gguf: tokenizer.ggml.tokens has 3 tokens but token_embd.weight has 11 rows",
    };
    for (int v = 0; v < N_VARIANTS; v++) {
        tern_model *back = NULL;
        tern_status st = load_variant(m, v, &back);
        if (v == OK_PLAIN || v == OK_TIED) {
            CHECK(st == TERN_OK && back && test_same_params(back, m),
                  "variant %d: %s", v, tern_errmsg());
        } else {
            CHECK(st != TERN_OK && back == NULL && !strcmp(tern_errmsg(), want[v]), "variant %d: want '%s'\n    got  '%s'", v, want[v],
                  tern_errmsg());
        }
        tern_model_free(back);
    }
    tern_model_free(m);
}

/* ---- the Llama family ---- */

static tern_model *random_llama(int n_kv, int qkv_bias, int tie, uint64_t seed) {
    tern_model_config cfg = tern_model_config_llama(2, 4, n_kv, 32, 16, V_FIX);
    cfg.ffn_dim = 48;
    cfg.qkv_bias = qkv_bias;
    cfg.tie_embeddings = tie;
    cfg.rope_theta = 500000;
    cfg.norm_eps = 1e-6;
    tern_model *m;
    if (tern_model_init(&m, &cfg, NULL) != TERN_OK) {
        printf("%s\n", tern_errmsg());
        exit(2);
    }
    tern_model_init_weights(m, seed);
    float *p = test_model_copy(m, TERN_PARAMS); /* non-trivial norms and biases */
    for (size_t i = 0; i < tern_model_num_params(m); i++) p[i] += 0.05f * tern_rng_normal(seed, 7, i);
    test_model_set(m, TERN_PARAMS, p);
    free(p);
    return m;
}

static uint32_t kv_u32(const tern_gguf *g, const char *key) {
    uint32_t v = 0;
    CHECK(tern_gguf_get_u32(g, key, &v) == TERN_OK, "%s", key);
    return v;
}

/* Exported as llama.cpp's converter writes these models: under "llama" q and k rows are permuted
 * within heads (row h*hs + j*hs/2 + i of tern's matrix is row h*hs + 2i + j in the file), under
 * "qwen2" (a model with q, k, v biases) nothing is; the metadata is llama.cpp's; and the file
 * loads back to the same parameters and logits. */
static void test_export_llama(void) {
    static const struct { int n_kv, bias, tie; const char *arch; } cases[] = {{2, 0, 0, "llama"}, {4, 0, 1, "llama"}, {1, 1, 1, "qwen2"}};
    char path[256], key[96];
    const char *tmpdir = test_tmpdir("gguf_llama");
    for (size_t ci = 0; ci < 3; ci++) {
        tern_model *m = random_llama(cases[ci].n_kv, cases[ci].bias, cases[ci].tie, 40 + ci);
        const tern_model_config *c = tern_model_cfg(m);
        snprintf(path, sizeof path, "%s/llama%zu.gguf", tmpdir, ci);
        CHECK(tern_gguf_export(m, TOKDIR, TERN_GGML_F32, "tiny", path) == TERN_OK, "%s", tern_errmsg());
        tern_gguf *g = NULL;
        CHECK(tern_gguf_open(&g, path) == TERN_OK, "%s", tern_errmsg());
        if (!g) continue;
        tern_gguf_str a;
        CHECK(tern_gguf_get_str(g, "general.architecture", &a) == TERN_OK && same_str(a, cases[ci].arch), "case %zu", ci);
        const char *A = cases[ci].arch;
#define K(s) (snprintf(key, sizeof key, "%s.%s", A, s), key)
        CHECK(kv_u32(g, K("block_count")) == 2 && kv_u32(g, K("embedding_length")) == 32 && kv_u32(g, K("context_length")) == 16,
              "case %zu", ci);
        CHECK(kv_u32(g, K("feed_forward_length")) == 48 && kv_u32(g, K("attention.head_count")) == 4, "case %zu", ci);
        CHECK(kv_u32(g, K("attention.head_count_kv")) == (uint32_t)cases[ci].n_kv, "case %zu", ci);
        if (!cases[ci].bias) CHECK(kv_u32(g, K("rope.dimension_count")) == 8 && kv_u32(g, K("attention.key_length")) == 8, "case %zu", ci);
        else CHECK(!tern_gguf_find_kv(g, K("rope.dimension_count")) && !tern_gguf_find_kv(g, K("vocab_size")), "case %zu", ci);
        float theta = 0, eps = 0;
        CHECK(tern_gguf_get_f32(g, K("rope.freq_base"), &theta) == TERN_OK && theta == 500000.0f, "case %zu", ci);
        CHECK(tern_gguf_get_f32(g, K("attention.layer_norm_rms_epsilon"), &eps) == TERN_OK && eps == 1e-6f, "case %zu", ci);
#undef K
        CHECK((tern_gguf_find_tensor(g, "output.weight") == NULL) == (cases[ci].tie != 0), "case %zu", ci);
        CHECK((tern_gguf_find_tensor(g, "blk.1.attn_k.bias") != NULL) == (cases[ci].bias != 0), "case %zu", ci);
        CHECK(tern_gguf_tensor_count(g) == (size_t)(2 + 9 * 2 + (cases[ci].bias ? 6 : 0) + !cases[ci].tie), "case %zu: %zu tensors", ci,
              tern_gguf_tensor_count(g));
        /* q and k rows */
        float *p = test_model_copy(m, TERN_PARAMS);
        static const char *const qk[2][2] = {{"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight"},
                                             {"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight"}};
        for (int w = 0; w < 2; w++) {
            const tern_tensor *t = tern_model_find(m, qk[w][0]);
            const tern_gguf_tensor *s = tern_gguf_find_tensor(g, qk[w][1]);
            CHECK(t && s && s->ne[0] == 32 && s->ne[1] == t->shape[0], "case %zu %s", ci, qk[w][1]);
            if (!t || !s) continue;
            size_t heads = w ? (size_t)c->n_kv_head : (size_t)c->n_head, hs = 8, bad = 0;
            for (size_t h = 0; h < heads; h++)
                for (size_t j = 0; j < 2; j++)
                    for (size_t i = 0; i < hs / 2; i++) {
                        size_t from = h * hs + j * hs / 2 + i, to = cases[ci].bias ? from : h * hs + 2 * i + j;
                        bad += memcmp(s->data + to * 32 * 4, p + t->offset + from * 32, 32 * 4) != 0;
                    }
            CHECK(bad == 0, "case %zu %s: %zu rows misplaced", ci, qk[w][1], bad);
        }
        free(p);
        tern_model *back = NULL;
        CHECK(tern_gguf_load_model(g, &back, NULL) == TERN_OK, "case %zu: %s", ci, tern_errmsg());
        if (back) {
            const tern_model_config *b = tern_model_cfg(back);
            CHECK(!strcmp(b->arch, "llama") && b->n_kv_head == c->n_kv_head && b->qkv_bias == c->qkv_bias &&
                      b->tie_embeddings == c->tie_embeddings && b->ffn_dim == 48 && b->rope_theta == 500000 && b->head_dim == 8 && b->norm_eps == 1e-6,
                  "case %zu", ci);
            CHECK(test_same_params(back, m), "case %zu: parameters differ after the round trip", ci);
            int32_t x[12];
            for (int i = 0; i < 12; i++) x[i] = (i * 37 + 5) % V_FIX;
            float *l1 = logits_of(m, x, 12), *l2 = logits_of(back, x, 12);
            float d = 0;
            for (size_t i = 0; i < 12 * V_FIX; i++) d = fmaxf(d, fabsf(l1[i] - l2[i]));
            CHECK(d < 1e-5f, "case %zu: logits differ by %g", ci, (double)d);
            free(l1);
            free(l2);
        }
        tern_model_free(back);
        tern_gguf_free(g);
        tern_model_free(m);
    }
    /* what llama.cpp's llama architecture would compute differently */
    tern_model *m = random_llama(2, 0, 0, 9);
    tern_model_config cfg = *tern_model_cfg(m);
    tern_model_free(m);
    cfg.sliding_window = 8;
    CHECK(tern_model_init(&m, &cfg, NULL) == TERN_OK, "%s", tern_errmsg());
    snprintf(path, sizeof path, "%s/window.gguf", tmpdir);
    CHECK(tern_gguf_export(m, TOKDIR, TERN_GGML_F32, NULL, path) == TERN_EINVAL &&
              !strcmp(tern_errmsg(), "GGUF export: a sliding attention window of 8 positions (below the context of 16) is not written; "
                                     "llama.cpp's llama architecture attends to every position"),
          "%s", tern_errmsg());
    CHECK(!tern_path_exists(path), "a refused export left %s", path);
    tern_model_free(m);
    cfg.sliding_window = 0;
    cfg.rope_type = TERN_ROPE_LLAMA3;
    cfg.rope_factor = 8, cfg.rope_low_freq_factor = 1, cfg.rope_high_freq_factor = 4, cfg.rope_original_ctx = 8;
    CHECK(tern_model_init(&m, &cfg, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_gguf_export(m, TOKDIR, TERN_GGML_F32, NULL, path) == TERN_EINVAL && strstr(tern_errmsg(), "Llama 3's rope scaling"), "%s",
          tern_errmsg());
    tern_model_free(m);
}

/* A Llama GGUF whose metadata asks for arithmetic tern's Llama does not do is refused, naming it. */
enum { L_OK, L_SCALING, L_EXPERTS, L_ROT, L_FREQS, L_BIAS, L_NO_EPS, L_N };

static tern_status llama_variant(tern_model *m, int v, tern_model **out) {
    const tern_model_config *c = tern_model_cfg(m);
    tern_gguf_writer *w;
    TERN_TRY(tern_gguf_writer_init(&w));
    tern_gguf_add_str(w, "general.architecture", "llama");
    tern_gguf_add_u32(w, "llama.block_count", (uint32_t)c->n_layer);
    tern_gguf_add_u32(w, "llama.context_length", (uint32_t)c->n_ctx);
    tern_gguf_add_u32(w, "llama.embedding_length", (uint32_t)c->n_embd);
    tern_gguf_add_u32(w, "llama.feed_forward_length", (uint32_t)c->ffn_dim);
    tern_gguf_add_u32(w, "llama.attention.head_count", (uint32_t)c->n_head);
    tern_gguf_add_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_head);
    tern_gguf_add_u32(w, "llama.rope.dimension_count", v == L_ROT ? 4 : 8);
    tern_gguf_add_f32(w, "llama.rope.freq_base", (float)c->rope_theta);
    if (v != L_NO_EPS) tern_gguf_add_f32(w, "llama.attention.layer_norm_rms_epsilon", (float)c->norm_eps);
    if (v == L_SCALING) tern_gguf_add_str(w, "llama.rope.scaling.type", "yarn");
    if (v == L_EXPERTS) tern_gguf_add_u32(w, "llama.expert_count", 8);
    size_t nt;
    const tern_tensor *t = tern_model_tensors(m, &nt);
    float *p = test_model_copy(m, TERN_PARAMS);
    static const char *const names[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"}, {"lm_head.weight", "output.weight"},
        {"input_layernorm.weight", "attn_norm.weight"},     {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},       {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"},  {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"}};
    for (size_t i = 0; i < nt; i++) {
        char name[TERN_GGUF_MAX_NAME] = "";
        int l = -1, k = 0;
        sscanf(t[i].name, "model.layers.%d.%n", &l, &k);
        for (size_t j = 0; j < sizeof names / sizeof names[0]; j++) {
            if (l < 0 && !strcmp(t[i].name, names[j][0])) snprintf(name, sizeof name, "%s", names[j][1]);
            if (l >= 0 && k && !strcmp(t[i].name + k, names[j][0])) snprintf(name, sizeof name, "blk.%d.%s", l, names[j][1]);
        }
        uint64_t ne[2] = {t[i].ndim == 1 ? t[i].shape[0] : t[i].shape[1], t[i].shape[0]};
        tern_gguf_add_tensor(w, name, TERN_GGML_F32, (uint32_t)t[i].ndim, ne, p + t[i].offset);
    }
    uint64_t ne[2] = {4, 1};
    if (v == L_FREQS) tern_gguf_add_tensor(w, "rope_freqs.weight", TERN_GGML_F32, 1, ne, p);
    if (v == L_BIAS) tern_gguf_add_tensor(w, "blk.0.attn_q.bias", TERN_GGML_F32, 1, (uint64_t[]){32}, p);
    uint8_t *bytes;
    size_t n;
    tern_status st = tern_gguf_serialize(w, &bytes, &n);
    tern_gguf_writer_free(w);
    free(p);
    if (st != TERN_OK) return st;
    tern_gguf *g;
    st = tern_gguf_from_buffer(&g, bytes, n, "l.gguf");
    if (st == TERN_OK) st = tern_gguf_load_model(g, out, NULL);
    tern_gguf_free(g);
    free(bytes);
    return st;
}

static void test_llama_load_refusals(void) {
    tern_model *m = random_llama(2, 0, 0, 5);
    static const char *const want[L_N] = {
        [L_SCALING] = "l.gguf: llama.rope.scaling.type is 'yarn'; tern loads GGUF files without rope scaling",
        [L_EXPERTS] = "l.gguf: llama.expert_count is 8; tern's Llama has no mixture of experts",
        [L_ROT] = "l.gguf: llama.rope.dimension_count 4 is not the head size 8; tern rotates whole heads",
        [L_FREQS] = "l.gguf: rope_freqs.weight (Llama 3's rope scaling) is not loaded; convert the Hugging Face folder instead",
        [L_BIAS] = "l.gguf: blk.0.attn_q.bias: q, k and v biases under the llama architecture are not loaded",
        [L_NO_EPS] = "l.gguf: missing key 'llama.attention.layer_norm_rms_epsilon'",
    };
    for (int v = 0; v < L_N; v++) {
        tern_model *back = NULL;
        tern_status st = llama_variant(m, v, &back);
        /* written without the converter's permutation, so only the refusals are compared */
        if (v == L_OK) CHECK(st == TERN_OK && back && tern_model_cfg(back)->n_kv_head == 2, "%s", tern_errmsg());
        else CHECK(st != TERN_OK && !back && !strcmp(tern_errmsg(), want[v]), "variant %d: want '%s'\n    got  '%s'", v, want[v], tern_errmsg());
        tern_model_free(back);
    }
    tern_model_free(m);
}

int main(void) {
    RUN(test_f16_every_value);
    RUN(test_q8_0_block);
    RUN(test_writer_matches_layout);
    RUN(test_reader_fields);
    RUN(test_malformed);
    RUN(test_truncations_and_changes);
    RUN(test_export_run);
    RUN(test_export_q8_fallback_and_mismatch);
    RUN(test_logits_command);
    RUN(test_load_refusals);
    RUN(test_export_llama);
    RUN(test_llama_load_refusals);
    return check_exit();
}
