/* The CUDA backend's host side: opening a device, its memory (plain cudaMalloc, never managed
 * memory), one stream on which every kernel and copy is queued, the matrix products through
 * cuBLAS and cuBLASLt, and the kernel table, whose entries check each launch and record the
 * first failure for tern_backend_sync with the kernel's name (docs/GPU.md has the design).
 *
 * Precision: "fp32" (the default and the exact mode) computes every product in fp32 on the CUDA
 * cores (cuBLAS's CUBLAS_COMPUTE_32F, no TF32); "bf16" lets cuBLAS round the operands of the
 * matrix products to bf16 on the tensor cores with fp32 accumulation
 * (CUBLAS_COMPUTE_32F_FAST_16BF) and runs attention's two products per tile on tensor cores too.
 * The buffers stay fp32 in both: parameters, gradients, activations and AdamW's moments.
 *
 * Built only with `make CUDA=1`, which defines TERN_CUDA. */
#include "backend/backend_int.h"

#ifdef TERN_CUDA
#include "backend/cuda/cuda_int.h"
#include "tern/core.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* cuBLAS and cuBLASLt are opened (dlopen) when the first CUDA backend is, not linked: loading
 * them costs a process about 210 MB of resident memory (their relocations), which every tern
 * command would pay, GPU or not. The functions used are reached through pointers of their own
 * types; the macros after the list make the calls below read as plain cuBLAS. */
#define BLAS_FNS(X)                                                                                                     \
    X(cublasCreate_v2) X(cublasDestroy_v2) X(cublasSetStream_v2) X(cublasSetWorkspace_v2) X(cublasSetMathMode)            \
    X(cublasGemmEx) X(cublasGetStatusString)
#define LT_FNS(X)                                                                                                       \
    X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescDestroy)                       \
    X(cublasLtMatmulDescSetAttribute) X(cublasLtMatrixLayoutCreate) X(cublasLtMatrixLayoutDestroy)                      \
    X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy) X(cublasLtMatmulPreferenceSetAttribute)        \
    X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmul)
#define DECLARE(f) static __typeof__(&f) dl_##f;
BLAS_FNS(DECLARE)
LT_FNS(DECLARE)
#undef DECLARE
#define cublasCreate_v2 dl_cublasCreate_v2
#define cublasDestroy_v2 dl_cublasDestroy_v2
#define cublasSetStream_v2 dl_cublasSetStream_v2
#define cublasSetWorkspace_v2 dl_cublasSetWorkspace_v2
#define cublasSetMathMode dl_cublasSetMathMode
#define cublasGemmEx dl_cublasGemmEx
#define cublasGetStatusString dl_cublasGetStatusString
#define cublasLtCreate dl_cublasLtCreate
#define cublasLtDestroy dl_cublasLtDestroy
#define cublasLtMatmulDescCreate dl_cublasLtMatmulDescCreate
#define cublasLtMatmulDescDestroy dl_cublasLtMatmulDescDestroy
#define cublasLtMatmulDescSetAttribute dl_cublasLtMatmulDescSetAttribute
#define cublasLtMatrixLayoutCreate dl_cublasLtMatrixLayoutCreate
#define cublasLtMatrixLayoutDestroy dl_cublasLtMatrixLayoutDestroy
#define cublasLtMatmulPreferenceCreate dl_cublasLtMatmulPreferenceCreate
#define cublasLtMatmulPreferenceDestroy dl_cublasLtMatmulPreferenceDestroy
#define cublasLtMatmulPreferenceSetAttribute dl_cublasLtMatmulPreferenceSetAttribute
#define cublasLtMatmulAlgoGetHeuristic dl_cublasLtMatmulAlgoGetHeuristic
#define cublasLtMatmul dl_cublasLtMatmul

#define STR_(x) #x
#define STR(x) STR_(x)
#define CUBLAS_SONAME "libcublas.so." STR(CUBLAS_VER_MAJOR)
#define CUBLASLT_SONAME "libcublasLt.so." STR(CUBLAS_VER_MAJOR)

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static char blas_error[384]; /* empty once loaded */

static void *find(void *lib, const char *soname, const char *name) {
    void *f = dlsym(lib, name);
    if (!f && !blas_error[0]) tern_fmt(blas_error, sizeof blas_error, "%s has no %s", soname, name);
    return f;
}

static void load_blas(void) {
    void *b = dlopen(CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL), *l = b ? dlopen(CUBLASLT_SONAME, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!b || !l) {
        tern_fmt(blas_error, sizeof blas_error, "cannot load cuBLAS (%s)", dlerror());
        return;
    }
    void *f;
#define LOAD_B(fn) f = find(b, CUBLAS_SONAME, #fn), memcpy(&dl_##fn, &f, sizeof f);
#define LOAD_L(fn) f = find(l, CUBLASLT_SONAME, #fn), memcpy(&dl_##fn, &f, sizeof f);
    BLAS_FNS(LOAD_B)
    LT_FNS(LOAD_L)
#undef LOAD_B
#undef LOAD_L
}

#define WORKSPACE_BYTES ((size_t)32 << 20) /* cuBLAS's and cuBLASLt's, shared: one stream uses it */
#define LT_PLANS 64                        /* cuBLASLt algorithms remembered, by shape */

/* A cuBLASLt algorithm for one shape of the fused matmul + bias, found once by the heuristic and
 * used for every later product of that shape: the same algorithm, the same bits. */
typedef struct lt_plan {
    size_t M, N, K;
    int wt, bf16;
    unsigned long used; /* when it was last used */
    int ok; /* 0: cuBLASLt has none for it; the plain product and a bias kernel are used */
    cublasLtMatmulAlgo_t algo;
} lt_plan;

typedef struct cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    void *ws;
    int bf16;
    int smem_optin;  /* shared memory a block may have, for the attention kernels' tiles */
    int sync_each;   /* TERN_CUDA_SYNC=1: wait after every kernel, so a fault names its kernel */
    const char *last; /* the last kernel queued */
    void *scratch;   /* the kernels' working memory, grown on demand */
    size_t scratch_bytes;
    void *pinned;    /* 64 bytes of page-locked host memory for results read back */
    size_t peak_in_use, total;
    lt_plan plans[LT_PLANS];
    int nplans;
    unsigned long tick; /* the plans' clock, for evicting the least recently used */
} cuda_ctx;

static const tern_kern cuda_kern;
static const tern_backend_mem cuda_mem;

static cuda_ctx *ctx_of(tern_backend *be) {
    cuda_ctx *x = be->ctx;
    cudaSetDevice(x->device);
    return x;
}

static void note_usage(cuda_ctx *x) {
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
        cudaGetLastError();
        return;
    }
    x->total = total;
    if (total - free_b > x->peak_in_use) x->peak_in_use = total - free_b;
}

/* After a launcher or runtime call for `kernel`: records a failure; with TERN_CUDA_SYNC=1 also
 * waits, so that an asynchronous fault is charged to the kernel that caused it. */
static void done(tern_backend *be, cudaError_t e, const char *kernel) {
    cuda_ctx *x = be->ctx;
    x->last = kernel;
    if (e == cudaSuccess && x->sync_each) e = cudaStreamSynchronize(x->stream);
    if (e != cudaSuccess)
        tern_backend_fail(be, TERN_EIO, "%s: %s (%s)%s", kernel, cudaGetErrorString(e), cudaGetErrorName(e),
                          x->sync_each ? "" : "; an asynchronous fault may come from a kernel queued before it: TERN_CUDA_SYNC=1 "
                                              "waits after each kernel and names the one that fails");
}

static void blas_done(tern_backend *be, cublasStatus_t st, const char *kernel) {
    if (st != CUBLAS_STATUS_SUCCESS) {
        tern_backend_fail(be, TERN_EIO, "%s: cuBLAS: %s", kernel, cublasGetStatusString(st));
        return;
    }
    done(be, cudaGetLastError(), kernel);
}

/* The kernels' working memory: at least `bytes`, or NULL after recording a failure. Growing it
 * waits for the stream first, since a queued kernel may still use the old one. */
static void *scratch(tern_backend *be, size_t bytes, const char *kernel) {
    cuda_ctx *x = be->ctx;
    if (bytes <= x->scratch_bytes && x->scratch) return x->scratch;
    cudaStreamSynchronize(x->stream);
    cudaFree(x->scratch);
    x->scratch = NULL;
    x->scratch_bytes = 0;
    size_t want = (bytes + bytes / 4 + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    if (cudaMalloc(&x->scratch, want) != cudaSuccess) {
        cudaGetLastError();
        x->scratch = NULL;
        tern_backend_fail(be, TERN_ENOMEM, "%s: out of device memory for %zu bytes of working memory", kernel, want);
        return NULL;
    }
    x->scratch_bytes = want;
    note_usage(x);
    return x->scratch;
}

/* ---- memory ---- */

static tern_status cu_alloc(tern_backend *be, void **out, size_t bytes, const char *what) {
    cuda_ctx *x = ctx_of(be);
    void *p = NULL;
    *out = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 64);
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t free_b = 0, total = 0;
        cudaMemGetInfo(&free_b, &total);
        return tern_err(TERN_ENOMEM, "%s: out of device memory for %s (%zu bytes asked, %zu of %zu free): %s", be->name, what, bytes,
                        free_b, total, cudaGetErrorString(e));
    }
    if (bytes && (e = cudaMemsetAsync(p, 0, bytes, x->stream)) != cudaSuccess) {
        cudaFree(p);
        return tern_err(TERN_EIO, "%s: clearing %s: %s", be->name, what, cudaGetErrorString(e));
    }
    note_usage(x);
    *out = p;
    return TERN_OK;
}

static void cu_free(tern_backend *be, void *p) {
    if (!p) return;
    ctx_of(be);
    done(be, cudaFree(p), "cudaFree");
}

/* A copy between host and device that waits for itself: after an upload the caller may reuse
 * or free its buffer, after a download read it. 1 on success. */
static int copy_wait(tern_backend *be, void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, const char *what) {
    cuda_ctx *x = ctx_of(be);
    if (!bytes) return 1;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, x->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(x->stream);
    done(be, e, what);
    return e == cudaSuccess;
}

static void cu_upload(tern_backend *be, void *dst, const void *src, size_t bytes) {
    copy_wait(be, dst, src, bytes, cudaMemcpyHostToDevice, "upload");
}

static void cu_download(tern_backend *be, void *dst, const void *src, size_t bytes) {
    copy_wait(be, dst, src, bytes, cudaMemcpyDeviceToHost, "download");
}

/* memmove's contract: overlapping ranges go through the working memory. */
static void cu_copy(tern_backend *be, void *dst, const void *src, size_t bytes) {
    cuda_ctx *x = ctx_of(be);
    if (!bytes || dst == src) return;
    const char *d = dst, *s = src;
    cudaError_t e;
    if (d < s + bytes && s < d + bytes) {
        void *tmp = scratch(be, bytes, "copy");
        if (!tmp) return;
        e = cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, x->stream);
        if (e == cudaSuccess) e = cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, x->stream);
    } else {
        e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, x->stream);
    }
    done(be, e, "copy");
}

static void cu_zero(tern_backend *be, void *p, size_t bytes) {
    cuda_ctx *x = ctx_of(be);
    if (bytes) done(be, cudaMemsetAsync(p, 0, bytes, x->stream), "zero");
}

static tern_status cu_sync(tern_backend *be) {
    cuda_ctx *x = ctx_of(be);
    cudaError_t e = cudaStreamSynchronize(x->stream);
    if (e != cudaSuccess)
        tern_backend_fail(be, TERN_EIO,
                          "%s (%s) in the work queued since the last synchronisation, whose last kernel was %s%s",
                          cudaGetErrorString(e), cudaGetErrorName(e), x->last ? x->last : "(none)",
                          x->sync_each ? "" : "; TERN_CUDA_SYNC=1 waits after each kernel and names the one that fails");
    return TERN_OK;
}

static const tern_backend_mem cuda_mem = {cu_alloc, cu_free, cu_upload, cu_download, cu_copy, cu_zero, cu_sync};

/* ---- matrix products ---- */

static int fits_int(size_t v) { return v <= 0x7fffffff; }

/* Row-major C = alpha op(A) op(B) + beta C as cuBLAS's column-major product C^T = op(B)^T op(A)^T:
 * a row-major matrix is its transpose in column-major order, so the operands swap and keep their
 * flags and leading dimensions. */
static void gemm(tern_backend *be, const char *kernel, int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                 size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    cuda_ctx *x = ctx_of(be);
    if (M == 0 || N == 0) return;
    if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(lda) || !fits_int(ldb) || !fits_int(ldc)) {
        tern_backend_fail(be, TERN_EINVAL, "%s: a %zux%zux%zu product is beyond cuBLAS's 32-bit sizes", kernel, M, N, K);
        return;
    }
    cublasStatus_t st = cublasGemmEx(x->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)K,
                                     &alpha, B, CUDA_R_32F, (int)ldb, A, CUDA_R_32F, (int)lda, &beta, C, CUDA_R_32F, (int)ldc,
                                     x->bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    blas_done(be, st, kernel);
}

static void k_sgemm(tern_backend *be, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    gemm(be, "sgemm", transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* The plan for out (N,OC) = inp (N,C) @ W + bias of this shape: the remembered one, or a slot
 * for a new one (a free slot, else the least recently used). */
static lt_plan *lt_find(cuda_ctx *x, size_t M, size_t N, size_t K, int wt) {
    lt_plan *lru = &x->plans[0];
    for (int i = 0; i < x->nplans; i++) {
        lt_plan *p = &x->plans[i];
        if (p->M == M && p->N == N && p->K == K && p->wt == wt && p->bf16 == x->bf16) {
            p->used = ++x->tick;
            return p;
        }
        if (p->used < lru->used) lru = p;
    }
    return x->nplans < LT_PLANS ? &x->plans[x->nplans++] : lru;
}

/* The descriptors of D (OC x N, column-major) = op(W) (OC x C) inp^T (C x N) + bias: W in
 * [in,out] layout is OC x C column-major as stored (no transpose), in [out,in] layout it is
 * C x OC stored (transposed); inp (N,C) row-major is C x N column-major. The bias epilogue adds
 * bias[o] down each row o of D, that is to feature o of every position. */
typedef struct lt_desc {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, d;
} lt_desc;

static void lt_desc_free(lt_desc *ds) {
    if (ds->op) cublasLtMatmulDescDestroy(ds->op);
    if (ds->a) cublasLtMatrixLayoutDestroy(ds->a);
    if (ds->b) cublasLtMatrixLayoutDestroy(ds->b);
    if (ds->d) cublasLtMatrixLayoutDestroy(ds->d);
}

static cublasStatus_t lt_desc_make(lt_desc *ds, cuda_ctx *x, const float *bias, size_t N, size_t C, size_t OC, int wt) {
    memset(ds, 0, sizeof *ds);
    cublasOperation_t ta = wt ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    cublasStatus_t st = cublasLtMatmulDescCreate(&ds->op, x->bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulDescSetAttribute(ds->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulDescSetAttribute(ds->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulDescSetAttribute(ds->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulDescSetAttribute(ds->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = wt ? cublasLtMatrixLayoutCreate(&ds->a, CUDA_R_32F, C, OC, (int64_t)C) : cublasLtMatrixLayoutCreate(&ds->a, CUDA_R_32F, OC, C, (int64_t)OC);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&ds->b, CUDA_R_32F, C, N, (int64_t)C);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&ds->d, CUDA_R_32F, OC, N, (int64_t)OC);
    return st;
}

/* matmul_fwd with the bias fused into cuBLASLt's epilogue; returns 0 (having queued nothing)
 * when cuBLASLt has no algorithm for it, and the caller falls back. */
static int lt_matmul_bias(tern_backend *be, float *out, const float *inp, const float *w, const float *bias, size_t N, size_t C,
                          size_t OC, int wt) {
    cuda_ctx *x = be->ctx;
    if (!aligned16(out) || !aligned16(inp) || !aligned16(w) || !aligned16(bias) || !fits_int(N) || !fits_int(C) || !fits_int(OC))
        return 0;
    lt_plan *p = lt_find(x, OC, N, C, wt);
    int fresh = p->M != OC || p->N != N || p->K != C || p->wt != wt || p->bf16 != x->bf16;
    if (!fresh && !p->ok) return 0;
    lt_desc ds;
    cublasStatus_t st = lt_desc_make(&ds, x, bias, N, C, OC, wt);
    if (st == CUBLAS_STATUS_SUCCESS && fresh) {
        *p = (lt_plan){.M = OC, .N = N, .K = C, .wt = wt, .bf16 = x->bf16, .used = ++x->tick};
        cublasLtMatmulPreference_t pref = NULL;
        cublasLtMatmulHeuristicResult_t res;
        int found = 0;
        size_t ws = WORKSPACE_BYTES;
        uint32_t align = 16;
        st = cublasLtMatmulPreferenceCreate(&pref);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
        cublasLtMatmulPreferenceAttributes_t al[] = {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                     CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
        for (int i = 0; i < 4 && st == CUBLAS_STATUS_SUCCESS; i++) st = cublasLtMatmulPreferenceSetAttribute(pref, al[i], &align, sizeof align);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulAlgoGetHeuristic(x->lt, ds.op, ds.a, ds.b, ds.d, ds.d, pref, 1, &res, &found);
        if (pref) cublasLtMatmulPreferenceDestroy(pref);
        p->ok = st == CUBLAS_STATUS_SUCCESS && found > 0 && res.state == CUBLAS_STATUS_SUCCESS;
        if (p->ok) p->algo = res.algo;
        st = CUBLAS_STATUS_SUCCESS;
    }
    int queued = 0;
    if (st == CUBLAS_STATUS_SUCCESS && p->ok) {
        const float one = 1.0f, zero = 0.0f;
        st = cublasLtMatmul(x->lt, ds.op, &one, w, ds.a, inp, ds.b, &zero, out, ds.d, out, ds.d, &p->algo, x->ws, WORKSPACE_BYTES,
                            x->stream);
        if (st == CUBLAS_STATUS_SUCCESS) {
            queued = 1;
            done(be, cudaGetLastError(), "matmul_fwd");
        } else {
            p->ok = 0; /* refused before queueing anything: the plain path from now on */
        }
    }
    lt_desc_free(&ds);
    return queued;
}

static void k_matmul_fwd(tern_backend *be, float *out, const float *inp, const float *w, const float *bias, size_t N, size_t C,
                         size_t OC, int wt) {
    cuda_ctx *x = ctx_of(be);
    if (bias && lt_matmul_bias(be, out, inp, w, bias, N, C, OC, wt)) return;
    gemm(be, "matmul_fwd", 0, wt, N, OC, C, 1.0f, inp, C, w, wt ? C : OC, 0.0f, out, OC);
    if (bias) done(be, tcu_add_bias(x->stream, out, bias, N, OC), "matmul_fwd (bias)");
}

/* As the reference: dinp = dout W^T (overwritten), dW += in its layout, dbias += column sums
 * (by the deterministic column reduction, not an epilogue). */
static void k_matmul_bwd(tern_backend *be, float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                         size_t N, size_t C, size_t OC, int wt) {
    cuda_ctx *x = ctx_of(be);
    if (!wt) {
        gemm(be, "matmul_bwd (dinp)", 0, 1, N, C, OC, 1.0f, dout, OC, w, OC, 0.0f, dinp, C);
        gemm(be, "matmul_bwd (dw)", 1, 0, C, OC, N, 1.0f, inp, C, dout, OC, 1.0f, dw, OC);
    } else {
        gemm(be, "matmul_bwd (dinp)", 0, 0, N, C, OC, 1.0f, dout, OC, w, C, 0.0f, dinp, C);
        gemm(be, "matmul_bwd (dw)", 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    }
    if (!dbias) return;
    void *part = scratch(be, tcu_colsum_scratch(N, OC, 1), "matmul_bwd (dbias)");
    if (part) done(be, tcu_colsum_add(x->stream, part, dbias, dout, N, OC), "matmul_bwd (dbias)");
}

/* ---- the other kernels: a launcher each ---- */

static void k_encoder_fwd(tern_backend *be, float *out, const int32_t *inp, const float *wte, const float *wpe, size_t B, size_t T,
                          size_t C) {
    done(be, tcu_encoder_fwd(ctx_of(be)->stream, out, inp, wte, wpe, B, T, C), "encoder_fwd");
}

static void k_encoder_bwd(tern_backend *be, float *dwte, float *dwpe, const float *dout, const int32_t *inp, size_t B, size_t T,
                          size_t C) {
    cuda_ctx *x = ctx_of(be);
    size_t need = tcu_encoder_bwd_scratch(B * T);
    void *s = scratch(be, need ? need : 1, "encoder_bwd");
    if (s) done(be, tcu_encoder_bwd(x->stream, s, x->scratch_bytes, dwte, dwpe, dout, inp, B, T, C), "encoder_bwd");
}

static void k_layernorm_fwd(tern_backend *be, float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                            size_t N, size_t C, float eps) {
    done(be, tcu_layernorm_fwd(ctx_of(be)->stream, out, mean, rstd, inp, w, b, N, C, eps), "layernorm_fwd");
}

static void k_layernorm_bwd(tern_backend *be, float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                            const float *mean, const float *rstd, size_t N, size_t C) {
    cuda_ctx *x = ctx_of(be);
    void *s = scratch(be, tcu_colsum_scratch(N, C, 2), "layernorm_bwd");
    if (s) done(be, tcu_layernorm_bwd(x->stream, s, dinp, dw, db, dout, inp, w, mean, rstd, N, C), "layernorm_bwd");
}

static void k_rmsnorm_fwd(tern_backend *be, float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C, float eps) {
    done(be, tcu_rmsnorm_fwd(ctx_of(be)->stream, out, rstd, inp, w, N, C, eps), "rmsnorm_fwd");
}

static void k_rmsnorm_bwd(tern_backend *be, float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                          const float *rstd, size_t N, size_t C) {
    cuda_ctx *x = ctx_of(be);
    void *s = scratch(be, tcu_colsum_scratch(N, C, 1), "rmsnorm_bwd");
    if (s) done(be, tcu_rmsnorm_bwd(x->stream, s, dinp, dw, dout, inp, w, rstd, N, C), "rmsnorm_bwd");
}

/* Attention's shapes are checked here so that the message says what is wrong. */
static int att_shape_ok(tern_backend *be, const tern_att_shape *s, const char *kernel) {
    if (s->hs > TCU_ATT_MAX_HS) {
        tern_backend_fail(be, TERN_EINVAL, "%s: head size %zu is larger than the CUDA attention kernels take (%d)", kernel, s->hs,
                          TCU_ATT_MAX_HS);
        return 0;
    }
    return 1;
}

static void k_attention_fwd(tern_backend *be, float *out, float *lse, float *scr, const float *q, const float *k, const float *v,
                            const tern_att_shape *s) {
    cuda_ctx *x = ctx_of(be);
    (void)scr; /* the tiles live in shared memory */
    if (att_shape_ok(be, s, "attention_fwd"))
        done(be, tcu_attention_fwd(x->stream, out, lse, q, k, v, s->B, s->T, s->NH, s->NKV, s->hs, s->ldq, s->ldk, s->ldv, x->bf16,
                                   x->smem_optin),
             "attention_fwd");
}

/* scratch (TERN_ATT_SCRATCH floats, at least B*NH*T) holds the rows' D between the passes. */
static void k_attention_bwd(tern_backend *be, float *dq, float *dk, float *dv, float *scr, const float *dout, const float *q,
                            const float *k, const float *v, const float *lse, const tern_att_shape *s) {
    cuda_ctx *x = ctx_of(be);
    if (att_shape_ok(be, s, "attention_bwd"))
        done(be, tcu_attention_bwd(x->stream, dq, dk, dv, scr, dout, q, k, v, lse, s->B, s->T, s->NH, s->NKV, s->hs, s->ldq, s->ldk,
                                   s->ldv, x->bf16, x->smem_optin),
             "attention_bwd");
}

static void k_attention_decode(tern_backend *be, float *out, float *scr, const float *q, const float *kc, const float *vc, size_t len,
                               size_t NH, size_t NKV, size_t hs, size_t ld) {
    done(be, tcu_attention_decode(ctx_of(be)->stream, out, scr, q, kc, vc, len, NH, NKV, hs, ld), "attention_decode");
}

static void k_rope_fwd(tern_backend *be, float *x, const float *freq, size_t B, size_t T, size_t H, size_t hs, size_t ld, size_t pos0) {
    done(be, tcu_rope(ctx_of(be)->stream, x, freq, B, T, H, hs, ld, pos0, 1.0f), "rope_fwd");
}

static void k_rope_bwd(tern_backend *be, float *dx, const float *freq, size_t B, size_t T, size_t H, size_t hs, size_t ld, size_t pos0) {
    done(be, tcu_rope(ctx_of(be)->stream, dx, freq, B, T, H, hs, ld, pos0, -1.0f), "rope_bwd");
}

static void k_gelu_fwd(tern_backend *be, float *out, const float *inp, size_t n) {
    done(be, tcu_gelu_fwd(ctx_of(be)->stream, out, inp, n), "gelu_fwd");
}

static void k_gelu_bwd(tern_backend *be, float *dinp, const float *inp, const float *dout, size_t n) {
    done(be, tcu_gelu_bwd(ctx_of(be)->stream, dinp, inp, dout, n), "gelu_bwd");
}

static void k_swiglu_fwd(tern_backend *be, float *out, const float *gate, const float *up, size_t n) {
    done(be, tcu_swiglu_fwd(ctx_of(be)->stream, out, gate, up, n), "swiglu_fwd");
}

static void k_swiglu_bwd(tern_backend *be, float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
    done(be, tcu_swiglu_bwd(ctx_of(be)->stream, dgate, dup, dout, gate, up, n), "swiglu_bwd");
}

static void k_residual_fwd(tern_backend *be, float *out, const float *a, const float *b, size_t n) {
    done(be, tcu_residual_fwd(ctx_of(be)->stream, out, a, b, n), "residual_fwd");
}

static void k_crossentropy(tern_backend *be, float *losses, float *dlogits, const float *logits, const int32_t *targets, float dscale,
                           size_t N, size_t V) {
    done(be, tcu_crossentropy(ctx_of(be)->stream, losses, dlogits, logits, targets, dscale, N, V), "crossentropy_fwd_bwd");
}

static void k_adamw(tern_backend *be, float *p, const float *g, float *m, float *v, size_t n, const tern_adamw_args *a) {
    /* clipping as a pass of its own over the gradients (the CPU kernels fold it into the update) */
    if (a->gscale != 1.0f) done(be, tcu_scale(ctx_of(be)->stream, (float *)g, n, a->gscale), "adamw (clipping)");
    done(be, tcu_adamw(ctx_of(be)->stream, p, g, m, v, n, a->lr, a->beta1, a->beta2, a->eps, a->decay, a->bc1, a->bc2_sqrt), "adamw");
}

/* A value computed on the device, into the page-locked buffer; 0 after a failure. */
static int read_back(tern_backend *be, const void *src, size_t bytes, const char *kernel) {
    return copy_wait(be, ((cuda_ctx *)be->ctx)->pinned, src, bytes, cudaMemcpyDeviceToHost, kernel);
}

static double reduce(tern_backend *be, const float *p, size_t n, int squares, const char *kernel) {
    cuda_ctx *x = ctx_of(be);
    size_t part = (tcu_sum_scratch(n) + 255) & ~(size_t)255;
    char *s = scratch(be, part + sizeof(double), kernel);
    if (!s) return NAN;
    cudaError_t e = tcu_sum(x->stream, s, (double *)(s + part), p, n, squares);
    done(be, e, kernel);
    if (e != cudaSuccess || !read_back(be, s + part, sizeof(double), kernel)) return NAN;
    return *(double *)x->pinned;
}

static double k_sumsq(tern_backend *be, const float *x, size_t n) { return reduce(be, x, n, 1, "sumsq"); }
static double k_sum(tern_backend *be, const float *x, size_t n) { return reduce(be, x, n, 0, "sum"); }

static void k_scale(tern_backend *be, float *x, size_t n, float s) { done(be, tcu_scale(ctx_of(be)->stream, x, n, s), "scale"); }

static void k_fill(tern_backend *be, float *x, size_t n, float value) {
    done(be, tcu_fill(ctx_of(be)->stream, x, n, value), "fill");
}

/* The numbers are drawn on the host by tern_rng_normal itself and uploaded: the device's double
 * log and cos are not the C library's to the last bit, and a draw that rounded differently to
 * float would break "the same numbers on every backend". Initialisation runs once per model. */
static void k_fill_normal(tern_backend *be, float *x, size_t n, float std, uint64_t seed, uint64_t stream) {
    cuda_ctx *c = ctx_of(be);
    const size_t chunk = (size_t)1 << 22;
    float *h = malloc((n < chunk ? (n ? n : 1) : chunk) * sizeof(float));
    if (!h) {
        tern_backend_fail(be, TERN_ENOMEM, "fill_normal: out of host memory");
        return;
    }
    for (size_t o = 0; o < n; o += chunk) {
        size_t m = n - o < chunk ? n - o : chunk;
#pragma omp parallel for schedule(static) if (m >= TERN_OMP_MIN_WORK)
        for (size_t i = 0; i < m; i++) h[i] = std * tern_rng_normal(seed, stream, o + i);
        cudaError_t e = cudaMemcpyAsync(x + o, h, m * sizeof(float), cudaMemcpyHostToDevice, c->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
        done(be, e, "fill_normal");
        if (e != cudaSuccess) break;
    }
    free(h);
}

static long long k_find_nonfinite(tern_backend *be, const float *x, size_t n, float *value) {
    cuda_ctx *c = ctx_of(be);
    unsigned long long *first = scratch(be, 256, "find_nonfinite");
    if (!first) return -1;
    cudaError_t e = tcu_find_nonfinite(c->stream, first, x, n);
    done(be, e, "find_nonfinite");
    if (e != cudaSuccess || !read_back(be, first, sizeof *first, "find_nonfinite")) return -1;
    unsigned long long i = *(unsigned long long *)c->pinned;
    if (i >= n) return -1;
    if (value && read_back(be, x + i, sizeof(float), "find_nonfinite")) *value = *(float *)c->pinned;
    return (long long)i;
}

static const tern_kern cuda_kern = {
    .name = "cuda",
    .sgemm = k_sgemm,
    .matmul_fwd = k_matmul_fwd,
    .matmul_bwd = k_matmul_bwd,
    .encoder_fwd = k_encoder_fwd,
    .encoder_bwd = k_encoder_bwd,
    .layernorm_fwd = k_layernorm_fwd,
    .layernorm_bwd = k_layernorm_bwd,
    .rmsnorm_fwd = k_rmsnorm_fwd,
    .rmsnorm_bwd = k_rmsnorm_bwd,
    .attention_fwd = k_attention_fwd,
    .attention_bwd = k_attention_bwd,
    .attention_decode = k_attention_decode,
    .rope_fwd = k_rope_fwd,
    .rope_bwd = k_rope_bwd,
    .gelu_fwd = k_gelu_fwd,
    .gelu_bwd = k_gelu_bwd,
    .swiglu_fwd = k_swiglu_fwd,
    .swiglu_bwd = k_swiglu_bwd,
    .residual_fwd = k_residual_fwd,
    .crossentropy_fwd_bwd = k_crossentropy,
    .adamw = k_adamw,
    .sumsq = k_sumsq,
    .sum = k_sum,
    .scale = k_scale,
    .fill = k_fill,
    .fill_normal = k_fill_normal,
    .find_nonfinite = k_find_nonfinite,
};

/* ---- opening and closing ---- */

static tern_status cu_set_precision(tern_backend *be, const char *precision) {
    ((cuda_ctx *)be->ctx)->bf16 = !strcmp(precision, "bf16");
    return TERN_OK;
}

static void cu_close(tern_backend *be) {
    cuda_ctx *x = be->ctx;
    if (!x) return;
    cudaSetDevice(x->device);
    if (x->stream) cudaStreamSynchronize(x->stream);
    if (x->lt) cublasLtDestroy(x->lt);
    if (x->blas) cublasDestroy(x->blas);
    cudaFree(x->ws);
    cudaFree(x->scratch);
    if (x->pinned) cudaFreeHost(x->pinned);
    if (x->stream) cudaStreamDestroy(x->stream);
    cudaGetLastError();
    free(x);
    be->ctx = NULL;
}

int tern_cuda_available(char *why, size_t why_n) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (why) tern_fmt(why, why_n, "no CUDA device: cudaGetDeviceCount returned %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
        return 0;
    }
    if (count == 0) {
        if (why) tern_fmt(why, why_n, "no CUDA device: cudaGetDeviceCount found none");
        return 0;
    }
    return 1;
}

/* The rank on this node that a launcher gave the process, for "one rank per GPU". */
static int local_rank(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMI_LOCAL_RANK", "LOCAL_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

#define OPEN_TRY(call, what)                                                                                            \
    do {                                                                                                                \
        cudaError_t e_ = (call);                                                                                        \
        if (e_ != cudaSuccess) {                                                                                        \
            st = tern_err(TERN_EIO, "%s: %s: %s", be->name, what, cudaGetErrorString(e_));                              \
            goto fail;                                                                                                  \
        }                                                                                                               \
    } while (0)
#define OPEN_BLAS(call, what)                                                                                           \
    do {                                                                                                                \
        cublasStatus_t s_ = (call);                                                                                     \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                                              \
            st = tern_err(TERN_EIO, "%s: %s: %s", be->name, what, cublasGetStatusString(s_));                           \
            goto fail;                                                                                                  \
        }                                                                                                               \
    } while (0)

/* device < 0: the GPU of this process's rank on its node (one rank per GPU), modulo the count. */
tern_status tern_cuda_open(tern_backend *be, int device) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        return tern_err(TERN_EINVAL, "--device cuda: no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    }
    if (device < 0) device = local_rank() % count;
    if (device >= count)
        return tern_err(TERN_EINVAL, "--device cuda:%d: this machine has %d CUDA device%s (cuda:0 to cuda:%d)", device, count,
                        count == 1 ? "" : "s", count - 1);
    struct cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess)
        return tern_err(TERN_EIO, "cuda:%d: %s", device, cudaGetErrorString(e));
    if (prop.major < 8)
        return tern_err(TERN_EINVAL, "cuda:%d is %s, of compute capability %d.%d; tern's CUDA kernels need 8.0 or newer (Ampere, Hopper)",
                        device, prop.name, prop.major, prop.minor);
    pthread_once(&blas_once, load_blas);
    if (blas_error[0]) return tern_err(TERN_EINVAL, "cuda:%d: %s", device, blas_error);
    cuda_ctx *x = calloc(1, sizeof *x);
    if (!x) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = TERN_OK;
    x->device = device;
    be->ctx = x;
    tern_fmt(be->name, sizeof be->name, "cuda:%d", device);
    OPEN_TRY(cudaSetDevice(device), "cudaSetDevice");
    OPEN_TRY(cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    OPEN_TRY(cudaMalloc(&x->ws, WORKSPACE_BYTES), "the cuBLAS workspace");
    OPEN_TRY(cudaMallocHost(&x->pinned, 64), "page-locked host memory");
    OPEN_TRY(cudaDeviceGetAttribute(&x->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "cudaDeviceGetAttribute");
    OPEN_BLAS(cublasCreate(&x->blas), "cublasCreate");
    OPEN_BLAS(cublasSetStream(x->blas, x->stream), "cublasSetStream");
    OPEN_BLAS(cublasSetWorkspace(x->blas, x->ws, WORKSPACE_BYTES), "cublasSetWorkspace");
    OPEN_BLAS(cublasSetMathMode(x->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    OPEN_BLAS(cublasLtCreate(&x->lt), "cublasLtCreate");
    const char *sync = getenv("TERN_CUDA_SYNC");
    x->sync_each = sync && !strcmp(sync, "1");
    note_usage(x);
    be->k = &cuda_kern;
    be->mem = &cuda_mem;
    be->is_host = 0;
    be->close = cu_close;
    be->set_precision = cu_set_precision;
    return TERN_OK;
fail:
    cu_close(be);
    return st;
}

/* ---- for the NCCL communicator and the benchmarks ---- */

int tern_cuda_device(const tern_backend *be) { return be && be->mem == &cuda_mem ? ((const cuda_ctx *)be->ctx)->device : -1; }

cudaStream_t tern_cuda_stream(const tern_backend *be) {
    return be && be->mem == &cuda_mem ? ((const cuda_ctx *)be->ctx)->stream : NULL;
}

void tern_cuda_memory(const tern_backend *be, size_t *peak_in_use, size_t *total) {
    const cuda_ctx *x = be && be->mem == &cuda_mem ? be->ctx : NULL;
    if (peak_in_use) *peak_in_use = x ? x->peak_in_use : 0;
    if (total) *total = x ? x->total : 0;
}
#else
/* Built without CUDA: backend.c never asks for the device. */
typedef int tern_cuda_none;
#endif
