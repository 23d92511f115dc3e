/* The run ledger: RUNDIR/ledger.jsonl, one JSON object per line, each carrying the BLAKE2b-256
 * hash of the line before it and, with a signing key, an Ed25519 signature of itself. Appends
 * are one write(2) to an O_APPEND file followed by fsync; nothing earlier is ever rewritten.
 * Verification walks the chain, the signatures and the checkpoint files on disk. What goes into
 * an entry (hardware, site, hashes) is the caller's (train/record.c). Format: docs/FORMATS.md
 * "Run ledger". */
#include "ledger_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct tern_ledger {
    char *path;
    char *rundir;
    int fd;                          /* O_APPEND, exclusively locked */
    uint64_t seq;                    /* entries written so far */
    uint8_t head[TERN_HASH_BYTES];   /* hash of the last line */
    const tern_sign_key *sk;         /* borrowed; NULL when unsigned */
    int failed;                      /* a write failed: the tail may be torn, so stop */
    ledger_chain chain;              /* the checkpoints recorded so far (read at open, then appended) */
};

/* ---- small checks ---- */

int ledger_type_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > LEDGER_TYPE_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')) return 0;
    return 1;
}

int ledger_path_ok(const char *p) {
    if (!p || !*p || *p == '/') return 0;
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20) return 0;
        if (!e) break;
        s = e + 1;
        if (!*s) return 0; /* trailing slash */
    }
    return 1;
}

static int hex_field(const cJSON *j, const char *key, uint8_t *out, size_t n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) && tern_unhex(out, n, v->valuestring) == 0;
}

/* ---- walking the chain ---- */

static tern_status chain_break(ledger_chain *c, const char *name, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static tern_status chain_break(ledger_chain *c, const char *name, uint64_t line, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->bad_line = line;
    return tern_err(TERN_EAUTH, "%s: line %llu: %s", name, (unsigned long long)line, msg);
}

void ledger_chain_free(ledger_chain *c) {
    for (size_t i = 0; i < c->n_ckpts; i++) {
        free(c->ckpts[i].dir);
        cJSON_Delete(c->ckpts[i].files);
    }
    free(c->ckpts);
    c->ckpts = NULL;
    c->n_ckpts = c->cap_ckpts = 0;
}

/* The latest checkpoint entry for dir, or NULL. */
static const ledger_ckpt *ckpt_find(const ledger_chain *c, const char *dir) {
    for (size_t i = c->n_ckpts; i-- > 0;)
        if (!strcmp(c->ckpts[i].dir, dir)) return &c->ckpts[i];
    return NULL;
}

/* Records a checkpoint entry of line `line` (dir and files are copied). */
static tern_status chain_add_ckpt(ledger_chain *c, const char *dir, const cJSON *files, uint64_t line) {
    if (c->n_ckpts == c->cap_ckpts) {
        size_t cap = c->cap_ckpts ? 2 * c->cap_ckpts : 16;
        ledger_ckpt *q = realloc(c->ckpts, cap * sizeof *q);
        if (!q) return tern_err(TERN_ENOMEM, "out of memory");
        c->ckpts = q;
        c->cap_ckpts = cap;
    }
    ledger_ckpt *k = &c->ckpts[c->n_ckpts];
    k->dir = strdup(dir);
    k->files = cJSON_Duplicate(files, 1);
    k->line = line;
    if (!k->dir || !k->files) {
        free(k->dir);
        cJSON_Delete(k->files);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    c->n_ckpts++;
    return TERN_OK;
}

static int files_equal(const cJSON *a, const cJSON *b) {
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return 0;
    for (const cJSON *x = a->child; x; x = x->next) {
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
        if (!cJSON_IsString(y) || strcmp(x->valuestring, y->valuestring)) return 0;
    }
    return 1;
}

/* The checkpoint fields of a checkpoint or resume entry: dir and files. */
static tern_status ckpt_fields(ledger_chain *c, const char *name, uint64_t line, const cJSON *data, const char **dir,
                               const cJSON **files) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(data, "dir"), *f = cJSON_GetObjectItemCaseSensitive(data, "files");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(data, "step");
    if (!cJSON_IsString(d) || !cJSON_IsObject(f) || !cJSON_IsNumber(step))
        return chain_break(c, name, line, "a checkpoint entry needs 'step', 'dir' and 'files'");
    if (!ledger_path_ok(d->valuestring))
        return chain_break(c, name, line, "checkpoint path '%s' is not a plain path inside the run folder", d->valuestring);
    for (const cJSON *x = f->child; x; x = x->next) {
        uint8_t h[TERN_HASH_BYTES];
        if (!ledger_path_ok(x->string) || strchr(x->string, '/'))
            return chain_break(c, name, line, "checkpoint file name '%s' is not a plain file name", x->string);
        if (!cJSON_IsString(x) || tern_unhex(h, sizeof h, x->valuestring) != 0)
            return chain_break(c, name, line, "the hash of checkpoint file '%s' is not 64 hex digits", x->string);
    }
    *dir = d->valuestring;
    *files = f;
    return TERN_OK;
}

static tern_status check_line(ledger_chain *c, const char *name, uint64_t line, const char *s, size_t len,
                              const uint8_t prev[TERN_HASH_BYTES], const uint8_t *pub) {
    cJSON *j = cJSON_ParseWithLength(s, len);
    tern_status st = TERN_OK;
    char hex[TERN_LEDGER_HEX], hex2[TERN_LEDGER_HEX];
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return chain_break(c, name, line, "not a JSON object");
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "v"), *seq = cJSON_GetObjectItemCaseSensitive(j, "seq");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type"), *tm = cJSON_GetObjectItemCaseSensitive(j, "time");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data"), *sig = cJSON_GetObjectItemCaseSensitive(j, "sig");
    uint8_t p[TERN_HASH_BYTES];
    if (!cJSON_IsNumber(v)) st = chain_break(c, name, line, "field 'v' is missing or not a number");
    else if (v->valuedouble != TERN_LEDGER_VERSION)
        st = chain_break(c, name, line, "ledger format version %g is not supported (this tern reads version %d)", v->valuedouble,
                 TERN_LEDGER_VERSION);
    else if (!cJSON_IsNumber(seq)) st = chain_break(c, name, line, "field 'seq' is missing or not a number");
    else if (!cJSON_IsString(type) || !ledger_type_ok(type->valuestring))
        st = chain_break(c, name, line, "field 'type' is missing or not a type name");
    else if (!cJSON_IsString(tm)) st = chain_break(c, name, line, "field 'time' is missing or not a string");
    else if (!cJSON_IsObject(data)) st = chain_break(c, name, line, "field 'data' is missing or not an object");
    else if (!hex_field(j, "prev", p, sizeof p)) st = chain_break(c, name, line, "field 'prev' is missing or not 64 hex digits");
    else if (seq->valuedouble != (double)line)
        st = chain_break(c, name, line, "seq is %.0f, expected %llu (entries were removed, inserted or reordered)", seq->valuedouble,
                 (unsigned long long)line);
    else if (memcmp(p, prev, sizeof p) != 0)
        st = line == 1 ? chain_break(c, name, line, "prev hash is not all zeros (the ledger does not start here)")
                       : chain_break(c, name, line, "prev hash does not match line %llu (an entry was edited, removed or inserted)",
                             (unsigned long long)(line - 1));
    else if (line == 1 && strcmp(type->valuestring, "start"))
        st = chain_break(c, name, line, "the first entry is a '%s', not a 'start'", type->valuestring);
    else if (line > 1 && !strcmp(type->valuestring, "start")) st = chain_break(c, name, line, "a second 'start' entry");
    if (st != TERN_OK) {
        cJSON_Delete(j);
        return st;
    }
    if (line == 1) {
        const cJSON *sg = cJSON_GetObjectItemCaseSensitive(data, "signer");
        if (sg && !hex_field(data, "signer", c->signer, sizeof c->signer))
            st = chain_break(c, name, line, "the signer's public key is not 64 hex digits");
        c->is_signed = sg != NULL;
        if (st == TERN_OK && pub) {
            tern_hex(hex2, pub, TERN_SIGN_PUB_BYTES);
            if (!c->is_signed) st = chain_break(c, name, line, "the ledger is not signed, but --pub was given");
            else if (memcmp(pub, c->signer, TERN_SIGN_PUB_BYTES) != 0) {
                tern_hex(hex, c->signer, TERN_SIGN_PUB_BYTES);
                st = chain_break(c, name, line, "signed by key %s, not by the --pub key %s", hex, hex2);
            }
        }
    }
    if (st == TERN_OK && c->is_signed) {
        tern_hex(hex, c->signer, TERN_SIGN_PUB_BYTES);
        uint8_t sb[TERN_SIGN_BYTES];
        const char *suf = len >= LEDGER_SIG_SUFFIX_LEN ? s + len - LEDGER_SIG_SUFFIX_LEN : s;
        if (!sig) st = chain_break(c, name, line, "entry is not signed, but this ledger is signed by key %s", hex);
        else if (!cJSON_IsString(sig) || len < LEDGER_SIG_SUFFIX_LEN || memcmp(suf, LEDGER_SIG_PREFIX, 8) ||
                 memcmp(s + len - 2, "\"}", 2) || strlen(sig->valuestring) != 2 * TERN_SIGN_BYTES ||
                 memcmp(suf + 8, sig->valuestring, 2 * TERN_SIGN_BYTES) ||
                 tern_unhex(sb, sizeof sb, sig->valuestring) != 0)
            st = chain_break(c, name, line, "the signature is not 128 hex digits in the entry's last field");
        else if (tern_sign_verify(c->signer, sb, s, len - LEDGER_SIG_SUFFIX_LEN) != TERN_OK)
            st = chain_break(c, name, line, "signature does not verify with key %s", hex);
    } else if (st == TERN_OK && sig) {
        st = chain_break(c, name, line, "signed, but the ledger's start entry names no signer");
    }
    const char *t = type->valuestring, *dir = NULL;
    const cJSON *files = NULL;
    if (st == TERN_OK && (!strcmp(t, "checkpoint") || !strcmp(t, "resume")))
        st = ckpt_fields(c, name, line, data, &dir, &files);
    if (st == TERN_OK && !strcmp(t, "resume")) {
        const ledger_ckpt *k = ckpt_find(c, dir);
        if (!k) st = chain_break(c, name, line, "resumed from %s, which no earlier entry records as a checkpoint", dir);
        else if (!files_equal(files, k->files))
            st = chain_break(c, name, line, "resumed from %s, whose files do not match the checkpoint recorded at line %llu", dir,
                     (unsigned long long)k->line);
    }
    if (st == TERN_OK && !strcmp(t, "checkpoint")) st = chain_add_ckpt(c, dir, files, line);
    if (st == TERN_OK) c->ended = !strcmp(t, "end");
    cJSON_Delete(j);
    return st;
}

tern_status ledger_chain_walk(ledger_chain *c, const char *text, size_t n, const char *name, const uint8_t *pub,
                              const uint8_t *want_head) {
    memset(c, 0, sizeof *c);
    uint8_t prev[TERN_HASH_BYTES] = {0};
    if (n == 0) return chain_break(c, name, 1, "the ledger is empty");
    size_t pos = 0;
    uint64_t line = 0;
    while (pos < n) {
        line++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', n - pos);
        if (!nl)
            return chain_break(c, name, line, "incomplete entry (no newline at the end): the writer stopped mid-entry, or the file was cut");
        size_t len = (size_t)(nl - s);
        pos += len + 1;
        TERN_TRY(check_line(c, name, line, s, len, prev, pub));
        tern_hash(prev, s, len);
        memcpy(c->head, prev, sizeof prev);
        c->entries = line;
        if (want_head && !memcmp(prev, want_head, TERN_HASH_BYTES)) c->head_found = 1;
    }
    return TERN_OK;
}

/* ---- verification ---- */

/* The checkpoint folders still on disk against the latest entry for each. Returns the first
 * break (smallest line) as TERN_EAUTH. */
static tern_status check_disk(ledger_chain *c, const char *name, const char *rundir, tern_ledger_report *rep) {
    char hex[TERN_LEDGER_HEX];
    for (size_t i = 0; i < c->n_ckpts; i++) {
        const ledger_ckpt *k = &c->ckpts[i];
        if (ckpt_find(c, k->dir) != k) continue; /* superseded by a later entry for the same folder */
        char *d = tern_path_join(rundir, k->dir);
        if (!d) return tern_err(TERN_ENOMEM, "out of memory");
        struct stat sb;
        if (stat(d, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            rep->ckpt_gone++;
            free(d);
            continue;
        }
        tern_status st = TERN_OK;
        for (const cJSON *f = k->files->child; f && st == TERN_OK; f = f->next) {
            char *p = tern_path_join(d, f->string);
            uint8_t h[TERN_HASH_BYTES], want[TERN_HASH_BYTES];
            if (!p) st = tern_err(TERN_ENOMEM, "out of memory");
            else if (!tern_path_exists(p)) st = chain_break(c, name, k->line, "checkpoint %s: %s is missing", k->dir, f->string);
            else if (tern_hash_file(h, p) != TERN_OK)
                st = chain_break(c, name, k->line, "checkpoint %s: %s cannot be read", k->dir, f->string);
            else {
                rep->ckpt_files++;
                tern_unhex(want, sizeof want, f->valuestring);
                if (memcmp(h, want, sizeof h) != 0) {
                    tern_hex(hex, h, sizeof h);
                    st = chain_break(c, name, k->line, "checkpoint %s: %s has changed since it was recorded (hash %s, recorded %s)",
                             k->dir, f->string, hex, f->valuestring);
                }
            }
            free(p);
        }
        free(d);
        if (st != TERN_OK) return st;
        rep->ckpt_ok++;
    }
    return TERN_OK;
}

tern_status tern_ledger_verify_buffer(const char *text, size_t n, const char *name, const char *rundir, const uint8_t *pub,
                                      const char *head_hex, tern_ledger_report *rep) {
    memset(rep, 0, sizeof *rep);
    uint8_t want[TERN_HASH_BYTES];
    if (head_hex && tern_unhex(want, sizeof want, head_hex) != 0)
        return tern_err(TERN_EINVAL, "bad head hash '%s': expected 64 hex digits", head_hex);
    ledger_chain c;
    tern_status st = ledger_chain_walk(&c, text, n, name, pub, head_hex ? want : NULL);
    /* keep the chain's message while the disk is checked; a disk break on an earlier line wins */
    char chain_msg[2048];
    snprintf(chain_msg, sizeof chain_msg, "%s", tern_errmsg());
    uint64_t chain_bad = c.bad_line;
    if (st != TERN_OK && st != TERN_EAUTH) {
        ledger_chain_free(&c);
        return st;
    }
    rep->entries = c.entries;
    rep->is_signed = c.is_signed;
    if (c.is_signed) tern_hex(rep->signer, c.signer, sizeof c.signer);
    rep->ended = c.ended;
    tern_hex(rep->head, c.head, sizeof c.head);
    tern_status dst = rundir ? check_disk(&c, name, rundir, rep) : TERN_OK;
    if (dst != TERN_OK) {
        rep->bad_line = c.bad_line;
        ledger_chain_free(&c);
        return dst;
    }
    if (st == TERN_OK && head_hex && !c.head_found) {
        c.bad_line = 1;
        st = tern_err(TERN_EAUTH, "%s: no entry has the head hash %s: the ledger was rewritten (or the hash is from another run)",
                      name, head_hex);
        chain_bad = 1;
    } else if (st != TERN_OK) {
        tern_err(st, "%s", chain_msg);
    }
    rep->bad_line = st == TERN_OK ? 0 : chain_bad;
    ledger_chain_free(&c);
    return st;
}

tern_status tern_ledger_verify(const char *rundir, const uint8_t *pub, const char *head_hex, tern_ledger_report *rep) {
    memset(rep, 0, sizeof *rep);
    char *path = tern_path_join(rundir, TERN_LEDGER_FILE);
    if (!path) return tern_err(TERN_ENOMEM, "out of memory");
    char *text;
    size_t n;
    tern_status st = tern_read_file(path, &text, &n);
    if (st == TERN_OK) {
        st = tern_ledger_verify_buffer(text, n, path, rundir, pub, head_hex, rep);
        free(text);
    }
    free(path);
    return st;
}

/* ---- appending ---- */

static tern_status write_all(tern_ledger *l, const char *p, size_t n) {
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(l->fd, p + put, n - put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            l->failed = 1;
            return tern_err(TERN_EIO, "%s: append failed: %s", l->path, w < 0 ? strerror(errno) : "nothing written");
        }
        put += (size_t)w;
    }
    if (fsync(l->fd) != 0) {
        l->failed = 1;
        return tern_err(TERN_EIO, "%s: fsync failed: %s", l->path, strerror(errno));
    }
    return TERN_OK;
}

/* Appends one entry whose data is the JSON text data_json. */
static tern_status append_raw(tern_ledger *l, const char *type, const char *data_json) {
    if (l->failed) return tern_err(TERN_EIO, "%s: an earlier append failed; the ledger takes no more entries", l->path);
    char tm[32], prev[TERN_LEDGER_HEX];
    time_t now = time(NULL);
    struct tm g;
    gmtime_r(&now, &g);
    strftime(tm, sizeof tm, "%Y-%m-%dT%H:%M:%SZ", &g);
    tern_hex(prev, l->head, sizeof l->head);
    const char *fmt = "{\"v\":%d,\"seq\":%llu,\"type\":\"%s\",\"time\":\"%s\",\"prev\":\"%s\",\"data\":%s";
    unsigned long long seq = (unsigned long long)l->seq + 1;
    int pn = snprintf(NULL, 0, fmt, TERN_LEDGER_VERSION, seq, type, tm, prev, data_json);
    if (pn < 0) return tern_err(TERN_EINVAL, "cannot format a ledger entry");
    size_t cap = (size_t)pn + LEDGER_SIG_SUFFIX_LEN + 2;
    char *line = malloc(cap);
    if (!line) return tern_err(TERN_ENOMEM, "out of memory for a ledger entry of %zu bytes", cap);
    snprintf(line, cap, fmt, TERN_LEDGER_VERSION, seq, type, tm, prev, data_json);
    size_t len = (size_t)pn;
    if (l->sk) {
        uint8_t sig[TERN_SIGN_BYTES];
        char sh[2 * TERN_SIGN_BYTES + 1];
        tern_sign_detached(l->sk, sig, line, len); /* signs every byte before the sig field */
        tern_hex(sh, sig, sizeof sig);
        len += (size_t)snprintf(line + len, cap - len, "%s%s\"}", LEDGER_SIG_PREFIX, sh);
    } else {
        line[len++] = '}';
    }
    uint8_t h[TERN_HASH_BYTES];
    tern_hash(h, line, len);
    line[len++] = '\n';
    tern_status st = write_all(l, line, len); /* one write: the line and its newline together */
    free(line);
    if (st != TERN_OK) return st;
    memcpy(l->head, h, sizeof h);
    l->seq++;
    return TERN_OK;
}

static tern_status append_json(tern_ledger *l, const char *type, cJSON *data) {
    char *s = cJSON_PrintUnformatted(data);
    if (!s) return tern_err(TERN_ENOMEM, "out of memory printing a ledger entry");
    tern_status st = append_raw(l, type, s);
    cJSON_free(s);
    return st;
}

/* Copies the fields of extra (an object or NULL) into data; refuses a collision. */
static tern_status merge_extra(cJSON *data, const cJSON *extra) {
    if (!extra) return TERN_OK;
    if (!cJSON_IsObject(extra)) return tern_err(TERN_EINVAL, "a ledger entry's extra fields must be a JSON object");
    for (const cJSON *x = extra->child; x; x = x->next) {
        if (cJSON_GetObjectItemCaseSensitive(data, x->string))
            return tern_err(TERN_EINVAL, "extra field '%s' collides with a field the ledger sets", x->string);
        cJSON *d = cJSON_Duplicate(x, 1);
        if (!d || !cJSON_AddItemToObject(data, x->string, d)) {
            cJSON_Delete(d);
            return tern_err(TERN_ENOMEM, "out of memory");
        }
    }
    return TERN_OK;
}

static void host_name(char *out, size_t n) {
    if (gethostname(out, n) != 0) snprintf(out, n, "unknown");
    out[n - 1] = 0;
}

static cJSON *hash_or_null(const uint8_t *h) {
    if (!h) return cJSON_CreateNull();
    char hex[TERN_LEDGER_HEX];
    tern_hex(hex, h, TERN_HASH_BYTES);
    return cJSON_CreateString(hex);
}

static tern_status ledger_new(tern_ledger **out, const char *rundir, const tern_sign_key *sk) {
    tern_ledger *l = calloc(1, sizeof *l);
    if (!l) return tern_err(TERN_ENOMEM, "out of memory");
    l->fd = -1;
    l->rundir = strdup(rundir);
    l->path = tern_path_join(rundir, TERN_LEDGER_FILE);
    l->sk = sk;
    if (!l->rundir || !l->path) {
        tern_ledger_close(l);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    *out = l;
    return TERN_OK;
}

static tern_status lock_fd(tern_ledger *l) {
    if (flock(l->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) return tern_err(TERN_EINVAL, "%s: another process is appending to this ledger", l->path);
        return tern_err(TERN_EIO, "%s: cannot lock: %s", l->path, strerror(errno));
    }
    return TERN_OK;
}

tern_status tern_ledger_create(tern_ledger **out, const char *rundir, const tern_sign_key *sk, const tern_ledger_start *info) {
    *out = NULL;
    TERN_ASSERT(info && info->run_id);
    TERN_TRY(tern_mkdir_p(rundir));
    tern_ledger *l;
    TERN_TRY(ledger_new(&l, rundir, sk));
    cJSON *data = cJSON_CreateObject();
    char host[256], pub_hex[TERN_LEDGER_HEX];
    host_name(host, sizeof host);
    tern_status st = data ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK) {
        cJSON_AddStringToObject(data, "run_id", info->run_id);
        cJSON_AddStringToObject(data, "tern_version", TERN_VERSION);
        cJSON_AddStringToObject(data, "host", host);
        cJSON_AddItemToObject(data, "config", hash_or_null(info->config_hash));
        cJSON_AddItemToObject(data, "manifest", hash_or_null(info->manifest_hash));
        cJSON_AddItemToObject(data, "tokenizer", hash_or_null(info->tokenizer_hash));
        if (info->hardware && !cJSON_IsObject(info->hardware))
            st = tern_err(TERN_EINVAL, "the hardware summary for the ledger must be a JSON object");
        else
            cJSON_AddItemToObject(data, "hardware",
                                  info->hardware ? cJSON_Duplicate(info->hardware, 1) : cJSON_CreateNull());
        if (info->site) {
            if (!cJSON_IsObject(info->site)) st = tern_err(TERN_EINVAL, "the site declaration for the ledger must be a JSON object");
            else cJSON_AddItemToObject(data, "site", cJSON_Duplicate(info->site, 1));
        }
        if (sk) {
            uint8_t pub[TERN_SIGN_PUB_BYTES];
            tern_sign_key_public(sk, pub);
            tern_hex(pub_hex, pub, sizeof pub);
            cJSON_AddStringToObject(data, "signer", pub_hex);
        }
        if (st == TERN_OK) st = merge_extra(data, info->extra);
    }
    int created = 0;
    if (st == TERN_OK) {
        l->fd = open(l->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
        if (l->fd < 0) {
            if (errno == EEXIST)
                st = tern_err(TERN_EINVAL, "%s: already exists; a run's ledger is started once (open it to append)", l->path);
            else st = tern_err(TERN_EIO, "%s: cannot create: %s", l->path, strerror(errno));
        } else {
            created = 1;
        }
    }
    if (st == TERN_OK) st = lock_fd(l);
    if (st == TERN_OK) st = append_json(l, "start", data);
    if (st == TERN_OK) st = tern_fsync_dir(rundir);
    cJSON_Delete(data);
    if (st != TERN_OK) {
        if (created) unlink(l->path); /* ours, just made: a torn start is worth nothing */
        tern_ledger_close(l);
        return st;
    }
    *out = l;
    return TERN_OK;
}

tern_status tern_ledger_open(tern_ledger **out, const char *rundir, const tern_sign_key *sk) {
    *out = NULL;
    tern_ledger *l;
    TERN_TRY(ledger_new(&l, rundir, sk));
    tern_status st = TERN_OK;
    l->fd = open(l->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (l->fd < 0)
        st = tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open: %s", l->path, strerror(errno));
    if (st == TERN_OK) st = lock_fd(l); /* before reading, so the chain read is the one appended to */
    char *text = NULL;
    size_t n = 0;
    if (st == TERN_OK) st = tern_read_file(l->path, &text, &n);
    ledger_chain c;
    memset(&c, 0, sizeof c);
    /* A torn last line (no newline: the writer was killed inside its write, or the file was cut
     * mid-line) is the one thing an appender repairs: everything before it must verify, the
     * fragment is cut off, and a "repair" entry records its size and hash. A kill must not leave
     * a run that cannot resume; a cut made on purpose stays visible in the chain. */
    size_t whole = n, torn = 0;
    uint8_t torn_hash[TERN_HASH_BYTES];
    if (st == TERN_OK && n > 0 && text[n - 1] != '\n') {
        const char *nl = memrchr(text, '\n', n);
        whole = nl ? (size_t)(nl - text) + 1 : 0;
        torn = n - whole;
        tern_hash(torn_hash, text + whole, torn);
    }
    if (st == TERN_OK) {
        st = ledger_chain_walk(&c, text, whole, l->path, NULL, NULL);
        if (st != TERN_OK) st = tern_err_wrap(st, "cannot append to a ledger that does not verify");
    }
    if (st == TERN_OK) {
        char have[TERN_LEDGER_HEX], want[TERN_LEDGER_HEX];
        tern_hex(have, c.signer, sizeof c.signer);
        if (c.is_signed && !sk)
            st = tern_err(TERN_EINVAL, "%s: this ledger is signed (key %s); give its signing key to append", l->path, have);
        else if (!c.is_signed && sk)
            st = tern_err(TERN_EINVAL, "%s: this ledger was started unsigned; it cannot be signed from the middle on", l->path);
        else if (sk) {
            uint8_t pub[TERN_SIGN_PUB_BYTES];
            tern_sign_key_public(sk, pub);
            tern_hex(want, pub, sizeof pub);
            if (memcmp(pub, c.signer, sizeof pub))
                st = tern_err(TERN_EAUTH, "%s: signed by key %s, but the signing key given is %s", l->path, have, want);
        }
    }
    if (st == TERN_OK) {
        l->seq = c.entries;
        memcpy(l->head, c.head, sizeof l->head);
        l->chain = c; /* its checkpoints, for resume entries; the ledger owns them now */
        memset(&c, 0, sizeof c);
    }
    if (st == TERN_OK && torn) {
        if (ftruncate(l->fd, (off_t)whole) != 0 || fsync(l->fd) != 0)
            st = tern_err(TERN_EIO, "%s: cannot cut off the torn last line: %s", l->path, strerror(errno));
        cJSON *d = st == TERN_OK ? cJSON_CreateObject() : NULL;
        char hex[TERN_LEDGER_HEX];
        tern_hex(hex, torn_hash, sizeof torn_hash);
        if (st == TERN_OK && (!d || !cJSON_AddNumberToObject(d, "dropped_bytes", (double)torn) ||
                              !cJSON_AddStringToObject(d, "dropped_hash", hex)))
            st = tern_err(TERN_ENOMEM, "out of memory");
        if (st == TERN_OK) st = append_json(l, "repair", d);
        cJSON_Delete(d);
    }
    ledger_chain_free(&c);
    free(text);
    if (st != TERN_OK) {
        tern_ledger_close(l);
        return st;
    }
    *out = l;
    return TERN_OK;
}

tern_status tern_ledger_append(tern_ledger *l, const char *type, const cJSON *data) {
    if (!type || !ledger_type_ok(type) || !strcmp(type, "start"))
        return tern_err(TERN_EINVAL, "ledger entry type '%s' is not allowed ([a-z_], 1 to %d characters, not 'start')",
                        type ? type : "(null)", LEDGER_TYPE_MAX);
    if (data && !cJSON_IsObject(data)) return tern_err(TERN_EINVAL, "a ledger entry's data must be a JSON object");
    cJSON *d = data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject();
    if (!d) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = append_json(l, type, d);
    cJSON_Delete(d);
    return st;
}

/* checkpoint and resume: step, dir and the hashes of its files as they are now. */
static tern_status ckpt_entry(tern_ledger *l, const char *type, int64_t step, const char *dir, const char *const *files,
                              size_t n_files, const cJSON *extra, int with_host) {
    if (!ledger_path_ok(dir))
        return tern_err(TERN_EINVAL, "checkpoint folder '%s' must be a plain path relative to the run folder", dir ? dir : "");
    if (step < 0) return tern_err(TERN_EINVAL, "checkpoint step %lld is negative", (long long)step);
    char *full = tern_path_join(l->rundir, dir);
    cJSON *data = cJSON_CreateObject(), *fo = cJSON_CreateObject();
    tern_status st = full && data && fo ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_files && st == TERN_OK; i++) {
        if (!ledger_path_ok(files[i]) || strchr(files[i], '/')) {
            st = tern_err(TERN_EINVAL, "checkpoint file name '%s' must be a plain file name", files[i]);
            break;
        }
        char *p = tern_path_join(full, files[i]);
        uint8_t h[TERN_HASH_BYTES];
        if (!p) st = tern_err(TERN_ENOMEM, "out of memory");
        else if ((st = tern_hash_file(h, p)) != TERN_OK) st = tern_err_wrap(st, "recording %s %s in the ledger", type, dir);
        else if (cJSON_GetObjectItemCaseSensitive(fo, files[i]))
            st = tern_err(TERN_EINVAL, "checkpoint file '%s' is listed twice", files[i]);
        else cJSON_AddItemToObject(fo, files[i], hash_or_null(h));
        free(p);
    }
    if (st == TERN_OK) {
        cJSON_AddNumberToObject(data, "step", (double)step);
        cJSON_AddStringToObject(data, "dir", dir);
        cJSON_AddItemToObject(data, "files", fo);
        fo = NULL;
        if (with_host) {
            char host[256];
            host_name(host, sizeof host);
            cJSON_AddStringToObject(data, "host", host);
        }
        st = merge_extra(data, extra);
    }
    if (st == TERN_OK) st = append_json(l, type, data);
    if (st == TERN_OK && !strcmp(type, "checkpoint"))
        st = chain_add_ckpt(&l->chain, dir, cJSON_GetObjectItemCaseSensitive(data, "files"), l->seq);
    cJSON_Delete(fo);
    cJSON_Delete(data);
    free(full);
    return st;
}

tern_status tern_ledger_checkpoint(tern_ledger *l, int64_t step, const char *dir, const char *const *files, size_t n_files,
                                   const cJSON *extra) {
    return ckpt_entry(l, "checkpoint", step, dir, files, n_files, extra, 0);
}

tern_status tern_ledger_resume(tern_ledger *l, int64_t step, const char *dir, const char *const *files, size_t n_files,
                               const cJSON *extra) {
    return ckpt_entry(l, "resume", step, dir, files, n_files, extra, 1);
}

int tern_ledger_has_checkpoint(const tern_ledger *l, const char *dir) { return ckpt_find(&l->chain, dir) != NULL; }

tern_status tern_ledger_end(tern_ledger *l, const char *status, const cJSON *extra) {
    cJSON *data = cJSON_CreateObject();
    if (!data) return tern_err(TERN_ENOMEM, "out of memory");
    cJSON_AddStringToObject(data, "status", status ? status : "completed");
    tern_status st = merge_extra(data, extra);
    if (st == TERN_OK) st = append_json(l, "end", data);
    cJSON_Delete(data);
    return st;
}

void tern_ledger_head(const tern_ledger *l, char hex[TERN_LEDGER_HEX]) { tern_hex(hex, l->head, sizeof l->head); }
uint64_t tern_ledger_entries(const tern_ledger *l) { return l->seq; }

void tern_ledger_close(tern_ledger *l) {
    if (!l) return;
    if (l->fd >= 0) close(l->fd); /* releases the lock */
    ledger_chain_free(&l->chain);
    free(l->path);
    free(l->rundir);
    free(l);
}
