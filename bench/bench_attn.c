/* Causal attention throughput, forward and backward, at a training step's shape, for the kernel
 * set tern picks (or the one named) in fp32 and bf16. FLOPs are the work the blocked algorithm
 * does: per (batch, head) and block of TERN_ATT_BQ query rows against the n keys up to it, the
 * forward's two products (2 nb n hs each) and the backward's five (the scores again, dP, dV, dQ,
 * dK). Prints the median time of each pass and its GFLOP/s, and a hash of the outputs (out, lse,
 * dq, dk, dv: the inputs are fixed), so that two builds can be compared bit for bit. Not a test:
 * it asserts nothing.
 * usage: bench_attn [B T NH NKV hs] [reps] [set]   (default: GPT-2 small at T 1024, batch 4) */
#include "backend/backend_int.h"
#include "tern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t B = 4, T = 1024, NH = 12, NKV = 12, hs = 64;
    int reps = 5;
    const char *set = NULL;
    if (argc >= 6) B = strtoul(argv[1], NULL, 10), T = strtoul(argv[2], NULL, 10), NH = strtoul(argv[3], NULL, 10),
                   NKV = strtoul(argv[4], NULL, 10), hs = strtoul(argv[5], NULL, 10);
    if (argc >= 7) reps = atoi(argv[6]);
    if (argc >= 8) set = argv[7];
    if (!B || !T || !NH || !NKV || !hs || NH % NKV || reps < 1) {
        fprintf(stderr, "usage: bench_attn [B T NH NKV hs] [reps] [set]\n");
        return 2;
    }
    const char *env = getenv("OMP_NUM_THREADS");
    tern_set_threads(env ? atoi(env) : 0);
    double flops_f = 0, flops_b = 0;
    for (size_t i0 = 0; i0 < T; i0 += TERN_ATT_BQ) {
        size_t nb = i0 + TERN_ATT_BQ < T ? TERN_ATT_BQ : T - i0, n = i0 + nb;
        flops_f += 2.0 * 2.0 * (double)nb * (double)n * (double)hs;
        flops_b += 5.0 * 2.0 * (double)nb * (double)n * (double)hs;
    }
    flops_f *= (double)(B * NH), flops_b *= (double)(B * NH);
    size_t Q = NH * hs, KV = NKV * hs, N = B * T;
    float *q = malloc(N * Q * 4), *k = malloc(N * KV * 4), *v = malloc(N * KV * 4), *dy = malloc(N * Q * 4);
    float *o = malloc(N * Q * 4), *lse = malloc(B * NH * T * 4), *scr = malloc(TERN_ATT_SCRATCH(B, T, NH) * 4);
    float *dq = malloc(N * Q * 4), *dk = malloc(N * KV * 4), *dv = malloc(N * KV * 4);
    double *tf = malloc((size_t)reps * sizeof(double)), *tb = malloc((size_t)reps * sizeof(double));
    if (!q || !k || !v || !dy || !o || !lse || !scr || !dq || !dk || !dv || !tf || !tb) {
        fprintf(stderr, "bench_attn: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < N * Q; i++) q[i] = tern_rng_uniform(1, 1, i) - 0.5f, dy[i] = tern_rng_uniform(1, 4, i) - 0.5f;
    for (size_t i = 0; i < N * KV; i++) k[i] = tern_rng_uniform(1, 2, i) - 0.5f, v[i] = tern_rng_uniform(1, 3, i) - 0.5f;
    tern_att_shape sh = {B, T, NH, NKV, hs, Q, KV, KV};
    const char *precs[2] = {"fp32", "bf16"};
    for (int pi = 0; pi < 2; pi++) {
        tern_backend *be;
        if (tern_backend_open(&be, set) != TERN_OK || tern_backend_set_precision(be, precs[pi]) != TERN_OK) {
            fprintf(stderr, "%s\n", tern_errmsg());
            return 1;
        }
        const tern_kern *kk = be->k;
        for (int r = -1; r < reps; r++) { /* the first round warms caches, threads and JIT */
            double t0 = tern_now();
            kk->attention_fwd(be, o, lse, scr, q, k, v, &sh);
            double t1 = tern_now();
            kk->attention_bwd(be, dq, dk, dv, scr, dy, q, k, v, lse, &sh);
            double t2 = tern_now();
            if (r >= 0) tf[r] = t1 - t0, tb[r] = t2 - t1;
        }
        qsort(tf, (size_t)reps, sizeof(double), cmp_d);
        qsort(tb, (size_t)reps, sizeof(double), cmp_d);
        double mf = tf[reps / 2], mb = tb[reps / 2];
        tern_hasher h;
        uint8_t dig[TERN_HASH_BYTES];
        char hex[2 * TERN_HASH_BYTES + 1];
        tern_hash_init(&h);
        tern_hash_update(&h, o, N * Q * 4), tern_hash_update(&h, lse, B * NH * T * 4), tern_hash_update(&h, dq, N * Q * 4);
        tern_hash_update(&h, dk, N * KV * 4), tern_hash_update(&h, dv, N * KV * 4);
        tern_hash_final(&h, dig);
        tern_hex(hex, dig, 8);
        printf("%s %s B%zu T%zu NH%zu KV%zu hs%zu: forward %.1f ms (%.1f GFLOP/s), backward %.1f ms (%.1f GFLOP/s), "
               "both %.1f ms (%.1f GFLOP/s); outputs %s\n",
               be->name, precs[pi], B, T, NH, NKV, hs, mf * 1e3, flops_f / mf / 1e9, mb * 1e3, flops_b / mb / 1e9, (mf + mb) * 1e3,
               (flops_f + flops_b) / (mf + mb) / 1e9, hex);
        tern_backend_free(be);
    }
    free(q), free(k), free(v), free(dy), free(o), free(lse), free(scr), free(dq), free(dk), free(dv), free(tf), free(tb);
    return 0;
}
