/* tern secure: keys (key files, passphrases through Argon2id, Ed25519 signing keys) and sealed
 * files: chunked XChaCha20-Poly1305 with each chunk bound to its index, to the end of the file
 * and to the file's header and caller-given identity, so that a sealed file can be streamed when
 * written and read at random offsets. It knows nothing of what the files hold. The construction
 * and why it is sound are in docs/SECURITY.md; the bytes in docs/FORMATS.md ("Sealed files").
 * The API follows libsodium's manners: outputs are zeroed on failure, nothing decrypted is
 * released before its tag verifies, keys live in guarded memory and are wiped on free. */
#ifndef TERN_SECURE_H
#define TERN_SECURE_H

#include "tern/core.h"

#define TERN_KEY_BYTES 32          /* a key file holds exactly this many random bytes */
#define TERN_KEY_ID_BYTES 8        /* a key's identifier: a keyed hash of the key, not the key */
#define TERN_KEY_ID_HEX (2 * TERN_KEY_ID_BYTES + 1)
#define TERN_SIGN_SECRET_BYTES 64  /* an Ed25519 secret key file (libsodium's seed || public key) */
#define TERN_SIGN_PUB_BYTES 32     /* an Ed25519 public key file */
#define TERN_SIGN_BYTES 64         /* a detached Ed25519 signature */
#define TERN_PASSPHRASE_MAX 1024   /* longest passphrase accepted, in bytes */

#define TERN_SEAL_MAGIC "TERNSEAL"   /* the first 8 bytes of every sealed file */
#define TERN_SEAL_MAGIC_BYTES 8
#define TERN_SEAL_VERSION 1
#define TERN_SEAL_CHUNK_DEFAULT 65536u      /* plaintext bytes per chunk; chosen by bench_seal */
#define TERN_SEAL_CHUNK_MIN 64u
#define TERN_SEAL_CHUNK_MAX (64u << 20)
#define TERN_SEAL_IDENTITY_MAX 1024         /* bytes of a file's logical identity */
#define TERN_SEAL_TAG_BYTES 16              /* each chunk's Poly1305 tag */

/* ---- keys for sealing ---- */
typedef struct tern_key tern_key; /* opaque; lives in guarded, locked memory; wiped on free */

/* Argon2id cost for passphrase keys. 0, 0 means the default (libsodium's MODERATE: 3 passes,
 * 256 MiB). Readers accept opslimit 1..64 and memlimit 8 KiB..4 GiB from a file's header. */
#define TERN_ARGON2_OPS_DEFAULT 3u
#define TERN_ARGON2_MEM_DEFAULT (256ull << 20)

/* Writes a new random 32-byte key to path with mode 0600 and prints nothing. Refuses to
 * overwrite an existing file (TERN_EINVAL, "<path>: already exists; tern keygen never
 * overwrites a key (remove it first if that is what you mean)"). id_hex (may be NULL) receives
 * the key's identifier in hex. */
tern_status tern_key_generate_file(const char *path, char id_hex[TERN_KEY_ID_HEX]);
/* Loads a key file: exactly 32 bytes, mode with no group or other bits. Messages:
 *   "<path>: cannot open key file: <reason>"                          TERN_ENOTFOUND / TERN_EIO
 *   "<path>: key file has N bytes, expected 32"                       TERN_EFORMAT
 *   "<path>: key file mode is 0644; it must be readable by its owner only (chmod 600 <path>)"
 *                                                                     TERN_EINVAL */
tern_status tern_key_from_file(tern_key **out, const char *path);
/* A key from 32 bytes held by the caller (tests, and keys that arrive by other means). */
tern_status tern_key_from_bytes(tern_key **out, const uint8_t key[TERN_KEY_BYTES]);
/* A passphrase key: the file key is Argon2id13(passphrase, salt, opslimit, memlimit), with a
 * fresh random salt for the files this key seals and the salt in each file's header when it
 * opens one. Derivation is lazy (the first seal or open pays for it) and cached per salt.
 * opslimit/memlimit 0 take the defaults above. */
tern_status tern_key_from_passphrase(tern_key **out, const void *pass, size_t n, uint32_t opslimit, uint64_t memlimit);
/* Reads a passphrase from a file (mode 0600 or stricter, one trailing newline dropped, 1 to
 * 1024 bytes): "<path>: passphrase file is empty", "<path>: passphrase file mode is 0644; ...",
 * "<path>: passphrase is longer than 1024 bytes". */
tern_status tern_key_from_passphrase_file(tern_key **out, const char *path, uint32_t opslimit, uint64_t memlimit);
/* The one function commands share to find their key: --key FILE, else --passphrase-file FILE,
 * else the environment variable TERN_KEY_FILE. Either argument may be NULL. Giving both is
 * TERN_EINVAL ("give --key or --passphrase-file, not both"). With none of the three, returns
 * TERN_OK and *out = NULL: the command works on plaintext files. A failure through the
 * environment variable is prefixed "TERN_KEY_FILE: ". */
tern_status tern_key_load(tern_key **out, const char *key_file, const char *passphrase_file);
void tern_key_free(tern_key *k);
/* 1 for a passphrase key, 0 for a key file's key. */
int tern_key_is_passphrase(const tern_key *k);
/* The identifier (hex) of the key this key object seals with. For a passphrase key this runs
 * the Argon2id derivation for its sealing salt if it has not run yet. */
tern_status tern_key_id(const tern_key *k, char id_hex[TERN_KEY_ID_HEX]);

/* ---- Ed25519 signing keys (the run ledger signs its entries with one) ---- */
typedef struct tern_sign_key tern_sign_key; /* opaque, guarded memory, wiped on free */
/* Writes path (64-byte secret key, mode 0600) and path.pub (32-byte public key, mode 0644).
 * Refuses if either exists. pub_hex (may be NULL) receives the public key in hex. */
tern_status tern_sign_key_generate_files(const char *path, char pub_hex[2 * TERN_SIGN_PUB_BYTES + 1]);
/* Loads a secret key file: 64 bytes, mode 0600, its public half must match its seed.
 * "<path>: signing key file has N bytes, expected 64" (TERN_EFORMAT). */
tern_status tern_sign_key_from_file(tern_sign_key **out, const char *path);
void tern_sign_key_free(tern_sign_key *k);
void tern_sign_key_public(const tern_sign_key *k, uint8_t pub[TERN_SIGN_PUB_BYTES]);
void tern_sign_detached(const tern_sign_key *k, uint8_t sig[TERN_SIGN_BYTES], const void *msg, size_t n);
/* TERN_OK when sig is pub's signature of msg, else TERN_EAUTH (no message set). */
tern_status tern_sign_verify(const uint8_t pub[TERN_SIGN_PUB_BYTES], const uint8_t sig[TERN_SIGN_BYTES], const void *msg,
                             size_t n);
/* Loads a public key file (exactly 32 bytes): "<path>: public key file has N bytes, expected 32". */
tern_status tern_sign_pub_from_file(uint8_t pub[TERN_SIGN_PUB_BYTES], const char *path);

/* ---- recognising sealed files ---- */
/* 1 when the n bytes at p start with the sealed-file magic. */
int tern_sealed_is(const void *p, size_t n);
/* Sets *sealed from a file's first 8 bytes (a file shorter than 8 bytes is not sealed). */
tern_status tern_sealed_probe(const char *path, int *sealed);
/* The rule every reader applies once it knows whether a file is sealed: a sealed file needs a
 * key ("<path>: is sealed; give --key KEYFILE or --passphrase-file FILE, or set TERN_KEY_FILE",
 * TERN_EINVAL), and when a key was given every input must be sealed ("<path>: is not sealed,
 * but a key was given: a sealed run reads only sealed files", TERN_EAUTH), so that a host
 * cannot swap a sealed input for plaintext of its own. */
tern_status tern_secure_check(const char *path, int sealed, const tern_key *key);

/* What a sealed file's header says, read without a key and therefore NOT authenticated: for
 * messages and tools only, never for decisions. */
typedef struct tern_seal_info {
    int version;
    int passphrase;                      /* 1: Argon2id from a passphrase; 0: a key file */
    char key_id[TERN_KEY_ID_HEX];
    uint32_t chunk_size;
    uint64_t plain_size;                 /* implied by the file's size */
    char identity[TERN_SEAL_IDENTITY_MAX + 1];
} tern_seal_info;
tern_status tern_sealed_peek(const char *path, tern_seal_info *info);

/* ---- writing sealed files ----
 * identity is the file's logical name, chosen by the caller and checked by every reader, e.g.
 * "shard train-000003", "data manifest", "run 20250101-ab12 ckpt step 1200 model.safetensors":
 * 1..1024 printable bytes. It is stored in the header in the clear (it is authenticated, not
 * secret). Only sealed bytes are ever written, the temporary file included. */
typedef struct tern_sealer tern_sealer;
/* Starts an atomic write of path (temporary file, then rename on commit). chunk_size 0 takes
 * TERN_SEAL_CHUNK_DEFAULT. key NULL writes the file in plaintext, still atomically, so that a
 * writer has one code path for runs with and without a key (identity is then ignored). */
tern_status tern_seal_open(tern_sealer **out, const char *path, const tern_key *key, const char *identity,
                           size_t chunk_size);
tern_status tern_seal_write(tern_sealer *s, const void *p, size_t n);
/* Seals the last chunk, fsyncs, renames into place and fsyncs the folder; frees s always. */
tern_status tern_seal_commit(tern_sealer *s);
/* Removes the temporary file and frees s; NULL is a no-op. */
void tern_seal_abort(tern_sealer *s);
/* One call: seal (or, key NULL, write plainly) n bytes at p to path atomically. */
tern_status tern_seal_file(const char *path, const tern_key *key, const char *identity, const void *p, size_t n);
/* Seals into memory: *out (malloc'd, free()) holds the sealed image of *out_n bytes. For tests,
 * fuzzing and callers that send sealed bytes elsewhere. key must not be NULL. */
tern_status tern_seal_buffer(uint8_t **out, size_t *out_n, const tern_key *key, const char *identity, const void *p,
                             size_t n, size_t chunk_size);

/* ---- reading sealed files ---- */
/* Plaintext in memory: page-aligned, kept out of core dumps, wiped and unmapped on free. */
typedef struct tern_plain {
    uint8_t *data; /* NULL when size is 0 */
    size_t size;
} tern_plain;
void tern_plain_free(tern_plain *p); /* wipes, frees, and zeroes *p; safe on a zeroed tern_plain */

/* Opens a sealed file for random access. Checks, in this order, and stops at the first failure:
 * the magic and every header field (TERN_EFORMAT); that a key was given (TERN_EINVAL); that the
 * key is the file's ("<path>: sealed with a different key (key id X, expected Y)", or "...a
 * different passphrase..."; TERN_EAUTH); the header's MAC ("<path>: header fails authentication
 * (the file was altered)", TERN_EAUTH); the identity ("<path>: sealed as 'A', expected 'B'",
 * TERN_EAUTH); and the final chunk, which proves the file's length ("<path>: final chunk N fails
 * authentication (the file was truncated, extended or altered)", TERN_EAUTH). The file is
 * mapped, not read; chunks are decrypted only when read. */
typedef struct tern_sealed tern_sealed;
tern_status tern_sealed_open(tern_sealed **out, const char *path, const tern_key *key, const char *identity);
/* The same over a sealed image in memory (borrowed; must outlive the handle); name is used in
 * messages in place of a path. */
tern_status tern_sealed_open_buffer(tern_sealed **out, const void *p, size_t n, const char *name, const tern_key *key,
                                    const char *identity);
uint64_t tern_sealed_size(const tern_sealed *s);  /* plaintext bytes */
uint32_t tern_sealed_chunk_size(const tern_sealed *s);
/* Decrypts [off, off+n) into out, authenticating every chunk it touches. A chunk that fails
 * gives TERN_EAUTH ("<path>: chunk I of N fails authentication (the file was altered, or its
 * chunks reordered, duplicated or dropped)") with out zeroed. Reading past the end is
 * TERN_EINVAL. Keeps the last partly read chunk decrypted, so small sequential reads cost one
 * decryption per chunk. Not thread-safe: one thread at a time per handle. */
tern_status tern_sealed_read(tern_sealed *s, void *out, uint64_t off, size_t n);
void tern_sealed_close(tern_sealed *s); /* wipes keys and cached plaintext; NULL is a no-op */

/* Opens and decrypts a whole sealed file into memory (all chunks authenticated; the chunks are
 * shared among OpenMP threads). On failure *out is zeroed and nothing is returned. */
tern_status tern_unseal_file(tern_plain *out, const char *path, const tern_key *key, const char *identity);
tern_status tern_unseal_buffer(tern_plain *out, const void *p, size_t n, const char *name, const tern_key *key,
                               const char *identity);
/* Whole-file reading for code paths that take sealed and plain files alike: applies
 * tern_secure_check, then unseals a sealed file or reads a plain one. identity is checked for
 * sealed files only. */
tern_status tern_secure_read_file(tern_plain *out, const char *path, const tern_key *key, const char *identity);

/* ---- a check for tests and audits: is there plaintext on disk? ---- */
/* Looks for the n bytes of marker in every regular file under dir (recursively; symbolic links
 * are not followed). *found is NULL when no file holds it, else a malloc'd path of the first
 * file that does (in sorted order). */
tern_status tern_secure_scan_dir(const char *dir, const void *marker, size_t n, char **found);

#endif
