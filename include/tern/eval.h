/* Benchmark tasks: HellaSwag, LAMBADA (OpenAI's version) and PIQA, scored zero-shot by the
 * log-likelihood a model gives each continuation of a context, as lm-evaluation-harness scores
 * them (and llm.c and llama.cpp score HellaSwag). The scoring core knows no model family: a model
 * plugs in through tern_lm, one callback that gives log-probabilities of continuation tokens
 * given context tokens; tern_lm_model is GPT-2's. docs/EVALUATION.md gives the tasks' texts,
 * metrics and data files. */
#ifndef TERN_EVAL_H
#define TERN_EVAL_H
#include "tern/core.h"

struct tern_tok;
struct tern_model;
struct tern_model_cache;

/* ---- sampling (src/eval/sample.c) ---- */
typedef struct tern_sample_opts {
    double temperature; /* 0: greedy */
    size_t top_k;       /* draw among the k most likely tokens; 0: all */
    double top_p;       /* and among the fewest whose probabilities add up to top_p, in (0, 1]; 1: all */
    uint64_t seed;      /* the draws: the counter RNG keyed by seed */
    uint64_t index;     /* which sample of that seed: each index draws a different text */
    size_t max_tokens;  /* tokens to generate at most */
} tern_sample_opts;
/* Receives each generated token's bytes as it is drawn; an error stops the generation. */
typedef tern_status (*tern_sample_emit)(void *ctx, const uint8_t *bytes, size_t n);
/* Generates text after <|endoftext|> and the prompt (NULL: none; its last n_ctx tokens are
 * kept), until <|endoftext|> or max_tokens; past the model's context the cache is refilled with
 * the last half of the tokens so far. cache (tern_model_cache_init of m) is reset first. The
 * tokenizer must have the model's vocabulary. The same options give the same text. */
tern_status tern_sample_text(struct tern_model *m, struct tern_model_cache *cache, const struct tern_tok *tok, const char *prompt,
                             const tern_sample_opts *so, tern_sample_emit emit, void *ctx);

/* ---- the model's side ---- */
/* A request: the log-likelihood of cont given ctx. Both have at least one token. */
typedef struct tern_lm_req {
    const int32_t *ctx;
    size_t n_ctx;
    const int32_t *cont;
    size_t n_cont;
} tern_lm_req;

typedef struct tern_lm_res {
    double logprob; /* sum over j of log p(cont[j] | ctx, cont[0..j)) */
    int greedy;     /* 1 when every cont[j] is the most likely token at its position (the first of equals) */
} tern_lm_res;

/* A model as the tasks see it. score() fills res[0..n) for req[0..n); it is called with at most
 * `batch` requests at a time, each with n_ctx + n_cont - 1 <= max_len (the core cuts contexts on
 * the left to fit, as lm-evaluation-harness does). free(self) releases self (may be NULL). */
typedef struct tern_lm {
    void *self;
    size_t max_len; /* positions the model takes */
    size_t batch;   /* requests it scores best in one call (one forward pass); at least 1 */
    tern_status (*score)(void *self, const tern_lm_req *req, size_t n, tern_lm_res *res);
    void (*free)(void *self);
} tern_lm;
void tern_lm_free(tern_lm *lm); /* calls lm->free and clears lm; a cleared lm is a no-op */

/* GPT-2 behind tern_lm: `rows` sequences per forward pass without targets (padded to the longest
 * of them), log-softmax of the kept (B,T,V) logits in double. The model stays reserved for at
 * least keep_B rows of keep_T tokens (a training batch; 0 0 for none), since
 * tern_model_reserve reallocates to exactly the shape asked for. The model is borrowed. */
tern_status tern_lm_model(tern_lm *lm, struct tern_model *m, size_t rows, size_t keep_B, size_t keep_T);

/* ---- tasks ---- */
#define TERN_TASK_MAX_CHOICES 4
typedef struct tern_task tern_task;

/* "hellaswag", "lambada", "piqa", then NULL. */
extern const char *const tern_task_names[];
/* The data file of a task under a data folder's eval/ (data/eval/ in this repository), e.g.
 * "eval/hellaswag/hellaswag_val_full.txt.bz2"; NULL for an unknown name. PIQA's is not
 * shipped (docs/EVALUATION.md says where to get it). */
const char *tern_task_default_file(const char *name);

/* Where a task's default data file is (malloc'd): $TERN_DATA_DIR/<default file> when that variable is
 * set, else data/<default file> under the working folder if it exists there, else under the
 * checkout holding the running program (build/tern, build/san/tern: up to four folders up), else
 * data/<default file> (so that the message of the failed open names it). */
tern_status tern_task_data_path(const char *name, char **path);
/* Reads a task's data file:
 *  hellaswag: llama.cpp's text format (klosax/hellaswag_text_data), six lines a task: context,
 *             gold ending 0-3, four endings; plain or bzip2-compressed (.bz2);
 *  lambada:   JSON Lines of {"text": ...}; the last word, after the last space, is the target;
 *  piqa:      JSON Lines of {"goal", "sol1", "sol2"} (valid.jsonl), its labels (one 0 or 1 a line)
 *             in the file beside it named X-labels.lst for X.jsonl; path may also be the folder
 *             holding valid.jsonl and valid-labels.lst.
 * Every problem is an error naming the file, the line and what was expected. */
tern_status tern_task_load(tern_task **out, const char *name, const char *path);
/* The same from bytes (a .bz2 stream is recognised by its magic); labels only for piqa. */
tern_status tern_task_parse(tern_task **out, const char *name, const char *data, size_t n, const char *data_name,
                            const char *labels, size_t labels_n, const char *labels_name);
void tern_task_free(tern_task *t);
const char *tern_task_name(const tern_task *t);
size_t tern_task_count(const tern_task *t);

/* An item's texts as scored: the context and each choice's continuation. A continuation is
 * " " + the choice (LAMBADA: " " + the last word), the target delimiter of lm-evaluation-harness.
 * Pointers are into the task (not NUL-terminated). */
typedef struct tern_task_text {
    const char *ctx;
    size_t ctx_len;
    int n_choices; /* 4 (HellaSwag), 2 (PIQA), 1 (LAMBADA) */
    int gold;      /* index of the right choice; 0 for LAMBADA */
    const char *choice[TERN_TASK_MAX_CHOICES]; /* without the leading space */
    size_t choice_len[TERN_TASK_MAX_CHOICES];
} tern_task_text;
void tern_task_text_at(const tern_task *t, size_t i, tern_task_text *out);

/* One item's scores. The three predictions are the argmax (first of equals, as numpy's) of
 * ll[c], ll[c] / chars[c] (lm-evaluation-harness's acc_norm) and ll[c] / tokens[c] (llm.c's and
 * llama.cpp's per-token normalisation). */
typedef struct tern_task_item {
    size_t index;
    int gold, n_choices;
    double ll[TERN_TASK_MAX_CHOICES];     /* log-likelihood of each continuation */
    int greedy[TERN_TASK_MAX_CHOICES];    /* tern_lm_res.greedy (LAMBADA's accuracy) */
    size_t tokens[TERN_TASK_MAX_CHOICES]; /* continuation tokens scored */
    size_t chars[TERN_TASK_MAX_CHOICES];  /* Unicode characters of the choice, without the space */
    size_t dropped; /* tokens cut on the left to fit the model (most over choices): context tokens, and for
                     * a continuation longer than the model also its first tokens, which are not scored */
    int pred, pred_norm, pred_norm_tok;
} tern_task_item;

/* Sums over scored items, all doubles so that ranks can add them in one all-reduce of
 * TERN_TASK_TALLY_N doubles (a struct of doubles only: no padding). */
typedef struct tern_task_tally {
    double n;            /* items */
    double acc;          /* items whose pred (LAMBADA: greedy) was right */
    double acc_norm;     /* ... whose pred_norm was right */
    double acc_norm_tok; /* ... whose pred_norm_tok was right */
    double ll;           /* sum of the gold continuation's log-likelihood */
    double ll_sq;        /* sum of its square */
    double truncated;    /* items whose context was cut */
} tern_task_tally;
#define TERN_TASK_TALLY_N 7

typedef struct tern_task_run_opts {
    size_t limit;    /* the first `limit` items only; 0 = all */
    int rank, world; /* this process scores items i with i % world == rank; world 0 or 1: all */
    void *ctx;       /* for the callbacks */
    void (*progress)(void *ctx, size_t done, size_t total); /* requests scored so far (may be NULL) */
    void (*on_item)(void *ctx, const tern_task_item *it);   /* each scored item, in index order (may be NULL) */
} tern_task_run_opts;

/* Encodes the items (once per tokenizer: the ids are kept in the task), scores every choice of
 * every item given with lm, in requests sorted by length so that a batch pads little, and adds the
 * items to *tally (which the caller zeroes). A context too long for the model is cut on the left;
 * a continuation longer than the model is scored on its last max_len tokens. */
tern_status tern_task_run(tern_task *t, const struct tern_tok *tok, tern_lm *lm, const tern_task_run_opts *o,
                          tern_task_tally *tally);

/* Means and standard errors from a tally: for accuracies the standard error of the mean of 0/1
 * values, sqrt(p(1-p)/(n-1)) (lm-evaluation-harness's mean_stderr); LAMBADA's perplexity is
 * exp(-mean ll) with the delta-method error ppl * sd(ll)/sqrt(n). NaN where undefined (n < 2)
 * or where the task has no such metric. */
typedef struct tern_task_metrics {
    double n;
    double acc, acc_se;
    double acc_norm, acc_norm_se;         /* HellaSwag, PIQA */
    double acc_norm_tok, acc_norm_tok_se; /* HellaSwag, PIQA */
    double ppl, ppl_se;                   /* LAMBADA */
    double truncated;
} tern_task_metrics;
void tern_task_summarize(const tern_task *t, const tern_task_tally *tally, tern_task_metrics *m);

/* The metrics as one metrics.jsonl line (malloc'd, no newline): {"step":S, "<task>_acc":...,
 * "<task>_acc_stderr":..., ..., "<task>_items":n, "<task>_truncated":k}; step < 0 leaves "step"
 * out. NaN is written as null. docs/EVALUATION.md lists the keys of each task. */
tern_status tern_task_metrics_json(const tern_task *t, const tern_task_tally *tally, int64_t step, char **json);
/* One item as a JSON Lines record for --items-out (malloc'd, no newline). */
tern_status tern_task_item_json(const tern_task *t, const tern_task_item *it, char **json);

/* For a training loop: scores the first `limit` items (this rank's share of them) with the model
 * being trained, through tern_lm_model with `rows` rows a forward pass while keeping the model
 * reserved for (keep_B, keep_T), and adds them to *tally (zeroed first). The caller all-reduces
 * the tally over ranks, then writes tern_task_metrics_json. */
tern_status tern_task_eval_model(tern_task *t, const struct tern_tok *tok, struct tern_model *m, size_t rows, size_t keep_B,
                                size_t keep_T, size_t limit, int rank, int world, tern_task_tally *tally);
#endif
