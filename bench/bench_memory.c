/* What a training run of each GPT-2 size needs in memory, by tern's own accounting (the numbers
 * `tern train --max-memory` checks): parameters, gradients and AdamW's two moments, plus the
 * activations for a batch, without and with --recompute; and which sizes fit a budget. Allocates
 * nothing large. Not a test: it asserts nothing; bench_train's peak RSS is the measured side.
 * usage: bench_memory BUDGET_GIB [batch] [seq] */
#include "tern.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_memory BUDGET_GIB [batch] [seq]\n");
        return 2;
    }
    double budget = atof(argv[1]) * 1024 * 1024 * 1024, gib = 1024.0 * 1024 * 1024;
    size_t B = argc > 2 ? (size_t)atol(argv[2]) : 8, T = argc > 3 ? (size_t)atol(argv[3]) : 1024;
    /* GPT-2's published sizes: small, medium, large, xl */
    const struct {
        const char *name;
        int L, H, C;
    } sizes[] = {{"gpt2", 12, 12, 768}, {"gpt2-medium", 24, 16, 1024}, {"gpt2-large", 36, 20, 1280}, {"gpt2-xl", 48, 25, 1600}};
    printf("budget %.1f GiB, batch %zu x %zu tokens, vocabulary 50257\n", budget / gib, B, T);
    printf("%-12s %10s %10s %14s %14s %8s %8s\n", "model", "params", "state GiB", "acts GiB", "acts GiB (rc)", "fits", "fits rc");
    const char *largest[2] = {"none", "none"};
    double largest_p[2] = {0, 0};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        tern_model_config c = tern_model_config_gpt2(sizes[i].L, sizes[i].H, sizes[i].C, (int)T, 50257);
        double np = (double)tern_model_config_num_params(&c), state = 4.0 * np * sizeof(float);
        double a0 = (double)tern_model_activation_bytes_for(&c, B, T, 0), a1 = (double)tern_model_activation_bytes_for(&c, B, T, 1);
        int f0 = state + a0 <= budget, f1 = state + a1 <= budget;
        printf("%-12s %9.0fM %10.2f %14.2f %14.2f %8s %8s\n", sizes[i].name, np / 1e6, state / gib, a0 / gib, a1 / gib,
               f0 ? "yes" : "no", f1 ? "yes" : "no");
        if (f0) largest[0] = sizes[i].name, largest_p[0] = np;
        if (f1) largest[1] = sizes[i].name, largest_p[1] = np;
    }
    printf("largest that fits: %s without --recompute, %s with it", largest[0], largest[1]);
    if (largest_p[0] > 0 && largest_p[1] > 0) printf(" (%.1fx the parameters)", largest_p[1] / largest_p[0]);
    printf("\n");
    return 0;
}
