/* The attention kernels of src/backend/cuda/attention.cu, run on the CPU under emu.h, against a
 * plain double-precision attention: forward (out, log-sum-exp) and backward (dq, dk, dv), fp32
 * and bf16 tiles, every tile size the launchers may choose, over awkward shapes (a packed q/k/v,
 * grouped and multi-query heads, ragged last tiles, head sizes from 6 to 128). Also the decode
 * kernel. */
#include "../../src/backend/cuda/attention.cu"

#include <cstdio>

namespace {

struct shape {
    int B, T, NH, NKV, hs, packed;
};

/* The reference in double: out, lse, and the gradients of sum(out * dy). */
struct ref_result {
    std::vector<double> out, lse, dq, dk, dv;
};

ref_result reference(const shape &s, const std::vector<float> &qb, const std::vector<float> &kb, const std::vector<float> &vb,
                     size_t ldq, size_t ldk, size_t ldv, size_t koff, size_t voff, const std::vector<float> &dy) {
    const int B = s.B, T = s.T, NH = s.NH, hs = s.hs, G = s.NH / s.NKV, C = NH * hs;
    const double scale = 1.0 / std::sqrt((double)hs);
    ref_result r;
    r.out.assign((size_t)B * T * C, 0), r.lse.assign((size_t)B * NH * T, 0);
    r.dq.assign(qb.size(), 0), r.dk.assign(kb.size(), 0), r.dv.assign(vb.size(), 0);
    std::vector<double> p(T), dp(T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            int kh = h / G;
            for (int t = 0; t < T; t++) {
                const float *q = &qb[((size_t)b * T + t) * ldq + (size_t)h * hs];
                double mx = -INFINITY;
                for (int u = 0; u <= t; u++) {
                    const float *k = &kb[koff + ((size_t)b * T + u) * ldk + (size_t)kh * hs];
                    double x = 0;
                    for (int i = 0; i < hs; i++) x += (double)q[i] * k[i];
                    p[u] = x * scale;
                    mx = std::max(mx, p[u]);
                }
                double sum = 0;
                for (int u = 0; u <= t; u++) sum += std::exp(p[u] - mx);
                r.lse[((size_t)b * NH + h) * T + t] = mx + std::log(sum);
                for (int u = 0; u <= t; u++) p[u] = std::exp(p[u] - mx) / sum;
                const float *y = &dy[((size_t)b * T + t) * C + (size_t)h * hs];
                double d = 0;
                for (int u = 0; u <= t; u++) {
                    const float *v = &vb[voff + ((size_t)b * T + u) * ldv + (size_t)kh * hs];
                    double x = 0;
                    for (int i = 0; i < hs; i++) {
                        r.out[((size_t)b * T + t) * C + (size_t)h * hs + i] += p[u] * v[i];
                        x += (double)y[i] * v[i];
                    }
                    dp[u] = x;
                    d += p[u] * x;
                }
                for (int u = 0; u <= t; u++) {
                    double ds = p[u] * (dp[u] - d) * scale;
                    size_t ku = ((size_t)b * T + u) * ldk + (size_t)kh * hs, vu = ((size_t)b * T + u) * ldv + (size_t)kh * hs;
                    for (int i = 0; i < hs; i++) {
                        r.dq[((size_t)b * T + t) * ldq + (size_t)h * hs + i] += ds * kb[koff + ku + i];
                        r.dk[koff + ku + i] += ds * q[i];
                        r.dv[voff + vu + i] += p[u] * y[i];
                    }
                }
            }
        }
    return r;
}

template <typename TIn, int BT> void run(const shape &s) {
    const size_t Q = (size_t)s.NH * s.hs, KV = (size_t)s.NKV * s.hs;
    const size_t ldq = s.packed ? 3 * Q : Q, ldk = s.packed ? 3 * Q : KV, ldv = ldk, rows = (size_t)s.B * s.T;
    /* packed: one buffer, k and v at offsets Q and 2Q of each row */
    const size_t koff = s.packed ? Q : 0, voff = s.packed ? 2 * Q : 0;
    std::vector<float> q(rows * ldq), k(s.packed ? 0 : rows * ldk), v(s.packed ? 0 : rows * ldv), dy(rows * Q);
    for (size_t i = 0; i < q.size(); i++) q[i] = emu_randn(1, i);
    for (size_t i = 0; i < k.size(); i++) k[i] = emu_randn(2, i);
    for (size_t i = 0; i < v.size(); i++) v[i] = emu_randn(3, i);
    for (size_t i = 0; i < dy.size(); i++) dy[i] = emu_randn(4, i);
    const std::vector<float> &kk = s.packed ? q : k, &vv = s.packed ? q : v;
    ref_result r = reference(s, q, kk, vv, ldq, ldk, ldv, koff, voff, dy);

    att_p p = {};
    p.B = s.B, p.T = s.T, p.NH = s.NH, p.NKV = s.NKV, p.hs = s.hs, p.HSP = (s.hs + 15) / 16 * 16;
    p.ldq = ldq, p.ldk = ldk, p.ldv = ldv, p.scale = 1.0f / sqrtf((float)s.hs);
    std::vector<float> out(rows * Q, NAN), lse((size_t)s.B * s.NH * s.T, NAN), delta(lse.size(), NAN);
    std::vector<float> dq(q.size(), NAN), dk(s.packed ? 0 : k.size(), NAN), dv(s.packed ? 0 : v.size(), NAN);
    p.q = q.data(), p.k = kk.data() + koff, p.v = vv.data() + voff, p.dout = dy.data();
    p.out = out.data(), p.lse = lse.data(), p.lse_in = lse.data(), p.delta = delta.data();
    p.dq = dq.data(), p.dk = (s.packed ? dq.data() : dk.data()) + koff, p.dv = (s.packed ? dq.data() : dv.data()) + voff;
    const unsigned nt = (unsigned)(s.T + BT - 1) / BT;
    fwd_smem<TIn> L1;
    dq_smem<TIn> L2;
    dkv_smem<TIn> L3;
    emu::launch(att_fwd_k<TIn, BT>, dim3(nt, s.NH, s.B), NT, fwd_layout<TIn, BT>(&L1, nullptr, p.HSP), p);
    emu::launch(att_bwd_dq_k<TIn, BT>, dim3(nt, s.NH, s.B), NT, dq_layout<TIn, BT>(&L2, nullptr, p.HSP), p);
    emu::launch(att_bwd_dkv_k<TIn, BT>, dim3(nt, s.NKV, s.B), NT, dkv_layout<TIn, BT>(&L3, nullptr, p.HSP), p);

    const bool f32 = std::is_same<TIn, float>::value;
    const double tol = f32 ? 1e-5 : 2e-2;
    char what[160];
    auto check = [&](const char *name, const std::vector<float> &got, const std::vector<double> &want) {
        snprintf(what, sizeof what, "%s tile %d B%d T%d NH%d NKV%d hs%d%s %s", f32 ? "fp32" : "bf16", BT, s.B, s.T, s.NH, s.NKV, s.hs,
                 s.packed ? " packed" : "", name);
        emu_report(what, emu_rel_l2(got.data(), want.data(), want.size()), tol);
    };
    check("out", out, r.out);
    check("lse", lse, r.lse);
    if (s.packed) {
        std::vector<double> d(r.dq);
        for (size_t i = 0; i < d.size(); i++) d[i] += r.dk[i] + r.dv[i]; /* the three parts of one buffer */
        check("dq|dk|dv", dq, d);
    } else {
        check("dq", dq, r.dq);
        check("dk", dk, r.dk);
        check("dv", dv, r.dv);
    }
}

/* One position against a cache, as ref's attention_decode. */
void decode() {
    const int len = 37, NH = 4, NKV = 2, hs = 10, ld = NKV * hs + 6, G = NH / NKV;
    std::vector<float> q(NH * hs), kc((size_t)len * ld), vc((size_t)len * ld), sc(len), out(NH * hs, NAN);
    for (size_t i = 0; i < q.size(); i++) q[i] = emu_randn(5, i);
    for (size_t i = 0; i < kc.size(); i++) kc[i] = emu_randn(6, i), vc[i] = emu_randn(7, i);
    std::vector<double> want(NH * hs, 0);
    for (int h = 0; h < NH; h++) {
        std::vector<double> p(len);
        double mx = -INFINITY, sum = 0;
        for (int u = 0; u < len; u++) {
            double x = 0;
            for (int i = 0; i < hs; i++) x += (double)q[h * hs + i] * kc[(size_t)u * ld + (h / G) * hs + i];
            p[u] = x / std::sqrt((double)hs);
            mx = std::max(mx, p[u]);
        }
        for (int u = 0; u < len; u++) sum += (p[u] = std::exp(p[u] - mx));
        for (int u = 0; u < len; u++)
            for (int i = 0; i < hs; i++) want[h * hs + i] += p[u] / sum * vc[(size_t)u * ld + (h / G) * hs + i];
    }
    emu::launch(att_decode_k, dim3(1), NT, 0, out.data(), sc.data(), (const float *)q.data(), (const float *)kc.data(),
                (const float *)vc.data(), len, NH, NKV, hs, (size_t)ld, 1.0f / sqrtf((float)hs));
    emu_report("decode len 37 NH4 NKV2 hs10 ld26 out", emu_rel_l2(out.data(), want.data(), want.size()), 1e-6);
}

} // namespace

int emu_check_attention() {
    const shape shapes[] = {{2, 13, 3, 3, 12, 1}, {1, 70, 6, 3, 6, 0}, {2, 150, 2, 1, 16, 0}, {1, 100, 2, 2, 64, 0}, {1, 65, 4, 1, 128, 0}};
    for (const shape &s : shapes) {
        run<float, 64>(s);
        run<float, 32>(s);
        run<float, 16>(s);
        run<__nv_bfloat16, 64>(s);
        run<__nv_bfloat16, 32>(s);
        run<__nv_bfloat16, 16>(s);
    }
    decode();
    return emu_failures;
}
