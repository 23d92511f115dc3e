/* `tern tokenizer train|encode|decode`: argument parsing and I/O around libtern's tok module.
 * Not the tokenizer itself (src/tok/). Output formats are in docs/FORMATS.md "Tokenizer folder". */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage_all(FILE *f) {
    fprintf(f,
            "usage: tern tokenizer train --vocab-size N -o DIR FILE...\n"
            "       tern tokenizer encode --tokenizer DIR [FILE]\n"
            "       tern tokenizer decode --tokenizer DIR [FILE]\n\n"
            "train   learns a byte-level BPE with GPT-2's pre-tokenization from the text files and writes\n"
            "        DIR/vocab.json and DIR/merges.txt (256 bytes, the merges, <|endoftext|> last).\n"
            "encode  prints the token ids of FILE (standard input without FILE), decimal, separated by spaces.\n"
            "decode  turns such ids back into the exact bytes.\n"
            "A tokenizer folder holds vocab.json + merges.txt, or GPT-2's encoder.json + vocab.bpe.\n");
}

/* ---- output: a buffered writer to standard output that reports failures ---- */

typedef struct {
    char buf[1 << 16];
    size_t n;
    const char *cmd;
} out_t;

static void out_flush(out_t *o) {
    size_t k = 0;
    while (k < o->n) {
        ssize_t w = write(1, o->buf + k, o->n - k);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            fprintf(stderr, "tern %s: cannot write to standard output: %s\n", o->cmd, strerror(errno));
            exit(1);
        }
        k += (size_t)w;
    }
    o->n = 0;
}

static void out_write(out_t *o, const void *p, size_t n) {
    const char *s = p;
    while (n) {
        if (o->n == sizeof o->buf) out_flush(o);
        size_t k = sizeof o->buf - o->n;
        if (k > n) k = n;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        n -= k;
    }
}

/* ---- encode ---- */

typedef struct {
    out_t out;
    int first;
} encode_ctx;

static tern_status encode_sink(void *ctx, const int32_t *ids, size_t n) {
    encode_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        char t[16], *e = t + sizeof t, *q = e;
        uint32_t v = (uint32_t)ids[i];
        do {
            *--q = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        if (!c->first) *--q = ' ';
        c->first = 0;
        out_write(&c->out, q, (size_t)(e - q));
    }
    return TERN_OK;
}

static int open_input(const char *cmd, const char *path) {
    if (!path) return 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        tern_status st = tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open: %s", path, strerror(errno));
        cli_fail(cmd, st);
    }
    return fd;
}

static void parse_common(const char *cmd, int argc, char **argv, const char **dir, const char **file) {
    *dir = NULL;
    *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_opt_str(cmd, argc, argv, &i, "--tokenizer", dir)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage_all(stdout);
            exit(0);
        }
        if (argv[i][0] == '-' && argv[i][1]) cli_usage(cmd, "unknown option '%s'", argv[i]);
        if (*file) cli_usage(cmd, "one input file at most (got '%s' and '%s')", *file, argv[i]);
        *file = argv[i];
    }
    if (!*dir) cli_usage(cmd, "--tokenizer DIR is required");
}

static int cmd_encode(int argc, char **argv) {
    const char *cmd = "tokenizer encode", *dir, *file;
    parse_common(cmd, argc, argv, &dir, &file);
    tern_tok *tok;
    tern_status st = tern_tok_load(&tok, dir, NULL);
    if (st != TERN_OK) cli_fail(cmd, st);
    int fd = open_input(cmd, file);
    encode_ctx *c = calloc(1, sizeof *c);
    if (!c) cli_fail(cmd, tern_err(TERN_ENOMEM, "out of memory"));
    c->out.cmd = cmd;
    c->first = 1;
    st = tern_tok_encode_fd(tok, fd, file ? file : "standard input", encode_sink, c);
    if (fd) close(fd);
    if (st != TERN_OK) cli_fail(cmd, st);
    out_write(&c->out, "\n", 1);
    out_flush(&c->out);
    free(c);
    tern_tok_free(tok);
    return 0;
}

/* ---- decode ---- */

/* Reads every id first and checks it, then writes the bytes: a bad id or character fails with
 * nothing written, naming the id (and where it is). */
static int cmd_decode(int argc, char **argv) {
    const char *cmd = "tokenizer decode", *dir, *file;
    parse_common(cmd, argc, argv, &dir, &file);
    tern_tok *tok;
    tern_status st = tern_tok_load(&tok, dir, NULL);
    if (st != TERN_OK) cli_fail(cmd, st);
    const char *name = file ? file : "standard input";
    int fd = open_input(cmd, file);
    static char in[1 << 16];
    tern_ids ids = {0};
    uint64_t v = 0, pos = 0;
    char num[24]; /* the number being read, as written (its first 20 digits) */
    size_t nd = 0;
    size_t nv = tern_tok_vocab_size(tok);
    for (;;) {
        ssize_t r = read(fd, in, sizeof in);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) cli_fail(cmd, tern_err(TERN_EIO, "%s: read failed: %s", name, strerror(errno)));
        /* the end of the input (r == 0) ends the last number: one more pass as a space */
        ssize_t lim = r ? r : 1;
        for (ssize_t i = 0; i < lim; i++, pos++) {
            int end = r == 0;
            char ch = end ? ' ' : in[i];
            if (ch >= '0' && ch <= '9') {
                v = v * 10 + (uint64_t)(ch - '0');
                if (v >= nv) v = nv; /* out of range; reported when the number ends */
                if (nd < 20) num[nd] = ch;
                nd++;
            } else if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') {
                if (nd) {
                    if (v >= nv)
                        cli_fail(cmd, tern_err(TERN_EINVAL, "%s: id %.*s%s at byte %llu is outside the vocabulary (ids 0 to %zu); "
                                                            "nothing was written",
                                               name, (int)(nd < 20 ? nd : 20), num, nd > 20 ? "..." : "", (unsigned long long)(pos - nd),
                                               nv - 1));
                    int32_t id = (int32_t)v;
                    if ((st = tern_ids_push(&ids, &id, 1)) != TERN_OK) cli_fail(cmd, st);
                }
                v = 0;
                nd = 0;
            } else {
                cli_fail(cmd, tern_err(TERN_EFORMAT, "%s: byte %llu: expected token ids (decimal numbers separated by spaces), found "
                                                     "'%c'; nothing was written",
                                       name, (unsigned long long)pos, ch >= 0x20 && ch < 0x7f ? ch : '?'));
            }
            if (end) break;
        }
        if (r == 0) break;
    }
    if (fd) close(fd);
    out_t *out = calloc(1, sizeof *out);
    if (!out) cli_fail(cmd, tern_err(TERN_ENOMEM, "out of memory"));
    out->cmd = cmd;
    for (size_t i = 0; i < ids.n; i++) {
        size_t len;
        const uint8_t *p = tern_tok_token(tok, ids.p[i], &len);
        out_write(out, p, len);
    }
    out_flush(out);
    free(out);
    tern_ids_free(&ids);
    tern_tok_free(tok);
    return 0;
}

/* ---- train ---- */

static int cmd_train(int argc, char **argv) {
    const char *cmd = "tokenizer train", *dir = NULL;
    long long vs = -1;
    const char **files = calloc((size_t)argc, sizeof *files);
    size_t nf = 0;
    if (!files) cli_fail(cmd, tern_err(TERN_ENOMEM, "out of memory"));
    for (int i = 1; i < argc; i++) {
        if (cli_opt_long(cmd, argc, argv, &i, "--vocab-size", &vs)) continue;
        if (cli_opt_str(cmd, argc, argv, &i, "-o", &dir)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage_all(stdout);
            exit(0);
        }
        if (argv[i][0] == '-' && argv[i][1]) cli_usage(cmd, "unknown option '%s'", argv[i]);
        files[nf++] = argv[i];
    }
    if (vs < 0) cli_usage(cmd, "--vocab-size N is required");
    if (vs < 257) cli_usage(cmd, "--vocab-size must be at least 257 (256 bytes and <|endoftext|>), got %lld", vs);
    if (!dir) cli_usage(cmd, "-o DIR is required");
    if (!nf) cli_usage(cmd, "give at least one text file to train on");
    double t0 = tern_now();
    size_t got = 0;
    tern_status st = tern_tok_train(files, nf, (size_t)vs, dir, &got);
    if (st != TERN_OK) cli_fail(cmd, st);
    fprintf(stderr, "tern %s: wrote %s/vocab.json and %s/merges.txt: %zu tokens in %.2f s\n", cmd, dir, dir, got,
            tern_now() - t0);
    if (got < (size_t)vs)
        fprintf(stderr, "tern %s: the text has no more pairs to merge, so the vocabulary has %zu tokens, not %lld\n", cmd, got,
                vs);
    free(files);
    return 0;
}

int cli_tokenizer(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage_all(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "encode")) return cmd_encode(argc - 1, argv + 1);
    if (!strcmp(argv[1], "decode")) return cmd_decode(argc - 1, argv + 1);
    cli_usage("tokenizer", "unknown subcommand '%s' (train, encode or decode)", argv[1]);
}
