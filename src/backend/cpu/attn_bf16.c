/* Attention at bf16 on CPUs with AVX512_BF16: the blocked algorithm of cpu.c (blocks of
 * TERN_ATT_BQ query rows against the keys up to the block, the probabilities recomputed in the
 * backward pass from the log-sum-exp, one task per head handed out one at a time), with its six
 * products on VDPBF16PS. The roundings are ref's: q, k, v and dout rounded once, the
 * probabilities and the scores' gradient row by row, the softmax and its gradient in fp32; every
 * product accumulates in fp32. The passes over a block's rows are fused: the forward's softmax
 * is scaled straight into bf16, and the backward rounds the probabilities, and then the scores'
 * gradient, once into both of the layouts their products read (rows, and rows paired), two rows
 * at a time; the results are those of the unfused passes bit for bit. oneDNN's matmul is not
 * used here: these products are small (64 rows, head size 64) and one runs per thread, where a
 * primitive's per-call cost would be a large share.
 *
 * One micro-kernel does all six: C (=|+=) alpha A B with A's rows in bf16 (read as pairs along
 * the sum) and B packed in pairs ("VNNI"): word n of pair row p holds B[2p][n] in its low half and
 * B[2p+1][n] in its high half, so that one VDPBF16PS adds A[m][2p] B[2p][n] + A[m][2p+1] B[2p+1][n]
 * into 16 columns at once. Sums of odd length are padded with a zero pair half, columns with
 * zero words up to a multiple of 16. The two products whose left operand would be a transposed
 * block (dV += P^T dY, dK += dS^T Q) are computed transposed, dV^T += dY^T P, into a per-task
 * buffer that is added into dv (dk) once the task's heads are done. */
#include "backend/backend_int.h"
#include "tern/core.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,fma")
#include <immintrin.h>

typedef uint16_t bf16;

#define UP(x, m) (((x) + (m) - 1) / (m) * (m))

/* ---- conversions and packing ---- */

/* Lanes c..c+15 of a row whose first `len` values count (the rest read as zero). */
static inline __mmask16 upto(size_t c, size_t len) {
    size_t left = c < len ? len - c : 0;
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* n floats to bf16 (n may be odd; dst gets n values). */
static void cvt_row(bf16 *dst, const float *src, size_t n) {
    size_t j = 0;
    for (; j + 32 <= n; j += 32)
        _mm512_storeu_si512(dst + j, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + j + 16), _mm512_loadu_ps(src + j)));
    for (; j < n; j += 16) {
        __mmask16 m = upto(j, n);
        _mm256_mask_storeu_epi16(dst + j, m, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + j)));
    }
}

/* Each row's H heads of hs floats (rows of ld) into bf16 rows of H * hsp (hs padded to even with
 * zeros). */
static void cvt_heads(bf16 *dst, const float *src, size_t rows, size_t ld, size_t H, size_t hs, size_t hsp) {
#pragma omp parallel for schedule(static) if ((rows * H * hs) >= TERN_OMP_MIN_WORK)
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < H; h++) {
            bf16 *d = dst + (r * H + h) * hsp;
            cvt_row(d, src + r * ld + h * hs, hs);
            if (hsp > hs) d[hs] = 0;
        }
}

/* B^T packed from rows: word p of row j of src (bf16 rows of lds, kp words used) goes to pair row
 * p, column j; columns n..np-1 are zero. (S = Q K^T: B = K^T, whose pair p of column j is key
 * j's features 2p, 2p+1.) */
static void pack_t(uint32_t *dst, const bf16 *src, size_t lds, size_t n, size_t np, size_t kp) {
    /* 16 keys at a time: word p of each of 16 rows gathered into one vector */
    const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)(lds / 2)));
    for (size_t j = 0; j < np; j += 16) {
        __mmask16 m = upto(j, n);
        const int *base = (const int *)(const void *)(src + j * lds);
        for (size_t p = 0; p < kp; p++)
            _mm512_storeu_si512(dst + p * np + j, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, rows, base + p, 4));
    }
}

/* Pair rows from bf16 rows: word c of pair row p = (src[2p][c], src[2p+1][c]) for c < cols, zero
 * beyond up to np, and a missing row 2p+1 (rows odd) as zeros. (O = P V: B = V, paired along the
 * keys.) */
static void pack_rows(uint32_t *dst, const bf16 *src, size_t lds, size_t rows, size_t cols, size_t np) {
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3,
                                        34, 2, 33, 1, 32, 0);
    for (size_t p = 0; p < (rows + 1) / 2; p++) {
        const bf16 *a = src + 2 * p * lds, *b = 2 * p + 1 < rows ? a + lds : NULL;
        uint32_t *d = dst + p * np;
        size_t c = 0;
        for (; c + 16 <= cols; c += 16) {
            __m512i x = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(a + c)));
            __m512i y = b ? _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(b + c))) : _mm512_setzero_si512();
            _mm512_storeu_si512(d + c, _mm512_permutex2var_epi16(x, lo, y));
        }
        for (; c < cols; c++) d[c] = (uint32_t)a[c] | (b ? (uint32_t)b[c] << 16 : 0);
        for (; c < np; c++) d[c] = 0;
    }
}

/* ---- the softmax rows, fused with what reads them next ---- */

/* Word order of a pair row from _mm512_cvtne2ps_pbh(b, a): (a[c], b[c]) at word c. */
#define PAIR_IDX                                                                                                                \
    _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, \
                     1, 16, 0)

/* The forward's probabilities of one score row in bf16: x[0..m) (the exponentials, summed to
 * sum) times 1/sum, as the set's softmax_row scales them, rounded into dst[0..n2); zeros from m. */
static void probs_to_bf16(bf16 *dst, const float *x, size_t m, size_t n2, float sum) {
    __m512 inv = _mm512_set1_ps(1.0f / sum);
    for (size_t c = 0; c < n2; c += 16) {
        __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(upto(c, m), x + c), inv);
        _mm256_mask_storeu_epi16(dst + c, upto(c, n2), (__m256i)_mm512_cvtneps_pbh(y));
    }
}

/* Rows r and r + 1 of a block of nb probability rows (p, rows of n; row r + 1 read as zeros where
 * r + 1 = nb), whose row r counts its first m values and row r + 1 its first m + 1, rounded to
 * bf16: in place in fp32 (zeros from there to n), and as pair row d of np words, (row r, row
 * r + 1) at word c. The rounded fp32 values are the pair's halves. */
static void round_pair(uint32_t *d, float *p, size_t r, size_t nb, size_t m, size_t n, size_t np) {
    const __m512i idx = PAIR_IDX, hi = _mm512_set1_epi32((int)0xffff0000u);
    size_t m1 = r + 1 < nb ? m + 1 : 0; /* a missing row reads and writes nothing */
    float *x0 = p + r * n, *x1 = m1 ? x0 + n : x0;
    for (size_t c = 0; c < np; c += 16) {
        __m512 a = _mm512_maskz_loadu_ps(upto(c, m), x0 + c), b = _mm512_maskz_loadu_ps(upto(c, m1), x1 + c);
        __m512i w = _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(b, a));
        _mm512_storeu_si512(d + c, w);
        _mm512_mask_storeu_ps(x0 + c, upto(c, n), _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
        if (m1) _mm512_mask_storeu_ps(x1 + c, upto(c, n), _mm512_castsi512_ps(_mm512_and_si512(w, hi)));
    }
}

/* sum_u p[u] dp[u] over u < m, added as the set's dsoftmax_row adds it (16 lanes, then lane by
 * lane, then the tail), so that dS is the emulated path's bit for bit. */
static float row_dot(const float *p, const float *dp, size_t m) {
    size_t nv = m / 16 * 16;
    __m512 acc = _mm512_setzero_ps();
    for (size_t i = 0; i < nv; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(p + i), _mm512_loadu_ps(dp + i), acc);
    float buf[16], dot = 0.0f;
    _mm512_storeu_ps(buf, acc);
    for (int k = 0; k < 16; k++) dot += buf[k];
    for (size_t i = nv; i < m; i++) dot += p[i] * dp[i];
    return dot;
}

/* The scores' gradient of rows r and r + 1 of a block of nb rows (dp, p: rows of n; row r + 1
 * missing where r + 1 = nb), whose row r counts its first m values and row r + 1 its first m + 1:
 * dS[u] = p[u] (dp[u] - sum_w p[w] dp[w]) * scale there and 0 beyond, rounded to bf16 once for
 * both of its uses, as bf16 rows r, r + 1 of s (rows of n2: dQ = dS K) and as pair row d of np
 * words (dK^T += Q^T dS). */
static void dscores_pair(bf16 *s, uint32_t *d, const float *dp, const float *p, size_t r, size_t nb, size_t m, size_t n, size_t n2,
                         size_t np, float scale) {
    const __m512i idx = PAIR_IDX;
    size_t m1 = r + 1 < nb ? m + 1 : 0; /* a missing row reads and writes nothing */
    const float *p0 = p + r * n, *dp0 = dp + r * n, *p1 = m1 ? p0 + n : p0, *dp1 = m1 ? dp0 + n : dp0;
    bf16 *s0 = s + r * n2, *s1 = m1 ? s0 + n2 : s0;
    __m512 d0 = _mm512_set1_ps(row_dot(p0, dp0, m)), d1 = _mm512_set1_ps(m1 ? row_dot(p1, dp1, m1) : 0.0f), sc = _mm512_set1_ps(scale);
    for (size_t c = 0; c < np; c += 16) {
        __mmask16 k0 = upto(c, m), k1 = upto(c, m1);
        __m512 a = _mm512_mul_ps(_mm512_maskz_loadu_ps(k0, p0 + c), _mm512_sub_ps(_mm512_maskz_loadu_ps(k0, dp0 + c), d0));
        __m512 b = _mm512_mul_ps(_mm512_maskz_loadu_ps(k1, p1 + c), _mm512_sub_ps(_mm512_maskz_loadu_ps(k1, dp1 + c), d1));
        a = _mm512_maskz_mul_ps(k0, a, sc), b = _mm512_maskz_mul_ps(k1, b, sc);
        __m512i h = (__m512i)_mm512_cvtne2ps_pbh(b, a); /* a's 16 words, then b's */
        __mmask16 kn = upto(c, n2);
        _mm256_mask_storeu_epi16(s0 + c, kn, _mm512_castsi512_si256(h));
        if (m1) _mm256_mask_storeu_epi16(s1 + c, kn, _mm512_extracti64x4_epi64(h, 1));
        _mm512_storeu_si512(d + c, _mm512_permutexvar_epi16(idx, h));
    }
}

/* The transposed pairs of a block's rows: word p of row c = (src[2p][c], src[2p+1][c]) for
 * c < cols, p < (rows+1)/2 (missing row as zero); rows of ldd words. (dV^T += dY^T P: A = dY^T.) */
static void pack_cols(uint32_t *dst, size_t ldd, const bf16 *src, size_t lds, size_t rows, size_t cols) {
    for (size_t p = 0; p < (rows + 1) / 2; p++) {
        const bf16 *a = src + 2 * p * lds, *b = 2 * p + 1 < rows ? a + lds : NULL;
        for (size_t c = 0; c < cols; c++) dst[c * ldd + p] = (uint32_t)a[c] | (b ? (uint32_t)b[c] << 16 : 0);
    }
}

/* ---- the micro-kernel ---- */

/* Rows i0..i0+3 (clamped to M) of C against NV vectors of 16 columns from j0: C (=|+=) alpha A B
 * over kp pairs. A: bf16 rows of lda (even), B: pair rows of np words. Columns from N on are not
 * stored. */
#define TILE(NV)                                                                                                              \
    static inline void tile##NV(float *C, size_t ldc, const bf16 *A, size_t lda, const uint32_t *B, size_t np, size_t M,      \
                                size_t N, size_t i0, size_t j0, size_t kp, float alpha, int acc) {                            \
        const uint32_t *a[4];                                                                                                 \
        for (int r = 0; r < 4; r++) a[r] = (const uint32_t *)(const void *)(A + (i0 + r < M ? i0 + r : M - 1) * lda);          \
        __m512 c[4][NV];                                                                                                      \
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) c[r][v] =    \
            _mm512_setzero_ps();                                                                                              \
        const uint32_t *b = B + j0;                                                                                           \
        for (size_t p = 0; p < kp; p++, b += np) {                                                                            \
            __m512bh bv[NV];                                                                                                  \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) bv[v] = (__m512bh)_mm512_loadu_si512(b + 16 * v);            \
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                                             \
                __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[r][p]);                                                      \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) c[r][v] = _mm512_dpbf16_ps(c[r][v], av, bv[v]);          \
            }                                                                                                                 \
        }                                                                                                                     \
        __m512 al = _mm512_set1_ps(alpha);                                                                                    \
        for (int r = 0; r < 4 && i0 + r < M; r++) {                                                                           \
            float *o = C + (i0 + r) * ldc + j0;                                                                               \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                                            \
                size_t left = N - j0 - 16 * (size_t)v;                                                                        \
                __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);                                 \
                __m512 x = _mm512_mul_ps(c[r][v], al);                                                                        \
                if (acc) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, o + 16 * v));                                          \
                _mm512_mask_storeu_ps(o + 16 * v, m, x);                                                                      \
            }                                                                                                                 \
        }                                                                                                                     \
    }
TILE(1)
TILE(2)
TILE(3)
TILE(4)

/* C (M x N, rows of ldc) (=|+=) alpha A B, A (M x 2kp) bf16 rows of lda, B kp pair rows of np
 * (np >= N rounded up to 16). */
static void mm(float *C, size_t ldc, const bf16 *A, size_t lda, const uint32_t *B, size_t np, size_t M, size_t N, size_t kp, float alpha,
               int acc) {
    for (size_t j0 = 0; j0 < N; j0 += 64) {
        size_t nv = (N - j0 + 15) / 16;
        for (size_t i0 = 0; i0 < M; i0 += 4) {
            if (nv >= 4)
                tile4(C, ldc, A, lda, B, np, M, N, i0, j0, kp, alpha, acc);
            else if (nv == 3)
                tile3(C, ldc, A, lda, B, np, M, N, i0, j0, kp, alpha, acc);
            else if (nv == 2)
                tile2(C, ldc, A, lda, B, np, M, N, i0, j0, kp, alpha, acc);
            else
                tile1(C, ldc, A, lda, B, np, M, N, i0, j0, kp, alpha, acc);
        }
    }
}

/* ---- buffers ---- */

/* q, k, v, dout in bf16, kept between calls (attention runs from outside parallel regions), and
 * each thread's packs. */
static struct {
    void *p[5];
    size_t cap[5];
} bufs;

static void *buf(int i, size_t bytes) {
    if (bytes > bufs.cap[i]) {
        tern_free(bufs.p[i]);
        bufs.p[i] = NULL;
        bufs.cap[i] = 0;
        if (tern_alloc(&bufs.p[i], bytes, "bf16 attention buffers") != TERN_OK) tern_abort(__FILE__, __LINE__, "%s", tern_errmsg());
        bufs.cap[i] = bytes;
    }
    return bufs.p[i];
}

/* q, k, v (and dout) converted: rows of NH*hsp (NKV*hsp) bf16. */
typedef struct {
    const bf16 *q, *k, *v, *dy;
    size_t hsp, ldq, ldk; /* ldk: of k and v */
} conv;

static conv convert(const float *q, const float *k, const float *v, const float *dout, const tern_att_shape *s) {
    size_t N = s->B * s->T, hsp = UP(s->hs, 2);
    conv c = {.hsp = hsp, .ldq = s->NH * hsp, .ldk = s->NKV * hsp};
    bf16 *b = buf(0, (N * (2 * c.ldq + 2 * c.ldk) + 32) * sizeof(bf16));
    bf16 *bq = b, *bk = bq + N * c.ldq, *bv = bk + N * c.ldk, *by = bv + N * c.ldk;
    cvt_heads(bq, q, N, s->ldq, s->NH, s->hs, hsp);
    cvt_heads(bk, k, N, s->ldk, s->NKV, s->hs, hsp);
    cvt_heads(bv, v, N, s->ldv, s->NKV, s->hs, hsp);
    if (dout) cvt_heads(by, dout, N, s->NH * s->hs, s->NH, s->hs, hsp);
    c.q = bq, c.k = bk, c.v = bv, c.dy = by;
    return c;
}

/* One thread's packs: three of the keys' length (pair rows by head size), two blocks' worth of
 * probabilities or gradients, and the transposed gradient accumulators. */
typedef struct {
    uint32_t *kt, *vt, *kv; /* K^T, V^T (pack_t), V or K along the keys (pack_rows) */
    bf16 *pb;               /* a block's probabilities or dS as bf16 rows */
    uint32_t *pi, *yt;      /* a block's P or dS paired along its rows; dY^T or Q^T of the block */
    float *dvt, *dkt;       /* dV^T, dK^T (hs x T) */
} packs;

/* The sizes of one thread's packs in bytes, in packs_of's order. */
static void packs_sizes(size_t T, size_t hs, size_t sz[8]) {
    size_t hsp = UP(hs, 2), Tp = UP(T, 16), hp = UP(hs, 16), BQ = TERN_ATT_BQ;
    sz[0] = sz[1] = (hsp / 2) * Tp * 4;    /* kt, vt */
    sz[2] = (T + 1) / 2 * hp * 4;          /* kv */
    sz[3] = (BQ / 2) * Tp * 4;             /* pi */
    sz[4] = hs * (BQ / 2) * 4;             /* yt */
    sz[5] = BQ * UP(T, 2) * 2;             /* pb */
    sz[6] = sz[7] = hs * T * 4;            /* dvt, dkt */
}

static size_t packs_bytes(size_t T, size_t hs) {
    size_t sz[8], n = 0;
    packs_sizes(T, hs, sz);
    for (int i = 0; i < 8; i++) n += UP(sz[i], 64);
    return n;
}

static packs packs_of(void *base, size_t T, size_t hs) {
    size_t sz[8];
    packs_sizes(T, hs, sz);
    void *p[8];
    char *c = base;
    for (int i = 0; i < 8; i++) {
        p[i] = c;
        c += UP(sz[i], 64);
    }
    return (packs){p[0], p[1], p[2], p[5], p[3], p[4], p[6], p[7]};
}

/* ---- forward ---- */

void tern_attention_fwd_bf16(tern_backend *be, float *out, float *lse, float *scratch, const float *qp, const float *kp, const float *vp,
                             const tern_att_shape *sh, const tern_att_rows *rows) {
    (void)be;
    size_t B = sh->B, T = sh->T, NH = sh->NH, hs = sh->hs, G = sh->NH / sh->NKV, C = NH * hs;
    float scale = 1.0f / sqrtf((float)hs);
    conv cv = convert(qp, kp, vp, NULL, sh);
    size_t hsp = cv.hsp, kp2 = hsp / 2, Tp = UP(T, 16), hp = UP(hs, 16);
    size_t per = UP(packs_bytes(T, hs), 64);
    int nthr = omp_get_max_threads();
    char *tb = buf(1, per * (size_t)nthr);
#pragma omp parallel for schedule(dynamic, 1) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH, kh = h / G;
        packs pk = packs_of(tb + per * (size_t)omp_get_thread_num(), T, hs);
        const bf16 *q = cv.q + b * T * cv.ldq + h * hsp, *k = cv.k + b * T * cv.ldk + kh * hsp, *v = cv.v + b * T * cv.ldk + kh * hsp;
        /* K^T for the scores, V paired along the keys for P V: the whole sequence, once */
        pack_t(pk.kt, k, cv.ldk, T, Tp, kp2);
        pack_rows(pk.kv, v, cv.ldk, T, hs, hp);
        float *s = scratch + bh * 2 * TERN_ATT_BQ * T, *l = lse + bh * T;
        for (size_t i0 = 0; i0 < T; i0 += TERN_ATT_BQ) {
            size_t i1 = i0 + TERN_ATT_BQ < T ? i0 + TERN_ATT_BQ : T, nb = i1 - i0, n = i1, n2 = UP(n, 2);
            mm(s, n, q + i0 * cv.ldq, cv.ldq, pk.kt, Tp, nb, n, kp2, scale, 0);
            for (size_t r = 0; r < nb; r++) { /* the causal softmax of row i0 + r, straight to bf16 */
                float *x = s + r * n;
                size_t m = i0 + r + 1;
                float mx = rows->row_max(x, m), sum = rows->row_exp(x, x, m, mx);
                l[i0 + r] = mx + logf(sum);
                probs_to_bf16(pk.pb + r * n2, x, m, n2, sum);
            }
            mm(out + (b * T + i0) * C + h * hs, C, pk.pb, n2, pk.kv, hp, nb, hs, n2 / 2, 1.0f, 0);
        }
    }
}

/* ---- backward ---- */

void tern_attention_bwd_bf16(tern_backend *be, float *dqp, float *dkp, float *dvp, float *scratch, const float *dout, const float *qp,
                             const float *kp, const float *vp, const float *lse, const tern_att_shape *sh, const tern_att_rows *rows) {
    (void)be;
    size_t B = sh->B, T = sh->T, NH = sh->NH, NKV = sh->NKV, hs = sh->hs, G = NH / NKV, C = NH * hs;
    float scale = 1.0f / sqrtf((float)hs);
    conv cv = convert(qp, kp, vp, dout, sh);
    size_t hsp = cv.hsp, kp2 = hsp / 2, Tp = UP(T, 16), hp = UP(hs, 16), BQ2 = TERN_ATT_BQ / 2;
    size_t per = UP(packs_bytes(T, hs), 64);
    int nthr = omp_get_max_threads();
    char *tb = buf(1, per * (size_t)nthr);
#pragma omp parallel for schedule(dynamic, 1) if ((B * T * T * C) >= TERN_OMP_MIN_WORK)
    for (size_t bk = 0; bk < B * NKV; bk++) {
        size_t b = bk / NKV, kh = bk % NKV;
        packs pk = packs_of(tb + per * (size_t)omp_get_thread_num(), T, hs);
        const bf16 *k = cv.k + b * T * cv.ldk + kh * hsp, *v = cv.v + b * T * cv.ldk + kh * hsp;
        float *p = scratch + (b * NH + kh * G) * 2 * TERN_ATT_BQ * T, *dp = p + TERN_ATT_BQ * T;
        /* K^T for the scores, V^T for dP = dY V^T, K paired along the keys for dQ = dS K */
        pack_t(pk.kt, k, cv.ldk, T, Tp, kp2);
        pack_t(pk.vt, v, cv.ldk, T, Tp, kp2);
        pack_rows(pk.kv, k, cv.ldk, T, hs, hp);
        memset(pk.dvt, 0, hs * T * sizeof(float));
        memset(pk.dkt, 0, hs * T * sizeof(float));
        for (size_t g = 0; g < G; g++) {
            size_t h = kh * G + g;
            const bf16 *q = cv.q + b * T * cv.ldq + h * hsp, *dy = cv.dy + b * T * cv.ldq + h * hsp;
            const float *l = lse + (b * NH + h) * T;
            float *dq = dqp + b * T * sh->ldq + h * hs;
            for (size_t i0 = 0; i0 < T; i0 += TERN_ATT_BQ) {
                size_t i1 = i0 + TERN_ATT_BQ < T ? i0 + TERN_ATT_BQ : T, nb = i1 - i0, n = i1, n2 = UP(n, 2), np = UP(n, 16);
                size_t nbp = (nb + 1) / 2;
                /* P again, rounded, and paired along its rows for dV; then dP = dY V^T */
                mm(p, n, q + i0 * cv.ldq, cv.ldq, pk.kt, Tp, nb, n, kp2, scale, 0);
                for (size_t r = 0; r < nb; r += 2) { /* two rows exponentiated, then rounded while in cache */
                    for (size_t u = r; u < r + 2 && u < nb; u++) rows->row_exp(p + u * n, p + u * n, i0 + u + 1, l[i0 + u]);
                    round_pair(pk.pi + r / 2 * np, p, r, nb, i0 + r + 1, n, np);
                }
                mm(dp, n, dy + i0 * cv.ldq, cv.ldq, pk.vt, Tp, nb, n, kp2, 1.0f, 0);
                /* dV^T += dY^T P */
                pack_cols(pk.yt, BQ2, dy + i0 * cv.ldq, cv.ldq, nb, hs);
                mm(pk.dvt, T, (const bf16 *)pk.yt, 2 * BQ2, pk.pi, np, hs, n, nbp, 1.0f, 1);
                /* dS, rounded once into rows and pairs; dQ = dS K; dK^T += Q^T dS */
                for (size_t r = 0; r < nb; r += 2) dscores_pair(pk.pb, pk.pi + r / 2 * np, dp, p, r, nb, i0 + r + 1, n, n2, np, scale);
                mm(dq + i0 * sh->ldq, sh->ldq, pk.pb, n2, pk.kv, hp, nb, hs, n2 / 2, 1.0f, 0);
                pack_cols(pk.yt, BQ2, q + i0 * cv.ldq, cv.ldq, nb, hs);
                mm(pk.dkt, T, (const bf16 *)pk.yt, 2 * BQ2, pk.pi, np, hs, n, nbp, 1.0f, 1);
            }
        }
        /* dv, dk (this key/value head's columns) from the transposed sums */
        float *dk = dkp + b * T * sh->ldk + kh * hs, *dv = dvp + b * T * sh->ldv + kh * hs;
        for (size_t t0 = 0; t0 < T; t0 += 16)
            for (size_t c0 = 0; c0 < hs; c0 += 16)
                for (size_t t = t0; t < t0 + 16 && t < T; t++)
                    for (size_t c = c0; c < c0 + 16 && c < hs; c++) {
                        dk[t * sh->ldk + c] = pk.dkt[c * T + t];
                        dv[t * sh->ldv + c] = pk.dvt[c * T + t];
                    }
    }
}
#pragma GCC pop_options
