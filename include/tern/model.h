/* Models: a family's parameters, forward and backward passes on a backend (docs/DESIGN.md,
 * "Model families"). Families share everything but their arithmetic: the tensor table (Hugging
 * Face's names, shapes, weight decay, initialisation), one buffer each for parameters, gradients
 * and activations in the backend's memory, the head and cross-entropy over chunks of positions,
 * activation recomputation, anomaly detection and the key-value cache for generation. GPT-2
 * (GPT2LMHeadModel) and Llama (LlamaForCausalLM, and Qwen2's and Mistral's variants of it) are the
 * families today; a family is one file under src/model/.
 * The model's memory belongs to its backend: callers read and write it by tensor (or by flat
 * range of the parameter order), never through pointers. */
#ifndef TERN_MODEL_H
#define TERN_MODEL_H
#include "tern/backend.h"
#include "tern/core.h"

/* Rotary position scaling (Llama 3's "llama3" rope_type); TERN_ROPE_NONE for plain RoPE. */
typedef enum { TERN_ROPE_NONE = 0, TERN_ROPE_LLAMA3 = 1 } tern_rope_type;

typedef struct tern_model_config {
    char arch[16];  /* "gpt2" or "llama" */
    int n_layer;
    int n_head;     /* query heads */
    int n_kv_head;  /* key/value heads (llama; = n_head for gpt2) */
    int n_embd;     /* width */
    int head_dim;   /* per head (llama may set it; else n_embd / n_head) */
    int ffn_dim;    /* the MLP's inner width (gpt2: 4 n_embd) */
    int n_ctx;      /* positions the model holds (n_positions, max_position_embeddings) */
    int vocab_size;
    double norm_eps;        /* LayerNorm (gpt2, 1e-5) or RMSNorm epsilon */
    double rope_theta;      /* llama: the rotary base */
    int tie_embeddings;     /* the head is the token embedding (gpt2 always) */
    int qkv_bias;           /* llama: biases on q, k and v (Qwen2) */
    tern_rope_type rope_type;
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor; /* llama3 scaling */
    int rope_original_ctx;  /* llama3 scaling: original_max_position_embeddings */
    int sliding_window;     /* Mistral's attention window (0: none); tern computes full causal
                             * attention, equal to it for sequences no longer than the window */
} tern_model_config;

/* GPT-2 of the given shape (n_kv_head = n_head, ffn_dim = 4 n_embd, eps 1e-5, tied head). */
tern_model_config tern_model_config_gpt2(int n_layer, int n_head, int n_embd, int n_ctx, int vocab_size);
/* A Llama of the given shape with Llama's defaults where a field is 0: n_kv_head = n_head,
 * ffn_dim the multiple of 256 nearest above 8/3 n_embd, eps 1e-5, rope_theta 10000, untied. */
tern_model_config tern_model_config_llama(int n_layer, int n_head, int n_kv_head, int n_embd, int n_ctx, int vocab_size);
/* Checks that the family knows the shape (positive sizes, heads dividing the width, key/value
 * heads dividing the heads, sizes that fit memory arithmetic); the message names the field. */
tern_status tern_model_config_check(const tern_model_config *cfg);
/* Parameters of a model of this shape (a tied head counted once), without allocating. */
size_t tern_model_config_num_params(const tern_model_config *cfg);
/* Training FLOPs per token (forward and backward) at sequence length T: 6 per parameter used in a
 * matrix product (embedding lookups left out) plus attention's 12 L T C, as nanoGPT and PaLM's
 * appendix B count them; MFU figures use it. */
double tern_model_config_flops_per_token(const tern_model_config *cfg, size_t T);
/* The config as a JSON object text (malloc'd), and back: the "model" object of a run's
 * config.json and of every checkpoint's state.json. what names the file in messages. */
char *tern_model_config_to_json(const tern_model_config *cfg);
struct cJSON;
tern_status tern_model_config_from_json(tern_model_config *cfg, const struct cJSON *obj, const char *what);

/* A named tensor: Hugging Face's name (without the "transformer." / "model." prefix conventions
 * of the family, which io/ adds), shape, and where it lives in the flat parameter (and gradient,
 * and optimizer moment) buffer. decay: AdamW weight decay applies. hook: the backward pass's
 * unit after which its gradient is final (see tern_model_set_grad_hook). */
typedef struct tern_tensor {
    char name[64];
    int ndim;
    size_t shape[2];
    size_t offset;
    size_t numel;
    int decay;
    int hook;
    char init;       /* 'n' normal(std), 'z' zeros, 'o' ones */
    float init_std;
} tern_tensor;

typedef struct tern_model tern_model;

/* Allocates parameters and gradients (zeroed) on backend be (NULL: tern_backend_default(); be
 * is borrowed and must outlive the model) and builds the tensor table. */
tern_status tern_model_init(tern_model **out, const tern_model_config *cfg, tern_backend *be);
void tern_model_free(tern_model *m);
const tern_model_config *tern_model_cfg(const tern_model *m);
tern_backend *tern_model_backend(const tern_model *m);
/* Allocates activations for batches of up to B rows of up to T tokens (T <= n_ctx). Calling it
 * again with a larger shape reallocates; no step allocates. */
tern_status tern_model_reserve(tern_model *m, size_t B, size_t T);
/* The family's initialisation (GPT-2: weights N(0, 0.02), residual projections N(0,
 * 0.02/sqrt(2L)), biases 0, LayerNorm weights 1; Llama: N(0, 0.02), RMSNorm weights 1), drawn from
 * the counter RNG keyed by (seed, tensor), so the same seed gives the same model on every backend
 * and thread count. */
tern_status tern_model_init_weights(tern_model *m, uint64_t seed);

/* Forward pass over inputs (B,T). With targets, *loss (if non-NULL) receives the mean
 * cross-entropy, computed over chunks of positions without keeping the logits; without targets
 * the logits (B,T,V) are kept for tern_model_logits. Fails (TERN_EINVAL, with the position and
 * value) on a token outside the vocabulary or a shape beyond what was reserved; TERN_ENOMEM when
 * the logits do not fit; the backend's failure when it had one. */
tern_status tern_model_forward(tern_model *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T, float *loss);
/* Backward pass for the last forward (which must have had targets). Gradients are accumulated
 * (+=), scaled by loss_scale (1/grad_accum for accumulation), so the sum over micro-batches is the
 * gradient of the mean loss. */
tern_status tern_model_backward(tern_model *m, float loss_scale);
/* Forward and backward in one call, as training does: the head's logits, loss and gradient are
 * computed together chunk by chunk. A non-finite value found by anomaly detection before the
 * blocks' backward pass fails the call (TERN_ENUMERIC) with the gradients partly accumulated. */
tern_status tern_model_forward_backward(tern_model *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T,
                                        float loss_scale, float *loss);
/* Called as parameter gradients become final, so that data-parallel training can send them while
 * the pass goes on: unit = n_layer once the final norm's (and an untied head's) are done, unit = l
 * once block l's are (l = n_layer-1 down to 0), unit = -1 at the end (embeddings). NULL: none. */
typedef void (*tern_grad_hook)(void *ctx, int unit);
void tern_model_set_grad_hook(tern_model *m, tern_grad_hook fn, void *ctx);
tern_status tern_model_zero_grad(tern_model *m);

/* ---- the tensor table and the model's memory ---- */
size_t tern_model_num_params(const tern_model *m);
const tern_tensor *tern_model_tensors(const tern_model *m, size_t *n);
/* The tensor of that Hugging Face name, or NULL. */
const tern_tensor *tern_model_find(const tern_model *m, const char *name);
/* What precedes the table's names in a Hugging Face folder ("transformer." for GPT-2, whose table
 * leaves it out; "" for Llama, whose names are whole). */
const char *tern_model_hf_prefix(const tern_model *m);
typedef enum { TERN_PARAMS, TERN_GRADS } tern_which;
/* Copies floats [off, off+n) of the parameters or gradients (in tensor-table order) to or from
 * host memory. */
tern_status tern_model_read(tern_model *m, tern_which which, size_t off, size_t n, float *dst);
tern_status tern_model_write(tern_model *m, tern_which which, size_t off, size_t n, const float *src);
/* The parameter or gradient buffer in the backend's memory, for a communicator that moves it
 * between ranks (MPI on host memory, NCCL on a GPU's); nothing else may dereference it. */
float *tern_model_buffer(tern_model *m, tern_which which);
/* Per-position losses (B,T) of the last forward pass with targets, or logits (B,T,V) of the last
 * forward without targets, copied to dst (host). */
tern_status tern_model_losses(tern_model *m, float *dst);
tern_status tern_model_logits(tern_model *m, float *dst);
/* The logits of n positions from pos of the flattened (B*T) positions: n*V floats. */
tern_status tern_model_logits_rows(tern_model *m, size_t pos, size_t n, float *dst);

/* ---- memory accounting, recomputation, anomalies ---- */
/* Bytes tern_model_reserve(B, T) allocates for a model of this shape (no allocation). */
size_t tern_model_activation_bytes_for(const tern_model_config *cfg, size_t B, size_t T, int recompute);
/* Activation recomputation: keep only each block's output from the forward pass and recompute a
 * block's inner activations during the backward pass, one block at a time; the forward pass of
 * the blocks runs twice, results are bit-identical. Call before tern_model_reserve: a change
 * drops the reserved buffers. */
void tern_model_set_recompute(tern_model *m, int on);
size_t tern_model_activation_bytes(const tern_model *m);
/* Anomaly detection: when on, every kernel's output is scanned for NaN and infinity; the forward
 * pass then fails (TERN_ENUMERIC) naming the first kernel that produced one, and after a backward
 * pass tern_model_anomaly() names it (NULL when none). Costs a pass over every activation. */
void tern_model_set_anomaly_detection(tern_model *m, int on);
const char *tern_model_anomaly(const tern_model *m);

/* ---- generation with a key-value cache ---- */
typedef struct tern_model_cache tern_model_cache;
/* A cache for up to n_ctx positions. */
tern_status tern_model_cache_init(tern_model_cache **out, tern_model *m);
void tern_model_cache_free(tern_model_cache *c);
void tern_model_cache_reset(tern_model_cache *c);
size_t tern_model_cache_len(const tern_model_cache *c);
/* Feeds one token at the next position and returns that position's logits (V floats in host
 * memory, valid until the next call). Equal, up to rounding, to the last row of a full forward
 * pass over the tokens fed so far. Fails when the cache is full or the token is out of range. */
tern_status tern_model_cache_step(tern_model *m, tern_model_cache *c, int32_t token, const float **logits);
#endif
