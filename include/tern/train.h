/* Training runs: the options of `tern train` (one table serves flags, --config JSON and the
 * resolved RUNDIR/config.json), and the run itself: data, model, AdamW, evaluation, metrics,
 * checkpoints, exact resume. The loop is a pure function of (step, loader cursor), so a run
 * stopped and resumed computes what an unbroken run computes, bit for bit. */
#ifndef TERN_TRAIN_H
#define TERN_TRAIN_H
#include <stdatomic.h>

#include "tern/core.h"

/* X(key, type, default, help): key is the JSON key; the flag is "--" + key with '_' -> '-'.
 * Types: I (integer), F (number), S (string), B (flag). */
#define TERN_TRAIN_OPTS(X)                                                                                      \
    X(data, S, NULL, "data folder made by `tern prepare`")                                                    \
    X(out, S, NULL, "run folder (checkpoints, metrics, config)")                                              \
    X(init, S, NULL, "start from a Hugging Face folder (GPT-2, Llama, Mistral or Qwen2: config.json + safetensors)") \
    X(tokenizer, S, NULL, "the tokenizer folder that made the data (kept in the run for export)")            \
    X(arch, S, "gpt2", "model family: gpt2 or llama (from the model with --init)")                            \
    X(n_layer, I, 4, "transformer blocks")                                                                    \
    X(n_head, I, 4, "attention heads")                                                                        \
    X(n_kv_head, I, 0, "llama: key/value heads, dividing n_head (0 = n_head; 1 = multi-query)")               \
    X(n_embd, I, 128, "width")                                                                                \
    X(ffn_dim, I, 0, "the MLP's inner width (0 = 4 x n_embd for gpt2; for llama 8/3 x n_embd up to a multiple of 256)") \
    X(rope_theta, F, 10000, "llama: the rotary embeddings' base")                                            \
    X(norm_eps, F, 1e-5, "the LayerNorm (gpt2) or RMSNorm (llama) epsilon")                                  \
    X(tie_embeddings, B, 0, "llama: the output head is the token embedding (gpt2's always is)")              \
    X(qkv_bias, B, 0, "llama: biases on the q, k and v projections (Qwen2's layout)")                        \
    X(seq, I, 64, "tokens per row (context length)")                                                         \
    X(n_ctx, I, 0, "positions the model holds (default: seq; from the model with --init)")                    \
    X(vocab_size, I, 0, "vocabulary size (default: the data's)")                                              \
    X(steps, I, 300, "optimizer steps in the whole run (the schedule's length)")                             \
    X(stop_at, I, 0, "stop (with a checkpoint) after this step; 0 = run to --steps")                          \
    X(time_limit, F, 0, "stop (with a checkpoint) once this many seconds have passed; 0 = no limit")          \
    X(batch, I, 16, "rows per micro-batch (per process)")                                                      \
    X(grad_accum, I, 1, "micro-batches per optimizer step")                                                   \
    X(zero, I, 0, "ZeRO stage over several ranks: 0 = all-reduce, 1 = each rank keeps AdamW moments for its shard") \
    X(overlap, I, 1, "over several ranks: reduce gradients while the backward pass goes on (0 = after it)")    \
    X(lr, F, 2e-3, "peak learning rate")                                                                      \
    X(min_lr, F, -1, "final learning rate of the cosine schedule (default lr/10)")                            \
    X(warmup, I, 20, "linear warm-up steps")                                                                   \
    X(schedule, S, "cosine", "constant or cosine")                                                            \
    X(weight_decay, F, 0.1, "AdamW decoupled weight decay (tensors of 2+ dimensions)")                        \
    X(beta1, F, 0.9, "AdamW beta1")                                                                           \
    X(beta2, F, 0.95, "AdamW beta2")                                                                          \
    X(eps, F, 1e-8, "AdamW epsilon")                                                                          \
    X(grad_clip, F, 1.0, "global gradient-norm clip (0 = off)")                                               \
    X(seed, I, 1337, "seed of initialisation and shuffling")                                                  \
    X(no_shuffle, B, 0, "read windows in order instead of a seeded random order per epoch")                   \
    X(eval_every, I, 100, "evaluate on the val split every N steps (0 = only at the end)")                      \
    X(eval_batches, I, 10, "val batches per evaluation")                                                      \
    X(ckpt_every, I, 100, "checkpoint every N steps (0 = only at the end)")                                     \
    X(keep, I, 3, "checkpoints to keep")                                                                      \
    X(device, S, "auto", "where to compute: auto (the fastest CPU kernels), cpu, ref, avx2, avx512, cuda or cuda:N") \
    X(precision, S, "auto", "matrix products and attention: fp32, bf16 (fp32 accumulation, master weights, AdamW), auto (bf16 on a GPU)") \
    X(threads, I, 0, "threads (0 = all cores)")                                                               \
    X(max_bad_steps, I, 10, "stop after this many non-finite steps in a row")                                 \
    X(recompute, B, 0, "keep only each block's output and recompute the rest in the backward pass (less memory, ~1/3 more compute)") \
    X(detect_anomaly, B, 0, "check every kernel's output; stop naming the first that produced NaN or inf")     \
    X(max_memory, S, NULL, "refuse to start unless the run fits this much memory (e.g. 8G, 512M)")             \
    X(policy, S, NULL, "the owner's policy (JSON): the run is refused before any data is read if it forbids it") \
    X(site, S, NULL, "this site's declaration (JSON: name, operator, country, hardware)")                      \
    X(data_class, S, NULL, "the data's class for the policy (e.g. restricted)")                                \
    X(sign_key, S, NULL, "sign every ledger entry with this Ed25519 key (tern keygen --sign)")                 \
    X(key, S, NULL, "read sealed data and write sealed checkpoints with this key (tern keygen; or TERN_KEY_FILE)") \
    X(passphrase_file, S, NULL, "the same with a key derived from the passphrase in this file")                \
    X(seal_metrics, B, 0, "seal metrics.jsonl too (with --key; it stays plain otherwise)")                     \
    X(run_id, S, NULL, "the run's identifier (default: made when the run starts); binds sealed checkpoints to it") \
    X(resume, B, 0, "continue the run in --out from its latest checkpoint")

typedef struct tern_train_opts {
#define TERN_OPT_FIELD_I long long
#define TERN_OPT_FIELD_F double
#define TERN_OPT_FIELD_S const char *
#define TERN_OPT_FIELD_B int
#define X(key, type, def, help) TERN_OPT_FIELD_##type key;
    TERN_TRAIN_OPTS(X)
#undef X
    char *owned[64]; /* strings read from JSON files, freed by tern_train_opts_free */
    int n_owned;
    unsigned char set[64]; /* which options were given explicitly */
} tern_train_opts;

void tern_train_opts_defaults(tern_train_opts *o);
void tern_train_opts_free(tern_train_opts *o);
/* Sets option `key` (JSON spelling) from text. Unknown keys and bad values are errors. */
tern_status tern_train_opts_set(tern_train_opts *o, const char *key, const char *value);
/* Reads a JSON object of options (the same keys); values given explicitly before are kept
 * (flags override the file). */
tern_status tern_train_opts_load_json(tern_train_opts *o, const char *path);
/* Whether option `key` was given explicitly (by a flag or a --config file). */
int tern_train_opts_is_set(const tern_train_opts *o, const char *key);
/* Checks ranges and relations (e.g. n_embd divisible by n_head). */
tern_status tern_train_opts_check(const tern_train_opts *o);
/* All options as a JSON object text (malloc'd). */
char *tern_train_opts_to_json(const tern_train_opts *o);
/* Prints the option list for --help. */
void tern_train_opts_help(FILE *f);

/* What a run is doing now, for a caller that reports it while the run goes on. */
typedef enum {
    TERN_PHASE_SETUP,      /* reading options and data, building the model */
    TERN_PHASE_STEP,       /* computing a step */
    TERN_PHASE_EVAL,       /* evaluating on the val split */
    TERN_PHASE_CHECKPOINT, /* writing a checkpoint */
    TERN_PHASE_CLOSING     /* the steps are over: closing the ledger and files */
} tern_train_phase;

/* Shared between a run and the thread that watches it (the program's signal thread): the caller
 * sets `stop` from any thread; the run keeps the others current. Stopping ends the step being
 * computed (or stops before the first), writes a checkpoint unless one of this step exists, and
 * returns TERN_OK. Over several ranks the run stops when any rank was asked to. */
typedef struct tern_train_control {
    atomic_int stop;
    atomic_int phase;          /* tern_train_phase */
    atomic_llong step;         /* the step being computed (TERN_PHASE_STEP), else the last one completed */
    atomic_llong ckpt_step;    /* the step of the newest complete checkpoint; -1 while there is none */
} tern_train_control;
void tern_train_control_init(tern_train_control *c);
/* What the run is busy with, as a noun phrase for messages: "step 12", "the checkpoint of step
 * 12", "start-up (reading the data, building the model)", ... */
void tern_train_control_describe(const tern_train_control *c, char *out, size_t n);

typedef struct tern_train_hooks {
    tern_train_control *control; /* NULL: the run cannot be stopped from outside */
    int progress;                /* 1: a progress display on stderr */
    struct tern_comm *comm;      /* the ranks of a data-parallel run (tern/comm.h); NULL: one process */
} tern_train_hooks;

/* Runs (or, with o->resume, continues) a training run. Returns TERN_OK when the run reached its
 * last step or was stopped on request with a checkpoint written. With hooks->comm of W ranks
 * every rank calls it with the same options (--batch is per rank) and rank 0 alone prints and
 * writes; a rank that gets an error should end the job with tern_comm_abort, since the others
 * may be waiting for it. */
tern_status tern_train_run(const tern_train_opts *o, const tern_train_hooks *hooks);

/* Mean loss of a model over up to `batches` windows (B rows of T tokens) of a data folder's val
 * split, read in order. Stores the number of tokens evaluated. */
struct tern_model;
struct tern_dataset;
tern_status tern_eval_loss(struct tern_model *m, const struct tern_dataset *val, size_t B, size_t T, size_t batches,
                           double *loss, size_t *tokens);
#endif
