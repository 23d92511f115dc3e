/* Private to kern/: helpers shared between kernel sets. */
#ifndef TERN_KERN_INT_H
#define TERN_KERN_INT_H
#include "kern/kern.h"
void tern_kern_matmul_fwd_with(const tern_kern *k, float *out, const float *inp, const float *w, const float *bias,
                               size_t N, size_t C, size_t OC);
void tern_kern_matmul_bwd_with(const tern_kern *k, float *dinp, float *dw, float *dbias, const float *dout,
                               const float *inp, const float *w, size_t N, size_t C, size_t OC);
#endif
