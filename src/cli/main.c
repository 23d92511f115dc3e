/* The tern program: picks a subcommand and hands it the arguments. All work is in libtern. */
#include "cli.h"

#include <signal.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} subcommand;

/* One row per subcommand; each lives in src/cli/<name>.c. */
static const subcommand subcommands[] = {
    {"train", cli_train, "train (or --resume) a GPT-2 model on a data folder; no arguments: the bundled demo"},
    {"eval", cli_eval, "mean loss and perplexity of a model on a data folder's val split; --task: HellaSwag, LAMBADA, PIQA"},
    {"sample", cli_sample, "generate text from a run, a Hugging Face folder or a GGUF file"},
    {"export", cli_export, "write a run as a Hugging Face folder or a GGUF file"},
    {"keygen", cli_keygen, "make a sealing key, or an Ed25519 key pair for signing the run ledger"},
    {"ledger", cli_ledger, "verify a run's ledger (hash chain, signatures, checkpoint files) or print its head"},
    {"hw", cli_hw, "this machine's hardware and its export-control (ECCN 3A090) figures; --known for the table"},
    {"plan", cli_plan, "rank candidate sites by time and cost for a run, with the owner's policy verdict"},
    {"tokenizer", cli_tokenizer, "train a byte-level BPE tokenizer, or encode and decode text with one"},
    {"prepare", cli_prepare, "encode text files into token shards and a manifest for training"},
    {"tb", cli_tb, "write a run's metrics.jsonl as a TensorBoard event file, or check and print one"},
    {"plot", cli_plot, "draw runs' loss (and task scores) against tokens as SVG or PNG"},
    {"logits", cli_logits, "write a model's logits for given token ids (to compare with transformers or llama.cpp)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f) {
    fprintf(f, "tern %s: train GPT-2-family models from raw text, portably.\n\nusage: tern <command> [options]\n\n",
            TERN_VERSION);
    for (const subcommand *s = subcommands; s->name; s++) fprintf(f, "  %-10s %s\n", s->name, s->help);
    fprintf(f, "\n'tern <command> --help' describes a command's options.\n");
}

int main(int argc, char **argv) {
    /* A file-size limit (ulimit -f) must make a write fail with EFBIG and a message naming the
     * file, not kill the process mid-checkpoint. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("tern %s\n", TERN_VERSION);
        return 0;
    }
    for (const subcommand *s = subcommands; s->name; s++)
        if (!strcmp(argv[1], s->name)) return s->fn(argc - 1, argv + 1);
    fprintf(stderr, "tern: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
