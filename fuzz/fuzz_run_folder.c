/* libFuzzer target: what tern sample, eval and export read of a run folder before the weights:
 * RUNDIR/config.json (the model's shape) and RUNDIR/ckpt/latest (which checkpoint), through
 * tern_io_open_model on a folder in memory (/dev/shm). Input: config.json, a NUL byte, then
 * the text of ckpt/latest (no NUL: no latest file). No checkpoint folder exists, so a run
 * folder that gets past both files is refused for its missing checkpoint, before any model is
 * allocated. Not the weights (fuzz_safetensors.c). Format: docs/FORMATS.md "Run folder". */
#include "fuzz.h"

#include <sys/stat.h>

static void write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    FUZZ_REQUIRE(f, "open %s", path);
    FUZZ_REQUIRE(n == 0 || fwrite(p, 1, n, f) == n, "write %s", path);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *dir = fuzz_tmpdir("run");
    static char cfg[128], ckdir[128], latest[160];
    if (!cfg[0]) {
        snprintf(cfg, sizeof cfg, "%s/config.json", dir);
        snprintf(ckdir, sizeof ckdir, "%s/ckpt", dir);
        snprintf(latest, sizeof latest, "%s/ckpt/latest", dir);
        FUZZ_REQUIRE(tern_mkdir_p(ckdir) == TERN_OK, "%s", tern_errmsg());
    }
    size_t k;
    fuzz_split(data, size, &k);
    write_file(cfg, data, k);
    if (k < size) write_file(latest, data + k + 1, size - k - 1);
    else unlink(latest);
    tern_gpt2 *m = NULL;
    tern_err_clear();
    tern_status st = tern_io_open_model(dir, 0, &m, NULL);
    FUZZ_REQUIRE(st != TERN_OK && m == NULL, "a run folder without checkpoints opened");
    fuzz_check_refusal(st, dir);
    return 0;
}
