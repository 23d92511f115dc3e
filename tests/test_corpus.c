/* Tests of preparing real corpora, through the tern program: every input form (plain text files, a
 * folder, JSON Lines, each zstd- and gzip-compressed, standard input, a separator) gives the same
 * shards as the plain text, whose tokens are checked against the tokenizer and the split rule of
 * docs/FORMATS.md; bad JSON Lines lines, empty and binary inputs, missing inputs and existing
 * folders give their exact messages and leave nothing behind; the output is byte for byte the
 * same on any number of threads; a prepare killed at random moments leaves no data folder or a
 * whole one; and data mixtures serve each source its share, resume exactly and do not depend on
 * the number of ranks. */
#include "check.h"
#include "tern.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

static tern_tok *gpt2;
static char out[1 << 16];

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = n ? fwrite(p, 1, n, f) : 0;
    return fclose(f) == 0 && k == n ? 0 : -1;
}

/* p[0..n) as zstd in `frames` frames one after another (a stream tools such as zstd -d read whole). */
static void write_zstd(const char *path, const void *p, size_t n, int frames) {
    FILE *f = fopen(path, "wb");
    size_t at = 0;
    for (int k = 0; k < frames; k++) {
        size_t len = k == frames - 1 ? n - at : n / (size_t)frames;
        size_t cap = ZSTD_compressBound(len);
        void *buf = malloc(cap);
        size_t z = ZSTD_compress(buf, cap, (const char *)p + at, len, 3);
        CHECK(!ZSTD_isError(z), "zstd");
        fwrite(buf, 1, z, f);
        free(buf);
        at += len;
    }
    fclose(f);
}

/* p[0..n) as gzip in `members` members one after another (what `cat a.gz b.gz` makes). */
static void write_gzip(const char *path, const void *p, size_t n, int members) {
    FILE *f = fopen(path, "wb");
    size_t at = 0;
    for (int k = 0; k < members; k++) {
        size_t len = k == members - 1 ? n - at : n / (size_t)members;
        z_stream z = {0};
        deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        size_t cap = deflateBound(&z, len) + 64;
        unsigned char *buf = malloc(cap);
        z.next_in = (unsigned char *)p + at;
        z.avail_in = (uInt)len;
        z.next_out = buf;
        z.avail_out = (uInt)cap;
        CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
        fwrite(buf, 1, cap - z.avail_out, f);
        deflateEnd(&z);
        free(buf);
        at += len;
    }
    fclose(f);
}

/* s as a JSON string, escaping what must be and, every other character, what may be (\u00e9, a
 * surrogate pair for characters beyond U+FFFF), so the decoder's escapes are exercised. */
static void json_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs(i % 2 ? "\\n" : "\\u000a", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else if (c == 0xC3 && i + 1 < n && i % 3 == 0) { /* é and friends as \u escapes */
            fprintf(f, "\\u%04x", 0xC0 | ((unsigned)s[i + 1] & 0x3F));
            i++;
        } else if (c == 0xF0 && i + 3 < n && i % 2 == 0) { /* a character beyond U+FFFF as a surrogate pair */
            uint32_t cp = (uint32_t)(c & 7) << 18 | (uint32_t)(s[i + 1] & 0x3F) << 12 | (uint32_t)(s[i + 2] & 0x3F) << 6 | (uint32_t)(s[i + 3] & 0x3F);
            cp -= 0x10000;
            fprintf(f, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            i += 3;
        } else fputc(c, f);
    }
    fputc('"', f);
}

/* All tokens of a split, in order (empty when the split is missing). */
static tern_ids split_tokens(const char *d, const char *split) {
    tern_ids ids = {0};
    tern_dataset *ds;
    if (tern_dataset_open(&ds, d, split, tern_tok_hash(gpt2), NULL) != TERN_OK) return ids;
    for (size_t s = 0; s < tern_dataset_num_shards(ds); s++) {
        const tern_shard_view *v = tern_dataset_shard(ds, s);
        for (uint64_t i = 0; i < v->n_tokens; i++) {
            int32_t t = (int32_t)tern_shard_token(v, i);
            tern_ids_push(&ids, &t, 1);
        }
    }
    tern_dataset_free(ds);
    return ids;
}

static int ids_equal(const tern_ids *a, const tern_ids *b) { return a->n == b->n && (!a->n || !memcmp(a->p, b->p, a->n * 4)); }

/* What a prepare of these documents must write, by the rules of docs/FORMATS.md: each kept
 * document as <|endoftext|> and its tokens, in order, to val when BLAKE2b-256(seed LE8 || bytes)
 * says so; with one document its last floor(F*N) tokens to val. */
static void expected(const char *const *docs, const size_t *lens, size_t n, uint64_t seed, double vf, tern_ids want[2]) {
    memset(want, 0, 2 * sizeof *want);
    int32_t eot = 50256;
    if (n == 1) {
        tern_ids all = {0};
        tern_ids_push(&all, &eot, 1);
        tern_tok_encode(gpt2, docs[0], lens[0], &all);
        size_t nval = (size_t)((double)all.n * vf);
        tern_ids_push(&want[0], all.p, all.n - nval);
        tern_ids_push(&want[1], all.p + all.n - nval, nval);
        tern_ids_free(&all);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t le[8], h[32];
        for (int k = 0; k < 8; k++) le[k] = (uint8_t)(seed >> (8 * k));
        tern_hasher hs;
        tern_hash_init(&hs);
        tern_hash_update(&hs, le, 8);
        tern_hash_update(&hs, docs[i], lens[i]);
        tern_hash_final(&hs, h);
        uint64_t u = 0;
        for (int k = 0; k < 8; k++) u |= (uint64_t)h[k] << (8 * k);
        int val = (double)(u >> 11) * 0x1p-53 < vf;
        tern_ids_push(&want[val], &eot, 1);
        tern_tok_encode(gpt2, docs[i], lens[i], &want[val]);
    }
}

/* Two data folders hold the same shards, byte for byte, and their manifests list them alike. */
static int same_shards(const char *a, const char *b) {
    tern_manifest ma, mb;
    if (tern_manifest_read(&ma, a, NULL) != TERN_OK) return 0;
    if (tern_manifest_read(&mb, b, NULL) != TERN_OK) {
        tern_manifest_free(&ma);
        return 0;
    }
    int same = ma.n_shards == mb.n_shards && ma.docs[0] == mb.docs[0] && ma.docs[1] == mb.docs[1];
    for (size_t i = 0; same && i < ma.n_shards; i++) {
        same = !strcmp(ma.shards[i].file, mb.shards[i].file) && ma.shards[i].n_tokens == mb.shards[i].n_tokens &&
               !memcmp(ma.shards[i].checksum, mb.shards[i].checksum, 32);
        char cmd[2000];
        snprintf(cmd, sizeof cmd, "cmp -s '%s/%s' '%s/%s'", a, ma.shards[i].file, b, ma.shards[i].file);
        same = same && system(cmd) == 0;
    }
    tern_manifest_free(&ma);
    tern_manifest_free(&mb);
    return same;
}

/* Nothing named `name` or starting with ".name." is in folder d (no output and no hidden stage). */
static int nothing_left(const char *d, const char *name) {
    DIR *dir = opendir(d);
    if (!dir) return 1;
    char hidden[300];
    snprintf(hidden, sizeof hidden, ".%s.", name);
    int clean = 1;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (!strcmp(e->d_name, name) || !strncmp(e->d_name, hidden, strlen(hidden))) clean = 0;
    closedir(dir);
    return clean;
}

/* ---- a corpus of documents ---- */

#define NDOC 40
static char *docs[NDOC];
static size_t lens[NDOC];

static void make_docs(void) {
    static const char *const pieces[] = {
        "Once upon a time, a little fox found a shiny stone. ",
        "Ünïcödé, 日本語のテキスト, and an emoji 😀 in one line.\n",
        "\"Quotes\", back\\slashes, tabs\tand\nnewlines.\n",
        "It was the best of times, it was the worst of times; 1859.\n\n",
        "Ça va? Très bien. Señor Müller ate crème brûlée. 🦊🌲\n",
    };
    for (size_t i = 0; i < NDOC; i++) {
        /* lengths from a few bytes to 2.5 MB: documents 7 and 23 are longer than a chunk (1 MiB) */
        size_t reps = i == 7 ? 50000 : i == 23 ? 26000 : 1 + (i * 7919) % 37;
        size_t cap = reps * 80 + 64, n = 0;
        docs[i] = malloc(cap);
        n += (size_t)snprintf(docs[i], cap, "Document %zu. ", i);
        for (size_t r = 0; r < reps; r++) {
            const char *p = pieces[(i + r) % 5];
            size_t k = strlen(p);
            memcpy(docs[i] + n, p, k);
            n += k;
        }
        lens[i] = n;
    }
}

/* ---- one document, several documents: the split rules ---- */

static void test_one_document(void) {
    const char *d = test_tmpdir("corpus_one");
    const char *text = "tests/fixtures/tok/train_small.txt", *t = test_tern_bin();
    char o[700], want_line[2048];
    snprintf(o, sizeof o, "%s/out", d);
    int rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --val-fraction 0.25 --shard-tokens 1000 -o %s %s", t, o, text);
    CHECK(rc == 0, "rc %d: %s", rc, out);
    char *buf;
    size_t n;
    tern_read_file(text, &buf, &n);
    const char *doc[1] = {buf};
    tern_ids w[2];
    expected(doc, &n, 1, 0, 0.25, w);
    tern_ids tr = split_tokens(o, "train"), va = split_tokens(o, "val");
    CHECK(ids_equal(&tr, &w[0]) && ids_equal(&va, &w[1]), "train %zu (want %zu), val %zu (want %zu)", tr.n, w[0].n, va.n, w[1].n);
    /* its tail is the val split, which the summary says (it is not a document) */
    snprintf(want_line, sizeof want_line, "train: %zu tokens in %zu shards; val: the document's last %zu tokens, in %zu shards;", w[0].n,
             (w[0].n + 999) / 1000, w[1].n, (w[1].n + 999) / 1000);
    CHECK(strstr(out, want_line), "summary '%s', want '%s'", out, want_line);
    tern_manifest m;
    CHECK(tern_manifest_read(&m, o, NULL) == TERN_OK, "%s", tern_errmsg());
    int sizes_ok = 1;
    for (size_t i = 0; i < m.n_shards; i++) sizes_ok &= m.shards[i].n_tokens <= 1000 && m.shards[i].n_tokens > 0;
    CHECK(sizes_ok, "a shard has more than --shard-tokens tokens, or none");
    CHECK(!memcmp(m.tokenizer_hash, tern_tok_hash(gpt2), 32), "tokenizer hash");
    CHECK(m.val_split == TERN_VAL_SPLIT_TAIL && m.docs[0] == 1 && m.docs[1] == 0, "val split %d, documents %llu %llu", (int)m.val_split,
          (unsigned long long)m.docs[0], (unsigned long long)m.docs[1]);
    tern_manifest_free(&m);
    /* --val-fraction 0 (replacing the folder): train only, all tokens; the val shards are gone */
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --val-fraction 0 --force -o %s %s && ls %s", t, o, text, o);
    CHECK(rc == 0 && strstr(out, "manifest.json\ntokenizer\ntrain_000000.bin\n") && !strstr(out, "val_") && !strstr(out, "train_000001"),
          "rc %d: %s", rc, out);
    tern_ids_free(&tr);
    tr = split_tokens(o, "train");
    tern_ids_push(&w[0], w[1].p, w[1].n);
    CHECK(ids_equal(&tr, &w[0]), "all tokens in train");
    tern_dataset *ds;
    snprintf(want_line, sizeof want_line, "%s/manifest.json lists no val shards (prepare with --val-fraction above 0 for a validation split)", o);
    CHECK(tern_dataset_open(&ds, o, "val", NULL, NULL) == TERN_ENOTFOUND && !strcmp(tern_errmsg(), want_line), "'%s'", tern_errmsg());
    free(buf);
    for (int s = 0; s < 2; s++) tern_ids_free(&w[s]);
    tern_ids_free(&tr);
    tern_ids_free(&va);
}

/* Several files: each a document split by its hash, stable for a seed, another seed another split. */
static void test_split_by_hash(void) {
    const char *d = test_tmpdir("corpus_split");
    const char *t = test_tern_bin();
    char files[8192] = "", path[700], o[700];
    enum { ND = 24 };
    char *sd[ND];
    size_t sl[ND];
    for (size_t i = 0; i < ND; i++) {
        sd[i] = malloc(256);
        snprintf(sd[i], 256, "Document %zu: the quick brown fox, %zu times.\n", i, i * i);
        sl[i] = strlen(sd[i]);
        snprintf(path, sizeof path, "%s/doc%02zu.txt", d, i);
        write_file(path, sd[i], sl[i]);
        strcat(files, " ");
        strcat(files, path);
    }
    snprintf(o, sizeof o, "%s/a", d);
    int rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --val-fraction 0.3 --seed 7 --shard-tokens 50 -o %s%s", t, o, files);
    CHECK(rc == 0, "rc %d: %s", rc, out);
    tern_ids w[2];
    expected((const char *const *)sd, sl, ND, 7, 0.3, w);
    CHECK(w[0].n && w[1].n, "the fixture should put documents in both splits");
    tern_ids tr = split_tokens(o, "train"), va = split_tokens(o, "val");
    CHECK(ids_equal(&tr, &w[0]) && ids_equal(&va, &w[1]), "train %zu (want %zu), val %zu (want %zu)", tr.n, w[0].n, va.n, w[1].n);
    tern_manifest m;
    CHECK(tern_manifest_read(&m, o, NULL) == TERN_OK && m.docs[0] + m.docs[1] == ND && m.docs[1] > 0 && m.val_split == TERN_VAL_SPLIT_DOCUMENTS &&
              m.n_sources == ND,
          "document counts");
    tern_manifest_free(&m);
    /* stable: the same seed again gives the same bytes, with the files in another order too */
    char rev[8192] = "";
    for (size_t i = ND; i-- > 0;) {
        snprintf(path, sizeof path, " %s/doc%02zu.txt", d, i);
        strcat(rev, path);
    }
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --val-fraction 0.3 --seed 7 --shard-tokens 50 -o %s/b%s > /dev/null && cmp %s/a/manifest.json %s/b/manifest.json", t,
                 d, files, d, d);
    CHECK(rc == 0, "not stable: %s", out);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --val-fraction 0.3 --seed 7 -o %s/r%s", t, d, rev);
    snprintf(path, sizeof path, "%s/r", d);
    CHECK(rc == 0 && tern_manifest_read(&m, path, NULL) == TERN_OK, "reversed: %s", out);
    tern_ids rv = split_tokens(path, "val");
    tern_manifest m1;
    tern_manifest_read(&m1, o, NULL);
    CHECK(m.docs[1] == m1.docs[1] && rv.n == va.n, "reordering files moved documents between splits");
    tern_manifest_free(&m1);
    tern_manifest_free(&m);
    tern_ids_free(&rv);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --val-fraction 0.3 --seed 8 -o %s/c%s", t, d, files);
    snprintf(path, sizeof path, "%s/c", d);
    tern_ids vc = split_tokens(path, "val");
    CHECK(rc == 0 && !ids_equal(&vc, &va), "the seed changes nothing");
    tern_ids_free(&vc);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --val-fraction 1 -o %s/m%s", t, d, files);
    CHECK(rc == 2 && !strcmp(out, "tern prepare: --val-fraction must be at least 0 and below 1, got 1\n"), "rc %d '%s'", rc, out);
    for (size_t i = 0; i < ND; i++) free(sd[i]);
    for (int s = 0; s < 2; s++) tern_ids_free(&w[s]);
    tern_ids_free(&tr);
    tern_ids_free(&va);
}

/* ---- every input form ---- */

static void write_jsonl(const char *path, int with_other_members) {
    FILE *f = fopen(path, "wb");
    for (size_t i = 0; i < NDOC; i++) {
        if (with_other_members) fprintf(f, "{\"id\": %zu, \"meta\": {\"text\": [1, 2.5e3, null, true]}, \"text\": ", i);
        else fputs("{\"text\": ", f);
        json_str(f, docs[i], lens[i]);
        fputs(i % 3 ? "}\n" : "} \r\n", f);
    }
    fclose(f);
}

static void test_input_forms(void) {
    const char *d = test_tmpdir("corpus_forms");
    char path[700], a[700], cmd[4096];
    const char *t = test_tern_bin();
    const char *flags = "--tokenizer data/gpt2 --val-fraction 0.3 --seed 11 --shard-tokens 300000 --quiet";
    /* plain text: a folder of files, one document each, in sorted order; some compressed */
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", d, k ? "plainz" : "plain");
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/%s/sub", d, k ? "plainz" : "plain");
        mkdir(path, 0755);
    }
    for (size_t i = 0; i < NDOC; i++) {
        /* names sort as the documents do; half of them one folder down */
        snprintf(path, sizeof path, "%s/plain/%s%02zu.txt", d, i < NDOC / 2 ? "" : "sub/", i);
        write_file(path, docs[i], lens[i]);
        snprintf(path, sizeof path, "%s/plainz/%s%02zu.txt%s", d, i < NDOC / 2 ? "" : "sub/", i, i % 3 == 0 ? "" : i % 3 == 1 ? ".zst" : ".gz");
        if (i % 3 == 0) write_file(path, docs[i], lens[i]);
        else if (i % 3 == 1) write_zstd(path, docs[i], lens[i], 1 + (int)(i % 2));
        else write_gzip(path, docs[i], lens[i], 1 + (int)(i % 2));
    }
    snprintf(path, sizeof path, "%s/plain/.hidden.txt", d); /* hidden files are not read */
    write_file(path, "hidden", 6);
    snprintf(a, sizeof a, "%s/plain.out", d);
    int rc = run_cmd(out, sizeof out, "%s prepare %s -o %s %s/plain", t, flags, a, d);
    CHECK(rc == 0, "rc %d: %s", rc, out);
    /* the tokens are the documents' by the rules */
    tern_ids want[2];
    expected((const char *const *)docs, lens, NDOC, 11, 0.3, want);
    tern_ids tr = split_tokens(a, "train"), va = split_tokens(a, "val");
    CHECK(want[0].n > 0 && want[1].n > 0, "the fixture should fill both splits");
    CHECK(ids_equal(&tr, &want[0]) && ids_equal(&va, &want[1]), "tokens: train %zu (want %zu), val %zu (want %zu)", tr.n, want[0].n, va.n,
          want[1].n);
    tern_manifest m;
    CHECK(tern_manifest_read(&m, a, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(m.n_sources == 1 && m.sources[0].files == NDOC && m.sources[0].documents == NDOC && !strcmp(m.sources[0].format, "text") &&
              m.val_split == TERN_VAL_SPLIT_DOCUMENTS && m.docs[0] + m.docs[1] == NDOC,
          "manifest sources");
    uint64_t bytes = 0;
    for (size_t i = 0; i < NDOC; i++) bytes += lens[i];
    CHECK(m.sources[0].bytes == bytes && m.sources[0].tokens == want[0].n + want[1].n, "bytes %llu tokens %llu",
          (unsigned long long)m.sources[0].bytes, (unsigned long long)m.sources[0].tokens);
    tern_manifest_free(&m);
    /* the other forms */
    size_t nj;
    snprintf(path, sizeof path, "%s/c.jsonl", d);
    write_jsonl(path, 1);
    char *jsonl;
    tern_read_file(path, &jsonl, &nj);
    snprintf(path, sizeof path, "%s/c.jsonl.zst", d);
    write_zstd(path, jsonl, nj, 3);
    snprintf(path, sizeof path, "%s/c.jsonl.gz", d);
    write_gzip(path, jsonl, nj, 2);
    snprintf(path, sizeof path, "%s/jsonl-no-extension", d); /* told by its first line */
    write_zstd(path, jsonl, nj, 1);
    free(jsonl);
    /* one text file with the documents between separators (a blank piece at each end is not one) */
    snprintf(path, sizeof path, "%s/sep.txt", d);
    FILE *f = fopen(path, "wb");
    fputs("\n<|endoftext|>", f);
    for (size_t i = 0; i < NDOC; i++) {
        fwrite(docs[i], 1, lens[i], f);
        fputs("<|endoftext|>", f);
    }
    fputs("\n", f);
    fclose(f);
    struct {
        const char *name, *args;
    } forms[] = {
        {"folder with .zst and .gz files", "%s/plainz"},
        {"JSON Lines", "%s/c.jsonl"},
        {"JSON Lines, zstd (3 frames)", "%s/c.jsonl.zst"},
        {"JSON Lines, gzip (2 members)", "%s/c.jsonl.gz"},
        {"JSON Lines told by content", "%s/jsonl-no-extension"},
        {"standard input, gzip", "- < %s/c.jsonl.gz"},
        {"a separator", "--doc-separator '<|endoftext|>' %s/sep.txt"},
        {"a separator from standard input", "--doc-separator '<|endoftext|>' - < %s/sep.txt"},
    };
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
        char b[700], args[1400];
        snprintf(b, sizeof b, "%s/form%zu.out", d, k);
        snprintf(args, sizeof args, forms[k].args, d);
        snprintf(cmd, sizeof cmd, "%s prepare %s -o %s %s", t, flags, b, args);
        rc = run_cmd(out, sizeof out, "%s", cmd);
        CHECK(rc == 0 && strstr(out, "tern prepare: 40 documents ("), "%s: rc %d: %s", forms[k].name, rc, out);
        CHECK(same_shards(a, b), "%s: shards differ from the plain text's", forms[k].name);
    }
    /* the summary of a JSON Lines prepare names what it read */
    CHECK(tern_manifest_read(&m, a, NULL) == TERN_OK, "manifest");
    tern_manifest_free(&m);
    snprintf(path, sizeof path, "%s/form2.out", d);
    CHECK(tern_manifest_read(&m, path, NULL) == TERN_OK && m.n_sources == 1 && !strcmp(m.sources[0].format, "jsonl") && m.sources[0].bytes == bytes,
          "JSON Lines source");
    tern_manifest_free(&m);
    for (int s = 0; s < 2; s++) tern_ids_free(&want[s]);
    tern_ids_free(&tr);
    tern_ids_free(&va);
}

/* ---- what a new user hit: each exact message, and nothing left behind ---- */

static void test_refusals(void) {
    const char *d = test_tmpdir("corpus_refuse");
    const char *t = test_tern_bin();
    char path[700], want[2048], o[700];
    int rc;
    /* a missing input: nothing is made, not even the folders above DATADIR */
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 -o %s/new/deeper/data %s/nothere.txt", t, d, d);
    snprintf(want, sizeof want, "tern prepare: %s/nothere.txt: no such file or folder\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "missing: rc %d '%s'", rc, out);
    CHECK(nothing_left(d, "new"), "a failed prepare left a folder");
    /* an empty file alone: warned, counted, and nothing to prepare */
    snprintf(path, sizeof path, "%s/empty.txt", d);
    write_file(path, "", 0);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet -o %s/e %s", t, d, path);
    snprintf(want, sizeof want,
             "tern prepare: warning: skipped 1 empty document (no text, or only white space): %s\n"
             "tern prepare: nothing to prepare: no document was kept (skipped: 1 empty)\n",
             path);
    CHECK(rc == 1 && !strcmp(out, want), "empty: rc %d '%s'", rc, out);
    CHECK(nothing_left(d, "e"), "an empty input left a data folder");
    /* beside another file: warned, counted in the manifest, the other prepared */
    snprintf(path, sizeof path, "%s/one.txt", d);
    write_file(path, "One real document.\n", 19);
    snprintf(o, sizeof o, "%s/e2", d);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet -o %s %s/empty.txt %s", t, o, d, path);
    CHECK(rc == 0 && strstr(out, "skipped 1 empty document") && strstr(out, "tern prepare: skipped 1: 1 empty (counted in the manifest)\n"),
          "rc %d: %s", rc, out);
    tern_manifest m;
    CHECK(tern_manifest_read(&m, o, NULL) == TERN_OK && m.skipped[TERN_SKIP_EMPTY] == 1 && m.n_sources == 2 &&
              m.sources[0].skipped[TERN_SKIP_EMPTY] == 1 && m.sources[0].documents == 0 && m.sources[1].documents == 1 &&
              m.val_split == TERN_VAL_SPLIT_TAIL,
          "empty counted");
    tern_manifest_free(&m);
    /* a binary file is refused (nothing left), or prepared with --allow-binary and a warning */
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet -o %s/bin /bin/ls", t, d);
    CHECK(rc == 1 && !strcmp(out, "tern prepare: /bin/ls looks binary, not text: it holds NUL bytes; give --allow-binary to prepare it anyway\n"),
          "binary: rc %d '%s'", rc, out);
    CHECK(nothing_left(d, "bin"), "a refused binary left a folder");
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --allow-binary -o %s/bin /bin/ls", t, d);
    CHECK(rc == 0 && strstr(out, "tern prepare: warning: prepared 1 document that looks binary (--allow-binary): /bin/ls\n"), "rc %d: %s", rc,
          out);
    snprintf(path, sizeof path, "%s/bin", d);
    CHECK(tern_manifest_read(&m, path, NULL) == TERN_OK && m.binary_documents == 1, "binary counted");
    tern_manifest_free(&m);
    /* text that is mostly not UTF-8 (here 50% 0xE9 bytes) looks binary too; a little is only warned */
    char latin[200];
    for (int i = 0; i < 200; i++) latin[i] = i % 2 ? 'a' : (char)0xE9;
    snprintf(path, sizeof path, "%s/latin.txt", d);
    write_file(path, latin, 200);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet -o %s/lat %s", t, d, path);
    snprintf(want, sizeof want,
             "tern prepare: %s looks binary, not text: 50%% of its 200 bytes are not UTF-8; give --allow-binary to prepare it anyway\n", path);
    CHECK(rc == 1 && !strcmp(out, want), "latin: rc %d '%s'", rc, out);
    for (int i = 0; i < 200; i++) latin[i] = i % 20 ? 'a' : (char)0xE9;
    write_file(path, latin, 200);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet -o %s/lat %s", t, d, path);
    snprintf(want, sizeof want, "tern prepare: warning: 1 document holds bytes that are not UTF-8, encoded byte by byte: %s\n", path);
    CHECK(rc == 0 && strstr(out, want), "latin warned: rc %d '%s'", rc, out);
    /* an existing data folder is refused, and stays as it was */
    snprintf(path, sizeof path, "%s/one.txt", d);
    char before[2048];
    snprintf(o, sizeof o, "%s/e2/manifest.json", d);
    char *mtext;
    size_t mn;
    tern_read_file(o, &mtext, &mn);
    snprintf(before, sizeof before, "%s", mtext);
    free(mtext);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet -o %s/e2 %s", t, d, path);
    snprintf(want, sizeof want,
             "tern prepare: %s/e2 already holds a data folder; give --force to replace it (runs made from it will no longer match it), or "
             "choose another -o\n",
             d);
    CHECK(rc == 1 && !strcmp(out, want), "existing: rc %d '%s'", rc, out);
    tern_read_file(o, &mtext, &mn);
    CHECK(!strcmp(mtext, before), "the refused prepare changed the manifest");
    free(mtext);
    /* --force replaces it */
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --force -o %s/e2/ %s", t, d, path);
    snprintf(o, sizeof o, "%s/e2", d);
    CHECK(rc == 0 && tern_manifest_read(&m, o, NULL) == TERN_OK && m.n_sources == 1 && m.skipped[TERN_SKIP_EMPTY] == 0, "forced: rc %d: %s", rc, out);
    tern_manifest_free(&m);
    CHECK(nothing_left(d, "e2.tern-prepare"), "hidden folders left");
    /* a folder that is not a data folder is refused even with --force, and untouched */
    snprintf(o, sizeof o, "%s/mine", d);
    mkdir(o, 0755);
    snprintf(o, sizeof o, "%s/mine/notes.txt", d);
    write_file(o, "mine", 4);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --force -o %s/mine %s", t, d, path);
    snprintf(want, sizeof want, "tern prepare: %s/mine exists and is not a tern data folder (it holds notes.txt); choose another -o\n", d);
    CHECK(rc == 1 && !strcmp(out, want) && tern_path_exists(o), "foreign: rc %d '%s'", rc, out);
    /* an empty folder is used */
    snprintf(o, sizeof o, "%s/emptydir", d);
    mkdir(o, 0755);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet -o %s %s", t, o, path);
    CHECK(rc == 0, "empty folder: rc %d: %s", rc, out);
    /* a literal <|endoftext|> is warned about; --doc-separator splits there */
    static const char ts[] = "Once there was a cat.\n<|endoftext|>\nThe cat sat. The end.\n<|endoftext|>\nA dog ran.";
    snprintf(path, sizeof path, "%s/stories.txt", d);
    write_file(path, ts, sizeof ts - 1);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --val-fraction 0 -o %s/s1 %s", t, d, path);
    snprintf(want, sizeof want,
             "tern prepare: warning: 1 document contains the text <|endoftext|>, encoded as ordinary text (--doc-separator "
             "'<|endoftext|>' splits documents there): %s\n",
             path);
    CHECK(rc == 0 && strstr(out, want), "literal: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --val-fraction 0 --doc-separator '<|endoftext|>' -o %s/s2 %s", t, d,
                 path);
    CHECK(rc == 0 && !strstr(out, "warning") && strstr(out, "tern prepare: 3 documents ("), "separator: rc %d '%s'", rc, out);
    const char *sd[3] = {"Once there was a cat.\n", "\nThe cat sat. The end.\n", "\nA dog ran."};
    size_t sl[3] = {strlen(sd[0]), strlen(sd[1]), strlen(sd[2])};
    tern_ids w[2];
    expected(sd, sl, 3, 0, 0, w);
    snprintf(o, sizeof o, "%s/s2", d);
    tern_ids got = split_tokens(o, "train");
    CHECK(ids_equal(&got, &w[0]), "separated documents: %zu tokens, want %zu", got.n, w[0].n);
    tern_ids_free(&got);
    tern_ids_free(&w[0]);
    tern_ids_free(&w[1]);
    /* damaged and unsupported compressed inputs name the file; nothing is left */
    snprintf(path, sizeof path, "%s/cut.txt.gz", d);
    write_gzip(path, ts, sizeof ts - 1, 1);
    truncate(path, 30);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet -o %s/z %s", t, d, path);
    snprintf(want, sizeof want, "tern prepare: %s: the gzip data ends early (the file is cut short)\n", path);
    CHECK(rc == 1 && !strcmp(out, want), "cut gzip: rc %d '%s'", rc, out);
    snprintf(path, sizeof path, "%s/cut.txt.zst", d);
    write_zstd(path, ts, sizeof ts - 1, 1);
    truncate(path, 20);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet -o %s/z %s", t, d, path);
    snprintf(want, sizeof want, "tern prepare: %s: the zstd data ends in the middle of a frame (the file is cut short)\n", path);
    CHECK(rc == 1 && !strcmp(out, want), "cut zstd: rc %d '%s'", rc, out);
    snprintf(path, sizeof path, "%s/a.txt.xz", d);
    write_file(path, "\xFD" "7zXZ\0\0\0\0", 10);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet -o %s/z %s", t, d, path);
    snprintf(want, sizeof want, "tern prepare: %s: xz-compressed; tern reads plain, zstd-compressed or gzip-compressed text\n", path);
    CHECK(rc == 1 && !strcmp(out, want), "xz: rc %d '%s'", rc, out);
    CHECK(nothing_left(d, "z"), "a failed prepare left a folder");
    /* a folder with no files, and - given twice */
    snprintf(o, sizeof o, "%s/nofiles", d);
    mkdir(o, 0755);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 -o %s/z %s", t, d, o);
    snprintf(want, sizeof want, "tern prepare: %s: a folder with no files in it (names that start with '.' are skipped)\n", o);
    CHECK(rc == 1 && !strcmp(out, want), "no files: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 -o %s/z - - < /dev/null", t, d);
    CHECK(rc == 1 && !strcmp(out, "tern prepare: standard input (-) is given twice\n"), "stdin twice: rc %d '%s'", rc, out);
    CHECK(nothing_left(d, "z"), "a failed prepare left a folder");
}

/* Runs argv (no shell) with stdout and stderr to /dev/null and returns its exit status and peak
 * resident memory in KiB. AddressSanitizer's quarantine is kept small so that the figure is the
 * program's under SAN=1 too. */
static int run_peak(long *kib, char *const argv[]) {
    fflush(NULL); /* or the child's freopen writes the parent's pending output again */
    pid_t pid = fork();
    if (pid == 0) {
        setenv("ASAN_OPTIONS", "quarantine_size_mb=4:allocator_may_return_null=1", 1);
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) return -1;
    *kib = ru.ru_maxrss;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- JSON Lines with bad lines: each handled as docs/FORMATS.md says ---- */

#define BIG_LINE ((size_t)50 << 20) /* 52,428,800 bytes */

static void test_jsonl_bad_lines(void) {
    const char *d = test_tmpdir("corpus_jsonl");
    const char *t = test_tern_bin();
    char path[700], o[700], want[8192];
    snprintf(path, sizeof path, "%s/bad.jsonl", d);
    static const char *const lines[] = {
        "{\"text\": \"first good document\"}",       /* 1 */
        "{\"text\": \"never closed\"",               /* 2: not closed, at byte 23 (its end) */
        "{\"body\": \"no text here\"}",              /* 3 */
        "{\"text\": 42}",                            /* 4 */
        "{\"text\": \"bad \xff byte\"}",             /* 5: not UTF-8 at byte 14 */
        "{\"text\": \"\\ud800 alone\"}",             /* 6: an unpaired surrogate at byte 10 */
        "[\"text\", \"an array\"]",                  /* 7 */
        "",                                          /* 8: blank lines are passed over */
        "   ",                                       /* 9 */
        "{\"text\": \"trailing\"} x",                /* 10: more after the object, at byte 21 */
        "{\"text\": \"second\", \"text\": \"last wins\"}", /* 11 */
        NULL,                                        /* 12: 50 MB */
        "{\"text\": \"final line, no newline\"}",    /* 13 */
    };
    FILE *f = fopen(path, "wb");
    static const char word[] = "lorem ipsum dolor sit amet, ";
    /* the long line's text is written in pieces: the memory measured below is the child's, and a
     * child forked from a large test process starts with the test's pages counted as its own */
    size_t big_n = BIG_LINE - 12;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (lines[i]) fputs(lines[i], f);
        else {
            fputs("{\"text\": \"", f);
            for (size_t k = 0; k < big_n; k++) fputc(word[k % (sizeof word - 1)], f);
            fputs("\"}", f);
        }
        if (i + 1 < sizeof lines / sizeof lines[0]) fputc('\n', f);
    }
    fclose(f);
    snprintf(o, sizeof o, "%s/out", d);
    int rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --val-fraction 0 -o %s %s", t, o, path);
    snprintf(want, sizeof want,
             "tern prepare: warning: skipped 3 lines that are not one JSON object: %s:2 (the object is not closed, at byte 23), %s:7 (a JSON "
             "value that is not an object, at byte 0), %s:10 (more after the object, at byte 21)\n"
             "tern prepare: warning: skipped 1 line with no \"text\" member: %s:3\n"
             "tern prepare: warning: skipped 1 line whose \"text\" is not a string: %s:4\n"
             "tern prepare: warning: skipped 2 lines that are not UTF-8 text: %s:5 (a byte that is not UTF-8, at byte 14), %s:6 (a \\u escape "
             "is an unpaired surrogate, which is not text, at byte 10)\n"
             "tern prepare: warning: skipped 1 line longer than --max-line-bytes 16777216: %s:12 (52428800 bytes)\n",
             path, path, path, path, path, path, path, path);
    CHECK(rc == 0 && !strncmp(out, want, strlen(want)), "rc %d:\n%s\nwant\n%s", rc, out, want);
    CHECK(strstr(out, "tern prepare: skipped 8: 3 invalid_json, 1 missing_key, 1 not_string, 2 invalid_utf8, 1 too_long (counted in the manifest)"),
          "summary: %s", out);
    const char *good[4] = {"first good document", "last wins", NULL, "final line, no newline"};
    size_t gl[4] = {strlen(good[0]), strlen(good[1]), big_n, strlen(good[3])};
    tern_ids w[2];
    const char *g3[3] = {good[0], good[1], good[3]};
    size_t l3[3] = {gl[0], gl[1], gl[3]};
    expected(g3, l3, 3, 0, 0, w);
    tern_ids got = split_tokens(o, "train");
    CHECK(ids_equal(&got, &w[0]), "good lines: %zu tokens, want %zu", got.n, w[0].n);
    tern_ids_free(&got);
    tern_ids_free(&w[0]);
    tern_ids_free(&w[1]);
    tern_manifest m;
    CHECK(tern_manifest_read(&m, o, NULL) == TERN_OK && m.skipped[TERN_SKIP_INVALID_JSON] == 3 && m.skipped[TERN_SKIP_TOO_LONG] == 1 &&
              m.sources[0].documents == 3 && !strcmp(m.sources[0].format, "jsonl"),
          "manifest counts");
    tern_manifest_free(&m);
    /* the skipped 50 MB line is held only until it passes the limit (16 MiB), then read past */
    long peak_base, peak_skip, peak_keep;
    char small[700];
    snprintf(small, sizeof small, "%s/small.jsonl", d);
    f = fopen(small, "wb");
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (lines[i]) fprintf(f, "%s\n", lines[i]);
    fclose(f);
    char *argv0[] = {(char *)t, "prepare", "--tokenizer", "data/gpt2", "--quiet", "--force", "--val-fraction", "0", "-o", o, small, NULL};
    CHECK(run_peak(&peak_base, argv0) == 0, "run");
    char *argv[] = {(char *)t, "prepare", "--tokenizer", "data/gpt2", "--quiet", "--force", "--val-fraction", "0", "-o", o, path, NULL};
    CHECK(run_peak(&peak_skip, argv) == 0, "run");
    /* with a limit above it, the line is a document like the others */
    char *argv2[] = {(char *)t, "prepare", "--tokenizer", "data/gpt2", "--quiet", "--force", "--val-fraction", "0",
                     "--max-line-bytes", "60000000", "-o", o, path, NULL};
    CHECK(run_peak(&peak_keep, argv2) == 0, "run");
    printf("  a 50 MB JSON line: peak resident %ld MiB skipped, %ld MiB kept, %ld MiB for the file without it\n", peak_skip >> 10,
           peak_keep >> 10, peak_base >> 10);
    CHECK(peak_skip < peak_base + 40 * 1024, "skipping a 50 MB line took %ld MiB (%ld without it)", peak_skip >> 10, peak_base >> 10);
    CHECK(peak_keep < peak_base + 400 * 1024, "keeping a 50 MB line took %ld MiB (%ld without it)", peak_keep >> 10, peak_base >> 10);
    char *big_text = malloc(big_n);
    for (size_t k = 0; k < big_n; k++) big_text[k] = word[k % (sizeof word - 1)];
    good[2] = big_text;
    expected(good, gl, 4, 0, 0, w);
    got = split_tokens(o, "train");
    CHECK(ids_equal(&got, &w[0]), "with the long line: %zu tokens, want %zu", got.n, w[0].n);
    tern_ids_free(&got);
    tern_ids_free(&w[0]);
    tern_ids_free(&w[1]);
    free(big_text);
    /* a NUL byte escaped in the text is kept (not cut short), and makes the document look binary */
    snprintf(path, sizeof path, "%s/nul.jsonl", d);
    static const char nul[] = "{\"text\": \"a\\u0000b\"}\n{\"text\": \"x\"}\n";
    write_file(path, nul, sizeof nul - 1);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --val-fraction 0 -o %s/nul %s", t, d, path);
    snprintf(want, sizeof want, "tern prepare: %s:1 looks binary, not text: it holds NUL bytes; give --allow-binary to prepare it anyway\n", path);
    CHECK(rc == 1 && !strcmp(out, want), "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --allow-binary --val-fraction 0 -o %s/nul %s", t, d, path);
    snprintf(o, sizeof o, "%s/nul", d);
    const char *nd[2] = {"a\0b", "x"};
    size_t nl[2] = {3, 1};
    expected(nd, nl, 2, 0, 0, w);
    got = split_tokens(o, "train");
    CHECK(rc == 0 && ids_equal(&got, &w[0]), "NUL kept: rc %d, %zu tokens, want %zu", rc, got.n, w[0].n);
    tern_ids_free(&got);
    tern_ids_free(&w[0]);
    tern_ids_free(&w[1]);
}

/* ---- memory does not grow with the corpus ---- */

/* A 60 MB document prepares in what a 6 MB one takes, give or take the blocks; so do 60 MB of
 * JSON Lines (zstd) against 6 MB, on two threads. */
static void test_bounded_memory(void) {
    const char *d = test_tmpdir("corpus_mem");
    static const char para[] = "It was the best of times, it was the worst of times, 1859. Ünïcödé, 日本語, 😀.\n";
    long peak[2][2];
    size_t mb[2] = {6, 60};
    for (int k = 0; k < 2; k++) {
        char path[700], outdir[700], jpath[700];
        snprintf(path, sizeof path, "%s/big%zu.txt", d, mb[k]);
        snprintf(jpath, sizeof jpath, "%s/big%zu.jsonl", d, mb[k]);
        FILE *f = fopen(path, "wb"), *j = fopen(jpath, "wb");
        size_t reps = (mb[k] << 20) / (sizeof para - 1);
        for (size_t i = 0; i < reps; i++) {
            fwrite(para, 1, sizeof para - 1, f);
            if (i % 40 == 0) fprintf(j, "%s{\"text\": \"Story %zu. ", i ? "\"}\n" : "", i);
            fputs("It was the best of times, it was the worst of times. Ünïcödé, 日本語, 😀.\\n", j);
        }
        fputs("\"}\n", j);
        fclose(f);
        fclose(j);
        char *jsonl;
        size_t nj;
        tern_read_file(jpath, &jsonl, &nj);
        unlink(jpath);
        snprintf(jpath, sizeof jpath, "%s/big%zu.jsonl.zst", d, mb[k]);
        write_zstd(jpath, jsonl, nj, 1);
        free(jsonl);
        for (int form = 0; form < 2; form++) {
            snprintf(outdir, sizeof outdir, "%s/out%zu-%d", d, mb[k], form);
            char *argv[] = {(char *)test_tern_bin(), "prepare", "--tokenizer", "data/gpt2", "--val-fraction", "0.01", "--threads", "2", "-o", outdir,
                            form ? jpath : path, NULL};
            int rc = run_peak(&peak[form][k], argv);
            CHECK(rc == 0, "prepare of %zu MB (%s): rc %d", mb[k], form ? "JSON Lines" : "text", rc);
        }
        unlink(path);
        unlink(jpath);
    }
    printf("  prepare: peak resident %ld MiB for 6 MB of text, %ld MiB for 60 MB; %ld and %ld MiB for JSON Lines\n", peak[0][0] >> 10,
           peak[0][1] >> 10, peak[1][0] >> 10, peak[1][1] >> 10);
    for (int form = 0; form < 2; form++) {
        CHECK(peak[form][1] < peak[form][0] + 40 * 1024, "memory grows with the corpus: %ld MiB for 6 MB, %ld MiB for 60 MB", peak[form][0] >> 10,
              peak[form][1] >> 10);
        CHECK(peak[form][1] < 250 * 1024, "prepare of 60 MB peaked at %ld MiB", peak[form][1] >> 10);
    }
}

/* ---- the same bytes whatever the number of threads ---- */

static void test_threads(void) {
    const char *d = test_tmpdir("corpus_threads");
    const char *t = test_tern_bin();
    char path[700];
    /* text files (two of them longer than a chunk), the same documents as JSON Lines (zstd), one
     * of them twice (--dedup), and a separated file */
    snprintf(path, sizeof path, "%s/in", d);
    mkdir(path, 0755);
    for (size_t i = 0; i < NDOC; i += 2) {
        snprintf(path, sizeof path, "%s/in/t%02zu.txt", d, i);
        write_file(path, docs[i], lens[i]);
    }
    snprintf(path, sizeof path, "%s/in/c.jsonl", d);
    write_jsonl(path, 0);
    char *j;
    size_t nj;
    tern_read_file(path, &j, &nj);
    unlink(path);
    snprintf(path, sizeof path, "%s/in/c.jsonl.zst", d);
    write_zstd(path, j, nj, 2);
    free(j);
    snprintf(path, sizeof path, "%s/in/s.txt", d);
    FILE *f = fopen(path, "wb");
    for (size_t i = 1; i < NDOC; i += 3) {
        fwrite(docs[i], 1, lens[i], f);
        fputs("\n---\n", f);
    }
    fclose(f);
    const char *flags = "--tokenizer data/gpt2 --quiet --val-fraction 0.25 --seed 3 --shard-tokens 100000 --dedup --doc-separator '\n---\n'";
    int threads[] = {1, 2, 3, 8};
    for (int k = 0; k < 4; k++) {
        int rc = run_cmd(out, sizeof out, "%s prepare %s --threads %d -o %s/t%d %s/in", t, flags, threads[k], d, threads[k], d);
        CHECK(rc == 0, "threads %d: rc %d: %s", threads[k], rc, out);
        if (k == 0) continue;
        rc = run_cmd(out, sizeof out, "diff -r %s/t1 %s/t%d", d, d, threads[k]);
        CHECK(rc == 0, "%d threads differ from 1: %s", threads[k], out);
    }
    char o[700];
    snprintf(o, sizeof o, "%s/t1", d);
    tern_manifest m;
    CHECK(tern_manifest_read(&m, o, NULL) == TERN_OK, "%s", tern_errmsg());
    /* the JSON Lines come first (c.jsonl.zst sorts first) and hold every document: the 20 text
     * files and the 13 separated documents are duplicates */
    CHECK(m.dedup && m.skipped[TERN_SKIP_DUPLICATE] == NDOC / 2 + 13 && m.docs[0] + m.docs[1] == NDOC && m.n_shards > 4,
          "duplicates %llu, documents %llu", (unsigned long long)m.skipped[TERN_SKIP_DUPLICATE], (unsigned long long)(m.docs[0] + m.docs[1]));
    tern_manifest_free(&m);
}

/* ---- document options and per-source counts ---- */

static uint64_t ntokens(const char *text) {
    tern_ids ids = {0};
    tern_tok_encode(gpt2, text, strlen(text), &ids);
    uint64_t n = ids.n;
    tern_ids_free(&ids);
    return n;
}

static void test_document_options(void) {
    const char *d = test_tmpdir("corpus_docopts");
    const char *t = test_tern_bin();
    char path[700], o[700], want[2048];
    static const char x[] = "Same text, twice.", y[] = "Short", z[] = "A unique document.", j2[] = "Another unique document here.";
    snprintf(path, sizeof path, "%s/dirA", d);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/dirA/x.txt", d);
    write_file(path, x, strlen(x));
    snprintf(path, sizeof path, "%s/dirA/y.txt", d);
    write_file(path, y, strlen(y));
    snprintf(path, sizeof path, "%s/dirA/z.txt", d);
    write_file(path, z, strlen(z));
    snprintf(path, sizeof path, "%s/b.jsonl", d);
    snprintf(want, sizeof want, "{\"text\": \"%s\"}\n{\"text\": \"%s\"}\n{\"text\": \"Tiny\"}\n{\"text\": \"\"}\n", x, j2);
    write_file(path, want, strlen(want));
    snprintf(o, sizeof o, "%s/out", d);
    int rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --dedup --min-bytes 8 --val-fraction 0 -o %s %s/dirA %s", t, o, d,
                     path);
    snprintf(want, sizeof want,
             "tern prepare: warning: skipped 1 empty document (no text, or only white space): %s:4\n"
             "tern prepare: warning: skipped 2 documents shorter than --min-bytes 8: %s/dirA/y.txt (5 bytes), %s:3 (4 bytes)\n",
             path, d, path);
    CHECK(rc == 0 && !strncmp(out, want, strlen(want)), "rc %d:\n%s\nwant\n%s", rc, out, want);
    CHECK(strstr(out, "tern prepare: skipped 4: 1 empty, 2 short, 1 duplicate (counted in the manifest)\n"), "%s", out);
    tern_manifest m;
    CHECK(tern_manifest_read(&m, o, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(m.n_sources == 2 && m.dedup && m.min_bytes == 8 && m.skipped[TERN_SKIP_DUPLICATE] == 1 && m.skipped[TERN_SKIP_SHORT] == 2,
          "totals");
    if (m.n_sources == 2) {
        tern_manifest_source *a = &m.sources[0], *b = &m.sources[1];
        CHECK(a->files == 3 && a->documents == 2 && a->bytes == strlen(x) + strlen(z) && a->tokens == 2 + ntokens(x) + ntokens(z) &&
                  a->skipped[TERN_SKIP_SHORT] == 1 && a->skipped[TERN_SKIP_DUPLICATE] == 0 && !strcmp(a->format, "text"),
              "folder source: %llu files, %llu documents, %llu bytes, %llu tokens", (unsigned long long)a->files,
              (unsigned long long)a->documents, (unsigned long long)a->bytes, (unsigned long long)a->tokens);
        CHECK(b->files == 1 && b->documents == 1 && b->bytes == strlen(j2) && b->tokens == 1 + ntokens(j2) && b->skipped[TERN_SKIP_SHORT] == 1 &&
                  b->skipped[TERN_SKIP_DUPLICATE] == 1 && b->skipped[TERN_SKIP_EMPTY] == 1 && !strcmp(b->format, "jsonl"),
              "JSON Lines source");
    }
    tern_manifest_free(&m);
    /* the first of two equal documents is the one kept */
    const char *kept[3] = {x, z, j2};
    size_t kl[3] = {strlen(x), strlen(z), strlen(j2)};
    tern_ids w[2];
    expected(kept, kl, 3, 0, 0, w);
    tern_ids got = split_tokens(o, "train");
    CHECK(ids_equal(&got, &w[0]), "tokens: %zu, want %zu", got.n, w[0].n);
    tern_ids_free(&got);
    tern_ids_free(&w[0]);
    tern_ids_free(&w[1]);
}

/* Documents of more tokens than are held in memory (4 Mi) spill to a file: the lone one (split by
 * position), the first of several (held until the second), and one in the middle. */
static void test_long_documents(void) {
    const char *d = test_tmpdir("corpus_long");
    const char *t = test_tern_bin();
    size_t n = (size_t)9 << 20; /* " a" is one token: 4.7 M tokens */
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i += 2) memcpy(big + i, " a", 2);
    memcpy(big + n - 10, "The end.\n", 9);
    big[n - 1] = '\n';
    static const char small1[] = "A small document.\n", small2[] = "Another small one.\n";
    char path[700], o[700];
    struct {
        const char *name;
        const char *docs[3];
        size_t lens[3];
        int n;
    } cases[] = {
        {"alone", {big}, {n}, 1},
        {"first", {big, small1}, {n, sizeof small1 - 1}, 2},
        {"middle", {small1, big, small2}, {sizeof small1 - 1, n, sizeof small2 - 1}, 3},
    };
    for (size_t c = 0; c < 3; c++) {
        snprintf(path, sizeof path, "%s/%s", d, cases[c].name);
        mkdir(path, 0755);
        for (int k = 0; k < cases[c].n; k++) {
            snprintf(path, sizeof path, "%s/%s/%d.txt", d, cases[c].name, k);
            write_file(path, cases[c].docs[k], cases[c].lens[k]);
        }
        snprintf(o, sizeof o, "%s/%s.out", d, cases[c].name);
        /* seed 1 sends the big document to val when it is not alone */
        int rc = run_cmd(out, sizeof out, "%s prepare --tokenizer data/gpt2 --quiet --val-fraction 0.5 --seed 1 --shard-tokens 1000000 -o %s %s/%s", t,
                         o, d, cases[c].name);
        CHECK(rc == 0, "%s: rc %d: %s", cases[c].name, rc, out);
        tern_ids w[2];
        expected(cases[c].docs, cases[c].lens, (size_t)cases[c].n, 1, 0.5, w);
        tern_ids tr = split_tokens(o, "train"), va = split_tokens(o, "val");
        CHECK(ids_equal(&tr, &w[0]) && ids_equal(&va, &w[1]), "%s: train %zu (want %zu), val %zu (want %zu)", cases[c].name, tr.n, w[0].n, va.n,
              w[1].n);
        CHECK(va.n > (size_t)2 << 20, "%s: the big document should be in val", cases[c].name);
        run_cmd(out, sizeof out, "ls -A %s | grep -c tokens", o);
        CHECK(!strcmp(out, "0\n"), "%s: spill files left in the data folder", cases[c].name);
        for (int s = 0; s < 2; s++) tern_ids_free(&w[s]);
        tern_ids_free(&tr);
        tern_ids_free(&va);
    }
    free(big);
}

/* ---- SIGKILL at random moments: no data folder, the old one, or the new one; never a part ---- */

static pid_t spawn_prepare(const char *outdir, const char *in, int force, const char *errfile) {
    fflush(NULL); /* or the child's freopen writes the parent's pending output again */
    pid_t pid = fork();
    if (pid == 0) {
        setenv("ASAN_OPTIONS", "allocator_may_return_null=1", 1);
        freopen("/dev/null", "w", stdout);
        freopen(errfile ? errfile : "/dev/null", "w", stderr);
        const char *t = test_tern_bin();
        char *argv[] = {(char *)t, "prepare", "--tokenizer", "data/gpt2", "--quiet", "--threads", "2", "--shard-tokens", "200000",
                        (char *)(force ? "--force" : "--quiet"), "-o", (char *)outdir, (char *)in, NULL};
        execv(t, argv);
        _exit(127);
    }
    return pid;
}

static char *slurp(const char *path) {
    char *p = NULL;
    size_t n;
    return tern_read_file(path, &p, &n) == TERN_OK ? p : NULL;
}

/* The data folder is whole: its manifest is the reference's (or the old one's) and every shard of
 * both splits checks against it. 0: missing, 1: the new one, 2: the old one, -1: anything else. */
static int folder_state(const char *dir, const char *new_manifest, const char *old_manifest) {
    if (!tern_path_exists(dir)) return 0;
    char mp[800];
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    char *m = slurp(mp);
    int state = !m ? -1 : !strcmp(m, new_manifest) ? 1 : old_manifest && !strcmp(m, old_manifest) ? 2 : -1;
    free(m);
    for (int s = 0; s < 2 && state > 0; s++) {
        tern_dataset *ds;
        if (tern_dataset_open(&ds, dir, s ? "val" : "train", NULL, NULL) != TERN_OK) state = -1;
        else tern_dataset_free(ds);
    }
    return state;
}

static void test_kill(void) {
    const char *d = test_tmpdir("corpus_kill");
    char in[700], ref[700], old[700], target[700], path[800];
    snprintf(in, sizeof in, "%s/in", d);
    mkdir(in, 0755);
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/in/c%d.jsonl%s", d, k, k == 1 ? ".zst" : "");
        write_jsonl(path, k);
        if (k == 1) {
            char *j;
            size_t nj;
            snprintf(path, sizeof path, "%s/in/c1.jsonl", d);
            tern_read_file(path, &j, &nj);
            unlink(path);
            snprintf(path, sizeof path, "%s/in/c1.jsonl.zst", d);
            write_zstd(path, j, nj, 2);
            free(j);
        }
    }
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/in/t%d.txt", d, k);
        write_file(path, docs[7 + k], lens[7 + k]);
    }
    /* the reference: an uninterrupted run, timed; and an older data folder to be replaced */
    snprintf(ref, sizeof ref, "%s/ref", d);
    snprintf(old, sizeof old, "%s/in/t0.txt", d);
    double t0 = tern_now();
    int status;
    pid_t pid = spawn_prepare(ref, in, 0, NULL);
    waitpid(pid, &status, 0);
    double full = tern_now() - t0;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reference run failed");
    snprintf(path, sizeof path, "%s/manifest.json", ref);
    char *new_manifest = slurp(path);
    snprintf(path, sizeof path, "%s/old", d);
    pid = spawn_prepare(path, old, 0, NULL);
    waitpid(pid, &status, 0);
    snprintf(path, sizeof path, "%s/old/manifest.json", d);
    char *old_manifest = slurp(path);
    if (!new_manifest || !old_manifest) {
        CHECK(0, "no reference manifests");
        return;
    }
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    snprintf(target, sizeof target, "%s/data", d);
    int trials = 40, counts[3] = {0, 0, 0}, bad = 0;
    for (int k = 0; k < trials; k++) {
        int force = k % 2;
        if (force) { /* start from the older folder, to be replaced */
            char cmd[2000];
            snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s/old' '%s'", target, d, target);
            CHECK(system(cmd) == 0, "cp");
        } else {
            char cmd[1000];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", target);
            CHECK(system(cmd) == 0, "rm");
        }
        pid = spawn_prepare(target, in, force, NULL);
        /* from the start to past the end (the last moments hold the commit) */
        useconds_t delay = (useconds_t)((double)rand() / RAND_MAX * full * 1.5e6);
        usleep(delay);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        int st = folder_state(target, new_manifest, force ? old_manifest : NULL);
        /* with --force the old folder is swapped for the new in one step: never missing */
        if (st < 0 || (force && st == 0)) {
            bad++;
            printf("  trial %d (%s, killed after %.3f s of %.3f): the data folder is %s\n", k, force ? "--force" : "new", delay / 1e6, full,
                   st < 0 ? "neither absent, old nor whole" : "missing");
        } else {
            counts[st]++;
        }
    }
    printf("  %d SIGKILL trials (seed %u, a full run %.2f s): %d left no folder, %d the new one, %d the old one, %d anything else\n",
           trials, seed, full, counts[0], counts[1], counts[2], bad);
    CHECK(bad == 0, "%d trials left a broken data folder", bad);
    /* a prepare after the kills starts afresh and clears their hidden folders */
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", target);
    CHECK(system(cmd) == 0, "rm");
    pid = spawn_prepare(target, in, 0, NULL);
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && folder_state(target, new_manifest, NULL) == 1, "the run after the kills");
    CHECK(nothing_left(d, "data.tern-prepare"), "hidden folders of killed runs are left");
    /* SIGINT stops it cleanly: a message, status 1, nothing left */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", target);
    CHECK(system(cmd) == 0, "rm");
    char errf[800];
    snprintf(errf, sizeof errf, "%s/err.txt", d);
    pid = spawn_prepare(target, in, 0, errf);
    usleep((useconds_t)(full * 0.3e6));
    kill(pid, SIGINT);
    waitpid(pid, &status, 0);
    char *err = slurp(errf);
    int finished = WIFEXITED(status) && WEXITSTATUS(status) == 0; /* a slow signal may come after the end */
    CHECK(finished || (WIFEXITED(status) && WEXITSTATUS(status) == 1 && err && !strcmp(err, "tern prepare: interrupted; nothing was written\n") &&
                       !tern_path_exists(target) && nothing_left(d, "data.tern-prepare")),
          "SIGINT: status %d, '%s'", status, err ? err : "");
    free(err);
    free(new_manifest);
    free(old_manifest);
}

/* ---- mixtures ---- */

#define MIX_V 4000
/* A data folder of shards of the given lengths where token g of source s (counting across its
 * shards) is s*1000 + g mod 1000, so a window tells its source and place. */
static void make_source(const char *dir, int s, const uint64_t *lens, size_t nsh, const uint8_t hash[32]) {
    tern_mkdir_p(dir);
    tern_manifest m;
    memset(&m, 0, sizeof m);
    memcpy(m.tokenizer_hash, hash, 32);
    m.vocab_size = MIX_V;
    m.eot = MIX_V - 1;
    m.bytes_per_token = 2;
    m.n_shards = nsh;
    m.shards = calloc(nsh, sizeof *m.shards);
    uint64_t g = 0;
    for (size_t k = 0; k < nsh; k++) {
        char name[64];
        snprintf(name, sizeof name, "train_%06zu.bin", k);
        char *path = tern_path_join(dir, name);
        tern_shard_writer *w;
        tern_shard_writer_open(&w, path, MIX_V, NULL, NULL);
        for (uint64_t i = 0; i < lens[k]; i++, g++) {
            int32_t id = (int32_t)(s * 1000 + g % 1000);
            tern_shard_writer_add(w, &id, 1);
        }
        tern_shard_writer_close(w, &m.shards[k].n_tokens, m.shards[k].checksum);
        m.shards[k].file = strdup(name);
        free(path);
    }
    tern_manifest_write(&m, dir, NULL);
    tern_manifest_free(&m);
}

static void test_mixture(void) {
    const char *d = test_tmpdir("corpus_mix");
    uint8_t hash[32] = {9}, other[32] = {8};
    static const uint64_t l0[] = {5000, 333, 7000}, l1[] = {2500}, l2[] = {1200, 900};
    const uint64_t *lens[3] = {l0, l1, l2};
    size_t nsh[3] = {3, 1, 2};
    tern_dataset *ds[4];
    char dir[700];
    for (int s = 0; s < 4; s++) {
        snprintf(dir, sizeof dir, "%s/s%d", d, s);
        make_source(dir, s, lens[s < 3 ? s : 1], nsh[s < 3 ? s : 1], s < 3 ? hash : other);
        CHECK(tern_dataset_open(&ds[s], dir, "train", NULL, NULL) == TERN_OK, "%s", tern_errmsg());
    }
    size_t B = 4, T = 16;
    tern_mixture_source src[3] = {{ds[0], 5, "web"}, {ds[1], 3, "books"}, {ds[2], 2, "code"}};
    tern_mixture *m, *m2, *m3;
    CHECK(tern_mixture_init(&m, src, 3, B, T, 1, 77) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_mixture_num_sources(m) == 3 && tern_mixture_share(m, 0) == 0.5 && fabs(tern_mixture_share(m, 1) - 0.3) < 1e-9 &&
              fabs(tern_mixture_share(m, 2) - 0.2) < 1e-9,
          "shares");
    tern_loader *own[3];
    for (int s = 0; s < 3; s++) tern_loader_init(&own[s], ds[s], B, T, 1, 77);
    /* every window: its source's own loader's next window; shares exact at every block's end */
    uint64_t N = 50 * TERN_MIXTURE_BLOCK, count[3] = {0, 0, 0};
    int32_t in[64], tg[64], in2[64], tg2[64];
    int windows_ok = 1, order_ok = 1, shares_ok = 1, tells_ok = 1;
    double worst = 0;
    for (uint64_t c = 0; c < N; c++) {
        size_t s;
        uint64_t sc;
        tern_mixture_locate(m, c, &s, &sc);
        order_ok &= sc == count[s]; /* a source's windows are drawn in its own order */
        size_t got;
        tern_mixture_get(m, c, 0, B, in, tg, &got);
        tern_loader_get(own[s], count[s], 0, B, in2, tg2);
        windows_ok &= got == s && !memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg);
        tells_ok &= in[0] / 1000 == (int32_t)s && tg[63] / 1000 == (int32_t)s;
        count[s]++;
        for (int k = 0; k < 3; k++) {
            double dev = fabs((double)count[k] - (double)(c + 1) * tern_mixture_share(m, k));
            if (dev > worst) worst = dev;
            if ((c + 1) % TERN_MIXTURE_BLOCK == 0) shares_ok &= dev < 1;
        }
    }
    printf("  mixture 0.5/0.3/0.2 over %llu windows: %llu %llu %llu; worst deviation from the share inside a block %.1f windows\n",
           (unsigned long long)N, (unsigned long long)count[0], (unsigned long long)count[1], (unsigned long long)count[2], worst);
    CHECK(windows_ok && tells_ok, "a window is not its source's");
    CHECK(order_ok, "a source's windows are not drawn in order");
    CHECK(shares_ok, "a share is off by a window or more at the end of a block");
    CHECK(worst < TERN_MIXTURE_BLOCK / 8, "inside a block a share strays %.0f windows", worst);
    /* shuffled inside the block: the first 20 windows are not all of one source */
    int mixed = 0;
    for (uint64_t c = 1; c < 20; c++) {
        size_t s0, s1;
        uint64_t x;
        tern_mixture_locate(m, 0, &s0, &x);
        tern_mixture_locate(m, c, &s1, &x);
        mixed |= s0 != s1;
    }
    CHECK(mixed, "the first windows are all one source");
    uint64_t counts[3];
    tern_mixture_consumed(m, N, counts);
    CHECK(counts[0] == count[0] && counts[1] == count[1] && counts[2] == count[2], "consumed at the end");
    tern_mixture_consumed(m, 3000, counts);
    uint64_t want3[3] = {0, 0, 0};
    for (uint64_t c = 0; c < 3000; c++) {
        size_t s;
        uint64_t x;
        tern_mixture_locate(m, c, &s, &x);
        want3[s]++;
    }
    CHECK(!memcmp(counts, want3, sizeof counts), "consumed in the middle of a block");
    /* resume: a fresh mixture gives every window bit for bit, in any order of calls */
    CHECK(tern_mixture_init(&m2, src, 3, B, T, 1, 77) == TERN_OK, "%s", tern_errmsg());
    srand(5);
    int resume_ok = 1;
    for (int k = 0; k < 300; k++) {
        uint64_t c = k % 3 == 0 ? (uint64_t)rand() * 1000003ull : (uint64_t)rand() % N;
        size_t s1, s2;
        tern_mixture_get(m, c, 0, B, in, tg, &s1);
        tern_mixture_get(m2, c, 0, B, in2, tg2, &s2);
        resume_ok &= s1 == s2 && !memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg);
    }
    CHECK(resume_ok, "a fresh mixture gives other windows");
    /* ranks: W ranks' row slices are the window one process reads */
    int ranks_ok = 1;
    for (size_t W = 1; W <= 4; W *= 2)
        for (uint64_t c = 0; c < 500; c += 7) {
            tern_mixture_get(m, c, 0, B, in, tg, NULL);
            for (size_t r = 0; r < W; r++) {
                size_t s;
                tern_mixture_get(m2, c, r * (B / W), B / W, in2 + r * (B / W) * T, tg2 + r * (B / W) * T, &s);
            }
            ranks_ok &= !memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg);
        }
    CHECK(ranks_ok, "rank slices differ from the whole window");
    /* the seed decides the order */
    CHECK(tern_mixture_init(&m3, src, 3, B, T, 1, 78) == TERN_OK, "%s", tern_errmsg());
    int differs = 0;
    for (uint64_t c = 0; c < 64; c++) {
        size_t s1, s2;
        uint64_t x;
        tern_mixture_locate(m, c, &s1, &x);
        tern_mixture_locate(m3, c, &s2, &x);
        differs |= s1 != s2;
    }
    CHECK(differs, "another seed gives the same order");
    tern_mixture_free(m3);
    /* a mixture of one source is that source's loader */
    CHECK(tern_mixture_init(&m3, src, 1, B, T, 1, 77) == TERN_OK, "%s", tern_errmsg());
    int one_ok = 1;
    for (uint64_t c = 0; c < 3000; c++) {
        tern_mixture_get(m3, c, 0, B, in, tg, NULL);
        tern_loader_get(own[0], c, 0, B, in2, tg2);
        one_ok &= !memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg);
    }
    CHECK(one_ok, "a mixture of one differs from its loader");
    tern_mixture_free(m3);
    /* refusals */
    tern_mixture_source bad[2] = {{ds[0], 5, "web"}, {ds[1], 0, "books"}};
    CHECK(tern_mixture_init(&m3, bad, 2, B, T, 1, 0) == TERN_EINVAL &&
              !strcmp(tern_errmsg(), "mixture source 1 (books): the weight must be a positive number, got 0"),
          "'%s'", tern_errmsg());
    bad[1] = (tern_mixture_source){ds[3], 1, "other"};
    CHECK(tern_mixture_init(&m3, bad, 2, B, T, 1, 0) == TERN_EINVAL &&
              !strcmp(tern_errmsg(), "mixture source 1 (other) was made with tokenizer 0800000000000000, but mixture source 0 (web) with "
                                     "0900000000000000; the sources of a mixture need one tokenizer"),
          "'%s'", tern_errmsg());
    char want[1200];
    snprintf(want, sizeof want,
             "mixture source 2 (code): %s/s2: no train shard holds a whole window: a window needs 1601 tokens (B=4 x T=400, plus 1) and "
             "the largest shard has 1200",
             d);
    CHECK(tern_mixture_init(&m3, src, 3, 4, 400, 1, 0) == TERN_EINVAL && !strcmp(tern_errmsg(), want), "'%s'", tern_errmsg());
    CHECK(tern_mixture_init(&m3, src, 0, B, T, 1, 0) == TERN_EINVAL && !strcmp(tern_errmsg(), "a mixture needs at least one source"), "none");
    /* the text form */
    tern_mixture_spec sp;
    CHECK(tern_mixture_spec_parse(&sp, "data/web:0.7,data/books:0.3,data/code,a:b:2") == TERN_OK && sp.n == 4 && !strcmp(sp.dirs[0], "data/web") &&
              sp.weights[0] == 0.7 && !strcmp(sp.dirs[2], "data/code") && sp.weights[2] == 1 && !strcmp(sp.dirs[3], "a:b") && sp.weights[3] == 2,
          "spec");
    tern_mixture_spec_free(&sp);
    struct {
        const char *spec, *msg;
    } bads[] = {
        {"web:x", "mixture \"web:x\": entry 1: the weight after ':' must be a positive number, got \"x\""},
        {"web:1,books:-1", "mixture \"web:1,books:-1\": entry 2: the weight after ':' must be a positive number, got \"-1\""},
        {"web:", "mixture \"web:\": entry 1: the weight after ':' must be a positive number, got \"\""},
        {":1", "mixture \":1\": entry 1 names no data folder"},
        {"web,,books", "mixture \"web,,books\": entry 2 names no data folder"},
        {"", "mixture \"\": entry 1 names no data folder"},
    };
    for (size_t k = 0; k < sizeof bads / sizeof bads[0]; k++)
        CHECK(tern_mixture_spec_parse(&sp, bads[k].spec) == TERN_EINVAL && !strcmp(tern_errmsg(), bads[k].msg) && sp.n == 0, "'%s': '%s'",
              bads[k].spec, tern_errmsg());
    for (int s = 0; s < 3; s++) tern_loader_free(own[s]);
    tern_mixture_free(m);
    tern_mixture_free(m2);
    for (int s = 0; s < 4; s++) tern_dataset_free(ds[s]);
}

/* --help names every option with a value placeholder and says its default */
static void test_help(void) {
    int rc = run_cmd(out, sizeof out, "%s prepare --help", test_tern_bin());
    CHECK(rc == 0, "rc %d", rc);
    static const char *const opts[] = {"--tokenizer DIR", "-o DATADIR", "--force", "--format F", "--text-key K", "--doc-separator S",
                                       "--max-line-bytes N", "--min-bytes N", "--dedup", "--allow-binary", "--val-fraction F",
                                       "--shard-tokens N", "--seed S", "--threads N", "--quiet", "--key KEYFILE", "--passphrase-file FILE"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\n  %s ", opts[i]);
        const char *at = strstr(out, needle);
        CHECK(at, "--help does not list %s", opts[i]);
        if (!at) continue;
        /* its description runs to the next option */
        const char *next = strstr(at + 1, "\n  -");
        size_t len = next ? (size_t)(next - at) : strlen(at);
        char desc[600];
        snprintf(desc, sizeof desc, "%.*s", (int)(len < sizeof desc - 1 ? len : sizeof desc - 1), at);
        CHECK(strstr(desc, "(default") || strstr(desc, "(required)"), "%s has no default: %s", opts[i], desc);
    }
}

int main(void) {
    if (tern_tok_load(&gpt2, "data/gpt2", NULL) != TERN_OK) {
        printf("cannot load data/gpt2: %s\n", tern_errmsg());
        return 1;
    }
    make_docs();
    RUN(test_one_document);
    RUN(test_split_by_hash);
    RUN(test_input_forms);
    RUN(test_refusals);
    RUN(test_help);
    RUN(test_jsonl_bad_lines);
    RUN(test_bounded_memory);
    RUN(test_threads);
    RUN(test_document_options);
    RUN(test_long_documents);
    RUN(test_kill);
    RUN(test_mixture);
    for (size_t i = 0; i < NDOC; i++) free(docs[i]);
    tern_tok_free(gpt2);
    return check_exit();
}
