/* The reference kernels: plain C with OpenMP over independent outputs, written to be obviously
 * right. They are the numerical oracle every faster set is tested against, and are never removed.
 * Each output element is computed by one thread in a fixed order, so results do not depend on
 * the thread count. Equations follow Hugging Face's GPT2LMHeadModel and LlamaForCausalLM. */
#include "backend/backend_int.h"
#include "tern/core.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* ---- matrix products ---- */

static void sgemm_ref_f32(tern_backend *be, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                          size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    (void)be;
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

/* At bf16 the same loops over copies of A and B rounded to bf16 (cpu/bf16.c). */
static void sgemm_ref(tern_backend *be, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                      size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (tern_is_bf16(be))
        tern_sgemm_bf16_emulated(sgemm_ref_f32, be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        sgemm_ref_f32(be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Column sums of x (N,C) added into out (C): every column adds its rows in order 0..N-1 from
 * zero, then into out, as a walk down the column would, without touching one cache line per
 * element (that walk took 5% of a step of S). Each thread takes a contiguous range of columns,
 * in stretches of up to 1024 that it reads row by row, 4 KiB of a row at a time: narrower blocks
 * (64 columns) walked down the rows met a new page at every row, and took 6.5 ms for a 4096 x
 * 3072 gradient on Zen 4. */
void tern_colsum_add(float *out, const float *x, size_t N, size_t C) {
#pragma omp parallel if ((N * C) >= TERN_OMP_MIN_WORK)
    {
        size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        size_t c0 = C * t / nt, c1 = C * (t + 1) / nt;
        float s[1024];
        for (size_t o0 = c0; o0 < c1; o0 += 1024) {
            size_t n = c1 - o0 < 1024 ? c1 - o0 : 1024;
            memset(s, 0, n * sizeof(float));
            for (size_t i = 0; i < N; i++) {
                const float *r = x + i * C + o0;
#pragma omp simd
                for (size_t o = 0; o < n; o++) s[o] += r[o];
            }
            for (size_t o = 0; o < n; o++) out[o0 + o] += s[o];
        }
    }
}

void tern_kern_matmul_fwd_with(const tern_kern *k, tern_backend *be, float *out, const float *inp, const float *w,
                               const float *bias, size_t N, size_t C, size_t OC, int wt) {
    /* W (C,OC): out = inp @ W; W (OC,C): out = inp @ W^T */
    k->sgemm(be, 0, wt, N, OC, C, 1.0f, inp, C, w, wt ? C : OC, 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for schedule(static) if ((N * OC) >= TERN_OMP_MIN_WORK)
        for (size_t i = 0; i < N; i++)
            for (size_t o = 0; o < OC; o++) out[i * OC + o] += bias[o];
    }
}

void tern_kern_matmul_bwd_with(const tern_kern *k, tern_backend *be, float *dinp, float *dw, float *dbias, const float *dout,
                               const float *inp, const float *w, size_t N, size_t C, size_t OC, int wt) {
    if (!wt) {
        /* dinp (N,C) = dout (N,OC) @ W^T, W being (C,OC); dW (C,OC) += inp^T (C,N) @ dout (N,OC) */
        k->sgemm(be, 0, 1, N, C, OC, 1.0f, dout, OC, w, OC, 0.0f, dinp, C);
        k->sgemm(be, 1, 0, C, OC, N, 1.0f, inp, C, dout, OC, 1.0f, dw, OC);
    } else {
        /* dinp (N,C) = dout (N,OC) @ W, W being (OC,C); dW (OC,C) += dout^T (OC,N) @ inp (N,C) */
        k->sgemm(be, 0, 0, N, C, OC, 1.0f, dout, OC, w, C, 0.0f, dinp, C);
        k->sgemm(be, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    }
    if (dbias) tern_colsum_add(dbias, dout, N, OC);
}

static void matmul_fwd_ref(tern_backend *be, float *out, const float *inp, const float *w, const float *bias, size_t N,
                           size_t C, size_t OC, int wt) {
    tern_kern_matmul_fwd_with(&tern_kern_ref, be, out, inp, w, bias, N, C, OC, wt);
}
static void matmul_bwd_ref(tern_backend *be, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                           const float *w, size_t N, size_t C, size_t OC, int wt) {
    if (!tern_is_bf16(be)) {
        tern_kern_matmul_bwd_with(&tern_kern_ref, be, dinp, dw, dbias, dout, inp, w, N, C, OC, wt);
        return;
    }
    tern_matmul_bwd_bf16(0, sgemm_ref_f32, be, dinp, dw, dbias, dout, inp, w, N, C, OC, wt);
}

/* ---- embeddings ---- */

static void encoder_fwd_ref(tern_backend *be, float *out, const int32_t *inp, const float *wte, const float *wpe, size_t B,
                            size_t T, size_t C) {
    (void)be;
#pragma omp parallel for schedule(static) if ((B * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bt = 0; bt < B * T; bt++) {
        const float *e = wte + (size_t)inp[bt] * C;
        float *o = out + bt * C;
        if (wpe) {
            const float *p = wpe + (bt % T) * C;
            for (size_t c = 0; c < C; c++) o[c] = e[c] + p[c];
        } else {
            memcpy(o, e, C * sizeof(float));
        }
    }
}

static void encoder_bwd_ref(tern_backend *be, float *dwte, float *dwpe, const float *dout, const int32_t *inp, size_t B,
                            size_t T, size_t C) {
    (void)be;
    /* Parallel over channels: each thread owns a block of columns, and visits rows in a fixed
     * order, so repeated tokens accumulate deterministically without atomics. */
    size_t nblk = (C + 63) / 64; /* blocks of 64 channels, rows read contiguously within a block */
#pragma omp parallel for schedule(static) if ((B * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bk = 0; bk < nblk; bk++) {
        size_t c0 = bk * 64, n = C - c0 < 64 ? C - c0 : 64;
        for (size_t bt = 0; bt < B * T; bt++) {
            const float *d = dout + bt * C + c0;
            float *e = dwte + (size_t)inp[bt] * C + c0;
#pragma omp simd
            for (size_t c = 0; c < n; c++) e[c] += d[c];
            if (dwpe) {
                float *p = dwpe + (bt % T) * C + c0;
#pragma omp simd
                for (size_t c = 0; c < n; c++) p[c] += d[c];
            }
        }
    }
}

/* ---- normalisation ---- */

static void layernorm_fwd_ref(tern_backend *be, float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, size_t N, size_t C, float eps) {
    (void)be;
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
        float s = 1.0f / sqrtf(v + eps);
        float *o = out + i * C;
        for (size_t c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
        mean[i] = m;
        rstd[i] = s;
    }
}

static void layernorm_bwd_ref(tern_backend *be, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                              const float *w, const float *mean, const float *rstd, size_t N, size_t C) {
    (void)be;
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
    /* dw and db: column sums in blocks of 64 columns read row by row (see colsum_add) */
    size_t nblk = (C + 63) / 64;
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t bk = 0; bk < nblk; bk++) tern_layernorm_dwdb_block(dw, db, dout, inp, mean, rstd, N, C, bk);
}

static void rmsnorm_fwd_ref(tern_backend *be, float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C,
                            float eps) {
    (void)be;
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++) {
        const float *x = inp + i * C;
        float ss = 0.0f;
        for (size_t c = 0; c < C; c++) ss += x[c] * x[c];
        float s = 1.0f / sqrtf(ss / (float)C + eps);
        float *o = out + i * C;
        for (size_t c = 0; c < C; c++) o[c] = x[c] * s * w[c];
        rstd[i] = s;
    }
}

static void rmsnorm_bwd_ref(tern_backend *be, float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                            const float *rstd, size_t N, size_t C) {
    (void)be;
    /* With xhat = x * rstd and g = dout * w: dx = rstd * (g - xhat * mean(g * xhat)). */
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++) {
        const float *x = inp + i * C, *dy = dout + i * C;
        float s = rstd[i], gxm = 0.0f;
        for (size_t c = 0; c < C; c++) gxm += dy[c] * w[c] * x[c] * s;
        gxm /= (float)C;
        float *dx = dinp + i * C;
        for (size_t c = 0; c < C; c++) dx[c] += s * (dy[c] * w[c] - x[c] * s * gxm);
    }
    size_t nblk = (C + 63) / 64;
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t bk = 0; bk < nblk; bk++) tern_rmsnorm_dw_block(dw, dout, inp, rstd, N, C, bk);
}

/* The fused entries, as the two kernels they stand for. */
static void residual_fwd_ref(tern_backend *be, float *out, const float *a, const float *b, size_t n);
static void gelu_fwd_ref(tern_backend *be, float *out, const float *inp, size_t n);

static void residual_layernorm_fwd_ref(tern_backend *be, float *res, float *out, float *mean, float *rstd, const float *a, const float *b,
                                       const float *w, const float *bias, size_t N, size_t C, float eps) {
    residual_fwd_ref(be, res, a, b, N * C);
    layernorm_fwd_ref(be, out, mean, rstd, res, w, bias, N, C, eps);
}

static void residual_rmsnorm_fwd_ref(tern_backend *be, float *res, float *out, float *rstd, const float *a, const float *b,
                                     const float *w, size_t N, size_t C, float eps) {
    residual_fwd_ref(be, res, a, b, N * C);
    rmsnorm_fwd_ref(be, out, rstd, res, w, N, C, eps);
}

static void bias_gelu_fwd_ref(tern_backend *be, float *out, float *x, const float *bias, size_t N, size_t OC) {
#pragma omp parallel for schedule(static) if ((N * OC) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++)
        for (size_t o = 0; o < OC; o++) x[i * OC + o] += bias[o];
    gelu_fwd_ref(be, out, x, N * OC);
}


/* ---- attention ---- */

/* Row by row with plain loops, one (batch, query head) per task: the row's scores live in the
 * task's scratch; lse keeps max + log(sum of exp) for the backward pass, which recomputes each
 * row. At bf16 every operand of a product is rounded where it is read (R below): q, k, v, dout,
 * the probabilities (from when they are computed) and the scores' gradient. */
#define R(x) (bf ? tern_bf16_round1(x) : (x))

static void attention_fwd_ref(tern_backend *be, float *out, float *lse, float *scratch, const float *qp, const float *kp,
                              const float *vp, const tern_att_shape *s) {
    size_t B = s->B, T = s->T, NH = s->NH, hs = s->hs, G = s->NH / s->NKV, C = NH * hs;
    float scale = 1.0f / sqrtf((float)hs);
    int bf = tern_is_bf16(be);
#pragma omp parallel for collapse(2) schedule(static) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++) {
            float *a = scratch + (b * NH + h) * 2 * TERN_ATT_BQ * T;
            size_t kh = h / G;
            for (size_t t = 0; t < T; t++) {
                const float *q = qp + (b * T + t) * s->ldq + h * hs;
                float mx = -INFINITY;
                for (size_t u = 0; u <= t; u++) {
                    const float *k = kp + (b * T + u) * s->ldk + kh * hs;
                    float sc = 0.0f;
                    for (size_t i = 0; i < hs; i++) sc += R(q[i]) * R(k[i]);
                    sc *= scale;
                    a[u] = sc;
                    if (sc > mx) mx = sc;
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
                    const float *v = vp + (b * T + u) * s->ldv + kh * hs;
                    float p = R(a[u] * inv);
                    for (size_t i = 0; i < hs; i++) o[i] += p * R(v[i]);
                }
            }
        }
}

static void attention_bwd_ref(tern_backend *be, float *dqp, float *dkp, float *dvp, float *scratch, const float *dout,
                              const float *qp, const float *kp, const float *vp, const float *lse, const tern_att_shape *s) {
    size_t B = s->B, T = s->T, NH = s->NH, NKV = s->NKV, hs = s->hs, G = NH / NKV, C = NH * hs;
    float scale = 1.0f / sqrtf((float)hs);
    int bf = tern_is_bf16(be);
    /* Each (b, kv head) owns its slice of dk and dv and its group's slices of dq, so tasks run in
     * parallel and the group's query heads add into dk, dv in a fixed order. */
#pragma omp parallel for collapse(2) schedule(static) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t b = 0; b < B; b++)
        for (size_t kh = 0; kh < NKV; kh++) {
            float *a = scratch + (b * NH + kh * G) * 2 * TERN_ATT_BQ * T, *da = a + T;
            for (size_t t = 0; t < T; t++) {
                memset(dkp + (b * T + t) * s->ldk + kh * hs, 0, hs * sizeof(float));
                memset(dvp + (b * T + t) * s->ldv + kh * hs, 0, hs * sizeof(float));
                for (size_t g = 0; g < G; g++) memset(dqp + (b * T + t) * s->ldq + (kh * G + g) * hs, 0, hs * sizeof(float));
            }
            for (size_t g = 0; g < G; g++) {
                size_t h = kh * G + g;
                for (size_t t = 0; t < T; t++) {
                    const float *q = qp + (b * T + t) * s->ldq + h * hs;
                    const float *dy = dout + (b * T + t) * C + h * hs;
                    float l = lse[(b * NH + h) * T + t];
                    /* the probabilities again: a[u] = exp(q . k[u] * scale - lse) */
                    for (size_t u = 0; u <= t; u++) {
                        const float *k = kp + (b * T + u) * s->ldk + kh * hs;
                        float sc = 0.0f;
                        for (size_t i = 0; i < hs; i++) sc += R(q[i]) * R(k[i]);
                        a[u] = R(expf(sc * scale - l));
                    }
                    /* out = sum_u a[u] v[u]: da[u] = dy . v[u], dv[u] += a[u] dy. */
                    for (size_t u = 0; u <= t; u++) {
                        const float *v = vp + (b * T + u) * s->ldv + kh * hs;
                        float *dv = dvp + (b * T + u) * s->ldv + kh * hs;
                        float sc = 0.0f;
                        for (size_t i = 0; i < hs; i++) {
                            sc += R(dy[i]) * R(v[i]);
                            dv[i] += a[u] * R(dy[i]);
                        }
                        da[u] = sc;
                    }
                    /* softmax backward: dscore[u] = a[u] (da[u] - sum_w a[w] da[w]). */
                    float dot = 0.0f;
                    for (size_t u = 0; u <= t; u++) dot += a[u] * da[u];
                    float *dq = dqp + (b * T + t) * s->ldq + h * hs;
                    for (size_t u = 0; u <= t; u++) {
                        float ds = R(a[u] * (da[u] - dot) * scale);
                        const float *k = kp + (b * T + u) * s->ldk + kh * hs;
                        float *dk = dkp + (b * T + u) * s->ldk + kh * hs;
                        for (size_t i = 0; i < hs; i++) {
                            dq[i] += ds * R(k[i]);
                            dk[i] += ds * R(q[i]);
                        }
                    }
                }
            }
        }
}

#undef R

static void attention_decode_ref(tern_backend *be, float *out, float *scratch, const float *q, const float *kc, const float *vc,
                                 size_t len, size_t NH, size_t NKV, size_t hs, size_t ld) {
    (void)be;
    size_t G = NH / NKV;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t h = 0; h < NH; h++) {
        const float *qh = q + h * hs;
        size_t kh = h / G;
        float mx = -INFINITY;
        for (size_t u = 0; u < len; u++) {
            const float *k = kc + u * ld + kh * hs;
            float sc = 0.0f;
            for (size_t i = 0; i < hs; i++) sc += qh[i] * k[i];
            scratch[u] = sc * scale;
            if (scratch[u] > mx) mx = scratch[u];
        }
        float sum = 0.0f;
        for (size_t u = 0; u < len; u++) {
            scratch[u] = expf(scratch[u] - mx);
            sum += scratch[u];
        }
        float *o = out + h * hs;
        for (size_t i = 0; i < hs; i++) o[i] = 0.0f;
        for (size_t u = 0; u < len; u++) {
            const float *v = vc + u * ld + kh * hs;
            float a = scratch[u] / sum;
            for (size_t i = 0; i < hs; i++) o[i] += a * v[i];
        }
    }
}

/* sign = +1: the rotation; -1: its transpose (the backward pass). */
static void rope_apply(float *x, const float *freq, size_t B, size_t T, size_t H, size_t hs, size_t ld, size_t pos0,
                       float sign) {
    size_t half = hs / 2;
#pragma omp parallel for collapse(2) schedule(static) if ((B * T * H * hs) >= TERN_OMP_MIN_WORK)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            float pos = (float)(pos0 + t);
            for (size_t i = 0; i < half; i++) {
                float ang = pos * freq[i], c = cosf(ang), sn = sign * sinf(ang);
                for (size_t h = 0; h < H; h++) {
                    float *r = x + (b * T + t) * ld + h * hs;
                    float x1 = r[i], x2 = r[i + half];
                    r[i] = x1 * c - x2 * sn;
                    r[i + half] = x2 * c + x1 * sn;
                }
            }
        }
}

static void rope_fwd_ref(tern_backend *be, float *x, const float *freq, size_t B, size_t T, size_t H, size_t hs, size_t ld,
                         size_t pos0) {
    (void)be;
    rope_apply(x, freq, B, T, H, hs, ld, pos0, 1.0f);
}

static void rope_bwd_ref(tern_backend *be, float *dx, const float *freq, size_t B, size_t T, size_t H, size_t hs, size_t ld,
                         size_t pos0) {
    (void)be;
    rope_apply(dx, freq, B, T, H, hs, ld, pos0, -1.0f);
}

/* ---- pointwise ---- */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

static void gelu_fwd_ref(tern_backend *be, float *out, const float *inp, size_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

static void gelu_bwd_ref(tern_backend *be, float *dinp, const float *inp, const float *dout, size_t n) {
    (void)be;
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

static void swiglu_fwd_ref(tern_backend *be, float *out, const float *gate, const float *up, size_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

static void swiglu_bwd_ref(tern_backend *be, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                           size_t n) {
    (void)be;
    /* silu'(g) = sig(g) (1 + g (1 - sig(g))) */
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], d = dout[i], sg = 1.0f / (1.0f + expf(-g));
        dup[i] = d * g * sg;
        dgate[i] = d * up[i] * sg * (1.0f + g * (1.0f - sg));
    }
}

static void residual_fwd_ref(tern_backend *be, float *out, const float *a, const float *b, size_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ---- softmax + cross-entropy ---- */

static void crossentropy_fwd_bwd_ref(tern_backend *be, float *losses, float *dlogits, const float *logits,
                                     const int32_t *targets, float dscale, size_t N, size_t V) {
    (void)be;
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

/* ---- whole buffers ---- */

static void adamw_ref(tern_backend *be, float *p, const float *g, float *m, float *v, size_t n, const tern_adamw_args *a) {
    (void)be;
    float b1 = a->beta1, b2 = a->beta2, step_size = a->lr / a->bc1;
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * a->gscale;
        float pi = p[i] * a->decay;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / a->bc2_sqrt + a->eps;
        p[i] = pi - step_size * mi / denom;
    }
}

#define SUM_BLOCK 4096

/* Per-block partial sums, each computed by one thread, added in block order. */
static double block_sum(const float *x, size_t n, int squares) {
    size_t nb = (n + SUM_BLOCK - 1) / SUM_BLOCK;
    double total = 0.0, partial[256];
    for (size_t b0 = 0; b0 < nb; b0 += 256) {
        size_t bn = nb - b0 < 256 ? nb - b0 : 256;
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
        for (size_t b = 0; b < bn; b++) {
            size_t lo = (b0 + b) * SUM_BLOCK, hi = lo + SUM_BLOCK < n ? lo + SUM_BLOCK : n;
            double s = 0.0;
            if (squares)
                for (size_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
            else
                for (size_t i = lo; i < hi; i++) s += (double)x[i];
            partial[b] = s;
        }
        for (size_t b = 0; b < bn; b++) total += partial[b];
    }
    return total;
}

static double sumsq_ref(tern_backend *be, const float *x, size_t n) {
    (void)be;
    return block_sum(x, n, 1);
}

static double sum_ref(tern_backend *be, const float *x, size_t n) {
    (void)be;
    return block_sum(x, n, 0);
}

static void scale_ref(tern_backend *be, float *x, size_t n, float s) {
    (void)be;
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

static void fill_ref(tern_backend *be, float *x, size_t n, float value) {
    (void)be;
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) x[i] = value;
}

static void fill_normal_ref(tern_backend *be, float *x, size_t n, float std, uint64_t seed, uint64_t stream) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = std * tern_rng_normal(seed, stream, i);
}

static long long find_nonfinite_ref(tern_backend *be, const float *x, size_t n, float *value) {
    (void)be;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            if (value) *value = x[i];
            return (long long)i;
        }
    return -1;
}

const tern_kern tern_kern_ref = {
    .name = "ref",
    .sgemm = sgemm_ref,
    .matmul_fwd = matmul_fwd_ref,
    .matmul_bwd = matmul_bwd_ref,
    .encoder_fwd = encoder_fwd_ref,
    .encoder_bwd = encoder_bwd_ref,
    .layernorm_fwd = layernorm_fwd_ref,
    .layernorm_bwd = layernorm_bwd_ref,
    .rmsnorm_fwd = rmsnorm_fwd_ref,
    .rmsnorm_bwd = rmsnorm_bwd_ref,
    .residual_layernorm_fwd = residual_layernorm_fwd_ref,
    .residual_rmsnorm_fwd = residual_rmsnorm_fwd_ref,
    .bias_gelu_fwd = bias_gelu_fwd_ref,
    .attention_fwd = attention_fwd_ref,
    .attention_bwd = attention_bwd_ref,
    .attention_decode = attention_decode_ref,
    .rope_fwd = rope_fwd_ref,
    .rope_bwd = rope_bwd_ref,
    .gelu_fwd = gelu_fwd_ref,
    .gelu_bwd = gelu_bwd_ref,
    .swiglu_fwd = swiglu_fwd_ref,
    .swiglu_bwd = swiglu_bwd_ref,
    .residual_fwd = residual_fwd_ref,
    .crossentropy_fwd_bwd = crossentropy_fwd_bwd_ref,
    .adamw = adamw_ref,
    .sumsq = sumsq_ref,
    .sum = sum_ref,
    .scale = scale_ref,
    .fill = fill_ref,
    .fill_normal = fill_normal_ref,
    .find_nonfinite = find_nonfinite_ref,
};
