/* Data mixtures: several datasets served as one stream of training windows, each source in its
 * share, as a pure function of (weights, seed, cursor) like the loader itself, so that a run
 * saves only the cursor and resumes exactly, on any number of ranks. Window `cursor` comes whole
 * from one source; its rows are sliced across ranks as tern_loader's are. The apportionment is
 * exact at every block of TERN_MIXTURE_BLOCK windows (each source within one window of its share
 * of every prefix that ends a block), and the order inside a block is a seeded shuffle. Not the
 * loader (loader.c): each source is read through its own. The rule is in docs/FORMATS.md "Data
 * mixtures"; the cumulative apportionment is the largest-remainder idea of Megatron-LM's
 * BlendableDataset made a closed formula, so no index of all windows is built. */
#include "data/data_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct tern_mixture {
    size_t n;
    tern_loader **loaders;
    const tern_dataset **ds;
    uint64_t *w;   /* each source's weight in units of 2^-32 of the whole (rounded, >= 1) */
    uint64_t *cum; /* cum[i] = w[0] + ... + w[i-1]; cum[n] = W */
    uint64_t seed;
    uint64_t block;      /* the block whose slots are below, or UINT64_MAX */
    uint32_t *slot_src;  /* (TERN_MIXTURE_BLOCK) the source of each window of the block */
    uint32_t *slot_rank; /* (TERN_MIXTURE_BLOCK) its index among that source's windows in the block */
    uint64_t *base;      /* (n) windows of each source before the block */
};

/* Windows of sources 0..i-1 among the first N: floor(N * cum[i] / W). Of source i alone: F(i+1) - F(i),
 * which differs from N * w[i] / W by less than 1, and all of them add up to N. */
typedef unsigned __int128 u128; /* N * cum[i] needs up to 97 bits */

static uint64_t below(const tern_mixture *m, size_t i, u128 N) { return (uint64_t)(N * m->cum[i] / m->cum[m->n]); }

static uint64_t windows_of(const tern_mixture *m, size_t i, u128 N) { return below(m, i + 1, N) - below(m, i, N); }

void tern_mixture_free(tern_mixture *m) {
    if (!m) return;
    for (size_t i = 0; m->loaders && i < m->n; i++) tern_loader_free(m->loaders[i]);
    free(m->loaders);
    free(m->ds);
    free(m->w);
    free(m->cum);
    free(m->slot_src);
    free(m->slot_rank);
    free(m->base);
    free(m);
}

static const char *src_name(const tern_mixture_source *s, size_t i, char *buf, size_t cap) {
    if (s->name) snprintf(buf, cap, "mixture source %zu (%s)", i, s->name);
    else snprintf(buf, cap, "mixture source %zu", i);
    return buf;
}

tern_status tern_mixture_init(tern_mixture **out, const tern_mixture_source *sources, size_t n, size_t B_global, size_t T, int shuffle,
                              uint64_t seed) {
    *out = NULL;
    if (n == 0) return tern_err(TERN_EINVAL, "a mixture needs at least one source");
    if (n > UINT32_MAX) return tern_err(TERN_EINVAL, "a mixture of %zu sources is too many", n);
    double sum = 0;
    char a[300], b[300];
    for (size_t i = 0; i < n; i++) {
        double w = sources[i].weight;
        if (!sources[i].ds) return tern_err(TERN_EINVAL, "%s has no dataset", src_name(&sources[i], i, a, sizeof a));
        if (!(w > 0) || !isfinite(w))
            return tern_err(TERN_EINVAL, "%s: the weight must be a positive number, got %g", src_name(&sources[i], i, a, sizeof a), w);
        sum += w;
        const tern_dataset *d0 = sources[0].ds, *d = sources[i].ds;
        if (!tern_dataset_made_by(d, tern_dataset_tokenizer_hash(d0)) ||
            tern_dataset_vocab_size(d) != tern_dataset_vocab_size(d0) || tern_dataset_eot(d) != tern_dataset_eot(d0)) {
            char h0[2 * TERN_HASH_BYTES + 1], h1[2 * TERN_HASH_BYTES + 1];
            tern_hex(h0, tern_dataset_tokenizer_hash(d0), TERN_HASH_BYTES);
            tern_hex(h1, tern_dataset_tokenizer_hash(d), TERN_HASH_BYTES);
            return tern_err(TERN_EINVAL, "%s was made with tokenizer %.16s, but %s with %.16s; the sources of a mixture need one tokenizer",
                            src_name(&sources[i], i, a, sizeof a), h1, src_name(&sources[0], 0, b, sizeof b), h0);
        }
    }
    if (!isfinite(sum)) return tern_err(TERN_EINVAL, "the mixture's weights add up to more than a double holds");
    tern_mixture *m = calloc(1, sizeof *m);
    if (!m) return tern_err(TERN_ENOMEM, "out of memory");
    m->n = n;
    m->seed = seed;
    m->block = UINT64_MAX;
    m->loaders = calloc(n, sizeof *m->loaders);
    m->ds = calloc(n, sizeof *m->ds);
    m->w = calloc(n, sizeof *m->w);
    m->cum = calloc(n + 1, sizeof *m->cum);
    m->base = calloc(n, sizeof *m->base);
    m->slot_src = malloc(TERN_MIXTURE_BLOCK * sizeof *m->slot_src);
    m->slot_rank = malloc(TERN_MIXTURE_BLOCK * sizeof *m->slot_rank);
    tern_status st = m->loaders && m->ds && m->w && m->cum && m->base && m->slot_src && m->slot_rank ? TERN_OK
                                                                                                      : tern_err(TERN_ENOMEM, "out of memory");
    for (size_t i = 0; st == TERN_OK && i < n; i++) {
        double q = nearbyint(sources[i].weight / sum * 4294967296.0);
        if (q < 1)
            st = tern_err(TERN_EINVAL, "%s: a weight of %g is below 2^-32 of the whole (%g), too small to be served",
                          src_name(&sources[i], i, a, sizeof a), sources[i].weight, sum);
        m->w[i] = (uint64_t)q;
        m->cum[i + 1] = m->cum[i] + m->w[i];
        m->ds[i] = sources[i].ds;
        /* every source is read with the mixture's seed: a mixture of one is its loader */
        if (st == TERN_OK && (st = tern_loader_init(&m->loaders[i], sources[i].ds, B_global, T, shuffle, seed)) != TERN_OK)
            st = tern_err_wrap(st, "%s", src_name(&sources[i], i, a, sizeof a));
    }
    if (st != TERN_OK) {
        tern_mixture_free(m);
        return st;
    }
    *out = m;
    return TERN_OK;
}

size_t tern_mixture_num_sources(const tern_mixture *m) { return m->n; }
double tern_mixture_share(const tern_mixture *m, size_t i) { return i < m->n ? (double)m->w[i] / (double)m->cum[m->n] : 0; }
uint64_t tern_mixture_source_windows(const tern_mixture *m, size_t i) { return i < m->n ? tern_loader_windows_per_epoch(m->loaders[i]) : 0; }

/* The slots of block b: each source's windows of the block, in source order, shuffled with
 * tern_rng keyed by (seed, "mixture", b); then each slot's rank among its source's slots. */
static void make_block(tern_mixture *m, uint64_t b) {
    if (m->block == b) return;
    u128 N0 = (u128)b * TERN_MIXTURE_BLOCK, N1 = N0 + TERN_MIXTURE_BLOCK;
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        m->base[i] = windows_of(m, i, N0);
        for (uint64_t c = windows_of(m, i, N1) - m->base[i]; c > 0; c--) m->slot_src[k++] = (uint32_t)i;
    }
    uint64_t stream = tern_rng_stream("mixture", b, 0), ctr = 0;
    for (size_t j = TERN_MIXTURE_BLOCK - 1; j > 0; j--) {
        size_t r = (size_t)tern_rng_below(m->seed, stream, &ctr, j + 1);
        uint32_t t = m->slot_src[j];
        m->slot_src[j] = m->slot_src[r];
        m->slot_src[r] = t;
    }
    /* ranks: how many slots of the same source come before (base counts them, then is set) */
    for (size_t i = 0; i < m->n; i++) m->base[i] = 0;
    for (size_t j = 0; j < TERN_MIXTURE_BLOCK; j++) m->slot_rank[j] = (uint32_t)m->base[m->slot_src[j]]++;
    for (size_t i = 0; i < m->n; i++) m->base[i] = windows_of(m, i, N0);
    m->block = b;
}

tern_status tern_mixture_locate(tern_mixture *m, uint64_t cursor, size_t *source, uint64_t *source_cursor) {
    make_block(m, cursor / TERN_MIXTURE_BLOCK);
    size_t j = (size_t)(cursor % TERN_MIXTURE_BLOCK), s = m->slot_src[j];
    *source = s;
    *source_cursor = m->base[s] + m->slot_rank[j];
    return TERN_OK;
}

tern_status tern_mixture_get(tern_mixture *m, uint64_t cursor, size_t row0, size_t nrows, int32_t *inputs, int32_t *targets, size_t *source) {
    size_t s;
    uint64_t c;
    TERN_TRY(tern_mixture_locate(m, cursor, &s, &c));
    if (source) *source = s;
    return tern_loader_get(m->loaders[s], c, row0, nrows, inputs, targets);
}

tern_status tern_mixture_consumed(tern_mixture *m, uint64_t cursor, uint64_t *counts) {
    make_block(m, cursor / TERN_MIXTURE_BLOCK);
    for (size_t i = 0; i < m->n; i++) counts[i] = m->base[i];
    for (size_t j = 0; j < cursor % TERN_MIXTURE_BLOCK; j++) counts[m->slot_src[j]]++;
    return TERN_OK;
}

/* ---- "DIR:WEIGHT,DIR:WEIGHT" ---- */

void tern_mixture_spec_free(tern_mixture_spec *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->dirs[i]);
    free(s->dirs);
    free(s->weights);
    memset(s, 0, sizeof *s);
}

tern_status tern_mixture_spec_parse(tern_mixture_spec *out, const char *spec) {
    memset(out, 0, sizeof *out);
    size_t n = 1;
    for (const char *p = spec; *p; p++) n += *p == ',';
    out->dirs = calloc(n, sizeof *out->dirs);
    out->weights = calloc(n, sizeof *out->weights);
    if (!out->dirs || !out->weights) {
        tern_mixture_spec_free(out);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    const char *p = spec;
    tern_status st = TERN_OK;
    for (size_t i = 0; i < n && st == TERN_OK; i++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memrchr(p, ':', len);
        size_t dlen = colon ? (size_t)(colon - p) : len;
        double w = 1;
        if (colon) {
            char num[64], *e;
            size_t wl = len - dlen - 1;
            snprintf(num, sizeof num, "%.*s", (int)(wl < sizeof num ? wl : sizeof num - 1), colon + 1);
            w = strtod(num, &e);
            if (!wl || wl >= sizeof num || *e || !(w > 0) || !isfinite(w))
                st = tern_err(TERN_EINVAL, "mixture \"%s\": entry %zu: the weight after ':' must be a positive number, got \"%.*s\"", spec, i + 1,
                              (int)wl, colon + 1);
        }
        if (st == TERN_OK && dlen == 0) st = tern_err(TERN_EINVAL, "mixture \"%s\": entry %zu names no data folder", spec, i + 1);
        if (st == TERN_OK) {
            out->dirs[i] = malloc(dlen + 1);
            if (!out->dirs[i]) st = tern_err(TERN_ENOMEM, "out of memory");
            else {
                memcpy(out->dirs[i], p, dlen);
                out->dirs[i][dlen] = 0;
                out->weights[i] = w;
                out->n = i + 1;
            }
        }
        p += len + 1;
    }
    if (st != TERN_OK) tern_mixture_spec_free(out);
    return st;
}
