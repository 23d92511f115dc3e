/* GPT-2 as Hugging Face's GPT2LMHeadModel computes it: learned token and position embeddings,
 * pre-LayerNorm blocks (eps 1e-5) with causal multi-head attention and a 4x GELU(tanh) MLP, a
 * final LayerNorm, and an output head tied to the token embedding; no dropout.
 * Parameters, gradients and activations each live in one allocation, addressed through a table
 * of named tensors with Hugging Face's names and shapes. */
#ifndef TERN_MODEL_H
#define TERN_MODEL_H
#include "tern/core.h"

typedef struct tern_gpt2_config {
    int n_layer;
    int n_head;
    int n_embd;
    int n_ctx;      /* number of positions (n_positions): the longest sequence */
    int vocab_size;
} tern_gpt2_config;

/* Checks that the shape is usable (positive sizes, n_embd divisible by n_head, sizes that fit
 * in memory arithmetic); the message says which field is wrong. */
tern_status tern_gpt2_config_check(const tern_gpt2_config *cfg);
/* Parameters in the model (tied head counted once). */
size_t tern_gpt2_config_num_params(const tern_gpt2_config *cfg);

/* A named tensor: Hugging Face name (no "transformer." prefix), shape, and where it lives in the
 * flat parameter (and gradient, and optimizer moment) buffer. decay: AdamW weight decay applies
 * (tensors of two or more dimensions). */
typedef struct tern_tensor {
    char name[48];
    int ndim;
    size_t shape[2];
    size_t offset;
    size_t numel;
    int decay;
} tern_tensor;

typedef struct tern_gpt2 tern_gpt2;

/* Allocates parameters and gradients (zeroed) and builds the tensor table. */
tern_status tern_gpt2_init(tern_gpt2 **out, const tern_gpt2_config *cfg);
void tern_gpt2_free(tern_gpt2 *m);
/* Allocates activations for batches of up to B rows of up to T tokens (T <= n_ctx). Calling it
 * again with a larger shape reallocates; no step allocates. */
tern_status tern_gpt2_reserve(tern_gpt2 *m, size_t B, size_t T);
/* GPT-2's initialisation: weights N(0, 0.02), residual projections (attn.c_proj, mlp.c_proj)
 * N(0, 0.02/sqrt(2*n_layer)), biases 0, LayerNorm weights 1. Drawn from the counter RNG keyed by
 * (seed, tensor), so the same seed gives the same model whatever the thread count. */
void tern_gpt2_init_weights(tern_gpt2 *m, uint64_t seed);

/* Forward pass over inputs (B,T). With targets, *loss (if non-NULL) receives the mean
 * cross-entropy, computed over chunks of positions without keeping the logits; without targets
 * the logits (B,T,V) are kept for tern_gpt2_logits (their buffer is allocated by the first such
 * call, or a larger one). Fails (TERN_EINVAL, with the position and value) on a token outside the
 * vocabulary or a shape beyond what was reserved; TERN_ENOMEM when the logits do not fit. */
tern_status tern_gpt2_forward(tern_gpt2 *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T,
                              float *loss);
/* Backward pass for the last forward (which must have had targets). Gradients are accumulated
 * (+=) into the gradient buffer, scaled by loss_scale (1/grad_accum for accumulation), so the
 * sum over micro-batches is the gradient of the mean loss. Recomputes the logits chunk by chunk
 * (one more head product than tern_gpt2_forward_backward needs). */
void tern_gpt2_backward(tern_gpt2 *m, float loss_scale);
/* Forward and backward in one call, as training does: the head's logits, loss and gradient are
 * computed together chunk by chunk, so neither (B,T,V) logits nor a second head product are
 * needed. Same results as forward then backward up to rounding. A non-finite value found by
 * anomaly detection before the blocks' backward pass fails the call (TERN_ENUMERIC) with the
 * gradients partly accumulated. */
tern_status tern_gpt2_forward_backward(tern_gpt2 *m, const int32_t *inputs, const int32_t *targets, size_t B, size_t T,
                                       float loss_scale, float *loss);
/* Called by tern_gpt2_backward as parameter gradients become final, so that data-parallel
 * training can send them while the pass goes on: block = n_layer once ln_f's are done, block = l
 * once block l's are (l = n_layer-1 down to 0), block = -1 at the end (wte, wpe). NULL: none. */
typedef void (*tern_gpt2_grad_hook)(void *ctx, int block);
void tern_gpt2_set_grad_hook(tern_gpt2 *m, tern_gpt2_grad_hook fn, void *ctx);
void tern_gpt2_zero_grad(tern_gpt2 *m);

const tern_gpt2_config *tern_gpt2_cfg(const tern_gpt2 *m);
float *tern_gpt2_params(tern_gpt2 *m);
float *tern_gpt2_grads(tern_gpt2 *m);
size_t tern_gpt2_num_params(const tern_gpt2 *m);
const tern_tensor *tern_gpt2_tensors(const tern_gpt2 *m, size_t *n);
/* The tensor of that Hugging Face name, or NULL. */
const tern_tensor *tern_gpt2_find(const tern_gpt2 *m, const char *name);
/* Logits (B,T,V) of the last forward pass without targets (NULL before one). */
const float *tern_gpt2_logits(const tern_gpt2 *m);
/* Per-position losses (B,T) of the last forward pass with targets. */
const float *tern_gpt2_losses(const tern_gpt2 *m);
/* Bytes that tern_gpt2_reserve(B, T) allocates for a model of this shape (no allocation), with
 * or without recomputation. */
size_t tern_gpt2_activation_bytes_for(const tern_gpt2_config *cfg, size_t B, size_t T, int recompute);
/* Activation recomputation: keep only each block's output from the forward pass and recompute a
 * block's inner activations (LayerNorms, q/k/v, attention, MLP) from its input during the
 * backward pass, one block at a time. Activation memory falls from about (18C + NH) x L floats
 * per token to (17C + NH) + L*C; the forward pass of the blocks runs twice. Results are
 * bit-identical to a run without it (the same kernels on the same inputs). Call before
 * tern_gpt2_reserve: a change drops the reserved buffers. */
void tern_gpt2_set_recompute(tern_gpt2 *m, int on);
/* Bytes of the activation buffers reserved. */
size_t tern_gpt2_activation_bytes(const tern_gpt2 *m);
/* Anomaly detection: when on, every kernel's output is scanned for NaN and infinity; the forward
 * pass then fails (TERN_ENUMERIC) naming the first kernel that produced one, and after a backward
 * pass tern_gpt2_anomaly() names it (NULL when none). Costs a pass over every activation. */
void tern_gpt2_set_anomaly_detection(tern_gpt2 *m, int on);
const char *tern_gpt2_anomaly(const tern_gpt2 *m);
/* Threads for kernels and matrix products (0 = all cores). */
void tern_set_threads(int n);
/* Selects a kernel set by name ("ref", "cpu"); default is tern_kern_get()'s. */
tern_status tern_gpt2_set_kernels(tern_gpt2 *m, const char *name);

/* ---- generation with a key-value cache ---- */
typedef struct tern_gpt2_cache tern_gpt2_cache;
/* A cache for up to n_ctx positions. */
tern_status tern_gpt2_cache_init(tern_gpt2_cache **out, const tern_gpt2 *m);
void tern_gpt2_cache_free(tern_gpt2_cache *c);
void tern_gpt2_cache_reset(tern_gpt2_cache *c);
size_t tern_gpt2_cache_len(const tern_gpt2_cache *c);
/* Feeds one token at the next position and returns that position's logits (V floats, valid
 * until the next call). Equal, up to rounding, to the last row of a full forward pass over the
 * tokens fed so far. Fails when the cache is full (n_ctx tokens) or the token is out of range. */
tern_status tern_gpt2_cache_step(tern_gpt2 *m, tern_gpt2_cache *c, int32_t token, const float **logits);
#endif
