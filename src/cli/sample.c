/* tern sample: text from a model (a run, a Hugging Face folder or a GGUF file) through
 * tern_sample_text (src/eval/sample.c): temperature, top-k, top-p, several samples of one seed. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tern/eval.h"
#include "tern/tok.h"

static void help(void) {
    printf("usage: tern sample (RUNDIR|HFDIR|FILE.gguf) [--prompt TEXT] [-n N] [--temperature T] [--top-k K] [--top-p P]\n"
           "                   [--num-samples N] [--seed S] [--step N] [--device NAME] [--key KEYFILE | --passphrase-file FILE]\n\n"
           "Prints the prompt and up to N tokens (-n, default 200) that the model writes after it, then one newline.\n"
           "The model is fed <|endoftext|> before the prompt, as every training document starts, and stops early\n"
           "at the next <|endoftext|>. Past the model's context the window slides: the last half of the tokens so\n"
           "far is kept and the rest dropped.\n\n"
           "  --prompt TEXT      the text to continue (default: none)\n"
           "  -n N               tokens to generate at most (default 200)\n"
           "  --temperature T    softmax temperature; 0 is greedy (default 0.8)\n"
           "  --top-k K          draw among the K most likely tokens; 0 = all (default 40)\n"
           "  --top-p P          and among the fewest whose probabilities add up to P, 0 < P <= 1 (default 1: off)\n"
           "  --num-samples N    N samples, each under a line \"=== sample i of N ===\" (default 1)\n"
           "  --seed S           the draws' seed: the same seed gives the same text; each sample of it another\n"
           "                     (default 1337)\n"
           "  --step N           a run's checkpoint of step N (default: the latest)\n"
           "A sealed run needs its key: --key KEYFILE, --passphrase-file FILE, or TERN_KEY_FILE.\n" CLI_DEVICE_HELP);
}

static tern_status put(void *ctx, const uint8_t *bytes, size_t n) {
    (void)ctx;
    fwrite(bytes, 1, n, stdout);
    fflush(stdout);
    return ferror(stdout) ? tern_err(TERN_EIO, "cannot write to standard output") : TERN_OK;
}

int cli_sample(int argc, char **argv) {
    const char *src = NULL, *prompt = "";
    long long n = 200, topk = 40, seed = 1337, step = 0, count = 1;
    double temperature = 0.8, top_p = 1.0;
    const char *key_file = NULL, *pass_file = NULL, *device = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        }
        if (cli_opt_str("sample", argc, argv, &i, "--prompt", &prompt) || cli_opt_long("sample", argc, argv, &i, "-n", &n) ||
            cli_opt_double("sample", argc, argv, &i, "--temperature", &temperature) ||
            cli_opt_long("sample", argc, argv, &i, "--top-k", &topk) || cli_opt_double("sample", argc, argv, &i, "--top-p", &top_p) ||
            cli_opt_long("sample", argc, argv, &i, "--num-samples", &count) ||
            cli_opt_long("sample", argc, argv, &i, "--seed", &seed) || cli_opt_long("sample", argc, argv, &i, "--step", &step) ||
            cli_opt_str("sample", argc, argv, &i, "--key", &key_file) ||
            cli_opt_str("sample", argc, argv, &i, "--passphrase-file", &pass_file) ||
            cli_opt_str("sample", argc, argv, &i, "--device", &device))
            continue;
        if (argv[i][0] == '-') cli_usage("sample", "unknown option '%s' (see tern sample --help)", argv[i]);
        if (src) cli_usage("sample", "more than one model given ('%s' and '%s')", src, argv[i]);
        src = argv[i];
    }
    if (!src) cli_usage("sample", "give the model: tern sample (RUNDIR|HFDIR|FILE.gguf) [--prompt TEXT] [-n N]");
    if (n < 0) cli_usage("sample", "-n must not be negative, got %lld", n);
    if (topk < 0) cli_usage("sample", "--top-k must not be negative, got %lld", topk);
    if (!(temperature >= 0) || !isfinite(temperature)) cli_usage("sample", "--temperature must not be negative, got %g", temperature);
    if (!(top_p > 0 && top_p <= 1)) cli_usage("sample", "--top-p must be above 0 and at most 1, got %g", top_p);
    if (count < 1) cli_usage("sample", "--num-samples must be at least 1, got %lld", count);
    if (step < 0) cli_usage("sample", "--step must not be negative, got %lld", step);
    tern_key *key = NULL;
    tern_status st = tern_key_load(&key, key_file, pass_file);
    if (st != TERN_OK) cli_fail("sample", st);
    tern_model *m;
    char *tokdir;
    tern_backend *be = cli_backend("sample", device);
    st = tern_io_open_model(src, step, &m, &tokdir, key, be);
    if (st != TERN_OK) cli_fail("sample", st);
    tern_tok *tok;
    st = tern_tok_load(&tok, tokdir, key);
    tern_io_tokdir_free(tokdir); /* the tokenizer is in memory now; a GGUF's extracted folder goes */
    if (st != TERN_OK) cli_fail("sample", st);
    tern_key_free(key);
    tern_model_cache *cache;
    if ((st = tern_model_cache_init(&cache, m)) != TERN_OK) cli_fail("sample", st);
    for (long long k = 0; k < count; k++) {
        if (count > 1) printf("=== sample %lld of %lld ===\n", k + 1, count);
        fputs(prompt, stdout);
        tern_sample_opts so = {temperature, (size_t)topk, top_p, (uint64_t)seed, (uint64_t)k, (size_t)n};
        st = tern_sample_text(m, cache, tok, prompt, &so, put, NULL);
        fputc('\n', stdout);
        if (st != TERN_OK) cli_fail("sample", tern_err_wrap(st, "%s", src));
    }
    tern_model_cache_free(cache);
    tern_tok_free(tok);
    tern_model_free(m);
    tern_backend_free(be);
    return 0;
}
