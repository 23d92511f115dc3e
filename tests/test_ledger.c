/* Tests of the run ledger: a run's entries written and verified; every tampering verification
 * must catch (an edited, deleted, reordered or hand-appended entry, signed and unsigned, a
 * checkpoint file changed after its entry, a resume from an unrecorded checkpoint, a torn
 * last line, a rewritten chain against a head hash sent home); appending on resume; and the
 * `tern ledger` command. Entries are also built here from docs/FORMATS.md alone (forge_line),
 * so the verifier is checked against the written format, not only against its own writer. */
#include "check.h"
#include "tern.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static char *ledger_path(const char *rundir) { return tern_path_join(rundir, TERN_LEDGER_FILE); }

/* The ledger's lines (without newlines); returns the count. */
static int read_lines(const char *rundir, char lines[][4096], int max) {
    char *p = ledger_path(rundir), *text;
    size_t n;
    TERN_ASSERT(tern_read_file(p, &text, &n) == TERN_OK);
    int k = 0;
    char *s = text;
    while (*s && k < max) {
        char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        TERN_ASSERT(len < 4096);
        memcpy(lines[k], s, len);
        lines[k][len] = 0;
        k++;
        s += len + (nl ? 1 : 0);
    }
    free(text);
    free(p);
    return k;
}

static void write_lines(const char *rundir, char lines[][4096], int n) {
    char *p = ledger_path(rundir);
    FILE *f = fopen(p, "wb");
    TERN_ASSERT(f);
    for (int i = 0; i < n; i++) fprintf(f, "%s\n", lines[i]);
    fclose(f);
    free(p);
}

static void put_file(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    TERN_ASSERT(f);
    fputs(s, f);
    fclose(f);
}

/* An entry built from the format's description: prev is the BLAKE2b-256 of the previous line's
 * bytes; a signature covers every byte before ,"sig":"..."}. */
static void forge_line(char *out, size_t cap, const char *prev_line, int seq, const char *type, const char *data,
                       const tern_sign_key *sk) {
    uint8_t h[32];
    char prev[65];
    tern_hash(h, prev_line, strlen(prev_line));
    tern_hex(prev, h, 32);
    int n = snprintf(out, cap, "{\"v\":1,\"seq\":%d,\"type\":\"%s\",\"time\":\"2025-01-01T00:00:00Z\",\"prev\":\"%s\",\"data\":%s",
                     seq, type, prev, data);
    if (sk) {
        uint8_t sig[64];
        char sh[129];
        tern_sign_detached(sk, sig, out, (size_t)n);
        tern_hex(sh, sig, 64);
        snprintf(out + n, cap - (size_t)n, ",\"sig\":\"%s\"}", sh);
    } else {
        snprintf(out + n, cap - (size_t)n, "}");
    }
}

/* A run folder with a ledger of six entries: start, checkpoints at steps 1 and 2, a resume from
 * step 1 (after reopening), a 'policy' entry, end.
 * Checkpoints hold model.safetensors and state.json. */
static void make_run(const char *rundir, const tern_sign_key *sk) {
    uint8_t cfg[32], man[32], tok[32];
    tern_hash(cfg, "config", 6);
    tern_hash(man, "manifest", 8);
    tern_hash(tok, "tokenizer", 9);
    cJSON *hw = cJSON_Parse("{\"cpu\":\"test cpu\",\"cores\":2}"), *site = cJSON_Parse("{\"country\":\"XX\",\"operator\":\"test\"}");
    tern_ledger_start info = {"run-1", cfg, man, tok, hw, site, NULL};
    tern_ledger *l;
    CHECK(tern_ledger_create(&l, rundir, sk, &info) == TERN_OK, "%s", tern_errmsg());
    const char *files[] = {"model.safetensors", "state.json"};
    for (int step = 1; step <= 2; step++) {
        char d[64], p[512];
        snprintf(d, sizeof d, "%s/ckpt/step-%d", rundir, step);
        CHECK(tern_mkdir_p(d) == TERN_OK, "mkdir");
        snprintf(p, sizeof p, "%s/model.safetensors", d);
        put_file(p, step == 1 ? "weights one" : "weights two");
        snprintf(p, sizeof p, "%s/state.json", d);
        put_file(p, "{}");
        snprintf(d, sizeof d, "ckpt/step-%d", step);
        cJSON *extra = cJSON_Parse("{\"loss\":3.25}");
        CHECK(tern_ledger_checkpoint(l, step, d, files, 2, extra) == TERN_OK, "%s", tern_errmsg());
        cJSON_Delete(extra);
    }
    tern_ledger_close(l);
    /* a resume, as a restarted process does it */
    CHECK(tern_ledger_open(&l, rundir, sk) == TERN_OK, "%s", tern_errmsg());
    CHECK(l && tern_ledger_entries(l) == 3, "entries after reopen");
    CHECK(tern_ledger_resume(l, 1, "ckpt/step-1", files, 2, NULL) == TERN_OK, "%s", tern_errmsg());
    cJSON *policy = cJSON_Parse("{\"verdict\":\"allowed\"}");
    CHECK(tern_ledger_append(l, "policy", policy) == TERN_OK, "%s", tern_errmsg());
    cJSON_Delete(policy);
    CHECK(tern_ledger_end(l, "completed", NULL) == TERN_OK, "%s", tern_errmsg());
    tern_ledger_close(l);
    cJSON_Delete(hw);
    cJSON_Delete(site);
}

static void expect_break(const char *rundir, const uint8_t *pub, const char *head, uint64_t line, const char *what) {
    tern_ledger_report rep;
    tern_status st = tern_ledger_verify(rundir, pub, head, &rep);
    char *p = ledger_path(rundir), want[2048];
    if (line) snprintf(want, sizeof want, "%s: line %llu: %s", p, (unsigned long long)line, what);
    else snprintf(want, sizeof want, "%s: %s", p, what);
    CHECK(st == TERN_EAUTH, "status %d: %s", st, tern_errmsg());
    CHECK(!strcmp(tern_errmsg(), want), "got      '%s'\n    expected '%s'", tern_errmsg(), want);
    CHECK(rep.bad_line == (line ? line : 1), "bad line %llu, expected %llu", (unsigned long long)rep.bad_line,
          (unsigned long long)line);
    free(p);
}

/* ---- a run, written and verified ---- */

static void test_run_ledger_verifies(void) {
    const char *d = test_tmpdir("ledger_run");
    make_run(d, NULL);
    tern_ledger_report rep;
    CHECK(tern_ledger_verify(d, NULL, NULL, &rep) == TERN_OK, "%s", tern_errmsg());
    CHECK(rep.entries == 6 && rep.bad_line == 0 && !rep.is_signed && rep.ended && rep.ckpt_ok == 2 && rep.ckpt_files == 4 &&
              rep.ckpt_gone == 0,
          "entries %llu bad %llu signed %d ended %d ok %llu files %llu gone %llu", (unsigned long long)rep.entries,
          (unsigned long long)rep.bad_line, rep.is_signed, rep.ended, (unsigned long long)rep.ckpt_ok,
          (unsigned long long)rep.ckpt_files, (unsigned long long)rep.ckpt_gone);
    char lines[8][4096];
    int n = read_lines(d, lines, 8);
    CHECK(n == 6, "%d lines", n);
    /* the start entry holds what ran where: host, hardware figures, options, data and code identity */
    cJSON *j = cJSON_Parse(lines[0]);
    const cJSON *data = cJSON_GetObjectItem(j, "data");
    char host[256] = "";
    gethostname(host, sizeof host);
    uint8_t h[32];
    char hex[65];
    tern_hash(h, "manifest", 8);
    tern_hex(hex, h, 32);
    CHECK(!strcmp(cJSON_GetObjectItem(data, "run_id")->valuestring, "run-1") &&
              !strcmp(cJSON_GetObjectItem(data, "tern_version")->valuestring, TERN_VERSION) &&
              !strcmp(cJSON_GetObjectItem(data, "host")->valuestring, host) &&
              !strcmp(cJSON_GetObjectItem(data, "manifest")->valuestring, hex) &&
              cJSON_GetObjectItem(cJSON_GetObjectItem(data, "hardware"), "cores")->valueint == 2 &&
              !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(data, "site"), "country")->valuestring, "XX") &&
              !cJSON_GetObjectItem(data, "signer"),
          "start entry: %s", lines[0]);
    CHECK(!strncmp(lines[0], "{\"v\":1,\"seq\":1,\"type\":\"start\",\"time\":\"", 38), "line 1 begins: %.60s", lines[0]);
    CHECK(strstr(lines[0], "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\""), "zero prev");
    cJSON_Delete(j);
    /* a checkpoint entry records its files' hashes, computed from the bytes on disk */
    j = cJSON_Parse(lines[1]);
    data = cJSON_GetObjectItem(j, "data");
    tern_hash(h, "weights one", 11);
    tern_hex(hex, h, 32);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "type")->valuestring, "checkpoint") &&
              cJSON_GetObjectItem(data, "step")->valueint == 1 &&
              !strcmp(cJSON_GetObjectItem(data, "dir")->valuestring, "ckpt/step-1") &&
              !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(data, "files"), "model.safetensors")->valuestring, hex) &&
              cJSON_GetObjectItem(data, "loss")->valuedouble == 3.25,
          "checkpoint entry: %s", lines[1]);
    /* each prev is the hash of the line before */
    tern_hash(h, lines[0], strlen(lines[0]));
    tern_hex(hex, h, 32);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "prev")->valuestring, hex), "prev of line 2");
    cJSON_Delete(j);
    j = cJSON_Parse(lines[3]);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "type")->valuestring, "resume") &&
              !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "host")->valuestring, host),
          "resume: %s", lines[3]);
    cJSON_Delete(j);
    /* the head is the hash of the last line */
    tern_hash(h, lines[5], strlen(lines[5]));
    tern_hex(hex, h, 32);
    CHECK(!strcmp(rep.head, hex), "head %s", rep.head);
    /* an entry forged from the spec alone verifies like the writer's own */
    char forged[4096];
    forge_line(forged, sizeof forged, lines[5], 7, "note", "{\"text\":\"hand-written\"}", NULL);
    strcpy(lines[6], forged);
    write_lines(d, lines, 7);
    CHECK(tern_ledger_verify(d, NULL, NULL, &rep) == TERN_OK && rep.entries == 7 && !rep.ended, "forged: %s", tern_errmsg());
    /* checkpoints pruned from disk are counted, not faulted */
    char out[512];
    CHECK(run_cmd(out, sizeof out, "rm -r '%s/ckpt/step-1'", d) == 0, "rm");
    CHECK(tern_ledger_verify(d, NULL, NULL, &rep) == TERN_OK && rep.ckpt_ok == 1 && rep.ckpt_gone == 1, "%s", tern_errmsg());
}

/* ---- tampering, unsigned ---- */

static void test_unsigned_tampering(void) {
    const char *d = test_tmpdir("ledger_unsigned");
    make_run(d, NULL);
    char orig[8][4096], lines[8][4096];
    int n = read_lines(d, orig, 8);
    tern_ledger_report rep;
    CHECK(tern_ledger_verify(d, NULL, NULL, &rep) == TERN_OK, "%s", tern_errmsg());
    char head[65];
    strcpy(head, rep.head);

    /* an edited entry: the next line's prev no longer matches */
    memcpy(lines, orig, sizeof orig);
    char *loss = strstr(lines[2], "3.25");
    TERN_ASSERT(loss);
    loss[0] = '2';
    write_lines(d, lines, n);
    expect_break(d, NULL, NULL, 4, "prev hash does not match line 3 (an entry was edited, removed or inserted)");
    /* a deleted entry */
    memcpy(lines, orig, sizeof orig);
    for (int i = 2; i < n - 1; i++) strcpy(lines[i], orig[i + 1]);
    write_lines(d, lines, n - 1);
    expect_break(d, NULL, NULL, 3, "seq is 4, expected 3 (entries were removed, inserted or reordered)");
    /* reordered entries */
    memcpy(lines, orig, sizeof orig);
    strcpy(lines[1], orig[2]);
    strcpy(lines[2], orig[1]);
    write_lines(d, lines, n);
    expect_break(d, NULL, NULL, 2, "seq is 3, expected 2 (entries were removed, inserted or reordered)");
    /* an entry appended by hand whose prev is not the last line's hash */
    memcpy(lines, orig, sizeof orig);
    forge_line(lines[n], sizeof lines[n], orig[n - 2], n + 1, "checkpoint", "{}", NULL);
    write_lines(d, lines, n + 1);
    expect_break(d, NULL, NULL, 7, "prev hash does not match line 6 (an entry was edited, removed or inserted)");
    /* the first line replaced */
    memcpy(lines, orig, sizeof orig);
    forge_line(lines[0], sizeof lines[0], "x", 1, "start", "{}", NULL);
    write_lines(d, lines, n);
    expect_break(d, NULL, NULL, 1, "prev hash is not all zeros (the ledger does not start here)");
    /* not JSON; a torn last line; an empty file */
    memcpy(lines, orig, sizeof orig);
    strcpy(lines[4], "garbage");
    write_lines(d, lines, n);
    expect_break(d, NULL, NULL, 5, "not a JSON object");
    write_lines(d, orig, n);
    char *p = ledger_path(d), out[256];
    CHECK(run_cmd(out, sizeof out, "truncate -s -10 '%s'", p) == 0, "truncate");
    expect_break(d, NULL, NULL, 6, "incomplete entry (no newline at the end): the writer stopped mid-entry, or the file was cut");
    /* ...which the appender (a resumed run) repairs: the fragment is cut off and a "repair" entry
     * records its size, so the chain verifies again with the cut in it */
    tern_ledger *l;
    CHECK(tern_ledger_open(&l, d, NULL) == TERN_OK, "open torn: %s", tern_errmsg());
    tern_ledger_close(l);
    CHECK(tern_ledger_verify(d, NULL, NULL, &rep) == TERN_OK && rep.entries == (uint64_t)n, "after repair: %s", tern_errmsg());
    read_lines(d, lines, 8);
    char want[128];
    snprintf(want, sizeof want, "\"type\":\"repair\",");
    CHECK(strstr(lines[n - 1], want) != NULL, "last entry: %s", lines[n - 1]);
    snprintf(want, sizeof want, "\"data\":{\"dropped_bytes\":%zu,", strlen(orig[n - 1]) - 9);
    CHECK(strstr(lines[n - 1], want) != NULL, "last entry: %s", lines[n - 1]);
    /* a file that is one fragment has nothing to keep: refused */
    put_file(p, "{\"v\":1,\"seq\":1");
    CHECK(tern_ledger_open(&l, d, NULL) == TERN_EAUTH && l == NULL, "a lone fragment opened");
    snprintf(want, sizeof want, "cannot append to a ledger that does not verify: %s: line 1: the ledger is empty", p);
    CHECK(!strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    put_file(p, "");
    expect_break(d, NULL, NULL, 1, "the ledger is empty");
    /* an unsigned chain can be rebuilt whole by whoever holds the folder; a head hash sent home catches it */
    memcpy(lines, orig, sizeof orig);
    for (int i = 1; i < n; i++) {
        char data[4096];
        cJSON *j = cJSON_Parse(orig[i]);
        char *ds = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "data"));
        snprintf(data, sizeof data, "%s", ds);
        if (i == 1) memcpy(strstr(data, "3.25"), "1.00", 4); /* a nicer loss */
        forge_line(lines[i], sizeof lines[i], lines[i - 1], i + 1, cJSON_GetObjectItem(j, "type")->valuestring, data, NULL);
        cJSON_free(ds);
        cJSON_Delete(j);
    }
    write_lines(d, lines, n);
    CHECK(tern_ledger_verify(d, NULL, NULL, &rep) == TERN_OK, "a rebuilt unsigned chain verifies on its own: %s", tern_errmsg());
    char what[256];
    snprintf(what, sizeof what, "no entry has the head hash %s: the ledger was rewritten (or the hash is from another run)", head);
    expect_break(d, NULL, head, 0, what);
    write_lines(d, orig, n);
    CHECK(tern_ledger_verify(d, NULL, head, &rep) == TERN_OK, "original with its head: %s", tern_errmsg());
    CHECK(tern_ledger_verify(d, NULL, orig[0], &rep) == TERN_EINVAL, "bad head argument");
    /* --pub on an unsigned ledger */
    uint8_t pub[32] = {1};
    expect_break(d, pub, NULL, 1, "the ledger is not signed, but --pub was given");
    free(p);
}

static void test_checkpoint_changed_and_resume(void) {
    const char *d = test_tmpdir("ledger_ckpt");
    make_run(d, NULL);
    char p[512], hex[65];
    snprintf(p, sizeof p, "%s/ckpt/step-2/model.safetensors", d);
    put_file(p, "weights TWO");
    uint8_t h[32];
    tern_hash(h, "weights TWO", 11);
    tern_hex(hex, h, 32);
    char what[512], rec[65];
    tern_hash(h, "weights two", 11);
    tern_hex(rec, h, 32);
    snprintf(what, sizeof what, "checkpoint ckpt/step-2: model.safetensors has changed since it was recorded (hash %s, recorded %s)",
             hex, rec);
    expect_break(d, NULL, NULL, 3, what);
    put_file(p, "weights two");
    unlink(p);
    expect_break(d, NULL, NULL, 3, "checkpoint ckpt/step-2: model.safetensors is missing");
    put_file(p, "weights two");
    tern_ledger_report rep;
    CHECK(tern_ledger_verify(d, NULL, NULL, &rep) == TERN_OK, "restored: %s", tern_errmsg());
    /* a disk break on an earlier line is reported before a chain break on a later one */
    char lines[8][4096];
    int n = read_lines(d, lines, 8);
    strcpy(lines[5], "{}");
    write_lines(d, lines, n);
    snprintf(p, sizeof p, "%s/ckpt/step-1/state.json", d);
    put_file(p, "{\"step\":9}");
    CHECK(tern_ledger_verify(d, NULL, NULL, &rep) == TERN_EAUTH && rep.bad_line == 2 && strstr(tern_errmsg(), "line 2: checkpoint ckpt/step-1: state.json has changed"),
          "%llu: %s", (unsigned long long)rep.bad_line, tern_errmsg());

    /* resumes must name a recorded checkpoint whose files still match */
    const char *d2 = test_tmpdir("ledger_resume");
    make_run(d2, NULL);
    tern_ledger *l;
    const char *files[] = {"model.safetensors", "state.json"};
    snprintf(p, sizeof p, "%s/ckpt/step-2/model.safetensors", d2);
    put_file(p, "foreign weights");
    CHECK(tern_ledger_open(&l, d2, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_ledger_has_checkpoint(l, "ckpt/step-2") && !tern_ledger_has_checkpoint(l, "ckpt/step-3"),
          "recorded checkpoints as read at open");
    CHECK(tern_ledger_resume(l, 2, "ckpt/step-2", files, 2, NULL) == TERN_OK, "%s", tern_errmsg());
    tern_ledger_close(l);
    put_file(p, "weights two"); /* put back, so only the resume entry is wrong */
    expect_break(d2, NULL, NULL, 7, "resumed from ckpt/step-2, whose files do not match the checkpoint recorded at line 3");
    const char *d3 = test_tmpdir("ledger_resume2");
    make_run(d3, NULL);
    snprintf(p, sizeof p, "%s/other", d3);
    CHECK(tern_mkdir_p(p) == TERN_OK, "mkdir");
    snprintf(p, sizeof p, "%s/other/model.safetensors", d3);
    put_file(p, "x");
    CHECK(tern_ledger_open(&l, d3, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(!tern_ledger_has_checkpoint(l, "other"), "other is not recorded");
    CHECK(tern_ledger_resume(l, 2, "other", files, 1, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(!tern_ledger_has_checkpoint(l, "other"), "a resume is not a checkpoint");
    CHECK(tern_ledger_checkpoint(l, 3, "other", files, 1, NULL) == TERN_OK && tern_ledger_has_checkpoint(l, "other"),
          "a checkpoint appended since open: %s", tern_errmsg());
    tern_ledger_close(l);
    expect_break(d3, NULL, NULL, 7, "resumed from other, which no earlier entry records as a checkpoint");
}

/* ---- signed ---- */

static tern_sign_key *make_sign_key(const char *dir, const char *name, uint8_t pub[32]) {
    char *p = tern_path_join(dir, name);
    TERN_ASSERT(tern_sign_key_generate_files(p, NULL) == TERN_OK);
    tern_sign_key *k;
    TERN_ASSERT(tern_sign_key_from_file(&k, p) == TERN_OK);
    tern_sign_key_public(k, pub);
    free(p);
    return k;
}

static void test_signed_tampering(void) {
    const char *keys = test_tmpdir("ledger_keys");
    const char *d = test_tmpdir("ledger_signed");
    uint8_t pub[32], opub[32];
    tern_sign_key *sk = make_sign_key(keys, "run.key", pub), *other = make_sign_key(keys, "other.key", opub);
    char phex[65], ohex[65];
    tern_hex(phex, pub, 32);
    tern_hex(ohex, opub, 32);
    make_run(d, sk);
    tern_ledger_report rep;
    CHECK(tern_ledger_verify(d, pub, NULL, &rep) == TERN_OK && rep.is_signed && !strcmp(rep.signer, phex) && rep.entries == 6,
          "%s", tern_errmsg());
    char orig[8][4096], lines[8][4096], what[512];
    int n = read_lines(d, orig, 8);
    CHECK(strstr(orig[0], phex) != NULL, "signer named in the start entry");
    /* the wrong --pub */
    snprintf(what, sizeof what, "signed by key %s, not by the --pub key %s", phex, ohex);
    expect_break(d, opub, NULL, 1, what);
    /* an unsigned entry appended by hand, with a correct prev and seq */
    memcpy(lines, orig, sizeof orig);
    forge_line(lines[n], sizeof lines[n], orig[n - 1], n + 1, "checkpoint", "{}", NULL);
    write_lines(d, lines, n + 1);
    snprintf(what, sizeof what, "entry is not signed, but this ledger is signed by key %s", phex);
    expect_break(d, NULL, NULL, 7, what);
    /* an entry signed by another key */
    forge_line(lines[n], sizeof lines[n], orig[n - 1], n + 1, "checkpoint", "{}", other);
    write_lines(d, lines, n + 1);
    snprintf(what, sizeof what, "signature does not verify with key %s", phex);
    expect_break(d, NULL, NULL, 7, what);
    /* the same entry properly signed verifies: the forged format matches the writer's */
    forge_line(lines[n], sizeof lines[n], orig[n - 1], n + 1, "note", "{}", sk);
    write_lines(d, lines, n + 1);
    CHECK(tern_ledger_verify(d, pub, NULL, &rep) == TERN_OK && rep.entries == 7, "%s", tern_errmsg());
    /* an edited entry fails its own signature */
    memcpy(lines, orig, sizeof orig);
    char *loss = strstr(lines[2], "3.25");
    loss[0] = '2';
    write_lines(d, lines, n);
    expect_break(d, NULL, NULL, 3, what);
    /* deleted and reordered entries */
    memcpy(lines, orig, sizeof orig);
    for (int i = 3; i < n - 1; i++) strcpy(lines[i], orig[i + 1]);
    write_lines(d, lines, n - 1);
    expect_break(d, pub, NULL, 4, "seq is 5, expected 4 (entries were removed, inserted or reordered)");
    memcpy(lines, orig, sizeof orig);
    strcpy(lines[4], orig[5]);
    strcpy(lines[5], orig[4]);
    write_lines(d, lines, n);
    expect_break(d, pub, NULL, 5, "seq is 6, expected 5 (entries were removed, inserted or reordered)");
    /* a signature moved off the end of the entry */
    memcpy(lines, orig, sizeof orig);
    strcat(lines[1], " ");
    write_lines(d, lines, n);
    expect_break(d, NULL, NULL, 2, "the signature is not 128 hex digits in the entry's last field");
    /* a whole chain rebuilt with the host's own key verifies alone, but not against --pub */
    const char *d2 = test_tmpdir("ledger_signed_rebuilt");
    make_run(d2, other);
    CHECK(tern_ledger_verify(d2, NULL, NULL, &rep) == TERN_OK, "%s", tern_errmsg());
    snprintf(what, sizeof what, "signed by key %s, not by the --pub key %s", ohex, phex);
    expect_break(d2, pub, NULL, 1, what);
    /* appending needs the same key */
    write_lines(d, orig, n);
    tern_ledger *l;
    char *p = ledger_path(d), want[1024];
    CHECK(tern_ledger_open(&l, d, NULL) == TERN_EINVAL, "signed ledger without a key");
    snprintf(want, sizeof want, "%s: this ledger is signed (key %s); give its signing key to append", p, phex);
    CHECK(!strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    CHECK(tern_ledger_open(&l, d, other) == TERN_EAUTH, "other key");
    snprintf(want, sizeof want, "%s: signed by key %s, but the signing key given is %s", p, phex, ohex);
    CHECK(!strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    CHECK(tern_ledger_open(&l, d, sk) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_ledger_end(l, "stopped", NULL) == TERN_OK, "%s", tern_errmsg());
    char head[65];
    tern_ledger_head(l, head);
    tern_ledger_close(l);
    CHECK(tern_ledger_verify(d, pub, head, &rep) == TERN_OK && rep.entries == 7 && !strcmp(rep.head, head), "%s",
          tern_errmsg());
    const char *d3 = test_tmpdir("ledger_unsigned_open");
    make_run(d3, NULL);
    char *p3 = ledger_path(d3);
    CHECK(tern_ledger_open(&l, d3, sk) == TERN_EINVAL, "unsigned with key");
    snprintf(want, sizeof want, "%s: this ledger was started unsigned; it cannot be signed from the middle on", p3);
    CHECK(!strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    free(p3);
    free(p);
    tern_sign_key_free(sk);
    tern_sign_key_free(other);
}

static void test_appender_rules(void) {
    const char *d = test_tmpdir("ledger_rules");
    tern_ledger_start info = {"run-2", NULL, NULL, NULL, NULL, NULL, NULL};
    tern_ledger *l, *l2;
    CHECK(tern_ledger_create(&l, d, NULL, &info) == TERN_OK, "%s", tern_errmsg());
    char *p = ledger_path(d), want[1024];
    /* one writer at a time */
    CHECK(tern_ledger_open(&l2, d, NULL) == TERN_EINVAL, "second writer");
    snprintf(want, sizeof want, "%s: another process is appending to this ledger", p);
    CHECK(!strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    /* bad arguments */
    CHECK(tern_ledger_append(l, "start", NULL) == TERN_EINVAL, "second start");
    CHECK(!strcmp(tern_errmsg(), "ledger entry type 'start' is not allowed ([a-z_], 1 to 32 characters, not 'start')"), "%s",
          tern_errmsg());
    CHECK(tern_ledger_append(l, "Bad-Type", NULL) == TERN_EINVAL, "bad type");
    const char *files[] = {"model.safetensors"};
    CHECK(tern_ledger_checkpoint(l, 1, "../elsewhere", files, 1, NULL) == TERN_EINVAL, "path escape");
    CHECK(!strcmp(tern_errmsg(), "checkpoint folder '../elsewhere' must be a plain path relative to the run folder"), "%s",
          tern_errmsg());
    CHECK(tern_ledger_checkpoint(l, 1, "ckpt/missing", files, 1, NULL) == TERN_ENOTFOUND, "missing file");
    snprintf(want, sizeof want, "recording checkpoint ckpt/missing in the ledger: %s/ckpt/missing/model.safetensors: cannot open: No such file or directory", d);
    CHECK(!strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    cJSON *extra = cJSON_Parse("{\"status\":\"x\"}");
    CHECK(tern_ledger_end(l, "completed", extra) == TERN_EINVAL, "collision");
    CHECK(!strcmp(tern_errmsg(), "extra field 'status' collides with a field the ledger sets"), "%s", tern_errmsg());
    cJSON_Delete(extra);
    CHECK(tern_ledger_entries(l) == 1, "refused entries are not written");
    tern_ledger_close(l);
    tern_ledger_close(NULL);
    /* a ledger is started once */
    CHECK(tern_ledger_create(&l, d, NULL, &info) == TERN_EINVAL && l == NULL, "create twice");
    snprintf(want, sizeof want, "%s: already exists; a run's ledger is started once (open it to append)", p);
    CHECK(!strcmp(tern_errmsg(), want), "%s", tern_errmsg());
    tern_ledger_report rep;
    CHECK(tern_ledger_verify(d, NULL, NULL, &rep) == TERN_OK && rep.entries == 1 && !rep.ended, "%s", tern_errmsg());
    /* verification from a buffer, without the disk */
    const char *bad = "{\"v\":2}\n";
    CHECK(tern_ledger_verify_buffer(bad, strlen(bad), "mem", NULL, NULL, NULL, &rep) == TERN_EAUTH, "v2");
    CHECK(!strcmp(tern_errmsg(), "mem: line 1: ledger format version 2 is not supported (this tern reads version 1)"), "%s",
          tern_errmsg());
    CHECK(tern_ledger_open(&l, "/nonexistent/run", NULL) == TERN_ENOTFOUND, "no ledger");
    free(p);
}

static void test_ledger_cli(void) {
    const char *keys = test_tmpdir("ledger_cli_keys");
    const char *d = test_tmpdir("ledger_cli");
    uint8_t pub[32];
    tern_sign_key *sk = make_sign_key(keys, "run.key", pub);
    make_run(d, sk);
    char out[4096], want[4096], phex[65];
    tern_hex(phex, pub, 32);
    tern_ledger_report rep;
    CHECK(tern_ledger_verify(d, NULL, NULL, &rep) == TERN_OK, "%s", tern_errmsg());
    int rc = run_cmd(out, sizeof out, "%s ledger verify %s --pub %s/run.key.pub", test_tern_bin(), d, keys);
    snprintf(want, sizeof want,
             "%s/ledger.jsonl: 6 entries, hash chain intact, run ended\n"
             "signatures: every entry signed by %s, the --pub key\n"
             "checkpoints: 2 on disk match their recorded hashes (4 files), 0 no longer on disk\n"
             "head %s\n",
             d, phex, rep.head);
    CHECK(rc == 0 && !strcmp(out, want), "rc %d:\n%s\nexpected:\n%s", rc, out, want);
    rc = run_cmd(out, sizeof out, "%s ledger head %s", test_tern_bin(), d);
    snprintf(want, sizeof want, "%s\n", rep.head);
    CHECK(rc == 0 && !strcmp(out, want), "rc %d: %s", rc, out);
    char p[512];
    snprintf(p, sizeof p, "%s/ckpt/step-1/state.json", d);
    put_file(p, "{\"tampered\":1}");
    rc = run_cmd(out, sizeof out, "%s ledger verify %s", test_tern_bin(), d);
    CHECK(rc == 1 && strstr(out, "tern ledger: lines 1 to 1 verified before the break\n") &&
              strstr(out, "/ledger.jsonl: line 2: checkpoint ckpt/step-1: state.json has changed since it was recorded"),
          "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s ledger verify", test_tern_bin());
    CHECK(rc == 2 && !strcmp(out, "tern ledger: give the run folder: tern ledger verify RUNDIR\n"), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s ledger verify %s --pub %s/run.key", test_tern_bin(), d, keys);
    snprintf(want, sizeof want, "tern ledger: %s/run.key: public key file has 64 bytes, expected 32\n", keys);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);
    tern_sign_key_free(sk);
}

int main(void) {
    RUN(test_run_ledger_verifies);
    RUN(test_unsigned_tampering);
    RUN(test_checkpoint_changed_and_resume);
    RUN(test_signed_tampering);
    RUN(test_appender_rules);
    RUN(test_ledger_cli);
    return check_exit();
}
