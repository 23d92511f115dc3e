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
#include <string.h>

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

/* Attention as matrix products, flash-style in blocks of TERN_ATT_BQ query rows per (batch, head):
 * a block's scores against the keys up to its last row only (the causal blocks beyond are never
 * computed), a row softmax that also yields the row's log-sum-exp, then P V. No (T,T) matrix is
 * kept: the backward pass recomputes each block's probabilities from q, k and the log-sum-exp.
 * Within a block the few scores above the diagonal are computed and then zeroed, which keeps them
 * in GEMMs. Heads run in parallel; each GEMM then runs on one thread (OpenMP does not nest by
 * default). The row operations come from the caller, vectorised or not. */

/* The plain-C causal softmax of one score row in place (row[0..t] normalised, row[t+1..n) zeroed);
 * returns the log-sum-exp of row[0..t]. */
static float softmax_row_c(float *row, size_t t, size_t n) {
    float mx = -INFINITY, sum = 0.0f;
    for (size_t u = 0; u <= t; u++)
        if (row[u] > mx) mx = row[u];
    for (size_t u = 0; u <= t; u++) {
        row[u] = expf(row[u] - mx);
        sum += row[u];
    }
    float inv = 1.0f / sum;
    for (size_t u = 0; u <= t; u++) row[u] *= inv;
    for (size_t u = t + 1; u < n; u++) row[u] = 0.0f;
    return mx + logf(sum);
}

/* Probabilities again from scores: row[u] = exp(row[u] - lse) for u <= t, 0 beyond. */
static void probs_row_c(float *row, size_t t, size_t n, float lse) {
    for (size_t u = 0; u <= t; u++) row[u] = expf(row[u] - lse);
    for (size_t u = t + 1; u < n; u++) row[u] = 0.0f;
}

/* Softmax backward of one row, scaled: dp[u] = p[u] (dp[u] - sum_w p[w] dp[w]) * scale for
 * u <= t, 0 beyond. */
static void dsoftmax_row_c(float *dp, const float *p, size_t t, size_t n, float scale) {
    float dot = 0.0f;
    for (size_t u = 0; u <= t; u++) dot += p[u] * dp[u];
    for (size_t u = 0; u <= t; u++) dp[u] = p[u] * (dp[u] - dot) * scale;
    for (size_t u = t + 1; u < n; u++) dp[u] = 0.0f;
}

void tern_kern_attention_fwd_blocked(float *out, float *lse, float *scratch, const float *qkv, size_t B, size_t T, size_t C,
                                     size_t NH, float (*softmax_row)(float *row, size_t t, size_t n)) {
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH;
        const float *q = qkv + b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
        float *s = scratch + bh * 2 * TERN_ATT_BQ * T, *l = lse + bh * T;
        for (size_t i0 = 0; i0 < T; i0 += TERN_ATT_BQ) {
            size_t i1 = i0 + TERN_ATT_BQ < T ? i0 + TERN_ATT_BQ : T, nb = i1 - i0, n = i1;
            sgemm_blas(0, 1, nb, n, hs, scale, q + i0 * C3, C3, k, C3, 0.0f, s, n);
            for (size_t r = 0; r < nb; r++) l[i0 + r] = softmax_row(s + r * n, i0 + r, n);
            sgemm_blas(0, 0, nb, hs, n, 1.0f, s, n, v, C3, 0.0f, out + (b * T + i0) * C + h * hs, C);
        }
    }
}

void tern_kern_attention_bwd_blocked(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *lse,
                                     size_t B, size_t T, size_t C, size_t NH,
                                     void (*probs_row)(float *row, size_t t, size_t n, float lse),
                                     void (*dsoftmax_row)(float *dp, const float *p, size_t t, size_t n, float scale)) {
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH;
        const float *q = qkv + b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C, *dy = dout + b * T * C + h * hs;
        const float *l = lse + bh * T;
        float *dq = dqkv + b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
        float *p = scratch + bh * 2 * TERN_ATT_BQ * T, *dp = p + TERN_ATT_BQ * T;
        for (size_t t = 0; t < T; t++) {
            memset(dk + t * C3, 0, hs * sizeof(float));
            memset(dv + t * C3, 0, hs * sizeof(float));
        }
        for (size_t i0 = 0; i0 < T; i0 += TERN_ATT_BQ) {
            size_t i1 = i0 + TERN_ATT_BQ < T ? i0 + TERN_ATT_BQ : T, nb = i1 - i0, n = i1;
            /* P again, from the scores and the saved log-sum-exp */
            sgemm_blas(0, 1, nb, n, hs, scale, q + i0 * C3, C3, k, C3, 0.0f, p, n);
            for (size_t r = 0; r < nb; r++) probs_row(p + r * n, i0 + r, n, l[i0 + r]);
            /* dP = dY V^T; dV += P^T dY */
            sgemm_blas(0, 1, nb, n, hs, 1.0f, dy + i0 * C, C, v, C3, 0.0f, dp, n);
            sgemm_blas(1, 0, n, hs, nb, 1.0f, p, n, dy + i0 * C, C, 1.0f, dv, C3);
            for (size_t r = 0; r < nb; r++) dsoftmax_row(dp + r * n, p + r * n, i0 + r, n, scale);
            /* dQ = dS K (this block's rows); dK += dS^T Q */
            sgemm_blas(0, 0, nb, hs, n, 1.0f, dp, n, k, C3, 0.0f, dq + i0 * C3, C3);
            sgemm_blas(1, 0, n, hs, nb, 1.0f, dp, n, q + i0 * C3, C3, 1.0f, dk, C3);
        }
    }
}

static void attention_fwd_cpu(float *out, float *lse, float *scratch, const float *qkv, size_t B, size_t T, size_t C,
                              size_t NH) {
    tern_kern_attention_fwd_blocked(out, lse, scratch, qkv, B, T, C, NH, softmax_row_c);
}

static void attention_bwd_cpu(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *lse, size_t B,
                              size_t T, size_t C, size_t NH) {
    tern_kern_attention_bwd_blocked(dqkv, scratch, dout, qkv, lse, B, T, C, NH, probs_row_c, dsoftmax_row_c);
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
