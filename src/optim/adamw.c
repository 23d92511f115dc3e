/* AdamW as torch.optim.AdamW computes it (decoupled decay first, then the bias-corrected Adam
 * step), learning-rate schedules, and clipping. Loops are over flat ranges so the same code
 * serves one process and one ZeRO shard. */
#include "tern/optim.h"

#include <math.h>
#include <string.h>

tern_status tern_adamw_init(tern_adamw *opt, size_t begin, size_t end) {
    memset(opt, 0, sizeof *opt);
    TERN_ASSERT(begin <= end);
    size_t n = end - begin;
    TERN_TRY(tern_alloc((void **)&opt->m, n * sizeof(float), "AdamW first moments"));
    tern_status st = tern_alloc((void **)&opt->v, n * sizeof(float), "AdamW second moments");
    if (st != TERN_OK) {
        tern_free(opt->m);
        opt->m = NULL;
        return st;
    }
    opt->begin = begin;
    opt->end = end;
    return TERN_OK;
}

void tern_adamw_free(tern_adamw *opt) {
    tern_free(opt->m);
    tern_free(opt->v);
    memset(opt, 0, sizeof *opt);
}

static void adamw_range(float *p, const float *g, float *m, float *v, size_t n, float lr, float decay, float b1,
                        float b2, float eps, float bc1, float bc2_sqrt) {
    float step_size = lr / bc1;
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float pi = p[i] * decay;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi - step_size * mi / denom;
    }
}

void tern_adamw_step(tern_adamw *opt, float *params, const float *grads, const tern_tensor *tensors, size_t ntensors,
                     float lr, uint64_t t, const tern_adamw_hparams *hp) {
    TERN_ASSERT(t >= 1);
    float bc1 = 1.0f - powf(hp->beta1, (float)t);
    float bc2_sqrt = sqrtf(1.0f - powf(hp->beta2, (float)t));
    for (size_t k = 0; k < ntensors; k++) {
        size_t lo = tensors[k].offset, hi = lo + tensors[k].numel;
        if (lo < opt->begin) lo = opt->begin;
        if (hi > opt->end) hi = opt->end;
        if (lo >= hi) continue;
        float decay = tensors[k].decay ? 1.0f - lr * hp->weight_decay : 1.0f;
        adamw_range(params + lo, grads + lo, opt->m + (lo - opt->begin), opt->v + (lo - opt->begin), hi - lo, lr, decay,
                    hp->beta1, hp->beta2, hp->eps, bc1, bc2_sqrt);
    }
}

float tern_lr_at(const tern_lr_schedule *s, uint64_t step) {
    if (step < s->warmup) return s->lr_max * (float)(step + 1) / (float)s->warmup;
    if (s->kind == TERN_SCHED_CONSTANT) return s->lr_max;
    double p = s->total > s->warmup ? (double)(step - s->warmup) / (double)(s->total - s->warmup) : 1.0;
    if (p > 1.0) p = 1.0;
    return (float)(s->lr_min + (s->lr_max - s->lr_min) * 0.5 * (1.0 + cos(M_PI * p)));
}

#define SQ_BLOCK 4096

double tern_sum_squares(const float *x, size_t n) {
    size_t nb = (n + SQ_BLOCK - 1) / SQ_BLOCK;
    double total = 0.0;
    /* Per-block partial sums are each computed by one thread; their sum runs in block order. */
    double partial[256];
    for (size_t b0 = 0; b0 < nb; b0 += 256) {
        size_t bn = nb - b0 < 256 ? nb - b0 : 256;
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < bn; b++) {
            size_t lo = (b0 + b) * SQ_BLOCK, hi = lo + SQ_BLOCK < n ? lo + SQ_BLOCK : n;
            double s = 0.0;
            for (size_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
            partial[b] = s;
        }
        for (size_t b = 0; b < bn; b++) total += partial[b];
    }
    return total;
}

void tern_clip_grads(float *grads, size_t n, double norm, float max_norm) {
    double coef = (double)max_norm / (norm + 1e-6);
    if (coef >= 1.0) return;
    float c = (float)coef;
#pragma omp parallel for schedule(static) if ((n) >= TERN_OMP_MIN_WORK)
    for (size_t i = 0; i < n; i++) grads[i] *= c;
}
