/* Tests of core/: atomic writes, maps, hashing against a published BLAKE2b vector, the RNG's
 * purity and distribution, and error messages. */
#include "check.h"
#include "tern.h"

#include <sys/stat.h>
#include <unistd.h>

static void test_atomic_write_and_read(void) {
    const char *d = test_tmpdir("core_atomic");
    char *p = tern_path_join(d, "f.bin");
    CHECK(tern_write_file_atomic(p, "hello", 5) == TERN_OK, "%s", tern_errmsg());
    char *buf;
    size_t n;
    CHECK(tern_read_file(p, &buf, &n) == TERN_OK && n == 5 && !memcmp(buf, "hello", 5), "read back");
    free(buf);
    /* an aborted write leaves the old content and no temporary file */
    tern_afile af;
    CHECK(tern_afile_open(&af, p) == TERN_OK, "open");
    tern_afile_write(&af, "xx", 2);
    tern_afile_abort(&af);
    CHECK(tern_read_file(p, &buf, &n) == TERN_OK && n == 5, "old content kept");
    free(buf);
    char out[256];
    CHECK(run_cmd(out, sizeof out, "ls '%s' | wc -l", d) == 0 && atoi(out) == 1, "no temporary left: %s", out);
    tern_map m;
    CHECK(tern_map_file(&m, p) == TERN_OK && m.size == 5 && m.data[4] == 'o', "map");
    tern_unmap(&m);
    free(p);
}

static void test_missing_file_message(void) {
    char *buf;
    size_t n;
    tern_status st = tern_read_file("/nonexistent/x.json", &buf, &n);
    CHECK(st == TERN_ENOTFOUND, "status %d", st);
    CHECK(!strcmp(tern_errmsg(), "/nonexistent/x.json: cannot open: No such file or directory"), "%s", tern_errmsg());
    tern_map m;
    CHECK(tern_map_file(&m, "/nonexistent/y") == TERN_ENOTFOUND, "map missing");
}

static void test_blake2b_vector(void) {
    /* BLAKE2b-256 of the empty string, from RFC 7693's reference implementation. */
    uint8_t h[32];
    char hex[65];
    tern_hash(h, "", 0);
    tern_hex(hex, h, 32);
    CHECK(!strcmp(hex, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"), "%s", hex);
    /* streaming equals one-shot */
    tern_hasher s;
    tern_hash_init(&s);
    tern_hash_update(&s, "ab", 2);
    tern_hash_update(&s, "c", 1);
    uint8_t h2[32], h3[32];
    tern_hash_final(&s, h2);
    tern_hash(h3, "abc", 3);
    CHECK(!memcmp(h2, h3, 32), "streaming");
    uint8_t back[32];
    CHECK(tern_unhex(back, 32, hex) == 0 && !memcmp(back, h, 32), "unhex");
    CHECK(tern_unhex(back, 32, "zz") == -1, "bad hex refused");
}

static void test_rng(void) {
    CHECK(tern_rng_u64(1, 2, 3) == tern_rng_u64(1, 2, 3), "pure");
    CHECK(tern_rng_u64(1, 2, 3) != tern_rng_u64(1, 2, 4), "counter matters");
    CHECK(tern_rng_u64(1, 2, 3) != tern_rng_u64(2, 2, 3), "seed matters");
    double s = 0, s2 = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = tern_rng_normal(42, 7, (uint64_t)i);
        s += x;
        s2 += x * x;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK(fabs(mean) < 0.01 && fabs(var - 1) < 0.02, "normal mean %g var %g", mean, var);
    uint64_t c = 0;
    int hist[10] = {0};
    for (int i = 0; i < 100000; i++) hist[tern_rng_below(3, 4, &c, 10)]++;
    for (int k = 0; k < 10; k++) CHECK(abs(hist[k] - 10000) < 500, "bucket %d: %d", k, hist[k]);
}

static void test_alloc_failure_message(void) {
    void *p;
    tern_status st = tern_alloc(&p, (size_t)1 << 62, "the test buffer");
    CHECK(st == TERN_ENOMEM && p == NULL, "status %d", st);
    CHECK(strstr(tern_errmsg(), "the test buffer needs 4611686018427387904 bytes") != NULL, "%s", tern_errmsg());
}

/* From 4 MiB on, buffers are 2 MiB-aligned (where the platform offers huge pages) and still
 * zeroed to their end; TERN_HUGEPAGES=0 and smaller buffers keep 64-byte alignment; a size that
 * overflows when rounded is refused by name. */
static void test_alloc_alignment(void) {
    const size_t big = ((size_t)5 << 20) + 3;
    unsigned char *p = NULL;
    CHECK(tern_alloc((void **)&p, big, "a large buffer") == TERN_OK && p, "%s", tern_errmsg());
#ifdef __linux__
    CHECK(((uintptr_t)p & (((uintptr_t)2 << 20) - 1)) == 0, "a 5 MiB buffer at %p is not 2 MiB-aligned", (void *)p);
#endif
    size_t nonzero = 0;
    for (size_t i = 0; p && i < big; i++) nonzero += p[i] != 0;
    CHECK(nonzero == 0, "%zu bytes of a fresh buffer are not zero", nonzero);
    tern_free(p);
    void *r = tern_alloc_raw(big), *small = tern_alloc_raw(100);
    CHECK(r && small && ((uintptr_t)small & 63) == 0, "raw buffers %p %p", r, small);
#ifdef __linux__
    CHECK(((uintptr_t)r & (((uintptr_t)2 << 20) - 1)) == 0, "a raw 5 MiB buffer at %p is not 2 MiB-aligned", r);
#endif
    tern_free(r), tern_free(small);
    setenv("TERN_HUGEPAGES", "0", 1);
    CHECK(tern_alloc((void **)&p, big, "a large buffer") == TERN_OK && p && ((uintptr_t)p & 63) == 0, "%s", tern_errmsg());
    tern_free(p);
    unsetenv("TERN_HUGEPAGES");
    CHECK(tern_alloc((void **)&p, SIZE_MAX - 10, "the odd buffer") == TERN_ENOMEM && !p, "an overflowing size was not refused");
    CHECK(strstr(tern_errmsg(), "cannot allocate 18446744073709551605 bytes for the odd buffer: size overflows") != NULL, "%s",
          tern_errmsg());
    CHECK(tern_alloc_raw(SIZE_MAX - 10) == NULL, "an overflowing raw size was not refused");
}

int main(void) {
    RUN(test_atomic_write_and_read);
    RUN(test_missing_file_message);
    RUN(test_blake2b_vector);
    RUN(test_rng);
    RUN(test_alloc_failure_message);
    RUN(test_alloc_alignment);
    return check_exit();
}
