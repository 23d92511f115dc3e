/* The CPU set: the reference kernels, with matrix products handed to OpenBLAS's sgemm (a
 * well-kept library that is far faster than any plain loop). The hand-written SIMD kernels of the
 * speed issue override further entries here as they are measured to win. */
#include "kern/kern.h"
#include "kern/kern_int.h"

#include <cblas.h>

static void sgemm_blas(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                       const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, (blasint)M,
                (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
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
