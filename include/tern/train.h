/* Training runs: the options of `tern train` (one table serves flags, --config JSON and the
 * resolved RUNDIR/config.json), and the run itself: data, model, AdamW, evaluation, metrics,
 * checkpoints, exact resume. The loop is a pure function of (step, loader cursor), so a run
 * stopped and resumed computes what an unbroken run computes, bit for bit. */
#ifndef TERN_TRAIN_H
#define TERN_TRAIN_H
#include <stdatomic.h>

#include "tern/core.h"

/* X(key, type, kind, default, arg, help): key is the JSON key; the flag is "--" + key with '_' ->
 * '-' (and -o for out); arg names the value in --help ("" for a flag).
 * Types: I (integer), F (number), S (string), B (flag).
 * Kinds say what --resume does with an option given again (docs/FORMATS.md, "Run folder"):
 *   RUN    the run's: a new value changes the run from the resumed step on, and is written into
 *          config.json (with an entry in its "history") and the ledger's resume entry;
 *   FIXED  the run's, fixed when it starts (the model's shape, the tokenizer, the data order, the
 *          run's identity and sealing): a different value is refused by name;
 *   CALL   this invocation's (where and how long it runs, keys): never saved in config.json. */
#define TERN_TRAIN_OPTS(X)                                                                                      \
    X(data, S, RUN, NULL, "DIR", "data folder made by `tern prepare`, or a mixture DIR:WEIGHT,DIR:WEIGHT,... (shares of the windows)") \
    X(out, S, CALL, NULL, "RUNDIR", "run folder (checkpoints, metrics, config)") \
    X(init, S, FIXED, NULL, "HFDIR", "start from a Hugging Face folder (GPT-2, Llama, Mistral or Qwen2: config.json + safetensors)") \
    X(tokenizer, S, FIXED, NULL, "DIR", "the tokenizer folder that made the data (kept in the run for export)") \
    X(arch, S, FIXED, "gpt2", "NAME", "model family: gpt2 or llama (from the model with --init)") \
    X(n_layer, I, FIXED, 4, "N", "transformer blocks") \
    X(n_head, I, FIXED, 4, "N", "attention heads") \
    X(n_kv_head, I, FIXED, 0, "N", "llama: key/value heads, dividing n_head (0 = n_head; 1 = multi-query)") \
    X(n_embd, I, FIXED, 128, "N", "width") \
    X(ffn_dim, I, FIXED, 0, "N", "the MLP's inner width (0 = 4 x n_embd for gpt2; for llama 8/3 x n_embd up to a multiple of 256)") \
    X(rope_theta, F, FIXED, 10000, "THETA", "llama: the rotary embeddings' base") \
    X(norm_eps, F, FIXED, 1e-5, "EPS", "the LayerNorm (gpt2) or RMSNorm (llama) epsilon") \
    X(tie_embeddings, B, FIXED, 0, "", "llama: the output head is the token embedding (gpt2's always is)") \
    X(qkv_bias, B, FIXED, 0, "", "llama: biases on the q, k and v projections (Qwen2's layout)") \
    X(seq, I, FIXED, 64, "T", "tokens per row (context length)") \
    X(n_ctx, I, FIXED, 0, "N", "positions the model holds (default: seq; from the model with --init)") \
    X(vocab_size, I, FIXED, 0, "V", "vocabulary size (default: the data's)") \
    X(steps, I, RUN, 300, "N", "optimizer steps in the whole run (the schedule's length)") \
    X(stop_at, I, CALL, 0, "STEP", "stop (with a checkpoint) after this step; 0 = run to --steps") \
    X(time_limit, F, CALL, 0, "SECONDS", "stop (with a checkpoint) once this many seconds have passed; 0 = no limit") \
    X(batch, I, RUN, 16, "ROWS", "rows per micro-batch (per process)") \
    X(grad_accum, I, RUN, 1, "N", "micro-batches per optimizer step") \
    X(zero, I, RUN, 0, "STAGE", "ZeRO stage over several ranks: 0 = all-reduce, 1 = each rank keeps AdamW moments for its shard") \
    X(overlap, I, RUN, 1, "0|1", "over several ranks: reduce gradients while the backward pass goes on (0 = after it)") \
    X(lr, F, RUN, 2e-3, "LR", "peak learning rate") \
    X(min_lr, F, RUN, -1, "LR", "final learning rate of the cosine schedule (default lr/10)") \
    X(warmup, I, RUN, 20, "STEPS", "linear warm-up steps") \
    X(schedule, S, RUN, "cosine", "NAME", "constant or cosine") \
    X(weight_decay, F, RUN, 0.1, "WD", "AdamW decoupled weight decay (tensors of 2+ dimensions)") \
    X(beta1, F, RUN, 0.9, "B1", "AdamW beta1") \
    X(beta2, F, RUN, 0.95, "B2", "AdamW beta2") \
    X(eps, F, RUN, 1e-8, "EPS", "AdamW epsilon") \
    X(grad_clip, F, RUN, 1.0, "NORM", "global gradient-norm clip (0 = off)") \
    X(seed, I, FIXED, 1337, "N", "seed of initialisation and shuffling") \
    X(no_shuffle, B, FIXED, 0, "", "read windows in order instead of a seeded random order per epoch") \
    X(eval_every, I, RUN, 100, "N", "evaluate on the val split every N steps (0 = only at the end)") \
    X(eval_batches, I, RUN, 10, "N", "val batches per evaluation") \
    X(eval_task, S, RUN, NULL, "TASK", "also score a benchmark task: hellaswag, lambada or piqa (docs/EVALUATION.md)") \
    X(eval_task_every, I, RUN, 0, "N", "score the task every N steps (0 = with each evaluation)") \
    X(eval_task_limit, I, RUN, 500, "N", "items of the task per scoring (0 = all)") \
    X(eval_task_data, S, RUN, NULL, "FILE", "the task's data file (default: data/eval/ or $TERN_DATA_DIR/eval/)") \
    X(ckpt_every, I, RUN, 100, "N", "checkpoint every N steps (0 = only at the end)") \
    X(keep, I, RUN, 3, "N", "checkpoints to keep") \
    X(device, S, CALL, "auto", "NAME", "where to compute: auto (the fastest CPU kernels here, or TERN_KERN's), cpu (oneDNN products, plain C elsewhere), avx2, avx512, ref, cuda or cuda:N") \
    X(precision, S, CALL, "auto", "NAME", "matrix products and attention: fp32, bf16 (fp32 accumulation, master weights, AdamW), auto (bf16 on a GPU)") \
    X(threads, I, CALL, 0, "N", "threads (0 = all cores)") \
    X(max_bad_steps, I, RUN, 10, "N", "stop after this many non-finite steps in a row") \
    X(recompute, B, RUN, 0, "", "keep only each block's output and recompute the rest in the backward pass (less memory, ~1/3 more compute)") \
    X(detect_anomaly, B, RUN, 0, "", "check every kernel's output; stop naming the first that produced NaN or inf") \
    X(max_memory, S, CALL, NULL, "SIZE", "refuse to start unless the run fits this much memory (e.g. 8G, 512M)") \
    X(policy, S, RUN, NULL, "FILE", "the owner's policy (JSON): the run is refused before any data is read if it forbids it") \
    X(site, S, RUN, NULL, "FILE", "this site's declaration (JSON: name, operator, country, hardware)") \
    X(data_class, S, RUN, NULL, "CLASS", "the data's class for the policy (e.g. restricted)") \
    X(sign_key, S, RUN, NULL, "FILE", "sign every ledger entry with this Ed25519 key (tern keygen --sign)") \
    X(key, S, CALL, NULL, "FILE", "read sealed data and write sealed checkpoints with this key (tern keygen; or TERN_KEY_FILE)") \
    X(passphrase_file, S, CALL, NULL, "FILE", "the same with a key derived from the passphrase in this file") \
    X(seal_metrics, B, FIXED, 0, "", "seal metrics.jsonl too (with --key; it stays plain otherwise)") \
    X(tensorboard, I, RUN, 1, "0|1", "write TensorBoard event files in RUNDIR/tb as the run goes (0 = off; never with --seal-metrics)") \
    X(run_id, S, FIXED, NULL, "ID", "the run's identifier (default: made when the run starts); binds sealed checkpoints to it") \
    X(sample_every, I, RUN, 0, "N", "print a sample from the model every N steps and after the last (0 = never)") \
    X(sample_prompt, S, RUN, NULL, "TEXT", "the samples' prompt, after <|endoftext|> (default: none)") \
    X(sample_tokens, I, RUN, 64, "N", "tokens per sample") \
    X(resume, B, CALL, 0, "", "continue the run in --out from its latest checkpoint")

typedef struct tern_train_opts {
#define TERN_OPT_FIELD_I long long
#define TERN_OPT_FIELD_F double
#define TERN_OPT_FIELD_S const char *
#define TERN_OPT_FIELD_B int
#define X(key, type, kind, def, arg, help) TERN_OPT_FIELD_##type key;
    TERN_TRAIN_OPTS(X)
#undef X
    char *owned[128]; /* strings read from JSON files, freed by tern_train_opts_free */
    int n_owned;
    unsigned char set[128]; /* which options were given explicitly */
} tern_train_opts;

void tern_train_opts_defaults(tern_train_opts *o);
void tern_train_opts_free(tern_train_opts *o);
/* Whether key (JSON spelling) is an option, and whether it is a flag (type B: alone, it means
 * true). */
int tern_train_opts_known(const char *key);
int tern_train_opts_is_flag(const char *key);
/* Sets option `key` (JSON spelling) from text. Unknown keys and bad values are errors. */
tern_status tern_train_opts_set(tern_train_opts *o, const char *key, const char *value);
/* Reads a JSON object of options (the same keys, each once, each of its option's type: a string
 * or null, a number, a whole number, true or false); values given explicitly before are kept
 * (flags override the file). A wrong key or value is TERN_EINVAL; an unreadable file or one that
 * is not a JSON object another status. */
tern_status tern_train_opts_load_json(tern_train_opts *o, const char *path);
/* Whether option `key` was given explicitly (by a flag or a --config file). */
int tern_train_opts_is_set(const tern_train_opts *o, const char *key);
/* Checks ranges and relations (e.g. n_embd divisible by n_head). */
tern_status tern_train_opts_check(const tern_train_opts *o);
/* All options as a JSON object text (malloc'd). */
char *tern_train_opts_to_json(const tern_train_opts *o);
/* Prints the option list for --help: flag, value, text, default, and how --resume treats it. */
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
