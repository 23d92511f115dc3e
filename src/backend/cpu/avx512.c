/* The AVX-512 set: the CPU set's oneDNN GEMMs plus the vectorised kernels of vec_impl.h at 16
 * lanes. Chosen at run time only on CPUs with AVX-512 F/DQ/BW/VL. */
#include "backend/backend_int.h"
#include "tern/core.h"

#include <math.h>
#include <string.h>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")
#include <immintrin.h>

typedef __m512 VT;
#define VW 16
#define VSUF _avx512
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_SET1(x) _mm512_set1_ps(x)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_SQRT(a) _mm512_sqrt_ps(a)
#define V_DIV(a, b) _mm512_div_ps(a, b)
#define V_MIN(a, b) _mm512_min_ps(a, b)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_FMADD(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_FNMADD(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define V_ROUND(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_SCALE2(p, n) _mm512_scalef_ps(p, n)
#define V_ABS(a) _mm512_abs_ps(a)
#define V_COPYSIGN(t, u)                                                                      \
    _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t),                               \
                                        _mm512_and_si512(_mm512_castps_si512(u), _mm512_set1_epi32((int)0x80000000))))
#include "backend/cpu/vec_impl.h"
#pragma GCC pop_options

/* At bf16: native products where the CPU has AVX512_BF16, emulated ones where it does not. */
static const tern_att_rows att_rows_avx512 = {row_max_avx512, row_exp_avx512};

static void attention_fwd_avx512bf(tern_backend *be, float *out, float *lse, float *scratch, const float *q, const float *k,
                                   const float *v, const tern_att_shape *sh) {
    if (tern_is_bf16(be) && tern_bf16_native_supported())
        tern_attention_fwd_bf16(be, out, lse, scratch, q, k, v, sh, &att_rows_avx512);
    else
        attention_fwd_avx512(be, out, lse, scratch, q, k, v, sh);
}

static void attention_bwd_avx512bf(tern_backend *be, float *dq, float *dk, float *dv, float *scratch, const float *dout,
                                   const float *q, const float *k, const float *v, const float *lse, const tern_att_shape *sh) {
    if (tern_is_bf16(be) && tern_bf16_native_supported())
        tern_attention_bwd_bf16(be, dq, dk, dv, scratch, dout, q, k, v, lse, sh, &att_rows_avx512);
    else
        attention_bwd_avx512(be, dq, dk, dv, scratch, dout, q, k, v, lse, sh);
}

static void sgemm_avx512(tern_backend *be, int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                         size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    if (!tern_is_bf16(be))
        tern_sgemm_f32(be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (tern_bf16_native_supported())
        tern_sgemm_bf16_native(tern_sgemm_f32, be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        tern_sgemm_bf16_emulated(tern_sgemm_f32, be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void matmul_fwd_avx512(tern_backend *be, float *out, const float *inp, const float *w, const float *bias, size_t N, size_t C,
                              size_t OC, int wt) {
    tern_kern_matmul_fwd_with(&tern_kern_avx512, be, out, inp, w, bias, N, C, OC, wt);
}

static void matmul_bwd_avx512(tern_backend *be, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                              const float *w, size_t N, size_t C, size_t OC, int wt) {
    if (!tern_is_bf16(be)) {
        tern_kern_matmul_bwd_with(&tern_kern_avx512, be, dinp, dw, dbias, dout, inp, w, N, C, OC, wt);
        return;
    }
    tern_matmul_bwd_bf16(tern_bf16_native_supported(), tern_sgemm_f32, be, dinp, dw, dbias, dout, inp, w, N, C, OC, wt);
}

const tern_kern tern_kern_avx512 = {
    .name = "avx512",
    .sgemm = sgemm_avx512,
    .matmul_fwd = matmul_fwd_avx512,
    .matmul_bwd = matmul_bwd_avx512,
    .gelu_fwd = gelu_fwd_avx512,
    .gelu_bwd = gelu_bwd_avx512,
    .crossentropy_fwd_bwd = crossentropy_fwd_bwd_avx512,
    .attention_fwd = attention_fwd_avx512bf,
    .attention_bwd = attention_bwd_avx512bf,
    .swiglu_fwd = swiglu_fwd_avx512,
    .swiglu_bwd = swiglu_bwd_avx512,
    .adamw = adamw_avx512,
    .layernorm_fwd = layernorm_fwd_avx512,
    .layernorm_bwd = layernorm_bwd_avx512,
    .residual_layernorm_fwd = residual_layernorm_fwd_avx512,
    .rmsnorm_fwd = rmsnorm_fwd_avx512,
    .rmsnorm_bwd = rmsnorm_bwd_avx512,
    .residual_rmsnorm_fwd = residual_rmsnorm_fwd_avx512,
    .bias_gelu_fwd = bias_gelu_fwd_avx512,
};

int tern_kern_avx512_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
}
