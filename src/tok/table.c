/* The loaded tokenizer's tables: the byte hash and token lookup every other part uses, id
 * arrays, a token's bytes and their text in GPT-2's files, and freeing. The bottom layer of tok/:
 * table.c, then bpe.c (one thread's encoding), then load.c (files to tables) and encode.c (whole
 * texts and streams); learn.c trains new tokenizers. */
#include "tok/tok_int.h"

#include <stdlib.h>
#include <string.h>

uint64_t tok_hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

int32_t tok_lookup_h(const tern_tok *tok, const uint8_t *p, size_t n, uint64_t h) {
    size_t i = (size_t)h & tok->bytes_mask;
    for (;;) {
        uint32_t v = tok->bytes_map[i];
        if (!v) return -1;
        int32_t id = (int32_t)(v - 1);
        uint64_t a = tok->tok_off[id], b = tok->tok_off[id + 1];
        if (b - a == n && memcmp(tok->blob + a, p, n) == 0) return id;
        i = (i + 1) & tok->bytes_mask;
    }
}

int32_t tok_lookup(const tern_tok *tok, const uint8_t *p, size_t n) { return tok_lookup_h(tok, p, n, tok_hash_bytes(p, n)); }

size_t tok_bytes_to_text(char *buf, const uint8_t *p, size_t n, int json) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tok_byte_char(p[i]);
        if (cp < 0x80) {
            if (json && (cp == '"' || cp == '\\')) buf[k++] = '\\';
            buf[k++] = (char)cp;
        } else {
            buf[k++] = (char)(0xC0 | (cp >> 6));
            buf[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return k;
}

void tern_ids_free(tern_ids *ids) {
    if (!ids) return;
    free(ids->p);
    ids->p = NULL;
    ids->n = ids->cap = 0;
}

tern_status tern_ids_push(tern_ids *ids, const int32_t *p, size_t n) {
    if (n == 0) return TERN_OK;
    if (ids->n + n > ids->cap) {
        size_t cap = ids->cap ? ids->cap : 1024;
        while (cap < ids->n + n) {
            if (cap > SIZE_MAX / 2 / sizeof(int32_t)) return tern_err(TERN_ENOMEM, "token list too long (%zu ids)", ids->n + n);
            cap *= 2;
        }
        int32_t *q = realloc(ids->p, cap * sizeof(int32_t));
        if (!q) return tern_err(TERN_ENOMEM, "out of memory growing a token list to %zu ids", cap);
        ids->p = q;
        ids->cap = cap;
    }
    memcpy(ids->p + ids->n, p, n * sizeof(int32_t));
    ids->n += n;
    return TERN_OK;
}

void tern_tok_free(tern_tok *tok) {
    if (!tok) return;
    free(tok->blob);
    free(tok->tok_off);
    free(tok->bytes_map);
    free(tok->whole);
    free(tok->merges);
    free(tok);
}

size_t tern_tok_vocab_size(const tern_tok *tok) { return tok->n_vocab; }
int32_t tern_tok_eot(const tern_tok *tok) { return tok->eot; }
const uint8_t *tern_tok_hash(const tern_tok *tok) { return tok->hash; }
const uint8_t *tern_tok_file_hash(const tern_tok *tok) { return tok->file_hash; }
int tern_tok_has_hash(const tern_tok *tok, const uint8_t h[TERN_HASH_BYTES]) {
    return !memcmp(tok->hash, h, TERN_HASH_BYTES) || !memcmp(tok->file_hash, h, TERN_HASH_BYTES);
}

const uint8_t *tern_tok_token(const tern_tok *tok, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= tok->n_vocab) return NULL;
    *len = (size_t)(tok->tok_off[id + 1] - tok->tok_off[id]);
    return tok->blob + tok->tok_off[id];
}
