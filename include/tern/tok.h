/* tern tok: GPT-2's byte-level BPE tokenizer: loading a tokenizer folder (vocab.json +
 * merges.txt, or GPT-2's own encoder.json + vocab.bpe), encoding bytes to ids exactly as
 * OpenAI's GPT-2 encoder does, decoding ids to the exact bytes, and training a new one.
 * It knows nothing of shards or models. docs/FORMATS.md "Tokenizer folder" gives the files. */
#ifndef TERN_TOK_H
#define TERN_TOK_H

#include "tern/core.h"

typedef struct tern_tok tern_tok; /* immutable once loaded: safe to share between threads */

/* A growable array of token ids; the caller owns it and frees it with tern_ids_free. */
typedef struct tern_ids {
    int32_t *p;
    size_t n, cap;
} tern_ids;
void tern_ids_free(tern_ids *ids);
tern_status tern_ids_push(tern_ids *ids, const int32_t *p, size_t n);

/* Loads the tokenizer in folder dir: vocab.json + merges.txt if vocab.json is there, else
 * encoder.json + vocab.bpe. Every problem (missing file, bad JSON, a merges line that is not
 * two tokens, a vocabulary without <|endoftext|> or without some byte) is an error naming the
 * file and, for merges, the line. Files may be sealed (tern/secure.h; identities "tokenizer
 * vocab.json" and "tokenizer merges.txt"): sealed files are decrypted in memory with key, and
 * refused without one; plain files are read as they are. key may be NULL. */
struct tern_key;
tern_status tern_tok_load(tern_tok **out, const char *dir, const struct tern_key *key);
/* The same from the two files' bytes; vocab_name and merges_name are used in messages. */
tern_status tern_tok_from_buffers(tern_tok **out, const char *vocab, size_t vocab_n, const char *vocab_name,
                                  const char *merges, size_t merges_n, const char *merges_name);
void tern_tok_free(tern_tok *tok);

size_t tern_tok_vocab_size(const tern_tok *tok);
int32_t tern_tok_eot(const tern_tok *tok); /* the id of <|endoftext|> */
/* The bytes of one token (not NUL-terminated), or NULL when id is out of range. */
const uint8_t *tern_tok_token(const tern_tok *tok, int32_t id, size_t *len);

/* The tokenizer's identity: BLAKE2b-256 of its content (the bytes of every id, the merges in rank
 * order, <|endoftext|>'s id; docs/FORMATS.md "Tokenizer folder"), the same however its files spell
 * it. Data prepared with one tokenizer records it, and training refuses another. */
const uint8_t *tern_tok_hash(const tern_tok *tok); /* TERN_HASH_BYTES bytes */
/* The identity data folders and runs recorded before it: BLAKE2b-256 of the two files' bytes as
 * they were read (tern-tokenizer-1). */
const uint8_t *tern_tok_file_hash(const tern_tok *tok);
/* Whether h names this tokenizer: its identity, or the older hash of the files it was read from. */
int tern_tok_has_hash(const tern_tok *tok, const uint8_t h[TERN_HASH_BYTES]);
/* The identity of the tokenizer in a folder, unsealed with key where its files are sealed (key
 * may be NULL). */
tern_status tern_tok_hash_dir(uint8_t out[TERN_HASH_BYTES], const char *dir, const struct tern_key *key);

/* Encodes n bytes of text (any bytes: invalid UTF-8 is encoded byte by byte and decodes back
 * exactly) and appends the ids to out. <|endoftext|> in the text is plain text, as in
 * OpenAI's encoder. Uses all OpenMP threads when the text is large. */
tern_status tern_tok_encode(const tern_tok *tok, const void *text, size_t n, tern_ids *out);
/* One thread's encoder for many texts: its BPE scratch and its cache of pieces persist between
 * calls, so encoding a stream of short documents costs no set-up per document (tern_tok_encode
 * makes and drops both on every call). Not safe to share between threads: give each its own.
 * tok must outlive it. */
typedef struct tern_tok_encoder tern_tok_encoder;
tern_status tern_tok_encoder_init(tern_tok_encoder **out, const tern_tok *tok);
void tern_tok_encoder_free(tern_tok_encoder *e); /* NULL is a no-op */
/* Encodes the whole text[0..n) on the calling thread and appends the ids to out: the same ids
 * as tern_tok_encode. */
tern_status tern_tok_encoder_encode(tern_tok_encoder *e, const void *text, size_t n, tern_ids *out);
/* Where a text that goes on past text[0..n) may be cut for streaming: the last q, 0 < q <= n - 4,
 * such that every pre-token ends at q whatever follows and wherever the text began; then the
 * ids of text[0..q) followed by those of the rest are the ids of the whole. 0 when there is none
 * (n < 5, or one pre-token spans the bytes looked at). */
size_t tern_tok_split_point(const void *text, size_t n);

/* Appends the bytes of ids[0..n) to *buf (malloc'd, grown as needed, *len updated). An id out
 * of range is an error giving its position. */
tern_status tern_tok_decode(const tern_tok *tok, const int32_t *ids, size_t n, char **buf, size_t *len);

/* Streaming encoding in bounded memory: reads fd until end of file and hands the ids to sink
 * in order, in runs. name is used in messages. A single pre-token (a run of letters, digits,
 * symbols or spaces with no break) longer than TERN_TOK_MAX_PIECE bytes is an error. */
#define TERN_TOK_MAX_PIECE ((size_t)16 << 20)
typedef tern_status (*tern_tok_sink)(void *ctx, const int32_t *ids, size_t n);
tern_status tern_tok_encode_fd(const tern_tok *tok, int fd, const char *name, tern_tok_sink sink, void *ctx);

/* Trains a byte-level BPE on files (GPT-2's pre-tokenization) until the vocabulary has
 * vocab_size tokens: the 256 bytes, the merges, and <|endoftext|> last. Writes vocab.json and
 * merges.txt into out_dir (created if needed), atomically. With too little text to reach
 * vocab_size it stops early and says so in *n_vocab_out (may be NULL). */
tern_status tern_tok_train(const char *const *files, size_t n_files, size_t vocab_size, const char *out_dir,
                           size_t *n_vocab_out);

#endif
