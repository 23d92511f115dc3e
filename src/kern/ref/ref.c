/* The reference kernels: plain C with OpenMP over independent outputs, written to be obviously
 * right. They are the numerical oracle every faster set is tested against, and are never removed.
 * Each output element is computed by one thread in a fixed order, so results do not depend on
 * the thread count. Equations follow GPT-2 as Hugging Face's GPT2LMHeadModel computes it. */
#include "kern/kern.h"
#include "tern/core.h"

#include <math.h>
#include <string.h>

/* ---- matrix products ---- */

static void sgemm_ref(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                      const float *B, size_t ldb, float beta, float *C, size_t ldc) {
#pragma omp parallel for schedule(static) if ((M * N * K) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f) {
            memset(c, 0, N * sizeof(float));
        } else if (beta != 1.0f) {
            for (size_t j = 0; j < N; j++) c[j] *= beta;
        }
        if (!transB) {
            /* c[j] += alpha * sum_p a(i,p) * B[p,j]: stream rows of B. */
            for (size_t p = 0; p < K; p++) {
                float a = alpha * (transA ? A[p * lda + i] : A[i * lda + p]);
                const float *b = B + p * ldb;
                for (size_t j = 0; j < N; j++) c[j] += a * b[j];
            }
        } else {
            /* c[j] += alpha * dot(a(i,:), B[j,:]). */
            for (size_t j = 0; j < N; j++) {
                const float *b = B + j * ldb;
                float s = 0.0f;
                if (!transA) {
                    const float *a = A + i * lda;
                    for (size_t p = 0; p < K; p++) s += a[p] * b[p];
                } else {
                    for (size_t p = 0; p < K; p++) s += A[p * lda + i] * b[p];
                }
                c[j] += alpha * s;
            }
        }
    }
}

static void matmul_fwd_with(const tern_kern *k, float *out, const float *inp, const float *w, const float *bias,
                            size_t N, size_t C, size_t OC) {
    k->sgemm(0, 0, N, OC, C, 1.0f, inp, C, w, OC, 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for schedule(static) if ((N * OC) >= TERN_OMP_MIN_WORK)
        for (size_t i = 0; i < N; i++)
            for (size_t o = 0; o < OC; o++) out[i * OC + o] += bias[o];
    }
}

static void matmul_bwd_with(const tern_kern *k, float *dinp, float *dw, float *dbias, const float *dout,
                            const float *inp, const float *w, size_t N, size_t C, size_t OC) {
    /* dinp (N,C) = dout (N,OC) @ w^T, w being (C,OC). */
    k->sgemm(0, 1, N, C, OC, 1.0f, dout, OC, w, OC, 0.0f, dinp, C);
    /* dw (C,OC) += inp^T (C,N) @ dout (N,OC). */
    k->sgemm(1, 0, C, OC, N, 1.0f, inp, C, dout, OC, 1.0f, dw, OC);
    if (dbias) {
        /* Column sums over blocks of 64 columns, reading each row's block contiguously: every
         * column still adds its rows in order 0..N-1, as a walk down the column would, without
         * touching one cache line per element (that walk took 5% of a step of S). */
        size_t nblk = (OC + 63) / 64;
#pragma omp parallel for schedule(static) if ((N * OC) >= TERN_OMP_MIN_WORK)
        for (size_t bk = 0; bk < nblk; bk++) {
            size_t o0 = bk * 64, n = OC - o0 < 64 ? OC - o0 : 64;
            float s[64] = {0};
            for (size_t i = 0; i < N; i++) {
                const float *r = dout + i * OC + o0;
#pragma omp simd
                for (size_t o = 0; o < n; o++) s[o] += r[o];
            }
            for (size_t o = 0; o < n; o++) dbias[o0 + o] += s[o];
        }
    }
}

static void matmul_fwd_ref(float *out, const float *inp, const float *w, const float *bias, size_t N, size_t C, size_t OC) {
    matmul_fwd_with(&tern_kern_ref, out, inp, w, bias, N, C, OC);
}
static void matmul_bwd_ref(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                           size_t N, size_t C, size_t OC) {
    matmul_bwd_with(&tern_kern_ref, dinp, dw, dbias, dout, inp, w, N, C, OC);
}

/* ---- embeddings ---- */

static void encoder_fwd_ref(float *out, const int32_t *inp, const float *wte, const float *wpe, size_t B, size_t T,
                            size_t C) {
#pragma omp parallel for schedule(static) if ((B * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bt = 0; bt < B * T; bt++) {
        size_t t = bt % T;
        const float *e = wte + (size_t)inp[bt] * C, *p = wpe + t * C;
        float *o = out + bt * C;
        for (size_t c = 0; c < C; c++) o[c] = e[c] + p[c];
    }
}

static void encoder_bwd_ref(float *dwte, float *dwpe, const float *dout, const int32_t *inp, size_t B, size_t T,
                            size_t C) {
    /* Parallel over channels: each thread owns a block of columns, and visits rows in a fixed
     * order, so repeated tokens accumulate deterministically without atomics. */
    size_t nblk = (C + 63) / 64; /* blocks of 64 channels, rows read contiguously within a block */
#pragma omp parallel for schedule(static) if ((B * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bk = 0; bk < nblk; bk++) {
        size_t c0 = bk * 64, n = C - c0 < 64 ? C - c0 : 64;
        for (size_t bt = 0; bt < B * T; bt++) {
            const float *d = dout + bt * C + c0;
            float *e = dwte + (size_t)inp[bt] * C + c0, *p = dwpe + (bt % T) * C + c0;
#pragma omp simd
            for (size_t c = 0; c < n; c++) {
                e[c] += d[c];
                p[c] += d[c];
            }
        }
    }
}

/* ---- LayerNorm ---- */

static void layernorm_fwd_ref(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                              size_t N, size_t C) {
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++) {
        const float *x = inp + i * C;
        float m = 0.0f;
        for (size_t c = 0; c < C; c++) m += x[c];
        m /= (float)C;
        float v = 0.0f;
        for (size_t c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        v /= (float)C;
        float s = 1.0f / sqrtf(v + 1e-5f);
        float *o = out + i * C;
        for (size_t c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
        mean[i] = m;
        rstd[i] = s;
    }
}

static void layernorm_bwd_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                              const float *mean, const float *rstd, size_t N, size_t C) {
    /* With xhat = (x - mean) * rstd and g = dout * w:
     * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)). */
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++) {
        const float *x = inp + i * C, *dy = dout + i * C;
        float m = mean[i], s = rstd[i];
        float gm = 0.0f, gxm = 0.0f;
        for (size_t c = 0; c < C; c++) {
            float g = dy[c] * w[c];
            gm += g;
            gxm += g * (x[c] - m) * s;
        }
        gm /= (float)C;
        gxm /= (float)C;
        float *dx = dinp + i * C;
        for (size_t c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            dx[c] += s * (dy[c] * w[c] - gm - xhat * gxm);
        }
    }
    /* dw and db: column sums in blocks of 64 columns read row by row (each column still adds its
     * rows in order; see matmul_bwd_with's bias gradient) */
    size_t nblk = (C + 63) / 64;
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t bk = 0; bk < nblk; bk++) {
        size_t c0 = bk * 64, n = C - c0 < 64 ? C - c0 : 64;
        float sw[64] = {0}, sb[64] = {0};
        for (size_t i = 0; i < N; i++) {
            const float *d = dout + i * C + c0, *x = inp + i * C + c0;
            float m = mean[i], r = rstd[i];
#pragma omp simd
            for (size_t c = 0; c < n; c++) {
                sw[c] += d[c] * (x[c] - m) * r;
                sb[c] += d[c];
            }
        }
        for (size_t c = 0; c < n; c++) {
            dw[c0 + c] += sw[c];
            db[c0 + c] += sb[c];
        }
    }
}

/* ---- attention ---- */

/* Row by row with plain loops, one (batch, head) per task: the row's scores live in the task's
 * scratch; lse keeps max + log(sum of exp) for the backward pass, which recomputes each row. */
static void attention_fwd_ref(float *out, float *lse, float *scratch, const float *qkv, size_t B, size_t T, size_t C,
                              size_t NH) {
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for collapse(2) schedule(static) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++) {
            float *a = scratch + (b * NH + h) * 2 * TERN_ATT_BQ * T;
            for (size_t t = 0; t < T; t++) {
                const float *q = qkv + (b * T + t) * C3 + h * hs;
                float mx = -INFINITY;
                for (size_t u = 0; u <= t; u++) {
                    const float *k = qkv + (b * T + u) * C3 + C + h * hs;
                    float s = 0.0f;
                    for (size_t i = 0; i < hs; i++) s += q[i] * k[i];
                    s *= scale;
                    a[u] = s;
                    if (s > mx) mx = s;
                }
                float sum = 0.0f;
                for (size_t u = 0; u <= t; u++) {
                    a[u] = expf(a[u] - mx);
                    sum += a[u];
                }
                lse[(b * NH + h) * T + t] = mx + logf(sum);
                float inv = 1.0f / sum;
                float *o = out + (b * T + t) * C + h * hs;
                for (size_t i = 0; i < hs; i++) o[i] = 0.0f;
                for (size_t u = 0; u <= t; u++) {
                    const float *v = qkv + (b * T + u) * C3 + 2 * C + h * hs;
                    for (size_t i = 0; i < hs; i++) o[i] += a[u] * inv * v[i];
                }
            }
        }
}

static void attention_bwd_ref(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *lse, size_t B,
                              size_t T, size_t C, size_t NH) {
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    /* Each (b, h) owns its slice of dqkv (its head's columns), so heads run in parallel. */
#pragma omp parallel for collapse(2) schedule(static) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++) {
            float *a = scratch + (b * NH + h) * 2 * TERN_ATT_BQ * T, *da = a + T;
            for (size_t t = 0; t < T; t++)
                for (size_t j = 0; j < 3; j++) memset(dqkv + (b * T + t) * C3 + j * C + h * hs, 0, hs * sizeof(float));
            for (size_t t = 0; t < T; t++) {
                const float *q = qkv + (b * T + t) * C3 + h * hs;
                const float *dy = dout + (b * T + t) * C + h * hs;
                float l = lse[(b * NH + h) * T + t];
                /* the probabilities again: a[u] = exp(q . k[u] * scale - lse) */
                for (size_t u = 0; u <= t; u++) {
                    const float *k = qkv + (b * T + u) * C3 + C + h * hs;
                    float s = 0.0f;
                    for (size_t i = 0; i < hs; i++) s += q[i] * k[i];
                    a[u] = expf(s * scale - l);
                }
                /* out = sum_u a[u] v[u]: da[u] = dy . v[u], dv[u] += a[u] dy. */
                for (size_t u = 0; u <= t; u++) {
                    const float *v = qkv + (b * T + u) * C3 + 2 * C + h * hs;
                    float *dv = dqkv + (b * T + u) * C3 + 2 * C + h * hs;
                    float s = 0.0f;
                    for (size_t i = 0; i < hs; i++) {
                        s += dy[i] * v[i];
                        dv[i] += a[u] * dy[i];
                    }
                    da[u] = s;
                }
                /* softmax backward: dscore[u] = a[u] (da[u] - sum_w a[w] da[w]). */
                float dot = 0.0f;
                for (size_t u = 0; u <= t; u++) dot += a[u] * da[u];
                float *dq = dqkv + (b * T + t) * C3 + h * hs;
                for (size_t u = 0; u <= t; u++) {
                    float ds = a[u] * (da[u] - dot) * scale;
                    const float *k = qkv + (b * T + u) * C3 + C + h * hs;
                    float *dk = dqkv + (b * T + u) * C3 + C + h * hs;
                    for (size_t i = 0; i < hs; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                    }
                }
            }
        }
}

/* ---- GELU ---- */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

static void gelu_fwd_ref(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

static void gelu_bwd_ref(float *dinp, const float *inp, const float *dout, size_t n) {
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float d = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = d * dout[i];
    }
}

static void residual_fwd_ref(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ---- softmax + cross-entropy ---- */

static void crossentropy_fwd_bwd_ref(float *losses, float *dlogits, const float *logits, const int32_t *targets,
                                     float dscale, size_t N, size_t V) {
#pragma omp parallel for schedule(static) if ((N * V) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++) {
        const float *x = logits + i * V;
        float mx = -INFINITY;
        for (size_t v = 0; v < V; v++)
            if (x[v] > mx) mx = x[v];
        double sum = 0.0;
        for (size_t v = 0; v < V; v++) sum += exp((double)(x[v] - mx));
        float lse = mx + (float)log(sum);
        size_t y = (size_t)targets[i];
        losses[i] = lse - x[y];
        if (dlogits) {
            float *d = dlogits + i * V;
            for (size_t v = 0; v < V; v++) {
                float p = expf(x[v] - lse);
                d[v] = (p - (v == y ? 1.0f : 0.0f)) * dscale;
            }
        }
    }
}

const tern_kern tern_kern_ref = {
    .name = "ref",
    .sgemm = sgemm_ref,
    .encoder_fwd = encoder_fwd_ref,
    .encoder_bwd = encoder_bwd_ref,
    .layernorm_fwd = layernorm_fwd_ref,
    .layernorm_bwd = layernorm_bwd_ref,
    .matmul_fwd = matmul_fwd_ref,
    .matmul_bwd = matmul_bwd_ref,
    .attention_fwd = attention_fwd_ref,
    .attention_bwd = attention_bwd_ref,
    .gelu_fwd = gelu_fwd_ref,
    .gelu_bwd = gelu_bwd_ref,
    .residual_fwd = residual_fwd_ref,
    .crossentropy_fwd_bwd = crossentropy_fwd_bwd_ref,
};

/* Shared with kern/cpu: the matmul wrappers over whichever sgemm a set provides. */
void tern_kern_matmul_fwd_with(const tern_kern *k, float *out, const float *inp, const float *w, const float *bias,
                               size_t N, size_t C, size_t OC) {
    matmul_fwd_with(k, out, inp, w, bias, N, C, OC);
}
void tern_kern_matmul_bwd_with(const tern_kern *k, float *dinp, float *dw, float *dbias, const float *dout,
                               const float *inp, const float *w, size_t N, size_t C, size_t OC) {
    matmul_bwd_with(k, dinp, dw, dbias, dout, inp, w, N, C, OC);
}
