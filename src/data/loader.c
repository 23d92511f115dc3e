/* One split of a data folder (manifest + shards mapped read-only and checked) and the loader:
 * windows of B*T+1 tokens enumerated shard by shard, optionally visited in a per-epoch
 * permutation, served as (inputs, targets) rows as a pure function of the cursor, like llm.c's
 * DataLoader but with no hidden position to save. Not the writer (prepare.c). The order is
 * specified in docs/FORMATS.md "Data order (the loader)". */
#include "tern/data.h"
#include "tern/secure.h"
#include "tern/tok.h"

#include <stdlib.h>
#include <string.h>

struct tern_dataset {
    char *dir;
    tern_split split;
    tern_manifest man;
    size_t n_shards;
    tern_map *maps;
    tern_plain *plains; /* sealed folders: each shard decrypted in memory */
    const tern_key *key;
    tern_shard_view *views;
    uint64_t total;
};

void tern_dataset_free(tern_dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->n_shards; i++) {
        if (ds->plains && ds->plains[i].data) tern_plain_free(&ds->plains[i]); /* maps[i] borrowed it */
        else tern_unmap(&ds->maps[i]);
    }
    free(ds->plains);
    free(ds->maps);
    free(ds->views);
    tern_manifest_free(&ds->man);
    free(ds->dir);
    free(ds);
}

/* Maps and checks one shard against its header and its manifest entry. */
static tern_status open_shard(tern_dataset *ds, size_t k, const tern_manifest_shard *e, const char *mname, int verify) {
    char *path = tern_path_join(ds->dir, e->file);
    if (!path) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = TERN_OK;
    int sealed = 0;
    if (!tern_path_exists(path)) st = tern_err(TERN_ENOTFOUND, "%s: the shard is missing (%s lists it)", path, mname);
    if (st == TERN_OK) st = tern_sealed_probe(path, &sealed);
    if (st == TERN_OK) st = tern_secure_check(path, sealed, ds->key);
    if (st == TERN_OK && sealed) {
        char ident[300];
        snprintf(ident, sizeof ident, "shard %s", e->file);
        st = tern_unseal_file(&ds->plains[k], path, ds->key, ident);
        /* the dataset serves views of the plaintext in place of a map */
        ds->maps[k].data = ds->plains[k].data;
        ds->maps[k].size = ds->plains[k].size;
    } else if (st == TERN_OK) {
        st = tern_map_file(&ds->maps[k], path);
        if (st == TERN_ENOTFOUND) st = tern_err(st, "%s: the shard is missing (%s lists it)", path, mname);
    }
    if (st == TERN_OK) st = tern_shard_parse(&ds->views[k], ds->maps[k].data, ds->maps[k].size, path, 0);
    const tern_shard_view *v = &ds->views[k];
    if (st == TERN_OK && v->vocab_size != ds->man.vocab_size)
        st = tern_err(TERN_EFORMAT, "%s: vocabulary size %llu, but %s says %llu", path, (unsigned long long)v->vocab_size, mname,
                      (unsigned long long)ds->man.vocab_size);
    if (st == TERN_OK && v->n_tokens != e->n_tokens)
        st = tern_err(TERN_EFORMAT, "%s: %llu tokens, but %s says %llu", path, (unsigned long long)v->n_tokens, mname,
                      (unsigned long long)e->n_tokens);
    if (st == TERN_OK && memcmp(v->checksum, e->checksum, TERN_HASH_BYTES) != 0)
        st = tern_err(TERN_EFORMAT, "%s: its checksum is not the one %s records: the shard was replaced or the manifest is stale",
                      path, mname);
    if (st == TERN_OK && verify) st = tern_shard_parse(&ds->views[k], ds->maps[k].data, ds->maps[k].size, path, 1);
    free(path);
    return st;
}

int tern_dataset_made_by(const tern_dataset *ds, const uint8_t h[TERN_HASH_BYTES]) {
    if (!memcmp(ds->man.tokenizer_hash, h, TERN_HASH_BYTES)) return 1;
    char *dir = tern_path_join(ds->dir, "tokenizer");
    tern_tok *tok = NULL;
    int same = dir && tern_tok_load(&tok, dir, ds->key) == TERN_OK && tern_tok_has_hash(tok, ds->man.tokenizer_hash) &&
               tern_tok_has_hash(tok, h);
    tern_err_clear();
    tern_tok_free(tok);
    free(dir);
    return same;
}

tern_status tern_dataset_open(tern_dataset **out, const char *datadir, const char *split, const uint8_t *tokenizer_hash,
                                  const tern_key *key) {
    *out = NULL;
    tern_split sp;
    if (!strcmp(split, "train")) sp = TERN_SPLIT_TRAIN;
    else if (!strcmp(split, "val")) sp = TERN_SPLIT_VAL;
    else return tern_err(TERN_EINVAL, "unknown split '%s' (train or val)", split);
    tern_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return tern_err(TERN_ENOMEM, "out of memory");
    ds->dir = strdup(datadir);
    ds->split = sp;
    ds->key = key;
    char *mname = tern_path_join(datadir, "manifest.json");
    tern_status st = ds->dir && mname ? tern_manifest_read(&ds->man, datadir, key) : tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK && tokenizer_hash && !tern_dataset_made_by(ds, tokenizer_hash)) {
        char a[2 * TERN_HASH_BYTES + 1], b[2 * TERN_HASH_BYTES + 1];
        tern_hex(a, ds->man.tokenizer_hash, TERN_HASH_BYTES);
        tern_hex(b, tokenizer_hash, TERN_HASH_BYTES);
        st = tern_err(TERN_EINVAL,
                      "%s: the data was made with tokenizer %s, but this run's tokenizer is %s; prepare the data again with "
                      "this tokenizer",
                      mname, a, b);
    }
    size_t n = 0;
    for (size_t i = 0; st == TERN_OK && i < ds->man.n_shards; i++) n += ds->man.shards[i].split == sp;
    if (st == TERN_OK && n == 0)
        st = tern_err(TERN_ENOTFOUND, "%s lists no %s shards%s", mname, split,
                      sp == TERN_SPLIT_VAL ? " (prepare with --val-fraction above 0 for a validation split)" : "");
    if (st == TERN_OK) {
        ds->maps = calloc(n, sizeof *ds->maps);
        ds->views = calloc(n, sizeof *ds->views);
        ds->plains = calloc(n, sizeof *ds->plains);
        if (!ds->maps || !ds->views || !ds->plains) st = tern_err(TERN_ENOMEM, "out of memory");
    }
    /* check headers in order (so the first bad shard is named), then hash them all on all threads */
    size_t *which = st == TERN_OK ? malloc(n * sizeof *which) : NULL;
    if (st == TERN_OK && !which) st = tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; st == TERN_OK && i < ds->man.n_shards; i++) {
        if (ds->man.shards[i].split != sp) continue;
        which[ds->n_shards] = i;
        ds->n_shards++;
        st = open_shard(ds, ds->n_shards - 1, &ds->man.shards[i], mname, 0);
    }
    tern_status *sts = st == TERN_OK ? calloc(n, sizeof *sts) : NULL;
    char (*msgs)[512] = st == TERN_OK ? calloc(n, sizeof *msgs) : NULL;
    if (st == TERN_OK && (!sts || !msgs)) st = tern_err(TERN_ENOMEM, "out of memory");
    if (st == TERN_OK) {
#pragma omp parallel for schedule(dynamic, 1)
        for (size_t k = 0; k < n; k++) {
            char *path = tern_path_join(ds->dir, ds->man.shards[which[k]].file);
            tern_shard_view v;
            sts[k] = path ? tern_shard_parse(&v, ds->maps[k].data, ds->maps[k].size, path, 1) : tern_err(TERN_ENOMEM, "out of memory");
            if (sts[k] != TERN_OK) snprintf(msgs[k], sizeof msgs[k], "%s", tern_errmsg());
            free(path);
        }
        for (size_t k = 0; st == TERN_OK && k < n; k++)
            if (sts[k] != TERN_OK) st = tern_err(sts[k], "%s", msgs[k]);
    }
    free(sts);
    free(msgs);
    free(which);
    free(mname);
    if (st != TERN_OK) {
        tern_dataset_free(ds);
        return st;
    }
    for (size_t k = 0; k < ds->n_shards; k++) ds->total += ds->views[k].n_tokens;
    *out = ds;
    return TERN_OK;
}

size_t tern_dataset_vocab_size(const tern_dataset *ds) { return (size_t)ds->man.vocab_size; }
uint64_t tern_dataset_num_tokens(const tern_dataset *ds) { return ds->total; }
size_t tern_dataset_num_shards(const tern_dataset *ds) { return ds->n_shards; }
const tern_shard_view *tern_dataset_shard(const tern_dataset *ds, size_t i) { return i < ds->n_shards ? &ds->views[i] : NULL; }
const uint8_t *tern_dataset_tokenizer_hash(const tern_dataset *ds) { return ds->man.tokenizer_hash; }
int32_t tern_dataset_eot(const tern_dataset *ds) { return (int32_t)ds->man.eot; }

/* ---- the loader ---- */

struct tern_loader {
    const tern_dataset *ds;
    size_t B, T;
    uint64_t BT;
    int shuffle;
    uint64_t seed;
    uint64_t K;          /* windows per epoch */
    uint64_t *first;     /* (n_shards + 1): first[s] = windows in shards before s */
    uint64_t *perm;      /* the permutation of the epoch perm_epoch (shuffle only) */
    uint64_t perm_epoch; /* UINT64_MAX: none yet */
};

void tern_loader_free(tern_loader *l) {
    if (!l) return;
    free(l->first);
    free(l->perm);
    free(l);
}

tern_status tern_loader_init(tern_loader **out, const tern_dataset *ds, size_t B_global, size_t T, int shuffle, uint64_t seed) {
    *out = NULL;
    size_t bt, need;
    if (B_global == 0 || T == 0) return tern_err(TERN_EINVAL, "batch size and sequence length must be at least 1 (got B=%zu, T=%zu)", B_global, T);
    if (!tern_mul_size(B_global, T, &bt) || !tern_add_size(bt, 1, &need))
        return tern_err(TERN_EINVAL, "B=%zu x T=%zu tokens is too large", B_global, T);
    tern_loader *l = calloc(1, sizeof *l);
    if (!l) return tern_err(TERN_ENOMEM, "out of memory");
    l->first = calloc(ds->n_shards + 1, sizeof *l->first);
    if (!l->first) {
        free(l);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    l->ds = ds;
    l->B = B_global;
    l->T = T;
    l->BT = bt;
    l->shuffle = shuffle;
    l->seed = seed;
    l->perm_epoch = UINT64_MAX;
    uint64_t largest = 0;
    for (size_t s = 0; s < ds->n_shards; s++) {
        uint64_t n = ds->views[s].n_tokens;
        if (n > largest) largest = n;
        /* windows start at 0, BT, 2BT, ... while start + BT + 1 <= n */
        uint64_t k = n >= need ? (n - need) / bt + 1 : 0;
        l->first[s + 1] = l->first[s] + k;
    }
    l->K = l->first[ds->n_shards];
    if (l->K == 0) {
        tern_loader_free(l);
        return tern_err(TERN_EINVAL,
                        "%s: no %s shard holds a whole window: a window needs %zu tokens (B=%zu x T=%zu, plus 1) and the largest "
                        "shard has %llu",
                        ds->dir, ds->split == TERN_SPLIT_VAL ? "val" : "train", need, B_global, T, (unsigned long long)largest);
    }
    *out = l;
    return TERN_OK;
}

uint64_t tern_loader_windows_per_epoch(const tern_loader *l) { return l->K; }

/* Fisher-Yates over the K windows, drawn from tern_rng keyed by (seed, epoch). */
static tern_status make_perm(tern_loader *l, uint64_t epoch) {
    if (l->perm_epoch == epoch) return TERN_OK;
    if (!l->perm) {
        if (l->K > SIZE_MAX / sizeof(uint64_t)) return tern_err(TERN_ENOMEM, "too many windows to shuffle (%llu)", (unsigned long long)l->K);
        l->perm = malloc((size_t)l->K * sizeof(uint64_t));
        if (!l->perm) return tern_err(TERN_ENOMEM, "out of memory for a permutation of %llu windows", (unsigned long long)l->K);
    }
    for (uint64_t i = 0; i < l->K; i++) l->perm[i] = i;
    uint64_t stream = tern_rng_stream("loader.shuffle", epoch, 0), ctr = 0;
    for (uint64_t i = l->K - 1; i > 0; i--) {
        uint64_t j = tern_rng_below(l->seed, stream, &ctr, i + 1);
        uint64_t t = l->perm[i];
        l->perm[i] = l->perm[j];
        l->perm[j] = t;
    }
    l->perm_epoch = epoch;
    return TERN_OK;
}

tern_status tern_loader_locate(tern_loader *l, uint64_t cursor, size_t *shard, uint64_t *start) {
    uint64_t epoch = cursor / l->K, k = cursor % l->K;
    if (l->shuffle) {
        TERN_TRY(make_perm(l, epoch));
        k = l->perm[k];
    }
    /* the last shard s with first[s] <= k: shards without windows share first[] with the next, so
     * the one found holds window k */
    size_t lo = 0, hi = l->ds->n_shards;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (l->first[mid] <= k) lo = mid;
        else hi = mid;
    }
    *shard = lo;
    *start = (k - l->first[lo]) * l->BT;
    return TERN_OK;
}

tern_status tern_loader_get(tern_loader *l, uint64_t cursor, size_t row0, size_t nrows, int32_t *inputs, int32_t *targets) {
    if (row0 > l->B || nrows > l->B - row0)
        return tern_err(TERN_EINVAL, "rows %zu..%zu are outside the window's %zu rows", row0, row0 + nrows, l->B);
    size_t s;
    uint64_t w;
    TERN_TRY(tern_loader_locate(l, cursor, &s, &w));
    const tern_shard_view *v = &l->ds->views[s];
    uint64_t base = w + (uint64_t)row0 * l->T;
    size_t n = nrows * l->T;
    if (v->bytes_per_token == 2) {
        const uint8_t *p = v->tokens + base * 2;
        uint32_t prev = (uint32_t)p[0] | (uint32_t)p[1] << 8;
        for (size_t i = 0; i < n; i++) {
            uint32_t next = (uint32_t)p[2 * i + 2] | (uint32_t)p[2 * i + 3] << 8;
            inputs[i] = (int32_t)prev;
            targets[i] = (int32_t)next;
            prev = next;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            inputs[i] = (int32_t)tern_shard_token(v, base + i);
            targets[i] = (int32_t)tern_shard_token(v, base + i + 1);
        }
    }
    return TERN_OK;
}
