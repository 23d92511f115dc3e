/* secure/ internals shared by key.c, seal.c and open.c: the parsed sealed-file header, the key
 * schedule (docs/SECURITY.md "The construction") and memory for secrets. Not for use outside
 * src/secure/. */
#ifndef TERN_SECURE_INT_H
#define TERN_SECURE_INT_H

#include "tern/secure.h"

#include <sodium.h>

/* Header bytes before the identity; the header is SEAL_FIXED + id_len + SEAL_MAC bytes. */
#define SEAL_FIXED 88
#define SEAL_MAC 32
#define SEAL_KDF_KEYFILE 1
#define SEAL_KDF_ARGON2ID 2
#define SEAL_CIPHER_XCHACHA 1
#define SEAL_ARGON2_OPS_MAX 64u
#define SEAL_ARGON2_MEM_MIN 8192ull
#define SEAL_ARGON2_MEM_MAX (4ull << 30)
#define SEAL_SALT_BYTES 16
#define SEAL_FILE_ID_BYTES 32
#define SEAL_AD_BYTES (SEAL_MAC + 8 + 1) /* header MAC || LE64(chunk index) || final flag */

/* The header as parsed from (or about to be written to) a file; identity points into the bytes
 * it was parsed from and is not NUL-terminated. */
typedef struct seal_hdr {
    uint16_t version;
    uint16_t id_len;
    uint8_t kdf;
    uint8_t cipher;
    uint32_t chunk_size;
    uint32_t ops;
    uint64_t mem;
    uint8_t salt[SEAL_SALT_BYTES];
    uint8_t key_id[TERN_KEY_ID_BYTES];
    uint8_t file_id[SEAL_FILE_ID_BYTES];
    const char *identity;
    uint8_t mac[SEAL_MAC];
    size_t len; /* total header bytes */
} seal_hdr;

/* Parses and range-checks every field of the header at p (n bytes available). Does not
 * authenticate. name is used in messages. TERN_EFORMAT on any bad field. */
tern_status seal_hdr_parse(seal_hdr *h, const uint8_t *p, size_t n, const char *name);
/* Writes the header's SEAL_FIXED + id_len bytes (everything but the MAC) to out. */
void seal_hdr_encode(uint8_t *out, const seal_hdr *h);

/* The file key of k for a header's kdf, salt and costs, and its identifier. For a key-file key
 * the header must say SEAL_KDF_KEYFILE; for a passphrase key SEAL_KDF_ARGON2ID (else the
 * "sealed with a key file, but a passphrase was given" messages, TERN_EAUTH). Passphrase
 * derivations are cached in k. */
tern_status seal_key_for(const tern_key *k, const seal_hdr *h, const char *name, uint8_t file_key[TERN_KEY_BYTES],
                         uint8_t key_id[TERN_KEY_ID_BYTES]);
/* The kdf fields a new file sealed with k carries (salt and costs for a passphrase key). */
void seal_key_params(const tern_key *k, seal_hdr *h);
/* key_id = first 8 bytes of BLAKE2b-128(key = K, "", personal "tern-seal-kid-v1"). */
void seal_key_id(uint8_t id[TERN_KEY_ID_BYTES], const uint8_t key[TERN_KEY_BYTES]);

/* Per-file subkeys: BLAKE2b-256(key = K, file_id, personal "tern-seal-hdr-v1" / "tern-seal-chk-v1"). */
typedef struct seal_keys {
    uint8_t hdr[32];   /* keys the header MAC */
    uint8_t chunk[32]; /* keys XChaCha20-Poly1305 for every chunk */
} seal_keys;
void seal_derive(seal_keys *ks, const uint8_t file_key[TERN_KEY_BYTES], const uint8_t file_id[SEAL_FILE_ID_BYTES]);
/* MAC over the header's first len bytes (everything before the MAC). */
void seal_hdr_mac(uint8_t mac[SEAL_MAC], const seal_keys *ks, const uint8_t *hdr, size_t len);
/* Chunk i's nonce (LE64(i) then zeros) and associated data (header MAC, LE64(i), final). */
void seal_chunk_nonce_ad(uint8_t nonce[24], uint8_t ad[SEAL_AD_BYTES], const uint8_t hdr_mac[SEAL_MAC], uint64_t i,
                         int final);

/* Memory for plaintext and chunk buffers: anonymous pages kept out of core dumps; wiped before
 * they are unmapped. secure_alloc returns NULL (and sets a TERN_ENOMEM message) on failure; a
 * size of 0 gives NULL with no error. */
void *secure_alloc(size_t n, const char *what);
void secure_free(void *p, size_t n);

/* Checks a secret file's mode: no group or other bits. kind is "key file", "passphrase file"... */
tern_status secure_check_mode(const char *path, int fd, const char *kind);
/* Reads a small secret file (at most max bytes) into out; *n gets its size even when larger. */
tern_status secure_read_secret(const char *path, const char *kind, uint8_t *out, size_t max, size_t *n);

/* Printable identity check: 1..TERN_SEAL_IDENTITY_MAX bytes, none below 0x20 or 0x7f. */
int seal_identity_ok(const char *s, size_t n);

static inline void seal_le16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void seal_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void seal_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t seal_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t seal_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t seal_rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

#endif
