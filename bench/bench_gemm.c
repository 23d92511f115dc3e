/* Matrix-product throughput at the shapes a training step of configurations S and M runs
 * (forward, and the two backward products), for a kernel set (default: the one tern picks), at
 * 1 thread and at all cores. Prints GFLOP/s and the share of the given per-core FP32 peak (at bf16,
 * the share of twice that: VDPBF16PS does two multiply-adds per lane). The bf16 figures include
 * the operands' conversion, as a step runs them.
 * usage: bench_gemm [peak_gflops_per_core] [set] [fp32|bf16] */
#include "backend/backend_int.h"
#include "tern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *what;
    int ta, tb;
    size_t M, N, K;
} shape;

static double run(tern_backend *be, const shape *s, int reps) {
    const tern_kern *k = be->k;
    size_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    float *A = malloc(s->M * s->K * 4), *B = malloc(s->K * s->N * 4), *C = malloc(s->M * s->N * 4);
    for (size_t i = 0; i < s->M * s->K; i++) A[i] = tern_rng_uniform(1, 1, i) - 0.5f;
    for (size_t i = 0; i < s->K * s->N; i++) B[i] = tern_rng_uniform(1, 2, i) - 0.5f;
    k->sgemm(be, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N); /* warm up (and JIT) */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = tern_now();
        k->sgemm(be, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
        double dt = tern_now() - t0;
        if (dt < best) best = dt;
    }
    free(A), free(B), free(C);
    return 2.0 * (double)s->M * (double)s->N * (double)s->K / best / 1e9;
}

int main(int argc, char **argv) {
    double peak = argc > 1 ? atof(argv[1]) : 103.0; /* this VM: 2 x 256-bit FMA x 3.22 GHz per core */
    tern_backend *be;
    if (tern_backend_open(&be, argc > 2 && strcmp(argv[2], "auto") ? argv[2] : NULL) != TERN_OK ||
        tern_backend_set_precision(be, argc > 3 ? argv[3] : "fp32") != TERN_OK) {
        fprintf(stderr, "%s\n", tern_errmsg());
        return 2;
    }
    /* S: B=16, T=256, C=384 (N = 4096 rows); M: B=4, T=1024, C=768 (N = 4096 rows). The head runs
     * over chunks of 512 rows, attention over blocks of 64 query rows (one head, one thread, each
     * inside the parallel loop over heads: the 2-thread column does not apply to them). */
    shape shapes[] = {
        {"S qkv fwd   (4096x384 @ 384x1152)", 0, 0, 4096, 1152, 384},
        {"S fc fwd    (4096x384 @ 384x1536)", 0, 0, 4096, 1536, 384},
        {"S fc dinp   (4096x1536 @ 1536x384^T)", 0, 1, 4096, 384, 1536},
        {"S fc dW     (384x4096^T @ 4096x1536)", 1, 0, 384, 1536, 4096},
        {"S head fwd  (512x384 @ 8192x384^T)", 0, 1, 512, 8192, 384},
        {"S head dW   (8192x512^T @ 512x384)", 1, 0, 8192, 384, 512},
        {"S att S=QK^T (64x64 @ 256x64^T)", 0, 1, 64, 256, 64},
        {"M qkv fwd   (4096x768 @ 768x2304)", 0, 0, 4096, 2304, 768},
        {"M fc dinp   (4096x3072 @ 3072x768^T)", 0, 1, 4096, 768, 3072},
        {"M fc dW     (768x4096^T @ 4096x3072)", 1, 0, 768, 3072, 4096},
        {"M head fwd  (512x768 @ 50257x768^T)", 0, 1, 512, 50257, 768},
        {"M head dlnf (512x50257 @ 50257x768)", 0, 0, 512, 768, 50257},
        {"M att S=QK^T (64x64 @ 1024x64^T)", 0, 1, 64, 1024, 64},
    };
    int ncores = 2;
    if (!strcmp(tern_backend_precision(be), "bf16")) peak *= 2;
    printf("kernel set %s, %s; peak %.1f GFLOP/s per core\n", tern_backend_name(be), tern_backend_precision(be), peak);
    printf("%-40s %12s %8s %12s %8s\n", "shape", "1 thread", "% peak", "2 threads", "% peak");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        tern_set_threads(1);
        double g1 = run(be, &shapes[i], 3);
        tern_set_threads(ncores);
        double g2 = run(be, &shapes[i], 3);
        printf("%-40s %12.1f %7.1f%% %12.1f %7.1f%%\n", shapes[i].what, g1, 100 * g1 / peak, g2, 100 * g2 / (ncores * peak));
        fflush(stdout);
    }
    return 0;
}
