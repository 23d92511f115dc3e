/* Shared fixtures of the end-to-end tests: a small prepared corpus, the losses of a run, file
 * comparison, and processes started and waited for directly (for tests that signal them at
 * chosen moments or read their peak memory). Each test program includes it once. */
#ifndef TERN_TEST_LIB_H
#define TERN_TEST_LIB_H
#include "check.h"
#include "tern.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* A copy of the model's parameters (or gradients) in new host memory (free it), and the way back:
 * tests reach a model's memory through its interface, as the rest of tern does. */
static inline float *test_model_copy(tern_model *m, tern_which which) {
    size_t n = tern_model_num_params(m);
    float *p = malloc(n * sizeof(float));
    if (!p || tern_model_read(m, which, 0, n, p) != TERN_OK) {
        printf("cannot read the model: %s\n", tern_errmsg());
        exit(2);
    }
    return p;
}

static inline void test_model_set(tern_model *m, tern_which which, const float *p) {
    if (tern_model_write(m, which, 0, tern_model_num_params(m), p) != TERN_OK) {
        printf("cannot write the model: %s\n", tern_errmsg());
        exit(2);
    }
}

/* Whether two models hold the same parameters, bit for bit. */
static inline int test_same_params(tern_model *a, tern_model *b) {
    size_t n = tern_model_num_params(a);
    if (n != tern_model_num_params(b)) return 0;
    float *x = test_model_copy(a, TERN_PARAMS), *y = test_model_copy(b, TERN_PARAMS);
    int eq = !memcmp(x, y, n * sizeof(float));
    free(x);
    free(y);
    return eq;
}

/* The model every end-to-end test trains: small enough for a step in milliseconds. */
#define SMALL_FLAGS "--n-layer 2 --n-head 2 --n-embd 32 --seq 32 --batch 4 --lr 3e-3 --warmup 2 --eval-batches 2 --threads 2"

/* A small corpus (the first 60 kB of tinyshakespeare), a 320-token BPE trained on it and a
 * prepared data folder with a val split, made once per test program under test_tmpdir(name). */
typedef struct test_data {
    char corpus[512], tok[512], data[512];
    char small[1024]; /* "--tokenizer TOK " SMALL_FLAGS */
} test_data;

static inline int test_small_data(test_data *td, const char *name) {
    if (td->data[0]) return 1;
    static char out[1 << 14];
    const char *root = test_tmpdir(name);
    snprintf(td->corpus, sizeof td->corpus, "%s/corpus.txt", root);
    snprintf(td->tok, sizeof td->tok, "%s/tok", root);
    snprintf(td->data, sizeof td->data, "%s/data", root);
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out,
                     "head -c 60000 data/tinyshakespeare/input.txt > %s && %s tokenizer train --vocab-size 320 -o %s %s && "
                     "%s prepare --tokenizer %s --val-fraction 0.1 -o %s %s",
                     td->corpus, t, td->tok, td->corpus, t, td->tok, td->data, td->corpus);
    if (rc != 0) {
        printf("setup failed: %s\n", out);
        td->data[0] = 0;
        return 0;
    }
    snprintf(td->small, sizeof td->small, "--tokenizer %s " SMALL_FLAGS, td->tok);
    return 1;
}

/* The "loss" values of a plain metrics.jsonl, as printed (9 significant digits: exact for
 * float32), into vals; returns how many (-1: no file). */
static inline int test_losses(const char *rundir, char vals[][32], int max) {
    char path[700];
    snprintf(path, sizeof path, "%s/metrics.jsonl", rundir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        char *p = strstr(line, "\"loss\":");
        if (!p || strstr(line, "val_loss")) continue;
        sscanf(p + 7, "%31[^,}]", vals[n++]);
    }
    fclose(f);
    return n;
}

/* Whether two files hold the same bytes (0 when either cannot be read). */
static inline int test_files_equal(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (tern_read_file(a, &x, &nx) != TERN_OK) return 0;
    if (tern_read_file(b, &y, &ny) != TERN_OK) {
        free(x);
        return 0;
    }
    int eq = nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return eq;
}

/* When set, processes that test_spawn starts get this limit on their address space (bytes). */
static rlim_t test_spawn_as_limit;

/* Starts `cmd` (split at spaces; no quoting) with stdout and stderr into log, in its own process
 * group, and returns its pid (-1 on failure). */
static inline pid_t test_spawn(const char *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline pid_t test_spawn(const char *log, const char *fmt, ...) {
    static char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char *argv[128];
    int argc = 0;
    for (char *tok = strtok(cmd, " "); tok && argc < 127; tok = strtok(NULL, " ")) argv[argc++] = tok;
    argv[argc] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid != 0) return pid;
    setpgid(0, 0);
    if (test_spawn_as_limit) {
        struct rlimit rl = {test_spawn_as_limit, test_spawn_as_limit};
        setrlimit(RLIMIT_AS, &rl);
    }
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    execv(argv[0], argv);
    _exit(127);
}

/* Waits for pid: its exit status, or 128 + the signal that ended it; *maxrss_kb (may be NULL)
 * receives its peak resident memory. */
static inline int test_wait(pid_t pid, long *maxrss_kb) {
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) return -1;
    if (maxrss_kb) *maxrss_kb = ru.ru_maxrss;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static inline void test_sleep(double seconds) {
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {}
}

static inline double test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#endif
