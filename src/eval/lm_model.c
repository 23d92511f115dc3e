/* A model of any family behind the tasks' tern_lm interface: requests packed `rows` to a forward
 * pass without targets, each row the context and all but the last continuation token, padded to
 * the longest row with token 0 (causal attention keeps the padding from reaching earlier
 * positions); the continuation's positions of the kept (B,T,V) logits are copied out and scored
 * with a log-softmax in double. The only file of the tasks that knows a model. */
#include "tern/eval.h"

#include "tern/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct lm_model {
    tern_model *m;
    size_t rows;
    size_t resB, resT; /* the shape reserved so far (at least keep_B x keep_T) */
    int32_t *in;       /* (rows, n_ctx) inputs */
    float *lg;         /* the continuations' logits of one pass, host memory */
    size_t lg_cap;     /* in positions */
} lm_model;

/* log p(target) and whether target is the first largest logit, for one position's V logits. */
static double log_prob(const float *lg, size_t V, int32_t target, int *greedy) {
    size_t best = 0;
    for (size_t v = 1; v < V; v++)
        if (lg[v] > lg[best]) best = v;
    double mx = lg[best], s = 0;
    for (size_t v = 0; v < V; v++) s += exp((double)lg[v] - mx);
    *greedy = best == (size_t)target;
    return (double)lg[target] - mx - log(s);
}

static tern_status score(void *self, const tern_lm_req *req, size_t n, tern_lm_res *res) {
    lm_model *g = self;
    const tern_model_config *c = tern_model_cfg(g->m);
    size_t V = (size_t)c->vocab_size;
    for (size_t i0 = 0; i0 < n; i0 += g->rows) {
        size_t B = n - i0 < g->rows ? n - i0 : g->rows, T = 0;
        for (size_t r = 0; r < B; r++) {
            const tern_lm_req *q = &req[i0 + r];
            TERN_ASSERT(q->n_ctx >= 1 && q->n_cont >= 1 && q->n_ctx + q->n_cont - 1 <= (size_t)c->n_ctx);
            if (q->n_ctx + q->n_cont - 1 > T) T = q->n_ctx + q->n_cont - 1;
        }
        if (B > g->resB || T > g->resT) {
            size_t nb = B > g->resB ? B : g->resB, nt = T > g->resT ? T : g->resT;
            TERN_TRY(tern_model_reserve(g->m, nb, nt));
            g->resB = nb;
            g->resT = nt;
        }
        memset(g->in, 0, B * T * sizeof(int32_t));
        for (size_t r = 0; r < B; r++) {
            const tern_lm_req *q = &req[i0 + r];
            memcpy(g->in + r * T, q->ctx, q->n_ctx * sizeof(int32_t));
            memcpy(g->in + r * T + q->n_ctx, q->cont, (q->n_cont - 1) * sizeof(int32_t));
        }
        TERN_TRY(tern_model_forward(g->m, g->in, NULL, B, T, NULL));
        /* the continuation's positions of each row, back to back: row r's start at off[r] */
        size_t npos = 0;
        for (size_t r = 0; r < B; r++) npos += req[i0 + r].n_cont;
        if (npos > g->lg_cap) {
            float *p = realloc(g->lg, npos * V * sizeof(float));
            if (!p) return tern_err(TERN_ENOMEM, "out of memory for the logits of %zu positions", npos);
            g->lg = p;
            g->lg_cap = npos;
        }
        size_t off[B + 1];
        off[0] = 0;
        for (size_t r = 0; r < B; r++) {
            const tern_lm_req *q = &req[i0 + r];
            /* position n_ctx - 1 + j predicts cont[j] */
            TERN_TRY(tern_model_logits_rows(g->m, r * T + q->n_ctx - 1, q->n_cont, g->lg + off[r] * V));
            off[r + 1] = off[r] + q->n_cont;
        }
        size_t work = npos * V;
#pragma omp parallel for schedule(dynamic, 1) if (work > TERN_OMP_MIN_WORK)
        for (size_t r = 0; r < B; r++) {
            const tern_lm_req *q = &req[i0 + r];
            double lp = 0;
            int all = 1;
            for (size_t j = 0; j < q->n_cont; j++) {
                int gr;
                lp += log_prob(g->lg + (off[r] + j) * V, V, q->cont[j], &gr);
                all &= gr;
            }
            res[i0 + r].logprob = lp;
            res[i0 + r].greedy = all;
        }
    }
    return TERN_OK;
}

static void lm_free(void *self) {
    lm_model *g = self;
    if (!g) return;
    free(g->in);
    free(g->lg);
    free(g);
}

tern_status tern_lm_model(tern_lm *lm, tern_model *m, size_t rows, size_t keep_B, size_t keep_T) {
    memset(lm, 0, sizeof *lm);
    if (rows == 0) return tern_err(TERN_EINVAL, "rows per forward pass must be positive");
    const tern_model_config *c = tern_model_cfg(m);
    lm_model *g = calloc(1, sizeof *g);
    if (!g) return tern_err(TERN_ENOMEM, "out of memory");
    g->m = m;
    g->rows = rows;
    tern_status st = keep_B && keep_T ? tern_model_reserve(m, keep_B, keep_T) : TERN_OK; /* a no-op when it is */
    g->resB = st == TERN_OK ? keep_B : 0;
    g->resT = st == TERN_OK ? keep_T : 0;
    if (st != TERN_OK) {
        free(g);
        return st;
    }
    g->in = malloc(rows * (size_t)c->n_ctx * sizeof(int32_t));
    if (!g->in) {
        lm_free(g);
        return tern_err(TERN_ENOMEM, "out of memory for %zu rows of %d tokens", rows, c->n_ctx);
    }
    lm->self = g;
    lm->max_len = (size_t)c->n_ctx;
    lm->batch = rows;
    lm->score = score;
    lm->free = lm_free;
    return TERN_OK;
}

tern_status tern_task_eval_model(tern_task *t, const struct tern_tok *tok, tern_model *m, size_t rows, size_t keep_B,
                                size_t keep_T, size_t limit, int rank, int world, tern_task_tally *tally) {
    memset(tally, 0, sizeof *tally);
    tern_lm lm;
    TERN_TRY(tern_lm_model(&lm, m, rows, keep_B, keep_T));
    tern_task_run_opts o = {.limit = limit, .rank = rank, .world = world};
    tern_status st = tern_task_run(t, tok, &lm, &o, tally);
    tern_lm_free(&lm);
    return st;
}
