/* tern ledger: checks a run's ledger (chain, signatures, checkpoint files on disk) and prints
 * its head hash. All the work is in ledger/. */
#include "cli.h"

#include <string.h>

static const char *usage_text =
    "usage: tern ledger verify RUNDIR [--pub KEYFILE.pub] [--head HASH]\n"
    "       tern ledger head RUNDIR\n"
    "\n"
    "verify  checks RUNDIR/ledger.jsonl: every entry's hash chain and signature, that every resume\n"
    "        names a recorded checkpoint, and that every checkpoint still on disk matches the hashes\n"
    "        recorded for it; reports the first line where anything breaks (exit 1).\n"
    "  --pub KEYFILE.pub  the public key that must have signed every entry; without it signatures\n"
    "                     are checked against the key the ledger's first entry names, which proves\n"
    "                     only that the ledger is consistent, not who wrote it\n"
    "  --head HASH        a head hash sent home earlier: one entry must have it, so that a ledger\n"
    "                     rewritten since then is caught even when it is not signed\n"
    "head    prints the hash of the last entry (to send home)\n";

static int ledger_verify(int argc, char **argv) {
    const char *dir = NULL, *pub_path = NULL, *head = NULL;
    for (int i = 2; i < argc; i++) {
        if (cli_opt_str("ledger", argc, argv, &i, "--pub", &pub_path) || cli_opt_str("ledger", argc, argv, &i, "--head", &head))
            continue;
        if (argv[i][0] == '-') cli_usage("ledger", "unknown option '%s' (see tern ledger --help)", argv[i]);
        if (dir) cli_usage("ledger", "give one run folder");
        dir = argv[i];
    }
    if (!dir) cli_usage("ledger", "give the run folder: tern ledger verify RUNDIR");
    uint8_t pub[TERN_SIGN_PUB_BYTES];
    tern_status st;
    if (pub_path && (st = tern_sign_pub_from_file(pub, pub_path)) != TERN_OK) cli_fail("ledger", st);
    tern_ledger_report rep;
    st = tern_ledger_verify(dir, pub_path ? pub : NULL, head, &rep);
    if (st != TERN_OK) {
        if (rep.bad_line > 1)
            fprintf(stderr, "tern ledger: lines 1 to %llu verified before the break\n", (unsigned long long)rep.bad_line - 1);
        cli_fail("ledger", st);
    }
    printf("%s/%s: %llu entries, hash chain intact%s\n", dir, TERN_LEDGER_FILE, (unsigned long long)rep.entries,
           rep.ended ? ", run ended" : "");
    if (rep.is_signed && pub_path)
        printf("signatures: every entry signed by %s, the --pub key\n", rep.signer);
    else if (rep.is_signed)
        printf("signatures: every entry signed by %s, the key the ledger itself names (give --pub to check who signed)\n",
               rep.signer);
    else
        printf("signatures: none (the ledger is not signed: whoever can write the run folder can rewrite it; pin it with --head)\n");
    if (head) printf("head: %s found in the chain\n", head);
    printf("checkpoints: %llu on disk match their recorded hashes (%llu files), %llu no longer on disk\n",
           (unsigned long long)rep.ckpt_ok, (unsigned long long)rep.ckpt_files, (unsigned long long)rep.ckpt_gone);
    printf("head %s\n", rep.head);
    return 0;
}

static int ledger_head(int argc, char **argv) {
    if (argc != 3) cli_usage("ledger", "usage: tern ledger head RUNDIR");
    tern_ledger_report rep;
    /* the head is only worth sending if the chain up to it verifies */
    tern_status st = tern_ledger_verify(argv[2], NULL, NULL, &rep);
    if (st != TERN_OK) cli_fail("ledger", st);
    printf("%s\n", rep.head);
    return 0;
}

int cli_ledger(int argc, char **argv) {
    if (argc < 2 || cli_flag(argv, 1, "--help") || cli_flag(argv, 1, "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* `tern ledger verify --help` and the like: the help, wherever it is asked for */
    for (int i = 2; i < argc; i++)
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    if (!strcmp(argv[1], "verify")) return ledger_verify(argc, argv);
    if (!strcmp(argv[1], "head")) return ledger_head(argc, argv);
    cli_usage("ledger", "unknown subcommand '%s' (verify or head)", argv[1]);
}
