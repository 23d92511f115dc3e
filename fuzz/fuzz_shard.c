/* libFuzzer target: token shards (DATADIR/{train,val}_NNNNNN.bin) through tern_shard_parse,
 * header only and with the full check (checksum and token range). The first input byte holds
 * flags: bit 0 recomputes the header's checksum over the tokens first, so that mutated tokens
 * get past it and reach the range check; bit 1 asks for the full check. Every token of an
 * accepted shard is then read. Not the loader. Format: docs/FORMATS.md "Token shards". */
#include "fuzz.h"
#include "tern/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *label = "fuzz/train_000000.bin";
    if (size < 1) return 0;
    int flags = data[0];
    uint8_t *p = (uint8_t *)fuzz_dup(data + 1, size - 1);
    size_t n = size - 1;
    if ((flags & 1) && n >= TERN_SHARD_HEADER_BYTES)
        tern_hash(p + 32, p + TERN_SHARD_HEADER_BYTES, n - TERN_SHARD_HEADER_BYTES);
    tern_shard_view v;
    tern_err_clear();
    tern_status st = tern_shard_parse(&v, p, n, label, (flags & 2) != 0);
    fuzz_check_refusal(st, label);
    if (st == TERN_OK) {
        FUZZ_REQUIRE(v.bytes_per_token == 2 || v.bytes_per_token == 4, "%u bytes per token", v.bytes_per_token);
        FUZZ_REQUIRE(v.tokens == p + TERN_SHARD_HEADER_BYTES && v.n_tokens * v.bytes_per_token == n - TERN_SHARD_HEADER_BYTES,
                     "%llu tokens in %zu bytes", (unsigned long long)v.n_tokens, n);
        uint64_t sum = 0;
        for (uint64_t i = 0; i < v.n_tokens; i++) {
            uint32_t t = tern_shard_token(&v, i);
            if (flags & 2) FUZZ_REQUIRE(t < v.vocab_size, "token %llu is %u, vocabulary %llu", (unsigned long long)i, t,
                                        (unsigned long long)v.vocab_size);
            sum += t;
        }
        (void)sum;
    } else {
        FUZZ_REQUIRE(st == TERN_EFORMAT, "status %d", (int)st);
    }
    free(p);
    return 0;
}
