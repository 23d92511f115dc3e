/* libFuzzer target: a mixture written as text ("DIR:WEIGHT,...") through tern_mixture_spec_parse.
 * What it accepts must have a folder name and a positive weight per entry and parse again to the
 * same when written back with each weight in full; a refusal names the text. Not tern_mixture
 * itself (tests/test_corpus.c). Format: docs/FORMATS.md "Data mixtures". */
#include <math.h>

#include "fuzz.h"
#include "tern/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (memchr(data, 0, size) || size > 4096) return 0; /* a C string, as a command line gives it */
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    tern_mixture_spec sp, again;
    tern_err_clear();
    tern_status st = tern_mixture_spec_parse(&sp, s);
    if (st != TERN_OK) {
        FUZZ_REQUIRE(st == TERN_EINVAL && strstr(tern_errmsg(), "mixture \""), "status %d: %s", (int)st, tern_errmsg());
        free(s);
        return 0;
    }
    FUZZ_REQUIRE(sp.n >= 1, "no entries");
    char *w = malloc(size * 2 + 64 * sp.n + 1);
    size_t k = 0;
    for (size_t i = 0; i < sp.n; i++) {
        FUZZ_REQUIRE(sp.dirs[i][0] && !strchr(sp.dirs[i], ',') && sp.weights[i] > 0 && isfinite(sp.weights[i]), "entry %zu", i);
        k += (size_t)sprintf(w + k, "%s%s:%.17g", i ? "," : "", sp.dirs[i], sp.weights[i]);
    }
    FUZZ_REQUIRE(tern_mixture_spec_parse(&again, w) == TERN_OK && again.n == sp.n, "written back, it does not parse: %s", w);
    for (size_t i = 0; i < sp.n; i++)
        FUZZ_REQUIRE(!strcmp(again.dirs[i], sp.dirs[i]) && again.weights[i] == sp.weights[i], "entry %zu changed", i);
    tern_mixture_spec_free(&again);
    tern_mixture_spec_free(&sp);
    free(w);
    free(s);
    return 0;
}
