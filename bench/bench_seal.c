/* Sealing throughput: seal and open of a buffer of random bytes (default 256 MB) in memory and
 * through files, for several chunk sizes, on one thread (and whole-file opening on every
 * OpenMP thread), plus the cost of a small random-access read, which is what the chunk size
 * trades against. Prints medians of repeated runs in MB/s (1 MB = 1e6 bytes).
 * usage: bench_seal [MB] [repeats] [folder for the file runs]                                    */
#include "tern.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void must(tern_status st) {
    if (st != TERN_OK) {
        fprintf(stderr, "bench_seal: %s\n", tern_errmsg());
        exit(1);
    }
}

int main(int argc, char **argv) {
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 256;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    if (mb == 0 || reps < 1 || reps > 50) {
        fprintf(stderr, "usage: bench_seal [MB] [repeats] [folder]\n");
        return 2;
    }
    size_t n = mb * 1000000;
    uint8_t *p = malloc(n);
    if (!p) return 1;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = tern_rng_u64(1, 2, i);
        memcpy(p + i, &r, n - i < 8 ? n - i : 8);
    }
    uint8_t key[TERN_KEY_BYTES];
    memset(key, 0x42, sizeof key);
    tern_key *k;
    must(tern_key_from_bytes(&k, key));
    char *path = tern_path_join(dir, "bench_seal.sealed");
    int threads = omp_get_max_threads();
    printf("bench_seal: %zu MB, median of %d, file runs in %s, %d OpenMP threads available\n", mb, reps, dir, threads);
    printf("%9s %11s %11s %11s %11s %11s %13s\n", "chunk", "seal mem", "open mem", "seal file", "open file",
           "open mem xT", "4KiB read us");
    size_t chunks[] = {16384, 65536, 262144, 1048576};
    double *t = malloc(sizeof(double) * (size_t)reps * 6);
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        size_t C = chunks[c];
        for (int r = 0; r < reps; r++) {
            uint8_t *img;
            size_t img_n;
            tern_plain pl;
            double t0 = tern_now();
            must(tern_seal_buffer(&img, &img_n, k, "bench", p, n, C));
            double t1 = tern_now();
            omp_set_num_threads(1);
            must(tern_unseal_buffer(&pl, img, img_n, "bench", k, "bench"));
            double t2 = tern_now();
            if (pl.size != n || memcmp(pl.data, p, n)) {
                fprintf(stderr, "bench_seal: round trip differs\n");
                return 1;
            }
            tern_plain_free(&pl);
            omp_set_num_threads(threads);
            double t3 = tern_now();
            must(tern_unseal_buffer(&pl, img, img_n, "bench", k, "bench"));
            double t4 = tern_now();
            tern_plain_free(&pl);
            /* random 4 KiB windows through the random-access reader */
            tern_sealed *s;
            must(tern_sealed_open_buffer(&s, img, img_n, "bench", k, "bench"));
            uint8_t win[4096];
            int nw = 2000;
            uint64_t ctr = 0;
            double t5 = tern_now();
            for (int w = 0; w < nw; w++) must(tern_sealed_read(s, win, tern_rng_below(3, 4, &ctr, n - sizeof win), sizeof win));
            double t6 = tern_now();
            tern_sealed_close(s);
            free(img);
            /* through a file: tern_seal_file's write, fsync and rename; opening maps and decrypts */
            omp_set_num_threads(1);
            tern_sealer *w;
            double t7 = tern_now();
            must(tern_seal_open(&w, path, k, "bench", C));
            must(tern_seal_write(w, p, n));
            must(tern_seal_commit(w));
            double t8 = tern_now();
            must(tern_unseal_file(&pl, path, k, "bench"));
            double t9 = tern_now();
            tern_plain_free(&pl);
            omp_set_num_threads(threads);
            double *row = t + 6 * r;
            row[0] = n / 1e6 / (t1 - t0);
            row[1] = n / 1e6 / (t2 - t1);
            row[2] = n / 1e6 / (t8 - t7);
            row[3] = n / 1e6 / (t9 - t8);
            row[4] = n / 1e6 / (t4 - t3);
            row[5] = (t6 - t5) / nw * 1e6;
        }
        double col[50], med[6];
        for (int j = 0; j < 6; j++) {
            for (int r = 0; r < reps; r++) col[r] = t[6 * r + j];
            med[j] = median(col, reps);
        }
        printf("%8zuK %11.0f %11.0f %11.0f %11.0f %11.0f %13.1f\n", C / 1024, med[0], med[1], med[2], med[3], med[4], med[5]);
        fflush(stdout);
    }
    unlink(path);
    free(path);
    free(t);
    free(p);
    tern_key_free(k);
    return 0;
}
