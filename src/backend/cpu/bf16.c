/* Matrix products at precision bf16 for the CPU sets: both operands rounded to bf16, products and
 * sums in fp32. Two ways to the same arithmetic:
 *  - native, on CPUs with AVX512_BF16 (the avx512 set): the operands converted to bf16 by the
 *    CPU's own conversion (VCVTNE2PS2BF16) and multiplied by oneDNN's matmul primitive with bf16
 *    source and weights and an fp32 destination (VDPBF16PS underneath); primitives are made once
 *    per shape and kept;
 *  - emulated, everywhere else (ref, cpu, avx2, and avx512 on CPUs without AVX512_BF16): copies of
 *    the operands rounded to bf16-representable fp32 values, then the set's own fp32 product.
 *    A product of two bf16 values is exact in fp32, so this is the native arithmetic up to the
 *    order of the fp32 additions.
 * The rounding is the hardware's: to nearest, ties to even; an fp32 subnormal becomes a zero of
 * its sign (the conversion instruction treats subnormal inputs as zero); a NaN stays a quiet NaN.
 * Activations are converted at every call. A weight the model holds for its pass
 * (tern_backend_hold_weights) is converted once per hold and per layout, straight into the blocked
 * layout oneDNN multiplies it in, and kept: the head's weight, used by every chunk of positions
 * twice, would otherwise be converted and repacked sixteen times a step of GPT-2 small
 * (docs/PERFORMANCE.md, "bf16 weights packed once per pass"). */
#include "backend/backend_int.h"
#include "tern/core.h"

#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---- rounding ---- */

void tern_bf16_round(float *dst, size_t ldd, const float *src, size_t lds, size_t rows, size_t cols) {
#pragma omp parallel for schedule(static) if ((rows * cols) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < rows; i++) {
        const uint32_t *s = (const uint32_t *)(const void *)(src + i * lds);
        uint32_t *d = (uint32_t *)(void *)(dst + i * ldd);
#pragma omp simd
        for (size_t j = 0; j < cols; j++) d[j] = tern_bf16_bits(s[j]);
    }
}

/* Scratch for the rounded or converted operands: buffers that grow and are kept, for calls from
 * outside a parallel region (the products of a step); a call from inside one gets its own. */
typedef struct {
    void *p[5];
    size_t cap[5];
} scratch;
static scratch shared_scratch;

static void *scratch_get(scratch *s, int i, size_t bytes) {
    if (bytes > s->cap[i]) {
        tern_free(s->p[i]);
        s->p[i] = NULL;
        s->cap[i] = 0;
        if (!(s->p[i] = tern_alloc_raw(bytes))) tern_abort(__FILE__, __LINE__, "out of memory for %zu bytes of bf16 operands", bytes);
        s->cap[i] = bytes;
    }
    return s->p[i];
}

static void scratch_drop(scratch *s) {
    for (int i = 0; i < 5; i++) tern_free(s->p[i]);
}

/* The stored extent of op(X): rows x cols of the matrix as it lies in memory. */
#define A_ROWS (transA ? K : M)
#define A_COLS (transA ? M : K)
#define B_ROWS (transB ? N : K)
#define B_COLS (transB ? K : N)

void tern_sgemm_bf16_emulated(tern_sgemm_fn f32, tern_backend *be, int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0 || K == 0) {
        f32(be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    scratch own = {0}, *s = omp_in_parallel() ? &own : &shared_scratch;
    float *a = scratch_get(s, 0, A_ROWS * A_COLS * sizeof(float)), *b = scratch_get(s, 1, B_ROWS * B_COLS * sizeof(float));
    tern_bf16_round(a, A_COLS, A, lda, A_ROWS, A_COLS);
    tern_bf16_round(b, B_COLS, B, ldb, B_ROWS, B_COLS);
    f32(be, transA, transB, M, N, K, alpha, a, A_COLS, b, B_COLS, beta, C, ldc);
    if (s == &own) scratch_drop(&own);
}

/* ---- native: AVX512_BF16 and oneDNN's matmul ---- */

int tern_bf16_native_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bf16");
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")
#include <immintrin.h>

/* rows x cols of src (rows of lds floats) into contiguous bf16 (rows of cols). */
static void to_bf16(uint16_t *dst, const float *src, size_t lds, size_t rows, size_t cols) {
#pragma omp parallel for schedule(static) if ((rows * cols) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < rows; i++) {
        const float *s = src + i * lds;
        uint16_t *d = dst + i * cols;
        size_t j = 0;
        for (; j + 32 <= cols; j += 32)
            _mm512_storeu_si512(d + j, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + j + 16), _mm512_loadu_ps(s + j)));
        for (; j < cols; j += 16) {
            __mmask16 m = cols - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (cols - j)) - 1);
            _mm256_mask_storeu_epi16(d + j, m, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s + j)));
        }
    }
}

/* A contiguous (rows, cols) matrix into contiguous bf16, with its column sums added into sums:
 * each column's rows added in order from zero and then into sums, as tern_colsum_add does, so
 * the sums are its sums bit for bit. Each thread takes a contiguous range of columns and walks
 * down the rows 16 at a time, its running sums in scratch, so that it reads whole stretches of
 * each row: walking a narrow block of columns down all the rows instead meets a new 4 KiB page
 * at every row, and ran 2-3 times slower than the plain conversion (a 4096 x 3072 gradient on
 * Zen 4: 10.1 ms, now 3.5, plain 2.3). The matrix is read once for both. */
static void to_bf16_colsum(uint16_t *dst, float *sums, const float *src, size_t rows, size_t cols) {
    size_t nv = (cols + 15) / 16;
    float *acc = scratch_get(&shared_scratch, 4, nv * 16 * sizeof(float)); /* from outside parallel regions only */
    memset(acc, 0, nv * 16 * sizeof(float));
#pragma omp parallel if ((rows * cols) >= TERN_OMP_MIN_WORK)
    {
        size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        size_t v0 = nv * t / nt, v1 = nv * (t + 1) / nt;
        for (size_t i0 = 0; i0 < rows; i0 += 16) {
            size_t i1 = rows - i0 < 16 ? rows : i0 + 16;
            for (size_t v = v0; v < v1; v++) {
                size_t c0 = v * 16, nc = cols - c0 < 16 ? cols - c0 : 16;
                __mmask16 mc = (__mmask16)((1u << nc) - 1);
                __m512 s = _mm512_load_ps(acc + c0);
                for (size_t i = i0; i < i1; i++) {
                    __m512 x = _mm512_maskz_loadu_ps(mc, src + i * cols + c0);
                    s = _mm512_add_ps(s, x);
                    _mm256_mask_storeu_epi16(dst + i * cols + c0, mc, (__m256i)_mm512_cvtneps_pbh(x));
                }
                _mm512_store_ps(acc + c0, s);
            }
        }
    }
    for (size_t c = 0; c < cols; c++) sums[c] += acc[c];
}
#pragma GCC pop_options

/* One product shape and its primitive. The operands are always contiguous after conversion, so
 * the shape, the transpositions, ldc, alpha and beta (and the thread count, which oneDNN plans
 * for) name a primitive, with whether b comes plain or packed in the blocked layout oneDNN
 * chooses for it. */
typedef struct {
    int transA, transB, nthr;
    int packed; /* b in the layout oneDNN prefers (bd, queried), rather than plain */
    dnnl_dim_t M, N, K, ldc;
    float alpha, beta;
    dnnl_memory_desc_t ad, bd, cd;
    dnnl_primitive_t p;
    dnnl_memory_desc_t plain_bd; /* b as it lies once converted; bd is it unless packed */
    dnnl_primitive_t reorder;    /* packed: plain_bd to bd */
    unsigned long long used;
} prim;

#define NPRIM 96
static struct {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    int broken; /* no engine or stream: every product emulated */
    prim p[NPRIM];
    unsigned long long tick;
} nat;

static void md_strided(dnnl_memory_desc_t *md, dnnl_dim_t rows, dnnl_dim_t cols, dnnl_data_type_t dt, dnnl_dim_t s0, dnnl_dim_t s1) {
    dnnl_dims_t d = {rows, cols}, s = {s0, s1};
    dnnl_status_t st = dnnl_memory_desc_init_by_strides(md, 2, d, dt, s);
    TERN_ASSERT(st == dnnl_success);
}

/* Makes the primitive of x (whose shape fields are set); 0 when oneDNN offers none. */
static int prim_make(prim *x) {
    md_strided(&x->ad, x->M, x->K, dnnl_bf16, x->transA ? 1 : x->K, x->transA ? x->M : 1);
    md_strided(&x->plain_bd, x->K, x->N, dnnl_bf16, x->transB ? 1 : x->N, x->transB ? x->K : 1);
    x->bd = x->plain_bd;
    if (x->packed) {
        dnnl_dims_t d = {x->K, x->N};
        dnnl_status_t st = dnnl_memory_desc_init_by_tag(&x->bd, 2, d, dnnl_bf16, dnnl_format_tag_any);
        TERN_ASSERT(st == dnnl_success);
    }
    md_strided(&x->cd, x->M, x->N, dnnl_f32, x->ldc, 1);
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int ok = dnnl_matmul_desc_init(&md, &x->ad, &x->bd, NULL, &x->cd) == dnnl_success && dnnl_primitive_attr_create(&attr) == dnnl_success;
    if (ok && x->alpha != 1.0f) ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &x->alpha) == dnnl_success;
    if (ok && x->beta != 0.0f) {
        /* C = alpha A B + beta C: the sum post-op adds beta times what C held */
        ok = dnnl_post_ops_create(&po) == dnnl_success && dnnl_post_ops_append_sum(po, x->beta) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    }
    if (ok) ok = dnnl_primitive_desc_create(&pd, &md, attr, nat.eng, NULL) == dnnl_success;
    if (ok && x->packed) {
        const dnnl_memory_desc_t *wd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        ok = wd != NULL;
        if (ok) x->bd = *wd;
    }
    if (ok) ok = dnnl_primitive_create(&x->p, pd) == dnnl_success;
    if (ok && x->packed) {
        dnnl_primitive_desc_t rpd = NULL;
        ok = dnnl_reorder_primitive_desc_create(&rpd, &x->plain_bd, nat.eng, &x->bd, nat.eng, NULL) == dnnl_success &&
             dnnl_primitive_create(&x->reorder, rpd) == dnnl_success;
        if (rpd) dnnl_primitive_desc_destroy(rpd);
        if (!ok) {
            if (x->p) dnnl_primitive_destroy(x->p);
            x->p = x->reorder = NULL;
        }
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return ok;
}

/* The kept primitive for this product, made on first use (the least recently used one makes way
 * when all are taken); NULL when oneDNN offers none. */
static prim *prim_get(int transA, int transB, int packed, size_t M, size_t N, size_t K, float alpha, float beta, size_t ldc) {
    int nthr = omp_get_max_threads();
    prim *lru = &nat.p[0];
    for (int i = 0; i < NPRIM; i++) {
        prim *x = &nat.p[i];
        if (x->p && x->transA == transA && x->transB == transB && x->packed == packed && x->M == (dnnl_dim_t)M && x->N == (dnnl_dim_t)N &&
            x->K == (dnnl_dim_t)K && x->ldc == (dnnl_dim_t)ldc && x->alpha == alpha && x->beta == beta && x->nthr == nthr) {
            x->used = ++nat.tick;
            return x;
        }
        if (!x->p || (lru->p && x->used < lru->used)) lru = x;
    }
    if (lru->p) dnnl_primitive_destroy(lru->p);
    if (lru->reorder) dnnl_primitive_destroy(lru->reorder);
    *lru = (prim){.transA = transA, .transB = transB, .packed = packed, .nthr = nthr, .M = (dnnl_dim_t)M, .N = (dnnl_dim_t)N, .K = (dnnl_dim_t)K,
                  .ldc = (dnnl_dim_t)ldc, .alpha = alpha, .beta = beta};
    if (!prim_make(lru)) {
        lru->p = NULL;
        return NULL;
    }
    lru->used = ++nat.tick;
    return lru;
}

static int native_ready(void) {
    if (!nat.eng && !nat.broken) {
        if (dnnl_engine_create(&nat.eng, dnnl_cpu, 0) != dnnl_success ||
            dnnl_stream_create(&nat.strm, nat.eng, dnnl_stream_default_flags) != dnnl_success) {
            nat.broken = 1;
            tern_log(TERN_LOG_WARN, "oneDNN gave no CPU engine for bf16 products; they are emulated");
        }
    }
    return !nat.broken;
}

/* Runs x: C = alpha op(a) op(b) + beta C, a and b laid out as x's descriptors say. */
static void native_exec(const prim *x, const void *a, const void *b, float *C) {
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
    int ok = dnnl_memory_create(&ma, &x->ad, nat.eng, (void *)a) == dnnl_success &&
             dnnl_memory_create(&mb, &x->bd, nat.eng, (void *)b) == dnnl_success &&
             dnnl_memory_create(&mc, &x->cd, nat.eng, C) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
        ok = dnnl_primitive_execute(x->p, nat.strm, 3, args) == dnnl_success && dnnl_stream_wait(nat.strm) == dnnl_success;
    }
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    TERN_ASSERT(ok); /* a primitive that was made runs: only invalid arguments fail */
}

/* Runs the reorder r from `from` (laid out as fd) into `to` (td). */
static void reorder_exec(dnnl_primitive_t r, const dnnl_memory_desc_t *fd, const void *from, const dnnl_memory_desc_t *td, void *to) {
    dnnl_memory_t mf = NULL, mt = NULL;
    int ok = dnnl_memory_create(&mf, fd, nat.eng, (void *)from) == dnnl_success && dnnl_memory_create(&mt, td, nat.eng, to) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, mf}, {DNNL_ARG_TO, mt}};
        ok = dnnl_primitive_execute(r, nat.strm, 2, args) == dnnl_success && dnnl_stream_wait(nat.strm) == dnnl_success;
    }
    if (mf) dnnl_memory_destroy(mf);
    if (mt) dnnl_memory_destroy(mt);
    TERN_ASSERT(ok);
}

/* A product whose A has this many rows or more first reorders a plain b into the blocked layout
 * oneDNN prefers. The reorder costs about 0.23 ns per element of b and the blocked kernel saves
 * about a tenth of the product, M x 5.3 ps per element of b at 380 GFLOP/s, so it pays from some
 * 430 rows on (Zen 4, bench/bench_packed): the weight gradients, whose b is an activation (their
 * products 0-6% faster with the reorder counted), and the head's, whose A has the vocabulary's
 * rows (about a fifth). */
#define PACK_B_ROWS 512

/* C = alpha op(a) op(b) + beta C with a and b contiguous bf16 as they lie; 0 when oneDNN offers
 * no primitive for it. */
static int native_product(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const uint16_t *a, const uint16_t *b,
                          float beta, float *C, size_t ldc) {
    prim *x = M >= PACK_B_ROWS ? prim_get(transA, transB, 1, M, N, K, alpha, beta, ldc) : NULL;
    if (x) {
        void *bp = scratch_get(&shared_scratch, 3, dnnl_memory_desc_get_size(&x->bd));
        reorder_exec(x->reorder, &x->plain_bd, b, &x->bd, bp);
        native_exec(x, a, bp, C);
        return 1;
    }
    if (!(x = prim_get(transA, transB, 0, M, N, K, alpha, beta, ldc))) return 0;
    native_exec(x, a, b, C);
    return 1;
}

/* ---- held weights, converted and packed once per hold ---- */

/* One weight as one product shape reads it: op(B) (K x N) from fp32 rows of ldb, in bf16 in the
 * packed layout md, made in hold epoch. */
typedef struct {
    const float *src;
    int transB;
    dnnl_dim_t K, N, ldb;
    dnnl_memory_desc_t md;
    unsigned long long epoch;
    void *p;
} wpack;

static struct {
    wpack *e;
    size_t n, cap;
} wts;

void tern_bf16_drop_weights(void) {
#pragma omp critical(tern_bf16_native)
    {
        for (size_t i = 0; i < wts.n; i++) tern_free(wts.e[i].p);
        free(wts.e);
        wts.e = NULL;
        wts.n = wts.cap = 0;
    }
}

/* A new entry for B as x reads it; NULL when memory gives out. */
static wpack *wpack_new(const prim *x, const float *B, size_t ldb) {
    if (wts.n == wts.cap) {
        size_t cap = wts.cap ? 2 * wts.cap : 64;
        wpack *e = realloc(wts.e, cap * sizeof *e);
        if (!e) return NULL;
        wts.e = e, wts.cap = cap;
    }
    wpack w = {.src = B, .transB = x->transB, .K = x->K, .N = x->N, .ldb = (dnnl_dim_t)ldb, .md = x->bd};
    if (tern_alloc(&w.p, dnnl_memory_desc_get_size(&w.md), "bf16 weights") != TERN_OK) {
        tern_err_clear();
        return NULL;
    }
    wts.e[wts.n] = w;
    return &wts.e[wts.n++];
}

/* op(B) converted and packed as the packed primitive x reads it, converted at most once per hold
 * epoch; NULL (the caller multiplies plain) when the weight already has a copy in another layout
 * (a product of another row count can prefer one: only one copy per weight and product shape is
 * kept) or memory gives out. */
static const void *weight_packed(const prim *x, const float *B, size_t ldb, unsigned long long epoch) {
    wpack *w = NULL;
    for (size_t i = 0; i < wts.n && !w; i++) {
        wpack *e = &wts.e[i];
        if (e->src == B && e->transB == x->transB && e->K == x->K && e->N == x->N && e->ldb == (dnnl_dim_t)ldb) {
            if (!dnnl_memory_desc_equal(&e->md, &x->bd)) return NULL;
            w = e;
        }
    }
    if (!w && !(w = wpack_new(x, B, ldb))) return NULL;
    if (w->epoch != epoch) {
        size_t rows = w->transB ? (size_t)w->N : (size_t)w->K, cols = w->transB ? (size_t)w->K : (size_t)w->N;
        uint16_t *plain = scratch_get(&shared_scratch, 1, rows * cols * sizeof(uint16_t));
        to_bf16(plain, B, ldb, rows, cols);
        reorder_exec(x->reorder, &x->plain_bd, plain, &x->bd, w->p); /* x->bd is w->md, checked above */
        w->epoch = epoch;
    }
    return w->p;
}

/* The primitive for C = alpha op(A) op(B) + beta C and B as it reads it: packed once per hold when
 * B lies in the held weights, else converted into scratch slot `slot`. NULL when oneDNN offers no
 * primitive. */
static const prim *with_b(tern_backend *be, int transA, int transB, size_t M, size_t N, size_t K, float alpha, float beta, size_t ldc,
                          const float *B, size_t ldb, int slot, const void **bp) {
    unsigned long long ep = tern_backend_held(be, B, (B_ROWS - 1) * ldb + B_COLS);
    prim *x = ep ? prim_get(transA, transB, 1, M, N, K, alpha, beta, ldc) : NULL;
    if (x && (*bp = weight_packed(x, B, ldb, ep))) return x;
    if (!(x = prim_get(transA, transB, 0, M, N, K, alpha, beta, ldc))) return NULL;
    uint16_t *b = scratch_get(&shared_scratch, slot, B_ROWS * B_COLS * sizeof(uint16_t));
    to_bf16(b, B, ldb, B_ROWS, B_COLS);
    *bp = b;
    return x;
}

void tern_sgemm_bf16_native(tern_sgemm_fn f32, tern_backend *be, int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                            const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    int done = 0;
    /* oneDNN's primitives keep state while they run: one product at a time, from outside parallel
     * regions (a call from inside one is emulated) */
    if (M && N && K && !omp_in_parallel()) {
#pragma omp critical(tern_bf16_native)
        if (native_ready()) {
            const void *b = NULL;
            const prim *x = with_b(be, transA, transB, M, N, K, alpha, beta, ldc, B, ldb, 1, &b);
            if (x) {
                uint16_t *a = scratch_get(&shared_scratch, 0, A_ROWS * A_COLS * sizeof(uint16_t));
                to_bf16(a, A, lda, A_ROWS, A_COLS);
                native_exec(x, a, b, C);
                done = 1;
            }
        }
    }
    if (!done) tern_sgemm_bf16_emulated(f32, be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- the backward pass of a matmul: dout rounded once for its two products ---- */

void tern_matmul_bwd_bf16(int native, tern_sgemm_fn f32, tern_backend *be, float *dinp, float *dw, float *dbias, const float *dout,
                          const float *inp, const float *w, size_t N, size_t C, size_t OC, int wt) {
    size_t wr = wt ? OC : C, wc = wt ? C : OC;
    int done = 0, summed = 0;
    if (native && N && C && OC && !omp_in_parallel()) {
#pragma omp critical(tern_bf16_native)
        if (native_ready()) {
            uint16_t *d = scratch_get(&shared_scratch, 0, N * OC * sizeof(uint16_t));
            uint16_t *x = scratch_get(&shared_scratch, 2, N * C * sizeof(uint16_t));
            if (dbias)
                to_bf16_colsum(d, dbias, dout, N, OC), summed = 1;
            else
                to_bf16(d, dout, OC, N, OC);
            to_bf16(x, inp, C, N, C);
            /* as tern_kern_matmul_bwd_with: dinp = dout W^T or dout W; dW += inp^T dout or dout^T inp */
            const void *wb = NULL;
            const prim *pd = with_b(be, 0, !wt, N, C, OC, 1.0f, 0.0f, C, w, wc, 1, &wb);
            if (pd) native_exec(pd, d, wb, dinp);
            done = pd && (wt ? native_product(1, 0, OC, C, N, 1.0f, d, x, 1.0f, dw, C) : native_product(1, 0, C, OC, N, 1.0f, x, d, 1.0f, dw, OC));
        }
    }
    if (dbias && !summed) tern_colsum_add(dbias, dout, N, OC);
    if (done) return;
    if (!N || !C || !OC || omp_in_parallel()) {
        tern_sgemm_bf16_emulated(f32, be, 0, !wt, N, C, OC, 1.0f, dout, OC, w, wc, 0.0f, dinp, C);
        if (wt)
            tern_sgemm_bf16_emulated(f32, be, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
        else
            tern_sgemm_bf16_emulated(f32, be, 1, 0, C, OC, N, 1.0f, inp, C, dout, OC, 1.0f, dw, OC);
        return;
    }
    float *d = scratch_get(&shared_scratch, 0, N * OC * sizeof(float));
    float *wf = scratch_get(&shared_scratch, 1, wr * wc * sizeof(float));
    float *x = scratch_get(&shared_scratch, 2, N * C * sizeof(float));
    tern_bf16_round(d, OC, dout, OC, N, OC);
    tern_bf16_round(wf, wc, w, wc, wr, wc);
    tern_bf16_round(x, C, inp, C, N, C);
    f32(be, 0, !wt, N, C, OC, 1.0f, d, OC, wf, wc, 0.0f, dinp, C);
    if (wt)
        f32(be, 1, 0, OC, C, N, 1.0f, d, OC, x, C, 1.0f, dw, C);
    else
        f32(be, 1, 0, C, OC, N, 1.0f, x, C, d, OC, 1.0f, dw, OC);
}
