/* libFuzzer target: the model shape of tern plan --config through tern_plan_model_from_buffer,
 * and the planner's arithmetic on what it accepts. Not the CPU benchmark. Format:
 * docs/COMPLIANCE.md "The planner". */
#include "fuzz.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *label = "fuzz/plan_config.json";
    tern_plan_model m;
    tern_err_clear();
    tern_status st = tern_plan_model_from_buffer(&m, (const char *)data, size, label);
    fuzz_check_refusal(st, label);
    if (st != TERN_OK) return 0;
    FUZZ_REQUIRE(m.cfg.n_layer >= 1 && m.cfg.n_head >= 1 && m.cfg.n_embd >= 1 && m.seq >= 1 && m.cfg.vocab_size >= 1 && m.batch >= 1,
                 "accepted a non-positive size");
    double p = tern_plan_params(&m), f = tern_plan_flops_per_token(&m);
    FUZZ_REQUIRE(isfinite(p) && p > 0 && isfinite(f) && f > 0, "params %g, flops/token %g", p, f);
    return 0;
}
