/* The manifest of a data folder (DATADIR/manifest.json): which shards there are, in what order,
 * their split, token count and checksum, and the hash of the tokenizer that made them. Reading
 * checks every field; writing is atomic. Not the shards themselves (shard.c). The format is in
 * docs/FORMATS.md "Data manifest". */
#include "tern/data.h"
#include "tern/secure.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void tern_manifest_free(tern_manifest *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_shards; i++) free(m->shards[i].file);
    free(m->shards);
    memset(m, 0, sizeof *m);
}

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

/* A shard's file name must stay inside the data folder. */
static int good_file_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\\' || s[i] == '"' || (unsigned char)s[i] < 0x20) return 0;
    return 1;
}

#define MAX_EXACT 9007199254740992.0 /* 2^53 */

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
tern_status tern_manifest_read_key(tern_manifest *m, const char *datadir, const tern_key *key) {
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

tern_status tern_manifest_read(tern_manifest *m, const char *datadir) { return tern_manifest_read_key(m, datadir, NULL); }

tern_status tern_manifest_write_key(const tern_manifest *m, const char *datadir, const tern_key *key) {
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
            "  \"seed\": \"%llu\",\n  \"documents\": {\"train\": %llu, \"val\": %llu},\n  \"shards\": [",
            hex, (unsigned long long)m->vocab_size, (long long)m->eot, m->bytes_per_token, frac, (unsigned long long)m->seed,
            (unsigned long long)m->docs[0], (unsigned long long)m->docs[1]);
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

tern_status tern_manifest_write(const tern_manifest *m, const char *datadir) { return tern_manifest_write_key(m, datadir, NULL); }
