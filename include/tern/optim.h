/* AdamW with decoupled weight decay, learning-rate schedules, and global-norm gradient clipping,
 * over a model's flat parameter buffer (or one rank's range of it), computed by the model's
 * backend. Follows torch.optim.AdamW and torch.nn.utils.clip_grad_norm_; knows nothing of models
 * beyond the tensor table's decay flags. */
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
 * process; one rank's shard under ZeRO-1), in the backend's memory. */
typedef struct tern_adamw {
    tern_backend *be;
    float *m, *v;
    size_t begin, end;
} tern_adamw;

tern_status tern_adamw_init(tern_adamw *opt, tern_backend *be, size_t begin, size_t end);
void tern_adamw_free(tern_adamw *opt);
/* One update of the model's parameters in [begin, end) with its gradients, at 1-based step t
 * and learning rate lr; the tensor table gives the decay flags. */
tern_status tern_adamw_step(tern_adamw *opt, tern_model *m, float lr, uint64_t t, const tern_adamw_hparams *hp);
/* The same with the gradients taken as multiplied by grad_scale (clipping's coefficient,
 * tern_clip_coef), which saves tern_clip_grads' pass over them; the gradients stay as they are.
 * The result is tern_clip_grads then tern_adamw_step, bit for bit. */
tern_status tern_adamw_step_scaled(tern_adamw *opt, tern_model *m, float lr, uint64_t t, const tern_adamw_hparams *hp, float grad_scale);
/* Copies moments [off, off+n) (relative to the whole buffer, inside [begin, end)) to or from the
 * host: first moments when second is 0, second moments when it is 1. */
tern_status tern_adamw_read(tern_adamw *opt, int second, size_t off, size_t n, float *dst);
tern_status tern_adamw_write(tern_adamw *opt, int second, size_t off, size_t n, const float *src);

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

/* Sum of squares of the model's gradients in [begin, end), in double, in a fixed order whatever
 * the thread count. */
double tern_grad_sum_squares(tern_model *m, size_t begin, size_t end);
/* Scales the gradients in [begin, end) by max_norm/(norm+1e-6) when that is below 1 (torch's
 * clip_grad_norm_). */
void tern_clip_grads(tern_model *m, size_t begin, size_t end, double norm, float max_norm);
/* The coefficient tern_clip_grads scales by: max_norm/(norm+1e-6), or 1 when that is not below 1. */
float tern_clip_coef(double norm, float max_norm);
#endif
