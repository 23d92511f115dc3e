/* Keys: key files (32 random bytes, mode 0600), passphrase keys (Argon2id13, derived lazily and
 * cached per salt), Ed25519 signing keys, and the one loader every command shares. Not the
 * sealing itself (seal.c, open.c). Follows libsodium's key-handling advice: keys in
 * sodium_malloc'd (guarded, locked) memory, compared in constant time, wiped on free. */
#include "secure_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_CACHE_SLOTS 4

typedef struct key_cache {
    int valid;
    uint8_t salt[SEAL_SALT_BYTES];
    uint32_t ops;
    uint64_t mem;
    uint8_t key[TERN_KEY_BYTES];
    uint8_t id[TERN_KEY_ID_BYTES];
} key_cache;

struct tern_key {
    int pass;                      /* 0: key file; 1: passphrase */
    uint8_t key[TERN_KEY_BYTES];   /* key file's key */
    uint8_t id[TERN_KEY_ID_BYTES]; /* its identifier */
    uint8_t pw[TERN_PASSPHRASE_MAX];
    size_t pw_n;
    uint32_t ops;                    /* costs and salt for the files this key seals */
    uint64_t mem;
    uint8_t wsalt[SEAL_SALT_BYTES];
    pthread_mutex_t mu;              /* guards the cache: opens may run on several threads */
    key_cache cache[KEY_CACHE_SLOTS];
    unsigned next;
};

struct tern_sign_key {
    uint8_t sk[TERN_SIGN_SECRET_BYTES];
    uint8_t pk[TERN_SIGN_PUB_BYTES];
};

static tern_status sodium_ready(void) {
    if (sodium_init() < 0) return tern_err(TERN_EIO, "libsodium failed to initialise");
    return TERN_OK;
}

/* ---- memory for secrets ---- */

void *secure_alloc(size_t n, const char *what) {
    if (n == 0) return NULL;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        tern_err(TERN_ENOMEM, "out of memory: %s needs %zu bytes (%.1f MiB)", what, n, (double)n / (1024.0 * 1024.0));
        return NULL;
    }
    /* Best effort, each: keep plaintext out of core dumps; back large buffers with huge pages
     * and fault them in with one call rather than one fault per page (bench_seal measures the
     * difference on whole-file opening). */
    (void)madvise(p, n, MADV_DONTDUMP);
    if (n >= (2u << 20)) (void)madvise(p, n, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
    (void)madvise(p, n, MADV_POPULATE_WRITE);
#endif
    return p;
}

void secure_free(void *p, size_t n) {
    if (!p) return;
    sodium_memzero(p, n);
    munmap(p, n);
}

void tern_plain_free(tern_plain *p) {
    if (!p) return;
    secure_free(p->data, p->size);
    p->data = NULL;
    p->size = 0;
}

/* ---- secret files ---- */

tern_status secure_check_mode(const char *path, int fd, const char *kind) {
    struct stat st;
    if (fstat(fd, &st) != 0) return tern_err(TERN_EIO, "%s: cannot stat %s: %s", path, kind, strerror(errno));
    if (!S_ISREG(st.st_mode)) return tern_err(TERN_EINVAL, "%s: %s is not a regular file", path, kind);
    if (st.st_mode & 077)
        return tern_err(TERN_EINVAL, "%s: %s mode is %04o; it must be readable by its owner only (chmod 600 %s)", path, kind,
                        (unsigned)(st.st_mode & 07777), path);
    return TERN_OK;
}

tern_status secure_read_secret(const char *path, const char *kind, uint8_t *out, size_t max, size_t *n) {
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && !strcmp(kind, "key file"))
            return tern_err(TERN_ENOTFOUND, "%s: cannot open key file: %s (make one with 'tern keygen -o %s')", path,
                            strerror(e), path);
        return tern_err(e == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open %s: %s", path, kind, strerror(e));
    }
    tern_status st = secure_check_mode(path, fd, kind);
    if (st != TERN_OK) {
        close(fd);
        return st;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return tern_err(TERN_EIO, "%s: cannot stat %s: %s", path, kind, strerror(errno));
    }
    *n = (size_t)sb.st_size;
    if (*n > max) {
        close(fd);
        return TERN_OK; /* the caller reports the size */
    }
    size_t got = 0;
    while (got < *n) {
        ssize_t r = read(fd, out + got, *n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            sodium_memzero(out, max);
            close(fd);
            return tern_err(TERN_EIO, "%s: cannot read %s: %s", path, kind, r == 0 ? "file shrank" : strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    return TERN_OK;
}

/* Creates path with the given mode and contents; never replaces an existing file (O_EXCL). */
static tern_status write_new_file(const char *path, const void *p, size_t n, mode_t mode, const char *what) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            return tern_err(TERN_EINVAL,
                            "%s: already exists; tern keygen never overwrites a key (remove it first if that is what you mean)",
                            path);
        return tern_err(TERN_EIO, "%s: cannot create %s: %s", path, what, strerror(errno));
    }
    tern_status st = TERN_OK;
    if (fchmod(fd, mode) != 0) st = tern_err(TERN_EIO, "%s: cannot set mode of %s: %s", path, what, strerror(errno));
    size_t put = 0;
    while (st == TERN_OK && put < n) {
        ssize_t w = write(fd, (const uint8_t *)p + put, n - put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) st = tern_err(TERN_EIO, "%s: cannot write %s: %s", path, what, strerror(errno));
        else put += (size_t)w;
    }
    if (st == TERN_OK && fsync(fd) != 0) st = tern_err(TERN_EIO, "%s: fsync of %s failed: %s", path, what, strerror(errno));
    if (close(fd) != 0 && st == TERN_OK) st = tern_err(TERN_EIO, "%s: close of %s failed: %s", path, what, strerror(errno));
    if (st != TERN_OK) {
        unlink(path);
        return st;
    }
    char *d = strdup(path);
    if (!d) return tern_err(TERN_ENOMEM, "out of memory");
    st = tern_fsync_dir(dirname(d));
    free(d);
    return st;
}

/* ---- sealing keys ---- */

void seal_key_id(uint8_t id[TERN_KEY_ID_BYTES], const uint8_t key[TERN_KEY_BYTES]) {
    static const unsigned char personal[16] = "tern-seal-kid-v1";
    uint8_t full[16];
    crypto_generichash_blake2b_salt_personal(full, sizeof full, NULL, 0, key, TERN_KEY_BYTES, NULL, personal);
    memcpy(id, full, TERN_KEY_ID_BYTES);
    sodium_memzero(full, sizeof full);
}

static tern_status key_new(tern_key **out) {
    *out = NULL;
    TERN_TRY(sodium_ready());
    tern_key *k = sodium_malloc(sizeof *k);
    if (!k) return tern_err(TERN_ENOMEM, "out of memory: cannot allocate guarded memory for a key");
    memset(k, 0, sizeof *k);
    if (pthread_mutex_init(&k->mu, NULL) != 0) {
        sodium_free(k);
        return tern_err(TERN_ENOMEM, "cannot initialise a key's lock");
    }
    *out = k;
    return TERN_OK;
}

void tern_key_free(tern_key *k) {
    if (!k) return;
    pthread_mutex_destroy(&k->mu);
    sodium_free(k); /* wipes before it frees */
}

tern_status tern_key_from_bytes(tern_key **out, const uint8_t key[TERN_KEY_BYTES]) {
    TERN_TRY(key_new(out));
    memcpy((*out)->key, key, TERN_KEY_BYTES);
    seal_key_id((*out)->id, key);
    return TERN_OK;
}

tern_status tern_key_from_file(tern_key **out, const char *path) {
    *out = NULL;
    TERN_TRY(sodium_ready());
    uint8_t buf[TERN_KEY_BYTES];
    size_t n;
    TERN_TRY(secure_read_secret(path, "key file", buf, sizeof buf, &n));
    if (n != TERN_KEY_BYTES) {
        sodium_memzero(buf, sizeof buf);
        if (n == TERN_SIGN_SECRET_BYTES)
            return tern_err(TERN_EFORMAT,
                            "%s: key file has %zu bytes, expected 32 (this looks like an Ed25519 signing key; sealing needs "
                            "a key from 'tern keygen -o FILE')",
                            path, n);
        return tern_err(TERN_EFORMAT, "%s: key file has %zu bytes, expected 32", path, n);
    }
    tern_status st = tern_key_from_bytes(out, buf);
    sodium_memzero(buf, sizeof buf);
    return st;
}

static tern_status check_costs(uint32_t ops, uint64_t mem) {
    if (ops < 1 || ops > SEAL_ARGON2_OPS_MAX || mem < SEAL_ARGON2_MEM_MIN || mem > SEAL_ARGON2_MEM_MAX)
        return tern_err(TERN_EINVAL, "Argon2id cost out of range: opslimit %u (1 to %u), memlimit %llu (8192 to %llu bytes)",
                        ops, SEAL_ARGON2_OPS_MAX, (unsigned long long)mem, (unsigned long long)SEAL_ARGON2_MEM_MAX);
    return TERN_OK;
}

tern_status tern_key_from_passphrase(tern_key **out, const void *pass, size_t n, uint32_t opslimit, uint64_t memlimit) {
    *out = NULL;
    if (opslimit == 0) opslimit = TERN_ARGON2_OPS_DEFAULT;
    if (memlimit == 0) memlimit = TERN_ARGON2_MEM_DEFAULT;
    TERN_TRY(check_costs(opslimit, memlimit));
    if (n == 0) return tern_err(TERN_EINVAL, "passphrase is empty");
    if (n > TERN_PASSPHRASE_MAX) return tern_err(TERN_EINVAL, "passphrase is longer than %d bytes", TERN_PASSPHRASE_MAX);
    TERN_TRY(key_new(out));
    tern_key *k = *out;
    k->pass = 1;
    memcpy(k->pw, pass, n);
    k->pw_n = n;
    k->ops = opslimit;
    k->mem = memlimit;
    randombytes_buf(k->wsalt, sizeof k->wsalt);
    return TERN_OK;
}

tern_status tern_key_from_passphrase_file(tern_key **out, const char *path, uint32_t opslimit, uint64_t memlimit) {
    *out = NULL;
    TERN_TRY(sodium_ready());
    uint8_t *buf = sodium_malloc(TERN_PASSPHRASE_MAX + 2);
    if (!buf) return tern_err(TERN_ENOMEM, "out of memory: cannot allocate guarded memory for a passphrase");
    size_t n;
    /* One byte of slack for the trailing newline, one more to see that it is too long. */
    tern_status st = secure_read_secret(path, "passphrase file", buf, TERN_PASSPHRASE_MAX + 2, &n);
    if (st == TERN_OK) {
        if (n > TERN_PASSPHRASE_MAX + 2) n = TERN_PASSPHRASE_MAX + 2; /* not read; only the size matters */
        else if (n && buf[n - 1] == '\n') {
            n--;
            if (n && buf[n - 1] == '\r') n--;
        }
        if (n == 0) st = tern_err(TERN_EINVAL, "%s: passphrase file is empty", path);
        else if (n > TERN_PASSPHRASE_MAX)
            st = tern_err(TERN_EINVAL, "%s: passphrase is longer than %d bytes", path, TERN_PASSPHRASE_MAX);
        else {
            st = tern_key_from_passphrase(out, buf, n, opslimit, memlimit);
            if (st != TERN_OK) st = tern_err_wrap(st, "%s", path);
        }
    }
    sodium_free(buf);
    return st;
}

tern_status tern_key_load(tern_key **out, const char *key_file, const char *passphrase_file) {
    *out = NULL;
    if (key_file && passphrase_file) return tern_err(TERN_EINVAL, "give --key or --passphrase-file, not both");
    if (key_file) return tern_key_from_file(out, key_file);
    if (passphrase_file) return tern_key_from_passphrase_file(out, passphrase_file, 0, 0);
    const char *env = getenv("TERN_KEY_FILE");
    if (env && *env) {
        tern_status st = tern_key_from_file(out, env);
        if (st != TERN_OK) return tern_err_wrap(st, "TERN_KEY_FILE");
    }
    return TERN_OK;
}

int tern_key_is_passphrase(const tern_key *k) { return k && k->pass; }

/* The Argon2id key for (salt, ops, mem), from the cache or derived (and cached). */
static tern_status pass_derive(const tern_key *kc, const uint8_t salt[SEAL_SALT_BYTES], uint32_t ops, uint64_t mem,
                               uint8_t key[TERN_KEY_BYTES], uint8_t id[TERN_KEY_ID_BYTES]) {
    tern_key *k = (tern_key *)kc; /* the cache is mutable state behind a const handle, guarded by mu */
    tern_status st = TERN_OK;
    pthread_mutex_lock(&k->mu);
    key_cache *hit = NULL;
    for (int i = 0; i < KEY_CACHE_SLOTS; i++) {
        key_cache *c = &k->cache[i];
        if (c->valid && c->ops == ops && c->mem == mem && !sodium_memcmp(c->salt, salt, SEAL_SALT_BYTES)) hit = c;
    }
    if (!hit) {
        hit = &k->cache[k->next++ % KEY_CACHE_SLOTS];
        hit->valid = 0;
        if (crypto_pwhash(hit->key, TERN_KEY_BYTES, (const char *)k->pw, k->pw_n, salt, ops, (size_t)mem,
                          crypto_pwhash_ALG_ARGON2ID13) != 0) {
            st = tern_err(TERN_ENOMEM, "Argon2id could not run: it needs %.0f MiB of memory", (double)mem / (1024.0 * 1024.0));
        } else {
            memcpy(hit->salt, salt, SEAL_SALT_BYTES);
            hit->ops = ops;
            hit->mem = mem;
            seal_key_id(hit->id, hit->key);
            hit->valid = 1;
        }
    }
    if (st == TERN_OK) {
        memcpy(key, hit->key, TERN_KEY_BYTES);
        memcpy(id, hit->id, TERN_KEY_ID_BYTES);
    }
    pthread_mutex_unlock(&k->mu);
    return st;
}

void seal_key_params(const tern_key *k, seal_hdr *h) {
    if (k->pass) {
        h->kdf = SEAL_KDF_ARGON2ID;
        memcpy(h->salt, k->wsalt, SEAL_SALT_BYTES);
        h->ops = k->ops;
        h->mem = k->mem;
    } else {
        h->kdf = SEAL_KDF_KEYFILE;
        memset(h->salt, 0, SEAL_SALT_BYTES);
        h->ops = 0;
        h->mem = 0;
    }
}

tern_status seal_key_for(const tern_key *k, const seal_hdr *h, const char *name, uint8_t file_key[TERN_KEY_BYTES],
                         uint8_t key_id[TERN_KEY_ID_BYTES]) {
    if (!k->pass) {
        if (h->kdf != SEAL_KDF_KEYFILE)
            return tern_err(TERN_EAUTH, "%s: sealed with a passphrase, but a key file was given", name);
        memcpy(file_key, k->key, TERN_KEY_BYTES);
        memcpy(key_id, k->id, TERN_KEY_ID_BYTES);
        return TERN_OK;
    }
    if (h->kdf != SEAL_KDF_ARGON2ID) return tern_err(TERN_EAUTH, "%s: sealed with a key file, but a passphrase was given", name);
    return pass_derive(k, h->salt, h->ops, h->mem, file_key, key_id);
}

tern_status tern_key_id(const tern_key *k, char id_hex[TERN_KEY_ID_HEX]) {
    uint8_t id[TERN_KEY_ID_BYTES];
    if (k->pass) {
        uint8_t key[TERN_KEY_BYTES];
        TERN_TRY(pass_derive(k, k->wsalt, k->ops, k->mem, key, id));
        sodium_memzero(key, sizeof key);
    } else {
        memcpy(id, k->id, sizeof id);
    }
    tern_hex(id_hex, id, TERN_KEY_ID_BYTES);
    return TERN_OK;
}

tern_status tern_key_generate_file(const char *path, char id_hex[TERN_KEY_ID_HEX]) {
    TERN_TRY(sodium_ready());
    uint8_t key[TERN_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    tern_status st = write_new_file(path, key, sizeof key, 0600, "key file");
    if (st == TERN_OK && id_hex) {
        uint8_t id[TERN_KEY_ID_BYTES];
        seal_key_id(id, key);
        tern_hex(id_hex, id, sizeof id);
    }
    sodium_memzero(key, sizeof key);
    return st;
}

/* ---- signing keys ---- */

tern_status tern_sign_key_generate_files(const char *path, char pub_hex[2 * TERN_SIGN_PUB_BYTES + 1]) {
    TERN_TRY(sodium_ready());
    size_t n = strlen(path);
    char *pub_path = malloc(n + 5);
    if (!pub_path) return tern_err(TERN_ENOMEM, "out of memory");
    memcpy(pub_path, path, n);
    memcpy(pub_path + n, ".pub", 5);
    struct stat sb;
    tern_status st = TERN_OK;
    /* Refuse before writing anything when either file exists; O_EXCL below still guards races. */
    if (lstat(path, &sb) == 0 || lstat(pub_path, &sb) == 0)
        st = tern_err(TERN_EINVAL,
                      "%s: already exists; tern keygen never overwrites a key (remove it first if that is what you mean)",
                      lstat(path, &sb) == 0 ? path : pub_path);
    if (st == TERN_OK) {
        tern_sign_key *k = sodium_malloc(sizeof *k);
        if (!k) st = tern_err(TERN_ENOMEM, "out of memory: cannot allocate guarded memory for a key");
        else {
            crypto_sign_ed25519_keypair(k->pk, k->sk);
            st = write_new_file(path, k->sk, sizeof k->sk, 0600, "signing key file");
            if (st == TERN_OK) {
                st = write_new_file(pub_path, k->pk, sizeof k->pk, 0644, "public key file");
                if (st != TERN_OK) unlink(path);
            }
            if (st == TERN_OK && pub_hex) tern_hex(pub_hex, k->pk, sizeof k->pk);
            sodium_free(k);
        }
    }
    free(pub_path);
    return st;
}

tern_status tern_sign_key_from_file(tern_sign_key **out, const char *path) {
    *out = NULL;
    TERN_TRY(sodium_ready());
    tern_sign_key *k = sodium_malloc(sizeof *k);
    if (!k) return tern_err(TERN_ENOMEM, "out of memory: cannot allocate guarded memory for a key");
    size_t n;
    tern_status st = secure_read_secret(path, "signing key file", k->sk, sizeof k->sk, &n);
    if (st == TERN_OK && n != TERN_SIGN_SECRET_BYTES) {
        if (n == TERN_KEY_BYTES)
            st = tern_err(TERN_EFORMAT,
                          "%s: signing key file has %zu bytes, expected 64 (is it a sealing key or a .pub file? make a "
                          "signing key with 'tern keygen --sign -o FILE')",
                          path, n);
        else st = tern_err(TERN_EFORMAT, "%s: signing key file has %zu bytes, expected 64", path, n);
    }
    if (st == TERN_OK) {
        /* libsodium's secret key is seed || public key: check the halves agree. */
        uint8_t pk[TERN_SIGN_PUB_BYTES], sk[TERN_SIGN_SECRET_BYTES];
        crypto_sign_ed25519_seed_keypair(pk, sk, k->sk);
        if (sodium_memcmp(sk, k->sk, sizeof sk) != 0)
            st = tern_err(TERN_EFORMAT, "%s: not an Ed25519 secret key (its public half does not match its seed)", path);
        memcpy(k->pk, pk, sizeof pk);
        sodium_memzero(sk, sizeof sk);
    }
    if (st != TERN_OK) {
        sodium_free(k);
        return st;
    }
    *out = k;
    return TERN_OK;
}

void tern_sign_key_free(tern_sign_key *k) {
    if (k) sodium_free(k);
}

void tern_sign_key_public(const tern_sign_key *k, uint8_t pub[TERN_SIGN_PUB_BYTES]) { memcpy(pub, k->pk, TERN_SIGN_PUB_BYTES); }

void tern_sign_detached(const tern_sign_key *k, uint8_t sig[TERN_SIGN_BYTES], const void *msg, size_t n) {
    crypto_sign_ed25519_detached(sig, NULL, msg, n, k->sk);
}

tern_status tern_sign_verify(const uint8_t pub[TERN_SIGN_PUB_BYTES], const uint8_t sig[TERN_SIGN_BYTES], const void *msg,
                             size_t n) {
    if (sodium_init() < 0) return TERN_EAUTH;
    return crypto_sign_ed25519_verify_detached(sig, msg, n, pub) == 0 ? TERN_OK : TERN_EAUTH;
}

tern_status tern_sign_pub_from_file(uint8_t pub[TERN_SIGN_PUB_BYTES], const char *path) {
    char *buf;
    size_t n;
    TERN_TRY(tern_read_file(path, &buf, &n));
    if (n != TERN_SIGN_PUB_BYTES) {
        free(buf);
        return tern_err(TERN_EFORMAT, "%s: public key file has %zu bytes, expected 32", path, n);
    }
    memcpy(pub, buf, TERN_SIGN_PUB_BYTES);
    free(buf);
    return TERN_OK;
}
