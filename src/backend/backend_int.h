/* The backend interface: what a backend implements and what the layers built on it (model/,
 * optim/, the data-parallel step) call. Not part of the public API, which is tern/backend.h.
 * Memory half in ggml's spirit (buffers owned by the backend, the host never dereferences them
 * unless the backend is the host); compute half a small table of kernels in llm.c's spirit (the
 * model calls them in sequence; no graph).
 *
 * Contract for every kernel: the backend first, then outputs, then inputs and weights, then sizes;
 * pointers are the backend's memory; tensors are row-major and contiguous unless a leading
 * dimension (ld, in elements) says otherwise; sizes use llm.c's letters (N = B*T rows, C channels,
 * OC output channels, NH query heads, NKV key/value heads, hs head size, V vocabulary). Kernels
 * return nothing: shapes are checked where the model is built, and a backend whose kernels can
 * fail (a device) records the first failure for tern_backend_sync. Reductions run in a fixed order
 * for a given thread count, so results are reproducible. */
#ifndef TERN_BACKEND_INT_H
#define TERN_BACKEND_INT_H
#include "tern/backend.h"

#include <stddef.h>
#include <stdint.h>

/* Attention works on blocks of this many query rows at a time, each against the keys up to its
 * last row (causal blocks beyond are skipped); per (batch, head) it needs two such blocks of
 * scores. */
#define TERN_ATT_BQ 64
#define TERN_ATT_SCRATCH(B, T, NH) ((B) * (NH) * 2 * (size_t)TERN_ATT_BQ * (T))

/* The shape of a causal self-attention: q (B,T,NH,hs) rows of ldq floats, k and v (B,T,NKV,hs)
 * rows of ldk and ldv floats (GPT-2's packed (B,T,3C) gives ld 3C to all three), out (B,T,NH*hs)
 * contiguous. Query head h reads key/value head h / (NH/NKV) (grouped-query attention; NKV = NH
 * is multi-head, NKV = 1 multi-query). Scores are scaled by 1/sqrt(hs). */
typedef struct tern_att_shape {
    size_t B, T, NH, NKV, hs;
    size_t ldq, ldk, ldv;
} tern_att_shape;

/* AdamW's per-step constants: p = p*decay - lr/bc1 * m / (sqrt(v)/bc2_sqrt + eps), with
 * m, v the updated moments (torch.optim.AdamW) of the gradient g*gscale. */
typedef struct tern_adamw_args {
    float lr, beta1, beta2, eps;
    float decay;    /* 1 - lr * weight_decay for decayed tensors, else 1 */
    float bc1;      /* 1 - beta1^t */
    float bc2_sqrt; /* sqrt(1 - beta2^t) */
    float gscale;   /* clipping's coefficient, folded into the update (1: none); g itself is not changed */
} tern_adamw_args;

#define KB tern_backend *be /* every kernel's first parameter */

typedef struct tern_kern {
    const char *name;

    /* ---- matrix products ----
     * Row-major C[M,N] = alpha * op(A) @ op(B) + beta * C, op = transpose when trans is set
     * (cblas semantics with CblasRowMajor). C is not read when beta == 0. */
    void (*sgemm)(KB, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                  const float *B, size_t ldb, float beta, float *C, size_t ldc);
    /* out (N,OC) = inp (N,C) @ W + bias (OC); W is (C,OC) ([in,out], Hugging Face's Conv1D) when
     * wt is 0, (OC,C) ([out,in], nn.Linear) when wt is 1; bias may be NULL. */
    void (*matmul_fwd)(KB, float *out, const float *inp, const float *w, const float *bias, size_t N, size_t C, size_t OC,
                       int wt);
    /* dinp (N,C) = dout @ W^T (overwritten); dw += the weight's gradient in its own layout; dbias
     * (OC) += column sums of dout (skipped when NULL). */
    void (*matmul_bwd)(KB, float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, size_t N,
                       size_t C, size_t OC, int wt);

    /* ---- embeddings ----
     * out[b,t,:] = wte[inp[b,t],:] (+ wpe[t,:] when wpe is not NULL). inp is (B,T), wte (V,C). */
    void (*encoder_fwd)(KB, float *out, const int32_t *inp, const float *wte, const float *wpe, size_t B, size_t T, size_t C);
    /* dwte[inp[b,t],:] += dout[b,t,:]; dwpe[t,:] += sum_b dout[b,t,:] when dwpe is not NULL. No
     * float atomics: repeated tokens add up in a fixed order. */
    void (*encoder_bwd)(KB, float *dwte, float *dwpe, const float *dout, const int32_t *inp, size_t B, size_t T, size_t C);

    /* ---- normalisation ----
     * LayerNorm over the last axis, biased variance (torch.nn.LayerNorm). out (N,C); mean and rstd
     * (N) are saved for the backward pass. */
    void (*layernorm_fwd)(KB, float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, size_t N,
                          size_t C, float eps);
    /* dinp += d/dinp; dw += ; db += . */
    void (*layernorm_bwd)(KB, float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, size_t N, size_t C);
    /* RMSNorm (Llama's): out = inp * rstd * w, rstd = 1/sqrt(mean(inp^2) + eps), saved (N). */
    void (*rmsnorm_fwd)(KB, float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C, float eps);
    /* dinp += d/dinp; dw += . */
    void (*rmsnorm_bwd)(KB, float *dinp, float *dw, const float *dout, const float *inp, const float *w, const float *rstd,
                        size_t N, size_t C);

    /* The residual add before a norm and the norm in one pass: res = a + b (res may alias a), then
     * LayerNorm (RMSNorm) of res as layernorm_fwd (rmsnorm_fwd). May be NULL in a device's table
     * (the model then calls residual_fwd and the norm). */
    void (*residual_layernorm_fwd)(KB, float *res, float *out, float *mean, float *rstd, const float *a, const float *b, const float *w,
                                   const float *bias, size_t N, size_t C, float eps);
    void (*residual_rmsnorm_fwd)(KB, float *res, float *out, float *rstd, const float *a, const float *b, const float *w, size_t N,
                                 size_t C, float eps);

    /* ---- attention ----
     * Causal self-attention over the shape s. No (T,T) matrix outlives the call: lse (B,NH,T)
     * keeps each score row's log-sum-exp, from which the backward pass recomputes the
     * probabilities. scratch holds TERN_ATT_SCRATCH(B, T, NH) floats (contents undefined after). */
    void (*attention_fwd)(KB, float *out, float *lse, float *scratch, const float *q, const float *k, const float *v,
                          const tern_att_shape *s);
    /* dq, dk, dv (laid out as q, k, v) are overwritten in the elements attention reads. */
    void (*attention_bwd)(KB, float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q,
                          const float *k, const float *v, const float *lse, const tern_att_shape *s);
    /* One query position against a cache of `len` positions: q (NH*hs), kc and vc (len rows of
     * ld floats, NKV*hs used), out (NH*hs). scratch holds len floats. For generation. */
    void (*attention_decode)(KB, float *out, float *scratch, const float *q, const float *kc, const float *vc, size_t len,
                             size_t NH, size_t NKV, size_t hs, size_t ld);
    /* Rotary position embedding in Hugging Face's rotate-half convention, in place: for row t
     * (position pos0 + t) and each head's pair (i, i + hs/2), angle = position * freq[i] (in
     * float), (x_i, x_j) -> (x_i cos - x_j sin, x_j cos + x_i sin). x is (B,T,H,hs), rows of ld. */
    void (*rope_fwd)(KB, float *x, const float *freq, size_t B, size_t T, size_t H, size_t hs, size_t ld, size_t pos0);
    /* The transposed rotation, in place: the gradient through rope_fwd. */
    void (*rope_bwd)(KB, float *dx, const float *freq, size_t B, size_t T, size_t H, size_t hs, size_t ld, size_t pos0);

    /* ---- pointwise ---- */
    /* GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
    void (*gelu_fwd)(KB, float *out, const float *inp, size_t n);
    /* dinp = gelu'(inp) * dout (overwritten; may alias dout). */
    void (*gelu_bwd)(KB, float *dinp, const float *inp, const float *dout, size_t n);
    /* A matmul's bias and the GELU after it in one pass: x (N,OC) += bias, out = gelu(x). May be
     * NULL in a device's table (the model then passes the bias to matmul_fwd). */
    void (*bias_gelu_fwd)(KB, float *out, float *x, const float *bias, size_t N, size_t OC);
    /* SwiGLU: out = silu(gate) * up, silu(x) = x / (1 + e^-x) (out may alias gate or up). */
    void (*swiglu_fwd)(KB, float *out, const float *gate, const float *up, size_t n);
    /* dgate, dup (overwritten) from dout; dgate may alias dout. */
    void (*swiglu_bwd)(KB, float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n);
    /* out = a + b (out may alias a). */
    void (*residual_fwd)(KB, float *out, const float *a, const float *b, size_t n);

    /* ---- loss ----
     * Fused softmax + cross-entropy. logits (N,V). losses[i] = -log softmax(logits[i])[targets[i]].
     * When dlogits is non-NULL it receives (softmax - onehot) * dscale (it may alias logits). */
    void (*crossentropy_fwd_bwd)(KB, float *losses, float *dlogits, const float *logits, const int32_t *targets, float dscale,
                                 size_t N, size_t V);

    /* ---- whole buffers: optimizer, norms, initialisation, checks ---- */
    /* One AdamW update of n parameters with their gradients and moments. */
    void (*adamw)(KB, float *p, const float *g, float *m, float *v, size_t n, const tern_adamw_args *a);
    /* Sum of squares (sumsq) or sum of x[0..n), in double, in a fixed order (blocks of 4096 summed
     * in order) whatever the thread count; the result comes back to the host. */
    double (*sumsq)(KB, const float *x, size_t n);
    double (*sum)(KB, const float *x, size_t n);
    /* x *= s. */
    void (*scale)(KB, float *x, size_t n, float s);
    /* x[i] = value. */
    void (*fill)(KB, float *x, size_t n, float value);
    /* x[i] = std * tern_rng_normal(seed, stream, i): the same numbers on every backend. */
    void (*fill_normal)(KB, float *x, size_t n, float std, uint64_t seed, uint64_t stream);
    /* The index of the first non-finite element of x[0..n) and its value, or -1. */
    long long (*find_nonfinite)(KB, const float *x, size_t n, float *value);
} tern_kern;

/* The memory half: buffers of bytes in the backend's memory. */
typedef struct tern_backend_mem {
    /* Allocates `bytes` (64-byte aligned, zeroed); TERN_ENOMEM names `what` and the size. */
    tern_status (*alloc)(KB, void **out, size_t bytes, const char *what);
    void (*free)(KB, void *p);
    void (*upload)(KB, void *dst, const void *host_src, size_t bytes);
    void (*download)(KB, void *host_dst, const void *src, size_t bytes);
    void (*copy)(KB, void *dst, const void *src, size_t bytes);
    void (*zero)(KB, void *p, size_t bytes);
    tern_status (*sync)(KB);
} tern_backend_mem;

struct tern_backend {
    char name[32];
    const tern_kern *k;          /* complete: every entry set */
    const tern_backend_mem *mem;
    int is_host;
    void *ctx;                   /* the implementation's own state (a device's stream and handles) */
    tern_status err;             /* the first failure of an asynchronous kernel, for tern_backend_sync */
    char errmsg[512];
    char precision[8];           /* "fp32" or "bf16" */
    const char *precision_how;   /* how the precision is carried out, for messages; NULL: nothing to add */
    void (*close)(KB);           /* frees ctx; NULL when there is none */
    /* Switches to another precision (tern_backend_set_precision); NULL: fp32 only. The
     * implementation may swap k for another table. */
    tern_status (*set_precision)(KB, const char *precision);
    /* The weights a pass of the model reads, held unchanged from tern_backend_hold_weights to
     * tern_backend_release_weights ([held, held_end); NULL when none), and the hold's number,
     * unique in the process. Within one hold a product may reuse what it derived from a weight
     * (cpu/bf16.c: its bf16 conversion, packed as oneDNN multiplies it). */
    const float *held, *held_end;
    unsigned long long held_epoch;
    size_t weight_copy_bytes; /* what tern_backend_weight_copy_bytes says, set with the precision */
};

/* Holds n floats from w as the weights of the pass about to run: nothing may write them until
 * the release. A new hold starts a new epoch, so copies derived under an earlier one are stale. */
void tern_backend_hold_weights(KB, const float *w, size_t n);
void tern_backend_release_weights(KB);
/* Frees what products derived from held weights (the model that owned them is gone). */
void tern_backend_drop_derived(KB);
/* The current hold's epoch when [p, p + n) lies within the held weights, else 0. */
static inline unsigned long long tern_backend_held(const tern_backend *be, const float *p, size_t n) {
    return be->held && p >= be->held && n <= (size_t)(be->held_end - p) ? be->held_epoch : 0;
}

/* Whether the backend's matrix products and attention run at bf16 (tern_backend_set_precision). */
static inline int tern_is_bf16(const tern_backend *be) { return be->precision[0] == 'b'; }

/* Records a kernel's failure for the next tern_backend_sync (the first one wins). */
void tern_backend_fail(KB, tern_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- the kernel sets (each a partial table, completed from the set below it) ---- */
extern const tern_kern tern_kern_ref, tern_kern_cpu, tern_kern_avx2, tern_kern_avx512;
int tern_kern_avx512_supported(void);
int tern_kern_avx2_supported(void);
/* Host memory, for every CPU backend. */
extern const tern_backend_mem tern_host_mem;

/* Helpers backend/cpu shares with ref: matmul over whichever sgemm a set provides, and attention in
 * blocks of query rows as per-head GEMMs with the given row operations: softmax_row normalises
 * row[0..t] in place, zeroes row[t+1..n) and returns the log-sum-exp; probs_row turns scores into
 * probabilities given it; dsoftmax_row is the scaled softmax backward of one row. */
/* cpu's matrix product: oneDNN's fp32 sgemm, whatever the precision. */
void tern_sgemm_f32(KB, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                    const float *B, size_t ldb, float beta, float *C, size_t ldc);
void tern_kern_matmul_fwd_with(const tern_kern *k, KB, float *out, const float *inp, const float *w, const float *bias,
                               size_t N, size_t C, size_t OC, int wt);
void tern_kern_matmul_bwd_with(const tern_kern *k, KB, float *dinp, float *dw, float *dbias, const float *dout,
                               const float *inp, const float *w, size_t N, size_t C, size_t OC, int wt);
void tern_kern_attention_fwd_blocked(KB, float *out, float *lse, float *scratch, const float *q, const float *k, const float *v,
                                     const tern_att_shape *s, float (*softmax_row)(float *row, size_t t, size_t n));
void tern_kern_attention_bwd_blocked(KB, float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q,
                                     const float *k, const float *v, const float *lse, const tern_att_shape *s,
                                     void (*probs_row)(float *row, size_t t, size_t n, float lse),
                                     void (*dsoftmax_row)(float *dp, const float *p, size_t t, size_t n, float scale));

/* LayerNorm's weight and bias gradients for the block of (up to) 64 columns starting at column
 * 64*bk: column sums over the N rows read row by row, in row order, added to dw and db. ref and
 * the vector sets call it per block, so their results are the same bit for bit. */
static inline void tern_layernorm_dwdb_block(float *dw, float *db, const float *dout, const float *inp, const float *mean,
                                             const float *rstd, size_t N, size_t C, size_t bk) {
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

/* RMSNorm's weight gradient for the block of (up to) 64 columns starting at column 64*bk, in the
 * same order as tern_layernorm_dwdb_block. */
static inline void tern_rmsnorm_dw_block(float *dw, const float *dout, const float *inp, const float *rstd, size_t N, size_t C,
                                         size_t bk) {
    size_t c0 = bk * 64, n = C - c0 < 64 ? C - c0 : 64;
    float sw[64] = {0};
    for (size_t i = 0; i < N; i++) {
        const float *d = dout + i * C + c0, *x = inp + i * C + c0;
        float r = rstd[i];
#pragma omp simd
        for (size_t c = 0; c < n; c++) sw[c] += d[c] * x[c] * r;
    }
    for (size_t c = 0; c < n; c++) dw[c0 + c] += sw[c];
}

/* ---- bf16 on the CPU (cpu/bf16.c) ----
 * At precision bf16 every CPU set rounds both operands of each matrix product to bf16 and
 * multiplies and adds in fp32; the sets differ only in how (natively with AVX512_BF16, or by
 * rounding fp32 copies), which changes nothing but the order of the fp32 additions. */
typedef void (*tern_sgemm_fn)(KB, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                              const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* The bits of the fp32 value whose bits are u rounded to bf16, as AVX512_BF16's conversion does
 * it: to nearest, ties to even; subnormals to a zero of their sign; NaN to a quiet NaN. */
static inline uint32_t tern_bf16_bits(uint32_t u) {
    uint32_t mag = u & 0x7fffffffu;
    if ((u & 0x7f800000u) == 0) return u & 0x80000000u;
    if (mag > 0x7f800000u) return (u | 0x00400000u) & 0xffff0000u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
}
static inline float tern_bf16_round1(float x) {
    union {
        float f;
        uint32_t u;
    } v = {x};
    v.u = tern_bf16_bits(v.u);
    return v.f;
}
/* rows x cols of src (rows of lds floats) rounded to bf16 into dst (rows of ldd); dst may be src. */
void tern_bf16_round(float *dst, size_t ldd, const float *src, size_t lds, size_t rows, size_t cols);
/* The product of f32's arguments with A and B rounded: copies rounded, then f32 itself. */
void tern_sgemm_bf16_emulated(tern_sgemm_fn f32, KB, int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* The same through AVX512_BF16 (only where tern_bf16_native_supported); emulated with f32 where
 * oneDNN offers no primitive or the call comes from inside a parallel region. */
void tern_sgemm_bf16_native(tern_sgemm_fn f32, KB, int transA, int transB, size_t M, size_t N, size_t K, float alpha,
                            const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
int tern_bf16_native_supported(void);
/* Frees the native path's weight copies (tern_backend_drop_derived). */
void tern_bf16_drop_weights(void);
/* matmul_bwd at bf16, dout converted or rounded once for its two products: natively when native
 * is set (dbias's column sums taken in the same pass as dout's conversion), else emulated with
 * f32. dbias (may be NULL) gets tern_colsum_add's sums either way, bit for bit. */
void tern_matmul_bwd_bf16(int native, tern_sgemm_fn f32, KB, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                          const float *w, size_t N, size_t C, size_t OC, int wt);
/* The row operations attention at bf16 takes from its set (vec_impl.h's), so that its maxima
 * and exponentials are the set's, bit for bit: row_max of x[0..n), and row_exp, y[i] =
 * exp(x[i] - shift) (y may alias x) returning their sum. */
typedef struct {
    float (*row_max)(const float *x, size_t n);
    float (*row_exp)(float *y, const float *x, size_t n, float shift);
} tern_att_rows;
/* Attention at bf16 with AVX512_BF16 products (cpu/attn_bf16.c; only where
 * tern_bf16_native_supported): the same roundings as ref's, the softmax and its gradient fused
 * with the conversions and packing that follow them. */
void tern_attention_fwd_bf16(KB, float *out, float *lse, float *scratch, const float *q, const float *k, const float *v,
                             const tern_att_shape *s, const tern_att_rows *rows);
void tern_attention_bwd_bf16(KB, float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q, const float *k,
                             const float *v, const float *lse, const tern_att_shape *s, const tern_att_rows *rows);
/* out (C) += the column sums of x (N,C), each column's rows added in order (ref.c). */
void tern_colsum_add(float *out, const float *x, size_t N, size_t C);
#undef KB
#endif
