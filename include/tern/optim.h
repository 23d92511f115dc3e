/* AdamW with decoupled weight decay, learning-rate schedules, and global-norm gradient clipping,
 * on flat buffers (or one rank's range of them). Follows torch.optim.AdamW and
 * torch.nn.utils.clip_grad_norm_; knows nothing of models beyond the tensor table's decay flags. */
#ifndef TERN_OPTIM_H
#define TERN_OPTIM_H
#include "tern/core.h"
#include "tern/model.h"

typedef struct tern_adamw_hparams {
    float beta1;        /* 0.9 */
    float beta2;        /* 0.95 */
    float eps;          /* 1e-8 */
    float weight_decay; /* applied to tensors with decay set: p -= lr * wd * p */
} tern_adamw_hparams;

/* Moments for the parameter range [begin, end) of the flat buffer (the whole buffer for a single
 * process; one rank's shard under ZeRO-1). */
typedef struct tern_adamw {
    float *m, *v;
    size_t begin, end;
} tern_adamw;

tern_status tern_adamw_init(tern_adamw *opt, size_t begin, size_t end);
void tern_adamw_free(tern_adamw *opt);
/* One update of params[begin, end) with grads (indexed like params), at 1-based step t and
 * learning rate lr. tensors give the decay flags by range. */
void tern_adamw_step(tern_adamw *opt, float *params, const float *grads, const tern_tensor *tensors, size_t ntensors,
                     float lr, uint64_t t, const tern_adamw_hparams *hp);

typedef enum { TERN_SCHED_CONSTANT, TERN_SCHED_COSINE } tern_schedule;
typedef struct tern_lr_schedule {
    tern_schedule kind;
    float lr_max, lr_min;
    uint64_t warmup, total;
} tern_lr_schedule;
/* Learning rate for 0-based step s. Constant: lr_max after warm-up. Cosine: linear warm-up
 * lr_max*(s+1)/warmup for s < warmup, then lr_min + (lr_max-lr_min)*(1+cos(pi*p))/2 with
 * p = (s-warmup)/(total-warmup) clamped to [0,1]. */
float tern_lr_at(const tern_lr_schedule *sch, uint64_t s);

/* Sum of squares of x[0..n) in double, in a fixed order (blocks of 4096, summed in order), so
 * the result does not depend on the thread count. */
double tern_sum_squares(const float *x, size_t n);
/* Scales grads by max_norm/(norm+1e-6) when that is below 1 (torch's clip_grad_norm_). */
void tern_clip_grads(float *grads, size_t n, double norm, float max_norm);
#endif
