/* tern data: token shards (one header + little-endian tokens), the manifest of a data folder,
 * `prepare` (plain text and JSON Lines, compressed or not, from files, folders or standard input
 * -> shards, streaming on all cores in bounded memory), the training loader (one split of a data
 * folder mapped read-only, cut into windows of B*T+1 tokens, served as (inputs, targets) rows as a
 * pure function of a cursor, so that a checkpoint need only save the cursor), and mixtures of
 * several data folders served the same way. It knows nothing of models. Formats and the data
 * order are in docs/FORMATS.md ("Token shards", "Inputs of prepare", "Data manifest", "Data order
 * (the loader)", "Data mixtures"). */
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
 * count and checksum) is written last, then the file is renamed into place. With key
 * (tern/secure.h) not NULL, the shard is built in memory (bounded by its tokens) and sealed whole
 * at close under identity ("shard <file name>"); with key NULL identity is unused. */
typedef struct tern_shard_writer tern_shard_writer;
struct tern_key;
tern_status tern_shard_writer_open(tern_shard_writer **out, const char *path, size_t vocab_size, const struct tern_key *key,
                                   const char *identity);
/* Every id must be in [0, vocab_size). */
tern_status tern_shard_writer_add(tern_shard_writer *w, const int32_t *ids, size_t n);
uint64_t tern_shard_writer_count(const tern_shard_writer *w);
/* Commits the file and frees w (in every case). n_tokens and checksum may be NULL. */
tern_status tern_shard_writer_close(tern_shard_writer *w, uint64_t *n_tokens, uint8_t checksum[TERN_HASH_BYTES]);
void tern_shard_writer_abort(tern_shard_writer *w); /* removes the temporary file; NULL is a no-op */

/* ---- the manifest (DATADIR/manifest.json) ---- */
typedef enum { TERN_SPLIT_TRAIN = 0, TERN_SPLIT_VAL = 1 } tern_split;

/* Why prepare left a document or a line out (docs/FORMATS.md "Inputs of prepare"). */
typedef enum {
    TERN_SKIP_EMPTY,        /* no text, or only white space */
    TERN_SKIP_SHORT,        /* fewer bytes than the minimum */
    TERN_SKIP_DUPLICATE,    /* the same bytes as an earlier document */
    TERN_SKIP_INVALID_JSON, /* a JSON Lines line that is not one JSON object */
    TERN_SKIP_MISSING_KEY,  /* ... without the text field */
    TERN_SKIP_NOT_STRING,   /* ... whose text field is not a string */
    TERN_SKIP_INVALID_UTF8, /* ... that is not UTF-8, or whose text holds an unpaired surrogate */
    TERN_SKIP_TOO_LONG,     /* ... longer than the line limit */
    TERN_SKIP_N
} tern_skip;
/* The name a reason has in the manifest: "empty", "short", "duplicate", "invalid_json",
 * "missing_key", "not_string", "invalid_utf8", "too_long". */
const char *tern_skip_name(tern_skip r);

/* What one input argument (a file, a folder or standard input) gave. */
typedef struct tern_manifest_source {
    char *path;   /* as given; "-" for standard input */
    char *format; /* "text", "jsonl", or "mixed" for a folder holding both */
    uint64_t files;
    uint64_t documents;         /* kept */
    uint64_t bytes;             /* of the kept documents' text (after decompression and JSON decoding) */
    uint64_t tokens;            /* written for them, the <|endoftext|> before each included */
    uint64_t skipped[TERN_SKIP_N];
} tern_manifest_source;

/* How the val split was made. */
typedef enum {
    TERN_VAL_SPLIT_UNRECORDED = 0, /* a manifest written before it was recorded */
    TERN_VAL_SPLIT_NONE,           /* a val fraction of 0: everything is train */
    TERN_VAL_SPLIT_DOCUMENTS,      /* whole documents, by a seeded hash of their bytes */
    TERN_VAL_SPLIT_TAIL            /* one document: its last tokens */
} tern_val_split;

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
    /* How the data was prepared: written by this version of prepare; a manifest written before
     * has none of it (has_prepare 0, val_split TERN_VAL_SPLIT_UNRECORDED) and reads as before. */
    tern_val_split val_split;
    int has_prepare;
    char *text_key;      /* JSON Lines' text field */
    char *doc_separator; /* NULL: none */
    uint64_t min_bytes;
    int dedup;
    uint64_t skipped[TERN_SKIP_N]; /* summed over the sources */
    uint64_t binary_documents;     /* kept although they look binary (--allow-binary) */
    size_t n_sources;
    tern_manifest_source *sources;
} tern_manifest;

tern_status tern_manifest_parse(tern_manifest *m, const char *text, size_t n, const char *name);
void tern_manifest_free(tern_manifest *m);
/* DATADIR/manifest.json. With key the manifest is sealed as "data manifest" (and must be, to be
 * read); without one (NULL) it is plain, and a sealed manifest is refused with a message asking
 * for the key. */
tern_status tern_manifest_read(tern_manifest *m, const char *datadir, const struct tern_key *key);
tern_status tern_manifest_write(const tern_manifest *m, const char *datadir, const struct tern_key *key);

/* ---- the inputs of prepare ---- */

/* A file's bytes, decompressed when its first bytes are zstd's magic (a frame or a skippable
 * frame; several frames follow one another) or gzip's (several members likewise), whatever its
 * name; other bytes are read as they are. xz, bzip2, lz4 and zip files are refused by name.
 * Memory: a few hundred KiB whatever the file. Messages name the file ("standard input" for -). */
typedef struct tern_text_stream tern_text_stream;
tern_status tern_text_stream_open(tern_text_stream **out, const char *path); /* "-": standard input */
/* Up to cap bytes into buf; *got is 0 only at the end. A damaged or cut-short compressed file is
 * an error naming the file and the byte near which it was found. */
tern_status tern_text_stream_read(tern_text_stream *s, void *buf, size_t cap, size_t *got);
const char *tern_text_stream_compression(const tern_text_stream *s); /* "none", "zstd", "gzip" */
const char *tern_text_stream_name(const tern_text_stream *s);
uint64_t tern_text_stream_raw_bytes(const tern_text_stream *s); /* bytes read from the file so far */
void tern_text_stream_close(tern_text_stream *s);                /* NULL is a no-op */

/* One line of JSON Lines: the string value of the top-level member named key (the last one when
 * the name repeats, as Python's json module does), decoded (escapes, surrogate pairs), with any
 * bytes including NUL. The line must be UTF-8 and one JSON object (RFC 8259, nested at most 256
 * deep, white space around it allowed). */
typedef enum {
    TERN_JSONL_OK = 0,
    TERN_JSONL_INVALID_JSON, /* not one JSON object */
    TERN_JSONL_MISSING_KEY,  /* an object without the member */
    TERN_JSONL_NOT_STRING,   /* the member is not a string */
    TERN_JSONL_INVALID_UTF8  /* bytes that are not UTF-8, or an unpaired surrogate escape in the value */
} tern_jsonl_status;
/* On TERN_JSONL_OK *text (malloc'd, the caller frees it) holds *text_n bytes; otherwise it is NULL
 * and *at (the byte offset in the line) and *why (a short phrase) say where and what the problem
 * is. at and why may be NULL. Returns TERN_ENOMEM when memory runs out, else TERN_OK. */
tern_status tern_jsonl_text(const uint8_t *line, size_t n, const char *key, uint8_t **text, size_t *text_n, tern_jsonl_status *result,
                            size_t *at, const char **why);

/* ---- prepare: text -> shards + manifest ---- */
typedef enum { TERN_PREPARE_AUTO = 0, TERN_PREPARE_TEXT, TERN_PREPARE_JSONL } tern_prepare_format;

/* What has been done so far, for a progress display. */
typedef struct tern_prepare_progress {
    uint64_t bytes_read;  /* bytes read from the input files, as stored (compressed or not) */
    uint64_t bytes_total; /* the inputs' size on disk; 0 when unknown (standard input, a pipe) */
    uint64_t text_bytes;  /* bytes read after decompression */
    uint64_t documents;   /* documents kept */
    uint64_t tokens;      /* tokens written */
    double seconds;
    int done; /* the last call */
} tern_prepare_progress;

/* The options every prepare has. Callers that list these fields in order (src/cli/train.c does)
 * build unchanged because the other options are in tern_prepare_extra. */
typedef struct tern_prepare_opts {
    const char *tokenizer_dir;
    const char *const *files; /* the inputs: files, folders (every file below, sorted), "-" for standard input */
    size_t n_files;
    double val_fraction;   /* in [0, 1) */
    uint64_t shard_tokens; /* most tokens per shard, >= 1 */
    uint64_t seed;         /* keys the hash that splits documents */
    const char *out_dir;   /* must not hold anything but an earlier data folder (and that only with force) */
    const struct tern_key *key; /* not NULL: shards and manifest are sealed (docs/SECURITY.md) */
} tern_prepare_opts;

/* The rest; all zero (or a NULL pointer to them) is the default of each. */
typedef struct tern_prepare_extra {
    int force;                  /* replace an earlier data folder in out_dir */
    tern_prepare_format format; /* AUTO: by name (.jsonl, .ndjson, before .gz/.zst) or a first line that is a JSON object */
    const char *text_key;       /* JSON Lines: the member holding a document's text; NULL: "text" */
    const char *doc_separator;  /* plain text: documents end at each occurrence (removed); NULL: one per file */
    uint64_t max_line_bytes;    /* JSON Lines: longer lines are skipped; 0: TERN_PREPARE_MAX_LINE */
    uint64_t min_bytes;         /* documents with fewer bytes of text are skipped */
    int dedup;                  /* skip documents whose bytes equal an earlier one's */
    int allow_binary;           /* prepare documents that look binary instead of refusing them */
    int threads;                /* tokenizing threads; 0: one per core */
    const volatile int *stop;   /* not NULL: when it becomes non-zero, prepare stops and fails, leaving nothing */
    /* Called about every 0.2 s and once at the end, from the calling thread; may be NULL. */
    void (*progress)(void *ctx, const tern_prepare_progress *p);
    /* Called once per kind of problem at the end, with a sentence (no newline); may be NULL. */
    void (*warn)(void *ctx, const char *msg);
    /* Called with the folder that becomes out_dir, after the shards and the manifest are written
     * and before it is moved into place (to add files to it); may be NULL. */
    tern_status (*finish)(void *ctx, const char *dir);
    void *ctx;
} tern_prepare_extra;
#define TERN_PREPARE_SHARD_TOKENS 100000000ull
#define TERN_PREPARE_MAX_LINE ((uint64_t)16 << 20)

/* Reads every input, splits it into documents (a plain text file is one, or several at each
 * doc_separator; a JSON Lines line is one), leaves out the documents and lines the options or
 * their faults say (counted in the manifest, told through warn), and writes each kept document,
 * preceded by <|endoftext|>, into DATADIR/{train,val}_NNNNNN.bin and DATADIR/manifest.json.
 * Documents go to val by a keyed hash of their bytes; when only one is kept its last val_fraction
 * of tokens go to val. Streaming on `threads` threads, in memory that does not grow with the
 * corpus (but --dedup keeps 8 bytes per document), with output byte for byte the same whatever
 * the number of threads. Everything is written into a hidden folder beside DATADIR that
 * replaces it in one rename at the end: on any failure (or a kill) nothing is left at DATADIR
 * but what was there. A document that looks binary (a NUL byte, or more than 30% of its bytes
 * not UTF-8) fails the whole prepare unless allow_binary. *out (may be NULL) receives the
 * manifest. The rules are in docs/FORMATS.md "Inputs of prepare" and "Data manifest". */
tern_status tern_data_prepare_extra(const tern_prepare_opts *o, const tern_prepare_extra *x, tern_manifest *out);
/* The same with every extra option at its default. */
tern_status tern_data_prepare(const tern_prepare_opts *o, tern_manifest *out);

/* ---- one split of a data folder ---- */
typedef struct tern_dataset tern_dataset; /* one split of a DATADIR: manifest + mapped shards */
/* split is "train" or "val". tokenizer_hash (TERN_HASH_BYTES, tern_tok_hash) may be NULL; when
 * given and not the data's tokenizer (tern_dataset_made_by), refuses with a message naming both. Every shard is
 * checked against its header and the manifest (size, count, checksum, token range). With key,
 * the manifest and every shard must be sealed (identities "data manifest" and "shard <file
 * name>", so a shard renamed or swapped with another is refused) and are decrypted into memory
 * that is wiped when the dataset is freed; without one (NULL) a sealed folder is refused, naming
 * the file. */
tern_status tern_dataset_open(tern_dataset **out, const char *datadir, const char *split, const uint8_t *tokenizer_hash,
                              const struct tern_key *key);
void tern_dataset_free(tern_dataset *ds);
size_t tern_dataset_vocab_size(const tern_dataset *ds);
uint64_t tern_dataset_num_tokens(const tern_dataset *ds);
size_t tern_dataset_num_shards(const tern_dataset *ds);
const tern_shard_view *tern_dataset_shard(const tern_dataset *ds, size_t i);
const uint8_t *tern_dataset_tokenizer_hash(const tern_dataset *ds); /* TERN_HASH_BYTES */
/* Whether tokenizer hash h names the tokenizer that made the data: the manifest's, or, for data
 * prepared before tokenizers were identified by content, a hash the data's own copy of its
 * tokenizer (DATADIR/tokenizer) answers to as well as the manifest's (tern_tok_has_hash). */
int tern_dataset_made_by(const tern_dataset *ds, const uint8_t h[TERN_HASH_BYTES]);
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

/* ---- mixtures: several datasets served as one stream of windows, in given shares ----
 *
 * For training on data from several sources (web, books, code) in chosen proportions. Window
 * `cursor` (the cursor counts windows consumed since training began, as tern_loader's does) comes
 * whole from one source, read through that source's own tern_loader with the mixture's B_global,
 * T, shuffle and seed; tern_mixture_get's rows are that window's rows, so ranks slice windows
 * exactly as they slice a loader's and see the same source. Which source serves window c is a
 * pure function of (weights, seed, c): a run saves the cursor and nothing else, resumes
 * bit-identically, and any number of ranks agree. Source i's windows among the first N, for N a
 * multiple of TERN_MIXTURE_BLOCK, are exactly floor(N*S(i+1)/W) - floor(N*S(i)/W), where S(i) is
 * the quantized weight of sources 0..i-1 and W their total: within one window of N times its
 * share. Inside each block of TERN_MIXTURE_BLOCK windows the order is a shuffle seeded by (seed,
 * block). A source whose windows run out starts its next epoch (its loader's rule), so a small
 * source with a large weight repeats. The rule is in docs/FORMATS.md "Data mixtures".
 * Typical use, on every rank alike:
 *     tern_mixture_source src[2] = {{web, 0.7, "web"}, {books, 0.3, "books"}};
 *     tern_mixture_init(&mix, src, 2, B_global, T, 1, seed);
 *     for each step, each micro-batch: tern_mixture_get(mix, cursor++, rank*B_local, B_local, in, tg, &source);
 */
#define TERN_MIXTURE_BLOCK 1024

typedef struct tern_mixture tern_mixture;
typedef struct tern_mixture_source {
    const tern_dataset *ds; /* borrowed: must outlive the mixture */
    double weight;          /* positive and finite; the share is weight / (sum of weights), quantized to 2^-32 */
    const char *name;       /* for messages (may be NULL); borrowed for the call only */
} tern_mixture_source;

/* Every source must come from the same tokenizer (hash, vocabulary size and <|endoftext|>); a
 * source whose shards hold no whole window of B_global*T+1 tokens is refused, naming it. */
tern_status tern_mixture_init(tern_mixture **out, const tern_mixture_source *sources, size_t n, size_t B_global, size_t T, int shuffle,
                              uint64_t seed);
void tern_mixture_free(tern_mixture *m); /* NULL is a no-op */
size_t tern_mixture_num_sources(const tern_mixture *m);
/* Source i's share after quantization (what the apportionment uses), and its windows per epoch. */
double tern_mixture_share(const tern_mixture *m, size_t i);
uint64_t tern_mixture_source_windows(const tern_mixture *m, size_t i);
/* The source of window `cursor` and that window's cursor in the source's own loader. */
tern_status tern_mixture_locate(tern_mixture *m, uint64_t cursor, size_t *source, uint64_t *source_cursor);
/* Rows [row0, row0+nrows) of window `cursor`, as tern_loader_get gives them; *source (may be
 * NULL) receives the source it came from. Like the loader, not safe to call on one mixture from
 * two threads (it caches a block); give each thread its own. */
tern_status tern_mixture_get(tern_mixture *m, uint64_t cursor, size_t row0, size_t nrows, int32_t *inputs, int32_t *targets, size_t *source);
/* counts[i] (n of them) = windows of source i among windows 0..cursor-1: what a run has drawn from
 * each source, e.g. for its log or to tell epochs (divide by tern_mixture_source_windows). */
tern_status tern_mixture_consumed(tern_mixture *m, uint64_t cursor, uint64_t *counts);

/* A mixture written as text, for a command line or a config file: "DIR[:WEIGHT],DIR[:WEIGHT],..."
 * (e.g. "data/web:0.7,data/books:0.3"); a weight left out is 1. The weight is what follows the
 * last ':' of an entry, so a folder name holding ':' needs its weight given; names cannot hold
 * ','. Every problem is an error naming the entry. */
typedef struct tern_mixture_spec {
    size_t n;
    char **dirs;
    double *weights;
} tern_mixture_spec;
tern_status tern_mixture_spec_parse(tern_mixture_spec *out, const char *spec);
void tern_mixture_spec_free(tern_mixture_spec *s);

#endif
