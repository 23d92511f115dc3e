/* libFuzzer target: an input file of `prepare` through tern_text_stream_open/_read (plain, or zstd
 * or gzip told by the first bytes), read to its end in reads of changing sizes, or to 64 MiB of
 * output (a small zstd or gzip input may expand without bound, which is what reading does too). A
 * refusal names the file; plain bytes read back exactly; no more is read than the file holds.
 * Not the parsing of lines (fuzz_jsonl.c). Format: docs/FORMATS.md "Inputs of prepare". */
#include "fuzz.h"
#include "tern/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfile(data, size);
    tern_text_stream *s;
    tern_err_clear();
    tern_status st = tern_text_stream_open(&s, path);
    fuzz_check_refusal(st, path);
    if (st != TERN_OK) return 0;
    int plain = !strcmp(tern_text_stream_compression(s), "none");
    uint8_t *buf = malloc(1 << 16);
    uint64_t total = 0;
    for (int k = 0; total < ((uint64_t)64 << 20); k++) {
        size_t cap = 1 + (size_t)((size * 31 + (uint64_t)k * 7919) % (1 << 16)), got;
        st = tern_text_stream_read(s, buf, cap, &got);
        fuzz_check_refusal(st, path);
        if (st != TERN_OK || got == 0) break;
        FUZZ_REQUIRE(got <= cap, "%zu bytes read into %zu", got, cap);
        if (plain) FUZZ_REQUIRE(total + got <= size && !memcmp(buf, data + total, got), "plain bytes differ at %llu", (unsigned long long)total);
        total += got;
    }
    if (plain && st == TERN_OK) FUZZ_REQUIRE(total == size, "read %llu of %zu plain bytes", (unsigned long long)total, size);
    FUZZ_REQUIRE(tern_text_stream_raw_bytes(s) <= size, "read %llu bytes of a %zu-byte file", (unsigned long long)tern_text_stream_raw_bytes(s), size);
    free(buf);
    tern_text_stream_close(s);
    return 0;
}
