/* A tiny test harness: CHECK counts, RUN prints "PASS name" or "FAIL name" for each test
 * function, and check_exit() returns non-zero if anything failed. tests/run.sh adds up the
 * PASS and FAIL lines of every program. */
#ifndef TERN_CHECK_H
#define TERN_CHECK_H
#include <math.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures_;    /* failed CHECKs in the current test */
static int check_tests_failed_;

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            check_failures_++;                                                                \
            printf("  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                 \
            printf(__VA_ARGS__);                                                              \
            printf("\n");                                                                     \
        }                                                                                     \
    } while (0)

#define RUN(fn)                                                                               \
    do {                                                                                      \
        check_failures_ = 0;                                                                  \
        fn();                                                                                 \
        fflush(stderr);                                                                       \
        if (check_failures_) {                                                                \
            check_tests_failed_++;                                                            \
            printf("FAIL %s (%d checks)\n", #fn, check_failures_);                            \
        } else {                                                                              \
            printf("PASS %s\n", #fn);                                                         \
        }                                                                                     \
        fflush(stdout);                                                                       \
    } while (0)

static inline int check_exit(void) { return check_tests_failed_ ? 1 : 0; }

/* ||a-b|| / ||b|| over n floats (the per-tensor relative error the model tests bound). */
static inline double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den == 0) return sqrt(num);
    return sqrt(num / den);
}

/* A fresh scratch folder under TERN_TEST_TMP (or /tmp), created empty. */
static inline const char *test_tmpdir(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ & 3];
    const char *root = getenv("TERN_TEST_TMP");
    snprintf(p, 512, "%s/%s", root ? root : "/tmp", name);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", p, p);
    if (system(cmd) != 0) { printf("cannot make %s\n", p); exit(2); }
    return p;
}

/* Path of the tern program under test. */
static inline const char *test_tern_bin(void) {
    const char *b = getenv("TERN_BIN");
    return b ? b : "build/tern";
}

/* Runs a shell command, captures stdout+stderr into out (NUL-terminated, truncated to n-1),
 * and returns the exit status (or -1 if it did not exit normally). */
static inline int run_cmd(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int run_cmd(char *out, size_t n, const char *fmt, ...) {
    char body[8192], cmd[8300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    /* grouped, so that every command's standard error is captured, background ones included */
    snprintf(cmd, sizeof cmd, "{ %s\n} 2>&1", body);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t k = 0;
    if (out && n) {
        k = fread(out, 1, n - 1, p);
        out[k] = 0;
    }
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {}
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}
#endif
