/* The communicator's public face: picks one process or MPI, checks arguments, and answers every
 * collective over one rank itself (each is the identity there), so that implementations only
 * see two or more ranks. Not the MPI code (mpi.c) nor the training step (ddp.c). */
#include "comm/comm_int.h"

#include <stdlib.h>
#include <string.h>

size_t comm_seg = (size_t)1 << 28;

size_t tern_comm_ops_for(size_t n) { return (n + COMM_SEG - 1) / COMM_SEG; }

int tern_comm_have_mpi(void) {
#ifdef TERN_MPI
    return 1;
#else
    return 0;
#endif
}

/* Launchers announce the job's size in the environment: Open MPI's mpirun (OMPI_COMM_WORLD_SIZE),
 * MPICH's Hydra and Intel MPI (PMI_SIZE), Slurm's srun inside a job step (SLURM_STEP_NUM_TASKS);
 * a PMIx server (srun --mpi=pmix, prun) sets PMIX_RANK without a size. */
int comm_launcher_size(const char **var) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) {
            *var = vars[i];
            return atoi(v);
        }
    }
    if (getenv("PMIX_RANK")) {
        *var = "PMIX_RANK";
        return 1;
    }
    *var = NULL;
    return 0;
}

tern_status tern_comm_init_single(tern_comm **out) {
    tern_comm *c = calloc(1, sizeof *c);
    if (!c) return tern_err(TERN_ENOMEM, "out of memory");
    c->size = 1;
    c->local_size = 1;
    snprintf(c->name, sizeof c->name, "one process");
    *out = c;
    return TERN_OK;
}

tern_status tern_comm_init(tern_comm **out) {
    *out = NULL;
    const char *var;
    int n = comm_launcher_size(&var);
    const char *force = getenv("TERN_MPI");
#ifdef TERN_MPI
    if (n > 0 || (force && !strcmp(force, "1"))) return comm_mpi_open(out);
#else
    if (n > 1)
        return tern_err(TERN_EDIST,
                        "this process is one of %d ranks (%s=%s), but this tern was built without MPI: install MPI "
                        "(tools/install-deps.sh) and rebuild, or start a single process",
                        n, var, getenv(var));
    if (force && !strcmp(force, "1")) return tern_err(TERN_EDIST, "TERN_MPI=1, but this tern was built without MPI");
#endif
    return tern_comm_init_single(out);
}

void tern_comm_free(tern_comm *c) {
    if (!c) return;
    if (c->ops) {
        c->ops->free(c);
        return;
    }
    free(c);
}

void tern_comm_abort(tern_comm *c, int code) {
    if (c && c->ops) c->ops->abort(c, code);
}

int tern_comm_rank(const tern_comm *c) { return c->rank; }
int tern_comm_size(const tern_comm *c) { return c->size; }
int tern_comm_local_size(const tern_comm *c) { return c->local_size; }
const char *tern_comm_name(const tern_comm *c) { return c->name; }

tern_status tern_comm_allreduce_f32(tern_comm *c, float *x, size_t n) {
    return c->size == 1 ? TERN_OK : c->ops->allreduce(c, x, n, COMM_F32, COMM_SUM);
}
tern_status tern_comm_allreduce_f64(tern_comm *c, double *x, size_t n) {
    return c->size == 1 ? TERN_OK : c->ops->allreduce(c, x, n, COMM_F64, COMM_SUM);
}
tern_status tern_comm_max_i64(tern_comm *c, int64_t *x, size_t n) {
    return c->size == 1 ? TERN_OK : c->ops->allreduce(c, x, n, COMM_I64, COMM_MAX);
}
tern_status tern_comm_bcast(tern_comm *c, void *p, size_t bytes, int root) {
    TERN_ASSERT(root >= 0 && root < c->size);
    return c->size == 1 ? TERN_OK : c->ops->bcast(c, p, bytes, root);
}

void tern_comm_shard_bounds(size_t n, int size, size_t *bounds) {
    TERN_ASSERT(size >= 1);
    size_t W = (size_t)size;
    bounds[0] = 0;
    for (size_t r = 1; r < W; r++) {
        size_t even = n / W * r + n % W * r / W; /* floor(n*r/W) without overflow */
        bounds[r] = even / 16 * 16;
    }
    bounds[W] = n;
}

static void check_range(const tern_comm *c, size_t lo, size_t hi, const size_t *bounds) {
    TERN_ASSERT(lo <= hi && bounds[0] == 0 && hi <= bounds[c->size]);
    for (int r = 0; r < c->size; r++) TERN_ASSERT(bounds[r] <= bounds[r + 1]);
}

tern_status tern_comm_reduce_scatter_f32(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds) {
    check_range(c, lo, hi, bounds);
    return c->size == 1 || lo == hi ? TERN_OK : c->ops->reduce_scatter(c, x, lo, hi, bounds, 0);
}

tern_status tern_comm_allgather_f32(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds) {
    check_range(c, lo, hi, bounds);
    return c->size == 1 || lo == hi ? TERN_OK : c->ops->allgather(c, x, lo, hi, bounds);
}

tern_status tern_comm_gather_f32(tern_comm *c, float *dst, const float *shard, const size_t *bounds, int root) {
    check_range(c, 0, bounds[c->size], bounds);
    TERN_ASSERT(root >= 0 && root < c->size && (c->rank != root || dst));
    if (c->size == 1) {
        if (dst != shard) memmove(dst, shard, bounds[1] * sizeof(float));
        return TERN_OK;
    }
    return c->ops->gather(c, dst, shard, bounds, root);
}

tern_status tern_comm_reserve(tern_comm *c, size_t nops) { return c->size == 1 ? TERN_OK : c->ops->reserve(c, nops); }

tern_status tern_comm_iallreduce_f32(tern_comm *c, float *x, size_t n) {
    return c->size == 1 || n == 0 ? TERN_OK : c->ops->iallreduce(c, x, n);
}

tern_status tern_comm_ireduce_scatter_f32(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds) {
    check_range(c, lo, hi, bounds);
    return c->size == 1 || lo == hi ? TERN_OK : c->ops->reduce_scatter(c, x, lo, hi, bounds, 1);
}

tern_status tern_comm_progress(tern_comm *c) { return c->size == 1 ? TERN_OK : c->ops->progress(c); }
tern_status tern_comm_wait(tern_comm *c) { return c->size == 1 ? TERN_OK : c->ops->wait(c); }
