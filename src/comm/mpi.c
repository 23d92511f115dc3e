/* The communicator over MPI (MPI-3.1: MPI_Init_thread at MPI_THREAD_FUNNELED, blocking and
 * nonblocking collectives with MPI_IN_PLACE). Only the main thread calls MPI. Not a launcher:
 * mpirun, mpiexec or srun starts the ranks. Compiled with -DTERN_MPI, which the Makefile sets
 * when it finds MPI; errors come back as TERN_EDIST with MPI's message, never as aborts. */
#include "comm/comm_int.h"

#ifdef TERN_MPI
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

/* A nonblocking operation in flight; after completion, n floats move from x+from to x+to (an
 * in-place reduce-scatter leaves a rank's result at the start of the range). */
typedef struct pending {
    float *x;
    size_t from, to, n;
} pending;

typedef struct mpi_comm {
    MPI_Comm comm;
    int *counts, *displs;  /* (size) each, for the blocking vector collectives */
    MPI_Request *reqs;     /* (cap) */
    pending *pend;         /* (cap) */
    int *pend_counts;      /* (cap, size): MPI keeps reading them until completion */
    size_t npend, cap;
} mpi_comm;

static int open_count; /* communicators open in this process: MPI ends with the last */

static tern_status fail(int rc, const char *what) {
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(rc, s, &n) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", rc);
    return tern_err(TERN_EDIST, "MPI: %s failed: %s", what, s);
}
#define MPI_TRY(call, what)                                                                   \
    do {                                                                                      \
        int rc_ = (call);                                                                     \
        if (rc_ != MPI_SUCCESS) return fail(rc_, what);                                       \
    } while (0)

static MPI_Comm comm_of(tern_comm *c) { return ((mpi_comm *)c->impl)->comm; }

/* The ranks' parts of segment [s0, s1) of a vector sharded by bounds: counts[r] elements at
 * displs[r] from s0. */
static void segment_parts(const tern_comm *c, size_t s0, size_t s1, const size_t *bounds, int *counts, int *displs) {
    for (int r = 0; r < c->size; r++) {
        size_t a = bounds[r] > s0 ? bounds[r] : s0, b = bounds[r + 1] < s1 ? bounds[r + 1] : s1;
        counts[r] = b > a ? (int)(b - a) : 0;
        if (displs) displs[r] = b > a ? (int)(a - s0) : 0;
    }
}

static tern_status m_allreduce(tern_comm *c, void *x, size_t n, comm_dtype dt, comm_op op) {
    MPI_Datatype t = dt == COMM_F32 ? MPI_FLOAT : dt == COMM_F64 ? MPI_DOUBLE : MPI_INT64_T;
    size_t esz = dt == COMM_F32 ? 4 : 8;
    for (size_t s = 0; s < n; s += COMM_SEG) {
        size_t k = n - s < COMM_SEG ? n - s : COMM_SEG;
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, (char *)x + s * esz, (int)k, t, op == COMM_SUM ? MPI_SUM : MPI_MAX, comm_of(c)),
                "MPI_Allreduce");
    }
    return TERN_OK;
}

static tern_status m_bcast(tern_comm *c, void *p, size_t bytes, int root) {
    for (size_t s = 0; s < bytes; s += COMM_SEG) {
        size_t k = bytes - s < COMM_SEG ? bytes - s : COMM_SEG;
        MPI_TRY(MPI_Bcast((char *)p + s, (int)k, MPI_BYTE, root, comm_of(c)), "MPI_Bcast");
    }
    return TERN_OK;
}

static tern_status slot(tern_comm *c, size_t *i) {
    mpi_comm *mc = c->impl;
    if (mc->npend >= mc->cap)
        return tern_err(TERN_EDIST, "more nonblocking operations in flight than reserved (%zu)", mc->cap);
    *i = mc->npend++;
    return TERN_OK;
}

static tern_status m_reduce_scatter(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds, int nonblocking) {
    mpi_comm *mc = c->impl;
    for (size_t s0 = lo; s0 < hi; s0 += COMM_SEG) {
        size_t s1 = hi - s0 < COMM_SEG ? hi : s0 + COMM_SEG;
        size_t i = 0;
        int *counts = mc->counts;
        if (nonblocking) {
            TERN_TRY(slot(c, &i));
            counts = mc->pend_counts + i * (size_t)c->size;
        }
        segment_parts(c, s0, s1, bounds, counts, NULL);
        size_t mine = (size_t)counts[c->rank], to = bounds[c->rank] > s0 ? bounds[c->rank] : s0;
        /* In place, MPI leaves this rank's sums at the start of the segment. */
        if (nonblocking) {
            mc->pend[i] = (pending){x, s0, to, mine};
            MPI_TRY(MPI_Ireduce_scatter(MPI_IN_PLACE, x + s0, counts, MPI_FLOAT, MPI_SUM, mc->comm, &mc->reqs[i]),
                    "MPI_Ireduce_scatter");
        } else {
            MPI_TRY(MPI_Reduce_scatter(MPI_IN_PLACE, x + s0, counts, MPI_FLOAT, MPI_SUM, mc->comm), "MPI_Reduce_scatter");
            if (mine && to != s0) memmove(x + to, x + s0, mine * sizeof(float));
        }
    }
    return TERN_OK;
}

static tern_status m_allgather(tern_comm *c, float *x, size_t lo, size_t hi, const size_t *bounds) {
    mpi_comm *mc = c->impl;
    for (size_t s0 = lo; s0 < hi; s0 += COMM_SEG) {
        size_t s1 = hi - s0 < COMM_SEG ? hi : s0 + COMM_SEG;
        segment_parts(c, s0, s1, bounds, mc->counts, mc->displs);
        MPI_TRY(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x + s0, mc->counts, mc->displs, MPI_FLOAT, mc->comm),
                "MPI_Allgatherv");
    }
    return TERN_OK;
}

static tern_status m_gather(tern_comm *c, float *dst, const float *shard, const size_t *bounds, int root) {
    mpi_comm *mc = c->impl;
    size_t n = bounds[c->size], mine0 = bounds[c->rank];
    for (size_t s0 = 0; s0 < n; s0 += COMM_SEG) {
        size_t s1 = n - s0 < COMM_SEG ? n : s0 + COMM_SEG;
        segment_parts(c, s0, s1, bounds, mc->counts, mc->displs);
        size_t from = mine0 > s0 ? 0 : s0 - mine0; /* where this segment's part starts in the shard */
        const float *send = mc->counts[c->rank] ? shard + from : shard;
        MPI_TRY(MPI_Gatherv(send, mc->counts[c->rank], MPI_FLOAT, c->rank == root ? dst + s0 : NULL, mc->counts,
                            mc->displs, MPI_FLOAT, root, mc->comm),
                "MPI_Gatherv");
    }
    return TERN_OK;
}

static tern_status m_iallreduce(tern_comm *c, float *x, size_t n) {
    mpi_comm *mc = c->impl;
    for (size_t s = 0; s < n; s += COMM_SEG) {
        size_t k = n - s < COMM_SEG ? n - s : COMM_SEG, i = 0;
        TERN_TRY(slot(c, &i));
        mc->pend[i] = (pending){x, 0, 0, 0};
        MPI_TRY(MPI_Iallreduce(MPI_IN_PLACE, x + s, (int)k, MPI_FLOAT, MPI_SUM, mc->comm, &mc->reqs[i]), "MPI_Iallreduce");
    }
    return TERN_OK;
}

static tern_status m_reserve(tern_comm *c, size_t nops) {
    mpi_comm *mc = c->impl;
    TERN_ASSERT(mc->npend == 0);
    if (nops <= mc->cap) return TERN_OK;
    MPI_Request *r = realloc(mc->reqs, nops * sizeof *r);
    if (r) mc->reqs = r;
    pending *p = realloc(mc->pend, nops * sizeof *p);
    if (p) mc->pend = p;
    int *k = realloc(mc->pend_counts, nops * (size_t)c->size * sizeof *k);
    if (k) mc->pend_counts = k;
    if (!r || !p || !k) return tern_err(TERN_ENOMEM, "out of memory for %zu nonblocking operations", nops);
    mc->cap = nops;
    return TERN_OK;
}

static tern_status m_progress(tern_comm *c) {
    mpi_comm *mc = c->impl;
    int done;
    if (mc->npend) MPI_TRY(MPI_Testall((int)mc->npend, mc->reqs, &done, MPI_STATUSES_IGNORE), "MPI_Testall");
    return TERN_OK;
}

static tern_status m_wait(tern_comm *c) {
    mpi_comm *mc = c->impl;
    size_t n = mc->npend;
    mc->npend = 0;
    if (n) MPI_TRY(MPI_Waitall((int)n, mc->reqs, MPI_STATUSES_IGNORE), "MPI_Waitall");
    for (size_t i = 0; i < n; i++) {
        pending *p = &mc->pend[i];
        if (p->n && p->from != p->to) memmove(p->x + p->to, p->x + p->from, p->n * sizeof(float));
    }
    return TERN_OK;
}

static void m_abort(tern_comm *c, int code) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(comm_of(c), code);
}

static void m_free(tern_comm *c) {
    mpi_comm *mc = c->impl;
    if (mc) {
        if (mc->comm != MPI_COMM_NULL) MPI_Comm_free(&mc->comm);
        free(mc->counts);
        free(mc->displs);
        free(mc->reqs);
        free(mc->pend);
        free(mc->pend_counts);
        free(mc);
    }
    free(c);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (--open_count == 0 && !finalized) MPI_Finalize();
}

static const comm_ops mpi_ops = {m_allreduce, m_bcast,    m_reduce_scatter, m_allgather, m_gather, m_iallreduce,
                                 m_reserve,   m_progress, m_wait,           m_abort,     m_free};

tern_status comm_mpi_open(tern_comm **out) {
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_TRY(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    open_count++;
    tern_comm *c = calloc(1, sizeof *c);
    mpi_comm *mc = calloc(1, sizeof *mc);
    if (!c || !mc) {
        free(c);
        free(mc);
        if (--open_count == 0) MPI_Finalize();
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    c->ops = &mpi_ops;
    c->impl = mc;
    mc->comm = MPI_COMM_NULL;
    tern_status st = TERN_OK;
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &mc->comm);
    if (rc != MPI_SUCCESS) st = fail(rc, "MPI_Comm_dup");
    if (st == TERN_OK) {
        /* Errors come back to tern (and become messages) instead of aborting inside MPI. */
        MPI_Comm_set_errhandler(mc->comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(mc->comm, &c->rank);
        MPI_Comm_size(mc->comm, &c->size);
        MPI_Comm node;
        c->local_size = 1;
        if (MPI_Comm_split_type(mc->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
            MPI_Comm_size(node, &c->local_size);
            MPI_Comm_free(&node);
        }
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(lib, &len);
        lib[strcspn(lib, ",\n")] = 0;
        snprintf(c->name, sizeof c->name, "MPI (%.100s)", lib);
        mc->counts = calloc((size_t)c->size, sizeof(int));
        mc->displs = calloc((size_t)c->size, sizeof(int));
        if (!mc->counts || !mc->displs) st = tern_err(TERN_ENOMEM, "out of memory");
    }
    const char *var;
    int launched = comm_launcher_size(&var);
    if (st == TERN_OK && c->size == 1 && launched > 1)
        st = tern_err(TERN_EDIST,
                      "the launcher started %d processes (%s=%d) but MPI sees each as a job of one rank: under Slurm, "
                      "start them with srun --mpi=pmix (srun --mpi=list shows the choices) or with mpirun",
                      launched, var, launched);
    if (st != TERN_OK) {
        m_free(c);
        return st;
    }
    *out = c;
    return TERN_OK;
}
#else
/* Built without MPI: tern_comm_init gives one process (comm.c). */
typedef int tern_dist_no_mpi;
#endif
