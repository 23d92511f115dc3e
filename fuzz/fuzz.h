/* Helpers shared by tern's libFuzzer targets (fuzz/fuzz_*.c): the invariants every reader must
 * keep on any input (no crash, no read out of bounds, and a failure sets a message that names
 * the file), and a way to hand bytes to readers that only take a path. Not a test harness: the
 * regression replayer is tests/test_fuzz_regressions.c. Follows libFuzzer's documented entry
 * point (LLVMFuzzerTestOneInput) and SQLite's test/fuzzcheck.c habit of checking properties. */
#ifndef TERN_FUZZ_H
#define TERN_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tern.h"

/* A broken invariant is a crash as far as libFuzzer is concerned: it saves the input. */
#define FUZZ_REQUIRE(cond, ...)                                                               \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz invariant failed: %s: ", #cond);                            \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, "\n");                                                            \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* A reader that refuses an input must say so and name what it read: a status that is not OK
 * comes with a message containing `label` (out of memory excepted: it names the size instead). */
static inline void fuzz_check_refusal(tern_status st, const char *label) {
    if (st == TERN_OK) return;
    const char *msg = tern_errmsg();
    FUZZ_REQUIRE(strcmp(msg, "no error") != 0, "status %d (%s) without a message", (int)st, tern_status_name(st));
    if (st != TERN_ENOMEM)
        FUZZ_REQUIRE(strstr(msg, label) != NULL, "status %d message does not name '%s': %s", (int)st, label, msg);
}

/* A copy of exactly n bytes (no NUL after it) for readers that take (p, n): AddressSanitizer
 * then catches any read past the end, even one of a single byte. */
static inline char *fuzz_dup(const uint8_t *p, size_t n) {
    char *s = malloc(n ? n : 1);
    if (!s) abort();
    if (n) memcpy(s, p, n);
    return s;
}

/* An in-memory file (memfd) holding the input, reachable by the path /proc/self/fd/N, for
 * readers that take a path. One per process, rewritten on every call. */
static inline const char *fuzz_memfile(const uint8_t *p, size_t n) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("tern-fuzz", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, p + done, n - done, (off_t)done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    return path;
}

static char fuzz_tmp_[96];
static void fuzz_tmp_remove_(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_tmp_);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fuzz_tmp_);
}
/* A folder in memory (/dev/shm) for readers and writers that work on folders; made on the first
 * call and removed when the process exits. */
static inline const char *fuzz_tmpdir(const char *what) {
    if (!fuzz_tmp_[0]) {
        snprintf(fuzz_tmp_, sizeof fuzz_tmp_, "/dev/shm/tern-fuzz-%s-%d", what, (int)getpid());
        if (tern_mkdir_p(fuzz_tmp_) != TERN_OK) {
            fprintf(stderr, "%s\n", tern_errmsg());
            abort();
        }
        atexit(fuzz_tmp_remove_);
    }
    return fuzz_tmp_;
}

/* Splits the input at its first NUL byte: [0, k) and (k, n). Without a NUL the second part is
 * empty. For formats that come as a pair of files (vocab.json + merges.txt). */
static inline void fuzz_split(const uint8_t *p, size_t n, size_t *k) {
    const uint8_t *z = memchr(p, 0, n);
    *k = z ? (size_t)(z - p) : n;
}

#endif
