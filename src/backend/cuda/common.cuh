/* Device-side helpers shared by the CUDA backend's kernel files: grid sizes, and warp and block
 * reductions whose result is the same bit pattern on every thread and from run to run (a
 * butterfly: at each level lane i adds lane i^k's value to its own and lane i^k does the
 * converse, the same sum by commutativity; then the warps' results in a fixed order). */
#ifndef TERN_CUDA_COMMON_CUH
#define TERN_CUDA_COMMON_CUH
#ifndef TCU_EMULATE
#include <cuda_runtime.h>
#endif
#include <stddef.h>
#include <stdint.h>

namespace tcu {

constexpr unsigned FULL = 0xffffffffu;

/* Blocks of `threads` for a grid-stride loop over n elements: enough to fill any current GPU,
 * few enough that each thread does several elements. */
inline unsigned blocks_for(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    const size_t cap = 8192;
    return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}

#define TCU_GRID_STRIDE(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

template <typename F> __device__ __forceinline__ F warp_sum(F v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL, v, o));
    return v;
}

/* The sum over a block of NT threads (NT a multiple of 32, at most 1024), returned to every
 * thread. Every thread of the block must call it. */
template <int NT, typename F> __device__ F block_sum(F v) {
    static_assert(NT % 32 == 0 && NT <= 1024, "block size");
    __shared__ F part[NT / 32];
    __shared__ F total;
    v = warp_sum(v);
    int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) part[w] = v;
    __syncthreads();
    if (w == 0) {
        F x = lane < NT / 32 ? part[lane] : F(0);
        x = warp_sum(x);
        if (lane == 0) total = x;
    }
    __syncthreads();
    F r = total;
    __syncthreads(); /* the shared slots may be reused by the next call */
    return r;
}

template <int NT> __device__ float block_max(float v) {
    __shared__ float part[NT / 32];
    __shared__ float total;
    v = warp_max(v);
    int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) part[w] = v;
    __syncthreads();
    if (w == 0) {
        float x = lane < NT / 32 ? part[lane] : -INFINITY;
        x = warp_max(x);
        if (lane == 0) total = x;
    }
    __syncthreads();
    float r = total;
    __syncthreads();
    return r;
}

} // namespace tcu
#endif
