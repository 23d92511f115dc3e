/* tern train: parses flags (and --config FILE.json) into the run options and starts the run.
 * SIGINT/SIGTERM finish the current step, checkpoint and exit 0, as preemptible machines need. */
#include "cli.h"
#include "tern/data.h"
#include "tern/ddp.h"
#include "tern/train.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Signals. SIGINT and SIGTERM are blocked in every thread and taken by one thread that does
 * nothing else (sigwait), so no handler ever runs on a compute thread. That matters: oneDNN's
 * GEMM kernels point the stack pointer into a heap workspace when K is large (the head's
 * backward product has K = the vocabulary), and a handler's frame, pushed below the stack
 * pointer, would overwrite the heap there (docs/RELIABILITY.md, "Stopping a run").
 * The first signal asks the run to stop after the current step with a checkpoint; the second
 * says what the run is waiting for; the third ends the process at once, which leaves the disk
 * as a SIGKILL would: every checkpoint already committed whole, the newest one intact. */
static tern_train_control control;
static sigset_t stop_signals;
static atomic_int quiet; /* ranks other than 0 of a data-parallel run leave the messages to rank 0 */

static void *signal_thread(void *arg) {
    (void)arg;
    for (int n = 1;; n++) {
        int sig;
        if (sigwait(&stop_signals, &sig) != 0) continue;
        const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
        char waiting[200];
        tern_train_control_describe(&control, waiting, sizeof waiting);
        long long ck = atomic_load(&control.ckpt_step);
        if (n == 1) {
            atomic_store(&control.stop, 1);
            if (!atomic_load(&quiet))
                fprintf(stderr, "\ntern train: %s: will stop after %s and write a checkpoint (send it twice more to quit at once without one)\n",
                    name, waiting);
        } else if (n == 2) {
            if (!atomic_load(&quiet))
                fprintf(stderr, "\ntern train: %s again: waiting for %s to end; once more quits at once without a checkpoint\n",
                    name, waiting);
        } else {
            if (ck >= 0)
                fprintf(stderr, "\ntern train: %s a third time: quitting at once; the checkpoint of step %lld is kept\n", name, ck);
            else
                fprintf(stderr, "\ntern train: %s a third time: quitting at once; no checkpoint had been completed\n", name);
            _exit(128 + sig);
        }
    }
    return NULL;
}

/* Must run before any other thread exists (OpenMP's, MPI's), so that all of them inherit the
 * blocked mask. */
static void start_signal_thread(void) {
    tern_train_control_init(&control);
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, signal_thread, NULL) != 0) {
        /* Without the thread the signals would stay blocked: restore their default action. */
        pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);
        fprintf(stderr, "tern train: cannot start the signal thread; Ctrl-C will end the run without a checkpoint\n");
    }
    pthread_attr_destroy(&attr);
}

static void help(void) {
    printf("usage: tern train --data DIR -o RUNDIR [options]\n"
           "       tern train -o RUNDIR --resume [options]\n"
           "       tern train            (the default model on the bundled corpus, into runs/default-N)\n"
           "       mpirun -np W tern train ...   (W data-parallel ranks, --batch rows each; docs/DISTRIBUTED.md)\n\n"
           "Options (also accepted as keys of --config FILE.json, '-' written '_'; flags win over the file).\n"
           "With --resume an option given again changes the run from the resumed step on: the change is\n"
           "printed, written into RUNDIR/config.json (its \"history\") and recorded in the ledger. Options\n"
           "fixed when the run starts are refused if they differ; those for this invocation only are not saved.\n"
           "Records (step lines when standard output is not the terminal that shows the progress bar,\n"
           "evaluations, samples, the summary) go to standard output; the progress bar, start-up lines and\n"
           "warnings to standard error. Exit status: 0 done (or stopped with a checkpoint), 1 failed,\n"
           "2 wrong options.\n\n"
           "  --config FILE           a JSON object of options\n");
    tern_train_opts_help(stdout);
}

/* The repository root: the nearest folder above the program holding the bundled corpus. */
static int find_root(char *root, size_t n) {
    char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) return 0;
    exe[k] = 0;
    for (int up = 0; up < 4; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash) return 0;
        *slash = 0;
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/data/tinyshakespeare/input.txt", exe);
        if (tern_path_exists(probe)) {
            snprintf(root, n, "%s", exe);
            return 1;
        }
    }
    return 0;
}

/* With no arguments: prepare the bundled corpus (tinyshakespeare, GPT-2's tokenizer, the last
 * 10% for validation) under runs/ if that was not done yet, and train the default model on it
 * into the first free runs/default-N. */
static int cli_train_default(tern_train_opts *o) {
    char root[4096], data[4200], tok[4200], corpus[4200], out[4200], manifest[4300];
    if (!find_root(root, sizeof root)) {
        fprintf(stderr, "tern train: cannot find the bundled corpus (data/tinyshakespeare/input.txt) above the program; "
                        "give --data DATADIR -o RUNDIR\n");
        return 1;
    }
    snprintf(data, sizeof data, "%s/runs/shakespeare-gpt2", root);
    snprintf(tok, sizeof tok, "%s/data/gpt2", root);
    snprintf(corpus, sizeof corpus, "%s/data/tinyshakespeare/input.txt", root);
    snprintf(manifest, sizeof manifest, "%s/manifest.json", data);
    if (!tern_path_exists(manifest)) {
        fprintf(stderr, "preparing %s with GPT-2's tokenizer into %s\n", corpus, data);
        const char *files[] = {corpus};
        tern_prepare_opts po = {tok, files, 1, 0.1, TERN_PREPARE_SHARD_TOKENS, 1337, data, NULL};
        tern_status st = tern_data_prepare(&po, NULL);
        if (st != TERN_OK) cli_fail("train", st);
    }
    for (int i = 1;; i++) {
        snprintf(out, sizeof out, "%s/runs/default-%d", root, i);
        if (!tern_path_exists(out)) break;
    }
    o->data = data;
    o->out = out;
    o->tokenizer = tok;
    tern_train_hooks hooks = {.control = &control, .progress = 1};
    tern_status st = tern_train_run(o, &hooks);
    if (st != TERN_OK) cli_fail("train", st);
    printf("%s\n", out);
    return 0;
}

int cli_train(int argc, char **argv) {
    start_signal_thread();
    /* A progress display piped into a pager or `head` that has gone must not end the run: writes
     * to a closed pipe fail quietly instead of killing the process. */
    signal(SIGPIPE, SIG_IGN);
    tern_train_opts o;
    tern_train_opts_defaults(&o);
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        }
        const char *v;
        if (cli_opt_str("train", argc, argv, &i, "--config", &v)) {
            config = v;
            continue;
        }
        if (cli_opt_str("train", argc, argv, &i, "-o", &v)) {
            if (tern_train_opts_set(&o, "out", v) != TERN_OK) cli_fail("train", TERN_EINVAL);
            continue;
        }
        if (strncmp(a, "--", 2) != 0) cli_usage("train", "unexpected argument '%s' (see tern train --help)", a);
        /* --some-key[=value] -> some_key */
        char key[64];
        size_t k = 0;
        const char *p = a + 2;
        for (; *p && *p != '=' && k < sizeof key - 1; p++) key[k++] = *p == '-' ? '_' : *p;
        key[k] = 0;
        if (!tern_train_opts_known(key) || (*p && *p != '='))
            cli_usage("train", "unknown option '%.*s' (see tern train --help)", (int)(p - a), a);
        const char *val;
        if (*p == '=') {
            val = p + 1;
        } else if (tern_train_opts_is_flag(key)) {
            val = "true";
        } else {
            if (i + 1 >= argc) cli_usage("train", "option %s needs a value", a);
            val = argv[++i];
        }
        tern_status st = tern_train_opts_set(&o, key, val);
        if (st != TERN_OK) cli_usage("train", "%s (see tern train --help)", tern_errmsg());
    }
    if (config) {
        /* a wrong option in the file is a usage error (2), an unreadable file a failure (1) */
        tern_status st = tern_train_opts_load_json(&o, config);
        if (st == TERN_EINVAL) cli_usage("train", "%s", tern_errmsg());
        if (st != TERN_OK) cli_fail("train", st);
    }
    /* values out of range, or that contradict each other, are usage errors; a resumed run's are
     * checked once its config.json is read */
    if (argc > 1 && !o.out) cli_usage("train", "give the run folder: -o RUNDIR (see tern train --help)");
    if (argc > 1 && !o.resume && !o.data)
        cli_usage("train", "give the data: --data DIR, a folder made by tern prepare (or --resume to continue the run in %s)", o.out);
    if (!o.resume && argc > 1 && tern_train_opts_check(&o) != TERN_OK) cli_usage("train", "%s", tern_errmsg());
    if (argc == 1) return cli_train_default(&o);
    /* Under mpirun or srun, one rank of a data-parallel run (docs/DISTRIBUTED.md). */
    tern_comm *comm;
    tern_status cst = tern_comm_init(&comm);
    if (cst != TERN_OK) cli_fail("train", cst);
    atomic_store(&quiet, tern_comm_rank(comm) != 0);
    tern_train_hooks hooks = {.control = &control, .progress = 1, .comm = comm};
    tern_status st = tern_train_run(&o, &hooks);
    tern_train_opts_free(&o);
    if (st != TERN_OK && tern_comm_size(comm) > 1) {
        /* The other ranks may be waiting for this one in a collective: end them all. */
        fflush(stdout);
        fprintf(stderr, "tern train: rank %d: %s\n", tern_comm_rank(comm), tern_errmsg());
        tern_comm_abort(comm, 1);
    }
    if (st != TERN_OK) cli_fail("train", st);
    tern_comm_free(comm);
    return 0;
}
