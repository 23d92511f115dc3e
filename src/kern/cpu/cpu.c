/* The CPU set: the reference kernels, with matrix products handed to oneDNN's sgemm (a
 * well-kept library, far faster than any plain loop). oneDNN threads with the same OpenMP pool as
 * tern's own kernels; OpenBLAS's pthreads build made both pools spin against each other (35% of a
 * step in libgomp's wait loop, measured with perf), and OPENBLAS_CORETYPE in the environment could
 * pick a slower kernel. Faster kernels of the speed issue override further entries here. */
#include "kern/kern.h"
#include "kern/kern_int.h"
#include "tern/core.h"

#include <dnnl.h>

static void sgemm_blas(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                       const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    /* dnnl_sgemm is row-major, with 'N'/'T' for each operand. */
    dnnl_status_t st = dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', (dnnl_dim_t)M, (dnnl_dim_t)N, (dnnl_dim_t)K, alpha,
                                  A, (dnnl_dim_t)lda, B, (dnnl_dim_t)ldb, beta, C, (dnnl_dim_t)ldc);
    TERN_ASSERT(st == dnnl_success); /* only invalid arguments fail, and shapes are checked upstream */
}

static void matmul_fwd_cpu(float *out, const float *inp, const float *w, const float *bias, size_t N, size_t C,
                           size_t OC) {
    tern_kern_matmul_fwd_with(&tern_kern_cpu, out, inp, w, bias, N, C, OC);
}

static void matmul_bwd_cpu(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                           size_t N, size_t C, size_t OC) {
    tern_kern_matmul_bwd_with(&tern_kern_cpu, dinp, dw, dbias, dout, inp, w, N, C, OC);
}

const tern_kern tern_kern_cpu = {
    .name = "cpu",
    .sgemm = sgemm_blas,
    .matmul_fwd = matmul_fwd_cpu,
    .matmul_bwd = matmul_bwd_cpu,
    /* the rest are filled from ref by tern_kern_get() */
};
