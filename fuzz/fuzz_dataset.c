/* libFuzzer target: a whole data folder as training opens it: a manifest and one shard written
 * into a folder in memory (/dev/shm), opened by tern_dataset_open (which checks each shard
 * against the manifest) and served by the loader. Input: a flag byte, the manifest's length
 * (2 bytes, little-endian), the manifest, then the bytes of train_000000.bin. Flag bit 0 fixes
 * the shard's checksum and the first "blake2b" of the manifest to match the shard, so that
 * mutations reach the cross-checks and the loader; bits 1-3 pick the batch shape. Every served
 * row must be in the vocabulary and each target the token after its input. Not the tokenizer.
 * Formats: docs/FORMATS.md "Token shards", "Data manifest", "Data order (the loader)". */
#include "fuzz.h"
#include "tern/data.h"

static const char *dir;

static void write_file(const char *name, const void *p, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_REQUIRE(f, "open %s", path);
    FUZZ_REQUIRE(n == 0 || fwrite(p, 1, n, f) == n, "write %s", path);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dir = fuzz_tmpdir("dataset");
    if (size < 3) return 0;
    int flags = data[0];
    size_t mn = (size_t)data[1] | (size_t)data[2] << 8;
    if (mn > size - 3) return 0;
    char *man = fuzz_dup(data + 3, mn);
    size_t sn = size - 3 - mn;
    uint8_t *shard = (uint8_t *)fuzz_dup(data + 3 + mn, sn);
    if ((flags & 1) && sn >= TERN_SHARD_HEADER_BYTES) {
        tern_hash(shard + 32, shard + TERN_SHARD_HEADER_BYTES, sn - TERN_SHARD_HEADER_BYTES);
        char *b = memmem(man, mn, "\"blake2b\": \"", 12);
        if (b && (size_t)(b - man) + 12 + 64 <= mn) {
            char hex[2 * TERN_HASH_BYTES + 1];
            tern_hex(hex, shard + 32, TERN_HASH_BYTES);
            memcpy(b + 12, hex, 64);
        }
    }
    write_file("manifest.json", man, mn);
    write_file("train_000000.bin", shard, sn);
    tern_dataset *ds = NULL;
    tern_err_clear();
    tern_status st = tern_dataset_open(&ds, dir, "train", NULL, NULL);
    fuzz_check_refusal(st, dir);
    if (st == TERN_OK) {
        size_t B = 1 + ((flags >> 1) & 1), T = 1 + ((flags >> 2) & 3) * 3, V = tern_dataset_vocab_size(ds);
        tern_loader *l = NULL;
        tern_err_clear();
        st = tern_loader_init(&l, ds, B, T, (flags >> 4) & 1, 7);
        fuzz_check_refusal(st, dir);
        if (st == TERN_OK) {
            int32_t in[2 * 10], tg[2 * 10];
            uint64_t W = tern_loader_windows_per_epoch(l);
            FUZZ_REQUIRE(W >= 1, "no windows");
            for (uint64_t c = 0; c < 3; c++) {
                FUZZ_REQUIRE(tern_loader_get(l, c * (W / 2 + 1), 0, B, in, tg) == TERN_OK, "get: %s", tern_errmsg());
                for (size_t i = 0; i < B * T; i++) {
                    FUZZ_REQUIRE(in[i] >= 0 && (size_t)in[i] < V && tg[i] >= 0 && (size_t)tg[i] < V, "token outside the vocabulary");
                    if (i + 1 < B * T) FUZZ_REQUIRE(tg[i] == in[i + 1], "target %zu is not the next input", i);
                }
            }
        }
        tern_loader_free(l);
        tern_dataset_free(ds);
    }
    free(man);
    free(shard);
    return 0;
}
