/* ledger/ internals of the run ledger (ledger.c): the chain walk shared by the appender (which
 * refuses to extend a ledger that does not verify) and by verification. Not for use outside
 * src/ledger/. */
#ifndef TERN_LEDGER_INT_H
#define TERN_LEDGER_INT_H

#include "tern/ledger.h"

#include <cjson/cJSON.h>

/* A signed line ends with ,"sig":"<128 hex digits>"} and the signature covers every byte
 * before that suffix: 8 + 128 + 2 bytes. */
#define LEDGER_SIG_PREFIX ",\"sig\":\""
#define LEDGER_SIG_SUFFIX_LEN (8 + 2 * TERN_SIGN_BYTES + 2)
#define LEDGER_TYPE_MAX 32

/* A checkpoint entry as the walk records it. */
typedef struct ledger_ckpt {
    char *dir;      /* relative to the run folder */
    uint64_t line;  /* the entry's line */
    cJSON *files;   /* object: file name -> hex hash (owned) */
} ledger_ckpt;

/* What walking the chain found. */
typedef struct ledger_chain {
    uint64_t entries;             /* lines that verified */
    uint64_t bad_line;            /* first line that did not, or 0 */
    uint8_t head[TERN_HASH_BYTES];/* hash of the last line that verified */
    int is_signed;
    uint8_t signer[TERN_SIGN_PUB_BYTES];
    int ended;                    /* the last verified entry is an 'end' */
    int head_found;               /* a wanted head hash was met */
    ledger_ckpt *ckpts;
    size_t n_ckpts, cap_ckpts;
} ledger_chain;

/* Walks every line of text: JSON shape, version, seq, prev hash, signatures (against pub when
 * given), resumes against earlier checkpoints. Stops at the first break with TERN_EAUTH and
 * "<name>: line N: ...". want_head (may be NULL) is looked for among the lines' hashes. */
tern_status ledger_chain_walk(ledger_chain *c, const char *text, size_t n, const char *name, const uint8_t *pub,
                              const uint8_t *want_head);
void ledger_chain_free(ledger_chain *c);

/* 1 when p is a relative path inside the run folder: not empty, not absolute, no '.' or '..'
 * component, no empty component. */
int ledger_path_ok(const char *p);
/* 1 when s is a valid entry type: [a-z_], 1 to LEDGER_TYPE_MAX characters. */
int ledger_type_ok(const char *s);

#endif
