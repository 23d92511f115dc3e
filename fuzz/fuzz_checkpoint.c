/* libFuzzer target: a checkpoint's weights as tern loads them into a model, for a fixed GPT-2 of
 * 1 layer, 1 head, width 4, 4 positions and 8 tokens. The first input byte picks the file:
 *   even  model.safetensors (or a Hugging Face model.safetensors) through tern_st_from_buffer and
 *         tern_io_load_hf_weights: every tensor found by name, with or without "transformer.",
 *         shape-checked and converted; a tied lm_head compared; anything else refused;
 *   odd   optimizer.safetensors (the AdamW moments) through tern_ckpt_load_optimizer, from a
 *         checkpoint folder in memory (/dev/shm).
 * What loads must be exactly what the file holds. Not the safetensors parser's own checks
 * (fuzz_safetensors.c). Format: docs/FORMATS.md "Checkpoints". */
#include "fuzz.h"

static tern_model *m;
static tern_adamw opt;

static void load_params(const uint8_t *data, size_t size) {
    static const char *label = "fuzz/model.safetensors";
    tern_safetensors *st = NULL;
    tern_err_clear();
    tern_status rc = tern_st_from_buffer(&st, data, size, label);
    fuzz_check_refusal(rc, label);
    if (rc != TERN_OK) return;
    tern_err_clear();
    rc = tern_io_load_hf_weights(m, &st, 1);
    fuzz_check_refusal(rc, label);
    if (rc == TERN_OK) {
        /* an accepted f32 wte.weight must have been copied exactly */
        const tern_st_entry *e = tern_st_find(st, "wte.weight");
        if (!e) e = tern_st_find(st, "transformer.wte.weight");
        const tern_tensor *t = tern_model_find(m, "wte.weight");
        FUZZ_REQUIRE(e && t, "accepted without wte.weight");
        if (e->dtype == TERN_DT_F32) {
            float got[32];
            FUZZ_REQUIRE(t->numel <= 32 && tern_model_read(m, TERN_PARAMS, t->offset, t->numel, got) == TERN_OK, "read");
            FUZZ_REQUIRE(!memcmp(got, tern_st_data(st, e), t->numel * sizeof(float)), "wte.weight differs from the file's");
        }
    }
    tern_st_free(st);
}

static void load_optimizer(const uint8_t *data, size_t size) {
    const char *dir = fuzz_tmpdir("ckpt");
    static char path[128];
    if (!path[0]) snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    FILE *f = fopen(path, "wb");
    FUZZ_REQUIRE(f && (size == 0 || fwrite(data, 1, size, f) == size), "write %s", path);
    fclose(f);
    tern_err_clear();
    tern_status rc = tern_ckpt_load_optimizer(dir, m, &opt, NULL);
    fuzz_check_refusal(rc, path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!m) {
        const tern_model_config tiny = tern_model_config_gpt2(1, 1, 4, 4, 8);
        FUZZ_REQUIRE(tern_model_init(&m, &tiny, NULL) == TERN_OK, "%s", tern_errmsg());
        FUZZ_REQUIRE(tern_adamw_init(&opt, NULL, 0, tern_model_num_params(m)) == TERN_OK, "%s", tern_errmsg());
    }
    if (size < 1) return 0;
    if (data[0] & 1) load_optimizer(data + 1, size - 1);
    else load_params(data + 1, size - 1);
    return 0;
}
