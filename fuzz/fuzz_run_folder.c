/* libFuzzer target: what tern sample, eval and export read of a run folder: RUNDIR/config.json
 * (the model's shape), RUNDIR/ckpt/latest (which checkpoint) and then the checkpoint's weights,
 * through tern_io_open_model on a folder in memory (/dev/shm). Input: config.json, a NUL byte,
 * then the text of ckpt/latest (no NUL: no latest file). The folder holds one checkpoint,
 * ckpt/step-000100/model.safetensors, a real GPT-2 of 1 layer, 1 head, width 4, 4 positions and
 * 8 tokens, so a config.json of that shape opens and any other is refused with a message. Not
 * the safetensors reader itself (fuzz_safetensors.c). Format: docs/FORMATS.md "Run folder". */
#include "fuzz.h"

static tern_model_config tiny_config(void) { return tern_model_config_gpt2(1, 1, 4, 4, 8); }

static void write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    FUZZ_REQUIRE(f, "open %s", path);
    FUZZ_REQUIRE(n == 0 || fwrite(p, 1, n, f) == n, "write %s", path);
    fclose(f);
}

static void setup(const char *dir, char *cfg, char *latest, size_t n) {
    char ck[160], st[200];
    snprintf(cfg, n, "%s/config.json", dir);
    snprintf(latest, n, "%s/ckpt/latest", dir);
    snprintf(ck, sizeof ck, "%s/ckpt/step-000100", dir);
    FUZZ_REQUIRE(tern_mkdir_p(ck) == TERN_OK, "%s", tern_errmsg());
    tern_model *m;
    const tern_model_config tiny = tiny_config();
    FUZZ_REQUIRE(tern_model_init(&m, &tiny, NULL) == TERN_OK, "%s", tern_errmsg());
    size_t np = tern_model_num_params(m);
    float *p = malloc(np * sizeof(float));
    for (size_t i = 0; i < np; i++) p[i] = (float)i / 64;
    FUZZ_REQUIRE(tern_model_write(m, TERN_PARAMS, 0, np, p) == TERN_OK, "%s", tern_errmsg());
    free(p);
    tern_st_writer *w;
    FUZZ_REQUIRE(tern_st_writer_init(&w) == TERN_OK && tern_params_to_st(m, "", w) == TERN_OK, "%s", tern_errmsg());
    snprintf(st, sizeof st, "%s/model.safetensors", ck);
    FUZZ_REQUIRE(tern_st_write(w, st) == TERN_OK, "%s", tern_errmsg());
    tern_st_writer_free(w);
    tern_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir = fuzz_tmpdir("run");
    static char cfg[128], latest[128];
    if (!cfg[0]) setup(dir, cfg, latest, sizeof cfg);
    size_t k;
    fuzz_split(data, size, &k);
    write_file(cfg, data, k);
    if (k < size) write_file(latest, data + k + 1, size - k - 1);
    else unlink(latest);
    tern_model *m = NULL;
    tern_err_clear();
    tern_status st = tern_io_open_model(dir, 0, &m, NULL, NULL, NULL);
    fuzz_check_refusal(st, dir);
    FUZZ_REQUIRE((st == TERN_OK) == (m != NULL), "status %d with model %p", (int)st, (void *)m);
    if (m) {
        const tern_model_config *c = tern_model_cfg(m), tiny = tiny_config();
        FUZZ_REQUIRE(c->n_layer == tiny.n_layer && c->n_embd == tiny.n_embd && c->vocab_size == tiny.vocab_size,
                     "opened a model of another shape than its checkpoint's");
        float w5;
        FUZZ_REQUIRE(tern_model_read(m, TERN_PARAMS, 5, 1, &w5) == TERN_OK && w5 == 5.0f / 64, "the weights are not the checkpoint's");
    }
    tern_model_free(m);
    return 0;
}
