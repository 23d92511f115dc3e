/* Inside the CUDA backend: the launchers that the host side (cuda.c, C17) calls and the device
 * side (kernels.cu, attention.cu) implements, and the few questions other parts of tern may ask
 * a CUDA backend (its stream, its device, its memory), for the NCCL communicator (comm/nccl.c)
 * and the GPU benchmark. Plain C on both sides of the seam: no tern headers reach nvcc.
 *
 * Every launcher queues its kernels on stream s, returns at once, and returns cudaGetLastError()
 * after its last launch (cudaSuccess when all were accepted). Pointers are device memory; sizes
 * and layouts are those of the kernel table (backend/backend_int.h). Launchers that need working
 * memory say how many bytes through a *_scratch function and take it as `scratch`. */
#ifndef TERN_CUDA_INT_H
#define TERN_CUDA_INT_H
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- embeddings ---- */
cudaError_t tcu_encoder_fwd(cudaStream_t s, float *out, const int32_t *inp, const float *wte, const float *wpe, size_t B,
                            size_t T, size_t C);
/* dwte: the positions sorted by token (a stable radix sort, so each token's positions stay in
 * order), then one thread per (token, channel) adds that token's rows in position order onto
 * dwte's value: the same additions in the same order as the reference, without atomics. */
size_t tcu_encoder_bwd_scratch(size_t N);
cudaError_t tcu_encoder_bwd(cudaStream_t s, void *scratch, size_t scratch_bytes, float *dwte, float *dwpe, const float *dout,
                            const int32_t *inp, size_t B, size_t T, size_t C);

/* ---- normalisation ---- */
cudaError_t tcu_layernorm_fwd(cudaStream_t s, float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, size_t N, size_t C, float eps);
/* The weight (and bias) gradients are column sums over the N rows, taken in fixed chunks of rows
 * (one partial per chunk and column in scratch) and the chunks then added in order. */
size_t tcu_colsum_scratch(size_t N, size_t C, int nout);
cudaError_t tcu_layernorm_bwd(cudaStream_t s, void *scratch, float *dinp, float *dw, float *db, const float *dout,
                              const float *inp, const float *w, const float *mean, const float *rstd, size_t N, size_t C);
cudaError_t tcu_rmsnorm_fwd(cudaStream_t s, float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C,
                            float eps);
cudaError_t tcu_rmsnorm_bwd(cudaStream_t s, void *scratch, float *dinp, float *dw, const float *dout, const float *inp,
                            const float *w, const float *rstd, size_t N, size_t C);
/* dbias (C) += column sums of x (N, C). */
cudaError_t tcu_colsum_add(cudaStream_t s, void *scratch, float *dbias, const float *x, size_t N, size_t C);
/* out (N, C) += bias (C) on every row. */
cudaError_t tcu_add_bias(cudaStream_t s, float *out, const float *bias, size_t N, size_t C);

/* ---- attention ---- */
/* The largest head size the attention kernels take. */
#define TCU_ATT_MAX_HS 256
/* Flash-style causal attention in tiles of query and key rows per (batch, head), keeping a
 * log-sum-exp per row. bf16 != 0: the two products per tile on tensor cores with bf16 operands and
 * fp32 accumulation; else fp32 on the CUDA cores. smem_optin: the device's shared-memory limit
 * per block, which picks the tile size. */
cudaError_t tcu_attention_fwd(cudaStream_t s, float *out, float *lse, const float *q, const float *k, const float *v, size_t B,
                              size_t T, size_t NH, size_t NKV, size_t hs, size_t ldq, size_t ldk, size_t ldv, int bf16,
                              int smem_optin);
/* Three passes, each output element written by one block in a fixed order: per query tile the
 * rows' D = sum_u P dP (into delta, (B,NH,T) floats) and dq; per key tile dk and dv over the
 * group's query heads in order. */
cudaError_t tcu_attention_bwd(cudaStream_t s, float *dq, float *dk, float *dv, float *delta, const float *dout, const float *q,
                              const float *k, const float *v, const float *lse, size_t B, size_t T, size_t NH, size_t NKV,
                              size_t hs, size_t ldq, size_t ldk, size_t ldv, int bf16, int smem_optin);
cudaError_t tcu_attention_decode(cudaStream_t s, float *out, float *scratch, const float *q, const float *kc, const float *vc,
                                 size_t len, size_t NH, size_t NKV, size_t hs, size_t ld);
cudaError_t tcu_rope(cudaStream_t s, float *x, const float *freq, size_t B, size_t T, size_t H, size_t hs, size_t ld, size_t pos0,
                     float sign);

/* ---- pointwise ---- */
cudaError_t tcu_gelu_fwd(cudaStream_t s, float *out, const float *inp, size_t n);
cudaError_t tcu_gelu_bwd(cudaStream_t s, float *dinp, const float *inp, const float *dout, size_t n);
cudaError_t tcu_swiglu_fwd(cudaStream_t s, float *out, const float *gate, const float *up, size_t n);
cudaError_t tcu_swiglu_bwd(cudaStream_t s, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                           size_t n);
cudaError_t tcu_residual_fwd(cudaStream_t s, float *out, const float *a, const float *b, size_t n);

/* ---- loss ---- */
cudaError_t tcu_crossentropy(cudaStream_t s, float *losses, float *dlogits, const float *logits, const int32_t *targets,
                             float dscale, size_t N, size_t V);

/* ---- whole buffers ---- */
cudaError_t tcu_adamw(cudaStream_t s, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                      float eps, float decay, float bc1, float bc2_sqrt);
/* sum (squares 0) or sum of squares of x[0, n) in double into *result (device): blocks of 4096
 * elements, each summed by one thread block in a fixed tree, then the blocks' sums in a fixed
 * tree. scratch holds tcu_sum_scratch(n) bytes. */
size_t tcu_sum_scratch(size_t n);
cudaError_t tcu_sum(cudaStream_t s, void *scratch, double *result, const float *x, size_t n, int squares);
cudaError_t tcu_scale(cudaStream_t s, float *x, size_t n, float f);
cudaError_t tcu_fill(cudaStream_t s, float *x, size_t n, float value);
/* *first (device) = the least index of a non-finite element of x[0, n), or UINT64_MAX. */
cudaError_t tcu_find_nonfinite(cudaStream_t s, unsigned long long *first, const float *x, size_t n);

/* ---- for other parts of tern (cuda.c implements them) ---- */
struct tern_backend;
/* The backend's device, or -1 when be is not a CUDA backend. */
int tern_cuda_device(const struct tern_backend *be);
/* The stream every kernel and copy of the backend is queued on. */
cudaStream_t tern_cuda_stream(const struct tern_backend *be);
/* The device's memory in use at its highest, as seen after each of the backend's allocations
 * (total - free: the CUDA context and libraries' memory included), and the device's total. */
void tern_cuda_memory(const struct tern_backend *be, size_t *peak_in_use, size_t *total);

#ifdef __cplusplus
}
#endif
#endif
