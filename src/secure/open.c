/* Opening sealed files: header checks, key and identity checks, random-access reads that
 * decrypt only the chunks they touch, and whole-file unsealing. Not the writer (seal.c). Every
 * chunk is authenticated before any of its plaintext is released (libsodium's decrypt_detached
 * checks the tag first and clears its output on failure); on any failure the caller's output is
 * zeroed. The construction is docs/SECURITY.md's. */
#include "secure_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tern_sealed {
    seal_keys ks; /* this struct lives in guarded memory for the keys' sake */
    seal_hdr h;
    char *name;
    tern_map map;        /* owned when opened from a path */
    const uint8_t *data; /* the sealed image */
    size_t size;
    uint64_t n_chunks;
    uint64_t plain_size;
    size_t last_len;     /* plaintext bytes in the final chunk */
    uint8_t *cache;      /* one decrypted chunk (secure_alloc, chunk_size bytes) */
    uint64_t cache_idx;
    int cache_ok;
};

static const char *need_key_msg = "is sealed; give --key KEYFILE or --passphrase-file FILE, or set TERN_KEY_FILE";

tern_status tern_secure_check(const char *path, int sealed, const tern_key *key) {
    if (sealed && !key) return tern_err(TERN_EINVAL, "%s: %s", path, need_key_msg);
    if (!sealed && key)
        return tern_err(TERN_EAUTH, "%s: is not sealed, but a key was given: a sealed run reads only sealed files", path);
    return TERN_OK;
}

tern_status tern_sealed_probe(const char *path, int *sealed) {
    *sealed = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t m[TERN_SEAL_MAGIC_BYTES];
    size_t got = 0;
    while (got < sizeof m) {
        ssize_t r = read(fd, m + got, sizeof m - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return tern_err(TERN_EIO, "%s: cannot read: %s", path, strerror(e));
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    *sealed = tern_sealed_is(m, got);
    return TERN_OK;
}

/* Chunk geometry from the size of the body after the header: every chunk but the last holds C
 * plaintext bytes plus a tag; the last holds 0..C bytes plus a tag. */
static tern_status body_geometry(tern_sealed *s) {
    size_t body = s->size - s->h.len;
    uint64_t C = s->h.chunk_size, stride = C + TERN_SEAL_TAG_BYTES;
    if (body < TERN_SEAL_TAG_BYTES)
        return tern_err(TERN_EAUTH, "%s: truncated: %zu bytes after the header, a chunk needs at least %d", s->name, body,
                        TERN_SEAL_TAG_BYTES);
    s->n_chunks = (body + stride - 1) / stride;
    size_t last = body - (size_t)((s->n_chunks - 1) * stride);
    if (last < TERN_SEAL_TAG_BYTES)
        return tern_err(TERN_EAUTH, "%s: truncated inside chunk %llu (%zu bytes, fewer than its %d-byte tag)", s->name,
                        (unsigned long long)s->n_chunks, last, TERN_SEAL_TAG_BYTES);
    s->last_len = last - TERN_SEAL_TAG_BYTES;
    s->plain_size = (s->n_chunks - 1) * C + s->last_len;
    return TERN_OK;
}

/* Decrypts chunk i into dst (its plaintext length). 0 on success; -1 with dst zeroed. */
static int chunk_open(const tern_sealed *s, uint64_t i, uint8_t *dst) {
    size_t len = i + 1 == s->n_chunks ? s->last_len : s->h.chunk_size;
    const uint8_t *ct = s->data + s->h.len + i * ((uint64_t)s->h.chunk_size + TERN_SEAL_TAG_BYTES);
    uint8_t nonce[24], ad[SEAL_AD_BYTES];
    seal_chunk_nonce_ad(nonce, ad, s->h.mac, i, i + 1 == s->n_chunks);
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(dst, NULL, ct, len, ct + len, ad, sizeof ad, nonce,
                                                               s->ks.chunk);
}

static tern_status chunk_fail(const tern_sealed *s, uint64_t i) {
    if (i + 1 == s->n_chunks)
        return tern_err(TERN_EAUTH, "%s: final chunk %llu of %llu fails authentication (the file was truncated, extended or altered)",
                        s->name, (unsigned long long)(i + 1), (unsigned long long)s->n_chunks);
    return tern_err(TERN_EAUTH,
                    "%s: chunk %llu of %llu fails authentication (the file was altered, or its chunks reordered, duplicated or "
                    "dropped)",
                    s->name, (unsigned long long)(i + 1), (unsigned long long)s->n_chunks);
}

/* Every check up to and including the final chunk; s->data, s->size and s->name are set. */
static tern_status sealed_check(tern_sealed *s, const tern_key *key, const char *identity) {
    TERN_TRY(seal_hdr_parse(&s->h, s->data, s->size, s->name));
    if (!key) return tern_err(TERN_EINVAL, "%s: %s", s->name, need_key_msg);
    TERN_ASSERT(identity);
    uint8_t fk[TERN_KEY_BYTES], kid[TERN_KEY_ID_BYTES];
    TERN_TRY(seal_key_for(key, &s->h, s->name, fk, kid));
    if (sodium_memcmp(kid, s->h.key_id, TERN_KEY_ID_BYTES) != 0) {
        sodium_memzero(fk, sizeof fk);
        char have[TERN_KEY_ID_HEX], want[TERN_KEY_ID_HEX];
        tern_hex(have, s->h.key_id, TERN_KEY_ID_BYTES);
        tern_hex(want, kid, TERN_KEY_ID_BYTES);
        return tern_err(TERN_EAUTH, "%s: sealed with a different %s (key id %s, expected %s)", s->name,
                        tern_key_is_passphrase(key) ? "passphrase" : "key", have, want);
    }
    seal_derive(&s->ks, fk, s->h.file_id);
    sodium_memzero(fk, sizeof fk);
    uint8_t mac[SEAL_MAC];
    seal_hdr_mac(mac, &s->ks, s->data, s->h.len - SEAL_MAC);
    if (crypto_verify_32(mac, s->h.mac) != 0)
        return tern_err(TERN_EAUTH, "%s: header fails authentication (the file was altered)", s->name);
    size_t want_len = strlen(identity);
    if (want_len != s->h.id_len || memcmp(identity, s->h.identity, want_len) != 0)
        return tern_err(TERN_EAUTH, "%s: sealed as '%.*s', expected '%s'", s->name, (int)s->h.id_len, s->h.identity, identity);
    TERN_TRY(body_geometry(s));
    /* The final chunk proves the length: it must authenticate as final at index n-1. */
    s->cache = secure_alloc(s->h.chunk_size, "a chunk of a sealed file");
    if (!s->cache) return TERN_ENOMEM;
    if (chunk_open(s, s->n_chunks - 1, s->cache) != 0) return chunk_fail(s, s->n_chunks - 1);
    s->cache_idx = s->n_chunks - 1;
    s->cache_ok = 1;
    return TERN_OK;
}

static tern_status sealed_new(tern_sealed **out, const char *name) {
    *out = NULL;
    if (sodium_init() < 0) return tern_err(TERN_EIO, "libsodium failed to initialise");
    tern_sealed *s = sodium_malloc(sizeof *s);
    if (!s) return tern_err(TERN_ENOMEM, "out of memory: cannot allocate guarded memory for a sealed file");
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    if (!s->name) {
        sodium_free(s);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    *out = s;
    return TERN_OK;
}

void tern_sealed_close(tern_sealed *s) {
    if (!s) return;
    secure_free(s->cache, s->h.chunk_size);
    tern_unmap(&s->map);
    free(s->name);
    sodium_free(s);
}

tern_status tern_sealed_open_buffer(tern_sealed **out, const void *p, size_t n, const char *name, const tern_key *key,
                                    const char *identity) {
    tern_sealed *s;
    TERN_TRY(sealed_new(&s, name));
    s->data = p;
    s->size = n;
    tern_status st = sealed_check(s, key, identity);
    if (st != TERN_OK) {
        tern_sealed_close(s);
        return st;
    }
    *out = s;
    return TERN_OK;
}

tern_status tern_sealed_open(tern_sealed **out, const char *path, const tern_key *key, const char *identity) {
    tern_sealed *s;
    TERN_TRY(sealed_new(&s, path));
    tern_status st = tern_map_file(&s->map, path);
    if (st == TERN_OK) {
        s->data = s->map.data;
        s->size = s->map.size;
        st = sealed_check(s, key, identity);
    }
    if (st != TERN_OK) {
        tern_sealed_close(s);
        return st;
    }
    *out = s;
    return TERN_OK;
}

uint64_t tern_sealed_size(const tern_sealed *s) { return s->plain_size; }
uint32_t tern_sealed_chunk_size(const tern_sealed *s) { return s->h.chunk_size; }

tern_status tern_sealed_read(tern_sealed *s, void *out, uint64_t off, size_t n) {
    uint64_t end;
    if (n == 0) return TERN_OK;
    if (__builtin_add_overflow(off, (uint64_t)n, &end) || end > s->plain_size) {
        memset(out, 0, n);
        return tern_err(TERN_EINVAL, "%s: read of bytes [%llu, %llu) is past the end (%llu bytes)", s->name,
                        (unsigned long long)off, (unsigned long long)off + n, (unsigned long long)s->plain_size);
    }
    uint8_t *dst = out;
    uint64_t C = s->h.chunk_size;
    for (uint64_t i = off / C; i <= (end - 1) / C; i++) {
        uint64_t c0 = i * C;
        size_t clen = i + 1 == s->n_chunks ? s->last_len : (size_t)C;
        uint64_t a = off > c0 ? off - c0 : 0, b = end - c0 < clen ? end - c0 : clen; /* [a, b) within the chunk */
        uint8_t *to = dst + (c0 + a - off);
        if (s->cache_ok && s->cache_idx == i) {
            memcpy(to, s->cache + a, (size_t)(b - a));
            continue;
        }
        if (a == 0 && b == clen) {
            if (chunk_open(s, i, to) == 0) continue; /* a whole chunk: straight into the output */
        } else {
            s->cache_ok = 0;
            if (chunk_open(s, i, s->cache) == 0) {
                s->cache_idx = i;
                s->cache_ok = 1;
                memcpy(to, s->cache + a, (size_t)(b - a));
                continue;
            }
        }
        sodium_memzero(out, n);
        return chunk_fail(s, i);
    }
    return TERN_OK;
}

/* Decrypts every chunk of an opened file into a new plaintext buffer. */
static tern_status sealed_unseal_all(tern_sealed *s, tern_plain *out) {
    if (s->plain_size > SIZE_MAX) return tern_err(TERN_ENOMEM, "%s: too large for this machine", s->name);
    size_t n = (size_t)s->plain_size;
    uint8_t *p = secure_alloc(n, "the plaintext of a sealed file");
    if (n && !p) return tern_err_wrap(TERN_ENOMEM, "%s", s->name);
    long long bad = -1;
    long long nc = (long long)s->n_chunks;
    if (n) {
        long long first_bad = nc;
#pragma omp parallel for schedule(static) reduction(min : first_bad) if (nc >= 8)
        for (long long i = 0; i < nc; i++)
            if (chunk_open(s, (uint64_t)i, p + (size_t)i * s->h.chunk_size) != 0 && i < first_bad) first_bad = i;
        if (first_bad < nc) bad = first_bad;
    }
    if (bad >= 0) {
        secure_free(p, n);
        return chunk_fail(s, (uint64_t)bad);
    }
    out->data = p;
    out->size = n;
    return TERN_OK;
}

tern_status tern_unseal_buffer(tern_plain *out, const void *p, size_t n, const char *name, const tern_key *key,
                               const char *identity) {
    out->data = NULL;
    out->size = 0;
    tern_sealed *s;
    TERN_TRY(tern_sealed_open_buffer(&s, p, n, name, key, identity));
    tern_status st = sealed_unseal_all(s, out);
    tern_sealed_close(s);
    return st;
}

tern_status tern_unseal_file(tern_plain *out, const char *path, const tern_key *key, const char *identity) {
    out->data = NULL;
    out->size = 0;
    tern_sealed *s;
    TERN_TRY(tern_sealed_open(&s, path, key, identity));
    tern_status st = sealed_unseal_all(s, out);
    tern_sealed_close(s);
    return st;
}

tern_status tern_secure_read_file(tern_plain *out, const char *path, const tern_key *key, const char *identity) {
    out->data = NULL;
    out->size = 0;
    tern_map m;
    TERN_TRY(tern_map_file(&m, path));
    int sealed = tern_sealed_is(m.data, m.size);
    tern_status st = tern_secure_check(path, sealed, key);
    if (st == TERN_OK && sealed) {
        st = tern_unseal_buffer(out, m.data, m.size, path, key, identity);
    } else if (st == TERN_OK && m.size) {
        out->data = secure_alloc(m.size, "a file's contents");
        if (!out->data) st = tern_err_wrap(TERN_ENOMEM, "%s", path);
        else {
            memcpy(out->data, m.data, m.size);
            out->size = m.size;
        }
    }
    tern_unmap(&m);
    return st;
}

tern_status tern_sealed_peek(const char *path, tern_seal_info *info) {
    memset(info, 0, sizeof *info);
    tern_map m;
    TERN_TRY(tern_map_file(&m, path));
    seal_hdr h;
    tern_status st = seal_hdr_parse(&h, m.data, m.size, path);
    if (st == TERN_OK) {
        info->version = h.version;
        info->passphrase = h.kdf == SEAL_KDF_ARGON2ID;
        tern_hex(info->key_id, h.key_id, TERN_KEY_ID_BYTES);
        info->chunk_size = h.chunk_size;
        memcpy(info->identity, h.identity, h.id_len);
        info->identity[h.id_len] = 0;
        size_t body = m.size - h.len, stride = (size_t)h.chunk_size + TERN_SEAL_TAG_BYTES;
        if (body >= TERN_SEAL_TAG_BYTES) {
            size_t nc = (body + stride - 1) / stride, last = body - (nc - 1) * stride;
            if (last >= TERN_SEAL_TAG_BYTES) info->plain_size = (uint64_t)(nc - 1) * h.chunk_size + last - TERN_SEAL_TAG_BYTES;
        }
    }
    tern_unmap(&m);
    return st;
}
