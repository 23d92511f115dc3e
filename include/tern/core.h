/* tern core: status codes and error messages, aborts, aligned allocation, atomic file
 * writes, read-only file maps, BLAKE2b hashing, a counter-based RNG and JSON Lines logging.
 * Everything else in libtern builds on this; it knows nothing of models or data.
 * Error handling follows docs/STYLE.md ("Errors"): programmer errors assert, input errors return a status
 * and set a message (sqlite3_errmsg-style, one per thread). */
#ifndef TERN_CORE_H
#define TERN_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TERN_VERSION "0.1.0"

typedef enum {
    TERN_OK = 0,
    TERN_EIO = -1,      /* a file could not be opened, read, written, synced or renamed */
    TERN_EFORMAT = -2,  /* a file's content is not what its format says it must be */
    TERN_ENOMEM = -3,   /* an allocation failed; the message gives the size */
    TERN_EINVAL = -4,   /* an argument or configuration value is out of range */
    TERN_EAUTH = -5,    /* authentication failed: wrong key or tampered data */
    TERN_ENOTFOUND = -6,/* a named file, tensor or key does not exist */
    TERN_EPOLICY = -7,  /* the owner's policy forbids the operation */
    TERN_EDIST = -8,    /* a distributed (MPI) operation failed */
    TERN_ENUMERIC = -9, /* a non-finite value where a finite one is required */
    TERN_EBUSY = -10    /* another process holds what was asked for (a run folder's lock) */
} tern_status;

/* snprintf for messages and names whose truncation is acceptable (the buffers are generous), so
 * that -Wformat-truncation does not ask every caller to check. */
void tern_fmt(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets this thread's error message and returns st, so that `return tern_err(...)` reads
 * naturally. The message should name the file, what was expected and what was found. */
tern_status tern_err(tern_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with more context: "while X: <old message>". */
tern_status tern_err_wrap(tern_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *tern_errmsg(void);
const char *tern_status_name(tern_status st);
void tern_err_clear(void);

#define TERN_TRY(expr)                                                                        \
    do {                                                                                      \
        tern_status tern_try_st_ = (expr);                                                    \
        if (tern_try_st_ != TERN_OK) return tern_try_st_;                                     \
    } while (0)

/* Programmer errors: always compiled in. The hook (set by the program) may flush logs or
 * abort MPI before the process aborts. */
typedef void (*tern_abort_hook)(const char *msg);
void tern_set_abort_hook(tern_abort_hook hook);
_Noreturn void tern_abort(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define TERN_ASSERT(x)                                                                        \
    do {                                                                                      \
        if (!(x)) tern_abort(__FILE__, __LINE__, "assertion failed: %s", #x);                 \
    } while (0)

/* ---- memory ---- */
/* 64-byte aligned (from 4 MiB on, 2 MiB and offered huge pages: src/core/mem.c), zeroed. On
 * failure returns TERN_ENOMEM with a message naming `what` and the size asked for. */
tern_status tern_alloc(void **out, size_t bytes, const char *what);
/* As tern_alloc, not zeroed and without an error of its own: NULL when memory gives out (for
 * scratch that is grown from inside parallel regions). Freed with tern_free. */
void *tern_alloc_raw(size_t bytes);
void tern_free(void *p);
/* Overflow-checked size arithmetic for sizes read from files. Return 0 on overflow. */
int tern_mul_size(size_t a, size_t b, size_t *out);
int tern_add_size(size_t a, size_t b, size_t *out);
/* The memory this process may use: the least of physical memory, the cgroup limits of its
 * cgroup and every ancestor (v2 memory.max, v1 memory.limit_in_bytes) and RLIMIT_AS/RLIMIT_DATA.
 * *what (may be NULL) receives which of them it is, e.g. "physical memory" or "the cgroup limit
 * (/sys/fs/cgroup/x/memory.max)". Reads a few small files; allocates nothing large. */
uint64_t tern_mem_limit(char *what, size_t what_n);
/* A growable byte buffer for writers that lay out a file in memory (GGUF headers, TensorBoard
 * records). An allocation failure sets oom and makes later appends do nothing, so a writer
 * checks once, at the end. Zero-initialise; release with free(b.p). */
typedef struct tern_buf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} tern_buf;
void tern_buf_put(tern_buf *b, const void *p, size_t n);
void tern_buf_put_le(tern_buf *b, uint64_t v, int bytes); /* v's low `bytes` bytes, little-endian */

/* ---- files ---- */
/* An atomic file: written to "<path>.tmp-<pid>-<n>", then fsync, rename over path, and fsync
 * of the folder. Either the old content or the new one is visible, never a mix. */
typedef struct tern_afile {
    FILE *f;
    char *path;
    char *tmp;
    int failed; /* a write failed; commit will refuse */
} tern_afile;
tern_status tern_afile_open(tern_afile *af, const char *path);
tern_status tern_afile_write(tern_afile *af, const void *p, size_t n);
tern_status tern_afile_printf(tern_afile *af, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
tern_status tern_afile_commit(tern_afile *af); /* frees af's fields in every case */
void tern_afile_abort(tern_afile *af);          /* removes the temporary file */
tern_status tern_write_file_atomic(const char *path, const void *p, size_t n);
/* fsync a folder so that a rename inside it is durable. */
tern_status tern_fsync_dir(const char *dir);
/* Creates dir and its parents (mode 0755 unless given). Existing folders are fine. */
tern_status tern_mkdir_p(const char *dir);

/* An advisory lock on a folder, held for as long as the process keeps it: DIR/lock is opened
 * (created when missing) and locked with flock(LOCK_EX|LOCK_NB); the holder writes its pid and
 * host into it. The kernel releases the lock when the holder exits or dies, so a killed holder
 * never leaves the folder locked. When another process holds it, returns TERN_EBUSY with a
 * message naming the folder and the holder's pid and host; a refused caller changes nothing in
 * the folder (the lock file already exists then, and is only read). */
typedef struct tern_dir_lock {
    int fd; /* -1: not held */
} tern_dir_lock;
tern_status tern_dir_lock_take(tern_dir_lock *l, const char *dir, const char *what);
void tern_dir_lock_release(tern_dir_lock *l); /* no-op when not held */

/* A whole file read into memory (for small files: JSON, tokenizer files). NUL-terminated
 * one byte past size, so text parsers may treat it as a string. */
tern_status tern_read_file(const char *path, char **out, size_t *size);

/* A read-only memory map of a whole file. An empty file maps to data=NULL, size=0. */
typedef struct tern_map {
    const uint8_t *data;
    size_t size;
} tern_map;
tern_status tern_map_file(tern_map *m, const char *path);
void tern_unmap(tern_map *m);

int tern_path_exists(const char *path);
/* Joins a and b with one '/', into a new malloc'd string (NULL on out of memory). */
char *tern_path_join(const char *a, const char *b);

/* ---- hashing (BLAKE2b, via libsodium) ---- */
#define TERN_HASH_BYTES 32
typedef struct tern_hasher {
    _Alignas(64) unsigned char state[384]; /* crypto_generichash_state */
} tern_hasher;
void tern_hash_init(tern_hasher *h);
void tern_hash_update(tern_hasher *h, const void *p, size_t n);
void tern_hash_final(tern_hasher *h, uint8_t out[TERN_HASH_BYTES]);
void tern_hash(uint8_t out[TERN_HASH_BYTES], const void *p, size_t n);
tern_status tern_hash_file(uint8_t out[TERN_HASH_BYTES], const char *path);
/* Lower-case hex; out must hold 2*n+1 bytes. */
void tern_hex(char *out, const uint8_t *p, size_t n);
/* Parses 2*n hex digits; returns 0 on success, -1 on any bad character or wrong length. */
int tern_unhex(uint8_t *out, size_t n, const char *hex);

/* ---- counter-based random numbers ----
 * Every draw is a pure function of (seed, stream, counter), so nothing hidden needs saving
 * for an exact resume: streams are derived from (use, step, rank). Mixing is SplitMix64's
 * finaliser applied to a Weyl sequence keyed by seed and stream. */
uint64_t tern_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter);
/* Uniform in [0, 1) with 24 bits. */
float tern_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter);
/* Standard normal via Box-Muller (uses counters 2*counter and 2*counter+1). */
float tern_rng_normal(uint64_t seed, uint64_t stream, uint64_t counter);
/* Uniform integer in [0, n) without modulo bias. */
uint64_t tern_rng_below(uint64_t seed, uint64_t stream, uint64_t *counter, uint64_t n);
/* A stream id for (use, a, b), e.g. ("init", layer, 0). */
uint64_t tern_rng_stream(const char *use, uint64_t a, uint64_t b);

/* Loops over less work than this (in floats, roughly) run on one thread: every OpenMP region ends
 * in a barrier, which on a busy machine can wait a whole scheduler tick for a descheduled thread. */
#define TERN_OMP_MIN_WORK ((size_t)1 << 15)

/* ---- time and logging ---- */
double tern_now(void);          /* monotonic seconds */
double tern_wall_time(void);    /* seconds since the epoch */
typedef enum { TERN_LOG_ERROR, TERN_LOG_WARN, TERN_LOG_INFO, TERN_LOG_DEBUG } tern_log_level;
void tern_log_set_level(tern_log_level lvl);
void tern_log(tern_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Formats seconds as "1h02m", "3m05s" or "12s". */
void tern_fmt_duration(char *out, size_t n, double seconds);

#endif
