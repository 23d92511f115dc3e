/* Picks the kernel set: TERN_KERN=ref|cpu forces one; otherwise the fastest this CPU runs. A set
 * may leave entries NULL; they are filled from ref, so every set is complete. */
#include "kern/kern.h"

#include "kern/kern_int.h"
#include "tern/core.h"

#include <omp.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

static tern_kern cpu_full, avx2_full, avx512_full;
static int ready;

static void fill_from(tern_kern *k, const tern_kern *base) {
#define FILL(f) if (!k->f) k->f = base->f
    FILL(sgemm); FILL(encoder_fwd); FILL(encoder_bwd); FILL(layernorm_fwd); FILL(layernorm_bwd);
    FILL(matmul_fwd); FILL(matmul_bwd); FILL(attention_fwd); FILL(attention_bwd); FILL(gelu_fwd);
    FILL(gelu_bwd); FILL(residual_fwd); FILL(crossentropy_fwd_bwd);
#undef FILL
}

/* Sets are layered: avx2 or avx512 over cpu over ref, each filling what it leaves NULL. */
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

const tern_kern *tern_kern_by_name(const char *name) {
    build_sets();
    if (!strcmp(name, "ref")) return &tern_kern_ref;
    if (!strcmp(name, "cpu")) return &cpu_full;
    if (!strcmp(name, "avx2")) return tern_kern_avx2_supported() ? &avx2_full : NULL;
    if (!strcmp(name, "avx512")) return tern_kern_avx512_supported() ? &avx512_full : NULL;
    return NULL;
}

const char *const tern_kern_names[] = {"ref", "cpu", "avx2", "avx512", NULL};

const tern_kern *tern_kern_get(void) {
    const char *forced = getenv("TERN_KERN");
    if (forced && *forced) {
        const tern_kern *k = tern_kern_by_name(forced);
        if (k) return k;
        tern_log(TERN_LOG_WARN, "TERN_KERN=%s is not a kernel set this CPU runs (ref, cpu, avx2, avx512); using the default", forced);
    }
    const tern_kern *k = tern_kern_by_name("avx512");
    if (!k) k = tern_kern_by_name("avx2");
    return k ? k : tern_kern_by_name("cpu");
}

void tern_set_threads(int n) {
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    omp_set_num_threads(n); /* oneDNN uses the same OpenMP pool */
}
