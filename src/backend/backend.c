/* Backends by name: the CPU kernel sets over host memory, and (in a build with CUDA) the GPU.
 * TERN_KERN=ref|cpu|avx2|avx512 forces a CPU set, so that every set can be tested on one machine.
 * A set may leave kernels NULL; they are filled from the set below it (avx2/avx512 over cpu over
 * ref), so every table is complete. */
#include "backend/backend_int.h"

#include "tern/core.h"

#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tern_kern cpu_full, avx2_full, avx512_full;
static int ready;

static void fill_from(tern_kern *k, const tern_kern *base) {
#define FILL(f) if (!k->f) k->f = base->f
    FILL(sgemm); FILL(matmul_fwd); FILL(matmul_bwd); FILL(encoder_fwd); FILL(encoder_bwd); FILL(layernorm_fwd);
    FILL(layernorm_bwd); FILL(rmsnorm_fwd); FILL(rmsnorm_bwd); FILL(attention_fwd); FILL(attention_bwd);
    FILL(attention_decode); FILL(rope_fwd); FILL(rope_bwd); FILL(gelu_fwd); FILL(gelu_bwd); FILL(swiglu_fwd);
    FILL(swiglu_bwd); FILL(residual_fwd); FILL(crossentropy_fwd_bwd); FILL(adamw); FILL(sumsq); FILL(sum); FILL(scale);
    FILL(fill); FILL(fill_normal); FILL(find_nonfinite); FILL(residual_layernorm_fwd); FILL(residual_rmsnorm_fwd);
    FILL(bias_gelu_fwd);
#undef FILL
}

static void build_sets(void) {
#pragma omp critical(tern_kern_init)
    if (!ready) {
        cpu_full = tern_kern_cpu;
        fill_from(&cpu_full, &tern_kern_ref);
        avx2_full = tern_kern_avx2;
        fill_from(&avx2_full, &cpu_full);
        avx512_full = tern_kern_avx512;
        fill_from(&avx512_full, &cpu_full);
        ready = 1;
    }
}

/* A CPU kernel set by name, or NULL when unknown or unsupported on this CPU. */
static const tern_kern *cpu_set(const char *name) {
    build_sets();
    if (!strcmp(name, "ref")) return &tern_kern_ref;
    if (!strcmp(name, "cpu")) return &cpu_full;
    if (!strcmp(name, "avx2")) return tern_kern_avx2_supported() ? &avx2_full : NULL;
    if (!strcmp(name, "avx512")) return tern_kern_avx512_supported() ? &avx512_full : NULL;
    return NULL;
}

/* The default CPU set: TERN_KERN when set and runnable here, else the fastest this CPU runs. */
static const tern_kern *default_set(void) {
    const char *forced = getenv("TERN_KERN");
    if (forced && *forced) {
        const tern_kern *k = cpu_set(forced);
        if (k) return k;
        tern_log(TERN_LOG_WARN, "TERN_KERN=%s is not a kernel set this CPU runs (ref, cpu, avx2, avx512); using the default", forced);
    }
    const tern_kern *k = cpu_set("avx512");
    if (!k) k = cpu_set("avx2");
    return k ? k : cpu_set("cpu");
}

/* The CPU sets all run bf16 (cpu/bf16.c): natively in the avx512 set on a CPU with AVX512_BF16,
 * emulated elsewhere. */
static tern_status cpu_set_precision(tern_backend *be, const char *precision) {
    int native = be->k == &avx512_full && tern_bf16_native_supported();
    be->precision_how = strcmp(precision, "bf16") ? NULL
                        : native               ? "AVX512_BF16"
                                               : "emulated: operands rounded to bf16, fp32 products";
    /* the native products keep each held weight in bf16 in two layouts (cpu/bf16.c) */
    be->weight_copy_bytes = native && !strcmp(precision, "bf16") ? 2 * sizeof(uint16_t) : 0;
    return TERN_OK;
}

/* ---- host memory ---- */

static tern_status host_alloc(tern_backend *be, void **out, size_t bytes, const char *what) {
    (void)be;
    return tern_alloc(out, bytes, what);
}
static void host_free(tern_backend *be, void *p) {
    (void)be;
    tern_free(p);
}
static void host_copy(tern_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
}
static void host_zero(tern_backend *be, void *p, size_t bytes) {
    (void)be;
    if (bytes) memset(p, 0, bytes);
}
static tern_status host_sync(tern_backend *be) {
    (void)be;
    return TERN_OK;
}

const tern_backend_mem tern_host_mem = {host_alloc, host_free, host_copy, host_copy, host_copy, host_zero, host_sync};

/* ---- opening ---- */

const char *const tern_backend_names[] = {"ref", "cpu", "avx2", "avx512", "cuda", NULL};

#ifdef TERN_CUDA
/* backend/cuda/cuda.cu */
tern_status tern_cuda_open(tern_backend *be, int device);
int tern_cuda_available(char *why, size_t why_n);
#endif

/* Parses "cuda:N" into the device number N; CUDA_LOCAL for a bare "cuda" (the rank's own GPU
 * among the node's, so that every rank of a job does not take GPU 0); -1 when name is not a CUDA
 * name, -2 when it is a bad one. */
enum { CUDA_LOCAL = -3 };
static int cuda_device(const char *name) {
    if (strncmp(name, "cuda", 4)) return -1;
    if (!name[4]) return CUDA_LOCAL;
    if (name[4] != ':' || !name[5]) return -2;
    char *end;
    long d = strtol(name + 5, &end, 10);
    return *end || d < 0 || d > 1024 ? -2 : (int)d;
}

int tern_backend_available(const char *name, char *why, size_t why_n) {
    if (why && why_n) why[0] = 0;
    if (!name || !*name || !strcmp(name, "auto")) return 1;
    int dev = cuda_device(name);
    if (dev == -2) {
        if (why) tern_fmt(why, why_n, "'%s' is not a device name (cuda or cuda:N)", name);
        return 0;
    }
    if (dev >= 0 || dev == CUDA_LOCAL) {
#ifdef TERN_CUDA
        return tern_cuda_available(why, why_n);
#else
        if (why) tern_fmt(why, why_n, "this tern was built without CUDA (build it with `make CUDA=1` on a machine with the CUDA toolkit)");
        return 0;
#endif
    }
    build_sets();
    if (!strcmp(name, "ref") || !strcmp(name, "cpu")) return 1;
    if (!strcmp(name, "avx2") || !strcmp(name, "avx512")) {
        if (cpu_set(name)) return 1;
        if (why) tern_fmt(why, why_n, "this CPU lacks the instructions of the %s kernel set", name);
        return 0;
    }
    if (why) tern_fmt(why, why_n, "unknown backend '%s' (known: cpu, ref, avx2, avx512, cuda, cuda:N)", name);
    return 0;
}

tern_status tern_backend_open(tern_backend **out, const char *name) {
    *out = NULL;
    char why[256];
    if (!tern_backend_available(name, why, sizeof why)) return tern_err(TERN_EINVAL, "--device %s: %s", name, why);
    tern_backend *be = calloc(1, sizeof *be);
    if (!be) return tern_err(TERN_ENOMEM, "out of memory");
    int dev = name ? cuda_device(name) : -1;
    if (dev >= 0 || dev == CUDA_LOCAL) {
#ifdef TERN_CUDA
        tern_status st = tern_cuda_open(be, dev == CUDA_LOCAL ? -1 : dev);
        if (st != TERN_OK) {
            free(be);
            return st;
        }
        *out = be;
        return TERN_OK;
#endif
    }
    be->k = !name || !*name || !strcmp(name, "auto") ? default_set() : cpu_set(name);
    be->mem = &tern_host_mem;
    be->is_host = 1;
    be->set_precision = cpu_set_precision;
    tern_fmt(be->name, sizeof be->name, "%s", be->k->name);
    *out = be;
    return TERN_OK;
}

void tern_backend_free(tern_backend *be) {
    if (!be || be == tern_backend_default()) return;
    if (be->close) be->close(be);
    free(be);
}

tern_backend *tern_backend_default(void) {
    static tern_backend def;
    static int made;
#pragma omp critical(tern_backend_default)
    if (!made) {
        def.k = default_set();
        def.mem = &tern_host_mem;
        def.is_host = 1;
        def.set_precision = cpu_set_precision;
        tern_fmt(def.name, sizeof def.name, "%s", def.k->name);
        made = 1;
    }
    return &def;
}

const char *tern_backend_name(const tern_backend *be) { return be->name; }

const char *tern_backend_precision(const tern_backend *be) { return be->precision[0] ? be->precision : "fp32"; }

const char *tern_backend_precision_how(const tern_backend *be) { return be->precision_how ? be->precision_how : ""; }

tern_status tern_backend_set_precision(tern_backend *be, const char *precision) {
    if (!precision || !strcmp(precision, tern_backend_precision(be))) return TERN_OK;
    if (strcmp(precision, "fp32") && strcmp(precision, "bf16"))
        return tern_err(TERN_EINVAL, "--precision must be fp32 or bf16, got '%s'", precision);
    if (!be->set_precision) return tern_err(TERN_EINVAL, "--precision %s is not available on the %s backend", precision, be->name);
    TERN_TRY(be->set_precision(be, precision));
    tern_fmt(be->precision, sizeof be->precision, "%s", precision);
    return TERN_OK;
}
int tern_backend_is_host(const tern_backend *be) { return be->is_host; }
size_t tern_backend_weight_copy_bytes(const tern_backend *be) { return be->weight_copy_bytes; }

void tern_backend_hold_weights(tern_backend *be, const float *w, size_t n) {
    static _Atomic unsigned long long epochs;
    be->held = w;
    be->held_end = w + n;
    be->held_epoch = ++epochs;
}

void tern_backend_release_weights(tern_backend *be) {
    be->held = be->held_end = NULL;
    be->held_epoch = 0;
}

void tern_backend_drop_derived(tern_backend *be) {
    if (be->is_host) tern_bf16_drop_weights();
}

void tern_backend_fail(tern_backend *be, tern_status st, const char *fmt, ...) {
    if (be->err != TERN_OK) return;
    be->err = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->errmsg, sizeof be->errmsg, fmt, ap);
    va_end(ap);
}

tern_status tern_backend_sync(tern_backend *be) {
    tern_status st = be->mem->sync(be);
    if (be->err != TERN_OK) {
        st = tern_err(be->err, "%s: %s", be->name, be->errmsg);
        be->err = TERN_OK;
        be->errmsg[0] = 0;
    }
    return st;
}

tern_status tern_backend_sgemm_rate(tern_backend *be, size_t M, size_t N, size_t K, double min_seconds, double *flops_per_s,
                                    int *calls, double *seconds) {
    size_t na = M * K, nb = K * N, nc = M * N;
    float *a = NULL, *b = NULL, *c = NULL, *host = malloc((na > nb ? na : nb) * sizeof(float));
    tern_status st = host ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK) st = be->mem->alloc(be, (void **)&a, na * sizeof *a, "benchmark A");
    if (st == TERN_OK) st = be->mem->alloc(be, (void **)&b, nb * sizeof *b, "benchmark B");
    if (st == TERN_OK) st = be->mem->alloc(be, (void **)&c, nc * sizeof *c, "benchmark C");
    if (st == TERN_OK) {
        for (size_t i = 0; i < na; i++) host[i] = (float)((i % 17) * 0.01 - 0.08);
        be->mem->upload(be, a, host, na * sizeof(float));
        for (size_t i = 0; i < nb; i++) host[i] = (float)((i % 13) * 0.01 - 0.06);
        be->mem->upload(be, b, host, nb * sizeof(float));
        be->k->sgemm(be, 0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N); /* warm up */
        st = tern_backend_sync(be);
    }
    int n = 0;
    double t0 = tern_now(), t = 0;
    while (st == TERN_OK && (n < 3 || t < min_seconds)) {
        be->k->sgemm(be, 0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
        st = tern_backend_sync(be);
        n++;
        t = tern_now() - t0;
    }
    be->mem->free(be, a);
    be->mem->free(be, b);
    be->mem->free(be, c);
    free(host);
    if (st != TERN_OK) return st;
    *flops_per_s = 2.0 * (double)M * (double)N * (double)K * n / t;
    if (calls) *calls = n;
    if (seconds) *seconds = t;
    return TERN_OK;
}

void tern_set_threads(int n) {
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    omp_set_num_threads(n); /* oneDNN uses the same OpenMP pool */
}
