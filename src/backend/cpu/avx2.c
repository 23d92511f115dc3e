/* The AVX2 set: the CPU set's oneDNN GEMMs plus the vectorised kernels of vec_impl.h at 8 lanes.
 * Chosen at run time on CPUs with AVX2 and FMA but without AVX-512. */
#include "backend/backend_int.h"
#include "tern/core.h"

#include <math.h>
#include <string.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include <immintrin.h>

typedef __m256 VT;
#define VW 8
#define VSUF _avx2
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_SET1(x) _mm256_set1_ps(x)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_SQRT(a) _mm256_sqrt_ps(a)
#define V_DIV(a, b) _mm256_div_ps(a, b)
#define V_MIN(a, b) _mm256_min_ps(a, b)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_FMADD(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_FNMADD(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define V_ROUND(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
/* p * 2^n for integral n in [-150, 128]: two exponent steps keep each factor a normal float */
static inline __m256 scale2_avx2(__m256 p, __m256 n) {
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i h = _mm256_srai_epi32(ni, 1), l = _mm256_sub_epi32(ni, h);
    __m256 fh = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
    __m256 fl = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(l, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, fh), fl);
}
#define V_SCALE2(p, n) scale2_avx2(p, n)
#define V_ABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a)
#define V_COPYSIGN(t, u) _mm256_or_ps(t, _mm256_and_ps(u, _mm256_set1_ps(-0.0f)))
#include "backend/cpu/vec_impl.h"
#pragma GCC pop_options

const tern_kern tern_kern_avx2 = {
    .name = "avx2",
    .gelu_fwd = gelu_fwd_avx2,
    .gelu_bwd = gelu_bwd_avx2,
    .crossentropy_fwd_bwd = crossentropy_fwd_bwd_avx2,
    .attention_fwd = attention_fwd_avx2,
    .attention_bwd = attention_bwd_avx2,
    .swiglu_fwd = swiglu_fwd_avx2,
    .swiglu_bwd = swiglu_bwd_avx2,
    .adamw = adamw_avx2,
    .layernorm_fwd = layernorm_fwd_avx2,
    .layernorm_bwd = layernorm_bwd_avx2,
    .residual_layernorm_fwd = residual_layernorm_fwd_avx2,
    .rmsnorm_fwd = rmsnorm_fwd_avx2,
    .rmsnorm_bwd = rmsnorm_bwd_avx2,
    .residual_rmsnorm_fwd = residual_rmsnorm_fwd_avx2,
    .bias_gelu_fwd = bias_gelu_fwd_avx2,
};

int tern_kern_avx2_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
