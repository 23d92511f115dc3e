/* Hashing: BLAKE2b-256 through libsodium's crypto_generichash, for shard checksums, manifest
 * and tokenizer identities, and the ledger chain. */
#include "tern/core.h"

#include <sodium.h>
#include <string.h>

_Static_assert(sizeof(tern_hasher) >= sizeof(crypto_generichash_state), "tern_hasher too small");

void tern_hash_init(tern_hasher *h) { crypto_generichash_init((crypto_generichash_state *)h->state, NULL, 0, TERN_HASH_BYTES); }
void tern_hash_update(tern_hasher *h, const void *p, size_t n) {
    crypto_generichash_update((crypto_generichash_state *)h->state, p, n);
}
void tern_hash_final(tern_hasher *h, uint8_t out[TERN_HASH_BYTES]) {
    crypto_generichash_final((crypto_generichash_state *)h->state, out, TERN_HASH_BYTES);
}
void tern_hash(uint8_t out[TERN_HASH_BYTES], const void *p, size_t n) {
    crypto_generichash(out, TERN_HASH_BYTES, p, n, NULL, 0);
}

tern_status tern_hash_file(uint8_t out[TERN_HASH_BYTES], const char *path) {
    tern_map m;
    TERN_TRY(tern_map_file(&m, path));
    tern_hash(out, m.data, m.size);
    tern_unmap(&m);
    return TERN_OK;
}

void tern_hex(char *out, const uint8_t *p, size_t n) {
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int tern_unhex(uint8_t *out, size_t n, const char *hex) {
    if (!hex || strlen(hex) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0) return -1;
        out[i] = (uint8_t)(a * 16 + b);
    }
    return 0;
}
