/* The CUDA backend's kernels other than attention and the matrix products (cuBLAS, in cuda.c):
 * embeddings, LayerNorm and RMSNorm, rotary positions, the pointwise functions, the fused
 * softmax cross-entropy, AdamW and the whole-buffer reductions. Each computes what the reference
 * kernel of the same name computes (backend/ref/ref.c, the equations in backend_int.h), written
 * for the GPU: a warp per row for the norms, a block per row for the cross-entropy, grid-stride
 * loops for the pointwise ones. No float atomics anywhere: every sum is taken by one thread or in
 * a fixed tree, so results are the same bits from run to run. */
#include "backend/cuda/common.cuh"

#ifndef TCU_EMULATE /* tools/cuda_emu runs the kernels on the CPU; the launchers and CUB stay here */
#include "backend/cuda/cuda_int.h"

#include <cub/cub.cuh>
#endif

using namespace tcu;

namespace {

constexpr unsigned NT = 256;
constexpr float GELU_K = 0.7978845608028654f; /* sqrt(2/pi) */

/* ---- embeddings ---- */

__global__ void encoder_fwd_k(float *out, const int32_t *inp, const float *wte, const float *wpe, size_t T, size_t C, size_t n) {
    TCU_GRID_STRIDE(i, n) {
        size_t bt = i / C, c = i % C;
        float e = wte[(size_t)inp[bt] * C + c];
        out[i] = wpe ? e + wpe[(bt % T) * C + c] : e;
    }
}

/* dwpe[t,c] += dout[b,t,c] for b = 0, 1, ... in turn. */
__global__ void wpe_bwd_k(float *dwpe, const float *dout, size_t B, size_t TC) {
    TCU_GRID_STRIDE(i, TC) {
        float acc = dwpe[i];
        for (size_t b = 0; b < B; b++) acc += dout[b * TC + i];
        dwpe[i] = acc;
    }
}

__global__ void iota_k(unsigned *p, size_t n) {
    TCU_GRID_STRIDE(i, n) p[i] = (unsigned)i;
}

/* Block (r, column block): run r of the sorted tokens, that is token tok[r] at the positions
 * pos[start[r] .. start[r] + count[r]) in increasing order; each thread adds those rows of one
 * channel onto dwte. Blocks past the number of runs have nothing to do. */
__global__ void wte_bwd_k(float *dwte, const float *dout, const unsigned *tok, const unsigned *pos, const unsigned *start,
                          const unsigned *count, const int *nruns, size_t C) {
    unsigned r = blockIdx.x;
    if ((int)r >= *nruns) return;
    size_t c = (size_t)blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    unsigned s0 = start[r], k = count[r];
    float *w = dwte + (size_t)tok[r] * C + c;
    float acc = *w;
    for (unsigned j = 0; j < k; j++) acc += dout[(size_t)pos[s0 + j] * C + c];
    *w = acc;
}

#ifndef TCU_EMULATE
/* The encoder backward pass's working memory: the positions, the sorted tokens and positions,
 * the runs (token, count, start), their number, and CUB's own. base NULL: sizes only. */
struct enc_scratch {
    unsigned *vals_in, *keys_out, *vals_out, *uniq, *counts, *starts;
    int *nruns;
    void *temp;
    size_t temp_bytes, total;
};

size_t round256(size_t x) { return (x + 255) & ~(size_t)255; }

cudaError_t enc_layout(enc_scratch *e, void *base, size_t N) {
    size_t b = 0, temp = 0;
    const unsigned *ci = nullptr;
    unsigned *o = nullptr;
    int n = (int)N;
    cudaError_t err = cub::DeviceRadixSort::SortPairs(nullptr, b, ci, o, ci, o, n, 0, 32);
    if (err != cudaSuccess) return err;
    temp = b > temp ? b : temp;
    err = cub::DeviceRunLengthEncode::Encode(nullptr, b, ci, o, o, (int *)nullptr, n);
    if (err != cudaSuccess) return err;
    temp = b > temp ? b : temp;
    err = cub::DeviceScan::ExclusiveSum(nullptr, b, ci, o, n);
    if (err != cudaSuccess) return err;
    temp = b > temp ? b : temp;
    char *p = (char *)base;
    size_t off = 0, arr = round256(N * sizeof(unsigned));
    unsigned **arrays[] = {&e->vals_in, &e->keys_out, &e->vals_out, &e->uniq, &e->counts, &e->starts};
    for (unsigned **a : arrays) {
        *a = p ? (unsigned *)(p + off) : nullptr;
        off += arr;
    }
    e->nruns = p ? (int *)(p + off) : nullptr;
    off += 256;
    e->temp = p ? p + off : nullptr;
    e->temp_bytes = temp;
    e->total = off + round256(temp);
    return cudaSuccess;
}
#endif

/* ---- normalisation ---- */

/* A warp per row: 8 rows per block of 256 threads. */
constexpr unsigned ROWS_PER_BLOCK = NT / 32;

__global__ void layernorm_fwd_k(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, size_t N,
                                int C, float eps) {
    size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= N) return; /* whole warps leave together */
    const float *x = inp + row * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    float m = warp_sum(s) / (float)C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float d = x[c] - m;
        v += d * d;
    }
    v = warp_sum(v) / (float)C;
    float r = 1.0f / sqrtf(v + eps);
    float *o = out + row * C;
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * r * w[c] + b[c];
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

/* dx += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w, xhat = (x - mean) * rstd. */
__global__ void layernorm_bwd_k(float *dinp, const float *dout, const float *inp, const float *w, const float *mean,
                                const float *rstd, size_t N, int C) {
    size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + row * C, *dy = dout + row * C;
    float m = mean[row], s = rstd[row], gm = 0.0f, gxm = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float g = dy[c] * w[c];
        gm += g;
        gxm += g * (x[c] - m) * s;
    }
    gm = warp_sum(gm) / (float)C;
    gxm = warp_sum(gxm) / (float)C;
    float *dx = dinp + row * C;
    for (int c = lane; c < C; c += 32) {
        float xhat = (x[c] - m) * s;
        dx[c] += s * (dy[c] * w[c] - gm - xhat * gxm);
    }
}

__global__ void rmsnorm_fwd_k(float *out, float *rstd, const float *inp, const float *w, size_t N, int C, float eps) {
    size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + row * C;
    float ss = 0.0f;
    for (int c = lane; c < C; c += 32) ss += x[c] * x[c];
    float s = 1.0f / sqrtf(warp_sum(ss) / (float)C + eps);
    float *o = out + row * C;
    for (int c = lane; c < C; c += 32) o[c] = x[c] * s * w[c];
    if (lane == 0) rstd[row] = s;
}

/* dx += rstd * (g - xhat * mean(g * xhat)), g = dy * w, xhat = x * rstd. */
__global__ void rmsnorm_bwd_k(float *dinp, const float *dout, const float *inp, const float *w, const float *rstd, size_t N,
                              int C) {
    size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + row * C, *dy = dout + row * C;
    float s = rstd[row], gxm = 0.0f;
    for (int c = lane; c < C; c += 32) gxm += dy[c] * w[c] * x[c] * s;
    gxm = warp_sum(gxm) / (float)C;
    float *dx = dinp + row * C;
    for (int c = lane; c < C; c += 32) dx[c] += s * (dy[c] * w[c] - x[c] * s * gxm);
}

/* Column sums over rows in two passes: pass 1 gives one partial per chunk of rows and column
 * (a thread walks its column down the chunk), pass 2 adds a column's partials in chunk order and
 * adds the total onto the output. The chunking depends on N alone. */
enum { COL_SUM, COL_LAYERNORM, COL_RMSNORM };

struct col_plan {
    size_t rows_per, chunks;
};

col_plan plan_cols(size_t N) {
    size_t chunks = (N + 31) / 32;
    if (chunks > 512) chunks = 512;
    if (chunks < 1) chunks = 1;
    size_t rows_per = (N + chunks - 1) / chunks;
    if (rows_per < 1) rows_per = 1;
    return col_plan{rows_per, (N + rows_per - 1) / rows_per};
}

/* KIND: COL_SUM: x; COL_LAYERNORM: dout * xhat and dout (two outputs); COL_RMSNORM: dout * x * rstd. */
template <int KIND>
__global__ void colsum_part_k(float *part, const float *dout, const float *inp, const float *mean, const float *rstd, size_t N,
                              size_t C, size_t rows_per) {
    size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x, p = blockIdx.y;
    if (c >= C) return;
    size_t r0 = p * rows_per, r1 = r0 + rows_per < N ? r0 + rows_per : N;
    float s0 = 0.0f, s1 = 0.0f;
    for (size_t i = r0; i < r1; i++) {
        float d = dout[i * C + c];
        if (KIND == COL_SUM) {
            s0 += d;
        } else if (KIND == COL_LAYERNORM) {
            s0 += d * (inp[i * C + c] - mean[i]) * rstd[i];
            s1 += d;
        } else {
            s0 += d * inp[i * C + c] * rstd[i];
        }
    }
    part[p * C + c] = s0;
    if (KIND == COL_LAYERNORM) part[(gridDim.y + p) * C + c] = s1;
}

__global__ void colsum_fin_k(float *out0, float *out1, const float *part, size_t chunks, size_t C) {
    size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s0 = 0.0f, s1 = 0.0f;
    for (size_t p = 0; p < chunks; p++) {
        s0 += part[p * C + c];
        if (out1) s1 += part[(chunks + p) * C + c];
    }
    out0[c] += s0;
    if (out1) out1[c] += s1;
}

#ifndef TCU_EMULATE
template <int KIND>
cudaError_t colsum(cudaStream_t s, void *scratch, float *out0, float *out1, const float *dout, const float *inp, const float *mean,
                   const float *rstd, size_t N, size_t C) {
    if (N == 0 || C == 0) return cudaGetLastError();
    col_plan pl = plan_cols(N);
    float *part = (float *)scratch;
    dim3 grid((unsigned)((C + 127) / 128), (unsigned)pl.chunks);
    colsum_part_k<KIND><<<grid, 128, 0, s>>>(part, dout, inp, mean, rstd, N, C, pl.rows_per);
    colsum_fin_k<<<(unsigned)((C + 127) / 128), 128, 0, s>>>(out0, out1, part, pl.chunks, C);
    return cudaGetLastError();
}
#endif

__global__ void add_bias_k(float *out, const float *bias, size_t C, size_t n) {
    TCU_GRID_STRIDE(i, n) out[i] += bias[i % C];
}

/* ---- rotary positions ---- */

/* One thread per (row, head, pair i): (x_i, x_j) turned by position * freq[i], j = i + hs/2. */
__global__ void rope_k(float *x, const float *freq, size_t T, size_t H, size_t hs, size_t ld, size_t pos0, float sign, size_t n) {
    size_t half = hs / 2;
    TCU_GRID_STRIDE(e, n) {
        size_t i = e % half, h = (e / half) % H, bt = e / (half * H);
        float pos = (float)(pos0 + bt % T);
        float ang = pos * freq[i], sn, c;
        sincosf(ang, &sn, &c);
        sn = sign * sn;
        float *r = x + bt * ld + h * hs;
        float x1 = r[i], x2 = r[i + half];
        r[i] = x1 * c - x2 * sn;
        r[i + half] = x2 * c + x1 * sn;
    }
}

/* ---- pointwise ---- */

__global__ void gelu_fwd_k(float *out, const float *inp, size_t n) {
    TCU_GRID_STRIDE(i, n) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

__global__ void gelu_bwd_k(float *dinp, const float *inp, const float *dout, size_t n) {
    TCU_GRID_STRIDE(i, n) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float d = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = d * dout[i];
    }
}

__global__ void swiglu_fwd_k(float *out, const float *gate, const float *up, size_t n) {
    TCU_GRID_STRIDE(i, n) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* Every input is read before either output is written: dgate may alias dout. */
__global__ void swiglu_bwd_k(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
    TCU_GRID_STRIDE(i, n) {
        float g = gate[i], d = dout[i], u = up[i], sg = 1.0f / (1.0f + expf(-g));
        dup[i] = d * g * sg;
        dgate[i] = d * u * sg * (1.0f + g * (1.0f - sg));
    }
}

__global__ void residual_k(float *out, const float *a, const float *b, size_t n) {
    TCU_GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

/* ---- softmax cross-entropy ---- */

constexpr int CE_NT = 512;

/* A running (max m, sum s of exp(x - m)) merged with another; symmetric, so a butterfly leaves
 * the same pair on every lane. */
__device__ __forceinline__ void lse_merge(float &m, double &s, float m2, double s2) {
    float M = fmaxf(m, m2);
    if (M == -INFINITY) {
        s = 0.0;
        return;
    }
    s = s * (double)expf(m - M) + s2 * (double)expf(m2 - M);
    m = M;
}

__device__ void block_lse(float &m, double &s) {
    __shared__ float pm[CE_NT / 32];
    __shared__ double ps[CE_NT / 32];
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(FULL, m, o);
        double s2 = __shfl_xor_sync(FULL, s, o);
        lse_merge(m, s, m2, s2);
    }
    int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) {
        pm[w] = m;
        ps[w] = s;
    }
    __syncthreads();
    if (w == 0) {
        m = lane < CE_NT / 32 ? pm[lane] : -INFINITY;
        s = lane < CE_NT / 32 ? ps[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) {
            float m2 = __shfl_xor_sync(FULL, m, o);
            double s2 = __shfl_xor_sync(FULL, s, o);
            lse_merge(m, s, m2, s2);
        }
        if (lane == 0) {
            pm[0] = m;
            ps[0] = s;
        }
    }
    __syncthreads();
    m = pm[0];
    s = ps[0];
}

/* A block per row: one pass for the log-sum-exp (the row's maximum and sum found together, the
 * sum in double), then, for the gradient, (softmax - onehot) * dscale over the row. The target's
 * logit is read before any thread writes the row (dlogits may alias logits). */
__global__ void __launch_bounds__(CE_NT) crossentropy_k(float *losses, float *dlogits, const float *logits, const int32_t *targets,
                                                        float dscale, size_t V) {
    size_t row = blockIdx.x;
    const float *x = logits + row * V;
    size_t y = (size_t)targets[row];
    float xy = x[y];
    float m = -INFINITY;
    double sum = 0.0;
    for (size_t v = threadIdx.x; v < V; v += CE_NT) {
        float xv = x[v];
        if (xv > m) {
            sum = sum * (double)expf(m - xv) + 1.0;
            m = xv;
        } else if (xv != -INFINITY) {
            sum += (double)expf(xv - m);
        }
    }
    block_lse(m, sum);
    float lse = m + (float)log(sum);
    if (threadIdx.x == 0) losses[row] = lse - xy;
    if (!dlogits) return;
    float *d = dlogits + row * V;
    for (size_t v = threadIdx.x; v < V; v += CE_NT) {
        float p = expf(x[v] - lse);
        d[v] = (p - (v == y ? 1.0f : 0.0f)) * dscale;
    }
}

/* ---- whole buffers ---- */

__global__ void adamw_k(float *p, const float *g, float *m, float *v, size_t n, float step_size, float b1, float b2, float eps,
                        float decay, float bc2_sqrt) {
    TCU_GRID_STRIDE(i, n) {
        float gi = g[i];
        float pi = p[i] * decay;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * mi / denom;
    }
}

constexpr size_t SUM_BLOCK = 4096;
constexpr int SUM_NT = 256, SUM_FIN_NT = 1024;

__global__ void __launch_bounds__(SUM_NT) sum_blocks_k(double *part, const float *x, size_t n, int squares) {
    size_t base = (size_t)blockIdx.x * SUM_BLOCK;
    double s = 0.0;
    for (size_t j = 0; j < SUM_BLOCK / SUM_NT; j++) {
        size_t i = base + threadIdx.x + SUM_NT * j;
        if (i < n) {
            double v = (double)x[i];
            s += squares ? v * v : v;
        }
    }
    s = block_sum<SUM_NT>(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void __launch_bounds__(SUM_FIN_NT) sum_final_k(double *out, const double *part, size_t nb) {
    double s = 0.0;
    for (size_t i = threadIdx.x; i < nb; i += SUM_FIN_NT) s += part[i];
    s = block_sum<SUM_FIN_NT>(s);
    if (threadIdx.x == 0) *out = s;
}

__global__ void scale_k(float *x, size_t n, float f) {
    TCU_GRID_STRIDE(i, n) x[i] *= f;
}

__global__ void fill_k(float *x, size_t n, float value) {
    TCU_GRID_STRIDE(i, n) x[i] = value;
}

/* Each thread meets its elements in increasing order, so its first non-finite one is its least;
 * the minimum over threads does not depend on their timing. */
__global__ void nonfinite_k(unsigned long long *first, const float *x, size_t n) {
    TCU_GRID_STRIDE(i, n) {
        if (!isfinite(x[i])) {
            atomicMin(first, (unsigned long long)i);
            return;
        }
    }
}

} // namespace

/* ---- the launchers ---- */

#ifndef TCU_EMULATE
extern "C" {

cudaError_t tcu_encoder_fwd(cudaStream_t s, float *out, const int32_t *inp, const float *wte, const float *wpe, size_t B, size_t T,
                            size_t C) {
    size_t n = B * T * C;
    if (n) encoder_fwd_k<<<blocks_for(n, NT), NT, 0, s>>>(out, inp, wte, wpe, T, C, n);
    return cudaGetLastError();
}

size_t tcu_encoder_bwd_scratch(size_t N) {
    enc_scratch e;
    if (N == 0 || N > INT32_MAX || enc_layout(&e, nullptr, N) != cudaSuccess) return 0;
    return e.total;
}

cudaError_t tcu_encoder_bwd(cudaStream_t s, void *scratch, size_t scratch_bytes, float *dwte, float *dwpe, const float *dout,
                            const int32_t *inp, size_t B, size_t T, size_t C) {
    size_t N = B * T;
    if (dwpe && T * C != 0) wpe_bwd_k<<<blocks_for(T * C, NT), NT, 0, s>>>(dwpe, dout, B, T * C);
    if (N == 0 || C == 0) return cudaGetLastError();
    if (N > INT32_MAX) return cudaErrorInvalidValue;
    enc_scratch e;
    cudaError_t err = enc_layout(&e, scratch, N);
    if (err != cudaSuccess) return err;
    if (e.total > scratch_bytes) return cudaErrorInvalidValue;
    int n = (int)N;
    iota_k<<<blocks_for(N, NT), NT, 0, s>>>(e.vals_in, N);
    size_t tb = e.temp_bytes;
    /* tokens are never negative: as unsigned keys they sort the same */
    err = cub::DeviceRadixSort::SortPairs(e.temp, tb, (const unsigned *)inp, e.keys_out, e.vals_in, e.vals_out, n, 0, 32, s);
    if (err == cudaSuccess) err = cudaMemsetAsync(e.counts, 0, N * sizeof(unsigned), s);
    tb = e.temp_bytes;
    if (err == cudaSuccess) err = cub::DeviceRunLengthEncode::Encode(e.temp, tb, e.keys_out, e.uniq, e.counts, e.nruns, n, s);
    tb = e.temp_bytes;
    if (err == cudaSuccess) err = cub::DeviceScan::ExclusiveSum(e.temp, tb, e.counts, e.starts, n, s);
    if (err != cudaSuccess) return err;
    dim3 grid((unsigned)N, (unsigned)((C + 127) / 128));
    wte_bwd_k<<<grid, 128, 0, s>>>(dwte, dout, e.uniq, e.vals_out, e.starts, e.counts, e.nruns, C);
    return cudaGetLastError();
}

cudaError_t tcu_layernorm_fwd(cudaStream_t s, float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, size_t N, size_t C, float eps) {
    if (N) layernorm_fwd_k<<<(unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK), NT, 0, s>>>(out, mean, rstd, inp, w, b, N, (int)C, eps);
    return cudaGetLastError();
}

size_t tcu_colsum_scratch(size_t N, size_t C, int nout) { return plan_cols(N).chunks * C * (size_t)nout * sizeof(float); }

cudaError_t tcu_layernorm_bwd(cudaStream_t s, void *scratch, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                              const float *w, const float *mean, const float *rstd, size_t N, size_t C) {
    if (N) layernorm_bwd_k<<<(unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK), NT, 0, s>>>(dinp, dout, inp, w, mean, rstd, N, (int)C);
    return colsum<COL_LAYERNORM>(s, scratch, dw, db, dout, inp, mean, rstd, N, C);
}

cudaError_t tcu_rmsnorm_fwd(cudaStream_t s, float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C,
                            float eps) {
    if (N) rmsnorm_fwd_k<<<(unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK), NT, 0, s>>>(out, rstd, inp, w, N, (int)C, eps);
    return cudaGetLastError();
}

cudaError_t tcu_rmsnorm_bwd(cudaStream_t s, void *scratch, float *dinp, float *dw, const float *dout, const float *inp,
                            const float *w, const float *rstd, size_t N, size_t C) {
    if (N) rmsnorm_bwd_k<<<(unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK), NT, 0, s>>>(dinp, dout, inp, w, rstd, N, (int)C);
    return colsum<COL_RMSNORM>(s, scratch, dw, nullptr, dout, inp, nullptr, rstd, N, C);
}

cudaError_t tcu_colsum_add(cudaStream_t s, void *scratch, float *dbias, const float *x, size_t N, size_t C) {
    return colsum<COL_SUM>(s, scratch, dbias, nullptr, x, nullptr, nullptr, nullptr, N, C);
}

cudaError_t tcu_add_bias(cudaStream_t s, float *out, const float *bias, size_t N, size_t C) {
    if (N * C != 0) add_bias_k<<<blocks_for(N * C, NT), NT, 0, s>>>(out, bias, C, N * C);
    return cudaGetLastError();
}

cudaError_t tcu_rope(cudaStream_t s, float *x, const float *freq, size_t B, size_t T, size_t H, size_t hs, size_t ld, size_t pos0,
                     float sign) {
    size_t n = B * T * H * (hs / 2);
    if (n) rope_k<<<blocks_for(n, NT), NT, 0, s>>>(x, freq, T, H, hs, ld, pos0, sign, n);
    return cudaGetLastError();
}

cudaError_t tcu_gelu_fwd(cudaStream_t s, float *out, const float *inp, size_t n) {
    if (n) gelu_fwd_k<<<blocks_for(n, NT), NT, 0, s>>>(out, inp, n);
    return cudaGetLastError();
}

cudaError_t tcu_gelu_bwd(cudaStream_t s, float *dinp, const float *inp, const float *dout, size_t n) {
    if (n) gelu_bwd_k<<<blocks_for(n, NT), NT, 0, s>>>(dinp, inp, dout, n);
    return cudaGetLastError();
}

cudaError_t tcu_swiglu_fwd(cudaStream_t s, float *out, const float *gate, const float *up, size_t n) {
    if (n) swiglu_fwd_k<<<blocks_for(n, NT), NT, 0, s>>>(out, gate, up, n);
    return cudaGetLastError();
}

cudaError_t tcu_swiglu_bwd(cudaStream_t s, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                           size_t n) {
    if (n) swiglu_bwd_k<<<blocks_for(n, NT), NT, 0, s>>>(dgate, dup, dout, gate, up, n);
    return cudaGetLastError();
}

cudaError_t tcu_residual_fwd(cudaStream_t s, float *out, const float *a, const float *b, size_t n) {
    if (n) residual_k<<<blocks_for(n, NT), NT, 0, s>>>(out, a, b, n);
    return cudaGetLastError();
}

cudaError_t tcu_crossentropy(cudaStream_t s, float *losses, float *dlogits, const float *logits, const int32_t *targets,
                             float dscale, size_t N, size_t V) {
    if (N > INT32_MAX) return cudaErrorInvalidValue;
    if (N && V) crossentropy_k<<<(unsigned)N, CE_NT, 0, s>>>(losses, dlogits, logits, targets, dscale, V);
    return cudaGetLastError();
}

cudaError_t tcu_adamw(cudaStream_t s, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                      float eps, float decay, float bc1, float bc2_sqrt) {
    float step_size = lr / bc1;
    if (n) adamw_k<<<blocks_for(n, NT), NT, 0, s>>>(p, g, m, v, n, step_size, beta1, beta2, eps, decay, bc2_sqrt);
    return cudaGetLastError();
}

size_t tcu_sum_scratch(size_t n) {
    size_t nb = (n + SUM_BLOCK - 1) / SUM_BLOCK;
    return (nb ? nb : 1) * sizeof(double);
}

cudaError_t tcu_sum(cudaStream_t s, void *scratch, double *result, const float *x, size_t n, int squares) {
    size_t nb = (n + SUM_BLOCK - 1) / SUM_BLOCK;
    if (nb > INT32_MAX) return cudaErrorInvalidValue;
    if (nb == 0) return cudaMemsetAsync(result, 0, sizeof(double), s);
    sum_blocks_k<<<(unsigned)nb, SUM_NT, 0, s>>>((double *)scratch, x, n, squares);
    sum_final_k<<<1, SUM_FIN_NT, 0, s>>>(result, (const double *)scratch, nb);
    return cudaGetLastError();
}

cudaError_t tcu_scale(cudaStream_t s, float *x, size_t n, float f) {
    if (n) scale_k<<<blocks_for(n, NT), NT, 0, s>>>(x, n, f);
    return cudaGetLastError();
}

cudaError_t tcu_fill(cudaStream_t s, float *x, size_t n, float value) {
    if (n) fill_k<<<blocks_for(n, NT), NT, 0, s>>>(x, n, value);
    return cudaGetLastError();
}

cudaError_t tcu_find_nonfinite(cudaStream_t s, unsigned long long *first, const float *x, size_t n) {
    cudaError_t err = cudaMemsetAsync(first, 0xff, sizeof *first, s);
    if (err != cudaSuccess) return err;
    if (n) nonfinite_k<<<blocks_for(n, NT), NT, 0, s>>>(first, x, n);
    return cudaGetLastError();
}

} // extern "C"
#endif
