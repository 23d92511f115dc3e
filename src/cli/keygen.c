/* tern keygen: makes a sealing key (32 random bytes, mode 0600) or, with --sign, an Ed25519 key
 * pair for signing the run ledger. Never overwrites a file. All the work is in secure/. */
#include "cli.h"

#include <string.h>

static const char *usage_text =
    "usage: tern keygen -o KEYFILE [--sign]\n"
    "\n"
    "  -o, --out KEYFILE  where to write the key; an existing file is never overwritten\n"
    "  --sign             make an Ed25519 signing key pair for the run ledger instead:\n"
    "                     KEYFILE (secret, mode 0600) and KEYFILE.pub (public)\n"
    "\n"
    "A sealing key is 32 random bytes in a file of mode 0600. Give it to commands that read or\n"
    "write sealed files with --key KEYFILE or the environment variable TERN_KEY_FILE; keep a copy\n"
    "off the training site: without it sealed files cannot be opened.\n";

int cli_keygen(int argc, char **argv) {
    const char *out = NULL;
    int sign = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (cli_opt_str("keygen", argc, argv, &i, "-o", &out) || cli_opt_str("keygen", argc, argv, &i, "--out", &out))
            continue;
        if (cli_flag(argv, i, "--sign")) {
            sign = 1;
            continue;
        }
        cli_usage("keygen", "unknown option '%s' (see tern keygen --help)", argv[i]);
    }
    if (!out) cli_usage("keygen", "give the key file to write with -o KEYFILE");
    if (sign) {
        char pub[2 * TERN_SIGN_PUB_BYTES + 1];
        tern_status st = tern_sign_key_generate_files(out, pub);
        if (st != TERN_OK) cli_fail("keygen", st);
        printf("wrote %s (Ed25519 secret key, mode 0600) and %s.pub (public key %s)\n", out, out, pub);
    } else {
        char id[TERN_KEY_ID_HEX];
        tern_status st = tern_key_generate_file(out, id);
        if (st != TERN_OK) cli_fail("keygen", st);
        printf("wrote %s (sealing key, mode 0600, key id %s)\n", out, id);
    }
    return 0;
}
