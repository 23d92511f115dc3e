/* tern data: token shards (one header + little-endian tokens), the manifest of a data folder,
 * `prepare` (text files -> shards, streaming, in bounded memory), and the training loader: one
 * split of a data folder mapped read-only, cut into windows of B*T+1 tokens, served as (inputs,
 * targets) rows as a pure function of a cursor, so that a checkpoint need only save the cursor.
 * It knows nothing of models. Formats and the data order are in docs/FORMATS.md ("Token shards",
 * "Data manifest", "Data order (the loader)"). */
#ifndef TERN_DATA_H
#define TERN_DATA_H

#include "tern/core.h"

/* ---- shards ---- */
#define TERN_SHARD_MAGIC "TERNTOKS" /* 8 bytes */
#define TERN_SHARD_VERSION 1
#define TERN_SHARD_HEADER_BYTES 64

/* A parsed shard: a view into the caller's bytes (a map, or bytes a sealed-file layer decrypted). */
typedef struct tern_shard_view {
    const uint8_t *tokens;    /* n_tokens little-endian tokens of bytes_per_token bytes */
    uint64_t n_tokens;
    uint32_t bytes_per_token; /* 2 when the vocabulary fits in 16 bits, else 4 */
    uint64_t vocab_size;
    uint8_t checksum[TERN_HASH_BYTES]; /* BLAKE2b-256 of the token bytes, from the header */
} tern_shard_view;

/* Parses the n bytes at p as a shard, checking every header field and that the size is exactly
 * header + n_tokens * bytes_per_token. With verify set it also hashes the tokens against the
 * header's checksum and checks that every token is below vocab_size. name is used in messages.
 * Never reads outside p[0..n). */
tern_status tern_shard_parse(tern_shard_view *out, const uint8_t *p, size_t n, const char *name, int verify);
/* Token i of a shard (i < n_tokens). */
static inline uint32_t tern_shard_token(const tern_shard_view *s, uint64_t i) {
    const uint8_t *q = s->tokens + i * s->bytes_per_token;
    if (s->bytes_per_token == 2) return (uint32_t)q[0] | (uint32_t)q[1] << 8;
    return (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
}
static inline uint32_t tern_shard_bytes_per_token(size_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

/* Writes one shard atomically: tokens are streamed to a temporary file, the header (with the
 * count and checksum) is written last, then the file is renamed into place. */
typedef struct tern_shard_writer tern_shard_writer;
tern_status tern_shard_writer_open(tern_shard_writer **out, const char *path, size_t vocab_size);
/* With key (tern/secure.h) not NULL, the shard is built in memory (bounded by its tokens) and
 * sealed whole at close under identity ("shard <file name>"); key NULL is the writer above. */
struct tern_key;
tern_status tern_shard_writer_open_key(tern_shard_writer **out, const char *path, size_t vocab_size, const struct tern_key *key,
                                       const char *identity);
/* Every id must be in [0, vocab_size). */
tern_status tern_shard_writer_add(tern_shard_writer *w, const int32_t *ids, size_t n);
uint64_t tern_shard_writer_count(const tern_shard_writer *w);
/* Commits the file and frees w (in every case). n_tokens and checksum may be NULL. */
tern_status tern_shard_writer_close(tern_shard_writer *w, uint64_t *n_tokens, uint8_t checksum[TERN_HASH_BYTES]);
void tern_shard_writer_abort(tern_shard_writer *w); /* removes the temporary file; NULL is a no-op */

/* ---- the manifest (DATADIR/manifest.json) ---- */
typedef enum { TERN_SPLIT_TRAIN = 0, TERN_SPLIT_VAL = 1 } tern_split;

typedef struct tern_manifest_shard {
    char *file; /* a plain file name inside the data folder */
    tern_split split;
    uint64_t n_tokens;
    uint8_t checksum[TERN_HASH_BYTES];
} tern_manifest_shard;

typedef struct tern_manifest {
    uint8_t tokenizer_hash[TERN_HASH_BYTES]; /* tern_tok_hash of the tokenizer that made the data */
    uint64_t vocab_size;
    int64_t eot;        /* the id of <|endoftext|> */
    uint32_t bytes_per_token;
    uint64_t docs[2];   /* documents per split */
    double val_fraction;
    uint64_t seed;
    size_t n_shards;
    tern_manifest_shard *shards; /* in order: this order is the data order */
} tern_manifest;

tern_status tern_manifest_parse(tern_manifest *m, const char *text, size_t n, const char *name);
tern_status tern_manifest_read(tern_manifest *m, const char *datadir);
tern_status tern_manifest_write(const tern_manifest *m, const char *datadir);
void tern_manifest_free(tern_manifest *m);
/* The same for sealed data folders: with key the manifest is sealed as "data manifest" (and must
 * be, to be read); without one a sealed manifest is refused with a message asking for the key. */
tern_status tern_manifest_read_key(tern_manifest *m, const char *datadir, const struct tern_key *key);
tern_status tern_manifest_write_key(const tern_manifest *m, const char *datadir, const struct tern_key *key);

/* ---- prepare: text files -> shards + manifest ---- */
typedef struct tern_prepare_opts {
    const char *tokenizer_dir;
    const char *const *files; /* each file is one document */
    size_t n_files;
    double val_fraction;   /* in [0, 1) */
    uint64_t shard_tokens; /* most tokens per shard, >= 1 */
    uint64_t seed;         /* keys the hash that splits documents */
    const char *out_dir;
    const struct tern_key *key; /* not NULL: shards and manifest are sealed (docs/SECURITY.md) */
} tern_prepare_opts;
#define TERN_PREPARE_SHARD_TOKENS 100000000ull

/* Encodes every file (streaming: memory does not grow with the corpus), each document preceded
 * by <|endoftext|>, into DATADIR/{train,val}_NNNNNN.bin and DATADIR/manifest.json. With several
 * files a document goes to val when a keyed hash of its bytes says so; with one file and
 * val_fraction > 0, its last val_fraction of tokens go to val. Shards of an earlier prepare that
 * the new manifest does not list are removed. *out (may be NULL) receives the manifest. */
tern_status tern_data_prepare(const tern_prepare_opts *o, tern_manifest *out);

/* ---- one split of a data folder ---- */
typedef struct tern_dataset tern_dataset; /* one split of a DATADIR: manifest + mapped shards */
/* split is "train" or "val". tokenizer_hash (TERN_HASH_BYTES, tern_tok_hash) may be NULL; when
 * given and different from the manifest's, refuses with a message naming both. Every shard is
 * checked against its header and the manifest (size, count, checksum, token range). */
tern_status tern_dataset_open(tern_dataset **out, const char *datadir, const char *split, const uint8_t *tokenizer_hash);
/* The same for a data folder that may be sealed: with key, the manifest and every shard must be
 * sealed (identities "data manifest" and "shard <file name>", so a shard renamed or swapped with
 * another is refused) and are decrypted into memory that is wiped when the dataset is freed;
 * without a key a sealed folder is refused, naming the file. */
tern_status tern_dataset_open_key(tern_dataset **out, const char *datadir, const char *split, const uint8_t *tokenizer_hash,
                                  const struct tern_key *key);
void tern_dataset_free(tern_dataset *ds);
size_t tern_dataset_vocab_size(const tern_dataset *ds);
uint64_t tern_dataset_num_tokens(const tern_dataset *ds);
size_t tern_dataset_num_shards(const tern_dataset *ds);
const tern_shard_view *tern_dataset_shard(const tern_dataset *ds, size_t i);
const uint8_t *tern_dataset_tokenizer_hash(const tern_dataset *ds); /* TERN_HASH_BYTES */
int32_t tern_dataset_eot(const tern_dataset *ds);
/* A tokenizer folder's hash is tern_tok_hash_dir (tern/tok.h). */

/* ---- the loader ---- */
typedef struct tern_loader tern_loader;
/* B_global rows of T tokens per window. A window is B_global*T+1 consecutive tokens of one shard.
 * Fails when no shard holds a whole window. ds must outlive the loader. */
tern_status tern_loader_init(tern_loader **out, const tern_dataset *ds, size_t B_global, size_t T, int shuffle, uint64_t seed);
void tern_loader_free(tern_loader *l);
uint64_t tern_loader_windows_per_epoch(const tern_loader *l);
/* Fills rows [row0, row0+nrows) of the window with global index `cursor` (windows consumed so
 * far since the start of training): inputs[r*T + t] = tokens[w + (row0+r)*T + t], targets[...] =
 * the token after it; int32 arrays of nrows*T. Not safe to call on one loader from two threads
 * (it caches the epoch's permutation); give each thread its own loader. */
tern_status tern_loader_get(tern_loader *l, uint64_t cursor, size_t row0, size_t nrows, int32_t *inputs, int32_t *targets);
/* Where window `cursor` lies: its shard and first token. */
tern_status tern_loader_locate(tern_loader *l, uint64_t cursor, size_t *shard, uint64_t *start);

#endif
