/* The hardware probe and the 3A090 arithmetic: this machine's CPU (from /proc/cpuinfo, clock
 * measured), memory, and Nvidia GPUs through NVML loaded at run time; TPP and performance density
 * as the Technical Notes to ECCN 3A090 define them, and the class the 2023 thresholds give.
 * Not a classification ruling and not legal advice: docs/COMPLIANCE.md says what each figure
 * means and where it comes from (88 FR 73458; vendor datasheets). */
#include "tern/json.h"
#include "tern/hw.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- precisions ---- */

static const char *const prec_names[TERN_PREC_COUNT] = {"fp64", "fp32", "tf32", "bf16", "fp16",
                                                         "fp8",  "int8", "fp4",  "int4"};
static const int prec_bits[TERN_PREC_COUNT] = {64, 32, 32, 16, 16, 8, 8, 4, 4};

const char *tern_prec_name(tern_prec p) { return (unsigned)p < TERN_PREC_COUNT ? prec_names[p] : "?"; }
int tern_prec_bits(tern_prec p) { return (unsigned)p < TERN_PREC_COUNT ? prec_bits[p] : 0; }

int tern_prec_from_name(const char *name, tern_prec *p) {
    for (int i = 0; name && i < TERN_PREC_COUNT; i++)
        if (!strcasecmp(name, prec_names[i])) {
            *p = (tern_prec)i;
            return 0;
        }
    return -1;
}

const char *tern_3a090_name(tern_3a090 c) {
    switch (c) {
    case TERN_3A090_NOT: return "not 3A090";
    case TERN_3A090_B: return "3A090.b";
    case TERN_3A090_A: return "3A090.a";
    case TERN_3A090_UNDETERMINED: return "undetermined";
    }
    return "undetermined";
}

/* ---- TPP, performance density, class ---- */

/* Where several precisions give the same TPP, the label goes to the first in this order: the
 * 16-bit formats the rule's own example uses, then narrower, then wider; TF32 last, since its
 * operands are 19 bits carried in 32. */
static const tern_prec tpp_order[TERN_PREC_COUNT] = {TERN_PREC_BF16, TERN_PREC_FP16, TERN_PREC_FP8,
                                                      TERN_PREC_INT8, TERN_PREC_FP4,  TERN_PREC_INT4,
                                                      TERN_PREC_FP32, TERN_PREC_FP64, TERN_PREC_TF32};

double tern_hw_tpp(const double dense_tops[TERN_PREC_COUNT], tern_prec *best) {
    double tpp = NAN;
    tern_prec b = TERN_PREC_BF16;
    for (int i = 0; i < TERN_PREC_COUNT; i++) {
        tern_prec p = tpp_order[i];
        if (!(dense_tops[p] > 0)) continue;
        /* Technical Note: TPP = 2 x MacTOPS x bit length. Datasheets count a MAC as two
         * operations, so 2 x MacTOPS is the dense TOPS/TFLOPS figure itself. */
        double v = dense_tops[p] * prec_bits[p];
        if (isnan(tpp) || v > tpp) {
            tpp = v;
            b = p;
        }
    }
    if (best) *best = b;
    return tpp;
}

void tern_hw_classify(tern_hw_class *out, const double dense_tops[TERN_PREC_COUNT], double die_area_mm2,
                      int datacenter) {
    tern_prec best;
    double tpp = tern_hw_tpp(dense_tops, &best);
    tern_hw_classify_tpp(out, tpp, best, die_area_mm2, datacenter);
}

void tern_hw_classify_tpp(tern_hw_class *out, double tpp, tern_prec prec, double die_area_mm2, int datacenter) {
    memset(out, 0, sizeof *out);
    out->tpp = tpp;
    out->tpp_prec = prec;
    out->perf_density = NAN;
    out->paragraph = NULL;
    if (isnan(tpp)) {
        out->cls = TERN_3A090_UNDETERMINED;
        snprintf(out->reason, sizeof out->reason, "no throughput figure is known, so TPP cannot be computed");
        return;
    }
    int have_pd = die_area_mm2 > 0;
    if (have_pd) out->perf_density = tpp / die_area_mm2;
    double pd = out->perf_density;
    if (datacenter == 0 && tpp < TERN_3A090_A1_TPP) {
        out->cls = TERN_3A090_NOT;
        snprintf(out->reason, sizeof out->reason,
                 "Note 2 to 3A090: not designed or marketed for datacenters and TPP %.1f < 4800", tpp);
    } else if (tpp >= TERN_3A090_A1_TPP) {
        out->cls = TERN_3A090_A;
        out->paragraph = "3A090.a.1";
        snprintf(out->reason, sizeof out->reason, "3A090.a.1: TPP %.1f >= 4800", tpp);
    } else if (tpp < TERN_3A090_A2_TPP) {
        out->cls = TERN_3A090_NOT;
        snprintf(out->reason, sizeof out->reason, "TPP %.1f < 1600, below every 3A090.a/.b parameter", tpp);
    } else if (!have_pd) {
        out->cls = TERN_3A090_UNDETERMINED;
        snprintf(out->reason, sizeof out->reason,
                 "TPP %.1f lies in [1600, 4800), where the class depends on performance density, and the "
                 "applicable die area is unknown",
                 tpp);
    } else if (pd >= TERN_3A090_A2_PD) {
        out->cls = TERN_3A090_A;
        out->paragraph = "3A090.a.2";
        snprintf(out->reason, sizeof out->reason, "3A090.a.2: TPP %.1f >= 1600 and performance density %.3f >= 5.92",
                 tpp, pd);
    } else if (tpp >= TERN_3A090_B1_TPP && pd >= TERN_3A090_B1_PD) {
        out->cls = TERN_3A090_B;
        out->paragraph = "3A090.b.1";
        snprintf(out->reason, sizeof out->reason,
                 "3A090.b.1: 2400 <= TPP %.1f < 4800 and 1.6 <= performance density %.3f < 5.92", tpp, pd);
    } else if (pd >= TERN_3A090_B2_PD) {
        out->cls = TERN_3A090_B;
        out->paragraph = "3A090.b.2";
        snprintf(out->reason, sizeof out->reason,
                 "3A090.b.2: TPP %.1f >= 1600 and 3.2 <= performance density %.3f < 5.92", tpp, pd);
    } else {
        out->cls = TERN_3A090_NOT;
        snprintf(out->reason, sizeof out->reason,
                 "TPP %.1f with performance density %.3f meets neither 3A090.a (TPP >= 4800, or >= 1600 with "
                 "density >= 5.92) nor 3A090.b (TPP >= 2400 with density >= 1.6, or density >= 3.2)",
                 tpp, pd);
    }
}

/* ---- /proc/cpuinfo ---- */

/* Splits "key : value" lines. Calls fn for each; stops at n bytes. */
typedef void (*cpuinfo_fn)(void *ctx, const char *key, size_t nk, const char *val, size_t nv);
static void cpuinfo_lines(const char *text, size_t n, cpuinfo_fn fn, void *ctx) {
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && text[e] != '\n') e++;
        const char *colon = memchr(text + i, ':', e - i);
        if (colon) {
            size_t k0 = i, k1 = (size_t)(colon - text);
            while (k1 > k0 && isspace((unsigned char)text[k1 - 1])) k1--;
            size_t v0 = k1 + 1;
            while (v0 < e && (text[v0] == ':' || isspace((unsigned char)text[v0]))) v0++;
            size_t v1 = e;
            while (v1 > v0 && isspace((unsigned char)text[v1 - 1])) v1--;
            fn(ctx, text + k0, k1 - k0, text + v0, v1 - v0);
        } else {
            fn(ctx, "", 0, "", 0); /* a blank line ends a processor block */
        }
        i = e + 1;
    }
}

typedef struct {
    tern_hw_cpu *cpu;
    int nproc;
    long phys, core;   /* of the current processor block; -1 unknown */
    long pairs[4096][2];
    int npairs;
    int have_core_ids;
    int overflow;
    double mhz_max;
    int features_done;
} cpuinfo_ctx;

static int key_is(const char *k, size_t nk, const char *want) { return strlen(want) == nk && !memcmp(k, want, nk); }

static void copy_val(char *out, size_t n, const char *v, size_t nv) {
    if (nv >= n) nv = n - 1;
    memcpy(out, v, nv);
    out[nv] = 0;
}

static long parse_long(const char *v, size_t nv) {
    char buf[32];
    copy_val(buf, sizeof buf, v, nv);
    char *end;
    errno = 0;
    long x = strtol(buf, &end, 0);
    if (errno || end == buf) return -1;
    return x;
}

static void note_pair(cpuinfo_ctx *c) {
    if (c->core < 0) return;
    for (int i = 0; i < c->npairs; i++)
        if (c->pairs[i][0] == c->phys && c->pairs[i][1] == c->core) return;
    if (c->npairs < 4096) {
        c->pairs[c->npairs][0] = c->phys;
        c->pairs[c->npairs][1] = c->core;
        c->npairs++;
    } else {
        c->overflow = 1;
    }
}

static void set_features(tern_hw_cpu *cpu, const char *v, size_t nv) {
    static const struct {
        const char *flag;
        unsigned bit;
    } map[] = {{"sse2", TERN_CPU_SSE2},
               {"avx", TERN_CPU_AVX},
               {"fma", TERN_CPU_FMA},
               {"avx2", TERN_CPU_AVX2},
               {"avx512f", TERN_CPU_AVX512F},
               {"avx512_bf16", TERN_CPU_AVX512_BF16},
               {"avx512_vnni", TERN_CPU_AVX512_VNNI},
               {"avx_vnni", TERN_CPU_AVX_VNNI},
               {"amx_tile", TERN_CPU_AMX_TILE},
               {"amx_bf16", TERN_CPU_AMX_BF16},
               {"amx_int8", TERN_CPU_AMX_INT8},
               {"asimd", TERN_CPU_ASIMD},
               {"sve", TERN_CPU_SVE}};
    size_t i = 0;
    while (i < nv) {
        while (i < nv && isspace((unsigned char)v[i])) i++;
        size_t s = i;
        while (i < nv && !isspace((unsigned char)v[i])) i++;
        for (size_t m = 0; m < sizeof map / sizeof map[0]; m++)
            if (key_is(v + s, i - s, map[m].flag)) cpu->features |= map[m].bit;
    }
}

static void cpuinfo_cb(void *ctx, const char *k, size_t nk, const char *v, size_t nv) {
    cpuinfo_ctx *c = ctx;
    tern_hw_cpu *cpu = c->cpu;
    if (nk == 0) return;
    if (key_is(k, nk, "processor")) {
        if (c->nproc > 0) note_pair(c);
        c->nproc++;
        c->phys = 0;
        c->core = -1;
    } else if (key_is(k, nk, "vendor_id")) {
        if (!cpu->vendor[0]) copy_val(cpu->vendor, sizeof cpu->vendor, v, nv);
    } else if (key_is(k, nk, "CPU implementer")) {
        if (!cpu->vendor[0]) {
            long impl = parse_long(v, nv);
            if (impl == 0x41)
                snprintf(cpu->vendor, sizeof cpu->vendor, "ARM");
            else
                snprintf(cpu->vendor, sizeof cpu->vendor, "implementer 0x%lx", impl);
        }
    } else if (key_is(k, nk, "model name")) {
        if (!cpu->model[0]) copy_val(cpu->model, sizeof cpu->model, v, nv);
    } else if (key_is(k, nk, "cpu family")) {
        if (cpu->family < 0) cpu->family = (int)parse_long(v, nv);
    } else if (key_is(k, nk, "model")) {
        if (cpu->model_id < 0) cpu->model_id = (int)parse_long(v, nv);
    } else if (key_is(k, nk, "physical id")) {
        c->phys = parse_long(v, nv);
    } else if (key_is(k, nk, "core id")) {
        c->core = parse_long(v, nv);
        c->have_core_ids = 1;
    } else if (key_is(k, nk, "cpu MHz")) {
        char buf[32];
        copy_val(buf, sizeof buf, v, nv);
        double mhz = strtod(buf, NULL);
        if (mhz > c->mhz_max) c->mhz_max = mhz;
    } else if (key_is(k, nk, "flags") || key_is(k, nk, "Features")) {
        if (!c->features_done) set_features(cpu, v, nv);
        c->features_done = 1;
    }
}

tern_status tern_hw_cpu_from_cpuinfo(tern_hw_cpu *out, const char *text, size_t n, const char *what) {
    memset(out, 0, sizeof *out);
    out->family = out->model_id = -1;
    cpuinfo_ctx *c = calloc(1, sizeof *c);
    if (!c) return tern_err(TERN_ENOMEM, "out of memory parsing %s", what);
    c->cpu = out;
    c->core = -1;
    cpuinfo_lines(text, n, cpuinfo_cb, c);
    if (c->nproc > 0) note_pair(c);
    int nproc = c->nproc, npairs = c->npairs, have_core = c->have_core_ids, overflow = c->overflow;
    double mhz = c->mhz_max;
    free(c);
    if (nproc == 0)
        return tern_err(TERN_EFORMAT, "%s: no 'processor' lines: this is not /proc/cpuinfo text", what);
    out->threads = nproc;
    out->cores = (have_core && !overflow && npairs > 0) ? npairs : nproc;
    if (!out->vendor[0]) snprintf(out->vendor, sizeof out->vendor, "unknown");
    if (!out->model[0]) snprintf(out->model, sizeof out->model, "%s CPU", out->vendor);
    /* A nominal clock: the "@ 2.10GHz" Intel prints in the model name, else the highest "cpu MHz"
     * (the clock at the moment of reading, which may be below the rated maximum). */
    const char *at = strstr(out->model, "@ ");
    double ghz = 0;
    if (at) {
        char *end;
        ghz = strtod(at + 2, &end);
        if (!(ghz > 0.1 && ghz < 10 && (!strncasecmp(end, "GHz", 3)))) ghz = 0;
    }
    if (ghz > 0) {
        out->nominal_ghz = ghz;
        snprintf(out->nominal_source, sizeof out->nominal_source, "model name");
    } else if (mhz > 0) {
        out->nominal_ghz = mhz / 1000.0;
        snprintf(out->nominal_source, sizeof out->nominal_source, "cpu MHz in /proc/cpuinfo");
    }
    return TERN_OK;
}

/* The per-core multiply-accumulate model: `pipes` units, each `width` bits wide, one MAC per lane
 * per cycle. Where a family has parts with fewer units than the table says (Intel SKUs with one
 * 512-bit FMA unit), the larger figure is used: for export figures an upper bound is the safe side. */
static void cpu_vector_model(const tern_hw_cpu *cpu, int *pipes, int *width, char *desc, size_t nd) {
    unsigned f = cpu->features;
    *pipes = 0;
    *width = 0;
    if (!strcmp(cpu->vendor, "AuthenticAMD") && cpu->family == 23 && (f & TERN_CPU_FMA)) {
        if (cpu->model_id >= 0 && cpu->model_id < 0x30) {
            *pipes = 2, *width = 128;
            snprintf(desc, nd, "AMD family 23 model %d (Zen/Zen+): 2 FMA units x 128 bits per core", cpu->model_id);
        } else {
            *pipes = 2, *width = 256;
            snprintf(desc, nd, "AMD family 23 model %d (Zen 2): 2 FMA units x 256 bits per core", cpu->model_id);
        }
    } else if (!strcmp(cpu->vendor, "AuthenticAMD") && cpu->family == 25 && (f & TERN_CPU_FMA)) {
        *pipes = 2, *width = 256;
        snprintf(desc, nd, "AMD family 25 (Zen 3/Zen 4; Zen 4 runs 512-bit operations on 256-bit units): "
                           "2 FMA units x 256 bits per core");
    } else if ((f & TERN_CPU_AVX512F)) {
        *pipes = 2, *width = 512;
        snprintf(desc, nd, "AVX-512: 2 FMA units x 512 bits per core (an upper bound: some parts have one)");
    } else if ((f & TERN_CPU_FMA) && (f & TERN_CPU_AVX2)) {
        *pipes = 2, *width = 256;
        snprintf(desc, nd, "AVX2+FMA: 2 FMA units x 256 bits per core");
    } else if (f & TERN_CPU_AVX) {
        *pipes = 1, *width = 256;
        snprintf(desc, nd, "AVX without FMA: one 256-bit multiply and one add per cycle per core");
    } else if (f & TERN_CPU_SSE2) {
        *pipes = 1, *width = 128;
        snprintf(desc, nd, "SSE2: one 128-bit multiply and one add per cycle per core");
    } else if (f & TERN_CPU_ASIMD) {
        *pipes = 2, *width = 128;
        snprintf(desc, nd, "Arm Advanced SIMD: 2 FMA units x 128 bits per core (assumed; some cores have 4)");
    } else {
        snprintf(desc, nd, "no vector unit tern knows: no peak figure");
    }
}

void tern_hw_cpu_peak(const tern_hw_cpu *cpu, double clock_ghz, double dense_tops[TERN_PREC_COUNT], char *basis,
                      size_t nbasis) {
    for (int p = 0; p < TERN_PREC_COUNT; p++) dense_tops[p] = 0;
    int pipes, width;
    char desc[200];
    cpu_vector_model(cpu, &pipes, &width, desc, sizeof desc);
    if (!(clock_ghz > 0) || cpu->cores <= 0 || pipes == 0) {
        snprintf(basis, nbasis, "%s; %s", desc, clock_ghz > 0 ? "no vector model" : "clock unknown");
        return;
    }
    /* tera-ops/s = cores x GHz x 1e9 x (MACs per cycle) x 2 / 1e12 */
    double per_cycle_mac64 = (double)pipes * width / 64.0;
    double scale = cpu->cores * clock_ghz * 2.0 / 1000.0;
    dense_tops[TERN_PREC_FP64] = scale * per_cycle_mac64;
    dense_tops[TERN_PREC_FP32] = scale * per_cycle_mac64 * 2;
    char extra[160] = "";
    unsigned f = cpu->features;
    if (f & TERN_CPU_AVX512_BF16) {
        dense_tops[TERN_PREC_BF16] = dense_tops[TERN_PREC_FP32] * 2; /* two bf16 products per fp32 lane */
        strcat(extra, "; AVX512_BF16 dot products");
    }
    if (f & TERN_CPU_AVX512_VNNI) {
        dense_tops[TERN_PREC_INT8] = dense_tops[TERN_PREC_FP32] * 4; /* four int8 products per 32-bit lane */
        strcat(extra, "; AVX512_VNNI");
    } else if (f & TERN_CPU_AVX_VNNI) {
        dense_tops[TERN_PREC_INT8] = scale * pipes * (width < 256 ? width : 256) / 32.0 * 4;
        strcat(extra, "; AVX_VNNI (256-bit)");
    }
    if ((f & TERN_CPU_AMX_TILE) && (f & TERN_CPU_AMX_BF16)) {
        /* Intel AMX: 1024 bf16 and 2048 int8 operations per cycle per core. */
        double amx = cpu->cores * clock_ghz * 1024.0 / 1000.0;
        if (amx > dense_tops[TERN_PREC_BF16]) dense_tops[TERN_PREC_BF16] = amx;
        strcat(extra, "; AMX tiles: 1024 bf16 ops/cycle/core");
    }
    if ((f & TERN_CPU_AMX_TILE) && (f & TERN_CPU_AMX_INT8)) {
        double amx = cpu->cores * clock_ghz * 2048.0 / 1000.0;
        if (amx > dense_tops[TERN_PREC_INT8]) dense_tops[TERN_PREC_INT8] = amx;
        strcat(extra, ", 2048 int8");
    }
    snprintf(basis, nbasis, "%s%s; x %d cores x %.3f GHz", desc, extra, cpu->cores, clock_ghz);
}

/* ---- clock ---- */

#if defined(__x86_64__)
static double add_chain_seconds(unsigned long iters) {
    unsigned long x = 0;
    double t0 = tern_now();
    for (unsigned long i = 0; i < iters; i++) {
        /* 100 dependent adds: each waits for the last, so one iteration takes 100 cycles; the
         * loop counter and branch run on other units in parallel. */
        __asm__ volatile(".rept 100\n\taddq $1, %0\n\t.endr" : "+r"(x));
    }
    double t = tern_now() - t0;
    __asm__ volatile("" ::"r"(x));
    return t;
}

double tern_hw_measure_clock_ghz(void) {
    const unsigned long iters = 100000; /* 1e7 cycles: about 4 ms at 2.5 GHz */
    add_chain_seconds(iters);           /* wake the core up */
    double best = 0;
    for (int r = 0; r < 7; r++) {
        double t = add_chain_seconds(iters);
        if (t > 0) {
            double ghz = iters * 100.0 / t / 1e9;
            if (ghz > best) best = ghz;
        }
    }
    return best;
}
#else
double tern_hw_measure_clock_ghz(void) { return 0; }
#endif

/* ---- NVML ---- */

typedef int nvml_ret;
typedef void *nvml_dev;
typedef struct {
    unsigned long long total, free, used;
} nvml_memory;

static const char *nvml_str(const char *(*errstr)(nvml_ret), nvml_ret r, char *buf, size_t n) {
    if (errstr) {
        const char *s = errstr(r);
        if (s) return s;
    }
    snprintf(buf, n, "NVML error %d", r);
    return buf;
}

static void fill_gpu(tern_hw_device *d, const char *name, const tern_hw_known *k) {
    d->kind = TERN_HW_GPU;
    snprintf(d->name, sizeof d->name, "%s", name);
    d->known = k;
    d->datacenter = k ? k->datacenter : -1;
    if (k) {
        snprintf(d->vendor, sizeof d->vendor, "%s", k->vendor);
        memcpy(d->dense_tops, k->dense_tops, sizeof d->dense_tops);
        d->die_area_mm2 = k->die_area_mm2;
    } else {
        snprintf(d->vendor, sizeof d->vendor, "NVIDIA");
    }
    tern_hw_classify(&d->cls, d->dense_tops, d->die_area_mm2, d->datacenter);
    if (!k)
        snprintf(d->cls.reason, sizeof d->cls.reason,
                 "tern has no published figures for this GPU (see tern hw --known), so TPP cannot be computed");
}

static void probe_nvml(tern_hw_host *h) {
    const char *lib = getenv("TERN_NVML_LIB");
    if (!lib || !*lib) lib = "libnvidia-ml.so.1";
    void *dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(h->nvml, sizeof h->nvml, "not loaded (%s): no Nvidia GPU probed", lib);
        return;
    }
    nvml_ret (*init)(void) = (nvml_ret(*)(void))dlsym(dl, "nvmlInit_v2");
    if (!init) init = (nvml_ret(*)(void))dlsym(dl, "nvmlInit");
    nvml_ret (*shutdown)(void) = (nvml_ret(*)(void))dlsym(dl, "nvmlShutdown");
    nvml_ret (*count)(unsigned *) = (nvml_ret(*)(unsigned *))dlsym(dl, "nvmlDeviceGetCount_v2");
    if (!count) count = (nvml_ret(*)(unsigned *))dlsym(dl, "nvmlDeviceGetCount");
    nvml_ret (*handle)(unsigned, nvml_dev *) = (nvml_ret(*)(unsigned, nvml_dev *))dlsym(dl, "nvmlDeviceGetHandleByIndex_v2");
    if (!handle) handle = (nvml_ret(*)(unsigned, nvml_dev *))dlsym(dl, "nvmlDeviceGetHandleByIndex");
    nvml_ret (*getname)(nvml_dev, char *, unsigned) = (nvml_ret(*)(nvml_dev, char *, unsigned))dlsym(dl, "nvmlDeviceGetName");
    nvml_ret (*getmem)(nvml_dev, nvml_memory *) = (nvml_ret(*)(nvml_dev, nvml_memory *))dlsym(dl, "nvmlDeviceGetMemoryInfo");
    nvml_ret (*getuuid)(nvml_dev, char *, unsigned) = (nvml_ret(*)(nvml_dev, char *, unsigned))dlsym(dl, "nvmlDeviceGetUUID");
    const char *(*errstr)(nvml_ret) = (const char *(*)(nvml_ret))dlsym(dl, "nvmlErrorString");
    char eb[32];
    if (!init || !count || !handle || !getname) {
        snprintf(h->nvml, sizeof h->nvml, "%s lacks the NVML entry points tern needs", lib);
        dlclose(dl);
        return;
    }
    nvml_ret r = init();
    if (r != 0) {
        snprintf(h->nvml, sizeof h->nvml, "%s loaded, but nvmlInit failed: %s", lib, nvml_str(errstr, r, eb, sizeof eb));
        dlclose(dl);
        return;
    }
    unsigned n = 0;
    r = count(&n);
    if (r != 0) {
        snprintf(h->nvml, sizeof h->nvml, "%s: nvmlDeviceGetCount failed: %s", lib, nvml_str(errstr, r, eb, sizeof eb));
    } else {
        unsigned shown = 0;
        for (unsigned i = 0; i < n && h->ndev < TERN_HW_MAX_DEVICES; i++) {
            nvml_dev dev = NULL;
            char name[96] = "";
            if (handle(i, &dev) != 0 || getname(dev, name, sizeof name) != 0) continue;
            name[sizeof name - 1] = 0;
            tern_hw_device *d = &h->dev[h->ndev++];
            memset(d, 0, sizeof *d);
            fill_gpu(d, name, tern_hw_known_match_nvml(name));
            nvml_memory mem;
            if (getmem && getmem(dev, &mem) == 0) d->memory_bytes = (double)mem.total;
            if (getuuid && getuuid(dev, d->id, sizeof d->id) != 0) d->id[0] = 0;
            d->id[sizeof d->id - 1] = 0;
            shown++;
        }
        snprintf(h->nvml, sizeof h->nvml, "%s: %u device%s, %u described", lib, n, n == 1 ? "" : "s", shown);
    }
    if (shutdown) shutdown();
    dlclose(dl);
}

/* ---- the whole host ---- */

/* Files under /proc report size 0, so tern_read_file (which trusts the size) cannot read them:
 * read to EOF instead, up to 16 MiB. */
static tern_status read_proc(const char *path, char **out, size_t *size) {
    FILE *f = fopen(path, "r");
    if (!f) return tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (n < cap) break;
        if (cap >= (16u << 20)) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) return tern_err(TERN_ENOMEM, "%s: out of memory reading it", path);
    if (err) {
        free(buf);
        return tern_err(TERN_EIO, "%s: read failed", path);
    }
    buf[n] = 0;
    *out = buf;
    *size = n;
    return TERN_OK;
}

static double sysfs_max_ghz(void) {
    char *buf;
    size_t n;
    tern_status st = read_proc("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", &buf, &n);
    tern_err_clear();
    if (st != TERN_OK) return 0;
    double khz = strtod(buf, NULL);
    free(buf);
    return khz > 0 ? khz / 1e6 : 0;
}

static double meminfo_total(void) {
    char *buf;
    size_t n;
    tern_status st = read_proc("/proc/meminfo", &buf, &n);
    tern_err_clear();
    if (st != TERN_OK) return 0;
    double v = 0;
    const char *p = strstr(buf, "MemTotal:");
    if (p) v = strtod(p + 9, NULL) * 1024.0;
    free(buf);
    return v;
}

tern_status tern_hw_probe(tern_hw_host *h) {
    memset(h, 0, sizeof *h);
    if (gethostname(h->hostname, sizeof h->hostname - 1) != 0) snprintf(h->hostname, sizeof h->hostname, "unknown");
    h->memory_bytes = meminfo_total();
    char *text;
    size_t n;
    TERN_TRY(read_proc("/proc/cpuinfo", &text, &n));
    tern_hw_device *d = &h->dev[h->ndev++];
    tern_status st = tern_hw_cpu_from_cpuinfo(&d->cpu, text, n, "/proc/cpuinfo");
    free(text);
    TERN_TRY(st);
    d->kind = TERN_HW_CPU;
    tern_fmt(d->name, sizeof d->name, "%s", d->cpu.model);
    tern_fmt(d->vendor, sizeof d->vendor, "%s", d->cpu.vendor);
    d->datacenter = -1;
    d->die_area_mm2 = 0;
    double sys = sysfs_max_ghz();
    if (sys > 0) {
        d->cpu.nominal_ghz = sys;
        snprintf(d->cpu.nominal_source, sizeof d->cpu.nominal_source, "cpufreq cpuinfo_max_freq");
    }
    double measured = tern_hw_measure_clock_ghz();
    /* Peak figures use the higher of the measured and the nominal clock: a TPP for export
     * purposes should not understate what the part can do. */
    if (measured > 0 && measured >= d->cpu.nominal_ghz) {
        d->clock_ghz = measured;
        snprintf(d->clock_source, sizeof d->clock_source, "measured: dependent-add chain on one core");
    } else if (d->cpu.nominal_ghz > 0) {
        d->clock_ghz = d->cpu.nominal_ghz;
        tern_fmt(d->clock_source, sizeof d->clock_source, "nominal: %s%s", d->cpu.nominal_source,
                 measured > 0 ? " (above the measured clock)" : "");
    }
    d->memory_bytes = 0;
    tern_hw_cpu_peak(&d->cpu, d->clock_ghz, d->dense_tops, d->basis, sizeof d->basis);
    tern_hw_classify(&d->cls, d->dense_tops, d->die_area_mm2, d->datacenter);
    probe_nvml(h);
    return TERN_OK;
}

/* ---- JSON ---- */

cJSON *tern_hw_tops_json(const double dense_tops[TERN_PREC_COUNT]) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (int p = 0; p < TERN_PREC_COUNT; p++)
        if (dense_tops[p] > 0 && !cJSON_AddNumberToObject(o, prec_names[p], dense_tops[p])) {
            cJSON_Delete(o);
            return NULL;
        }
    return o;
}

int tern_hw_class_add_json(cJSON *o, const tern_hw_class *c, double die_area_mm2) {
    int ok = 1;
    ok &= tern_json_add_num(o, "tpp", c->tpp, 0) != NULL;
    if (c->tpp_declared) {
        ok &= cJSON_AddStringToObject(o, "tpp_precision", "declared") != NULL;
        ok &= cJSON_AddNullToObject(o, "tpp_bit_length") != NULL;
    } else if (!isnan(c->tpp)) {
        ok &= cJSON_AddStringToObject(o, "tpp_precision", prec_names[c->tpp_prec]) != NULL;
        ok &= cJSON_AddNumberToObject(o, "tpp_bit_length", prec_bits[c->tpp_prec]) != NULL;
    } else {
        ok &= cJSON_AddNullToObject(o, "tpp_precision") != NULL;
        ok &= cJSON_AddNullToObject(o, "tpp_bit_length") != NULL;
    }
    ok &= tern_json_add_num(o, "die_area_mm2", die_area_mm2, 1) != NULL;
    ok &= tern_json_add_num(o, "performance_density", c->perf_density, 0) != NULL;
    ok &= cJSON_AddStringToObject(o, "eccn_3a090", tern_3a090_name(c->cls)) != NULL;
    if (c->paragraph)
        ok &= cJSON_AddStringToObject(o, "eccn_paragraph", c->paragraph) != NULL;
    else
        ok &= cJSON_AddNullToObject(o, "eccn_paragraph") != NULL;
    ok &= cJSON_AddStringToObject(o, "eccn_reason", c->reason) != NULL;
    return ok;
}

static int add_datacenter(cJSON *o, int dc) {
    if (dc < 0) return cJSON_AddNullToObject(o, "datacenter") != NULL;
    return cJSON_AddBoolToObject(o, "datacenter", dc) != NULL;
}

static int add_string_array(cJSON *o, const char *key, const char *const *items, int n) {
    cJSON *a = cJSON_AddArrayToObject(o, key);
    if (!a) return 0;
    for (int i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateString(items[i]);
        if (!s) return 0;
        cJSON_AddItemToArray(a, s);
    }
    return 1;
}

static const char rule_source[] = "thresholds: " TERN_3A090_RULE " [EAR-2023]";

tern_status tern_hw_device_json(const tern_hw_device *d, cJSON **out) {
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    if (ok) {
        ok &= cJSON_AddStringToObject(o, "name", d->name) != NULL;
        ok &= cJSON_AddStringToObject(o, "kind", d->kind == TERN_HW_CPU ? "cpu" : "gpu") != NULL;
        ok &= cJSON_AddStringToObject(o, "vendor", d->vendor) != NULL;
        cJSON *tops = tern_hw_tops_json(d->dense_tops);
        ok &= tops != NULL && cJSON_AddItemToObject(o, "peak_dense_tops", tops);
        ok &= tern_hw_class_add_json(o, &d->cls, d->die_area_mm2);
        ok &= add_datacenter(o, d->datacenter);
    }
    if (ok && d->kind == TERN_HW_CPU) {
        const tern_hw_cpu *c = &d->cpu;
        ok &= cJSON_AddStringToObject(o, "model", c->model) != NULL;
        ok &= (c->family >= 0 ? cJSON_AddNumberToObject(o, "family", c->family)
                              : cJSON_AddNullToObject(o, "family")) != NULL;
        ok &= (c->model_id >= 0 ? cJSON_AddNumberToObject(o, "model_id", c->model_id)
                                : cJSON_AddNullToObject(o, "model_id")) != NULL;
        ok &= cJSON_AddNumberToObject(o, "cores", c->cores) != NULL;
        ok &= cJSON_AddNumberToObject(o, "threads", c->threads) != NULL;
        ok &= cJSON_AddStringToObject(o, "cores_scope",
                                      "cores visible to this OS; a TPP for export purposes aggregates every core of "
                                      "the chip, which is larger if this is a slice of a bigger CPU") != NULL;
        const char *simd[13];
        int ns = 0;
        static const char *const fn[] = {"sse2",     "avx",      "fma",      "avx2",  "avx512f",
                                         "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile",
                                         "amx_bf16", "amx_int8", "asimd",    "sve"};
        for (int b = 0; b < 13; b++)
            if (c->features & (1u << b)) simd[ns++] = fn[b];
        ok &= add_string_array(o, "simd", simd, ns);
        ok &= tern_json_add_num(o, "clock_ghz", d->clock_ghz, 1) != NULL;
        ok &= cJSON_AddStringToObject(o, "clock_source", d->clock_source[0] ? d->clock_source : "unknown") != NULL;
        ok &= tern_json_add_num(o, "clock_nominal_ghz", c->nominal_ghz, 1) != NULL;
        ok &= cJSON_AddStringToObject(o, "peak_basis", d->basis) != NULL;
        const char *src[3] = {"peak: tern's per-core vector model (docs/COMPLIANCE.md, CPUs) x cores x clock; "
                              "computed, not published",
                              "die area: unknown for CPUs, so performance density is null", rule_source};
        ok &= add_string_array(o, "sources", src, 3);
    } else if (ok) {
        ok &= tern_json_add_num(o, "memory_bytes", d->memory_bytes, 1) != NULL;
        ok &= cJSON_AddStringToObject(o, "uuid", d->id) != NULL;
        if (d->known) {
            ok &= cJSON_AddStringToObject(o, "table_entry", d->known->name) != NULL;
            char a[400], b[300];
            snprintf(a, sizeof a, "throughput (%s): %s", d->known->tops_estimated ? "estimated" : "published",
                     d->known->tops_source);
            snprintf(b, sizeof b, "die area (%s): %s", d->known->die_estimated ? "estimated" : "published",
                     d->known->die_source);
            const char *src[3] = {a, b, rule_source};
            ok &= add_string_array(o, "sources", src, 3);
        } else {
            ok &= cJSON_AddNullToObject(o, "table_entry") != NULL;
            const char *src[1] = {"none: this GPU is not in tern's table (tern hw --known)"};
            ok &= add_string_array(o, "sources", src, 1);
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return tern_err(TERN_ENOMEM, "out of memory building the hardware record of %s", d->name);
    }
    *out = o;
    return TERN_OK;
}

tern_status tern_hw_host_json(const tern_hw_host *h, cJSON **out) {
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    cJSON *devs = NULL;
    if (ok) {
        ok &= cJSON_AddStringToObject(o, "host", h->hostname) != NULL;
        ok &= tern_json_add_num(o, "memory_bytes", h->memory_bytes, 1) != NULL;
        ok &= cJSON_AddStringToObject(o, "nvml", h->nvml) != NULL;
        ok &= cJSON_AddStringToObject(o, "rule_set", TERN_3A090_RULE) != NULL;
        ok &= cJSON_AddStringToObject(o, "notice",
                                      "tern reports figures and applies the owner's policy; it is not legal "
                                      "advice (docs/COMPLIANCE.md)") != NULL;
        ok &= (devs = cJSON_AddArrayToObject(o, "devices")) != NULL;
    }
    for (int i = 0; ok && i < h->ndev; i++) {
        cJSON *d;
        tern_status st = tern_hw_device_json(&h->dev[i], &d);
        if (st != TERN_OK) {
            cJSON_Delete(o);
            return st;
        }
        cJSON_AddItemToArray(devs, d);
    }
    if (!ok) {
        cJSON_Delete(o);
        return tern_err(TERN_ENOMEM, "out of memory building the hardware summary");
    }
    *out = o;
    return TERN_OK;
}

tern_status tern_hw_summary_json(cJSON **out) {
    tern_hw_host *h = malloc(sizeof *h);
    if (!h) return tern_err(TERN_ENOMEM, "out of memory probing the hardware (%zu bytes)", sizeof *h);
    tern_status st = tern_hw_probe(h);
    if (st == TERN_OK) st = tern_hw_host_json(h, out);
    free(h);
    return st;
}

tern_status tern_hw_known_json(cJSON **out) {
    cJSON *o = cJSON_CreateObject();
    cJSON *devs = NULL;
    int ok = o && cJSON_AddStringToObject(o, "rule_set", TERN_3A090_RULE) &&
             cJSON_AddStringToObject(o, "notice",
                                     "figures are copied from the sources in docs/COMPLIANCE.md; tern reports "
                                     "them and is not legal advice") &&
             (devs = cJSON_AddArrayToObject(o, "devices"));
    for (size_t i = 0; ok && i < tern_hw_known_count(); i++) {
        const tern_hw_known *k = tern_hw_known_at(i);
        tern_hw_class c;
        tern_hw_classify(&c, k->dense_tops, k->die_area_mm2, k->datacenter);
        cJSON *d = cJSON_CreateObject();
        ok &= d != NULL;
        if (!ok) break;
        cJSON_AddItemToArray(devs, d);
        ok &= cJSON_AddStringToObject(d, "name", k->name) != NULL;
        ok &= cJSON_AddStringToObject(d, "kind", "gpu") != NULL;
        ok &= cJSON_AddStringToObject(d, "vendor", k->vendor) != NULL;
        cJSON *tops = tern_hw_tops_json(k->dense_tops);
        ok &= tops != NULL && cJSON_AddItemToObject(d, "peak_dense_tops", tops);
        ok &= tern_hw_class_add_json(d, &c, k->die_area_mm2);
        ok &= add_datacenter(d, k->datacenter);
        ok &= cJSON_AddStringToObject(d, "throughput_figures", k->tops_estimated ? "estimated" : "published") != NULL;
        ok &= cJSON_AddStringToObject(d, "die_area_figure",
                                      k->die_area_mm2 <= 0 ? "unknown" : k->die_estimated ? "estimated" : "published") != NULL;
        char a[400], b[300];
        snprintf(a, sizeof a, "throughput (%s): %s", k->tops_estimated ? "estimated" : "published", k->tops_source);
        snprintf(b, sizeof b, "die area (%s): %s",
                 k->die_area_mm2 <= 0 ? "unknown" : k->die_estimated ? "estimated" : "published", k->die_source);
        const char *src[3] = {a, b, rule_source};
        ok &= add_string_array(d, "sources", src, 3);
        ok &= (k->note ? cJSON_AddStringToObject(d, "note", k->note) : cJSON_AddNullToObject(d, "note")) != NULL;
    }
    if (!ok) {
        cJSON_Delete(o);
        return tern_err(TERN_ENOMEM, "out of memory building the table of known accelerators");
    }
    *out = o;
    return TERN_OK;
}
