/* Stopping a run and sharing its folder, as users and schedulers do it: SIGINT and SIGTERM at
 * random moments (start-up, steps, evaluation, checkpoints) always end in exit 0 and a
 * checkpoint from which the run resumes bit for bit; a second signal says what the run waits
 * for and a third quits at once; a run folder is locked by its trainer, and a refused trainer
 * changes nothing; runs that cannot fit in memory are refused before they allocate.
 * TERN_SOAK_TRIALS sets the number of random interruptions (default 16). */
#include "lib.h"
#include "tern/train.h"

#include <dirent.h>
#include <sys/stat.h>

static test_data td;
static char out[1 << 16];

/* Flags of the soak runs: an evaluation every 4 steps and a checkpoint every 5, so that random
 * moments land in each phase. */
#define SOAK_FLAGS "--steps 24 --ckpt-every 5 --keep 2 --eval-every 4"

static int latest_loads(const char *rd) {
    tern_model *m;
    if (tern_io_open_model(rd, 0, &m, NULL, NULL, NULL) != TERN_OK) return 0;
    tern_model_free(m);
    return 1;
}

static void test_signals_at_random_moments(void) {
    if (!test_small_data(&td, "stop_setup")) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("stop_soak");
    const char *t = test_tern_bin();
    const char *env = getenv("TERN_SOAK_TRIALS");
    int trials = env ? atoi(env) : 16;
    char ref[600], log[700];
    snprintf(ref, sizeof ref, "%s/ref", d);
    snprintf(log, sizeof log, "%s/ref.log", d);
    double t0 = test_now();
    pid_t pid = test_spawn(log, "%s train --data %s -o %s %s " SOAK_FLAGS, t, td.data, ref, td.small);
    int rc = test_wait(pid, NULL);
    double dur = test_now() - t0;
    CHECK(rc == 0, "the unbroken run failed (%d)", rc);
    if (rc != 0) return;
    char ref_losses[32][32];
    int nref = test_losses(ref, ref_losses, 32);
    CHECK(nref == 24, "%d losses in the unbroken run", nref);
    int early = 0, ok = 0;
    int phases[6] = {0}; /* setup, step, eval, checkpoint, closing, finished before the signal */
    static const char *const phase_names[] = {"start-up", "a step", "an evaluation", "a checkpoint", "closing", "after the end"};
    for (int k = 0; k < trials; k++) {
        char rd[600];
        snprintf(rd, sizeof rd, "%s/t%d", d, k);
        snprintf(log, sizeof log, "%s/t%d.log", d, k);
        int sig = k % 2 ? SIGTERM : SIGINT;
        double delay = 1.1 * dur * tern_rng_uniform(4242, 7, (uint64_t)k);
        pid = test_spawn(log, "%s train --data %s -o %s %s " SOAK_FLAGS, t, td.data, rd, td.small);
        test_sleep(delay);
        kill(pid, sig);
        rc = test_wait(pid, NULL);
        char *text;
        size_t n;
        if (tern_read_file(log, &text, &n) != TERN_OK) text = NULL;
        if (rc == 128 + sig && !tern_path_exists(rd)) {
            /* before tern's main() blocked the signal (the dynamic loader's few milliseconds): the
             * default action ended a process that had written nothing */
            early++;
            free(text);
            continue;
        }
        CHECK(rc == 0, "trial %d (%s after %.3f s): exit %d: %s", k, sig == SIGINT ? "SIGINT" : "SIGTERM", delay, rc,
              text ? text : "");
        if (text) {
            const char *w = strstr(text, "will stop after ");
            int ph = !w ? 5 : !strncmp(w + 16, "start-up", 8) ? 0 : !strncmp(w + 16, "step ", 5) ? 1
                   : !strncmp(w + 16, "the evaluation", 14) ? 2 : !strncmp(w + 16, "the checkpoint", 14) ? 3 : 4;
            phases[ph]++;
        }
        free(text);
        if (rc != 0) continue;
        CHECK(latest_loads(rd), "trial %d: the latest checkpoint does not load: %s", k, tern_errmsg());
        rc = run_cmd(out, sizeof out, "%s train -o %s --resume", t, rd);
        CHECK(rc == 0, "trial %d: resume: %s", k, out);
        char a[700], b[700], got[32][32];
        int same = 1;
        for (int f = 0; f < 2; f++) {
            const char *name = f ? "optimizer.safetensors" : "model.safetensors";
            snprintf(a, sizeof a, "%s/ckpt/step-000024/%s", ref, name);
            snprintf(b, sizeof b, "%s/ckpt/step-000024/%s", rd, name);
            same &= test_files_equal(a, b);
        }
        int ng = test_losses(rd, got, 32);
        for (int i = 0; i < ng && i < nref; i++) same &= !strcmp(got[i], ref_losses[i]);
        CHECK(same && ng == nref, "trial %d: the resumed run differs from the unbroken one (%d losses)", k, ng);
        rc = run_cmd(out, sizeof out, "%s ledger verify %s", t, rd);
        CHECK(rc == 0, "trial %d: ledger: %s", k, out);
        ok += same && ng == nref;
    }
    printf("  %d trials: %d stopped and resumed bit for bit, %d ended before main() (nothing written); signals landed in", trials,
           ok, early);
    for (int i = 0; i < 6; i++) printf(" %s %d%s", phase_names[i], phases[i], i < 5 ? "," : "\n");
    CHECK(ok + early == trials, "%d of %d trials", ok, trials);
}

/* A model whose steps take a good fraction of a second on two threads, so that three signals
 * 30 ms apart all arrive within one step. */
#define SLOW_FLAGS "--n-layer 4 --n-head 4 --n-embd 256 --seq 128 --batch 8 --threads 2 --steps 100000 --eval-every 0"

static void wait_for_step(const char *rd, int step) {
    char path[700], needle[64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", rd);
    snprintf(needle, sizeof needle, "\"step\":%d,", step);
    for (int i = 0; i < 1200; i++) {
        char *text;
        size_t n;
        if (tern_read_file(path, &text, &n) == TERN_OK) {
            int found = strstr(text, needle) != NULL;
            free(text);
            if (found) return;
        }
        test_sleep(0.025);
    }
}

/* Waits (up to 10 s) until the log holds `what`; returns whether it did. */
static int wait_for_text(const char *log, const char *what) {
    for (int i = 0; i < 2000; i++) {
        char *text;
        size_t n;
        if (tern_read_file(log, &text, &n) == TERN_OK) {
            int found = strstr(text, what) != NULL;
            free(text);
            if (found) return 1;
        }
        test_sleep(0.005);
    }
    return 0;
}

/* Each signal is sent once the run has answered the one before, so that two of the same kind
 * never merge into one pending signal; a run that finishes stopping between two signals (a
 * slow scheduler) exits 0 with its checkpoint, which is also right, and is counted apart. */
static void test_second_and_third_signal(void) {
    if (!test_small_data(&td, "stop_setup")) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("stop_three");
    const char *t = test_tern_bin();
    int full = 0, early = 0;
    for (int k = 0; k < 8 && full < 3; k++) {
        char rd[600], log[700];
        snprintf(rd, sizeof rd, "%s/r%d", d, k);
        snprintf(log, sizeof log, "%s/r%d.log", d, k);
        pid_t pid = test_spawn(log, "%s train --data %s -o %s --tokenizer %s " SLOW_FLAGS " --ckpt-every 2", t, td.data, rd, td.tok);
        wait_for_step(rd, 3 + k % 3); /* after the checkpoint of step 2 */
        test_sleep(0.2 * tern_rng_uniform(99, 1, (uint64_t)k));
        kill(pid, SIGINT);
        if (wait_for_text(log, "tern train: SIGINT: will stop after ")) kill(pid, SIGTERM);
        if (wait_for_text(log, "tern train: SIGTERM again: waiting for ")) kill(pid, SIGINT);
        int rc = test_wait(pid, NULL);
        char *text = NULL;
        size_t n;
        tern_read_file(log, &text, &n);
        if (rc == 0 && text && strstr(text, "stopped on request after step")) {
            early++;
        } else {
            CHECK(rc == 130, "trial %d: exit %d (expected 130)", k, rc);
            CHECK(text && strstr(text, "tern train: SIGINT: will stop after ") &&
                      strstr(text, "tern train: SIGTERM again: waiting for ") &&
                      (strstr(text, "tern train: SIGINT a third time: quitting at once; the checkpoint of step ") ||
                       strstr(text, "tern train: SIGINT a third time: quitting at once; no checkpoint had been completed")),
                  "trial %d: %s", k, text ? text : "");
            full++;
        }
        free(text);
        /* what is on disk is whole: the newest checkpoint loads, the ledger verifies, and the run
         * resumes */
        CHECK(latest_loads(rd), "trial %d: %s", k, tern_errmsg());
        rc = run_cmd(out, sizeof out, "%s ledger verify %s", t, rd);
        CHECK(rc == 0, "trial %d: ledger: %s", k, out);
        rc = run_cmd(out, sizeof out, "%s train -o %s --resume --stop-at 0 --steps 1 --threads 2", t, rd);
        CHECK(rc == 0, "trial %d: %s", k, out);
    }
    printf("  %d runs quit at the third signal, %d finished stopping before it\n", full, early);
    CHECK(full >= 3, "only %d of the trials reached the third signal", full);
}

/* Every file under dir with its size, mtime and a hash of its bytes, one line each, sorted. */
static void snapshot(const char *dir, char *buf, size_t n) {
    run_cmd(buf, n, "cd %s && find . -type f -printf '%%p %%s %%T@\\n' | sort && find . -type f | sort | xargs sha256sum", dir);
}

static void test_lock(void) {
    if (!test_small_data(&td, "stop_setup")) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("stop_lock");
    const char *t = test_tern_bin();
    char rd[600], log[700];
    snprintf(rd, sizeof rd, "%s/r", d);
    snprintf(log, sizeof log, "%s/r.log", d);
    pid_t pid = test_spawn(log, "%s train --data %s -o %s %s --steps 100000 --ckpt-every 3 --eval-every 5", t, td.data, rd, td.small);
    wait_for_step(rd, 4);
    /* Readers of a live run work on its newest complete checkpoint. */
    int rc = run_cmd(out, sizeof out, "%s eval %s --data %s --batches 2", t, rd, td.data);
    CHECK(rc == 0 && strstr(out, "perplexity"), "eval of a live run: %s", out);
    rc = run_cmd(out, sizeof out, "%s export %s -o %s/hf", t, rd, d);
    CHECK(rc == 0, "export of a live run: %s", out);
    rc = run_cmd(out, sizeof out, "%s sample %s --prompt ROMEO: -n 8 --seed 1", t, rd);
    CHECK(rc == 0 && !strncmp(out, "ROMEO:", 6), "sample of a live run: %s", out);
    /* A second trainer and a --resume are refused, naming the folder and the holder's pid, and
     * change nothing: the holder is paused meanwhile so that only they could. */
    kill(pid, SIGSTOP);
    test_sleep(0.05);
    static char before[1 << 15], after[1 << 15];
    snapshot(rd, before, sizeof before);
    char want[1200];
    snprintf(want, sizeof want, "tern train: %s is in use by another tern train (pid %d on ", rd, (int)pid);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s %s --steps 5", t, td.data, rd, td.small);
    CHECK(rc == 1 && strstr(out, want) == out, "second trainer: rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train -o %s --resume", t, rd);
    CHECK(rc == 1 && strstr(out, want) == out, "resume of a live run: rc %d: %s", rc, out);
    snapshot(rd, after, sizeof after);
    CHECK(!strcmp(before, after), "a refused trainer changed the folder:\n%s\n---\n%s", before, after);
    kill(pid, SIGCONT);
    /* A holder killed outright releases the lock: --resume then works. */
    test_sleep(0.1);
    kill(pid, SIGKILL);
    test_wait(pid, NULL);
    rc = run_cmd(out, sizeof out, "%s train -o %s --resume --stop-at 0 --steps 1", t, rd);
    CHECK(rc == 0, "resume after the holder was killed: %s", out);
}

/* Two new trainers started together on one folder: one trains, the other is refused, and the
 * one that trains keeps all its metrics. */
static void test_two_trainers_at_once(void) {
    if (!test_small_data(&td, "stop_setup")) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("stop_two");
    const char *t = test_tern_bin();
    for (int k = 0; k < 4; k++) {
        char rd[600], la[700], lb[700];
        snprintf(rd, sizeof rd, "%s/r%d", d, k);
        snprintf(la, sizeof la, "%s/a%d.log", d, k);
        snprintf(lb, sizeof lb, "%s/b%d.log", d, k);
        pid_t a = test_spawn(la, "%s train --data %s -o %s %s --steps 6", t, td.data, rd, td.small);
        pid_t b = test_spawn(lb, "%s train --data %s -o %s %s --steps 6", t, td.data, rd, td.small);
        int ra = test_wait(a, NULL), rb = test_wait(b, NULL);
        CHECK((ra == 0) + (rb == 0) == 1 && (ra == 1 || rb == 1), "trial %d: exits %d and %d", k, ra, rb);
        char got[16][32];
        int n = test_losses(rd, got, 16);
        CHECK(n == 6, "trial %d: %d losses in metrics.jsonl", k, n);
        int rc = run_cmd(out, sizeof out, "%s ledger verify %s", t, rd);
        CHECK(rc == 0, "trial %d: ledger: %s", k, out);
    }
}

/* Runs that cannot be trained are refused at once, with what would fit, having allocated nothing
 * large and left no folder behind. --max-memory 8G sets the limit, so that the cases do not depend
 * on the machine's memory; one case takes the limit from the machine, with an address-space limit
 * as `ulimit -v` sets it (except under AddressSanitizer, whose shadow memory needs no such limit). */
static void test_refused_before_memory_is_taken(void) {
    if (!test_small_data(&td, "stop_setup")) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("stop_mem");
    const char *t = test_tern_bin();
    const char *san = getenv("SAN");
    int asan = san && !strcmp(san, "1");
    char window[1200];
    snprintf(window, sizeof window,
             "tern train: %s: no train shard holds a whole window: a window needs 1600001 tokens (B=16 x T=100000, plus 1) "
             "and the largest shard has ", td.data);
    /* at bf16 where the products run natively, the two bf16 copies of every weight they keep count
     * too (4 more bytes per parameter), and the message names them */
    tern_backend *be = NULL;
    int native = tern_backend_open(&be, NULL) == TERN_OK && tern_backend_set_precision(be, "bf16") == TERN_OK &&
                 !strcmp(tern_backend_precision_how(be), "AVX512_BF16");
    tern_backend_free(be);
    const char *bf16_hint = native ? "even --batch 1 would not: parameters, gradients, AdamW moments and bf16 weight copies alone need "
                                   : "even --batch 1 would not: parameters, gradients and AdamW moments alone need ";
    struct {
        const char *flags, *want, *hint;
        int machine; /* the limit is the machine's (an address-space limit of 8 GiB) */
    } cases[] = {
        {"--seq 100000", window, NULL, 0},
        /* parameters, gradients and moments alone: 4 x 16 bytes per parameter of 6.4e9 */
        {"--n-layer 8 --n-head 64 --n-embd 8192", "tern train: the run needs ",
         "even --batch 1 would not: parameters, gradients and AdamW moments alone need ", 1},
        {"--n-layer 8 --n-head 64 --n-embd 8192 --precision bf16", "tern train: the run needs ", bf16_hint, 1},
        /* activations of 32 rows of 1024 do not fit, one row does */
        {"--n-layer 8 --n-head 16 --n-embd 2048 --seq 1024 --batch 32 --max-memory 8G", "tern train: the run needs ",
         "but --max-memory is 8.00 GiB; --batch 1 (with --grad-accum 32 for the same tokens per step) would fit", 0},
        /* recomputation fits */
        {"--n-layer 24 --n-head 8 --n-embd 512 --seq 1024 --batch 32 --max-memory 8G", "tern train: the run needs ",
         "but --max-memory is 8.00 GiB; --recompute would fit (activations ", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rd[600], log[700];
        snprintf(rd, sizeof rd, "%s/r%zu", d, i);
        snprintf(log, sizeof log, "%s/r%zu.log", d, i);
        test_spawn_as_limit = cases[i].machine && !asan ? (rlim_t)8 << 30 : 0;
        double t0 = test_now();
        long rss = 0;
        pid_t pid = test_spawn(log, "%s train --data %s -o %s --tokenizer %s %s", t, td.data, rd, td.tok, cases[i].flags);
        int rc = test_wait(pid, &rss);
        double secs = test_now() - t0;
        test_spawn_as_limit = 0;
        char *text = NULL;
        size_t n;
        tern_read_file(log, &text, &n);
        CHECK(rc == 1 && text && strstr(text, cases[i].want) == text, "%s: rc %d: %s", cases[i].flags, rc, text ? text : "");
        if (cases[i].hint) CHECK(text && strstr(text, cases[i].hint), "%s: %s", cases[i].flags, text ? text : "");
        if (cases[i].machine && !asan)
            CHECK(text && strstr(text, "but the address-space limit (ulimit -v) is 8.00 GiB; "), "%s: %s", cases[i].flags,
                  text ? text : "");
        CHECK(secs < 1.0 || asan, "%s: refused after %.2f s", cases[i].flags, secs);
        CHECK(rss < 200 * 1024 || asan, "%s: peak memory %ld kB", cases[i].flags, rss);
        CHECK(!tern_path_exists(rd), "%s: left %s behind", cases[i].flags, rd);
        printf("  %s: refused in %.3f s at %.0f MB peak\n", cases[i].flags, secs, (double)rss / 1024);
        free(text);
    }
    if (asan) return;
    /* --max-memory 0 turns the check off: the run then goes on to allocate, which the address-space
     * limit makes fail, naming the size it asked for. */
    char rd[600];
    snprintf(rd, sizeof rd, "%s/off", d);
    int rc = run_cmd(out, sizeof out, "ulimit -v 2000000; %s train --data %s -o %s --tokenizer %s --n-layer 8 --n-head 16 --n-embd 2048 "
                     "--seq 1024 --batch 32 --max-memory 0", t, td.data, rd, td.tok);
    CHECK(rc == 1 && strstr(out, "out of memory: ") && strstr(out, " needs "), "rc %d: %s", rc, out);
}

int main(void) {
    RUN(test_signals_at_random_moments);
    RUN(test_second_and_third_signal);
    RUN(test_lock);
    RUN(test_two_trainers_at_once);
    RUN(test_refused_before_memory_is_taken);
    return check_exit();
}
