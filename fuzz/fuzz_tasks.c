/* libFuzzer target: the benchmark tasks' data files through tern_task_parse. The first byte picks
 * the task (0 HellaSwag's text, 1 LAMBADA's JSON Lines, 2 PIQA's JSON Lines then, after a NUL
 * byte, its labels); the rest is the file (a bzip2 stream too). An accepted file's items are read
 * whole, encoded with GPT-2's tokenizer (data/gpt2, run from the repository root) and scored
 * through a mock model of 8 positions, so that cutting long inputs, the requests and the tally
 * are driven too. Format: docs/EVALUATION.md. */
#include "fuzz.h"

#include <math.h>

static const char *label = "fuzz.task";

static tern_status mock_score(void *self, const tern_lm_req *req, size_t n, tern_lm_res *res) {
    size_t max = *(size_t *)self;
    for (size_t i = 0; i < n; i++) {
        FUZZ_REQUIRE(req[i].n_ctx >= 1 && req[i].n_cont >= 1 && req[i].n_ctx + req[i].n_cont - 1 <= max, "request %zu + %zu",
                     req[i].n_ctx, req[i].n_cont);
        double s = 0;
        for (size_t j = 0; j < req[i].n_ctx; j++) s += req[i].ctx[j] % 7;
        for (size_t j = 0; j < req[i].n_cont; j++) s -= req[i].cont[j] % 5;
        res[i].logprob = -fabs(s) - 1;
        res[i].greedy = (int)(s > 0);
    }
    return TERN_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tern_tok *tok;
    if (!tok) FUZZ_REQUIRE(tern_tok_load(&tok, "data/gpt2", NULL) == TERN_OK, "GPT-2's tokenizer: %s", tern_errmsg());
    if (size < 1) return 0;
    static const char *names[] = {"hellaswag", "lambada", "piqa"};
    const char *name = names[data[0] % 3];
    data++, size--;
    size_t k = size;
    if (!strcmp(name, "piqa")) fuzz_split(data, size, &k);
    char *d = fuzz_dup(data, k), *l = fuzz_dup(data + (k < size ? k + 1 : size), k < size ? size - k - 1 : 0);
    tern_task *t = NULL;
    tern_err_clear();
    tern_status st = tern_task_parse(&t, name, d, k, label, l, k < size ? size - k - 1 : 0, label);
    fuzz_check_refusal(st, label);
    FUZZ_REQUIRE((st == TERN_OK) == (t != NULL), "status %d with task %p", (int)st, (void *)t);
    if (t) {
        FUZZ_REQUIRE(tern_task_count(t) > 0, "an accepted file with no items");
        unsigned sum = 0;
        for (size_t i = 0; i < tern_task_count(t); i++) {
            tern_task_text x;
            tern_task_text_at(t, i, &x);
            FUZZ_REQUIRE(x.n_choices >= 1 && x.n_choices <= TERN_TASK_MAX_CHOICES && x.gold >= 0 && x.gold < x.n_choices,
                         "item %zu: %d choices, gold %d", i, x.n_choices, x.gold);
            for (size_t j = 0; j < x.ctx_len; j++) sum += (uint8_t)x.ctx[j];
            for (int c = 0; c < x.n_choices; c++)
                for (size_t j = 0; j < x.choice_len[c]; j++) sum += (uint8_t)x.choice[c][j];
        }
        (void)sum;
        size_t max = 8;
        tern_lm lm = {&max, max, 3, mock_score, NULL};
        tern_task_tally tl = {0};
        tern_task_run_opts o = {.limit = 64};
        tern_err_clear();
        st = tern_task_run(t, tok, &lm, &o, &tl);
        fuzz_check_refusal(st, "item"); /* the one refusal: a continuation that encodes to nothing past its context */
        if (st == TERN_OK) {
            size_t want = tern_task_count(t) < 64 ? tern_task_count(t) : 64;
            FUZZ_REQUIRE(tl.n == (double)want && tl.acc <= tl.n && tl.acc_norm <= tl.n && tl.truncated <= tl.n, "tally");
            char *js;
            FUZZ_REQUIRE(tern_task_metrics_json(t, &tl, 1, &js) == TERN_OK, "json");
            free(js);
        }
        tern_task_free(t);
    }
    free(d);
    free(l);
    return 0;
}
