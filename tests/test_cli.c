/* The command line as a new user meets it, through the tern program: which tokenizer a run takes
 * and how a wrong one is refused, what --resume does with options given again, --help generated
 * from the option table, what goes to standard output and standard error, exit codes, messages
 * that name the one thing wrong, export's temporary folder, and sampling options. Every refusal
 * is checked to leave no new file behind. */
#include "lib.h"
#include "tern/ledger.h"

#include <cjson/cJSON.h>

#include <dirent.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

static test_data td;
static char out[1 << 16];

static int setup(void) { return test_small_data(&td, "cli_setup"); }

/* A file's text (malloc'd, NUL-terminated), or NULL. */
static char *slurp(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *slurp(const char *fmt, ...) {
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    char *text = NULL;
    size_t n = 0;
    if (tern_read_file(path, &text, &n) != TERN_OK) {
        tern_err_clear();
        return NULL;
    }
    return text;
}

/* How many entries a folder holds (-1: no folder). */
static int entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static int exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int exists(const char *fmt, ...) {
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* --tokenizer must be the tokenizer that made the data, compared by content: another is refused
 * naming both hashes and leaves nothing; config.json records the folder used; a tokenizer that
 * went run -> GGUF -> Hugging Face folder (respelled vocab.json) is still the data's. */
static void test_tokenizer_identity(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("cli_tok");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s tokenizer train --vocab-size 300 -o %s/other %s", t, d, td.corpus);
    CHECK(rc == 0, "%s", out);
    uint8_t h_other[TERN_HASH_BYTES], h_data[TERN_HASH_BYTES];
    char path[700], a[2 * TERN_HASH_BYTES + 1], b[2 * TERN_HASH_BYTES + 1], want[2048];
    snprintf(path, sizeof path, "%s/other", d);
    CHECK(tern_tok_hash_dir(h_other, path, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_tok_hash_dir(h_data, td.tok, NULL) == TERN_OK, "%s", tern_errmsg());
    tern_hex(a, h_other, TERN_HASH_BYTES);
    tern_hex(b, h_data, TERN_HASH_BYTES);
    snprintf(want, sizeof want, "tern train: --tokenizer %s/other is not the tokenizer that made the data in %s: its hash is %s, the data's %s\n",
             d, td.data, a, b);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r --tokenizer %s/other " SMALL_FLAGS " --steps 1", t, td.data, d, d);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);
    CHECK(!exists("%s/r", d), "a refused run left its folder");
    /* in a folder that was there: left as it was found (no config.json, no lock) */
    snprintf(path, sizeof path, "%s/empty", d);
    CHECK(mkdir(path, 0755) == 0, "mkdir");
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/empty --tokenizer %s/other " SMALL_FLAGS " --steps 1", t, td.data, d, d);
    CHECK(rc == 1 && entries(path) == 0, "rc %d, %d entries left: %s", rc, entries(path), out);

    /* the data's own tokenizer, taken from DATADIR/tokenizer and recorded as used */
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r " SMALL_FLAGS " --steps 2 --eval-every 0", t, td.data, d);
    CHECK(rc == 0, "%s", out);
    char *cfg = slurp("%s/r/config.json", d);
    snprintf(want, sizeof want, "\"tokenizer\":\t\"%s/tokenizer\"", td.data);
    CHECK(cfg && strstr(cfg, want), "config.json does not record the tokenizer used: %s", cfg ? cfg : "(none)");
    free(cfg);
    /* resuming with another tokenizer: refused, naming both, nothing written */
    char *ledger0 = slurp("%s/r/%s", d, TERN_LEDGER_FILE);
    rc = run_cmd(out, sizeof out, "%s train -o %s/r --resume --steps 3 --tokenizer %s/other", t, d, d);
    snprintf(want, sizeof want, "tern train: --tokenizer %s/other is not the tokenizer that made the data in %s: its hash is %s, the data's %s\n",
             d, td.data, a, b);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);
    char *ledger1 = slurp("%s/r/%s", d, TERN_LEDGER_FILE);
    CHECK(ledger0 && ledger1 && !strcmp(ledger0, ledger1), "a refused resume wrote to the ledger");
    free(ledger0);
    free(ledger1);

    /* run -> GGUF -> Hugging Face folder, and its files respelled as another program may write
     * them (vocab.json indented, merges.txt without its #version line): the identity stays */
    rc = run_cmd(out, sizeof out, "%s export %s/r -o %s/r.gguf && %s export %s/r.gguf -o %s/hf && sed -i 1d %s/hf/merges.txt", t, d, d, t,
                 d, d, d);
    CHECK(rc == 0, "%s", out);
    char *v0 = slurp("%s/hf/vocab.json", d);
    cJSON *vj = v0 ? cJSON_Parse(v0) : NULL;
    char *v1 = vj ? cJSON_Print(vj) : NULL;
    snprintf(path, sizeof path, "%s/hf/vocab.json", d);
    FILE *vf = v1 ? fopen(path, "w") : NULL;
    CHECK(vf && fputs(v1, vf) >= 0 && fclose(vf) == 0 && strcmp(v0, v1) != 0, "respelling vocab.json");
    cJSON_Delete(vj);
    free(v0);
    free(v1);
    snprintf(path, sizeof path, "%s/hf", d);
    uint8_t h_hf[TERN_HASH_BYTES];
    CHECK(tern_tok_hash_dir(h_hf, path, NULL) == TERN_OK && !memcmp(h_hf, h_data, TERN_HASH_BYTES), "the round trip changed the identity");
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r2 --tokenizer %s/hf " SMALL_FLAGS " --steps 1 --eval-every 0", t, td.data, d, d);
    CHECK(rc == 0 && exists("%s/r2/tokenizer/vocab.json", d), "rc %d: %s", rc, out);
    /* --init from it, the data folder holding no tokenizer of its own: the --init folder's is kept */
    rc = run_cmd(out, sizeof out, "cp -r %s %s/bare && rm -r %s/bare/tokenizer && %s train --data %s/bare -o %s/r3 --init %s/hf --batch 4 --steps 1 --threads 2",
                 td.data, d, d, t, d, d, d);
    CHECK(rc == 0 && exists("%s/r3/tokenizer/merges.txt", d) && !strstr(out, "no tokenizer matching"), "rc %d: %s", rc, out);
}

/* --resume with options: a run option changes the run from the resumed step on (printed, in
 * config.json's history, in the ledger), the next plain --resume keeps it; a fixed option is
 * refused by name; another data folder is a recorded change; a finished run says so. */
static void test_resume_changes(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("cli_resume");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r %s --steps 6 --stop-at 2 --eval-every 0", t, td.data, d, td.small);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, "%s train -o %s/r --resume --lr 1e-3 --stop-at 4", t, d);
    CHECK(rc == 0 && strstr(out, "\nlr 0.003 -> 0.001 from step 3\n"), "rc %d: %s", rc, out);
    char *cfg = slurp("%s/r/config.json", d);
    cJSON *j = cfg ? cJSON_Parse(cfg) : NULL;
    free(cfg);
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(j, "lr"), *h = cJSON_GetObjectItemCaseSensitive(j, "history");
    CHECK(cJSON_IsNumber(lr) && lr->valuedouble == 1e-3, "config.json's lr is not the new one");
    char *hs = h ? cJSON_PrintUnformatted(h) : NULL;
    CHECK(hs && !strcmp(hs, "[{\"key\":\"lr\",\"from\":0.003,\"to\":0.001,\"step\":3}]"), "history %s", hs ? hs : "(none)");
    free(hs);
    cJSON_Delete(j);
    /* the ledger's resume entry holds the change and the hash of the config.json holding it */
    char *led = slurp("%s/r/%s", d, TERN_LEDGER_FILE);
    CHECK(led && strstr(led, "\"type\":\"resume\"") && strstr(led, "\"changes\":[{\"key\":\"lr\",\"from\":0.003,\"to\":0.001,\"step\":3}],\"config\":\""),
          "ledger: %s", led ? led : "(none)");
    free(led);
    /* a plain --resume keeps the new value: nothing is printed as changed */
    rc = run_cmd(out, sizeof out, "%s train -o %s/r --resume --stop-at 5", t, d);
    CHECK(rc == 0 && !strstr(out, " -> "), "rc %d: %s", rc, out);
    cfg = slurp("%s/r/config.json", d);
    CHECK(cfg && strstr(cfg, "\"lr\":\t0.001,"), "lr went back: %s", cfg ? cfg : "");
    free(cfg);
    /* options fixed when the run starts: refused by name, nothing written */
    char *before = slurp("%s/r/config.json", d);
    rc = run_cmd(out, sizeof out, "%s train -o %s/r --resume --n-layer 4", t, d);
    CHECK(rc == 1 && !strcmp(out, "tern train: --n-layer 4 differs from the run's 2 (it is fixed when a run starts; start a new run to "
                                  "change it)\n"),
          "rc %d: %s", rc, out);
    char *after = slurp("%s/r/config.json", d);
    CHECK(before && after && !strcmp(before, after), "a refused resume changed config.json");
    free(before);
    free(after);
    /* another data folder: given explicitly, it is a change like any other */
    rc = run_cmd(out, sizeof out, "cp -r %s %s/data2 && %s train -o %s/r --resume --data %s/data2", td.data, d, t, d, d);
    char want[2048];
    snprintf(want, sizeof want, "\ndata %s -> %s/data2 from step 6\n", td.data, d);
    CHECK(rc == 0 && strstr(out, want), "rc %d: %s", rc, out);
    CHECK(strstr(out, "\nfinished ") != NULL, "%s", out);
    /* a finished run: said, exit 0, nothing written */
    before = slurp("%s/r/%s", d, TERN_LEDGER_FILE);
    rc = run_cmd(out, sizeof out, "%s train -o %s/r --resume", t, d);
    snprintf(want, sizeof want,
             "%s/r is finished: step 6 of 6 (checkpoint %s/r/ckpt/step-000006); to train further give --resume with --steps N above 6\n", d,
             d);
    CHECK(rc == 0 && !strcmp(out, want), "rc %d: %s", rc, out);
    after = slurp("%s/r/%s", d, TERN_LEDGER_FILE);
    CHECK(before && after && !strcmp(before, after), "resuming a finished run wrote to its ledger");
    free(before);
    free(after);
}

/* --help from the option table: placeholders and defaults; usage and list agree. */
static void test_help(void) {
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --help", t);
    CHECK(rc == 0, "%s", out);
    static const char *const train_has[] = {
        "usage: tern train --data DIR -o RUNDIR [options]\n",
        "\n  -o, --out RUNDIR        run folder",
        "\n  --lr LR                 peak learning rate (default 0.002)\n",
        "\n  --steps N               optimizer steps in the whole run (the schedule's length) (default 300)\n",
        "(default 10000;",
        "\n  --n-layer N             transformer blocks (default 4; fixed when the run starts)\n",
        "\n  --schedule NAME         constant or cosine (default cosine)\n",
        "\n  --sample-every N        print a sample from the model every N steps and after the last (0 = never)\n",
        "Exit status: 0 done (or stopped with a checkpoint), 1 failed,\n2 wrong options.",
    };
    for (size_t i = 0; i < sizeof train_has / sizeof train_has[0]; i++) CHECK(strstr(out, train_has[i]), "train --help lacks '%s'", train_has[i]);
    /* every option that takes a value shows its placeholder */
    tern_train_opts o;
    tern_train_opts_defaults(&o);
    for (const char *p = strstr(out, "\n  --"); p; p = strstr(p + 1, "\n  --")) {
        char flag[64], arg[64];
        if (sscanf(p + 3, "%63s %63s", flag, arg) != 2) continue;
        char key[64];
        size_t k = 0;
        for (const char *c = flag + 2; *c && k < sizeof key - 1; c++) key[k++] = *c == '-' ? '_' : *c;
        key[k] = 0;
        if (!tern_train_opts_known(key)) continue; /* --config */
        int upper = arg[0] >= 'A' && arg[0] <= 'Z';
        CHECK(tern_train_opts_is_flag(key) ? !upper || !strcmp(arg, "(default") : upper || !strcmp(arg, "0|1"), "%s: placeholder '%s'", flag, arg);
    }
    rc = run_cmd(out, sizeof out, "%s sample --help", t);
    static const char *const sample_has[] = {"--temperature T    softmax temperature; 0 is greedy (default 0.8)",
                                             "--top-k K          draw among the K most likely tokens; 0 = all (default 40)",
                                             "--top-p P", "--num-samples N", "fed <|endoftext|> before the prompt",
                                             "then one newline", "Past the model's context the window slides"};
    for (size_t i = 0; i < sizeof sample_has / sizeof sample_has[0]; i++)
        CHECK(rc == 0 && strstr(out, sample_has[i]), "sample --help lacks '%s'", sample_has[i]);
    rc = run_cmd(out, sizeof out, "%s eval --help", t);
    CHECK(rc == 0 && strstr(out, "  --batch B      rows per forward pass (default 8)\n"), "eval --help: %s", out);
    rc = run_cmd(out, sizeof out, "%s ledger verify --help", t);
    CHECK(rc == 0 && !strncmp(out, "usage: tern ledger verify RUNDIR", 32), "ledger verify --help: rc %d %s", rc, out);
    /* unknown options are named as such, for every command, exit 2 */
    static const char *const cmds[] = {"train", "prepare", "eval", "sample", "export", "tokenizer encode", "plan", "hw", "keygen", "ledger verify"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        rc = run_cmd(out, sizeof out, "%s %s --bogus 1", t, cmds[i]);
        CHECK(rc == 2 && strstr(out, "unknown option '--bogus'"), "%s --bogus: rc %d %s", cmds[i], rc, out);
    }
}

/* Exit codes (0 ok, 1 failure, 2 usage) and messages that name the one thing wrong; none of the
 * refused commands leaves a file. */
static void test_messages_and_exit_codes(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("cli_msg");
    const char *t = test_tern_bin();
    char want[2048];
    static const struct {
        const char *args, *msg;
        int rc;
    } cases[] = {
        {"--data DATA -o D/x --eval-every -1", "tern train: eval_every must not be negative, got -1\n", 2},
        {"--data DATA -o D/x --ckpt-every -3", "tern train: ckpt_every must not be negative, got -3\n", 2},
        {"--data DATA -o D/x --beta2 1", "tern train: beta2 must be in [0, 1), got 1\n", 2},
        {"--data DATA -o D/x --keep 0", "tern train: keep must be at least 1, got 0\n", 2},
        {"-o D/x --config D/c_num.json", "tern train: D/c_num.json: option \"data\" must be a string, not a number\n", 2},
        {"--data DATA -o D/x --config D/c_twice.json", "tern train: D/c_twice.json: option \"lr\" is given twice\n", 2},
        {"--data DATA -o D/x --config D/none.json", "tern train: D/none.json: cannot open: No such file or directory\n", 1},
        {"--data D/nodata -o D/x", NULL, 1},
        {"--data DATA", "tern train: give the run folder: -o RUNDIR (see tern train --help)\n", 2},
    };
    char p[700];
    snprintf(p, sizeof p, "%s/c_num.json", d);
    FILE *f = fopen(p, "w");
    if (f) fputs("{\"data\": 5}\n", f), fclose(f);
    snprintf(p, sizeof p, "%s/c_twice.json", d);
    f = fopen(p, "w");
    if (f) fputs("{\"lr\": 0.001, \"lr\": 0.002}\n", f), fclose(f);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* DATA and D stand for the data folder and the scratch folder */
        char args[1024] = "", msg[2048] = "";
        for (const char *s = cases[i].args; *s;) {
            if (!strncmp(s, "DATA", 4)) strcat(args, td.data), s += 4;
            else if (!strncmp(s, "D/", 2)) strcat(args, d), strcat(args, "/"), s += 2;
            else strncat(args, s++, 1);
        }
        for (const char *s = cases[i].msg ? cases[i].msg : ""; *s;) {
            if (!strncmp(s, "D/", 2)) strcat(msg, d), strcat(msg, "/"), s += 2;
            else strncat(msg, s++, 1);
        }
        int rc = run_cmd(out, sizeof out, "%s train %s", t, args);
        CHECK(rc == cases[i].rc && (!cases[i].msg || !strcmp(out, msg)), "train %s: rc %d: %s", args, rc, out);
        CHECK(!exists("%s/x", d), "train %s left %s/x", args, d);
    }
    /* eval: the run's own data by default; exit codes as train's */
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r %s --steps 1 --eval-every 0 > %s/log", t, td.data, d, td.small, d);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, "%s eval %s/r --batch 2 --batches 1", t, d);
    snprintf(want, sizeof want, "%s/r on %s (val): loss ", d, td.data);
    CHECK(rc == 0 && !strncmp(out, want, strlen(want)), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s eval %s/r --batch 0", t, d);
    CHECK(rc == 2 && !strcmp(out, "tern eval: --batch must be at least 1, got 0\n"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s eval %s/nothing --data %s", t, d, td.data);
    CHECK(rc == 1, "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s sample %s/nothing", t, d);
    CHECK(rc == 1, "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s sample %s/r --top-p 0", t, d);
    CHECK(rc == 2 && !strcmp(out, "tern sample: --top-p must be above 0 and at most 1, got 0\n"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer %s -o %s/p %s/none.txt", t, td.tok, d, d);
    CHECK(rc == 1 && !exists("%s/p", d), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s export %s/nothing -o %s/e", t, d, d);
    CHECK(rc == 1 && !exists("%s/e", d), "rc %d: %s", rc, out);
}

/* Standard output keeps the records and a closing summary (so '> log' has them); standard error
 * the banner. On a terminal of 60 columns the bar never wraps, even at step 1000 and beyond. */
static void test_output_streams(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("cli_out");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r %s --steps 4 --eval-every 0 > %s/log 2> %s/err", t, td.data, d, td.small,
                     d, d);
    CHECK(rc == 0, "%s", out);
    char *log = slurp("%s/log", d), *err = slurp("%s/err", d);
    char want[2048];
    snprintf(want, sizeof want, "\ncheckpoint %s/r/ckpt/step-000004\nnext: tern eval %s/r; tern sample %s/r --prompt TEXT; tern export %s/r -o DIR\n",
             d, d, d, d);
    CHECK(log && strstr(log, want) && strstr(log, "step 1/4 loss ") && strstr(log, "step 4: val loss "), "stdout: %s", log ? log : "");
    snprintf(want, sizeof want, "\nfinished %s/r: step 4 of 4, train loss ", d);
    CHECK(log && strstr(log, want) && strstr(log, ", val loss "), "stdout: %s", log ? log : "");
    snprintf(want, sizeof want, "training %s/r: gpt2, 2 layers", d);
    CHECK(err && !strncmp(err, want, strlen(want)) && !strstr(err, "finished"), "stderr: %s", err ? err : "");
    free(log);
    free(err);

    /* the bar on a 60-column terminal, at steps past 1000 */
    int master;
    struct winsize ws = {.ws_row = 24, .ws_col = 60};
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid == 0) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "%s train --data %s -o %s/bar %s --steps 100000 --stop-at 3 --eval-every 0 --warmup 0 > %s/bar.log", t,
                 td.data, d, td.small, d);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    size_t n = 0;
    for (;;) {
        ssize_t k = read(master, out + n, sizeof out - 1 - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    out[n] = 0;
    int status = 0;
    waitpid(pid, &status, 0);
    close(master);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d: %s", status, out);
    CHECK(strstr(out, "\r  step 3/100000 [") != NULL, "no bar: %s", out);
    /* every state of the bar (a piece between \r and \r or \n, escape sequences left out) fits
     * 59 columns */
    int widest = 0;
    for (char *p = out; *p;) {
        int w = 0, bar = !strncmp(p, "  step ", 7);
        for (; *p && *p != '\r' && *p != '\n'; p++) {
            if (*p == '\033') {
                while (p[1] && !(p[1] >= '@' && p[1] <= '~' && p[1] != '[')) p++;
                p++;
                continue;
            }
            w++;
        }
        if (bar && w > widest) widest = w;
        if (*p) p++;
    }
    CHECK(widest > 30 && widest <= 59, "a bar of %d columns on a 60-column terminal: %s", widest, out);
}

/* HF export goes through a temporary folder: a write that fails (a file size limit standing in
 * for a full disk) leaves neither the folder nor the temporary one; a good export holds
 * tokenizer_config.json as save_pretrained writes it. */
static void test_export_whole_or_nothing(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("cli_export");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r %s --steps 1 --eval-every 0 >/dev/null", t, td.data, d, td.small);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, "(trap '' XFSZ; ulimit -f 16; %s export %s/r -o %s/hf)", t, d, d);
    CHECK(rc == 1 && strstr(out, "tern export: "), "rc %d: %s", rc, out);
    CHECK(entries(d) == 1, "a failed export left %d entries beside the run", entries(d) - 1);
    rc = run_cmd(out, sizeof out, "%s export %s/r -o %s/hf", t, d, d);
    char *tc = slurp("%s/hf/tokenizer_config.json", d);
    CHECK(rc == 0 && tc && strstr(tc, "\"tokenizer_class\"") && strstr(tc, "<|endoftext|>"), "rc %d: %s %s", rc, out, tc ? tc : "(none)");
    free(tc);
}

/* tern sample --top-p and --num-samples; train --sample-every prints and records samples. */
static void test_sampling(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("cli_sample");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r %s --steps 4 --eval-every 0 --sample-every 2 --sample-tokens 8 "
                                      "--sample-prompt 'ROMEO:' 2>/dev/null",
                     t, td.data, d, td.small);
    CHECK(rc == 0 && strstr(out, "\nstep 2: sample:\nROMEO:") && strstr(out, "\nstep 4: sample:\nROMEO:"), "rc %d: %s", rc, out);
    char *m = slurp("%s/r/metrics.jsonl", d);
    CHECK(m && strstr(m, "{\"step\":2,\"sample\":\"ROMEO:") && strstr(m, "{\"step\":4,\"sample\":\"ROMEO:"), "metrics: %s", m ? m : "");
    free(m);
    char a[8192], b[8192];
    rc = run_cmd(a, sizeof a, "%s sample %s/r --prompt 'To be' -n 12 --top-p 0.9 --num-samples 2 --seed 3", t, d);
    CHECK(rc == 0 && !strncmp(a, "=== sample 1 of 2 ===\nTo be", 27) && strstr(a, "\n=== sample 2 of 2 ===\nTo be"), "rc %d: %s", rc, a);
    char *s2 = strstr(a, "\n=== sample 2 of 2 ===\n");
    CHECK(s2 && strncmp(a + 22, s2 + 23, strlen(s2 + 23)) != 0, "the two samples are the same: %s", a);
    run_cmd(b, sizeof b, "%s sample %s/r --prompt 'To be' -n 12 --top-p 0.9 --num-samples 2 --seed 3", t, d);
    CHECK(!strcmp(a, b), "the same seed gave other samples");
    /* a nucleus this small keeps only the most likely token: the same as greedy */
    run_cmd(a, sizeof a, "%s sample %s/r --prompt 'To be' -n 12 --top-p 1e-9", t, d);
    run_cmd(b, sizeof b, "%s sample %s/r --prompt 'To be' -n 12 --temperature 0", t, d);
    CHECK(!strcmp(a, b), "top-p 1e-9 is not greedy:\n%s\n%s", a, b);
}

int main(void) {
    RUN(test_tokenizer_identity);
    RUN(test_resume_changes);
    RUN(test_help);
    RUN(test_messages_and_exit_codes);
    RUN(test_output_streams);
    RUN(test_export_whole_or_nothing);
    RUN(test_sampling);
    return check_exit();
}
