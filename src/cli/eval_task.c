/* tern eval MODEL --task NAME: a benchmark task (HellaSwag, LAMBADA, PIQA) scored on a run, a
 * Hugging Face folder or an f32 GGUF file, with a progress bar, the metrics and their standard
 * errors, and optionally every item's scores as JSON Lines. The scoring is libtern's
 * (tern/eval.h); this file parses options, finds the data and prints. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tern/eval.h"

/* What the callbacks of one evaluation share. */
typedef struct eval_state {
    const char *task;
    double t0, last;
    int tty;
    char **lines; /* --items-out: each item's JSON, in index order */
    size_t n_lines;
    const tern_task *t;
    tern_status st;
} eval_state;

static void progress(void *ctx, size_t done, size_t total) {
    eval_state *b = ctx;
    double now = tern_now();
    if (!b->tty && now - b->last < 10 && done < total) return;
    b->last = now;
    double rate = (now - b->t0) / (double)done;
    char eta[32];
    tern_fmt_duration(eta, sizeof eta, rate * (double)(total - done));
    if (b->tty) {
        int width = 24, full = (int)((double)done / (double)total * width);
        char line[32];
        for (int i = 0; i < width; i++) line[i] = i < full ? '#' : '.';
        line[width] = 0;
        fprintf(stderr, "\r  %s [%s] %zu/%zu requests | %.1f/s | ETA %s   ", b->task, line, done, total, 1.0 / rate, eta);
        if (done == total) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %zu/%zu requests, %.1f/s, ETA %s\n", b->task, done, total, 1.0 / rate, eta);
    }
}

static void keep_item(void *ctx, const tern_task_item *it) {
    eval_state *b = ctx;
    if (!b->lines || b->st != TERN_OK) return;
    b->st = tern_task_item_json(b->t, it, &b->lines[b->n_lines]);
    if (b->st == TERN_OK) b->n_lines++;
}

static void print_metric(const char *name, double v, double se, const char *how) {
    if (isnan(v)) return;
    if (isnan(se)) printf("  %-13s %.4f          %s\n", name, v, how);
    else printf("  %-13s %.4f ± %.4f  %s\n", name, v, se, how);
}

int cli_eval_task(int argc, char **argv) {
    const char *src = NULL, *task = NULL, *data = NULL, *items_out = NULL, *tokdir_opt = NULL;
    long long limit = 0, rows = 8, step = 0, threads = 0;
    const char *key_file = NULL, *pass_file = NULL, *device = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tern eval (RUNDIR|HFDIR|FILE.gguf) --task hellaswag|lambada|piqa [--limit N] [--data-file PATH]\n"
                   "                 [--items-out FILE.jsonl] [--batch ROWS] [--json] [--step N] [--threads N]\n"
                   "                 [--tokenizer DIR] [--device NAME] [--key KEYFILE | --passphrase-file FILE]\n\n"
                   "Zero-shot accuracy on a benchmark task, scored by the log-likelihood of each continuation as\n"
                   "lm-evaluation-harness does, with standard errors. HellaSwag and PIQA report acc (sum of the\n"
                   "log-likelihood), acc_norm (divided by the choice's characters, lm-evaluation-harness) and\n"
                   "acc_norm_tok (divided by its tokens, llm.c and llama.cpp); LAMBADA the last word's greedy\n"
                   "accuracy and perplexity. --limit scores the first N items; --items-out writes each item's\n"
                   "scores; --json prints the metrics as one JSON line. --batch: sequences per forward pass (8).\n"
                   "Data: --data-file, else data/eval/ of this checkout (or $TERN_DATA_DIR/eval/); PIQA's is not\n"
                   "shipped (docs/EVALUATION.md says where to get it).\n" CLI_DEVICE_HELP);
            return 0;
        }
        if (cli_opt_str("eval", argc, argv, &i, "--task", &task) || cli_opt_str("eval", argc, argv, &i, "--data-file", &data) ||
            cli_opt_str("eval", argc, argv, &i, "--items-out", &items_out) ||
            cli_opt_str("eval", argc, argv, &i, "--tokenizer", &tokdir_opt) ||
            cli_opt_long("eval", argc, argv, &i, "--limit", &limit) || cli_opt_long("eval", argc, argv, &i, "--batch", &rows) ||
            cli_opt_long("eval", argc, argv, &i, "--step", &step) || cli_opt_long("eval", argc, argv, &i, "--threads", &threads) ||
            cli_opt_str("eval", argc, argv, &i, "--key", &key_file) ||
            cli_opt_str("eval", argc, argv, &i, "--passphrase-file", &pass_file) ||
            cli_opt_str("eval", argc, argv, &i, "--device", &device))
            continue;
        if (cli_flag(argv, i, "--json")) {
            json = 1;
            continue;
        }
        if (argv[i][0] == '-') cli_usage("eval", "unknown option '%s'", argv[i]);
        if (src) cli_usage("eval", "more than one model given ('%s' and '%s')", src, argv[i]);
        src = argv[i];
    }
    if (!src || !task) cli_usage("eval", "usage: tern eval (RUNDIR|HFDIR|FILE.gguf) --task hellaswag|lambada|piqa");
    if (!tern_task_default_file(task)) cli_usage("eval", "unknown task '%s' (known: hellaswag, lambada, piqa)", task);
    if (limit < 0 || rows < 1) cli_usage("eval", "--limit must not be negative and --batch must be positive");
    tern_set_threads((int)threads);
    char *path = NULL;
    tern_status st = data ? ((path = strdup(data)) ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory"))
                          : tern_task_data_path(task, &path);
    if (st != TERN_OK) cli_fail("eval", st);
    if (!data && !strcmp(task, "piqa") && !tern_path_exists(path)) {
        fprintf(stderr, "tern eval: PIQA's data is not shipped with tern (%s is missing): download valid.jsonl and\n"
                        "valid-labels.lst from https://yonatanbisk.com/piqa/data/ (the files lm-evaluation-harness uses) and\n"
                        "give --data-file DIR (or put them in data/eval/piqa/)\n", path);
        return 1;
    }
    tern_task *t;
    double t0 = tern_now();
    if ((st = tern_task_load(&t, task, path)) != TERN_OK) cli_fail("eval", st);
    tern_key *key = NULL;
    if ((st = tern_key_load(&key, key_file, pass_file)) != TERN_OK) cli_fail("eval", st);
    tern_model *m;
    char *tokdir = NULL;
    tern_backend *be = cli_backend("eval", device);
    if ((st = tern_io_open_model(src, step, &m, &tokdir, key, be)) != TERN_OK) cli_fail("eval", st);
    tern_tok *tok;
    st = tern_tok_load(&tok, tokdir_opt ? tokdir_opt : tokdir, key);
    tern_io_tokdir_free(tokdir); /* the tokenizer is in memory now; a GGUF's extracted folder goes */
    if (st != TERN_OK) cli_fail("eval", st);
    const tern_model_config *c = tern_model_cfg(m);
    if (tern_tok_vocab_size(tok) > (size_t)c->vocab_size) {
        fprintf(stderr, "tern eval: %s: the tokenizer has %zu tokens but the model's vocabulary is %d\n",
                tokdir_opt ? tokdir_opt : src, tern_tok_vocab_size(tok), c->vocab_size);
        return 1;
    }
    size_t n = tern_task_count(t), upto = limit && (size_t)limit < n ? (size_t)limit : n;
    eval_state b = {task, tern_now(), 0, isatty(2), NULL, 0, t, TERN_OK};
    if (items_out && !(b.lines = calloc(upto, sizeof *b.lines))) cli_fail("eval", tern_err(TERN_ENOMEM, "out of memory"));
    if (!json)
        fprintf(stderr, "%s: %zu of %zu items from %s; model %s (context %d); loaded in %.1f s\n", task, upto, n, path, src,
                c->n_ctx, tern_now() - t0);
    tern_lm lm;
    if ((st = tern_lm_model(&lm, m, (size_t)rows, 0, 0)) != TERN_OK) cli_fail("eval", st);
    tern_task_tally tally = {0};
    tern_task_run_opts o = {.limit = upto, .ctx = &b, .progress = json ? NULL : progress, .on_item = keep_item};
    b.t0 = tern_now();
    st = tern_task_run(t, tok, &lm, &o, &tally);
    if (st == TERN_OK) st = b.st;
    if (st != TERN_OK) cli_fail("eval", st);
    double took = tern_now() - b.t0;
    if (items_out) {
        tern_afile af;
        st = tern_afile_open(&af, items_out);
        for (size_t i = 0; i < b.n_lines && st == TERN_OK; i++) st = tern_afile_printf(&af, "%s\n", b.lines[i]);
        if (st == TERN_OK) st = tern_afile_commit(&af);
        else if (af.f) tern_afile_abort(&af);
        if (st != TERN_OK) cli_fail("eval", st);
    }
    char *line;
    if ((st = tern_task_metrics_json(t, &tally, -1, &line)) != TERN_OK) cli_fail("eval", st);
    if (json) {
        printf("%s\n", line);
    } else {
        tern_task_metrics mt;
        tern_task_summarize(t, &tally, &mt);
        char dur[32];
        tern_fmt_duration(dur, sizeof dur, took);
        printf("%s on %s: %.0f items in %s (%.2f items/s)\n", task, src, mt.n, dur, mt.n / took);
        print_metric("acc", mt.acc, mt.acc_se,
                     strcmp(task, "lambada") ? "highest log-likelihood" : "last word by greedy decoding");
        print_metric("acc_norm", mt.acc_norm, mt.acc_norm_se, "log-likelihood per character (lm-evaluation-harness)");
        print_metric("acc_norm_tok", mt.acc_norm_tok, mt.acc_norm_tok_se, "log-likelihood per token (llm.c, llama.cpp)");
        print_metric("perplexity", mt.ppl, mt.ppl_se, "of the last word");
        if (mt.truncated > 0)
            printf("  %.0f items had their context cut on the left to fit the model's %d positions\n", mt.truncated, c->n_ctx);
        if (items_out) printf("  per-item scores in %s\n", items_out);
    }
    free(line);
    for (size_t i = 0; i < b.n_lines; i++) free(b.lines[i]);
    free(b.lines);
    tern_lm_free(&lm);
    tern_tok_free(tok);
    tern_model_free(m);
    tern_backend_free(be);
    tern_key_free(key);
    tern_task_free(t);
    free(path);
    return 0;
}
