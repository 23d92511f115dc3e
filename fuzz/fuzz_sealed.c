/* libFuzzer target: sealed files (any input tern reads may be sealed) through
 * tern_sealed_open_buffer, tern_sealed_read, tern_unseal_buffer and tern_sealed_peek, with one
 * fixed key. The first input byte picks a mode:
 *   0  the rest is a sealed image, read as it is;
 *   1  the same, but the header's MAC is recomputed first, so that mutated header fields (chunk
 *      size, identity, lengths) get past authentication and reach the body's geometry;
 *   2  the rest says how to seal a plaintext (chunk size, then an edit: none, a flipped byte, a
 *      truncation, bytes appended, two chunks swapped, another identity); the image is sealed
 *      with tern's writer, edited, and opened: an edited image must be refused and an unedited
 *      one must give back exactly the plaintext, at any offset.
 * Not a test of the cryptography. Construction and format: docs/SECURITY.md, docs/FORMATS.md. */
#include "fuzz.h"
#include "secure/secure_int.h"

static const char *name = "fuzz.sealed", *identity = "fuzz identity";
static uint8_t key_bytes[TERN_KEY_BYTES];
static tern_key *key;

static void setup(void) {
    if (key) return;
    for (int i = 0; i < TERN_KEY_BYTES; i++) key_bytes[i] = (uint8_t)(i * 7 + 1);
    FUZZ_REQUIRE(tern_key_from_bytes(&key, key_bytes) == TERN_OK, "key: %s", tern_errmsg());
}

/* Opens img every way tern does; returns the status of the open, and checks the readers agree. */
static tern_status open_all(const uint8_t *img, size_t n, const char *want_identity, tern_plain *plain) {
    memset(plain, 0, sizeof *plain);
    tern_sealed *s = NULL;
    tern_err_clear();
    tern_status st = tern_sealed_open_buffer(&s, img, n, name, key, want_identity);
    fuzz_check_refusal(st, name);
    tern_status st2 = tern_unseal_buffer(plain, img, n, name, key, want_identity);
    fuzz_check_refusal(st2, name);
    if (st != TERN_OK) {
        FUZZ_REQUIRE(st2 != TERN_OK, "open refused (%d) but unseal accepted", (int)st);
        return st;
    }
    uint64_t ps = tern_sealed_size(s);
    if (st2 == TERN_OK) {
        FUZZ_REQUIRE(plain->size == ps, "unseal gave %zu bytes, open says %llu", plain->size, (unsigned long long)ps);
        /* read it all back in odd pieces through the random-access reader */
        uint8_t *buf = malloc(ps ? ps : 1);
        FUZZ_REQUIRE(buf, "malloc");
        uint64_t off = 0, step = 1 + ps / 3;
        while (off < ps) {
            size_t k = (size_t)(ps - off < step ? ps - off : step);
            FUZZ_REQUIRE(tern_sealed_read(s, buf + off, off, k) == TERN_OK, "read [%llu, +%zu): %s", (unsigned long long)off, k,
                         tern_errmsg());
            off += k;
        }
        FUZZ_REQUIRE(!ps || !memcmp(buf, plain->data, ps), "random-access reads differ from unseal");
        free(buf);
    }
    uint8_t b;
    FUZZ_REQUIRE(tern_sealed_read(s, &b, ps, 1) == TERN_EINVAL, "a read past the end was not refused");
    tern_sealed_close(s);
    return st2;
}

/* Mode 1: recompute the MAC of a header that parses, as the key's owner would. */
static void remac(uint8_t *img, size_t n) {
    seal_hdr h;
    if (seal_hdr_parse(&h, img, n, name) != TERN_OK || h.kdf != SEAL_KDF_KEYFILE) return;
    seal_keys ks;
    seal_derive(&ks, key_bytes, h.file_id);
    seal_hdr_mac(img + h.len - SEAL_MAC, &ks, img, h.len - SEAL_MAC);
}

static void tamper(const uint8_t *data, size_t size) {
    if (size < 8) return;
    size_t C = TERN_SEAL_CHUNK_MIN + data[0] % 64; /* small chunks: many of them in a short input */
    int edit = data[1] % 6;
    uint32_t pos = (uint32_t)data[2] | (uint32_t)data[3] << 8 | (uint32_t)data[4] << 16;
    uint8_t val = data[5];
    uint32_t rd_off = (uint32_t)data[6] | (uint32_t)data[7] << 8;
    const uint8_t *pt = data + 8;
    size_t pn = size - 8;
    uint8_t *img = NULL;
    size_t n = 0;
    FUZZ_REQUIRE(tern_seal_buffer(&img, &n, key, identity, pt, pn, C) == TERN_OK, "seal: %s", tern_errmsg());
    uint8_t *ed = malloc(n + 256);
    FUZZ_REQUIRE(ed, "malloc");
    memcpy(ed, img, n);
    size_t en = n;
    const char *want = identity;
    size_t hl = SEAL_FIXED + strlen(identity) + SEAL_MAC, nchunks = (n - hl + C + 15) / (C + 16);
    switch (edit) {
    case 0: break;
    case 1: ed[pos % n] ^= (uint8_t)(val | 1); break;
    case 2: en = pos % n; break;
    case 3: memset(ed + n, val, 1 + val % 255); en = n + 1 + val % 255; break;
    case 4:
        if (nchunks < 3) edit = 0; /* two full chunks are needed */
        else {
            size_t a = pos % (nchunks - 1), b = (a + 1 + val % (nchunks - 2)) % (nchunks - 1);
            if (a == b) edit = 0;
            else {
                uint8_t *t = malloc(C + 16);
                memcpy(t, ed + hl + a * (C + 16), C + 16);
                memcpy(ed + hl + a * (C + 16), ed + hl + b * (C + 16), C + 16);
                memcpy(ed + hl + b * (C + 16), t, C + 16);
                free(t);
            }
        }
        break;
    case 5: want = "fuzz identity 2"; break;
    }
    tern_plain plain;
    tern_status st = open_all(ed, en, want, &plain);
    if (edit == 0) {
        FUZZ_REQUIRE(st == TERN_OK, "an untouched sealed image was refused: %s", tern_errmsg());
        FUZZ_REQUIRE(plain.size == pn && (!pn || !memcmp(plain.data, pt, pn)), "unsealed bytes differ from the plaintext");
        /* one more read at an input-chosen offset and length */
        tern_sealed *s;
        FUZZ_REQUIRE(tern_sealed_open_buffer(&s, ed, en, name, key, identity) == TERN_OK, "reopen");
        size_t o = pn ? rd_off % (pn + 1) : 0, k = pn - o < val ? pn - o : val;
        uint8_t buf[256];
        FUZZ_REQUIRE(tern_sealed_read(s, buf, o, k) == TERN_OK && (!k || !memcmp(buf, pt + o, k)), "read at %zu+%zu", o, k);
        tern_sealed_close(s);
    } else {
        FUZZ_REQUIRE(st != TERN_OK, "an edited sealed image (edit %d) was accepted", edit);
        FUZZ_REQUIRE(st == TERN_EAUTH || st == TERN_EFORMAT, "edit %d gave status %d: %s", edit, (int)st, tern_errmsg());
    }
    tern_plain_free(&plain);
    free(ed);
    free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size < 1) return 0;
    int mode = data[0] % 3;
    data++;
    size--;
    if (mode == 2) {
        tamper(data, size);
        return 0;
    }
    uint8_t *img = (uint8_t *)fuzz_dup(data, size);
    if (mode == 1) remac(img, size);
    tern_plain plain;
    open_all(img, size, identity, &plain);
    tern_plain_free(&plain);
    /* the header as `tern` shows it without a key */
    const char *path = fuzz_memfile(img, size);
    tern_seal_info info;
    tern_err_clear();
    tern_status st = tern_sealed_peek(path, &info);
    fuzz_check_refusal(st, path);
    if (st == TERN_OK) FUZZ_REQUIRE(strlen(info.identity) <= TERN_SEAL_IDENTITY_MAX, "identity");
    free(img);
    return 0;
}
