/* `tern prepare`: argument parsing, the progress display, warnings and the summary around
 * tern_data_prepare (src/data/prepare.c), and the copy of the tokenizer into the data folder.
 * Not the pipeline. Formats: docs/FORMATS.md "Inputs of prepare", "Token shards", "Data manifest". */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: tern prepare --tokenizer DIR [options] -o DATADIR INPUT...\n\n"
            "Reads each INPUT (a file; a folder: every file below it, in sorted order, names starting with '.'\n"
            "skipped; - for standard input), zstd- or gzip-compressed or not (told by its first bytes), as plain\n"
            "text (one document per file, or split at --doc-separator) or JSON Lines (one document per line, its\n"
            "text in --text-key), and writes each document, preceded by <|endoftext|>, into token shards and a\n"
            "manifest in DATADIR. Documents go to train or val by a seeded hash of their bytes; when only one\n"
            "document is kept its last F of tokens go to val. Nothing is left at DATADIR if prepare fails.\n\n"
            "  --tokenizer DIR          vocab.json + merges.txt, or GPT-2's encoder.json + vocab.bpe (required)\n"
            "  -o DATADIR               the data folder to write: must not exist, or be empty (required)\n"
            "  --force                  replace DATADIR when it holds an earlier data folder (default: refuse)\n"
            "  --format F               auto, text or jsonl (default auto: jsonl for names ending .jsonl or\n"
            "                           .ndjson, before any .gz/.zst, or a first line that is a JSON object)\n"
            "  --text-key K             JSON Lines: the member holding the text (default text)\n"
            "  --doc-separator S        plain text: a document ends at each S, e.g. '<|endoftext|>'; blank\n"
            "                           pieces between separators are not documents (default: none)\n"
            "  --max-line-bytes N       JSON Lines: longer lines are skipped and counted (default %llu)\n"
            "  --min-bytes N            skip documents with fewer bytes of text (default 0)\n"
            "  --dedup                  skip documents whose bytes equal an earlier one's (default off)\n"
            "  --allow-binary           prepare documents that look binary (NUL bytes, or over 30%% of\n"
            "                           bytes not UTF-8) instead of refusing them (default: refuse)\n"
            "  --val-fraction F         share of the data for validation, 0 <= F < 1 (default 0.1)\n"
            "  --shard-tokens N         most tokens per shard (default %llu)\n"
            "  --seed S                 keys the hash that splits documents (default 0)\n"
            "  --threads N              tokenizing threads (default: one per core, here %ld); the output\n"
            "                           is the same for any N\n"
            "  --quiet                  no progress display (default: a bar on a terminal, else a line\n"
            "                           every 10 s, on standard error)\n"
            "  --key KEYFILE            seal the shards, the manifest and DATADIR/tokenizer with this key\n"
            "                           (tern keygen); the environment variable TERN_KEY_FILE does the same\n"
            "                           (default: none, plain files)\n"
            "  --passphrase-file FILE   seal with a key derived from the passphrase in FILE (Argon2id)\n"
            "                           (default: none)\n",
            (unsigned long long)TERN_PREPARE_MAX_LINE, (unsigned long long)TERN_PREPARE_SHARD_TOKENS, sysconf(_SC_NPROCESSORS_ONLN));
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    if (stop_requested) { /* a second one: stop now (the next prepare removes the hidden folder) */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    stop_requested = 1;
}

typedef struct {
    const char *tokenizer_dir;
    const tern_key *key;
    int tty, quiet;
    double last_line;
} ui;

static void fmt_bytes(char *out, size_t n, double b) {
    if (b >= 1e9) snprintf(out, n, "%.2f GB", b / 1e9);
    else if (b >= 1e6) snprintf(out, n, "%.1f MB", b / 1e6);
    else if (b >= 1e3) snprintf(out, n, "%.1f KB", b / 1e3);
    else snprintf(out, n, "%.0f bytes", b);
}

static void on_progress(void *ctx, const tern_prepare_progress *p) {
    ui *u = ctx;
    if (u->quiet) return;
    if (!u->tty && (p->done || p->seconds - u->last_line < 10)) return;
    u->last_line = p->seconds;
    char read[32], total[32], eta[32] = "";
    fmt_bytes(read, sizeof read, (double)p->bytes_read);
    fmt_bytes(total, sizeof total, (double)p->bytes_total);
    double mbs = p->seconds > 0 ? (double)p->text_bytes / 1e6 / p->seconds : 0, frac = 0;
    if (p->bytes_total && p->bytes_read) {
        frac = (double)p->bytes_read / (double)p->bytes_total;
        if (frac > 1) frac = 1;
        tern_fmt_duration(eta, sizeof eta, p->seconds * (1 - frac) / frac);
    }
    char tail[200];
    snprintf(tail, sizeof tail, "%llu documents | %llu tokens | %.1f MB/s", (unsigned long long)p->documents,
             (unsigned long long)p->tokens, mbs);
    if (u->tty) {
        if (p->bytes_total) {
            char bar[25];
            int done = (int)(frac * 24);
            for (int i = 0; i < 24; i++) bar[i] = i < done ? '#' : '.';
            bar[24] = 0;
            fprintf(stderr, "\r  [%s] %3.0f%% %s of %s | %s | ETA %s   ", bar, 100 * frac, read, total, tail, p->done ? "0s" : eta);
        } else {
            fprintf(stderr, "\r  %s read | %s   ", read, tail);
        }
        if (p->done) fprintf(stderr, "\n");
    } else if (p->bytes_total) {
        fprintf(stderr, "prepare: %s of %s read (%.0f%%), %s, ETA %s\n", read, total, 100 * frac, tail, eta);
    } else {
        fprintf(stderr, "prepare: %s read, %s\n", read, tail);
    }
    fflush(stderr);
}

static void on_warn(void *ctx, const char *msg) {
    (void)ctx;
    fprintf(stderr, "tern prepare: warning: %s\n", msg);
}

/* The data folder keeps the tokenizer that made it (DATADIR/tokenizer/), so that a run trained
 * on it can be exported and sampled without being told where the tokenizer is. */
static tern_status copy_tokenizer(void *ctx, const char *dir) {
    ui *u = ctx;
    char *to = tern_path_join(dir, "tokenizer");
    tern_status st = to ? tern_io_copy_tokenizer(u->tokenizer_dir, to, u->key, u->key) : tern_err(TERN_ENOMEM, "out of memory");
    free(to);
    return st;
}

static const char *plural(uint64_t n) { return n == 1 ? "" : "s"; }

int cli_prepare(int argc, char **argv) {
    const char *cmd = "prepare";
    tern_prepare_opts o = {.val_fraction = 0.1, .shard_tokens = TERN_PREPARE_SHARD_TOKENS};
    tern_prepare_extra x = {0};
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    if (!inputs) cli_fail(cmd, tern_err(TERN_ENOMEM, "out of memory"));
    long long shard = -1, seed = -1, threads = -1, max_line = -1, min_bytes = -1;
    const char *key_file = NULL, *pass_file = NULL, *format = NULL;
    ui u = {.tty = isatty(2)};
    for (int i = 1; i < argc; i++) {
        if (cli_opt_str(cmd, argc, argv, &i, "--tokenizer", &o.tokenizer_dir)) continue;
        if (cli_opt_double(cmd, argc, argv, &i, "--val-fraction", &o.val_fraction)) continue;
        if (cli_opt_long(cmd, argc, argv, &i, "--shard-tokens", &shard)) continue;
        if (cli_opt_long(cmd, argc, argv, &i, "--seed", &seed)) continue;
        if (cli_opt_long(cmd, argc, argv, &i, "--threads", &threads)) continue;
        if (cli_opt_long(cmd, argc, argv, &i, "--max-line-bytes", &max_line)) continue;
        if (cli_opt_long(cmd, argc, argv, &i, "--min-bytes", &min_bytes)) continue;
        if (cli_opt_str(cmd, argc, argv, &i, "--format", &format)) continue;
        if (cli_opt_str(cmd, argc, argv, &i, "--text-key", &x.text_key)) continue;
        if (cli_opt_str(cmd, argc, argv, &i, "--doc-separator", &x.doc_separator)) continue;
        if (cli_opt_str(cmd, argc, argv, &i, "-o", &o.out_dir)) continue;
        if (cli_opt_str(cmd, argc, argv, &i, "--key", &key_file)) continue;
        if (cli_opt_str(cmd, argc, argv, &i, "--passphrase-file", &pass_file)) continue;
        if (cli_flag(argv, i, "--force")) x.force = 1;
        else if (cli_flag(argv, i, "--dedup")) x.dedup = 1;
        else if (cli_flag(argv, i, "--allow-binary")) x.allow_binary = 1;
        else if (cli_flag(argv, i, "--quiet")) u.quiet = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(inputs);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) cli_usage(cmd, "unknown option '%s'", argv[i]);
        else inputs[o.n_files++] = argv[i];
    }
    if (!o.tokenizer_dir) cli_usage(cmd, "--tokenizer DIR is required");
    if (!o.out_dir) cli_usage(cmd, "-o DATADIR is required");
    if (!o.n_files) cli_usage(cmd, "give at least one input: a file, a folder, or - for standard input");
    if (!(o.val_fraction >= 0 && o.val_fraction < 1)) cli_usage(cmd, "--val-fraction must be at least 0 and below 1, got %g", o.val_fraction);
    if (shard != -1) {
        if (shard < 1) cli_usage(cmd, "--shard-tokens must be at least 1, got %lld", shard);
        o.shard_tokens = (uint64_t)shard;
    }
    if (seed != -1) {
        if (seed < 0) cli_usage(cmd, "--seed must not be negative, got %lld", seed);
        o.seed = (uint64_t)seed;
    }
    if (threads != -1) {
        if (threads < 1 || threads > 1024) cli_usage(cmd, "--threads must be from 1 to 1024, got %lld", threads);
        x.threads = (int)threads;
    }
    if (max_line != -1) {
        if (max_line < 1 || max_line > (1ll << 30)) cli_usage(cmd, "--max-line-bytes must be from 1 to 1073741824, got %lld", max_line);
        x.max_line_bytes = (uint64_t)max_line;
    }
    if (min_bytes != -1) {
        if (min_bytes < 0) cli_usage(cmd, "--min-bytes must not be negative, got %lld", min_bytes);
        x.min_bytes = (uint64_t)min_bytes;
    }
    if (format) {
        if (!strcmp(format, "auto")) x.format = TERN_PREPARE_AUTO;
        else if (!strcmp(format, "text")) x.format = TERN_PREPARE_TEXT;
        else if (!strcmp(format, "jsonl")) x.format = TERN_PREPARE_JSONL;
        else cli_usage(cmd, "--format must be auto, text or jsonl, got '%s'", format);
    }
    if (x.text_key && !x.text_key[0]) cli_usage(cmd, "--text-key must not be empty");
    if (x.doc_separator && !x.doc_separator[0]) cli_usage(cmd, "--doc-separator must not be empty");
    o.files = inputs;
    tern_key *key = NULL;
    tern_status kst = tern_key_load(&key, key_file, pass_file);
    if (kst != TERN_OK) cli_fail(cmd, kst);
    o.key = key;
    u.tokenizer_dir = o.tokenizer_dir;
    u.key = key;
    x.stop = &stop_requested;
    x.progress = on_progress;
    x.warn = on_warn;
    x.finish = copy_tokenizer;
    x.ctx = &u;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    double t0 = tern_now();
    tern_manifest m;
    tern_status st = tern_data_prepare_extra(&o, &x, &m);
    if (st != TERN_OK) cli_fail(cmd, st);
    uint64_t tokens[2] = {0, 0}, files = 0, bytes = 0, skipped = 0;
    size_t shards[2] = {0, 0};
    for (size_t i = 0; i < m.n_shards; i++) {
        tokens[m.shards[i].split] += m.shards[i].n_tokens;
        shards[m.shards[i].split]++;
    }
    for (size_t i = 0; i < m.n_sources; i++) {
        files += m.sources[i].files;
        bytes += m.sources[i].bytes;
    }
    for (int r = 0; r < TERN_SKIP_N; r++) skipped += m.skipped[r];
    uint64_t docs = m.docs[0] + m.docs[1];
    char hex[2 * TERN_HASH_BYTES + 1], size[32], val[200];
    tern_hex(hex, m.tokenizer_hash, TERN_HASH_BYTES);
    fmt_bytes(size, sizeof size, (double)bytes);
    if (m.val_split == TERN_VAL_SPLIT_TAIL)
        snprintf(val, sizeof val, "val: the document's last %llu tokens, in %zu shard%s", (unsigned long long)tokens[1], shards[1],
                 plural(shards[1]));
    else if (m.val_split == TERN_VAL_SPLIT_NONE) snprintf(val, sizeof val, "no val split");
    else
        snprintf(val, sizeof val, "val: %llu tokens in %zu shard%s (%llu document%s)", (unsigned long long)tokens[1], shards[1],
                 plural(shards[1]), (unsigned long long)m.docs[1], plural(m.docs[1]));
    printf("tern prepare: %llu document%s (%s of text) from %llu file%s in %.2f s; train: %llu tokens in %zu shard%s", (unsigned long long)docs,
           plural(docs), size, (unsigned long long)files, plural(files), tern_now() - t0, (unsigned long long)tokens[0], shards[0],
           plural(shards[0]));
    if (m.val_split == TERN_VAL_SPLIT_TAIL) printf("; ");
    else printf(" (%llu document%s); ", (unsigned long long)m.docs[0], plural(m.docs[0]));
    printf("%s; tokenizer %.16s; wrote %s/manifest.json\n", val, hex, o.out_dir);
    if (skipped) {
        printf("tern prepare: skipped %llu:", (unsigned long long)skipped);
        const char *sep = " ";
        for (int r = 0; r < TERN_SKIP_N; r++)
            if (m.skipped[r]) {
                printf("%s%llu %s", sep, (unsigned long long)m.skipped[r], tern_skip_name((tern_skip)r));
                sep = ", ";
            }
        printf(" (counted in the manifest)\n");
    }
    if (key) printf("tern prepare: sealed with %s\n", tern_key_is_passphrase(key) ? "a passphrase" : "a key file");
    tern_manifest_free(&m);
    tern_key_free(key);
    free(inputs);
    return 0;
}
