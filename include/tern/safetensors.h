/* safetensors reading and writing (the format of checkpoints, exports and test fixtures): an
 * 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
 * then the tensors' bytes. Follows huggingface/safetensors' specification and its validation:
 * offsets must tile the byte buffer exactly, without gaps or overlaps. */
#ifndef TERN_SAFETENSORS_H
#define TERN_SAFETENSORS_H
#include "tern/core.h"

typedef enum {
    TERN_DT_F32, TERN_DT_F16, TERN_DT_BF16, TERN_DT_I32, TERN_DT_I64, TERN_DT_U8, TERN_DT_F64,
    TERN_DT_BOOL, TERN_DT_I8, TERN_DT_I16, TERN_DT_U16, TERN_DT_U32, TERN_DT_U64
} tern_dtype;
size_t tern_dtype_size(tern_dtype dt);
const char *tern_dtype_name(tern_dtype dt);

#define TERN_ST_MAX_DIMS 8
typedef struct tern_st_entry {
    char *name;
    tern_dtype dtype;
    int ndim;
    size_t shape[TERN_ST_MAX_DIMS];
    size_t numel;
    size_t begin, end; /* byte offsets into the data buffer */
} tern_st_entry;

typedef struct tern_safetensors tern_safetensors;

/* Opens and validates a file (mapped, not read). Messages name the file and the problem. */
tern_status tern_st_open(tern_safetensors **out, const char *path);
/* Parses a buffer that the caller keeps alive until tern_st_free; `label` names it in messages. */
tern_status tern_st_from_buffer(tern_safetensors **out, const uint8_t *p, size_t n, const char *label);
void tern_st_free(tern_safetensors *st);
size_t tern_st_count(const tern_safetensors *st);
const tern_st_entry *tern_st_entry_at(const tern_safetensors *st, size_t i);
const tern_st_entry *tern_st_find(const tern_safetensors *st, const char *name);
const void *tern_st_data(const tern_safetensors *st, const tern_st_entry *e);
/* A __metadata__ string value, or NULL. */
const char *tern_st_meta(const tern_safetensors *st, const char *key);
/* Copies a tensor into dst as float32 (converting F16/BF16/F64), checking that it exists and
 * has exactly the given shape. */
tern_status tern_st_read_f32(const tern_safetensors *st, const char *name, float *dst, int ndim, const size_t *shape);
const char *tern_st_label(const tern_safetensors *st);

/* Writing: collect tensors (borrowed pointers, must stay valid until write) and metadata, then
 * write atomically. Tensors are laid out in the order added. */
typedef struct tern_st_writer tern_st_writer;
tern_status tern_st_writer_init(tern_st_writer **out);
void tern_st_writer_free(tern_st_writer *w);
tern_status tern_st_add(tern_st_writer *w, const char *name, tern_dtype dt, int ndim, const size_t *shape,
                        const void *data);
/* A tensor whose bytes are fetched when written, in pieces: fetch(ctx, tag, off, dst, n) copies
 * the n bytes at byte offset off of the tensor into dst. For memory the host cannot read
 * directly (a device's), or that should not be copied whole first. */
typedef tern_status (*tern_st_fetch)(void *ctx, size_t tag, size_t off, void *dst, size_t n);
tern_status tern_st_add_fetch(tern_st_writer *w, const char *name, tern_dtype dt, int ndim, const size_t *shape,
                              tern_st_fetch fetch, void *ctx, size_t tag);
tern_status tern_st_add_meta(tern_st_writer *w, const char *key, const char *value);
tern_status tern_st_write(tern_st_writer *w, const char *path);
/* Serialises to memory (for sealing or hashing): *out is malloc'd. */
tern_status tern_st_serialize(tern_st_writer *w, uint8_t **out, size_t *n);
#endif
