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

struct sum_op {
    template <typename F> __device__ __forceinline__ F operator()(F a, F b) const { return a + b; }
};
struct max_op {
    __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

/* Over W consecutive lanes (W a power of two up to 32; every lane of the warp calls it). */
template <int W, typename F, typename Op> __device__ __forceinline__ F lanes_reduce(F v, Op op) {
    for (int o = W / 2; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(FULL, v, o));
    return v;
}

template <typename F> __device__ __forceinline__ F warp_sum(F v) { return lanes_reduce<32>(v, sum_op()); }

/* Over a block of NT threads (NT a multiple of 32, at most 1024), returned to every thread:
 * each warp's result, then the warps' in one warp. Every thread of the block must call it. */
template <int NT, typename F, typename Op> __device__ F block_reduce(F v, Op op, F identity) {
    static_assert(NT % 32 == 0 && NT <= 1024, "block size");
    __shared__ F part[NT / 32];
    __shared__ F total;
    v = lanes_reduce<32>(v, op);
    int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) part[w] = v;
    __syncthreads();
    if (w == 0) {
        F x = lane < NT / 32 ? part[lane] : identity;
        x = lanes_reduce<32>(x, op);
        if (lane == 0) total = x;
    }
    __syncthreads();
    F r = total;
    __syncthreads(); /* the shared slots may be reused by the next call */
    return r;
}

template <int NT, typename F> __device__ F block_sum(F v) { return block_reduce<NT>(v, sum_op(), F(0)); }
template <int NT> __device__ float block_max(float v) { return block_reduce<NT>(v, max_op(), -INFINITY); }

} // namespace tcu
#endif
