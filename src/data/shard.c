/* Token shards: the parser (from bytes, so a map, decrypted bytes or a fuzzer can feed it) and
 * the atomic writer. Not the loader (loader.c) nor the manifest (manifest.c). The layout is in
 * docs/FORMATS.md "Token shards"; like llm.c's .bin shards, but with a checksum and exact sizes. */
#include "tern/data.h"
#include "tern/secure.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

tern_status tern_shard_parse(tern_shard_view *out, const uint8_t *p, size_t n, const char *name, int verify) {
    memset(out, 0, sizeof *out);
    if (n < TERN_SHARD_HEADER_BYTES)
        return tern_err(TERN_EFORMAT, "%s: %zu bytes, shorter than a shard header (%d bytes)", name, n, TERN_SHARD_HEADER_BYTES);
    if (memcmp(p, TERN_SHARD_MAGIC, 8) != 0) {
        if (memcmp(p, "TERNSEAL", 8) == 0)
            return tern_err(TERN_EFORMAT, "%s: a sealed file, where a plain token shard was expected", name);
        return tern_err(TERN_EFORMAT, "%s: not a tern token shard (the first 8 bytes are not \"%s\")", name, TERN_SHARD_MAGIC);
    }
    uint32_t version = rd32(p + 8), bpt = rd32(p + 12);
    uint64_t vocab = rd64(p + 16), count = rd64(p + 24);
    if (version != TERN_SHARD_VERSION)
        return tern_err(TERN_EFORMAT, "%s: shard format version %u; this tern reads version %d", name, version, TERN_SHARD_VERSION);
    if (vocab < 1 || vocab > ((uint64_t)1 << 31))
        return tern_err(TERN_EFORMAT, "%s: vocabulary size %llu in the header is out of range", name, (unsigned long long)vocab);
    if (bpt != tern_shard_bytes_per_token((size_t)vocab))
        return tern_err(TERN_EFORMAT, "%s: %u bytes per token in the header, but a vocabulary of %llu needs %u", name, bpt,
                        (unsigned long long)vocab, tern_shard_bytes_per_token((size_t)vocab));
    if (count > (SIZE_MAX - TERN_SHARD_HEADER_BYTES) / bpt)
        return tern_err(TERN_EFORMAT, "%s: the header says %llu tokens, more than a file of %zu bytes holds", name,
                        (unsigned long long)count, n);
    size_t body = (size_t)count * bpt;
    if (body + TERN_SHARD_HEADER_BYTES != n)
        return tern_err(TERN_EFORMAT, "%s: the header says %llu tokens (%zu bytes with the header), but the file has %zu bytes", name,
                        (unsigned long long)count, body + TERN_SHARD_HEADER_BYTES, n);
    out->tokens = p + TERN_SHARD_HEADER_BYTES;
    out->n_tokens = count;
    out->bytes_per_token = bpt;
    out->vocab_size = vocab;
    memcpy(out->checksum, p + 32, TERN_HASH_BYTES);
    if (!verify) return TERN_OK;
    /* hash and range-check in blocks, so each block is read from memory once */
    tern_hasher h;
    tern_hash_init(&h);
    const size_t blk = (size_t)1 << 20;
    uint32_t maxtok = 0;
    uint64_t maxat = 0;
    for (size_t off = 0; off < body; off += blk) {
        size_t k = body - off < blk ? body - off : blk;
        tern_hash_update(&h, out->tokens + off, k);
        const uint8_t *q = out->tokens + off;
        size_t m = k / bpt;
        uint32_t mx = 0;
        if (bpt == 2)
            for (size_t i = 0; i < m; i++) {
                uint32_t v = (uint32_t)q[2 * i] | (uint32_t)q[2 * i + 1] << 8;
                mx = v > mx ? v : mx;
            }
        else
            for (size_t i = 0; i < m; i++) {
                uint32_t v = rd32(q + 4 * i);
                mx = v > mx ? v : mx;
            }
        if (mx >= vocab && mx > maxtok) {
            maxtok = mx;
            for (size_t i = 0; i < m; i++)
                if (tern_shard_token(out, off / bpt + i) == mx) {
                    maxat = off / bpt + i;
                    break;
                }
        }
        if (maxtok >= vocab) break;
    }
    uint8_t sum[TERN_HASH_BYTES];
    tern_hash_final(&h, sum);
    if (maxtok >= vocab)
        return tern_err(TERN_EFORMAT, "%s: token %llu is %u, outside the vocabulary of %llu", name, (unsigned long long)maxat, maxtok,
                        (unsigned long long)vocab);
    if (memcmp(sum, out->checksum, TERN_HASH_BYTES) != 0) {
        char a[2 * TERN_HASH_BYTES + 1], b[2 * TERN_HASH_BYTES + 1];
        tern_hex(a, out->checksum, TERN_HASH_BYTES);
        tern_hex(b, sum, TERN_HASH_BYTES);
        return tern_err(TERN_EFORMAT, "%s: the tokens do not match the header's checksum (header %.16s..., tokens %.16s...): the file is damaged",
                        name, a, b);
    }
    return TERN_OK;
}

/* ---- writer ---- */

/* With a key the shard is built in memory and sealed whole at close (a sealed stream cannot go
 * back to rewrite its header); memory is bounded by the tokens per shard. Without one it is
 * streamed to a temporary file and the header written last. */
struct tern_shard_writer {
    tern_afile af;
    const tern_key *key;
    char *path;
    char *identity;
    uint8_t *mem;     /* sealed shards: header + tokens so far */
    size_t mem_n, mem_cap;
    size_t vocab;
    uint32_t bpt;
    uint64_t n;
    tern_hasher h;
    size_t bn;
    uint8_t buf[1 << 16];
};

static void writer_free(tern_shard_writer *w) {
    if (w->mem) {
        sodium_memzero(w->mem, w->mem_cap);
        free(w->mem);
    }
    free(w->path);
    free(w->identity);
    free(w);
}

static tern_status mem_append(tern_shard_writer *w, const void *p, size_t n) {
    if (n > w->mem_cap - w->mem_n) {
        size_t cap = w->mem_cap ? w->mem_cap : 1 << 16;
        while (cap - w->mem_n < n) {
            if (cap > SIZE_MAX / 2) return tern_err(TERN_ENOMEM, "%s: shard too large to build in memory", w->path);
            cap *= 2;
        }
        /* grown by copying, so that no plaintext is left behind in freed memory */
        uint8_t *q = malloc(cap);
        if (!q) return tern_err(TERN_ENOMEM, "out of memory building %s (lower --shard-tokens)", w->path);
        if (w->mem_n) memcpy(q, w->mem, w->mem_n);
        if (w->mem) {
            sodium_memzero(w->mem, w->mem_cap);
            free(w->mem);
        }
        w->mem = q;
        w->mem_cap = cap;
    }
    memcpy(w->mem + w->mem_n, p, n);
    w->mem_n += n;
    return TERN_OK;
}

tern_status tern_shard_writer_open(tern_shard_writer **out, const char *path, size_t vocab_size, const tern_key *key,
                                       const char *identity) {
    *out = NULL;
    if (vocab_size < 1 || vocab_size > ((size_t)1 << 31))
        return tern_err(TERN_EINVAL, "%s: vocabulary size %zu is out of range", path, vocab_size);
    tern_shard_writer *w = calloc(1, sizeof *w);
    if (!w) return tern_err(TERN_ENOMEM, "out of memory");
    w->key = key;
    w->path = strdup(path);
    w->identity = key && identity ? strdup(identity) : NULL;
    if (!w->path || (key && !w->identity)) {
        writer_free(w);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    w->vocab = vocab_size;
    w->bpt = tern_shard_bytes_per_token(vocab_size);
    tern_hash_init(&w->h);
    uint8_t zero[TERN_SHARD_HEADER_BYTES] = {0}; /* the header is written at close */
    tern_status st;
    if (key) {
        st = mem_append(w, zero, sizeof zero);
    } else {
        st = tern_afile_open(&w->af, path);
        if (st == TERN_OK) {
            st = tern_afile_write(&w->af, zero, sizeof zero);
            if (st != TERN_OK) tern_afile_abort(&w->af);
        }
    }
    if (st != TERN_OK) {
        writer_free(w);
        return st;
    }
    *out = w;
    return TERN_OK;
}

static tern_status writer_flush(tern_shard_writer *w) {
    if (!w->bn) return TERN_OK;
    tern_hash_update(&w->h, w->buf, w->bn);
    tern_status st = w->key ? mem_append(w, w->buf, w->bn) : tern_afile_write(&w->af, w->buf, w->bn);
    sodium_memzero(w->buf, w->bn);
    w->bn = 0;
    return st;
}

tern_status tern_shard_writer_add(tern_shard_writer *w, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= w->vocab)
            return tern_err(TERN_EINVAL, "%s: token id %d is outside the vocabulary of %zu", w->path, (int)ids[i], w->vocab);
        if (w->bn + 4 > sizeof w->buf) TERN_TRY(writer_flush(w));
        uint32_t v = (uint32_t)ids[i];
        w->buf[w->bn] = (uint8_t)v;
        w->buf[w->bn + 1] = (uint8_t)(v >> 8);
        if (w->bpt == 4) {
            w->buf[w->bn + 2] = (uint8_t)(v >> 16);
            w->buf[w->bn + 3] = (uint8_t)(v >> 24);
        }
        w->bn += w->bpt;
    }
    w->n += n;
    return TERN_OK;
}

uint64_t tern_shard_writer_count(const tern_shard_writer *w) { return w->n; }

void tern_shard_writer_abort(tern_shard_writer *w) {
    if (!w) return;
    if (!w->key) tern_afile_abort(&w->af);
    sodium_memzero(w->buf, sizeof w->buf);
    writer_free(w);
}

tern_status tern_shard_writer_close(tern_shard_writer *w, uint64_t *n_tokens, uint8_t checksum[TERN_HASH_BYTES]) {
    tern_status st = writer_flush(w);
    uint8_t hdr[TERN_SHARD_HEADER_BYTES] = {0};
    memcpy(hdr, TERN_SHARD_MAGIC, 8);
    wr32(hdr + 8, TERN_SHARD_VERSION);
    wr32(hdr + 12, w->bpt);
    wr64(hdr + 16, w->vocab);
    wr64(hdr + 24, w->n);
    tern_hash_final(&w->h, hdr + 32);
    if (w->key) {
        if (st == TERN_OK) {
            memcpy(w->mem, hdr, sizeof hdr);
            st = tern_seal_file(w->path, w->key, w->identity, w->mem, w->mem_n);
        }
        if (st == TERN_OK) {
            if (n_tokens) *n_tokens = w->n;
            if (checksum) memcpy(checksum, hdr + 32, TERN_HASH_BYTES);
        }
        writer_free(w);
        return st;
    }
    if (st == TERN_OK && (fflush(w->af.f) != 0 || fseek(w->af.f, 0, SEEK_SET) != 0))
        st = tern_err(TERN_EIO, "%s: cannot go back to write the header", w->af.path);
    if (st == TERN_OK) st = tern_afile_write(&w->af, hdr, sizeof hdr);
    if (st != TERN_OK) {
        tern_shard_writer_abort(w);
        return st;
    }
    if (n_tokens) *n_tokens = w->n;
    if (checksum) memcpy(checksum, hdr + 32, TERN_HASH_BYTES);
    st = tern_afile_commit(&w->af);
    writer_free(w);
    return st;
}
