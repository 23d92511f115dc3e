/* libFuzzer target: GGUF files (tern sample/eval/import of llama.cpp models) through
 * tern_gguf_from_buffer, then what tern does with an accepted file: every metadata value and
 * tensor read, tensors converted to f32, GPT-2 built from it (tern_gguf_load_model), and its
 * embedded tokenizer written out and loaded. Not a check of llama.cpp compatibility (the io tests
 * do that). Format: ggml's docs/gguf.md (version 3); docs/FORMATS.md. */
#include "fuzz.h"

#include <sys/stat.h>

static const char *label = "fuzz.gguf";

/* Reads every byte a metadata value points at. */
static unsigned touch_kv(const tern_gguf_kv *kv) {
    unsigned sum = 0;
    const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
    uint32_t et = kv->type == TERN_GGUF_ARRAY ? kv->elem_type : kv->type;
    FUZZ_REQUIRE(et < 13 && et != TERN_GGUF_ARRAY, "accepted element type %u", et);
    FUZZ_REQUIRE(!strcmp(tern_gguf_vtype_name(et), names[et]), "type name");
    for (uint64_t i = 0; i < kv->key.n; i++) sum += (uint8_t)kv->key.p[i];
    if (et == TERN_GGUF_STRING) {
        for (uint64_t j = 0; j < kv->n; j++)
            for (uint64_t i = 0; i < kv->strs[j].n; i++) sum += (uint8_t)kv->strs[j].p[i];
    } else {
        static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        for (uint64_t i = 0; i < kv->n * sz[et]; i++) sum += kv->data[i];
    }
    return sum;
}

/* The embedded tokenizer, written as tern writes it (to a folder in memory) and loaded back. */
static void tokenizer_round_trip(const tern_gguf *g) {
    const char *dir = fuzz_tmpdir("gguf");
    tern_err_clear();
    tern_status st = tern_gguf_write_tokenizer(g, dir);
    fuzz_check_refusal(st, label);
    if (st != TERN_OK) return;
    tern_tok *tok = NULL;
    st = tern_tok_load(&tok, dir, NULL); /* may refuse (a vocabulary without every byte...), never crash */
    if (st != TERN_OK) FUZZ_REQUIRE(strstr(tern_errmsg(), dir) || st == TERN_ENOMEM, "message: %s", tern_errmsg());
    tern_tok_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tern_gguf *g = NULL;
    tern_err_clear();
    tern_status st = tern_gguf_from_buffer(&g, data, size, label);
    fuzz_check_refusal(st, label);
    if (st != TERN_OK) {
        FUZZ_REQUIRE(g == NULL, "a refused file still returned a handle");
        return 0;
    }
    unsigned sum = 0;
    for (size_t i = 0; i < tern_gguf_kv_count(g); i++) sum += touch_kv(tern_gguf_kv_at(g, i));
    size_t A = tern_gguf_alignment(g);
    FUZZ_REQUIRE(A && !(A & (A - 1)), "alignment %zu", A);
    for (size_t i = 0; i < tern_gguf_tensor_count(g); i++) {
        const tern_gguf_tensor *t = tern_gguf_tensor_at(g, i);
        FUZZ_REQUIRE(t->data >= data && t->nbytes <= size && t->data - data <= (ptrdiff_t)(size - t->nbytes), "tensor '%s' outside the file",
                     t->name);
        FUZZ_REQUIRE(tern_gguf_find_tensor(g, t->name) == t, "duplicate tensor name '%s'", t->name);
        for (size_t k = 0; k < t->nbytes; k++) sum += t->data[k];
        if (t->numel <= (1u << 20)) {
            float *f = malloc(t->numel ? t->numel * sizeof(float) : 1);
            FUZZ_REQUIRE(f, "malloc");
            tern_err_clear();
            st = tern_gguf_tensor_to_f32(g, t, f);
            fuzz_check_refusal(st, label);
            int conv = t->type == TERN_GGML_F32 || t->type == TERN_GGML_F16 || t->type == TERN_GGML_Q8_0;
            FUZZ_REQUIRE((st == TERN_OK) == conv, "tensor '%s' of type %u: to_f32 gave %d", t->name, t->type, (int)st);
            free(f);
        }
    }
    (void)sum;
    uint32_t u;
    float f;
    tern_gguf_str s;
    const tern_gguf_kv *arr;
    (void)tern_gguf_get_u32(g, "gpt2.block_count", &u);
    (void)tern_gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &f);
    (void)tern_gguf_get_str(g, "general.architecture", &s);
    (void)tern_gguf_get_arr(g, "tokenizer.ggml.tokens", TERN_GGUF_STRING, &arr);
    /* a model from it, as tern sample FILE.gguf does */
    tern_model *m = NULL;
    tern_err_clear();
    st = tern_gguf_load_model(g, &m, NULL);
    fuzz_check_refusal(st, label);
    FUZZ_REQUIRE((st == TERN_OK) == (m != NULL), "load_gpt2 status %d with model %p", (int)st, (void *)m);
    tern_model_free(m);
    if (tern_gguf_find_kv(g, "tokenizer.ggml.model")) tokenizer_round_trip(g);
    tern_gguf_free(g);
    return 0;
}
