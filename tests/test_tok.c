/* Tests of the tok module and `tern tokenizer`: GPT-2's files against ids from tiktoken, Hugging
 * Face and OpenAI's encoder.py (tests/fixtures/tok/gpt2_cases.tsv, made by
 * tools/make_tok_fixtures.py), round trips, thread and streaming invariance, training against a
 * reference trainer, and every bad input with its exact message and exit status. */
#include "check.h"
#include "tern.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

static tern_tok *gpt2;

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = fwrite(p, 1, n, f);
    return fclose(f) == 0 && k == n ? 0 : -1;
}

static int unhex_any(uint8_t *out, const char *hex, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

typedef struct {
    uint8_t *text;
    size_t n;
    int32_t *ids;
    size_t nids;
} tcase;

static tcase *cases;
static size_t ncases;

static void load_cases(void) {
    char *buf;
    size_t n;
    if (tern_read_file("tests/fixtures/tok/gpt2_cases.tsv", &buf, &n) != TERN_OK) {
        printf("cannot read fixture: %s\n", tern_errmsg());
        exit(2);
    }
    cases = calloc(4096, sizeof(tcase));
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t1 || !t2) continue;
        tcase *c = &cases[ncases++];
        size_t hn = (size_t)(t1 - line);
        c->n = hn / 2;
        c->text = malloc(c->n + 1);
        unhex_any(c->text, line, c->n);
        c->ids = malloc(sizeof(int32_t) * ((size_t)(t2 - t1) + 1));
        char *p = t1 + 1;
        while (p < t2) {
            char *e;
            long v = strtol(p, &e, 10);
            if (e == p) break;
            c->ids[c->nids++] = (int32_t)v;
            p = e;
        }
    }
    free(buf);
}

/* Every fixture case: exact ids, exact bytes back. */
static void test_gpt2_vectors(void) {
    CHECK(ncases > 600, "only %zu cases", ncases);
    size_t bad = 0;
    for (size_t i = 0; i < ncases; i++) {
        tern_ids ids = {0};
        tern_status st = tern_tok_encode(gpt2, cases[i].text, cases[i].n, &ids);
        int same = st == TERN_OK && ids.n == cases[i].nids && (!ids.n || !memcmp(ids.p, cases[i].ids, ids.n * sizeof(int32_t)));
        if (!same && bad++ < 5) {
            printf("  case %zu (%zu bytes): got %zu ids, want %zu\n", i, cases[i].n, ids.n, cases[i].nids);
            for (size_t k = 0; k < ids.n && k < cases[i].nids; k++)
                if (ids.p[k] != cases[i].ids[k]) {
                    printf("  first difference at %zu: %d vs %d\n", k, ids.p[k], cases[i].ids[k]);
                    break;
                }
        }
        char *dec = NULL;
        size_t dn = 0;
        st = tern_tok_decode(gpt2, ids.p, ids.n, &dec, &dn);
        CHECK(st == TERN_OK && dn == cases[i].n && (!dn || !memcmp(dec, cases[i].text, dn)), "case %zu does not decode back", i);
        free(dec);
        tern_ids_free(&ids);
    }
    CHECK(bad == 0, "%zu of %zu cases differ from GPT-2's ids", bad, ncases);
}

static void test_content_identity(const uint8_t want[TERN_HASH_BYTES]) {
    const char *d = test_tmpdir("tok_respelled");
    char path[1024], *text = NULL;
    size_t n = 0;
    CHECK(tern_read_file("data/gpt2/encoder.json", &text, &n) == TERN_OK, "%s", tern_errmsg());
    cJSON *j = text ? cJSON_ParseWithLength(text, n) : NULL;
    free(text);
    char *raw = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/vocab.json", d);
    CHECK(raw && write_file(path, raw, strlen(raw)) == 0, "vocab.json");
    CHECK(raw && strstr(raw, "\\u") == NULL, "cJSON kept \\u escapes");
    free(raw);
    CHECK(tern_read_file("data/gpt2/vocab.bpe", &text, &n) == TERN_OK, "%s", tern_errmsg());
    const char *body = text ? strchr(text, '\n') + 1 : NULL; /* after "#version: 0.2" */
    snprintf(path, sizeof path, "%s/merges.txt", d);
    CHECK(body && write_file(path, body, n - (size_t)(body - text)) == 0, "merges.txt");
    tern_tok *tok = NULL;
    CHECK(tern_tok_load(&tok, d, NULL) == TERN_OK, "%s", tern_errmsg());
    if (tok) {
        CHECK(!memcmp(tern_tok_hash(tok), want, TERN_HASH_BYTES), "a respelled tokenizer has another identity");
        CHECK(memcmp(tern_tok_file_hash(tok), tern_tok_file_hash(gpt2), TERN_HASH_BYTES) != 0, "file hashes agree");
        CHECK(tern_tok_has_hash(tok, tern_tok_hash(gpt2)) && tern_tok_has_hash(gpt2, tern_tok_file_hash(gpt2)) &&
                  !tern_tok_has_hash(tok, tern_tok_file_hash(gpt2)),
              "has_hash");
        tern_tok_free(tok);
    }
    /* the last merge dropped (and the vocabulary with it kept whole): another identity */
    size_t m = n;
    while (m > 1 && text[m - 2] != '\n') m--;
    CHECK(body && write_file(path, body, m - 1 - (size_t)(body - text)) == 0, "merges.txt");
    uint8_t h[TERN_HASH_BYTES];
    tern_status st = tern_tok_hash_dir(h, d, NULL);
    CHECK(st != TERN_OK || memcmp(h, want, TERN_HASH_BYTES) != 0, "a merge less, the same identity");
    tern_err_clear();
    free(text);
}

static void test_gpt2_basics(void) {
    CHECK(tern_tok_vocab_size(gpt2) == 50257, "vocab %zu", tern_tok_vocab_size(gpt2));
    CHECK(tern_tok_eot(gpt2) == 50256, "eot %d", tern_tok_eot(gpt2));
    size_t len;
    const uint8_t *p = tern_tok_token(gpt2, 995, &len);
    CHECK(p && len == 6 && !memcmp(p, " world", 6), "token 995");
    CHECK(tern_tok_token(gpt2, 50257, &len) == NULL, "id out of range has bytes");
    CHECK(tern_tok_token(gpt2, -1, &len) == NULL, "negative id has bytes");
    /* the two GPT-2 namings of the same files give the same identity */
    uint8_t h[TERN_HASH_BYTES];
    CHECK(tern_tok_hash_dir(h, "data/gpt2", NULL) == TERN_OK && !memcmp(h, tern_tok_hash(gpt2), sizeof h), "hash_dir");
    const char *d = test_tmpdir("tok_hf_names");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp data/gpt2/encoder.json %s/vocab.json && cp data/gpt2/vocab.bpe %s/merges.txt", d, d);
    CHECK(system(cmd) == 0, "copy");
    uint8_t h2[TERN_HASH_BYTES];
    CHECK(tern_tok_hash_dir(h2, d, NULL) == TERN_OK && !memcmp(h, h2, sizeof h), "HF names hash differently");
    /* the identity is the content: vocab.json written by another program (cJSON prints raw UTF-8
     * where OpenAI's file has \u escapes) and merges.txt without its #version line are the same
     * tokenizer, though the files' older hash differs; one merge less is another tokenizer */
    test_content_identity(h);
    /* a decode error names the position */
    int32_t bad[3] = {1, 2, 70000};
    char *dec = NULL;
    size_t dn = 0;
    CHECK(tern_tok_decode(gpt2, bad, 3, &dec, &dn) == TERN_EINVAL, "bad id decodes");
    CHECK(!strcmp(tern_errmsg(), "token 2 is id 70000, outside the vocabulary (ids 0 to 50256)"), "msg: %s", tern_errmsg());
    free(dec);
}

/* A big text encodes the same on 1 and on all threads, in memory and streamed from a file. */
static void test_threads_and_stream(void) {
    size_t total = 0;
    for (size_t i = 0; i < ncases; i++) total += cases[i].n + 1;
    size_t reps = (9u << 20) / total + 1; /* > 8 MiB: the streaming reader cuts blocks */
    size_t n = total * reps;
    uint8_t *big = malloc(n);
    size_t k = 0;
    for (size_t r = 0; r < reps; r++)
        for (size_t i = 0; i < ncases; i++) {
            memcpy(big + k, cases[(i + r) % ncases].text, cases[(i + r) % ncases].n);
            k += cases[(i + r) % ncases].n;
            big[k++] = (uint8_t)(r % 3 == 0 ? '\n' : r % 3 == 1 ? ' ' : 'x');
        }
    tern_ids one = {0}, all = {0}, streamed = {0};
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK(tern_tok_encode(gpt2, big, n, &one) == TERN_OK, "%s", tern_errmsg());
    omp_set_num_threads(nt > 1 ? nt : 2);
    CHECK(tern_tok_encode(gpt2, big, n, &all) == TERN_OK, "%s", tern_errmsg());
    CHECK(one.n == all.n && !memcmp(one.p, all.p, one.n * 4), "threads change the ids (%zu vs %zu)", one.n, all.n);
    const char *d = test_tmpdir("tok_stream");
    char path[600];
    snprintf(path, sizeof path, "%s/big.txt", d);
    CHECK(write_file(path, big, n) == 0, "write");
    int fd = open(path, O_RDONLY);
    CHECK(tern_tok_encode_fd(gpt2, fd, path, (tern_tok_sink)tern_ids_push, &streamed) == TERN_OK, "%s", tern_errmsg());
    close(fd);
    CHECK(one.n == streamed.n && !memcmp(one.p, streamed.p, one.n * 4), "streaming changes the ids (%zu vs %zu)", one.n,
          streamed.n);
    char *dec = NULL;
    size_t dn = 0;
    CHECK(tern_tok_decode(gpt2, all.p, all.n, &dec, &dn) == TERN_OK && dn == n && !memcmp(dec, big, n), "round trip");
    omp_set_num_threads(nt);
    free(dec);
    free(big);
    tern_ids_free(&one);
    tern_ids_free(&all);
    tern_ids_free(&streamed);
}

/* ---- the program ---- */

static void test_cli_encode_decode(void) {
    const char *d = test_tmpdir("tok_cli");
    char out[1 << 16], path[600], ids[600], back[600];
    /* a multilingual case from the fixture, through a file and through standard input */
    size_t pick = 0;
    for (size_t i = 0; i < ncases; i++)
        if (cases[i].n > 20 && cases[i].n < 200 && memchr(cases[i].text, 0xE6, cases[i].n)) {
            pick = i;
            break;
        }
    snprintf(path, sizeof path, "%s/in.txt", d);
    snprintf(ids, sizeof ids, "%s/in.ids", d);
    snprintf(back, sizeof back, "%s/back.txt", d);
    write_file(path, cases[pick].text, cases[pick].n);
    char want[8192];
    size_t k = 0;
    for (size_t i = 0; i < cases[pick].nids; i++) k += (size_t)snprintf(want + k, sizeof want - k, i ? " %d" : "%d", cases[pick].ids[i]);
    snprintf(want + k, sizeof want - k, "\n");
    int rc = run_cmd(out, sizeof out, "%s tokenizer encode --tokenizer data/gpt2 %s", test_tern_bin(), path);
    CHECK(rc == 0 && !strcmp(out, want), "encode: rc %d, got '%s', want '%s'", rc, out, want);
    rc = run_cmd(out, sizeof out, "%s tokenizer encode --tokenizer data/gpt2 < %s", test_tern_bin(), path);
    CHECK(rc == 0 && !strcmp(out, want), "encode from stdin: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "(%s tokenizer encode --tokenizer data/gpt2 %s > %s && %s tokenizer decode --tokenizer data/gpt2 %s > %s && cmp %s %s)",
                 test_tern_bin(), path, ids, test_tern_bin(), ids, back, path, back);
    CHECK(rc == 0, "round trip through the program: %s", out);
    rc = run_cmd(out, sizeof out, "printf '15496  995\\n\\t0' | %s tokenizer decode --tokenizer data/gpt2", test_tern_bin());
    CHECK(rc == 0 && !strcmp(out, "Hello world!"), "decode from stdin: '%s'", out);
}

/* Invalid UTF-8 is encoded byte by byte and comes back exactly. */
static void test_bad_utf8(void) {
    const char *d = test_tmpdir("tok_utf8");
    char out[4096], path[600], ids[600], back[600];
    snprintf(path, sizeof path, "%s/bad.txt", d);
    snprintf(ids, sizeof ids, "%s/bad.ids", d);
    snprintf(back, sizeof back, "%s/back.txt", d);
    static const uint8_t text[] = "caf\xe9 \xff\xfe don\x92t \xed\xa0\x80 \xc0\xaf ok \xe2\x82";
    write_file(path, text, sizeof text - 1);
    int rc = run_cmd(out, sizeof out, "%s tokenizer encode --tokenizer data/gpt2 %s", test_tern_bin(), path);
    /* ids from encoder.py on the text decoded with surrogateescape (made with the fixture tool) */
    CHECK(rc == 0 && !strcmp(out, "66 1878 165 220 187 186 836 240 83 220 169 254 222 220 124 107 12876 2343 224\n"),
          "rc %d: %s", rc, out);
    rc = run_cmd(out, sizeof out, "(%s tokenizer encode --tokenizer data/gpt2 %s > %s && %s tokenizer decode --tokenizer data/gpt2 %s > %s && cmp %s %s)",
                 test_tern_bin(), path, ids, test_tern_bin(), ids, back, path, back);
    CHECK(rc == 0, "invalid UTF-8 does not round-trip: %s", out);
}

static void test_empty_and_missing(void) {
    const char *d = test_tmpdir("tok_empty");
    char out[4096], path[600];
    snprintf(path, sizeof path, "%s/empty.txt", d);
    write_file(path, "", 0);
    int rc = run_cmd(out, sizeof out, "%s tokenizer encode --tokenizer data/gpt2 %s", test_tern_bin(), path);
    CHECK(rc == 0 && !strcmp(out, "\n"), "empty encode: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "%s tokenizer decode --tokenizer data/gpt2 %s", test_tern_bin(), path);
    CHECK(rc == 0 && !strcmp(out, ""), "empty decode: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "%s tokenizer encode --tokenizer data/gpt2 %s/missing.txt", test_tern_bin(), d);
    char want[1024];
    snprintf(want, sizeof want, "tern tokenizer encode: %s/missing.txt: cannot open: No such file or directory\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "missing file: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "%s tokenizer decode --tokenizer data/gpt2 %s/missing.ids", test_tern_bin(), d);
    snprintf(want, sizeof want, "tern tokenizer decode: %s/missing.ids: cannot open: No such file or directory\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "missing ids: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "%s tokenizer encode --tokenizer %s/nowhere %s", test_tern_bin(), d, path);
    snprintf(want, sizeof want, "tern tokenizer encode: %s/nowhere: no such tokenizer folder\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "missing folder: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "%s tokenizer encode --tokenizer %s %s", test_tern_bin(), d, path);
    snprintf(want, sizeof want,
             "tern tokenizer encode: %s: no tokenizer here: expected vocab.json and merges.txt, or encoder.json and vocab.bpe\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "empty folder: rc %d '%s'", rc, out);
    /* bad ids */
    snprintf(path, sizeof path, "%s/bad.ids", d);
    write_file(path, "15496 99999 995", 15);
    rc = run_cmd(out, sizeof out, "%s tokenizer decode --tokenizer data/gpt2 %s", test_tern_bin(), path);
    /* the message names the id as written, and nothing is written before it */
    snprintf(want, sizeof want,
             "tern tokenizer decode: %s: id 99999 at byte 6 is outside the vocabulary (ids 0 to 50256); nothing was written\n", path);
    CHECK(rc == 1 && !strcmp(out, want), "bad id: rc %d '%s'", rc, out);
    write_file(path, "15496 123456789012345678901234567890\n", 37);
    rc = run_cmd(out, sizeof out, "%s tokenizer decode --tokenizer data/gpt2 %s", test_tern_bin(), path);
    snprintf(want, sizeof want,
             "tern tokenizer decode: %s: id 12345678901234567890... at byte 6 is outside the vocabulary (ids 0 to 50256); nothing was "
             "written\n",
             path);
    CHECK(rc == 1 && !strcmp(out, want), "long id: rc %d '%s'", rc, out);
    write_file(path, "15496 x995", 10);
    rc = run_cmd(out, sizeof out, "%s tokenizer decode --tokenizer data/gpt2 %s", test_tern_bin(), path);
    snprintf(want, sizeof want,
             "tern tokenizer decode: %s: byte 6: expected token ids (decimal numbers separated by spaces), found 'x'; nothing was "
             "written\n",
             path);
    CHECK(rc == 1 && !strcmp(out, want), "bad char: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "%s tokenizer encode %s", test_tern_bin(), path);
    CHECK(rc == 2 && !strcmp(out, "tern tokenizer encode: --tokenizer DIR is required\n"), "usage: rc %d '%s'", rc, out);
}

/* 100 MB with no newline: the text is a sentence repeated, so the ids are known exactly. */
typedef struct {
    int32_t *first, *mid;
    size_t nfirst, nmid, seen, bad;
    size_t units;
} period_ctx;

static tern_status period_sink(void *ctx, const int32_t *ids, size_t n) {
    period_ctx *c = ctx;
    for (size_t i = 0; i < n; i++, c->seen++) {
        size_t k = c->seen;
        int32_t want;
        if (k < c->nfirst) want = c->first[k];
        else if (k - c->nfirst < (c->units - 1) * c->nmid) want = c->mid[(k - c->nfirst) % c->nmid];
        else want = k - c->nfirst == (c->units - 1) * c->nmid ? 220 : -1; /* the final space */
        if (ids[i] != want) c->bad++;
    }
    return TERN_OK;
}

static void test_100mb_no_newline(void) {
    static const char unit[] = "The quick brown fox jumps over the lazy dog; 12345 naïve café. ";
    size_t ul = sizeof unit - 1, units = (100u << 20) / ul;
    const char *d = test_tmpdir("tok_100mb");
    char path[600], out[4096];
    snprintf(path, sizeof path, "%s/long.txt", d);
    FILE *f = fopen(path, "wb");
    char *block = malloc(ul * 4096);
    for (size_t i = 0; i < 4096; i++) memcpy(block + i * ul, unit, ul);
    for (size_t u = 0; u < units; u += 4096) fwrite(block, ul, units - u < 4096 ? units - u : 4096, f);
    fclose(f);
    free(block);
    tern_ids first = {0}, mid = {0};
    tern_tok_encode(gpt2, unit, ul - 1, &first);                   /* "The ... café." */
    char withspace[128] = " ";
    memcpy(withspace + 1, unit, ul - 1);
    tern_tok_encode(gpt2, withspace, ul, &mid);                    /* " The ... café." */
    period_ctx c = {first.p, mid.p, first.n, mid.n, 0, 0, units};
    double t0 = tern_now();
    int fd = open(path, O_RDONLY);
    tern_status st = tern_tok_encode_fd(gpt2, fd, path, period_sink, &c);
    close(fd);
    double dt = tern_now() - t0;
    CHECK(st == TERN_OK, "%s", tern_errmsg());
    CHECK(c.seen == first.n + (units - 1) * mid.n + 1 && c.bad == 0, "%zu ids, %zu wrong", c.seen, c.bad);
    printf("  100 MB without a newline: %zu tokens in %.2f s\n", c.seen, dt);
    tern_ids_free(&first);
    tern_ids_free(&mid);
    /* a single pre-token longer than the limit is a clear error */
    snprintf(path, sizeof path, "%s/run.txt", d);
    f = fopen(path, "wb");
    char *as = malloc(1 << 20);
    memset(as, 'a', 1 << 20);
    for (int i = 0; i < 17; i++) fwrite(as, 1, 1 << 20, f);
    fclose(f);
    free(as);
    int rc = run_cmd(out, sizeof out, "%s tokenizer encode --tokenizer data/gpt2 %s", test_tern_bin(), path);
    char want[1024];
    snprintf(want, sizeof want,
             "tern tokenizer encode: %s: from byte 0, more than 16777216 bytes with no break between pre-tokens (one run of "
             "letters, digits, symbols or spaces), more than tern encodes as one pre-token\n",
             path);
    CHECK(rc == 1 && !strcmp(out, want), "long run: rc %d '%s'", rc, out);
    snprintf(out, sizeof out, "rm -f %s/long.txt %s/run.txt", d, d);
    CHECK(system(out) == 0, "rm");
}

/* ---- bad tokenizer files: exact messages ---- */

static char *small_vocab;
static size_t small_vocab_n;

static tern_status load_small(const char *merges, const char *vocab) {
    tern_tok *t = NULL;
    tern_status st = tern_tok_from_buffers(&t, vocab ? vocab : small_vocab, vocab ? strlen(vocab) : small_vocab_n, "v.json",
                                           merges, strlen(merges), "m.txt");
    tern_tok_free(t);
    return st;
}

static void test_bad_tokenizer_files(void) {
    CHECK(tern_read_file("tests/fixtures/tok/train_small_vocab.json", &small_vocab, &small_vocab_n) == TERN_OK, "read");
    CHECK(load_small("#version: 0.2\nĠ t\nh e\n", NULL) == TERN_OK, "good merges refused: %s", tern_errmsg());
    CHECK(load_small("Ġ t\nh e", NULL) == TERN_OK, "merges without header or final newline: %s", tern_errmsg());
    struct {
        const char *merges, *msg;
    } bad[] = {
        {"#version: 0.2\nĠ t\nĠt\n", "m.txt:3: expected two tokens separated by one space, found \"Ġt\""},
        {"#version: 0.2\nĠ t\nĠ  t\n", "m.txt:3: expected two tokens separated by one space, found \"Ġ  t\""},
        {"Ġ t\n\nh e\n", "m.txt:2: expected two tokens separated by one space, found \"\""},
        {"Ġ t\nh e x\n", "m.txt:2: expected two tokens separated by one space, found \"h e x\""},
        {"Ġ t\nqqq e\n", "m.txt:2: \"qqq\" is not in the vocabulary"},
        {"Ġ t\nh e\nq z\n", "m.txt:3: the merge \"q z\" makes a token that is not in the vocabulary"},
        {"Ġ t\nh e\nĠ t\n", "m.txt:3: the merge \"Ġ t\" repeats an earlier line"},
        {"Ġ t\nh e\na \x01\n", "m.txt:3: \"\x01\" has U+0001, which is not one of GPT-2's 256 byte characters"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tern_status st = load_small(bad[i].merges, NULL);
        CHECK(st == TERN_EFORMAT && !strcmp(tern_errmsg(), bad[i].msg), "case %zu: st %d, '%s'", i, st, tern_errmsg());
    }
    /* vocabularies */
    char *noeot = strdup(small_vocab);
    char *e = strstr(noeot, ", \"<|endoftext|>\": 399}");
    CHECK(e != NULL, "fixture layout");
    if (e) strcpy(e, "}");
    CHECK(load_small("", noeot) == TERN_EFORMAT &&
              !strcmp(tern_errmsg(), "v.json: no <|endoftext|> token; tern needs it to separate documents"),
          "no eot: %s", tern_errmsg());
    char *nobyte = strdup(small_vocab);
    memcpy(strstr(nobyte, "\"!\": 0"), "\"<|endoftext|>\": 0", 18); /* the same length: no longer a byte */
    CHECK(load_small("", nobyte) == TERN_EFORMAT, "missing byte accepted");
    struct {
        const char *vocab, *msg;
    } vb[] = {
        {"{\"a\": 0", "v.json: not valid JSON (error near byte 6)"},
        {"[1, 2]", "v.json: expected a JSON object of token -> id"},
        {"{\"a\": 0}", "v.json: 1 tokens; a byte-level vocabulary has at least 257 (256 bytes and <|endoftext|>)"},
    };
    for (size_t i = 0; i < sizeof vb / sizeof vb[0]; i++) {
        tern_status st = load_small("", vb[i].vocab);
        CHECK(st == TERN_EFORMAT && !strcmp(tern_errmsg(), vb[i].msg), "vocab case %zu: '%s'", i, tern_errmsg());
    }
    char *dupid = strdup(small_vocab);
    memcpy(strstr(dupid, "\"\\\"\": 1"), "\"\\\"\": 0", 7);
    CHECK(load_small("", dupid) == TERN_EFORMAT && !strcmp(tern_errmsg(), "v.json: id 0 is given to two tokens"), "dup id: %s",
          tern_errmsg());
    char *badid = strdup(small_vocab);
    memcpy(strstr(badid, "\"\\\"\": 1"), "\"\\\"\": x", 7);
    CHECK(load_small("", badid) == TERN_EFORMAT, "bad id accepted");
    free(noeot);
    free(nobyte);
    free(dupid);
    free(badid);

    /* through the program: a folder with a malformed merges line, and one without <|endoftext|> */
    const char *d = test_tmpdir("tok_badfiles");
    char path[600], out[4096], want[1024];
    snprintf(path, sizeof path, "%s/vocab.json", d);
    write_file(path, small_vocab, small_vocab_n);
    snprintf(path, sizeof path, "%s/merges.txt", d);
    write_file(path, "#version: 0.2\nĠ t\nĠt\n", strlen("#version: 0.2\nĠ t\nĠt\n"));
    int rc = run_cmd(out, sizeof out, "echo hi | %s tokenizer encode --tokenizer %s", test_tern_bin(), d);
    snprintf(want, sizeof want, "tern tokenizer encode: %s/merges.txt:3: expected two tokens separated by one space, found \"Ġt\"\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "malformed merges: rc %d '%s'", rc, out);
    write_file(path, "#version: 0.2\n", 14);
    snprintf(path, sizeof path, "%s/vocab.json", d);
    char *v2 = strdup(small_vocab);
    strcpy(strstr(v2, ", \"<|endoftext|>\": 399}"), "}");
    write_file(path, v2, strlen(v2));
    free(v2);
    rc = run_cmd(out, sizeof out, "echo hi | %s tokenizer encode --tokenizer %s", test_tern_bin(), d);
    snprintf(want, sizeof want, "tern tokenizer encode: %s/vocab.json: no <|endoftext|> token; tern needs it to separate documents\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "no eot: rc %d '%s'", rc, out);
    snprintf(path, sizeof path, "%s/merges.txt", d);
    unlink(path);
    write_file(path, "", 0);
}

/* ---- training ---- */

static void test_train_matches_reference(void) {
    const char *d = test_tmpdir("tok_train");
    const char *files[] = {"tests/fixtures/tok/train_small.txt"};
    size_t got = 0;
    CHECK(tern_tok_train(files, 1, 400, d, &got) == TERN_OK, "%s", tern_errmsg());
    CHECK(got == 400, "got %zu tokens", got);
    char path[600];
    char *a, *b;
    size_t an, bn;
    snprintf(path, sizeof path, "%s/merges.txt", d);
    CHECK(tern_read_file(path, &a, &an) == TERN_OK, "read merges");
    CHECK(tern_read_file("tests/fixtures/tok/train_small_merges.txt", &b, &bn) == TERN_OK, "read fixture");
    CHECK(an == bn && !memcmp(a, b, an), "merges differ from the reference trainer");
    free(a);
    free(b);
    /* the vocabularies agree entry by entry (the fixture is written by Python's json) */
    tern_tok *t1, *t2;
    CHECK(tern_tok_load(&t1, d, NULL) == TERN_OK, "%s", tern_errmsg());
    char *fv, *fm;
    size_t fvn, fmn;
    tern_read_file("tests/fixtures/tok/train_small_vocab.json", &fv, &fvn);
    tern_read_file("tests/fixtures/tok/train_small_merges.txt", &fm, &fmn);
    CHECK(tern_tok_from_buffers(&t2, fv, fvn, "fixture vocab", fm, fmn, "fixture merges") == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_tok_vocab_size(t1) == 400 && tern_tok_vocab_size(t2) == 400 && tern_tok_eot(t1) == 399, "sizes");
    for (int32_t id = 0; id < 400; id++) {
        size_t l1, l2;
        const uint8_t *p1 = tern_tok_token(t1, id, &l1), *p2 = tern_tok_token(t2, id, &l2);
        CHECK(l1 == l2 && !memcmp(p1, p2, l1), "token %d differs", id);
    }
    /* the first 256 ids are the bytes in GPT-2's order, as in encoder.json */
    for (int32_t id = 0; id < 256; id++) {
        size_t l1, l2;
        const uint8_t *p1 = tern_tok_token(t1, id, &l1), *p2 = tern_tok_token(gpt2, id, &l2);
        CHECK(l1 == 1 && l2 == 1 && p1[0] == p2[0], "byte token %d", id);
    }
    /* and it round-trips the text it learned from */
    char *text;
    size_t tn;
    tern_read_file("tests/fixtures/tok/train_small.txt", &text, &tn);
    tern_ids ids = {0};
    CHECK(tern_tok_encode(t1, text, tn, &ids) == TERN_OK, "encode");
    CHECK(ids.n < tn * 2 / 3, "400 tokens compress this text poorly: %zu ids for %zu bytes", ids.n, tn);
    char *dec = NULL;
    size_t dn = 0;
    CHECK(tern_tok_decode(t1, ids.p, ids.n, &dec, &dn) == TERN_OK && dn == tn && !memcmp(dec, text, tn), "round trip");
    free(dec);
    free(text);
    free(fv);
    free(fm);
    tern_ids_free(&ids);
    tern_tok_free(t1);
    tern_tok_free(t2);
}

static void test_train_cli(void) {
    const char *d = test_tmpdir("tok_train_cli");
    char out[4096], want[1024];
    /* 257: plain bytes and <|endoftext|> */
    int rc = run_cmd(out, sizeof out, "%s tokenizer train --vocab-size 257 -o %s/b tests/fixtures/tok/train_small.txt", test_tern_bin(), d);
    CHECK(rc == 0, "rc %d: %s", rc, out);
    char path[600];
    snprintf(path, sizeof path, "%s/b", d);
    tern_tok *t;
    CHECK(tern_tok_load(&t, path, NULL) == TERN_OK && tern_tok_vocab_size(t) == 257 && tern_tok_eot(t) == 256, "257: %s", tern_errmsg());
    tern_ids ids = {0};
    tern_tok_encode(t, "hi there", 8, &ids);
    CHECK(ids.n == 8, "bytes only: %zu ids", ids.n);
    tern_ids_free(&ids);
    tern_tok_free(t);
    snprintf(path, sizeof path, "%s/b/merges.txt", d);
    char *m;
    size_t mn;
    tern_read_file(path, &m, &mn);
    CHECK(mn == 14 && !memcmp(m, "#version: 0.2\n", 14), "257 has merges");
    free(m);
    /* a text too small for the size asked: a smaller vocabulary and a note */
    snprintf(path, sizeof path, "%s/tiny.txt", d);
    write_file(path, "abab", 4);
    rc = run_cmd(out, sizeof out, "%s tokenizer train --vocab-size 300 -o %s/t %s", test_tern_bin(), d, path);
    snprintf(want, sizeof want, "the text has no more pairs to merge, so the vocabulary has 259 tokens, not 300");
    CHECK(rc == 0 && strstr(out, want), "tiny: rc %d '%s'", rc, out);
    /* an empty file trains the bytes alone */
    snprintf(path, sizeof path, "%s/empty.txt", d);
    write_file(path, "", 0);
    rc = run_cmd(out, sizeof out, "%s tokenizer train --vocab-size 300 -o %s/e %s", test_tern_bin(), d, path);
    CHECK(rc == 0 && strstr(out, "the vocabulary has 257 tokens, not 300"), "empty: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "%s tokenizer train --vocab-size 300 -o %s/m %s/missing.txt", test_tern_bin(), d, d);
    snprintf(want, sizeof want, "tern tokenizer train: %s/missing.txt: cannot open: No such file or directory\n", d);
    CHECK(rc == 1 && !strcmp(out, want), "missing: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "OMP_NUM_THREADS=2 %s tokenizer train --vocab-size 300 -o %s/m %s %s/missing.txt", test_tern_bin(), d,
                 path, d);
    CHECK(rc == 1 && !strcmp(out, want), "missing among files read in parallel: rc %d '%s'", rc, out);
    rc = run_cmd(out, sizeof out, "%s tokenizer train --vocab-size 256 -o %s/x %s", test_tern_bin(), d, path);
    CHECK(rc == 2 && !strcmp(out, "tern tokenizer train: --vocab-size must be at least 257 (256 bytes and <|endoftext|>), got 256\n"),
          "256: rc %d '%s'", rc, out);
    /* the same on one thread and on two, with one file (blocks split over threads) and with three
     * (files split over threads) */
    rc = run_cmd(out, sizeof out,
                 "(OMP_NUM_THREADS=1 %s tokenizer train --vocab-size 350 -o %s/one tests/fixtures/tok/train_small.txt && "
                 "OMP_NUM_THREADS=2 %s tokenizer train --vocab-size 350 -o %s/two tests/fixtures/tok/train_small.txt && "
                 "cmp %s/one/merges.txt %s/two/merges.txt && cmp %s/one/vocab.json %s/two/vocab.json)",
                 test_tern_bin(), d, test_tern_bin(), d, d, d, d, d);
    CHECK(rc == 0, "threads change training: %s", out);
    const char *three = "tests/fixtures/tok/train_small.txt tests/fixtures/tok/gpt2_cases.tsv tests/fixtures/tok/train_small_merges.txt";
    rc = run_cmd(out, sizeof out,
                 "(OMP_NUM_THREADS=1 %s tokenizer train --vocab-size 600 -o %s/one3 %s && "
                 "OMP_NUM_THREADS=2 %s tokenizer train --vocab-size 600 -o %s/two3 %s && "
                 "cmp %s/one3/merges.txt %s/two3/merges.txt && cmp %s/one3/vocab.json %s/two3/vocab.json)",
                 test_tern_bin(), d, three, test_tern_bin(), d, three, d, d, d, d);
    CHECK(rc == 0, "threads change training on three files: %s", out);
}

int main(void) {
    if (tern_tok_load(&gpt2, "data/gpt2", NULL) != TERN_OK) {
        printf("cannot load data/gpt2: %s\n", tern_errmsg());
        return 1;
    }
    load_cases();
    RUN(test_gpt2_basics);
    RUN(test_gpt2_vectors);
    RUN(test_threads_and_stream);
    RUN(test_cli_encode_decode);
    RUN(test_bad_utf8);
    RUN(test_empty_and_missing);
    RUN(test_100mb_no_newline);
    RUN(test_bad_tokenizer_files);
    RUN(test_train_matches_reference);
    RUN(test_train_cli);
    for (size_t i = 0; i < ncases; i++) {
        free(cases[i].text);
        free(cases[i].ids);
    }
    free(cases);
    free(small_vocab);
    tern_tok_free(gpt2);
    return check_exit();
}
