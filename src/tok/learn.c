/* Training a byte-level BPE the way GPT-2's was trained and Hugging Face's BpeTrainer trains one:
 * pre-tokenize with GPT-2's pattern, count the distinct pieces, then repeatedly merge the most
 * frequent adjacent pair (ties: the smaller pair of ids), updating pair counts incrementally
 * from an index of the words each pair occurs in. Not an implementation of other trainers
 * (WordPiece, Unigram) or of dropout. The result is written as vocab.json + merges.txt. */
#include "tok/tok_int.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- counting pieces: one table per thread, merged at the end ---- */

typedef struct {
    uint64_t h;
    uint64_t off; /* in arena */
    uint32_t len; /* 0: empty slot */
    uint64_t count;
} wslot;

typedef struct {
    wslot *slots;
    size_t cap, n;
    uint8_t *arena;
    size_t an, acap;
} wtab;

static void wtab_free(wtab *t) {
    free(t->slots);
    free(t->arena);
    memset(t, 0, sizeof *t);
}

static tern_status wtab_grow(wtab *t) {
    size_t cap = t->cap ? t->cap * 2 : 1 << 14;
    wslot *s = calloc(cap, sizeof(wslot));
    if (!s) return tern_err(TERN_ENOMEM, "out of memory counting words (%zu distinct)", t->n);
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].len) continue;
        size_t j = (size_t)t->slots[i].h & (cap - 1);
        while (s[j].len) j = (j + 1) & (cap - 1);
        s[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = s;
    t->cap = cap;
    return TERN_OK;
}

static tern_status wtab_add(wtab *t, const uint8_t *p, size_t len, uint64_t h, uint64_t count) {
    if ((t->n + 1) * 2 > t->cap) TERN_TRY(wtab_grow(t));
    size_t j = (size_t)h & (t->cap - 1);
    for (;;) {
        wslot *s = &t->slots[j];
        if (!s->len) break;
        if (s->h == h && s->len == len && memcmp(t->arena + s->off, p, len) == 0) {
            s->count += count;
            return TERN_OK;
        }
        j = (j + 1) & (t->cap - 1);
    }
    if (t->an + len > t->acap) {
        size_t cap = t->acap ? t->acap : 1 << 16;
        while (cap < t->an + len) cap *= 2;
        uint8_t *a = realloc(t->arena, cap);
        if (!a) return tern_err(TERN_ENOMEM, "out of memory counting words");
        t->arena = a;
        t->acap = cap;
    }
    memcpy(t->arena + t->an, p, len);
    wslot *s = &t->slots[j];
    s->h = h;
    s->off = t->an;
    s->len = (uint32_t)len;
    s->count = count;
    t->an += len;
    t->n++;
    return TERN_OK;
}

static tern_status count_pieces(wtab *t, const uint8_t *s, size_t n, uint64_t base) {
    size_t i = 0;
    while (i < n) {
        size_t e = tok_piece_end(s, i, n);
        if (e - i > TERN_TOK_MAX_PIECE)
            return tern_err(TERN_EINVAL,
                            "at byte %llu, a pre-token of %zu bytes (one run of letters, digits, symbols or spaces) is "
                            "longer than tern's limit of %zu bytes",
                            (unsigned long long)(base + i), e - i, TERN_TOK_MAX_PIECE);
        TERN_TRY(wtab_add(t, s + i, e - i, tok_hash_bytes(s + i, e - i), 1));
        i = e;
    }
    return TERN_OK;
}

typedef struct {
    wtab *tabs; /* one per thread; with nt == 1, the calling thread's own */
    int nt;     /* threads to split each block over */
    const char *name;
} count_ctx;

static tern_status count_block(void *ctx, const uint8_t *s, size_t n, uint64_t base) {
    count_ctx *c = ctx;
    if (c->nt == 1) {
        tern_status st = count_pieces(&c->tabs[0], s, n, base);
        return st == TERN_OK ? st : tern_err_wrap(st, "%s", c->name);
    }
    size_t nseg = (size_t)c->nt * 4;
    if (n < ((size_t)1 << 20)) nseg = 1;
    size_t cut[nseg + 1], k = 0;
    cut[k++] = 0;
    for (size_t j = 1; j < nseg; j++) {
        size_t target = j * (n / nseg);
        if (target <= cut[k - 1]) continue;
        size_t q = tok_first_cut(s, target, (j + 1) * (n / nseg), n);
        if (q) cut[k++] = q;
    }
    cut[k] = n;
    tern_status st = TERN_OK;
    char msg[512] = "";
#pragma omp parallel for schedule(dynamic, 1) num_threads(c->nt)
    for (size_t j = 0; j < k; j++) {
        tern_status sj = count_pieces(&c->tabs[omp_get_thread_num()], s + cut[j], cut[j + 1] - cut[j], base + cut[j]);
        if (sj != TERN_OK) {
#pragma omp critical
            {
                if (st == TERN_OK) {
                    st = sj;
                    snprintf(msg, sizeof msg, "%s", tern_errmsg());
                }
            }
        }
    }
    if (st != TERN_OK) return tern_err(st, "%s: %s", c->name, msg);
    return TERN_OK;
}

static tern_status count_file(const char *path, count_ctx *c) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return tern_err(errno == ENOENT ? TERN_ENOTFOUND : TERN_EIO, "%s: cannot open: %s", path, strerror(errno));
    tern_status st = tok_read_blocks(fd, path, count_block, c);
    close(fd);
    return st;
}

/* ---- the merge loop ---- */

typedef struct {
    int32_t a, b;
    int64_t count;
    uint32_t touched_at; /* the merge that last noted this pair as grown */
    int32_t *occ; /* words that contained this pair when it was counted (may repeat or be stale) */
    uint32_t nocc, cap;
} pair;

typedef struct {
    int64_t count;
    uint64_t key; /* a << 32 | b: smaller wins ties */
    uint32_t p;
} hentry;

typedef struct {
    /* words: distinct pieces as symbol arrays */
    int32_t *sym;
    uint64_t *woff; /* word w is sym[woff[w] .. woff[w] + wlen[w]) */
    uint32_t *wlen;
    int64_t *wcount;
    uint32_t *stamp;
    size_t nw;
    /* pairs */
    pair *pairs;
    size_t np, pcap;
    uint32_t *pmap; /* open addressing: pair index + 1 */
    size_t pmask;
    /* heap */
    hentry *heap;
    size_t hn, hcap;
    /* tokens */
    uint8_t *blob;
    uint64_t *toff; /* token t is blob[toff[t] .. toff[t+1]) */
    size_t nt, tcap, bn, bcap;
    uint32_t *tmap; /* bytes -> token + 1 */
    size_t tmask;
    /* merges made, in order */
    int32_t *ml, *mr;
    size_t nm;
    /* pairs that grew in the current merge (for heap pushes), each noted once */
    uint32_t *touched;
    size_t ntouched, touchcap;
    uint32_t mark; /* the number of the current merge, from 1 */
} trainer;

static inline int hentry_before(const hentry *x, const hentry *y) {
    if (x->count != y->count) return x->count > y->count;
    return x->key < y->key;
}

static tern_status heap_push(trainer *t, hentry e) {
    if (t->hn == t->hcap) {
        size_t cap = t->hcap ? t->hcap * 2 : 1 << 12;
        hentry *h = realloc(t->heap, cap * sizeof(hentry));
        if (!h) return tern_err(TERN_ENOMEM, "out of memory");
        t->heap = h;
        t->hcap = cap;
    }
    size_t i = t->hn++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!hentry_before(&e, &t->heap[parent])) break;
        t->heap[i] = t->heap[parent];
        i = parent;
    }
    t->heap[i] = e;
    return TERN_OK;
}

static hentry heap_pop(trainer *t) {
    hentry top = t->heap[0], v = t->heap[--t->hn];
    size_t i = 0, n = t->hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hentry_before(&t->heap[c + 1], &t->heap[c])) c++;
        if (!hentry_before(&t->heap[c], &v)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n) t->heap[i] = v;
    return top;
}

static inline size_t pair_slot(uint64_t key, size_t mask) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & mask; }

static tern_status pmap_grow(trainer *t) {
    size_t cap = t->pmask ? (t->pmask + 1) * 2 : 1 << 16;
    uint32_t *m = calloc(cap, sizeof(uint32_t));
    if (!m) return tern_err(TERN_ENOMEM, "out of memory");
    for (size_t p = 0; p < t->np; p++) {
        uint64_t key = (uint64_t)(uint32_t)t->pairs[p].a << 32 | (uint32_t)t->pairs[p].b;
        size_t i = pair_slot(key, cap - 1);
        while (m[i]) i = (i + 1) & (cap - 1);
        m[i] = (uint32_t)p + 1;
    }
    free(t->pmap);
    t->pmap = m;
    t->pmask = cap - 1;
    return TERN_OK;
}

/* The index of pair (a, b), created with count 0 if new. */
static tern_status pair_get(trainer *t, int32_t a, int32_t b, uint32_t *out) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = pair_slot(key, t->pmask);
    for (;;) {
        uint32_t v = t->pmap[i];
        if (!v) break;
        if (t->pairs[v - 1].a == a && t->pairs[v - 1].b == b) {
            *out = v - 1;
            return TERN_OK;
        }
        i = (i + 1) & t->pmask;
    }
    if (t->np == t->pcap) {
        size_t cap = t->pcap ? t->pcap * 2 : 1 << 14;
        pair *p = realloc(t->pairs, cap * sizeof(pair));
        if (!p) return tern_err(TERN_ENOMEM, "out of memory");
        t->pairs = p;
        t->pcap = cap;
    }
    pair *p = &t->pairs[t->np];
    memset(p, 0, sizeof *p);
    p->a = a;
    p->b = b;
    t->pmap[i] = (uint32_t)t->np + 1;
    *out = (uint32_t)t->np++;
    if ((t->np + 1) * 2 > t->pmask + 1) TERN_TRY(pmap_grow(t));
    return TERN_OK;
}

static tern_status occ_add(pair *p, int32_t w) {
    if (p->nocc && p->occ[p->nocc - 1] == w) return TERN_OK;
    if (p->nocc == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 4;
        int32_t *o = realloc(p->occ, cap * sizeof(int32_t));
        if (!o) return tern_err(TERN_ENOMEM, "out of memory");
        p->occ = o;
        p->cap = cap;
    }
    p->occ[p->nocc++] = w;
    return TERN_OK;
}

/* Adds delta (times word w's count) to pair (a, b); a pair that grows is noted for the heap. */
static tern_status pair_add(trainer *t, int32_t a, int32_t b, int32_t w, int64_t delta) {
    uint32_t p = 0;
    TERN_TRY(pair_get(t, a, b, &p));
    t->pairs[p].count += delta;
    if (delta > 0) {
        TERN_TRY(occ_add(&t->pairs[p], w));
        if (t->pairs[p].touched_at == t->mark) return TERN_OK; /* noted once per merge */
        t->pairs[p].touched_at = t->mark;
        if (t->ntouched == t->touchcap) {
            size_t cap = t->touchcap ? t->touchcap * 2 : 1024;
            uint32_t *x = realloc(t->touched, cap * sizeof(uint32_t));
            if (!x) return tern_err(TERN_ENOMEM, "out of memory");
            t->touched = x;
            t->touchcap = cap;
        }
        t->touched[t->ntouched++] = p;
    }
    return TERN_OK;
}

static int32_t token_lookup(const trainer *t, const uint8_t *p, size_t n, uint64_t h) {
    size_t i = (size_t)h & t->tmask;
    for (;;) {
        uint32_t v = t->tmap[i];
        if (!v) return -1;
        uint64_t a = t->toff[v - 1], b = t->toff[v];
        if (b - a == n && memcmp(t->blob + a, p, n) == 0) return (int32_t)v - 1;
        i = (i + 1) & t->tmask;
    }
}

/* Adds a token with bytes a|b (or finds the one that has them). */
static tern_status token_add(trainer *t, int32_t a, int32_t b, int32_t *out) {
    size_t la = (size_t)(t->toff[a + 1] - t->toff[a]), lb = (size_t)(t->toff[b + 1] - t->toff[b]);
    if (t->bn + la + lb > t->bcap) {
        size_t cap = t->bcap * 2;
        while (cap < t->bn + la + lb) cap *= 2;
        uint8_t *x = realloc(t->blob, cap);
        if (!x) return tern_err(TERN_ENOMEM, "out of memory");
        t->blob = x;
        t->bcap = cap;
    }
    uint8_t *dst = t->blob + t->bn;
    memcpy(dst, t->blob + t->toff[a], la);
    memcpy(dst + la, t->blob + t->toff[b], lb);
    uint64_t h = tok_hash_bytes(dst, la + lb);
    int32_t found = token_lookup(t, dst, la + lb, h);
    if (found >= 0) {
        *out = found;
        return TERN_OK;
    }
    if (t->nt + 1 >= t->tcap) return tern_err(TERN_EINVAL, "too many tokens");
    t->bn += la + lb;
    t->toff[t->nt + 1] = t->bn;
    size_t i = (size_t)h & t->tmask;
    while (t->tmap[i]) i = (i + 1) & t->tmask;
    t->tmap[i] = (uint32_t)t->nt + 1;
    *out = (int32_t)t->nt++;
    return TERN_OK;
}

/* Replaces every (a, b) in the words that hold it by x, keeping pair counts exact. */
static tern_status apply_merge(trainer *t, uint32_t pidx, int32_t x, uint32_t mark) {
    pair *pp = &t->pairs[pidx];
    int32_t a = pp->a, b = pp->b;
    int32_t *occ = pp->occ;
    uint32_t nocc = pp->nocc;
    pp->occ = NULL;
    pp->nocc = pp->cap = 0;
    tern_status st = TERN_OK;
    for (uint32_t k = 0; k < nocc && st == TERN_OK; k++) {
        int32_t w = occ[k];
        if (t->stamp[w] == mark) continue;
        t->stamp[w] = mark;
        int32_t *s = t->sym + t->woff[w];
        size_t len = t->wlen[w];
        int64_t c = t->wcount[w];
        size_t i = 0;
        while (i + 1 < len && st == TERN_OK) {
            if (s[i] != a || s[i + 1] != b) {
                i++;
                continue;
            }
            if (i > 0) {
                st = pair_add(t, s[i - 1], a, w, -c);
                if (st == TERN_OK) st = pair_add(t, s[i - 1], x, w, c);
            }
            if (i + 2 < len && st == TERN_OK) {
                st = pair_add(t, b, s[i + 2], w, -c);
                if (st == TERN_OK) st = pair_add(t, x, s[i + 2], w, c);
            }
            s[i] = x;
            memmove(s + i + 1, s + i + 2, (len - i - 2) * sizeof(int32_t));
            len--;
            i++;
        }
        t->wlen[w] = (uint32_t)len;
    }
    free(occ);
    t->pairs[pidx].count = 0;
    return st;
}

static void trainer_free(trainer *t) {
    free(t->sym);
    free(t->woff);
    free(t->wlen);
    free(t->wcount);
    free(t->stamp);
    for (size_t p = 0; p < t->np; p++) free(t->pairs[p].occ);
    free(t->pairs);
    free(t->pmap);
    free(t->heap);
    free(t->blob);
    free(t->toff);
    free(t->tmap);
    free(t->ml);
    free(t->mr);
    free(t->touched);
}

/* Builds words and pairs from the counted pieces, then merges until n_target tokens. */
static tern_status run_merges(trainer *t, const wtab *wt, size_t n_target) {
    int32_t id_of_byte[256];
    for (unsigned i = 0; i < 256; i++) id_of_byte[tok_byte_order(i)] = (int32_t)i;
    /* tokens: the 256 bytes first */
    t->tcap = n_target + 1;
    t->toff = calloc(t->tcap + 1, sizeof(uint64_t));
    t->bcap = 1 << 16;
    t->blob = malloc(t->bcap);
    size_t tcap = 16;
    while (tcap < 2 * t->tcap) tcap *= 2;
    t->tmap = calloc(tcap, sizeof(uint32_t));
    t->tmask = tcap - 1;
    t->ml = malloc(n_target * sizeof(int32_t));
    t->mr = malloc(n_target * sizeof(int32_t));
    if (!t->toff || !t->blob || !t->tmap || !t->ml || !t->mr) return tern_err(TERN_ENOMEM, "out of memory");
    for (unsigned i = 0; i < 256; i++) {
        t->blob[i] = (uint8_t)tok_byte_order(i);
        t->toff[i + 1] = i + 1;
        uint64_t h = tok_hash_bytes(t->blob + i, 1);
        size_t j = (size_t)h & t->tmask;
        while (t->tmap[j]) j = (j + 1) & t->tmask;
        t->tmap[j] = i + 1;
    }
    t->nt = 256;
    t->bn = 256;

    /* words: every distinct piece of two bytes or more */
    size_t nw = 0, nsym = 0;
    for (size_t i = 0; i < wt->cap; i++)
        if (wt->slots[i].len >= 2) {
            nw++;
            nsym += wt->slots[i].len;
        }
    if (nw > (size_t)INT32_MAX) return tern_err(TERN_EINVAL, "too many distinct words (%zu)", nw);
    t->nw = nw;
    t->sym = malloc((nsym ? nsym : 1) * sizeof(int32_t));
    t->woff = malloc((nw ? nw : 1) * sizeof(uint64_t));
    t->wlen = malloc((nw ? nw : 1) * sizeof(uint32_t));
    t->wcount = malloc((nw ? nw : 1) * sizeof(int64_t));
    t->stamp = calloc(nw ? nw : 1, sizeof(uint32_t));
    if (!t->sym || !t->woff || !t->wlen || !t->wcount || !t->stamp) return tern_err(TERN_ENOMEM, "out of memory for %zu words", nw);
    TERN_TRY(pmap_grow(t));
    size_t w = 0, off = 0;
    for (size_t i = 0; i < wt->cap; i++) {
        const wslot *s = &wt->slots[i];
        if (s->len < 2) continue;
        t->woff[w] = off;
        t->wlen[w] = s->len;
        t->wcount[w] = (int64_t)s->count;
        for (size_t k = 0; k < s->len; k++) t->sym[off + k] = id_of_byte[wt->arena[s->off + k]];
        for (size_t k = 0; k + 1 < s->len; k++) TERN_TRY(pair_add(t, t->sym[off + k], t->sym[off + k + 1], (int32_t)w, t->wcount[w]));
        off += s->len;
        w++;
    }
    t->ntouched = 0;
    for (size_t p = 0; p < t->np; p++) {
        hentry e = {t->pairs[p].count, (uint64_t)(uint32_t)t->pairs[p].a << 32 | (uint32_t)t->pairs[p].b, (uint32_t)p};
        TERN_TRY(heap_push(t, e));
    }

    while (t->nt < n_target && t->hn) {
        hentry top = heap_pop(t);
        int64_t cur = t->pairs[top.p].count;
        if (cur != top.count) { /* stale: its count fell since it was pushed */
            if (cur > 0) {
                top.count = cur;
                TERN_TRY(heap_push(t, top));
            }
            continue;
        }
        if (cur <= 0) break;
        int32_t x = -1;
        TERN_TRY(token_add(t, t->pairs[top.p].a, t->pairs[top.p].b, &x));
        t->ml[t->nm] = t->pairs[top.p].a;
        t->mr[t->nm] = t->pairs[top.p].b;
        t->nm++;
        t->ntouched = 0;
        TERN_TRY(apply_merge(t, top.p, x, ++t->mark));
        /* every pair that grew gets an entry with its new count (older entries of it go stale and
         * are skipped when popped) */
        for (size_t k = 0; k < t->ntouched; k++) {
            uint32_t p = t->touched[k];
            const pair *pp = &t->pairs[p];
            if (pp->count <= 0) continue;
            hentry e = {pp->count, (uint64_t)(uint32_t)pp->a << 32 | (uint32_t)pp->b, p};
            TERN_TRY(heap_push(t, e));
        }
    }
    return TERN_OK;
}

/* ---- writing vocab.json and merges.txt ---- */

static tern_status write_outputs(const trainer *t, const char *dir) {
    TERN_TRY(tern_mkdir_p(dir));
    char *vp = tern_path_join(dir, "vocab.json"), *mp = tern_path_join(dir, "merges.txt");
    size_t maxlen = 16;
    for (size_t i = 0; i < t->nt; i++) {
        size_t l = (size_t)(t->toff[i + 1] - t->toff[i]);
        if (l > maxlen) maxlen = l;
    }
    char *buf = malloc(4 * maxlen + 64);
    tern_status st = vp && mp && buf ? TERN_OK : tern_err(TERN_ENOMEM, "out of memory");
    tern_afile af;
    if (st == TERN_OK) st = tern_afile_open(&af, vp);
    if (st == TERN_OK) {
        st = tern_afile_write(&af, "{", 1);
        for (size_t i = 0; i < t->nt && st == TERN_OK; i++) {
            size_t k = tok_bytes_to_text(buf, t->blob + t->toff[i], (size_t)(t->toff[i + 1] - t->toff[i]), 1);
            st = tern_afile_printf(&af, "%s\"%.*s\": %zu", i ? ", " : "", (int)k, buf, i);
        }
        if (st == TERN_OK) st = tern_afile_printf(&af, "%s\"<|endoftext|>\": %zu}\n", t->nt ? ", " : "", t->nt);
        if (st == TERN_OK) st = tern_afile_commit(&af);
        else tern_afile_abort(&af);
    }
    if (st == TERN_OK) st = tern_afile_open(&af, mp);
    if (st == TERN_OK) {
        st = tern_afile_printf(&af, "#version: 0.2\n");
        for (size_t i = 0; i < t->nm && st == TERN_OK; i++) {
            int32_t a = t->ml[i], b = t->mr[i];
            size_t k = tok_bytes_to_text(buf, t->blob + t->toff[a], (size_t)(t->toff[a + 1] - t->toff[a]), 0);
            buf[k++] = ' ';
            k += tok_bytes_to_text(buf + k, t->blob + t->toff[b], (size_t)(t->toff[b + 1] - t->toff[b]), 0);
            buf[k++] = '\n';
            st = tern_afile_write(&af, buf, k);
        }
        if (st == TERN_OK) st = tern_afile_commit(&af);
        else tern_afile_abort(&af);
    }
    free(buf);
    free(vp);
    free(mp);
    return st;
}

tern_status tern_tok_train(const char *const *files, size_t n_files, size_t vocab_size, const char *out_dir,
                           size_t *n_vocab_out) {
    if (vocab_size < 257 || vocab_size > ((size_t)1 << 31) - 1)
        return tern_err(TERN_EINVAL, "vocabulary size %zu: it must be at least 257 (256 bytes and <|endoftext|>) and below 2^31",
                        vocab_size);
    if (n_files == 0) return tern_err(TERN_EINVAL, "no text files to train on");
    int nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
    wtab *tabs = calloc((size_t)nt, sizeof(wtab));
    if (!tabs) return tern_err(TERN_ENOMEM, "out of memory");
    tern_status st = TERN_OK;
    if ((size_t)nt <= n_files && nt > 1) {
        /* enough files for every thread: each thread counts whole files into its own table */
        tern_status *sts = calloc(n_files, sizeof *sts);
        char (*msgs)[512] = calloc(n_files, sizeof *msgs);
        if (!sts || !msgs) st = tern_err(TERN_ENOMEM, "out of memory");
        if (st == TERN_OK) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
            for (size_t f = 0; f < n_files; f++) {
                count_ctx c = {&tabs[omp_get_thread_num()], 1, files[f]};
                sts[f] = count_file(files[f], &c);
                if (sts[f] != TERN_OK) snprintf(msgs[f], sizeof msgs[f], "%s", tern_errmsg());
            }
            for (size_t f = 0; f < n_files && st == TERN_OK; f++)
                if (sts[f] != TERN_OK) st = tern_err(sts[f], "%s", msgs[f]);
        }
        free(sts);
        free(msgs);
    } else {
        /* few files: each block of a file is split over the threads */
        for (size_t f = 0; f < n_files && st == TERN_OK; f++) {
            count_ctx c = {tabs, nt, files[f]};
            st = count_file(files[f], &c);
        }
    }
    /* merge the threads' tables into the first */
    for (int i = 1; i < nt && st == TERN_OK; i++) {
        for (size_t j = 0; j < tabs[i].cap && st == TERN_OK; j++) {
            const wslot *s = &tabs[i].slots[j];
            if (s->len) st = wtab_add(&tabs[0], tabs[i].arena + s->off, s->len, s->h, s->count);
        }
        wtab_free(&tabs[i]);
    }
    trainer t;
    memset(&t, 0, sizeof t);
    if (st == TERN_OK) st = run_merges(&t, &tabs[0], vocab_size - 1);
    for (int i = 0; i < nt; i++) wtab_free(&tabs[i]);
    free(tabs);
    if (st == TERN_OK) st = write_outputs(&t, out_dir);
    if (st == TERN_OK && n_vocab_out) *n_vocab_out = t.nt + 1;
    trainer_free(&t);
    return st;
}
