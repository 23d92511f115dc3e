/* Private to kern/: helpers shared between kernel sets. */
#ifndef TERN_KERN_INT_H
#define TERN_KERN_INT_H
#include "kern/kern.h"
void tern_kern_matmul_fwd_with(const tern_kern *k, float *out, const float *inp, const float *w, const float *bias,
                               size_t N, size_t C, size_t OC);
void tern_kern_matmul_bwd_with(const tern_kern *k, float *dinp, float *dw, float *dbias, const float *dout,
                               const float *inp, const float *w, size_t N, size_t C, size_t OC);
/* Attention forward as per-head GEMMs with the given causal row softmax (kern/cpu). */
void tern_kern_attention_fwd_gemm(float *out, float *att, const float *qkv, size_t B, size_t T, size_t C, size_t NH,
                                  void (*softmax_row)(float *row, size_t t, size_t T));
int tern_kern_avx512_supported(void);
int tern_kern_avx2_supported(void);
extern const tern_kern tern_kern_avx512, tern_kern_avx2;
#endif
