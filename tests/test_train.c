/* End-to-end tests of training as a user meets it, through the tern program: prepare a small
 * corpus, train, stop and resume (bit-exact), SIGINT and SIGKILL during checkpointing, export and
 * --init round trips, evaluation and sampling. */
#include "lib.h"
#include "tern/data.h"
#include "tern/train.h"
#include "tern/watch.h"

#include <cjson/cJSON.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static test_data td;
static char out[1 << 16];

static int setup(void) { return test_small_data(&td, "train_setup"); }

/* Two runs' losses step by step as printed, and their model files at step `step`: all equal. */
static void same_runs(const char *d, const char *x, const char *y, int steps, const char *why) {
    char a[16][32], b[16][32], pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/%s", d, x);
    snprintf(pb, sizeof pb, "%s/%s", d, y);
    int na = test_losses(pa, a, 16), nb = test_losses(pb, b, 16);
    CHECK(na == steps && nb == steps, "%d and %d loss lines", na, nb);
    for (int i = 0; i < na && i < nb; i++) CHECK(!strcmp(a[i], b[i]), "step %d: %s vs %s (%s)", i + 1, a[i], b[i], why);
    snprintf(pa, sizeof pa, "%s/%s/ckpt/step-%06d/model.safetensors", d, x, steps);
    snprintf(pb, sizeof pb, "%s/%s/ckpt/step-%06d/model.safetensors", d, y, steps);
    CHECK(test_files_equal(pa, pb), "model.safetensors of step %d differ (%s)", steps, why);
}

static void test_resume_is_bit_exact(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_resume");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/full %s --steps 10 --ckpt-every 5", t, td.data, d, td.small);
    CHECK(rc == 0, "full run: %s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/split %s --steps 10 --stop-at 5", t, td.data, d, td.small);
    CHECK(rc == 0, "first half: %s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/split --resume", t, td.data, d);
    CHECK(rc == 0, "resume: %s", out);
    same_runs(d, "full", "split", 10, "resumed");
    char a[16][32], pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/full", d);
    int na = test_losses(pa, a, 16);
    snprintf(pa, sizeof pa, "%s/full/ckpt/step-000010/optimizer.safetensors", d);
    snprintf(pb, sizeof pb, "%s/split/ckpt/step-000010/optimizer.safetensors", d);
    CHECK(test_files_equal(pa, pb), "optimizer.safetensors of step 10 differ");
    /* the loss goes down on this small corpus */
    CHECK(na == 10 && atof(a[9]) < atof(a[0]) - 0.5, "loss %s -> %s", na == 10 ? a[0] : "?", na == 10 ? a[9] : "?");
}

static void test_refusals(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_refuse");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r %s --steps 2", t, td.data, d, td.small);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r %s --steps 2", t, td.data, d, td.small);
    char want[1024];
    snprintf(want, sizeof want, "tern train: %s/r already holds a run (ckpt); continue it with --resume, or choose another folder\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/none --resume", t, td.data, d);
    snprintf(want, sizeof want, "tern train: %s/none: no run to resume here (no such folder)\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/x --n-embd 30 --n-head 4", t, td.data, d);
    CHECK(rc == 2 && !strcmp(out, "tern train: n_embd (30) must be divisible by n_head (4)\n"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/x --bogus 1", t, td.data, d);
    CHECK(rc == 2 && !strcmp(out, "tern train: unknown option '--bogus' (see tern train --help)\n"), "rc %d: %s", rc, out);
}

/* SIGINT during training: the step finishes, a checkpoint is written, exit 0, and --resume
 * goes on to the end. */
static void test_sigint_checkpoints(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_sigint");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out,
                     "%s train --data %s -o %s/r %s --steps 100000 & pid=$!; "
                     "for i in $(seq 400); do grep -q '\"step\":3,' %s/r/metrics.jsonl 2>/dev/null && break; sleep 0.05; done; "
                     "kill -INT $pid; wait $pid",
                     t, td.data, d, td.small, d);
    CHECK(rc == 0, "exit %d: %s", rc, out);
    char p[600];
    snprintf(p, sizeof p, "%s/r", d);
    char *ck;
    CHECK(tern_ckpt_latest(p, &ck) == TERN_OK, "%s", tern_errmsg());
    free(ck);
    CHECK(strstr(out, "stopped on request after step") != NULL, "%s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r --resume --steps 12", t, td.data, d);
    CHECK(rc == 0, "resume: %s", out);
}

/* SIGKILL at random moments while checkpointing every step: every time, `latest` names a whole
 * checkpoint that loads, and --resume continues from it. */
static void test_sigkill_while_checkpointing(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_kill");
    const char *t = test_tern_bin();
    char rd[600];
    snprintf(rd, sizeof rd, "%s/r", d);
    int trials = 8, ok = 0;
    for (int k = 0; k < trials; k++) {
        /* Start (or resume) the run, wait until it writes a new checkpoint, then kill it after a
         * delay drawn from the counter RNG (0 to 0.6 s): a moment while it checkpoints every step. */
        double delay = 0.6 * tern_rng_uniform(2024, 1, (uint64_t)k);
        run_cmd(out, sizeof out,
                "before=$(cat %s/ckpt/latest 2>/dev/null); %s train --data %s -o %s %s --steps 100000 --ckpt-every 1 --keep 2 %s & pid=$!; "
                "for i in $(seq 1200); do now=$(cat %s/ckpt/latest 2>/dev/null); [ -n \"$now\" ] && [ \"$now\" != \"$before\" ] && break; sleep 0.05; done; "
                "sleep %.3f; kill -KILL $pid; wait $pid",
                rd, t, td.data, rd, td.small, k ? "--resume" : "", rd, delay);
        char *ck = NULL;
        tern_status st = tern_ckpt_latest(rd, &ck);
        CHECK(st == TERN_OK, "trial %d: %s", k, tern_errmsg());
        if (st != TERN_OK) continue;
        tern_model *m;
        st = tern_io_open_model(rd, 0, &m, NULL, NULL, NULL);
        CHECK(st == TERN_OK, "trial %d: latest does not load: %s", k, tern_errmsg());
        if (st == TERN_OK) tern_model_free(m);
        free(ck);
        /* the ledger verifies after every kill, even one between a checkpoint and its entry */
        int lrc = run_cmd(out, sizeof out, "%s ledger verify %s", t, rd);
        CHECK(lrc == 0, "trial %d: ledger: %s", k, out);
        ok += st == TERN_OK;
    }
    CHECK(ok == trials, "%d of %d trials resumable", ok, trials);
    /* the resume below checkpoints, which clears the killed runs' half-written folders */
    /* after the last kill, a resume runs to a further step */
    char *ck;
    tern_ckpt_latest(rd, &ck);
    const char *s = ck ? strrchr(ck, '-') : NULL;
    long last = s ? atol(s + 1) : 0;
    free(ck);
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s --resume --steps %ld", t, td.data, rd, last + 2);
    CHECK(rc == 0, "final resume: %s", out);
    run_cmd(out, sizeof out, "ls -A %s/ckpt | grep -c '^[.]\\(tmp\\|del\\)-'", rd);
    CHECK(atoi(out) == 0, "%d half-written checkpoint folders left", atoi(out));
}

static void test_export_init_roundtrip_and_sample(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_export");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r %s --steps 4 && %s export %s/r -o %s/hf", t, td.data, d, td.small, t,
                     d, d);
    CHECK(rc == 0, "%s", out);
    char r[600], hf[600];
    snprintf(r, sizeof r, "%s/r", d);
    snprintf(hf, sizeof hf, "%s/hf", d);
    tern_model *a, *b;
    CHECK(tern_io_open_model(r, 0, &a, NULL, NULL, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_io_open_model(hf, 0, &b, NULL, NULL, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(test_same_params(a, b),
          "exported parameters differ from the run's");
    tern_model_free(a);
    tern_model_free(b);
    static const char *files[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt", "generation_config.json"};
    for (int i = 0; i < 5; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", hf, files[i]);
        CHECK(tern_path_exists(p), "export lacks %s", files[i]);
    }
    /* --init from the export: its first checkpoint's starting point is the export itself */
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r2 --init %s --seq 32 --batch 4 --steps 1 --lr 1e-9 --warmup 0 --threads 2", t,
                 td.data, d, hf);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, "%s eval %s --data %s --batch 4 --seq 32 && %s eval %s --data %s --batch 4 --seq 32", t, hf, td.data, t,
                 r, td.data);
    CHECK(rc == 0, "%s", out);
    /* "<model> on <data> (val): loss X, perplexity Y over N tokens": the part from "loss" on */
    char *l1p = strstr(out, ": loss "), *l2p = l1p ? strstr(l1p + 1, ": loss ") : NULL;
    char *e1 = l1p ? strchr(l1p, '\n') : NULL;
    CHECK(l1p && l2p && e1 && !strncmp(l1p, l2p, (size_t)(e1 - l1p)), "eval of export and run differ: %s", out);
    /* sampling: the same seed gives the same text */
    char s1[4096], s2[4096];
    rc = run_cmd(s1, sizeof s1, "%s sample %s --prompt 'ROMEO:' -n 40 --seed 7", t, r);
    CHECK(rc == 0, "%s", s1);
    run_cmd(s2, sizeof s2, "%s sample %s --prompt 'ROMEO:' -n 40 --seed 7", t, r);
    CHECK(!strcmp(s1, s2), "same seed, different text:\n%s\n%s", s1, s2);
    CHECK(!strncmp(s1, "ROMEO:", 6), "sample does not start with the prompt: %s", s1);
    run_cmd(s2, sizeof s2, "%s sample %s --prompt 'ROMEO:' -n 40 --seed 8", t, r);
    CHECK(strcmp(s1, s2) != 0, "seeds 7 and 8 gave the same text");
}

/* tern's evaluation of the PyTorch fixture model on a val split equals PyTorch's loss over the
 * same windows (tools/make_fixtures.py computes it in float64). */
static void test_eval_matches_torch(void) {
    tern_safetensors *st;
    CHECK(tern_st_open(&st, "tests/fixtures/gpt2_v300.safetensors") == TERN_OK, "%s", tern_errmsg());
    if (!st) return;
    tern_model_config cfg = tern_model_config_gpt2(atoi(tern_st_meta(st, "n_layer")), atoi(tern_st_meta(st, "n_head")),
                                                   atoi(tern_st_meta(st, "n_embd")), atoi(tern_st_meta(st, "n_ctx")),
                                                   atoi(tern_st_meta(st, "vocab_size")));
    size_t B = (size_t)atoi(tern_st_meta(st, "B")), T = (size_t)atoi(tern_st_meta(st, "T"));
    tern_model *m;
    CHECK(tern_model_init(&m, &cfg, NULL) == TERN_OK, "%s", tern_errmsg());
    /* the fixture holds more than parameters, so load them one by one */
    size_t n;
    const tern_tensor *t = tern_model_tensors(m, &n);
    float *p = malloc(tern_model_num_params(m) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        CHECK(tern_st_read_f32(st, t[i].name, p + t[i].offset, t[i].ndim, t[i].shape) == TERN_OK, "%s", tern_errmsg());
    test_model_set(m, TERN_PARAMS, p);
    free(p);
    const tern_st_entry *e = tern_st_find(st, "eval_tokens");
    float want;
    CHECK(e && tern_st_read_f32(st, "eval_loss", &want, 0, NULL) == TERN_OK, "fixture lacks eval data");
    const char *d = test_tmpdir("train_eval");
    char shard[600];
    snprintf(shard, sizeof shard, "%s/val_000000.bin", d);
    tern_shard_writer *w;
    uint64_t ntok;
    tern_manifest man;
    memset(&man, 0, sizeof man);
    CHECK(tern_shard_writer_open(&w, shard, (size_t)cfg.vocab_size, NULL, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_shard_writer_add(w, tern_st_data(st, e), e->numel) == TERN_OK, "%s", tern_errmsg());
    tern_manifest_shard ms = {"val_000000.bin", TERN_SPLIT_VAL, 0, {0}};
    CHECK(tern_shard_writer_close(w, &ntok, ms.checksum) == TERN_OK, "%s", tern_errmsg());
    ms.n_tokens = ntok;
    man.vocab_size = (uint64_t)cfg.vocab_size;
    man.eot = cfg.vocab_size - 1;
    man.bytes_per_token = tern_shard_bytes_per_token((size_t)cfg.vocab_size);
    man.n_shards = 1;
    man.shards = &ms;
    CHECK(tern_manifest_write(&man, d, NULL) == TERN_OK, "%s", tern_errmsg());
    tern_dataset *ds = NULL;
    CHECK(tern_dataset_open(&ds, d, "val", NULL, NULL) == TERN_OK, "%s", tern_errmsg());
    if (!ds) {
        tern_model_free(m);
        tern_st_free(st);
        return;
    }
    double loss = 0;
    size_t ntokens = 0;
    CHECK(tern_eval_loss(m, ds, B, T, 0, &loss, &ntokens) == TERN_OK, "%s", tern_errmsg());
    CHECK(ntokens == 3 * B * T, "evaluated %zu tokens, expected 3 windows of %zu", ntokens, B * T);
    CHECK(fabs(loss - want) <= 1e-5 * want, "eval loss %.8f vs torch %.8f", loss, want);
    printf("  eval: tern %.7f, torch %.7f\n", loss, want);
    tern_dataset_free(ds);
    tern_model_free(m);
    tern_st_free(st);
}

/* --recompute: the same losses and weights, bit for bit; and a --max-memory that the run fits only
 * with it names it as the way to fit, then lets it start. */
static void test_recompute(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_recompute");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/plain %s --steps 4 && %s train --data %s -o %s/rc %s --steps 4 --recompute",
                     t, td.data, d, td.small, t, td.data, d, td.small);
    CHECK(rc == 0, "%s", out);
    same_runs(d, "plain", "rc", 4, "--recompute");
    /* SMALL_FLAGS' model: 2 layers, 2 heads, width 32, context 32, vocabulary 320, batch 4 */
    tern_model_config c = tern_model_config_gpt2(2, 2, 32, 32, 320);
    double state = 4.0 * (double)tern_model_config_num_params(&c) * sizeof(float);
    double plain = (double)tern_model_activation_bytes_for(&c, 4, 32, 0), less = (double)tern_model_activation_bytes_for(&c, 4, 32, 1);
    CHECK(less < 0.75 * plain, "recomputation keeps %.0f of %.0f activation bytes", less, plain);
    long long limit = (long long)(state + (plain + less) / 2);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/mm %s --steps 2 --max-memory %lld", t, td.data, d, td.small, limit);
    char want[512];
    const double gib = 1024.0 * 1024 * 1024;
    snprintf(want, sizeof want, "; --recompute would fit (activations %.2f GiB, the blocks' forward pass run twice)\n", less / gib);
    CHECK(rc == 1 && strstr(out, want), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/mm %s --steps 2 --max-memory %lld --recompute", t, td.data, d, td.small, limit);
    CHECK(rc == 0, "rc %d: %s", rc, out);
}

/* Whether every tensor of a safetensors file is F32 (and it has some): its header (a length of 8
 * bytes, little-endian, then JSON) names each tensor's dtype. */
static int all_f32(const char *path) {
    char *b;
    size_t n;
    if (tern_read_file(path, &b, &n) != TERN_OK) return 0;
    uint64_t hl = 0;
    for (int i = 0; i < 8 && n >= 8; i++) hl |= (uint64_t)(unsigned char)b[i] << (8 * i);
    char *h = n >= 8 && hl <= n - 8 ? strndup(b + 8, (size_t)hl) : NULL;
    free(b);
    if (!h) return 0;
    int tensors = 0, f32 = 0;
    for (char *p = h; (p = strstr(p, "\"dtype\"")); p++) {
        tensors++;
        f32 += !strncmp(p, "\"dtype\":\"F32\"", strlen("\"dtype\":\"F32\""));
    }
    free(h);
    return tensors > 0 && tensors == f32;
}

/* --precision bf16 belongs to the invocation: a bf16 run stops, resumes in fp32, and resumes again
 * in bf16; its checkpoints hold fp32, and its losses stay within 2% of an fp32 run's. The emulated
 * bf16 of another kernel set (--device cpu) gives nearly the same run. */
static void test_bf16_resume(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_bf16");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/fp32 %s --steps 8", t, td.data, d, td.small);
    CHECK(rc == 0, "fp32 run: %s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/bf16 %s --steps 8 --stop-at 3 --precision bf16", t, td.data, d, td.small);
    CHECK(rc == 0 && strstr(out, " in bf16 ("), "bf16 run: %s", out);
    printf("  %.*s\n", (int)strcspn(out, "\n"), out);
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/bf16/ckpt/step-000003/model.safetensors", d);
    snprintf(pb, sizeof pb, "%s/bf16/ckpt/step-000003/optimizer.safetensors", d);
    CHECK(all_f32(pa) && all_f32(pb), "the bf16 run's checkpoint does not hold fp32 tensors only");
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/bf16 --resume --stop-at 6 --precision fp32", t, td.data, d);
    CHECK(rc == 0 && strstr(out, " in fp32\n"), "resumed in fp32: %s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/bf16 --resume --precision bf16", t, td.data, d);
    CHECK(rc == 0 && strstr(out, " in bf16 ("), "resumed in bf16: %s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/emul %s --steps 8 --precision bf16 --device cpu", t, td.data, d, td.small);
    CHECK(rc == 0 && strstr(out, " in bf16 (emulated: operands rounded to bf16, fp32 products)"), "emulated bf16 run: %s", out);
    snprintf(pa, sizeof pa, "%s/bf16/ckpt/step-000008/model.safetensors", d);
    CHECK(all_f32(pa), "the resumed run's checkpoint does not hold fp32 tensors only");
    char a[16][32], b[16][32], e[16][32];
    snprintf(pa, sizeof pa, "%s/fp32", d);
    int na = test_losses(pa, a, 16);
    snprintf(pa, sizeof pa, "%s/bf16", d);
    int nb = test_losses(pa, b, 16);
    snprintf(pa, sizeof pa, "%s/emul", d);
    int ne = test_losses(pa, e, 16);
    CHECK(na == 8 && nb == 8 && ne == 8, "%d, %d and %d loss lines", na, nb, ne);
    double worst = 0, worst_emul = 0;
    for (int i = 0; i < 8 && i < na && i < nb && i < ne; i++) {
        double la = atof(a[i]), lb = atof(b[i]), le = atof(e[i]);
        CHECK(isfinite(lb) && fabs(lb - la) <= 0.02 * la, "step %d: bf16 loss %s against fp32 %s", i + 1, b[i], a[i]);
        CHECK(isfinite(le) && fabs(le - lb) <= 0.005 * lb, "step %d: emulated bf16 loss %s against %s", i + 1, e[i], b[i]);
        worst = fmax(worst, fabs(lb - la) / la);
        worst_emul = fmax(worst_emul, fabs(le - lb) / lb);
    }
    printf("  8 steps (bf16 3, fp32 3, bf16 2): losses within %.3f%% of the fp32 run's; emulated bf16 within %.3f%% of them\n",
           100 * worst, 100 * worst_emul);
}

/* Non-finite steps are skipped and logged; after --max-bad-steps in a row the run stops with a
 * message and the last good checkpoint; --detect-anomaly names the first kernel. */
static void test_numeric_faults(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_numeric");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r %s --steps 30 --lr 1e30 --grad-clip 0 --max-bad-steps 3 --ckpt-every 1 2>&1 | tail -1; exit $(%s train --data %s -o %s/r --resume >/dev/null 2>&1; echo 0)",
                     t, td.data, d, td.small, t, td.data, d);
    (void)rc;
    CHECK(!strcmp(out, "tern train: 3 non-finite steps in a row (last at step 4); stopping, the last good checkpoint is kept\n"), "%s", out);
    char p[600];
    snprintf(p, sizeof p, "%s/r/metrics.jsonl", d);
    char *text;
    size_t n;
    CHECK(tern_read_file(p, &text, &n) == TERN_OK, "%s", tern_errmsg());
    int skipped = 0, bad = 0;
    for (char *q = text; (q = strstr(q, "\"skipped\":true")); q++) skipped++;
    /* every line is JSON, the skipped steps' non-finite loss and norm as null */
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        bad += !j;
        cJSON_Delete(j);
    }
    free(text);
    CHECK(bad == 0, "%d lines of metrics.jsonl are not JSON", bad);
    CHECK(skipped >= 3, "%d skipped steps logged", skipped);
    snprintf(p, sizeof p, "%s/r", d);
    tern_model *m;
    CHECK(tern_io_open_model(p, 0, &m, NULL, NULL, NULL) == TERN_OK, "last good checkpoint: %s", tern_errmsg());
    if (m) {
        float *w = test_model_copy(m, TERN_PARAMS);
        int finite = 1;
        for (size_t i = 0; i < tern_model_num_params(m); i++) finite &= isfinite(w[i]) != 0;
        CHECK(finite, "the kept checkpoint holds non-finite weights");
        free(w);
        tern_model_free(m);
    }
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/a %s --steps 30 --lr 1e30 --grad-clip 0 --detect-anomaly 2>&1 >/dev/null | tail -1", t,
                 td.data, d, td.small);
    CHECK(strstr(out, "tern train: step 2, micro-batch 0: non-finite value in the forward pass: matmul_fwd (attn.c_attn) of block 0 produced ") == out,
          "%s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/mm %s --max-memory 1M", t, td.data, d, td.small);
    CHECK(rc == 1 && strstr(out, "but --max-memory is 0.00 GiB; ") && strstr(out, "tern train: the run needs "), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/mm %s --max-memory lots", t, td.data, d, td.small);
    CHECK(rc == 1 && !strcmp(out, "tern train: --max-memory: 'lots' is not a size (e.g. 8G, 512M, 4096; 0 = no check)\n"), "rc %d: %s", rc, out);
}

static int count_tb_scalar(void *ctx, const tern_tb_item *it) {
    if (it->kind == TERN_TB_SCALAR) ++*(int *)ctx;
    return TERN_OK;
}

/* Numbers in metrics.jsonl lines other than step and elapsed_s: what the event file must hold. */
static int metric_numbers(const char *rundir) {
    char p[800], *text;
    size_t n;
    snprintf(p, sizeof p, "%s/metrics.jsonl", rundir);
    if (tern_read_file(p, &text, &n) != TERN_OK) return -1;
    int count = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        for (cJSON *c = j ? j->child : NULL; c; c = c->next)
            count += cJSON_IsNumber(c) && strcmp(c->string, "step") && strcmp(c->string, "elapsed_s");
        cJSON_Delete(j);
    }
    free(text);
    return count;
}

/* What the run writes to be watched and what it reads: TensorBoard's event file line by line
 * (off with --tensorboard 0 and with sealed metrics), a benchmark task's score beside the val
 * loss, and a mixture of two data folders, whose resume is bit for bit and whose val loss is
 * reported per folder. */
static void test_watch_task_and_mixture(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_watch");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/w %s --steps 6 --eval-every 3", t, td.data, d, td.small);
    CHECK(rc == 0, "%s", out);
    char p[700];
    snprintf(p, sizeof p, "%s/w", d);
    int want = metric_numbers(p), got = 0;
    rc = run_cmd(out, sizeof out, "ls %s/w/tb/events.out.tfevents.*", d);
    out[strcspn(out, "\n")] = 0;
    CHECK(rc == 0 && tern_tb_read_file(out, count_tb_scalar, &got, NULL) == TERN_OK, "%s: %s", out, tern_errmsg());
    CHECK(want >= 30 && got == want, "%d scalars in the event file, %d numbers in metrics.jsonl", got, want);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/nt %s --steps 2 --tensorboard 0 && test ! -e %s/nt/tb", t, td.data, d, td.small, d);
    CHECK(rc == 0, "--tensorboard 0 wrote tb/: %s", out);
    /* a task scored with the val loss, from a task file of 3 items (the shipped one's first) */
    rc = run_cmd(out, sizeof out, "bzip2 -dc data/eval/hellaswag/hellaswag_val_full.txt.bz2 | head -n 18 > %s/hs.txt", d);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/task %s --steps 4 --eval-every 2 --eval-task hellaswag --eval-task-data %s/hs.txt",
                 t, td.data, d, td.small, d);
    CHECK(rc == 0 && strstr(out, "step 2: hellaswag accuracy ") && strstr(out, " over 3 items"), "%s", out);
    snprintf(p, sizeof p, "%s/task/metrics.jsonl", d);
    char *text = NULL;
    size_t n;
    CHECK(tern_read_file(p, &text, &n) == TERN_OK && strstr(text, "{\"step\":4,\"hellaswag_acc\":") && strstr(text, "\"hellaswag_items\":3"),
          "%s", text ? text : "");
    free(text);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/task2 %s --eval-task squad", t, td.data, d, td.small);
    CHECK(rc == 1 && strstr(out, "squad"), "rc %d: %s", rc, out);
    /* a mixture of the data folder with itself in shares 3:1: resumed bit for bit, val per folder */
    rc = run_cmd(out, sizeof out, "ln -sfn %s %s/other", td.data, d);
    char mix[1400];
    snprintf(mix, sizeof mix, "%s:3,%s/other:1", td.data, d);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/mfull %s --steps 8 --eval-every 4", t, mix, d, td.small);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/msplit %s --steps 8 --eval-every 4 --stop-at 4 && %s train -o %s/msplit --resume", t,
                 mix, d, td.small, t, d);
    CHECK(rc == 0, "%s", out);
    same_runs(d, "mfull", "msplit", 8, "a mixture resumed");
    snprintf(p, sizeof p, "%s/mfull/metrics.jsonl", d);
    text = NULL;
    CHECK(tern_read_file(p, &text, &n) == TERN_OK && strstr(text, "\"val_loss_other\":"), "%s", text ? text : "");
    /* each step line counts the tokens drawn from each folder: 8 windows of 4 x 32 tokens in all */
    const char *l8 = text ? strstr(text, "{\"step\":8,\"loss\"") : NULL;
    cJSON *j = l8 ? cJSON_ParseWithOpts(l8, NULL, 0) : NULL;
    const cJSON *ta = cJSON_GetObjectItemCaseSensitive(j, "tokens_data"), *tb = cJSON_GetObjectItemCaseSensitive(j, "tokens_other");
    CHECK(cJSON_IsNumber(ta) && cJSON_IsNumber(tb) && ta->valuedouble + tb->valuedouble == 8 * 4 * 32 && ta->valuedouble > 0,
          "step 8: %.200s", l8 ? l8 : "no line");
    cJSON_Delete(j);
    free(text);
}

/* Write faults: a full disk (a file-size limit), a read-only run folder and a data file that
 * vanished: each a clear error and a non-zero exit, the previous checkpoint intact and resumable. */
static void test_write_faults(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_faults");
    const char *t = test_tern_bin();
    char rd[600];
    snprintf(rd, sizeof rd, "%s/r", d);
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s %s --steps 2", t, td.data, rd, td.small);
    CHECK(rc == 0, "%s", out);
    /* full disk: files may not grow past 64 KiB; the model file of step 3 is larger */
    rc = run_cmd(out, sizeof out, "ulimit -f 64; %s train --data %s -o %s --resume --steps 3 2>&1 >/dev/null | tail -1; exit $(ulimit -f 64; %s train --data %s -o %s --resume --steps 3 >/dev/null 2>&1; echo $?)",
                 t, td.data, rd, t, td.data, rd);
    CHECK(rc == 1, "exit %d under a full disk", rc);
    CHECK(strstr(out, "tern train: ") == out && strstr(out, "/model.safetensors: write failed: File too large"), "%s", out);
    char *ck;
    CHECK(tern_ckpt_latest(rd, &ck) == TERN_OK && strstr(ck, "step-000002"), "latest moved: %s", ck ? ck : tern_errmsg());
    free(ck);
    rc = run_cmd(out, sizeof out, "ls -A %s/ckpt | tr '\n' ' '", rd);
    CHECK(!strcmp(out, "latest step-000002 "), "left behind: %s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s --resume --steps 3", t, td.data, rd);
    CHECK(rc == 0, "resume after the disk filled: %s", out);
    /* a read-only run folder (a read-only tmpfs: root ignores permission bits) */
    char ro[600];
    snprintf(ro, sizeof ro, "%s/ro", d);
    if (run_cmd(out, sizeof out, "mkdir -p %s && mount -t tmpfs -o size=4m tmpfs %s && cp -r %s %s/ && mount -o remount,ro %s", ro, ro, rd, ro, ro) == 0) {
        rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/r --resume --steps 4", t, td.data, ro);
        CHECK(rc == 1 && strstr(out, "Read-only file system"), "rc %d: %s", rc, out);
        char rr[700];
        snprintf(rr, sizeof rr, "%s/r", ro);
        CHECK(tern_ckpt_latest(rr, &ck) == TERN_OK, "%s", tern_errmsg());
        free(ck);
        run_cmd(out, sizeof out, "umount %s", ro);
    } else {
        printf("  read-only folder: cannot mount a tmpfs here (%s), not checked\n", out);
    }
    /* a vanished data file: resuming says which file is missing */
    rc = run_cmd(out, sizeof out, "cp -r %s %s/data && rm %s/data/train_000000.bin && %s train --data %s/data -o %s --resume --steps 4", td.data, d, d, t, d,
                 rd);
    CHECK(rc == 1 && strstr(out, "train_000000.bin") && strstr(out, "tern train: "), "rc %d: %s", rc, out);
    CHECK(tern_ckpt_latest(rd, &ck) == TERN_OK && strstr(ck, "step-000003"), "%s", tern_errmsg());
    free(ck);
}

/* The run's ledger: started with the hardware's export-control figures, a checkpoint and a resume
 * recorded, signed with --sign-key and verified with the public key; a checkpoint file changed
 * afterwards is caught. */
static void test_run_ledger(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("train_ledger");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s keygen --sign -o %s/sign.key >/dev/null && %s train --data %s -o %s/r %s --steps 4 --stop-at 2 --sign-key %s/sign.key && "
                     "%s train --data %s -o %s/r --resume --sign-key %s/sign.key",
                     t, d, t, td.data, d, td.small, d, t, td.data, d, d);
    CHECK(rc == 0, "%s", out);
    rc = run_cmd(out, sizeof out, "%s ledger verify %s/r --pub %s/sign.key.pub", t, d, d);
    CHECK(rc == 0 && strstr(out, "6 entries, hash chain intact, run ended"), "rc %d: %s", rc, out);
    char p[600], *text;
    size_t n;
    snprintf(p, sizeof p, "%s/r/ledger.jsonl", d);
    CHECK(tern_read_file(p, &text, &n) == TERN_OK, "%s", tern_errmsg());
    if (text) {
        char *nl = strchr(text, '\n');
        if (nl) *nl = 0;
        CHECK(strstr(text, "\"type\":\"start\"") && strstr(text, "\"eccn_3a090\"") && strstr(text, "\"tpp\"") &&
                  strstr(text, "\"kind\":\"cpu\"") && strstr(text, "\"ranks\":1,\"hosts\":[{"),
              "start entry lacks the hardware's figures: %.300s", text);
        free(text);
    }
    /* a checkpoint file changed after its entry was written */
    rc = run_cmd(out, sizeof out, "printf x >> %s/r/ckpt/step-000004/state.json; %s ledger verify %s/r --pub %s/sign.key.pub", d, t, d, d);
    CHECK(rc != 0 && strstr(out, "step-000004") && strstr(out, "state.json"), "rc %d: %s", rc, out);
}

int main(void) {
    RUN(test_eval_matches_torch);
    RUN(test_resume_is_bit_exact);
    RUN(test_refusals);
    RUN(test_sigint_checkpoints);
    RUN(test_sigkill_while_checkpointing);
    RUN(test_export_init_roundtrip_and_sample);
    RUN(test_recompute);
    RUN(test_bf16_resume);
    RUN(test_numeric_faults);
    RUN(test_write_faults);
    RUN(test_run_ledger);
    RUN(test_watch_task_and_mixture);
    return check_exit();
}
