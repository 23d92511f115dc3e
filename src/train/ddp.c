/* The data-parallel training step over a communicator: the bridge between the model, AdamW and
 * checkpoints on one side and tern_comm (src/comm/) on the other.
 * Gradients go in buckets of the backward pass's own units (ln_f, each block, then the
 * embeddings), one message each, started as soon as a bucket is complete, as PyTorch's
 * DistributedDataParallel does with its buckets; ZeRO-1 follows
 * Rajbhandari et al. 2020 (stage 1: optimizer state partitioned, gradients reduce-scattered).
 * Not the training loop (train/) nor the MPI calls (mpi.c). */
#include "tern/ddp.h"

#include "backend/backend_int.h"
#include "tern/ckpt.h"
#include "tern/data.h"
#include "tern/model.h"
#include "tern/optim.h"

#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct range {
    size_t lo, hi;
} range;

/* Gradients are reduced in buckets: consecutive units of the backward pass (the final norm and an
 * untied head, each block, then the embeddings), grouped until a bucket holds BUCKET_MIN floats, so that each is one message.
 * A bucket of several ranges of the flat buffer is packed into a staging buffer first. */
#define BUCKET_MIN ((size_t)1 << 18) /* 1 MiB of gradients; TERN_BUCKET_BYTES in the environment sets another */
typedef struct bucket {
    size_t r0, r1; /* its ranges are ranges[r0 .. r1), sorted */
    size_t n;      /* floats in it */
    float *stage;  /* where it is packed; NULL: one contiguous range, reduced in place */
    size_t *rb;    /* (size+1) with --zero 1 and a stage: rank r's part is stage[rb[r] .. rb[r+1]) */
} bucket;

struct tern_ddp {
    tern_comm *comm, *own; /* own: made here when the caller gave none */
    int rank, size;
    tern_model *m;
    tern_backend *be; /* the model's: the staging buffers live in its memory */
    size_t np; /* parameters */
    int zero, overlap;
    size_t *bounds;   /* (size+1): the ranks' shards of the parameter buffer */
    range *ranges;    /* the flat ranges of every bucket, bucket by bucket */
    bucket *buckets;  /* in the order the backward pass completes them */
    int nbuckets;
    int *closes;      /* (nunits): the bucket that unit u completes, or -1 */
    int nunits;       /* n_layer + 2: unit 0 = the embeddings, unit l+1 = block l, unit n_layer+1 = the final norm */
    float *stage;     /* the staging buffers of all buckets */
    size_t *rbs;      /* the buckets' rb arrays */
    int armed;        /* the backward pass under way is the step's last micro-batch */
    int launched;     /* buckets whose reduction has started in this step */
    tern_status hook_st; /* a failure inside the backward hook, returned by tern_ddp_reduce_grads */
};

tern_status tern_ddp_init(tern_ddp **out, tern_comm *comm, int zero, int overlap) {
    *out = NULL;
    if (zero != 0 && zero != 1)
        return tern_err(TERN_EINVAL, "--zero must be 0 (all-reduce the gradients) or 1 (ZeRO stage 1: shard AdamW's moments), got %d",
                        zero);
    if (overlap != 0 && overlap != 1) return tern_err(TERN_EINVAL, "--overlap must be 0 or 1, got %d", overlap);
    tern_ddp *d = calloc(1, sizeof *d);
    if (!d) return tern_err(TERN_ENOMEM, "out of memory");
    if (!comm) {
        tern_status st = tern_comm_init_single(&d->own);
        if (st != TERN_OK) {
            free(d);
            return st;
        }
        comm = d->own;
    }
    d->comm = comm;
    d->zero = zero;
    d->overlap = overlap;
    d->rank = tern_comm_rank(comm);
    d->size = tern_comm_size(comm);
    *out = d;
    return TERN_OK;
}

void tern_ddp_free(tern_ddp *d) {
    if (!d) return;
    if (d->m) tern_model_set_grad_hook(d->m, NULL, NULL);
    free(d->bounds);
    free(d->ranges);
    free(d->buckets);
    free(d->closes);
    free(d->rbs);
    if (d->be) d->be->mem->free(d->be, d->stage);
    tern_comm_free(d->own);
    free(d);
}

int tern_ddp_rank(const tern_ddp *d) { return d->rank; }
int tern_ddp_size(const tern_ddp *d) { return d->size; }
int tern_ddp_is_root(const tern_ddp *d) { return d->rank == 0; }

int tern_ddp_threads(const tern_ddp *d, int n) {
    if (n > 0 || d->size == 1) return n;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    cpu_set_t set;
    /* A launcher that binds ranks to cores (mpirun does for small jobs) decides for us. */
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < online) return CPU_COUNT(&set);
    long k = online / tern_comm_local_size(d->comm);
    return k < 1 ? 1 : (int)k;
}

int tern_ddp_local_size(const tern_ddp *d) { return tern_comm_local_size(d->comm); }

tern_status tern_ddp_max(tern_ddp *d, int *v) {
    if (d->size == 1) return TERN_OK;
    int64_t x = *v;
    TERN_TRY(tern_comm_max_i64(d->comm, &x, 1));
    *v = (int)x;
    return TERN_OK;
}

tern_status tern_ddp_sum_f64(tern_ddp *d, double *x, size_t n) { return d->size == 1 ? TERN_OK : tern_comm_allreduce_f64(d->comm, x, n); }

tern_status tern_ddp_any(tern_ddp *d, int *flag) {
    *flag = *flag != 0;
    return tern_ddp_max(d, flag);
}

tern_status tern_ddp_check_same(tern_ddp *d, const char *what, const void *p, size_t n) {
    if (d->size == 1) return TERN_OK;
    uint8_t mine[TERN_HASH_BYTES], root[TERN_HASH_BYTES];
    tern_hash(mine, p, n);
    memcpy(root, mine, sizeof root);
    TERN_TRY(tern_comm_bcast(d->comm, root, sizeof root, 0));
    int64_t odd = memcmp(mine, root, sizeof root) ? d->rank : -1;
    TERN_TRY(tern_comm_max_i64(d->comm, &odd, 1));
    if (odd >= 0)
        return tern_err(TERN_EDIST, "rank %lld has other %s than rank 0: every rank must be started the same way", (long long)odd,
                        what);
    return TERN_OK;
}

tern_status tern_ddp_fit_batch(tern_ddp *d, long long *batch, int batch_given, long long global_batch) {
    long long W = d->size;
    if (global_batch <= 0 || *batch * W == global_batch) return TERN_OK;
    if (batch_given) {
        if (d->rank == 0)
            tern_log(TERN_LOG_WARN, "the global batch changes from %lld rows to %lld (%lld ranks x --batch %lld): from here on "
                                    "the run reads other windows than it would have",
                     global_batch, *batch * W, W, *batch);
        return TERN_OK;
    }
    if (global_batch % W)
        return tern_err(TERN_EINVAL, "the checkpoint's global batch of %lld rows cannot be split evenly over %lld ranks; run "
                                     "on a number of ranks that divides it, or give --batch (rows per rank) to change it",
                        global_batch, W);
    if (d->rank == 0)
        tern_log(TERN_LOG_INFO, "continuing on %lld rank%s: %lld rows each, the checkpoint's global batch of %lld rows", W,
                 W == 1 ? "" : "s", global_batch / W, global_batch);
    *batch = global_batch / W;
    return TERN_OK;
}

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* This rank's (or rank r's) part of range x: [a, z), empty when a >= z. */
static void part(const tern_ddp *d, int r, range x, size_t *a, size_t *z) {
    *a = x.lo > d->bounds[r] ? x.lo : d->bounds[r];
    *z = x.hi < d->bounds[r + 1] ? x.hi : d->bounds[r + 1];
}

/* Groups the tensor table into units and the units into buckets, lays out the staging buffer,
 * and reserves the nonblocking operations one step launches. */
static tern_status build_buckets(tern_ddp *d) {
    size_t nt;
    const tern_tensor *t = tern_model_tensors(d->m, &nt);
    int L = tern_model_cfg(d->m)->n_layer;
    size_t bmin = BUCKET_MIN;
    const char *env = getenv("TERN_BUCKET_BYTES");
    if (env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (end == env || *end || v < sizeof(float) || env[0] == '-')
            return tern_err(TERN_EINVAL, "TERN_BUCKET_BYTES: expected a number of bytes (at least 4), got '%s'", env);
        bmin = (size_t)(v / sizeof(float));
    }
    d->nunits = L + 2;
    d->ranges = calloc(nt, sizeof *d->ranges);
    d->buckets = calloc((size_t)d->nunits, sizeof *d->buckets);
    d->closes = calloc((size_t)d->nunits, sizeof *d->closes);
    if (!d->ranges || !d->buckets || !d->closes) return tern_err(TERN_ENOMEM, "out of memory");
    size_t k = 0, covered = 0, nops = 0, nstage = 0;
    bucket *b = NULL;
    for (int u = d->nunits - 1; u >= 0; u--) { /* the order the backward pass finishes them */
        if (!b) {
            b = &d->buckets[d->nbuckets++];
            b->r0 = k;
        }
        for (size_t i = 0; i < nt; i++)
            if (t[i].hook + 1 == u) { /* the model's hook reports unit u as block u-1 */
                d->ranges[k++] = (range){t[i].offset, t[i].offset + t[i].numel};
                b->n += t[i].numel;
            }
        d->closes[u] = -1;
        if (b->n < bmin && u > 0) continue;
        /* close the bucket: its ranges sorted, adjacent ones merged */
        qsort(d->ranges + b->r0, k - b->r0, sizeof *d->ranges, cmp_range);
        size_t w = b->r0;
        for (size_t i = b->r0; i < k; i++) {
            if (w > b->r0 && d->ranges[w - 1].hi == d->ranges[i].lo)
                d->ranges[w - 1].hi = d->ranges[i].hi;
            else
                d->ranges[w++] = d->ranges[i];
        }
        k = b->r1 = w;
        covered += b->n;
        nops += tern_comm_ops_for(b->n);
        if (b->r1 - b->r0 > 1) nstage += b->n;
        d->closes[u] = (int)(b - d->buckets);
        b = NULL;
    }
    TERN_ASSERT(covered == d->np); /* every parameter in exactly one bucket */
    if (nstage) TERN_TRY(d->be->mem->alloc(d->be, (void **)&d->stage, nstage * sizeof(float), "the gradient buckets"));
    size_t nrb = (size_t)d->nbuckets * ((size_t)d->size + 1);
    d->rbs = calloc(nrb, sizeof *d->rbs);
    if (!d->rbs) return tern_err(TERN_ENOMEM, "out of memory");
    size_t off = 0;
    for (int i = 0; i < d->nbuckets; i++) {
        b = &d->buckets[i];
        if (b->r1 - b->r0 == 1) continue;
        b->stage = d->stage + off;
        off += b->n;
        if (!d->zero) continue;
        /* ZeRO-1: packed rank by rank, so that a reduce-scatter leaves each rank its own part */
        b->rb = d->rbs + (size_t)i * ((size_t)d->size + 1);
        for (int r = 0; r < d->size; r++) {
            b->rb[r + 1] = b->rb[r];
            for (size_t j = b->r0; j < b->r1; j++) {
                size_t a, z;
                part(d, r, d->ranges[j], &a, &z);
                if (a < z) b->rb[r + 1] += z - a;
            }
        }
        TERN_ASSERT(b->rb[d->size] == b->n);
    }
    return tern_comm_reserve(d->comm, nops);
}

/* Starts bucket b's reduction: packed (rank by rank under ZeRO-1) or in place. */
static tern_status launch(tern_ddp *d, const bucket *b) {
    float *g = tern_model_buffer(d->m, TERN_GRADS);
    if (!b->stage) {
        range x = d->ranges[b->r0];
        return d->zero ? tern_comm_ireduce_scatter_f32(d->comm, g, x.lo, x.hi, d->bounds)
                       : tern_comm_iallreduce_f32(d->comm, g + x.lo, x.hi - x.lo);
    }
    size_t k = 0;
    if (!d->zero) {
        for (size_t j = b->r0; j < b->r1; j++) {
            range x = d->ranges[j];
            d->be->mem->copy(d->be, b->stage + k, g + x.lo, (x.hi - x.lo) * sizeof(float));
            k += x.hi - x.lo;
        }
        return tern_comm_iallreduce_f32(d->comm, b->stage, b->n);
    }
    for (int r = 0; r < d->size; r++)
        for (size_t j = b->r0; j < b->r1; j++) {
            size_t a, z;
            part(d, r, d->ranges[j], &a, &z);
            if (a >= z) continue;
            d->be->mem->copy(d->be, b->stage + k, g + a, (z - a) * sizeof(float));
            k += z - a;
        }
    return tern_comm_ireduce_scatter_f32(d->comm, b->stage, 0, b->n, b->rb);
}

/* After the reductions: a packed bucket's sums (all of them, or this rank's part) go back. */
static void unpack(tern_ddp *d, const bucket *b) {
    if (!b->stage) return;
    float *g = tern_model_buffer(d->m, TERN_GRADS);
    size_t k = d->zero ? b->rb[d->rank] : 0;
    for (size_t j = b->r0; j < b->r1; j++) {
        size_t a = d->ranges[j].lo, z = d->ranges[j].hi;
        if (d->zero) part(d, d->rank, d->ranges[j], &a, &z);
        if (a >= z) continue;
        d->be->mem->copy(d->be, g + a, b->stage + k, (z - a) * sizeof(float));
        k += z - a;
    }
}

/* The model's backward hook: a unit's gradients are final; when it completes a bucket, that
 * bucket's reduction starts now, and earlier ones are given a chance to progress. */
static void on_grads(void *ctx, int block) {
    tern_ddp *d = ctx;
    if (!d->armed || d->hook_st != TERN_OK) return;
    int u = block + 1;
    TERN_ASSERT(u >= 0 && u < d->nunits);
    tern_status st = TERN_OK;
    if (d->closes[u] >= 0) {
        st = launch(d, &d->buckets[d->closes[u]]);
        d->launched++;
    }
    if (st == TERN_OK) st = tern_comm_progress(d->comm);
    d->hook_st = st;
}

tern_status tern_ddp_attach(tern_ddp *d, tern_model *m) {
    TERN_ASSERT(!d->m);
    d->m = m;
    d->be = tern_model_backend(m);
    d->np = tern_model_num_params(m);
    d->bounds = calloc((size_t)d->size + 1, sizeof *d->bounds);
    if (!d->bounds) return tern_err(TERN_ENOMEM, "out of memory");
    tern_comm_shard_bounds(d->np, d->size, d->bounds);
    if (d->size == 1) return TERN_OK;
    int64_t n[2] = {(int64_t)d->np, -(int64_t)d->np};
    TERN_TRY(tern_comm_max_i64(d->comm, n, 2));
    if (n[0] != -n[1])
        return tern_err(TERN_EDIST, "the ranks built models of different sizes (%lld to %lld parameters): every rank must see the "
                                    "same data folder and options",
                        (long long)-n[1], (long long)n[0]);
    /* Every rank starts from rank 0's parameters, whatever each read or drew. */
    TERN_TRY(tern_comm_bcast(d->comm, tern_model_buffer(m, TERN_PARAMS), d->np * sizeof(float), 0));
    if (d->overlap) {
        TERN_TRY(build_buckets(d));
        tern_model_set_grad_hook(m, on_grads, d);
    }
    return TERN_OK;
}

void tern_ddp_shard(const tern_ddp *d, size_t *begin, size_t *end) {
    TERN_ASSERT(d->m);
    *begin = d->zero ? d->bounds[d->rank] : 0;
    *end = d->zero ? d->bounds[d->rank + 1] : d->np;
}

tern_status tern_ddp_forward_backward(tern_ddp *d, const int32_t *inputs, const int32_t *targets, size_t B, size_t T,
                                      float loss_scale, int last, float *loss) {
    d->armed = last && d->size > 1 && d->overlap;
    tern_status st = tern_model_forward_backward(d->m, inputs, targets, B, T, d->size > 1 ? loss_scale / (float)d->size : loss_scale,
                                                loss);
    d->armed = 0;
    return st;
}

tern_status tern_ddp_reduce_grads(tern_ddp *d, double *loss, double *norm) {
    float *g = tern_model_buffer(d->m, TERN_GRADS);
    if (d->size == 1) {
        *norm = sqrt(tern_grad_sum_squares(d->m, 0, d->np));
        return TERN_OK;
    }
    tern_status st = d->hook_st;
    int launched = d->launched;
    d->hook_st = TERN_OK;
    d->launched = 0;
    if (d->overlap) {
        tern_status w = tern_comm_wait(d->comm);
        if (st == TERN_OK) st = w;
        if (st == TERN_OK) TERN_ASSERT(launched == d->nbuckets); /* tern_ddp_backward(..., last=1) ran */
        for (int i = 0; st == TERN_OK && i < d->nbuckets; i++) unpack(d, &d->buckets[i]);
    } else if (d->zero) {
        st = tern_comm_reduce_scatter_f32(d->comm, g, 0, d->np, d->bounds);
    } else {
        st = tern_comm_allreduce_f32(d->comm, g, d->np);
    }
    if (st != TERN_OK) return st;
    /* The gradients were scaled by 1/W in the backward pass: the sums are the global mean's. */
    size_t b = d->bounds[d->rank], e = d->bounds[d->rank + 1];
    double v[2] = {tern_grad_sum_squares(d->m, b, e), *loss};
    TERN_TRY(tern_comm_allreduce_f64(d->comm, v, 2));
    *loss = v[1] / (double)d->size;
    *norm = sqrt(v[0]);
    return TERN_OK;
}

tern_status tern_ddp_sync_params(tern_ddp *d) {
    if (d->size == 1 || !d->zero) return TERN_OK;
    return tern_comm_allgather_f32(d->comm, tern_model_buffer(d->m, TERN_PARAMS), 0, d->np, d->bounds);
}

tern_status tern_ddp_eval_loss(tern_ddp *d, const tern_dataset *val, size_t B, size_t T, size_t batches, double *loss,
                               size_t *tokens) {
    size_t W = (size_t)d->size;
    tern_loader *l;
    TERN_TRY(tern_loader_init(&l, val, B * W, T, 0, 0));
    uint64_t k = tern_loader_windows_per_epoch(l);
    if (batches == 0 || batches > k) batches = (size_t)k; /* each window once */
    int32_t *in = malloc(B * T * sizeof(int32_t)), *tg = malloc(B * T * sizeof(int32_t));
    tern_status st = in && tg ? tern_model_reserve(d->m, B, T) : tern_err(TERN_ENOMEM, "out of memory");
    double sum = 0;
    for (size_t b = 0; st == TERN_OK && b < batches; b++) {
        float lb = 0;
        st = tern_loader_get(l, b, (size_t)d->rank * B, B, in, tg);
        if (st == TERN_OK) st = tern_model_forward(d->m, in, tg, B, T, &lb);
        sum += lb;
    }
    free(in);
    free(tg);
    tern_loader_free(l);
    if (st == TERN_OK && W > 1) {
        st = tern_comm_allreduce_f64(d->comm, &sum, 1);
        sum /= (double)W;
    }
    if (st != TERN_OK) return st;
    *loss = sum / (double)batches;
    if (tokens) *tokens = batches * B * T * W;
    return TERN_OK;
}

tern_status tern_ddp_ckpt_save(tern_ddp *d, const char *rundir, uint64_t step, tern_adamw *opt, const char *state_json, int keep,
                               const tern_ckpt_seal *seal) {
    if (d->size == 1 || !d->zero) return d->rank == 0 ? tern_ckpt_save(rundir, step, d->m, opt, state_json, keep, seal) : TERN_OK;
    /* ZeRO-1: rank 0 gathers the moments into whole buffers, laid out as one process keeps them,
     * and writes the same files. */
    tern_adamw full;
    memset(&full, 0, sizeof full);
    tern_status st = d->rank == 0 ? tern_adamw_init(&full, d->be, 0, d->np) : TERN_OK;
    if (st == TERN_OK) st = tern_comm_gather_f32(d->comm, full.m, opt->m, d->bounds, 0);
    if (st == TERN_OK) st = tern_comm_gather_f32(d->comm, full.v, opt->v, d->bounds, 0);
    if (st == TERN_OK && d->rank == 0) st = tern_ckpt_save(rundir, step, d->m, &full, state_json, keep, seal);
    tern_adamw_free(&full);
    return st;
}

tern_status tern_ddp_ckpt_load_optimizer(tern_ddp *d, const char *ckptdir, tern_adamw *opt, const tern_ckpt_seal *seal) {
    size_t b, e;
    tern_ddp_shard(d, &b, &e);
    TERN_ASSERT(opt->begin == b && opt->end == e);
    /* each rank reads its shard of the moments from the same file, whoever wrote it (ckpt/ checks
     * every tensor and opens sealed checkpoints) */
    return tern_ckpt_load_optimizer(ckptdir, d->m, opt, seal);
}
