/* The data-parallel training step over a communicator (tern/comm.h): gradients averaged in
 * buckets while the backward pass goes on, ZeRO stage 1 (each rank keeps AdamW's moments for its
 * shard only), and checkpoints that do not depend on the number of ranks. Follows ZeRO
 * (Rajbhandari et al., 2020). */
#ifndef TERN_DDP_H
#define TERN_DDP_H
#include "tern/comm.h"

/* ---- the data-parallel training step ----
 * With W ranks of B rows, step s reads the window (s*A + a) of B*W rows for each micro-batch a,
 * rank r rows r*B .. r*B+B-1: the rows one process with batch B*W reads. The backward pass is
 * scaled by 1/W so that the sum over ranks is the gradient of the global mean loss. */
typedef struct tern_ddp tern_ddp;
struct tern_model;
struct tern_ckpt_seal;
struct tern_adamw;
struct tern_dataset;

/* comm is borrowed (NULL: one process). zero: 0 (every rank keeps all of AdamW's moments;
 * gradients all-reduced) or 1 (ZeRO-1: moments for this rank's shard only; gradients
 * reduce-scattered, parameters all-gathered after the update). overlap: reduce the gradients in
 * buckets (consecutive units of the backward pass: ln_f, each block, the embeddings; at least
 * 1 MiB each, one message each) as soon as each is complete, rather than all after the pass. */
tern_status tern_ddp_init(tern_ddp **out, tern_comm *comm, int zero, int overlap);
void tern_ddp_free(tern_ddp *d);
int tern_ddp_rank(const tern_ddp *d);
int tern_ddp_size(const tern_ddp *d);
/* Ranks on this node (they share its memory and cores). */
int tern_ddp_local_size(const tern_ddp *d);
/* Rank 0 alone prints progress and writes files. */
int tern_ddp_is_root(const tern_ddp *d);
/* Threads per rank for `--threads n`: n when positive; 0 (all cores) for one process; else the
 * cores the launcher bound this rank to, or this node's cores shared among its ranks. */
int tern_ddp_threads(const tern_ddp *d, int n);
/* Sets *flag to 1 on every rank when it is set on any (a stop request, a time limit). */
tern_status tern_ddp_any(tern_ddp *d, int *flag);
/* Sums n doubles over the ranks, in place (a no-op for one process). */
tern_status tern_ddp_sum_f64(tern_ddp *d, double *x, size_t n);
/* Sets *v to the largest value any rank holds (one collective: e.g. 2 = a stop request,
 * 1 = the time limit, 0 = go on). */
tern_status tern_ddp_max(tern_ddp *d, int *v);
/* Fails on every rank unless all ranks hold the same bytes (e.g. the resolved options). */
tern_status tern_ddp_check_same(tern_ddp *d, const char *what, const void *p, size_t n);
/* Rows per rank when a run continues on this number of ranks: the checkpoint's global batch
 * (rows per window, 0 if unknown) divided by W, unless --batch was given (batch_given). */
tern_status tern_ddp_fit_batch(tern_ddp *d, long long *batch, int batch_given, long long global_batch);

/* Ties the model to the ranks: checks that all built the same model, broadcasts rank 0's
 * parameters, splits the parameter buffer into shards, and (overlap) hooks the backward pass. */
tern_status tern_ddp_attach(tern_ddp *d, struct tern_model *m);
/* The parameter range whose AdamW moments this rank keeps: everything with --zero 0. */
void tern_ddp_shard(const tern_ddp *d, size_t *begin, size_t *end);
/* tern_model_forward_backward with the gradient scaled by loss_scale/W; `last`: the step's last
 * micro-batch, whose gradients are reduced (as the pass goes on when overlapping). */
tern_status tern_ddp_forward_backward(tern_ddp *d, const int32_t *inputs, const int32_t *targets, size_t B, size_t T,
                                      float loss_scale, int last, float *loss);
/* Finishes the gradient reduction of the step; *loss (this rank's mean) becomes the global
 * mean, and *norm is the global gradient norm (of the averaged gradients). With --zero 1 only
 * this rank's shard of the gradients is averaged. */
tern_status tern_ddp_reduce_grads(tern_ddp *d, double *loss, double *norm);
/* After the optimizer step: with --zero 1, every rank receives the others' updated shards. */
tern_status tern_ddp_sync_params(tern_ddp *d);
/* tern_eval_loss over windows of B*W rows, each rank evaluating its B rows: the same value as
 * one process with batch B*W, up to rounding. *tokens counts all ranks' tokens. */
tern_status tern_ddp_eval_loss(tern_ddp *d, const struct tern_dataset *val, size_t B, size_t T, size_t batches,
                               double *loss, size_t *tokens);
/* tern_ckpt_save by rank 0, with every rank's shard of the moments gathered first under
 * --zero 1: the same files as one process writes. Every rank calls it. */
tern_status tern_ddp_ckpt_save(tern_ddp *d, const char *rundir, uint64_t step, struct tern_adamw *opt, const char *state_json,
                               int keep, const struct tern_ckpt_seal *seal);
/* Reads this rank's shard of a checkpoint's optimizer.safetensors (written by any number of
 * ranks) into opt, which must cover tern_ddp_shard's range; a tensor at a time. */
tern_status tern_ddp_ckpt_load_optimizer(tern_ddp *d, const char *ckptdir, struct tern_adamw *opt, const struct tern_ckpt_seal *seal);
#endif
