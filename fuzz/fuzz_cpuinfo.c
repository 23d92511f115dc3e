/* libFuzzer target: /proc/cpuinfo text (tern hw, the ledger's hardware summary, the planner)
 * through tern_hw_cpu_from_cpuinfo, and the peak figures computed from what it parsed. Not the
 * clock measurement. Format: Linux's /proc/cpuinfo for x86 and Arm. */
#include "fuzz.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *label = "fuzz/cpuinfo";
    tern_hw_cpu cpu;
    tern_err_clear();
    tern_status st = tern_hw_cpu_from_cpuinfo(&cpu, (const char *)data, size, label);
    fuzz_check_refusal(st, label);
    if (st != TERN_OK) return 0;
    FUZZ_REQUIRE(memchr(cpu.vendor, 0, sizeof cpu.vendor) && memchr(cpu.model, 0, sizeof cpu.model) &&
                     memchr(cpu.nominal_source, 0, sizeof cpu.nominal_source),
                 "an unterminated string");
    double tops[TERN_PREC_COUNT];
    char basis[256];
    tern_hw_cpu_peak(&cpu, 3.0, tops, basis, sizeof basis);
    for (int i = 0; i < TERN_PREC_COUNT; i++) FUZZ_REQUIRE(isfinite(tops[i]) && tops[i] >= 0, "peak[%d] = %g", i, tops[i]);
    FUZZ_REQUIRE(memchr(basis, 0, sizeof basis), "basis");
    tern_hw_class cls;
    tern_hw_classify(&cls, tops, 0, 0);
    return 0;
}
