/* Private to train/: the run's record in its ledger (record.c). */
#ifndef TERN_TRAIN_INT_H
#define TERN_TRAIN_INT_H
#include "tern/ledger.h"
#include "tern/train.h"

/* Starts RUNDIR/ledger.jsonl for a new run, or opens it and records a resume from ckdir at
 * step. The start entry holds the hashes of config.json, the data manifest and the tokenizer,
 * the hardware of every rank's host with its export-control figures (hw, from
 * tern_run_gather_hardware), and the site declaration when --site is given; a resume entry
 * records hw too, since a run may go on elsewhere. sign_key (a file, may be NULL) signs every
 * entry. */
struct tern_comm;
struct cJSON;
/* Every rank's hardware summary (tern hw --json's objects, each with its "rank"), gathered on
 * every rank in rank order: {"ranks": W, "hosts": [...]}. All ranks must call it. comm NULL: this
 * process alone. */
tern_status tern_run_gather_hardware(struct tern_comm *comm, struct cJSON **out);
tern_status tern_run_record_open(tern_ledger **out, tern_sign_key **sk, const tern_train_opts *o,
                                 const uint8_t tokenizer_hash[TERN_HASH_BYTES], const char *ckdir, uint64_t step,
                                 const struct cJSON *hw);
/* Records the checkpoint of step (its three files' hashes) and the loss reached (NaN: the loss
 * is left out, as a run with --seal-metrics keeps its metrics sealed). */
tern_status tern_run_record_checkpoint(tern_ledger *l, uint64_t step, double loss);
#endif
