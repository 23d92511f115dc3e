/* tern eval: mean loss and perplexity of a model (a run, a Hugging Face folder or an f32 GGUF
 * file) on the val split of a data folder, read in order, each window once. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tern/data.h"
#include "tern/json.h"
#include "tern/train.h"

/* The data folder a run trained on (its config.json's "data"), into out; 0 when src is not a
 * run folder or names none. A mixture is refused: the folder to score must then be given. */
static int run_data(const char *src, char *out, size_t n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", src);
    cJSON *j = NULL;
    if (!tern_path_exists(path) || tern_json_load(&j, path) != TERN_OK) {
        tern_err_clear();
        return 0;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "data");
    int ok = cJSON_IsString(d) && strlen(d->valuestring) < n;
    if (ok && strchr(d->valuestring, ','))
        cli_usage("eval", "%s trained on a mixture (%s): give the folder to score with --data DIR", src, d->valuestring);
    if (ok) snprintf(out, n, "%s", d->valuestring);
    cJSON_Delete(j);
    return ok;
}

int cli_eval(int argc, char **argv) {
    for (int i = 1; i < argc; i++) /* a benchmark task: src/cli/eval_task.c */
        if (!strcmp(argv[i], "--task") || !strncmp(argv[i], "--task=", 7)) return cli_eval_task(argc, argv);
    const char *src = NULL, *data = NULL, *split = "val";
    long long batch = 8, seq = 0, batches = 0, step = 0, threads = 0;
    const char *key_file = NULL, *pass_file = NULL, *device = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tern eval (RUNDIR|HFDIR|FILE.gguf) [--data DIR] [--split val|train] [--batch B] [--seq T]\n"
                   "                 [--batches N] [--step N] [--threads N] [--device NAME] [--key KEYFILE | --passphrase-file FILE]\n\n"
                   "Mean cross-entropy and perplexity over the split's windows of B rows of T tokens, in order\n"
                   "(every window once unless --batches limits them).\n\n"
                   "  --data DIR     a data folder made by tern prepare (default for a run: the folder it trained on,\n"
                   "                 its config.json's \"data\"; required for other models)\n"
                   "  --split NAME   val or train (default val)\n"
                   "  --batch B      rows per forward pass (default 8)\n"
                   "  --seq T        tokens per row (default: the model's context)\n"
                   "  --batches N    windows of B x T tokens to score; 0 = all (default 0)\n"
                   "  --step N       a run's checkpoint of step N (default: the latest)\n"
                   "  --threads N    threads; 0 = all cores (default 0)\n"
                   "Exit status: 0 done, 1 failed, 2 wrong options.\n"
                   "A sealed run or data folder needs its key: --key, --passphrase-file, or TERN_KEY_FILE.\n"
                   "With --task hellaswag|lambada|piqa: a benchmark task instead (tern eval --task x --help).\n" CLI_DEVICE_HELP);
            return 0;
        }
        if (cli_opt_str("eval", argc, argv, &i, "--data", &data) || cli_opt_str("eval", argc, argv, &i, "--split", &split) ||
            cli_opt_long("eval", argc, argv, &i, "--batch", &batch) || cli_opt_long("eval", argc, argv, &i, "--seq", &seq) ||
            cli_opt_long("eval", argc, argv, &i, "--batches", &batches) ||
            cli_opt_long("eval", argc, argv, &i, "--step", &step) || cli_opt_long("eval", argc, argv, &i, "--threads", &threads) ||
            cli_opt_str("eval", argc, argv, &i, "--key", &key_file) || cli_opt_str("eval", argc, argv, &i, "--device", &device) ||
            cli_opt_str("eval", argc, argv, &i, "--passphrase-file", &pass_file))
            continue;
        if (argv[i][0] == '-') cli_usage("eval", "unknown option '%s' (see tern eval --help)", argv[i]);
        if (src) cli_usage("eval", "more than one model given ('%s' and '%s')", src, argv[i]);
        src = argv[i];
    }
    if (!src) cli_usage("eval", "give the model: tern eval (RUNDIR|HFDIR|FILE.gguf) [--data DIR]");
    char own[4096];
    if (!data && run_data(src, own, sizeof own)) data = own;
    if (!data) cli_usage("eval", "give the data to score: --data DIR (%s is not a run folder that names its data)", src);
    if (batch < 1) cli_usage("eval", "--batch must be at least 1, got %lld", batch);
    if (seq < 0) cli_usage("eval", "--seq must not be negative, got %lld", seq);
    if (batches < 0) cli_usage("eval", "--batches must not be negative, got %lld", batches);
    if (step < 0) cli_usage("eval", "--step must not be negative, got %lld", step);
    if (threads < 0) cli_usage("eval", "--threads must not be negative, got %lld", threads);
    if (strcmp(split, "val") && strcmp(split, "train")) cli_usage("eval", "--split must be val or train, got '%s'", split);
    tern_set_threads((int)threads);
    tern_key *key = NULL;
    tern_status st = tern_key_load(&key, key_file, pass_file);
    if (st != TERN_OK) cli_fail("eval", st);
    tern_model *m;
    tern_backend *be = cli_backend("eval", device);
    st = tern_io_open_model(src, step, &m, NULL, key, be);
    if (st != TERN_OK) cli_fail("eval", st);
    const tern_model_config *c = tern_model_cfg(m);
    if (seq == 0) seq = c->n_ctx;
    if (seq > c->n_ctx) cli_fail("eval", tern_err(TERN_EINVAL, "--seq %lld exceeds the model's context (%d positions)", seq, c->n_ctx));
    tern_dataset *ds;
    if ((st = tern_dataset_open(&ds, data, split, NULL, key)) != TERN_OK) cli_fail("eval", st);
    if (tern_dataset_vocab_size(ds) != (size_t)c->vocab_size) {
        fprintf(stderr, "tern eval: %s: the data's vocabulary (%zu) differs from the model's (%d)\n", data,
                tern_dataset_vocab_size(ds), c->vocab_size);
        return 1;
    }
    double loss;
    size_t ntok;
    st = tern_eval_loss(m, ds, (size_t)batch, (size_t)seq, (size_t)batches, &loss, &ntok);
    if (st != TERN_OK) cli_fail("eval", st);
    printf("%s on %s (%s): loss %.6f, perplexity %.4f over %zu tokens\n", src, data, split, loss, exp(loss), ntok);
    tern_dataset_free(ds);
    tern_model_free(m);
    tern_backend_free(be);
    tern_key_free(key);
    return 0;
}
