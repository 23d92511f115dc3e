/* Picks the kernel set: TERN_KERN=ref|cpu forces one; otherwise the fastest this CPU runs. A set
 * may leave entries NULL; they are filled from ref, so every set is complete. */
#include "kern/kern.h"

#include "tern/core.h"

#include <omp.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

static tern_kern cpu_full;
static int cpu_ready;

static void fill_from_ref(tern_kern *k) {
#define FILL(f) if (!k->f) k->f = tern_kern_ref.f
    FILL(sgemm); FILL(encoder_fwd); FILL(encoder_bwd); FILL(layernorm_fwd); FILL(layernorm_bwd);
    FILL(matmul_fwd); FILL(matmul_bwd); FILL(attention_fwd); FILL(attention_bwd); FILL(gelu_fwd);
    FILL(gelu_bwd); FILL(residual_fwd); FILL(crossentropy_fwd_bwd);
#undef FILL
}

const tern_kern *tern_kern_by_name(const char *name) {
    if (!strcmp(name, "ref")) return &tern_kern_ref;
    if (!strcmp(name, "cpu")) {
#pragma omp critical(tern_kern_init)
        if (!cpu_ready) {
            cpu_full = tern_kern_cpu;
            fill_from_ref(&cpu_full);
            cpu_ready = 1;
        }
        return &cpu_full;
    }
    return NULL;
}

const tern_kern *tern_kern_get(void) {
    const char *forced = getenv("TERN_KERN");
    if (forced && *forced) {
        const tern_kern *k = tern_kern_by_name(forced);
        if (k) return k;
        tern_log(TERN_LOG_WARN, "TERN_KERN=%s is not a kernel set here (ref, cpu); using cpu", forced);
    }
    return tern_kern_by_name("cpu");
}

void tern_set_threads(int n) {
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    omp_set_num_threads(n); /* oneDNN uses the same OpenMP pool */
}
