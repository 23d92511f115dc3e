/* Tests of the data module: shards (round trip, every bad header and body, with exact messages),
 * the manifest (tern prepare is tests/test_corpus.c's), and the loader on shards built so that token i equals i (mod vocab): exact
 * windows and shard transitions, shuffles that are permutations stable for a seed, rank slices
 * that are disjoint and cover the window. */
#include "check.h"
#include "tern.h"

#include <unistd.h>

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A shard in memory, made by hand (not by the writer): header fields as given. */
static uint8_t *hand_shard(size_t *n, uint32_t bpt, uint64_t vocab, uint64_t count, const uint32_t *toks, size_t ntoks) {
    *n = 64 + ntoks * bpt;
    uint8_t *p = calloc(1, *n);
    memcpy(p, "TERNTOKS", 8);
    put32(p + 8, 1);
    put32(p + 12, bpt);
    put64(p + 16, vocab);
    put64(p + 24, count);
    for (size_t i = 0; i < ntoks; i++) {
        if (bpt == 2) {
            p[64 + 2 * i] = (uint8_t)toks[i];
            p[64 + 2 * i + 1] = (uint8_t)(toks[i] >> 8);
        } else {
            put32(p + 64 + 4 * i, toks[i]);
        }
    }
    tern_hash(p + 32, p + 64, ntoks * bpt);
    return p;
}

static void test_shard_round_trip(void) {
    const char *d = test_tmpdir("data_shard");
    char path[600];
    snprintf(path, sizeof path, "%s/s.bin", d);
    for (int pass = 0; pass < 2; pass++) {
        size_t vocab = pass ? 70000 : 50257;
        tern_shard_writer *w;
        CHECK(tern_shard_writer_open(&w, path, vocab, NULL, NULL) == TERN_OK, "%s", tern_errmsg());
        int32_t ids[1000];
        for (int k = 0; k < 3; k++) {
            for (int i = 0; i < 1000; i++) ids[i] = (int32_t)((k * 1000 + i) * 37 % (int)vocab);
            CHECK(tern_shard_writer_add(w, ids, 1000) == TERN_OK, "add");
        }
        int32_t bad = (int32_t)vocab;
        CHECK(tern_shard_writer_add(w, &bad, 1) == TERN_EINVAL, "an id outside the vocabulary is written");
        uint64_t n;
        uint8_t sum[32];
        CHECK(tern_shard_writer_close(w, &n, sum) == TERN_OK && n == 3000, "close: %s", tern_errmsg());
        tern_map m;
        CHECK(tern_map_file(&m, path) == TERN_OK, "map");
        CHECK(m.size == 64 + 3000 * (pass ? 4u : 2u), "size %zu", m.size);
        tern_shard_view v;
        CHECK(tern_shard_parse(&v, m.data, m.size, path, 1) == TERN_OK, "%s", tern_errmsg());
        CHECK(v.n_tokens == 3000 && v.vocab_size == vocab && v.bytes_per_token == (pass ? 4u : 2u) && !memcmp(v.checksum, sum, 32),
              "header");
        int ok = 1;
        for (uint64_t i = 0; i < 3000; i++) ok &= tern_shard_token(&v, i) == (uint32_t)(i * 37 % vocab);
        CHECK(ok, "tokens differ");
        /* the checksum is BLAKE2b-256 of the token bytes */
        uint8_t h[32];
        tern_hash(h, m.data + 64, m.size - 64);
        CHECK(!memcmp(h, sum, 32), "checksum is not BLAKE2b of the tokens");
        tern_unmap(&m);
    }
    /* an aborted writer leaves nothing behind */
    snprintf(path, sizeof path, "%s/gone.bin", d);
    tern_shard_writer *w;
    tern_shard_writer_open(&w, path, 300, NULL, NULL);
    tern_shard_writer_abort(w);
    CHECK(!tern_path_exists(path), "aborted shard exists");
    char cmd[700], out[256];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", d);
    run_cmd(out, sizeof out, "%s", cmd);
    CHECK(!strcmp(out, "0\n"), "temporary files left: %s", out);
}

static void test_shard_bad(void) {
    uint32_t toks[5] = {1, 2, 3, 4, 5};
    size_t n;
    uint8_t *p = hand_shard(&n, 2, 50257, 5, toks, 5);
    tern_shard_view v;
    CHECK(tern_shard_parse(&v, p, n, "s.bin", 1) == TERN_OK, "good shard: %s", tern_errmsg());
    struct {
        const char *what, *msg;
    } cases[] = {
        {"short", "s.bin: 63 bytes, shorter than a shard header (64 bytes)"},
        {"magic", "s.bin: not a tern token shard (the first 8 bytes are not \"TERNTOKS\")"},
        {"sealed", "s.bin: a sealed file, where a plain token shard was expected"},
        {"version", "s.bin: shard format version 2; this tern reads version 1"},
        {"bpt", "s.bin: 4 bytes per token in the header, but a vocabulary of 50257 needs 2"},
        {"vocab0", "s.bin: vocabulary size 0 in the header is out of range"},
        {"count+", "s.bin: the header says 6 tokens (76 bytes with the header), but the file has 74 bytes"},
        {"truncated", "s.bin: the header says 5 tokens (74 bytes with the header), but the file has 73 bytes"},
        {"huge", "s.bin: the header says 18446744073709551615 tokens, more than a file of 74 bytes holds"},
        {"checksum", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *q = malloc(n);
        memcpy(q, p, n);
        size_t m = n;
        const char *w = cases[i].what;
        if (!strcmp(w, "short")) m = 63;
        if (!strcmp(w, "magic")) q[0] = 'X';
        if (!strcmp(w, "sealed")) memcpy(q, "TERNSEAL", 8);
        if (!strcmp(w, "version")) put32(q + 8, 2);
        if (!strcmp(w, "bpt")) put32(q + 12, 4);
        if (!strcmp(w, "vocab0")) put64(q + 16, 0);
        if (!strcmp(w, "count+")) put64(q + 24, 6);
        if (!strcmp(w, "truncated")) m = n - 1;
        if (!strcmp(w, "huge")) put64(q + 24, UINT64_MAX);
        if (!strcmp(w, "checksum")) q[64] ^= 1;
        tern_status st = tern_shard_parse(&v, q, m, "s.bin", 1);
        if (cases[i].msg) CHECK(st == TERN_EFORMAT && !strcmp(tern_errmsg(), cases[i].msg), "%s: '%s'", w, tern_errmsg());
        else
            CHECK(st == TERN_EFORMAT && strstr(tern_errmsg(), "s.bin: the tokens do not match the header's checksum (header ") &&
                      strstr(tern_errmsg(), "...): the file is damaged"),
                  "%s: '%s'", w, tern_errmsg());
        free(q);
    }
    /* a token outside the vocabulary, under a correct checksum */
    uint32_t badt[5] = {1, 2, 300, 4, 5};
    uint8_t *b = hand_shard(&n, 2, 257, 5, badt, 5);
    CHECK(tern_shard_parse(&v, b, n, "s.bin", 1) == TERN_EFORMAT && !strcmp(tern_errmsg(), "s.bin: token 2 is 300, outside the vocabulary of 257"),
          "'%s'", tern_errmsg());
    free(b);
    free(p);
}

/* ---- manifest ---- */

static const char good_manifest[] =
    "{\"format\": \"tern-data\", \"version\": 1, \"tokenizer_blake2b\": "
    "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\", \"vocab_size\": 50257, \"eot\": 50256, "
    "\"bytes_per_token\": 2, \"val_fraction\": 0.25, \"seed\": \"18446744073709551615\", \"documents\": {\"train\": 3, \"val\": 1}, "
    "\"shards\": [{\"file\": \"train_000000.bin\", \"split\": \"train\", \"tokens\": 9007199254740992, \"blake2b\": "
    "\"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\"}, {\"file\": \"v.bin\", \"split\": \"val\", "
    "\"tokens\": 0, \"blake2b\": \"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\"}]}";

static char *replaced(const char *s, const char *from, const char *to) {
    const char *at = strstr(s, from);
    size_t n = strlen(s) + strlen(to) + 1;
    char *r = malloc(n);
    if (!at) {
        strcpy(r, s);
        return r;
    }
    memcpy(r, s, (size_t)(at - s));
    strcpy(r + (at - s), to);
    strcat(r, at + strlen(from));
    return r;
}

typedef struct {
    const char *from, *to, *msg;
} bad_edit;

/* Each edit of a good manifest's text must be refused with exactly its message. */
static void check_bad_edits(const char *good, const bad_edit *bad, size_t n) {
    tern_manifest m;
    for (size_t i = 0; i < n; i++) {
        char *t = replaced(good, bad[i].from, bad[i].to);
        tern_status st = tern_manifest_parse(&m, t, strlen(t), "m.json");
        CHECK(st == TERN_EFORMAT && !strcmp(tern_errmsg(), bad[i].msg), "case %zu: '%s'", i, tern_errmsg());
        free(t);
    }
}

static void test_manifest(void) {
    tern_manifest m;
    CHECK(tern_manifest_parse(&m, good_manifest, strlen(good_manifest), "m.json") == TERN_OK, "%s", tern_errmsg());
    CHECK(m.vocab_size == 50257 && m.eot == 50256 && m.bytes_per_token == 2 && m.seed == UINT64_MAX && m.val_fraction == 0.25 &&
              m.docs[0] == 3 && m.docs[1] == 1 && m.n_shards == 2 && m.shards[0].n_tokens == 9007199254740992ull &&
              m.shards[1].split == TERN_SPLIT_VAL && !strcmp(m.shards[1].file, "v.bin") && m.tokenizer_hash[1] == 0x11,
          "fields");
    /* written and read back */
    const char *d = test_tmpdir("data_manifest");
    CHECK(tern_manifest_write(&m, d, NULL) == TERN_OK, "%s", tern_errmsg());
    tern_manifest m2;
    CHECK(tern_manifest_read(&m2, d, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(m2.n_shards == 2 && m2.seed == m.seed && m2.val_fraction == 0.25 && !memcmp(m2.shards[0].checksum, m.shards[0].checksum, 32) &&
              m2.shards[0].n_tokens == m.shards[0].n_tokens,
          "round trip");
    tern_manifest_free(&m2);
    tern_manifest_free(&m);
    static const bad_edit bad[] = {
        {"\"tern-data\"", "\"other\"", "m.json: not a tern data manifest (\"format\" is not \"tern-data\")"},
        {"\"version\": 1", "\"version\": 2", "m.json: manifest version 2; this tern reads version 1"},
        {"\"eot\": 50256", "\"eot\": 50257", "m.json: the manifest: \"eot\" must be a whole number from 0 to 50256"},
        {"\"bytes_per_token\": 2", "\"bytes_per_token\": 4", "m.json: 4 bytes per token does not fit a vocabulary of 50257"},
        {"\"tokenizer_blake2b\": \"00", "\"tokenizer_blake2b\": \"zz", "m.json: the manifest: \"tokenizer_blake2b\" must be 64 hex digits"},
        {"\"train_000000.bin\"", "\"../etc/passwd\"", "m.json: shard 0: \"file\" must be a plain file name inside the data folder"},
        {"\"v.bin\"", "\"train_000000.bin\"", "m.json: shard 1 names train_000000.bin, which shard 0 names too"},
        {"\"split\": \"val\"", "\"split\": \"test\"", "m.json: shard 1: \"split\" must be \"train\" or \"val\""},
        {"\"tokens\": 0,", "\"tokens\": -1,", "m.json: shard 1: \"tokens\" must be a whole number from 0 to 9007199254740992"},
        {"\"tokens\": 0,", "", "m.json: shard 1 has no \"tokens\""},
        {"\"seed\": \"18446744073709551615\"", "\"seed\": 5", "m.json: \"seed\" must be a decimal number in a string"},
        {"{\"format\"", "[\"format\"", "m.json: not valid JSON"},
    };
    check_bad_edits(good_manifest, bad, sizeof bad / sizeof bad[0]);
}

/* A manifest with what prepare records about how it prepared (val_split, "prepare"). */
static const char prepared_manifest[] =
    "{\"format\": \"tern-data\", \"version\": 1, \"tokenizer_blake2b\": "
    "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\", \"vocab_size\": 50257, \"eot\": 50256, "
    "\"bytes_per_token\": 2, \"val_fraction\": 0.1, \"seed\": \"7\", \"documents\": {\"train\": 2, \"val\": 1}, \"val_split\": \"documents\", "
    "\"prepare\": {\"text_key\": \"body\", \"doc_separator\": \"<|endoftext|>\", \"min_bytes\": 5, \"dedup\": true, \"binary_documents\": 1, "
    "\"skipped\": {\"empty\": 1, \"short\": 2, \"duplicate\": 3, \"invalid_json\": 4, \"missing_key\": 5, \"not_string\": 6, \"invalid_utf8\": 7, "
    "\"too_long\": 8}, \"sources\": [{\"path\": \"corpus/web \\\"a\\\"\\\\b\", \"format\": \"jsonl\", \"files\": 3, \"documents\": 2, \"bytes\": 100, "
    "\"tokens\": 30, \"skipped\": {\"empty\": 1, \"short\": 2, \"duplicate\": 3, \"invalid_json\": 4, \"missing_key\": 5, \"not_string\": 6, "
    "\"invalid_utf8\": 7, \"too_long\": 8}}, {\"path\": \"-\", \"format\": \"text\", \"files\": 1, \"documents\": 1, \"bytes\": 9, \"tokens\": 4, "
    "\"skipped\": {\"empty\": 0, \"short\": 0, \"duplicate\": 0, \"invalid_json\": 0, \"missing_key\": 0, \"not_string\": 0, \"invalid_utf8\": 0, "
    "\"too_long\": 0}}]}, "
    "\"shards\": [{\"file\": \"train_000000.bin\", \"split\": \"train\", \"tokens\": 34, \"blake2b\": "
    "\"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\"}]}";

static void test_manifest_prepare_fields(void) {
    tern_manifest m, m2;
    CHECK(tern_manifest_parse(&m, prepared_manifest, strlen(prepared_manifest), "m.json") == TERN_OK, "%s", tern_errmsg());
    CHECK(m.val_split == TERN_VAL_SPLIT_DOCUMENTS && m.has_prepare && !strcmp(m.text_key, "body") && !strcmp(m.doc_separator, "<|endoftext|>") &&
              m.min_bytes == 5 && m.dedup && m.binary_documents == 1 && m.skipped[TERN_SKIP_TOO_LONG] == 8 && m.n_sources == 2 &&
              !strcmp(m.sources[0].path, "corpus/web \"a\"\\b") && !strcmp(m.sources[0].format, "jsonl") && m.sources[0].files == 3 &&
              m.sources[0].tokens == 30 && m.sources[0].skipped[TERN_SKIP_EMPTY] == 1 && !strcmp(m.sources[1].path, "-") && m.sources[1].bytes == 9,
          "fields");
    /* written and read back the same */
    const char *d = test_tmpdir("data_manifest2");
    CHECK(tern_manifest_write(&m, d, NULL) == TERN_OK && tern_manifest_read(&m2, d, NULL) == TERN_OK, "%s", tern_errmsg());
    CHECK(m2.val_split == m.val_split && m2.n_sources == 2 && !strcmp(m2.sources[0].path, m.sources[0].path) &&
              !memcmp(m2.sources[0].skipped, m.sources[0].skipped, sizeof m.skipped) && !memcmp(m2.skipped, m.skipped, sizeof m.skipped) &&
              !strcmp(m2.doc_separator, m.doc_separator) && m2.dedup == m.dedup,
          "round trip");
    tern_manifest_free(&m2);
    tern_manifest_free(&m);
    static const bad_edit bad[] = {
        {"\"val_split\": \"documents\"", "\"val_split\": \"halves\"", "m.json: \"val_split\" must be \"none\", \"documents\" or \"tail\""},
        {"\"format\": \"jsonl\"", "\"format\": \"csv\"", "m.json: source 0: \"format\" must be \"text\", \"jsonl\" or \"mixed\""},
        {"\"too_long\": 8}}, ", "\"toolong\": 8}}, ", "m.json: source 0: \"skipped\" has no \"too_long\""},
        {"\"dedup\": true", "\"dedup\": 1", "m.json: \"prepare\": \"dedup\" must be true or false"},
        {"\"text_key\": \"body\"", "\"text_key\": 5", "m.json: \"prepare\": \"text_key\" must be a string of UTF-8 text"},
        {"\"path\": \"-\"", "\"path\": \"\\u00ff\xff\"", "m.json: source 1: \"path\" must be a string of UTF-8 text"},
        {"\"tokens\": 30", "\"tokens\": 3.5", "m.json: source 0: \"tokens\" must be a whole number from 0 to 9007199254740992"},
        {"\"sources\": [", "\"sources\": 3, \"x\": [", "m.json: \"prepare\" has no \"sources\" list"},
    };
    check_bad_edits(prepared_manifest, bad, sizeof bad / sizeof bad[0]);
}

/* ---- the loader, on shards where the token at global position i is i mod V ---- */

#define NSH 4
static const uint64_t shard_len[NSH] = {1000, 37, 555, 2049};

static uint64_t shard_base(size_t s) {
    uint64_t b = 0;
    for (size_t i = 0; i < s; i++) b += shard_len[i];
    return b;
}

/* Writes the shards and a manifest (with a made-up tokenizer hash) into d. */
static void make_counting_data(const char *d, size_t vocab, const uint8_t hash[32]) {
    tern_manifest m;
    memset(&m, 0, sizeof m);
    memcpy(m.tokenizer_hash, hash, 32);
    m.vocab_size = vocab;
    m.eot = (int64_t)vocab - 1;
    m.bytes_per_token = tern_shard_bytes_per_token(vocab);
    m.n_shards = NSH + 1;
    m.shards = calloc(NSH + 1, sizeof *m.shards);
    uint64_t g = 0;
    for (size_t s = 0; s < NSH + 1; s++) {
        int val = s == NSH;
        uint64_t len = val ? 300 : shard_len[s];
        char name[64], *path;
        snprintf(name, sizeof name, "%s_%06zu.bin", val ? "val" : "train", val ? 0 : s);
        path = tern_path_join(d, name);
        tern_shard_writer *w;
        tern_shard_writer_open(&w, path, vocab, NULL, NULL);
        for (uint64_t i = 0; i < len; i++, g++) {
            int32_t id = (int32_t)((val ? 100000 + i : g) % vocab);
            tern_shard_writer_add(w, &id, 1);
        }
        tern_shard_writer_close(w, &m.shards[s].n_tokens, m.shards[s].checksum);
        m.shards[s].file = strdup(name);
        m.shards[s].split = val ? TERN_SPLIT_VAL : TERN_SPLIT_TRAIN;
        free(path);
    }
    tern_manifest_write(&m, d, NULL);
    tern_manifest_free(&m);
}

/* The windows of an epoch, enumerated here independently: (shard, start) pairs. */
static size_t expected_windows(size_t BT, size_t *ws, uint64_t *wst) {
    size_t k = 0;
    for (size_t s = 0; s < NSH; s++)
        for (uint64_t st = 0; st + BT + 1 <= shard_len[s]; st += BT) {
            ws[k] = s;
            wst[k] = st;
            k++;
        }
    return k;
}

static int window_is(const int32_t *in, const int32_t *tg, size_t rows, size_t T, size_t row0, size_t s, uint64_t start, size_t V) {
    for (size_t r = 0; r < rows; r++)
        for (size_t t = 0; t < T; t++) {
            uint64_t g = shard_base(s) + start + (row0 + r) * T + t;
            if (in[r * T + t] != (int32_t)(g % V) || tg[r * T + t] != (int32_t)((g + 1) % V)) return 0;
        }
    return 1;
}

static void test_loader_order(void) {
    uint8_t hash[32] = {7};
    for (int pass = 0; pass < 2; pass++) {
        size_t V = pass ? 70001 : 997; /* 4-byte tokens in the second pass */
        const char *d = test_tmpdir(pass ? "data_loader4" : "data_loader2");
        make_counting_data(d, V, hash);
        tern_dataset *ds;
        CHECK(tern_dataset_open(&ds, d, "train", hash, NULL) == TERN_OK, "%s", tern_errmsg());
        if (!ds) return;
        CHECK(tern_dataset_num_shards(ds) == NSH && tern_dataset_num_tokens(ds) == shard_base(NSH) && tern_dataset_vocab_size(ds) == V,
              "dataset sizes");
        size_t B = 3, T = 16, BT = B * T;
        tern_loader *l;
        CHECK(tern_loader_init(&l, ds, B, T, 0, 0) == TERN_OK, "%s", tern_errmsg());
        size_t ws[200];
        uint64_t wst[200];
        size_t K = expected_windows(BT, ws, wst);
        CHECK(K == 20 + 0 + 11 + 42 && tern_loader_windows_per_epoch(l) == K, "K = %llu, want %zu",
              (unsigned long long)tern_loader_windows_per_epoch(l), K);
        int32_t in[48], tg[48];
        int ok = 1;
        for (uint64_t c = 0; c < 3 * K; c++) {
            CHECK(tern_loader_get(l, c, 0, B, in, tg) == TERN_OK, "get");
            ok &= window_is(in, tg, B, T, 0, ws[c % K], wst[c % K], V);
        }
        CHECK(ok, "windows differ from the enumeration");
        /* the first step reads tokens 0..BT of shard 0; the next BT later; the transitions */
        tern_loader_get(l, 0, 0, B, in, tg);
        CHECK(in[0] == 0 && tg[47] == 48, "first window");
        size_t s;
        uint64_t st;
        tern_loader_locate(l, 19, &s, &st);
        CHECK(s == 0 && st == 19 * 48, "last window of shard 0: %zu %llu", s, (unsigned long long)st);
        tern_loader_locate(l, 20, &s, &st);
        CHECK(s == 2 && st == 0, "shard 1 is too short, shard 2 follows: %zu %llu", s, (unsigned long long)st);
        tern_loader_locate(l, K, &s, &st);
        CHECK(s == 0 && st == 0, "the next epoch starts at shard 0");
        /* ranks: W ranks of B rows read disjoint slices that cover the window of B*W rows */
        tern_loader *lw;
        size_t W = 4, Bl = 2;
        CHECK(tern_loader_init(&lw, ds, Bl * W, T, 1, 42) == TERN_OK, "%s", tern_errmsg());
        int32_t full_in[8 * 16], full_tg[8 * 16], part_in[8 * 16], part_tg[8 * 16];
        for (uint64_t c = 0; c < 5; c++) {
            tern_loader_get(lw, c, 0, Bl * W, full_in, full_tg);
            for (size_t r = 0; r < W; r++)
                tern_loader_get(lw, c, r * Bl, Bl, part_in + r * Bl * T, part_tg + r * Bl * T);
            CHECK(!memcmp(full_in, part_in, sizeof full_in) && !memcmp(full_tg, part_tg, sizeof full_tg), "rank slices differ at %llu",
                  (unsigned long long)c);
            /* disjoint: rank r's first input is token r*B*T after rank 0's */
            for (size_t r = 1; r < W; r++) CHECK((uint64_t)((part_in[r * Bl * T] - part_in[0] + (int32_t)V) % (int32_t)V) == r * Bl * T % V, "rank %zu offset", r);
        }
        CHECK(tern_loader_get(lw, 0, 7, 2, part_in, part_tg) == TERN_EINVAL &&
                  !strcmp(tern_errmsg(), "rows 7..9 are outside the window's 8 rows"),
              "rows past the window: %s", tern_errmsg());
        tern_loader_free(lw);
        tern_loader_free(l);
        tern_dataset_free(ds);
    }
}

static void test_loader_shuffle(void) {
    uint8_t hash[32] = {7};
    const char *d = test_tmpdir("data_shuffle");
    size_t V = 997;
    make_counting_data(d, V, hash);
    tern_dataset *ds;
    CHECK(tern_dataset_open(&ds, d, "train", NULL, NULL) == TERN_OK, "%s", tern_errmsg());
    size_t B = 2, T = 8, BT = 16;
    size_t ws[400];
    uint64_t wst[400];
    size_t K = expected_windows(BT, ws, wst);
    tern_loader *a, *b, *c;
    tern_loader_init(&a, ds, B, T, 1, 1234);
    tern_loader_init(&b, ds, B, T, 1, 1234);
    tern_loader_init(&c, ds, B, T, 1, 99);
    CHECK(tern_loader_windows_per_epoch(a) == K, "K");
    uint64_t *order[3];
    for (int e = 0; e < 3; e++) {
        order[e] = calloc(K, sizeof(uint64_t));
        char *seen = calloc(K, 1);
        int perm = 1;
        for (uint64_t j = 0; j < K; j++) {
            size_t s;
            uint64_t st;
            tern_loader_locate(a, e * K + j, &s, &st);
            size_t idx = K;
            for (size_t k = 0; k < K; k++)
                if (ws[k] == s && wst[k] == st) idx = k;
            if (idx == K || seen[idx]) perm = 0;
            else seen[idx] = 1;
            order[e][j] = idx;
            int32_t in[16], tg[16];
            tern_loader_get(a, e * K + j, 0, B, in, tg);
            perm &= window_is(in, tg, B, T, 0, s, st, V);
        }
        CHECK(perm, "epoch %d is not a permutation of the windows", e);
        free(seen);
    }
    CHECK(memcmp(order[0], order[1], K * 8) && memcmp(order[1], order[2], K * 8), "epochs repeat their order");
    int same = 1, differs = 0;
    for (uint64_t j = 0; j < 2 * K; j++) {
        size_t s1, s2, s3;
        uint64_t t1, t2, t3;
        /* visit b backwards: the order must not depend on the order of calls */
        tern_loader_locate(a, j, &s1, &t1);
        tern_loader_locate(b, 2 * K - 1 - j, &s2, &t2);
        tern_loader_locate(b, j, &s2, &t2);
        tern_loader_locate(c, j, &s3, &t3);
        same &= s1 == s2 && t1 == t2;
        differs |= s1 != s3 || t1 != t3;
    }
    CHECK(same, "the same seed gives another order");
    CHECK(differs, "another seed gives the same order");
    for (int e = 0; e < 3; e++) free(order[e]);
    tern_loader_free(a);
    tern_loader_free(b);
    tern_loader_free(c);
    /* no shard holds a whole window */
    tern_loader *l;
    char want[1024];
    snprintf(want, sizeof want,
             "%s: no train shard holds a whole window: a window needs 2051 tokens (B=2 x T=1025, plus 1) and the largest shard has 2049",
             d);
    CHECK(tern_loader_init(&l, ds, 2, 1025, 0, 0) == TERN_EINVAL && !strcmp(tern_errmsg(), want), "'%s'", tern_errmsg());
    CHECK(tern_loader_init(&l, ds, 1, 2048, 0, 0) == TERN_OK && tern_loader_windows_per_epoch(l) == 1, "exactly one window fits");
    tern_loader_free(l);
    tern_dataset_free(ds);
    /* the val split is its own */
    CHECK(tern_dataset_open(&ds, d, "val", NULL, NULL) == TERN_OK && tern_dataset_num_tokens(ds) == 300, "val split");
    int32_t in[10], tg[10];
    tern_loader_init(&l, ds, 1, 10, 0, 0);
    tern_loader_get(l, 0, 0, 1, in, tg);
    CHECK(in[0] == 100000 % 997 && tg[9] == 100010 % 997, "val tokens");
    tern_loader_free(l);
    tern_dataset_free(ds);
}

static void test_dataset_bad(void) {
    uint8_t hash[32] = {7}, other[32] = {8};
    const char *d = test_tmpdir("data_bad");
    make_counting_data(d, 997, hash);
    tern_dataset *ds;
    char want[2048], path[700], cmd[1600];
    /* another tokenizer */
    CHECK(tern_dataset_open(&ds, d, "train", other, NULL) == TERN_EINVAL, "other tokenizer accepted");
    snprintf(want, sizeof want,
             "%s/manifest.json: the data was made with tokenizer 07000000000000000000000000000000000000000000000000000000000000"
             "00, but this run's tokenizer is 0800000000000000000000000000000000000000000000000000000000000000; prepare the data "
             "again with this tokenizer",
             d);
    CHECK(!strcmp(tern_errmsg(), want), "'%s'", tern_errmsg());
    CHECK(tern_dataset_open(&ds, d, "test", NULL, NULL) == TERN_EINVAL && !strcmp(tern_errmsg(), "unknown split 'test' (train or val)"), "split");
    /* a shard whose checksum does not match its header */
    snprintf(path, sizeof path, "%s/train_000002.bin", d);
    FILE *f = fopen(path, "r+b");
    fseek(f, 100, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    CHECK(tern_dataset_open(&ds, d, "train", hash, NULL) == TERN_EFORMAT, "damaged shard opens");
    snprintf(want, sizeof want, "%s: the tokens do not match the header's checksum", path);
    CHECK(!strncmp(tern_errmsg(), want, strlen(want)) && strstr(tern_errmsg(), "...): the file is damaged"), "'%s'", tern_errmsg());
    /* a shard whose size does not match its header */
    make_counting_data(d, 997, hash);
    CHECK(truncate(path, 64 + 2 * 555 - 2) == 0, "truncate");
    snprintf(want, sizeof want, "%s: the header says 555 tokens (1174 bytes with the header), but the file has 1172 bytes", path);
    CHECK(tern_dataset_open(&ds, d, "train", hash, NULL) == TERN_EFORMAT && !strcmp(tern_errmsg(), want), "'%s'", tern_errmsg());
    /* a shard replaced by another valid one */
    make_counting_data(d, 997, hash);
    snprintf(cmd, sizeof cmd, "cp %s/train_000001.bin %s", d, path);
    CHECK(system(cmd) == 0, "cp");
    snprintf(want, sizeof want, "%s: 37 tokens, but %s/manifest.json says 555", path, d);
    CHECK(tern_dataset_open(&ds, d, "train", hash, NULL) == TERN_EFORMAT && !strcmp(tern_errmsg(), want), "'%s'", tern_errmsg());
    /* a manifest that names a missing shard */
    make_counting_data(d, 997, hash);
    unlink(path);
    snprintf(want, sizeof want, "%s: the shard is missing (%s/manifest.json lists it)", path, d);
    CHECK(tern_dataset_open(&ds, d, "train", hash, NULL) == TERN_ENOTFOUND && !strcmp(tern_errmsg(), want), "'%s'", tern_errmsg());
    /* no manifest */
    snprintf(path, sizeof path, "%s/manifest.json", d);
    unlink(path);
    snprintf(want, sizeof want, "%s: no data manifest here (make one with tern prepare)", path);
    CHECK(tern_dataset_open(&ds, d, "train", hash, NULL) == TERN_ENOTFOUND && !strcmp(tern_errmsg(), want), "'%s'", tern_errmsg());
}

int main(void) {
    RUN(test_shard_round_trip);
    RUN(test_shard_bad);
    RUN(test_manifest);
    RUN(test_manifest_prepare_fields);
    RUN(test_loader_order);
    RUN(test_loader_shuffle);
    RUN(test_dataset_bad);
    return check_exit();
}
