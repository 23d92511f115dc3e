/* Replays every input kept under tests/fixtures/fuzz/<format>/ (each one a crash or a broken
 * invariant that a fuzz target found, minimised) through the reader its target drives, with the
 * same arguments, and checks the exact status and message each input gives now that the bug is
 * fixed. Not a fuzzer: fuzz/ holds the targets (make fuzz). Every file in the fixture folders
 * must have a row here, so no kept input goes unchecked. Follows SQLite's test/fuzzcheck.c. */
#include <dirent.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "tern.h"
#include "tern/data.h"
#include "tern/train.h"

#define FIX "tests/fixtures/fuzz"

/* A fuzz input replayed: returns the status of the reader, message in tern_errmsg(). The
 * name the reader was given (the fixture's path, or a folder the replay made) goes to where. */
typedef tern_status (*replay_fn)(const char *path, const uint8_t *p, size_t n);
static char where[512];

static tern_status replay_config(const char *path, const uint8_t *p, size_t n) {
    (void)p, (void)n;
    snprintf(where, sizeof where, "%s", path);
    tern_train_opts o;
    tern_train_opts_defaults(&o);
    tern_status st = tern_train_opts_load_json(&o, path);
    if (st == TERN_OK) st = tern_train_opts_check(&o); /* as fuzz_config.c: what loads is then checked */
    tern_train_opts_free(&o);
    return st;
}

static tern_status replay_hf_config(const char *path, const uint8_t *p, size_t n) {
    (void)p, (void)n;
    snprintf(where, sizeof where, "%s", path);
    tern_model_config cfg;
    return tern_io_read_hf_config(path, &cfg);
}

/* vocab.json, a NUL byte, merges.txt; fuzz_tokenizer.c names the two parts so */
static tern_status replay_tokenizer(const char *path, const uint8_t *p, size_t n) {
    (void)path;
    where[0] = 0;
    const uint8_t *z = memchr(p, 0, n);
    size_t k = z ? (size_t)(z - p) : n;
    tern_tok *tok = NULL;
    tern_status st = tern_tok_from_buffers(&tok, (const char *)p, k, "fuzz/vocab.json", (const char *)p + (k < n ? k + 1 : n),
                                           k < n ? n - k - 1 : 0, "fuzz/merges.txt");
    tern_tok_free(tok);
    return st;
}

/* a GGUF buffer, then GPT-2 built from it, as fuzz_gguf.c does */
static tern_status replay_gguf(const char *path, const uint8_t *p, size_t n) {
    snprintf(where, sizeof where, "%s", path);
    tern_gguf *g = NULL;
    tern_status st = tern_gguf_from_buffer(&g, p, n, path);
    if (st == TERN_OK) {
        tern_model *m = NULL;
        st = tern_gguf_load_model(g, &m, NULL);
        tern_model_free(m);
    }
    tern_gguf_free(g);
    return st;
}

/* a flag byte, then ledger.jsonl, as fuzz_ledger.c takes it; only flag bit 2 (--head with the
 * hash the unfixed chain leaves, all zeros) is replayed, the others need the fuzzer's key */
static tern_status replay_ledger(const char *path, const uint8_t *p, size_t n) {
    snprintf(where, sizeof where, "%s", path);
    if (n < 1 || (p[0] & 3)) return tern_err(TERN_EINVAL, "replay_ledger: flags %d not replayed", n ? p[0] : -1);
    char zeros[TERN_LEDGER_HEX];
    memset(zeros, '0', 64);
    zeros[64] = 0;
    tern_ledger_report rep;
    return tern_ledger_verify_buffer((const char *)p + 1, n - 1, path, NULL, NULL, (p[0] & 4) ? zeros : NULL, &rep);
}

/* config.json, a NUL byte, ckpt/latest: a run folder with one checkpoint, step-000100, of a GPT-2
 * of 1 layer, 1 head, width 4, 4 positions and 8 tokens, as fuzz_run_folder.c builds it */
static tern_status replay_run_folder(const char *path, const uint8_t *p, size_t n) {
    (void)path;
    snprintf(where, sizeof where, "%s", test_tmpdir("fuzz_run_folder"));
    char f[600];
    const tern_model_config tiny = tern_model_config_gpt2(1, 1, 4, 4, 8);
    tern_model *m = NULL;
    tern_st_writer *w = NULL;
    snprintf(f, sizeof f, "%s/ckpt/step-000100", where);
    if (tern_mkdir_p(f) != TERN_OK || tern_model_init(&m, &tiny, NULL) != TERN_OK || tern_st_writer_init(&w) != TERN_OK ||
        tern_params_to_st(m, "", w) != TERN_OK)
        return TERN_EIO;
    snprintf(f, sizeof f, "%s/ckpt/step-000100/model.safetensors", where);
    tern_status st = tern_st_write(w, f);
    tern_st_writer_free(w);
    tern_model_free(m);
    if (st != TERN_OK) return st;
    const uint8_t *z = memchr(p, 0, n);
    size_t k = z ? (size_t)(z - p) : n;
    snprintf(f, sizeof f, "%s/config.json", where);
    if (tern_write_file_atomic(f, p, k) != TERN_OK) return TERN_EIO;
    snprintf(f, sizeof f, "%s/ckpt/latest", where);
    if (k < n && tern_write_file_atomic(f, p + k + 1, n - k - 1) != TERN_OK) return TERN_EIO;
    m = NULL;
    tern_err_clear();
    st = tern_io_open_model(where, 0, &m, NULL, NULL, NULL);
    tern_model_free(m);
    return st;
}

struct regression {
    const char *format, *file;
    replay_fn replay;
    tern_status status;
    const char *message; /* exact; each "%s" stands for the name the reader was given (where) and
                          * "%lld" for the size of the run folder's model.safetensors */
};

static const struct regression cases[] = {
    /* tern_train_opts: an integer option above 2^53, given as a string, was accepted, but the
     * run's resolved config.json (JSON doubles) then failed to load on resume; options in JSON
     * are now typed, so the string is refused first (test_train checks the bound on numbers) */
    {"config", "int_above_2p53.json", replay_config, TERN_EINVAL, "%s: option \"batch\" must be a whole number, not a string"},
    /* train/opts.c tern_train_opts_check: a text option with a default, set to null by a config
     * file ("schedule": null), reached strcmp as a null pointer; it is now refused first */
    {"config", "schedule_null.json", replay_config, TERN_EINVAL, "schedule must be a NAME (default cosine), not null"},
    /* io/hf.c json_int: n_positions 1.1e19 was converted to int (undefined behaviour); fields are
     * now range-checked before conversion, and this file's n_layer of 0 is the first refused */
    {"hf_config", "n_positions_1e19.json", replay_hf_config, TERN_EFORMAT,
     "%s: field \"n_layer\" must be a whole number from 1 to 2147483647"},
    /* io/open.c get_int: a run's n_layer 4888888880 was converted to int (undefined behaviour) */
    {"run_folder", "n_layer_4888888880", replay_run_folder, TERN_EFORMAT,
     "%s/config.json: not a run configuration (needs \"model\", or n_layer, n_head, n_embd, n_ctx and vocab_size as whole "
     "numbers)"},
    /* io/open.c open_run: a shape tern_model_config_check refuses was refused without naming the
     * file ("n_layer must be 1..1024, got 0") */
    {"run_folder", "n_layer_0", replay_run_folder, TERN_EINVAL, "%s/config.json: n_layer must be 1..1024, got 0"},
    /* io/open.c open_run: a config.json of width 16384 beside the tiny checkpoint made tern
     * allocate and zero 12.9 GB of parameters (and as much for gradients) before loading it;
     * 8*16384 + 4*16384 + (12*16384^2 + 13*16384) + 2*16384 parameters, the file's bytes are
     * filled in by the test */
    {"run_folder", "n_embd_16384", replay_run_folder, TERN_EFORMAT,
     "%s/config.json: describes a gpt2 of 3221667840 parameters, but %s/ckpt/step-000100/model.safetensors has %lld bytes"},
    /* io/gguf_gpt2.c: the test GPT-2 with embedding_length 8192 (and feed_forward_length to
     * match) in its metadata made tern_gguf_load_model allocate and zero 3.2 GB of parameters
     * (and as much for gradients) before finding that the 25 kB file held none of them; the
     * counts: 400*8192 + 4*8192 + (12*8192^2 + 13*8192) + 2*8192, and the 4120 of the test model */
    /* model/model.c tern_model_config_gpt2: n_embd 2130706433 from a GGUF made 4 * n_embd overflow
     * int before the configuration was checked; the width is now left 0 there, and the file's
     * own feed-forward width is refused first */
    {"gguf", "n_embd_2130706433.gguf", replay_gguf, TERN_EFORMAT,
     "%s: gpt2.feed_forward_length 32 is not 4*n_embd (2130706433); tern's GPT-2 uses a 4x MLP"},
    {"gguf", "embedding_8192.gguf", replay_gguf, TERN_EFORMAT,
     "%s: a GPT-2 of this shape has 808738816 parameters, but the file's tensors hold 4120 values"},
    /* not a reader fault: fuzz_ledger.c's own check expected every refusal to name a line, but a
     * chain that verifies without the --head hash is refused as a whole; kept for the message */
    {"ledger", "head_not_found", replay_ledger, TERN_EAUTH,
     "%s: no entry has the head hash 0000000000000000000000000000000000000000000000000000000000000000: the ledger was "
     "rewritten (or the hash is from another run)"},
    /* tok/load.c: a token id of 1.7e24 was converted to int64_t before its range was checked */
    {"tokenizer", "id_1e24", replay_tokenizer, TERN_EFORMAT,
     "fuzz/vocab.json: token \"\xc3\xad\" has id out of range; ids must be whole numbers from 0 to 256"},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static uint8_t *slurp(const char *path, size_t *n) {
    char *p = NULL;
    *n = 0;
    if (tern_read_file(path, &p, n) != TERN_OK) return NULL;
    return (uint8_t *)p;
}

/* The size of the replayed run folder's model.safetensors, for the one message that gives it. */
static long long st_bytes(void) {
    char f[700];
    snprintf(f, sizeof f, "%s/ckpt/step-000100/model.safetensors", where);
    struct stat sb;
    return stat(f, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Each kept input gives exactly the status and message recorded for it. */
static void test_replay(void) {
    for (size_t i = 0; i < N_CASES; i++) {
        const struct regression *c = &cases[i];
        char path[512], want[2048];
        snprintf(path, sizeof path, FIX "/%s/%s", c->format, c->file);
        size_t n;
        uint8_t *p = slurp(path, &n);
        CHECK(p != NULL, "%s: %s", path, tern_errmsg());
        if (!p) continue;
        tern_err_clear();
        tern_status st = c->replay(path, p, n);
        snprintf(want, sizeof want, c->message, where, where, st_bytes());
        CHECK(st == c->status, "%s: status %d (%s), expected %d", path, (int)st, tern_errmsg(), (int)c->status);
        CHECK(!strcmp(tern_errmsg(), want), "%s:\n    message  %s\n    expected %s", path, tern_errmsg(), want);
        free(p);
    }
}

/* The replayed run folder is a good one: a config.json of its checkpoint's shape opens (so the
 * refusals above are the inputs' doing, and open_run's size check passes real checkpoints). */
static void test_run_folder_of_the_right_shape_opens(void) {
    static const char in[] = "{\"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4, \"n_ctx\": 4, \"vocab_size\": 8}\0step-000100\n";
    tern_status st = replay_run_folder("", (const uint8_t *)in, sizeof in - 1);
    CHECK(st == TERN_OK, "%s", tern_errmsg());
}

/* No file under tests/fixtures/fuzz/ is left without its row above. */
static void test_every_input_has_a_row(void) {
    DIR *top = opendir(FIX);
    CHECK(top != NULL, "cannot open " FIX);
    if (!top) return;
    size_t seen = 0;
    for (struct dirent *f; (f = readdir(top));) {
        if (f->d_name[0] == '.') continue;
        char sub[512];
        snprintf(sub, sizeof sub, FIX "/%s", f->d_name);
        DIR *d = opendir(sub);
        CHECK(d != NULL, "%s is not a folder", sub);
        if (!d) continue;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            int found = 0;
            for (size_t i = 0; i < N_CASES && !found; i++) found = !strcmp(cases[i].format, f->d_name) && !strcmp(cases[i].file, e->d_name);
            CHECK(found, "%s/%s has no row in tests/test_fuzz_regressions.c", sub, e->d_name);
            seen++;
        }
        closedir(d);
    }
    closedir(top);
    CHECK(seen == N_CASES, "%zu kept inputs, %zu rows", seen, (size_t)N_CASES);
}

/* The same fault as the GGUF input above, in a Hugging Face folder (the likeliest file to come
 * from a stranger): a config.json whose model the weights beside it cannot fill is refused
 * before the model is allocated. */
static void test_hf_config_larger_than_weights(void) {
    const char *d = test_tmpdir("fuzz_hf_shape");
    char p[600];
    static const char cfg[] = "{\"n_layer\": 1, \"n_head\": 2, \"n_embd\": 8192, \"n_positions\": 4, \"vocab_size\": 400}";
    snprintf(p, sizeof p, "%s/config.json", d);
    CHECK(tern_write_file_atomic(p, cfg, sizeof cfg - 1) == TERN_OK, "%s", tern_errmsg());
    float w[10] = {0};
    size_t shape[1] = {10};
    tern_st_writer *wr;
    CHECK(tern_st_writer_init(&wr) == TERN_OK, "%s", tern_errmsg());
    CHECK(tern_st_add(wr, "wte.weight", TERN_DT_F32, 1, shape, w) == TERN_OK, "%s", tern_errmsg());
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    CHECK(tern_st_write(wr, p) == TERN_OK, "%s", tern_errmsg());
    tern_st_writer_free(wr);
    tern_model *m = NULL;
    tern_status st = tern_io_load_hf(d, &m, NULL);
    char want[1400];
    snprintf(want, sizeof want, "%s: config.json describes a gpt2 of 808738816 parameters, but its weight files hold 40 bytes of "
                                "tensors", d);
    CHECK(st == TERN_EFORMAT && m == NULL, "status %d", (int)st);
    CHECK(!strcmp(tern_errmsg(), want), "\n    message  %s\n    expected %s", tern_errmsg(), want);
    tern_model_free(m);
}

int main(void) {
    RUN(test_replay);
    RUN(test_hf_config_larger_than_weights);
    RUN(test_run_folder_of_the_right_shape_opens);
    RUN(test_every_input_has_a_row);
    return check_exit();
}
