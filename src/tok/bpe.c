/* One thread's encoding: a text cut into pre-tokens (pretok.c), each piece looked up whole or
 * merged by BPE rank exactly as OpenAI's encoder.py bpe() does (repeatedly take the adjacent pair
 * of lowest rank and merge all its occurrences left to right), with a cache of pieces. */
#include "tok/tok_int.h"

#include <stdlib.h>
#include <string.h>

/* Pieces up to this many bytes use the simple quadratic BPE; longer ones the heap. */
#define SMALL_PIECE 256
/* The cache keeps pieces of at most this many bytes. */
#define CACHE_PIECE 64
/* At most this many slots; a short text gets a smaller cache (about one slot per 4 bytes), so
 * encoding a prompt does not clear a megabyte. Each slot has room for 32 bytes and 8 ids. */
#define CACHE_SLOTS_MAX (1u << 15)
#define CACHE_SLOTS_MIN (1u << 8)

typedef struct {
    uint64_t h;
    uint32_t boff, ioff;
    uint16_t blen, ilen; /* blen 0: empty slot */
} cache_slot;

struct tok_worker {
    const tern_tok *tok;
    int32_t *sym; /* BPE symbols (SMALL_PIECE, or the piece's length for the heap BPE) */
    uint32_t *rk; /* rk[i]: rank of (sym[i], sym[i+1]) */
    size_t cap;
    int32_t *nxt, *prv; /* heap BPE: a linked list over sym */
    uint64_t *heap;     /* heap BPE: rank << 32 | position */
    int32_t *dirty;
    size_t lcap;
    cache_slot *slots; /* allocated at the first miss, nslots of them */
    uint8_t *cbytes;   /* 32 * nslots */
    int32_t *cids;     /* 8 * nslots */
    size_t nslots, cused, cb, ci;
    size_t hint; /* the size of the text being encoded, for the cache's size */
};

tern_status tok_worker_init(tok_worker **out, const tern_tok *tok) {
    tok_worker *w = calloc(1, sizeof *w);
    if (!w) return tern_err(TERN_ENOMEM, "out of memory");
    w->tok = tok;
    w->cap = SMALL_PIECE;
    w->sym = malloc(w->cap * sizeof(int32_t));
    w->rk = malloc(w->cap * sizeof(uint32_t));
    if (!w->sym || !w->rk) {
        tok_worker_free(w);
        return tern_err(TERN_ENOMEM, "out of memory");
    }
    *out = w;
    return TERN_OK;
}

static void free_large(tok_worker *w) {
    free(w->nxt);
    free(w->prv);
    free(w->heap);
    free(w->dirty);
    w->nxt = w->prv = w->dirty = NULL;
    w->heap = NULL;
    w->lcap = 0;
}

void tok_worker_free(tok_worker *w) {
    if (!w) return;
    free(w->sym);
    free(w->rk);
    free_large(w);
    free(w->slots);
    free(w->cbytes);
    free(w->cids);
    free(w);
}

static inline tern_status push1(tern_ids *out, int32_t id) {
    if (out->n < out->cap) {
        out->p[out->n++] = id;
        return TERN_OK;
    }
    return tern_ids_push(out, &id, 1);
}

static inline uint32_t pair_rank(const tern_tok *tok, int32_t a, int32_t b) {
    const tok_merge *m = tok_find_merge(tok, a, b);
    return m ? m->rank : TOK_NO_RANK;
}

/* encoder.py's bpe() on an array: find the lowest rank, merge every occurrence of that pair
 * left to right (non-overlapping), repeat. O(n^2) in the worst case, fast for words. */
static tern_status bpe_small(tok_worker *w, const uint8_t *p, size_t n, tern_ids *out) {
    const tern_tok *tok = w->tok;
    int32_t *sym = w->sym;
    uint32_t *rk = w->rk;
    size_t m = n;
    for (size_t i = 0; i < n; i++) sym[i] = tok->byte_id[p[i]];
    for (size_t i = 0; i + 1 < m; i++) rk[i] = pair_rank(tok, sym[i], sym[i + 1]);
    while (m > 1) {
        uint32_t r = TOK_NO_RANK;
        for (size_t i = 0; i + 1 < m; i++)
            if (rk[i] < r) r = rk[i];
        if (r == TOK_NO_RANK) break;
        for (size_t i = 0; i + 1 < m; i++) {
            if (rk[i] != r) continue;
            sym[i] = tok_find_merge(tok, sym[i], sym[i + 1])->result;
            memmove(sym + i + 1, sym + i + 2, (m - i - 2) * sizeof(int32_t));
            memmove(rk + i, rk + i + 1, (m - i - 2) * sizeof(uint32_t));
            m--;
            if (i + 1 < m) rk[i] = pair_rank(tok, sym[i], sym[i + 1]);
            if (i > 0) rk[i - 1] = pair_rank(tok, sym[i - 1], sym[i]);
        }
    }
    return tern_ids_push(out, sym, m);
}

static void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h[parent] <= v) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = v;
}

static void heap_sift_down(uint64_t *h, size_t n, size_t i) {
    uint64_t v = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0];
    h[0] = h[--*n];
    if (*n) heap_sift_down(h, *n, 0);
    return top;
}

/* The same merges as bpe_small in O(n log n), for long pieces: a linked list of symbols and a
 * heap of (rank, position). All pairs of one rank are merged, in position order, before the
 * pairs that those merges create are added, which is encoder.py's order whatever the merges. */
static tern_status bpe_large(tok_worker *w, const uint8_t *p, size_t n, tern_ids *out) {
    const tern_tok *tok = w->tok;
    if (n > w->lcap) {
        int32_t *s2 = malloc(n * sizeof(int32_t)), *nx = malloc(n * sizeof(int32_t)), *pv = malloc(n * sizeof(int32_t));
        int32_t *di = malloc(2 * n * sizeof(int32_t));
        /* the heap holds at most the n - 1 first pairs plus two per merge (n - 1 merges at most) */
        uint64_t *hp = malloc(2 * n * sizeof(uint64_t));
        if (!s2 || !nx || !pv || !di || !hp) {
            free(s2);
            free(nx);
            free(pv);
            free(di);
            free(hp);
            return tern_err(TERN_ENOMEM, "out of memory encoding a pre-token of %zu bytes", n);
        }
        free_large(w);
        free(w->sym);
        w->sym = s2;
        w->nxt = nx;
        w->prv = pv;
        w->dirty = di;
        w->heap = hp;
        w->lcap = n;
    }
    int32_t *sym = w->sym, *nxt = w->nxt, *prv = w->prv, *dirty = w->dirty;
    uint64_t *heap = w->heap;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        sym[i] = tok->byte_id[p[i]];
        prv[i] = (int32_t)i - 1;
        nxt[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r = pair_rank(tok, sym[i], sym[i + 1]);
        if (r != TOK_NO_RANK) heap[hn++] = (uint64_t)r << 32 | i;
    }
    for (size_t i = hn / 2; i-- > 0;) heap_sift_down(heap, hn, i);
    while (hn) {
        uint32_t r = (uint32_t)(heap[0] >> 32);
        size_t nd = 0;
        while (hn && (uint32_t)(heap[0] >> 32) == r) {
            int32_t pos = (int32_t)(uint32_t)heap_pop(heap, &hn);
            int32_t j = nxt[pos];
            if (sym[pos] < 0 || j < 0) continue;
            const tok_merge *m = tok_find_merge(tok, sym[pos], sym[j]);
            if (!m || m->rank != r) continue; /* a stale entry: the pair has changed */
            sym[pos] = m->result;
            sym[j] = -1;
            nxt[pos] = nxt[j];
            if (nxt[j] >= 0) prv[nxt[j]] = pos;
            dirty[nd++] = pos;
            if (prv[pos] >= 0) dirty[nd++] = prv[pos];
        }
        for (size_t k = 0; k < nd; k++) {
            int32_t d = dirty[k];
            if (sym[d] < 0 || nxt[d] < 0) continue;
            uint32_t r2 = pair_rank(tok, sym[d], sym[nxt[d]]);
            if (r2 != TOK_NO_RANK) heap_push(heap, &hn, (uint64_t)r2 << 32 | (uint32_t)d);
        }
    }
    for (int32_t i = 0; i >= 0; i = nxt[i]) TERN_TRY(push1(out, sym[i]));
    return TERN_OK;
}

tern_status tok_bpe_piece(tok_worker *w, const uint8_t *p, size_t n, tern_ids *out) {
    if (n == 0) return TERN_OK;
    if (n <= SMALL_PIECE) return bpe_small(w, p, n, out); /* sym and rk hold at least SMALL_PIECE */
    return bpe_large(w, p, n, out);
}

static void cache_clear(tok_worker *w) {
    memset(w->slots, 0, w->nslots * sizeof(cache_slot));
    w->cused = w->cb = w->ci = 0;
}

/* Encodes one piece through the cache. h is tok_hash_bytes(p, n). */
static tern_status encode_cached(tok_worker *w, const uint8_t *p, size_t n, uint64_t h, tern_ids *out) {
    if (!w->slots) {
        size_t ns = CACHE_SLOTS_MIN;
        while (ns < CACHE_SLOTS_MAX && ns < w->hint / 4) ns *= 2;
        w->nslots = ns;
        w->slots = malloc(ns * sizeof(cache_slot));
        w->cbytes = malloc(ns * 32);
        w->cids = malloc(ns * 8 * sizeof(int32_t));
        if (!w->slots || !w->cbytes || !w->cids) return tern_err(TERN_ENOMEM, "out of memory for the piece cache");
        cache_clear(w);
    }
    size_t mask = w->nslots - 1, i = (size_t)h & mask;
    for (;;) {
        cache_slot *s = &w->slots[i];
        if (!s->blen) break;
        if (s->h == h && s->blen == n && memcmp(w->cbytes + s->boff, p, n) == 0)
            return tern_ids_push(out, w->cids + s->ioff, s->ilen);
        i = (i + 1) & mask;
    }
    size_t start = out->n;
    TERN_TRY(tok_bpe_piece(w, p, n, out));
    size_t k = out->n - start;
    if (w->cused + 1 > w->nslots / 2 || w->cb + n > w->nslots * 32 || w->ci + k > w->nslots * 8) {
        cache_clear(w);
        i = (size_t)h & mask;
    }
    cache_slot *s = &w->slots[i];
    s->h = h;
    s->boff = (uint32_t)w->cb;
    s->ioff = (uint32_t)w->ci;
    s->blen = (uint16_t)n;
    s->ilen = (uint16_t)k;
    memcpy(w->cbytes + w->cb, p, n);
    memcpy(w->cids + w->ci, out->p + start, k * sizeof(int32_t));
    w->cb += n;
    w->ci += k;
    w->cused++;
    return TERN_OK;
}

tern_status tok_worker_encode(tok_worker *w, const uint8_t *s, size_t n, uint64_t base, tern_ids *out) {
    const tern_tok *tok = w->tok;
    if (n > w->hint) w->hint = n;
    size_t i = 0;
    while (i < n) {
        size_t e = tok_piece_end(s, i, n);
        size_t len = e - i;
        const uint8_t *p = s + i;
        if (len <= CACHE_PIECE) {
            uint64_t h = tok_hash_bytes(p, len);
            int32_t id = tok_lookup_h(tok, p, len, h);
            if (id >= 0 && tok->whole[id]) TERN_TRY(push1(out, id));
            else TERN_TRY(encode_cached(w, p, len, h, out));
        } else {
            if (len > TERN_TOK_MAX_PIECE)
                return tern_err(TERN_EINVAL,
                                "at byte %llu, a pre-token of %zu bytes (one run of letters, digits, symbols or spaces) is "
                                "longer than tern's limit of %zu bytes",
                                (unsigned long long)(base + i), len, TERN_TOK_MAX_PIECE);
            TERN_TRY(tok_bpe_piece(w, p, len, out));
        }
        i = e;
    }
    return TERN_OK;
}

void tok_worker_full_cache(tok_worker *w) { w->hint = (size_t)CACHE_SLOTS_MAX * 4; }
