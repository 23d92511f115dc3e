/* libFuzzer target: a data folder's manifest (DATADIR/manifest.json) through
 * tern_manifest_parse. Whatever it accepts must be written back by tern_manifest_write (into a
 * folder in memory, /dev/shm) and read back as the same manifest, how it was prepared included. Not the shards
 * (fuzz_shard.c). Format: docs/FORMATS.md "Data manifest". */
#include "fuzz.h"
#include "tern/data.h"

static int same(const tern_manifest *a, const tern_manifest *b) {
    if (memcmp(a->tokenizer_hash, b->tokenizer_hash, TERN_HASH_BYTES) || a->vocab_size != b->vocab_size || a->eot != b->eot ||
        a->bytes_per_token != b->bytes_per_token || a->docs[0] != b->docs[0] || a->docs[1] != b->docs[1] ||
        a->val_fraction != b->val_fraction || a->seed != b->seed || a->n_shards != b->n_shards)
        return 0;
    for (size_t i = 0; i < a->n_shards; i++) {
        const tern_manifest_shard *x = &a->shards[i], *y = &b->shards[i];
        if (strcmp(x->file, y->file) || x->split != y->split || x->n_tokens != y->n_tokens ||
            memcmp(x->checksum, y->checksum, TERN_HASH_BYTES))
            return 0;
    }
    /* how it was prepared */
    if (a->val_split != b->val_split || a->has_prepare != b->has_prepare) return 0;
    if (!a->has_prepare) return 1;
    if (strcmp(a->text_key, b->text_key) || !a->doc_separator != !b->doc_separator ||
        (a->doc_separator && strcmp(a->doc_separator, b->doc_separator)) || a->min_bytes != b->min_bytes || a->dedup != b->dedup ||
        a->binary_documents != b->binary_documents || memcmp(a->skipped, b->skipped, sizeof a->skipped) || a->n_sources != b->n_sources)
        return 0;
    for (size_t i = 0; i < a->n_sources; i++) {
        const tern_manifest_source *x = &a->sources[i], *y = &b->sources[i];
        if (strcmp(x->path, y->path) || strcmp(x->format, y->format) || x->files != y->files || x->documents != y->documents ||
            x->bytes != y->bytes || x->tokens != y->tokens || memcmp(x->skipped, y->skipped, sizeof x->skipped))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *label = "fuzz/manifest.json";
    const char *dir = fuzz_tmpdir("manifest");
    tern_manifest m, m2;
    tern_err_clear();
    tern_status st = tern_manifest_parse(&m, (const char *)data, size, label);
    fuzz_check_refusal(st, label);
    if (st != TERN_OK) return 0;
    FUZZ_REQUIRE(m.eot >= 0 && (uint64_t)m.eot < m.vocab_size, "eot %lld of %llu", (long long)m.eot, (unsigned long long)m.vocab_size);
    FUZZ_REQUIRE(tern_manifest_write(&m, dir, NULL) == TERN_OK, "write: %s", tern_errmsg());
    FUZZ_REQUIRE(tern_manifest_read(&m2, dir, NULL) == TERN_OK, "what tern wrote does not read back: %s", tern_errmsg());
    FUZZ_REQUIRE(same(&m, &m2), "the manifest changed on a round trip");
    tern_manifest_free(&m2);
    tern_manifest_free(&m);
    return 0;
}
