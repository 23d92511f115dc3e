/* libFuzzer target: a run's options as JSON (`tern train --config FILE`, and RUNDIR/config.json
 * on resume) through tern_train_opts_load_json, handed the input as an in-memory file. Not the
 * trainer. Whatever loads must pass or fail tern_train_opts_check with a message, and the
 * resolved JSON (tern_train_opts_to_json) must load back to the same options.
 * Format: include/tern/train.h TERN_TRAIN_OPTS. */
#include "fuzz.h"
#include "tern/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfile(data, size);
    tern_train_opts o;
    tern_train_opts_defaults(&o);
    tern_err_clear();
    tern_status st = tern_train_opts_load_json(&o, path);
    fuzz_check_refusal(st, path);
    if (st == TERN_OK) {
        tern_err_clear();
        tern_status ck = tern_train_opts_check(&o);
        FUZZ_REQUIRE(ck == TERN_OK || strcmp(tern_errmsg(), "no error"), "check refused without a message");
        /* the resolved configuration a run folder keeps must read back as the same options */
        char *j1 = tern_train_opts_to_json(&o);
        FUZZ_REQUIRE(j1, "to_json");
        tern_train_opts o2;
        tern_train_opts_defaults(&o2);
        path = fuzz_memfile((const uint8_t *)j1, strlen(j1));
        st = tern_train_opts_load_json(&o2, path);
        FUZZ_REQUIRE(st == TERN_OK, "the resolved options do not load back: %s\n%s", tern_errmsg(), j1);
        char *j2 = tern_train_opts_to_json(&o2);
        FUZZ_REQUIRE(j2 && !strcmp(j1, j2), "the resolved options change on reloading:\n%s\n---\n%s", j1, j2 ? j2 : "(null)");
        free(j1);
        free(j2);
        tern_train_opts_free(&o2);
    }
    tern_train_opts_free(&o);
    return 0;
}
