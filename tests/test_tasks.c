/* Benchmark tasks (src/eval/): the parsers on the shipped data files (HellaSwag 10,042 tasks,
 * LAMBADA 5,153 passages) and on PIQA's layout, every refusal by its message, the scoring of a
 * hand-made task whose answers are known (through a mock model), the cutting of long inputs, the
 * metrics lines, and a GPT-2's scores against PyTorch's on 200 HellaSwag and 200 LAMBADA items
 * (tests/fixtures/eval/, made by tools/make_eval_fixture.py with transformers in float64).
 * PIQA's own files are not shipped: with TERN_PIQA_DIR set to the folder holding valid.jsonl and
 * valid-labels.lst, test_piqa_real checks the 1,838 items. */
#include "check.h"

#include <cjson/cJSON.h>

#include "tern.h"

static const char *HS = "data/eval/hellaswag/hellaswag_val_full.txt.bz2";
static const char *LB = "data/eval/lambada/lambada_test.jsonl";

static int text_is(const char *p, size_t n, const char *want) { return n == strlen(want) && !memcmp(p, want, n); }

/* A task file loaded, with its number of items checked; NULL when it would not load. */
static tern_task *load_counted(const char *name, const char *path, size_t want) {
    tern_task *t;
    tern_status st = tern_task_load(&t, name, path);
    CHECK(st == TERN_OK, "%s", tern_errmsg());
    if (st != TERN_OK) return NULL;
    CHECK(tern_task_count(t) == want, "%s: %zu items, expected %zu", path, tern_task_count(t), want);
    return t;
}

static void test_hellaswag_shipped(void) {
    tern_task *t = load_counted("hellaswag", HS, 10042);
    if (!t) return;
    CHECK(!strcmp(tern_task_name(t), "hellaswag"), "name");
    tern_task_text x;
    tern_task_text_at(t, 0, &x);
    CHECK(text_is(x.ctx, x.ctx_len, "Roof shingle removal: A man is sitting on a roof. he"), "ctx %.*s", (int)x.ctx_len, x.ctx);
    CHECK(x.gold == 3 && x.n_choices == 4, "gold %d, %d choices", x.gold, x.n_choices);
    CHECK(text_is(x.choice[0], x.choice_len[0], "is using wrap to wrap a pair of skis."), "ending 0");
    CHECK(text_is(x.choice[3], x.choice_len[3], "starts pulling up roofing on a roof."), "ending 3");
    tern_task_text_at(t, 10041, &x);
    CHECK(x.gold == 2, "last gold %d", x.gold);
    CHECK(text_is(x.choice[1], x.choice_len[1],
                  "Read the following as a rule for determining your teen's behaviour. You may notice your teen dressing in odd "
                  "outfits that could indicate that they are on a date."),
          "last task's ending 1");
    tern_task_free(t);
}

static void test_lambada_shipped(void) {
    tern_task *t = load_counted("lambada", LB, 5153);
    if (!t) return;
    tern_task_text x;
    tern_task_text_at(t, 0, &x);
    const char *tail = "I don't care about";
    CHECK(x.ctx_len > strlen(tail) && !memcmp(x.ctx + x.ctx_len - strlen(tail), tail, strlen(tail)), "context ends '%.*s'",
          20, x.ctx + x.ctx_len - 20);
    CHECK(x.n_choices == 1 && x.gold == 0 && text_is(x.choice[0], x.choice_len[0], "signs"), "target '%.*s'",
          (int)x.choice_len[0], x.choice[0]);
    tern_task_text_at(t, 5152, &x); /* JSON escapes decoded: curly quotes and a newline */
    CHECK(text_is(x.choice[0], x.choice_len[0], "Grandmother"), "last target '%.*s'", (int)x.choice_len[0], x.choice[0]);
    const char *last = "\xe2\x80\x9d\n\xe2\x80\x9cI would never forget the rules,";
    CHECK(x.ctx_len > strlen(last) && !memcmp(x.ctx + x.ctx_len - strlen(last), last, strlen(last)), "last context");
    tern_task_free(t);
}

static const char *write_file(const char *dir, const char *name, const char *text) {
    static char paths[4][600];
    static int k;
    char *p = paths[k++ & 3];
    snprintf(p, 600, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return p;
}

static void test_piqa_layout(void) {
    const char *d = test_tmpdir("tasks_piqa");
    write_file(d, "valid.jsonl",
               "{\"goal\": \"Keep bread fresh\", \"sol1\": \"Seal it in a bag.\", \"sol2\": \"Leave it in the rain.\"}\n"
               "{\"goal\": \"Cool tea \\u00e0 la russe\", \"sol1\": \"Add ice.\", \"sol2\": \"Boil it.\"}\n");
    write_file(d, "valid-labels.lst", "0\n0\n");
    tern_task *t = load_counted("piqa", d, 2); /* the folder */
    if (!t) return;
    tern_task_text x;
    tern_task_text_at(t, 1, &x);
    CHECK(text_is(x.ctx, x.ctx_len, "Question: Cool tea \xc3\xa0 la russe\nAnswer:"), "ctx '%.*s'", (int)x.ctx_len, x.ctx);
    CHECK(x.n_choices == 2 && x.gold == 0 && text_is(x.choice[1], x.choice_len[1], "Boil it."), "choices");
    tern_task_free(t);
    char path[600];
    snprintf(path, sizeof path, "%s/valid.jsonl", d); /* the file, labels found beside it */
    tern_task_free(load_counted("piqa", path, 2));
}

static void test_piqa_real(void) {
    tern_task *t = load_counted("piqa", getenv("TERN_PIQA_DIR"), 1838);
    if (!t) return;
    tern_task_text x;
    tern_task_text_at(t, 0, &x);
    CHECK(text_is(x.ctx, x.ctx_len, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:"), "ctx");
    CHECK(x.gold == 0, "gold %d", x.gold);
    tern_task_free(t);
}

/* A refused input's message, which must contain want. */
static void expect_refusal(const char *task, const char *data, const char *labels, tern_status want_st, const char *want) {
    tern_task *t = NULL;
    tern_status st = tern_task_parse(&t, task, data, strlen(data), "x.data", labels, labels ? strlen(labels) : 0, "x.labels");
    CHECK(st == want_st && t == NULL, "%s: status %d for %s", task, (int)st, want);
    CHECK(strstr(tern_errmsg(), want) != NULL, "%s: message '%s' lacks '%s'", task, tern_errmsg(), want);
    tern_task_free(t);
}

static void test_refusals(void) {
    expect_refusal("hellaswag", "ctx\n7\na\nb\nc\nd\n", NULL, TERN_EFORMAT,
                   "x.data: line 2: expected the gold ending's number (0 to 3) of task 0, found '7'");
    expect_refusal("hellaswag", "ctx\n1\na\nb\nc\nd\nctx2\n0\na\n", NULL, TERN_EFORMAT,
                   "x.data: ends after line 9, inside task 1 (six lines a task: context, gold ending 0-3, four endings)");
    expect_refusal("hellaswag", "ctx\n1\na\n\nc\nd\n", NULL, TERN_EFORMAT, "x.data: line 4 is empty; expected an ending of task 0");
    expect_refusal("hellaswag", "", NULL, TERN_EFORMAT, "x.data: holds no hellaswag items");
    expect_refusal("hellaswag", "BZh91AY&SY", NULL, TERN_EFORMAT, "x.data: not a whole bzip2 stream");
    expect_refusal("lambada", "{\"text\": \"a b\"}\n{\"txt\": \"a b\"}\n", NULL, TERN_EFORMAT,
                   "x.data: line 2: expected a JSON object with a string \"text\"");
    expect_refusal("lambada", "{\"text\": \"oneword\"}\n", NULL, TERN_EFORMAT,
                   "x.data: line 1: the text needs a space with words before and after it (the last word is the target)");
    expect_refusal("lambada", "{\"text\": \"a b\"\n", NULL, TERN_EFORMAT, "x.data: line 1: expected a JSON object");
    const char *piqa = "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}\n{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}\n";
    expect_refusal("piqa", piqa, "0\n", TERN_EFORMAT, "x.labels has 1 labels but x.data has 2 items; the lines must pair up");
    expect_refusal("piqa", piqa, "0\n2\n", TERN_EFORMAT, "x.labels: line 2: expected a label 0 or 1, found '2'");
    expect_refusal("piqa", "{\"goal\": \"g\", \"sol1\": \"a\"}\n", "0\n", TERN_EFORMAT,
                   "x.data: line 1: expected a JSON object with strings \"goal\", \"sol1\" and \"sol2\"");
    expect_refusal("arc", "x", NULL, TERN_EINVAL, "unknown task 'arc' (known: hellaswag, lambada, piqa)");
    tern_task *t = NULL;
    tern_status st = tern_task_load(&t, "lambada", "/nonexistent/lambada.jsonl");
    CHECK(st == TERN_ENOTFOUND && strstr(tern_errmsg(), "/nonexistent/lambada.jsonl"), "missing file: %d %s", (int)st, tern_errmsg());
    st = tern_task_load(&t, "piqa", "/tmp/piqa.txt");
    CHECK(st == TERN_EINVAL && strstr(tern_errmsg(), "PIQA takes X.jsonl with its labels beside it"), "%s", tern_errmsg());
    /* the shipped bzip2 file cut short */
    tern_map m;
    if (tern_map_file(&m, HS) == TERN_OK) {
        st = tern_task_parse(&t, "hellaswag", (const char *)m.data, m.size / 2, "half.bz2", NULL, 0, NULL);
        CHECK(st == TERN_EFORMAT && strstr(tern_errmsg(), "half.bz2: not a whole bzip2 stream (it ends early)"), "%s", tern_errmsg());
        tern_unmap(&m);
    }
}

/* ---- a mock model: every continuation token " yes" has log-probability -0.5, any other -3 ---- */
typedef struct mock {
    const tern_tok *tok;
    int32_t yes;
    size_t calls, max_seen, most_in_call;
    int32_t first_ctx[16]; /* the context of the last request with a cut (for the cutting test) */
    size_t first_ctx_n;
} mock;

static tern_status mock_score(void *self, const tern_lm_req *req, size_t n, tern_lm_res *res) {
    mock *m = self;
    m->calls++;
    if (n > m->most_in_call) m->most_in_call = n;
    for (size_t i = 0; i < n; i++) {
        size_t len = req[i].n_ctx + req[i].n_cont - 1;
        if (len > m->max_seen) m->max_seen = len;
        res[i].logprob = 0;
        res[i].greedy = 1;
        for (size_t j = 0; j < req[i].n_cont; j++) {
            int y = req[i].cont[j] == m->yes;
            res[i].logprob += y ? -0.5 : -3;
            res[i].greedy &= y;
        }
        m->first_ctx_n = req[i].n_ctx < 16 ? req[i].n_ctx : 16;
        memcpy(m->first_ctx, req[i].ctx, m->first_ctx_n * sizeof(int32_t));
    }
    return TERN_OK;
}

typedef struct seen {
    tern_task_item items[8];
    size_t n;
} seen;

static void keep(void *ctx, const tern_task_item *it) {
    seen *s = ctx;
    if (s->n < 8) s->items[s->n++] = *it;
}

static void test_known_answers(void) {
    tern_tok *tok;
    if (tern_tok_load(&tok, "data/gpt2", NULL) != TERN_OK) {
        CHECK(0, "%s", tern_errmsg());
        return;
    }
    tern_ids yes = {0};
    tern_tok_encode(tok, " yes", 4, &yes);
    CHECK(yes.n == 1, "' yes' is %zu tokens", yes.n);
    mock mk = {tok, yes.n ? yes.p[0] : 0, 0, 0, 0, {0}, 0};
    tern_lm lm = {&mk, 1024, 3, mock_score, NULL};
    /* Task 0 (gold 0): "yes" against "no no no": every rule picks 0.
     * Task 1 (gold 1): "maybe" (1 token, 5 characters, ll -3) against seven "yes" (7 tokens, 27
     * characters, ll -3.5): the sum picks 0 (wrong), per character -0.6 < -0.13 and per token
     * -3 < -0.5 both pick 1. */
    const char *hs = "Q: first\n0\nyes\nno no no\nnope\nnah\n"
                     "Q: second\n1\nmaybe\nyes yes yes yes yes yes yes\nno\nno\n";
    tern_task *t;
    tern_status st = tern_task_parse(&t, "hellaswag", hs, strlen(hs), "two.txt", NULL, 0, NULL);
    CHECK(st == TERN_OK, "%s", tern_errmsg());
    if (st != TERN_OK) {
        tern_tok_free(tok);
        tern_ids_free(&yes);
        return;
    }
    seen s = {0};
    tern_task_tally tl = {0};
    tern_task_run_opts o = {.ctx = &s, .on_item = keep};
    st = tern_task_run(t, tok, &lm, &o, &tl);
    CHECK(st == TERN_OK, "%s", tern_errmsg());
    CHECK(s.n == 2 && s.items[0].index == 0 && s.items[1].index == 1, "%zu items", s.n);
    CHECK(mk.calls == 3 && mk.most_in_call == 3, "8 requests in %zu calls of at most %zu", mk.calls, mk.most_in_call);
    const tern_task_item *a = &s.items[0], *b = &s.items[1];
    CHECK(a->ll[0] == -0.5 && a->ll[1] == -9 && a->tokens[1] == 3 && a->chars[1] == 8, "task 0: %g %g %zu %zu", a->ll[0], a->ll[1],
          a->tokens[1], a->chars[1]);
    CHECK(a->pred == 0 && a->pred_norm == 0 && a->pred_norm_tok == 0 && a->greedy[0] && !a->greedy[1], "task 0 predictions");
    CHECK(b->ll[0] == -3 && b->ll[1] == -3.5 && b->tokens[1] == 7 && b->chars[1] == 27 && b->chars[0] == 5, "task 1: %g %g",
          b->ll[0], b->ll[1]);
    CHECK(b->pred == 0 && b->pred_norm == 1 && b->pred_norm_tok == 1, "task 1 predictions %d %d %d", b->pred, b->pred_norm,
          b->pred_norm_tok);
    CHECK(tl.n == 2 && tl.acc == 1 && tl.acc_norm == 2 && tl.acc_norm_tok == 2 && tl.ll == -4 && tl.ll_sq == 12.5 &&
              tl.truncated == 0,
          "tally %g %g %g %g %g %g", tl.n, tl.acc, tl.acc_norm, tl.acc_norm_tok, tl.ll, tl.ll_sq);
    char *js;
    tern_task_metrics_json(t, &tl, 7, &js);
    CHECK(!strcmp(js, "{\"step\":7,\"hellaswag_acc\":0.5,\"hellaswag_acc_stderr\":0.5,\"hellaswag_acc_norm\":1,"
                      "\"hellaswag_acc_norm_stderr\":0,\"hellaswag_acc_norm_tok\":1,\"hellaswag_acc_norm_tok_stderr\":0,"
                      "\"hellaswag_items\":2,\"hellaswag_truncated\":0}"),
          "%s", js);
    free(js);
    tern_task_item_json(t, b, &js);
    CHECK(!strcmp(js, "{\"index\":1,\"gold\":1,\"pred\":0,\"pred_norm\":1,\"pred_norm_tok\":1,\"ll\":[-3,-3.5,-3,-3],"
                      "\"tokens\":[1,7,1,1],\"chars\":[5,27,2,2],\"truncated\":0}"),
          "%s", js);
    free(js);
    /* two ranks: item 0 on rank 0, item 1 on rank 1; their tallies add up to the one above */
    tern_task_tally t0 = {0}, t1 = {0};
    tern_task_run_opts r0 = {.rank = 0, .world = 2}, r1 = {.rank = 1, .world = 2};
    CHECK(tern_task_run(t, tok, &lm, &r0, &t0) == TERN_OK && tern_task_run(t, tok, &lm, &r1, &t1) == TERN_OK, "ranks");
    CHECK(t0.n + t1.n == 2 && t0.acc + t1.acc == 1 && t0.acc_norm + t1.acc_norm == 2 && t0.ll + t1.ll == -4, "ranks' tallies");
    tern_task_free(t);

    /* whitespace that ends a context moves to the continuation (lm-evaluation-harness's
     * _encode_pair): "Q: spaced " + " yes" scores the tokens " " and " yes" */
    const char *sp = "Q: spaced \n0\nyes\nno\nno\nno\n";
    CHECK(tern_task_parse(&t, "hellaswag", sp, strlen(sp), "sp.txt", NULL, 0, NULL) == TERN_OK, "%s", tern_errmsg());
    s.n = 0;
    tern_task_tally ts = {0};
    CHECK(tern_task_run(t, tok, &lm, &o, &ts) == TERN_OK, "%s", tern_errmsg());
    CHECK(s.n == 1 && s.items[0].tokens[0] == 2 && s.items[0].ll[0] == -3.5 && s.items[0].chars[0] == 3, "tokens %zu ll %g",
          s.items[0].tokens[0], s.items[0].ll[0]);
    tern_task_free(t);

    /* LAMBADA: the last word " yes" is greedy (right), " no" is not */
    const char *lb = "{\"text\": \"say yes\"}\n{\"text\": \"say no\"}\n";
    CHECK(tern_task_parse(&t, "lambada", lb, strlen(lb), "lb.jsonl", NULL, 0, NULL) == TERN_OK, "%s", tern_errmsg());
    tern_task_tally tb = {0};
    tern_task_run_opts ol = {0};
    CHECK(tern_task_run(t, tok, &lm, &ol, &tb) == TERN_OK, "%s", tern_errmsg());
    tern_task_metrics m;
    tern_task_summarize(t, &tb, &m);
    /* ll -0.5 and -3: mean -1.75, perplexity e^1.75; sd of (-0.5, -3) is 1.767767 */
    CHECK(m.acc == 0.5 && fabs(m.ppl - exp(1.75)) < 1e-12 && fabs(m.ppl_se - exp(1.75) * sqrt(3.125) / sqrt(2)) < 1e-9 &&
              isnan(m.acc_norm),
          "acc %g ppl %g se %g", m.acc, m.ppl, m.ppl_se);
    tern_task_metrics_json(t, &tb, -1, &js);
    CHECK(!strcmp(js, "{\"lambada_acc\":0.5,\"lambada_acc_stderr\":0.5,\"lambada_ppl\":5.75460268,\"lambada_ppl_stderr\":"
                      "7.19325335,\"lambada_items\":2,\"lambada_truncated\":0}"),
          "%s", js);
    free(js);
    tern_task_free(t);
    tern_ids_free(&yes);
    tern_tok_free(tok);
}

/* A context longer than the model is cut on the left; a continuation longer than it keeps its
 * last max_len tokens, given the one before them. */
static void test_cutting(void) {
    tern_tok *tok;
    if (tern_tok_load(&tok, "data/gpt2", NULL) != TERN_OK) return;
    tern_ids yes = {0};
    tern_tok_encode(tok, " yes", 4, &yes);
    mock mk = {tok, yes.p[0], 0, 0, 0, {0}, 0};
    tern_lm lm = {&mk, 4, 1, mock_score, NULL};
    const char *lb = "{\"text\": \"a b c d e f yes\"}\n";
    tern_task *t;
    CHECK(tern_task_parse(&t, "lambada", lb, strlen(lb), "lb.jsonl", NULL, 0, NULL) == TERN_OK, "%s", tern_errmsg());
    seen s = {0};
    tern_task_tally tl = {0};
    tern_task_run_opts o = {.ctx = &s, .on_item = keep};
    CHECK(tern_task_run(t, tok, &lm, &o, &tl) == TERN_OK, "%s", tern_errmsg());
    /* "a b c d e f" is 6 tokens, " yes" one: the model reads 4 of 6, the last four of the context */
    tern_ids want = {0};
    tern_tok_encode(tok, " c d e f", 8, &want);
    CHECK(mk.max_seen == 4 && s.n == 1 && s.items[0].dropped == 2 && tl.truncated == 1, "read %zu, dropped %zu", mk.max_seen,
          s.n ? s.items[0].dropped : 0);
    CHECK(mk.first_ctx_n == 4 && want.n == 4 && !memcmp(mk.first_ctx, want.p, 4 * sizeof(int32_t)), "the context kept");
    tern_task_free(t);
    const char *hs = "Q\n0\nyes yes yes yes yes yes\nno\nno\nno\n";
    CHECK(tern_task_parse(&t, "hellaswag", hs, strlen(hs), "hs.txt", NULL, 0, NULL) == TERN_OK, "%s", tern_errmsg());
    s.n = 0;
    mk.max_seen = 0;
    tern_task_run_opts o2 = {.ctx = &s, .on_item = keep};
    CHECK(tern_task_run(t, tok, &lm, &o2, &tl) == TERN_OK, "%s", tern_errmsg());
    /* choice 0 is six " yes": 1 context token + 6 = 7 > 4 + 1: its last 4 are scored given the 2nd */
    CHECK(s.n == 1 && s.items[0].tokens[0] == 4 && s.items[0].ll[0] == -2 && s.items[0].dropped == 2 && mk.max_seen == 4,
          "tokens %zu ll %g dropped %zu", s.n ? s.items[0].tokens[0] : 0, s.n ? s.items[0].ll[0] : 0, s.n ? s.items[0].dropped : 0);
    tern_task_free(t);
    tern_ids_free(&want);
    tern_ids_free(&yes);
    tern_tok_free(tok);
}

/* ---- tern's GPT-2 against PyTorch ---- */
typedef struct ref_cmp {
    cJSON *rows;     /* reference.jsonl's items of one task, by index */
    size_t checked;
    double worst;    /* largest |ll - reference| */
    int mismatches;
} ref_cmp;

static void compare_item(void *ctx, const tern_task_item *it) {
    ref_cmp *rc = ctx;
    const cJSON *row = cJSON_GetArrayItem(rc->rows, (int)it->index);
    if (!row) return;
    rc->checked++;
    const cJSON *ll = cJSON_GetObjectItem(row, "ll"), *tk = cJSON_GetObjectItem(row, "tokens");
    for (int c = 0; c < it->n_choices; c++) {
        double r = cJSON_GetArrayItem(ll, c)->valuedouble, d = fabs(it->ll[c] - r);
        if (d > rc->worst) rc->worst = d;
        if (d > 1e-4 || (size_t)cJSON_GetArrayItem(tk, c)->valuedouble != it->tokens[c]) {
            if (rc->mismatches++ < 5)
                printf("  item %zu choice %d: tern %.9g (%zu tokens), PyTorch %.9g (%g tokens)\n", it->index, c, it->ll[c],
                       it->tokens[c], r, cJSON_GetArrayItem(tk, c)->valuedouble);
        }
        const cJSON *g = cJSON_GetArrayItem(cJSON_GetObjectItem(row, "greedy"), c);
        if (cJSON_IsTrue(g) != (it->greedy[c] != 0) && rc->mismatches++ < 5) printf("  item %zu: greedy differs\n", it->index);
    }
    if (it->n_choices > 1) {
        int p = cJSON_GetObjectItem(row, "pred")->valueint, pn = cJSON_GetObjectItem(row, "pred_norm")->valueint,
            pt = cJSON_GetObjectItem(row, "pred_norm_tok")->valueint;
        if ((p != it->pred || pn != it->pred_norm || pt != it->pred_norm_tok) && rc->mismatches++ < 5)
            printf("  item %zu: choices %d %d %d, PyTorch's %d %d %d\n", it->index, it->pred, it->pred_norm, it->pred_norm_tok, p, pn,
                   pt);
    }
}

static void test_gpt2_against_pytorch(void) {
    char *text;
    size_t n;
    if (tern_read_file("tests/fixtures/eval/reference.jsonl", &text, &n) != TERN_OK) {
        CHECK(0, "%s", tern_errmsg());
        return;
    }
    cJSON *rows[2] = {cJSON_CreateArray(), cJSON_CreateArray()};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *task = cJSON_GetObjectItem(j, "task");
        if (cJSON_IsString(task)) cJSON_AddItemToArray(rows[strcmp(task->valuestring, "hellaswag") != 0], j);
        else cJSON_Delete(j);
    }
    free(text);
    tern_model *m;
    char *tokdir;
    tern_tok *tok = NULL;
    tern_status st = tern_io_open_model("tests/fixtures/eval/tiny", 0, &m, &tokdir, NULL, NULL);
    if (st == TERN_OK) st = tern_tok_load(&tok, tokdir, NULL);
    CHECK(st == TERN_OK, "%s", tern_errmsg());
    const char *names[2] = {"hellaswag", "lambada"}, *files[2] = {HS, LB};
    for (int k = 0; k < 2 && st == TERN_OK; k++) {
        tern_task *t;
        if (tern_task_load(&t, names[k], files[k]) != TERN_OK) continue;
        for (size_t rows_per = 1; rows_per <= 7; rows_per += 6) { /* one row a pass, and 7 (padded) */
            tern_lm lm;
            tern_lm_model(&lm, m, rows_per, 0, 0);
            ref_cmp rc = {rows[k], 0, 0, 0};
            tern_task_tally tl = {0};
            tern_task_run_opts o = {.limit = (size_t)cJSON_GetArraySize(rows[k]), .ctx = &rc, .on_item = compare_item};
            st = tern_task_run(t, tok, &lm, &o, &tl);
            CHECK(st == TERN_OK, "%s", tern_errmsg());
            CHECK(rc.checked == 200 && rc.mismatches == 0, "%s, %zu rows a pass: %zu items checked, %d mismatches (worst "
                  "log-likelihood difference %.3g)", names[k], rows_per, rc.checked, rc.mismatches, rc.worst);
            printf("  %s, %zu rows a pass: %zu items agree with PyTorch (float64); worst log-likelihood difference %.2e\n",
                   names[k], rows_per, rc.checked, rc.worst);
            if (k == 0) CHECK(tl.truncated > 0, "some HellaSwag contexts exceed the 128 positions and are cut");
            tern_lm_free(&lm);
        }
        tern_task_free(t);
    }
    cJSON_Delete(rows[0]);
    cJSON_Delete(rows[1]);
    tern_tok_free(tok);
    tern_io_tokdir_free(tokdir);
    tern_model_free(m);
}

/* tern eval --task through the program: the JSON line, the items file, and a bad --data-file. */
static void test_cli(void) {
    const char *d = test_tmpdir("tasks_cli");
    char out[4096];
    int rc = run_cmd(out, sizeof out, "%s eval tests/fixtures/eval/tiny --task hellaswag --limit 12 --batch 5 --json "
                                      "--items-out %s/items.jsonl 2>/dev/null",
                     test_tern_bin(), d);
    cJSON *j = cJSON_Parse(out);
    CHECK(rc == 0 && cJSON_IsObject(j), "rc %d: %s", rc, out);
    const cJSON *items = cJSON_GetObjectItem(j, "hellaswag_items"), *acc = cJSON_GetObjectItem(j, "hellaswag_acc_norm");
    CHECK(cJSON_IsNumber(items) && items->valuedouble == 12 && cJSON_IsNumber(acc), "%s", out);
    cJSON_Delete(j);
    rc = run_cmd(out, sizeof out, "wc -l < %s/items.jsonl && head -1 %s/items.jsonl", d, d);
    CHECK(rc == 0 && !strncmp(out, "12\n{\"index\":0,\"gold\":3,", 23), "%s", out);
    rc = run_cmd(out, sizeof out, "%s eval tests/fixtures/eval/tiny --task lambada --data-file %s/none.jsonl", test_tern_bin(), d);
    CHECK(rc == 1 && strstr(out, "none.jsonl") && strstr(out, "tern eval:"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s eval tests/fixtures/eval/tiny --task mmlu", test_tern_bin());
    CHECK(rc == 2 && strstr(out, "unknown task 'mmlu' (known: hellaswag, lambada, piqa)"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "TERN_DATA_DIR=%s %s eval tests/fixtures/eval/tiny --task piqa", d, test_tern_bin());
    CHECK(rc == 1 && strstr(out, "PIQA's data is not shipped with tern"), "rc %d: %s", rc, out);
}

int main(void) {
    RUN(test_hellaswag_shipped);
    RUN(test_lambada_shipped);
    RUN(test_piqa_layout);
    if (getenv("TERN_PIQA_DIR")) RUN(test_piqa_real);
    else printf("note: TERN_PIQA_DIR is not set, so PIQA's own files (not shipped) were not read\n");
    RUN(test_refusals);
    RUN(test_known_answers);
    RUN(test_cutting);
    RUN(test_gpt2_against_pytorch);
    RUN(test_cli);
    return check_exit();
}
