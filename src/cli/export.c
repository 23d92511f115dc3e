/* tern export: a run (or one of its checkpoints) as a Hugging Face folder of its family that
 * transformers' model class (GPT2LMHeadModel, LlamaForCausalLM, Qwen2ForCausalLM,
 * MistralForCausalLM) and GPT2TokenizerFast load unchanged, or as a GGUF file that llama.cpp loads
 * (f32, f16 or q8_0). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "tern/tok.h"

int cli_export(int argc, char **argv) {
    const char *src = NULL, *out = NULL, *format = NULL, *type = NULL;
    long long step = 0;
    const char *key_file = NULL, *pass_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tern export MODEL [--step N] -o DIR\n"
                   "       tern export MODEL [--step N] -o FILE.gguf [--format gguf] [--type f32|f16|q8_0]\n\n"
                   "Writes a Hugging Face folder for the model's family (GPT2LMHeadModel, LlamaForCausalLM,\n"
                   "Qwen2ForCausalLM or MistralForCausalLM): config.json, model.safetensors, vocab.json,\n"
                   "merges.txt, tokenizer_config.json, generation_config.json; or, with --format gguf (the default\n"
                   "when FILE ends in .gguf), a GGUF file for llama.cpp (architecture gpt2, llama or qwen2) with\n"
                   "the tokenizer embedded (--type f32 by default; f16 and q8_0 quantise as llama.cpp does).\n"
                   "MODEL is a run folder, a Hugging Face folder or an f32 GGUF file.\n"
                   "--step picks a checkpoint other than the latest. A sealed run needs its key (--key KEYFILE,\n"
                   "--passphrase-file FILE, or TERN_KEY_FILE); its export is written in plaintext to DIR only, as a\n"
                   "Hugging Face folder.\n");
            return 0;
        }
        if (cli_opt_str("export", argc, argv, &i, "-o", &out) || cli_opt_long("export", argc, argv, &i, "--step", &step) ||
            cli_opt_str("export", argc, argv, &i, "--format", &format) || cli_opt_str("export", argc, argv, &i, "--type", &type) ||
            cli_opt_str("export", argc, argv, &i, "--key", &key_file) ||
            cli_opt_str("export", argc, argv, &i, "--passphrase-file", &pass_file))
            continue;
        if (argv[i][0] == '-') cli_usage("export", "unknown option '%s'", argv[i]);
        if (src) cli_usage("export", "more than one model given ('%s' and '%s')", src, argv[i]);
        src = argv[i];
        (void)v;
    }
    if (!src || !out) cli_usage("export", "usage: tern export MODEL [--step N] -o DIR|FILE.gguf [--type f32|f16|q8_0]");
    size_t olen = strlen(out);
    if (!format) format = olen > 5 && !strcmp(out + olen - 5, ".gguf") ? "gguf" : "hf";
    if (strcmp(format, "hf") && strcmp(format, "gguf")) cli_usage("export", "unknown --format '%s' (hf or gguf)", format);
    if (type && strcmp(format, "gguf")) cli_usage("export", "--type applies to GGUF files only (--format gguf, or -o FILE.gguf)");
    if (!type) type = "f32";
    uint32_t gtype = !strcmp(type, "f32") ? TERN_GGML_F32 : !strcmp(type, "f16") ? TERN_GGML_F16 : !strcmp(type, "q8_0") ? TERN_GGML_Q8_0 : 99;
    if (gtype == 99) cli_usage("export", "unknown --type '%s' (f32, f16 or q8_0)", type);
    tern_key *key = NULL;
    tern_status st = tern_key_load(&key, key_file, pass_file);
    if (st != TERN_OK) cli_fail("export", st);
    if (key && !strcmp(format, "gguf"))
        cli_usage("export", "a sealed run exports to a Hugging Face folder (-o DIR) only; GGUF export would need the tokenizer in "
                            "plaintext outside DIR");
    tern_model *m;
    char *tokdir;
    st = tern_io_open_model(src, step, &m, &tokdir, key, NULL);
    if (st != TERN_OK) cli_fail("export", st);
    tern_tok *tok;
    st = tern_tok_load(&tok, tokdir, key);
    if (st != TERN_OK) {
        tern_io_tokdir_free(tokdir);
        cli_fail("export", st);
    }
    if (!strcmp(format, "gguf")) {
        /* general.name: the model's folder or file name */
        char name[256];
        size_t n = strlen(src);
        while (n > 1 && src[n - 1] == '/') n--;
        size_t b = n;
        while (b > 0 && src[b - 1] != '/') b--;
        snprintf(name, sizeof name, "%.*s", (int)(n - b), src + b);
        st = tern_gguf_export(m, tokdir, gtype, name, out);
    } else {
        /* a sealed tokenizer goes to DIR decrypted in memory: plaintext is written to DIR and nowhere else */
        st = tern_io_export_hf(m, tokdir, key, tern_tok_eot(tok), out);
    }
    tern_io_tokdir_free(tokdir); /* a GGUF's extracted tokenizer folder goes */
    if (st != TERN_OK) cli_fail("export", st);
    const tern_model_config *c = tern_model_cfg(m);
    printf("exported %s to %s%s%s: %s with %d layers, %d heads, width %d, %d positions, vocabulary %d (%.2fM parameters)\n",
           src, out, strcmp(format, "gguf") ? "" : " as GGUF ", strcmp(format, "gguf") ? "" : type, c->arch, c->n_layer, c->n_head,
           c->n_embd, c->n_ctx, c->vocab_size, (double)tern_model_num_params(m) / 1e6);
    tern_tok_free(tok);
    tern_key_free(key);
    tern_model_free(m);
    return 0;
}
