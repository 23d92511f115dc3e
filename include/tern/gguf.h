/* GGUF, the file format of ggml and llama.cpp: a reader that validates every field of a buffer
 * or a mapped file, a writer, models out under the names, metadata and tokenizer keys that
 * llama.cpp's "gpt2", "llama" and "qwen2" loaders read, and GPT-2 back in. Not a ggml runtime: tern computes in f32 only.
 * Follows ggml's docs/gguf.md (version 3) and the conventions of llama.cpp's convert_hf_to_gguf.py. */
#ifndef TERN_GGUF_H
#define TERN_GGUF_H
#include "tern/model.h"

#define TERN_GGUF_VERSION 3
#define TERN_GGUF_DEFAULT_ALIGNMENT 32
#define TERN_GGUF_MAX_DIMS 4
#define TERN_GGUF_MAX_NAME 64 /* ggml's GGML_MAX_NAME: names are at most 63 bytes */

/* Value types of metadata (gguf_type). */
typedef enum {
    TERN_GGUF_U8 = 0,
    TERN_GGUF_I8 = 1,
    TERN_GGUF_U16 = 2,
    TERN_GGUF_I16 = 3,
    TERN_GGUF_U32 = 4,
    TERN_GGUF_I32 = 5,
    TERN_GGUF_F32 = 6,
    TERN_GGUF_BOOL = 7,
    TERN_GGUF_STRING = 8,
    TERN_GGUF_ARRAY = 9,
    TERN_GGUF_U64 = 10,
    TERN_GGUF_I64 = 11,
    TERN_GGUF_F64 = 12,
} tern_gguf_vtype;
const char *tern_gguf_vtype_name(uint32_t t); /* "u32", "str", ...; "?" when unknown */

/* Tensor types (ggml_type) that tern writes or converts; the reader knows the sizes of all of
 * ggml's types so that it can check any file's layout. */
typedef enum { TERN_GGML_F32 = 0, TERN_GGML_F16 = 1, TERN_GGML_Q8_0 = 8 } tern_ggml_type;
const char *tern_ggml_type_name(uint32_t t); /* "f32", "q8_0", ...; NULL when unknown */
/* Elements per block and bytes per block; returns 0 when the type is unknown. */
int tern_ggml_type_size(uint32_t t, size_t *block, size_t *bytes);

/* IEEE binary16 conversions, round to nearest even as ggml's GGML_FP32_TO_FP16. */
uint16_t tern_f32_to_f16(float f);
float tern_f16_to_f32(uint16_t h);
/* Q8_0 as ggml's quantize_row_q8_0_ref: per block of 32, d = absmax/127 stored as f16 and
 * q = roundf(x/d) as int8. n must be a multiple of 32; out receives n/32*34 bytes. */
void tern_q8_0_quantize(uint8_t *out, const float *x, size_t n);

/* ---- reading ---- */
typedef struct tern_gguf_str {
    const char *p; /* into the file's bytes, not NUL-terminated */
    uint64_t n;
} tern_gguf_str;

typedef struct tern_gguf_kv {
    tern_gguf_str key;
    uint32_t type;      /* a tern_gguf_vtype; TERN_GGUF_ARRAY for arrays */
    uint32_t elem_type; /* for arrays: the type of the elements (never an array) */
    uint64_t n;         /* elements of an array; 1 for a scalar */
    const uint8_t *data;/* little-endian bytes of a numeric or bool scalar or array */
    tern_gguf_str *strs;/* a string's value, or each string of a string array */
} tern_gguf_kv;

typedef struct tern_gguf_tensor {
    char name[TERN_GGUF_MAX_NAME];
    uint32_t type;                  /* ggml_type */
    uint32_t n_dims;
    uint64_t ne[TERN_GGUF_MAX_DIMS]; /* ggml order: ne[0] varies fastest; unused dims are 1 */
    uint64_t numel;
    uint64_t offset; /* from the start of the data section */
    size_t nbytes;
    const uint8_t *data;
} tern_gguf_tensor;

typedef struct tern_gguf tern_gguf;

/* Parses and checks a GGUF buffer, which the caller keeps alive until tern_gguf_free; label
 * names it in messages. Checks the magic, the version (2 or 3, little-endian), every count and
 * string length against the bytes left, value types, duplicate keys and names, name lengths,
 * dimensions, tensor types and block sizes, general.alignment, and that the tensors follow each
 * other in the data section, each at an aligned offset, inside the buffer. */
tern_status tern_gguf_from_buffer(tern_gguf **out, const uint8_t *p, size_t n, const char *label);
/* The same for a file, which is mapped (not read) and unmapped by tern_gguf_free. */
tern_status tern_gguf_open(tern_gguf **out, const char *path);
void tern_gguf_free(tern_gguf *g);
const char *tern_gguf_label(const tern_gguf *g);
uint32_t tern_gguf_version(const tern_gguf *g);
size_t tern_gguf_alignment(const tern_gguf *g);
size_t tern_gguf_data_offset(const tern_gguf *g); /* where the data section starts in the file */

size_t tern_gguf_kv_count(const tern_gguf *g);
const tern_gguf_kv *tern_gguf_kv_at(const tern_gguf *g, size_t i);
const tern_gguf_kv *tern_gguf_find_kv(const tern_gguf *g, const char *key);
/* Typed lookups: TERN_ENOTFOUND when the key is missing, TERN_EFORMAT when its type differs
 * (llama.cpp is as strict). The string is borrowed from the file. */
tern_status tern_gguf_get_u32(const tern_gguf *g, const char *key, uint32_t *out);
tern_status tern_gguf_get_f32(const tern_gguf *g, const char *key, float *out);
tern_status tern_gguf_get_str(const tern_gguf *g, const char *key, tern_gguf_str *out);
/* An array of the given element type; (*out)->n is its length. */
tern_status tern_gguf_get_arr(const tern_gguf *g, const char *key, uint32_t elem_type, const tern_gguf_kv **out);

size_t tern_gguf_tensor_count(const tern_gguf *g);
const tern_gguf_tensor *tern_gguf_tensor_at(const tern_gguf *g, size_t i);
const tern_gguf_tensor *tern_gguf_find_tensor(const tern_gguf *g, const char *name);
/* Converts a tensor's numel values to float32 (f32 copied, f16 widened, q8_0 dequantised as
 * ggml does: x = f16(d) * q). Other types are an error naming the type. */
tern_status tern_gguf_tensor_to_f32(const tern_gguf *g, const tern_gguf_tensor *t, float *dst);

/* ---- writing ---- */
typedef struct tern_gguf_writer tern_gguf_writer;
tern_status tern_gguf_writer_init(tern_gguf_writer **out);
void tern_gguf_writer_free(tern_gguf_writer *w);
/* Metadata, written in the order added; keys must be unique. Strings and arrays are copied. */
tern_status tern_gguf_add_u32(tern_gguf_writer *w, const char *key, uint32_t v);
tern_status tern_gguf_add_f32(tern_gguf_writer *w, const char *key, float v);
tern_status tern_gguf_add_str(tern_gguf_writer *w, const char *key, const char *v);
/* An array of n strings of given lengths. */
tern_status tern_gguf_add_str_arr(tern_gguf_writer *w, const char *key, const char *const *v, const size_t *len, size_t n);
tern_status tern_gguf_add_i32_arr(tern_gguf_writer *w, const char *key, const int32_t *v, size_t n);
/* Sets general.alignment (a power of two; written as a key when not the default 32). */
tern_status tern_gguf_set_alignment(tern_gguf_writer *w, uint32_t alignment);
/* A tensor with ggml dims ne[0..n_dims) and type; data (borrowed until the write) holds its
 * bytes. With data NULL, fill is called at write time to produce them into a scratch buffer, so
 * that converted tensors need not all be held at once. */
typedef tern_status (*tern_gguf_fill_fn)(void *ctx, size_t index, uint8_t *dst, size_t nbytes);
tern_status tern_gguf_add_tensor(tern_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                                 const void *data);
void tern_gguf_set_fill(tern_gguf_writer *w, tern_gguf_fill_fn fill, void *ctx);
/* Writes the file atomically. */
tern_status tern_gguf_write(tern_gguf_writer *w, const char *path);
/* Serialises to memory (*out malloc'd), for tests and small files. */
tern_status tern_gguf_serialize(tern_gguf_writer *w, uint8_t **out, size_t *n);

/* ---- models ---- */
/* Writes a model as a GGUF file for llama.cpp. A GPT-2 becomes architecture "gpt2": metadata
 * gpt2.{context_length, embedding_length, feed_forward_length, block_count,
 * attention.head_count, attention.layer_norm_epsilon}, general.file_type; tensors token_embd,
 * position_embd, blk.N.{attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up, ffn_down},
 * output_norm, with Conv1D weights transposed to [out, in]; no output.weight (llama.cpp ties it
 * to token_embd). The tokenizer in tokdir (vocab.json + merges.txt or encoder.json + vocab.bpe)
 * is embedded: tokenizer.ggml.model "gpt2", pre "gpt-2", tokens as GPT-2's byte-to-unicode
 * strings, token types (<|endoftext|> control, others normal), merges, and <|endoftext|> as BOS
 * and EOS. type is TERN_GGML_F32, F16 or Q8_0; as llama.cpp's converter does, 1-D tensors and
 * position_embd stay f32, and a q8_0 tensor whose rows are not a multiple of 32 falls back to
 * f16. name goes to general.name (may be NULL).
 * A Llama becomes architecture "llama" (or "qwen2", when q, k and v have biases): metadata
 * <arch>.{vocab_size, context_length, embedding_length, block_count, feed_forward_length,
 * rope.dimension_count, rope.freq_base, attention.head_count, attention.head_count_kv,
 * attention.layer_norm_rms_epsilon}; tensors token_embd, blk.N.{attn_norm, attn_q, attn_k,
 * attn_v (and their biases for qwen2), attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down},
 * output_norm and output (absent when tied), with q and k's rows permuted within heads for
 * "llama" as llama.cpp's converter does. Llama 3's rope scaling is refused (llama.cpp reads it
 * from an extra rope_freqs tensor not written here), and so is a sliding window shorter than the
 * context (llama.cpp's llama architecture has none). */
tern_status tern_gguf_export(tern_model *m, const char *tokdir, uint32_t type, const char *name, const char *path);
/* Builds a model from a GGUF of architecture gpt2, llama or qwen2 whose tensors are all f32: the
 * inverse of the export, and what llama.cpp's converter writes for such models (a GPT-2's
 * output.weight is accepted when equal to token_embd.weight). Files whose metadata asks for what
 * tern's families compute differently (rope scaling, experts, partial rotary dimensions) are
 * refused, naming the key. */
tern_status tern_gguf_load_model(const tern_gguf *g, tern_model **out, tern_backend *be);
/* Writes the embedded tokenizer as vocab.json + merges.txt into dir (created if needed). */
tern_status tern_gguf_write_tokenizer(const tern_gguf *g, const char *dir);
/* Opens a GGUF file as a model; with tokdir non-NULL, extracts its tokenizer into a new temporary
 * folder under $TMPDIR (or /tmp), tern-gguf-tokenizer-XXXXXX, and returns it (malloc'd): release
 * it with tern_io_tokdir_free, which removes the folder. */
tern_status tern_gguf_open_model(const char *path, tern_model **out, char **tokdir, tern_backend *be);
#endif
