/* Training-step throughput: forward + backward + AdamW on random tokens for the configurations
 * of the speed issue (S: 6 layers, 6 heads, width 384, context 256, vocabulary 8192, batch 16;
 * M: GPT-2 small, context 1024, batch 4). Prints tokens/s (median of the timed steps), model
 * FLOPs utilisation against a given peak, and peak RSS. Not a test: it asserts nothing.
 * With "recompute" as the fourth argument, the model recomputes each block's activations in the
 * backward pass (tern train --recompute).
 * usage: bench_train S|M|L,H,C,T,V,B [steps] [peak_gflops] [recompute] */
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
    int L = 6, NH = 6, C = 384, T = 256, V = 8192, B = 16;
    if (argc > 1 && !strcmp(argv[1], "M")) {
        L = 12, NH = 12, C = 768, T = 1024, V = 50257, B = 4;
    } else if (argc > 1 && strcmp(argv[1], "S")) {
        if (sscanf(argv[1], "%d,%d,%d,%d,%d,%d", &L, &NH, &C, &T, &V, &B) != 6) {
            fprintf(stderr, "usage: bench_train S|M|L,H,C,T,V,B [steps] [peak_gflops] [recompute]\n");
            return 2;
        }
    }
    int steps = argc > 2 ? atoi(argv[2]) : 10;
    double peak = argc > 3 ? atof(argv[3]) : 540.0; /* 2 cores x 16 fp32 lanes x 2 FMA ports x 2 x ~4.2 GHz */
    int recompute = argc > 4 && !strcmp(argv[4], "recompute");
    tern_set_threads(0);
    tern_gpt2_config cfg = {L, NH, C, T, V};
    tern_gpt2 *m = NULL;
    if (tern_gpt2_init(&m, &cfg) == TERN_OK) tern_gpt2_set_recompute(m, recompute);
    if (!m || tern_gpt2_reserve(m, (size_t)B, (size_t)T) != TERN_OK) {
        fprintf(stderr, "%s\n", tern_errmsg());
        return 1;
    }
    tern_gpt2_init_weights(m, 1);
    size_t np = tern_gpt2_num_params(m), ntens;
    const tern_tensor *tens = tern_gpt2_tensors(m, &ntens);
    tern_adamw opt;
    if (tern_adamw_init(&opt, 0, np) != TERN_OK) return 1;
    tern_adamw_hparams hp = {0.9f, 0.95f, 1e-8f, 0.1f};
    int32_t *in = malloc((size_t)B * T * 4), *tg = malloc((size_t)B * T * 4);
    double *times = malloc((size_t)steps * sizeof(double));
    for (int s = 0; s < steps + 1; s++) {
        for (size_t i = 0; i < (size_t)B * T; i++) {
            in[i] = (int32_t)(tern_rng_u64(7, (uint64_t)s, i) % (uint64_t)V);
            tg[i] = (int32_t)(tern_rng_u64(8, (uint64_t)s, i) % (uint64_t)V);
        }
        double t0 = tern_now();
        float loss;
        tern_gpt2_zero_grad(m);
        if (tern_gpt2_forward_backward(m, in, tg, (size_t)B, (size_t)T, 1.0f, &loss) != TERN_OK) {
            fprintf(stderr, "%s\n", tern_errmsg());
            return 1;
        }
        double norm = sqrt(tern_sum_squares(tern_gpt2_grads(m), np));
        tern_clip_grads(tern_gpt2_grads(m), np, norm, 1.0f);
        tern_adamw_step(&opt, tern_gpt2_params(m), tern_gpt2_grads(m), tens, ntens, 1e-4f, (uint64_t)s + 1, &hp);
        double dt = tern_now() - t0;
        if (s > 0) times[s - 1] = dt; /* the first step warms caches and threads */
        fprintf(stderr, "step %d: %.3f s, loss %.4f\n", s, dt, loss);
    }
    qsort(times, (size_t)steps, sizeof(double), cmp_d);
    double med = times[steps / 2], tps = (double)B * T / med;
    /* FLOPs per token: 6N for the matrix products of weights (N without the position table,
     * whose use is a lookup) plus 12*L*C*T for attention (PaLM's appendix B, as nanoGPT). */
    size_t n_nonpos = np - (size_t)T * C;
    double flops_tok = 6.0 * (double)n_nonpos + 12.0 * L * C * T;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("tern%s config L%d H%d C%d T%d V%d B%d: %.1f tokens/s (median of %d steps, %.3f s/step), %.1f GFLOP/s, MFU %.1f%% of %.0f GFLOP/s, peak RSS %.0f MiB\n",
           recompute ? " --recompute" : "", L, NH, C, T, V, B, tps, steps, med, tps * flops_tok / 1e9, 100.0 * tps * flops_tok / 1e9 / peak, peak,
           (double)ru.ru_maxrss / 1024.0);
    return 0;
}
