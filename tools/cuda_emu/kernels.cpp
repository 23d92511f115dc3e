/* The kernels of src/backend/cuda/kernels.cu with sums across threads, run on the CPU under emu.h
 * with the launchers' grid shapes, against plain references: LayerNorm and RMSNorm forward and
 * backward with the two-pass column sums, the cross-entropy (gradient over its own logits), the
 * sums in double, the first non-finite element, the embedding's backward pass (bit for bit,
 * given the sorted runs CUB would produce), rotary positions and AdamW. */
#include "../../src/backend/cuda/kernels.cu"

#include <cstdio>
#include <numeric>

namespace {

std::vector<float> randv(size_t n, uint64_t stream, float scale = 1.0f) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) v[i] = scale * emu_randn(stream, i);
    return v;
}

unsigned row_blocks(size_t N) { return (unsigned)((N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK); }

/* The column sums as the launcher runs them. */
template <int KIND> void colsums(float *o0, float *o1, const float *dy, const float *x, const float *mean, const float *rstd, size_t N,
                                 size_t C) {
    col_plan pl = plan_cols(N);
    std::vector<float> part(pl.chunks * C * 2, NAN);
    emu::launch(colsum_part_k<KIND>, dim3((unsigned)((C + 127) / 128), (unsigned)pl.chunks), 128, 0, part.data(), dy, x, mean, rstd, N, C,
                pl.rows_per);
    emu::launch(colsum_fin_k, dim3((unsigned)((C + 127) / 128)), 128, 0, o0, o1, (const float *)part.data(), pl.chunks, C);
}

void norms(size_t N, size_t C) {
    auto x = randv(N * C, 10, 2), w = randv(C, 11), b = randv(C, 12), dy = randv(N * C, 13), dx0 = randv(N * C, 14), dw0 = randv(C, 15),
         db0 = randv(C, 16);
    std::vector<double> out(N * C), mean(N), rstd(N), dx(dx0.begin(), dx0.end()), dw(dw0.begin(), dw0.end()), db(db0.begin(), db0.end());
    for (size_t i = 0; i < N; i++) {
        double m = 0, v = 0;
        for (size_t c = 0; c < C; c++) m += x[i * C + c];
        m /= C;
        for (size_t c = 0; c < C; c++) v += (x[i * C + c] - m) * (x[i * C + c] - m);
        double r = 1 / std::sqrt(v / C + 1e-5), gm = 0, gx = 0;
        mean[i] = m, rstd[i] = r;
        for (size_t c = 0; c < C; c++) {
            double xh = (x[i * C + c] - m) * r, g = dy[i * C + c] * w[c];
            out[i * C + c] = xh * w[c] + b[c];
            gm += g, gx += g * xh;
            dw[c] += dy[i * C + c] * xh, db[c] += dy[i * C + c];
        }
        for (size_t c = 0; c < C; c++) dx[i * C + c] += r * (dy[i * C + c] * w[c] - gm / C - (x[i * C + c] - m) * r * gx / C);
    }
    std::vector<float> o(N * C, NAN), mu(N, NAN), rs(N, NAN), gdx(dx0), gdw(dw0), gdb(db0);
    emu::launch(layernorm_fwd_k, dim3(row_blocks(N)), NT, 0, o.data(), mu.data(), rs.data(), (const float *)x.data(), (const float *)w.data(),
                (const float *)b.data(), N, (int)C, 1e-5f);
    emu::launch(layernorm_bwd_k, dim3(row_blocks(N)), NT, 0, gdx.data(), (const float *)dy.data(), (const float *)x.data(),
                (const float *)w.data(), (const float *)mu.data(), (const float *)rs.data(), N, (int)C);
    colsums<COL_LAYERNORM>(gdw.data(), gdb.data(), dy.data(), x.data(), mu.data(), rs.data(), N, C);
    char what[96];
    const char *names[] = {"out", "mean", "rstd", "dinp", "dw", "db"};
    const std::vector<float> *got[] = {&o, &mu, &rs, &gdx, &gdw, &gdb};
    const std::vector<double> *want[] = {&out, &mean, &rstd, &dx, &dw, &db};
    for (int k = 0; k < 6; k++) {
        snprintf(what, sizeof what, "layernorm N%zu C%zu %s", N, C, names[k]);
        emu_report(what, emu_rel_l2(got[k]->data(), want[k]->data(), N * C / (k == 1 || k == 2 ? C : 1) / (k >= 4 ? N : 1)), 1e-6);
    }
    /* RMSNorm: out = x rstd w, dx += rstd (g - xhat mean(g xhat)) */
    std::vector<double> rout(N * C), rr(N), rdx(dx0.begin(), dx0.end()), rdw(dw0.begin(), dw0.end());
    for (size_t i = 0; i < N; i++) {
        double ss = 0, gx = 0;
        for (size_t c = 0; c < C; c++) ss += (double)x[i * C + c] * x[i * C + c];
        double r = 1 / std::sqrt(ss / C + 1e-6);
        rr[i] = r;
        for (size_t c = 0; c < C; c++) {
            rout[i * C + c] = x[i * C + c] * r * w[c];
            gx += dy[i * C + c] * w[c] * x[i * C + c] * r;
            rdw[c] += dy[i * C + c] * x[i * C + c] * r;
        }
        for (size_t c = 0; c < C; c++) rdx[i * C + c] += r * (dy[i * C + c] * w[c] - x[i * C + c] * r * gx / C);
    }
    std::vector<float> ro(N * C, NAN), rrs(N, NAN), rgdx(dx0), rgdw(dw0);
    emu::launch(rmsnorm_fwd_k, dim3(row_blocks(N)), NT, 0, ro.data(), rrs.data(), (const float *)x.data(), (const float *)w.data(), N, (int)C,
                1e-6f);
    emu::launch(rmsnorm_bwd_k, dim3(row_blocks(N)), NT, 0, rgdx.data(), (const float *)dy.data(), (const float *)x.data(),
                (const float *)w.data(), (const float *)rrs.data(), N, (int)C);
    colsums<COL_RMSNORM>(rgdw.data(), nullptr, dy.data(), x.data(), nullptr, rrs.data(), N, C);
    snprintf(what, sizeof what, "rmsnorm N%zu C%zu out", N, C);
    emu_report(what, emu_rel_l2(ro.data(), rout.data(), N * C), 1e-6);
    snprintf(what, sizeof what, "rmsnorm N%zu C%zu rstd", N, C);
    emu_report(what, emu_rel_l2(rrs.data(), rr.data(), N), 1e-6);
    snprintf(what, sizeof what, "rmsnorm N%zu C%zu dinp", N, C);
    emu_report(what, emu_rel_l2(rgdx.data(), rdx.data(), N * C), 1e-6);
    snprintf(what, sizeof what, "rmsnorm N%zu C%zu dw", N, C);
    emu_report(what, emu_rel_l2(rgdw.data(), rdw.data(), C), 1e-6);
    /* dbias: plain column sums */
    std::vector<double> cs(db0.begin(), db0.end());
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < C; c++) cs[c] += dy[i * C + c];
    std::vector<float> gcs(db0);
    colsums<COL_SUM>(gcs.data(), nullptr, dy.data(), nullptr, nullptr, nullptr, N, C);
    snprintf(what, sizeof what, "column sums (dbias) N%zu C%zu", N, C);
    emu_report(what, emu_rel_l2(gcs.data(), cs.data(), C), 1e-6);
}

void crossentropy(size_t N, size_t V) {
    auto lg = randv(N * V, 20, 6);
    std::vector<int32_t> tg(N);
    for (size_t i = 0; i < N; i++) tg[i] = (int32_t)((i * 7919 + 3) % V);
    std::vector<double> loss(N), d(N * V);
    for (size_t i = 0; i < N; i++) {
        double mx = -INFINITY, s = 0;
        for (size_t v = 0; v < V; v++) mx = std::max(mx, (double)lg[i * V + v]);
        for (size_t v = 0; v < V; v++) s += std::exp(lg[i * V + v] - mx);
        double lse = mx + std::log(s);
        loss[i] = lse - lg[i * V + tg[i]];
        for (size_t v = 0; v < V; v++) d[i * V + v] = (std::exp(lg[i * V + v] - lse) - (v == (size_t)tg[i])) * 0.25;
    }
    std::vector<float> gl(N, NAN), buf(lg);
    /* the gradient over the logits themselves, as the model's head does */
    emu::launch(crossentropy_k, dim3((unsigned)N), CE_NT, 0, gl.data(), buf.data(), (const float *)buf.data(), (const int32_t *)tg.data(),
                0.25f, V);
    char what[96];
    snprintf(what, sizeof what, "crossentropy N%zu V%zu losses", N, V);
    emu_report(what, emu_rel_l2(gl.data(), loss.data(), N), 1e-6);
    snprintf(what, sizeof what, "crossentropy N%zu V%zu dlogits (in place)", N, V);
    emu_report(what, emu_rel_l2(buf.data(), d.data(), N * V), 1e-6);
}

void sums(size_t n) {
    auto x = randv(n, 30);
    x[n / 3] = INFINITY;
    x[n / 2] = NAN;
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        if (i != n / 3 && i != n / 2) s += x[i], ss += (double)x[i] * x[i];
    x[n / 3] = 0, x[n / 2] = 0;
    size_t nb = (n + SUM_BLOCK - 1) / SUM_BLOCK;
    std::vector<double> part(nb), res(2);
    for (int sq = 0; sq < 2; sq++) {
        emu::launch(sum_blocks_k, dim3((unsigned)nb), SUM_NT, 0, part.data(), (const float *)x.data(), n, sq);
        emu::launch(sum_final_k, dim3(1), SUM_FIN_NT, 0, &res[sq], (const double *)part.data(), nb);
    }
    char what[96];
    snprintf(what, sizeof what, "sum of %zu", n);
    emu_report(what, std::fabs(res[0] - s) / std::fabs(s), 1e-12);
    snprintf(what, sizeof what, "sum of squares of %zu", n);
    emu_report(what, std::fabs(res[1] - ss) / ss, 1e-12);
    x[n / 3] = INFINITY;
    x[n / 2] = NAN;
    unsigned long long first = ~0ull;
    emu::launch(nonfinite_k, dim3(blocks_for(n, NT)), NT, 0, &first, (const float *)x.data(), n);
    snprintf(what, sizeof what, "first non-finite of %zu (at %zu)", n, n / 3);
    emu_report(what, first == n / 3 ? 0.0 : 1.0, 0);
}

/* The embedding's backward pass: the runs as CUB's sort and run-length encoding give them. */
void embedding() {
    const size_t B = 3, T = 17, C = 300, V = 23, N = B * T;
    std::vector<int32_t> tok(N);
    for (size_t i = 0; i < N; i++) tok[i] = (int32_t)((i * i + 3 * i) % 7); /* repeats */
    auto dout = randv(N * C, 40), g0 = randv(V * C, 41), p0 = randv(T * C, 42);
    std::vector<float> want(g0), wantp(p0);
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < C; c++) want[tok[i] * C + c] += dout[i * C + c], wantp[(i % T) * C + c] += dout[i * C + c];
    std::vector<unsigned> pos(N);
    std::iota(pos.begin(), pos.end(), 0u);
    std::stable_sort(pos.begin(), pos.end(), [&](unsigned a, unsigned b) { return tok[a] < tok[b]; });
    std::vector<unsigned> uniq, count, start;
    for (size_t s = 0; s < N; s++) {
        if (s == 0 || tok[pos[s]] != tok[pos[s - 1]]) uniq.push_back((unsigned)tok[pos[s]]), count.push_back(0), start.push_back((unsigned)s);
        count.back()++;
    }
    int nruns = (int)uniq.size();
    std::vector<float> g(g0), p(p0);
    emu::launch(wte_bwd_k, dim3((unsigned)N, (unsigned)((C + 127) / 128)), 128, 0, g.data(), (const float *)dout.data(),
                (const unsigned *)uniq.data(), (const unsigned *)pos.data(), (const unsigned *)start.data(), (const unsigned *)count.data(),
                (const int *)&nruns, C);
    emu::launch(wpe_bwd_k, dim3(blocks_for(T * C, NT)), NT, 0, p.data(), (const float *)dout.data(), B, T * C);
    emu_report("embedding backward dwte, bit for bit against the sequential sums", memcmp(g.data(), want.data(), g.size() * 4) ? 1.0 : 0.0, 0);
    emu_report("embedding backward dwpe, bit for bit against the sequential sums", memcmp(p.data(), wantp.data(), p.size() * 4) ? 1.0 : 0.0, 0);
}

void rope() {
    const size_t B = 2, T = 9, H = 3, hs = 10, ld = H * hs + 4, pos0 = 7, half = hs / 2;
    auto x = randv(B * T * ld, 50);
    std::vector<float> freq(half);
    for (size_t i = 0; i < half; i++) freq[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)hs);
    std::vector<double> want(x.begin(), x.end());
    for (size_t bt = 0; bt < B * T; bt++)
        for (size_t h = 0; h < H; h++)
            for (size_t i = 0; i < half; i++) {
                double a = (double)(float)(pos0 + bt % T) * freq[i], x1 = x[bt * ld + h * hs + i], x2 = x[bt * ld + h * hs + i + half];
                want[bt * ld + h * hs + i] = x1 * std::cos(a) - x2 * std::sin(a);
                want[bt * ld + h * hs + i + half] = x2 * std::cos(a) + x1 * std::sin(a);
            }
    std::vector<float> g(x);
    size_t n = B * T * H * half;
    emu::launch(rope_k, dim3(blocks_for(n, NT)), NT, 0, g.data(), (const float *)freq.data(), T, H, hs, ld, pos0, 1.0f, n);
    emu_report("rope B2 T9 H3 hs10 ld34 pos0 7", emu_rel_l2(g.data(), want.data(), g.size()), 1e-6);
    emu::launch(rope_k, dim3(blocks_for(n, NT)), NT, 0, g.data(), (const float *)freq.data(), T, H, hs, ld, pos0, -1.0f, n);
    std::vector<double> back(x.begin(), x.end());
    emu_report("rope then its transpose gives the input back", emu_rel_l2(g.data(), back.data(), g.size()), 1e-6);
}

void adamw() {
    const size_t n = 1037;
    auto p = randv(n, 60), g = randv(n, 61), m = randv(n, 62, 0.1f), v = randv(n, 63, 0.1f);
    for (float &e : v) e = std::fabs(e);
    const float lr = 3e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, decay = 1 - 3e-3f * 0.1f, bc1 = 1 - b1 * b1, bc2 = sqrtf(1 - b2 * b2);
    std::vector<double> want(n);
    for (size_t i = 0; i < n; i++) {
        double mi = b1 * (double)m[i] + (1 - b1) * (double)g[i], vi = b2 * (double)v[i] + (1 - b2) * (double)g[i] * g[i];
        want[i] = p[i] * (double)decay - (double)lr / bc1 * mi / (std::sqrt(vi) / bc2 + eps);
    }
    emu::launch(adamw_k, dim3(blocks_for(n, NT)), NT, 0, p.data(), (const float *)g.data(), m.data(), v.data(), n, lr / bc1, b1, b2, eps, decay,
                bc2);
    emu_report("adamw n1037 params", emu_rel_l2(p.data(), want.data(), n), 1e-6);
}

} // namespace

int emu_check_kernels() {
    norms(1, 1);
    norms(7, 13);
    norms(33, 64);
    norms(130, 131);
    norms(2000, 40); /* several chunks of rows in the column sums */
    crossentropy(1, 2);
    crossentropy(7, 1003);
    sums(3);
    sums(100003);
    embedding();
    rope();
    adamw();
    return emu_failures;
}
