/* The backend interface: a small table of kernels that the model calls in sequence (DESIGN.md:
 * "a small table of kernels, not a graph"). kern/ref holds the plain-C oracle; kern/cpu overrides
 * entries with faster ones (cpu: oneDNN GEMMs; avx2 and avx512: vectorised math on top, chosen
 * by the CPU's features at run time); TERN_KERN=ref|cpu|avx2|avx512 forces a set.
 * Contract for every kernel: outputs first, then inputs and weights, then sizes; tensors are
 * row-major and contiguous; sizes use llm.c's letters (N = B*T rows, C channels, OC output
 * channels, NH heads, V vocabulary). Kernels never fail: shapes are checked where the model is
 * built. Reductions run in a fixed order for a given thread count, so results are reproducible. */
#ifndef TERN_KERN_H
#define TERN_KERN_H
#include <stddef.h>
#include <stdint.h>

/* Attention works on blocks of this many query rows at a time, each against the keys up to its
 * last row (causal blocks beyond are skipped); per (batch, head) it needs two such blocks of
 * scores. */
#define TERN_ATT_BQ 64
#define TERN_ATT_SCRATCH(B, T, NH) ((B) * (NH) * 2 * (size_t)TERN_ATT_BQ * (T))

typedef struct tern_kern {
    const char *name;

    /* Row-major C[M,N] = alpha * op(A) @ op(B) + beta * C, op = transpose when trans is set
     * (cblas semantics with CblasRowMajor). C is not read when beta == 0. */
    void (*sgemm)(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                  const float *B, size_t ldb, float beta, float *C, size_t ldc);

    /* out[b,t,:] = wte[inp[b,t],:] + wpe[t,:]. inp is (B,T), wte (V,C), wpe (>=T,C). */
    void (*encoder_fwd)(float *out, const int32_t *inp, const float *wte, const float *wpe, size_t B, size_t T, size_t C);
    /* dwte[inp[b,t],:] += dout[b,t,:]; dwpe[t,:] += sum_b dout[b,t,:]. */
    void (*encoder_bwd)(float *dwte, float *dwpe, const float *dout, const int32_t *inp, size_t B, size_t T, size_t C);

    /* LayerNorm over the last axis, eps 1e-5, biased variance (torch.nn.LayerNorm).
     * out (N,C); mean and rstd (N) are saved for the backward pass. */
    void (*layernorm_fwd)(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, size_t N,
                          size_t C);
    /* dinp += d/dinp; dw += ; db += . */
    void (*layernorm_bwd)(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, size_t N, size_t C);

    /* out (N,OC) = inp (N,C) @ w (C,OC) + bias (OC), w in Hugging Face Conv1D layout [in,out];
     * bias may be NULL. */
    void (*matmul_fwd)(float *out, const float *inp, const float *w, const float *bias, size_t N, size_t C, size_t OC);
    /* dinp (N,C) = dout @ w^T (overwritten); dw (C,OC) += inp^T @ dout; dbias (OC) += column sums
     * of dout (skipped when NULL). */
    void (*matmul_bwd)(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, size_t N,
                       size_t C, size_t OC);

    /* Causal self-attention as GPT-2 computes it. qkv (B,T,3C) holds q, k, v side by side, each
     * split into NH heads of C/NH; scores scaled by 1/sqrt(C/NH); out (B,T,C) with heads merged.
     * No (T,T) matrix outlives the call: lse (B,NH,T) keeps each score row's log-sum-exp, from
     * which the backward pass recomputes the probabilities. scratch holds
     * TERN_ATT_SCRATCH(B, T, NH) floats of working space (contents undefined after). */
    void (*attention_fwd)(float *out, float *lse, float *scratch, const float *qkv, size_t B, size_t T, size_t C,
                          size_t NH);
    /* dqkv (B,T,3C) is overwritten. */
    void (*attention_bwd)(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *lse, size_t B,
                          size_t T, size_t C, size_t NH);

    /* GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
    void (*gelu_fwd)(float *out, const float *inp, size_t n);
    /* dinp = gelu'(inp) * dout (overwritten). */
    void (*gelu_bwd)(float *dinp, const float *inp, const float *dout, size_t n);

    /* out = a + b. */
    void (*residual_fwd)(float *out, const float *a, const float *b, size_t n);

    /* Fused softmax + cross-entropy. logits (N,V). losses[i] = -log softmax(logits[i])[targets[i]].
     * When dlogits is non-NULL it receives (softmax - onehot) * dscale (it may alias logits). */
    void (*crossentropy_fwd_bwd)(float *losses, float *dlogits, const float *logits, const int32_t *targets, float dscale,
                                 size_t N, size_t V);
} tern_kern;

/* The kernel set in use: TERN_KERN=ref|cpu if set, else the fastest this CPU supports. */
const tern_kern *tern_kern_get(void);
/* A named set ("ref", "cpu", "avx2", "avx512"), or NULL if unknown or unsupported on this CPU. */
const tern_kern *tern_kern_by_name(const char *name);
extern const tern_kern tern_kern_ref;
extern const tern_kern tern_kern_cpu;
/* The names of all sets, NULL-terminated (some may be unsupported here). */
extern const char *const tern_kern_names[];
#endif
