/* tern export: a run (or one of its checkpoints) as a Hugging Face GPT-2 folder that
 * transformers' GPT2LMHeadModel and GPT2TokenizerFast load unchanged. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "tern/tok.h"

int cli_export(int argc, char **argv) {
    const char *src = NULL, *out = NULL, *format = "hf";
    long long step = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tern export RUNDIR [--step N] -o DIR\n\n"
                   "Writes a Hugging Face GPT-2 folder: config.json, model.safetensors, vocab.json, merges.txt,\n"
                   "generation_config.json. --step picks a checkpoint other than the latest.\n");
            return 0;
        }
        if (cli_opt_str("export", argc, argv, &i, "-o", &out) || cli_opt_long("export", argc, argv, &i, "--step", &step) ||
            cli_opt_str("export", argc, argv, &i, "--format", &format))
            continue;
        if (argv[i][0] == '-') cli_usage("export", "unknown option '%s'", argv[i]);
        if (src) cli_usage("export", "more than one model given ('%s' and '%s')", src, argv[i]);
        src = argv[i];
        (void)v;
    }
    if (!src || !out) cli_usage("export", "usage: tern export RUNDIR [--step N] -o DIR");
    if (strcmp(format, "hf")) cli_usage("export", "unknown --format '%s' (hf)", format);
    tern_gpt2 *m;
    char *tokdir;
    tern_status st = tern_io_open_model(src, step, &m, &tokdir);
    if (st != TERN_OK) cli_fail("export", st);
    tern_tok *tok;
    st = tern_tok_load(&tok, tokdir);
    if (st != TERN_OK) cli_fail("export", st);
    st = tern_io_export_hf(m, tokdir, tern_tok_eot(tok), out);
    if (st != TERN_OK) cli_fail("export", st);
    const tern_gpt2_config *c = tern_gpt2_cfg(m);
    printf("exported %s to %s: GPT-2 with %d layers, %d heads, width %d, %d positions, vocabulary %d (%.2fM parameters)\n",
           src, out, c->n_layer, c->n_head, c->n_embd, c->n_ctx, c->vocab_size, (double)tern_gpt2_num_params(m) / 1e6);
    tern_tok_free(tok);
    free(tokdir);
    tern_gpt2_free(m);
    return 0;
}
