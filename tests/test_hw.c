/* Tests of hw/: TPP, performance density and the 3A090 class, each asserted against numbers
 * computed here from the cited inputs (vendor datasheet figures, the rule's thresholds and its own
 * worked example); /proc/cpuinfo parsing; this machine's CPU; NVML through a stand-in library. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "check.h"
#include "tern.h"

static double tops1(double v, tern_prec p, double *tops) {
    for (int i = 0; i < TERN_PREC_COUNT; i++) tops[i] = 0;
    tops[p] = v;
    return v;
}

static void test_h100_sxm(void) {
    /* NVIDIA H100 datasheet, SXM: 1,979 TFLOPS BF16 "with sparsity"; dense is half. */
    double bf16 = 1979.0 / 2, want = bf16 * 16; /* TPP = 2 x MacTOPS x 16 = 15,832 */
    const tern_hw_known *k = tern_hw_known_find("H100 SXM");
    CHECK(k != NULL, "H100 SXM in the table");
    if (!k) return;
    CHECK(k->dense_tops[TERN_PREC_BF16] == bf16, "table bf16 %g, datasheet/2 %g", k->dense_tops[TERN_PREC_BF16], bf16);
    CHECK(k->tops_estimated == 0, "published figures");
    tern_hw_class c;
    tern_hw_classify(&c, k->dense_tops, k->die_area_mm2, k->datacenter);
    CHECK(fabs(c.tpp - want) < 1e-9, "TPP %f, want %f", c.tpp, want);
    CHECK(fabs(c.tpp - 15800) / 15800 < 0.01, "TPP near 15,800: %f", c.tpp);
    CHECK(c.cls == TERN_3A090_A && c.paragraph && !strcmp(c.paragraph, "3A090.a.1"), "class %s %s",
          tern_3a090_name(c.cls), c.paragraph ? c.paragraph : "-");
    CHECK(fabs(c.perf_density - want / 814) < 1e-12, "PD %f", c.perf_density);
    /* FP8 1,979 dense x 8 bits gives the same TPP: the rule takes the highest over precisions. */
    CHECK(fabs(k->dense_tops[TERN_PREC_FP8] * 8 - want) < 1e-9, "fp8 x 8 agrees");
    CHECK(!strcmp(c.reason, "3A090.a.1: TPP 15832.0 >= 4800"), "%s", c.reason);
}

static void test_h20(void) {
    /* H20 as partner listings report it: 148 TFLOPS BF16 dense; GH100 die, 814 mm^2. */
    double want = 148.0 * 16; /* 2,368 */
    const tern_hw_known *k = tern_hw_known_find("h20");
    CHECK(k != NULL, "H20 in the table (case-insensitive lookup)");
    if (!k) return;
    tern_hw_class c;
    tern_hw_classify(&c, k->dense_tops, k->die_area_mm2, k->datacenter);
    CHECK(fabs(c.tpp - want) < 1e-9, "TPP %f, want %f", c.tpp, want);
    CHECK(fabs(c.tpp - 2400) / 2400 < 0.02, "TPP near 2,400: %f", c.tpp);
    CHECK(c.cls != TERN_3A090_A, "not 3A090.a");
    /* 2,368 < 2,400 rules out b.1; PD 2,368/814 = 2.91 < 3.2 rules out b.2. */
    CHECK(c.cls == TERN_3A090_NOT, "class %s", tern_3a090_name(c.cls));
    CHECK(fabs(c.perf_density - want / 814) < 1e-12 && c.perf_density < 3.2, "PD %f", c.perf_density);
    CHECK(k->tops_estimated == 1, "H20 figures are marked estimated (no public datasheet)");
}

static void test_other_known(void) {
    static const char *const need[] = {"H100 SXM", "H100 PCIe", "H800", "H20", "A100", "A800", "L20",
                                       "RTX 4090", "B200", "Ascend 910B", "MI300X"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        const tern_hw_known *k = tern_hw_known_find(need[i]);
        CHECK(k && k->tops_source && k->tops_source[0] == '[' && k->die_source && k->die_source[0], "%s with sources",
              need[i]);
    }
    tern_hw_class c;
    /* A100 datasheet: 624 INT8 TOPS dense; GA100 826 mm^2: TPP 4,992, PD 6.04 (a.1, and a.2 too). */
    const tern_hw_known *a = tern_hw_known_find("A100");
    tern_hw_classify(&c, a->dense_tops, a->die_area_mm2, a->datacenter);
    CHECK(fabs(c.tpp - 624.0 * 8) < 1e-9 && c.cls == TERN_3A090_A, "A100 %f %s", c.tpp, tern_3a090_name(c.cls));
    CHECK(fabs(c.perf_density - 4992.0 / 826) < 1e-12 && c.perf_density >= 5.92, "A100 PD %f", c.perf_density);
    /* RTX 4090 (Ada whitepaper): 660.6 FP8 TFLOPS dense: TPP 5,284.8 >= 4800, so Note 2's
     * exclusion of non-datacenter parts does not apply. */
    const tern_hw_known *g = tern_hw_known_find("RTX 4090");
    tern_hw_classify(&c, g->dense_tops, g->die_area_mm2, g->datacenter);
    CHECK(g->datacenter == 0 && fabs(c.tpp - 660.6 * 8) < 1e-9 && c.cls == TERN_3A090_A, "4090 %f", c.tpp);
    /* L20: FP32 59.8 x 32 = 1,913.6 beats BF16 119.5 x 16 = 1,912; PD 1913.6/608.5 = 3.14 < 3.2. */
    const tern_hw_known *l = tern_hw_known_find("L20");
    tern_hw_classify(&c, l->dense_tops, l->die_area_mm2, l->datacenter);
    CHECK(fabs(c.tpp - 59.8 * 32) < 1e-9 && c.tpp_prec == TERN_PREC_FP32 && c.cls == TERN_3A090_NOT, "L20 %f %s",
          c.tpp, tern_3a090_name(c.cls));
    /* B200: die area not published: PD unknown, class still decided by TPP 4,500 x 8 = 36,000. */
    const tern_hw_known *b = tern_hw_known_find("B200");
    tern_hw_classify(&c, b->dense_tops, b->die_area_mm2, b->datacenter);
    CHECK(isnan(c.perf_density) && fabs(c.tpp - 36000) < 1e-9 && c.cls == TERN_3A090_A, "B200 %f", c.tpp);
    CHECK(tern_hw_known_find("H100") == NULL, "names are exact");
}

static void classify_at(double tpp, double area, int dc, tern_3a090 want, const char *para, int line) {
    double tops[TERN_PREC_COUNT];
    tops1(tpp / 16, TERN_PREC_BF16, tops);
    tern_hw_class c;
    tern_hw_classify(&c, tops, area, dc);
    CHECK(c.cls == want && ((!para && !c.paragraph) || (para && c.paragraph && !strcmp(para, c.paragraph))),
          "line %d: TPP %g area %g dc %d: got %s %s (%s)", line, tpp, area, dc, tern_3a090_name(c.cls),
          c.paragraph ? c.paragraph : "-", c.reason);
}
#define AT(tpp, area, dc, want, para) classify_at(tpp, area, dc, want, para, __LINE__)

static void test_thresholds(void) {
    /* The rule's worked example: 300 TFLOPS at 16 bits meets the 4800 threshold. */
    AT(4800, 0, 1, TERN_3A090_A, "3A090.a.1");
    double tops[TERN_PREC_COUNT];
    tops1(600, TERN_PREC_INT8, tops); /* ... and so do 600 TOPS at 8 bits */
    CHECK(tern_hw_tpp(tops, NULL) == 4800, "600 TOPS int8");
    AT(4799, 0, 1, TERN_3A090_UNDETERMINED, NULL); /* density decides and the area is unknown */
    AT(2960, 500, 1, TERN_3A090_A, "3A090.a.2");   /* PD exactly 5.92 */
    AT(2960, 500.0001, 1, TERN_3A090_B, "3A090.b.1"); /* PD just under 5.92, TPP >= 2400 */
    AT(1600, 500, 1, TERN_3A090_B, "3A090.b.2");   /* PD exactly 3.2 */
    AT(1600, 500.0001, 1, TERN_3A090_NOT, NULL);   /* PD just under 3.2, TPP < 2400 */
    AT(2400, 1500, 1, TERN_3A090_B, "3A090.b.1");  /* TPP 2400, PD exactly 1.6 */
    AT(2399.9, 1499.9, 1, TERN_3A090_NOT, NULL);   /* TPP just under 2400 */
    AT(2400, 1500.001, 1, TERN_3A090_NOT, NULL);   /* PD just under 1.6 */
    AT(1599.9, 10, 1, TERN_3A090_NOT, NULL);       /* below 1600 nothing applies */
    AT(4799, 100, 0, TERN_3A090_NOT, NULL);        /* Note 2: not for datacenters, TPP < 4800 */
    AT(4800, 100, 0, TERN_3A090_A, "3A090.a.1");   /* ... but not at 4800 */
    AT(4799, 100, -1, TERN_3A090_A, "3A090.a.2");  /* datacenter unknown: Note 2 not applied */
    for (int i = 0; i < TERN_PREC_COUNT; i++) tops[i] = 0;
    tern_hw_class c;
    tern_hw_classify(&c, tops, 100, 1);
    CHECK(c.cls == TERN_3A090_UNDETERMINED && isnan(c.tpp), "no figures: undetermined");
    CHECK(!strcmp(tern_3a090_name(TERN_3A090_NOT), "not 3A090") && !strcmp(tern_3a090_name(TERN_3A090_A), "3A090.a") &&
              !strcmp(tern_3a090_name(TERN_3A090_B), "3A090.b"),
          "class names");
}

static void test_nvml_names(void) {
    struct {
        const char *nvml, *want;
    } t[] = {{"NVIDIA H100 80GB HBM3", "H100 SXM"}, {"NVIDIA H100 PCIe", "H100 PCIe"}, {"NVIDIA H200", "H200 SXM"},
             {"NVIDIA H20", "H20"},   {"NVIDIA A100-SXM4-80GB", "A100"},        {"NVIDIA A800 80GB PCIe", "A800"},
             {"NVIDIA GeForce RTX 4090", "RTX 4090"}, {"NVIDIA H100 NVL", NULL},  {"NVIDIA GeForce RTX 4090 D", NULL},
             {"NVIDIA L40S", NULL}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const tern_hw_known *k = tern_hw_known_match_nvml(t[i].nvml);
        CHECK(t[i].want ? (k && !strcmp(k->name, t[i].want)) : k == NULL, "%s -> %s", t[i].nvml, k ? k->name : "none");
    }
}

static const char cpuinfo_spr[] =
    "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
    "model name\t: Intel(R) Xeon(R) Example 1234 @ 2.00GHz\ncpu MHz\t\t: 1900.000\nphysical id\t: 0\n"
    "core id\t\t: 0\nflags\t\t: fpu sse2 avx fma avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8\n\n"
    "processor\t: 1\nvendor_id\t: GenuineIntel\nphysical id\t: 0\ncore id\t\t: 1\n"
    "flags\t\t: fpu sse2 avx fma avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8\n\n"
    "processor\t: 2\nvendor_id\t: GenuineIntel\nphysical id\t: 0\ncore id\t\t: 0\n\n"
    "processor\t: 3\nvendor_id\t: GenuineIntel\nphysical id\t: 0\ncore id\t\t: 1\n";

static void test_cpuinfo(void) {
    tern_hw_cpu cpu;
    CHECK(tern_hw_cpu_from_cpuinfo(&cpu, cpuinfo_spr, strlen(cpuinfo_spr), "spr") == TERN_OK, "%s", tern_errmsg());
    CHECK(cpu.cores == 2 && cpu.threads == 4, "cores %d threads %d", cpu.cores, cpu.threads);
    CHECK(!strcmp(cpu.vendor, "GenuineIntel") && cpu.family == 6 && cpu.model_id == 143, "ids");
    CHECK(cpu.nominal_ghz == 2.0 && !strcmp(cpu.nominal_source, "model name"), "nominal %g", cpu.nominal_ghz);
    unsigned want = TERN_CPU_SSE2 | TERN_CPU_AVX | TERN_CPU_FMA | TERN_CPU_AVX2 | TERN_CPU_AVX512F |
                    TERN_CPU_AVX512_BF16 | TERN_CPU_AVX512_VNNI | TERN_CPU_AMX_BF16 | TERN_CPU_AMX_TILE |
                    TERN_CPU_AMX_INT8;
    CHECK(cpu.features == want, "features %x want %x", cpu.features, want);
    double tops[TERN_PREC_COUNT];
    char basis[256];
    tern_hw_cpu_peak(&cpu, 2.0, tops, basis, sizeof basis);
    /* AVX-512: 2 units x 16 fp32 lanes x 2 ops x 2 cores x 2 GHz = 0.256 TFLOPS. Intel AMX: 1024
     * bf16 ops per cycle per core: 2 x 2 GHz x 1024 = 4.096 TFLOPS; TPP = 4.096 x 16 = 65.536. */
    CHECK(fabs(tops[TERN_PREC_FP32] - 0.256) < 1e-12 && fabs(tops[TERN_PREC_BF16] - 4.096) < 1e-12 &&
              fabs(tops[TERN_PREC_INT8] - 8.192) < 1e-12,
          "fp32 %g bf16 %g int8 %g", tops[TERN_PREC_FP32], tops[TERN_PREC_BF16], tops[TERN_PREC_INT8]);
    CHECK(fabs(tern_hw_tpp(tops, NULL) - 65.536) < 1e-9, "TPP %g", tern_hw_tpp(tops, NULL));
    /* The same part with 56 cores at 1.9 GHz: AMX gives 56 x 1.9 x 1024 x 16 / 1000 = 1,743.1, in
     * the band where density decides; a CPU's die area is unknown, so tern says so. */
    cpu.cores = 56;
    tern_hw_cpu_peak(&cpu, 1.9, tops, basis, sizeof basis);
    tern_hw_class c;
    tern_hw_classify(&c, tops, 0, -1);
    CHECK(fabs(c.tpp - 56 * 1.9 * 1024 * 16 / 1000) < 1e-9 && c.cls == TERN_3A090_UNDETERMINED, "56c %f %s", c.tpp,
          tern_3a090_name(c.cls));
    CHECK(tern_hw_cpu_from_cpuinfo(&cpu, "", 0, "fixture") == TERN_EFORMAT, "empty refused");
    CHECK(!strcmp(tern_errmsg(), "fixture: no 'processor' lines: this is not /proc/cpuinfo text"), "%s", tern_errmsg());
    /* No trailing newline, no NUL: the parser must stop at n. */
    const char zen3[] = "processor : 0\nvendor_id : AuthenticAMD\ncpu family : 25\nmodel : 1\nflags : sse2 avx fma avx2";
    CHECK(tern_hw_cpu_from_cpuinfo(&cpu, zen3, sizeof zen3 - 1, "zen3") == TERN_OK, "zen3");
    tern_hw_cpu_peak(&cpu, 3.0, tops, basis, sizeof basis);
    /* Zen 3: 2 x 256-bit FMA units: 1 core x 3 GHz x 2 x 8 lanes x 2 ops = 0.096 TFLOPS fp32. */
    CHECK(cpu.cores == 1 && fabs(tops[TERN_PREC_FP32] - 0.096) < 1e-12 && tops[TERN_PREC_INT8] == 0, "zen3 %g",
          tops[TERN_PREC_FP32]);
    CHECK(strstr(basis, "AMD family 25") != NULL, "%s", basis);
}

/* Width in bits x units of the vector model, restated here from the published microarchitecture
 * figures so the test does not trust the library's table. */
static double macs_bits_per_cycle(const cJSON *d) {
    int avx512 = 0, fma = 0, avx2 = 0, avx = 0, sse2 = 0, asimd = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(d, "simd")) {
        avx512 |= !strcmp(s->valuestring, "avx512f");
        fma |= !strcmp(s->valuestring, "fma");
        avx2 |= !strcmp(s->valuestring, "avx2");
        avx |= !strcmp(s->valuestring, "avx");
        sse2 |= !strcmp(s->valuestring, "sse2");
        asimd |= !strcmp(s->valuestring, "asimd");
    }
    const cJSON *fam = cJSON_GetObjectItem(d, "family");
    int amd = !strcmp(cJSON_GetObjectItem(d, "vendor")->valuestring, "AuthenticAMD");
    int family = cJSON_IsNumber(fam) ? fam->valueint : -1;
    if (amd && family == 25 && fma) return 2 * 256; /* Zen 3 and Zen 4: two 256-bit FMA pipes */
    if (amd && family == 23 && fma) {
        int model = cJSON_GetObjectItem(d, "model_id")->valueint;
        return model < 0x30 ? 2 * 128 : 2 * 256;
    }
    if (avx512) return 2 * 512;
    if (fma && avx2) return 2 * 256;
    if (avx) return 256;
    if (sse2) return 128;
    if (asimd) return 2 * 128;
    return 0;
}

static void test_this_machine(void) {
    static char out[1 << 16];
    int rc = run_cmd(out, sizeof out, "%s hw --json", test_tern_bin());
    CHECK(rc == 0, "tern hw --json exit %d: %.300s", rc, out);
    cJSON *j = cJSON_Parse(out);
    CHECK(j != NULL, "JSON: %.200s", out);
    if (!j) return;
    const cJSON *devs = cJSON_GetObjectItem(j, "devices");
    const cJSON *d = cJSON_GetArrayItem(devs, 0);
    CHECK(d && !strcmp(cJSON_GetObjectItem(d, "kind")->valuestring, "cpu"), "first device is the CPU");
    if (d) {
        double cores = cJSON_GetObjectItem(d, "cores")->valuedouble;
        double threads = cJSON_GetObjectItem(d, "threads")->valuedouble;
        double ghz = cJSON_GetObjectItem(d, "clock_ghz")->valuedouble;
        double tpp = cJSON_GetObjectItem(d, "tpp")->valuedouble;
        /* TPP = 2 x MACs per cycle x clock x bit length, per core: MACs per cycle x bits is the
         * vector width in bits x units, whatever the data type. */
        double want = cores * 2 * macs_bits_per_cycle(d) * ghz / 1000;
        CHECK(threads == sysconf(_SC_NPROCESSORS_ONLN) && cores >= 1 && cores <= threads, "cores %g threads %g", cores,
              threads);
        CHECK(ghz > 0.5 && ghz < 6.5, "clock %g GHz", ghz);
        CHECK(want > 0 && fabs(tpp - want) < 1e-9 * want, "TPP %g, computed %g", tpp, want);
        CHECK(tpp < 100, "TPP %g below 100", tpp);
        CHECK(!strcmp(cJSON_GetObjectItem(d, "eccn_3a090")->valuestring, "not 3A090"), "not controlled");
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(d, "performance_density")), "PD null: CPU die area unknown");
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(d, "sources")) >= 2, "sources");
        CHECK(cJSON_IsString(cJSON_GetObjectItem(d, "name")), "name");
    }
    cJSON_Delete(j);
    /* The library call the ledger embeds gives the same shape. */
    cJSON *s = NULL;
    CHECK(tern_hw_summary_json(&s) == TERN_OK, "%s", tern_errmsg());
    const cJSON *d0 = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "devices"), 0);
    CHECK(d0 && cJSON_IsNumber(cJSON_GetObjectItem(d0, "tpp")) && cJSON_GetObjectItem(d0, "tpp")->valuedouble < 100 &&
              cJSON_IsString(cJSON_GetObjectItem(s, "host")),
          "summary");
    cJSON_Delete(s);
}

/* A stand-in for libnvidia-ml: two GPUs, one tern knows and one it does not. */
static const char fake_nvml[] =
    "#include <stdlib.h>\n#include <string.h>\n"
    "typedef struct { unsigned long long total, free, used; } mem_t;\n"
    "static const char *names[] = {\"NVIDIA H100 80GB HBM3\", \"NVIDIA H100 NVL\"};\n"
    "int nvmlInit_v2(void) { return getenv(\"FAKE_NVML_FAIL\") ? 9 : 0; }\n"
    "int nvmlShutdown(void) { return 0; }\n"
    "const char *nvmlErrorString(int r) { return r == 9 ? \"Driver Not Loaded\" : \"Unknown Error\"; }\n"
    "int nvmlDeviceGetCount_v2(unsigned *n) { *n = 2; return 0; }\n"
    "int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **d) { *d = (void *)(names + i); return 0; }\n"
    "int nvmlDeviceGetName(void *d, char *b, unsigned n) { strncpy(b, *(const char **)d, n); return 0; }\n"
    "int nvmlDeviceGetMemoryInfo(void *d, mem_t *m) { (void)d; m->total = 85899345920ULL; m->free = m->used = 0; "
    "return 0; }\n"
    "int nvmlDeviceGetUUID(void *d, char *b, unsigned n) { strncpy(b, d == (void *)names ? \"GPU-0\" : \"GPU-1\", n); "
    "return 0; }\n";

static void test_nvml_stand_in(void) {
    const char *dir = test_tmpdir("hw_nvml");
    char src[600], lib[600], out[1 << 16];
    snprintf(src, sizeof src, "%s/fake_nvml.c", dir);
    snprintf(lib, sizeof lib, "%s/libfake-nvml.so", dir);
    FILE *f = fopen(src, "w");
    CHECK(f != NULL, "write %s", src);
    if (!f) return;
    fputs(fake_nvml, f);
    fclose(f);
    int rc = run_cmd(out, sizeof out, "cc -shared -fPIC -o '%s' '%s'", lib, src);
    CHECK(rc == 0, "compile the stand-in: %s", out);
    if (rc) return;
    rc = run_cmd(out, sizeof out, "TERN_NVML_LIB='%s' %s hw --json", lib, test_tern_bin());
    cJSON *j = cJSON_Parse(out);
    CHECK(rc == 0 && j, "exit %d: %.300s", rc, out);
    if (!j) return;
    const cJSON *devs = cJSON_GetObjectItem(j, "devices");
    CHECK(cJSON_GetArraySize(devs) == 3, "cpu + 2 gpus: %d", cJSON_GetArraySize(devs));
    const cJSON *g = cJSON_GetArrayItem(devs, 1), *u = cJSON_GetArrayItem(devs, 2);
    if (g && u) {
        CHECK(!strcmp(cJSON_GetObjectItem(g, "kind")->valuestring, "gpu") &&
                  !strcmp(cJSON_GetObjectItem(g, "table_entry")->valuestring, "H100 SXM") &&
                  cJSON_GetObjectItem(g, "tpp")->valuedouble == 1979.0 / 2 * 16 &&
                  !strcmp(cJSON_GetObjectItem(g, "eccn_3a090")->valuestring, "3A090.a") &&
                  cJSON_GetObjectItem(g, "memory_bytes")->valuedouble == 85899345920.0 &&
                  !strcmp(cJSON_GetObjectItem(g, "uuid")->valuestring, "GPU-0"),
              "known GPU: %s", cJSON_PrintUnformatted(g));
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(u, "tpp")) &&
                  !strcmp(cJSON_GetObjectItem(u, "eccn_3a090")->valuestring, "undetermined") &&
                  !strcmp(cJSON_GetObjectItem(u, "name")->valuestring, "NVIDIA H100 NVL"),
              "unknown GPU reported without figures");
    }
    CHECK(strstr(cJSON_GetObjectItem(j, "nvml")->valuestring, ": 2 devices, 2 described") != NULL, "%s",
          cJSON_GetObjectItem(j, "nvml")->valuestring);
    cJSON_Delete(j);
    rc = run_cmd(out, sizeof out, "FAKE_NVML_FAIL=1 TERN_NVML_LIB='%s' %s hw --json", lib, test_tern_bin());
    j = cJSON_Parse(out);
    CHECK(rc == 0 && j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "devices")) == 1, "failed init: cpu only");
    if (j) {
        char want[800];
        snprintf(want, sizeof want, "%s loaded, but nvmlInit failed: Driver Not Loaded", lib);
        CHECK(!strcmp(cJSON_GetObjectItem(j, "nvml")->valuestring, want), "%s",
              cJSON_GetObjectItem(j, "nvml")->valuestring);
    }
    cJSON_Delete(j);
}

static void test_known_json_and_cli(void) {
    cJSON *j;
    CHECK(tern_hw_known_json(&j) == TERN_OK, "%s", tern_errmsg());
    const cJSON *d;
    int n = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(j, "devices")) {
        n++;
        const char *cls = cJSON_GetObjectItem(d, "eccn_3a090")->valuestring;
        CHECK(!strcmp(cls, "3A090.a") || !strcmp(cls, "3A090.b") || !strcmp(cls, "not 3A090"), "%s", cls);
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(d, "tpp")), "tpp");
        const cJSON *pd = cJSON_GetObjectItem(d, "performance_density");
        const cJSON *area = cJSON_GetObjectItem(d, "die_area_mm2");
        CHECK(cJSON_IsNull(pd) == cJSON_IsNull(area), "PD null exactly where the area is unknown");
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(d, "sources")) == 3, "sources");
        const char *st = cJSON_GetObjectItem(d, "throughput_figures")->valuestring;
        CHECK(!strcmp(st, "published") || !strcmp(st, "estimated"), "%s", st);
    }
    CHECK(n == (int)tern_hw_known_count() && n >= 11, "%d devices", n);
    cJSON_Delete(j);
    char out[4096];
    int rc = run_cmd(out, sizeof out, "%s hw --bogus", test_tern_bin());
    CHECK(rc == 2 && !strcmp(out, "tern hw: unknown option '--bogus' (see tern hw --help)\n"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s hw --known | grep '^H20 '", test_tern_bin());
    CHECK(rc == 0 && strstr(out, "2,368.0") && strstr(out, "not 3A090"), "table row: %s", out);
}

int main(void) {
    RUN(test_h100_sxm);
    RUN(test_h20);
    RUN(test_other_known);
    RUN(test_thresholds);
    RUN(test_nvml_names);
    RUN(test_cpuinfo);
    RUN(test_this_machine);
    RUN(test_nvml_stand_in);
    RUN(test_known_json_and_cli);
    return check_exit();
}
