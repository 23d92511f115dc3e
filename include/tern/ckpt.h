/* Checkpoints (docs/FORMATS.md, "Checkpoints"): RUNDIR/ckpt/step-NNNNNN/ holding model.safetensors
 * (the family's Hugging Face names), optimizer.safetensors (AdamW's moments per tensor, torch's
 * exp_avg/exp_avg_sq names) and state.json, with RUNDIR/ckpt/latest naming the newest; and the
 * generic move of a model's tensors to and from safetensors that checkpoints and the Hugging Face
 * export share. A checkpoint does not depend on the backend or the number of ranks that wrote it. */
#ifndef TERN_CKPT_H
#define TERN_CKPT_H
#include "tern/model.h"
#include "tern/optim.h"
#include "tern/safetensors.h"

struct tern_key;

/* How a run's checkpoint files are sealed: with key, under the identity "run <run_id> ckpt step
 * <N> <file name>", so that a checkpoint of another run, step or role is refused; a NULL seal (or
 * key) means plain files, and then a sealed file is refused, naming it. */
typedef struct tern_ckpt_seal {
    const struct tern_key *key;
    const char *run_id;
} tern_ckpt_seal;

/* ---- tensors <-> safetensors ---- */
/* Adds every tensor of the model's table to w under prefix + name, float32, read from the
 * backend piece by piece as w is written; metadata format=pt. */
tern_status tern_params_to_st(tern_model *m, const char *prefix, tern_st_writer *w);
/* Whether a tensor in a file but not in the model may be left alone (e.g. Hugging Face's causal
 * mask buffers, or a tied head equal to the embedding); returns TERN_OK to skip it, else a refusal. */
typedef tern_status (*tern_params_extra)(tern_model *m, const tern_safetensors *sf, const tern_st_entry *e, void *ctx);
/* Loads every tensor of the table from sf, named prefix + name or name alone, each with exactly
 * the table's shape (F16, BF16 and F64 converted); a missing tensor or a wrong shape is refused by
 * name, and so is any tensor the model does not have unless extra (may be NULL) lets it pass. */
tern_status tern_params_from_st(tern_model *m, const tern_safetensors *sf, const char *prefix, tern_params_extra extra, void *ctx);

/* ---- checkpoint folders ---- */
/* Writes a checkpoint folder atomically (written aside, fsynced, renamed), points
 * RUNDIR/ckpt/latest at it, and removes all but the newest `keep`. opt must cover every
 * parameter (a ZeRO run gathers its shards first). state_json is the run state. */
tern_status tern_ckpt_save(const char *rundir, uint64_t step, tern_model *m, tern_adamw *opt, const char *state_json, int keep,
                           const tern_ckpt_seal *seal);
/* The folder `latest` points to (malloc'd), or TERN_ENOTFOUND when the run has no checkpoint. */
tern_status tern_ckpt_latest(const char *rundir, char **ckptdir);
/* The folder of a given step (malloc'd), checked to exist. */
tern_status tern_ckpt_at_step(const char *rundir, uint64_t step, char **ckptdir);
tern_status tern_ckpt_load_model(const char *ckptdir, tern_model *m, const tern_ckpt_seal *seal);
/* Reads the moments of opt's range [begin, end) (one rank's shard, or all), whoever wrote them. */
tern_status tern_ckpt_load_optimizer(const char *ckptdir, tern_model *m, tern_adamw *opt, const tern_ckpt_seal *seal);
/* state.json as text (malloc'd). */
tern_status tern_ckpt_read_state(const char *ckptdir, char **json, const tern_ckpt_seal *seal);
#endif
