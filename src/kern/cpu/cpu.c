/* The CPU set: the reference kernels, with matrix products handed to oneDNN's sgemm (a
 * well-kept library, far faster than any plain loop). oneDNN threads with the same OpenMP pool as
 * tern's own kernels; OpenBLAS's pthreads build made both pools spin against each other (35% of a
 * step in libgomp's wait loop, measured with perf), and OPENBLAS_CORETYPE in the environment could
 * pick a slower kernel. Faster kernels of the speed issue override further entries here. */
#include "kern/kern.h"
#include "kern/kern_int.h"
#include "tern/core.h"

#include <dnnl.h>
#include <math.h>

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

/* Attention as matrix products per (batch, head): S = Q K^T / sqrt(hs), a causal softmax row by
 * row, Y = P V. The upper triangle is computed and then zeroed, which wastes up to half of the
 * score products but keeps them in GEMMs, far faster than the reference's dot-product loops.
 * Heads run in parallel; each GEMM then runs on one thread (OpenMP does not nest by default).
 * att (B,NH,T,T) keeps P with zeros above the diagonal, as in ref. */
/* The plain-C causal softmax of one score row in place. */
static void softmax_row_c(float *row, size_t t, size_t T) {
    float mx = -INFINITY, sum = 0.0f;
    for (size_t u = 0; u <= t; u++)
        if (row[u] > mx) mx = row[u];
    for (size_t u = 0; u <= t; u++) {
        row[u] = expf(row[u] - mx);
        sum += row[u];
    }
    float inv = 1.0f / sum;
    for (size_t u = 0; u <= t; u++) row[u] *= inv;
    for (size_t u = t + 1; u < T; u++) row[u] = 0.0f;
}

void tern_kern_attention_fwd_gemm(float *out, float *att, const float *qkv, size_t B, size_t T, size_t C, size_t NH,
                                  void (*softmax_row)(float *row, size_t t, size_t T)) {
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH;
        const float *q = qkv + b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
        float *p = att + bh * T * T;
        sgemm_blas(0, 1, T, T, hs, scale, q, C3, k, C3, 0.0f, p, T);
        for (size_t t = 0; t < T; t++) softmax_row(p + t * T, t, T);
        sgemm_blas(0, 0, T, hs, T, 1.0f, p, T, v, C3, 0.0f, out + b * T * C + h * hs, C);
    }
}

static void attention_fwd_cpu(float *out, float *att, const float *qkv, size_t B, size_t T, size_t C, size_t NH) {
    tern_kern_attention_fwd_gemm(out, att, qkv, B, T, C, NH, softmax_row_c);
}

static void attention_bwd_cpu(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att, size_t B,
                              size_t T, size_t C, size_t NH) {
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH;
        const float *q = qkv + b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
        const float *p = att + bh * T * T, *dy = dout + b * T * C + h * hs;
        float *dq = dqkv + b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C, *ds = datt + bh * T * T;
        /* dP = dY V^T; dV = P^T dY */
        sgemm_blas(0, 1, T, T, hs, 1.0f, dy, C, v, C3, 0.0f, ds, T);
        sgemm_blas(1, 0, T, hs, T, 1.0f, p, T, dy, C, 0.0f, dv, C3);
        /* softmax backward, scaled: dS = P * (dP - rowsum(P * dP)) / sqrt(hs), zero above the diagonal */
        for (size_t t = 0; t < T; t++) {
            const float *pr = p + t * T;
            float *dr = ds + t * T, dot = 0.0f;
            for (size_t u = 0; u <= t; u++) dot += pr[u] * dr[u];
            for (size_t u = 0; u <= t; u++) dr[u] = pr[u] * (dr[u] - dot) * scale;
            for (size_t u = t + 1; u < T; u++) dr[u] = 0.0f;
        }
        /* dQ = dS K; dK = dS^T Q */
        sgemm_blas(0, 0, T, hs, T, 1.0f, ds, T, k, C3, 0.0f, dq, C3);
        sgemm_blas(1, 0, T, hs, T, 1.0f, ds, T, q, C3, 0.0f, dk, C3);
    }
}

const tern_kern tern_kern_cpu = {
    .name = "cpu",
    .sgemm = sgemm_blas,
    .matmul_fwd = matmul_fwd_cpu,
    .matmul_bwd = matmul_bwd_cpu,
    .attention_fwd = attention_fwd_cpu,
    .attention_bwd = attention_bwd_cpu,
    /* the rest are filled from ref by tern_kern_get() */
};
