/* Tokenizer benchmark: GPT-2 encoding throughput (MB/s) on one thread and on all, and training
 * a 32k vocabulary, on the Gutenberg corpus; then, in the same run, the peers (tiktoken and
 * Hugging Face tokenizers, through tools/bench_tok_peer.py) on the same text with the same
 * thread counts. Not a test: it prints figures for docs/PERFORMANCE.md "Tokenizer".
 *
 * usage: build/bench/bench_tok [CORPUS_DIR [REPEATS]]   (default /work/shared/data/gutenberg, 5)
 * The corpus is every pg*.txt file (the books) of CORPUS_DIR in name order; nothing is downloaded. */
#include "tern.h"

#include <dirent.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/work/shared/data/gutenberg";
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1) reps = 1;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "bench_tok: cannot open %s\n", dir);
        return 1;
    }
    char *files[256];
    int nf = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nf < 256) {
        size_t l = strlen(e->d_name);
        if (l > 6 && !strcmp(e->d_name + l - 4, ".txt") && !strncmp(e->d_name, "pg", 2)) files[nf++] = tern_path_join(dir, e->d_name);
    }
    closedir(d);
    qsort(files, (size_t)nf, sizeof *files, cmp_str);
    size_t total = 0, cap = 0;
    char *text = NULL;
    for (int i = 0; i < nf; i++) {
        char *b;
        size_t n;
        if (tern_read_file(files[i], &b, &n) != TERN_OK) {
            fprintf(stderr, "bench_tok: %s\n", tern_errmsg());
            return 1;
        }
        if (total + n > cap) {
            cap = (total + n) * 2;
            text = realloc(text, cap);
        }
        memcpy(text + total, b, n);
        total += n;
        free(b);
    }
    tern_tok *tok;
    if (tern_tok_load(&tok, "data/gpt2", NULL) != TERN_OK) {
        fprintf(stderr, "bench_tok: %s\n", tern_errmsg());
        return 1;
    }
    int maxt = omp_get_max_threads();
    printf("corpus: %d files of %s, %.2f MB; %d repeats, medians\n", nf, dir, total / 1e6, reps);
    size_t ntok = 0;
    double mbs1 = 0;
    for (int t = 1; t <= maxt; t *= 2) {
        omp_set_num_threads(t);
        double v[64], c[64];
        for (int r = 0; r < reps && r < 64; r++) {
            tern_ids ids = {0};
            double t0 = tern_now(), c0 = cpu_seconds();
            if (tern_tok_encode(tok, text, total, &ids) != TERN_OK) {
                fprintf(stderr, "bench_tok: %s\n", tern_errmsg());
                return 1;
            }
            v[r] = total / 1e6 / (tern_now() - t0);
            c[r] = total / 1e6 / (cpu_seconds() - c0);
            ntok = ids.n;
            tern_ids_free(&ids);
        }
        double m = median(v, reps < 64 ? reps : 64), mc = median(c, reps < 64 ? reps : 64);
        if (t == 1) mbs1 = m;
        /* MB per CPU-second stays flat when the threads add work without waiting on each other;
         * wall-clock MB/s only scales with it when the machine has t idle cores */
        printf("tern encode gpt2, %d thread%s: %.1f MB/s (%zu tokens; %.2fx one thread); %.1f MB per CPU-second\n", t,
               t > 1 ? "s" : "", m, ntok, t > 1 ? m / mbs1 : 1.0, mc);
    }
    char tmp[] = "/tmp/bench_tok_XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    for (int t = 1; t <= maxt; t *= 2) {
        omp_set_num_threads(t);
        double v[64], c[64];
        int tr = reps < 3 ? reps : 3;
        size_t got = 0;
        for (int r = 0; r < tr; r++) {
            double t0 = tern_now(), c0 = cpu_seconds();
            if (tern_tok_train((const char *const *)files, (size_t)nf, 32000, tmp, &got) != TERN_OK) {
                fprintf(stderr, "bench_tok: %s\n", tern_errmsg());
                return 1;
            }
            v[r] = tern_now() - t0;
            c[r] = cpu_seconds() - c0;
        }
        printf("tern train 32k vocabulary, %d thread%s: %.2f s (%zu tokens); %.2f CPU-seconds\n", t, t > 1 ? "s" : "", median(v, tr),
               got, median(c, tr));
    }
    fflush(stdout);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 tools/bench_tok_peer.py %s %d %d; rm -rf %s", dir, reps, maxt, tmp);
    int rc = system(cmd);
    if (rc != 0) printf("(peers not measured: tools/bench_tok_peer.py needs python3 with tiktoken and tokenizers)\n");
    for (int i = 0; i < nf; i++) free(files[i]);
    free(text);
    tern_tok_free(tok);
    return 0;
}
