/* Training-step throughput on a named backend and precision, for GPUs above all: forward,
 * backward, global-norm clip and AdamW on random tokens, each step timed from its first kernel
 * to the backend's synchronisation after the update. Prints one line: tokens/s (median of the
 * timed steps after one warm-up), model FLOPs utilisation against the given peak, and memory at
 * its highest (on a CUDA backend the device's, context and libraries included; else the process's
 * resident set). tools/gpu_check.sh sets it beside PyTorch on the same GPU. Asserts nothing.
 * usage: bench_gpu DEVICE PRECISION M|LM|ARCH,L,H,KV,C,T,V,B [steps] [peak_tflops] [batch]
 *   M:  GPT-2 small (12 layers, 12 heads, width 768, context 1024, vocabulary 50257), batch 16
 *   LM: the Llama of its size (12 layers, 12 heads, 4 key/value heads, width 768), batch 16 */
#include "tern.h"

#ifdef TERN_CUDA
#include "backend/cuda/cuda_int.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The configuration named by spec, and its batch. */
static int parse(const char *spec, tern_model_config *cfg, int *B) {
    char arch[16] = "gpt2";
    int L = 12, NH = 12, KV = 12, C = 768, T = 1024, V = 50257;
    *B = 16;
    if (!strcmp(spec, "LM")) {
        snprintf(arch, sizeof arch, "llama");
        KV = 4;
    } else if (strcmp(spec, "M") && sscanf(spec, "%15[a-z0-9],%d,%d,%d,%d,%d,%d,%d", arch, &L, &NH, &KV, &C, &T, &V, B) != 8) {
        return 0;
    }
    *cfg = !strcmp(arch, "llama") ? tern_model_config_llama(L, NH, KV, C, T, V) : tern_model_config_gpt2(L, NH, C, T, V);
    return 1;
}

int main(int argc, char **argv) {
    tern_model_config cfg;
    int B;
    if (argc < 4 || !parse(argv[3], &cfg, &B)) {
        fprintf(stderr, "usage: bench_gpu DEVICE PRECISION M|LM|ARCH,L,H,KV,C,T,V,B [steps] [peak_tflops] [batch]\n");
        return 2;
    }
    int steps = argc > 4 ? atoi(argv[4]) : 10;
    double peak = argc > 5 ? atof(argv[5]) : 989.0; /* H100/H200 SXM, dense bf16 */
    if (argc > 6) B = atoi(argv[6]);
    if (steps < 1 || B < 1) return 2;
    size_t T = (size_t)cfg.n_ctx, N = (size_t)B * T;
    tern_set_threads(0);
    tern_backend *be = NULL;
    tern_model *m = NULL;
    tern_adamw opt = {0};
    tern_status st = tern_backend_open(&be, argv[1]);
    if (st == TERN_OK) st = tern_backend_set_precision(be, argv[2]);
    if (st == TERN_OK) st = tern_model_init(&m, &cfg, be);
    if (st == TERN_OK) st = tern_model_reserve(m, (size_t)B, T);
    if (st == TERN_OK) st = tern_model_init_weights(m, 1);
    size_t np = m ? tern_model_num_params(m) : 0;
    if (st == TERN_OK) st = tern_adamw_init(&opt, be, 0, np);
    tern_adamw_hparams hp = {0.9f, 0.95f, 1e-8f, 0.1f};
    int32_t *in = malloc(N * sizeof(int32_t)), *tg = malloc(N * sizeof(int32_t));
    double *dt = malloc((size_t)steps * sizeof(double));
    float first = NAN, last = NAN;
    for (int s = 0; st == TERN_OK && s <= steps; s++) {
        for (size_t i = 0; i < N; i++) {
            in[i] = (int32_t)(tern_rng_u64(7, (uint64_t)s, i) % (uint64_t)cfg.vocab_size);
            tg[i] = (int32_t)(tern_rng_u64(8, (uint64_t)s, i) % (uint64_t)cfg.vocab_size);
        }
        double t0 = tern_now();
        float loss = NAN;
        st = tern_model_zero_grad(m);
        if (st == TERN_OK) st = tern_model_forward_backward(m, in, tg, (size_t)B, T, 1.0f, &loss);
        if (st != TERN_OK) break;
        tern_clip_grads(m, 0, np, sqrt(tern_grad_sum_squares(m, 0, np)), 1.0f);
        st = tern_adamw_step(&opt, m, 1e-4f, (uint64_t)s + 1, &hp);
        if (st == TERN_OK) st = tern_backend_sync(be);
        if (s > 0) dt[s - 1] = tern_now() - t0; /* step 0 warms up: libraries' plans, caches */
        if (s == 0) first = loss;
        last = loss;
    }
    if (st != TERN_OK) {
        fprintf(stderr, "bench_gpu: %s\n", tern_errmsg());
        return 1;
    }
    qsort(dt, (size_t)steps, sizeof *dt, by_value);
    double med = dt[steps / 2], tps = (double)N / med, flops = tern_model_config_flops_per_token(&cfg, T);
    double mem_mib;
#ifdef TERN_CUDA
    size_t peak_dev = 0;
    tern_cuda_memory(be, &peak_dev, NULL);
    mem_mib = tern_cuda_device(be) >= 0 ? (double)peak_dev / 1048576.0 : -1;
#else
    mem_mib = -1;
#endif
    if (mem_mib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        mem_mib = (double)ru.ru_maxrss / 1024.0;
    }
    printf("tern %s %s %s L%d H%d KV%d C%d T%zu V%d B%d: %.0f tokens/s (median of %d steps, %.1f ms/step), MFU %.1f%% of %.0f TFLOP/s, "
           "peak memory %.0f MiB, loss %.4f -> %.4f\n",
           tern_backend_name(be), tern_backend_precision(be), cfg.arch, cfg.n_layer, cfg.n_head, cfg.n_kv_head, cfg.n_embd, T,
           cfg.vocab_size, B, tps, steps, med * 1e3, 100.0 * tps * flops / (peak * 1e12), peak, mem_mib, first, last);
    tern_adamw_free(&opt);
    tern_model_free(m);
    tern_backend_free(be);
    free(in), free(tg), free(dt);
    return 0;
}
