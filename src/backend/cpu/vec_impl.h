/* Vectorised pointwise and row kernels, written once and compiled per instruction set: an ISA
 * file defines the vector type and a handful of operations (V_*), sets the target by pragma,
 * and includes this file with a suffix (VSUF). Full vectors stay in registers; a tail shorter
 * than a vector goes through a zero-padded buffer, so no masked instructions are needed.
 * exp is 2^n * p(r) with r = x - n ln 2 (ln 2 split in two) and a degree-6 polynomial (the
 * classic Cephes expf scheme, within 2 ulp on the clamped range); tanh is 1 - 2/(e^{2|u|} + 1)
 * with the sign of u (absolute error below 1e-7). Private to backend/cpu. */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, VSUF)

static inline VT FN(vexp)(VT x) {
    x = V_MIN(V_MAX(x, V_SET1(-103.0f)), V_SET1(88.72283f));
    VT n = V_ROUND(V_MUL(x, V_SET1(1.44269504088896341f)));
    VT r = V_FNMADD(n, V_SET1(0.693359375f), x);
    r = V_FNMADD(n, V_SET1(-2.12194440e-4f), r);
    VT p = V_SET1(1.9875691500e-4f);
    p = V_FMADD(p, r, V_SET1(1.3981999507e-3f));
    p = V_FMADD(p, r, V_SET1(8.3334519073e-3f));
    p = V_FMADD(p, r, V_SET1(4.1665795894e-2f));
    p = V_FMADD(p, r, V_SET1(1.6666665459e-1f));
    p = V_FMADD(p, r, V_SET1(5.0000001201e-1f));
    p = V_FMADD(p, V_MUL(r, r), V_ADD(r, V_SET1(1.0f)));
    return V_SCALE2(p, n);
}

static inline VT FN(vtanh)(VT u) {
    VT a = V_ABS(u);
    VT e = FN(vexp)(V_ADD(a, a));
    VT t = V_SUB(V_SET1(1.0f), V_DIV(V_SET1(2.0f), V_ADD(e, V_SET1(1.0f))));
    return V_COPYSIGN(t, u);
}

#define GELU_K 0.7978845608028654f

static inline VT FN(gelu1)(VT x) {
    VT u = V_MUL(V_SET1(GELU_K), V_FMADD(V_SET1(0.044715f), V_MUL(V_MUL(x, x), x), x));
    return V_MUL(V_MUL(V_SET1(0.5f), x), V_ADD(V_SET1(1.0f), FN(vtanh)(u)));
}

static inline VT FN(gelu1_grad)(VT x, VT dy) {
    VT xx = V_MUL(x, x);
    VT u = V_MUL(V_SET1(GELU_K), V_FMADD(V_SET1(0.044715f), V_MUL(xx, x), x));
    VT th = FN(vtanh)(u);
    VT sech2 = V_FNMADD(th, th, V_SET1(1.0f));
    VT du = V_MUL(V_SET1(GELU_K), V_FMADD(V_SET1(3.0f * 0.044715f), xx, V_SET1(1.0f)));
    VT d = V_MUL(V_SET1(0.5f), V_FMADD(V_MUL(x, sech2), du, V_ADD(V_SET1(1.0f), th)));
    return V_MUL(d, dy);
}

static void FN(gelu_fwd)(tern_backend *be, float *out, const float *inp, size_t n) {
    (void)be;
    size_t nv = n / VW * VW;
#pragma omp parallel for schedule(static) if ((nv) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < nv; i += VW) V_STORE(out + i, FN(gelu1)(V_LOAD(inp + i)));
    if (nv < n) {
        float a[VW] = {0}, b[VW];
        memcpy(a, inp + nv, (n - nv) * sizeof(float));
        V_STORE(b, FN(gelu1)(V_LOAD(a)));
        memcpy(out + nv, b, (n - nv) * sizeof(float));
    }
}

static void FN(gelu_bwd)(tern_backend *be, float *dinp, const float *inp, const float *dout, size_t n) {
    (void)be;
    size_t nv = n / VW * VW;
#pragma omp parallel for schedule(static) if ((nv) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < nv; i += VW) V_STORE(dinp + i, FN(gelu1_grad)(V_LOAD(inp + i), V_LOAD(dout + i)));
    if (nv < n) {
        float a[VW] = {0}, d[VW] = {0}, b[VW];
        memcpy(a, inp + nv, (n - nv) * sizeof(float));
        memcpy(d, dout + nv, (n - nv) * sizeof(float));
        V_STORE(b, FN(gelu1_grad)(V_LOAD(a), V_LOAD(d)));
        memcpy(dinp + nv, b, (n - nv) * sizeof(float));
    }
}

static float FN(row_max)(const float *x, size_t n) {
    size_t nv = n / VW * VW;
    VT m = V_SET1(-INFINITY);
    for (size_t i = 0; i < nv; i += VW) m = V_MAX(m, V_LOAD(x + i));
    float buf[VW], mx = -INFINITY;
    V_STORE(buf, m);
    for (int k = 0; k < VW; k++) mx = buf[k] > mx ? buf[k] : mx;
    for (size_t i = nv; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* y[i] = exp(x[i] - shift) (y may be NULL, or alias x); returns the sum of those values. */
static float FN(row_exp)(float *y, const float *x, size_t n, float shift) {
    size_t nv = n / VW * VW;
    VT s = V_SET1(0.0f), sh = V_SET1(shift);
    for (size_t i = 0; i < nv; i += VW) {
        VT e = FN(vexp)(V_SUB(V_LOAD(x + i), sh));
        s = V_ADD(s, e);
        if (y) V_STORE(y + i, e);
    }
    float buf[VW], sum = 0.0f;
    V_STORE(buf, s);
    for (int k = 0; k < VW; k++) sum += buf[k];
    if (nv < n) {
        float a[VW], b[VW];
        for (int k = 0; k < VW; k++) a[k] = nv + (size_t)k < n ? x[nv + (size_t)k] - shift : -INFINITY;
        V_STORE(b, FN(vexp)(V_LOAD(a)));
        for (size_t i = nv; i < n; i++) {
            sum += b[i - nv];
            if (y) y[i] = b[i - nv];
        }
    }
    return sum;
}

/* x[i] *= s. */
static void FN(row_scale)(float *x, size_t n, float s) {
    size_t nv = n / VW * VW;
    VT sv = V_SET1(s);
    for (size_t i = 0; i < nv; i += VW) V_STORE(x + i, V_MUL(V_LOAD(x + i), sv));
    for (size_t i = nv; i < n; i++) x[i] *= s;
}

static void FN(crossentropy_fwd_bwd)(tern_backend *be, float *losses, float *dlogits, const float *logits,
                                     const int32_t *targets, float dscale, size_t N, size_t V) {
    (void)be;
#pragma omp parallel for schedule(static) if ((N * V) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++) {
        const float *x = logits + i * V;
        float mx = FN(row_max)(x, V);
        float lse = mx + logf(FN(row_exp)(NULL, x, V, mx));
        size_t y = (size_t)targets[i];
        losses[i] = lse - x[y];
        if (dlogits) {
            float *d = dlogits + i * V;
            FN(row_exp)(d, x, V, lse); /* softmax probabilities */
            FN(row_scale)(d, V, dscale);
            d[y] -= dscale; /* (p - 1) * scale at the target */
        }
    }
}

/* The causal softmax of one attention score row in place: row[0..t] normalised, row[t+1..n)
 * zeroed; returns the log-sum-exp of row[0..t]. */
static float FN(softmax_row)(float *row, size_t t, size_t n) {
    size_t m = t + 1;
    float mx = FN(row_max)(row, m), sum = FN(row_exp)(row, row, m, mx);
    FN(row_scale)(row, m, 1.0f / sum);
    if (n > m) memset(row + m, 0, (n - m) * sizeof(float));
    return mx + logf(sum);
}

/* Probabilities again from scores: row[u] = exp(row[u] - lse) for u <= t, 0 beyond. */
static void FN(probs_row)(float *row, size_t t, size_t n, float lse) {
    FN(row_exp)(row, row, t + 1, lse);
    if (n > t + 1) memset(row + t + 1, 0, (n - t - 1) * sizeof(float));
}

/* Softmax backward of one row, scaled: dp[u] = p[u] (dp[u] - sum_w p[w] dp[w]) * scale for
 * u <= t, 0 beyond. */
static void FN(dsoftmax_row)(float *dp, const float *p, size_t t, size_t n, float scale) {
    size_t m = t + 1, nv = m / VW * VW;
    VT acc = V_SET1(0.0f);
    for (size_t i = 0; i < nv; i += VW) acc = V_FMADD(V_LOAD(p + i), V_LOAD(dp + i), acc);
    float buf[VW], dot = 0.0f;
    V_STORE(buf, acc);
    for (int k = 0; k < VW; k++) dot += buf[k];
    for (size_t i = nv; i < m; i++) dot += p[i] * dp[i];
    VT d = V_SET1(dot), sc = V_SET1(scale);
    for (size_t i = 0; i < nv; i += VW) V_STORE(dp + i, V_MUL(V_MUL(V_LOAD(p + i), V_SUB(V_LOAD(dp + i), d)), sc));
    for (size_t i = nv; i < m; i++) dp[i] = p[i] * (dp[i] - dot) * scale;
    if (n > m) memset(dp + m, 0, (n - m) * sizeof(float));
}

static void FN(attention_fwd)(tern_backend *be, float *out, float *lse, float *scratch, const float *q, const float *k,
                              const float *v, const tern_att_shape *sh) {
    tern_kern_attention_fwd_blocked(be, out, lse, scratch, q, k, v, sh, FN(softmax_row));
}

static void FN(attention_bwd)(tern_backend *be, float *dq, float *dk, float *dv, float *scratch, const float *dout,
                              const float *q, const float *k, const float *v, const float *lse, const tern_att_shape *sh) {
    tern_kern_attention_bwd_blocked(be, dq, dk, dv, scratch, dout, q, k, v, lse, sh, FN(probs_row), FN(dsoftmax_row));
}

/* SwiGLU: out = gate * sigmoid(gate) * up, with the vectorised exp. */
static void FN(swiglu_fwd)(tern_backend *be, float *out, const float *gate, const float *up, size_t n) {
    (void)be;
    size_t nv = n / VW * VW;
#pragma omp parallel for schedule(static) if ((nv) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < nv; i += VW) {
        VT g = V_LOAD(gate + i);
        VT sg = V_DIV(V_SET1(1.0f), V_ADD(V_SET1(1.0f), FN(vexp)(V_SUB(V_SET1(0.0f), g))));
        V_STORE(out + i, V_MUL(V_MUL(g, sg), V_LOAD(up + i)));
    }
    for (size_t i = nv; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

static void FN(swiglu_bwd)(tern_backend *be, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                           size_t n) {
    (void)be;
    size_t nv = n / VW * VW;
#pragma omp parallel for schedule(static) if ((nv) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < nv; i += VW) {
        VT g = V_LOAD(gate + i), d = V_LOAD(dout + i), one = V_SET1(1.0f);
        VT sg = V_DIV(one, V_ADD(one, FN(vexp)(V_SUB(V_SET1(0.0f), g))));
        VT dg = V_MUL(V_MUL(V_MUL(d, V_LOAD(up + i)), sg), V_FMADD(g, V_SUB(one, sg), one));
        V_STORE(dup + i, V_MUL(V_MUL(d, g), sg));
        V_STORE(dgate + i, dg);
    }
    for (size_t i = nv; i < n; i++) {
        float g = gate[i], d = dout[i], sg = 1.0f / (1.0f + expf(-g));
        dup[i] = d * g * sg;
        dgate[i] = d * up[i] * sg * (1.0f + g * (1.0f - sg));
    }
}

/* AdamW in ref's order of operations (no fused multiply-adds), so that its results are ref's
 * bit for bit: sqrt and division are correctly rounded in both. */
static void FN(adamw)(tern_backend *be, float *p, const float *g, float *m, float *v, size_t n, const tern_adamw_args *a) {
    (void)be;
    size_t nv = n / VW * VW;
    float b1 = a->beta1, b2 = a->beta2, step_size = a->lr / a->bc1;
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < nv; i += VW) {
        VT gi = V_MUL(V_LOAD(g + i), V_SET1(a->gscale));
        VT pi = V_MUL(V_LOAD(p + i), V_SET1(a->decay));
        VT mi = V_ADD(V_MUL(V_SET1(b1), V_LOAD(m + i)), V_MUL(V_SET1(1.0f - b1), gi));
        VT vi = V_ADD(V_MUL(V_SET1(b2), V_LOAD(v + i)), V_MUL(V_MUL(V_SET1(1.0f - b2), gi), gi));
        V_STORE(m + i, mi);
        V_STORE(v + i, vi);
        VT denom = V_ADD(V_DIV(V_SQRT(vi), V_SET1(a->bc2_sqrt)), V_SET1(a->eps));
        V_STORE(p + i, V_SUB(pi, V_DIV(V_MUL(V_SET1(step_size), mi), denom)));
    }
    for (size_t i = nv; i < n; i++) {
        float gi = g[i] * a->gscale;
        float pi = p[i] * a->decay;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / a->bc2_sqrt + a->eps;
        p[i] = pi - step_size * mi / denom;
    }
}

/* ---- normalisation, a row at a time ----
 * A row of C floats stays in L1 between its passes (sum, squares, output); the residual add
 * before a norm is the first of those passes. The backward passes put the row part and the
 * column sums of dw (db) in one parallel region, the column sums in ref's order (blocks of 64
 * columns, rows in order), so dw and db are ref's bit for bit. */

static inline float FN(hsum)(VT v) {
    float buf[VW], s = 0.0f;
    V_STORE(buf, v);
    for (int k = 0; k < VW; k++) s += buf[k];
    return s;
}

/* LayerNorm of row x into o (mean and rstd out); x may be computed as a + b into r first. */
static inline void FN(ln_row)(float *o, float *mean, float *rstd, float *r, const float *a, const float *b, const float *x,
                              const float *w, const float *bias, size_t C, float eps) {
    size_t nv = C / VW * VW;
    VT s = V_SET1(0.0f);
    if (r) {
        for (size_t c = 0; c < nv; c += VW) {
            VT v = V_ADD(V_LOAD(a + c), V_LOAD(b + c));
            V_STORE(r + c, v);
            s = V_ADD(s, v);
        }
        for (size_t c = nv; c < C; c++) r[c] = a[c] + b[c];
        x = r;
    } else {
        for (size_t c = 0; c < nv; c += VW) s = V_ADD(s, V_LOAD(x + c));
    }
    float m = FN(hsum)(s);
    for (size_t c = nv; c < C; c++) m += x[c];
    m /= (float)C;
    VT mv = V_SET1(m), q = V_SET1(0.0f);
    for (size_t c = 0; c < nv; c += VW) {
        VT d = V_SUB(V_LOAD(x + c), mv);
        q = V_FMADD(d, d, q);
    }
    float v = FN(hsum)(q);
    for (size_t c = nv; c < C; c++) v += (x[c] - m) * (x[c] - m);
    v /= (float)C;
    float sd = 1.0f / sqrtf(v + eps);
    VT sv = V_SET1(sd);
    for (size_t c = 0; c < nv; c += VW)
        V_STORE(o + c, V_ADD(V_MUL(V_MUL(V_SUB(V_LOAD(x + c), mv), sv), V_LOAD(w + c)), V_LOAD(bias + c)));
    for (size_t c = nv; c < C; c++) o[c] = (x[c] - m) * sd * w[c] + bias[c];
    *mean = m;
    *rstd = sd;
}

static void FN(layernorm_fwd)(tern_backend *be, float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                              size_t N, size_t C, float eps) {
    (void)be;
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++) FN(ln_row)(out + i * C, mean + i, rstd + i, NULL, NULL, NULL, inp + i * C, w, b, C, eps);
}

static void FN(residual_layernorm_fwd)(tern_backend *be, float *res, float *out, float *mean, float *rstd, const float *a, const float *b,
                                       const float *w, const float *bias, size_t N, size_t C, float eps) {
    (void)be;
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++)
        FN(ln_row)(out + i * C, mean + i, rstd + i, res + i * C, a + i * C, b + i * C, NULL, w, bias, C, eps);
}

static void FN(layernorm_bwd)(tern_backend *be, float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                              const float *mean, const float *rstd, size_t N, size_t C) {
    (void)be;
    size_t nv = C / VW * VW, nblk = (C + 63) / 64;
#pragma omp parallel if ((N * C) >= TERN_OMP_MIN_WORK)
    {
        /* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w */
#pragma omp for schedule(static) nowait
        for (size_t i = 0; i < N; i++) {
            const float *x = inp + i * C, *dy = dout + i * C;
            float m = mean[i], s = rstd[i];
            VT mv = V_SET1(m), sv = V_SET1(s), a1 = V_SET1(0.0f), a2 = V_SET1(0.0f);
            for (size_t c = 0; c < nv; c += VW) {
                VT g = V_MUL(V_LOAD(dy + c), V_LOAD(w + c));
                a1 = V_ADD(a1, g);
                a2 = V_FMADD(g, V_MUL(V_SUB(V_LOAD(x + c), mv), sv), a2);
            }
            float gm = FN(hsum)(a1), gxm = FN(hsum)(a2);
            for (size_t c = nv; c < C; c++) {
                float g = dy[c] * w[c];
                gm += g;
                gxm += g * (x[c] - m) * s;
            }
            gm /= (float)C;
            gxm /= (float)C;
            float *dx = dinp + i * C;
            VT gmv = V_SET1(gm), gxv = V_SET1(gxm);
            for (size_t c = 0; c < nv; c += VW) {
                VT xh = V_MUL(V_SUB(V_LOAD(x + c), mv), sv);
                VT t = V_SUB(V_SUB(V_MUL(V_LOAD(dy + c), V_LOAD(w + c)), gmv), V_MUL(xh, gxv));
                V_STORE(dx + c, V_ADD(V_LOAD(dx + c), V_MUL(sv, t)));
            }
            for (size_t c = nv; c < C; c++) {
                float xhat = (x[c] - m) * s;
                dx[c] += s * (dy[c] * w[c] - gm - xhat * gxm);
            }
        }
        /* dw, db: as ref (colsum blocks, rows in order) */
#pragma omp for schedule(static)
        for (size_t bk = 0; bk < nblk; bk++) tern_layernorm_dwdb_block(dw, db, dout, inp, mean, rstd, N, C, bk);
    }
}

/* RMSNorm of row x into o (rstd out); x may be computed as a + b into r first. */
static inline void FN(rms_row)(float *o, float *rstd, float *r, const float *a, const float *b, const float *x, const float *w, size_t C,
                               float eps) {
    size_t nv = C / VW * VW;
    VT q = V_SET1(0.0f);
    if (r) {
        for (size_t c = 0; c < nv; c += VW) {
            VT v = V_ADD(V_LOAD(a + c), V_LOAD(b + c));
            V_STORE(r + c, v);
            q = V_FMADD(v, v, q);
        }
        for (size_t c = nv; c < C; c++) r[c] = a[c] + b[c];
        x = r;
    } else {
        for (size_t c = 0; c < nv; c += VW) {
            VT v = V_LOAD(x + c);
            q = V_FMADD(v, v, q);
        }
    }
    float ss = FN(hsum)(q);
    for (size_t c = nv; c < C; c++) ss += x[c] * x[c];
    float s = 1.0f / sqrtf(ss / (float)C + eps);
    VT sv = V_SET1(s);
    for (size_t c = 0; c < nv; c += VW) V_STORE(o + c, V_MUL(V_MUL(V_LOAD(x + c), sv), V_LOAD(w + c)));
    for (size_t c = nv; c < C; c++) o[c] = x[c] * s * w[c];
    *rstd = s;
}

static void FN(rmsnorm_fwd)(tern_backend *be, float *out, float *rstd, const float *inp, const float *w, size_t N, size_t C, float eps) {
    (void)be;
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++) FN(rms_row)(out + i * C, rstd + i, NULL, NULL, NULL, inp + i * C, w, C, eps);
}

static void FN(residual_rmsnorm_fwd)(tern_backend *be, float *res, float *out, float *rstd, const float *a, const float *b,
                                     const float *w, size_t N, size_t C, float eps) {
    (void)be;
#pragma omp parallel for schedule(static) if ((N * C) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++) FN(rms_row)(out + i * C, rstd + i, res + i * C, a + i * C, b + i * C, NULL, w, C, eps);
}

static void FN(rmsnorm_bwd)(tern_backend *be, float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                            const float *rstd, size_t N, size_t C) {
    (void)be;
    size_t nv = C / VW * VW, nblk = (C + 63) / 64;
#pragma omp parallel if ((N * C) >= TERN_OMP_MIN_WORK)
    {
        /* dx = rstd * (g - xhat * mean(g * xhat)), g = dout * w, xhat = x * rstd */
#pragma omp for schedule(static) nowait
        for (size_t i = 0; i < N; i++) {
            const float *x = inp + i * C, *dy = dout + i * C;
            float s = rstd[i];
            VT sv = V_SET1(s), acc = V_SET1(0.0f);
            for (size_t c = 0; c < nv; c += VW) acc = V_FMADD(V_MUL(V_LOAD(dy + c), V_LOAD(w + c)), V_MUL(V_LOAD(x + c), sv), acc);
            float gxm = FN(hsum)(acc);
            for (size_t c = nv; c < C; c++) gxm += dy[c] * w[c] * x[c] * s;
            gxm /= (float)C;
            float *dx = dinp + i * C;
            VT gv = V_SET1(gxm);
            for (size_t c = 0; c < nv; c += VW) {
                VT t = V_SUB(V_MUL(V_LOAD(dy + c), V_LOAD(w + c)), V_MUL(V_MUL(V_LOAD(x + c), sv), gv));
                V_STORE(dx + c, V_ADD(V_LOAD(dx + c), V_MUL(sv, t)));
            }
            for (size_t c = nv; c < C; c++) dx[c] += s * (dy[c] * w[c] - x[c] * s * gxm);
        }
#pragma omp for schedule(static)
        for (size_t bk = 0; bk < nblk; bk++) tern_rmsnorm_dw_block(dw, dout, inp, rstd, N, C, bk);
    }
}

/* ---- a matmul's bias with GELU ---- */

/* x += bias (per column), out = gelu(x), in one pass. */
static void FN(bias_gelu_fwd)(tern_backend *be, float *out, float *x, const float *bias, size_t N, size_t OC) {
    (void)be;
    size_t nv = OC / VW * VW;
#pragma omp parallel for schedule(static) if ((N * OC) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < N; i++) {
        float *r = x + i * OC, *o = out + i * OC;
        for (size_t c = 0; c < nv; c += VW) {
            VT v = V_ADD(V_LOAD(r + c), V_LOAD(bias + c));
            V_STORE(r + c, v);
            V_STORE(o + c, FN(gelu1)(v));
        }
        if (nv < OC) {
            float a[VW] = {0}, g[VW];
            for (size_t c = nv; c < OC; c++) a[c - nv] = r[c] = r[c] + bias[c];
            V_STORE(g, FN(gelu1)(V_LOAD(a)));
            memcpy(o + nv, g, (OC - nv) * sizeof(float));
        }
    }
}
