/* The CPU set: the reference kernels, with matrix products handed to oneDNN's sgemm (a
 * well-kept library, far faster than any plain loop; docs/PERFORMANCE.md has the comparison with
 * OpenBLAS). oneDNN threads with the same OpenMP pool as tern's own kernels. The avx2 and avx512
 * sets override further entries on top of this one. At bf16 the products are emulated
 * (cpu/bf16.c); the avx512 set replaces sgemm with the native one where the CPU has
 * AVX512_BF16. */
#include "backend/backend_int.h"
#include "tern/core.h"

#include <dnnl.h>
#include <math.h>
#include <string.h>

void tern_sgemm_f32(tern_backend *be, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    (void)be;
    if (M == 0 || N == 0) return;
    /* dnnl_sgemm is row-major, with 'N'/'T' for each operand. */
    dnnl_status_t st = dnnl_sgemm(transA ? 'T' : 'N', transB ? 'T' : 'N', (dnnl_dim_t)M, (dnnl_dim_t)N, (dnnl_dim_t)K, alpha,
                                  A, (dnnl_dim_t)lda, B, (dnnl_dim_t)ldb, beta, C, (dnnl_dim_t)ldc);
    TERN_ASSERT(st == dnnl_success); /* only invalid arguments fail, and shapes are checked upstream */
}

static void sgemm_blas(tern_backend *be, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                       size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (tern_is_bf16(be))
        tern_sgemm_bf16_emulated(tern_sgemm_f32, be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        tern_sgemm_f32(be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void matmul_fwd_cpu(tern_backend *be, float *out, const float *inp, const float *w, const float *bias, size_t N,
                           size_t C, size_t OC, int wt) {
    tern_kern_matmul_fwd_with(&tern_kern_cpu, be, out, inp, w, bias, N, C, OC, wt);
}

static void matmul_bwd_cpu(tern_backend *be, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                           const float *w, size_t N, size_t C, size_t OC, int wt) {
    if (!tern_is_bf16(be)) {
        tern_kern_matmul_bwd_with(&tern_kern_cpu, be, dinp, dw, dbias, dout, inp, w, N, C, OC, wt);
        return;
    }
    tern_matmul_bwd_bf16(0, tern_sgemm_f32, be, dinp, dw, dbias, dout, inp, w, N, C, OC, wt);
}

/* Attention as matrix products, flash-style in blocks of TERN_ATT_BQ query rows per (batch, head):
 * a block's scores against the keys up to its last row only (the causal blocks beyond are never
 * computed), a row softmax that also yields the row's log-sum-exp, then P V. No (T,T) matrix is
 * kept: the backward pass recomputes each block's probabilities from q, k and the log-sum-exp.
 * Within a block the few scores above the diagonal are computed and then zeroed, which keeps them
 * in GEMMs. Heads run in parallel; each GEMM then runs on one thread (OpenMP does not nest by
 * default). The row operations come from the caller, vectorised or not. */

/* At bf16 the operands of every product are rounded as ref rounds them: q, k, v and dout once,
 * into copies kept between calls (attention is called from outside parallel regions), the
 * probabilities and the scores' gradient row by row in place. The fp32 products of rounded values
 * are then the bf16 products. */
static struct {
    float *p;
    size_t cap;
} att_copy[4];

/* rows x cols of x (rows of ld floats) rounded into copy i, laid out as x. */
static const float *att_rounded(int i, const float *x, size_t rows, size_t ld, size_t cols) {
    size_t n = (rows - 1) * ld + cols;
    if (n > att_copy[i].cap) {
        tern_free(att_copy[i].p);
        att_copy[i].p = NULL;
        att_copy[i].cap = 0;
        if (tern_alloc((void **)&att_copy[i].p, n * sizeof(float), "bf16 attention operands") != TERN_OK)
            tern_abort(__FILE__, __LINE__, "%s", tern_errmsg());
        att_copy[i].cap = n;
    }
    tern_bf16_round(att_copy[i].p, ld, x, ld, rows, cols);
    return att_copy[i].p;
}

/* q, k and v rounded (GPT-2's packed buffer as one). */
static void att_round_qkv(const float **q, const float **k, const float **v, const tern_att_shape *sh) {
    size_t N = sh->B * sh->T, Q = sh->NH * sh->hs, KV = sh->NKV * sh->hs;
    if (*k == *q + Q && *v == *k + KV && sh->ldq == sh->ldk && sh->ldk == sh->ldv && sh->ldq == Q + 2 * KV) {
        const float *r = att_rounded(0, *q, N, sh->ldq, sh->ldq);
        *q = r, *k = r + Q, *v = r + Q + KV;
        return;
    }
    *q = att_rounded(0, *q, N, sh->ldq, Q);
    *k = att_rounded(1, *k, N, sh->ldk, KV);
    *v = att_rounded(2, *v, N, sh->ldv, KV);
}

static inline void round_row(float *x, size_t n) {
    uint32_t *u = (uint32_t *)(void *)x;
#pragma omp simd
    for (size_t i = 0; i < n; i++) u[i] = tern_bf16_bits(u[i]);
}

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

void tern_kern_attention_fwd_blocked(tern_backend *be, float *out, float *lse, float *scratch, const float *qp, const float *kp,
                                     const float *vp, const tern_att_shape *sh, float (*softmax_row)(float *row, size_t t, size_t n)) {
    size_t B = sh->B, T = sh->T, NH = sh->NH, hs = sh->hs, G = sh->NH / sh->NKV, C = NH * hs;
    float scale = 1.0f / sqrtf((float)hs);
    int bf = tern_is_bf16(be);
    if (bf) att_round_qkv(&qp, &kp, &vp, sh);
    /* one task per (batch, head), handed out one at a time as in the backward pass below */
#pragma omp parallel for schedule(dynamic, 1) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH, kh = h / G;
        const float *q = qp + b * T * sh->ldq + h * hs, *k = kp + b * T * sh->ldk + kh * hs, *v = vp + b * T * sh->ldv + kh * hs;
        float *s = scratch + bh * 2 * TERN_ATT_BQ * T, *l = lse + bh * T;
        for (size_t i0 = 0; i0 < T; i0 += TERN_ATT_BQ) {
            size_t i1 = i0 + TERN_ATT_BQ < T ? i0 + TERN_ATT_BQ : T, nb = i1 - i0, n = i1;
            tern_sgemm_f32(be, 0, 1, nb, n, hs, scale, q + i0 * sh->ldq, sh->ldq, k, sh->ldk, 0.0f, s, n);
            for (size_t r = 0; r < nb; r++) l[i0 + r] = softmax_row(s + r * n, i0 + r, n);
            if (bf) round_row(s, nb * n);
            tern_sgemm_f32(be, 0, 0, nb, hs, n, 1.0f, s, n, v, sh->ldv, 0.0f, out + (b * T + i0) * C + h * hs, C);
        }
    }
}

void tern_kern_attention_bwd_blocked(tern_backend *be, float *dqp, float *dkp, float *dvp, float *scratch, const float *dout,
                                     const float *qp, const float *kp, const float *vp, const float *lse, const tern_att_shape *sh,
                                     void (*probs_row)(float *row, size_t t, size_t n, float lse),
                                     void (*dsoftmax_row)(float *dp, const float *p, size_t t, size_t n, float scale)) {
    size_t B = sh->B, T = sh->T, NH = sh->NH, NKV = sh->NKV, hs = sh->hs, G = NH / NKV, C = NH * hs;
    float scale = 1.0f / sqrtf((float)hs);
    int bf = tern_is_bf16(be);
    if (bf) {
        att_round_qkv(&qp, &kp, &vp, sh);
        dout = att_rounded(3, dout, B * T, C, C);
    }
    /* One task per (batch, key/value head): it owns that head's dk and dv, into which its group's
     * query heads add in order, and those heads' rows of dq. Tasks are handed out one at a time
     * (dynamic): where other work slows one thread, equal shares fixed in advance would leave the
     * others waiting; the results do not depend on which thread runs a task. */
#pragma omp parallel for schedule(dynamic, 1) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bk = 0; bk < B * NKV; bk++) {
        size_t b = bk / NKV, kh = bk % NKV;
        const float *k = kp + b * T * sh->ldk + kh * hs, *v = vp + b * T * sh->ldv + kh * hs;
        float *dk = dkp + b * T * sh->ldk + kh * hs, *dv = dvp + b * T * sh->ldv + kh * hs;
        float *p = scratch + (b * NH + kh * G) * 2 * TERN_ATT_BQ * T, *dp = p + TERN_ATT_BQ * T;
        for (size_t t = 0; t < T; t++) {
            memset(dk + t * sh->ldk, 0, hs * sizeof(float));
            memset(dv + t * sh->ldv, 0, hs * sizeof(float));
        }
        for (size_t g = 0; g < G; g++) {
            size_t h = kh * G + g;
            const float *q = qp + b * T * sh->ldq + h * hs, *dy = dout + b * T * C + h * hs, *l = lse + (b * NH + h) * T;
            float *dq = dqp + b * T * sh->ldq + h * hs;
            for (size_t i0 = 0; i0 < T; i0 += TERN_ATT_BQ) {
                size_t i1 = i0 + TERN_ATT_BQ < T ? i0 + TERN_ATT_BQ : T, nb = i1 - i0, n = i1;
                /* P again, from the scores and the saved log-sum-exp */
                tern_sgemm_f32(be, 0, 1, nb, n, hs, scale, q + i0 * sh->ldq, sh->ldq, k, sh->ldk, 0.0f, p, n);
                for (size_t r = 0; r < nb; r++) probs_row(p + r * n, i0 + r, n, l[i0 + r]);
                if (bf) round_row(p, nb * n);
                /* dP = dY V^T; dV += P^T dY */
                tern_sgemm_f32(be, 0, 1, nb, n, hs, 1.0f, dy + i0 * C, C, v, sh->ldv, 0.0f, dp, n);
                tern_sgemm_f32(be, 1, 0, n, hs, nb, 1.0f, p, n, dy + i0 * C, C, 1.0f, dv, sh->ldv);
                for (size_t r = 0; r < nb; r++) dsoftmax_row(dp + r * n, p + r * n, i0 + r, n, scale);
                if (bf) round_row(dp, nb * n);
                /* dQ = dS K (this block's rows); dK += dS^T Q */
                tern_sgemm_f32(be, 0, 0, nb, hs, n, 1.0f, dp, n, k, sh->ldk, 0.0f, dq + i0 * sh->ldq, sh->ldq);
                tern_sgemm_f32(be, 1, 0, n, hs, nb, 1.0f, dp, n, q + i0 * sh->ldq, sh->ldq, 1.0f, dk, sh->ldk);
            }
        }
    }
}

static void attention_fwd_cpu(tern_backend *be, float *out, float *lse, float *scratch, const float *q, const float *k,
                              const float *v, const tern_att_shape *sh) {
    tern_kern_attention_fwd_blocked(be, out, lse, scratch, q, k, v, sh, softmax_row_c);
}

static void attention_bwd_cpu(tern_backend *be, float *dq, float *dk, float *dv, float *scratch, const float *dout,
                              const float *q, const float *k, const float *v, const float *lse, const tern_att_shape *sh) {
    tern_kern_attention_bwd_blocked(be, dq, dk, dv, scratch, dout, q, k, v, lse, sh, probs_row_c, dsoftmax_row_c);
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
