/* The communicator (docs/DESIGN.md, "Data parallelism"): rank, size and the collectives a data-parallel step needs,
 * as one process or over MPI (when tern is built with MPI and started by mpirun, mpiexec or srun;
 * tern never starts processes itself). It knows nothing of models: tern/ddp.h builds the
 * data-parallel training step on it. Follows the MPI-3.1 standard's collectives. */
#ifndef TERN_COMM_H
#define TERN_COMM_H
#include "tern/backend.h"
#include "tern/core.h"

/* ---- the communicator ---- */
typedef struct tern_comm tern_comm;

/* Whether this libtern was built with MPI (make detects it; `make MPI=0` leaves it out). */
int tern_comm_have_mpi(void);
/* The world: MPI's when tern was built with MPI and the process was started by an MPI launcher
 * (or TERN_MPI=1 is set), else one process. A process that a launcher started as one of several
 * ranks fails here when tern was built without MPI, rather than training W separate copies. */
tern_status tern_comm_init(tern_comm **out);
/* One process, whatever the environment says. */
tern_status tern_comm_init_single(tern_comm **out);
/* Ends MPI (MPI_Finalize) for an MPI communicator. NULL is a no-op. */
void tern_comm_free(tern_comm *c);
/* Ends every rank of the job (MPI_Abort with `code`); returns for a single process, whose caller
 * exits. For a rank that failed while the others may be waiting for it in a collective. */
void tern_comm_abort(tern_comm *c, int code);
int tern_comm_rank(const tern_comm *c);
int tern_comm_size(const tern_comm *c);
/* Ranks on this node (sharing its cores). */
int tern_comm_local_size(const tern_comm *c);
/* "one process", or the MPI library's name and version. */
const char *tern_comm_name(const tern_comm *c);

/* Collectives: every rank calls the same ones in the same order with the same sizes. Sums are
 * taken in the element type; the summation order is the MPI library's, so results match one
 * process up to rounding, not bit for bit. */
tern_status tern_comm_allreduce_f32(tern_comm *c, float *x, size_t n);  /* sum, in place */
tern_status tern_comm_allreduce_f64(tern_comm *c, double *x, size_t n); /* sum, in place */
tern_status tern_comm_max_i64(tern_comm *c, int64_t *x, size_t n);      /* element-wise max, in place */
tern_status tern_comm_bcast(tern_comm *c, void *p, size_t bytes, int root);

/* Shards: bounds[0..size] split [0, n) into contiguous ranges, rank r owning [bounds[r],
 * bounds[r+1]); inner boundaries are multiples of 16 elements (64 bytes of floats) and the
 * shards differ in size by less than 32. A shard may be empty when n is small. */
void tern_comm_shard_bounds(size_t n, int size, size_t *bounds);
/* Over x[lo, hi) (a range of a vector sharded by bounds): afterwards each rank's part of the
 * range, [lo, hi) ∩ [bounds[rank], bounds[rank+1]), holds the sum over ranks; the rest of the
 * range is undefined. */
tern_status tern_comm_reduce_scatter_f32(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds);
/* Over x[lo, hi): each rank contributes its part, and every rank receives the whole range. */
tern_status tern_comm_allgather_f32(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds);
/* The whole vector at root: dst[0, bounds[size]) (root only; NULL elsewhere) from every rank's
 * shard (shard[0..bounds[rank+1]-bounds[rank])). */
tern_status tern_comm_gather_f32(tern_comm *c, float *dst, const float *shard, const size_t *bounds, int root);

/* Nonblocking: started now, finished by tern_comm_wait (which also completes the in-place
 * reduce-scatter). The buffers must not be touched until then. tern_comm_progress lets the
 * library move them along (MPI libraries progress only inside their calls). At most as many
 * operations may be outstanding as tern_comm_reserve allowed (each large range counts once
 * per 2^28 elements). */
tern_status tern_comm_reserve(tern_comm *c, size_t nops);
/* How many of tern_comm_reserve's operations a nonblocking collective over n elements counts as. */
size_t tern_comm_ops_for(size_t n);
tern_status tern_comm_iallreduce_f32(tern_comm *c, float *x, size_t n);
tern_status tern_comm_ireduce_scatter_f32(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds);
tern_status tern_comm_progress(tern_comm *c);
tern_status tern_comm_wait(tern_comm *c);

/* ---- GPUs ----
 * One rank per GPU: hands the collectives on device buffers (the gradient all-reduce, ZeRO-1's
 * reduce-scatter and all-gather, the parameter broadcast, the optimizer gather) to NCCL, on
 * be's GPU, ordered with be's stream; collectives on host buffers stay on MPI. Every rank calls
 * it, once, after opening its backend and before the first collective on the model's buffers
 * (rank 0 makes NCCL's id and broadcasts it over MPI). A no-op for one process or a host
 * backend; fails for several ranks on a GPU when tern was built without NCCL. docs/GPU.md. */
tern_status tern_comm_use_nccl(tern_comm *c, tern_backend *be);
#endif
