/* `tern prepare`: argument parsing and a summary around tern_data_prepare (src/data/prepare.c).
 * Not the shard or manifest code. Formats: docs/FORMATS.md "Token shards", "Data manifest". */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: tern prepare --tokenizer DIR [--val-fraction F] [--shard-tokens N] [--seed S]\n"
            "                    [--key KEYFILE | --passphrase-file FILE] -o DATADIR FILE...\n\n"
            "Encodes each FILE (one document each, preceded by <|endoftext|>) into token shards and a manifest in\n"
            "DATADIR. With several files each document goes to train or val by a seeded hash of its bytes; with one\n"
            "file its last F of tokens go to val. --val-fraction 0 writes train shards only.\n\n"
            "  --tokenizer DIR     vocab.json + merges.txt, or GPT-2's encoder.json + vocab.bpe\n"
            "  --val-fraction F    share of the data for validation, 0 <= F < 1 (default 0.1)\n"
            "  --shard-tokens N    most tokens per shard (default %llu)\n"
            "  --seed S            keys the hash that splits documents (default 0)\n"
            "  --key KEYFILE       seal the shards, the manifest and DATADIR/tokenizer with this key\n"
            "                      (tern keygen); the environment variable TERN_KEY_FILE does the same\n"
            "  --passphrase-file F seal with a key derived from the passphrase in F (Argon2id)\n"
            "  -o DATADIR          the folder to write (created if needed)\n",
            (unsigned long long)TERN_PREPARE_SHARD_TOKENS);
}

int cli_prepare(int argc, char **argv) {
    const char *cmd = "prepare";
    tern_prepare_opts o = {.val_fraction = 0.1, .shard_tokens = TERN_PREPARE_SHARD_TOKENS};
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) cli_fail(cmd, tern_err(TERN_ENOMEM, "out of memory"));
    long long shard = -1, seed = -1;
    const char *key_file = NULL, *pass_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_opt_str(cmd, argc, argv, &i, "--tokenizer", &o.tokenizer_dir)) continue;
        if (cli_opt_double(cmd, argc, argv, &i, "--val-fraction", &o.val_fraction)) continue;
        if (cli_opt_long(cmd, argc, argv, &i, "--shard-tokens", &shard)) continue;
        if (cli_opt_long(cmd, argc, argv, &i, "--seed", &seed)) continue;
        if (cli_opt_str(cmd, argc, argv, &i, "-o", &o.out_dir)) continue;
        if (cli_opt_str(cmd, argc, argv, &i, "--key", &key_file)) continue;
        if (cli_opt_str(cmd, argc, argv, &i, "--passphrase-file", &pass_file)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) cli_usage(cmd, "unknown option '%s'", argv[i]);
        files[o.n_files++] = argv[i];
    }
    if (!o.tokenizer_dir) cli_usage(cmd, "--tokenizer DIR is required");
    if (!o.out_dir) cli_usage(cmd, "-o DATADIR is required");
    if (!o.n_files) cli_usage(cmd, "give at least one text file");
    if (!(o.val_fraction >= 0 && o.val_fraction < 1)) cli_usage(cmd, "--val-fraction must be at least 0 and below 1, got %g", o.val_fraction);
    if (shard != -1) {
        if (shard < 1) cli_usage(cmd, "--shard-tokens must be at least 1, got %lld", shard);
        o.shard_tokens = (uint64_t)shard;
    }
    if (seed != -1) {
        if (seed < 0) cli_usage(cmd, "--seed must not be negative, got %lld", seed);
        o.seed = (uint64_t)seed;
    }
    o.files = files;
    tern_key *key = NULL;
    tern_status kst = tern_key_load(&key, key_file, pass_file);
    if (kst != TERN_OK) cli_fail(cmd, kst);
    o.key = key;
    double t0 = tern_now();
    tern_manifest m;
    tern_status st = tern_data_prepare(&o, &m);
    if (st != TERN_OK) cli_fail(cmd, st);
    /* The data folder keeps the tokenizer that made it (DATADIR/tokenizer/), so that a run
     * trained on it can be exported and sampled without being told where the tokenizer is. */
    char *tokcopy = tern_path_join(o.out_dir, "tokenizer");
    st = tokcopy ? tern_io_copy_tokenizer(o.tokenizer_dir, tokcopy, key, key) : tern_err(TERN_ENOMEM, "out of memory");
    free(tokcopy);
    if (st != TERN_OK) cli_fail(cmd, st);
    uint64_t tokens[2] = {0, 0};
    size_t shards[2] = {0, 0};
    for (size_t i = 0; i < m.n_shards; i++) {
        tokens[m.shards[i].split] += m.shards[i].n_tokens;
        shards[m.shards[i].split]++;
    }
    char hex[2 * TERN_HASH_BYTES + 1];
    tern_hex(hex, m.tokenizer_hash, TERN_HASH_BYTES);
    printf("tern prepare: %zu document%s in %.2f s; train: %llu tokens in %zu shard%s (%llu documents); val: %llu tokens in %zu "
           "shard%s (%llu documents); tokenizer %.16s; wrote %s/manifest.json\n",
           o.n_files, o.n_files == 1 ? "" : "s", tern_now() - t0, (unsigned long long)tokens[0], shards[0], shards[0] == 1 ? "" : "s",
           (unsigned long long)m.docs[0], (unsigned long long)tokens[1], shards[1], shards[1] == 1 ? "" : "s",
           (unsigned long long)m.docs[1], hex, o.out_dir);
    if (key) printf("tern prepare: sealed with %s\n", tern_key_is_passphrase(key) ? "a passphrase" : "a key file");
    tern_manifest_free(&m);
    tern_key_free(key);
    free(files);
    return 0;
}
