/* Inside the communicator: the table of operations an implementation provides (one process:
 * none are called, since every collective over one rank is the identity; MPI: mpi.c). Not part
 * of the public API; the pattern is ggml's backend interface. */
#ifndef TERN_COMM_INT_H
#define TERN_COMM_INT_H
#include "tern/comm.h"

/* Elements per MPI call: MPI-3 counts and displacements are ints, so longer ranges are sent in
 * segments of comm_seg elements (2^28; tests set it small to reach the segmenting code). */
extern size_t comm_seg;
#define COMM_SEG comm_seg

typedef enum { COMM_F32, COMM_F64, COMM_I64 } comm_dtype;
typedef enum { COMM_SUM, COMM_MAX } comm_op;

typedef struct comm_ops {
    /* x[0, n) in place, combined over ranks by op. */
    tern_status (*allreduce)(tern_comm *c, void *x, size_t n, comm_dtype dt, comm_op op);
    tern_status (*bcast)(tern_comm *c, void *p, size_t bytes, int root);
    /* The public reduce-scatter over x[lo, hi); nonblocking: queued until wait. */
    tern_status (*reduce_scatter)(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds, int nonblocking);
    tern_status (*allgather)(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds);
    tern_status (*gather)(tern_comm *c, float *dst, const float *shard, const size_t *bounds, int root);
    tern_status (*iallreduce)(tern_comm *c, float *x, size_t n);
    tern_status (*reserve)(tern_comm *c, size_t nops);
    tern_status (*progress)(tern_comm *c);
    tern_status (*wait)(tern_comm *c);
    void (*abort)(tern_comm *c, int code);
    void (*free)(tern_comm *c);
} comm_ops;

struct tern_comm {
    const comm_ops *ops; /* NULL for one process */
    int rank, size, local_size;
    char name[128];
    void *impl; /* the implementation's state */
    void *dev;  /* with NCCL (nccl.c): the device collectives' state; ops is then NCCL's table,
                 * which hands host buffers to the table it replaced */
};

/* How many ranks a launcher says this process is one of (0: no launcher seen), and which
 * variable said so. */
int comm_launcher_size(const char **var);
#ifdef TERN_MPI
/* MPI_Init_thread and the world communicator (mpi.c). */
tern_status comm_mpi_open(tern_comm **out);
#endif
#endif
