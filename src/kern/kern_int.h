/* Private to kern/: helpers shared between kernel sets. */
#ifndef TERN_KERN_INT_H
#define TERN_KERN_INT_H
#include "kern/kern.h"
void tern_kern_matmul_fwd_with(const tern_kern *k, float *out, const float *inp, const float *w, const float *bias,
                               size_t N, size_t C, size_t OC);
void tern_kern_matmul_bwd_with(const tern_kern *k, float *dinp, float *dw, float *dbias, const float *dout,
                               const float *inp, const float *w, size_t N, size_t C, size_t OC);
/* Attention in blocks of query rows as per-head GEMMs, with the given row operations (kern/cpu):
 * softmax_row normalises row[0..t] in place, zeroes row[t+1..n) and returns the log-sum-exp;
 * probs_row turns scores into probabilities given it; dsoftmax_row is the scaled softmax
 * backward of one row. */
void tern_kern_attention_fwd_blocked(float *out, float *lse, float *scratch, const float *qkv, size_t B, size_t T, size_t C,
                                     size_t NH, float (*softmax_row)(float *row, size_t t, size_t n));
void tern_kern_attention_bwd_blocked(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *lse,
                                     size_t B, size_t T, size_t C, size_t NH,
                                     void (*probs_row)(float *row, size_t t, size_t n, float lse),
                                     void (*dsoftmax_row)(float *dp, const float *p, size_t t, size_t n, float scale));
int tern_kern_avx512_supported(void);
int tern_kern_avx2_supported(void);
extern const tern_kern tern_kern_avx512, tern_kern_avx2;
#endif
