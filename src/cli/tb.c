/* tern tb: a run's metrics.jsonl as a TensorBoard event file (RUNDIR/tb/ unless -o), so that
 * `tensorboard --logdir RUNDIR` shows a run made before the trainer wrote events itself; and
 * `tern tb --dump FILE`, which checks an event file (every length and CRC) and prints it. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct dump {
    size_t scalars, versions, sessions, other;
} dump;

static tern_status print_item(void *ctx, const tern_tb_item *it) {
    dump *d = ctx;
    switch (it->kind) {
    case TERN_TB_FILE_VERSION:
        printf("record %zu: wall_time %.3f file_version \"%.*s\"\n", it->record, it->wall_time, (int)it->text_len, it->text);
        d->versions++;
        break;
    case TERN_TB_SCALAR:
        printf("record %zu: wall_time %.3f step %lld %.*s = %.9g\n", it->record, it->wall_time, (long long)it->step,
               (int)it->text_len, it->text, (double)it->value);
        d->scalars++;
        break;
    case TERN_TB_SESSION_LOG:
        printf("record %zu: wall_time %.3f step %lld session_log status %d\n", it->record, it->wall_time, (long long)it->step,
               it->status);
        d->sessions++;
        break;
    default:
        d->other++;
        break;
    }
    return TERN_OK;
}

int cli_tb(int argc, char **argv) {
    const char *run = NULL, *outdir = NULL, *dump_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tern tb RUNDIR [-o DIR]\n"
                   "       tern tb --dump EVENTFILE\n\n"
                   "Writes the run's metrics.jsonl as one TensorBoard event file in DIR (default RUNDIR/tb), replacing\n"
                   "what an earlier `tern tb` wrote there; then `tensorboard --logdir RUNDIR` shows it. Tags: train/loss,\n"
                   "train/lr, train/grad_norm, train/tokens_per_s, val/loss, val/ppl, and each task's (hellaswag/acc_norm,\n"
                   "...). --dump checks every record's length and CRCs and prints the events.\n");
            return 0;
        }
        if (cli_opt_str("tb", argc, argv, &i, "-o", &outdir) || cli_opt_str("tb", argc, argv, &i, "--dump", &dump_file)) continue;
        if (argv[i][0] == '-') cli_usage("tb", "unknown option '%s'", argv[i]);
        if (run) cli_usage("tb", "more than one run given ('%s' and '%s')", run, argv[i]);
        run = argv[i];
    }
    if (dump_file) {
        if (run || outdir) cli_usage("tb", "--dump takes one event file and nothing else");
        dump d = {0};
        size_t nrec;
        tern_status st = tern_tb_read_file(dump_file, print_item, &d, &nrec);
        if (st != TERN_OK) cli_fail("tb", st);
        printf("%s: %zu records, all lengths and CRCs good: %zu file_version, %zu scalars, %zu session logs, %zu other\n",
               dump_file, nrec, d.versions, d.scalars, d.sessions, d.other);
        return 0;
    }
    if (!run) cli_usage("tb", "usage: tern tb RUNDIR [-o DIR]  or  tern tb --dump EVENTFILE");
    char *path;
    size_t n;
    tern_status st = tern_tb_convert_run(run, outdir, &path, &n);
    if (st != TERN_OK) cli_fail("tb", st);
    printf("wrote %s: %zu scalars; view with: tensorboard --logdir %s\n", path, n, outdir ? outdir : run);
    free(path);
    return 0;
}
