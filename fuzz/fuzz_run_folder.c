/* libFuzzer target: what tern sample, eval and export read of a run folder: RUNDIR/config.json
 * (the model's shape), RUNDIR/ckpt/latest (which checkpoint) and then the checkpoint's weights,
 * through tern_io_open_model on a folder in memory (/dev/shm). Input: config.json, a NUL byte,
 * then the text of ckpt/latest (no NUL: no latest file). The folder holds one checkpoint,
 * ckpt/step-000100/model.safetensors, a real GPT-2 of 1 layer, 1 head, width 4, 4 positions and
 * 8 tokens, so a config.json of that shape opens and any other is refused with a message. Not
 * the safetensors reader itself (fuzz_safetensors.c). Format: docs/FORMATS.md "Run folder". */
#include "fuzz.h"

static const tern_gpt2_config tiny = {.n_layer = 1, .n_head = 1, .n_embd = 4, .n_ctx = 4, .vocab_size = 8};

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
    tern_gpt2 *m;
    FUZZ_REQUIRE(tern_gpt2_init(&m, &tiny) == TERN_OK, "%s", tern_errmsg());
    float *p = tern_gpt2_params(m);
    for (size_t i = 0; i < tern_gpt2_config_num_params(&tiny); i++) p[i] = (float)i / 64;
    tern_st_writer *w;
    FUZZ_REQUIRE(tern_io_model_to_st(m, "", &w) == TERN_OK, "%s", tern_errmsg());
    snprintf(st, sizeof st, "%s/model.safetensors", ck);
    FUZZ_REQUIRE(tern_st_write(w, st) == TERN_OK, "%s", tern_errmsg());
    tern_st_writer_free(w);
    tern_gpt2_free(m);
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
    tern_gpt2 *m = NULL;
    tern_err_clear();
    tern_status st = tern_io_open_model(dir, 0, &m, NULL);
    fuzz_check_refusal(st, dir);
    FUZZ_REQUIRE((st == TERN_OK) == (m != NULL), "status %d with model %p", (int)st, (void *)m);
    if (m) {
        const tern_gpt2_config *c = tern_gpt2_cfg(m);
        FUZZ_REQUIRE(c->n_layer == tiny.n_layer && c->n_embd == tiny.n_embd && c->vocab_size == tiny.vocab_size,
                     "opened a model of another shape than its checkpoint's");
        FUZZ_REQUIRE(tern_gpt2_params(m)[5] == 5.0f / 64, "the weights are not the checkpoint's");
    }
    tern_gpt2_free(m);
    return 0;
}
