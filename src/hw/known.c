/* The accelerators tern knows: peak dense throughput per precision, logic die area, and where each
 * figure comes from. Not a measurement and not a classification ruling: every figure here is
 * copied from a source named in docs/COMPLIANCE.md (section "Sources"), marked published (the
 * vendor's own datasheet) or estimated (third-party reports, die shots, or arithmetic on them).
 * Vendors print tensor figures "with sparsity"; 3A090's Technical Notes count the dense rate, so
 * those figures are halved here and the source says so. */
#include "tern/json.h"
#include "tern/hw.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Index order: FP64, FP32, TF32, BF16, FP16, FP8, INT8, FP4, INT4 (tern_prec). 0 = not given. */
static const tern_hw_known known[] = {
    {"H100 SXM", "NVIDIA", 1,
     {67, 67, 494.5, 989.5, 989.5, 1979, 1979, 0, 0},
     "[NV-H100] NVIDIA H100 Tensor Core GPU datasheet, SXM column: 1,979 BF16/FP16 and 3,958 FP8/INT8 "
     "\"with sparsity\", halved to dense; FP64 tensor and FP32 67",
     0, 814, "[NV-HOPPER] NVIDIA: GH100 die 814 mm^2 (TSMC 4N, FinFET)", 0, NULL,
     {"H100 80GB HBM3", "H100 SXM5*", NULL}},
    {"H100 PCIe", "NVIDIA", 1,
     {51, 51, 378, 756.5, 756.5, 1513, 1513, 0, 0},
     "[NV-H100] NVIDIA H100 Tensor Core GPU datasheet, PCIe column: 1,513 BF16/FP16 and 3,026 FP8/INT8 "
     "\"with sparsity\", halved to dense; FP64 tensor and FP32 51",
     0, 814, "[NV-HOPPER] NVIDIA: GH100 die 814 mm^2 (TSMC 4N, FinFET)", 0, NULL, {"H100 PCIe", NULL}},
    {"H200 SXM", "NVIDIA", 1,
     {67, 67, 494.5, 989.5, 989.5, 1979, 1979, 0, 0},
     "[NV-H200] NVIDIA H200 datasheet, SXM column: 1,979 BF16/FP16 and 3,958 FP8/INT8 \"with sparsity\", "
     "halved to dense",
     0, 814, "[NV-HOPPER] GH100 die 814 mm^2; the H200 uses the GH100 die", 1, NULL, {"H200", NULL}},
    {"H800", "NVIDIA", 1,
     {0, 67, 494.5, 989.5, 989.5, 1979, 1979, 0, 0},
     "[CSET-2023][R10] reported: the H800 keeps H100 SXM tensor throughput and cuts NVLink to 400 GB/s; "
     "NVIDIA published no separate H800 datasheet",
     1, 814, "[NV-HOPPER][R10] reported: GH100 die, 814 mm^2", 1,
     "Outside the 2022 rule (interconnect below 600 GB/s); 3A090.a since the 2023 rule dropped the interconnect test",
     {"H800", "H800 80GB HBM3", NULL}},
    {"H20", "NVIDIA", 1,
     {0, 44, 74, 148, 148, 296, 296, 0, 0},
     "[PRESS-H20] partner listings reported by Tom's Hardware (2023-11): 148 BF16/FP16 TFLOPS, 296 FP8 "
     "TFLOPS / INT8 TOPS, 44 FP32; NVIDIA published no public datasheet",
     1, 814, "[PRESS-H20] reported: a cut-down GH100 die, 814 mm^2", 1,
     "A separate U.S. licence requirement was notified to NVIDIA for the H20 in April 2025 (NVIDIA 8-K); "
     "that requirement is not a 3A090 parameter and tern does not model it",
     {"H20", "H20 *", NULL}},
    {"A100", "NVIDIA", 1,
     {19.5, 19.5, 156, 312, 312, 0, 624, 0, 0},
     "[NV-A100] NVIDIA A100 Tensor Core GPU datasheet: 312 BF16/FP16 TFLOPS and 624 INT8 TOPS dense "
     "(624/1,248 with sparsity); FP64 tensor and FP32 19.5",
     0, 826, "[NV-A100] NVIDIA A100 whitepaper: GA100 die 826 mm^2 (TSMC N7, FinFET)", 0, NULL,
     {"A100-SXM4-*", "A100-PCIE-*", "A100 80GB PCIe", "A100-SXM-*", NULL}},
    {"A800", "NVIDIA", 1,
     {19.5, 19.5, 156, 312, 312, 0, 624, 0, 0},
     "[CSET-2023][R10] reported: the A800 keeps A100 throughput and cuts NVLink to 400 GB/s", 1, 826,
     "[R10] reported: GA100 die, 826 mm^2", 1,
     "Outside the 2022 rule (interconnect below 600 GB/s); 3A090.a since the 2023 rule",
     {"A800-SXM4-*", "A800 80GB PCIe", "A800-PCIE-*", NULL}},
    {"L20", "NVIDIA", 1,
     {0, 59.8, 59.8, 119.5, 119.5, 239, 239, 0, 0},
     "[PRESS-H20] partner listings reported by Tom's Hardware (2023-11): 119.5 BF16/FP16 TFLOPS, "
     "239 FP8 TFLOPS / INT8 TOPS",
     1, 608.5,
     "[NV-ADA] AD102 die 608.5 mm^2; that the L20 uses a full AD102 die is tern's assumption", 1,
     "PD 3.14 sits just under the 3A090.b.2 floor of 3.2: a smaller applicable die area would change the "
     "class",
     {"L20", NULL}},
    {"RTX 4090", "NVIDIA", 0,
     {0, 82.6, 82.6, 165.2, 330.3, 660.6, 660.6, 0, 0},
     "[NV-ADA] NVIDIA Ada Lovelace architecture whitepaper, GeForce RTX 4090: 330.3 FP16 (FP16 "
     "accumulate), 165.2 BF16, 660.6 FP8 TFLOPS and 660.6 INT8 TOPS dense",
     0, 608.5, "[NV-ADA] AD102 die 608.5 mm^2", 0,
     "Not designed or marketed for datacenters, but TPP >= 4800, so Note 2 does not exclude it "
     "(License Exception NAC is the path the rule gives; the RTX 4090 D was cut below 4800)",
     {"GeForce RTX 4090", NULL}},
    {"B200", "NVIDIA", 1,
     {37, 0, 1125, 2250, 2250, 4500, 4500, 9000, 0},
     "[NV-B200] NVIDIA HGX B200 specifications (8-GPU system, figures with sparsity): per GPU 4.5 PF "
     "BF16, 9 PF FP8/INT8, 18 PF FP4, halved to dense",
     0, 0, "not published: two reticle-sized dies on one package; tern has no area", 1, NULL, {"B200", NULL}},
    {"Ascend 910B", "Huawei", 1,
     {0, 0, 0, 0, 320, 0, 640, 0, 0},
     "[PRESS-910B] reported: about 320 FP16 TFLOPS and 640 INT8 TOPS; figures vary by SKU "
     "(280 to 376) and Huawei publishes no datasheet for the part",
     1, 665.61, "[PRESS-910B] die-shot measurement of the compute die, 665.61 mm^2", 1,
     "BIS guidance of May 2025 names Ascend 910B/910C/910D under General Prohibition 10; that is a "
     "use-side risk, separate from the 3A090 parameters",
     {NULL}},
    {"MI300X", "AMD", 1,
     {163.4, 163.4, 653.7, 1307.4, 1307.4, 2614.9, 2614.9, 0, 0},
     "[AMD-MI300X] AMD Instinct MI300X data sheet: 1,307.4 BF16/FP16 and 2,614.9 FP8 TFLOPS / INT8 TOPS "
     "dense",
     0, 0, "not published: 8 compute dies (N5) and 4 I/O dies (N6); tern has no total area", 1, NULL,
     {NULL}},
};

size_t tern_hw_known_count(void) { return sizeof known / sizeof known[0]; }

const tern_hw_known *tern_hw_known_at(size_t i) { return i < tern_hw_known_count() ? &known[i] : NULL; }

const tern_hw_known *tern_hw_known_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < tern_hw_known_count(); i++)
        if (!strcasecmp(known[i].name, name)) return &known[i];
    return NULL;
}

/* An NVML name matches a pattern exactly, or by prefix when the pattern ends in '*'. */
static int nvml_name_matches(const char *name, const char *pat) {
    size_t n = strlen(pat);
    if (n && pat[n - 1] == '*') return strncasecmp(name, pat, n - 1) == 0;
    return strcasecmp(name, pat) == 0;
}

const tern_hw_known *tern_hw_known_match_nvml(const char *nvml_name) {
    if (!nvml_name) return NULL;
    const char *s = nvml_name;
    while (isspace((unsigned char)*s)) s++;
    if (!strncasecmp(s, "NVIDIA ", 7)) s += 7;
    for (size_t i = 0; i < tern_hw_known_count(); i++)
        for (int k = 0; k < 6 && known[i].nvml_names[k]; k++)
            if (nvml_name_matches(s, known[i].nvml_names[k])) return &known[i];
    return NULL;
}
