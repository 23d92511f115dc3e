/* Sealing throughput, per core: for several chunk sizes, sealing to a file and opening it whole,
 * sealing and opening in memory, opening on every OpenMP thread, and the cost of one small
 * random-access read (what a bigger chunk costs). Its peer, measured in the same run, is
 * libsodium's XChaCha20-Poly1305 alone over the same chunks into buffers already in memory: the
 * ceiling sealing can reach. Medians of repeated runs, MB/s with 1 MB = 1e6 bytes.
 * Single-thread figures are per second of the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which
 * is what "per core" means on a shared, busy machine; wall-clock figures are marked as such.
 * usage: bench_seal [MB] [repeats] [folder for the file runs]                                    */
#include "tern.h"

#include <omp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void must(tern_status st) {
    if (st != TERN_OK) {
        fprintf(stderr, "bench_seal: %s\n", tern_errmsg());
        exit(1);
    }
}

enum { C_AEAD_ENC, C_AEAD_DEC, C_SEAL_FILE, C_OPEN_FILE, C_SEAL_MEM, C_OPEN_MEM, C_SEAL_MT, C_OPEN_MT, C_SEAL_WALL, C_READ, NCOL };

int main(int argc, char **argv) {
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 256;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    if (mb == 0 || reps < 1 || reps > 50 || sodium_init() < 0) {
        fprintf(stderr, "usage: bench_seal [MB] [repeats] [folder]\n");
        return 2;
    }
    size_t n = mb * 1000000;
    uint8_t *p = malloc(n), *ct = malloc(n + n / 1024 + 64), *back = malloc(n);
    if (!p || !ct || !back) return 1;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = tern_rng_u64(1, 2, i);
        memcpy(p + i, &r, n - i < 8 ? n - i : 8);
    }
    memset(ct, 0, n + n / 1024 + 64); /* fault the peer's buffers in before it is timed */
    memset(back, 0, n);
    uint8_t key[TERN_KEY_BYTES];
    memset(key, 0x42, sizeof key);
    tern_key *k;
    must(tern_key_from_bytes(&k, key));
    char *path = tern_path_join(dir, "bench_seal.sealed");
    int threads = omp_get_max_threads();
    printf("bench_seal: %zu MB, median of %d, file runs in %s; MB/s per second of one thread's CPU time unless 'wall'\n", mb,
           reps, dir);
    printf("%6s | %-13s | %-20s | %-13s | %-13s | %-10s | %s\n", "", "libsodium AEAD", "tern file (1 thread)",
           "tern memory", "memory, wall", "file, wall", "4 KiB random");
    printf("%6s | %6s %6s | %9s %10s | %6s %6s | %2d threads:  | seal+fsync | read, us\n", "chunk", "enc", "dec", "seal",
           "open whole", "seal", "open", threads);
    printf("%6s | %6s %6s | %9s %10s | %6s %6s | %6s %6s | %10s |\n", "", "", "", "", "", "", "", "seal", "open", "1 thread");
    size_t chunks[] = {4096, 16384, 65536, 262144, 1048576};
    double *t = malloc(sizeof(double) * (size_t)reps * NCOL);
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        size_t C = chunks[c], nc = (n + C - 1) / C;
        for (int r = 0; r < reps; r++) {
            double *row = t + NCOL * r;
            omp_set_num_threads(1);
            /* the peer: the AEAD over the same chunks, same nonce and associated-data sizes */
            uint8_t nonce[24] = {0}, ad[41] = {0}, sk[32] = {1};
            double c0 = cpu_now();
            for (size_t i = 0; i < nc; i++) {
                size_t len = i + 1 == nc ? n - i * C : C;
                memcpy(nonce, &i, sizeof i);
                crypto_aead_xchacha20poly1305_ietf_encrypt_detached(ct + i * (C + 16), ct + i * (C + 16) + len, NULL, p + i * C,
                                                                    len, ad, sizeof ad, NULL, nonce, sk);
            }
            double c1 = cpu_now();
            for (size_t i = 0; i < nc; i++) {
                size_t len = i + 1 == nc ? n - i * C : C;
                memcpy(nonce, &i, sizeof i);
                if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(back + i * C, NULL, ct + i * (C + 16), len,
                                                                        ct + i * (C + 16) + len, ad, sizeof ad, nonce, sk)) {
                    fprintf(stderr, "bench_seal: the peer failed to decrypt\n");
                    return 1;
                }
            }
            double c2 = cpu_now();
            row[C_AEAD_ENC] = n / 1e6 / (c1 - c0);
            row[C_AEAD_DEC] = n / 1e6 / (c2 - c1);

            /* tern through a file: seal (CPU time up to the commit; the fsync is disk wait), open whole */
            tern_sealer *w;
            tern_plain pl;
            double w0 = tern_now();
            c0 = cpu_now();
            must(tern_seal_open(&w, path, k, "bench", C));
            must(tern_seal_write(w, p, n));
            c1 = cpu_now();
            must(tern_seal_commit(w));
            double w1 = tern_now();
            c2 = cpu_now();
            must(tern_unseal_file(&pl, path, k, "bench"));
            double c3 = cpu_now();
            if (pl.size != n || memcmp(pl.data, p, n)) {
                fprintf(stderr, "bench_seal: round trip differs\n");
                return 1;
            }
            tern_plain_free(&pl);
            row[C_SEAL_FILE] = n / 1e6 / (c1 - c0);
            row[C_OPEN_FILE] = n / 1e6 / (c3 - c2);
            row[C_SEAL_WALL] = n / 1e6 / (w1 - w0);

            /* tern in memory: the sealed image and the plaintext are fresh allocations each time */
            uint8_t *img;
            size_t img_n;
            c0 = cpu_now();
            must(tern_seal_buffer(&img, &img_n, k, "bench", p, n, C));
            c1 = cpu_now();
            must(tern_unseal_buffer(&pl, img, img_n, "bench", k, "bench"));
            c2 = cpu_now();
            tern_plain_free(&pl);
            row[C_SEAL_MEM] = n / 1e6 / (c1 - c0);
            row[C_OPEN_MEM] = n / 1e6 / (c2 - c1);

            /* sealing and whole-file opening on every thread, wall clock */
            omp_set_num_threads(threads);
            uint8_t *img2;
            w0 = tern_now();
            must(tern_seal_buffer(&img2, &img_n, k, "bench", p, n, C));
            w1 = tern_now();
            free(img2);
            row[C_SEAL_MT] = n / 1e6 / (w1 - w0);
            w0 = tern_now();
            must(tern_unseal_buffer(&pl, img, img_n, "bench", k, "bench"));
            w1 = tern_now();
            tern_plain_free(&pl);
            row[C_OPEN_MT] = n / 1e6 / (w1 - w0);

            /* random 4 KiB windows through the random-access reader */
            tern_sealed *s;
            must(tern_sealed_open_buffer(&s, img, img_n, "bench", k, "bench"));
            uint8_t win[4096];
            int nw = 2000;
            uint64_t ctr = 0;
            c0 = cpu_now();
            for (int i = 0; i < nw; i++) must(tern_sealed_read(s, win, tern_rng_below(3, 4, &ctr, n - sizeof win), sizeof win));
            c1 = cpu_now();
            tern_sealed_close(s);
            free(img);
            row[C_READ] = (c1 - c0) / nw * 1e6;
        }
        double col[50], med[NCOL];
        for (int j = 0; j < NCOL; j++) {
            for (int r = 0; r < reps; r++) col[r] = t[NCOL * r + j];
            med[j] = median(col, reps);
        }
        printf("%5zuK | %6.0f %6.0f | %9.0f %10.0f | %6.0f %6.0f | %6.0f %6.0f | %10.0f | %.1f\n", C / 1024,
               med[C_AEAD_ENC], med[C_AEAD_DEC], med[C_SEAL_FILE], med[C_OPEN_FILE], med[C_SEAL_MEM], med[C_OPEN_MEM],
               med[C_SEAL_MT], med[C_OPEN_MT], med[C_SEAL_WALL], med[C_READ]);
        fflush(stdout);
    }
    unlink(path);
    free(path);
    free(t);
    free(p);
    free(ct);
    free(back);
    tern_key_free(k);
    return 0;
}
