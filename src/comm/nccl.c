/* The communicator's collectives on GPU memory through NCCL, one rank per GPU: the gradient
 * all-reduce, ZeRO-1's reduce-scatter and all-gather, the parameter broadcast and the optimizer
 * gather, on the buffers of a CUDA backend. tern_comm_use_nccl switches an MPI communicator over;
 * from then on each collective looks at its buffer: device memory goes to NCCL, host memory
 * (losses, flags, hashes, hardware records) stays on MPI, which also carries NCCL's id from rank 0
 * to the others, as llm.c does.
 *
 * NCCL runs on a stream of its own. A collective first makes that stream wait for the work queued
 * so far on the backend's stream (which produced its buffer); a blocking one then makes the
 * backend's stream wait for it, so kernels queued after it see the result; a nonblocking one
 * (the backward pass's buckets) runs beside the kernels still being queued, and tern_comm_wait
 * joins it back. NCCL takes 64-bit counts, so nothing is split into segments. The uneven shards
 * of tern_comm_shard_bounds are served by one NCCL call per rank inside a group: a reduce to each
 * rank of its part (the reduce-scatter), a broadcast from each rank of its part (the all-gather),
 * sends and receives (the gather).
 *
 * Compiled with -DTERN_NCCL, which the Makefile sets under CUDA=1 when MPI and nccl.h are found. */
#include "comm/comm_int.h"

#include "tern/backend.h"

#ifdef TERN_NCCL
#include "backend/cuda/cuda_int.h"

#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

typedef struct nccl_state {
    const comm_ops *base; /* MPI's operations: host buffers go there */
    ncclComm_t comm;
    int device;
    cudaStream_t compute; /* the backend's stream */
    cudaStream_t side;    /* NCCL's */
    cudaEvent_t ready, done;
    int pending; /* nonblocking collectives queued on side since the last wait */
} nccl_state;

static int on_device(const void *p) {
    struct cudaPointerAttributes a;
    if (!p || cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return a.type == cudaMemoryTypeDevice;
}

static tern_status nfail(nccl_state *s, ncclResult_t r, const char *what) {
    const char *last = s->comm ? ncclGetLastError(s->comm) : NULL;
    return tern_err(TERN_EDIST, "NCCL: %s failed: %s%s%s", what, ncclGetErrorString(r), last && *last ? ": " : "", last ? last : "");
}

#define NCCL_TRY(call, what)                                                                                            \
    do {                                                                                                                \
        ncclResult_t r_ = (call);                                                                                       \
        if (r_ != ncclSuccess) return nfail(s, r_, what);                                                               \
    } while (0)
#define CUDA_TRY(call, what)                                                                                            \
    do {                                                                                                                \
        cudaError_t e_ = (call);                                                                                        \
        if (e_ != cudaSuccess) return tern_err(TERN_EDIST, "NCCL: %s: %s", what, cudaGetErrorString(e_));               \
    } while (0)

/* NCCL's stream waits for what the backend's stream has queued so far. */
static tern_status enter(nccl_state *s) {
    CUDA_TRY(cudaSetDevice(s->device), "cudaSetDevice");
    CUDA_TRY(cudaEventRecord(s->ready, s->compute), "cudaEventRecord");
    CUDA_TRY(cudaStreamWaitEvent(s->side, s->ready, 0), "cudaStreamWaitEvent");
    return TERN_OK;
}

/* The backend's stream waits for every collective queued on NCCL's. */
static tern_status join(nccl_state *s) {
    CUDA_TRY(cudaEventRecord(s->done, s->side), "cudaEventRecord");
    CUDA_TRY(cudaStreamWaitEvent(s->compute, s->done, 0), "cudaStreamWaitEvent");
    s->pending = 0;
    return TERN_OK;
}

static tern_status finish(nccl_state *s, int nonblocking) {
    if (!nonblocking) return join(s);
    s->pending = 1;
    return TERN_OK;
}

static ncclDataType_t nccl_type(comm_dtype dt) { return dt == COMM_F32 ? ncclFloat32 : dt == COMM_F64 ? ncclFloat64 : ncclInt64; }

/* Rank r's part of [lo, hi): [*a, *z), empty when *a >= *z. */
static void part_of(const size_t *bounds, int r, size_t lo, size_t hi, size_t *a, size_t *z) {
    *a = bounds[r] > lo ? bounds[r] : lo;
    *z = bounds[r + 1] < hi ? bounds[r + 1] : hi;
}

static tern_status n_allreduce(tern_comm *c, void *x, size_t n, comm_dtype dt, comm_op op) {
    nccl_state *s = c->dev;
    if (!on_device(x)) return s->base->allreduce(c, x, n, dt, op);
    TERN_TRY(enter(s));
    NCCL_TRY(ncclAllReduce(x, x, n, nccl_type(dt), op == COMM_SUM ? ncclSum : ncclMax, s->comm, s->side), "ncclAllReduce");
    return join(s);
}

static tern_status n_bcast(tern_comm *c, void *p, size_t bytes, int root) {
    nccl_state *s = c->dev;
    if (!on_device(p)) return s->base->bcast(c, p, bytes, root);
    TERN_TRY(enter(s));
    NCCL_TRY(ncclBroadcast(p, p, bytes, ncclUint8, root, s->comm, s->side), "ncclBroadcast");
    return join(s);
}

/* One grouped NCCL call per rank over its part of [lo, hi): a reduce to it (reduce = 1) or a
 * broadcast from it. Every rank computes the same parts from the same bounds, so all issue the
 * same calls. */
static tern_status per_rank(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds, int reduce) {
    nccl_state *s = c->dev;
    NCCL_TRY(ncclGroupStart(), "ncclGroupStart");
    ncclResult_t first = ncclSuccess;
    for (int r = 0; r < c->size; r++) {
        size_t a, z;
        part_of(bounds, r, lo, hi, &a, &z);
        if (a >= z) continue;
        ncclResult_t res = reduce ? ncclReduce(x + a, x + a, z - a, ncclFloat32, ncclSum, r, s->comm, s->side)
                                  : ncclBroadcast(x + a, x + a, z - a, ncclFloat32, r, s->comm, s->side);
        if (first == ncclSuccess) first = res;
    }
    ncclResult_t end = ncclGroupEnd();
    if (first != ncclSuccess) return nfail(s, first, reduce ? "ncclReduce" : "ncclBroadcast");
    if (end != ncclSuccess) return nfail(s, end, "ncclGroupEnd");
    return TERN_OK;
}

static tern_status n_reduce_scatter(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds, int nonblocking) {
    nccl_state *s = c->dev;
    if (!on_device(x)) return s->base->reduce_scatter(c, x, lo, hi, bounds, nonblocking);
    TERN_TRY(enter(s));
    TERN_TRY(per_rank(c, x, lo, hi, bounds, 1));
    return finish(s, nonblocking);
}

static tern_status n_allgather(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds) {
    nccl_state *s = c->dev;
    if (!on_device(x)) return s->base->allgather(c, x, lo, hi, bounds);
    TERN_TRY(enter(s));
    TERN_TRY(per_rank(c, x, lo, hi, bounds, 0));
    return join(s);
}

static tern_status n_gather(tern_comm *c, float *dst, const float *shard, const size_t *bounds, int root) {
    nccl_state *s = c->dev;
    if (!on_device(shard)) return s->base->gather(c, dst, shard, bounds, root);
    TERN_TRY(enter(s));
    size_t mine = bounds[c->rank + 1] - bounds[c->rank];
    if (c->rank == root && mine)
        CUDA_TRY(cudaMemcpyAsync(dst + bounds[root], shard, mine * sizeof(float), cudaMemcpyDeviceToDevice, s->side), "cudaMemcpyAsync");
    NCCL_TRY(ncclGroupStart(), "ncclGroupStart");
    ncclResult_t first = ncclSuccess;
    if (c->rank != root && mine) first = ncclSend(shard, mine, ncclFloat32, root, s->comm, s->side);
    for (int r = 0; c->rank == root && r < c->size; r++) {
        size_t n = bounds[r + 1] - bounds[r];
        if (r == root || !n) continue;
        ncclResult_t res = ncclRecv(dst + bounds[r], n, ncclFloat32, r, s->comm, s->side);
        if (first == ncclSuccess) first = res;
    }
    ncclResult_t end = ncclGroupEnd();
    if (first != ncclSuccess) return nfail(s, first, "ncclSend/ncclRecv");
    if (end != ncclSuccess) return nfail(s, end, "ncclGroupEnd");
    return join(s);
}

static tern_status n_iallreduce(tern_comm *c, float *x, size_t n) {
    nccl_state *s = c->dev;
    if (!on_device(x)) return s->base->iallreduce(c, x, n);
    TERN_TRY(enter(s));
    NCCL_TRY(ncclAllReduce(x, x, n, ncclFloat32, ncclSum, s->comm, s->side), "ncclAllReduce");
    return finish(s, 1);
}

static tern_status n_reserve(tern_comm *c, size_t nops) {
    nccl_state *s = c->dev;
    return s->base->reserve(c, nops);
}

/* NCCL progresses on its own; a failure of a queued collective shows here. */
static tern_status n_progress(tern_comm *c) {
    nccl_state *s = c->dev;
    ncclResult_t async = ncclSuccess;
    if (s->pending) NCCL_TRY(ncclCommGetAsyncError(s->comm, &async), "ncclCommGetAsyncError");
    if (async != ncclSuccess && async != ncclInProgress) return nfail(s, async, "a queued collective");
    return s->base->progress(c);
}

static tern_status n_wait(tern_comm *c) {
    nccl_state *s = c->dev;
    if (s->pending) TERN_TRY(join(s));
    return s->base->wait(c);
}

static void n_abort(tern_comm *c, int code) {
    nccl_state *s = c->dev;
    if (s->comm) ncclCommAbort(s->comm);
    s->comm = NULL;
    s->base->abort(c, code);
}

static void drop(nccl_state *s) {
    cudaSetDevice(s->device);
    if (s->side) cudaStreamSynchronize(s->side);
    if (s->comm) ncclCommDestroy(s->comm);
    if (s->ready) cudaEventDestroy(s->ready);
    if (s->done) cudaEventDestroy(s->done);
    if (s->side) cudaStreamDestroy(s->side);
    cudaGetLastError();
    free(s);
}

static void n_free(tern_comm *c) {
    nccl_state *s = c->dev;
    const comm_ops *base = s->base;
    drop(s);
    c->dev = NULL;
    c->ops = base;
    base->free(c);
}

static const comm_ops nccl_ops = {n_allreduce, n_bcast,    n_reduce_scatter, n_allgather, n_gather, n_iallreduce,
                                  n_reserve,   n_progress, n_wait,           n_abort,     n_free};

/* Makes this rank's NCCL communicator: rank 0's id, broadcast over MPI, then every rank joins. */
static tern_status open_nccl(tern_comm *c, nccl_state *s) {
    struct {
        int ok;
        ncclUniqueId id;
    } msg;
    memset(&msg, 0, sizeof msg);
    if (c->rank == 0) msg.ok = ncclGetUniqueId(&msg.id) == ncclSuccess;
    TERN_TRY(s->base->bcast(c, &msg, sizeof msg, 0));
    if (!msg.ok) return tern_err(TERN_EDIST, "NCCL: rank 0 could not make the communicator's id (ncclGetUniqueId)");
    CUDA_TRY(cudaSetDevice(s->device), "cudaSetDevice");
    CUDA_TRY(cudaStreamCreateWithFlags(&s->side, cudaStreamNonBlocking), "cudaStreamCreate");
    CUDA_TRY(cudaEventCreateWithFlags(&s->ready, cudaEventDisableTiming), "cudaEventCreate");
    CUDA_TRY(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming), "cudaEventCreate");
    NCCL_TRY(ncclCommInitRank(&s->comm, c->size, msg.id, c->rank), "ncclCommInitRank");
    return TERN_OK;
}

tern_status tern_comm_use_nccl(tern_comm *c, tern_backend *be) {
    if (c->size == 1 || tern_backend_is_host(be) || c->dev) return TERN_OK;
    int dev = tern_cuda_device(be);
    if (dev < 0) return tern_err(TERN_EINVAL, "NCCL needs a CUDA backend, not %s", tern_backend_name(be));
    nccl_state *s = calloc(1, sizeof *s);
    if (!s) return tern_err(TERN_ENOMEM, "out of memory");
    s->base = c->ops;
    s->device = dev;
    s->compute = tern_cuda_stream(be);
    tern_status st = open_nccl(c, s);
    if (st != TERN_OK) {
        drop(s);
        return st;
    }
    c->dev = s;
    c->ops = &nccl_ops;
    return TERN_OK;
}
#else
tern_status tern_comm_use_nccl(tern_comm *c, tern_backend *be) {
    if (c->size == 1 || tern_backend_is_host(be)) return TERN_OK;
    return tern_err(TERN_EINVAL,
                    "%d ranks on %s need NCCL for their collectives, and this tern was built without it: build with "
                    "`make CUDA=1` where MPI and the CUDA toolkit's NCCL are installed",
                    c->size, tern_backend_name(be));
}
#endif
