/* Sealing: the sealed-file header (encode, parse), the per-file key schedule, and the streaming
 * writer that seals fixed-size chunks with XChaCha20-Poly1305-IETF into an atomic file or into
 * memory. Not the reader (open.c). The construction is docs/SECURITY.md's; it uses libsodium's
 * crypto_aead_xchacha20poly1305_ietf rather than crypto_secretstream because secretstream's
 * state after a chunk depends on every chunk before it, which rules out random access. */
#include "secure_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- the key schedule ---- */

void seal_derive(seal_keys *ks, const uint8_t file_key[TERN_KEY_BYTES], const uint8_t file_id[SEAL_FILE_ID_BYTES]) {
    static const unsigned char p_hdr[16] = "tern-seal-hdr-v1", p_chk[16] = "tern-seal-chk-v1";
    crypto_generichash_blake2b_salt_personal(ks->hdr, sizeof ks->hdr, file_id, SEAL_FILE_ID_BYTES, file_key,
                                             TERN_KEY_BYTES, NULL, p_hdr);
    crypto_generichash_blake2b_salt_personal(ks->chunk, sizeof ks->chunk, file_id, SEAL_FILE_ID_BYTES, file_key,
                                             TERN_KEY_BYTES, NULL, p_chk);
}

void seal_hdr_mac(uint8_t mac[SEAL_MAC], const seal_keys *ks, const uint8_t *hdr, size_t len) {
    crypto_generichash_blake2b(mac, SEAL_MAC, hdr, len, ks->hdr, sizeof ks->hdr);
}

void seal_chunk_nonce_ad(uint8_t nonce[24], uint8_t ad[SEAL_AD_BYTES], const uint8_t hdr_mac[SEAL_MAC], uint64_t i,
                         int final) {
    memset(nonce, 0, 24);
    seal_le64(nonce, i);
    memcpy(ad, hdr_mac, SEAL_MAC);
    seal_le64(ad + SEAL_MAC, i);
    ad[SEAL_MAC + 8] = final ? 1 : 0;
}

/* ---- the header ---- */

int seal_identity_ok(const char *s, size_t n) {
    if (n == 0 || n > TERN_SEAL_IDENTITY_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) return 0;
    return 1;
}

void seal_hdr_encode(uint8_t *out, const seal_hdr *h) {
    memset(out, 0, SEAL_FIXED);
    memcpy(out, TERN_SEAL_MAGIC, TERN_SEAL_MAGIC_BYTES);
    seal_le16(out + 8, h->version);
    seal_le16(out + 10, h->id_len);
    out[12] = h->kdf;
    out[13] = h->cipher;
    /* 14..15 reserved, zero */
    seal_le32(out + 16, h->chunk_size);
    seal_le32(out + 20, h->ops);
    seal_le64(out + 24, h->mem);
    memcpy(out + 32, h->salt, SEAL_SALT_BYTES);
    memcpy(out + 48, h->key_id, TERN_KEY_ID_BYTES);
    memcpy(out + 56, h->file_id, SEAL_FILE_ID_BYTES);
    memcpy(out + SEAL_FIXED, h->identity, h->id_len);
}

tern_status seal_hdr_parse(seal_hdr *h, const uint8_t *p, size_t n, const char *name) {
    memset(h, 0, sizeof *h);
    if (!tern_sealed_is(p, n)) return tern_err(TERN_EFORMAT, "%s: not a sealed file (it does not start with TERNSEAL)", name);
    if (n < SEAL_FIXED)
        return tern_err(TERN_EFORMAT, "%s: sealed file is truncated: %zu bytes, its header needs at least %d", name, n,
                        SEAL_FIXED + 1 + SEAL_MAC);
    h->version = seal_rd16(p + 8);
    if (h->version != TERN_SEAL_VERSION)
        return tern_err(TERN_EFORMAT, "%s: sealed-file version %u is not supported (this tern reads version %d)", name,
                        h->version, TERN_SEAL_VERSION);
    h->id_len = seal_rd16(p + 10);
    h->kdf = p[12];
    h->cipher = p[13];
    h->chunk_size = seal_rd32(p + 16);
    h->ops = seal_rd32(p + 20);
    h->mem = seal_rd64(p + 24);
    memcpy(h->salt, p + 32, SEAL_SALT_BYTES);
    memcpy(h->key_id, p + 48, TERN_KEY_ID_BYTES);
    memcpy(h->file_id, p + 56, SEAL_FILE_ID_BYTES);
    if (h->id_len == 0 || h->id_len > TERN_SEAL_IDENTITY_MAX)
        return tern_err(TERN_EFORMAT, "%s: identity length %u in the header is out of range (1 to %d)", name, h->id_len,
                        TERN_SEAL_IDENTITY_MAX);
    if (h->kdf != SEAL_KDF_KEYFILE && h->kdf != SEAL_KDF_ARGON2ID)
        return tern_err(TERN_EFORMAT, "%s: unknown key derivation %u in the header (1: key file, 2: Argon2id)", name, h->kdf);
    if (h->cipher != SEAL_CIPHER_XCHACHA)
        return tern_err(TERN_EFORMAT, "%s: unknown cipher %u in the header (1: XChaCha20-Poly1305)", name, h->cipher);
    if (p[14] || p[15]) return tern_err(TERN_EFORMAT, "%s: reserved header bytes 14-15 are not zero", name);
    if (h->chunk_size < TERN_SEAL_CHUNK_MIN || h->chunk_size > TERN_SEAL_CHUNK_MAX)
        return tern_err(TERN_EFORMAT, "%s: chunk size %u in the header is out of range (%u to %u)", name, h->chunk_size,
                        TERN_SEAL_CHUNK_MIN, TERN_SEAL_CHUNK_MAX);
    if (h->kdf == SEAL_KDF_KEYFILE) {
        static const uint8_t zero[SEAL_SALT_BYTES];
        if (h->ops || h->mem || memcmp(h->salt, zero, SEAL_SALT_BYTES))
            return tern_err(TERN_EFORMAT, "%s: a key-file header carries Argon2id parameters", name);
    } else if (h->ops < 1 || h->ops > SEAL_ARGON2_OPS_MAX || h->mem < SEAL_ARGON2_MEM_MIN || h->mem > SEAL_ARGON2_MEM_MAX) {
        return tern_err(TERN_EFORMAT, "%s: Argon2id cost in the header is out of range (opslimit %u, memlimit %llu)", name,
                        h->ops, (unsigned long long)h->mem);
    }
    h->len = (size_t)SEAL_FIXED + h->id_len + SEAL_MAC;
    if (n < h->len)
        return tern_err(TERN_EFORMAT, "%s: sealed file is truncated: %zu bytes, its header needs %zu", name, n, h->len);
    h->identity = (const char *)p + SEAL_FIXED;
    if (!seal_identity_ok(h->identity, h->id_len))
        return tern_err(TERN_EFORMAT, "%s: the identity in the header is not printable text", name);
    memcpy(h->mac, p + SEAL_FIXED + h->id_len, SEAL_MAC);
    return TERN_OK;
}

int tern_sealed_is(const void *p, size_t n) {
    return p && n >= TERN_SEAL_MAGIC_BYTES && memcmp(p, TERN_SEAL_MAGIC, TERN_SEAL_MAGIC_BYTES) == 0;
}

/* ---- the writer ---- */

struct tern_sealer {
    seal_keys ks;           /* first: this struct lives in guarded memory for the keys' sake */
    uint8_t mac[SEAL_MAC];  /* the header's MAC, part of every chunk's associated data */
    int plain;              /* no key: a plain atomic file */
    tern_afile af;          /* file sink (af.f NULL for the memory sink) */
    uint8_t *mem;           /* memory sink: malloc'd sealed bytes */
    size_t mem_n, mem_cap;
    const char *name;       /* for messages */
    uint32_t C;             /* chunk size */
    uint8_t *buf;           /* plaintext not yet sealed, fill <= C bytes (secure_alloc) */
    size_t fill;
    uint8_t *ct;            /* sealed chunks waiting to be written (file sink only) */
    size_t ct_cap, ct_fill; /* a whole number of sealed chunks, about 1 MiB: one write(2) each */
    uint64_t idx;           /* index of the next chunk */
    int failed;
};

static tern_status sink_reserve(tern_sealer *s, size_t more) {
    size_t need;
    if (!tern_add_size(s->mem_n, more, &need)) return tern_err(TERN_ENOMEM, "sealing %s: size overflows", s->name);
    if (need <= s->mem_cap) return TERN_OK;
    size_t cap = s->mem_cap ? s->mem_cap : 4096;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(s->mem, cap);
    if (!p) return tern_err(TERN_ENOMEM, "out of memory sealing %s: %zu bytes", s->name, cap);
    s->mem = p;
    s->mem_cap = cap;
    return TERN_OK;
}

static tern_status sink_put(tern_sealer *s, const void *p, size_t n) {
    if (s->af.f) return tern_afile_write(&s->af, p, n);
    TERN_TRY(sink_reserve(s, n));
    memcpy(s->mem + s->mem_n, p, n);
    s->mem_n += n;
    return TERN_OK;
}

/* Seals len plaintext bytes at src as chunk s->idx and hands them to the sink. */
static tern_status seal_chunk(tern_sealer *s, const uint8_t *src, size_t len, int final) {
    uint8_t nonce[24], ad[SEAL_AD_BYTES];
    seal_chunk_nonce_ad(nonce, ad, s->mac, s->idx, final);
    uint8_t *dst;
    if (s->af.f) {
        if (s->ct_cap - s->ct_fill < len + TERN_SEAL_TAG_BYTES) {
            TERN_TRY(tern_afile_write(&s->af, s->ct, s->ct_fill));
            s->ct_fill = 0;
        }
        dst = s->ct + s->ct_fill;
    } else {
        TERN_TRY(sink_reserve(s, len + TERN_SEAL_TAG_BYTES));
        dst = s->mem + s->mem_n; /* seal in place in the memory sink */
    }
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(dst, dst + len, NULL, src, len, ad, sizeof ad, NULL, nonce,
                                                        s->ks.chunk);
    s->idx++;
    if (s->af.f) {
        s->ct_fill += len + TERN_SEAL_TAG_BYTES;
        if (final) {
            tern_status st = tern_afile_write(&s->af, s->ct, s->ct_fill);
            s->ct_fill = 0;
            return st;
        }
    } else {
        s->mem_n += len + TERN_SEAL_TAG_BYTES;
    }
    return TERN_OK;
}

/* Seals m full, non-final chunks straight from the caller's buffer, several at a time: into the
 * write buffer (file sink) or the image (memory sink), the chunks of each batch shared among
 * OpenMP threads. Each chunk's nonce and associated data depend only on its index, so the
 * result is the same whatever the number of threads. */
static tern_status seal_many(tern_sealer *s, const uint8_t *src, size_t m) {
    size_t C = s->C, stride = C + TERN_SEAL_TAG_BYTES;
    while (m > 0) {
        uint8_t *dst;
        size_t q;
        if (s->af.f) {
            if (s->ct_cap - s->ct_fill < stride) {
                TERN_TRY(tern_afile_write(&s->af, s->ct, s->ct_fill));
                s->ct_fill = 0;
            }
            q = (s->ct_cap - s->ct_fill) / stride;
            dst = s->ct + s->ct_fill;
        } else {
            size_t need;
            if (!tern_mul_size(m, stride, &need)) return tern_err(TERN_ENOMEM, "sealing %s: size overflows", s->name);
            TERN_TRY(sink_reserve(s, need));
            q = m;
            dst = s->mem + s->mem_n;
        }
        if (q > m) q = m;
        const uint8_t *mac = s->mac, *key = s->ks.chunk;
        uint64_t idx = s->idx;
        long long qq = (long long)q;
#pragma omp parallel for schedule(static) if (qq >= 4)
        for (long long j = 0; j < qq; j++) {
            uint8_t nonce[24], ad[SEAL_AD_BYTES];
            uint8_t *d = dst + (size_t)j * stride;
            seal_chunk_nonce_ad(nonce, ad, mac, idx + (uint64_t)j, 0);
            crypto_aead_xchacha20poly1305_ietf_encrypt_detached(d, d + C, NULL, src + (size_t)j * C, C, ad, sizeof ad, NULL,
                                                                nonce, key);
        }
        s->idx += q;
        if (s->af.f) s->ct_fill += q * stride;
        else s->mem_n += q * stride;
        src += q * C;
        m -= q;
    }
    return TERN_OK;
}

static void sealer_release(tern_sealer *s) {
    if (s->af.f) tern_afile_abort(&s->af);
    free(s->mem);
    secure_free(s->buf, s->C);
    secure_free(s->ct, s->ct_cap);
    sodium_free(s);
}

/* Makes a sealer; path NULL means the memory sink. */
static tern_status sealer_new(tern_sealer **out, const char *path, const tern_key *key, const char *identity,
                              size_t chunk_size) {
    *out = NULL;
    if (sodium_init() < 0) return tern_err(TERN_EIO, "libsodium failed to initialise");
    const char *name = path ? path : "sealed buffer";
    if (!key && !path) return tern_err(TERN_EINVAL, "sealing into memory needs a key");
    size_t id_len = identity ? strlen(identity) : 0;
    if (key) {
        if (!identity || !seal_identity_ok(identity, id_len))
            return tern_err(TERN_EINVAL, "%s: identity must be 1 to %d printable bytes", name, TERN_SEAL_IDENTITY_MAX);
        if (chunk_size == 0) chunk_size = TERN_SEAL_CHUNK_DEFAULT;
        if (chunk_size < TERN_SEAL_CHUNK_MIN || chunk_size > TERN_SEAL_CHUNK_MAX)
            return tern_err(TERN_EINVAL, "%s: chunk size %zu is out of range (%u to %u)", name, chunk_size,
                            TERN_SEAL_CHUNK_MIN, TERN_SEAL_CHUNK_MAX);
    }
    tern_sealer *s = sodium_malloc(sizeof *s);
    if (!s) return tern_err(TERN_ENOMEM, "out of memory: cannot allocate guarded memory for a sealer");
    memset(s, 0, sizeof *s);
    s->name = name;
    tern_status st = TERN_OK;
    if (path) {
        st = tern_afile_open(&s->af, path);
        if (st == TERN_OK) s->name = s->af.path;
    }
    if (st == TERN_OK && !key) {
        s->plain = 1;
        *out = s;
        return TERN_OK;
    }
    if (st == TERN_OK) {
        s->C = (uint32_t)chunk_size;
        s->buf = secure_alloc(s->C, "a sealing buffer");
        if (!s->buf) st = TERN_ENOMEM;
        if (st == TERN_OK && path) {
            size_t stride = (size_t)s->C + TERN_SEAL_TAG_BYTES, k = (1u << 20) / stride;
            s->ct_cap = (k ? k : 1) * stride;
            s->ct = secure_alloc(s->ct_cap, "a sealing buffer");
            if (!s->ct) st = TERN_ENOMEM;
        }
    }
    uint8_t *hdr = NULL;
    if (st == TERN_OK) {
        seal_hdr h;
        memset(&h, 0, sizeof h);
        h.version = TERN_SEAL_VERSION;
        h.id_len = (uint16_t)id_len;
        h.cipher = SEAL_CIPHER_XCHACHA;
        h.chunk_size = s->C;
        h.identity = identity;
        seal_key_params(key, &h);
        randombytes_buf(h.file_id, sizeof h.file_id);
        uint8_t fk[TERN_KEY_BYTES];
        st = seal_key_for(key, &h, s->name, fk, h.key_id);
        if (st == TERN_OK) {
            seal_derive(&s->ks, fk, h.file_id);
            size_t hl = SEAL_FIXED + id_len;
            hdr = malloc(hl + SEAL_MAC);
            if (!hdr) st = tern_err(TERN_ENOMEM, "out of memory");
            else {
                seal_hdr_encode(hdr, &h);
                seal_hdr_mac(s->mac, &s->ks, hdr, hl);
                memcpy(hdr + hl, s->mac, SEAL_MAC);
                st = sink_put(s, hdr, hl + SEAL_MAC);
            }
        }
        sodium_memzero(fk, sizeof fk);
    }
    free(hdr);
    if (st != TERN_OK) {
        sealer_release(s);
        return st;
    }
    *out = s;
    return TERN_OK;
}

tern_status tern_seal_open(tern_sealer **out, const char *path, const tern_key *key, const char *identity,
                           size_t chunk_size) {
    TERN_ASSERT(path);
    return sealer_new(out, path, key, identity, chunk_size);
}

tern_status tern_seal_write(tern_sealer *s, const void *p, size_t n) {
    if (s->failed) return tern_err(TERN_EIO, "%s: an earlier write failed", s->name);
    tern_status st = TERN_OK;
    if (s->plain) {
        st = tern_afile_write(&s->af, p, n);
        if (st != TERN_OK) s->failed = 1;
        return st;
    }
    const uint8_t *src = p;
    while (n > 0 && st == TERN_OK) {
        if (s->fill == s->C) {
            /* more data follows, so the buffered chunk is not the last */
            st = seal_chunk(s, s->buf, s->C, 0);
            s->fill = 0;
        } else if (s->fill == 0 && n > s->C) {
            /* whole chunks straight from the caller's buffer, leaving at least one byte, so that
             * none of them can be the last chunk */
            size_t m = (n - 1) / s->C;
            st = seal_many(s, src, m);
            src += m * s->C;
            n -= m * s->C;
        } else {
            size_t take = s->C - s->fill < n ? s->C - s->fill : n;
            memcpy(s->buf + s->fill, src, take);
            s->fill += take;
            src += take;
            n -= take;
        }
    }
    if (st != TERN_OK) s->failed = 1;
    return st;
}

/* Seals the final chunk (the buffered rest, possibly empty) and drops the buffers. */
static tern_status seal_finish(tern_sealer *s) {
    if (s->failed) return tern_err(TERN_EIO, "%s: an earlier write failed", s->name);
    if (s->plain) return TERN_OK;
    return seal_chunk(s, s->buf, s->fill, 1);
}

tern_status tern_seal_commit(tern_sealer *s) {
    tern_status st = seal_finish(s);
    if (st == TERN_OK) st = tern_afile_commit(&s->af); /* frees af's fields in every case */
    sealer_release(s);
    return st;
}

void tern_seal_abort(tern_sealer *s) {
    if (s) sealer_release(s);
}

tern_status tern_seal_file(const char *path, const tern_key *key, const char *identity, const void *p, size_t n) {
    tern_sealer *s;
    TERN_TRY(tern_seal_open(&s, path, key, identity, 0));
    tern_status st = tern_seal_write(s, p, n);
    if (st != TERN_OK) {
        tern_seal_abort(s);
        return st;
    }
    return tern_seal_commit(s);
}

tern_status tern_seal_buffer(uint8_t **out, size_t *out_n, const tern_key *key, const char *identity, const void *p,
                             size_t n, size_t chunk_size) {
    *out = NULL;
    *out_n = 0;
    TERN_ASSERT(key);
    tern_sealer *s;
    TERN_TRY(sealer_new(&s, NULL, key, identity, chunk_size));
    /* reserve the whole image: header + one tag per chunk + the plaintext */
    size_t chunks = n / s->C + 1, total;
    if (!tern_mul_size(chunks, TERN_SEAL_TAG_BYTES, &total) || !tern_add_size(total, n, &total)) {
        sealer_release(s);
        return tern_err(TERN_ENOMEM, "sealing %zu bytes: size overflows", n);
    }
    tern_status st = sink_reserve(s, total);
    if (st == TERN_OK) st = tern_seal_write(s, p, n);
    if (st == TERN_OK) st = seal_finish(s);
    if (st == TERN_OK) {
        *out = s->mem;
        *out_n = s->mem_n;
        s->mem = NULL;
    }
    sealer_release(s);
    return st;
}
