/* Training-step throughput: forward + backward + AdamW on random tokens for the configurations
 * of docs/PERFORMANCE.md (S: 6 layers, 6 heads, width 384, context 256, vocabulary 8192, batch 16;
 * M: GPT-2 small, context 1024, batch 4; LM below). Prints tokens/s (median of the timed steps), model
 * FLOPs utilisation against a given peak, and peak RSS. Not a test: it asserts nothing.
 * Flags after the peak: "recompute" (each block's activations recomputed in the backward pass, as
 * tern train --recompute), "bf16" (matrix products with bf16 operands, as --precision bf16) and
 * "paired": fp32 and bf16 steps of the one model taken in turns (fp32 bf16 bf16 fp32 ...), each
 * precision's median printed, and then the median over the pairs of the fp32 step's time over the
 * bf16 step's next to it. On a machine shared with other work a pair of neighbouring steps meets
 * about the same load, so the paired ratio is steadier than the ratio of two separate runs; the
 * peak RSS it prints is that of both precisions' buffers together.
 * Threads: OMP_NUM_THREADS when set, else every core.
 * LM is the Llama of GPT-2 small's size (12 layers, 12 heads, 4 key/value heads, width 768).
 * usage: bench_train S|M|LM|ARCH,L,H,KV,C,T,V,B [steps] [peak_gflops] [recompute] [bf16|paired] */
#include "tern.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    /* S: a small GPT-2; M: GPT-2 small (124M) at T 1024; LM: the Llama of GPT-2 small's size
     * (12 layers, 12 heads, 4 key/value heads, width 768, vocabulary 50257, untied head) */
    char arch[16] = "gpt2";
    int L = 6, NH = 6, KV = 6, C = 384, T = 256, V = 8192, B = 16;
    if (argc > 1 && !strcmp(argv[1], "M")) {
        L = 12, NH = KV = 12, C = 768, T = 1024, V = 50257, B = 4;
    } else if (argc > 1 && !strcmp(argv[1], "LM")) {
        snprintf(arch, sizeof arch, "llama");
        L = 12, NH = 12, KV = 4, C = 768, T = 1024, V = 50257, B = 4;
    } else if (argc > 1 && strcmp(argv[1], "S")) {
        if (sscanf(argv[1], "%15[a-z0-9],%d,%d,%d,%d,%d,%d,%d", arch, &L, &NH, &KV, &C, &T, &V, &B) != 8 ||
            (strcmp(arch, "gpt2") && strcmp(arch, "llama"))) {
            fprintf(stderr, "usage: bench_train S|M|LM|ARCH,L,H,KV,C,T,V,B [steps] [peak_gflops] [recompute] [bf16|paired]\n");
            return 2;
        }
    }
    int steps = argc > 2 ? atoi(argv[2]) : 10;
    double peak = argc > 3 ? atof(argv[3]) : 540.0; /* 2 cores x 16 fp32 lanes x 2 FMA ports x 2 x ~4.2 GHz */
    int recompute = 0, paired = 0;
    const char *prec = "fp32";
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "recompute")) recompute = 1;
        else if (!strcmp(argv[i], "bf16")) prec = "bf16";
        else if (!strcmp(argv[i], "paired")) paired = 1;
    }
    if (steps < 1) {
        fprintf(stderr, "bench_train: steps must be 1 or more, got %s\n", argv[2]);
        return 2;
    }
    const char *env = getenv("OMP_NUM_THREADS");
    tern_set_threads(env ? atoi(env) : 0);
    tern_model_config cfg = !strcmp(arch, "llama") ? tern_model_config_llama(L, NH, KV, C, T, V) : tern_model_config_gpt2(L, NH, C, T, V);
    tern_model *m = NULL;
    tern_backend *be = NULL;
    if (tern_backend_open(&be, NULL) != TERN_OK || tern_backend_set_precision(be, prec) != TERN_OK) {
        fprintf(stderr, "%s\n", tern_errmsg());
        return 1;
    }
    if (tern_model_init(&m, &cfg, be) == TERN_OK) tern_model_set_recompute(m, recompute);
    if (!m || tern_model_reserve(m, (size_t)B, (size_t)T) != TERN_OK) {
        fprintf(stderr, "%s\n", tern_errmsg());
        return 1;
    }
    tern_model_init_weights(m, 1);
    size_t np = tern_model_num_params(m);
    tern_adamw opt;
    if (tern_adamw_init(&opt, be, 0, np) != TERN_OK) return 1;
    tern_adamw_hparams hp = {0.9f, 0.95f, 1e-8f, 0.1f};
    int32_t *in = malloc((size_t)B * T * 4), *tg = malloc((size_t)B * T * 4);
    /* times[p][k]: precision p's step of round k; round 0 warms caches, threads and JIT */
    int np2 = paired ? 2 : 1;
    const char *precs[2] = {paired ? "fp32" : prec, "bf16"};
    double *times[2] = {malloc((size_t)steps * sizeof(double)), malloc((size_t)steps * sizeof(double))};
    double *ratio = malloc((size_t)steps * sizeof(double));
    if (!in || !tg || !times[0] || !times[1] || !ratio) {
        fprintf(stderr, "bench_train: out of memory\n");
        return 1;
    }
    uint64_t t_step = 0;
    for (int k = 0; k < steps + 1; k++) {
        for (size_t i = 0; i < (size_t)B * T; i++) {
            in[i] = (int32_t)(tern_rng_u64(7, (uint64_t)k, i) % (uint64_t)V);
            tg[i] = (int32_t)(tern_rng_u64(8, (uint64_t)k, i) % (uint64_t)V);
        }
        for (int j = 0; j < np2; j++) {
            int p = (k % 2) ? np2 - 1 - j : j; /* fp32 bf16, bf16 fp32, ...: neither always goes first */
            if (tern_backend_set_precision(be, precs[p]) != TERN_OK) {
                fprintf(stderr, "%s\n", tern_errmsg());
                return 1;
            }
            double t0 = tern_now();
            float loss;
            tern_model_zero_grad(m);
            if (tern_model_forward_backward(m, in, tg, (size_t)B, (size_t)T, 1.0f, &loss) != TERN_OK) {
                fprintf(stderr, "%s\n", tern_errmsg());
                return 1;
            }
            double norm = sqrt(tern_grad_sum_squares(m, 0, np));
            if (tern_adamw_step_scaled(&opt, m, 1e-4f, ++t_step, &hp, tern_clip_coef(norm, 1.0f)) != TERN_OK) return 1;
            double dt = tern_now() - t0;
            if (k > 0) times[p][k - 1] = dt;
            fprintf(stderr, "step %d %s: %.3f s, loss %.4f\n", k, precs[p], dt, loss);
        }
        if (paired && k > 0) ratio[k - 1] = times[0][k - 1] / times[1][k - 1];
    }
    /* FLOPs per token: the family's count (6 per parameter in a matrix product, the lookups left
     * out, plus 12*L*C*T for attention: PaLM's appendix B, as nanoGPT counts) */
    double flops_tok = tern_model_config_flops_per_token(&cfg, (size_t)T);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    for (int p = 0; p < np2; p++) {
        qsort(times[p], (size_t)steps, sizeof(double), cmp_d);
        double med = times[p][steps / 2], tps = (double)B * T / med;
        printf("tern%s %s %s L%d H%d KV%d C%d T%d V%d B%d: %.1f tokens/s (median of %d steps, %.3f s/step), %.1f GFLOP/s, MFU %.1f%% of %.0f "
               "GFLOP/s, peak RSS %.0f MiB\n",
               recompute ? " --recompute" : "", precs[p], arch, L, NH, cfg.n_kv_head, C, T, V, B, tps, steps, med, tps * flops_tok / 1e9,
               100.0 * tps * flops_tok / 1e9 / peak, peak, (double)ru.ru_maxrss / 1024.0);
    }
    if (paired) {
        qsort(ratio, (size_t)steps, sizeof(double), cmp_d);
        printf("tern bf16/fp32 paired %s L%d C%d T%d B%d: %.3fx (median of %d pairs, %.3f-%.3f)\n", arch, L, C, T, B, ratio[steps / 2], steps,
               ratio[0], ratio[steps - 1]);
    }
    free(in), free(tg), free(times[0]), free(times[1]), free(ratio);
    return 0;
}
