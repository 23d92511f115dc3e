/* Every kernel of every backend against ref, from one table of cases (ggml's test-backend-ops
 * is the model): each case draws its inputs from the counter RNG, puts them in the backend's
 * memory, fills the outputs with NaN first (or with values, for the kernels that add into
 * them) so that an element left unwritten fails, runs the kernel, and the results come back to
 * be compared with ref's by relative L2 error. Shapes are awkward on purpose: primes, sizes below
 * a vector or a tile, a sequence that spans three attention blocks, grouped-query and multi-query
 * heads. A new backend is checked by this table as soon as tern_backend_open knows it; one this
 * machine cannot run is reported as skipped, not passed. The products and attention run again at
 * precision bf16, against ref at bf16 (the same roundings, in plain loops). */
#include "check.h"
#include "tern.h"

#include "backend/backend_int.h"

/* ---- the harness ---- */

#define MAX_OUT 8

/* One run of a case on one backend: the outputs, copied back to the host. */
typedef struct {
    float *out[MAX_OUT];
    size_t n[MAX_OUT];
    const char *what[MAX_OUT];
    int nout;
    tern_backend *be;
    void *dev[32]; /* the case's buffers, freed after it */
    int ndev;
} run;

static float *host_random(size_t n, uint64_t stream, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = scale * tern_rng_normal(77, stream, i);
    return p;
}

/* A buffer in the backend's memory holding host[0..n) (or NaN when host is NULL). */
static float *dev(run *r, const float *host, size_t n) {
    float *d;
    if (r->be->mem->alloc(r->be, (void **)&d, (n ? n : 1) * sizeof(float), "a test buffer") != TERN_OK) {
        printf("%s\n", tern_errmsg());
        exit(2);
    }
    r->dev[r->ndev++] = d;
    if (host) {
        r->be->mem->upload(r->be, d, host, n * sizeof(float));
    } else {
        float *nan = malloc((n ? n : 1) * sizeof(float));
        for (size_t i = 0; i < n; i++) nan[i] = NAN;
        r->be->mem->upload(r->be, d, nan, n * sizeof(float));
        free(nan);
    }
    return d;
}

static int32_t *dev_ids(run *r, const int32_t *host, size_t n) {
    int32_t *d;
    if (r->be->mem->alloc(r->be, (void **)&d, n * sizeof(int32_t), "test ids") != TERN_OK) exit(2);
    r->dev[r->ndev++] = d;
    r->be->mem->upload(r->be, d, host, n * sizeof(int32_t));
    return d;
}

/* Marks a device buffer as an output to compare. */
static void out(run *r, const float *d, size_t n, const char *what) {
    int k = r->nout++;
    r->out[k] = malloc((n ? n : 1) * sizeof(float));
    r->be->mem->download(r->be, r->out[k], d, n * sizeof(float));
    r->n[k] = n;
    r->what[k] = what;
}

/* A host value the kernel returned (a reduction), as a one-element output. */
static void out_value(run *r, double v, const char *what) {
    int k = r->nout++;
    r->out[k] = malloc(sizeof(float));
    r->out[k][0] = (float)v;
    r->n[k] = 1;
    r->what[k] = what;
}

static void run_free(run *r) {
    for (int i = 0; i < r->ndev; i++) r->be->mem->free(r->be, r->dev[i]);
    for (int i = 0; i < r->nout; i++) free(r->out[i]);
}

typedef struct {
    const char *name;
    double tol;          /* relative L2 error allowed against ref */
    void (*fn)(run *r, int variant);
    int variants;
} op_case;

/* ---- the cases ---- */

static const size_t gemm_dims[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 65}, {97, 31, 3}};

static void c_sgemm(run *r, int v) {
    size_t M = gemm_dims[v / 4][0], N = gemm_dims[v / 4][1], K = gemm_dims[v / 4][2];
    int ta = v & 1, tb = (v >> 1) & 1;
    float *a = host_random(M * K, 1, 1), *b = host_random(K * N, 2, 1), *c = host_random(M * N, 3, 1);
    float *C = dev(r, c, M * N);
    r->be->k->sgemm(r->be, ta, tb, M, N, K, 0.5f, dev(r, a, M * K), ta ? M : K, dev(r, b, K * N), tb ? K : N, 0.25f, C, N);
    out(r, C, M * N, "C");
    free(a), free(b), free(c);
}

static const size_t mm_dims[][3] = {{1, 1, 1}, {5, 7, 3}, {37, 24, 40}, {64, 17, 129}};

static void c_matmul_fwd(run *r, int v) {
    size_t N = mm_dims[v / 4][0], C = mm_dims[v / 4][1], OC = mm_dims[v / 4][2];
    int wt = v & 1, bias = (v >> 1) & 1;
    float *x = host_random(N * C, 4, 1), *w = host_random(C * OC, 5, 0.3f), *b = host_random(OC, 6, 1);
    float *o = dev(r, NULL, N * OC);
    r->be->k->matmul_fwd(r->be, o, dev(r, x, N * C), dev(r, w, C * OC), bias ? dev(r, b, OC) : NULL, N, C, OC, wt);
    out(r, o, N * OC, "out");
    free(x), free(w), free(b);
}

static void c_matmul_bwd(run *r, int v) {
    size_t N = mm_dims[v / 4][0], C = mm_dims[v / 4][1], OC = mm_dims[v / 4][2];
    int wt = v & 1, bias = (v >> 1) & 1;
    float *x = host_random(N * C, 7, 1), *w = host_random(C * OC, 8, 0.3f), *dy = host_random(N * OC, 9, 1),
          *dw0 = host_random(C * OC, 10, 1), *db0 = host_random(OC, 11, 1);
    float *dx = dev(r, NULL, N * C), *dw = dev(r, dw0, C * OC), *db = dev(r, db0, OC);
    r->be->k->matmul_bwd(r->be, dx, dw, bias ? db : NULL, dev(r, dy, N * OC), dev(r, x, N * C), dev(r, w, C * OC), N, C, OC, wt);
    out(r, dx, N * C, "dinp");
    out(r, dw, C * OC, "dw");
    out(r, db, OC, "dbias");
    free(x), free(w), free(dy), free(dw0), free(db0);
}

/* tokens with repeats, so that the backward pass adds several rows into one */
static void tokens(int32_t *t, size_t n, size_t V) {
    for (size_t i = 0; i < n; i++) t[i] = (int32_t)(tern_rng_u64(5, 1, i) % (V < 5 ? V : 5 + i % (V - 4)));
}

static void c_encoder(run *r, int v) {
    size_t B = 3, T = v & 2 ? 17 : 5, C = v & 2 ? 40 : 7, V = 23;
    int pos = v & 1;
    int32_t ids[3 * 17];
    tokens(ids, B * T, V);
    float *wte = host_random(V * C, 12, 1), *wpe = host_random(T * C, 13, 1), *dy = host_random(B * T * C, 14, 1),
          *g0 = host_random(V * C, 15, 1), *p0 = host_random(T * C, 16, 1);
    int32_t *in = dev_ids(r, ids, B * T);
    float *o = dev(r, NULL, B * T * C), *dwte = dev(r, g0, V * C), *dwpe = dev(r, p0, T * C);
    r->be->k->encoder_fwd(r->be, o, in, dev(r, wte, V * C), pos ? dev(r, wpe, T * C) : NULL, B, T, C);
    r->be->k->encoder_bwd(r->be, dwte, pos ? dwpe : NULL, dev(r, dy, B * T * C), in, B, T, C);
    out(r, o, B * T * C, "out");
    out(r, dwte, V * C, "dwte");
    out(r, dwpe, T * C, "dwpe");
    free(wte), free(wpe), free(dy), free(g0), free(p0);
}

static const size_t norm_dims[][2] = {{1, 1}, {7, 13}, {33, 64}, {5, 131}};

static void c_layernorm(run *r, int v) {
    size_t N = norm_dims[v][0], C = norm_dims[v][1];
    float *x = host_random(N * C, 17, 2), *w = host_random(C, 18, 1), *b = host_random(C, 19, 1), *dy = host_random(N * C, 20, 1),
          *dx0 = host_random(N * C, 21, 1), *dw0 = host_random(C, 22, 1), *db0 = host_random(C, 23, 1);
    float *o = dev(r, NULL, N * C), *mean = dev(r, NULL, N), *rstd = dev(r, NULL, N), *dX = dev(r, x, N * C), *dW = dev(r, w, C);
    r->be->k->layernorm_fwd(r->be, o, mean, rstd, dX, dW, dev(r, b, C), N, C, 1e-5f);
    float *dx = dev(r, dx0, N * C), *dw = dev(r, dw0, C), *db = dev(r, db0, C);
    r->be->k->layernorm_bwd(r->be, dx, dw, db, dev(r, dy, N * C), dX, dW, mean, rstd, N, C);
    out(r, o, N * C, "out"), out(r, mean, N, "mean"), out(r, rstd, N, "rstd");
    out(r, dx, N * C, "dinp"), out(r, dw, C, "dw"), out(r, db, C, "db");
    free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0);
}

static void c_rmsnorm(run *r, int v) {
    size_t N = norm_dims[v][0], C = norm_dims[v][1];
    float *x = host_random(N * C, 24, 2), *w = host_random(C, 25, 1), *dy = host_random(N * C, 26, 1), *dx0 = host_random(N * C, 27, 1),
          *dw0 = host_random(C, 28, 1);
    float *o = dev(r, NULL, N * C), *rstd = dev(r, NULL, N), *dX = dev(r, x, N * C), *dW = dev(r, w, C);
    r->be->k->rmsnorm_fwd(r->be, o, rstd, dX, dW, N, C, 1e-6f);
    float *dx = dev(r, dx0, N * C), *dw = dev(r, dw0, C);
    r->be->k->rmsnorm_bwd(r->be, dx, dw, dev(r, dy, N * C), dX, dW, rstd, N, C);
    out(r, o, N * C, "out"), out(r, rstd, N, "rstd"), out(r, dx, N * C, "dinp"), out(r, dw, C, "dw");
    free(x), free(w), free(dy), free(dx0), free(dw0);
}

/* The residual add and the norm in one kernel. */
static void c_residual_norm(run *r, int v) {
    size_t N = norm_dims[v / 2][0], C = norm_dims[v / 2][1];
    int rms = v & 1;
    float *a = host_random(N * C, 60, 2), *b = host_random(N * C, 61, 1), *w = host_random(C, 62, 1), *bias = host_random(C, 63, 1);
    float *res = dev(r, NULL, N * C), *o = dev(r, NULL, N * C), *mean = dev(r, NULL, N), *rstd = dev(r, NULL, N);
    if (rms)
        r->be->k->residual_rmsnorm_fwd(r->be, res, o, rstd, dev(r, a, N * C), dev(r, b, N * C), dev(r, w, C), N, C, 1e-6f);
    else
        r->be->k->residual_layernorm_fwd(r->be, res, o, mean, rstd, dev(r, a, N * C), dev(r, b, N * C), dev(r, w, C), dev(r, bias, C), N, C,
                                         1e-5f);
    out(r, res, N * C, "residual"), out(r, o, N * C, "out"), out(r, rstd, N, "rstd");
    if (!rms) out(r, mean, N, "mean");
    free(a), free(b), free(w), free(bias);
}

/* A matmul's bias with GELU. */
static void c_bias_gelu(run *r, int v) {
    size_t N = norm_dims[v][0], OC = norm_dims[v][1];
    float *x = host_random(N * OC, 64, 3), *b = host_random(OC, 65, 1);
    float *X = dev(r, x, N * OC), *o = dev(r, NULL, N * OC);
    r->be->k->bias_gelu_fwd(r->be, o, X, dev(r, b, OC), N, OC);
    out(r, X, N * OC, "x + bias"), out(r, o, N * OC, "out");
    free(x), free(b);
}

/* B, T, NH, NKV, hs, packed (GPT-2's one (B,T,3C) buffer for q, k, v) */
static const size_t att_shapes[][6] = {
    {2, 13, 3, 3, 12, 1}, /* multi-head, packed, hs not a multiple of 8 */
    {1, 1, 2, 2, 8, 1},   /* one position */
    {3, 31, 4, 2, 12, 0}, /* grouped-query: 2 key/value heads for 4 */
    {2, 150, 2, 1, 16, 0}, /* multi-query over three query blocks, the last one partial */
    {1, 70, 6, 3, 6, 0},
};

static void c_attention(run *r, int v) {
    const size_t *s = att_shapes[v];
    size_t B = s[0], T = s[1], NH = s[2], NKV = s[3], hs = s[4], Q = NH * hs, KV = NKV * hs;
    int packed = (int)s[5];
    tern_att_shape as = {B, T, NH, NKV, hs, packed ? 3 * Q : Q, packed ? 3 * Q : KV, packed ? 3 * Q : KV};
    size_t nq = B * T * as.ldq, nk = B * T * as.ldk, nv = B * T * as.ldv;
    float *hq = host_random(nq, 29, 1), *hk = host_random(nk, 30, 1), *hv = host_random(nv, 31, 1), *hdy = host_random(B * T * Q, 32, 1);
    float *q = dev(r, hq, nq), *k = packed ? q + Q : dev(r, hk, nk), *vv = packed ? q + 2 * Q : dev(r, hv, nv);
    float *o = dev(r, NULL, B * T * Q), *lse = dev(r, NULL, B * NH * T), *scr = dev(r, NULL, TERN_ATT_SCRATCH(B, T, NH));
    r->be->k->attention_fwd(r->be, o, lse, scr, q, k, vv, &as);
    /* the gradients are laid out as their inputs; a packed buffer's three parts are one output */
    float *dq = dev(r, NULL, nq), *dk = packed ? dq + Q : dev(r, NULL, nk), *dv = packed ? dq + 2 * Q : dev(r, NULL, nv);
    r->be->k->attention_bwd(r->be, dq, dk, dv, scr, dev(r, hdy, B * T * Q), q, k, vv, lse, &as);
    out(r, o, B * T * Q, "out"), out(r, lse, B * NH * T, "lse"), out(r, dq, nq, "dq");
    if (!packed) out(r, dk, nk, "dk"), out(r, dv, nv, "dv");
    free(hq), free(hk), free(hv), free(hdy);
}

static void c_attention_decode(run *r, int v) {
    size_t len = v ? 37 : 1, NH = 4, NKV = v ? 2 : 4, hs = 10, ld = NKV * hs + (v ? 6 : 0);
    float *hq = host_random(NH * hs, 33, 1), *hk = host_random(len * ld, 34, 1), *hv = host_random(len * ld, 35, 1);
    float *o = dev(r, NULL, NH * hs);
    r->be->k->attention_decode(r->be, o, dev(r, NULL, len), dev(r, hq, NH * hs), dev(r, hk, len * ld), dev(r, hv, len * ld), len, NH,
                               NKV, hs, ld);
    out(r, o, NH * hs, "out");
    free(hq), free(hk), free(hv);
}

static void c_rope(run *r, int v) {
    size_t B = 2, T = v ? 9 : 1, H = 3, hs = 10, ld = v ? H * hs + 4 : H * hs, pos0 = v ? 7 : 0;
    float freq[5];
    for (size_t i = 0; i < 5; i++) freq[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)hs);
    float *x = host_random(B * T * ld, 36, 1), *dx = host_random(B * T * ld, 37, 1);
    float *f = dev(r, freq, 5), *X = dev(r, x, B * T * ld), *DX = dev(r, dx, B * T * ld);
    r->be->k->rope_fwd(r->be, X, f, B, T, H, hs, ld, pos0);
    r->be->k->rope_bwd(r->be, DX, f, B, T, H, hs, ld, pos0);
    out(r, X, B * T * ld, "x rotated"), out(r, DX, B * T * ld, "dx rotated back");
    free(x), free(dx);
}

static const size_t pw_lens[] = {1, 7, 1037, 4099};

static void c_gelu(run *r, int v) {
    size_t n = pw_lens[v];
    float *x = host_random(n, 38, 4), *dy = host_random(n, 39, 1);
    float *X = dev(r, x, n), *o = dev(r, NULL, n), *dx = dev(r, NULL, n);
    r->be->k->gelu_fwd(r->be, o, X, n);
    r->be->k->gelu_bwd(r->be, dx, X, dev(r, dy, n), n);
    out(r, o, n, "out"), out(r, dx, n, "dinp");
    free(x), free(dy);
}

static void c_swiglu(run *r, int v) {
    size_t n = pw_lens[v];
    float *g = host_random(n, 40, 4), *u = host_random(n, 41, 1), *dy = host_random(n, 42, 1);
    float *G = dev(r, g, n), *U = dev(r, u, n), *o = dev(r, NULL, n), *dg = dev(r, NULL, n), *du = dev(r, NULL, n);
    r->be->k->swiglu_fwd(r->be, o, G, U, n);
    r->be->k->swiglu_bwd(r->be, dg, du, dev(r, dy, n), G, U, n);
    out(r, o, n, "out"), out(r, dg, n, "dgate"), out(r, du, n, "dup");
    free(g), free(u), free(dy);
}

static void c_residual(run *r, int v) {
    size_t n = pw_lens[v];
    float *a = host_random(n, 43, 1), *b = host_random(n, 44, 1);
    float *o = dev(r, NULL, n);
    r->be->k->residual_fwd(r->be, o, dev(r, a, n), dev(r, b, n), n);
    out(r, o, n, "out");
    free(a), free(b);
}

static void c_crossentropy(run *r, int v) {
    size_t N = v ? 7 : 1, V = v ? 1003 : 2;
    int32_t tg[7] = {0, 1002, 5, 77, 999, 3, 500};
    if (!v) tg[0] = 1;
    float *lg = host_random(N * V, 45, 6);
    float *L = dev(r, lg, N * V), *losses = dev(r, NULL, N), *d = dev(r, NULL, N * V), *losses2 = dev(r, NULL, N);
    int32_t *t = dev_ids(r, tg, N);
    r->be->k->crossentropy_fwd_bwd(r->be, losses, d, L, t, 0.25f, N, V);
    r->be->k->crossentropy_fwd_bwd(r->be, losses2, NULL, L, t, 0.25f, N, V);
    out(r, losses, N, "losses"), out(r, d, N * V, "dlogits"), out(r, losses2, N, "losses without gradient");
    free(lg);
}

static void c_adamw(run *r, int v) {
    size_t n = pw_lens[v];
    float *p = host_random(n, 46, 1), *g = host_random(n, 47, 1), *m = host_random(n, 48, 0.1f), *vv = host_random(n, 49, 0.1f);
    for (size_t i = 0; i < n; i++) vv[i] = fabsf(vv[i]);
    tern_adamw_args a = {3e-3f, 0.9f, 0.95f, 1e-8f, 1.0f - 3e-3f * 0.1f, 1.0f - 0.9f * 0.9f, sqrtf(1.0f - 0.95f * 0.95f),
                         v & 1 ? 0.37f : 1.0f};
    float *P = dev(r, p, n), *M = dev(r, m, n), *Vv = dev(r, vv, n);
    r->be->k->adamw(r->be, P, dev(r, g, n), M, Vv, n, &a);
    out(r, P, n, "params"), out(r, M, n, "m"), out(r, Vv, n, "v");
    free(p), free(g), free(m), free(vv);
}

static void c_reductions(run *r, int v) {
    size_t n = v ? 100003 : 3;
    float *x = host_random(n, 50, 1);
    float *X = dev(r, x, n);
    out_value(r, r->be->k->sumsq(r->be, X, n), "sumsq");
    out_value(r, r->be->k->sum(r->be, X, n), "sum");
    r->be->k->scale(r->be, X, n, -0.5f);
    out(r, X, n, "scaled");
    float *F = dev(r, NULL, n), *G = dev(r, NULL, n);
    r->be->k->fill(r->be, F, n, 0.75f);
    r->be->k->fill_normal(r->be, G, n, 0.02f, 123, 456);
    out(r, F, n, "fill"), out(r, G, n, "fill_normal");
    x[n / 2] = v ? INFINITY : NAN;
    float *Y = dev(r, x, n), val = 0;
    long long at = r->be->k->find_nonfinite(r->be, Y, n, &val);
    out_value(r, (double)at, "first non-finite index");
    out_value(r, at >= 0 && isinf(val) ? 1.0 : at >= 0 && isnan(val) ? 2.0 : 0.0, "its kind");
    free(x);
}

static const op_case cases[] = {
    {"sgemm", 1e-6, c_sgemm, 16},
    {"matmul_fwd", 1e-6, c_matmul_fwd, 16},
    {"matmul_bwd", 1e-6, c_matmul_bwd, 16},
    {"encoder_fwd/bwd", 1e-7, c_encoder, 4},
    {"layernorm_fwd/bwd", 1e-6, c_layernorm, 4},
    {"rmsnorm_fwd/bwd", 1e-6, c_rmsnorm, 4},
    {"residual_layernorm_fwd, residual_rmsnorm_fwd", 1e-6, c_residual_norm, 8},
    {"bias_gelu_fwd", 1e-6, c_bias_gelu, 4},
    {"attention_fwd/bwd", 1e-5, c_attention, 5},
    {"attention_decode", 1e-6, c_attention_decode, 2},
    {"rope_fwd/bwd", 1e-6, c_rope, 2},
    {"gelu_fwd/bwd", 1e-6, c_gelu, 4},
    {"swiglu_fwd/bwd", 1e-6, c_swiglu, 4},
    {"residual_fwd", 0, c_residual, 4},
    {"crossentropy_fwd_bwd", 1e-6, c_crossentropy, 2},
    {"adamw", 1e-6, c_adamw, 4},
    {"sumsq, sum, scale, fill, fill_normal, find_nonfinite", 1e-7, c_reductions, 2},
};

/* At bf16 every set rounds the same operands the same way (to nearest even, as AVX512_BF16's
 * conversion does) and multiplies them exactly in fp32, so a set and ref at bf16 differ only in
 * the order of their fp32 additions: tol_bf16 is of the same order as the fp32 tolerance, with
 * room for sums of up to 150 terms. Attention's probabilities come from each set's own exp and
 * are then rounded, so an exp one ulp apart can land a probability on the other side of a bf16
 * rounding boundary: rare, and a few 1e-6 in relative L2 when it happens. Against ref at fp32
 * the same outputs must be visibly bf16: within bf16's 2^-8 relative precision (tol_fp32), and
 * not within fp32's (above 1e-4 for the largest shape). */
static const struct {
    const char *name;
    double tol_bf16, tol_fp32;
    void (*fn)(run *r, int variant);
    int variants;
} bf16_cases[] = {
    {"sgemm", 1e-5, 2e-2, c_sgemm, 16},
    {"matmul_fwd", 1e-5, 2e-2, c_matmul_fwd, 16},
    {"matmul_bwd", 1e-5, 2e-2, c_matmul_bwd, 16},
    {"attention_fwd/bwd", 5e-5, 3e-2, c_attention, 5},
};

/* The bf16 cases on `name` (at bf16) against `oracle` at bf16 and ref at fp32. */
static void check_bf16(const char *name, const char *oracle) {
    tern_backend *ref, *orc, *be;
    if (tern_backend_open(&ref, "ref") != TERN_OK || tern_backend_open(&orc, oracle) != TERN_OK ||
        tern_backend_open(&be, name) != TERN_OK || tern_backend_set_precision(orc, "bf16") != TERN_OK ||
        tern_backend_set_precision(be, "bf16") != TERN_OK) {
        CHECK(0, "%s", tern_errmsg());
        return;
    }
    int checked = 0;
    for (size_t c = 0; c < sizeof bf16_cases / sizeof bf16_cases[0]; c++) {
        double worst = 0, worst32 = 0, last32 = 0;
        for (int v = 0; v < bf16_cases[c].variants; v++) {
            run a = {.be = orc}, b = {.be = be}, f = {.be = ref};
            bf16_cases[c].fn(&a, v);
            bf16_cases[c].fn(&b, v);
            bf16_cases[c].fn(&f, v);
            CHECK(tern_backend_sync(be) == TERN_OK, "%s bf16 %s: %s", name, bf16_cases[c].name, tern_errmsg());
            last32 = 0;
            for (int k = 0; k < a.nout; k++) {
                double e = rel_l2(b.out[k], a.out[k], a.n[k]), e32 = rel_l2(b.out[k], f.out[k], f.n[k]);
                if (!(e <= bf16_cases[c].tol_bf16))
                    CHECK(0, "%s bf16 %s variant %d, %s: relative error %.3g against %s bf16 > %.g", name, bf16_cases[c].name, v,
                          a.what[k], e, oracle, bf16_cases[c].tol_bf16);
                if (!(e32 <= bf16_cases[c].tol_fp32))
                    CHECK(0, "%s bf16 %s variant %d, %s: relative error %.3g against ref fp32 > %.g", name, bf16_cases[c].name, v,
                          a.what[k], e32, bf16_cases[c].tol_fp32);
                worst = e > worst ? e : worst;
                worst32 = e32 > worst32 ? e32 : worst32;
                last32 = e32 > last32 ? e32 : last32;
                checked++;
            }
            run_free(&a);
            run_free(&b);
            run_free(&f);
        }
        CHECK(last32 > 1e-4, "%s bf16 %s: the largest shape is within %.3g of fp32: not rounded to bf16", name, bf16_cases[c].name,
              last32);
        printf("  %s bf16 %s: worst relative error %.3g against %s bf16, %.3g against ref fp32\n", name, bf16_cases[c].name, worst,
               oracle, worst32);
    }
    printf("  %s bf16 (%s): %d outputs compared with %s bf16\n", name, tern_backend_precision_how(be), checked, oracle);
    tern_backend_free(ref);
    tern_backend_free(orc);
    tern_backend_free(be);
}

/* Every case of the table on backend `name` against ref. */
static void check_backend(const char *name) {
    tern_backend *ref, *be;
    if (tern_backend_open(&ref, "ref") != TERN_OK || tern_backend_open(&be, name) != TERN_OK) {
        CHECK(0, "%s", tern_errmsg());
        return;
    }
    int checked = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double worst = 0;
        for (int v = 0; v < cases[c].variants; v++) {
            run a = {.be = ref}, b = {.be = be};
            cases[c].fn(&a, v);
            cases[c].fn(&b, v);
            CHECK(tern_backend_sync(be) == TERN_OK, "%s %s: %s", name, cases[c].name, tern_errmsg());
            for (int k = 0; k < a.nout; k++) {
                double e = rel_l2(b.out[k], a.out[k], a.n[k]);
                if (!(e <= cases[c].tol)) /* NaN fails too: an element left unwritten */
                    CHECK(0, "%s %s variant %d, %s: relative error %.3g > %.g", name, cases[c].name, v, a.what[k], e, cases[c].tol);
                worst = e > worst ? e : worst;
                checked++;
            }
            run_free(&a);
            run_free(&b);
        }
        printf("  %s %s: worst relative error %.3g\n", name, cases[c].name, worst);
    }
    printf("  %s: %d outputs of %zu kernels compared with ref\n", name, checked, sizeof cases / sizeof cases[0]);
    tern_backend_free(ref);
    tern_backend_free(be);
}

static void test_every_backend_against_ref(void) {
    for (const char *const *n = tern_backend_names; *n; n++) {
        if (!strcmp(*n, "ref")) continue;
        char why[256];
        if (!tern_backend_available(*n, why, sizeof why)) {
            printf("SKIP backend %s: %s\n", *n, why);
            continue;
        }
        check_backend(*n);
    }
}

/* The bf16 products and attention of every CPU set this machine runs against ref's, and the
 * native AVX512_BF16 path (avx512, where the CPU has it) against the emulated one (avx2, or cpu):
 * the same arithmetic, so they agree to the order of fp32 additions. ref at bf16 is itself checked
 * against ref at fp32 (visibly rounded, within bf16's precision). */
static void test_bf16_against_ref(void) {
    for (const char *const *n = tern_backend_names; *n; n++) {
        if (!strncmp(*n, "cuda", 4)) continue; /* tests/test_cuda.c checks the GPU's bf16 */
        char why[256];
        if (!tern_backend_available(*n, why, sizeof why)) {
            printf("SKIP bf16 on backend %s: %s\n", *n, why);
            continue;
        }
        check_bf16(*n, "ref");
    }
    if (!tern_backend_available("avx512", NULL, 0)) {
        printf("SKIP bf16 native against emulated: no avx512 set on this CPU\n");
        return;
    }
    tern_backend *be;
    CHECK(tern_backend_open(&be, "avx512") == TERN_OK && tern_backend_set_precision(be, "bf16") == TERN_OK, "%s", tern_errmsg());
    int native = !strcmp(tern_backend_precision_how(be), "AVX512_BF16");
    tern_backend_free(be);
    if (!native) {
        printf("SKIP bf16 native against emulated: this CPU lacks AVX512_BF16, so avx512 emulates too\n");
        return;
    }
    check_bf16("avx512", tern_backend_available("avx2", NULL, 0) ? "avx2" : "cpu");
}

/* The avx512 set at bf16 where it runs natively (AVX512_BF16); NULL, after saying why the test
 * named what is skipped, where it does not (the emulated path keeps no copies and takes no other
 * way). */
static tern_backend *native_bf16_or_skip(const char *what) {
    tern_backend *be;
    if (!tern_backend_available("avx512", NULL, 0)) {
        printf("SKIP %s: no avx512 set on this CPU\n", what);
        return NULL;
    }
    if (tern_backend_open(&be, "avx512") != TERN_OK || tern_backend_set_precision(be, "bf16") != TERN_OK) {
        CHECK(0, "%s: avx512 at bf16: %s", what, tern_errmsg());
        tern_backend_free(be);
        return NULL;
    }
    if (strcmp(tern_backend_precision_how(be), "AVX512_BF16")) {
        printf("SKIP %s: this CPU lacks AVX512_BF16, so the products are emulated\n", what);
        tern_backend_free(be);
        return NULL;
    }
    return be;
}

/* matmul_fwd and matmul_bwd of (N, C) by a (C, OC) weight laid out as wt says, into o: out,
 * dinp, dw (added into zeros) and dbias (likewise). */
static void held_products(tern_backend *be, float *o[4], const float *w, const float *x, const float *dy, const float *bias, size_t N,
                          size_t C, size_t OC, int wt) {
    memset(o[2], 0, C * OC * sizeof(float));
    memset(o[3], 0, OC * sizeof(float));
    be->k->matmul_fwd(be, o[0], x, w, bias, N, C, OC, wt);
    be->k->matmul_bwd(be, o[1], o[2], o[3], dy, x, w, N, C, OC, wt);
}

/* At bf16 on AVX512_BF16 a weight the model holds is converted and packed once per hold, and the
 * products that read it reuse the packed copy. Within a hold, and again in a later hold after the
 * weight changed, the results must be those of the same products run without a hold: a copy kept
 * past its hold would give the old weight's products. Two row counts share the weight, as the
 * head's full and last chunks do. */
static void test_bf16_held_weights(void) {
    tern_backend *be = native_bf16_or_skip("bf16 held weights");
    if (!be) return;
    const size_t C = 48, OC = 80, Ns[2] = {96, 37};
    for (int wt = 0; wt < 2; wt++) {
        float *w = host_random(C * OC + OC, 91, 1); /* the "model": the weight, then a bias */
        float *bias = w + C * OC;
        float *x = host_random(96 * C, 92, 1), *dy = host_random(96 * OC, 93, 1);
        size_t sz[4] = {96 * OC, 96 * C, C * OC, OC};
        float *plain[2][4], *held[4];
        for (int i = 0; i < 4; i++) {
            held[i] = malloc(sz[i] * sizeof(float));
            for (int j = 0; j < 2; j++) plain[j][i] = malloc(sz[i] * sizeof(float));
        }
        for (int round = 0; round < 2; round++) {
            for (int j = 0; j < 2; j++) held_products(be, plain[j], w, x, dy, bias, Ns[j], C, OC, wt);
            tern_backend_hold_weights(be, w, C * OC + OC);
            for (int rep = 0; rep < 2; rep++)
                for (int j = 0; j < 2; j++) {
                    held_products(be, held, w, x, dy, bias, Ns[j], C, OC, wt);
                    size_t n[4] = {Ns[j] * OC, Ns[j] * C, C * OC, OC};
                    for (int i = 0; i < 4; i++) {
                        double e = rel_l2(held[i], plain[j][i], n[i]);
                        CHECK(e < 1e-6, "wt %d, weights version %d, pass %d, %zu rows: output %d differs from the unheld product by %.3g",
                              wt, round, rep, Ns[j], i, e);
                    }
                }
            tern_backend_release_weights(be);
            for (size_t i = 0; i < C * OC; i++) w[i] = 0.5f * w[i] + 0.25f * tern_rng_normal(94, (uint64_t)round, i);
        }
        for (int i = 0; i < 4; i++) free(held[i]), free(plain[0][i]), free(plain[1][i]);
        free(w), free(x), free(dy);
    }
    tern_backend_drop_derived(be);
    tern_backend_free(be);
}

/* A product whose left operand has a vocabulary's rows (the head's weight gradient) takes another
 * way on AVX512_BF16: its right operand is reordered into oneDNN's blocked layout first. It must
 * agree with the emulated product as the plain ones do. */
static void test_bf16_vocabulary_rows(void) {
    tern_backend *nat = native_bf16_or_skip("bf16 vocabulary rows"), *emu;
    if (!nat) return;
    CHECK(tern_backend_open(&emu, tern_backend_available("avx2", NULL, 0) ? "avx2" : "cpu") == TERN_OK &&
              tern_backend_set_precision(emu, "bf16") == TERN_OK,
          "%s", tern_errmsg());
    const size_t N = 40, C = 24, OC = 16411; /* OC: the product dW += dout^T inp has OC rows */
    float *dout = host_random(N * OC, 95, 1), *inp = host_random(N * C, 96, 1), *w = host_random(OC * C, 97, 1);
    float *dinp[2], *dw[2];
    tern_backend *be[2] = {nat, emu};
    for (int i = 0; i < 2; i++) {
        dinp[i] = malloc(N * C * sizeof(float));
        dw[i] = host_random(OC * C, 98, 1); /* added into */
        be[i]->k->matmul_bwd(be[i], dinp[i], dw[i], NULL, dout, inp, w, N, C, OC, 1);
    }
    double e1 = rel_l2(dinp[0], dinp[1], N * C), e2 = rel_l2(dw[0], dw[1], OC * C);
    printf("  avx512 bf16 matmul_bwd with %zu output rows: worst relative error %.3g (dinp), %.3g (dW) against emulated\n", OC, e1, e2);
    /* dinp sums 16411 products: the two ways add them in different orders */
    CHECK(e1 < 1e-5 && e2 < 1e-6, "native against emulated: dinp %.3g, dW %.3g", e1, e2);
    for (int i = 0; i < 2; i++) free(dinp[i]), free(dw[i]);
    free(dout), free(inp), free(w);
    tern_backend_free(nat);
    tern_backend_free(emu);
}

/* ref against itself: the table's own outputs are deterministic (the same inputs give the same
 * bits), and a kernel that leaves an output unwritten is caught (a NaN-filled buffer compared). */
static void test_harness_catches_unwritten(void) {
    tern_backend *ref;
    CHECK(tern_backend_open(&ref, "ref") == TERN_OK, "%s", tern_errmsg());
    run a = {.be = ref}, b = {.be = ref};
    c_gelu(&a, 2);
    c_gelu(&b, 2);
    CHECK(!memcmp(a.out[0], b.out[0], a.n[0] * sizeof(float)), "ref is not deterministic");
    float *poisoned = dev(&b, NULL, a.n[0]);
    out(&b, poisoned, a.n[0], "unwritten");
    double e = rel_l2(b.out[b.nout - 1], a.out[0], a.n[0]);
    CHECK(!(e <= 1.0), "an unwritten output compared as %.3g", e);
    run_free(&a);
    run_free(&b);
    tern_backend_free(ref);
}

int main(void) {
    if (!getenv("ONLY_HELD")) RUN(test_harness_catches_unwritten);
    if (!getenv("ONLY_HELD")) RUN(test_every_backend_against_ref);
    if (!getenv("ONLY_HELD")) RUN(test_bf16_against_ref);
    RUN(test_bf16_held_weights);
    RUN(test_bf16_vocabulary_rows);
    return check_exit();
}
