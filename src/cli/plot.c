/* tern plot: one picture of one or several runs, loss against tokens (and task scores where the
 * runs have them), as SVG or PNG. The drawing is libtern's (tern_plot_runs, src/watch/plot.c). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

int cli_plot(int argc, char **argv) {
    const char *out = NULL, *size = NULL;
    tern_plot_opts o = {0};
    o.smooth = 0.8;
    const char **runs = calloc((size_t)argc, sizeof *runs);
    size_t n = 0;
    if (!runs) cli_fail("plot", tern_err(TERN_ENOMEM, "out of memory"));
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tern plot RUNDIR... -o FILE.svg|FILE.png [--title TEXT] [--size WxH] [--smooth A] [--steps]\n"
                   "                 [--no-tasks]\n\n"
                   "Train loss (smoothed as TensorBoard does with weight A, default 0.8; the raw values faint) and val\n"
                   "loss against tokens seen (global batch x seq x grad_accum a step), one colour per run, with a second\n"
                   "panel of task accuracies (HellaSwag and PIQA acc_norm, LAMBADA acc) when metrics.jsonl has them.\n"
                   "--steps puts steps on the x axis; --size sets the picture's size (default 960x540, 960x860 with tasks).\n");
            free(runs);
            return 0;
        }
        if (cli_opt_str("plot", argc, argv, &i, "-o", &out) || cli_opt_str("plot", argc, argv, &i, "--title", &o.title) ||
            cli_opt_str("plot", argc, argv, &i, "--size", &size) || cli_opt_double("plot", argc, argv, &i, "--smooth", &o.smooth))
            continue;
        if (cli_flag(argv, i, "--steps")) {
            o.x_steps = 1;
            continue;
        }
        if (cli_flag(argv, i, "--no-tasks")) {
            o.no_tasks = 1;
            continue;
        }
        if (argv[i][0] == '-') cli_usage("plot", "unknown option '%s'", argv[i]);
        runs[n++] = argv[i];
    }
    if (!n || !out) cli_usage("plot", "usage: tern plot RUNDIR... -o FILE.svg|FILE.png");
    if (size) {
        char extra;
        if (sscanf(size, "%dx%d%c", &o.width, &o.height, &extra) != 2 || o.width < 200 || o.height < 150)
            cli_usage("plot", "--size must be WIDTHxHEIGHT, at least 200x150, got '%s'", size);
    }
    tern_status st = tern_plot_runs(runs, n, out, &o);
    if (st != TERN_OK) cli_fail("plot", st);
    printf("wrote %s (%zu run%s)\n", out, n, n > 1 ? "s" : "");
    free(runs);
    return 0;
}
