/* The manifest of a data folder (DATADIR/manifest.json): which shards there are, in what order,
 * their split, token count and checksum, and the hash of the tokenizer that made them. Reading
 * checks every field; writing is atomic. Not the shards themselves (shard.c). The format is in
 * docs/FORMATS.md "Data manifest". */
#include "data/data_int.h"
#include "tern/secure.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const skip_names[TERN_SKIP_N] = {"empty",       "short",      "duplicate",    "invalid_json",
                                                    "missing_key", "not_string", "invalid_utf8", "too_long"};
const char *tern_skip_name(tern_skip r) { return (unsigned)r < TERN_SKIP_N ? skip_names[r] : "?"; }

static const char *const val_split_names[] = {NULL, "none", "documents", "tail"};

void tern_manifest_free(tern_manifest *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_shards; i++) free(m->shards[i].file);
    free(m->shards);
    for (size_t i = 0; i < m->n_sources; i++) {
        free(m->sources[i].path);
        free(m->sources[i].format);
    }
    free(m->sources);
    free(m->text_key);
    free(m->doc_separator);
    memset(m, 0, sizeof *m);
}

#define MAX_EXACT 9007199254740992.0 /* 2^53 */

/* An integer-valued JSON number in [lo, hi] (hi <= 2^53, where doubles are exact). */
static tern_status get_int(const cJSON *obj, const char *key, double lo, double hi, const char *name, const char *where,
                           double *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return tern_err(TERN_EFORMAT, "%s: %s has no \"%s\"", name, where, key);
    double d = it->valuedouble;
    if (!cJSON_IsNumber(it) || d != floor(d) || d < lo || d > hi)
        return tern_err(TERN_EFORMAT, "%s: %s: \"%s\" must be a whole number from %.0f to %.0f", name, where, key, lo, hi);
    *out = d;
    return TERN_OK;
}

static tern_status get_hash(const cJSON *obj, const char *key, const char *name, const char *where, uint8_t out[TERN_HASH_BYTES]) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return tern_err(TERN_EFORMAT, "%s: %s has no \"%s\"", name, where, key);
    if (!cJSON_IsString(it) || tern_unhex(out, TERN_HASH_BYTES, it->valuestring) != 0)
        return tern_err(TERN_EFORMAT, "%s: %s: \"%s\" must be %d hex digits", name, where, key, 2 * TERN_HASH_BYTES);
    return TERN_OK;
}

/* A string member that must be well-formed UTF-8 (so that it is written back as it was read). */
static tern_status get_str(const cJSON *obj, const char *key, const char *name, const char *where, int null_ok, char **out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!it) return tern_err(TERN_EFORMAT, "%s: %s has no \"%s\"", name, where, key);
    if (null_ok && cJSON_IsNull(it)) return TERN_OK;
    if (!cJSON_IsString(it) || data_utf8_first_bad((const uint8_t *)it->valuestring, strlen(it->valuestring)) != strlen(it->valuestring))
        return tern_err(TERN_EFORMAT, "%s: %s: \"%s\" must be a string of UTF-8 text%s", name, where, key, null_ok ? " or null" : "");
    if (!(*out = strdup(it->valuestring))) return tern_err(TERN_ENOMEM, "out of memory");
    return TERN_OK;
}

/* A "skipped" object: a whole number for every reason. */
static tern_status get_skipped(const cJSON *obj, const char *name, const char *where, uint64_t out[TERN_SKIP_N]) {
    const cJSON *sk = cJSON_GetObjectItemCaseSensitive(obj, "skipped");
    char w[96];
    snprintf(w, sizeof w, "%s: \"skipped\"", where);
    if (!cJSON_IsObject(sk)) return tern_err(TERN_EFORMAT, "%s: %s has no \"skipped\" object", name, where);
    for (int r = 0; r < TERN_SKIP_N; r++) {
        double d;
        TERN_TRY(get_int(sk, skip_names[r], 0, MAX_EXACT, name, w, &d));
        out[r] = (uint64_t)d;
    }
    return TERN_OK;
}

/* The optional "prepare" object: how the data was prepared and what each input gave. */
static tern_status get_prepare(const cJSON *root, const char *name, tern_manifest *m) {
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "prepare");
    if (!pr) return TERN_OK;
    const char *w = "\"prepare\"";
    if (!cJSON_IsObject(pr)) return tern_err(TERN_EFORMAT, "%s: \"prepare\" must be an object", name);
    m->has_prepare = 1;
    double d;
    TERN_TRY(get_str(pr, "text_key", name, w, 0, &m->text_key));
    TERN_TRY(get_str(pr, "doc_separator", name, w, 1, &m->doc_separator));
    TERN_TRY(get_int(pr, "min_bytes", 0, MAX_EXACT, name, w, &d));
    m->min_bytes = (uint64_t)d;
    const cJSON *dd = cJSON_GetObjectItemCaseSensitive(pr, "dedup");
    if (!cJSON_IsBool(dd)) return tern_err(TERN_EFORMAT, "%s: %s: \"dedup\" must be true or false", name, w);
    m->dedup = cJSON_IsTrue(dd);
    TERN_TRY(get_int(pr, "binary_documents", 0, MAX_EXACT, name, w, &d));
    m->binary_documents = (uint64_t)d;
    TERN_TRY(get_skipped(pr, name, w, m->skipped));
    const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(pr, "sources");
    if (!cJSON_IsArray(srcs)) return tern_err(TERN_EFORMAT, "%s: %s has no \"sources\" list", name, w);
    size_t ns = (size_t)cJSON_GetArraySize(srcs);
    m->sources = calloc(ns ? ns : 1, sizeof *m->sources);
    if (!m->sources) return tern_err(TERN_ENOMEM, "out of memory");
    for (const cJSON *it = srcs->child; it; it = it->next) {
        char where[64];
        snprintf(where, sizeof where, "source %zu", m->n_sources);
        tern_manifest_source *src = &m->sources[m->n_sources++];
        if (!cJSON_IsObject(it)) return tern_err(TERN_EFORMAT, "%s: %s must be an object", name, where);
        TERN_TRY(get_str(it, "path", name, where, 0, &src->path));
        TERN_TRY(get_str(it, "format", name, where, 0, &src->format));
        if (strcmp(src->format, "text") && strcmp(src->format, "jsonl") && strcmp(src->format, "mixed"))
            return tern_err(TERN_EFORMAT, "%s: %s: \"format\" must be \"text\", \"jsonl\" or \"mixed\"", name, where);
        uint64_t *f[] = {&src->files, &src->documents, &src->bytes, &src->tokens};
        const char *k[] = {"files", "documents", "bytes", "tokens"};
        for (int i = 0; i < 4; i++) {
            TERN_TRY(get_int(it, k[i], 0, MAX_EXACT, name, where, &d));
            *f[i] = (uint64_t)d;
        }
        TERN_TRY(get_skipped(it, name, where, src->skipped));
    }
    return TERN_OK;
}

/* A shard's file name must stay inside the data folder. */
static int good_file_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\\' || s[i] == '"' || (unsigned char)s[i] < 0x20) return 0;
    return 1;
}

tern_status tern_manifest_parse(tern_manifest *m, const char *text, size_t n, const char *name) {
    memset(m, 0, sizeof *m);
    cJSON *root = cJSON_ParseWithLength(text, n);
    if (!root) return tern_err(TERN_EFORMAT, "%s: not valid JSON", name);
    tern_status st = TERN_OK;
    double d;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "tern-data") != 0) {
        st = tern_err(TERN_EFORMAT, "%s: not a tern data manifest (\"format\" is not \"tern-data\")", name);
        goto done;
    }
    if ((st = get_int(root, "version", 0, MAX_EXACT, name, "the manifest", &d)) != TERN_OK) goto done;
    if (d != 1) {
        st = tern_err(TERN_EFORMAT, "%s: manifest version %.0f; this tern reads version 1", name, d);
        goto done;
    }
    if ((st = get_hash(root, "tokenizer_blake2b", name, "the manifest", m->tokenizer_hash)) != TERN_OK) goto done;
    if ((st = get_int(root, "vocab_size", 257, 2147483648.0, name, "the manifest", &d)) != TERN_OK) goto done;
    m->vocab_size = (uint64_t)d;
    if ((st = get_int(root, "eot", 0, (double)m->vocab_size - 1, name, "the manifest", &d)) != TERN_OK) goto done;
    m->eot = (int64_t)d;
    if ((st = get_int(root, "bytes_per_token", 2, 4, name, "the manifest", &d)) != TERN_OK) goto done;
    m->bytes_per_token = (uint32_t)d;
    if (m->bytes_per_token != tern_shard_bytes_per_token((size_t)m->vocab_size)) {
        st = tern_err(TERN_EFORMAT, "%s: %u bytes per token does not fit a vocabulary of %llu", name, m->bytes_per_token,
                      (unsigned long long)m->vocab_size);
        goto done;
    }
    const cJSON *vf = cJSON_GetObjectItemCaseSensitive(root, "val_fraction");
    if (!cJSON_IsNumber(vf) || !(vf->valuedouble >= 0 && vf->valuedouble < 1)) {
        st = tern_err(TERN_EFORMAT, "%s: \"val_fraction\" must be a number in [0, 1)", name);
        goto done;
    }
    m->val_fraction = vf->valuedouble;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
    char *end = NULL;
    if (!cJSON_IsString(seed) || !seed->valuestring[0] || (m->seed = strtoull(seed->valuestring, &end, 10), *end)) {
        st = tern_err(TERN_EFORMAT, "%s: \"seed\" must be a decimal number in a string", name);
        goto done;
    }
    const cJSON *docs = cJSON_GetObjectItemCaseSensitive(root, "documents");
    if (!cJSON_IsObject(docs)) {
        st = tern_err(TERN_EFORMAT, "%s: the manifest has no \"documents\" object", name);
        goto done;
    }
    if ((st = get_int(docs, "train", 0, MAX_EXACT, name, "\"documents\"", &d)) != TERN_OK) goto done;
    m->docs[0] = (uint64_t)d;
    if ((st = get_int(docs, "val", 0, MAX_EXACT, name, "\"documents\"", &d)) != TERN_OK) goto done;
    m->docs[1] = (uint64_t)d;
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(root, "val_split");
    if (vs) {
        for (int i = 1; i < 4 && cJSON_IsString(vs); i++)
            if (!strcmp(vs->valuestring, val_split_names[i])) m->val_split = (tern_val_split)i;
        if (!m->val_split) {
            st = tern_err(TERN_EFORMAT, "%s: \"val_split\" must be \"none\", \"documents\" or \"tail\"", name);
            goto done;
        }
    }
    if ((st = get_prepare(root, name, m)) != TERN_OK) goto done;
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive(root, "shards");
    if (!cJSON_IsArray(shards)) {
        st = tern_err(TERN_EFORMAT, "%s: the manifest has no \"shards\" list", name);
        goto done;
    }
    size_t ns = (size_t)cJSON_GetArraySize(shards);
    m->shards = calloc(ns ? ns : 1, sizeof *m->shards);
    if (!m->shards) {
        st = tern_err(TERN_ENOMEM, "out of memory");
        goto done;
    }
    for (const cJSON *it = shards->child; it; it = it->next) {
        char where[64];
        snprintf(where, sizeof where, "shard %zu", m->n_shards);
        tern_manifest_shard *s = &m->shards[m->n_shards];
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(it, "file");
        const cJSON *split = cJSON_GetObjectItemCaseSensitive(it, "split");
        if (!cJSON_IsObject(it) || !cJSON_IsString(file) || !good_file_name(file->valuestring)) {
            st = tern_err(TERN_EFORMAT, "%s: %s: \"file\" must be a plain file name inside the data folder", name, where);
            goto done;
        }
        if (!cJSON_IsString(split) || (strcmp(split->valuestring, "train") && strcmp(split->valuestring, "val"))) {
            st = tern_err(TERN_EFORMAT, "%s: %s: \"split\" must be \"train\" or \"val\"", name, where);
            goto done;
        }
        if ((st = get_int(it, "tokens", 0, MAX_EXACT, name, where, &d)) != TERN_OK) goto done;
        s->n_tokens = (uint64_t)d;
        if ((st = get_hash(it, "blake2b", name, where, s->checksum)) != TERN_OK) goto done;
        s->split = strcmp(split->valuestring, "val") ? TERN_SPLIT_TRAIN : TERN_SPLIT_VAL;
        s->file = strdup(file->valuestring);
        if (!s->file) {
            st = tern_err(TERN_ENOMEM, "out of memory");
            goto done;
        }
        m->n_shards++;
        for (size_t j = 0; j + 1 < m->n_shards; j++)
            if (!strcmp(m->shards[j].file, s->file)) {
                st = tern_err(TERN_EFORMAT, "%s: %s names %s, which shard %zu names too", name, where, s->file, j);
                goto done;
            }
    }
done:
    cJSON_Delete(root);
    if (st != TERN_OK) tern_manifest_free(m);
    return st;
}

/* "data manifest" is the identity of a sealed manifest (docs/FORMATS.md "Sealed files"). */
tern_status tern_manifest_read(tern_manifest *m, const char *datadir, const tern_key *key) {
    memset(m, 0, sizeof *m);
    char *path = tern_path_join(datadir, "manifest.json");
    if (!path) return tern_err(TERN_ENOMEM, "out of memory");
    tern_plain pl = {0};
    tern_status st = tern_path_exists(path) ? tern_secure_read_file(&pl, path, key, "data manifest") : TERN_ENOTFOUND;
    if (st == TERN_ENOTFOUND)
        st = tern_err(st, "%s: no data manifest here (make one with tern prepare)", path);
    if (st == TERN_OK) st = tern_manifest_parse(m, (const char *)pl.data, pl.size, path);
    tern_plain_free(&pl);
    free(path);
    return st;
}


/* s as a JSON string: bytes that are not UTF-8 become U+FFFD (the reader refuses them, so what it
 * accepted is written back unchanged). */
static void put_json_str(FILE *f, const char *s) {
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    size_t n = strlen(s), i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c), i++;
        else if (c == '\n') fputs("\\n", f), i++;
        else if (c == '\t') fputs("\\t", f), i++;
        else if (c < 0x20) fprintf(f, "\\u%04x", c), i++;
        else if (c < 0x80) fputc(c, f), i++;
        else {
            size_t k = data_utf8_first_bad((const uint8_t *)s + i, n - i);
            if (k == 0) {
                fputs("\xEF\xBF\xBD", f);
                i++;
            } else {
                /* the run of well-formed UTF-8, up to the next ASCII byte */
                size_t j = i;
                while (j < i + k && (unsigned char)s[j] >= 0x80) j++;
                fwrite(s + i, 1, j - i, f);
                i = j;
            }
        }
    }
    fputc('"', f);
}

static void put_skipped(FILE *f, const uint64_t sk[TERN_SKIP_N]) {
    fputs("\"skipped\": {", f);
    for (int r = 0; r < TERN_SKIP_N; r++) fprintf(f, "%s\"%s\": %llu", r ? ", " : "", skip_names[r], (unsigned long long)sk[r]);
    fputc('}', f);
}

static void put_prepare(FILE *f, const tern_manifest *m) {
    fputs("  \"prepare\": {\"text_key\": ", f);
    put_json_str(f, m->text_key ? m->text_key : "text");
    fputs(", \"doc_separator\": ", f);
    put_json_str(f, m->doc_separator);
    fprintf(f, ", \"min_bytes\": %llu, \"dedup\": %s, \"binary_documents\": %llu,\n    ", (unsigned long long)m->min_bytes,
            m->dedup ? "true" : "false", (unsigned long long)m->binary_documents);
    put_skipped(f, m->skipped);
    fputs(",\n    \"sources\": [", f);
    for (size_t i = 0; i < m->n_sources; i++) {
        const tern_manifest_source *s = &m->sources[i];
        fprintf(f, "%s\n      {\"path\": ", i ? "," : "");
        put_json_str(f, s->path ? s->path : "");
        fputs(", \"format\": ", f);
        put_json_str(f, s->format ? s->format : "text");
        fprintf(f, ", \"files\": %llu, \"documents\": %llu, \"bytes\": %llu, \"tokens\": %llu, ", (unsigned long long)s->files,
                (unsigned long long)s->documents, (unsigned long long)s->bytes, (unsigned long long)s->tokens);
        put_skipped(f, s->skipped);
        fputc('}', f);
    }
    fputs("\n    ]},\n", f);
}

tern_status tern_manifest_write(const tern_manifest *m, const char *datadir, const tern_key *key) {
    for (size_t i = 0; i < m->n_shards; i++)
        if (!good_file_name(m->shards[i].file))
            return tern_err(TERN_EINVAL, "%s: shard file name \"%s\" is not a plain file name", datadir, m->shards[i].file);
    char *path = tern_path_join(datadir, "manifest.json");
    if (!path) return tern_err(TERN_ENOMEM, "out of memory");
    /* the text is made in memory, then written atomically: sealed with a key, else plainly */
    char *text = NULL;
    size_t tn = 0;
    FILE *f = open_memstream(&text, &tn);
    if (!f) {
        free(path);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    char hex[2 * TERN_HASH_BYTES + 1], frac[40];
    tern_hex(hex, m->tokenizer_hash, TERN_HASH_BYTES);
    /* the shortest decimal that reads back as the same double */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(frac, sizeof frac, "%.*g", prec, m->val_fraction);
        if (strtod(frac, NULL) == m->val_fraction) break;
    }
    fprintf(f,
            "{\n  \"format\": \"tern-data\",\n  \"version\": 1,\n  \"tokenizer_blake2b\": \"%s\",\n"
            "  \"vocab_size\": %llu,\n  \"eot\": %lld,\n  \"bytes_per_token\": %u,\n  \"val_fraction\": %s,\n"
            "  \"seed\": \"%llu\",\n  \"documents\": {\"train\": %llu, \"val\": %llu},\n",
            hex, (unsigned long long)m->vocab_size, (long long)m->eot, m->bytes_per_token, frac, (unsigned long long)m->seed,
            (unsigned long long)m->docs[0], (unsigned long long)m->docs[1]);
    if (m->val_split > TERN_VAL_SPLIT_UNRECORDED && m->val_split <= TERN_VAL_SPLIT_TAIL)
        fprintf(f, "  \"val_split\": \"%s\",\n", val_split_names[m->val_split]);
    if (m->has_prepare) put_prepare(f, m);
    fputs("  \"shards\": [", f);
    for (size_t i = 0; i < m->n_shards; i++) {
        const tern_manifest_shard *s = &m->shards[i];
        tern_hex(hex, s->checksum, TERN_HASH_BYTES);
        fprintf(f, "%s\n    {\"file\": \"%s\", \"split\": \"%s\", \"tokens\": %llu, \"blake2b\": \"%s\"}", i ? "," : "", s->file,
                s->split == TERN_SPLIT_VAL ? "val" : "train", (unsigned long long)s->n_tokens, hex);
    }
    fprintf(f, "\n  ]\n}\n");
    tern_status st = ferror(f) ? tern_err(TERN_ENOMEM, "out of memory") : TERN_OK;
    if (fclose(f) != 0 && st == TERN_OK) st = tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK) st = tern_seal_file(path, key, "data manifest", text, tn);
    free(text);
    free(path);
    return st;
}

