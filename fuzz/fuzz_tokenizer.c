/* libFuzzer target: a tokenizer folder's two files (vocab.json + merges.txt, or GPT-2's
 * encoder.json + vocab.bpe) through tern_tok_from_buffers. The input is the vocabulary, a NUL
 * byte, then the merges. Not a check of BPE against GPT-2 (tests/test_tok.c does that); here,
 * whatever the loader accepts must encode any bytes and decode them back exactly.
 * Format: docs/FORMATS.md "Tokenizer folder"; OpenAI's encoder.py. */
#include "fuzz.h"

static const char *vocab_name = "fuzz/vocab.json", *merges_name = "fuzz/merges.txt";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t k;
    fuzz_split(data, size, &k);
    /* exact-size copies, so a read one byte past either file is caught */
    char *vocab = fuzz_dup(data, k);
    size_t mn = k < size ? size - k - 1 : 0;
    char *merges = fuzz_dup(data + (k < size ? k + 1 : size), mn);
    tern_tok *tok = NULL;
    tern_err_clear();
    tern_status st = tern_tok_from_buffers(&tok, vocab, k, vocab_name, merges, mn, merges_name);
    if (st != TERN_OK) {
        const char *msg = tern_errmsg();
        FUZZ_REQUIRE(tok == NULL, "a refused tokenizer still returned a handle");
        FUZZ_REQUIRE(st == TERN_ENOMEM || strstr(msg, vocab_name) || strstr(msg, merges_name),
                     "status %d message names neither file: %s", (int)st, msg);
    } else {
        size_t nv = tern_tok_vocab_size(tok), len;
        FUZZ_REQUIRE(nv >= 257, "accepted a vocabulary of %zu tokens", nv);
        FUZZ_REQUIRE(tern_tok_token(tok, tern_tok_eot(tok), &len) != NULL, "no <|endoftext|>");
        /* encode the whole input as text (any bytes), and decode it back exactly */
        tern_ids ids = {0};
        FUZZ_REQUIRE(tern_tok_encode(tok, data, size, &ids) == TERN_OK, "encode: %s", tern_errmsg());
        char *back = NULL;
        size_t blen = 0;
        FUZZ_REQUIRE(tern_tok_decode(tok, ids.p, ids.n, &back, &blen) == TERN_OK, "decode: %s", tern_errmsg());
        FUZZ_REQUIRE(blen == size && (size == 0 || !memcmp(back, data, size)), "decode(encode(x)) != x (%zu bytes, got %zu)", size, blen);
        /* ids taken from the input: out of range ones are refused with a message, never read */
        int32_t raw[64];
        size_t nr = size / 4 < 64 ? size / 4 : 64;
        memcpy(raw, data, nr * 4);
        free(back);
        back = NULL;
        blen = 0;
        st = tern_tok_decode(tok, raw, nr, &back, &blen);
        int in_range = 1;
        for (size_t i = 0; i < nr; i++) in_range &= raw[i] >= 0 && (size_t)raw[i] < nv;
        FUZZ_REQUIRE((st == TERN_OK) == in_range, "decode of ids in range %d gave %d", in_range, (int)st);
        free(back);
        tern_ids_free(&ids);
        tern_tok_free(tok);
    }
    free(vocab);
    free(merges);
    return 0;
}
