/* Tests of data parallelism: the communicator's collectives over 3 MPI ranks (this program
 * started again by mpirun as a worker, with exact integer sums), and tern train under mpirun:
 * 2 ranks of --batch B against one process of --batch 2B (--zero 0 and 1), resumes from 2
 * ranks to 1 and from 1 to 2, a rank killed mid-run, and the refusals. The MPI parts need a
 * tern built with MPI and mpirun on PATH; without them only the single-process tests run. */
#include "check.h"
#include "comm/comm_int.h"
#include "tern.h"

#include <unistd.h>

#define SMALL_FLAGS                                                                                                    \
    "--n-layer 2 --n-head 2 --n-embd 32 --seq 32 --lr 3e-3 --warmup 2 --eval-batches 2 --eval-every 3 --threads 1"
/* As root in a container: Open MPI wants both confirmations, and --oversubscribe lets 3 ranks
 * share 2 cores. Under the sanitizers, the collective tests keep leak checking, with Open MPI's
 * own allocations set aside (tests/lsan_mpi.supp; full stacks so that they reach its
 * libraries); the training runs leave it to the single-process tests, since checking each rank
 * at exit takes seconds (ASan and UBSan stay on). */
#define MPIRUN_ENV "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
#define MPIRUN_CHECKED                                                                                                 \
    MPIRUN_ENV "ASAN_OPTIONS=${ASAN_OPTIONS:-}:fast_unwind_on_malloc=0 "                                               \
               "LSAN_OPTIONS=suppressions=$PWD/tests/lsan_mpi.supp:print_suppressions=0 mpirun --oversubscribe"
#define MPIRUN MPIRUN_ENV "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 mpirun --oversubscribe"

static char data_dir[512], small[1024];
static char out[1 << 16];
static const char *self;

static int setup(void) {
    if (data_dir[0]) return 1;
    const char *root = test_tmpdir("dist_setup");
    const char *t = test_tern_bin();
    char tok[600];
    snprintf(data_dir, sizeof data_dir, "%s/data", root);
    snprintf(tok, sizeof tok, "%s/tok", root);
    int rc = run_cmd(out, sizeof out,
                     "head -c 60000 data/tinyshakespeare/input.txt > %s/c.txt && %s tokenizer train --vocab-size 320 -o %s "
                     "%s/c.txt && %s prepare --tokenizer %s --val-fraction 0.1 -o %s %s/c.txt",
                     root, t, tok, root, t, tok, data_dir, root);
    if (rc != 0) {
        printf("setup failed: %s\n", out);
        data_dir[0] = 0;
        return 0;
    }
    snprintf(small, sizeof small, "--tokenizer %s " SMALL_FLAGS, tok);
    return 1;
}

/* The "loss" (or "val_loss") values of a run's metrics.jsonl. */
static int metric(const char *rundir, const char *key, double *vals, int max) {
    char path[600], pat[64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", rundir);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        char *p = strstr(line, pat);
        if (p) vals[n++] = atof(p + strlen(pat));
    }
    fclose(f);
    return n;
}

/* Losses (and val losses) of run b within `tol` (relative) of run a, over `steps` steps. */
static void same_losses(const char *a, const char *b, int steps, double tol) {
    double x[64], y[64];
    const char *keys[] = {"loss", "val_loss"};
    for (int k = 0; k < 2; k++) {
        int nx = metric(a, keys[k], x, 64), ny = metric(b, keys[k], y, 64);
        int want = k == 0 ? steps : steps / 3;
        CHECK(nx == want && ny == want, "%s: %d and %d values in %s and %s, expected %d", keys[k], nx, ny, a, b, want);
        for (int i = 0; i < nx && i < ny; i++)
            CHECK(fabs(x[i] - y[i]) <= tol * fabs(x[i]), "%s %d: %.9g vs %.9g (rel %.2g)", keys[k], i + 1, x[i], y[i],
                  fabs(x[i] - y[i]) / fabs(x[i]));
    }
}

/* Every tensor of two safetensors files: same names and shapes, values within tol (relative L2). */
static void close_tensors(const char *pa, const char *pb, double tol) {
    tern_safetensors *a = NULL, *b = NULL;
    CHECK(tern_st_open(&a, pa) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_st_open(&b, pb) == TERN_OK, "%s", tern_errmsg());
    if (!a || !b) goto out;
    CHECK(tern_st_count(a) == tern_st_count(b), "%zu vs %zu tensors", tern_st_count(a), tern_st_count(b));
    double worst = 0;
    for (size_t i = 0; i < tern_st_count(a); i++) {
        const tern_st_entry *e = tern_st_entry_at(a, i), *f = tern_st_find(b, e->name);
        CHECK(f && f->numel == e->numel && f->dtype == TERN_DT_F32, "%s: missing or other shape in %s", e->name, pb);
        if (!f || f->numel != e->numel) continue;
        const float *x = tern_st_data(a, e), *y = tern_st_data(b, f);
        if (strstr(e->name, "attn.c_attn.bias") && !strstr(pa, "optimizer")) {
            /* The key bias's gradient is zero in exact arithmetic (softmax ignores a constant added
             * to a whole row of scores), so AdamW steps on rounding noise there: both runs keep it
             * near zero, and the query and value thirds are compared. */
            size_t C = e->numel / 3;
            for (size_t i = C; i < 2 * C; i++)
                CHECK(fabsf(x[i]) < 1e-4f && fabsf(y[i]) < 1e-4f, "%s[%zu]: %g and %g", e->name, i, x[i], y[i]);
            double r = fmax(rel_l2(y, x, C), rel_l2(y + 2 * C, x + 2 * C, C));
            if (r > worst) worst = r;
            CHECK(r <= tol, "%s (query and value): relative error %.3g", e->name, r);
            continue;
        }
        double r = rel_l2(y, x, e->numel);
        if (r > worst) worst = r;
        CHECK(r <= tol, "%s: relative error %.3g", e->name, r);
    }
    printf("  %s: worst tensor relative error %.3g\n", strrchr(pa, '/') + 1, worst);
out:
    tern_st_free(a);
    tern_st_free(b);
}

/* ---- one process ---- */

static void test_shard_bounds(void) {
    size_t b[70];
    size_t ns[] = {0, 1, 15, 16, 17, 100, 1000, 4093, 1 << 20, 123457};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (int W = 1; W <= 64; W += W < 8 ? 1 : 7) {
            tern_comm_shard_bounds(ns[i], W, b);
            CHECK(b[0] == 0 && b[W] == ns[i], "n %zu W %d: ends %zu %zu", ns[i], W, b[0], b[W]);
            size_t lo = (size_t)-1, hi = 0;
            for (int r = 0; r < W; r++) {
                CHECK(b[r] <= b[r + 1], "n %zu W %d: bounds out of order at %d", ns[i], W, r);
                if (r > 0) CHECK(b[r] % 16 == 0, "n %zu W %d: bound %zu not a multiple of 16", ns[i], W, b[r]);
                size_t k = b[r + 1] - b[r];
                if (k < lo) lo = k;
                if (k > hi) hi = k;
            }
            CHECK(hi - lo < 32, "n %zu W %d: shards of %zu to %zu", ns[i], W, lo, hi);
        }
}

static void test_single_process(void) {
    tern_comm *c;
    CHECK(tern_comm_init_single(&c) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_comm_rank(c) == 0 && tern_comm_size(c) == 1 && !strcmp(tern_comm_name(c), "one process"), "%s",
          tern_comm_name(c));
    float x[40], y[40];
    for (int i = 0; i < 40; i++) x[i] = y[i] = (float)i * 0.5f;
    size_t b[2];
    tern_comm_shard_bounds(40, 1, b);
    CHECK(tern_comm_allreduce_f32(c, x, 40) == TERN_OK, "allreduce");
    CHECK(tern_comm_reduce_scatter_f32(c, x, 3, 30, b) == TERN_OK, "reduce-scatter");
    CHECK(tern_comm_allgather_f32(c, x, 0, 40, b) == TERN_OK, "allgather");
    CHECK(tern_comm_iallreduce_f32(c, x, 40) == TERN_OK && tern_comm_wait(c) == TERN_OK, "iallreduce");
    CHECK(!memcmp(x, y, sizeof x), "a collective over one rank changed the data");
    float g[40];
    CHECK(tern_comm_gather_f32(c, g, x, b, 0) == TERN_OK && !memcmp(g, y, sizeof g), "gather");
    tern_comm_free(c);
    tern_comm_free(NULL);

    tern_ddp *d;
    CHECK(tern_ddp_init(&d, NULL, 2, 1) == TERN_EINVAL &&
              !strcmp(tern_errmsg(), "--zero must be 0 (all-reduce the gradients) or 1 (ZeRO stage 1: shard AdamW's moments), got 2"),
          "%s", tern_errmsg());
    CHECK(tern_ddp_init(&d, NULL, 1, 1) == TERN_OK, "%s", tern_errmsg());
    long long batch = 4;
    CHECK(tern_ddp_fit_batch(d, &batch, 0, 12) == TERN_OK && batch == 12, "batch %lld", batch);
    batch = 4;
    CHECK(tern_ddp_fit_batch(d, &batch, 1, 12) == TERN_OK && batch == 4, "a given --batch is kept: %lld", batch);
    CHECK(tern_ddp_fit_batch(d, &batch, 0, 0) == TERN_OK && batch == 4, "unknown global batch: %lld", batch);
    int flag = 1;
    CHECK(tern_ddp_any(d, &flag) == TERN_OK && flag == 1, "any");
    CHECK(tern_ddp_threads(d, 0) == 0 && tern_ddp_threads(d, 3) == 3, "threads");
    tern_ddp_free(d);
    tern_ddp_free(NULL);
}

/* ---- the collectives over MPI ranks: this program as a worker under mpirun ---- */

static int worker_bad, worker_rank;
#define WCHECK(cond, ...)                                                                                              \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            worker_bad++;                                                                                              \
            printf("rank %d: check failed (line %d): %s: ", worker_rank, __LINE__, #cond);                             \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

enum { N = 1000 };

/* The value rank r holds at i before a sum: sums over W ranks are W*i + 1000*W(W-1)/2, exact in
 * float below 2^24. */
static float val(int r, size_t i) { return (float)(r * 1000 + (int)i); }
static float sum_at(int W, size_t i) { return (float)(W * (int)i + 1000 * W * (W - 1) / 2); }

static void worker_collectives(tern_comm *c, const size_t *b) {
    int R = tern_comm_rank(c), W = tern_comm_size(c);
    static float x[N], y[N];
    /* reduce-scatter over ranges: this rank's part of the range holds the sums; outside the
     * range nothing changes */
    size_t ranges[][2] = {{0, N}, {5, 640}, {517, 518}, {900, N}, {0, 3}};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        size_t lo = ranges[k][0], hi = ranges[k][1];
        for (size_t i = 0; i < N; i++) x[i] = val(R, i);
        WCHECK(tern_comm_reduce_scatter_f32(c, x, lo, hi, b) == TERN_OK, "%s", tern_errmsg());
        for (size_t i = 0; i < N; i++) {
            int mine = i >= lo && i < hi && i >= b[R] && i < b[R + 1];
            if (mine) WCHECK(x[i] == sum_at(W, i), "range %zu: x[%zu] = %g, expected %g", k, i, x[i], sum_at(W, i));
            if (i < lo || i >= hi) WCHECK(x[i] == val(R, i), "range %zu: x[%zu] outside the range changed", k, i);
        }
        /* all-gather: every rank receives the whole range from its owners */
        for (size_t i = 0; i < N; i++) x[i] = i >= b[R] && i < b[R + 1] ? 2.0f * (float)i : -1.0f;
        WCHECK(tern_comm_allgather_f32(c, x, lo, hi, b) == TERN_OK, "%s", tern_errmsg());
        for (size_t i = 0; i < N; i++) {
            int owned = i >= b[R] && i < b[R + 1];
            float want = (i >= lo && i < hi) || owned ? 2.0f * (float)i : -1.0f;
            WCHECK(x[i] == want, "allgather range %zu: x[%zu] = %g, expected %g", k, i, x[i], want);
        }
    }
    /* several nonblocking reduce-scatters and all-reduces in flight at once */
    for (size_t i = 0; i < N; i++) x[i] = y[i] = val(R, i);
    WCHECK(tern_comm_reserve(c, 512) == TERN_OK, "%s", tern_errmsg());
    WCHECK(tern_comm_ireduce_scatter_f32(c, x, 0, 300, b) == TERN_OK, "%s", tern_errmsg());
    WCHECK(tern_comm_iallreduce_f32(c, y + 10, 500) == TERN_OK, "%s", tern_errmsg());
    WCHECK(tern_comm_progress(c) == TERN_OK, "%s", tern_errmsg());
    WCHECK(tern_comm_ireduce_scatter_f32(c, x, 300, 301, b) == TERN_OK, "%s", tern_errmsg());
    WCHECK(tern_comm_ireduce_scatter_f32(c, x, 301, N, b) == TERN_OK, "%s", tern_errmsg());
    WCHECK(tern_comm_wait(c) == TERN_OK, "%s", tern_errmsg());
    for (size_t i = b[R]; i < b[R + 1]; i++) WCHECK(x[i] == sum_at(W, i), "ireduce_scatter: x[%zu] = %g", i, x[i]);
    for (size_t i = 0; i < N; i++) {
        float want = i >= 10 && i < 510 ? sum_at(W, i) : val(R, i);
        WCHECK(y[i] == want, "iallreduce: y[%zu] = %g, expected %g", i, y[i], want);
    }
    /* gather of the shards at the last rank */
    float *shard = x + b[R];
    for (size_t i = b[R]; i < b[R + 1]; i++) x[i] = 3.0f * (float)i;
    WCHECK(tern_comm_gather_f32(c, R == W - 1 ? y : NULL, shard, b, W - 1) == TERN_OK, "%s", tern_errmsg());
    if (R == W - 1)
        for (size_t i = 0; i < N; i++) WCHECK(y[i] == 3.0f * (float)i, "gather: y[%zu] = %g", i, y[i]);
}

static int worker(void) {
    tern_comm *c;
    if (tern_comm_init(&c) != TERN_OK) {
        printf("worker: %s\n", tern_errmsg());
        return 1;
    }
    int R = tern_comm_rank(c), W = tern_comm_size(c);
    worker_rank = R;
    WCHECK(W == 3 && tern_comm_local_size(c) == 3, "size %d, on this node %d", W, tern_comm_local_size(c));
    WCHECK(!strncmp(tern_comm_name(c), "MPI (", 5), "%s", tern_comm_name(c));
    static float x[N];
    for (size_t i = 0; i < N; i++) x[i] = val(R, i);
    WCHECK(tern_comm_allreduce_f32(c, x, N) == TERN_OK, "%s", tern_errmsg());
    for (size_t i = 0; i < N; i++) WCHECK(x[i] == sum_at(W, i), "allreduce: x[%zu] = %g", i, x[i]);
    double d[2] = {0.5 * (R + 1), -1.0};
    WCHECK(tern_comm_allreduce_f64(c, d, 2) == TERN_OK && d[0] == 0.25 * W * (W + 1) && d[1] == -W, "%g %g", d[0], d[1]);
    int64_t m[2] = {R, -R};
    WCHECK(tern_comm_max_i64(c, m, 2) == TERN_OK && m[0] == W - 1 && m[1] == 0, "%lld %lld", (long long)m[0], (long long)m[1]);
    char msg[32] = "";
    if (R == 1) snprintf(msg, sizeof msg, "from rank 1");
    WCHECK(tern_comm_bcast(c, msg, sizeof msg, 1) == TERN_OK && !strcmp(msg, "from rank 1"), "bcast: '%s'", msg);
    /* even shards, and shards with an empty one (rank 0's) */
    size_t even[4], uneven[4] = {0, 0, 517, N};
    tern_comm_shard_bounds(N, W, even);
    for (int seg = 0; seg < 2; seg++) {
        /* the second time, MPI calls of at most 7 elements: every range crosses segments */
        comm_seg = seg ? 7 : (size_t)1 << 28;
        worker_collectives(c, even);
        worker_collectives(c, uneven);
    }
    /* the data-parallel helpers: same bytes on every rank, or not */
    tern_ddp *dp;
    WCHECK(tern_ddp_init(&dp, c, 1, 1) == TERN_OK, "%s", tern_errmsg());
    WCHECK(tern_ddp_check_same(dp, "options", "same", 4) == TERN_OK, "%s", tern_errmsg());
    WCHECK(tern_ddp_check_same(dp, "options", R == 2 ? "diff" : "same", 4) == TERN_EDIST &&
               !strcmp(tern_errmsg(), "rank 2 has other options than rank 0: every rank must be started the same way"),
           "%s", tern_errmsg());
    int flag = R == 1;
    WCHECK(tern_ddp_any(dp, &flag) == TERN_OK && flag == 1, "any: %d", flag);
    long long batch = 4;
    WCHECK(tern_ddp_fit_batch(dp, &batch, 0, 12) == TERN_OK && batch == 4, "batch %lld", batch);
    WCHECK(tern_ddp_fit_batch(dp, &batch, 0, 8) == TERN_EINVAL &&
               !strcmp(tern_errmsg(), "the checkpoint's global batch of 8 rows cannot be split evenly over 3 ranks; run on a "
                                      "number of ranks that divides it, or give --batch (rows per rank) to change it"),
           "%s", tern_errmsg());
    tern_ddp_free(dp);
    printf("rank %d of %d: %s\n", R, W, worker_bad ? "FAILED" : "ok");
    tern_comm_free(c);
    return worker_bad ? 1 : 0;
}

static void test_mpi_collectives(void) {
    int rc = run_cmd(out, sizeof out, MPIRUN_CHECKED " -np 3 %s --worker", self);
    CHECK(rc == 0, "rc %d: %s", rc, out);
    for (int r = 0; r < 3; r++) {
        char want[64];
        snprintf(want, sizeof want, "rank %d of 3: ok\n", r);
        CHECK(strstr(out, want), "no '%s' in: %s", want, out);
    }
}

/* ---- tern train under mpirun ---- */

static void test_two_ranks_match_one(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("dist_match");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/one %s --batch 8 --steps 6", t, data_dir, d, small);
    CHECK(rc == 0, "one process: %s", out);
    /* Buckets of 4 KiB: ln_f with block 1, block 0, the embeddings; the blocks packed (rank by
     * rank under ZeRO-1) into the staging buffer. By default the whole model is one bucket. */
    const char *env[] = {"", "", "", "TERN_BUCKET_BYTES=4096 ", "TERN_BUCKET_BYTES=4096 "};
    const char *modes[] = {"--zero 0", "--zero 1", "--zero 1 --overlap 0", "--zero 0", "--zero 1"};
    for (int k = 0; k < 5; k++) {
        rc = run_cmd(out, sizeof out, "%s" MPIRUN " -np 2 %s train --data %s -o %s/two%d %s --batch 4 --steps 6 %s", env[k], t,
                     data_dir, d, k, small, modes[k]);
        CHECK(rc == 0, "2 ranks %s%s: %s", env[k], modes[k], out);
        CHECK(strstr(out, "2 ranks (MPI (") && strstr(out, "4 rows each: 8 rows per micro-batch"), "%s", out);
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/one", d);
        snprintf(b, sizeof b, "%s/two%d", d, k);
        same_losses(a, b, 6, 1e-5);
        /* rank 0 wrote the files one process writes */
        snprintf(a, sizeof a, "%s/one/ckpt/step-000006/model.safetensors", d);
        snprintf(b, sizeof b, "%s/two%d/ckpt/step-000006/model.safetensors", d, k);
        close_tensors(a, b, 1e-5);
        snprintf(a, sizeof a, "%s/one/ckpt/step-000006/optimizer.safetensors", d);
        snprintf(b, sizeof b, "%s/two%d/ckpt/step-000006/optimizer.safetensors", d, k);
        close_tensors(a, b, 1e-5);
    }
    /* grad accumulation: 2 ranks x 2 micro-batches of 2 rows against one process of 4 rows x 2 */
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/acc1 %s --batch 4 --grad-accum 2 --steps 6", t, data_dir, d, small);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, MPIRUN " -np 2 %s train --data %s -o %s/acc2 %s --batch 2 --grad-accum 2 --steps 6 --zero 1", t,
                 data_dir, d, small);
    CHECK(rc == 0, "%s", out);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/acc1", d);
    snprintf(b, sizeof b, "%s/acc2", d);
    same_losses(a, b, 6, 1e-5);
}

static void test_resume_across_sizes(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("dist_resume");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/full %s --batch 8 --steps 6", t, data_dir, d, small);
    CHECK(rc == 0, "%s", out);
    /* 2 ranks (ZeRO-1) -> 1 process */
    rc = run_cmd(out, sizeof out, MPIRUN " -np 2 %s train --data %s -o %s/a %s --batch 4 --steps 6 --zero 1 --stop-at 3", t,
                 data_dir, d, small);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, "%s train -o %s/a --resume", t, d);
    CHECK(rc == 0 && strstr(out, "tern: info: continuing on 1 rank: 8 rows each, the checkpoint's global batch of 8 rows"), "%s",
          out);
    /* 1 process -> 2 ranks (ZeRO-1: each reads its shard of the moments) */
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/b %s --batch 8 --steps 6 --stop-at 3", t, data_dir, d, small);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, MPIRUN " -np 2 %s train -o %s/b --resume --zero 1", t, d);
    CHECK(rc == 0 && strstr(out, "tern: info: continuing on 2 ranks: 4 rows each, the checkpoint's global batch of 8 rows"), "%s",
          out);
    char f[600], a[600], b[600];
    snprintf(f, sizeof f, "%s/full", d);
    snprintf(a, sizeof a, "%s/a", d);
    snprintf(b, sizeof b, "%s/b", d);
    same_losses(f, a, 6, 1e-5);
    same_losses(f, b, 6, 1e-5);
}

/* The Llama family over ranks: grouped-query attention with an untied head, 2 ranks (ZeRO-1)
 * against one process with twice the batch, and a 2-rank run resumed on one process. */
static void test_llama_over_ranks(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("dist_llama");
    const char *t = test_tern_bin();
    const char *arch = "--arch llama --n-kv-head 1 --ffn-dim 64";
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/one %s %s --batch 8 --steps 6", t, data_dir, d, small, arch);
    CHECK(rc == 0, "one process: %s", out);
    rc = run_cmd(out, sizeof out, MPIRUN " -np 2 %s train --data %s -o %s/two %s %s --batch 4 --steps 6 --zero 1", t, data_dir, d, small,
                 arch);
    CHECK(rc == 0 && strstr(out, "4 rows each: 8 rows per micro-batch"), "2 ranks: %s", out);
    rc = run_cmd(out, sizeof out, MPIRUN " -np 2 %s train --data %s -o %s/half %s %s --batch 4 --steps 6 --zero 1 --stop-at 3", t, data_dir,
                 d, small, arch);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, "%s train -o %s/half --resume", t, d);
    CHECK(rc == 0 && strstr(out, "continuing on 1 rank: 8 rows each"), "%s", out);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/one", d);
    snprintf(b, sizeof b, "%s/two", d);
    same_losses(a, b, 6, 1e-5);
    snprintf(b, sizeof b, "%s/half", d);
    same_losses(a, b, 6, 1e-5);
    snprintf(a, sizeof a, "%s/one/ckpt/step-000006/optimizer.safetensors", d);
    snprintf(b, sizeof b, "%s/two/ckpt/step-000006/optimizer.safetensors", d);
    close_tensors(a, b, 1e-5);
}

static void test_killed_rank(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("dist_kill");
    const char *t = test_tern_bin();
    /* Start a long run, wait for its first checkpoint, SIGKILL rank 1 (found by the rank Open MPI
     * gives it in its environment), and time how long the job takes to end (`timeout` ends a
     * hung job after 120 s, which fails the check). */
    int rc = run_cmd(out, sizeof out,
                     "R=%s/k; " MPIRUN_ENV "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 120 mpirun --oversubscribe -np 2 %s train --data %s -o $R %s --batch 4 --steps 100000 --ckpt-every 5 --eval-every 0 "
                     ">$R.log 2>&1 & mp=$!\n"
                     "i=0; while [ ! -f $R/ckpt/latest ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; sleep 0.3\n"
                     "victim=; for p in $(pgrep -f -- \"-o $R \"); do grep -qz '^OMPI_COMM_WORLD_RANK=1$' /proc/$p/environ "
                     "2>/dev/null && victim=$p; done\n"
                     "[ -n \"$victim\" ] || { echo no rank 1; kill $mp; exit 3; }\n"
                     "t0=$(date +%%s%%N); kill -KILL $victim; wait $mp; rc=$?; t1=$(date +%%s%%N)\n"
                     "echo \"rc=$rc ms=$(( (t1 - t0) / 1000000 ))\"; cat $R.log",
                     d, t, data_dir, small);
    int jrc = -1, ms = -1;
    char *p = strstr(out, "rc=");
    if (p) sscanf(p, "rc=%d ms=%d", &jrc, &ms);
    CHECK(rc == 0 && jrc != 0 && jrc != -1, "the job's status %d: %s", jrc, out);
    CHECK(ms >= 0 && ms < 60000, "the job took %d ms to end after the kill", ms);
    CHECK(strstr(out, "process rank 1") && strstr(out, "signal 9"), "no message naming rank 1: %s", out);
    printf("  killed rank 1: the job ended in %d ms with status %d\n", ms, jrc);
    /* The last checkpoint is whole: the run resumes from it, on 2 ranks, for two more steps. */
    char rundir[600], *ck = NULL, *state = NULL;
    snprintf(rundir, sizeof rundir, "%s/k", d);
    CHECK(tern_ckpt_latest(rundir, &ck) == TERN_OK && tern_ckpt_read_state(ck, &state, NULL) == TERN_OK, "%s", tern_errmsg());
    long step = state && strstr(state, "\"step\":") ? atol(strstr(state, "\"step\":") + 7) : 0;
    CHECK(step >= 5 && step % 5 == 0, "latest checkpoint at step %ld", step);
    rc = run_cmd(out, sizeof out, MPIRUN " -np 2 %s train -o %s --resume --stop-at %ld", t, rundir, step + 2);
    CHECK(rc == 0, "resume: %s", out);
    double l[1 << 12];
    int n = metric(rundir, "loss", l, 1 << 12);
    CHECK(n == step + 2, "%d loss lines after resuming at %ld", n, step);
    free(ck);
    free(state);
}

static void test_refusals(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("dist_refuse");
    const char *t = test_tern_bin();
    /* a global batch of 5 rows does not split over 2 ranks */
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/odd %s --batch 5 --steps 4 --stop-at 2", t, data_dir, d, small);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, MPIRUN " -np 2 %s train -o %s/odd --resume", t, d);
    CHECK(rc == 1 && strstr(out, "tern train: rank 0: the checkpoint's global batch of 5 rows cannot be split evenly over 2 "
                                 "ranks; run on a number of ranks that divides it, or give --batch (rows per rank) to change it\n"),
          "rc %d: %s", rc, out);
    /* ... unless --batch says how many rows each rank reads */
    rc = run_cmd(out, sizeof out, MPIRUN " -np 2 %s train -o %s/odd --resume --batch 3", t, d);
    CHECK(rc == 0 && strstr(out, "tern: warning: the global batch changes from 5 rows to 6 (2 ranks x --batch 3)"), "rc %d: %s",
          rc, out);
    /* ranks started with different options */
    rc = run_cmd(out, sizeof out,
                 MPIRUN " -np 1 %s train --data %s -o %s/mix %s --steps 2 --seed 1 : -np 1 %s train --data %s -o %s/mix %s "
                        "--steps 2 --seed 2",
                 t, data_dir, d, small, t, data_dir, d, small);
    CHECK(rc == 1 && strstr(out, "rank 1 has other options than rank 0: every rank must be started the same way\n"), "rc %d: %s",
          rc, out);
    rc = run_cmd(out, sizeof out, "TERN_BUCKET_BYTES=1k " MPIRUN " -np 2 %s train --data %s -o %s/bk %s --steps 2", t, data_dir, d,
                 small);
    CHECK(rc == 1 && strstr(out, "tern train: rank 0: TERN_BUCKET_BYTES: expected a number of bytes (at least 4), got '1k'\n"),
          "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/z %s --zero 2", t, data_dir, d, small);
    CHECK(rc == 2 && !strcmp(out, "tern train: --zero must be 0 (all-reduce the gradients) or 1 (ZeRO stage 1: shard AdamW's "
                                  "moments), got 2\n"),
          "rc %d: %s", rc, out);
}

/* A tern built without MPI, started by a launcher as one of several ranks, refuses rather than
 * training separate copies into one folder. */
static void test_without_mpi(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("dist_nompi");
    int rc = run_cmd(out, sizeof out, "OMPI_COMM_WORLD_SIZE=2 %s train --data %s -o %s/r %s --steps 2", test_tern_bin(), data_dir,
                     d, small);
    CHECK(rc == 1 && !strcmp(out, "tern train: this process is one of 2 ranks (OMPI_COMM_WORLD_SIZE=2), but this tern was built "
                                  "without MPI: install MPI (tools/install-deps.sh) and rebuild, or start a single process\n"),
          "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "SLURM_STEP_NUM_TASKS=1 %s train --data %s -o %s/r %s --steps 2", test_tern_bin(), data_dir, d,
                 small);
    CHECK(rc == 0, "one task of srun trains: %s", out);
}

/* tools/slurm_test.sh: a one-node Slurm cluster (munged, slurmctld, slurmd of its own) runs a
 * 2-task job with sbatch and srun, and a job whose task is killed. */
static void test_slurm(void) {
    int rc = run_cmd(out, sizeof out, "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 240 tools/slurm_test.sh %s",
                     test_tern_bin());
    CHECK(rc == 0, "rc %d: %s", rc, out);
    CHECK(strstr(out, "    2 ranks (MPI (") && strstr(out, ": task 1: Killed"), "%s", out);
    CHECK(strstr(out, "slurm_test: passed in "), "%s", out);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--worker")) return worker();
    self = argv[0];
    RUN(test_shard_bounds);
    RUN(test_single_process);
    if (!tern_comm_have_mpi()) RUN(test_without_mpi);
    if (!tern_comm_have_mpi() || run_cmd(out, sizeof out, "command -v mpirun") != 0) {
        printf("  tern was built without MPI, or mpirun is missing: the tests over MPI ranks do not run\n");
        return check_exit();
    }
    RUN(test_mpi_collectives);
    RUN(test_two_ranks_match_one);
    RUN(test_resume_across_sizes);
    RUN(test_llama_over_ranks);
    RUN(test_killed_rank);
    RUN(test_refusals);
    if (geteuid() == 0 && run_cmd(out, sizeof out, "command -v slurmctld && command -v slurmd && command -v munged") == 0)
        RUN(test_slurm);
    else
        printf("  not root, or Slurm (slurm-wlm, munge) is not installed: tools/slurm_test.sh does not run\n");
    return check_exit();
}
