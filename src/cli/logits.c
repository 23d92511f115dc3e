/* tern logits: a model's logits for a given token sequence, written as safetensors, so that
 * other implementations (transformers, llama.cpp) can be compared with tern number for number.
 * Not an evaluation: no loss, no batching; one sequence of at most n_ctx tokens. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_logits(int argc, char **argv) {
    const char *src = NULL, *tokens = NULL, *out = NULL;
    long long step = 0;
    const char *key_file = NULL, *pass_file = NULL, *device = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tern logits MODEL --tokens \"ID ID ...\" -o OUT.safetensors [--step N] [--device NAME]\n\n"
                   "Runs the model (a run folder, a Hugging Face folder or an f32 GGUF file) on the token ids and\n"
                   "writes tensor 'logits' [T, V] float32 and 'tokens' [T] int32. A sealed run needs its key (--key KEYFILE,\n"
                   "--passphrase-file FILE, or TERN_KEY_FILE).\n" CLI_DEVICE_HELP);
            return 0;
        }
        if (cli_opt_str("logits", argc, argv, &i, "--tokens", &tokens) || cli_opt_str("logits", argc, argv, &i, "-o", &out) ||
            cli_opt_long("logits", argc, argv, &i, "--step", &step) || cli_opt_str("logits", argc, argv, &i, "--key", &key_file) ||
            cli_opt_str("logits", argc, argv, &i, "--passphrase-file", &pass_file) ||
            cli_opt_str("logits", argc, argv, &i, "--device", &device))
            continue;
        if (argv[i][0] == '-') cli_usage("logits", "unknown option '%s'", argv[i]);
        if (src) cli_usage("logits", "more than one model given ('%s' and '%s')", src, argv[i]);
        src = argv[i];
    }
    if (!src || !tokens || !out) cli_usage("logits", "usage: tern logits MODEL --tokens \"ID ID ...\" -o OUT.safetensors");
    tern_ids ids = {0};
    for (const char *p = tokens; *p;) {
        if (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') {
            p++;
            continue;
        }
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) cli_usage("logits", "--tokens: '%s' is not a list of token ids", tokens);
        int32_t id = (int32_t)v;
        if (tern_ids_push(&ids, &id, 1) != TERN_OK) cli_fail("logits", TERN_ENOMEM);
        p = end;
    }
    if (ids.n == 0) cli_usage("logits", "--tokens: no token ids given");
    tern_key *key = NULL;
    tern_status st = tern_key_load(&key, key_file, pass_file);
    if (st != TERN_OK) cli_fail("logits", st);
    tern_model *m;
    tern_backend *be = cli_backend("logits", device);
    st = tern_io_open_model(src, step, &m, NULL, key, be);
    tern_key_free(key);
    if (st != TERN_OK) cli_fail("logits", st);
    const tern_model_config *c = tern_model_cfg(m);
    if (ids.n > (size_t)c->n_ctx) cli_usage("logits", "%zu tokens, more than the model's %d positions", ids.n, c->n_ctx);
    if ((st = tern_model_reserve(m, 1, ids.n)) != TERN_OK || (st = tern_model_forward(m, ids.p, NULL, 1, ids.n, NULL)) != TERN_OK)
        cli_fail("logits", st);
    tern_st_writer *w;
    size_t lshape[2] = {ids.n, (size_t)c->vocab_size}, tshape[1] = {ids.n};
    float *logits = malloc(ids.n * (size_t)c->vocab_size * sizeof(float));
    if (!logits) cli_fail("logits", tern_err(TERN_ENOMEM, "out of memory for the logits"));
    if ((st = tern_model_logits(m, logits)) != TERN_OK) cli_fail("logits", st);
    if ((st = tern_st_writer_init(&w)) != TERN_OK ||
        (st = tern_st_add(w, "logits", TERN_DT_F32, 2, lshape, logits)) != TERN_OK ||
        (st = tern_st_add(w, "tokens", TERN_DT_I32, 1, tshape, ids.p)) != TERN_OK || (st = tern_st_write(w, out)) != TERN_OK)
        cli_fail("logits", st);
    printf("wrote logits [%zu, %d] of %s to %s\n", ids.n, c->vocab_size, src, out);
    tern_st_writer_free(w);
    free(logits);
    tern_ids_free(&ids);
    tern_model_free(m);
    tern_backend_free(be);
    return 0;
}
