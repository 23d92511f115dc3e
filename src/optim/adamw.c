/* AdamW as torch.optim.AdamW computes it (decoupled decay first, then the bias-corrected Adam
 * step), learning-rate schedules, and clipping. The arithmetic is the backend's (its adamw,
 * sumsq and scale kernels); this file walks the tensor table's ranges, so the same code serves
 * one process and one ZeRO shard. */
#include "tern/optim.h"

#include "backend/backend_int.h"

#include <math.h>
#include <string.h>

tern_status tern_adamw_init(tern_adamw *opt, tern_backend *be, size_t begin, size_t end) {
    memset(opt, 0, sizeof *opt);
    TERN_ASSERT(begin <= end);
    opt->be = be ? be : tern_backend_default();
    size_t n = end - begin;
    TERN_TRY(opt->be->mem->alloc(opt->be, (void **)&opt->m, n * sizeof(float), "AdamW first moments"));
    tern_status st = opt->be->mem->alloc(opt->be, (void **)&opt->v, n * sizeof(float), "AdamW second moments");
    if (st != TERN_OK) {
        opt->be->mem->free(opt->be, opt->m);
        opt->m = NULL;
        return st;
    }
    opt->begin = begin;
    opt->end = end;
    return TERN_OK;
}

void tern_adamw_free(tern_adamw *opt) {
    if (opt->be) {
        opt->be->mem->free(opt->be, opt->m);
        opt->be->mem->free(opt->be, opt->v);
    }
    memset(opt, 0, sizeof *opt);
}

tern_status tern_adamw_step(tern_adamw *opt, tern_model *m, float lr, uint64_t t, const tern_adamw_hparams *hp) {
    return tern_adamw_step_scaled(opt, m, lr, t, hp, 1.0f);
}

tern_status tern_adamw_step_scaled(tern_adamw *opt, tern_model *m, float lr, uint64_t t, const tern_adamw_hparams *hp, float grad_scale) {
    TERN_ASSERT(t >= 1);
    tern_backend *be = opt->be;
    TERN_ASSERT(be == tern_model_backend(m));
    float *params = tern_model_buffer(m, TERN_PARAMS), *grads = tern_model_buffer(m, TERN_GRADS);
    tern_adamw_args a = {lr, hp->beta1, hp->beta2, hp->eps, 1.0f, 1.0f - powf(hp->beta1, (float)t),
                         sqrtf(1.0f - powf(hp->beta2, (float)t)), grad_scale};
    size_t ntensors;
    const tern_tensor *tensors = tern_model_tensors(m, &ntensors);
    for (size_t k = 0; k < ntensors; k++) {
        size_t lo = tensors[k].offset, hi = lo + tensors[k].numel;
        if (lo < opt->begin) lo = opt->begin;
        if (hi > opt->end) hi = opt->end;
        if (lo >= hi) continue;
        a.decay = tensors[k].decay ? 1.0f - lr * hp->weight_decay : 1.0f;
        be->k->adamw(be, params + lo, grads + lo, opt->m + (lo - opt->begin), opt->v + (lo - opt->begin), hi - lo, &a);
    }
    return tern_backend_sync(be);
}

static tern_status moments_range(const tern_adamw *opt, size_t off, size_t n) {
    if (off < opt->begin || off > opt->end || n > opt->end - off)
        return tern_err(TERN_EINVAL, "moments [%zu, %zu) are outside the optimizer's [%zu, %zu)", off, off + n, opt->begin, opt->end);
    return TERN_OK;
}

tern_status tern_adamw_read(tern_adamw *opt, int second, size_t off, size_t n, float *dst) {
    TERN_TRY(moments_range(opt, off, n));
    opt->be->mem->download(opt->be, dst, (second ? opt->v : opt->m) + (off - opt->begin), n * sizeof(float));
    return tern_backend_sync(opt->be);
}

tern_status tern_adamw_write(tern_adamw *opt, int second, size_t off, size_t n, const float *src) {
    TERN_TRY(moments_range(opt, off, n));
    opt->be->mem->upload(opt->be, (second ? opt->v : opt->m) + (off - opt->begin), src, n * sizeof(float));
    return tern_backend_sync(opt->be);
}

float tern_lr_at(const tern_lr_schedule *s, uint64_t step) {
    if (step < s->warmup) return s->lr_max * (float)(step + 1) / (float)s->warmup;
    if (s->kind == TERN_SCHED_CONSTANT) return s->lr_max;
    double p = s->total > s->warmup ? (double)(step - s->warmup) / (double)(s->total - s->warmup) : 1.0;
    if (p > 1.0) p = 1.0;
    return (float)(s->lr_min + (s->lr_max - s->lr_min) * 0.5 * (1.0 + cos(M_PI * p)));
}

double tern_grad_sum_squares(tern_model *m, size_t begin, size_t end) {
    tern_backend *be = tern_model_backend(m);
    return be->k->sumsq(be, tern_model_buffer(m, TERN_GRADS) + begin, end - begin);
}

float tern_clip_coef(double norm, float max_norm) {
    double coef = (double)max_norm / (norm + 1e-6);
    return coef >= 1.0 ? 1.0f : (float)coef;
}

void tern_clip_grads(tern_model *m, size_t begin, size_t end, double norm, float max_norm) {
    float coef = tern_clip_coef(norm, max_norm);
    if (coef == 1.0f) return;
    tern_backend *be = tern_model_backend(m);
    be->k->scale(be, tern_model_buffer(m, TERN_GRADS) + begin, end - begin, coef);
}
