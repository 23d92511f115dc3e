/* libFuzzer target: the run ledger (RUNDIR/ledger.jsonl, read by tern ledger verify and by every
 * resume) through tern_ledger_verify_buffer, without the checks of files on disk. The first
 * input byte holds flags:
 *   bit 0  fix the chain up first: each line's "prev":"<64 hex>" is rewritten to the hash of the
 *          line before it, and a line ending in ,"sig":"<128 hex>"} is re-signed with the
 *          fuzzer's own Ed25519 key, so mutations get past the hashes and signatures and reach
 *          the checks behind them (resumes against checkpoints, entry types, paths);
 *   bit 1  verify against that key's public half (--pub);
 *   bit 2  ask for the head hash of the last line (--head).
 * The report must agree with the status. Not the appender. Format: docs/FORMATS.md "Run ledger". */
#include "fuzz.h"

#include <sodium.h>

static const char *name = "fuzz/ledger.jsonl";
static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];

static void setup(void) {
    static int done;
    if (done) return;
    FUZZ_REQUIRE(sodium_init() >= 0, "sodium_init");
    unsigned char seed[crypto_sign_SEEDBYTES];
    for (size_t i = 0; i < sizeof seed; i++) seed[i] = (unsigned char)(0xA5 ^ i);
    crypto_sign_seed_keypair(pk, sk, seed);
    done = 1;
}

static void fixup(char *s, size_t n, uint8_t last_hash[TERN_HASH_BYTES]) {
    static const char prev_key[] = "\"prev\":\"", sig_key[] = ",\"sig\":\"";
    uint8_t prev[TERN_HASH_BYTES] = {0};
    size_t pos = 0;
    while (pos < n) {
        char *line = s + pos, *nl = memchr(line, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - line) : n - pos;
        char *p = memmem(line, len, prev_key, sizeof prev_key - 1);
        if (p && (size_t)(p - line) + 8 + 64 < len) {
            char keep = p[8 + 64]; /* tern_hex writes a NUL after the digits; the line keeps its byte */
            tern_hex(p + 8, prev, TERN_HASH_BYTES);
            p[8 + 64] = keep;
        }
        size_t suf = 8 + 128 + 2;
        if (len >= suf && !memcmp(line + len - suf, sig_key, 8) && !memcmp(line + len - 2, "\"}", 2)) {
            unsigned char sig[crypto_sign_BYTES];
            crypto_sign_detached(sig, NULL, (const unsigned char *)line, len - suf, sk);
            char hex[2 * crypto_sign_BYTES + 1];
            tern_hex(hex, sig, sizeof sig);
            memcpy(line + len - suf + 8, hex, 128);
        }
        tern_hash(prev, line, len);
        pos += len + (nl ? 1 : 0);
    }
    memcpy(last_hash, prev, TERN_HASH_BYTES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup();
    if (size < 1) return 0;
    int flags = data[0];
    char *text = fuzz_dup(data + 1, size - 1);
    size_t n = size - 1;
    uint8_t last[TERN_HASH_BYTES] = {0};
    if (flags & 1) fixup(text, n, last);
    char head[TERN_LEDGER_HEX];
    tern_hex(head, last, TERN_HASH_BYTES);
    tern_ledger_report rep;
    tern_err_clear();
    tern_status st = tern_ledger_verify_buffer(text, n, name, NULL, (flags & 2) ? pk : NULL, (flags & 4) ? head : NULL, &rep);
    fuzz_check_refusal(st, name);
    size_t lines = 0;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    if (st == TERN_OK) {
        FUZZ_REQUIRE(rep.bad_line == 0 && rep.entries == lines && n && text[n - 1] == '\n', "accepted, but report says %llu of %zu lines, bad %llu",
                     (unsigned long long)rep.entries, lines, (unsigned long long)rep.bad_line);
        if (flags & 2) FUZZ_REQUIRE(rep.is_signed, "verified against --pub but not signed");
    } else {
        FUZZ_REQUIRE(st == TERN_EAUTH || st == TERN_ENOMEM, "status %d: %s", (int)st, tern_errmsg());
        if (st == TERN_EAUTH) {
            FUZZ_REQUIRE(rep.bad_line >= 1 && rep.bad_line <= lines + 1, "bad line %llu of %zu", (unsigned long long)rep.bad_line, lines);
            /* a break names its line; a chain that verifies but lacks the --head hash is refused
             * as a whole (bad_line 1, "no entry has the head hash") */
            char want[48];
            snprintf(want, sizeof want, "line %llu", (unsigned long long)rep.bad_line);
            int head_missing = (flags & 4) && rep.bad_line == 1 && strstr(tern_errmsg(), ": no entry has the head hash ");
            FUZZ_REQUIRE(head_missing || strstr(tern_errmsg(), want), "report says %s, message: %s", want, tern_errmsg());
        }
    }
    free(text);
    return 0;
}
