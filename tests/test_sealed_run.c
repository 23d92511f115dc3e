/* Sealed runs end to end, through the tern program: prepare --key, train --key (stopped and
 * resumed) against the same run on plain files (identical losses and parameters), no plaintext
 * of the corpus, data or model anywhere on disk, each kind of tampering refused with its exact
 * message, wrong keys, passphrases, TERN_KEY_FILE, and eval/sample/export with and without the
 * key. The sealed-file format itself is tested in test_secure.c. */
#include "lib.h"
#include "tern.h"
#include "tern/secure.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#define SMALL "--n-layer 2 --n-head 2 --n-embd 32 --seq 32 --batch 4 --lr 3e-3 --warmup 2 --eval-every 3 --eval-batches 2 --threads 2"
#define MARKER "ZQXMARKERWORD"

static char root[512], tok[600], pdata[600], sdata[600], key[600], key2[600], pass[600];
static char out[1 << 16];

/* A small corpus holding a distinctive marker word, its own 320-token tokenizer, two keys, a
 * passphrase file, and the corpus prepared twice: plain and sealed. Made once. */
static int setup(void) {
    if (root[0]) return 1;
    snprintf(root, sizeof root, "%s", test_tmpdir("sealed_setup"));
    snprintf(tok, sizeof tok, "%s/tok", root);
    snprintf(pdata, sizeof pdata, "%s/pdata", root);
    snprintf(sdata, sizeof sdata, "%s/sdata", root);
    snprintf(key, sizeof key, "%s/k.key", root);
    snprintf(key2, sizeof key2, "%s/k2.key", root);
    snprintf(pass, sizeof pass, "%s/pass.txt", root);
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out,
                     "head -c 40000 data/tinyshakespeare/input.txt > %s/c.txt && for i in $(seq 60); do echo 'the " MARKER
                     " said so'; done >> %s/c.txt && %s tokenizer train --vocab-size 320 -o %s %s/c.txt && %s keygen -o %s && "
                     "%s keygen -o %s && printf 'correct horse battery\\n' > %s && chmod 600 %s && "
                     "%s prepare --tokenizer %s --shard-tokens 3000 -o %s %s/c.txt && "
                     "%s prepare --tokenizer %s --shard-tokens 3000 --key %s -o %s %s/c.txt",
                     root, root, t, tok, root, t, key, t, key2, pass, pass, t, tok, pdata, root, t, tok, key, sdata, root);
    if (rc != 0) {
        printf("setup failed: %s\n", out);
        root[0] = 0;
        return 0;
    }
    return 1;
}

/* The run id in RUNDIR/config.json (into id), 1 when found. */
static int run_id(const char *rundir, char *id, size_t n) {
    char path[700], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", rundir);
    if (tern_read_file(path, &text, &len) != TERN_OK) return 0;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "run_id");
    int ok = cJSON_IsString(r);
    if (ok) snprintf(id, n, "%s", r->valuestring);
    cJSON_Delete(j);
    return ok;
}

static int file_bytes(const char *path, char **p, size_t *n) { return tern_read_file(path, p, n) == TERN_OK; }

/* 1 when the n bytes at m occur in no file under dir; else says where. */
static int absent(const char *dir, const void *m, size_t n, const char *what) {
    char *found = NULL;
    if (tern_secure_scan_dir(dir, m, n, &found) != TERN_OK) {
        printf("  scan of %s failed: %s\n", dir, tern_errmsg());
        return 0;
    }
    if (found) printf("  %s found in %s\n", what, found);
    int ok = !found;
    free(found);
    return ok;
}

/* One family (arch: its train flags) sealed and plain. */
static void sealed_matches_plain(const char *tag, const char *arch) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir(tag);
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/plain " SMALL " %s --steps 6 --ckpt-every 3", t, pdata, d, arch);
    CHECK(rc == 0, "plain run: %s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/sealed " SMALL " %s --steps 6 --ckpt-every 3 --stop-at 3 --key %s", t, sdata,
                 d, arch, key);
    CHECK(rc == 0, "sealed run: %s", out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/sealed --resume --key %s", t, sdata, d, key);
    CHECK(rc == 0, "sealed resume: %s", out);
    char pr[600], sr[600];
    snprintf(pr, sizeof pr, "%s/plain", d);
    snprintf(sr, sizeof sr, "%s/sealed", d);
    char a[16][32], b[16][32];
    int na = test_losses(pr, a, 16), nb = test_losses(sr, b, 16);
    CHECK(na == 6 && nb == 6, "%d and %d loss lines", na, nb);
    for (int i = 0; i < na && i < nb; i++) CHECK(!strcmp(a[i], b[i]), "step %d: plain %s, sealed %s", i + 1, a[i], b[i]);

    /* the sealed checkpoint, unsealed, holds the plain run's bytes: the same parameters and moments */
    char id[64] = "", path[800], ident[256];
    CHECK(run_id(sr, id, sizeof id) && strlen(id) == 16, "run_id in %s/config.json", sr);
    tern_key *k = NULL;
    CHECK(tern_key_from_file(&k, key) == TERN_OK, "%s", tern_errmsg());
    const char *files[] = {"model.safetensors", "optimizer.safetensors"};
    for (int f = 0; f < 2 && k; f++) {
        snprintf(path, sizeof path, "%s/ckpt/step-000006/%s", sr, files[f]);
        snprintf(ident, sizeof ident, "run %s ckpt step 6 %s", id, files[f]);
        tern_plain pl = {0};
        CHECK(tern_unseal_file(&pl, path, k, ident) == TERN_OK, "%s", tern_errmsg());
        char *p = NULL;
        size_t n = 0;
        snprintf(path, sizeof path, "%s/ckpt/step-000006/%s", pr, files[f]);
        CHECK(file_bytes(path, &p, &n), "%s", path);
        CHECK(p && n == pl.size && !memcmp(p, pl.data, n), "%s: sealed and plain checkpoints differ", files[f]);
        tern_plain_free(&pl);
        free(p);
    }
    tern_key_free(k);

    /* no plaintext anywhere: the marker word, a token run of a plain shard, the tokenizer, the model */
    char *p = NULL;
    size_t n = 0;
    CHECK(absent(sr, MARKER, strlen(MARKER), "the marker") && absent(sdata, MARKER, strlen(MARKER), "the marker"), "marker");
    snprintf(path, sizeof path, "%s/train_000001.bin", pdata);
    if (file_bytes(path, &p, &n) && n > 200) {
        CHECK(absent(sdata, p + 100, 48, "plain shard tokens") && absent(sr, p + 100, 48, "plain shard tokens"), "shard bytes");
    } else {
        CHECK(0, "%s", path);
    }
    free(p);
    snprintf(path, sizeof path, "%s/vocab.json", tok);
    if (file_bytes(path, &p, &n) && n > 600) {
        CHECK(absent(sdata, p + 500, 48, "vocab.json text") && absent(sr, p + 500, 48, "vocab.json text"), "vocab bytes");
    } else {
        CHECK(0, "%s", path);
    }
    free(p);
    snprintf(path, sizeof path, "%s/ckpt/step-000006/model.safetensors", pr);
    if (file_bytes(path, &p, &n) && n > 4000) {
        CHECK(absent(sr, p + n - 2000, 48, "model parameters"), "model bytes");
    } else {
        CHECK(0, "%s", path);
    }
    free(p);
    /* config.json is plain and holds no corpus text; the key's path is not kept in it */
    snprintf(path, sizeof path, "%s/config.json", sr);
    if (file_bytes(path, &p, &n)) CHECK(!strstr(p, "k.key") && strstr(p, "\"key\"") == NULL, "config.json: %s", p);
    free(p);

    /* eval, sample and export with the key give what the plain run gives; without it, refusals */
    char want[4096], got[4096];
    rc = run_cmd(got, sizeof got, "%s eval %s --data %s --batches 2 --seq 32 --key %s", t, sr, sdata, key);
    CHECK(rc == 0, "sealed eval: %s", got);
    run_cmd(want, sizeof want, "%s eval %s --data %s --batches 2 --seq 32", t, pr, pdata);
    CHECK(strstr(got, "loss ") && strstr(want, "loss ") && !strcmp(strstr(got, "loss "), strstr(want, "loss ")), "eval: %s vs %s", got,
          want);
    rc = run_cmd(out, sizeof out, "%s eval %s --data %s --batches 2", t, sr, sdata);
    snprintf(want, sizeof want,
             "tern eval: %s/ckpt/step-000006/model.safetensors: is sealed; give --key KEYFILE or --passphrase-file FILE, or set "
             "TERN_KEY_FILE\n",
             sr);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s eval %s --data %s --batches 2 --key %s", t, pr, pdata, key);
    snprintf(want, sizeof want,
             "tern eval: %s/ckpt/step-000006/model.safetensors: is not sealed, but a key was given: a sealed run reads only sealed "
             "files\n",
             pr);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);

    rc = run_cmd(got, sizeof got, "TERN_KEY_FILE=%s %s sample %s -n 20 --seed 5 --prompt 'the '", key, t, sr);
    CHECK(rc == 0, "sealed sample (TERN_KEY_FILE): %s", got);
    run_cmd(want, sizeof want, "%s sample %s -n 20 --seed 5 --prompt 'the '", t, pr);
    CHECK(!strcmp(got, want), "sample: '%s' vs '%s'", got, want);
    rc = run_cmd(out, sizeof out, "%s sample %s -n 5", t, sr);
    snprintf(want, sizeof want,
             "tern sample: %s/ckpt/step-000006/model.safetensors: is sealed; give --key KEYFILE or --passphrase-file FILE, or set "
             "TERN_KEY_FILE\n",
             sr);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);

    rc = run_cmd(out, sizeof out, "%s export %s -o %s/ex --key %s && %s export %s -o %s/exp", t, sr, d, key, t, pr, d);
    CHECK(rc == 0, "export: %s", out);
    const char *ex[] = {"model.safetensors", "config.json", "vocab.json", "merges.txt"};
    for (int i = 0; i < 4; i++) {
        char pa[800], pb[800], *x = NULL, *y = NULL;
        size_t nx = 0, ny = 0;
        snprintf(pa, sizeof pa, "%s/ex/%s", d, ex[i]);
        snprintf(pb, sizeof pb, "%s/exp/%s", d, ex[i]);
        CHECK(file_bytes(pa, &x, &nx) && file_bytes(pb, &y, &ny) && nx == ny && !memcmp(x, y, nx), "export %s differs", ex[i]);
        free(x);
        free(y);
    }
    rc = run_cmd(out, sizeof out, "%s export %s -o %s/ex2", t, sr, d);
    snprintf(want, sizeof want,
             "tern export: %s/ckpt/step-000006/model.safetensors: is sealed; give --key KEYFILE or --passphrase-file FILE, or set "
             "TERN_KEY_FILE\n",
             sr);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/ex2", d);
    CHECK(!tern_path_exists(path) || absent(path, MARKER, strlen(MARKER), "marker"), "a refused export wrote %s", path);
    rc = run_cmd(out, sizeof out, "%s export %s -o %s/m.gguf --key %s", t, sr, d, key);
    CHECK(rc == 2 && !strcmp(out, "tern export: a sealed run exports to a Hugging Face folder (-o DIR) only; GGUF export would "
                                  "need the tokenizer in plaintext outside DIR\n"),
          "rc %d: %s", rc, out);
}

static void test_sealed_run_matches_plain(void) { sealed_matches_plain("sealed_match", ""); }

/* The same for a Llama (grouped-query attention, untied head): its checkpoints and exports are
 * sealed and refused the same way. */
static void test_sealed_llama_matches_plain(void) { sealed_matches_plain("sealed_llama", "--arch llama --n-kv-head 1 --ffn-dim 64"); }

/* Reads a sealed file's chunk geometry: the header's end H, the chunk size C (plaintext) and
 * the number of chunks. */
static int geometry(const char *path, size_t *H, size_t *C, size_t *nchunks, size_t *size) {
    char *p;
    size_t n;
    if (!file_bytes(path, &p, &n) || n < 120) return 0;
    const uint8_t *q = (const uint8_t *)p;
    *H = 120 + ((size_t)q[10] | (size_t)q[11] << 8);
    *C = (size_t)q[16] | (size_t)q[17] << 8 | (size_t)q[18] << 16 | (size_t)q[19] << 24;
    *size = n;
    *nchunks = (n - *H + *C + 15) / (*C + 16);
    free(p);
    return 1;
}

/* Copies chunk `from` of a sealed file over chunk `to` (swap: exchanges them). */
static int move_chunk(const char *path, size_t from, size_t to, int swap) {
    size_t H, C, nc, n;
    if (!geometry(path, &H, &C, &nc, &n) || from >= nc - 1 || to >= nc - 1) return 0;
    char *p;
    size_t len;
    if (!file_bytes(path, &p, &len)) return 0;
    size_t cs = C + 16;
    char *tmp = malloc(cs);
    memcpy(tmp, p + H + to * cs, cs);
    memcpy(p + H + to * cs, p + H + from * cs, cs);
    if (swap) memcpy(p + H + from * cs, tmp, cs);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, len, f) == len;
    if (f) fclose(f);
    free(tmp);
    free(p);
    return ok;
}

static void test_tampering_refused(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("sealed_tamper");
    const char *t = test_tern_bin();
    char want[4096], path[800];
    /* a sealed run A (its checkpoint tampered with below) and a run B on the same data and key */
    int rc = run_cmd(out, sizeof out,
                     "%s train --data %s -o %s/A " SMALL " --steps 3 --ckpt-every 3 --key %s && "
                     "%s train --data %s -o %s/B " SMALL " --steps 3 --ckpt-every 3 --key %s",
                     t, sdata, d, key, t, sdata, d, key);
    CHECK(rc == 0, "runs: %s", out);
    char ida[64] = "", idb[64] = "", ra[700], rb[700];
    snprintf(ra, sizeof ra, "%s/A", d);
    snprintf(rb, sizeof rb, "%s/B", d);
    CHECK(run_id(ra, ida, sizeof ida) && run_id(rb, idb, sizeof idb) && strcmp(ida, idb), "run ids '%s' '%s'", ida, idb);
    const char *model = "ckpt/step-000003/model.safetensors";
    size_t H, C, nc, size;
    snprintf(path, sizeof path, "%s/%s", ra, model);
    CHECK(geometry(path, &H, &C, &nc, &size) && nc == 3, "%s has %zu chunks, the tests need 3", path, nc);

    /* data: a flipped bit in a shard */
    rc = run_cmd(out, sizeof out,
                 "cp -r %s %s/flip && printf '\\x55' | dd of=%s/flip/train_000001.bin bs=1 seek=300 conv=notrunc status=none && "
                 "%s train --data %s/flip -o %s/r1 " SMALL " --steps 1 --key %s",
                 sdata, d, d, t, d, d, key);
    snprintf(want, sizeof want,
             "tern train: %s/flip/train_000001.bin: final chunk 1 of 1 fails authentication (the file was truncated, extended or "
             "altered)\n",
             d);
    CHECK(rc == 1 && !strcmp(out, want), "flipped bit: rc %d: %s", rc, out);
    /* a truncated shard */
    rc = run_cmd(out, sizeof out,
                 "cp -r %s %s/trunc && truncate -s -100 %s/trunc/val_000000.bin && %s train --data %s/trunc -o %s/r2 " SMALL
                 " --steps 1 --key %s",
                 sdata, d, d, t, d, d, key);
    snprintf(want, sizeof want,
             "tern train: %s/trunc/val_000000.bin: final chunk 1 of 1 fails authentication (the file was truncated, extended or "
             "altered)\n",
             d);
    CHECK(rc == 1 && !strcmp(out, want), "truncated: rc %d: %s", rc, out);
    /* two shards swapped */
    rc = run_cmd(out, sizeof out,
                 "cp -r %s %s/swap && cd %s/swap && mv train_000000.bin x && mv train_000001.bin train_000000.bin && mv x "
                 "train_000001.bin && cd - >/dev/null && %s train --data %s/swap -o %s/r3 " SMALL " --steps 1 --key %s",
                 sdata, d, d, t, d, d, key);
    snprintf(want, sizeof want,
             "tern train: %s/swap/train_000000.bin: sealed as 'shard train_000001.bin', expected 'shard train_000000.bin'\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "swapped shards: rc %d: %s", rc, out);
    /* a plain manifest put in place of the sealed one */
    rc = run_cmd(out, sizeof out, "cp -r %s %s/mix && cp %s/manifest.json %s/mix/ && %s train --data %s/mix -o %s/r4 " SMALL " --steps 1 --key %s",
                 sdata, d, pdata, d, t, d, d, key);
    snprintf(want, sizeof want,
             "tern train: %s/mix/manifest.json: is not sealed, but a key was given: a sealed run reads only sealed files\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "plain manifest: rc %d: %s", rc, out);

    /* checkpoints: chunks reordered, a chunk duplicated, a bit flipped, a checkpoint of another run */
    rc = run_cmd(out, sizeof out, "cp -r %s %s/reord && cp -r %s %s/dup && cp -r %s %s/cflip", ra, d, ra, d, ra, d);
    CHECK(rc == 0, "%s", out);
    snprintf(path, sizeof path, "%s/reord/%s", d, model);
    CHECK(move_chunk(path, 0, 1, 1), "reorder %s", path);
    rc = run_cmd(out, sizeof out, "%s eval %s/reord --data %s --batches 1 --key %s", t, d, sdata, key);
    snprintf(want, sizeof want,
             "tern eval: %s/reord/%s: chunk 1 of 3 fails authentication (the file was altered, or its chunks reordered, duplicated "
             "or dropped)\n",
             d, model);
    CHECK(rc == 1 && !strcmp(out, want), "reordered chunks: rc %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/dup/%s", d, model);
    CHECK(move_chunk(path, 0, 1, 0), "duplicate %s", path);
    rc = run_cmd(out, sizeof out, "%s eval %s/dup --data %s --batches 1 --key %s", t, d, sdata, key);
    snprintf(want, sizeof want,
             "tern eval: %s/dup/%s: chunk 2 of 3 fails authentication (the file was altered, or its chunks reordered, duplicated "
             "or dropped)\n",
             d, model);
    CHECK(rc == 1 && !strcmp(out, want), "duplicated chunk: rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "printf '\\x01' | dd of=%s/cflip/%s bs=1 seek=%zu conv=notrunc status=none && %s sample %s/cflip -n 3 --key %s",
                 d, model, H + C + 16 + 1000, t, d, key);
    snprintf(want, sizeof want,
             "tern sample: %s/cflip/%s: chunk 2 of 3 fails authentication (the file was altered, or its chunks reordered, "
             "duplicated or dropped)\n",
             d, model);
    CHECK(rc == 1 && !strcmp(out, want), "flipped checkpoint bit: rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "cp -r %s %s/other && rm -r %s/other/ckpt/step-000003 && cp -r %s/ckpt/step-000003 %s/other/ckpt/ && "
                 "%s eval %s/other --data %s --batches 1 --key %s",
                 ra, d, d, rb, d, t, d, sdata, key);
    snprintf(want, sizeof want,
             "tern eval: %s/other/%s: sealed as 'run %s ckpt step 3 model.safetensors', expected 'run %s ckpt step 3 "
             "model.safetensors'\n",
             d, model, idb, ida);
    CHECK(rc == 1 && !strcmp(out, want), "another run's checkpoint: rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train -o %s/other --resume --steps 4 --key %s", t, d, key);
    snprintf(want, sizeof want,
             "tern train: %s/other/ckpt/step-000003/state.json: sealed as 'run %s ckpt step 3 state.json', expected 'run %s ckpt "
             "step 3 state.json'\n",
             d, idb, ida);
    CHECK(rc == 1 && !strcmp(out, want), "resume from another run's checkpoint: rc %d: %s", rc, out);

    /* the wrong key, no key, and a key for plain data */
    tern_key *k1 = NULL, *k2 = NULL;
    char id1[TERN_KEY_ID_HEX] = "", id2[TERN_KEY_ID_HEX] = "";
    CHECK(tern_key_from_file(&k1, key) == TERN_OK && tern_key_from_file(&k2, key2) == TERN_OK && tern_key_id(k1, id1) == TERN_OK &&
              tern_key_id(k2, id2) == TERN_OK,
          "%s", tern_errmsg());
    tern_key_free(k1);
    tern_key_free(k2);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/w " SMALL " --steps 1 --key %s", t, sdata, d, key2);
    snprintf(want, sizeof want, "tern train: %s/manifest.json: sealed with a different key (key id %s, expected %s)\n", sdata, id1, id2);
    CHECK(rc == 1 && !strcmp(out, want), "wrong key: rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s eval %s --data %s --batches 1 --key %s", t, ra, sdata, key2);
    snprintf(want, sizeof want, "tern eval: %s/%s: sealed with a different key (key id %s, expected %s)\n", ra, model, id1, id2);
    CHECK(rc == 1 && !strcmp(out, want), "wrong key (eval): rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/n " SMALL " --steps 1", t, sdata, d);
    snprintf(want, sizeof want,
             "tern train: %s/manifest.json: is sealed; give --key KEYFILE or --passphrase-file FILE, or set TERN_KEY_FILE\n", sdata);
    CHECK(rc == 1 && !strcmp(out, want), "no key: rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/p " SMALL " --steps 1 --key %s", t, pdata, d, key);
    snprintf(want, sizeof want,
             "tern train: %s/manifest.json: is not sealed, but a key was given: a sealed run reads only sealed files\n", pdata);
    CHECK(rc == 1 && !strcmp(out, want), "key on plain data: rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train --data %s -o %s/m " SMALL " --steps 1 --seal-metrics", t, pdata, d);
    CHECK(rc == 1 && !strcmp(out, "tern train: --seal-metrics needs a key: give --key KEYFILE or --passphrase-file FILE, or set "
                                  "TERN_KEY_FILE\n"),
          "seal-metrics without a key: rc %d: %s", rc, out);
}

/* A passphrase instead of a key file, and --seal-metrics: the whole path works, and a key file
 * is refused for data sealed with a passphrase. */
static void test_passphrase_and_sealed_metrics(void) {
    if (!setup()) {
        CHECK(0, "setup");
        return;
    }
    const char *d = test_tmpdir("sealed_pass");
    const char *t = test_tern_bin();
    int rc = run_cmd(out, sizeof out,
                     "%s prepare --tokenizer %s --shard-tokens 3000 --passphrase-file %s -o %s/data %s/c.txt && "
                     "%s train --data %s/data -o %s/run " SMALL " --steps 4 --ckpt-every 2 --stop-at 2 --passphrase-file %s --seal-metrics && "
                     "%s train -o %s/run --resume --passphrase-file %s && "
                     "%s eval %s/run --data %s/data --batches 1 --passphrase-file %s",
                     t, tok, pass, d, root, t, d, d, pass, t, d, pass, t, d, d, pass);
    CHECK(rc == 0, "passphrase run: %s", out);
    char p[700], want[2048];
    snprintf(p, sizeof p, "%s/run/metrics.jsonl", d);
    int sealed = 0;
    CHECK(tern_sealed_probe(p, &sealed) == TERN_OK && sealed, "%s is not sealed", p);
    /* the sealed metrics, opened with the passphrase: one line per step, across the resume */
    tern_key *k = NULL;
    char id[80] = "", ident[160];
    snprintf(p, sizeof p, "%s/run", d);
    CHECK(run_id(p, id, sizeof id), "run_id");
    snprintf(ident, sizeof ident, "run %s metrics.jsonl", id);
    snprintf(p, sizeof p, "%s/run/metrics.jsonl", d);
    tern_plain pl = {0};
    CHECK(tern_key_from_passphrase_file(&k, pass, 0, 0) == TERN_OK && tern_unseal_file(&pl, p, k, ident) == TERN_OK, "%s",
          tern_errmsg());
    int steps = 0;
    for (size_t i = 0; pl.data && i + 8 < pl.size; i++) steps += !memcmp(pl.data + i, "\"loss\":", 7);
    CHECK(steps == 4, "%d loss lines in the sealed metrics", steps);
    tern_plain_free(&pl);
    tern_key_free(k);
    snprintf(p, sizeof p, "%s/run", d);
    CHECK(absent(p, "\"loss\"", 6, "metrics text") && absent(p, MARKER, strlen(MARKER), "the marker"), "plaintext in %s", p);
    rc = run_cmd(out, sizeof out, "%s train --data %s/data -o %s/run2 " SMALL " --steps 1 --key %s", t, d, d, key);
    snprintf(want, sizeof want, "tern train: %s/data/manifest.json: sealed with a passphrase, but a key file was given\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "key file for passphrase data: rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s train --data %s/data -o %s/run3 " SMALL " --steps 1 --key %s --passphrase-file %s", t, d, d, key, pass);
    CHECK(rc == 1 && !strcmp(out, "tern train: give --key or --passphrase-file, not both\n"), "both: rc %d: %s", rc, out);
}

int main(void) {
    RUN(test_sealed_run_matches_plain);
    RUN(test_sealed_llama_matches_plain);
    RUN(test_tampering_refused);
    RUN(test_passphrase_and_sealed_metrics);
    return check_exit();
}
