/* The CUDA backend beyond the kernel table's own test (tests/test_backend_ops.c runs every kernel
 * of "cuda" against ref in fp32 once a GPU is present): attention at a model's head sizes and
 * lengths, the bf16 precision against ref within 1e-2 (and visibly not fp32), the same bits from
 * repeated runs, a failure named at synchronisation, and whole training steps of small GPT-2 and
 * Llama models against the CPU. Without a CUDA build or a GPU only the messages are checked, and
 * the rest is reported as SKIP, not as passed. */
#include "check.h"
#include "tern.h"

#include "backend/backend_int.h"

/* ---- buffers on a backend ---- */

typedef struct {
    tern_backend *be;
    void *p[64];
    int n;
} arena;

static void *arena_alloc(arena *a, size_t bytes) {
    void *d = NULL;
    if (a->n == 64 || a->be->mem->alloc(a->be, &d, bytes ? bytes : 4, "a test buffer") != TERN_OK) {
        printf("  cannot allocate %zu bytes on %s: %s\n", bytes, tern_backend_name(a->be), tern_errmsg());
        exit(2);
    }
    a->p[a->n++] = d;
    return d;
}

/* n floats of host (NaN when host is NULL, so that an unwritten output shows). */
static float *put(arena *a, const float *host, size_t n) {
    float *d = arena_alloc(a, n * sizeof(float));
    float *nan = NULL;
    if (!host) {
        nan = malloc((n ? n : 1) * sizeof(float));
        for (size_t i = 0; i < n; i++) nan[i] = NAN;
        host = nan;
    }
    a->be->mem->upload(a->be, d, host, n * sizeof(float));
    free(nan);
    return d;
}

static float *get(arena *a, const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    a->be->mem->download(a->be, h, d, n * sizeof(float));
    return h;
}

static void arena_free(arena *a) {
    for (int i = 0; i < a->n; i++) a->be->mem->free(a->be, a->p[i]);
    a->n = 0;
}

static float *randn(size_t n, uint64_t stream, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = scale * tern_rng_normal(99, stream, i);
    return p;
}

static tern_backend *open_or_fail(const char *name) {
    tern_backend *be = NULL;
    if (tern_backend_open(&be, name) != TERN_OK) {
        printf("  cannot open %s: %s\n", name, tern_errmsg());
        exit(2);
    }
    return be;
}

/* ---- one attention forward and backward pass, every output copied back ---- */

enum { ATT_OUT, ATT_LSE, ATT_DQ, ATT_DK, ATT_DV, ATT_N };
static const char *const att_names[ATT_N] = {"out", "lse", "dq", "dk", "dv"};

typedef struct {
    float *o[ATT_N];
    size_t n[ATT_N];
} att_result;

static void att_run(tern_backend *be, const tern_att_shape *s, att_result *r) {
    arena a = {.be = be};
    size_t B = s->B, T = s->T, NH = s->NH, Q = NH * s->hs;
    size_t nq = B * T * s->ldq, nk = B * T * s->ldk, nv = B * T * s->ldv;
    float *hq = randn(nq, 1, 1), *hk = randn(nk, 2, 1), *hv = randn(nv, 3, 1), *hdy = randn(B * T * Q, 4, 1);
    float *q = put(&a, hq, nq), *k = put(&a, hk, nk), *v = put(&a, hv, nv), *dy = put(&a, hdy, B * T * Q);
    float *out = put(&a, NULL, B * T * Q), *lse = put(&a, NULL, B * NH * T), *scr = put(&a, NULL, TERN_ATT_SCRATCH(B, T, NH));
    float *dq = put(&a, NULL, nq), *dk = put(&a, NULL, nk), *dv = put(&a, NULL, nv);
    be->k->attention_fwd(be, out, lse, scr, q, k, v, s);
    be->k->attention_bwd(be, dq, dk, dv, scr, dy, q, k, v, lse, s);
    const float *dev[ATT_N] = {out, lse, dq, dk, dv};
    size_t n[ATT_N] = {B * T * Q, B * NH * T, nq, nk, nv};
    for (int i = 0; i < ATT_N; i++) {
        r->o[i] = get(&a, dev[i], n[i]);
        r->n[i] = n[i];
    }
    CHECK(tern_backend_sync(be) == TERN_OK, "%s: %s", tern_backend_name(be), tern_errmsg());
    arena_free(&a);
    free(hq), free(hk), free(hv), free(hdy);
}

static void att_free(att_result *r) {
    for (int i = 0; i < ATT_N; i++) free(r->o[i]);
}

/* B, T, NH, NKV, hs: GPT-2 small's heads over tiles with a ragged end; Llama's grouped heads;
 * multi-query at the largest head size with a short last tile. */
static const size_t big_shapes[][5] = {{2, 129, 6, 6, 64}, {2, 200, 6, 2, 64}, {1, 300, 4, 1, 128}};

static tern_att_shape shape_of(const size_t *d) {
    size_t Q = d[2] * d[4], KV = d[3] * d[4];
    return (tern_att_shape){d[0], d[1], d[2], d[3], d[4], Q, KV, KV};
}

/* Every output of attention on `gpu` (at its precision) within tol of ref's fp32. */
static void att_against_ref(tern_backend *ref, tern_backend *gpu, double tol) {
    for (size_t c = 0; c < sizeof big_shapes / sizeof big_shapes[0]; c++) {
        tern_att_shape s = shape_of(big_shapes[c]);
        att_result a, b;
        att_run(ref, &s, &a);
        att_run(gpu, &s, &b);
        for (int i = 0; i < ATT_N; i++) {
            double e = rel_l2(b.o[i], a.o[i], a.n[i]);
            printf("  %s %s attention T=%zu NH=%zu NKV=%zu hs=%zu, %s: relative error %.3g\n", tern_backend_name(gpu),
                   tern_backend_precision(gpu), s.T, s.NH, s.NKV, s.hs, att_names[i], e);
            CHECK(e <= tol, "%s attention %s: relative error %.3g > %.g", tern_backend_precision(gpu), att_names[i], e, tol);
        }
        att_free(&a);
        att_free(&b);
    }
}

static void test_fp32_attention_at_model_sizes(void) {
    tern_backend *ref = open_or_fail("ref"), *gpu = open_or_fail("cuda");
    att_against_ref(ref, gpu, 1e-5);
    tern_backend_free(ref);
    tern_backend_free(gpu);
}

/* ---- bf16 ---- */

/* C = A B^T at a size where cuBLAS uses its tensor-core kernels, on be; returned to the host. */
static float *gemm_on(tern_backend *be, size_t M, size_t N, size_t K) {
    arena a = {.be = be};
    float *ha = randn(M * K, 5, 1), *hb = randn(N * K, 6, 1);
    float *c = put(&a, NULL, M * N);
    be->k->sgemm(be, 0, 1, M, N, K, 1.0f, put(&a, ha, M * K), K, put(&a, hb, N * K), K, 0.0f, c, N);
    float *h = get(&a, c, M * N);
    CHECK(tern_backend_sync(be) == TERN_OK, "%s", tern_errmsg());
    arena_free(&a);
    free(ha), free(hb);
    return h;
}

/* out = inp W + bias in both weight layouts (the fused cuBLASLt path), and the backward pass. */
static void matmul_against_ref(tern_backend *ref, tern_backend *gpu, double tol) {
    const size_t N = 96, C = 256, OC = 384;
    float *x = randn(N * C, 7, 1), *w = randn(C * OC, 8, 0.1f), *bias = randn(OC, 9, 1), *dy = randn(N * OC, 10, 1);
    for (int wt = 0; wt < 2; wt++) {
        float *res[2][4];
        tern_backend *bes[2] = {ref, gpu};
        for (int i = 0; i < 2; i++) {
            arena a = {.be = bes[i]};
            float *X = put(&a, x, N * C), *W = put(&a, w, C * OC), *Bi = put(&a, bias, OC), *out = put(&a, NULL, N * OC);
            float *dx = put(&a, NULL, N * C), *dw = put(&a, NULL, C * OC), *db = put(&a, NULL, OC);
            bes[i]->mem->zero(bes[i], dw, C * OC * sizeof(float));
            bes[i]->mem->zero(bes[i], db, OC * sizeof(float));
            bes[i]->k->matmul_fwd(bes[i], out, X, W, Bi, N, C, OC, wt);
            bes[i]->k->matmul_bwd(bes[i], dx, dw, db, put(&a, dy, N * OC), X, W, N, C, OC, wt);
            res[i][0] = get(&a, out, N * OC), res[i][1] = get(&a, dx, N * C), res[i][2] = get(&a, dw, C * OC), res[i][3] = get(&a, db, OC);
            CHECK(tern_backend_sync(bes[i]) == TERN_OK, "%s", tern_errmsg());
            arena_free(&a);
        }
        const char *what[4] = {"out", "dinp", "dw", "dbias"};
        size_t n[4] = {N * OC, N * C, C * OC, OC};
        for (int k = 0; k < 4; k++) {
            double e = rel_l2(res[1][k], res[0][k], n[k]);
            printf("  %s %s matmul (wt %d) %s: relative error %.3g\n", tern_backend_name(gpu), tern_backend_precision(gpu), wt, what[k], e);
            CHECK(e <= tol, "matmul wt %d %s: relative error %.3g > %.g", wt, what[k], e, tol);
            free(res[0][k]);
            free(res[1][k]);
        }
    }
    free(x), free(w), free(bias), free(dy);
}

static void test_bf16_against_ref(void) {
    tern_backend *ref = open_or_fail("ref"), *gpu = open_or_fail("cuda");
    CHECK(tern_backend_set_precision(gpu, "bf16") == TERN_OK, "%s", tern_errmsg());
    CHECK(!strcmp(tern_backend_precision(gpu), "bf16"), "precision %s", tern_backend_precision(gpu));
    matmul_against_ref(ref, gpu, 1e-2);
    att_against_ref(ref, gpu, 1e-2);
    /* bf16 must be bf16: the same product in fp32 and bf16 differs by bf16's rounding */
    const size_t M = 512, N = 512, K = 512;
    float *b = gemm_on(gpu, M, N, K);
    CHECK(tern_backend_set_precision(gpu, "fp32") == TERN_OK, "%s", tern_errmsg());
    float *f = gemm_on(gpu, M, N, K);
    double e = rel_l2(b, f, M * N);
    printf("  sgemm %zux%zux%zu, bf16 against fp32: relative difference %.3g\n", M, N, K, e);
    CHECK(e > 1e-5 && e < 1e-2, "bf16 sgemm differs from fp32 by %.3g: not bf16 operands on tensor cores", e);
    free(b), free(f);
    tern_backend_free(ref);
    tern_backend_free(gpu);
}

/* ---- determinism ---- */

/* The kernels with sums across threads, twice on the same inputs: the same bits. */
static void run_sums(tern_backend *be, float **res, size_t *n) {
    arena a = {.be = be};
    const size_t B = 4, T = 96, C = 200, V = 37, N = B * T;
    int32_t ids[4 * 96];
    for (size_t i = 0; i < N; i++) ids[i] = (int32_t)(tern_rng_u64(3, 4, i) % 9); /* many repeats */
    int32_t *dids = arena_alloc(&a, sizeof ids);
    be->mem->upload(be, dids, ids, sizeof ids);
    float *x = randn(N * C, 11, 1), *w = randn(C, 12, 1), *dy = randn(N * C, 13, 1);
    float *X = put(&a, x, N * C), *W = put(&a, w, C), *DY = put(&a, dy, N * C);
    float *dwte = put(&a, NULL, V * C), *dwpe = put(&a, NULL, T * C);
    be->mem->zero(be, dwte, V * C * sizeof(float));
    be->mem->zero(be, dwpe, T * C * sizeof(float));
    be->k->encoder_bwd(be, dwte, dwpe, DY, dids, B, T, C);
    float *out = put(&a, NULL, N * C), *mean = put(&a, NULL, N), *rstd = put(&a, NULL, N), *dx = put(&a, NULL, N * C);
    float *dw = put(&a, NULL, C), *db = put(&a, NULL, C);
    be->mem->zero(be, dx, N * C * sizeof(float));
    be->mem->zero(be, dw, C * sizeof(float));
    be->mem->zero(be, db, C * sizeof(float));
    be->k->layernorm_fwd(be, out, mean, rstd, X, W, W, N, C, 1e-5f);
    be->k->layernorm_bwd(be, dx, dw, db, DY, X, W, mean, rstd, N, C);
    float *lg = put(&a, x, N * V), *losses = put(&a, NULL, N); /* x's first N*V values as logits */
    be->k->crossentropy_fwd_bwd(be, losses, lg, lg, dids, 0.5f, N, V);
    float *s = put(&a, NULL, 2);
    double sums[2] = {be->k->sumsq(be, DY, N * C), be->k->sum(be, X, N * C)};
    float fs[2] = {(float)sums[0], (float)(sums[1] * 1e3)};
    be->mem->upload(be, s, fs, sizeof fs);
    const float *dev[] = {dwte, dwpe, out, dx, dw, db, lg, losses, s};
    size_t cnt[] = {V * C, T * C, N * C, N * C, C, C, N * V, N, 2};
    for (size_t i = 0; i < sizeof cnt / sizeof cnt[0]; i++) {
        res[i] = get(&a, dev[i], cnt[i]);
        n[i] = cnt[i];
    }
    CHECK(tern_backend_sync(be) == TERN_OK, "%s", tern_errmsg());
    arena_free(&a);
    free(x), free(w), free(dy);
}

static void test_same_bits_twice(void) {
    tern_backend *gpu = open_or_fail("cuda");
    const char *prec[] = {"fp32", "bf16"};
    for (int p = 0; p < 2; p++) {
        CHECK(tern_backend_set_precision(gpu, prec[p]) == TERN_OK, "%s", tern_errmsg());
        float *a[9], *b[9];
        size_t n[9];
        run_sums(gpu, a, n);
        run_sums(gpu, b, n);
        for (int i = 0; i < 9; i++) {
            CHECK(!memcmp(a[i], b[i], n[i] * sizeof(float)), "%s: output %d of the reductions differs between two runs", prec[p], i);
            free(a[i]), free(b[i]);
        }
        tern_att_shape s = shape_of(big_shapes[1]);
        att_result x, y;
        att_run(gpu, &s, &x);
        att_run(gpu, &s, &y);
        for (int i = 0; i < ATT_N; i++)
            CHECK(!memcmp(x.o[i], y.o[i], x.n[i] * sizeof(float)), "%s: attention's %s differs between two runs", prec[p], att_names[i]);
        att_free(&x);
        att_free(&y);
    }
    tern_backend_free(gpu);
}

/* ---- failures ---- */

static void test_failures_are_named(void) {
    tern_backend *gpu = open_or_fail("cuda");
    arena a = {.be = gpu};
    /* a head size the kernels refuse: recorded, reported at sync with the kernel's name, cleared */
    tern_att_shape s = {1, 4, 1, 1, 300, 300, 300, 300};
    float *q = put(&a, NULL, 4 * 300), *o = put(&a, NULL, 4 * 300), *l = put(&a, NULL, 4);
    gpu->k->attention_fwd(gpu, o, l, NULL, q, q, q, &s);
    CHECK(tern_backend_sync(gpu) != TERN_OK, "a refused attention went unreported");
    CHECK(strstr(tern_errmsg(), "attention_fwd") && strstr(tern_errmsg(), "cuda:"), "message: %s", tern_errmsg());
    printf("  reported: %s\n", tern_errmsg());
    CHECK(tern_backend_sync(gpu) == TERN_OK, "the failure was not cleared: %s", tern_errmsg());
    /* too much memory: TERN_ENOMEM naming what it was for */
    void *p = NULL;
    CHECK(gpu->mem->alloc(gpu, &p, (size_t)1 << 50, "a petabyte") == TERN_ENOMEM, "a petabyte was allocated");
    CHECK(strstr(tern_errmsg(), "a petabyte") != NULL, "message: %s", tern_errmsg());
    /* and the backend still works */
    gpu->k->fill(gpu, o, 4 * 300, 2.5f);
    float *h = get(&a, o, 4 * 300);
    CHECK(tern_backend_sync(gpu) == TERN_OK && h[0] == 2.5f && h[1199] == 2.5f, "fill after a failure: %g", h[0]);
    free(h);
    arena_free(&a);
    tern_backend_free(gpu);
}

/* ---- whole steps against the CPU ---- */

/* One forward and backward pass of cfg from seed 5 on backend `name` at `prec`: loss, parameters
 * and gradients. */
static float step_on(const char *name, const char *prec, const tern_model_config *cfg, float **params, float **grads, size_t *np) {
    tern_backend *be = open_or_fail(name);
    CHECK(tern_backend_set_precision(be, prec) == TERN_OK, "%s", tern_errmsg());
    tern_model *m = NULL;
    const size_t B = 3, T = 70;
    float loss = NAN;
    int32_t in[3 * 70], tg[3 * 70];
    for (size_t i = 0; i < B * T; i++) {
        in[i] = (int32_t)(tern_rng_u64(1, 1, i) % (uint64_t)cfg->vocab_size);
        tg[i] = (int32_t)(tern_rng_u64(1, 2, i) % (uint64_t)cfg->vocab_size);
    }
    tern_status st = tern_model_init(&m, cfg, be);
    if (st == TERN_OK) st = tern_model_reserve(m, B, T);
    if (st == TERN_OK) st = tern_model_init_weights(m, 5);
    if (st == TERN_OK) st = tern_model_zero_grad(m);
    if (st == TERN_OK) st = tern_model_forward_backward(m, in, tg, B, T, 1.0f, &loss);
    *np = st == TERN_OK ? tern_model_num_params(m) : 0;
    *params = malloc((*np ? *np : 1) * sizeof(float));
    *grads = malloc((*np ? *np : 1) * sizeof(float));
    if (st == TERN_OK) st = tern_model_read(m, TERN_PARAMS, 0, *np, *params);
    if (st == TERN_OK) st = tern_model_read(m, TERN_GRADS, 0, *np, *grads);
    CHECK(st == TERN_OK, "%s %s: %s", name, cfg->arch, tern_errmsg());
    tern_model_free(m);
    tern_backend_free(be);
    return loss;
}

static void test_steps_match_the_cpu(void) {
    tern_model_config cfgs[2] = {tern_model_config_gpt2(2, 4, 128, 96, 301), tern_model_config_llama(2, 4, 2, 128, 96, 301)};
    for (int c = 0; c < 2; c++) {
        float *pc, *gc, *pg, *gg, *pb, *gb;
        size_t n1, n2, n3;
        float lc = step_on("cpu", "fp32", &cfgs[c], &pc, &gc, &n1);
        float lg = step_on("cuda", "fp32", &cfgs[c], &pg, &gg, &n2);
        float lb = step_on("cuda", "bf16", &cfgs[c], &pb, &gb, &n3);
        CHECK(n1 == n2 && n2 == n3 && n1 > 0, "parameter counts %zu %zu %zu", n1, n2, n3);
        if (n1 == n2 && n2 == n3 && n1 > 0) {
            CHECK(!memcmp(pc, pg, n1 * sizeof(float)), "%s: the initial weights differ between cpu and cuda", cfgs[c].arch);
            double eg = rel_l2(gg, gc, n1), eb = rel_l2(gb, gc, n1);
            printf("  %s: loss cpu %.7f, cuda fp32 %.7f, cuda bf16 %.7f; gradients' relative error fp32 %.3g, bf16 %.3g\n", cfgs[c].arch,
                   lc, lg, lb, eg, eb);
            CHECK(fabsf(lg - lc) <= 1e-5f * fabsf(lc), "%s fp32 loss %.7f against %.7f", cfgs[c].arch, lg, lc);
            CHECK(eg <= 1e-4, "%s fp32 gradients: relative error %.3g", cfgs[c].arch, eg);
            CHECK(fabsf(lb - lc) <= 1e-2f * fabsf(lc), "%s bf16 loss %.7f against %.7f", cfgs[c].arch, lb, lc);
            CHECK(eb <= 5e-2, "%s bf16 gradients: relative error %.3g", cfgs[c].arch, eb);
        }
        free(pc), free(gc), free(pg), free(gg), free(pb), free(gb);
    }
}

/* ---- everywhere: the messages ---- */

static void test_messages(void) {
    char why[256];
    CHECK(!tern_backend_available("cuda:x", why, sizeof why) && strstr(why, "not a device name"), "cuda:x: %s", why);
    tern_backend *be = NULL;
    if (!tern_backend_available("cuda", why, sizeof why)) {
        /* no CUDA build, or no GPU: the refusal says which */
        CHECK(tern_backend_open(&be, "cuda") == TERN_EINVAL && !be, "cuda opened without a GPU");
        CHECK(strstr(tern_errmsg(), "CUDA") != NULL, "message: %s", tern_errmsg());
        printf("  --device cuda here: %s\n", tern_errmsg());
        return;
    }
    CHECK(tern_backend_open(&be, "cuda:1000") != TERN_OK, "cuda:1000 opened");
    CHECK(strstr(tern_errmsg(), "CUDA device") != NULL, "message: %s", tern_errmsg());
    CHECK(tern_backend_open(&be, "cuda") == TERN_OK, "%s", tern_errmsg());
    CHECK(!tern_backend_is_host(be) && !strcmp(tern_backend_name(be), "cuda:0"), "name %s", tern_backend_name(be));
    CHECK(tern_backend_set_precision(be, "fp16") != TERN_OK, "fp16 accepted");
    tern_backend_free(be);
}

int main(void) {
    RUN(test_messages);
    char why[256];
    if (!tern_backend_available("cuda", why, sizeof why)) {
        printf("SKIP test_cuda's GPU checks (attention at model sizes, bf16, determinism, failures, steps against the CPU): %s\n",
               why);
        return check_exit();
    }
    RUN(test_fp32_attention_at_model_sizes);
    RUN(test_bf16_against_ref);
    RUN(test_same_bits_twice);
    RUN(test_failures_are_named);
    RUN(test_steps_match_the_cpu);
    return check_exit();
}
