/* Shared helpers for the subcommands: option parsing and error exits. Only cli/ calls exit(). */
#ifndef TERN_CLI_H
#define TERN_CLI_H
#include "tern.h"

/* Prints "tern: <command>: <message>" for a failed status and exits 1. */
_Noreturn void cli_fail(const char *cmd, tern_status st);
/* Prints "tern: <command>: <formatted message>" and exits 2 (usage errors). */
_Noreturn void cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option matching. argv[*i] is the current argument. If it is `name` (followed by a value) or
 * `name=value`, stores the value, advances *i past it, and returns 1; otherwise returns 0.
 * A missing value is a usage error. */
int cli_opt_str(const char *cmd, int argc, char **argv, int *i, const char *name, const char **val);
int cli_opt_long(const char *cmd, int argc, char **argv, int *i, const char *name, long long *val);
int cli_opt_double(const char *cmd, int argc, char **argv, int *i, const char *name, double *val);
int cli_flag(char **argv, int i, const char *name);

/* The backend --device names (NULL: the fastest CPU kernels), or exit 1 saying why it cannot run. */
tern_backend *cli_backend(const char *cmd, const char *device);
/* The --device line of a command's help. */
#define CLI_DEVICE_HELP                                                                                                    \
    "--device NAME: where the model computes: auto (the default: the fastest CPU kernels here, or the set\n"                  \
    "TERN_KERN names), cpu (oneDNN products, plain C elsewhere), avx2, avx512, ref (plain C), or\n"                          \
    "cuda / cuda:N in a build with CUDA=1.\n"

/* Subcommands: each in its own file, cli_<name>(argc, argv) with argv[0] = the subcommand. */
int cli_tokenizer(int argc, char **argv);
int cli_prepare(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_sample(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_hw(int argc, char **argv);
int cli_plan(int argc, char **argv);
int cli_keygen(int argc, char **argv);
int cli_ledger(int argc, char **argv);
int cli_logits(int argc, char **argv);
int cli_eval_task(int argc, char **argv); /* tern eval --task (src/cli/eval_task.c) */
int cli_tb(int argc, char **argv);
int cli_plot(int argc, char **argv);
#endif
