/* tern ledger: the run ledger, RUNDIR/ledger.jsonl. Append-only JSON Lines; each entry carries
 * the BLAKE2b-256 hash of the line before it and, with a signing key, an Ed25519 signature.
 * Entries: the run's start, every checkpoint (with the hashes of its files), every resume, the
 * end, and typed entries other modules add. It records and verifies; it does not decide
 * anything about a run. Format in docs/FORMATS.md ("Run ledger"), what it proves and what it
 * cannot in docs/SECURITY.md. */
#ifndef TERN_LEDGER_H
#define TERN_LEDGER_H

#include "tern/core.h"
#include "tern/secure.h"

struct cJSON;

#define TERN_LEDGER_FILE "ledger.jsonl"
#define TERN_LEDGER_VERSION 1
#define TERN_LEDGER_HEX (2 * TERN_HASH_BYTES + 1)

typedef struct tern_ledger tern_ledger; /* an open ledger, appending; opaque */

/* What the start entry records. Hashes are TERN_HASH_BYTES (BLAKE2b-256) of whatever the caller
 * takes as the identity of its configuration, data manifest and tokenizer (e.g. tern_hash_file
 * of the plaintext); NULL records null. cJSON values are borrowed and copied. */
typedef struct tern_ledger_start {
    const char *run_id;             /* required: the run's identifier */
    const uint8_t *config_hash;
    const uint8_t *manifest_hash;
    const uint8_t *tokenizer_hash;
    const struct cJSON *hardware;   /* the hardware summary (an object), or NULL */
    const struct cJSON *site;       /* the site declaration (an object), or NULL: omitted */
    const struct cJSON *extra;      /* more fields for the entry's data (an object), or NULL */
} tern_ledger_start;

/* Creates RUNDIR/ledger.jsonl (and RUNDIR) with its start entry, durably. Refuses when a ledger
 * exists ("<path>: already exists; a run's ledger is started once (open it to append)",
 * TERN_EINVAL). sk (borrowed; must outlive the ledger) makes every entry signed; NULL leaves
 * the ledger unsigned. The start entry also records tern's version, the host name and, when
 * signed, the signer's public key. */
tern_status tern_ledger_create(tern_ledger **out, const char *rundir, const tern_sign_key *sk, const tern_ledger_start *info);
/* Opens an existing ledger to append (on resume). Checks the whole chain and its signatures
 * first and refuses a ledger that does not verify, one signed by another key than sk, a signed
 * one without sk and an unsigned one with sk. One break is repaired instead: a torn last line
 * (no newline; a writer killed mid-append) after lines that verify is cut off, and a "repair"
 * entry records its size and hash. Holds an exclusive lock until closed, so two processes never
 * append at once. */
tern_status tern_ledger_open(tern_ledger **out, const char *rundir, const tern_sign_key *sk);
/* Appends an entry of the given type ([a-z_], 1 to 32 characters, not "start") whose data is a
 * copy of the object data (NULL: {}). Written with one write(2) to a file opened O_APPEND, then
 * fsync'd: earlier lines are never touched. After a failed write the ledger refuses further
 * appends. */
tern_status tern_ledger_append(tern_ledger *l, const char *type, const struct cJSON *data);
/* A checkpoint: step, its folder relative to RUNDIR (e.g. "ckpt/step-000100"), and the names of
 * its files in that folder, whose BLAKE2b-256 (of the bytes on disk, sealed or not) the ledger
 * computes and records. extra (NULL or an object) adds fields, e.g. the loss. */
tern_status tern_ledger_checkpoint(tern_ledger *l, int64_t step, const char *dir, const char *const *files, size_t n_files,
                                   const struct cJSON *extra);
/* A resume from the checkpoint in dir (relative to RUNDIR) at step: records the hashes of its
 * files as they are now, and the host. verify checks they match the checkpoint recorded there. */
tern_status tern_ledger_resume(tern_ledger *l, int64_t step, const char *dir, const char *const *files, size_t n_files,
                               const struct cJSON *extra);
/* Whether the ledger records a checkpoint entry for dir: read when it was opened, or appended
 * since. */
int tern_ledger_has_checkpoint(const tern_ledger *l, const char *dir);
/* The run's end: status is e.g. "completed", "stopped" or "failed". */
tern_status tern_ledger_end(tern_ledger *l, const char *status, const struct cJSON *extra);
/* The hash of the last entry (hex): send it home to pin the ledger (tern ledger verify --head). */
void tern_ledger_head(const tern_ledger *l, char hex[TERN_LEDGER_HEX]);
uint64_t tern_ledger_entries(const tern_ledger *l);
void tern_ledger_close(tern_ledger *l); /* NULL is a no-op */

/* What verification found. */
typedef struct tern_ledger_report {
    uint64_t entries;        /* entries that verified, up to the first break */
    uint64_t bad_line;       /* the first line where something breaks (1-based); 0 when intact */
    int is_signed;
    char signer[TERN_LEDGER_HEX];   /* the signer's public key (hex) when signed */
    uint64_t ckpt_ok;        /* checkpoint folders on disk whose files match their entry */
    uint64_t ckpt_gone;      /* checkpoint folders recorded but no longer on disk */
    uint64_t ckpt_files;     /* files hashed */
    int ended;               /* the last entry is an 'end' */
    char head[TERN_LEDGER_HEX];     /* hash of the last verified entry */
} tern_ledger_report;

/* Verifies RUNDIR/ledger.jsonl: every line's JSON, version, sequence number and prev hash; the
 * signatures (against pub when given, which must be the signer's; else against the signer the
 * start entry names); that every resume names a recorded checkpoint with the same file hashes;
 * that head_hex (when given) is the hash of one of its entries; and that every checkpoint folder
 * still on disk holds files matching the hashes its latest entry recorded. Returns TERN_OK, or
 * TERN_EAUTH with the message "<path>: line N: <what is wrong>" for the first line that breaks
 * (rep->bad_line = N). Other statuses for a ledger that cannot be read. */
tern_status tern_ledger_verify(const char *rundir, const uint8_t *pub, const char *head_hex, tern_ledger_report *rep);
/* The same over the ledger's text in memory (for fuzzing); rundir NULL skips the checks of
 * files on disk. name is used in messages. */
tern_status tern_ledger_verify_buffer(const char *text, size_t n, const char *name, const char *rundir, const uint8_t *pub,
                                      const char *head_hex, tern_ledger_report *rep);

#endif
