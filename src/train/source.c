/* What a run reads: one data folder (--data DIR), or a mixture of several in given shares
 * (--data DIR:WEIGHT,DIR:WEIGHT,...; include/tern/data.h "mixtures"), each with its train split
 * and, when it has one, its val split. One folder is read through its loader exactly as before
 * mixtures existed, so runs and checkpoints of one folder are unchanged. */
#include "train/train_int.h"

#include "tern/data.h"

#include <stdlib.h>
#include <string.h>

static int is_mixture(const char *spec) { return strchr(spec, ',') != NULL; }

tern_status train_source_open(train_source *d, const char *spec, const struct tern_key *key) {
    memset(d, 0, sizeof *d);
    if (!spec || !*spec) return tern_err(TERN_EINVAL, "no data folder: give --data DATADIR (made by `tern prepare`)");
    if (is_mixture(spec)) {
        TERN_TRY(tern_mixture_spec_parse(&d->spec, spec));
    } else {
        d->spec.n = 1;
        d->spec.dirs = calloc(1, sizeof *d->spec.dirs);
        d->spec.weights = malloc(sizeof *d->spec.weights);
        if (!d->spec.dirs || !d->spec.weights || !(d->spec.dirs[0] = strdup(spec))) return tern_err(TERN_ENOMEM, "out of memory");
        d->spec.weights[0] = 1;
    }
    size_t n = d->n = d->spec.n;
    d->train = calloc(n, sizeof *d->train);
    d->val = calloc(n, sizeof *d->val);
    d->names = calloc(n, sizeof *d->names);
    d->drawn = calloc(n, sizeof *d->drawn);
    if (!d->train || !d->val || !d->names || !d->drawn) return tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *dir = d->spec.dirs[i];
        TERN_TRY(tern_dataset_open(&d->train[i], dir, "train", i ? tern_dataset_tokenizer_hash(d->train[0]) : NULL, key));
        tern_status st = tern_dataset_open(&d->val[i], dir, "val", tern_dataset_tokenizer_hash(d->train[0]), key);
        if (st == TERN_ENOTFOUND) {
            d->val[i] = NULL; /* no val split: evaluation skips this source */
            tern_err_clear();
        } else {
            TERN_TRY(st);
        }
        /* the folder's last path component, as a metrics key: letters, digits and '_' */
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/') len--;
        const char *b = dir + len;
        while (b > dir && b[-1] != '/') b--;
        char *nm = d->names[i] = malloc((size_t)(dir + len - b) + 1);
        if (!nm) return tern_err(TERN_ENOMEM, "out of memory");
        size_t k = 0;
        for (const char *p = b; p < dir + len; p++) nm[k++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ? *p : '_';
        nm[k] = 0;
    }
    return TERN_OK;
}

tern_status train_source_start(train_source *d, size_t B_global, size_t T, int shuffle, uint64_t seed) {
    if (d->n == 1) return tern_loader_init(&d->loader, d->train[0], B_global, T, shuffle, seed);
    tern_mixture_source *src = calloc(d->n, sizeof *src);
    if (!src) return tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; i < d->n; i++) src[i] = (tern_mixture_source){d->train[i], d->spec.weights[i], d->spec.dirs[i]};
    tern_status st = tern_mixture_init(&d->mix, src, d->n, B_global, T, shuffle, seed);
    free(src);
    return st;
}

tern_status train_source_get(train_source *d, uint64_t cursor, size_t row0, size_t nrows, int32_t *in, int32_t *tg) {
    if (d->mix) return tern_mixture_get(d->mix, cursor, row0, nrows, in, tg, NULL);
    return tern_loader_get(d->loader, cursor, row0, nrows, in, tg);
}

uint64_t train_source_tokens(const train_source *d) {
    uint64_t t = 0;
    for (size_t i = 0; i < d->n; i++) t += tern_dataset_num_tokens(d->train[i]);
    return t;
}

double train_source_share(const train_source *d, size_t i) { return d->mix ? tern_mixture_share(d->mix, i) : 1.0; }

void train_source_free(train_source *d) {
    tern_loader_free(d->loader);
    tern_mixture_free(d->mix);
    for (size_t i = 0; i < d->n; i++) {
        if (d->train) tern_dataset_free(d->train[i]);
        if (d->val) tern_dataset_free(d->val[i]);
        if (d->names) free(d->names[i]);
    }
    free(d->train);
    free(d->val);
    free(d->names);
    free(d->drawn);
    tern_mixture_spec_free(&d->spec);
    memset(d, 0, sizeof *d);
}
