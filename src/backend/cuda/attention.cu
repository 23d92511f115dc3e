/* Causal self-attention on the GPU, flash-style: a thread block takes one tile of query rows (or,
 * for dk and dv, one tile of key rows) of one (batch, head), walks the tiles it meets below the
 * diagonal with the operands in shared memory, and never writes a (T, T) matrix: the forward pass
 * keeps each row's log-sum-exp, from which the backward pass recomputes the probabilities.
 *
 * Two arithmetics share the code, chosen by the operand type of the tiles: float (the exact
 * mode, fp32 products on the CUDA cores, each thread a 4x4 piece of a 64x64 block of the
 * product) and bf16 (the products on tensor cores through WMMA, bf16 operands and fp32
 * accumulation). The softmax, the rescaling and the gradients' pointwise parts are fp32 in both.
 *
 * Determinism: every output element is written by one block, its sums taken in a fixed order;
 * the backward pass needs no atomics because it runs in two kernels, one per query tile (the
 * rows' D = sum_u P dP, then dq) and one per key tile (dk and dv, adding the group's query heads
 * in order), each recomputing the scores it needs. */
#include "backend/cuda/common.cuh"

#ifndef TCU_EMULATE /* tools/cuda_emu runs the device code on the CPU, with stand-ins for these */
#include "backend/cuda/cuda_int.h"

#include <cuda_bf16.h>
#include <mma.h>
#endif
#include <type_traits>

using namespace tcu;

namespace {

constexpr int NT = 256;
using bf16 = __nv_bfloat16;

template <typename TIn> __host__ __device__ constexpr bool is_f32() { return std::is_same<TIn, float>::value; }

template <typename TIn> __device__ __forceinline__ TIn to_in(float x);
template <> __device__ __forceinline__ float to_in<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 to_in<bf16>(float x) { return __float2bfloat16_rn(x); }

/* Leading dimensions (elements) of tiles in shared memory. fp32 tiles get one element of
 * padding, so that a walk down a column visits all 32 banks; bf16 operand tiles get 8 (16 bytes)
 * and fp32 accumulators of the bf16 path 4, keeping every 16x16 fragment on the 32-byte
 * boundaries that WMMA's loads and stores need. */
template <typename TIn> __host__ __device__ constexpr int op_ld(int cols) { return is_f32<TIn>() ? cols + 1 : cols + 8; }
template <typename TIn> __host__ __device__ constexpr int acc_ld(int cols) { return is_f32<TIn>() ? cols + 1 : cols + 4; }

/* Carves shared memory into 128-byte aligned arrays; with base NULL it only counts. */
struct bump {
    unsigned char *base;
    size_t off;
    template <typename X> __host__ __device__ X *take(size_t n) {
        size_t o = (off + 127) & ~(size_t)127;
        off = o + n * sizeof(X);
        return base ? (X *)(base + o) : nullptr;
    }
};

/* The kernels' arguments. */
struct att_p {
    const float *q, *k, *v, *dout, *lse_in;
    float *out, *lse, *dq, *dk, *dv, *delta;
    int B, T, NH, NKV, hs, HSP;
    size_t ldq, ldk, ldv;
    float scale;
};

/* ---- products of tiles in shared memory ----
 * C (M x N, fp32, row stride ldc) = (acc ? C : 0) + op(A) op(B), with op(A) M x K and op(B)
 * K x N: A(i,k) = TA ? A[k*lda + i] : A[i*lda + k], B(k,j) = TB ? B[j*ldb + k] : B[k*ldb + j].
 * M, N and K are multiples of 16. Every thread of the block calls it; it does not synchronise. */

/* fp32: 64x64 blocks of C, each thread a 4x4 piece (rows ty + 16a, columns tx + 16b); a piece
 * past the edge of a smaller C is computed on clamped indices and not stored. */
template <bool TA, bool TB>
__device__ void mm_f32(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K, bool acc) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int i0 = 0; i0 < M; i0 += 64)
        for (int j0 = 0; j0 < N; j0 += 64) {
            int ii[4], jj[4];
            float c[4][4];
#pragma unroll
            for (int a = 0; a < 4; a++) {
                ii[a] = min(i0 + ty + 16 * a, M - 1);
                jj[a] = min(j0 + tx + 16 * a, N - 1);
            }
#pragma unroll
            for (int a = 0; a < 4; a++)
#pragma unroll
                for (int b = 0; b < 4; b++) c[a][b] = acc ? C[ii[a] * ldc + jj[b]] : 0.0f;
            for (int k = 0; k < K; k++) {
                float av[4], bv[4];
#pragma unroll
                for (int a = 0; a < 4; a++) {
                    av[a] = TA ? A[k * lda + ii[a]] : A[ii[a] * lda + k];
                    bv[a] = TB ? B[jj[a] * ldb + k] : B[k * ldb + jj[a]];
                }
#pragma unroll
                for (int a = 0; a < 4; a++)
#pragma unroll
                    for (int b = 0; b < 4; b++) c[a][b] = fmaf(av[a], bv[b], c[a][b]);
            }
#pragma unroll
            for (int a = 0; a < 4; a++)
#pragma unroll
                for (int b = 0; b < 4; b++)
                    if (i0 + ty + 16 * a < M && j0 + tx + 16 * b < N) C[ii[a] * ldc + jj[b]] = c[a][b];
        }
}

/* bf16 on tensor cores: each warp takes 16x16 fragments of C in turn. */
template <bool TA, bool TB>
__device__ void mm_tc(float *C, int ldc, const bf16 *A, int lda, const bf16 *B, int ldb, int M, int N, int K, bool acc) {
    using namespace nvcuda;
    using LA = typename std::conditional<TA, wmma::col_major, wmma::row_major>::type;
    using LB = typename std::conditional<TB, wmma::col_major, wmma::row_major>::type;
    const int warp = threadIdx.x / 32, fn = N / 16, nf = (M / 16) * fn;
    for (int f = warp; f < nf; f += NT / 32) {
        const int fi = f / fn, fj = f % fn;
        float *cp = C + fi * 16 * ldc + fj * 16;
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
        if (acc)
            wmma::load_matrix_sync(c, cp, ldc, wmma::mem_row_major);
        else
            wmma::fill_fragment(c, 0.0f);
        for (int k = 0; k < K; k += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, LA> a;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, LB> b;
            wmma::load_matrix_sync(a, TA ? A + k * lda + fi * 16 : A + fi * 16 * lda + k, lda);
            wmma::load_matrix_sync(b, TB ? B + fj * 16 * ldb + k : B + k * ldb + fj * 16, ldb);
            wmma::mma_sync(c, a, b, c);
        }
        wmma::store_matrix_sync(cp, c, ldc, wmma::mem_row_major);
    }
}

template <typename TIn, bool TA, bool TB>
__device__ __forceinline__ void mm(float *C, int ldc, const TIn *A, int lda, const TIn *B, int ldb, int M, int N, int K, bool acc) {
    if constexpr (is_f32<TIn>())
        mm_f32<TA, TB>(C, ldc, A, lda, B, ldb, M, N, K, acc);
    else
        mm_tc<TA, TB>(C, ldc, A, lda, B, ldb, M, N, K, acc);
}

/* rows [row0, row0 + rows) of a (T, ld) matrix's head slice src (hs wide) into a tile of HSP
 * columns; rows past T and columns past hs are zeros, which add nothing to any product. */
template <typename TIn>
__device__ void load_rows(TIn *dst, int ldd, const float *src, size_t ld, int row0, int rows, int T, int hs, int HSP) {
    for (int e = threadIdx.x; e < rows * HSP; e += NT) {
        int r = e / HSP, c = e - r * HSP, t = row0 + r;
        float x = t < T && c < hs ? src[(size_t)t * ld + c] : 0.0f;
        dst[r * ldd + c] = to_in<TIn>(x);
    }
}

__device__ void zero_rows(float *dst, int ldd, int rows, int cols) {
    for (int e = threadIdx.x; e < rows * cols; e += NT) dst[(e / cols) * ldd + e % cols] = 0.0f;
}

/* The dynamic shared memory, on a 128-byte boundary (launches ask for 128 bytes more). */
__device__ __forceinline__ unsigned char *smem_base() {
#ifdef TCU_EMULATE
    unsigned char *base = tcu_emu_dynamic_smem();
#else
    extern __shared__ unsigned char tcu_att_smem[];
    unsigned char *base = tcu_att_smem;
#endif
    return (unsigned char *)(((uintptr_t)base + 127) & ~(uintptr_t)127);
}

/* The leading dimensions of a kernel's tiles: operand tiles of HSP and of BT columns, fp32
 * accumulators of BT and of HSP columns. */
struct tile_lds {
    int op_hs, acc_bt, op_bt, acc_hs;
};
template <typename TIn, int BT> __device__ __forceinline__ tile_lds lds_of(int HSP) {
    return tile_lds{op_ld<TIn>(HSP), acc_ld<TIn>(BT), op_ld<TIn>(BT), acc_ld<TIn>(HSP)};
}

/* A query-tile block's place: tile nqt-1-blockIdx.x (the longest rows first) of head blockIdx.y
 * in batch blockIdx.z, the key tiles it meets (up to the diagonal), and its head's rows of q, k
 * and v. */
struct query_tile {
    int h, b, q0, nkt;
    const float *q, *k, *v;
};
template <int BT> __device__ __forceinline__ query_tile query_tile_of(const att_p &p) {
    const int nqt = (p.T + BT - 1) / BT, h = blockIdx.y, b = blockIdx.z, kh = h / (p.NH / p.NKV);
    const int q0 = (nqt - 1 - (int)blockIdx.x) * BT;
    return query_tile{h, b, q0, min(p.T - 1, q0 + BT - 1) / BT + 1, p.q + (size_t)b * p.T * p.ldq + (size_t)h * p.hs,
                      p.k + (size_t)b * p.T * p.ldk + (size_t)kh * p.hs, p.v + (size_t)b * p.T * p.ldv + (size_t)kh * p.hs};
}

/* ---- forward ---- */

template <typename TIn> struct fwd_smem {
    TIn *q, *k, *v, *p;
    float *s, *o, *m, *l, *alpha;
};

template <typename TIn, int BT> __host__ __device__ size_t fwd_layout(fwd_smem<TIn> *L, unsigned char *base, int HSP) {
    bump b{base, 0};
    L->q = b.take<TIn>((size_t)BT * op_ld<TIn>(HSP));
    L->k = b.take<TIn>((size_t)BT * op_ld<TIn>(HSP));
    L->v = b.take<TIn>((size_t)BT * op_ld<TIn>(HSP));
    L->s = b.take<float>((size_t)BT * acc_ld<TIn>(BT));
    if constexpr (is_f32<TIn>())
        L->p = L->s; /* the probabilities replace the scores */
    else
        L->p = b.take<TIn>((size_t)BT * op_ld<TIn>(BT));
    L->o = b.take<float>((size_t)BT * acc_ld<TIn>(HSP));
    L->m = b.take<float>(BT);
    L->l = b.take<float>(BT);
    L->alpha = b.take<float>(BT);
    return b.off + 128;
}

/* Block (x, h, b): query tile nqt-1-x (the longest rows first) of head h in batch b. For each
 * key tile up to the diagonal: S = Q K^T, then each row's running maximum m and sum l updated
 * online (the rows' TPR threads together), O rescaled and O += P V. At the end out = O / l and
 * lse = m + log l. */
template <typename TIn, int BT> __global__ void __launch_bounds__(NT) att_fwd_k(att_p p) {
    constexpr int TPR = NT / BT;
    fwd_smem<TIn> L;
    fwd_layout<TIn, BT>(&L, smem_base(), p.HSP);
    const int HSP = p.HSP, hs = p.hs, T = p.T;
    const tile_lds d = lds_of<TIn, BT>(HSP);
    const int lo = d.op_hs, ls = d.acc_bt, lp = d.op_bt, la = d.acc_hs;
    const query_tile qt = query_tile_of<BT>(p);
    const int h = qt.h, b = qt.b, q0 = qt.q0, nkt = qt.nkt;
    load_rows<TIn>(L.q, lo, qt.q, p.ldq, q0, BT, T, hs, HSP);
    zero_rows(L.o, la, BT, HSP);
    if (threadIdx.x < BT) {
        L.m[threadIdx.x] = -INFINITY;
        L.l[threadIdx.x] = 0.0f;
    }
    const int r = threadIdx.x / TPR, sub = threadIdx.x % TPR, t = q0 + r;
    for (int kt = 0; kt < nkt; kt++) {
        const int k0 = kt * BT;
        __syncthreads(); /* the last tile's K, V and P are no longer read */
        load_rows<TIn>(L.k, lo, qt.k, p.ldk, k0, BT, T, hs, HSP);
        load_rows<TIn>(L.v, lo, qt.v, p.ldv, k0, BT, T, hs, HSP);
        __syncthreads();
        mm<TIn, false, true>(L.s, ls, L.q, lo, L.k, lo, BT, BT, HSP, false);
        __syncthreads();
        float mx = -INFINITY;
        for (int j = sub; j < BT; j += TPR) {
            float x = k0 + j > t ? -INFINITY : L.s[r * ls + j] * p.scale;
            L.s[r * ls + j] = x;
            mx = fmaxf(mx, x);
        }
        mx = lanes_reduce<TPR>(mx, max_op());
        const float m_old = L.m[r], m_new = fmaxf(m_old, mx);
        const float alpha = m_new == -INFINITY ? 1.0f : expf(m_old - m_new);
        float rs = 0.0f;
        for (int j = sub; j < BT; j += TPR) {
            float x = L.s[r * ls + j];
            float e = x == -INFINITY ? 0.0f : expf(x - m_new);
            rs += e;
            if constexpr (is_f32<TIn>())
                L.s[r * ls + j] = e;
            else
                L.p[r * lp + j] = to_in<TIn>(e);
        }
        rs = lanes_reduce<TPR>(rs, sum_op());
        __syncthreads(); /* every thread of the row has read m */
        if (sub == 0) {
            L.l[r] = L.l[r] * alpha + rs;
            L.m[r] = m_new;
            L.alpha[r] = alpha;
        }
        __syncthreads();
        for (int e = threadIdx.x; e < BT * HSP; e += NT) {
            int rr = e / HSP;
            L.o[rr * la + (e - rr * HSP)] *= L.alpha[rr];
        }
        __syncthreads();
        mm<TIn, false, false>(L.o, la, L.p, lp, L.v, lo, BT, HSP, BT, true);
    }
    __syncthreads();
    const size_t C = (size_t)p.NH * hs;
    for (int e = threadIdx.x; e < BT * hs; e += NT) {
        int rr = e / hs, c = e - rr * hs, tt = q0 + rr;
        if (tt < T) p.out[((size_t)b * T + tt) * C + (size_t)h * hs + c] = L.o[rr * la + c] / L.l[rr];
    }
    if (threadIdx.x < BT && q0 + (int)threadIdx.x < T)
        p.lse[((size_t)b * p.NH + h) * T + q0 + threadIdx.x] = L.m[threadIdx.x] + logf(L.l[threadIdx.x]);
}

/* ---- backward: D and dq, per query tile ---- */

template <typename TIn> struct dq_smem {
    TIn *q, *dy, *k, *v, *ds;
    float *s, *dp, *dq, *lse, *d;
};

template <typename TIn, int BT> __host__ __device__ size_t dq_layout(dq_smem<TIn> *L, unsigned char *base, int HSP) {
    bump b{base, 0};
    const size_t tile = (size_t)BT * op_ld<TIn>(HSP);
    L->q = b.take<TIn>(tile);
    L->dy = b.take<TIn>(tile);
    L->k = b.take<TIn>(tile);
    L->v = b.take<TIn>(tile);
    L->s = b.take<float>((size_t)BT * acc_ld<TIn>(BT));
    L->dp = b.take<float>((size_t)BT * acc_ld<TIn>(BT));
    if constexpr (is_f32<TIn>())
        L->ds = L->dp; /* dS replaces dP */
    else
        L->ds = b.take<TIn>((size_t)BT * op_ld<TIn>(BT));
    L->dq = b.take<float>((size_t)BT * acc_ld<TIn>(HSP));
    L->lse = b.take<float>(BT);
    L->d = b.take<float>(BT);
    return b.off + 128;
}

/* Block (x, h, b): query tile nqt-1-x of head h. Pass 1 over the key tiles up to the diagonal:
 * S = Q K^T and dP = dY V^T give each row's D = sum_u P dP, written to delta. Pass 2 again:
 * dS = P (dP - D) / sqrt(hs), dQ += dS K. */
template <typename TIn, int BT> __global__ void __launch_bounds__(NT) att_bwd_dq_k(att_p p) {
    constexpr int TPR = NT / BT;
    dq_smem<TIn> L;
    dq_layout<TIn, BT>(&L, smem_base(), p.HSP);
    const int HSP = p.HSP, hs = p.hs, T = p.T;
    const tile_lds ld = lds_of<TIn, BT>(HSP);
    const int lo = ld.op_hs, ls = ld.acc_bt, lds = ld.op_bt, la = ld.acc_hs;
    const query_tile qt = query_tile_of<BT>(p);
    const int h = qt.h, b = qt.b, q0 = qt.q0, nkt = qt.nkt;
    const size_t C = (size_t)p.NH * hs, row_lse = ((size_t)b * p.NH + h) * T;
    load_rows<TIn>(L.q, lo, qt.q, p.ldq, q0, BT, T, hs, HSP);
    load_rows<TIn>(L.dy, lo, p.dout + (size_t)b * T * C + (size_t)h * hs, C, q0, BT, T, hs, HSP);
    zero_rows(L.dq, la, BT, HSP);
    if (threadIdx.x < BT) {
        int tt = q0 + threadIdx.x;
        L.lse[threadIdx.x] = tt < T ? p.lse_in[row_lse + tt] : 0.0f;
        L.d[threadIdx.x] = 0.0f;
    }
    const int r = threadIdx.x / TPR, sub = threadIdx.x % TPR, t = q0 + r;
    for (int pass = 0; pass < 2; pass++) {
        for (int kt = 0; kt < nkt; kt++) {
            const int k0 = kt * BT;
            __syncthreads();
            load_rows<TIn>(L.k, lo, qt.k, p.ldk, k0, BT, T, hs, HSP);
            load_rows<TIn>(L.v, lo, qt.v, p.ldv, k0, BT, T, hs, HSP);
            __syncthreads();
            mm<TIn, false, true>(L.s, ls, L.q, lo, L.k, lo, BT, BT, HSP, false);
            mm<TIn, false, true>(L.dp, ls, L.dy, lo, L.v, lo, BT, BT, HSP, false);
            __syncthreads();
            const float lr = L.lse[r];
            if (pass == 0) {
                float acc = 0.0f;
                for (int j = sub; j < BT; j += TPR)
                    if (k0 + j <= t) acc += expf(L.s[r * ls + j] * p.scale - lr) * L.dp[r * ls + j];
                acc = lanes_reduce<TPR>(acc, sum_op());
                if (sub == 0) L.d[r] += acc; /* only this thread touches D[r] in pass 1 */
                continue;
            }
            const float dr = L.d[r];
            for (int j = sub; j < BT; j += TPR) {
                float pr = k0 + j <= t ? expf(L.s[r * ls + j] * p.scale - lr) : 0.0f;
                float ds = pr * (L.dp[r * ls + j] - dr) * p.scale;
                if constexpr (is_f32<TIn>())
                    L.dp[r * ls + j] = ds;
                else
                    L.ds[r * lds + j] = to_in<TIn>(ds);
            }
            __syncthreads();
            mm<TIn, false, false>(L.dq, la, L.ds, lds, L.k, lo, BT, HSP, BT, true);
        }
        if (pass == 0) {
            __syncthreads();
            if (threadIdx.x < BT && q0 + (int)threadIdx.x < T) p.delta[row_lse + q0 + threadIdx.x] = L.d[threadIdx.x];
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < BT * hs; e += NT) {
        int rr = e / hs, c = e - rr * hs, tt = q0 + rr;
        if (tt < T) p.dq[((size_t)b * T + tt) * p.ldq + (size_t)h * hs + c] = L.dq[rr * la + c];
    }
}

/* ---- backward: dk and dv, per key tile ---- */

template <typename TIn> struct dkv_smem {
    TIn *k, *v, *q, *dy, *pb, *dsb;
    float *dk, *dv, *s, *dp, *lse, *d;
};

template <typename TIn, int BT> __host__ __device__ size_t dkv_layout(dkv_smem<TIn> *L, unsigned char *base, int HSP) {
    bump b{base, 0};
    const size_t tile = (size_t)BT * op_ld<TIn>(HSP);
    L->k = b.take<TIn>(tile);
    L->v = b.take<TIn>(tile);
    L->q = b.take<TIn>(tile);
    L->dy = b.take<TIn>(tile);
    L->dk = b.take<float>((size_t)BT * acc_ld<TIn>(HSP));
    L->dv = b.take<float>((size_t)BT * acc_ld<TIn>(HSP));
    L->s = b.take<float>((size_t)BT * acc_ld<TIn>(BT));
    L->dp = b.take<float>((size_t)BT * acc_ld<TIn>(BT));
    if constexpr (is_f32<TIn>()) {
        L->pb = L->s; /* P replaces S, dS replaces dP */
        L->dsb = L->dp;
    } else {
        L->pb = b.take<TIn>((size_t)BT * op_ld<TIn>(BT));
        L->dsb = b.take<TIn>((size_t)BT * op_ld<TIn>(BT));
    }
    L->lse = b.take<float>(BT);
    L->d = b.take<float>(BT);
    return b.off + 128;
}

/* Block (x, kh, b): key tile x of key/value head kh. For each query head of the group in order,
 * and each query tile from the diagonal down: S = Q K^T, dP = dY V^T, P and dS as in the dq
 * kernel (with D from delta), then dV += P^T dY and dK += dS^T Q. */
template <typename TIn, int BT> __global__ void __launch_bounds__(NT) att_bwd_dkv_k(att_p p) {
    dkv_smem<TIn> L;
    dkv_layout<TIn, BT>(&L, smem_base(), p.HSP);
    const int HSP = p.HSP, hs = p.hs, T = p.T, G = p.NH / p.NKV;
    const tile_lds ld = lds_of<TIn, BT>(HSP);
    const int lo = ld.op_hs, ls = ld.acc_bt, lpp = ld.op_bt, la = ld.acc_hs;
    const int kt = blockIdx.x, kh = blockIdx.y, b = blockIdx.z, k0 = kt * BT, nqt = (T + BT - 1) / BT;
    const size_t C = (size_t)p.NH * hs;
    load_rows<TIn>(L.k, lo, p.k + (size_t)b * T * p.ldk + (size_t)kh * hs, p.ldk, k0, BT, T, hs, HSP);
    load_rows<TIn>(L.v, lo, p.v + (size_t)b * T * p.ldv + (size_t)kh * hs, p.ldv, k0, BT, T, hs, HSP);
    zero_rows(L.dk, la, BT, HSP);
    zero_rows(L.dv, la, BT, HSP);
    for (int g = 0; g < G; g++) {
        const int h = kh * G + g;
        const size_t row_lse = ((size_t)b * p.NH + h) * T;
        for (int qt = kt; qt < nqt; qt++) {
            const int q0 = qt * BT;
            __syncthreads();
            load_rows<TIn>(L.q, lo, p.q + (size_t)b * T * p.ldq + (size_t)h * hs, p.ldq, q0, BT, T, hs, HSP);
            load_rows<TIn>(L.dy, lo, p.dout + (size_t)b * T * C + (size_t)h * hs, C, q0, BT, T, hs, HSP);
            if (threadIdx.x < BT) {
                int tt = q0 + threadIdx.x;
                L.lse[threadIdx.x] = tt < T ? p.lse_in[row_lse + tt] : 0.0f;
                L.d[threadIdx.x] = tt < T ? p.delta[row_lse + tt] : 0.0f;
            }
            __syncthreads();
            mm<TIn, false, true>(L.s, ls, L.q, lo, L.k, lo, BT, BT, HSP, false);
            mm<TIn, false, true>(L.dp, ls, L.dy, lo, L.v, lo, BT, BT, HSP, false);
            __syncthreads();
            for (int e = threadIdx.x; e < BT * BT; e += NT) {
                int rr = e / BT, j = e - rr * BT, t = q0 + rr;
                float pr = t < T && k0 + j <= t ? expf(L.s[rr * ls + j] * p.scale - L.lse[rr]) : 0.0f;
                float ds = pr * (L.dp[rr * ls + j] - L.d[rr]) * p.scale;
                if constexpr (is_f32<TIn>()) {
                    L.s[rr * ls + j] = pr;
                    L.dp[rr * ls + j] = ds;
                } else {
                    L.pb[rr * lpp + j] = to_in<TIn>(pr);
                    L.dsb[rr * lpp + j] = to_in<TIn>(ds);
                }
            }
            __syncthreads();
            mm<TIn, true, false>(L.dv, la, L.pb, lpp, L.dy, lo, BT, HSP, BT, true);
            mm<TIn, true, false>(L.dk, la, L.dsb, lpp, L.q, lo, BT, HSP, BT, true);
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < BT * hs; e += NT) {
        int rr = e / hs, c = e - rr * hs, tt = k0 + rr;
        if (tt >= T) continue;
        p.dk[((size_t)b * T + tt) * p.ldk + (size_t)kh * hs + c] = L.dk[rr * la + c];
        p.dv[((size_t)b * T + tt) * p.ldv + (size_t)kh * hs + c] = L.dv[rr * la + c];
    }
}

/* ---- decoding one position ---- */

/* One block; the heads in turn, each in three steps over the cache (scores, exponentials and
 * their sum, the weighted values), the scores in scratch. */
__global__ void __launch_bounds__(NT) att_decode_k(float *out, float *sc, const float *q, const float *kc, const float *vc, int len,
                                                   int NH, int NKV, int hs, size_t ld, float scale) {
    const int G = NH / NKV;
    for (int h = 0; h < NH; h++) {
        const int kh = h / G;
        const float *qh = q + (size_t)h * hs;
        float mx = -INFINITY;
        for (int u = threadIdx.x; u < len; u += NT) {
            const float *k = kc + (size_t)u * ld + (size_t)kh * hs;
            float x = 0.0f;
            for (int i = 0; i < hs; i++) x += qh[i] * k[i];
            x *= scale;
            sc[u] = x;
            mx = fmaxf(mx, x);
        }
        mx = block_max<NT>(mx);
        float sum = 0.0f;
        for (int u = threadIdx.x; u < len; u += NT) {
            float e = expf(sc[u] - mx);
            sc[u] = e;
            sum += e;
        }
        sum = block_sum<NT>(sum); /* ends in a barrier: every score is in place */
        for (int i = threadIdx.x; i < hs; i += NT) {
            float o = 0.0f;
            for (int u = 0; u < len; u++) o += sc[u] / sum * vc[(size_t)u * ld + (size_t)kh * hs + i];
            out[(size_t)h * hs + i] = o;
        }
        __syncthreads(); /* the next head rewrites the scores */
    }
}

#ifndef TCU_EMULATE
/* ---- launching ---- */

template <typename K> cudaError_t launch(K kernel, dim3 grid, size_t bytes, cudaStream_t s, const att_p &p) {
    cudaError_t err = cudaFuncSetAttribute((const void *)kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (err != cudaSuccess) return err;
    kernel<<<grid, NT, bytes, s>>>(p);
    return cudaGetLastError();
}

/* Each kernel takes the largest tile (64, 32 or 16 rows) whose shared memory fits the device. */
#define PICK_TILE(layout_fn, smem_t, kernel, grid_of)                                                                   \
    do {                                                                                                              \
        smem_t<TIn> L_;                                                                                               \
        size_t b64 = layout_fn<TIn, 64>(&L_, nullptr, p.HSP), b32 = layout_fn<TIn, 32>(&L_, nullptr, p.HSP),            \
               b16 = layout_fn<TIn, 16>(&L_, nullptr, p.HSP);                                                         \
        if (b64 <= (size_t)smem_optin) return launch(kernel<TIn, 64>, grid_of(64), b64, s, p);                         \
        if (b32 <= (size_t)smem_optin) return launch(kernel<TIn, 32>, grid_of(32), b32, s, p);                         \
        if (b16 <= (size_t)smem_optin) return launch(kernel<TIn, 16>, grid_of(16), b16, s, p);                         \
        return cudaErrorInvalidConfiguration;                                                                         \
    } while (0)

template <typename TIn> cudaError_t fwd(cudaStream_t s, const att_p &p, int smem_optin) {
    auto grid_of = [&](int bt) { return dim3((unsigned)((p.T + bt - 1) / bt), (unsigned)p.NH, (unsigned)p.B); };
    PICK_TILE(fwd_layout, fwd_smem, att_fwd_k, grid_of);
}

template <typename TIn> cudaError_t bwd_dq(cudaStream_t s, const att_p &p, int smem_optin) {
    auto grid_of = [&](int bt) { return dim3((unsigned)((p.T + bt - 1) / bt), (unsigned)p.NH, (unsigned)p.B); };
    PICK_TILE(dq_layout, dq_smem, att_bwd_dq_k, grid_of);
}

template <typename TIn> cudaError_t bwd_dkv(cudaStream_t s, const att_p &p, int smem_optin) {
    auto grid_of = [&](int bt) { return dim3((unsigned)((p.T + bt - 1) / bt), (unsigned)p.NKV, (unsigned)p.B); };
    PICK_TILE(dkv_layout, dkv_smem, att_bwd_dkv_k, grid_of);
}

bool shape_ok(size_t B, size_t T, size_t NH, size_t NKV, size_t hs) {
    return B > 0 && T > 0 && NKV > 0 && NH % NKV == 0 && hs > 0 && hs <= TCU_ATT_MAX_HS && T <= INT32_MAX && NH <= 65535 &&
           B <= 65535;
}

att_p make_args(size_t B, size_t T, size_t NH, size_t NKV, size_t hs, size_t ldq, size_t ldk, size_t ldv) {
    att_p p = {};
    p.B = (int)B, p.T = (int)T, p.NH = (int)NH, p.NKV = (int)NKV, p.hs = (int)hs;
    p.HSP = (int)((hs + 15) / 16 * 16);
    p.ldq = ldq, p.ldk = ldk, p.ldv = ldv;
    p.scale = 1.0f / sqrtf((float)hs);
    return p;
}
#endif

} // namespace

#ifndef TCU_EMULATE
extern "C" {

cudaError_t tcu_attention_fwd(cudaStream_t s, float *out, float *lse, const float *q, const float *k, const float *v, size_t B,
                              size_t T, size_t NH, size_t NKV, size_t hs, size_t ldq, size_t ldk, size_t ldv, int bf16,
                              int smem_optin) {
    if (!shape_ok(B, T, NH, NKV, hs)) return cudaErrorInvalidValue;
    att_p p = make_args(B, T, NH, NKV, hs, ldq, ldk, ldv);
    p.q = q, p.k = k, p.v = v, p.out = out, p.lse = lse;
    return bf16 ? fwd<__nv_bfloat16>(s, p, smem_optin) : fwd<float>(s, p, smem_optin);
}

cudaError_t tcu_attention_bwd(cudaStream_t s, float *dq, float *dk, float *dv, float *delta, const float *dout, const float *q,
                              const float *k, const float *v, const float *lse, size_t B, size_t T, size_t NH, size_t NKV,
                              size_t hs, size_t ldq, size_t ldk, size_t ldv, int bf16, int smem_optin) {
    if (!shape_ok(B, T, NH, NKV, hs)) return cudaErrorInvalidValue;
    att_p p = make_args(B, T, NH, NKV, hs, ldq, ldk, ldv);
    p.q = q, p.k = k, p.v = v, p.dout = dout, p.lse_in = lse, p.dq = dq, p.dk = dk, p.dv = dv, p.delta = delta;
    cudaError_t err = bf16 ? bwd_dq<__nv_bfloat16>(s, p, smem_optin) : bwd_dq<float>(s, p, smem_optin);
    if (err != cudaSuccess) return err;
    return bf16 ? bwd_dkv<__nv_bfloat16>(s, p, smem_optin) : bwd_dkv<float>(s, p, smem_optin);
}

cudaError_t tcu_attention_decode(cudaStream_t s, float *out, float *scratch, const float *q, const float *kc, const float *vc,
                                 size_t len, size_t NH, size_t NKV, size_t hs, size_t ld) {
    if (len == 0 || NKV == 0 || NH % NKV || len > INT32_MAX) return cudaErrorInvalidValue;
    att_decode_k<<<1, NT, 0, s>>>(out, scratch, q, kc, vc, (int)len, (int)NH, (int)NKV, (int)hs, ld, 1.0f / sqrtf((float)hs));
    return cudaGetLastError();
}

} // extern "C"
#endif
