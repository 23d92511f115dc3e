/* What oneDNN's bf16 matmul gains when its right operand comes packed in the blocked layout it
 * prefers rather than plain, at the shapes of a GPT-2 small step, as cpu/bf16.c runs them: for
 * each shape, the fp32 operands converted to bf16 and multiplied plain (what every call did
 * before weights were held), then the right operand reordered once and multiplied packed (what a
 * held weight costs after its first use), with the conversion and the reorder timed apart. Best
 * of 6 runs each. Needs AVX512_BF16; says so and exits 0 without it. Not a test.
 * usage: bench_packed [M N K transA transB]   (default: the list below) */
#include "tern.h"

#include <dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x)                                                                   \
    do {                                                                        \
        if ((x) != dnnl_success) {                                              \
            fprintf(stderr, "bench_packed: oneDNN failed at %s:%d\n", __FILE__, __LINE__); \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")
#include <immintrin.h>
static void to_bf16(uint16_t *d, const float *s, size_t n) { /* n a multiple of 32 */
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < n; j += 32)
        _mm512_storeu_si512(d + j, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + j + 16), _mm512_loadu_ps(s + j)));
}
#pragma GCC pop_options

typedef struct {
    const char *what;
    long M, N, K;
    int ta, tb;
} shape;

static dnnl_engine_t eng;
static dnnl_stream_t strm;

static void strided(dnnl_memory_desc_t *md, long r, long c, dnnl_data_type_t dt, int trans) {
    dnnl_dims_t d = {r, c}, s = {trans ? 1 : c, trans ? r : 1};
    CK(dnnl_memory_desc_init_by_strides(md, 2, d, dt, s));
}

static void run(const shape *sh) {
    long M = sh->M, N = sh->N, K = sh->K;
    size_t na = (size_t)(M * K + 31) / 32 * 32, nb = (size_t)(K * N + 31) / 32 * 32;
    float *af = malloc(na * 4), *bf = malloc(nb * 4), *c = malloc((size_t)(M * N) * 4);
    uint16_t *a = aligned_alloc(64, na * 2), *b = aligned_alloc(64, nb * 2);
    if (!af || !bf || !c || !a || !b) {
        fprintf(stderr, "bench_packed: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < na; i++) af[i] = tern_rng_uniform(5, 1, i) - 0.5f;
    for (size_t i = 0; i < nb; i++) bf[i] = tern_rng_uniform(5, 2, i) - 0.5f;
    dnnl_memory_desc_t ad, bd, cd, bany;
    strided(&ad, M, K, dnnl_bf16, sh->ta);
    strided(&bd, K, N, dnnl_bf16, sh->tb);
    strided(&cd, M, N, dnnl_f32, 0);
    dnnl_dims_t dims_b = {K, N};
    CK(dnnl_memory_desc_init_by_tag(&bany, 2, dims_b, dnnl_bf16, dnnl_format_tag_any));
    printf("%-34s", sh->what);
    for (int packed = 0; packed < 2; packed++) {
        dnnl_matmul_desc_t md;
        dnnl_primitive_desc_t pd;
        dnnl_primitive_t p;
        CK(dnnl_matmul_desc_init(&md, &ad, packed ? &bany : &bd, NULL, &cd));
        CK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
        CK(dnnl_primitive_create(&p, pd));
        const dnnl_memory_desc_t *wd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        void *bp = b;
        double reorder = 0;
        dnnl_memory_t mb, ma, mc;
        if (packed) {
            bp = aligned_alloc(64, (dnnl_memory_desc_get_size(wd) + 63) / 64 * 64);
            dnnl_memory_t plain;
            dnnl_primitive_desc_t rpd;
            dnnl_primitive_t r;
            CK(dnnl_memory_create(&plain, &bd, eng, b));
            CK(dnnl_memory_create(&mb, wd, eng, bp));
            CK(dnnl_reorder_primitive_desc_create(&rpd, &bd, eng, wd, eng, NULL));
            CK(dnnl_primitive_create(&r, rpd));
            to_bf16(b, bf, nb);
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, mb}};
            reorder = 1e30;
            for (int i = 0; i < 3; i++) {
                double t0 = tern_now();
                CK(dnnl_primitive_execute(r, strm, 2, ra));
                CK(dnnl_stream_wait(strm));
                double t = tern_now() - t0;
                if (t < reorder) reorder = t;
            }
            dnnl_primitive_destroy(r);
            dnnl_primitive_desc_destroy(rpd);
            dnnl_memory_destroy(plain);
        } else {
            CK(dnnl_memory_create(&mb, &bd, eng, b));
        }
        CK(dnnl_memory_create(&ma, &ad, eng, a));
        CK(dnnl_memory_create(&mc, &cd, eng, c));
        double conv = 1e30, mm = 1e30;
        for (int rep = 0; rep < 6; rep++) {
            double t0 = tern_now();
            to_bf16(a, af, na);
            if (!packed) to_bf16(b, bf, nb);
            double t1 = tern_now();
            dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
            CK(dnnl_primitive_execute(p, strm, 3, args));
            CK(dnnl_stream_wait(strm));
            double t2 = tern_now();
            if (t1 - t0 < conv) conv = t1 - t0;
            if (t2 - t1 < mm) mm = t2 - t1;
        }
        double gf = 2.0 * (double)M * (double)N * (double)K / 1e9;
        if (packed)
            printf(" | packed: convert A %6.2f ms, product %7.2f ms (%5.1f GFLOP/s); reorder B once %6.2f ms\n", conv * 1e3, mm * 1e3,
                   gf / mm, reorder * 1e3);
        else
            printf(" plain: convert A+B %6.2f ms, product %7.2f ms (%5.1f GFLOP/s)", conv * 1e3, mm * 1e3, gf / mm);
        fflush(stdout);
        dnnl_memory_destroy(ma), dnnl_memory_destroy(mb), dnnl_memory_destroy(mc);
        dnnl_primitive_destroy(p);
        dnnl_primitive_desc_destroy(pd);
        if (packed) free(bp);
    }
    free(af), free(bf), free(c), free(a), free(b);
}

int main(int argc, char **argv) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16")) {
        printf("bench_packed: this CPU lacks AVX512_BF16; nothing to measure\n");
        return 0;
    }
    const char *env = getenv("OMP_NUM_THREADS");
    tern_set_threads(env ? atoi(env) : 0);
    CK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    /* GPT-2 small, batch 4 x 1024: the head over chunks of 512 positions (W (V, C)), the blocks'
     * products with their weights on the right (forward and dinp), and the weight gradients,
     * whose right operand is an activation */
    shape list[] = {
        {"head logits (512x768 @ W^T)", 512, 50257, 768, 0, 1},
        {"head dxf (512x50257 @ W)", 512, 768, 50257, 0, 0},
        {"head dW (dlogits^T @ xf)", 50257, 768, 512, 1, 0},
        {"qkv fwd (4096x768 @ 768x2304)", 4096, 2304, 768, 0, 0},
        {"qkv dinp (4096x2304 @ W^T)", 4096, 768, 2304, 0, 1},
        {"attn proj fwd (4096x768 @ 768x768)", 4096, 768, 768, 0, 0},
        {"fc fwd (4096x768 @ 768x3072)", 4096, 3072, 768, 0, 0},
        {"fc proj dinp (4096x768 @ W^T)", 4096, 3072, 768, 0, 1},
        {"fc dW (768x4096^T @ 4096x3072)", 768, 3072, 4096, 1, 0},
    };
    if (argc == 6) {
        shape s = {"given", atol(argv[1]), atol(argv[2]), atol(argv[3]), atoi(argv[4]), atoi(argv[5])};
        if (s.M < 1 || s.N < 1 || s.K < 1) {
            fprintf(stderr, "usage: bench_packed [M N K transA transB]\n");
            return 2;
        }
        run(&s);
    } else if (argc != 1) {
        fprintf(stderr, "usage: bench_packed [M N K transA transB]\n");
        return 2;
    } else {
        for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) run(&list[i]);
    }
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    return 0;
}
