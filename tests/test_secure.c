/* Tests of secure/: sealed-file round trips (empty, small, one chunk exactly, many chunks),
 * random-access reads across chunk boundaries, every tampering the construction must catch
 * (header and body bit flips, truncation, extension, reordered, duplicated and dropped chunks,
 * swapped files, a wrong key or passphrase), key loading with its exact messages, keygen, the
 * no-plaintext-on-disk scan, and Ed25519 signing keys. */
#include "check.h"
#include "tern.h"

#include <sys/stat.h>
#include <unistd.h>

#define SMALL_CHUNK 64 /* tiny chunks make many-chunk files cheap */

static tern_key *test_key(uint8_t fill) {
    uint8_t k[TERN_KEY_BYTES];
    memset(k, fill, sizeof k);
    tern_key *key;
    TERN_ASSERT(tern_key_from_bytes(&key, k) == TERN_OK);
    return key;
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(tern_rng_u64(seed, 1, i) >> 24);
}

static char *key_id(const tern_key *k) {
    static char ids[4][TERN_KEY_ID_HEX];
    static int j;
    char *s = ids[j++ & 3];
    TERN_ASSERT(tern_key_id(k, s) == TERN_OK);
    return s;
}

/* Writes raw bytes to a file (for tampered copies). */
static void put_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    TERN_ASSERT(f);
    if (n) TERN_ASSERT(fwrite(p, 1, n, f) == n);
    fclose(f);
}

static size_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (size_t)sb.st_size : (size_t)-1;
}

/* ---- round trips ---- */

static void roundtrip_one(const tern_key *k, size_t n, size_t chunk, const char *dir) {
    uint8_t *p = malloc(n ? n : 1);
    fill_pattern(p, n, (uint32_t)n);
    char name[64];
    snprintf(name, sizeof name, "rt-%zu-%zu.sealed", n, chunk);
    char *path = tern_path_join(dir, name);
    tern_sealer *w;
    CHECK(tern_seal_open(&w, path, k, "test file", chunk) == TERN_OK, "%s", tern_errmsg());
    /* write in uneven pieces so the writer's buffering is exercised */
    size_t off = 0, piece = 1;
    while (off < n) {
        size_t take = n - off < piece ? n - off : piece;
        CHECK(tern_seal_write(w, p + off, take) == TERN_OK, "%s", tern_errmsg());
        off += take;
        piece = piece * 3 + 1;
    }
    CHECK(tern_seal_commit(w) == TERN_OK, "%s", tern_errmsg());
    /* the image's size is fixed by the format: header + plaintext + one tag per chunk */
    size_t chunks = n == 0 ? 1 : (n + chunk - 1) / chunk;
    size_t expect = 88 + strlen("test file") + 32 + n + 16 * chunks;
    CHECK(file_size(path) == expect, "size %zu, expected %zu (n %zu chunk %zu)", file_size(path), expect, n, chunk);
    tern_plain pl;
    CHECK(tern_unseal_file(&pl, path, k, "test file") == TERN_OK, "%s", tern_errmsg());
    CHECK(pl.size == n && (n == 0 || !memcmp(pl.data, p, n)), "n %zu chunk %zu: round trip differs", n, chunk);
    tern_plain_free(&pl);
    CHECK(pl.data == NULL && pl.size == 0, "plain freed");
    /* the in-memory sealer gives an image of the same size that opens the same way */
    uint8_t *img;
    size_t img_n;
    CHECK(tern_seal_buffer(&img, &img_n, k, "test file", p, n, chunk) == TERN_OK, "%s", tern_errmsg());
    CHECK(img_n == expect, "buffer image %zu bytes, expected %zu", img_n, expect);
    CHECK(tern_unseal_buffer(&pl, img, img_n, "img", k, "test file") == TERN_OK, "%s", tern_errmsg());
    CHECK(pl.size == n && (n == 0 || !memcmp(pl.data, p, n)), "buffer round trip");
    tern_plain_free(&pl);
    free(img);
    free(path);
    free(p);
}

static void test_roundtrip_sizes(void) {
    const char *d = test_tmpdir("secure_rt");
    tern_key *k = test_key(7);
    size_t sizes[] = {0, 1, 63, 64, 65, 127, 128, 129, 1000, 4096 + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) roundtrip_one(k, sizes[i], SMALL_CHUNK, d);
    /* the default chunk: empty, small, exactly one chunk, one byte over, many chunks */
    size_t big[] = {0, 5, TERN_SEAL_CHUNK_DEFAULT, TERN_SEAL_CHUNK_DEFAULT + 1, 9 * TERN_SEAL_CHUNK_DEFAULT + 77};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) roundtrip_one(k, big[i], TERN_SEAL_CHUNK_DEFAULT, d);
    /* one-call sealing with the default chunk, and its plaintext never on disk */
    char *path = tern_path_join(d, "oneshot.sealed");
    const char *msg = "MARKER-plaintext-must-not-reach-disk";
    CHECK(tern_seal_file(path, k, "one shot", msg, strlen(msg)) == TERN_OK, "%s", tern_errmsg());
    tern_seal_info info;
    CHECK(tern_sealed_peek(path, &info) == TERN_OK, "%s", tern_errmsg());
    CHECK(info.version == 1 && !info.passphrase && info.chunk_size == TERN_SEAL_CHUNK_DEFAULT &&
              info.plain_size == strlen(msg) && !strcmp(info.identity, "one shot") && !strcmp(info.key_id, key_id(k)),
          "peek: v%d pass %d chunk %u size %llu id '%s' key %s", info.version, info.passphrase, info.chunk_size,
          (unsigned long long)info.plain_size, info.identity, info.key_id);
    free(path);
    tern_key_free(k);
}

static void test_seal_file_is_atomic_and_sealed_throughout(void) {
    const char *d = test_tmpdir("secure_tmp");
    tern_key *k = test_key(9);
    const char *marker = "PLAINTEXT-MARKER-7f3a";
    char *path = tern_path_join(d, "model.safetensors");
    tern_sealer *w;
    CHECK(tern_seal_open(&w, path, k, "ckpt", SMALL_CHUNK) == TERN_OK, "%s", tern_errmsg());
    for (int i = 0; i < 50; i++) CHECK(tern_seal_write(w, marker, strlen(marker)) == TERN_OK, "%s", tern_errmsg());
    /* mid-write: the temporary file exists, holds sealed bytes only, and the target does not exist yet */
    char *found;
    CHECK(tern_secure_scan_dir(d, marker, strlen(marker), &found) == TERN_OK && !found, "marker found in %s", found);
    CHECK(!tern_path_exists(path), "target visible before commit");
    char out[512];
    CHECK(run_cmd(out, sizeof out, "ls '%s' | grep -c 'model.safetensors.tmp-'", d) == 0 && atoi(out) == 1, "temp: %s", out);
    CHECK(tern_seal_commit(w) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_secure_scan_dir(d, marker, strlen(marker), &found) == TERN_OK && !found, "marker found in %s", found);
    CHECK(run_cmd(out, sizeof out, "ls '%s'", d) == 0 && !strcmp(out, "model.safetensors\n"), "left: %s", out);
    /* the scan does find plaintext where there is some: a plain write (key NULL), in a subfolder */
    char *sub = tern_path_join(d, "sub");
    CHECK(tern_mkdir_p(sub) == TERN_OK, "mkdir");
    char *plain = tern_path_join(sub, "plain.txt");
    CHECK(tern_seal_file(plain, NULL, NULL, marker, strlen(marker)) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_secure_scan_dir(d, marker, strlen(marker), &found) == TERN_OK && found && !strcmp(found, plain),
          "scan found %s", found ? found : "(nothing)");
    free(found);
    /* an aborted sealer leaves nothing behind */
    CHECK(tern_seal_open(&w, path, k, "ckpt", 0) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_seal_write(w, "x", 1) == TERN_OK, "write");
    tern_seal_abort(w);
    tern_seal_abort(NULL);
    CHECK(run_cmd(out, sizeof out, "ls '%s' | wc -l", d) == 0 && atoi(out) == 2, "after abort: %s", out);
    char *missing = tern_path_join(d, "nope");
    CHECK(tern_secure_scan_dir(missing, "x", 1, &found) == TERN_ENOTFOUND, "missing folder");
    free(missing);
    free(plain);
    free(sub);
    free(path);
    tern_key_free(k);
}

static void test_random_access(void) {
    const char *d = test_tmpdir("secure_ra");
    tern_key *k = test_key(3);
    size_t n = 10 * SMALL_CHUNK + 17;
    uint8_t *p = malloc(n), *got = malloc(n);
    fill_pattern(p, n, 42);
    char *path = tern_path_join(d, "shard.sealed");
    tern_sealer *w;
    CHECK(tern_seal_open(&w, path, k, "shard train-000000", SMALL_CHUNK) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_seal_write(w, p, n) == TERN_OK && tern_seal_commit(w) == TERN_OK, "%s", tern_errmsg());
    tern_sealed *s;
    CHECK(tern_sealed_open(&s, path, k, "shard train-000000") == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_sealed_size(s) == n && tern_sealed_chunk_size(s) == SMALL_CHUNK, "size %llu", (unsigned long long)tern_sealed_size(s));
    /* every window whose ends fall on, beside or inside chunk boundaries, in a scrambled order */
    size_t ends[] = {0, 1, 63, 64, 65, 127, 128, 129, 300, 639, 640, 641, 656, 657};
    int bad = 0, tried = 0;
    size_t ne = sizeof ends / sizeof *ends;
    for (size_t x = 0; x < ne * ne; x++) {
        size_t a = ends[(x * 7) % ne], b = ends[(x * 11 + 3) % ne];
        if (a > b) continue;
        memset(got, 0xee, n);
        tried++;
        if (tern_sealed_read(s, got, a, b - a) != TERN_OK || memcmp(got, p + a, b - a)) bad++;
    }
    CHECK(bad == 0 && tried > 50, "%d of %d windows wrong", bad, tried);
    /* sequential small reads go through the one-chunk cache */
    for (size_t off = 0; off < n; off += 5) {
        size_t m = n - off < 5 ? n - off : 5;
        if (tern_sealed_read(s, got + off, off, m) != TERN_OK) bad++;
    }
    CHECK(bad == 0 && !memcmp(got, p, n), "sequential 5-byte reads");
    /* reads past the end are refused, with the output zeroed */
    memset(got, 1, 8);
    CHECK(tern_sealed_read(s, got, n - 3, 4) == TERN_EINVAL, "past end");
    char want[256];
    snprintf(want, sizeof want, "%s: read of bytes [654, 658) is past the end (657 bytes)", path);
    CHECK(!strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    CHECK(got[0] == 0 && got[3] == 0, "zeroed");
    CHECK(tern_sealed_read(s, got, UINT64_MAX, 2) == TERN_EINVAL, "overflowing offset");
    tern_sealed_close(s);
    tern_sealed_close(NULL);
    free(path);
    free(p);
    free(got);
    tern_key_free(k);
}

/* ---- tampering ---- */

/* A sealed image of n bytes with 64-byte chunks, returned with its plaintext. */
static uint8_t *sealed_image(const tern_key *k, const char *identity, size_t n, size_t *img_n) {
    uint8_t *p = malloc(n);
    fill_pattern(p, n, 5);
    uint8_t *img;
    TERN_ASSERT(tern_seal_buffer(&img, img_n, k, identity, p, n, SMALL_CHUNK) == TERN_OK);
    free(p);
    return img;
}

/* Opens a tampered image from a file (both whole and by handle) and checks status and message. */
static void expect_open_fails(const char *path, const uint8_t *img, size_t n, const tern_key *k, const char *identity,
                              tern_status want_st, const char *want_msg) {
    put_file(path, img, n);
    tern_plain pl = {(uint8_t *)1, 1};
    tern_status st = tern_unseal_file(&pl, path, k, identity);
    CHECK(st == want_st, "%s: status %d, expected %d (%s)", want_msg, st, want_st, tern_errmsg());
    CHECK(!strcmp(tern_errmsg(), want_msg), "got      '%s'\n    expected '%s'", tern_errmsg(), want_msg);
    CHECK(pl.data == NULL && pl.size == 0, "output cleared");
}

static void test_tamper_header_and_body(void) {
    const char *d = test_tmpdir("secure_tamper");
    tern_key *k = test_key(1);
    const char *id = "shard train-000001";
    size_t img_n, hl = 88 + strlen(id) + 32;
    uint8_t *img = sealed_image(k, id, 5 * SMALL_CHUNK + 10, &img_n); /* 6 chunks */
    char *path = tern_path_join(d, "f.sealed");
    char msg[512];
    uint8_t *t = malloc(img_n + 200);

    /* a flipped bit in the file id, in the identity, in the MAC: the header MAC catches them */
    size_t header_bytes[] = {56, 60, 88, 88 + 5, hl - 1};
    for (size_t i = 0; i < sizeof header_bytes / sizeof *header_bytes; i++) {
        memcpy(t, img, img_n);
        t[header_bytes[i]] ^= 0x04;
        snprintf(msg, sizeof msg, "%s: header fails authentication (the file was altered)", path);
        expect_open_fails(path, t, img_n, k, id, TERN_EAUTH, msg);
    }
    /* flipped bits in fields the parser checks first */
    memcpy(t, img, img_n);
    t[0] ^= 1;
    snprintf(msg, sizeof msg, "%s: not a sealed file (it does not start with TERNSEAL)", path);
    expect_open_fails(path, t, img_n, k, id, TERN_EFORMAT, msg);
    memcpy(t, img, img_n);
    t[8] ^= 2;
    snprintf(msg, sizeof msg, "%s: sealed-file version 3 is not supported (this tern reads version 1)", path);
    expect_open_fails(path, t, img_n, k, id, TERN_EFORMAT, msg);
    memcpy(t, img, img_n);
    t[16] ^= 0x40; /* chunk size 64 -> 0 */
    snprintf(msg, sizeof msg, "%s: chunk size 0 in the header is out of range (64 to 67108864)", path);
    expect_open_fails(path, t, img_n, k, id, TERN_EFORMAT, msg);
    memcpy(t, img, img_n);
    t[16] ^= 0x80; /* chunk size 64 -> 192: a valid size, but not the one sealed: MAC fails */
    snprintf(msg, sizeof msg, "%s: header fails authentication (the file was altered)", path);
    expect_open_fails(path, t, img_n, k, id, TERN_EAUTH, msg);
    memcpy(t, img, img_n);
    t[12] = 2; /* key derivation claims a passphrase */
    snprintf(msg, sizeof msg, "%s: Argon2id cost in the header is out of range (opslimit 0, memlimit 0)", path);
    expect_open_fails(path, t, img_n, k, id, TERN_EFORMAT, msg);
    memcpy(t, img, img_n);
    t[10] = 0;
    t[11] = 0;
    snprintf(msg, sizeof msg, "%s: identity length 0 in the header is out of range (1 to 1024)", path);
    expect_open_fails(path, t, img_n, k, id, TERN_EFORMAT, msg);
    memcpy(t, img, img_n);
    t[88] = '\n';
    snprintf(msg, sizeof msg, "%s: the identity in the header is not printable text", path);
    expect_open_fails(path, t, img_n, k, id, TERN_EFORMAT, msg);
    memcpy(t, img, img_n);
    t[49] ^= 1; /* the key id: reported as a different key (it is checked before the MAC) */
    char kid[TERN_KEY_ID_HEX], kid2[TERN_KEY_ID_HEX];
    strcpy(kid, key_id(k));
    uint8_t idb[8];
    tern_unhex(idb, 8, kid);
    idb[1] ^= 1;
    tern_hex(kid2, idb, 8);
    snprintf(msg, sizeof msg, "%s: sealed with a different key (key id %s, expected %s)", path, kid2, kid);
    expect_open_fails(path, t, img_n, k, id, TERN_EAUTH, msg);
    snprintf(msg, sizeof msg, "%s: sealed file is truncated: 50 bytes, its header needs at least 121", path);
    expect_open_fails(path, img, 50, k, id, TERN_EFORMAT, msg);
    snprintf(msg, sizeof msg, "%s: sealed file is truncated: 100 bytes, its header needs 138", path);
    expect_open_fails(path, img, 100, k, id, TERN_EFORMAT, msg);

    /* a flipped bit in each chunk's ciphertext, and in each chunk's tag */
    for (int c = 0; c < 6; c++) {
        for (int where = 0; where < 2; where++) {
            memcpy(t, img, img_n);
            size_t at = hl + (size_t)c * (SMALL_CHUNK + 16) + (where ? (c == 5 ? 10 : SMALL_CHUNK) + 3 : 7);
            t[at] ^= 0x10;
            if (c == 5)
                snprintf(msg, sizeof msg,
                         "%s: final chunk 6 of 6 fails authentication (the file was truncated, extended or altered)", path);
            else
                snprintf(msg, sizeof msg,
                         "%s: chunk %d of 6 fails authentication (the file was altered, or its chunks reordered, duplicated "
                         "or dropped)",
                         path, c + 1);
            expect_open_fails(path, t, img_n, k, id, TERN_EAUTH, msg);
        }
    }
    /* random access that touches a bad chunk fails and zeroes the output, while other chunks still read */
    memcpy(t, img, img_n);
    t[hl + 2 * (SMALL_CHUNK + 16) + 1] ^= 1; /* chunk 3 */
    tern_sealed *s;
    CHECK(tern_sealed_open_buffer(&s, t, img_n, "buf", k, id) == TERN_OK, "%s", tern_errmsg());
    uint8_t out[3 * SMALL_CHUNK];
    memset(out, 0x55, sizeof out);
    CHECK(tern_sealed_read(s, out, SMALL_CHUNK + 10, 2 * SMALL_CHUNK) == TERN_EAUTH, "bad chunk read");
    int nonzero = 0;
    for (size_t i = 0; i < 2 * SMALL_CHUNK; i++) nonzero += out[i] != 0;
    CHECK(nonzero == 0, "%d bytes of output left after a failed read", nonzero);
    CHECK(tern_sealed_read(s, out, 0, SMALL_CHUNK + 5) == TERN_OK, "good chunks still read: %s", tern_errmsg());
    tern_sealed_close(s);
    free(t);
    free(img);
    /* whole-file opening shares chunks among threads: it still reports the first bad chunk */
    img = sealed_image(k, id, 30 * SMALL_CHUNK, &img_n);
    img[hl + 25 * (SMALL_CHUNK + 16) + 9] ^= 1;
    snprintf(msg, sizeof msg,
             "%s: chunk 26 of 30 fails authentication (the file was altered, or its chunks reordered, duplicated or dropped)",
             path);
    expect_open_fails(path, img, img_n, k, id, TERN_EAUTH, msg);
    img[hl + 4 * (SMALL_CHUNK + 16) + 60] ^= 1;
    snprintf(msg, sizeof msg,
             "%s: chunk 5 of 30 fails authentication (the file was altered, or its chunks reordered, duplicated or dropped)",
             path);
    expect_open_fails(path, img, img_n, k, id, TERN_EAUTH, msg);
    free(img);
    free(path);
    tern_key_free(k);
}

static void test_truncation_and_chunk_order(void) {
    const char *d = test_tmpdir("secure_order");
    tern_key *k = test_key(2);
    const char *id = "run r1 ckpt step 10 model.safetensors";
    size_t img_n, hl = 88 + strlen(id) + 32, stride = SMALL_CHUNK + 16;
    uint8_t *img = sealed_image(k, id, 4 * SMALL_CHUNK + 30, &img_n); /* 5 chunks, the last of 30 bytes */
    CHECK(img_n == hl + 4 * stride + 46, "image %zu", img_n);
    char *path = tern_path_join(d, "model.safetensors");
    char msg[512];
    uint8_t *t = malloc(img_n + 2 * stride);

    /* truncated at a chunk boundary: the last chunk left was not sealed as final */
    snprintf(msg, sizeof msg, "%s: final chunk 4 of 4 fails authentication (the file was truncated, extended or altered)",
             path);
    expect_open_fails(path, img, hl + 4 * stride, k, id, TERN_EAUTH, msg);
    snprintf(msg, sizeof msg, "%s: final chunk 1 of 1 fails authentication (the file was truncated, extended or altered)",
             path);
    expect_open_fails(path, img, hl + stride, k, id, TERN_EAUTH, msg);
    /* truncated inside a chunk */
    snprintf(msg, sizeof msg, "%s: final chunk 5 of 5 fails authentication (the file was truncated, extended or altered)",
             path);
    expect_open_fails(path, img, img_n - 1, k, id, TERN_EAUTH, msg);
    snprintf(msg, sizeof msg, "%s: truncated inside chunk 5 (15 bytes, fewer than its 16-byte tag)", path);
    expect_open_fails(path, img, hl + 4 * stride + 15, k, id, TERN_EAUTH, msg);
    snprintf(msg, sizeof msg, "%s: truncated: 0 bytes after the header, a chunk needs at least 16", path);
    expect_open_fails(path, img, hl, k, id, TERN_EAUTH, msg);
    /* extended: bytes appended after the final chunk */
    memcpy(t, img, img_n);
    memset(t + img_n, 0, 5);
    snprintf(msg, sizeof msg, "%s: final chunk 5 of 5 fails authentication (the file was truncated, extended or altered)",
             path);
    expect_open_fails(path, t, img_n + 5, k, id, TERN_EAUTH, msg);
    /* the final chunk duplicated at the end */
    memcpy(t, img, img_n);
    memcpy(t + img_n, img + hl + 4 * stride, 46);
    snprintf(msg, sizeof msg, "%s: final chunk 6 of 6 fails authentication (the file was truncated, extended or altered)",
             path);
    expect_open_fails(path, t, img_n + stride, k, id, TERN_EAUTH, msg);

    const char *mid = "%s: chunk %d of %d fails authentication (the file was altered, or its chunks reordered, duplicated or "
                      "dropped)";
    /* chunks 2 and 3 swapped */
    memcpy(t, img, img_n);
    memcpy(t + hl + 1 * stride, img + hl + 2 * stride, stride);
    memcpy(t + hl + 2 * stride, img + hl + 1 * stride, stride);
    snprintf(msg, sizeof msg, mid, path, 2, 5);
    expect_open_fails(path, t, img_n, k, id, TERN_EAUTH, msg);
    /* chunk 1 duplicated over chunk 2 */
    memcpy(t, img, img_n);
    memcpy(t + hl + stride, img + hl, stride);
    snprintf(msg, sizeof msg, mid, path, 2, 5);
    expect_open_fails(path, t, img_n, k, id, TERN_EAUTH, msg);
    /* chunk 2 inserted again after itself (the file grows by a chunk) */
    memcpy(t, img, hl + 2 * stride);
    memcpy(t + hl + 2 * stride, img + hl + stride, stride);
    memcpy(t + hl + 3 * stride, img + hl + 2 * stride, img_n - hl - 2 * stride);
    /* the file is a chunk longer, so the final chunk is looked for at index 5 (where chunk 4 sits) */
    snprintf(msg, sizeof msg, "%s: final chunk 6 of 6 fails authentication (the file was truncated, extended or altered)",
             path);
    expect_open_fails(path, t, img_n + stride, k, id, TERN_EAUTH, msg);
    tern_sealed *s;
    CHECK(tern_sealed_open_buffer(&s, t, img_n + stride, path, k, id) == TERN_EAUTH, "inserted chunk");
    /* chunk 2 dropped */
    memcpy(t, img, hl + stride);
    memcpy(t + hl + stride, img + hl + 2 * stride, img_n - hl - 2 * stride);
    snprintf(msg, sizeof msg, "%s: final chunk 4 of 4 fails authentication (the file was truncated, extended or altered)",
             path);
    expect_open_fails(path, t, img_n - stride, k, id, TERN_EAUTH, msg);
    /* the last chunk but one dropped, and the final chunk moved into its place: the index binds it */
    memcpy(t, img, hl + 3 * stride);
    memcpy(t + hl + 3 * stride, img + hl + 4 * stride, 46);
    snprintf(msg, sizeof msg, "%s: final chunk 4 of 4 fails authentication (the file was truncated, extended or altered)",
             path);
    expect_open_fails(path, t, hl + 3 * stride + 46, k, id, TERN_EAUTH, msg);
    /* the random-access handle reports the same for a read that touches the moved chunk */
    memcpy(t, img, img_n);
    memcpy(t + hl + 1 * stride, img + hl + 2 * stride, stride);
    memcpy(t + hl + 2 * stride, img + hl + 1 * stride, stride);
    CHECK(tern_sealed_open_buffer(&s, t, img_n, path, k, id) == TERN_OK, "%s", tern_errmsg());
    uint8_t out[SMALL_CHUNK];
    CHECK(tern_sealed_read(s, out, 0, SMALL_CHUNK) == TERN_OK, "chunk 1 in place");
    CHECK(tern_sealed_read(s, out, 2 * SMALL_CHUNK + 1, 2) == TERN_EAUTH, "chunk 3 moved");
    snprintf(msg, sizeof msg, mid, path, 3, 5);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    tern_sealed_close(s);
    free(t);
    free(img);
    free(path);
    tern_key_free(k);
}

static void test_swapped_files_and_wrong_key(void) {
    const char *d = test_tmpdir("secure_swap");
    tern_key *k = test_key(4), *other = test_key(5);
    char *a = tern_path_join(d, "train-000003.bin"), *b = tern_path_join(d, "train-000004.bin");
    uint8_t pa[200], pb[200];
    fill_pattern(pa, sizeof pa, 1);
    fill_pattern(pb, sizeof pb, 2);
    CHECK(tern_seal_file(a, k, "shard train-000003", pa, sizeof pa) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_seal_file(b, k, "shard train-000004", pb, sizeof pb) == TERN_OK, "%s", tern_errmsg());
    char out[1024], msg[512];
    CHECK(run_cmd(out, sizeof out, "cd '%s' && mv train-000003.bin x && mv train-000004.bin train-000003.bin && mv x "
                                   "train-000004.bin",
                  d) == 0,
          "swap: %s", out);
    tern_plain pl;
    CHECK(tern_unseal_file(&pl, a, k, "shard train-000003") == TERN_EAUTH, "swapped shard opened");
    snprintf(msg, sizeof msg, "%s: sealed as 'shard train-000004', expected 'shard train-000003'", a);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    /* a checkpoint from another run */
    char *c = tern_path_join(d, "model.safetensors");
    CHECK(tern_seal_file(c, k, "run aaa ckpt step 100 model.safetensors", pa, 10) == TERN_OK, "%s", tern_errmsg());
    tern_sealed *s;
    CHECK(tern_sealed_open(&s, c, k, "run bbb ckpt step 100 model.safetensors") == TERN_EAUTH, "foreign checkpoint");
    snprintf(msg, sizeof msg, "%s: sealed as 'run aaa ckpt step 100 model.safetensors', expected 'run bbb ckpt step 100 model.safetensors'", c);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    /* chunks spliced from a file with the same key and identity but another file id */
    size_t n1, n2;
    uint8_t *i1 = sealed_image(k, "x", 3 * SMALL_CHUNK, &n1), *i2 = sealed_image(k, "x", 3 * SMALL_CHUNK, &n2);
    CHECK(n1 == n2 && memcmp(i1, i2, n1) != 0, "two sealings of the same bytes differ");
    memcpy(i1 + 88 + 1 + 32, i2 + 88 + 1 + 32, SMALL_CHUNK + 16); /* chunk 1 of the other file */
    CHECK(tern_sealed_open_buffer(&s, i1, n1, "spliced", k, "x") == TERN_OK, "%s", tern_errmsg());
    uint8_t o[8];
    CHECK(tern_sealed_read(s, o, 0, 8) == TERN_EAUTH, "spliced chunk accepted");
    tern_sealed_close(s);
    free(i1);
    free(i2);
    /* the wrong key */
    char kid[TERN_KEY_ID_HEX], oid[TERN_KEY_ID_HEX];
    strcpy(kid, key_id(k));
    strcpy(oid, key_id(other));
    CHECK(strcmp(kid, oid) != 0 && strlen(kid) == 16, "key ids %s %s", kid, oid);
    CHECK(tern_unseal_file(&pl, b, other, "shard train-000003") == TERN_EAUTH, "wrong key");
    snprintf(msg, sizeof msg, "%s: sealed with a different key (key id %s, expected %s)", b, kid, oid);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    /* no key at all */
    CHECK(tern_unseal_file(&pl, b, NULL, "shard train-000003") == TERN_EINVAL, "no key");
    snprintf(msg, sizeof msg, "%s: is sealed; give --key KEYFILE or --passphrase-file FILE, or set TERN_KEY_FILE", b);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    /* the right names again open */
    CHECK(tern_unseal_file(&pl, b, k, "shard train-000003") == TERN_OK && pl.size == 200 && !memcmp(pl.data, pa, 200),
          "%s", tern_errmsg());
    tern_plain_free(&pl);
    /* sealing refuses a bad identity */
    CHECK(tern_seal_file(c, k, "", pa, 1) == TERN_EINVAL, "empty identity");
    snprintf(msg, sizeof msg, "%s: identity must be 1 to 1024 printable bytes", c);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    CHECK(tern_seal_file(c, k, "a\tb", pa, 1) == TERN_EINVAL, "tab in identity");
    free(a);
    free(b);
    free(c);
    tern_key_free(k);
    tern_key_free(other);
}

static void test_secure_read_file_rule(void) {
    const char *d = test_tmpdir("secure_rule");
    tern_key *k = test_key(6);
    char *plain = tern_path_join(d, "plain.json"), *sealed = tern_path_join(d, "sealed.json");
    CHECK(tern_write_file_atomic(plain, "{}", 2) == TERN_OK, "write");
    CHECK(tern_seal_file(sealed, k, "manifest", "{}", 2) == TERN_OK, "%s", tern_errmsg());
    int is;
    CHECK(tern_sealed_probe(sealed, &is) == TERN_OK && is == 1, "probe sealed");
    CHECK(tern_sealed_probe(plain, &is) == TERN_OK && is == 0, "probe plain");
    tern_plain pl;
    CHECK(tern_secure_read_file(&pl, plain, NULL, "manifest") == TERN_OK && pl.size == 2 && !memcmp(pl.data, "{}", 2), "plain");
    tern_plain_free(&pl);
    CHECK(tern_secure_read_file(&pl, sealed, k, "manifest") == TERN_OK && pl.size == 2 && !memcmp(pl.data, "{}", 2), "sealed");
    tern_plain_free(&pl);
    char msg[512];
    CHECK(tern_secure_read_file(&pl, plain, k, "manifest") == TERN_EAUTH, "plaintext where sealed expected");
    snprintf(msg, sizeof msg, "%s: is not sealed, but a key was given: a sealed run reads only sealed files", plain);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    CHECK(tern_secure_read_file(&pl, sealed, NULL, "manifest") == TERN_EINVAL, "sealed without key");
    snprintf(msg, sizeof msg, "%s: is sealed; give --key KEYFILE or --passphrase-file FILE, or set TERN_KEY_FILE", sealed);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    CHECK(tern_sealed_open(&(tern_sealed *){NULL}, plain, k, "manifest") == TERN_EFORMAT, "open plain");
    snprintf(msg, sizeof msg, "%s: not a sealed file (it does not start with TERNSEAL)", plain);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    free(plain);
    free(sealed);
    tern_key_free(k);
}

/* ---- passphrases ---- */

static void test_passphrase(void) {
    const char *d = test_tmpdir("secure_pass");
    /* cheap Argon2id costs keep the test fast; the header carries them, so readers need no flag */
    tern_key *kp, *kp2, *wrong, *kf = test_key(8);
    CHECK(tern_key_from_passphrase(&kp, "correct horse", 13, 1, 1 << 20) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_key_is_passphrase(kp) && !tern_key_is_passphrase(kf), "kinds");
    char *path = tern_path_join(d, "tok.sealed");
    const char *text = "vocab and merges";
    CHECK(tern_seal_file(path, kp, "tokenizer vocab.json", text, strlen(text)) == TERN_OK, "%s", tern_errmsg());
    tern_seal_info info;
    CHECK(tern_sealed_peek(path, &info) == TERN_OK && info.passphrase == 1, "peek passphrase");
    /* the same passphrase, loaded anew (another salt for its own writes), opens it */
    CHECK(tern_key_from_passphrase(&kp2, "correct horse", 13, 2, 2 << 20) == TERN_OK, "%s", tern_errmsg());
    tern_plain pl;
    CHECK(tern_unseal_file(&pl, path, kp2, "tokenizer vocab.json") == TERN_OK && pl.size == strlen(text) &&
              !memcmp(pl.data, text, pl.size),
          "%s", tern_errmsg());
    tern_plain_free(&pl);
    /* the wrong passphrase is named as such, with the key ids */
    CHECK(tern_key_from_passphrase(&wrong, "correct horsf", 13, 1, 1 << 20) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_unseal_file(&pl, path, wrong, "tokenizer vocab.json") == TERN_EAUTH, "wrong passphrase");
    char msg[512];
    snprintf(msg, sizeof msg, "%s: sealed with a different passphrase (key id %s, expected ", path, info.key_id);
    CHECK(!strncmp(tern_errmsg(), msg, strlen(msg)), "%s", tern_errmsg());
    CHECK(!strcmp(info.key_id, key_id(kp)), "peeked key id %s is the sealing key's %s", info.key_id, key_id(kp));
    CHECK(strcmp(key_id(kp), key_id(kp2)) != 0, "another salt gives another key id");
    /* a key file where a passphrase sealed, and the reverse */
    CHECK(tern_unseal_file(&pl, path, kf, "tokenizer vocab.json") == TERN_EAUTH, "key file vs passphrase");
    snprintf(msg, sizeof msg, "%s: sealed with a passphrase, but a key file was given", path);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    char *kfile = tern_path_join(d, "kf.sealed");
    CHECK(tern_seal_file(kfile, kf, "x", "y", 1) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_unseal_file(&pl, kfile, kp, "x") == TERN_EAUTH, "passphrase vs key file");
    snprintf(msg, sizeof msg, "%s: sealed with a key file, but a passphrase was given", kfile);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    /* costs out of range are refused */
    tern_key *bad;
    CHECK(tern_key_from_passphrase(&bad, "x", 1, 65, 1 << 20) == TERN_EINVAL && bad == NULL, "ops 65");
    CHECK(!strcmp(tern_errmsg(), "Argon2id cost out of range: opslimit 65 (1 to 64), memlimit 1048576 (8192 to 4294967296 bytes)"),
          "%s", tern_errmsg());
    CHECK(tern_key_from_passphrase(&bad, "", 0, 1, 1 << 20) == TERN_EINVAL, "empty passphrase");
    free(kfile);
    free(path);
    tern_key_free(kp);
    tern_key_free(kp2);
    tern_key_free(wrong);
    tern_key_free(kf);
    tern_key_free(NULL);
}

static void test_passphrase_file(void) {
    const char *d = test_tmpdir("secure_passfile");
    char *pf = tern_path_join(d, "pass"), msg[512];
    put_file(pf, "s3cret words\n", 13);
    chmod(pf, 0600);
    tern_key *a, *b;
    CHECK(tern_key_from_passphrase_file(&a, pf, 1, 1 << 20) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_key_from_passphrase(&b, "s3cret words", 12, 1, 1 << 20) == TERN_OK, "%s", tern_errmsg());
    uint8_t *img;
    size_t n;
    CHECK(tern_seal_buffer(&img, &n, a, "id", "abc", 3, 0) == TERN_OK, "%s", tern_errmsg());
    tern_plain pl;
    CHECK(tern_unseal_buffer(&pl, img, n, "img", b, "id") == TERN_OK && pl.size == 3, "newline dropped: %s", tern_errmsg());
    tern_plain_free(&pl);
    free(img);
    tern_key_free(a);
    tern_key_free(b);
    chmod(pf, 0640);
    CHECK(tern_key_from_passphrase_file(&a, pf, 1, 1 << 20) == TERN_EINVAL, "mode");
    snprintf(msg, sizeof msg, "%s: passphrase file mode is 0640; it must be readable by its owner only (chmod 600 %s)", pf, pf);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    put_file(pf, "\n", 1);
    chmod(pf, 0600);
    CHECK(tern_key_from_passphrase_file(&a, pf, 1, 1 << 20) == TERN_EINVAL, "empty");
    snprintf(msg, sizeof msg, "%s: passphrase file is empty", pf);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    char big[1100];
    memset(big, 'a', sizeof big);
    put_file(pf, big, sizeof big);
    CHECK(tern_key_from_passphrase_file(&a, pf, 1, 1 << 20) == TERN_EINVAL, "long");
    snprintf(msg, sizeof msg, "%s: passphrase is longer than 1024 bytes", pf);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    /* the shared loader takes a passphrase file too (derivation waits until first use) */
    put_file(pf, "pw", 2);
    CHECK(tern_key_load(&a, NULL, pf) == TERN_OK && a && tern_key_is_passphrase(a), "%s", tern_errmsg());
    tern_key_free(a);
    free(pf);
}

/* ---- key files, keygen, the shared loader ---- */

static void test_key_files(void) {
    const char *d = test_tmpdir("secure_keys");
    char *kf = tern_path_join(d, "k"), msg[512];
    char id[TERN_KEY_ID_HEX];
    CHECK(tern_key_generate_file(kf, id) == TERN_OK, "%s", tern_errmsg());
    struct stat sb;
    CHECK(stat(kf, &sb) == 0 && (sb.st_mode & 0777) == 0600 && sb.st_size == 32, "mode %o size %lld", sb.st_mode & 0777,
          (long long)sb.st_size);
    tern_key *k;
    CHECK(tern_key_from_file(&k, kf) == TERN_OK, "%s", tern_errmsg());
    CHECK(!strcmp(key_id(k), id), "id %s vs %s", key_id(k), id);
    tern_key_free(k);
    /* never overwritten */
    char *before, *after;
    size_t nb, na;
    CHECK(tern_read_file(kf, &before, &nb) == TERN_OK, "read");
    CHECK(tern_key_generate_file(kf, NULL) == TERN_EINVAL, "overwrite");
    snprintf(msg, sizeof msg, "%s: already exists; tern keygen never overwrites a key (remove it first if that is what you mean)", kf);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    CHECK(tern_read_file(kf, &after, &na) == TERN_OK && na == nb && !memcmp(before, after, na), "key unchanged");
    free(before);
    free(after);
    /* the loader's messages */
    char *missing = tern_path_join(d, "missing");
    CHECK(tern_key_from_file(&k, missing) == TERN_ENOTFOUND && k == NULL, "missing");
    snprintf(msg, sizeof msg, "%s: cannot open key file: No such file or directory (make one with 'tern keygen -o %s')", missing,
             missing);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    char *shortf = tern_path_join(d, "short");
    put_file(shortf, "0123456789", 10);
    chmod(shortf, 0600);
    CHECK(tern_key_from_file(&k, shortf) == TERN_EFORMAT, "short");
    snprintf(msg, sizeof msg, "%s: key file has 10 bytes, expected 32", shortf);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    chmod(kf, 0644);
    CHECK(tern_key_from_file(&k, kf) == TERN_EINVAL, "mode");
    snprintf(msg, sizeof msg, "%s: key file mode is 0644; it must be readable by its owner only (chmod 600 %s)", kf, kf);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    chmod(kf, 0600);
    /* flag, then the environment, then nothing */
    CHECK(tern_key_load(&k, kf, "x") == TERN_EINVAL && !strcmp(tern_errmsg(), "give --key or --passphrase-file, not both"),
          "%s", tern_errmsg());
    unsetenv("TERN_KEY_FILE");
    CHECK(tern_key_load(&k, NULL, NULL) == TERN_OK && k == NULL, "no key");
    setenv("TERN_KEY_FILE", kf, 1);
    CHECK(tern_key_load(&k, NULL, NULL) == TERN_OK && k && !strcmp(key_id(k), id), "env key");
    tern_key_free(k);
    setenv("TERN_KEY_FILE", missing, 1);
    CHECK(tern_key_load(&k, NULL, NULL) == TERN_ENOTFOUND, "env missing");
    snprintf(msg, sizeof msg,
             "TERN_KEY_FILE: %s: cannot open key file: No such file or directory (make one with 'tern keygen -o %s')", missing,
             missing);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    CHECK(tern_key_load(&k, kf, NULL) == TERN_OK && k, "flag beats env: %s", tern_errmsg());
    tern_key_free(k);
    unsetenv("TERN_KEY_FILE");
    free(missing);
    free(shortf);
    free(kf);
}

static void test_keygen_cli(void) {
    const char *d = test_tmpdir("secure_keygen_cli");
    char out[2048], want[1024];
    int rc = run_cmd(out, sizeof out, "%s keygen -o %s/k", test_tern_bin(), d);
    CHECK(rc == 0 && !strncmp(out, "wrote ", 6) && strstr(out, "(sealing key, mode 0600, key id "), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "stat -c %%a %s/k", d);
    CHECK(rc == 0 && !strcmp(out, "600\n"), "mode %s", out);
    rc = run_cmd(out, sizeof out, "%s keygen -o %s/k", test_tern_bin(), d);
    snprintf(want, sizeof want,
             "tern keygen: %s/k: already exists; tern keygen never overwrites a key (remove it first if that is what you "
             "mean)\n",
             d);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s keygen", test_tern_bin());
    CHECK(rc == 2 && !strcmp(out, "tern keygen: give the key file to write with -o KEYFILE\n"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s keygen -o %s/s --sign", test_tern_bin(), d);
    CHECK(rc == 0 && strstr(out, "(Ed25519 secret key, mode 0600) and"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "stat -c '%%a %%s' %s/s %s/s.pub", d, d);
    CHECK(rc == 0 && !strcmp(out, "600 64\n644 32\n"), "modes: %s", out);
    rc = run_cmd(out, sizeof out, "%s keygen --sign -o %s/s", test_tern_bin(), d);
    CHECK(rc == 1 && strstr(out, "already exists"), "rc %d: %s", rc, out);
    /* a .pub in the way stops it before the secret is written */
    rc = run_cmd(out, sizeof out, "(touch %s/t.pub && %s keygen --sign -o %s/t; ls %s/t)", d, test_tern_bin(), d, d);
    snprintf(want, sizeof want, "tern keygen: %s/t.pub: already exists", d);
    CHECK(!strncmp(out, want, strlen(want)) && strstr(out, "No such file"), "%s", out);
}

static void test_sign_keys(void) {
    const char *d = test_tmpdir("secure_sign");
    char *p = tern_path_join(d, "ledger.key"), *pub = tern_path_join(d, "ledger.key.pub"), msg[512], hex[65];
    CHECK(tern_sign_key_generate_files(p, hex) == TERN_OK, "%s", tern_errmsg());
    tern_sign_key *sk;
    CHECK(tern_sign_key_from_file(&sk, p) == TERN_OK, "%s", tern_errmsg());
    uint8_t pk[32], pk2[32], sig[64];
    tern_sign_key_public(sk, pk);
    CHECK(tern_sign_pub_from_file(pk2, pub) == TERN_OK && !memcmp(pk, pk2, 32), "public key file");
    char h2[65];
    tern_hex(h2, pk, 32);
    CHECK(!strcmp(h2, hex), "pub hex");
    tern_sign_detached(sk, sig, "hello", 5);
    CHECK(tern_sign_verify(pk, sig, "hello", 5) == TERN_OK, "verify");
    CHECK(tern_sign_verify(pk, sig, "hellp", 5) == TERN_EAUTH, "other message");
    sig[3] ^= 1;
    CHECK(tern_sign_verify(pk, sig, "hello", 5) == TERN_EAUTH, "bad signature");
    tern_sign_key_free(sk);
    tern_sign_key_free(NULL);
    /* a sealing key is not a signing key, nor the reverse */
    char *k = tern_path_join(d, "seal.key");
    CHECK(tern_key_generate_file(k, NULL) == TERN_OK, "keygen");
    CHECK(tern_sign_key_from_file(&sk, k) == TERN_EFORMAT, "32-byte signing key");
    snprintf(msg, sizeof msg,
             "%s: signing key file has 32 bytes, expected 64 (is it a sealing key or a .pub file? make a signing key with 'tern "
             "keygen --sign -o FILE')",
             k);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    tern_key *kk;
    CHECK(tern_key_from_file(&kk, p) == TERN_EFORMAT, "64-byte sealing key");
    snprintf(msg, sizeof msg,
             "%s: key file has 64 bytes, expected 32 (this looks like an Ed25519 signing key; sealing needs a key from 'tern "
             "keygen -o FILE')",
             p);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    CHECK(tern_sign_pub_from_file(pk2, p) == TERN_EFORMAT, "pub of 64 bytes");
    snprintf(msg, sizeof msg, "%s: public key file has 64 bytes, expected 32", p);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    /* a corrupted secret key (public half does not match the seed) */
    char *buf;
    size_t n;
    CHECK(tern_read_file(p, &buf, &n) == TERN_OK && n == 64, "read sk");
    buf[40] ^= 1;
    char *bad = tern_path_join(d, "bad.key");
    put_file(bad, buf, n);
    chmod(bad, 0600);
    CHECK(tern_sign_key_from_file(&sk, bad) == TERN_EFORMAT, "corrupt sk");
    snprintf(msg, sizeof msg, "%s: not an Ed25519 secret key (its public half does not match its seed)", bad);
    CHECK(!strcmp(tern_errmsg(), msg), "%s", tern_errmsg());
    free(buf);
    free(bad);
    free(k);
    free(p);
    free(pub);
}

/* A known-answer check of the construction against libsodium called directly (an independent
 * assembly of the same bytes): if seal.c's layout drifted from docs/FORMATS.md, this fails. */
#include <sodium.h>
static void test_construction_matches_spec(void) {
    uint8_t key[32];
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
    tern_key *k;
    CHECK(tern_key_from_bytes(&k, key) == TERN_OK, "key");
    const char *id = "spec";
    uint8_t msg[100];
    fill_pattern(msg, sizeof msg, 9);
    uint8_t *img;
    size_t n;
    CHECK(tern_seal_buffer(&img, &n, k, id, msg, sizeof msg, 64) == TERN_OK, "%s", tern_errmsg());
    size_t hl = 88 + 4 + 32;
    CHECK(n == hl + 64 + 16 + 36 + 16, "size %zu", n);
    /* header fields at their documented offsets */
    CHECK(!memcmp(img, "TERNSEAL", 8) && img[8] == 1 && img[9] == 0 && img[10] == 4 && img[11] == 0 && img[12] == 1 &&
              img[13] == 1 && img[16] == 64 && img[17] == 0 && !memcmp(img + 88, "spec", 4),
          "header layout");
    /* key id: BLAKE2b-128 keyed with K over nothing, personal "tern-seal-kid-v1", first 8 bytes */
    uint8_t kid[16];
    crypto_generichash_blake2b_salt_personal(kid, 16, NULL, 0, key, 32, NULL, (const unsigned char *)"tern-seal-kid-v1");
    CHECK(!memcmp(img + 48, kid, 8), "key id");
    /* subkeys from the file id, the header MAC, then chunk 0 and the final chunk 1 */
    uint8_t kh[32], kc[32], mac[32];
    crypto_generichash_blake2b_salt_personal(kh, 32, img + 56, 32, key, 32, NULL, (const unsigned char *)"tern-seal-hdr-v1");
    crypto_generichash_blake2b_salt_personal(kc, 32, img + 56, 32, key, 32, NULL, (const unsigned char *)"tern-seal-chk-v1");
    crypto_generichash_blake2b(mac, 32, img, hl - 32, kh, 32);
    CHECK(!memcmp(img + hl - 32, mac, 32), "header MAC");
    uint8_t out[64], nonce[24] = {0}, ad[41];
    memcpy(ad, mac, 32);
    memset(ad + 32, 0, 9);
    CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, NULL, img + hl, 64, img + hl + 64, ad, 41, nonce, kc) == 0 &&
              !memcmp(out, msg, 64),
          "chunk 0");
    nonce[0] = 1;
    ad[32] = 1;
    ad[40] = 1;
    CHECK(crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, NULL, img + hl + 80, 36, img + hl + 80 + 36, ad, 41, nonce,
                                                             kc) == 0 &&
              !memcmp(out, msg + 64, 36),
          "final chunk 1");
    free(img);
    tern_key_free(k);
}

int main(void) {
    RUN(test_roundtrip_sizes);
    RUN(test_seal_file_is_atomic_and_sealed_throughout);
    RUN(test_random_access);
    RUN(test_tamper_header_and_body);
    RUN(test_truncation_and_chunk_order);
    RUN(test_swapped_files_and_wrong_key);
    RUN(test_secure_read_file_rule);
    RUN(test_passphrase);
    RUN(test_passphrase_file);
    RUN(test_key_files);
    RUN(test_keygen_cli);
    RUN(test_sign_keys);
    RUN(test_construction_matches_spec);
    return check_exit();
}
