/* The communicator's collectives on this machine's links, to ground the step-time model of
 * docs/DISTRIBUTED.md: all-reduce, and ZeRO-1's reduce-scatter + all-gather, of 4 bytes to 64 MiB
 * of floats, median of repeated calls, with the bus bandwidth nccl-tests reports (a ring moves
 * 2(W-1)/W of the buffer through each rank's link). Not a test: run it under mpirun.
 * usage: mpirun -np 2 build/bench/bench_dist [repeats] */
#include "tern.h"

#include <stdlib.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 21;
    if (reps < 1) reps = 1;
    tern_comm *c;
    if (tern_comm_init(&c) != TERN_OK) {
        fprintf(stderr, "bench_dist: %s\n", tern_errmsg());
        return 1;
    }
    int R = tern_comm_rank(c), W = tern_comm_size(c);
    if (W < 2) {
        fprintf(stderr, "bench_dist: one process; run it under mpirun -np 2 (or more)\n");
        tern_comm_free(c);
        return 1;
    }
    size_t maxn = (size_t)16 << 20; /* 64 MiB of floats */
    float *x;
    double *t = malloc((size_t)reps * sizeof *t);
    size_t *bounds = malloc(((size_t)W + 1) * sizeof *bounds);
    if (tern_alloc((void **)&x, maxn * sizeof(float), "the buffer") != TERN_OK || !t || !bounds) {
        fprintf(stderr, "bench_dist: %s\n", tern_errmsg());
        return 1;
    }
    for (size_t i = 0; i < maxn; i++) x[i] = 1.0f;
    if (R == 0)
        printf("bench_dist: %d ranks over %s\n%12s %14s %12s %12s %18s %12s\n", W, tern_comm_name(c), "bytes", "all-reduce us",
               "algbw GB/s", "busbw GB/s", "RS+AG (ZeRO-1) us", "busbw GB/s");
    for (size_t n = 1; n <= maxn; n *= 4) {
        double med[2];
        for (int op = 0; op < 2; op++) {
            tern_comm_shard_bounds(n, W, bounds);
            for (int k = 0; k < reps; k++) {
                tern_comm_max_i64(c, &(int64_t){0}, 1); /* start together */
                double t0 = tern_now();
                tern_status st = op == 0 ? tern_comm_allreduce_f32(c, x, n) : tern_comm_reduce_scatter_f32(c, x, 0, n, bounds);
                if (st == TERN_OK && op == 1) st = tern_comm_allgather_f32(c, x, 0, n, bounds);
                if (st != TERN_OK) {
                    fprintf(stderr, "bench_dist: %s\n", tern_errmsg());
                    tern_comm_abort(c, 1);
                    return 1;
                }
                t[k] = tern_now() - t0;
                /* keep the values small: sums of ones would grow without bound */
                if (op == 0)
                    for (size_t i = 0; i < n; i++) x[i] = 1.0f;
            }
            /* each rank's median, then the slowest rank's */
            qsort(t, (size_t)reps, sizeof(double), cmp_double);
            int64_t ns = (int64_t)(t[reps / 2] * 1e9);
            tern_comm_max_i64(c, &ns, 1);
            med[op] = (double)ns / 1e9;
        }
        double bytes = (double)n * 4, ring = 2.0 * (W - 1) / W;
        if (R == 0)
            printf("%12.0f %14.1f %12.3f %12.3f %18.1f %12.3f\n", bytes, med[0] * 1e6, bytes / med[0] / 1e9,
                   ring * bytes / med[0] / 1e9, med[1] * 1e6, ring * bytes / med[1] / 1e9);
    }
    tern_free(x);
    free(t);
    free(bounds);
    tern_comm_free(c);
    return 0;
}
