/* tern sample: text from a model, with a key-value cache, temperature and top-k, stopping at
 * <|endoftext|>. Draws come from the counter RNG keyed by --seed, so a seed gives one text. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tern/tok.h"

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* Picks a token from logits: greedy at temperature 0, else softmax(logits/T) restricted to
 * the top k (k 0 = all), using uniform draw u in [0,1). */
static int32_t pick(const float *logits, size_t V, double temperature, size_t topk, double u, float *scratch) {
    size_t best = 0;
    for (size_t i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (temperature <= 0) return (int32_t)best;
    float thresh = -INFINITY;
    if (topk > 0 && topk < V) {
        /* the k-th largest logit, from a sorted copy */
        memcpy(scratch, logits, V * sizeof(float));
        qsort(scratch, V, sizeof(float), cmp_desc);
        thresh = scratch[topk - 1];
    }
    double sum = 0;
    for (size_t i = 0; i < V; i++)
        if (logits[i] >= thresh) sum += exp((logits[i] - logits[best]) / temperature);
    double target = u * sum, acc = 0;
    size_t last = best;
    for (size_t i = 0; i < V; i++) {
        if (logits[i] < thresh) continue;
        acc += exp((logits[i] - logits[best]) / temperature);
        last = i;
        if (acc > target) return (int32_t)i;
    }
    return (int32_t)last;
}

int cli_sample(int argc, char **argv) {
    const char *src = NULL, *prompt = "";
    long long n = 200, topk = 40, seed = 1337, step = 0;
    double temperature = 0.8;
    const char *key_file = NULL, *pass_file = NULL, *device = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tern sample (RUNDIR|HFDIR|FILE.gguf) [--prompt TEXT] [-n N] [--temperature T] [--top-k K] [--seed S] [--step N]\n"
                   "                                      [--device NAME] [--key KEYFILE | --passphrase-file FILE]\n\n"
                   "Generates up to N tokens (default 200) after the prompt, stopping at <|endoftext|>.\n"
                   "Temperature 0 is greedy; top-k 0 samples from the whole vocabulary. The same seed gives the same text.\n"
                   "A sealed run needs its key: --key KEYFILE, --passphrase-file FILE, or TERN_KEY_FILE.\n" CLI_DEVICE_HELP);
            return 0;
        }
        if (cli_opt_str("sample", argc, argv, &i, "--prompt", &prompt) || cli_opt_long("sample", argc, argv, &i, "-n", &n) ||
            cli_opt_double("sample", argc, argv, &i, "--temperature", &temperature) ||
            cli_opt_long("sample", argc, argv, &i, "--top-k", &topk) || cli_opt_long("sample", argc, argv, &i, "--seed", &seed) ||
            cli_opt_long("sample", argc, argv, &i, "--step", &step) || cli_opt_str("sample", argc, argv, &i, "--key", &key_file) ||
            cli_opt_str("sample", argc, argv, &i, "--passphrase-file", &pass_file) ||
            cli_opt_str("sample", argc, argv, &i, "--device", &device))
            continue;
        if (argv[i][0] == '-') cli_usage("sample", "unknown option '%s'", argv[i]);
        if (src) cli_usage("sample", "more than one model given ('%s' and '%s')", src, argv[i]);
        src = argv[i];
    }
    if (!src) cli_usage("sample", "usage: tern sample (RUNDIR|HFDIR|FILE.gguf) [--prompt TEXT] [-n N]");
    if (n < 0 || topk < 0 || temperature < 0 || !isfinite(temperature))
        cli_usage("sample", "-n, --top-k and --temperature must not be negative");
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
    const tern_model_config *c = tern_model_cfg(m);
    if (tern_tok_vocab_size(tok) != (size_t)c->vocab_size) {
        fprintf(stderr, "tern sample: %s: the tokenizer has %zu tokens but the model %d\n", src, tern_tok_vocab_size(tok),
                c->vocab_size);
        return 1;
    }
    tern_ids ids = {0};
    int32_t eot = tern_tok_eot(tok);
    /* Generation starts after <|endoftext|>, as every training document does. */
    if ((st = tern_ids_push(&ids, &eot, 1)) != TERN_OK || (st = tern_tok_encode(tok, prompt, strlen(prompt), &ids)) != TERN_OK)
        cli_fail("sample", st);
    tern_model_cache *cache;
    if ((st = tern_model_cache_init(&cache, m)) != TERN_OK) cli_fail("sample", st);
    size_t V = (size_t)c->vocab_size, P = (size_t)c->n_ctx;
    float *scratch = malloc(V * sizeof(float));
    const float *logits = NULL;
    size_t start = ids.n > P ? ids.n - P : 0; /* the prompt's last n_ctx tokens */
    for (size_t i = start; i < ids.n; i++)
        if ((st = tern_model_cache_step(m, cache, ids.p[i], &logits)) != TERN_OK) cli_fail("sample", st);
    fputs(prompt, stdout);
    uint64_t stream = tern_rng_stream("sample", 0, 0);
    for (long long t = 0; t < n; t++) {
        int32_t next = pick(logits, V, temperature, (size_t)topk, tern_rng_uniform((uint64_t)seed, stream, (uint64_t)t), scratch);
        if (next == eot) break;
        size_t len;
        const uint8_t *bytes = tern_tok_token(tok, next, &len);
        fwrite(bytes, 1, len, stdout);
        fflush(stdout);
        if ((st = tern_ids_push(&ids, &next, 1)) != TERN_OK) cli_fail("sample", st);
        if (tern_model_cache_len(cache) == P) {
            /* Context full: keep the last half and refill the cache with it. */
            tern_model_cache_reset(cache);
            for (size_t i = ids.n - P / 2 - 1; i < ids.n - 1; i++)
                if ((st = tern_model_cache_step(m, cache, ids.p[i], &logits)) != TERN_OK) cli_fail("sample", st);
        }
        if ((st = tern_model_cache_step(m, cache, next, &logits)) != TERN_OK) cli_fail("sample", st);
    }
    fputc('\n', stdout);
    free(scratch);
    tern_model_cache_free(cache);
    tern_ids_free(&ids);
    tern_tok_free(tok);
    tern_model_free(m);
    tern_backend_free(be);
    return 0;
}
