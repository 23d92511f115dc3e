/* Private to train/: the run's record in its ledger (record.c), and what it reads (source.c). */
#ifndef TERN_TRAIN_INT_H
#define TERN_TRAIN_INT_H
#include "tern/data.h"
#include "tern/ledger.h"
#include "tern/train.h"

/* The run's data: one folder or a mixture of several (--data DIR or DIR:W,DIR:W,...). */
typedef struct train_source {
    size_t n;                /* folders: 1 without a mixture */
    tern_mixture_spec spec;  /* their paths and weights */
    tern_dataset **train;    /* each folder's train split */
    tern_dataset **val;      /* and its val split (NULL when it has none) */
    char **names;            /* each folder's last path component, for metrics keys */
    uint64_t *drawn;         /* windows drawn from each folder (a mixture's metrics) */
    tern_loader *loader;     /* one folder */
    tern_mixture *mix;       /* several */
} train_source;
struct tern_key;
/* Opens every folder's splits; all must come from one tokenizer (refused naming the folder). */
tern_status train_source_open(train_source *d, const char *spec, const struct tern_key *key);
/* The window order: B_global rows of T tokens per window, over all ranks. */
tern_status train_source_start(train_source *d, size_t B_global, size_t T, int shuffle, uint64_t seed);
tern_status train_source_get(train_source *d, uint64_t cursor, size_t row0, size_t nrows, int32_t *in, int32_t *tg);
uint64_t train_source_tokens(const train_source *d);
double train_source_share(const train_source *d, size_t i); /* 1 for one folder */
void train_source_free(train_source *d);

struct cJSON;
/* --resume: reads the run's config.json (cfgpath) under the options given now (o, whose `set`
 * says which were given). Options not given take the run's values. Given with another value than
 * the run's, a FIXED option is refused by name ("--n-layer 2 differs from the run's 4 ..."), a
 * RUN option is a change: {"key", "from", "to"} appended to *changes. *history is config.json's
 * "history" (an empty array when it has none). The tokenizer is left to the caller, which
 * compares tokenizers by content. Both arrays are the caller's to free. */
tern_status train_opts_resume(tern_train_opts *o, const char *cfgpath, struct cJSON **changes, struct cJSON **history);
/* A change as "lr 0.002 -> 0.001". */
void train_change_text(char *out, size_t n, const struct cJSON *change);

/* Starts RUNDIR/ledger.jsonl for a new run, or opens it and records a resume from ckdir at
 * step. The start entry holds the hashes of config.json, the data manifest and the tokenizer,
 * the hardware of every rank's host with its export-control figures (hw, from
 * tern_run_gather_hardware), and the site declaration when --site is given; a resume entry
 * records hw too, since a run may go on elsewhere, and the options changed with it (changes,
 * from train_opts_resume; NULL or empty: none) with the hash of the config.json that holds them.
 * sign_key (a file, may be NULL) signs every entry. */
struct tern_comm;
struct cJSON;
/* Every rank's hardware summary (tern hw --json's objects, each with its "rank"), gathered on
 * every rank in rank order: {"ranks": W, "hosts": [...]}. All ranks must call it. comm NULL: this
 * process alone. */
tern_status tern_run_gather_hardware(struct tern_comm *comm, struct cJSON **out);
tern_status tern_run_record_open(tern_ledger **out, tern_sign_key **sk, const tern_train_opts *o,
                                 const uint8_t tokenizer_hash[TERN_HASH_BYTES], const char *ckdir, uint64_t step,
                                 const struct cJSON *hw, const struct cJSON *changes);
/* Records the checkpoint of step (its three files' hashes) and the loss reached (NaN: the loss
 * is left out, as a run with --seal-metrics keeps its metrics sealed). */
tern_status tern_run_record_checkpoint(tern_ledger *l, uint64_t step, double loss);
#endif
