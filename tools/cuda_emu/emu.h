/* Just enough of CUDA, on the CPU, to run the CUDA backend's device code where there is no GPU:
 * a launch runs the grid's blocks one after another, each as blockDim.x real threads, so that
 * __syncthreads (a barrier of the block), warp shuffles (a barrier of the warp and an exchange),
 * shared memory (one block's at a time) and WMMA's warp-wide fragments (each lane holds the whole
 * 16x16 tile; lane 0 stores it) behave as the hardware's do for code that uses them correctly.
 * It checks the kernels' logic, indexing, tiling and synchronisation, not their speed, and not
 * what only a GPU shows (timing races between blocks, the compiler's device code, cuBLAS).
 * Included first (g++ -include) by the check programs beside it; the .cu files keep their CUDA
 * includes and launchers behind #ifndef TCU_EMULATE. */
#ifndef TERN_CUDA_EMU_H
#define TERN_CUDA_EMU_H
#define TCU_EMULATE 1

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static /* one block runs at a time: a static is that block's shared variable */

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

using std::isfinite;
using std::max;
using std::min;

namespace emu {
struct warp {
    std::unique_ptr<std::barrier<>> bar;
    unsigned char slot[32][8];
};
inline std::unique_ptr<std::barrier<>> block_bar;
inline std::vector<warp> warps;
inline unsigned char *dyn_smem;
inline std::mutex atomics;

inline void warp_sync() { warps[threadIdx.x / 32].bar->arrive_and_wait(); }

/* Runs kernel k over grid with nt threads per block and smem bytes of dynamic shared memory. */
template <typename... P, typename... A> void launch(void (*k)(P...), dim3 grid, unsigned nt, size_t smem, A... args) {
    blockDim = dim3(nt);
    gridDim = grid;
    block_bar = std::make_unique<std::barrier<>>(nt);
    warps = std::vector<warp>((nt + 31) / 32);
    for (unsigned w = 0; w < warps.size(); w++) warps[w].bar = std::make_unique<std::barrier<>>(std::min(32u, nt - 32 * w));
    std::vector<unsigned char> sm(smem + 256);
    dyn_smem = sm.data();
    std::vector<std::thread> th;
    for (unsigned t = 0; t < nt; t++)
        th.emplace_back([&, t] {
            threadIdx = dim3(t);
            for (unsigned z = 0; z < grid.z; z++)
                for (unsigned y = 0; y < grid.y; y++)
                    for (unsigned x = 0; x < grid.x; x++) {
                        blockIdx = dim3(x, y, z);
                        k(args...);
                        block_bar->arrive_and_wait(); /* the next block starts when this one is done */
                    }
        });
    for (auto &t : th) t.join();
}
} // namespace emu

inline void __syncthreads() { emu::block_bar->arrive_and_wait(); }

template <typename T> T __shfl_xor_sync(unsigned, T v, int o) {
    static_assert(sizeof(T) <= 8, "shuffles move up to 8 bytes");
    emu::warp &w = emu::warps[threadIdx.x / 32];
    unsigned lane = threadIdx.x % 32;
    memcpy(w.slot[lane], &v, sizeof v);
    w.bar->arrive_and_wait();
    T r;
    memcpy(&r, w.slot[lane ^ (unsigned)o], sizeof r);
    w.bar->arrive_and_wait();
    return r;
}

inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v) {
    std::lock_guard<std::mutex> g(emu::atomics);
    unsigned long long old = *p;
    if (v < old) *p = v;
    return old;
}

inline unsigned char *tcu_emu_dynamic_smem() { return emu::dyn_smem; }

/* bf16: the top half of a float, rounded to nearest even. */
struct __nv_bfloat16 {
    uint16_t b;
};
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {uint16_t((u >> 16) | 0x40)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return {uint16_t(u >> 16)};
}
inline float emu_float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline float emu_float(float f) { return f; }

namespace nvcuda {
namespace wmma {
struct row_major {};
struct col_major {};
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    float v[16][16];
};

/* (r, c) of the tile at p[r*ld + c] (row-major) or p[c*ld + r] (column-major). */
template <typename Use, typename T, typename Layout> void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout> &f, const T *p, unsigned ld) {
    emu::warp_sync();
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.v[r][c] = emu_float(std::is_same<Layout, row_major>::value ? p[r * ld + c] : p[c * ld + r]);
    emu::warp_sync();
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ld, layout_t l) {
    emu::warp_sync();
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.v[r][c] = l == mem_row_major ? p[r * ld + c] : p[c * ld + r];
    emu::warp_sync();
}
inline void fill_fragment(fragment<accumulator, 16, 16, 16, float> &f, float x) {
    for (auto &row : f.v)
        for (float &e : row) e = x;
}
template <typename T, typename LA, typename LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, T, LA> &a,
              const fragment<matrix_b, 16, 16, 16, T, LB> &b, const fragment<accumulator, 16, 16, 16, float> &c) {
    float out[16][16];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = c.v[i][j];
            for (int k = 0; k < 16; k++) s += a.v[i][k] * b.v[k][j];
            out[i][j] = s;
        }
    memcpy(d.v, out, sizeof out);
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ld, layout_t l) {
    emu::warp_sync();
    if (threadIdx.x % 32 == 0)
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 16; c++) (l == mem_row_major ? p[r * ld + c] : p[c * ld + r]) = f.v[r][c];
    emu::warp_sync();
}
} // namespace wmma
} // namespace nvcuda

/* ---- for the checks ---- */

/* ||a - b|| / ||b||, b in double. */
template <typename A> double emu_rel_l2(const A *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

/* Deterministic pseudo-random normals (Box-Muller over a 64-bit mixer). */
inline float emu_randn(uint64_t stream, uint64_t i) {
    auto mix = [](uint64_t z) {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    };
    double u1 = ((double)(mix(stream * 0x9e3779b97f4a7c15ULL + 2 * i) >> 11) + 1.0) / 9007199254740992.0;
    double u2 = (double)(mix(stream * 0x9e3779b97f4a7c15ULL + 2 * i + 1) >> 11) / 9007199254740992.0;
    return (float)(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

inline int emu_failures;
inline void emu_report(const char *what, double err, double tol) {
    int ok = err <= tol;
    if (!ok) emu_failures++;
    printf("  %-66s relative error %.3g %s\n", what, err, ok ? "ok" : "FAILS");
}
#endif
