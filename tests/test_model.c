/* The core step against PyTorch: logits, loss, every gradient, and every parameter after 3 AdamW
 * steps (with decay, clipping, a warm-up + cosine schedule and gradient accumulation), from the
 * fixtures that tools/make_fixtures.py computes in float64 with an independent GPT-2. Run for
 * every kernel set. Then finite-difference gradient checks on a tiny model, and kernel sets
 * against ref on awkward shapes. */
#include "check.h"
#include "tern.h"

#include "kern/kern.h"

typedef struct {
    tern_gpt2_config cfg;
    size_t B, T, steps, accum;
    float lr_max, lr_min, wd, b1, b2, eps, clip;
    uint64_t warmup;
} fixture_cfg;

static long meta_long(tern_safetensors *st, const char *k) {
    const char *v = tern_st_meta(st, k);
    if (!v) {
        printf("fixture lacks %s\n", k);
        exit(2);
    }
    return atol(v);
}
static float meta_float(tern_safetensors *st, const char *k) {
    const char *v = tern_st_meta(st, k);
    if (!v) {
        printf("fixture lacks %s\n", k);
        exit(2);
    }
    return (float)atof(v);
}

static tern_safetensors *open_fixture(const char *name, fixture_cfg *fc) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/gpt2_%s.safetensors", name);
    tern_safetensors *st;
    if (tern_st_open(&st, path) != TERN_OK) {
        printf("cannot open fixture: %s\n", tern_errmsg());
        exit(2);
    }
    fc->cfg.n_layer = (int)meta_long(st, "n_layer");
    fc->cfg.n_head = (int)meta_long(st, "n_head");
    fc->cfg.n_embd = (int)meta_long(st, "n_embd");
    fc->cfg.n_ctx = (int)meta_long(st, "n_ctx");
    fc->cfg.vocab_size = (int)meta_long(st, "vocab_size");
    fc->B = (size_t)meta_long(st, "B");
    fc->T = (size_t)meta_long(st, "T");
    fc->steps = (size_t)meta_long(st, "steps");
    fc->accum = (size_t)meta_long(st, "grad_accum");
    fc->warmup = (uint64_t)meta_long(st, "warmup");
    fc->lr_max = meta_float(st, "lr_max");
    fc->lr_min = meta_float(st, "lr_min");
    fc->wd = meta_float(st, "weight_decay");
    fc->b1 = meta_float(st, "beta1");
    fc->b2 = meta_float(st, "beta2");
    fc->eps = meta_float(st, "eps");
    fc->clip = meta_float(st, "grad_clip");
    return st;
}

/* Loads every parameter (prefix "" for initial, "step3." for after 3 steps) into buf. */
static void load_params(tern_gpt2 *m, tern_safetensors *st, const char *prefix, float *buf) {
    size_t n;
    const tern_tensor *t = tern_gpt2_tensors(m, &n);
    for (size_t i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, t[i].name);
        if (tern_st_read_f32(st, name, buf + t[i].offset, t[i].ndim, t[i].shape) != TERN_OK) {
            printf("%s\n", tern_errmsg());
            exit(2);
        }
    }
}

/* Compares each tensor of got against the fixture's (prefix) by relative L2 error. */
static void compare_tensors(tern_gpt2 *m, tern_safetensors *st, const char *prefix, const float *got, double tol,
                            const char *what, float key_bias_bound) {
    size_t n;
    const tern_tensor *t = tern_gpt2_tensors(m, &n);
    size_t np = tern_gpt2_num_params(m);
    float *want = malloc(np * sizeof(float));
    load_params(m, st, prefix, want);
    double worst = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < n; i++) {
        double e = rel_l2(got + t[i].offset, want + t[i].offset, t[i].numel);
        size_t len = strlen(t[i].name);
        if (key_bias_bound > 0 && len > 16 && !strcmp(t[i].name + len - 16, "attn.c_attn.bias")) {
            /* The key third of c_attn.bias has an exactly zero gradient (adding a constant to every
             * key score of a row leaves the softmax unchanged), so AdamW's update there is rounding
             * noise amplified by 1/(sqrt(v)+eps): float64 torch moves it by ~0, any float32 code by
             * up to lr per step. Compare the query and value thirds strictly, and hold the key third
             * to AdamW's step bound. */
            size_t C = t[i].numel / 3;
            const float *g0 = got + t[i].offset, *w0 = want + t[i].offset;
            double eq = rel_l2(g0, w0, C), ev = rel_l2(g0 + 2 * C, w0 + 2 * C, C);
            CHECK(eq <= tol && ev <= tol, "%s %s: query/value relative errors %.3g %.3g", what, t[i].name, eq, ev);
            for (size_t j = C; j < 2 * C; j++)
                CHECK(fabsf(g0[j] - w0[j]) <= key_bias_bound, "%s %s[%zu]: %.8g vs %.8g beyond AdamW's bound", what,
                      t[i].name, j, g0[j], w0[j]);
            e = eq > ev ? eq : ev;
        } else {
            CHECK(e <= tol, "%s %s: relative error %.3g > %.g", what, t[i].name, e, tol);
        }
        if (e > worst) {
            worst = e;
            worst_name = t[i].name;
        }
    }
    printf("  %s: worst relative error %.3g (%s)\n", what, worst, worst_name);
    free(want);
}

static void check_fixture(const char *name, const char *kern) {
    fixture_cfg fc;
    tern_safetensors *st = open_fixture(name, &fc);
    tern_gpt2 *m;
    CHECK(tern_gpt2_init(&m, &fc.cfg) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_gpt2_set_kernels(m, kern) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_gpt2_reserve(m, fc.B, fc.T) == TERN_OK, "%s", tern_errmsg());
    size_t B = fc.B, T = fc.T, V = (size_t)fc.cfg.vocab_size, np = tern_gpt2_num_params(m);
    float *params = tern_gpt2_params(m), *grads = tern_gpt2_grads(m);
    load_params(m, st, "", params);
    const tern_st_entry *te = tern_st_find(st, "tokens");
    CHECK(te && te->ndim == 3 && te->shape[0] == fc.steps && te->shape[1] == B && te->shape[2] == T + 1, "tokens shape");
    const int32_t *tok = tern_st_data(st, te);
    int32_t *in = malloc(B * T * sizeof(int32_t)), *tg = malloc(B * T * sizeof(int32_t));
    /* batch 0: logits, loss, gradients */
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            in[b * T + t] = tok[b * (T + 1) + t];
            tg[b * T + t] = tok[b * (T + 1) + t + 1];
        }
    float loss = 0;
    /* logits are kept by a forward pass without targets; the loss comes from one with them */
    CHECK(tern_gpt2_forward(m, in, NULL, B, T, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_gpt2_forward(m, in, tg, B, T, &loss) == TERN_OK, "%s", tern_errmsg());
    float *want_logits = malloc(B * T * V * sizeof(float)), want_loss;
    size_t lshape[3] = {B, T, V};
    CHECK(tern_st_read_f32(st, "logits", want_logits, 3, lshape) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_st_read_f32(st, "loss", &want_loss, 0, NULL) == TERN_OK, "%s", tern_errmsg());
    double le = rel_l2(tern_gpt2_logits(m), want_logits, B * T * V);
    CHECK(le <= 1e-5, "logits relative error %.3g", le);
    CHECK(fabs(loss - want_loss) <= 1e-5 * fabs(want_loss), "loss %.8f vs %.8f", loss, want_loss);
    printf("  %s/%s: logits error %.3g, loss %.7f vs torch %.7f\n", name, kern, le, loss, want_loss);
    tern_gpt2_zero_grad(m);
    tern_gpt2_backward(m, 1.0f);
    compare_tensors(m, st, "grad.", grads, 1e-4, "gradient", 0);

    /* 3 AdamW steps, 2 micro-batches each */
    load_params(m, st, "", params);
    tern_adamw opt;
    CHECK(tern_adamw_init(&opt, 0, np) == TERN_OK, "%s", tern_errmsg());
    tern_adamw_hparams hp = {fc.b1, fc.b2, fc.eps, fc.wd};
    tern_lr_schedule sch = {TERN_SCHED_COSINE, fc.lr_max, fc.lr_min, fc.warmup, fc.steps};
    float want_losses[8], want_norms[8];
    size_t sshape[1] = {fc.steps};
    CHECK(tern_st_read_f32(st, "step_losses", want_losses, 1, sshape) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_st_read_f32(st, "step_grad_norms", want_norms, 1, sshape) == TERN_OK, "%s", tern_errmsg());
    size_t mb = B / fc.accum;
    size_t ntens;
    const tern_tensor *tens = tern_gpt2_tensors(m, &ntens);
    for (size_t s = 0; s < fc.steps; s++) {
        tern_gpt2_zero_grad(m);
        double step_loss = 0;
        for (size_t a = 0; a < fc.accum; a++) {
            for (size_t b = 0; b < mb; b++)
                for (size_t t = 0; t < T; t++) {
                    const int32_t *row = tok + (s * B + a * mb + b) * (T + 1);
                    in[b * T + t] = row[t];
                    tg[b * T + t] = row[t + 1];
                }
            CHECK(tern_gpt2_forward(m, in, tg, mb, T, &loss) == TERN_OK, "%s", tern_errmsg());
            tern_gpt2_backward(m, 1.0f / (float)fc.accum);
            step_loss += loss / (double)fc.accum;
        }
        double norm = sqrt(tern_sum_squares(grads, np));
        tern_clip_grads(grads, np, norm, fc.clip);
        tern_adamw_step(&opt, params, grads, tens, ntens, tern_lr_at(&sch, s), s + 1, &hp);
        CHECK(fabs(step_loss - want_losses[s]) <= 1e-5 * fabs(want_losses[s]), "step %zu loss %.8f vs %.8f", s, step_loss,
              want_losses[s]);
        CHECK(fabs(norm - want_norms[s]) <= 1e-4 * want_norms[s], "step %zu grad norm %.6f vs %.6f", s, norm, want_norms[s]);
    }
    float lr_sum = 0;
    for (size_t s = 0; s < fc.steps; s++) lr_sum += tern_lr_at(&sch, s);
    compare_tensors(m, st, "step3.", params, 1e-4, "parameter after 3 steps", 1.01f * lr_sum);
    tern_adamw_free(&opt);
    free(in);
    free(tg);
    free(want_logits);
    tern_gpt2_free(m);
    tern_st_free(st);
}

/* Every kernel set this CPU runs, against PyTorch on both fixtures. */
static void test_torch_every_set(void) {
    for (const char *const *n = tern_kern_names; *n; n++) {
        if (!tern_kern_by_name(*n)) {
            printf("  kernel set %s: not supported on this CPU, skipped\n", *n);
            continue;
        }
        check_fixture("v97", *n);
        check_fixture("l3", *n);
        check_fixture("v300", *n);
    }
}

/* Elementwise and row kernels of each set against ref, on lengths that are not multiples of the
 * vector width, with values across GELU's and exp's ranges. */
static void test_pointwise_sets(void) {
    const tern_kern *ref = tern_kern_by_name("ref");
    size_t n = 1037, N = 7, V = 1000 + 3;
    float *x = malloc(n * 4), *y1 = malloc(n * 4), *y2 = malloc(n * 4), *dy = malloc(n * 4);
    float *lg = malloc(N * V * 4), *l1 = malloc(N * 4), *l2 = malloc(N * 4), *d1 = malloc(N * V * 4), *d2 = malloc(N * V * 4);
    int32_t tg[7] = {0, 1002, 5, 77, 999, 3, 500};
    for (size_t i = 0; i < n; i++) {
        x[i] = 12.0f * tern_rng_normal(5, 1, i);
        dy[i] = tern_rng_normal(5, 2, i);
    }
    for (size_t i = 0; i < N * V; i++) lg[i] = 6.0f * tern_rng_normal(5, 3, i);
    for (const char *const *nm = tern_kern_names; *nm; nm++) {
        const tern_kern *k = tern_kern_by_name(*nm);
        if (!k || k == ref) continue;
        ref->gelu_fwd(y1, x, n);
        k->gelu_fwd(y2, x, n);
        CHECK(rel_l2(y2, y1, n) < 1e-6, "%s gelu_fwd: %.3g", *nm, rel_l2(y2, y1, n));
        ref->gelu_bwd(y1, x, dy, n);
        k->gelu_bwd(y2, x, dy, n);
        CHECK(rel_l2(y2, y1, n) < 1e-6, "%s gelu_bwd: %.3g", *nm, rel_l2(y2, y1, n));
        ref->crossentropy_fwd_bwd(l1, d1, lg, tg, 0.25f, N, V);
        k->crossentropy_fwd_bwd(l2, d2, lg, tg, 0.25f, N, V);
        CHECK(rel_l2(l2, l1, N) < 1e-6, "%s cross-entropy losses: %.3g", *nm, rel_l2(l2, l1, N));
        CHECK(rel_l2(d2, d1, N * V) < 1e-6, "%s cross-entropy gradient: %.3g", *nm, rel_l2(d2, d1, N * V));
    }
    free(x), free(y1), free(y2), free(dy), free(lg), free(l1), free(l2), free(d1), free(d2);
}

/* The central finite difference of the mean loss in parameter i (step 1e-3), compared with the
 * analytic gradient g: returns 1 when they disagree by more than 2% (relative, floor 1e-2), and
 * says so. */
static int fd_disagrees(tern_gpt2 *m, const int32_t *in, const int32_t *tg, size_t B, size_t T, size_t i, float g,
                        const char *name, size_t at) {
    float *p = tern_gpt2_params(m);
    float saved = p[i], h = 1e-3f, lp, lm;
    p[i] = saved + h;
    tern_gpt2_forward(m, in, tg, B, T, &lp);
    p[i] = saved - h;
    tern_gpt2_forward(m, in, tg, B, T, &lm);
    p[i] = saved;
    double fd = ((double)lp - (double)lm) / (2.0 * h);
    if (fabs(fd - g) / fmax(fabs(fd) + fabs(g), 1e-2) <= 2e-2) return 0;
    printf("  %s[%zu]: analytic %.6g, finite difference %.6g\n", name, at, g, fd);
    return 1;
}

/* Central finite differences on a tiny model, in float32 with a step large enough to rise above
 * rounding: an independent check of the backward pass that needs no fixture. */
static void test_finite_differences(void) {
    tern_gpt2_config cfg = {2, 2, 8, 6, 11};
    tern_gpt2 *m;
    CHECK(tern_gpt2_init(&m, &cfg) == TERN_OK, "%s", tern_errmsg());
    tern_gpt2_set_kernels(m, "ref");
    size_t B = 2, T = 5;
    CHECK(tern_gpt2_reserve(m, B, T) == TERN_OK, "%s", tern_errmsg());
    tern_gpt2_init_weights(m, 7);
    float *p = tern_gpt2_params(m), *g = tern_gpt2_grads(m);
    size_t np = tern_gpt2_num_params(m);
    /* larger weights than GPT-2's init so that every path carries signal */
    for (size_t i = 0; i < np; i++) p[i] = p[i] * 5.0f + 0.05f * tern_rng_normal(9, 1, i);
    int32_t in[10], tg[10];
    for (int i = 0; i < 10; i++) {
        in[i] = (int32_t)((i * 7 + 3) % 11);
        tg[i] = (int32_t)((i * 5 + 1) % 11);
    }
    float loss;
    tern_gpt2_zero_grad(m);
    tern_gpt2_forward(m, in, tg, B, T, &loss);
    tern_gpt2_backward(m, 1.0f);
    size_t ntens;
    const tern_tensor *t = tern_gpt2_tensors(m, &ntens);
    int checked = 0, bad = 0;
    for (size_t k = 0; k < ntens; k++) {
        /* three coordinates per tensor */
        for (int j = 0; j < 3; j++) {
            size_t i = t[k].offset + (size_t)(j * 7919) % t[k].numel;
            if (!strcmp(t[k].name, "wpe.weight") && (i - t[k].offset) / 8 >= T) continue; /* unused positions */
            checked++;
            bad += fd_disagrees(m, in, tg, B, T, i, g[i], t[k].name, i - t[k].offset);
        }
    }
    CHECK(bad == 0, "%d of %d coordinates disagree with finite differences", bad, checked);
    tern_gpt2_free(m);
}

/* The head over several chunks of positions (B*T = 600 > 512 rows): the loss equals the mean
 * cross-entropy of the full logits (computed here in double), forward_backward equals forward
 * then backward bit for bit, and the gradient of wte (which the head's chunks accumulate) agrees
 * with finite differences. */
static void test_head_chunks(void) {
    tern_gpt2_config cfg = {1, 2, 8, 200, 11};
    size_t B = 3, T = 200, N = B * T, V = 11;
    tern_gpt2 *m;
    CHECK(tern_gpt2_init(&m, &cfg) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_gpt2_reserve(m, B, T) == TERN_OK, "%s", tern_errmsg());
    tern_gpt2_init_weights(m, 5);
    float *p = tern_gpt2_params(m);
    size_t np = tern_gpt2_num_params(m);
    for (size_t i = 0; i < np; i++) p[i] = p[i] * 5.0f + 0.05f * tern_rng_normal(9, 2, i);
    int32_t *in = malloc(N * sizeof(int32_t)), *tg = malloc(N * sizeof(int32_t));
    for (size_t i = 0; i < N; i++) {
        in[i] = (int32_t)(tern_rng_u64(3, 1, i) % V);
        tg[i] = (int32_t)(tern_rng_u64(3, 2, i) % V);
    }
    CHECK(tern_gpt2_forward(m, in, NULL, B, T, NULL) == TERN_OK, "%s", tern_errmsg());
    const float *lg = tern_gpt2_logits(m);
    double want = 0.0;
    for (size_t i = 0; i < N; i++) {
        double mx = -INFINITY, s = 0.0;
        for (size_t v = 0; v < V; v++) mx = fmax(mx, lg[i * V + v]);
        for (size_t v = 0; v < V; v++) s += exp(lg[i * V + v] - mx);
        want += mx + log(s) - lg[i * V + (size_t)tg[i]];
    }
    want /= (double)N;
    float loss, loss2;
    CHECK(tern_gpt2_forward(m, in, tg, B, T, &loss) == TERN_OK, "%s", tern_errmsg());
    CHECK(fabs(loss - want) <= 1e-6 * fabs(want), "chunked loss %.9g vs %.9g from the full logits", loss, want);
    tern_gpt2_zero_grad(m);
    tern_gpt2_backward(m, 1.0f);
    float *g1 = malloc(np * sizeof(float));
    memcpy(g1, tern_gpt2_grads(m), np * sizeof(float));
    tern_gpt2_zero_grad(m);
    CHECK(tern_gpt2_forward_backward(m, in, tg, B, T, 1.0f, &loss2) == TERN_OK, "%s", tern_errmsg());
    const float *g = tern_gpt2_grads(m);
    CHECK(!memcmp(&loss, &loss2, sizeof loss) && !memcmp(g1, g, np * sizeof(float)),
          "forward_backward differs from forward + backward (loss %.9g vs %.9g)", loss, loss2);
    const tern_tensor *wte = tern_gpt2_find(m, "wte.weight");
    int bad = 0;
    for (int j = 0; j < 6; j++) {
        size_t i = wte->offset + (size_t)(j * 13) % wte->numel;
        bad += fd_disagrees(m, in, tg, B, T, i, g1[i], "wte.weight", i - wte->offset);
    }
    CHECK(bad == 0, "%d of 6 wte coordinates disagree with finite differences", bad);
    free(in), free(tg), free(g1);
    tern_gpt2_free(m);
}

/* Recomputation changes where activations live, not what is computed: losses and every gradient
 * equal a plain run's bit for bit, over two micro-batches of accumulation and a batch smaller
 * than the reserved one, and the activation buffers shrink as the header's formula says. */
static void test_recompute_identical(void) {
    tern_gpt2_config cfg = {3, 2, 16, 12, 29};
    size_t B = 3, T = 12, np = 0;
    float *g[2] = {NULL, NULL}, loss[2][2];
    size_t bytes[2];
    for (int rc = 0; rc < 2; rc++) {
        tern_gpt2 *m;
        CHECK(tern_gpt2_init(&m, &cfg) == TERN_OK, "%s", tern_errmsg());
        tern_gpt2_set_recompute(m, rc);
        CHECK(tern_gpt2_reserve(m, B, T) == TERN_OK, "%s", tern_errmsg());
        bytes[rc] = tern_gpt2_activation_bytes(m);
        CHECK(bytes[rc] == tern_gpt2_activation_bytes_for(&cfg, B, T, rc), "reserved %zu bytes", bytes[rc]);
        tern_gpt2_init_weights(m, 11);
        np = tern_gpt2_num_params(m);
        tern_gpt2_zero_grad(m);
        for (int mb = 0; mb < 2; mb++) {
            size_t b = mb ? B - 1 : B; /* the second micro-batch is smaller than reserved */
            int32_t in[36], tg[36];
            for (size_t i = 0; i < b * T; i++) {
                in[i] = (int32_t)((i * 7 + 3 + (size_t)mb) % 29);
                tg[i] = (int32_t)((i * 5 + 1 + (size_t)mb) % 29);
            }
            CHECK(tern_gpt2_forward(m, in, tg, b, T, &loss[rc][mb]) == TERN_OK, "%s", tern_errmsg());
            tern_gpt2_backward(m, 0.5f);
        }
        g[rc] = malloc(np * sizeof(float));
        memcpy(g[rc], tern_gpt2_grads(m), np * sizeof(float));
        tern_gpt2_free(m);
    }
    CHECK(!memcmp(loss[0], loss[1], sizeof loss[0]), "losses %.9g %.9g vs %.9g %.9g", loss[0][0], loss[0][1], loss[1][0],
          loss[1][1]);
    size_t differ = 0;
    for (size_t i = 0; i < np; i++) differ += memcmp(&g[0][i], &g[1][i], sizeof(float)) != 0;
    CHECK(differ == 0, "%zu of %zu gradients differ with recomputation", differ, np);
    /* inner activations per token per block: 17C + NH floats (plus 4 LayerNorm statistics),
     * kept for 3 blocks without recomputation and for 1 with it */
    size_t inner = (17 * 16 + 2 + 4) * B * T * sizeof(float);
    /* each buffer is rounded up to 16 floats, so the difference is exact up to 16 floats a buffer */
    double diff = (double)bytes[0] - (double)bytes[1];
    CHECK(fabs(diff - 2.0 * (double)inner) <= 14 * 16 * 4, "%zu vs %zu bytes, expected a difference of %zu", bytes[0],
          bytes[1], 2 * inner);
    free(g[0]);
    free(g[1]);
}

/* Each kernel set's sgemm against ref, all four transpose cases, on sizes that are not multiples
 * of any tile. */
static void test_sgemm_sets(void) {
    const tern_kern *ref = tern_kern_by_name("ref"), *cpu = tern_kern_by_name("cpu");
    size_t dims[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 65}, {97, 31, 3}};
    for (size_t d = 0; d < 4; d++) {
        size_t M = dims[d][0], N = dims[d][1], K = dims[d][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                float *A = malloc(M * K * 4), *Bm = malloc(K * N * 4), *C1 = malloc(M * N * 4), *C2 = malloc(M * N * 4);
                for (size_t i = 0; i < M * K; i++) A[i] = tern_rng_normal(1, 2, i);
                for (size_t i = 0; i < K * N; i++) Bm[i] = tern_rng_normal(1, 3, i);
                for (size_t i = 0; i < M * N; i++) C1[i] = C2[i] = tern_rng_normal(1, 4, i);
                size_t lda = ta ? M : K, ldb = tb ? K : N;
                ref->sgemm(ta, tb, M, N, K, 0.5f, A, lda, Bm, ldb, 0.25f, C1, N);
                cpu->sgemm(ta, tb, M, N, K, 0.5f, A, lda, Bm, ldb, 0.25f, C2, N);
                double e = rel_l2(C2, C1, M * N);
                CHECK(e < 1e-6, "sgemm %zux%zux%zu trans %d%d: error %.3g", M, N, K, ta, tb, e);
                free(A);
                free(Bm);
                free(C1);
                free(C2);
            }
    }
}

/* Each kernel set's attention, forward and backward, against ref on awkward shapes (T prime,
 * a head size not a multiple of 8). */
static void test_attention_sets(void) {
    const tern_kern *ref = tern_kern_by_name("ref");
    for (const char *const *nm = tern_kern_names; *nm; nm++) {
    const tern_kern *cpu = tern_kern_by_name(*nm);
    if (!cpu || cpu == ref) continue;
    /* B, T, NH with hs = 12; T = 150 spans three query blocks, the last one partial */
    size_t shapes[][3] = {{2, 13, 3}, {1, 1, 2}, {3, 31, 1}, {2, 150, 2}};
    for (size_t s = 0; s < 4; s++) {
        size_t B = shapes[s][0], T = shapes[s][1], NH = shapes[s][2], C = 12 * NH, n3 = B * T * 3 * C, nl = B * NH * T,
               ns = TERN_ATT_SCRATCH(B, T, NH);
        float *qkv = malloc(n3 * 4), *o1 = malloc(B * T * C * 4), *o2 = malloc(B * T * C * 4), *l1 = malloc(nl * 4),
              *l2 = malloc(nl * 4), *dy = malloc(B * T * C * 4), *d1 = malloc(n3 * 4), *d2 = malloc(n3 * 4),
              *scr = malloc(ns * 4);
        for (size_t i = 0; i < n3; i++) qkv[i] = tern_rng_normal(3, 1, i);
        for (size_t i = 0; i < B * T * C; i++) dy[i] = tern_rng_normal(3, 2, i);
        ref->attention_fwd(o1, l1, scr, qkv, B, T, C, NH);
        cpu->attention_fwd(o2, l2, scr, qkv, B, T, C, NH);
        CHECK(rel_l2(o2, o1, B * T * C) < 1e-6, "%s forward B%zu T%zu NH%zu: %.3g", *nm, B, T, NH, rel_l2(o2, o1, B * T * C));
        CHECK(rel_l2(l2, l1, nl) < 1e-6, "%s log-sum-exp: %.3g", *nm, rel_l2(l2, l1, nl));
        /* row 0 attends to itself only: its log-sum-exp is its own scaled score */
        float s00 = 0.0f;
        for (size_t i = 0; i < 12; i++) s00 += qkv[i] * qkv[C + i];
        CHECK(fabsf(l1[0] - s00 / sqrtf(12.0f)) < 1e-5f, "lse of row 0: %g vs %g", l1[0], s00 / sqrtf(12.0f));
        /* dqkv is overwritten, whatever it held */
        for (size_t i = 0; i < n3; i++) d1[i] = d2[i] = 1e3f;
        ref->attention_bwd(d1, scr, dy, qkv, l1, B, T, C, NH);
        cpu->attention_bwd(d2, scr, dy, qkv, l1, B, T, C, NH);
        CHECK(rel_l2(d2, d1, n3) < 1e-5, "%s backward B%zu T%zu NH%zu: %.3g", *nm, B, T, NH, rel_l2(d2, d1, n3));
        free(qkv), free(o1), free(o2), free(l1), free(l2), free(dy), free(d1), free(d2), free(scr);
    }
    }
}

static void test_bad_token_and_config(void) {
    tern_gpt2_config bad = {2, 3, 8, 6, 11};
    tern_gpt2 *m;
    CHECK(tern_gpt2_init(&m, &bad) == TERN_EINVAL, "indivisible width accepted");
    CHECK(!strcmp(tern_errmsg(), "n_embd (8) must be divisible by n_head (3)"), "%s", tern_errmsg());
    tern_gpt2_config cfg = {1, 2, 8, 6, 11};
    CHECK(tern_gpt2_init(&m, &cfg) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_gpt2_reserve(m, 1, 7) == TERN_EINVAL, "T beyond n_ctx accepted");
    CHECK(!strcmp(tern_errmsg(), "sequence length 7 is longer than the model's context (n_ctx 6)"), "%s", tern_errmsg());
    CHECK(tern_gpt2_reserve(m, 1, 4) == TERN_OK, "%s", tern_errmsg());
    int32_t in[4] = {1, 2, 11, 3};
    float loss;
    CHECK(tern_gpt2_forward(m, in, NULL, 1, 4, &loss) == TERN_EINVAL, "bad token accepted");
    CHECK(!strcmp(tern_errmsg(), "input token 11 at position 2 is outside the vocabulary (size 11)"), "%s", tern_errmsg());
    tern_gpt2_free(m);
}

int main(void) {
    RUN(test_torch_every_set);
    RUN(test_pointwise_sets);
    RUN(test_finite_differences);
    RUN(test_recompute_identical);
    RUN(test_head_chunks);
    RUN(test_sgemm_sets);
    RUN(test_attention_sets);
    RUN(test_bad_token_and_config);
    return check_exit();
}
