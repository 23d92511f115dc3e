/* Inside io/: what GGUF export (gguf_export.c) and loading (gguf_load.c) need of each architecture
 * llama.cpp knows: its name, its metadata keys both ways, and each tensor's name there and how its
 * matrix is laid out. One table per family (gguf_gpt2.c, gguf_llama.c); not included outside
 * src/io/. */
#ifndef TERN_GGUF_ARCH_H
#define TERN_GGUF_ARCH_H
#include "tern/gguf.h"

/* How a [rows, cols] matrix of tern's table goes into the file. */
enum {
    GGUF_AS_IS,      /* the same rows */
    GGUF_TRANSPOSE,  /* Conv1D [in, out] written as [out, in] */
    GGUF_ROPE_Q,     /* rows permuted within each of n_head heads, as llama.cpp's converter does for
                      * q_proj: a head's rows (i, i + hs/2) become neighbours (2i, 2i + 1) */
    GGUF_ROPE_K      /* the same over n_kv_head heads, for k_proj */
};

typedef struct gguf_arch {
    const char *name;  /* general.architecture */
    const char *label; /* in messages: "GPT-2", "Llama", "Qwen2" */
    tern_status (*meta)(tern_gguf_writer *w, const tern_model_config *c);
    /* The model config from the file's metadata and tensors (the inverse of meta); refuses what
     * tern's family cannot compute the same way, naming the key. */
    tern_status (*config)(const tern_gguf *g, tern_model_config *c);
    /* llama.cpp's name for tern's tensor `name` (into out), whether it stays f32 whatever the
     * file's type (besides every vector), and its layout (GGUF_*). */
    int (*tensor)(const tern_model_config *c, const char *name, char out[TERN_GGUF_MAX_NAME], int *keep_f32);
} gguf_arch;

/* ggml dims of a tern tensor as written: ne[0] is the row length of the stored matrix (a [r, c]
 * matrix stored as is has ne {c, r}; transposed, {r, c}). Returns the number of dims. */
uint32_t gguf_dims(const tern_tensor *t, int transpose, uint64_t ne[2]);
/* A [r, c] matrix in tern's layout to the file's (to_file) or back, for any GGUF_* layout; heads
 * is the number of heads a GGUF_ROPE_* matrix is permuted within. */
void gguf_relayout(float *dst, const float *src, size_t r, size_t c, int layout, size_t heads, int to_file);
/* An unsigned metadata key as an int, refusing values above INT_MAX. */
tern_status gguf_get_int(const tern_gguf *g, const char *key, int *out);

extern const gguf_arch tern_gguf_arch_gpt2, tern_gguf_arch_llama, tern_gguf_arch_qwen2;
#endif
